//===- V4ToLinalgHyperConn.cpp - bodies of mHC, MTP, MoE gates, Engram ----===//
//
// Target-neutral linalg/tensor bodies of v4.mhc.*, v4.mtp.input,
// v4.moe.gate / hash_gate / combine and v4.engram.hash / gate (V4-SPEC 3,
// 4, 6, 7, 8), v4.engram.lookup (its FP8/e8m0 decoding from
// lowering/Numerics) and the expert-parallel v4.moe.dispatch / undispatch
// (copies: every value exact).
//
// Every body computes what the hand-built CPU kernel of the op computed
// (lowering/KernelBuilders/CPUKernelsMoEHyperConn.cpp, and the Engram lookup
// builder these bodies replaced), value for value:
// the same scalar formulas in the same operand order, the same bf16
// rounding points, every reduction a linalg reduction (or an scf.for)
// accumulated in fp32 from 0 in ascending index order. Together with the
// common CPU pipeline that makes the two kernels bit-identical.
//
// Lanes are [B, T, n, d] (n static), mixes [B, T, M] with M = (2+n)*n for
// hc_pre and n for hc_head, combination matrices [..., n, n] (row j = input
// lane, column k = output lane). Every generic writes a fresh tensor (or one
// it created itself): kernel inputs are never destinations.
//
//===----------------------------------------------------------------------===//
#include "lowering/KernelBuilders/Transpose8x8.h"
#include "lowering/Numerics/LowPrecision.h"
#include "lowering/V4ToLinalg/V4ToLinalgPatterns.h"

#include "dialects/V4/V4Ops.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <cmath>

using namespace mlir;
using namespace mlir::v4;

namespace {

using lowp::fromF32;
using lowp::toF32;

using utils::IteratorType;
constexpr IteratorType kPar = IteratorType::parallel;
constexpr IteratorType kRed = IteratorType::reduction;

//===----------------------------------------------------------------------===//
// Scalars (inside generic bodies)
//===----------------------------------------------------------------------===//

Value f32(ImplicitLocOpBuilder &b, double v) {
  return arith::ConstantOp::create(b, b.getF32FloatAttr(v));
}
Value add(ImplicitLocOpBuilder &b, Value x, Value y) {
  return arith::AddFOp::create(b, x, y);
}
Value sub(ImplicitLocOpBuilder &b, Value x, Value y) {
  return arith::SubFOp::create(b, x, y);
}
Value mul(ImplicitLocOpBuilder &b, Value x, Value y) {
  return arith::MulFOp::create(b, x, y);
}
Value div(ImplicitLocOpBuilder &b, Value x, Value y) {
  return arith::DivFOp::create(b, x, y);
}
/// 1 / (1 + exp(-x)), as the reference writes it.
Value sigmoid(ImplicitLocOpBuilder &b, Value x) {
  Value one = f32(b, 1.0);
  return div(b, one,
             add(b, one, math::ExpOp::create(b, arith::NegFOp::create(b, x))));
}
/// log(1 + x), accurate for small x (u = 1 + x; log(u) * x / (u - 1)).
Value log1p(ImplicitLocOpBuilder &b, Value x) {
  Value u = add(b, f32(b, 1.0), x);
  Value d = sub(b, u, f32(b, 1.0));
  Value r = div(b, mul(b, math::LogOp::create(b, u), x), d);
  Value exact =
      arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, d, f32(b, 0.0));
  return arith::SelectOp::create(b, exact, x, r);
}
/// Gate score of a logit z (V4-SPEC 6.1; softmax is handled by the caller).
Value gateScore(ImplicitLocOpBuilder &b, ScoreFunc f, Value z) {
  if (f == ScoreFunc::sigmoid)
    return sigmoid(b, z);
  // softplus: log(1 + e^z), z above 20 taken as is (torch's threshold).
  Value big =
      arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, z, f32(b, 20.0));
  Value sp =
      arith::SelectOp::create(b, big, z, log1p(b, math::ExpOp::create(b, z)));
  return math::SqrtOp::create(b, sp);
}
/// An integer element sign-extended (or kept) as i64.
Value toI64(ImplicitLocOpBuilder &b, Value v) {
  if (v.getType().isInteger(64))
    return v;
  return arith::ExtSIOp::create(b, b.getI64Type(), v);
}
Value toIndex(ImplicitLocOpBuilder &b, Value v) {
  return arith::IndexCastOp::create(b, b.getIndexType(), toI64(b, v));
}

//===----------------------------------------------------------------------===//
// Tensors and generics
//===----------------------------------------------------------------------===//

SmallVector<OpFoldResult> sizesOf(ImplicitLocOpBuilder &b, Value v) {
  return tensor::getMixedSizes(b, b.getLoc(), v);
}
Value emptyTensor(ImplicitLocOpBuilder &b, ArrayRef<OpFoldResult> shape,
                  Type elt) {
  return tensor::EmptyOp::create(b, shape, elt);
}
/// A fresh f32 tensor of `shape` filled with `v`.
Value filledF32(ImplicitLocOpBuilder &b, ArrayRef<OpFoldResult> shape,
                double v) {
  Value init = emptyTensor(b, shape, b.getF32Type());
  return linalg::FillOp::create(b, ValueRange{f32(b, v)}, ValueRange{init})
      ->getResult(0);
}
/// A fresh tensor of `shape` with the element type of `like`.
Value emptyLike(ImplicitLocOpBuilder &b, ArrayRef<OpFoldResult> shape,
                Value like) {
  return emptyTensor(b, shape, getElementTypeOrSelf(like.getType()));
}

/// Dims d_lo ... d_{hi-1} as affine expressions.
SmallVector<AffineExpr> dimRange(MLIRContext *ctx, unsigned lo, unsigned hi) {
  SmallVector<AffineExpr> r;
  for (unsigned i = lo; i < hi; ++i)
    r.push_back(getAffineDimExpr(i, ctx));
  return r;
}
AffineMap mapOf(MLIRContext *ctx, unsigned numDims,
                ArrayRef<AffineExpr> results) {
  return AffineMap::get(numDims, 0, results, ctx);
}
/// The identity map on `rank` dims with dim `drop` removed.
AffineMap dropDim(MLIRContext *ctx, unsigned rank, unsigned drop) {
  SmallVector<AffineExpr> r = dimRange(ctx, 0, rank);
  r.erase(r.begin() + drop);
  return mapOf(ctx, rank, r);
}

using BodyFn =
    function_ref<SmallVector<Value>(ImplicitLocOpBuilder &, ValueRange)>;

/// linalg.generic over `outs` (their types are the results); the body gets
/// the input elements then the output elements and returns the yields.
SmallVector<Value> generic(ImplicitLocOpBuilder &b, ValueRange ins,
                           ValueRange outs, ArrayRef<AffineMap> maps,
                           ArrayRef<IteratorType> iterators, BodyFn body) {
  auto op = linalg::GenericOp::create(
      b, TypeRange(outs.getTypes()), ins, outs, maps, iterators,
      [&](OpBuilder &nb, Location loc, ValueRange args) {
        ImplicitLocOpBuilder ib(loc, nb);
        linalg::YieldOp::create(ib, body(ib, args));
      });
  return SmallVector<Value>(op->getResults());
}

/// Iterators: `rank` parallel dims, then the dims in `reduced` reductions.
SmallVector<IteratorType> iteratorsOf(unsigned rank,
                                      ArrayRef<unsigned> reduced = {}) {
  SmallVector<IteratorType> its(rank, kPar);
  for (unsigned r : reduced)
    its[r] = kRed;
  return its;
}

/// Static size of dim `i` of a tensor value, or failure.
FailureOr<int64_t> staticDim(Value v, unsigned i) {
  int64_t s = cast<RankedTensorType>(v.getType()).getDimSize(i);
  if (ShapedType::isDynamic(s))
    return failure();
  return s;
}

//===----------------------------------------------------------------------===//
// Sinkhorn (V4-SPEC 4.2 step 4) on [..., n, n]
//===----------------------------------------------------------------------===//

/// Per row j (dim r-2) or column k (dim r-1) of every matrix of `c`, the
/// fp32 sum (from 0, ascending) or maximum (from -inf) over the other one.
Value reduceMatrices(ImplicitLocOpBuilder &b, Value c, bool overRows,
                     bool maximum) {
  MLIRContext *ctx = b.getContext();
  unsigned r = cast<RankedTensorType>(c.getType()).getRank();
  unsigned reduced = overRows ? r - 2 : r - 1;
  SmallVector<OpFoldResult> shape = sizesOf(b, c);
  shape.erase(shape.begin() + reduced);
  Value init = filledF32(b, shape, maximum ? -INFINITY : 0.0);
  return generic(
      b, c, init,
      {AffineMap::getMultiDimIdentityMap(r, ctx), dropDim(ctx, r, reduced)},
      iteratorsOf(r, {reduced}), [&](ImplicitLocOpBuilder &ib, ValueRange a) {
        if (maximum)
          return SmallVector<Value>{arith::MaximumFOp::create(ib, a[1], a[0])};
        return SmallVector<Value>{add(ib, a[1], a[0])};
      })[0];
}

/// out[..., j, k] = fn(c[..., j, k], v[..., reduced dim dropped]) into
/// `dest` (a fresh tensor of c's shape, or c itself when c is fresh).
Value combineWithReduced(
    ImplicitLocOpBuilder &b, Value c, Value v, bool overRows, Value dest,
    function_ref<Value(ImplicitLocOpBuilder &, Value, Value)> fn) {
  MLIRContext *ctx = b.getContext();
  unsigned r = cast<RankedTensorType>(c.getType()).getRank();
  AffineMap id = AffineMap::getMultiDimIdentityMap(r, ctx);
  AffineMap vMap = dropDim(ctx, r, overRows ? r - 2 : r - 1);
  if (c == dest)
    return generic(b, v, dest, {vMap, id}, iteratorsOf(r),
                   [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                     return SmallVector<Value>{fn(ib, a[1], a[0])};
                   })[0];
  return generic(b, ValueRange{c, v}, dest, {id, vMap, id}, iteratorsOf(r),
                 [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                   return SmallVector<Value>{fn(ib, a[0], a[1])};
                 })[0];
}

/// C <- C / (sum over rows j (columns) or columns k (rows) + eps), in place
/// on a fresh C.
Value normalize(ImplicitLocOpBuilder &b, Value c, Value eps, bool columns) {
  Value s = reduceMatrices(b, c, /*overRows=*/columns, /*maximum=*/false);
  return combineWithReduced(b, c, s, /*overRows=*/columns, c,
                            [&](ImplicitLocOpBuilder &ib, Value x, Value sum) {
                              return div(ib, x, add(ib, sum, eps));
                            });
}

