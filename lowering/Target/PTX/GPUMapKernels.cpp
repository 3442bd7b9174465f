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
    if (failed(onThreadZero(&op)))
      return failure();
  }
  return success();
}

/// Replaces `loop` by a loop of each thread over its share of the
/// linearised iterations, between barriers.
LogicalResult KernelMapper::spread(scf::ParallelOp loop) {
  if (loop.getNumResults() != 0)
    return loop.emitError()
           << "kernel '" << kernelName << "': a parallel loop with reductions";
  Location loc = loop.getLoc();
  OpBuilder b(loop);
  barrier(b, loc);
  unsigned rank = loop.getNumLoops();
  SmallVector<Value> counts;
  Value total = arith::ConstantIndexOp::create(b, loc, 1);
  for (unsigned i = 0; i < rank; ++i) {
    Value span = b.createOrFold<arith::SubIOp>(loc, loop.getUpperBound()[i],
                                               loop.getLowerBound()[i]);
    Value n = b.createOrFold<arith::CeilDivSIOp>(loc, span, loop.getStep()[i]);
    counts.push_back(n);
    total = b.createOrFold<arith::MulIOp>(loc, total, n);
  }
  auto forOp = scf::ForOp::create(b, loc, threadId, total, threads);
  OpBuilder ib = OpBuilder::atBlockBegin(forOp.getBody());
  IRMapping ivs;
  Value rest = forOp.getInductionVar();
  for (unsigned i = rank; i-- > 0;) {
    Value idx = rest;
    if (i > 0) {
      idx = ib.createOrFold<arith::RemSIOp>(loc, rest, counts[i]);
      rest = ib.createOrFold<arith::DivSIOp>(loc, rest, counts[i]);
    }
    Value scaled = ib.createOrFold<arith::MulIOp>(loc, idx, loop.getStep()[i]);
    ivs.map(
        loop.getInductionVars()[i],
        ib.createOrFold<arith::AddIOp>(loc, loop.getLowerBound()[i], scaled));
  }
  for (Operation &op : loop.getBody()->without_terminator())
    ib.clone(op, ivs);
  b.setInsertionPointAfter(forOp);
  barrier(b, loc);
  loop.erase();
  return success();
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
