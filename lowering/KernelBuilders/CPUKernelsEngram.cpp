//===- CPUKernelsEngram.cpp - CPU kernels: Engram ---===//
//
// v4.engram.* (V4-SPEC 8).
//
//===----------------------------------------------------------------------===//
#include "lowering/KernelBuilders/CPUKernelBody.h"

#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;

namespace mlir::v4::cpu {

std::optional<LogicalResult> buildEngramKernel(Operation *op, func::FuncOp fn) {
  return llvm::TypeSwitch<Operation *, std::optional<LogicalResult>>(op)
      .Default([](Operation *) { return std::nullopt; });
}

} // namespace mlir::v4::cpu
