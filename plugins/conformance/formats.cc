#include "formats.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "gemmac/plugin.h"

namespace gemmac::conformance {
namespace {

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

void Put16(std::vector<uint8_t> &b, size_t at, uint16_t v) {
  b[at] = uint8_t(v & 255);
  b[at + 1] = uint8_t(v >> 8);
}

// Q4G32 blocks of one [rows, cols] matrix; `values` gets the decoded weights.
std::vector<uint8_t> EncodeQ4G32(int64_t rows, int64_t cols,
                                 const std::vector<float> &src,
                                 std::vector<double> &values) {
  std::vector<uint8_t> b(size_t(rows * (cols / 32) * 18));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t blk = 0; blk < cols / 32; ++blk) {
      const float *w = &src[size_t(r * cols + blk * 32)];
      // m: the first element of largest magnitude; d = m / -8, as f16.
      float m = 0;
      for (int j = 0; j < 32; ++j)
        if (std::fabs(w[j]) > std::fabs(m))
          m = w[j];
      const uint16_t dh = F16FromFloat(m / -8.0f);
      const float d = F16ToFloat(dh);
      const size_t at = size_t((r * (cols / 32) + blk) * 18);
      Put16(b, at, dh);
      for (int j = 0; j < 32; ++j) {
        int nib = d == 0 ? 8 : int(std::round(w[j] / d)) + 8;
        nib = std::clamp(nib, 0, 15);
        uint8_t &q = b[at + 2 + size_t(j % 16)];
        q = uint8_t(j < 16 ? (q & 0xF0) | nib : (q & 0x0F) | (nib << 4));
        values[size_t(r * cols + blk * 32 + j)] = double(nib - 8) * d;
      }
    }
  return b;
}

} // namespace

