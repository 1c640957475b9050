// RUN: gemma-opt %s --split-input-file --gemma-verify-model --verify-diagnostics | FileCheck %s

// A well-formed model passes unchanged.
// CHECK-LABEL: func.func @prefill
// CHECK-LABEL: func.func @decode
module {
  func.func @prefill(%tok: tensor<?xi32>) -> tensor<?x16xf32> attributes {gemma.max_tokens = 8 : i64} {
    %e = gemma.weight "embed" {file = "m.safetensors", offset = 0 : i64, source_dtype = "BF16"} : tensor<16x8xbf16>
    %x = gemma.embed %tok, %e {scale = 2.828125 : f32} : (tensor<?xi32>, tensor<16x8xbf16>) -> tensor<?x8xf32>
    %a0 = gemma.attention %x, %x, %x {layer = 0, num_heads = 2, num_kv_heads = 2, head_dim = 4, scale = 0.5 : f32, window = 4} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
    %a1 = gemma.attention %a0, %a0, %a0 {layer = 1, num_heads = 2, num_kv_heads = 2, head_dim = 4, scale = 0.5 : f32} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
    %l = gemma.lm_head %a1, %e {rows = 16} : (tensor<?x8xf32>, tensor<16x8xbf16>) -> tensor<?x16xf32>
    return %l : tensor<?x16xf32>
  }
  func.func @decode(%tok: tensor<?xi32>) -> tensor<?x16xf32> attributes {gemma.max_tokens = 1 : i64} {
    %e = gemma.weight "embed" {file = "m.safetensors", offset = 0 : i64, source_dtype = "BF16"} : tensor<16x8xbf16>
    %x = gemma.embed %tok, %e {scale = 2.828125 : f32} : (tensor<?xi32>, tensor<16x8xbf16>) -> tensor<?x8xf32>
    // Layer order in the function does not matter, only the set of ids.
    %a1 = gemma.attention %x, %x, %x {layer = 1, num_heads = 2, num_kv_heads = 2, head_dim = 4, scale = 0.5 : f32} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
    %a0 = gemma.attention %a1, %a1, %a1 {layer = 0, num_heads = 2, num_kv_heads = 2, head_dim = 4, scale = 0.5 : f32, window = 4} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
    %l = gemma.lm_head %a0, %e {rows = 16} : (tensor<?x8xf32>, tensor<16x8xbf16>) -> tensor<?x16xf32>
    return %l : tensor<?x16xf32>
  }
}

// -----

// expected-error @+1 {{model needs a func.func @decode with a body}}
module {
  func.func @prefill(%tok: tensor<?xi32>) -> tensor<?x4xf32> attributes {gemma.max_tokens = 8 : i64} {
    %e = gemma.weight "embed" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x4xf32>
    %x = gemma.embed %tok, %e {scale = 2.0 : f32} : (tensor<?xi32>, tensor<16x4xf32>) -> tensor<?x4xf32>
    return %x : tensor<?x4xf32>
  }
}

// -----

// expected-error @+2 {{model needs a func.func @prefill with a body}}
// expected-error @+1 {{model needs a func.func @decode with a body}}
module {
  func.func private @prefill(%tok: tensor<?xi32>) -> tensor<?x4xf32>
}

// -----

module {
  // expected-error @+1 {{@prefill must take exactly one tensor<?xi32> (the tokens), got '(tensor<4xi32>) -> tensor<?x4xf32>'}}
  func.func @prefill(%tok: tensor<4xi32>) -> tensor<?x4xf32> attributes {gemma.max_tokens = 8 : i64} {
    %e = gemma.weight "embed" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x4xf32>
    %x = gemma.embed %tok, %e {scale = 2.0 : f32} : (tensor<4xi32>, tensor<16x4xf32>) -> tensor<?x4xf32>
    return %x : tensor<?x4xf32>
  }
  // expected-error @+1 {{@decode must take exactly one tensor<?xi32> (the tokens), got '(tensor<?xi32>, tensor<?xi32>) -> tensor<?x4xf32>'}}
  func.func @decode(%tok: tensor<?xi32>, %extra: tensor<?xi32>) -> tensor<?x4xf32> attributes {gemma.max_tokens = 1 : i64} {
    %e = gemma.weight "embed" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x4xf32>
    %x = gemma.embed %tok, %e {scale = 2.0 : f32} : (tensor<?xi32>, tensor<16x4xf32>) -> tensor<?x4xf32>
    return %x : tensor<?x4xf32>
  }
}

