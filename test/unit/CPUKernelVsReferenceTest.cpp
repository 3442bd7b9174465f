//===- CPUKernelVsReferenceTest.cpp - every CPU kernel against v4::ref ----===//
//
// Op-level tests of the CPU kernels against the plain C++ reference oracle
// (reference/Ops.h), on the same random tie-free inputs at T1-like
// sizes (V4-SPEC 11.1). The reference works on float buffers that hold the
// dtype's values; the kernels on bf16 / FP8 codes and packed FP4: the
// adapters below convert with runtime/numerics.
//
// Both sides accumulate in fp32 in ascending index order with the same
// rounding points, so every comparison is bit-exact unless its test says
// otherwise (then the V4-SPEC 2.6 tolerance and the measured figure).
//
//===----------------------------------------------------------------------===//
#include "test/lib/CPUKernelHarness.h"

#include "reference/Ops.h"
#include "runtime/base/HostISA.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <numeric>
#include <utility>

using namespace v4test;
namespace q = ::v4::quant;
namespace ref = ::v4::ref;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
using Vec = std::vector<float>;

Vec dec(const std::vector<uint16_t> &v) {
  Vec out(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    out[i] = decodeBF16(v[i]);
  return out;
}

Vec normal(size_t n, uint64_t seed, float sd, float mean = 0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(mean, sd);
  Vec v(n);
  for (auto &x : v)
    x = dist(rng);
  return v;
}

/// Kernel vs reference over a whole tensor: exact count, V4-SPEC 2.6
/// elementwise bf16 rule (2 ulps = relative 2^-7) and normwise error.
struct Cmp {
  std::string what;
  int64_t total = 0, exact = 0, within2 = 0;
  double errSq = 0, refSq = 0;
  explicit Cmp(std::string w) : what(std::move(w)) {}
  void add(float got, float want) {
    ++total;
    bool same = got == want || (std::isnan(got) && std::isnan(want));
    exact += same;
    within2 += same || std::fabs(got - want) <= std::ldexp(std::fabs(want), -7);
    if (!same && std::isfinite(want)) {
      errSq += double(got - want) * double(got - want);
    }
    if (std::isfinite(want))
      refSq += double(want) * double(want);
  }
  void addAll(const float *got, const float *want, size_t n) {
    for (size_t i = 0; i < n; ++i)
      add(got[i], want[i]);
  }
  void addBf16(const std::vector<uint16_t> &got, const Vec &want) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
      add(decodeBF16(got[i]), want[i]);
  }
  double normwise() const {
    return refSq ? std::sqrt(errSq / refSq) : std::sqrt(errSq);
  }
  ~Cmp() {
    std::printf("[%s vs ref] %lld values: %lld exact, %lld within 2 bf16 ulps,"
                " normwise rel err %.3g\n",
                what.c_str(), (long long)total, (long long)exact,
                (long long)within2, normwise());
  }
  void expectExact() const {
    EXPECT_GT(total, 0);
    EXPECT_EQ(exact, total) << what << ": not bit-exact against the reference";
  }
};

/// A reference weight and its kernel storage.
struct QW {
  ref::Weight w;
  std::vector<uint8_t> bytes;  // FP8 codes / packed FP4 / bf16 bits
  std::vector<uint8_t> scales; // e8m0
};

/// fmt: "fp8" (128x128 blocks), "fp4" (1x32), "bf16".
QW makeWeight(const std::string &fmt, int64_t rows, int64_t cols, uint64_t seed,
              float sd = 0) {
  QW r;
  auto v = normal(rows * cols, seed, sd ? sd : 1.0f / std::sqrt(float(cols)));
  r.w.rows = rows;
  r.w.cols = cols;
  r.w.q.resize(rows * cols);
  if (fmt == "fp8") {
    r.w.kind = ref::Weight::FP8;
    r.w.br = r.w.bc = 128;
    r.bytes.resize(rows * cols);
    r.scales.resize(((rows + 127) / 128) * ((cols + 127) / 128));
    q::quantizeFP8(v.data(), rows, cols, 128, 128, r.bytes.data(),
                   r.scales.data());
    for (int64_t i = 0; i < rows * cols; ++i)
      r.w.q[i] = q::decodeE4M3(r.bytes[i]);
  } else if (fmt == "fp4") {
    r.w.kind = ref::Weight::FP4;
    r.w.br = 1;
    r.w.bc = 32;
    r.bytes.resize(rows * cols / 2);
    r.scales.resize(rows * cols / 32);
    q::quantizeFP4(v.data(), rows, cols, 1, 32, r.bytes.data(),
                   r.scales.data());
    for (int64_t i = 0; i < rows * cols; ++i) {
      uint8_t byte = r.bytes[i / 2];
      r.w.q[i] = q::decodeE2M1(i % 2 ? byte >> 4 : byte & 15);
    }
  } else {
    r.w.kind = ref::Weight::BF16;
    r.bytes.resize(rows * cols * 2);
    for (int64_t i = 0; i < rows * cols; ++i) {
      uint16_t bits = encodeBF16(v[i]);
      std::memcpy(&r.bytes[2 * i], &bits, 2);
      r.w.q[i] = decodeBF16(bits);
    }
  }
  for (uint8_t s : r.scales)
    r.w.scale.push_back(float(q::decodeE8M0(s)));
  return r;
}

std::string tensor(std::vector<int64_t> shape, const std::string &e) {
  std::string s = "tensor<";
  for (int64_t v : shape)
    s += (v < 0 ? std::string("?") : std::to_string(v)) + "x";
  return s + e + ">";
}

//===----------------------------------------------------------------------===//
// Core
//===----------------------------------------------------------------------===//

TEST(CPUKernelVsReference, Embedding) {
  // A gather: exact (T1 vocab 97, dim 64).
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%t: tensor<97x64xbf16>, %ids: tensor<2x?xi64>) -> tensor<2x?x64xbf16> {
      %e = v4.embedding %t[%ids] : tensor<97x64xbf16>, tensor<2x?xi64> -> tensor<2x?x64xbf16>
      return %e : tensor<2x?x64xbf16>
    })"));
  const int64_t V = 97, D = 64, B = 2, T = 21;
  auto table = randomBf16(V * D, 1);
  std::vector<int64_t> ids(B * T);
  std::mt19937 rng(2);
  for (auto &i : ids)
    i = int64_t(rng() % V);
  std::vector<uint16_t> y(B * T * D);
  auto dt = describe<2>(table.data(), {V, D});
  auto di = describe<2>(ids.data(), {B, T});
  auto dy = describe<3>(y.data(), {B, T, D});
  k.run({&dt, &di, &dy});
  auto tf = dec(table);
  Vec want(B * T * D);
  for (int64_t r = 0; r < B * T; ++r)
    std::copy(tf.begin() + ids[r] * D, tf.begin() + (ids[r] + 1) * D,
              want.begin() + r * D);
  Cmp c("embedding");
  c.addBf16(y, want);
  c.expectExact();
}

TEST(CPUKernelVsReference, RmsNormWeighted) {
  // ref::rmsNorm: fp32 mean of squares, bf16 out. Exact.
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%x: tensor<2x?x64xbf16>, %w: tensor<64xbf16>) -> tensor<2x?x64xbf16> {
      %y = v4.rms_norm %x, %w eps 1.0e-6 : tensor<2x?x64xbf16>, tensor<64xbf16>
      return %y : tensor<2x?x64xbf16>
    })"));
  const int64_t B = 2, T = 21, K = 64;
  auto x = randomBf16(B * T * K, 11, 3.0f);
  std::vector<uint16_t> w(K);
  auto wn = normal(K, 12, 0.1f, 1.0f);
  for (int64_t i = 0; i < K; ++i)
    w[i] = encodeBF16(wn[i]);
  std::vector<uint16_t> y(x.size());
  auto dx = describe<3>(x.data(), {B, T, K});
  auto dw = describe<1>(w.data(), {K});
  auto dy = describe<3>(y.data(), {B, T, K});
  k.run({&dx, &dw, &dy});
  auto xf = dec(x), wf = dec(w);
  Vec want(x.size());
  ref::rmsNormRows(xf.data(), wf.data(), B * T, K, 1e-6f, want.data());
  Cmp c("rms_norm weighted");
  c.addBf16(y, want);
  c.expectExact();
}

TEST(CPUKernelVsReference, RmsNormInputPrecisionPerHead) {
  // ref::headRmsNormBF16 (V4-SPEC 5.1 q norm, every step bf16). Exact.
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%x: tensor<2x?x4x72xbf16>) -> tensor<2x?x4x72xbf16> {
      %y = v4.rms_norm %x eps 1.0e-6 precision input : tensor<2x?x4x72xbf16>
      return %y : tensor<2x?x4x72xbf16>
    })"));
  const int64_t B = 2, T = 21, H = 4, D = 72;
  auto x = randomBf16(B * T * H * D, 21, 2.0f);
  std::vector<uint16_t> y(x.size());
  auto dx = describe<4>(x.data(), {B, T, H, D});
  auto dy = describe<4>(y.data(), {B, T, H, D});
  k.run({&dx, &dy});
  Vec want = dec(x);
  for (int64_t r = 0; r < B * T * H; ++r)
    ref::headRmsNormBF16(want.data() + r * D, D, 1e-6f);
  Cmp c("rms_norm precision input");
  c.addBf16(y, want);
  c.expectExact();
}

