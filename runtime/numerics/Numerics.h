//===- Numerics.h - bf16, e4m3fn, e2m1, e8m0 and pow-2 scales ---*- C++ -*-===//
//
// Header-only, plain C++17 (no MLIR/LLVM). The scalar number formats of the
// V4 model and the power-of-two scale rules of V4-SPEC 2.3/2.4:
//
//  * bf16 <-> float, round-to-nearest-even.
//  * e4m3fn (max 448, no infinities, subnormals down to 2^-9), RNE,
//    saturating; e2m1 (grid {0, .5, 1, 1.5, 2, 3, 4, 6}), RNE, saturating;
//    e8m0 (2^(code - 127)).
//  * e8m0ScaleCode: the weight quantiser's scale (the checkpoint generator,
//    frontend/Checkpoint.cpp): 2^ceil(log2(max(amax, floor) / gridMax)).
//  * fp8ActScaleExponent / fp4ActScaleExponent: the activation rule of
//    V4-SPEC 2.3 exactly as the reference kernel computes it: the fp32
//    product amax * fp32(1/448) (or fp32(1/6)), ceil(log2) read off its
//    exponent and mantissa bits; amax floors 1e-4 (FP8) and 6*2^-126 (FP4).
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_NUMERICS_NUMERICS_H
#define V4_RUNTIME_NUMERICS_NUMERICS_H

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace v4 {
namespace quant {

//===----------------------------------------------------------------------===//
// Scalar formats
//===----------------------------------------------------------------------===//

/// e8m0 code of the power-of-two scale 2^ceil(log2(amax / gridMax)), with
/// amax raised to `minAmax` first (all-zero blocks). Clamped to [2^-127,
/// 2^127] (codes 0..254; 0xFF is NaN and never produced). Used for weights.
inline uint8_t e8m0ScaleCode(float amax, float gridMax, float minAmax) {
  amax = std::max(std::fabs(amax), minAmax);
  // amax / gridMax in double is exact enough: a float amax over 448 or 6
  // lands on a power of two only when it is exactly gridMax * 2^k.
  double ratio = static_cast<double>(amax) / gridMax;
  int exp2 = 0;
  double mant = std::frexp(ratio, &exp2); // ratio = mant * 2^exp2, [0.5, 1)
  int e = mant == 0.5 ? exp2 - 1 : exp2;  // ceil(log2(ratio))
  e = std::clamp(e, -127, 127);
  return static_cast<uint8_t>(e + 127);
}

/// The NaN encodings: e8m0 0xFF, e4m3fn S.1111.111 (0x7F, 0xFF). e4m3fn
/// has no infinity and e2m1 neither NaN nor infinity.
inline bool isNaNE8M0(uint8_t code) { return code == 0xFF; }
inline bool isNaNE4M3(uint8_t code) { return (code & 0x7F) == 0x7F; }
/// bf16 / f16 NaN or infinity: the exponent all ones.
inline bool isNonFiniteBF16(uint16_t bits) { return (bits & 0x7F80) == 0x7F80; }
inline bool isNonFiniteF16(uint16_t bits) { return (bits & 0x7C00) == 0x7C00; }

/// 2^(code - 127).
inline double decodeE8M0(uint8_t code) {
  return std::ldexp(1.0, int(code) - 127);
}

inline float decodeE4M3(uint8_t code) {
  int sign = code >> 7, exp = (code >> 3) & 0xF, mant = code & 7;
  float v = exp == 0 ? std::ldexp(float(mant), -9)
                     : std::ldexp(1.0f + mant / 8.0f, exp - 7);
  return sign ? -v : v;
}

inline float decodeE2M1(uint8_t code) {
  static const float grid[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
  float v = grid[code & 7];
  return (code & 8) ? -v : v;
}

namespace detail {
/// Round-to-nearest-even onto a sorted grid of non-negative values whose
/// index is the code (the code's low bit is the mantissa's low bit, so a tie
/// goes to the even code). Saturates at the last entry.
inline unsigned nearestCode(const float *grid, unsigned n, float a) {
  if (a >= grid[n - 1])
    return n - 1;
  unsigned hi = unsigned(std::upper_bound(grid, grid + n, a) - grid);
  unsigned lo = hi - 1;
  double dLo = double(a) - grid[lo], dHi = double(grid[hi]) - a;
  if (dLo < dHi)
    return lo;
  if (dHi < dLo)
    return hi;
  return (lo & 1) ? hi : lo;
}

struct E4M3Grid {
  float v[127];
  E4M3Grid() {
    for (unsigned c = 0; c < 127; ++c)
      v[c] = decodeE4M3(uint8_t(c));
  }
};
inline const E4M3Grid &e4m3Grid() {
  static const E4M3Grid grid;
  return grid;
}
} // namespace detail

namespace detail {
constexpr float pow2(int e) {
  return e >= 0 ? float(uint64_t(1) << e) : 1.0f / float(uint64_t(1) << -e);
}

/// The code of a non-negative `a` below the format's largest value on a
/// grid of `Mant` mantissa bits, exponent bias `Bias` and subnormals below
/// 2^(1 - Bias): round-to-nearest-even of the float's own bits (a
/// subnormal: of a exactly scaled to units of the grid's step), which is
/// nearestCode's rounding (the code's low bit is the mantissa's low bit,
/// and a carry out of the mantissa steps to the next exponent's even code)
/// without its search.
template <int Mant, int Bias> inline unsigned roundToCode(float a) {
  if (a < pow2(1 - Bias)) {
    // The scaled value is below 2^(Mant+1): adding and taking away 2^23
    // rounds it to an integer to nearest even, as std::nearbyint does in
    // the default rounding mode, without a library call.
    float big = a * pow2(Bias - 1 + Mant) + 0x1p23f;
    return unsigned(big - 0x1p23f);
  }
  uint32_t bits;
  std::memcpy(&bits, &a, 4);
  constexpr int drop = 23 - Mant;
  bits += (uint32_t(1) << (drop - 1)) - 1 + ((bits >> drop) & 1);
  int exp = int(bits >> 23) - 127 + Bias;
  return (unsigned(exp) << Mant) | ((bits >> drop) & ((1u << Mant) - 1));
}
} // namespace detail

/// e4m3fn code of `x`, saturating to +-448 (a NaN too), round-to-nearest-
/// even: detail::nearestCode on the e4m3 grid, computed from the bits.
inline uint8_t encodeE4M3(float x) {
  float a = std::fabs(x);
  uint8_t code =
      !(a < 448.0f) ? uint8_t(126) : uint8_t(detail::roundToCode<3, 7>(a));
  return std::signbit(x) ? uint8_t(code | 0x80) : code;
}

/// e2m1 code (4 bits) of `x`, saturating to +-6 (a NaN too),
/// round-to-nearest-even: nearestCode on the e2m1 grid, from the bits.
inline uint8_t encodeE2M1(float x) {
  float a = std::fabs(x);
  uint8_t code =
      !(a < 6.0f) ? uint8_t(7) : uint8_t(detail::roundToCode<1, 1>(a));
  return std::signbit(x) ? uint8_t(code | 8) : code;
}

/// bf16 bits of `x` by round-to-nearest-even (finite inputs; a NaN stays a
/// quiet NaN).
inline uint16_t encodeBF16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u)
    return uint16_t((bits >> 16) | 0x40);
  uint32_t rounding = 0x7FFF + ((bits >> 16) & 1);
  return uint16_t((bits + rounding) >> 16);
}

inline float decodeBF16(uint16_t bits) {
  uint32_t wide = uint32_t(bits) << 16;
  float x;
  std::memcpy(&x, &wide, 4);
  return x;
}

/// x rounded to the nearest bf16 value (RNE), as a float.
inline float roundBF16(float x) { return decodeBF16(encodeBF16(x)); }

/// e4m3fn RNE with saturation, back to float.
inline float roundE4M3(float x) { return decodeE4M3(encodeE4M3(x)); }
/// e2m1 RNE with saturation, back to float.
inline float roundE2M1(float x) { return decodeE2M1(encodeE2M1(x)); }

//===----------------------------------------------------------------------===//
// Activation scale rule (V4-SPEC 2.3)
//===----------------------------------------------------------------------===//

constexpr float kFP8AmaxFloor = 1e-4f;
constexpr float kFP4AmaxFloor = 6.0f * 0x1p-126f;

/// ceil(log2(v)) of a positive finite fp32 value, read off its bits as the
/// reference kernel does (exponent, +1 when the mantissa is non-zero).
inline int ceilLog2Bits(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  int exp = int((bits >> 23) & 0xFF);
  uint32_t mant = bits & 0x7FFFFF;
  if (exp == 0) { // subnormal product: normalise
    int e = 0;
    std::frexp(double(v), &e); // v = m * 2^e, m in [0.5, 1)
    return (std::ldexp(1.0, e - 1) == double(v)) ? e - 1 : e;
  }
  return exp - 127 + (mant != 0 ? 1 : 0);
}

/// Exponent k of the FP8 activation scale s = 2^k for a block with
/// max |x| = amax: k = ceil(log2(fp32(max(amax, 1e-4) * fp32(1/448)))).
inline int fp8ActScaleExponent(float amax) {
  amax = std::max(amax, kFP8AmaxFloor);
  float prod = amax * (1.0f / 448.0f);
  return ceilLog2Bits(prod);
}

/// Exponent k of the FP4 scale: ceil(log2(fp32(max(amax, 6*2^-126) *
/// fp32(1/6)))).
inline int fp4ActScaleExponent(float amax) {
  amax = std::max(amax, kFP4AmaxFloor);
  float prod = amax * (1.0f / 6.0f);
  return ceilLog2Bits(prod);
}

//===----------------------------------------------------------------------===//
// Weight quantisers (the checkpoint generator)
//===----------------------------------------------------------------------===//

namespace detail {
/// Visits the blocks of a [rows, cols] matrix in row-major block order.
template <typename Fn>
inline void forEachBlock(int64_t rows, int64_t cols, int64_t br, int64_t bc,
                         Fn fn) {
  int64_t nbr = (rows + br - 1) / br, nbc = (cols + bc - 1) / bc;
  for (int64_t i = 0; i < nbr; ++i)
    for (int64_t j = 0; j < nbc; ++j)
      fn(i * nbc + j, i * br, std::min(rows, (i + 1) * br), j * bc,
         std::min(cols, (j + 1) * bc));
}

inline float blockAmax(const float *w, int64_t cols, int64_t r0, int64_t r1,
                       int64_t c0, int64_t c1) {
  float amax = 0;
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t c = c0; c < c1; ++c)
      amax = std::max(amax, std::fabs(w[r * cols + c]));
  return amax;
}
} // namespace detail

