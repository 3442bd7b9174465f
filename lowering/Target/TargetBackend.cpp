//===- TargetBackend.cpp - the target registry ----------------------------===//
#include "lowering/Target/TargetBackend.h"

#include "lowering/Passes.h"
#include "lowering/Target/CPU/CPUTarget.h"
#include "lowering/Target/PTX/PTXTarget.h"

#include "lowering/KernelBuilders/CPUKernels.h"

#include "mlir/Dialect/Arith/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Bufferization/Transforms/FuncBufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/SCF/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Tensor/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Vector/Transforms/BufferizableOpInterfaceImpl.h"

#include "llvm/ADT/StringMap.h"

#include <mutex>

using namespace mlir;

namespace mlir::v4 {

TargetBackend::~TargetBackend() = default;

void TargetBackend::describeLaunch(ModuleOp, StringRef,
                                   ::v4::artifact::Kernel &) const {}

static std::mutex &registryMutex() {
  static std::mutex m;
  return m;
}
static llvm::StringMap<std::unique_ptr<TargetBackend>> &registry() {
  static llvm::StringMap<std::unique_ptr<TargetBackend>> r;
  return r;
}

void registerTargetBackend(std::unique_ptr<TargetBackend> backend) {
  std::lock_guard<std::mutex> lock(registryMutex());
  std::string name = backend->getName().str();
  registry()[name] = std::move(backend);
}

const TargetBackend *lookupTargetBackend(StringRef name) {
  std::lock_guard<std::mutex> lock(registryMutex());
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : it->second.get();
}

SmallVector<StringRef> getRegisteredTargetBackendNames() {
  std::lock_guard<std::mutex> lock(registryMutex());
  SmallVector<StringRef> names;
  for (auto &e : registry())
    names.push_back(e.getKey());
  llvm::sort(names);
  return names;
}

void registerBuiltinTargetBackends() {
  static std::once_flag once;
  std::call_once(once, [] {
    registerCPUTargetBackend();
    registerPTXTargetBackend();
  });
}

void registerBufferizedKernelDialects(DialectRegistry &registry) {
  registerCPUKernelDialects(registry);
  registry.insert<bufferization::BufferizationDialect, linalg::LinalgDialect,
                  tensor::TensorDialect>();
  arith::registerBufferizableOpInterfaceExternalModels(registry);
  bufferization::func_ext::registerBufferizableOpInterfaceExternalModels(
      registry);
  linalg::registerBufferizableOpInterfaceExternalModels(registry);
  scf::registerBufferizableOpInterfaceExternalModels(registry);
  tensor::registerBufferizableOpInterfaceExternalModels(registry);
  vector::registerBufferizableOpInterfaceExternalModels(registry);
}

void addBufferizedKernelPasses(OpPassManager &pm, StringRef target) {
  // Hand-built hot ops, target-neutral bodies for the rest.
  V4BuildTargetKernelsPassOptions build;
  build.target = target.str();
  pm.addPass(createV4BuildTargetKernelsPass(build));
  pm.addPass(createConvertV4ToLinalgPass());
  pm.addPass(createV4DropBF16RoundingPass());
  pm.addPass(createV4ReassociateSumsPass());
  // Bufferize: every result is written into its argument buffer.
  pm.addPass(bufferization::createEmptyTensorEliminationPass());
  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  pm.addPass(createV4FinalizeKernelABIPass());
}

FailureOr<SmallVector<const TargetBackend *>>
parseTargetList(StringRef list, std::string &error) {
  SmallVector<const TargetBackend *> targets;
  SmallVector<StringRef> names;
  list.split(names, ',');
  for (StringRef name : names) {
    name = name.trim();
    const TargetBackend *t = lookupTargetBackend(name);
    if (!t) {
      std::string known;
      for (StringRef n : getRegisteredTargetBackendNames())
        known += (known.empty() ? "" : ", ") + n.str();
      error = (name.empty() ? std::string("an empty target name")
                            : "unknown target '" + name.str() + "'") +
              " in '" + list.str() + "' (known: " + known +
              "; several: a comma list such as cpu,sm_90a)";
      return failure();
    }
    if (llvm::is_contained(targets, t)) {
      error =
          "target '" + name.str() + "' is named twice in '" + list.str() + "'";
      return failure();
    }
    targets.push_back(t);
  }
  return targets;
}

FailureOr<const TargetBackend *> getTargetBackendFor(Operation *op) {
  for (Operation *p = op; p; p = p->getParentOp()) {
    auto attr = p->getAttrOfType<StringAttr>("v4.target");
    if (!attr)
      continue;
    if (const TargetBackend *t = lookupTargetBackend(attr.getValue()))
      return t;
    std::string known;
    for (StringRef n : getRegisteredTargetBackendNames())
      known += (known.empty() ? "" : ", ") + n.str();
    return p->emitError() << "unknown target '" << attr.getValue()
                          << "' in v4.target (known: " << known << ")";
  }
  return op->emitError()
         << "no target: the module needs a v4.target attribute (e.g. "
            "module attributes {v4.target = \"cpu\"})";
}

} // namespace mlir::v4
