//===- CPUKernelAttentionTest.cpp - CPU kernels of the attention family against
// V4-SPEC ---===//
//
// Each test compiles one op into a CPU kernel and compares it with the
// V4-SPEC semantics computed here (plain C++, same rounding points).
//
//===----------------------------------------------------------------------===//
#include "test/lib/CPUKernelHarness.h"

#include "dialects/V4/V4Attrs.h"
#include "mlir/AsmParser/AsmParser.h"

#include <algorithm>
#include <limits>
#include <numeric>

using namespace v4test;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
using ::v4::quant::roundBF16;

float bf(float x) { return roundBF16(x); }

/// |got - want| <= n bf16 ulps of want (relative 2^-7 for n = 2).
bool withinUlps(float got, float want, int n = 2) {
  if (got == want)
    return true;
  return std::fabs(got - want) <= n * std::ldexp(std::fabs(want), -8) + 1e-30f;
}

std::vector<float> decode(const std::vector<uint16_t> &v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    out[i] = decodeBF16(v[i]);
  return out;
}

//===----------------------------------------------------------------------===//
// v4.ring.empty, v4.cache.empty, v4.kv.state_empty
//===----------------------------------------------------------------------===//

TEST(CPUKernelsAttention, RingAndCacheEmptyAreZero) {
  {
    CompiledKernel k;
    ASSERT_NO_FATAL_FAILURE(k.compile(R"(
      func.func @f() -> !v4.window_ring<batch = 2, slots = 4, dim = 8, elementType = bf16> {
        %r = v4.ring.empty : !v4.window_ring<batch = 2, slots = 4, dim = 8, elementType = bf16>
        return %r : !v4.window_ring<batch = 2, slots = 4, dim = 8, elementType = bf16>
      })"));
    std::vector<uint16_t> ring(2 * 4 * 8, 0x3F80); // 1.0
    auto d = describe<3>(ring.data(), {2, 4, 8});
    k.run({&d});
    for (uint16_t v : ring)
      EXPECT_EQ(v, 0);
  }
  {
    CompiledKernel k;
    ASSERT_NO_FATAL_FAILURE(k.compile(R"(
      func.func @f() -> !v4.kv_cache<batch = 1, capacity = 5, dim = 16, ratio = 4, elementType = f32> {
        %c = v4.cache.empty : !v4.kv_cache<batch = 1, capacity = 5, dim = 16, ratio = 4, elementType = f32>
        return %c : !v4.kv_cache<batch = 1, capacity = 5, dim = 16, ratio = 4, elementType = f32>
      })"));
    std::vector<float> cache(5 * 16, 7.0f);
    auto d = describe<3>(cache.data(), {1, 5, 16});
    k.run({&d});
    for (float v : cache)
      EXPECT_EQ(v, 0.0f);
  }
}

TEST(CPUKernelsAttention, StateEmptyIsZeroAndMinusInf) {
  // V4-SPEC 9.2.2: kv = 0, score = -inf; overlap layout [2r, 2c].
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f() -> !v4.compressor_state<batch = 2, ratio = 4, dim = 8> {
      %s = v4.kv.state_empty : !v4.compressor_state<batch = 2, ratio = 4, dim = 8>
      return %s : !v4.compressor_state<batch = 2, ratio = 4, dim = 8>
    })"));
  std::vector<float> kv(2 * 8 * 16, 3.0f), score(2 * 8 * 16, 3.0f);
  auto dk = describe<3>(kv.data(), {2, 8, 16});
  auto ds = describe<3>(score.data(), {2, 8, 16});
  k.run({&dk, &ds});
  for (size_t i = 0; i < kv.size(); ++i) {
    EXPECT_EQ(kv[i], 0.0f);
    EXPECT_EQ(score[i], -kInf);
  }
}

//===----------------------------------------------------------------------===//
// v4.ring.write
//===----------------------------------------------------------------------===//

TEST(CPUKernelsAttention, RingWriteKeepsLastSlotsTokens) {
  // V4-SPEC 5.2/9.2.1: the last min(T, S) tokens at slot p mod S; other
  // slots keep their contents. The result is tied to the ring: the kernel
  // updates it in place (the harness drops the result's descriptor).
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%ring: !v4.window_ring<batch = 2, slots = 4, dim = 3, elementType = f32>,
                 %kv: tensor<2x?x3xf32>, %pos: tensor<2xi64>)
        -> !v4.window_ring<batch = 2, slots = 4, dim = 3, elementType = f32> {
      %r = v4.ring.write %kv into %ring at %pos : tensor<2x?x3xf32>, tensor<2xi64>
          -> !v4.window_ring<batch = 2, slots = 4, dim = 3, elementType = f32>
      return %r : !v4.window_ring<batch = 2, slots = 4, dim = 3, elementType = f32>
    })"));
  const int64_t S = 4, D = 3;
  for (int64_t T : {1, 2, 6}) {
    std::vector<int64_t> pos = {0, 5};
    std::vector<float> ring(2 * S * D), kv(2 * T * D);
    for (size_t i = 0; i < ring.size(); ++i)
      ring[i] = 1000.0f + float(i);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t d = 0; d < D; ++d)
          kv[(b * T + t) * D + d] = float(100 * b + 10 * (pos[b] + t) + d);
    std::vector<float> want = ring;
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t t = std::max<int64_t>(0, T - S); t < T; ++t)
        for (int64_t d = 0; d < D; ++d)
          want[(b * S + (pos[b] + t) % S) * D + d] = kv[(b * T + t) * D + d];
    auto dr = describe<3>(ring.data(), {2, S, D});
    auto dkv = describe<3>(kv.data(), {2, T, D});
    auto dp = describe<1>(pos.data(), {2});
    auto dout = describe<3>(nullptr, {2, S, D});
    k.run({&dr, &dkv, &dp, &dout});
    EXPECT_EQ(ring, want) << "T = " << T;
  }
}

//===----------------------------------------------------------------------===//
// v4.attn.window_indices
//===----------------------------------------------------------------------===//

