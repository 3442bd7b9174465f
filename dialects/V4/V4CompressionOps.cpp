//===- V4CompressionOps.cpp - verifiers of the Compression op family ------===//
#include "dialects/V4/V4Ops.h"
#include "dialects/V4/V4Verification.h"

using namespace mlir;
using namespace mlir::v4;

#define GET_OP_CLASSES
#include "dialects/V4/V4CompressionOps.cpp.inc"

/// Checks that `startPos` is a [batch] i64 tensor: rank and element type under
/// `typeLabel`, the batch size under `batchLabel`.
static LogicalResult verifyStartPos(Operation *op, Value startPos,
                                    int64_t batch, StringRef typeLabel,
                                    StringRef batchLabel) {
  auto type = cast<RankedTensorType>(startPos.getType());
  if (failed(verifyRank(op, typeLabel, "startPos", type, 1)) ||
      failed(verifyElementType(op, typeLabel, "startPos", type.getElementType(),
                               {IntegerType::get(op->getContext(), 64)})))
    return failure();
  return verifyDimEq(op, batchLabel, "startPos dim 0 (batch)",
                     type.getDimSize(0), batch);
}

/// The rules of kv.compress past its projections (kv_compress_c6 to c18),
/// which kv.compress_projected shares: `batch` and `t` are dims 0 and 1 of
/// the op's token operand.
template <typename CompressOp>
static LogicalResult verifyCompressorBlocks(CompressOp self, int64_t batch,
                                            int64_t t) {
  Operation *op = self.getOperation();
  Builder b(op->getContext());
  CompressorStateType state = self.getState().getType();
  KVCacheType cache = self.getCache().getType();
  const int64_t r = state.getRatio(), c = state.getDim();
  const int64_t coff = state.getCoff();

  // kv_compress_c6: ape is [r, coff * c], f32 (bf16 accepted, upcast).
  auto apeType = cast<RankedTensorType>(self.getApe().getType());
  if (failed(verifyRank(op, "kv_compress_c6", "ape", apeType, 2)) ||
      failed(verifyElementType(op, "kv_compress_c6", "ape",
                               apeType.getElementType(),
                               {b.getF32Type(), b.getBF16Type()})) ||
      failed(verifyDimEq(op, "kv_compress_c6", "ape dim 0 (ratio)",
                         apeType.getDimSize(0), r)) ||
      failed(verifyDimEq(op, "kv_compress_c6",
                         "ape dim 1 (coff * c = " + std::to_string(coff) +
                             " * " + std::to_string(c) + ")",
                         apeType.getDimSize(1), coff * c)))
    return failure();

  // kv_compress_c7: norm is the RMSNorm weight [c], bf16 or f32.
  auto normType = cast<RankedTensorType>(self.getNorm().getType());
  if (failed(verifyRank(op, "kv_compress_c7", "norm", normType, 1)) ||
      failed(verifyElementType(op, "kv_compress_c7", "norm",
                               normType.getElementType(),
                               {b.getBF16Type(), b.getF32Type()})) ||
      failed(verifyDimEq(op, "kv_compress_c7", "norm dim 0 (c)",
                         normType.getDimSize(0), c)))
    return failure();

  // kv_compress_c8: the cache is filled by this compressor: same ratio and
  // entry width c as the state.
  if (cache.getRatio() != r || cache.getDim() != c)
    return op->emitOpError()
           << "expected cache ratio and dim (" << cache.getRatio() << ", "
           << cache.getDim() << ") to match the compressor state (" << r << ", "
           << c << ") [kv_compress_c8]";

  // kv_compress_c9: the cache holds the bf16 post-processed entries (f32
  // holds them exactly); an FP8 cache would need per-tile scales.
  if (!cache.getElementType().isBF16() && !cache.getElementType().isF32())
    return op->emitOpError() << "expected cache element type bf16 or f32, got "
                             << cache.getElementType() << " [kv_compress_c9]";

  // kv_compress_c10: x, state and cache agree on the batch.
  if (failed(verifyDimEq(op, "kv_compress_c10", "state batch (x dim 0)",
                         state.getBatch(), batch)) ||
      failed(verifyDimEq(op, "kv_compress_c10", "cache batch (state batch)",
                         cache.getBatch(), state.getBatch())))
    return failure();

  // kv_compress_c11: startPos is an i64 tensor [B].
  // kv_compress_c12: its size is the batch.
  if (failed(verifyStartPos(op, self.getStartPos(), state.getBatch(),
                            "kv_compress_c11", "kv_compress_c12")))
    return failure();

  // kv_compress_c18: the chunk's completed entries fit the cache:
  // floor((startPos + T) / r) <= capacity, and startPos >= 0.
  if (!ShapedType::isDynamic(t) && t / r > cache.getCapacity())
    return op->emitOpError() << "expected floor(T / ratio) (" << t << " / " << r
                             << " = " << t / r << ") <= cache capacity ("
                             << cache.getCapacity() << ") [kv_compress_c18]";

  // kv_compress_c13: RoPE rotates the last ropeDim of the c dims.
  const int64_t ropeDim = self.getRope().getRopeDim();
  if (ropeDim > c)
    return op->emitOpError() << "expected rope.ropeDim (" << ropeDim
                             << ") <= c (" << c << ") [kv_compress_c13]";

  // kv_compress_c14: RMSNorm epsilon is positive.
  if (!(self.getNormEps().convertToDouble() > 0.0))
    return op->emitOpError()
           << "expected normEps > 0, got "
           << self.getNormEps().convertToDouble() << " [kv_compress_c14]";

  if (!self.getRotate()) {
    // kv_compress_c15: main compressor: the c - ropeDim nope dims are FP8
    // fake-quantised in blocks of 64.
    if ((c - ropeDim) % 64 != 0)
      return op->emitOpError() << "expected c - rope.ropeDim (" << c << " - "
                               << ropeDim << " = " << c - ropeDim
                               << ") to be a multiple of 64 (FP8 fake-quant "
                                  "block) [kv_compress_c15]";
    return success();
  }
  // kv_compress_c16: the indexer compressor (rotate) exists only on CSA
  // layers, whose ratio is 4.
  if (r != 4)
    return op->emitOpError() << "expected ratio 4 for the indexer compressor "
                                "(rotate), got "
                             << r << " [kv_compress_c16]";
  // kv_compress_c17: rotate: Hadamard over c needs a power of two, FP4
  // fake-quant blocks of 32 need a multiple of 32.
  if (!isPowerOf2(c) || c % 32 != 0)
    return op->emitOpError() << "expected c (" << c
                             << ") to be a power of two and a multiple of 32 "
                                "with rotate (Hadamard, FP4 block 32) "
                                "[kv_compress_c17]";
  return success();
}

