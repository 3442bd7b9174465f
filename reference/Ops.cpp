//===- Ops.cpp - plain C++ reference semantics of the v4 ops --------------===//
//
// One template per op on the numerics N (Ops.h); explicitly instantiated
// for Production, FP32 and Double at the end. In Production every
// expression keeps the fp32 rounding of the original float-only oracle
// (T = float, same operand order), so it stays bit-exact with the kernels.
//
//===----------------------------------------------------------------------===//
#include "reference/Ops.h"

#include "runtime/numerics/Numerics.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <numeric>

namespace v4::ref {

namespace q = ::v4::quant;

namespace {

template <typename T> constexpr T inf() {
  return std::numeric_limits<T>::infinity();
}

template <typename T> T sigmoid(T x) { return T(1) / (T(1) + std::exp(-x)); }

template <typename T> T blockAmax(const T *x, int64_t n) {
  T a = 0;
  for (int64_t i = 0; i < n; ++i)
    a = std::max(a, std::fabs(x[i]));
  return a;
}

/// Round-to-nearest-even of |x| onto a sorted non-negative grid (ties to the
/// even code, saturating), sign restored: quant::nearestCode on a double.
double snapToGrid(const float *grid, unsigned n, double x) {
  double a = std::fabs(x);
  unsigned c = n - 1;
  if (a < grid[n - 1]) {
    unsigned hi = unsigned(std::upper_bound(grid, grid + n, a) - grid);
    unsigned lo = hi - 1;
    double dLo = a - grid[lo], dHi = double(grid[hi]) - a;
    c = dLo < dHi ? lo : dHi < dLo ? hi : ((lo & 1) ? hi : lo);
  }
  return std::copysign(double(grid[c]), x);
}

const float kE2M1Grid[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};

float snapE4M3(float v) { return q::roundE4M3(v); }
double snapE4M3(double v) {
  return snapToGrid(q::detail::e4m3Grid().v, 127, v);
}
float snapE2M1(float v) { return q::roundE2M1(v); }
double snapE2M1(double v) { return snapToGrid(kE2M1Grid, 8, v); }

/// ceil(log2(max(amax, floor) / gridMax)) exactly, in double.
int exactScaleExponent(double amax, double floor, double gridMax) {
  int e = 0;
  double mant = std::frexp(std::max(amax, floor) / gridMax, &e);
  return mant == 0.5 ? e - 1 : e;
}

/// The scale rule of V4-SPEC 2.3: fp32 as the spec states it for float
/// values, the exact ceil(log2(amax / 448)) for double values.
int fp8ScaleExponent(float amax) { return q::fp8ActScaleExponent(amax); }
int fp8ScaleExponent(double amax) {
  return exactScaleExponent(amax, double(q::kFP8AmaxFloor), 448.0);
}
int fp4ScaleExponent(float amax) { return q::fp4ActScaleExponent(amax); }
int fp4ScaleExponent(double amax) {
  return exactScaleExponent(amax, double(q::kFP4AmaxFloor), 6.0);
}

} // namespace

template <typename N> typename N::T Ops<N>::bf(T x) {
  if constexpr (N::kRoundBF16)
    return q::roundBF16(x);
  else
    return x;
}

template <typename N> void Ops<N>::bfInPlace(T *x, int64_t n) {
  if constexpr (N::kRoundBF16)
    for (int64_t i = 0; i < n; ++i)
      x[i] = bf(x[i]);
}

//===----------------------------------------------------------------------===//
// RMSNorm
//===----------------------------------------------------------------------===//

template <typename T> static T meanSquare(const T *x, int64_t n) {
  T acc = 0;
  for (int64_t i = 0; i < n; ++i)
    acc += x[i] * x[i];
  return T(acc / double(n));
}

template <typename N>
typename N::T Ops<N>::rmsScale(const T *x, int64_t n, float eps) {
  return T(1) / std::sqrt(meanSquare(x, n) + T(eps));
}

template <typename N>
void Ops<N>::rmsNorm(const T *x, const float *w, int64_t n, float eps, T *y) {
  T r = rmsScale(x, n, eps);
  for (int64_t i = 0; i < n; ++i) {
    T v = x[i] * r;
    y[i] = bf(w ? T(w[i]) * v : v);
  }
}

template <typename N>
void Ops<N>::rmsNormRows(const T *x, const float *w, int64_t rows, int64_t n,
                         float eps, T *y) {
  for (int64_t r = 0; r < rows; ++r)
    rmsNorm(x + r * n, w, n, eps, y + r * n);
}

template <typename N> void Ops<N>::headRmsNormBF16(T *x, int64_t n, float eps) {
  // q.square() is a bf16 tensor; .mean() accumulates in fp32 and rounds.
  T acc = 0;
  for (int64_t i = 0; i < n; ++i)
    acc += bf(x[i] * x[i]);
  T mean = bf(T(acc / double(n)));
  T r = bf(T(1) / std::sqrt(bf(mean + T(eps))));
  for (int64_t i = 0; i < n; ++i)
    x[i] = bf(x[i] * r);
}

//===----------------------------------------------------------------------===//
// RoPE
//===----------------------------------------------------------------------===//

template <typename N>
auto Ops<N>::makeRopeTable(int64_t dim, double base, bool yarn, double factor,
                           int64_t originalSeqLen, double betaFast,
                           double betaSlow) -> Rope {
  Rope t;
  t.dim = dim;
  int64_t half = dim / 2;
  t.f.resize(size_t(half));
  for (int64_t i = 0; i < half; ++i) {
    // 1.0 / (base ** (arange(0, dim, 2, float32) / dim)), all in T.
    T e = T(2 * i) / T(dim);
    t.f[size_t(i)] = T(1) / std::pow(T(base), e);
  }
  if (yarn && originalSeqLen > 0) {
    auto cd = [&](double rot) {
      return double(dim) * std::log(double(originalSeqLen) / (rot * 2 * M_PI)) /
             (2 * std::log(base));
    };
    int64_t low = std::max<int64_t>(int64_t(std::floor(cd(betaFast))), 0);
    int64_t highI =
        std::min<int64_t>(int64_t(std::ceil(cd(betaSlow))), dim - 1);
    double high = double(highI);
    if (double(low) == high)
      high += 0.001;
    t.yarnLow = low;
    t.yarnHigh = high;
    T fac = T(factor);
    for (int64_t i = 0; i < half; ++i) {
      T lin = (T(i) - T(low)) / T(high - double(low));
      T ramp = std::clamp(lin, T(0), T(1));
      T smooth = T(1) - ramp;
      T f = t.f[size_t(i)];
      t.f[size_t(i)] = (f / fac) * (T(1) - smooth) + f * smooth;
    }
  }
  return t;
}

template <typename N>
void Ops<N>::rope(T *x, const Rope &t, int64_t p, bool inverse) {
  for (int64_t i = 0; i < t.dim / 2; ++i) {
    T th = t.angle(p, i);
    T c = std::cos(th), s = std::sin(th);
    if (inverse)
      s = -s;
    T a = x[2 * i], b = x[2 * i + 1];
    T ac = a * c, bs = b * s, as = a * s, bc = b * c;
    x[2 * i] = bf(ac - bs);
    x[2 * i + 1] = bf(as + bc);
  }
}

//===----------------------------------------------------------------------===//
// Fake quantisation and Hadamard
//===----------------------------------------------------------------------===//

/// Fake quantisation of x[0..extent) in blocks: per block the pow-2 scale
/// 2^scaleExp(amax), then round(ldexp(snap(clamp(x / s)), e)).
template <typename T, typename ScaleExp, typename Snap, typename Round>
static void fakeQuantBlocks(T *x, int64_t extent, int64_t block, T gridMax,
                            ScaleExp scaleExp, Snap snap, Round round) {
  for (int64_t b0 = 0; b0 < extent; b0 += block) {
    int64_t n = std::min(block, extent - b0);
    int e = scaleExp(blockAmax(x + b0, n));
    for (int64_t i = 0; i < n; ++i) {
      T v = std::ldexp(x[b0 + i], -e);
      v = std::clamp(v, -gridMax, gridMax);
      x[b0 + i] = round(std::ldexp(snap(v), e));
    }
  }
}

template <typename N>
void Ops<N>::fakeQuantFP8(T *x, int64_t extent, int64_t block) {
  fakeQuantBlocks(
      x, extent, block, T(448), [](T a) { return fp8ScaleExponent(a); },
      [](T v) { return snapE4M3(v); }, bf);
}

template <typename N>
void Ops<N>::fakeQuantFP4(T *x, int64_t extent, int64_t block) {
  fakeQuantBlocks(
      x, extent, block, T(6), [](T a) { return fp4ScaleExponent(a); },
      [](T v) { return snapE2M1(v); }, bf);
}

template <typename N> void Ops<N>::hadamard(T *x, int64_t n) {
  assert((n & (n - 1)) == 0 && "Hadamard size must be a power of two");
  for (int64_t h = 1; h < n; h *= 2)
    for (int64_t i = 0; i < n; i += 2 * h)
      for (int64_t j = i; j < i + h; ++j) {
        T a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
  T s = T(1.0 / std::sqrt(double(n)));
  for (int64_t i = 0; i < n; ++i)
    x[i] = bf(x[i] * s);
}

//===----------------------------------------------------------------------===//
// Linear
//===----------------------------------------------------------------------===//

Vec Weight::dequant() const {
  Vec out(q.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      out[size_t(r * cols + c)] = q[size_t(r * cols + c)] * scaleAt(r, c);
  return out;
}

template <typename N>
void Ops<N>::quantizeActFP8(const T *x, int64_t k, int64_t block, T *qa,
                            T *sa) {
  for (int64_t b0 = 0, bi = 0; b0 < k; b0 += block, ++bi) {
    int64_t n = std::min(block, k - b0);
    int e = fp8ScaleExponent(blockAmax(x + b0, n));
    sa[bi] = std::ldexp(T(1), e);
    for (int64_t i = 0; i < n; ++i)
      qa[b0 + i] =
          snapE4M3(std::clamp(std::ldexp(x[b0 + i], -e), T(-448), T(448)));
  }
}

template <typename N>
void Ops<N>::linear(const Weight &w, const T *x, T *y, bool quantAct,
                    int64_t actBlock, bool fp32Out) {
  int64_t K = w.cols;
  bool lowp = w.kind == Weight::FP8 || w.kind == Weight::FP4;
  if (lowp) {
    // Without quantAct the activation as it is, at scale 1: per slice the
    // same products, the partial sums scaled by the (power-of-2) weight
    // scale and added in ascending order.
    V qa(static_cast<size_t>(K)), sa(size_t((K + actBlock - 1) / actBlock));
    if (quantAct) {
      quantizeActFP8(x, K, actBlock, qa.data(), sa.data());
    } else {
      std::copy(x, x + K, qa.begin());
      std::fill(sa.begin(), sa.end(), T(1));
    }
    // K slices on which both the activation and the weight scale are
    // constant.
    int64_t slice = std::gcd(actBlock, w.bc);
    for (int64_t n = 0; n < w.rows; ++n) {
      const float *wr = w.q.data() + n * K;
      T acc = 0;
      for (int64_t k0 = 0; k0 < K; k0 += slice) {
        int64_t k1 = std::min(K, k0 + slice);
        T part = 0;
        for (int64_t k = k0; k < k1; ++k)
          part += qa[size_t(k)] * T(wr[k]);
        acc += part * sa[size_t(k0 / actBlock)] * T(w.scaleAt(n, k0));
      }
      y[n] = fp32Out ? acc : bf(acc);
    }
    return;
  }
  for (int64_t n = 0; n < w.rows; ++n) {
    const float *wr = w.q.data() + n * K;
    T acc = 0;
    for (int64_t k = 0; k < K; ++k)
      acc += x[k] * T(wr[k]);
    y[n] = (fp32Out || w.kind == Weight::F32) ? acc : bf(acc);
  }
}

template <typename N>
void Ops<N>::groupedLinear(const Vec &w, int64_t groups, int64_t rank,
                           int64_t inG, const T *o, T *u) {
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t r = 0; r < rank; ++r) {
      const float *wr = w.data() + (g * rank + r) * inG;
      T acc = 0;
      for (int64_t i = 0; i < inG; ++i)
        acc += T(wr[i]) * o[g * inG + i];
      u[g * rank + r] = bf(acc);
    }
}

//===----------------------------------------------------------------------===//
// Compressor
//===----------------------------------------------------------------------===//

template <typename T>
void BasicCompressorState<T>::reset(const CompressorParams &p) {
  rows = p.coff() * p.r;
  width = p.coff() * p.c;
  kv.assign(size_t(rows * width), T(0));
  score.assign(size_t(rows * width), -inf<T>());
}

template <typename N>
void Ops<N>::compressorProject(const CompressorParams &p, const T *x,
                               int64_t pos, T *k, T *g) {
  int64_t W = p.coff() * p.c;
  const float *ape = p.ape.data() + (pos % p.r) * W;
  for (int64_t o = 0; o < W; ++o) {
    T a = 0, b = 0;
    const float *wk = p.wkv.data() + o * p.d, *wg = p.wgate.data() + o * p.d;
    for (int64_t i = 0; i < p.d; ++i) {
      a += T(wk[i]) * x[i];
      b += T(wg[i]) * x[i];
    }
    k[o] = a;
    g[o] = b + T(ape[o]);
  }
}

template <typename N>
void Ops<N>::compressorPool(const T *k, const T *g, int64_t n, int64_t stride,
                            int64_t c, T *out) {
  V e(static_cast<size_t>(n));
  for (int64_t ch = 0; ch < c; ++ch) {
    T m = -inf<T>();
    for (int64_t j = 0; j < n; ++j)
      m = std::max(m, g[j * stride + ch]);
    T sum = 0;
    for (int64_t j = 0; j < n; ++j) {
      e[size_t(j)] = std::exp(g[j * stride + ch] - m);
      sum += e[size_t(j)];
    }
    T acc = 0;
    for (int64_t j = 0; j < n; ++j)
      acc += k[j * stride + ch] * (e[size_t(j)] / sum);
    out[ch] = acc;
  }
}

template <typename N>
void Ops<N>::compressorPostProcess(const CompressorParams &p, const Post &pp,
                                   int64_t block, T *entry) {
  int64_t c = p.c;
  bfInPlace(entry, c);
  rmsNorm(entry, p.norm.data(), c, pp.eps, entry);
  int64_t rd = pp.rope->dim;
  rope(entry + c - rd, *pp.rope, block * p.r);
  if (pp.indexer) {
    hadamard(entry, c);
    if (pp.fakeQuant)
      fakeQuantFP4(entry, c, 32);
  } else if (pp.fakeQuant) {
    fakeQuantFP8(entry, c - rd, 64);
  }
}

/// Pools block b from the candidate rows: overlap = 2r rows (previous block
/// first half, current block second half), else r rows.
template <typename N, typename T>
static std::vector<T> poolOverlap(const CompressorParams &p, const T *kPrev,
                                  const T *gPrev, const T *kCur, const T *gCur,
                                  int64_t stride) {
  int64_t c = p.c, r = p.r;
  // Candidate matrix [2r, c]: rows 0..r-1 prev[:, :c], rows r..2r-1
  // cur[:, c:].
  std::vector<T> K(size_t(2 * r * c)), G(size_t(2 * r * c));
  for (int64_t j = 0; j < r; ++j)
    for (int64_t ch = 0; ch < c; ++ch) {
      K[size_t(j * c + ch)] = kPrev ? kPrev[j * stride + ch] : T(0);
      G[size_t(j * c + ch)] = gPrev ? gPrev[j * stride + ch] : -inf<T>();
      K[size_t((r + j) * c + ch)] = kCur[j * stride + c + ch];
      G[size_t((r + j) * c + ch)] = gCur[j * stride + c + ch];
    }
  std::vector<T> out(static_cast<size_t>(c));
  Ops<N>::compressorPool(K.data(), G.data(), 2 * r, c, c, out.data());
  return out;
}

template <typename N>
auto Ops<N>::compressorPrefill(const CompressorParams &p, const Post &pp,
                               const T *x, int64_t tokens, State &state) -> V {
  state.reset(p);
  const int64_t W = p.coff() * p.c, r = p.r, c = p.c;
  V k(size_t(tokens * W)), g(size_t(tokens * W));
  for (int64_t t = 0; t < tokens; ++t)
    compressorProject(p, x + t * p.d, t, k.data() + t * W, g.data() + t * W);
  int64_t nb = tokens / r;
  V entries(size_t(nb * c));
  for (int64_t b = 0; b < nb; ++b) {
    V e;
    if (p.overlap) {
      const T *kp = b ? k.data() + (b - 1) * r * W : nullptr;
      const T *gp = b ? g.data() + (b - 1) * r * W : nullptr;
      e = poolOverlap<N>(p, kp, gp, k.data() + b * r * W, g.data() + b * r * W,
                         W);
    } else {
      e.resize(size_t(c));
      compressorPool(k.data() + b * r * W, g.data() + b * r * W, r, W, c,
                     e.data());
    }
    compressorPostProcess(p, pp, b, e.data());
    std::copy(e.begin(), e.end(), entries.begin() + b * c);
  }
  // State (V4-SPEC 9.2.1).
  int64_t off = p.overlap ? r : 0, rem = tokens % r;
  if (p.overlap && nb >= 1)
    for (int64_t j = 0; j < r; ++j)
      for (int64_t ch = 0; ch < W; ++ch) {
        state.kv[size_t(j * W + ch)] = k[size_t(((nb - 1) * r + j) * W + ch)];
        state.score[size_t(j * W + ch)] =
            g[size_t(((nb - 1) * r + j) * W + ch)];
      }
  for (int64_t j = 0; j < rem; ++j)
    for (int64_t ch = 0; ch < W; ++ch) {
      state.kv[size_t((off + j) * W + ch)] = k[size_t((nb * r + j) * W + ch)];
      state.score[size_t((off + j) * W + ch)] =
          g[size_t((nb * r + j) * W + ch)];
    }
  return entries;
}

template <typename N>
auto Ops<N>::compressorDecode(const CompressorParams &p, const Post &pp,
                              const T *x, int64_t pos, State &state)
    -> std::optional<V> {
  int64_t W = p.coff() * p.c, r = p.r, c = p.c;
  int64_t row = (p.overlap ? r : 0) + pos % r;
  compressorProject(p, x, pos, state.kv.data() + row * W,
                    state.score.data() + row * W);
  if ((pos + 1) % r != 0)
    return std::nullopt;
  V e;
  if (p.overlap) {
    e = poolOverlap<N>(p, state.kv.data(), state.score.data(),
                       state.kv.data() + r * W, state.score.data() + r * W, W);
    std::copy(state.kv.begin() + r * W, state.kv.end(), state.kv.begin());
    std::copy(state.score.begin() + r * W, state.score.end(),
              state.score.begin());
  } else {
    e.resize(size_t(c));
    compressorPool(state.kv.data(), state.score.data(), r, W, c, e.data());
  }
  compressorPostProcess(p, pp, pos / r, e.data());
  return e;
}

//===----------------------------------------------------------------------===//
// Index lists and indexer
//===----------------------------------------------------------------------===//

std::vector<int64_t> windowList(int64_t p, int64_t startPos, int64_t T,
                                int64_t W) {
  int64_t len = startPos == 0 ? std::min(T, W) : W;
  std::vector<int64_t> out(static_cast<size_t>(len));
  int64_t first = std::max<int64_t>(0, p - W + 1);
  for (int64_t j = 0; j < len; ++j)
    out[size_t(j)] = first + j > p ? -1 : first + j;
  return out;
}

std::vector<int64_t> compressedList(int64_t p, int64_t startPos, int64_t T,
                                    int64_t r) {
  int64_t n = (startPos + T) / r, vis = (p + 1) / r;
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (int64_t b = 0; b < n; ++b)
    out[size_t(b)] = b < vis ? b : -1;
  return out;
}

template <typename N>
auto Ops<N>::indexerScores(const T *qv, const T *w, int64_t H, int64_t D,
                           const T *keys, int64_t n) -> V {
  V s(static_cast<size_t>(n));
  for (int64_t b = 0; b < n; ++b) {
    T acc = 0;
    for (int64_t h = 0; h < H; ++h) {
      T dot = 0;
      for (int64_t i = 0; i < D; ++i)
        dot += qv[h * D + i] * keys[b * D + i];
      T d = bf(dot);
      d = std::max(d, T(0));
      acc += bf(d * w[h]);
    }
    s[size_t(b)] = bf(acc);
  }
  return s;
}

template <typename N>
std::vector<int64_t> Ops<N>::indexerTopk(const V &scores, int64_t visible,
                                         int64_t topk, int64_t total) {
  int64_t k = std::min(topk, total);
  std::vector<int64_t> order(static_cast<size_t>(total));
  std::iota(order.begin(), order.end(), 0);
  auto key = [&](int64_t b) {
    return b < visible && b < int64_t(scores.size()) ? scores[size_t(b)]
                                                     : -inf<T>();
  };
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return key(a) > key(b); });
  std::vector<int64_t> out(static_cast<size_t>(k));
  for (int64_t i = 0; i < k; ++i)
    out[size_t(i)] = order[size_t(i)] < visible ? order[size_t(i)] : -1;
  return out;
}

