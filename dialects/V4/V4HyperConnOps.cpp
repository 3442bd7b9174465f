//===- V4HyperConnOps.cpp - verifiers of the HyperConn op family ----------===//
#include "dialects/V4/V4Ops.h"
#include "dialects/V4/V4Verification.h"

#include <cmath>

using namespace mlir;
using namespace mlir::v4;

#define GET_OP_CLASSES
#include "dialects/V4/V4HyperConnOps.cpp.inc"

//===----------------------------------------------------------------------===//
// Family-local helpers
//===----------------------------------------------------------------------===//

/// Element types accepted for lanes and other activations: bf16 in the
/// model, f16 and f32 for reference testing.
static SmallVector<Type> activationTypes(MLIRContext *ctx) {
  Builder b(ctx);
  return {b.getBF16Type(), b.getF16Type(), b.getF32Type()};
}

/// Checks that `type` is a [B, T, n, d] lane tensor with a static lane count
/// n > 0; returns n.
static LogicalResult verifyLanes(Operation *op, StringRef label, StringRef what,
                                 ShapedType type, int64_t &n) {
  if (type.getRank() == 4 && ShapedType::isStatic(type.getDimSize(2)) &&
      type.getDimSize(2) > 0) {
    n = type.getDimSize(2);
    return success();
  }
  return op->emitOpError() << "expected " << what
                           << " of shape [B, T, n, d] with a static lane "
                              "count n > 0, got "
                           << shapeToString(type.getShape()) << " [" << label
                           << "]";
}

/// Checks the mixer parameters shared by hc_pre and hc_head: fn [m, n*d],
/// base [m], scale [scales], all f32.
static LogicalResult verifyMixerParams(Operation *op, StringRef fnLabel,
                                       StringRef baseLabel,
                                       StringRef scaleLabel, ShapedType fn,
                                       ShapedType base, ShapedType scale,
                                       int64_t n, int64_t d, int64_t m,
                                       int64_t scales, StringRef mNote) {
  Type f32 = Builder(op->getContext()).getF32Type();
  std::string fnNote =
      ("[" + mNote + ", n*d] with n = " + Twine(n) + ", d = " + dimToString(d))
          .str();
  if (failed(verifyShape(op, fnLabel, "fn", fn, {m, mulDim(n, d)}, fnNote)) ||
      failed(verifyElementType(op, fnLabel, "fn", fn.getElementType(), {f32})))
    return failure();
  std::string baseNote = ("[" + mNote + "] with n = " + Twine(n)).str();
  if (failed(verifyShape(op, baseLabel, "base", base, {m}, baseNote)) ||
      failed(verifyElementType(op, baseLabel, "base", base.getElementType(),
                               {f32})))
    return failure();
  if (failed(verifyShape(op, scaleLabel, "scale", scale, {scales}, "")) ||
      failed(verifyElementType(op, scaleLabel, "scale", scale.getElementType(),
                               {f32})))
    return failure();
  return success();
}

/// Checks an epsilon attribute: finite and > 0.
static LogicalResult verifyEps(Operation *op, StringRef label, StringRef what,
                               double eps) {
  if (eps > 0 && std::isfinite(eps))
    return success();
  return op->emitOpError() << "expected " << what << " > 0, got " << eps << " ["
                           << label << "]";
}

//===----------------------------------------------------------------------===//
// MhcExpandOp
//===----------------------------------------------------------------------===//

LogicalResult MhcExpandOp::verify() {
  auto eType = cast<ShapedType>(getE().getType());
  auto lanesType = cast<ShapedType>(getLanes().getType());
  // mhc_expand_c1: e is [B, T, d] with an activation element type.
  if (failed(verifyRank(*this, "mhc_expand_c1", "e", eType, 3)) ||
      failed(verifyElementType(*this, "mhc_expand_c1", "e",
                               eType.getElementType(),
                               activationTypes(getContext()))))
    return failure();
  // mhc_expand_c2: the result is [B, T, n, d] with a static n > 0.
  int64_t n;
  if (failed(verifyLanes(*this, "mhc_expand_c2", "result", lanesType, n)))
    return failure();
  // mhc_expand_c3: the result repeats e: same B, T, d and element type.
  ArrayRef<int64_t> e = eType.getShape();
  if (failed(verifyShape(*this, "mhc_expand_c3", "result", lanesType,
                         {e[0], e[1], n, e[2]}, "[B, T, n, d] of e")))
    return failure();
  if (lanesType.getElementType() != eType.getElementType())
    return emitOpError() << "expected result element type "
                         << eType.getElementType() << " (that of e), got "
                         << lanesType.getElementType() << " [mhc_expand_c3]";
  return success();
}

