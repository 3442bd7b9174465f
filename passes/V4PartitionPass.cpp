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
    dpAttention = getDataParallelAttention(module);
    if (dpAttention && *ep == 1) {
      module.emitError() << "--dp-attention needs --ep N with N > 1: the "
                            "ranks' experts serve every rank's tokens";
      return signalPassFailure();
    }
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
      if (dpAttention) {
        if (failed(gatherTokens(op, *ep)))
          return signalPassFailure();
      } else {
        b.setInsertionPointAfter(op);
        auto sum = CommAllReduceOp::create(b, op.getLoc(), op.getType(),
                                           op.getResult());
        op.getResult().replaceAllUsesExcept(sum.getResult(), sum);
      }
      ++numSharded;
    }
    for (MoEExpertsOp op : gathered)
      op.erase();
    // The full stacks are no longer read.
    for (auto &[full, part] : shardOf)
      if (full->use_empty())
        full->erase();
  }

  /// Data-parallel attention: `op` (already expert-parallel) runs on every
  /// rank's tokens, gathered along the batch dim, and each rank keeps the
  /// sum of the ranks' slot outputs for its own sequences. `op` is left for
  /// erasure (in `gathered`).
  LogicalResult gatherTokens(MoEExpertsOp op, int64_t ep) {
    OpBuilder b(op);
    auto widen = [&](Type t) -> RankedTensorType {
      auto r = cast<RankedTensorType>(t);
      SmallVector<int64_t> shape(r.getShape());
      shape[0] *= ep;
      return r.clone(shape);
    };
    if (ShapedType::isDynamic(op.getX().getType().getDimSize(0)))
      return op.emitError() << "--dp-attention: the batch dim of the experts' "
                               "input is not static";
    SmallVector<std::pair<unsigned, Value>> inputs;
    for (OpOperand *o : {&op.getXMutable(), &op.getRoutingWeightsMutable(),
                         &op.getExpertIndicesMutable()}) {
      Value v = o->get();
      inputs.push_back(
          {o->getOperandNumber(),
           CommAllGatherOp::create(b, op.getLoc(), widen(v.getType()), v, ep)});
    }
    Operation *all = b.clone(*op);
    for (auto [i, v] : inputs)
      all->setOperand(i, v);
    all->getResult(0).setType(widen(op.getType()));
    auto mine = CommReduceScatterOp::create(b, op.getLoc(), op.getType(),
                                            all->getResult(0), ep);
    op.getResult().replaceAllUsesWith(mine.getResult());
    gathered.push_back(op);
    return success();
  }

  bool dpAttention = false;
  SmallVector<MoEExpertsOp> gathered;

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
