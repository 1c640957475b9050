// The fused ops print and parse back unchanged, optional operands included.
// RUN: gemma-opt %s | FileCheck %s
// RUN: gemma-opt %s | gemma-opt | FileCheck %s

// CHECK-LABEL: func.func @fused
func.func @fused(%x: tensor<?x64xf32>, %y: tensor<?x64xf32>, %n: tensor<64xf32>,
                 %wq: tensor<64x64xbf16>, %wk: tensor<32x64xbf16>, %wv: tensor<32x64xbf16>,
                 %qn: tensor<16xf32>, %kn: tensor<16xf32>,
                 %wg: tensor<128x64xf16>, %wu: tensor<128x64xf16>, %t: tensor<520x64xf32>) {
  // CHECK: gemma.add_rms_norm %{{.*}}, %{{.*}}, %{{.*}} {eps = 9.99999974E-6 : f32} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  %s, %h = gemma.add_rms_norm %x, %y, %n {eps = 1.0e-5 : f32} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  // CHECK: gemma.qkv_proj %{{.*}} norm(%{{.*}}) weights(%{{.*}}, %{{.*}}, %{{.*}}) q_norm(%{{.*}}) k_norm(%{{.*}}) {head_dim = 16 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, rope_scale = 8.000000e+00 : f32, theta = 1.000000e+06 : f32}
  %q, %k, %v = gemma.qkv_proj %s norm(%n) weights(%wq, %wk, %wv) q_norm(%qn) k_norm(%kn)
      {head_dim = 16, num_heads = 4, num_kv_heads = 2, theta = 1.0e6 : f32, rope_scale = 8.0 : f32}
      : (tensor<?x64xf32>, tensor<64xf32>, tensor<64x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<16xf32>, tensor<16xf32>)
      -> (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>)
  // CHECK: gemma.qkv_proj %{{.*}} weights(%{{.*}}, %{{.*}}, %{{.*}}) {head_dim
  %q2, %k2, %v2 = gemma.qkv_proj %h weights(%wq, %wk, %wv)
      {head_dim = 16, num_heads = 4, num_kv_heads = 2, theta = 1.0e4 : f32}
      : (tensor<?x64xf32>, tensor<64x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>)
      -> (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>)
  // CHECK: gemma.gated_mlp %{{.*}} norm(%{{.*}}) weights(%{{.*}}, %{{.*}}) : (tensor<?x64xf32>, tensor<64xf32>, tensor<128x64xf16>, tensor<128x64xf16>) -> tensor<?x128xf32>
  %m = gemma.gated_mlp %s norm(%n) weights(%wg, %wu) : (tensor<?x64xf32>, tensor<64xf32>, tensor<128x64xf16>, tensor<128x64xf16>) -> tensor<?x128xf32>
  // CHECK: gemma.gated_mlp %{{.*}} weights(%{{.*}}, %{{.*}}) : (tensor<?x64xf32>, tensor<128x64xf16>, tensor<128x64xf16>) -> tensor<?x128xf32>
  %m2 = gemma.gated_mlp %s weights(%wg, %wu) : (tensor<?x64xf32>, tensor<128x64xf16>, tensor<128x64xf16>) -> tensor<?x128xf32>
  // CHECK: gemma.final_head %{{.*}}, %{{.*}}, %{{.*}} {rows = 512 : i64, softcap = 3.000000e+01 : f32} : (tensor<?x64xf32>, tensor<64xf32>, tensor<520x64xf32>) -> tensor<1x512xf32>
  %l = gemma.final_head %s, %n, %t {rows = 512, softcap = 30.0 : f32} : (tensor<?x64xf32>, tensor<64xf32>, tensor<520x64xf32>) -> tensor<1x512xf32>
  return
}
