// RUN: gemma-opt %s --split-input-file --canonicalize | FileCheck %s

// CHECK-LABEL: func.func @scale_by_one
// CHECK-SAME: (%[[X:.*]]: tensor<?x8xf32>)
// CHECK-NEXT: return %[[X]]
func.func @scale_by_one(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %0 = gemma.scale %x {scale = 1.0 : f32} : tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}

// -----

// CHECK-LABEL: func.func @scale_of_scale
// CHECK-SAME: (%[[X:.*]]: tensor<?x8xf32>)
// CHECK-NEXT: %[[S:.*]] = gemma.scale %[[X]] {scale = 1.500000e+00 : f32}
// CHECK-NEXT: return %[[S]]
func.func @scale_of_scale(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %0 = gemma.scale %x {scale = 0.5 : f32} : tensor<?x8xf32>
  %1 = gemma.scale %0 {scale = 3.0 : f32} : tensor<?x8xf32>
  return %1 : tensor<?x8xf32>
}

// -----

// Three in a row collapse to one; a product of exactly 1 disappears.
// CHECK-LABEL: func.func @scale_chain_to_identity
// CHECK-SAME: (%[[X:.*]]: tensor<?x8xf32>)
// CHECK-NEXT: return %[[X]]
func.func @scale_chain_to_identity(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %0 = gemma.scale %x {scale = 2.0 : f32} : tensor<?x8xf32>
  %1 = gemma.scale %0 {scale = 0.25 : f32} : tensor<?x8xf32>
  %2 = gemma.scale %1 {scale = 2.0 : f32} : tensor<?x8xf32>
  return %2 : tensor<?x8xf32>
}

// -----

// The inner scale has another user: the outer one folds onto %x, the inner
// stays for its other use.
// CHECK-LABEL: func.func @inner_has_other_use
// CHECK-SAME: (%[[X:.*]]: tensor<?x8xf32>)
// CHECK-DAG: %[[A:.*]] = gemma.scale %[[X]] {scale = 2.000000e+00 : f32}
// CHECK-DAG: %[[B:.*]] = gemma.scale %[[X]] {scale = 6.000000e+00 : f32}
// CHECK: gemma.add %[[A]], %[[B]]
func.func @inner_has_other_use(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %0 = gemma.scale %x {scale = 2.0 : f32} : tensor<?x8xf32>
  %1 = gemma.scale %0 {scale = 3.0 : f32} : tensor<?x8xf32>
  %2 = gemma.add %0, %1 : tensor<?x8xf32>
  return %2 : tensor<?x8xf32>
}

// -----

// Must NOT fold: a scale other than 1.
// CHECK-LABEL: func.func @no_fold_scale_two
// CHECK-SAME: (%[[X:.*]]: tensor<?x8xf32>)
// CHECK-NEXT: %[[A:.*]] = gemma.scale %[[X]] {scale = 2.000000e+00 : f32}
// CHECK-NEXT: return %[[A]]
func.func @no_fold_scale_two(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %0 = gemma.scale %x {scale = 2.0 : f32} : tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}

// -----

// Must NOT fold: the product of the two scales overflows f32 (1e60), and one
// scale of inf would turn every zero of x into NaN where the pair gives 0.
// CHECK-LABEL: func.func @no_fold_overflow
// CHECK-SAME: (%[[X:.*]]: tensor<?x8xf32>)
// CHECK-NEXT: %[[A:.*]] = gemma.scale %[[X]] {scale = 1.000000e+30 : f32}
// CHECK-NEXT: %[[B:.*]] = gemma.scale %[[A]] {scale = 1.000000e+30 : f32}
// CHECK-NEXT: return %[[B]]
func.func @no_fold_overflow(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %0 = gemma.scale %x {scale = 1.0e30 : f32} : tensor<?x8xf32>
  %1 = gemma.scale %0 {scale = 1.0e30 : f32} : tensor<?x8xf32>
  return %1 : tensor<?x8xf32>
}

// -----

// Must NOT fold: the product underflows to a subnormal f32 (1e-60 -> 0).
// CHECK-LABEL: func.func @no_fold_underflow
// CHECK-SAME: (%[[X:.*]]: tensor<?x8xf32>)
// CHECK-NEXT: %[[A:.*]] = gemma.scale %[[X]] {scale = 1.000000e-30 : f32}
// CHECK-NEXT: %[[B:.*]] = gemma.scale %[[A]] {scale = 1.000000e-30 : f32}
// CHECK-NEXT: return %[[B]]
func.func @no_fold_underflow(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %0 = gemma.scale %x {scale = 1.0e-30 : f32} : tensor<?x8xf32>
  %1 = gemma.scale %0 {scale = 1.0e-30 : f32} : tensor<?x8xf32>
  return %1 : tensor<?x8xf32>
}

// -----

// Canonicalization leaves attention alone even when two are identical: each
// appends to the KV cache.
// CHECK-LABEL: func.func @attention_kept
// CHECK-COUNT-2: gemma.attention
func.func @attention_kept(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %a0 = gemma.attention %x, %x, %x {layer = 0, num_heads = 2, num_kv_heads = 2, head_dim = 4, scale = 0.5 : f32} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  %a1 = gemma.attention %x, %x, %x {layer = 0, num_heads = 2, num_kv_heads = 2, head_dim = 4, scale = 0.5 : f32} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  %s = gemma.add %a0, %a1 : tensor<?x8xf32>
  return %s : tensor<?x8xf32>
}
