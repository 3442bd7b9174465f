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

/// Sequential fp32 sum over [lb, ub) of term(i).
Value sumF32(ImplicitLocOpBuilder &b, Value lb, Value ub,
             function_ref<Value(ImplicitLocOpBuilder &, Value)> term) {
  return reduce(b, lb, ub, ValueRange{KernelBody{b}.f32(0.0)},
                [&](ImplicitLocOpBuilder &ib, Value i, ValueRange acc) {
                  return SmallVector<Value>{
                      arith::AddFOp::create(ib, acc[0], term(ib, i))};
                })[0];
}

/// ceil(v / d) on index values.
Value ceilDivIdx(ImplicitLocOpBuilder &b, Value v, int64_t d) {
  return arith::DivUIOp::create(
      b, arith::AddIOp::create(b, v, KernelBody{b}.idx(d - 1)),
      KernelBody{b}.idx(d));
}
/// A memref of `n` f32 on the stack (allocated once, at function entry).
Value scratch(ImplicitLocOpBuilder &b, Value n) {
  return memref::AllocaOp::create(
      b, MemRefType::get({ShapedType::kDynamic}, b.getF32Type()),
      ValueRange{n});
}

/// x / (1 + exp(-x)).
Value silu(ImplicitLocOpBuilder &b, Value x) {
  return KernelBody{b}.divf(
      x,
      KernelBody{b}.addf(KernelBody{b}.f32(1.0),
                         math::ExpOp::create(b, arith::NegFOp::create(b, x))));
}

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
  Value v = KernelBody{b}.load(m, idx);
  if (!v.getType().isInteger(64))
    v = arith::ExtSIOp::create(b, b.getI64Type(), v);
  return arith::IndexCastOp::create(b, b.getIndexType(), v);
}

//===----------------------------------------------------------------------===//
// v4.moe.experts, v4.moe.shared_expert (V4-SPEC 2.4, 6.2)
//===----------------------------------------------------------------------===//

using lowp::WeightFormat;

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
  if (fmt == WeightFormat::Plain)
    return sumF32(
        b, KernelBody{b}.idx(0), K, [&](ImplicitLocOpBuilder &ib, Value kk) {
          return KernelBody{ib}.mulf(KernelBody{ib}.load(act, {kk}),
                                     KernelBody{ib}.loadF(w, at(row, kk)));
        });
  // FP8: the weight scale of 128-K block j is s_w[row / 128, j]; FP4: the
  // scale of 32-K slice c is s_w[row, c].
  Value scaleRow = fmt == WeightFormat::FP8
                       ? arith::DivUIOp::create(b, row, KernelBody{b}.idx(128))
                       : row;
  return blockScaledDot(
      b, fmt, qa, sa, K, 128,
      [&](ImplicitLocOpBuilder &ib, Value col) {
        return KernelBody{ib}.load(w, at(row, col));
      },
      [&](ImplicitLocOpBuilder &ib, Value block) {
        return KernelBody{ib}.load(ws, at(scaleRow, block));
      });
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
      lowp::getWeightFormat(cast<RankedTensorType>(w1Type).getElementType());
  bool quantised = fmt != WeightFormat::Plain;
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
        loop(ib, KernelBody{ib}.idx(0), inter,
             [&](ImplicitLocOpBuilder &jb, Value i) {
               KernelBody kj{jb};
               Value a = kj.roundBF16(
                   linearRow(jb, fmt, act, qa, sa, w1, s1, e, i, d));
               Value bv = kj.roundBF16(
                   linearRow(jb, fmt, act, qa, sa, w3, s3, e, i, d));
               if (limit) {
                 bv = arith::MinimumFOp::create(
                     jb, arith::MaximumFOp::create(jb, bv, negLim), lim);
                 a = arith::MinimumFOp::create(jb, a, lim);
               }
               Value h = KernelBody{jb}.mulf(silu(jb, a), bv);
               if (r)
                 h = KernelBody{jb}.mulf(r, h);
               KernelBody{jb}.store(kj.roundBF16(h), hbuf, {i});
             });
        if (quantised)
          quantizeActFP8(
              ib,
              [&](ImplicitLocOpBuilder &jb, Value kk) {
                return KernelBody{jb}.load(hbuf, {kk});
              },
              inter, 128, qh, sh);
        loop(ib, KernelBody{ib}.idx(0), d,
             [&](ImplicitLocOpBuilder &jb, Value c) {
               Value y = KernelBody{jb}.roundBF16(
                   linearRow(jb, fmt, hbuf, qh, sh, w2, s2, e, c, inter));
               emit(jb, c, y);
             });
      };

  loop(b, k.idx(0), k.dim(x2, 0), [&](ImplicitLocOpBuilder &ib, Value t) {
    loop(ib, KernelBody{ib}.idx(0), d, [&](ImplicitLocOpBuilder &jb, Value c) {
      KernelBody{jb}.store(KernelBody{jb}.loadF(x2, {t, c}), act, {c});
    });
    if (quantised)
      quantizeActFP8(
          ib,
          [&](ImplicitLocOpBuilder &jb, Value kk) {
            return KernelBody{jb}.load(act, {kk});
          },
          d, 128, qa, sa);
    if (!routed) {
      expert(ib, Value(), Value(),
             [&](ImplicitLocOpBuilder &jb, Value c, Value y) {
               KernelBody{jb}.store(KernelBody{jb}.fromF32(y, outElt), out2,
                                    {t, c});
             });
      return;
    }
    loop(ib, KernelBody{ib}.idx(0), d, [&](ImplicitLocOpBuilder &jb, Value c) {
      KernelBody{jb}.store(KernelBody{jb}.f32(0.0), out2, {t, c});
    });
    loop(ib, KernelBody{ib}.idx(0), KernelBody{ib}.dim(rw2, 1),
         [&](ImplicitLocOpBuilder &jb, Value j) {
           Value e = loadIndex(jb, idx2, {t, j});
           Value r = KernelBody{jb}.load(rw2, {t, j});
           // result[t] = sum_j fp32(y_e), in slot order.
           expert(jb, e, r, [&](ImplicitLocOpBuilder &cb, Value c, Value y) {
             KernelBody{cb}.store(
                 KernelBody{cb}.addf(KernelBody{cb}.load(out2, {t, c}), y),
                 out2, {t, c});
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
