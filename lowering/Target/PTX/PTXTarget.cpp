//===- PTXTarget.cpp - kernels module -> PTX (and a cubin) ----------------===//
#include "lowering/Target/PTX/PTXTarget.h"

#include "lowering/KernelBuilders/CPUKernels.h"
#include "lowering/Passes.h"
#include "lowering/Target/CodeCache.h"
#include "lowering/Target/TargetBackend.h"

#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/FuncToLLVM/ConvertFuncToLLVM.h"
#include "mlir/Conversion/GPUToNVVM/GPUToNVVM.h"
#include "mlir/Conversion/IndexToLLVM/IndexToLLVM.h"
#include "mlir/Conversion/MathToLLVM/MathToLLVM.h"
#include "mlir/Conversion/MemRefToLLVM/MemRefToLLVM.h"
#include "mlir/Conversion/NVVMToLLVM/NVVMToLLVM.h"
#include "mlir/Conversion/Passes.h"
#include "mlir/Conversion/UBToLLVM/UBToLLVM.h"
#include "mlir/Conversion/VectorToLLVM/ConvertVectorToLLVM.h"
#include "mlir/Dialect/GPU/IR/CompilationInterfaces.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/GPU/GPUToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/NVVM/NVVMToLLVMIRTranslation.h"
#include "mlir/Transforms/Passes.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"

using namespace mlir;

namespace mlir::v4 {

/// The chip and PTX features of the target: wgmma, setmaxnreg and TMA need
/// sm_90a and PTX 8.0.
constexpr llvm::StringLiteral kChip = "sm_90a";
constexpr llvm::StringLiteral kPTXFeatures = "+ptx80";

std::optional<std::string> findCUDAToolkit(StringRef requested) {
  auto hasPtxas = [](StringRef dir) {
    SmallString<256> p(dir);
    llvm::sys::path::append(p, "bin", "ptxas");
    return llvm::sys::fs::can_execute(p);
  };
  if (!requested.empty())
    return hasPtxas(requested) ? std::optional<std::string>(requested.str())
                               : std::nullopt;
  for (const char *var : {"CUDA_HOME", "CUDA_PATH"})
    if (std::optional<std::string> dir = llvm::sys::Process::GetEnv(var))
      if (!dir->empty() && hasPtxas(*dir))
        return dir;
  if (hasPtxas("/usr/local/cuda"))
    return std::string("/usr/local/cuda");
  return std::nullopt;
}

namespace {

/// The cubin's cache key: everything it depends on, the PTX, the target
/// attribute (chip, features, optimization level) and the ptxas binary
/// (path, size, modification time).
std::string cubinCacheKey(ArrayRef<char> ptx, StringRef toolkit,
                          gpu::TargetAttrInterface target) {
  SmallString<256> ptxas(toolkit);
  llvm::sys::path::append(ptxas, "bin", "ptxas");
  llvm::sys::fs::file_status status;
  std::string tool = ptxas.str().str();
  if (!llvm::sys::fs::status(ptxas, status))
    tool +=
        "|" + std::to_string(status.getSize()) + "|" +
        std::to_string(llvm::sys::toTimeT(status.getLastModificationTime()));
  std::string attr;
  llvm::raw_string_ostream os(attr);
  os << target;
  return codeCacheKey({tool, attr, StringRef(ptx.data(), ptx.size())});
}

class PTXTargetBackend final : public TargetBackend {
public:
  StringRef getName() const override { return kChip; }
  StringRef getDescription() const override {
    return "NVIDIA Hopper: PTX (LLVM NVPTX), and a cubin when ptxas is found";
  }
  ::v4::artifact::Target getArtifactTarget() const override {
    return ::v4::artifact::Target::SM90A;
  }