//===----------------------------------------------------------------------===//
// MhcPreOp
//===----------------------------------------------------------------------===//

/// Rule labels of the hc_pre checks on lanes that already passed the lane
/// checks (shared by mhc.pre and mhc.post_pre).
struct PreLabels {
  StringRef fn, base, scale, y, post, comb, iters, hcEps, normEps;
  /// Names of the post and comb results in diagnostics.
  StringRef postName = "post", combName = "comb";
};

/// The hc_pre checks after the lane checks: mixer parameters, results and
/// attributes, for lanes [b, t, n, d] of element type `elt`.
static LogicalResult
verifyPreParts(Operation *op, const PreLabels &l, ArrayRef<int64_t> x, Type elt,
               ShapedType fn, ShapedType base, ShapedType scale,
               ShapedType yType, ShapedType postType, ShapedType combType,
               int64_t iters, double hcEps, double normEps) {
  int64_t b = x[0], t = x[1], n = x[2], d = x[3];
  int64_t m = (2 + n) * n;
  if (failed(verifyMixerParams(op, l.fn, l.base, l.scale, fn, base, scale, n, d,
                               m, 3, "(2+n)*n")))
    return failure();
  Type f32 = Builder(op->getContext()).getF32Type();
  if (failed(verifyShape(op, l.y, "y", yType, {b, t, d}, "[B, T, d] of x")) ||
      failed(verifyElementType(op, l.y, "y", yType.getElementType(), {elt})))
    return failure();
  if (failed(verifyShape(op, l.post, l.postName, postType, {b, t, n},
                         "[B, T, n] of x")) ||
      failed(verifyElementType(op, l.post, l.postName,
                               postType.getElementType(), {f32})))
    return failure();
  if (failed(verifyShape(op, l.comb, l.combName, combType, {b, t, n, n},
                         "[B, T, n, n] of x")) ||
      failed(verifyElementType(op, l.comb, l.combName,
                               combType.getElementType(), {f32})))
    return failure();
  if (iters < 1)
    return op->emitOpError() << "expected sinkhornIters >= 1, got " << iters
                             << " [" << l.iters << "]";
  if (failed(verifyEps(op, l.hcEps, "hcEps", hcEps)) ||
      failed(verifyEps(op, l.normEps, "normEps", normEps)))
    return failure();
  return success();
}

LogicalResult MhcPreOp::verify() {
  auto xType = cast<ShapedType>(getX().getType());
  // mhc_pre_c1: x is [B, T, n, d] with a static lane count.
  int64_t n;
  if (failed(verifyLanes(*this, "mhc_pre_c1", "x", xType, n)))
    return failure();
  // mhc_pre_c2: x holds activations (bf16, f16 or f32).
  Type elt = xType.getElementType();
  if (failed(verifyElementType(*this, "mhc_pre_c2", "x", elt,
                               activationTypes(getContext()))))
    return failure();
  // mhc_pre_c3: fn is [(2+n)*n, n*d] f32.
  // mhc_pre_c4: base is [(2+n)*n] f32.
  // mhc_pre_c5: scale is [3] f32 (pre, post, comb).
  // mhc_pre_c6: y is [B, T, d] with the element type of x.
  // mhc_pre_c7: post is [B, T, n] f32.
  // mhc_pre_c8: comb is [B, T, n, n] f32.
  // mhc_pre_c9: at least one Sinkhorn iteration.
  // mhc_pre_c10: hcEps > 0.
  // mhc_pre_c11: normEps > 0.
  PreLabels labels{"mhc_pre_c3", "mhc_pre_c4",  "mhc_pre_c5",
                   "mhc_pre_c6", "mhc_pre_c7",  "mhc_pre_c8",
                   "mhc_pre_c9", "mhc_pre_c10", "mhc_pre_c11"};
  return verifyPreParts(
      *this, labels, xType.getShape(), elt, getFn().getType(),
      getBase().getType(), getScale().getType(), getY().getType(),
      getPost().getType(), getComb().getType(),
      static_cast<int64_t>(getSinkhornIters()), getHcEps().convertToDouble(),
      getNormEps().convertToDouble());
}

//===----------------------------------------------------------------------===//
// MhcSinkhornOp
//===----------------------------------------------------------------------===//

