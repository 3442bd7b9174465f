//===- ConfigAdapter.h - v4::ModelConfig -> ref::Config ---------*- C++ -*-===//
//
// Header-only bridge for callers that have the frontend (and LLVM); the
// v4reference library itself never includes frontend/ModelConfig.h.
//
//===----------------------------------------------------------------------===//
#ifndef V4_REFERENCE_CONFIGADAPTER_H
#define V4_REFERENCE_CONFIGADAPTER_H

#include "frontend/ModelConfig.h"
#include "reference/Model.h"

namespace v4::ref {

inline Config configFrom(const ModelConfig &m) {
  Config c;
  c.dim = m.hiddenSize;
  c.nLayers = m.numLayers;
  c.nHeads = m.numHeads;
  c.headDim = m.headDim;
  c.ropeDim = m.ropeHeadDim;
  c.qLora = m.qLoraRank;
  c.oGroups = m.oGroups;
  c.oLora = m.oLoraRank;
  c.vocab = m.vocabSize;
  c.nExperts = m.numRoutedExperts;
  c.topk = m.numExpertsPerTok;
  c.moeInter = m.moeIntermediateSize;
  c.nHashLayers = m.numHashLayers;
  c.window = m.slidingWindow;
  c.indexHeads = m.indexNumHeads;
  c.indexHeadDim = m.indexHeadDim;
  c.indexTopk = m.indexTopk;
  c.hc = m.hcMult;
  c.sinkhornIters = m.hcSinkhornIters;
  c.nMtp = m.numMtpLayers;
  c.blockSize = m.weightBlockSize;
  c.routeScale = float(m.routedScalingFactor);
  c.swigluLimit = float(m.swigluLimit);
  c.hcEps = float(m.hcEps);
  c.normEps = float(m.rmsNormEps);
  c.ropeTheta = m.ropeTheta;
  c.compressRopeTheta = m.compressRopeTheta;
  c.yarnFactor = m.ropeScaling.factor;
  c.yarnOriginal = m.ropeScaling.originalMaxPositionEmbeddings;
  c.betaFast = m.ropeScaling.betaFast;
  c.betaSlow = m.ropeScaling.betaSlow;
  c.ratios = m.compressRatios;
  if (m.engram) {
    Config::Engram e;
    e.layerIds = m.engram->layerIds;
    e.N = m.engram->maxNgramSize;
    e.He = m.engram->numHeads;
    e.De = m.engram->headDim;
    e.padId = m.engram->padTokenId;
    e.eps = float(m.engram->normEps);
    e.primes = m.engram->primes;
    e.seed = uint64_t(m.engram->seed);
    e.compressedVocab = m.engram->compressedVocabSize;
    c.engram = e;
  }
  return c;
}

} // namespace v4::ref

#endif // V4_REFERENCE_CONFIGADAPTER_H
