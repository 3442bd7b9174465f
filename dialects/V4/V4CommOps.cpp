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

namespace {
/// `c1`: a world >= 1; `c2`: `big` is `small` with dim 0 times the world
/// (the other dims equal, the element types too).
LogicalResult verifyWorldBlocks(Operation *op, StringRef c1, StringRef c2,
                                int64_t world, RankedTensorType small,
                                RankedTensorType big) {
  if (world < 1)
    return op->emitOpError()
           << "expected world >= 1, got " << world << " " << c1;
  bool ok = small.getRank() >= 1 && big.getRank() == small.getRank() &&
            small.getElementType() == big.getElementType() &&
            !ShapedType::isDynamic(small.getDimSize(0)) &&
            big.getDimSize(0) == small.getDimSize(0) * world;
  for (int64_t i = 1; ok && i < small.getRank(); ++i)
    ok = small.getDimSize(i) == big.getDimSize(i);
  if (!ok)
    return op->emitOpError()
           << "expected " << big << " to be " << small
           << " with a static dim 0 " << world << " times as large " << c2;
  return success();
}
} // namespace

LogicalResult CommAllGatherOp::verify() {
  return verifyWorldBlocks(*this, "[comm_all_gather_c1]",
                           "[comm_all_gather_c2]", getWorldSize(),
                           getInput().getType(), getResult().getType());
}

LogicalResult CommReduceScatterOp::verify() {
  if (failed(verifyWorldBlocks(*this, "[comm_reduce_scatter_c1]",
                               "[comm_reduce_scatter_c2]", getWorldSize(),
                               getResult().getType(), getInput().getType())))
    return failure();
  // comm_reduce_scatter_c3: bf16 or f32 elements.
  Type elt = getInput().getType().getElementType();
  if (!elt.isBF16() && !elt.isF32())
    return emitOpError() << "expected bf16 or f32 elements, got " << elt
                         << " [comm_reduce_scatter_c3]";
  return success();
}

LogicalResult CommAllToAllOp::verify() {
  // comm_all_to_all_c1: a world of at least one rank.
  int64_t world = getWorldSize();
  if (world < 1)
    return emitOpError() << "expected world >= 1, got " << world
                         << " [comm_all_to_all_c1]";
  // comm_all_to_all_c2: counts and recvCounts are [world] i64.
  for (auto [what, v] : {std::pair<StringRef, Value>{"counts", getCounts()},
                         {"recvCounts", getRecvCounts()}}) {
    auto t = cast<RankedTensorType>(v.getType());
    if (t.getShape() != ArrayRef<int64_t>{world} ||
        !t.getElementType().isInteger(64))
      return emitOpError() << "expected " << what << " tensor<" << world
                           << "xi64>, got " << t << " [comm_all_to_all_c2]";
  }
  // comm_all_to_all_c3: the input is `world` blocks of rows (rank >= 2,
  // dim 0 = world) of bf16, f32 or i64, and the result has its type.
  auto in = cast<RankedTensorType>(getInput().getType());
  Type elt = in.getElementType();
  if (in.getRank() < 2 || in.getDimSize(0) != world ||
      (!elt.isBF16() && !elt.isF32() && !elt.isInteger(64)) ||
      getResult().getType() != in)
    return emitOpError() << "expected an input of " << world
                         << " blocks along dim 0 (rank >= 2) of bf16, f32 "
                            "or i64, and a result of its type; got "
                         << in << " -> " << getResult().getType()
                         << " [comm_all_to_all_c3]";
  return success();
}
