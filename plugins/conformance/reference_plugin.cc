// The reference backend plugin: every op of docs/ops.md, the fused ones
// included, written the plainest way (no threads, no SIMD), reading every
// weight dtype (the quantized ones decoded element by element) and f32 or
// int8 KV caches. Two users:
//   - the conformance suite (gemmac-conformance), which compares a plugin
//     under test with this one through the ABI only, and runs its ABI-rule
//     checks on it too (so it answers supports() honestly, refuses what it
//     cannot run with a message, and checks operands at launch);
//   - the runtime's tests, so the VM and sessions can be tested before, and
//     independently of, backends/cpu. It holds the runtime to the ABI's
//     contract for absent inputs: GEMMAC_DTYPE_NONE, data NULL, rank 0, and
//     only in an optional slot.
// Built as libgemmac_testref.so (exports gemmac_plugin_entry) and linked
// statically into test binaries under GEMMAC_TESTREF_ENTRY.
#include <cmath>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "gemmac/plugin.h"

#ifndef GEMMAC_TESTREF_ENTRY
#define GEMMAC_TESTREF_ENTRY gemmac_plugin_entry
#endif

namespace {

struct Backend {
  int launches = 0;
};
struct Kernel {
  int32_t op;
  gemmac_op_attrs a;
};

float Half(uint16_t h) {
  int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
  float v = exp == 0    ? std::ldexp(float(man), -24)
            : exp == 31 ? (man ? NAN : INFINITY)
                        : std::ldexp(float(man | 1024), exp - 25);
  return sign ? -v : v;
}

float Load(const void *p, int32_t dtype, int64_t i) {
  if (dtype == GEMMAC_DTYPE_F32)
    return static_cast<const float *>(p)[i];
  uint16_t h = static_cast<const uint16_t *>(p)[i];
  if (dtype == GEMMAC_DTYPE_BF16) {
    uint32_t bits = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  return Half(h); // IEEE half
}

// Element i (row-major) of a weight of any dtype: the block formats of
// plugin.h / docs/quantization.md are decoded one element at a time.
float WeightAt(const gemmac_tensor &w, int64_t i) {
  if (w.dtype != GEMMAC_DTYPE_Q8C && w.dtype != GEMMAC_DTYPE_Q4G32 &&
      w.dtype != GEMMAC_DTYPE_Q4G128 && w.dtype != GEMMAC_DTYPE_Q4G32R8)
    return Load(w.data, w.dtype, i);
  const uint8_t *base = static_cast<const uint8_t *>(w.data);
  int64_t rows = w.shape[0], cols = w.shape[1];
  int64_t r = i / cols, c = i % cols;
  if (w.dtype == GEMMAC_DTYPE_Q4G32R8) {
    // Q4G32 blocks in 144-byte runs of 8 rows: 8 f16 d, then 8 qs[16].
    const uint8_t *run = base + ((r / 8) * (cols / 32) + c / 32) * 144;
    uint16_t dh;
    std::memcpy(&dh, run + 2 * (r % 8), 2);
    const uint8_t *qs = run + 16 + 16 * (r % 8);
    int64_t j = c % 32;
    int nib = j < 16 ? qs[j] & 15 : qs[j - 16] >> 4;
    return float(nib - 8) * Half(dh);
  }
  if (w.dtype == GEMMAC_DTYPE_Q8C) {
    float scale;
    std::memcpy(&scale, base + rows * cols + 4 * r, 4);
    return float(int8_t(base[r * cols + c])) * scale;
  }
  bool g32 = w.dtype == GEMMAC_DTYPE_Q4G32;
  int64_t G = g32 ? 32 : 128, block_bytes = g32 ? 18 : 68;
  const uint8_t *blk = base + (r * (cols / G) + c / G) * block_bytes;
  uint16_t dh, mh = 0;
  std::memcpy(&dh, blk, 2);
  if (!g32)
    std::memcpy(&mh, blk + 2, 2);
  const uint8_t *qs = blk + (g32 ? 2 : 4);
  int64_t j = c % G;
  int nib = j < G / 2 ? qs[j] & 15 : qs[j - G / 2] >> 4;
  return g32 ? float(nib - 8) * Half(dh) : float(nib) * Half(dh) + Half(mh);
}

// The optional inputs of the fused ops (docs/ops.md): slot i of `op`.
bool IsOptional(int32_t op, uint32_t i) {
  switch (op) {
  case GEMMAC_OP_QKV_PROJ:
    return i == 1 || i == 5 || i == 6;
  case GEMMAC_OP_GATED_MLP:
    return i == 1;
  default:
    return false;
  }
}

bool Absent(const gemmac_tensor &t) { return t.dtype == GEMMAC_DTYPE_NONE; }

// Writes a message into the caller's error struct, only as far as its
// struct_size reaches (an older caller's may be smaller), NUL-terminated.
__attribute__((format(printf, 3, 4))) int Fail(gemmac_plugin_error *e, int code,
                                               const char *fmt, ...) {
  const size_t at = offsetof(gemmac_plugin_error, message);
  if (e == nullptr || e->struct_size <= at)
    return code;
  size_t cap = e->struct_size - at;
  if (cap > sizeof(e->message))
    cap = sizeof(e->message);
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(e->message, cap, fmt, args);
  va_end(args);
  return code;
}
int Fail(gemmac_plugin_error *e, const char *msg) {
  return Fail(e, GEMMAC_PLUGIN_INVALID_ARGUMENT, "%s", msg);
}

const char *OpName(int32_t op) {
  static const char *const kNames[] = {
      "embed",     "rms_norm",     "linear",   "rope",      "attention",
      "gelu_tanh", "mul",          "add",      "softcap",   "scale",
      "lm_head",   "add_rms_norm", "qkv_proj", "gated_mlp", "final_head"};
  return op >= 0 && op < GEMMAC_OP_COUNT_ ? kNames[op] : "unknown op";
}

bool IsQuant(int32_t dt) {
  return dt == GEMMAC_DTYPE_Q8C || dt == GEMMAC_DTYPE_Q4G32 ||
         dt == GEMMAC_DTYPE_Q4G128 || dt == GEMMAC_DTYPE_Q4G32R8;
}
bool IsFloatWeight(int32_t dt) {
  return dt == GEMMAC_DTYPE_F32 || dt == GEMMAC_DTYPE_BF16 ||
         dt == GEMMAC_DTYPE_F16;
}

// What each input slot takes: a fixed dtype, any weight dtype ('W'), or a
// float weight dtype ('F'); optional slots may also be GEMMAC_DTYPE_NONE.
// The dtypes docs/ops.md allows, which is also what backends/cpu takes.
struct Slot {
  char kind; // 'f' f32, 'i' i32, 'W' any weight, 'F' float weight
  bool optional;
};
struct Signature {
  int num_inputs, num_outputs;
  Slot in[7];
};
bool SignatureOf(int32_t op, Signature *s) {
  const Slot f{'f', false}, W{'W', false}, o{'f', true};
  switch (op) {
  case GEMMAC_OP_EMBED:
    *s = {2, 1, {{'i', false}, W}};
    return true;
  case GEMMAC_OP_RMS_NORM:
    *s = {2, 1, {f, {'F', false}}};
    return true;
  case GEMMAC_OP_LINEAR:
  case GEMMAC_OP_LM_HEAD:
    *s = {2, 1, {f, W}};
    return true;
  case GEMMAC_OP_ROPE:
  case GEMMAC_OP_GELU_TANH:
  case GEMMAC_OP_SOFTCAP:
  case GEMMAC_OP_SCALE:
    *s = {1, 1, {f}};
    return true;
  case GEMMAC_OP_ATTENTION:
    *s = {3, 1, {f, f, f}};
    return true;
  case GEMMAC_OP_MUL:
  case GEMMAC_OP_ADD:
    *s = {2, 1, {f, f}};
    return true;
  case GEMMAC_OP_ADD_RMS_NORM:
    *s = {3, 2, {f, f, f}};
    return true;
  case GEMMAC_OP_QKV_PROJ:
    *s = {7, 3, {f, o, W, W, W, o, o}};
    return true;
  case GEMMAC_OP_GATED_MLP:
    *s = {4, 1, {f, o, W, W}};
    return true;
  case GEMMAC_OP_FINAL_HEAD:
    *s = {3, 1, {f, f, W}};
    return true;
  default:
    return false;
  }
}

bool SlotTakes(const Slot &s, int32_t dt) {
  if (dt == GEMMAC_DTYPE_NONE)
    return s.optional;
  switch (s.kind) {
  case 'i':
    return dt == GEMMAC_DTYPE_I32;
  case 'W':
    return IsFloatWeight(dt) || IsQuant(dt);
  case 'F':
    return IsFloatWeight(dt);
  default:
    return dt == GEMMAC_DTYPE_F32;
  }
}

// The op, input and output counts and dtypes of a description, and the
// attributes the kernels divide by; a message on the first mismatch.
int32_t CheckDesc(const gemmac_op_desc *d, gemmac_plugin_error *err) {
  if (d == nullptr ||
      d->struct_size < offsetof(gemmac_op_desc, output_dtypes) + sizeof(void *))
    return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "testref: op description is null or its struct_size %zu is "
                "below the ABI 1.0 size %zu",
                d ? d->struct_size : size_t(0),
                offsetof(gemmac_op_desc, output_dtypes) + sizeof(void *));
  Signature s;
  if (!SignatureOf(d->op, &s))
    return Fail(err, GEMMAC_PLUGIN_UNSUPPORTED,
                "testref: op code %d is unknown, expected 0..%d", d->op,
                GEMMAC_OP_COUNT_ - 1);
  const char *name = OpName(d->op);
  if (d->num_inputs != uint32_t(s.num_inputs) ||
      d->num_outputs != uint32_t(s.num_outputs) ||
      (d->num_inputs && !d->input_dtypes) ||
      (d->num_outputs && !d->output_dtypes))
    return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "testref: %s has %u inputs and %u outputs, expected %d and %d "
                "with their dtypes",
                name, d->num_inputs, d->num_outputs, s.num_inputs,
                s.num_outputs);
  for (int i = 0; i < s.num_inputs; ++i)
    if (!SlotTakes(s.in[i], d->input_dtypes[i]))
      return Fail(err,
                  d->input_dtypes[i] == GEMMAC_DTYPE_NONE
                      ? GEMMAC_PLUGIN_INVALID_ARGUMENT
                      : GEMMAC_PLUGIN_UNSUPPORTED,
                  "testref: %s input %d has dtype %d, expected %s", name, i,
                  d->input_dtypes[i],
                  s.in[i].kind == 'W'   ? "a weight dtype (0,1,2,5..8)"
                  : s.in[i].kind == 'F' ? "f32, bf16 or f16 (0..2)"
                  : s.in[i].kind == 'i' ? "i32 (3)"
                  : s.in[i].optional    ? "f32 (0) or none (-1)"
                                        : "f32 (0)");
  for (int i = 0; i < s.num_outputs; ++i)
    if (d->output_dtypes[i] != GEMMAC_DTYPE_F32)
      return Fail(err, GEMMAC_PLUGIN_UNSUPPORTED,
                  "testref: %s output %d has dtype %d, expected f32 (0)", name,
                  i, d->output_dtypes[i]);
  const gemmac_op_attrs &a = d->attrs;
  const bool heads =
      d->op == GEMMAC_OP_ATTENTION || d->op == GEMMAC_OP_QKV_PROJ;
  if ((heads || d->op == GEMMAC_OP_ROPE) &&
      (a.head_dim <= 0 || a.head_dim % 2 != 0))
    return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "testref: %s attribute head_dim is %d, expected an even "
                "number > 0",
                name, a.head_dim);
  if (heads && (a.num_heads <= 0 || a.num_kv_heads <= 0 ||
                a.num_heads % a.num_kv_heads != 0))
    return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "testref: %s attributes num_heads %d, num_kv_heads %d, "
                "expected > 0 with num_kv_heads dividing num_heads",
                name, a.num_heads, a.num_kv_heads);
  if ((d->op == GEMMAC_OP_LM_HEAD || d->op == GEMMAC_OP_FINAL_HEAD) &&
      a.rows <= 0)
    return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "testref: %s attribute rows is %d, expected > 0", name, a.rows);
  return GEMMAC_PLUGIN_OK;
}