//===----------------------------------------------------------------------===//
// KVCompressOp
//===----------------------------------------------------------------------===//

LogicalResult KVCompressOp::verify() {
  Operation *op = getOperation();
  Builder b(getContext());
  CompressorStateType state = getState().getType();
  const int64_t c = state.getDim(), coff = state.getCoff();
  auto xType = cast<RankedTensorType>(getX().getType());

  // kv_compress_c1: x is the normed layer input [B, T, d], bf16 (f32 in
  // fp32 numerics).
  if (failed(verifyRank(op, "kv_compress_c1", "x", xType, 3)) ||
      failed(verifyElementType(op, "kv_compress_c1", "x",
                               xType.getElementType(),
                               {b.getBF16Type(), b.getF32Type()})))
    return failure();
  const int64_t batch = xType.getDimSize(0), d = xType.getDimSize(2);

  // kv_compress_c2: T and d are non-empty where static.
  for (int64_t i : {1, 2})
    if (!ShapedType::isDynamic(xType.getDimSize(i)) &&
        failed(verifyPositive(op, "kv_compress_c2",
                              i == 1 ? "x dim 1 (T)" : "x dim 2 (d)",
                              xType.getDimSize(i))))
      return failure();

  // kv_compress_c3: wkv and wgate are bf16 or f32 matrices (upcast to fp32).
  // kv_compress_c4: their out dim is coff * c (coff = 2 iff ratio 4).
  // kv_compress_c5: their in dim is the model width d of x.
  for (auto [name, value] :
       {std::pair<StringRef, Value>{"wkv", getWkv()}, {"wgate", getWgate()}}) {
    auto type = cast<RankedTensorType>(value.getType());
    if (failed(verifyRank(op, "kv_compress_c3", name, type, 2)) ||
        failed(verifyElementType(op, "kv_compress_c3", name,
                                 type.getElementType(),
                                 {b.getBF16Type(), b.getF32Type()})))
      return failure();
    if (failed(verifyDimEq(op, "kv_compress_c4",
                           (name + " dim 0 (coff * c = " + Twine(coff) + " * " +
                            Twine(c) + ")")
                               .str(),
                           type.getDimSize(0), coff * c)) ||
        failed(verifyDimEq(op, "kv_compress_c5",
                           (name + " dim 1 (d, x dim 2)").str(),
                           type.getDimSize(1), d)))
      return failure();
  }

  return verifyCompressorBlocks(*this, batch, xType.getDimSize(1));
}

