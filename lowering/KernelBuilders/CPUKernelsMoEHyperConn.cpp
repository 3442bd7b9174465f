//===- CPUKernelsMoEHyperConn.cpp - CPU kernels: mHC, MTP, MoE
//-------------===//
//
// v4.mhc.*, v4.mtp.*, v4.moe.* (V4-SPEC 4, 6, 7).
//
//===----------------------------------------------------------------------===//
#include "lowering/KernelBuilders/CPUKernelBody.h"

#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

using namespace mlir;

namespace mlir::v4::cpu {
namespace {

//===----------------------------------------------------------------------===//
// Local helpers: loops, constants, scalar numerics
//===----------------------------------------------------------------------===//

using LoopBody = function_ref<void(ImplicitLocOpBuilder &, Value)>;
using ReduceBody =
    function_ref<SmallVector<Value>(ImplicitLocOpBuilder &, Value, ValueRange)>;

Value cIdx(ImplicitLocOpBuilder &b, int64_t v) {
  return arith::ConstantIndexOp::create(b, v);
}
Value cF32(ImplicitLocOpBuilder &b, double v) {
  return arith::ConstantOp::create(b, b.getF32FloatAttr(v));
}
Value cI32(ImplicitLocOpBuilder &b, int64_t v) {
  return arith::ConstantIntOp::create(b, b.getI32Type(), v);
}

/// for i in [lb, ub): body(i).
void forEach(ImplicitLocOpBuilder &b, Value lb, Value ub, LoopBody body) {
  scf::ForOp::create(b, lb, ub, cIdx(b, 1), ValueRange(),
                     [&](OpBuilder &nb, Location loc, Value i, ValueRange) {
                       ImplicitLocOpBuilder ib(loc, nb);
                       body(ib, i);
                       scf::YieldOp::create(ib);
                     });
}
void forEach(ImplicitLocOpBuilder &b, Value ub, LoopBody body) {
  forEach(b, cIdx(b, 0), ub, body);
}

/// for i in [lb, ub): acc = body(i, acc); returns the final acc.
SmallVector<Value> forReduce(ImplicitLocOpBuilder &b, Value lb, Value ub,
                             ValueRange init, ReduceBody body) {
  auto loop = scf::ForOp::create(
      b, lb, ub, cIdx(b, 1), init,
      [&](OpBuilder &nb, Location loc, Value i, ValueRange acc) {
        ImplicitLocOpBuilder ib(loc, nb);
        SmallVector<Value> next = body(ib, i, acc);
        scf::YieldOp::create(ib, next);
      });
  return SmallVector<Value>(loop.getResults().begin(), loop.getResults().end());
}
/// Sequential fp32 sum over [lb, ub) of term(i).
Value sumF32(ImplicitLocOpBuilder &b, Value lb, Value ub,
             function_ref<Value(ImplicitLocOpBuilder &, Value)> term) {
  return forReduce(b, lb, ub, ValueRange{cF32(b, 0.0)},
                   [&](ImplicitLocOpBuilder &ib, Value i, ValueRange acc) {
                     return SmallVector<Value>{
                         arith::AddFOp::create(ib, acc[0], term(ib, i))};
                   })[0];
}

Value load(ImplicitLocOpBuilder &b, Value m, ValueRange idx) {
  return memref::LoadOp::create(b, m, idx);
}
/// Loads an element and widens it to f32.
Value loadF32(ImplicitLocOpBuilder &b, Value m, ValueRange idx) {
  return KernelBody{b}.toF32(load(b, m, idx));
}
void store(ImplicitLocOpBuilder &b, Value v, Value m, ValueRange idx) {
  memref::StoreOp::create(b, v, m, idx);
}
Value add(ImplicitLocOpBuilder &b, Value x, Value y) {
  return arith::AddFOp::create(b, x, y);
}
Value mul(ImplicitLocOpBuilder &b, Value x, Value y) {
  return arith::MulFOp::create(b, x, y);
}
Value div(ImplicitLocOpBuilder &b, Value x, Value y) {
  return arith::DivFOp::create(b, x, y);
}
Value indexToF32(ImplicitLocOpBuilder &b, Value i) {
  return arith::UIToFPOp::create(
      b, b.getF32Type(), arith::IndexCastUIOp::create(b, b.getI64Type(), i));
}
/// ceil(v / d) on index values.
Value ceilDivIdx(ImplicitLocOpBuilder &b, Value v, int64_t d) {
  return arith::DivUIOp::create(b, arith::AddIOp::create(b, v, cIdx(b, d - 1)),
                                cIdx(b, d));
}
/// A memref of `n` f32 on the stack (allocated once, at function entry).
Value scratch(ImplicitLocOpBuilder &b, Value n) {
  return memref::AllocaOp::create(
      b, MemRefType::get({ShapedType::kDynamic}, b.getF32Type()),
      ValueRange{n});
}

/// 1 / (1 + exp(-x)), as the reference writes it.
Value sigmoid(ImplicitLocOpBuilder &b, Value x) {
  Value one = cF32(b, 1.0);
  return div(b, one,
             add(b, one, math::ExpOp::create(b, arith::NegFOp::create(b, x))));
}
/// x / (1 + exp(-x)).
Value silu(ImplicitLocOpBuilder &b, Value x) {
  return div(b, x,
             add(b, cF32(b, 1.0),
                 math::ExpOp::create(b, arith::NegFOp::create(b, x))));
}
/// log(1 + x), accurate for small x (u = 1 + x; log(u) * x / (u - 1)).
Value log1p(ImplicitLocOpBuilder &b, Value x) {
  Value u = add(b, cF32(b, 1.0), x);
  Value d = arith::SubFOp::create(b, u, cF32(b, 1.0));
  Value r = div(b, mul(b, math::LogOp::create(b, u), x), d);
  Value exact =
      arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, d, cF32(b, 0.0));
  return arith::SelectOp::create(b, exact, x, r);
}
/// Gate score of a logit z (V4-SPEC 6.1; softmax is handled by the caller).
Value gateScore(ImplicitLocOpBuilder &b, ScoreFunc f, Value z) {
  if (f == ScoreFunc::sigmoid)
    return sigmoid(b, z);
  // softplus: log(1 + e^z), z above 20 taken as is (torch's threshold).
  Value big =
      arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, z, cF32(b, 20.0));
  Value sp =
      arith::SelectOp::create(b, big, z, log1p(b, math::ExpOp::create(b, z)));
  return math::SqrtOp::create(b, sp);
}

