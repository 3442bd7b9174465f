//===- LowPrecision.cpp - FP8/FP4/E8M0/bf16 numerics as IR ----------------===//
#include "lowering/Numerics/LowPrecision.h"

#include "runtime/numerics/Numerics.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/TypeUtilities.h"

#include <cassert>
#include <limits>

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

/// `elt` with the shape of `like` (a vector of codes or a scalar).
static Type shapedLike(Type like, Type elt) {
  if (auto v = dyn_cast<VectorType>(like))
    return v.clone(elt);
  return elt;
}

Value bitsOf(Site at, Value f) {
  ImplicitLocOpBuilder b = at.builder();
  return arith::BitcastOp::create(b, shapedLike(f.getType(), b.getI32Type()),
                                  f);
}
Value floatOf(Site at, Value bits) {
  ImplicitLocOpBuilder b = at.builder();
  return arith::BitcastOp::create(b, shapedLike(bits.getType(), b.getF32Type()),
                                  bits);
}

/// The integer constant v of `width` bits shaped like `like` (splat for a
/// vector); c32 / c16 name the two widths the decoders use.
static Value intLike(ImplicitLocOpBuilder &b, Value like, unsigned width,
                     int64_t v) {
  Type elt = b.getIntegerType(width);
  IntegerAttr attr = b.getIntegerAttr(elt, v);
  if (auto vt = dyn_cast<VectorType>(shapedLike(like.getType(), elt)))
    return arith::ConstantOp::create(
        b, DenseElementsAttr::get(vt, attr.getValue()));
  return arith::ConstantOp::create(b, attr);
}
static Value c32(ImplicitLocOpBuilder &b, Value like, int64_t v) {
  return intLike(b, like, 32, v);
}
static Value c16(ImplicitLocOpBuilder &b, Value like, int64_t v) {
  return intLike(b, like, 16, v);
}
static Value andi(ImplicitLocOpBuilder &b, Value x, int64_t m) {
  return arith::AndIOp::create(b, x, c32(b, x, m));
}
static Value shl(ImplicitLocOpBuilder &b, Value x, int64_t s) {
  return arith::ShLIOp::create(b, x, c32(b, x, s));
}
static Value shr(ImplicitLocOpBuilder &b, Value x, int64_t s) {
  return arith::ShRUIOp::create(b, x, c32(b, x, s));
}
static Value addi(ImplicitLocOpBuilder &b, Value x, int64_t v) {
  return arith::AddIOp::create(b, x, c32(b, x, v));
}
static Value eqi(ImplicitLocOpBuilder &b, Value x, int64_t v) {
  return arith::CmpIOp::create(b, arith::CmpIPredicate::eq, x, c32(b, x, v));
}
static Value select(ImplicitLocOpBuilder &b, Value c, Value x, Value y) {
  return arith::SelectOp::create(b, c, x, y);
}
/// An i8 code (scalar or vector) zero-extended to i32 (i32 is kept).
static Value code32(ImplicitLocOpBuilder &b, Value code) {
  if (getElementTypeOrSelf(code).isInteger(32))
    return code;
  return arith::ExtUIOp::create(b, shapedLike(code.getType(), b.getI32Type()),
                                code);
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
  Value bits = select(b, eqi(b, c, 0), c32(b, c, 0x00400000), shl(b, c, 23));
  return floatOf(b, select(b, eqi(b, c, 0xFF), c32(b, c, 0x7FC00000), bits));
}

/// A code or nibble (scalar or vector) as i16 (zero-extended or truncated).
static Value code16(ImplicitLocOpBuilder &b, Value code) {
  Type i16 = shapedLike(code.getType(), b.getI16Type());
  unsigned width = getElementTypeOrSelf(code).getIntOrFloatBitWidth();
  if (width == 16)
    return code;
  if (width < 16)
    return arith::ExtUIOp::create(b, i16, code);
  return arith::TruncIOp::create(b, i16, code);
}

/// The small float codes decode through binary16, whose exponent field
/// holds theirs: the code's exponent and mantissa bits, shifted to the top
/// of the half's, make a half worth 2^-k of the code's value (subnormals
/// included, as half subnormals); the widening to f32 is exact, and the
/// scaling by 2^k multiplies normal numbers only. On x86-64-v3 (F16C) the
/// widening is one vcvtph2ps per 8 codes.
Value halfToF32(Site at, Value halfBits) {
  ImplicitLocOpBuilder b = at.builder();
  Type type = halfBits.getType();
  return arith::ExtFOp::create(
      b, shapedLike(type, b.getF32Type()),
      Value(arith::BitcastOp::create(b, shapedLike(type, b.getF16Type()),
                                     halfBits)));
}

