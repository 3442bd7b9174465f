//===- CPUKernelMoEHyperConnTest.cpp - CPU kernels of mHC, MTP and MoE against
// V4-SPEC ---===//
//
// Each kernel is compared with an oracle written in this file from the
// V4-SPEC formulas, with the same rounding points and fp32 accumulation
// order. Tolerances (V4-SPEC 2.6): integers exact; bf16 results <= 2 bf16
// ulps elementwise (and few values off at all); fp32 results 1e-5 relative.
//
//===----------------------------------------------------------------------===//
#include "test/lib/CPUKernelHarness.h"

#include <algorithm>
#include <numeric>

using namespace v4test;
namespace q = ::v4::quant;

namespace {

float bf(float x) { return q::roundBF16(x); }
float sigm(float x) { return 1.0f / (1.0f + std::exp(-x)); }

std::vector<float> decodeAll(const std::vector<uint16_t> &v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    out[i] = decodeBF16(v[i]);
  return out;
}

std::vector<float> normal(size_t n, uint64_t seed, float sd, float mean = 0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(mean, sd);
  std::vector<float> v(n);
  for (auto &x : v)
    x = dist(rng);
  return v;
}

/// bf16 results: every value within 2 ulps (relative 2^-7, V4-SPEC 2.6) of
/// the oracle; returns how many differ at all.
int expectBf16Close(const std::vector<uint16_t> &got,
                    const std::vector<float> &want, const char *what) {
  int off = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    float g = decodeBF16(got[i]), w = want[i];
    EXPECT_LE(std::fabs(g - w), std::ldexp(std::fabs(w), -7) + 1e-30f)
        << what << " element " << i << ": got " << g << ", want " << w;
    off += g != w;
  }
  return off;
}

/// fp32 results: normwise relative error; returns it.
double relErr(const float *got, const float *want, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num += double(got[i] - want[i]) * double(got[i] - want[i]);
    den += double(want[i]) * double(want[i]);
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

//===----------------------------------------------------------------------===//
// mHC
//===----------------------------------------------------------------------===//

TEST(CPUKernels, SinkhornColumnsSumToOne) {
  // V4-SPEC 11.2 item 1: columns sum to 1 within ~1e-6; constant -> 0.25.
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%c: tensor<3x4x4xf32>) -> tensor<3x4x4xf32> {
      %p = v4.mhc.sinkhorn %c {iters = 20 : i64, eps = 1.0e-6 : f64} : tensor<3x4x4xf32>
      return %p : tensor<3x4x4xf32>
    })"));
  std::vector<float> in(3 * 16), out(3 * 16, 0.0f);
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0.0f, 1.0f);
  for (int i = 0; i < 32; ++i)
    in[i] = n(rng);
  for (int i = 32; i < 48; ++i)
    in[i] = 0.7f; // constant logits
  auto din = describe<3>(in.data(), {3, 4, 4});
  auto dout = describe<3>(out.data(), {3, 4, 4});
  k.run({&din, &dout});
  for (int m = 0; m < 3; ++m)
    for (int col = 0; col < 4; ++col) {
      float s = 0;
      for (int row = 0; row < 4; ++row)
        s += out[m * 16 + row * 4 + col];
      EXPECT_NEAR(s, 1.0f, 1e-5f) << "matrix " << m << " column " << col;
    }
  for (int e = 32; e < 48; ++e)
    EXPECT_NEAR(out[e], 0.25f, 1e-6f);
}

TEST(CPUKernels, MhcExpandCopiesLanes) {
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%e: tensor<2x?x8xbf16>) -> tensor<2x?x4x8xbf16> {
      %x = v4.mhc.expand %e : tensor<2x?x8xbf16> -> tensor<2x?x4x8xbf16>
      return %x : tensor<2x?x4x8xbf16>
    })"));
  const int64_t B = 2, T = 3, n = 4, d = 8;
  auto e = randomBf16(B * T * d, 11);
  std::vector<uint16_t> x(B * T * n * d, 0);
  auto de = describe<3>(e.data(), {B, T, d});
  auto dx = describe<4>(x.data(), {B, T, n, d});
  k.run({&de, &dx});
  for (int64_t t = 0; t < B * T; ++t)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t c = 0; c < d; ++c)
        EXPECT_EQ(x[(t * n + i) * d + c], e[t * d + c]);
}

/// Oracle of V4-SPEC 4.1 steps 1-2 for one token: mixes m [M].
std::vector<float> mixes(const float *X, int64_t nd, const float *fn,
                         int64_t M) {
  float ss = 0;
  for (int64_t c = 0; c < nd; ++c)
    ss += X[c] * X[c];
  float rho = 1.0f / std::sqrt(ss / float(nd) + 1e-6f);
  std::vector<float> m(M);
  for (int64_t i = 0; i < M; ++i) {
    float acc = 0;
    for (int64_t c = 0; c < nd; ++c)
      acc += X[c] * fn[i * nd + c];
    m[i] = acc * rho;
  }
  return m;
}

/// Oracle of V4-SPEC 4.2 step 4 (Sinkhorn, in place on C [n*n]).
void sinkhorn(float *C, int n, int iters, float eps) {
  for (int j = 0; j < n; ++j) {
    float mx = C[j * n];
    for (int k = 1; k < n; ++k)
      mx = std::max(mx, C[j * n + k]);
    float s = 0;
    std::vector<float> ex(n);
    for (int k = 0; k < n; ++k)
      s += ex[k] = std::exp(C[j * n + k] - mx);
    for (int k = 0; k < n; ++k)
      C[j * n + k] = ex[k] / s + eps;
  }
  auto cols = [&] {
    for (int k = 0; k < n; ++k) {
      float s = 0;
      for (int j = 0; j < n; ++j)
        s += C[j * n + k];
      for (int j = 0; j < n; ++j)
        C[j * n + k] /= (s + eps);
    }
  };
  auto rows = [&] {
    for (int j = 0; j < n; ++j) {
      float s = 0;
      for (int k = 0; k < n; ++k)
        s += C[j * n + k];
      for (int k = 0; k < n; ++k)
        C[j * n + k] /= (s + eps);
    }
  };
  cols();
  for (int it = 1; it < iters; ++it) {
    rows();
    cols();
  }
}

const char *kPreSource = R"(
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
    })";

