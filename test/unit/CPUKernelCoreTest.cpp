//===- CPUKernelCoreTest.cpp - CPU kernels of the core family against V4-SPEC
//---===//
//
// Every expected value is computed here from the spec formulas (plain C++ on
// runtime/numerics), not from the kernel builders.
//
//===----------------------------------------------------------------------===//
#include "lowering/KernelBuilders/CPUKernelBody.h"
#include "runtime/base/HostISA.h"
#include "test/lib/CPUKernelHarness.h"

#include "mlir/AsmParser/AsmParser.h"

#include <cstdio>

using namespace v4test;
namespace q = ::v4::quant;

namespace {

/// Comparison of bf16 results with an oracle: V4-SPEC 2.6 (<= 2 bf16 ulps
/// elementwise, relative 2^-7) plus counts for the report.
struct Bf16Stats {
  int64_t total = 0, exact = 0, within2 = 0;
  double errSq = 0, refSq = 0;
  void add(float got, float want) {
    ++total;
    exact += got == want;
    within2 += std::fabs(got - want) <= std::ldexp(std::fabs(want), -7);
    errSq += double(got - want) * (got - want);
    refSq += double(want) * want;
  }
  double normwise() const {
    return refSq ? std::sqrt(errSq / refSq) : std::sqrt(errSq);
  }
  void print(const char *what) const {
    std::printf("[%s] %lld values: %lld exact, %lld within 2 bf16 ulps, "
                "normwise rel err %.3g\n",
                what, (long long)total, (long long)exact, (long long)within2,
                normwise());
  }
};

uint16_t bits(float v) { return encodeBF16(v); }

//===----------------------------------------------------------------------===//
// v4.embedding
//===----------------------------------------------------------------------===//

TEST(CPUKernels, EmbeddingBf16GathersRows) {
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%t: tensor<50x16xbf16>, %ids: tensor<2x?xi64>) -> tensor<2x?x16xbf16> {
      %e = v4.embedding %t[%ids] : tensor<50x16xbf16>, tensor<2x?xi64> -> tensor<2x?x16xbf16>
      return %e : tensor<2x?x16xbf16>
    })"));
  const int64_t V = 50, D = 16, B = 2, T = 3;
  auto table = randomBf16(V * D, 11);
  std::vector<int64_t> ids = {0, 49, 7, 7, 13, 1};
  std::vector<uint16_t> y(B * T * D, 0xFFFF);
  auto dt = describe<2>(table.data(), {V, D});
  auto di = describe<2>(ids.data(), {B, T});
  auto dy = describe<3>(y.data(), {B, T, D});
  k.run({&dt, &di, &dy});
  for (int64_t r = 0; r < B * T; ++r)
    for (int64_t c = 0; c < D; ++c)
      EXPECT_EQ(y[r * D + c], table[ids[r] * D + c]) << r << " " << c;
}

TEST(CPUKernels, EmbeddingF32WithI32Ids) {
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%t: tensor<9x5xf32>, %ids: tensor<1x?xi32>) -> tensor<1x?x5xf32> {
      %e = v4.embedding %t[%ids] : tensor<9x5xf32>, tensor<1x?xi32> -> tensor<1x?x5xf32>
      return %e : tensor<1x?x5xf32>
    })"));
  std::vector<float> table(45);
  for (int i = 0; i < 45; ++i)
    table[i] = 0.37f * i - 3.1f;
  std::vector<int32_t> ids = {8, 0, 4, 4};
  std::vector<float> y(4 * 5, -1);
  auto dt = describe<2>(table.data(), {9, 5});
  auto di = describe<2>(ids.data(), {1, 4});
  auto dy = describe<3>(y.data(), {1, 4, 5});
  k.run({&dt, &di, &dy});
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 5; ++c)
      EXPECT_EQ(y[r * 5 + c], table[ids[r] * 5 + c]);
}

//===----------------------------------------------------------------------===//
// v4.rms_norm
//===----------------------------------------------------------------------===//

TEST(CPUKernels, RmsNormWeightedMatchesSpec) {
  // V4-SPEC 2.1: y = bf16(w * (x * rsqrt(mean(x^2) + eps))), fp32 inside.
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%x: tensor<2x?x64xbf16>, %w: tensor<64xbf16>) -> tensor<2x?x64xbf16> {
      %y = v4.rms_norm %x, %w eps 1.0e-6 : tensor<2x?x64xbf16>, tensor<64xbf16>
      return %y : tensor<2x?x64xbf16>
    })"));
  const int64_t B = 2, T = 5, K = 64;
  auto x = randomBf16(B * T * K, 1, 3.0f);
  auto w = randomBf16(K, 2);
  for (auto &v : w)
    v = encodeBF16(1.0f + 0.1f * decodeBF16(v));
  std::vector<uint16_t> y(B * T * K, 0);
  auto dx = describe<3>(x.data(), {B, T, K});
  auto dw = describe<1>(w.data(), {K});
  auto dy = describe<3>(y.data(), {B, T, K});
  k.run({&dx, &dw, &dy});
  int mismatches = 0;
  for (int64_t r = 0; r < B * T; ++r) {
    float ss = 0;
    for (int64_t c = 0; c < K; ++c) {
      float v = decodeBF16(x[r * K + c]);
      ss += v * v;
    }
    float rstd = 1.0f / std::sqrt(ss / K + 1e-6f);
    for (int64_t c = 0; c < K; ++c) {
      float want = decodeBF16(
          encodeBF16(decodeBF16(w[c]) * (decodeBF16(x[r * K + c]) * rstd)));
      float got = decodeBF16(y[r * K + c]);
      // bf16 against an oracle with the same rounding points: <= 2 ulps
      // (V4-SPEC 2.6); in practice a summation-order flip moves 1 ulp.
      EXPECT_LE(std::fabs(got - want), std::ldexp(std::fabs(want), -7) + 1e-30f)
          << "row " << r << " col " << c;
      mismatches += got != want;
    }
  }
  EXPECT_LE(mismatches, B * T * K / 50)
      << "more than 2% of values off by an ulp";
}

