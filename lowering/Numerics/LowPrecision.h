//===- LowPrecision.h - FP8/FP4/E8M0/bf16 numerics as IR --------*- C++ -*-===//
//
// The one library of low-precision numerics every kernel body uses: the
// hand-built kernels (lowering/KernelBuilders, in scf loops over memrefs)
// and the target-neutral bodies (lowering/V4ToLinalg, inside linalg.generic
// regions). Each function emits scalar arith/math ops at an insertion point
// (a `Site`) on scalar SSA values and returns a scalar; none creates a region,
// a loop or a memory access, so they work in any region.
//
// Values are f32. Codes arrive as raw integers, as the storage layout holds
// them (dialects/V4/V4StorageLayout.h): FP8 e4m3fn and e8m0 as i8, FP4 e2m1
// packed two per i8 byte (low nibble first). Every function is exact integer
// bit manipulation or correctly rounded fp32 ops in a fixed order, so the
// kernels built on it are bit-identical to reference/ (V4-SPEC 2.3, 2.4).
//
// From a hand builder (scf loops over memrefs), pass the ImplicitLocOpBuilder:
//
//   Value w = lowp::decodeE4M3(b, memref::LoadOp::create(b, wCodes, {n, k}));
//
// From a linalg.generic body, pass the region's builder and location; the
// block arguments are the scalar elements (i8 codes, f32/bf16 values):
//
//   linalg::GenericOp::create(rewriter, loc, resultTypes, inputs, outputs,
//       maps, iterators,
//       [&](OpBuilder &b, Location loc, ValueRange args) {
//         // args = (code i8, scale code i8, acc f32)
//         Value w = lowp::dequantizeE4M3({b, loc}, args[0], args[1]);
//         linalg::YieldOp::create(b, loc, lowp::roundBF16({b, loc}, w));
//       });
//
// A Site keeps a reference to the builder, so ops created through it are
// reported to a rewriter's listener exactly as if created directly (safe in
// conversion patterns).
//
// Building a block-scaled dot product (V4-SPEC 2.4) from these pieces:
//   1. per activation block: amax -> s_a = fp8ActScale(amax);
//      each element qa = quantizeE4M3(x, s_a) (an e4m3 grid value, f32);
//   2. per weight block: partial = sum over the block, ascending k, in fp32,
//      of qa * decodeE4M3(code)  (FP4: decodeE2M1Byte gives the two values of
//      a packed byte, low nibble = even k);
//   3. acc += scaleBlock(partial, s_a, decodeE8M0(scale code)).
// The CPU hand builders do exactly this in scf loops (quantizeActFP8 and
// tileGemm in lowering/KernelBuilders/CPUKernelBody.h); a linalg body
// reproduces the same numbers when its reductions run in ascending order.
//
//===----------------------------------------------------------------------===//
#ifndef V4_LOWERING_NUMERICS_LOWPRECISION_H
#define V4_LOWERING_NUMERICS_LOWPRECISION_H

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/Types.h"
#include "mlir/IR/Value.h"

#include <utility>

namespace mlir::v4::lowp {

/// Where the emitters insert their ops: an ImplicitLocOpBuilder (implicitly),
/// or any OpBuilder (a rewriter included) and a Location: `{b, loc}`.
struct Site {
  Site(ImplicitLocOpBuilder &b) : b(b), loc(b.getLoc()) {}
  Site(OpBuilder &b, Location loc) : b(b), loc(loc) {}
  /// A builder at this site (a copy: it inserts where `b` does and keeps its
  /// listener).
  ImplicitLocOpBuilder builder() const { return ImplicitLocOpBuilder(loc, b); }

