//===- V4FuseMhcBoundariesPass.cpp - mhc.post + mhc.pre -> mhc.post_pre ---===//
#include "dialects/V4/V4Dialect.h"
#include "dialects/V4/V4Ops.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Transforms/WalkPatternRewriteDriver.h"

namespace mlir::v4 {
#define GEN_PASS_DEF_V4FUSEMHCBOUNDARIESPASS
#include "passes/Passes.h.inc"
} // namespace mlir::v4

using namespace mlir;
using namespace mlir::v4;

namespace {

/// True if `v` is available right before `op`: a value of an enclosing
/// region, or defined in op's block before op.
static bool availableBefore(Value v, Operation *op) {
  Operation *def = v.getDefiningOp();
  Block *block = def ? def->getBlock() : cast<BlockArgument>(v).getOwner();
  if (block == op->getBlock())
    return !def || def->isBeforeInBlock(op);
  // Another block: only a value of an enclosing region is known to dominate.
  return block->getParent()->isProperAncestor(op->getParentRegion());
}

/// post(o, X, post, comb) -> X'; pre(X', fn, base, scale) -> y, post', comb'
/// becomes post_pre(o, X, post, comb, fn, base, scale) -> X', y, post',
/// comb'.
struct FuseMhcBoundary : OpRewritePattern<MhcPreOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MhcPreOp pre,
                                PatternRewriter &rewriter) const override {
    auto post = pre.getX().getDefiningOp<MhcPostOp>();
    if (!post)
      return rewriter.notifyMatchFailure(
          pre, "the lanes do not come from a v4.mhc.post");
    if (post->getBlock() != pre->getBlock())
      return rewriter.notifyMatchFailure(pre,
                                         "the v4.mhc.post is in another block");
    // Put the fused op at the pre, unless X' is used between the post and
    // the pre; then at the post, which needs the pre's parameters there.
    // A tensor.dim of X' (each inlined layer reads T from its input) only
    // needs the shape: it reads X instead, which has the same type.
    Block *block = pre->getBlock();
    SmallVector<tensor::DimOp> dimsBetween;
    bool usedBetween = false;
    for (Operation *user : post->getUsers()) {
      Operation *inBlock = block->findAncestorOpInBlock(*user);
      if (user == pre.getOperation() || !inBlock ||
          !inBlock->isBeforeInBlock(pre))
        continue;
      if (auto dim = dyn_cast<tensor::DimOp>(user))
        dimsBetween.push_back(dim);
      else
        usedBetween = true;
    }
    Operation *insertAt = pre;
    if (usedBetween) {
      for (Value v : {pre.getFn(), pre.getBase(), pre.getScale()})
        if (!availableBefore(v, post))
          return rewriter.notifyMatchFailure(
              pre, "the lanes are used before the pre and its parameters "
                   "are defined after the post");
      insertAt = post;
    }
    for (tensor::DimOp dim : dimsBetween)
      rewriter.modifyOpInPlace(
          dim, [&] { dim.getSourceMutable().assign(post.getX()); });
    rewriter.setInsertionPoint(insertAt);
    auto fused = MhcPostPreOp::create(
        rewriter, rewriter.getFusedLoc({post.getLoc(), pre.getLoc()}),
        post.getResult().getType(), pre.getY().getType(),
        pre.getPost().getType(), pre.getComb().getType(), post.getO(),
        post.getX(), post.getPost(), post.getComb(), pre.getFn(), pre.getBase(),
        pre.getScale(), pre.getSinkhornItersAttr(), pre.getHcEpsAttr(),
        pre.getNormEpsAttr());
    rewriter.replaceOp(
        pre, {fused.getY(), fused.getNextPost(), fused.getNextComb()});
    rewriter.replaceOp(post, fused.getLanes());
    return success();
  }
};

class V4FuseMhcBoundariesPass
    : public v4::impl::V4FuseMhcBoundariesPassBase<V4FuseMhcBoundariesPass> {
public:
  using Base::Base;

  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateFuseMhcBoundariesPatterns(patterns);
    auto countPre = [&] {
      uint64_t n = 0;
      getOperation()->walk([&](MhcPreOp) { ++n; });
      return n;
    };
    uint64_t before = countPre();
    // One walk, no folding and no dead-code removal: the pass changes only
    // the pairs it fuses.
    walkAndApplyPatterns(getOperation(), std::move(patterns));
    numFused += before - countPre();
  }
};

} // namespace

void mlir::v4::populateFuseMhcBoundariesPatterns(RewritePatternSet &patterns) {
  patterns.add<FuseMhcBoundary>(patterns.getContext());
}