TEST(CPUKernels, MhcPreMatchesSpec) {
  // V4-SPEC 4.1-4.3: rms over n*d, mixes, split, Sinkhorn, y = sum pre_j X_j.
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(kPreSource));
  const int64_t B = 2, T = 3, n = 4, d = 64, nd = n * d, M = 24;
  auto x = randomBf16(B * T * nd, 21, 2.0f);
  auto fn = normal(M * nd, 22, 1.0f / std::sqrt(float(nd)));
  auto base = normal(M, 23, 0.5f);
  std::vector<float> scale = {0.6f, 0.8f, 0.9f};
  std::vector<uint16_t> y(B * T * d, 0);
  std::vector<float> post(B * T * n), comb(B * T * n * n);
  auto dx = describe<4>(x.data(), {B, T, n, d});
  auto dfn = describe<2>(fn.data(), {M, nd});
  auto dbase = describe<1>(base.data(), {M});
  auto dscale = describe<1>(scale.data(), {3});
  auto dy = describe<3>(y.data(), {B, T, d});
  auto dpost = describe<3>(post.data(), {B, T, n});
  auto dcomb = describe<4>(comb.data(), {B, T, n, n});
  k.run({&dx, &dfn, &dbase, &dscale, &dy, &dpost, &dcomb});

  auto X = decodeAll(x);
  std::vector<float> wantY(B * T * d), wantPost(B * T * n),
      wantComb(B * T * n * n);
  for (int64_t t = 0; t < B * T; ++t) {
    const float *Xt = X.data() + t * nd;
    auto m = mixes(Xt, nd, fn.data(), M);
    float pre[4];
    for (int j = 0; j < n; ++j) {
      pre[j] = sigm(m[j] * scale[0] + base[j]) + 1e-6f;
      wantPost[t * n + j] = 2.0f * sigm(m[n + j] * scale[1] + base[n + j]);
    }
    float *C = wantComb.data() + t * n * n;
    for (int e = 0; e < n * n; ++e)
      C[e] = m[2 * n + e] * scale[2] + base[2 * n + e];
    sinkhorn(C, n, 20, 1e-6f);
    for (int64_t c = 0; c < d; ++c) {
      float acc = 0;
      for (int j = 0; j < n; ++j)
        acc += pre[j] * Xt[j * d + c];
      wantY[t * d + c] = bf(acc);
    }
  }
  double ePost = relErr(post.data(), wantPost.data(), post.size());
  double eComb = relErr(comb.data(), wantComb.data(), comb.size());
  EXPECT_LE(ePost, 1e-5);
  EXPECT_LE(eComb, 1e-5);
  int off = expectBf16Close(y, wantY, "y");
  EXPECT_LE(off, int(wantY.size()) / 50);
  std::printf("[mhc.pre] post rel %.2e, comb rel %.2e, y: %d/%zu values off "
              "by <= 2 ulps\n",
              ePost, eComb, off, wantY.size());
}

TEST(CPUKernels, MhcPrePostIdentity) {
  // V4-SPEC 11.2 item 2: fn = 0, base chosen so that pre ~ e_0 and comb ~ I:
  // y = lane 0; post = 2 sigmoid(0) = 1, so hc_post gives X'_k = o + X_k.
  CompiledKernel pre, post;
  ASSERT_NO_FATAL_FAILURE(pre.compile(kPreSource));
  ASSERT_NO_FATAL_FAILURE(post.compile(R"(
    func.func @f(%o: tensor<2x?x64xbf16>, %x: tensor<2x?x4x64xbf16>,
                 %p: tensor<2x?x4xf32>, %c: tensor<2x?x4x4xf32>)
        -> tensor<2x?x4x64xbf16> {
      %r = v4.mhc.post %o, %x, %p, %c
          : (tensor<2x?x64xbf16>, tensor<2x?x4x64xbf16>, tensor<2x?x4xf32>,
             tensor<2x?x4x4xf32>) -> tensor<2x?x4x64xbf16>
      return %r : tensor<2x?x4x64xbf16>
    })"));
  const int64_t B = 2, T = 2, n = 4, d = 64, nd = n * d, M = 24;
  auto x = randomBf16(B * T * nd, 31, 2.0f);
  std::vector<float> fn(M * nd, 0.0f), base(M, 0.0f), scale = {1, 1, 1};
  base[0] = 40.0f; // pre_0 = 1 + eps, the others ~eps
  for (int j = 1; j < n; ++j)
    base[j] = -40.0f;
  for (int j = 0; j < n; ++j)
    for (int kk = 0; kk < n; ++kk)
      base[2 * n + j * n + kk] = j == kk ? 40.0f : -40.0f;
  std::vector<uint16_t> y(B * T * d, 0);
  std::vector<float> p(B * T * n), comb(B * T * n * n);
  auto dx = describe<4>(x.data(), {B, T, n, d});
  auto dfn = describe<2>(fn.data(), {M, nd});
  auto dbase = describe<1>(base.data(), {M});
  auto dscale = describe<1>(scale.data(), {3});
  auto dy = describe<3>(y.data(), {B, T, d});
  auto dp = describe<3>(p.data(), {B, T, n});
  auto dcomb = describe<4>(comb.data(), {B, T, n, n});
  pre.run({&dx, &dfn, &dbase, &dscale, &dy, &dp, &dcomb});
  for (int64_t t = 0; t < B * T; ++t) {
    for (int64_t c = 0; c < d; ++c)
      EXPECT_EQ(y[t * d + c], x[t * nd + c]) << "token " << t << " col " << c;
    for (int j = 0; j < n; ++j) {
      EXPECT_FLOAT_EQ(p[t * n + j], 1.0f);
      for (int kk = 0; kk < n; ++kk)
        EXPECT_NEAR(comb[(t * n + j) * n + kk], j == kk ? 1.0f : 0.0f, 1e-5f);
    }
  }
  auto o = randomBf16(B * T * d, 32);
  std::vector<uint16_t> out(B * T * nd, 0);
  auto dout = describe<4>(out.data(), {B, T, n, d});
  auto dox = describe<3>(o.data(), {B, T, d});
  post.run({&dox, &dx, &dp, &dcomb, &dout});
  for (int64_t t = 0; t < B * T; ++t)
    for (int kk = 0; kk < n; ++kk)
      for (int64_t c = 0; c < d; ++c) {
        float want =
            bf(decodeBF16(o[t * d + c]) + decodeBF16(x[(t * n + kk) * d + c]));
        float got = decodeBF16(out[(t * n + kk) * d + c]);
        // comb is I only up to ~eps off the diagonal: ~1e-6 * |X_j| leaks.
        EXPECT_LE(std::fabs(got - want),
                  std::ldexp(std::fabs(want), -7) + 1e-5f);
      }
}

TEST(CPUKernels, MhcPostContractsOverInputLane) {
  // V4-SPEC 4.3 / 11.2 item 1: X'_k = post_k o + sum_j C_jk X_j with a
  // non-symmetric C (the transposed contraction would fail).
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%o: tensor<1x?x32xbf16>, %x: tensor<1x?x4x32xbf16>,
                 %p: tensor<1x?x4xf32>, %c: tensor<1x?x4x4xf32>)
        -> tensor<1x?x4x32xbf16> {
      %r = v4.mhc.post %o, %x, %p, %c
          : (tensor<1x?x32xbf16>, tensor<1x?x4x32xbf16>, tensor<1x?x4xf32>,
             tensor<1x?x4x4xf32>) -> tensor<1x?x4x32xbf16>
      return %r : tensor<1x?x4x32xbf16>
    })"));
  const int64_t T = 5, n = 4, d = 32;
  auto o = randomBf16(T * d, 41), x = randomBf16(T * n * d, 42, 3.0f);
  std::vector<float> p(T * n), C(T * n * n);
  std::mt19937 rng(43);
  std::uniform_real_distribution<float> u(0.0f, 2.0f);
  for (auto &v : p)
    v = u(rng);
  for (auto &v : C)
    v = u(rng) * 0.5f; // not symmetric
  std::vector<uint16_t> out(T * n * d, 0);
  auto dO = describe<3>(o.data(), {1, T, d});
  auto dX = describe<4>(x.data(), {1, T, n, d});
  auto dP = describe<3>(p.data(), {1, T, n});
  auto dC = describe<4>(C.data(), {1, T, n, n});
  auto dOut = describe<4>(out.data(), {1, T, n, d});
  k.run({&dO, &dX, &dP, &dC, &dOut});
  std::vector<float> want(T * n * d);
  for (int64_t t = 0; t < T; ++t)
    for (int kk = 0; kk < n; ++kk)
      for (int64_t c = 0; c < d; ++c) {
        float mix = 0;
        for (int j = 0; j < n; ++j)
          mix += C[(t * n + j) * n + kk] * decodeBF16(x[(t * n + j) * d + c]);
        want[(t * n + kk) * d + c] =
            bf(p[t * n + kk] * decodeBF16(o[t * d + c]) + mix);
      }
  int off = expectBf16Close(out, want, "post");
  EXPECT_EQ(off, 0) << "same fp32 order: expected bit-exact";
  std::printf("[mhc.post] %d/%zu values off\n", off, want.size());
}

