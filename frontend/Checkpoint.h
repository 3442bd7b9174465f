//===- Checkpoint.h - parameter manifest, check and T1 weights --*- C++ -*-===//
//
// The checkpoint side of the frontend:
//
//  * collectManifest: the checkpoint tensors a v4 module needs (every
//    v4.parameter, every member of every v4.parameter_stack), with their
//    CHECKPOINT dtype and shape (V4-SPEC 1.4: f4E2M1FN [.., K] is stored as
//    I8 [.., K/2], two e2m1 codes per byte, element 2i in the low nibble).
//  * checkCheckpoint: opens a checkpoint with the validated safetensors
//    Reader and reports every mismatch against that manifest at once.
//  * generateCheckpoint: deterministic random weights after the T1 recipe
//    (V4-SPEC 11.1) in the official layout and quantisation (V4-SPEC 2.3,
//    2.4): FP8 e4m3 with e8m0 block scales, packed FP4 e2m1 with per-32
//    e8m0 scales, bf16 by round-to-nearest-even.
//
// The quantisers are exposed for the tests.
//
//===----------------------------------------------------------------------===//
#ifndef V4_FRONTEND_CHECKPOINT_H
#define V4_FRONTEND_CHECKPOINT_H

#include "runtime/numerics/Numerics.h"
#include "runtime/safetensors/Safetensors.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace v4 {

//===----------------------------------------------------------------------===//
// Errors
//===----------------------------------------------------------------------===//

/// An error of the checkpoint functions. `kind` separates rejected input
/// (bad module, malformed or mismatching checkpoint: exit 1) from I/O
/// failures (exit 3). A mismatch error also carries every mismatch.
class CheckpointError : public llvm::ErrorInfo<CheckpointError> {
public:
  enum Kind { Rejected, IO };
  static char ID;

  CheckpointError(Kind kind, std::string message,
                  std::vector<safetensors::ManifestMismatch> mismatches = {})
      : kind(kind), message(std::move(message)),
        mismatches(std::move(mismatches)) {}

  void log(llvm::raw_ostream &os) const override { os << message; }
  std::error_code convertToErrorCode() const override;

  Kind kind;
  std::string message;
  std::vector<safetensors::ManifestMismatch> mismatches;
};

//===----------------------------------------------------------------------===//
// Manifest and check
//===----------------------------------------------------------------------===//

/// Every distinct checkpoint tensor of `module`, sorted by name, with its
/// checkpoint dtype and shape. v4.parameter_stack expands to `count` tensors.
/// Errors (Rejected): two uses of one name with different types, an element
/// type with no checkpoint dtype, an odd FP4 K extent.
llvm::Expected<std::vector<safetensors::ManifestEntry>>
collectManifest(mlir::ModuleOp module);

/// Opens `checkpointPath` (a .safetensors file, a directory or an index)
/// and compares it with collectManifest(module). Success, or a
/// CheckpointError whose message lists EVERY mismatch, one per line:
///   "  missing: NAME", "  unexpected: NAME",
///   "  wrong dtype: NAME: expected F32, found BF16",
///   "  wrong shape: NAME: expected [2, 3], found [3, 2]".
/// A checkpoint the Reader rejects (ST-1..ST-16) is Rejected; a failed
/// system call is IO.
llvm::Error checkCheckpoint(mlir::ModuleOp module,
                            llvm::StringRef checkpointPath);

//===----------------------------------------------------------------------===//
// Generation
//===----------------------------------------------------------------------===//

/// Writes deterministic random weights for every tensor of
/// collectManifest(module) into `outDir` (created if needed): one
/// model.safetensors, or model-0000i-of-0000N.safetensors shards plus
/// model.safetensors.index.json when the total exceeds `maxShardBytes`
/// (<= 0: never shard). The bytes depend only on the module's parameters and
/// `seed`. Each tensor draws from its own mt19937_64 stream seeded from
/// (seed, name), so tensors do not depend on each other's order. The Engram
/// multipliers the module derives (dialects/V4/V4DerivedParameters.h) are
/// the V4-SPEC 8.4 values (numpy default_rng, runtime/base/NumpyRandom.h),
/// so that a copy agrees with what the runtime computes; `copies` says which
/// derived tensors are written.
enum class DerivedCopies {
  /// The multipliers (a parameter), no primes: the project layout.
  Multipliers,
  /// Neither: the DeepSeek-V4.1 layout as shipped.
  None,
  /// The multipliers and the primes copies (`layers.L.engram.primes`).
  All,
};
llvm::Error
generateCheckpoint(mlir::ModuleOp module, uint64_t seed, llvm::StringRef outDir,
                   int64_t maxShardBytes,
                   DerivedCopies copies = DerivedCopies::Multipliers);

// The quantisers (namespace v4::quant, V4-SPEC 2.3, 2.4) live in
// runtime/numerics/Numerics.h.

} // namespace v4

#endif // V4_FRONTEND_CHECKPOINT_H
