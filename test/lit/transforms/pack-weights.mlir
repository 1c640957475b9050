// gemma-pack-weights: with target=cpu a q4g32 weight whose rows are a
// multiple of 8 and whose every use is an op the CPU computes 8 rows at a
// time (linear, lm_head, final_head, qkv_proj, gated_mlp) becomes q4g32r8;
// an embed table (and so the tied head) stays q4g32; target=none changes
// nothing. One decision per weight name, across functions.
// RUN: gemma-opt %s --split-input-file --gemma-pack-weights --verify-diagnostics | FileCheck %s --check-prefix=CPU
// RUN: gemma-opt %s --split-input-file --gemma-pack-weights="target=cpu" --verify-diagnostics | FileCheck %s --check-prefix=CPU
// RUN: gemma-opt %s --split-input-file --gemma-pack-weights="target=none" | FileCheck %s --check-prefix=NONE
// Packing again changes nothing, and the result verifies as a model.
// RUN: gemma-opt %s --split-input-file --gemma-pack-weights 2>/dev/null | gemma-opt --split-input-file --gemma-pack-weights 2>/dev/null | FileCheck %s --check-prefix=CPU

// A whole model: the fused projections and the down projection pack; the
// tied table is read by embed (prefill and decode) and by final_head, and
// stays; so does a q8c weight and a float one.
// CPU-LABEL: func.func @prefill
// CPU: gemma.weight "model.embed_tokens.weight" {{.*}} : tensor<64x64x!gemma.q4g32>
// CPU: gemma.weight "model.layers.0.self_attn.q_proj.weight" {{.*}} : tensor<64x64x!gemma.q4g32r8>
// CPU: gemma.weight "model.layers.0.self_attn.k_proj.weight" {{.*}} : tensor<32x64x!gemma.q4g32r8>
// CPU: gemma.weight "model.layers.0.self_attn.v_proj.weight" {{.*}} : tensor<32x64x!gemma.q4g32r8>
// CPU: gemma.weight "model.layers.0.self_attn.o_proj.weight" {{.*}} : tensor<64x64x!gemma.q8c>
// CPU: gemma.weight "model.layers.0.mlp.gate_proj.weight" {{.*}} : tensor<128x64x!gemma.q4g32r8>
// CPU: gemma.weight "model.layers.0.mlp.up_proj.weight" {{.*}} : tensor<128x64x!gemma.q4g32r8>
// CPU: gemma.weight "model.layers.0.mlp.down_proj.weight" {{.*}} : tensor<64x128x!gemma.q4g32r8>
// CPU: gemma.weight "model.layers.1.mlp.down_proj.weight" {{.*}} : tensor<64x128xbf16>
// CPU: gemma.embed {{.*}} : (tensor<?xi32>, tensor<64x64x!gemma.q4g32>) -> tensor<?x64xf32>
// CPU: gemma.qkv_proj {{.*}} : (tensor<?x64xf32>, tensor<64xf32>, tensor<64x64x!gemma.q4g32r8>, tensor<32x64x!gemma.q4g32r8>, tensor<32x64x!gemma.q4g32r8>)
// CPU: gemma.linear {{.*}} : (tensor<?x64xf32>, tensor<64x64x!gemma.q8c>) -> tensor<?x64xf32>
// CPU: gemma.gated_mlp {{.*}} : (tensor<?x64xf32>, tensor<128x64x!gemma.q4g32r8>, tensor<128x64x!gemma.q4g32r8>) -> tensor<?x128xf32>
// CPU: gemma.linear {{.*}} : (tensor<?x128xf32>, tensor<64x128x!gemma.q4g32r8>) -> tensor<?x64xf32>
// CPU: gemma.final_head {{.*}} : (tensor<?x64xf32>, tensor<64xf32>, tensor<64x64x!gemma.q4g32>) -> tensor<?x60xf32>
// CPU-LABEL: func.func @decode
// CPU: gemma.weight "model.embed_tokens.weight" {{.*}} : tensor<64x64x!gemma.q4g32>
// CPU: gemma.weight "model.layers.0.mlp.down_proj.weight" {{.*}} : tensor<64x128x!gemma.q4g32r8>

