//===- V4MoEOps.cpp - verifiers of the MoE op family ----------------===//
#include "dialects/V4/V4Ops.h"
#include "dialects/V4/V4Verification.h"

#include <cmath>

using namespace mlir;
using namespace mlir::v4;

#define GET_OP_CLASSES
#include "dialects/V4/V4MoEOps.cpp.inc"

//===----------------------------------------------------------------------===//
// Family-local helpers
//===----------------------------------------------------------------------===//

/// Rule labels are written "[label]" in this file so that
/// scripts/check_verifier_coverage.py finds them; the shared helpers of
/// V4Verification.h take the bare label and add the brackets themselves.
static StringRef rule(StringRef bracketed) {
  return bracketed.drop_front().drop_back();
}

static RankedTensorType rankedType(Value v) {
  return cast<RankedTensorType>(v.getType());
}

/// `leading` followed by `last`: the shape [..., last].
static SmallVector<int64_t> withLastDim(ArrayRef<int64_t> leading,
                                        int64_t last) {
  SmallVector<int64_t> shape(leading);
  shape.push_back(last);
  return shape;
}

/// Checks that `type` is [..., last] with the given leading dims (up to
/// dynamic dims) and element type `elementType`. `expectedWhat` describes the
/// expected shape in the message, e.g. "x leading dims + [k]".
static LogicalResult verifyTokenTensor(Operation *op, StringRef label,
                                       StringRef what, RankedTensorType type,
                                       ArrayRef<int64_t> leading, int64_t last,
                                       StringRef expectedWhat,
                                       Type elementType) {
  if (failed(verifyShapesCompatible(op, label, what, type.getShape(),
                                    expectedWhat, withLastDim(leading, last))))
    return failure();
  return verifyElementType(op, label, what, type.getElementType(),
                           {elementType});
}

/// Checks an attribute that must be a finite positive number.
static LogicalResult verifyPositiveFinite(Operation *op, StringRef label,
                                          StringRef what, double value) {
  if (std::isfinite(value) && value > 0)
    return success();
  return op->emitOpError() << "expected " << what
                           << " to be finite and > 0, got " << value << " ["
                           << label << "]";
}

namespace {
/// Storage format of an expert's weights.
enum class WeightFormat { FP4, FP8, BF16 };

/// Label set for the scale rules of one op.
struct ScaleLabels {
  StringRef presence, elementType, shape;
};
} // namespace

static WeightFormat weightFormat(Type t) {
  if (isFp4E2M1(t))
    return WeightFormat::FP4;
  if (isFp8E4M3(t))
    return WeightFormat::FP8;
  return WeightFormat::BF16;
}

/// Checks the optional block scale of weight `name` of shape
/// [lead..., out, in]: none for bf16; f8E8M0FNU [lead..., out, in/32] for FP4;
/// f8E8M0FNU [lead..., ceil(out/128), ceil(in/128)] for FP8.
static LogicalResult verifyWeightScale(Operation *op, const ScaleLabels &l,
                                       StringRef name, RankedTensorType weight,
                                       Value scale) {
  WeightFormat format = weightFormat(weight.getElementType());
  bool quantised = format != WeightFormat::BF16;
  if (quantised != static_cast<bool>(scale)) {
    InFlightDiagnostic diag = op->emitOpError();
    if (quantised)
      diag << "expected a scale for " << weight.getElementType() << " weight "
           << name << ", got none";
    else
      diag << "expected no scale for " << weight.getElementType() << " weight "
           << name << ", got one";
    diag << " [" << l.presence << "]";
    return diag;
  }
  if (!scale)
    return success();
  RankedTensorType scaleType = rankedType(scale);
  std::string scaleName = (name + "Scale").str();
  if (failed(verifyElementType(op, l.elementType, scaleName,
                               scaleType.getElementType(),
                               {Float8E8M0FNUType::get(op->getContext())})))
    return failure();
  ArrayRef<int64_t> shape = weight.getShape();
  SmallVector<int64_t> expected(shape.drop_back(2));
  int64_t out = shape[shape.size() - 2], in = shape.back();
  if (format == WeightFormat::FP4) {
    expected.push_back(out);
    expected.push_back(ShapedType::isDynamic(in) ? in : in / 32);
  } else {
    expected.push_back(ceilDivDim(out, 128));
    expected.push_back(ceilDivDim(in, 128));
  }
  std::string expectedWhat =
      name.str() + " " + shapeToString(shape) +
      (format == WeightFormat::FP4 ? " per-32" : " 128x128 block");
  return verifyShapesCompatible(op, l.shape, scaleName, scaleType.getShape(),
                                expectedWhat, expected);
}

