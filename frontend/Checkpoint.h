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
/// (seed, name), so tensors do not depend on each other's order.
llvm::Error generateCheckpoint(mlir::ModuleOp module, uint64_t seed,
                               llvm::StringRef outDir, int64_t maxShardBytes);

//===----------------------------------------------------------------------===//
// Quantisers (V4-SPEC 2.3, 2.4), exposed for tests
//===----------------------------------------------------------------------===//

namespace quant {

/// e8m0 code of the power-of-two scale 2^ceil(log2(amax / gridMax)), with
/// amax raised to `minAmax` first (all-zero blocks). Clamped to [2^-127,
/// 2^127] (codes 0..254; 0xFF is NaN and never produced).
uint8_t e8m0ScaleCode(float amax, float gridMax, float minAmax);
/// 2^(code - 127).
double decodeE8M0(uint8_t code);

/// e4m3fn code of `x`, saturating to +-448, round-to-nearest-even.
uint8_t encodeE4M3(float x);
float decodeE4M3(uint8_t code);

/// e2m1 code (4 bits) of `x`, saturating to +-6, round-to-nearest-even.
uint8_t encodeE2M1(float x);
float decodeE2M1(uint8_t code);

/// bf16 bits of `x` by round-to-nearest-even (finite inputs).
uint16_t encodeBF16(float x);
float decodeBF16(uint16_t bits);

/// Quantises a row-major [rows, cols] matrix to e4m3 with one e8m0 scale per
/// blockRows x blockCols block (scale = 2^ceil(log2(amax/448))). `q` gets
/// rows*cols codes, `scales` ceil(rows/blockRows)*ceil(cols/blockCols).
void quantizeFP8(const float *w, int64_t rows, int64_t cols, int64_t blockRows,
                 int64_t blockCols, uint8_t *q, uint8_t *scales);

/// Quantises a row-major [rows, k] matrix (k even) to packed e2m1: byte
/// (r, i) holds element 2i in the low nibble and 2i+1 in the high nibble,
/// with one e8m0 scale per blockRows x blockK block (scale =
/// 2^ceil(log2(amax/6))). `packed` gets rows*k/2 bytes.
void quantizeFP4(const float *w, int64_t rows, int64_t k, int64_t blockRows,
                 int64_t blockK, uint8_t *packed, uint8_t *scales);

} // namespace quant
} // namespace v4

#endif // V4_FRONTEND_CHECKPOINT_H