// Shape checks of one launch: the first mismatch becomes the message.
struct ShapeCheck {
  const char *op;
  gemmac_plugin_error *err;
  int32_t code = GEMMAC_PLUGIN_OK;
  bool Rank(const gemmac_tensor &t, const char *what, int rank,
            const int64_t *dims) {
    bool ok = t.rank == rank;
    for (int i = 0; ok && i < rank; ++i)
      ok = dims[i] < 0 || t.shape[i] == dims[i];
    if (ok)
      return true;
    char found[96] = "[", want[96] = "[";
    for (int i = 0; i < t.rank && i < GEMMAC_MAX_RANK; ++i)
      std::snprintf(found + std::strlen(found), 20, "%s%lld", i ? "," : "",
                    (long long)t.shape[i]);
    for (int i = 0; i < rank; ++i)
      std::snprintf(want + std::strlen(want), 20, "%s%lld", i ? "," : "",
                    (long long)dims[i]);
    std::strcat(found, "]");
    std::strcat(want, "]");
    code = Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "testref: %s %s has shape %s (rank %d), expected %s (-1: any)",
                op, what, found, t.rank, want);
    return false;
  }
  bool Is1(const gemmac_tensor &t, const char *what, int64_t d0) {
    return Rank(t, what, 1, &d0);
  }
  bool Is2(const gemmac_tensor &t, const char *what, int64_t d0, int64_t d1) {
    const int64_t d[2] = {d0, d1};
    return Rank(t, what, 2, d);
  }
  bool Same(const gemmac_tensor &t, const char *what, const gemmac_tensor &l) {
    return Rank(t, what, l.rank, l.shape);
  }
  // A weight matrix [rows, cols] whose cols (and rows, for Q4G32R8) fit
  // its format's groups.
  bool Weight(const gemmac_tensor &t, const char *what, int64_t d0,
              int64_t d1) {
    if (!Is2(t, what, d0, d1))
      return false;
    if (!IsFloatWeight(t.dtype) &&
        gemmac_weight_bytes(t.dtype, t.shape[0], t.shape[1]) < 0) {
      code =
          Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
               "testref: %s %s is [%lld,%lld] of dtype %d, expected cols "
               "(and rows for q4g32r8) to fit the format's groups",
               op, what, (long long)t.shape[0], (long long)t.shape[1], t.dtype);
      return false;
    }
    return true;
  }
};

// The operands of one launch against the prepared op: counts, dtypes and
// shapes consistent with each other and the attributes (docs/ops.md), so a
// caller's mistake is an error with a message, never a wild read.
int32_t CheckOperands(int32_t op, const gemmac_op_attrs &a,
                      const gemmac_tensor *in, uint32_t num_in,
                      const gemmac_tensor *out, uint32_t num_out,
                      const gemmac_exec_context *ctx,
                      gemmac_plugin_error *err) {
  Signature s;
  SignatureOf(op, &s);
  const char *name = OpName(op);
  if (num_in != uint32_t(s.num_inputs) || num_out != uint32_t(s.num_outputs) ||
      (num_in && !in) || (num_out && !out))
    return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "testref: %s launched with %u inputs and %u outputs, expected "
                "%d and %d",
                name, num_in, num_out, s.num_inputs, s.num_outputs);
  if (ctx == nullptr || ctx->tokens < 0 || ctx->past < 0)
    return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "testref: %s context is null or has tokens %lld, past %lld, "
                "expected both >= 0",
                name, ctx ? (long long)ctx->tokens : -1LL,
                ctx ? (long long)ctx->past : -1LL);
  for (uint32_t i = 0; i < num_in + num_out; ++i) {
    const gemmac_tensor &t = i < num_in ? in[i] : out[i - num_in];
    if (t.rank < 0 || t.rank > GEMMAC_MAX_RANK ||
        (t.data == nullptr && t.dtype != GEMMAC_DTYPE_NONE))
      return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  "testref: %s %s %u has rank %d and data %p, expected rank "
                  "0..%d and data",
                  name, i < num_in ? "input" : "output",
                  i < num_in ? i : i - num_in, t.rank, t.data, GEMMAC_MAX_RANK);
  }
  ShapeCheck c{name, err};
  const int64_t T = in[0].rank > 0 ? in[0].shape[0] : 0;
  const int64_t K = in[0].rank > 1 ? in[0].shape[1] : 0;
  const int64_t D = a.head_dim;
  switch (op) {
  case GEMMAC_OP_EMBED:
    if (!c.Is1(in[0], "input tokens", -1) ||
        !c.Weight(in[1], "input table", -1, -1) ||
        !c.Is2(out[0], "output", T, in[1].shape[1]))
      return c.code;
    break;
  case GEMMAC_OP_RMS_NORM:
    if (!c.Is2(in[0], "input x", -1, -1) || !c.Is1(in[1], "input w", -1) ||
        !c.Same(out[0], "output", in[0]))
      return c.code;
    if (in[1].shape[0] <= 0 || K % in[1].shape[0] != 0)
      return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  "testref: rms_norm input w has %lld elements, expected a "
                  "divisor of the row size %lld of x",
                  (long long)in[1].shape[0], (long long)K);
    break;
  case GEMMAC_OP_LINEAR:
  case GEMMAC_OP_LM_HEAD: {
    const bool head = op == GEMMAC_OP_LM_HEAD;
    if (!c.Is2(in[0], "input x", -1, -1) ||
        !c.Weight(in[1], "input w", -1, K) ||
        !c.Is2(out[0], "output", T, head ? a.rows : in[1].shape[0]))
      return c.code;
    if (head && a.rows > in[1].shape[0])
      return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  "testref: lm_head attribute rows is %d, expected at most "
                  "the %lld rows of the table",
                  a.rows, (long long)in[1].shape[0]);
    break;
  }
  case GEMMAC_OP_ROPE:
    if (!c.Is2(in[0], "input x", -1, -1) || !c.Same(out[0], "output", in[0]))
      return c.code;
    if (K % D != 0)
      return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  "testref: rope input x has row size %lld, expected a "
                  "multiple of head_dim %lld",
                  (long long)K, (long long)D);
    break;
  case GEMMAC_OP_ATTENTION:
    if (!c.Is2(in[0], "input q", -1, int64_t(a.num_heads) * D) ||
        !c.Is2(in[1], "input k", T, int64_t(a.num_kv_heads) * D) ||
        !c.Is2(in[2], "input v", T, int64_t(a.num_kv_heads) * D) ||
        !c.Same(out[0], "output", in[0]))
      return c.code;
    break;
  case GEMMAC_OP_MUL:
  case GEMMAC_OP_ADD:
    if (!c.Same(in[1], "input b", in[0]) || !c.Same(out[0], "output", in[0]))
      return c.code;
    break;
  case GEMMAC_OP_GELU_TANH:
  case GEMMAC_OP_SOFTCAP:
  case GEMMAC_OP_SCALE:
    if (!c.Same(out[0], "output", in[0]))
      return c.code;
    break;
  case GEMMAC_OP_ADD_RMS_NORM:
    if (!c.Is2(in[0], "input x", -1, -1) || !c.Same(in[1], "input y", in[0]) ||
        !c.Is1(in[2], "input w", K) || !c.Same(out[0], "output s", in[0]) ||
        !c.Same(out[1], "output h", in[0]))
      return c.code;
    break;
  case GEMMAC_OP_QKV_PROJ: {
    const int64_t HD = int64_t(a.num_heads) * D,
                  KVD = int64_t(a.num_kv_heads) * D;
    if (!c.Is2(in[0], "input x", -1, -1) ||
        (!Absent(in[1]) && !c.Is1(in[1], "input norm", K)) ||
        !c.Weight(in[2], "input wq", HD, K) ||
        !c.Weight(in[3], "input wk", KVD, K) ||
        !c.Weight(in[4], "input wv", KVD, K) ||
        (!Absent(in[5]) && !c.Is1(in[5], "input q_norm", D)) ||
        (!Absent(in[6]) && !c.Is1(in[6], "input k_norm", D)) ||
        !c.Is2(out[0], "output q", T, HD) ||
        !c.Is2(out[1], "output k", T, KVD) ||
        !c.Is2(out[2], "output v", T, KVD))
      return c.code;
    break;
  }
  case GEMMAC_OP_GATED_MLP:
    if (!c.Is2(in[0], "input x", -1, -1) ||
        (!Absent(in[1]) && !c.Is1(in[1], "input norm", K)) ||
        !c.Weight(in[2], "input w_gate", -1, K) ||
        !c.Weight(in[3], "input w_up", in[2].shape[0], K) ||
        !c.Is2(out[0], "output", T, in[2].shape[0]))
      return c.code;
    break;
  case GEMMAC_OP_FINAL_HEAD:
    if (!c.Is2(in[0], "input x", -1, -1) || !c.Is1(in[1], "input norm", K) ||
        !c.Weight(in[2], "input table", -1, K))
      return c.code;
    if (a.rows > in[2].shape[0])
      return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  "testref: final_head attribute rows is %d, expected at most "
                  "the %lld rows of the table",
                  a.rows, (long long)in[2].shape[0]);
    if (!(out[0].rank == 2 && out[0].shape[0] == 1) &&
        !c.Is2(out[0], "output", T, a.rows))
      return c.code;
    if (!c.Is2(out[0], "output", -1, a.rows))
      return c.code;
    break;
  default:
    break;
  }
  // The kernels below read T rows (the context's token count).
  if (op != GEMMAC_OP_EMBED && op != GEMMAC_OP_GELU_TANH &&
      op != GEMMAC_OP_MUL && op != GEMMAC_OP_ADD && op != GEMMAC_OP_SOFTCAP &&
      op != GEMMAC_OP_SCALE && T != ctx->tokens)
    return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "testref: %s input 0 has %lld rows, expected context.tokens "
                "= %lld",
                name, (long long)T, (long long)ctx->tokens);
  if (op == GEMMAC_OP_EMBED && T != ctx->tokens)
    return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                "testref: embed input tokens has %lld ids, expected "
                "context.tokens = %lld",
                (long long)T, (long long)ctx->tokens);
  return GEMMAC_PLUGIN_OK;
}