TEST(CPUKernelsAttention, WindowIndicesMatchSpec) {
  // V4-SPEC 11.2 item 6: prefill T = 10 with window 4 gives query i the set
  // {max(0, i-3) ... i} (oldest first, -1 padding); decode at p: positions
  // p-W+1 ... p, whose slots p mod W are the reference decode list.
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%pos: tensor<2xi64>) -> tensor<2x10x4xi64> {
      %i = v4.attn.window_indices %pos window 4 : tensor<2xi64> -> tensor<2x10x4xi64>
      return %i : tensor<2x10x4xi64>
    })"));
  std::vector<int64_t> pos = {0, 200}, out(2 * 10 * 4, 99);
  auto dp = describe<1>(pos.data(), {2});
  auto dout = describe<3>(out.data(), {2, 10, 4});
  k.run({&dp, &dout});
  for (int64_t i = 0; i < 10; ++i) {
    std::vector<int64_t> got(out.begin() + i * 4, out.begin() + i * 4 + 4);
    std::vector<int64_t> want;
    for (int64_t q = std::max<int64_t>(0, i - 3); q <= i; ++q)
      want.push_back(q);
    while (want.size() < 4)
      want.push_back(-1);
    EXPECT_EQ(got, want) << "prefill query " << i;
  }
  for (int64_t t = 0; t < 10; ++t) {
    int64_t p = 200 + t;
    std::vector<int64_t> slots;
    for (int64_t j = 0; j < 4; ++j) {
      int64_t q = out[(40 + t * 4) + j];
      EXPECT_EQ(q, p - 3 + j);
      slots.push_back(q % 4);
    }
    // Reference decode list: (p+1) mod W, ..., W-1, 0, ..., p mod W.
    std::vector<int64_t> ref;
    for (int64_t j = 0; j < 4; ++j)
      ref.push_back((p + 1 + j) % 4);
    EXPECT_EQ(slots, ref) << "decode p " << p;
  }
}

//===----------------------------------------------------------------------===//
// v4.csa.topk
//===----------------------------------------------------------------------===//

TEST(CPUKernelsAttention, TopKVisibleDescendingWithPadding) {
  // V4-SPEC 5.5 step 6 / 11.2 items 7-8: only ids e < floor((p+1)/4) are
  // candidates; descending score; -1 padding when fewer than k exist.
  // Tie-free random scores (distinct by construction), plus a tie case.
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%s: tensor<2x?x12xf32>, %pos: tensor<2xi64>) -> tensor<2x?x5xi64> {
      %i = v4.csa.topk %s, %pos k 5 : (tensor<2x?x12xf32>, tensor<2xi64>) -> tensor<2x?x5xi64>
      return %i : tensor<2x?x5xi64>
    })"));
  const int64_t B = 2, T = 9, N = 12, K = 5;
  std::vector<int64_t> pos = {0, 30};
  std::vector<float> scores(B * T * N);
  std::mt19937 rng(11);
  for (int64_t r = 0; r < B * T; ++r) {
    std::vector<int> perm(N);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int64_t e = 0; e < N; ++e)
      scores[r * N + e] = float(perm[e]) * 0.25f - 1.0f;
  }
  // Row (b=0, t=8): visible 2 (p = 8); give entries 0 and 1 a tie.
  scores[8 * N + 0] = scores[8 * N + 1] = 5.0f;
  // Row (b=1, t=0): p = 30, visible 7: ties at ids 3, 5, 6 (lowest first).
  for (int e : {3, 5, 6})
    scores[(T + 0) * N + e] = 9.0f;
  std::vector<int64_t> out(B * T * K, 77);
  auto ds = describe<3>(scores.data(), {B, T, N});
  auto dp = describe<1>(pos.data(), {B});
  auto dout = describe<3>(out.data(), {B, T, K});
  k.run({&ds, &dp, &dout});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      int64_t p = pos[b] + t, V = std::min(N, (p + 1) / 4);
      const float *s = scores.data() + (b * T + t) * N;
      std::vector<int64_t> ids(V);
      std::iota(ids.begin(), ids.end(), 0);
      std::stable_sort(ids.begin(), ids.end(),
                       [&](int64_t x, int64_t y) { return s[x] > s[y]; });
      ids.resize(std::min(V, K));
      while (int64_t(ids.size()) < K)
        ids.push_back(-1);
      std::vector<int64_t> got(out.begin() + (b * T + t) * K,
                               out.begin() + (b * T + t + 1) * K);
      EXPECT_EQ(got, ids) << "b " << b << " t " << t;
    }
  EXPECT_EQ(out[T * K + 0], 3);
  EXPECT_EQ(out[T * K + 1], 5);
  EXPECT_EQ(out[T * K + 2], 6);
}

/// csa.topk k K of T = 40 tokens over 70 entries from position p0: scores
/// from 6 values (ties everywhere, +0 and -0 equal, -inf entries) and a NaN
/// at a visible id of token 17, against the stable sort (score descending,
/// id ascending) and, for the NaN row, the rounds (mirrored here: NaN
/// compares false, so it is never after a pick nor better than one).
void checkTopKTies(int64_t K, int64_t p0) {
  const int64_t T = 40, N = 70, nanRow = 17;
  std::string ks = std::to_string(K);
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(
      k.compile("func.func @f(%s: tensor<1x?x70xbf16>, %pos: tensor<1xi64>) -> "
                "tensor<1x?x" +
                ks + "xi64> {\n  %i = v4.csa.topk %s, %pos k " + ks +
                " : (tensor<1x?x70xbf16>, tensor<1xi64>) -> tensor<1x?x" + ks +
                "xi64>\n  return %i : tensor<1x?x" + ks + "xi64>\n}"));
  std::vector<int64_t> pos = {p0};
  const float values[] = {1.5f, -0.0f, 0.0f, -2.0f, 7.0f, -kInf};
  std::vector<uint16_t> bits(T * N);
  std::mt19937 rng(5 + K);
  for (uint16_t &b : bits)
    b = encodeBF16(values[rng() % 6]);
  bits[nanRow * N + 3] = 0x7FC0;
  std::vector<int64_t> out(T * K, 77);
  auto ds = describe<3>(bits.data(), {1, T, N});
  auto dp = describe<1>(pos.data(), {1});
  auto dout = describe<3>(out.data(), {1, T, K});
  k.run({&ds, &dp, &dout});
  for (int64_t t = 0; t < T; ++t) {
    int64_t p = p0 + t, V = std::min(N, (p + 1) / 4);
    std::vector<float> s(N);
    for (int64_t e = 0; e < N; ++e)
      s[e] = decodeBF16(bits[t * N + e]);
    std::vector<int64_t> want;
    if (t != nanRow) {
      std::vector<int64_t> ids(V);
      std::iota(ids.begin(), ids.end(), 0);
      std::stable_sort(ids.begin(), ids.end(),
                       [&](int64_t x, int64_t y) { return s[x] > s[y]; });
      ids.resize(std::min(V, K));
      want = ids;
    } else {
      float ps = kInf;
      int64_t pid = -1;
      for (int64_t i = 0; i < std::min(V, K); ++i) {
        float bs = -kInf;
        int64_t bid = -1;
        for (int64_t id = 0; id < V; ++id) {
          bool after = s[id] < ps || (s[id] == ps && id > pid);
          if (after && (bid < 0 || s[id] > bs)) {
            bs = s[id];
            bid = id;
          }
        }
        want.push_back(bid);
        ps = bs;
        pid = bid;
      }
    }
    while (int64_t(want.size()) < K)
      want.push_back(-1);
    std::vector<int64_t> got(out.begin() + t * K, out.begin() + (t + 1) * K);
    EXPECT_EQ(got, want) << "k " << K << " t " << t << " (visible " << V << ")";
  }
}

