//===- DispatchFormation.h - kernels and the plan as IR ---------*- C++ -*-===//
//
// Dispatch formation (pass v4-form-dispatches, lowering/Passes.td): every
// op of @step/@init_state becomes a dispatch of an outlined kernel, and the
// two functions become a plan over buffers. This header exposes the
// outlining step on its own, for tests that compile one op.
//
//===----------------------------------------------------------------------===//
#ifndef V4_LOWERING_DISPATCH_DISPATCHFORMATION_H
#define V4_LOWERING_DISPATCH_DISPATCHFORMATION_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"

namespace mlir::v4 {

/// The name of the nested module that holds the kernels.
constexpr StringLiteral kKernelsModuleName = "kernels";
/// The most tokens one call takes (module attribute, i64; v4c --max-chunk).
/// Dispatch formation records the effective bound (getPlanBounds) on the
/// kernels module too, for targets that size per-kernel scratch.
constexpr StringLiteral kMaxChunkAttrName = "v4.max_chunk";
/// The name of the op a kernel function was outlined from.
constexpr StringLiteral kKernelOpAttrName = "v4.kernel_op";
/// On a kernel body function (unit): v4-reassociate-sums leaves its float
/// arithmetic as built (the fast order's freedom is taken by the builder,
/// with explicit flags, only where it chose to).
constexpr StringLiteral kKeepSumOrderAttrName = "v4.keep_sum_order";
/// On a v4.plan.dispatch (unit): it may run at the same time as the
/// dispatches before it up to the last one without the mark
/// (v4-mark-concurrent-dispatches; the memory plan keeps their buffers
/// apart, the artifact's Step.concurrent).
constexpr StringLiteral kConcurrentAttrName = "v4.concurrent";
/// On a v4.plan.dispatch of @step (i64 array): the results of @step its
/// writes reach, when they reach no other result and no state: a call that
/// wants none of them may skip it (v4-mark-output-only-dispatches; the
/// artifact's Step.only_for_outputs).
constexpr StringLiteral kOnlyForOutputsAttrName = "v4.only_for_outputs";

/// Outlines `op` (a v4 op, or a tensor reshape) into a public kernel
/// function `name` at the end of `kernels`, in destination-passing style:
/// arguments are the op's tensor/state operands, then one destination per
/// untied result; results are the op's results stored (v4.kernel.store)
/// into their destination or tied operand; a tied result carries the result
/// attribute `v4.tied_operand`. The function has the unit attribute
/// `v4.kernel`, and `v4.kernel_op` = the outlined op's name.
FailureOr<func::FuncOp> outlineKernel(Operation *op, ModuleOp kernels,
                                      StringRef name);

/// The kernels module nested in `module`, or null.
ModuleOp getKernelsModule(ModuleOp module);

/// A module compiled for several targets (`v4.target` a list such as
/// "cpu,sm_90a") holds, after `module @kernels` (the first target's), one
/// copy of it per further target, `module @kernels.<target>` with that
/// `v4.target`: the kernels module and these, in the list's order.
SmallVector<ModuleOp> getTargetKernelModules(ModuleOp module);
constexpr StringLiteral kTargetKernelsModulePrefix = "kernels.";

/// The static bounds a plan is compiled for: module attributes `v4.batch`,
/// `v4.max_context` and `v4.max_chunk` (the most tokens one call takes;
/// without the attribute, min(max_context, kDefaultMaxChunk)).
struct PlanBounds {
  int64_t batch = 1;
  int64_t maxContext = 1;
  int64_t maxChunk = 1;
};
constexpr int64_t kDefaultMaxChunk = 512;
PlanBounds getPlanBounds(ModuleOp module);

} // namespace mlir::v4

#endif // V4_LOWERING_DISPATCH_DISPATCHFORMATION_H
