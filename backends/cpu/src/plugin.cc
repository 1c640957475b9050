// The CPU backend's side of the plugin ABI: handshake, backend lifetime,
// op/dtype/attribute checks at prepare, operand checks at launch, memory.
//
// Nothing that crosses the boundary is trusted: every caller struct is read
// only up to its struct_size, every failure returns a code with a message
// naming the op, the operand, what was found and what was expected, and no
// C++ exception escapes. launch() allocates nothing; what a kernel needs
// (RoPE frequencies, attention scratch) is made at prepare.
#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <new>
#include <string>
#include <vector>

#include <tbb/info.h>
#include <tbb/task_arena.h>

#include "cpu_features.h"
#include "gemmac/cpu_plugin.h"
#include "gemmac/host_memory.h"
#include "gemmac/op_checks.h"
#include "kernels.h"
#include "loops.h"
#include "numeric.h"

namespace gemmac::cpu {
namespace {

constexpr size_t kDefaultAlignment = 64;
constexpr int kMaxInputs = 7;  // qkv_proj
constexpr int kMaxOutputs = 3; // qkv_proj

// The smallest struct a caller of ABI major 1 can pass: every field of 1.0.
constexpr size_t kTensorMin =
    offsetof(gemmac_tensor, shape) + sizeof(int64_t) * GEMMAC_MAX_RANK;
constexpr size_t kAttrsMin = offsetof(gemmac_op_attrs, rows) + sizeof(int32_t);
constexpr size_t kDescMin =
    offsetof(gemmac_op_desc, output_dtypes) + sizeof(const int32_t *);
constexpr size_t kContextMin =
    offsetof(gemmac_exec_context, cancel) + sizeof(const volatile int32_t *);
constexpr size_t kKvMin = offsetof(gemmac_kv_cache, head_dim) + sizeof(int32_t);
// An int8 cache needs the 1.1 fields (its scales).
constexpr size_t kKvI8Min =
    offsetof(gemmac_kv_cache, v_scale) + sizeof(float *);
constexpr size_t kOptionsMin =
    offsetof(gemmac_backend_options, num_threads) + sizeof(int32_t);

const char *OpName(int32_t op) {
  switch (op) {
  case GEMMAC_OP_EMBED:
    return "embed";
  case GEMMAC_OP_RMS_NORM:
    return "rms_norm";
  case GEMMAC_OP_LINEAR:
    return "linear";
  case GEMMAC_OP_ROPE:
    return "rope";
  case GEMMAC_OP_ATTENTION:
    return "attention";
  case GEMMAC_OP_GELU_TANH:
    return "gelu_tanh";
  case GEMMAC_OP_MUL:
    return "mul";
  case GEMMAC_OP_ADD:
    return "add";
  case GEMMAC_OP_SOFTCAP:
    return "softcap";
  case GEMMAC_OP_SCALE:
    return "scale";
  case GEMMAC_OP_LM_HEAD:
    return "lm_head";
  case GEMMAC_OP_ADD_RMS_NORM:
    return "add_rms_norm";
  case GEMMAC_OP_QKV_PROJ:
    return "qkv_proj";
  case GEMMAC_OP_GATED_MLP:
    return "gated_mlp";
  case GEMMAC_OP_FINAL_HEAD:
    return "final_head";
  default:
    return "unknown op";
  }
}

const char *DTypeName(int32_t dtype) {
  switch (dtype) {
  case GEMMAC_DTYPE_F32:
    return "f32";
  case GEMMAC_DTYPE_BF16:
    return "bf16";
  case GEMMAC_DTYPE_F16:
    return "f16";
  case GEMMAC_DTYPE_I32:
    return "i32";
  case GEMMAC_DTYPE_I8:
    return "i8";
  case GEMMAC_DTYPE_Q8C:
    return "q8c";
  case GEMMAC_DTYPE_Q4G32:
    return "q4g32";
  case GEMMAC_DTYPE_Q4G128:
    return "q4g128";
  case GEMMAC_DTYPE_Q4G32R8:
    return "q4g32r8";
  case GEMMAC_DTYPE_NONE:
    return "none (absent)";
  default:
    return "an unknown dtype";
  }
}

// Writes into the caller's gemmac_plugin_error, only as far as its
// struct_size reaches, always NUL-terminated.
class Errors {
public:
  explicit Errors(gemmac_plugin_error *e) : e_(e) {}