/// V4-SPEC 5.1 in bf16: squares rounded, fp32 mean rounded, + eps, rsqrt and
/// the product with x (and with w) each rounded to bf16.
void inputPrecisionRow(const uint16_t *x, const uint16_t *w, int64_t n,
                       uint16_t *y) {
  float ss = 0;
  for (int64_t c = 0; c < n; ++c) {
    float v = decodeBF16(x[c]);
    ss += q::roundBF16(v * v);
  }
  float mean = q::roundBF16(ss / float(n));
  float t = q::roundBF16(mean + 1e-6f);
  float rstd = q::roundBF16(1.0f / std::sqrt(t));
  for (int64_t c = 0; c < n; ++c) {
    float o = q::roundBF16(decodeBF16(x[c]) * rstd);
    if (w)
      o = decodeBF16(w[c]) * o;
    y[c] = encodeBF16(o);
  }
}

TEST(CPUKernels, RmsNormInputPrecisionPerHeadMatchesSpec) {
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%x: tensor<2x?x4x64xbf16>) -> tensor<2x?x4x64xbf16> {
      %y = v4.rms_norm %x eps 1.0e-6 precision input : tensor<2x?x4x64xbf16>
      return %y : tensor<2x?x4x64xbf16>
    })"));
  const int64_t B = 2, T = 3, H = 4, D = 64;
  auto x = randomBf16(B * T * H * D, 21, 2.0f);
  std::vector<uint16_t> y(x.size()), want(x.size());
  auto dx = describe<4>(x.data(), {B, T, H, D});
  auto dy = describe<4>(y.data(), {B, T, H, D});
  k.run({&dx, &dy});
  Bf16Stats st;
  for (int64_t r = 0; r < B * T * H; ++r)
    inputPrecisionRow(&x[r * D], nullptr, D, &want[r * D]);
  for (size_t i = 0; i < x.size(); ++i)
    st.add(decodeBF16(y[i]), decodeBF16(want[i]));
  st.print("rms_norm precision input");
  // Same rounding points and the same summation order: bit-exact.
  EXPECT_EQ(st.exact, st.total);
}

TEST(CPUKernels, RmsNormInputPrecisionWeightedMatchesSpec) {
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%x: tensor<3x32xbf16>, %w: tensor<32xbf16>) -> tensor<3x32xbf16> {
      %y = v4.rms_norm %x, %w eps 1.0e-6 precision input : tensor<3x32xbf16>, tensor<32xbf16>
      return %y : tensor<3x32xbf16>
    })"));
  auto x = randomBf16(3 * 32, 22, 5.0f);
  auto w = randomBf16(32, 23, 2.0f);
  std::vector<uint16_t> y(x.size()), want(x.size());
  auto dx = describe<2>(x.data(), {3, 32});
  auto dw = describe<1>(w.data(), {32});
  auto dy = describe<2>(y.data(), {3, 32});
  k.run({&dx, &dw, &dy});
  for (int64_t r = 0; r < 3; ++r)
    inputPrecisionRow(&x[r * 32], w.data(), 32, &want[r * 32]);
  for (size_t i = 0; i < x.size(); ++i)
    EXPECT_EQ(y[i], want[i]) << i;
}

TEST(CPUKernels, RmsNormReduceRank2WeightlessF32MatchesSpec) {
  // mHC joint RMS over the n_hc * d values of a token (V4-SPEC 4.1), fp32.
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%x: tensor<2x?x4x32xf32>) -> tensor<2x?x4x32xf32> {
      %y = v4.rms_norm %x eps 1.0e-6 reduceRank 2 : tensor<2x?x4x32xf32>
      return %y : tensor<2x?x4x32xf32>
    })"));
  const int64_t B = 2, T = 3, M = 4 * 32;
  std::mt19937_64 rng(31);
  std::uniform_real_distribution<float> dist(-4, 4);
  std::vector<float> x(B * T * M), y(x.size());
  for (auto &v : x)
    v = dist(rng);
  auto dx = describe<4>(x.data(), {B, T, 4, 32});
  auto dy = describe<4>(y.data(), {B, T, 4, 32});
  k.run({&dx, &dy});
  double errSq = 0, refSq = 0;
  for (int64_t r = 0; r < B * T; ++r) {
    double ss = 0;
    for (int64_t c = 0; c < M; ++c)
      ss += double(x[r * M + c]) * x[r * M + c];
    double rstd = 1.0 / std::sqrt(ss / M + 1e-6);
    for (int64_t c = 0; c < M; ++c) {
      double want = x[r * M + c] * rstd;
      errSq += (y[r * M + c] - want) * (y[r * M + c] - want);
      refSq += want * want;
      EXPECT_NEAR(y[r * M + c], want, 1e-5 * std::fabs(want) + 1e-7);
    }
  }
  double rel = std::sqrt(errSq / refSq);
  std::printf("[rms_norm reduceRank 2 f32] normwise rel err %.3g\n", rel);
  EXPECT_LE(rel, 1e-5); // V4-SPEC 2.6, fp32 path
}

TEST(CPUKernels, RmsNormReduceRank2WeightedBf16MatchesSpec) {
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%x: tensor<5x4x16xbf16>, %w: tensor<4x16xbf16>) -> tensor<5x4x16xbf16> {
      %y = v4.rms_norm %x, %w eps 1.0e-6 reduceRank 2 : tensor<5x4x16xbf16>, tensor<4x16xbf16>
      return %y : tensor<5x4x16xbf16>
    })"));
  const int64_t R = 5, M = 64;
  auto x = randomBf16(R * M, 41, 3.0f);
  auto w = randomBf16(M, 42, 2.0f);
  std::vector<uint16_t> y(x.size());
  auto dx = describe<3>(x.data(), {R, 4, 16});
  auto dw = describe<2>(w.data(), {4, 16});
  auto dy = describe<3>(y.data(), {R, 4, 16});
  k.run({&dx, &dw, &dy});
  Bf16Stats st;
  for (int64_t r = 0; r < R; ++r) {
    float ss = 0;
    for (int64_t c = 0; c < M; ++c) {
      float v = decodeBF16(x[r * M + c]);
      ss += v * v;
    }
    float rstd = 1.0f / std::sqrt(ss / M + 1e-6f);
    for (int64_t c = 0; c < M; ++c)
      st.add(
          decodeBF16(y[r * M + c]),
          q::roundBF16(decodeBF16(w[c]) * (decodeBF16(x[r * M + c]) * rstd)));
  }
  st.print("rms_norm reduceRank 2 weighted");
  EXPECT_EQ(st.within2, st.total);
  EXPECT_GE(st.exact * 50, st.total * 49);
}