//===----------------------------------------------------------------------===//
// Sink attention
//===----------------------------------------------------------------------===//

template <typename N>
void Ops<N>::sinkAttention(const T *qv, const std::vector<const T *> &rows,
                           int64_t D, T scale, float sink, T *out, T *lse) {
  T m = -inf<T>(), l = 0;
  V acc(size_t(D), T(0));
  int64_t n = int64_t(rows.size());
  V s(64);
  for (int64_t t0 = 0; t0 < n; t0 += 64) {
    int64_t t1 = std::min(n, t0 + 64);
    T mt = m;
    for (int64_t j = t0; j < t1; ++j) {
      T sj = -inf<T>();
      if (rows[size_t(j)]) {
        T dot = 0;
        for (int64_t i = 0; i < D; ++i)
          dot += qv[i] * rows[size_t(j)][i];
        sj = dot * scale;
      }
      s[size_t(j - t0)] = sj;
      mt = std::max(mt, sj);
    }
    if (mt == -inf<T>())
      continue; // nothing valid yet
    T alpha = std::exp(m - mt);
    T psum = 0;
    for (auto &a : acc)
      a *= alpha;
    for (int64_t j = t0; j < t1; ++j) {
      T pj = std::exp(s[size_t(j - t0)] - mt);
      psum += pj;
      if (!rows[size_t(j)])
        continue;
      T pb = bf(pj);
      for (int64_t i = 0; i < D; ++i)
        acc[size_t(i)] += pb * rows[size_t(j)][i];
    }
    l = l * alpha + psum;
    m = mt;
  }
  if (lse)
    *lse = m + std::log(l);
  l += std::exp(T(sink) - m);
  for (int64_t i = 0; i < D; ++i)
    out[i] = bf(acc[size_t(i)] / l);
}

