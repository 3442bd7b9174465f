//===- LowPrecisionTest.cpp - lowering/Numerics/LowPrecision --------------===//
//
// Each emitter of the low-precision library is built on constant operands,
// folded by the canonicalizer, and compared bit for bit with the C++ numerics
// the reference uses (runtime/numerics/Numerics.h): every e4m3 / e8m0 / e2m1
// code, grid rounding with ties and saturation, the activation scales. Half
// the values are built through an ImplicitLocOpBuilder, half through an
// OpBuilder and a Location (the form of a linalg.generic body), and one test
// builds a linalg.generic body with the library.
//
//===----------------------------------------------------------------------===//
#include "lowering/Numerics/LowPrecision.h"

#include "runtime/numerics/Numerics.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

using namespace mlir;
namespace lowp = mlir::v4::lowp;
namespace q = ::v4::quant;

namespace {

uint32_t bitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

/// Same value bit for bit, or both NaN.
::testing::AssertionResult sameFloat(float expected, float actual) {
  if ((std::isnan(expected) && std::isnan(actual)) ||
      bitsOf(expected) == bitsOf(actual))
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "expected " << expected << " (0x" << std::hex << bitsOf(expected)
         << "), got " << actual << " (0x" << bitsOf(actual) << ")";
}

class LowPrecision : public ::testing::Test {
protected:
  LowPrecision() {
    context
        .loadDialect<arith::ArithDialect, func::FuncDialect, math::MathDialect,
                     linalg::LinalgDialect, tensor::TensorDialect>();
  }

  /// Builds scalar values with `build` (given both builder forms, at the
  /// same point) in a function, folds it, and returns the f32 constants the
  /// values folded to.
  std::vector<float>
  fold(function_ref<void(ImplicitLocOpBuilder &, SmallVectorImpl<Value> &)>
           build) {
    Location loc = UnknownLoc::get(&context);
    OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
    ImplicitLocOpBuilder b =
        ImplicitLocOpBuilder::atBlockEnd(loc, module->getBody());
    auto fn = func::FuncOp::create(b, "f", b.getFunctionType({}, {}));
    b.setInsertionPointToEnd(fn.addEntryBlock());
    SmallVector<Value> results;
    build(b, results);
    func::ReturnOp::create(b, results);
    fn.setType(b.getFunctionType({}, ValueRange(results).getTypes()));
    EXPECT_TRUE(succeeded(verify(*module)));
    PassManager pm(&context);
    pm.addPass(createCanonicalizerPass());
    EXPECT_TRUE(succeeded(pm.run(*module)));
    std::vector<float> out;
    auto ret = cast<func::ReturnOp>(fn.getBody().front().getTerminator());
    for (Value v : ret.getOperands()) {
      auto c = v.getDefiningOp<arith::ConstantOp>();
      EXPECT_TRUE(c) << "a value did not fold to a constant";
      if (!c) {
        out.push_back(NAN);
      } else if (auto dense = dyn_cast<DenseFPElementsAttr>(c.getValue())) {
        // A vector: its elements in order.
        for (APFloat e : dense.getValues<APFloat>())
          out.push_back(e.convertToFloat());
      } else {
        out.push_back(float(cast<FloatAttr>(c.getValue()).getValueAsDouble()));
      }
    }
    return out;
  }

  static Value i8(OpBuilder &b, Location loc, unsigned code) {
    return arith::ConstantOp::create(b, loc,
                                     b.getI8IntegerAttr(int8_t(code & 0xFF)));
  }
  static Value f32(OpBuilder &b, Location loc, float v) {
    return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(v));
  }

  MLIRContext context;
};

/// The f32 value of an 8-bit code under MLIR's semantics of the format.
float apDecode(const llvm::fltSemantics &sem, unsigned code) {
  APFloat v(sem, APInt(8, code));
  if (v.isNaN()) // converting an e8m0 NaN to f32 gives inf in LLVM 22
    return NAN;
  bool losesInfo = false;
  v.convert(APFloat::IEEEsingle(), APFloat::rmNearestTiesToEven, &losesInfo);
  return v.convertToFloat();
}

