//===- v4-opt.cpp - opt-style driver for the v4 dialect -------------------===//
//
// Registers the v4 dialect, the upstream dialects that v4 programs and their
// lowerings use, the generic transforms and the v4 passes, then hands over to
// MlirOptMain, so v4-opt takes every mlir-opt flag (--pass-pipeline,
// --mlir-print-ir-after-all, --mlir-timing, --verify-diagnostics, ...).
//
//===----------------------------------------------------------------------===//

#include "dialects/V4/V4Dialect.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::registerTransformsPasses();
  mlir::v4::registerV4Passes();

  mlir::DialectRegistry registry;
  registry.insert<mlir::v4::V4Dialect, mlir::func::FuncDialect,
                  mlir::arith::ArithDialect, mlir::tensor::TensorDialect,
                  mlir::linalg::LinalgDialect, mlir::memref::MemRefDialect,
                  mlir::scf::SCFDialect>();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "v4 optimizer driver\n", registry));
}
