#include "tiles.h"
namespace gemmac::cpu {
const TileKernels &Avx2Tiles() {
  static const TileKernels k;
  return k;
}
} // namespace gemmac::cpu