// Against both oracles: MLIR's f8E4M3FN / f8E8M0FNU semantics (the logical
// weight types) for every code, and the reference's decoders for every code
// but the NaN encodings, which the reference never meets (its encoders
// saturate at 448 and scale code 254) and reads as +-480 and inf.
TEST_F(LowPrecision, DecodesEveryE4M3AndE8M0Code) {
  std::vector<float> got = fold([](ImplicitLocOpBuilder &b, auto &out) {
    for (unsigned c = 0; c < 256; ++c) {
      // Even codes through the ImplicitLocOpBuilder, odd through {b, loc}.
      Value code = i8(b, b.getLoc(), c);
      if (c % 2)
        out.push_back(lowp::decodeE4M3({b, b.getLoc()}, code));
      else
        out.push_back(lowp::decodeE4M3(b, code));
      out.push_back(lowp::decodeE8M0(b, code));
    }
  });
  ASSERT_EQ(got.size(), 512u);
  for (unsigned c = 0; c < 256; ++c) {
    float e4m3 = got[2 * c], e8m0 = got[2 * c + 1];
    EXPECT_TRUE(sameFloat(apDecode(APFloat::Float8E4M3FN(), c), e4m3)) << c;
    EXPECT_TRUE(sameFloat(apDecode(APFloat::Float8E8M0FNU(), c), e8m0)) << c;
    if ((c & 0x7F) == 0x7F)
      EXPECT_TRUE(std::isnan(e4m3)) << c;
    else
      EXPECT_TRUE(sameFloat(q::decodeE4M3(uint8_t(c)), e4m3)) << c;
    if (c == 0xFF)
      EXPECT_TRUE(std::isnan(e8m0));
    else
      EXPECT_TRUE(sameFloat(float(q::decodeE8M0(uint8_t(c))), e8m0)) << c;
  }
}

TEST_F(LowPrecision, DecodesEveryE2M1NibbleAndPackedByte) {
  std::vector<float> got = fold([](ImplicitLocOpBuilder &b, auto &out) {
    for (unsigned n = 0; n < 16; ++n)
      out.push_back(lowp::decodeE2M1(b, lowp::i32(b, n)));
    for (unsigned c = 0; c < 256; ++c) {
      auto [lo, hi] =
          lowp::decodeE2M1Byte({b, b.getLoc()}, i8(b, b.getLoc(), c));
      out.push_back(lo);
      out.push_back(hi);
    }
  });
  ASSERT_EQ(got.size(), 16u + 512u);
  for (unsigned n = 0; n < 16; ++n)
    EXPECT_TRUE(sameFloat(q::decodeE2M1(uint8_t(n)), got[n])) << n;
  for (unsigned c = 0; c < 256; ++c) {
    EXPECT_TRUE(sameFloat(q::decodeE2M1(uint8_t(c & 15)), got[16 + 2 * c]));
    EXPECT_TRUE(sameFloat(q::decodeE2M1(uint8_t(c >> 4)), got[17 + 2 * c]));
  }
}

// The vector forms the fast decode GEMV uses: e8m0 codes decoded as a
// vector, and both nibbles of packed bytes from one i16 widening
// (e2m1HalfBits at bit 0 and bit 4), for every code.
TEST_F(LowPrecision, DecodesVectorsOfE8M0CodesAndPackedNibbles) {
  std::vector<float> got = fold([](ImplicitLocOpBuilder &b, auto &out) {
    SmallVector<int8_t> codes;
    for (unsigned c = 0; c < 256; ++c)
      codes.push_back(int8_t(c));
    auto i8v = VectorType::get({256}, b.getI8Type());
    Value v = arith::ConstantOp::create(
        b, DenseElementsAttr::get(i8v, ArrayRef<int8_t>(codes)));
    out.push_back(lowp::decodeE8M0(b, v));
    Value wide =
        arith::ExtUIOp::create(b, VectorType::get({256}, b.getI16Type()), v);
    out.push_back(lowp::halfToF32(b, lowp::e2m1HalfBits(b, wide, 0)));
    out.push_back(lowp::halfToF32(b, lowp::e2m1HalfBits(b, wide, 4)));
  });
  ASSERT_EQ(got.size(), 3u * 256u);
  for (unsigned c = 0; c < 256; ++c) {
    EXPECT_TRUE(sameFloat(apDecode(APFloat::Float8E8M0FNU(), c), got[c])) << c;
    EXPECT_TRUE(sameFloat(q::decodeE2M1(uint8_t(c & 15)),
                          float(got[256 + c] * lowp::kE2M1HalfScale)))
        << c;
    EXPECT_TRUE(sameFloat(q::decodeE2M1(uint8_t(c >> 4)),
                          float(got[512 + c] * lowp::kE2M1HalfScale)))
        << c;
  }
}

