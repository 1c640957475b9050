// RUN: gemma-opt %s --split-input-file --gemma-fold-norm-prologue | FileCheck %s

// CHECK-LABEL: func.func @into_qkv
// CHECK-SAME: (%[[X:.*]]: tensor<?x64xf32>, %[[N:.*]]: tensor<64xf32>,
// CHECK-NEXT: gemma.qkv_proj %[[X]] norm(%[[N]]) weights(
func.func @into_qkv(%x: tensor<?x64xf32>, %n: tensor<64xf32>, %wq: tensor<64x64xf32>,
                    %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %qn: tensor<16xf32>, %kn: tensor<16xf32>)
    -> (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>) {
  %h = gemma.rms_norm %x, %n : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %q, %k, %v = gemma.qkv_proj %h weights(%wq, %wk, %wv) q_norm(%qn) k_norm(%kn) {head_dim = 16, num_heads = 4, num_kv_heads = 2, theta = 1.0e4 : f32}
    : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<16xf32>, tensor<16xf32>)
    -> (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>)
  return %q, %k, %v : tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>
}

// -----

// A qkv_proj without QK-norm takes the norm's eps and offset; a norm used by
// two fused ops is folded into both.
// CHECK-LABEL: func.func @two_users
// CHECK-SAME: (%[[X:.*]]: tensor<?x64xf32>, %[[N:.*]]: tensor<64xf32>,
// CHECK-NOT: gemma.rms_norm
// CHECK: gemma.qkv_proj %[[X]] norm(%[[N]]) {{.*}} {eps = 9.99999974E-6 : f32, head_dim = 16 : i64, {{.*}}, offset = 0.000000e+00 : f32,
// CHECK: gemma.gated_mlp %[[X]] norm(%[[N]]) weights({{.*}}) {eps = 9.99999974E-6 : f32, offset = 0.000000e+00 : f32}
func.func @two_users(%x: tensor<?x64xf32>, %n: tensor<64xf32>, %wq: tensor<64x64xf32>,
                     %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wg: tensor<128x64xf32>, %wu: tensor<128x64xf32>)
    -> (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x128xf32>) {
  %h = gemma.rms_norm %x, %n {eps = 1.0e-5 : f32, offset = 0.0 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %q, %k, %v = gemma.qkv_proj %h weights(%wq, %wk, %wv) {head_dim = 16, num_heads = 4, num_kv_heads = 2, theta = 1.0e4 : f32}
    : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>)
    -> (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>)
  %m = gemma.gated_mlp %h weights(%wg, %wu) : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
  return %q, %k, %v, %m : tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x128xf32>
}

// -----

// NOT folded: the normalized rows also go elsewhere.
// CHECK-LABEL: func.func @other_user
// CHECK: gemma.rms_norm
// CHECK: gemma.gated_mlp %{{.*}} weights(
func.func @other_user(%x: tensor<?x64xf32>, %n: tensor<64xf32>, %wg: tensor<128x64xf32>, %wu: tensor<128x64xf32>)
    -> (tensor<?x128xf32>, tensor<?x64xf32>) {
  %h = gemma.rms_norm %x, %n : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %m = gemma.gated_mlp %h weights(%wg, %wu) : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
  return %m, %h : tensor<?x128xf32>, tensor<?x64xf32>
}

// -----

// NOT folded: the QK-norms use another eps than the input norm, and the op
// has one eps for all its norms.
// CHECK-LABEL: func.func @eps_disagree
// CHECK: gemma.rms_norm
// CHECK: gemma.qkv_proj %{{.*}} weights(
func.func @eps_disagree(%x: tensor<?x64xf32>, %n: tensor<64xf32>, %wq: tensor<64x64xf32>,
                        %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %qn: tensor<16xf32>, %kn: tensor<16xf32>)
    -> (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>) {
  %h = gemma.rms_norm %x, %n {eps = 1.0e-5 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %q, %k, %v = gemma.qkv_proj %h weights(%wq, %wk, %wv) q_norm(%qn) k_norm(%kn) {head_dim = 16, num_heads = 4, num_kv_heads = 2, theta = 1.0e4 : f32}
    : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<16xf32>, tensor<16xf32>)
    -> (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>)
  return %q, %k, %v : tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>
}

// -----

// NOT folded: a plain linear has no prologue.
// CHECK-LABEL: func.func @plain_linear
// CHECK: gemma.rms_norm
// CHECK-NEXT: gemma.linear
func.func @plain_linear(%x: tensor<?x64xf32>, %n: tensor<64xf32>, %w: tensor<32x64xf32>) -> tensor<?x32xf32> {
  %h = gemma.rms_norm %x, %n : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %y = gemma.linear %h, %w : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}
