//===- v4-opt.cpp - opt-style driver for the v4 dialect -------------------===//
//
// Registers the v4 dialect, the upstream dialects v4 programs and their
// lowerings use (with every target's interface models), the v4 graph and
// lowering passes, the phase pipelines of lowering/Pipelines.h and the
// upstream passes those pipelines run, then hands over to MlirOptMain: any
// stage v4c prints can be replayed (--pass-pipeline, --mlir-print-ir-*,
// --mlir-timing, --verify-diagnostics, ...). --version prints the one
// line every tool prints (v4::artifact::toolVersion).
//
//===----------------------------------------------------------------------===//

#include "dialects/V4/V4IRText.h"
#include "lowering/Pipelines.h"
#include "passes/Passes.h"
#include "runtime/artifact/Artifact.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

int main(int argc, char **argv) {
  mlir::registerTransformsPasses();
  mlir::registerConversionPasses();
  mlir::arith::registerArithPasses();
  mlir::bufferization::registerBufferizationPasses();
  mlir::memref::registerMemRefPasses();
  mlir::registerLinalgPasses();
  mlir::v4::registerV4Passes();
  mlir::v4::registerV4LoweringPasses();

  mlir::DialectRegistry registry;
  mlir::v4::registerV4IRDialects(registry);
  llvm::cl::SetVersionPrinter([](llvm::raw_ostream &os) {
    os << v4::artifact::toolVersion("v4-opt") << "\n";
  });
  auto [input, output] = mlir::registerAndParseCLIOptions(
      argc, argv, "v4 optimizer driver\n", registry);
  // MLIR's parser recurses per nesting level: bound it on the bytes first
  // (dialects/V4/V4IRText.h). Standard input is not read ahead.
  if (input != "-") {
    auto text = llvm::MemoryBuffer::getFile(input);
    if (text) {
      llvm::StringRef bytes = (*text)->getBuffer();
      if (std::optional<size_t> deep = mlir::v4::findTooDeepIR(bytes)) {
        llvm::errs() << mlir::v4::tooDeepIRMessage(input, bytes, *deep) << "\n";
        return 1;
      }
    }
  }
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, input, output, registry));
}
