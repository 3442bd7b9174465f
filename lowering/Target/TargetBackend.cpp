//===- TargetBackend.cpp - the target registry ----------------------------===//
#include "lowering/Target/TargetBackend.h"

#include "lowering/Target/CPU/CPUTarget.h"

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
  std::call_once(once, [] { registerCPUTargetBackend(); });
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
