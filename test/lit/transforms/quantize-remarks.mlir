// What gemma-quantize cannot store as asked stays float, with a remark
// naming the tensor; the compile goes on.
// RUN: gemma-opt %s --split-input-file --gemma-quantize="scheme=q4" --verify-diagnostics | FileCheck %s

// CHECK-LABEL: func.func @cols
// CHECK: gemma.weight "model.layers.0.mlp.down_proj.weight" {{.*}} : tensor<8x40xf16>
// CHECK: gemma.weight "model.layers.0.self_attn.o_proj.weight" {{.*}} : tensor<8x64x!gemma.q4g32>
// CHECK: gemma.linear {{.*}} : (tensor<?x40xf32>, tensor<8x40xf16>) -> tensor<?x8xf32>
func.func @cols(%x: tensor<?x40xf32>, %y: tensor<?x64xf32>) -> (tensor<?x8xf32>, tensor<?x8xf32>) {
  // expected-remark @+1 {{weight 'model.layers.0.mlp.down_proj.weight' has 40 cols, not a multiple of 32 (the group size of q4); it stays 'f16'}}
  %a = gemma.weight "model.layers.0.mlp.down_proj.weight" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F16"} : tensor<8x40xf16>
  %b = gemma.weight "model.layers.0.self_attn.o_proj.weight" {file = "m.safetensors", offset = 640 : i64, source_dtype = "F16"} : tensor<8x64xf16>
  %c = gemma.linear %x, %a : (tensor<?x40xf32>, tensor<8x40xf16>) -> tensor<?x8xf32>
  %d = gemma.linear %y, %b : (tensor<?x64xf32>, tensor<8x64xf16>) -> tensor<?x8xf32>
  return %c, %d : tensor<?x8xf32>, tensor<?x8xf32>
}

// -----

// CHECK-LABEL: func.func @not_a_matrix
// CHECK: gemma.weight "model.layers.0.self_attn.q_proj.bias" {{.*}} : tensor<64xbf16>
func.func @not_a_matrix() {
  // expected-remark @+1 {{weight 'model.layers.0.self_attn.q_proj.bias' of type 'tensor<64xbf16>' is not a [rows, cols] matrix; it stays 'bf16' instead of q4}}
  %a = gemma.weight "model.layers.0.self_attn.q_proj.bias" {file = "m.safetensors", offset = 0 : i64, source_dtype = "BF16"} : tensor<64xbf16>
  return
}

// -----

// CHECK-LABEL: func.func @no_class
// CHECK: gemma.weight "multi_modal_projector.mm_input_projection_weight" {{.*}} : tensor<64x64xbf16>
func.func @no_class() {
  // expected-remark @+1 {{weight 'multi_modal_projector.mm_input_projection_weight' has no tensor class (embed, attn, mlp, norm); it stays 'bf16'}}
  %a = gemma.weight "multi_modal_projector.mm_input_projection_weight" {file = "m.safetensors", offset = 0 : i64, source_dtype = "BF16"} : tensor<64x64xbf16>
  return
}
