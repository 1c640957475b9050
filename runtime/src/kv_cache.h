// The KV cache of a session: per attention layer, k and v of shape
// [capacity, num_kv_heads, head_dim] in the layer's dtype (f32, or int8 with
// f32 k_scale/v_scale of [capacity, num_kv_heads]), allocated once from the
// backend when the session is created. Sliding-window layers keep a ring of the
// module's capacity (window + largest chunk); global layers (capacity 0) hold
// the session's whole context. Position p lives in row p % capacity; the
// attention kernels write and read it (plugin.h, gemmac_kv_cache).
#ifndef GEMMAC_RUNTIME_KV_CACHE_H_
#define GEMMAC_RUNTIME_KV_CACHE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "backend.h"
#include "gemmac/module_generated.h"

namespace gemmac {

class KvCache {
public:
  // Rows a layer gets in a session of `context_length` tokens.
  static int64_t Capacity(const schema::KvLayer &layer, int64_t context_length);
  // Bytes one position costs in `layer`: its k and v rows, plus their f32
  // scales (one per KV head each) when the cache is int8.
  static uint64_t BytesPerPosition(const schema::KvLayer &layer);
  // Bytes of one layer in a session of `context_length` tokens: k and v,
  // and their scales for an int8 layer.
  static uint64_t LayerBytes(const schema::KvLayer &layer,
                             int64_t context_length);
  // Bytes of every layer together (what bytes() will be).
  static uint64_t BytesNeeded(const schema::Module &module,
                              int64_t context_length);
  // The row of absolute position `pos` in a layer of `capacity` rows.
  static int64_t RowOf(int64_t pos, int64_t capacity) { return pos % capacity; }

  static Status Create(Backend *backend, const schema::Module &module,
                       int64_t context_length, std::unique_ptr<KvCache> *out);
  ~KvCache();

  const gemmac_kv_cache *layers() const { return layers_.data(); }
  uint32_t num_layers() const { return static_cast<uint32_t>(layers_.size()); }
  uint64_t bytes() const { return bytes_; }

private:
  KvCache() = default;
  Backend *backend_ = nullptr;
  std::vector<gemmac_kv_cache> layers_;
  uint64_t bytes_ = 0;
};

} // namespace gemmac

#endif // GEMMAC_RUNTIME_KV_CACHE_H_
