//===- V4DecomposeKVCompressPass.cpp - kv.compress -> linears + rest ------===//
#include "dialects/V4/V4Dialect.h"
#include "dialects/V4/V4Ops.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"

namespace mlir::v4 {
#define GEN_PASS_DEF_V4DECOMPOSEKVCOMPRESSPASS
#include "passes/Passes.h.inc"
} // namespace mlir::v4

using namespace mlir;
using namespace mlir::v4;

namespace {

class V4DecomposeKVCompressPass
    : public v4::impl::V4DecomposeKVCompressPassBase<
          V4DecomposeKVCompressPass> {
public:
  using Base::Base;

  void runOnOperation() override {
    SmallVector<KVCompressOp> ops;
    getOperation()->walk([&](KVCompressOp op) { ops.push_back(op); });
    for (KVCompressOp op : ops) {
      OpBuilder b(op);
      auto xType = cast<RankedTensorType>(op.getX().getType());
      SmallVector<int64_t> shape(xType.getShape());
      shape.back() = op.getState().getType().getWidth();
      auto projType = RankedTensorType::get(shape, b.getF32Type());
      auto project = [&](Value weight) {
        return LinearOp::create(b, op.getLoc(), TypeRange{projType},
                                ValueRange{op.getX(), weight})
            .getResult();
      };
      Value kv = project(op.getWkv()), score = project(op.getWgate());
      auto rest = KVCompressProjectedOp::create(
          b, op.getLoc(), op.getNewState().getType(),
          op.getNewCache().getType(), kv, score, op.getApe(), op.getNorm(),
          op.getState(), op.getCache(), op.getStartPos(), op.getRopeAttr(),
          op.getNormEpsAttr(), op.getRotateAttr());
      op->replaceAllUsesWith(rest->getResults());
      op->erase();
      ++numDecomposed;
    }
  }
};

} // namespace
