//===- Ops.h - plain C++ reference semantics of the v4 ops ------*- C++ -*-===//
//
// The numeric test oracle of V4-SPEC. One function per op semantics, on
// float buffers that hold the exact values of the op's dtype (a bf16 value
// is stored as a float that is already bf16-rounded), row-major, with
// explicit shapes. Every bf16 / fp32 rounding point of V4-SPEC 2-9 is
// reproduced; reductions whose order the spec leaves open accumulate in
// fp32 in ascending index order, the order of the CPU kernels (see Acc).
//
// Plain C++17: no MLIR, no LLVM.
//
//===----------------------------------------------------------------------===//
#ifndef V4_TEST_REFERENCE_OPS_H
#define V4_TEST_REFERENCE_OPS_H

#include <cstdint>
#include <optional>
#include <vector>

namespace v4::ref {

/// The accumulator of every reduction (dot products, sums of squares).
/// V4-SPEC asks for fp32 accumulation and leaves the order open; the
/// reference fixes it to the order the CPU kernels use: fp32, one running
/// sum in ascending index order, each product rounded to fp32 before the
/// add (no FMA contraction: the library is built with -ffp-contract=off).
/// With a double accumulator the two sides differ by ~1e-7 per reduction,
/// enough to flip a bf16/FP8 rounding now and then; the flip then
/// propagates through the caches (errors of 1e-3..2e-1 on T1).
using Acc = float;

using Vec = std::vector<float>;

/// bf16 round-to-nearest-even of a float (as a float).
float bf(float x);
/// Rounds every element to bf16 in place.
void bfInPlace(float *x, int64_t n);

//===----------------------------------------------------------------------===//
// 2.1 RMSNorm
//===----------------------------------------------------------------------===//

/// y = bf16(w * (x * rsqrt(mean(x^2) + eps))) over one row of n, in fp32.
/// `w` may be null (weight-less, still bf16 out).
void rmsNorm(const float *x, const float *w, int64_t n, float eps, float *y);
/// Applies rmsNorm to each of `rows` rows.
void rmsNormRows(const float *x, const float *w, int64_t rows, int64_t n,
                 float eps, float *y);
/// The per-head q norm of V4-SPEC 5.1, evaluated on bf16 values: the square,
/// the mean (fp32 accumulation), the + eps, the rsqrt and the product are
/// each rounded to bf16. In place on one head of n values.
void headRmsNormBF16(float *q, int64_t n, float eps);
/// 1 / sqrt(mean(x^2) + eps) in fp32 over n values (the joint mHC RMS).
float rmsScale(const float *x, int64_t n, float eps);

//===----------------------------------------------------------------------===//
// 2.2 RoPE
//===----------------------------------------------------------------------===//

/// Frequency table of V4-SPEC 2.2, in fp32 exactly as precompute_freqs_cis.
struct RopeTable {
  int64_t dim = 0;      // rope dims (even)
  std::vector<float> f; // dim/2 frequencies (after YaRN)
  int64_t yarnLow = 0;
  double yarnHigh = 0;
  /// cos/sin of the fp32 angle fp32(fp32(p) * f_i).
  float angle(int64_t p, int64_t i) const;
};
/// base^(-2i/dim); with yarn (factor > 1, originalSeqLen > 0) the blend of
/// V4-SPEC 2.2 with `smooth = 1 - ramp`, computed as the reference does.
RopeTable makeRopeTable(int64_t dim, double base, bool yarn, double factor,
                        int64_t originalSeqLen, double betaFast,
                        double betaSlow);
/// Rotates the interleaved pairs of x[0..dim) by +-theta(p) in fp32, result
/// rounded to bf16. In place.
void rope(float *x, const RopeTable &t, int64_t p, bool inverse = false);

//===----------------------------------------------------------------------===//
// 2.3 Fake quantisation, 2.5 Hadamard
//===----------------------------------------------------------------------===//

/// FP8 e4m3 fake-quant in place of x[0..extent) in blocks of `block`
/// (bf16 in, bf16 out). Scale rule: quant::fp8ActScaleExponent.
void fakeQuantFP8(float *x, int64_t extent, int64_t block = 64);
/// FP4 e2m1 fake-quant in place of x[0..extent) in blocks of `block`.
void fakeQuantFP4(float *x, int64_t extent, int64_t block = 32);
/// y = bf16(x * H_n / sqrt(n)), Sylvester order, fp32 butterflies; in place.
void hadamard(float *x, int64_t n);

//===----------------------------------------------------------------------===//
// 2.4 Linear layers
//===----------------------------------------------------------------------===//

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

/// Quantises one activation row of k bf16 values to e4m3 per `block` along
/// k: `qa` gets the grid values, `sa` one pow-2 scale per block.
void quantizeActFP8(const float *x, int64_t k, int64_t block, float *qa,
                    float *sa);

/// y[rows] = W x for one row x[cols]. FP8 / FP4 weights: the activation is
/// quantised per `actBlock` (FP8, ue8m0) when `quantAct`, the products are
/// accumulated per K slice where both scales are constant and scaled by
/// s_a * s_w in fp32, output bf16. BF16 weights: fp32 accumulation, bf16
/// out. F32 weights (and `fp32Out`): fp32 out. Without `quantAct` the
/// dequantised weight multiplies x directly (bf16 out).
void linear(const Weight &w, const float *x, float *y, bool quantAct = true,
            int64_t actBlock = 128, bool fp32Out = false);

/// Grouped output projection (wo_a, V4-SPEC 5.7): o [G, inG] -> u [G, rank]
/// with W [G*rank, inG] (bf16 values): u_g = bf16(W_g . o_g).
void groupedLinear(const Vec &w, int64_t groups, int64_t rank, int64_t inG,
                   const float *o, float *u);

//===----------------------------------------------------------------------===//
// 5.3 KV compressor, 9.2 incremental state
//===----------------------------------------------------------------------===//

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
struct CompressorPost {
  const RopeTable *rope = nullptr;
  float eps = 1e-6f;
  /// Main compressor: FP8 on the first c - rope dims (block 64).
  /// Indexer compressor: Hadamard of all c, then FP4 (block 32).
  bool indexer = false;
  bool fakeQuant = true;
};

/// Compressor state of V4-SPEC 9.1: kv and score rows [coff*r, coff*c],
/// fp32. Overlap: rows 0..r-1 the previous complete block, rows r..2r-1 the
/// current partial block; non-overlap: rows 0..r-1 the partial block.
struct CompressorState {
  int64_t rows = 0, width = 0;
  Vec kv, score;
  void reset(const CompressorParams &p); // kv = 0, score = -inf
};

/// k_t = wkv x_t, g_t = wgate x_t + ape[p mod r] (fp32) for one token.
void compressorProject(const CompressorParams &p, const float *x, int64_t pos,
                       float *k, float *g);
/// Softmax-pools n candidates per channel: out[ch] = sum_j softmax_j(g) k.
/// `k`, `g` hold n rows of `stride` floats starting at channel offset 0.
void compressorPool(const float *k, const float *g, int64_t n, int64_t stride,
                    int64_t c, float *out);
/// Post-processes a pooled entry of block b in place (bf16, RMSNorm, RoPE at
/// b*r, FP8 or Hadamard + FP4).
void compressorPostProcess(const CompressorParams &p, const CompressorPost &pp,
                           int64_t block, float *entry);

/// One-shot prefill (start_pos = 0) of T tokens x [T, d] by the formulas of
/// V4-SPEC 5.3: returns floor(T/r) post-processed entries [n, c] and leaves
/// the state of V4-SPEC 9.2.1 in `state` (reset first).
Vec compressorPrefill(const CompressorParams &p, const CompressorPost &pp,
                      const float *x, int64_t T, CompressorState &state);
/// One decode token at position `pos` (V4-SPEC 9.2): updates the state and
/// returns the entry of block pos/r when this token completes it.
std::optional<Vec> compressorDecode(const CompressorParams &p,
                                    const CompressorPost &pp, const float *x,
                                    int64_t pos, CompressorState &state);

//===----------------------------------------------------------------------===//
// 5.2, 5.4, 5.5 Index lists; 5.5 indexer
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

/// Indexer score of one query against n keys (V4-SPEC 5.5 step 4):
/// I(b) = bf16( sum_h bf16(w_h * ReLU(bf16(q_h . k_b))) ). q [H, D], w [H]
/// (already scaled and bf16), keys [n, D].
Vec indexerScores(const float *q, const float *w, int64_t H, int64_t D,
                  const float *keys, int64_t n);
/// Causal top-k (V4-SPEC 5.5 steps 5-6): entries b >= visible are -inf;
/// returns k = min(topk, total) ids by descending score (ties: lower id),
/// those >= visible replaced by -1.
std::vector<int64_t> indexerTopk(const Vec &scores, int64_t visible,
                                 int64_t topk, int64_t total);

//===----------------------------------------------------------------------===//
// 5.6 Sink attention
//===----------------------------------------------------------------------===//

/// One query head: q [D] (bf16), rows[i] the kv row of list entry i (null =
/// -1), scale, sink. 64-entry tiles, online softmax in fp32, bf16
/// probabilities, fp32 accumulation, bf16 out. `lse` (optional) gets
/// m + log(l) without the sink.
void sinkAttention(const float *q, const std::vector<const float *> &rows,
                   int64_t D, float scale, float sink, float *out,
                   float *lse = nullptr);

//===----------------------------------------------------------------------===//
// 6 MoE
//===----------------------------------------------------------------------===//

struct GateResult {
  std::vector<int64_t> ids; // selected experts, selection order
  Vec weights;              // fp32 routing weights, same order
};
/// sqrtsoftplus of fp32 logits z [E].
Vec sqrtSoftplus(const Vec &z);
/// Score routing: top-k of s + bias (ties: lower id); weights from s.
GateResult scoreGate(const Vec &scores, const Vec &bias, int64_t k,
                     float routeScale);
/// Hash routing: ids = tid2eid row; weights from s.
GateResult hashGate(const Vec &scores, const int64_t *row, int64_t k,
                    float routeScale);

/// Clamped SwiGLU hidden (V4-SPEC 6.2) from the bf16 GEMM outputs a, b:
/// h = bf16( silu(min(a, L)) * clamp(b, -L, L) [* weight] ), all in fp32.
void swigluHidden(const float *a, const float *b, int64_t n, float limit,
                  const float *weight, float *h);

struct ExpertWeights {
  Weight w1, w2, w3;
};
/// y = w2 . bf16(h) (bf16) for one token.
void expert(const ExpertWeights &e, const float *x, float limit,
            const float *weight, bool quantAct, float *y);
/// Combine: y = bf16( sum over experts (ascending id) of y_e + y_shared ),
/// accumulated in fp32.
void moeCombine(const std::vector<const float *> &ys, const float *shared,
                int64_t d, float *y);

//===----------------------------------------------------------------------===//
// 4 mHC
//===----------------------------------------------------------------------===//

struct HcSplit {
  Vec pre, post, comb; // [n], [n], [n*n] row j = input lane, column k = output
};
/// Split + Sinkhorn of the mixes m [(2+n)*n] (V4-SPEC 4.2).
HcSplit hcSplitSinkhorn(const float *m, const float *scale, const float *base,
                        int64_t n, int64_t iters, float eps);
/// Mixes m = (x^ . fn^T) * rho for lanes X [n, d] (bf16), fn [M, n*d].
Vec hcMixes(const float *X, int64_t n, int64_t d, const float *fn, int64_t M,
            float normEps);
/// hc_pre: y = bf16(sum_j pre_j X_j); returns the split.
HcSplit hcPre(const float *X, int64_t n, int64_t d, const float *fn,
              const float *scale, const float *base, int64_t iters,
              float normEps, float hcEps, float *y);
/// hc_post: X'_k = bf16(post_k o + sum_j C_jk X_j).
void hcPost(const float *o, const float *X, const HcSplit &s, int64_t n,
            int64_t d, float *out);
/// hc_head: y = bf16(sum_j (sigmoid(m_j scale + base_j) + eps) X_j).
void hcHead(const float *X, int64_t n, int64_t d, const float *fn,
            const float *scale, const float *base, float normEps, float hcEps,
            float *y);

//===----------------------------------------------------------------------===//
// 8 Engram
//===----------------------------------------------------------------------===//

/// Row indices of one token (V4-SPEC 8.4): `hist` = c_t, c_{t-1}, ...,
/// c_{t-N+1} (pad already applied), multipliers [N], primes [(N-1)*He] in
/// (n, j) order. Returns (N-1)*He indices, n-major.
std::vector<int64_t> engramHash(const int64_t *hist, int64_t N,
                                const int64_t *multipliers,
                                const std::vector<int64_t> &primes, int64_t He);
/// Lookup: row `idx` of an FP8 table [rows, De] with per-32 scales, as
/// bf16(value * scale). `q` grid values, `scales` [rows, De/32].
void engramLookupRow(const Vec &q, const Vec &scales, int64_t De, int64_t idx,
                     float *out);
/// Production gate (V4-SPEC 8.6): X [n, d] updated in place from keys
/// k [n, d], value v [d], weights wh, we [n, d] (bf16 values).
void engramGate(float *X, const float *k, const float *v, const float *wh,
                const float *we, int64_t n, int64_t d, float eps,
                float *gates = nullptr);

} // namespace v4::ref

#endif // V4_TEST_REFERENCE_OPS_H
