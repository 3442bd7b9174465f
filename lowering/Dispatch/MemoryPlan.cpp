//===- MemoryPlan.cpp - one activation arena per plan, by liveness --------===//
//
// Pass v4-plan-memory (lowering/Passes.td).
//
//===----------------------------------------------------------------------===//
#include "dialects/V4/V4Ops.h"
#include "dialects/V4/V4StorageLayout.h"
#include "lowering/Dispatch/DispatchFormation.h"
#include "lowering/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

#include <algorithm>

namespace mlir::v4 {
#define GEN_PASS_DEF_V4PLANMEMORYPASS
#include "lowering/Passes.h.inc"
} // namespace mlir::v4

using namespace mlir;
using namespace mlir::v4;

namespace {

constexpr uint64_t kAlignment = 64;

uint64_t alignUp(uint64_t n) {
  return (n + kAlignment - 1) / kAlignment * kAlignment;
}

struct Interval {
  memref::AllocOp alloc;
  uint64_t bytes = 0;
  unsigned first = 0, last = 0; // op indices of the first and last use
  uint64_t offset = 0;
};

/// Greedy by size (largest first), each at the lowest offset free of every
/// placed buffer whose live range overlaps. Returns the arena size.
uint64_t place(std::vector<Interval> &intervals) {
  std::vector<Interval *> order;
  for (Interval &i : intervals)
    order.push_back(&i);
  std::stable_sort(order.begin(), order.end(), [](Interval *a, Interval *b) {
    if (a->bytes != b->bytes)
      return a->bytes > b->bytes;
    return a->first < b->first;
  });
  std::vector<Interval *> placed;
  uint64_t arena = 0;
  std::vector<std::pair<uint64_t, uint64_t>> busy;
  for (Interval *i : order) {
    busy.clear();
    for (Interval *p : placed)
      if (p->first <= i->last && i->first <= p->last)
        busy.emplace_back(p->offset, p->offset + alignUp(p->bytes));
    std::sort(busy.begin(), busy.end());
    uint64_t at = 0, need = alignUp(i->bytes);
    for (auto [begin, end] : busy) {
      if (at + need <= begin)
        break;
      at = std::max(at, end);
    }
    i->offset = at;
    arena = std::max(arena, at + need);
    placed.push_back(i);
  }
  return arena;
}

struct V4PlanMemoryPass
    : public mlir::v4::impl::V4PlanMemoryPassBase<V4PlanMemoryPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    PlanBounds bounds = getPlanBounds(module);
    for (StringRef name : {"init_state", "step"}) {
      auto fn = module.lookupSymbol<func::FuncOp>(name);
      if (!fn || fn.isExternal())
        continue;
      if (failed(planFunction(fn, bounds.maxChunk)))
        return signalPassFailure();
    }
  }

  LogicalResult planFunction(func::FuncOp fn, int64_t maxChunk) {
    Block &body = fn.getBody().front();
    for (auto alloc : body.getOps<memref::AllocOp>())
      if (alloc->hasAttr("v4.arena"))
        return alloc.emitError() << "@" << fn.getSymName()
                                 << " already has an arena: memory is "
                                    "planned once";
    // A concurrent group (v4.concurrent) and the ops between its dispatches
    // take the index of its first dispatch: its buffers are all live then.
    DenseMap<Operation *, unsigned> index;
    SmallVector<Operation *> ops;
    unsigned leader = 0;
    for (auto [i, op] : llvm::enumerate(body)) {
      unsigned at = static_cast<unsigned>(i);
      ops.push_back(&op);
      index[&op] = at;
      if (!isa<PlanDispatchOp>(op))
        continue;
      if (!op.hasAttr(kConcurrentAttrName)) {
        leader = at;
        continue;
      }
      for (unsigned j = leader + 1; j <= at; ++j)
        index[ops[j]] = leader;
    }
    std::vector<Interval> intervals;
    for (auto alloc : body.getOps<memref::AllocOp>()) {
      bool returned = false;
      Interval iv;
      iv.alloc = alloc;
      iv.first = iv.last = index[alloc];
      for (Operation *user : alloc->getUsers()) {
        Operation *top = body.findAncestorOpInBlock(*user);
        if (!top)
          return user->emitError() << "a plan buffer is used outside the "
                                      "plan's block";
        returned |= isa<func::ReturnOp>(top);
        iv.first = std::min(iv.first, index[top]);
        iv.last = std::max(iv.last, index[top]);
      }
      if (returned)
        continue; // outputs are read by the caller: their own buffers
      FailureOr<uint64_t> bytes = getStorageBytes(alloc.getType(), maxChunk);
      if (failed(bytes) || !alloc.getType().getLayout().isIdentity())
        return alloc.emitError()
               << "cannot place " << alloc.getType() << " in the arena";
      iv.bytes = *bytes;
      intervals.push_back(iv);
    }
    if (intervals.empty())
      return success();
    uint64_t unplanned = 0;
    for (const Interval &i : intervals)
      unplanned += alignUp(i.bytes);
    uint64_t arenaSize = place(intervals);

    OpBuilder b = OpBuilder::atBlockBegin(&body);
    Location loc = fn.getLoc();
    auto arenaType =
        MemRefType::get({static_cast<int64_t>(arenaSize)}, b.getIntegerType(8));
    auto arena = memref::AllocOp::create(b, loc, arenaType);
    arena->setAttr("v4.arena", b.getUnitAttr());
    arena->setAttr("v4.arena_unplanned_bytes",
                   b.getI64IntegerAttr(static_cast<int64_t>(unplanned)));
    for (Interval &i : intervals) {
      b.setInsertionPoint(i.alloc);
      Value offset = arith::ConstantIndexOp::create(
          b, i.alloc.getLoc(), static_cast<int64_t>(i.offset));
      auto view =
          memref::ViewOp::create(b, i.alloc.getLoc(), i.alloc.getType(), arena,
                                 offset, i.alloc.getDynamicSizes());
      i.alloc.replaceAllUsesWith(view.getResult());
      i.alloc.erase();
    }
    numPlaced += intervals.size();
    arenaBytes = std::max<uint64_t>(arenaBytes, arenaSize);
    unplannedBytes += unplanned;
    return success();
  }
};

} // namespace
