// The quantized weight types print and parse back to themselves, as weight
// results and as the weight operands of every op that reads a weight.
// RUN: gemma-opt %s | FileCheck %s
// RUN: gemma-opt %s | gemma-opt | FileCheck %s
// RUN: gemma-opt %s --mlir-print-op-generic | gemma-opt | FileCheck %s
// RUN: gemma-opt %s > %t.1.mlir && gemma-opt %t.1.mlir > %t.2.mlir && diff %t.1.mlir %t.2.mlir

// CHECK-LABEL: func.func @types
// CHECK-SAME: (%[[TOK:.*]]: tensor<?xi32>, %[[ARG:.*]]: tensor<16x128x!gemma.q4g128>)
func.func @types(%tok: tensor<?xi32>, %arg: tensor<16x128x!gemma.q4g128>) -> tensor<?x12xf32> {
  // CHECK: %[[E:.*]] = gemma.weight "embed" {{.*}} : tensor<16x64x!gemma.q8c>
  %e = gemma.weight "embed" {file = "x.safetensors", offset = 0 : i64, source_dtype = "BF16"} : tensor<16x64x!gemma.q8c>
  // CHECK: %[[W:.*]] = gemma.weight "w" {{.*}} : tensor<128x64x!gemma.q4g32>
  %w = gemma.weight "w" {file = "x.safetensors", offset = 2048 : i64, source_dtype = "F32"} : tensor<128x64x!gemma.q4g32>
  // q8c has one scale per row: any cols.
  // CHECK: gemma.weight "odd" {{.*}} : tensor<3x5x!gemma.q8c>
  %o = gemma.weight "odd" {file = "x.safetensors", offset = 4096 : i64, source_dtype = "F16"} : tensor<3x5x!gemma.q8c>
  // CHECK: %[[X:.*]] = gemma.embed %[[TOK]], %[[E]] {scale = 8.000000e+00 : f32} : (tensor<?xi32>, tensor<16x64x!gemma.q8c>) -> tensor<?x64xf32>
  %x = gemma.embed %tok, %e {scale = 8.0 : f32} : (tensor<?xi32>, tensor<16x64x!gemma.q8c>) -> tensor<?x64xf32>
  // CHECK: %[[Y:.*]] = gemma.linear %[[X]], %[[W]] : (tensor<?x64xf32>, tensor<128x64x!gemma.q4g32>) -> tensor<?x128xf32>
  %y = gemma.linear %x, %w : (tensor<?x64xf32>, tensor<128x64x!gemma.q4g32>) -> tensor<?x128xf32>
  // CHECK: %[[Z:.*]] = gemma.linear %[[Y]], %[[ARG]] : (tensor<?x128xf32>, tensor<16x128x!gemma.q4g128>) -> tensor<?x16xf32>
  %z = gemma.linear %y, %arg : (tensor<?x128xf32>, tensor<16x128x!gemma.q4g128>) -> tensor<?x16xf32>
  // CHECK: gemma.lm_head %[[X]], %[[E]] {rows = 12 : i64} : (tensor<?x64xf32>, tensor<16x64x!gemma.q8c>) -> tensor<?x12xf32>
  %l = gemma.lm_head %x, %e {rows = 12} : (tensor<?x64xf32>, tensor<16x64x!gemma.q8c>) -> tensor<?x12xf32>
  return %l : tensor<?x12xf32>
}