/// Sinkhorn-Knopp on every trailing n x n matrix of `logits` (not
/// modified): softmax over each row + eps, column normalisation, then
/// iters - 1 times row and column normalisation (an scf.for).
Value sinkhorn(ImplicitLocOpBuilder &b, Value logits, Value eps,
               int64_t iters) {
  // softmax over each row (k), then + eps.
  Value mx = reduceMatrices(b, logits, /*overRows=*/false, /*maximum=*/true);
  Value c =
      combineWithReduced(b, logits, mx, /*overRows=*/false,
                         emptyLike(b, sizesOf(b, logits), logits),
                         [&](ImplicitLocOpBuilder &ib, Value x, Value m) {
                           return Value(math::ExpOp::create(ib, sub(ib, x, m)));
                         });
  Value s = reduceMatrices(b, c, /*overRows=*/false, /*maximum=*/false);
  c = combineWithReduced(b, c, s, /*overRows=*/false, c,
                         [&](ImplicitLocOpBuilder &ib, Value ex, Value sum) {
                           return add(ib, div(ib, ex, sum), eps);
                         });
  c = normalize(b, c, eps, /*columns=*/true);
  if (iters <= 1)
    return c;
  Value lb = arith::ConstantIndexOp::create(b, 1);
  Value ub = arith::ConstantIndexOp::create(b, iters);
  Value step = arith::ConstantIndexOp::create(b, 1);
  auto loop = scf::ForOp::create(
      b, lb, ub, step, ValueRange{c},
      [&](OpBuilder &nb, Location loc, Value, ValueRange acc) {
        ImplicitLocOpBuilder ib(loc, nb);
        Value next = normalize(ib, acc[0], eps, /*columns=*/false);
        next = normalize(ib, next, eps, /*columns=*/true);
        scf::YieldOp::create(ib, next);
      });
  return loop.getResult(0);
}

//===----------------------------------------------------------------------===//
// mHC lanes (V4-SPEC 3, 4): x [B, T, n, d]
//===----------------------------------------------------------------------===//

/// ss[b, t] = sum of x^2 over all n*d lane values of a token [B, T], in
/// fp32 from 0 in ascending flat index j*d + c (the joint RMS's sum).
Value jointSumSquares(ImplicitLocOpBuilder &b, Value x) {
  MLIRContext *ctx = b.getContext();
  SmallVector<OpFoldResult> xs = sizesOf(b, x);
  return generic(b, x, filledF32(b, {xs[0], xs[1]}, 0.0),
                 {AffineMap::getMultiDimIdentityMap(4, ctx),
                  mapOf(ctx, 4, dimRange(ctx, 0, 2))},
                 iteratorsOf(4, {2, 3}),
                 [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                   Value v = toF32(ib, a[0]);
                   return SmallVector<Value>{add(ib, a[1], mul(ib, v, v))};
                 })[0];
}

/// rho = 1 / sqrt(mean(x^2) + normEps) of every token [B, T] from its sum
/// of squares ss (jointSumSquares): the joint RMS over all n*d lane values.
Value jointRmsScale(ImplicitLocOpBuilder &b, Value x, Value ss, Value normEps) {
  MLIRContext *ctx = b.getContext();
  SmallVector<OpFoldResult> xs = sizesOf(b, x);
  // mean = ss / (n*d), as an unsigned index converted to f32.
  Value nd = arith::MulIOp::create(
      b, getValueOrCreateConstantIndexOp(b, b.getLoc(), xs[2]),
      getValueOrCreateConstantIndexOp(b, b.getLoc(), xs[3]));
  Value ndF = arith::UIToFPOp::create(
      b, b.getF32Type(), arith::IndexCastUIOp::create(b, b.getI64Type(), nd));
  AffineMap id2 = AffineMap::getMultiDimIdentityMap(2, ctx);
  return generic(b, ValueRange{}, ss, {id2}, iteratorsOf(2),
                 [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                   Value mean = div(ib, a[0], ndF);
                   return SmallVector<Value>{
                       div(ib, f32(ib, 1.0),
                           math::SqrtOp::create(ib, add(ib, mean, normEps)))};
                 })[0];
}

/// The dot products acc[b, t, i] = x^[b, t] . fn_i [B, T, M] of hcMixes
/// when M and n*d are static multiples of 8: 8 mixes in the lanes of a
/// vector, their 8 x 8 blocks of fn read as rows and transposed in
/// registers (transpose8x8), so each lane adds its mix's products over the
/// flat index in ascending order, as the generic does (same products, same
/// sums: bit-identical), at about a third of the generic's scalar
/// instructions. In blocks of 8 or 4 tokens, which share each transposed
/// block of fn, the M / 8 groups advance together and share each run of x; a
/// lone token takes the groups one pass each. Each token's
/// sum of squares (jointSumSquares: the same products in the same order)
/// runs alongside: a block's tokens in the lanes of one vector, their runs
/// of x transposed like fn's blocks (one register instead of 8 beside the
/// 24 sums: mhc.post_pre's share of mid-size fast prefill 7.25 -> 7.04%),
/// a lone token's as a scalar chain, whose latency the mixes' work hides.
/// Returns {acc, ss [B, T]}.
std::pair<Value, Value> hcMixDotsTransposed(ImplicitLocOpBuilder &b, Value x,
                                            Value fn, bool withSquares) {
  constexpr int64_t L = 8;
  Type f32 = b.getF32Type();
  auto lanes = VectorType::get({L}, f32);
  auto fnType = cast<RankedTensorType>(fn.getType());
  int64_t M = fnType.getDimSize(0), nd = fnType.getDimSize(1);
  SmallVector<OpFoldResult> xs = sizesOf(b, x);
  Value x3 = tensor::CollapseShapeOp::create(
      b, x, ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}});
  auto idx = [&](OpBuilder &ob, Location loc, int64_t v) -> Value {
    return arith::ConstantIndexOp::create(ob, loc, v);
  };
  Value zero = idx(b, b.getLoc(), 0), one = idx(b, b.getLoc(), 1);
  Value vzero = arith::ConstantOp::create(
      b, DenseElementsAttr::get(lanes, b.getF32FloatAttr(0.0f)));
  auto read = [&](ImplicitLocOpBuilder &ib, Value t, ValueRange ix) -> Value {
    return readF32Vector(ib, t, ix, L);
  };
  auto forEach = [&](OpBuilder &ob, Location loc, Value ub, ValueRange init,
                     function_ref<SmallVector<Value>(ImplicitLocOpBuilder &,
                                                     Value, ValueRange)>
                         fn) {
    auto loop = scf::ForOp::create(
        ob, loc, zero, ub, one, init,
        [&](OpBuilder &nb, Location l, Value iv, ValueRange acc) {
          ImplicitLocOpBuilder ib(l, nb);
          scf::YieldOp::create(ib, fn(ib, iv, acc));
        });
    return SmallVector<Value>(loop.getResults());
  };
  Value init = emptyTensor(b, {xs[0], xs[1], b.getIndexAttr(M)}, f32);
  Value initSs = emptyTensor(b, {xs[0], xs[1]}, f32);
  Value B = getValueOrCreateConstantIndexOp(b, b.getLoc(), xs[0]);
  Value T = getValueOrCreateConstantIndexOp(b, b.getLoc(), xs[1]);
  Value fzero = arith::ConstantOp::create(b, b.getF32FloatAttr(0.0f));
  // The sums of mix groups [gBegin, gEnd) of tokens [t0, t0 + n) into acc,
  // with the tokens' sums of squares into ss in the pass of group 0.
  auto tokensGroups = [&](ImplicitLocOpBuilder &tb, Value bi, Value t0,
                          int64_t n, int64_t gBegin, int64_t gEnd, Value acc,
                          Value ss) -> SmallVector<Value> {
    bool squares = withSquares && gBegin == 0;
    SmallVector<Value> ts;
    for (int64_t j = 0; j < n; ++j)
      ts.push_back(
          j == 0 ? t0 : arith::AddIOp::create(tb, t0, idx(tb, tb.getLoc(), j)));
    // sums[j * G + g - gBegin]: token ts[j], mixes g * L + [0, L); then
    // the sums of squares: a block's tokens in the lanes of one vector
    // (sums[n * G], lane j: token ts[j]; the block's runs of x transposed,
    // each lane adding its token's squares in ascending order: the same
    // chain, and 8 scalar registers fewer beside the n * G sums), a lone
    // token's as a scalar (sums[n * G]).
    const int64_t G = gEnd - gBegin, sq = n * G;
    assert(n <= L && "a block of tokens fits the lanes");
    SmallVector<Value> init(sq, vzero);
    if (squares)
      init.push_back(n > 1 ? vzero : fzero);
    SmallVector<Value> sums = forEach(
        tb, tb.getLoc(), idx(tb, tb.getLoc(), nd / L), init,
        [&](ImplicitLocOpBuilder &qb, Value q, ValueRange part) {
          Value c0 = arith::MulIOp::create(qb, q, idx(qb, qb.getLoc(), L));
          SmallVector<SmallVector<Value>> xsplat(n);
          SmallVector<Value> next(part.begin(), part.end());
          SmallVector<Value> runs(L, vzero);
          for (int64_t j = 0; j < n; ++j) {
            Value xv = read(qb, x3, ValueRange{bi, ts[j], c0});
            runs[j] = xv;
            for (int64_t i = 0; i < L; ++i) {
              Value xi = vector::ExtractOp::create(qb, xv, i);
              xsplat[j].push_back(vector::BroadcastOp::create(qb, lanes, xi));
              if (squares && n == 1)
                next[sq] = add(qb, next[sq], mul(qb, xi, xi));
            }
          }
          if (squares && n > 1) {
            SmallVector<Value> cols = transpose8x8(qb, runs);
            next[sq] = addColumnProducts(qb, next[sq], cols, cols);
          }
          for (int64_t g = gBegin; g < gEnd; ++g) {
            SmallVector<Value> rows;
            for (int64_t i = 0; i < L; ++i)
              rows.push_back(read(
                  qb, fn, ValueRange{idx(qb, qb.getLoc(), g * L + i), c0}));
            SmallVector<Value> cols = transpose8x8(qb, rows);
            for (int64_t j = 0; j < n; ++j)
              next[j * G + g - gBegin] = addColumnProducts(
                  qb, part[j * G + g - gBegin], cols, xsplat[j]);
          }
          return next;
        });
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t g = gBegin; g < gEnd; ++g)
        acc = vector::TransferWriteOp::create(
                  tb, sums[j * G + g - gBegin], acc,
                  ValueRange{bi, ts[j], idx(tb, tb.getLoc(), g * L)},
                  ArrayRef<bool>{true})
                  .getResult();
      if (squares)
        ss = tensor::InsertOp::create(
                 tb,
                 n > 1 ? vector::ExtractOp::create(tb, sums[sq], j).getResult()
                       : sums[sq],
                 ss, ValueRange{bi, ts[j]})
                 .getResult();
    }
    return {acc, ss};
  };
  // A block of tokens advances every group together (the transposed
  // blocks of fn serve all its tokens). A lone token (a decode step's) takes
  // one pass per group: 8 rows of fn streamed at a time instead of M, which
  // the hardware prefetcher follows (mid-size decode: mhc.post_pre 22.4 ->
  // 20.9 us a call, the same sums).
  auto tokens = [&](ImplicitLocOpBuilder &tb, Value bi, Value t0, int64_t n,
                    Value acc, Value ss) -> SmallVector<Value> {
    if (n > 1)
      return tokensGroups(tb, bi, t0, n, 0, M / L, acc, ss);
    SmallVector<Value> r{acc, ss};
    for (int64_t g = 0; g < M / L; ++g)
      r = tokensGroups(tb, bi, t0, n, g, g + 1, r[0], r[1]);
    return r;
  };
  // Blocks of 8 tokens (a token slice's: DispatchFormation's kTokenSlice)
  // share each transposed block of fn, then a block of 4 of the rest; the
  // last T % 4 tokens (a decode step's one) go one at a time (mid-size fast
  // prefill of 64 tokens: 27.9 -> 27.0 ms against blocks of 4).
  SmallVector<Value> out = forEach(
      b, b.getLoc(), B, ValueRange{init, initSs},
      [&](ImplicitLocOpBuilder &ib, Value bi, ValueRange acc0) {
        SmallVector<Value> acc(acc0.begin(), acc0.end());
        Value start = zero;
        for (int64_t size : {8, 4, 1}) {
          Value sizeV = idx(ib, ib.getLoc(), size);
          Value count = arith::DivUIOp::create(
              ib, arith::SubIOp::create(ib, T, start), sizeV);
          Value from = start;
          acc = forEach(
              ib, ib.getLoc(), count, acc,
              [&](ImplicitLocOpBuilder &tb, Value blk, ValueRange acc1) {
                Value t0 = arith::AddIOp::create(
                    tb, from, arith::MulIOp::create(tb, blk, sizeV));
                return tokens(tb, bi, t0, size, acc1[0], acc1[1]);
              });
          start = arith::AddIOp::create(
              ib, start, arith::MulIOp::create(ib, count, sizeV));
        }
        return acc;
      });
  return {out[0], withSquares ? out[1] : jointSumSquares(b, x)};
}

