//===- CPUKernelBody.h - CPU kernel builder vocabulary ----------*- C++ -*-===//
//
// Internal to lowering/KernelBuilders: the one set of helpers every family's
// kernel builder speaks (KernelBody: scalar ops, casts, memory; loop, reduce,
// sumf, ifThen, ifElse: control flow; the FP8 activation quantiser and the
// block-scaled dot), so each family file holds only its ops. The numerics
// themselves come from lowering/Numerics/LowPrecision.h.
//
//===----------------------------------------------------------------------===//
#ifndef V4_LOWERING_KERNELBUILDERS_CPUKERNELBODY_H
#define V4_LOWERING_KERNELBUILDERS_CPUKERNELBODY_H

#include "dialects/V4/V4Ops.h"
#include "lowering/Numerics/LowPrecision.h"
#include "lowering/Target/TargetBackend.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <optional>

namespace mlir::v4::cpu {

/// The one vocabulary of the hand-built kernel bodies: constants, float
/// (`...f`) and integer/index (`...i`, signedness spelled out where it
/// matters: `divui`, `minsi`) arithmetic, casts, loads and stores, and the
/// widening/narrowing of elements. Low-precision numerics (FP8/FP4/e8m0,
/// grid rounding, activation scales) are in lowering/Numerics/LowPrecision.h
/// and take the builder `b` of a KernelBody directly.
struct KernelBody {
  ImplicitLocOpBuilder &b;

  // Constants.
  Value idx(int64_t v) { return arith::ConstantIndexOp::create(b, v); }
  Value f32(double v) { return lowp::f32(b, v); }
  Value i32(int64_t v) { return lowp::i32(b, v); }
  Value i64(int64_t v) {
    return arith::ConstantOp::create(b, b.getI64IntegerAttr(v));
  }

  // Float arithmetic.
  Value addf(Value x, Value y) { return arith::AddFOp::create(b, x, y); }
  Value subf(Value x, Value y) { return arith::SubFOp::create(b, x, y); }
  Value mulf(Value x, Value y) { return arith::MulFOp::create(b, x, y); }
  Value divf(Value x, Value y) { return arith::DivFOp::create(b, x, y); }
  Value negf(Value x) { return arith::NegFOp::create(b, x); }
  Value absf(Value x) { return math::AbsFOp::create(b, x); }
  /// IEEE maximum/minimum (NaN-propagating).
  Value maxf(Value x, Value y) { return arith::MaximumFOp::create(b, x, y); }
  Value minf(Value x, Value y) { return arith::MinimumFOp::create(b, x, y); }
  Value exp(Value x) { return math::ExpOp::create(b, x); }
  Value rsqrt(Value x) { return math::RsqrtOp::create(b, x); }
  Value cmpf(arith::CmpFPredicate p, Value x, Value y) {
    return arith::CmpFOp::create(b, p, x, y);
  }

  // Integer / index arithmetic.
  Value addi(Value x, Value y) { return arith::AddIOp::create(b, x, y); }
  Value subi(Value x, Value y) { return arith::SubIOp::create(b, x, y); }
  Value muli(Value x, Value y) { return arith::MulIOp::create(b, x, y); }
  Value divui(Value x, Value y) { return arith::DivUIOp::create(b, x, y); }
  Value remui(Value x, Value y) { return arith::RemUIOp::create(b, x, y); }
  /// ceil(x / d) for a non-negative index x.
  Value ceilDivui(Value x, int64_t d) {
    return divui(addi(x, idx(d - 1)), idx(d));
  }
  Value minui(Value x, Value y) { return arith::MinUIOp::create(b, x, y); }
  Value maxui(Value x, Value y) { return arith::MaxUIOp::create(b, x, y); }
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
  /// The sum of a vector's lanes as a tree of additions (reassoc), not the
  /// ordered reduction: the fast order's end of lane-wise sums.
  Value laneSum(Value v) {
    return vector::ReductionOp::create(b, vector::CombiningKind::ADD, v,
                                       arith::FastMathFlags::reassoc |
                                           arith::FastMathFlags::contract);
  }
  /// A scalar, or its splat in the shape of vector `like`.
  Value constantLike(Value like, Value scalar) {
    if (auto vt = dyn_cast<VectorType>(like.getType()))
      return vector::BroadcastOp::create(b, vt, scalar);
    return scalar;
  }