  __attribute__((format(printf, 3, 4))) int32_t Fail(int32_t code,
                                                     const char *fmt, ...) {
    constexpr size_t kOffset = offsetof(gemmac_plugin_error, message);
    if (e_ == nullptr || e_->struct_size <= kOffset)
      return code;
    const size_t cap = std::min(e_->struct_size - kOffset, sizeof(e_->message));
    va_list args;
    va_start(args, fmt);
    std::vsnprintf(e_->message, cap, fmt, args);
    va_end(args);
    return code;
  }

private:
  gemmac_plugin_error *e_;
};

// What an input must be: a fixed dtype, any weight dtype (matrices, which
// may be quantized), or a float weight dtype (element-wise weights).
constexpr int32_t kAnyWeight = -100;
constexpr int32_t kFloatWeight = -101;

struct Operand {
  const char *name = nullptr;
  int32_t dtype = GEMMAC_DTYPE_F32;
  bool optional = false; // may be GEMMAC_DTYPE_NONE (left out)
};

struct Signature {
  int num_inputs = 0;
  Operand inputs[kMaxInputs];
  int num_outputs = 0;
  const char *outputs[kMaxOutputs] = {};
};

// Single-output ops name their output just "output" in messages.
Signature Sig(std::initializer_list<Operand> ins,
              std::initializer_list<const char *> outs) {
  Signature s;
  for (const Operand &o : ins)
    s.inputs[s.num_inputs++] = o;
  for (const char *o : outs)
    s.outputs[s.num_outputs++] = o;
  return s;
}

const char *ExpectedDTypes(int32_t want) {
  switch (want) {
  case kAnyWeight:
    return "f32, bf16, f16, q8c, q4g32, q4g128 or q4g32r8";
  case kFloatWeight:
    return "f32, bf16 or f16";
  default:
    return DTypeName(want);
  }
}

bool SignatureOf(int32_t op, Signature *sig) {
  const int32_t F = GEMMAC_DTYPE_F32;
  const Operand x{"x", F}, w{"w", kAnyWeight};
  const Operand norm{"norm", F, true};
  switch (op) {
  case GEMMAC_OP_EMBED:
    *sig = Sig({{"tokens", GEMMAC_DTYPE_I32}, {"table", kAnyWeight}}, {"0"});
    return true;
  case GEMMAC_OP_RMS_NORM:
    *sig = Sig({x, {"w", kFloatWeight}}, {"0"});
    return true;
  case GEMMAC_OP_LINEAR:
    *sig = Sig({x, w}, {"0"});
    return true;
  case GEMMAC_OP_LM_HEAD:
    *sig = Sig({x, {"table", kAnyWeight}}, {"0"});
    return true;
  case GEMMAC_OP_ATTENTION:
    *sig = Sig({{"q", F}, {"k", F}, {"v", F}}, {"0"});
    return true;
  case GEMMAC_OP_MUL:
  case GEMMAC_OP_ADD:
    *sig = Sig({{"a", F}, {"b", F}}, {"0"});
    return true;
  case GEMMAC_OP_ROPE:
  case GEMMAC_OP_GELU_TANH:
  case GEMMAC_OP_SOFTCAP:
  case GEMMAC_OP_SCALE:
    *sig = Sig({x}, {"0"});
    return true;
  case GEMMAC_OP_ADD_RMS_NORM:
    *sig = Sig({x, {"y", F}, {"w", F}}, {"s", "h"});
    return true;
  case GEMMAC_OP_QKV_PROJ:
    *sig = Sig({x,
                norm,
                {"wq", kAnyWeight},
                {"wk", kAnyWeight},
                {"wv", kAnyWeight},
                {"q_norm", F, true},
                {"k_norm", F, true}},
               {"q", "k", "v"});
    return true;
  case GEMMAC_OP_GATED_MLP:
    *sig = Sig({x, norm, {"w_gate", kAnyWeight}, {"w_up", kAnyWeight}}, {"0"});
    return true;
  case GEMMAC_OP_FINAL_HEAD:
    *sig = Sig({x, {"norm", F}, {"table", kAnyWeight}}, {"0"});
    return true;
  default:
    return false;
  }
}

// An op description copied out of the caller's structs.
struct Desc {
  int32_t op = 0;
  gemmac_op_attrs attrs{};
  int num_inputs = 0;
  int32_t inputs[kMaxInputs] = {};
  int num_outputs = 0;
};

int32_t ReadDesc(const gemmac_op_desc *d, Desc *out, Errors &err) {
  if (d == nullptr || d->struct_size < kDescMin)
    return err.Fail(GEMMAC_PLUGIN_INVALID_ARGUMENT,
                    "op description: struct_size is %zu, expected at least "
                    "%zu",
                    d ? d->struct_size : size_t(0), kDescMin);
  out->op = d->op;
  const char *name = OpName(d->op);
  if (d->attrs.struct_size < kAttrsMin)
    return err.Fail(GEMMAC_PLUGIN_INVALID_ARGUMENT,
                    "%s: attrs.struct_size is %zu, expected at least %zu", name,
                    d->attrs.struct_size, kAttrsMin);
  std::memcpy(&out->attrs, &d->attrs, sizeof(out->attrs));
  Signature sig;
  if (!SignatureOf(d->op, &sig))
    return err.Fail(GEMMAC_PLUGIN_UNSUPPORTED,
                    "op code %d is not one the cpu backend knows (0..%d)",
                    d->op, GEMMAC_OP_COUNT_ - 1);
  if (d->num_inputs != uint32_t(sig.num_inputs) ||
      d->num_outputs != uint32_t(sig.num_outputs))
    return err.Fail(GEMMAC_PLUGIN_INVALID_ARGUMENT,
                    "%s: has %u inputs and %u outputs, expected %d and %d",
                    name, d->num_inputs, d->num_outputs, sig.num_inputs,
                    sig.num_outputs);
  if (d->input_dtypes == nullptr || d->output_dtypes == nullptr)
    return err.Fail(GEMMAC_PLUGIN_INVALID_ARGUMENT,
                    "%s: input_dtypes or output_dtypes is null", name);
  out->num_inputs = sig.num_inputs;
  out->num_outputs = sig.num_outputs;
  for (int i = 0; i < sig.num_inputs; ++i) {
    const Operand &want = sig.inputs[i];
    const int32_t dt = d->input_dtypes[i];
    out->inputs[i] = dt;
    if (dt == GEMMAC_DTYPE_NONE) {
      if (want.optional)
        continue;
      return err.Fail(GEMMAC_PLUGIN_INVALID_ARGUMENT,
                      "%s: input %s is absent (dtype none), expected it: "
                      "only optional inputs may be left out",
                      name, want.name);
    }
    const bool ok = want.dtype == kAnyWeight     ? IsWeightDType(dt)
                    : want.dtype == kFloatWeight ? IsFloatWeightDType(dt)
                                                 : dt == want.dtype;
    if (!ok)
      return err.Fail(GEMMAC_PLUGIN_UNSUPPORTED,
                      "%s: input %s has dtype %s (%d), expected %s%s", name,
                      want.name, DTypeName(dt), dt, ExpectedDTypes(want.dtype),
                      want.optional ? " or none (absent)" : "");
  }
  for (int i = 0; i < sig.num_outputs; ++i) {
    const int32_t dt = d->output_dtypes[i];
    if (dt != GEMMAC_DTYPE_F32)
      return err.Fail(GEMMAC_PLUGIN_UNSUPPORTED,
                      "%s: output%s%s has dtype %s (%d), expected f32", name,
                      sig.num_outputs > 1 ? " " : "",
                      sig.num_outputs > 1 ? sig.outputs[i] : "", DTypeName(dt),
                      dt);
  }
  return GEMMAC_PLUGIN_OK;
}

int32_t CheckAttrs(const Desc &d, Errors &err) {
  const gemmac_op_attrs &a = d.attrs;
  const char *name = OpName(d.op);
  auto bad = [&](const char *attr, const char *found, const char *expected) {
    return err.Fail(GEMMAC_PLUGIN_INVALID_ARGUMENT,
                    "%s: attribute %s is %s, expected %s", name, attr, found,
                    expected);
  };
  char found[64];
  auto f = [&](double v) {
    std::snprintf(found, sizeof(found), "%g", v);
    return found;
  };
  auto i = [&](int64_t v) {
    std::snprintf(found, sizeof(found), "%lld", (long long)v);
    return found;
  };
  auto CheckNorm = [&]() -> int32_t {
    if (!(a.eps >= 0.0f) || !std::isfinite(a.eps))
      return bad("eps", f(a.eps), "a finite number >= 0");
    if (!std::isfinite(a.offset))
      return bad("offset", f(a.offset), "a finite number");
    return GEMMAC_PLUGIN_OK;
  };
  auto CheckRope = [&]() -> int32_t {
    if (a.head_dim <= 0 || a.head_dim % 2 != 0)
      return bad("head_dim", i(a.head_dim), "an even number > 0");
    if (!(a.theta > 0.0f) || !std::isfinite(a.theta))
      return bad("theta", f(a.theta), "a finite number > 0");
    if (!(a.rope_scale > 0.0f) || !std::isfinite(a.rope_scale))
      return bad("rope_scale", f(a.rope_scale), "a finite number > 0");
    return GEMMAC_PLUGIN_OK;
  };
  switch (d.op) {
  case GEMMAC_OP_EMBED:
  case GEMMAC_OP_SCALE:
    if (!std::isfinite(a.scale))
      return bad("scale", f(a.scale), "a finite number");
    break;
  case GEMMAC_OP_RMS_NORM:
  case GEMMAC_OP_ADD_RMS_NORM:
  case GEMMAC_OP_GATED_MLP:
    return CheckNorm();
  case GEMMAC_OP_ROPE:
    return CheckRope();
  case GEMMAC_OP_QKV_PROJ:
    if (int32_t rc = CheckNorm(); rc != GEMMAC_PLUGIN_OK)
      return rc;
    if (a.num_heads <= 0)
      return bad("num_heads", i(a.num_heads), "> 0");
    if (a.num_kv_heads <= 0)
      return bad("num_kv_heads", i(a.num_kv_heads), "> 0");
    return CheckRope();
  case GEMMAC_OP_FINAL_HEAD:
    if (int32_t rc = CheckNorm(); rc != GEMMAC_PLUGIN_OK)
      return rc;
    if (a.rows <= 0)
      return bad("rows", i(a.rows), "> 0");
    if (!(a.softcap >= 0.0f) || !std::isfinite(a.softcap))
      return bad("softcap", f(a.softcap), "a finite number >= 0 (0 = none)");
    break;
  case GEMMAC_OP_ATTENTION:
    if (a.num_heads <= 0)
      return bad("num_heads", i(a.num_heads), "> 0");
    if (a.num_kv_heads <= 0 || a.num_heads % a.num_kv_heads != 0)
      return bad("num_kv_heads", i(a.num_kv_heads),
                 "> 0 and dividing num_heads");
    if (a.head_dim <= 0)
      return bad("head_dim", i(a.head_dim), "> 0");
    if (a.layer < 0)
      return bad("layer", i(a.layer), ">= 0");
    if (a.window < 0)
      return bad("window", i(a.window), ">= 0 (0 = global)");
    if (!(a.softcap >= 0.0f) || !std::isfinite(a.softcap))
      return bad("softcap", f(a.softcap), "a finite number >= 0 (0 = none)");
    if (!std::isfinite(a.scale))
      return bad("scale", f(a.scale), "a finite number");
    break;
  case GEMMAC_OP_SOFTCAP:
    if (!(a.softcap > 0.0f) || !std::isfinite(a.softcap))
      return bad("softcap", f(a.softcap), "a finite number > 0");
    break;
  case GEMMAC_OP_LM_HEAD:
    if (a.rows <= 0)
      return bad("rows", i(a.rows), "> 0");
    break;
  default:
    break;
  }
  return GEMMAC_PLUGIN_OK;
}

// 64-byte aligned float storage made at prepare; freed with the kernel.
struct AlignedFloats {
  float *data = nullptr;
  ~AlignedFloats() { std::free(data); }
  bool Allocate(size_t n) {
    const size_t bytes = (n * sizeof(float) + kDefaultAlignment - 1) /
                         kDefaultAlignment * kDefaultAlignment;
    data = static_cast<float *>(std::aligned_alloc(kDefaultAlignment, bytes));
    return data != nullptr;
  }
};

// A caller's tensor, copied out and checked for a sane shape.
struct View {
  void *data = nullptr;
  int32_t dtype = 0;
  int32_t rank = 0;
  int64_t shape[GEMMAC_MAX_RANK] = {};
  int64_t elements = 0;
  int64_t dim(int i) const { return shape[i]; }
};

void FormatShape(const int64_t *dims, int rank, char *buf, size_t n) {
  size_t used = size_t(std::snprintf(buf, n, "["));
  for (int i = 0; i < rank && used < n; ++i) {
    const char *sep = i ? "," : "";
    if (dims[i] < 0)
      used += size_t(std::snprintf(buf + used, n - used, "%s?", sep));
    else
      used += size_t(std::snprintf(buf + used, n - used, "%s%lld", sep,
                                   (long long)dims[i]));
  }
  if (used < n)
    std::snprintf(buf + used, n - used, "]");
}

// Checks of one launch: each returns false after writing the message.
class LaunchCheck {
public:
  LaunchCheck(int32_t op, Errors &err) : op_(OpName(op)), err_(err) {}
  int32_t code = GEMMAC_PLUGIN_OK;

