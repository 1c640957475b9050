// RUN: gemma-opt %s --split-input-file --gemma-fuse-qkv | FileCheck %s

// The importer's chain (QK-norm, RoPE) becomes one qkv_proj whose results
// feed the attention; the chain is gone.
// CHECK-LABEL: func.func @with_qk_norm
// CHECK-SAME: (%[[X:.*]]: tensor<?x64xf32>, %[[WQ:.*]]: tensor<64x64xbf16>, %[[WK:.*]]: tensor<32x64xbf16>, %[[WV:.*]]: tensor<32x64xbf16>, %[[QN:.*]]: tensor<16xf32>, %[[KN:.*]]: tensor<16xf32>)
// CHECK-NEXT: %[[Q:.*]], %[[K:.*]], %[[V:.*]] = gemma.qkv_proj %[[X]] weights(%[[WQ]], %[[WK]], %[[WV]]) q_norm(%[[QN]]) k_norm(%[[KN]])
// CHECK-SAME: {head_dim = 16 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, rope_scale = 8.000000e+00 : f32, theta = 1.000000e+06 : f32}
// CHECK-SAME: -> (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>)
// CHECK-NEXT: %[[A:.*]] = gemma.attention %[[Q]], %[[K]], %[[V]]
// CHECK-NEXT: return %[[A]]
func.func @with_qk_norm(%x: tensor<?x64xf32>, %wq: tensor<64x64xbf16>,
                        %wk: tensor<32x64xbf16>, %wv: tensor<32x64xbf16>,
                        %qn: tensor<16xf32>, %kn: tensor<16xf32>) -> tensor<?x64xf32> {
  %q0 = gemma.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xbf16>) -> tensor<?x64xf32>
  %q1 = gemma.rms_norm %q0, %qn {eps = 1.0e-6 : f32} : (tensor<?x64xf32>, tensor<16xf32>) -> tensor<?x64xf32>
  %q = gemma.rope %q1 {head_dim = 16, theta = 1.0e6 : f32, rope_scale = 8.0 : f32} : tensor<?x64xf32>
  %k0 = gemma.linear %x, %wk : (tensor<?x64xf32>, tensor<32x64xbf16>) -> tensor<?x32xf32>
  %k1 = gemma.rms_norm %k0, %kn {eps = 1.0e-6 : f32} : (tensor<?x32xf32>, tensor<16xf32>) -> tensor<?x32xf32>
  %k = gemma.rope %k1 {head_dim = 16, theta = 1.0e6 : f32, rope_scale = 8.0 : f32} : tensor<?x32xf32>
  %v = gemma.linear %x, %wv : (tensor<?x64xf32>, tensor<32x64xbf16>) -> tensor<?x32xf32>
  %a = gemma.attention %q, %k, %v {layer = 0, num_heads = 4, num_kv_heads = 2, head_dim = 16, scale = 0.25 : f32} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x64xf32>
  return %a : tensor<?x64xf32>
}

// -----

// Without QK-norm (Gemma 1 and 2) the fused op has no q_norm/k_norm.
// CHECK-LABEL: func.func @without_qk_norm
// CHECK-NEXT: gemma.qkv_proj %{{.*}} weights(%{{.*}}, %{{.*}}, %{{.*}}) {
// CHECK-NOT: q_norm
// CHECK-NEXT: gemma.attention
func.func @without_qk_norm(%x: tensor<?x64xf32>, %wq: tensor<64x64xf32>,
                           %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>) -> tensor<?x64xf32> {
  %q0 = gemma.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %q = gemma.rope %q0 {head_dim = 16, theta = 1.0e4 : f32} : tensor<?x64xf32>
  %k0 = gemma.linear %x, %wk : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %k = gemma.rope %k0 {head_dim = 16, theta = 1.0e4 : f32} : tensor<?x32xf32>
  %v = gemma.linear %x, %wv : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %a = gemma.attention %q, %k, %v {layer = 0, num_heads = 4, num_kv_heads = 2, head_dim = 16, scale = 0.25 : f32} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x64xf32>
  return %a : tensor<?x64xf32>
}

// -----

