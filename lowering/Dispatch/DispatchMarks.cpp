//===- DispatchMarks.cpp - what the plan's dispatches may skip or share ---===//
//
// Passes v4-mark-concurrent-dispatches and v4-mark-output-only-dispatches
// (lowering/Passes.td): marks on v4.plan.dispatch from the buffers each one
// reads and writes.
//
//===----------------------------------------------------------------------===//
#include "dialects/V4/V4Ops.h"
#include "dialects/V4/V4StorageLayout.h"
#include "lowering/Dispatch/DispatchFormation.h"
#include "lowering/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace mlir::v4 {
#define GEN_PASS_DEF_V4MARKCONCURRENTDISPATCHESPASS
#define GEN_PASS_DEF_V4MARKOUTPUTONLYDISPATCHESPASS
#include "lowering/Passes.h.inc"
} // namespace mlir::v4

using namespace mlir;
using namespace mlir::v4;

namespace {

/// The buffers a dispatch reads and writes. Before the memory plan every
/// buffer is its own value (an alloc, a plan argument or a parameter), so
/// values name memory.
struct Access {
  llvm::SmallPtrSet<Value, 8> reads, writes;
  bool touches(Value v) const { return reads.count(v) || writes.count(v); }
};

/// `dispatch`'s accesses from its kernel's signature: the storage buffers
/// of the kernel's operands, then of its fresh results (written); a result
/// tied to an operand (v4.tied_operand) writes that operand's buffers.
FailureOr<Access> accessOf(PlanDispatchOp dispatch) {
  auto kernel = dyn_cast_or_null<func::FuncOp>(
      SymbolTable::lookupNearestSymbolFrom(dispatch, dispatch.getKernel()));
  if (!kernel)
    return dispatch.emitError() << "no kernel " << dispatch.getKernel();
  unsigned fresh = 0;
  llvm::SmallDenseSet<unsigned> tied;
  for (unsigned r = 0; r < kernel.getNumResults(); ++r) {
    if (auto t = kernel.getResultAttrOfType<IntegerAttr>(r, "v4.tied_operand"))
      tied.insert(static_cast<unsigned>(t.getInt()));
    else
      ++fresh;
  }
  unsigned numArgs = kernel.getNumArguments();
  if (fresh > numArgs)
    return dispatch.emitError() << "kernel " << kernel.getSymName()
                                << " has more fresh results than arguments";
  Access access;
  ValueRange buffers = dispatch.getBuffers();
  size_t at = 0;
  for (unsigned a = 0; a < numArgs; ++a) {
    SmallVector<Type> storage;
    if (failed(getStorageMemRefTypes(kernel.getArgumentTypes()[a], storage)))
      return dispatch.emitError() << "no storage layout for argument " << a
                                  << " of " << kernel.getSymName();
    bool written = a >= numArgs - fresh || tied.count(a);
    for (size_t i = 0; i < storage.size(); ++i, ++at) {
      if (at >= buffers.size())
        return dispatch.emitError()
               << "fewer buffers than " << kernel.getSymName() << " takes";
      (written ? access.writes : access.reads).insert(buffers[at]);
    }
  }
  if (at != buffers.size())
    return dispatch.emitError()
           << "more buffers than " << kernel.getSymName() << " takes";
  return access;
}

/// Whether the memory of `v` is its own: a plan argument, an alloc or a
/// parameter (not a view of another buffer).
bool isRootBuffer(Value v) {
  if (isa<BlockArgument>(v))
    return true;
  Operation *def = v.getDefiningOp();
  return isa<memref::AllocOp, PlanParameterOp>(def);
}

struct V4MarkConcurrentDispatchesPass
    : public mlir::v4::impl::V4MarkConcurrentDispatchesPassBase<
          V4MarkConcurrentDispatchesPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    for (StringRef name : {"init_state", "step"}) {
      auto fn = module.lookupSymbol<func::FuncOp>(name);
      if (!fn || fn.isExternal())
        continue;
      if (failed(markFunction(fn)))
        return signalPassFailure();
    }
  }

  LogicalResult markFunction(func::FuncOp fn) {
    // The current group: consecutive dispatches none of which writes what
    // another reads or writes. Any other op that touches a buffer (a
    // collective, a copy) ends it.
    Access group;
    bool open = false;
    for (Operation &op : fn.getBody().front()) {
      auto dispatch = dyn_cast<PlanDispatchOp>(op);
      if (!dispatch) {
        if (isa<PlanCollectiveOp>(op) ||
            (!isMemoryEffectFree(&op) &&
             !isa<memref::AllocOp, func::ReturnOp>(op)))
          open = false;
        continue;
      }
      FailureOr<Access> access = accessOf(dispatch);
      if (failed(access))
        return failure();
      bool roots = llvm::all_of(dispatch.getBuffers(), isRootBuffer);
      bool independent =
          open && roots &&
          llvm::none_of(access->writes,
                        [&](Value v) { return group.touches(v); }) &&
          llvm::none_of(access->reads,
                        [&](Value v) { return group.writes.count(v); });
      if (independent) {
        dispatch->setAttr(kConcurrentAttrName, UnitAttr::get(&getContext()));
        ++numConcurrent;
      } else {
        group = Access();
        open = roots;
      }
      group.reads.insert(access->reads.begin(), access->reads.end());
      group.writes.insert(access->writes.begin(), access->writes.end());
    }
    return success();
  }
};

