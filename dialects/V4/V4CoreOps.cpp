//===- V4CoreOps.cpp - verifiers of the core op family --------------------===//
#include "dialects/V4/V4Ops.h"
#include "dialects/V4/V4Verification.h"

#include "mlir/IR/Builders.h"

#include <cmath>

using namespace mlir;
using namespace mlir::v4;

#define GET_OP_CLASSES
#include "dialects/V4/V4CoreOps.cpp.inc"

//===----------------------------------------------------------------------===//
// ParameterOp
//===----------------------------------------------------------------------===//

LogicalResult ParameterOp::verify() {
  // parameter_c1: a parameter is named after its checkpoint tensor.
  if (getName().empty())
    return emitOpError() << "expected a non-empty checkpoint tensor name "
                            "[parameter_c1]";
  // parameter_c2: no zero-sized weights.
  for (int64_t d : getResult().getType().getShape())
    if (d <= 0)
      return emitOpError() << "expected every dimension of '" << getName()
                           << "' > 0, got shape "
                           << shapeToString(getResult().getType().getShape())
                           << " [parameter_c2]";
  // parameter_c3: `slice D shards N` together, D a dim of the result and
  // N >= 2.
  std::optional<int64_t> dim = getSliceDim(), shards = getShards();
  if (dim.has_value() != shards.has_value())
    return emitOpError()
           << "expected 'slice' and 'shards' together [parameter_c3]";
  if (!dim) {
    if (getSliceBlock() || getSliceBlockOf())
      return emitOpError()
             << "expected 'blocks' only on a slice [parameter_c3]";
    return success();
  }
  auto type = getResult().getType();
  if (*dim < 0 || *dim >= type.getRank() || *shards < 2)
    return emitOpError() << "expected slice of a dim in [0, " << type.getRank()
                         << ") over shards >= 2, got slice " << *dim
                         << " shards " << *shards << " [parameter_c3]";
  // parameter_c4: `blocks bl of bg`: bl, bg > 0 and bl divides bg (a
  // rank's block lies in one checkpoint block).
  std::optional<int64_t> bl = getSliceBlock(), bg = getSliceBlockOf();
  if (bl.has_value() != bg.has_value() ||
      (bl && (*bl < 1 || *bg < 1 || *bg % *bl != 0)))
    return emitOpError() << "expected 'blocks bl of bg' with bl, bg > 0 and bg "
                            "a multiple of bl [parameter_c4]";
  // parameter_c5: the packed (last) dim of an FP4 tensor is not sliced.
  if (isa<Float4E2M1FNType>(type.getElementType()) &&
      *dim == type.getRank() - 1)
    return emitOpError() << "expected no slice along the packed last dim of an "
                            "f4E2M1FN tensor [parameter_c5]";
  return success();
}

//===----------------------------------------------------------------------===//
// ParameterStackOp
//===----------------------------------------------------------------------===//

