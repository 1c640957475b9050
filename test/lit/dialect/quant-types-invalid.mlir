// The shape rules of the quantized weight types (verifyWeightLayout in
// compiler/dialect/GemmaTypes.cpp, called by the weight, embed, linear and
// lm_head verifiers), and where the types may not appear at all.
// RUN: gemma-opt %s --split-input-file --verify-diagnostics

func.func @q4g32_cols() {
  // expected-error @+1 {{'gemma.weight' op result 'tensor<16x48x!gemma.q4g32>' has 48 cols, which is not a multiple of 32 (the group size of '!gemma.q4g32')}}
  %w = gemma.weight "w" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x48x!gemma.q4g32>
  return
}

// -----

func.func @q4g128_cols() {
  // expected-error @+1 {{'gemma.weight' op result 'tensor<16x64x!gemma.q4g128>' has 64 cols, which is not a multiple of 128 (the group size of '!gemma.q4g128')}}
  %w = gemma.weight "w" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x64x!gemma.q4g128>
  return
}

// -----

func.func @rank1() {
  // expected-error @+1 {{'gemma.weight' op result of quantized type '!gemma.q8c' must be a rank-2 [rows, cols] tensor, got 'tensor<64x!gemma.q8c>'}}
  %w = gemma.weight "w" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<64x!gemma.q8c>
  return
}

// -----

func.func @rank3() {
  // expected-error @+1 {{'gemma.weight' op result of quantized type '!gemma.q4g32' must be a rank-2 [rows, cols] tensor, got 'tensor<2x4x64x!gemma.q4g32>'}}
  %w = gemma.weight "w" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<2x4x64x!gemma.q4g32>
  return
}

// -----

func.func @linear_cols(%x: tensor<?x40xf32>, %w: tensor<8x40x!gemma.q4g32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'gemma.linear' op weight 'tensor<8x40x!gemma.q4g32>' has 40 cols, which is not a multiple of 32}}
  %y = gemma.linear %x, %w : (tensor<?x40xf32>, tensor<8x40x!gemma.q4g32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @linear_dynamic(%x: tensor<?x64xf32>, %w: tensor<?x64x!gemma.q4g32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'gemma.linear' op weight of quantized type '!gemma.q4g32' must have a static shape, got 'tensor<?x64x!gemma.q4g32>'}}
  %y = gemma.linear %x, %w : (tensor<?x64xf32>, tensor<?x64x!gemma.q4g32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

func.func @embed_cols(%tok: tensor<?xi32>, %t: tensor<16x64x!gemma.q4g128>) -> tensor<?x64xf32> {
  // expected-error @+1 {{'gemma.embed' op table 'tensor<16x64x!gemma.q4g128>' has 64 cols, which is not a multiple of 128}}
  %x = gemma.embed %tok, %t {scale = 1.0 : f32} : (tensor<?xi32>, tensor<16x64x!gemma.q4g128>) -> tensor<?x64xf32>
  return %x : tensor<?x64xf32>
}

// -----

func.func @lm_head_cols(%x: tensor<?x16xf32>, %t: tensor<8x16x!gemma.q4g32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'gemma.lm_head' op table 'tensor<8x16x!gemma.q4g32>' has 16 cols, which is not a multiple of 32}}
  %l = gemma.lm_head %x, %t {rows = 8} : (tensor<?x16xf32>, tensor<8x16x!gemma.q4g32>) -> tensor<?x8xf32>
  return %l : tensor<?x8xf32>
}

// -----

// Activations are f32: a quantized type is a storage format only.
func.func @activation(%x: tensor<?x64x!gemma.q8c>) -> tensor<?x64x!gemma.q8c> {
  // expected-error @+1 {{'gemma.gelu_tanh' op operand #0 must be ranked tensor of 32-bit float values}}
  %y = gemma.gelu_tanh %x : tensor<?x64x!gemma.q8c>
  return %y : tensor<?x64x!gemma.q8c>
}

// -----

// Norm weights are f32, never quantized.
func.func @norm_weight(%x: tensor<?x64xf32>, %w: tensor<64x!gemma.q8c>) -> tensor<?x64xf32> {
  // expected-error @+1 {{'gemma.rms_norm' op operand #1 must be ranked tensor of 32-bit float values}}
  %y = gemma.rms_norm %x, %w : (tensor<?x64xf32>, tensor<64x!gemma.q8c>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// expected-error @+1 {{unknown  type `q4g64` in dialect `gemma`}}
func.func @unknown(%w: tensor<8x64x!gemma.q4g64>) {
  return
}

// -----

// The types take no parameters.
// expected-error @+1 {{!gemma.q8c takes no parameters}}
func.func @params(%w: tensor<8x64x!gemma.q8c<4>>) {
  return
}