TEST(CPUKernels, MhcHeadMatchesSpec) {
  // V4-SPEC 4.4: w_j = sigmoid(m_j scale + base_j) + eps, y = sum w_j X_j.
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%x: tensor<1x?x4x64xbf16>, %fn: tensor<4x256xf32>,
                 %base: tensor<4xf32>, %scale: tensor<1xf32>)
        -> tensor<1x?x64xbf16> {
      %y = v4.mhc.head %x, %fn, %base, %scale
          : (tensor<1x?x4x64xbf16>, tensor<4x256xf32>, tensor<4xf32>,
             tensor<1xf32>) -> tensor<1x?x64xbf16>
      return %y : tensor<1x?x64xbf16>
    })"));
  const int64_t T = 4, n = 4, d = 64, nd = n * d;
  auto x = randomBf16(T * nd, 51, 2.0f);
  auto fn = normal(n * nd, 52, 1.0f / std::sqrt(float(nd)));
  auto base = normal(n, 53, 0.5f);
  std::vector<float> scale = {0.7f};
  std::vector<uint16_t> y(T * d, 0);
  auto dx = describe<4>(x.data(), {1, T, n, d});
  auto dfn = describe<2>(fn.data(), {n, nd});
  auto dbase = describe<1>(base.data(), {n});
  auto dscale = describe<1>(scale.data(), {1});
  auto dy = describe<3>(y.data(), {1, T, d});
  k.run({&dx, &dfn, &dbase, &dscale, &dy});
  auto X = decodeAll(x);
  std::vector<float> want(T * d);
  for (int64_t t = 0; t < T; ++t) {
    const float *Xt = X.data() + t * nd;
    auto m = mixes(Xt, nd, fn.data(), n);
    float w[4];
    for (int j = 0; j < n; ++j)
      w[j] = sigm(m[j] * scale[0] + base[j]) + 1e-6f;
    for (int64_t c = 0; c < d; ++c) {
      float acc = 0;
      for (int j = 0; j < n; ++j)
        acc += w[j] * Xt[j * d + c];
      want[t * d + c] = bf(acc);
    }
  }
  int off = expectBf16Close(y, want, "head");
  EXPECT_LE(off, int(want.size()) / 50);
  std::printf("[mhc.head] %d/%zu values off by <= 2 ulps\n", off, want.size());
}

TEST(CPUKernels, MtpInputIsOneBf16Add) {
  // V4-SPEC 7.1 step 2: X'_i = bf16(e + h_i), e broadcast over the lanes.
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%e: tensor<1x?x16xbf16>, %h: tensor<1x?x4x16xbf16>)
        -> tensor<1x?x4x16xbf16> {
      %x = v4.mtp.input %e, %h
          : (tensor<1x?x16xbf16>, tensor<1x?x4x16xbf16>) -> tensor<1x?x4x16xbf16>
      return %x : tensor<1x?x4x16xbf16>
    })"));
  const int64_t T = 3, n = 4, d = 16;
  auto e = randomBf16(T * d, 61), h = randomBf16(T * n * d, 62, 4.0f);
  std::vector<uint16_t> out(T * n * d, 0);
  auto de = describe<3>(e.data(), {1, T, d});
  auto dh = describe<4>(h.data(), {1, T, n, d});
  auto dout = describe<4>(out.data(), {1, T, n, d});
  k.run({&de, &dh, &dout});
  for (int64_t t = 0; t < T; ++t)
    for (int i = 0; i < n; ++i)
      for (int64_t c = 0; c < d; ++c) {
        int64_t li = (t * n + i) * d + c;
        EXPECT_EQ(out[li],
                  q::encodeBF16(decodeBF16(e[t * d + c]) + decodeBF16(h[li])));
      }
}

//===----------------------------------------------------------------------===//
// Gates
//===----------------------------------------------------------------------===//

float sqrtSoftplus(float z) {
  return std::sqrt(z > 20.0f ? z : std::log1p(std::exp(z)));
}

/// Oracle logits z[t][e] = fp32 dot of bf16 x and bf16 weight.
std::vector<float> gateLogits(const std::vector<float> &X,
                              const std::vector<float> &W, int64_t T, int64_t E,
                              int64_t d) {
  std::vector<float> z(T * E);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t e = 0; e < E; ++e) {
      float acc = 0;
      for (int64_t c = 0; c < d; ++c)
        acc += X[t * d + c] * W[e * d + c];
      z[t * E + e] = acc;
    }
  return z;
}

struct GateRun {
  std::vector<float> weights;
  std::vector<int64_t> ids;
};

GateRun runScoreGate(const std::string &scoreFunc, bool withBias,
                     const std::vector<uint16_t> &x,
                     const std::vector<uint16_t> &w, std::vector<float> bias,
                     int64_t T, int64_t E, int64_t d, int64_t K) {
  std::string src =
      "func.func @f(%x: tensor<?x" + std::to_string(d) + "xbf16>, %w: tensor<" +
      std::to_string(E) + "x" + std::to_string(d) + "xbf16>, %b: tensor<" +
      std::to_string(E) + "xf32>) -> (tensor<?x" + std::to_string(K) +
      "xf32>, tensor<?x" + std::to_string(K) +
      "xi64>) {\n  %rw, %ri = v4.moe.gate %x, %w " +
      (withBias ? "bias %b " : "") + "scoreFunc " + scoreFunc + " topK " +
      std::to_string(K) + " routeScale 1.5 : tensor<?x" + std::to_string(d) +
      "xbf16>, tensor<" + std::to_string(E) + "x" + std::to_string(d) +
      "xbf16>" + (withBias ? ", tensor<" + std::to_string(E) + "xf32>" : "") +
      " -> tensor<?x" + std::to_string(K) + "xf32>, tensor<?x" +
      std::to_string(K) + "xi64>\n  return %rw, %ri : tensor<?x" +
      std::to_string(K) + "xf32>, tensor<?x" + std::to_string(K) + "xi64>\n}";
  CompiledKernel k;
  k.compile(src);
  if (::testing::Test::HasFatalFailure())
    return {};
  GateRun r{std::vector<float>(T * K, -1.0f), std::vector<int64_t>(T * K, -1)};
  auto dx = describe<2>(const_cast<uint16_t *>(x.data()), {T, d});
  auto dw = describe<2>(const_cast<uint16_t *>(w.data()), {E, d});
  auto db = describe<1>(bias.data(), {E});
  auto drw = describe<2>(r.weights.data(), {T, K});
  auto dri = describe<2>(r.ids.data(), {T, K});
  if (withBias)
    k.run({&dx, &dw, &db, &drw, &dri});
  else
    k.run({&dx, &dw, &drw, &dri});
  return r;
}

