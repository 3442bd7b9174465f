//===- CPUTarget.cpp - kernels module -> host shared object ---------------===//
#include "lowering/Target/CPU/CPUTarget.h"

#include "dialects/V4/V4Ops.h"
#include "lowering/KernelBuilders/CPUKernels.h"
#include "lowering/Passes.h"
#include "lowering/Target/CodeCache.h"
#include "lowering/Target/TargetBackend.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

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
#include "llvm/Config/llvm-config.h"
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
#include "llvm/Transforms/Instrumentation/AddressSanitizer.h"

#include <mutex>

LLD_HAS_DRIVER(elf)

using namespace mlir;

namespace mlir::v4 {

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
linkKernelsToSharedObject(ModuleOp kernels, const CPUTargetOptions &options) {
  Location loc = kernels.getLoc();

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
  auto [llvmCPU, llvmFeatures] = ::v4::hostISALLVMTarget(options.cpu);
  std::unique_ptr<llvm::TargetMachine> machine(target->createTargetMachine(
      triple, llvmCPU, llvmFeatures, targetOptions, llvm::Reloc::PIC_));
  llvmModule->setDataLayout(machine->createDataLayout());
  llvmModule->setTargetTriple(triple);

  // The shared object is a function of the LLVM module, the target machine
  // and LLVM itself: a hit in the code cache skips optimisation, code
  // generation and linking. Anything else that changes the object (a pass
  // or option added below) must join the key.
  std::string moduleText;
  {
    llvm::raw_string_ostream os(moduleText);
    llvmModule->print(os, nullptr);
  }
  std::string cacheKey =
      codeCacheKey({LLVM_VERSION_STRING, triple.str(), options.cpu,
                    std::to_string(options.optLevel),
                    options.sanitizeAddress ? "address" : "", moduleText});
  moduleText.clear();
  moduleText.shrink_to_fit();
  std::vector<uint8_t> cached = readCachedCode(kCPUObjectCache, cacheKey);
  if (!cached.empty())
    return std::string(cached.begin(), cached.end());

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
    if (options.sanitizeAddress) {
      // After optimisation, as clang places it; the instrumented object
      // refers to the ASan runtime of the process that loads it.
      for (llvm::Function &f : *llvmModule)
        if (!f.isDeclaration())
          f.addFnAttr(llvm::Attribute::SanitizeAddress);
      mpm.addPass(llvm::AddressSanitizerPass(llvm::AddressSanitizerOptions()));
    }
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
  StringRef so = (*bytes)->getBuffer();
  writeCachedCode(kCPUObjectCache, cacheKey,
                  ArrayRef<uint8_t>(
                      reinterpret_cast<const uint8_t *>(so.data()), so.size()));
  return so.str();
}

//===----------------------------------------------------------------------===//
// The "cpu" TargetBackend
//===----------------------------------------------------------------------===//

namespace {
class CPUTargetBackend final : public TargetBackend {
public:
  StringRef getName() const override { return "cpu"; }
  StringRef getDescription() const override {
    return "host x86-64 shared object (LLVM, lld)";
  }
  ::v4::artifact::Target getArtifactTarget() const override {
    return ::v4::artifact::Target::CPU;
  }

  void getDependentDialects(DialectRegistry &registry) const override {
    registerBufferizedKernelDialects(registry);
    registry.insert<LLVM::LLVMDialect>();
  }

