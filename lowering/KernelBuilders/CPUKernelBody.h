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
#include "lowering/Numerics/LowPrecision.h"

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
  Value roundBF16(Value v) { return lowp::roundBF16(b, v); }
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

/// Loads element k of an activation row as f32.
using ActLoadFn = function_ref<Value(ImplicitLocOpBuilder &, Value)>;
/// Loads the raw code (i8) of weight column / byte `col`, or of the weight
/// scale of block `block`.
using CodeLoadFn = function_ref<Value(ImplicitLocOpBuilder &, Value)>;

/// Quantises an activation row of K elements to FP8 per `blk` block
/// (V4-SPEC 2.4 step 1): qa[k] gets the e4m3 grid value of x / s_a (f32),
/// sa[j] the pow-2 scale s_a of block j.
void quantizeActFP8(ImplicitLocOpBuilder &b, ActLoadFn act, Value K,
                    int64_t blk, Value qa, Value sa);

/// The fp32 block-scaled dot product of a quantised activation row (qa, sa
/// from quantizeActFP8 with block `blk`) with one weight row: FP8 over
/// `blk`-wide K blocks with one e8m0 scale per block, or FP4 (two codes per
/// byte, low nibble first) over 32-wide K slices with one e8m0 scale per
/// slice. Partials in fp32, ascending K, each scaled by s_a then s_w
/// (V4-SPEC 2.4 steps 2-3).
Value blockScaledDot(ImplicitLocOpBuilder &b, lowp::WeightFormat format,
                     Value qa, Value sa, Value K, int64_t blk,
                     CodeLoadFn weightCode, CodeLoadFn scaleCode);

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
