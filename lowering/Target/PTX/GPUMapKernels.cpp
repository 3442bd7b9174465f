//===- GPUMapKernels.cpp - bufferized kernels -> gpu.func -----------------===//
//
// Pass v4-gpu-map-kernels (lowering/Passes.td): the sm_90a target's mapping
// of every kernel body onto blocks and threads.
//
//===----------------------------------------------------------------------===//
#include "lowering/Dispatch/DispatchFormation.h"
#include "lowering/Passes.h"
#include "lowering/Target/PTX/PTXTarget.h"
#include "lowering/Target/TargetBackend.h"

#include "mlir/Dialect/Arith/IR/ValueBoundsOpInterfaceImpl.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/IR/ValueBoundsOpInterfaceImpl.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/IR/ValueBoundsOpInterfaceImpl.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/Interfaces/DataLayoutInterfaces.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ValueBoundsOpInterface.h"
#include "llvm/Support/MathExtras.h"

namespace mlir::v4 {
#define GEN_PASS_DEF_V4GPUMAPKERNELSPASS
#include "lowering/Passes.h.inc"
} // namespace mlir::v4

using namespace mlir;
using namespace mlir::v4;

namespace {

/// Byte alignment of every workspace region (the CPU's temporaries are
/// 64-byte aligned too).
constexpr uint64_t kWorkspaceAlign = 64;

/// Whether `op` may write memory (or has effects it does not declare).
static bool mayWrite(Operation *op) {
  if (isa<scf::ParallelOp>(op))
    return true;
  if (auto effects = dyn_cast<MemoryEffectOpInterface>(op)) {
    if (effects.hasEffect<MemoryEffects::Write>() ||
        effects.hasEffect<MemoryEffects::Free>())
      return true;
    if (!op->hasTrait<OpTrait::HasRecursiveMemoryEffects>())
      return false;
  } else if (!op->hasTrait<OpTrait::HasRecursiveMemoryEffects>()) {
    return op->getNumRegions() != 0 || !isMemoryEffectFree(op);
  }
  for (Region &r : op->getRegions())
    for (Operation &inner : r.getOps())
      if (mayWrite(&inner))
        return true;
  return false;
}

static bool containsParallel(Operation *op) {
  return op->walk([](scf::ParallelOp) { return WalkResult::interrupt(); })
      .wasInterrupted();
}

//===----------------------------------------------------------------------===//
// Row reductions: one warp per output element
//===----------------------------------------------------------------------===//

/// Lanes of a warp: the butterfly below is for 32.
constexpr int64_t kWarpSize = 32;
/// Bytes a lane loads at once where the layout allows (ld.global.v4.b32).
constexpr int64_t kVectorBytes = 16;
/// The alignment of every buffer's base (runtime/base/KernelABI.h: device
/// allocations, arena views and the workspace are 64-byte aligned, offset
/// 0), and so of every workspace view (kWorkspaceAlign).
constexpr int64_t kBaseAlign = 64;

/// A reduction a warp computes: an output element M[idx] accumulated by a
/// load-combine-store in the innermost of a nest of scf.for loops (the form
/// convert-linalg-to-parallel-loops gives a linalg reduction), where idx does
/// not depend on the nest and nothing else in the loop writes memory.
struct RowReduction {
  /// The reduction loops, outermost first; the lanes stride the innermost.
  SmallVector<scf::ForOp> nest;
  memref::LoadOp accumulator; // M[idx], the one use of which is `combine`
  /// The operand of `combine` that is the running value: `accumulator`, or
  /// the loop's iteration argument in the iter_args form.
  Value running;
  Operation *combine = nullptr;
  memref::StoreOp store; // combine's result into M[idx]
  TypedAttr identity;
  /// Elements a lane takes per step of the innermost loop (1: one), and the
  /// loads along it that become vector loads of `width` elements.
  int64_t width = 1;
  SmallVector<memref::LoadOp> vectorLoads;
};

/// The identity of a combining op the warp reduction knows (f32 only: one
/// shuffle per step). The tree it builds reorders the terms: for max/min
/// the result is the same, for a sum it is within the GPU's tolerance.
static TypedAttr combineIdentity(Operation *op) {
  if (op->getNumResults() != 1 || op->getNumOperands() != 2)
    return {};
  auto type = dyn_cast<Float32Type>(op->getResult(0).getType());
  if (!type)
    return {};
  const llvm::fltSemantics &sem = type.getFloatSemantics();
  if (isa<arith::AddFOp>(op)) // -0 + x == x for every x, -0 included
    return FloatAttr::get(type, llvm::APFloat::getZero(sem, /*Negative=*/true));
  if (isa<arith::MaximumFOp, arith::MaxNumFOp>(op))
    return FloatAttr::get(type, llvm::APFloat::getInf(sem, /*Negative=*/true));
  if (isa<arith::MinimumFOp, arith::MinNumFOp>(op))
    return FloatAttr::get(type, llvm::APFloat::getInf(sem, /*Negative=*/false));
  return {};
}

/// An op a lane may run for itself: no regions, no writes.
static bool isReadOnlyLeaf(Operation *op) {
  return op->getNumRegions() == 0 && !mayWrite(op);
}

/// The buffer a memref value views: through reshapes, subviews and casts,
/// but not through a workspace view (each one its own region).
static Value bufferOf(Value m) {
  while (Operation *def = m.getDefiningOp()) {
    auto view = dyn_cast<ViewLikeOpInterface>(def);
    if (!view || isa<memref::ViewOp>(def))
      break;
    m = view.getViewSource();
  }
  return m;
}

/// Whether `m`'s base address is kBaseAlign-aligned: a kernel buffer or the
/// workspace, a workspace view at an aligned constant offset, or a reshape
/// of one of those (same base, same offset).
static bool hasAlignedBase(Value m) {
  if (auto arg = dyn_cast<BlockArgument>(m))
    return isa<gpu::GPUFuncOp>(arg.getOwner()->getParentOp());
  Operation *def = m.getDefiningOp();
  if (auto view = dyn_cast<memref::ViewOp>(def)) {
    std::optional<int64_t> shift = getConstantIntValue(view.getByteShift());
    return shift && *shift % kBaseAlign == 0 &&
           hasAlignedBase(view.getSource());
  }
  if (isa<memref::ExpandShapeOp, memref::CollapseShapeOp>(def))
    return hasAlignedBase(def->getOperand(0));
  return false;
}

static bool definedOutside(Value v, Operation *op) {
  return !op->isAncestor(v.getParentRegion()->getParentOp());
}

/// Chooses the vector width of `r`: loads along the innermost loop of a
/// plain row-major buffer with an aligned base, whose rows are whole
/// vectors, where the loop covers whole vectors from an aligned start.
static void chooseVectorLoads(RowReduction &r) {
  scf::ForOp inner = r.nest.back();
  std::optional<int64_t> lb = getConstantIntValue(inner.getLowerBound());
  std::optional<int64_t> ub = getConstantIntValue(inner.getUpperBound());
  std::optional<int64_t> step = getConstantIntValue(inner.getStep());
  if (!lb || !ub || !step || *step != 1)
    return;
  Value iv = inner.getInductionVar();
  SmallVector<memref::LoadOp> candidates;
  int64_t width = 1;
  for (auto load : inner.getBody()->getOps<memref::LoadOp>()) {
    if (load == r.accumulator)
      continue;
    MemRefType type = load.getMemRefType();
    ValueRange indices = load.getIndices();
    Type elem = type.getElementType();
    if (indices.empty() || indices.back() != iv ||
        !llvm::all_of(indices.drop_back(),
                      [&](Value v) { return definedOutside(v, inner); }) ||
        !type.getLayout().isIdentity() || type.getMemorySpace() ||
        ShapedType::isDynamic(type.getShape().back()) || !elem.isIntOrFloat() ||
        elem.getIntOrFloatBitWidth() % 8 || !hasAlignedBase(load.getMemRef()))
      continue;
    candidates.push_back(load);
    width = std::max(width, kVectorBytes / (elem.getIntOrFloatBitWidth() / 8));
  }
  if (width == 1 || *lb % width || (*ub - *lb) % width)
    return;
  for (memref::LoadOp load : candidates) {
    MemRefType type = load.getMemRefType();
    int64_t bytes = width * type.getElementTypeBitWidth() / 8;
    if (type.getShape().back() % width == 0 && bytes <= kBaseAlign)
      r.vectorLoads.push_back(load);
  }
  if (!r.vectorLoads.empty())
    r.width = width;
}

/// Whether `loop` (a constant positive step) has enough terms for 32 lanes,
/// or a number known only at run time.
static bool hasWarpOfTerms(scf::ForOp loop) {
  std::optional<int64_t> lb = getConstantIntValue(loop.getLowerBound());
  std::optional<int64_t> ub = getConstantIntValue(loop.getUpperBound());
  std::optional<int64_t> step = getConstantIntValue(loop.getStep());
  if (!step || *step < 1)
    return false;
  return !lb || !ub ||
         llvm::divideCeil(std::max<int64_t>(*ub - *lb, 0), *step) >= kWarpSize;
}

/// Matches the iter_args form in a parallel loop: `loop` = scf.for with one
/// f32 iteration value, accumulated by a known combining op from read-only
/// terms; what follows it in the parallel loop (the epilogue, which stores
/// the result: ops without regions) runs on lane 0.
static std::optional<RowReduction> matchIterReduction(scf::ForOp loop) {
  if (loop.getNumResults() != 1 || containsParallel(loop))
    return std::nullopt;
  Block *body = loop.getBody();
  for (Operation &op : body->without_terminator())
    if (!isReadOnlyLeaf(&op))
      return std::nullopt;
  RowReduction r;
  r.nest.push_back(loop);
  r.running = loop.getRegionIterArgs()[0];
  r.combine = body->getTerminator()->getOperand(0).getDefiningOp();
  if (!r.combine || r.combine->getBlock() != body || !r.combine->hasOneUse() ||
      !r.running.hasOneUse() ||
      r.running.getUses().begin()->getOwner() != r.combine ||
      !(r.identity = combineIdentity(r.combine)))
    return std::nullopt;
  if (!hasWarpOfTerms(loop))
    return std::nullopt;
  chooseVectorLoads(r);
  return r;
}

/// Matches a reduction nest rooted at `outer` inside `scope` (the spread
/// loop, or the nest itself at the top of a kernel): see RowReduction.
static std::optional<RowReduction> matchRowReduction(scf::ForOp outer,
                                                     Operation *scope) {
  RowReduction r;
  // Perfectly nested loops (read-only ops between them), the innermost
  // holding the store.
  for (scf::ForOp level = outer; level;) {
    if (level.getNumResults() != 0)
      return std::nullopt;
    r.nest.push_back(level);
    Block *body = level.getBody();
    auto inner =
        dyn_cast_or_null<scf::ForOp>(body->getTerminator()->getPrevNode());
    for (Operation &op : body->without_terminator())
      if (&op != inner.getOperation() && !isReadOnlyLeaf(&op) &&
          (inner || !isa<memref::StoreOp>(op)))
        return std::nullopt;
    level = inner;
  }
  scf::ForOp inner = r.nest.back();
  Block *body = inner.getBody();
  for (auto store : body->getOps<memref::StoreOp>()) {
    if (r.store)
      return std::nullopt;
    r.store = store;
  }
  if (!r.store || !llvm::all_of(r.store.getIndices(), [&](Value v) {
        return definedOutside(v, outer);
      }))
    return std::nullopt;
  r.combine = r.store.getValueToStore().getDefiningOp();
  if (!r.combine || r.combine->getBlock() != body || !r.combine->hasOneUse() ||
      !(r.identity = combineIdentity(r.combine)))
    return std::nullopt;
  Value out = r.store.getMemRef();
  for (Value operand : r.combine->getOperands()) {
    auto load = operand.getDefiningOp<memref::LoadOp>();
    if (load && load->getBlock() == body && load.getMemRef() == out &&
        load.getIndices() == r.store.getIndices() && load->hasOneUse())
      r.accumulator = load;
  }
  if (!r.accumulator)
    return std::nullopt;
  r.running = r.accumulator.getResult();
  // The output element is private to the reduction: nothing else in the
  // scope touches its buffer (a read of it would see a partial sum).
  Value buffer = bufferOf(out);
  bool alone =
      !scope
           ->walk([&](Operation *op) {
             if (op == r.accumulator || op == r.store || isa<memref::DimOp>(op))
               return WalkResult::advance();
             for (Value v : op->getOperands())
               if (isa<MemRefType>(v.getType()) && bufferOf(v) == buffer)
                 return WalkResult::interrupt();
             return WalkResult::advance();
           })
           .wasInterrupted();
  if (!alone)
    return std::nullopt;
  if (!hasWarpOfTerms(inner))
    return std::nullopt;
  chooseVectorLoads(r);
  return r;
}

//===----------------------------------------------------------------------===//
// Argmax (top-k rounds): one warp per selection
//===----------------------------------------------------------------------===//

/// A selection a warp computes. One scf.for (constant lower bound >= 0,
/// constant positive step) keeps a running pair (value: f32, index: i64) and
/// at each iteration iv takes the candidate (x, j = index_cast(iv)) where
/// `take` holds: value' = select(take, x, value), index' = select(take, j,
/// index). `take` has one of two forms, the CPU's and V4ToLinalg's:
///  - plain (the MoE gate's rounds): x ogt value. From (v0, i0) the loop
///    gives the first (lowest-index) maximum among the candidates greater
///    than v0, or (v0, i0) when there is none; NaN candidates are never
///    taken (and a NaN v0 is never replaced).
///  - guarded (the CSA indexer's rounds): E and (index < 0 or x ogt value),
///    where E (eligibility: after the previous round's pick) does not read
///    the running pair and is false for a NaN x. index < 0 means none yet:
///    the first eligible candidate is taken, then only greater ones, so
///    from (v0, i0 < 0) the result is the first maximum among the eligible
///    candidates (or (v0, i0)); from i0 >= 0 as in the plain form.
/// The running pair is the loop's two iteration arguments, or two elements
/// the loop loads and stores back (the load-store form); nothing else in
/// the loop writes memory and nothing else reads the running pair.
///
/// Why the warp's result is bit-identical to the loop's: lane l folds
/// iterations l, l + 32, ... in ascending order with the loop's own body
/// from the loop's initial pair, so its pair is, by the above, the initial
/// pair or a candidate (x, j) with x not NaN and (plain, or guarded from
/// i0 >= 0) x > v0. On these pairs "a comes first" - a is a candidate and
/// b is the initial pair (guarded from i0 < 0: b is none), or both are
/// candidates with a.x > b.x, or a.x == b.x (+0 == -0) and a.j < b.j - is a
/// strict total order: candidates' indices are distinct, and a candidate
/// never ties the initial pair (strictly greater than v0, or b is none).
/// The loop's result is the first pair in this order over all candidates
/// and the initial pair (a tie in value goes to the LOWER index, as the
/// sequential scan keeps the earlier one on a tie), and so is the first of
/// the lanes' firsts. The butterfly's merge keeps the shuffled pair exactly
/// when it comes first, so after offsets 16, 8, 4, 2, 1 every lane holds
/// the first of all 32 lanes' pairs: the same bits (the pair is copied,
/// never recomputed) on every lane. No arithmetic rounds; the order of the
/// comparisons changes nothing.
struct Argmax {
  scf::ForOp loop;
  Value value, index; // the running pair in the body
  arith::SelectOp selectValue, selectIndex;
  bool guarded = false;
  // The load-store form.
  memref::LoadOp loadValue, loadIndex;
  memref::StoreOp storeValue, storeIndex;
};

/// Whether `e` (an i1) is false when `x` is NaN: an ordered comparison of
/// `x`, a conjunction with one, a disjunction of two.
static bool excludesNaN(Value e, Value x) {
  if (auto cmp = e.getDefiningOp<arith::CmpFOp>()) {
    using P = arith::CmpFPredicate;
    switch (cmp.getPredicate()) {
    case P::OEQ:
    case P::OGT:
    case P::OGE:
    case P::OLT:
    case P::OLE:
    case P::ONE:
    case P::ORD:
      return cmp.getLhs() == x || cmp.getRhs() == x;
    default:
      return false;
    }
  }
  if (auto a = e.getDefiningOp<arith::AndIOp>())
    return excludesNaN(a.getLhs(), x) || excludesNaN(a.getRhs(), x);
  if (auto o = e.getDefiningOp<arith::OrIOp>())
    return excludesNaN(o.getLhs(), x) && excludesNaN(o.getRhs(), x);
  return false;
}

/// Matches the step of `a` (its loop, running pair and selects set): see
/// Argmax.
static bool matchArgmaxStep(Argmax &a) {
  scf::ForOp loop = a.loop;
  Block *body = loop.getBody();
  std::optional<int64_t> lb = getConstantIntValue(loop.getLowerBound());
  if (!lb || *lb < 0 || !hasWarpOfTerms(loop) || containsParallel(loop))
    return false;
  if (!a.value.getType().isF32() || !a.index.getType().isInteger(64))
    return false;
  arith::SelectOp sv = a.selectValue, si = a.selectIndex;
  if (!sv || !si || sv->getBlock() != body || si->getBlock() != body ||
      sv.getCondition() != si.getCondition() || sv.getFalseValue() != a.value ||
      si.getFalseValue() != a.index)
    return false;
  auto cast = si.getTrueValue().getDefiningOp<arith::IndexCastOp>();
  if (!cast || cast.getIn() != loop.getInductionVar())
    return false;
  Value x = sv.getTrueValue();
  auto isGreater = [&](Value c) -> Operation * {
    auto cmp = c.getDefiningOp<arith::CmpFOp>();
    if (!cmp)
      return nullptr;
    using P = arith::CmpFPredicate;
    if ((cmp.getPredicate() == P::OGT && cmp.getLhs() == x &&
         cmp.getRhs() == a.value) ||
        (cmp.getPredicate() == P::OLT && cmp.getLhs() == a.value &&
         cmp.getRhs() == x))
      return cmp;
    return nullptr;
  };
  Value take = sv.getCondition();
  Operation *greater = isGreater(take), *none = nullptr;
  if (!greater) {
    auto conj = take.getDefiningOp<arith::AndIOp>();
    for (unsigned k = 0; conj && k < 2 && !greater; ++k) {
      Value eligible = conj->getOperand(k);
      auto disj = conj->getOperand(1 - k).getDefiningOp<arith::OrIOp>();
      for (unsigned m = 0; disj && m < 2 && !greater; ++m) {
        auto neg = disj->getOperand(m).getDefiningOp<arith::CmpIOp>();
        Operation *gt = isGreater(disj->getOperand(1 - m));
        if (neg && gt && neg.getPredicate() == arith::CmpIPredicate::slt &&
            neg.getLhs() == a.index && isConstantIntValue(neg.getRhs(), 0) &&
            excludesNaN(eligible, x)) {
          greater = gt;
          none = neg;
        }
      }
    }
    if (!greater)
      return false;
    a.guarded = true;
  }
  // Nothing else reads the running pair (E in particular).
  for (Operation *user : a.value.getUsers())
    if (user != greater && user != sv.getOperation())
      return false;
  for (Operation *user : a.index.getUsers())
    if (user != si.getOperation() && user != none)
      return false;
  for (Operation &op : body->without_terminator())
    if (&op != a.storeValue.getOperation() &&
        &op != a.storeIndex.getOperation() && !isReadOnlyLeaf(&op))
      return false;
  return true;
}

/// The iter_args form: `loop` yields (value, index).
static std::optional<Argmax> matchIterArgmax(scf::ForOp loop) {
  if (loop.getNumResults() != 2)
    return std::nullopt;
  Argmax a;
  a.loop = loop;
  a.value = loop.getRegionIterArgs()[0];
  a.index = loop.getRegionIterArgs()[1];
  Operation *yield = loop.getBody()->getTerminator();
  a.selectValue = yield->getOperand(0).getDefiningOp<arith::SelectOp>();
  a.selectIndex = yield->getOperand(1).getDefiningOp<arith::SelectOp>();
  if (!matchArgmaxStep(a))
    return std::nullopt;
  return a;
}

/// The load-store form in `scope` (the spread loop): `loop` loads the pair
/// from two elements and stores it back, and nothing else in the scope
/// touches their buffers.
static std::optional<Argmax> matchStoredArgmax(scf::ForOp loop,
                                               Operation *scope) {
  if (loop.getNumResults() != 0)
    return std::nullopt;
  Argmax a;
  a.loop = loop;
  for (auto store : loop.getBody()->getOps<memref::StoreOp>()) {
    Type t = store.getValueToStore().getType();
    memref::StoreOp &slot = t.isF32() ? a.storeValue : a.storeIndex;
    if (slot)
      return std::nullopt;
    slot = store;
  }
  if (!a.storeValue || !a.storeIndex)
    return std::nullopt;
  a.selectValue =
      a.storeValue.getValueToStore().getDefiningOp<arith::SelectOp>();
  a.selectIndex =
      a.storeIndex.getValueToStore().getDefiningOp<arith::SelectOp>();
  if (!a.selectValue || !a.selectIndex)
    return std::nullopt;
  a.loadValue = a.selectValue.getFalseValue().getDefiningOp<memref::LoadOp>();
  a.loadIndex = a.selectIndex.getFalseValue().getDefiningOp<memref::LoadOp>();
  for (auto [load, store] : {std::pair(a.loadValue, a.storeValue),
                             std::pair(a.loadIndex, a.storeIndex)})
    if (!load || load->getBlock() != loop.getBody() ||
        load.getMemRef() != store.getMemRef() ||
        load.getIndices() != store.getIndices() ||
        !llvm::all_of(store.getIndices(),
                      [&](Value v) { return definedOutside(v, loop); }))
      return std::nullopt;
  a.value = a.loadValue.getResult();
  a.index = a.loadIndex.getResult();
  // The two elements are private to the selection.
  Value values = bufferOf(a.storeValue.getMemRef());
  Value indices = bufferOf(a.storeIndex.getMemRef());
  if (values == indices)
    return std::nullopt;
  Operation *own[] = {a.loadValue, a.loadIndex, a.storeValue, a.storeIndex};
  bool alone = !scope
                    ->walk([&](Operation *op) {
                      if (llvm::is_contained(own, op) || isa<memref::DimOp>(op))
                        return WalkResult::advance();
                      for (Value v : op->getOperands())
                        if (isa<MemRefType>(v.getType()) &&
                            llvm::is_contained({values, indices}, bufferOf(v)))
                          return WalkResult::interrupt();
                      return WalkResult::advance();
                    })
                    .wasInterrupted();
  if (!alone || !matchArgmaxStep(a))
    return std::nullopt;
  return a;
}

/// Maps one kernel function onto a gpu.func.
class KernelMapper {
public:
  KernelMapper(gpu::GPUModuleOp gpuModule, int64_t maxChunk, int64_t block)
      : gpuModule(gpuModule), maxChunk(maxChunk), blockSize(block) {}

