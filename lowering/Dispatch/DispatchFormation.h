//===- DispatchFormation.h - model -> kernels + plan -------------*- C++
//-*-===//
//
// Dispatch formation (docs/ARCHITECTURE.md): the model's @init_state and
// @step functions (layer functions inlined) become a plan of steps over
// buffers, and every distinct v4 op (name, attributes, types) becomes one
// kernel of a kernels module, built by the CPU kernel builders. 43 or 61
// layers share a handful of kernel shapes, so the kernel count stays small.
//
// Buffers: step inputs (ids, next ids, start positions, positions), named
// parameters (a `{}` pattern for per-expert stacks), one buffer per
// activation, and the decode state (one or two buffers per state value; a
// state result is written in place into its state operand's buffers).
// Reshapes (tensor.expand_shape / collapse_shape) become copy kernels.
//
//===----------------------------------------------------------------------===//
#ifndef V4_LOWERING_DISPATCH_DISPATCHFORMATION_H
#define V4_LOWERING_DISPATCH_DISPATCHFORMATION_H

#include "runtime/artifact/Artifact.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "mlir/Support/LLVM.h"

#include <string>
#include <vector>

namespace mlir::v4 {

struct DispatchPlan {
  /// The kernels (func.func on memrefs), ready for a target.
  OwningOpRef<ModuleOp> kernels;
  /// Buffers, kernels (without code object), entry points "init_state" and
  /// "step", state specs, the parameter manifest and debug locations. The
  /// caller adds the code object and bounds.
  ::v4::artifact::Description description;
};

/// Forms the dispatches of `model` (not modified). `maxChunk` bounds the
/// token dim of every dynamic buffer.
FailureOr<DispatchPlan> formDispatches(ModuleOp model);

} // namespace mlir::v4

#endif // V4_LOWERING_DISPATCH_DISPATCHFORMATION_H
