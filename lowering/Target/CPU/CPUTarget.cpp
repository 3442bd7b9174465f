//===- CPUTarget.cpp - kernels module -> host shared object ---------------===//
#include "lowering/Target/CPU/CPUTarget.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/IR/Builders.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "mlir/Transforms/Passes.h"

#include "lld/Common/Driver.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/Verifier.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Passes/OptimizationLevel.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/TargetParser/Host.h"

#include <mutex>

LLD_HAS_DRIVER(elf)

using namespace mlir;

namespace mlir::v4 {

/// The names of the kernels that get an entry: public func.func with a body.
static SmallVector<std::string> kernelNames(ModuleOp module) {
  SmallVector<std::string> names;
  for (auto fn : module.getOps<func::FuncOp>())
    if (fn.isPublic() && !fn.isExternal())
      names.push_back(fn.getSymName().str());
  return names;
}

/// Adds `llvm.func @k(%args: !llvm.ptr)` calling `_mlir_ciface_k` with the
/// descriptor pointers args[0..n).
static LogicalResult addEntries(ModuleOp module, ArrayRef<std::string> names) {
  OpBuilder b(module.getBodyRegion());
  b.setInsertionPointToEnd(module.getBody());
  MLIRContext *ctx = module.getContext();
  auto ptr = LLVM::LLVMPointerType::get(ctx);
  for (const std::string &name : names) {
    auto iface = module.lookupSymbol<LLVM::LLVMFuncOp>("_mlir_ciface_" + name);
    if (!iface)
      return module.emitError()
             << "kernel '" << name << "' has no C interface after lowering";
    // The lowered kernel keeps the name `name`; the entry takes it over and
    // the kernel itself becomes private.
    auto kernel = module.lookupSymbol<LLVM::LLVMFuncOp>(name);
    std::string implName = name + "_impl";
    if (failed(SymbolTable::replaceAllSymbolUses(
            kernel, b.getStringAttr(implName), module)))
      return failure();
    kernel.setSymName(implName);
    kernel.setLinkage(LLVM::Linkage::Internal);

    Location loc = iface.getLoc();
    auto fnType =
        LLVM::LLVMFunctionType::get(LLVM::LLVMVoidType::get(ctx), {ptr});
    auto entry = LLVM::LLVMFuncOp::create(b, loc, name, fnType);
    Block *body = entry.addEntryBlock(b);
    OpBuilder eb = OpBuilder::atBlockEnd(body);
    SmallVector<Value> args;
    for (unsigned i = 0, e = iface.getNumArguments(); i < e; ++i) {
      Value slot = LLVM::GEPOp::create(eb, loc, ptr, ptr, body->getArgument(0),
                                       ArrayRef<LLVM::GEPArg>{(int32_t)i});
      args.push_back(LLVM::LoadOp::create(eb, loc, ptr, slot));
    }
    LLVM::CallOp::create(eb, loc, iface, args);
    LLVM::ReturnOp::create(eb, loc, ValueRange());
  }
  return success();
}

LogicalResult lowerKernelsToLLVMDialect(ModuleOp kernels) {
  SmallVector<std::string> names = kernelNames(kernels);
  for (auto fn : kernels.getOps<func::FuncOp>())
    if (fn.isPublic() && !fn.isExternal())
      fn->setAttr("llvm.emit_c_interface", UnitAttr::get(kernels.getContext()));

  PassManager pm(kernels.getContext());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createSCFToControlFlowPass());
  {
    // bf16 conversions by bit manipulation with round-to-nearest-even, so
    // the object needs no compiler-rt bf16 helpers.
    arith::ArithExpandOpsPassOptions expand;
    expand.includeBf16 = true;
    pm.addPass(arith::createArithExpandOpsPass(expand));
  }
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  if (failed(pm.run(kernels)))
    return failure();
  return addEntries(kernels, names);
}

static void initializeLLVMTargets() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
  });
}

/// Runs lld in-process: `ld.lld -shared -o <so> <obj>`.
static LogicalResult linkSharedObject(Location loc, StringRef objPath,
                                      StringRef soPath) {
  static std::mutex lldMutex; // lld is not re-entrant across threads
  std::lock_guard<std::mutex> lock(lldMutex);
  std::string out, err;
  llvm::raw_string_ostream outOS(out), errOS(err);
  std::string obj = objPath.str(), so = soPath.str();
  const char *args[] = {"ld.lld", "-shared",  "--hash-style=gnu",
                        "-o",     so.c_str(), obj.c_str()};
  lld::Result result =
      lld::lldMain(args, outOS, errOS, {{lld::Gnu, &lld::elf::link}});
  if (result.retCode != 0)
    return emitError(loc) << "linking the CPU kernels failed: " << err;
  return success();
}