TEST(CPUKernelsAttention, TopKRanksManyTiesAndNaN) {
  // The host CPU's rank path (16 candidates to a vector, then the V % 16
  // last one at a time) at 62 to 70 visible entries against k 20; and k 2
  // at 25 to 35 visible entries, where past 16 K = 32 the rounds run
  // instead. The same picks either way.
  ASSERT_NO_FATAL_FAILURE(checkTopKTies(20, 250));
  ASSERT_NO_FATAL_FAILURE(checkTopKTies(2, 100));
}

//===----------------------------------------------------------------------===//
// v4.csa.indexer_scores
//===----------------------------------------------------------------------===//

TEST(CPUKernelsAttention, IndexerScoresMatchSpec) {
  // V4-SPEC 5.5 steps 3-5: w_h = bf16(w * DI^-1/2 HI^-1/2); I = bf16(sum_h
  // bf16(w_h * ReLU(bf16(q_h . K)))), fp32 accumulation; -inf for
  // e >= floor((p+1)/4). Oracle with the same rounding points: <= 2 bf16
  // ulps (V4-SPEC 2.6); identical summation order gives bit equality here.
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%q: tensor<2x3x4x32xbf16>, %w: tensor<2x3x4xbf16>,
                 %keys: !v4.kv_cache<batch = 2, capacity = 6, dim = 32, ratio = 4, elementType = bf16>,
                 %pos: tensor<2xi64>) -> tensor<2x3x6xbf16> {
      %s = v4.csa.indexer_scores %q, %w, %keys, %pos
          : (tensor<2x3x4x32xbf16>, tensor<2x3x4xbf16>,
             !v4.kv_cache<batch = 2, capacity = 6, dim = 32, ratio = 4, elementType = bf16>,
             tensor<2xi64>) -> tensor<2x3x6xbf16>
      return %s : tensor<2x3x6xbf16>
    })"));
  const int64_t B = 2, T = 3, HI = 4, DI = 32, N = 6;
  auto q = randomBf16(B * T * HI * DI, 21);
  auto w = randomBf16(B * T * HI, 22, 2.0f);
  auto keys = randomBf16(B * N * DI, 23);
  std::vector<int64_t> pos = {6, 20};
  std::vector<uint16_t> out(B * T * N, 0);
  auto dq = describe<4>(q.data(), {B, T, HI, DI});
  auto dw = describe<3>(w.data(), {B, T, HI});
  auto dk = describe<3>(keys.data(), {B, N, DI});
  auto dp = describe<1>(pos.data(), {B});
  auto dout = describe<3>(out.data(), {B, T, N});
  k.run({&dq, &dw, &dk, &dp, &dout});
  float cst =
      float(1.0 / std::sqrt(double(DI)) * (1.0 / std::sqrt(double(HI))));
  int exact = 0, total = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      int64_t p = pos[b] + t, vis = (p + 1) / 4;
      for (int64_t e = 0; e < N; ++e) {
        float got = decodeBF16(out[(b * T + t) * N + e]);
        if (e >= vis) {
          EXPECT_EQ(got, -kInf) << "b " << b << " t " << t << " e " << e;
          continue;
        }
        float sum = 0;
        for (int64_t h = 0; h < HI; ++h) {
          float dot = 0;
          for (int64_t i = 0; i < DI; ++i)
            dot += decodeBF16(q[((b * T + t) * HI + h) * DI + i]) *
                   decodeBF16(keys[(b * N + e) * DI + i]);
          float relu = std::max(bf(dot), 0.0f);
          float wh = bf(decodeBF16(w[(b * T + t) * HI + h]) * cst);
          sum += bf(wh * relu);
        }
        float want = bf(sum);
        EXPECT_TRUE(withinUlps(got, want)) << got << " vs " << want;
        exact += got == want;
        ++total;
      }
    }
  EXPECT_EQ(exact, total);
}

//===----------------------------------------------------------------------===//
// v4.attn.sparse
//===----------------------------------------------------------------------===//

/// V4-SPEC 5.6 for one head over an explicit list (nullptr = -1 entry):
/// 64-entry tiles, online softmax in fp32, bf16 probabilities, sink once.
void sinkAttentionSpec(const float *q, const std::vector<const float *> &rows,
                       int64_t D, float scale, float sink, float *out) {
  float m = -kInf, l = 0;
  std::vector<float> acc(D, 0.0f), s(64);
  int64_t n = int64_t(rows.size());
  for (int64_t t0 = 0; t0 < n; t0 += 64) {
    int64_t t1 = std::min(n, t0 + 64);
    float mt = m;
    for (int64_t j = t0; j < t1; ++j) {
      float sj = -kInf;
      if (rows[j]) {
        float dot = 0;
        for (int64_t i = 0; i < D; ++i)
          dot += q[i] * rows[j][i];
        sj = dot * scale;
      }
      s[j - t0] = sj;
      mt = std::max(mt, sj);
    }
    float alpha = mt == -kInf ? 0.0f : std::exp(m - mt);
    for (auto &a : acc)
      a *= alpha;
    float psum = 0;
    for (int64_t j = t0; j < t1; ++j) {
      float pj = s[j - t0] == -kInf ? 0.0f : std::exp(s[j - t0] - mt);
      psum += pj;
      if (!rows[j])
        continue;
      float pb = bf(pj);
      for (int64_t i = 0; i < D; ++i)
        acc[i] += pb * rows[j][i];
    }
    l = l * alpha + psum;
    m = mt;
  }
  l += std::exp(sink - m);
  for (int64_t i = 0; i < D; ++i)
    out[i] = bf(acc[i] / l);
}