// NONE-LABEL: func.func @prefill
// NONE: gemma.weight "model.layers.0.self_attn.q_proj.weight" {{.*}} : tensor<64x64x!gemma.q4g32>
// NONE: gemma.weight "model.layers.0.mlp.gate_proj.weight" {{.*}} : tensor<128x64x!gemma.q4g32>
// NONE: gemma.weight "model.layers.0.mlp.down_proj.weight" {{.*}} : tensor<64x128x!gemma.q4g32>
// NONE-NOT: q4g32r8
module {
  func.func @prefill(%tok: tensor<?xi32>) -> tensor<?x60xf32> attributes {gemma.max_tokens = 4 : i64} {
    %e = gemma.weight "model.embed_tokens.weight" {file = "m.safetensors", offset = 0 : i64, source_dtype = "BF16"} : tensor<64x64x!gemma.q4g32>
    %n = gemma.weight "model.layers.0.input_layernorm.weight" {file = "m.safetensors", offset = 8192 : i64, source_dtype = "BF16"} : tensor<64xf32>
    %wq = gemma.weight "model.layers.0.self_attn.q_proj.weight" {file = "m.safetensors", offset = 8320 : i64, source_dtype = "BF16"} : tensor<64x64x!gemma.q4g32>
    %wk = gemma.weight "model.layers.0.self_attn.k_proj.weight" {file = "m.safetensors", offset = 16512 : i64, source_dtype = "BF16"} : tensor<32x64x!gemma.q4g32>
    %wv = gemma.weight "model.layers.0.self_attn.v_proj.weight" {file = "m.safetensors", offset = 20608 : i64, source_dtype = "BF16"} : tensor<32x64x!gemma.q4g32>
    %wo = gemma.weight "model.layers.0.self_attn.o_proj.weight" {file = "m.safetensors", offset = 24704 : i64, source_dtype = "BF16"} : tensor<64x64x!gemma.q8c>
    %wg = gemma.weight "model.layers.0.mlp.gate_proj.weight" {file = "m.safetensors", offset = 32896 : i64, source_dtype = "BF16"} : tensor<128x64x!gemma.q4g32>
    %wu = gemma.weight "model.layers.0.mlp.up_proj.weight" {file = "m.safetensors", offset = 49280 : i64, source_dtype = "BF16"} : tensor<128x64x!gemma.q4g32>
    %wd = gemma.weight "model.layers.0.mlp.down_proj.weight" {file = "m.safetensors", offset = 65664 : i64, source_dtype = "BF16"} : tensor<64x128x!gemma.q4g32>
    %wf = gemma.weight "model.layers.1.mlp.down_proj.weight" {file = "m.safetensors", offset = 82048 : i64, source_dtype = "BF16"} : tensor<64x128xbf16>
    %x = gemma.embed %tok, %e {scale = 8.0 : f32} : (tensor<?xi32>, tensor<64x64x!gemma.q4g32>) -> tensor<?x64xf32>
    %q, %k, %v = gemma.qkv_proj %x norm(%n) weights(%wq, %wk, %wv)
        {head_dim = 16, num_heads = 4, num_kv_heads = 2, theta = 1.0e4 : f32}
        : (tensor<?x64xf32>, tensor<64xf32>, tensor<64x64x!gemma.q4g32>, tensor<32x64x!gemma.q4g32>, tensor<32x64x!gemma.q4g32>)
        -> (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>)
    %o = gemma.linear %q, %wo : (tensor<?x64xf32>, tensor<64x64x!gemma.q8c>) -> tensor<?x64xf32>
    %m = gemma.gated_mlp %o weights(%wg, %wu) : (tensor<?x64xf32>, tensor<128x64x!gemma.q4g32>, tensor<128x64x!gemma.q4g32>) -> tensor<?x128xf32>
    %d = gemma.linear %m, %wd : (tensor<?x128xf32>, tensor<64x128x!gemma.q4g32>) -> tensor<?x64xf32>
    %d2 = gemma.linear %m, %wf : (tensor<?x128xf32>, tensor<64x128xbf16>) -> tensor<?x64xf32>
    %s = gemma.add %d, %d2 : tensor<?x64xf32>
    %l = gemma.final_head %s, %n, %e {rows = 60} : (tensor<?x64xf32>, tensor<64xf32>, tensor<64x64x!gemma.q4g32>) -> tensor<?x60xf32>
    return %l : tensor<?x60xf32>
  }
  func.func @decode(%tok: tensor<?xi32>) -> tensor<?x60xf32> attributes {gemma.max_tokens = 1 : i64} {
    %e = gemma.weight "model.embed_tokens.weight" {file = "m.safetensors", offset = 0 : i64, source_dtype = "BF16"} : tensor<64x64x!gemma.q4g32>
    %wd = gemma.weight "model.layers.0.mlp.down_proj.weight" {file = "m.safetensors", offset = 65664 : i64, source_dtype = "BF16"} : tensor<64x128x!gemma.q4g32>
    %x = gemma.embed %tok, %e {scale = 8.0 : f32} : (tensor<?xi32>, tensor<64x64x!gemma.q4g32>) -> tensor<?x64xf32>
    %p = gemma.linear %x, %e : (tensor<?x64xf32>, tensor<64x64x!gemma.q4g32>) -> tensor<?x64xf32>
    %l = gemma.lm_head %p, %e {rows = 60} : (tensor<?x64xf32>, tensor<64x64x!gemma.q4g32>) -> tensor<?x60xf32>
    return %l : tensor<?x60xf32>
  }
}

// -----