LogicalResult ParameterStackOp::verify() {
  StringRef pattern = getPattern();
  // parameter_stack_c1: exactly one `{}` placeholder.
  size_t at = pattern.find("{}");
  if (at == StringRef::npos || pattern.find("{}", at + 2) != StringRef::npos)
    return emitOpError()
           << "expected pattern '" << pattern
           << "' to contain exactly one '{}' [parameter_stack_c1]";
  // parameter_stack_c2: the leading dimension is the member count.
  ArrayRef<int64_t> shape = getResult().getType().getShape();
  int64_t count = getCountAttr().getInt();
  if (count <= 0 || shape.empty() || shape.front() != count)
    return emitOpError() << "expected result leading dimension = count ("
                         << count << "), got shape " << shapeToString(shape)
                         << " [parameter_stack_c2]";
  for (int64_t d : shape)
    if (d <= 0)
      return emitOpError() << "expected every dimension > 0, got shape "
                           << shapeToString(shape) << " [parameter_c2]";
  // parameter_stack_c3: at least one shard.
  if (std::optional<int64_t> shards = getShards(); shards && *shards < 1)
    return emitOpError() << "expected shards >= 1, got " << *shards
                         << " [parameter_stack_c3]";
  // parameter_stack_c4: `members` only with shards, which hold
  // ceil(members / shards) each.
  if (std::optional<int64_t> members = getMembers()) {
    int64_t shards = getShards().value_or(0);
    if (shards < 1 || *members < 1 || count != (*members + shards - 1) / shards)
      return emitOpError() << "expected " << shards << " shards of ceil("
                           << *members << " / " << shards
                           << ") members, got count " << count
                           << " [parameter_stack_c4]";
  }
  // parameter_stack_c5: `slice` D is a member dim (1 <= D < rank) of a
  // stack of every member (no `of`) over shards >= 2.
  if (std::optional<int64_t> dim = getSliceDim()) {
    int64_t shards = getShards().value_or(0);
    if (shards < 2 || getMembers() || *dim < 1 || *dim >= int64_t(shape.size()))
      return emitOpError() << "expected slice dim in [1, " << shape.size()
                           << ") of a stack of every member over shards >= 2"
                           << ", got slice " << *dim << " over " << shards
                           << " shards"
                           << (getMembers() ? " of some members" : "")
                           << " [parameter_stack_c5]";
    // parameter_stack_c6: a slice of FP4's packed last dim is whole bytes.
    auto type = getResult().getType();
    if (*dim == int64_t(shape.size()) - 1 && isFp4E2M1(type.getElementType()) &&
        shape.back() % 2 != 0)
      return emitOpError() << "expected an even extent of the sliced packed "
                              "FP4 dim, got "
                           << shape.back() << " [parameter_stack_c6]";
  }
  return success();
}

std::string ParameterStackOp::getMemberName(int64_t index) {
  StringRef pattern = getPattern();
  size_t at = pattern.find("{}");
  return (pattern.take_front(at) + std::to_string(index) +
          pattern.drop_front(at + 2))
      .str();
}

//===----------------------------------------------------------------------===//
// Family-local helpers
//===----------------------------------------------------------------------===//

/// Checks that `result` is `[lead..., trailing...]`: the leading dims of `x`
/// (all but the last `dropX`) followed by `trailing`.
static LogicalResult verifyLeadingThen(Operation *op, StringRef label,
                                       RankedTensorType x, int64_t dropX,
                                       ArrayRef<int64_t> trailing,
                                       RankedTensorType result) {
  SmallVector<int64_t> expected(x.getShape().drop_back(dropX));
  expected.append(trailing.begin(), trailing.end());
  return verifyShapesCompatible(op, label, "result", result.getShape(),
                                "expected", expected);
}

//===----------------------------------------------------------------------===//
// EmbeddingOp
//===----------------------------------------------------------------------===//

LogicalResult ConvertOp::verify() {
  auto input = cast<RankedTensorType>(getInput().getType());
  auto result = cast<RankedTensorType>(getResult().getType());
  Builder b(getContext());
  Type bf16 = b.getBF16Type(), f32 = b.getF32Type();
  // convert_c1: input and result are bf16 or f32 tensors of one shape.
  if (failed(verifyElementType(*this, "convert_c1", "input",
                               input.getElementType(), {bf16, f32})) ||
      failed(verifyElementType(*this, "convert_c1", "result",
                               result.getElementType(), {bf16, f32})))
    return failure();
  if (input.getShape() != result.getShape())
    return emitOpError() << "expected the result shape of the input, got "
                         << input << " -> " << result << " [convert_c1]";
  return success();
}

OpFoldResult ConvertOp::fold(FoldAdaptor) {
  return getInput().getType() == getResult().getType() ? getInput() : Value();
}

