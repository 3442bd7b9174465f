//===- DropBF16Rounding.cpp - fp32 numerics in the kernels ----------------===//
//
// Pass v4-drop-bf16-rounding (lowering/Passes.td).
//
//===----------------------------------------------------------------------===//
#include "dialects/V4/V4Numerics.h"
#include "lowering/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::v4 {
#define GEN_PASS_DEF_V4DROPBF16ROUNDINGPASS
#include "lowering/Passes.h.inc"
} // namespace mlir::v4

using namespace mlir;
using namespace mlir::v4;

namespace {

struct V4DropBF16RoundingPass
    : public mlir::v4::impl::V4DropBF16RoundingPassBase<
          V4DropBF16RoundingPass> {
  void runOnOperation() override {
    ModuleOp kernels = getOperation();
    FailureOr<ModuleNumerics> modes = getModuleNumerics(kernels);
    if (failed(modes))
      return signalPassFailure();
    if (modes->numerics != ::v4::NumericsMode::FP32)
      return;

    // extf(truncf(x : f32 -> bf16) : bf16 -> f32) is the rounding point.
    SmallVector<arith::ExtFOp> points;
    kernels.walk([&](arith::ExtFOp ext) {
      auto trunc = ext.getIn().getDefiningOp<arith::TruncFOp>();
      if (trunc && trunc.getType().isBF16() && ext.getType().isF32() &&
          trunc.getIn().getType().isF32())
        points.push_back(ext);
    });
    for (arith::ExtFOp ext : points) {
      auto trunc = ext.getIn().getDefiningOp<arith::TruncFOp>();
      ext.replaceAllUsesWith(trunc.getIn());
      ext.erase();
      if (trunc->use_empty())
        trunc.erase();
      ++numDropped;
    }

    // Every activation is f32 now: a narrowing to bf16 that remains is a
    // rounding the graph still asks for.
    WalkResult left = kernels.walk([&](arith::TruncFOp trunc) {
      if (!getElementTypeOrSelf(trunc.getType()).isBF16())
        return WalkResult::advance();
      auto fn = trunc->getParentOfType<func::FuncOp>();
      trunc.emitError() << "fp32 numerics: kernel '"
                        << (fn ? fn.getSymName() : StringRef("?"))
                        << "' still rounds to bf16 (a bf16 value the graph "
                           "did not widen)";
      return WalkResult::interrupt();
    });
    if (left.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace
