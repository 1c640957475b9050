// The op set's rules (docs/ops.md) for a plugin's supports(), prepare() and
// launch(): one copy, shared by the reference, CUDA/ROCm and TPU-style
// plugins and installed with the SDK (gemmac::plugin_sdk), so that every
// plugin refuses the same things with the same messages, prefixed with its
// own name.
#include "gemmac/op_checks.h"

#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <cstring>

namespace gemmac_sdk {

int Fail(gemmac_plugin_error *e, int code, const char *fmt, ...) {
  const size_t at = offsetof(gemmac_plugin_error, message);
  // An older caller's error struct may be smaller: write only what fits.
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

int FailAs(const char *plugin, gemmac_plugin_error *e, int code,
           const char *fmt, ...) {
  const size_t at = offsetof(gemmac_plugin_error, message);
  if (e == nullptr || e->struct_size <= at)
    return code;
  size_t cap = e->struct_size - at;
  if (cap > sizeof(e->message))
    cap = sizeof(e->message);
  const int n = plugin ? std::snprintf(e->message, cap, "%s: ", plugin) : 0;
  if (n < 0 || size_t(n) >= cap)
    return code;
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(e->message + n, cap - size_t(n), fmt, args);
  va_end(args);
  return code;
}

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

bool IsWeightSlot(int32_t op, uint32_t i) {
  switch (op) {
  case GEMMAC_OP_EMBED:
  case GEMMAC_OP_RMS_NORM:
  case GEMMAC_OP_LINEAR:
  case GEMMAC_OP_LM_HEAD:
    return i == 1;
  case GEMMAC_OP_ADD_RMS_NORM:
    return i == 2;
  case GEMMAC_OP_QKV_PROJ:
    return i >= 1;
  case GEMMAC_OP_GATED_MLP:
  case GEMMAC_OP_FINAL_HEAD:
    return i >= 1;
  default:
    return false;
  }
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

namespace {

bool Absent(const gemmac_tensor &t) { return t.dtype == GEMMAC_DTYPE_NONE; }

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
} // namespace

int32_t CheckDesc(const char *plugin, const gemmac_op_desc *d,
                  gemmac_plugin_error *err) {
  if (d == nullptr ||
      d->struct_size < offsetof(gemmac_op_desc, output_dtypes) + sizeof(void *))
    return FailAs(plugin, err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  "op description is null or its struct_size %zu is "
                  "below the ABI 1.0 size %zu",
                  d ? d->struct_size : size_t(0),
                  offsetof(gemmac_op_desc, output_dtypes) + sizeof(void *));
  Signature s;
  if (!SignatureOf(d->op, &s))
    return FailAs(plugin, err, GEMMAC_PLUGIN_UNSUPPORTED,
                  "op code %d is unknown, expected 0..%d", d->op,
                  GEMMAC_OP_COUNT_ - 1);
  const char *name = OpName(d->op);
  if (d->num_inputs != uint32_t(s.num_inputs) ||
      d->num_outputs != uint32_t(s.num_outputs) ||
      (d->num_inputs && !d->input_dtypes) ||
      (d->num_outputs && !d->output_dtypes))
    return FailAs(plugin, err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  "%s has %u inputs and %u outputs, expected %d and %d "
                  "with their dtypes",
                  name, d->num_inputs, d->num_outputs, s.num_inputs,
                  s.num_outputs);
  for (int i = 0; i < s.num_inputs; ++i)
    if (!SlotTakes(s.in[i], d->input_dtypes[i]))
      return FailAs(plugin, err,
                    d->input_dtypes[i] == GEMMAC_DTYPE_NONE
                        ? GEMMAC_PLUGIN_INVALID_ARGUMENT
                        : GEMMAC_PLUGIN_UNSUPPORTED,
                    "%s input %d has dtype %d, expected %s", name, i,
                    d->input_dtypes[i],
                    s.in[i].kind == 'W'   ? "a weight dtype (0,1,2,5..8)"
                    : s.in[i].kind == 'F' ? "f32, bf16 or f16 (0..2)"
                    : s.in[i].kind == 'i' ? "i32 (3)"
                    : s.in[i].optional    ? "f32 (0) or none (-1)"
                                          : "f32 (0)");
  for (int i = 0; i < s.num_outputs; ++i)
    if (d->output_dtypes[i] != GEMMAC_DTYPE_F32)
      return FailAs(plugin, err, GEMMAC_PLUGIN_UNSUPPORTED,
                    "%s output %d has dtype %d, expected f32 (0)", name, i,
                    d->output_dtypes[i]);
  const gemmac_op_attrs &a = d->attrs;
  const bool heads =
      d->op == GEMMAC_OP_ATTENTION || d->op == GEMMAC_OP_QKV_PROJ;
  if ((heads || d->op == GEMMAC_OP_ROPE) &&
      (a.head_dim <= 0 || a.head_dim % 2 != 0))
    return FailAs(plugin, err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  "%s attribute head_dim is %d, expected an even "
                  "number > 0",
                  name, a.head_dim);
  if (heads && (a.num_heads <= 0 || a.num_kv_heads <= 0 ||
                a.num_heads % a.num_kv_heads != 0))
    return FailAs(plugin, err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  "%s attributes num_heads %d, num_kv_heads %d, "
                  "expected > 0 with num_kv_heads dividing num_heads",
                  name, a.num_heads, a.num_kv_heads);
  if ((d->op == GEMMAC_OP_LM_HEAD || d->op == GEMMAC_OP_FINAL_HEAD) &&
      a.rows <= 0)
    return FailAs(plugin, err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  "%s attribute rows is %d, expected > 0", name, a.rows);
  return GEMMAC_PLUGIN_OK;
}

namespace {

// Shape checks of one launch: the first mismatch becomes the message.
struct ShapeCheck {
  const char *plugin;
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
    code = FailAs(plugin, err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  "%s %s has shape %s (rank %d), expected %s (-1: any)", op,
                  what, found, t.rank, want);
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
      code = FailAs(plugin, err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                    "%s %s is [%lld,%lld] of dtype %d, expected cols "
                    "(and rows for q4g32r8) to fit the format's groups",
                    op, what, (long long)t.shape[0], (long long)t.shape[1],
                    t.dtype);
      return false;
    }
    return true;
  }
};

} // namespace

// The operands of one launch against the prepared op: counts, dtypes and
// shapes consistent with each other and the attributes (docs/ops.md), so a
// caller's mistake is an error with a message, never a wild read.
int32_t CheckOperands(const char *plugin, int32_t op, const gemmac_op_attrs &a,
                      const gemmac_tensor *in, uint32_t num_in,
                      const gemmac_tensor *out, uint32_t num_out,
                      const gemmac_exec_context *ctx,
                      gemmac_plugin_error *err) {
  Signature s;
  SignatureOf(op, &s);
  const char *name = OpName(op);
  if (num_in != uint32_t(s.num_inputs) || num_out != uint32_t(s.num_outputs) ||
      (num_in && !in) || (num_out && !out))
    return FailAs(plugin, err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  "%s launched with %u inputs and %u outputs, expected "
                  "%d and %d",
                  name, num_in, num_out, s.num_inputs, s.num_outputs);
  if (ctx == nullptr || ctx->tokens < 0 || ctx->past < 0)
    return FailAs(plugin, err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  "%s context is null or has tokens %lld, past %lld, "
                  "expected both >= 0",
                  name, ctx ? (long long)ctx->tokens : -1LL,
                  ctx ? (long long)ctx->past : -1LL);
  for (uint32_t i = 0; i < num_in + num_out; ++i) {
    const gemmac_tensor &t = i < num_in ? in[i] : out[i - num_in];
    if (t.rank < 0 || t.rank > GEMMAC_MAX_RANK ||
        (t.data == nullptr && t.dtype != GEMMAC_DTYPE_NONE))
      return FailAs(plugin, err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                    "%s %s %u has rank %d and data %p, expected rank "
                    "0..%d and data",
                    name, i < num_in ? "input" : "output",
                    i < num_in ? i : i - num_in, t.rank, t.data,
                    GEMMAC_MAX_RANK);
  }
  ShapeCheck c{plugin, name, err};
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
      return FailAs(plugin, err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                    "rms_norm input w has %lld elements, expected a "
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
      return FailAs(plugin, err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                    "lm_head attribute rows is %d, expected at most "
                    "the %lld rows of the table",
                    a.rows, (long long)in[1].shape[0]);
    break;
  }
  case GEMMAC_OP_ROPE:
    if (!c.Is2(in[0], "input x", -1, -1) || !c.Same(out[0], "output", in[0]))
      return c.code;
    if (K % D != 0)
      return FailAs(plugin, err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                    "rope input x has row size %lld, expected a "
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
      return FailAs(plugin, err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                    "final_head attribute rows is %d, expected at most "
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
    return FailAs(plugin, err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  "%s input 0 has %lld rows, expected context.tokens "
                  "= %lld",
                  name, (long long)T, (long long)ctx->tokens);
  if (op == GEMMAC_OP_EMBED && T != ctx->tokens)
    return FailAs(plugin, err, GEMMAC_PLUGIN_INVALID_ARGUMENT,
                  "embed input tokens has %lld ids, expected "
                  "context.tokens = %lld",
                  (long long)T, (long long)ctx->tokens);
  return GEMMAC_PLUGIN_OK;
}

} // namespace gemmac_sdk