LogicalResult LastTokenOp::verify() {
  auto input = cast<RankedTensorType>(getInput().getType());
  auto result = cast<RankedTensorType>(getResult().getType());
  // last_token_c1: the input is [B, T, ...].
  if (input.getRank() < 2)
    return emitOpError() << "expected input of rank >= 2 ([B, T, ...]), got "
                         << input << " [last_token_c1]";
  // last_token_c2: the result is the input's type with T = 1.
  SmallVector<int64_t> shape(input.getShape());
  shape[1] = 1;
  auto want = RankedTensorType::get(shape, input.getElementType());
  if (result != want)
    return emitOpError() << "expected result type " << want
                         << " (the input's with T = 1), got " << result
                         << " [last_token_c2]";
  return success();
}

LogicalResult EmbeddingOp::verify() {
  Operation *op = getOperation();
  auto table = cast<RankedTensorType>(getTable().getType());
  auto ids = cast<RankedTensorType>(getIds().getType());
  auto result = cast<RankedTensorType>(getResult().getType());
  Builder b(getContext());

  // embedding_c1: the table is [V, d] of bf16 or f32.
  if (failed(verifyRank(op, "embedding_c1", "table", table, 2)) ||
      failed(verifyElementType(op, "embedding_c1", "table",
                               table.getElementType(),
                               {b.getBF16Type(), b.getF32Type()})))
    return failure();
  // embedding_c2: ids are [B, T] of i32 or i64.
  if (failed(verifyRank(op, "embedding_c2", "ids", ids, 2)) ||
      failed(verifyElementType(op, "embedding_c2", "ids", ids.getElementType(),
                               {b.getI32Type(), b.getI64Type()})))
    return failure();
  // embedding_c3: the result is [B, T, d] with the table's element type, or
  // f32 (fp32 numerics).
  if (failed(verifyShapesCompatible(
          op, "embedding_c3", "result", result.getShape(), "[B, T, d]",
          {ids.getDimSize(0), ids.getDimSize(1), table.getDimSize(1)})))
    return failure();
  if (result.getElementType() != table.getElementType() &&
      !result.getElementType().isF32())
    return emitOpError() << "expected result element type "
                         << table.getElementType()
                         << " (the table's) or 'f32', got "
                         << result.getElementType() << " [embedding_c3]";
  return success();
}

//===----------------------------------------------------------------------===//
// RMSNormOp
//===----------------------------------------------------------------------===//

LogicalResult RMSNormOp::verify() {
  Operation *op = getOperation();
  auto x = cast<RankedTensorType>(getX().getType());
  Builder b(getContext());
  SmallVector<Type> floats = {b.getBF16Type(), b.getF16Type(), b.getF32Type()};
  int64_t reduceRank = getReduceRankAttr() ? getReduceRankAttr().getInt() : 1;

  // rms_norm_c1: x holds bf16, f16 or f32 activations.
  if (failed(verifyElementType(op, "rms_norm_c1", "x", x.getElementType(),
                               floats)))
    return failure();
  // rms_norm_c2: 1 <= reduceRank <= rank(x).
  if (failed(verifyPositive(op, "rms_norm_c2", "reduceRank", reduceRank)))
    return failure();
  if (reduceRank > x.getRank())
    return emitOpError() << "expected reduceRank (" << reduceRank
                         << ") <= rank of x (" << x.getRank()
                         << ") [rms_norm_c2]";
  // rms_norm_c3: eps is positive and finite.
  double eps = getEps().convertToDouble();
  if (!(eps > 0.0) || !std::isfinite(eps))
    return emitOpError() << "expected eps > 0 and finite, got " << eps
                         << " [rms_norm_c3]";
  if (!getWeight())
    return success();
  auto w = cast<RankedTensorType>(getWeight().getType());
  // rms_norm_c4: the weight has the shape of the reduced trailing dims.
  if (failed(verifyShapesCompatible(op, "rms_norm_c4", "weight", w.getShape(),
                                    "reduced trailing dims of x",
                                    x.getShape().take_back(reduceRank))))
    return failure();
  // rms_norm_c5: the weight is bf16, f16 or f32.
  return verifyElementType(op, "rms_norm_c5", "weight", w.getElementType(),
                           floats);
}

