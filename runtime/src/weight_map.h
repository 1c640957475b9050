// Where a backend reads a module's weights. The runtime maps the module file
// once; a backend with map_weights() (ABI 1.6) is handed each weight segment
// and says at which address its kernels read it: the mapping itself
// (zero-copy, the CPU or a GPU reading host memory) or device memory it
// filled once. The VM asks WeightMap for the address of every weight operand
// it gives that backend; the CPU fallback always reads the mapping.
#ifndef GEMMAC_RUNTIME_WEIGHT_MAP_H_
#define GEMMAC_RUNTIME_WEIGHT_MAP_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "backend.h"
#include "module.h"

namespace gemmac {

class WeightMap {
public:
  // Maps every weight segment of `module` on `backend` (identity when it has
  // no map_weights()). Both must outlive the map.
  static Status Create(Backend *backend, const Module &module,
                       std::unique_ptr<WeightMap> *out);
  ~WeightMap();
  WeightMap(const WeightMap &) = delete;
  WeightMap &operator=(const WeightMap &) = delete;

  // The address the backend reads the weight byte at `host` (inside the
  // module's mapping) at.
  void *Device(const void *host) const;
  // Bytes the backend copied to its own memory (0: all zero-copy).
  uint64_t copied_bytes() const { return copied_bytes_; }

private:
  WeightMap() = default;
  struct Segment {
    const uint8_t *host;
    uint64_t bytes;
    uint8_t *device;
  };
  Backend *backend_ = nullptr;
  std::vector<Segment> segments_; // ascending host address
  uint64_t copied_bytes_ = 0;
};

} // namespace gemmac

#endif // GEMMAC_RUNTIME_WEIGHT_MAP_H_