//===----------------------------------------------------------------------===//
// Gates
//===----------------------------------------------------------------------===//

/// Shared checks of both gates: x [..., d] bf16/f32, weight [E, d] bf16/f32.
/// Returns E (possibly dynamic) through `numExperts`.
static LogicalResult
verifyGateInputs(Operation *op, StringRef xLabel, StringRef weightShapeLabel,
                 StringRef weightTypeLabel, RankedTensorType x,
                 RankedTensorType weight, int64_t &numExperts) {
  Builder b(op->getContext());
  if (failed(verifyMinRank(op, xLabel, "x", x, 1)) ||
      failed(verifyElementType(op, xLabel, "x", x.getElementType(),
                               {b.getBF16Type(), b.getF32Type()})))
    return failure();
  if (failed(verifyRank(op, weightShapeLabel, "weight", weight, 2)) ||
      failed(verifyDimEq(op, weightShapeLabel, "weight dim 1 (x last dim d)",
                         weight.getDimSize(1), x.getShape().back())))
    return failure();
  numExperts = weight.getDimSize(0);
  if (!ShapedType::isDynamic(numExperts) &&
      failed(verifyPositive(op, weightShapeLabel, "weight dim 0 (numExperts)",
                            numExperts)))
    return failure();
  return verifyElementType(op, weightTypeLabel, "weight",
                           weight.getElementType(),
                           {b.getBF16Type(), b.getF32Type()});
}

LogicalResult MoEGateOp::verify() {
  Operation *op = getOperation();
  RankedTensorType x = rankedType(getX());
  int64_t numExperts;
  // moe_gate_c1: x is [..., d] bf16 or f32.
  // moe_gate_c3: weight is [E, d], E > 0, d = x last dim.
  // moe_gate_c4: weight element type is bf16 or f32.
  if (failed(verifyGateInputs(op, rule("[moe_gate_c1]"), rule("[moe_gate_c3]"),
                              rule("[moe_gate_c4]"), x, rankedType(getWeight()),
                              numExperts)))
    return failure();
  // moe_gate_c2: 1 <= topK <= numExperts.
  int64_t topK = getTopK();
  if (topK < 1)
    return emitOpError() << "expected topK >= 1, got " << topK
                         << " [moe_gate_c2]";
  if (!ShapedType::isDynamic(numExperts) && topK > numExperts)
    return emitOpError() << "expected topK (" << topK << ") <= numExperts ("
                         << numExperts << ") [moe_gate_c2]";
  // moe_gate_c5: the optional bias is [E] f32.
  if (Value bias = getBias()) {
    RankedTensorType biasType = rankedType(bias);
    if (failed(verifyRank(op, rule("[moe_gate_c5]"), "bias", biasType, 1)) ||
        failed(verifyDimEq(op, rule("[moe_gate_c5]"), "bias dim 0 (numExperts)",
                           biasType.getDimSize(0), numExperts)) ||
        failed(verifyElementType(op, rule("[moe_gate_c5]"), "bias",
                                 biasType.getElementType(),
                                 {Float32Type::get(getContext())})))
      return failure();
  }
  // moe_gate_c6: routeScale is finite and > 0.
  if (failed(verifyPositiveFinite(op, rule("[moe_gate_c6]"), "routeScale",
                                  getRouteScale().convertToDouble())))
    return failure();
  ArrayRef<int64_t> leading = x.getShape().drop_back();
  // moe_gate_c7: routingWeights is [..., topK] f32 over x's leading dims.
  if (failed(verifyTokenTensor(op, rule("[moe_gate_c7]"), "routingWeights",
                               rankedType(getRoutingWeights()), leading, topK,
                               "x leading dims + [topK]",
                               Float32Type::get(getContext()))))
    return failure();
  // moe_gate_c8: expertIndices is [..., topK] i64 over x's leading dims.
  return verifyTokenTensor(op, rule("[moe_gate_c8]"), "expertIndices",
                           rankedType(getExpertIndices()), leading, topK,
                           "x leading dims + [topK]",
                           IntegerType::get(getContext(), 64));
}