struct SparseCase {
  int64_t B, T, H, D, W, N = 0, ratio = 0, K = 0;
  std::vector<int64_t> pos;
  std::vector<uint16_t> q, kv, ring, cache;
  std::vector<float> sink;
  std::vector<int64_t> topk;
};

/// The attended list of V4-SPEC 5.2/5.4/5.5 item 7 in the op's order.
std::vector<const float *> attendedList(const SparseCase &c,
                                        const std::vector<float> &kv,
                                        const std::vector<float> &ring,
                                        const std::vector<float> &cache,
                                        int64_t b, int64_t t) {
  int64_t sp = c.pos[b], p = sp + t;
  std::vector<const float *> rows;
  int64_t Lw = sp > 0 ? c.W : std::min(c.T, c.W);
  int64_t q0 = std::max<int64_t>(0, p - c.W + 1);
  for (int64_t j = 0; j < Lw; ++j) {
    int64_t q = q0 + j;
    if (q > p)
      rows.push_back(nullptr);
    else if (q >= sp)
      rows.push_back(kv.data() + (b * c.T + q - sp) * c.D);
    else
      rows.push_back(ring.data() + (b * c.W + q % c.W) * c.D);
  }
  if (c.ratio) {
    int64_t np = (p + 1) / c.ratio;
    if (c.topk.empty()) {
      for (int64_t i = 0; i < (sp + c.T) / c.ratio; ++i)
        rows.push_back(i < np ? cache.data() + (b * c.N + i) * c.D : nullptr);
    } else {
      for (int64_t i = 0; i < c.K; ++i) {
        int64_t id = c.topk[(b * c.T + t) * c.K + i];
        rows.push_back(id >= 0 && id < np ? cache.data() + (b * c.N + id) * c.D
                                          : nullptr);
      }
    }
  }
  return rows;
}

/// Runs the kernel of `source` on `c` and compares with the spec: <= 2 bf16
/// ulps elementwise (V4-SPEC 2.6), and at most 1% of values not identical.
void checkSparse(const std::string &source, SparseCase &c) {
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(source));
  std::vector<uint16_t> out(c.B * c.T * c.H * c.D, 0);
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
  auto kv = decode(c.kv), ring = decode(c.ring), cache = decode(c.cache);
  auto q = decode(c.q);
  float scale = 1.0f / std::sqrt(float(c.D));
  int mismatches = 0, bad = 0;
  std::vector<float> want(c.D);
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t t = 0; t < c.T; ++t) {
      auto rows = attendedList(c, kv, ring, cache, b, t);
      for (int64_t h = 0; h < c.H; ++h) {
        sinkAttentionSpec(q.data() + ((b * c.T + t) * c.H + h) * c.D, rows, c.D,
                          scale, c.sink[h], want.data());
        for (int64_t d = 0; d < c.D; ++d) {
          float got = decodeBF16(out[((b * c.T + t) * c.H + h) * c.D + d]);
          if (!withinUlps(got, want[d]) && ++bad < 10)
            ADD_FAILURE() << "b " << b << " t " << t << " h " << h << " d " << d
                          << ": " << got << " vs " << want[d];
          mismatches += got != want[d];
        }
      }
    }
  EXPECT_EQ(bad, 0);
  EXPECT_LE(mismatches, int(out.size() / 100));
}

SparseCase randomCase(int64_t B, int64_t T, int64_t H, int64_t D, int64_t W,
                      std::vector<int64_t> pos, uint64_t seed) {
  SparseCase c;
  c.B = B, c.T = T, c.H = H, c.D = D, c.W = W;
  c.pos = std::move(pos);
  c.q = randomBf16(B * T * H * D, seed, 4.0f);
  c.kv = randomBf16(B * T * D, seed + 1);
  c.ring = randomBf16(B * W * D, seed + 2);
  c.sink.resize(H);
  for (int64_t h = 0; h < H; ++h)
    c.sink[h] = 0.5f * float(h) - 1.0f;
  return c;
}

TEST(CPUKernelsAttention, SparseSWAPrefillAndDecode) {
  // SWA: window only. Sequence 0 is a prefill (start 0, list min(T, W)),
  // sequence 1 continues at 70 (list W, earlier positions from the ring),
  // W = 80 > 64 so the list spans two tiles.
  auto c = randomCase(2, 5, 3, 16, 80, {0, 70}, 31);
  checkSparse(R"(
    func.func @f(%q: tensor<2x5x3x16xbf16>, %kv: tensor<2x5x16xbf16>,
                 %ring: !v4.window_ring<batch = 2, slots = 80, dim = 16, elementType = bf16>,
                 %sink: tensor<3xf32>, %pos: tensor<2xi64>) -> tensor<2x5x3x16xbf16> {
      %o = v4.attn.sparse %q, %kv, %ring, %sink, %pos window 80
          : tensor<2x5x3x16xbf16>, tensor<2x5x16xbf16>,
            !v4.window_ring<batch = 2, slots = 80, dim = 16, elementType = bf16>,
            tensor<3xf32>, tensor<2xi64> -> tensor<2x5x3x16xbf16>
      return %o : tensor<2x5x3x16xbf16>
    })",
              c);
}

TEST(CPUKernelsAttention, SparseHCAAllCompletedEntries) {
  // HCA: window, then entries 0 ... floor((sp+T)/r)-1, none where
  // b >= floor((p+1)/r) (V4-SPEC 5.4, 11.2 item 7). r = 8, W = 8.
  auto c = randomCase(2, 6, 2, 16, 8, {0, 300}, 41);
  c.ratio = 8;
  c.N = 40;
  c.cache = randomBf16(c.B * c.N * c.D, 44);
  checkSparse(R"(
    func.func @f(%q: tensor<2x6x2x16xbf16>, %kv: tensor<2x6x16xbf16>,
                 %ring: !v4.window_ring<batch = 2, slots = 8, dim = 16, elementType = bf16>,
                 %sink: tensor<2xf32>, %pos: tensor<2xi64>,
                 %cache: !v4.kv_cache<batch = 2, capacity = 40, dim = 16, ratio = 8, elementType = bf16>)
        -> tensor<2x6x2x16xbf16> {
      %o = v4.attn.sparse %q, %kv, %ring, %sink, %pos
          compressed %cache : !v4.kv_cache<batch = 2, capacity = 40, dim = 16, ratio = 8, elementType = bf16>
          window 8
          : tensor<2x6x2x16xbf16>, tensor<2x6x16xbf16>,
            !v4.window_ring<batch = 2, slots = 8, dim = 16, elementType = bf16>,
            tensor<2xf32>, tensor<2xi64> -> tensor<2x6x2x16xbf16>
      return %o : tensor<2x6x2x16xbf16>
    })",
              c);
}

