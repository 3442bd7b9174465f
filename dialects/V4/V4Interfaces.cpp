//===- V4Interfaces.cpp - v4 op interfaces and their implementations -----===//
#include "dialects/V4/V4Ops.h"

using namespace mlir;
using namespace mlir::v4;

#include "dialects/V4/V4Interfaces.cpp.inc"

//===----------------------------------------------------------------------===//
// TiedResultsOpInterface: which result updates which operand in place.
//===----------------------------------------------------------------------===//

std::optional<unsigned> RingWriteOp::getTiedOperandIndex(unsigned result) {
  if (result == 0)
    return getRingMutable().getOperandNumber();
  return std::nullopt;
}

std::optional<unsigned> KVCompressOp::getTiedOperandIndex(unsigned result) {
  if (result == 0)
    return getStateMutable().getOperandNumber();
  if (result == 1)
    return getCacheMutable().getOperandNumber();
  return std::nullopt;
}

std::optional<unsigned>
KVCompressProjectedOp::getTiedOperandIndex(unsigned result) {
  if (result == 0)
    return getStateMutable().getOperandNumber();
  if (result == 1)
    return getCacheMutable().getOperandNumber();
  return std::nullopt;
}

std::optional<unsigned> EngramHashOp::getTiedOperandIndex(unsigned result) {
  if (result == 1)
    return getStateMutable().getOperandNumber();
  return std::nullopt;
}

std::optional<unsigned> EngramGateOp::getTiedOperandIndex(unsigned result) {
  if (result == 1 && getConvState())
    return getConvStateMutable()[0].getOperandNumber();
  return std::nullopt;
}

std::optional<unsigned> CommAllReduceOp::getTiedOperandIndex(unsigned result) {
  if (result == 0)
    return getInputMutable().getOperandNumber();
  return std::nullopt;
}
