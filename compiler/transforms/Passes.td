//===- Passes.td - passes over the gemma dialect --------------*- tablegen -*-===//
//
// The passes gemma-compile runs between import and bytecode emission
// (buildCompilePipeline in Passes.h). Each has its lit tests in
// test/lit/transforms/.
//
//===----------------------------------------------------------------------===//

#ifndef GEMMAC_TRANSFORMS_PASSES_TD
#define GEMMAC_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def GemmaVerifyModel : Pass<"gemma-verify-model", "::mlir::ModuleOp"> {
  let summary = "Check model-level invariants that op verifiers cannot see";
  let description = [{
    Checks what the runtime relies on across ops and functions:
    - `func.func @prefill` and `@decode` exist, each takes exactly one
      `tensor<?xi32>` (the tokens) and returns one rank-2 f32 tensor (logits);
    - each carries `gemma.max_tokens`, an i64 > 0, and decode's is 1;
    - in each function the attention `layer` ids are unique and cover
      0..N-1, and both functions agree on every layer's `num_kv_heads`,
      `head_dim` and `window` (they share one KV cache per layer);
    - every `gemma.weight` of a given `name` has the same type, `file`,
      `offset` and `source_dtype` everywhere in the module (the emitter stores
      each name once).
  }];
}

def GemmaPlanMemory : Pass<"gemma-plan-memory", "::mlir::func::FuncOp"> {
  let summary = "Assign activations to offsets in a reused arena by liveness";
  let description = [{
    Gives every SSA value of the function that is not a `gemma.weight` result
    (the arguments included) a byte range in one activation arena. A value's
    size is the product of its dims, `?` bound to the function's
    `gemma.max_tokens`, times its element size, rounded up to 64 bytes. Its
    live range runs from its defining op (function start for an argument) to
    its last use; values whose ranges overlap never share bytes, so an op's
    result never aliases its operands.

    Placement is greedy first-fit: in program order, each value goes to the
    lowest 64-byte-aligned offset that does not overlap a value already placed
    whose live range overlaps its own.

    Writes `gemma.arena_offset` (i64) on each op producing a planned value and
    as an argument attribute on each argument, and `gemma.arena_size` (bytes
    the plan needs) and `gemma.arena_naive_size` (sum of all slots, without
    reuse) on the function.
  }];
}

//===----------------------------------------------------------------------===//
// Fusion (compiler/transforms/Fuse*.cpp, Fold*.cpp; the `fused` phase).
// Each rewrites a chain of ops into one fused op defined as exactly that
// chain (docs/ops.md, "Fused ops"). A chain whose intermediate values have
// other users, or whose attributes disagree, is left alone.
//===----------------------------------------------------------------------===//

def GemmaFoldEmbedScale : Pass<"gemma-fold-embed-scale", "::mlir::ModuleOp"> {
  let summary = "Fold a scale of an embedding into the embed op where exact";
  let description = [{
    `scale(embed(t, w){scale = a}){scale = b}` becomes
    `embed(t, w){scale = a*b}` when the embed has no other user and a*b is
    exact in f32 (so each element is rounded once either way only when one
    of the two is 1 or a power of two); otherwise the chain is left alone.
  }];
}

