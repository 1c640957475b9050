#include "weight_map.h"

#include <algorithm>

namespace gemmac {

Status WeightMap::Create(Backend *backend, const Module &module,
                         std::unique_ptr<WeightMap> *out) {
  std::unique_ptr<WeightMap> m(new WeightMap());
  m->backend_ = backend;
  const auto *segs = module.program().segments();
  if (!backend->has_map_weights()) {
    if (!backend->host_addressable())
      return Status(StatusCode::kFailedPrecondition,
                    module.path() + ": backend '" + backend->name() +
                        "' cannot read host memory and has no map_weights() "
                        "(ABI 1.6) to take the module's weights");
    *out = std::move(m);
    return Status::Ok();
  }
  for (uint32_t i = 0; segs != nullptr && i < segs->size(); ++i) {
    const uint64_t bytes = segs->Get(i)->size();
    if (bytes == 0)
      continue;
    Segment s{module.SegmentData(i), bytes, nullptr};
    void *device = nullptr;
    int32_t zero_copy = 0;
    GEMMAC_RETURN_IF_ERROR(backend->Call(
        ("map_weights (" + module.path() + " segment " + std::to_string(i) +
         ", " + std::to_string(bytes) + " bytes)")
            .c_str(),
        [&](gemmac_plugin_error *e) {
          return backend->api().map_weights(backend->handle(), s.host, bytes,
                                            &device, &zero_copy, e);
        }));
    s.device = static_cast<uint8_t *>(device);
    if (!zero_copy)
      m->copied_bytes_ += bytes;
    m->segments_.push_back(s);
  }
  std::sort(m->segments_.begin(), m->segments_.end(),
            [](const Segment &a, const Segment &b) { return a.host < b.host; });
  *out = std::move(m);
  return Status::Ok();
}

WeightMap::~WeightMap() {
  for (const Segment &s : segments_)
    backend_->api().unmap_weights(backend_->handle(), s.device);
}

void *WeightMap::Device(const void *host) const {
  const auto *p = static_cast<const uint8_t *>(host);
  // The last segment starting at or before p; the loader checked that every
  // weight lies inside its segment.
  auto it = std::upper_bound(
      segments_.begin(), segments_.end(), p,
      [](const uint8_t *q, const Segment &s) { return q < s.host; });
  if (it == segments_.begin())
    return const_cast<uint8_t *>(p);
  --it;
  if (p >= it->host + it->bytes)
    return const_cast<uint8_t *>(p);
  return it->device + (p - it->host);
}

} // namespace gemmac