uint16_t Bf16FromFloat(float f) {
  const uint32_t u = Bits(f);
  return uint16_t((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}

uint16_t F16FromFloat(float f) {
  // In double, where f is exact: nearbyint rounds the half's mantissa (or a
  // subnormal's units) to nearest even in the default rounding mode.
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  double a = std::fabs(double(f));
  if (a == 0)
    return sign;
  if (a >= 65520.0)
    return sign | 0x7C00; // rounds to infinity
  int e;
  std::frexp(a, &e); // a = m * 2^e, m in [0.5, 1)
  int exp = e - 1;   // a = 1.f * 2^exp
  if (exp < -14) {   // subnormal: units of 2^-24
    const double q = std::nearbyint(a * 16777216.0);
    return sign | uint16_t(q);
  }
  double mant = std::nearbyint((a / std::ldexp(1.0, exp) - 1.0) * 1024.0);
  if (mant == 1024) {
    mant = 0;
    ++exp;
  }
  if (exp > 15)
    return sign | 0x7C00;
  return sign | uint16_t((exp + 15) << 10) | uint16_t(mant);
}

float F16ToFloat(uint16_t h) {
  const int exp = (h >> 10) & 31, man = h & 1023;
  double v = exp == 0    ? std::ldexp(double(man), -24)
             : exp == 31 ? (man ? NAN : INFINITY)
                         : std::ldexp(double(man | 1024), exp - 25);
  return float(h >> 15 ? -v : v);
}

EncodedWeight Encode(int32_t dtype, int64_t rows, int64_t cols,
                     const std::vector<float> &src) {
  EncodedWeight w;
  w.dtype = dtype;
  w.rows = rows;
  w.cols = cols;
  const size_t n = size_t(rows * cols);
  w.values.resize(n);
  switch (dtype) {
  case GEMMAC_DTYPE_F32:
    w.bytes.resize(n * 4);
    std::memcpy(w.bytes.data(), src.data(), n * 4);
    for (size_t i = 0; i < n; ++i)
      w.values[i] = src[i];
    break;
  case GEMMAC_DTYPE_BF16:
  case GEMMAC_DTYPE_F16:
    w.bytes.resize(n * 2);
    for (size_t i = 0; i < n; ++i) {
      const bool bf = dtype == GEMMAC_DTYPE_BF16;
      const uint16_t h = bf ? Bf16FromFloat(src[i]) : F16FromFloat(src[i]);
      Put16(w.bytes, 2 * i, h);
      if (bf) {
        const uint32_t u = uint32_t(h) << 16;
        float f;
        std::memcpy(&f, &u, 4);
        w.values[i] = f;
      } else {
        w.values[i] = F16ToFloat(h);
      }
    }
    break;
  case GEMMAC_DTYPE_Q8C:
    // int8 q[rows][cols], then f32 scale[rows]; scale = max|w_row| / 127.
    w.bytes.resize(n + size_t(rows) * 4);
    for (int64_t r = 0; r < rows; ++r) {
      float mx = 0;
      for (int64_t c = 0; c < cols; ++c)
        mx = std::max(mx, std::fabs(src[size_t(r * cols + c)]));
      const float scale = mx / 127.0f;
      std::memcpy(&w.bytes[n + size_t(r) * 4], &scale, 4);
      for (int64_t c = 0; c < cols; ++c) {
        const size_t i = size_t(r * cols + c);
        const int q =
            scale == 0 ? 0
                       : std::clamp(int(std::round(src[i] / scale)), -127, 127);
        w.bytes[i] = uint8_t(int8_t(q));
        w.values[i] = double(q) * scale;
      }
    }
    break;
  case GEMMAC_DTYPE_Q4G32:
    w.bytes = EncodeQ4G32(rows, cols, src, w.values);
    break;
  case GEMMAC_DTYPE_Q4G32R8: {
    // Q4G32's blocks moved into 144-byte runs of 8 rows.
    const std::vector<uint8_t> q4 = EncodeQ4G32(rows, cols, src, w.values);
    w.bytes.assign(q4.size(), 0);
    const int64_t nb = cols / 32;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t *blk = &q4[size_t((r * nb + b) * 18)];
        const size_t run = size_t(((r / 8) * nb + b) * 144);
        std::memcpy(&w.bytes[run + 2 * size_t(r % 8)], blk, 2);
        std::memcpy(&w.bytes[run + 16 + 16 * size_t(r % 8)], blk + 2, 16);
      }
    break;
  }
  case GEMMAC_DTYPE_Q4G128:
    // Per 128 columns: f16 d, f16 m, u8 qs[64]; w = nibble * d + m with m
    // the block minimum and d = (max - min) / 15.
    w.bytes.resize(size_t(rows * (cols / 128) * 68));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t blk = 0; blk < cols / 128; ++blk) {
        const float *x = &src[size_t(r * cols + blk * 128)];
        const auto [lo, hi] = std::minmax_element(x, x + 128);
        const uint16_t dh = F16FromFloat((*hi - *lo) / 15.0f);
        const uint16_t mh = F16FromFloat(*lo);
        const float d = F16ToFloat(dh), m = F16ToFloat(mh);
        const size_t at = size_t((r * (cols / 128) + blk) * 68);
        Put16(w.bytes, at, dh);
        Put16(w.bytes, at + 2, mh);
        for (int j = 0; j < 128; ++j) {
          int nib = d == 0 ? 0 : int(std::round((x[j] - m) / d));
          nib = std::clamp(nib, 0, 15);
          uint8_t &q = w.bytes[at + 4 + size_t(j % 64)];
          q = uint8_t(j < 64 ? (q & 0xF0) | nib : (q & 0x0F) | (nib << 4));
          w.values[size_t(r * cols + blk * 128 + j)] =
              double(nib) * d + double(m);
        }
      }
    break;
  default:
    break;
  }
  return w;
}

const char *DTypeName(int32_t dtype) {
  switch (dtype) {
  case GEMMAC_DTYPE_F32:
    return "f32";
  case GEMMAC_DTYPE_BF16:
    return "bf16";
  case GEMMAC_DTYPE_F16:
    return "f16";
  case GEMMAC_DTYPE_I32:
    return "i32";
  case GEMMAC_DTYPE_I8:
    return "i8";
  case GEMMAC_DTYPE_Q8C:
    return "q8c";
  case GEMMAC_DTYPE_Q4G32:
    return "q4g32";
  case GEMMAC_DTYPE_Q4G128:
    return "q4g128";
  case GEMMAC_DTYPE_Q4G32R8:
    return "q4g32r8";
  case GEMMAC_DTYPE_NONE:
    return "none";
  default:
    return "unknown";
  }
}

const char *OpName(int32_t op) {
  static const char *const kNames[] = {
      "embed",     "rms_norm",     "linear",   "rope",      "attention",
      "gelu_tanh", "mul",          "add",      "softcap",   "scale",
      "lm_head",   "add_rms_norm", "qkv_proj", "gated_mlp", "final_head"};
  return op >= 0 && op < GEMMAC_OP_COUNT_ ? kNames[op] : "unknown";
}

bool IsQuantized(int32_t dtype) {
  return dtype == GEMMAC_DTYPE_Q8C || dtype == GEMMAC_DTYPE_Q4G32 ||
         dtype == GEMMAC_DTYPE_Q4G128 || dtype == GEMMAC_DTYPE_Q4G32R8;
}

} // namespace gemmac::conformance