//===----------------------------------------------------------------------===//
// v4.rope
//===----------------------------------------------------------------------===//

/// The table's frequencies as RopeTableAttr::getFrequencies() gives them
/// (their derivation is tested in RopeTableTest).
std::vector<float> frequencies(const std::string &table) {
  MLIRContext ctx;
  ctx.loadDialect<mlir::v4::V4Dialect>();
  auto attr =
      dyn_cast_or_null<mlir::v4::RopeTableAttr>(parseAttribute(table, &ctx));
  EXPECT_TRUE(attr);
  if (!attr)
    return {};
  auto f = attr.getFrequencies();
  return std::vector<float>(f.begin(), f.end());
}

/// V4-SPEC 2.2: theta = fp32(fp32(p) * f_i), rotation in fp32, bf16 out.
void ropeRow(const uint16_t *x, int64_t n, const std::vector<float> &f,
             int64_t p, bool inverse, uint16_t *y) {
  int64_t r = 2 * int64_t(f.size()), o = n - r;
  for (int64_t c = 0; c < o; ++c)
    y[c] = x[c];
  for (size_t i = 0; i < f.size(); ++i) {
    float theta = float(p) * f[i];
    float c = std::cos(theta), s = std::sin(theta);
    if (inverse)
      s = -s;
    float a = decodeBF16(x[o + 2 * i]), b = decodeBF16(x[o + 2 * i + 1]);
    float ra = a * c - b * s;
    float rb = a * s + b * c;
    y[o + 2 * i] = encodeBF16(ra);
    y[o + 2 * i + 1] = encodeBF16(rb);
  }
}

TEST(CPUKernels, RopeBroadcastOverHeadsMatchesSpec) {
  const std::string table =
      "#v4.rope<ropeDim = 16, base = 10000.0, factor = 1.0, "
      "originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0>";
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(
      k.compile(R"(
    func.func @f(%x: tensor<2x?x3x40xbf16>, %p: tensor<2x?xi64>) -> tensor<2x?x3x40xbf16> {
      %y = v4.rope %x, %p table()" +
                table + R"() : tensor<2x?x3x40xbf16>, tensor<2x?xi64>
      return %y : tensor<2x?x3x40xbf16>
    })"));
  auto f = frequencies(table);
  ASSERT_EQ(f.size(), 8u);
  const int64_t B = 2, T = 4, H = 3, N = 40;
  auto x = randomBf16(B * T * H * N, 51, 2.0f);
  std::vector<int64_t> pos = {0, 1, 2, 3, 100, 4095, 70000, 1000003};
  std::vector<uint16_t> y(x.size()), want(x.size());
  auto dx = describe<4>(x.data(), {B, T, H, N});
  auto dp = describe<2>(pos.data(), {B, T});
  auto dy = describe<4>(y.data(), {B, T, H, N});
  k.run({&dx, &dp, &dy});
  Bf16Stats st;
  for (int64_t bt = 0; bt < B * T; ++bt)
    for (int64_t h = 0; h < H; ++h) {
      int64_t off = (bt * H + h) * N;
      ropeRow(&x[off], N, f, pos[bt], false, &want[off]);
    }
  for (size_t i = 0; i < x.size(); ++i)
    st.add(decodeBF16(y[i]), decodeBF16(want[i]));
  st.print("rope");
  EXPECT_EQ(st.within2, st.total);
  EXPECT_GE(st.exact * 50, st.total * 49);
  // The nope part is copied bit for bit.
  for (int64_t r = 0; r < B * T * H; ++r)
    for (int64_t c = 0; c < N - 16; ++c)
      EXPECT_EQ(y[r * N + c], x[r * N + c]);
}

TEST(CPUKernels, RopeYarnInverseMatchesSpecAndUndoesRope) {
  const std::string table =
      "#v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, "
      "originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0>";
  auto src = [&](bool inverse) {
    return std::string(R"(
    func.func @f(%x: tensor<?x128xbf16>, %p: tensor<?xi32>) -> tensor<?x128xbf16> {
      %y = v4.rope %x, %p table()") +
           table + ")" + (inverse ? " inverse" : "") +
           R"( : tensor<?x128xbf16>, tensor<?xi32>
      return %y : tensor<?x128xbf16>
    })";
  };
  CompiledKernel fwd, inv;
  ASSERT_NO_FATAL_FAILURE(fwd.compile(src(false)));
  ASSERT_NO_FATAL_FAILURE(inv.compile(src(true)));
  auto f = frequencies(table);
  ASSERT_EQ(f.size(), 32u);
  const int64_t R = 6, N = 128;
  auto x = randomBf16(R * N, 52, 3.0f);
  std::vector<int32_t> pos = {0, 5, 127, 65535, 524287, 1048575};
  std::vector<uint16_t> y(x.size()), z(x.size()), wantY(x.size()),
      wantZ(x.size());
  auto dx = describe<2>(x.data(), {R, N});
  auto dp = describe<1>(pos.data(), {R});
  auto dy = describe<2>(y.data(), {R, N});
  auto dz = describe<2>(z.data(), {R, N});
  fwd.run({&dx, &dp, &dy});
  inv.run({&dy, &dp, &dz});
  Bf16Stats sy, sz;
  for (int64_t r = 0; r < R; ++r) {
    ropeRow(&x[r * N], N, f, pos[r], false, &wantY[r * N]);
    ropeRow(&y[r * N], N, f, pos[r], true, &wantZ[r * N]);
  }
  for (size_t i = 0; i < x.size(); ++i) {
    sy.add(decodeBF16(y[i]), decodeBF16(wantY[i]));
    sz.add(decodeBF16(z[i]), decodeBF16(wantZ[i]));
  }
  sy.print("rope yarn");
  sz.print("rope yarn inverse");
  EXPECT_EQ(sy.within2, sy.total);
  EXPECT_EQ(sz.within2, sz.total);
  EXPECT_GE(sy.exact * 50, sy.total * 49);
  EXPECT_GE(sz.exact * 50, sz.total * 49);
  // Inverse after forward restores x up to the two bf16 roundings.
  double e = 0, n = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    double d = decodeBF16(z[i]) - decodeBF16(x[i]);
    e += d * d;
    n += double(decodeBF16(x[i])) * decodeBF16(x[i]);
  }
  EXPECT_LT(std::sqrt(e / n), 1e-2);
}