TEST(CPUKernels, MoEGateMatchesSpec) {
  // V4-SPEC 6.1 / 11.2 item 10: sqrtsoftplus, top-k of s + bias, weights
  // s[idx] / sum * routeScale; the bias changes the selection, not the
  // weights; weights sum to routeScale.
  const int64_t T = 6, E = 16, d = 64, K = 4;
  auto x = randomBf16(T * d, 71, 2.0f), w = randomBf16(E * d, 72, 0.5f);
  auto bias = normal(E, 73, 0.5f);
  auto X = decodeAll(x), W = decodeAll(w);
  auto z = gateLogits(X, W, T, E, d);
  for (bool withBias : {true, false}) {
    SCOPED_TRACE(withBias ? "with bias" : "without bias");
    GateRun got =
        runScoreGate("sqrtsoftplus", withBias, x, w, bias, T, E, d, K);
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    int selectionChangedByBias = 0;
    for (int64_t t = 0; t < T; ++t) {
      std::vector<float> s(E), sb(E);
      for (int64_t e = 0; e < E; ++e) {
        s[e] = sqrtSoftplus(z[t * E + e]);
        sb[e] = s[e] + (withBias ? bias[e] : 0.0f);
      }
      std::vector<int64_t> order(E);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t a, int64_t b) { return sb[a] > sb[b]; });
      // Tie-free input: a margin between the k-th and (k+1)-th score.
      ASSERT_GT(sb[order[K - 1]] - sb[order[K]], 1e-4f);
      float sum = 0;
      for (int j = 0; j < K; ++j)
        sum += s[order[j]];
      float wsum = 0;
      for (int j = 0; j < K; ++j) {
        EXPECT_EQ(got.ids[t * K + j], order[j]) << "token " << t;
        float want = s[order[j]] / sum * 1.5f;
        EXPECT_NEAR(got.weights[t * K + j], want, 1e-5f * want);
        wsum += got.weights[t * K + j];
      }
      EXPECT_NEAR(wsum, 1.5f, 1e-5f);
      std::vector<float> plain(s);
      std::vector<int64_t> unbiased(E);
      std::iota(unbiased.begin(), unbiased.end(), 0);
      std::stable_sort(unbiased.begin(), unbiased.end(),
                       [&](int64_t a, int64_t b) { return s[a] > s[b]; });
      selectionChangedByBias += !std::is_permutation(
          unbiased.begin(), unbiased.begin() + K, order.begin());
    }
    if (withBias) {
      EXPECT_GT(selectionChangedByBias, 0) << "bias never changed a selection";
    }
  }
}

TEST(CPUKernels, MoEGateSigmoidAndSoftmax) {
  // The other score functions (V4MoEOps.td): sigmoid renormalises, softmax
  // does not (s[idx] * routeScale).
  const int64_t T = 4, E = 8, d = 32, K = 2;
  auto x = randomBf16(T * d, 81, 2.0f), w = randomBf16(E * d, 82, 0.5f);
  auto X = decodeAll(x), W = decodeAll(w);
  auto z = gateLogits(X, W, T, E, d);
  for (std::string f : {"sigmoid", "softmax"}) {
    SCOPED_TRACE(f);
    GateRun got = runScoreGate(f, false, x, w, {}, T, E, d, K);
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    for (int64_t t = 0; t < T; ++t) {
      std::vector<float> s(E);
      if (f == "sigmoid") {
        for (int64_t e = 0; e < E; ++e)
          s[e] = sigm(z[t * E + e]);
      } else {
        float mx = *std::max_element(&z[t * E], &z[t * E] + E), sum = 0;
        for (int64_t e = 0; e < E; ++e)
          sum += s[e] = std::exp(z[t * E + e] - mx);
        for (auto &v : s)
          v /= sum;
      }
      std::vector<int64_t> order(E);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t a, int64_t b) { return s[a] > s[b]; });
      ASSERT_GT(s[order[K - 1]] - s[order[K]], 1e-5f);
      float sum = s[order[0]] + s[order[1]];
      for (int j = 0; j < K; ++j) {
        EXPECT_EQ(got.ids[t * K + j], order[j]);
        float want =
            f == "softmax" ? s[order[j]] * 1.5f : s[order[j]] / sum * 1.5f;
        EXPECT_NEAR(got.weights[t * K + j], want, 1e-5f * want);
      }
    }
  }
}

TEST(CPUKernels, MoEHashGateUsesTable) {
  // V4-SPEC 6.1 / 11.2 item 10: ids = tid2eid[token id], weights from the
  // unbiased scores.
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%x: tensor<1x?x32xbf16>, %w: tensor<8x32xbf16>,
                 %ids: tensor<1x?xi64>, %tab: tensor<10x3xi32>)
        -> (tensor<1x?x3xf32>, tensor<1x?x3xi64>) {
      %rw, %ri = v4.moe.hash_gate %x, %w, %ids, %tab
          scoreFunc sqrtsoftplus routeScale 1.5
          : tensor<1x?x32xbf16>, tensor<8x32xbf16>, tensor<1x?xi64>,
            tensor<10x3xi32> -> tensor<1x?x3xf32>, tensor<1x?x3xi64>
      return %rw, %ri : tensor<1x?x3xf32>, tensor<1x?x3xi64>
    })"));
  const int64_t T = 5, E = 8, d = 32, K = 3, V = 10;
  auto x = randomBf16(T * d, 91, 2.0f), w = randomBf16(E * d, 92, 0.5f);
  std::vector<int64_t> ids = {7, 2, 2, 9, 0};
  std::vector<int32_t> tab(V * K);
  std::mt19937 rng(93);
  for (int64_t v = 0; v < V; ++v) {
    std::vector<int32_t> perm(E);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int j = 0; j < K; ++j)
      tab[v * K + j] = perm[j];
  }
  std::vector<float> rw(T * K);
  std::vector<int64_t> ri(T * K);
  auto dx = describe<3>(x.data(), {1, T, d});
  auto dw = describe<2>(w.data(), {E, d});
  auto dids = describe<2>(ids.data(), {1, T});
  auto dtab = describe<2>(tab.data(), {V, K});
  auto drw = describe<3>(rw.data(), {1, T, K});
  auto dri = describe<3>(ri.data(), {1, T, K});
  k.run({&dx, &dw, &dids, &dtab, &drw, &dri});
  auto z = gateLogits(decodeAll(x), decodeAll(w), T, E, d);
  for (int64_t t = 0; t < T; ++t) {
    float s[3], sum = 0;
    for (int j = 0; j < K; ++j) {
      int64_t e = tab[ids[t] * K + j];
      EXPECT_EQ(ri[t * K + j], e);
      sum += s[j] = sqrtSoftplus(z[t * E + e]);
    }
    for (int j = 0; j < K; ++j) {
      float want = s[j] / sum * 1.5f;
      EXPECT_NEAR(rw[t * K + j], want, 1e-5f * want);
    }
  }
}