// An untied head is read only by lm_head: it packs. A table only an embed
// reads stays.
// CPU-LABEL: func.func @untied
// CPU: gemma.weight "model.embed_tokens.weight" {{.*}} : tensor<64x64x!gemma.q4g32>
// CPU: gemma.weight "lm_head.weight" {{.*}} : tensor<64x64x!gemma.q4g32r8>
// CPU: gemma.lm_head {{.*}} : (tensor<?x64xf32>, tensor<64x64x!gemma.q4g32r8>) -> tensor<?x60xf32>
// NONE-LABEL: func.func @untied
// NONE: gemma.weight "lm_head.weight" {{.*}} : tensor<64x64x!gemma.q4g32>
func.func @untied(%tok: tensor<?xi32>) -> tensor<?x60xf32> {
  %e = gemma.weight "model.embed_tokens.weight" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<64x64x!gemma.q4g32>
  %h = gemma.weight "lm_head.weight" {file = "m.safetensors", offset = 16384 : i64, source_dtype = "F32"} : tensor<64x64x!gemma.q4g32>
  %x = gemma.embed %tok, %e {scale = 1.0 : f32} : (tensor<?xi32>, tensor<64x64x!gemma.q4g32>) -> tensor<?x64xf32>
  %l = gemma.lm_head %x, %h {rows = 60} : (tensor<?x64xf32>, tensor<64x64x!gemma.q4g32>) -> tensor<?x60xf32>
  return %l : tensor<?x60xf32>
}

// -----

// Rows that do not fill a group of 8 stay q4g32, with a remark naming the
// weight; the other weight of the function still packs.
// CPU-LABEL: func.func @rows
// CPU: gemma.weight "model.layers.0.self_attn.k_proj.weight" {{.*}} : tensor<12x64x!gemma.q4g32>
// CPU: gemma.weight "model.layers.0.self_attn.q_proj.weight" {{.*}} : tensor<16x64x!gemma.q4g32r8>
// NONE-LABEL: func.func @rows
func.func @rows(%x: tensor<?x64xf32>) -> (tensor<?x12xf32>, tensor<?x16xf32>) {
  // expected-remark @+1 {{weight 'model.layers.0.self_attn.k_proj.weight' has 12 rows, not a multiple of 8 (the rows !gemma.q4g32r8 packs together); it stays '!gemma.q4g32'}}
  %a = gemma.weight "model.layers.0.self_attn.k_proj.weight" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<12x64x!gemma.q4g32>
  %b = gemma.weight "model.layers.0.self_attn.q_proj.weight" {file = "m.safetensors", offset = 4096 : i64, source_dtype = "F32"} : tensor<16x64x!gemma.q4g32>
  %c = gemma.linear %x, %a : (tensor<?x64xf32>, tensor<12x64x!gemma.q4g32>) -> tensor<?x12xf32>
  %d = gemma.linear %x, %b : (tensor<?x64xf32>, tensor<16x64x!gemma.q4g32>) -> tensor<?x16xf32>
  return %c, %d : tensor<?x12xf32>, tensor<?x16xf32>
}

// -----

// The decision is per name: a weight that one function uses only in a
// linear and another in an embed stays q4g32 in both.
// CPU-LABEL: func.func @first
// CPU: gemma.weight "model.layers.0.mlp.up_proj.weight" {{.*}} : tensor<64x64x!gemma.q4g32>
// CPU-LABEL: func.func @second
// CPU: gemma.weight "model.layers.0.mlp.up_proj.weight" {{.*}} : tensor<64x64x!gemma.q4g32>
// NONE-LABEL: func.func @first
func.func @first(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %w = gemma.weight "model.layers.0.mlp.up_proj.weight" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<64x64x!gemma.q4g32>
  %y = gemma.linear %x, %w : (tensor<?x64xf32>, tensor<64x64x!gemma.q4g32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}
func.func @second(%tok: tensor<?xi32>) -> tensor<?x64xf32> {
  %w = gemma.weight "model.layers.0.mlp.up_proj.weight" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<64x64x!gemma.q4g32>
  %y = gemma.embed %tok, %w {scale = 1.0 : f32} : (tensor<?xi32>, tensor<64x64x!gemma.q4g32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Already packed weights, float ones and the other quantized formats are
// left alone.
// CPU-LABEL: func.func @others
// CPU: tensor<8x64x!gemma.q4g32r8>
// CPU: tensor<8x128x!gemma.q4g128>
// CPU: tensor<8x64xf16>
// NONE-LABEL: func.func @others
// NONE: tensor<8x64x!gemma.q4g32r8>
func.func @others(%x: tensor<?x64xf32>, %z: tensor<?x128xf32>) -> (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) {
  %a = gemma.weight "model.layers.0.mlp.gate_proj.weight" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<8x64x!gemma.q4g32r8>
  %b = gemma.weight "model.layers.0.mlp.down_proj.weight" {file = "m.safetensors", offset = 2048 : i64, source_dtype = "F32"} : tensor<8x128x!gemma.q4g128>
  %c = gemma.weight "model.layers.0.mlp.up_proj.weight" {file = "m.safetensors", offset = 8192 : i64, source_dtype = "F32"} : tensor<8x64xf16>
  %ya = gemma.linear %x, %a : (tensor<?x64xf32>, tensor<8x64x!gemma.q4g32r8>) -> tensor<?x8xf32>
  %yb = gemma.linear %z, %b : (tensor<?x128xf32>, tensor<8x128x!gemma.q4g128>) -> tensor<?x8xf32>
  %yc = gemma.linear %x, %c : (tensor<?x64xf32>, tensor<8x64xf16>) -> tensor<?x8xf32>
  return %ya, %yb, %yc : tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>
}