  LogicalResult map(func::FuncOp fn);

private:
  LogicalResult placeTemporaries(gpu::GPUFuncOp gfn, bool threaded);
  FailureOr<int64_t> tokenBound(gpu::GPUFuncOp gfn, Operation *temp,
                                Value size);
  Value workspaceView(OpBuilder &b, Location loc, MemRefType type,
                      ValueRange dynSizes, uint64_t bytes);
  LogicalResult distribute(Block &block);
  LogicalResult spread(scf::ParallelOp loop);
  Value iterationCount(OpBuilder &b, Location loc, scf::ParallelOp loop,
                       SmallVectorImpl<Value> &counts);
  void delinearize(OpBuilder &b, Location loc, scf::ParallelOp loop,
                   ArrayRef<Value> counts, Value linear, IRMapping &ivs);
  void warpReduce(scf::ParallelOp loop, RowReduction &r);
  std::pair<Value, Value> argmaxWarp(OpBuilder &b, Location loc, Argmax &a,
                                     IRMapping &map, Value initValue,
                                     Value initIndex, Value lane);
  void warpArgmaxStored(scf::ParallelOp loop, Argmax &a);
  bool warpLoop(scf::ForOp loop);
  Value reduceLevel(OpBuilder &b, Location loc, RowReduction &r, unsigned level,
                    IRMapping &map, Value acc, Value lane);
  LogicalResult onThreadZero(Operation *op);
  /// A barrier at `b`'s insertion point, unless one is just before it.
  void barrier(OpBuilder &b, Location loc) {
    Block::iterator at = b.getInsertionPoint();
    if (at != b.getInsertionBlock()->begin() &&
        isa<gpu::BarrierOp>(*std::prev(at)))
      return;
    gpu::BarrierOp::create(b, loc);
  }