/// Quantises a row-major [rows, cols] matrix to e4m3 with one e8m0 scale per
/// blockRows x blockCols block (scale = 2^ceil(log2(amax/448))). `q` gets
/// rows*cols codes, `scales` ceil(rows/blockRows)*ceil(cols/blockCols).
inline void quantizeFP8(const float *w, int64_t rows, int64_t cols,
                        int64_t blockRows, int64_t blockCols, uint8_t *q,
                        uint8_t *scales) {
  detail::forEachBlock(
      rows, cols, blockRows, blockCols,
      [&](int64_t b, int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
        uint8_t code = e8m0ScaleCode(detail::blockAmax(w, cols, r0, r1, c0, c1),
                                     448.0f, 1e-4f);
        scales[b] = code;
        // x / s as x times 1 / s: both exact (s is a power of two).
        double inv = 1.0 / decodeE8M0(code);
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t c = c0; c < c1; ++c)
            q[r * cols + c] = encodeE4M3(float(double(w[r * cols + c]) * inv));
      });
}

/// Quantises a row-major [rows, k] matrix (k even) to packed e2m1: byte
/// (r, i) holds element 2i in the low nibble and 2i+1 in the high nibble,
/// with one e8m0 scale per blockRows x blockK block (scale =
/// 2^ceil(log2(amax/6))). `packed` gets rows*k/2 bytes.
inline void quantizeFP4(const float *w, int64_t rows, int64_t k,
                        int64_t blockRows, int64_t blockK, uint8_t *packed,
                        uint8_t *scales) {
  std::vector<uint8_t> codes(static_cast<size_t>(rows * k));
  detail::forEachBlock(
      rows, k, blockRows, blockK,
      [&](int64_t b, int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
        uint8_t code = e8m0ScaleCode(detail::blockAmax(w, k, r0, r1, c0, c1),
                                     6.0f, 6.0f * 0x1p-126f);
        scales[b] = code;
        double inv = 1.0 / decodeE8M0(code); // exact, as for FP8
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t c = c0; c < c1; ++c)
            codes[r * k + c] = encodeE2M1(float(double(w[r * k + c]) * inv));
      });
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < k / 2; ++i)
      packed[r * (k / 2) + i] =
          uint8_t(codes[r * k + 2 * i] | (codes[r * k + 2 * i + 1] << 4));
}

} // namespace quant
} // namespace v4

#endif // V4_RUNTIME_NUMERICS_NUMERICS_H