  OpBuilder &b;
  Location loc;
};

//===----------------------------------------------------------------------===//
// Weight formats
//===----------------------------------------------------------------------===//

/// How a linear weight is stored: FP4 e2m1 packed two per byte with one e8m0
/// scale per 32 K elements, FP8 e4m3 with 128x128 e8m0 block scales, or
/// plain bf16/f32.
enum class WeightFormat { FP4, FP8, Plain };
/// The rule: the format of a weight whose logical MLIR element type is
/// `elementType` (f4E2M1FN -> FP4, f8E4M3FN -> FP8, anything else -> Plain).
WeightFormat getWeightFormat(Type elementType);

//===----------------------------------------------------------------------===//
// Constants and f32 bits
//===----------------------------------------------------------------------===//

/// An i32 / f32 constant.
Value i32(Site at, int64_t v);
Value f32(Site at, double v);

/// The bits of an f32 as i32, and back.
Value bitsOf(Site at, Value f);
Value floatOf(Site at, Value bits);
/// 2^k as f32 for an i32 k in [-126, 127].
Value pow2(Site at, Value k);
/// The unbiased exponent field of an f32 (floor(log2|v|) for normal v, -127
/// for zero and subnormals).
Value exponentOf(Site at, Value v);

//===----------------------------------------------------------------------===//
// Decoding codes (exact)
//===----------------------------------------------------------------------===//

/// The e4m3fn and e2m1 codes decode through binary16: the code's exponent
/// and mantissa bits at the top of a half's make a half worth 2^-8 (e4m3)
/// or 2^-14 (e2m1) of the code's value, subnormals included. These take a
/// scalar code or a vector of codes (any integer width; the low 8 or 4 bits
/// count) and give i16 half bits of the same shape; e4m3's NaN codes (0x7F,
/// 0xFF) give a half NaN. e2m1HalfBits decodes the nibble at bits
/// [shift, shift + 4) (0 or 4: a packed byte's low or high element), so
/// both elements of a byte come from one widening.
Value e4m3HalfBits(Site at, Value code);
Value e2m1HalfBits(Site at, Value nibble, unsigned shift = 0);
/// e4m3HalfBits of i8 codes (scalar or vector) known not to be NaN codes, in
/// three operations (sign-extend, shift, mask): a NaN code gives a finite
/// half, so the caller checks them itself, e.g. with e4m3NaNProbe over a
/// whole run of codes at once.
Value e4m3HalfBitsFinite(Site at, Value code);
/// Of i8 codes (scalar or vector), a value of the same shape that is zero
/// exactly at e4m3's NaN codes (0x7F, 0xFF): the minimum of the probes of a
/// run of codes is zero when one of them is NaN.
Value e4m3NaNProbe(Site at, Value code);
/// What e4m3HalfBits / e2m1HalfBits values are worth relative to the code.
constexpr double kE4M3HalfScale = 0x1p8;
constexpr double kE2M1HalfScale = 0x1p14;
/// Half bits (i16 scalar or vector) -> f32 of the same shape, exact.
Value halfToF32(Site at, Value halfBits);
/// x86-64-v4 (AVX-512) code only: 16 packed FP4 bytes (vector<16xi8>) as
/// the f32 values of their low and high nibbles (16 lanes each, exact and
/// worth the code itself: no scale to fold). Each nibble indexes one
/// vpermps (`permute`, declareE2M1Permute's declaration of the intrinsic)
/// into the 16 values of runtime/numerics' quant::decodeE2M1; vpermps
/// reads only an index's low 4 bits, so the low nibbles need no mask.
LLVM::LLVMFuncOp declareE2M1Permute(ModuleOp module);
/// x86-64-v4-bf16 code only: the declaration of vdpbf16ps on zmm registers,
/// (acc: vector<16xf32>, a, b: vector<32xbf16>) -> vector<16xf32>, lane i
/// adding a[2i] b[2i] and a[2i + 1] b[2i + 1] to acc[i] (denormal inputs
/// and results as zero).
LLVM::LLVMFuncOp declareDotBF16(ModuleOp module);
/// x86-64-v4-bf16 code only (that level includes AVX512_VBMI): stored
/// codes straight to the bf16 operands of vdpbf16ps, every value exact and
/// normal in bf16 (vdpbf16ps reads subnormal inputs as zero; e4m3's
/// subnormals are 2^-9 multiples, normal in bf16). The declarations of
/// vpermi2b and vpermw (declareBF16PairDecoders).
struct BF16PairDecoders {
  LLVM::LLVMFuncOp bytePermute2, wordPermute;
};
BF16PairDecoders declareBF16PairDecoders(ModuleOp module);
/// 64 e4m3fn codes (vector<64xi8>) as two vector<32xbf16> worth 2^-8 of
/// their values (kE4M3HalfScale, as e4m3HalfBits; subnormal codes too stay
/// normal in bf16):
/// each value's low and high byte looked up by vpermi2b in 128-entry tables
/// (the index's sign bit ignored, then OR'd into the high byte; 0x7F and
/// 0xFF give NaN), the bytes interleaved within 128-bit lanes (vpunpcklbw,
/// vpunpckhbw). Position p of half h holds element e4m3PairElement(h, p).
std::pair<Value, Value> decodeE4M3BytesBF16(Site at, Value codes,
                                            const BF16PairDecoders &d);
/// The element of a run of 64 that decodeE4M3BytesBF16 puts at position p
/// (in [0, 32)) of half h (0 or 1).
constexpr int64_t e4m3PairElement(int64_t half, int64_t p) {
  return 16 * (p / 8) + 8 * half + p % 8;
}
/// 16 packed FP4 bytes (vector<16xi8>) as vector<32xbf16> of their values in
/// element order (byte i's low nibble at 2i, its high nibble at 2i + 1):
/// both nibbles of a byte in one 32-bit lane, one vpermw into the e2m1
/// grid.
Value decodeE2M1BytesBF16(Site at, Value bytes, const BF16PairDecoders &d);
/// 32 packed FP4 bytes (vector<32xi8>, two 32-slices) as two vector<32xbf16>
/// of their values: each byte widened to a 16-bit lane, one vpermw of the
/// low nibbles (word p: element 2p) and one of the high ones (word p:
/// element 2p + 1). A pair dot's lane i then adds elements 4i and 4i + 2
/// (first half) or 4i + 1 and 4i + 3 (second): lanes 0-7 the first slice's,
/// 8-15 the second's.
std::pair<Value, Value> decodeE2M1RunBF16(Site at, Value bytes,
                                          const BF16PairDecoders &d);
/// With `scale` (an f32 scalar) the table is the values times it (one
/// multiply per call; exact for a power of 2 in range, e.g. an e8m0 scale).
std::pair<Value, Value> decodeE2M1BytesPermuted(Site at, Value bytes,
                                                LLVM::LLVMFuncOp permute,
                                                Value scale = Value());

/// An e8m0 code (i8 or i32, scalar or vector) -> 2^(code - 127) of the
/// same shape; code 0 is 2^-127, 0xFF NaN.
Value decodeE8M0(Site at, Value code);
/// An e4m3fn code (i8 or i32) -> f32, exact; 0x7F and 0xFF are NaN.
Value decodeE4M3(Site at, Value code);
/// An e2m1 nibble (i32 in [0, 16)) -> f32: +-{0, 0.5, 1, 1.5, 2, 3, 4, 6}.
Value decodeE2M1(Site at, Value nibble);
/// A packed FP4 byte (i8) -> the f32 values of its low nibble (the even K
/// element) and its high nibble (the odd one).
std::pair<Value, Value> decodeE2M1Byte(Site at, Value byte);
/// An FP8 weight element scaled by its block scale: decodeE4M3(code) *
/// decodeE8M0(scaleCode) in f32 (exact unless it underflows). Round it with
/// roundBF16 for the bf16-dequantised weights of V4-SPEC 5.7.
Value dequantizeE4M3(Site at, Value code, Value scaleCode);

//===----------------------------------------------------------------------===//
// Rounding onto the FP8/FP4 grids and to bf16
//===----------------------------------------------------------------------===//

/// Round-to-nearest-even of y (f32) onto a grid whose spacing in the binade
/// [2^e, 2^(e+1)) is 2^(e - mantBits), with e >= minExp (subnormals); no
/// saturation. Both scalings by powers of two are exact. y may be an f32
/// vector (each lane rounded alike), as may that of roundE4M3 / roundE2M1.
Value roundGrid(Site at, Value y, int64_t mantBits, int64_t minExp);
/// e4m3fn RNE of y, saturating to +-448.
Value roundE4M3(Site at, Value y);
/// e2m1 RNE of y, saturating to +-6.
Value roundE2M1(Site at, Value y);

/// The pow-2 scale of V4-SPEC 2.3 for a block with absolute maximum amax:
/// 2^ceil(log2(fp32(max(amax, floor) * fp32(1 / gridMax)))), the ceil(log2)
/// read off the bits.
Value actScale(Site at, Value amax, float floor, float gridMax);
/// The FP8 activation scale of V4-SPEC 2.4 step 1 (floor 1e-4, grid 448).
Value fp8ActScale(Site at, Value amax);
/// The FP4 fake-quant scale (floor 6 * 2^-126, grid 6).
Value fp4ActScale(Site at, Value amax);

/// x quantised at pow-2 scale s: the e4m3 (e2m1) grid value of fp32(x / s),
/// saturated. Multiplying it by s again is the fake-quant value (V4-SPEC
/// 2.3); in a block-scaled dot it is the quantised activation qa.
Value quantizeE4M3(Site at, Value x, Value scale);
Value quantizeE2M1(Site at, Value x, Value scale);

/// Widens a float value to f32 (f32 is kept).
Value toF32(Site at, Value v);
/// Narrows an f32 value to float type `t`, round to nearest even (f32 is
/// kept).
Value fromF32(Site at, Value v, Type t);
/// A bf16 rounding point: an f32 value (or each lane of a vector of them)
/// rounded to bf16 and widened back.
Value roundBF16(Site at, Value v);

//===----------------------------------------------------------------------===//
// Block-scaled dot products (V4-SPEC 2.4 steps 2-3)
//===----------------------------------------------------------------------===//

/// One block of a block-scaled dot product: `partial` (the fp32 sum of
/// quantised activation times decoded weight over the block) scaled by the
/// activation scale, then by the decoded weight scale, in the reference's
/// order: (partial * s_a) * s_w.
Value scaleBlock(Site at, Value partial, Value actScale, Value weightScale);

} // namespace mlir::v4::lowp

#endif // V4_LOWERING_NUMERICS_LOWPRECISION_H
