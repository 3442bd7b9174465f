//===- Ops.cpp - plain C++ reference semantics of the v4 ops --------------===//
#include "test/reference/Ops.h"

#include "runtime/numerics/Numerics.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <numeric>

namespace v4::ref {

namespace q = ::v4::quant;
static constexpr float kInf = std::numeric_limits<float>::infinity();

float bf(float x) { return q::roundBF16(x); }

void bfInPlace(float *x, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    x[i] = bf(x[i]);
}

static float sigmoidf(float x) { return 1.0f / (1.0f + std::exp(-x)); }

//===----------------------------------------------------------------------===//
// RMSNorm
//===----------------------------------------------------------------------===//

static float meanSquare(const float *x, int64_t n) {
  Acc acc = 0;
  for (int64_t i = 0; i < n; ++i)
    acc += Acc(x[i]) * Acc(x[i]);
  return float(acc / double(n));
}

float rmsScale(const float *x, int64_t n, float eps) {
  return 1.0f / std::sqrt(meanSquare(x, n) + eps);
}

void rmsNorm(const float *x, const float *w, int64_t n, float eps, float *y) {
  float r = rmsScale(x, n, eps);
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i] * r;
    y[i] = bf(w ? w[i] * v : v);
  }
}

void rmsNormRows(const float *x, const float *w, int64_t rows, int64_t n,
                 float eps, float *y) {
  for (int64_t r = 0; r < rows; ++r)
    rmsNorm(x + r * n, w, n, eps, y + r * n);
}

void headRmsNormBF16(float *x, int64_t n, float eps) {
  // q.square() is a bf16 tensor; .mean() accumulates in fp32 and rounds.
  Acc acc = 0;
  for (int64_t i = 0; i < n; ++i)
    acc += Acc(bf(x[i] * x[i]));
  float mean = bf(float(acc / double(n)));
  float r = bf(1.0f / std::sqrt(bf(mean + eps)));
  for (int64_t i = 0; i < n; ++i)
    x[i] = bf(x[i] * r);
}

//===----------------------------------------------------------------------===//
// RoPE
//===----------------------------------------------------------------------===//

float RopeTable::angle(int64_t p, int64_t i) const {
  return float(p) * f[size_t(i)];
}

RopeTable makeRopeTable(int64_t dim, double base, bool yarn, double factor,
                        int64_t originalSeqLen, double betaFast,
                        double betaSlow) {
  RopeTable t;
  t.dim = dim;
  int64_t half = dim / 2;
  t.f.resize(size_t(half));
  for (int64_t i = 0; i < half; ++i) {
    // 1.0 / (base ** (arange(0, dim, 2, float32) / dim)), all fp32.
    float e = float(2 * i) / float(dim);
    t.f[size_t(i)] = 1.0f / std::pow(float(base), e);
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
    float fac = float(factor);
    for (int64_t i = 0; i < half; ++i) {
      float lin = (float(i) - float(low)) / float(high - double(low));
      float ramp = std::clamp(lin, 0.0f, 1.0f);
      float smooth = 1.0f - ramp;
      float f = t.f[size_t(i)];
      t.f[size_t(i)] = (f / fac) * (1.0f - smooth) + f * smooth;
    }
  }
  return t;
}

void rope(float *x, const RopeTable &t, int64_t p, bool inverse) {
  for (int64_t i = 0; i < t.dim / 2; ++i) {
    float th = t.angle(p, i);
    float c = std::cos(th), s = std::sin(th);
    if (inverse)
      s = -s;
    float a = x[2 * i], b = x[2 * i + 1];
    float ac = a * c, bs = b * s, as = a * s, bc = b * c;
    x[2 * i] = bf(ac - bs);
    x[2 * i + 1] = bf(as + bc);
  }
}

//===----------------------------------------------------------------------===//
// Fake quantisation and Hadamard
//===----------------------------------------------------------------------===//

static float blockAmax(const float *x, int64_t n) {
  float a = 0;
  for (int64_t i = 0; i < n; ++i)
    a = std::max(a, std::fabs(x[i]));
  return a;
}