//===----------------------------------------------------------------------===//
// v4.linear
//===----------------------------------------------------------------------===//

TEST(CPUKernels, LinearBf16WeightMatchesSpec) {
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%x: tensor<2x?x96xbf16>, %w: tensor<40x96xbf16>) -> tensor<2x?x40xbf16> {
      %y = v4.linear %x, %w : tensor<2x?x96xbf16>, tensor<40x96xbf16> -> tensor<2x?x40xbf16>
      return %y : tensor<2x?x40xbf16>
    })"));
  const int64_t M = 2 * 3, K = 96, N = 40;
  auto x = randomBf16(M * K, 61, 2.0f);
  auto w = randomBf16(N * K, 62, 0.2f);
  std::vector<uint16_t> y(M * N);
  auto dx = describe<3>(x.data(), {2, 3, K});
  auto dw = describe<2>(w.data(), {N, K});
  auto dy = describe<3>(y.data(), {2, 3, N});
  k.run({&dx, &dw, &dy});
  Bf16Stats st;
  for (int64_t r = 0; r < M; ++r)
    for (int64_t n = 0; n < N; ++n) {
      float acc = 0;
      for (int64_t c = 0; c < K; ++c)
        acc += decodeBF16(x[r * K + c]) * decodeBF16(w[n * K + c]);
      st.add(decodeBF16(y[r * N + n]), q::roundBF16(acc));
    }
  st.print("linear bf16");
  EXPECT_EQ(st.within2, st.total);
  EXPECT_GE(st.exact * 50, st.total * 49);
}

TEST(CPUKernels, LinearF32WeightF32Result) {
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%x: tensor<?x64xf32>, %w: tensor<24x64xf32>) -> tensor<?x24xf32> {
      %y = v4.linear %x, %w : tensor<?x64xf32>, tensor<24x64xf32> -> tensor<?x24xf32>
      return %y : tensor<?x24xf32>
    })"));
  const int64_t M = 5, K = 64, N = 24;
  std::mt19937_64 rng(63);
  std::uniform_real_distribution<float> dist(-1, 1);
  std::vector<float> x(M * K), w(N * K), y(M * N);
  for (auto &v : x)
    v = dist(rng);
  for (auto &v : w)
    v = dist(rng);
  auto dx = describe<2>(x.data(), {M, K});
  auto dw = describe<2>(w.data(), {N, K});
  auto dy = describe<2>(y.data(), {M, N});
  k.run({&dx, &dw, &dy});
  double e = 0, n2 = 0;
  for (int64_t r = 0; r < M; ++r)
    for (int64_t n = 0; n < N; ++n) {
      double acc = 0;
      for (int64_t c = 0; c < K; ++c)
        acc += double(x[r * K + c]) * w[n * K + c];
      e += (y[r * N + n] - acc) * (y[r * N + n] - acc);
      n2 += acc * acc;
    }
  EXPECT_LE(std::sqrt(e / n2), 1e-5); // V4-SPEC 2.6, fp32 path
}

/// V4-SPEC 2.4 step 1: one row of x quantised per 1 x blk block:
/// A (e4m3 values as float) and the pow-2 scales.
void quantizeAct(const uint16_t *x, int64_t K, int64_t blk, float *a,
                 float *s) {
  for (int64_t j = 0; j * blk < K; ++j) {
    int64_t k1 = std::min(K, (j + 1) * blk);
    float amax = 0;
    for (int64_t c = j * blk; c < k1; ++c)
      amax = std::max(amax, std::fabs(decodeBF16(x[c])));
    s[j] = std::ldexp(1.0f, q::fp8ActScaleExponent(amax));
    for (int64_t c = j * blk; c < k1; ++c)
      a[c] = q::roundE4M3(decodeBF16(x[c]) / s[j]);
  }
}