static Value widenHalf(ImplicitLocOpBuilder &b, Value halfBits, double scale) {
  return arith::MulFOp::create(b, halfToF32(b, halfBits), f32(b, scale));
}

Value e4m3HalfBits(Site at, Value code) {
  // s.eeee.mmm is the half s.0eeee.mmm0000000 = 2^-8 of the value. 0x7F and
  // 0xFF become the half NaN 0x7E00 with the sign, i.e. f32 0x7FC00000.
  ImplicitLocOpBuilder b = at.builder();
  Value c = code16(b, code);
  Value sign = arith::ShLIOp::create(
      b, arith::AndIOp::create(b, c, c16(b, c, 0x80)), c16(b, c, 8));
  Value mag = arith::AndIOp::create(b, c, c16(b, c, 0x7F));
  Value half = arith::SelectOp::create(
      b,
      arith::CmpIOp::create(b, arith::CmpIPredicate::eq, mag, c16(b, c, 0x7F)),
      c16(b, c, 0x7E00), arith::ShLIOp::create(b, mag, c16(b, c, 7)));
  return arith::OrIOp::create(b, sign, half);
}

Value e4m3HalfBitsFinite(Site at, Value code) {
  // The sign-extended code shifted left by 7 is s.s.eeee.mmm0000000: the
  // half of e4m3HalfBits but for bit 14, a copy of the sign.
  ImplicitLocOpBuilder b = at.builder();
  Type i16 = shapedLike(code.getType(), b.getI16Type());
  assert(getElementTypeOrSelf(code).getIntOrFloatBitWidth() == 8 &&
         "an i8 code");
  Value c = arith::ExtSIOp::create(b, i16, code);
  return arith::AndIOp::create(b, arith::ShLIOp::create(b, c, c16(b, c, 7)),
                               c16(b, c, 0xBFFF));
}

Value e4m3NaNProbe(Site at, Value code) {
  // ~code & 0x7F: zero exactly where the low 7 bits are all ones.
  ImplicitLocOpBuilder b = at.builder();
  Type elt = getElementTypeOrSelf(code);
  auto splat = [&](int64_t v) -> Value {
    TypedAttr a = b.getIntegerAttr(elt, v);
    if (auto vt = dyn_cast<VectorType>(code.getType()))
      a = DenseElementsAttr::get(vt, a);
    return arith::ConstantOp::create(b, a);
  };
  return arith::AndIOp::create(b, arith::XOrIOp::create(b, code, splat(-1)),
                               splat(0x7F));
}

Value e2m1HalfBits(Site at, Value nibble, unsigned shift) {
  // s.ee.m is the half s.000ee.m000000000 = 2^-14 of the value.
  assert(shift <= 4 && "the nibble lies within the low 8 bits");
  ImplicitLocOpBuilder b = at.builder();
  Value n = code16(b, nibble);
  int64_t sh = shift;
  Value sign = arith::ShLIOp::create(
      b, arith::AndIOp::create(b, n, c16(b, n, 8 << sh)), c16(b, n, 12 - sh));
  Value mag = arith::ShLIOp::create(
      b, arith::AndIOp::create(b, n, c16(b, n, 7 << sh)), c16(b, n, 9 - sh));
  return arith::OrIOp::create(b, sign, mag);
}

Value decodeE4M3(Site at, Value code) {
  ImplicitLocOpBuilder b = at.builder();
  return widenHalf(b, e4m3HalfBits(b, code), kE4M3HalfScale);
}

Value decodeE2M1(Site at, Value nibble) {
  ImplicitLocOpBuilder b = at.builder();
  return widenHalf(b, e2m1HalfBits(b, nibble), kE2M1HalfScale);
}

/// The declaration of the LLVM intrinsic `name` of type `type` in `module`
/// (made once). LLVM IR takes a function named llvm.* for the intrinsic; a
/// call of it is an op the buffer passes know, unlike llvm.call_intrinsic
/// (unknown memory effects).
static LLVM::LLVMFuncOp
declareIntrinsic(ModuleOp module, StringRef name,
                 function_ref<LLVM::LLVMFunctionType(Builder &)> type) {
  if (auto decl = module.lookupSymbol<LLVM::LLVMFuncOp>(name))
    return decl;
  OpBuilder b = OpBuilder::atBlockBegin(module.getBody());
  return LLVM::LLVMFuncOp::create(b, module.getLoc(), name, type(b));
}

LLVM::LLVMFuncOp declareE2M1Permute(ModuleOp module) {
  return declareIntrinsic(
      module, "llvm.x86.avx512.permvar.sf.512", [](Builder &b) {
        auto f32s = VectorType::get({16}, b.getF32Type());
        auto i32s = VectorType::get({16}, b.getI32Type());
        return LLVM::LLVMFunctionType::get(f32s, {f32s, i32s});
      });
}