LogicalResult MoEHashGateOp::verify() {
  Operation *op = getOperation();
  Builder b(getContext());
  RankedTensorType x = rankedType(getX());
  int64_t numExperts;
  // moe_hash_gate_c1: x is [..., d] bf16 or f32.
  // moe_hash_gate_c2: weight is [E, d], E > 0, d = x last dim.
  // moe_hash_gate_c3: weight element type is bf16 or f32.
  if (failed(verifyGateInputs(
          op, rule("[moe_hash_gate_c1]"), rule("[moe_hash_gate_c2]"),
          rule("[moe_hash_gate_c3]"), x, rankedType(getWeight()), numExperts)))
    return failure();
  ArrayRef<int64_t> leading = x.getShape().drop_back();
  // moe_hash_gate_c4: ids has the leading dims of x.
  RankedTensorType ids = rankedType(getIds());
  if (failed(verifyShapesCompatible(op, rule("[moe_hash_gate_c4]"), "ids",
                                    ids.getShape(), "x leading dims", leading)))
    return failure();
  // moe_hash_gate_c5: ids element type is i32 or i64.
  if (failed(verifyElementType(op, rule("[moe_hash_gate_c5]"), "ids",
                               ids.getElementType(),
                               {b.getI32Type(), b.getI64Type()})))
    return failure();
  // moe_hash_gate_c6: tid2eid is [V, k] with V > 0, k > 0.
  RankedTensorType table = rankedType(getTid2eid());
  if (failed(verifyRank(op, rule("[moe_hash_gate_c6]"), "tid2eid", table, 2)))
    return failure();
  for (auto [dim, what] :
       {std::pair<int64_t, StringRef>{0, "tid2eid dim 0 (V)"},
        {1, "tid2eid dim 1 (k)"}})
    if (!table.isDynamicDim(dim) &&
        failed(verifyPositive(op, rule("[moe_hash_gate_c6]"), what,
                              table.getDimSize(dim))))
      return failure();
  // moe_hash_gate_c7: tid2eid element type is i32 or i64.
  if (failed(verifyElementType(op, rule("[moe_hash_gate_c7]"), "tid2eid",
                               table.getElementType(),
                               {b.getI32Type(), b.getI64Type()})))
    return failure();
  // moe_hash_gate_c8: k <= numExperts.
  int64_t k = table.getDimSize(1);
  if (!ShapedType::isDynamic(k) && !ShapedType::isDynamic(numExperts) &&
      k > numExperts)
    return emitOpError() << "expected tid2eid dim 1 (k = " << k
                         << ") <= numExperts (" << numExperts
                         << ") [moe_hash_gate_c8]";
  // moe_hash_gate_c9: routeScale is finite and > 0.
  if (failed(verifyPositiveFinite(op, rule("[moe_hash_gate_c9]"), "routeScale",
                                  getRouteScale().convertToDouble())))
    return failure();
  // moe_hash_gate_c10: routingWeights is [..., k] f32 over x's leading dims.
  if (failed(verifyTokenTensor(op, rule("[moe_hash_gate_c10]"),
                               "routingWeights",
                               rankedType(getRoutingWeights()), leading, k,
                               "x leading dims + [k]", b.getF32Type())))
    return failure();
  // moe_hash_gate_c11: expertIndices is [..., k] i64 over x's leading dims.
  return verifyTokenTensor(op, rule("[moe_hash_gate_c11]"), "expertIndices",
                           rankedType(getExpertIndices()), leading, k,
                           "x leading dims + [k]", b.getI64Type());
}

