//===- Passes.h - graph-level passes on v4 ops ------------------*- C++ -*-===//
#ifndef V4_PASSES_PASSES_H
#define V4_PASSES_PASSES_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "mlir/Pass/Pass.h"

namespace mlir::v4 {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

/// Fuses `v4.mhc.post` followed by a `v4.mhc.pre` of its result (same
/// block) into `v4.mhc.post_pre` (pass v4-fuse-mhc-boundaries).
void populateFuseMhcBoundariesPatterns(RewritePatternSet &patterns);

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

} // namespace mlir::v4

#endif // V4_PASSES_PASSES_H