TEST(CPUKernels, LinearFp8BlockScaledMatchesSpec) {
  // K = 320 and N = 200 leave partial 128-blocks in both dims.
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%x: tensor<2x?x320xbf16>, %w: tensor<200x320xf8E4M3FN>,
                 %s: tensor<2x3xf8E8M0FNU>) -> tensor<2x?x200xbf16> {
      %y = v4.linear %x, %w scale %s : tensor<2x?x320xbf16>, tensor<200x320xf8E4M3FN>,
          tensor<2x3xf8E8M0FNU> -> tensor<2x?x200xbf16>
      return %y : tensor<2x?x200xbf16>
    })"));
  const int64_t T = 4, M = 2 * T, K = 320, N = 200, BLK = 128;
  auto x = randomBf16(M * K, 71, 4.0f);
  // A block with tiny values (amax floor 1e-4) and a wide dynamic range.
  for (int64_t c = 0; c < 128; ++c)
    x[K + c] = encodeBF16(decodeBF16(x[K + c]) * 1e-5f);
  x[3 * K + 200] = encodeBF16(900.0f);
  std::mt19937_64 rng(72);
  std::normal_distribution<float> dist(0, 0.05f);
  std::vector<float> wf(N * K);
  for (auto &v : wf)
    v = dist(rng);
  for (int64_t n = 0; n < N; ++n) // rows of very different magnitude
    for (int64_t c = 0; c < K; ++c)
      wf[n * K + c] *= (n >= 128 ? 20.0f : 1.0f);
  std::vector<uint8_t> w(N * K), s(2 * 3);
  q::quantizeFP8(wf.data(), N, K, BLK, BLK, w.data(), s.data());
  std::vector<uint16_t> y(M * N);
  auto dx = describe<3>(x.data(), {2, T, K});
  auto dw = describe<2>(w.data(), {N, K});
  auto ds = describe<2>(s.data(), {2, 3});
  auto dy = describe<3>(y.data(), {2, T, N});
  k.run({&dx, &dw, &ds, &dy});
  // Any launch grid (blocks of output features x token rows, in any
  // order) computes the same bits as one call.
  std::vector<uint16_t> yGrid(y.size());
  auto dyGrid = describe<3>(yGrid.data(), {2, T, N});
  k.runGrid({&dx, &dw, &ds, &dyGrid}, 3, 3);
  EXPECT_EQ(yGrid, y);
  // The finest grid, which the sm_90a target launches
  // (kFinestLaunchGridAttrName): 8 features x 1 token row per block.
  std::fill(yGrid.begin(), yGrid.end(), 0);
  k.runGrid({&dx, &dw, &ds, &dyGrid},
            (N + mlir::v4::cpu::kGemmFinestFeatures - 1) /
                mlir::v4::cpu::kGemmFinestFeatures,
            M);
  EXPECT_EQ(yGrid, y);
  Bf16Stats st;
  double eUnq = 0, nUnq = 0;
  std::vector<float> a(K), sa(3);
  for (int64_t r = 0; r < M; ++r) {
    quantizeAct(&x[r * K], K, BLK, a.data(), sa.data());
    for (int64_t n = 0; n < N; ++n) {
      float acc = 0;
      for (int64_t j = 0; j < 3; ++j) {
        float part = 0;
        for (int64_t c = j * BLK; c < std::min(K, (j + 1) * BLK); ++c)
          part += a[c] * q::decodeE4M3(w[n * K + c]);
        acc += part * (sa[j] * float(q::decodeE8M0(s[(n / BLK) * 3 + j])));
      }
      float got = decodeBF16(y[r * N + n]);
      st.add(got, q::roundBF16(acc));
      // Against the unquantised bf16 product (the quantisation error).
      double exact = 0;
      for (int64_t c = 0; c < K; ++c)
        exact += double(decodeBF16(x[r * K + c])) * wf[n * K + c];
      eUnq += (got - exact) * (got - exact);
      nUnq += exact * exact;
    }
  }
  st.print("linear fp8");
  std::printf("[linear fp8] normwise rel err vs unquantised x.W: %.3g\n",
              std::sqrt(eUnq / nUnq));
  EXPECT_GE(st.within2 * 50, st.total * 49); // >= 98% within 2 ulps
  EXPECT_LT(st.normwise(), 1e-2);
}

TEST(CPUKernels, LinearFp4WeightMatchesSpec) {
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%x: tensor<?x256xbf16>, %w: tensor<48x256xf4E2M1FN>,
                 %s: tensor<48x8xf8E8M0FNU>) -> tensor<?x48xbf16> {
      %y = v4.linear %x, %w scale %s : tensor<?x256xbf16>, tensor<48x256xf4E2M1FN>,
          tensor<48x8xf8E8M0FNU> -> tensor<?x48xbf16>
      return %y : tensor<?x48xbf16>
    })"));
  const int64_t M = 5, K = 256, N = 48, BLK = 128;
  auto x = randomBf16(M * K, 81, 3.0f);
  for (int64_t c = 128; c < 256; ++c) // a second activation block 2^-6 smaller
    x[2 * K + c] = encodeBF16(decodeBF16(x[2 * K + c]) * 0x1p-6f);
  std::mt19937_64 rng(82);
  std::normal_distribution<float> dist(0, 0.05f);
  std::vector<float> wf(N * K);
  for (int64_t i = 0; i < N * K; ++i)
    wf[i] = dist(rng) * ((i / 32) % 3 == 0 ? 8.0f : 1.0f);
  std::vector<uint8_t> w(N * K / 2), s(N * K / 32);
  q::quantizeFP4(wf.data(), N, K, 1, 32, w.data(), s.data());
  std::vector<uint16_t> y(M * N);
  auto dx = describe<2>(x.data(), {M, K});
  auto dw = describe<2>(w.data(), {N, K / 2});
  auto ds = describe<2>(s.data(), {N, K / 32});
  auto dy = describe<2>(y.data(), {M, N});
  k.run({&dx, &dw, &ds, &dy});
  // Any launch grid (blocks of output features x token rows, in any
  // order) computes the same bits as one call.
  std::vector<uint16_t> yGrid(y.size());
  auto dyGrid = describe<2>(yGrid.data(), {M, N});
  k.runGrid({&dx, &dw, &ds, &dyGrid}, 4, 2);
  EXPECT_EQ(yGrid, y);
  Bf16Stats st;
  std::vector<float> a(K), sa(2);
  for (int64_t r = 0; r < M; ++r) {
    quantizeAct(&x[r * K], K, BLK, a.data(), sa.data());
    for (int64_t n = 0; n < N; ++n) {
      float acc = 0;
      for (int64_t c = 0; c < K / 32; ++c) {
        float part = 0;
        for (int64_t e = 32 * c; e < 32 * c + 32; ++e) {
          uint8_t byte = w[n * K / 2 + e / 2];
          float wv = q::decodeE2M1(e % 2 ? byte >> 4 : byte & 0xF);
          part += a[e] * wv;
        }
        acc +=
            part * (sa[32 * c / BLK] * float(q::decodeE8M0(s[n * K / 32 + c])));
      }
      st.add(decodeBF16(y[r * N + n]), q::roundBF16(acc));
    }
  }
  st.print("linear fp4");
  EXPECT_GE(st.within2 * 50, st.total * 49);
  EXPECT_LT(st.normwise(), 1e-2);
}

