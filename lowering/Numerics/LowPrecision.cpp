//===- LowPrecision.cpp - FP8/FP4/E8M0/bf16 numerics as IR ----------------===//
#include "lowering/Numerics/LowPrecision.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/BuiltinTypes.h"

using namespace mlir;

namespace mlir::v4::lowp {

WeightFormat getWeightFormat(Type elementType) {
  if (isa<Float4E2M1FNType>(elementType))
    return WeightFormat::FP4;
  if (isa<Float8E4M3FNType>(elementType))
    return WeightFormat::FP8;
  return WeightFormat::Plain;
}

Value i32(Site at, int64_t v) {
  ImplicitLocOpBuilder b = at.builder();
  return arith::ConstantOp::create(b, b.getI32IntegerAttr(v));
}
Value f32(Site at, double v) {
  ImplicitLocOpBuilder b = at.builder();
  return arith::ConstantOp::create(b, b.getF32FloatAttr(v));
}

Value bitsOf(Site at, Value f) {
  ImplicitLocOpBuilder b = at.builder();
  return arith::BitcastOp::create(b, b.getI32Type(), f);
}
Value floatOf(Site at, Value bits) {
  ImplicitLocOpBuilder b = at.builder();
  return arith::BitcastOp::create(b, b.getF32Type(), bits);
}

static Value andi(ImplicitLocOpBuilder &b, Value x, int64_t m) {
  return arith::AndIOp::create(b, x, i32(b, m));
}
static Value shl(ImplicitLocOpBuilder &b, Value x, int64_t s) {
  return arith::ShLIOp::create(b, x, i32(b, s));
}
static Value shr(ImplicitLocOpBuilder &b, Value x, int64_t s) {
  return arith::ShRUIOp::create(b, x, i32(b, s));
}
static Value addi(ImplicitLocOpBuilder &b, Value x, int64_t v) {
  return arith::AddIOp::create(b, x, i32(b, v));
}
static Value ori(ImplicitLocOpBuilder &b, Value x, Value y) {
  return arith::OrIOp::create(b, x, y);
}
static Value eqi(ImplicitLocOpBuilder &b, Value x, int64_t v) {
  return arith::CmpIOp::create(b, arith::CmpIPredicate::eq, x, i32(b, v));
}
static Value select(ImplicitLocOpBuilder &b, Value c, Value x, Value y) {
  return arith::SelectOp::create(b, c, x, y);
}
/// An i8 code zero-extended to i32 (an i32 is kept).
static Value code32(ImplicitLocOpBuilder &b, Value code) {
  if (code.getType().isInteger(32))
    return code;
  return arith::ExtUIOp::create(b, b.getI32Type(), code);
}

Value pow2(Site at, Value k) {
  ImplicitLocOpBuilder b = at.builder();
  return floatOf(b, shl(b, addi(b, k, 127), 23));
}

Value exponentOf(Site at, Value v) {
  ImplicitLocOpBuilder b = at.builder();
  return addi(b, andi(b, shr(b, bitsOf(b, v), 23), 0xFF), -127);
}

Value decodeE8M0(Site at, Value code) {
  ImplicitLocOpBuilder b = at.builder();
  Value c = code32(b, code);
  Value bits = select(b, eqi(b, c, 0), i32(b, 0x00400000), shl(b, c, 23));
  return floatOf(b, select(b, eqi(b, c, 0xFF), i32(b, 0x7FC00000), bits));
}

Value decodeE4M3(Site at, Value code) {
  // Through binary16, whose exponent field holds e4m3's: s.eeee.mmm is the
  // half s.0eeee.mmm0000000, worth 2^-8 of the e4m3 value (subnormals
  // included, as half subnormals), and the widening to f32 is exact. On
  // x86 (F16C) the widening is one vcvtph2ps per 8 codes, and the scaling by
  // 2^8 multiplies normal numbers only. 0x7F / 0xFF become the half NaN
  // 0x7E00 with the sign, i.e. f32 0x7FC00000 with the sign.
  ImplicitLocOpBuilder b = at.builder();
  Type i16 = b.getI16Type();
  auto c16 = [&](int64_t v) {
    return arith::ConstantOp::create(b, b.getI16IntegerAttr(v));
  };
  Value c = code.getType().isInteger(16) ? code
            : code.getType().getIntOrFloatBitWidth() < 16
                ? Value(arith::ExtUIOp::create(b, i16, code))
                : Value(arith::TruncIOp::create(b, i16, code));
  Value sign =
      arith::ShLIOp::create(b, arith::AndIOp::create(b, c, c16(0x80)), c16(8));
  Value mag = arith::AndIOp::create(b, c, c16(0x7F));
  Value half = select(
      b, arith::CmpIOp::create(b, arith::CmpIPredicate::eq, mag, c16(0x7F)),
      c16(0x7E00), arith::ShLIOp::create(b, mag, c16(7)));
  half = arith::OrIOp::create(b, sign, half);
  Value widened = arith::ExtFOp::create(
      b, b.getF32Type(),
      Value(arith::BitcastOp::create(b, b.getF16Type(), half)));
  return arith::MulFOp::create(b, widened, f32(b, 0x1p8));
}

Value decodeE2M1(Site at, Value nibble) {
  ImplicitLocOpBuilder b = at.builder();
  Value e = andi(b, shr(b, nibble, 1), 3), m = andi(b, nibble, 1);
  Value normal = ori(b, shl(b, addi(b, e, 126), 23), shl(b, m, 22));
  Value subnormal = arith::MulIOp::create(b, m, i32(b, 0x3F000000)); // 0.5 or 0
  Value bits = select(b, eqi(b, e, 0), subnormal, normal);
  return floatOf(b, ori(b, bits, shl(b, andi(b, nibble, 8), 28)));
}

std::pair<Value, Value> decodeE2M1Byte(Site at, Value byte) {
  ImplicitLocOpBuilder b = at.builder();
  Value bits = code32(b, byte);
  Value lo = decodeE2M1(b, andi(b, bits, 15));
  Value hi = decodeE2M1(b, shr(b, bits, 4));
  return {lo, hi};
}

Value dequantizeE4M3(Site at, Value code, Value scaleCode) {
  ImplicitLocOpBuilder b = at.builder();
  Value w = decodeE4M3(b, code);
  return arith::MulFOp::create(b, w, decodeE8M0(b, scaleCode));
}

Value roundGrid(Site at, Value y, int64_t mantBits, int64_t minExp) {
  ImplicitLocOpBuilder b = at.builder();
  Value e = arith::MaxSIOp::create(b, exponentOf(b, math::AbsFOp::create(b, y)),
                                   i32(b, minExp));
  Value up = pow2(b, arith::SubIOp::create(b, i32(b, mantBits), e));
  Value down = pow2(b, addi(b, e, -mantBits));
  return arith::MulFOp::create(
      b, math::RoundEvenOp::create(b, arith::MulFOp::create(b, y, up)), down);
}

static Value clamp(ImplicitLocOpBuilder &b, Value y, double limit) {
  return arith::MinimumFOp::create(
      b, arith::MaximumFOp::create(b, y, f32(b, -limit)), f32(b, limit));
}

Value roundE4M3(Site at, Value y) {
  ImplicitLocOpBuilder b = at.builder();
  return roundGrid(b, clamp(b, y, 448.0), 3, -6);
}

Value roundE2M1(Site at, Value y) {
  ImplicitLocOpBuilder b = at.builder();
  return roundGrid(b, clamp(b, y, 6.0), 1, 0);
}

Value quantizeE4M3(Site at, Value x, Value scale) {
  return roundE4M3(at, arith::DivFOp::create(at.b, at.loc, x, scale));
}

Value quantizeE2M1(Site at, Value x, Value scale) {
  return roundE2M1(at, arith::DivFOp::create(at.b, at.loc, x, scale));
}

Value actScale(Site at, Value amax, float floor, float gridMax) {
  ImplicitLocOpBuilder b = at.builder();
  Value prod = arith::MulFOp::create(
      b, arith::MaximumFOp::create(b, amax, f32(b, floor)),
      f32(b, 1.0f / gridMax));
  Value bits = bitsOf(b, prod);
  Value exp = addi(b, andi(b, shr(b, bits, 23), 0xFF), -127);
  Value mantNonZero = arith::CmpIOp::create(b, arith::CmpIPredicate::ne,
                                            andi(b, bits, 0x7FFFFF), i32(b, 0));
  Value k = arith::AddIOp::create(
      b, exp, arith::ExtUIOp::create(b, b.getI32Type(), mantNonZero));
  return pow2(b, k);
}

Value fp8ActScale(Site at, Value amax) {
  return actScale(at, amax, 1e-4f, 448.0f);
}

Value fp4ActScale(Site at, Value amax) {
  return actScale(at, amax, 6.0f * 0x1p-126f, 6.0f);
}

Value toF32(Site at, Value v) {
  if (v.getType().isF32())
    return v;
  return arith::ExtFOp::create(at.b, at.loc, at.b.getF32Type(), v);
}

Value fromF32(Site at, Value v, Type t) {
  if (t.isF32())
    return v;
  return arith::TruncFOp::create(at.b, at.loc, t, v);
}

Value roundBF16(Site at, Value v) {
  ImplicitLocOpBuilder b = at.builder();
  Value narrow = arith::TruncFOp::create(b, b.getBF16Type(), v);
  return arith::ExtFOp::create(b, b.getF32Type(), narrow);
}

Value scaleBlock(Site at, Value partial, Value actScale, Value weightScale) {
  ImplicitLocOpBuilder b = at.builder();
  return arith::MulFOp::create(b, arith::MulFOp::create(b, partial, actScale),
                               weightScale);
}

} // namespace mlir::v4::lowp
