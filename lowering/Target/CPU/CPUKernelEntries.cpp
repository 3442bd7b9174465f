//===- CPUKernelEntries.cpp - the `void k(void **args)` entries -----------===//
//
// Pass v4-cpu-add-kernel-entries (lowering/Passes.td): the CPU kernel ABI
// (runtime/base/KernelABI.h) on bufferized kernels, before the conversion
// to the LLVM dialect.
//
//===----------------------------------------------------------------------===//
#include "lowering/Passes.h"
#include "lowering/Target/TargetBackend.h"

#include "mlir/Conversion/LLVMCommon/TypeConverter.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace mlir::v4 {
#define GEN_PASS_DEF_V4CPUADDKERNELENTRIESPASS
#include "lowering/Passes.h.inc"
} // namespace mlir::v4

using namespace mlir;

namespace {

struct V4CPUAddKernelEntriesPass
    : public mlir::v4::impl::V4CPUAddKernelEntriesPassBase<
          V4CPUAddKernelEntriesPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = &getContext();
    LLVMTypeConverter descriptors(ctx);
    auto ptr = LLVM::LLVMPointerType::get(ctx);
    SmallVector<func::FuncOp> kernels;
    for (auto fn : module.getOps<func::FuncOp>())
      if (fn->hasAttr("v4.kernel") && fn.isPublic() && !fn.isExternal())
        kernels.push_back(fn);
    for (func::FuncOp fn : kernels) {
      std::string name = fn.getSymName().str();
      fn.setSymName(name + "_impl");
      fn.setPrivate();
      fn->removeAttr("v4.kernel");
      fn->setAttr("llvm.linkage",
                  LLVM::LinkageAttr::get(ctx, LLVM::Linkage::Internal));
      OpBuilder top(fn);
      auto entry = func::FuncOp::create(top, fn.getLoc(), name,
                                        top.getFunctionType({ptr}, {}));
      entry->setAttr("v4.kernel", top.getUnitAttr());
      auto grid =
          fn->getAttrOfType<DenseI64ArrayAttr>(mlir::v4::kLaunchGridAttrName);
      if (grid)
        entry->setAttr(mlir::v4::kLaunchGridAttrName, grid);
      fn->removeAttr(mlir::v4::kLaunchGridAttrName);
      // The CPU launches the coarse grid.
      fn->removeAttr(mlir::v4::kFinestLaunchGridAttrName);
      // A one-call kernel may run on token slices.
      if (Attribute slice = fn->getAttr(mlir::v4::kTokenSliceAttrName);
          slice && !grid)
        entry->setAttr(mlir::v4::kTokenSliceAttrName, slice);
      fn->removeAttr(mlir::v4::kTokenSliceAttrName);
      auto b =
          ImplicitLocOpBuilder::atBlockEnd(fn.getLoc(), entry.addEntryBlock());
      unsigned buffers =
          fn.getNumArguments() - (grid ? mlir::v4::kLaunchBlockArgs : 0);
      SmallVector<Value> args;
      for (auto [i, t] :
           llvm::enumerate(fn.getArgumentTypes().take_front(buffers))) {
        auto memref = dyn_cast<MemRefType>(t);
        if (!memref) {
          fn.emitError() << "kernel '" << name << "' argument #" << i
                         << " is not a buffer: " << t;
          return signalPassFailure();
        }
        Type desc = descriptors.convertType(memref);
        Value slot = LLVM::GEPOp::create(
            b, ptr, ptr, entry.getArgument(0),
            ArrayRef<LLVM::GEPArg>{static_cast<int32_t>(i)});
        Value p = LLVM::LoadOp::create(b, ptr, slot);
        Value d = LLVM::LoadOp::create(b, desc, p);
        args.push_back(
            UnrealizedConversionCastOp::create(b, memref, d).getResult(0));
      }
      if (grid) {
        // The launch block: args[buffers] points at six i64 (LaunchBlock of
        // runtime/base/KernelABI.h), or is null for block 0 of a 1x1x1 grid.
        auto i64 = b.getI64Type();
        Value slot = LLVM::GEPOp::create(
            b, ptr, ptr, entry.getArgument(0),
            ArrayRef<LLVM::GEPArg>{static_cast<int32_t>(buffers)});
        Value p = LLVM::LoadOp::create(b, ptr, slot);
        Value null = LLVM::ZeroOp::create(b, ptr);
        Value isNull =
            LLVM::ICmpOp::create(b, LLVM::ICmpPredicate::eq, p, null);
        for (unsigned w = 0; w < mlir::v4::kLaunchBlockArgs; ++w) {
          Value at = LLVM::GEPOp::create(
              b, ptr, i64, p, ArrayRef<LLVM::GEPArg>{static_cast<int32_t>(w)});
          // Loaded only through a non-null pointer.
          Value v =
              scf::IfOp::create(
                  b, isNull,
                  [&](OpBuilder &nb, Location loc) {
                    Value d = LLVM::ConstantOp::create(
                        nb, loc, i64, nb.getI64IntegerAttr(w < 3 ? 0 : 1));
                    scf::YieldOp::create(nb, loc, d);
                  },
                  [&](OpBuilder &nb, Location loc) {
                    Value d = LLVM::LoadOp::create(nb, loc, i64, at);
                    scf::YieldOp::create(nb, loc, d);
                  })
                  .getResult(0);
          args.push_back(arith::IndexCastOp::create(b, b.getIndexType(), v));
        }
      }
      func::CallOp::create(b, fn, args);
      func::ReturnOp::create(b);
    }
  }
};

} // namespace

//===----------------------------------------------------------------------===//
// v4-cpu-bf16-memory-as-i16
//===----------------------------------------------------------------------===//

namespace mlir::v4 {
#define GEN_PASS_DEF_V4CPUBF16MEMORYASI16PASS
#include "lowering/Passes.h.inc"
} // namespace mlir::v4

namespace {

/// i16 for bf16, vector<N x i16> for vector<N x bf16>; null otherwise.
Type asI16(Type t) {
  auto i16 = IntegerType::get(t.getContext(), 16);
  if (t.isBF16())
    return i16;
  if (auto v = dyn_cast<VectorType>(t); v && v.getElementType().isBF16())
    return v.clone(i16);
  return {};
}

struct V4CPUBF16MemoryAsI16Pass
    : public mlir::v4::impl::V4CPUBF16MemoryAsI16PassBase<
          V4CPUBF16MemoryAsI16Pass> {
  void runOnOperation() override {
    getOperation().walk([](Operation *op) {
      if (auto load = dyn_cast<LLVM::LoadOp>(op)) {
        Type bf16 = load.getType(), bits = asI16(bf16);
        if (!bits)
          return;
        // The load yields the bits; its users get them back as bf16.
        OpBuilder b(op->getContext());
        b.setInsertionPointAfter(load);
        load.getResult().setType(bits);
        auto cast = LLVM::BitcastOp::create(b, load.getLoc(), bf16, load);
        load.getResult().replaceAllUsesExcept(cast, cast);
      } else if (auto store = dyn_cast<LLVM::StoreOp>(op)) {
        Type bits = asI16(store.getValue().getType());
        if (!bits)
          return;
        OpBuilder b(store);
        store.getValueMutable().assign(
            LLVM::BitcastOp::create(b, store.getLoc(), bits, store.getValue()));
      }
    });
  }
};

} // namespace