//===----------------------------------------------------------------------===//
// MoE
//===----------------------------------------------------------------------===//

template <typename N> auto Ops<N>::sqrtSoftplus(const V &z) -> V {
  V s(z.size());
  for (size_t i = 0; i < z.size(); ++i) {
    // softplus with torch's linear branch above 20 (V4-SPEC 6.1). log1p(v)
    // as log(u) v / (u - 1), u = 1 + v (v where u - 1 is 0): accurate to
    // about an ulp like std::log1p, and the compiled gates' arithmetic
    // (lowering/V4ToLinalg/V4ToLinalgHyperConn.cpp log1p), so that both
    // round alike (std::log1p's last bit differs from it now and then,
    // which moved a routing weight and a mid-size logit row by 1.2e-3).
    T v = std::exp(z[i]);
    T u = T(1) + v, d = u - T(1);
    T sp = z[i] > T(20) ? z[i] : d == T(0) ? v : std::log(u) * v / d;
    s[i] = std::sqrt(sp);
  }
  return s;
}

template <typename T>
static std::vector<T> routeWeights(const std::vector<T> &s,
                                   const std::vector<int64_t> &ids,
                                   float routeScale) {
  std::vector<T> w(ids.size());
  T sum = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    w[i] = s[size_t(ids[i])];
    sum += w[i];
  }
  for (auto &v : w)
    v = (v / sum) * T(routeScale);
  return w;
}