  gpu::GPUModuleOp gpuModule;
  int64_t maxChunk;
  int64_t blockSize;
  // Per kernel.
  Value workspace, threadId, threads;
  uint64_t workspaceBytes = 0;
  std::string kernelName;
};

LogicalResult KernelMapper::map(func::FuncOp fn) {
  kernelName = fn.getSymName().str();
  workspaceBytes = 0;
  auto grid = fn->getAttrOfType<DenseI64ArrayAttr>(kLaunchGridAttrName);
  unsigned buffers = fn.getNumArguments() - (grid ? kLaunchBlockArgs : 0);
  MLIRContext *ctx = fn.getContext();

  SmallVector<Type> types(fn.getArgumentTypes().take_front(buffers));
  types.push_back(
      MemRefType::get({ShapedType::kDynamic}, IntegerType::get(ctx, 8)));
  OpBuilder mb = OpBuilder::atBlockEnd(gpuModule.getBody());
  auto gfn = gpu::GPUFuncOp::create(mb, fn.getLoc(), fn.getSymName(),
                                    FunctionType::get(ctx, types, {}));
  gfn->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), UnitAttr::get(ctx));
  for (NamedAttribute a : fn->getAttrs())
    if (a.getName().strref().starts_with("v4."))
      gfn->setAttr(a.getName(), a.getValue());
  int32_t threadsPerBlock = grid ? 1 : static_cast<int32_t>(blockSize);
  auto blockAttr = DenseI32ArrayAttr::get(ctx, {threadsPerBlock, 1, 1});
  gfn.setKnownBlockSizeAttr(blockAttr);
  gfn->setAttr(kBlockSizeAttrName, blockAttr);
  // One block per SM is enough: without it ptxas caps the registers of a
  // 256-thread block for full occupancy, and spills.
  if (!grid)
    gfn->setAttr(NVVM::NVVMDialect::getMinctasmAttrName(),
                 IntegerAttr::get(IntegerType::get(ctx, 32), 1));

  Block &entry = gfn.getBody().front();
  Block &src = fn.getBody().front();
  workspace = entry.getArgument(buffers);
  auto b = ImplicitLocOpBuilder::atBlockBegin(fn.getLoc(), &entry);
  for (unsigned i = 0; i < buffers; ++i)
    src.getArgument(i).replaceAllUsesWith(entry.getArgument(i));
  if (grid) {
    // The launch block of runtime/base/KernelABI.h: x, y, z, then the grid.
    gpu::Dimension dims[] = {gpu::Dimension::x, gpu::Dimension::y,
                             gpu::Dimension::z};
    for (unsigned d = 0; d < 3; ++d) {
      src.getArgument(buffers + d)
          .replaceAllUsesWith(gpu::BlockIdOp::create(b, dims[d]));
      src.getArgument(buffers + 3 + d)
          .replaceAllUsesWith(gpu::GridDimOp::create(b, dims[d]));
    }
  } else {
    threadId = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
    threads = arith::ConstantIndexOp::create(b, blockSize);
  }
  entry.getOperations().splice(entry.end(), src.getOperations());
  Operation *ret = entry.getTerminator();
  b.setInsertionPoint(ret);
  gpu::ReturnOp::create(b);
  ret->erase();
  fn.erase();

  if (failed(placeTemporaries(gfn, !grid)))
    return failure();
  if (!grid && failed(distribute(entry)))
    return failure();
  gfn->setAttr(kWorkspaceBytesAttrName,
               IntegerAttr::get(IntegerType::get(ctx, 64), workspaceBytes));
  return success();
}