  // Records an INVALID_ARGUMENT message prefixed with the op; false so that
  // checks chain with ||.
  __attribute__((format(printf, 2, 3))) bool Fail(const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    VFail(fmt, args);
    va_end(args);
    return false;
  }
  // The same, returning the code for `return check.Reject(...)`.
  __attribute__((format(printf, 2, 3))) int32_t Reject(const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    VFail(fmt, args);
    va_end(args);
    return code;
  }

  // Copies tensor i of an array whose element stride is the first element's
  // struct_size (a newer caller's larger struct is stepped over correctly).
  bool Read(const gemmac_tensor *array, uint32_t i, const char *what,
            const char *operand, View *v) {
    if (array == nullptr)
      return Fail("%s array is null", what);
    const size_t stride = array->struct_size;
    if (stride < kTensorMin)
      return Fail("%s %s: struct_size is %zu, expected at least %zu", what,
                  operand, stride, kTensorMin);
    const auto *t = reinterpret_cast<const gemmac_tensor *>(
        reinterpret_cast<const char *>(array) + size_t(i) * stride);
    if (t->struct_size != stride)
      return Fail("%s %s: struct_size is %zu, expected %zu like the first "
                  "tensor of the array",
                  what, operand, t->struct_size, stride);
    v->data = t->data;
    v->dtype = t->dtype;
    v->rank = t->rank;
    if (t->rank < 0 || t->rank > GEMMAC_MAX_RANK)
      return Fail("%s %s has rank %d, expected 0..%d", what, operand, t->rank,
                  GEMMAC_MAX_RANK);
    int64_t n = 1;
    for (int d = 0; d < t->rank; ++d) {
      v->shape[d] = t->shape[d];
      if (t->shape[d] < 0 || __builtin_mul_overflow(n, t->shape[d], &n) ||
          n > (int64_t(1) << 56))
        return Fail("%s %s has dimension %d = %lld, expected a size >= 0 "
                    "with a total element count that fits in memory",
                    what, operand, d, (long long)t->shape[d]);
    }
    v->elements = n;
    const int64_t size = DTypeSize(t->dtype);
    if (size > 1 && reinterpret_cast<uintptr_t>(t->data) % size != 0)
      return Fail("%s %s data %p is not aligned to its %lld-byte elements",
                  what, operand, t->data, (long long)size);
    // An absent optional input (dtype none) is the one tensor whose data
    // may be null; Absent() checks the rest of its form.
    if (n > 0 && t->data == nullptr && t->dtype != GEMMAC_DTYPE_NONE)
      return Fail("%s %s has %lld elements but a null data pointer", what,
                  operand, (long long)n);
    return true;
  }

