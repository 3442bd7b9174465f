//===- Model.h - plain C++ reference of the whole V4 model ------*- C++ -*-===//
//
// The whole model of V4-SPEC 3, 4.3, 7 (and 8 when Engram is configured) on
// weights read by checkpoint name from a safetensors Reader, with the
// per-sequence decode state of V4-SPEC 9 (window ring, compressed caches,
// indexer keys, compressor states, Engram look-back, MTP ring). `forward`
// takes any chunk: prefill from 0, chunked prefill, decode (T = 1), and
// returns the logits of EVERY position of the chunk (the reference head
// applied per position) and the MTP logits likewise.
//
// Config is a plain struct (no LLVM); ConfigAdapter.h builds it from a
// v4::ModelConfig.
//
//===----------------------------------------------------------------------===//
#ifndef V4_TEST_REFERENCE_MODEL_H
#define V4_TEST_REFERENCE_MODEL_H

#include "runtime/safetensors/Safetensors.h"
#include "test/reference/Ops.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
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

struct Options {
  /// FP8/FP4 fake quantisation of the KV / indexer paths and FP8
  /// activation quantisation in the FP8/FP4 linears. Off: the dequantised
  /// weights multiply the bf16 activations directly.
  bool fakeQuant = true;
};

/// Decode state of one attention layer (V4-SPEC 9.1).
struct LayerState {
  Vec ring;       // [W, D]: slot = position mod W
  Vec compressed; // [entries, D]
  Vec indexKeys;  // [entries, DI] (CSA)
  CompressorState comp, indexComp;
};

/// Decode state of one sequence.
struct SequenceState {
  int64_t pos = 0;                // tokens consumed
  std::vector<LayerState> layers; // main layers, then MTP layers
  std::vector<int64_t> lookback;  // Engram: the last N-1 compressed ids
  bool mtpValid = true;           // MTP ran on every chunk so far
};

struct ForwardResult {
  Vec logits;    // [B, T, vocab]
  Vec mtpLogits; // [B, T, vocab] (empty without nextIds)
  /// RMS of the lanes after the embedding and after each Block (main
  /// layers), max over batch and tokens: nLayers + 1 values.
  std::vector<double> laneRms;
  /// Final lanes before hc_head [B, T, hc, dim].
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

#endif // V4_TEST_REFERENCE_MODEL_H
