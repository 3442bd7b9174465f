//===- CPUKernelsMoEHyperConn.cpp - CPU kernels: mHC, MTP, MoE -------------===//
//
// v4.mhc.*, v4.mtp.*, v4.moe.* (V4-SPEC 4, 6, 7).
//
//===----------------------------------------------------------------------===//
#include "lowering/KernelBuilders/CPUKernelBody.h"

#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;

namespace mlir::v4::cpu {
namespace {

//===----------------------------------------------------------------------===//
// v4.mhc.sinkhorn (V4-SPEC 4.2 step 4)
//===----------------------------------------------------------------------===//

LogicalResult buildSinkhorn(MhcSinkhornOp op, func::FuncOp fn) {
  auto b = bodyBuilder(op, fn);
  KernelBody k{b};
  Value in = fn.getArgument(0), out = fn.getArgument(1);
  auto type = cast<MemRefType>(in.getType());
  int64_t n = type.getDimSize(type.getRank() - 1);
  // [..., n, n] -> [M, n*n]: one matrix per row, kept in registers.
  Value in2 = k.collapse2D(in, 2), out2 = k.collapse2D(out, 2);
  Value zero = k.idx(0), one = k.idx(1);
  Value eps = k.f32(op.getEps().convertToDouble());
  int64_t iters = op.getIters();

  scf::ForOp::create(
      b, zero, k.dim(in2, 0), one, ValueRange(),
      [&](OpBuilder &nb, Location loc, Value m, ValueRange) {
        ImplicitLocOpBuilder ib(loc, nb);
        KernelBody kb{ib};
        // n is small (4 lanes): unroll into SSA values.
        SmallVector<Value> c(n * n);
        for (int64_t e = 0; e < n * n; ++e)
          c[e] = memref::LoadOp::create(ib, in2, ValueRange{m, kb.idx(e)});
        // softmax over each row (k), then + eps.
        for (int64_t j = 0; j < n; ++j) {
          Value mx = c[j * n];
          for (int64_t q = 1; q < n; ++q)
            mx = arith::MaximumFOp::create(ib, mx, c[j * n + q]);
          SmallVector<Value> ex(n);
          Value s = kb.f32(0.0);
          for (int64_t q = 0; q < n; ++q) {
            ex[q] = math::ExpOp::create(
                ib, arith::SubFOp::create(ib, c[j * n + q], mx));
            s = arith::AddFOp::create(ib, s, ex[q]);
          }
          for (int64_t q = 0; q < n; ++q)
            c[j * n + q] = arith::AddFOp::create(
                ib, arith::DivFOp::create(ib, ex[q], s), eps);
        }
        auto normCols = [&] {
          for (int64_t q = 0; q < n; ++q) {
            Value s = kb.f32(0.0);
            for (int64_t j = 0; j < n; ++j)
              s = arith::AddFOp::create(ib, s, c[j * n + q]);
            Value d = arith::AddFOp::create(ib, s, eps);
            for (int64_t j = 0; j < n; ++j)
              c[j * n + q] = arith::DivFOp::create(ib, c[j * n + q], d);
          }
        };
        auto normRows = [&] {
          for (int64_t j = 0; j < n; ++j) {
            Value s = kb.f32(0.0);
            for (int64_t q = 0; q < n; ++q)
              s = arith::AddFOp::create(ib, s, c[j * n + q]);
            Value d = arith::AddFOp::create(ib, s, eps);
            for (int64_t q = 0; q < n; ++q)
              c[j * n + q] = arith::DivFOp::create(ib, c[j * n + q], d);
          }
        };
        normCols();
        for (int64_t it = 1; it < iters; ++it) {
          normRows();
          normCols();
        }
        for (int64_t e = 0; e < n * n; ++e)
          memref::StoreOp::create(ib, c[e], out2, ValueRange{m, kb.idx(e)});
        scf::YieldOp::create(ib);
      });
  func::ReturnOp::create(b);
  return success();
}

} // namespace

std::optional<LogicalResult> buildMoEHyperConnKernel(Operation *op,
                                                     func::FuncOp fn) {
  return llvm::TypeSwitch<Operation *, std::optional<LogicalResult>>(op)
      .Case<MhcSinkhornOp>([&](auto o) { return buildSinkhorn(o, fn); })
      .Default([](Operation *) { return std::nullopt; });
}

} // namespace mlir::v4::cpu
