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
                "bf16 or f16"));
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
      HasSubstr("op code 11"));
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
  EXPECT_THAT(msg, HasSubstr("KV cache 0 has dtype f16 (2), expected f32"));
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