LLVM::LLVMFuncOp declareDotBF16(ModuleOp module) {
  return declareIntrinsic(
      module, "llvm.x86.avx512bf16.dpbf16ps.512", [](Builder &b) {
        auto f32s = VectorType::get({16}, b.getF32Type());
        auto bf16s = VectorType::get({32}, b.getBF16Type());
        return LLVM::LLVMFunctionType::get(f32s, {f32s, bf16s, bf16s});
      });
}

BF16PairDecoders declareBF16PairDecoders(ModuleOp module) {
  BF16PairDecoders d;
  d.bytePermute2 = declareIntrinsic(
      module, "llvm.x86.avx512.vpermi2var.qi.512", [](Builder &b) {
        auto i8s = VectorType::get({64}, b.getI8Type());
        return LLVM::LLVMFunctionType::get(i8s, {i8s, i8s, i8s});
      });
  d.wordPermute = declareIntrinsic(
      module, "llvm.x86.avx512.permvar.hi.512", [](Builder &b) {
        auto i16s = VectorType::get({32}, b.getIntegerType(16));
        return LLVM::LLVMFunctionType::get(i16s, {i16s, i16s});
      });
  return d;
}

std::pair<Value, Value> decodeE4M3BytesBF16(Site at, Value codes,
                                            const BF16PairDecoders &d) {
  ImplicitLocOpBuilder b = at.builder();
  auto i8s = VectorType::get({64}, b.getI8Type());
  // The low and high bytes of the values of codes 0 .. 127, each table in
  // two halves of 64 (vpermi2b's bit 6 picks the half).
  SmallVector<int8_t> lo[2], hi[2];
  for (unsigned c = 0; c < 128; ++c) {
    uint16_t v = ::v4::quant::encodeBF16(
        c == 0x7F ? std::numeric_limits<float>::quiet_NaN()
                  : ::v4::quant::decodeE4M3(static_cast<uint8_t>(c)) /
                        static_cast<float>(kE4M3HalfScale));
    lo[c / 64].push_back(static_cast<int8_t>(v & 0xFF));
    hi[c / 64].push_back(static_cast<int8_t>(v >> 8));
  }
  auto table = [&](ArrayRef<int8_t> t) -> Value {
    return arith::ConstantOp::create(b, DenseElementsAttr::get(i8s, t));
  };
  auto lookup = [&](ArrayRef<int8_t> t0, ArrayRef<int8_t> t1) -> Value {
    return LLVM::CallOp::create(b, d.bytePermute2,
                                ValueRange{table(t0), codes, table(t1)})
        .getResult();
  };
  auto splat8 = [&](int8_t v) -> Value {
    return arith::ConstantOp::create(
        b, DenseElementsAttr::get(i8s, b.getI8IntegerAttr(v)));
  };
  Value low = lookup(lo[0], lo[1]);
  Value high = arith::OrIOp::create(
      b, lookup(hi[0], hi[1]),
      arith::AndIOp::create(b, codes, splat8(int8_t(0x80))));
  auto bf16s = VectorType::get({32}, b.getBF16Type());
  auto half = [&](int64_t h) -> Value {
    SmallVector<int64_t> mask;
    for (int64_t p = 0; p < 32; ++p) {
      mask.push_back(e4m3PairElement(h, p));
      mask.push_back(64 + e4m3PairElement(h, p));
    }
    return vector::BitCastOp::create(
        b, bf16s, vector::ShuffleOp::create(b, low, high, mask));
  };
  return {half(0), half(1)};
}

/// The bf16 bits of the e2m1 grid as the vpermw table of the FP4 decoders:
/// vpermw reads an index's low 5 bits, so the grid twice over, and bit 4
/// (a high nibble's lowest bit beside a low nibble) does not matter.
static Value e2m1WordTable(ImplicitLocOpBuilder &b) {
  auto i16s = VectorType::get({32}, b.getIntegerType(16));
  SmallVector<int16_t> grid;
  for (unsigned i = 0; i < 32; ++i)
    grid.push_back(static_cast<int16_t>(::v4::quant::encodeBF16(
        ::v4::quant::decodeE2M1(static_cast<uint8_t>(i & 15)))));
  return arith::ConstantOp::create(
      b, DenseElementsAttr::get(i16s, ArrayRef<int16_t>(grid)));
}

