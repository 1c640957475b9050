// One case per verifier message in compiler/dialect/GemmaOps.cpp.
// RUN: gemma-opt %s --split-input-file --verify-diagnostics

//===----------------------------------------------------------------------===//
// gemma.weight
//===----------------------------------------------------------------------===//

func.func @weight_dtype() -> tensor<4xf32> {
  // expected-error @+1 {{'gemma.weight' op source_dtype must be F32, BF16, F16, Q4_0, Q8_0, Q4_K, Q5_K or Q6_K, got "I8"}}
  %w = gemma.weight "w" {file = "m.safetensors", offset = 0 : i64, source_dtype = "I8"} : tensor<4xf32>
  return %w : tensor<4xf32>
}

// -----

func.func @weight_ggml_block() -> tensor<4x48xf32> {
  // expected-error @+1 {{'gemma.weight' op source_dtype Q4_0 stores blocks of 32 values along the last dimension, but the weight is 'tensor<4x48xf32>'}}
  %w = gemma.weight "w" {file = "m.gguf", offset = 0 : i64, source_dtype = "Q4_0"} : tensor<4x48xf32>
  return %w : tensor<4x48xf32>
}

// -----

func.func @weight_offset() -> tensor<4xf32> {
  // expected-error @+1 {{'gemma.weight' op offset must be non-negative, got -8}}
  %w = gemma.weight "w" {file = "m.safetensors", offset = -8 : i64, source_dtype = "F32"} : tensor<4xf32>
  return %w : tensor<4xf32>
}

// -----

func.func @weight_dynamic() -> tensor<?x4xf32> {
  // expected-error @+1 {{'gemma.weight' op weight shape must be static, got 'tensor<?x4xf32>'}}
  %w = gemma.weight "w" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<?x4xf32>
  return %w : tensor<?x4xf32>
}

// -----

//===----------------------------------------------------------------------===//
// gemma.embed
//===----------------------------------------------------------------------===//

func.func @embed_table_rank(%tok: tensor<?xi32>, %t: tensor<16xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'gemma.embed' op expects table of rank 2, got 'tensor<16xf32>'}}
  %x = gemma.embed %tok, %t {scale = 1.0 : f32} : (tensor<?xi32>, tensor<16xf32>) -> tensor<?x8xf32>
  return %x : tensor<?x8xf32>
}

// -----

func.func @embed_result_rank(%tok: tensor<?xi32>, %t: tensor<16x8xf32>) -> tensor<?x2x4xf32> {
  // expected-error @+1 {{'gemma.embed' op expects result of rank 2, got 'tensor<?x2x4xf32>'}}
  %x = gemma.embed %tok, %t {scale = 1.0 : f32} : (tensor<?xi32>, tensor<16x8xf32>) -> tensor<?x2x4xf32>
  return %x : tensor<?x2x4xf32>
}

// -----

func.func @embed_rows(%tok: tensor<3xi32>, %t: tensor<16x8xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{'gemma.embed' op result rows (4) must equal the token count (3)}}
  %x = gemma.embed %tok, %t {scale = 1.0 : f32} : (tensor<3xi32>, tensor<16x8xf32>) -> tensor<4x8xf32>
  return %x : tensor<4x8xf32>
}

// -----

func.func @embed_width(%tok: tensor<?xi32>, %t: tensor<16x4xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'gemma.embed' op result width (8) must equal the table width (4)}}
  %x = gemma.embed %tok, %t {scale = 1.0 : f32} : (tensor<?xi32>, tensor<16x4xf32>) -> tensor<?x8xf32>
  return %x : tensor<?x8xf32>
}

// -----

func.func @embed_token_type(%tok: tensor<?xi64>, %t: tensor<16x4xf32>) -> tensor<?x4xf32> {
  // expected-error @+1 {{'gemma.embed' op operand #0 must be 1D tensor of 32-bit signless integer values}}
  %x = gemma.embed %tok, %t {scale = 1.0 : f32} : (tensor<?xi64>, tensor<16x4xf32>) -> tensor<?x4xf32>
  return %x : tensor<?x4xf32>
}

// -----

//===----------------------------------------------------------------------===//
// gemma.rms_norm
//===----------------------------------------------------------------------===//

func.func @rms_norm_result_type(%x: tensor<?x8xf32>, %w: tensor<8xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{'gemma.rms_norm' op result type 'tensor<4x8xf32>' must equal the input type 'tensor<?x8xf32>'}}
  %y = gemma.rms_norm %x, %w : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}

// -----