int32_t Create(const gemmac_backend_options *, gemmac_backend **out,
               gemmac_plugin_error *) {
  *out = reinterpret_cast<gemmac_backend *>(new Backend());
  return GEMMAC_PLUGIN_OK;
}
void Destroy(gemmac_backend *b) { delete reinterpret_cast<Backend *>(b); }
int32_t Supports(gemmac_backend *, const gemmac_op_desc *d) {
  return CheckDesc(d, nullptr) == GEMMAC_PLUGIN_OK;
}
int32_t Prepare(gemmac_backend *, const gemmac_op_desc *d, gemmac_kernel **out,
                gemmac_plugin_error *err) {
  // The contract of absent inputs: GEMMAC_DTYPE_NONE only in optional slots.
  for (uint32_t i = 0; d && d->input_dtypes && i < d->num_inputs; ++i)
    if (d->input_dtypes[i] == GEMMAC_DTYPE_NONE && !IsOptional(d->op, i))
      return Fail(err, "prepare: a required input has GEMMAC_DTYPE_NONE");
  if (int32_t rc = CheckDesc(d, err); rc != GEMMAC_PLUGIN_OK)
    return rc;
  auto *k = new (std::nothrow) Kernel{d->op, d->attrs};
  if (k == nullptr)
    return Fail(err, GEMMAC_PLUGIN_OUT_OF_MEMORY,
                "testref: prepare: out of "
                "memory");
  *out = reinterpret_cast<gemmac_kernel *>(k);
  return GEMMAC_PLUGIN_OK;
}
void Release(gemmac_backend *, gemmac_kernel *k) {
  delete reinterpret_cast<Kernel *>(k);
}
void *Alloc(gemmac_backend *, size_t bytes, size_t alignment) {
  if (alignment & (alignment - 1))
    return nullptr; // not a power of two
  if (alignment < sizeof(void *))
    alignment = sizeof(void *);
  // A request near SIZE_MAX must fail, not wrap around to a small block.
  if (bytes > SIZE_MAX - alignment)
    return nullptr;
  size_t rounded = (bytes + alignment - 1) / alignment * alignment;
  return std::aligned_alloc(alignment, rounded ? rounded : alignment);
}
void Free(gemmac_backend *, void *p) { std::free(p); }

