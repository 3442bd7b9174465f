//===- V4CommOps.cpp - verifiers of the rank and collective ops -----------===//
#include "dialects/V4/V4Ops.h"
#include "dialects/V4/V4Verification.h"

using namespace mlir;
using namespace mlir::v4;

#define GET_OP_CLASSES
#include "dialects/V4/V4CommOps.cpp.inc"

LogicalResult CommRankOp::verify() {
  // comm_rank_c1: a world of at least one rank.
  if (getWorldSize() < 1)
    return emitOpError() << "expected world >= 1, got " << getWorldSize()
                         << " [comm_rank_c1]";
  // comm_rank_c2: one i64.
  auto type = cast<RankedTensorType>(getResult().getType());
  if (type.getShape() != ArrayRef<int64_t>{1} ||
      !type.getElementType().isInteger(64))
    return emitOpError() << "expected result tensor<1xi64>, got " << type
                         << " [comm_rank_c2]";
  return success();
}

LogicalResult CommAllReduceOp::verify() {
  // comm_all_reduce_c1: bf16 or f32 elements.
  Type elt = getInput().getType().getElementType();
  if (!elt.isBF16() && !elt.isF32())
    return emitOpError() << "expected bf16 or f32 elements, got " << elt
                         << " [comm_all_reduce_c1]";
  return success();
}
