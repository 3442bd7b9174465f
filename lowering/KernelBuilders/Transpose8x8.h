//===- Transpose8x8.h - 8x8 f32 transpose in vector registers ---*- C++ -*-===//
//
// The one home of the register transpose that the bit-exact GEMMs use to
// put 8 output features in vector lanes while reading weight rows
// contiguously: tileGemm's one-row pass (CPUKernels.cpp) and the projection
// of v4.kv.compress (V4ToLinalgCore.cpp); and transposeSquare, the
// butterfly transpose of any power-of-2 square, which the pair-dot tiles
// use to put 16 token rows' bf16 pairs in lanes (CPUKernels.cpp).
//
//===----------------------------------------------------------------------===//
#ifndef V4_LOWERING_KERNELBUILDERS_TRANSPOSE8X8_H
#define V4_LOWERING_KERNELBUILDERS_TRANSPOSE8X8_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <cassert>

namespace mlir::v4 {

/// The 8x8 transpose of eight vector<8xf32> rows (column j of the result is
/// element j of every row), as the three shuffle stages of the AVX
/// transpose (unpcklps/unpckhps, shufps, vperm2f128): 24 register shuffles
/// instead of 64 strided scalar loads.
inline SmallVector<Value> transpose8x8(ImplicitLocOpBuilder &b,
                                       ArrayRef<Value> r) {
  auto shuffle = [&](Value x, Value y, ArrayRef<int64_t> mask) -> Value {
    return vector::ShuffleOp::create(b, x, y, mask);
  };
  static constexpr int64_t kLo[] = {0, 8, 1, 9, 4, 12, 5, 13};
  static constexpr int64_t kHi[] = {2, 10, 3, 11, 6, 14, 7, 15};
  static constexpr int64_t kPairLo[] = {0, 1, 8, 9, 4, 5, 12, 13};
  static constexpr int64_t kPairHi[] = {2, 3, 10, 11, 6, 7, 14, 15};
  static constexpr int64_t kHalfLo[] = {0, 1, 2, 3, 8, 9, 10, 11};
  static constexpr int64_t kHalfHi[] = {4, 5, 6, 7, 12, 13, 14, 15};
  Value t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = shuffle(r[i], r[i + 1], kLo);
    t[i + 1] = shuffle(r[i], r[i + 1], kHi);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = shuffle(t[i], t[i + 2], kPairLo);
    u[i + 1] = shuffle(t[i], t[i + 2], kPairHi);
    u[i + 2] = shuffle(t[i + 1], t[i + 3], kPairLo);
    u[i + 3] = shuffle(t[i + 1], t[i + 3], kPairHi);
  }
  SmallVector<Value> c(8);
  for (int i = 0; i < 4; ++i) {
    c[i] = shuffle(u[i], u[i + 4], kHalfLo);
    c[i + 4] = shuffle(u[i], u[i + 4], kHalfHi);
  }
  return c;
}

/// The transpose of n vector<n x T> rows, n a power of 2 (column j of the
/// result is element j of every row): log2(n) stages, each swapping the
/// off-diagonal blocks of side 2^b by one two-source shuffle per row (n
/// log2 n shuffles: 64 for 16 x 16, vpermt2d on x86-64-v4).
inline SmallVector<Value> transposeSquare(ImplicitLocOpBuilder &b,
                                          ArrayRef<Value> r) {
  const int64_t n = static_cast<int64_t>(r.size());
  assert(n > 0 && (n & (n - 1)) == 0 && "a power of 2 rows");
  SmallVector<Value> m(r.begin(), r.end());
  for (int64_t bit = 1; bit < n; bit <<= 1) {
    // Rows i (bit clear) and i | bit: the lanes with the bit set in row i
    // trade places with the lanes without it in row i | bit.
    SmallVector<int64_t> lo(n), hi(n);
    for (int64_t c = 0; c < n; ++c) {
      lo[c] = (c & bit) ? n + (c ^ bit) : c;
      hi[c] = (c & bit) ? n + c : c | bit;
    }
    SmallVector<Value> next(n);
    for (int64_t i = 0; i < n; ++i) {
      if (i & bit)
        continue;
      next[i] = vector::ShuffleOp::create(b, m[i], m[i | bit], lo);
      next[i | bit] = vector::ShuffleOp::create(b, m[i], m[i | bit], hi);
    }
    m = std::move(next);
  }
  return m;
}

/// acc + cols[0] * x[0] + ... + cols[7] * x[7], added in that order (x[j]
/// a splat): each lane is one output's sequential fp32 sum, no FMA.
inline Value addColumnProducts(ImplicitLocOpBuilder &b, Value acc,
                               ArrayRef<Value> cols, ArrayRef<Value> x) {
  for (int j = 0; j < 8; ++j)
    acc =
        arith::AddFOp::create(b, acc, arith::MulFOp::create(b, cols[j], x[j]));
  return acc;
}

/// addColumnProducts with the columns of the 8 x 8 block `rows` (lane f:
/// weight row f).
inline Value addTransposedProducts(ImplicitLocOpBuilder &b, Value acc,
                                   ArrayRef<Value> rows, ArrayRef<Value> x) {
  return addColumnProducts(b, acc, transpose8x8(b, rows), x);
}

} // namespace mlir::v4

#endif // V4_LOWERING_KERNELBUILDERS_TRANSPOSE8X8_H
