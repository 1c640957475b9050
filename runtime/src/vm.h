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
// Plugins of ABI 1.x hand out host-addressable memory (plugin.h), so both
// backends read and write the same arena and KV cache and nothing is copied
// at a partition border.
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

namespace gemmac {

// Gives the fallback backend, creating it on first use; *out is null when
// there is none.
using FallbackFn = std::function<Status(Backend **out)>;

class FunctionProgram {
public:
  // `arena` must hold at least function.arena_bytes() and outlive the
  // program; the backends must outlive it too. `fallback` may be empty: then
  // an instruction the backend refuses is an error.
  static Status Prepare(Backend *backend, const FallbackFn &fallback,
                        const Module &module, const schema::Function &function,
                        void *arena, std::unique_ptr<FunctionProgram> *out);
  ~FunctionProgram();

  // Runs the function on `tokens` (1..max_tokens of them) at position
  // `past`. On success *logits points at the output in the arena:
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
  struct Step {
    Backend *backend = nullptr; // the session's, or the fallback
    gemmac_kernel *kernel = nullptr;
    uint32_t first_in = 0, num_in = 0, first_out = 0, num_out = 0;
    std::string where;     // "function 'prefill' instruction 3 (Linear at loc)"
    gemmac_op_desc desc{}; // points into in_dtypes, out_dtypes
    std::vector<int32_t> in_dtypes, out_dtypes;
  };
  FunctionProgram() = default;
  // Offers the function to a graph-mode backend; sets graph_ when it takes
  // it. Needs steps_ and operands_ complete.
  Status CompileGraph(Backend *backend, const Module &module);
  void FindTokenDims();
  void Bind(const Module &module, const schema::Function &function,
            uint8_t *arena_base);

  std::string name_;
  std::map<std::string, int> fallback_ops_;
  // Graph mode: the compiled function and its backend (operands_ stays put
  // for the graph's lifetime, as plugin.h promises).
  gemmac_graph *graph_ = nullptr;
  Backend *graph_backend_ = nullptr;
  std::string graph_declined_;
  std::vector<Step> steps_;
  std::vector<gemmac_tensor> operands_;
  // Shape entries of operands_ that hold the symbolic token count.
  std::vector<int64_t *> token_dims_;
  int32_t *tokens_in_ = nullptr;
  const float *logits_out_ = nullptr;
  int64_t max_tokens_ = 0;
  int64_t logits_cols_ = 0;
  bool last_position_only_ = false;
  gemmac_plugin_error error_{};
};

} // namespace gemmac

#endif // GEMMAC_RUNTIME_VM_H_