//===----------------------------------------------------------------------===//
// Experts
//===----------------------------------------------------------------------===//

/// One quantised / bf16 weight matrix [rows, cols] of the oracle, with its
/// kernel-side storage (codes or bf16 bits, scales).
struct QWeight {
  int64_t rows, cols;
  std::vector<float> grid;    // element values without the scale
  std::vector<uint8_t> bytes; // FP8 codes, packed FP4, or bf16 bits (LE)
  std::vector<uint8_t> scales;
  std::string fmt;
};

QWeight makeWeight(const std::string &fmt, int64_t rows, int64_t cols,
                   uint64_t seed) {
  QWeight w{rows, cols, {}, {}, {}, fmt};
  auto v = normal(rows * cols, seed, 1.0f / std::sqrt(float(cols)));
  w.grid.resize(rows * cols);
  if (fmt == "fp8") {
    w.bytes.resize(rows * cols);
    w.scales.resize(((rows + 127) / 128) * ((cols + 127) / 128));
    q::quantizeFP8(v.data(), rows, cols, 128, 128, w.bytes.data(),
                   w.scales.data());
    for (int64_t i = 0; i < rows * cols; ++i)
      w.grid[i] = q::decodeE4M3(w.bytes[i]);
  } else if (fmt == "fp4") {
    w.bytes.resize(rows * cols / 2);
    w.scales.resize(rows * cols / 32);
    q::quantizeFP4(v.data(), rows, cols, 1, 32, w.bytes.data(),
                   w.scales.data());
    for (int64_t i = 0; i < rows * cols; ++i) {
      uint8_t byte = w.bytes[i / 2];
      w.grid[i] = q::decodeE2M1(i % 2 ? byte >> 4 : byte & 15);
    }
  } else {
    w.bytes.resize(rows * cols * 2);
    for (int64_t i = 0; i < rows * cols; ++i) {
      uint16_t bits = q::encodeBF16(v[i]);
      std::memcpy(&w.bytes[2 * i], &bits, 2);
      w.grid[i] = decodeBF16(bits);
    }
  }
  return w;
}

/// V4-SPEC 2.3/2.4 activation quantisation per 128 (oracle).
void quantAct(const std::vector<float> &x, std::vector<float> &qa,
              std::vector<float> &sa) {
  int64_t K = x.size();
  qa.assign(K, 0);
  sa.assign((K + 127) / 128, 0);
  for (int64_t b0 = 0; b0 < K; b0 += 128) {
    int64_t b1 = std::min(K, b0 + 128);
    float amax = 0;
    for (int64_t i = b0; i < b1; ++i)
      amax = std::max(amax, std::fabs(x[i]));
    int e = q::fp8ActScaleExponent(amax);
    sa[b0 / 128] = std::ldexp(1.0f, e);
    for (int64_t i = b0; i < b1; ++i)
      qa[i] = q::roundE4M3(std::clamp(std::ldexp(x[i], -e), -448.0f, 448.0f));
  }
}

/// Oracle linear, bf16 output (V4-SPEC 2.4), fp32 accumulation in the order
/// the spec describes: per 32-wide K slice (FP4) or 128-wide block (FP8),
/// the slice sum scaled by s_a * s_w.
std::vector<float> linear(const QWeight &w, const std::vector<float> &x) {
  std::vector<float> y(w.rows);
  std::vector<float> qa, sa;
  if (w.fmt != "bf16")
    quantAct(x, qa, sa);
  int64_t K = w.cols;
  for (int64_t n = 0; n < w.rows; ++n) {
    float acc = 0;
    if (w.fmt == "bf16") {
      for (int64_t k = 0; k < K; ++k)
        acc += x[k] * w.grid[n * K + k];
    } else {
      int64_t slice = w.fmt == "fp4" ? 32 : 128;
      for (int64_t k0 = 0; k0 < K; k0 += slice) {
        float part = 0;
        for (int64_t k = k0; k < std::min(K, k0 + slice); ++k)
          part += qa[k] * w.grid[n * K + k];
        float sw =
            w.fmt == "fp4"
                ? float(q::decodeE8M0(w.scales[n * (K / 32) + k0 / 32]))
                : float(q::decodeE8M0(
                      w.scales[(n / 128) * ((K + 127) / 128) + k0 / 128]));
        acc += part * sa[k0 / 128] * sw;
      }
    }
    y[n] = bf(acc);
  }
  return y;
}

/// Oracle expert (V4-SPEC 6.2): y_e = bf16(w2 . bf16(h)).
std::vector<float> expertOracle(const QWeight &w1, const QWeight &w3,
                                const QWeight &w2, const std::vector<float> &x,
                                float limit, const float *r) {
  auto a = linear(w1, x), b = linear(w3, x);
  std::vector<float> h(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    float up = b[i], gate = a[i];
    if (limit > 0) {
      up = std::clamp(up, -limit, limit);
      gate = std::min(gate, limit);
    }
    float v = (gate / (1.0f + std::exp(-gate))) * up;
    if (r)
      v = *r * v;
    h[i] = bf(v);
  }
  return linear(w2, h);
}

std::string elt(const std::string &fmt) {
  return fmt == "fp4" ? "f4E2M1FN" : fmt == "fp8" ? "f8E4M3FN" : "bf16";
}
std::string tensor(std::vector<int64_t> shape, const std::string &e) {
  std::string s = "tensor<";
  for (int64_t v : shape)
    s += (v < 0 ? std::string("?") : std::to_string(v)) + "x";
  return s + e + ">";
}

/// Stacks E matrices' storage ([E, ...] contiguous).
std::vector<uint8_t> stackBytes(const std::vector<QWeight> &ws, bool scales) {
  std::vector<uint8_t> out;
  for (auto &w : ws)
    out.insert(out.end(), (scales ? w.scales : w.bytes).begin(),
               (scales ? w.scales : w.bytes).end());
  return out;
}