TEST_F(LowPrecision, DequantizesE4M3WithItsBlockScale) {
  // Codes of both signs but the NaN ones, scales from 2^-127 to 2^127.
  const unsigned scales[] = {0, 1, 100, 120, 127, 128, 134, 254};
  std::vector<unsigned> codes;
  for (unsigned c = 0; c < 256; c += 3)
    if ((c & 0x7F) != 0x7F)
      codes.push_back(c);
  std::vector<float> got = fold([&](ImplicitLocOpBuilder &b, auto &out) {
    for (unsigned s : scales)
      for (unsigned c : codes)
        out.push_back(lowp::dequantizeE4M3(b, i8(b, b.getLoc(), c),
                                           i8(b, b.getLoc(), s)));
  });
  size_t i = 0;
  for (unsigned s : scales)
    for (unsigned c : codes)
      EXPECT_TRUE(sameFloat(q::decodeE4M3(uint8_t(c)) *
                                float(q::decodeE8M0(uint8_t(s))),
                            got[i++]))
          << "code " << c << " scale " << s;
}

/// Values that exercise grid rounding: every binade from below the
/// subnormals to past saturation, midpoints between grid neighbours (ties),
/// and random values; both signs.
std::vector<float> roundingInputs(const float *grid, unsigned n) {
  std::vector<float> v = {0.0f,   -0.0f,  1e-30f, 1e6f, -1e6f, 448.0f,
                          449.0f, 464.0f, 480.0f, 6.0f, 7.0f,  5.0f};
  for (unsigned i = 0; i + 1 < n; ++i) {
    float mid = 0.5f * (grid[i] + grid[i + 1]);
    v.insert(v.end(),
             {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f)});
  }
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> mant(1.0f, 2.0f);
  for (int e = -14; e <= 10; ++e)
    for (int k = 0; k < 8; ++k)
      v.push_back(std::ldexp(mant(rng), e));
  size_t positives = v.size();
  for (size_t i = 0; i < positives; ++i)
    v.push_back(-v[i]);
  return v;
}

TEST_F(LowPrecision, RoundsOntoTheE4M3AndE2M1GridsLikeTheReference) {
  std::vector<float> e4m3Grid(127), e2m1Grid(8);
  for (unsigned c = 0; c < 127; ++c)
    e4m3Grid[c] = q::decodeE4M3(uint8_t(c));
  for (unsigned c = 0; c < 8; ++c)
    e2m1Grid[c] = q::decodeE2M1(uint8_t(c));
  std::vector<float> in8 = roundingInputs(e4m3Grid.data(), 127);
  std::vector<float> in4 = roundingInputs(e2m1Grid.data(), 8);
  std::vector<float> got = fold([&](ImplicitLocOpBuilder &b, auto &out) {
    for (float x : in8)
      out.push_back(lowp::roundE4M3({b, b.getLoc()}, f32(b, b.getLoc(), x)));
    for (float x : in4)
      out.push_back(lowp::roundE2M1(b, f32(b, b.getLoc(), x)));
    // quantize = round(x / s) with a pow-2 s.
    for (float x : in8)
      out.push_back(lowp::quantizeE4M3(b, f32(b, b.getLoc(), x),
                                       f32(b, b.getLoc(), 0x1p-3f)));
    for (float x : in4)
      out.push_back(lowp::quantizeE2M1({b, b.getLoc()}, f32(b, b.getLoc(), x),
                                       f32(b, b.getLoc(), 4.0f)));
  });
  ASSERT_EQ(got.size(), 2 * (in8.size() + in4.size()));
  size_t i = 0;
  for (float x : in8)
    EXPECT_TRUE(sameFloat(q::roundE4M3(x), got[i++])) << "e4m3 of " << x;
  for (float x : in4)
    EXPECT_TRUE(sameFloat(q::roundE2M1(x), got[i++])) << "e2m1 of " << x;
  for (float x : in8)
    EXPECT_TRUE(sameFloat(q::roundE4M3(x / 0x1p-3f), got[i++]))
        << "quantizeE4M3 of " << x;
  for (float x : in4)
    EXPECT_TRUE(sameFloat(q::roundE2M1(x / 4.0f), got[i++]))
        << "quantizeE2M1 of " << x;
}