/// The dot products acc[b, t, i] = x^[b, t] . fn_i [B, T, M] of hcMixes in
/// fp32 over the flat index, ascending, and each token's sum of squares
/// (jointSumSquares): hcMixDotsTransposed when M and n*d are static
/// multiples of 8 (carrying the squares along when `hostCPU`), else
/// generics.
std::pair<Value, Value> mixDots(ImplicitLocOpBuilder &b, Value x, Value fn,
                                bool hostCPU) {
  auto fnType = cast<RankedTensorType>(fn.getType());
  if (fnType.hasStaticShape() && fnType.getDimSize(0) % 8 == 0 &&
      fnType.getDimSize(1) % 8 == 0)
    return hcMixDotsTransposed(b, x, fn, hostCPU);
  MLIRContext *ctx = b.getContext();
  SmallVector<OpFoldResult> xs = sizesOf(b, x);
  OpFoldResult numMixes = sizesOf(b, fn)[0];
  // fn [M, n*d] viewed as [M, n, d / S, S] and x as [B, T, n, d / S, S]:
  // the mixes advance together one S-run of each lane at a time (below).
  auto xType = cast<RankedTensorType>(x.getType());
  int64_t n = *getConstantIntValue(xs[2]);
  std::optional<int64_t> d = getConstantIntValue(xs[3]);
  int64_t S = 1;
  for (int64_t run : {16, 8, 4, 2})
    if (d && *d % run == 0) {
      S = run;
      break;
    }
  int64_t runs = d ? *d / S : ShapedType::kDynamic;
  OpFoldResult runsOfr =
      d ? OpFoldResult(b.getIndexAttr(runs)) : xs[3]; // S == 1 when dynamic
  Value fn4 = tensor::ExpandShapeOp::create(
      b,
      RankedTensorType::get({fnType.getDimSize(0), n, runs, S},
                            fnType.getElementType()),
      fn, ArrayRef<ReassociationIndices>{{0}, {1, 2, 3}},
      ArrayRef<OpFoldResult>{numMixes, xs[2], runsOfr, b.getIndexAttr(S)});
  Value x5 = tensor::ExpandShapeOp::create(
      b,
      RankedTensorType::get(
          {xType.getDimSize(0), xType.getDimSize(1), n, runs, S},
          xType.getElementType()),
      x, ArrayRef<ReassociationIndices>{{0}, {1}, {2}, {3, 4}},
      ArrayRef<OpFoldResult>{xs[0], xs[1], xs[2], runsOfr, b.getIndexAttr(S)});
  // (b, t, j, r, i, s): acc[b, t, i] += x[b, t, j, r, s] * fn[i, j, r, s],
  // c = r S + s. Each mix's sum runs over (j, c) in ascending order, as the
  // spec's; with the mix dim between the runs and their elements the M
  // sums advance together, each a dependent chain of only S additions per
  // run (and the runs read contiguously), instead of one n*d-long chain per
  // mix at a time.
  AffineExpr d0, d1, d2, d3, d4, d5;
  bindDims(ctx, d0, d1, d2, d3, d4, d5);
  Value acc = generic(
      b, ValueRange{x5, fn4}, filledF32(b, {xs[0], xs[1], numMixes}, 0.0),
      {mapOf(ctx, 6, {d0, d1, d2, d3, d5}), mapOf(ctx, 6, {d4, d2, d3, d5}),
       mapOf(ctx, 6, {d0, d1, d4})},
      iteratorsOf(6, {2, 3, 5}), [&](ImplicitLocOpBuilder &ib, ValueRange a) {
        return SmallVector<Value>{
            add(ib, a[2], mul(ib, toF32(ib, a[0]), toF32(ib, a[1])))};
      })[0];
  return {acc, jointSumSquares(b, x)};
}

/// The mixes m_i = (x^ . fn_i) * rho [B, T, M] (V4-SPEC 4.1) of lanes x and
/// fn [M, n*d]: dot products in fp32 over the flat index, ascending.
Value hcMixes(ImplicitLocOpBuilder &b, Value x, Value fn, Value normEps,
              bool hostCPU) {
  MLIRContext *ctx = b.getContext();
  auto [acc, ss] = mixDots(b, x, fn, hostCPU);
  Value rho = jointRmsScale(b, x, ss, normEps);
  return generic(b, rho, acc,
                 {mapOf(ctx, 3, dimRange(ctx, 0, 2)),
                  AffineMap::getMultiDimIdentityMap(3, ctx)},
                 iteratorsOf(3), [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                   return SmallVector<Value>{mul(ib, a[1], a[0])};
                 })[0];
}

/// v[..., offset : offset + count] (a slice of the last dim), viewed as
/// [..., rows, count / rows] when rows is not 0.
Value sliceLast(ImplicitLocOpBuilder &b, Value v, int64_t offset, int64_t count,
                int64_t rows) {
  auto type = cast<RankedTensorType>(v.getType());
  int64_t r = type.getRank();
  SmallVector<OpFoldResult> offsets(r, b.getIndexAttr(0)),
      sizes = sizesOf(b, v), strides(r, b.getIndexAttr(1));
  offsets.back() = b.getIndexAttr(offset);
  sizes.back() = b.getIndexAttr(count);
  SmallVector<int64_t> shape(type.getShape());
  shape.back() = count;
  Value slice = tensor::ExtractSliceOp::create(
      b, RankedTensorType::get(shape, type.getElementType()), v, offsets, sizes,
      strides);
  if (rows == 0)
    return slice;
  SmallVector<ReassociationIndices> groups;
  for (int64_t i = 0; i + 1 < r; ++i)
    groups.push_back({i});
  groups.push_back({r - 1, r});
  shape.back() = rows;
  shape.push_back(count / rows);
  sizes.back() = b.getIndexAttr(rows);
  sizes.push_back(b.getIndexAttr(count / rows));
  return tensor::ExpandShapeOp::create(
      b, RankedTensorType::get(shape, type.getElementType()), slice, groups,
      sizes);
}

/// The split of the mixes (V4-SPEC 4.1 step 3): a = m_e * scale_s + base_e
/// for the `count` mixes from `offset` on, mapped by `fn` into a fresh f32
/// tensor [B, T, count], or [B, T, rows, count / rows] (e = j * n + k) when
/// rows is not 0.
Value splitMixes(ImplicitLocOpBuilder &b, Value m, Value base, Value scale,
                 int64_t s, int64_t offset, int64_t count, int64_t rows,
                 function_ref<Value(ImplicitLocOpBuilder &, Value)> fn) {
  MLIRContext *ctx = b.getContext();
  Value mPart = sliceLast(b, m, offset, count, rows);
  Value basePart = sliceLast(b, base, offset, count, rows);
  unsigned r = cast<RankedTensorType>(mPart.getType()).getRank();
  AffineMap id = AffineMap::getMultiDimIdentityMap(r, ctx);
  return generic(b, ValueRange{mPart, basePart, scale},
                 emptyTensor(b, sizesOf(b, mPart), b.getF32Type()),
                 {id, mapOf(ctx, r, dimRange(ctx, 2, r)),
                  mapOf(ctx, r, {getAffineConstantExpr(s, ctx)}), id},
                 iteratorsOf(r), [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                   return SmallVector<Value>{
                       fn(ib, add(ib, mul(ib, a[0], a[2]), a[1]))};
                 })[0];
}

/// w_j = sigmoid(m_j * scale_0 + base_j) + hcEps [B, T, n]: the lane weights
/// of hc_pre (pre) and hc_head.
Value laneWeights(ImplicitLocOpBuilder &b, Value m, Value base, Value scale,
                  int64_t n, Value hcEps) {
  return splitMixes(b, m, base, scale, 0, 0, n, /*rows=*/0,
                    [&](ImplicitLocOpBuilder &ib, Value a) {
                      return add(ib, sigmoid(ib, a), hcEps);
                    });
}

