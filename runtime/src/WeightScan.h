//===- WeightScan.h - the opt-in finite-value scan of the weights -*- C++
//-*-===//
//
// VAL-1 (RELIABILITY.md §2.11): with v4rt_model_options_t.check_weights (and
// v4-run --check-weights), every tensor of the checkpoint is read once at
// load and the first non-finite element refused, naming the tensor and the
// element: bf16/f16/f32 NaN or Inf, an e4m3fn NaN byte (0x7F, 0xFF), an
// e8m0 scale 0xFF (NaN). e2m1 and the integer types have no such values.
// The encodings are runtime/numerics/Numerics.h's.
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_SRC_WEIGHTSCAN_H
#define V4_RUNTIME_SRC_WEIGHTSCAN_H

#include "runtime/base/DType.h"
#include "runtime/base/Status.h"

#include <cstdint>
#include <string>

namespace v4::rt {

/// Index of the first NaN or Inf among `elements` values of `dtype` at
/// `data`, or -1.
int64_t firstNonFinite(DType dtype, const void *data, uint64_t elements);

/// VAL-1 over every tensor of the checkpoint at `path` (a file, folder or
/// index, as v4rt_model_options_t.checkpoint_path).
Status scanWeights(const std::string &path);

} // namespace v4::rt

#endif // V4_RUNTIME_SRC_WEIGHTSCAN_H
