//===- BuildTargetKernels.cpp - hand-built kernels and the ABI check ------===//
//
// Passes v4-build-target-kernels and v4-verify-kernel-abi
// (lowering/Passes.td).
//
//===----------------------------------------------------------------------===//
#include "dialects/V4/V4Ops.h"
#include "dialects/V4/V4StorageLayout.h"
#include "lowering/Passes.h"
#include "lowering/Target/TargetBackend.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "llvm/ADT/DenseSet.h"

namespace mlir::v4 {
#define GEN_PASS_DEF_V4BUILDTARGETKERNELSPASS
#define GEN_PASS_DEF_V4FINALIZEKERNELABIPASS
#include "lowering/Passes.h.inc"
} // namespace mlir::v4

using namespace mlir;
using namespace mlir::v4;

namespace {

/// The op a kernel of dispatch formation computes (null for a copy
/// kernel), and the destination argument of each of its results.
static Operation *kernelOp(func::FuncOp fn, SmallVectorImpl<unsigned> &dest) {
  auto ret = cast<func::ReturnOp>(fn.getBody().front().getTerminator());
  Operation *op = nullptr;
  for (Value v : ret.getOperands()) {
    auto store = v.getDefiningOp<KernelStoreOp>();
    if (!store)
      return nullptr;
    auto arg = dyn_cast<BlockArgument>(store.getDest());
    if (!arg)
      return nullptr;
    dest.push_back(arg.getArgNumber());
    op = store.getValue().getDefiningOp();
  }
  return op;
}

/// Replaces `fn` by a function with the kernel ABI signature that calls the
/// hand-built body of its op.
static LogicalResult buildByHand(const TargetBackend &target, func::FuncOp fn,
                                 Operation *op, ArrayRef<unsigned> dest) {
  auto kernels = cast<ModuleOp>(fn->getParentOp());
  std::string name = fn.getSymName().str();
  FailureOr<func::FuncOp> body =
      target.buildHandBuiltKernel(op, kernels, name + "_body");
  if (failed(body))
    return failure();
  body->setPrivate();

  // ABI: the storage buffers of every kernel argument, in order.
  SmallVector<Type> abi;
  SmallVector<std::pair<unsigned, unsigned>> argRange; // first, count
  for (Type t : fn.getArgumentTypes()) {
    unsigned first = abi.size();
    if (failed(getStorageMemRefTypes(t, abi)))
      return fn.emitError() << "no storage layout for " << t;
    argRange.push_back({first, static_cast<unsigned>(abi.size() - first)});
  }
  OpBuilder b(fn);
  auto entry = func::FuncOp::create(b, fn.getLoc(), name + ".abi",
                                    b.getFunctionType(abi, {}));
  entry->setAttr("v4.kernel", b.getUnitAttr());
  auto eb =
      ImplicitLocOpBuilder::atBlockEnd(fn.getLoc(), entry.addEntryBlock());
  SmallVector<Value> args;
  auto append = [&](unsigned arg) {
    auto [first, count] = argRange[arg];
    for (unsigned i = 0; i < count; ++i)
      args.push_back(entry.getArgument(first + i));
  };
  // The body takes the op's operands (all model values: the kernel's first
  // arguments), then every result's buffers (its destination's).
  for (unsigned i = 0; i < op->getNumOperands(); ++i)
    append(i);
  for (unsigned d : dest)
    append(d);
  // A body with a launch grid takes the launch block after its buffers; the
  // ABI function passes its own (v4-cpu-add-kernel-entries fills them).
  auto grid = (*body)->getAttrOfType<DenseI64ArrayAttr>(kLaunchGridAttrName);
  unsigned blockArgs = grid ? kLaunchBlockArgs : 0;
  if (grid) {
    entry->setAttr(kLaunchGridAttrName, grid);
    if (Attribute finest = (*body)->getAttr(kFinestLaunchGridAttrName))
      entry->setAttr(kFinestLaunchGridAttrName, finest);
    abi.append(blockArgs, b.getIndexType());
    entry.setType(b.getFunctionType(abi, {}));
    for (unsigned i = 0; i < blockArgs; ++i)
      entry.getBody().front().addArgument(b.getIndexType(), fn.getLoc());
  }
  for (unsigned i = 0; i < blockArgs; ++i)
    args.push_back(entry.getArgument(abi.size() - blockArgs + i));
  if (args.size() != body->getNumArguments())
    return op->emitError() << "internal error: hand-built kernel of '"
                           << op->getName() << "' takes "
                           << body->getNumArguments() << " buffers, the ABI "
                           << "gives " << args.size();
  func::CallOp::create(eb, *body, args);
  func::ReturnOp::create(eb);
  fn.erase();
  entry.setSymName(name);
  return success();
}

struct V4BuildTargetKernelsPass
    : public mlir::v4::impl::V4BuildTargetKernelsPassBase<
          V4BuildTargetKernelsPass> {
  using Base::Base;
  /// The hand builders create ops of their target's dialects.
  void getDependentDialects(DialectRegistry &registry) const override {
    registerBuiltinTargetBackends();
    for (StringRef name : getRegisteredTargetBackendNames())
      lookupTargetBackend(name)->getDependentDialects(registry);
  }
  void runOnOperation() override {
    ModuleOp kernels = getOperation();
    registerBuiltinTargetBackends();
    const TargetBackend *backend = nullptr;
    if (!target.empty()) {
      backend = lookupTargetBackend(target);
      if (!backend) {
        kernels.emitError() << "unknown target '" << target << "'";
        return signalPassFailure();
      }
    } else {
      FailureOr<const TargetBackend *> t = getTargetBackendFor(kernels);
      if (failed(t))
        return signalPassFailure();
      backend = *t;
    }
    SmallVector<func::FuncOp> fns(kernels.getOps<func::FuncOp>());
    for (func::FuncOp fn : fns) {
      if (!fn->hasAttr("v4.kernel") || fn.isExternal())
        continue;
      SmallVector<unsigned> dest;
      Operation *op = kernelOp(fn, dest);
      if (!op || !isa<V4Dialect>(op->getDialect()) ||
          !backend->hasHandBuiltKernel(op))
        continue;
      if (failed(buildByHand(*backend, fn, op, dest)))
        return signalPassFailure();
      ++numHandBuilt;
    }
  }
};

/// The buffer `v` is, seen through loops that update it in place: an
/// scf.for result whose iteration yields (through nested loops and ifs) its
/// own iter_arg is the loop's init; an scf.if result both of whose branches
/// yield the same buffer is that buffer.
static Value inPlaceSource(Value v) {
  auto r = dyn_cast<OpResult>(v);
  if (!r)
    return v;
  unsigned i = r.getResultNumber();
  if (auto forOp = dyn_cast<scf::ForOp>(r.getOwner())) {
    if (inPlaceSource(forOp.getYieldedValues()[i]) ==
        forOp.getRegionIterArgs()[i])
      return inPlaceSource(forOp.getInitArgs()[i]);
  } else if (auto ifOp = dyn_cast<scf::IfOp>(r.getOwner())) {
    if (ifOp.elseBlock()) {
      Value a = inPlaceSource(ifOp.thenYield().getOperand(i));
      if (a == inPlaceSource(ifOp.elseYield().getOperand(i)))
        return a;
    }
  }
  return v;
}

struct V4FinalizeKernelABIPass
    : public mlir::v4::impl::V4FinalizeKernelABIPassBase<
          V4FinalizeKernelABIPass> {
  void runOnOperation() override {
    for (auto fn : getOperation().getOps<func::FuncOp>()) {
      if (!fn->hasAttr("v4.kernel") || fn.isExternal())
        continue;
      // Buffers, then the launch block of a kernel with a launch grid.
      unsigned buffers = fn.getNumArguments();
      if (fn->hasAttr(kLaunchGridAttrName)) {
        if (buffers < kLaunchBlockArgs) {
          fn.emitError() << "kernel '" << fn.getSymName()
                         << "' has a launch grid but no launch block";
          return signalPassFailure();
        }
        buffers -= kLaunchBlockArgs;
        for (Type t : fn.getArgumentTypes().drop_front(buffers))
          if (!t.isIndex()) {
            fn.emitError() << "kernel '" << fn.getSymName()
                           << "' launch block argument of type " << t;
            return signalPassFailure();
          }
      }
      for (Type t : fn.getArgumentTypes().take_front(buffers))
        if (!isa<MemRefType>(t)) {
          fn.emitError() << "kernel '" << fn.getSymName()
                         << "' takes a non-buffer argument of type " << t;
          return signalPassFailure();
        }
      if (fn.getNumResults() == 0)
        continue;
      auto ret = cast<func::ReturnOp>(fn.getBody().front().getTerminator());
      for (auto [i, v] : llvm::enumerate(ret.getOperands()))
        if (!isa<BlockArgument>(inPlaceSource(v))) {
          fn.emitError() << "kernel '" << fn.getSymName() << "' result #" << i
                         << " was not written into its destination argument "
                            "(not bufferized in place)";
          return signalPassFailure();
        }
      OpBuilder b(ret);
      func::ReturnOp::create(b, ret.getLoc());
      ret.erase();
      fn.setType(FunctionType::get(&getContext(), fn.getArgumentTypes(), {}));
      fn.removeResAttrsAttr();
    }
    if (failed(nameConstantsDeterministically()))
      return signalPassFailure();
  }

  /// One-shot bufferization names the globals of constant tensors in an
  /// order that varies from run to run; name and place them by first use
  /// in kernel order instead, so the same input always gives the same IR
  /// and the same code object.
  LogicalResult nameConstantsDeterministically() {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    llvm::DenseSet<Operation *> done;
    SmallVector<memref::GlobalOp> ordered;
    module.walk([&](memref::GetGlobalOp get) {
      auto global = symbols.lookup<memref::GlobalOp>(get.getName());
      if (global && done.insert(global).second)
        ordered.push_back(global);
    });
    for (auto [i, global] : llvm::enumerate(ordered))
      if (failed(symbols.rename(global,
                                "__v4_constant_" + std::to_string(i) + "_tmp")))
        return failure();
    Block *body = module.getBody();
    for (auto [i, global] : llvm::enumerate(ordered))
      if (failed(symbols.rename(global, "__v4_constant_" + std::to_string(i))))
        return failure();
    for (memref::GlobalOp global : llvm::reverse(ordered))
      global->moveBefore(body, body->begin());
    return success();
  }
};

} // namespace
