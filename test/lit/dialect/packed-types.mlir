// !gemma.q4g32r8, the CPU's packed form of q4g32 (docs/quantization.md,
// "Packed layouts"): prints and parses back; its shape rules are q4g32's
// plus rows in whole groups of 8.
// RUN: gemma-opt %s --split-input-file --verify-diagnostics | FileCheck %s
// RUN: gemma-opt %s --split-input-file --verify-diagnostics | gemma-opt --split-input-file | FileCheck %s

// CHECK-LABEL: func.func @roundtrip
// CHECK: gemma.weight "w" {{.*}} : tensor<16x64x!gemma.q4g32r8>
// CHECK: gemma.linear %{{.*}}, %{{.*}} : (tensor<?x64xf32>, tensor<16x64x!gemma.q4g32r8>) -> tensor<?x16xf32>
// CHECK: gemma.embed %{{.*}}, %{{.*}} {scale = 1.000000e+00 : f32} : (tensor<?xi32>, tensor<16x64x!gemma.q4g32r8>) -> tensor<?x64xf32>
func.func @roundtrip(%x: tensor<?x64xf32>, %t: tensor<?xi32>) -> (tensor<?x16xf32>, tensor<?x64xf32>) {
  %w = gemma.weight "w" {file = "x.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x64x!gemma.q4g32r8>
  %y = gemma.linear %x, %w : (tensor<?x64xf32>, tensor<16x64x!gemma.q4g32r8>) -> tensor<?x16xf32>
  // The layout can serve a row lookup; gemma-pack-weights just never
  // gives it to an embed table (docs/quantization.md).
  %e = gemma.embed %t, %w {scale = 1.0 : f32} : (tensor<?xi32>, tensor<16x64x!gemma.q4g32r8>) -> tensor<?x64xf32>
  return %y, %e : tensor<?x16xf32>, tensor<?x64xf32>
}

// -----

func.func @rows() {
  // expected-error @+1 {{'gemma.weight' op result 'tensor<12x64x!gemma.q4g32r8>' has 12 rows, which is not a multiple of 8 (the rows '!gemma.q4g32r8' packs together)}}
  %w = gemma.weight "w" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<12x64x!gemma.q4g32r8>
  return
}

// -----

func.func @cols() {
  // expected-error @+1 {{'gemma.weight' op result 'tensor<16x48x!gemma.q4g32r8>' has 48 cols, which is not a multiple of 32 (the group size of '!gemma.q4g32r8')}}
  %w = gemma.weight "w" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x48x!gemma.q4g32r8>
  return
}

// -----

func.func @linear_rows(%x: tensor<?x64xf32>, %w: tensor<4x64x!gemma.q4g32r8>) -> tensor<?x4xf32> {
  // expected-error @+1 {{'gemma.linear' op weight 'tensor<4x64x!gemma.q4g32r8>' has 4 rows, which is not a multiple of 8}}
  %y = gemma.linear %x, %w : (tensor<?x64xf32>, tensor<4x64x!gemma.q4g32r8>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// -----

// expected-error @+1 {{!gemma.q4g32r8 takes no parameters}}
func.func @params(%w: tensor<16x64x!gemma.q4g32r8<8>>) {
  return
}