/// y = sum_j w_j X_j in fp32 (j ascending from 0), rounded once to `elt`
/// [B, T, d]: the lane mix of hc_pre and hc_head.
Value laneMix(ImplicitLocOpBuilder &b, Value x, Value w, Type elt) {
  MLIRContext *ctx = b.getContext();
  SmallVector<OpFoldResult> xs = sizesOf(b, x);
  SmallVector<OpFoldResult> ys{xs[0], xs[1], xs[3]};
  // (b, t, c, j): acc[b, t, c] += w[b, t, j] * x[b, t, j, c].
  AffineExpr d0, d1, d2, d3;
  bindDims(ctx, d0, d1, d2, d3);
  Value acc =
      generic(b, ValueRange{w, x}, filledF32(b, ys, 0.0),
              {mapOf(ctx, 4, {d0, d1, d3}), mapOf(ctx, 4, {d0, d1, d3, d2}),
               mapOf(ctx, 4, {d0, d1, d2})},
              iteratorsOf(4, {3}), [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                return SmallVector<Value>{
                    add(ib, a[2], mul(ib, a[0], toF32(ib, a[1])))};
              })[0];
  AffineMap id = AffineMap::getMultiDimIdentityMap(3, ctx);
  return generic(b, acc, emptyTensor(b, ys, elt), {id, id}, iteratorsOf(3),
                 [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                   return SmallVector<Value>{fromF32(ib, a[0], elt)};
                 })[0];
}

/// Attributes of one hc_pre site.
struct PreAttrs {
  int64_t iters;
  double hcEps, normEps;
  bool hostCPU;
};
struct PreResults {
  Value y, post, comb;
};

/// hc_pre (V4-SPEC 4.1-4.3) of lanes x [B, T, n, d]: y [B, T, d] (x's
/// element type), post [B, T, n] and comb [B, T, n, n] (f32). Shared by
/// v4.mhc.pre and v4.mhc.post_pre.
PreResults hcPre(ImplicitLocOpBuilder &b, Value x, Value fn, Value base,
                 Value scale, int64_t n, const PreAttrs &attrs) {
  Value hcEps = f32(b, attrs.hcEps), normEps = f32(b, attrs.normEps);
  Value m = hcMixes(b, x, fn, normEps, attrs.hostCPU);
  Value pre = laneWeights(b, m, base, scale, n, hcEps);
  Value post = splitMixes(b, m, base, scale, 1, n, n, /*rows=*/0,
                          [&](ImplicitLocOpBuilder &ib, Value a) {
                            return mul(ib, f32(ib, 2.0), sigmoid(ib, a));
                          });
  Value logits = splitMixes(b, m, base, scale, 2, 2 * n, n * n, /*rows=*/n,
                            [](ImplicitLocOpBuilder &, Value a) { return a; });
  Value comb = sinkhorn(b, logits, hcEps, attrs.iters);
  Value y = laneMix(b, x, pre, getElementTypeOrSelf(x.getType()));
  return {y, post, comb};
}

/// hc_post (V4-SPEC 4.3): X'_k = post_k o + sum_j C_jk X_j in fp32 (the
/// sum from 0, j ascending), rounded once to the lanes' element type, from
/// o [B, T, d], x [B, T, n, d], post [B, T, n], comb [B, T, n, n]. Shared
/// by v4.mhc.post and v4.mhc.post_pre.
Value hcPost(ImplicitLocOpBuilder &b, Value o, Value x, Value post,
             Value comb) {
  MLIRContext *ctx = b.getContext();
  SmallVector<OpFoldResult> xs = sizesOf(b, x);
  // (b, t, k, c, j): mix[b, t, k, c] += comb[b, t, j, k] * x[b, t, j, c].
  AffineExpr d0, d1, d2, d3, d4;
  bindDims(ctx, d0, d1, d2, d3, d4);
  Value mix =
      generic(b, ValueRange{comb, x}, filledF32(b, xs, 0.0),
              {mapOf(ctx, 5, {d0, d1, d4, d2}), mapOf(ctx, 5, {d0, d1, d4, d3}),
               mapOf(ctx, 5, {d0, d1, d2, d3})},
              iteratorsOf(5, {4}), [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                return SmallVector<Value>{
                    add(ib, a[2], mul(ib, a[0], toF32(ib, a[1])))};
              })[0];
  Type elt = getElementTypeOrSelf(x.getType());
  AffineMap id = AffineMap::getMultiDimIdentityMap(4, ctx);
  return generic(
      b, ValueRange{post, o, mix}, emptyTensor(b, xs, elt),
      {mapOf(ctx, 4, {d0, d1, d2}), mapOf(ctx, 4, {d0, d1, d3}), id, id},
      iteratorsOf(4), [&](ImplicitLocOpBuilder &ib, ValueRange a) {
        Value v = add(ib, mul(ib, a[0], toF32(ib, a[1])), a[2]);
        return SmallVector<Value>{fromF32(ib, v, elt)};
      })[0];
}

/// The static lane count of lanes [B, T, n, d], or a match failure.
FailureOr<int64_t> laneCount(ConversionPatternRewriter &rewriter, Operation *op,
                             Value lanes) {
  auto type = cast<RankedTensorType>(lanes.getType());
  if (type.getRank() != 4)
    return rewriter.notifyMatchFailure(op, "lanes are not [B, T, n, d]");
  FailureOr<int64_t> n = staticDim(lanes, 2);
  if (failed(n))
    return rewriter.notifyMatchFailure(op, "lane count is dynamic");
  return n;
}

//===----------------------------------------------------------------------===//
// Patterns: mHC, MTP
//===----------------------------------------------------------------------===//

struct MhcExpandLowering : public OpConversionPattern<MhcExpandOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(MhcExpandOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    auto type = cast<RankedTensorType>(op.getLanes().getType());
    if (type.getRank() != 4)
      return rewriter.notifyMatchFailure(op, "lanes are not [B, T, n, d]");
    if (type.isDynamicDim(2))
      return rewriter.notifyMatchFailure(op, "lane count is dynamic");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    Value e = adaptor.getE();
    // lanes[b, t, i, c] = e[b, t, c].
    SmallVector<OpFoldResult> shape = sizesOf(b, e);
    shape.insert(shape.begin() + 2, b.getIndexAttr(type.getDimSize(2)));
    Value init = emptyTensor(b, shape, type.getElementType());
    auto bcast = linalg::BroadcastOp::create(b, e, init, ArrayRef<int64_t>{2});
    rewriter.replaceOp(op, bcast->getResults());
    return success();
  }
};

struct MhcSinkhornLowering : public OpConversionPattern<MhcSinkhornOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(MhcSinkhornOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    Value eps = f32(b, op.getEps().convertToDouble());
    rewriter.replaceOp(op, sinkhorn(b, adaptor.getLogits(), eps,
                                    static_cast<int64_t>(op.getIters())));
    return success();
  }
};

struct MhcPreLowering : public OpConversionPattern<MhcPreOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(MhcPreOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    FailureOr<int64_t> n = laneCount(rewriter, op, adaptor.getX());
    if (failed(n))
      return failure();
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    PreAttrs attrs{static_cast<int64_t>(op.getSinkhornIters()),
                   op.getHcEps().convertToDouble(),
                   op.getNormEps().convertToDouble(), onHostCPU(op)};
    PreResults r = hcPre(b, adaptor.getX(), adaptor.getFn(), adaptor.getBase(),
                         adaptor.getScale(), *n, attrs);
    rewriter.replaceOp(op, ValueRange{r.y, r.post, r.comb});
    return success();
  }
};

struct MhcPostLowering : public OpConversionPattern<MhcPostOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(MhcPostOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    if (failed(laneCount(rewriter, op, adaptor.getX())))
      return failure();
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    rewriter.replaceOp(op, hcPost(b, adaptor.getO(), adaptor.getX(),
                                  adaptor.getPost(), adaptor.getComb()));
    return success();
  }
};

/// hc_post, then hc_pre on its rounded lanes: the results of the two ops
/// bit for bit.
struct MhcPostPreLowering : public OpConversionPattern<MhcPostPreOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(MhcPostPreOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    FailureOr<int64_t> n = laneCount(rewriter, op, adaptor.getX());
    if (failed(n))
      return failure();
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    Value lanes = hcPost(b, adaptor.getO(), adaptor.getX(), adaptor.getPost(),
                         adaptor.getComb());
    PreAttrs attrs{static_cast<int64_t>(op.getSinkhornIters()),
                   op.getHcEps().convertToDouble(),
                   op.getNormEps().convertToDouble(), onHostCPU(op)};
    PreResults r = hcPre(b, lanes, adaptor.getFn(), adaptor.getBase(),
                         adaptor.getScale(), *n, attrs);
    rewriter.replaceOp(op, ValueRange{lanes, r.y, r.post, r.comb});
    return success();
  }
};

struct MhcHeadLowering : public OpConversionPattern<MhcHeadOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(MhcHeadOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Value x = adaptor.getX();
    FailureOr<int64_t> n = laneCount(rewriter, op, x);
    if (failed(n))
      return failure();
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    Value hcEps = f32(b, op.getHcEps().convertToDouble());
    Value normEps = f32(b, op.getNormEps().convertToDouble());
    Value m = hcMixes(b, x, adaptor.getFn(), normEps, onHostCPU(op));
    Value w =
        laneWeights(b, m, adaptor.getBase(), adaptor.getScale(), *n, hcEps);
    rewriter.replaceOp(op, laneMix(b, x, w, getElementTypeOrSelf(x.getType())));
    return success();
  }
};

