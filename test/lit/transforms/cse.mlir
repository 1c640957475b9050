// RUN: gemma-opt %s --cse | FileCheck %s

// Identical weights are merged because gemma.weight is Pure, and with them
// the linears that read them; identical attention ops are not, because each
// appends to the KV cache.
// CHECK-LABEL: func.func @weights_merge_attention_does_not
// CHECK-SAME: (%[[X:.*]]: tensor<?x8xf32>)
// CHECK-NEXT: %[[W:.*]] = gemma.weight "w"
// CHECK-NEXT: %[[Q:.*]] = gemma.linear %[[X]], %[[W]]
// CHECK-NEXT: %[[A0:.*]] = gemma.attention %[[Q]], %[[Q]], %[[Q]]
// CHECK-NEXT: %[[A1:.*]] = gemma.attention %[[Q]], %[[Q]], %[[Q]]
// CHECK-NEXT: gemma.add %[[A0]], %[[A1]]
func.func @weights_merge_attention_does_not(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %w0 = gemma.weight "w" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<8x8xf32>
  %w1 = gemma.weight "w" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<8x8xf32>
  %q0 = gemma.linear %x, %w0 : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
  %q1 = gemma.linear %x, %w1 : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
  %a0 = gemma.attention %q0, %q0, %q0 {layer = 0, num_heads = 2, num_kv_heads = 2, head_dim = 4, scale = 0.5 : f32} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  %a1 = gemma.attention %q1, %q1, %q1 {layer = 0, num_heads = 2, num_kv_heads = 2, head_dim = 4, scale = 0.5 : f32} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  %s = gemma.add %a0, %a1 : tensor<?x8xf32>
  return %s : tensor<?x8xf32>
}

// Different names are different weights even at the same bytes.
// CHECK-LABEL: func.func @different_names
// CHECK-COUNT-2: gemma.weight
func.func @different_names() -> (tensor<8xf32>, tensor<8xf32>) {
  %a = gemma.weight "a" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<8xf32>
  %b = gemma.weight "b" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<8xf32>
  return %a, %b : tensor<8xf32>, tensor<8xf32>
}