TEST(CPUKernelVsReference, RmsNormReduceRank2) {
  // The joint mHC RMS over n*d (V4-SPEC 4.1): fp32 form against
  // x * ref::rmsScale, weighted bf16 form against ref::rmsNorm. Exact.
  {
    CompiledKernel k;
    ASSERT_NO_FATAL_FAILURE(k.compile(R"(
      func.func @f(%x: tensor<2x?x4x64xf32>) -> tensor<2x?x4x64xf32> {
        %y = v4.rms_norm %x eps 1.0e-6 reduceRank 2 : tensor<2x?x4x64xf32>
        return %y : tensor<2x?x4x64xf32>
      })"));
    const int64_t B = 2, T = 21, M = 4 * 64;
    Vec x = normal(B * T * M, 31, 2.0f), y(x.size()), want(x.size());
    auto dx = describe<4>(x.data(), {B, T, 4, 64});
    auto dy = describe<4>(y.data(), {B, T, 4, 64});
    k.run({&dx, &dy});
    for (int64_t r = 0; r < B * T; ++r) {
      float s = ref::rmsScale(x.data() + r * M, M, 1e-6f);
      for (int64_t i = 0; i < M; ++i)
        want[r * M + i] = x[r * M + i] * s;
    }
    Cmp c("rms_norm reduceRank 2 f32");
    c.addAll(y.data(), want.data(), y.size());
    c.expectExact();
  }
  {
    CompiledKernel k;
    ASSERT_NO_FATAL_FAILURE(k.compile(R"(
      func.func @f(%x: tensor<?x4x64xbf16>, %w: tensor<4x64xbf16>) -> tensor<?x4x64xbf16> {
        %y = v4.rms_norm %x, %w eps 1.0e-6 reduceRank 2 : tensor<?x4x64xbf16>, tensor<4x64xbf16>
        return %y : tensor<?x4x64xbf16>
      })"));
    const int64_t R = 21, M = 256;
    auto x = randomBf16(R * M, 32, 3.0f), w = randomBf16(M, 33, 2.0f);
    std::vector<uint16_t> y(x.size());
    auto dx = describe<3>(x.data(), {R, 4, 64});
    auto dw = describe<2>(w.data(), {4, 64});
    auto dy = describe<3>(y.data(), {R, 4, 64});
    k.run({&dx, &dw, &dy});
    auto xf = dec(x), wf = dec(w);
    Vec want(x.size());
    ref::rmsNormRows(xf.data(), wf.data(), R, M, 1e-6f, want.data());
    Cmp c("rms_norm reduceRank 2 weighted");
    c.addBf16(y, want);
    c.expectExact();
  }
}

/// Runs v4.rope (table attr from the same parameters) forward and inverse on
/// rows of n with the rope dims last; compares with ref::rope.
void checkRope(const char *what, int64_t n, int64_t rd, double base,
               double factor, int64_t osl, uint64_t seed) {
  char table[256];
  std::snprintf(table, sizeof table,
                "#v4.rope<ropeDim = %lld, base = %.1f, factor = %.1f, "
                "originalSeqLen = %lld, betaFast = 32.0, betaSlow = 1.0>",
                (long long)rd, base, factor, (long long)osl);
  auto src = [&](bool inverse) {
    std::string ty = "tensor<2x?x4x" + std::to_string(n) + "xbf16>";
    return "func.func @f(%x: " + ty + ", %p: tensor<2x?xi64>) -> " + ty +
           " {\n  %y = v4.rope %x, %p table(" + table + ")" +
           (inverse ? " inverse" : "") + " : " + ty +
           ", tensor<2x?xi64>\n  return %y : " + ty + "\n}";
  };
  CompiledKernel fwd, inv;
  ASSERT_NO_FATAL_FAILURE(fwd.compile(src(false)));
  ASSERT_NO_FATAL_FAILURE(inv.compile(src(true)));
  const int64_t B = 2, T = 21, H = 4;
  auto x = randomBf16(B * T * H * n, seed, 2.0f);
  std::vector<int64_t> pos(B * T);
  for (int64_t t = 0; t < T; ++t) {
    pos[t] = t;                // prefill 0..20
    pos[T + t] = 21 + 997 * t; // later and long-range positions
  }
  std::vector<uint16_t> y(x.size()), z(x.size());
  auto dx = describe<4>(x.data(), {B, T, H, n});
  auto dp = describe<2>(pos.data(), {B, T});
  auto dy = describe<4>(y.data(), {B, T, H, n});
  auto dz = describe<4>(z.data(), {B, T, H, n});
  fwd.run({&dx, &dp, &dy});
  inv.run({&dy, &dp, &dz});
  ref::RopeTable tab =
      ref::makeRopeTable(rd, base, factor > 1, factor, osl, 32.0, 1.0);
  Vec wy = dec(x), wz = dec(y);
  for (int64_t r = 0; r < B * T * H; ++r) {
    ref::rope(wy.data() + r * n + n - rd, tab, pos[r / H], false);
    ref::rope(wz.data() + r * n + n - rd, tab, pos[r / H], true);
  }
  Cmp cy(what);
  cy.addBf16(y, wy);
  cy.expectExact();
  std::string iw = std::string(what) + " inverse";
  Cmp cz(iw.c_str());
  cz.addBf16(z, wz);
  cz.expectExact();
}

TEST(CPUKernelVsReference, Rope) {
  // T1 rope: dims 8 of head_dim 32, theta 10000, YaRN factor 4 at original
  // length 16; plain table (factor 1). Exact.
  ASSERT_NO_FATAL_FAILURE(checkRope("rope", 32, 8, 10000.0, 1.0, 16, 41));
  ASSERT_NO_FATAL_FAILURE(checkRope("rope yarn", 32, 8, 10000.0, 4.0, 16, 42));
  ASSERT_NO_FATAL_FAILURE(
      checkRope("rope yarn 64/160000", 128, 64, 160000.0, 16.0, 65536, 43));
}

/// Runs v4.linear on x [M, K] (bf16) with weight `w`; returns bf16 codes or
/// fp32 values.
TEST(CPUKernelVsReference, LinearBf16AndF32) {
  const int64_t M = 42, K = 64, N = 96;
  {
    CompiledKernel k;
    ASSERT_NO_FATAL_FAILURE(k.compile(R"(
      func.func @f(%x: tensor<?x64xbf16>, %w: tensor<96x64xbf16>) -> tensor<?x96xbf16> {
        %y = v4.linear %x, %w : tensor<?x64xbf16>, tensor<96x64xbf16> -> tensor<?x96xbf16>
        return %y : tensor<?x96xbf16>
      })"));
    auto x = randomBf16(M * K, 51, 2.0f);
    QW w = makeWeight("bf16", N, K, 52);
    std::vector<uint16_t> y(M * N);
    auto dx = describe<2>(x.data(), {M, K});
    auto dw = describe<2>(w.bytes.data(), {N, K});
    auto dy = describe<2>(y.data(), {M, N});
    k.run({&dx, &dw, &dy});
    auto xf = dec(x);
    Vec want(M * N);
    for (int64_t r = 0; r < M; ++r)
      ref::linear(w.w, xf.data() + r * K, want.data() + r * N);
    Cmp c("linear bf16");
    c.addBf16(y, want);
    c.expectExact();
  }
  {
    CompiledKernel k;
    ASSERT_NO_FATAL_FAILURE(k.compile(R"(
      func.func @f(%x: tensor<?x64xf32>, %w: tensor<96x64xf32>) -> tensor<?x96xf32> {
        %y = v4.linear %x, %w : tensor<?x64xf32>, tensor<96x64xf32> -> tensor<?x96xf32>
        return %y : tensor<?x96xf32>
      })"));
    Vec x = normal(M * K, 53, 1.0f), y(M * N), want(M * N);
    ref::Weight w;
    w.kind = ref::Weight::F32;
    w.rows = N;
    w.cols = K;
    w.q = normal(N * K, 54, 0.125f);
    auto dx = describe<2>(x.data(), {M, K});
    auto dw = describe<2>(w.q.data(), {N, K});
    auto dy = describe<2>(y.data(), {M, N});
    k.run({&dx, &dw, &dy});
    for (int64_t r = 0; r < M; ++r)
      ref::linear(w, x.data() + r * K, want.data() + r * N);
    Cmp c("linear f32");
    c.addAll(y.data(), want.data(), y.size());
    c.expectExact();
  }
}

/// A v4.linear kernel of bf16 rows [M, K] by an N x K weight stored as
/// `fmt` (fp8: 128x128 blocks, fp4: 1x32, bf16), its output `outType`, in a
/// module with `moduleAttrs` (e.g. the sum order): compiled, with a weight.
struct LinearKernel {
  std::string fmt;
  int64_t K, N;
  QW w;
  std::vector<int64_t> scaleShape;
  CompiledKernel k;
  LinearKernel(std::string format, int64_t kDim, int64_t nDim)
      : fmt(std::move(format)), K(kDim), N(nDim) {}
  bool scaled() const { return fmt != "bf16"; }
  void build(const std::string &outType, const std::string &moduleAttrs,
             uint64_t seed) {
    w = makeWeight(fmt, N, K, seed);
    scaleShape = fmt == "fp4"
                     ? std::vector<int64_t>{N, K / 32}
                     : std::vector<int64_t>{(N + 127) / 128, (K + 127) / 128};
    std::string e = fmt == "fp4"   ? "f4E2M1FN"
                    : fmt == "fp8" ? "f8E4M3FN"
                                   : "bf16";
    std::string tx = tensor({-1, K}, "bf16"), tw = tensor({N, K}, e),
                ts = tensor(scaleShape, "f8E8M0FNU"),
                ty = tensor({-1, N}, outType);
    bool s = scaled();
    ASSERT_NO_FATAL_FAILURE(k.compile(
        "module attributes {" + moduleAttrs + "} {\nfunc.func @f(%x: " + tx +
        ", %w: " + tw + (s ? ", %s: " + ts : std::string()) + ") -> " + ty +
        " {\n  %y = v4.linear %x, %w" + (s ? " scale %s" : "") + " : " + tx +
        ", " + tw + (s ? ", " + ts : std::string()) + " -> " + ty +
        "\n  return %y : " + ty + "\n}\n}"));
  }
  /// y [M, N] (bf16 bits or f32) of x [M, K] (bf16 bits).
  template <typename Y>
  void run(std::vector<uint16_t> &x, int64_t M, std::vector<Y> &y) {
    auto dx = describe<2>(x.data(), {M, K});
    auto dw = describe<2>(w.bytes.data(), {N, fmt == "fp4" ? K / 2 : K});
    auto ds = describe<2>(w.scales.data(), {scaleShape[0], scaleShape[1]});
    auto dy = describe<2>(y.data(), {M, N});
    if (scaled())
      k.run({&dx, &dw, &ds, &dy});
    else
      k.run({&dx, &dw, &dy});
  }
};

/// Every output of y = lk(x) (M rows, f32) within 2 K u sum|w x| of the
/// reference's (activations quantised against scaled weights, fp32
/// output): the fast order's
/// bound (docs/PERFORMANCE.md 7).
void expectWithinFastBound(const LinearKernel &lk,
                           const std::vector<uint16_t> &x, int64_t M,
                           const Vec &y) {
  const int64_t K = lk.K, N = lk.N;
  auto xf = dec(x);
  for (int64_t r = 0; r < M; ++r) {
    Vec want(N);
    ref::linear(lk.w.w, xf.data() + r * K, want.data(),
                /*quantAct=*/lk.scaled(), 128, /*fp32Out=*/true);
    for (int64_t n = 0; n < N; ++n) {
      double mass = 0;
      for (int64_t i = 0; i < K; ++i)
        mass += std::fabs(double(lk.w.w.q[n * K + i]) * lk.w.w.scaleAt(n, i) *
                          xf[r * K + i]);
      ASSERT_LE(std::fabs(double(y[r * N + n]) - want[n]),
                2.0 * K * 0x1p-24 * 1.0625 * mass)
          << "row " << r << " feature " << n;
    }
  }
}

/// v4.linear of M bf16 rows by an N x K weight stored as `fmt` (fp8, fp4 or
/// bf16), against the reference row by row.
void checkLinear(const std::string &fmt, int64_t M, int64_t K, int64_t N,
                 uint64_t seed) {
  SCOPED_TRACE(fmt + " M=" + std::to_string(M) + " K=" + std::to_string(K) +
               " N=" + std::to_string(N));
  LinearKernel lk{fmt, K, N};
  ASSERT_NO_FATAL_FAILURE(lk.build("bf16", "", seed));
  const QW &w = lk.w;
  auto x = randomBf16(M * K, seed + 1, 3.0f);
  std::vector<uint16_t> y(M * N);
  lk.run(x, M, y);
  auto xf = dec(x);
  Vec want(M * N);
  for (int64_t r = 0; r < M; ++r)
    ref::linear(w.w, xf.data() + r * K, want.data() + r * N);
  Cmp c("linear " + fmt);
  c.addBf16(y, want);
  c.expectExact();
}

TEST(CPUKernelVsReference, LinearFp8) {
  // Activation quantised per 128 (ue8m0), block sums scaled by s_a s_w.
  // K = 320, N = 200: partial 128-blocks in both dims. Exact.
  ASSERT_NO_FATAL_FAILURE(checkLinear("fp8", 42, 320, 200, 61));
}

TEST(CPUKernelVsReference, LinearUnquantisedActivationsBlockScaled) {
  // v4.fake_quant "none": the activation as it is, at scale 1, against FP8
  // (3 blocks of 128, the last partial) and FP4 (32-slices) weights: per
  // slice the exact products, the partial sums scaled by s_w and added in
  // ascending order, as ref::linear without quantAct. A single chain of
  // x (w s_w) over K rounds differently once K spans two slices, which the
  // fp32 outputs show. One row (the GEMV), 5 rows and 37 rows (tiles).
  // Exact.
  for (const char *fmt : {"fp8", "fp4"})
    for (int64_t M : {1, 5, 37}) {
      const int64_t K = 352, N = 40;
      SCOPED_TRACE(std::string(fmt) + " M=" + std::to_string(M));
      LinearKernel lk{fmt, K, N};
      ASSERT_NO_FATAL_FAILURE(lk.build("f32", "v4.fake_quant = \"none\"", 71));
      auto x = randomBf16(M * K, 72, 3.0f);
      Vec y(M * N);
      lk.run(x, M, y);
      auto xf = dec(x);
      int64_t differ = 0;
      for (int64_t r = 0; r < M; ++r) {
        Vec want(N);
        ref::linear(lk.w.w, xf.data() + r * K, want.data(),
                    /*quantAct=*/false, 128, /*fp32Out=*/true);
        for (int64_t n = 0; n < N; ++n)
          differ += y[r * N + n] != want[n];
      }
      EXPECT_EQ(differ, 0) << "of " << M * N << " outputs";
    }
}

TEST(CPUKernelVsReference, LinearFp8ActivationBlocksWithNaNInfAndNegativeZero) {
  // The activation quantisation takes each 128-block's max |x| as the
  // unsigned maximum of the bits with the sign cleared (a NaN's lie above
  // +inf's). A block holding a NaN (rows 0) or an infinity (rows 1, 2)
  // makes every feature of its row NaN, so a non-finite activation reaches
  // the logits (RELIABILITY VAL-2; the reference instead saturates it to
  // 448 s_a). Blocks of only -0 and +0 (row 3: the scale from the floor), a
  // subnormal (row 4) and the largest bf16 (row 5) match the reference,
  // exactly in its sum order, and so do the other blocks of these rows.
  const int64_t M = 6, K = 384, N = 40;
  for (const char *attrs : {"", "v4.sum_order = \"fast\""}) {
    SCOPED_TRACE(attrs);
    LinearKernel lk{"fp8", K, N};
    ASSERT_NO_FATAL_FAILURE(lk.build("f32", attrs, 68));
    auto x = randomBf16(M * K, 69, 3.0f);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    x[0 * K + 5] = encodeBF16(nan);
    x[0 * K + 200] = encodeBF16(-nan);
    x[1 * K + 130] = encodeBF16(kInf);
    x[2 * K + 260] = encodeBF16(-kInf);
    for (int64_t e = 128; e < 256; ++e)
      x[3 * K + e] = encodeBF16(e % 2 ? -0.0f : 0.0f);
    x[4 * K + 3] = encodeBF16(0x1p-130f);
    x[5 * K + 300] = encodeBF16(0x1.FEp127f);
    Vec y(M * N);
    lk.run(x, M, y);
    auto xf = dec(x);
    for (int64_t r = 0; r < M; ++r) {
      Vec want(N);
      ref::linear(lk.w.w, xf.data() + r * K, want.data(), /*quantAct=*/true,
                  128, /*fp32Out=*/true);
      for (int64_t n = 0; n < N; ++n) {
        float got = y[r * N + n];
        if (r < 3)
          EXPECT_TRUE(std::isnan(got)) << "row " << r << " feature " << n;
        else if (attrs[0] == '\0')
          EXPECT_EQ(got, want[n]) << "row " << r << " feature " << n;
        else
          EXPECT_NEAR(got, want[n], 1e-3 * (1 + std::fabs(want[n])))
              << "row " << r << " feature " << n;
      }
    }
  }
}

TEST(CPUKernelVsReference, LinearFp4) {
  // FP4 weight (1x32 scales), FP8 activation per 128: 32-wide slices. Exact.
  ASSERT_NO_FATAL_FAILURE(checkLinear("fp4", 42, 256, 96, 71));
}

TEST(CPUKernelVsReference, LinearOneRow) {
  // One row (a decode step): features in lanes, weight rows transposed 8 x 8
  // in registers. K not a multiple of 8 leaves a tail of single elements;
  // N not a multiple of 32 leaves surplus lanes. Exact.
  for (int64_t K : {320, 300, 131})
    for (int64_t N : {200, 45})
      ASSERT_NO_FATAL_FAILURE(checkLinear("fp8", 1, K, N, 81 + K + N));
  ASSERT_NO_FATAL_FAILURE(checkLinear("fp4", 1, 256, 40, 83));
  for (int64_t K : {64, 61, 7, 300})
    ASSERT_NO_FATAL_FAILURE(checkLinear("bf16", 1, K, 37, 85 + K));
}

/// v4.linear of one row (a decode step) compiled with v4.sum_order =
/// "fast" (gemmRowFast), f32 out, against the reference's f32 sums: both
/// sum the same exact products (e4m3 x e4m3, e2m1 x e4m3, bf16 x bf16 in
/// fp32) in different orders, so each differs from the exact sum by at most
/// K u sum|w x| (u = 2^-24), and the two by twice that, with sum|w x|
/// bounded by the dequantised weights and |x| (FP8 quantisation moves |x| by
/// at most 2^-4). With bf16 weights some outputs must differ (the sums are
/// reassociated and round); FP8 / FP4 partial sums of these sizes are exact
/// in either order.
void checkLinearFast(const std::string &fmt, int64_t K, int64_t N,
                     uint64_t seed) {
  SCOPED_TRACE(fmt + " fast K=" + std::to_string(K) +
               " N=" + std::to_string(N));
  LinearKernel lk{fmt, K, N};
  ASSERT_NO_FATAL_FAILURE(lk.build("f32", "v4.sum_order = \"fast\"", seed));
  const QW &w = lk.w;
  bool scaled = lk.scaled();
  auto x = randomBf16(K, seed + 1, 3.0f);
  Vec y(N);
  lk.run(x, 1, y);
  auto xf = dec(x);
  Vec want(N);
  ref::linear(w.w, xf.data(), want.data(), /*quantAct=*/true, 128,
              /*fp32Out=*/true);
  int64_t differ = 0;
  double worst = 0;
  for (int64_t n = 0; n < N; ++n) {
    double mass = 0;
    for (int64_t i = 0; i < K; ++i)
      mass += std::fabs(double(w.w.q[n * K + i]) * w.w.scaleAt(n, i) * xf[i]);
    double bound = 2.0 * double(K) * 0x1p-24 * (scaled ? 1.0625 : 1.0) * mass;
    double err = std::fabs(double(y[n]) - double(want[n]));
    ASSERT_LE(err, bound) << "feature " << n << ": " << y[n] << " vs "
                          << want[n];
    worst = std::max(worst, bound > 0 ? err / bound : 0.0);
    differ += y[n] != want[n];
  }
  std::printf("[linear %s fast vs ref] K=%lld N=%lld: %lld of %lld differ, "
              "worst error %.3g of the bound\n",
              fmt.c_str(), (long long)K, (long long)N, (long long)differ,
              (long long)N, worst);
  if (!scaled) {
    EXPECT_GT(differ, 0) << "the fast order gave the reference's sums";
  }
}

TEST(CPUKernelVsReference, LinearOneRowFastSums) {
  // K not a multiple of 16 (300, 131) ends in a step read past K as zeros;
  // N not a multiple of 4 leaves surplus rows.
  for (int64_t K : {320, 300, 131})
    ASSERT_NO_FATAL_FAILURE(checkLinearFast("fp8", K, 203, 181 + K));
  // FP4 scales are decoded 16 slices at a time: 8 slices (one short step),
  // 17 (a whole step and one slice).
  for (int64_t K : {256, 544})
    ASSERT_NO_FATAL_FAILURE(checkLinearFast("fp4", K, 130, 183 + K));
  for (int64_t K : {640, 61, 300})
    ASSERT_NO_FATAL_FAILURE(checkLinearFast("bf16", K, 137, 185 + K));
}

TEST(CPUKernelVsReference, LinearFastSumsPropagateNaNCodes) {
  // The one-row fast GEMV decodes whole 64-code runs of FP8 weights without
  // a NaN test per code (e4m3HalfBitsFinite) and finds a row's NaN codes
  // (0x7F, 0xFF) once per run (e4m3NaNProbe); the 16-code steps past the
  // runs decode NaN codes as NaN. Either way a feature that reads a NaN
  // code is NaN, as its products are in the reference, and every other
  // feature is unchanged bit for bit. K 320: runs only; K 300: a run, then
  // 16-code steps and a partial step (codes 256..299).
  for (int64_t K : {320, 300}) {
    SCOPED_TRACE("K=" + std::to_string(K));
    const int64_t N = 37;
    LinearKernel lk{"fp8", K, N};
    ASSERT_NO_FATAL_FAILURE(
        lk.build("f32", "v4.sum_order = \"fast\"", 197 + K));
    auto x = randomBf16(K, 198 + K, 3.0f);
    Vec clean(N);
    lk.run(x, 1, clean);
    // (feature, element, code): in a run of the first block, in the last
    // block's codes, a negative NaN, and one in a 16-code step.
    const std::vector<std::array<int64_t, 3>> nans = {
        {3, 5, 0x7F}, {10, K - 20, 0x7F}, {20, 130, 0xFF}, {29, 262, 0xFF}};
    for (const auto &[n, e, code] : nans)
      lk.w.bytes[n * K + e] = static_cast<uint8_t>(code);
    Vec y(N);
    lk.run(x, 1, y);
    for (int64_t n = 0; n < N; ++n) {
      bool hit = false;
      for (const auto &c : nans)
        hit = hit || c[0] == n;
      if (hit)
        EXPECT_TRUE(std::isnan(y[n])) << "feature " << n << ": " << y[n];
      else
        EXPECT_EQ(std::memcmp(&y[n], &clean[n], sizeof(float)), 0)
            << "feature " << n << ": " << y[n] << " vs " << clean[n];
    }
  }
}

TEST(CPUKernelVsReference, LinearFewRowsFastSumsAreTheOneRowSums) {
  // With fast sums a tile of 2 to 4 rows of FP8 or bf16 weights (the MTP
  // projection's 4 lanes of a decode token, an expert's few rows) shares
  // each decoded weight vector among its rows (gemmRowsFastPass), and each
  // row's sums are those of the one-row GEMV bit for bit: every row of M =
  // 2, 3, 4 and the last 4 of M = 12 (an 8-row tile, then 4) against the
  // row run alone. bf16 weights tell the fast sums from the tile's
  // reference order (checkLinearFast); K 300 / 61 ends in a partial step;
  // N not a multiple of the 2 weight rows at a time leaves a surplus row.
  for (const char *fmt : {"fp8", "bf16"})
    for (int64_t K : {320, 300, 61}) {
      if (std::string(fmt) == "fp8" && K == 61)
        continue;
      const int64_t N = 203;
      LinearKernel lk{fmt, K, N};
      ASSERT_NO_FATAL_FAILURE(
          lk.build("f32", "v4.sum_order = \"fast\"", 191 + K));
      for (int64_t M : {2, 3, 4, 12}) {
        SCOPED_TRACE(std::string(fmt) + " K=" + std::to_string(K) +
                     " M=" + std::to_string(M));
        auto x = randomBf16(M * K, 192 + K + M, 3.0f);
        Vec y(M * N);
        lk.run(x, M, y);
        for (int64_t r = M > 4 ? M - 4 : 0; r < M; ++r) {
          std::vector<uint16_t> row(x.begin() + r * K, x.begin() + (r + 1) * K);
          Vec one(N);
          lk.run(row, 1, one);
          EXPECT_EQ(
              std::memcmp(y.data() + r * N, one.data(), N * sizeof(float)), 0)
              << "row " << r;
        }
      }
    }
}

TEST(CPUKernelVsReference, LinearFewRowsFP4FastSums) {
  // With fast sums a tile of 2 to 8 rows of FP4 weights (an expert's rows
  // in a prefill chunk) takes gemmRowsFastFP4Pass: activations dequantised,
  // each slice's 16 e2m1 values times s_w decoded once for all rows, then
  // FMA into 16 lane sums per row. (1) M = 2, 5, 8 and 11 (8, then 3) rows
  // against the reference within 2 K u sum|w x| (checkLinearFast's bound),
  // at x86-64-v3 (binary16 decoding) and v4 (vpermps and weight rows in
  // pairs, N = 37 leaving the last alone, when this CPU runs it). (2) Sums
  // where the order shows: x_0 w_0 = 1 in slice 0 and two products of 2^-24 in
  // slices 4 and 5 (activation block 1), both in lane 1 of the lane sums: the
  // reference adds each slice's partial in turn (1 + 2^-24 rounds to 1, twice),
  // the lanes add the two small ones first (1 + 2^-23).
  const int64_t K = 256, N = 37;
  std::vector<std::string> levels = {"x86-64-v3"};
  if (::v4::hostSupportsISA("x86-64-v4"))
    levels.push_back("x86-64-v4");
  for (const std::string &level : levels) {
    SCOPED_TRACE(level);
    LinearKernel lk{"fp4", K, N};
    ASSERT_NO_FATAL_FAILURE(lk.build(
        "f32", "v4.sum_order = \"fast\", v4.cpu = \"" + level + "\"", 241));
    for (int64_t M : {2, 5, 8, 11}) {
      SCOPED_TRACE("M=" + std::to_string(M));
      auto x = randomBf16(M * K, 242 + M, 3.0f);
      Vec y(M * N);
      lk.run(x, M, y);
      ASSERT_NO_FATAL_FAILURE(expectWithinFastBound(lk, x, M, y));
    }
    // (2): every weight 1.0 (e2m1 code 2) at scale 1 (e8m0 127); 3 rows.
    for (uint8_t &b : lk.w.bytes)
      b = 0x22;
    for (uint8_t &sc : lk.w.scales)
      sc = 127;
    const int64_t M = 3;
    std::vector<uint16_t> x(M * K, encodeBF16(0.0f));
    for (int64_t r = 0; r < M; ++r) {
      x[r * K + 0] = encodeBF16(1.0f);
      x[r * K + 130] = encodeBF16(0x1p-24f);
      x[r * K + 162] = encodeBF16(0x1p-24f);
    }
    Vec y(M * N);
    lk.run(x, M, y);
    for (int64_t i = 0; i < M * N; ++i)
      ASSERT_EQ(y[i], 1.0f + 0x1p-23f) << "output " << i;
    LinearKernel ref{"fp4", K, N};
    ASSERT_NO_FATAL_FAILURE(ref.build("f32", "", 241));
    ref.w = lk.w;
    Vec yr(M * N);
    ref.run(x, M, yr);
    for (int64_t i = 0; i < M * N; ++i)
      ASSERT_EQ(yr[i], 1.0f) << "reference-order output " << i;
  }
}

TEST(CPUKernelVsReference, LinearFP4PermutedDecodeIsBitIdentical) {
  // On an x86-64-v4 kernels module FP4 slices are decoded by two vpermps
  // into the e2m1 grid (worth the code itself, so no 2^14 to fold) instead
  // of through binary16: the same exact values, so the same results bit for
  // bit as the x86-64-v3 kernel, in the fast order's one-row GEMV
  // (gemmRowFast) and in the reference order's tiles (decodePart; 42 rows:
  // a 32-row tile and an 8-row one).
  if (!::v4::hostSupportsISA("x86-64-v4"))
    GTEST_SKIP() << "this CPU does not run x86-64-v4 (AVX-512) code";
  for (const char *order : {"fast", "reference"})
    for (int64_t K : {256, 544, 96}) {
      SCOPED_TRACE(std::string(order) + " K=" + std::to_string(K));
      const int64_t M = std::string(order) == "fast" ? 1 : 42, N = 130;
      std::string attrs =
          std::string("v4.sum_order = \"") + order + "\", v4.cpu = ";
      LinearKernel v3{"fp4", K, N}, v4{"fp4", K, N};
      ASSERT_NO_FATAL_FAILURE(
          v3.build("f32", attrs + "\"x86-64-v3\"", 187 + K));
      ASSERT_NO_FATAL_FAILURE(
          v4.build("f32", attrs + "\"x86-64-v4\"", 187 + K));
      auto x = randomBf16(M * K, 188 + K, 3.0f);
      Vec a(M * N), b(M * N);
      v3.run(x, M, a);
      v4.run(x, M, b);
      EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
    }
}

TEST(CPUKernelVsReference, LinearX86V4TilesAreBitIdentical) {
  // On an x86-64-v4 module the 32-row tiles put 16 token rows in a vector
  // (TileGemm::tileLanes) instead of 8: each row's numbers are the same, so
  // the v4 kernel gives the v3 kernel's results bit for bit, in the
  // reference order (exact against the reference: LinearFp8 and friends)
  // and in the fast one. M = 42 (a 32-row tile, then 8 and 2 rows), 70 (two
  // tiles, then 6); FP8 and bf16 weights (FP4:
  // LinearFP4PermutedDecodeIsBitIdentical).
  if (!::v4::hostSupportsISA("x86-64-v4"))
    GTEST_SKIP() << "this CPU does not run x86-64-v4 (AVX-512) code";
  for (const char *order : {"reference", "fast"})
    for (const char *fmt : {"fp8", "bf16"}) {
      const int64_t K = 320, N = 75;
      std::string attrs =
          std::string("v4.sum_order = \"") + order + "\", v4.cpu = ";
      LinearKernel v3{fmt, K, N}, v4{fmt, K, N};
      ASSERT_NO_FATAL_FAILURE(v3.build("f32", attrs + "\"x86-64-v3\"", 251));
      ASSERT_NO_FATAL_FAILURE(v4.build("f32", attrs + "\"x86-64-v4\"", 251));
      for (int64_t M : {42, 70}) {
        SCOPED_TRACE(std::string(order) + " " + fmt +
                     " M=" + std::to_string(M));
        auto x = randomBf16(M * K, 252 + M, 3.0f);
        Vec a(M * N), b(M * N);
        v3.run(x, M, a);
        v4.run(x, M, b);
        EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
      }
    }
}

TEST(CPUKernelVsReference, LinearBF16PairDotsInFastTiles) {
  // On an x86-64-v4-bf16 module the fast order's 32-row tiles of FP8 or FP4
  // weights multiply pairs of elements by vdpbf16ps (TileGemm::dotBF16):
  // the same exact products, each pair added to the lane sum odd element
  // first, then even (each rounded), as the ISA defines it. (1) M = 42 and
  // 70 rows (32-row tiles, then 8-row and few-row passes), K = 320 (FP8:
  // a last part of 64), 321 (a last part of 65: its last pair ends in a
  // zero) and 544 (FP4), and bf16 activations against bf16 weights
  // (TileGemm::bf16Operands: the compressors' projections; a weight row's
  // runs of 32 elements are its stored bits as 16 pairs, copyWeightPairs)
  // at K = 320 and 333 (a tail of 13 through decodePart), odd N,
  // against the reference within checkLinearFast's 2 K u sum|w x|. (2) A
  // block where the order shows (expectPairOrderShows): activations 16, 0,
  // -16, 2^-13 (FP8: codes 256, 0, -256, 2^-9 at s_a = 2^-4) against
  // weights 1, 0, 1, 2^-9, FP8 or bf16: in order 256 + 0 - 256 + 2^-18 is
  // 2^-18 (times s_a: 2^-22), in pairs (256 + 0) then 256 + 2^-18 (rounds
  // to 256) - 256 is 0; the x86-64-v4 kernel and the reference give 2^-22.
  // (3) The FP4 few-row pass
  // (gemmRowsFastFP4Pass) adds pairs by vdpbf16ps too: a lane where the
  // order shows. (4) So does an FP4 tile, along all of K.
  if (!::v4::hostSupportsISA("x86-64-v4-bf16"))
    GTEST_SKIP() << "this CPU does not run x86-64-v4-bf16 (AVX512_BF16, "
                    "AVX512_VBMI) code";
  const std::string fast = "v4.sum_order = \"fast\", v4.cpu = ";
  for (auto [fmt, K] : {std::pair<const char *, int64_t>{"fp8", 320},
                        {"fp8", 321},
                        {"fp4", 544},
                        {"bf16", 320},
                        {"bf16", 333}}) {
    const int64_t N = 75;
    LinearKernel lk{fmt, K, N};
    ASSERT_NO_FATAL_FAILURE(lk.build("f32", fast + "\"x86-64-v4-bf16\"", 261));
    for (int64_t M : {42, 70}) {
      SCOPED_TRACE(std::string(fmt) + " K=" + std::to_string(K) +
                   " M=" + std::to_string(M));
      auto x = randomBf16(M * K, 262 + M, 3.0f);
      Vec y(M * N);
      lk.run(x, M, y);
      ASSERT_NO_FATAL_FAILURE(expectWithinFastBound(lk, x, M, y));
    }
  }
  // (2)
  const int64_t K = 128, N = 5, M = 32;
  for (const char *fmt : {"fp8", "bf16"}) {
    SCOPED_TRACE(std::string("order, ") + fmt);
    auto orderShows = [&](const std::string &attrs) {
      LinearKernel lk{fmt, K, N};
      lk.build("f32", attrs, 263);
      for (uint8_t &b : lk.w.bytes)
        b = 0;
      for (uint8_t &sc : lk.w.scales)
        sc = 127;
      // Weights 1, 0, 1, 2^-9: FP8 codes, or bf16 bits.
      auto set = [&](int64_t i, uint8_t code, float v) {
        if (lk.scaled()) {
          lk.w.bytes[i] = code;
          return;
        }
        uint16_t bits = encodeBF16(v);
        std::memcpy(&lk.w.bytes[2 * i], &bits, 2);
      };
      for (int64_t n = 0; n < N; ++n) {
        set(n * K + 0, 0x38, 1.0f);
        set(n * K + 2, 0x38, 1.0f);
        set(n * K + 3, 0x01, 0x1p-9f);
      }
      auto x = pairOrderActivations(M, K);
      Vec y(M * N);
      lk.run(x, M, y);
      return y;
    };
    ASSERT_NO_FATAL_FAILURE(expectPairOrderShows(orderShows));
  }
  // (3) FP4 in the few-row pass (3 rows; rowsFP4: M rows whose lane 0
  // holds 2^24 after slice 0, 16 x 4 at s_w 2^18; slice 1 adds 3, element
  // 32, and x33, element 33) with x33 = -1. Even first (FMA lanes): 2^24 +
  // 3 rounds to 2^24 + 4, minus 1 rounds back to 2^24 + 4; odd first (pair
  // dots): 2^24 - 1, then 2^24 + 2.
  auto rowsFP4 = [&](const std::string &attrs, int64_t M, float x33) {
    const int64_t K = 64, N = 5;
    LinearKernel lk{"fp4", K, N};
    lk.build("f32", attrs, 264);
    for (uint8_t &b : lk.w.bytes)
      b = 0;
    for (int64_t n = 0; n < N; ++n) {
      lk.w.bytes[n * K / 2 + 0] = 0x06;  // element 0: 4.0
      lk.w.bytes[n * K / 2 + 16] = 0x22; // elements 32, 33: 1.0
      lk.w.scales[n * 2 + 0] = 127 + 18;
      lk.w.scales[n * 2 + 1] = 127;
    }
    std::vector<uint16_t> x(M * K, encodeBF16(0.0f));
    for (int64_t r = 0; r < M; ++r) {
      x[r * K + 0] = encodeBF16(16.0f);
      x[r * K + 32] = encodeBF16(3.0f);
      x[r * K + 33] = encodeBF16(x33);
    }
    Vec y(M * N);
    lk.run(x, M, y);
    return y;
  };
  for (float v : rowsFP4(fast + "\"x86-64-v4-bf16\"", 3, -1.0f))
    ASSERT_EQ(v, 0x1p24f + 2.0f) << "FP4 few rows, pair dots";
  for (float v : rowsFP4(fast + "\"x86-64-v4\"", 3, -1.0f))
    ASSERT_EQ(v, 0x1p24f + 4.0f) << "FP4 few rows, FMA lanes";
  // (4) A 32-row FP4 tile with pair dots sums its exact products along all
  // of K (usesWholeFP4Tile), not per slice: with 3 and 3, per slice (the
  // reference; x86-64-v4's tiles) 2^24 + 6, along K 2^24 + 3 rounds to
  // 2^24 + 4 (ties to even), + 3 to 2^24 + 8.
  for (float v : rowsFP4(fast + "\"x86-64-v4-bf16\"", 32, 3.0f))
    ASSERT_EQ(v, 0x1p24f + 8.0f) << "FP4 tile, pair dots along K";
  for (float v : rowsFP4(fast + "\"x86-64-v4\"", 32, 3.0f))
    ASSERT_EQ(v, 0x1p24f + 6.0f) << "FP4 tile, x86-64-v4";
  for (float v : rowsFP4("v4.cpu = \"x86-64-v4-bf16\"", 32, 3.0f))
    ASSERT_EQ(v, 0x1p24f + 6.0f) << "FP4 tile, reference order";
}

TEST(CPUKernelVsReference, LinearBF16PairDotsInTheFastRow) {
  // On an x86-64-v4-bf16 module the fast order's one-row pass (decode's
  // GEMV, gemmRowFast) decodes FP8 runs of 64 codes (two vpermi2b into the
  // bf16 values' bytes) and FP4 slices (two at a time, a vpermw per nibble
  // half; an odd last slice alone) straight to bf16 and adds pairs of exact
  // products by vdpbf16ps. (1) One row against the
  // reference within checkLinearFast's bound: FP8 K = 320 (parts 128, 128,
  // 64: whole runs), 352 (a last part of 96: a run, then two 16-lane steps
  // through binary16 into the same sums), 321 (a last part of 65) and 1024;
  // FP4 K = 544; N = 75 (the last row group clamped); and M = 3, 4 (the
  // few-row passes: FP8's gemmRowsFastPass shares each decoded run among its
  // 4 activation rows). (2) Exact where every
  // product and sum is: subnormal e4m3 codes (2^-9 multiples, subnormal if
  // decoded straight into bf16's bits, which vdpbf16ps would read as zero)
  // of either sign, a normal code and a subnormal one in different runs,
  // zeros; an e4m3 NaN code makes its feature NaN and no other.
  if (!::v4::hostSupportsISA("x86-64-v4-bf16"))
    GTEST_SKIP()
        << "this CPU does not run x86-64-v4-bf16 (AVX512_BF16, AVX512_VBMI) "
           "code";
  const std::string fast =
      "v4.sum_order = \"fast\", v4.cpu = \"x86-64-v4-bf16\"";
  for (auto [fmt, K] : {std::pair<const char *, int64_t>{"fp8", 320},
                        {"fp8", 352},
                        {"fp8", 321},
                        {"fp8", 1024},
                        {"fp4", 544}}) {
    SCOPED_TRACE(std::string(fmt) + " K=" + std::to_string(K));
    const int64_t N = 75;
    LinearKernel lk{fmt, K, N};
    ASSERT_NO_FATAL_FAILURE(lk.build("f32", fast, 271 + K));
    for (int64_t M : {1, 3, 4}) {
      SCOPED_TRACE("M=" + std::to_string(M));
      auto x = randomBf16(M * K, 272 + K + M, 3.0f);
      Vec y(M * N);
      lk.run(x, M, y);
      ASSERT_NO_FATAL_FAILURE(expectWithinFastBound(lk, x, M, y));
    }
  }
  // (2)
  const int64_t K = 256, N = 6;
  LinearKernel lk{"fp8", K, N};
  ASSERT_NO_FATAL_FAILURE(lk.build("f32", fast, 273));
  for (uint8_t &b : lk.w.bytes)
    b = 0;
  for (uint8_t &sc : lk.w.scales)
    sc = 127;
  for (int64_t i = 0; i < 7; ++i) {
    lk.w.bytes[0 * K + 3 + i] = uint8_t(1 + i);           // (1 + i) 2^-9
    lk.w.bytes[1 * K + 70 + i] = uint8_t(0x80 | (1 + i)); // -(1 + i) 2^-9
  }
  lk.w.bytes[2 * K + 0] = 0x38;  // 1.0 in the first run
  lk.w.bytes[2 * K + 64] = 0x01; // 2^-9 in the second
  lk.w.bytes[3 * K + 100] = 0x7F;
  lk.w.bytes[3 * K + 101] = 0x38;
  lk.w.bytes[5 * K + 200] = 0xFF;
  std::vector<uint16_t> x(K, encodeBF16(1.0f));
  Vec y(N);
  lk.run(x, 1, y);
  EXPECT_EQ(y[0], 28 * 0x1p-9f);
  EXPECT_EQ(y[1], -28 * 0x1p-9f);
  EXPECT_EQ(y[2], 1.0f + 0x1p-9f);
  EXPECT_TRUE(std::isnan(y[3]));
  EXPECT_EQ(y[4], 0.0f);
  EXPECT_TRUE(std::isnan(y[5]));
}

TEST(CPUKernelVsReference, GroupedLinear) {
  // T1 wo_a: 2 groups, rank 16, 64 inputs per group. Exact.
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%x: tensor<2x?x2x64xbf16>, %w: tensor<32x64xbf16>) -> tensor<2x?x2x16xbf16> {
      %y = v4.grouped_linear %x, %w : tensor<2x?x2x64xbf16>, tensor<32x64xbf16>
          -> tensor<2x?x2x16xbf16>
      return %y : tensor<2x?x2x16xbf16>
    })"));
  const int64_t T = 21, R = 2 * T, G = 2, I = 64, N = 16;
  auto x = randomBf16(R * G * I, 81, 2.0f);
  auto w = randomBf16(G * N * I, 82, 0.2f);
  std::vector<uint16_t> y(R * G * N);
  auto dx = describe<4>(x.data(), {2, T, G, I});
  auto dw = describe<2>(w.data(), {G * N, I});
  auto dy = describe<4>(y.data(), {2, T, G, N});
  k.run({&dx, &dw, &dy});
  auto xf = dec(x), wf = dec(w);
  Vec want(y.size());
  for (int64_t r = 0; r < R; ++r)
    ref::groupedLinear(wf, G, N, I, xf.data() + r * G * I,
                       want.data() + r * G * N);
  Cmp c("grouped_linear");
  c.addBf16(y, want);
  c.expectExact();
}

TEST(CPUKernelVsReference, FakeQuant) {
  // FP8 on the 64 nope dims of 72 (block 64), FP4 on 32 (block 32). Exact.
  {
    CompiledKernel k;
    ASSERT_NO_FATAL_FAILURE(k.compile(R"(
      func.func @f(%x: tensor<2x?x4x72xbf16>) -> tensor<2x?x4x72xbf16> {
        %y = v4.fake_quant %x fp8_e4m3 blockSize 64 extent 64 : tensor<2x?x4x72xbf16>
        return %y : tensor<2x?x4x72xbf16>
      })"));
    const int64_t R = 2 * 21 * 4, N = 72;
    auto x = randomBf16(R * N, 91, 3.0f);
    std::vector<uint16_t> y(x.size());
    auto dx = describe<4>(x.data(), {2, 21, 4, N});
    auto dy = describe<4>(y.data(), {2, 21, 4, N});
    k.run({&dx, &dy});
    Vec want = dec(x);
    for (int64_t r = 0; r < R; ++r)
      ref::fakeQuantFP8(want.data() + r * N, 64, 64);
    Cmp c("fake_quant fp8");
    c.addBf16(y, want);
    c.expectExact();
  }
  {
    CompiledKernel k;
    ASSERT_NO_FATAL_FAILURE(k.compile(R"(
      func.func @f(%x: tensor<2x?x4x32xbf16>) -> tensor<2x?x4x32xbf16> {
        %y = v4.fake_quant %x fp4_e2m1 blockSize 32 : tensor<2x?x4x32xbf16>
        return %y : tensor<2x?x4x32xbf16>
      })"));
    const int64_t R = 2 * 21 * 4, N = 32;
    auto x = randomBf16(R * N, 92, 2.0f);
    std::vector<uint16_t> y(x.size());
    auto dx = describe<4>(x.data(), {2, 21, 4, N});
    auto dy = describe<4>(y.data(), {2, 21, 4, N});
    k.run({&dx, &dy});
    Vec want = dec(x);
    for (int64_t r = 0; r < R; ++r)
      ref::fakeQuantFP4(want.data() + r * N, N, 32);
    Cmp c("fake_quant fp4");
    c.addBf16(y, want);
    c.expectExact();
  }
}

TEST(CPUKernelVsReference, Hadamard) {
  // Sylvester butterflies in fp32, then * 1/sqrt(n), bf16. n = 32 (T1
  // indexer) and 128. Exact.
  for (int64_t N : {32, 128}) {
    std::string ty = "tensor<2x?x4x" + std::to_string(N) + "xbf16>";
    CompiledKernel k;
    ASSERT_NO_FATAL_FAILURE(k.compile("func.func @f(%x: " + ty + ") -> " + ty +
                                      " {\n  %y = v4.hadamard %x : " + ty +
                                      "\n  return %y : " + ty + "\n}"));
    const int64_t R = 2 * 21 * 4;
    auto x = randomBf16(R * N, 100 + N, 2.0f);
    std::vector<uint16_t> y(x.size());
    auto dx = describe<4>(x.data(), {2, 21, 4, N});
    auto dy = describe<4>(y.data(), {2, 21, 4, N});
    k.run({&dx, &dy});
    Vec want = dec(x);
    for (int64_t r = 0; r < R; ++r)
      ref::hadamard(want.data() + r * N, N);
    Cmp c(N == 32 ? "hadamard 32" : "hadamard 128");
    c.addBf16(y, want);
    c.expectExact();
  }
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

TEST(CPUKernelVsReference, RingWrite) {
  // The reference's ring update (Model.cpp): the last min(T, W) tokens at
  // slot p mod W. Exact.
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%ring: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>,
                 %kv: tensor<2x?x72xbf16>, %pos: tensor<2xi64>)
        -> !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16> {
      %r = v4.ring.write %kv into %ring at %pos : tensor<2x?x72xbf16>, tensor<2xi64>
          -> !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>
      return %r : !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>
    })"));
  const int64_t W = 8, D = 72;
  for (int64_t T : {21, 1, 3}) {
    std::vector<int64_t> pos = {0, 29};
    auto ring = randomBf16(2 * W * D, 110 + T);
    auto kv = randomBf16(2 * T * D, 120 + T);
    Vec want = dec(ring), kvf = dec(kv);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t t = std::max<int64_t>(0, T - W); t < T; ++t)
        std::copy(kvf.begin() + (b * T + t) * D,
                  kvf.begin() + (b * T + t + 1) * D,
                  want.begin() + (b * W + (pos[b] + t) % W) * D);
    auto dr = describe<3>(ring.data(), {2, W, D});
    auto dkv = describe<3>(kv.data(), {2, T, D});
    auto dp = describe<1>(pos.data(), {2});
    k.run({&dr, &dkv, &dp, &dr});
    Cmp c("ring.write");
    c.addBf16(ring, want);
    c.expectExact();
  }
}

TEST(CPUKernelVsReference, WindowIndices) {
  // ref::windowList, padded with -1 to W columns. Exact.
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%pos: tensor<3xi64>) -> tensor<3x21x8xi64> {
      %i = v4.attn.window_indices %pos window 8 : tensor<3xi64> -> tensor<3x21x8xi64>
      return %i : tensor<3x21x8xi64>
    })"));
  const int64_t T = 21, W = 8;
  std::vector<int64_t> pos = {0, 21, 3}, out(3 * T * W, 99);
  auto dp = describe<1>(pos.data(), {3});
  auto dout = describe<3>(out.data(), {3, T, W});
  k.run({&dp, &dout});
  int64_t bad = 0;
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t t = 0; t < T; ++t) {
      auto want = ref::windowList(pos[b] + t, pos[b], T, W);
      want.resize(W, -1);
      std::vector<int64_t> got(out.begin() + (b * T + t) * W,
                               out.begin() + (b * T + t + 1) * W);
      bad += got != want;
      EXPECT_EQ(got, want) << "b " << b << " t " << t;
    }
  std::printf("[attn.window_indices vs ref] %lld lists, %lld differ\n",
              (long long)(3 * T), (long long)bad);
}

