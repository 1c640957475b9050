// The operand of LDTILECFG (palette 1), which the amx level's kernels
// (tiles_amx.cc) and the tile-peak benchmark (bench/compute_peak.cc) load
// before using AMX tiles. Plain data: no AMX instruction here.
#ifndef GEMMAC_BACKENDS_CPU_AMX_CONFIG_H_
#define GEMMAC_BACKENDS_CPU_AMX_CONFIG_H_

#include <cstdint>

namespace gemmac::cpu {

// Tile t has rows[t] rows of colsb[t] bytes; unused tiles stay 0 x 0.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Tiles [first, last) as rows x colsb.
constexpr void SetTiles(TileConfig &c, int first, int last, int rows,
                        int colsb) {
  for (int t = first; t < last; ++t) {
    c.rows[t] = uint8_t(rows);
    c.colsb[t] = uint16_t(colsb);
  }
}

// All eight tiles 16 rows of 64 bytes, the largest palette 1 allows.
constexpr TileConfig FullTiles() {
  TileConfig c;
  SetTiles(c, 0, 8, 16, 64);
  return c;
}

} // namespace gemmac::cpu

#endif // GEMMAC_BACKENDS_CPU_AMX_CONFIG_H_
