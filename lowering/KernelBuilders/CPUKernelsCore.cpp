//===- CPUKernelsCore.cpp - CPU kernels of the core family ----------------===//
//
// v4.rms_norm, ... (V4-SPEC 2, 3, 5.1, 5.7).
//
//===----------------------------------------------------------------------===//
#include "lowering/KernelBuilders/CPUKernelBody.h"

#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;

namespace mlir::v4::cpu {
namespace {

//===----------------------------------------------------------------------===//
// v4.rms_norm (V4-SPEC 2.1, 5.1)
//===----------------------------------------------------------------------===//

LogicalResult buildRmsNorm(RMSNormOp op, func::FuncOp fn) {
  auto b = bodyBuilder(op, fn);
  KernelBody k{b};
  bool hasWeight = static_cast<bool>(op.getWeight());
  Value x = fn.getArgument(0);
  Value w = hasWeight ? fn.getArgument(1) : Value();
  Value y = fn.getArgument(hasWeight ? 2 : 1);
  Type elt = cast<MemRefType>(x.getType()).getElementType();
  int64_t r = op.getReduceRank();
  bool inputPrecision = op.getPrecision() == Precision::input;

  Value x2 = k.collapse2D(x, r), y2 = k.collapse2D(y, r);
  Value w1;
  if (w) {
    auto wt = cast<MemRefType>(w.getType());
    w1 = wt.getRank() == 1 ? w
                           : memref::CollapseShapeOp::create(
                                 b, w,
                                 ArrayRef<ReassociationIndices>{
                                     llvm::to_vector(llvm::seq<int64_t>(
                                         0, wt.getRank()))});
  }
  Value rows = k.dim(x2, 0), cols = k.dim(x2, 1);
  Value zero = k.idx(0), one = k.idx(1);
  Value colsF = arith::UIToFPOp::create(
      b, b.getF32Type(),
      arith::IndexCastUIOp::create(b, b.getI64Type(), cols));
  Value eps = k.f32(op.getEps().convertToDouble());

  scf::ForOp::create(
      b, zero, rows, one, ValueRange(),
      [&](OpBuilder &nb, Location loc, Value i, ValueRange) {
        ImplicitLocOpBuilder ib(loc, nb);
        KernelBody kb{ib};
        // Sum of squares, accumulated in fp32. In "input" precision each
        // square is a bf16 value (the reference squares the bf16 tensor).
        auto sum = scf::ForOp::create(
            ib, zero, cols, one, ValueRange{kb.f32(0.0)},
            [&](OpBuilder &sb, Location l2, Value j, ValueRange acc) {
              ImplicitLocOpBuilder jb(l2, sb);
              KernelBody kj{jb};
              Value v = kj.toF32(memref::LoadOp::create(jb, x2, ValueRange{i, j}));
              Value sq = arith::MulFOp::create(jb, v, v);
              if (inputPrecision && !elt.isF32())
                sq = kj.roundBF16(sq);
              scf::YieldOp::create(jb, ValueRange{
                  arith::AddFOp::create(jb, acc[0], sq).getResult()});
            });
        Value mean = arith::DivFOp::create(ib, sum.getResult(0), colsF);
        Value rstd;
        if (inputPrecision && !elt.isF32()) {
          // Per-head q norm (V4-SPEC 5.1): mean, + eps, rsqrt, each bf16.
          mean = kb.roundBF16(mean);
          Value t = kb.roundBF16(arith::AddFOp::create(ib, mean, eps));
          rstd = kb.roundBF16(math::RsqrtOp::create(ib, t));
        } else {
          rstd = math::RsqrtOp::create(ib, arith::AddFOp::create(ib, mean, eps));
        }
        scf::ForOp::create(
            ib, zero, cols, one, ValueRange(),
            [&](OpBuilder &sb, Location l2, Value j, ValueRange) {
              ImplicitLocOpBuilder jb(l2, sb);
              KernelBody kj{jb};
              Value v = kj.toF32(memref::LoadOp::create(jb, x2, ValueRange{i, j}));
              Value out = arith::MulFOp::create(jb, v, rstd);
              if (w1) {
                // The weight (bf16 in the checkpoint, held in fp32) multiplies
                // the normalised value.
                Value wv = kj.toF32(memref::LoadOp::create(jb, w1, ValueRange{j}));
                out = arith::MulFOp::create(jb, wv, out);
              }
              memref::StoreOp::create(jb, kj.fromF32(out, elt), y2,
                                      ValueRange{i, j});
              scf::YieldOp::create(jb);
            });
        scf::YieldOp::create(ib);
      });
  func::ReturnOp::create(b);
  return success();
}

} // namespace

std::optional<LogicalResult> buildCoreKernel(Operation *op, func::FuncOp fn) {
  return llvm::TypeSwitch<Operation *, std::optional<LogicalResult>>(op)
      .Case<RMSNormOp>([&](auto o) { return buildRmsNorm(o, fn); })
      .Default([](Operation *) { return std::nullopt; });
}

} // namespace mlir::v4::cpu