TEST(CPUKernelVsReference, IndexerScoresAndTopk) {
  // T1 indexer: 4 heads of 32, topk 8, ratio 4. indexer_scores against
  // ref::indexerScores (w_h = bf16(w / sqrt(DI HI)) as the op defines it,
  // -inf where b >= floor((p+1)/4)); csa.topk on the kernel's scores
  // against ref::indexerTopk. Both exact.
  const int64_t B = 2, T = 21, HI = 4, DI = 32, N = 12, K = 8;
  auto src = R"(
    func.func @f(%q: tensor<2x21x4x32xbf16>, %w: tensor<2x21x4xbf16>,
                 %keys: !v4.kv_cache<batch = 2, capacity = 12, dim = 32, ratio = 4, elementType = bf16>,
                 %pos: tensor<2xi64>) -> tensor<2x21x12xbf16> {
      %s = v4.csa.indexer_scores %q, %w, %keys, %pos
          : (tensor<2x21x4x32xbf16>, tensor<2x21x4xbf16>,
             !v4.kv_cache<batch = 2, capacity = 12, dim = 32, ratio = 4, elementType = bf16>,
             tensor<2xi64>) -> tensor<2x21x12xbf16>
      return %s : tensor<2x21x12xbf16>
    })";
  CompiledKernel ks, kt;
  ASSERT_NO_FATAL_FAILURE(ks.compile(src));
  ASSERT_NO_FATAL_FAILURE(kt.compile(R"(
    func.func @f(%s: tensor<2x?x12xf32>, %pos: tensor<2xi64>) -> tensor<2x?x8xi64> {
      %i = v4.csa.topk %s, %pos k 8 : (tensor<2x?x12xf32>, tensor<2xi64>) -> tensor<2x?x8xi64>
      return %i : tensor<2x?x8xi64>
    })"));
  auto qv = randomBf16(B * T * HI * DI, 131);
  auto w = randomBf16(B * T * HI, 132, 2.0f);
  auto keys = randomBf16(B * N * DI, 133);
  std::vector<int64_t> pos = {0, 27};
  std::vector<uint16_t> out(B * T * N);
  auto dq = describe<4>(qv.data(), {B, T, HI, DI});
  auto dw = describe<3>(w.data(), {B, T, HI});
  auto dk = describe<3>(keys.data(), {B, N, DI});
  auto dp = describe<1>(pos.data(), {B});
  auto dout = describe<3>(out.data(), {B, T, N});
  ks.run({&dq, &dw, &dk, &dp, &dout});
  auto qf = dec(qv), wf = dec(w), kf = dec(keys);
  float cst =
      float(1.0 / std::sqrt(double(DI)) * (1.0 / std::sqrt(double(HI))));
  Vec want(out.size());
  std::vector<Vec> refScores(B * T);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      int64_t r = b * T + t, vis = (pos[b] + t + 1) / 4;
      Vec wh(HI);
      for (int64_t h = 0; h < HI; ++h)
        wh[h] = ref::bf(wf[r * HI + h] * cst);
      refScores[r] = ref::indexerScores(qf.data() + r * HI * DI, wh.data(), HI,
                                        DI, kf.data() + b * N * DI, N);
      for (int64_t e = 0; e < N; ++e)
        want[r * N + e] = e < vis ? refScores[r][e] : -kInf;
    }
  {
    Cmp c("csa.indexer_scores");
    c.addBf16(out, want);
    c.expectExact();
  }
  // Top-k: fp32 scores, tie-free among the visible entries.
  Vec s32(B * T * N);
  std::mt19937 rng(134);
  for (int64_t r = 0; r < B * T; ++r) {
    std::vector<int> perm(N);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int64_t e = 0; e < N; ++e)
      s32[r * N + e] = float(perm[e]) * 0.37f - 2.0f;
  }
  std::vector<int64_t> ids(B * T * K, 77);
  auto ds = describe<3>(s32.data(), {B, T, N});
  auto di = describe<3>(ids.data(), {B, T, K});
  kt.run({&ds, &dp, &di});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      int64_t r = b * T + t, vis = (pos[b] + t + 1) / 4;
      Vec row(s32.begin() + r * N, s32.begin() + (r + 1) * N);
      auto wantIds = ref::indexerTopk(row, vis, K, N);
      std::vector<int64_t> got(ids.begin() + r * K, ids.begin() + (r + 1) * K);
      EXPECT_EQ(got, wantIds) << "b " << b << " t " << t;
    }
}

