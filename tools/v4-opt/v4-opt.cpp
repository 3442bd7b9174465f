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

#include "dialects/V4/V4Dialect.h"
#include "lowering/Pipelines.h"
#include "passes/Passes.h"
#include "runtime/artifact/Artifact.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

#include "llvm/Support/CommandLine.h"
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
  registry.insert<mlir::v4::V4Dialect, mlir::func::FuncDialect,
                  mlir::arith::ArithDialect, mlir::tensor::TensorDialect,
                  mlir::linalg::LinalgDialect, mlir::memref::MemRefDialect,
                  mlir::scf::SCFDialect>();
  mlir::v4::registerLoweringDialects(registry);
  llvm::cl::SetVersionPrinter([](llvm::raw_ostream &os) {
    os << v4::artifact::toolVersion("v4-opt") << "\n";
  });
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "v4 optimizer driver\n", registry));
}
