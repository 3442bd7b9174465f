//===- V4ApplyNumericsPass.cpp - the graph in the module's numerics -------===//
#include "dialects/V4/V4Dialect.h"
#include "dialects/V4/V4Numerics.h"
#include "dialects/V4/V4Ops.h"
#include "dialects/V4/V4Types.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Verifier.h"

namespace mlir::v4 {
#define GEN_PASS_DEF_V4APPLYNUMERICSPASS
#include "passes/Passes.h.inc"
} // namespace mlir::v4

using namespace mlir;
using namespace mlir::v4;

namespace {

/// `type` with bf16 elements replaced by f32 (tensors and the decode-state
/// types that carry an element type); null if it has none.
Type widenBF16(Type type) {
  auto f32 = Float32Type::get(type.getContext());
  if (auto t = dyn_cast<RankedTensorType>(type))
    return t.getElementType().isBF16() ? t.clone(f32) : Type();
  if (auto t = dyn_cast<WindowRingType>(type))
    return t.getElementType().isBF16()
               ? WindowRingType::get(type.getContext(), t.getBatch(),
                                     t.getSlots(), t.getDim(), f32)
               : Type();
  if (auto t = dyn_cast<KVCacheType>(type))
    return t.getElementType().isBF16()
               ? KVCacheType::get(type.getContext(), t.getBatch(),
                                  t.getCapacity(), t.getDim(), t.getRatio(),
                                  f32)
               : Type();
  return Type();
}

/// A weight, or a value computed from weights by tensor ops only (a
/// reshape or slice of a parameter): it keeps its checkpoint type.
bool isWeightDerived(Operation *op, const DenseSet<Value> &weights) {
  if (isa<ParameterOp, ParameterStackOp>(op))
    return true;
  if (!isa_and_nonnull<tensor::TensorDialect>(op->getDialect()))
    return false;
  bool any = false;
  for (Value v : op->getOperands()) {
    if (!isa<RankedTensorType>(v.getType()))
      continue;
    if (!weights.contains(v))
      return false;
    any = true;
  }
  return any;
}

struct V4ApplyNumericsPass
    : public mlir::v4::impl::V4ApplyNumericsPassBase<V4ApplyNumericsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    FailureOr<ModuleNumerics> modes = getModuleNumerics(module);
    if (failed(modes))
      return signalPassFailure();

    if (modes->fakeQuant == ::v4::FakeQuantMode::None) {
      SmallVector<FakeQuantOp> fakeQuants;
      module.walk([&](FakeQuantOp op) { fakeQuants.push_back(op); });
      for (FakeQuantOp op : fakeQuants) {
        op.getResult().replaceAllUsesWith(op.getX());
        op.erase();
        ++numFakeQuantsRemoved;
      }
    }

    if (modes->numerics == ::v4::NumericsMode::FP32) {
      for (auto fn : module.getOps<func::FuncOp>())
        if (failed(retype(fn)))
          return signalPassFailure();
      // The ops verify against their new operand and result types.
      if (failed(verify(module)))
        return signalPassFailure();
    }
  }

  LogicalResult retype(func::FuncOp fn) {
    if (fn.isExternal())
      return success();
    DenseSet<Value> weights;
    auto widen = [&](Value v) {
      if (Type t = widenBF16(v.getType())) {
        v.setType(t);
        ++numRetyped;
      }
    };
    for (BlockArgument arg : fn.getArguments())
      widen(arg);
    WalkResult walk = fn.walk([&](Operation *op) -> WalkResult {
      for (Region &region : op->getRegions())
        for (Block &block : region)
          if (&region != &fn.getBody())
            for (BlockArgument arg : block.getArguments())
              widen(arg);
      if (isWeightDerived(op, weights)) {
        for (Value r : op->getResults())
          weights.insert(r);
        return WalkResult::advance();
      }
      if (auto constant = dyn_cast<arith::ConstantOp>(op))
        if (widenBF16(constant.getType()))
          return op->emitError("fp32 numerics: a bf16 constant activation "
                               "cannot be widened");
      for (Value r : op->getResults())
        widen(r);
      return WalkResult::advance();
    });
    if (walk.wasInterrupted())
      return failure();
    // The signature follows the entry block and the returned values.
    SmallVector<Type> results;
    fn.walk([&](func::ReturnOp ret) {
      if (ret->getParentOp() == fn)
        results.assign(ret.getOperandTypes().begin(),
                       ret.getOperandTypes().end());
    });
    fn.setFunctionType(FunctionType::get(
        fn.getContext(), fn.getBody().getArgumentTypes(), results));
    return success();
  }
};

} // namespace