/// Sparse attention case (T1: 4 heads of 72, window 8).
struct Sparse {
  int64_t B = 2, T = 0, H = 4, D = 72, W = 8, N = 0, ratio = 0, K = 0;
  /// The kernels' sum order (v4.sum_order): attention keeps the
  /// reference's bits in both.
  bool fast = false;
  std::vector<int64_t> pos;
  std::vector<uint16_t> q, kv, ring, cache;
  Vec sink;
  std::vector<int64_t> topk;
};

Sparse sparseCase(int64_t T, std::vector<int64_t> pos, uint64_t seed,
                  int64_t D = 72, int64_t W = 8) {
  Sparse c;
  c.T = T;
  c.D = D;
  c.W = W;
  c.pos = std::move(pos);
  c.q = randomBf16(c.B * T * c.H * c.D, seed, 2.0f);
  c.kv = randomBf16(c.B * T * c.D, seed + 1);
  c.ring = randomBf16(c.B * c.W * c.D, seed + 2);
  c.sink = normal(c.H, seed + 3, 0.5f);
  return c;
}

std::string sparseSource(const Sparse &c) {
  auto s = [](int64_t v) { return std::to_string(v); };
  std::string tq = "tensor<" + s(c.B) + "x" + s(c.T) + "x" + s(c.H) + "x" +
                   s(c.D) + "xbf16>";
  std::string tkv = "tensor<" + s(c.B) + "x" + s(c.T) + "x" + s(c.D) + "xbf16>";
  std::string tr = "!v4.window_ring<batch = " + s(c.B) + ", slots = " + s(c.W) +
                   ", dim = " + s(c.D) + ", elementType = bf16>";
  std::string ts = "tensor<" + s(c.H) + "xf32>",
              tp = "tensor<" + s(c.B) + "xi64>";
  std::string tc = "!v4.kv_cache<batch = " + s(c.B) + ", capacity = " + s(c.N) +
                   ", dim = " + s(c.D) + ", ratio = " + s(c.ratio) +
                   ", elementType = bf16>";
  std::string ti = "tensor<" + s(c.B) + "x" + s(c.T) + "x" + s(c.K) + "xi64>";
  std::string args = "%q: " + tq + ", %kv: " + tkv + ", %ring: " + tr +
                     ", %sink: " + ts + ", %pos: " + tp;
  std::string extra;
  if (c.ratio) {
    args += ", %cache: " + tc;
    extra += " compressed %cache : " + tc;
  }
  if (!c.topk.empty()) {
    args += ", %idx: " + ti;
    extra += " indices %idx : " + ti;
  }
  return std::string(c.fast ? "module attributes {v4.sum_order = \"fast\"} {\n"
                            : "module {\n") +
         "func.func @f(" + args + ") -> " + tq +
         " {\n  %o = v4.attn.sparse %q, %kv, %ring, %sink, %pos" + extra +
         " window " + s(c.W) + " : " + tq + ", " + tkv + ", " + tr + ", " + ts +
         ", " + tp + " -> " + tq + "\n  return %o : " + tq + "\n}\n}";
}

