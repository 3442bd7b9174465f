//===- Model.h - plain C++ reference of the whole V4 model ------*- C++ -*-===//
//
// The product's reference library (v4reference, no MLIR/LLVM). The whole model
// of V4-SPEC 3, 4.3, 7 (and 8 when Engram is configured) on weights read by
// checkpoint name from a safetensors Reader, with the per-sequence decode state
// of V4-SPEC 9 (window ring, compressed caches, indexer keys, compressor
// states, Engram look-back, MTP ring). `forward` takes any chunk: prefill from
// 0, chunked prefill, decode (T = 1), and returns the logits of EVERY position
// of the chunk (the reference head applied per position) and the MTP logits
// likewise.
//
// It evaluates in one of three numerics (Options::precision, see Ops.h):
// Production (bit-exact with the compiled model in production numerics),
// FP32 (no bf16 rounding point, fp32 accumulation) and Double (V4-SPEC's
// math in double), each with the fake quantisation points of
// Options::fakeQuant (all / kv / none, runtime/base/NumericsMode.h).
//
// Config is a plain struct (no LLVM); ConfigAdapter.h builds it from a
// v4::ModelConfig.
//
//===----------------------------------------------------------------------===//
#ifndef V4_REFERENCE_MODEL_H
#define V4_REFERENCE_MODEL_H

#include "reference/Ops.h"
#include "runtime/base/NumericsMode.h"
#include "runtime/safetensors/Safetensors.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace v4::ref {

/// The values of v4::ModelConfig the reference uses.
struct Config {
  int64_t dim = 0, nLayers = 0, nHeads = 0, headDim = 0, ropeDim = 0;
  int64_t qLora = 0, oGroups = 0, oLora = 0, vocab = 0;
  int64_t nExperts = 0, topk = 0, moeInter = 0, nHashLayers = 0;
  int64_t window = 0, indexHeads = 0, indexHeadDim = 0, indexTopk = 0;
  int64_t hc = 0, sinkhornIters = 0, nMtp = 0, blockSize = 128;
  float routeScale = 1, swigluLimit = 0, hcEps = 1e-6f, normEps = 1e-6f;
  double ropeTheta = 10000, compressRopeTheta = 160000;
  double yarnFactor = 1, betaFast = 32, betaSlow = 1;
  int64_t yarnOriginal = 0;
  std::vector<int64_t> ratios; // nLayers + nMtp entries
  struct Engram {
    std::vector<int64_t> layerIds;
    int64_t N = 0, He = 0, De = 0, padId = 0;
    float eps = 1e-20f;
    std::vector<std::vector<int64_t>> primes; // per layer id
    /// The multipliers' rule (V4-SPEC 8.4) when the checkpoint has none.
    uint64_t seed = 0;
    int64_t compressedVocab = 1;
  };
  std::optional<Engram> engram;
};

/// The numerics the reference evaluates in: the compiler's two
/// (NumericsMode) and Double, the reference's own.
enum class Precision : uint8_t {
  Production, // ProductionNumerics: V4-SPEC 2.6 rounding points
  FP32,       // FP32Numerics: no bf16 rounding, fp32 accumulation
  Double,     // DoubleNumerics: everything in double
};

/// "production" / "fp32" / "double".
inline const char *precisionName(Precision p) {
  return p == Precision::Double ? "double"
         : p == Precision::FP32 ? "fp32"
                                : "production";
}
/// The reference precision of a compiled model's numerics.
inline Precision precisionOf(NumericsMode mode) {
  return mode == NumericsMode::FP32 ? Precision::FP32 : Precision::Production;
}

struct Options {
  Precision precision = Precision::Production;
  /// Which fake quantisation points run: All = FP8 activation quantisation
  /// in the FP8/FP4 linears (not wo_a) + FP8 KV + FP4 indexer; KV = the
  /// last two; None = neither (the dequantised weights multiply the
  /// activations directly).
  FakeQuantMode fakeQuant = FakeQuantMode::All;
};

/// Decode state of one attention layer (V4-SPEC 9.1), values in T.
template <typename T> struct BasicLayerState {
  std::vector<T> ring;       // [W, D]: slot = position mod W
  std::vector<T> compressed; // [entries, D]
  std::vector<T> indexKeys;  // [entries, DI] (CSA)
  BasicCompressorState<T> comp, indexComp;
};
using LayerState = BasicLayerState<float>;

/// Decode state of one sequence.
struct SequenceState {
  int64_t pos = 0; // tokens consumed
  /// Main layers, then MTP layers: float for Production / FP32, double for
  /// Double.
  std::variant<std::vector<BasicLayerState<float>>,
               std::vector<BasicLayerState<double>>>
      layers;
  std::vector<int64_t> lookback; // Engram: the last N-1 compressed ids
  bool mtpValid = true;          // MTP ran on every chunk so far
};

struct ForwardResult {
  Vec logits;    // [B, T, vocab] (Double: rounded to float)
  Vec mtpLogits; // [B, T, vocab] (empty without nextIds)
  /// The same logits as computed, in double (exact copies for Production
  /// and FP32; the unrounded values for Double): what a 1e-5 comparison
  /// against the Double reference should read.
  std::vector<double> logits64, mtpLogits64;
  /// RMS of the lanes after the embedding and after each Block (main
  /// layers), max over batch and tokens: nLayers + 1 values.
  std::vector<double> laneRms;
  /// Final lanes before hc_head [B, T, hc, dim] (Double: rounded).
  Vec lanes;
};

class Model {
public:
  /// Reads every weight the config needs; returns an error message or "".
  static std::unique_ptr<Model> load(const Config &config,
                                     const safetensors::Reader &reader,
                                     const Options &options,
                                     std::string *error);
  ~Model();

  const Config &config() const;
  const Options &options() const;

  /// A fresh state (position 0) per sequence.
  std::vector<SequenceState> newState(int64_t batch) const;

  /// Runs a chunk: ids [B][T] at positions startPos..startPos+T-1 (every
  /// state must be at startPos). nextIds [B][T] (the MTP inputs, usually
  /// ids shifted by one) may be empty: then no MTP logits. Returns the
  /// logits of every position.
  ForwardResult forward(std::vector<SequenceState> &state,
                        const std::vector<std::vector<int64_t>> &ids,
                        const std::vector<std::vector<int64_t>> &nextIds,
                        int64_t startPos) const;

  struct Impl;

private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl;
};

} // namespace v4::ref

#endif // V4_REFERENCE_MODEL_H