//===----------------------------------------------------------------------===//
// Experts
//===----------------------------------------------------------------------===//

/// Checks an optional swigluLimit: absent (no clamp) or finite and > 0.
static LogicalResult verifySwigluLimit(Operation *op, StringRef label,
                                       std::optional<APFloat> limit) {
  if (!limit)
    return success();
  return verifyPositiveFinite(op, label, "swigluLimit",
                              limit->convertToDouble());
}

LogicalResult MoEExpertsOp::verify() {
  Operation *op = getOperation();
  Builder b(getContext());
  RankedTensorType x = rankedType(getX());
  // moe_experts_c1: x is [..., d] bf16 (f32 in fp32 numerics).
  if (failed(verifyMinRank(op, rule("[moe_experts_c1]"), "x", x, 1)) ||
      failed(verifyElementType(op, rule("[moe_experts_c1]"), "x",
                               x.getElementType(),
                               {b.getBF16Type(), b.getF32Type()})))
    return failure();
  ArrayRef<int64_t> leading = x.getShape().drop_back();
  int64_t d = x.getShape().back();
  // moe_experts_c2: routingWeights is [..., k] f32 over x's leading dims.
  RankedTensorType weights = rankedType(getRoutingWeights());
  if (failed(verifyMinRank(op, rule("[moe_experts_c2]"), "routingWeights",
                           weights, 1)))
    return failure();
  int64_t k = weights.getShape().back();
  if (failed(verifyTokenTensor(op, rule("[moe_experts_c2]"), "routingWeights",
                               weights, leading, k, "x leading dims + [k]",
                               b.getF32Type())))
    return failure();
  // moe_experts_c3: expertIndices has the shape of routingWeights and is i64.
  RankedTensorType indices = rankedType(getExpertIndices());
  if (failed(verifyShapesCompatible(op, rule("[moe_experts_c3]"),
                                    "expertIndices", indices.getShape(),
                                    "routingWeights", weights.getShape())) ||
      failed(verifyElementType(op, rule("[moe_experts_c3]"), "expertIndices",
                               indices.getElementType(), {b.getI64Type()})))
    return failure();
  // moe_experts_c4: w1, w3, w2 are rank 3 and share one element type, which
  // is f4E2M1FN, f8E4M3FN or bf16.
  RankedTensorType w1 = rankedType(getW1()), w3 = rankedType(getW3()),
                   w2 = rankedType(getW2());
  for (auto [name, w] : {std::pair<StringRef, RankedTensorType>{"w1", w1},
                         {"w3", w3},
                         {"w2", w2}})
    if (failed(verifyRank(op, rule("[moe_experts_c4]"), name, w, 3)))
      return failure();
  Type wType = w1.getElementType();
  if (failed(verifyElementType(op, rule("[moe_experts_c4]"), "w1", wType,
                               {Float4E2M1FNType::get(getContext()),
                                Float8E4M3FNType::get(getContext()),
                                b.getBF16Type()})))
    return failure();
  for (auto [name, w] :
       {std::pair<StringRef, RankedTensorType>{"w3", w3}, {"w2", w2}})
    if (w.getElementType() != wType)
      return emitOpError() << "expected " << name << " element type " << wType
                           << " (the type of w1), got " << w.getElementType()
                           << " [moe_experts_c4]";
  // moe_experts_c5: w1, w3, w2 have the same number of experts E > 0.
  int64_t numExperts = w1.getDimSize(0);
  if (!ShapedType::isDynamic(numExperts) &&
      failed(verifyPositive(op, rule("[moe_experts_c5]"),
                            "w1 dim 0 (numExperts)", numExperts)))
    return failure();
  if (failed(verifyDimEq(op, rule("[moe_experts_c5]"), "w3 dim 0 (numExperts)",
                         w3.getDimSize(0), numExperts)) ||
      failed(verifyDimEq(op, rule("[moe_experts_c5]"), "w2 dim 0 (numExperts)",
                         w2.getDimSize(0), numExperts)))
    return failure();
  if (ShapedType::isDynamic(numExperts))
    numExperts = ShapedType::isDynamic(w3.getDimSize(0)) ? w2.getDimSize(0)
                                                         : w3.getDimSize(0);
  // moe_experts_c6: w1 and w3 are [E, I, d] with d = x last dim.
  int64_t inter = w1.getDimSize(1);
  if (failed(verifyDimEq(op, rule("[moe_experts_c6]"), "w1 dim 2 (d)",
                         w1.getDimSize(2), d)) ||
      failed(verifyShapesCompatible(op, rule("[moe_experts_c6]"), "w3",
                                    w3.getShape(), "w1", w1.getShape())))
    return failure();
  if (ShapedType::isDynamic(inter))
    inter = w3.getDimSize(1);
  // moe_experts_c7: w2 is [E, d, I].
  if (failed(verifyDimEq(op, rule("[moe_experts_c7]"), "w2 dim 1 (d)",
                         w2.getDimSize(1), d)) ||
      failed(verifyDimEq(op, rule("[moe_experts_c7]"), "w2 dim 2 (I)",
                         w2.getDimSize(2), inter)))
    return failure();
  // moe_experts_c8: 1 <= k <= numExperts (an expert-parallel shard holds
  // fewer experts than a token may be routed to).
  if (!ShapedType::isDynamic(k) &&
      (k < 1 ||
       (!getEpRank() && !ShapedType::isDynamic(numExperts) && k > numExperts)))
    return emitOpError() << "expected 1 <= k (" << k << ") <= numExperts ("
                         << dimToString(numExperts) << ") [moe_experts_c8]";
  // moe_experts_c9: FP4 weights have K (d for w1/w3, I for w2) a multiple of
  // the 32-element scale block.
  if (isFp4E2M1(wType)) {
    if (failed(verifyMultipleOf(op, rule("[moe_experts_c9]"),
                                "FP4 w1/w3 dim 2 (d)", w1.getDimSize(2), 32)) ||
        failed(verifyMultipleOf(op, rule("[moe_experts_c9]"),
                                "FP4 w2 dim 2 (I)", w2.getDimSize(2), 32)))
      return failure();
  }
  // moe_experts_c10: FP4/FP8 weights have a scale, bf16 weights none.
  // moe_experts_c11: scales are f8E8M0FNU.
  // moe_experts_c12: scales are [E, out, in/32] (FP4) or
  //                  [E, ceil(out/128), ceil(in/128)] (FP8).
  ScaleLabels labels{rule("[moe_experts_c10]"), rule("[moe_experts_c11]"),
                     rule("[moe_experts_c12]")};
  if (failed(verifyWeightScale(op, labels, "w1", w1, getW1Scale())) ||
      failed(verifyWeightScale(op, labels, "w3", w3, getW3Scale())) ||
      failed(verifyWeightScale(op, labels, "w2", w2, getW2Scale())))
    return failure();
  // moe_experts_c13: swigluLimit is absent (no clamp) or finite and > 0.
  if (failed(
          verifySwigluLimit(op, rule("[moe_experts_c13]"), getSwigluLimit())))
    return failure();
  // moe_experts_c15: epRank is one i64.
  if (Value r = getEpRank()) {
    auto type = rankedType(r);
    if (type.getShape() != ArrayRef<int64_t>{1} ||
        !type.getElementType().isInteger(64))
      return emitOpError() << "expected epRank tensor<1xi64>, got " << type
                           << " [moe_experts_c15]";
  }
  // moe_experts_c14: the result is [..., k, d] (x's leading dims) with x's
  // element type or f32 (each slot's unrounded w2 sum: a tensor-parallel
  // rank's partial output, v4-partition).
  SmallVector<int64_t> perSlot(leading);
  perSlot.push_back(k);
  auto result = rankedType(getResult());
  return verifyTokenTensor(op, rule("[moe_experts_c14]"), "result", result,
                           perSlot, d, "x leading dims + [k, d]",
                           result.getElementType().isF32()
                               ? result.getElementType()
                               : x.getElementType());
}