int64_t Elements(const gemmac_tensor &t) {
  int64_t n = 1;
  for (int i = 0; i < t.rank; ++i)
    n *= t.shape[i];
  return n;
}

// ---- building blocks of the ops, on rows of f32 ----------------------------

// y[t] = rms_norm(x[t]) * (offset + w) over groups of dim(w) elements.
void RmsNormRows(const float *x, int64_t T, int64_t N, const gemmac_tensor &w,
                 float eps, float offset, float *y) {
  int64_t D = w.shape[0];
  for (int64_t t = 0; t < T; ++t)
    for (int64_t g = 0; g < N; g += D) {
      double ss = 0;
      for (int64_t i = 0; i < D; ++i)
        ss += double(x[t * N + g + i]) * x[t * N + g + i];
      float r = 1.0f / std::sqrt(float(ss / D) + eps);
      for (int64_t i = 0; i < D; ++i)
        y[t * N + g + i] = x[t * N + g + i] * r * (offset + WeightAt(w, i));
    }
}

// y[t, n] = x[t] . w[n] for the first N rows of w.
void MatmulRows(const float *x, int64_t T, int64_t K, const gemmac_tensor &w,
                int64_t N, float *y) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n) {
      double acc = 0;
      for (int64_t i = 0; i < K; ++i)
        acc += double(x[t * K + i]) * WeightAt(w, n * K + i);
      y[t * N + n] = float(acc);
    }
}

void RopeRows(const float *x, int64_t T, int64_t W, const gemmac_op_attrs &a,
              int64_t past, float *y) {
  int64_t D = a.head_dim, half = D / 2;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < W / D; ++h)
      for (int64_t i = 0; i < half; ++i) {
        double ang = double(past + t) / a.rope_scale *
                     std::pow(double(a.theta), -2.0 * i / D);
        const float *xs = x + t * W + h * D;
        float *ys = y + t * W + h * D;
        float x0 = xs[i], x1 = xs[i + half];
        ys[i] = float(x0 * std::cos(ang) - x1 * std::sin(ang));
        ys[i + half] = float(x1 * std::cos(ang) + x0 * std::sin(ang));
      }
}

float Gelu(float v) {
  return 0.5f * v *
         (1.0f + std::tanh(0.7978845608f * (v + 0.044715f * v * v * v)));
}

