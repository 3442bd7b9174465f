//===- Ops.h - plain C++ reference semantics of the v4 ops ------*- C++ -*-===//
//
// The numeric oracle of V4-SPEC. One function per op semantics, on buffers
// of values, row-major, with explicit shapes, in three numerics (Numerics
// below):
//  - Production: float values that hold the exact values of the op's dtype
//    (a bf16 value is stored as a float that is already bf16-rounded); every
//    bf16 / fp32 rounding point of V4-SPEC 2-9 is reproduced; reductions
//    whose order the spec leaves open accumulate in fp32 in ascending index
//    order, the order of the CPU kernels (see Acc). Bit-exact with the
//    compiled model in production numerics.
//  - FP32: float values, no bf16 rounding point (bf() is the identity),
//    weights dequantised exactly, fp32 accumulation.
//  - Double: every value and every accumulation in double, no bf16
//    rounding: V4-SPEC's math as exactly as practical.
// The FP8/FP4 fake quantisation snaps onto its grid in every numerics (the
// grid rounding is the quantisation); whether it runs is the caller's
// choice (FakeQuantMode, Model.h).
//
// Ops<N> holds the functions of numerics N (explicitly instantiated for the
// three in Ops.cpp); the free functions below it are Ops<Production>, the
// API the kernel tests compare against.
//
// Weights (Weight, CompressorParams, the norm / mHC / Engram weight
// pointers) are floats in every numerics: checkpoint values are exact in
// fp32.
//
// Plain C++17: no MLIR, no LLVM.
//
//===----------------------------------------------------------------------===//
#ifndef V4_REFERENCE_OPS_H
#define V4_REFERENCE_OPS_H

#include <cstdint>
#include <optional>
#include <vector>

