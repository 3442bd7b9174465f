//===- WeightRecipe.h - how generated weights are made ----------*- C++ -*-===//
//
// Header-only, plain C++17 (no MLIR/LLVM). The one recipe of generated
// weights, shared by the compiler's checkpoint generator
// (frontend/Checkpoint.cpp, v4-gen-checkpoint: an mt19937_64 stream per
// tensor) and the runtime's synthetic weights (runtime/src/
// SyntheticWeights.cpp: a counter-based stream per element, so generation
// is parallel and independent of the thread count). Both draw the same
// distributions through a `Source` (uniform() in [0, 1), normal() with mean
// 0 and variance 1) and store them the same way:
//
//  * initFor: the name -> init rule of the T1 recipe (V4-SPEC 11.1): norm
//    weights 1 + 0.1 N, mHC *_scale U[0.5, 1), biases/ape/attn_sink/*_base
//    0.5 N, matrices N(0, 1/in) (in = the last logical dim), the rest
//    0.5 N.
//  * FP8 e4m3 and packed FP4 e2m1 weights are quantised with the e8m0 block
//    scales of their NAME.scale tensor (V4-SPEC 2.3/2.4, Numerics.h): the
//    scale's extents give the blocks (128, 32 or 1 elements per dim); a
//    weight without one stands alone (scale 1); a scale without a weight is
//    1 (code 127).
//  * Integer tables: hash-routing `*.tid2eid` rows of k distinct experts
//    (partial Fisher-Yates; the expert count is the first dim of the
//    matching `*.weight` gate), the Engram `engram.token_map` the identity,
//    other `*multipliers` odd values below 2^63 / V_c (V_c: the token map's
//    entries); every other integer tensor zero.
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_NUMERICS_WEIGHTRECIPE_H
#define V4_RUNTIME_NUMERICS_WEIGHTRECIPE_H