  void getDependentDialects(DialectRegistry &registry) const override {
    registerBufferizedKernelDialects(registry);
    registry.insert<gpu::GPUDialect, NVVM::NVVMDialect, LLVM::LLVMDialect>();
    // convert-gpu-to-nvvm lowers every dialect through its
    // ConvertToLLVMPatternInterface.
    arith::registerConvertArithToLLVMInterface(registry);
    cf::registerConvertControlFlowToLLVMInterface(registry);
    registerConvertFuncToLLVMInterface(registry);
    index::registerConvertIndexToLLVMInterface(registry);
    registerConvertMathToLLVMInterface(registry);
    registerConvertMemRefToLLVMInterface(registry);
    NVVM::registerConvertGpuToNVVMInterface(registry);
    registerConvertNVVMToLLVMInterface(registry);
    ub::registerConvertUBToLLVMInterface(registry);
    vector::registerConvertVectorToLLVMInterface(registry);
    NVVM::registerNVVMTargetInterfaceExternalModels(registry);
    registerBuiltinDialectTranslation(registry);
    registerLLVMDialectTranslation(registry);
    registerGPUDialectTranslation(registry);
    registerNVVMDialectTranslation(registry);
  }

  void buildKernelPipeline(OpPassManager &pm) const override {
    addBufferizedKernelPasses(pm, getName());
    // Parallel dims as scf.parallel (spread over threads), reductions as
    // sequential loops inside them, in the spec's order.
    pm.addNestedPass<func::FuncOp>(createConvertLinalgToParallelLoopsPass());
    // The hand-built bodies into their kernels: device code is one function
    // per kernel.
    pm.addPass(createInlinerPass());
    pm.addPass(createV4GPUMapKernelsPass());
    OpPassManager &gpu = pm.nest<gpu::GPUModuleOp>();
    gpu.addPass(createConvertVectorToSCFPass());
    gpu.addPass(createSCFToControlFlowPass());
    gpu.addPass(memref::createExpandStridedMetadataPass());
    gpu.addPass(createLowerAffinePass());
    // The hand-built bodies' vector<8xf32> lanes (transfers included).
    gpu.addPass(createConvertVectorToLLVMPass());
    gpu.addPass(createConvertGpuOpsToNVVMOps());
    gpu.addPass(createCanonicalizerPass());
    gpu.addPass(createCSEPass());
    gpu.addPass(createReconcileUnrealizedCastsPass());
    GpuNVVMAttachTargetOptions attach;
    attach.chip = kChip.str();
    attach.features = kPTXFeatures.str();
    attach.optLevel = 3;
    pm.addPass(createGpuNVVMAttachTarget(attach));
  }

  bool hasHandBuiltKernel(Operation *op) const override {
    // The hot ops run the CPU target's tiled bodies, one thread per block
    // of their launch grid, until the tensor-core builders replace them.
    return hasTiledKernelBuilder(op);
  }

  FailureOr<func::FuncOp> buildHandBuiltKernel(Operation *op, ModuleOp kernels,
                                               StringRef name) const override {
    return buildCPUKernel(op, kernels, name);
  }

