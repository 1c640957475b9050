// The VM: runs one function of a module (an instruction list) on a backend.
//
// A FunctionProgram is built once per session: every instruction's kernel is
// prepared, and every operand's gemmac_tensor is filled (weights point into
// the mapped file, arena tensors into the session's arena). A call only
// patches the symbolic token dimension into the prepared shapes and launches
// the kernels in order, so the hot path allocates nothing.
//
// Partitioning: an instruction the session's backend refuses (supports()
// says no) runs on a fallback backend, the CPU plugin, when there is one.
// When the backend's memory is host-addressable (plugin.h), both read and
// write the same arena and KV cache and nothing is copied at a partition
// border. When it is not (ABI 1.6, a discrete device), the fallback works in
// a host mirror of the arena (same offsets), and the VM copies exactly the
// tensors that cross a border: an input of a fallback instruction that the
// device produced, an output of one that the device (or the caller, for the
// logits) reads next. The KV cache stays on the device, so attention cannot
// fall back there.
//
// Order (ABI 1.6): with a stream, the backend's launches are enqueued; the
// VM waits for the stream before a fallback instruction and before it hands
// the logits back, so a call returns with the device idle.
#ifndef GEMMAC_RUNTIME_VM_H_
#define GEMMAC_RUNTIME_VM_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "kv_cache.h"
#include "module.h"
#include "weight_map.h"

namespace gemmac {

// Gives the fallback backend, creating it on first use; *out is null when
// there is none.
using FallbackFn = std::function<Status(Backend **out)>;

// What a function runs on. Everything here must outlive the program.
struct ProgramTarget {
  Backend *backend = nullptr;
  // May be empty: then an instruction the backend refuses is an error.
  FallbackFn fallback;
  // Allocated from `backend`, at least function.arena_bytes().
  void *arena = nullptr;
  const WeightMap *weights = nullptr;
  Stream *stream = nullptr; // null: the backend has no streams
};

class FunctionProgram {
public:
  static Status Prepare(const ProgramTarget &target, const Module &module,
                        const schema::Function &function,
                        std::unique_ptr<FunctionProgram> *out);
  ~FunctionProgram();

  // Runs the function on `tokens` (1..max_tokens of them) at position
  // `past`. On success *logits points at the output, readable by the host
  // (the arena itself, or a copy from a discrete device):
  // f32[tokens, logits_cols()], or f32[1, logits_cols()] (the last
  // position's row) when last_position_only(). Valid until the next Run of
  // any program sharing the arena.
  Status Run(const int32_t *tokens, int64_t num_tokens, int64_t past,
             const KvCache &kv, const volatile int32_t *cancel,
             const float **logits);

  int64_t max_tokens() const { return max_tokens_; }
  int64_t logits_cols() const { return logits_cols_; }
  // The output holds one row, the last position's, whatever the token count.
  bool last_position_only() const { return last_position_only_; }
  // The row of the last position in a Run of `num_tokens` tokens.
  int64_t LastRow(int64_t num_tokens) const {
    return last_position_only_ ? 0 : num_tokens - 1;
  }
  const std::string &name() const { return name_; }
  // Instructions that run on the fallback backend, counted by op name.
  const std::map<std::string, int> &fallback_ops() const {
    return fallback_ops_;
  }
  // Whether the backend runs the function as one compiled graph (ABI 1.4).
  bool graph_mode() const { return graph_ != nullptr; }
  // Why a graph-mode backend declined the function ("" if it did not).
  const std::string &graph_declined() const { return graph_declined_; }

private:
  // A tensor a fallback instruction on a discrete device copies across the
  // border: `device` in the arena, `host` in the mirror.
  struct Transfer {
    void *device;
    void *host;
    const gemmac_tensor *shape; // the operand, for its bytes at run time
  };
  struct Step {
    Backend *backend = nullptr; // the session's, or the fallback
    gemmac_kernel *kernel = nullptr;
    uint32_t first_in = 0, num_in = 0, first_out = 0, num_out = 0;
    std::string where;     // "function 'prefill' instruction 3 (Linear at loc)"
    gemmac_op_desc desc{}; // points into in_dtypes, out_dtypes
    std::vector<int32_t> in_dtypes, out_dtypes;
    bool fallback = false;
    std::vector<Transfer> to_host, to_device; // before / after the launch
  };
  FunctionProgram() = default;
  // Offers the function to a graph-mode backend; sets graph_ when it takes
  // it. Needs steps_ and operands_ complete.
  Status CompileGraph(Backend *backend, const Module &module);
  // Fallback instructions read the mapped weights, and on a discrete device
  // the host mirror; finds the border transfers.
  void PlaceFallbackOperands(const schema::Function &function);
  Status RunSteps(gemmac_exec_context *ctx);
  // After the launches: waits for the stream and points *logits at the
  // output on the host, copying it there from a discrete device.
  Status FetchLogits(int64_t num_tokens, const float **logits);
  void FindTokenDims();
  void Bind(const Module &module, const schema::Function &function);

  ProgramTarget target_;
  uint8_t *arena_base_ = nullptr;
  uint64_t arena_bytes_ = 0;
  std::string name_;
  std::map<std::string, int> fallback_ops_;
  // Per operand: its tensor id (kNoTensor when absent) and, for a weight,
  // its address in the module's mapping.
  std::vector<uint32_t> operand_ids_;
  std::vector<const void *> operand_host_;
  // A discrete device's border: the host mirror of the arena, and whether a
  // fallback instruction produces the logits (then they are read there).
  std::vector<uint8_t> mirror_;
  bool logits_in_mirror_ = false;
  std::vector<float> host_logits_;
  // Graph mode: the compiled function and its backend (operands_ stays put
  // for the graph's lifetime, as plugin.h promises).
  gemmac_graph *graph_ = nullptr;
  Backend *graph_backend_ = nullptr;
  std::string graph_declined_;
  std::vector<Step> steps_;
  std::vector<gemmac_tensor> operands_;
  // Shape entries of operands_ that hold the symbolic token count.
  std::vector<int64_t *> token_dims_;
  int32_t *tokens_in_ = nullptr; // in the arena (device memory)
  const float *logits_out_ = nullptr;
  int64_t max_tokens_ = 0;
  int64_t logits_cols_ = 0;
  bool last_position_only_ = false;
  gemmac_plugin_error error_{};
};

} // namespace gemmac

#endif // GEMMAC_RUNTIME_VM_H_
