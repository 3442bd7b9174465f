//===- ModelConfig.h - V4 model configuration (config.json) -----*- C++ -*-===//
//
// The Hugging Face style config.json of a V4-family model, parsed with
// llvm::json and validated against V4-SPEC 1.1, 1.2 and 8.2. Every rule has a
// stable id (CF-n, docs/RELIABILITY.md) that appears in its message together
// with the key path.
//
//===----------------------------------------------------------------------===//
#ifndef V4_FRONTEND_MODELCONFIG_H
#define V4_FRONTEND_MODELCONFIG_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace v4 {

/// YaRN parameters (`rope_scaling` or `rope_parameters`). factor 1 = none.
struct RopeScaling {
  double factor = 1.0;
  int64_t originalMaxPositionEmbeddings = 0;
  double betaFast = 32.0;
  double betaSlow = 1.0;
};

/// Engram module keys (V4-SPEC 8.2); present iff `engram_layer_ids` is
/// non-empty.
struct EngramConfig {
  std::vector<int64_t> layerIds;
  int64_t maxNgramSize = 0;           // N
  int64_t numHeads = 0;               // H_e
  int64_t headDim = 0;                // D_e
  std::vector<int64_t> vocabSizes;    // one per order n = 2..N
  std::vector<int64_t> numEmbeddings; // one per layer id
  int64_t padTokenId = 0;
  int64_t compressedVocabSize = 0; // V_c
  int64_t seed = 0;
  double normEps = 1e-20;
  /// Per layer id, the (N-1)*H_e primes in (n, j) order (V4-SPEC 8.4).
  std::vector<std::vector<int64_t>> primes;
};

/// Which weight format the routed experts use (`expert_dtype`).
enum class ExpertDtype { FP4, FP8, BF16 };

struct ModelConfig {
  // Sizes (V4-SPEC 1.1).
  int64_t hiddenSize = 0;
  int64_t numLayers = 0;
  int64_t numHeads = 0;
  int64_t headDim = 0;
  int64_t ropeHeadDim = 0;
  int64_t qLoraRank = 0;
  int64_t oGroups = 0;
  int64_t oLoraRank = 0;
  int64_t vocabSize = 0;
  /// BOS and EOS token ids (-1: the config gives none); recorded in the
  /// artifact for the runtime's stop condition.
  int64_t bosTokenId = -1;
  int64_t eosTokenId = -1;
  int64_t numRoutedExperts = 0;
  int64_t numExpertsPerTok = 0;
  int64_t moeIntermediateSize = 0;
  int64_t numHashLayers = 0;
  int64_t slidingWindow = 0;
  int64_t maxPositionEmbeddings = 0;
  int64_t indexNumHeads = 0;
  int64_t indexHeadDim = 0;
  int64_t indexTopk = 0;
  int64_t hcMult = 0;
  int64_t hcSinkhornIters = 0;
  int64_t numMtpLayers = 0;
  int64_t weightBlockSize = 128;
  // Scalars.
  double routedScalingFactor = 1.0;
  double swigluLimit = 0.0;
  double ropeTheta = 0.0;
  double compressRopeTheta = 0.0;
  double hcEps = 0.0;
  double rmsNormEps = 0.0;
  std::string scoringFunc;
  ExpertDtype expertDtype = ExpertDtype::FP8;
  // Schedule: one ratio per layer, then one per MTP layer (V4-SPEC 1.2).
  std::vector<int64_t> compressRatios;
  RopeScaling ropeScaling;
  std::optional<EngramConfig> engram;

  /// Attention kind of layer `i` (0 <= i < numLayers + numMtpLayers).
  int64_t ratioOf(int64_t layer) const { return compressRatios[layer]; }
  bool isHashLayer(int64_t layer) const {
    return layer < numLayers && layer < numHashLayers;
  }
  bool isEngramLayer(int64_t layer) const;
};

/// Receives warnings (unknown keys); errors come back in the Expected.
using ConfigWarningHandler = std::function<void(const std::string &)>;

/// Parses and validates `text`, the contents of the config file `path` (used
/// in messages). All violated rules are reported together, one per line.
llvm::Expected<ModelConfig>
parseModelConfig(llvm::StringRef text, llvm::StringRef path,
                 const ConfigWarningHandler &warn = nullptr);

/// Reads the file at `path` and parses it.
llvm::Expected<ModelConfig>
loadModelConfig(llvm::StringRef path,
                const ConfigWarningHandler &warn = nullptr);

/// The primes of V4-SPEC 8.4 for every Engram layer (exposed for tests).
std::vector<std::vector<int64_t>>
computeEngramPrimes(const EngramConfig &engram);

} // namespace v4

#endif // V4_FRONTEND_MODELCONFIG_H