TEST(CPUKernelsAttention, SparseCSASelectedEntries) {
  // CSA: window, then the indexer's ids in their order; -1 and
  // non-visible ids dropped; a repeated id counts twice.
  auto c = randomCase(1, 4, 2, 16, 8, {37}, 51);
  c.ratio = 4;
  c.N = 12;
  c.K = 5;
  c.cache = randomBf16(c.B * c.N * c.D, 54);
  c.topk = {3,  0,  9,  -1, 9,  // p = 37: visible 9 -> id 9 dropped
            8,  1,  -1, 2,  2,  // p = 38
            9,  4,  7,  -1, -1, // p = 39: visible 10
            11, 10, 5,  6,  0}; // p = 40: visible 10 -> 11, 10 dropped
  checkSparse(R"(
    func.func @f(%q: tensor<1x4x2x16xbf16>, %kv: tensor<1x4x16xbf16>,
                 %ring: !v4.window_ring<batch = 1, slots = 8, dim = 16, elementType = bf16>,
                 %sink: tensor<2xf32>, %pos: tensor<1xi64>,
                 %cache: !v4.kv_cache<batch = 1, capacity = 12, dim = 16, ratio = 4, elementType = bf16>,
                 %idx: tensor<1x4x5xi64>) -> tensor<1x4x2x16xbf16> {
      %o = v4.attn.sparse %q, %kv, %ring, %sink, %pos
          compressed %cache : !v4.kv_cache<batch = 1, capacity = 12, dim = 16, ratio = 4, elementType = bf16>
          indices %idx : tensor<1x4x5xi64>
          window 8
          : tensor<1x4x2x16xbf16>, tensor<1x4x16xbf16>,
            !v4.window_ring<batch = 1, slots = 8, dim = 16, elementType = bf16>,
            tensor<2xf32>, tensor<1xi64> -> tensor<1x4x2x16xbf16>
      return %o : tensor<1x4x2x16xbf16>
    })",
              c);
}

