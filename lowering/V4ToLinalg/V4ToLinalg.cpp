//===- V4ToLinalg.cpp - target-neutral kernel bodies ----------------------===//
#include "lowering/V4ToLinalg/V4ToLinalg.h"
#include "lowering/V4ToLinalg/V4ToLinalgPatterns.h"

#include "dialects/V4/V4Ops.h"
#include "dialects/V4/V4StorageLayout.h"
#include "lowering/Passes.h"
#include "lowering/Target/TargetBackend.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Func/Transforms/FuncConversions.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

namespace mlir::v4 {
#define GEN_PASS_DEF_CONVERTV4TOLINALGPASS
#include "lowering/Passes.h.inc"
} // namespace mlir::v4

using namespace mlir;
using namespace mlir::v4;

namespace {

/// v4.kernel.store -> one bufferization.materialize_in_destination per
/// storage tensor.
struct KernelStoreLowering : public OpConversionPattern<KernelStoreOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(KernelStoreOp op, OneToNOpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    ValueRange values = adaptor.getValue(), dests = adaptor.getDest();
    if (values.size() != dests.size())
      return rewriter.notifyMatchFailure(op, "value and destination differ");
    SmallVector<Value> results;
    for (auto [v, d] : llvm::zip(values, dests))
      results.push_back(bufferization::MaterializeInDestinationOp::create(
                            rewriter, op.getLoc(), v, d)
                            .getResult());
    rewriter.replaceOpWithMultiple(op, {results});
    return success();
  }
};

struct ConvertV4ToLinalgPass
    : public mlir::v4::impl::ConvertV4ToLinalgPassBase<ConvertV4ToLinalgPass> {
  void runOnOperation() override {
    ModuleOp kernels = getOperation();
    MLIRContext *ctx = &getContext();
    // An op without a body here and without a hand-built kernel of the
    // target cannot be compiled: say so at the op.
    WalkResult missing = kernels.walk([&](Operation *op) {
      if (!isa<V4Dialect>(op->getDialect()) || isa<KernelStoreOp>(op) ||
          hasV4ToLinalgLowering(op))
        return WalkResult::advance();
      std::string target = "the target";
      for (Operation *p = op; p; p = p->getParentOp())
        if (auto a = p->getAttrOfType<StringAttr>("v4.target")) {
          target = "target '" + a.getValue().str() + "'";
          break;
        }
      InFlightDiagnostic diag =
          op->emitError() << "no target-neutral lowering for '" << op->getName()
                          << "', and " << target << " builds no kernel for it";
      if (auto gate = dyn_cast<EngramGateOp>(op); gate && gate.hasShortConv())
        diag << " (the demo short-conv form of V4-SPEC 8.6 step 5 is not "
                "supported)";
      return WalkResult::interrupt();
    });
    if (missing.wasInterrupted())
      return signalPassFailure();

    // Kernel signatures change to storage types (1:N for the compressor
    // state): argument and result attributes do not survive that, and the
    // stores already say where every result goes.
    for (auto fn : kernels.getOps<func::FuncOp>())
      if (fn->hasAttr("v4.kernel")) {
        fn.removeArgAttrsAttr();
        fn.removeResAttrsAttr();
      }

    StorageTypeConverter converter;
    ConversionTarget target(*ctx);
    target.addIllegalDialect<V4Dialect>();
    target.markUnknownOpDynamicallyLegal(
        [&](Operation *op) { return converter.isLegal(op); });
    target.addDynamicallyLegalOp<func::FuncOp>([&](func::FuncOp fn) {
      return converter.isSignatureLegal(fn.getFunctionType()) &&
             converter.isLegal(&fn.getBody());
    });
    RewritePatternSet patterns(ctx);
    populateFunctionOpInterfaceTypeConversionPattern<func::FuncOp>(patterns,
                                                                   converter);
    populateReturnOpTypeConversionPattern(patterns, converter);
    populateV4ToLinalgConversionPatterns(converter, patterns);
    if (failed(applyPartialConversion(kernels, target, std::move(patterns))))
      return signalPassFailure();

    // A result computed by an scf.for that starts from its destination (a
    // tied state updated element by element, in place) is already there:
    // materializing it would leave one-shot bufferization no way to keep
    // the loop in place. v4-finalize-kernel-abi sees through the loop to
    // the argument.
    kernels.walk([](bufferization::MaterializeInDestinationOp m) {
      auto forOp = m.getSource().getDefiningOp<scf::ForOp>();
      if (!forOp || forOp.getInitArgs()[cast<OpResult>(m.getSource())
                                            .getResultNumber()] != m.getDest())
        return;
      m.getResult().replaceAllUsesWith(m.getSource());
      m.erase();
    });
  }
};

} // namespace

void mlir::v4::populateV4ToLinalgConversionPatterns(
    const TypeConverter &converter, RewritePatternSet &patterns) {
  patterns.add<KernelStoreLowering>(converter, patterns.getContext());
  populateV4ToLinalgCorePatterns(converter, patterns);
  populateV4ToLinalgHyperConnPatterns(converter, patterns);
}

bool mlir::v4::hasV4ToLinalgLowering(Operation *op) {
  return isa<KernelStoreOp>(op) || isLoweredByV4ToLinalgCore(op) ||
         isLoweredByV4ToLinalgHyperConn(op);
}
