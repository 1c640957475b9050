// gemma-opt registers exactly the passes gemmac uses, each with its summary.
// RUN: gemma-opt --help | FileCheck %s

// CHECK: --canonicalize {{ *}}- {{ *}}Canonicalize operations
// CHECK: --cse {{ *}}- {{ *}}Eliminate common sub-expressions
// CHECK: --gemma-plan-memory {{ *}}- {{ *}}Assign activations to offsets in a reused arena by liveness
// CHECK: --gemma-verify-model {{ *}}- {{ *}}Check model-level invariants that op verifiers cannot see
// CHECK: Pass Pipelines:
// CHECK: --gemma-compile-pipeline {{ *}}- {{ *}}The pipeline gemma-compile runs

// Upstream passes that gemmac does not use stay out of the driver.
// RUN: gemma-opt --help | FileCheck %s --check-prefix=ABSENT
// ABSENT-NOT: --inline
// ABSENT-NOT: --convert-
// ABSENT-NOT: --sccp