// The KV cache rows of one layer, f32 or int8 with per-(row, head) scales.
struct KvView {
  const gemmac_kv_cache &c;
  int64_t KV, D;
  bool i8() const { return c.dtype == GEMMAC_DTYPE_I8; }
  // Writes the KV*D values of one position into row `row` of k or v.
  void Put(bool is_v, int64_t row, const float *x) const {
    if (!i8()) {
      float *dst = static_cast<float *>(is_v ? c.v : c.k) + row * KV * D;
      std::memcpy(dst, x, sizeof(float) * KV * D);
      return;
    }
    int8_t *dst = static_cast<int8_t *>(is_v ? c.v : c.k) + row * KV * D;
    float *scales = (is_v ? c.v_scale : c.k_scale) + row * KV;
    for (int64_t g = 0; g < KV; ++g) {
      float mx = 0;
      for (int64_t i = 0; i < D; ++i)
        mx = std::fmax(mx, std::fabs(x[g * D + i]));
      float scale = mx / 127.0f;
      scales[g] = scale;
      for (int64_t i = 0; i < D; ++i) {
        float q = scale > 0 ? std::nearbyint(x[g * D + i] / scale) : 0.0f;
        dst[g * D + i] = int8_t(std::fmax(-127.0f, std::fmin(127.0f, q)));
      }
    }
  }
  float Get(bool is_v, int64_t row, int64_t g, int64_t i) const {
    int64_t at = (row * KV + g) * D + i;
    if (!i8())
      return static_cast<const float *>(is_v ? c.v : c.k)[at];
    const float *scales = is_v ? c.v_scale : c.k_scale;
    return float(static_cast<const int8_t *>(is_v ? c.v : c.k)[at]) *
           scales[row * KV + g];
  }
};

int32_t Attention(const gemmac_op_attrs &a, const gemmac_tensor *in, float *y,
                  const gemmac_exec_context *ctx, gemmac_plugin_error *err) {
  if (a.layer < 0 || uint32_t(a.layer) >= ctx->num_kv)
    return Fail(err, "attention: layer out of range");
  const gemmac_kv_cache &kv = ctx->kv[a.layer];
  if (kv.dtype == GEMMAC_DTYPE_I8 &&
      (kv.struct_size < offsetof(gemmac_kv_cache, v_scale) + sizeof(float *) ||
       kv.k_scale == nullptr || kv.v_scale == nullptr))
    return Fail(err, "attention: int8 KV cache without k_scale/v_scale");
  if (kv.dtype != GEMMAC_DTYPE_I8 && kv.dtype != GEMMAC_DTYPE_F32)
    return Fail(err, "attention: KV cache dtype is neither f32 nor i8");
  const float *q = static_cast<const float *>(in[0].data);
  const float *kin = static_cast<const float *>(in[1].data);
  const float *vin = static_cast<const float *>(in[2].data);
  const int64_t T = ctx->tokens;
  int64_t H = a.num_heads, KV = a.num_kv_heads, D = a.head_dim;
  KvView cache{kv, KV, D};
  for (int64_t t = 0; t < T; ++t) {
    int64_t row = (ctx->past + t) % kv.capacity;
    cache.Put(false, row, kin + t * KV * D);
    cache.Put(true, row, vin + t * KV * D);
  }
  std::vector<double> s(ctx->past + T);
  for (int64_t t = 0; t < T; ++t) {
    int64_t p = ctx->past + t;
    int64_t lo = a.window > 0 ? p - a.window + 1 : 0;
    if (lo < 0)
      lo = 0;
    if (p - lo + 1 > kv.capacity)
      return Fail(err, "attention: visible keys exceed the cache");
    for (int64_t h = 0; h < H; ++h) {
      int64_t g = h / (H / KV);
      double mx = -INFINITY;
      for (int64_t j = lo; j <= p; ++j) {
        double d = 0;
        for (int64_t i = 0; i < D; ++i)
          d += double(q[(t * H + h) * D + i]) *
               cache.Get(false, j % kv.capacity, g, i);
        d *= a.scale;
        if (a.softcap > 0)
          d = a.softcap * std::tanh(d / a.softcap);
        s[j] = d;
        if (d > mx)
          mx = d;
      }
      double sum = 0;
      for (int64_t j = lo; j <= p; ++j)
        sum += (s[j] = std::exp(s[j] - mx));
      for (int64_t i = 0; i < D; ++i) {
        double acc = 0;
        for (int64_t j = lo; j <= p; ++j)
          acc += s[j] * cache.Get(true, j % kv.capacity, g, i);
        y[(t * H + h) * D + i] = float(acc / sum);
      }
    }
  }
  return GEMMAC_PLUGIN_OK;
}

