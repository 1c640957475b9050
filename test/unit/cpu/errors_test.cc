// Bad input: unsupported dtypes and attributes are refused at supports and
// prepare; shape mismatches, out-of-range tokens, short KV caches and
// malformed structs make launch return an error with a message that names
// the op, the operand, what was found and what was expected. Nothing
// crashes.
#include <cstddef>
#include <cstring>

#include "cpu_test_support.h"

namespace gemmac::cpu_test {
namespace {

using ::testing::HasSubstr;

class ErrorsTest : public CpuPluginTest {
protected:
  // prepare() on a description expected to be refused; returns the message.
  std::string Refused(int32_t op, const gemmac_op_attrs &attrs,
                      std::vector<int32_t> inputs, int32_t expected_code,
                      int32_t output = GEMMAC_DTYPE_F32) {
    const gemmac_op_desc d = Desc(op, attrs, inputs, &output);
    EXPECT_EQ(api_.supports(backend_, &d), 0);
    gemmac_plugin_error e{};
    e.struct_size = sizeof(e);
    gemmac_kernel *k = reinterpret_cast<gemmac_kernel *>(&e);
    EXPECT_EQ(api_.prepare(backend_, &d, &k, &e), expected_code);
    EXPECT_EQ(k, nullptr);
    return e.message;
  }
};

const int32_t F = GEMMAC_DTYPE_F32;
const int32_t I = GEMMAC_DTYPE_I32;

TEST_P(ErrorsTest, UnsupportedDTypes) {
  EXPECT_THAT(
      Refused(GEMMAC_OP_LINEAR, Attrs(), {F, I}, GEMMAC_PLUGIN_UNSUPPORTED),
      HasSubstr("linear: input w has dtype i32 (3), expected f32, "
                "bf16, f16, q8c, q4g32, q4g128 or q4g32r8"));
  // Norm weights are element-wise: a block format is refused.
  EXPECT_THAT(Refused(GEMMAC_OP_RMS_NORM, Attrs(), {F, GEMMAC_DTYPE_Q8C},
                      GEMMAC_PLUGIN_UNSUPPORTED),
              HasSubstr("rms_norm: input w has dtype q8c (5), expected f32, "
                        "bf16 or f16"));
  // I8 is a KV cache dtype, not a weight dtype.
  EXPECT_THAT(Refused(GEMMAC_OP_LINEAR, Attrs(), {F, GEMMAC_DTYPE_I8},
                      GEMMAC_PLUGIN_UNSUPPORTED),
              HasSubstr("linear: input w has dtype i8 (4)"));
  EXPECT_THAT(
      Refused(GEMMAC_OP_EMBED, Attrs(), {F, F}, GEMMAC_PLUGIN_UNSUPPORTED),
      HasSubstr("embed: input tokens has dtype f32"));
  gemmac_op_attrs attn = Attrs();
  attn.num_heads = 2;
  attn.num_kv_heads = 1;
  attn.head_dim = 8;
  EXPECT_THAT(Refused(GEMMAC_OP_ATTENTION, attn, {GEMMAC_DTYPE_BF16, F, F},
                      GEMMAC_PLUGIN_UNSUPPORTED),
              HasSubstr("attention: input q has dtype bf16"));
  EXPECT_THAT(Refused(GEMMAC_OP_ADD, Attrs(), {F, F}, GEMMAC_PLUGIN_UNSUPPORTED,
                      GEMMAC_DTYPE_F16),
              HasSubstr("add: output has dtype f16"));
  EXPECT_THAT(
      Refused(GEMMAC_OP_GELU_TANH, Attrs(), {99}, GEMMAC_PLUGIN_UNSUPPORTED),
      HasSubstr("unknown dtype"));
  EXPECT_THAT(
      Refused(GEMMAC_OP_COUNT_, Attrs(), {F}, GEMMAC_PLUGIN_UNSUPPORTED),
      HasSubstr("op code 15"));
  EXPECT_THAT(
      Refused(GEMMAC_OP_MUL, Attrs(), {F}, GEMMAC_PLUGIN_INVALID_ARGUMENT),
      HasSubstr("mul: has 1 inputs"));
}

TEST_P(ErrorsTest, BadAttributes) {
  gemmac_op_attrs a = Attrs();
  a.head_dim = 7;
  EXPECT_THAT(Refused(GEMMAC_OP_ROPE, a, {F}, GEMMAC_PLUGIN_INVALID_ARGUMENT),
              HasSubstr("rope: attribute head_dim is 7, expected an even"));
  a = Attrs();
  a.head_dim = 8;
  a.rope_scale = 0.0f;
  EXPECT_THAT(Refused(GEMMAC_OP_ROPE, a, {F}, GEMMAC_PLUGIN_INVALID_ARGUMENT),
              HasSubstr("rope_scale is 0"));
  a = Attrs();
  a.num_heads = 6;
  a.num_kv_heads = 4;
  a.head_dim = 8;
  EXPECT_THAT(Refused(GEMMAC_OP_ATTENTION, a, {F, F, F},
                      GEMMAC_PLUGIN_INVALID_ARGUMENT),
              HasSubstr("attention: attribute num_kv_heads is 4"));
  a = Attrs();
  a.softcap = 0.0f;
  EXPECT_THAT(
      Refused(GEMMAC_OP_SOFTCAP, a, {F}, GEMMAC_PLUGIN_INVALID_ARGUMENT),
      HasSubstr("softcap: attribute softcap is 0"));
  a = Attrs();
  a.rows = 0;
  EXPECT_THAT(
      Refused(GEMMAC_OP_LM_HEAD, a, {F, F}, GEMMAC_PLUGIN_INVALID_ARGUMENT),
      HasSubstr("lm_head: attribute rows is 0"));
  a = Attrs();
  a.struct_size = 8;
  EXPECT_THAT(Refused(GEMMAC_OP_SCALE, a, {F}, GEMMAC_PLUGIN_INVALID_ARGUMENT),
              HasSubstr("attrs.struct_size is 8"));
}

TEST_P(ErrorsTest, LinearShapeMismatch) {
  gemmac_kernel *k = Prepare(GEMMAC_OP_LINEAR, Attrs(), {F, F});
  std::vector<float> x(2 * 67), w(33 * 66), y(2 * 33);
  std::string msg;
  EXPECT_EQ(
      Launch(k, {Tensor(x.data(), F, {2, 67}), Tensor(w.data(), F, {33, 66})},
             Tensor(y.data(), F, {2, 33}), nullptr, &msg),
      GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("linear: input w has shape [33,66], expected "
                             "[?,67]"));
  // Output of the wrong size.
  std::vector<float> w2(33 * 67);
  EXPECT_EQ(
      Launch(k, {Tensor(x.data(), F, {2, 67}), Tensor(w2.data(), F, {33, 67})},
             Tensor(y.data(), F, {2, 32}), nullptr, &msg),
      GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("linear: output has shape [2,32], expected "
                             "[2,33]"));
  // A dtype other than the prepared one.
  EXPECT_EQ(Launch(k,
                   {Tensor(x.data(), F, {2, 67}),
                    Tensor(w2.data(), GEMMAC_DTYPE_BF16, {33, 67})},
                   Tensor(y.data(), F, {2, 33}), nullptr, &msg),
            GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("input w has dtype bf16 (1), expected f32"));
  // Wrong operand count.
  EXPECT_EQ(Launch(k, {Tensor(x.data(), F, {2, 67})},
                   Tensor(y.data(), F, {2, 33}), nullptr, &msg),
            GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("linear: got 1 inputs"));
  // Null data, negative and too many dimensions.
  EXPECT_EQ(
      Launch(k, {Tensor(nullptr, F, {2, 67}), Tensor(w2.data(), F, {33, 67})},
             Tensor(y.data(), F, {2, 33}), nullptr, &msg),
      GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("null data pointer"));
  EXPECT_EQ(
      Launch(k, {Tensor(x.data(), F, {2, -67}), Tensor(w2.data(), F, {33, 67})},
             Tensor(y.data(), F, {2, 33}), nullptr, &msg),
      GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("dimension 1 = -67"));
  // An f32 operand that is not 4-byte aligned.
  EXPECT_EQ(Launch(k,
                   {Tensor(reinterpret_cast<char *>(x.data()) + 2, F, {1, 67}),
                    Tensor(w2.data(), F, {33, 67})},
                   Tensor(y.data(), F, {1, 33}), nullptr, &msg),
            GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("is not aligned to its 4-byte elements"));
  gemmac_tensor rank5 = Tensor(x.data(), F, {2, 67});
  rank5.rank = 5;
  EXPECT_EQ(Launch(k, {rank5, Tensor(w2.data(), F, {33, 67})},
                   Tensor(y.data(), F, {2, 33}), nullptr, &msg),
            GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("rank 5"));
}

TEST_P(ErrorsTest, EmbedTokenOutOfRange) {
  gemmac_kernel *k = Prepare(GEMMAC_OP_EMBED, Attrs(), {I, F});
  std::vector<float> table(10 * 4), out(3 * 4);
  for (int32_t bad : {-1, 10, 1 << 30}) {
    std::vector<int32_t> tokens = {2, bad, 3};
    std::string msg;
    EXPECT_EQ(Launch(k,
                     {Tensor(tokens.data(), I, {3}),
                      Tensor(table.data(), F, {10, 4})},
                     Tensor(out.data(), F, {3, 4}), nullptr, &msg),
              GEMMAC_PLUGIN_INVALID_ARGUMENT);
    EXPECT_THAT(msg,
                HasSubstr("embed: input tokens[1] is " + std::to_string(bad) +
                          ", expected a token id in [0, 10)"));
  }
}

TEST_P(ErrorsTest, OtherShapeRules) {
  std::string msg;
  std::vector<float> buf(4096);
  // rms_norm: the weight size must divide the row.
  gemmac_kernel *norm = Prepare(GEMMAC_OP_RMS_NORM, Attrs(), {F, F});
  EXPECT_EQ(Launch(norm,
                   {Tensor(buf.data(), F, {2, 10}), Tensor(buf.data(), F, {4})},
                   Tensor(buf.data(), F, {2, 10}), nullptr, &msg),
            GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("rms_norm: input w has shape [4]"));
  // lm_head: rows beyond the table.
  gemmac_op_attrs head = Attrs();
  head.rows = 11;
  gemmac_kernel *lm = Prepare(GEMMAC_OP_LM_HEAD, head, {F, F});
  EXPECT_EQ(
      Launch(lm,
             {Tensor(buf.data(), F, {1, 8}), Tensor(buf.data(), F, {10, 8})},
             Tensor(buf.data() + 2048, F, {1, 11}), nullptr, &msg),
      GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("lm_head: attribute rows is 11, expected at "
                             "most the 10 rows"));
  // add: operands of different shapes.
  gemmac_kernel *add = Prepare(GEMMAC_OP_ADD, Attrs(), {F, F});
  EXPECT_EQ(
      Launch(add,
             {Tensor(buf.data(), F, {2, 3}), Tensor(buf.data(), F, {3, 2})},
             Tensor(buf.data() + 100, F, {2, 3}), nullptr, &msg),
      GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("add: input b has shape [3,2], expected [2,3]"));
  // rope: needs the context for positions, and whole heads.
  gemmac_op_attrs r = Attrs();
  r.head_dim = 8;
  gemmac_kernel *rope = Prepare(GEMMAC_OP_ROPE, r, {F});
  EXPECT_EQ(Launch(rope, {Tensor(buf.data(), F, {1, 16})},
                   Tensor(buf.data(), F, {1, 16}), nullptr, &msg),
            GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("rope: context is null"));
  const gemmac_exec_context ctx = Context(0, 1);
  EXPECT_EQ(Launch(rope, {Tensor(buf.data(), F, {1, 12})},
                   Tensor(buf.data(), F, {1, 12}), &ctx, &msg),
            GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("row size 12, expected a multiple of head_dim"));
}

const int32_t NONE = GEMMAC_DTYPE_NONE;
const int32_t Q4 = GEMMAC_DTYPE_Q4G32;

TEST_P(ErrorsTest, QuantizedWeightShapes) {
  std::string msg;
  std::vector<uint8_t> w(4096);
  std::vector<float> x(4096), y(4096);
  // Q4G32 needs cols % 32 == 0; Q4G128 cols % 128 == 0.
  gemmac_kernel *k = Prepare(GEMMAC_OP_LINEAR, Attrs(), {F, Q4});
  EXPECT_EQ(
      Launch(k, {Tensor(x.data(), F, {2, 50}), Tensor(w.data(), Q4, {3, 50})},
             Tensor(y.data(), F, {2, 3}), nullptr, &msg),
      GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("linear: input w is q4g32 [3,50], expected cols "
                             "to be a multiple of the format's group size "
                             "32"));
  gemmac_kernel *k128 =
      Prepare(GEMMAC_OP_LINEAR, Attrs(), {F, GEMMAC_DTYPE_Q4G128});
  EXPECT_EQ(Launch(k128,
                   {Tensor(x.data(), F, {1, 64}),
                    Tensor(w.data(), GEMMAC_DTYPE_Q4G128, {2, 64})},
                   Tensor(y.data(), F, {1, 2}), nullptr, &msg),
            GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("q4g128 [2,64], expected cols to be a multiple "
                             "of the format's group size 128"));
  // A quantized weight must be a rank-2 matrix.
  gemmac_kernel *emb = Prepare(GEMMAC_OP_EMBED, Attrs(), {I, GEMMAC_DTYPE_Q8C});
  std::vector<int32_t> tokens = {0};
  EXPECT_EQ(Launch(emb,
                   {Tensor(tokens.data(), I, {1}),
                    Tensor(w.data(), GEMMAC_DTYPE_Q8C, {2, 4, 8})},
                   Tensor(y.data(), F, {1, 32}), nullptr, &msg),
            GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("embed: input table is q8c with rank 3, "
                             "expected a [rows, cols] matrix (rank 2)"));
  // The group rule applies to every matrix operand of the fused ops too.
  gemmac_kernel *mlp = Prepare(GEMMAC_OP_GATED_MLP, Attrs(), {F, NONE, Q4, Q4});
  EXPECT_EQ(
      Launch(mlp,
             {Tensor(x.data(), F, {1, 48}), Absent(),
              Tensor(w.data(), Q4, {4, 48}), Tensor(w.data(), Q4, {4, 48})},
             Tensor(y.data(), F, {1, 4}), nullptr, &msg),
      GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("gated_mlp: input w_gate is q4g32 [4,48]"));
}

TEST_P(ErrorsTest, FusedOpDescriptions) {
  gemmac_op_attrs a = Attrs();
  a.rows = 4;
  // final_head's norm is required.
  EXPECT_THAT(Refused(GEMMAC_OP_FINAL_HEAD, a, {F, NONE, F},
                      GEMMAC_PLUGIN_INVALID_ARGUMENT),
              HasSubstr("final_head: input norm is absent (dtype none), "
                        "expected it"));
  // Fused-op norms are f32 (as the compiler writes them).
  EXPECT_THAT(Refused(GEMMAC_OP_GATED_MLP, a, {F, GEMMAC_DTYPE_BF16, Q4, Q4},
                      GEMMAC_PLUGIN_UNSUPPORTED),
              HasSubstr("gated_mlp: input norm has dtype bf16 (1), expected "
                        "f32 or none (absent)"));
  // qkv_proj has three outputs, add_rms_norm two.
  EXPECT_THAT(Refused(GEMMAC_OP_ADD_RMS_NORM, a, {F, F, F},
                      GEMMAC_PLUGIN_INVALID_ARGUMENT),
              HasSubstr("add_rms_norm: has 3 inputs and 1 outputs, expected "
                        "3 and 2"));
  gemmac_op_attrs q = Attrs();
  q.head_dim = 6;
  q.num_heads = 2;
  q.num_kv_heads = 0;
  EXPECT_THAT(Refused(GEMMAC_OP_QKV_PROJ, q, {F, NONE, F, F, F, NONE, NONE},
                      GEMMAC_PLUGIN_INVALID_ARGUMENT),
              HasSubstr("has 7 inputs and 1 outputs, expected 7 and 3"));
  a.softcap = -1.0f;
  EXPECT_THAT(Refused(GEMMAC_OP_FINAL_HEAD, a, {F, F, F},
                      GEMMAC_PLUGIN_INVALID_ARGUMENT),
              HasSubstr("final_head: attribute softcap is -1"));
}

TEST_P(ErrorsTest, FusedOpLaunches) {
  std::string msg;
  std::vector<float> buf(4096), out(4096), out2(4096), out3(4096);
  // An input prepared absent must arrive absent (data NULL, rank 0).
  gemmac_kernel *mlp = Prepare(GEMMAC_OP_GATED_MLP, Attrs(), {F, NONE, F, F});
  EXPECT_EQ(
      Launch(mlp,
             {Tensor(buf.data(), F, {1, 8}), Tensor(buf.data(), F, {8}),
              Tensor(buf.data(), F, {4, 8}), Tensor(buf.data(), F, {4, 8})},
             Tensor(out.data(), F, {1, 4}), nullptr, &msg),
      GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("gated_mlp: input norm has dtype f32 (0)"));
  EXPECT_THAT(msg, HasSubstr("expected an absent input"));
  // w_up must match w_gate.
  EXPECT_EQ(
      Launch(mlp,
             {Tensor(buf.data(), F, {1, 8}), Absent(),
              Tensor(buf.data(), F, {4, 8}), Tensor(buf.data(), F, {5, 8})},
             Tensor(out.data(), F, {1, 4}), nullptr, &msg),
      GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("gated_mlp: input w_up has shape [5,8], expected "
                             "[4,8]"));

  // qkv_proj: k_norm of the wrong size, a missing context.
  gemmac_op_attrs q = Attrs();
  q.head_dim = 4;
  q.num_heads = 2;
  q.num_kv_heads = 1;
  gemmac_kernel *qkv =
      PrepareN(GEMMAC_OP_QKV_PROJ, q, {F, NONE, F, F, F, NONE, F}, 3);
  const gemmac_exec_context ctx = Context(0, 1);
  auto qkv_launch = [&](gemmac_tensor k_norm, const gemmac_exec_context *c) {
    return LaunchN(
        qkv,
        {Tensor(buf.data(), F, {1, 8}), Absent(), Tensor(buf.data(), F, {8, 8}),
         Tensor(buf.data(), F, {4, 8}), Tensor(buf.data(), F, {4, 8}), Absent(),
         k_norm},
        {Tensor(out.data(), F, {1, 8}), Tensor(out2.data(), F, {1, 4}),
         Tensor(out3.data(), F, {1, 4})},
        c, &msg);
  };
  EXPECT_EQ(qkv_launch(Tensor(buf.data(), F, {4}), &ctx), GEMMAC_PLUGIN_OK)
      << msg;
  EXPECT_EQ(qkv_launch(Tensor(buf.data(), F, {8}), &ctx),
            GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("qkv_proj: input k_norm has shape [8], expected "
                             "[4] ([head_dim])"));
  EXPECT_EQ(qkv_launch(Tensor(buf.data(), F, {4}), nullptr),
            GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("qkv_proj: context is null"));
  // Too few outputs.
  EXPECT_EQ(
      LaunchN(qkv,
              {Tensor(buf.data(), F, {1, 8}), Absent(),
               Tensor(buf.data(), F, {8, 8}), Tensor(buf.data(), F, {4, 8}),
               Tensor(buf.data(), F, {4, 8}), Absent(),
               Tensor(buf.data(), F, {4})},
              {Tensor(out.data(), F, {1, 8})}, &ctx, &msg),
      GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("qkv_proj: got 7 inputs and 1 outputs, expected "
                             "7 and 3"));

  // final_head: an output of neither [T, rows] nor [1, rows].
  gemmac_op_attrs h = Attrs();
  h.rows = 3;
  gemmac_kernel *head = Prepare(GEMMAC_OP_FINAL_HEAD, h, {F, F, F});
  EXPECT_EQ(Launch(head,
                   {Tensor(buf.data(), F, {4, 8}), Tensor(buf.data(), F, {8}),
                    Tensor(buf.data(), F, {5, 8})},
                   Tensor(out.data(), F, {2, 3}), nullptr, &msg),
            GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("final_head: output has shape [2,3], expected "
                             "[4,3]"));

  // add_rms_norm: s and h in one buffer.
  gemmac_kernel *arn = PrepareN(GEMMAC_OP_ADD_RMS_NORM, Attrs(), {F, F, F}, 2);
  EXPECT_EQ(
      LaunchN(arn,
              {Tensor(buf.data(), F, {2, 4}), Tensor(buf.data(), F, {2, 4}),
               Tensor(buf.data(), F, {4})},
              {Tensor(out.data(), F, {2, 4}), Tensor(out.data(), F, {2, 4})},
              nullptr, &msg),
      GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("add_rms_norm: outputs s and h share memory"));
}

class AttentionErrors : public ErrorsTest {
protected:
  void SetUp() override {
    ErrorsTest::SetUp();
    attrs_ = Attrs();
    attrs_.num_heads = 2;
    attrs_.num_kv_heads = 1;
    attrs_.head_dim = 4;
    kernel_ = Prepare(GEMMAC_OP_ATTENTION, attrs_, {F, F, F});
    cache_.struct_size = sizeof(cache_);
    cache_.k = k_.data();
    cache_.v = v_.data();
    cache_.dtype = F;
    cache_.capacity = 8;
    cache_.num_kv_heads = 1;
    cache_.head_dim = 4;
  }
  int32_t Go(int64_t T, int64_t past, const gemmac_kv_cache *kv,
             uint32_t num_kv, std::string *msg) {
    const gemmac_exec_context ctx = Context(past, T, kv, num_kv);
    return Launch(kernel_,
                  {Tensor(q_.data(), F, {T, 8}), Tensor(kn_.data(), F, {T, 4}),
                   Tensor(kn_.data(), F, {T, 4})},
                  Tensor(out_.data(), F, {T, 8}), &ctx, msg);
  }
  gemmac_op_attrs attrs_;
  gemmac_kernel *kernel_ = nullptr;
  gemmac_kv_cache cache_{};
  std::vector<float> k_ = std::vector<float>(8 * 4),
                     v_ = std::vector<float>(8 * 4),
                     q_ = std::vector<float>(64), kn_ = std::vector<float>(32),
                     out_ = std::vector<float>(64);
};

TEST_P(AttentionErrors, GlobalLayerNeedsTheWholeContext) {
  std::string msg;
  EXPECT_EQ(Go(4, 4, &cache_, 1, &msg), GEMMAC_PLUGIN_OK) << msg;
  EXPECT_EQ(Go(1, 8, &cache_, 1, &msg), GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("attention: KV cache 0 has capacity 8, expected "
                             "at least past + T = 9 for a global layer"));
}

TEST_P(AttentionErrors, WindowedLayerNeedsWindowPlusChunk) {
  attrs_.window = 4;
  kernel_ = Prepare(GEMMAC_OP_ATTENTION, attrs_, {F, F, F});
  std::string msg;
  // Past the capacity, a chunk of 5 needs 4 + 5 - 1 = 8 rows: fits.
  EXPECT_EQ(Go(5, 20, &cache_, 1, &msg), GEMMAC_PLUGIN_OK) << msg;
  cache_.capacity = 7;
  EXPECT_EQ(Go(5, 20, &cache_, 1, &msg), GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("capacity 7, expected at least window + T - 1 "
                             "= 8"));
  // While the whole context fits, a smaller ring is fine.
  EXPECT_EQ(Go(5, 2, &cache_, 1, &msg), GEMMAC_PLUGIN_OK) << msg;
}

TEST_P(AttentionErrors, CacheAndContextMustMatch) {
  std::string msg;
  EXPECT_EQ(Go(1, 0, &cache_, 0, &msg), GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("attribute layer is 0, expected a KV cache index "
                             "below context.num_kv = 0"));
  EXPECT_EQ(Go(1, -1, &cache_, 1, &msg), GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("context.past is -1"));
  cache_.dtype = GEMMAC_DTYPE_F16;
  EXPECT_EQ(Go(1, 0, &cache_, 1, &msg), GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("KV cache 0 has dtype f16 (2), expected f32 or "
                             "i8"));
  cache_.dtype = F;
  cache_.head_dim = 8;
  EXPECT_EQ(Go(1, 0, &cache_, 1, &msg), GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("KV cache 0 is [capacity, 1, 8], expected "
                             "[capacity, 1, 4]"));
  cache_.head_dim = 4;
  cache_.k = nullptr;
  EXPECT_EQ(Go(1, 0, &cache_, 1, &msg), GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("non-null buffers"));
  cache_.k = k_.data();

  // k with the wrong number of KV heads.
  const gemmac_exec_context ctx = Context(0, 2, &cache_, 1);
  EXPECT_EQ(Launch(kernel_,
                   {Tensor(q_.data(), F, {2, 8}), Tensor(kn_.data(), F, {2, 8}),
                    Tensor(kn_.data(), F, {2, 4})},
                   Tensor(out_.data(), F, {2, 8}), &ctx, &msg),
            GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("attention: input k has shape [2,8], expected "
                             "[2,4] ([T, num_kv_heads*head_dim])"));
  EXPECT_EQ(Launch(kernel_,
                   {Tensor(q_.data(), F, {2, 8}), Tensor(kn_.data(), F, {2, 4}),
                    Tensor(kn_.data(), F, {2, 4})},
                   Tensor(out_.data(), F, {2, 8}), nullptr, &msg),
            GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("attention: context is null"));
}

TEST_P(AttentionErrors, Int8CacheNeedsItsScales) {
  std::vector<int8_t> k8(8 * 4), v8(8 * 4);
  std::vector<float> ks(8), vs(8);
  cache_.dtype = GEMMAC_DTYPE_I8;
  cache_.k = k8.data();
  cache_.v = v8.data();
  cache_.k_scale = ks.data();
  cache_.v_scale = nullptr;
  std::string msg;
  EXPECT_EQ(Go(1, 0, &cache_, 1, &msg), GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("attention: KV cache 0 has dtype i8 and "
                             "k_scale="));
  EXPECT_THAT(msg, HasSubstr("expected non-null f32 scales"));
  cache_.v_scale = vs.data();
  EXPECT_EQ(Go(1, 0, &cache_, 1, &msg), GEMMAC_PLUGIN_OK) << msg;
  // A 1.0 caller's struct ends before the scales: an i8 cache is refused.
  cache_.struct_size = offsetof(gemmac_kv_cache, k_scale);
  EXPECT_EQ(Go(1, 0, &cache_, 1, &msg), GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(msg, HasSubstr("KV cache 0 has dtype i8 and struct_size"));
  EXPECT_THAT(msg, HasSubstr("the ABI 1.1 struct with k_scale and v_scale"));
  // ...while an f32 cache in that older struct still works.
  cache_.dtype = F;
  cache_.k = k_.data();
  cache_.v = v_.data();
  EXPECT_EQ(Go(1, 0, &cache_, 1, &msg), GEMMAC_PLUGIN_OK) << msg;
}

TEST_P(AttentionErrors, CancelledBeforeStart) {
  volatile int32_t flag = 1;
  gemmac_exec_context ctx = Context(0, 1, &cache_, 1);
  ctx.cancel = &flag;
  std::string msg;
  EXPECT_EQ(Launch(kernel_,
                   {Tensor(q_.data(), F, {1, 8}), Tensor(kn_.data(), F, {1, 4}),
                    Tensor(kn_.data(), F, {1, 4})},
                   Tensor(out_.data(), F, {1, 8}), &ctx, &msg),
            GEMMAC_PLUGIN_CANCELLED);
  flag = 0;
  EXPECT_EQ(Launch(kernel_,
                   {Tensor(q_.data(), F, {1, 8}), Tensor(kn_.data(), F, {1, 4}),
                    Tensor(kn_.data(), F, {1, 4})},
                   Tensor(out_.data(), F, {1, 8}), &ctx, &msg),
            GEMMAC_PLUGIN_OK)
      << msg;
}

// A newer caller's tensors carry extra trailing fields; the plugin steps
// through the array by the callers' struct_size and reads what it knows.
TEST_P(ErrorsTest, LargerTensorStructsFromANewerCaller) {
  struct NewerTensor {
    gemmac_tensor t;
    int64_t strides[GEMMAC_MAX_RANK];
  };
  std::vector<float> a = {1, 2, 3, 4, 5, 6}, b = {10, 20, 30, 40, 50, 60}, y(6);
  NewerTensor in[2] = {};
  in[0].t = Tensor(a.data(), F, {2, 3});
  in[1].t = Tensor(b.data(), F, {2, 3});
  for (NewerTensor &n : in) {
    n.t.struct_size = sizeof(NewerTensor);
    std::memset(n.strides, 0xFF, sizeof(n.strides));
  }
  NewerTensor out{};
  out.t = Tensor(y.data(), F, {2, 3});
  out.t.struct_size = sizeof(NewerTensor);
  gemmac_kernel *k = Prepare(GEMMAC_OP_ADD, Attrs(), {F, F});
  gemmac_plugin_error e{};
  e.struct_size = sizeof(e);
  ASSERT_EQ(api_.launch(backend_, k, &in[0].t, 2, &out.t, 1, nullptr, &e),
            GEMMAC_PLUGIN_OK)
      << e.message;
  EXPECT_EQ(y, (std::vector<float>{11, 22, 33, 44, 55, 66}));

  // An older, smaller tensor struct cannot hold the 1.0 fields: refused.
  in[0].t.struct_size = offsetof(gemmac_tensor, shape);
  EXPECT_EQ(api_.launch(backend_, k, &in[0].t, 2, &out.t, 1, nullptr, &e),
            GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(std::string(e.message), HasSubstr("struct_size"));
}

TEST_P(ErrorsTest, NullArgumentsAreRefused) {
  gemmac_kernel *k = Prepare(GEMMAC_OP_ADD, Attrs(), {F, F});
  gemmac_plugin_error e{};
  e.struct_size = sizeof(e);
  EXPECT_EQ(api_.launch(backend_, nullptr, nullptr, 0, nullptr, 0, nullptr, &e),
            GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_EQ(api_.launch(backend_, k, nullptr, 2, nullptr, 1, nullptr, &e),
            GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_THAT(std::string(e.message), HasSubstr("add: input array is null"));
  EXPECT_EQ(api_.prepare(backend_, nullptr, &k, &e),
            GEMMAC_PLUGIN_INVALID_ARGUMENT);
  EXPECT_EQ(api_.supports(backend_, nullptr), 0);
  // A null error struct is allowed: the code alone comes back.
  EXPECT_EQ(api_.launch(backend_, k, nullptr, 2, nullptr, 1, nullptr, nullptr),
            GEMMAC_PLUGIN_INVALID_ARGUMENT);
}

GEMMAC_CPU_INSTANTIATE(ErrorsTest);
GEMMAC_CPU_INSTANTIATE(AttentionErrors);

} // namespace
} // namespace gemmac::cpu_test
