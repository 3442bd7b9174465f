//===- V4PartitionPass.cpp - the graph split over the partition's ranks ---===//
#include "dialects/V4/V4Dialect.h"
#include "dialects/V4/V4Ops.h"
#include "dialects/V4/V4Partition.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include "llvm/ADT/SetVector.h"

#include <numeric>

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
    FailureOr<int64_t> tp = getTensorParallel(module);
    if (failed(ep) || failed(tp))
      return signalPassFailure();
    if (*ep > 1 && *tp > 1 && *ep != *tp) {
      module.emitError() << "--tp " << *tp << " and --ep " << *ep
                         << " must span the same ranks (one world)";
      return signalPassFailure();
    }
    dpAttention = getDataParallelAttention(module);
    FailureOr<MoEExchange> exchangeOr = getMoEExchange(module);
    if (failed(exchangeOr))
      return signalPassFailure();
    exchange = *exchangeOr;
    if (dpAttention && *tp > 1) {
      module.emitError() << "--dp-attention splits the sequences over the "
                            "ranks and --tp the attention heads: use one";
      return signalPassFailure();
    }
    if (*tp > 1 && failed(splitTensorParallel(module, *tp,
                                              /*routed=*/*ep == 1)))
      return signalPassFailure();
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
        if (failed(exchange == MoEExchange::Gather ? gatherTokens(op, *ep)
                                                   : dispatchSlots(op, *ep)))
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

  /// Data-parallel attention by all-to-all: each routing slot's row (x,
  /// routing weight, index) goes to the rank of its expert
  /// (`v4.moe.dispatch`, `v4.comm.all_to_all`), `op` runs there on the
  /// received one-slot rows, and the outputs go back the same way and into
  /// slot order (`v4.moe.undispatch`). `op` is left for erasure.
  LogicalResult dispatchSlots(MoEExpertsOp op, int64_t ep) {
    OpBuilder b(op);
    Location loc = op.getLoc();
    auto xType = cast<RankedTensorType>(op.getX().getType());
    auto wType = cast<RankedTensorType>(op.getRoutingWeights().getType());
    int64_t k = wType.getShape().back();
    int64_t perRank = cast<ShapedType>(op.getW1().getType()).getDimSize(0);
    if (ShapedType::isDynamic(k) || ShapedType::isDynamic(perRank))
      return op.emitError() << "--dp-attention: the experts' k and stack "
                               "size must be static";
    // [world, leading..., k, last...] of `elt`.
    auto blocks = [&](ArrayRef<int64_t> last, Type elt) {
      SmallVector<int64_t> shape{ep};
      llvm::append_range(shape, xType.getShape().drop_back());
      shape.push_back(k);
      llvm::append_range(shape, last);
      return RankedTensorType::get(shape, elt);
    };
    int64_t d = xType.getShape().back();
    auto countsType = RankedTensorType::get({ep}, b.getI64Type());
    auto dispatch = MoEDispatchOp::create(
        b, loc,
        TypeRange{countsType, blocks({d}, xType.getElementType()),
                  blocks({1}, b.getF32Type()), blocks({1}, b.getI64Type())},
        op.getX(), op.getRoutingWeights(), op.getExpertIndices(), ep, perRank);
    auto send = [&](Value counts, Value rows) {
      return CommAllToAllOp::create(
          b, loc, TypeRange{countsType, rows.getType()}, counts, rows, ep);
    };
    auto x = send(dispatch.getCounts(), dispatch.getRows());
    auto w = send(dispatch.getCounts(), dispatch.getRowWeights());
    auto i = send(dispatch.getCounts(), dispatch.getRowIndices());
    Operation *mine = b.clone(*op);
    mine->setOperand(op.getXMutable().getOperandNumber(), x.getResult());
    mine->setOperand(op.getRoutingWeightsMutable().getOperandNumber(),
                     w.getResult());
    mine->setOperand(op.getExpertIndicesMutable().getOperandNumber(),
                     i.getResult());
    Type outElt = op.getType().getElementType();
    mine->getResult(0).setType(blocks({1, d}, outElt));
    // Each rank returns as many rows to q as it received from q.
    auto back = send(x.getRecvCounts(), mine->getResult(0));
    auto slots = MoEUndispatchOp::create(b, loc, op.getType(), back.getResult(),
                                         op.getExpertIndices(), ep, perRank);
    op.getResult().replaceAllUsesWith(slots.getResult());
    gathered.push_back(op);
    return success();
  }

  bool dpAttention = false;
  MoEExchange exchange = MoEExchange::AllToAll;
  SmallVector<MoEExpertsOp> gathered;

  //===--------------------------------------------------------------------===//
  // Tensor parallelism
  //===--------------------------------------------------------------------===//

  /// Splits every attention's heads and every shared expert's hidden units
  /// (and the routed experts' when `routed`) over `tp` ranks; the
  /// row-parallel projections' partial sums are all-reduced in f32.
  LogicalResult splitTensorParallel(ModuleOp module, int64_t tp, bool routed) {
    SmallVector<AttnSparseOp> attns;
    module.walk([&](AttnSparseOp op) { attns.push_back(op); });
    SmallVector<MoESharedExpertOp> shared;
    module.walk([&](MoESharedExpertOp op) { shared.push_back(op); });
    if (attns.empty())
      return module.emitError()
             << "--tp " << tp << ": the model has no attention to split";
    for (AttnSparseOp op : attns)
      if (failed(splitAttention(op, tp)))
        return failure();
    for (MoESharedExpertOp op : shared)
      if (failed(splitSharedExpert(op, tp)))
        return failure();
    if (routed) {
      SmallVector<MoEExpertsOp> experts;
      module.walk([&](MoEExpertsOp op) { experts.push_back(op); });
      for (MoEExpertsOp op : experts)
        if (failed(splitRoutedExperts(op, tp)))
          return failure();
    }
    // The whole tensors are no longer read.
    for (Operation *p : wholeParameters)
      if (p->use_empty())
        p->erase();
    return success();
  }
  SetVector<Operation *> wholeParameters;

  /// `t` with dim `d` divided by `n`.
  static RankedTensorType divDim(Type t, int64_t d, int64_t n) {
    auto r = cast<RankedTensorType>(t);
    SmallVector<int64_t> shape(r.getShape());
    shape[d < 0 ? d + r.getRank() : d] /= n;
    return r.clone(shape);
  }

  /// Rank r's part (`local` entries) along `dim` of the parameter `v`,
  /// read through a new v4.parameter; `block`/`blockOf` for a block scale
  /// whose entries cover `block` of the rank's rows where the checkpoint's
  /// cover `blockOf` (equal: a plain slice).
  FailureOr<Value> makeSlice(Value v, int64_t dim, int64_t tp, int64_t local,
                             int64_t block, int64_t blockOf, Operation *user,
                             StringRef what) {
    auto p = v.getDefiningOp<ParameterOp>();
    if (!p || p.getSliceDim())
      return user->emitError() << "--tp " << tp << ": " << what
                               << " is not a whole v4.parameter to slice";
    wholeParameters.insert(p);
    auto type = p.getResult().getType();
    SmallVector<int64_t> shape(type.getShape());
    shape[dim] = local;
    OpBuilder b(p);
    bool blocks = block != blockOf;
    return ParameterOp::create(
               b, p.getLoc(), type.clone(shape), p.getNameAttr(),
               b.getI64IntegerAttr(dim), b.getI64IntegerAttr(tp),
               blocks ? b.getI64IntegerAttr(block) : IntegerAttr(),
               blocks ? b.getI64IntegerAttr(blockOf) : IntegerAttr())
        .getResult();
  }

  /// The rank's 1/tp of the parameter `v` along `dim`.
  FailureOr<Value> sliceParameter(Value v, int64_t dim, int64_t tp,
                                  Operation *user, StringRef what) {
    auto type = cast<RankedTensorType>(v.getType());
    int64_t full = type.getDimSize(dim);
    if (full % tp != 0)
      return user->emitError() << "--tp " << tp << ": " << what << " has "
                               << full << " entries along dim " << dim
                               << ", not a multiple of the " << tp << " ranks";
    return makeSlice(v, dim, tp, full / tp, 1, 1, user, what);
  }

  /// Slices the FP8 block scale `scale` of a weight whose dim `dim` the
  /// ranks split into `localRows` each, in checkpoint blocks of `blk`: the
  /// rank's entries cover gcd(localRows, blk) rows each (blk when its slice
  /// starts and ends on checkpoint blocks). Returns that block.
  FailureOr<std::pair<Value, int64_t>> sliceScale(Value scale, int64_t dim,
                                                  int64_t localRows,
                                                  int64_t blk, int64_t tp,
                                                  Operation *user) {
    int64_t block = std::gcd(localRows, blk);
    FailureOr<Value> s = makeSlice(scale, dim, tp, localRows / block, block,
                                   blk, user, "a block scale");
    if (failed(s))
      return failure();
    return std::make_pair(*s, block);
  }

  /// A weight `w` (with FP8 `scale`, or none) of a linear split along `dim`
  /// (0: output rows, 1: input columns K). Sets the op's operands; returns
  /// the rank's scale block along `dim` (the checkpoint's when unscaled).
  template <typename LinearLike>
  FailureOr<int64_t> sliceWeight(LinearLike op, int64_t dim, int64_t tp,
                                 StringRef what) {
    FailureOr<Value> w = sliceParameter(op.getWeight(), dim, tp, op, what);
    if (failed(w))
      return failure();
    op.getWeightMutable().assign(*w);
    int64_t blk =
        dim == 0 ? int64_t(op.getScaleRowBlock()) : int64_t(op.getBlockSize());
    if (!op.getScale())
      return blk;
    int64_t localRows = cast<RankedTensorType>(w->getType()).getDimSize(dim);
    FailureOr<std::pair<Value, int64_t>> s =
        sliceScale(op.getScale(), dim, localRows, blk, tp, op);
    if (failed(s))
      return failure();
    op.getScaleMutable().assign(s->first);
    return s->second;
  }

  /// Tensor-parallel attention (V4-SPEC 5.1, 5.6, 5.7): rank r runs heads
  /// [r H/tp, (r+1) H/tp) and output groups [r G/tp, (r+1) G/tp): wq_b's
  /// rows, attn_sink, wo_a's group rows and wo_b's columns are sliced, and
  /// wo_b's partial outputs are all-reduced. Everything before wq_b (wq_a,
  /// q_norm, the kv path, the compressors and the indexer) stays
  /// replicated: the indexer's top-k then picks the same entries on every
  /// rank.
  LogicalResult splitAttention(AttnSparseOp attn, int64_t tp) {
    auto fail = [&](Operation *at, const Twine &why) {
      return at->emitError() << "--tp " << tp << ": " << why;
    };
    // q = rope(rms_norm(expand_shape(linear(qr, wq_b)))).
    auto qRope = attn.getQ().getDefiningOp<RopeOp>();
    auto qNorm = qRope ? qRope.getX().getDefiningOp<RMSNormOp>() : nullptr;
    auto qExpand =
        qNorm ? qNorm.getX().getDefiningOp<tensor::ExpandShapeOp>() : nullptr;
    auto wqb = qExpand ? qExpand.getSrc().getDefiningOp<LinearOp>() : nullptr;
    if (!wqb || !qRope->hasOneUse() || !qNorm->hasOneUse() ||
        !qExpand->hasOneUse() || !wqb->hasOneUse())
      return fail(attn, "the query is not wq_b, per-head norm and RoPE of "
                        "this attention alone");
    // out = linear(collapse(grouped_linear(expand(collapse(rope^-1(o))))))
    Operation *use = attn->hasOneUse() ? *attn->user_begin() : nullptr;
    auto oRope = dyn_cast_or_null<RopeOp>(use);
    auto oCollapse =
        oRope && oRope->hasOneUse()
            ? dyn_cast<tensor::CollapseShapeOp>(*oRope->user_begin())
            : nullptr;
    auto gExpand =
        oCollapse && oCollapse->hasOneUse()
            ? dyn_cast<tensor::ExpandShapeOp>(*oCollapse->user_begin())
            : nullptr;
    auto woa = gExpand && gExpand->hasOneUse()
                   ? dyn_cast<GroupedLinearOp>(*gExpand->user_begin())
                   : nullptr;
    auto gCollapse = woa && woa->hasOneUse()
                         ? dyn_cast<tensor::CollapseShapeOp>(*woa->user_begin())
                         : nullptr;
    auto wob = gCollapse && gCollapse->hasOneUse()
                   ? dyn_cast<LinearOp>(*gCollapse->user_begin())
                   : nullptr;
    if (!wob)
      return fail(attn, "the output is not inverse RoPE, wo_a and wo_b of "
                        "this attention alone");
    auto qType = cast<RankedTensorType>(attn.getQ().getType());
    int64_t heads = qType.getDimSize(2);
    auto gType = cast<RankedTensorType>(gExpand.getType());
    int64_t groups = gType.getDimSize(gType.getRank() - 2);
    if (heads % tp != 0 || groups % tp != 0)
      return fail(attn, Twine(heads) + " attention heads in " + Twine(groups) +
                            " output groups do not split over " + Twine(tp) +
                            " ranks");
    // wq_b: the rank's heads are rows [r H/tp hd, (r+1) H/tp hd).
    if (failed(splitColumnParallel(wqb, tp, "wq_b", -1)))
      return failure();
    OpBuilder b(qExpand);
    auto rebuildExpand = [&](tensor::ExpandShapeOp e, int64_t dim) {
      b.setInsertionPoint(e);
      SmallVector<OpFoldResult> sizes = e.getMixedOutputShape();
      auto type = divDim(e.getType(), dim, tp);
      sizes[dim] = b.getIndexAttr(type.getDimSize(dim));
      auto n = tensor::ExpandShapeOp::create(
          b, e.getLoc(), type, e.getSrc(), e.getReassociationIndices(), sizes);
      e.getResult().replaceAllUsesWith(n.getResult());
      e.erase();
      return n;
    };
    auto rebuildCollapse = [&](tensor::CollapseShapeOp c) {
      b.setInsertionPoint(c);
      auto n = tensor::CollapseShapeOp::create(b, c.getLoc(), c.getSrc(),
                                               c.getReassociationIndices());
      c.getResult().replaceAllUsesWith(n.getResult());
      c.erase();
      return n;
    };
    rebuildExpand(qExpand, 2);
    qNorm.getResult().setType(divDim(qNorm.getType(), 2, tp));
    qRope.getResult().setType(divDim(qRope.getType(), 2, tp));
    // The rank's sinks.
    FailureOr<Value> sink =
        sliceParameter(attn.getSink(), 0, tp, attn, "attn_sink");
    if (failed(sink))
      return failure();
    attn.getSinkMutable().assign(*sink);
    attn.getResult().setType(divDim(attn.getType(), 2, tp));
    oRope.getResult().setType(divDim(oRope.getType(), 2, tp));
    rebuildCollapse(oCollapse);
    rebuildExpand(gExpand, gType.getRank() - 2);
    // wo_a: the rank's groups are rows [r G/tp N, (r+1) G/tp N).
    if (failed(splitColumnParallel(woa, tp, "wo_a", -2)))
      return failure();
    rebuildCollapse(gCollapse);
    // wo_b: the rank's columns; its f32 partial sums are all-reduced.
    if (failed(splitRowParallel(wob, tp, "wo_b")))
      return failure();
    ++numTensorParallel;
    return success();
  }

  /// Tensor-parallel shared expert (V4-SPEC 6.2): rank r runs hidden units
  /// [r I/tp, (r+1) I/tp): w1 and w3's rows and w2's columns are sliced and
  /// the partial outputs all-reduced. The op's FP8 scales are 128x128
  /// blocks, so the split needs I/tp to be a multiple of 128 (every
  /// released model); otherwise the shared expert stays replicated.
  LogicalResult splitSharedExpert(MoESharedExpertOp op, int64_t tp) {
    constexpr int64_t kBlock = 128;
    auto w1 = cast<RankedTensorType>(op.getW1().getType());
    int64_t hidden = w1.getDimSize(0);
    if (hidden % tp != 0 || (op.getW1Scale() && (hidden / tp) % kBlock != 0)) {
      ++numReplicatedShared;
      return success();
    }
    auto slice = [&](OpOperand &o, int64_t dim, StringRef what) {
      FailureOr<Value> v = sliceParameter(o.get(), dim, tp, op, what);
      if (succeeded(v))
        o.set(*v);
      return v;
    };
    if (failed(slice(op.getW1Mutable(), 0, "shared w1")) ||
        failed(slice(op.getW3Mutable(), 0, "shared w3")) ||
        failed(slice(op.getW2Mutable(), 1, "shared w2")))
      return failure();
    if (op.getW1Scale())
      if (failed(slice(op.getW1ScaleMutable()[0], 0, "shared w1 scale")) ||
          failed(slice(op.getW3ScaleMutable()[0], 0, "shared w3 scale")) ||
          failed(slice(op.getW2ScaleMutable()[0], 1, "shared w2 scale")))
        return failure();
    sumPartials(op, op.getResult());
    ++numSharedSplit;
    return success();
  }

  /// Tensor-parallel routed experts (V4-SPEC 6.2), as the shared expert:
  /// rank r runs hidden units [r I/tp, (r+1) I/tp) of every expert (w1 and
  /// w3's rows, w2's columns and their scales' entries, FP4 per-32 or FP8
  /// 128-block, sliced in each stack), and the per-slot f32 partial outputs
  /// are all-reduced and rounded once. Needs I/tp in whole 128-blocks (the
  /// activation blocks of w2's input); otherwise replicated.
  LogicalResult splitRoutedExperts(MoEExpertsOp op, int64_t tp) {
    constexpr int64_t kBlock = 128;
    int64_t hidden = cast<RankedTensorType>(op.getW1().getType()).getDimSize(1);
    if (hidden % tp != 0 || (hidden / tp) % kBlock != 0) {
      ++numReplicatedRouted;
      return success();
    }
    auto slice = [&](OpOperand &o, int64_t dim) -> LogicalResult {
      auto stack = o.get().getDefiningOp<ParameterStackOp>();
      if (!stack || stack.getShards())
        return op.emitError() << "--tp " << tp
                              << ": an expert weight that is not a whole "
                                 "v4.parameter_stack cannot be sliced";
      wholeParameters.insert(stack);
      OpBuilder b(stack);
      auto part = ParameterStackOp::create(
          b, stack.getLoc(), divDim(stack.getType(), dim, tp),
          stack.getPatternAttr(), stack.getCountAttr(), b.getI64IntegerAttr(tp),
          IntegerAttr(), b.getI64IntegerAttr(dim));
      o.set(part.getResult());
      return success();
    };
    // w1, w3 [E, I, d] and their scales [E, I or I/128, ...] by rows; w2
    // [E, d, I] and its scale [E, d, I/32 or I/128] by columns.
    if (failed(slice(op.getW1Mutable(), 1)) ||
        failed(slice(op.getW3Mutable(), 1)) ||
        failed(slice(op.getW2Mutable(), 2)))
      return failure();
    if (op.getW1Scale())
      if (failed(slice(op.getW1ScaleMutable()[0], 1)) ||
          failed(slice(op.getW3ScaleMutable()[0], 1)) ||
          failed(slice(op.getW2ScaleMutable()[0], 2)))
        return failure();
    sumPartials(op, op.getResult());
    ++numRoutedSplit;
    return success();
  }

  /// A linear (or grouped linear) whose output rows the ranks split: the
  /// weight's rows and its scale's entries are sliced (scale rows of fewer
  /// rows when the rank's slice does not start on a checkpoint block), and
  /// the result's dim `resultDim` (the features) shrinks to the rank's.
  template <typename LinearLike>
  LogicalResult splitColumnParallel(LinearLike op, int64_t tp, StringRef what,
                                    int64_t resultDim) {
    FailureOr<int64_t> block = sliceWeight(op, 0, tp, what);
    if (failed(block))
      return failure();
    if (*block != int64_t(op.getScaleRowBlock()))
      op.setRowBlockSize(*block);
    op.getResult().setType(divDim(op.getType(), resultDim, tp));
    return success();
  }

  /// A linear whose input columns (K) the ranks split: the weight's columns
  /// and its scale's column blocks are sliced (the rank's activation blocks
  /// then lie within its slice), and the partial output is all-reduced.
  LogicalResult splitRowParallel(LinearOp op, int64_t tp, StringRef what) {
    int64_t rowBlock = op.getScaleRowBlock();
    FailureOr<int64_t> kBlock = sliceWeight(op, 1, tp, what);
    if (failed(kBlock))
      return failure();
    if (*kBlock != int64_t(op.getBlockSize())) {
      op.setRowBlockSize(rowBlock);
      op.setBlockSize(*kBlock);
    }
    sumPartials(op, op.getResult());
    return success();
  }

  /// Sums the rank's partial output `v` of `op` over the ranks: computed in
  /// f32, all-reduced in f32 and rounded once to its type (v4.convert), so
  /// the ranks hold the one-rank output up to the order of the fp32
  /// additions. (The reference's RowParallelLinear all-reduces bf16
  /// partials, rounding each; on T1 that moves logits by up to 45%
  /// normwise over 60 positions.)
  void sumPartials(Operation *op, Value v) {
    auto type = cast<RankedTensorType>(v.getType());
    OpBuilder b(op);
    b.setInsertionPointAfter(op);
    auto wide = type.clone(b.getF32Type());
    v.setType(wide);
    auto sum = CommAllReduceOp::create(b, op->getLoc(), wide, v);
    Value narrow = sum.getResult();
    if (type != wide)
      narrow = ConvertOp::create(b, op->getLoc(), type, narrow).getResult();
    v.replaceAllUsesExcept(narrow, sum);
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
        local * ep == count ? IntegerAttr() : b.getI64IntegerAttr(count),
        /*sliceDim=*/IntegerAttr());
    return success();
  }
};

} // namespace
