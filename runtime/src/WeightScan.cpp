//===- WeightScan.cpp - the opt-in finite-value scan of the weights -------===//
#include "runtime/src/WeightScan.h"

#include "runtime/numerics/Numerics.h"
#include "runtime/safetensors/Safetensors.h"

#include <cmath>
#include <cstring>

namespace v4::rt {

int64_t firstNonFinite(DType dtype, const void *data, uint64_t elements) {
  const uint8_t *p = static_cast<const uint8_t *>(data);
  auto u16 = [&](uint64_t i) {
    uint16_t v;
    std::memcpy(&v, p + 2 * i, 2);
    return v;
  };
  for (uint64_t i = 0; i < elements; ++i) {
    bool bad = false;
    switch (dtype) {
    case DType::BF16:
      bad = quant::isNonFiniteBF16(u16(i));
      break;
    case DType::F16:
      bad = quant::isNonFiniteF16(u16(i));
      break;
    case DType::F32: {
      float v;
      std::memcpy(&v, p + 4 * i, 4);
      bad = !std::isfinite(v);
      break;
    }
    case DType::F8E4M3:
      bad = quant::isNaNE4M3(p[i]);
      break;
    case DType::F8E8M0:
      bad = quant::isNaNE8M0(p[i]);
      break;
    default: // e2m1 and the integers: every code is a number
      return -1;
    }
    if (bad)
      return static_cast<int64_t>(i);
  }
  return -1;
}

Status scanWeights(const std::string &path) {
  auto reader = safetensors::Reader::open(path);
  if (!reader)
    return reader.status();
  for (const safetensors::TensorInfo &t : reader->tensors()) {
    auto span = reader->data(t.name);
    if (!span)
      return span.status();
    int64_t at = firstNonFinite(t.dtype, span->data, t.numElements);
    if (at < 0)
      continue;
    std::string shape;
    for (size_t d = 0; d < t.shape.size(); ++d)
      shape += (d ? ", " : "") + std::to_string(t.shape[d]);
    return Status::error("VAL-1",
                         reader->shards()[t.shardIndex] + ": tensor '" +
                             t.name + "' (" + dtypeName(t.dtype) + " [" +
                             shape + "]) element " + std::to_string(at) +
                             " is NaN or Inf: the checkpoint is corrupt or was "
                             "converted wrongly; regenerate or re-download it");
  }
  return Status::success();
}

} // namespace v4::rt
