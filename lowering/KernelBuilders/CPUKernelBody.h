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

/// The one vocabulary of the hand-built kernel bodies: constants, float
/// (`...f`) and integer/index (`...i`) arithmetic, loads and stores, and the
/// widening/narrowing of elements. Low-precision numerics are in
/// lowering/Numerics/LowPrecision.h.
struct KernelBody {
  ImplicitLocOpBuilder &b;

  Value idx(int64_t v) { return arith::ConstantIndexOp::create(b, v); }
  Value f32(double v) { return lowp::f32(b, v); }
  Value i32(int64_t v) { return lowp::i32(b, v); }
  Value i64(int64_t v) {
    return arith::ConstantOp::create(b, b.getI64IntegerAttr(v));
  }

  Value addf(Value x, Value y) { return arith::AddFOp::create(b, x, y); }
  Value subf(Value x, Value y) { return arith::SubFOp::create(b, x, y); }
  Value mulf(Value x, Value y) { return arith::MulFOp::create(b, x, y); }
  Value divf(Value x, Value y) { return arith::DivFOp::create(b, x, y); }
  Value maxf(Value x, Value y) { return arith::MaximumFOp::create(b, x, y); }
  Value minf(Value x, Value y) { return arith::MinimumFOp::create(b, x, y); }
  Value exp(Value x) { return math::ExpOp::create(b, x); }
  Value cmpf(arith::CmpFPredicate p, Value x, Value y) {
    return arith::CmpFOp::create(b, p, x, y);
  }

  Value addi(Value x, Value y) { return arith::AddIOp::create(b, x, y); }
  Value subi(Value x, Value y) { return arith::SubIOp::create(b, x, y); }
  Value muli(Value x, Value y) { return arith::MulIOp::create(b, x, y); }
  Value divui(Value x, Value y) { return arith::DivUIOp::create(b, x, y); }
  Value remui(Value x, Value y) { return arith::RemUIOp::create(b, x, y); }
  Value minui(Value x, Value y) { return arith::MinUIOp::create(b, x, y); }
  Value minsi(Value x, Value y) { return arith::MinSIOp::create(b, x, y); }
  Value maxsi(Value x, Value y) { return arith::MaxSIOp::create(b, x, y); }
  Value andi(Value x, Value y) { return arith::AndIOp::create(b, x, y); }
  Value ori(Value x, Value y) { return arith::OrIOp::create(b, x, y); }
  Value cmpi(arith::CmpIPredicate p, Value x, Value y) {
    return arith::CmpIOp::create(b, p, x, y);
  }
  Value select(Value c, Value x, Value y) {
    return arith::SelectOp::create(b, c, x, y);
  }
  Value toIndex(Value v) {
    return arith::IndexCastOp::create(b, b.getIndexType(), v);
  }
  /// An index (or integer) value as i64.
  Value toI64(Value v) {
    return arith::IndexCastOp::create(b, b.getI64Type(), v);
  }

  Value load(Value m, ValueRange ix) {
    return memref::LoadOp::create(b, m, ix);
  }
  /// Loads an element widened to f32.
  Value loadF(Value m, ValueRange ix) { return toF32(load(m, ix)); }
  void store(Value v, Value m, ValueRange ix) {
    memref::StoreOp::create(b, v, m, ix);
  }
  /// Stores an f32 value narrowed to the element type of `m`.
  void storeF(Value v, Value m, ValueRange ix) {
    store(fromF32(v, cast<MemRefType>(m.getType()).getElementType()), m, ix);
  }
  /// Widens a loaded element to f32; narrows an f32 value to `t` (RNE).
  Value toF32(Value v) { return lowp::toF32(b, v); }
  Value fromF32(Value v, Type t) { return lowp::fromF32(b, v, t); }
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