LogicalResult MoESharedExpertOp::verify() {
  Operation *op = getOperation();
  Builder b(getContext());
  RankedTensorType x = rankedType(getX());
  // moe_shared_expert_c1: x is [..., d] bf16 (f32 in fp32 numerics).
  if (failed(verifyMinRank(op, rule("[moe_shared_expert_c1]"), "x", x, 1)) ||
      failed(verifyElementType(op, rule("[moe_shared_expert_c1]"), "x",
                               x.getElementType(),
                               {b.getBF16Type(), b.getF32Type()})))
    return failure();
  ArrayRef<int64_t> leading = x.getShape().drop_back();
  int64_t d = x.getShape().back();
  // moe_shared_expert_c2: w1, w3, w2 are rank 2 and share one element type,
  // which is f8E4M3FN or bf16.
  RankedTensorType w1 = rankedType(getW1()), w3 = rankedType(getW3()),
                   w2 = rankedType(getW2());
  for (auto [name, w] : {std::pair<StringRef, RankedTensorType>{"w1", w1},
                         {"w3", w3},
                         {"w2", w2}})
    if (failed(verifyRank(op, rule("[moe_shared_expert_c2]"), name, w, 2)))
      return failure();
  Type wType = w1.getElementType();
  if (failed(verifyElementType(
          op, rule("[moe_shared_expert_c2]"), "w1", wType,
          {Float8E4M3FNType::get(getContext()), b.getBF16Type()})))
    return failure();
  for (auto [name, w] :
       {std::pair<StringRef, RankedTensorType>{"w3", w3}, {"w2", w2}})
    if (w.getElementType() != wType)
      return emitOpError() << "expected " << name << " element type " << wType
                           << " (the type of w1), got " << w.getElementType()
                           << " [moe_shared_expert_c2]";
  // moe_shared_expert_c3: w1 and w3 are [I, d] with d = x last dim.
  if (failed(verifyDimEq(op, rule("[moe_shared_expert_c3]"), "w1 dim 1 (d)",
                         w1.getDimSize(1), d)) ||
      failed(verifyShapesCompatible(op, rule("[moe_shared_expert_c3]"), "w3",
                                    w3.getShape(), "w1", w1.getShape())))
    return failure();
  int64_t inter = ShapedType::isDynamic(w1.getDimSize(0)) ? w3.getDimSize(0)
                                                          : w1.getDimSize(0);
  // moe_shared_expert_c4: w2 is [d, I].
  if (failed(verifyDimEq(op, rule("[moe_shared_expert_c4]"), "w2 dim 0 (d)",
                         w2.getDimSize(0), d)) ||
      failed(verifyDimEq(op, rule("[moe_shared_expert_c4]"), "w2 dim 1 (I)",
                         w2.getDimSize(1), inter)))
    return failure();
  // moe_shared_expert_c5: FP8 weights have a scale, bf16 weights none.
  // moe_shared_expert_c6: scales are f8E8M0FNU.
  // moe_shared_expert_c7: scales are [ceil(out/128), ceil(in/128)].
  ScaleLabels labels{rule("[moe_shared_expert_c5]"),
                     rule("[moe_shared_expert_c6]"),
                     rule("[moe_shared_expert_c7]")};
  if (failed(verifyWeightScale(op, labels, "w1", w1, getW1Scale())) ||
      failed(verifyWeightScale(op, labels, "w3", w3, getW3Scale())) ||
      failed(verifyWeightScale(op, labels, "w2", w2, getW2Scale())))
    return failure();
  // moe_shared_expert_c8: swigluLimit is absent (no clamp) or finite and > 0.
  if (failed(verifySwigluLimit(op, rule("[moe_shared_expert_c8]"),
                               getSwigluLimit())))
    return failure();
  // moe_shared_expert_c9: the result is [..., d] with the shape of x, of
  // x's type (bf16, f32 in fp32 numerics) or f32 (the unrounded sum: a
  // tensor-parallel rank's partial output, v4-partition).
  auto result = rankedType(getResult());
  return verifyTokenTensor(
      op, rule("[moe_shared_expert_c9]"), "result", result, leading, d, "x",
      result.getElementType().isF32() ? result.getElementType()
                                      : x.getElementType());
}