  // An optional input the op was prepared without: the VM passes dtype
  // none, data == NULL and rank 0.
  bool Absent(const View &v, const char *operand) {
    if (v.dtype == GEMMAC_DTYPE_NONE && v.data == nullptr && v.rank == 0)
      return true;
    return Fail("%s has dtype %s (%d), data %p and rank %d, expected an "
                "absent input (dtype none, data NULL, rank 0) as prepared",
                operand, DTypeName(v.dtype), v.dtype, v.data, v.rank);
  }

  // A matrix operand [rows, cols] (dims < 0 accept any size) of a weight
  // dtype; a quantized one must be rank 2 with cols a multiple of its
  // format's group size, and a packed one rows a multiple of its row group
  // (the 8-row kernels read whole groups).
  bool Matrix(const View &v, const char *operand, int64_t rows, int64_t cols,
              const char *why, WeightMatrix *m) {
    if (IsQuantDType(v.dtype)) {
      if (v.rank != 2)
        return Fail("%s is %s with rank %d, expected a [rows, cols] matrix "
                    "(rank 2) for a quantized weight",
                    operand, DTypeName(v.dtype), v.rank);
      const int64_t g = GroupSize(v.dtype);
      if (v.shape[1] % g != 0)
        return Fail("%s is %s [%lld,%lld], expected cols to be a multiple "
                    "of the format's group size %lld",
                    operand, DTypeName(v.dtype), (long long)v.shape[0],
                    (long long)v.shape[1], (long long)g);
      const int64_t rg = RowGroupSize(v.dtype);
      if (v.shape[0] % rg != 0)
        return Fail("%s is %s [%lld,%lld], expected rows to be a multiple "
                    "of %lld (the rows the format packs together)",
                    operand, DTypeName(v.dtype), (long long)v.shape[0],
                    (long long)v.shape[1], (long long)rg);
    }
    if (!Shape2(v, operand, rows, cols, why))
      return false;
    *m = WeightMatrix{v.data, v.dtype, v.shape[0], v.shape[1]};
    return true;
  }

  bool DType(const View &v, const char *operand, int32_t expected) {
    if (v.dtype == expected)
      return true;
    return Fail("%s has dtype %s (%d), expected %s as prepared", operand,
                DTypeName(v.dtype), v.dtype, DTypeName(expected));
  }

  // dims[i] < 0 accepts any size; `why` explains where the sizes come from.
  bool Shape(const View &v, const char *operand, int rank, const int64_t *dims,
             const char *why) {
    bool ok = v.rank == rank;
    for (int i = 0; ok && i < rank; ++i)
      ok = dims[i] < 0 || v.shape[i] == dims[i];
    if (ok)
      return true;
    char found[96], expected[96];
    FormatShape(v.shape, v.rank, found, sizeof(found));
    FormatShape(dims, rank, expected, sizeof(expected));
    return Fail("%s has shape %s, expected %s (%s)", operand, found, expected,
                why);
  }
  bool Shape2(const View &v, const char *operand, int64_t d0, int64_t d1,
              const char *why) {
    const int64_t dims[2] = {d0, d1};
    return Shape(v, operand, 2, dims, why);
  }
  bool SameShape(const View &v, const char *operand, const View &like,
                 const char *why) {
    return Shape(v, operand, like.rank, like.shape, why);
  }

  bool Shape1(const View &v, const char *operand, int64_t d0, const char *why) {
    return Shape(v, operand, 1, &d0, why);
  }

private:
  void VFail(const char *fmt, va_list args) {
    char msg[448];
    std::vsnprintf(msg, sizeof(msg), fmt, args);
    code = err_.Fail(GEMMAC_PLUGIN_INVALID_ARGUMENT, "%s: %s", op_, msg);
  }

  const char *op_;
  Errors &err_;
};

struct Context {
  int64_t past = 0;
  const gemmac_kv_cache *kv = nullptr;
  uint32_t num_kv = 0;
  const volatile int32_t *cancel = nullptr;
};

} // namespace
} // namespace gemmac::cpu

using namespace gemmac::cpu;

struct gemmac_backend {
  explicit gemmac_backend(int threads) : arena(threads) {}
  tbb::task_arena arena;
  std::string description; // describe(): made at create
};

struct gemmac_kernel {
  Desc desc;
  std::vector<double> inv_freq; // rope, qkv_proj: theta^(-2i/D), i < D/2
  AlignedFloats scratch;        // attention: one accumulator per arena slot
  int64_t scratch_stride = 0;
  int64_t scratch_slots = 0;
};