  // Casts.
  /// An integer value as an index (index_cast: sign-extends).
  Value toIndex(Value v) {
    return arith::IndexCastOp::create(b, b.getIndexType(), v);
  }
  /// Widens a loaded element to f32; narrows an f32 value to `t` (RNE).
  Value toF32(Value v) { return lowp::toF32(b, v); }
  Value fromF32(Value v, Type t) { return lowp::fromF32(b, v, t); }
  /// Rounds an f32 value to bf16 and back: a bf16 rounding point.
  Value roundBF16(Value v) { return lowp::roundBF16(b, v); }

  // Memory.
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
  Value dim(Value m, int64_t i) { return memref::DimOp::create(b, m, i); }
  /// A stack buffer of the given static shape.
  Value stackBuffer(ArrayRef<int64_t> shape, Type elementType) {
    return memref::AllocaOp::create(b, MemRefType::get(shape, elementType));
  }
  /// A stack buffer of `n` f32 (allocate it once, at function entry).
  Value scratchF32(Value n) {
    return memref::AllocaOp::create(
        b, MemRefType::get({ShapedType::kDynamic}, b.getF32Type()),
        ValueRange{n});
  }
  /// Views a memref [d0, ..., dn-1] as [prod(d0..dk-1), prod(dk..dn-1)] with
  /// k = n - innerRank ([1, ...] when there are no leading dims).
  Value collapse2D(Value m, int64_t innerRank);
};

//===----------------------------------------------------------------------===//
// Control flow: each body gets a KernelBody at its insertion point.
//===----------------------------------------------------------------------===//

using BodyFn = function_ref<void(KernelBody &, Value)>;
using AccFn = function_ref<SmallVector<Value>(KernelBody &, Value, ValueRange)>;
using TermFn = function_ref<Value(KernelBody &, Value)>;
using BranchFn = function_ref<void(KernelBody &)>;

/// for (iv = lb; iv < ub; iv += 1) body(iv).
inline void loop(KernelBody &k, Value lb, Value ub, BodyFn body) {
  scf::ForOp::create(k.b, lb, ub, k.idx(1), ValueRange(),
                     [&](OpBuilder &nb, Location loc, Value iv, ValueRange) {
                       ImplicitLocOpBuilder ib(loc, nb);
                       KernelBody ik{ib};
                       body(ik, iv);
                       scf::YieldOp::create(ib);
                     });
}

/// A loop carrying `init`; body returns the next values. Returns the final
/// values.
inline SmallVector<Value> reduce(KernelBody &k, Value lb, Value ub,
                                 ValueRange init, AccFn body) {
  auto forOp = scf::ForOp::create(
      k.b, lb, ub, k.idx(1), init,
      [&](OpBuilder &nb, Location loc, Value iv, ValueRange acc) {
        ImplicitLocOpBuilder ib(loc, nb);
        KernelBody ik{ib};
        scf::YieldOp::create(ib, body(ik, iv, acc));
      });
  return SmallVector<Value>(forOp.getResults());
}

/// The sequential fp32 sum over [lb, ub) of term(i), ascending i:
/// ((0 + t(lb)) + t(lb+1)) + ...
inline Value sumf(KernelBody &k, Value lb, Value ub, TermFn term) {
  return reduce(
      k, lb, ub, {k.f32(0.0)},
      [&](KernelBody &ik, Value i, ValueRange acc) -> SmallVector<Value> {
        return {ik.addf(acc[0], term(ik, i))};
      })[0];
}

/// if (cond) { then }
inline void ifThen(KernelBody &k, Value cond, BranchFn then) {
  scf::IfOp::create(k.b, cond, [&](OpBuilder &nb, Location loc) {
    ImplicitLocOpBuilder ib(loc, nb);
    KernelBody ik{ib};
    then(ik);
    scf::YieldOp::create(ib);
  });
}

/// if (cond) { then } else { otherwise }
inline void ifElse(KernelBody &k, Value cond, BranchFn then,
                   BranchFn otherwise) {
  auto branch = [](BranchFn fn) {
    return [fn](OpBuilder &nb, Location loc) {
      ImplicitLocOpBuilder ib(loc, nb);
      KernelBody ik{ib};
      fn(ik);
      scf::YieldOp::create(ib);
    };
  };
  scf::IfOp::create(k.b, cond, branch(then), branch(otherwise));
}

/// The same loops over a bare ImplicitLocOpBuilder, for the code in
/// CPUKernels.cpp written against them (the FP8 quantiser and block-scaled
/// dot below); new code uses the KernelBody forms.
using LoopFn = function_ref<void(ImplicitLocOpBuilder &, Value)>;
using ReduceFn =
    function_ref<SmallVector<Value>(ImplicitLocOpBuilder &, Value, ValueRange)>;
inline void loop(ImplicitLocOpBuilder &b, Value lb, Value ub, LoopFn fn) {
  KernelBody k{b};
  loop(k, lb, ub, [&](KernelBody &ik, Value iv) { fn(ik.b, iv); });
}
inline SmallVector<Value> reduce(ImplicitLocOpBuilder &b, Value lb, Value ub,
                                 ValueRange init, ReduceFn fn) {
  KernelBody k{b};
  return reduce(k, lb, ub, init, [&](KernelBody &ik, Value iv, ValueRange acc) {
    return fn(ik.b, iv, acc);
  });
}

/// Creates the entry block of `fn` and a builder at its end.
inline ImplicitLocOpBuilder bodyBuilder(Operation *op, func::FuncOp fn) {
  return ImplicitLocOpBuilder::atBlockEnd(op->getLoc(), fn.addEntryBlock());
}

//===----------------------------------------------------------------------===//
// Block-scaled linear algebra (V4-SPEC 2.4), from lowering/Numerics pieces
//===----------------------------------------------------------------------===//

/// Loads element k of an activation row as f32.
using ActLoadFn = function_ref<Value(ImplicitLocOpBuilder &, Value)>;

/// Quantises an activation row of K elements to FP8 per `blk` block
/// (V4-SPEC 2.4 step 1): qa[k] gets the e4m3 grid value of x / s_a (f32),
/// sa[j] the pow-2 scale s_a of block j. With `quantize` false (the module's
/// fake-quant mode is not "all", dialects/V4/V4Numerics.h) qa gets x and
/// sa 1.
void quantizeActFP8(ImplicitLocOpBuilder &b, ActLoadFn act, Value K,
                    int64_t blk, Value qa, Value sa, bool quantize);
/// Whether the kernel `fn` quantises activations before FP8/FP4 GEMMs (the
/// module's fake-quant mode); an invalid mode attribute is an error.
FailureOr<bool> quantizesActivations(func::FuncOp fn);
/// The options of g that the module of `fn` decides: g.fastRow when it is
/// compiled with v4.sum_order = "fast" (fails on a bad attribute, reported
/// at the module), and on an x86-64-v4 module g.tileLanes = 16 and, for
/// FP4 weights (g.format set first), g.permuteFP4.
struct TileGemm;
LogicalResult setTargetOptions(func::FuncOp fn, TileGemm &g);

//===----------------------------------------------------------------------===//
// The tiled GEMM of the linear kernels (V4-SPEC 2.4 / 5.7)
//===----------------------------------------------------------------------===//

/// One GEMM y[r, n] = sum_e a[r, e] * W[n, e] as the linear kernels compute
/// it: Plain (bf16 / f32 weights, or weights dequantised on load) is the
/// sequential fp32 sum over ascending e; FP8 / FP4 are the block-scaled
/// dots of V4-SPEC 2.4 (FP8 activations of quantizeActFP8, partials per
/// `blk` block (FP8) or 32-slice (FP4), each scaled by s_a then s_w and
/// added in ascending order). Every output element is the same sequence of
/// fp32 operations whatever the tile and whichever pass computes it; the speed
/// comes from sharing: a tile of token rows is computed in vector lanes
/// (vector<8xf32>, rows of the tile transposed) against a few weight rows at
/// once, each weight row decoded once per tile and partial block. The callables
/// are function_refs: keep the lambdas they refer to alive (named locals) while
/// the TileGemm is used.
///
/// With `fastRow` (v4.sum_order = "fast") a one-row pass (decode) instead
/// sums each feature along K in vector lanes with fused multiply-adds, reads
/// the stored weights as vectors (`weightRef`) and scales each part's lane
/// sums once (gemmRowFast), and so does a tile of 2 to 4 rows of FP8 or
/// Plain weights (its rows share each decoded weight vector); the other
/// tile passes are unchanged.
struct TileGemm {
  lowp::WeightFormat format = lowp::WeightFormat::Plain;
  int64_t blk = 128;
  bool quantize = true;
  /// Plain only: the weights are FP8 dequantised as convert.py does,
  /// bf16(e4m3 * s): `weight` gives the e4m3 code of (n, e),
  /// `weightScaleRef` the e8m0 code of (n, block j = e / blk); the scale is
  /// decoded once per
  /// weight row and block.
  bool dequantizeWeights = false;
  /// Plain only: the activations and the weights are exact in bf16 (bf16
  /// storage, or dequantised FP8): with fast sums on an x86-64-v4-bf16
  /// module the 32-row tiles multiply their pairs by vdpbf16ps (dotBF16)
  /// like those of FP8 / FP4 weights. Set before setTargetOptions.
  bool bf16Operands = false;
  /// K, and the output features N.
  Value K, N;
  /// Activation (r, e) as f32.
  function_ref<Value(KernelBody &, Value, Value)> act;
  /// Plain: weight (n, e) as f32. FP8: the e4m3 code of (n, e); FP4: the
  /// byte (n, e / 2) holding elements e (low nibble) and e + 1.
  function_ref<Value(KernelBody &, Value, Value)> weight;
  /// Writes the fp32 result of (r, n).
  function_ref<void(KernelBody &, Value, Value, Value)> store;
  /// fastRow only: where the stored element (FP4: byte) of weight row n,
  /// storage column c lies: the weight memref and its indices.
  bool fastRow = false;
  /// Lanes (token rows) of the vectors of the kGemmRowTile-row tiles: 8
  /// (a ymm register), 16 on an x86-64-v4 module (setTargetOptions: one zmm,
  /// half the weight broadcasts per multiply-add). Each row's numbers are
  /// the same either way.
  int64_t tileLanes = 8;
  /// FP4 on an x86-64-v4 kernels module (setTargetOptions, from the module's
  /// v4.cpu): FP4 slices of 16 bytes (gemmRowFast's steps, decodePart's
  /// tiles) are decoded by two vpermps (lowp::decodeE2M1BytesPermuted)
  /// instead of through binary16: the same values.
  /// The intrinsic's declaration (lowp::declareE2M1Permute); null: off.
  LLVM::LLVMFuncOp permuteFP4;
  /// Fast sums on an x86-64-v4-bf16 kernels module (setTargetOptions), FP8
  /// or FP4 weights in blocks of an even size, or Plain bf16Operands: a
  /// 16-lane kGemmRowTile tile (of quantised activations, against scaled
  /// weights) multiplies pairs of elements by vdpbf16ps
  /// (lowp::declareDotBF16's declaration; null: off), two exact products
  /// per lane and instruction; every FP8 and FP4 value is exact in bf16.
  LLVM::LLVMFuncOp dotBF16;
  /// With dotBF16: the one-row pass (gemmRowFast) decodes FP8 runs of 64
  /// codes and FP4 slices straight to bf16 pairs by these permutes.
  lowp::BF16PairDecoders pairDecoders;
  function_ref<std::pair<Value, SmallVector<Value>>(KernelBody &, Value, Value)>
      weightRef;
  /// FP8 / FP4 (and dequantised FP8): where the e8m0 code of the weight
  /// scale of feature n, block or slice j lies: the scale memref and its
  /// indices (gemmRowFast reads an FP4 row's consecutive slice codes as one
  /// vector).
  function_ref<std::pair<Value, SmallVector<Value>>(KernelBody &, Value, Value)>
      weightScaleRef;
};
/// A vector of `lanes` elements of `m` at `ix` (the last index the first
/// lane); `inBounds` false reads what lies past the last dimension as zero.
Value readVector(KernelBody &k, Value m, ValueRange ix, int64_t lanes,
                 bool inBounds);
/// Scratch of tileGemm, allocated once at kernel entry (allocTileGemm).
struct TileGemmScratch {
  Value aT, saT, acc, qa, sa, wdec, wrow, sdec;
  /// TileGemm::dotBF16: the tile's activations and a part's decoded weight
  /// rows as bf16 pairs, elements 2q and 2q + 1 in one f32 slot (low half
  /// even): aT2[q * kGemmRowTile + i], wdec2[f * pairRowStride(P) + q].
  Value aT2, wdec2;
  /// 16-lane tiles: a chunk's sums row-major (accT[i * kGemmChunk + n -
  /// n0]) for the stores.
  Value accT;
  /// gemmRowFast with FP4 weights: each slice's activation scale, and the
  /// combined scales of the current rows' slices (fastScaleStride apart).
  Value sliceSa, rowScale;
};
/// Token rows a tile of tileGemm computes in vector lanes; output features
/// per block of a GEMM kernel's launch grid (each block prepares its tile
/// of activations once: FP8 quantised and transposed); features per inner
/// chunk (the fp32 sums of a chunk x tile stay in L1).
constexpr int64_t kGemmRowTile = 32;
constexpr int64_t kGemmFeatureBlock = 256;
constexpr int64_t kGemmChunk = 64;
TileGemmScratch allocTileGemm(KernelBody &k, const TileGemm &g);
/// Computes y[r, n] for rows [r0, r1) and features [n0, n1).
void tileGemm(KernelBody &k, const TileGemm &g, const TileGemmScratch &s,
              Value r0, Value r1, Value n0, Value n1);

//===----------------------------------------------------------------------===//
// Launch grid (runtime/base/KernelABI.h LaunchBlock)
//===----------------------------------------------------------------------===//

/// One dimension of a kernel's launch grid: fixed * ceil(T / tokenTile)
/// blocks (tokenTile 0: independent of the token count T).
struct GridSpec {
  int64_t fixed = 1;
  int64_t tokenTile = 0;
};
/// Gives the kernel `fn`, before its body is built, a launch grid: records
/// it (kLaunchGridAttrName) and appends the kLaunchBlockArgs index
/// arguments of the launch block (block x, y, z, then grid x, y, z).
void setLaunchGrid(func::FuncOp fn, GridSpec x, GridSpec y = {},
                   GridSpec z = {});
/// Records the finest useful grid of `fn` (kFinestLaunchGridAttrName),
/// after setLaunchGrid.
void setFinestLaunchGrid(func::FuncOp fn, GridSpec x, GridSpec y = {},
                         GridSpec z = {});
/// Output features per block of a GEMM kernel's finest grid.
constexpr int64_t kGemmFinestFeatures = 8;
/// Launch block argument i of `fn` (0..2 block x, y, z; 3..5 grid x, y, z).
Value launchArg(func::FuncOp fn, unsigned i);
/// The share [lo, hi) of block `blk` of `grid` blocks over [0, n): blocks of
/// ceil(n / grid), the last ones shorter or empty.
std::pair<Value, Value> blockRange(KernelBody &k, Value n, Value blk,
                                   Value grid);

/// Kernel builders of one op family. Each returns std::nullopt when `op` is
/// not one of its ops, otherwise the result of building the body of `fn`
/// (whose signature is already set: see getStorageMemRefTypes).
std::optional<LogicalResult> buildCoreKernel(Operation *op, func::FuncOp fn);
std::optional<LogicalResult> buildAttentionKernel(Operation *op,
                                                  func::FuncOp fn);
std::optional<LogicalResult> buildMoEHyperConnKernel(Operation *op,
                                                     func::FuncOp fn);

} // namespace mlir::v4::cpu

#endif // V4_LOWERING_KERNELBUILDERS_CPUKERNELBODY_H
