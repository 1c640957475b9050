// RUN: gemma-opt %s --split-input-file --gemma-fuse-add-norm | FileCheck %s

// The residual keeps flowing (returned) from the fused op's sum.
// CHECK-LABEL: func.func @residual
// CHECK-SAME: (%[[X:.*]]: tensor<?x64xf32>, %[[Y:.*]]: tensor<?x64xf32>, %[[W:.*]]: tensor<64xf32>)
// CHECK-NEXT: %[[S:.*]], %[[H:.*]] = gemma.add_rms_norm %[[X]], %[[Y]], %[[W]] {eps = 9.99999974E-6 : f32} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
// CHECK-NEXT: %[[Z:.*]] = gemma.add %[[S]], %[[H]]
// CHECK-NEXT: return %[[Z]]
func.func @residual(%x: tensor<?x64xf32>, %y: tensor<?x64xf32>, %w: tensor<64xf32>) -> tensor<?x64xf32> {
  %s = gemma.add %x, %y : tensor<?x64xf32>
  %h = gemma.rms_norm %s, %w {eps = 1.0e-5 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %z = gemma.add %s, %h : tensor<?x64xf32>
  return %z : tensor<?x64xf32>
}

// -----

// NOT fused: a per-head norm (QK-norm) is not a row norm.
// CHECK-LABEL: func.func @per_head_norm
// CHECK-NOT: gemma.add_rms_norm
func.func @per_head_norm(%x: tensor<?x64xf32>, %y: tensor<?x64xf32>, %w: tensor<16xf32>) -> tensor<?x64xf32> {
  %s = gemma.add %x, %y : tensor<?x64xf32>
  %h = gemma.rms_norm %s, %w : (tensor<?x64xf32>, tensor<16xf32>) -> tensor<?x64xf32>
  return %h : tensor<?x64xf32>
}

// -----

// NOT fused: the sum is used before the norm, where the fused op would not
// yet exist.
// CHECK-LABEL: func.func @sum_used_before_norm
// CHECK-NOT: gemma.add_rms_norm
func.func @sum_used_before_norm(%x: tensor<?x64xf32>, %y: tensor<?x64xf32>, %w: tensor<64xf32>) -> tensor<?x64xf32> {
  %s = gemma.add %x, %y : tensor<?x64xf32>
  %t = gemma.scale %s {scale = 2.0 : f32} : tensor<?x64xf32>
  %h = gemma.rms_norm %t, %w : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %u = gemma.rms_norm %s, %w : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %z = gemma.add %h, %u : tensor<?x64xf32>
  return %z : tensor<?x64xf32>
}

// -----

// NOT fused: a norm of something other than an add.
// CHECK-LABEL: func.func @no_add
// CHECK-NOT: gemma.add_rms_norm
func.func @no_add(%x: tensor<?x64xf32>, %w: tensor<64xf32>) -> tensor<?x64xf32> {
  %h = gemma.rms_norm %x, %w : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return %h : tensor<?x64xf32>
}