//===----------------------------------------------------------------------===//
// RopeOp (labels start at c5: #v4.rope attribute rules come first)
//===----------------------------------------------------------------------===//

LogicalResult RopeOp::verify() {
  Operation *op = getOperation();
  auto x = cast<RankedTensorType>(getX().getType());
  auto pos = cast<RankedTensorType>(getPositions().getType());
  Builder b(getContext());

  // rope_c5: x is [..., n] (rank >= 2) of bf16, f16 or f32.
  if (failed(verifyMinRank(op, "rope_c5", "x", x, 2)) ||
      failed(
          verifyElementType(op, "rope_c5", "x", x.getElementType(),
                            {b.getBF16Type(), b.getF16Type(), b.getF32Type()})))
    return failure();
  // rope_c6: positions are i32 or i64.
  if (failed(verifyElementType(op, "rope_c6", "positions", pos.getElementType(),
                               {b.getI32Type(), b.getI64Type()})))
    return failure();
  // rope_c7: the positions' shape is a prefix of x's shape, without its last
  // dim (1 <= rank(positions) < rank(x)).
  if (pos.getRank() < 1 || pos.getRank() >= x.getRank())
    return emitOpError() << "expected positions rank in [1, " << x.getRank() - 1
                         << "] (a prefix of x shape "
                         << shapeToString(x.getShape()) << "), got rank "
                         << pos.getRank() << " [rope_c7]";
  if (failed(verifyShapesCompatible(op, "rope_c7", "positions", pos.getShape(),
                                    "x prefix",
                                    x.getShape().take_front(pos.getRank()))))
    return failure();
  // rope_c8: the rotated dims fit in the last dim (ropeDim <= n).
  int64_t n = x.getShape().back();
  int64_t ropeDim = getTable().getRopeDim();
  if (!ShapedType::isDynamic(n) && ropeDim > n)
    return emitOpError() << "expected table ropeDim (" << ropeDim
                         << ") <= last dim of x (" << n << ") [rope_c8]";
  return success();
}

//===----------------------------------------------------------------------===//
// Linear layers
//===----------------------------------------------------------------------===//

namespace {
/// Weight format of a linear layer (V4-SPEC 2.4).
enum class WeightFormat { Float, Fp8, Fp4 };
} // namespace

static WeightFormat weightFormat(Type t) {
  if (isFp8E4M3(t))
    return WeightFormat::Fp8;
  if (isFp4E2M1(t))
    return WeightFormat::Fp4;
  return WeightFormat::Float;
}

/// Labels of the scale rules shared by linear and grouped_linear.
struct ScaleLabels {
  StringRef presence; // scale present iff the weight is FP8/FP4
  StringRef type;     // scale is a rank-2 f8E8M0FNU tensor
  StringRef block;    // blockSize > 0, default without quantisation
  StringRef fp8Shape; // FP8 block scales are [ceil(N/rb), ceil(K/b)]
  StringRef rowsName; // how messages name the weight rows ("N", "G*N")
  StringRef rowBlock; // rowBlockSize > 0, only with an FP8 weight
};