/// X'_i = bf16(e + h_i), each element computed in fp32 and rounded once.
struct MtpInputLowering : public OpConversionPattern<MtpInputOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(MtpInputOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Value e = adaptor.getE(), h = adaptor.getH();
    if (cast<RankedTensorType>(h.getType()).getRank() != 4)
      return rewriter.notifyMatchFailure(op, "h is not [B, T, n, d]");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = b.getContext();
    Type elt = getElementTypeOrSelf(op.getResult().getType());
    AffineExpr d0, d1, d2, d3;
    bindDims(ctx, d0, d1, d2, d3);
    AffineMap id = AffineMap::getMultiDimIdentityMap(4, ctx);
    Value r = generic(b, ValueRange{e, h}, emptyTensor(b, sizesOf(b, h), elt),
                      {mapOf(ctx, 4, {d0, d1, d3}), id, id}, iteratorsOf(4),
                      [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                        Value v = add(ib, toF32(ib, a[0]), toF32(ib, a[1]));
                        return SmallVector<Value>{fromF32(ib, v, elt)};
                      })[0];
    rewriter.replaceOp(op, r);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Patterns: MoE (V4-SPEC 6.1, 6.3)
//===----------------------------------------------------------------------===//

/// result = bf16(sum_j fp32(routed[..., j, :]) + fp32(shared)): the slot
/// sum from 0 in ascending j (the innermost reduction), then the shared
/// expert, one rounding.
struct MoECombineLowering : public OpConversionPattern<MoECombineOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(MoECombineOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = b.getContext();
    Value routed = adaptor.getRouted(), shared = adaptor.getShared();
    unsigned r = cast<RankedTensorType>(shared.getType()).getRank();
    unsigned lead = r - 1;
    Type elt = getElementTypeOrSelf(op.getResult().getType());
    // (lead..., c, j): sum[lead, c] += routed[lead, j, c].
    SmallVector<AffineExpr> routedExprs = dimRange(ctx, 0, lead);
    routedExprs.push_back(getAffineDimExpr(r, ctx));
    routedExprs.push_back(getAffineDimExpr(lead, ctx));
    Value sum = generic(
        b, ValueRange{routed}, filledF32(b, sizesOf(b, shared), 0.0),
        {mapOf(ctx, r + 1, routedExprs),
         mapOf(ctx, r + 1, dimRange(ctx, 0, r))},
        iteratorsOf(r + 1, {r}), [&](ImplicitLocOpBuilder &ib, ValueRange a) {
          return SmallVector<Value>{add(ib, a[1], toF32(ib, a[0]))};
        })[0];
    AffineMap id = AffineMap::getMultiDimIdentityMap(r, ctx);
    Value out =
        generic(b, ValueRange{sum, shared},
                emptyTensor(b, sizesOf(b, shared), elt), {id, id, id},
                iteratorsOf(r), [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                  Value v = add(ib, a[0], toF32(ib, a[1]));
                  return SmallVector<Value>{fromF32(ib, v, elt)};
                })[0];
    rewriter.replaceOp(op, out);
    return success();
  }
};

/// Operands of one gate: x [..., d], weight [E, d], then the optional bias
/// [E] (score gate) or ids [...] and tid2eid [V, k] (hash gate).
struct GateOperands {
  Value x, weight, bias, ids, table;
  ScoreFunc scoreFunc;
  double routeScale;
  int64_t topK;
};

/// The gate scores s [..., E] of every token (V4-SPEC 6.1): z = fp32(x) .
/// fp32(weight)^T (ascending channel order), s = score(z); softmax: max
/// from -inf, exp(z - max), sum ascending, exp / sum.
Value gateScores(ImplicitLocOpBuilder &b, const GateOperands &g) {
  MLIRContext *ctx = b.getContext();
  unsigned lead = cast<RankedTensorType>(g.x.getType()).getRank() - 1;
  SmallVector<OpFoldResult> shape = sizesOf(b, g.x);
  shape.back() = sizesOf(b, g.weight)[0];
  // (lead..., e, c): z[lead, e] += x[lead, c] * w[e, c].
  unsigned nd = lead + 2;
  SmallVector<AffineExpr> xExprs = dimRange(ctx, 0, lead);
  xExprs.push_back(getAffineDimExpr(lead + 1, ctx));
  Value s = generic(
      b, ValueRange{g.x, g.weight}, filledF32(b, shape, 0.0),
      {mapOf(ctx, nd, xExprs), mapOf(ctx, nd, dimRange(ctx, lead, lead + 2)),
       mapOf(ctx, nd, dimRange(ctx, 0, lead + 1))},
      iteratorsOf(nd, {lead + 1}), [&](ImplicitLocOpBuilder &ib, ValueRange a) {
        return SmallVector<Value>{
            add(ib, a[2], mul(ib, toF32(ib, a[0]), toF32(ib, a[1])))};
      })[0];
  unsigned r = lead + 1;
  AffineMap id = AffineMap::getMultiDimIdentityMap(r, ctx);
  AffineMap perToken = dropDim(ctx, r, lead);
  if (g.scoreFunc != ScoreFunc::softmax)
    return generic(b, ValueRange{}, s, {id}, iteratorsOf(r),
                   [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                     return SmallVector<Value>{
                         gateScore(ib, g.scoreFunc, a[0])};
                   })[0];
  SmallVector<OpFoldResult> tokens(shape.begin(), shape.end() - 1);
  Value mx = generic(
      b, s, filledF32(b, tokens, -INFINITY), {id, perToken},
      iteratorsOf(r, {lead}), [&](ImplicitLocOpBuilder &ib, ValueRange a) {
        return SmallVector<Value>{arith::MaximumFOp::create(ib, a[1], a[0])};
      })[0];
  s = generic(b, mx, s, {perToken, id}, iteratorsOf(r),
              [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                return SmallVector<Value>{
                    math::ExpOp::create(ib, sub(ib, a[1], a[0]))};
              })[0];
  Value sum = generic(b, s, filledF32(b, tokens, 0.0), {id, perToken},
                      iteratorsOf(r, {lead}),
                      [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                        return SmallVector<Value>{add(ib, a[1], a[0])};
                      })[0];
  return generic(b, sum, s, {perToken, id}, iteratorsOf(r),
                 [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                   return SmallVector<Value>{div(ib, a[1], a[0])};
                 })[0];
}

/// The expert indices [..., k] (i64) of the score gate: top-k of s + bias by
/// repeated arg-max (strict >, so the lowest index wins among equal scores;
/// chosen entries become -inf), one scf.for iteration per slot.
Value topKIndices(ImplicitLocOpBuilder &b, const GateOperands &g, Value s) {
  MLIRContext *ctx = b.getContext();
  unsigned r = cast<RankedTensorType>(s.getType()).getRank(), lead = r - 1;
  AffineMap id = AffineMap::getMultiDimIdentityMap(r, ctx);
  AffineMap perToken = dropDim(ctx, r, lead);
  SmallVector<OpFoldResult> shape = sizesOf(b, s);
  SmallVector<OpFoldResult> tokens(shape.begin(), shape.end() - 1);
  Value biased;
  if (g.bias)
    biased =
        generic(b, ValueRange{s, g.bias}, emptyLike(b, shape, s),
                {id, mapOf(ctx, r, {getAffineDimExpr(lead, ctx)}), id},
                iteratorsOf(r), [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                  return SmallVector<Value>{add(ib, a[0], toF32(ib, a[1]))};
                })[0];
  else
    biased = linalg::CopyOp::create(b, s, emptyLike(b, shape, s))->getResult(0);
  SmallVector<OpFoldResult> idxShape = tokens;
  idxShape.push_back(b.getIndexAttr(g.topK));
  Value indices =
      linalg::FillOp::create(
          b, ValueRange{arith::ConstantOp::create(b, b.getI64IntegerAttr(0))},
          ValueRange{emptyTensor(b, idxShape, b.getI64Type())})
          ->getResult(0);
  Value lb = arith::ConstantIndexOp::create(b, 0);
  Value ub = arith::ConstantIndexOp::create(b, g.topK);
  Value step = arith::ConstantIndexOp::create(b, 1);
  auto loop = scf::ForOp::create(
      b, lb, ub, step, ValueRange{biased, indices},
      [&](OpBuilder &nb, Location loc, Value j, ValueRange acc) {
        ImplicitLocOpBuilder ib(loc, nb);
        Value negInf = f32(ib, -INFINITY);
        Value zeroI = arith::ConstantOp::create(ib, ib.getI64IntegerAttr(0));
        Value bestV = filledF32(ib, tokens, -INFINITY);
        Value bestI = linalg::FillOp::create(
                          ib, ValueRange{zeroI},
                          ValueRange{emptyTensor(ib, tokens, ib.getI64Type())})
                          ->getResult(0);
        SmallVector<Value> best = generic(
            ib, acc[0], ValueRange{bestV, bestI}, {id, perToken, perToken},
            iteratorsOf(r, {lead}),
            [&](ImplicitLocOpBuilder &eb, ValueRange a) {
              Value e = arith::IndexCastOp::create(
                  eb, eb.getI64Type(), linalg::IndexOp::create(eb, lead));
              Value gt = arith::CmpFOp::create(eb, arith::CmpFPredicate::OGT,
                                               a[0], a[1]);
              return SmallVector<Value>{
                  arith::SelectOp::create(eb, gt, a[0], a[1]),
                  arith::SelectOp::create(eb, gt, e, a[2])};
            });
        // indices[..., j] = arg-max; biased[..., arg-max] = -inf.
        Value nextIdx =
            generic(ib, best[1], acc[1], {perToken, id}, iteratorsOf(r),
                    [&](ImplicitLocOpBuilder &eb, ValueRange a) {
                      Value slot = arith::CmpIOp::create(
                          eb, arith::CmpIPredicate::eq,
                          linalg::IndexOp::create(eb, lead), j);
                      return SmallVector<Value>{
                          arith::SelectOp::create(eb, slot, a[0], a[1])};
                    })[0];
        Value nextBiased = generic(
            ib, best[1], acc[0], {perToken, id}, iteratorsOf(r),
            [&](ImplicitLocOpBuilder &eb, ValueRange a) {
              Value e = arith::IndexCastOp::create(
                  eb, eb.getI64Type(), linalg::IndexOp::create(eb, lead));
              Value chosen =
                  arith::CmpIOp::create(eb, arith::CmpIPredicate::eq, e, a[0]);
              return SmallVector<Value>{
                  arith::SelectOp::create(eb, chosen, negInf, a[1])};
            })[0];
        scf::YieldOp::create(ib, ValueRange{nextBiased, nextIdx});
      });
  return loop.getResult(1);
}

/// The expert indices [..., k] (i64) of the hash gate: tid2eid[ids[...], j].
Value hashIndices(ImplicitLocOpBuilder &b, const GateOperands &g,
                  ArrayRef<OpFoldResult> tokens) {
  MLIRContext *ctx = b.getContext();
  unsigned lead = tokens.size(), r = lead + 1;
  SmallVector<OpFoldResult> shape(tokens);
  shape.push_back(sizesOf(b, g.table)[1]);
  return generic(
      b, g.ids, emptyTensor(b, shape, b.getI64Type()),
      {dropDim(ctx, r, lead), AffineMap::getMultiDimIdentityMap(r, ctx)},
      iteratorsOf(r), [&](ImplicitLocOpBuilder &ib, ValueRange a) {
        Value id = toIndex(ib, a[0]);
        Value j = linalg::IndexOp::create(ib, lead);
        Value e = tensor::ExtractOp::create(ib, g.table, ValueRange{id, j});
        return SmallVector<Value>{toI64(ib, e)};
      })[0];
}