/// moe.experts on T tokens: 3 hand-routed ones, or more, routed so that
/// each expert gets T / 2 rows (tiles of rows, the vector path, and more
/// than one tile of one expert at T = 70).
void runExpertsTest(const std::string &fmt, float limit, int64_t T = 3) {
  SCOPED_TRACE(fmt + " T=" + std::to_string(T));
  const int64_t d = 256, I = 160, E = 4, K = 2;
  bool quantised = fmt != "bf16";
  std::vector<int64_t> s13 =
      fmt == "fp4" ? std::vector<int64_t>{E, I, d / 32}
                   : std::vector<int64_t>{E, (I + 127) / 128, (d + 127) / 128};
  std::vector<int64_t> s2 =
      fmt == "fp4" ? std::vector<int64_t>{E, d, I / 32}
                   : std::vector<int64_t>{E, (d + 127) / 128, (I + 127) / 128};
  std::string e = elt(fmt), sc = "f8E8M0FNU";
  std::string tw13 = tensor({E, I, d}, e), tw2 = tensor({E, d, I}, e);
  std::string ts13 = tensor(s13, sc), ts2 = tensor(s2, sc);
  std::string tx = tensor({1, -1, d}, "bf16"), trw = tensor({1, -1, K}, "f32"),
              tri = tensor({1, -1, K}, "i64"),
              ty = tensor({1, -1, K, d}, "bf16");
  std::string lim = limit > 0 ? " swigluLimit " + std::to_string(limit) : "";
  std::string src =
      "func.func @f(%x: " + tx + ", %rw: " + trw + ", %ri: " + tri +
      ", %w1: " + tw13 + ", %w3: " + tw13 + ", %w2: " + tw2 +
      (quantised ? ", %s1: " + ts13 + ", %s3: " + ts13 + ", %s2: " + ts2 : "") +
      ") -> " + ty + " {\n  %y = v4.moe.experts %x, %rw, %ri w1 %w1" +
      (quantised ? " scale %s1" : "") + ", w3 %w3" +
      (quantised ? " scale %s3" : "") + ", w2 %w2" +
      (quantised ? " scale %s2" : "") + lim + " : (" + tx + ", " + trw + ", " +
      tri + ", " + tw13 + ", " + tw13 + ", " + tw2 +
      (quantised ? ", " + ts13 + ", " + ts13 + ", " + ts2 : "") + ") -> " + ty +
      "\n  return %y : " + ty + "\n}";
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(src));
  std::vector<QWeight> w1, w3, w2;
  for (int64_t ex = 0; ex < E; ++ex) {
    w1.push_back(makeWeight(fmt, I, d, 100 + ex));
    w3.push_back(makeWeight(fmt, I, d, 200 + ex));
    w2.push_back(makeWeight(fmt, d, I, 300 + ex));
  }
  auto x = randomBf16(T * d, 101, 2.0f);
  std::vector<float> rw = {0.9f, 0.6f, 1.1f, 0.4f, 0.7f, 0.8f};
  std::vector<int64_t> ri = {2, 0, 1, 3, 3, 2};
  if (T != 3) {
    rw.resize(T * K);
    ri.resize(T * K);
    for (int64_t t = 0; t < T; ++t) {
      ri[t * K] = t % E;
      ri[t * K + 1] = (t + 1 + (t / E) % (E - 1)) % E;
      rw[t * K] = 0.5f + 0.01f * float(t);
      rw[t * K + 1] = 1.2f - 0.01f * float(t);
    }
  }
  auto b1 = stackBytes(w1, false), b3 = stackBytes(w3, false),
       b2 = stackBytes(w2, false);
  auto c1 = stackBytes(w1, true), c3 = stackBytes(w3, true),
       c2 = stackBytes(w2, true);
  int64_t dp = fmt == "fp4" ? d / 2 : d, ip = fmt == "fp4" ? I / 2 : I;
  std::vector<uint16_t> y(T * K * d, 0xFFFF);
  auto dx = describe<3>(x.data(), {1, T, d});
  auto drw = describe<3>(rw.data(), {1, T, K});
  auto dri = describe<3>(ri.data(), {1, T, K});
  auto dw1 = describe<3>(b1.data(), {E, I, dp});
  auto dw3 = describe<3>(b3.data(), {E, I, dp});
  auto dw2 = describe<3>(b2.data(), {E, d, ip});
  auto ds1 = describe<3>(c1.data(), {s13[0], s13[1], s13[2]});
  auto ds3 = describe<3>(c3.data(), {s13[0], s13[1], s13[2]});
  auto ds2 = describe<3>(c2.data(), {s2[0], s2[1], s2[2]});
  auto dy = describe<4>(y.data(), {1, T, K, d});
  if (quantised)
    k.run({&dx, &drw, &dri, &dw1, &dw3, &dw2, &ds1, &ds3, &ds2, &dy});
  else
    k.run({&dx, &drw, &dri, &dw1, &dw3, &dw2, &dy});

  auto X = decodeAll(x), Y = decodeAll(y);
  int off = 0, clampsHit = 0;
  double maxRel = 0;
  for (int64_t t = 0; t < T; ++t) {
    std::vector<float> xt(X.begin() + t * d, X.begin() + (t + 1) * d);
    for (int j = 0; j < K; ++j) {
      int64_t ex = ri[t * K + j];
      auto ye = expertOracle(w1[ex], w3[ex], w2[ex], xt, limit, &rw[t * K + j]);
      if (limit > 0) {
        auto a = linear(w1[ex], xt), b = linear(w3[ex], xt);
        for (size_t i = 0; i < a.size(); ++i)
          clampsHit += a[i] > limit || std::fabs(b[i]) > limit;
      }
      // Slot j of token t: y_e, a bf16 value; allow 2 bf16 ulps.
      for (int64_t c = 0; c < d; ++c) {
        float g = Y[(t * K + j) * d + c], w = ye[c];
        EXPECT_LE(std::fabs(g - w), std::ldexp(std::fabs(w), -7) + 1e-30f)
            << "token " << t << " slot " << j << " col " << c;
        off += g != w;
        if (w != 0)
          maxRel = std::max(maxRel, double(std::fabs(g - w) / std::fabs(w)));
      }
    }
  }
  EXPECT_LE(off, int(T * K * d) / 50);
  std::printf("[moe.experts %s T=%lld] %d/%lld values differ, max rel diff "
              "%.2e, clamps hit %d\n",
              fmt.c_str(), (long long)T, off, (long long)(T * K * d), maxRel,
              clampsHit);
}

TEST(CPUKernels, MoEExpertsFP4MatchesSpec) { runExpertsTest("fp4", 0.5f); }
TEST(CPUKernels, MoEExpertsFP8MatchesSpec) { runExpertsTest("fp8", 0.5f); }
TEST(CPUKernels, MoEExpertsBF16NoClamp) { runExpertsTest("bf16", 0.0f); }
// Experts with 20 and 35 rows each: rows grouped per expert in tiles of the
// vector path, and one expert over two tiles.
TEST(CPUKernels, MoEExpertsFP4GroupedRows) { runExpertsTest("fp4", 0.5f, 40); }
TEST(CPUKernels, MoEExpertsFP8GroupedRowsTwoTiles) {
  runExpertsTest("fp8", 0.5f, 70);
}

