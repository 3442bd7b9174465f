//===- V4StorageLayout.cpp - how model values are held in memory ----------===//
#include "dialects/V4/V4StorageLayout.h"

#include "dialects/V4/V4Types.h"

#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;

namespace mlir::v4 {

LogicalResult getStorageTypes(Type type, SmallVectorImpl<Type> &out) {
  MLIRContext *ctx = type.getContext();
  Type i8 = IntegerType::get(ctx, 8), i64 = IntegerType::get(ctx, 64);
  Type f32 = Float32Type::get(ctx);
  return llvm::TypeSwitch<Type, LogicalResult>(type)
      .Case<RankedTensorType>([&](RankedTensorType t) {
        SmallVector<int64_t> shape(t.getShape());
        Type elt = t.getElementType();
        if (isa<Float4E2M1FNType>(elt)) {
          if (shape.empty() || ShapedType::isDynamic(shape.back()) ||
              shape.back() % 2)
            return failure();
          shape.back() /= 2;
          elt = i8;
        } else if (isa<Float8E4M3FNType, Float8E8M0FNUType>(elt)) {
          elt = i8;
        }
        out.push_back(RankedTensorType::get(shape, elt));
        return success();
      })
      .Case<WindowRingType>([&](WindowRingType t) {
        out.push_back(RankedTensorType::get(
            {t.getBatch(), t.getSlots(), t.getDim()}, t.getElementType()));
        return success();
      })
      .Case<KVCacheType>([&](KVCacheType t) {
        out.push_back(RankedTensorType::get(
            {t.getBatch(), t.getCapacity(), t.getDim()}, t.getElementType()));
        return success();
      })
      .Case<CompressorStateType>([&](CompressorStateType t) {
        auto m = RankedTensorType::get(
            {t.getBatch(), t.getRows(), t.getWidth()}, f32);
        out.push_back(m); // kv_state
        out.push_back(m); // score_state
        return success();
      })
      .Case<EngramStateType>([&](EngramStateType t) {
        out.push_back(
            RankedTensorType::get({t.getBatch(), t.getLookback()}, i64));
        return success();
      })
      .Default([&](Type t) {
        out.push_back(t);
        return success();
      });
}

LogicalResult getStorageMemRefTypes(Type type, SmallVectorImpl<Type> &out) {
  if (!isa<RankedTensorType, WindowRingType, KVCacheType, CompressorStateType,
           EngramStateType>(type))
    return failure();
  SmallVector<Type> tensors;
  if (failed(getStorageTypes(type, tensors)))
    return failure();
  for (Type t : tensors) {
    auto r = cast<RankedTensorType>(t);
    out.push_back(MemRefType::get(r.getShape(), r.getElementType()));
  }
  return success();
}

StorageTypeConverter::StorageTypeConverter() {
  addConversion(
      [](Type t, SmallVectorImpl<Type> &out) -> std::optional<LogicalResult> {
        if (failed(getStorageTypes(t, out)))
          return failure();
        return success();
      });
}

FailureOr<::v4::DType> getStorageDType(Type t) {
  if (t.isBF16())
    return ::v4::DType::BF16;
  if (t.isF16())
    return ::v4::DType::F16;
  if (t.isF32())
    return ::v4::DType::F32;
  if (t.isInteger(8))
    return ::v4::DType::I8;
  if (t.isInteger(32))
    return ::v4::DType::I32;
  if (t.isInteger(64))
    return ::v4::DType::I64;
  return failure();
}

FailureOr<uint64_t> getStorageBytes(MemRefType type, int64_t tokens) {
  FailureOr<::v4::DType> dtype = getStorageDType(type.getElementType());
  if (failed(dtype))
    return failure();
  uint64_t elements = 1;
  for (int64_t d : type.getShape())
    elements *= static_cast<uint64_t>(ShapedType::isDynamic(d) ? tokens : d);
  return (elements * ::v4::dtypeBits(*dtype) + 7) / 8;
}

FailureOr<CheckpointLayout> getCheckpointLayout(RankedTensorType t) {
  SmallVector<Type> storage;
  if (failed(getStorageTypes(t, storage)))
    return failure();
  auto s = cast<RankedTensorType>(storage.front());
  CheckpointLayout layout;
  layout.shape.assign(s.getShape().begin(), s.getShape().end());
  Type e = t.getElementType();
  if (isa<Float8E4M3FNType>(e)) {
    layout.dtype = ::v4::DType::F8E4M3;
    return layout;
  }
  if (isa<Float8E8M0FNUType>(e)) {
    layout.dtype = ::v4::DType::F8E8M0;
    return layout;
  }
  FailureOr<::v4::DType> d = getStorageDType(s.getElementType());
  if (failed(d))
    return failure();
  layout.dtype = *d;
  return layout;
}

} // namespace mlir::v4
