//===- RopeTableTest.cpp - #v4.rope frequency table (V4-SPEC 2.2) ---------===//
#include "dialects/V4/V4Attrs.h"
#include "dialects/V4/V4Dialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace mlir;

namespace {

v4::RopeTableAttr makeTable(MLIRContext &ctx, double base, double factor,
                            int64_t orig) {
  Builder b(&ctx);
  return v4::RopeTableAttr::get(
      &ctx, 64, b.getF64FloatAttr(base), b.getF64FloatAttr(factor), orig,
      b.getF64FloatAttr(32.0), b.getF64FloatAttr(1.0));
}

TEST(RopeTable, YarnRampMatchesSpec) {
  // V4-SPEC 11.2 item 5: dim 64, base 160000, original 65536 -> 15 / 25.
  MLIRContext ctx;
  ctx.loadDialect<v4::V4Dialect>();
  auto table = makeTable(ctx, 160000.0, 16.0, 65536);
  auto [low, high] = table.getYarnRamp();
  EXPECT_EQ(low, 15.0);
  EXPECT_EQ(high, 25.0);
  // For base 10000 the formula gives 20 / 33 (YaRN is not used there).
  auto swa = makeTable(ctx, 10000.0, 16.0, 65536);
  auto [low2, high2] = swa.getYarnRamp();
  EXPECT_EQ(low2, 20.0);
  EXPECT_EQ(high2, 33.0);
}

TEST(RopeTable, YarnBlendsFrequencies) {
  MLIRContext ctx;
  ctx.loadDialect<v4::V4Dialect>();
  auto yarn = makeTable(ctx, 160000.0, 16.0, 65536).getFrequencies();
  auto plain = makeTable(ctx, 160000.0, 1.0, 0).getFrequencies();
  ASSERT_EQ(yarn.size(), 32u);
  ASSERT_EQ(plain.size(), 32u);
  EXPECT_FLOAT_EQ(plain[0], 1.0f);
  for (int i = 0; i <= 15; ++i)
    EXPECT_FLOAT_EQ(yarn[i], plain[i]) << "i = " << i << " is unchanged";
  for (int i = 25; i < 32; ++i)
    EXPECT_FLOAT_EQ(yarn[i], plain[i] / 16.0f) << "i = " << i << " is / 16";
  for (int i = 16; i < 25; ++i) {
    EXPECT_LT(yarn[i], plain[i]) << "i = " << i << " is blended";
    EXPECT_GT(yarn[i], plain[i] / 16.0f) << "i = " << i << " is blended";
  }
  // f_i = base^(-2i/64) in fp32.
  EXPECT_NEAR(plain[1], std::pow(160000.0, -2.0 / 64.0), 1e-7);
}

} // namespace