TEST_F(LowPrecision, ActivationScalesArePow2CeilOfTheReference) {
  std::vector<float> amax = {0.0f, 1e-9f,  1e-4f,  2e-4f,  0.1f, 1.0f,  6.0f,
                             7.0f, 448.0f, 449.0f, 896.0f, 3e4f, 1e-38f};
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> mant(1.0f, 2.0f);
  for (int e = -20; e <= 20; e += 3)
    amax.push_back(std::ldexp(mant(rng), e));
  std::vector<float> got = fold([&](ImplicitLocOpBuilder &b, auto &out) {
    for (float a : amax) {
      out.push_back(lowp::fp8ActScale(b, f32(b, b.getLoc(), a)));
      out.push_back(lowp::fp4ActScale({b, b.getLoc()}, f32(b, b.getLoc(), a)));
    }
  });
  ASSERT_EQ(got.size(), 2 * amax.size());
  for (size_t i = 0; i < amax.size(); ++i) {
    EXPECT_TRUE(sameFloat(std::ldexp(1.0f, q::fp8ActScaleExponent(amax[i])),
                          got[2 * i]))
        << "fp8 scale of " << amax[i];
    EXPECT_TRUE(sameFloat(std::ldexp(1.0f, q::fp4ActScaleExponent(amax[i])),
                          got[2 * i + 1]))
        << "fp4 scale of " << amax[i];
  }
}

TEST_F(LowPrecision, ScalesABlockByActivationThenWeightScale) {
  // (p * s_a) * s_w, not p * (s_a * s_w): they differ when p * s_a
  // underflows.
  const float p = 0x1.8p-100f, sa = 0x1p-40f, sw = 0x1p+30f;
  std::vector<float> got = fold([&](ImplicitLocOpBuilder &b, auto &out) {
    Location loc = b.getLoc();
    out.push_back(
        lowp::scaleBlock(b, f32(b, loc, p), f32(b, loc, sa), f32(b, loc, sw)));
  });
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(sameFloat((p * sa) * sw, got[0]));
}

TEST(LowPrecisionWeightFormat, FollowsTheWeightElementType) {
  MLIRContext context;
  Builder b(&context);
  EXPECT_EQ(lowp::getWeightFormat(b.getType<Float4E2M1FNType>()),
            lowp::WeightFormat::FP4);
  EXPECT_EQ(lowp::getWeightFormat(b.getType<Float8E4M3FNType>()),
            lowp::WeightFormat::FP8);
  EXPECT_EQ(lowp::getWeightFormat(b.getBF16Type()), lowp::WeightFormat::Plain);
  EXPECT_EQ(lowp::getWeightFormat(b.getF32Type()), lowp::WeightFormat::Plain);
}

// The form a V4ToLinalg body uses: the region builder's OpBuilder and
// Location, block arguments as operands.
TEST_F(LowPrecision, BuildsALinalgGenericBody) {
  Location loc = NameLoc::get(StringAttr::get(&context, "dequant"));
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  OpBuilder b = OpBuilder::atBlockEnd(module->getBody());
  auto codesType = RankedTensorType::get({4, 64}, b.getI8Type());
  auto scalesType = RankedTensorType::get({4, 2}, b.getI8Type());
  auto outType = RankedTensorType::get({4, 64}, b.getBF16Type());
  auto fn = func::FuncOp::create(
      b, loc, "dequant", b.getFunctionType({codesType, scalesType}, {outType}));
  b.setInsertionPointToEnd(fn.addEntryBlock());
  Value init = tensor::EmptyOp::create(b, loc, outType.getShape(),
                                       outType.getElementType());
  MLIRContext *ctx = &context;
  AffineExpr i = getAffineDimExpr(0, ctx), j = getAffineDimExpr(1, ctx);
  SmallVector<AffineMap> maps = {AffineMap::get(2, 0, {i, j}, ctx),
                                 AffineMap::get(2, 0, {i, j.floorDiv(32)}, ctx),
                                 AffineMap::get(2, 0, {i, j}, ctx)};
  auto generic = linalg::GenericOp::create(
      b, loc, TypeRange{outType}, fn.getArguments(), ValueRange{init}, maps,
      {utils::IteratorType::parallel, utils::IteratorType::parallel},
      [](OpBuilder &nb, Location nloc, ValueRange args) {
        lowp::Site at(nb, nloc);
        Value w = lowp::dequantizeE4M3(at, args[0], args[1]);
        linalg::YieldOp::create(nb, nloc,
                                lowp::fromF32(at, w, args[2].getType()));
      });
  func::ReturnOp::create(b, loc, generic.getResults());
  ASSERT_TRUE(succeeded(verify(*module)));
  Block &body = generic.getRegion().front();
  EXPECT_TRUE(isa<linalg::YieldOp>(body.getTerminator()));
  EXPECT_TRUE(llvm::any_of(
      body, [](Operation &op) { return isa<arith::TruncFOp>(op); }));
  for (Operation &op : body)
    EXPECT_EQ(op.getLoc(), loc) << "ops keep the region builder's location";
}

} // namespace
