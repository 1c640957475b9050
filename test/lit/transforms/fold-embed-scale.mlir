// RUN: gemma-opt %s --split-input-file --gemma-fold-embed-scale | FileCheck %s

// 8 is a power of two, so x*8*1.5 == x*12 for every x.
// CHECK-LABEL: func.func @exact
// CHECK-NEXT: %[[E:.*]] = gemma.embed %{{.*}}, %{{.*}} {scale = 1.200000e+01 : f32}
// CHECK-NEXT: return %[[E]]
func.func @exact(%t: tensor<?xi32>, %w: tensor<512x64xbf16>) -> tensor<?x64xf32> {
  %e = gemma.embed %t, %w {scale = 8.0 : f32} : (tensor<?xi32>, tensor<512x64xbf16>) -> tensor<?x64xf32>
  %s = gemma.scale %e {scale = 1.5 : f32} : tensor<?x64xf32>
  return %s : tensor<?x64xf32>
}

// -----

// NOT folded: neither 3 nor 1.1 is a power of two; two roundings differ from
// one.
// CHECK-LABEL: func.func @would_round
// CHECK: gemma.embed {{.*}} {scale = 3.000000e+00 : f32}
// CHECK-NEXT: gemma.scale
func.func @would_round(%t: tensor<?xi32>, %w: tensor<512x64xf32>) -> tensor<?x64xf32> {
  %e = gemma.embed %t, %w {scale = 3.0 : f32} : (tensor<?xi32>, tensor<512x64xf32>) -> tensor<?x64xf32>
  %s = gemma.scale %e {scale = 1.1 : f32} : tensor<?x64xf32>
  return %s : tensor<?x64xf32>
}

// -----

// NOT folded: the unscaled embedding is used too.
// CHECK-LABEL: func.func @embed_escapes
// CHECK: gemma.embed {{.*}} {scale = 8.000000e+00 : f32}
// CHECK-NEXT: gemma.scale
func.func @embed_escapes(%t: tensor<?xi32>, %w: tensor<512x64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>) {
  %e = gemma.embed %t, %w {scale = 8.0 : f32} : (tensor<?xi32>, tensor<512x64xf32>) -> tensor<?x64xf32>
  %s = gemma.scale %e {scale = 2.0 : f32} : tensor<?x64xf32>
  return %s, %e : tensor<?x64xf32>, tensor<?x64xf32>
}