namespace v4::ref {

//===----------------------------------------------------------------------===//
// Numerics
//===----------------------------------------------------------------------===//

/// The three numerics: the value / accumulator type T and whether the bf16
/// rounding points of V4-SPEC 2.6 apply.
struct ProductionNumerics {
  using T = float;
  static constexpr bool kRoundBF16 = true;
};
struct FP32Numerics {
  using T = float;
  static constexpr bool kRoundBF16 = false;
};
struct DoubleNumerics {
  using T = double;
  static constexpr bool kRoundBF16 = false;
};

/// The accumulator of every production reduction (dot products, sums of
/// squares). V4-SPEC asks for fp32 accumulation and leaves the order open;
/// the reference fixes it to the order the CPU kernels use: fp32, one
/// running sum in ascending index order, each product rounded to fp32
/// before the add (no FMA contraction: the library is built with
/// -ffp-contract=off). With a double accumulator the two sides differ by
/// ~1e-7 per reduction, enough to flip a bf16/FP8 rounding now and then;
/// the flip then propagates through the caches (errors of 1e-3..2e-1 on
/// T1). Ops<N> accumulates in N::T, same order.
using Acc = float;

using Vec = std::vector<float>;

//===----------------------------------------------------------------------===//
// Value types shared by the numerics
//===----------------------------------------------------------------------===//

/// Frequency table of V4-SPEC 2.2. Production / FP32: in fp32 exactly as
/// precompute_freqs_cis; Double: in double.
template <typename T> struct BasicRopeTable {
  int64_t dim = 0;  // rope dims (even)
  std::vector<T> f; // dim/2 frequencies (after YaRN)
  int64_t yarnLow = 0;
  double yarnHigh = 0;
  /// The angle T(p) * f_i (fp32 in production, as V4-SPEC 2.2 states).
  T angle(int64_t p, int64_t i) const { return T(p) * f[size_t(i)]; }
};
using RopeTable = BasicRopeTable<float>;

/// A linear weight [rows = out, cols = in] as the reference uses it.
struct Weight {
  enum Kind { FP8, FP4, BF16, F32 } kind = F32;
  int64_t rows = 0, cols = 0;
  /// Element values: the e4m3 / e2m1 grid values (without the block scale)
  /// for FP8 / FP4, the bf16 / f32 values otherwise.
  Vec q;
  /// Block scales (powers of two), [ceil(rows/br), ceil(cols/bc)].
  Vec scale;
  int64_t br = 1, bc = 1;
  float scaleAt(int64_t r, int64_t c) const {
    return scale.empty() ? 1.0f
                         : scale[(r / br) * ((cols + bc - 1) / bc) + c / bc];
  }
  /// Fully dequantised values q * scale (exact in fp32).
  Vec dequant() const;
};

/// Parameters of one compressor (output width c, ratio r).
struct CompressorParams {
  int64_t c = 0, r = 0;
  bool overlap = false; // r == 4
  Vec wkv, wgate;       // [coff*c, d] fp32 values
  Vec ape;              // [r, coff*c]
  Vec norm;             // [c]
  int64_t d = 0;
  int64_t coff() const { return overlap ? 2 : 1; }
};

/// Post-processing of a pooled entry (V4-SPEC 5.3).
template <typename T> struct BasicCompressorPost {
  const BasicRopeTable<T> *rope = nullptr;
  float eps = 1e-6f;
  /// Main compressor: FP8 on the first c - rope dims (block 64).
  /// Indexer compressor: Hadamard of all c, then FP4 (block 32).
  bool indexer = false;
  bool fakeQuant = true;
};
using CompressorPost = BasicCompressorPost<float>;

/// Compressor state of V4-SPEC 9.1: kv and score rows [coff*r, coff*c].
/// Overlap: rows 0..r-1 the previous complete block, rows r..2r-1 the
/// current partial block; non-overlap: rows 0..r-1 the partial block.
template <typename T> struct BasicCompressorState {
  int64_t rows = 0, width = 0;
  std::vector<T> kv, score;
  void reset(const CompressorParams &p); // kv = 0, score = -inf
};
using CompressorState = BasicCompressorState<float>;

template <typename T> struct BasicGateResult {
  std::vector<int64_t> ids; // selected experts, selection order
  std::vector<T> weights;   // routing weights, same order
};
using GateResult = BasicGateResult<float>;

struct ExpertWeights {
  Weight w1, w2, w3;
};

template <typename T> struct BasicHcSplit {
  // [n], [n], [n*n] row j = input lane, column k = output
  std::vector<T> pre, post, comb;
};
using HcSplit = BasicHcSplit<float>;

//===----------------------------------------------------------------------===//
// The ops of one numerics
//===----------------------------------------------------------------------===//

template <typename N> struct Ops {
  using T = typename N::T;
  using V = std::vector<T>;
  using Rope = BasicRopeTable<T>;
  using Post = BasicCompressorPost<T>;
  using State = BasicCompressorState<T>;
  using Gate = BasicGateResult<T>;
  using Split = BasicHcSplit<T>;

  /// bf16 round-to-nearest-even in production, the identity otherwise.
  static T bf(T x);
  /// bf() on every element in place.
  static void bfInPlace(T *x, int64_t n);

  // 2.1 RMSNorm --------------------------------------------------------------

  /// y = bf16(w * (x * rsqrt(mean(x^2) + eps))) over one row of n. `w` may
  /// be null (weight-less, still bf16 out).
  static void rmsNorm(const T *x, const float *w, int64_t n, float eps, T *y);
  /// Applies rmsNorm to each of `rows` rows.
  static void rmsNormRows(const T *x, const float *w, int64_t rows, int64_t n,
                          float eps, T *y);
  /// The per-head q norm of V4-SPEC 5.1, evaluated on bf16 values: the
  /// square, the mean (fp32 accumulation), the + eps, the rsqrt and the
  /// product are each rounded to bf16. In place on one head of n values.
  static void headRmsNormBF16(T *q, int64_t n, float eps);
  /// 1 / sqrt(mean(x^2) + eps) over n values (the joint mHC RMS).
  static T rmsScale(const T *x, int64_t n, float eps);

  // 2.2 RoPE -----------------------------------------------------------------

  /// base^(-2i/dim); with yarn (factor > 1, originalSeqLen > 0) the blend of
  /// V4-SPEC 2.2 with `smooth = 1 - ramp`, computed as the reference does.
  static Rope makeRopeTable(int64_t dim, double base, bool yarn, double factor,
                            int64_t originalSeqLen, double betaFast,
                            double betaSlow);
  /// Rotates the interleaved pairs of x[0..dim) by +-theta(p), result
  /// rounded to bf16. In place.
  static void rope(T *x, const Rope &t, int64_t p, bool inverse = false);

  // 2.3 Fake quantisation, 2.5 Hadamard ---------------------------------------

  /// FP8 e4m3 fake-quant in place of x[0..extent) in blocks of `block`.
  /// Scale rule: quant::fp8ActScaleExponent.
  static void fakeQuantFP8(T *x, int64_t extent, int64_t block = 64);
  /// FP4 e2m1 fake-quant in place of x[0..extent) in blocks of `block`.
  static void fakeQuantFP4(T *x, int64_t extent, int64_t block = 32);
  /// y = bf16(x * H_n / sqrt(n)), Sylvester order, butterflies; in place.
  static void hadamard(T *x, int64_t n);

  // 2.4 Linear layers --------------------------------------------------------

  /// Quantises one activation row of k values to e4m3 per `block` along k:
  /// `qa` gets the grid values, `sa` one pow-2 scale per block.
  static void quantizeActFP8(const T *x, int64_t k, int64_t block, T *qa,
                             T *sa);
  /// y[rows] = W x for one row x[cols]. FP8 / FP4 weights: the activation
  /// is quantised per `actBlock` (FP8, ue8m0) when `quantAct`, the products
  /// are accumulated per K slice where both scales are constant and scaled
  /// by s_a * s_w, output bf16. BF16 weights: bf16 out. F32 weights (and
  /// `fp32Out`): unrounded out. Without `quantAct` x itself at s_a = 1: per
  /// slice the same exact products, scaled by s_w, the slices added in
  /// ascending order (the compiled GEMMs' order; a single chain of
  /// x (w s_w) over K would round differently).
  static void linear(const Weight &w, const T *x, T *y, bool quantAct = true,
                     int64_t actBlock = 128, bool fp32Out = false);
  /// Grouped output projection (wo_a, V4-SPEC 5.7): o [G, inG] -> u [G,
  /// rank] with W [G*rank, inG] (bf16 values): u_g = bf16(W_g . o_g).
  static void groupedLinear(const Vec &w, int64_t groups, int64_t rank,
                            int64_t inG, const T *o, T *u);

  // 5.3 KV compressor, 9.2 incremental state ---------------------------------

  /// k_t = wkv x_t, g_t = wgate x_t + ape[p mod r] for one token.
  static void compressorProject(const CompressorParams &p, const T *x,
                                int64_t pos, T *k, T *g);
  /// Softmax-pools n candidates per channel: out[ch] = sum_j softmax_j(g) k.
  /// `k`, `g` hold n rows of `stride` values starting at channel offset 0.
  static void compressorPool(const T *k, const T *g, int64_t n, int64_t stride,
                             int64_t c, T *out);
  /// Post-processes a pooled entry of block b in place (bf16, RMSNorm, RoPE
  /// at b*r, FP8 or Hadamard + FP4).
  static void compressorPostProcess(const CompressorParams &p, const Post &pp,
                                    int64_t block, T *entry);
  /// One-shot prefill (start_pos = 0) of T tokens x [T, d] by the formulas
  /// of V4-SPEC 5.3: returns floor(T/r) post-processed entries [n, c] and
  /// leaves the state of V4-SPEC 9.2.1 in `state` (reset first).
  static V compressorPrefill(const CompressorParams &p, const Post &pp,
                             const T *x, int64_t tokens, State &state);
  /// One decode token at position `pos` (V4-SPEC 9.2): updates the state
  /// and returns the entry of block pos/r when this token completes it.
  static std::optional<V> compressorDecode(const CompressorParams &p,
                                           const Post &pp, const T *x,
                                           int64_t pos, State &state);

  // 5.5 indexer --------------------------------------------------------------

  /// Indexer score of one query against n keys (V4-SPEC 5.5 step 4):
  /// I(b) = bf16( sum_h bf16(w_h * ReLU(bf16(q_h . k_b))) ). q [H, D], w [H]
  /// (already scaled and bf16), keys [n, D].
  static V indexerScores(const T *q, const T *w, int64_t H, int64_t D,
                         const T *keys, int64_t n);
  /// Causal top-k (V4-SPEC 5.5 steps 5-6): entries b >= visible are -inf;
  /// returns k = min(topk, total) ids by descending score (ties: lower
  /// id), those >= visible replaced by -1.
  static std::vector<int64_t> indexerTopk(const V &scores, int64_t visible,
                                          int64_t topk, int64_t total);

  // 5.6 Sink attention -------------------------------------------------------

  /// One query head: q [D], rows[i] the kv row of list entry i (null = -1),
  /// scale, sink. 64-entry tiles, online softmax, bf16 probabilities, bf16
  /// out. `lse` (optional) gets m + log(l) without the sink.
  static void sinkAttention(const T *q, const std::vector<const T *> &rows,
                            int64_t D, T scale, float sink, T *out,
                            T *lse = nullptr);

  // 6 MoE --------------------------------------------------------------------

  /// sqrtsoftplus of the gate logits z [E].
  static V sqrtSoftplus(const V &z);
  /// Score routing: top-k of s + bias (ties: lower id); weights from s.
  static Gate scoreGate(const V &scores, const Vec &bias, int64_t k,
                        float routeScale);
  /// Hash routing: ids = tid2eid row; weights from s.
  static Gate hashGate(const V &scores, const int64_t *row, int64_t k,
                       float routeScale);
  /// Clamped SwiGLU hidden (V4-SPEC 6.2) from the GEMM outputs a, b:
  /// h = bf16( silu(min(a, L)) * clamp(b, -L, L) [* weight] ).
  static void swigluHidden(const T *a, const T *b, int64_t n, float limit,
                           const T *weight, T *h);
  /// y = w2 . bf16(h) (bf16) for one token.
  static void expert(const ExpertWeights &e, const T *x, float limit,
                     const T *weight, bool quantAct, T *y);
  /// Combine: y = bf16( sum over experts (ascending id) of y_e + y_shared ).
  static void moeCombine(const std::vector<const T *> &ys, const T *shared,
                         int64_t d, T *y);

  // 4 mHC --------------------------------------------------------------------

  /// Split + Sinkhorn of the mixes m [(2+n)*n] (V4-SPEC 4.2).
  static Split hcSplitSinkhorn(const T *m, const float *scale,
                               const float *base, int64_t n, int64_t iters,
                               float eps);
  /// Mixes m = (x^ . fn^T) * rho for lanes X [n, d], fn [M, n*d].
  static V hcMixes(const T *X, int64_t n, int64_t d, const float *fn, int64_t M,
                   float normEps);
  /// hc_pre: y = bf16(sum_j pre_j X_j); returns the split.
  static Split hcPre(const T *X, int64_t n, int64_t d, const float *fn,
                     const float *scale, const float *base, int64_t iters,
                     float normEps, float hcEps, T *y);
  /// hc_post: X'_k = bf16(post_k o + sum_j C_jk X_j).
  static void hcPost(const T *o, const T *X, const Split &s, int64_t n,
                     int64_t d, T *out);
  /// hc_head: y = bf16(sum_j (sigmoid(m_j scale + base_j) + eps) X_j).
  static void hcHead(const T *X, int64_t n, int64_t d, const float *fn,
                     const float *scale, const float *base, float normEps,
                     float hcEps, T *y);

  // 8 Engram -----------------------------------------------------------------

  /// Lookup: row `idx` of an FP8 table [rows, De] with per-32 scales, as
  /// bf16(value * scale). `q` grid values, `scales` [rows, De/32].
  static void engramLookupRow(const Vec &q, const Vec &scales, int64_t De,
                              int64_t idx, T *out);
  /// Production gate (V4-SPEC 8.6): X [n, d] updated in place from keys
  /// k [n, d], value v [d], weights wh, we [n, d] (bf16 values).
  static void engramGate(T *X, const T *k, const T *v, const float *wh,
                         const float *we, int64_t n, int64_t d, float eps,
                         T *gates = nullptr);
};

extern template struct Ops<ProductionNumerics>;
extern template struct Ops<FP32Numerics>;
extern template struct Ops<DoubleNumerics>;

//===----------------------------------------------------------------------===//
// Numerics-independent index logic (5.2, 5.4, 8.4)
//===----------------------------------------------------------------------===//

/// Window positions of the query at p (V4-SPEC 5.2) for a call starting at
/// `startPos` with T tokens: positions max(0, p-W+1)+j, -1 beyond p; the
/// list has min(T, W) entries when startPos == 0, W otherwise.
std::vector<int64_t> windowList(int64_t p, int64_t startPos, int64_t T,
                                int64_t W);
/// All-compressed list (HCA, V4-SPEC 5.4): b for b < floor((startPos+T)/r),
/// -1 where b >= floor((p+1)/r).
std::vector<int64_t> compressedList(int64_t p, int64_t startPos, int64_t T,
                                    int64_t r);
/// Row indices of one token (V4-SPEC 8.4): `hist` = c_t, c_{t-1}, ...,
/// c_{t-N+1} (pad already applied), multipliers [N], primes [(N-1)*He] in
/// (n, j) order. Returns (N-1)*He indices, n-major.
std::vector<int64_t> engramHash(const int64_t *hist, int64_t N,
                                const int64_t *multipliers,
                                const std::vector<int64_t> &primes, int64_t He);

//===----------------------------------------------------------------------===//
// Production ops as free functions (the oracle of the CPU kernel tests)
//===----------------------------------------------------------------------===//

using ProductionOps = Ops<ProductionNumerics>;

inline float bf(float x) { return ProductionOps::bf(x); }
inline void bfInPlace(float *x, int64_t n) { ProductionOps::bfInPlace(x, n); }
inline constexpr auto &rmsNorm = ProductionOps::rmsNorm;
inline constexpr auto &rmsNormRows = ProductionOps::rmsNormRows;
inline constexpr auto &headRmsNormBF16 = ProductionOps::headRmsNormBF16;
inline constexpr auto &rmsScale = ProductionOps::rmsScale;
inline constexpr auto &makeRopeTable = ProductionOps::makeRopeTable;
inline void rope(float *x, const RopeTable &t, int64_t p,
                 bool inverse = false) {
  ProductionOps::rope(x, t, p, inverse);
}
inline void fakeQuantFP8(float *x, int64_t extent, int64_t block = 64) {
  ProductionOps::fakeQuantFP8(x, extent, block);
}
inline void fakeQuantFP4(float *x, int64_t extent, int64_t block = 32) {
  ProductionOps::fakeQuantFP4(x, extent, block);
}
inline constexpr auto &hadamard = ProductionOps::hadamard;
inline constexpr auto &quantizeActFP8 = ProductionOps::quantizeActFP8;
inline void linear(const Weight &w, const float *x, float *y,
                   bool quantAct = true, int64_t actBlock = 128,
                   bool fp32Out = false) {
  ProductionOps::linear(w, x, y, quantAct, actBlock, fp32Out);
}
inline constexpr auto &groupedLinear = ProductionOps::groupedLinear;
inline constexpr auto &compressorProject = ProductionOps::compressorProject;
inline constexpr auto &compressorPool = ProductionOps::compressorPool;
inline constexpr auto &compressorPostProcess =
    ProductionOps::compressorPostProcess;
inline constexpr auto &compressorPrefill = ProductionOps::compressorPrefill;
inline constexpr auto &compressorDecode = ProductionOps::compressorDecode;
inline constexpr auto &indexerScores = ProductionOps::indexerScores;
inline constexpr auto &indexerTopk = ProductionOps::indexerTopk;
inline void sinkAttention(const float *q,
                          const std::vector<const float *> &rows, int64_t D,
                          float scale, float sink, float *out,
                          float *lse = nullptr) {
  ProductionOps::sinkAttention(q, rows, D, scale, sink, out, lse);
}
inline constexpr auto &sqrtSoftplus = ProductionOps::sqrtSoftplus;
inline constexpr auto &scoreGate = ProductionOps::scoreGate;
inline constexpr auto &hashGate = ProductionOps::hashGate;
inline constexpr auto &swigluHidden = ProductionOps::swigluHidden;
inline constexpr auto &expert = ProductionOps::expert;
inline constexpr auto &moeCombine = ProductionOps::moeCombine;
inline constexpr auto &hcSplitSinkhorn = ProductionOps::hcSplitSinkhorn;
inline constexpr auto &hcMixes = ProductionOps::hcMixes;
inline constexpr auto &hcPre = ProductionOps::hcPre;
inline constexpr auto &hcPost = ProductionOps::hcPost;
inline constexpr auto &hcHead = ProductionOps::hcHead;
inline constexpr auto &engramLookupRow = ProductionOps::engramLookupRow;
inline void engramGate(float *X, const float *k, const float *v,
                       const float *wh, const float *we, int64_t n, int64_t d,
                       float eps, float *gates = nullptr) {
  ProductionOps::engramGate(X, k, v, wh, we, n, d, eps, gates);
}

} // namespace v4::ref

#endif // V4_REFERENCE_OPS_H
