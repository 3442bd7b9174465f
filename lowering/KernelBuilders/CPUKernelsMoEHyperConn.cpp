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

/// Token rows per block of the shared expert: one tile of the GEMMs.
constexpr int64_t kSharedTokenTile = kGemmRowTile;

/// Clamped SwiGLU FFN: routed experts (sum over the k experts of each token,
/// f32 result) or the shared expert (bf16 result). Both run their linears
/// as tiled GEMMs (tileGemm): the shared expert over tiles of token rows,
/// the routed experts one token row and expert at a time.
LogicalResult buildFfn(Operation *op, func::FuncOp fn, bool routed, Type w1Type,
                       bool hasScales, std::optional<double> limit) {
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
  Type outElt = cast<MemRefType>(out.getType()).getElementType();
  Value lim = limit ? k.f32(*limit) : Value();
  Value negLim = limit ? k.f32(-*limit) : Value();
  auto [r0, r1] =
      blockRange(k, k.dim(x2, 0), launchArg(fn, 1), launchArg(fn, 4));
  Value zero = k.idx(0), tileRows = k.subi(r1, r0);

  // What the closures of the GEMMs read: the expert (routed), the weights
  // of the linear being run, and where the up projections land.
  Value expert, w, ws, upOut;
  auto at = [&](Value r, Value c) {
    return expert ? SmallVector<Value>{expert, r, c} : SmallVector<Value>{r, c};
  };
  // The linears' weights: Plain as f32; FP8: the code of (n, e); FP4: the
  // byte of elements e and e + 1; scales: FP8 s_w[n / 128, j], FP4 s_w[n, j].
  auto weightFn = [&](KernelBody &k, Value n, Value e) {
    if (fmt == WeightFormat::Plain)
      return k.loadF(w, at(n, e));
    if (fmt == WeightFormat::FP4)
      return k.load(w, at(n, k.divui(e, k.idx(2))));
    return k.load(w, at(n, e));
  };
  auto scaleFn = [&](KernelBody &k, Value n, Value j) {
    Value row = fmt == WeightFormat::FP8 ? k.divui(n, k.idx(128)) : n;
    return k.load(ws, at(row, j));
  };
  // Up projections (w1, w3) of rows [r0, r1): the bf16-rounded outputs at
  // upOut[(r - r0) * inter + n].
  auto upAct = [&](KernelBody &k, Value r, Value e) {
    return k.loadF(x2, {r, e});
  };
  auto upStore = [&](KernelBody &k, Value r, Value n, Value acc) {
    k.store(k.roundBF16(acc), upOut, {k.addi(k.muli(k.subi(r, r0), inter), n)});
  };
  TileGemm up;
  up.format = fmt;
  up.quantize = *quantize;
  up.K = d;
  up.N = inter;
  up.act = upAct;
  up.weight = weightFn;
  up.weightScale = scaleFn;
  up.store = upStore;
  // The SwiGLU rows h, the input of w2.
  Value a1 = k.scratchF32(k.muli(tileRows, inter));
  Value a3 = k.scratchF32(k.muli(tileRows, inter));
  Value h = k.scratchF32(k.muli(tileRows, inter));
  auto downAct = [&](KernelBody &k, Value r, Value e) {
    return k.load(h, {k.addi(k.muli(k.subi(r, r0), inter), e)});
  };
  // Shared: the bf16 output row; routed: added to the token's sum in slot
  // order (result[t] = sum_j fp32(y_e)).
  auto downStore = [&](KernelBody &k, Value r, Value n, Value acc) {
    Value y = k.roundBF16(acc);
    if (routed)
      k.store(k.addf(k.load(out2, {r, n}), y), out2, {r, n});
    else
      k.store(k.fromF32(y, outElt), out2, {r, n});
  };
  TileGemm down = up;
  down.K = inter;
  down.N = d;
  down.act = downAct;
  down.store = downStore;
  TileGemmScratch upScratch = allocTileGemm(k, up);
  TileGemmScratch downScratch = allocTileGemm(k, down);

  // One expert on rows [ra, rb) (within the block's rows), routing weight
  // r (null: none).
  auto ffn = [&](KernelBody &k, Value ra, Value rb, Value r) {
    w = w1, ws = s1, upOut = a1;
    tileGemm(k, up, upScratch, ra, rb, zero, inter);
    w = w3, ws = s3, upOut = a3;
    tileGemm(k, up, upScratch, ra, rb, zero, inter);
    loop(k, k.muli(k.subi(ra, r0), inter), k.muli(k.subi(rb, r0), inter),
         [&](KernelBody &k, Value i) {
           Value a = k.load(a1, {i}), bv = k.load(a3, {i});
           if (limit) {
             bv = k.minf(k.maxf(bv, negLim), lim);
             a = k.minf(a, lim);
           }
           Value hv = k.mulf(silu(k, a), bv);
           if (r)
             hv = k.mulf(r, hv);
           k.store(k.roundBF16(hv), h, {i});
         });
    w = w2, ws = s2;
    tileGemm(k, down, downScratch, ra, rb, zero, d);
  };

  if (!routed) {
    ffn(k, r0, r1, Value());
    func::ReturnOp::create(b);
    return success();
  }
  loop(k, r0, r1, [&](KernelBody &k, Value t) {
    loop(k, zero, d, [&](KernelBody &k, Value c) {
      k.store(k.f32(0.0), out2, {t, c});
    });
    loop(k, zero, k.dim(rw2, 1), [&](KernelBody &k, Value j) {
      expert = loadIndex(k, idx2, {t, j});
      ffn(k, t, k.addi(t, k.idx(1)), k.load(rw2, {t, j}));
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