TEST(CPUKernels, MoEExpertsClampedSwiGLU) {
  // V4-SPEC 11.2 item 11: a = 20 -> 10, a = -20 stays -20, b clamps to
  // +-10; the routing weight multiplies h before w2. bf16 weights, x = e_0,
  // w1[i][0] = a_i, w3[i][0] = b_i, w2 = I: result[i] = bf16(bf16(r h_i)).
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%x: tensor<1x4xbf16>, %rw: tensor<1x1xf32>, %ri: tensor<1x1xi64>,
                 %w1: tensor<1x4x4xbf16>, %w3: tensor<1x4x4xbf16>,
                 %w2: tensor<1x4x4xbf16>) -> tensor<1x1x4xbf16> {
      %y = v4.moe.experts %x, %rw, %ri w1 %w1, w3 %w3, w2 %w2 swigluLimit 10.0
          : (tensor<1x4xbf16>, tensor<1x1xf32>, tensor<1x1xi64>,
             tensor<1x4x4xbf16>, tensor<1x4x4xbf16>, tensor<1x4x4xbf16>)
          -> tensor<1x1x4xbf16>
      return %y : tensor<1x1x4xbf16>
    })"));
  float a[4] = {20, -20, 1, 3}, bv[4] = {1, 1, 20, -20};
  std::vector<uint16_t> x(4, 0), w1(16, 0), w3(16, 0), w2(16, 0);
  x[0] = q::encodeBF16(1.0f);
  for (int i = 0; i < 4; ++i) {
    w1[i * 4] = q::encodeBF16(a[i]);
    w3[i * 4] = q::encodeBF16(bv[i]);
    w2[i * 4 + i] = q::encodeBF16(1.0f);
  }
  std::vector<float> rw = {0.3f};
  std::vector<uint16_t> yb(4);
  std::vector<int64_t> ri = {0};
  auto dx = describe<2>(x.data(), {1, 4});
  auto drw = describe<2>(rw.data(), {1, 1});
  auto dri = describe<2>(ri.data(), {1, 1});
  auto dw1 = describe<3>(w1.data(), {1, 4, 4});
  auto dw3 = describe<3>(w3.data(), {1, 4, 4});
  auto dw2 = describe<3>(w2.data(), {1, 4, 4});
  auto dy = describe<3>(yb.data(), {1, 1, 4});
  k.run({&dx, &drw, &dri, &dw1, &dw3, &dw2, &dy});
  auto y = decodeAll(yb);
  auto silu = [](float v) { return v / (1.0f + std::exp(-v)); };
  float want[4] = {bf(0.3f * (silu(10) * 1)), bf(0.3f * (silu(-20) * 1)),
                   bf(0.3f * (silu(1) * 10)), bf(0.3f * (silu(3) * -10))};
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(y[i], want[i]) << "lane " << i;
  // a = -20 is not clamped from below: silu(-10) would be ~1000x larger.
  EXPECT_LT(std::fabs(y[1]), 1e-7f);
}

void runSharedTest(const std::string &fmt) {
  SCOPED_TRACE(fmt);
  const int64_t T = 3, d = 256, I = 160;
  bool quantised = fmt == "fp8";
  std::string e = elt(fmt), sc = "f8E8M0FNU";
  std::string tw13 = tensor({I, d}, e), tw2 = tensor({d, I}, e);
  std::string ts13 = tensor({(I + 127) / 128, (d + 127) / 128}, sc),
              ts2 = tensor({(d + 127) / 128, (I + 127) / 128}, sc);
  std::string tx = tensor({-1, d}, "bf16");
  std::string src =
      "func.func @f(%x: " + tx + ", %w1: " + tw13 + ", %w3: " + tw13 +
      ", %w2: " + tw2 +
      (quantised ? ", %s1: " + ts13 + ", %s3: " + ts13 + ", %s2: " + ts2 : "") +
      ") -> " + tx + " {\n  %y = v4.moe.shared_expert %x w1 %w1" +
      (quantised ? " scale %s1" : "") + ", w3 %w3" +
      (quantised ? " scale %s3" : "") + ", w2 %w2" +
      (quantised ? " scale %s2" : "") + " swigluLimit 0.5 : (" + tx + ", " +
      tw13 + ", " + tw13 + ", " + tw2 +
      (quantised ? ", " + ts13 + ", " + ts13 + ", " + ts2 : "") + ") -> " + tx +
      "\n  return %y : " + tx + "\n}";
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(src));
  QWeight w1 = makeWeight(fmt, I, d, 401), w3 = makeWeight(fmt, I, d, 402),
          w2 = makeWeight(fmt, d, I, 403);
  auto x = randomBf16(T * d, 404, 2.0f);
  std::vector<uint16_t> y(T * d, 0);
  auto dx = describe<2>(x.data(), {T, d});
  auto dw1 = describe<2>(w1.bytes.data(), {I, d});
  auto dw3 = describe<2>(w3.bytes.data(), {I, d});
  auto dw2 = describe<2>(w2.bytes.data(), {d, I});
  auto ds1 = describe<2>(w1.scales.data(), {(I + 127) / 128, (d + 127) / 128});
  auto ds3 = describe<2>(w3.scales.data(), {(I + 127) / 128, (d + 127) / 128});
  auto ds2 = describe<2>(w2.scales.data(), {(d + 127) / 128, (I + 127) / 128});
  auto dy = describe<2>(y.data(), {T, d});
  if (quantised)
    k.run({&dx, &dw1, &dw3, &dw2, &ds1, &ds3, &ds2, &dy});
  else
    k.run({&dx, &dw1, &dw3, &dw2, &dy});
  // Tiles of token rows (the launch grid's y) give the same bits.
  std::vector<uint16_t> yGrid(T * d, 0);
  auto dyGrid = describe<2>(yGrid.data(), {T, d});
  if (quantised)
    k.runGrid({&dx, &dw1, &dw3, &dw2, &ds1, &ds3, &ds2, &dyGrid}, 1, 2);
  else
    k.runGrid({&dx, &dw1, &dw3, &dw2, &dyGrid}, 1, 2);
  EXPECT_EQ(yGrid, y);
  auto X = decodeAll(x);
  std::vector<float> want;
  for (int64_t t = 0; t < T; ++t) {
    std::vector<float> xt(X.begin() + t * d, X.begin() + (t + 1) * d);
    auto yt = expertOracle(w1, w3, w2, xt, 0.5f, nullptr);
    want.insert(want.end(), yt.begin(), yt.end());
  }
  int off = expectBf16Close(y, want, "shared");
  EXPECT_LE(off, int(want.size()) / 50);
  std::printf("[moe.shared_expert %s] %d/%zu values off by <= 2 ulps\n",
              fmt.c_str(), off, want.size());
}

TEST(CPUKernels, MoESharedExpertFP8MatchesSpec) { runSharedTest("fp8"); }
TEST(CPUKernels, MoESharedExpertBF16MatchesSpec) { runSharedTest("bf16"); }