#include "runtime/numerics/Numerics.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace v4 {
namespace recipe {

//===----------------------------------------------------------------------===//
// Random streams
//===----------------------------------------------------------------------===//

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// The seed of one tensor's values: splitmix64 of the seed mixed with the
/// FNV-1a hash of the tensor's name.
inline uint64_t tensorSeed(uint64_t seed, std::string_view name) {
  uint64_t h = 0xcbf29ce484222325ull; // FNV-1a
  for (unsigned char c : name)
    h = (h ^ c) * 0x100000001b3ull;
  return splitmix64(splitmix64(seed) ^ h);
}

/// Uniform integer in [0, n) from 64-bit draws of `next` (n >= 1), unbiased
/// (rejection sampling).
template <typename Next> uint64_t below(Next &&next, uint64_t n) {
  uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do
    x = next();
  while (x >= limit);
  return x % n;
}

/// The runtime's source: the draws of element `index` of the tensor whose
/// tensorSeed is `key`, a function of (key, index, draw number) only.
/// normal() is the Irwin-Hall sum of four 16-bit uniforms of one draw,
/// scaled to variance 1 (bounded by +-2 sqrt(3), so never far out).
class CounterSource {
public:
  CounterSource(uint64_t key, uint64_t index)
      : base(splitmix64(key + index * 0xD1B54A32D192ED03ull)) {}
  uint64_t next() { return splitmix64(base + count++); }
  double uniform() { return double(next() >> 11) * 0x1p-53; }
  double normal() {
    uint64_t x = next();
    double sum = 0;
    for (int i = 0; i < 4; ++i, x >>= 16)
      sum += (double(x & 0xFFFF) + 0.5) * 0x1p-16;
    return (sum - 2.0) * 1.7320508075688772; // sqrt(3): variance 4/12 -> 1
  }
  uint64_t below(uint64_t n) {
    return recipe::below([this] { return next(); }, n);
  }

private:
  uint64_t base;
  uint64_t count = 0;
};

//===----------------------------------------------------------------------===//
// Float values
//===----------------------------------------------------------------------===//

enum class Init { Norm, MhcScale, Half, Matrix, Rank1 };

inline bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// The init rule of a tensor from its name and logical rank.
inline Init initFor(std::string_view name, size_t rank) {
  size_t dot = name.rfind('.');
  std::string_view last =
      dot == std::string_view::npos ? std::string_view() : name.substr(dot + 1);
  if (last.empty())
    last = name;
  if (endsWith(name, "norm.weight"))
    return Init::Norm;
  if (endsWith(name, ".ape") || name == "ape" || last == "attn_sink" ||
      endsWith(last, "_base") || endsWith(name, "gate.bias"))
    return Init::Half;
  if (endsWith(last, "_scale"))
    return Init::MhcScale;
  if (rank >= 2)
    return Init::Matrix; // includes mHC *_fn: N(0, 1/in)
  return Init::Rank1;
}

/// The standard deviation of Init::Matrix: 1/sqrt(last logical dim).
inline double matrixStd(const std::vector<int64_t> &logicalShape) {
  return logicalShape.empty()
             ? 1.0
             : 1.0 /
                   std::sqrt(double(std::max<int64_t>(logicalShape.back(), 1)));
}

/// One value of rule `init` (`std1`: matrixStd); one draw of `src`.
template <typename Source>
float drawValue(Init init, double std1, Source &src) {
  switch (init) {
  case Init::Norm:
    return float(1.0 + 0.1 * src.normal());
  case Init::MhcScale:
    return float(0.5 + 0.5 * src.uniform());
  case Init::Half:
  case Init::Rank1:
    return float(0.5 * src.normal());
  case Init::Matrix:
    return float(std1 * src.normal());
  }
  return 0.0f;
}

//===----------------------------------------------------------------------===//
// Stored bytes
//===----------------------------------------------------------------------===//

/// How a float tensor is stored.
enum class Format { F32, BF16, FP8, FP4 };

/// The e8m0 code of scale 1 (a scale with no weight to fit).
constexpr uint8_t kUnitScaleCode = 127;

/// The scale tensor of an FP8/FP4 weight: NAME.weight -> NAME.scale, any
/// other NAME -> NAME.scale.
inline std::string scaleNameFor(std::string_view weightName) {
  if (endsWith(weightName, ".weight"))
    return std::string(weightName.substr(0, weightName.size() - 7)) + ".scale";
  return std::string(weightName) + ".scale";
}

/// Block size along one dimension from the scale's extent: per element,
/// 128 (FP8 weights) or 32 (FP4 weights, FP8 Engram tables).
inline std::optional<int64_t> blockFor(int64_t dim, int64_t scaleDim) {
  if (scaleDim == dim)
    return 1;
  for (int64_t b : {128, 32})
    if (scaleDim == (dim + b - 1) / b)
      return b;
  return std::nullopt;
}

/// A weight as a row-major [rows, cols] matrix (cols: the last logical
/// dim, rows the product of the others) cut into [blockRows, blockCols]
/// blocks, one e8m0 scale each (row-major over the blocks).
struct Blocking {
  int64_t rows = 1, cols = 1;
  int64_t blockRows = 1, blockCols = 1;
  int64_t blockRowCount() const { return (rows + blockRows - 1) / blockRows; }
  int64_t blockColCount() const { return (cols + blockCols - 1) / blockCols; }
  int64_t scaleCount() const { return blockRowCount() * blockColCount(); }
};

/// The blocking of a weight of `logicalShape` by a scale of `scaleShape`
/// (nullptr: no scale tensor, one block of the whole, scale 1); nullopt
/// when the scale does not block the weight in 128, 32 or 1 element blocks
/// (2-D weight with 2-D scale, 1-D with 1-D).
inline std::optional<Blocking>
weightBlocking(const std::vector<int64_t> &logicalShape,
               const std::vector<int64_t> *scaleShape) {
  Blocking b;
  int64_t n = 1;
  for (int64_t d : logicalShape)
    n *= d;
  b.cols = logicalShape.empty() ? 1 : logicalShape.back();
  b.rows = b.cols ? n / b.cols : 0;
  b.blockRows = b.rows ? b.rows : 1;
  b.blockCols = b.cols ? b.cols : 1;
  if (!scaleShape)
    return b;
  std::optional<int64_t> bR, bC;
  if (scaleShape->size() == 2 && logicalShape.size() == 2) {
    bR = blockFor(b.rows, (*scaleShape)[0]);
    bC = blockFor(b.cols, (*scaleShape)[1]);
  } else if (scaleShape->size() == 1 && logicalShape.size() == 1) {
    bR = 1;
    bC = blockFor(b.cols, (*scaleShape)[0]);
  }
  if (!bR || !bC)
    return std::nullopt;
  b.blockRows = *bR;
  b.blockCols = *bC;
  return b;
}

/// Stores `n` values as F32 or BF16 (`out`: 4n or 2n bytes, little-endian
/// hosts).
inline void storeFloats(Format format, const float *values, int64_t n,
                        uint8_t *out) {
  for (int64_t i = 0; i < n; ++i) {
    if (format == Format::F32) {
      std::memcpy(out + 4 * i, &values[i], 4);
    } else {
      uint16_t bits = quant::encodeBF16(values[i]);
      std::memcpy(out + 2 * i, &bits, 2);
    }
  }
}

/// Quantises rows [0, rows) of a [rows, cols] FP8/FP4 weight with the
/// blocks of `blocking` (rows a multiple of blockRows unless it is the
/// last band): codes into `codes` (FP4: packed, element 2i in the low
/// nibble), one e8m0 code per block into `scales`. `hasScale` false: the
/// values stand alone (scale 1; `scales` is not written).
inline void quantizeWeight(Format format, const float *values, int64_t rows,
                           const Blocking &blocking, bool hasScale,
                           uint8_t *codes, uint8_t *scales) {
  int64_t cols = blocking.cols, n = rows * cols;
  if (!hasScale) {
    for (int64_t i = 0; i < n; ++i) {
      if (format == Format::FP4) {
        uint8_t c = quant::encodeE2M1(values[i]);
        uint8_t &b = codes[i / 2];
        b = (i % 2) ? uint8_t((b & 0x0F) | (c << 4)) : uint8_t((b & 0xF0) | c);
      } else {
        codes[i] = quant::encodeE4M3(values[i]);
      }
    }
    return;
  }
  if (format == Format::FP4)
    quant::quantizeFP4(values, rows, cols, blocking.blockRows,
                       blocking.blockCols, codes, scales);
  else
    quant::quantizeFP8(values, rows, cols, blocking.blockRows,
                       blocking.blockCols, codes, scales);
}

//===----------------------------------------------------------------------===//
// Integer tables
//===----------------------------------------------------------------------===//

/// Hash routing's token -> experts table: `*tid2eid`, [vocab, k].
inline bool isTid2eid(std::string_view name) {
  return endsWith(name, "tid2eid");
}
/// The gate weight whose first dim is the expert count of a tid2eid table.
inline std::string tid2eidGate(std::string_view name) {
  return std::string(name.substr(0, name.size() - 7)) + "weight";
}
/// One row of a tid2eid table: `k` distinct experts of `experts` (partial
/// Fisher-Yates over `perm`, reset here), drawn with `below(n)`.
template <typename Below>
void drawTid2eidRow(int64_t experts, int64_t k, Below &&below,
                    std::vector<int64_t> &perm, int64_t *row) {
  perm.resize(static_cast<size_t>(experts));
  for (int64_t e = 0; e < experts; ++e)
    perm[e] = e;
  for (int64_t j = 0; j < k; ++j) {
    int64_t pick = j + int64_t(below(uint64_t(experts - j)));
    std::swap(perm[j], perm[pick]);
    row[j] = perm[j];
  }
}

/// The Engram token map (token -> compressed id): the identity.
inline bool isTokenMap(std::string_view name) {
  return endsWith(name, "engram.token_map");
}
/// Engram hash multipliers stored as a parameter (not derived): odd values
/// 2r + 1 with r below (2^63 / vc) / 2, vc the token map's entries.
inline bool isHashMultipliers(std::string_view name) {
  return endsWith(name, "multipliers");
}
template <typename Below> int64_t drawMultiplier(int64_t vc, Below &&below) {
  uint64_t limit = (uint64_t(1) << 63) / uint64_t(std::max<int64_t>(vc, 1));
  return int64_t(2 * below(std::max<uint64_t>(limit / 2, 1)) + 1);
}

} // namespace recipe
} // namespace v4

#endif // V4_RUNTIME_NUMERICS_WEIGHTRECIPE_H