Value bitsOf(ImplicitLocOpBuilder &b, Value f) {
  return arith::BitcastOp::create(b, b.getI32Type(), f);
}
Value fromBits(ImplicitLocOpBuilder &b, Value i) {
  return arith::BitcastOp::create(b, b.getF32Type(), i);
}
/// 2^k as f32 for an i32 k in [-126, 127].
Value pow2(ImplicitLocOpBuilder &b, Value k) {
  return fromBits(
      b, arith::ShLIOp::create(b, arith::AddIOp::create(b, k, cI32(b, 127)),
                               cI32(b, 23)));
}
/// Unbiased exponent field of a f32 (floor(log2|v|) for normal v).
Value exponentOf(ImplicitLocOpBuilder &b, Value v) {
  Value e = arith::AndIOp::create(
      b, arith::ShRUIOp::create(b, bitsOf(b, v), cI32(b, 23)), cI32(b, 255));
  return arith::SubIOp::create(b, e, cI32(b, 127));
}
/// ceil(log2(v)) of a positive normal f32, read off its bits (exponent, +1
/// when the mantissa is non-zero), as the reference kernel does.
Value ceilLog2(ImplicitLocOpBuilder &b, Value v) {
  Value mant = arith::AndIOp::create(b, bitsOf(b, v), cI32(b, 0x7FFFFF));
  Value extra = arith::ExtUIOp::create(
      b, b.getI32Type(),
      arith::CmpIOp::create(b, arith::CmpIPredicate::ne, mant, cI32(b, 0)));
  return arith::AddIOp::create(b, exponentOf(b, v), extra);
}
/// e4m3fn round-to-nearest-even of v, |v| <= 448 (already clamped): the
/// quantum is 2^(max(e, -6) - 3) (normals: 3 mantissa bits; subnormals
/// 2^-9).
Value roundE4M3(ImplicitLocOpBuilder &b, Value v) {
  Value e = arith::MaxSIOp::create(b, exponentOf(b, v), cI32(b, -6));
  Value q = pow2(b, arith::SubIOp::create(b, e, cI32(b, 3)));
  Value inv = pow2(b, arith::SubIOp::create(b, cI32(b, 3), e));
  return mul(b, math::RoundEvenOp::create(b, mul(b, v, inv)), q);
}
/// Value of an e4m3fn code (i8).
Value decodeE4M3(ImplicitLocOpBuilder &b, Value code) {
  Value c = arith::ExtUIOp::create(b, b.getI32Type(), code);
  Value sign = arith::ShLIOp::create(
      b, arith::AndIOp::create(b, c, cI32(b, 0x80)), cI32(b, 24));
  Value exp = arith::AndIOp::create(b, arith::ShRUIOp::create(b, c, cI32(b, 3)),
                                    cI32(b, 15));
  Value mant = arith::AndIOp::create(b, c, cI32(b, 7));
  Value normal = fromBits(
      b,
      arith::OrIOp::create(
          b, sign,
          arith::OrIOp::create(
              b,
              arith::ShLIOp::create(
                  b, arith::AddIOp::create(b, exp, cI32(b, 120)), cI32(b, 23)),
              arith::ShLIOp::create(b, mant, cI32(b, 20)))));
  Value sub = mul(b, arith::UIToFPOp::create(b, b.getF32Type(), mant),
                  cF32(b, std::ldexp(1.0, -9)));
  Value neg =
      arith::CmpIOp::create(b, arith::CmpIPredicate::ne, sign, cI32(b, 0));
  sub = arith::SelectOp::create(b, neg, arith::NegFOp::create(b, sub), sub);
  Value isSub =
      arith::CmpIOp::create(b, arith::CmpIPredicate::eq, exp, cI32(b, 0));
  return arith::SelectOp::create(b, isSub, sub, normal);
}
/// Value of an e2m1 code held in the low 4 bits of an i32.
Value decodeE2M1(ImplicitLocOpBuilder &b, Value c) {
  Value sign = arith::ShLIOp::create(b, arith::AndIOp::create(b, c, cI32(b, 8)),
                                     cI32(b, 28));
  Value exp = arith::AndIOp::create(b, arith::ShRUIOp::create(b, c, cI32(b, 1)),
                                    cI32(b, 3));
  Value mant = arith::AndIOp::create(b, c, cI32(b, 1));
  Value normal = fromBits(
      b,
      arith::OrIOp::create(
          b, sign,
          arith::OrIOp::create(
              b,
              arith::ShLIOp::create(
                  b, arith::AddIOp::create(b, exp, cI32(b, 126)), cI32(b, 23)),
              arith::ShLIOp::create(b, mant, cI32(b, 22)))));
  Value sub =
      mul(b, arith::UIToFPOp::create(b, b.getF32Type(), mant), cF32(b, 0.5));
  Value neg =
      arith::CmpIOp::create(b, arith::CmpIPredicate::ne, sign, cI32(b, 0));
  sub = arith::SelectOp::create(b, neg, arith::NegFOp::create(b, sub), sub);
  Value isSub =
      arith::CmpIOp::create(b, arith::CmpIPredicate::eq, exp, cI32(b, 0));
  return arith::SelectOp::create(b, isSub, sub, normal);
}
/// 2^(code - 127) of an e8m0 code (i8).
Value decodeE8M0(ImplicitLocOpBuilder &b, Value code) {
  Value c = arith::ExtUIOp::create(b, b.getI32Type(), code);
  Value zero =
      arith::CmpIOp::create(b, arith::CmpIPredicate::eq, c, cI32(b, 0));
  return fromBits(
      b, arith::SelectOp::create(b, zero, cI32(b, 0x400000),
                                 arith::ShLIOp::create(b, c, cI32(b, 23))));
}

//===----------------------------------------------------------------------===//
// v4.mhc.sinkhorn (V4-SPEC 4.2 step 4)
//===----------------------------------------------------------------------===//