/// The most `size` (an index operand of a temporary) can be, from the
/// upstream value-bounds analysis in terms of the kernel's arguments: their
/// only dynamic dim is the token count, at most the kernels module's max
/// chunk.
FailureOr<int64_t> KernelMapper::tokenBound(gpu::GPUFuncOp gfn, Operation *temp,
                                            Value size) {
  if (std::optional<int64_t> c = getConstantIntValue(size))
    return *c;
  auto isArgument = [&](Value v, std::optional<int64_t> dim,
                        ValueBoundsConstraintSet &) {
    auto arg = dyn_cast<BlockArgument>(v);
    return arg && dim && arg.getOwner()->getParentOp() == gfn.getOperation();
  };
  AffineMap map;
  ValueDimList operands;
  if (succeeded(ValueBoundsConstraintSet::computeBound(
          map, operands, presburger::BoundType::UB, size, isArgument,
          /*closedUB=*/true)) &&
      map.getNumResults() == 1) {
    SmallVector<Attribute> values;
    Builder b(gfn.getContext());
    for (auto &[v, dim] : operands) {
      auto type = cast<MemRefType>(v.getType());
      values.push_back(b.getIndexAttr(
          type.isDynamicDim(*dim) ? maxChunk : type.getDimSize(*dim)));
    }
    SmallVector<Attribute> folded;
    if (succeeded(map.constantFold(values, folded)) && folded.size() == 1)
      if (auto bound = dyn_cast_or_null<IntegerAttr>(folded[0]))
        return bound.getInt();
  }
  return temp->emitError()
         << "kernel '" << kernelName
         << "': a temporary's size has no bound in terms of the token count, "
            "so the sm_90a target cannot size its workspace";
}

Value KernelMapper::workspaceView(OpBuilder &b, Location loc, MemRefType type,
                                  ValueRange dynSizes, uint64_t bytes) {
  uint64_t offset = llvm::alignTo(workspaceBytes, kWorkspaceAlign);
  workspaceBytes = offset + bytes;
  Value shift = arith::ConstantIndexOp::create(b, loc, offset);
  auto viewType = MemRefType::get(type.getShape(), type.getElementType());
  return memref::ViewOp::create(b, loc, viewType, workspace, shift, dynSizes);
}

