//===- GemmaDialect.td - the gemma dialect -------------------*- tablegen -*-===//
//
// Coarse, model-level ops on ranked tensors for the Gemma family. The op set
// and its semantics are documented in docs/ops.md; the bytecode's OpCode enum
// (runtime/schema/module.fbs) names the same ops.
//
//===----------------------------------------------------------------------===//

#ifndef GEMMAC_DIALECT_GEMMA_DIALECT_TD
#define GEMMAC_DIALECT_GEMMA_DIALECT_TD

include "mlir/IR/OpBase.td"

def Gemma_Dialect : Dialect {
  let name = "gemma";
  let cppNamespace = "::gemmac::gemma";
  let summary = "Model-level ops of the Gemma family of language models";
  let description = [{
    Ops on ranked tensors that a Gemma decoder is written in: embedding,
    RMSNorm with Gemma's (1 + w), weight-only linear, RoPE, causal attention
    with a KV cache (GQA/MQA, optional sliding window and soft-cap), GeGLU
    pieces and the tied output head. Weights are `gemma.weight` ops that refer
    to bytes in the checkpoint files; they are never dense attributes.
    Quantized weights have the element types `!gemma.q8c`, `!gemma.q4g32`
    and `!gemma.q4g128`, and `!gemma.q4g32r8` once packed for the CPU
    (GemmaTypes.td).
  }];
  let useDefaultTypePrinterParser = 1;
}

class Gemma_Op<string mnemonic, list<Trait> traits = []>
    : Op<Gemma_Dialect, mnemonic, traits>;

include "GemmaTypes.td"

#endif // GEMMAC_DIALECT_GEMMA_DIALECT_TD
