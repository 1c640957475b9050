// gemma-opt registers exactly the passes gemmac uses, each with its summary.
// RUN: gemma-opt --help | FileCheck %s

// CHECK: --canonicalize {{ *}}- {{ *}}Canonicalize operations
// CHECK: --cse {{ *}}- {{ *}}Eliminate common sub-expressions
// CHECK: --gemma-fold-embed-scale {{ *}}- {{ *}}Fold a scale of an embedding into the embed op where exact
// CHECK: --gemma-fold-norm-prologue {{ *}}- {{ *}}Fold an RMSNorm into the prologue of the fused linears using it
// CHECK: --gemma-fuse-add-norm {{ *}}- {{ *}}Fuse a residual add and the RMSNorm after it
// CHECK: --gemma-fuse-final-head {{ *}}- {{ *}}Fuse the final norm, the tied head and the final soft-cap
// CHECK: --gemma-fuse-gated-mlp {{ *}}- {{ *}}Fuse gate/up projections and GeGLU into gemma.gated_mlp
// CHECK: --gemma-fuse-qkv {{ *}}- {{ *}}Fuse q/k/v projections, QK-norm and RoPE into gemma.qkv_proj
// CHECK: --gemma-pack-weights {{ *}}- {{ *}}Give quantized weights the layout the target plugin's kernels read, so loading never repacks
// CHECK: --gemma-plan-memory {{ *}}- {{ *}}Assign activations to offsets in a reused arena by liveness
// CHECK: --gemma-quantize {{ *}}- {{ *}}Give every weight its storage type: a float dtype or a quantized one
// CHECK: --gemma-verify-model {{ *}}- {{ *}}Check model-level invariants that op verifiers cannot see
// CHECK: Pass Pipelines:
// CHECK: --gemma-compile-pipeline {{ *}}- {{ *}}The pipeline gemma-compile runs

// Upstream passes that gemmac does not use stay out of the driver.
// RUN: gemma-opt --help | FileCheck %s --check-prefix=ABSENT
// ABSENT-NOT: --inline
// ABSENT-NOT: --convert-
// ABSENT-NOT: --sccp