LogicalResult KernelMapper::placeTemporaries(gpu::GPUFuncOp gfn,
                                             bool threaded) {
  SmallVector<Operation *> temps;
  gfn.walk([&](Operation *op) {
    if (isa<memref::AllocOp, memref::AllocaOp>(op))
      temps.push_back(op);
  });
  DataLayout layout = DataLayout::closest(gfn);
  for (Operation *op : temps) {
    auto type = cast<MemRefType>(op->getResult(0).getType());
    bool inParallel = op->getParentOfType<scf::ParallelOp>() != nullptr;
    // A thread's own temporary: on the stack.
    if (!threaded || inParallel) {
      if (isa<memref::AllocaOp>(op))
        continue;
      if (!type.hasStaticShape())
        return op->emitError()
               << "kernel '" << kernelName
               << "': a per-thread temporary of dynamic size " << type;
      OpBuilder b(op);
      Value a = memref::AllocaOp::create(b, op->getLoc(), type);
      op->getResult(0).replaceAllUsesWith(a);
      op->erase();
      continue;
    }
    if (!type.getLayout().isIdentity() || type.getMemorySpace())
      return op->emitError()
             << "kernel '" << kernelName << "': a temporary of type " << type
             << " is not a plain row-major buffer";
    uint64_t bytes = layout.getTypeSize(type.getElementType());
    auto dynSizes = op->getOperands();
    unsigned next = 0;
    for (int64_t d : type.getShape()) {
      if (!ShapedType::isDynamic(d)) {
        bytes *= d;
        continue;
      }
      FailureOr<int64_t> bound = tokenBound(gfn, op, dynSizes[next++]);
      if (failed(bound))
        return failure();
      bytes *= *bound;
    }
    for (Operation *user : op->getUsers())
      if (isa<memref::DeallocOp>(user))
        user->erase();
    OpBuilder b(op);
    Value view = workspaceView(b, op->getLoc(), type, dynSizes, bytes);
    op->getResult(0).replaceAllUsesWith(view);
    op->erase();
  }
  return success();
}

/// Spreads the phases of `block` (uniform control flow) over the threads.
LogicalResult KernelMapper::distribute(Block &block) {
  for (Operation &op : llvm::make_early_inc_range(block)) {
    if (auto loop = dyn_cast<scf::ParallelOp>(op)) {
      if (failed(spread(loop)))
        return failure();
      continue;
    }
    if (containsParallel(&op)) {
      // Uniform control flow around parallel loops: every thread runs it.
      if (!isa<scf::ForOp, scf::IfOp, scf::ExecuteRegionOp>(op))
        return op.emitError()
               << "kernel '" << kernelName << "': parallel loops inside '"
               << op.getName() << "' cannot be spread over threads";
      for (Region &r : op.getRegions())
        for (Block &inner : r)
          if (failed(distribute(inner)))
            return failure();
      continue;
    }
    if (op.hasTrait<OpTrait::IsTerminator>() || isa<gpu::BarrierOp>(op) ||
        !mayWrite(&op))
      continue; // every thread computes the same values
    // A reduction into one element: one warp.
    if (auto nest = dyn_cast<scf::ForOp>(op);
        nest && blockSize % kWarpSize == 0)
      if (std::optional<RowReduction> r = matchRowReduction(nest, nest)) {
        warpReduce(nullptr, *r);
        continue;
      }
    // Rounds of selections (a top-k) in a loop: warps.
    if (auto loop = dyn_cast<scf::ForOp>(op); loop && warpLoop(loop))
      continue;
    if (failed(onThreadZero(&op)))
      return failure();
  }
  return success();
}

/// The number of iterations of `loop` (and of each of its dims in `counts`).
Value KernelMapper::iterationCount(OpBuilder &b, Location loc,
                                   scf::ParallelOp loop,
                                   SmallVectorImpl<Value> &counts) {
  Value total = arith::ConstantIndexOp::create(b, loc, 1);
  for (unsigned i = 0; i < loop.getNumLoops(); ++i) {
    Value span = b.createOrFold<arith::SubIOp>(loc, loop.getUpperBound()[i],
                                               loop.getLowerBound()[i]);
    Value n = b.createOrFold<arith::CeilDivSIOp>(loc, span, loop.getStep()[i]);
    counts.push_back(n);
    total = b.createOrFold<arith::MulIOp>(loc, total, n);
  }
  return total;
}

/// Maps `loop`'s induction variables to the iteration `linear` of its
/// linearised space, the last dim fastest.
void KernelMapper::delinearize(OpBuilder &b, Location loc, scf::ParallelOp loop,
                               ArrayRef<Value> counts, Value linear,
                               IRMapping &ivs) {
  Value rest = linear;
  for (unsigned i = loop.getNumLoops(); i-- > 0;) {
    Value idx = rest;
    if (i > 0) {
      idx = b.createOrFold<arith::RemSIOp>(loc, rest, counts[i]);
      rest = b.createOrFold<arith::DivSIOp>(loc, rest, counts[i]);
    }
    Value scaled = b.createOrFold<arith::MulIOp>(loc, idx, loop.getStep()[i]);
    ivs.map(
        loop.getInductionVars()[i],
        b.createOrFold<arith::AddIOp>(loc, loop.getLowerBound()[i], scaled));
  }
}

/// Replaces `loop` by a loop of each thread over its share of the
/// linearised iterations, between barriers; a row reduction by a loop of
/// each warp over its share of the output elements.
LogicalResult KernelMapper::spread(scf::ParallelOp loop) {
  if (loop.getNumResults() != 0)
    return loop.emitError()
           << "kernel '" << kernelName << "': a parallel loop with reductions";
  if (blockSize % kWarpSize == 0) {
    Operation *last = loop.getBody()->getTerminator()->getPrevNode();
    auto nest = dyn_cast_or_null<scf::ForOp>(last);
    if (nest &&
        llvm::all_of(loop.getBody()->without_terminator(), [&](Operation &op) {
          return &op == last || isReadOnlyLeaf(&op);
        })) {
      if (std::optional<RowReduction> r = matchRowReduction(nest, loop)) {
        warpReduce(loop, *r);
        return success();
      }
      if (std::optional<Argmax> a = matchStoredArgmax(nest, loop)) {
        warpArgmaxStored(loop, *a);
        return success();
      }
    }
    // The iter_args form: read-only ops, the loop, an epilogue.
    for (Operation &op : loop.getBody()->without_terminator()) {
      if (isReadOnlyLeaf(&op))
        continue;
      auto reduction = dyn_cast<scf::ForOp>(op);
      if (!reduction)
        break;
      // A short epilogue (no loops: one lane runs it).
      bool epilogue = llvm::all_of(
          llvm::make_range(std::next(op.getIterator()),
                           loop.getBody()->getTerminator()->getIterator()),
          [](Operation &next) { return next.getNumRegions() == 0; });
      if (epilogue)
        if (std::optional<RowReduction> r = matchIterReduction(reduction)) {
          warpReduce(loop, *r);
          return success();
        }
      break;
    }
  }
  Location loc = loop.getLoc();
  OpBuilder b(loop);
  barrier(b, loc);
  SmallVector<Value> counts;
  Value total = iterationCount(b, loc, loop, counts);
  auto forOp = scf::ForOp::create(b, loc, threadId, total, threads);
  OpBuilder ib = OpBuilder::atBlockBegin(forOp.getBody());
  IRMapping ivs;
  delinearize(ib, loc, loop, counts, forOp.getInductionVar(), ivs);
  for (Operation &op : loop.getBody()->without_terminator())
    ib.clone(op, ivs);
  b.setInsertionPointAfter(forOp);
  barrier(b, loc);
  loop.erase();
  return success();
}

