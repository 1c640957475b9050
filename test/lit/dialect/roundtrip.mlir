// Every gemma op prints and parses back to itself, in the custom and the
// generic form.
// RUN: gemma-opt %s | FileCheck %s
// RUN: gemma-opt %s | gemma-opt | FileCheck %s
// RUN: gemma-opt %s --mlir-print-op-generic | gemma-opt | FileCheck %s
// RUN: gemma-opt %s --mlir-print-op-generic | FileCheck %s --check-prefix=GENERIC
// RUN: gemma-opt %s > %t.1.mlir && gemma-opt %t.1.mlir > %t.2.mlir && diff %t.1.mlir %t.2.mlir
// RUN: gemma-opt %s --mlir-print-op-generic > %t.g1.mlir && gemma-opt %t.g1.mlir --mlir-print-op-generic > %t.g2.mlir && diff %t.g1.mlir %t.g2.mlir

// CHECK-LABEL: func.func @layer
// CHECK-SAME: (%[[TOK:.*]]: tensor<?xi32>) -> tensor<?x12xf32>
func.func @layer(%tok: tensor<?xi32>) -> tensor<?x12xf32> {
  // CHECK: %[[E:.*]] = gemma.weight "embed" {file = "x.safetensors", offset = 0 : i64, source_dtype = "BF16"} : tensor<16x8xbf16>
  %e = gemma.weight "embed" {file = "x.safetensors", offset = 0 : i64, source_dtype = "BF16"} : tensor<16x8xbf16>
  // CHECK: %[[N:.*]] = gemma.weight "norm" {file = "x.safetensors", offset = 256 : i64, source_dtype = "F32"} : tensor<8xf32>
  %n = gemma.weight "norm" {file = "x.safetensors", offset = 256 : i64, source_dtype = "F32"} : tensor<8xf32>
  // CHECK: %[[QN:.*]] = gemma.weight "q_norm" {{.*}} : tensor<4xf32>
  %qn = gemma.weight "q_norm" {file = "x.safetensors", offset = 288 : i64, source_dtype = "F32"} : tensor<4xf32>
  // CHECK: %[[WK:.*]] = gemma.weight "k_proj" {{.*}} : tensor<4x8xf16>
  %wk = gemma.weight "k_proj" {file = "x.safetensors", offset = 304 : i64, source_dtype = "F16"} : tensor<4x8xf16>

  // CHECK: %[[X:.*]] = gemma.embed %[[TOK]], %[[E]] {scale = 2.828125 : f32} : (tensor<?xi32>, tensor<16x8xbf16>) -> tensor<?x8xf32>
  %x = gemma.embed %tok, %e {scale = 2.828125 : f32} : (tensor<?xi32>, tensor<16x8xbf16>) -> tensor<?x8xf32>
  // Defaults are elided when printed, also when spelled out.
  // CHECK: %[[Y:.*]] = gemma.rms_norm %[[X]], %[[N]] : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  %y = gemma.rms_norm %x, %n : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  // CHECK: %[[YQ:.*]] = gemma.rms_norm %[[Y]], %[[QN]] {offset = 0.000000e+00 : f32} : (tensor<?x8xf32>, tensor<4xf32>) -> tensor<?x8xf32>
  %yq = gemma.rms_norm %y, %qn {eps = 1.0e-6 : f32, offset = 0.0 : f32} : (tensor<?x8xf32>, tensor<4xf32>) -> tensor<?x8xf32>
  // CHECK: %[[K:.*]] = gemma.linear %[[Y]], %[[WK]] : (tensor<?x8xf32>, tensor<4x8xf16>) -> tensor<?x4xf32>
  %k = gemma.linear %y, %wk : (tensor<?x8xf32>, tensor<4x8xf16>) -> tensor<?x4xf32>
  // CHECK: %[[R:.*]] = gemma.rope %[[YQ]] {head_dim = 4 : i64, theta = 1.000000e+04 : f32} : tensor<?x8xf32>
  %r = gemma.rope %yq {head_dim = 4, theta = 10000.0 : f32} : tensor<?x8xf32>
  // CHECK: %[[RK:.*]] = gemma.rope %[[K]] {head_dim = 4 : i64, rope_scale = 8.000000e+00 : f32, theta = 1.000000e+06 : f32} : tensor<?x4xf32>
  %rk = gemma.rope %k {head_dim = 4, theta = 1000000.0 : f32, rope_scale = 8.0 : f32} : tensor<?x4xf32>
  // CHECK: %[[A:.*]] = gemma.attention %[[R]], %[[RK]], %[[K]] {head_dim = 4 : i64, layer = 0 : i64, num_heads = 2 : i64, num_kv_heads = 1 : i64, scale = 5.000000e-01 : f32, softcap = 5.000000e+01 : f32, window = 4 : i64} : (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
  %a = gemma.attention %r, %rk, %k {layer = 0, num_heads = 2, num_kv_heads = 1, head_dim = 4, scale = 0.5 : f32, window = 4, softcap = 50.0 : f32} : (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
  // CHECK: %[[A2:.*]] = gemma.attention %[[R]], %[[RK]], %[[K]] {head_dim = 4 : i64, layer = 1 : i64, num_heads = 2 : i64, num_kv_heads = 1 : i64, scale = 5.000000e-01 : f32} : (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
  %a2 = gemma.attention %r, %rk, %k {layer = 1, num_heads = 2, num_kv_heads = 1, head_dim = 4, scale = 0.5 : f32} : (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
  // CHECK: %[[G:.*]] = gemma.gelu_tanh %[[A]] : tensor<?x8xf32>
  %g = gemma.gelu_tanh %a : tensor<?x8xf32>
  // CHECK: %[[M:.*]] = gemma.mul %[[G]], %[[A2]] : tensor<?x8xf32>
  %m = gemma.mul %g, %a2 : tensor<?x8xf32>
  // CHECK: %[[S:.*]] = gemma.add %[[X]], %[[M]] : tensor<?x8xf32>
  %s = gemma.add %x, %m : tensor<?x8xf32>
  // CHECK: %[[SC:.*]] = gemma.scale %[[S]] {scale = 2.500000e-01 : f32} : tensor<?x8xf32>
  %sc = gemma.scale %s {scale = 0.25 : f32} : tensor<?x8xf32>
  // CHECK: %[[L:.*]] = gemma.lm_head %[[SC]], %[[E]] {rows = 12 : i64} : (tensor<?x8xf32>, tensor<16x8xbf16>) -> tensor<?x12xf32>
  %l = gemma.lm_head %sc, %e {rows = 12} : (tensor<?x8xf32>, tensor<16x8xbf16>) -> tensor<?x12xf32>
  // CHECK: %[[C:.*]] = gemma.softcap %[[L]] {softcap = 3.000000e+01 : f32} : tensor<?x12xf32>
  %c = gemma.softcap %l {softcap = 30.0 : f32} : tensor<?x12xf32>
  // CHECK: return %[[C]] : tensor<?x12xf32>
  return %c : tensor<?x12xf32>
}

// Static shapes (a decode step) print the same way.
// CHECK-LABEL: func.func @static_shapes
// CHECK: gemma.embed {{.*}} : (tensor<1xi32>, tensor<16x8xf32>) -> tensor<1x8xf32>
func.func @static_shapes(%tok: tensor<1xi32>) -> tensor<1x8xf32> {
  %e = gemma.weight "embed" {file = "x.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x8xf32>
  %x = gemma.embed %tok, %e {scale = 1.0 : f32} : (tensor<1xi32>, tensor<16x8xf32>) -> tensor<1x8xf32>
  return %x : tensor<1x8xf32>
}

// The generic form names every op and keeps every attribute.
// GENERIC: "gemma.weight"() <{file = "x.safetensors", name = "embed", offset = 0 : i64, source_dtype = "BF16"}> : () -> tensor<16x8xbf16>
// GENERIC: "gemma.embed"(%{{.*}}, %{{.*}}) <{scale = 2.828125 : f32}>
// GENERIC: "gemma.rms_norm"(%{{.*}}, %{{.*}}) <{eps = 9.99999997E-7 : f32, offset = 1.000000e+00 : f32}>
// GENERIC: "gemma.linear"(%{{.*}}, %{{.*}}) :
// GENERIC: "gemma.rope"(%{{.*}}) <{head_dim = 4 : i64, rope_scale = 1.000000e+00 : f32, theta = 1.000000e+04 : f32}>
// GENERIC: "gemma.attention"(%{{.*}}, %{{.*}}, %{{.*}}) <{head_dim = 4 : i64, layer = 0 : i64, num_heads = 2 : i64, num_kv_heads = 1 : i64, scale = 5.000000e-01 : f32, softcap = 5.000000e+01 : f32, window = 4 : i64}>
// GENERIC: "gemma.gelu_tanh"(%{{.*}}) :
// GENERIC: "gemma.mul"(%{{.*}}, %{{.*}}) :
// GENERIC: "gemma.add"(%{{.*}}, %{{.*}}) :
// GENERIC: "gemma.scale"(%{{.*}}) <{scale = 2.500000e-01 : f32}>
// GENERIC: "gemma.lm_head"(%{{.*}}, %{{.*}}) <{rows = 12 : i64}>
// GENERIC: "gemma.softcap"(%{{.*}}) <{softcap = 3.000000e+01 : f32}>
