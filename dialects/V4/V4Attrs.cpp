//===- V4Attrs.cpp - v4 attributes ----------------------------------------===//
#include "dialects/V4/V4Attrs.h"
#include "dialects/V4/V4Dialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

using namespace mlir;
using namespace mlir::v4;

#include "dialects/V4/V4Enums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/V4/V4Attrs.cpp.inc"

void V4Dialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialects/V4/V4Attrs.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// RopeTableAttr (V4-SPEC 2.2)
//===----------------------------------------------------------------------===//

LogicalResult
RopeTableAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                      int64_t ropeDim, FloatAttr base, FloatAttr factor,
                      int64_t originalSeqLen, FloatAttr betaFast,
                      FloatAttr betaSlow) {
  // rope_c1: pairs are rotated, so the rotated width is even and positive.
  if (ropeDim <= 0 || ropeDim % 2 != 0)
    return emitError() << "rope: expected ropeDim to be even and > 0, got "
                       << ropeDim << " [rope_c1]";
  // rope_c2: f_i = base^(-2i/ropeDim) needs base > 1.
  if (!(base.getValueAsDouble() > 1.0))
    return emitError() << "rope: expected base > 1, got "
                       << base.getValueAsDouble() << " [rope_c2]";
  // rope_c3: factor 1 disables YaRN; a factor below 1 has no meaning.
  if (!(factor.getValueAsDouble() >= 1.0))
    return emitError() << "rope: expected factor >= 1, got "
                       << factor.getValueAsDouble() << " [rope_c3]";
  // rope_c4: YaRN ramp parameters.
  if (factor.getValueAsDouble() != 1.0) {
    if (originalSeqLen <= 0)
      return emitError() << "rope: expected originalSeqLen > 0 with YaRN, got "
                         << originalSeqLen << " [rope_c4]";
    if (!(betaFast.getValueAsDouble() > 0.0) ||
        !(betaSlow.getValueAsDouble() > 0.0))
      return emitError() << "rope: expected betaFast > 0 and betaSlow > 0, got "
                         << betaFast.getValueAsDouble() << " and "
                         << betaSlow.getValueAsDouble() << " [rope_c4]";
  }
  return success();
}

bool RopeTableAttr::hasYarn() const {
  return getFactor().getValueAsDouble() != 1.0;
}

std::pair<double, double> RopeTableAttr::getYarnRamp() const {
  // find_correction_range of the reference: bounds over the frequency index,
  // clamped to [0, ropeDim - 1] (the code passes the rope dim, not dim/2).
  const int64_t dim = getRopeDim();
  const double base = getBase().getValueAsDouble();
  const double orig = static_cast<double>(getOriginalSeqLen());
  auto correctionDim = [&](double numRotations) {
    return dim * std::log(orig / (numRotations * 2 * M_PI)) /
           (2 * std::log(base));
  };
  double low = std::max(
      std::floor(correctionDim(getBetaFast().getValueAsDouble())), 0.0);
  double high =
      std::min(std::ceil(correctionDim(getBetaSlow().getValueAsDouble())),
               static_cast<double>(dim - 1));
  if (low == high)
    high += 0.001;
  return {low, high};
}

SmallVector<float> RopeTableAttr::getFrequencies() const {
  // precompute_freqs_cis, in fp32 as the reference does (V4-SPEC 2.2).
  const int64_t dim = getRopeDim();
  const float base = static_cast<float>(getBase().getValueAsDouble());
  SmallVector<float> freqs(dim / 2);
  for (int64_t i = 0; i < dim / 2; ++i)
    freqs[i] = 1.0f / std::pow(base, static_cast<float>(2 * i) /
                                         static_cast<float>(dim));
  if (!hasYarn())
    return freqs;
  const float factor = static_cast<float>(getFactor().getValueAsDouble());
  auto [low, high] = getYarnRamp();
  for (int64_t i = 0; i < dim / 2; ++i) {
    float ramp =
        static_cast<float>((static_cast<double>(i) - low) / (high - low));
    ramp = std::min(std::max(ramp, 0.0f), 1.0f);
    float smooth = 1.0f - ramp;
    freqs[i] = freqs[i] / factor * (1.0f - smooth) + freqs[i] * smooth;
  }
  return freqs;
}
