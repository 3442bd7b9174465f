//===- V4AttentionOps.cpp - verifiers of the Attention op family ----------===//
#include "dialects/V4/V4Ops.h"
#include "dialects/V4/V4Verification.h"

#include <cmath>

using namespace mlir;
using namespace mlir::v4;

#define GET_OP_CLASSES
#include "dialects/V4/V4AttentionOps.cpp.inc"

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

/// Checks that `type` is a ranked tensor of rank `rank` with element type
/// `elt`; `what` names the operand.
static LogicalResult verifyTensorOf(Operation *op, StringRef label,
                                    StringRef what, Type type, int64_t rank,
                                    Type elt) {
  auto tensor = cast<RankedTensorType>(type);
  if (failed(verifyRank(op, label, what, tensor, rank)))
    return failure();
  return verifyElementType(op, label, what, tensor.getElementType(), {elt});
}

/// Checks the per-sequence start positions: a [B] i64 tensor whose length is
/// compatible with `batch` (`typeLabel` for rank/dtype, `lenLabel` for B).
static LogicalResult verifyStartPos(Operation *op, StringRef typeLabel,
                                    StringRef lenLabel, Type type,
                                    int64_t batch) {
  Builder b(op->getContext());
  if (failed(
          verifyTensorOf(op, typeLabel, "startPos", type, 1, b.getI64Type())))
    return failure();
  return verifyDimEq(op, lenLabel, "startPos length (batch)",
                     cast<RankedTensorType>(type).getDimSize(0), batch);
}

/// Fails when a static dimension is not positive.
static LogicalResult verifyPositiveDim(Operation *op, StringRef label,
                                       StringRef what, int64_t dim) {
  if (ShapedType::isDynamic(dim))
    return success();
  return verifyPositive(op, label, what, dim);
}

//===----------------------------------------------------------------------===//
// RingWriteOp
//===----------------------------------------------------------------------===//

LogicalResult RingWriteOp::verify() {
  Operation *op = getOperation();
  WindowRingType ring = getRing().getType();
  auto kv = cast<RankedTensorType>(getKv().getType());
  // ring_write_c1: kv is [B, T, D].
  if (failed(verifyRank(op, "ring_write_c1", "kv", kv, 3)))
    return failure();
  // ring_write_c2: kv batch matches the ring's batch.
  if (failed(verifyDimEq(op, "ring_write_c2", "kv dim 0 (batch) = ring batch",
                         kv.getDimSize(0), ring.getBatch())))
    return failure();
  // ring_write_c3: kv width matches the ring's dim.
  if (failed(verifyDimEq(op, "ring_write_c3", "kv dim 2 (D) = ring dim",
                         kv.getDimSize(2), ring.getDim())))
    return failure();
  // ring_write_c4: kv is stored without conversion.
  if (failed(verifyElementType(op, "ring_write_c4", "kv", kv.getElementType(),
                               {ring.getElementType()})))
    return failure();
  // ring_write_c5: a chunk has at least one token.
  if (failed(verifyPositiveDim(op, "ring_write_c5", "kv dim 1 (T)",
                               kv.getDimSize(1))))
    return failure();
  // ring_write_c6: startPos is a [B] i64 tensor.
  // ring_write_c7: startPos length = ring batch.
  return verifyStartPos(op, "ring_write_c6", "ring_write_c7",
                        getStartPos().getType(), ring.getBatch());
}

//===----------------------------------------------------------------------===//
// AttnWindowIndicesOp
//===----------------------------------------------------------------------===//

