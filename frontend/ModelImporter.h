//===- ModelImporter.h - ModelConfig -> v4 module ----------------*- C++
//-*-===//
//
// Builds the whole model of a validated ModelConfig in the v4 dialect: one
// function per Block (@layers_L, @mtp_K), @init_state and @step, with the
// structure of models/example/tiny-v4-model.mlir (V4-SPEC 3-8). Every op
// carries a NameLoc naming its place in the checkpoint (`layers.7.attn`,
// `layers.7.ffn.gate`, `head`, ...).
//
//===----------------------------------------------------------------------===//
#ifndef V4_FRONTEND_MODELIMPORTER_H
#define V4_FRONTEND_MODELIMPORTER_H

#include "frontend/ModelConfig.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"
#include "mlir/Support/LLVM.h"

#include <cstdint>
#include <string>

namespace v4 {

/// Static bounds of the imported program.
struct ImportOptions {
  /// Sequences per call (B).
  int64_t batch = 1;
  /// Longest sequence the decode state holds; a compressed cache of ratio r
  /// holds maxContext / r entries. 0: the config's max_position_embeddings
  /// (a larger value is imported with a warning).
  int64_t maxContext = 0;
  /// Logits of every position of a chunk, not only of its last position
  /// (the default; module attribute `v4.logits` = "all" or "last").
  bool allLogits = false;
  /// Recorded as the `v4.model` module attribute (config path or name).
  std::string modelName;
};

/// Registers the dialects the imported module uses (v4, func, arith, tensor).
void registerImportDialects(mlir::DialectRegistry &registry);

/// Imports `config`. Loads the needed dialects into `context`. Fails (with a
/// diagnostic on the context) on bad options or when the module does not
/// verify.
mlir::FailureOr<mlir::OwningOpRef<mlir::ModuleOp>>
importModel(mlir::MLIRContext &context, const ModelConfig &config,
            const ImportOptions &options);

/// Why loadModel failed: the input was rejected (exit 1) or could not be read
/// (exit 3, docs/STYLE.md 3.4).
enum class LoadFailure { Rejected, IO };

/// Loads a model given as a `.mlir` module (parsed and verified) or as a
/// config.json (validated and imported with `options`). Diagnostics, config
/// errors and config warnings go to stderr; on failure returns null and sets
/// `*failure`. Every tool that takes a model uses this, so they accept the
/// same inputs.
mlir::OwningOpRef<mlir::ModuleOp> loadModel(mlir::MLIRContext &context,
                                            llvm::StringRef path,
                                            const ImportOptions &options,
                                            LoadFailure *failure = nullptr);

} // namespace v4

#endif // V4_FRONTEND_MODELIMPORTER_H