//===----------------------------------------------------------------------===//
// v4.grouped_linear
//===----------------------------------------------------------------------===//

TEST(CPUKernels, GroupedLinearBf16MatchesSpec) {
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%x: tensor<2x?x4x64xbf16>, %w: tensor<96x64xbf16>) -> tensor<2x?x4x24xbf16> {
      %y = v4.grouped_linear %x, %w : tensor<2x?x4x64xbf16>, tensor<96x64xbf16>
          -> tensor<2x?x4x24xbf16>
      return %y : tensor<2x?x4x24xbf16>
    })"));
  const int64_t T = 3, R = 2 * T, G = 4, K = 64, N = 24;
  auto x = randomBf16(R * G * K, 91, 2.0f);
  auto w = randomBf16(G * N * K, 92, 0.3f);
  std::vector<uint16_t> y(R * G * N);
  auto dx = describe<4>(x.data(), {2, T, G, K});
  auto dw = describe<2>(w.data(), {G * N, K});
  auto dy = describe<4>(y.data(), {2, T, G, N});
  k.run({&dx, &dw, &dy});
  Bf16Stats st;
  for (int64_t r = 0; r < R; ++r)
    for (int64_t g = 0; g < G; ++g)
      for (int64_t n = 0; n < N; ++n) {
        float acc = 0;
        for (int64_t c = 0; c < K; ++c)
          acc += decodeBF16(x[(r * G + g) * K + c]) *
                 decodeBF16(w[(g * N + n) * K + c]);
        st.add(decodeBF16(y[(r * G + g) * N + n]), q::roundBF16(acc));
      }
  st.print("grouped_linear bf16");
  EXPECT_EQ(st.within2, st.total);
  EXPECT_GE(st.exact * 50, st.total * 49);
}

/// v4.grouped_linear with FP8 weights dequantised as convert.py does, R
/// token rows of G = 4 groups of K, N outputs a group, blocks of BLK, in the
/// reference sum order or the fast one (`cpu`: the module's v4.cpu level).
void checkGroupedFp8(int64_t R, bool fast, int64_t K = 64, int64_t BLK = 32,
                     const std::string &cpu = "", int64_t N = 24) {
  const int64_t G = 4;
  const int64_t SR = (G * N + BLK - 1) / BLK, SC = (K + BLK - 1) / BLK;
  auto t = [](const std::string &dims, const char *elt) {
    return "tensor<" + dims + "x" + elt + ">";
  };
  std::string tx = t("?x4x" + std::to_string(K), "bf16"),
              tw = t(std::to_string(G * N) + "x" + std::to_string(K),
                     "f8E4M3FN"),
              ts =
                  t(std::to_string(SR) + "x" + std::to_string(SC), "f8E8M0FNU"),
              ty = t("?x4x" + std::to_string(N), "bf16");
  std::string attrs = fast ? "v4.sum_order = \"fast\"" : "";
  if (!cpu.empty())
    attrs +=
        std::string(attrs.empty() ? "" : ", ") + "v4.cpu = \"" + cpu + "\"";
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(
      k.compile("module attributes {" + attrs + "} {\nfunc.func @f(%x: " + tx +
                ", %w: " + tw + ", %s: " + ts + ") -> " + ty +
                " {\n  %y = v4.grouped_linear %x, %w scale %s blockSize " +
                std::to_string(BLK) + " : " + tx + ", " + tw + ", " + ts +
                " -> " + ty + "\n  return %y : " + ty + "\n}\n}"));
  auto x = randomBf16(R * G * K, 93, 2.0f);
  std::mt19937_64 rng(94);
  std::normal_distribution<float> dist(0, 0.1f);
  std::vector<float> wf(G * N * K);
  for (int64_t i = 0; i < G * N * K; ++i)
    wf[i] = dist(rng) * (i % K < 32 ? 1.0f : 0.01f);
  std::vector<uint8_t> w(G * N * K), s(SR * SC);
  q::quantizeFP8(wf.data(), G * N, K, BLK, BLK, w.data(), s.data());
  std::vector<uint16_t> y(R * G * N);
  auto dx = describe<3>(x.data(), {R, G, K});
  auto dw = describe<2>(w.data(), {G * N, K});
  auto ds = describe<2>(s.data(), {SR, SC});
  auto dy = describe<3>(y.data(), {R, G, N});
  k.run({&dx, &dw, &ds, &dy});
  // Any launch grid (blocks of output features x token rows, in any
  // order) computes the same bits as one call.
  std::vector<uint16_t> yGrid(y.size());
  auto dyGrid = describe<3>(yGrid.data(), {R, G, N});
  k.runGrid({&dx, &dw, &ds, &dyGrid}, 5, 2);
  EXPECT_EQ(yGrid, y);
  Bf16Stats st;
  for (int64_t r = 0; r < R; ++r)
    for (int64_t g = 0; g < G; ++g)
      for (int64_t n = 0; n < N; ++n) {
        int64_t m = g * N + n;
        float acc = 0;
        for (int64_t c = 0; c < K; ++c) {
          float wv =
              q::roundBF16(q::decodeE4M3(w[m * K + c]) *
                           float(q::decodeE8M0(s[(m / BLK) * SC + c / BLK])));
          acc += decodeBF16(x[(r * G + g) * K + c]) * wv;
        }
        st.add(decodeBF16(y[(r * G + g) * N + n]), q::roundBF16(acc));
      }
  st.print(fast ? "grouped_linear fp8, fast sums" : "grouped_linear fp8");
  EXPECT_EQ(st.within2, st.total);
  // The reference order rounds like the reference; the fast one's bf16
  // results may sit one ulp away where the fp32 sums differ.
  if (!fast) {
    EXPECT_GE(st.exact * 50, st.total * 49);
  }
}

TEST(CPUKernels, GroupedLinearFp8DequantisedMatchesSpec) {
  ASSERT_NO_FATAL_FAILURE(checkGroupedFp8(3, /*fast=*/false));
}