LogicalResult AttnWindowIndicesOp::verify() {
  Operation *op = getOperation();
  int64_t window = getWindowAttr().getInt();
  // attn_window_indices_c1: the window holds at least the query itself.
  if (failed(verifyPositive(op, "attn_window_indices_c1", "window", window)))
    return failure();
  auto result = cast<RankedTensorType>(getResult().getType());
  // attn_window_indices_c2: the result is a [B, T, W] i64 tensor.
  if (failed(verifyTensorOf(op, "attn_window_indices_c2", "result", result, 3,
                            Builder(getContext()).getI64Type())))
    return failure();
  // attn_window_indices_c3: one entry per window slot.
  if (failed(verifyDimEq(op, "attn_window_indices_c3", "result dim 2 = window",
                         result.getDimSize(2), window)))
    return failure();
  if (result.isDynamicDim(2))
    return emitOpError() << "expected result dim 2 = window (" << window
                         << "), got ? [attn_window_indices_c3]";
  // attn_window_indices_c4: `tokens` is given exactly when T is dynamic.
  bool dynamicT = result.isDynamicDim(1);
  if (dynamicT && !getNumTokens())
    return emitOpError() << "expected a tokens operand for the dynamic result "
                            "dim 1 (T) [attn_window_indices_c4]";
  if (!dynamicT && getNumTokens())
    return emitOpError() << "expected no tokens operand with a static result "
                            "dim 1 (T = "
                         << result.getDimSize(1)
                         << ") [attn_window_indices_c4]";
  // attn_window_indices_c5: a chunk has at least one token.
  if (failed(verifyPositiveDim(op, "attn_window_indices_c5", "result dim 1 (T)",
                               result.getDimSize(1))))
    return failure();
  // attn_window_indices_c6: startPos is a [B] i64 tensor.
  // attn_window_indices_c7: startPos length = result dim 0.
  return verifyStartPos(op, "attn_window_indices_c6", "attn_window_indices_c7",
                        getStartPos().getType(), result.getDimSize(0));
}

//===----------------------------------------------------------------------===//
// AttnSparseOp
//===----------------------------------------------------------------------===//

double AttnSparseOp::getEffectiveScale() {
  if (FloatAttr scale = getScaleAttr())
    return scale.getValueAsDouble();
  return 1.0 / std::sqrt(static_cast<double>(getRing().getType().getDim()));
}