namespace gemmac::cpu {
namespace {

int32_t Create(const gemmac_backend_options *options, gemmac_backend **out,
               gemmac_plugin_error *error) {
  Errors err(error);
  if (out == nullptr)
    return err.Fail(GEMMAC_PLUGIN_INVALID_ARGUMENT, "create: out is null");
  *out = nullptr;
  int32_t threads = 0;
  if (options != nullptr) {
    if (options->struct_size < kOptionsMin)
      return err.Fail(GEMMAC_PLUGIN_INVALID_ARGUMENT,
                      "create: options.struct_size is %zu, expected at least "
                      "%zu",
                      options->struct_size, kOptionsMin);
    threads = options->num_threads;
  }
  if (threads < 0)
    return err.Fail(GEMMAC_PLUGIN_INVALID_ARGUMENT,
                    "create: options.num_threads is %d, expected >= 0 "
                    "(0 = all cores)",
                    threads);
  try {
    if (threads == 0)
      threads = tbb::info::default_concurrency();
    auto *b = new gemmac_backend(threads);
    b->arena.initialize();
    b->description = Describe() + ", " + std::to_string(threads) +
                     (threads == 1 ? " thread" : " threads");
    *out = b;
    return GEMMAC_PLUGIN_OK;
  } catch (const std::bad_alloc &) {
    return err.Fail(GEMMAC_PLUGIN_OUT_OF_MEMORY, "create: out of memory");
  } catch (const std::exception &e) {
    return err.Fail(GEMMAC_PLUGIN_INTERNAL, "create: %s", e.what());
  }
}

void Destroy(gemmac_backend *backend) { delete backend; }

const char *DescribeBackend(gemmac_backend *backend) {
  return backend ? backend->description.c_str() : "";
}

// ABI 1.5: the host, whose memory alloc() draws from.
int32_t DeviceInfo(gemmac_backend *backend, gemmac_device_info *info,
                   gemmac_plugin_error *error) {
  if (backend == nullptr || info == nullptr ||
      info->struct_size < sizeof(info->struct_size))
    return Errors(error).Fail(GEMMAC_PLUGIN_INVALID_ARGUMENT,
                              "cpu: device_info: backend or info is null, or "
                              "info's struct_size is 0");
  gemmac_device_info d{};
  d.kind = GEMMAC_DEVICE_CPU;
  d.flags = GEMMAC_DEVICE_HOST_ADDRESSABLE;
  gemmac_sdk::HostMemory(&d.memory_bytes, &d.memory_available_bytes);
  std::snprintf(d.name, sizeof(d.name), "%s", backend->description.c_str());
  gemmac_sdk::CopyWhatFits(d, info, info->struct_size);
  return GEMMAC_PLUGIN_OK;
}

// ABI 1.6: the host is the device, so a copy is a memcpy and the module's
// mapping is read in place (zero-copy: the kernels stream the page cache).
// No streams: every launch is done when it returns.
int32_t Copy(gemmac_backend *backend, void *dst, const void *src, size_t bytes,
             int32_t kind, gemmac_stream *, gemmac_plugin_error *error) {
  if (backend == nullptr || kind < GEMMAC_COPY_HOST_TO_DEVICE ||
      kind > GEMMAC_COPY_DEVICE_TO_DEVICE || (bytes && (!dst || !src)))
    return Errors(error).Fail(GEMMAC_PLUGIN_INVALID_ARGUMENT,
                              "cpu: copy: kind %d (expected 0..2) or a null "
                              "pointer for %zu bytes",
                              kind, bytes);
  std::memmove(dst, src, bytes);
  return GEMMAC_PLUGIN_OK;
}

int32_t MapWeights(gemmac_backend *backend, const void *host, size_t,
                   void **device, int32_t *zero_copy,
                   gemmac_plugin_error *error) {
  if (backend == nullptr || host == nullptr || device == nullptr ||
      zero_copy == nullptr)
    return Errors(error).Fail(GEMMAC_PLUGIN_INVALID_ARGUMENT,
                              "cpu: map_weights: a null argument");
  *device = const_cast<void *>(host);
  *zero_copy = 1;
  return GEMMAC_PLUGIN_OK;
}

void UnmapWeights(gemmac_backend *, void *) {}

int32_t Supports(gemmac_backend *backend, const gemmac_op_desc *desc) {
  Errors none(nullptr);
  Desc d;
  return backend != nullptr && ReadDesc(desc, &d, none) == GEMMAC_PLUGIN_OK &&
         CheckAttrs(d, none) == GEMMAC_PLUGIN_OK;
}

int32_t Prepare(gemmac_backend *backend, const gemmac_op_desc *desc,
                gemmac_kernel **out, gemmac_plugin_error *error) {
  Errors err(error);
  if (backend == nullptr || out == nullptr)
    return err.Fail(GEMMAC_PLUGIN_INVALID_ARGUMENT,
                    "prepare: backend or out is null");
  *out = nullptr;
  Desc d;
  if (int32_t rc = ReadDesc(desc, &d, err); rc != GEMMAC_PLUGIN_OK)
    return rc;
  if (int32_t rc = CheckAttrs(d, err); rc != GEMMAC_PLUGIN_OK)
    return rc;
  try {
    auto *k = new gemmac_kernel();
    k->desc = d;
    if (d.op == GEMMAC_OP_ROPE || d.op == GEMMAC_OP_QKV_PROJ) {
      const int64_t D = d.attrs.head_dim;
      k->inv_freq.resize(size_t(D / 2));
      for (int64_t i = 0; i < D / 2; ++i)
        k->inv_freq[size_t(i)] =
            std::pow(double(d.attrs.theta), -2.0 * double(i) / double(D));
    }
    if (d.op == GEMMAC_OP_ATTENTION) {
      // One accumulator per head of an attention unit (loops.h), padded to
      // a cache line so slots never share one.
      const int64_t heads = std::min<int64_t>(
          d.attrs.num_heads / d.attrs.num_kv_heads, kMaxUnitHeads);
      k->scratch_stride = heads * ((int64_t(d.attrs.head_dim) + 15) / 16 * 16);
      k->scratch_slots = backend->arena.max_concurrency();
      if (!k->scratch.Allocate(size_t(k->scratch_stride * k->scratch_slots))) {
        delete k;
        return err.Fail(GEMMAC_PLUGIN_OUT_OF_MEMORY,
                        "attention: out of memory for scratch");
      }
    }
    *out = k;
    return GEMMAC_PLUGIN_OK;
  } catch (const std::bad_alloc &) {
    return err.Fail(GEMMAC_PLUGIN_OUT_OF_MEMORY, "%s: out of memory",
                    OpName(d.op));
  } catch (const std::exception &e) {
    return err.Fail(GEMMAC_PLUGIN_INTERNAL, "%s: %s", OpName(d.op), e.what());
  }
}

void Release(gemmac_backend *, gemmac_kernel *kernel) { delete kernel; }

// Operand checks shared by every op, then the op's own rules; on success the
// kernel runs inside the backend's arena.
int32_t LaunchChecked(gemmac_backend *backend, gemmac_kernel *kernel,
                      const gemmac_tensor *inputs, uint32_t num_inputs,
                      const gemmac_tensor *outputs, uint32_t num_outputs,
                      const gemmac_exec_context *context, Errors &err) {
  const Desc &d = kernel->desc;
  const gemmac_op_attrs &a = d.attrs;
  LaunchCheck check(d.op, err);
  Signature sig;
  SignatureOf(d.op, &sig);

  Context ctx;
  if (context != nullptr) {
    if (context->struct_size < kContextMin)
      return check.Reject("context.struct_size is %zu, expected at least %zu",
                          context->struct_size, kContextMin);
    ctx.past = context->past;
    ctx.kv = context->kv;
    ctx.num_kv = context->num_kv;
    ctx.cancel = context->cancel;
    if (ctx.cancel != nullptr && *ctx.cancel != 0)
      return err.Fail(GEMMAC_PLUGIN_CANCELLED, "%s: cancelled", OpName(d.op));
  }

  if (num_inputs != uint32_t(d.num_inputs) ||
      num_outputs != uint32_t(d.num_outputs))
    return check.Reject("got %u inputs and %u outputs, expected %d and %d",
                        num_inputs, num_outputs, d.num_inputs, d.num_outputs);
  View in[kMaxInputs], outs[kMaxOutputs];
  char operand[32];
  for (int i = 0; i < d.num_inputs; ++i) {
    const char *name = sig.inputs[i].name;
    std::snprintf(operand, sizeof(operand), "input %s", name);
    if (!check.Read(inputs, uint32_t(i), "input", name, &in[i]))
      return check.code;
    if (d.inputs[i] == GEMMAC_DTYPE_NONE
            ? !check.Absent(in[i], operand)
            : !check.DType(in[i], operand, d.inputs[i]))
      return check.code;
  }
  for (int i = 0; i < d.num_outputs; ++i) {
    const char *name = d.num_outputs > 1 ? sig.outputs[i] : "0";
    std::snprintf(operand, sizeof(operand), "output%s%s",
                  d.num_outputs > 1 ? " " : "", d.num_outputs > 1 ? name : "");
    if (!check.Read(outputs, uint32_t(i), "output", name, &outs[i]) ||
        !check.DType(outs[i], operand, GEMMAC_DTYPE_F32))
      return check.code;
  }
  const View &out = outs[0];

  const float *x = static_cast<const float *>(in[0].data);
  float *y = static_cast<float *>(out.data);
  // An optional f32 input's data, null when it was left out.
  auto opt = [&](int i) { return static_cast<const float *>(in[i].data); };
  switch (d.op) {
  case GEMMAC_OP_EMBED: {
    WeightMatrix table;
    if (!check.Shape1(in[0], "input tokens", -1, "[T]") ||
        !check.Matrix(in[1], "input table", -1, -1, "[V, H]", &table))
      return check.code;
    const int64_t T = in[0].dim(0), V = in[1].dim(0), H = in[1].dim(1);
    if (!check.Shape2(out, "output", T, H, "[T, H] from tokens and table"))
      return check.code;
    const auto *tokens = static_cast<const int32_t *>(in[0].data);
    for (int64_t t = 0; t < T; ++t)
      if (tokens[t] < 0 || tokens[t] >= V)
        return check.Reject("input tokens[%lld] is %d, expected a token id in "
                            "[0, %lld) (the rows of table)",
                            (long long)t, tokens[t], (long long)V);
    backend->arena.execute([&] { Embed(tokens, T, table, a.scale, y); });
    return GEMMAC_PLUGIN_OK;
  }
  case GEMMAC_OP_RMS_NORM: {
    if (!check.Shape2(in[0], "input x", -1, -1, "[T, N]") ||
        !check.Shape1(in[1], "input w", -1, "[D]"))
      return check.code;
    const int64_t T = in[0].dim(0), N = in[0].dim(1), D = in[1].dim(0);
    if (D == 0 || N % D != 0)
      return check.Reject("input w has shape [%lld], expected a size D > 0 "
                          "dividing the row size N = %lld of x",
                          (long long)D, (long long)N);
    if (!check.SameShape(out, "output", in[0], "the shape of x"))
      return check.code;
    backend->arena.execute([&] {
      RmsNorm(x, T, N, in[1].data, in[1].dtype, D, a.eps, a.offset, y);
    });
    return GEMMAC_PLUGIN_OK;
  }
  case GEMMAC_OP_LINEAR:
  case GEMMAC_OP_LM_HEAD: {
    const bool head = d.op == GEMMAC_OP_LM_HEAD;
    if (!check.Shape2(in[0], "input x", -1, -1, "[T, K]"))
      return check.code;
    const int64_t T = in[0].dim(0), K = in[0].dim(1);
    WeightMatrix w;
    if (!check.Matrix(in[1], head ? "input table" : "input w", -1, K,
                      head ? "[V, H] with H the row size of x"
                           : "[N, K] with K the row size of x",
                      &w))
      return check.code;
    int64_t N = in[1].dim(0);
    if (head) {
      if (a.rows > N)
        return check.Reject("attribute rows is %d, expected at most the %lld "
                            "rows of input table",
                            a.rows, (long long)N);
      N = a.rows;
    }
    if (!check.Shape2(out, "output", T, N,
                      head ? "[T, rows]" : "[T, N] from x and w"))
      return check.code;
    backend->arena.execute([&] { Linear(x, T, K, w, N, y); });
    return GEMMAC_PLUGIN_OK;
  }
  case GEMMAC_OP_ROPE: {
    if (context == nullptr)
      return check.Reject("context is null, expected the positions (past)");
    if (ctx.past < 0)
      return check.Reject("context.past is %lld, expected >= 0",
                          (long long)ctx.past);
    if (!check.Shape2(in[0], "input x", -1, -1, "[T, H*head_dim]"))
      return check.code;
    const int64_t T = in[0].dim(0), C = in[0].dim(1), D = a.head_dim;
    if (C % D != 0)
      return check.Reject("input x has row size %lld, expected a multiple of "
                          "head_dim = %lld",
                          (long long)C, (long long)D);
    if (!check.SameShape(out, "output", in[0], "the shape of x"))
      return check.code;
    backend->arena.execute([&] {
      Rope(x, T, C / D, D, ctx.past, double(a.rope_scale),
           kernel->inv_freq.data(), y);
    });
    return GEMMAC_PLUGIN_OK;
  }
  case GEMMAC_OP_ATTENTION: {
    const int64_t H = a.num_heads, KV = a.num_kv_heads, D = a.head_dim;
    if (!check.Shape2(in[0], "input q", -1, H * D, "[T, num_heads*head_dim]"))
      return check.code;
    const int64_t T = in[0].dim(0);
    if (!check.Shape2(in[1], "input k", T, KV * D,
                      "[T, num_kv_heads*head_dim]") ||
        !check.Shape2(in[2], "input v", T, KV * D,
                      "[T, num_kv_heads*head_dim]") ||
        !check.SameShape(out, "output", in[0], "the shape of q"))
      return check.code;
    if (context == nullptr)
      return check.Reject("context is null, expected the KV caches and past");
    if (ctx.past < 0)
      return check.Reject("context.past is %lld, expected >= 0",
                          (long long)ctx.past);
    if (ctx.kv == nullptr || uint32_t(a.layer) >= ctx.num_kv)
      return check.Reject("attribute layer is %d, expected a KV cache index "
                          "below context.num_kv = %u",
                          a.layer, ctx.kv ? ctx.num_kv : 0u);
    const size_t stride = ctx.kv->struct_size;
    if (stride < kKvMin)
      return check.Reject("context.kv[0].struct_size is %zu, expected at least "
                          "%zu",
                          stride, kKvMin);
    const auto *kv = reinterpret_cast<const gemmac_kv_cache *>(
        reinterpret_cast<const char *>(ctx.kv) + size_t(a.layer) * stride);
    if (kv->struct_size != stride)
      return check.Reject(
          "context.kv[%d].struct_size is %zu, expected %zu like "
          "kv[0]",
          a.layer, kv->struct_size, stride);
    float *k_scale = nullptr, *v_scale = nullptr;
    if (kv->dtype == GEMMAC_DTYPE_I8) {
      // The scales are ABI 1.1 fields: an older, smaller struct has none.
      if (stride < kKvI8Min)
        return check.Reject("KV cache %d has dtype i8 and struct_size %zu, "
                            "expected at least %zu (the ABI 1.1 struct with "
                            "k_scale and v_scale)",
                            a.layer, stride, kKvI8Min);
      if (kv->k_scale == nullptr || kv->v_scale == nullptr)
        return check.Reject("KV cache %d has dtype i8 and k_scale=%p "
                            "v_scale=%p, expected non-null f32 scales "
                            "[capacity, num_kv_heads]",
                            a.layer, static_cast<void *>(kv->k_scale),
                            static_cast<void *>(kv->v_scale));
      k_scale = kv->k_scale;
      v_scale = kv->v_scale;
    } else if (kv->dtype != GEMMAC_DTYPE_F32) {
      return check.Reject("KV cache %d has dtype %s (%d), expected f32 or i8",
                          a.layer, DTypeName(kv->dtype), kv->dtype);
    }
    if (kv->num_kv_heads != KV || kv->head_dim != D)
      return check.Reject("KV cache %d is [capacity, %d, %d], expected "
                          "[capacity, %lld, %lld] (num_kv_heads, head_dim)",
                          a.layer, kv->num_kv_heads, kv->head_dim,
                          (long long)KV, (long long)D);
    if (kv->capacity <= 0 || kv->k == nullptr || kv->v == nullptr)
      return check.Reject("KV cache %d has capacity %d and k=%p v=%p, expected "
                          "capacity > 0 and non-null buffers",
                          a.layer, kv->capacity, kv->k, kv->v);
    // No row a query still needs may be overwritten by this call: either
    // the whole context fits, or (sliding window) the ring holds the window
    // of the first query plus the T new rows.
    const int64_t cap = kv->capacity;
    const bool fits = ctx.past + T <= cap;
    const bool ring_ok = a.window > 0 && a.window + T - 1 <= cap;
    if (!fits && !ring_ok) {
      if (a.window > 0)
        return check.Reject("KV cache %d has capacity %lld, expected at least "
                            "window + T - 1 = %lld (window %d, T %lld) or "
                            "past + T = %lld",
                            a.layer, (long long)cap,
                            (long long)(a.window + T - 1), a.window,
                            (long long)T, (long long)(ctx.past + T));
      return check.Reject("KV cache %d has capacity %lld, expected at least "
                          "past + T = %lld for a global layer",
                          a.layer, (long long)cap, (long long)(ctx.past + T));
    }
    AttentionArgs args;
    args.q = x;
    args.k = static_cast<const float *>(in[1].data);
    args.v = static_cast<const float *>(in[2].data);
    args.out = y;
    args.T = T;
    args.H = H;
    args.KV = KV;
    args.D = D;
    args.past = ctx.past;
    args.scale = a.scale;
    args.window = a.window;
    args.softcap = a.softcap;
    args.k_cache = kv->k;
    args.v_cache = kv->v;
    args.k_scale = k_scale;
    args.v_scale = v_scale;
    args.capacity = cap;
    args.scratch = kernel->scratch.data;
    args.scratch_stride = kernel->scratch_stride;
    args.scratch_slots = kernel->scratch_slots;
    bool ok = true;
    backend->arena.execute([&] { ok = Attention(args); });
    if (!ok)
      return err.Fail(GEMMAC_PLUGIN_INTERNAL,
                      "attention: a worker ran outside the backend's arena "
                      "slots; the output is incomplete");
    return GEMMAC_PLUGIN_OK;
  }
  case GEMMAC_OP_MUL:
  case GEMMAC_OP_ADD: {
    if (!check.SameShape(in[1], "input b", in[0], "the shape of a") ||
        !check.SameShape(out, "output", in[0], "the shape of a"))
      return check.code;
    const float *b = static_cast<const float *>(in[1].data);
    const int64_t n = in[0].elements;
    backend->arena.execute([&] {
      if (d.op == GEMMAC_OP_MUL)
        Mul(x, b, n, y);
      else
        Add(x, b, n, y);
    });
    return GEMMAC_PLUGIN_OK;
  }
  case GEMMAC_OP_GELU_TANH:
  case GEMMAC_OP_SOFTCAP:
  case GEMMAC_OP_SCALE: {
    if (!check.SameShape(out, "output", in[0], "the shape of x"))
      return check.code;
    const int64_t n = in[0].elements;
    backend->arena.execute([&] {
      if (d.op == GEMMAC_OP_GELU_TANH)
        GeluTanh(x, n, y);
      else if (d.op == GEMMAC_OP_SOFTCAP)
        Softcap(x, n, a.softcap, y);
      else
        Scale(x, n, a.scale, y);
    });
    return GEMMAC_PLUGIN_OK;
  }
  case GEMMAC_OP_ADD_RMS_NORM: {
    if (!check.Shape2(in[0], "input x", -1, -1, "[T, N]"))
      return check.code;
    const int64_t T = in[0].dim(0), N = in[0].dim(1);
    if (!check.SameShape(in[1], "input y", in[0], "the shape of x") ||
        !check.Shape1(in[2], "input w", N, "[N], the row size of x") ||
        !check.SameShape(outs[0], "output s", in[0], "the shape of x") ||
        !check.SameShape(outs[1], "output h", in[0], "the shape of x"))
      return check.code;
    if (outs[0].data == outs[1].data && T * N > 0)
      return check.Reject("outputs s and h share memory %p, expected two "
                          "buffers",
                          outs[0].data);
    const float *w = static_cast<const float *>(in[2].data);
    float *sum = static_cast<float *>(outs[0].data);
    float *h = static_cast<float *>(outs[1].data);
    backend->arena.execute([&] {
      AddRmsNorm(x, static_cast<const float *>(in[1].data), T, N, w, a.eps,
                 a.offset, sum, h);
    });
    return GEMMAC_PLUGIN_OK;
  }
  case GEMMAC_OP_QKV_PROJ: {
    const int64_t H = a.num_heads, KV = a.num_kv_heads, D = a.head_dim;
    if (!check.Shape2(in[0], "input x", -1, -1, "[T, K]"))
      return check.code;
    const int64_t T = in[0].dim(0), K = in[0].dim(1);
    QkvArgs q;
    if ((in[1].data &&
         !check.Shape1(in[1], "input norm", K, "[K], the row size of x")) ||
        !check.Matrix(in[2], "input wq", H * D, K, "[num_heads*head_dim, K]",
                      &q.wq) ||
        !check.Matrix(in[3], "input wk", KV * D, K,
                      "[num_kv_heads*head_dim, K]", &q.wk) ||
        !check.Matrix(in[4], "input wv", KV * D, K,
                      "[num_kv_heads*head_dim, K]", &q.wv) ||
        (in[5].data && !check.Shape1(in[5], "input q_norm", D, "[head_dim]")) ||
        (in[6].data && !check.Shape1(in[6], "input k_norm", D, "[head_dim]")) ||
        !check.Shape2(outs[0], "output q", T, H * D,
                      "[T, num_heads*head_dim]") ||
        !check.Shape2(outs[1], "output k", T, KV * D,
                      "[T, num_kv_heads*head_dim]") ||
        !check.Shape2(outs[2], "output v", T, KV * D,
                      "[T, num_kv_heads*head_dim]"))
      return check.code;
    if (context == nullptr)
      return check.Reject("context is null, expected the positions (past)");
    if (ctx.past < 0)
      return check.Reject("context.past is %lld, expected >= 0",
                          (long long)ctx.past);
    q.x = x;
    q.T = T;
    q.K = K;
    q.norm = opt(1);
    q.q_norm = opt(5);
    q.k_norm = opt(6);
    q.H = H;
    q.KV = KV;
    q.D = D;
    q.past = ctx.past;
    q.rope_scale = double(a.rope_scale);
    q.inv_freq = kernel->inv_freq.data();
    q.eps = a.eps;
    q.offset = a.offset;
    q.q = static_cast<float *>(outs[0].data);
    q.k = static_cast<float *>(outs[1].data);
    q.v = static_cast<float *>(outs[2].data);
    backend->arena.execute([&] { QkvProj(q); });
    return GEMMAC_PLUGIN_OK;
  }
  case GEMMAC_OP_GATED_MLP: {
    if (!check.Shape2(in[0], "input x", -1, -1, "[T, K]"))
      return check.code;
    const int64_t T = in[0].dim(0), K = in[0].dim(1);
    WeightMatrix gate, up;
    if ((in[1].data &&
         !check.Shape1(in[1], "input norm", K, "[K], the row size of x")) ||
        !check.Matrix(in[2], "input w_gate", -1, K,
                      "[F, K] with K the row size of x", &gate) ||
        !check.Matrix(in[3], "input w_up", gate.rows, K, "[F, K] like w_gate",
                      &up) ||
        !check.Shape2(out, "output", T, gate.rows, "[T, F] from x and w_gate"))
      return check.code;
    backend->arena.execute(
        [&] { GatedMlp(x, T, K, opt(1), gate, up, a.eps, a.offset, y); });
    return GEMMAC_PLUGIN_OK;
  }
  case GEMMAC_OP_FINAL_HEAD: {
    if (!check.Shape2(in[0], "input x", -1, -1, "[T, H]"))
      return check.code;
    const int64_t T = in[0].dim(0), H = in[0].dim(1);
    WeightMatrix table;
    if (!check.Shape1(in[1], "input norm", H, "[H], the row size of x") ||
        !check.Matrix(in[2], "input table", -1, H,
                      "[V, H] with H the row size of x", &table))
      return check.code;
    if (a.rows > table.rows)
      return check.Reject("attribute rows is %d, expected at most the %lld "
                          "rows of input table",
                          a.rows, (long long)table.rows);
    // [T, rows], or [1, rows]: the last position's logits only.
    const int64_t R = a.rows;
    const bool last_only = out.rank == 2 && out.shape[0] == 1 && T > 1;
    if (!check.Shape2(out, "output", last_only ? 1 : T, R,
                      "[T, rows], or [1, rows] for the last position only"))
      return check.code;
    backend->arena.execute([&] {
      FinalHead(x, T, H, opt(1), table, R, a.eps, a.offset, a.softcap,
                last_only, y);
    });
    return GEMMAC_PLUGIN_OK;
  }
  default:
    return err.Fail(GEMMAC_PLUGIN_INTERNAL,
                    "op %d was prepared but has no "
                    "kernel",
                    d.op);
  }
}

int32_t Launch(gemmac_backend *backend, gemmac_kernel *kernel,
               const gemmac_tensor *inputs, uint32_t num_inputs,
               const gemmac_tensor *outputs, uint32_t num_outputs,
               const gemmac_exec_context *context, gemmac_plugin_error *error) {
  Errors err(error);
  if (backend == nullptr || kernel == nullptr)
    return err.Fail(GEMMAC_PLUGIN_INVALID_ARGUMENT,
                    "launch: backend or kernel is null");
  try {
    return LaunchChecked(backend, kernel, inputs, num_inputs, outputs,
                         num_outputs, context, err);
  } catch (const std::bad_alloc &) {
    return err.Fail(GEMMAC_PLUGIN_OUT_OF_MEMORY, "%s: out of memory",
                    OpName(kernel->desc.op));
  } catch (const std::exception &e) {
    return err.Fail(GEMMAC_PLUGIN_INTERNAL, "%s: %s", OpName(kernel->desc.op),
                    e.what());
  }
}

void *Alloc(gemmac_backend *, size_t bytes, size_t alignment) {
  if (alignment == 0)
    alignment = kDefaultAlignment;
  if ((alignment & (alignment - 1)) != 0)
    return nullptr;
  alignment = std::max(alignment, sizeof(void *));
  // aligned_alloc wants a multiple of the alignment; zero bytes still gets a
  // distinct, freeable pointer.
  const size_t rounded =
      (std::max<size_t>(bytes, 1) + alignment - 1) / alignment * alignment;
  if (rounded < bytes)
    return nullptr;
  return std::aligned_alloc(alignment, rounded);
}

void Free(gemmac_backend *, void *ptr) { std::free(ptr); }

} // namespace
} // namespace gemmac::cpu

