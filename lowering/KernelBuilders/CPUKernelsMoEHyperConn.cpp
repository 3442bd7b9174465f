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

/// Token rows per block of the shared expert.
constexpr int64_t kSharedTokenTile = 16;

/// The shared expert on token rows [r0, r1) of x2 into out2, tiled: each
/// weight row is decoded once for the whole tile and dotted with every
/// row's activation; per output element the same operations in the same
/// order as one row at a time (linearRow).
void sharedTile(KernelBody &k, WeightFormat fmt, Value x2, Value out2, Value r0,
                Value r1, Value w1, Value w3, Value w2, Value s1, Value s3,
                Value s2, Value d, Value inter, bool quantize, Value lim,
                Value negLim, Type outElt) {
  bool quantised = fmt != WeightFormat::Plain;
  Value zero = k.idx(0);
  Value n = k.subi(r1, r0);
  auto view = [&](KernelBody &k, Value m, Value i, Value len) -> Value {
    return memref::SubViewOp::create(
        k.b, m, ArrayRef<OpFoldResult>{k.muli(i, len)},
        ArrayRef<OpFoldResult>{len},
        ArrayRef<OpFoldResult>{k.b.getIndexAttr(1)});
  };
  Value dBlocks = k.ceilDivui(d, 128), iBlocks = k.ceilDivui(inter, 128);
  auto scales = [&](Value K) {
    return fmt == WeightFormat::FP8 ? k.ceilDivui(K, 128)
                                    : k.divui(K, k.idx(32));
  };
  // Activations (as f32, or quantised), hidden rows, decoded weight rows.
  Value act = k.scratchF32(k.muli(n, d)), h = k.scratchF32(k.muli(n, inter));
  Value sa, qh, sh;
  if (quantised) {
    sa = k.scratchF32(k.muli(n, dBlocks));
    qh = k.scratchF32(k.muli(n, inter));
    sh = k.scratchF32(k.muli(n, iBlocks));
  }
  Value wd1 = k.scratchF32(d), wd3 = k.scratchF32(d), wd2 = k.scratchF32(inter);
  Value sd1, sd3, sd2;
  if (quantised) {
    sd1 = k.scratchF32(scales(d));
    sd3 = k.scratchF32(scales(d));
    sd2 = k.scratchF32(scales(inter));
  }
  auto decode = [&](KernelBody &k, Value w, Value ws, Value row, Value K,
                    Value wdec, Value sdec) {
    if (!quantised) {
      loop(k, zero, K, [&](KernelBody &k, Value e) {
        k.store(k.loadF(w, {row, e}), wdec, {e});
      });
      return;
    }
    Value scaleRow = fmt == WeightFormat::FP8 ? k.divui(row, k.idx(128)) : row;
    decodeWeightRow(
        k.b, fmt, K, 128,
        [&](ImplicitLocOpBuilder &ib, Value col) {
          return KernelBody{ib}.load(w, {row, col});
        },
        [&](ImplicitLocOpBuilder &ib, Value block) {
          return KernelBody{ib}.load(ws, {scaleRow, block});
        },
        wdec, sdec);
  };
  // linearRow on a decoded weight row: row i of the tile's activation.
  auto dot = [&](KernelBody &k, Value a, Value qa, Value saT, Value blocks,
                 Value i, Value K, Value wdec, Value sdec) -> Value {
    if (!quantised) {
      Value ai = view(k, a, i, K);
      return sumf(k, zero, K, [&](KernelBody &k, Value kk) {
        return k.mulf(k.load(ai, {kk}), k.load(wdec, {kk}));
      });
    }
    return blockScaledDotDecoded(k.b, fmt, view(k, qa, i, K),
                                 view(k, saT, i, blocks), K, 128, wdec, sdec);
  };
  // Stage the activation rows (quantised in place: qa is act).
  loop(k, r0, r1, [&](KernelBody &k, Value t) {
    Value i = k.subi(t, r0);
    Value row = view(k, act, i, d);
    loop(k, zero, d, [&](KernelBody &k, Value c) {
      k.store(k.loadF(x2, {t, c}), row, {c});
    });
    if (quantised)
      quantizeActFP8(
          k.b,
          [&](ImplicitLocOpBuilder &jb, Value kk) {
            return KernelBody{jb}.load(row, {kk});
          },
          d, 128, row, view(k, sa, i, dBlocks), quantize);
  });
  loop(k, zero, inter, [&](KernelBody &k, Value j) {
    decode(k, w1, s1, j, d, wd1, sd1);
    decode(k, w3, s3, j, d, wd3, sd3);
    loop(k, zero, n, [&](KernelBody &k, Value i) {
      Value a = k.roundBF16(dot(k, act, act, sa, dBlocks, i, d, wd1, sd1));
      Value bv = k.roundBF16(dot(k, act, act, sa, dBlocks, i, d, wd3, sd3));
      if (lim) {
        bv = k.minf(k.maxf(bv, negLim), lim);
        a = k.minf(a, lim);
      }
      k.store(k.roundBF16(k.mulf(silu(k, a), bv)), view(k, h, i, inter), {j});
    });
  });
  if (quantised)
    loop(k, zero, n, [&](KernelBody &k, Value i) {
      Value hi = view(k, h, i, inter);
      quantizeActFP8(
          k.b,
          [&](ImplicitLocOpBuilder &jb, Value kk) {
            return KernelBody{jb}.load(hi, {kk});
          },
          inter, 128, view(k, qh, i, inter), view(k, sh, i, iBlocks), quantize);
    });
  loop(k, zero, d, [&](KernelBody &k, Value c) {
    decode(k, w2, s2, c, inter, wd2, sd2);
    loop(k, zero, n, [&](KernelBody &k, Value i) {
      Value y = k.roundBF16(dot(k, h, qh, sh, iBlocks, i, inter, wd2, sd2));
      k.store(k.fromF32(y, outElt), out2, {k.addi(r0, i), c});
    });
  });
}

/// Clamped SwiGLU FFN: routed experts (sum over the k experts of each token,
/// f32 result) or the shared expert (bf16 result).
LogicalResult buildFfn(Operation *op, func::FuncOp fn, bool routed, Type w1Type,
                       bool hasScales, std::optional<double> limit) {
  // Routed: one block per token row (its k experts); shared: tiles of
  // kSharedTokenTile rows that decode each weight row once.
  setLaunchGrid(fn, {1, 0}, {1, routed ? 1 : kSharedTokenTile});
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

  auto [r0, r1] =
      blockRange(k, k.dim(x2, 0), launchArg(fn, 1), launchArg(fn, 4));
  if (!routed) {
    sharedTile(k, fmt, x2, out2, r0, r1, w1, w3, w2, s1, s3, s2, d, inter,
               *quantize, lim, negLim, outElt);
    func::ReturnOp::create(b);
    return success();
  }
  loop(k, r0, r1, [&](KernelBody &k, Value t) {
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