TEST(CPUKernels, GroupedLinearFp8DequantisedFastSums) {
  // One row (decode) with v4.sum_order = "fast": the dequantised weights as
  // FP8 blocks (gemmRowFast), within 2 bf16 ulps of the spec.
  ASSERT_NO_FATAL_FAILURE(checkGroupedFp8(1, /*fast=*/true));
}

TEST(CPUKernels, GroupedLinearFp8DequantisedInPairDotTiles) {
  // 64 rows of 4 groups of 512 inputs and 256 outputs (two 32-row tiles in
  // one call; the grid check's blocks of 32 rows too) with fast sums on an
  // x86-64-v4-bf16 module: the tiles multiply bf16 pairs by vdpbf16ps,
  // each weight block's codes decoded straight to pairs (whole runs of 64)
  // or through the dequantised values divided by the block's scale (blocks
  // of 32), each block's sum then times its scale. Within 2 bf16 ulps of
  // the spec, as the other fast orders.
  if (!::v4::hostSupportsISA("x86-64-v4-bf16"))
    GTEST_SKIP() << "this CPU does not run x86-64-v4-bf16 code";
  for (int64_t blk : {32, 128}) {
    SCOPED_TRACE("blockSize " + std::to_string(blk));
    ASSERT_NO_FATAL_FAILURE(
        checkGroupedFp8(64, /*fast=*/true, 512, blk, "x86-64-v4-bf16", 256));
  }
  // Where the order shows (expectPairOrderShows; one group, f32 results,
  // 32 rows; weight codes 0x38, 0, 0x38, 0x01 at scale 1).
  auto orderShows = [](const std::string &attrs) {
    CompiledKernel k;
    k.compile("module attributes {" + attrs + R"(} {
      func.func @f(%x: tensor<?x1x128xbf16>, %w: tensor<16x128xf8E4M3FN>,
                   %s: tensor<1x1xf8E8M0FNU>) -> tensor<?x1x16xf32> {
        %y = v4.grouped_linear %x, %w scale %s : tensor<?x1x128xbf16>,
            tensor<16x128xf8E4M3FN>, tensor<1x1xf8E8M0FNU> -> tensor<?x1x16xf32>
        return %y : tensor<?x1x16xf32>
      }})");
    const int64_t R = 32, K = 128, N = 16;
    auto x = pairOrderActivations(R, K);
    std::vector<uint8_t> w(N * K, 0), s{127};
    for (int64_t n = 0; n < N; ++n) {
      w[n * K + 0] = w[n * K + 2] = 0x38;
      w[n * K + 3] = 0x01;
    }
    std::vector<float> y(R * N, -1.0f);
    auto dx = describe<3>(x.data(), {R, 1, K});
    auto dw = describe<2>(w.data(), {N, K});
    auto ds = describe<2>(s.data(), {1, 1});
    auto dy = describe<3>(y.data(), {R, 1, N});
    k.run({&dx, &dw, &ds, &dy});
    return y;
  };
  ASSERT_NO_FATAL_FAILURE(expectPairOrderShows(orderShows));
}

//===----------------------------------------------------------------------===//
// v4.fake_quant (bit-exact, V4-SPEC 2.3)
//===----------------------------------------------------------------------===//

/// V4-SPEC 2.3 on one block, through runtime/numerics.
void fakeQuantBlock(const uint16_t *x, int64_t n, bool fp4, uint16_t *y) {
  float amax = 0;
  for (int64_t i = 0; i < n; ++i)
    amax = std::max(amax, std::fabs(decodeBF16(x[i])));
  int e = fp4 ? q::fp4ActScaleExponent(amax) : q::fp8ActScaleExponent(amax);
  float s = std::ldexp(1.0f, e);
  for (int64_t i = 0; i < n; ++i) {
    float v = decodeBF16(x[i]) / s;
    y[i] = encodeBF16((fp4 ? q::roundE2M1(v) : q::roundE4M3(v)) * s);
  }
}

TEST(CPUKernels, FakeQuantFp8BlockExtentBitExact) {
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%x: tensor<2x?x512xbf16>) -> tensor<2x?x512xbf16> {
      %y = v4.fake_quant %x fp8_e4m3 blockSize 64 extent 448 : tensor<2x?x512xbf16>
      return %y : tensor<2x?x512xbf16>
    })"));
  const int64_t T = 3, R = 2 * T, N = 512, BLK = 64;
  auto x = randomBf16(R * N, 101, 3.0f);
  // Row 0: rounding midpoints with s = 1 (amax 300 in the block): 1.0625
  // (between 1 and 1.125 -> 1), 1.1875 (-> 1.25), 304 (between 288 and 320
  // -> 320), subnormal midpoints 2^-10 (-> 0), 3 * 2^-10 (-> 2^-8), and
  // values just off a midpoint.
  const float mids[] = {
      300.0f,    1.0625f,     -1.1875f,   304.0f,           0x1p-10f,
      -0x3p-10f, 0x1.02p-10f, 1.0703125f, -5.0f * 0x1p-10f, 17.0f,
      -18.0f,    0.0f,        -0.0f,      9.0f * 0x1p-10f};
  for (size_t i = 0; i < std::size(mids); ++i)
    x[i] = bits(mids[i]);
  // Row 0 block 1: amax a power-of-two multiple of 448 (scale boundary).
  x[64] = bits(448.0f);
  x[65] = bits(-0.5f * 448.0f / 15.0f);
  x[128] = bits(-896.0f);
  // Row 0 block 3: all zero (amax floor 1e-4); block 4: tiny values.
  for (int64_t i = 192; i < 256; ++i)
    x[i] = 0;
  for (int64_t i = 256; i < 320; ++i)
    x[i] = encodeBF16(decodeBF16(x[i]) * 1e-6f);
  std::vector<uint16_t> y(x.size()), want(x.size());
  auto dx = describe<3>(x.data(), {2, T, N});
  auto dy = describe<3>(y.data(), {2, T, N});
  k.run({&dx, &dy});
  for (int64_t r = 0; r < R; ++r) {
    for (int64_t j = 0; j < 448 / BLK; ++j)
      fakeQuantBlock(&x[r * N + j * BLK], BLK, false, &want[r * N + j * BLK]);
    for (int64_t c = 448; c < N; ++c)
      want[r * N + c] = x[r * N + c];
  }
  EXPECT_EQ(decodeBF16(want[1]), 1.0f);
  EXPECT_EQ(decodeBF16(want[2]), -1.25f);
  EXPECT_EQ(decodeBF16(want[3]), 320.0f);
  EXPECT_EQ(decodeBF16(want[4]), 0.0f);
  EXPECT_EQ(decodeBF16(want[5]), -0x1p-8f);
  for (size_t i = 0; i < x.size(); ++i)
    EXPECT_EQ(y[i], want[i])
        << "at " << i << ": x " << decodeBF16(x[i]) << " got "
        << decodeBF16(y[i]) << " want " << decodeBF16(want[i]);
}