  FailureOr<SmallVector<CodeObject>>
  serialize(ModuleOp kernels) const override {
    gpu::GPUModuleOp module;
    for (auto m : kernels.getOps<gpu::GPUModuleOp>())
      if (m.getSymName() == kGPUModuleName)
        module = m;
    if (!module || !module.getTargetsAttr() || module.getTargetsAttr().empty())
      return kernels.emitError()
             << "no gpu.module @" << kGPUModuleName
             << " with an NVVM target: run the sm_90a kernel phase first";
    auto target =
        dyn_cast<gpu::TargetAttrInterface>(module.getTargetsAttr()[0]);
    if (!target)
      return module.emitError()
             << "the gpu.module's target " << module.getTargetsAttr()[0]
             << " cannot serialize";
    std::string requested;
    if (auto dir = kernels->getAttrOfType<StringAttr>(kCUDAToolkitAttrName))
      requested = dir.str();
    std::optional<std::string> toolkit = findCUDAToolkit(requested);
    if (!requested.empty() && !toolkit)
      return kernels.emitError()
             << kCUDAToolkitAttrName << " '" << requested
             << "' is not a CUDA toolkit (it has no executable bin/ptxas)";

    SymbolTable symbols(kernels);
    auto compile = [&](gpu::CompilationTarget format)
        -> std::optional<SmallVector<char, 0>> {
      gpu::TargetOptions options(toolkit.value_or(""), {}, {}, {}, format,
                                 [&]() { return &symbols; });
      return target.serializeToObject(module, options);
    };
    SmallVector<CodeObject> objects;
    std::optional<SmallVector<char, 0>> ptx =
        compile(gpu::CompilationTarget::Assembly);
    if (!ptx)
      return module.emitError() << "compiling the kernels to PTX failed";
    objects.push_back(CodeObject{
        ::v4::artifact::Target::SM90A, ::v4::artifact::CodeFormat::PTX,
        std::vector<uint8_t>(ptx->begin(), ptx->end()), ""});
    if (toolkit) {
      // The cubin is a function of the PTX and the ptxas that assembles it:
      // a hit skips the second LLVM code generation and ptxas.
      std::string key = cubinCacheKey(*ptx, *toolkit, target);
      std::vector<uint8_t> bytes = readCachedCode(kCubinCache, key);
      if (bytes.empty()) {
        std::optional<SmallVector<char, 0>> cubin =
            compile(gpu::CompilationTarget::Binary);
        if (!cubin)
          return module.emitError()
                 << "assembling the PTX for " << kChip << " with " << *toolkit
                 << "/bin/ptxas failed";
        bytes.assign(cubin->begin(), cubin->end());
        writeCachedCode(kCubinCache, key, bytes);
      }
      objects.push_back(CodeObject{::v4::artifact::Target::SM90A,
                                   ::v4::artifact::CodeFormat::Cubin,
                                   std::move(bytes), ""});
    }
    return objects;
  }

  /// A kernel with a launch grid (a hand-built body) runs its finest grid
  /// (kFinestLaunchGridAttrName, else that grid), one thread per block;
  /// every other kernel one block of known_block_size threads.
  void describeLaunch(ModuleOp kernels, StringRef name,
                      ::v4::artifact::Kernel &kernel) const override {
    // gpu.func, or llvm.func after convert-gpu-to-nvvm: the v4.* attributes
    // of v4-gpu-map-kernels stay on it.
    Operation *fn = nullptr;
    for (auto m : kernels.getOps<gpu::GPUModuleOp>())
      if (m.getSymName() == kGPUModuleName)
        fn = SymbolTable::lookupSymbolIn(m, name);
    if (!fn)
      return;
    // The finest grid where the builder gives one: a block is one thread.
    auto grid = fn->getAttrOfType<DenseI64ArrayAttr>(kFinestLaunchGridAttrName);
    if (!grid)
      grid = fn->getAttrOfType<DenseI64ArrayAttr>(kLaunchGridAttrName);
    if (grid && grid.size() == 6)
      for (unsigned d = 0; d < 3; ++d) {
        kernel.launch.grid[d].fixed = static_cast<uint32_t>(grid[2 * d]);
        kernel.launch.grid[d].tokenTile =
            static_cast<uint32_t>(grid[2 * d + 1]);
      }
    if (auto block = fn->getAttrOfType<DenseI32ArrayAttr>(kBlockSizeAttrName);
        block && block.size() == 3)
      for (unsigned d = 0; d < 3; ++d)
        kernel.launch.block[d] = static_cast<uint32_t>(block[d]);
    if (auto ws = fn->getAttrOfType<IntegerAttr>(kWorkspaceBytesAttrName))
      kernel.launch.workspaceBytes = ws.getValue().getZExtValue();
  }
};

} // namespace

void registerPTXTargetBackend() {
  registerTargetBackend(std::make_unique<PTXTargetBackend>());
}

} // namespace mlir::v4