/// routing weights [..., k] = s[idx] / sum * routeScale (softmax: s[idx] *
/// routeScale), the sum over the k chosen scores in slot order from 0.
Value routingWeights(ImplicitLocOpBuilder &b, const GateOperands &g, Value s,
                     Value indices) {
  MLIRContext *ctx = b.getContext();
  unsigned r = cast<RankedTensorType>(indices.getType()).getRank(),
           lead = r - 1;
  AffineMap id = AffineMap::getMultiDimIdentityMap(r, ctx);
  AffineMap perToken = dropDim(ctx, r, lead);
  SmallVector<OpFoldResult> shape = sizesOf(b, indices);
  SmallVector<OpFoldResult> tokens(shape.begin(), shape.end() - 1);
  Value chosen =
      generic(b, indices, emptyTensor(b, shape, b.getF32Type()), {id, id},
              iteratorsOf(r), [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                SmallVector<Value> at;
                for (unsigned i = 0; i < lead; ++i)
                  at.push_back(linalg::IndexOp::create(ib, i));
                at.push_back(toIndex(ib, a[0]));
                return SmallVector<Value>{tensor::ExtractOp::create(ib, s, at)};
              })[0];
  Value rs = f32(b, g.routeScale);
  if (g.scoreFunc == ScoreFunc::softmax)
    return generic(b, ValueRange{}, chosen, {id}, iteratorsOf(r),
                   [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                     return SmallVector<Value>{mul(ib, a[0], rs)};
                   })[0];
  Value sum = generic(b, chosen, filledF32(b, tokens, 0.0), {id, perToken},
                      iteratorsOf(r, {lead}),
                      [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                        return SmallVector<Value>{add(ib, a[1], a[0])};
                      })[0];
  return generic(b, sum, chosen, {perToken, id}, iteratorsOf(r),
                 [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                   return SmallVector<Value>{mul(ib, div(ib, a[1], a[0]), rs)};
                 })[0];
}

/// Both gates: scores, then the indices (top-k or tid2eid), then the weights.
LogicalResult lowerGate(Operation *op, const GateOperands &g,
                        ConversionPatternRewriter &rewriter) {
  ImplicitLocOpBuilder b(op->getLoc(), rewriter);
  for (Value r : op->getResults())
    if (cast<RankedTensorType>(r.getType()).getShape().back() ==
        ShapedType::kDynamic)
      return rewriter.notifyMatchFailure(op, "top-k is dynamic");
  Value s = gateScores(b, g);
  Value indices;
  if (g.table) {
    SmallVector<OpFoldResult> xs = sizesOf(b, g.x);
    indices = hashIndices(b, g, ArrayRef<OpFoldResult>(xs).drop_back());
  } else {
    indices = topKIndices(b, g, s);
  }
  Value weights = routingWeights(b, g, s, indices);
  rewriter.replaceOp(op, ValueRange{weights, indices});
  return success();
}

struct MoEGateLowering : public OpConversionPattern<MoEGateOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(MoEGateOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    GateOperands g{adaptor.getX(),
                   adaptor.getWeight(),
                   adaptor.getBias(),
                   Value(),
                   Value(),
                   op.getScoreFunc(),
                   op.getRouteScale().convertToDouble(),
                   static_cast<int64_t>(op.getTopK())};
    return lowerGate(op, g, rewriter);
  }
};

struct MoEHashGateLowering : public OpConversionPattern<MoEHashGateOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(MoEHashGateOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    FailureOr<int64_t> k = staticDim(adaptor.getTid2eid(), 1);
    if (failed(k))
      return rewriter.notifyMatchFailure(op, "tid2eid dim 1 (k) is dynamic");
    GateOperands g{adaptor.getX(),
                   adaptor.getWeight(),
                   Value(),
                   adaptor.getIds(),
                   adaptor.getTid2eid(),
                   op.getScoreFunc(),
                   op.getRouteScale().convertToDouble(),
                   *k};
    return lowerGate(op, g, rewriter);
  }
};

//===----------------------------------------------------------------------===//
// Patterns: Engram (V4-SPEC 8)
//===----------------------------------------------------------------------===//

/// v4.engram.gate, production form (V4-SPEC 8.6 steps 2-4), on x [B, T, n,
/// d] and kv [B, T, (n+1)*d] (lane i's key at i*d, the value at n*d): per
/// lane three fp32 sums in ascending channel order (x.w.k, x.x, k.k), the
/// gate from them, then y = bf16(x + gate * v). The demo short-conv form
/// has no body (and no hand-built CPU kernel): it stays an error.
struct EngramGateLowering : public OpConversionPattern<EngramGateOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(EngramGateOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    if (op.hasShortConv())
      return rewriter.notifyMatchFailure(
          op, "the demo short-conv form (V4-SPEC 8.6 step 5) has no body");
    Value x = adaptor.getX(), kv = adaptor.getKv();
    auto xType = cast<RankedTensorType>(x.getType());
    if (xType.getRank() != 4 || xType.isDynamicDim(2) || xType.isDynamicDim(3))
      return rewriter.notifyMatchFailure(op, "x is not [B, T, n, d] with "
                                             "static n and d");
    const int64_t n = xType.getDimSize(2), d = xType.getDimSize(3);
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = b.getContext();
    Type elt = xType.getElementType();
    AffineExpr d0, d1, d2, d3;
    bindDims(ctx, d0, d1, d2, d3);
    SmallVector<OpFoldResult> xs = sizesOf(b, x);
    SmallVector<OpFoldResult> lanes{xs[0], xs[1], xs[2]};
    AffineMap id = AffineMap::getMultiDimIdentityMap(4, ctx);
    AffineMap perLane = mapOf(ctx, 4, {d0, d1, d2});
    AffineMap weight = mapOf(ctx, 4, {d2, d3});
    // (b, t, i, c): the three sums of lane i.
    SmallVector<Value> sums = generic(
        b, ValueRange{x, kv, adaptor.getQWeight(), adaptor.getKWeight()},
        ValueRange{filledF32(b, lanes, 0.0), filledF32(b, lanes, 0.0),
                   filledF32(b, lanes, 0.0)},
        {id, mapOf(ctx, 4, {d0, d1, d2 * d + d3}), weight, weight, perLane,
         perLane, perLane},
        iteratorsOf(4, {3}), [&](ImplicitLocOpBuilder &ib, ValueRange a) {
          Value xv = toF32(ib, a[0]), kvv = toF32(ib, a[1]);
          Value w = mul(ib, toF32(ib, a[2]), toF32(ib, a[3]));
          Value dotT = mul(ib, mul(ib, xv, w), kvv);
          return SmallVector<Value>{add(ib, a[4], dotT),
                                    add(ib, a[5], mul(ib, xv, xv)),
                                    add(ib, a[6], mul(ib, kvv, kvv))};
        });
    // The constants as the hand-built kernel forms them (in float).
    Value eps = f32(b, static_cast<float>(op.getEps().convertToDouble()));
    Value dF = f32(b, static_cast<float>(d));
    Value sqrtD = f32(b, std::sqrt(static_cast<float>(d)));
    Value one = f32(b, 1.0), clampMin = f32(b, 1e-6f);
    AffineMap id3 = AffineMap::getMultiDimIdentityMap(3, ctx);
    Value gate = generic(
        b, ValueRange{sums[1], sums[2]}, sums[0], {id3, id3, id3},
        iteratorsOf(3), [&](ImplicitLocOpBuilder &ib, ValueRange a) {
          auto rstd = [&](Value ss) {
            return div(ib, one,
                       math::SqrtOp::create(ib, add(ib, div(ib, ss, dF), eps)));
          };
          Value dot =
              div(ib, mul(ib, mul(ib, a[2], rstd(a[0])), rstd(a[1])), sqrtD);
          Value pos = arith::CmpFOp::create(ib, arith::CmpFPredicate::OGT, dot,
                                            f32(ib, 0));
          Value neg = arith::CmpFOp::create(ib, arith::CmpFPredicate::OLT, dot,
                                            f32(ib, 0));
          Value sign = arith::SelectOp::create(
              ib, pos, one,
              arith::SelectOp::create(ib, neg, f32(ib, -1.0), f32(ib, 0)));
          Value mag = math::SqrtOp::create(
              ib, arith::MaximumFOp::create(ib, math::AbsFOp::create(ib, dot),
                                            clampMin));
          Value z = mul(ib, sign, mag);
          return SmallVector<Value>{
              div(ib, one,
                  add(ib, one,
                      math::ExpOp::create(ib, arith::NegFOp::create(ib, z))))};
        })[0];
    Value y =
        generic(b, ValueRange{x, kv, gate}, emptyTensor(b, xs, elt),
                {id, mapOf(ctx, 4, {d0, d1, d3 + n * d}), perLane, id},
                iteratorsOf(4), [&](ImplicitLocOpBuilder &ib, ValueRange a) {
                  Value v =
                      add(ib, toF32(ib, a[0]), mul(ib, a[2], toF32(ib, a[1])));
                  return SmallVector<Value>{fromF32(ib, v, elt)};
                })[0];
    rewriter.replaceOp(op, y);
    return success();
  }
};

