//===- Passes.h - every lowering pass ---------------------------*- C++ -*-===//
//
// The lowering passes (lowering/Passes.td) and the pattern entry points
// pipelines and tests reuse. Phases that group them: lowering/Pipelines.h.
//
//===----------------------------------------------------------------------===//
#ifndef V4_LOWERING_PASSES_H
#define V4_LOWERING_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

#include "dialects/V4/V4Dialect.h"

namespace mlir::v4 {

#define GEN_PASS_DECL
#include "lowering/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "lowering/Passes.h.inc"

} // namespace mlir::v4

#endif // V4_LOWERING_PASSES_H