TEST(CPUKernelsAttention, SparseSinkLimits) {
  // V4-SPEC 11.2 item 9: sink = -inf is plain softmax attention, +inf a
  // zero output, otherwise softmax-attention x 1/(1 + exp(sink - lse)).
  // Against exact (double) math: bf16 probabilities and a bf16 output give
  // a normwise relative error well under 1e-2 (stated tolerance).
  const int64_t T = 3, H = 3, D = 16, W = 128;
  CompiledKernel k;
  ASSERT_NO_FATAL_FAILURE(k.compile(R"(
    func.func @f(%q: tensor<1x3x3x16xbf16>, %kv: tensor<1x3x16xbf16>,
                 %ring: !v4.window_ring<batch = 1, slots = 128, dim = 16, elementType = bf16>,
                 %sink: tensor<3xf32>, %pos: tensor<1xi64>) -> tensor<1x3x3x16xbf16> {
      %o = v4.attn.sparse %q, %kv, %ring, %sink, %pos window 128
          : tensor<1x3x3x16xbf16>, tensor<1x3x16xbf16>,
            !v4.window_ring<batch = 1, slots = 128, dim = 16, elementType = bf16>,
            tensor<3xf32>, tensor<1xi64> -> tensor<1x3x3x16xbf16>
      return %o : tensor<1x3x3x16xbf16>
    })"));
  auto q = randomBf16(T * H * D, 61, 3.0f);
  auto kv = randomBf16(T * D, 62);
  auto ring = randomBf16(W * D, 63);
  std::vector<float> sink = {-kInf, kInf, 0.7f};
  std::vector<int64_t> pos = {200};
  std::vector<uint16_t> out(T * H * D, 0);
  auto dq = describe<4>(q.data(), {1, T, H, D});
  auto dkv = describe<3>(kv.data(), {1, T, D});
  auto dr = describe<3>(ring.data(), {1, W, D});
  auto ds = describe<1>(sink.data(), {H});
  auto dp = describe<1>(pos.data(), {1});
  auto dout = describe<4>(out.data(), {1, T, H, D});
  k.run({&dq, &dkv, &dr, &ds, &dp, &dout});
  for (int64_t t = 0; t < T; ++t) {
    int64_t p = 200 + t;
    std::vector<const uint16_t *> rows;
    for (int64_t pp = p - W + 1; pp <= p; ++pp)
      rows.push_back(pp >= 200 ? kv.data() + (pp - 200) * D
                               : ring.data() + (pp % W) * D);
    for (int64_t h = 0; h < H; ++h) {
      const uint16_t *qh = q.data() + (t * H + h) * D;
      std::vector<double> s(rows.size());
      double M = -1e300;
      for (size_t j = 0; j < rows.size(); ++j) {
        double dot = 0;
        for (int64_t i = 0; i < D; ++i)
          dot += double(decodeBF16(qh[i])) * decodeBF16(rows[j][i]);
        s[j] = dot / std::sqrt(double(D));
        M = std::max(M, s[j]);
      }
      double Z = 0;
      std::vector<double> o(D, 0.0);
      for (size_t j = 0; j < rows.size(); ++j) {
        double e = std::exp(s[j] - M);
        Z += e;
        for (int64_t i = 0; i < D; ++i)
          o[i] += e * decodeBF16(rows[j][i]);
      }
      double lse = M + std::log(Z);
      double factor = h == 0   ? 1.0
                      : h == 1 ? 0.0
                               : 1.0 / (1.0 + std::exp(0.7 - lse));
      double num = 0, den = 0;
      for (int64_t i = 0; i < D; ++i) {
        double want = o[i] / Z * factor;
        double got = decodeBF16(out[(t * H + h) * D + i]);
        if (h == 1) {
          EXPECT_EQ(got, 0.0) << "sink = +inf gives a zero output";
        }
        num += (got - want) * (got - want);
        den += want * want;
      }
      if (h != 1) {
        EXPECT_LE(std::sqrt(num / den), 1e-2) << "t " << t << " h " << h;
      }
    }
  }
}

//===----------------------------------------------------------------------===//
// v4.kv.compress
//===----------------------------------------------------------------------===//

const char *kRope = "#v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, "
                    "originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0>";

/// The frequencies of kRope (RopeTableAttr::getFrequencies, tested by
/// RopeTableTest against V4-SPEC 2.2).
std::vector<float> ropeFrequencies() {
  MLIRContext ctx;
  ctx.loadDialect<mlir::v4::V4Dialect>();
  auto attr = cast<mlir::v4::RopeTableAttr>(mlir::parseAttribute(kRope, &ctx));
  auto f = attr.getFrequencies();
  return std::vector<float>(f.begin(), f.end());
}

/// One compressor (V4-SPEC 5.3) and its spec oracle.
struct Compressor {
  int64_t d = 32, c = 128, r = 4, cap = 8, rd = 64;
  bool rotate = false;
  bool overlap() const { return r == 4; }
  int64_t coff() const { return overlap() ? 2 : 1; }
  int64_t width() const { return coff() * c; }
  int64_t rows() const { return coff() * r; }
  std::vector<float> wkv, wgate, ape; // fp32 values
  std::vector<uint16_t> norm;         // bf16
  std::vector<float> freqs = ropeFrequencies();

  std::string source() const {
    std::string st =
        "!v4.compressor_state<batch = 1, ratio = " + std::to_string(r) +
        ", dim = " + std::to_string(c) + ">";
    std::string ca =
        "!v4.kv_cache<batch = 1, capacity = " + std::to_string(cap) +
        ", dim = " + std::to_string(c) + ", ratio = " + std::to_string(r) +
        ", elementType = bf16>";
    std::string W = std::to_string(width()), D = std::to_string(d);
    std::string wt = "tensor<" + W + "x" + D + "xf32>";
    std::string at = "tensor<" + std::to_string(r) + "x" + W + "xf32>";
    std::string nt = "tensor<" + std::to_string(c) + "xbf16>";
    std::string xt = "tensor<1x?x" + D + "xbf16>";
    return "func.func @f(%x: " + xt + ", %s: " + st + ", %c: " + ca +
           ", %pos: tensor<1xi64>, %wkv: " + wt + ", %wg: " + wt +
           ", %ape: " + at + ", %norm: " + nt + ") -> (" + st + ", " + ca +
           ") {\n  %s1, %c1 = v4.kv.compress %x, %s, %c, %pos weights(%wkv, "
           "%wg, %ape, %norm) rope " +
           kRope + " eps 1.0e-6" + (rotate ? " rotate" : "") + " : " + xt +
           ", " + st + ", " + ca + ", tensor<1xi64> weights(" + wt + ", " + wt +
           ", " + at + ", " + nt + ")\n  return %s1, %c1 : " + st + ", " + ca +
           "\n}";
  }

  void randomize(uint64_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    wkv.resize(width() * d);
    wgate.resize(width() * d);
    ape.resize(r * width());
    for (auto &v : wkv)
      v = 0.3f * u(rng);
    for (auto &v : wgate)
      v = 0.3f * u(rng);
    for (auto &v : ape)
      v = 0.5f * u(rng);
    norm.resize(c);
    for (auto &v : norm)
      v = encodeBF16(1.0f + 0.2f * u(rng));
  }

  /// k_t, g_t = wkv x, wgate x + ape[t mod r] (fp32, in order of i).
  void project(const float *x, int64_t pos, float *k, float *g) const {
    for (int64_t o = 0; o < width(); ++o) {
      float a = 0, b = 0;
      for (int64_t i = 0; i < d; ++i) {
        a += wkv[o * d + i] * x[i];
        b += wgate[o * d + i] * x[i];
      }
      k[o] = a;
      g[o] = b + ape[(pos % r) * width() + o];
    }
  }

  /// V4-SPEC 5.3 post-processing of block `blk`, in place.
  void post(float *e, int64_t blk) const {
    float ss = 0;
    for (int64_t i = 0; i < c; ++i) {
      e[i] = bf(e[i]);
      ss += e[i] * e[i];
    }
    float rstd = 1.0f / std::sqrt(ss / float(c) + 1e-6f);
    for (int64_t i = 0; i < c; ++i)
      e[i] = bf(decodeBF16(norm[i]) * (e[i] * rstd));
    float pf = float(blk * r);
    for (int64_t i = 0; i < rd / 2; ++i) {
      float th = pf * freqs[i];
      float cs = std::cos(th), sn = std::sin(th);
      float &a = e[c - rd + 2 * i], &b = e[c - rd + 2 * i + 1];
      float a0 = a, b0 = b;
      float ac = a0 * cs, bs = b0 * sn, as = a0 * sn, bc = b0 * cs;
      a = bf(ac - bs);
      b = bf(as + bc);
    }
    auto quant = [&](int64_t s0, int64_t n, bool fp8) {
      float amax = 0;
      for (int64_t i = s0; i < s0 + n; ++i)
        amax = std::max(amax, std::fabs(e[i]));
      int ex = fp8 ? ::v4::quant::fp8ActScaleExponent(amax)
                   : ::v4::quant::fp4ActScaleExponent(amax);
      for (int64_t i = s0; i < s0 + n; ++i) {
        float v = std::ldexp(e[i], -ex);
        v = fp8 ? std::clamp(v, -448.0f, 448.0f) : std::clamp(v, -6.0f, 6.0f);
        v = fp8 ? ::v4::quant::roundE4M3(v) : ::v4::quant::roundE2M1(v);
        e[i] = bf(std::ldexp(v, ex));
      }
    };
    if (!rotate) {
      for (int64_t s0 = 0; s0 < c - rd; s0 += 64)
        quant(s0, 64, true);
      return;
    }
    for (int64_t h = 1; h < c; h *= 2)
      for (int64_t i = 0; i < c; i += 2 * h)
        for (int64_t j = i; j < i + h; ++j) {
          float a = e[j], b = e[j + h];
          e[j] = a + b;
          e[j + h] = a - b;
        }
    float hs = float(1.0 / std::sqrt(double(c)));
    for (int64_t i = 0; i < c; ++i)
      e[i] = bf(e[i] * hs);
    for (int64_t s0 = 0; s0 < c; s0 += 32)
      quant(s0, 32, false);
  }

  /// Per-channel softmax pooling of candidates (k, g) in the given order.
  static float pool(const std::vector<std::pair<float, float>> &cand) {
    float m = -kInf;
    for (auto [k, g] : cand)
      m = std::max(m, g);
    float sum = 0;
    for (auto [k, g] : cand)
      sum += std::exp(g - m);
    float acc = 0;
    for (auto [k, g] : cand)
      acc += k * (std::exp(g - m) / sum);
    return acc;
  }

  /// One-shot prefill by the formulas of V4-SPEC 5.3 from all tokens' (k,
  /// g): floor(T/r) entries [n, c].
  std::vector<float> prefill(const std::vector<float> &x, int64_t T) const {
    std::vector<float> K(T * width()), G(T * width());
    for (int64_t t = 0; t < T; ++t)
      project(x.data() + t * d, t, K.data() + t * width(),
              G.data() + t * width());
    int64_t n = T / r;
    std::vector<float> out(n * c);
    for (int64_t b = 0; b < n; ++b) {
      float *e = out.data() + b * c;
      for (int64_t ch = 0; ch < c; ++ch) {
        std::vector<std::pair<float, float>> cand;
        if (overlap()) {
          for (int64_t j = 0; j < r; ++j) {
            int64_t t = (b - 1) * r + j;
            cand.push_back(
                b ? std::make_pair(K[t * width() + ch], G[t * width() + ch])
                  : std::make_pair(0.0f, -kInf));
          }
          for (int64_t j = 0; j < r; ++j) {
            int64_t t = b * r + j;
            cand.push_back({K[t * width() + c + ch], G[t * width() + c + ch]});
          }
        } else {
          for (int64_t j = 0; j < r; ++j) {
            int64_t t = b * r + j;
            cand.push_back({K[t * width() + ch], G[t * width() + ch]});
          }
        }
        e[ch] = pool(cand);
      }
      post(e, b);
    }
    return out;
  }
};

/// Runs a compiled compressor on one chunk; state and cache updated in
/// place (results aliasing the operands, as the runtime does).
struct CompressorRun {
  const Compressor &cp;
  CompiledKernel k;
  std::vector<float> kv, score;
  std::vector<uint16_t> cache;
  explicit CompressorRun(const Compressor &cp) : cp(cp) {}
  void compile() { ASSERT_NO_FATAL_FAILURE(k.compile(cp.source())); }
  void reset() {
    kv.assign(cp.rows() * cp.width(), 0.0f);
    score.assign(cp.rows() * cp.width(), -kInf);
    cache.assign(cp.cap * cp.c, 0);
  }
  void chunk(const std::vector<uint16_t> &x, int64_t t0, int64_t T) {
    std::vector<uint16_t> xs(x.begin() + t0 * cp.d,
                             x.begin() + (t0 + T) * cp.d);
    std::vector<int64_t> pos = {t0};
    std::vector<float> wkv = cp.wkv, wg = cp.wgate, ape = cp.ape;
    std::vector<uint16_t> norm = cp.norm;
    auto dx = describe<3>(xs.data(), {1, T, cp.d});
    auto dwk = describe<2>(wkv.data(), {cp.width(), cp.d});
    auto dwg = describe<2>(wg.data(), {cp.width(), cp.d});
    auto da = describe<2>(ape.data(), {cp.r, cp.width()});
    auto dn = describe<1>(norm.data(), {cp.c});
    auto dk = describe<3>(kv.data(), {1, cp.rows(), cp.width()});
    auto ds = describe<3>(score.data(), {1, cp.rows(), cp.width()});
    auto dc = describe<3>(cache.data(), {1, cp.cap, cp.c});
    auto dp = describe<1>(pos.data(), {1});
    k.run({&dx, &dwk, &dwg, &da, &dn, &dk, &ds, &dc, &dp, &dk, &ds, &dc});
  }
};

/// Compares the kernel's first n cache rows with the oracle's entries:
/// FP8/FP4-quantised dims may move to the adjacent grid point and bf16 rope
/// dims by 2 ulps (V4-SPEC 2.6), in at most 1% of values; all else exact.
void expectEntries(const Compressor &cp, const std::vector<uint16_t> &cache,
                   const std::vector<float> &want, int64_t n) {
  int mismatches = 0;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < cp.c; ++ch) {
      float got = decodeBF16(cache[b * cp.c + ch]), w = want[b * cp.c + ch];
      if (got == w)
        continue;
      ++mismatches;
      bool quantised = cp.rotate || ch < cp.c - cp.rd;
      float tol = quantised ? std::ldexp(std::fabs(w), cp.rotate ? -1 : -3)
                            : std::ldexp(std::fabs(w), -7);
      EXPECT_LE(std::fabs(got - w), tol + 1e-30f)
          << "entry " << b << " ch " << ch << ": " << got << " vs " << w;
    }
  EXPECT_LE(mismatches, int(n * cp.c / 100)) << "entries differ too often";
}

