//===- GemmaOps.td - ops of the gemma dialect -----------------*- tablegen -*-===//
//
// Each op here has an OpCode of the same name in runtime/schema/module.fbs
// (checked by test/unit/compiler/op_set_test.cc). Semantics: docs/ops.md.
//
//===----------------------------------------------------------------------===//

#ifndef GEMMAC_DIALECT_GEMMA_OPS_TD
#define GEMMAC_DIALECT_GEMMA_OPS_TD

include "GemmaDialect.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/BuiltinAttributes.td"

// Activations are f32; weights f32, bf16, f16 or quantized (GemmaTypes.td;
// their shape rules are checked by verifyWeightLayout in the verifiers).
def Gemma_Activation : RankedTensorOf<[F32]>;
def Gemma_WeightTensor : RankedTensorOf<[F32, BF16, F16, Gemma_Q8CType,
                                         Gemma_Q4G32Type, Gemma_Q4G128Type,
                                         Gemma_Q4G32R8Type]>;
def Gemma_TokenTensor : 1DTensorOf<[I32]>;

// The KV cache is state outside the tensors; attention reads and writes it.
def Gemma_KVCacheResource
    : Resource<"::gemmac::gemma::KVCacheResource">;

def Gemma_WeightOp : Gemma_Op<"weight", [Pure]> {
  let summary = "a weight tensor stored in a checkpoint file";
  let description = [{
    Refers to `name`'s bytes in `file` at byte `offset`, stored as
    `source_dtype` ("F32", "BF16" or "F16", or a GGUF block format: "Q4_0",
    "Q8_0", "Q4_K", "Q5_K", "Q6_K") with the result's shape. The result
    element type is the dtype the module will store it in; the bytecode
    emitter converts when the two differ. The bytes are never copied into the
    IR.

    ```mlir
    %w = gemma.weight "model.layers.0.mlp.up_proj.weight"
           {file = "/ckpt/model.safetensors", offset = 1024 : i64,
            source_dtype = "BF16"} : tensor<256x64xbf16>
    ```
  }];
  let arguments = (ins StrAttr:$name, StrAttr:$file,
                       I64Attr:$offset, StrAttr:$source_dtype);
  let results = (outs Gemma_WeightTensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Gemma_EmbedOp : Gemma_Op<"embed", [Pure]> {
  let summary = "token embedding lookup, scaled";
  let description = [{
    `out[t] = f32(table[tokens[t]]) * scale`. Gemma's `scale` is sqrt(hidden)
    rounded to the table's dtype.
  }];
  let arguments = (ins Gemma_TokenTensor:$tokens, Gemma_WeightTensor:$table,
                       F32Attr:$scale);
  let results = (outs Gemma_Activation:$result);
  let assemblyFormat = [{
    $tokens `,` $table attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Gemma_RmsNormOp : Gemma_Op<"rms_norm", [Pure]> {
  let summary = "RMSNorm with Gemma's (offset + w) weight";
  let description = [{
    Normalizes each group of dim(w) consecutive elements of the last dimension:
    `x * rsqrt(mean(x^2) + eps) * (offset + w)`. A group size equal to
    head_dim is Gemma 3's per-head QK-norm.
  }];
  let arguments = (ins Gemma_Activation:$input, RankedTensorOf<[F32]>:$weight,
                       DefaultValuedAttr<F32Attr, "1.0e-6">:$eps,
                       DefaultValuedAttr<F32Attr, "1.0">:$offset);
  let results = (outs Gemma_Activation:$result);
  let assemblyFormat = [{
    $input `,` $weight attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Gemma_LinearOp : Gemma_Op<"linear", [Pure]> {
  let summary = "weight-only linear layer, y = x w^T";
  let arguments = (ins Gemma_Activation:$input, Gemma_WeightTensor:$weight);
  let results = (outs Gemma_Activation:$result);
  let assemblyFormat = [{
    $input `,` $weight attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Gemma_RopeOp : Gemma_Op<"rope", [Pure, SameOperandsAndResultType]> {
  let summary = "rotary position embedding, split-half pairing";
  let description = [{
    Rotates each head of `head_dim` elements by its token's absolute position
    (the call's first position plus the row index) divided by `rope_scale`.
  }];
  let arguments = (ins Gemma_Activation:$input, I64Attr:$head_dim,
                       F32Attr:$theta,
                       DefaultValuedAttr<F32Attr, "1.0">:$rope_scale);
  let results = (outs Gemma_Activation:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Gemma_AttentionOp : Gemma_Op<"attention", [
    MemoryEffects<[MemRead<Gemma_KVCacheResource>,
                   MemWrite<Gemma_KVCacheResource>]>]> {
  let summary = "causal attention over the layer's KV cache";
  let description = [{
    Appends `key` and `value` to KV cache slot `layer`, then attends each query
    row to the cached keys it may see: causal, and within `window` positions
    when `window` > 0. Grouped-query: `num_heads` query heads share
    `num_kv_heads` KV heads. Scores are scaled by `scale` and soft-capped when
    `softcap` > 0.
  }];
  let arguments = (ins Gemma_Activation:$query, Gemma_Activation:$key,
                       Gemma_Activation:$value, I64Attr:$layer,
                       I64Attr:$num_heads, I64Attr:$num_kv_heads,
                       I64Attr:$head_dim, F32Attr:$scale,
                       DefaultValuedAttr<I64Attr, "0">:$window,
                       DefaultValuedAttr<F32Attr, "0.0">:$softcap);
  let results = (outs Gemma_Activation:$result);
  let assemblyFormat = [{
    $query `,` $key `,` $value attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

class Gemma_UnaryOp<string mnemonic, list<Trait> traits = []>
    : Gemma_Op<mnemonic, !listconcat(traits, [Pure, SameOperandsAndResultType])> {
  let results = (outs Gemma_Activation:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def Gemma_GeluTanhOp : Gemma_UnaryOp<"gelu_tanh"> {
  let summary = "GELU, tanh approximation";
  let arguments = (ins Gemma_Activation:$input);
}

def Gemma_SoftcapOp : Gemma_UnaryOp<"softcap"> {
  let summary = "soft-cap: softcap * tanh(x / softcap)";
  let arguments = (ins Gemma_Activation:$input, F32Attr:$softcap);
  let hasVerifier = 1;
}

def Gemma_ScaleOp : Gemma_UnaryOp<"scale"> {
  let summary = "multiply by a constant";
  let description = [{
    Folds: `scale(x, 1.0)` is `x`; `scale(scale(x, a), b)` is
    `scale(x, a*b)` unless `a*b` overflows or underflows in f32.
  }];
  let arguments = (ins Gemma_Activation:$input, F32Attr:$scale);
  let hasFolder = 1;
}

class Gemma_BinaryOp<string mnemonic>
    : Gemma_Op<mnemonic, [Pure, SameOperandsAndResultType]> {
  let arguments = (ins Gemma_Activation:$lhs, Gemma_Activation:$rhs);
  let results = (outs Gemma_Activation:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def Gemma_MulOp : Gemma_BinaryOp<"mul"> {
  let summary = "elementwise product";
}

def Gemma_AddOp : Gemma_BinaryOp<"add"> {
  let summary = "elementwise sum";
}

def Gemma_LmHeadOp : Gemma_Op<"lm_head", [Pure]> {
  let summary = "tied output head: logits for the first `rows` table rows";
  let arguments = (ins Gemma_Activation:$input, Gemma_WeightTensor:$table,
                       I64Attr:$rows);
  let results = (outs Gemma_Activation:$result);
  let assemblyFormat = [{
    $input `,` $table attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Fused ops, written by the fusion passes (compiler/transforms/Fuse*.cpp).
// Each is defined as the chain of ops above that it replaces (docs/ops.md,
// "Fused ops"); optional operands are left out of the bytecode as id
// 0xFFFFFFFF, so every fused op keeps fixed operand positions.
//===----------------------------------------------------------------------===//

def Gemma_NormWeight : RankedTensorOf<[F32]>;

def Gemma_AddRmsNormOp : Gemma_Op<"add_rms_norm", [Pure]> {
  let summary = "residual add and the RMSNorm that follows it";
  let description = [{
    `sum = lhs + rhs`, `normed = rms_norm(sum, weight)` over whole rows
    (dim(weight) is the row width).
  }];
  let arguments = (ins Gemma_Activation:$lhs, Gemma_Activation:$rhs,
                       Gemma_NormWeight:$weight,
                       DefaultValuedAttr<F32Attr, "1.0e-6">:$eps,
                       DefaultValuedAttr<F32Attr, "1.0">:$offset);
  let results = (outs Gemma_Activation:$sum, Gemma_Activation:$normed);
  let assemblyFormat = [{
    $lhs `,` $rhs `,` $weight attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Gemma_QkvProjOp : Gemma_Op<"qkv_proj", [Pure, AttrSizedOperandSegments]> {
  let summary = "q/k/v projections as one linear, QK-norm and RoPE epilogue";
  let description = [{
    `x' = norm ? rms_norm(input, norm) : input`;
    `q = rope(q_norm ? rms_norm(x' wq^T, q_norm) : x' wq^T)`, `k` likewise,
    `v = x' wv^T`. Every norm uses `eps` and `offset`; RoPE uses `head_dim`,
    `theta` and `rope_scale`.

    ```mlir
    %q, %k, %v = gemma.qkv_proj %x norm(%n) weights(%wq, %wk, %wv)
                   q_norm(%qn) k_norm(%kn)
                   {head_dim = 16 : i64, num_heads = 4 : i64,
                    num_kv_heads = 2 : i64, theta = 1.0e+04 : f32} : ...
    ```
  }];
  let arguments = (ins Gemma_Activation:$input,
                       Optional<Gemma_NormWeight>:$norm,
                       Gemma_WeightTensor:$wq, Gemma_WeightTensor:$wk,
                       Gemma_WeightTensor:$wv,
                       Optional<Gemma_NormWeight>:$q_norm,
                       Optional<Gemma_NormWeight>:$k_norm,
                       I64Attr:$head_dim, I64Attr:$num_heads,
                       I64Attr:$num_kv_heads, F32Attr:$theta,
                       DefaultValuedAttr<F32Attr, "1.0">:$rope_scale,
                       DefaultValuedAttr<F32Attr, "1.0e-6">:$eps,
                       DefaultValuedAttr<F32Attr, "1.0">:$offset);
  let results = (outs Gemma_Activation:$q, Gemma_Activation:$k,
                      Gemma_Activation:$v);
  let assemblyFormat = [{
    $input (`norm` `(` $norm^ `)`)? `weights` `(` $wq `,` $wk `,` $wv `)`
    (`q_norm` `(` $q_norm^ `)`)? (`k_norm` `(` $k_norm^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Gemma_GatedMlpOp : Gemma_Op<"gated_mlp", [Pure]> {
  let summary = "gate and up projections as one linear, GeGLU epilogue";
  let description = [{
    `x' = norm ? rms_norm(input, norm) : input`;
    `result = gelu_tanh(x' w_gate^T) * (x' w_up^T)`.
  }];
  let arguments = (ins Gemma_Activation:$input,
                       Optional<Gemma_NormWeight>:$norm,
                       Gemma_WeightTensor:$w_gate, Gemma_WeightTensor:$w_up,
                       DefaultValuedAttr<F32Attr, "1.0e-6">:$eps,
                       DefaultValuedAttr<F32Attr, "1.0">:$offset);
  let results = (outs Gemma_Activation:$result);
  let assemblyFormat = [{
    $input (`norm` `(` $norm^ `)`)? `weights` `(` $w_gate `,` $w_up `)`
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Gemma_FinalHeadOp : Gemma_Op<"final_head", [Pure]> {
  let summary = "final RMSNorm, tied output head and final soft-cap";
  let description = [{
    `y = rms_norm(input, norm) @ table[:rows]^T`, soft-capped when
    `softcap` > 0. A result of one row (`tensor<1xRxf32>`) holds only the
    last position's logits.
  }];
  let arguments = (ins Gemma_Activation:$input, Gemma_NormWeight:$norm,
                       Gemma_WeightTensor:$table, I64Attr:$rows,
                       DefaultValuedAttr<F32Attr, "1.0e-6">:$eps,
                       DefaultValuedAttr<F32Attr, "1.0">:$offset,
                       DefaultValuedAttr<F32Attr, "0.0">:$softcap);
  let results = (outs Gemma_Activation:$result);
  let assemblyFormat = [{
    $input `,` $norm `,` $table attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

#endif // GEMMAC_DIALECT_GEMMA_OPS_TD