LogicalResult AttnSparseOp::verify() {
  Operation *op = getOperation();
  Builder b(getContext());
  Type bf16 = b.getBF16Type(), f32 = b.getF32Type();
  auto q = cast<RankedTensorType>(getQ().getType());
  auto kv = cast<RankedTensorType>(getKv().getType());
  WindowRingType ring = getRing().getType();

  // attn_sparse_c1: q is [B, T, H, D] bf16 (f32 in fp32 numerics); kv, the
  // ring, the cache and the result hold the same type.
  Type act = q.getElementType().isF32() ? f32 : bf16;
  if (failed(verifyTensorOf(op, "attn_sparse_c1", "q", q, 4, act)))
    return failure();
  int64_t batch = q.getDimSize(0), tokens = q.getDimSize(1);
  int64_t heads = q.getDimSize(2), dim = q.getDimSize(3);
  // attn_sparse_c2: a chunk has at least one token and at least one head.
  if (failed(verifyPositiveDim(op, "attn_sparse_c2", "q dim 1 (T)", tokens)) ||
      failed(verifyPositiveDim(op, "attn_sparse_c2", "q dim 2 (H)", heads)))
    return failure();
  // attn_sparse_c3: kv is [B, T, D] of q's type.
  if (failed(verifyTensorOf(op, "attn_sparse_c3", "kv", kv, 3, act)))
    return failure();
  // attn_sparse_c4: kv covers the same sequences and tokens as q.
  if (failed(verifyDimEq(op, "attn_sparse_c4", "kv dim 0 (B) = q dim 0",
                         kv.getDimSize(0), batch)) ||
      failed(verifyDimEq(op, "attn_sparse_c4", "kv dim 1 (T) = q dim 1",
                         kv.getDimSize(1), tokens)))
    return failure();
  // attn_sparse_c5: one shared head: kv width = query head width.
  if (failed(verifyDimEq(op, "attn_sparse_c5", "kv dim 2 (D) = q dim 3",
                         kv.getDimSize(2), dim)))
    return failure();

  // attn_sparse_c6: the ring holds the same sequences and width, in bf16
  // (f32 in fp32 numerics).
  if (failed(verifyDimEq(op, "attn_sparse_c6", "ring batch = q dim 0 (B)",
                         ring.getBatch(), batch)) ||
      failed(verifyDimEq(op, "attn_sparse_c6", "ring dim = q dim 3 (D)",
                         ring.getDim(), dim)) ||
      failed(verifyElementType(op, "attn_sparse_c6", "ring",
                               ring.getElementType(), {act})))
    return failure();
  // attn_sparse_c7: the window is the ring (positions live at p mod window).
  int64_t window = getWindowAttr().getInt();
  if (window != ring.getSlots())
    return emitOpError() << "expected window = ring slots (" << ring.getSlots()
                         << "), got " << window << " [attn_sparse_c7]";

  // attn_sparse_c8: one f32 sink logit per head.
  auto sink = cast<RankedTensorType>(getSink().getType());
  if (failed(verifyTensorOf(op, "attn_sparse_c8", "sink", sink, 1,
                            b.getF32Type())) ||
      failed(verifyDimEq(op, "attn_sparse_c8", "sink length = q dim 2 (H)",
                         sink.getDimSize(0), heads)))
    return failure();

  // attn_sparse_c9: startPos is a [B] i64 tensor.
  // attn_sparse_c10: startPos length = B.
  if (failed(verifyStartPos(op, "attn_sparse_c9", "attn_sparse_c10",
                            getStartPos().getType(), batch)))
    return failure();

  KVCacheType cache =
      getCache() ? cast<KVCacheType>(getCache().getType()) : KVCacheType();
  if (cache) {
    // attn_sparse_c11: the compressed cache holds the same sequences and
    // width as the window, in bf16 (f32 in fp32 numerics).
    if (failed(verifyDimEq(op, "attn_sparse_c11", "cache batch = q dim 0 (B)",
                           cache.getBatch(), batch)) ||
        failed(verifyDimEq(op, "attn_sparse_c11", "cache dim = q dim 3 (D)",
                           cache.getDim(), dim)) ||
        failed(verifyElementType(op, "attn_sparse_c11", "cache",
                                 cache.getElementType(), {act})))
      return failure();
  }

  if (Value indices = getTopkIndices()) {
    // attn_sparse_c12: selected indices exist only on compressed layers.
    if (!cache)
      return emitOpError() << "expected a compressed cache with topk indices "
                              "(CSA) [attn_sparse_c12]";
    // attn_sparse_c13: CSA is the ratio-4 layer (the only one with an
    // indexer, V4-SPEC 1.2).
    if (cache.getRatio() != 4)
      return emitOpError() << "expected cache ratio = 4 with topk indices "
                              "(CSA), got "
                           << cache.getRatio() << " [attn_sparse_c13]";
    auto idx = cast<RankedTensorType>(indices.getType());
    // attn_sparse_c14: indices are [B, T, K] i64.
    if (failed(verifyTensorOf(op, "attn_sparse_c14", "topkIndices", idx, 3,
                              b.getI64Type())) ||
        failed(verifyDimEq(op, "attn_sparse_c14",
                           "topkIndices dim 0 (B) = q dim 0", idx.getDimSize(0),
                           batch)) ||
        failed(verifyDimEq(op, "attn_sparse_c14",
                           "topkIndices dim 1 (T) = q dim 1", idx.getDimSize(1),
                           tokens)))
      return failure();
    // attn_sparse_c15: 1 <= K <= cache capacity (top-k over stored entries).
    int64_t k = idx.getDimSize(2);
    if (!ShapedType::isDynamic(k) && (k < 1 || k > cache.getCapacity()))
      return emitOpError() << "expected 1 <= topkIndices dim 2 (K) <= cache "
                              "capacity ("
                           << cache.getCapacity() << "), got " << k
                           << " [attn_sparse_c15]";
  } else if (cache && cache.getRatio() == 4) {
    // attn_sparse_c16: HCA (all entries) is a non-overlapping ratio; ratio 4
    // layers are CSA and need the indexer's selection (V4-SPEC 1.2).
    return emitOpError() << "expected cache ratio != 4 without topk indices "
                            "(HCA), got 4 [attn_sparse_c16]";
  }

  // attn_sparse_c17: a positive, finite softmax scale.
  if (FloatAttr scaleAttr = getScaleAttr()) {
    double scale = scaleAttr.getValueAsDouble();
    if (!(scale > 0.0) || std::isinf(scale))
      return emitOpError() << "expected scale > 0 and finite, got " << scale
                           << " [attn_sparse_c17]";
  }

  // attn_sparse_c18: the result is [B, T, H, D] of q's type, like q.
  auto result = cast<RankedTensorType>(getResult().getType());
  if (failed(verifyTensorOf(op, "attn_sparse_c18", "result", result, 4, act)) ||
      failed(verifyShapesCompatible(op, "attn_sparse_c18", "result",
                                    result.getShape(), "q", q.getShape())))
    return failure();
  return success();
}