int32_t Launch(gemmac_backend *b, gemmac_kernel *kp, const gemmac_tensor *in,
               uint32_t num_in, const gemmac_tensor *out, uint32_t num_out,
               const gemmac_exec_context *ctx, gemmac_plugin_error *err) {
  if (b == nullptr || kp == nullptr)
    return Fail(err, "testref: launch: backend or kernel is null");
  reinterpret_cast<Backend *>(b)->launches++;
  if (ctx && ctx->cancel && *ctx->cancel)
    return GEMMAC_PLUGIN_CANCELLED;
  const Kernel &k = *reinterpret_cast<Kernel *>(kp);
  const gemmac_op_attrs &a = k.a;
  if (int32_t rc = CheckOperands(k.op, a, in, num_in, out, num_out, ctx, err);
      rc != GEMMAC_PLUGIN_OK)
    return rc;
  // An absent input is exactly {data NULL, rank 0, GEMMAC_DTYPE_NONE}, and
  // only in an optional slot; anything else is a runtime bug.
  for (uint32_t i = 0; i < num_in; ++i) {
    bool none = Absent(in[i]);
    if ((none || in[i].data == nullptr) &&
        !(none && in[i].data == nullptr && in[i].rank == 0 &&
          IsOptional(k.op, i)))
      return Fail(err, "launch: malformed or misplaced absent input");
  }
  float *y = static_cast<float *>(out[0].data);
  const int64_t T = ctx->tokens;
  switch (k.op) {
  case GEMMAC_OP_EMBED: {
    const int32_t *ids = static_cast<const int32_t *>(in[0].data);
    int64_t V = in[1].shape[0], H = in[1].shape[1];
    for (int64_t t = 0; t < T; ++t) {
      if (ids[t] < 0 || ids[t] >= V)
        return Fail(err, "embed: token id out of range");
      for (int64_t h = 0; h < H; ++h)
        y[t * H + h] = WeightAt(in[1], ids[t] * H + h) * a.scale;
    }
    break;
  }
  case GEMMAC_OP_RMS_NORM:
    RmsNormRows(static_cast<const float *>(in[0].data), T, in[0].shape[1],
                in[1], a.eps, a.offset, y);
    break;
  case GEMMAC_OP_LINEAR:
  case GEMMAC_OP_LM_HEAD:
    MatmulRows(static_cast<const float *>(in[0].data), T, in[0].shape[1], in[1],
               k.op == GEMMAC_OP_LINEAR ? in[1].shape[0] : a.rows, y);
    break;
  case GEMMAC_OP_ROPE:
    RopeRows(static_cast<const float *>(in[0].data), T, in[0].shape[1], a,
             ctx->past, y);
    break;
  case GEMMAC_OP_ATTENTION:
    return Attention(a, in, y, ctx, err);
  case GEMMAC_OP_ADD_RMS_NORM: {
    const float *x = static_cast<const float *>(in[0].data);
    const float *r = static_cast<const float *>(in[1].data);
    int64_t N = in[0].shape[1];
    for (int64_t i = 0; i < T * N; ++i)
      y[i] = x[i] + r[i];
    RmsNormRows(y, T, N, in[2], a.eps, a.offset,
                static_cast<float *>(out[1].data));
    break;
  }
  case GEMMAC_OP_QKV_PROJ: {
    int64_t K = in[0].shape[1], D = a.head_dim;
    const float *x = static_cast<const float *>(in[0].data);
    std::vector<float> xn;
    if (!Absent(in[1])) {
      xn.resize(T * K);
      RmsNormRows(x, T, K, in[1], a.eps, a.offset, xn.data());
      x = xn.data();
    }
    for (int j = 0; j < 3; ++j) {
      float *o = static_cast<float *>(out[j].data);
      int64_t N = in[2 + j].shape[0];
      MatmulRows(x, T, K, in[2 + j], N, o);
      if (j == 2)
        break; // v: no norm, no rope
      std::vector<float> tmp(o, o + T * N);
      if (!Absent(in[5 + j]))
        RmsNormRows(tmp.data(), T, N, in[5 + j], a.eps, a.offset, tmp.data());
      gemmac_op_attrs ra = a;
      ra.head_dim = int32_t(D);
      RopeRows(tmp.data(), T, N, ra, ctx->past, o);
    }
    break;
  }
  case GEMMAC_OP_GATED_MLP: {
    int64_t K = in[0].shape[1], F = in[2].shape[0];
    const float *x = static_cast<const float *>(in[0].data);
    std::vector<float> xn, g(T * F);
    if (!Absent(in[1])) {
      xn.resize(T * K);
      RmsNormRows(x, T, K, in[1], a.eps, a.offset, xn.data());
      x = xn.data();
    }
    MatmulRows(x, T, K, in[2], F, g.data());
    MatmulRows(x, T, K, in[3], F, y);
    for (int64_t i = 0; i < T * F; ++i)
      y[i] *= Gelu(g[i]);
    break;
  }
  case GEMMAC_OP_FINAL_HEAD: {
    // One output row: only the last position's logits.
    int64_t H = in[0].shape[1];
    int64_t rows_out = out[0].shape[0], first = T - rows_out;
    const float *x = static_cast<const float *>(in[0].data) + first * H;
    std::vector<float> xn(rows_out * H);
    RmsNormRows(x, rows_out, H, in[1], a.eps, a.offset, xn.data());
    MatmulRows(xn.data(), rows_out, H, in[2], a.rows, y);
    if (a.softcap > 0)
      for (int64_t i = 0; i < rows_out * a.rows; ++i)
        y[i] = a.softcap * std::tanh(y[i] / a.softcap);
    break;
  }
  default: {
    const float *x = static_cast<const float *>(in[0].data);
    int64_t n = Elements(out[0]);
    for (int64_t i = 0; i < n; ++i) {
      float v = x[i];
      switch (k.op) {
      case GEMMAC_OP_GELU_TANH:
        v = Gelu(v);
        break;
      case GEMMAC_OP_MUL:
        v *= static_cast<const float *>(in[1].data)[i];
        break;
      case GEMMAC_OP_ADD:
        v += static_cast<const float *>(in[1].data)[i];
        break;
      case GEMMAC_OP_SOFTCAP:
        v = a.softcap * std::tanh(v / a.softcap);
        break;
      case GEMMAC_OP_SCALE:
        v *= a.scale;
        break;
      default:
        return Fail(err, "unknown op");
      }
      y[i] = v;
    }
  }
  }
  return GEMMAC_PLUGIN_OK;
}