FailureOr<std::string>
compileKernelsToSharedObject(ModuleOp kernels,
                             const CPUTargetOptions &options) {
  Location loc = kernels.getLoc();
  if (failed(lowerKernelsToLLVMDialect(kernels)))
    return failure();

  registerBuiltinDialectTranslation(*kernels.getContext());
  registerLLVMDialectTranslation(*kernels.getContext());
  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule =
      translateModuleToLLVMIR(kernels, llvmContext, "v4_kernels");
  if (!llvmModule)
    return emitError(loc) << "translating the CPU kernels to LLVM IR failed";

  initializeLLVMTargets();
  std::string tripleName = options.triple.empty()
                               ? llvm::sys::getDefaultTargetTriple()
                               : options.triple;
  llvm::Triple triple(tripleName);
  std::string error;
  const llvm::Target *target =
      llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return emitError(loc) << "no LLVM target for '" << tripleName
                          << "': " << error;
  llvm::TargetOptions targetOptions;
  std::unique_ptr<llvm::TargetMachine> machine(target->createTargetMachine(
      triple, options.cpu, "", targetOptions, llvm::Reloc::PIC_));
  llvmModule->setDataLayout(machine->createDataLayout());
  llvmModule->setTargetTriple(triple);

  // Optimise with the new pass manager.
  {
    llvm::LoopAnalysisManager lam;
    llvm::FunctionAnalysisManager fam;
    llvm::CGSCCAnalysisManager cgam;
    llvm::ModuleAnalysisManager mam;
    llvm::PassBuilder pb(machine.get());
    pb.registerModuleAnalyses(mam);
    pb.registerCGSCCAnalyses(cgam);
    pb.registerFunctionAnalyses(fam);
    pb.registerLoopAnalyses(lam);
    pb.crossRegisterProxies(lam, fam, cgam, mam);
    llvm::OptimizationLevel level =
        options.optLevel == 0   ? llvm::OptimizationLevel::O0
        : options.optLevel == 1 ? llvm::OptimizationLevel::O1
        : options.optLevel == 2 ? llvm::OptimizationLevel::O2
                                : llvm::OptimizationLevel::O3;
    llvm::ModulePassManager mpm = options.optLevel == 0
                                      ? pb.buildO0DefaultPipeline(level)
                                      : pb.buildPerModuleDefaultPipeline(level);
    mpm.run(*llvmModule, mam);
  }

  // Object file, then the shared object, through temporary files.
  SmallString<128> objPath, soPath;
  int objFd;
  if (std::error_code ec =
          llvm::sys::fs::createTemporaryFile("v4-kernels", "o", objFd, objPath))
    return emitError(loc) << "cannot create a temporary object file: "
                          << ec.message();
  llvm::scope_exit removeObj([&] { llvm::sys::fs::remove(objPath); });
  {
    llvm::raw_fd_ostream objOS(objFd, /*shouldClose=*/true);
    llvm::legacy::PassManager codegen;
    if (machine->addPassesToEmitFile(codegen, objOS, nullptr,
                                     llvm::CodeGenFileType::ObjectFile))
      return emitError(loc) << "the LLVM target cannot emit object files";
    codegen.run(*llvmModule);
    objOS.close();
    if (objOS.has_error())
      return emitError(loc)
             << "cannot write '" << objPath << "': " << objOS.error().message();
  }
  if (std::error_code ec =
          llvm::sys::fs::createTemporaryFile("v4-kernels", "so", soPath))
    return emitError(loc) << "cannot create a temporary file: " << ec.message();
  llvm::scope_exit removeSo([&] { llvm::sys::fs::remove(soPath); });
  if (failed(linkSharedObject(loc, objPath, soPath)))
    return failure();
  auto bytes = llvm::MemoryBuffer::getFile(soPath, /*IsText=*/false);
  if (!bytes)
    return emitError(loc) << "cannot read '" << soPath
                          << "': " << bytes.getError().message();
  return (*bytes)->getBuffer().str();
}

} // namespace mlir::v4