/// Sinkhorn-Knopp on one n x n matrix held in SSA values (row-major, row j =
/// input lane): softmax_row + eps, column normalisation, then iters - 1
/// times row and column normalisation. Shared by v4.mhc.sinkhorn and
/// v4.mhc.pre.
void sinkhornInPlace(ImplicitLocOpBuilder &ib, SmallVectorImpl<Value> &c,
                     int64_t n, Value eps, int64_t iters) {
  KernelBody kb{ib};
  // softmax over each row (k), then + eps.
  for (int64_t j = 0; j < n; ++j) {
    Value mx = c[j * n];
    for (int64_t q = 1; q < n; ++q)
      mx = arith::MaximumFOp::create(ib, mx, c[j * n + q]);
    SmallVector<Value> ex(n);
    Value s = kb.f32(0.0);
    for (int64_t q = 0; q < n; ++q) {
      ex[q] =
          math::ExpOp::create(ib, arith::SubFOp::create(ib, c[j * n + q], mx));
      s = arith::AddFOp::create(ib, s, ex[q]);
    }
    for (int64_t q = 0; q < n; ++q)
      c[j * n + q] =
          arith::AddFOp::create(ib, arith::DivFOp::create(ib, ex[q], s), eps);
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
}

LogicalResult buildSinkhorn(MhcSinkhornOp op, func::FuncOp fn) {
  auto b = bodyBuilder(op, fn);
  KernelBody k{b};
  Value in = fn.getArgument(0), out = fn.getArgument(1);
  auto type = cast<MemRefType>(in.getType());
  int64_t n = type.getDimSize(type.getRank() - 1);
  if (ShapedType::isDynamic(n))
    return op.emitError("CPU kernel needs a static Sinkhorn matrix size");
  // [..., n, n] -> [M, n*n]: one matrix per row, kept in registers.
  Value in2 = k.collapse2D(in, 2), out2 = k.collapse2D(out, 2);
  Value eps = k.f32(op.getEps().convertToDouble());
  int64_t iters = op.getIters();
  forEach(b, k.dim(in2, 0), [&](ImplicitLocOpBuilder &ib, Value m) {
    // n is small (4 lanes): unroll into SSA values.
    SmallVector<Value> c(n * n);
    for (int64_t e = 0; e < n * n; ++e)
      c[e] = load(ib, in2, {m, cIdx(ib, e)});
    sinkhornInPlace(ib, c, n, eps, iters);
    for (int64_t e = 0; e < n * n; ++e)
      store(ib, c[e], out2, {m, cIdx(ib, e)});
  });
  func::ReturnOp::create(b);
  return success();
}

//===----------------------------------------------------------------------===//
// mHC lanes: expand, pre, post, head (V4-SPEC 3, 4)
//===----------------------------------------------------------------------===//

/// Static lane count n of lanes [B, T, n, d].
FailureOr<int64_t> laneCount(Operation *op, Value lanes) {
  auto t = cast<MemRefType>(lanes.getType());
  int64_t n = t.getDimSize(t.getRank() - 2);
  if (ShapedType::isDynamic(n))
    return op->emitError("CPU kernel needs a static lane count");
  return n;
}

LogicalResult buildExpand(MhcExpandOp op, func::FuncOp fn) {
  auto b = bodyBuilder(op, fn);
  KernelBody k{b};
  Value e = fn.getArgument(0), lanes = fn.getArgument(1);
  FailureOr<int64_t> n = laneCount(op, lanes);
  if (failed(n))
    return failure();
  Value e2 = k.collapse2D(e, 1), l2 = k.collapse2D(lanes, 2);
  Value d = k.dim(e2, 1);
  forEach(b, k.dim(e2, 0), [&](ImplicitLocOpBuilder &ib, Value t) {
    forEach(ib, d, [&](ImplicitLocOpBuilder &jb, Value c) {
      Value v = load(jb, e2, {t, c});
      for (int64_t i = 0; i < *n; ++i)
        store(jb, v, l2,
              {t, arith::AddIOp::create(
                      jb, arith::MulIOp::create(jb, cIdx(jb, i), d), c)});
    });
  });
  func::ReturnOp::create(b);
  return success();
}

/// Index i * d + c into flattened lanes [n*d].
Value laneIdx(ImplicitLocOpBuilder &b, int64_t i, Value d, Value c) {
  return arith::AddIOp::create(b, arith::MulIOp::create(b, cIdx(b, i), d), c);
}

/// The mixes m_i = (x^ . fn_i) * rho of token t of lanes x2 [M, n*d]
/// (V4-SPEC 4.1): rho = 1 / sqrt(mean(x^2) + normEps) over all n*d values,
/// the dot products accumulated in fp32.
SmallVector<Value> hcMixes(ImplicitLocOpBuilder &b, Value x2, Value t,
                           Value fnW, int64_t numMixes, Value normEps) {
  Value nd = KernelBody{b}.dim(x2, 1);
  Value zero = cIdx(b, 0);
  Value ss = sumF32(b, zero, nd, [&](ImplicitLocOpBuilder &ib, Value c) {
    Value v = loadF32(ib, x2, {t, c});
    return mul(ib, v, v);
  });
  Value mean = div(b, ss, indexToF32(b, nd));
  Value rho =
      div(b, cF32(b, 1.0), math::SqrtOp::create(b, add(b, mean, normEps)));
  SmallVector<Value> init(numMixes, cF32(b, 0.0));
  SmallVector<Value> acc = forReduce(
      b, zero, nd, init, [&](ImplicitLocOpBuilder &ib, Value c, ValueRange a) {
        Value v = loadF32(ib, x2, {t, c});
        SmallVector<Value> next;
        for (int64_t i = 0; i < numMixes; ++i)
          next.push_back(
              add(ib, a[i], mul(ib, v, load(ib, fnW, {cIdx(ib, i), c}))));
        return next;
      });
  for (Value &v : acc)
    v = mul(b, v, rho);
  return acc;
}

/// y[t] = bf16(sum_j w_j X_j) in fp32, j = 0..n-1 (the lane mix of hc_pre and
/// hc_head).
void laneMix(ImplicitLocOpBuilder &b, Value x2, Value y2, Value t,
             ArrayRef<Value> w) {
  Value d = KernelBody{b}.dim(y2, 1);
  Type elt = cast<MemRefType>(y2.getType()).getElementType();
  forEach(b, d, [&](ImplicitLocOpBuilder &ib, Value c) {
    Value acc = cF32(ib, 0.0);
    for (size_t j = 0; j < w.size(); ++j)
      acc = add(ib, acc,
                mul(ib, w[j], loadF32(ib, x2, {t, laneIdx(ib, j, d, c)})));
    store(ib, KernelBody{ib}.fromF32(acc, elt), y2, {t, c});
  });
}

/// hc_pre of token t (V4-SPEC 4.1-4.3) on lanes x2 [M, n*d]: post and comb
/// stored into post2 [M, n] and comb2 [M, n*n], y into y2 [M, d]. Shared by
/// v4.mhc.pre and v4.mhc.post_pre.
void preToken(ImplicitLocOpBuilder &ib, Value x2, Value t, Value fnW,
              Value base, ArrayRef<Value> scales, int64_t n, Value hcEps,
              Value normEps, int64_t iters, Value y2, Value post2,
              Value comb2) {
  int64_t numMixes = (2 + n) * n;
  SmallVector<Value> m = hcMixes(ib, x2, t, fnW, numMixes, normEps);
  auto affine = [&](int64_t i, Value s) {
    return add(ib, mul(ib, m[i], s), load(ib, base, {cIdx(ib, i)}));
  };
  SmallVector<Value> pre(n), c(n * n);
  for (int64_t j = 0; j < n; ++j) {
    pre[j] = add(ib, sigmoid(ib, affine(j, scales[0])), hcEps);
    Value p = mul(ib, cF32(ib, 2.0), sigmoid(ib, affine(n + j, scales[1])));
    store(ib, p, post2, {t, cIdx(ib, j)});
  }
  for (int64_t e = 0; e < n * n; ++e)
    c[e] = affine(2 * n + e, scales[2]);
  sinkhornInPlace(ib, c, n, hcEps, iters);
  for (int64_t e = 0; e < n * n; ++e)
    store(ib, c[e], comb2, {t, cIdx(ib, e)});
  laneMix(ib, x2, y2, t, pre);
}

/// The three scales s0, s1, s2 of hc_pre.
SmallVector<Value> preScales(ImplicitLocOpBuilder &b, Value scale) {
  return {load(b, scale, {cIdx(b, 0)}), load(b, scale, {cIdx(b, 1)}),
          load(b, scale, {cIdx(b, 2)})};
}

LogicalResult buildPre(MhcPreOp op, func::FuncOp fn) {
  auto b = bodyBuilder(op, fn);
  KernelBody k{b};
  Value x = fn.getArgument(0), fnW = fn.getArgument(1),
        base = fn.getArgument(2), scale = fn.getArgument(3),
        y = fn.getArgument(4), post = fn.getArgument(5),
        comb = fn.getArgument(6);
  FailureOr<int64_t> nOr = laneCount(op, x);
  if (failed(nOr))
    return failure();
  int64_t n = *nOr;
  Value x2 = k.collapse2D(x, 2), y2 = k.collapse2D(y, 1),
        post2 = k.collapse2D(post, 1), comb2 = k.collapse2D(comb, 2);
  Value hcEps = k.f32(op.getHcEps().convertToDouble());
  Value normEps = k.f32(op.getNormEps().convertToDouble());
  int64_t iters = op.getSinkhornIters();
  SmallVector<Value> scales = preScales(b, scale);
  forEach(b, k.dim(x2, 0), [&](ImplicitLocOpBuilder &ib, Value t) {
    preToken(ib, x2, t, fnW, base, scales, n, hcEps, normEps, iters, y2, post2,
             comb2);
  });
  func::ReturnOp::create(b);
  return success();
}

LogicalResult buildHead(MhcHeadOp op, func::FuncOp fn) {
  auto b = bodyBuilder(op, fn);
  KernelBody k{b};
  Value x = fn.getArgument(0), fnW = fn.getArgument(1),
        base = fn.getArgument(2), scale = fn.getArgument(3),
        y = fn.getArgument(4);
  FailureOr<int64_t> nOr = laneCount(op, x);
  if (failed(nOr))
    return failure();
  int64_t n = *nOr;
  Value x2 = k.collapse2D(x, 2), y2 = k.collapse2D(y, 1);
  Value hcEps = k.f32(op.getHcEps().convertToDouble());
  Value normEps = k.f32(op.getNormEps().convertToDouble());
  Value s0 = load(b, scale, {cIdx(b, 0)});
  forEach(b, k.dim(x2, 0), [&](ImplicitLocOpBuilder &ib, Value t) {
    SmallVector<Value> m = hcMixes(ib, x2, t, fnW, n, normEps);
    SmallVector<Value> w(n);
    for (int64_t j = 0; j < n; ++j)
      w[j] = add(ib,
                 sigmoid(ib, add(ib, mul(ib, m[j], s0),
                                 load(ib, base, {cIdx(ib, j)}))),
                 hcEps);
    laneMix(ib, x2, y2, t, w);
  });
  func::ReturnOp::create(b);
  return success();
}

/// hc_post of token t (V4-SPEC 4.3): X'_k = bf16(post_k o + sum_j C_jk X_j)
/// in fp32 for every lane k, from o2 [M, d], x2 [M, n*d], post2 [M, n] and
/// comb2 [M, n*n] into out2 [M, n*d]. Shared by v4.mhc.post and
/// v4.mhc.post_pre.
void postToken(ImplicitLocOpBuilder &ib, Value o2, Value x2, Value post2,
               Value comb2, Value out2, Value t, int64_t n) {
  Type elt = cast<MemRefType>(out2.getType()).getElementType();
  Value d = KernelBody{ib}.dim(o2, 1);
  SmallVector<Value> p(n), c(n * n);
  for (int64_t j = 0; j < n; ++j)
    p[j] = load(ib, post2, {t, cIdx(ib, j)});
  for (int64_t e = 0; e < n * n; ++e)
    c[e] = load(ib, comb2, {t, cIdx(ib, e)});
  forEach(ib, d, [&](ImplicitLocOpBuilder &jb, Value col) {
    Value ov = loadF32(jb, o2, {t, col});
    SmallVector<Value> xs(n);
    for (int64_t j = 0; j < n; ++j)
      xs[j] = loadF32(jb, x2, {t, laneIdx(jb, j, d, col)});
    for (int64_t kk = 0; kk < n; ++kk) {
      // X'_k = post_k o + sum_j C_jk X_j: contraction over the row j.
      Value mix = cF32(jb, 0.0);
      for (int64_t j = 0; j < n; ++j)
        mix = add(jb, mix, mul(jb, c[j * n + kk], xs[j]));
      Value v = add(jb, mul(jb, p[kk], ov), mix);
      store(jb, KernelBody{jb}.fromF32(v, elt), out2,
            {t, laneIdx(jb, kk, d, col)});
    }
  });
}

LogicalResult buildPost(MhcPostOp op, func::FuncOp fn) {
  auto b = bodyBuilder(op, fn);
  KernelBody k{b};
  Value o = fn.getArgument(0), x = fn.getArgument(1), post = fn.getArgument(2),
        comb = fn.getArgument(3), out = fn.getArgument(4);
  FailureOr<int64_t> nOr = laneCount(op, x);
  if (failed(nOr))
    return failure();
  int64_t n = *nOr;
  Value o2 = k.collapse2D(o, 1), x2 = k.collapse2D(x, 2),
        post2 = k.collapse2D(post, 1), comb2 = k.collapse2D(comb, 2),
        out2 = k.collapse2D(out, 2);
  forEach(b, k.dim(o2, 0), [&](ImplicitLocOpBuilder &ib, Value t) {
    postToken(ib, o2, x2, post2, comb2, out2, t, n);
  });
  func::ReturnOp::create(b);
  return success();
}

/// v4.mhc.post_pre: one loop over tokens; each token's X' (all lanes) is
/// computed into the X' buffer, then the pre math runs on those stored
/// values while they are hot. Same code paths as mhc.post and mhc.pre, so
/// the results are those of the two kernels bit for bit.
LogicalResult buildPostPre(MhcPostPreOp op, func::FuncOp fn) {
  auto b = bodyBuilder(op, fn);
  KernelBody k{b};
  Value o = fn.getArgument(0), x = fn.getArgument(1), post = fn.getArgument(2),
        comb = fn.getArgument(3), fnW = fn.getArgument(4),
        base = fn.getArgument(5), scale = fn.getArgument(6),
        out = fn.getArgument(7), y = fn.getArgument(8),
        nextPost = fn.getArgument(9), nextComb = fn.getArgument(10);
  FailureOr<int64_t> nOr = laneCount(op, x);
  if (failed(nOr))
    return failure();
  int64_t n = *nOr;
  Value o2 = k.collapse2D(o, 1), x2 = k.collapse2D(x, 2),
        post2 = k.collapse2D(post, 1), comb2 = k.collapse2D(comb, 2),
        out2 = k.collapse2D(out, 2), y2 = k.collapse2D(y, 1),
        nextPost2 = k.collapse2D(nextPost, 1),
        nextComb2 = k.collapse2D(nextComb, 2);
  Value hcEps = k.f32(op.getHcEps().convertToDouble());
  Value normEps = k.f32(op.getNormEps().convertToDouble());
  int64_t iters = op.getSinkhornIters();
  SmallVector<Value> scales = preScales(b, scale);
  forEach(b, k.dim(o2, 0), [&](ImplicitLocOpBuilder &ib, Value t) {
    postToken(ib, o2, x2, post2, comb2, out2, t, n);
    preToken(ib, out2, t, fnW, base, scales, n, hcEps, normEps, iters, y2,
             nextPost2, nextComb2);
  });
  func::ReturnOp::create(b);
  return success();
}

//===----------------------------------------------------------------------===//
// v4.mtp.input (V4-SPEC 7.1 step 2)
//===----------------------------------------------------------------------===//

LogicalResult buildMtpInput(MtpInputOp op, func::FuncOp fn) {
  auto b = bodyBuilder(op, fn);
  KernelBody k{b};
  Value e = fn.getArgument(0), h = fn.getArgument(1), out = fn.getArgument(2);
  FailureOr<int64_t> nOr = laneCount(op, h);
  if (failed(nOr))
    return failure();
  Value e2 = k.collapse2D(e, 1), h2 = k.collapse2D(h, 2),
        out2 = k.collapse2D(out, 2);
  Type elt = cast<MemRefType>(out.getType()).getElementType();
  Value d = k.dim(e2, 1);
  forEach(b, k.dim(e2, 0), [&](ImplicitLocOpBuilder &ib, Value t) {
    forEach(ib, d, [&](ImplicitLocOpBuilder &jb, Value c) {
      Value ev = loadF32(jb, e2, {t, c});
      for (int64_t i = 0; i < *nOr; ++i) {
        Value li = laneIdx(jb, i, d, c);
        Value v = add(jb, ev, loadF32(jb, h2, {t, li}));
        store(jb, KernelBody{jb}.fromF32(v, elt), out2, {t, li});
      }
    });
  });
  func::ReturnOp::create(b);
  return success();
}

//===----------------------------------------------------------------------===//
// v4.moe.gate, v4.moe.hash_gate (V4-SPEC 6.1)
//===----------------------------------------------------------------------===//

/// Views a memref of any rank as 1-D (rank 0 stays rank 0).
Value flatten1D(ImplicitLocOpBuilder &b, Value m) {
  auto t = cast<MemRefType>(m.getType());
  if (t.getRank() <= 1)
    return m;
  ReassociationIndices all;
  for (int64_t i = 0; i < t.getRank(); ++i)
    all.push_back(i);
  return memref::CollapseShapeOp::create(b, m,
                                         ArrayRef<ReassociationIndices>{all});
}

/// Integer element widened to index.
Value loadIndex(ImplicitLocOpBuilder &b, Value m, ValueRange idx) {
  Value v = load(b, m, idx);
  if (!v.getType().isInteger(64))
    v = arith::ExtSIOp::create(b, b.getI64Type(), v);
  return arith::IndexCastOp::create(b, b.getIndexType(), v);
}

/// Shared body of both gates. Operands: x, weight, then (score gate) the
/// optional bias or (hash gate) ids and tid2eid; results: routingWeights,
/// expertIndices.
LogicalResult buildGate(Operation *op, func::FuncOp fn, ScoreFunc scoreFunc,
                        double routeScale, bool hash, bool hasBias) {
  auto b = bodyBuilder(op, fn);
  KernelBody k{b};
  unsigned arg = 0;
  Value x = fn.getArgument(arg++), w = fn.getArgument(arg++);
  Value bias, ids, table;
  if (hash) {
    ids = fn.getArgument(arg++);
    table = fn.getArgument(arg++);
  } else if (hasBias) {
    bias = fn.getArgument(arg++);
  }
  Value rw = fn.getArgument(arg++), idxOut = fn.getArgument(arg++);
  Value x2 = k.collapse2D(x, 1), rw2 = k.collapse2D(rw, 1),
        idx2 = k.collapse2D(idxOut, 1);
  Value ids1 = ids ? flatten1D(b, ids) : Value();
  Value numExperts = k.dim(w, 0), d = k.dim(x2, 1), topK = k.dim(rw2, 1);
  Value zero = cIdx(b, 0);
  bool softmax = scoreFunc == ScoreFunc::softmax;
  Value s = scratch(b, numExperts);
  Value biased = hash ? Value() : scratch(b, numExperts);
  Value rs = k.f32(routeScale);
  Value negInf = k.f32(-INFINITY);

  forEach(b, k.dim(x2, 0), [&](ImplicitLocOpBuilder &ib, Value t) {
    // z = fp32(x) . fp32(weight)^T, s = score(z).
    forEach(ib, numExperts, [&](ImplicitLocOpBuilder &jb, Value e) {
      Value z = sumF32(jb, zero, d, [&](ImplicitLocOpBuilder &cb, Value c) {
        return mul(cb, loadF32(cb, x2, {t, c}), loadF32(cb, w, {e, c}));
      });
      store(jb, softmax ? z : gateScore(jb, scoreFunc, z), s, {e});
    });
    if (softmax) {
      Value mx =
          forReduce(ib, zero, numExperts, ValueRange{negInf},
                    [&](ImplicitLocOpBuilder &jb, Value e, ValueRange a) {
                      return SmallVector<Value>{arith::MaximumFOp::create(
                          jb, a[0], load(jb, s, {e}))};
                    })[0];
      Value sum =
          sumF32(ib, zero, numExperts, [&](ImplicitLocOpBuilder &jb, Value e) {
            Value ex = math::ExpOp::create(
                jb, arith::SubFOp::create(jb, load(jb, s, {e}), mx));
            store(jb, ex, s, {e});
            return ex;
          });
      forEach(ib, numExperts, [&](ImplicitLocOpBuilder &jb, Value e) {
        store(jb, div(jb, load(jb, s, {e}), sum), s, {e});
      });
    }
    Value sum;
    if (hash) {
      Value id = cast<MemRefType>(ids1.getType()).getRank() == 0
                     ? loadIndex(ib, ids1, {})
                     : loadIndex(ib, ids1, {t});
      sum = forReduce(
          ib, zero, topK, ValueRange{cF32(ib, 0.0)},
          [&](ImplicitLocOpBuilder &jb, Value j, ValueRange acc) {
            Value e = loadIndex(jb, table, {id, j});
            store(jb, arith::IndexCastOp::create(jb, jb.getI64Type(), e), idx2,
                  {t, j});
            Value sv = load(jb, s, {e});
            store(jb, sv, rw2, {t, j});
            return SmallVector<Value>{add(jb, acc[0], sv)};
          })[0];
    } else {
      forEach(ib, numExperts, [&](ImplicitLocOpBuilder &jb, Value e) {
        Value v = load(jb, s, {e});
        if (bias)
          v = add(jb, v, loadF32(jb, bias, {e}));
        store(jb, v, biased, {e});
      });
      // top-k of s + bias by repeated arg-max; a strict > keeps the lowest
      // index among equal scores. Chosen entries are set to -inf.
      sum = forReduce(
          ib, zero, topK, ValueRange{cF32(ib, 0.0)},
          [&](ImplicitLocOpBuilder &jb, Value j, ValueRange acc) {
            SmallVector<Value> best =
                forReduce(jb, zero, numExperts, ValueRange{negInf, zero},
                          [&](ImplicitLocOpBuilder &eb, Value e, ValueRange a) {
                            Value v = load(eb, biased, {e});
                            Value gt = arith::CmpFOp::create(
                                eb, arith::CmpFPredicate::OGT, v, a[0]);
                            return SmallVector<Value>{
                                arith::SelectOp::create(eb, gt, v, a[0]),
                                arith::SelectOp::create(eb, gt, e, a[1])};
                          });
            Value e = best[1];
            store(jb, negInf, biased, {e});
            store(jb, arith::IndexCastOp::create(jb, jb.getI64Type(), e), idx2,
                  {t, j});
            Value sv = load(jb, s, {e});
            store(jb, sv, rw2, {t, j});
            return SmallVector<Value>{add(jb, acc[0], sv)};
          })[0];
    }
    // weights = s[idx] / sum * routeScale (softmax: s[idx] * routeScale).
    forEach(ib, topK, [&](ImplicitLocOpBuilder &jb, Value j) {
      Value v = load(jb, rw2, {t, j});
      if (!softmax)
        v = div(jb, v, sum);
      store(jb, mul(jb, v, rs), rw2, {t, j});
    });
  });
  func::ReturnOp::create(b);
  return success();
}

//===----------------------------------------------------------------------===//
// v4.moe.experts, v4.moe.shared_expert (V4-SPEC 2.4, 6.2)
//===----------------------------------------------------------------------===//

enum class WeightFormat { FP4, FP8, BF16 };

WeightFormat weightFormat(Type elt) {
  if (isa<Float4E2M1FNType>(elt))
    return WeightFormat::FP4;
  if (isa<Float8E4M3FNType>(elt))
    return WeightFormat::FP8;
  return WeightFormat::BF16;
}

/// Quantises act[0, K) per 128 to e4m3 with a pow-2 scale (V4-SPEC 2.3 with
/// block 128, 2.4 step 1): qa gets the grid values, sa one scale per block.
void quantizeActFP8(ImplicitLocOpBuilder &b, Value act, Value K, Value qa,
                    Value sa) {
  forEach(b, ceilDivIdx(b, K, 128), [&](ImplicitLocOpBuilder &ib, Value kb) {
    Value k0 = arith::MulIOp::create(ib, kb, cIdx(ib, 128));
    Value k1 = arith::MinUIOp::create(
        ib, arith::AddIOp::create(ib, k0, cIdx(ib, 128)), K);
    Value amax = forReduce(
        ib, k0, k1, ValueRange{cF32(ib, 0.0)},
        [&](ImplicitLocOpBuilder &jb, Value kk, ValueRange a) {
          return SmallVector<Value>{arith::MaximumFOp::create(
              jb, a[0], math::AbsFOp::create(jb, load(jb, act, {kk})))};
        })[0];
    amax = arith::MaximumFOp::create(ib, amax, cF32(ib, 1e-4f));
    Value e = ceilLog2(ib, mul(ib, amax, cF32(ib, 1.0f / 448.0f)));
    store(ib, pow2(ib, e), sa, {kb});
    Value inv = pow2(ib, arith::SubIOp::create(ib, cI32(ib, 0), e));
    forEach(ib, k0, k1, [&](ImplicitLocOpBuilder &jb, Value kk) {
      Value v = mul(jb, load(jb, act, {kk}), inv);
      v = arith::MinimumFOp::create(
          jb, arith::MaximumFOp::create(jb, v, cF32(jb, -448.0)),
          cF32(jb, 448.0));
      store(jb, roundE4M3(jb, v), qa, {kk});
    });
  });
}

/// One output row of a linear layer before the bf16 rounding: row `row` of
/// weight w ([E, N, K] with expert `e`, or [N, K] when e is null) against the
/// activation. FP4: sum over 32-wide K slices of (sum qa * w) * s_a * s_w;
/// FP8: the same over 128-wide K blocks with the 128x128 weight scale; bf16:
/// fp32 dot product of act and w. All accumulation in fp32.
Value linearRow(ImplicitLocOpBuilder &b, WeightFormat fmt, Value act, Value qa,
                Value sa, Value w, Value ws, Value e, Value row, Value K) {
  auto at = [&](Value r, Value c) {
    return e ? SmallVector<Value>{e, r, c} : SmallVector<Value>{r, c};
  };
  Value zero = cIdx(b, 0);
  switch (fmt) {
  case WeightFormat::BF16:
    return sumF32(b, zero, K, [&](ImplicitLocOpBuilder &ib, Value kk) {
      return mul(ib, load(ib, act, {kk}), loadF32(ib, w, at(row, kk)));
    });
  case WeightFormat::FP8: {
    Value rb = arith::DivUIOp::create(b, row, cIdx(b, 128));
    return sumF32(b, zero, ceilDivIdx(b, K, 128),
                  [&](ImplicitLocOpBuilder &ib, Value kb) {
                    Value k0 = arith::MulIOp::create(ib, kb, cIdx(ib, 128));
                    Value k1 = arith::MinUIOp::create(
                        ib, arith::AddIOp::create(ib, k0, cIdx(ib, 128)), K);
                    Value part = sumF32(
                        ib, k0, k1, [&](ImplicitLocOpBuilder &jb, Value kk) {
                          return mul(jb, load(jb, qa, {kk}),
                                     decodeE4M3(jb, load(jb, w, at(row, kk))));
                        });
                    return mul(ib, mul(ib, part, load(ib, sa, {kb})),
                               decodeE8M0(ib, load(ib, ws, at(rb, kb))));
                  });
  }
  case WeightFormat::FP4:
    return sumF32(
        b, zero, arith::DivUIOp::create(b, K, cIdx(b, 32)),
        [&](ImplicitLocOpBuilder &ib, Value kb) {
          Value p0 = arith::MulIOp::create(ib, kb, cIdx(ib, 16));
          Value p1 = arith::AddIOp::create(ib, p0, cIdx(ib, 16));
          Value part = forReduce(
              ib, p0, p1, ValueRange{cF32(ib, 0.0)},
              [&](ImplicitLocOpBuilder &jb, Value p, ValueRange a) {
                // Element 2p in the low nibble, 2p+1 in the high.
                Value byte = arith::ExtUIOp::create(jb, jb.getI32Type(),
                                                    load(jb, w, at(row, p)));
                Value lo = arith::AndIOp::create(jb, byte, cI32(jb, 15));
                Value hi = arith::AndIOp::create(
                    jb, arith::ShRUIOp::create(jb, byte, cI32(jb, 4)),
                    cI32(jb, 15));
                Value k2 = arith::MulIOp::create(jb, p, cIdx(jb, 2));
                Value k2p1 = arith::AddIOp::create(jb, k2, cIdx(jb, 1));
                Value acc = add(
                    jb, a[0], mul(jb, load(jb, qa, {k2}), decodeE2M1(jb, lo)));
                acc = add(jb, acc,
                          mul(jb, load(jb, qa, {k2p1}), decodeE2M1(jb, hi)));
                return SmallVector<Value>{acc};
              })[0];
          Value sA =
              load(ib, sa, {arith::DivUIOp::create(ib, kb, cIdx(ib, 4))});
          return mul(ib, mul(ib, part, sA),
                     decodeE8M0(ib, load(ib, ws, at(row, kb))));
        });
  }
  llvm_unreachable("weight format");
}

/// Clamped SwiGLU FFN: routed experts (sum over the k experts of each token,
/// f32 result) or the shared expert (bf16 result).
LogicalResult buildFfn(Operation *op, func::FuncOp fn, bool routed, Type w1Type,
                       bool hasScales, std::optional<double> limit) {
  auto b = bodyBuilder(op, fn);
  KernelBody k{b};
  unsigned arg = 0;
  Value x = fn.getArgument(arg++);
  Value rw, idx;
  if (routed) {
    rw = fn.getArgument(arg++);
    idx = fn.getArgument(arg++);
  }
  Value w1 = fn.getArgument(arg++), w3 = fn.getArgument(arg++),
        w2 = fn.getArgument(arg++);
  Value s1, s3, s2;
  if (hasScales) {
    s1 = fn.getArgument(arg++);
    s3 = fn.getArgument(arg++);
    s2 = fn.getArgument(arg++);
  }
  Value out = fn.getArgument(arg++);
  WeightFormat fmt =
      weightFormat(cast<RankedTensorType>(w1Type).getElementType());
  bool quantised = fmt != WeightFormat::BF16;
  if (quantised != hasScales)
    return op->emitError("CPU kernel: weight format and scales disagree");

  Value x2 = k.collapse2D(x, 1), out2 = k.collapse2D(out, 1);
  Value rw2 = routed ? k.collapse2D(rw, 1) : Value();
  Value idx2 = routed ? k.collapse2D(idx, 1) : Value();
  auto w1t = cast<MemRefType>(w1.getType());
  Value d = k.dim(x2, 1), inter = k.dim(w1, w1t.getRank() - 2);
  Value act = scratch(b, d), hbuf = scratch(b, inter);
  Value qa, sa, qh, sh;
  if (quantised) {
    qa = scratch(b, d);
    sa = scratch(b, ceilDivIdx(b, d, 128));
    qh = scratch(b, inter);
    sh = scratch(b, ceilDivIdx(b, inter, 128));
  }
  Type outElt = cast<MemRefType>(out.getType()).getElementType();
  Value lim = limit ? k.f32(*limit) : Value();
  Value negLim = limit ? k.f32(-*limit) : Value();

  // One expert (e null: the shared weights) on the activation in act/qa/sa;
  // emit(c, y) receives each bf16 output value y_e[c] as f32.
  auto expert =
      [&](ImplicitLocOpBuilder &ib, Value e, Value r,
          function_ref<void(ImplicitLocOpBuilder &, Value, Value)> emit) {
        forEach(ib, inter, [&](ImplicitLocOpBuilder &jb, Value i) {
          KernelBody kj{jb};
          Value a =
              kj.roundBF16(linearRow(jb, fmt, act, qa, sa, w1, s1, e, i, d));
          Value bv =
              kj.roundBF16(linearRow(jb, fmt, act, qa, sa, w3, s3, e, i, d));
          if (limit) {
            bv = arith::MinimumFOp::create(
                jb, arith::MaximumFOp::create(jb, bv, negLim), lim);
            a = arith::MinimumFOp::create(jb, a, lim);
          }
          Value h = mul(jb, silu(jb, a), bv);
          if (r)
            h = mul(jb, r, h);
          store(jb, kj.roundBF16(h), hbuf, {i});
        });
        if (quantised)
          quantizeActFP8(ib, hbuf, inter, qh, sh);
        forEach(ib, d, [&](ImplicitLocOpBuilder &jb, Value c) {
          Value y = KernelBody{jb}.roundBF16(
              linearRow(jb, fmt, hbuf, qh, sh, w2, s2, e, c, inter));
          emit(jb, c, y);
        });
      };

  forEach(b, k.dim(x2, 0), [&](ImplicitLocOpBuilder &ib, Value t) {
    forEach(ib, d, [&](ImplicitLocOpBuilder &jb, Value c) {
      store(jb, loadF32(jb, x2, {t, c}), act, {c});
    });
    if (quantised)
      quantizeActFP8(ib, act, d, qa, sa);
    if (!routed) {
      expert(ib, Value(), Value(),
             [&](ImplicitLocOpBuilder &jb, Value c, Value y) {
               store(jb, KernelBody{jb}.fromF32(y, outElt), out2, {t, c});
             });
      return;
    }
    forEach(ib, d, [&](ImplicitLocOpBuilder &jb, Value c) {
      store(jb, cF32(jb, 0.0), out2, {t, c});
    });
    forEach(ib, k.dim(rw2, 1), [&](ImplicitLocOpBuilder &jb, Value j) {
      Value e = loadIndex(jb, idx2, {t, j});
      Value r = load(jb, rw2, {t, j});
      // result[t] = sum_j fp32(y_e), in slot order.
      expert(jb, e, r, [&](ImplicitLocOpBuilder &cb, Value c, Value y) {
        store(cb, add(cb, load(cb, out2, {t, c}), y), out2, {t, c});
      });
    });
  });
  func::ReturnOp::create(b);
  return success();
}

std::optional<double> limitOf(std::optional<APFloat> l) {
  if (!l)
    return std::nullopt;
  return l->convertToDouble();
}

//===----------------------------------------------------------------------===//
// v4.moe.combine (V4-SPEC 6.3)
//===----------------------------------------------------------------------===//

LogicalResult buildCombine(MoECombineOp op, func::FuncOp fn) {
  auto b = bodyBuilder(op, fn);
  KernelBody k{b};
  Value r2 = k.collapse2D(fn.getArgument(0), 1),
        s2 = k.collapse2D(fn.getArgument(1), 1),
        o2 = k.collapse2D(fn.getArgument(2), 1);
  Type elt = cast<MemRefType>(o2.getType()).getElementType();
  Value d = k.dim(r2, 1);
  forEach(b, k.dim(r2, 0), [&](ImplicitLocOpBuilder &ib, Value t) {
    forEach(ib, d, [&](ImplicitLocOpBuilder &jb, Value c) {
      Value v = add(jb, loadF32(jb, r2, {t, c}), loadF32(jb, s2, {t, c}));
      store(jb, KernelBody{jb}.fromF32(v, elt), o2, {t, c});
    });
  });
  func::ReturnOp::create(b);
  return success();
}

} // namespace

