// The pipeline gemma-compile runs (buildCompilePipeline): verify the model,
// canonicalize, plan memory per function.
// RUN: gemma-opt %s --split-input-file --gemma-compile-pipeline --verify-diagnostics | FileCheck %s

// The scale by 1 folds away before planning, so it gets no slot; prefill
// plans for 4 tokens (tokens 64 B, hidden 128 B, logits 256 B), decode for 1
// (64 B each), where the logits reuse the dead tokens' bytes.
// CHECK-LABEL: func.func @prefill
// CHECK-SAME: {gemma.arena_offset = 0 : i64}
// CHECK-SAME: gemma.arena_naive_size = 448 : i64, gemma.arena_size = 448 : i64
// CHECK-NOT: gemma.scale
// CHECK: gemma.embed {{.*}}gemma.arena_offset = 64 : i64
// CHECK-NOT: gemma.scale
// CHECK: gemma.lm_head {{.*}}gemma.arena_offset = 192 : i64
// CHECK-LABEL: func.func @decode
// CHECK-SAME: gemma.arena_naive_size = 192 : i64, gemma.arena_size = 128 : i64
// CHECK: gemma.embed {{.*}}gemma.arena_offset = 64 : i64
// CHECK: gemma.lm_head {{.*}}gemma.arena_offset = 0 : i64
module {
  func.func @prefill(%tok: tensor<?xi32>) -> tensor<?x16xf32> attributes {gemma.max_tokens = 4 : i64} {
    %e = gemma.weight "embed" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x8xf32>
    %x = gemma.embed %tok, %e {scale = 2.0 : f32} : (tensor<?xi32>, tensor<16x8xf32>) -> tensor<?x8xf32>
    %s = gemma.scale %x {scale = 1.0 : f32} : tensor<?x8xf32>
    %l = gemma.lm_head %s, %e {rows = 16} : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
    return %l : tensor<?x16xf32>
  }
  func.func @decode(%tok: tensor<?xi32>) -> tensor<?x16xf32> attributes {gemma.max_tokens = 1 : i64} {
    %e = gemma.weight "embed" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x8xf32>
    %x = gemma.embed %tok, %e {scale = 2.0 : f32} : (tensor<?xi32>, tensor<16x8xf32>) -> tensor<?x8xf32>
    %l = gemma.lm_head %x, %e {rows = 16} : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
    return %l : tensor<?x16xf32>
  }
}

// -----

// A model the verifier rejects stops the pipeline before planning.
// expected-error @+1 {{model needs a func.func @decode with a body}}
module {
  func.func @prefill(%tok: tensor<?xi32>) -> tensor<?x16xf32> attributes {gemma.max_tokens = 4 : i64} {
    %e = gemma.weight "embed" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x8xf32>
    %l = gemma.embed %tok, %e {scale = 2.0 : f32} : (tensor<?xi32>, tensor<16x8xf32>) -> tensor<?x8xf32>
    %r = gemma.lm_head %l, %e {rows = 16} : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
    return %r : tensor<?x16xf32>
  }
}