std::pair<Value, Value> decodeE2M1RunBF16(Site at, Value bytes,
                                          const BF16PairDecoders &d) {
  ImplicitLocOpBuilder b = at.builder();
  auto i16s = VectorType::get({32}, b.getIntegerType(16));
  auto bf16s = VectorType::get({32}, b.getBF16Type());
  Value table = e2m1WordTable(b);
  Value words = arith::ExtUIOp::create(b, i16s, bytes);
  Value four = arith::ConstantOp::create(
      b,
      DenseElementsAttr::get(i16s, b.getIntegerAttr(b.getIntegerType(16), 4)));
  auto lookup = [&](Value index) -> Value {
    return vector::BitCastOp::create(
        b, bf16s,
        LLVM::CallOp::create(b, d.wordPermute, ValueRange{table, index})
            .getResult());
  };
  return {lookup(words), lookup(arith::ShRUIOp::create(b, words, four))};
}

Value decodeE2M1BytesBF16(Site at, Value bytes, const BF16PairDecoders &d) {
  ImplicitLocOpBuilder b = at.builder();
  auto i16s = VectorType::get({32}, b.getIntegerType(16));
  auto i32s = VectorType::get({16}, b.getI32Type());
  Value table = e2m1WordTable(b);
  // Lane i = byte i | byte i << 12: its low word indexes by the low nibble,
  // its high word is the high nibble.
  Value x = arith::ExtUIOp::create(b, i32s, bytes);
  Value y = arith::OrIOp::create(b, x, shl(b, x, 12));
  Value words = vector::BitCastOp::create(b, i16s, y);
  Value z = LLVM::CallOp::create(b, d.wordPermute, ValueRange{table, words})
                .getResult();
  return vector::BitCastOp::create(b, VectorType::get({32}, b.getBF16Type()),
                                   z);
}

std::pair<Value, Value> decodeE2M1BytesPermuted(Site at, Value bytes,
                                                LLVM::LLVMFuncOp permute,
                                                Value scale) {
  ImplicitLocOpBuilder b = at.builder();
  auto i32s = VectorType::get({16}, b.getI32Type());
  auto f32s = VectorType::get({16}, b.getF32Type());
  SmallVector<float> grid;
  for (uint8_t code = 0; code < 16; ++code)
    grid.push_back(::v4::quant::decodeE2M1(code));
  Value table = arith::ConstantOp::create(
      b, DenseElementsAttr::get(f32s, ArrayRef<float>(grid)));
  if (scale)
    table = arith::MulFOp::create(b, table,
                                  vector::BroadcastOp::create(b, f32s, scale));
  Value codes = arith::ExtUIOp::create(b, i32s, bytes);
  auto lookup = [&](Value index) -> Value {
    return LLVM::CallOp::create(b, permute, ValueRange{table, index})
        .getResult();
  };
  Value four = arith::ConstantOp::create(
      b, DenseElementsAttr::get(i32s, ArrayRef<int32_t>{4}));
  return {lookup(codes), lookup(arith::ShRUIOp::create(b, codes, four))};
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
  Value exp = exponentOf(b, math::AbsFOp::create(b, y));
  Value e = arith::MaxSIOp::create(b, exp, c32(b, exp, minExp));
  Value up = pow2(b, arith::SubIOp::create(b, c32(b, e, mantBits), e));
  Value down = pow2(b, addi(b, e, -mantBits));
  return arith::MulFOp::create(
      b, math::RoundEvenOp::create(b, arith::MulFOp::create(b, y, up)), down);
}

/// The f32 constant v shaped like `like` (splat for a vector).
static Value f32Like(ImplicitLocOpBuilder &b, Value like, double v) {
  FloatAttr attr = b.getF32FloatAttr(v);
  if (auto vt =
          dyn_cast<VectorType>(shapedLike(like.getType(), b.getF32Type())))
    return arith::ConstantOp::create(
        b, DenseElementsAttr::get(vt, attr.getValue()));
  return arith::ConstantOp::create(b, attr);
}

static Value clamp(ImplicitLocOpBuilder &b, Value y, double limit) {
  return arith::MinimumFOp::create(
      b, arith::MaximumFOp::create(b, y, f32Like(b, y, -limit)),
      f32Like(b, y, limit));
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
  Type bf16 = b.getBF16Type();
  if (auto vt = dyn_cast<VectorType>(v.getType()))
    bf16 = vt.clone(bf16);
  Value narrow = arith::TruncFOp::create(b, bf16, v);
  return arith::ExtFOp::create(b, v.getType(), narrow);
}

Value scaleBlock(Site at, Value partial, Value actScale, Value weightScale) {
  ImplicitLocOpBuilder b = at.builder();
  return arith::MulFOp::create(b, arith::MulFOp::create(b, partial, actScale),
                               weightScale);
}

} // namespace mlir::v4::lowp