/// Scale rules shared by linear and grouped_linear (V4-SPEC 2.4) for a
/// weight of `rows` x `cols`.
static LogicalResult verifyWeightScale(Operation *op, const ScaleLabels &l,
                                       WeightFormat format, Value scale,
                                       int64_t blockSize,
                                       std::optional<int64_t> rowBlockSize,
                                       int64_t rows, int64_t cols) {
  // block: blockSize > 0; without quantisation it stays at the default.
  if (failed(verifyPositive(op, l.block, "blockSize", blockSize)))
    return failure();
  // rowBlock: rowBlockSize (the weight rows of one scale row) > 0, and only
  // for FP8 block scales.
  if (rowBlockSize) {
    if (failed(verifyPositive(op, l.rowBlock, "rowBlockSize", *rowBlockSize)))
      return failure();
    if (format != WeightFormat::Fp8)
      return op->emitOpError()
             << "expected no rowBlockSize without an f8E4M3FN weight, got "
             << *rowBlockSize << " [" << l.rowBlock << "]";
  }
  if (format == WeightFormat::Float) {
    // presence: bf16/f32 weights take no scale.
    if (scale)
      return op->emitOpError()
             << "expected no scale with a bf16/f32 weight, got "
             << scale.getType() << " [" << l.presence << "]";
    if (blockSize != 128)
      return op->emitOpError()
             << "expected blockSize = 128 (default; unused without a "
                "quantised weight), got "
             << blockSize << " [" << l.block << "]";
    return success();
  }
  // presence: FP8/FP4 weights need their e8m0 block scales.
  if (!scale)
    return op->emitOpError()
           << "expected a f8E8M0FNU scale operand with a "
           << (format == WeightFormat::Fp8 ? "f8E4M3FN" : "f4E2M1FN")
           << " weight [" << l.presence << "]";
  auto s = cast<RankedTensorType>(scale.getType());
  // type: the scale is a rank-2 f8E8M0FNU tensor.
  if (failed(verifyRank(op, l.type, "scale", s, 2)))
    return failure();
  if (!isE8M0(s.getElementType()))
    return op->emitOpError() << "expected scale element type f8E8M0FNU, got "
                             << s.getElementType() << " [" << l.type << "]";
  if (format != WeightFormat::Fp8)
    return success();
  // fp8Shape: FP8 block scales are [ceil(N/rb), ceil(K/b)].
  int64_t rowBlock = rowBlockSize.value_or(blockSize);
  SmallVector<int64_t> expected = {ceilDivDim(rows, rowBlock),
                                   ceilDivDim(cols, blockSize)};
  return verifyShapesCompatible(op, l.fp8Shape, "scale", s.getShape(),
                                "[ceil(" + l.rowsName.str() + "/" +
                                    std::to_string(rowBlock) + "), ceil(K/" +
                                    std::to_string(blockSize) + ")]",
                                expected);
}

