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

#endif // GEMMAC_TRANSFORMS_PASSES_TD