func.func @rms_norm_weight_rank(%x: tensor<?x8xf32>, %w: tensor<1x8xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'gemma.rms_norm' op expects weight of rank 1, got 'tensor<1x8xf32>'}}
  %y = gemma.rms_norm %x, %w : (tensor<?x8xf32>, tensor<1x8xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @rms_norm_weight_dynamic(%x: tensor<?x8xf32>, %w: tensor<?xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'gemma.rms_norm' op weight size must be static and positive}}
  %y = gemma.rms_norm %x, %w : (tensor<?x8xf32>, tensor<?xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @rms_norm_weight_empty(%x: tensor<?x8xf32>, %w: tensor<0xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'gemma.rms_norm' op weight size must be static and positive}}
  %y = gemma.rms_norm %x, %w : (tensor<?x8xf32>, tensor<0xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @rms_norm_group(%x: tensor<?x8xf32>, %w: tensor<3xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'gemma.rms_norm' op input width 8 is not a multiple of the weight size 3}}
  %y = gemma.rms_norm %x, %w : (tensor<?x8xf32>, tensor<3xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @rms_norm_eps(%x: tensor<?x8xf32>, %w: tensor<8xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'gemma.rms_norm' op eps must be positive}}
  %y = gemma.rms_norm %x, %w {eps = 0.0 : f32} : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

//===----------------------------------------------------------------------===//
// gemma.linear
//===----------------------------------------------------------------------===//

func.func @linear_input_rank(%x: tensor<?x2x8xf32>, %w: tensor<4x8xf32>) -> tensor<?x4xf32> {
  // expected-error @+1 {{'gemma.linear' op expects input of rank 2, got 'tensor<?x2x8xf32>'}}
  %y = gemma.linear %x, %w : (tensor<?x2x8xf32>, tensor<4x8xf32>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// -----

func.func @linear_weight_rank(%x: tensor<?x8xf32>, %w: tensor<32xf32>) -> tensor<?x4xf32> {
  // expected-error @+1 {{'gemma.linear' op expects weight of rank 2, got 'tensor<32xf32>'}}
  %y = gemma.linear %x, %w : (tensor<?x8xf32>, tensor<32xf32>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// -----

func.func @linear_result_rank(%x: tensor<?x8xf32>, %w: tensor<4x8xf32>) -> tensor<?xf32> {
  // expected-error @+1 {{'gemma.linear' op expects result of rank 2, got 'tensor<?xf32>'}}
  %y = gemma.linear %x, %w : (tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<?xf32>
  return %y : tensor<?xf32>
}

// -----

func.func @linear_in_features(%x: tensor<?x8xf32>, %w: tensor<4x6xbf16>) -> tensor<?x4xf32> {
  // expected-error @+1 {{'gemma.linear' op input width 8 must equal the weight's in-features 6}}
  %y = gemma.linear %x, %w : (tensor<?x8xf32>, tensor<4x6xbf16>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// -----

func.func @linear_out_features(%x: tensor<?x8xf32>, %w: tensor<4x8xf32>) -> tensor<?x5xf32> {
  // expected-error @+1 {{'gemma.linear' op result width 5 must equal the weight's out-features 4}}
  %y = gemma.linear %x, %w : (tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<?x5xf32>
  return %y : tensor<?x5xf32>
}

// -----

func.func @linear_rows(%x: tensor<2x8xf32>, %w: tensor<4x8xf32>) -> tensor<3x4xf32> {
  // expected-error @+1 {{'gemma.linear' op result rows must equal the input rows}}
  %y = gemma.linear %x, %w : (tensor<2x8xf32>, tensor<4x8xf32>) -> tensor<3x4xf32>
  return %y : tensor<3x4xf32>
}

// -----

func.func @linear_activation_dtype(%x: tensor<?x8xbf16>, %w: tensor<4x8xf32>) -> tensor<?x4xf32> {
  // expected-error @+1 {{'gemma.linear' op operand #0 must be ranked tensor of 32-bit float values}}
  %y = gemma.linear %x, %w : (tensor<?x8xbf16>, tensor<4x8xf32>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// -----

//===----------------------------------------------------------------------===//
// gemma.rope
//===----------------------------------------------------------------------===//

func.func @rope_rank(%x: tensor<?x2x4xf32>) -> tensor<?x2x4xf32> {
  // expected-error @+1 {{'gemma.rope' op expects input of rank 2, got 'tensor<?x2x4xf32>'}}
  %y = gemma.rope %x {head_dim = 4, theta = 10000.0 : f32} : tensor<?x2x4xf32>
  return %y : tensor<?x2x4xf32>
}

// -----

func.func @rope_head_dim_odd(%x: tensor<?x6xf32>) -> tensor<?x6xf32> {
  // expected-error @+1 {{'gemma.rope' op head_dim must be positive and even, got 3}}
  %y = gemma.rope %x {head_dim = 3, theta = 10000.0 : f32} : tensor<?x6xf32>
  return %y : tensor<?x6xf32>
}

// -----

func.func @rope_head_dim_negative(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'gemma.rope' op head_dim must be positive and even, got -4}}
  %y = gemma.rope %x {head_dim = -4, theta = 10000.0 : f32} : tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @rope_width(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'gemma.rope' op input width 8 is not a multiple of head_dim 6}}
  %y = gemma.rope %x {head_dim = 6, theta = 10000.0 : f32} : tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @rope_theta(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'gemma.rope' op theta must be positive}}
  %y = gemma.rope %x {head_dim = 4, theta = 0.0 : f32} : tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @rope_scale(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'gemma.rope' op rope_scale must be positive}}
  %y = gemma.rope %x {head_dim = 4, theta = 10000.0 : f32, rope_scale = -1.0 : f32} : tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

//===----------------------------------------------------------------------===//
// gemma.attention
//===----------------------------------------------------------------------===//

func.func @attention_heads(%q: tensor<?x8xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'gemma.attention' op num_heads, num_kv_heads and head_dim must be positive}}
  %a = gemma.attention %q, %q, %q {layer = 0, num_heads = 2, num_kv_heads = 0, head_dim = 4, scale = 0.5 : f32} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  return %a : tensor<?x8xf32>
}

// -----

func.func @attention_negative_head_dim(%q: tensor<?x8xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'gemma.attention' op num_heads, num_kv_heads and head_dim must be positive}}
  %a = gemma.attention %q, %q, %q {layer = 0, num_heads = 2, num_kv_heads = 2, head_dim = -4, scale = 0.5 : f32} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  return %a : tensor<?x8xf32>
}

// -----

func.func @attention_gqa(%q: tensor<?x12xf32>, %k: tensor<?x8xf32>) -> tensor<?x12xf32> {
  // expected-error @+1 {{'gemma.attention' op num_heads (3) must be a multiple of num_kv_heads (2)}}
  %a = gemma.attention %q, %k, %k {layer = 0, num_heads = 3, num_kv_heads = 2, head_dim = 4, scale = 0.5 : f32} : (tensor<?x12xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x12xf32>
  return %a : tensor<?x12xf32>
}

// -----

func.func @attention_layer(%q: tensor<?x8xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'gemma.attention' op layer must be non-negative}}
  %a = gemma.attention %q, %q, %q {layer = -1, num_heads = 2, num_kv_heads = 2, head_dim = 4, scale = 0.5 : f32} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  return %a : tensor<?x8xf32>
}

// -----

func.func @attention_window(%q: tensor<?x8xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'gemma.attention' op window must be non-negative}}
  %a = gemma.attention %q, %q, %q {layer = 0, num_heads = 2, num_kv_heads = 2, head_dim = 4, scale = 0.5 : f32, window = -4} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  return %a : tensor<?x8xf32>
}