LogicalResult LinearOp::verify() {
  Operation *op = getOperation();
  auto x = cast<RankedTensorType>(getX().getType());
  auto w = cast<RankedTensorType>(getWeight().getType());
  auto result = cast<RankedTensorType>(getResult().getType());
  Builder b(getContext());
  Type bf16 = b.getBF16Type(), f32 = b.getF32Type();
  int64_t blockSize = getBlockSizeAttr() ? getBlockSizeAttr().getInt() : 128;

  // linear_c1: x is [..., K] of bf16 or f32.
  if (failed(verifyMinRank(op, "linear_c1", "x", x, 1)) ||
      failed(verifyElementType(op, "linear_c1", "x", x.getElementType(),
                               {bf16, f32})))
    return failure();
  // linear_c2: the weight is [N, K] of bf16, f32, f8E4M3FN or f4E2M1FN.
  if (failed(verifyRank(op, "linear_c2", "weight", w, 2)) ||
      failed(verifyElementType(op, "linear_c2", "weight", w.getElementType(),
                               {bf16, f32, b.getType<Float8E4M3FNType>(),
                                b.getType<Float4E2M1FNType>()})))
    return failure();
  int64_t n = w.getDimSize(0), k = w.getDimSize(1);
  // linear_c3: the weight's in features match the last dim of x.
  if (failed(verifyDimEq(op, "linear_c3", "weight dim 1 (in features, K)", k,
                         x.getShape().back())))
    return failure();
  // linear_c4: the result is [..., N] with the leading dims of x.
  if (failed(verifyLeadingThen(op, "linear_c4", x, 1, {n}, result)))
    return failure();
  WeightFormat format = weightFormat(w.getElementType());
  // linear_c5: the result is bf16 or f32 (quantised GEMMs output bf16, 2.4;
  // f32 in fp32 numerics). (linear_c6, the bf16 activation of a quantised
  // weight, is retired: fp32 numerics feed them f32.)
  if (failed(verifyElementType(op, "linear_c5", "result",
                               result.getElementType(), {bf16, f32})))
    return failure();
  // linear_c7: scale present iff the weight is FP8/FP4.
  // linear_c8: the scale is a rank-2 f8E8M0FNU tensor.
  // linear_c9: blockSize > 0, and 128 (default) for bf16/f32 weights.
  // linear_c10: FP8 block scales are [ceil(N/rb), ceil(K/b)].
  // linear_c14: rowBlockSize > 0, only with an FP8 weight.
  ScaleLabels labels = {"linear_c7",  "linear_c8", "linear_c9",
                        "linear_c10", "N",         "linear_c14"};
  if (failed(verifyWeightScale(op, labels, format, getScale(), blockSize,
                               getRowBlockSize(), n, k)))
    return failure();
  if (format != WeightFormat::Fp4)
    return success();
  // linear_c11: FP4 weights are scaled per 32 along K, K % 32 == 0.
  if (failed(verifyMultipleOf(op, "linear_c11", "weight in features K (FP4)", k,
                              32)))
    return failure();
  // linear_c12: FP4 scales are [N, K/32].
  auto s = cast<RankedTensorType>(getScale().getType());
  SmallVector<int64_t> expected = {
      n, ShapedType::isDynamic(k) ? ShapedType::kDynamic : k / 32};
  if (failed(verifyShapesCompatible(op, "linear_c12", "scale", s.getShape(),
                                    "[N, K/32]", expected)))
    return failure();
  // linear_c13: every 32-slice of K lies in one activation block.
  return verifyMultipleOf(op, "linear_c13", "blockSize (activation block, FP4)",
                          blockSize, 32);
}

LogicalResult GroupedLinearOp::verify() {
  Operation *op = getOperation();
  auto x = cast<RankedTensorType>(getX().getType());
  auto w = cast<RankedTensorType>(getWeight().getType());
  auto result = cast<RankedTensorType>(getResult().getType());
  Builder b(getContext());
  Type bf16 = b.getBF16Type(), f32 = b.getF32Type();
  int64_t blockSize = getBlockSizeAttr() ? getBlockSizeAttr().getInt() : 128;

  // grouped_linear_c1: x is [..., G, K] of bf16 or f32.
  if (failed(verifyMinRank(op, "grouped_linear_c1", "x", x, 2)) ||
      failed(verifyElementType(op, "grouped_linear_c1", "x", x.getElementType(),
                               {bf16, f32})))
    return failure();
  // grouped_linear_c2: the weight is [G*N, K] of bf16, f32 or f8E4M3FN.
  if (failed(verifyRank(op, "grouped_linear_c2", "weight", w, 2)) ||
      failed(verifyElementType(op, "grouped_linear_c2", "weight",
                               w.getElementType(),
                               {bf16, f32, b.getType<Float8E4M3FNType>()})))
    return failure();
  int64_t rows = w.getDimSize(0), k = w.getDimSize(1);
  int64_t g = x.getShape()[x.getRank() - 2];
  // grouped_linear_c3: the weight's in features match the last dim of x.
  if (failed(verifyDimEq(op, "grouped_linear_c3",
                         "weight dim 1 (in features per group, K)", k,
                         x.getShape().back())))
    return failure();
  // grouped_linear_c4: G (dim -2 of x) is positive and divides the rows.
  if (!ShapedType::isDynamic(g) &&
      failed(verifyPositive(op, "grouped_linear_c4", "groups G (x dim -2)", g)))
    return failure();
  if (!ShapedType::isDynamic(g) &&
      failed(verifyMultipleOf(
          op, "grouped_linear_c4",
          "weight rows (G*N, G = " + std::to_string(g) + ")", rows, g)))
    return failure();
  int64_t nPerGroup = ShapedType::isDynamic(g) || ShapedType::isDynamic(rows)
                          ? ShapedType::kDynamic
                          : rows / g;
  // grouped_linear_c5: the result is [..., G, N].
  if (failed(verifyLeadingThen(op, "grouped_linear_c5", x, 1, {nPerGroup},
                               result)))
    return failure();
  // grouped_linear_c6: the result is bf16 or f32.
  if (failed(verifyElementType(op, "grouped_linear_c6", "result",
                               result.getElementType(), {bf16, f32})))
    return failure();
  // grouped_linear_c7: scale present iff the weight is FP8.
  // grouped_linear_c8: the scale is a rank-2 f8E8M0FNU tensor.
  // grouped_linear_c9: blockSize > 0, and 128 (default) for bf16/f32.
  // grouped_linear_c10: FP8 scales are [ceil(G*N/rb), ceil(K/b)].
  // grouped_linear_c11: rowBlockSize > 0, only with an FP8 weight.
  ScaleLabels labels = {"grouped_linear_c7",
                        "grouped_linear_c8",
                        "grouped_linear_c9",
                        "grouped_linear_c10",
                        "G*N",
                        "grouped_linear_c11"};
  return verifyWeightScale(op, labels, weightFormat(w.getElementType()),
                           getScale(), blockSize, getRowBlockSize(), rows, k);
}