TEST(CPUKernels, FakeQuantFp4Block32BitExact) {
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%x: tensor<2x?x4x128xbf16>) -> tensor<2x?x4x128xbf16> {
      %y = v4.fake_quant %x fp4_e2m1 blockSize 32 : tensor<2x?x4x128xbf16>
      return %y : tensor<2x?x4x128xbf16>
    })"));
  const int64_t T = 2, R = 2 * T * 4, N = 128, BLK = 32;
  auto x = randomBf16(R * N, 111, 2.0f);
  // Block 0 with s = 1 (amax 6): every e2m1 midpoint and its neighbours.
  const float mids[] = {6.0f,     0.25f, 0.75f, 1.25f,      -1.75f,
                        2.5f,     3.5f,  -5.0f, 0.2578125f, 0.7421875f,
                        4.96875f, -0.0f, 5.5f,  -2.0f};
  for (size_t i = 0; i < std::size(mids); ++i)
    x[i] = bits(mids[i]);
  // Block 1 with amax exactly 6 * 2^-3, block 2 all zero (floor 6 * 2^-126),
  // block 3 of very small values.
  for (int64_t i = 32; i < 64; ++i)
    x[i] = encodeBF16(decodeBF16(x[i]) * 0.25f);
  x[40] = bits(-0.75f);
  for (int64_t i = 64; i < 96; ++i)
    x[i] = 0;
  for (int64_t i = 96; i < 128; ++i)
    x[i] = encodeBF16(decodeBF16(x[i]) * 1e-30f);
  std::vector<uint16_t> y(x.size()), want(x.size());
  auto dx = describe<4>(x.data(), {2, T, 4, N});
  auto dy = describe<4>(y.data(), {2, T, 4, N});
  k.run({&dx, &dy});
  for (int64_t r = 0; r < R; ++r)
    for (int64_t j = 0; j < N / BLK; ++j)
      fakeQuantBlock(&x[r * N + j * BLK], BLK, true, &want[r * N + j * BLK]);
  const float expected[] = {6,  0,    1,    1, -2,    2, 4,
                            -4, 0.5f, 0.5f, 4, -0.0f, 6, -2};
  for (size_t i = 0; i < std::size(expected); ++i)
    EXPECT_EQ(decodeBF16(want[i]), expected[i]) << i;
  for (size_t i = 0; i < x.size(); ++i)
    EXPECT_EQ(y[i], want[i])
        << "at " << i << ": x " << decodeBF16(x[i]) << " got "
        << decodeBF16(y[i]) << " want " << decodeBF16(want[i]);
}

//===----------------------------------------------------------------------===//
// v4.hadamard
//===----------------------------------------------------------------------===//

TEST(CPUKernels, HadamardMatchesSpec) {
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%x: tensor<2x?x4x128xbf16>) -> tensor<2x?x4x128xbf16> {
      %y = v4.hadamard %x : tensor<2x?x4x128xbf16>
      return %y : tensor<2x?x4x128xbf16>
    })"));
  const int64_t T = 3, R = 2 * T * 4, N = 128;
  auto x = randomBf16(R * N, 121, 2.0f);
  std::vector<uint16_t> y(x.size());
  auto dx = describe<4>(x.data(), {2, T, 4, N});
  auto dy = describe<4>(y.data(), {2, T, 4, N});
  k.run({&dx, &dy});
  Bf16Stats st;
  for (int64_t r = 0; r < R; ++r)
    for (int64_t j = 0; j < N; ++j) {
      // y_j = sum_i x_i (-1)^popcount(i & j) / sqrt(n), exact in double.
      double acc = 0;
      for (int64_t i = 0; i < N; ++i)
        acc += (__builtin_popcountll(i & j) % 2 ? -1.0 : 1.0) *
               decodeBF16(x[r * N + i]);
      st.add(decodeBF16(y[r * N + j]),
             q::roundBF16(float(acc / std::sqrt(128.0))));
    }
  st.print("hadamard");
  EXPECT_GE(st.within2 * 50, st.total * 49);
  EXPECT_LT(st.normwise(), 1e-2);
}

TEST(CPUKernels, HadamardOrder16IsExactAndSylvester) {
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%x: tensor<16x16xbf16>) -> tensor<16x16xbf16> {
      %y = v4.hadamard %x : tensor<16x16xbf16>
      return %y : tensor<16x16xbf16>
    })"));
  // Rows of the identity: row i of the result is H_16[i, :] / 4.
  std::vector<uint16_t> x(256, 0), y(256);
  for (int i = 0; i < 16; ++i)
    x[i * 16 + i] = bits(1.0f);
  auto dx = describe<2>(x.data(), {16, 16});
  auto dy = describe<2>(y.data(), {16, 16});
  k.run({&dx, &dy});
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j)
      EXPECT_EQ(decodeBF16(y[i * 16 + j]),
                __builtin_popcount(i & j) % 2 ? -0.25f : 0.25f)
          << i << " " << j;
}

} // namespace