std::optional<LogicalResult> buildMoEHyperConnKernel(Operation *op,
                                                     func::FuncOp fn) {
  return llvm::TypeSwitch<Operation *, std::optional<LogicalResult>>(op)
      .Case<MhcSinkhornOp>([&](auto o) { return buildSinkhorn(o, fn); })
      .Case<MhcExpandOp>([&](auto o) { return buildExpand(o, fn); })
      .Case<MhcPreOp>([&](auto o) { return buildPre(o, fn); })
      .Case<MhcPostOp>([&](auto o) { return buildPost(o, fn); })
      .Case<MhcPostPreOp>([&](auto o) { return buildPostPre(o, fn); })
      .Case<MhcHeadOp>([&](auto o) { return buildHead(o, fn); })
      .Case<MtpInputOp>([&](auto o) { return buildMtpInput(o, fn); })
      .Case<MoEGateOp>([&](MoEGateOp o) {
        return buildGate(o, fn, o.getScoreFunc(),
                         o.getRouteScale().convertToDouble(), /*hash=*/false,
                         static_cast<bool>(o.getBias()));
      })
      .Case<MoEHashGateOp>([&](MoEHashGateOp o) {
        return buildGate(o, fn, o.getScoreFunc(),
                         o.getRouteScale().convertToDouble(), /*hash=*/true,
                         /*hasBias=*/false);
      })
      .Case<MoEExpertsOp>([&](MoEExpertsOp o) {
        return buildFfn(o, fn, /*routed=*/true, o.getW1().getType(),
                        static_cast<bool>(o.getW1Scale()),
                        limitOf(o.getSwigluLimit()));
      })
      .Case<MoESharedExpertOp>([&](MoESharedExpertOp o) {
        return buildFfn(o, fn, /*routed=*/false, o.getW1().getType(),
                        static_cast<bool>(o.getW1Scale()),
                        limitOf(o.getSwigluLimit()));
      })
      .Case<MoECombineOp>([&](auto o) { return buildCombine(o, fn); })
      .Default([](Operation *) { return std::nullopt; });
}

} // namespace mlir::v4::cpu