template <typename N>
auto Ops<N>::scoreGate(const V &s, const Vec &bias, int64_t k, float routeScale)
    -> Gate {
  int64_t E = int64_t(s.size());
  std::vector<int64_t> order(static_cast<size_t>(E));
  std::iota(order.begin(), order.end(), 0);
  V biased(s.size());
  for (int64_t e = 0; e < E; ++e)
    biased[size_t(e)] =
        s[size_t(e)] + (bias.empty() ? T(0) : T(bias[size_t(e)]));
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return biased[size_t(a)] > biased[size_t(b)];
  });
  Gate g;
  g.ids.assign(order.begin(), order.begin() + k);
  g.weights = routeWeights(s, g.ids, routeScale);
  return g;
}

template <typename N>
auto Ops<N>::hashGate(const V &s, const int64_t *row, int64_t k,
                      float routeScale) -> Gate {
  Gate g;
  g.ids.assign(row, row + k);
  g.weights = routeWeights(s, g.ids, routeScale);
  return g;
}

template <typename N>
void Ops<N>::swigluHidden(const T *a, const T *b, int64_t n, float limit,
                          const T *weight, T *h) {
  for (int64_t i = 0; i < n; ++i) {
    T up = b[i], gate = a[i];
    if (limit > 0) {
      up = std::clamp(up, T(-limit), T(limit));
      gate = std::min(gate, T(limit));
    }
    T v = (gate / (T(1) + std::exp(-gate))) * up;
    if (weight)
      v = *weight * v;
    h[i] = bf(v);
  }
}

