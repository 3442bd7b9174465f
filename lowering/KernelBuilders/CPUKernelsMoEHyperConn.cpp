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

/// x / (1 + exp(-x)).
Value silu(ImplicitLocOpBuilder &b, Value x) {
  return div(b, x,
             add(b, cF32(b, 1.0),
                 math::ExpOp::create(b, arith::NegFOp::create(b, x))));
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

//===----------------------------------------------------------------------===//
// mHC lanes: expand, pre, post, head (V4-SPEC 3, 4)
//===----------------------------------------------------------------------===//

//===----------------------------------------------------------------------===//
// v4.mtp.input (V4-SPEC 7.1 step 2)
//===----------------------------------------------------------------------===//

//===----------------------------------------------------------------------===//
// v4.moe.gate, v4.moe.hash_gate (V4-SPEC 6.1)
//===----------------------------------------------------------------------===//

/// Integer element widened to index.
Value loadIndex(ImplicitLocOpBuilder &b, Value m, ValueRange idx) {
  Value v = load(b, m, idx);
  if (!v.getType().isInteger(64))
    v = arith::ExtSIOp::create(b, b.getI64Type(), v);
  return arith::IndexCastOp::create(b, b.getIndexType(), v);
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

} // namespace

std::optional<LogicalResult> buildMoEHyperConnKernel(Operation *op,
                                                     func::FuncOp fn) {
  return llvm::TypeSwitch<Operation *, std::optional<LogicalResult>>(op)
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
      .Default([](Operation *) { return std::nullopt; });
}

} // namespace mlir::v4::cpu
