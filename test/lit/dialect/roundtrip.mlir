// RUN: gemma-opt %s | FileCheck %s
// RUN: gemma-opt %s | gemma-opt | FileCheck %s

// CHECK-LABEL: func.func @layer
func.func @layer(%tok: tensor<?xi32>) -> tensor<?x8xf32> {
  // CHECK: gemma.weight "embed"
  %e = gemma.weight "embed" {file = "x.safetensors", offset = 0 : i64, source_dtype = "BF16"} : tensor<16x8xbf16>
  %n = gemma.weight "norm" {file = "x.safetensors", offset = 256 : i64, source_dtype = "F32"} : tensor<8xf32>
  // CHECK: gemma.embed
  %x = gemma.embed %tok, %e {scale = 2.828125 : f32} : (tensor<?xi32>, tensor<16x8xbf16>) -> tensor<?x8xf32>
  // CHECK: gemma.rms_norm
  %y = gemma.rms_norm %x, %n : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  // CHECK: gemma.rope %{{.*}} {head_dim = 4 : i64
  %r = gemma.rope %y {head_dim = 4, theta = 10000.0 : f32} : tensor<?x8xf32>
  // CHECK: gemma.attention
  %a = gemma.attention %r, %r, %r {layer = 0, num_heads = 2, num_kv_heads = 2, head_dim = 4, scale = 0.5 : f32, window = 4} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  // CHECK: gemma.lm_head
  %l = gemma.lm_head %a, %e {rows = 8} : (tensor<?x8xf32>, tensor<16x8xbf16>) -> tensor<?x8xf32>
  return %l : tensor<?x8xf32>
}