// -----

func.func @attention_softcap(%q: tensor<?x8xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'gemma.attention' op softcap must be non-negative}}
  %a = gemma.attention %q, %q, %q {layer = 0, num_heads = 2, num_kv_heads = 2, head_dim = 4, scale = 0.5 : f32, softcap = -50.0 : f32} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  return %a : tensor<?x8xf32>
}

// -----

func.func @attention_query_rank(%q: tensor<?x2x4xf32>, %k: tensor<?x8xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'gemma.attention' op expects query of rank 2, got 'tensor<?x2x4xf32>'}}
  %a = gemma.attention %q, %k, %k {layer = 0, num_heads = 2, num_kv_heads = 2, head_dim = 4, scale = 0.5 : f32} : (tensor<?x2x4xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  return %a : tensor<?x8xf32>
}

// -----

func.func @attention_query_width(%q: tensor<?x8xf32>, %k: tensor<?x4xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'gemma.attention' op query width 8 must be 16}}
  %a = gemma.attention %q, %k, %k {layer = 0, num_heads = 4, num_kv_heads = 1, head_dim = 4, scale = 0.5 : f32} : (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
  return %a : tensor<?x8xf32>
}

// -----

func.func @attention_key_width(%q: tensor<?x8xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'gemma.attention' op key width 8 must be 4}}
  %a = gemma.attention %q, %q, %q {layer = 0, num_heads = 2, num_kv_heads = 1, head_dim = 4, scale = 0.5 : f32} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  return %a : tensor<?x8xf32>
}

// -----

func.func @attention_value_width(%q: tensor<?x8xf32>, %k: tensor<?x4xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'gemma.attention' op value width 8 must be 4}}
  %a = gemma.attention %q, %k, %q {layer = 0, num_heads = 2, num_kv_heads = 1, head_dim = 4, scale = 0.5 : f32} : (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  return %a : tensor<?x8xf32>
}