// -----

module {
  // expected-error @+1 {{@prefill must return one rank-2 f32 tensor (the logits), got '(tensor<?xi32>) -> tensor<?xi32>'}}
  func.func @prefill(%tok: tensor<?xi32>) -> tensor<?xi32> attributes {gemma.max_tokens = 8 : i64} {
    return %tok : tensor<?xi32>
  }
  // expected-error @+1 {{@decode must return one rank-2 f32 tensor (the logits), got '(tensor<?xi32>) -> (tensor<?x4xf32>, tensor<?x4xf32>)'}}
  func.func @decode(%tok: tensor<?xi32>) -> (tensor<?x4xf32>, tensor<?x4xf32>) attributes {gemma.max_tokens = 1 : i64} {
    %e = gemma.weight "embed" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x4xf32>
    %x = gemma.embed %tok, %e {scale = 2.0 : f32} : (tensor<?xi32>, tensor<16x4xf32>) -> tensor<?x4xf32>
    return %x, %x : tensor<?x4xf32>, tensor<?x4xf32>
  }
}

// -----

module {
  // expected-error @+1 {{@prefill needs an i64 'gemma.max_tokens' attribute}}
  func.func @prefill(%tok: tensor<?xi32>) -> tensor<?x4xf32> {
    %e = gemma.weight "embed" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x4xf32>
    %x = gemma.embed %tok, %e {scale = 2.0 : f32} : (tensor<?xi32>, tensor<16x4xf32>) -> tensor<?x4xf32>
    return %x : tensor<?x4xf32>
  }
  // expected-error @+1 {{@decode needs an i64 'gemma.max_tokens' attribute}}
  func.func @decode(%tok: tensor<?xi32>) -> tensor<?x4xf32> attributes {gemma.max_tokens = 1 : i32} {
    %e = gemma.weight "embed" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x4xf32>
    %x = gemma.embed %tok, %e {scale = 2.0 : f32} : (tensor<?xi32>, tensor<16x4xf32>) -> tensor<?x4xf32>
    return %x : tensor<?x4xf32>
  }
}

// -----

module {
  // expected-error @+1 {{@prefill 'gemma.max_tokens' must be positive, got 0}}
  func.func @prefill(%tok: tensor<?xi32>) -> tensor<?x4xf32> attributes {gemma.max_tokens = 0 : i64} {
    %e = gemma.weight "embed" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x4xf32>
    %x = gemma.embed %tok, %e {scale = 2.0 : f32} : (tensor<?xi32>, tensor<16x4xf32>) -> tensor<?x4xf32>
    return %x : tensor<?x4xf32>
  }
  // expected-error @+1 {{@decode 'gemma.max_tokens' must be 1, got 4}}
  func.func @decode(%tok: tensor<?xi32>) -> tensor<?x4xf32> attributes {gemma.max_tokens = 4 : i64} {
    %e = gemma.weight "embed" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x4xf32>
    %x = gemma.embed %tok, %e {scale = 2.0 : f32} : (tensor<?xi32>, tensor<16x4xf32>) -> tensor<?x4xf32>
    return %x : tensor<?x4xf32>
  }
}

// -----

