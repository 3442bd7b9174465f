//===- KernelDump.cpp - v4c --dump-kernels-to DIR -------------------------===//
#include "KernelDump.h"

#include "lowering/Dispatch/DispatchFormation.h"
#include "runtime/artifact/Artifact.h"
#include "runtime/base/OutputFile.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/SymbolTable.h"

#include "llvm/ADT/SetVector.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <map>

using namespace llvm;

namespace v4 {

/// Appends the IR of every kernel of `container` (the kernels module, or a
/// target's code module nested in it: sm_90a's gpu.module) to `result`: a
/// module with the kernels module's attributes holding the kernel and every
/// symbol of `container` it reaches (inside a copy of `container` when it
/// is nested).
static void
appendKernelIR(mlir::ModuleOp kernels, mlir::Operation *container,
               std::vector<std::pair<std::string, std::string>> &result) {
  mlir::Block &body = container->getRegion(0).front();
  for (mlir::Operation &op : body) {
    if (!op.hasAttr("v4.kernel"))
      continue;
    auto symbol = op.getAttrOfType<mlir::StringAttr>(
        mlir::SymbolTable::getSymbolAttrName());
    if (!symbol)
      continue;
    SetVector<mlir::Operation *> reached;
    reached.insert(&op);
    for (size_t i = 0; i < reached.size(); ++i) {
      auto uses = mlir::SymbolTable::getSymbolUses(reached[i]);
      if (!uses)
        continue;
      for (const mlir::SymbolTable::SymbolUse &use : *uses)
        if (mlir::Operation *def = mlir::SymbolTable::lookupSymbolIn(
                container, use.getSymbolRef().getRootReference()))
          reached.insert(def);
    }
    mlir::OpBuilder builder(kernels.getContext());
    mlir::OwningOpRef<mlir::ModuleOp> one =
        mlir::ModuleOp::create(kernels.getLoc(), kernels.getName());
    (*one)->setAttrs(kernels->getAttrDictionary());
    builder.setInsertionPointToEnd(one->getBody());
    if (container != kernels.getOperation()) {
      mlir::Operation *copy = builder.insert(container->cloneWithoutRegions());
      builder.setInsertionPointToEnd(builder.createBlock(&copy->getRegion(0)));
    }
    // In the container's order.
    for (mlir::Operation &def : body)
      if (reached.contains(&def))
        builder.clone(def);
    std::string text;
    raw_string_ostream os(text);
    one->print(os);
    result.emplace_back(symbol.str(), std::move(text));
  }
}

std::vector<std::pair<std::string, std::string>>
getKernelIR(mlir::ModuleOp module) {
  std::vector<std::pair<std::string, std::string>> result;
  mlir::ModuleOp kernels = mlir::v4::getKernelsModule(module);
  if (!kernels)
    return result;
  appendKernelIR(kernels, kernels, result);
  for (mlir::Operation &op : kernels.getBody()->getOperations())
    if (op.hasTrait<mlir::OpTrait::SymbolTable>() && op.getNumRegions() == 1 &&
        !op.getRegion(0).empty())
      appendKernelIR(kernels, &op, result);
  return result;
}

/// Writes `bytes` to `path` through the tools' one output writer
/// (runtime/base/OutputFile.h); false after an error naming the path.
static bool writeFile(const std::string &path, StringRef bytes) {
  if (v4::Status s = v4::writeOutputFile(path, bytes.data(), bytes.size());
      !s) {
    errs() << "v4c: --dump-kernels-to: " << s.message() << "\n";
    return false;
  }
  return true;
}

static const char *codeExtension(artifact::CodeFormat format) {
  switch (format) {
  case artifact::CodeFormat::HostSharedObject:
    return "so";
  case artifact::CodeFormat::PTX:
    return "ptx";
  case artifact::CodeFormat::Cubin:
    return "cubin";
  }
  return "bin";
}

bool writeKernelDump(StringRef dir,
                     const std::vector<std::pair<std::string, std::string>> &ir,
                     const std::string *bytes) {
  auto inDir = [&](const std::string &name) {
    SmallString<256> path(dir);
    sys::path::append(path, name);
    return path.str().str();
  };
  std::map<std::string, std::string> irFile;
  for (const auto &[symbol, text] : ir) {
    irFile[symbol] = symbol + ".mlir";
    if (!writeFile(inDir(symbol + ".mlir"), text))
      return false;
  }
  if (!bytes)
    return true;
  auto loaded = artifact::Artifact::load("<compiled artifact>", bytes->data(),
                                         bytes->size());
  if (!loaded) {
    errs() << "v4c: --dump-kernels-to: " << loaded.status().message() << "\n";
    return false;
  }
  const artifact::Artifact &a = *loaded;
  std::vector<std::string> codeFile;
  for (size_t i = 0; i < a.codeObjects().size(); ++i) {
    codeFile.push_back("code" + std::to_string(i) + "." +
                       codeExtension(a.codeObjects()[i].format));
    artifact::ByteSpan code = a.code(i);
    if (!writeFile(
            inDir(codeFile.back()),
            StringRef(reinterpret_cast<const char *>(code.data), code.size)))
      return false;
  }
  std::string index;
  for (const artifact::Kernel &k : a.kernels()) {
    auto it = irFile.find(k.entrySymbol);
    index += k.name + " " + k.entrySymbol + " " +
             (it == irFile.end() ? "-" : it->second) + " " +
             (k.codeObject < codeFile.size() ? codeFile[k.codeObject] : "-") +
             "\n";
  }
  return writeFile(inDir("kernels.txt"), index);
}

} // namespace v4
