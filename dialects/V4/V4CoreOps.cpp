//===- V4CoreOps.cpp - verifiers of the core op family --------------------===//
#include "dialects/V4/V4Ops.h"
#include "dialects/V4/V4Verification.h"

using namespace mlir;
using namespace mlir::v4;

#define GET_OP_CLASSES
#include "dialects/V4/V4CoreOps.cpp.inc"

//===----------------------------------------------------------------------===//
// ParameterOp
//===----------------------------------------------------------------------===//

LogicalResult ParameterOp::verify() {
  // parameter_c1: a parameter is named after its checkpoint tensor.
  if (getName().empty())
    return emitOpError() << "expected a non-empty checkpoint tensor name "
                            "[parameter_c1]";
  // parameter_c2: no zero-sized weights.
  for (int64_t d : getResult().getType().getShape())
    if (d <= 0)
      return emitOpError() << "expected every dimension of '" << getName()
                           << "' > 0, got shape "
                           << shapeToString(getResult().getType().getShape())
                           << " [parameter_c2]";
  return success();
}

//===----------------------------------------------------------------------===//
// ParameterStackOp
//===----------------------------------------------------------------------===//

LogicalResult ParameterStackOp::verify() {
  StringRef pattern = getPattern();
  // parameter_stack_c1: exactly one `{}` placeholder.
  size_t at = pattern.find("{}");
  if (at == StringRef::npos || pattern.find("{}", at + 2) != StringRef::npos)
    return emitOpError() << "expected pattern '" << pattern
                         << "' to contain exactly one '{}' [parameter_stack_c1]";
  // parameter_stack_c2: the leading dimension is the member count.
  ArrayRef<int64_t> shape = getResult().getType().getShape();
  if (getCount() <= 0 || shape.empty() || shape.front() != getCount())
    return emitOpError() << "expected result leading dimension = count ("
                         << getCount() << "), got shape " << shapeToString(shape)
                         << " [parameter_stack_c2]";
  for (int64_t d : shape)
    if (d <= 0)
      return emitOpError() << "expected every dimension > 0, got shape "
                           << shapeToString(shape) << " [parameter_c2]";
  return success();
}

std::string ParameterStackOp::getMemberName(int64_t index) {
  StringRef pattern = getPattern();
  size_t at = pattern.find("{}");
  return (pattern.take_front(at) + std::to_string(index) +
          pattern.drop_front(at + 2))
      .str();
}
