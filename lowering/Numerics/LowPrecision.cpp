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

Value i32(ImplicitLocOpBuilder &b, int64_t v) {
  return arith::ConstantOp::create(b, b.getI32IntegerAttr(v));
}
Value f32(ImplicitLocOpBuilder &b, double v) {
  return arith::ConstantOp::create(b, b.getF32FloatAttr(v));
}

Value bitsOf(ImplicitLocOpBuilder &b, Value f) {
  return arith::BitcastOp::create(b, b.getI32Type(), f);
}
Value floatOf(ImplicitLocOpBuilder &b, Value bits) {
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

Value pow2(ImplicitLocOpBuilder &b, Value k) {
  return floatOf(b, shl(b, addi(b, k, 127), 23));
}

Value exponentOf(ImplicitLocOpBuilder &b, Value v) {
  return addi(b, andi(b, shr(b, bitsOf(b, v), 23), 0xFF), -127);
}

Value decodeE8M0(ImplicitLocOpBuilder &b, Value code) {
  Value c = code32(b, code);
  Value bits = select(b, eqi(b, c, 0), i32(b, 0x00400000), shl(b, c, 23));
  return floatOf(b, select(b, eqi(b, c, 0xFF), i32(b, 0x7FC00000), bits));
}

Value decodeE4M3(ImplicitLocOpBuilder &b, Value code) {
  Value c = code32(b, code);
  Value e = andi(b, shr(b, c, 3), 0xF), m = andi(b, c, 7);
  Value normal = ori(b, shl(b, addi(b, e, 120), 23), shl(b, m, 20));
  Value subnormal = bitsOf(
      b, arith::MulFOp::create(b, arith::UIToFPOp::create(b, b.getF32Type(), m),
                               f32(b, 0x1p-9)));
  Value bits = select(b, eqi(b, e, 0), subnormal, normal);
  bits = select(b, eqi(b, andi(b, c, 0x7F), 0x7F), i32(b, 0x7FC00000), bits);
  return floatOf(b, ori(b, bits, shl(b, andi(b, c, 0x80), 24)));
}

Value decodeE2M1(ImplicitLocOpBuilder &b, Value nibble) {
  Value e = andi(b, shr(b, nibble, 1), 3), m = andi(b, nibble, 1);
  Value normal = ori(b, shl(b, addi(b, e, 126), 23), shl(b, m, 22));
  Value subnormal = arith::MulIOp::create(b, m, i32(b, 0x3F000000)); // 0.5 or 0
  Value bits = select(b, eqi(b, e, 0), subnormal, normal);
  return floatOf(b, ori(b, bits, shl(b, andi(b, nibble, 8), 28)));
}

Value roundGrid(ImplicitLocOpBuilder &b, Value y, int64_t mantBits,
                int64_t minExp) {
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

Value roundE4M3(ImplicitLocOpBuilder &b, Value y) {
  return roundGrid(b, clamp(b, y, 448.0), 3, -6);
}

Value roundE2M1(ImplicitLocOpBuilder &b, Value y) {
  return roundGrid(b, clamp(b, y, 6.0), 1, 0);
}

Value actScale(ImplicitLocOpBuilder &b, Value amax, float floor,
               float gridMax) {
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

Value fp8ActScale(ImplicitLocOpBuilder &b, Value amax) {
  return actScale(b, amax, 1e-4f, 448.0f);
}

Value fp4ActScale(ImplicitLocOpBuilder &b, Value amax) {
  return actScale(b, amax, 6.0f * 0x1p-126f, 6.0f);
}

Value toF32(ImplicitLocOpBuilder &b, Value v) {
  if (v.getType().isF32())
    return v;
  return arith::ExtFOp::create(b, b.getF32Type(), v);
}

Value fromF32(ImplicitLocOpBuilder &b, Value v, Type t) {
  if (t.isF32())
    return v;
  return arith::TruncFOp::create(b, t, v);
}

Value roundBF16(ImplicitLocOpBuilder &b, Value v) {
  Value narrow = arith::TruncFOp::create(b, b.getBF16Type(), v);
  return arith::ExtFOp::create(b, b.getF32Type(), narrow);
}

Value scaleBlock(ImplicitLocOpBuilder &b, Value partial, Value actScale,
                 Value weightScale) {
  return arith::MulFOp::create(b, arith::MulFOp::create(b, partial, actScale),
                               weightScale);
}

} // namespace mlir::v4::lowp
