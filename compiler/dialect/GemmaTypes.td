//===- GemmaTypes.td - quantized weight types -----------------*- tablegen -*-===//
//
// Element types of quantized weight tensors (docs/quantization.md). They are
// storage formats, not arithmetic types: only `gemma.weight` results and the
// weight operands of the ops that read them carry them, always as a rank-2
// `[rows, cols]` tensor whose cols divide by the group size. The bytecode
// emitter maps them to DType Q8C, Q4G32, Q4G128 and Q4G32R8 (the packed
// form gemma-pack-weights gives q4g32 weights for the CPU). Included from
// GemmaDialect.td.
//
//===----------------------------------------------------------------------===//

#ifndef GEMMAC_DIALECT_GEMMA_TYPES_TD
#define GEMMAC_DIALECT_GEMMA_TYPES_TD

include "mlir/IR/AttrTypeBase.td"

class Gemma_QuantType<string name, string typeMnemonic, string brief>
    : TypeDef<Gemma_Dialect, name> {
  let mnemonic = typeMnemonic;
  let summary = brief;
  // Parameterless; the custom parser refuses `!gemma.q8c<...>`, which the
  // generated one would accept and silently drop.
  let hasCustomAssemblyFormat = 1;
}

def Gemma_Q8CType : Gemma_QuantType<"Q8C", "q8c",
    "int8 weight with one f32 scale per row"> {
  let description = [{
    `w = q * scale[row]`, symmetric, `scale = max|w_row| / 127`. Any number
    of cols. Stored as `int8 q[rows][cols]` then `f32 scale[rows]`.
  }];
}

def Gemma_Q4G32Type : Gemma_QuantType<"Q4G32", "q4g32",
    "int4 weight in symmetric groups of 32 (GGUF Q4_0 blocks)"> {
  let description = [{
    Per row, cols/32 blocks of an f16 scale `d` and 16 bytes of nibbles;
    `w = (nibble - 8) * d`. cols must be a multiple of 32.
  }];
}

def Gemma_Q4G128Type : Gemma_QuantType<"Q4G128", "q4g128",
    "int4 weight in groups of 128 with an f16 scale and minimum"> {
  let description = [{
    Per row, cols/128 blocks of an f16 scale `d`, an f16 minimum `m` and 64
    bytes of nibbles; `w = nibble * d + m`. cols must be a multiple of 128.
  }];
}

def Gemma_Q4G32R8Type : Gemma_QuantType<"Q4G32R8", "q4g32r8",
    "q4g32 packed in groups of 8 rows for the CPU's 8-row kernels"> {
  let description = [{
    The values of `!gemma.q4g32`, stored with each group of 8 rows
    interleaved per 32-column block: the 8 rows' f16 scales, then their 8
    arrays of 16 nibble bytes (144 bytes per block of 8 rows). Only
    `gemma-pack-weights` produces it (docs/quantization.md, "Packed
    layouts"). cols must be a multiple of 32 and rows a multiple of 8.
  }];
}

#endif // GEMMAC_DIALECT_GEMMA_TYPES_TD