/// v4.engram.hash (V4-SPEC 8.3, 8.4) as two generics: rows [B, T, R] and
/// the new look-back [B, N-1], each element computed from ids, tokenMap and
/// the old look-back (an scf.if picks this call's ids or the state, as the
/// hand-built kernel does). Integer arithmetic throughout. The new
/// look-back is a fresh tensor that the kernel store writes into the tied
/// state operand, after every read of the old one.
struct EngramHashLowering : public OpConversionPattern<EngramHashOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(EngramHashOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Value ids = adaptor.getIds(), map = adaptor.getTokenMap(),
          mult = adaptor.getMultipliers(), state = adaptor.getState();
    const int64_t N = static_cast<int64_t>(op.getMaxNgram());
    const int64_t H = static_cast<int64_t>(op.getHeads());
    ArrayRef<int64_t> primes = op.getPrimes();
    if (static_cast<int64_t>(primes.size()) != (N - 1) * H)
      return rewriter.notifyMatchFailure(op, "primes are not (N-1)*H");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = b.getContext();
    auto rowsType = cast<RankedTensorType>(op.getRows().getType());
    Type rowType = rowsType.getElementType();
    auto cIdx = [](ImplicitLocOpBuilder &ib, int64_t v) -> Value {
      return arith::ConstantIndexOp::create(ib, v);
    };
    auto cI64 = [](ImplicitLocOpBuilder &ib, int64_t v) -> Value {
      return arith::ConstantOp::create(ib, ib.getI64IntegerAttr(v));
    };
    Value T = tensor::DimOp::create(b, ids, 1);

    // c = tokenMap[ids[bi, pos]] as i64.
    auto compressed = [&](ImplicitLocOpBuilder &ib, Value bi, Value pos) {
      Value id = arith::IndexCastOp::create(
          ib, ib.getIndexType(),
          tensor::ExtractOp::create(ib, ids, ValueRange{bi, pos}));
      return toI64(ib, tensor::ExtractOp::create(ib, map, ValueRange{id}));
    };
    // c_{t-kk}: from this call's ids when t >= kk, else the old look-back
    // slot kk-t-1.
    auto lookBack = [&](ImplicitLocOpBuilder &ib, Value bi, Value t,
                        Value kk) -> Value {
      Value inChunk =
          arith::CmpIOp::create(ib, arith::CmpIPredicate::uge, t, kk);
      auto ifOp = scf::IfOp::create(
          ib, inChunk,
          [&](OpBuilder &tb, Location loc) {
            ImplicitLocOpBuilder ob(loc, tb);
            Value pos = arith::SubIOp::create(ob, t, kk);
            scf::YieldOp::create(ob, compressed(ob, bi, pos));
          },
          [&](OpBuilder &eb, Location loc) {
            ImplicitLocOpBuilder ob(loc, eb);
            Value slot = arith::SubIOp::create(
                ob, arith::SubIOp::create(ob, kk, t), cIdx(ob, 1));
            scf::YieldOp::create(
                ob, tensor::ExtractOp::create(ob, state, ValueRange{bi, slot})
                        .getResult());
          });
      return ifOp.getResult(0);
    };

    // rows[bi, t, r] = (h_n(t) mod P_r) + off_r, n = r / H + 2, with the
    // cumulative XOR h_n = h_{n-1} XOR c_{t-n+1} * m_{n-1}.
    SmallVector<OpFoldResult> rowsShape = sizesOf(b, ids);
    rowsShape.push_back(b.getIndexAttr(rowsType.getDimSize(2)));
    AffineMap id3 = AffineMap::getMultiDimIdentityMap(3, ctx);
    Value rows = generic(
        b, ValueRange{}, emptyTensor(b, rowsShape, rowType), {id3},
        iteratorsOf(3), [&](ImplicitLocOpBuilder &ib, ValueRange) {
          Value bi = linalg::IndexOp::create(ib, 0);
          Value t = linalg::IndexOp::create(ib, 1);
          Value r = linalg::IndexOp::create(ib, 2);
          auto m = [&](int64_t k) -> Value {
            return tensor::ExtractOp::create(ib, mult, ValueRange{cIdx(ib, k)});
          };
          Value h = arith::MulIOp::create(ib, compressed(ib, bi, t), m(0));
          SmallVector<Value> hs; // h_2 ... h_N
          for (int64_t n = 2; n <= N; ++n) {
            Value term = arith::MulIOp::create(
                ib, lookBack(ib, bi, t, cIdx(ib, n - 1)), m(n - 1));
            h = arith::XOrIOp::create(ib, h, term);
            hs.push_back(h);
          }
          // The order n and the prime / offset of row r, by selects.
          Value hn = hs.back();
          for (int64_t n = N - 1; n >= 2; --n) {
            Value below = arith::CmpIOp::create(ib, arith::CmpIPredicate::ult,
                                                r, cIdx(ib, (n - 1) * H));
            hn = arith::SelectOp::create(ib, below, hs[n - 2], hn);
          }
          Value prime = cI64(ib, primes[0]), offset = cI64(ib, 0);
          int64_t off = 0;
          for (auto [k, p] : llvm::enumerate(primes)) {
            Value isK = arith::CmpIOp::create(ib, arith::CmpIPredicate::eq, r,
                                              cIdx(ib, k));
            prime = arith::SelectOp::create(ib, isK, cI64(ib, p), prime);
            offset = arith::SelectOp::create(ib, isK, cI64(ib, off), offset);
            off += p;
          }
          Value row = arith::AddIOp::create(
              ib, arith::RemSIOp::create(ib, hn, prime), offset);
          if (!rowType.isInteger(64))
            row = arith::TruncIOp::create(ib, rowType, row);
          return SmallVector<Value>{row};
        })[0];

    // newState[bi, kk] = c_{T-1-kk}.
    AffineMap id2 = AffineMap::getMultiDimIdentityMap(2, ctx);
    Value newState =
        generic(b, ValueRange{}, emptyLike(b, sizesOf(b, state), state), {id2},
                iteratorsOf(2), [&](ImplicitLocOpBuilder &ib, ValueRange) {
                  Value bi = linalg::IndexOp::create(ib, 0);
                  Value kk = linalg::IndexOp::create(ib, 1);
                  Value last = arith::SubIOp::create(ib, T, cIdx(ib, 1));
                  return SmallVector<Value>{lookBack(ib, bi, last, kk)};
                })[0];
    rewriter.replaceOp(op, ValueRange{rows, newState});
    return success();
  }
};

