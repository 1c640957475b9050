#include "kv_cache.h"

#include <algorithm>
#include <cstring>

namespace gemmac {

int64_t KvCache::Capacity(const schema::KvLayer &layer,
                          int64_t context_length) {
  if (layer.capacity() == 0)
    return context_length;
  // A ring never needs more rows than the context itself.
  return std::min<int64_t>(layer.capacity(), context_length);
}

uint64_t KvCache::BytesNeeded(const schema::Module &module,
                              int64_t context_length) {
  uint64_t total = 0;
  if (module.kv_layers() == nullptr)
    return 0;
  for (const schema::KvLayer *l : *module.kv_layers())
    total += 2ull * Capacity(*l, context_length) * l->num_kv_heads() *
             l->head_dim() * sizeof(float);
  return total;
}

Status KvCache::Create(Backend *backend, const schema::Module &module,
                       int64_t context_length, std::unique_ptr<KvCache> *out) {
  std::unique_ptr<KvCache> kv(new KvCache());
  kv->backend_ = backend;
  if (module.kv_layers() != nullptr) {
    for (const schema::KvLayer *l : *module.kv_layers()) {
      gemmac_kv_cache c{};
      c.struct_size = sizeof(c);
      c.dtype = GEMMAC_DTYPE_F32;
      c.capacity = static_cast<int32_t>(Capacity(*l, context_length));
      c.num_kv_heads = static_cast<int32_t>(l->num_kv_heads());
      c.head_dim = static_cast<int32_t>(l->head_dim());
      size_t bytes = size_t(c.capacity) * c.num_kv_heads * c.head_dim * 4;
      c.k = backend->Alloc(bytes);
      c.v = c.k ? backend->Alloc(bytes) : nullptr;
      if (c.k == nullptr || c.v == nullptr) {
        backend->Free(c.k);
        return Status(StatusCode::kResourceExhausted,
                      "KV cache: backend '" + backend->name() +
                          "' could not allocate " +
                          std::to_string(BytesNeeded(module, context_length)) +
                          " bytes for a context of " +
                          std::to_string(context_length) + " tokens");
      }
      // Zeroed so a reader of a never-written row sees numbers, not garbage.
      std::memset(c.k, 0, bytes);
      std::memset(c.v, 0, bytes);
      kv->bytes_ += 2 * bytes;
      kv->layers_.push_back(c);
    }
  }
  *out = std::move(kv);
  return Status::Ok();
}

KvCache::~KvCache() {
  for (gemmac_kv_cache &c : layers_) {
    backend_->Free(c.k);
    backend_->Free(c.v);
  }
}

} // namespace gemmac
