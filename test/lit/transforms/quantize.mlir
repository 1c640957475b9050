// gemma-quantize: each weight's stored type follows its tensor class and the
// policy (docs/quantization.md). Norms never change; a matrix whose cols do
// not fit the group stays float (quantize-remarks.mlir checks the remark);
// a tied tensor gets one type in every function that names it.
// RUN: gemma-opt %s --gemma-quantize="scheme=q4" 2>/dev/null | FileCheck %s --check-prefix=Q4
// RUN: gemma-opt %s --gemma-quantize="scheme=q4 keep=embed,lm_head=q8" 2>/dev/null | FileCheck %s --check-prefix=KEEPQ8
// RUN: gemma-opt %s --gemma-quantize="scheme=q4 keep=attn" 2>/dev/null | FileCheck %s --check-prefix=KEEPATTN
// RUN: gemma-opt %s --gemma-quantize="scheme=q4 keep=embed=q8;attn dtype=f32" 2>/dev/null | FileCheck %s --check-prefix=GROUPS
// RUN: gemma-opt %s --gemma-quantize="scheme=q8" 2>/dev/null | FileCheck %s --check-prefix=Q8
// RUN: gemma-opt %s --gemma-quantize="scheme=q4z" 2>/dev/null | FileCheck %s --check-prefix=Q4Z
// RUN: gemma-opt %s --gemma-quantize="scheme=f32" | FileCheck %s --check-prefix=F32
// RUN: gemma-opt %s --gemma-quantize | FileCheck %s --check-prefix=NONE
// The result is valid IR that the verifiers accept and that prints back.
// RUN: gemma-opt %s --gemma-quantize="scheme=q4 keep=embed=q8" 2>/dev/null | gemma-opt --gemma-verify-model | FileCheck %s --check-prefix=KEEPQ8

// Q4: module attributes {gemma.quantization = "q4"}
// Q4-LABEL: func.func @prefill
// Q4: gemma.weight "model.embed_tokens.weight" {{.*}} : tensor<64x64x!gemma.q4g32>
// Q4: gemma.weight "model.layers.0.input_layernorm.weight" {{.*}} : tensor<64xf32>
// Q4: gemma.weight "model.layers.0.self_attn.q_proj.weight" {{.*}} : tensor<64x64x!gemma.q4g32>
// Q4: gemma.weight "model.layers.0.self_attn.q_norm.weight" {{.*}} : tensor<16xf32>
// Q4: gemma.weight "model.layers.0.mlp.gate_proj.weight" {{.*}} : tensor<256x64x!gemma.q4g32>
// Q4: gemma.weight "model.layers.0.mlp.down_proj.weight" {{.*}} : tensor<64x256x!gemma.q4g32>
// Q4: gemma.weight "model.layers.1.mlp.down_proj.weight" {{.*}} : tensor<64x48xbf16>
// Q4: gemma.weight "vision_tower.patch_embedding.weight" {{.*}} : tensor<64x64xbf16>
// Q4: gemma.linear {{.*}} : (tensor<?x64xf32>, tensor<64x64x!gemma.q4g32>) -> tensor<?x64xf32>
// Q4: gemma.lm_head {{.*}} : (tensor<?x64xf32>, tensor<64x64x!gemma.q4g32>) -> tensor<?x60xf32>
// Q4-LABEL: func.func @decode
// Q4: gemma.weight "model.embed_tokens.weight" {{.*}} : tensor<64x64x!gemma.q4g32>
// Q4: gemma.lm_head {{.*}} : (tensor<?x64xf32>, tensor<64x64x!gemma.q4g32>) -> tensor<?x60xf32>

// KEEPQ8: module attributes {gemma.quantization = "q4, embed=q8"}
// KEEPQ8-LABEL: func.func @prefill
// KEEPQ8: gemma.weight "model.embed_tokens.weight" {{.*}} : tensor<64x64x!gemma.q8c>
// KEEPQ8: gemma.weight "model.layers.0.self_attn.q_proj.weight" {{.*}} : tensor<64x64x!gemma.q4g32>
// KEEPQ8: gemma.weight "model.layers.0.mlp.gate_proj.weight" {{.*}} : tensor<256x64x!gemma.q4g32>
// KEEPQ8-LABEL: func.func @decode
// KEEPQ8: gemma.weight "model.embed_tokens.weight" {{.*}} : tensor<64x64x!gemma.q8c>

// KEEPATTN: module attributes {gemma.quantization = "q4, attn=bf16"}
// KEEPATTN: gemma.weight "model.embed_tokens.weight" {{.*}} : tensor<64x64x!gemma.q4g32>
// KEEPATTN: gemma.weight "model.layers.0.self_attn.q_proj.weight" {{.*}} : tensor<64x64xbf16>
// KEEPATTN: gemma.weight "model.layers.0.mlp.gate_proj.weight" {{.*}} : tensor<256x64x!gemma.q4g32>

// `dtype` is the float dtype of what stays float, the unfit matrix included.
// GROUPS: module attributes {gemma.quantization = "q4, embed=q8, attn=f32"}
// GROUPS: gemma.weight "model.embed_tokens.weight" {{.*}} : tensor<64x64x!gemma.q8c>
// GROUPS: gemma.weight "model.layers.0.input_layernorm.weight" {{.*}} : tensor<64xf32>
// GROUPS: gemma.weight "model.layers.0.self_attn.q_proj.weight" {{.*}} : tensor<64x64xf32>
// GROUPS: gemma.weight "model.layers.0.mlp.gate_proj.weight" {{.*}} : tensor<256x64x!gemma.q4g32>
// GROUPS: gemma.weight "model.layers.1.mlp.down_proj.weight" {{.*}} : tensor<64x48xf32>
// GROUPS: gemma.weight "vision_tower.patch_embedding.weight" {{.*}} : tensor<64x64xf32>

