#include "tiles.h"
namespace gemmac::cpu {
const TileKernels &Avx512Tiles() {
  static const TileKernels k;
  return k;
}
} // namespace gemmac::cpu
