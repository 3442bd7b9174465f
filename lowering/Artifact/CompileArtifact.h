//===- CompileArtifact.h - v4 module -> CPU artifact ------------*- C++ -*-===//
//
// The CPU compile of a model module: dispatch formation, the CPU kernels as
// one host shared object, and the FlatBuffers artifact around them (schema
// runtime/schema/v4_artifact.fbs). The result is verified with the runtime's
// own loader (every AF layer) before it is handed back.
//
//===----------------------------------------------------------------------===//
#ifndef V4_LOWERING_ARTIFACT_COMPILEARTIFACT_H
#define V4_LOWERING_ARTIFACT_COMPILEARTIFACT_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"

#include <string>

namespace mlir::v4 {

/// Compiles `model` (a module with @init_state and @step, e.g. from the
/// importer) into the bytes of a CPU artifact. Emits diagnostics on failure.
LogicalResult compileArtifact(ModuleOp model, std::string &bytes);

} // namespace mlir::v4

#endif // V4_LOWERING_ARTIFACT_COMPILEARTIFACT_H
