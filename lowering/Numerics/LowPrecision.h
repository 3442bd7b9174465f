//===- LowPrecision.h - FP8/FP4/E8M0/bf16 numerics as IR --------*- C++ -*-===//
//
// The one library of low-precision numerics every kernel body uses: the
// hand-built kernels (lowering/KernelBuilders, in scf loops over memrefs)
// and the target-neutral bodies (lowering/V4ToLinalg, inside linalg.generic
// regions). Each function emits scalar arith/math ops at the builder's
// insertion point on scalar SSA values, so it works in any region: inside a
// linalg.generic body, make an ImplicitLocOpBuilder from the region's
// OpBuilder and location and call these on the block arguments.
//
// Codes arrive as raw integers (the storage layout of
// dialects/V4/V4StorageLayout.h: FP8 and e8m0 as i8, FP4 nibbles). Values
// are f32. Everything is exact integer bit manipulation or one correctly
// rounded fp32 op, so the results are bit-identical to test/reference
// (V4-SPEC 2.3, 2.4).
//
//===----------------------------------------------------------------------===//
#ifndef V4_LOWERING_NUMERICS_LOWPRECISION_H
#define V4_LOWERING_NUMERICS_LOWPRECISION_H

#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/Types.h"
#include "mlir/IR/Value.h"

namespace mlir::v4::lowp {

/// How a linear weight is stored (from its MLIR element type): FP4 e2m1
/// packed two per byte with per-32 e8m0 scales, FP8 e4m3 with 128x128 e8m0
/// block scales, or plain bf16/f32.
enum class WeightFormat { FP4, FP8, Plain };
WeightFormat getWeightFormat(Type elementType);

/// An i32 / f32 constant.
Value i32(ImplicitLocOpBuilder &b, int64_t v);
Value f32(ImplicitLocOpBuilder &b, double v);

/// The bits of an f32 as i32, and back.
Value bitsOf(ImplicitLocOpBuilder &b, Value f);
Value floatOf(ImplicitLocOpBuilder &b, Value bits);
/// 2^k as f32 for an i32 k in [-126, 127].
Value pow2(ImplicitLocOpBuilder &b, Value k);
/// The unbiased exponent field of an f32 (floor(log2|v|) for normal v, -127
/// for zero and subnormals).
Value exponentOf(ImplicitLocOpBuilder &b, Value v);

/// An e8m0 code (i8) -> 2^(code - 127); code 0 is 2^-127, 0xFF NaN.
Value decodeE8M0(ImplicitLocOpBuilder &b, Value code);
/// An e4m3fn code (i8) -> f32, exact; 0x7F and 0xFF are NaN.
Value decodeE4M3(ImplicitLocOpBuilder &b, Value code);
/// An e2m1 nibble (i32 in [0, 16)) -> f32: +-{0, 0.5, 1, 1.5, 2, 3, 4, 6}.
Value decodeE2M1(ImplicitLocOpBuilder &b, Value nibble);

/// Round-to-nearest-even of y onto a grid whose spacing in the binade
/// [2^e, 2^(e+1)) is 2^(e - mantBits), with e >= minExp (subnormals).
Value roundGrid(ImplicitLocOpBuilder &b, Value y, int64_t mantBits,
                int64_t minExp);
/// e4m3fn RNE of y, saturating to +-448.
Value roundE4M3(ImplicitLocOpBuilder &b, Value y);
/// e2m1 RNE of y, saturating to +-6.
Value roundE2M1(ImplicitLocOpBuilder &b, Value y);

/// The pow-2 scale of V4-SPEC 2.3 for a block with absolute maximum amax:
/// 2^ceil(log2(fp32(max(amax, floor) * fp32(1 / gridMax)))), the ceil(log2)
/// read off the bits.
Value actScale(ImplicitLocOpBuilder &b, Value amax, float floor, float gridMax);
/// The FP8 activation scale of V4-SPEC 2.4 step 1 (floor 1e-4, grid 448).
Value fp8ActScale(ImplicitLocOpBuilder &b, Value amax);
/// The FP4 fake-quant scale (floor 6 * 2^-126, grid 6).
Value fp4ActScale(ImplicitLocOpBuilder &b, Value amax);

/// Widens a float value to f32 (f32 is kept).
Value toF32(ImplicitLocOpBuilder &b, Value v);
/// Narrows an f32 value to float type `t`, round to nearest even (f32 is
/// kept).
Value fromF32(ImplicitLocOpBuilder &b, Value v, Type t);

/// A bf16 rounding point: an f32 value rounded to bf16 and widened back.
Value roundBF16(ImplicitLocOpBuilder &b, Value v);

/// One block of a block-scaled dot product: `partial` (the fp32 sum of
/// quantised activation times decoded weight over the block) scaled by the
/// activation scale, then by the weight scale, in the reference's order.
Value scaleBlock(ImplicitLocOpBuilder &b, Value partial, Value actScale,
                 Value weightScale);

} // namespace mlir::v4::lowp

#endif // V4_LOWERING_NUMERICS_LOWPRECISION_H
