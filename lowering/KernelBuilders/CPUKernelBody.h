//===- CPUKernelBody.h - helpers shared by the CPU kernel builders -*- C++
//-*-===//
//
// Internal to lowering/KernelBuilders. Loops, numerics and views every
// family's kernel builder uses, so each family file holds only its ops.
//
//===----------------------------------------------------------------------===//
#ifndef V4_LOWERING_KERNELBUILDERS_CPUKERNELBODY_H
#define V4_LOWERING_KERNELBUILDERS_CPUKERNELBODY_H

#include "dialects/V4/V4Ops.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <optional>

namespace mlir::v4::cpu {

/// Loops and numerics in a kernel body.
struct KernelBody {
  ImplicitLocOpBuilder &b;

  Value idx(int64_t v) { return arith::ConstantIndexOp::create(b, v); }
  Value f32(double v) {
    return arith::ConstantOp::create(b, b.getF32FloatAttr(v));
  }
  /// Widens a loaded element to f32.
  Value toF32(Value v) {
    if (v.getType().isF32())
      return v;
    return arith::ExtFOp::create(b, b.getF32Type(), v);
  }
  /// Narrows an f32 value to `t` (round to nearest even).
  Value fromF32(Value v, Type t) {
    if (t.isF32())
      return v;
    return arith::TruncFOp::create(b, t, v);
  }
  /// Rounds an f32 value to bf16 and back: a bf16 rounding point.
  Value roundBF16(Value v) { return toF32(fromF32(v, b.getBF16Type())); }
  /// Views a memref [d0, ..., dn-1] as [prod(d0..dk-1), prod(dk..dn-1)] with
  /// k = n - innerRank ([1, ...] when there are no leading dims).
  Value collapse2D(Value m, int64_t innerRank);
  Value dim(Value m, int64_t i) { return memref::DimOp::create(b, m, i); }
};

using LoopFn = function_ref<void(ImplicitLocOpBuilder &, Value)>;
using ReduceFn =
    function_ref<SmallVector<Value>(ImplicitLocOpBuilder &, Value, ValueRange)>;

/// for (iv = lb; iv < ub; iv += 1) fn(iv).
inline void loop(ImplicitLocOpBuilder &b, Value lb, Value ub, LoopFn fn) {
  Value one = arith::ConstantIndexOp::create(b, 1);
  scf::ForOp::create(b, lb, ub, one, ValueRange(),
                     [&](OpBuilder &nb, Location loc, Value iv, ValueRange) {
                       ImplicitLocOpBuilder ib(loc, nb);
                       fn(ib, iv);
                       scf::YieldOp::create(ib);
                     });
}

/// A loop carrying `init`; fn returns the next values. Returns the results.
inline SmallVector<Value> reduce(ImplicitLocOpBuilder &b, Value lb, Value ub,
                                 ValueRange init, ReduceFn fn) {
  Value one = arith::ConstantIndexOp::create(b, 1);
  auto forOp = scf::ForOp::create(
      b, lb, ub, one, init,
      [&](OpBuilder &nb, Location loc, Value iv, ValueRange acc) {
        ImplicitLocOpBuilder ib(loc, nb);
        scf::YieldOp::create(ib, fn(ib, iv, acc));
      });
  return SmallVector<Value>(forOp.getResults());
}

/// Creates the entry block of `fn` and a builder at its end.
inline ImplicitLocOpBuilder bodyBuilder(Operation *op, func::FuncOp fn) {
  return ImplicitLocOpBuilder::atBlockEnd(op->getLoc(), fn.addEntryBlock());
}

/// Kernel builders of one op family. Each returns std::nullopt when `op` is
/// not one of its ops, otherwise the result of building the body of `fn`
/// (whose signature is already set: see getStorageMemRefTypes).
std::optional<LogicalResult> buildCoreKernel(Operation *op, func::FuncOp fn);
std::optional<LogicalResult> buildAttentionKernel(Operation *op,
                                                  func::FuncOp fn);
std::optional<LogicalResult> buildMoEHyperConnKernel(Operation *op,
                                                     func::FuncOp fn);
std::optional<LogicalResult> buildEngramKernel(Operation *op, func::FuncOp fn);

} // namespace mlir::v4::cpu

#endif // V4_LOWERING_KERNELBUILDERS_CPUKERNELBODY_H
