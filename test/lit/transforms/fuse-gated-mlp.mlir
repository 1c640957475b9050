// RUN: gemma-opt %s --split-input-file --gemma-fuse-gated-mlp | FileCheck %s

// CHECK-LABEL: func.func @geglu
// CHECK-SAME: (%[[X:.*]]: tensor<?x64xf32>, %[[WG:.*]]: tensor<128x64xbf16>, %[[WU:.*]]: tensor<128x64xbf16>)
// CHECK-NEXT: %[[M:.*]] = gemma.gated_mlp %[[X]] weights(%[[WG]], %[[WU]]) : (tensor<?x64xf32>, tensor<128x64xbf16>, tensor<128x64xbf16>) -> tensor<?x128xf32>
// CHECK-NEXT: return %[[M]]
func.func @geglu(%x: tensor<?x64xf32>, %wg: tensor<128x64xbf16>, %wu: tensor<128x64xbf16>) -> tensor<?x128xf32> {
  %g = gemma.linear %x, %wg : (tensor<?x64xf32>, tensor<128x64xbf16>) -> tensor<?x128xf32>
  %a = gemma.gelu_tanh %g : tensor<?x128xf32>
  %u = gemma.linear %x, %wu : (tensor<?x64xf32>, tensor<128x64xbf16>) -> tensor<?x128xf32>
  %m = gemma.mul %a, %u : tensor<?x128xf32>
  return %m : tensor<?x128xf32>
}

// -----

// The mul commutes: the gelu side is the gate wherever it stands.
// CHECK-LABEL: func.func @gate_on_the_right
// CHECK-SAME: (%[[X:.*]]: tensor<?x64xf32>, %[[WG:.*]]: tensor<128x64xf32>, %[[WU:.*]]: tensor<128x64xf32>)
// CHECK-NEXT: gemma.gated_mlp %[[X]] weights(%[[WG]], %[[WU]])
func.func @gate_on_the_right(%x: tensor<?x64xf32>, %wg: tensor<128x64xf32>, %wu: tensor<128x64xf32>) -> tensor<?x128xf32> {
  %g = gemma.linear %x, %wg : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
  %a = gemma.gelu_tanh %g : tensor<?x128xf32>
  %u = gemma.linear %x, %wu : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
  %m = gemma.mul %u, %a : tensor<?x128xf32>
  return %m : tensor<?x128xf32>
}

// -----

// NOT fused: the activation is also used elsewhere.
// CHECK-LABEL: func.func @gelu_escapes
// CHECK-NOT: gemma.gated_mlp
// CHECK: gemma.mul
func.func @gelu_escapes(%x: tensor<?x64xf32>, %wg: tensor<128x64xf32>, %wu: tensor<128x64xf32>) -> (tensor<?x128xf32>, tensor<?x128xf32>) {
  %g = gemma.linear %x, %wg : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
  %a = gemma.gelu_tanh %g : tensor<?x128xf32>
  %u = gemma.linear %x, %wu : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
  %m = gemma.mul %a, %u : tensor<?x128xf32>
  return %m, %a : tensor<?x128xf32>, tensor<?x128xf32>
}

// -----

// NOT fused: gate and up project different inputs.
// CHECK-LABEL: func.func @different_inputs
// CHECK-NOT: gemma.gated_mlp
func.func @different_inputs(%x: tensor<?x64xf32>, %y: tensor<?x64xf32>, %wg: tensor<128x64xf32>, %wu: tensor<128x64xf32>) -> tensor<?x128xf32> {
  %g = gemma.linear %x, %wg : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
  %a = gemma.gelu_tanh %g : tensor<?x128xf32>
  %u = gemma.linear %y, %wu : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
  %m = gemma.mul %a, %u : tensor<?x128xf32>
  return %m : tensor<?x128xf32>
}

// -----

// NOT fused: a product without GELU is not GeGLU.
// CHECK-LABEL: func.func @no_gelu
// CHECK-NOT: gemma.gated_mlp
func.func @no_gelu(%x: tensor<?x64xf32>, %wg: tensor<128x64xf32>, %wu: tensor<128x64xf32>) -> tensor<?x128xf32> {
  %g = gemma.linear %x, %wg : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
  %u = gemma.linear %x, %wu : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
  %m = gemma.mul %g, %u : tensor<?x128xf32>
  return %m : tensor<?x128xf32>
}