void checkSparse(const char *what, Sparse &c) {
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(sparseSource(c)));
  std::vector<uint16_t> out(c.B * c.T * c.H * c.D);
  auto dq = describe<4>(c.q.data(), {c.B, c.T, c.H, c.D});
  auto dkv = describe<3>(c.kv.data(), {c.B, c.T, c.D});
  auto dr = describe<3>(c.ring.data(), {c.B, c.W, c.D});
  auto ds = describe<1>(c.sink.data(), {c.H});
  auto dp = describe<1>(c.pos.data(), {c.B});
  auto dc = describe<3>(c.cache.data(), {c.B, c.N, c.D});
  auto di = describe<3>(c.topk.data(), {c.B, c.T, c.K});
  auto dout = describe<4>(out.data(), {c.B, c.T, c.H, c.D});
  std::vector<void *> args = {&dq, &dkv, &dr, &ds, &dp};
  if (c.ratio)
    args.push_back(&dc);
  if (!c.topk.empty())
    args.push_back(&di);
  args.push_back(&dout);
  k.run(args);
  auto qf = dec(c.q), kvf = dec(c.kv), rf = dec(c.ring), cf = dec(c.cache);
  Vec want(out.size());
  // D^-1/2 formed in double, then fp32 (the op's and the reference model's
  // softmax scale; 1/sqrtf(72) is one fp32 ulp away).
  float scale = float(1.0 / std::sqrt(double(c.D)));
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t t = 0; t < c.T; ++t) {
      int64_t sp = c.pos[b], p = sp + t;
      std::vector<const float *> rows;
      for (int64_t qp : ref::windowList(p, sp, c.T, c.W))
        rows.push_back(qp < 0     ? nullptr
                       : qp >= sp ? kvf.data() + (b * c.T + qp - sp) * c.D
                                  : rf.data() + (b * c.W + qp % c.W) * c.D);
      if (c.ratio && c.topk.empty())
        for (int64_t id : ref::compressedList(p, sp, c.T, c.ratio))
          rows.push_back(id < 0 ? nullptr : cf.data() + (b * c.N + id) * c.D);
      if (!c.topk.empty()) {
        int64_t vis = (p + 1) / c.ratio;
        for (int64_t i = 0; i < c.K; ++i) {
          int64_t id = c.topk[(b * c.T + t) * c.K + i];
          rows.push_back(id >= 0 && id < vis ? cf.data() + (b * c.N + id) * c.D
                                             : nullptr);
        }
      }
      for (int64_t h = 0; h < c.H; ++h) {
        int64_t o = ((b * c.T + t) * c.H + h) * c.D;
        ref::sinkAttention(qf.data() + o, rows, c.D, scale, c.sink[h],
                           want.data() + o);
      }
    }
  Cmp cmp(what);
  cmp.addBf16(out, want);
  cmp.expectExact();
}

TEST(CPUKernelVsReference, SparseSWA) {
  // Prefill of 21 (start 0) and a continuation at 21; ref::sinkAttention
  // over ref::windowList. Exact.
  auto c = sparseCase(21, {0, 21}, 141);
  ASSERT_NO_FATAL_FAILURE(checkSparse("attn.sparse SWA", c));
  auto d = sparseCase(1, {5, 33}, 145);
  ASSERT_NO_FATAL_FAILURE(checkSparse("attn.sparse SWA decode", d));
}

TEST(CPUKernelVsReference, SparseHCA) {
  // Window + all completed ratio-8 entries (ref::compressedList). Exact.
  auto c = sparseCase(21, {0, 13}, 151);
  c.ratio = 8;
  c.N = 5;
  c.cache = randomBf16(c.B * c.N * c.D, 154);
  ASSERT_NO_FATAL_FAILURE(checkSparse("attn.sparse HCA", c));
}

TEST(CPUKernelVsReference, SparseCSA) {
  // Window + the indexer's top-8 ids (ratio 4), -1 and invisible ids
  // dropped. Exact.
  auto c = sparseCase(21, {0, 12}, 161);
  c.ratio = 4;
  c.N = 9;
  c.K = 8;
  c.cache = randomBf16(c.B * c.N * c.D, 164);
  std::mt19937 rng(165);
  c.topk.resize(c.B * c.T * c.K);
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t t = 0; t < c.T; ++t) {
      int64_t vis = (c.pos[b] + t + 1) / 4;
      std::vector<int64_t> perm(c.N);
      std::iota(perm.begin(), perm.end(), 0);
      std::shuffle(perm.begin(), perm.end(), rng);
      for (int64_t i = 0; i < c.K; ++i)
        c.topk[(b * c.T + t) * c.K + i] =
            i < vis ? perm[i] : -1; // some ids beyond vis, then -1 padding
    }
  ASSERT_NO_FATAL_FAILURE(checkSparse("attn.sparse CSA", c));
}

TEST(CPUKernelVsReference, SparseWideHeadsManyTiles) {
  // Heads of 128 (rows as 8 vectors of 16, transposed in 16 x 16 blocks,
  // acc in blocks of 4 vectors), a window of 70 and ratio-2 HCA entries: up
  // to 134 entries, three tiles of 64, valid-row counts that are no multiple
  // of 16. Exact in both sum orders: the fast order keeps the body as built.
  for (bool fast : {false, true}) {
    auto c = sparseCase(37, {0, 90}, 171, /*D=*/128, /*W=*/70);
    c.ratio = 2;
    c.N = 64;
    c.cache = randomBf16(c.B * c.N * c.D, 174);
    c.fast = fast;
    ASSERT_NO_FATAL_FAILURE(
        checkSparse(fast ? "attn.sparse D=128 fast" : "attn.sparse D=128", c));
  }
  // Heads of 36 (vectors of 4: 4 x 4 transposes, acc in blocks of 1) and of
  // 18 (vectors of 2), fast order.
  for (int64_t D : {36, 18}) {
    auto d = sparseCase(21, {0, 12}, 181 + D, D, /*W=*/70);
    d.fast = true;
    ASSERT_NO_FATAL_FAILURE(checkSparse(
        (std::string("attn.sparse fast D=") + std::to_string(D)).c_str(), d));
  }
}

//===----------------------------------------------------------------------===//
// kv.compress
//===----------------------------------------------------------------------===//

/// One compressor of T1 (d = 64): main c = 72 (rope 8, FP8 on 64), indexer
/// c = 32 (Hadamard + FP4); rope theta 160000, YaRN factor 4 at 16. Other
/// widths d and bf16 weights (their values bf16-exact) on request.
struct Comp {
  ref::CompressorParams p;
  ref::RopeTable tab;
  int64_t ropeDim = 8;
  ref::CompressorPost pp;
  bool rotate = false;
  int64_t cap = 0;
  std::vector<uint16_t> norm;

  bool bf16Weights = false;
  std::vector<uint16_t> wkvBf16, wgateBf16;
  /// v4.kv.compress_projected, fed the projections of ref::compressorProject.
  bool projected = false;