//===----------------------------------------------------------------------===//
// Combine
//===----------------------------------------------------------------------===//

LogicalResult MoECombineOp::verify() {
  Operation *op = getOperation();
  Builder b(getContext());
  RankedTensorType routed = rankedType(getRouted());
  RankedTensorType shared = rankedType(getShared());
  // moe_combine_c1: routed is [..., k, d] bf16 (f32 in fp32 numerics): the
  // per-slot expert outputs.
  if (failed(
          verifyMinRank(op, rule("[moe_combine_c1]"), "routed", routed, 2)) ||
      failed(verifyElementType(op, rule("[moe_combine_c1]"), "routed",
                               routed.getElementType(),
                               {b.getBF16Type(), b.getF32Type()})))
    return failure();
  // routed without its slot dim.
  SmallVector<int64_t> summed(routed.getShape().drop_back(2));
  summed.push_back(routed.getShape().back());
  // moe_combine_c2: shared is bf16 (f32 in fp32 numerics).
  if (failed(verifyElementType(op, rule("[moe_combine_c2]"), "shared",
                               shared.getElementType(),
                               {b.getBF16Type(), b.getF32Type()})))
    return failure();
  // moe_combine_c3: shared has the shape of routed without the slot dim.
  if (failed(verifyShapesCompatible(op, rule("[moe_combine_c3]"), "shared",
                                    shared.getShape(), "routed without k",
                                    summed)))
    return failure();
  // moe_combine_c4: the result is bf16 (f32 in fp32 numerics) with the
  // shape of shared.
  RankedTensorType result = rankedType(getResult());
  if (failed(verifyShapesCompatible(op, rule("[moe_combine_c4]"), "result",
                                    result.getShape(), "shared",
                                    shared.getShape())))
    return failure();
  return verifyElementType(op, rule("[moe_combine_c4]"), "result",
                           result.getElementType(),
                           {b.getBF16Type(), b.getF32Type()});
}

