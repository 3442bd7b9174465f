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