module {
  func.func @prefill(%tok: tensor<?xi32>) -> tensor<?x8xf32> attributes {gemma.max_tokens = 8 : i64} {
    %e = gemma.weight "embed" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x8xf32>
    %x = gemma.embed %tok, %e {scale = 2.0 : f32} : (tensor<?xi32>, tensor<16x8xf32>) -> tensor<?x8xf32>
    %wk = gemma.weight "wk" {file = "m.safetensors", offset = 512 : i64, source_dtype = "F32"} : tensor<4x8xf32>
    %k = gemma.linear %x, %wk : (tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<?x4xf32>
    // expected-note @+1 {{first use of layer 0}}
    %a = gemma.attention %x, %k, %k {layer = 0, num_heads = 2, num_kv_heads = 1, head_dim = 4, scale = 0.5 : f32} : (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
    // expected-error @+1 {{attention layer 0 appears twice in @prefill; each layer owns one KV cache}}
    %b = gemma.attention %a, %k, %k {layer = 0, num_heads = 2, num_kv_heads = 1, head_dim = 4, scale = 0.5 : f32} : (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
    return %b : tensor<?x8xf32>
  }
  func.func @decode(%tok: tensor<?xi32>) -> tensor<?x8xf32> attributes {gemma.max_tokens = 1 : i64} {
    %e = gemma.weight "embed" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x8xf32>
    %x = gemma.embed %tok, %e {scale = 2.0 : f32} : (tensor<?xi32>, tensor<16x8xf32>) -> tensor<?x8xf32>
    %wk = gemma.weight "wk" {file = "m.safetensors", offset = 512 : i64, source_dtype = "F32"} : tensor<4x8xf32>
    %k = gemma.linear %x, %wk : (tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<?x4xf32>
    // expected-error @+1 {{attention layer ids in @decode must be 0..0 (there are 1 attention ops), got 2}}
    %a = gemma.attention %x, %k, %k {layer = 2, num_heads = 2, num_kv_heads = 1, head_dim = 4, scale = 0.5 : f32} : (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
    return %a : tensor<?x8xf32>
  }
}

// -----

module {
  func.func @prefill(%tok: tensor<?xi32>) -> tensor<?x8xf32> attributes {gemma.max_tokens = 8 : i64} {
    %e = gemma.weight "embed" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x8xf32>
    %x = gemma.embed %tok, %e {scale = 2.0 : f32} : (tensor<?xi32>, tensor<16x8xf32>) -> tensor<?x8xf32>
    %a = gemma.attention %x, %x, %x {layer = 0, num_heads = 2, num_kv_heads = 2, head_dim = 4, scale = 0.5 : f32} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
    return %a : tensor<?x8xf32>
  }
  // expected-error @+1 {{@decode has 0 attention layers but @prefill has 1}}
  func.func @decode(%tok: tensor<?xi32>) -> tensor<?x8xf32> attributes {gemma.max_tokens = 1 : i64} {
    %e = gemma.weight "embed" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x8xf32>
    %x = gemma.embed %tok, %e {scale = 2.0 : f32} : (tensor<?xi32>, tensor<16x8xf32>) -> tensor<?x8xf32>
    return %x : tensor<?x8xf32>
  }
}

// -----

module {
  func.func @prefill(%tok: tensor<?xi32>) -> tensor<?x8xf32> attributes {gemma.max_tokens = 8 : i64} {
    %e = gemma.weight "embed" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x8xf32>
    %x = gemma.embed %tok, %e {scale = 2.0 : f32} : (tensor<?xi32>, tensor<16x8xf32>) -> tensor<?x8xf32>
    // expected-note @+1 {{@prefill's layer 0}}
    %a = gemma.attention %x, %x, %x {layer = 0, num_heads = 2, num_kv_heads = 2, head_dim = 4, scale = 0.5 : f32, window = 512} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
    return %a : tensor<?x8xf32>
  }
  func.func @decode(%tok: tensor<?xi32>) -> tensor<?x8xf32> attributes {gemma.max_tokens = 1 : i64} {
    %e = gemma.weight "embed" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x8xf32>
    %x = gemma.embed %tok, %e {scale = 2.0 : f32} : (tensor<?xi32>, tensor<16x8xf32>) -> tensor<?x8xf32>
    // expected-error @+1 {{attention layer 0 differs between @prefill and @decode: (num_kv_heads, head_dim, window) = (2, 4, 0) here, (2, 4, 512) in @prefill}}
    %a = gemma.attention %x, %x, %x {layer = 0, num_heads = 2, num_kv_heads = 2, head_dim = 4, scale = 0.5 : f32} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
    return %a : tensor<?x8xf32>
  }
}

// -----

module {
  func.func @prefill(%tok: tensor<?xi32>) -> tensor<?x8xf32> attributes {gemma.max_tokens = 8 : i64} {
    %e = gemma.weight "embed" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x8xf32>
    %x = gemma.embed %tok, %e {scale = 2.0 : f32} : (tensor<?xi32>, tensor<16x8xf32>) -> tensor<?x8xf32>
    %wk = gemma.weight "wk" {file = "m.safetensors", offset = 512 : i64, source_dtype = "F32"} : tensor<4x8xf32>
    %k = gemma.linear %x, %wk : (tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<?x4xf32>
    // expected-note @+1 {{@prefill's layer 0}}
    %a = gemma.attention %x, %k, %k {layer = 0, num_heads = 4, num_kv_heads = 2, head_dim = 2, scale = 0.5 : f32} : (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
    return %a : tensor<?x8xf32>
  }
  func.func @decode(%tok: tensor<?xi32>) -> tensor<?x8xf32> attributes {gemma.max_tokens = 1 : i64} {
    %e = gemma.weight "embed" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x8xf32>
    %x = gemma.embed %tok, %e {scale = 2.0 : f32} : (tensor<?xi32>, tensor<16x8xf32>) -> tensor<?x8xf32>
    %wk = gemma.weight "wk" {file = "m.safetensors", offset = 512 : i64, source_dtype = "F32"} : tensor<4x8xf32>
    %k = gemma.linear %x, %wk : (tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<?x4xf32>
    // expected-error @+1 {{attention layer 0 differs between @prefill and @decode: (num_kv_heads, head_dim, window) = (1, 4, 0) here, (2, 2, 0) in @prefill}}
    %a = gemma.attention %x, %k, %k {layer = 0, num_heads = 2, num_kv_heads = 1, head_dim = 4, scale = 0.5 : f32} : (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
    return %a : tensor<?x8xf32>
  }
}

// -----

module {
  func.func @prefill(%tok: tensor<?xi32>) -> tensor<?x8xf32> attributes {gemma.max_tokens = 8 : i64} {
    // expected-note @+1 {{first use of "embed"}}
    %e = gemma.weight "embed" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x8xf32>
    // expected-note @+1 {{first use of "norm"}}
    %n = gemma.weight "norm" {file = "m.safetensors", offset = 512 : i64, source_dtype = "F32"} : tensor<8xf32>
    // expected-note @+1 {{first use of "final"}}
    %f = gemma.weight "final" {file = "m.safetensors", offset = 544 : i64, source_dtype = "F32"} : tensor<8xf32>
    %x = gemma.embed %tok, %e {scale = 2.0 : f32} : (tensor<?xi32>, tensor<16x8xf32>) -> tensor<?x8xf32>
    %y = gemma.rms_norm %x, %n : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
    %z = gemma.rms_norm %y, %f : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
    // Same name, same everything: fine.
    %e2 = gemma.weight "embed" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x8xf32>
    %l = gemma.lm_head %z, %e2 {rows = 8} : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x8xf32>
    return %l : tensor<?x8xf32>
  }
  func.func @decode(%tok: tensor<?xi32>) -> tensor<?x8xf32> attributes {gemma.max_tokens = 1 : i64} {
    // expected-error @+1 {{weight "embed" differs from its first use: type 'tensor<16x8xbf16>' here, 'tensor<16x8xf32>' there}}
    %e = gemma.weight "embed" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x8xbf16>
    // expected-error @+1 {{weight "norm" differs from its first use: offset 520 here, 512 there}}
    %n = gemma.weight "norm" {file = "m.safetensors", offset = 520 : i64, source_dtype = "F32"} : tensor<8xf32>
    // expected-error @+1 {{weight "final" differs from its first use: file "other.safetensors" here, "m.safetensors" there}}
    %f = gemma.weight "final" {file = "other.safetensors", offset = 544 : i64, source_dtype = "F32"} : tensor<8xf32>
    %x = gemma.embed %tok, %e {scale = 2.0 : f32} : (tensor<?xi32>, tensor<16x8xbf16>) -> tensor<?x8xf32>
    %y = gemma.rms_norm %x, %n : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
    %z = gemma.rms_norm %y, %f : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
    %l = gemma.lm_head %z, %e {rows = 8} : (tensor<?x8xf32>, tensor<16x8xbf16>) -> tensor<?x8xf32>
    return %l : tensor<?x8xf32>
  }
}

// -----

module {
  func.func @prefill(%tok: tensor<?xi32>) -> tensor<?x8xf32> attributes {gemma.max_tokens = 8 : i64} {
    // expected-note @+1 {{first use of "embed"}}
    %e = gemma.weight "embed" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x8xf32>
    %x = gemma.embed %tok, %e {scale = 2.0 : f32} : (tensor<?xi32>, tensor<16x8xf32>) -> tensor<?x8xf32>
    return %x : tensor<?x8xf32>
  }
  func.func @decode(%tok: tensor<?xi32>) -> tensor<?x8xf32> attributes {gemma.max_tokens = 1 : i64} {
    // expected-error @+1 {{weight "embed" differs from its first use: source_dtype "BF16" here, "F32" there}}
    %e = gemma.weight "embed" {file = "m.safetensors", offset = 0 : i64, source_dtype = "BF16"} : tensor<16x8xf32>
    %x = gemma.embed %tok, %e {scale = 2.0 : f32} : (tensor<?xi32>, tensor<16x8xf32>) -> tensor<?x8xf32>
    return %x : tensor<?x8xf32>
  }
}