template <typename N>
void Ops<N>::expert(const ExpertWeights &e, const T *x, float limit,
                    const T *weight, bool quantAct, T *y) {
  int64_t I = e.w1.rows;
  V a(static_cast<size_t>(I)), b(static_cast<size_t>(I)),
      h(static_cast<size_t>(I));
  linear(e.w1, x, a.data(), quantAct);
  linear(e.w3, x, b.data(), quantAct);
  swigluHidden(a.data(), b.data(), I, limit, weight, h.data());
  linear(e.w2, h.data(), y, quantAct);
}

template <typename N>
void Ops<N>::moeCombine(const std::vector<const T *> &ys, const T *shared,
                        int64_t d, T *y) {
  for (int64_t i = 0; i < d; ++i) {
    T acc = 0;
    for (const T *ye : ys)
      acc += ye[i];
    if (shared)
      acc += shared[i];
    y[i] = bf(acc);
  }
}

//===----------------------------------------------------------------------===//
// mHC
//===----------------------------------------------------------------------===//

template <typename N>
auto Ops<N>::hcSplitSinkhorn(const T *m, const float *scale, const float *base,
                             int64_t n, int64_t iters, float eps) -> Split {
  Split s;
  s.pre.resize(size_t(n));
  s.post.resize(size_t(n));
  s.comb.resize(size_t(n * n));
  const T e = T(eps);
  for (int64_t j = 0; j < n; ++j) {
    s.pre[size_t(j)] = sigmoid(m[j] * T(scale[0]) + T(base[j])) + e;
    s.post[size_t(j)] = T(2) * sigmoid(m[n + j] * T(scale[1]) + T(base[n + j]));
  }
  V &C = s.comb;
  for (int64_t i = 0; i < n * n; ++i)
    C[size_t(i)] = m[2 * n + i] * T(scale[2]) + T(base[2 * n + i]);
  auto colNorm = [&] {
    for (int64_t k = 0; k < n; ++k) {
      T sum = 0;
      for (int64_t j = 0; j < n; ++j)
        sum += C[size_t(j * n + k)];
      for (int64_t j = 0; j < n; ++j)
        C[size_t(j * n + k)] /= (sum + e);
    }
  };
  auto rowNorm = [&] {
    for (int64_t j = 0; j < n; ++j) {
      T sum = 0;
      for (int64_t k = 0; k < n; ++k)
        sum += C[size_t(j * n + k)];
      for (int64_t k = 0; k < n; ++k)
        C[size_t(j * n + k)] /= (sum + e);
    }
  };
  // Row softmax + eps, then a column normalisation.
  for (int64_t j = 0; j < n; ++j) {
    T mx = -inf<T>();
    for (int64_t k = 0; k < n; ++k)
      mx = std::max(mx, C[size_t(j * n + k)]);
    T sum = 0;
    for (int64_t k = 0; k < n; ++k) {
      C[size_t(j * n + k)] = std::exp(C[size_t(j * n + k)] - mx);
      sum += C[size_t(j * n + k)];
    }
    for (int64_t k = 0; k < n; ++k)
      C[size_t(j * n + k)] = C[size_t(j * n + k)] / sum + e;
  }
  colNorm();
  for (int64_t it = 1; it < iters; ++it) {
    rowNorm();
    colNorm();
  }
  return s;
}