/// v4.engram.lookup (V4-SPEC 8.5): a gather, one element of e [B, T, R*De]
/// per point: column r*De + c is column c of table row rows[b, t, r]. An
/// FP8 table element is decoded at its row's e8m0 scale of 32 columns
/// (exact) and narrowed to e's element type; a plain table element is
/// copied (converted when the types differ).
struct EngramLookupLowering : public OpConversionPattern<EngramLookupOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(EngramLookupOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    auto type = dyn_cast_or_null<RankedTensorType>(
        getTypeConverter()->convertType(op.getType()));
    if (!type || type.getRank() != 3)
      return rewriter.notifyMatchFailure(op, "e is not one rank-3 tensor");
    Value rows = adaptor.getRows(), table = adaptor.getTable(),
          scale = adaptor.getScale();
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = b.getContext();
    Type elt = type.getElementType();
    SmallVector<OpFoldResult> shape = sizesOf(b, rows);
    shape.back() = b.getIndexAttr(type.getDimSize(2));
    Value De = tensor::DimOp::create(b, table, 1);
    AffineMap id3 = AffineMap::getMultiDimIdentityMap(3, ctx);
    Value e = generic(
        b, ValueRange{}, emptyTensor(b, shape, elt), {id3}, iteratorsOf(3),
        [&](ImplicitLocOpBuilder &ib, ValueRange) {
          Value bi = linalg::IndexOp::create(ib, 0);
          Value t = linalg::IndexOp::create(ib, 1);
          Value col = linalg::IndexOp::create(ib, 2);
          Value r = arith::DivUIOp::create(ib, col, De);
          Value c = arith::RemUIOp::create(ib, col, De);
          Value row = arith::IndexCastOp::create(
              ib, ib.getIndexType(),
              tensor::ExtractOp::create(ib, rows, ValueRange{bi, t, r}));
          Value v = tensor::ExtractOp::create(ib, table, ValueRange{row, c});
          if (scale) {
            Value blk = arith::DivUIOp::create(
                ib, c, arith::ConstantIndexOp::create(ib, 32));
            Value code =
                tensor::ExtractOp::create(ib, scale, ValueRange{row, blk});
            v = fromF32(ib, lowp::dequantizeE4M3(ib, v, code), elt);
          } else if (v.getType() != elt) {
            v = fromF32(ib, toF32(ib, v), elt);
          }
          return SmallVector<Value>{v};
        })[0];
    rewriter.replaceOp(op, e);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Expert-parallel slot exchange: v4.moe.dispatch, v4.moe.undispatch
//===----------------------------------------------------------------------===//

/// `t` [a, b, ..., z] collapsed to [a * b * ... * z] (`keep` = 0), or with
/// its first `keep` dims before and its last `keep` dims after the collapsed
/// group kept ([a, b * ... * y, z] for `keep` 1 and rank >= 3).
Value collapseMiddle(ImplicitLocOpBuilder &b, Value t, int64_t keep) {
  int64_t r = cast<RankedTensorType>(t.getType()).getRank();
  SmallVector<ReassociationIndices> groups;
  for (int64_t i = 0; i < keep; ++i)
    groups.push_back({i});
  ReassociationIndices middle;
  for (int64_t i = keep; i < r - keep; ++i)
    middle.push_back(i);
  groups.push_back(middle);
  for (int64_t i = r - keep; i < r; ++i)
    groups.push_back({i});
  return tensor::CollapseShapeOp::create(b, t, groups);
}

/// `t` [w, n, z] (or [n, z] without `world`) expanded to `type` [w, ...,
/// z]: the middle dim becomes type's dims between the first and the last,
/// sized from `sizes` (type's rank entries).
Value expandMiddle(ImplicitLocOpBuilder &b, Value t, RankedTensorType type,
                   ArrayRef<OpFoldResult> sizes, bool world) {
  int64_t r = type.getRank(), first = world ? 1 : 0;
  SmallVector<ReassociationIndices> groups;
  if (world)
    groups.push_back({0});
  ReassociationIndices middle;
  for (int64_t i = first; i < r - 1; ++i)
    middle.push_back(i);
  groups.push_back(middle);
  groups.push_back({r - 1});
  return tensor::ExpandShapeOp::create(b, type, t, groups, sizes);
}

/// The slots of `ids` [S] i64 in ascending order, each to the rank q =
/// ids[s] / perRank (unsigned; q >= world: no rank) as row p of q's block,
/// p counting q's earlier slots. Returns the per-rank counts [world + 1]
/// (the last: the slots of no rank) and the map: `inverse`: [world + 1, S]
/// with s at [q, p] and -1 elsewhere (dispatch); else [S] with q * S + p,
/// -1 for no rank (undispatch). Scalar loops over tensors (as top-k).
std::pair<Value, Value> slotMap(ImplicitLocOpBuilder &b, Value ids,
                                int64_t world, int64_t perRank, bool inverse) {
  Type i64 = b.getI64Type();
  Value zero = arith::ConstantIndexOp::create(b, 0);
  Value one = arith::ConstantIndexOp::create(b, 1);
  Value S = tensor::DimOp::create(b, ids, 0);
  auto fill = [&](ArrayRef<OpFoldResult> shape, int64_t v) {
    Value init = emptyTensor(b, shape, i64);
    Value c = arith::ConstantOp::create(b, b.getI64IntegerAttr(v));
    return linalg::FillOp::create(b, ValueRange{c}, ValueRange{init})
        ->getResult(0);
  };
  Value counts = fill({b.getIndexAttr(world + 1)}, 0);
  Value map =
      inverse ? fill({b.getIndexAttr(world + 1), S}, -1) : fill({S}, -1);
  auto loop = scf::ForOp::create(
      b, zero, S, one, ValueRange{counts, map},
      [&](OpBuilder &nb, Location loc, Value s, ValueRange acc) {
        ImplicitLocOpBuilder ib(loc, nb);
        Value id = tensor::ExtractOp::create(ib, ids, ValueRange{s});
        Value q = arith::MinUIOp::create(
            ib,
            arith::DivUIOp::create(
                ib, id,
                arith::ConstantOp::create(ib, ib.getI64IntegerAttr(perRank))),
            arith::ConstantOp::create(ib, ib.getI64IntegerAttr(world)));
        Value qi = toIndex(ib, q);
        Value p = tensor::ExtractOp::create(ib, acc[0], ValueRange{qi});
        Value next = tensor::InsertOp::create(
            ib,
            arith::AddIOp::create(
                ib, p, arith::ConstantOp::create(ib, ib.getI64IntegerAttr(1))),
            acc[0], ValueRange{qi});
        Value m;
        if (inverse) {
          m = tensor::InsertOp::create(ib,
                                       arith::IndexCastOp::create(ib, i64, s),
                                       acc[1], ValueRange{qi, toIndex(ib, p)});
        } else {
          Value none = arith::CmpIOp::create(
              ib, arith::CmpIPredicate::eq, q,
              arith::ConstantOp::create(ib, ib.getI64IntegerAttr(world)));
          Value at = arith::AddIOp::create(
              ib,
              arith::MulIOp::create(ib, q,
                                    arith::IndexCastOp::create(ib, i64, S)),
              p);
          Value v = arith::SelectOp::create(
              ib, none, arith::ConstantOp::create(ib, ib.getI64IntegerAttr(-1)),
              at);
          m = tensor::InsertOp::create(ib, v, acc[1], ValueRange{s});
        }
        scf::YieldOp::create(ib, ValueRange{next, m});
      });
  return {loop.getResult(0), loop.getResult(1)};
}

/// An element of `t` at `at` when `valid`, else `fill`, selected on the
/// bits (no narrow float crosses a select: the CPU backend would promote
/// it through a conversion libcall).
Value extractOr(ImplicitLocOpBuilder &b, Value valid, Value t, ValueRange at,
                TypedAttr fill) {
  Value v = tensor::ExtractOp::create(b, t, at);
  Type elt = v.getType();
  auto ft = dyn_cast<FloatType>(elt);
  Value f = arith::ConstantOp::create(b, fill);
  if (!ft)
    return arith::SelectOp::create(b, valid, v, f);
  Type bits = b.getIntegerType(ft.getWidth());
  Value r =
      arith::SelectOp::create(b, valid, arith::BitcastOp::create(b, bits, v),
                              arith::BitcastOp::create(b, bits, f));
  return arith::BitcastOp::create(b, elt, r);
}

/// v4.moe.dispatch: the slot map (slotMap, inverse), then each block row
/// (q, p) gathers slot s = map[q, p]'s token row of x, routing weight and
/// index (+0, +0, -1 past the block's count).
struct MoEDispatchLowering : public OpConversionPattern<MoEDispatchOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(MoEDispatchOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = b.getContext();
    int64_t world = op.getWorldSize();
    auto xType = cast<RankedTensorType>(adaptor.getX().getType());
    if (xType.getRank() < 2)
      return rewriter.notifyMatchFailure(op, "x has no token dim");
    int64_t k = cast<RankedTensorType>(op.getRoutingWeights().getType())
                    .getShape()
                    .back();
    // x [..., d] -> [L, d]; the weights and indices [..., k] -> [S].
    Value x2 = tensor::CollapseShapeOp::create(
        b, adaptor.getX(),
        SmallVector<ReassociationIndices>{
            llvm::to_vector(llvm::seq<int64_t>(0, xType.getRank() - 1)),
            {xType.getRank() - 1}});
    Value w1 = collapseMiddle(b, adaptor.getRoutingWeights(), 0);
    Value i1 = collapseMiddle(b, adaptor.getExpertIndices(), 0);
    auto [counts, map] =
        slotMap(b, i1, world, op.getExpertsPerRank(), /*inverse=*/true);
    Value S = tensor::DimOp::create(b, i1, 0);
    Value K = arith::ConstantIndexOp::create(b, k);

    // counts: the first `world` entries.
    auto id1 = AffineMap::getMultiDimIdentityMap(1, ctx);
    Value n =
        generic(b, ValueRange{},
                emptyTensor(b, {b.getIndexAttr(world)}, b.getI64Type()), {id1},
                iteratorsOf(1), [&](ImplicitLocOpBuilder &ib, ValueRange) {
                  Value q = linalg::IndexOp::create(ib, 0);
                  return SmallVector<Value>{
                      tensor::ExtractOp::create(ib, counts, ValueRange{q})};
                })[0];
    // Block rows [world, S, last]: slot s of row (q, p), or none.
    auto rowsOf =
        [&](Type elt, int64_t last,
            function_ref<Value(ImplicitLocOpBuilder &, Value, Value, Value)>
                value) {
          auto id3 = AffineMap::getMultiDimIdentityMap(3, ctx);
          return generic(
              b, ValueRange{},
              emptyTensor(b, {b.getIndexAttr(world), S, b.getIndexAttr(last)},
                          elt),
              {id3}, iteratorsOf(3), [&](ImplicitLocOpBuilder &ib, ValueRange) {
                Value q = linalg::IndexOp::create(ib, 0);
                Value p = linalg::IndexOp::create(ib, 1);
                Value c = linalg::IndexOp::create(ib, 2);
                Value s = tensor::ExtractOp::create(ib, map, ValueRange{q, p});
                Value valid = arith::CmpIOp::create(
                    ib, arith::CmpIPredicate::sge, s,
                    arith::ConstantOp::create(ib, ib.getI64IntegerAttr(0)));
                Value si = toIndex(ib, arith::MaxSIOp::create(
                                           ib, s,
                                           arith::ConstantOp::create(
                                               ib, ib.getI64IntegerAttr(0))));
                return SmallVector<Value>{value(ib, valid, si, c)};
              })[0];
        };
    Type xElt = xType.getElementType();
    Value rows = rowsOf(
        xElt, xType.getShape().back(),
        [&](ImplicitLocOpBuilder &ib, Value valid, Value s, Value c) {
          Value tok = arith::DivUIOp::create(ib, s, K);
          return extractOr(ib, valid, x2, {tok, c}, ib.getZeroAttr(xElt));
        });
    Value rw =
        rowsOf(b.getF32Type(), 1,
               [&](ImplicitLocOpBuilder &ib, Value valid, Value s, Value) {
                 return extractOr(ib, valid, w1, {s}, ib.getF32FloatAttr(0.0));
               });
    Value ri =
        rowsOf(b.getI64Type(), 1,
               [&](ImplicitLocOpBuilder &ib, Value valid, Value s, Value) {
                 return extractOr(ib, valid, i1, {s}, ib.getI64IntegerAttr(-1));
               });
    // [world, S, last] -> [world, leading..., k, last].
    SmallVector<Value> results{n}, computed{rows, rw, ri},
        declared{op.getRows(), op.getRowWeights(), op.getRowIndices()};
    for (auto [v, result] : llvm::zip(computed, declared)) {
      auto type = cast<RankedTensorType>(result.getType());
      SmallVector<OpFoldResult> sizes{b.getIndexAttr(world)};
      for (int64_t i = 0; i + 1 < xType.getRank(); ++i)
        sizes.push_back(tensor::getMixedSize(b, b.getLoc(), adaptor.getX(), i));
      sizes.push_back(b.getIndexAttr(k));
      sizes.push_back(b.getIndexAttr(type.getShape().back()));
      results.push_back(expandMiddle(b, v, type, sizes, /*world=*/true));
    }
    rewriter.replaceOp(op, results);
    return success();
  }
};

/// v4.moe.undispatch: the slot map (slotMap, forward), then result row s
/// copies row p of block q of y (+0 for a slot of no rank).
struct MoEUndispatchLowering : public OpConversionPattern<MoEUndispatchOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(MoEUndispatchOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = b.getContext();
    auto type = cast<RankedTensorType>(op.getType());
    Value ids = adaptor.getExpertIndices();
    if (cast<RankedTensorType>(ids.getType()).getRank() < 2)
      return rewriter.notifyMatchFailure(op, "expertIndices has no token dim");
    Value i1 = collapseMiddle(b, ids, 0);
    Value y3 = collapseMiddle(b, adaptor.getY(), 1);
    Value map = slotMap(b, i1, op.getWorldSize(), op.getExpertsPerRank(),
                        /*inverse=*/false)
                    .second;
    Value S = tensor::DimOp::create(b, i1, 0);
    Type elt = type.getElementType();
    int64_t d = type.getShape().back();
    auto id2 = AffineMap::getMultiDimIdentityMap(2, ctx);
    Value out = generic(
        b, ValueRange{}, emptyTensor(b, {S, b.getIndexAttr(d)}, elt), {id2},
        iteratorsOf(2), [&](ImplicitLocOpBuilder &ib, ValueRange) {
          Value s = linalg::IndexOp::create(ib, 0);
          Value c = linalg::IndexOp::create(ib, 1);
          Value at = tensor::ExtractOp::create(ib, map, ValueRange{s});
          Value valid = arith::CmpIOp::create(
              ib, arith::CmpIPredicate::sge, at,
              arith::ConstantOp::create(ib, ib.getI64IntegerAttr(0)));
          Value a = toIndex(
              ib, arith::MaxSIOp::create(
                      ib, at,
                      arith::ConstantOp::create(ib, ib.getI64IntegerAttr(0))));
          Value q = arith::DivUIOp::create(ib, a, S);
          Value p = arith::RemUIOp::create(ib, a, S);
          return SmallVector<Value>{
              extractOr(ib, valid, y3, {q, p, c}, ib.getZeroAttr(elt))};
        })[0];
    SmallVector<OpFoldResult> sizes = sizesOf(b, ids);
    sizes.push_back(b.getIndexAttr(d));
    rewriter.replaceOp(op, expandMiddle(b, out, type, sizes, /*world=*/false));
    return success();
  }
};

} // namespace

void mlir::v4::populateV4ToLinalgHyperConnPatterns(
    const TypeConverter &converter, RewritePatternSet &patterns) {
  patterns
      .add<MhcExpandLowering, MhcSinkhornLowering, MhcPreLowering,
           MhcPostLowering, MhcPostPreLowering, MhcHeadLowering,
           MtpInputLowering, MoECombineLowering, MoEGateLowering,
           MoEHashGateLowering, EngramGateLowering, EngramHashLowering,
           EngramLookupLowering, MoEDispatchLowering, MoEUndispatchLowering>(
          converter, patterns.getContext());
}

bool mlir::v4::isLoweredByV4ToLinalgHyperConn(Operation *op) {
  return isa<MhcExpandOp, MhcSinkhornOp, MhcPreOp, MhcPostOp, MhcPostPreOp,
             MhcHeadOp, MtpInputOp, MoECombineOp, MoEGateOp, MoEHashGateOp,
             MoEDispatchOp, MoEUndispatchOp, EngramHashOp, EngramLookupOp>(
             op) ||
         // The demo short-conv form is left to the target, which rejects it
         // with its own error.
         (isa<EngramGateOp>(op) && !cast<EngramGateOp>(op).hasShortConv());
}
