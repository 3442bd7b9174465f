//===- SerializeArtifact.h - plan IR + code object -> .v4a ------*- C++ -*-===//
//
// The artifact phase: a module after the kernel phase (@init_state and
// @step as plans over buffers, `module @kernels` lowered by its target) is
// serialized into the FlatBuffers artifact (runtime/schema/v4_artifact.fbs):
// the target backend serializes the kernels into a code object, and the
// plan, buffers, state specs, parameter manifest and debug locations are
// read off the plan IR. A module compiled for several targets adds, per
// further target (getTargetKernelModules), its code objects and a kernel
// table parallel to the first (the artifact's kernel sets, format 1.5). The
// result is verified with the runtime's own loader (every AF layer) before it
// is handed back.
//
//===----------------------------------------------------------------------===//
#ifndef V4_LOWERING_ARTIFACT_SERIALIZEARTIFACT_H
#define V4_LOWERING_ARTIFACT_SERIALIZEARTIFACT_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"

#include <string>

namespace mlir::v4 {

/// Serializes `module` (after the kernel phase) into the bytes of an
/// artifact. Emits diagnostics on failure.
LogicalResult serializeArtifact(ModuleOp module, std::string &bytes);

} // namespace mlir::v4

#endif // V4_LOWERING_ARTIFACT_SERIALIZEARTIFACT_H