//===----------------------------------------------------------------------===//
// FakeQuantOp
//===----------------------------------------------------------------------===//

LogicalResult FakeQuantOp::verify() {
  Operation *op = getOperation();
  auto x = cast<RankedTensorType>(getX().getType());
  Builder b(getContext());

  // fake_quant_c1: x is [..., n] of bf16 (f32 in fp32 numerics).
  if (failed(verifyMinRank(op, "fake_quant_c1", "x", x, 1)) ||
      failed(verifyElementType(op, "fake_quant_c1", "x", x.getElementType(),
                               {b.getBF16Type(), b.getF32Type()})))
    return failure();
  // fake_quant_c2: blockSize > 0.
  int64_t blockSize = getBlockSizeAttr().getInt();
  if (failed(verifyPositive(op, "fake_quant_c2", "blockSize", blockSize)))
    return failure();
  int64_t n = x.getShape().back();
  // fake_quant_c3: 0 < extent <= n.
  int64_t extent = getExtentAttr() ? getExtentAttr().getInt() : n;
  if (getExtentAttr()) {
    if (failed(verifyPositive(op, "fake_quant_c3", "extent", extent)))
      return failure();
    if (!ShapedType::isDynamic(n) && extent > n)
      return emitOpError() << "expected extent (" << extent
                           << ") <= last dim of x (" << n
                           << ") [fake_quant_c3]";
  }
  // fake_quant_c4: the quantised range is whole blocks.
  return verifyMultipleOf(op, "fake_quant_c4",
                          getExtentAttr() ? "extent" : "last dim of x (extent)",
                          extent, blockSize);
}

//===----------------------------------------------------------------------===//
// HadamardOp
//===----------------------------------------------------------------------===//

LogicalResult HadamardOp::verify() {
  Operation *op = getOperation();
  auto x = cast<RankedTensorType>(getX().getType());
  Builder b(getContext());

  // hadamard_c1: x is [..., n] of bf16 (f32 in fp32 numerics).
  if (failed(verifyMinRank(op, "hadamard_c1", "x", x, 1)) ||
      failed(verifyElementType(op, "hadamard_c1", "x", x.getElementType(),
                               {b.getBF16Type(), b.getF32Type()})))
    return failure();
  // hadamard_c2: n is a static power of two (H_n is Sylvester).
  int64_t n = x.getShape().back();
  if (ShapedType::isDynamic(n) || !isPowerOf2(n))
    return emitOpError() << "expected last dim of x to be a static power of "
                            "two, got "
                         << dimToString(n) << " [hadamard_c2]";
  return success();
}