std::vector<float> bf16Values(const std::vector<uint16_t> &v) {
  return decode(v);
}

TEST(CPUKernelsAttention, CompressNonOverlapConstantGatesGiveBlockMean) {
  // V4-SPEC 11.2 item 3: wgate = 0 and ape = 0 make every gate equal, so
  // entry b pools the block mean (sum k)/r (exact: 1/r is a power of two),
  // then the post-processing of 5.3.
  Compressor cp;
  cp.r = 8;
  cp.cap = 4;
  cp.randomize(71);
  std::fill(cp.wgate.begin(), cp.wgate.end(), 0.0f);
  std::fill(cp.ape.begin(), cp.ape.end(), 0.0f);
  const int64_t T = 29; // 3 blocks + 5 trailing tokens
  auto x = randomBf16(T * cp.d, 72);
  auto xf = bf16Values(x);
  std::vector<float> want(3 * cp.c);
  std::vector<float> k(cp.width()), g(cp.width());
  for (int64_t b = 0; b < 3; ++b) {
    std::vector<float> sum(cp.c, 0.0f);
    for (int64_t j = 0; j < cp.r; ++j) {
      cp.project(xf.data() + (b * cp.r + j) * cp.d, j, k.data(), g.data());
      for (int64_t ch = 0; ch < cp.c; ++ch)
        sum[ch] += k[ch];
    }
    for (int64_t ch = 0; ch < cp.c; ++ch)
      want[b * cp.c + ch] = sum[ch] / float(cp.r);
    cp.post(want.data() + b * cp.c, b);
  }
  CompressorRun run(cp);
  ASSERT_NO_FATAL_FAILURE(run.compile());
  run.reset();
  run.chunk(x, 0, T);
  expectEntries(cp, run.cache, want, 3);
  for (int64_t ch = 0; ch < cp.c; ++ch)
    EXPECT_EQ(run.cache[3 * cp.c + ch], 0) << "row 3 is not complete";
  // The trailing 5 tokens sit in state rows 0..4 (V4-SPEC 9.2.1).
  for (int64_t j = 0; j < 5; ++j) {
    cp.project(xf.data() + (24 + j) * cp.d, 24 + j, k.data(), g.data());
    for (int64_t o = 0; o < cp.width(); ++o) {
      EXPECT_EQ(run.kv[j * cp.width() + o], k[o]);
      EXPECT_EQ(run.score[j * cp.width() + o], g[o]);
    }
  }
}