struct V4MarkOutputOnlyDispatchesPass
    : public mlir::v4::impl::V4MarkOutputOnlyDispatchesPassBase<
          V4MarkOutputOnlyDispatchesPass> {
  /// Bit i: result i of @step; kAlways: state, a collective or anything
  /// this pass does not follow.
  static constexpr uint64_t kAlways = uint64_t(1) << 63;

  void runOnOperation() override {
    auto fn = getOperation().lookupSymbol<func::FuncOp>("step");
    if (!fn || fn.isExternal() || fn.getNumResults() >= 63)
      return;
    if (failed(markFunction(fn)))
      signalPassFailure();
  }

  LogicalResult markFunction(func::FuncOp fn) {
    Block &body = fn.getBody().front();
    // What each buffer reaches, filled backwards: a dispatch reaches what
    // the buffers it writes reach, and the buffers it reads reach that too.
    DenseMap<Value, uint64_t> reaches;
    // Reaching every result (or none but state): needed by every call.
    const uint64_t every = (uint64_t(1) << fn.getNumResults()) - 1;
    auto reach = [&](Value v, uint64_t m) { reaches[v] |= m; };
    for (Operation &op : llvm::reverse(body)) {
      if (auto ret = dyn_cast<func::ReturnOp>(op)) {
        for (auto [i, v] : llvm::enumerate(ret.getOperands()))
          reach(v, uint64_t(1) << i);
        continue;
      }
      auto dispatch = dyn_cast<PlanDispatchOp>(op);
      if (!dispatch) {
        // A collective keeps every rank in step; another op over buffers
        // (none today) is not followed.
        if (isa<PlanCollectiveOp>(op) ||
            (!isMemoryEffectFree(&op) && !isa<memref::DimOp>(op)))
          for (Value v : op.getOperands())
            if (isa<BaseMemRefType>(v.getType()))
              reach(v, kAlways);
        continue;
      }
      FailureOr<Access> access = accessOf(dispatch);
      if (failed(access))
        return failure();
      uint64_t m = 0;
      for (Value v : access->writes) {
        m |= reaches.lookup(v);
        if (isa<BlockArgument>(v)) // the session's state
          m |= kAlways;
      }
      // A dispatch whose writes reach nothing is kept: not this pass's
      // business.
      if (m == 0)
        m = kAlways;
      for (Value v : dispatch.getBuffers())
        reach(v, m);
      if ((m & kAlways) || m == every)
        continue;
      SmallVector<int64_t> outputs;
      for (unsigned i = 0; i < fn.getNumResults(); ++i)
        if (m & (uint64_t(1) << i))
          outputs.push_back(i);
      dispatch->setAttr(kOnlyForOutputsAttrName,
                        DenseI64ArrayAttr::get(&getContext(), outputs));
      ++numOutputOnly;
    }
    return success();
  }
};

} // namespace