//===----------------------------------------------------------------------===//
// Dispatch to the experts' ranks and back
//===----------------------------------------------------------------------===//

/// `first` (the world), then `middle`, then `last...`.
static SmallVector<int64_t> blockShape(int64_t first, ArrayRef<int64_t> middle,
                                       ArrayRef<int64_t> last) {
  SmallVector<int64_t> shape{first};
  llvm::append_range(shape, middle);
  llvm::append_range(shape, last);
  return shape;
}

/// c1 of dispatch and undispatch: a world and experts per rank >= 1.
static LogicalResult verifyRanksOfExperts(Operation *op, StringRef label,
                                          int64_t world, int64_t perRank) {
  if (failed(verifyPositive(op, label, "world", world)))
    return failure();
  return verifyPositive(op, label, "experts (per rank)", perRank);
}

LogicalResult MoEDispatchOp::verify() {
  Operation *op = getOperation();
  Builder b(getContext());
  int64_t world = getWorldSize();
  if (failed(verifyRanksOfExperts(op, rule("[moe_dispatch_c1]"), world,
                                  getExpertsPerRank())))
    return failure();
  // moe_dispatch_c2: x [..., T, d] bf16 or f32; routingWeights [..., T, k]
  // f32 and expertIndices [..., T, k] i64 over x's leading dims, k static.
  RankedTensorType x = rankedType(getX());
  if (failed(verifyMinRank(op, rule("[moe_dispatch_c2]"), "x", x, 2)) ||
      failed(verifyElementType(op, rule("[moe_dispatch_c2]"), "x",
                               x.getElementType(),
                               {b.getBF16Type(), b.getF32Type()})))
    return failure();
  ArrayRef<int64_t> leading = x.getShape().drop_back();
  RankedTensorType weights = rankedType(getRoutingWeights());
  if (failed(verifyMinRank(op, rule("[moe_dispatch_c2]"), "routingWeights",
                           weights, 1)))
    return failure();
  int64_t k = weights.getShape().back();
  if (ShapedType::isDynamic(k))
    return emitOpError() << "expected a static k (routingWeights' last dim) "
                            "[moe_dispatch_c2]";
  if (failed(verifyTokenTensor(op, rule("[moe_dispatch_c2]"), "routingWeights",
                               weights, leading, k, "x leading dims + [k]",
                               b.getF32Type())) ||
      failed(verifyTokenTensor(op, rule("[moe_dispatch_c2]"), "expertIndices",
                               rankedType(getExpertIndices()), leading, k,
                               "x leading dims + [k]", b.getI64Type())))
    return failure();
  // moe_dispatch_c3: counts [world] i64.
  if (failed(verifyShape(op, rule("[moe_dispatch_c3]"), "counts",
                         rankedType(getCounts()), {world}, "[world]")) ||
      failed(verifyElementType(op, rule("[moe_dispatch_c3]"), "counts",
                               rankedType(getCounts()).getElementType(),
                               {b.getI64Type()})))
    return failure();
  // moe_dispatch_c4: rows [world, ..., k, d] of x's element type, and
  // rowWeights / rowIndices [world, ..., k, 1] f32 / i64.
  int64_t d = x.getShape().back();
  for (auto [what, v, last, elt] :
       {std::tuple<StringRef, Value, int64_t, Type>{"rows", getRows(), d,
                                                    x.getElementType()},
        {"rowWeights", getRowWeights(), 1, b.getF32Type()},
        {"rowIndices", getRowIndices(), 1, b.getI64Type()}}) {
    RankedTensorType t = rankedType(v);
    if (failed(verifyShape(op, rule("[moe_dispatch_c4]"), what, t,
                           blockShape(world, leading, {k, last}),
                           "[world, x leading dims, k, row]")) ||
        failed(verifyElementType(op, rule("[moe_dispatch_c4]"), what,
                                 t.getElementType(), {elt})))
      return failure();
  }
  return success();
}