void fakeQuantFP8(float *x, int64_t extent, int64_t block) {
  for (int64_t b0 = 0; b0 < extent; b0 += block) {
    int64_t n = std::min(block, extent - b0);
    int e = q::fp8ActScaleExponent(blockAmax(x + b0, n));
    for (int64_t i = 0; i < n; ++i) {
      float v = std::ldexp(x[b0 + i], -e);
      v = std::clamp(v, -448.0f, 448.0f);
      x[b0 + i] = bf(std::ldexp(q::roundE4M3(v), e));
    }
  }
}

void fakeQuantFP4(float *x, int64_t extent, int64_t block) {
  for (int64_t b0 = 0; b0 < extent; b0 += block) {
    int64_t n = std::min(block, extent - b0);
    int e = q::fp4ActScaleExponent(blockAmax(x + b0, n));
    for (int64_t i = 0; i < n; ++i) {
      float v = std::ldexp(x[b0 + i], -e);
      v = std::clamp(v, -6.0f, 6.0f);
      x[b0 + i] = bf(std::ldexp(q::roundE2M1(v), e));
    }
  }
}

void hadamard(float *x, int64_t n) {
  assert((n & (n - 1)) == 0 && "Hadamard size must be a power of two");
  for (int64_t h = 1; h < n; h *= 2)
    for (int64_t i = 0; i < n; i += 2 * h)
      for (int64_t j = i; j < i + h; ++j) {
        float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
  float s = float(1.0 / std::sqrt(double(n)));
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

void quantizeActFP8(const float *x, int64_t k, int64_t block, float *qa,
                    float *sa) {
  for (int64_t b0 = 0, bi = 0; b0 < k; b0 += block, ++bi) {
    int64_t n = std::min(block, k - b0);
    int e = q::fp8ActScaleExponent(blockAmax(x + b0, n));
    sa[bi] = std::ldexp(1.0f, e);
    for (int64_t i = 0; i < n; ++i)
      qa[b0 + i] =
          q::roundE4M3(std::clamp(std::ldexp(x[b0 + i], -e), -448.0f, 448.0f));
  }
}

void linear(const Weight &w, const float *x, float *y, bool quantAct,
            int64_t actBlock, bool fp32Out) {
  int64_t K = w.cols;
  bool lowp = w.kind == Weight::FP8 || w.kind == Weight::FP4;
  if (lowp && quantAct) {
    Vec qa(static_cast<size_t>(K)), sa(size_t((K + actBlock - 1) / actBlock));
    quantizeActFP8(x, K, actBlock, qa.data(), sa.data());
    // K slices on which both the activation and the weight scale are
    // constant.
    int64_t slice = std::gcd(actBlock, w.bc);
    for (int64_t n = 0; n < w.rows; ++n) {
      const float *wr = w.q.data() + n * K;
      float acc = 0;
      for (int64_t k0 = 0; k0 < K; k0 += slice) {
        int64_t k1 = std::min(K, k0 + slice);
        Acc part = 0;
        for (int64_t k = k0; k < k1; ++k)
          part += Acc(qa[size_t(k)]) * Acc(wr[k]);
        acc += float(part) * sa[size_t(k0 / actBlock)] * w.scaleAt(n, k0);
      }
      y[n] = fp32Out ? acc : bf(acc);
    }
    return;
  }
  for (int64_t n = 0; n < w.rows; ++n) {
    const float *wr = w.q.data() + n * K;
    Acc acc = 0;
    if (lowp) {
      for (int64_t k = 0; k < K; ++k)
        acc += Acc(x[k]) * Acc(wr[k] * w.scaleAt(n, k));
    } else {
      for (int64_t k = 0; k < K; ++k)
        acc += Acc(x[k]) * Acc(wr[k]);
    }
    y[n] = (fp32Out || w.kind == Weight::F32) ? float(acc) : bf(float(acc));
  }
}

void groupedLinear(const Vec &w, int64_t groups, int64_t rank, int64_t inG,
                   const float *o, float *u) {
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t r = 0; r < rank; ++r) {
      const float *wr = w.data() + (g * rank + r) * inG;
      Acc acc = 0;
      for (int64_t i = 0; i < inG; ++i)
        acc += Acc(wr[i]) * Acc(o[g * inG + i]);
      u[g * rank + r] = bf(float(acc));
    }
}

//===----------------------------------------------------------------------===//
// Compressor
//===----------------------------------------------------------------------===//

void CompressorState::reset(const CompressorParams &p) {
  rows = p.coff() * p.r;
  width = p.coff() * p.c;
  kv.assign(size_t(rows * width), 0.0f);
  score.assign(size_t(rows * width), -kInf);
}

void compressorProject(const CompressorParams &p, const float *x, int64_t pos,
                       float *k, float *g) {
  int64_t W = p.coff() * p.c;
  const float *ape = p.ape.data() + (pos % p.r) * W;
  for (int64_t o = 0; o < W; ++o) {
    Acc a = 0, b = 0;
    const float *wk = p.wkv.data() + o * p.d, *wg = p.wgate.data() + o * p.d;
    for (int64_t i = 0; i < p.d; ++i) {
      a += Acc(wk[i]) * Acc(x[i]);
      b += Acc(wg[i]) * Acc(x[i]);
    }
    k[o] = float(a);
    g[o] = float(b) + ape[o];
  }
}

void compressorPool(const float *k, const float *g, int64_t n, int64_t stride,
                    int64_t c, float *out) {
  for (int64_t ch = 0; ch < c; ++ch) {
    float m = -kInf;
    for (int64_t j = 0; j < n; ++j)
      m = std::max(m, g[j * stride + ch]);
    float sum = 0;
    std::vector<float> e(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) {
      e[size_t(j)] = std::exp(g[j * stride + ch] - m);
      sum += e[size_t(j)];
    }
    float acc = 0;
    for (int64_t j = 0; j < n; ++j)
      acc += k[j * stride + ch] * (e[size_t(j)] / sum);
    out[ch] = acc;
  }
}

void compressorPostProcess(const CompressorParams &p, const CompressorPost &pp,
                           int64_t block, float *entry) {
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
static Vec poolOverlap(const CompressorParams &p, const float *kPrev,
                       const float *gPrev, const float *kCur, const float *gCur,
                       int64_t stride) {
  int64_t c = p.c, r = p.r;
  // Candidate matrix [2r, c]: rows 0..r-1 prev[:, :c], rows r..2r-1
  // cur[:, c:].
  Vec K(size_t(2 * r * c)), G(size_t(2 * r * c));
  for (int64_t j = 0; j < r; ++j)
    for (int64_t ch = 0; ch < c; ++ch) {
      K[size_t(j * c + ch)] = kPrev ? kPrev[j * stride + ch] : 0.0f;
      G[size_t(j * c + ch)] = gPrev ? gPrev[j * stride + ch] : -kInf;
      K[size_t((r + j) * c + ch)] = kCur[j * stride + c + ch];
      G[size_t((r + j) * c + ch)] = gCur[j * stride + c + ch];
    }
  Vec out(static_cast<size_t>(c));
  compressorPool(K.data(), G.data(), 2 * r, c, c, out.data());
  return out;
}

Vec compressorPrefill(const CompressorParams &p, const CompressorPost &pp,
                      const float *x, int64_t T, CompressorState &state) {
  state.reset(p);
  int64_t W = p.coff() * p.c, r = p.r, c = p.c;
  Vec k(size_t(T * W)), g(size_t(T * W));
  for (int64_t t = 0; t < T; ++t)
    compressorProject(p, x + t * p.d, t, k.data() + t * W, g.data() + t * W);
  int64_t nb = T / r;
  Vec entries(size_t(nb * c));
  for (int64_t b = 0; b < nb; ++b) {
    Vec e;
    if (p.overlap) {
      const float *kp = b ? k.data() + (b - 1) * r * W : nullptr;
      const float *gp = b ? g.data() + (b - 1) * r * W : nullptr;
      e = poolOverlap(p, kp, gp, k.data() + b * r * W, g.data() + b * r * W, W);
    } else {
      e.resize(size_t(c));
      compressorPool(k.data() + b * r * W, g.data() + b * r * W, r, W, c,
                     e.data());
    }
    compressorPostProcess(p, pp, b, e.data());
    std::copy(e.begin(), e.end(), entries.begin() + b * c);
  }
  // State (V4-SPEC 9.2.1).
  int64_t off = p.overlap ? r : 0, rem = T % r;
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

std::optional<Vec> compressorDecode(const CompressorParams &p,
                                    const CompressorPost &pp, const float *x,
                                    int64_t pos, CompressorState &state) {
  int64_t W = p.coff() * p.c, r = p.r, c = p.c;
  int64_t row = (p.overlap ? r : 0) + pos % r;
  compressorProject(p, x, pos, state.kv.data() + row * W,
                    state.score.data() + row * W);
  if ((pos + 1) % r != 0)
    return std::nullopt;
  Vec e;
  if (p.overlap) {
    e = poolOverlap(p, state.kv.data(), state.score.data(),
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

Vec indexerScores(const float *qv, const float *w, int64_t H, int64_t D,
                  const float *keys, int64_t n) {
  Vec s(static_cast<size_t>(n));
  for (int64_t b = 0; b < n; ++b) {
    Acc acc = 0;
    for (int64_t h = 0; h < H; ++h) {
      Acc dot = 0;
      for (int64_t i = 0; i < D; ++i)
        dot += Acc(qv[h * D + i]) * Acc(keys[b * D + i]);
      float d = bf(float(dot));
      d = std::max(d, 0.0f);
      acc += Acc(bf(d * w[h]));
    }
    s[size_t(b)] = bf(float(acc));
  }
  return s;
}

std::vector<int64_t> indexerTopk(const Vec &scores, int64_t visible,
                                 int64_t topk, int64_t total) {
  int64_t k = std::min(topk, total);
  std::vector<int64_t> order(static_cast<size_t>(total));
  std::iota(order.begin(), order.end(), 0);
  auto key = [&](int64_t b) {
    return b < visible && b < int64_t(scores.size()) ? scores[size_t(b)]
                                                     : -kInf;
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

void sinkAttention(const float *qv, const std::vector<const float *> &rows,
                   int64_t D, float scale, float sink, float *out, float *lse) {
  float m = -kInf, l = 0;
  Vec acc(size_t(D), 0.0f);
  int64_t n = int64_t(rows.size());
  Vec s(64);
  for (int64_t t0 = 0; t0 < n; t0 += 64) {
    int64_t t1 = std::min(n, t0 + 64);
    float mt = m;
    for (int64_t j = t0; j < t1; ++j) {
      float sj = -kInf;
      if (rows[size_t(j)]) {
        Acc dot = 0;
        for (int64_t i = 0; i < D; ++i)
          dot += Acc(qv[i]) * Acc(rows[size_t(j)][i]);
        sj = float(dot) * scale;
      }
      s[size_t(j - t0)] = sj;
      mt = std::max(mt, sj);
    }
    if (mt == -kInf)
      continue; // nothing valid yet
    float alpha = std::exp(m - mt);
    float psum = 0;
    for (auto &a : acc)
      a *= alpha;
    for (int64_t j = t0; j < t1; ++j) {
      float pj = std::exp(s[size_t(j - t0)] - mt);
      psum += pj;
      if (!rows[size_t(j)])
        continue;
      float pb = bf(pj);
      for (int64_t i = 0; i < D; ++i)
        acc[size_t(i)] += pb * rows[size_t(j)][i];
    }
    l = l * alpha + psum;
    m = mt;
  }
  if (lse)
    *lse = m + std::log(l);
  l += std::exp(sink - m);
  for (int64_t i = 0; i < D; ++i)
    out[i] = bf(acc[size_t(i)] / l);
}

//===----------------------------------------------------------------------===//
// MoE
//===----------------------------------------------------------------------===//

Vec sqrtSoftplus(const Vec &z) {
  Vec s(z.size());
  for (size_t i = 0; i < z.size(); ++i) {
    float sp = z[i] > 20.0f ? z[i] : std::log1p(std::exp(z[i]));
    s[i] = std::sqrt(sp);
  }
  return s;
}

static Vec routeWeights(const Vec &s, const std::vector<int64_t> &ids,
                        float routeScale) {
  Vec w(ids.size());
  float sum = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    w[i] = s[size_t(ids[i])];
    sum += w[i];
  }
  for (auto &v : w)
    v = (v / sum) * routeScale;
  return w;
}

GateResult scoreGate(const Vec &s, const Vec &bias, int64_t k,
                     float routeScale) {
  int64_t E = int64_t(s.size());
  std::vector<int64_t> order(static_cast<size_t>(E));
  std::iota(order.begin(), order.end(), 0);
  Vec biased(s.size());
  for (int64_t e = 0; e < E; ++e)
    biased[size_t(e)] = s[size_t(e)] + (bias.empty() ? 0.0f : bias[size_t(e)]);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return biased[size_t(a)] > biased[size_t(b)];
  });
  GateResult g;
  g.ids.assign(order.begin(), order.begin() + k);
  g.weights = routeWeights(s, g.ids, routeScale);
  return g;
}

GateResult hashGate(const Vec &s, const int64_t *row, int64_t k,
                    float routeScale) {
  GateResult g;
  g.ids.assign(row, row + k);
  g.weights = routeWeights(s, g.ids, routeScale);
  return g;
}

void swigluHidden(const float *a, const float *b, int64_t n, float limit,
                  const float *weight, float *h) {
  for (int64_t i = 0; i < n; ++i) {
    float up = b[i], gate = a[i];
    if (limit > 0) {
      up = std::clamp(up, -limit, limit);
      gate = std::min(gate, limit);
    }
    float v = (gate / (1.0f + std::exp(-gate))) * up;
    if (weight)
      v = *weight * v;
    h[i] = bf(v);
  }
}

void expert(const ExpertWeights &e, const float *x, float limit,
            const float *weight, bool quantAct, float *y) {
  int64_t I = e.w1.rows;
  Vec a(static_cast<size_t>(I)), b(static_cast<size_t>(I)),
      h(static_cast<size_t>(I));
  linear(e.w1, x, a.data(), quantAct);
  linear(e.w3, x, b.data(), quantAct);
  swigluHidden(a.data(), b.data(), I, limit, weight, h.data());
  linear(e.w2, h.data(), y, quantAct);
}

void moeCombine(const std::vector<const float *> &ys, const float *shared,
                int64_t d, float *y) {
  for (int64_t i = 0; i < d; ++i) {
    float acc = 0;
    for (const float *ye : ys)
      acc += ye[i];
    if (shared)
      acc += shared[i];
    y[i] = bf(acc);
  }
}

//===----------------------------------------------------------------------===//
// mHC
//===----------------------------------------------------------------------===//

HcSplit hcSplitSinkhorn(const float *m, const float *scale, const float *base,
                        int64_t n, int64_t iters, float eps) {
  HcSplit s;
  s.pre.resize(size_t(n));
  s.post.resize(size_t(n));
  s.comb.resize(size_t(n * n));
  for (int64_t j = 0; j < n; ++j) {
    s.pre[size_t(j)] = sigmoidf(m[j] * scale[0] + base[j]) + eps;
    s.post[size_t(j)] = 2.0f * sigmoidf(m[n + j] * scale[1] + base[n + j]);
  }
  Vec &C = s.comb;
  for (int64_t i = 0; i < n * n; ++i)
    C[size_t(i)] = m[2 * n + i] * scale[2] + base[2 * n + i];
  auto colNorm = [&] {
    for (int64_t k = 0; k < n; ++k) {
      float sum = 0;
      for (int64_t j = 0; j < n; ++j)
        sum += C[size_t(j * n + k)];
      for (int64_t j = 0; j < n; ++j)
        C[size_t(j * n + k)] /= (sum + eps);
    }
  };
  auto rowNorm = [&] {
    for (int64_t j = 0; j < n; ++j) {
      float sum = 0;
      for (int64_t k = 0; k < n; ++k)
        sum += C[size_t(j * n + k)];
      for (int64_t k = 0; k < n; ++k)
        C[size_t(j * n + k)] /= (sum + eps);
    }
  };
  // Row softmax + eps, then a column normalisation.
  for (int64_t j = 0; j < n; ++j) {
    float mx = -kInf;
    for (int64_t k = 0; k < n; ++k)
      mx = std::max(mx, C[size_t(j * n + k)]);
    float sum = 0;
    for (int64_t k = 0; k < n; ++k) {
      C[size_t(j * n + k)] = std::exp(C[size_t(j * n + k)] - mx);
      sum += C[size_t(j * n + k)];
    }
    for (int64_t k = 0; k < n; ++k)
      C[size_t(j * n + k)] = C[size_t(j * n + k)] / sum + eps;
  }
  colNorm();
  for (int64_t it = 1; it < iters; ++it) {
    rowNorm();
    colNorm();
  }
  return s;
}

Vec hcMixes(const float *X, int64_t n, int64_t d, const float *fn, int64_t M,
            float normEps) {
  float rho = rmsScale(X, n * d, normEps);
  Vec m(static_cast<size_t>(M));
  for (int64_t i = 0; i < M; ++i) {
    Acc acc = 0;
    for (int64_t c = 0; c < n * d; ++c)
      acc += Acc(X[c]) * Acc(fn[i * n * d + c]);
    m[size_t(i)] = float(acc) * rho;
  }
  return m;
}

HcSplit hcPre(const float *X, int64_t n, int64_t d, const float *fn,
              const float *scale, const float *base, int64_t iters,
              float normEps, float hcEps, float *y) {
  Vec m = hcMixes(X, n, d, fn, (2 + n) * n, normEps);
  HcSplit s = hcSplitSinkhorn(m.data(), scale, base, n, iters, hcEps);
  for (int64_t c = 0; c < d; ++c) {
    float acc = 0;
    for (int64_t j = 0; j < n; ++j)
      acc += s.pre[size_t(j)] * X[j * d + c];
    y[c] = bf(acc);
  }
  return s;
}

void hcPost(const float *o, const float *X, const HcSplit &s, int64_t n,
            int64_t d, float *out) {
  for (int64_t k = 0; k < n; ++k)
    for (int64_t c = 0; c < d; ++c) {
      float mix = 0;
      for (int64_t j = 0; j < n; ++j)
        mix += s.comb[size_t(j * n + k)] * X[j * d + c];
      out[k * d + c] = bf(s.post[size_t(k)] * o[c] + mix);
    }
}

void hcHead(const float *X, int64_t n, int64_t d, const float *fn,
            const float *scale, const float *base, float normEps, float hcEps,
            float *y) {
  Vec m = hcMixes(X, n, d, fn, n, normEps);
  Vec w(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j)
    w[size_t(j)] = sigmoidf(m[size_t(j)] * scale[0] + base[j]) + hcEps;
  for (int64_t c = 0; c < d; ++c) {
    float acc = 0;
    for (int64_t j = 0; j < n; ++j)
      acc += w[size_t(j)] * X[j * d + c];
    y[c] = bf(acc);
  }
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

void engramLookupRow(const Vec &qv, const Vec &scales, int64_t De, int64_t idx,
                     float *out) {
  int64_t ns = (De + 31) / 32;
  for (int64_t i = 0; i < De; ++i)
    out[i] = bf(qv[size_t(idx * De + i)] * scales[size_t(idx * ns + i / 32)]);
}

void engramGate(float *X, const float *k, const float *v, const float *wh,
                const float *we, int64_t n, int64_t d, float eps,
                float *gates) {
  for (int64_t i = 0; i < n; ++i) {
    const float *x = X + i * d, *ki = k + i * d;
    Acc dot = 0;
    for (int64_t c = 0; c < d; ++c) {
      float w = wh[i * d + c] * we[i * d + c];
      dot += Acc(x[c]) * Acc(w) * Acc(ki[c]);
    }
    float rx = rmsScale(x, d, eps), rk = rmsScale(ki, d, eps);
    float dt = float(dot) * rx * rk / std::sqrt(float(d));
    float sg = dt > 0 ? 1.0f : (dt < 0 ? -1.0f : 0.0f);
    float g = sigmoidf(sg * std::sqrt(std::max(std::fabs(dt), 1e-6f)));
    if (gates)
      gates[i] = g;
    for (int64_t c = 0; c < d; ++c)
      X[i * d + c] = bf(X[i * d + c] + g * v[c]);
  }
}

} // namespace v4::ref