extern "C" int32_t gemmac_cpu_plugin_entry(uint32_t abi_major,
                                           gemmac_plugin_api *api,
                                           size_t api_size) {
  if (abi_major != GEMMAC_PLUGIN_ABI_MAJOR)
    return GEMMAC_PLUGIN_UNSUPPORTED;
  if (api == nullptr || api_size < sizeof(api->struct_size))
    return GEMMAC_PLUGIN_INVALID_ARGUMENT;
  gemmac_plugin_api table{};
  table.abi_major = GEMMAC_PLUGIN_ABI_MAJOR;
  table.abi_minor = GEMMAC_PLUGIN_ABI_MINOR;
  table.name = "cpu";
  table.version = "0.1.0";
  table.create = Create;
  table.destroy = Destroy;
  table.supports = Supports;
  table.prepare = Prepare;
  table.release = Release;
  table.launch = Launch;
  table.alloc = Alloc;
  table.free = Free;
  table.describe = DescribeBackend;
  table.device_info = DeviceInfo;
  table.copy = Copy;
  table.map_weights = MapWeights;
  table.unmap_weights = UnmapWeights;
  // An older caller's smaller table gets what fits, and no byte past it.
  gemmac_sdk::CopyWhatFits(table, api, api_size);
  return GEMMAC_PLUGIN_OK;
}