LogicalResult MhcSinkhornOp::verify() {
  auto type = cast<ShapedType>(getLogits().getType());
  // mhc_sinkhorn_c1: logits are [..., n, n].
  if (failed(verifyMinRank(*this, "mhc_sinkhorn_c1", "logits", type, 2)))
    return failure();
  int64_t rank = type.getRank();
  int64_t rows = type.getDimSize(rank - 2), cols = type.getDimSize(rank - 1);
  if (!dimsCompatible(rows, cols))
    return emitOpError() << "expected logits to end in a square n x n matrix, "
                            "got "
                         << dimToString(rows) << " x " << dimToString(cols)
                         << " [mhc_sinkhorn_c1]";
  // mhc_sinkhorn_c2: fp32.
  if (failed(verifyElementType(*this, "mhc_sinkhorn_c2", "logits",
                               type.getElementType(),
                               {Builder(getContext()).getF32Type()})))
    return failure();
  // mhc_sinkhorn_c3: at least one iteration.
  auto iters = static_cast<int64_t>(getIters());
  if (iters < 1)
    return emitOpError() << "expected iters >= 1, got " << iters
                         << " [mhc_sinkhorn_c3]";
  // mhc_sinkhorn_c4: eps > 0.
  return verifyEps(*this, "mhc_sinkhorn_c4", "eps", getEps().convertToDouble());
}

//===----------------------------------------------------------------------===//
// MhcPostOp
//===----------------------------------------------------------------------===//

/// Rule labels of the hc_post checks (shared by mhc.post and mhc.post_pre).
struct PostLabels {
  StringRef lanes, elt, o, post, comb, result;
};

/// The hc_post checks: lanes x, sublayer output o, post, comb and the new
/// lanes' type `result`.
static LogicalResult verifyPostParts(Operation *op, const PostLabels &l,
                                     ShapedType oType, ShapedType xType,
                                     ShapedType postType, ShapedType combType,
                                     Type result) {
  int64_t n;
  if (failed(verifyLanes(op, l.lanes, "x", xType, n)))
    return failure();
  Type elt = xType.getElementType();
  if (failed(verifyElementType(op, l.elt, "x", elt,
                               activationTypes(op->getContext()))) ||
      failed(verifyElementType(op, l.elt, "o", oType.getElementType(), {elt})))
    return failure();
  ArrayRef<int64_t> x = xType.getShape();
  int64_t b = x[0], t = x[1], d = x[3];
  if (failed(verifyShape(op, l.o, "o", oType, {b, t, d}, "[B, T, d] of x")))
    return failure();
  Type f32 = Builder(op->getContext()).getF32Type();
  if (failed(verifyShape(op, l.post, "post", postType, {b, t, n},
                         "[B, T, n] of x")) ||
      failed(verifyElementType(op, l.post, "post", postType.getElementType(),
                               {f32})))
    return failure();
  if (failed(verifyShape(op, l.comb, "comb", combType, {b, t, n, n},
                         "[B, T, n, n] of x")) ||
      failed(verifyElementType(op, l.comb, "comb", combType.getElementType(),
                               {f32})))
    return failure();
  if (result != xType)
    return op->emitOpError()
           << "expected result type " << xType << " (that of x), got " << result
           << " [" << l.result << "]";
  return success();
}

LogicalResult MhcPostOp::verify() {
  // mhc_post_c1: x is [B, T, n, d] with a static lane count.
  // mhc_post_c2: x holds activations; o and the result share its type.
  // mhc_post_c3: o is [B, T, d].
  // mhc_post_c4: post is [B, T, n] f32.
  // mhc_post_c5: comb is [B, T, n, n] f32.
  // mhc_post_c6: the result has the type of x.
  PostLabels labels{"mhc_post_c1", "mhc_post_c2", "mhc_post_c3",
                    "mhc_post_c4", "mhc_post_c5", "mhc_post_c6"};
  return verifyPostParts(*this, labels, getO().getType(), getX().getType(),
                         getPost().getType(), getComb().getType(),
                         getResult().getType());
}

//===----------------------------------------------------------------------===//
// MhcPostPreOp
//===----------------------------------------------------------------------===//

