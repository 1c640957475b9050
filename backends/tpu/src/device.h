// The modelled TPU-style device and its static schedules: the numbers of the
// device (tile size, on-chip memory), the instruction set a compiled graph is
// lowered to, and the two halves that meet at that instruction set: the
// lowering (lower.cc, called by compile_graph and prepare) and the functional
// emulator (emulator.cc, called by execute_graph and launch). docs/tpu.md
// describes the model; nothing here depends on anything but plugin.h.
#ifndef GEMMAC_BACKENDS_TPU_DEVICE_H_
#define GEMMAC_BACKENDS_TPU_DEVICE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gemmac/plugin.h"

namespace gemmac::tpu {

// The systolic matrix unit computes C[kMxuTile x kMxuTile] += A * B^T with
// A [kMxuTile x K] and B [kMxuTile x K] in bf16 and C in f32.
constexpr int64_t kMxuTile = 128;
// On-chip vector memory: every operand of an MXU or VPU instruction lives here.
constexpr int64_t kVmemBytes = int64_t(16) << 20;
// VMEM offsets are aligned like the device's DMA bursts.
constexpr int64_t kVmemAlign = 512;

enum class Kind : uint8_t {
  kDmaIn,    // device memory -> VMEM, 2-D strided
  kDmaOut,   // VMEM -> device memory, 2-D strided
  kGather,   // embed: one table row per token id held in VMEM
  kKvWrite,  // attention: new k/v rows into the ring of the layer's cache
  kMxu,      // C (+)= A * B^T, A f32-holding-bf16 values, B bf16; with
             // a lo part of A (a2) and/or B (b2), the bf16_3x passes
  kVpu,      // a vector-unit op over f32 rows
  kAttention // flash-style loop over the cache (extent known only per call)
};

enum class Vpu : uint8_t {
  kRoundBf16, // c = bf16(a), round to nearest even: what the MXU is fed
  kSplitBf16, // c = bf16(a), d = bf16(a - c): the hi/lo pair of an f32
  kRmsNorm,   // c = rms_norm(a) * (offset + w[b]) in groups of `group`
  kRope,      // a = rope(a), positions past + row0 + i
  kAdd,       // c = a + b
  kMul,       // c = a * b
  kGelu,      // c = gelu_tanh(a)
  kGeluMul,   // c = gelu_tanh(a) * b
  kSoftcap,   // c = f0 * tanh(a / f0)
  kScale,     // c = a * f0
  kBf16Scale, // c = f32(bf16 a) * f0 (embed rows)
};

// One instruction; which fields mean what depends on `kind` (see emulator.cc).
struct Instr {
  Kind kind;
  Vpu vop = Vpu::kAdd;
  bool token_bound = false; // rows clamp to tokens - row0 at execution
  bool last_row = false;    // DMA source is row tokens - 1 (final_head)
  bool accumulate = false;  // MXU: C += instead of C =
  int64_t row0 = 0;         // first token row this instruction covers
  int64_t rows = 0;
  // DMA: host (device-memory) pointer, VMEM offset, bytes per row, strides.
  uint8_t *host = nullptr;
  const uint8_t *host2 = nullptr; // kKvWrite: v rows; kGather: table
  int64_t vmem = 0, row_bytes = 0, host_stride = 0, vmem_stride = 0;
  // MXU / VPU / attention: VMEM offsets of operands and sizes.
  int64_t a = 0, b = 0, c = 0, d = 0, e = 0;
  int64_t a2 = -1, b2 = -1; // MXU: VMEM of the lo parts, -1: none
  int64_t n = 0, k = 0, lda = 0, ldb = 0, ldc = 0, group = 0;
  float f0 = 0, f1 = 0, f2 = 0;
  gemmac_op_attrs attrs{}; // attention, rope
  int32_t node = 0;        // for messages
};

struct Stats {
  int64_t instructions = 0, dma_bytes = 0, mxu_tiles = 0, vmem_peak = 0;
};

// The schedule of one bucket: a flat instruction list.
struct Schedule {
  int64_t bucket = 0;
  std::vector<Instr> code;
  Stats stats;
};

// A compiled function: one schedule per bucket, the weights it reads as
// device-memory copies in bf16 (matrices) or f32 (norm vectors), and the
// VMEM the emulator runs it in.
struct Graph {
  std::string name;
  std::vector<Schedule> schedules;
  std::map<std::pair<const void *, int32_t>, std::vector<uint16_t>> bf16;
  // The lo halves (w - bf16(w), in bf16) of f32 and f16 matrices.
  std::map<std::pair<const void *, int32_t>, std::vector<uint16_t>> bf16_lo;
  std::map<std::pair<const void *, int32_t>, std::vector<float>> f32;
  uint8_t *vmem = nullptr; // the backend's kVmemBytes, set before Execute
  std::vector<std::string> node_names;
  Stats executed; // dynamic counts of the last execute (attention's loops)
};

// Name of an op code, for messages.
const char *OpName(int32_t op);

// Lowers `nodes` over `operands` into one schedule per bucket. A token dim
// (GEMMAC_TOKENS_DIM) of an operand's dim 0 takes the bucket's value.
// Returns a plugin code; on failure `message` says which node and why.
int32_t Lower(const gemmac_graph_desc &desc, Graph *graph,
              std::string *message);

// Whether the lowering implements this op with these dtypes.
bool Implemented(const gemmac_op_desc &d, std::string *why);

// Runs the schedule of the smallest bucket >= context->tokens.
int32_t Execute(Graph *graph, const gemmac_exec_context &ctx,
                std::string *message);

} // namespace gemmac::tpu

#endif // GEMMAC_BACKENDS_TPU_DEVICE_H_
