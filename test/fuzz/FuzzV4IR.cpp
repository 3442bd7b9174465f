//===- FuzzV4IR.cpp - fuzz-v4-ir: bytes through the parser and verifier ---===//
//
// Bytes -> MLIR's parser with the v4 dialect and every lowering dialect
// registered -> the verifier -> canonicalize and CSE on a module that
// verified (docs/RELIABILITY.md 2.2: no pass crashes on verifier-valid IR).
// Diagnostics are swallowed; one context serves every input.
//
//===----------------------------------------------------------------------===//
#include "dialects/V4/V4IRText.h"
#include "lowering/Pipelines.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"

#include <cstdint>
#include <memory>

namespace {

mlir::MLIRContext &context() {
  static std::unique_ptr<mlir::MLIRContext> ctx = [] {
    mlir::DialectRegistry registry;
    mlir::v4::registerV4IRDialects(registry);
    auto c = std::make_unique<mlir::MLIRContext>(
        registry, mlir::MLIRContext::Threading::DISABLED);
    c->loadAllAvailableDialects();
    c->getDiagEngine().registerHandler([](mlir::Diagnostic &) {});
    return c;
  }();
  return *ctx;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mlir::MLIRContext &ctx = context();
  // As the tools do: nesting is bounded before the parser recurses.
  if (mlir::v4::findTooDeepIR(
          llvm::StringRef(reinterpret_cast<const char *>(data), size)))
    return 0;
  // As the tools read files: a NUL-terminated buffer (the lexer relies on
  // the terminator; parseSourceString's unterminated view reads past it).
  llvm::SourceMgr sources;
  sources.AddNewSourceBuffer(
      llvm::MemoryBuffer::getMemBufferCopy(
          llvm::StringRef(reinterpret_cast<const char *>(data), size),
          "fuzz.mlir"),
      llvm::SMLoc());
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceFile<mlir::ModuleOp>(sources, mlir::ParserConfig(&ctx));
  if (!module || mlir::failed(mlir::verify(*module)))
    return 0;
  mlir::PassManager pm(&ctx);
  pm.addPass(mlir::createCanonicalizerPass());
  pm.addPass(mlir::createCSEPass());
  (void)pm.run(*module);
  return 0;
}
