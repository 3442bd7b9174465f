//===- CPUKernelsMoEHyperConn.cpp - CPU kernels: MoE experts --------------===//
//
// v4.moe.experts, v4.moe.shared_expert (V4-SPEC 2.4, 6.2); the mHC, MTP and
// other MoE ops have target-neutral bodies (lowering/V4ToLinalg).
//
//===----------------------------------------------------------------------===//
#include "lowering/KernelBuilders/CPUKernelBody.h"

#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;

namespace mlir::v4::cpu {
namespace {

//===----------------------------------------------------------------------===//
// v4.moe.experts, v4.moe.shared_expert (V4-SPEC 2.4, 6.2)
//===----------------------------------------------------------------------===//

using lowp::WeightFormat;

/// x / (1 + exp(-x)).
Value silu(KernelBody &k, Value x) {
  return k.divf(x, k.addf(k.f32(1.0), k.exp(k.negf(x))));
}

/// An integer element widened to index.
Value loadIndex(KernelBody &k, Value m, ValueRange idx) {
  Value v = k.load(m, idx);
  if (!v.getType().isInteger(64))
    v = arith::ExtSIOp::create(k.b, k.b.getI64Type(), v);
  return k.toIndex(v);
}

/// One output row of a linear layer before the bf16 rounding: row `row` of
/// weight w ([E, N, K] with expert `e`, or [N, K] when e is null) against the
/// activation. FP4: sum over 32-wide K slices of (sum qa * w) * s_a * s_w;
/// FP8: the same over 128-wide K blocks with the 128x128 weight scale; bf16:
/// fp32 dot product of act and w. All accumulation in fp32.
Value linearRow(KernelBody &k, WeightFormat fmt, Value act, Value qa, Value sa,
                Value w, Value ws, Value e, Value row, Value K) {
  auto at = [&](Value r, Value c) {
    return e ? SmallVector<Value>{e, r, c} : SmallVector<Value>{r, c};
  };
  if (fmt == WeightFormat::Plain)
    return sumf(k, k.idx(0), K, [&](KernelBody &k, Value kk) {
      return k.mulf(k.load(act, {kk}), k.loadF(w, at(row, kk)));
    });
  // FP8: the weight scale of 128-K block j is s_w[row / 128, j]; FP4: the
  // scale of 32-K slice c is s_w[row, c].
  Value scaleRow = fmt == WeightFormat::FP8 ? k.divui(row, k.idx(128)) : row;
  return blockScaledDot(
      k.b, fmt, qa, sa, K, 128,
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
  FailureOr<bool> quantize = quantizesActivations(fn);
  if (failed(quantize))
    return failure();

  Value x2 = k.collapse2D(x, 1), out2 = k.collapse2D(out, 1);
  Value rw2 = routed ? k.collapse2D(rw, 1) : Value();
  Value idx2 = routed ? k.collapse2D(idx, 1) : Value();
  auto w1t = cast<MemRefType>(w1.getType());
  Value d = k.dim(x2, 1), inter = k.dim(w1, w1t.getRank() - 2);
  Value act = k.scratchF32(d), hbuf = k.scratchF32(inter);
  Value qa, sa, qh, sh;
  if (quantised) {
    qa = k.scratchF32(d);
    sa = k.scratchF32(k.ceilDivui(d, 128));
    qh = k.scratchF32(inter);
    sh = k.scratchF32(k.ceilDivui(inter, 128));
  }
  Type outElt = cast<MemRefType>(out.getType()).getElementType();
  Value lim = limit ? k.f32(*limit) : Value();
  Value negLim = limit ? k.f32(-*limit) : Value();

  // One expert (e null: the shared weights) on the activation in act/qa/sa;
  // emit(c, y) receives each bf16 output value y_e[c] as f32.
  auto expert = [&](KernelBody &k, Value e, Value r,
                    function_ref<void(KernelBody &, Value, Value)> emit) {
    loop(k, k.idx(0), inter, [&](KernelBody &k, Value i) {
      Value a = k.roundBF16(linearRow(k, fmt, act, qa, sa, w1, s1, e, i, d));
      Value bv = k.roundBF16(linearRow(k, fmt, act, qa, sa, w3, s3, e, i, d));
      if (limit) {
        bv = k.minf(k.maxf(bv, negLim), lim);
        a = k.minf(a, lim);
      }
      Value h = k.mulf(silu(k, a), bv);
      if (r)
        h = k.mulf(r, h);
      k.store(k.roundBF16(h), hbuf, {i});
    });
    if (quantised)
      quantizeActFP8(
          k.b,
          [&](ImplicitLocOpBuilder &jb, Value kk) {
            return KernelBody{jb}.load(hbuf, {kk});
          },
          inter, 128, qh, sh, *quantize);
    loop(k, k.idx(0), d, [&](KernelBody &k, Value c) {
      Value y =
          k.roundBF16(linearRow(k, fmt, hbuf, qh, sh, w2, s2, e, c, inter));
      emit(k, c, y);
    });
  };

  loop(k, k.idx(0), k.dim(x2, 0), [&](KernelBody &k, Value t) {
    loop(k, k.idx(0), d, [&](KernelBody &k, Value c) {
      k.store(k.loadF(x2, {t, c}), act, {c});
    });
    if (quantised)
      quantizeActFP8(
          k.b,
          [&](ImplicitLocOpBuilder &jb, Value kk) {
            return KernelBody{jb}.load(act, {kk});
          },
          d, 128, qa, sa, *quantize);
    if (!routed) {
      expert(k, Value(), Value(), [&](KernelBody &k, Value c, Value y) {
        k.store(k.fromF32(y, outElt), out2, {t, c});
      });
      return;
    }
    loop(k, k.idx(0), d, [&](KernelBody &k, Value c) {
      k.store(k.f32(0.0), out2, {t, c});
    });
    loop(k, k.idx(0), k.dim(rw2, 1), [&](KernelBody &k, Value j) {
      Value e = loadIndex(k, idx2, {t, j});
      Value r = k.load(rw2, {t, j});
      // result[t] = sum_j fp32(y_e), in slot order.
      expert(k, e, r, [&](KernelBody &k, Value c, Value y) {
        k.store(k.addf(k.load(out2, {t, c}), y), out2, {t, c});
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