def GemmaFuseQkv : Pass<"gemma-fuse-qkv", "::mlir::ModuleOp"> {
  let summary = "Fuse q/k/v projections, QK-norm and RoPE into gemma.qkv_proj";
  let description = [{
    For each `gemma.attention`, when its query is `rope(rms_norm(linear(x,
    wq), qn))` (or `rope(linear(x, wq))`), its key the same with `wk`, `kn`,
    its value `linear(x, wv)` with the same `x`, the two ropes agree on
    head_dim, theta and rope_scale (head_dim equal to the attention's), the
    QK-norms agree on eps and offset and are head_dim wide, and every
    intermediate value has the attention as its only user: replaces the
    chain with one `gemma.qkv_proj`.
  }];
}

def GemmaFuseGatedMlp : Pass<"gemma-fuse-gated-mlp", "::mlir::ModuleOp"> {
  let summary = "Fuse gate/up projections and GeGLU into gemma.gated_mlp";
  let description = [{
    `mul(gelu_tanh(linear(x, wg)), linear(x, wu))` (either operand order of
    the mul) with single-use intermediates becomes `gated_mlp(x, wg, wu)`.
  }];
}

def GemmaFuseAddNorm : Pass<"gemma-fuse-add-norm", "::mlir::ModuleOp"> {
  let summary = "Fuse a residual add and the RMSNorm after it";
  let description = [{
    `h = rms_norm(s, w)` over whole rows, where `s = add(x, y)`, becomes
    `s, h = add_rms_norm(x, y, w)`. The sum keeps its other users (the
    residual stream); none of them may come before the norm, since the fused
    op is placed where the norm was.
  }];
}

def GemmaFuseFinalHead : Pass<"gemma-fuse-final-head", "::mlir::ModuleOp"> {
  let summary = "Fuse the final norm, the tied head and the final soft-cap";
  let description = [{
    `lm_head(rms_norm(x, w), table)` over whole rows, optionally followed by
    `softcap`, becomes `final_head(x, w, table)`. With
    `last-position-logits`, functions whose `gemma.max_tokens` is above 1
    (prefill) return only the last position's logits (`tensor<1xRxf32>`).
  }];
  let options = [
    Option<"lastPositionLogits", "last-position-logits", "bool", "false",
           "prefill returns only the last position's logits">,
  ];
}

def GemmaFoldNormPrologue : Pass<"gemma-fold-norm-prologue", "::mlir::ModuleOp"> {
  let summary = "Fold an RMSNorm into the prologue of the fused linears using it";
  let description = [{
    An `rms_norm` over whole rows whose users are all `gemma.qkv_proj` or
    `gemma.gated_mlp` without a norm becomes their `norm` operand. A
    qkv_proj that already has QK-norms takes the norm only if eps and offset
    agree (the op has one of each). A norm with any other user stays.
  }];
}

//===----------------------------------------------------------------------===//
// Quantization (compiler/transforms/Quantize.cpp; the `quantized` phase).
//===----------------------------------------------------------------------===//

def GemmaQuantize : Pass<"gemma-quantize", "::mlir::ModuleOp"> {
  let summary = "Give every weight its storage type: a float dtype or a "
                "quantized one";
  let description = [{
    Applies the weight policy of docs/quantization.md by changing the result
    type of each `gemma.weight` (every use sees the new type; the bytecode
    emitter converts the bytes). A weight's tensor class comes from its
    name: `embed_tokens` (and `lm_head`, the same tied tensor) is `embed`,
    `q_proj`/`k_proj`/`v_proj`/`o_proj` are `attn`,
    `gate_proj`/`up_proj`/`down_proj` are `mlp`, and a name ending in
    `norm.weight` is `norm`, which is never changed (norms stay f32).

    - `scheme`: f32, bf16, f16 (a float dtype, same as `dtype`), q8
      (`!gemma.q8c`), q4 (`!gemma.q4g32`) or q4z (`!gemma.q4g128`) for every
      class; empty keeps the weights' float dtypes.
    - `keep`: `CLASS[,CLASS...][=SCHEME]`, groups separated by `;`; classes
      embed, lm_head, attn, mlp. Without `=SCHEME` the classes stay at the
      float dtype.
    - `dtype`: the float dtype of the weights that stay float; empty keeps
      each one's own.

    A weight is decided once per name, so every `gemma.weight` of one name
    gets one type. A matrix whose cols do not divide by the group size (32
    for q4, 128 for q4z), or a weight that is not a matrix, stays float with
    a remark naming it. An unknown scheme or class is an error. The policy
    is recorded as the module attribute `gemma.quantization`, e.g.
    `"q4, embed=q8"`, which the emitter writes to Module.quantization.
  }];
  let options = [
    Option<"scheme", "scheme", "std::string", /*default=*/"\"\"",
           "f32|bf16|f16|q8|q4|q4z (default: keep the float dtypes)">,
    Option<"keep", "keep", "std::string", /*default=*/"\"\"",
           "classes to keep float or store otherwise: "
           "CLASS[,CLASS...][=SCHEME], groups separated by ';'">,
    Option<"dtype", "dtype", "std::string", /*default=*/"\"\"",
           "f32|bf16|f16: the dtype of the weights that stay float "
           "(default: their own)">,
  ];
}

//===----------------------------------------------------------------------===//
// Target packing (compiler/transforms/PackWeights.cpp; the `packed` phase).
//===----------------------------------------------------------------------===//

def GemmaPackWeights : Pass<"gemma-pack-weights", "::mlir::ModuleOp"> {
  let summary = "Give quantized weights the layout the target plugin's "
                "kernels read, so loading never repacks";
  let description = [{
    Changes the result type of `gemma.weight` ops to a packed layout of the
    same values (docs/quantization.md, "Packed layouts"); the bytecode
    emitter writes the packed bytes, and the plugin computes from them in
    place.

    - `target=cpu`: a `!gemma.q4g32` weight becomes `!gemma.q4g32r8` (8 rows
      interleaved per 32-column block, what the CPU's 8-row kernels read)
      when its rows are a multiple of 8 and every use of every
      `gemma.weight` of its name is an op whose CPU kernel computes 8 output
      rows at a time: `gemma.linear`, `gemma.lm_head`, `gemma.final_head`,
      `gemma.qkv_proj` or `gemma.gated_mlp`. `gemma.embed` reads one row
      per token, which the packed layout scatters over 8-row runs, so a
      table used by an embed stays `!gemma.q4g32`; with Gemma's tied
      embedding that includes the table the head reads. A weight whose rows
      are not a multiple of 8 stays too, with a remark naming it.
    - `target=none`: nothing changes (the module runs on any plugin that
      reads the unpacked formats).

    Decided once per weight name, as gemma-quantize, so every `gemma.weight`
    of one name keeps one type. Weights already packed, float weights and
    the other quantized formats are left alone. An unknown target is an
    error.
  }];
  let options = [
    Option<"target", "target", "std::string", /*default=*/"\"cpu\"",
           "cpu (pack for the CPU plugin's kernels) or none">,
  ];
}

#endif // GEMMAC_TRANSFORMS_PASSES_TD
