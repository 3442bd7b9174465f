//===- Passes.h - graph-level passes on v4 ops ------------------*- C++ -*-===//
#ifndef V4_PASSES_PASSES_H
#define V4_PASSES_PASSES_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::v4 {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

} // namespace mlir::v4

#endif // V4_PASSES_PASSES_H
