//===- V4Types.cpp - v4 decode-state types --------------------------------===//
#include "dialects/V4/V4Types.h"
#include "dialects/V4/V4Dialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::v4;

#define GET_TYPEDEF_CLASSES
#include "dialects/V4/V4Types.cpp.inc"

void V4Dialect::registerTypes() {
  addTypes<
#define GET_TYPEDEF_LIST
#include "dialects/V4/V4Types.cpp.inc"
      >();
}

static LogicalResult checkPositive(function_ref<InFlightDiagnostic()> emitError,
                                   StringRef type, StringRef what,
                                   int64_t value) {
  if (value > 0)
    return success();
  return emitError() << type << ": expected " << what << " > 0, got " << value
                     << " [state_c1]";
}

static LogicalResult
checkStateElement(function_ref<InFlightDiagnostic()> emitError, StringRef type,
                  Type elt) {
  if (elt.isBF16() || elt.isF16() || elt.isF32() || isa<Float8E4M3FNType>(elt))
    return success();
  return emitError()
         << type << ": expected elementType bf16, f16, f32 or f8E4M3FN, got "
         << elt << " [state_c2]";
}

LogicalResult
WindowRingType::verify(function_ref<InFlightDiagnostic()> emitError,
                       int64_t batch, int64_t slots, int64_t dim,
                       Type elementType) {
  if (failed(checkPositive(emitError, "window_ring", "batch", batch)) ||
      failed(checkPositive(emitError, "window_ring", "slots", slots)) ||
      failed(checkPositive(emitError, "window_ring", "dim", dim)))
    return failure();
  return checkStateElement(emitError, "window_ring", elementType);
}

LogicalResult KVCacheType::verify(function_ref<InFlightDiagnostic()> emitError,
                                  int64_t batch, int64_t capacity, int64_t dim,
                                  int64_t ratio, Type elementType) {
  if (failed(checkPositive(emitError, "kv_cache", "batch", batch)) ||
      failed(checkPositive(emitError, "kv_cache", "capacity", capacity)) ||
      failed(checkPositive(emitError, "kv_cache", "dim", dim)))
    return failure();
  // state_c3: a cache is filled by a compressor, whose ratio is >= 2.
  if (ratio < 2)
    return emitError() << "kv_cache: expected ratio >= 2, got " << ratio
                       << " [state_c3]";
  return checkStateElement(emitError, "kv_cache", elementType);
}

LogicalResult
CompressorStateType::verify(function_ref<InFlightDiagnostic()> emitError,
                            int64_t batch, int64_t ratio, int64_t dim) {
  if (failed(checkPositive(emitError, "compressor_state", "batch", batch)) ||
      failed(checkPositive(emitError, "compressor_state", "dim", dim)))
    return failure();
  if (ratio < 2)
    return emitError() << "compressor_state: expected ratio >= 2, got " << ratio
                       << " [state_c3]";
  return success();
}

LogicalResult
EngramStateType::verify(function_ref<InFlightDiagnostic()> emitError,
                        int64_t batch, int64_t lookback) {
  if (failed(checkPositive(emitError, "engram_state", "batch", batch)) ||
      failed(checkPositive(emitError, "engram_state", "lookback", lookback)))
    return failure();
  return success();
}
