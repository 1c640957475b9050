// Every rule of the fused ops' verifiers, one case each.
// RUN: gemma-opt %s --split-input-file --verify-diagnostics

func.func @add_norm_types(%x: tensor<?x64xf32>, %y: tensor<?x32xf32>, %n: tensor<64xf32>) {
  // expected-error @+1 {{operands and results must all have the type 'tensor<?x64xf32>'}}
  %s, %h = gemma.add_rms_norm %x, %y, %n : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  return
}

// -----

func.func @add_norm_weight(%x: tensor<?x64xf32>, %n: tensor<16xf32>) {
  // expected-error @+1 {{weight must be tensor<64xf32>, got 'tensor<16xf32>'}}
  %s, %h = gemma.add_rms_norm %x, %x, %n : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<16xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
  return
}

// -----

func.func @qkv_one_qk_norm(%x: tensor<?x64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %qn: tensor<16xf32>) {
  // expected-error @+1 {{q_norm and k_norm must be given together}}
  %q, %k, %v = gemma.qkv_proj %x weights(%wq, %wk, %wk) q_norm(%qn) {head_dim = 16, num_heads = 4, num_kv_heads = 2, theta = 1.0e4 : f32}
      : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<16xf32>) -> (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>)
  return
}

// -----

func.func @qkv_weight_shape(%x: tensor<?x64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>) {
  // expected-error @+1 {{wk must be 16x64 (out x in features), got 'tensor<32x64xf32>'}}
  %q, %k, %v = gemma.qkv_proj %x weights(%wq, %wk, %wk) {head_dim = 16, num_heads = 4, num_kv_heads = 1, theta = 1.0e4 : f32}
      : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>) -> (tensor<?x64xf32>, tensor<?x16xf32>, tensor<?x16xf32>)
  return
}

// -----

func.func @qkv_odd_head_dim(%x: tensor<?x63xf32>, %w: tensor<63x63xf32>) {
  // expected-error @+1 {{head_dim positive and even}}
  %q, %k, %v = gemma.qkv_proj %x weights(%w, %w, %w) {head_dim = 21, num_heads = 3, num_kv_heads = 3, theta = 1.0e4 : f32}
      : (tensor<?x63xf32>, tensor<63x63xf32>, tensor<63x63xf32>, tensor<63x63xf32>) -> (tensor<?x63xf32>, tensor<?x63xf32>, tensor<?x63xf32>)
  return
}

// -----

func.func @qkv_result(%x: tensor<?x64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>) {
  // expected-error @+1 {{q must be tensor<?x64xf32>, got 'tensor<?x32xf32>'}}
  %q, %k, %v = gemma.qkv_proj %x weights(%wq, %wk, %wk) {head_dim = 16, num_heads = 4, num_kv_heads = 2, theta = 1.0e4 : f32}
      : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>) -> (tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>)
  return
}

// -----

func.func @mlp_up_shape(%x: tensor<?x64xf32>, %wg: tensor<128x64xf32>, %wu: tensor<64x64xf32>) {
  // expected-error @+1 {{w_up must be 128x64 (out x in features), got 'tensor<64x64xf32>'}}
  %m = gemma.gated_mlp %x weights(%wg, %wu) : (tensor<?x64xf32>, tensor<128x64xf32>, tensor<64x64xf32>) -> tensor<?x128xf32>
  return
}

// -----

func.func @mlp_norm(%x: tensor<?x64xf32>, %n: tensor<32xf32>, %w: tensor<128x64xf32>) {
  // expected-error @+1 {{norm must be tensor<64xf32>, got 'tensor<32xf32>'}}
  %m = gemma.gated_mlp %x norm(%n) weights(%w, %w) : (tensor<?x64xf32>, tensor<32xf32>, tensor<128x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
  return
}

// -----

func.func @head_rows(%x: tensor<?x64xf32>, %n: tensor<64xf32>, %t: tensor<512x64xf32>) {
  // expected-error @+1 {{rows (600) must be in [1, 512]}}
  %l = gemma.final_head %x, %n, %t {rows = 600} : (tensor<?x64xf32>, tensor<64xf32>, tensor<512x64xf32>) -> tensor<?x600xf32>
  return
}

// -----

func.func @head_out_rows(%x: tensor<8x64xf32>, %n: tensor<64xf32>, %t: tensor<512x64xf32>) {
  // expected-error @+1 {{result rows must equal the input rows, or be 1 (the last position only), got 4}}
  %l = gemma.final_head %x, %n, %t {rows = 512} : (tensor<8x64xf32>, tensor<64xf32>, tensor<512x64xf32>) -> tensor<4x512xf32>
  return
}

// -----

func.func @head_softcap(%x: tensor<?x64xf32>, %n: tensor<64xf32>, %t: tensor<512x64xf32>) {
  // expected-error @+1 {{softcap must be non-negative}}
  %l = gemma.final_head %x, %n, %t {rows = 512, softcap = -1.0 : f32} : (tensor<?x64xf32>, tensor<64xf32>, tensor<512x64xf32>) -> tensor<?x512xf32>
  return
}

// -----

// A quantized weight of a fused op must fill whole groups too.
func.func @mlp_group(%x: tensor<?x48xf32>, %w: tensor<128x48x!gemma.q4g32>) {
  // expected-error @+1 {{w_gate}}
  %m = gemma.gated_mlp %x weights(%w, %w) : (tensor<?x48xf32>, tensor<128x48x!gemma.q4g32>, tensor<128x48x!gemma.q4g32>) -> tensor<?x128xf32>
  return
}
