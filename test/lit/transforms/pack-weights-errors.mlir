// An unknown gemma-pack-weights target is an error naming what was found and
// what is expected, and the pass fails.
// RUN: not gemma-opt %s --gemma-pack-weights="target=gpu" 2>&1 | FileCheck %s --check-prefix=TARGET
// TARGET: error: gemma-pack-weights: unknown target 'gpu'; expected cpu or none
// RUN: not gemma-opt %s --gemma-pack-weights="target=" 2>&1 | FileCheck %s --check-prefix=EMPTY
// EMPTY: error: gemma-pack-weights: unknown target ''; expected cpu or none

func.func @f(%x: tensor<?x64xf32>) -> tensor<?x8xf32> {
  %w = gemma.weight "model.layers.0.mlp.up_proj.weight" {file = "m.safetensors", offset = 0 : i64, source_dtype = "F32"} : tensor<8x64x!gemma.q4g32>
  %y = gemma.linear %x, %w : (tensor<?x64xf32>, tensor<8x64x!gemma.q4g32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}