// NOT fused: the value projection reads another input.
// CHECK-LABEL: func.func @different_inputs
// CHECK-NOT: gemma.qkv_proj
// CHECK: gemma.attention
func.func @different_inputs(%x: tensor<?x64xf32>, %y: tensor<?x64xf32>, %wq: tensor<64x64xf32>,
                            %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>) -> tensor<?x64xf32> {
  %q0 = gemma.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %q = gemma.rope %q0 {head_dim = 16, theta = 1.0e4 : f32} : tensor<?x64xf32>
  %k0 = gemma.linear %x, %wk : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %k = gemma.rope %k0 {head_dim = 16, theta = 1.0e4 : f32} : tensor<?x32xf32>
  %v = gemma.linear %y, %wv : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %a = gemma.attention %q, %k, %v {layer = 0, num_heads = 4, num_kv_heads = 2, head_dim = 16, scale = 0.25 : f32} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x64xf32>
  return %a : tensor<?x64xf32>
}

// -----

// NOT fused: q and k rotate with different theta.
// CHECK-LABEL: func.func @ropes_disagree
// CHECK-NOT: gemma.qkv_proj
// CHECK: gemma.attention
func.func @ropes_disagree(%x: tensor<?x64xf32>, %wq: tensor<64x64xf32>,
                          %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>) -> tensor<?x64xf32> {
  %q0 = gemma.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %q = gemma.rope %q0 {head_dim = 16, theta = 1.0e4 : f32} : tensor<?x64xf32>
  %k0 = gemma.linear %x, %wk : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %k = gemma.rope %k0 {head_dim = 16, theta = 1.0e6 : f32} : tensor<?x32xf32>
  %v = gemma.linear %x, %wv : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %a = gemma.attention %q, %k, %v {layer = 0, num_heads = 4, num_kv_heads = 2, head_dim = 16, scale = 0.25 : f32} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x64xf32>
  return %a : tensor<?x64xf32>
}

// -----

// NOT fused: the projected key is also returned, so the chain must stay.
// CHECK-LABEL: func.func @intermediate_escapes
// CHECK-NOT: gemma.qkv_proj
// CHECK: gemma.attention
func.func @intermediate_escapes(%x: tensor<?x64xf32>, %wq: tensor<64x64xf32>,
                                %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>) -> (tensor<?x64xf32>, tensor<?x32xf32>) {
  %q0 = gemma.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %q = gemma.rope %q0 {head_dim = 16, theta = 1.0e4 : f32} : tensor<?x64xf32>
  %k0 = gemma.linear %x, %wk : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %k = gemma.rope %k0 {head_dim = 16, theta = 1.0e4 : f32} : tensor<?x32xf32>
  %v = gemma.linear %x, %wv : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %a = gemma.attention %q, %k, %v {layer = 0, num_heads = 4, num_kv_heads = 2, head_dim = 16, scale = 0.25 : f32} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x64xf32>
  return %a, %k0 : tensor<?x64xf32>, tensor<?x32xf32>
}

// -----

// NOT fused: QK-norm on the query only.
// CHECK-LABEL: func.func @norm_on_one_side
// CHECK-NOT: gemma.qkv_proj
// CHECK: gemma.attention
func.func @norm_on_one_side(%x: tensor<?x64xf32>, %wq: tensor<64x64xf32>,
                            %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %qn: tensor<16xf32>) -> tensor<?x64xf32> {
  %q0 = gemma.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %q1 = gemma.rms_norm %q0, %qn : (tensor<?x64xf32>, tensor<16xf32>) -> tensor<?x64xf32>
  %q = gemma.rope %q1 {head_dim = 16, theta = 1.0e4 : f32} : tensor<?x64xf32>
  %k0 = gemma.linear %x, %wk : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %k = gemma.rope %k0 {head_dim = 16, theta = 1.0e4 : f32} : tensor<?x32xf32>
  %v = gemma.linear %x, %wv : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %a = gemma.attention %q, %k, %v {layer = 0, num_heads = 4, num_kv_heads = 2, head_dim = 16, scale = 0.25 : f32} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x64xf32>
  return %a : tensor<?x64xf32>
}