TEST(CPUKernels, MoECombineOneRounding) {
  // V4-SPEC 6.3: bf16(sum_j fp32(routed_j) + fp32(shared)), the slots added
  // from 0 in slot order, bit-exact. Slot values of mixed magnitudes make
  // the order visible: summed in reverse, some results differ.
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%r: tensor<2x?x3x16xbf16>, %s: tensor<2x?x16xbf16>) -> tensor<2x?x16xbf16> {
      %y = v4.moe.combine %r, %s
          : tensor<2x?x3x16xbf16>, tensor<2x?x16xbf16> -> tensor<2x?x16xbf16>
      return %y : tensor<2x?x16xbf16>
    })"));
  const int64_t B = 2, T = 3, K = 3, d = 16;
  auto r = randomBf16(B * T * K * d, 111, 1.0f);
  // Slot 0 ~2^20, slot 1 ~1, slot 2 ~2^-12: beyond fp32's 24 bits.
  for (size_t i = 0; i < r.size(); ++i) {
    int64_t j = int64_t(i / d) % K;
    float f = j == 0 ? 0x1p20f : j == 2 ? 0x1p-12f : 1.0f;
    r[i] = q::encodeBF16(decodeBF16(r[i]) * f);
  }
  auto s = randomBf16(B * T * d, 112);
  std::vector<uint16_t> y(B * T * d, 0);
  auto dr = describe<4>(r.data(), {B, T, K, d});
  auto ds = describe<3>(s.data(), {B, T, d});
  auto dy = describe<3>(y.data(), {B, T, d});
  k.run({&dr, &ds, &dy});
  int orderMatters = 0;
  for (int64_t i = 0; i < B * T; ++i)
    for (int64_t c = 0; c < d; ++c) {
      float fwd = 0.0f, rev = 0.0f;
      for (int64_t j = 0; j < K; ++j) {
        fwd += decodeBF16(r[(i * K + j) * d + c]);
        rev += decodeBF16(r[(i * K + K - 1 - j) * d + c]);
      }
      float sh = decodeBF16(s[i * d + c]);
      EXPECT_EQ(y[i * d + c], q::encodeBF16(fwd + sh)) << i << " " << c;
      orderMatters += fwd != rev;
    }
  EXPECT_GT(orderMatters, 0);
}

TEST(CPUKernels, MoEDispatchPacksSlotsPerRankAndUndispatchReturnsThem) {
  // 3 ranks of 2 experts (global 0..5). Slots in row-major order (b, t, j)
  // go to rank e / 2 as its next row; -1 and 7 belong to no rank. Rows past
  // a block's count: x +0, weight +0, index -1. Undispatch reads each slot's
  // output back from (rank, row), +0 for a slot of no rank.
  CompiledKernel dispatch, undispatch;
  ASSERT_NO_FATAL_FAILURE(dispatch.compile(R"(
    func.func @f(%x: tensor<2x?x8xbf16>, %w: tensor<2x?x2xf32>, %i: tensor<2x?x2xi64>)
        -> (tensor<3xi64>, tensor<3x2x?x2x8xbf16>, tensor<3x2x?x2x1xf32>, tensor<3x2x?x2x1xi64>) {
      %n, %r, %rw, %ri = v4.moe.dispatch %x, %w, %i world 3 experts 2
          : (tensor<2x?x8xbf16>, tensor<2x?x2xf32>, tensor<2x?x2xi64>)
          -> (tensor<3xi64>, tensor<3x2x?x2x8xbf16>, tensor<3x2x?x2x1xf32>, tensor<3x2x?x2x1xi64>)
      return %n, %r, %rw, %ri : tensor<3xi64>, tensor<3x2x?x2x8xbf16>, tensor<3x2x?x2x1xf32>, tensor<3x2x?x2x1xi64>
    })"));
  ASSERT_NO_FATAL_FAILURE(undispatch.compile(R"(
    func.func @f(%y: tensor<3x2x?x2x1x8xbf16>, %i: tensor<2x?x2xi64>) -> tensor<2x?x2x8xbf16> {
      %s = v4.moe.undispatch %y, %i world 3 experts 2
          : (tensor<3x2x?x2x1x8xbf16>, tensor<2x?x2xi64>) -> tensor<2x?x2x8xbf16>
      return %s : tensor<2x?x2x8xbf16>
    })"));
  const int64_t B = 2, T = 3, K = 2, d = 8, W = 3, S = B * T * K;
  std::vector<int64_t> ids = {4, 1, 0, -1, 5, 2, 7, 0, 1, 4, 4, 5};
  std::vector<float> w(S);
  for (int64_t s = 0; s < S; ++s)
    w[size_t(s)] = 0.25f * float(s + 1);
  auto x = randomBf16(B * T * d, 7);
  std::vector<int64_t> n(W, -9);
  std::vector<uint16_t> rows(W * S * d, 0x1234);
  std::vector<float> rw(W * S, 9.0f);
  std::vector<int64_t> ri(W * S, 99);
  auto dx = describe<3>(x.data(), {B, T, d});
  auto dw = describe<3>(w.data(), {B, T, K});
  auto di = describe<3>(ids.data(), {B, T, K});
  auto dn = describe<1>(n.data(), {W});
  auto dr = describe<5>(rows.data(), {W, B, T, K, d});
  auto drw = describe<5>(rw.data(), {W, B, T, K, 1});
  auto dri = describe<5>(ri.data(), {W, B, T, K, 1});
  dispatch.run({&dx, &dw, &di, &dn, &dr, &drw, &dri});
  // The oracle: per rank, its slots in order.
  std::vector<std::vector<int64_t>> mine(W);
  for (int64_t s = 0; s < S; ++s)
    if (ids[size_t(s)] >= 0 && ids[size_t(s)] < W * 2)
      mine[size_t(ids[size_t(s)] / 2)].push_back(s);
  for (int64_t q = 0; q < W; ++q) {
    EXPECT_EQ(n[size_t(q)], int64_t(mine[size_t(q)].size())) << q;
    for (int64_t p = 0; p < S; ++p) {
      size_t row = size_t(q * S + p);
      bool used = p < int64_t(mine[size_t(q)].size());
      int64_t s = used ? mine[size_t(q)][size_t(p)] : -1;
      EXPECT_EQ(ri[row], used ? ids[size_t(s)] : -1) << q << " " << p;
      EXPECT_EQ(rw[row], used ? w[size_t(s)] : 0.0f) << q << " " << p;
      for (int64_t c = 0; c < d; ++c)
        EXPECT_EQ(rows[row * d + size_t(c)],
                  used ? x[size_t((s / K) * d + c)] : uint16_t(0))
            << q << " " << p << " " << c;
    }
  }
  // Undispatch of outputs that name their (rank, row).
  std::vector<uint16_t> y(W * S * d), back(S * d, 0x1234);
  for (size_t i = 0; i < y.size(); ++i)
    y[i] = q::encodeBF16(float(i + 1));
  auto dy = describe<6>(y.data(), {W, B, T, K, 1, d});
  auto db = describe<4>(back.data(), {B, T, K, d});
  undispatch.run({&dy, &di, &db});
  for (int64_t s = 0; s < S; ++s) {
    int64_t e = ids[size_t(s)], q = e >= 0 && e < W * 2 ? e / 2 : -1, p = -1;
    if (q >= 0)
      p = std::find(mine[size_t(q)].begin(), mine[size_t(q)].end(), s) -
          mine[size_t(q)].begin();
    for (int64_t c = 0; c < d; ++c)
      EXPECT_EQ(back[size_t(s * d + c)],
                q < 0 ? uint16_t(0) : y[size_t((q * S + p) * d + c)])
          << s << " " << c;
  }
}

} // namespace