/// One level of `r`'s nest for one lane, accumulating into `acc` from the
/// combining op's identity: the outer levels as they are, the innermost
/// strided over the lanes (lane l takes terms l, l + 32, ... or, with
/// vector loads of w elements, w consecutive terms from w * l, then
/// w * (l + 32), ..., combined in order), so that a warp's loads are
/// consecutive.
Value KernelMapper::reduceLevel(OpBuilder &b, Location loc, RowReduction &r,
                                unsigned level, IRMapping &map, Value acc,
                                Value lane) {
  scf::ForOp src = r.nest[level];
  Value lb = map.lookupOrDefault(src.getLowerBound());
  Value ub = map.lookupOrDefault(src.getUpperBound());
  Value step = map.lookupOrDefault(src.getStep());
  bool innermost = level + 1 == r.nest.size();
  if (innermost) {
    Value width = arith::ConstantIndexOp::create(b, loc, r.width);
    Value lanes = arith::ConstantIndexOp::create(b, loc, r.width * kWarpSize);
    Value perLane = b.createOrFold<arith::MulIOp>(loc, step, width);
    lb = b.createOrFold<arith::AddIOp>(
        loc, lb, b.createOrFold<arith::MulIOp>(loc, lane, perLane));
    step = b.createOrFold<arith::MulIOp>(loc, step, lanes);
  }
  auto loop = scf::ForOp::create(
      b, loc, lb, ub, step, ValueRange{acc},
      [&](OpBuilder &fb, Location floc, Value iv, ValueRange args) {
        Value sum = args[0];
        if (!innermost) {
          map.map(src.getInductionVar(), iv);
          for (Operation &op : src.getBody()->without_terminator()) {
            if (&op == r.nest[level + 1].getOperation())
              break;
            fb.clone(op, map);
          }
          sum = reduceLevel(fb, floc, r, level + 1, map, sum, lane);
          scf::YieldOp::create(fb, floc, sum);
          return;
        }
        // Aligned vector loads of `width` elements from `iv` (see
        // chooseVectorLoads), then the body once per element.
        SmallVector<Value> vectors;
        for (memref::LoadOp load : r.vectorLoads) {
          SmallVector<Value> indices;
          for (Value i : load.getIndices().drop_back())
            indices.push_back(map.lookupOrDefault(i));
          indices.push_back(iv);
          Type elem = load.getMemRefType().getElementType();
          vectors.push_back(vector::LoadOp::create(
              fb, floc, VectorType::get({r.width}, elem), load.getMemRef(),
              indices, /*nontemporal=*/false,
              llvm::Align(r.width * elem.getIntOrFloatBitWidth() / 8)));
        }
        for (int64_t u = 0; u < r.width; ++u) {
          IRMapping body = map;
          Value k = iv;
          if (u > 0)
            k = arith::AddIOp::create(
                fb, floc, iv, arith::ConstantIndexOp::create(fb, floc, u));
          body.map(src.getInductionVar(), k);
          for (auto [load, vec] : llvm::zip(r.vectorLoads, vectors))
            body.map(load.getResult(),
                     vector::ExtractOp::create(fb, floc, vec, u).getResult());
          body.map(r.running, sum);
          for (Operation &op : src.getBody()->without_terminator()) {
            if (&op == r.accumulator.getOperation() ||
                &op == r.store.getOperation() ||
                llvm::any_of(r.vectorLoads, [&](memref::LoadOp load) {
                  return load.getOperation() == &op;
                }))
              continue;
            fb.clone(op, body);
          }
          sum = body.lookup(r.combine->getResult(0));
        }
        scf::YieldOp::create(fb, floc, sum);
      });
  return loop.getResult(0);
}

/// `r` (in `loop`, or at the top of the kernel when `loop` is null) as warp
/// reductions between barriers: warp w of the block takes output elements
/// w, w + 8, ... (the linearised iterations of `loop`); its lanes combine
/// their shares of the terms (reduceLevel), a butterfly of shuffles
/// (offsets 16, 8, 4, 2, 1) combines the 32 partials, and lane 0 combines
/// the output element's initial value with the result and stores it.
void KernelMapper::warpReduce(scf::ParallelOp loop, RowReduction &r) {
  Operation *old = loop ? loop.getOperation() : r.nest.front().getOperation();
  Location loc = old->getLoc();
  OpBuilder b(old);
  barrier(b, loc);
  SmallVector<Value> counts;
  Value total = loop ? iterationCount(b, loc, loop, counts)
                     : arith::ConstantIndexOp::create(b, loc, 1);
  Value warpSize = arith::ConstantIndexOp::create(b, loc, kWarpSize);
  Value lane = arith::RemUIOp::create(b, loc, threadId, warpSize);
  Value warp = arith::DivUIOp::create(b, loc, threadId, warpSize);
  Value warps = arith::ConstantIndexOp::create(b, loc, blockSize / kWarpSize);
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value identity = arith::ConstantOp::create(b, loc, r.identity);
  Value width = arith::ConstantIntOp::create(b, loc, kWarpSize, 32);
  llvm::SmallDenseMap<int64_t, Value> offsets;
  for (int64_t offset = kWarpSize / 2; offset >= 1; offset /= 2)
    offsets[offset] = arith::ConstantIntOp::create(b, loc, offset, 32);
  auto forOp = scf::ForOp::create(b, loc, warp, total, warps);
  OpBuilder ib = OpBuilder::atBlockBegin(forOp.getBody());
  IRMapping map;
  if (loop) {
    delinearize(ib, loc, loop, counts, forOp.getInductionVar(), map);
    for (Operation &op : loop.getBody()->without_terminator()) {
      if (&op == r.nest.front().getOperation())
        break;
      ib.clone(op, map);
    }
  }
  auto combine = [&](OpBuilder &cb, Value acc, Value term) {
    IRMapping m;
    for (Value operand : r.combine->getOperands())
      m.map(operand, operand == r.running ? acc : term);
    return cb.clone(*r.combine, m)->getResult(0);
  };
  Value partial = reduceLevel(ib, loc, r, 0, map, identity, lane);
  for (int64_t offset = kWarpSize / 2; offset >= 1; offset /= 2) {
    auto shuffle = gpu::ShuffleOp::create(ib, loc, partial, offsets[offset],
                                          width, gpu::ShuffleMode::XOR);
    partial = combine(ib, partial, shuffle.getShuffleResult());
  }
  Value first =
      arith::CmpIOp::create(ib, loc, arith::CmpIPredicate::eq, lane, zero);
  auto ifOp = scf::IfOp::create(ib, loc, first, /*withElseRegion=*/false);
  OpBuilder tb = OpBuilder::atBlockBegin(ifOp.thenBlock());
  if (!r.store) {
    // The iter_args form: the loop's value from its initial one and the
    // warp's, then the epilogue on lane 0.
    scf::ForOp reduction = r.nest.front();
    Value init = map.lookupOrDefault(reduction.getInitArgs()[0]);
    map.map(reduction.getResult(0), combine(tb, init, partial));
    for (Operation &op :
         llvm::make_range(std::next(reduction->getIterator()),
                          loop.getBody()->getTerminator()->getIterator()))
      tb.clone(op, map);
    b.setInsertionPointAfter(forOp);
    barrier(b, loc);
    old->erase();
    return;
  }
  SmallVector<Value> indices;
  for (Value i : r.store.getIndices())
    indices.push_back(map.lookupOrDefault(i));
  Value out = r.store.getMemRef();
  Value init = memref::LoadOp::create(tb, loc, out, indices);
  memref::StoreOp::create(tb, loc, combine(tb, init, partial), out, indices);
  b.setInsertionPointAfter(forOp);
  barrier(b, loc);
  old->erase();
}

