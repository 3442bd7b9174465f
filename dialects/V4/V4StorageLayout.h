//===- V4StorageLayout.h - how model values are held in memory --*- C++ -*-===//
//
// The one storage-layout rule of the project: how a value of a v4 model
// (a tensor with a logical element type, or a decode-state value) is held
// in buffers, in kernel arguments and in the checkpoint. The frontend's
// parameter manifest, dispatch formation and every kernel (hand-built or
// lowered from linalg) use it; nothing else spells it out.
//
//   tensor<... x f8E4M3FN>, tensor<... x f8E8M0FNU>
//                                  -> tensor<... x i8>   (raw codes)
//   tensor<... x K x f4E2M1FN>     -> tensor<... x K/2 x i8> (two per byte,
//                                     low nibble first; V4-SPEC 1.4)
//   other tensors                  -> themselves
//   !v4.window_ring<B, S, D, T>    -> tensor<B x S x D x T>
//   !v4.kv_cache<B, C, D, T>       -> tensor<B x C x D x T>
//   !v4.compressor_state<B, R, W>  -> kv_state, score_state:
//                                     2 x tensor<B x R x W x f32> (V4-SPEC 9.1)
//   !v4.engram_state<B, L>         -> tensor<B x L x i64>
//
// In the checkpoint, FP8 and e8m0 keep their dtypes (F8_E4M3, F8_E8M0) and
// FP4 is I8 with the packed shape.
//
//===----------------------------------------------------------------------===//
#ifndef V4_DIALECTS_V4_V4STORAGELAYOUT_H
#define V4_DIALECTS_V4_V4STORAGELAYOUT_H

#include "runtime/base/DType.h"

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/Transforms/DialectConversion.h"

#include <vector>

namespace mlir::v4 {

/// Converts model types to their storage tensor types (1:N for the
/// compressor state); every other type converts to itself.
class StorageTypeConverter : public TypeConverter {
public:
  StorageTypeConverter();
};

/// Appends the storage tensor types of `type`. Fails for a type without a
/// storage layout (an FP4 tensor whose last dim is dynamic or odd).
LogicalResult getStorageTypes(Type type, SmallVectorImpl<Type> &out);

/// Appends the memref types (identity layout) of the buffers that hold a
/// value of `type`: getStorageTypes as memrefs.
LogicalResult getStorageMemRefTypes(Type type, SmallVectorImpl<Type> &out);

/// The runtime dtype of a storage element type (bf16, f16, f32, i8, i32,
/// i64).
FailureOr<::v4::DType> getStorageDType(Type element);

/// Bytes of a storage buffer of `type` with every dynamic dim (the token
/// dim) at `tokens`; fails for an element type without a storage dtype.
FailureOr<uint64_t> getStorageBytes(MemRefType type, int64_t tokens);

/// The checkpoint dtype and shape of a parameter of logical type `type`.
struct CheckpointLayout {
  ::v4::DType dtype;
  std::vector<int64_t> shape;
};
FailureOr<CheckpointLayout> getCheckpointLayout(RankedTensorType type);

} // namespace mlir::v4

#endif // V4_DIALECTS_V4_V4STORAGELAYOUT_H