template <typename N>
auto Ops<N>::hcMixes(const T *X, int64_t n, int64_t d, const float *fn,
                     int64_t M, float normEps) -> V {
  T rho = rmsScale(X, n * d, normEps);
  V m(static_cast<size_t>(M));
  for (int64_t i = 0; i < M; ++i) {
    T acc = 0;
    for (int64_t c = 0; c < n * d; ++c)
      acc += X[c] * T(fn[i * n * d + c]);
    m[size_t(i)] = acc * rho;
  }
  return m;
}

/// y[c] = bf(sum_j w_j X_j[c]).
template <typename N, typename T>
static void weightedLaneSum(const std::vector<T> &w, const T *X, int64_t n,
                            int64_t d, T *y) {
  for (int64_t c = 0; c < d; ++c) {
    T acc = 0;
    for (int64_t j = 0; j < n; ++j)
      acc += w[size_t(j)] * X[j * d + c];
    y[c] = Ops<N>::bf(acc);
  }
}

template <typename N>
auto Ops<N>::hcPre(const T *X, int64_t n, int64_t d, const float *fn,
                   const float *scale, const float *base, int64_t iters,
                   float normEps, float hcEps, T *y) -> Split {
  V m = hcMixes(X, n, d, fn, (2 + n) * n, normEps);
  Split s = hcSplitSinkhorn(m.data(), scale, base, n, iters, hcEps);
  weightedLaneSum<N>(s.pre, X, n, d, y);
  return s;
}

