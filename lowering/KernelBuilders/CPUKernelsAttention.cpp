//===- CPUKernelsAttention.cpp - CPU kernels: Attention ---===//
//
// v4.ring.*, v4.cache.*, v4.attn.*, v4.kv.*, v4.csa.* (V4-SPEC 5, 9).
//
//===----------------------------------------------------------------------===//
#include "lowering/KernelBuilders/CPUKernelBody.h"

#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;

namespace mlir::v4::cpu {

std::optional<LogicalResult> buildAttentionKernel(Operation *op, func::FuncOp fn) {
  return llvm::TypeSwitch<Operation *, std::optional<LogicalResult>>(op)
      .Default([](Operation *) { return std::nullopt; });
}

} // namespace mlir::v4::cpu