// -----

func.func @attention_result_width(%q: tensor<?x8xf32>, %k: tensor<?x4xf32>) -> tensor<?x4xf32> {
  // expected-error @+1 {{'gemma.attention' op result width 4 must be 8}}
  %a = gemma.attention %q, %k, %k {layer = 0, num_heads = 2, num_kv_heads = 1, head_dim = 4, scale = 0.5 : f32} : (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x4xf32>
  return %a : tensor<?x4xf32>
}

// -----

func.func @attention_rows(%q: tensor<2x8xf32>, %k: tensor<3x8xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'gemma.attention' op query, key, value and result must have the same number of rows, got 2 and 3}}
  %a = gemma.attention %q, %k, %k {layer = 0, num_heads = 2, num_kv_heads = 2, head_dim = 4, scale = 0.5 : f32} : (tensor<2x8xf32>, tensor<3x8xf32>, tensor<3x8xf32>) -> tensor<?x8xf32>
  return %a : tensor<?x8xf32>
}

// -----

func.func @attention_rows_through_dynamic(%q: tensor<?x8xf32>, %k: tensor<2x8xf32>) -> tensor<3x8xf32> {
  // A dynamic query does not hide a clash between key and result.
  // expected-error @+1 {{'gemma.attention' op query, key, value and result must have the same number of rows, got 2 and 3}}
  %a = gemma.attention %q, %k, %k {layer = 0, num_heads = 2, num_kv_heads = 2, head_dim = 4, scale = 0.5 : f32} : (tensor<?x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<3x8xf32>
  return %a : tensor<3x8xf32>
}

// -----

//===----------------------------------------------------------------------===//
// elementwise ops
//===----------------------------------------------------------------------===//

func.func @softcap_positive(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'gemma.softcap' op softcap must be positive}}
  %y = gemma.softcap %x {softcap = 0.0 : f32} : tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @add_same_type(%x: tensor<?x8xf32>, %y: tensor<?x4xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'gemma.add' op requires the same type for all operands and results}}
  %z = "gemma.add"(%x, %y) : (tensor<?x8xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
  return %z : tensor<?x8xf32>
}

// -----

//===----------------------------------------------------------------------===//
// gemma.lm_head
//===----------------------------------------------------------------------===//

func.func @lm_head_input_rank(%x: tensor<8xf32>, %t: tensor<16x8xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'gemma.lm_head' op expects input of rank 2, got 'tensor<8xf32>'}}
  %l = gemma.lm_head %x, %t {rows = 16} : (tensor<8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  return %l : tensor<?x16xf32>
}

// -----

func.func @lm_head_table_rank(%x: tensor<?x8xf32>, %t: tensor<128xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'gemma.lm_head' op expects table of rank 2, got 'tensor<128xf32>'}}
  %l = gemma.lm_head %x, %t {rows = 16} : (tensor<?x8xf32>, tensor<128xf32>) -> tensor<?x16xf32>
  return %l : tensor<?x16xf32>
}

// -----

func.func @lm_head_result_rank(%x: tensor<?x8xf32>, %t: tensor<16x8xf32>) -> tensor<16xf32> {
  // expected-error @+1 {{'gemma.lm_head' op expects result of rank 2, got 'tensor<16xf32>'}}
  %l = gemma.lm_head %x, %t {rows = 16} : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<16xf32>
  return %l : tensor<16xf32>
}

// -----

func.func @lm_head_width(%x: tensor<?x4xf32>, %t: tensor<16x8xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'gemma.lm_head' op input width must equal the table width}}
  %l = gemma.lm_head %x, %t {rows = 16} : (tensor<?x4xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  return %l : tensor<?x16xf32>
}

// -----

func.func @lm_head_rows_too_many(%x: tensor<?x8xf32>, %t: tensor<16x8xf32>) -> tensor<?x17xf32> {
  // expected-error @+1 {{'gemma.lm_head' op rows (17) must be in [1, 16]}}
  %l = gemma.lm_head %x, %t {rows = 17} : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x17xf32>
  return %l : tensor<?x17xf32>
}

// -----

func.func @lm_head_rows_zero(%x: tensor<?x8xf32>, %t: tensor<16x8xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'gemma.lm_head' op rows (0) must be in [1, 16]}}
  %l = gemma.lm_head %x, %t {rows = 0} : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  return %l : tensor<?x16xf32>
}

// -----

func.func @lm_head_result_width(%x: tensor<?x8xf32>, %t: tensor<16x8xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{'gemma.lm_head' op result width 16 must equal rows 12}}
  %l = gemma.lm_head %x, %t {rows = 12} : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  return %l : tensor<?x16xf32>
}