#ifdef GEMMAC_TESTREF_GRAPH
// Graph mode (ABI 1.4), the plainest way: a compiled function is its nodes'
// kernels, prepared once and launched in order on the operands the runtime
// keeps (their token dimensions already bound). It shows a graph-mode
// plugin author the contract, and lets the runtime's tests run one function
// both ways with the same arithmetic.
struct Graph {
  std::vector<gemmac_graph_node> nodes;
  std::vector<gemmac_kernel *> kernels;
  const gemmac_tensor *operands = nullptr;
};

void ReleaseGraph(gemmac_backend *b, gemmac_graph *gp) {
  Graph *g = reinterpret_cast<Graph *>(gp);
  for (gemmac_kernel *k : g->kernels)
    Release(b, k);
  delete g;
}

// The function the runtime's test asks this plugin to decline ("" none).
std::string g_decline;

int32_t CompileGraph(gemmac_backend *b, const gemmac_graph_desc *d,
                     gemmac_graph **out, gemmac_plugin_error *err) {
  if (d == nullptr || out == nullptr || d->nodes == nullptr ||
      d->operands == nullptr || d->num_buckets == 0)
    return Fail(err, "compile_graph: a null descriptor, node list, operand "
                     "list or bucket list");
  if (d->name != nullptr && g_decline == d->name)
    return Fail(err, GEMMAC_PLUGIN_UNSUPPORTED,
                "testref-graph: declines function '%s' (asked by the test)",
                d->name);
  auto *g = new (std::nothrow) Graph();
  if (g == nullptr)
    return Fail(err, GEMMAC_PLUGIN_OUT_OF_MEMORY,
                "testref: compile_graph: out of memory");
  g->operands = d->operands;
  for (uint32_t i = 0; i < d->num_nodes; ++i) {
    const gemmac_graph_node &n = d->nodes[i];
    if (uint64_t(n.first_input) + n.num_inputs > d->num_operands ||
        uint64_t(n.first_output) + n.num_outputs > d->num_operands) {
      ReleaseGraph(b, reinterpret_cast<gemmac_graph *>(g));
      return Fail(err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  "compile_graph: node %u's operands lie past the %u "
                  "operands of function '%s'",
                  i, d->num_operands, d->name ? d->name : "?");
    }
    gemmac_kernel *k = nullptr;
    if (int32_t rc = Prepare(b, &n.desc, &k, err); rc != GEMMAC_PLUGIN_OK) {
      ReleaseGraph(b, reinterpret_cast<gemmac_graph *>(g));
      return rc;
    }
    g->nodes.push_back(n);
    g->kernels.push_back(k);
  }
  *out = reinterpret_cast<gemmac_graph *>(g);
  return GEMMAC_PLUGIN_OK;
}

int32_t ExecuteGraph(gemmac_backend *b, gemmac_graph *gp,
                     const gemmac_exec_context *ctx, gemmac_plugin_error *err) {
  const Graph *g = reinterpret_cast<const Graph *>(gp);
  for (size_t i = 0; i < g->nodes.size(); ++i) {
    const gemmac_graph_node &n = g->nodes[i];
    if (int32_t rc =
            Launch(b, g->kernels[i], g->operands + n.first_input, n.num_inputs,
                   g->operands + n.first_output, n.num_outputs, ctx, err);
        rc != GEMMAC_PLUGIN_OK)
      return rc;
  }
  return GEMMAC_PLUGIN_OK;
}
#endif

} // namespace

#ifdef GEMMAC_TESTREF_GRAPH
// Test control, found with dlsym: compile_graph declines the function of this
// name (NULL: none), so the runtime's per-instruction path takes it.
extern "C" GEMMAC_PLUGIN_EXPORT void
gemmac_testref_graph_decline(const char *name) {
  g_decline = name ? name : "";
}
#endif

extern "C" GEMMAC_PLUGIN_EXPORT int32_t GEMMAC_TESTREF_ENTRY(
    uint32_t abi_major, gemmac_plugin_api *api, size_t api_size) {
  if (abi_major != GEMMAC_PLUGIN_ABI_MAJOR)
    return GEMMAC_PLUGIN_UNSUPPORTED;
  if (api == nullptr || api_size < sizeof(api->struct_size))
    return GEMMAC_PLUGIN_INVALID_ARGUMENT;
  gemmac_plugin_api table;
  std::memset(&table, 0, sizeof(table));
  table.abi_major = GEMMAC_PLUGIN_ABI_MAJOR;
  table.abi_minor = GEMMAC_PLUGIN_ABI_MINOR;
  table.name = "testref";
  table.version = "0";
  table.create = Create;
  table.destroy = Destroy;
  table.supports = Supports;
  table.prepare = Prepare;
  table.release = Release;
  table.launch = Launch;
  table.alloc = Alloc;
  table.free = Free;
#ifdef GEMMAC_TESTREF_GRAPH
  table.name = "testref-graph";
  table.compile_graph = CompileGraph;
  table.execute_graph = ExecuteGraph;
  table.release_graph = ReleaseGraph;
#endif
  // An older caller's smaller table gets what fits, and no byte past it.
  const size_t n = api_size < sizeof(table) ? api_size : sizeof(table);
  table.struct_size = n;
  std::memcpy(api, &table, n);
  return GEMMAC_PLUGIN_OK;
}
