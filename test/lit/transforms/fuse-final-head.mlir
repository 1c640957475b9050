// RUN: gemma-opt %s --split-input-file --gemma-fuse-final-head | FileCheck %s
// RUN: gemma-opt %s --split-input-file --gemma-fuse-final-head=last-position-logits | FileCheck %s --check-prefix=LAST

// CHECK-LABEL: func.func @prefill
// CHECK-SAME: (%[[X:.*]]: tensor<?x64xf32>, %[[N:.*]]: tensor<64xf32>, %[[T:.*]]: tensor<520x64xbf16>) -> tensor<?x512xf32>
// CHECK-NEXT: %[[L:.*]] = gemma.final_head %[[X]], %[[N]], %[[T]] {rows = 512 : i64} : (tensor<?x64xf32>, tensor<64xf32>, tensor<520x64xbf16>) -> tensor<?x512xf32>
// CHECK-NEXT: return %[[L]]
// Only the last position's logits: the function's type follows.
// LAST-LABEL: func.func @prefill
// LAST-SAME: -> tensor<1x512xf32>
// LAST-NEXT: gemma.final_head {{.*}} -> tensor<1x512xf32>
func.func @prefill(%x: tensor<?x64xf32>, %n: tensor<64xf32>, %t: tensor<520x64xbf16>) -> tensor<?x512xf32> attributes {gemma.max_tokens = 64 : i64} {
  %h = gemma.rms_norm %x, %n : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %l = gemma.lm_head %h, %t {rows = 512} : (tensor<?x64xf32>, tensor<520x64xbf16>) -> tensor<?x512xf32>
  return %l : tensor<?x512xf32>
}

// -----

// Gemma 2's final soft-cap joins the op. Decode (max_tokens 1) keeps its
// one row either way.
// CHECK-LABEL: func.func @decode_softcap
// CHECK-NEXT: gemma.final_head {{.*}} {rows = 512 : i64, softcap = 3.000000e+01 : f32} : {{.*}} -> tensor<?x512xf32>
// CHECK-NEXT: return
// LAST-LABEL: func.func @decode_softcap
// LAST-SAME: -> tensor<?x512xf32>
func.func @decode_softcap(%x: tensor<?x64xf32>, %n: tensor<64xf32>, %t: tensor<512x64xf32>) -> tensor<?x512xf32> attributes {gemma.max_tokens = 1 : i64} {
  %h = gemma.rms_norm %x, %n : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %l = gemma.lm_head %h, %t {rows = 512} : (tensor<?x64xf32>, tensor<512x64xf32>) -> tensor<?x512xf32>
  %c = gemma.softcap %l {softcap = 30.0 : f32} : tensor<?x512xf32>
  return %c : tensor<?x512xf32>
}

// -----

// NOT fused: the normalized rows are used elsewhere too.
// CHECK-LABEL: func.func @norm_escapes
// CHECK-NOT: gemma.final_head
// CHECK: gemma.lm_head
func.func @norm_escapes(%x: tensor<?x64xf32>, %n: tensor<64xf32>, %t: tensor<512x64xf32>) -> (tensor<?x512xf32>, tensor<?x64xf32>) attributes {gemma.max_tokens = 64 : i64} {
  %h = gemma.rms_norm %x, %n : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %l = gemma.lm_head %h, %t {rows = 512} : (tensor<?x64xf32>, tensor<512x64xf32>) -> tensor<?x512xf32>
  return %l, %h : tensor<?x512xf32>, tensor<?x64xf32>
}

// -----

// Fused, but every position is kept when the logits feed more than the
// return (here a second softcap user of the head).
// LAST-LABEL: func.func @logits_used_inside
// LAST: gemma.final_head {{.*}} -> tensor<?x512xf32>
func.func @logits_used_inside(%x: tensor<?x64xf32>, %n: tensor<64xf32>, %t: tensor<512x64xf32>) -> (tensor<?x512xf32>, tensor<?x512xf32>) attributes {gemma.max_tokens = 64 : i64} {
  %h = gemma.rms_norm %x, %n : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %l = gemma.lm_head %h, %t {rows = 512} : (tensor<?x64xf32>, tensor<512x64xf32>) -> tensor<?x512xf32>
  %s = gemma.scale %l {scale = 2.0 : f32} : tensor<?x512xf32>
  return %l, %s : tensor<?x512xf32>, tensor<?x512xf32>
}