/// The lanes' folds of `a` (lane l takes iterations l, l + 32, ... in order,
/// with the loop's body, from (initValue, initIndex)), then a butterfly of
/// shuffles of both the value and the index whose merge keeps the pair that
/// comes first (see Argmax): the selection, the same on every lane.
std::pair<Value, Value> KernelMapper::argmaxWarp(OpBuilder &b, Location loc,
                                                 Argmax &a, IRMapping &map,
                                                 Value initValue,
                                                 Value initIndex, Value lane) {
  scf::ForOp src = a.loop;
  Value step = map.lookupOrDefault(src.getStep());
  Value lanes = arith::ConstantIndexOp::create(b, loc, kWarpSize);
  Value lb = b.createOrFold<arith::AddIOp>(
      loc, map.lookupOrDefault(src.getLowerBound()),
      b.createOrFold<arith::MulIOp>(loc, lane, step));
  auto fold = scf::ForOp::create(
      b, loc, lb, map.lookupOrDefault(src.getUpperBound()),
      b.createOrFold<arith::MulIOp>(loc, step, lanes),
      ValueRange{initValue, initIndex},
      [&](OpBuilder &fb, Location floc, Value iv, ValueRange args) {
        IRMapping body = map;
        body.map(src.getInductionVar(), iv);
        body.map(a.value, args[0]);
        body.map(a.index, args[1]);
        Operation *skip[] = {a.loadValue, a.loadIndex, a.storeValue,
                             a.storeIndex};
        for (Operation &op : src.getBody()->without_terminator())
          if (!llvm::is_contained(skip, &op))
            fb.clone(op, body);
        scf::YieldOp::create(
            fb, floc,
            ValueRange{body.lookup(a.selectValue.getResult()),
                       body.lookup(a.selectIndex.getResult())});
      });
  Value value = fold.getResult(0), index = fold.getResult(1);
  Value width = arith::ConstantIntOp::create(b, loc, kWarpSize, 32);
  Value zero = arith::ConstantIntOp::create(b, loc, 0, 64);
  for (int64_t offset = kWarpSize / 2; offset >= 1; offset /= 2) {
    Value off = arith::ConstantIntOp::create(b, loc, offset, 32);
    Value otherValue =
        gpu::ShuffleOp::create(b, loc, value, off, width, gpu::ShuffleMode::XOR)
            .getShuffleResult();
    Value otherIndex =
        gpu::ShuffleOp::create(b, loc, index, off, width, gpu::ShuffleMode::XOR)
            .getShuffleResult();
    // other comes first: greater, or equal (+0 == -0) at a lower index; in
    // the guarded form a candidate (index >= 0) before none.
    using FP = arith::CmpFPredicate;
    using IP = arith::CmpIPredicate;
    Value greater = arith::CmpFOp::create(b, loc, FP::OGT, otherValue, value);
    Value equal = arith::CmpFOp::create(b, loc, FP::OEQ, otherValue, value);
    Value lower = arith::CmpIOp::create(b, loc, IP::slt, otherIndex, index);
    Value first = arith::OrIOp::create(
        b, loc, greater, arith::AndIOp::create(b, loc, equal, lower));
    if (a.guarded) {
      Value candidate =
          arith::CmpIOp::create(b, loc, IP::sge, otherIndex, zero);
      Value none = arith::CmpIOp::create(b, loc, IP::slt, index, zero);
      first = arith::AndIOp::create(b, loc, candidate,
                                    arith::OrIOp::create(b, loc, none, first));
    }
    value = arith::SelectOp::create(b, loc, first, otherValue, value);
    index = arith::SelectOp::create(b, loc, first, otherIndex, index);
  }
  return {value, index};
}

/// `a` (the load-store form, the last op of `loop`) as warp selections
/// between barriers: warp w takes the output elements w, w + 8, ... (the
/// linearised iterations of `loop`); every lane reads the initial pair,
/// the warp selects (argmaxWarp), and lane 0 stores the pair.
void KernelMapper::warpArgmaxStored(scf::ParallelOp loop, Argmax &a) {
  Location loc = loop.getLoc();
  OpBuilder b(loop);
  barrier(b, loc);
  SmallVector<Value> counts;
  Value total = iterationCount(b, loc, loop, counts);
  Value warpSize = arith::ConstantIndexOp::create(b, loc, kWarpSize);
  Value lane = arith::RemUIOp::create(b, loc, threadId, warpSize);
  Value warp = arith::DivUIOp::create(b, loc, threadId, warpSize);
  Value warps = arith::ConstantIndexOp::create(b, loc, blockSize / kWarpSize);
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  auto forOp = scf::ForOp::create(b, loc, warp, total, warps);
  OpBuilder ib = OpBuilder::atBlockBegin(forOp.getBody());
  IRMapping map;
  delinearize(ib, loc, loop, counts, forOp.getInductionVar(), map);
  for (Operation &op : loop.getBody()->without_terminator()) {
    if (&op == a.loop.getOperation())
      break;
    ib.clone(op, map);
  }
  // Every lane reads the pair before the shuffles; lane 0 writes it after
  // them (each element is one warp's).
  Value initValue = ib.clone(*a.loadValue, map)->getResult(0);
  Value initIndex = ib.clone(*a.loadIndex, map)->getResult(0);
  auto [value, index] = argmaxWarp(ib, loc, a, map, initValue, initIndex, lane);
  Value first =
      arith::CmpIOp::create(ib, loc, arith::CmpIPredicate::eq, lane, zero);
  auto ifOp = scf::IfOp::create(ib, loc, first, /*withElseRegion=*/false);
  OpBuilder tb = OpBuilder::atBlockBegin(ifOp.thenBlock());
  map.map(a.selectValue.getResult(), value);
  map.map(a.selectIndex.getResult(), index);
  tb.clone(*a.storeValue, map);
  tb.clone(*a.storeIndex, map);
  b.setInsertionPointAfter(forOp);
  barrier(b, loc);
  loop.erase();
}