TEST(CPUKernelsAttention, CompressNonOverlapOneHotGateSelectsToken) {
  // V4-SPEC 11.2 item 3: a large gate on in-block position j0 (through ape)
  // selects token b*r + j0 exactly; moving it in ape moves the selection.
  for (int64_t j0 : {0, 5}) {
    Compressor cp;
    cp.r = 8;
    cp.cap = 4;
    cp.randomize(81);
    std::fill(cp.wgate.begin(), cp.wgate.end(), 0.0f);
    std::fill(cp.ape.begin(), cp.ape.end(), 0.0f);
    for (int64_t o = 0; o < cp.width(); ++o)
      cp.ape[j0 * cp.width() + o] = 1000.0f;
    const int64_t T = 16;
    auto x = randomBf16(T * cp.d, 82);
    auto xf = bf16Values(x);
    std::vector<float> want(2 * cp.c), g(cp.width());
    for (int64_t b = 0; b < 2; ++b) {
      cp.project(xf.data() + (b * cp.r + j0) * cp.d, j0, want.data() + b * cp.c,
                 g.data());
      cp.post(want.data() + b * cp.c, b);
    }
    CompressorRun run(cp);
    ASSERT_NO_FATAL_FAILURE(run.compile());
    run.reset();
    run.chunk(x, 0, T);
    expectEntries(cp, run.cache, want, 2);
  }
}

TEST(CPUKernelsAttention, CompressOverlapBlocksMixPreviousAndCurrent) {
  // V4-SPEC 11.2 item 4 with equal gates: block 0 is the mean of its own 4
  // tokens' second-half channels (the absent previous block has weight 0);
  // block b mixes the 4 first-half rows of block b-1 with the 4 second-half
  // rows of block b (mean of 8).
  Compressor cp;
  cp.randomize(91);
  std::fill(cp.wgate.begin(), cp.wgate.end(), 0.0f);
  std::fill(cp.ape.begin(), cp.ape.end(), 0.0f);
  const int64_t T = 13;
  auto x = randomBf16(T * cp.d, 92);
  auto xf = bf16Values(x);
  std::vector<float> K(T * cp.width()), g(cp.width());
  for (int64_t t = 0; t < T; ++t)
    cp.project(xf.data() + t * cp.d, t, K.data() + t * cp.width(), g.data());
  std::vector<float> want(3 * cp.c);
  for (int64_t b = 0; b < 3; ++b) {
    for (int64_t ch = 0; ch < cp.c; ++ch) {
      float s = 0;
      if (b)
        for (int64_t j = 0; j < 4; ++j)
          s += K[((b - 1) * 4 + j) * cp.width() + ch];
      for (int64_t j = 0; j < 4; ++j)
        s += K[(b * 4 + j) * cp.width() + cp.c + ch];
      want[b * cp.c + ch] = s / (b ? 8.0f : 4.0f);
    }
    cp.post(want.data() + b * cp.c, b);
  }
  CompressorRun run(cp);
  ASSERT_NO_FATAL_FAILURE(run.compile());
  run.reset();
  run.chunk(x, 0, T);
  expectEntries(cp, run.cache, want, 3);
}

/// Random gates: one-shot prefill against the 5.3 oracle, then token by
/// token (T = 1 decode steps) and in chunks of 3 from the empty state, which
/// must equal the one-shot kernel run bit for bit (V4-SPEC 11.2 item 4),
/// state included (rows defined by 9.2.1).
void checkIncremental(Compressor &cp, uint64_t seed) {
  const int64_t T = 4 * cp.r + 3;
  auto x = randomBf16(T * cp.d, seed);
  CompressorRun oneShot(cp);
  ASSERT_NO_FATAL_FAILURE(oneShot.compile());
  oneShot.reset();
  oneShot.chunk(x, 0, T);
  expectEntries(cp, oneShot.cache, cp.prefill(bf16Values(x), T), T / cp.r);
  for (int64_t step : {1, 3}) {
    CompressorRun inc(cp);
    ASSERT_NO_FATAL_FAILURE(inc.compile());
    inc.reset();
    for (int64_t t0 = 0; t0 < T; t0 += step)
      inc.chunk(x, t0, std::min(step, T - t0));
    EXPECT_EQ(inc.cache, oneShot.cache) << "step " << step;
    int64_t definedRows = (cp.overlap() ? cp.r : 0) + T % cp.r;
    for (int64_t i = 0; i < definedRows * cp.width(); ++i) {
      EXPECT_EQ(inc.kv[i], oneShot.kv[i]) << "step " << step << " kv " << i;
      EXPECT_EQ(inc.score[i], oneShot.score[i])
          << "step " << step << " score " << i;
    }
  }
}

TEST(CPUKernelsAttention, CompressOverlapIncrementalEqualsOneShot) {
  Compressor cp;
  cp.randomize(101);
  checkIncremental(cp, 102);
}

TEST(CPUKernelsAttention, CompressNonOverlapIncrementalEqualsOneShot) {
  Compressor cp;
  cp.r = 8;
  cp.cap = 4;
  cp.randomize(111);
  checkIncremental(cp, 112);
}

TEST(CPUKernelsAttention, CompressIndexerRotateIncrementalEqualsOneShot) {
  // The indexer compressor: Hadamard over c = 128, FP4 fake-quant block 32.
  Compressor cp;
  cp.rotate = true;
  cp.randomize(121);
  checkIncremental(cp, 122);
}

} // namespace
