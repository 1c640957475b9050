// RUN: gemma-opt %s --split-input-file --gemma-plan-memory --verify-diagnostics | FileCheck %s

// A chain: tokens (4 x i32 = 16 -> 64 bytes) at 0, then 256-byte activations
// (4 x 16 x f32). Each op's result avoids its live input; %b reuses offset 0
// once the tokens are dead, %c reuses bytes %a held before it died.
// CHECK-LABEL: func.func @chain
// CHECK-SAME: (%{{.*}}: tensor<?xi32> {gemma.arena_offset = 0 : i64})
// CHECK-SAME: gemma.arena_naive_size = 1088 : i64, gemma.arena_size = 576 : i64
// CHECK: gemma.weight "e"
// CHECK-NOT: gemma.arena_offset
// CHECK-SAME: tensor<32x16xf32>
// CHECK: gemma.embed {{.*}}gemma.arena_offset = 64 : i64
// CHECK: gemma.gelu_tanh {{.*}}gemma.arena_offset = 320 : i64
// CHECK: gemma.gelu_tanh {{.*}}gemma.arena_offset = 0 : i64
// CHECK: gemma.gelu_tanh {{.*}}gemma.arena_offset = 256 : i64
func.func @chain(%tok: tensor<?xi32>) -> tensor<?x16xf32>
    attributes {gemma.max_tokens = 4 : i64} {
  %e = gemma.weight "e" {file = "w.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<32x16xf32>
  %x = gemma.embed %tok, %e {scale = 1.0 : f32} : (tensor<?xi32>, tensor<32x16xf32>) -> tensor<?x16xf32>
  %a = gemma.gelu_tanh %x : tensor<?x16xf32>
  %b = gemma.gelu_tanh %a : tensor<?x16xf32>
  %c = gemma.gelu_tanh %b : tensor<?x16xf32>
  return %c : tensor<?x16xf32>
}

// -----

// A residual: %x stays live across %a and %b until the add, so nothing placed
// meanwhile may touch its bytes [64, 192). %b cannot fit in the dead tokens'
// 64 bytes and goes past %a; the add reuses %a's bytes, dead by then.
// Sizes with max_tokens = 2: tokens 8 -> 64, activations 2 x 16 x 4 = 128.
// CHECK-LABEL: func.func @residual
// CHECK-SAME: {gemma.arena_offset = 0 : i64}
// CHECK-SAME: gemma.arena_naive_size = 576 : i64, gemma.arena_size = 448 : i64
// CHECK: gemma.embed {{.*}}gemma.arena_offset = 64 : i64
// CHECK: gemma.scale {{.*}}gemma.arena_offset = 192 : i64
// CHECK: gemma.gelu_tanh {{.*}}gemma.arena_offset = 320 : i64
// CHECK: gemma.add {{.*}}gemma.arena_offset = 192 : i64
func.func @residual(%tok: tensor<?xi32>) -> tensor<?x16xf32>
    attributes {gemma.max_tokens = 2 : i64} {
  %e = gemma.weight "e" {file = "w.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<32x16xf32>
  %x = gemma.embed %tok, %e {scale = 1.0 : f32} : (tensor<?xi32>, tensor<32x16xf32>) -> tensor<?x16xf32>
  %a = gemma.scale %x {scale = 2.0 : f32} : tensor<?x16xf32>
  %b = gemma.gelu_tanh %a : tensor<?x16xf32>
  %y = gemma.add %x, %b : tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Both operands of an op and its result are live at the op: three distinct
// slots even though %q dies there. Static shapes ignore max_tokens.
// CHECK-LABEL: func.func @operands_and_result
// CHECK-SAME: gemma.arena_naive_size = 448 : i64, gemma.arena_size = 448 : i64
// CHECK: gemma.embed {{.*}}gemma.arena_offset = 64 : i64
// CHECK: gemma.scale {{.*}}gemma.arena_offset = 192 : i64
// CHECK: gemma.mul {{.*}}gemma.arena_offset = 320 : i64
func.func @operands_and_result(%tok: tensor<?xi32>) -> tensor<1x32xf32>
    attributes {gemma.max_tokens = 1 : i64} {
  %e = gemma.weight "e" {file = "w.safetensors", offset = 0 : i64, source_dtype = "BF16"} : tensor<8x32xbf16>
  %x = gemma.embed %tok, %e {scale = 1.0 : f32} : (tensor<?xi32>, tensor<8x32xbf16>) -> tensor<1x32xf32>
  %q = gemma.scale %x {scale = 3.0 : f32} : tensor<1x32xf32>
  %m = gemma.mul %x, %q : tensor<1x32xf32>
  return %m : tensor<1x32xf32>
}

// -----

// expected-error @+1 {{gemma-plan-memory needs a positive integer 'gemma.max_tokens' on @no_max_tokens to size the '?' dims}}
func.func @no_max_tokens(%tok: tensor<?xi32>) -> tensor<?xi32> {
  return %tok : tensor<?xi32>
}

// -----

// expected-error @+1 {{gemma-plan-memory needs a positive integer 'gemma.max_tokens' on @zero_max_tokens}}
func.func @zero_max_tokens(%tok: tensor<?xi32>) -> tensor<?xi32>
    attributes {gemma.max_tokens = 0 : i64} {
  return %tok : tensor<?xi32>
}

// -----

// A fused op with two results: each gets its own slot, live from the op on,
// recorded in order in gemma.arena_offsets. max_tokens = 2: tokens 64 bytes,
// activations 2 x 16 x 4 = 128. %x dies at the fused op, so the sum cannot
// take its bytes (a result never aliases an operand) but %n's user can.
// CHECK-LABEL: func.func @two_results
// CHECK: gemma.embed {{.*}}gemma.arena_offset = 64 : i64
// CHECK: gemma.add_rms_norm {{.*}}gemma.arena_offsets = array<i64: 192, 320>
// CHECK: gemma.add {{.*}}gemma.arena_offset = 0 : i64
func.func @two_results(%tok: tensor<?xi32>) -> tensor<?x16xf32>
    attributes {gemma.max_tokens = 2 : i64} {
  %e = gemma.weight "e" {file = "w.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<32x16xf32>
  %w = gemma.weight "w" {file = "w.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16xf32>
  %x = gemma.embed %tok, %e {scale = 1.0 : f32} : (tensor<?xi32>, tensor<32x16xf32>) -> tensor<?x16xf32>
  %s, %n = gemma.add_rms_norm %x, %x, %w : (tensor<?x16xf32>, tensor<?x16xf32>, tensor<16xf32>) -> (tensor<?x16xf32>, tensor<?x16xf32>)
  %y = gemma.add %s, %n : tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}