LogicalResult MoEUndispatchOp::verify() {
  Operation *op = getOperation();
  Builder b(getContext());
  int64_t world = getWorldSize();
  if (failed(verifyRanksOfExperts(op, rule("[moe_undispatch_c1]"), world,
                                  getExpertsPerRank())))
    return failure();
  // moe_undispatch_c2: expertIndices [..., T, k] i64, k static.
  RankedTensorType indices = rankedType(getExpertIndices());
  if (failed(verifyMinRank(op, rule("[moe_undispatch_c2]"), "expertIndices",
                           indices, 2)) ||
      failed(verifyElementType(op, rule("[moe_undispatch_c2]"), "expertIndices",
                               indices.getElementType(), {b.getI64Type()})))
    return failure();
  if (ShapedType::isDynamic(indices.getShape().back()))
    return emitOpError() << "expected a static k (expertIndices' last dim) "
                            "[moe_undispatch_c2]";
  // moe_undispatch_c3: y [world, ..., k, 1, d] bf16 or f32.
  RankedTensorType y = rankedType(getY());
  if (failed(verifyMinRank(op, rule("[moe_undispatch_c3]"), "y", y, 4)) ||
      failed(verifyElementType(op, rule("[moe_undispatch_c3]"), "y",
                               y.getElementType(),
                               {b.getBF16Type(), b.getF32Type()})))
    return failure();
  int64_t d = y.getShape().back();
  if (failed(verifyShape(op, rule("[moe_undispatch_c3]"), "y", y,
                         blockShape(world, indices.getShape(), {1, d}),
                         "[world, expertIndices dims, 1, d]")))
    return failure();
  // moe_undispatch_c4: result [..., k, d] of y's element type.
  RankedTensorType result = rankedType(getResult());
  if (failed(verifyShape(op, rule("[moe_undispatch_c4]"), "result", result,
                         withLastDim(indices.getShape(), d),
                         "expertIndices dims + [d]")) ||
      failed(verifyElementType(op, rule("[moe_undispatch_c4]"), "result",
                               result.getElementType(), {y.getElementType()})))
    return failure();
  return success();
}