  void buildKernelPipeline(OpPassManager &pm) const override {
    addBufferizedKernelPasses(pm, getName());
    // Temporaries of the linalg bodies: freed where their last use is.
    bufferization::BufferDeallocationPipelineOptions dealloc;
    bufferization::buildBufferDeallocationPipeline(pm, dealloc);
    pm.addNestedPass<func::FuncOp>(createConvertLinalgToLoopsPass());
    // f32 exp as glibc's expf, inline (levels with FMA).
    pm.addPass(createV4CPUExpandExpFPass());
    // The kernel ABI, then LLVM.
    pm.addPass(createV4CPUAddKernelEntriesPass());
    pm.addPass(createCanonicalizerPass());
    pm.addPass(createSCFToControlFlowPass());
    // bf16 conversions by bit manipulation with round-to-nearest-even, so
    // the object needs no compiler-rt bf16 helpers.
    arith::ArithExpandOpsPassOptions expand;
    expand.includeBf16 = true;
    pm.addPass(arith::createArithExpandOpsPass(expand));
    pm.addPass(memref::createExpandStridedMetadataPass());
    pm.addPass(createLowerAffinePass());
    // The vector<8xf32> lanes of the tiled GEMM (CPUKernelBody.h).
    pm.addPass(createConvertVectorToLLVMPass());
    pm.addPass(createConvertMathToLLVMPass());
    pm.addPass(createArithToLLVMConversionPass());
    pm.addPass(createFinalizeMemRefToLLVMConversionPass());
    pm.addPass(createConvertControlFlowToLLVMPass());
    pm.addPass(createConvertFuncToLLVMPass());
    pm.addPass(createReconcileUnrealizedCastsPass());
    pm.addPass(createV4CPUBF16MemoryAsI16Pass());
  }

  bool hasHandBuiltKernel(Operation *op) const override {
    // The hot ops; every other op comes from V4ToLinalg.
    return hasTiledKernelBuilder(op);
  }

  FailureOr<func::FuncOp> buildHandBuiltKernel(Operation *op, ModuleOp kernels,
                                               StringRef name) const override {
    return buildCPUKernel(op, kernels, name);
  }

  FailureOr<SmallVector<CodeObject>>
  serialize(ModuleOp kernels) const override {
    // The x86-64 level: the module's v4.cpu (v4c --cpu), else the default.
    CPUTargetOptions options;
    options.cpu = std::string(::v4::kDefaultHostISA);
    if (Attribute a = kernels->getAttr(kHostISAAttrName)) {
      auto level = dyn_cast<StringAttr>(a);
      if (!level || !::v4::isKnownHostISA(level.getValue()))
        return kernels.emitError()
               << kHostISAAttrName << " = " << a << " is not an x86-64 level ("
               << ::v4::knownHostISAs() << ")";
      options.cpu = level.str();
    }
    if (Attribute a = kernels->getAttr(kSanitizeKernelsAttrName)) {
      auto kind = dyn_cast<StringAttr>(a);
      if (!kind || kind.getValue() != "address")
        return kernels.emitError() << kSanitizeKernelsAttrName << " = " << a
                                   << " is not a sanitizer the CPU target "
                                      "instruments (address)";
      options.sanitizeAddress = true;
    }
    FailureOr<std::string> so = linkKernelsToSharedObject(kernels, options);
    if (failed(so))
      return failure();
    return SmallVector<CodeObject>{
        CodeObject{::v4::artifact::Target::CPU,
                   ::v4::artifact::CodeFormat::HostSharedObject,
                   std::vector<uint8_t>(so->begin(), so->end()), options.cpu}};
  }

  /// The hot kernels' grids (kLaunchGridAttrName on the entry, func or
  /// llvm.func after the kernel phase); every other kernel is one call.
  void describeLaunch(ModuleOp kernels, StringRef name,
                      ::v4::artifact::Kernel &kernel) const override {
    Operation *fn = SymbolTable::lookupSymbolIn(kernels, name);
    auto grid = fn ? fn->getAttrOfType<DenseI64ArrayAttr>(kLaunchGridAttrName)
                   : DenseI64ArrayAttr();
    if (!grid || grid.size() != 6) {
      // One call per dispatch: token slices when the op allows them.
      if (auto slice = fn ? fn->getAttrOfType<IntegerAttr>(kTokenSliceAttrName)
                          : IntegerAttr())
        kernel.launch.tokenSlice = static_cast<uint32_t>(slice.getInt());
      return;
    }
    for (unsigned d = 0; d < 3; ++d) {
      kernel.launch.grid[d].fixed = static_cast<uint32_t>(grid[2 * d]);
      kernel.launch.grid[d].tokenTile = static_cast<uint32_t>(grid[2 * d + 1]);
    }
  }
};
} // namespace

void registerCPUTargetBackend() {
  registerTargetBackend(std::make_unique<CPUTargetBackend>());
}

} // namespace mlir::v4