  Comp(int64_t c, int64_t r, bool rot, uint64_t seed, int64_t d = 64,
       bool bf16 = false, int64_t rope = 8)
      : rotate(rot), bf16Weights(bf16) {
    ropeDim = rope;
    tab = ref::makeRopeTable(rope, 160000.0, true, 4.0, 16, 32, 1);
    p.c = c;
    p.r = r;
    p.overlap = r == 4;
    p.d = d;
    pp.rope = &tab;
    pp.eps = 1e-6f;
    pp.indexer = rot;
    pp.fakeQuant = true;
    int64_t W = p.coff() * c;
    p.wkv = normal(W * p.d, seed, 1.0f / 8);
    p.wgate = normal(W * p.d, seed + 1, 1.0f / 8);
    if (bf16) {
      for (auto [w, codes] :
           {std::pair{&p.wkv, &wkvBf16}, std::pair{&p.wgate, &wgateBf16}}) {
        for (float &v : *w) {
          codes->push_back(encodeBF16(v));
          v = decodeBF16(codes->back());
        }
      }
    }
    p.ape = normal(r * W, seed + 2, 0.5f);
    auto nv = normal(c, seed + 3, 0.1f, 1.0f);
    norm.resize(c);
    p.norm.resize(c);
    for (int64_t i = 0; i < c; ++i) {
      norm[i] = encodeBF16(nv[i]);
      p.norm[i] = decodeBF16(norm[i]);
    }
    cap = 40 / r;
  }
  int64_t width() const { return p.coff() * p.c; }
  int64_t rows() const { return p.coff() * p.r; }

  std::string source() const {
    auto s = [](int64_t v) { return std::to_string(v); };
    std::string st = "!v4.compressor_state<batch = 1, ratio = " + s(p.r) +
                     ", dim = " + s(p.c) + ">";
    std::string ca = "!v4.kv_cache<batch = 1, capacity = " + s(cap) +
                     ", dim = " + s(p.c) + ", ratio = " + s(p.r) +
                     ", elementType = bf16>";
    std::string wt = "tensor<" + s(width()) + "x" + s(p.d) +
                     (bf16Weights ? "xbf16>" : "xf32>");
    std::string at = "tensor<" + s(p.r) + "x" + s(width()) + "xf32>";
    std::string nt = "tensor<" + s(p.c) + "xbf16>";
    std::string xt = "tensor<1x?x" + s(p.d) + "xbf16>";
    std::string rope = "#v4.rope<ropeDim = " + s(ropeDim) +
                       ", base = 160000.0, factor = 4.0, "
                       "originalSeqLen = 16, betaFast = 32.0, betaSlow = 1.0>";
    if (projected) {
      std::string kt = "tensor<1x?x" + s(width()) + "xf32>";
      return "func.func @f(%k: " + kt + ", %g: " + kt + ", %s: " + st +
             ", %c: " + ca + ", %pos: tensor<1xi64>, %ape: " + at +
             ", %norm: " + nt + ") -> (" + st + ", " + ca +
             ") {\n  %s1, %c1 = v4.kv.compress_projected %k, %g, %s, %c, %pos "
             "weights(%ape, %norm) rope " +
             rope + " eps 1.0e-6" + (rotate ? " rotate" : "") + " : " + kt +
             ", " + st + ", " + ca + ", tensor<1xi64> weights(" + at + ", " +
             nt + ")\n  return %s1, %c1 : " + st + ", " + ca + "\n}";
    }
    return "func.func @f(%x: " + xt + ", %s: " + st + ", %c: " + ca +
           ", %pos: tensor<1xi64>, %wkv: " + wt + ", %wg: " + wt +
           ", %ape: " + at + ", %norm: " + nt + ") -> (" + st + ", " + ca +
           ") {\n  %s1, %c1 = v4.kv.compress %x, %s, %c, %pos weights(%wkv, "
           "%wg, %ape, %norm) rope " +
           rope + " eps 1.0e-6" + (rotate ? " rotate" : "") + " : " + xt +
           ", " + st + ", " + ca + ", tensor<1xi64> weights(" + wt + ", " + wt +
           ", " + at + ", " + nt + ")\n  return %s1, %c1 : " + st + ", " + ca +
           "\n}";
  }
};

struct CompRun {
  const Comp &cp;
  CompiledKernel k;
  Vec kv, score;
  std::vector<uint16_t> cache;
  explicit CompRun(const Comp &c) : cp(c) {
    kv.assign(cp.rows() * cp.width(), 0.0f);
    score.assign(cp.rows() * cp.width(), -kInf);
    cache.assign(cp.cap * cp.p.c, 0);
  }
  void chunk(const std::vector<uint16_t> &x, int64_t t0, int64_t T) {
    const int64_t d = cp.p.d;
    std::vector<uint16_t> xs(x.begin() + t0 * d, x.begin() + (t0 + T) * d);
    std::vector<int64_t> pos = {t0};
    Vec wkv = cp.p.wkv, wg = cp.p.wgate, ape = cp.p.ape;
    std::vector<uint16_t> wkvB = cp.wkvBf16, wgB = cp.wgateBf16;
    std::vector<uint16_t> norm = cp.norm;
    auto dx = describe<3>(xs.data(), {1, T, d});
    auto dwk = cp.bf16Weights ? describe<2>(wkvB.data(), {cp.width(), d})
                              : describe<2>(wkv.data(), {cp.width(), d});
    auto dwg = cp.bf16Weights ? describe<2>(wgB.data(), {cp.width(), d})
                              : describe<2>(wg.data(), {cp.width(), d});
    auto da = describe<2>(ape.data(), {cp.p.r, cp.width()});
    auto dn = describe<1>(norm.data(), {cp.p.c});
    auto dk = describe<3>(kv.data(), {1, cp.rows(), cp.width()});
    auto ds = describe<3>(score.data(), {1, cp.rows(), cp.width()});
    auto dc = describe<3>(cache.data(), {1, cp.cap, cp.p.c});
    auto dp = describe<1>(pos.data(), {1});
    if (!cp.projected) {
      k.run({&dx, &dwk, &dwg, &da, &dn, &dk, &ds, &dc, &dp, &dk, &ds, &dc});
      return;
    }
    // The projections without ape (the op adds it), in the reference's
    // order.
    ref::CompressorParams q = cp.p;
    std::fill(q.ape.begin(), q.ape.end(), 0.0f);
    Vec xf = dec(xs), kp(T * cp.width()), gp(T * cp.width());
    for (int64_t t = 0; t < T; ++t)
      ref::compressorProject(q, xf.data() + t * d, 0,
                             kp.data() + t * cp.width(),
                             gp.data() + t * cp.width());
    auto dkp = describe<3>(kp.data(), {1, T, cp.width()});
    auto dgp = describe<3>(gp.data(), {1, T, cp.width()});
    k.run({&dkp, &dgp, &da, &dn, &dk, &ds, &dc, &dp, &dk, &ds, &dc});
  }
};

/// Prefill of 21 tokens in one chunk against ref::compressorPrefill (entries
/// and the defined state rows), then token by token from the empty state
/// against ref::compressorDecode after every token. All exact.
void checkCompress(const char *what, int64_t c, int64_t r, bool rotate,
                   uint64_t seed, int64_t d = 64, bool bf16 = false,
                   int64_t ropeDim = 8, bool projected = false) {
  Comp cp(c, r, rotate, seed, d, bf16, ropeDim);
  cp.projected = projected;
  const int64_t T = 21, n = T / r;
  auto x = randomBf16(T * d, seed + 10, 2.0f);
  auto xf = dec(x);
  ref::CompressorState st;
  Vec entries = ref::compressorPrefill(cp.p, cp.pp, xf.data(), T, st);
  {
    CompRun run(cp);
    ASSERT_NO_FATAL_FAILURE(run.k.compile(cp.source()));
    run.chunk(x, 0, T);
    std::vector<uint16_t> got(run.cache.begin(), run.cache.begin() + n * c);
    Cmp ce(std::string(what) + " prefill entries");
    ce.addBf16(got, entries);
    ce.expectExact();
    int64_t defined = ((cp.p.overlap ? r : 0) + T % r) * cp.width();
    Cmp cs(std::string(what) + " prefill state");
    cs.addAll(run.kv.data(), st.kv.data(), defined);
    cs.addAll(run.score.data(), st.score.data(), defined);
    cs.expectExact();
  }
  CompRun run(cp);
  ASSERT_NO_FATAL_FAILURE(run.k.compile(cp.source()));
  ref::CompressorState ds;
  ds.reset(cp.p);
  Vec want(n * c, 0.0f);
  Cmp ce(std::string(what) + " decode entries");
  for (int64_t t = 0; t < T; ++t) {
    run.chunk(x, t, 1);
    auto e = ref::compressorDecode(cp.p, cp.pp, xf.data() + t * d, t, ds);
    if (e)
      std::copy(e->begin(), e->end(), want.begin() + (t / r) * c);
  }
  std::vector<uint16_t> got(run.cache.begin(), run.cache.begin() + n * c);
  ce.addBf16(got, want);
  ce.expectExact();
  int64_t defined = ((cp.p.overlap ? r : 0) + T % r) * cp.width();
  Cmp cs(std::string(what) + " decode state");
  cs.addAll(run.kv.data(), ds.kv.data(), defined);
  cs.addAll(run.score.data(), ds.score.data(), defined);
  cs.expectExact();
}

TEST(CPUKernelVsReference, CompressOverlapMain) {
  ASSERT_NO_FATAL_FAILURE(
      checkCompress("kv.compress overlap main", 72, 4, false, 171));
}

TEST(CPUKernelVsReference, CompressOverlapIndexerRotate) {
  ASSERT_NO_FATAL_FAILURE(
      checkCompress("kv.compress indexer rotate", 32, 4, true, 181));
}

TEST(CPUKernelVsReference, CompressNonOverlap) {
  ASSERT_NO_FATAL_FAILURE(
      checkCompress("kv.compress non-overlap", 72, 8, false, 191));
}

TEST(CPUKernelVsReference, CompressProjectionTails) {
  // The projection puts 8 channels in vector lanes and reads 8 x 8 weight
  // blocks: d = 61 leaves 5 elements past the last block; with rope dims 6,
  // c = 70 gives widths 70 (non-overlap) and 140 (overlap), 6 and 4
  // channels past the last 8; the weights are bf16. Exact.
  ASSERT_NO_FATAL_FAILURE(checkCompress("kv.compress tails non-overlap", 70, 8,
                                        false, 201, 61, true, 6));
  ASSERT_NO_FATAL_FAILURE(checkCompress("kv.compress tails overlap", 70, 4,
                                        false, 211, 61, true, 6));
}

TEST(CPUKernelVsReference, CompressProjected) {
  // kv.compress_projected (what v4-decompose-kv-compress leaves of the op)
  // fed the reference's projections: the same entries and state rows as
  // the reference, exactly, for the three compressor kinds and the tails
  // (ropeDim 6, c = 70).
  ASSERT_NO_FATAL_FAILURE(checkCompress("kv.compress_projected overlap main",
                                        72, 4, false, 241, 64, false, 8, true));
  ASSERT_NO_FATAL_FAILURE(checkCompress("kv.compress_projected rotate", 32, 4,
                                        true, 251, 64, false, 8, true));
  ASSERT_NO_FATAL_FAILURE(checkCompress("kv.compress_projected non-overlap", 70,
                                        8, false, 261, 61, true, 6, true));
}

TEST(CPUKernelVsReference, MhcSinkhorn) {
  // ref::hcSplitSinkhorn with scale 1, base 0 (C = the logits). Exact.
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%c: tensor<42x4x4xf32>) -> tensor<42x4x4xf32> {
      %p = v4.mhc.sinkhorn %c {iters = 20 : i64, eps = 1.0e-6 : f64} : tensor<42x4x4xf32>
      return %p : tensor<42x4x4xf32>
    })"));
  const int64_t M = 42, n = 4;
  Vec in = normal(M * 16, 201, 1.0f), out(M * 16), want(M * 16);
  auto din = describe<3>(in.data(), {M, n, n});
  auto dout = describe<3>(out.data(), {M, n, n});
  k.run({&din, &dout});
  float scale[3] = {1, 1, 1};
  Vec base(24, 0.0f), m(24, 0.0f);
  for (int64_t i = 0; i < M; ++i) {
    std::copy(in.begin() + i * 16, in.begin() + (i + 1) * 16, m.begin() + 8);
    auto s = ref::hcSplitSinkhorn(m.data(), scale, base.data(), n, 20, 1e-6f);
    std::copy(s.comb.begin(), s.comb.end(), want.begin() + i * 16);
  }
  Cmp c("mhc.sinkhorn");
  c.addAll(out.data(), want.data(), out.size());
  c.expectExact();
}