template <typename N>
void Ops<N>::hcPost(const T *o, const T *X, const Split &s, int64_t n,
                    int64_t d, T *out) {
  for (int64_t k = 0; k < n; ++k)
    for (int64_t c = 0; c < d; ++c) {
      T mix = 0;
      for (int64_t j = 0; j < n; ++j)
        mix += s.comb[size_t(j * n + k)] * X[j * d + c];
      out[k * d + c] = bf(s.post[size_t(k)] * o[c] + mix);
    }
}

template <typename N>
void Ops<N>::hcHead(const T *X, int64_t n, int64_t d, const float *fn,
                    const float *scale, const float *base, float normEps,
                    float hcEps, T *y) {
  V m = hcMixes(X, n, d, fn, n, normEps);
  V w(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j)
    w[size_t(j)] = sigmoid(m[size_t(j)] * T(scale[0]) + T(base[j])) + T(hcEps);
  weightedLaneSum<N>(w, X, n, d, y);
}

//===----------------------------------------------------------------------===//
// Engram
//===----------------------------------------------------------------------===//

std::vector<int64_t> engramHash(const int64_t *hist, int64_t N,
                                const int64_t *mult,
                                const std::vector<int64_t> &primes,
                                int64_t He) {
  std::vector<int64_t> out;
  out.reserve(size_t((N - 1) * He));
  int64_t h = hist[0] * mult[0];
  int64_t off = 0;
  size_t pi = 0;
  for (int64_t n = 2; n <= N; ++n) {
    h ^= hist[n - 1] * mult[n - 1];
    for (int64_t j = 0; j < He; ++j, ++pi) {
      int64_t P = primes[pi];
      out.push_back(h % P + off);
      off += P;
    }
  }
  return out;
}

