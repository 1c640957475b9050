#include "kv_cache.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace gemmac {

uint64_t KvCache::BytesPerPosition(const schema::KvLayer &l) {
  uint64_t heads = l.num_kv_heads();
  if (l.dtype() == schema::DType::I8)
    return 2 * (heads * l.head_dim() + heads * sizeof(float));
  return 2 * heads * l.head_dim() * sizeof(float);
}

int64_t KvCache::Capacity(const schema::KvLayer &layer,
                          int64_t context_length) {
  if (layer.capacity() == 0)
    return context_length;
  // A ring never needs more rows than the context itself.
  return std::min<int64_t>(layer.capacity(), context_length);
}

uint64_t KvCache::LayerBytes(const schema::KvLayer &layer,
                             int64_t context_length) {
  return uint64_t(Capacity(layer, context_length)) * BytesPerPosition(layer);
}

uint64_t KvCache::BytesNeeded(const schema::Module &module,
                              int64_t context_length) {
  uint64_t total = 0;
  if (module.kv_layers() == nullptr)
    return 0;
  for (const schema::KvLayer *l : *module.kv_layers())
    total += LayerBytes(*l, context_length);
  return total;
}

Status KvCache::Create(Backend *backend, const schema::Module &module,
                       int64_t context_length, std::unique_ptr<KvCache> *out) {
  std::unique_ptr<KvCache> kv(new KvCache());
  kv->backend_ = backend;
  if (module.kv_layers() != nullptr) {
    kv->layers_.reserve(module.kv_layers()->size());
    for (const schema::KvLayer *l : *module.kv_layers()) {
      bool i8 = l->dtype() == schema::DType::I8;
      gemmac_kv_cache c{};
      // The ABI 1.1 struct: a plugin built against 1.0 reads only the
      // fields before k_scale (and the session refuses i8 caches for it).
      c.struct_size = sizeof(c);
      c.dtype = i8 ? GEMMAC_DTYPE_I8 : GEMMAC_DTYPE_F32;
      c.capacity = static_cast<int32_t>(Capacity(*l, context_length));
      c.num_kv_heads = static_cast<int32_t>(l->num_kv_heads());
      c.head_dim = static_cast<int32_t>(l->head_dim());
      size_t rows = size_t(c.capacity) * c.num_kv_heads;
      size_t bytes = rows * c.head_dim * (i8 ? 1 : sizeof(float));
      size_t scale_bytes = i8 ? rows * sizeof(float) : 0;
      c.k = backend->Alloc(bytes);
      c.v = c.k ? backend->Alloc(bytes) : nullptr;
      bool ok = c.k != nullptr && c.v != nullptr;
      if (ok && i8) {
        c.k_scale = static_cast<float *>(backend->Alloc(scale_bytes));
        c.v_scale = c.k_scale
                        ? static_cast<float *>(backend->Alloc(scale_bytes))
                        : nullptr;
        ok = c.k_scale != nullptr && c.v_scale != nullptr;
      }
      if (!ok) {
        backend->Free(c.k);
        backend->Free(c.v);
        backend->Free(c.k_scale);
        backend->Free(c.v_scale);
        return Status(StatusCode::kResourceExhausted,
                      "KV cache: backend '" + backend->name() +
                          "' could not allocate " +
                          std::to_string(BytesNeeded(module, context_length)) +
                          " bytes for a context of " +
                          std::to_string(context_length) + " tokens");
      }
      kv->bytes_ += 2 * (bytes + scale_bytes);
      kv->layers_.push_back(c);
      // Zeroed so a reader of a never-written row sees numbers (0 * scale
      // 0 for int8), not garbage; on the device, which may be discrete.
      const std::pair<void *, size_t> parts[] = {{c.k, bytes},
                                                 {c.v, bytes},
                                                 {c.k_scale, scale_bytes},
                                                 {c.v_scale, scale_bytes}};
      for (auto [p, n] : parts)
        if (p != nullptr)
          GEMMAC_RETURN_IF_ERROR(backend->Zero(p, n));
    }
  }
  *out = std::move(kv);
  return Status::Ok();
}

KvCache::~KvCache() {
  for (gemmac_kv_cache &c : layers_) {
    backend_->Free(c.k);
    backend_->Free(c.v);
    backend_->Free(c.k_scale);
    backend_->Free(c.v_scale);
  }
}

} // namespace gemmac
