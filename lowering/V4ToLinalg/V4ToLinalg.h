//===- V4ToLinalg.h - target-neutral kernel bodies --------------*- C++ -*-===//
//
// The conversion of v4 kernels (dispatch formation's outlined functions) to
// linalg/tensor on storage types (dialects/V4/V4StorageLayout.h), with
// every bf16/fp32 rounding point explicit, so that every target compiles
// the cold ops from one body. Pass: convert-v4-to-linalg.
//
//===----------------------------------------------------------------------===//
#ifndef V4_LOWERING_V4TOLINALG_V4TOLINALG_H
#define V4_LOWERING_V4TOLINALG_V4TOLINALG_H

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/DialectConversion.h"

namespace mlir::v4 {

/// Adds the patterns that lower v4 ops (and v4.kernel.store) to
/// linalg/tensor/bufferization ops on the storage types of `converter`.
void populateV4ToLinalgConversionPatterns(const TypeConverter &converter,
                                          RewritePatternSet &patterns);

/// Whether `op` has a target-neutral body here. A target builds the other
/// ops by hand (TargetBackend::hasHandBuiltKernel).
bool hasV4ToLinalgLowering(Operation *op);

} // namespace mlir::v4

#endif // V4_LOWERING_V4TOLINALG_V4TOLINALG_H