//===----------------------------------------------------------------------===//
// KVCompressProjectedOp
//===----------------------------------------------------------------------===//

LogicalResult KVCompressProjectedOp::verify() {
  Operation *op = getOperation();
  Builder b(getContext());
  CompressorStateType state = getState().getType();
  auto kvType = cast<RankedTensorType>(getKv().getType());
  const int64_t coff = state.getCoff(), c = state.getDim();

  // kv_compress_projected_c1: kv (and score, of the same type) are the f32
  // projections [B, T, coff * c].
  if (failed(verifyRank(op, "kv_compress_projected_c1", "kv", kvType, 3)) ||
      failed(verifyElementType(op, "kv_compress_projected_c1", "kv",
                               kvType.getElementType(), {b.getF32Type()})) ||
      failed(verifyDimEq(op, "kv_compress_projected_c1",
                         "kv dim 2 (coff * c = " + std::to_string(coff) +
                             " * " + std::to_string(c) + ")",
                         kvType.getDimSize(2), coff * c)))
    return failure();
  // kv_compress_projected_c2: T is non-empty where static.
  if (!ShapedType::isDynamic(kvType.getDimSize(1)) &&
      failed(verifyPositive(op, "kv_compress_projected_c2", "kv dim 1 (T)",
                            kvType.getDimSize(1))))
    return failure();
  return verifyCompressorBlocks(*this, kvType.getDimSize(0),
                                kvType.getDimSize(1));
}

//===----------------------------------------------------------------------===//
// CSAIndexerScoresOp
//===----------------------------------------------------------------------===//