LogicalResult MhcPostPreOp::verify() {
  // The post half: as mhc.post, with the new lanes as its result.
  // mhc_post_pre_c1: x is [B, T, n, d] with a static lane count.
  // mhc_post_pre_c2: x holds activations; o and lanes share its type.
  // mhc_post_pre_c3: o is [B, T, d].
  // mhc_post_pre_c4: post is [B, T, n] f32.
  // mhc_post_pre_c5: comb is [B, T, n, n] f32.
  // mhc_post_pre_c6: lanes has the type of x.
  PostLabels post{"mhc_post_pre_c1", "mhc_post_pre_c2", "mhc_post_pre_c3",
                  "mhc_post_pre_c4", "mhc_post_pre_c5", "mhc_post_pre_c6"};
  auto xType = cast<ShapedType>(getX().getType());
  if (failed(verifyPostParts(*this, post, getO().getType(), xType,
                             getPost().getType(), getComb().getType(),
                             getLanes().getType())))
    return failure();
  // The pre half: as mhc.pre on the new lanes (same type as x, already
  // checked above).
  // mhc_post_pre_c7: fn is [(2+n)*n, n*d] f32.
  // mhc_post_pre_c8: base is [(2+n)*n] f32.
  // mhc_post_pre_c9: scale is [3] f32.
  // mhc_post_pre_c10: y is [B, T, d] with the element type of x.
  // mhc_post_pre_c11: nextPost is [B, T, n] f32.
  // mhc_post_pre_c12: nextComb is [B, T, n, n] f32.
  // mhc_post_pre_c13: at least one Sinkhorn iteration.
  // mhc_post_pre_c14: hcEps > 0.
  // mhc_post_pre_c15: normEps > 0.
  PreLabels pre{"mhc_post_pre_c7",  "mhc_post_pre_c8",  "mhc_post_pre_c9",
                "mhc_post_pre_c10", "mhc_post_pre_c11", "mhc_post_pre_c12",
                "mhc_post_pre_c13", "mhc_post_pre_c14", "mhc_post_pre_c15",
                "nextPost",         "nextComb"};
  return verifyPreParts(
      *this, pre, xType.getShape(), xType.getElementType(), getFn().getType(),
      getBase().getType(), getScale().getType(), getY().getType(),
      getNextPost().getType(), getNextComb().getType(),
      static_cast<int64_t>(getSinkhornIters()), getHcEps().convertToDouble(),
      getNormEps().convertToDouble());
}

//===----------------------------------------------------------------------===//
// MhcHeadOp
//===----------------------------------------------------------------------===//

LogicalResult MhcHeadOp::verify() {
  auto xType = cast<ShapedType>(getX().getType());
  // mhc_head_c1: x is [B, T, n, d] with a static lane count.
  int64_t n;
  if (failed(verifyLanes(*this, "mhc_head_c1", "x", xType, n)))
    return failure();
  // mhc_head_c2: x holds activations (bf16, f16 or f32).
  Type elt = xType.getElementType();
  if (failed(verifyElementType(*this, "mhc_head_c2", "x", elt,
                               activationTypes(getContext()))))
    return failure();
  ArrayRef<int64_t> x = xType.getShape();
  // mhc_head_c3: fn is [n, n*d] f32.
  // mhc_head_c4: base is [n] f32.
  // mhc_head_c5: scale is [1] f32.
  if (failed(verifyMixerParams(
          *this, "mhc_head_c3", "mhc_head_c4", "mhc_head_c5", getFn().getType(),
          getBase().getType(), getScale().getType(), n, x[3], n, 1, "n")))
    return failure();
  // mhc_head_c6: y is [B, T, d] with the element type of x.
  auto yType = cast<ShapedType>(getY().getType());
  if (failed(verifyShape(*this, "mhc_head_c6", "y", yType, {x[0], x[1], x[3]},
                         "[B, T, d] of x")) ||
      failed(verifyElementType(*this, "mhc_head_c6", "y",
                               yType.getElementType(), {elt})))
    return failure();
  // mhc_head_c7: hcEps > 0.
  // mhc_head_c8: normEps > 0.
  if (failed(verifyEps(*this, "mhc_head_c7", "hcEps",
                       getHcEps().convertToDouble())) ||
      failed(verifyEps(*this, "mhc_head_c8", "normEps",
                       getNormEps().convertToDouble())))
    return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// MtpInputOp
//===----------------------------------------------------------------------===//

LogicalResult MtpInputOp::verify() {
  auto hType = cast<ShapedType>(getH().getType());
  auto eType = cast<ShapedType>(getE().getType());
  // mtp_input_c1: h is [B, T, n, d] with a static lane count.
  int64_t n;
  if (failed(verifyLanes(*this, "mtp_input_c1", "h", hType, n)))
    return failure();
  // mtp_input_c2: h holds activations and e has the same element type.
  Type elt = hType.getElementType();
  if (failed(verifyElementType(*this, "mtp_input_c2", "h", elt,
                               activationTypes(getContext()))) ||
      failed(verifyElementType(*this, "mtp_input_c2", "e",
                               eType.getElementType(), {elt})))
    return failure();
  // mtp_input_c3: e is [B, T, d] of h.
  ArrayRef<int64_t> h = hType.getShape();
  if (failed(verifyShape(*this, "mtp_input_c3", "e", eType, {h[0], h[1], h[3]},
                         "[B, T, d] of h")))
    return failure();
  // mtp_input_c4: the result has the type of h.
  if (getResult().getType() != getH().getType())
    return emitOpError() << "expected result type " << getH().getType()
                         << " (that of h), got " << getResult().getType()
                         << " [mtp_input_c4]";
  return success();
}