TEST(CPUKernelVsReference, MhcPrePostHead) {
  // ref::hcPre / hcPost / hcHead, T1 sizes (n 4, d 64). y, post, comb and
  // the post and head outputs: exact.
  const int64_t B = 2, T = 21, n = 4, d = 64, nd = n * d, M = 24;
  CompiledKernel pre, post, head;
  ASSERT_NO_FATAL_FAILURE(pre.compile(R"(
    func.func @f(%x: tensor<2x?x4x64xbf16>, %fn: tensor<24x256xf32>,
                 %base: tensor<24xf32>, %scale: tensor<3xf32>)
        -> (tensor<2x?x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>) {
      %y, %post, %comb = v4.mhc.pre %x, %fn, %base, %scale
          {hcEps = 1.0e-6 : f64, normEps = 1.0e-6 : f64, sinkhornIters = 20 : i64}
          : (tensor<2x?x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>,
             tensor<3xf32>)
          -> (tensor<2x?x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>)
      return %y, %post, %comb
          : tensor<2x?x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>
    })"));
  ASSERT_NO_FATAL_FAILURE(post.compile(R"(
    func.func @f(%o: tensor<2x?x64xbf16>, %x: tensor<2x?x4x64xbf16>,
                 %p: tensor<2x?x4xf32>, %c: tensor<2x?x4x4xf32>)
        -> tensor<2x?x4x64xbf16> {
      %r = v4.mhc.post %o, %x, %p, %c
          : (tensor<2x?x64xbf16>, tensor<2x?x4x64xbf16>, tensor<2x?x4xf32>,
             tensor<2x?x4x4xf32>) -> tensor<2x?x4x64xbf16>
      return %r : tensor<2x?x4x64xbf16>
    })"));
  ASSERT_NO_FATAL_FAILURE(head.compile(R"(
    func.func @f(%x: tensor<2x?x4x64xbf16>, %fn: tensor<4x256xf32>,
                 %base: tensor<4xf32>, %scale: tensor<1xf32>)
        -> tensor<2x?x64xbf16> {
      %y = v4.mhc.head %x, %fn, %base, %scale
          : (tensor<2x?x4x64xbf16>, tensor<4x256xf32>, tensor<4xf32>,
             tensor<1xf32>) -> tensor<2x?x64xbf16>
      return %y : tensor<2x?x64xbf16>
    })"));
  auto x = randomBf16(B * T * nd, 211, 2.0f);
  Vec fn = normal(M * nd, 212, 1.0f / 16), base = normal(M, 213, 0.5f);
  Vec scale = {0.6f, 0.8f, 0.9f};
  std::vector<uint16_t> y(B * T * d);
  Vec pw(B * T * n), cw(B * T * n * n);
  auto dx = describe<4>(x.data(), {B, T, n, d});
  auto dfn = describe<2>(fn.data(), {M, nd});
  auto dbase = describe<1>(base.data(), {M});
  auto dscale = describe<1>(scale.data(), {3});
  auto dy = describe<3>(y.data(), {B, T, d});
  auto dpw = describe<3>(pw.data(), {B, T, n});
  auto dcw = describe<4>(cw.data(), {B, T, n, n});
  pre.run({&dx, &dfn, &dbase, &dscale, &dy, &dpw, &dcw});
  auto o = randomBf16(B * T * d, 214, 1.0f);
  std::vector<uint16_t> xo(B * T * nd);
  auto dox = describe<3>(o.data(), {B, T, d});
  auto dxo = describe<4>(xo.data(), {B, T, n, d});
  post.run({&dox, &dx, &dpw, &dcw, &dxo});
  Vec hfn = normal(n * nd, 215, 1.0f / 16), hbase = normal(n, 216, 0.5f),
      hscale = {0.7f};
  std::vector<uint16_t> hy(B * T * d);
  auto dhfn = describe<2>(hfn.data(), {n, nd});
  auto dhb = describe<1>(hbase.data(), {n});
  auto dhs = describe<1>(hscale.data(), {1});
  auto dhy = describe<3>(hy.data(), {B, T, d});
  head.run({&dx, &dhfn, &dhb, &dhs, &dhy});

  auto X = dec(x), O = dec(o);
  Vec wy(y.size()), wp(pw.size()), wc(cw.size()), wxo(xo.size()),
      why(hy.size());
  for (int64_t t = 0; t < B * T; ++t) {
    auto s = ref::hcPre(X.data() + t * nd, n, d, fn.data(), scale.data(),
                        base.data(), 20, 1e-6f, 1e-6f, wy.data() + t * d);
    std::copy(s.post.begin(), s.post.end(), wp.begin() + t * n);
    std::copy(s.comb.begin(), s.comb.end(), wc.begin() + t * n * n);
    // hc_post on the kernel's own post/comb (isolates the op).
    ref::HcSplit ks;
    ks.post.assign(pw.begin() + t * n, pw.begin() + (t + 1) * n);
    ks.comb.assign(cw.begin() + t * n * n, cw.begin() + (t + 1) * n * n);
    ref::hcPost(O.data() + t * d, X.data() + t * nd, ks, n, d,
                wxo.data() + t * nd);
    ref::hcHead(X.data() + t * nd, n, d, hfn.data(), hscale.data(),
                hbase.data(), 1e-6f, 1e-6f, why.data() + t * d);
  }
  {
    Cmp c("mhc.pre y");
    c.addBf16(y, wy);
    c.expectExact();
  }
  {
    Cmp c("mhc.pre post");
    c.addAll(pw.data(), wp.data(), pw.size());
    c.expectExact();
  }
  {
    Cmp c("mhc.pre comb");
    c.addAll(cw.data(), wc.data(), cw.size());
    c.expectExact();
  }
  {
    Cmp c("mhc.post");
    c.addBf16(xo, wxo);
    c.expectExact();
  }
  {
    Cmp c("mhc.head");
    c.addBf16(hy, why);
    c.expectExact();
  }
}

TEST(CPUKernelVsReference, MhcPostPreEqualsPostThenPre) {
  // v4.mhc.post_pre (the fused mHC boundary, v4-fuse-mhc-boundaries) against
  // v4.mhc.post followed by v4.mhc.pre on its result: all four outputs bit
  // for bit. post/comb come from a first pre, so they are realistic. T1
  // sizes (n 4, d 64).
  const int64_t B = 2, T = 21, n = 4, d = 64, nd = n * d, M = 24;
  CompiledKernel pre, post, fused;
  ASSERT_NO_FATAL_FAILURE(pre.compile(R"(
    func.func @f(%x: tensor<2x?x4x64xbf16>, %fn: tensor<24x256xf32>,
                 %base: tensor<24xf32>, %scale: tensor<3xf32>)
        -> (tensor<2x?x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>) {
      %y, %post, %comb = v4.mhc.pre %x, %fn, %base, %scale
          : (tensor<2x?x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>,
             tensor<3xf32>)
          -> (tensor<2x?x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>)
      return %y, %post, %comb
          : tensor<2x?x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>
    })"));
  ASSERT_NO_FATAL_FAILURE(post.compile(R"(
    func.func @f(%o: tensor<2x?x64xbf16>, %x: tensor<2x?x4x64xbf16>,
                 %p: tensor<2x?x4xf32>, %c: tensor<2x?x4x4xf32>)
        -> tensor<2x?x4x64xbf16> {
      %r = v4.mhc.post %o, %x, %p, %c
          : (tensor<2x?x64xbf16>, tensor<2x?x4x64xbf16>, tensor<2x?x4xf32>,
             tensor<2x?x4x4xf32>) -> tensor<2x?x4x64xbf16>
      return %r : tensor<2x?x4x64xbf16>
    })"));
  ASSERT_NO_FATAL_FAILURE(fused.compile(R"(
    func.func @f(%o: tensor<2x?x64xbf16>, %x: tensor<2x?x4x64xbf16>,
                 %p: tensor<2x?x4xf32>, %c: tensor<2x?x4x4xf32>,
                 %fn: tensor<24x256xf32>, %base: tensor<24xf32>,
                 %scale: tensor<3xf32>)
        -> (tensor<2x?x4x64xbf16>, tensor<2x?x64xbf16>, tensor<2x?x4xf32>,
            tensor<2x?x4x4xf32>) {
      %x1, %y, %p1, %c1 = v4.mhc.post_pre %o, %x, %p, %c, %fn, %base, %scale
          : (tensor<2x?x64xbf16>, tensor<2x?x4x64xbf16>, tensor<2x?x4xf32>,
             tensor<2x?x4x4xf32>, tensor<24x256xf32>, tensor<24xf32>,
             tensor<3xf32>)
          -> (tensor<2x?x4x64xbf16>, tensor<2x?x64xbf16>, tensor<2x?x4xf32>,
              tensor<2x?x4x4xf32>)
      return %x1, %y, %p1, %c1 : tensor<2x?x4x64xbf16>, tensor<2x?x64xbf16>,
          tensor<2x?x4xf32>, tensor<2x?x4x4xf32>
    })"));
  auto x = randomBf16(B * T * nd, 231, 2.0f);
  Vec fn0 = normal(M * nd, 232, 1.0f / 16), base0 = normal(M, 233, 0.5f);
  Vec scale0 = {0.6f, 0.8f, 0.9f};
  std::vector<uint16_t> y0(B * T * d);
  Vec p0(B * T * n), c0(B * T * n * n);
  auto dx = describe<4>(x.data(), {B, T, n, d});
  auto dfn0 = describe<2>(fn0.data(), {M, nd});
  auto dbase0 = describe<1>(base0.data(), {M});
  auto dscale0 = describe<1>(scale0.data(), {3});
  auto dy0 = describe<3>(y0.data(), {B, T, d});
  auto dp0 = describe<3>(p0.data(), {B, T, n});
  auto dc0 = describe<4>(c0.data(), {B, T, n, n});
  pre.run({&dx, &dfn0, &dbase0, &dscale0, &dy0, &dp0, &dc0});

  // Unfused: post, then the next site's pre on its lanes.
  auto o = randomBf16(B * T * d, 234, 1.0f);
  Vec fn1 = normal(M * nd, 235, 1.0f / 16), base1 = normal(M, 236, 0.5f);
  Vec scale1 = {0.7f, 0.5f, 1.1f};
  std::vector<uint16_t> x1(B * T * nd), y1(B * T * d);
  Vec p1(B * T * n), c1(B * T * n * n);
  auto dox = describe<3>(o.data(), {B, T, d});
  auto dx1 = describe<4>(x1.data(), {B, T, n, d});
  auto dfn1 = describe<2>(fn1.data(), {M, nd});
  auto dbase1 = describe<1>(base1.data(), {M});
  auto dscale1 = describe<1>(scale1.data(), {3});
  auto dy1 = describe<3>(y1.data(), {B, T, d});
  auto dp1 = describe<3>(p1.data(), {B, T, n});
  auto dc1 = describe<4>(c1.data(), {B, T, n, n});
  post.run({&dox, &dx, &dp0, &dc0, &dx1});
  pre.run({&dx1, &dfn1, &dbase1, &dscale1, &dy1, &dp1, &dc1});

  // Fused.
  std::vector<uint16_t> fx(x1.size()), fy(y1.size());
  Vec fp(p1.size()), fc(c1.size());
  auto dfx = describe<4>(fx.data(), {B, T, n, d});
  auto dfy = describe<3>(fy.data(), {B, T, d});
  auto dfp = describe<3>(fp.data(), {B, T, n});
  auto dfc = describe<4>(fc.data(), {B, T, n, n});
  fused.run({&dox, &dx, &dp0, &dc0, &dfn1, &dbase1, &dscale1, &dfx, &dfy, &dfp,
             &dfc});

  EXPECT_EQ(fx, x1) << "mhc.post_pre lanes differ from mhc.post";
  EXPECT_EQ(fy, y1) << "mhc.post_pre y differs from mhc.pre";
  EXPECT_EQ(0, std::memcmp(fp.data(), p1.data(), p1.size() * sizeof(float)))
      << "mhc.post_pre nextPost differs from mhc.pre post";
  EXPECT_EQ(0, std::memcmp(fc.data(), c1.data(), c1.size() * sizeof(float)))
      << "mhc.post_pre nextComb differs from mhc.pre comb";
}

TEST(CPUKernelVsReference, MhcExpandAndMtpInput) {
  // expand: the reference's repeat (V4-SPEC 3 step 2); mtp.input: one bf16
  // add bf(e + h_i) as in the reference's MTP block. Exact.
  CompiledKernel ex, mtp;
  ASSERT_NO_FATAL_FAILURE(ex.compile(R"(
    func.func @f(%e: tensor<2x?x64xbf16>) -> tensor<2x?x4x64xbf16> {
      %x = v4.mhc.expand %e : tensor<2x?x64xbf16> -> tensor<2x?x4x64xbf16>
      return %x : tensor<2x?x4x64xbf16>
    })"));
  ASSERT_NO_FATAL_FAILURE(mtp.compile(R"(
    func.func @f(%e: tensor<2x?x64xbf16>, %h: tensor<2x?x4x64xbf16>)
        -> tensor<2x?x4x64xbf16> {
      %x = v4.mtp.input %e, %h
          : (tensor<2x?x64xbf16>, tensor<2x?x4x64xbf16>) -> tensor<2x?x4x64xbf16>
      return %x : tensor<2x?x4x64xbf16>
    })"));
  const int64_t B = 2, T = 21, n = 4, d = 64;
  auto e = randomBf16(B * T * d, 221), h = randomBf16(B * T * n * d, 222, 3.0f);
  std::vector<uint16_t> xe(h.size()), xm(h.size());
  auto de = describe<3>(e.data(), {B, T, d});
  auto dh = describe<4>(h.data(), {B, T, n, d});
  auto dxe = describe<4>(xe.data(), {B, T, n, d});
  auto dxm = describe<4>(xm.data(), {B, T, n, d});
  ex.run({&de, &dxe});
  mtp.run({&de, &dh, &dxm});
  auto E = dec(e), Hf = dec(h);
  Vec we(h.size()), wm(h.size());
  for (int64_t t = 0; t < B * T; ++t)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t c = 0; c < d; ++c) {
        we[(t * n + i) * d + c] = E[t * d + c];
        wm[(t * n + i) * d + c] =
            ref::bf(E[t * d + c] + Hf[(t * n + i) * d + c]);
      }
  Cmp c1("mhc.expand");
  c1.addBf16(xe, we);
  c1.expectExact();
  Cmp c2("mtp.input");
  c2.addBf16(xm, wm);
  c2.expectExact();
}

//===----------------------------------------------------------------------===//
// MoE
//===----------------------------------------------------------------------===//

TEST(CPUKernelVsReference, MoEGateAndHashGate) {
  // T1: 6 experts, top-2, route scale 1.5, sqrtsoftplus; logits as the
  // reference computes them (ref::linear, bf16 weight, fp32 out), then
  // ref::scoreGate (with bias) / ref::hashGate. Ids and weights exact.
  const int64_t B = 2, T = 21, BT = B * T, E = 6, d = 64, K = 2;
  auto x = randomBf16(BT * d, 231, 2.0f);
  QW gw = makeWeight("bf16", E, d, 232);
  Vec bias = normal(E, 233, 0.5f);
  std::vector<int64_t> tok(BT);
  std::mt19937 rng(234);
  for (auto &t : tok)
    t = int64_t(rng() % 97);
  std::vector<int32_t> tab(97 * K);
  for (int64_t v = 0; v < 97; ++v) {
    std::vector<int32_t> perm(E);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int64_t j = 0; j < K; ++j)
      tab[v * K + j] = perm[j];
  }
  CompiledKernel kg, kh;
  ASSERT_NO_FATAL_FAILURE(kg.compile(R"(
    func.func @f(%x: tensor<2x?x64xbf16>, %w: tensor<6x64xbf16>, %b: tensor<6xf32>)
        -> (tensor<2x?x2xf32>, tensor<2x?x2xi64>) {
      %rw, %ri = v4.moe.gate %x, %w bias %b scoreFunc sqrtsoftplus topK 2 routeScale 1.5
          : tensor<2x?x64xbf16>, tensor<6x64xbf16>, tensor<6xf32>
          -> tensor<2x?x2xf32>, tensor<2x?x2xi64>
      return %rw, %ri : tensor<2x?x2xf32>, tensor<2x?x2xi64>
    })"));
  ASSERT_NO_FATAL_FAILURE(kh.compile(R"(
    func.func @f(%x: tensor<2x?x64xbf16>, %w: tensor<6x64xbf16>,
                 %ids: tensor<2x?xi64>, %tab: tensor<97x2xi32>)
        -> (tensor<2x?x2xf32>, tensor<2x?x2xi64>) {
      %rw, %ri = v4.moe.hash_gate %x, %w, %ids, %tab
          scoreFunc sqrtsoftplus routeScale 1.5
          : tensor<2x?x64xbf16>, tensor<6x64xbf16>, tensor<2x?xi64>,
            tensor<97x2xi32> -> tensor<2x?x2xf32>, tensor<2x?x2xi64>
      return %rw, %ri : tensor<2x?x2xf32>, tensor<2x?x2xi64>
    })"));
  Vec rw(BT * K), hw(BT * K);
  std::vector<int64_t> ri(BT * K), hi(BT * K);
  auto dx = describe<3>(x.data(), {B, T, d});
  auto dw = describe<2>(gw.bytes.data(), {E, d});
  auto db = describe<1>(bias.data(), {E});
  auto drw = describe<3>(rw.data(), {B, T, K});
  auto dri = describe<3>(ri.data(), {B, T, K});
  kg.run({&dx, &dw, &db, &drw, &dri});
  auto dt = describe<2>(tok.data(), {B, T});
  auto dtab = describe<2>(tab.data(), {97, K});
  auto dhw = describe<3>(hw.data(), {B, T, K});
  auto dhi = describe<3>(hi.data(), {B, T, K});
  kh.run({&dx, &dw, &dt, &dtab, &dhw, &dhi});
  auto xf = dec(x);
  Vec wantW(BT * K), wantHW(BT * K);
  std::vector<int64_t> wantI(BT * K), wantHI(BT * K);
  for (int64_t t = 0; t < BT; ++t) {
    Vec z(E);
    ref::linear(gw.w, xf.data() + t * d, z.data(), false, 128, true);
    Vec s = ref::sqrtSoftplus(z);
    auto g = ref::scoreGate(s, bias, K, 1.5f);
    std::vector<int64_t> row(tab.begin() + tok[t] * K,
                             tab.begin() + (tok[t] + 1) * K);
    auto hg = ref::hashGate(s, row.data(), K, 1.5f);
    for (int64_t j = 0; j < K; ++j) {
      wantI[t * K + j] = g.ids[j];
      wantW[t * K + j] = g.weights[j];
      wantHI[t * K + j] = hg.ids[j];
      wantHW[t * K + j] = hg.weights[j];
    }
  }
  EXPECT_EQ(ri, wantI);
  EXPECT_EQ(hi, wantHI);
  // Weights: both take log1p(v) as log(u) v / (u - 1), u = 1 + v, with the
  // same log: exact (with std::log1p in the reference, 9 of 84 gate weights
  // differed in the last bit).
  EXPECT_EQ(rw, wantW);
  EXPECT_EQ(hw, wantHW);
}

/// moe.experts with FP4 weights (E experts, top-K, swiglu limit 0.7) on T
/// hand-routed tokens of d, inter I, compiled under `moduleAttrs`: the
/// kernel's slot outputs `ye` and ref::expert's per slot (`want`, with the
/// activation quantised when `quantAct`). Seeds from `seed`.
struct FP4ExpertsRun {
  std::vector<uint16_t> x, ye;
  Vec rw, want;
  std::vector<int64_t> ri;
};
void runFP4Experts(int64_t T, int64_t d, int64_t I, int64_t E, int64_t K,
                   const std::string &moduleAttrs, bool quantAct, uint64_t seed,
                   FP4ExpertsRun &out) {
  std::string tw13 = tensor({E, I, d}, "f4E2M1FN"),
              tw2 = tensor({E, d, I}, "f4E2M1FN"),
              ts13 = tensor({E, I, d / 32}, "f8E8M0FNU"),
              ts2 = tensor({E, d, I / 32}, "f8E8M0FNU");
  std::string tx = tensor({1, -1, d}, "bf16"), trw = tensor({1, -1, K}, "f32"),
              tri = tensor({1, -1, K}, "i64"),
              ty = tensor({1, -1, K, d}, "bf16");
  CompiledKernel ke;
  ASSERT_NO_FATAL_FAILURE(ke.compile(
      "module attributes {" + moduleAttrs + "} {\nfunc.func @f(%x: " + tx +
      ", %rw: " + trw + ", %ri: " + tri + ", %w1: " + tw13 + ", %w3: " + tw13 +
      ", %w2: " + tw2 + ", %s1: " + ts13 + ", %s3: " + ts13 + ", %s2: " + ts2 +
      ") -> " + ty +
      " {\n  %y = v4.moe.experts %x, %rw, %ri w1 %w1 scale %s1, w3 %w3 scale "
      "%s3, w2 %w2 scale %s2 swigluLimit 0.7 : (" +
      tx + ", " + trw + ", " + tri + ", " + tw13 + ", " + tw13 + ", " + tw2 +
      ", " + ts13 + ", " + ts13 + ", " + ts2 + ") -> " + ty +
      "\n  return %y : " + ty + "\n}\n}"));
  std::vector<ref::ExpertWeights> ew(E);
  std::vector<uint8_t> b1, b3, b2, c1, c3, c2;
  auto app = [](std::vector<uint8_t> &dst, const std::vector<uint8_t> &src) {
    dst.insert(dst.end(), src.begin(), src.end());
  };
  for (int64_t e = 0; e < E; ++e) {
    QW w1 = makeWeight("fp4", I, d, seed + e),
       w3 = makeWeight("fp4", I, d, seed + 10 + e),
       w2 = makeWeight("fp4", d, I, seed + 20 + e);
    app(b1, w1.bytes);
    app(b3, w3.bytes);
    app(b2, w2.bytes);
    app(c1, w1.scales);
    app(c3, w3.scales);
    app(c2, w2.scales);
    ew[e] = {w1.w, w2.w, w3.w};
  }
  out.x = randomBf16(T * d, seed + 30, 2.0f);
  out.rw.resize(T * K);
  out.ri.resize(T * K);
  std::mt19937 rng(seed + 31);
  std::uniform_real_distribution<float> u(0.2f, 1.3f);
  for (int64_t t = 0; t < T; ++t) {
    std::vector<int64_t> perm(E);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int64_t j = 0; j < K; ++j) {
      out.ri[t * K + j] = perm[j];
      out.rw[t * K + j] = u(rng);
    }
  }
  out.ye.assign(T * K * d, 0);
  auto dx = describe<3>(out.x.data(), {1, T, d});
  auto drw = describe<3>(out.rw.data(), {1, T, K});
  auto dri = describe<3>(out.ri.data(), {1, T, K});
  auto dw1 = describe<3>(b1.data(), {E, I, d / 2});
  auto dw3 = describe<3>(b3.data(), {E, I, d / 2});
  auto dw2 = describe<3>(b2.data(), {E, d, I / 2});
  auto ds1 = describe<3>(c1.data(), {E, I, d / 32});
  auto ds3 = describe<3>(c3.data(), {E, I, d / 32});
  auto ds2 = describe<3>(c2.data(), {E, d, I / 32});
  auto dye = describe<4>(out.ye.data(), {1, T, K, d});
  ke.run({&dx, &drw, &dri, &dw1, &dw3, &dw2, &ds1, &ds3, &ds2, &dye});
  auto xf = dec(out.x);
  out.want.assign(T * K * d, 0.0f);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < K; ++j)
      ref::expert(ew[out.ri[t * K + j]], xf.data() + t * d, 0.7f,
                  &out.rw[t * K + j], quantAct,
                  out.want.data() + (t * K + j) * d);
}

TEST(CPUKernelVsReference, MoEExpertsUnquantisedActivations) {
  // moe.experts under v4.fake_quant "none" (4 experts, top-2, d 256 and
  // inter 128: 8 and 4 slices of 32): per slot ref::expert without
  // quantAct, exact.
  FP4ExpertsRun r;
  ASSERT_NO_FATAL_FAILURE(runFP4Experts(37, 256, 128, 4, 2,
                                        "v4.fake_quant = \"none\"",
                                        /*quantAct=*/false, 400, r));
  Cmp c("moe.experts fp4 unquantised");
  c.addBf16(r.ye, r.want);
  c.expectExact();
}

TEST(CPUKernelVsReference, MoESharedExpertUnquantisedActivations) {
  // moe.shared_expert (FP8, d 384 and inter 256: 3 and 2 blocks of 128)
  // under v4.fake_quant "none": ref::expert without quantAct, exact.
  const int64_t T = 37, d = 384, I = 256;
  std::string sw13 = tensor({I, d}, "f8E4M3FN"),
              sw2 = tensor({d, I}, "f8E4M3FN"),
              ss13 = tensor({I / 128, d / 128}, "f8E8M0FNU"),
              ss2 = tensor({d / 128, I / 128}, "f8E8M0FNU"),
              sx = tensor({-1, d}, "bf16");
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(
      "module attributes {v4.fake_quant = \"none\"} {\nfunc.func @f(%x: " + sx +
      ", %w1: " + sw13 + ", %w3: " + sw13 + ", %w2: " + sw2 + ", %s1: " + ss13 +
      ", %s3: " + ss13 + ", %s2: " + ss2 + ") -> " + sx +
      " {\n  %y = v4.moe.shared_expert %x w1 %w1 scale %s1, w3 %w3 scale %s3, "
      "w2 %w2 scale %s2 swigluLimit 0.7 : (" +
      sx + ", " + sw13 + ", " + sw13 + ", " + sw2 + ", " + ss13 + ", " + ss13 +
      ", " + ss2 + ") -> " + sx + "\n  return %y : " + sx + "\n}\n}"));
  QW w1 = makeWeight("fp8", I, d, 440), w3 = makeWeight("fp8", I, d, 441),
     w2 = makeWeight("fp8", d, I, 442);
  auto x = randomBf16(T * d, 443, 2.0f);
  std::vector<uint16_t> y(T * d);
  auto dx = describe<2>(x.data(), {T, d});
  auto dw1 = describe<2>(w1.bytes.data(), {I, d});
  auto dw3 = describe<2>(w3.bytes.data(), {I, d});
  auto dw2 = describe<2>(w2.bytes.data(), {d, I});
  auto ds1 = describe<2>(w1.scales.data(), {I / 128, d / 128});
  auto ds3 = describe<2>(w3.scales.data(), {I / 128, d / 128});
  auto ds2 = describe<2>(w2.scales.data(), {d / 128, I / 128});
  auto dy = describe<2>(y.data(), {T, d});
  k.run({&dx, &dw1, &dw3, &dw2, &ds1, &ds3, &ds2, &dy});
  auto xf = dec(x);
  Vec want(T * d);
  ref::ExpertWeights sw{w1.w, w2.w, w3.w};
  for (int64_t t = 0; t < T; ++t)
    ref::expert(sw, xf.data() + t * d, 0.7f, nullptr, /*quantAct=*/false,
                want.data() + t * d);
  Cmp c("moe.shared_expert fp8 unquantised");
  c.addBf16(y, want);
  c.expectExact();
}

TEST(CPUKernelVsReference, MoEExpertsFp4SharedFp8Combine) {
  // moe.experts (FP4, 6 experts, top-2, inter 32 -> 64 here so FP4 rows
  // are whole 32-blocks, swiglu limit 0.7): per slot, the ref::expert
  // output of the selected expert. moe.shared_expert (FP8): ref::expert
  // without weight. moe.combine on the kernels' own outputs:
  // ref::moeCombine over the slots in order. All exact.
  const int64_t T = 21, d = 64, I = 64, K = 2;
  const float limit = 0.7f;
  FP4ExpertsRun r;
  ASSERT_NO_FATAL_FAILURE(
      runFP4Experts(T, d, I, 6, K, "", /*quantAct=*/true, 300, r));
  std::vector<uint16_t> &x = r.x, &ye = r.ye;

  // Shared expert, FP8 (128x128 blocks over 64x64: one partial block).
  std::string sw13 = tensor({I, d}, "f8E4M3FN"),
              sw2 = tensor({d, I}, "f8E4M3FN"),
              ss = tensor({1, 1}, "f8E8M0FNU"), sx = tensor({-1, d}, "bf16");
  CompiledKernel ksh;
  ASSERT_NO_FATAL_FAILURE(ksh.compile(
      "func.func @f(%x: " + sx + ", %w1: " + sw13 + ", %w3: " + sw13 +
      ", %w2: " + sw2 + ", %s1: " + ss + ", %s3: " + ss + ", %s2: " + ss +
      ") -> " + sx +
      " {\n  %y = v4.moe.shared_expert %x w1 %w1 scale %s1, w3 %w3 scale %s3, "
      "w2 %w2 scale %s2 swigluLimit 0.7 : (" +
      sx + ", " + sw13 + ", " + sw13 + ", " + sw2 + ", " + ss + ", " + ss +
      ", " + ss + ") -> " + sx + "\n  return %y : " + sx + "\n}"));
  QW s1 = makeWeight("fp8", I, d, 340), s3 = makeWeight("fp8", I, d, 341),
     s2 = makeWeight("fp8", d, I, 342);
  std::vector<uint16_t> ysh(T * d);
  auto dsx = describe<2>(x.data(), {T, d});
  auto dsw1 = describe<2>(s1.bytes.data(), {I, d});
  auto dsw3 = describe<2>(s3.bytes.data(), {I, d});
  auto dsw2 = describe<2>(s2.bytes.data(), {d, I});
  auto dss1 = describe<2>(s1.scales.data(), {1, 1});
  auto dss3 = describe<2>(s3.scales.data(), {1, 1});
  auto dss2 = describe<2>(s2.scales.data(), {1, 1});
  auto dysh = describe<2>(ysh.data(), {T, d});
  ksh.run({&dsx, &dsw1, &dsw3, &dsw2, &dss1, &dss3, &dss2, &dysh});

  CompiledKernel kc;
  ASSERT_NO_FATAL_FAILURE(kc.compile(R"(
    func.func @f(%r: tensor<1x?x2x64xbf16>, %s: tensor<1x?x64xbf16>) -> tensor<1x?x64xbf16> {
      %y = v4.moe.combine %r, %s
          : tensor<1x?x2x64xbf16>, tensor<1x?x64xbf16> -> tensor<1x?x64xbf16>
      return %y : tensor<1x?x64xbf16>
    })"));
  std::vector<uint16_t> yc(T * d);
  auto dr = describe<4>(ye.data(), {1, T, K, d});
  auto dsh = describe<3>(ysh.data(), {1, T, d});
  auto dyc = describe<3>(yc.data(), {1, T, d});
  kc.run({&dr, &dsh, &dyc});

  auto xf = dec(x), shf = dec(ysh), yef = dec(ye);
  Vec wantS(T * d), wantC(T * d);
  ref::ExpertWeights sw{s1.w, s2.w, s3.w};
  for (int64_t t = 0; t < T; ++t) {
    ref::expert(sw, xf.data() + t * d, limit, nullptr, true,
                wantS.data() + t * d);
    std::vector<const float *> slots;
    for (int64_t j = 0; j < K; ++j)
      slots.push_back(yef.data() + (t * K + j) * d);
    ref::moeCombine(slots, shf.data() + t * d, d, wantC.data() + t * d);
  }
  Cmp ce("moe.experts fp4");
  ce.addBf16(ye, r.want);
  ce.expectExact();
  Cmp cs("moe.shared_expert fp8");
  cs.addBf16(ysh, wantS);
  cs.expectExact();
  Cmp cc("moe.combine");
  cc.addBf16(yc, wantC);
  cc.expectExact();
}

} // namespace