LogicalResult CSAIndexerScoresOp::verify() {
  Operation *op = getOperation();
  Builder b(getContext());
  auto qType = cast<RankedTensorType>(getQ().getType());
  auto wType = cast<RankedTensorType>(getWeights().getType());
  auto sType = cast<RankedTensorType>(getScores().getType());
  KVCacheType keys = getKeys().getType();

  // csa_indexer_scores_c1: q is bf16 (or f32) [B, T, HI, DI].
  if (failed(verifyRank(op, "csa_indexer_scores_c1", "q", qType, 4)) ||
      failed(verifyElementType(op, "csa_indexer_scores_c1", "q",
                               qType.getElementType(),
                               {b.getBF16Type(), b.getF32Type()})))
    return failure();
  ArrayRef<int64_t> qShape = qType.getShape();

  // csa_indexer_scores_c2: HI is static and > 0 (the weight scale HI^-1/2 is
  // a constant of the model).
  if (ShapedType::isDynamic(qShape[2]) || qShape[2] <= 0)
    return emitOpError() << "expected a static q dim 2 (index heads) > 0, got "
                         << dimToString(qShape[2])
                         << " [csa_indexer_scores_c2]";

  // csa_indexer_scores_c3: weights are bf16 (or f32) [B, T, HI], like q's
  // first dims.
  if (failed(verifyRank(op, "csa_indexer_scores_c3", "weights", wType, 3)) ||
      failed(verifyElementType(op, "csa_indexer_scores_c3", "weights",
                               wType.getElementType(),
                               {b.getBF16Type(), b.getF32Type()})) ||
      failed(verifyShapesCompatible(op, "csa_indexer_scores_c3", "weights",
                                    wType.getShape(), "q [B, T, HI]",
                                    qShape.take_front(3))))
    return failure();

  // csa_indexer_scores_c4: the keys come from the overlapping 4:1 indexer
  // compressor.
  if (keys.getRatio() != 4)
    return emitOpError() << "expected keys ratio 4 (CSA indexer), got "
                         << keys.getRatio() << " [csa_indexer_scores_c4]";

  // csa_indexer_scores_c5: keys have the query head dim DI.
  if (failed(verifyDimEq(op, "csa_indexer_scores_c5", "q dim 3 (DI, keys dim)",
                         qShape[3], keys.getDim())))
    return failure();

  // csa_indexer_scores_c6: DI is a power of two and a multiple of 32 (the
  // Hadamard rotation and the FP4 blocks of keys and queries).
  if (!isPowerOf2(keys.getDim()) || keys.getDim() % 32 != 0)
    return emitOpError() << "expected keys dim (" << keys.getDim()
                         << ") to be a power of two and a multiple of 32 "
                            "[csa_indexer_scores_c6]";

  // csa_indexer_scores_c7: the keys hold bf16 values (bf16 or f32 storage).
  if (!keys.getElementType().isBF16() && !keys.getElementType().isF32())
    return emitOpError() << "expected keys element type bf16 or f32, got "
                         << keys.getElementType() << " [csa_indexer_scores_c7]";

  // csa_indexer_scores_c8: keys batch is the query batch.
  if (failed(verifyDimEq(op, "csa_indexer_scores_c8", "keys batch (q dim 0)",
                         keys.getBatch(), qShape[0])))
    return failure();

  // csa_indexer_scores_c9: startPos is an i64 tensor [B].
  // csa_indexer_scores_c10: its size is the batch.
  if (failed(verifyStartPos(op, getStartPos(), keys.getBatch(),
                            "csa_indexer_scores_c9", "csa_indexer_scores_c10")))
    return failure();

  // csa_indexer_scores_c11: scores are bf16 or f32 [B, T, capacity].
  SmallVector<int64_t> expected = {qShape[0], qShape[1], keys.getCapacity()};
  if (failed(verifyRank(op, "csa_indexer_scores_c11", "scores", sType, 3)) ||
      failed(verifyElementType(op, "csa_indexer_scores_c11", "scores",
                               sType.getElementType(),
                               {b.getBF16Type(), b.getF32Type()})) ||
      failed(verifyShapesCompatible(op, "csa_indexer_scores_c11", "scores",
                                    sType.getShape(), "[B, T, capacity]",
                                    expected)))
    return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// CSATopKOp
//===----------------------------------------------------------------------===//

LogicalResult CSATopKOp::verify() {
  Operation *op = getOperation();
  Builder b(getContext());
  auto sType = cast<RankedTensorType>(getScores().getType());
  auto iType = cast<RankedTensorType>(getIndices().getType());

  // csa_topk_c1: scores are bf16 or f32 [B, T, N].
  if (failed(verifyRank(op, "csa_topk_c1", "scores", sType, 3)) ||
      failed(verifyElementType(op, "csa_topk_c1", "scores",
                               sType.getElementType(),
                               {b.getBF16Type(), b.getF32Type()})))
    return failure();

  // csa_topk_c2: startPos is an i64 tensor [B].
  // csa_topk_c3: its size is the batch.
  if (failed(verifyStartPos(op, getStartPos(), sType.getDimSize(0),
                            "csa_topk_c2", "csa_topk_c3")))
    return failure();

  // csa_topk_c4: at least one id per query.
  const int64_t k = getKAttr().getInt(), ratio = getRatioAttr().getInt();
  if (failed(verifyPositive(op, "csa_topk_c4", "k", k)))
    return failure();

  // csa_topk_c5: visibility follows a compressor's ratio, which is >= 2.
  if (ratio < 2)
    return emitOpError() << "expected ratio >= 2, got " << ratio
                         << " [csa_topk_c5]";

  // csa_topk_c6: indices are i64 [B, T, k].
  SmallVector<int64_t> expected = {sType.getDimSize(0), sType.getDimSize(1), k};
  if (failed(verifyRank(op, "csa_topk_c6", "indices", iType, 3)) ||
      failed(verifyElementType(op, "csa_topk_c6", "indices",
                               iType.getElementType(), {b.getI64Type()})) ||
      failed(verifyShapesCompatible(op, "csa_topk_c6", "indices",
                                    iType.getShape(), "[B, T, k]", expected)))
    return failure();
  return success();
}