template <typename N>
void Ops<N>::engramLookupRow(const Vec &qv, const Vec &scales, int64_t De,
                             int64_t idx, T *out) {
  int64_t ns = (De + 31) / 32;
  for (int64_t i = 0; i < De; ++i)
    out[i] =
        bf(T(qv[size_t(idx * De + i)]) * T(scales[size_t(idx * ns + i / 32)]));
}

template <typename N>
void Ops<N>::engramGate(T *X, const T *k, const T *v, const float *wh,
                        const float *we, int64_t n, int64_t d, float eps,
                        T *gates) {
  for (int64_t i = 0; i < n; ++i) {
    const T *x = X + i * d, *ki = k + i * d;
    T dot = 0;
    for (int64_t c = 0; c < d; ++c) {
      T w = T(wh[i * d + c]) * T(we[i * d + c]);
      dot += x[c] * w * ki[c];
    }
    T rx = rmsScale(x, d, eps), rk = rmsScale(ki, d, eps);
    T dt = dot * rx * rk / std::sqrt(T(d));
    T sg = dt > 0 ? T(1) : (dt < 0 ? T(-1) : T(0));
    T g = sigmoid(sg * std::sqrt(std::max(std::fabs(dt), T(1e-6))));
    if (gates)
      gates[i] = g;
    for (int64_t c = 0; c < d; ++c)
      X[i * d + c] = bf(X[i * d + c] + g * v[c]);
  }
}

template struct BasicCompressorState<float>;
template struct BasicCompressorState<double>;
template struct Ops<ProductionNumerics>;
template struct Ops<FP32Numerics>;
template struct Ops<DoubleNumerics>;

} // namespace v4::ref
