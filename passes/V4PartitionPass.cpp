//===- V4PartitionPass.cpp - the graph split over the partition's ranks ---===//
#include "dialects/V4/V4Dialect.h"
#include "dialects/V4/V4Ops.h"
#include "dialects/V4/V4Partition.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::v4 {
#define GEN_PASS_DEF_V4PARTITIONPASS
#include "passes/Passes.h.inc"
} // namespace mlir::v4

using namespace mlir;
using namespace mlir::v4;

namespace {

struct V4PartitionPass
    : public mlir::v4::impl::V4PartitionPassBase<V4PartitionPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    FailureOr<int64_t> ep = getExpertParallel(module);
    if (failed(ep))
      return signalPassFailure();
    if (*ep == 1)
      return;
    SmallVector<MoEExpertsOp> experts;
    module.walk([&](MoEExpertsOp op) { experts.push_back(op); });
    if (experts.empty()) {
      module.emitError() << "--ep " << *ep
                         << ": the model has no routed experts to split";
      return signalPassFailure();
    }
    // One rank op per function; one shard per original stack.
    DenseMap<Operation *, Value> rankOf;
    DenseMap<Operation *, Value> shardOf;
    for (MoEExpertsOp op : experts) {
      if (op.getEpRank()) {
        op.emitError() << "is already expert-parallel";
        return signalPassFailure();
      }
      auto fn = op->getParentOfType<func::FuncOp>();
      Value &rank = rankOf[fn];
      if (!rank) {
        OpBuilder b = OpBuilder::atBlockBegin(&fn.getBody().front());
        rank = CommRankOp::create(
            b, op.getLoc(), RankedTensorType::get({1}, b.getI64Type()), *ep);
      }
      OpBuilder b(op);
      for (OpOperand *w :
           {&op.getW1Mutable(), &op.getW3Mutable(), &op.getW2Mutable()}) {
        if (failed(shard(w->get(), *ep, shardOf, op)))
          return signalPassFailure();
        w->set(shardOf[w->get().getDefiningOp()]);
      }
      for (MutableOperandRange scales :
           {op.getW1ScaleMutable(), op.getW3ScaleMutable(),
            op.getW2ScaleMutable()})
        for (OpOperand &s : scales) {
          if (failed(shard(s.get(), *ep, shardOf, op)))
            return signalPassFailure();
          s.set(shardOf[s.get().getDefiningOp()]);
        }
      op.getEpRankMutable().assign(rank);
      b.setInsertionPointAfter(op);
      auto sum =
          CommAllReduceOp::create(b, op.getLoc(), op.getType(), op.getResult());
      op.getResult().replaceAllUsesExcept(sum.getResult(), sum);
      ++numSharded;
    }
    // The full stacks are no longer read.
    for (auto &[full, part] : shardOf)
      if (full->use_empty())
        full->erase();
  }

  /// Makes `shardOf[def]` the rank's shard of the stack `v` (`op`'s weight).
  LogicalResult shard(Value v, int64_t ep,
                      DenseMap<Operation *, Value> &shardOf, Operation *op) {
    auto stack = v.getDefiningOp<ParameterStackOp>();
    if (!stack)
      return op->emitError() << "--ep " << ep
                             << ": an expert weight that is not a "
                                "v4.parameter_stack cannot be sharded";
    if (shardOf.count(stack))
      return success();
    int64_t count = stack.getCount();
    if (count < ep)
      return op->emitError()
             << "--ep " << ep << ": the model has only " << count
             << " routed experts, fewer than the " << ep << " ranks";
    // ceil(count / ep) per rank; the last shard's missing members are
    // zeros no token is routed to.
    int64_t local = (count + ep - 1) / ep;
    auto type = cast<RankedTensorType>(stack.getType());
    SmallVector<int64_t> shape(type.getShape());
    shape[0] = local;
    OpBuilder b(stack);
    shardOf[stack] = ParameterStackOp::create(
        b, stack.getLoc(), type.clone(shape), stack.getPatternAttr(),
        b.getI64IntegerAttr(local), b.getI64IntegerAttr(ep),
        local * ep == count ? IntegerAttr() : b.getI64IntegerAttr(count));
    return success();
  }
};

} // namespace
