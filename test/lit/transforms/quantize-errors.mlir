// Bad gemma-quantize options are errors that name the option, what was
// found and what was expected; the pass fails and nothing is printed.
// RUN: not gemma-opt %s --gemma-quantize="scheme=q3" 2>&1 | FileCheck %s --check-prefix=SCHEME
// SCHEME: error: gemma-quantize: scheme: expected f32, bf16, f16, q8, q4 or q4z, got 'q3'
// RUN: not gemma-opt %s --gemma-quantize="scheme=q4 keep=embed,vision" 2>&1 | FileCheck %s --check-prefix=CLASS
// CLASS: error: gemma-quantize: keep: unknown tensor class 'vision' in 'embed,vision' (expected embed, lm_head, attn, mlp or norm)
// RUN: not gemma-opt %s --gemma-quantize="scheme=q4 keep=embed=q5" 2>&1 | FileCheck %s --check-prefix=KEEPSCHEME
// KEEPSCHEME: error: gemma-quantize: keep: in 'embed=q5': expected a scheme (f32, bf16, f16, q8, q4 or q4z) after '=', got 'q5'
// RUN: not gemma-opt %s --gemma-quantize="scheme=q4 keep=embed=q8,attn" 2>&1 | FileCheck %s --check-prefix=GROUPSEP
// GROUPSEP: got 'q8,attn' (separate groups with ';')
// RUN: not gemma-opt %s --gemma-quantize="scheme=q4 keep=norm=q8" 2>&1 | FileCheck %s --check-prefix=NORM
// NORM: error: gemma-quantize: keep: 'norm=q8': norm weights are always f32 and never quantized
// RUN: not gemma-opt %s --gemma-quantize="scheme=q4 keep=embed=q8;lm_head" 2>&1 | FileCheck %s --check-prefix=TWICE
// TWICE: error: gemma-quantize: keep: tensor class 'lm_head' is given two different schemes
// RUN: not gemma-opt %s --gemma-quantize="scheme=bf16 dtype=f16" 2>&1 | FileCheck %s --check-prefix=CONTRA
// CONTRA: error: gemma-quantize: scheme 'bf16' contradicts dtype 'f16'
// RUN: not gemma-opt %s --gemma-quantize="dtype=q8" 2>&1 | FileCheck %s --check-prefix=DTYPE
// DTYPE: error: gemma-quantize: dtype: expected f32, bf16 or f16, got 'q8'
// Accepted no-ops: norm at f32, a class named twice with one scheme.
// RUN: gemma-opt %s --gemma-quantize="scheme=q4 keep=norm;norm=f32;embed=q8;lm_head=q8" | FileCheck %s --check-prefix=NOOP
// NOOP: gemma.quantization = "q4, embed=q8"
// NOOP: tensor<16x64x!gemma.q8c>

module {
  func.func @f() {
    %e = gemma.weight "model.embed_tokens.weight" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<16x64xf32>
    return
  }
}