/// A loop outside any parallel loop that holds warp selections (the CSA
/// indexer's token loop: rounds of selections, each storing its pick) runs
/// on warps instead of thread 0. Its lanes run it together - the values are
/// the same on every lane, as it reads no memory it writes - the
/// selections as warps (argmaxWarp) and its stores on lane 0. Where every
/// store puts the loop's induction variable at the same position of the
/// same buffer (an identity layout: distinct iterations, distinct
/// elements), the iterations are independent and warp w takes iterations
/// w, w + 8, ...; otherwise warp 0 runs the loop. False (and `loop`
/// untouched) unless it has this form.
bool KernelMapper::warpLoop(scf::ForOp loop) {
  if (loop.getNumResults() != 0 || blockSize % kWarpSize)
    return false;
  SmallVector<Argmax> selections;
  SmallVector<memref::StoreOp> stores;
  bool ok = true;
  loop->walk<WalkOrder::PreOrder>([&](Operation *op) {
    if (op == loop.getOperation())
      return WalkResult::advance();
    if (auto inner = dyn_cast<scf::ForOp>(op)) {
      if (std::optional<Argmax> a = matchIterArgmax(inner)) {
        selections.push_back(*a);
        return WalkResult::skip();
      }
      return WalkResult::advance();
    }
    if (isa<scf::IfOp, scf::YieldOp>(op))
      return WalkResult::advance();
    if (auto store = dyn_cast<memref::StoreOp>(op)) {
      stores.push_back(store);
      return WalkResult::advance();
    }
    if (!isReadOnlyLeaf(op) || isa<memref::AllocaOp, memref::AllocOp>(op)) {
      ok = false;
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  if (!ok || selections.empty())
    return false;
  // No op but the stores touches a buffer the loop writes.
  llvm::SmallDenseMap<Value, std::pair<Value, int64_t>> written;
  bool independent = true;
  Value iv = loop.getInductionVar();
  for (memref::StoreOp store : stores) {
    Value m = store.getMemRef();
    if (!definedOutside(m, loop))
      return false;
    int64_t at = -1;
    for (auto [d, i] : llvm::enumerate(store.getIndices()))
      if (i == iv)
        at = d;
    auto [it, inserted] = written.try_emplace(bufferOf(m), m, at);
    if (at < 0 || !store.getMemRefType().getLayout().isIdentity() ||
        (!inserted && it->second != std::pair(m, at)))
      independent = false;
  }
  bool alone =
      !loop->walk([&](Operation *op) {
             if (isa<memref::StoreOp, memref::DimOp>(op))
               return WalkResult::advance();
             for (Value v : op->getOperands())
               if (isa<MemRefType>(v.getType()) && written.count(bufferOf(v)))
                 return WalkResult::interrupt();
             return WalkResult::advance();
           })
           .wasInterrupted();
  if (!alone)
    return false;

  Location loc = loop.getLoc();
  OpBuilder b(loop);
  barrier(b, loc);
  Value warpSize = arith::ConstantIndexOp::create(b, loc, kWarpSize);
  Value lane = arith::RemUIOp::create(b, loc, threadId, warpSize);
  Value warp = arith::DivUIOp::create(b, loc, threadId, warpSize);
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value first =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, lane, zero);
  if (independent) {
    Value warps = arith::ConstantIndexOp::create(b, loc, blockSize / kWarpSize);
    Value step = loop.getStep();
    loop.setLowerBound(b.createOrFold<arith::AddIOp>(
        loc, loop.getLowerBound(),
        b.createOrFold<arith::MulIOp>(loc, warp, step)));
    loop.setStep(b.createOrFold<arith::MulIOp>(loc, step, warps));
  } else {
    Value warp0 =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, warp, zero);
    auto ifOp = scf::IfOp::create(b, loc, warp0, /*withElseRegion=*/false);
    loop->moveBefore(ifOp.thenBlock()->getTerminator());
  }
  for (Argmax &a : selections) {
    OpBuilder sb(a.loop);
    IRMapping map;
    auto [value, index] = argmaxWarp(sb, loc, a, map, a.loop.getInitArgs()[0],
                                     a.loop.getInitArgs()[1], lane);
    a.loop.getResult(0).replaceAllUsesWith(value);
    a.loop.getResult(1).replaceAllUsesWith(index);
    a.loop.erase();
  }
  for (memref::StoreOp store : stores) {
    OpBuilder sb(store);
    auto ifOp = scf::IfOp::create(sb, loc, first, /*withElseRegion=*/false);
    store->moveBefore(ifOp.thenBlock()->getTerminator());
  }
  b.setInsertionPointAfter(independent ? loop.getOperation()
                                       : loop->getParentOp());
  barrier(b, loc);
  return true;
}

/// Runs `op` on thread 0 between barriers; its results reach every thread
/// through workspace slots.
LogicalResult KernelMapper::onThreadZero(Operation *op) {
  Location loc = op->getLoc();
  OpBuilder b(op);
  barrier(b, loc);
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value first =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, threadId, zero);
  SmallVector<Value> slots;
  DataLayout layout = DataLayout::closest(op);
  for (Value r : op->getResults()) {
    Type t = r.getType();
    if (!t.isIntOrIndexOrFloat())
      return op->emitError()
             << "kernel '" << kernelName << "': a result of type " << t
             << " cannot be shared between threads";
    slots.push_back(workspaceView(b, loc, MemRefType::get({1}, t), {},
                                  layout.getTypeSize(t)));
  }
  auto ifOp = scf::IfOp::create(b, loc, first, /*withElseRegion=*/false);
  Block *then = ifOp.thenBlock();
  op->moveBefore(then->getTerminator());
  b.setInsertionPoint(then->getTerminator());
  for (auto [r, slot] : llvm::zip(op->getResults(), slots))
    memref::StoreOp::create(b, loc, r, slot, ValueRange{zero});
  b.setInsertionPointAfter(ifOp);
  barrier(b, loc);
  for (auto [r, slot] : llvm::zip(op->getResults(), slots)) {
    Value shared = memref::LoadOp::create(b, loc, slot, ValueRange{zero});
    r.replaceUsesWithIf(shared, [&](OpOperand &use) {
      return !ifOp->isProperAncestor(use.getOwner());
    });
  }
  return success();
}

/// memref.copy as a parallel loop of loads and stores (the GPU has no
/// memrefCopy).
static void expandCopy(memref::CopyOp copy) {
  auto type = cast<MemRefType>(copy.getTarget().getType());
  Location loc = copy.getLoc();
  OpBuilder b(copy);
  SmallVector<Value> lbs, ubs, steps;
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  for (int64_t d = 0; d < type.getRank(); ++d) {
    lbs.push_back(zero);
    steps.push_back(one);
    ubs.push_back(memref::DimOp::create(b, loc, copy.getTarget(), d));
  }
  Value src = copy.getSource(), dst = copy.getTarget();
  if (type.getRank() == 0) {
    Value v = memref::LoadOp::create(b, loc, src, ValueRange{});
    memref::StoreOp::create(b, loc, v, dst, ValueRange{});
  } else {
    scf::ParallelOp::create(b, loc, lbs, ubs, steps,
                            [&](OpBuilder &nb, Location nloc, ValueRange ivs) {
                              Value v =
                                  memref::LoadOp::create(nb, nloc, src, ivs);
                              memref::StoreOp::create(nb, nloc, v, dst, ivs);
                            });
  }
  copy.erase();
}

struct V4GPUMapKernelsPass
    : public mlir::v4::impl::V4GPUMapKernelsPassBase<V4GPUMapKernelsPass> {
  using Base::Base;

  void getDependentDialects(DialectRegistry &registry) const override {
    Base::getDependentDialects(registry);
    arith::registerValueBoundsOpInterfaceExternalModels(registry);
    memref::registerValueBoundsOpInterfaceExternalModels(registry);
    scf::registerValueBoundsOpInterfaceExternalModels(registry);
  }

  void runOnOperation() override {
    ModuleOp kernels = getOperation();
    MLIRContext *ctx = &getContext();
    auto bound = kernels->getAttrOfType<IntegerAttr>(kMaxChunkAttrName);
    if (!bound || bound.getInt() < 1) {
      kernels.emitError() << "the kernels module has no " << kMaxChunkAttrName
                          << " (dispatch formation records the token bound)";
      return signalPassFailure();
    }
    if (blockSize < 1 || blockSize > 1024) {
      kernels.emitError() << "block-size " << blockSize
                          << " is outside [1, 1024]";
      return signalPassFailure();
    }
    SmallVector<memref::CopyOp> copies;
    kernels.walk([&](memref::CopyOp c) { copies.push_back(c); });
    for (memref::CopyOp c : copies)
      expandCopy(c);

    kernels->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                     UnitAttr::get(ctx));
    OpBuilder b = OpBuilder::atBlockEnd(kernels.getBody());
    auto gpuModule =
        gpu::GPUModuleOp::create(b, kernels.getLoc(), kGPUModuleName);
    SmallVector<func::FuncOp> kernelFns;
    for (Operation &op : llvm::make_early_inc_range(*kernels.getBody())) {
      if (&op == gpuModule.getOperation())
        continue;
      auto fn = dyn_cast<func::FuncOp>(op);
      if (fn && fn->hasAttr("v4.kernel") && !fn.isExternal()) {
        kernelFns.push_back(fn);
        continue;
      }
      // Bodies, helpers and constants: device code and device globals.
      op.moveBefore(gpuModule.getBody(), gpuModule.getBody()->end());
    }
    KernelMapper mapper(gpuModule, bound.getInt(), blockSize);
    for (func::FuncOp fn : kernelFns)
      if (failed(mapper.map(fn)))
        return signalPassFailure();
  }
};

} // namespace