// q8 has one scale per row, so any number of cols fits.
// Q8: module attributes {gemma.quantization = "q8"}
// Q8: gemma.weight "model.embed_tokens.weight" {{.*}} : tensor<64x64x!gemma.q8c>
// Q8: gemma.weight "model.layers.0.input_layernorm.weight" {{.*}} : tensor<64xf32>
// Q8: gemma.weight "model.layers.1.mlp.down_proj.weight" {{.*}} : tensor<64x48x!gemma.q8c>
// Q8: gemma.weight "vision_tower.patch_embedding.weight" {{.*}} : tensor<64x64xbf16>

// Groups of 128: only down_proj (256 cols) fits.
// Q4Z: module attributes {gemma.quantization = "q4z"}
// Q4Z: gemma.weight "model.embed_tokens.weight" {{.*}} : tensor<64x64xbf16>
// Q4Z: gemma.weight "model.layers.0.self_attn.q_proj.weight" {{.*}} : tensor<64x64xbf16>
// Q4Z: gemma.weight "model.layers.0.mlp.gate_proj.weight" {{.*}} : tensor<256x64xbf16>
// Q4Z: gemma.weight "model.layers.0.mlp.down_proj.weight" {{.*}} : tensor<64x256x!gemma.q4g128>

// A float scheme is a dtype: every weight but the norms takes it.
// F32: module attributes {gemma.quantization = "f32"}
// F32: gemma.weight "model.embed_tokens.weight" {{.*}} : tensor<64x64xf32>
// F32: gemma.weight "model.layers.0.self_attn.q_proj.weight" {{.*}} : tensor<64x64xf32>
// F32: gemma.weight "model.layers.1.mlp.down_proj.weight" {{.*}} : tensor<64x48xf32>

// No scheme: nothing changes; the policy names the float dtype.
// NONE: module attributes {gemma.quantization = "bf16"}
// NONE: gemma.weight "model.embed_tokens.weight" {{.*}} : tensor<64x64xbf16>
// NONE: gemma.weight "model.layers.0.input_layernorm.weight" {{.*}} : tensor<64xf32>
// NONE: gemma.weight "model.layers.0.mlp.down_proj.weight" {{.*}} : tensor<64x256xbf16>

module {
  func.func @prefill(%tok: tensor<?xi32>) -> tensor<?x60xf32> attributes {gemma.max_tokens = 4 : i64} {
    %e = gemma.weight "model.embed_tokens.weight" {file = "m.safetensors", offset = 0 : i64, source_dtype = "BF16"} : tensor<64x64xbf16>
    %n = gemma.weight "model.layers.0.input_layernorm.weight" {file = "m.safetensors", offset = 8192 : i64, source_dtype = "BF16"} : tensor<64xf32>
    %wq = gemma.weight "model.layers.0.self_attn.q_proj.weight" {file = "m.safetensors", offset = 8320 : i64, source_dtype = "BF16"} : tensor<64x64xbf16>
    %qn = gemma.weight "model.layers.0.self_attn.q_norm.weight" {file = "m.safetensors", offset = 16512 : i64, source_dtype = "BF16"} : tensor<16xf32>
    %wg = gemma.weight "model.layers.0.mlp.gate_proj.weight" {file = "m.safetensors", offset = 16544 : i64, source_dtype = "BF16"} : tensor<256x64xbf16>
    %wd = gemma.weight "model.layers.0.mlp.down_proj.weight" {file = "m.safetensors", offset = 49312 : i64, source_dtype = "BF16"} : tensor<64x256xbf16>
    %wo = gemma.weight "model.layers.1.mlp.down_proj.weight" {file = "m.safetensors", offset = 82080 : i64, source_dtype = "BF16"} : tensor<64x48xbf16>
    %wv = gemma.weight "vision_tower.patch_embedding.weight" {file = "m.safetensors", offset = 88224 : i64, source_dtype = "BF16"} : tensor<64x64xbf16>
    %x = gemma.embed %tok, %e {scale = 8.0 : f32} : (tensor<?xi32>, tensor<64x64xbf16>) -> tensor<?x64xf32>
    %h = gemma.rms_norm %x, %n : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %q = gemma.linear %h, %wq : (tensor<?x64xf32>, tensor<64x64xbf16>) -> tensor<?x64xf32>
    %qq = gemma.rms_norm %q, %qn : (tensor<?x64xf32>, tensor<16xf32>) -> tensor<?x64xf32>
    %g = gemma.linear %qq, %wg : (tensor<?x64xf32>, tensor<256x64xbf16>) -> tensor<?x256xf32>
    %d = gemma.linear %g, %wd : (tensor<?x256xf32>, tensor<64x256xbf16>) -> tensor<?x64xf32>
    %l = gemma.lm_head %d, %e {rows = 60} : (tensor<?x64xf32>, tensor<64x64xbf16>) -> tensor<?x60xf32>
    return %l : tensor<?x60xf32>
  }
  func.func @decode(%tok: tensor<?xi32>) -> tensor<?x60xf32> attributes {gemma.max_tokens = 1 : i64} {
    %e = gemma.weight "model.embed_tokens.weight" {file = "m.safetensors", offset = 0 : i64, source_dtype = "BF16"} : tensor<64x64xbf16>
    %x = gemma.embed %tok, %e {scale = 8.0 : f32} : (tensor<?xi32>, tensor<64x64xbf16>) -> tensor<?x64xf32>
    %l = gemma.lm_head %x, %e {rows = 60} : (tensor<?x64xf32>, tensor<64x64xbf16>) -> tensor<?x60xf32>
    return %l : tensor<?x60xf32>
  }
}
