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

/// x / (1 + exp(-x)), lane by lane for a vector.
Value silu(KernelBody &k, Value x) {
  return k.divf(x, k.addf(k.constantLike(x, k.f32(1.0)), k.exp(k.negf(x))));
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

/// Clamped SwiGLU FFN as tiled GEMMs (tileGemm): the shared expert over
/// tiles of token rows (bf16 [..., d] result), or the routed experts (the
/// per-slot outputs [..., k, d]), one block per range of experts: a block
/// gathers the (token, slot) rows routed to its expert and runs them in
/// tiles of kGemmRowTile rows, so each expert weight is read once per tile;
/// every row's numbers are those of one token alone. An expert-parallel
/// shard (`hasEpRank`) holds experts [rank * E, (rank + 1) * E); the block
/// of expert 0 writes +0 to the rows of every other expert.
LogicalResult buildFfn(Operation *op, func::FuncOp fn, bool routed, Type w1Type,
                       bool hasScales, bool hasEpRank,
                       std::optional<double> limit) {
  auto w1Tensor = cast<RankedTensorType>(w1Type);
  if (routed) {
    int64_t experts = w1Tensor.getDimSize(0);
    setLaunchGrid(fn, {ShapedType::isDynamic(experts) ? 1 : experts, 0},
                  {1, 0});
  } else {
    setLaunchGrid(fn, {1, 0}, {1, kSharedTokenTile});
    setFinestLaunchGrid(fn, {1, 0}, {1, 1});
  }
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
  Value epRank = hasEpRank ? fn.getArgument(arg++) : Value();
  Value out = fn.getArgument(arg++);
  WeightFormat fmt = lowp::getWeightFormat(w1Tensor.getElementType());
  bool quantised = fmt != WeightFormat::Plain;
  if (quantised != hasScales)
    return op->emitError("CPU kernel: weight format and scales disagree");
  FailureOr<bool> quantize = quantizesActivations(fn);
  if (failed(quantize))
    return failure();

  // Rows: token rows of x2 (shared), or (token, slot) pairs p = t * k + j,
  // the rows of the collapsed per-slot output (routed).
  Value x2 = k.collapse2D(x, 1), out2 = k.collapse2D(out, 1);
  Value rw2 = routed ? k.collapse2D(rw, 1) : Value();
  Value idx2 = routed ? k.collapse2D(idx, 1) : Value();
  Value slots = routed ? k.dim(idx2, 1) : Value();
  auto w1t = cast<MemRefType>(w1.getType());
  Value d = k.dim(x2, 1), inter = k.dim(w1, w1t.getRank() - 2);
  Type outElt = cast<MemRefType>(out.getType()).getElementType();
  Value lim = limit ? k.f32(*limit) : Value();
  Value negLim = limit ? k.f32(-*limit) : Value();
  Value zero = k.idx(0);
  // routed: the gathered rows of the current expert (rows[i] = p).
  Value rows;
  if (routed)
    rows = memref::AllocaOp::create(
        b, MemRefType::get({ShapedType::kDynamic}, b.getIndexType()),
        ValueRange{k.muli(k.dim(x2, 0), slots)});
  // The token of GEMM row r, and the row of out2 it writes.
  auto pairOf = [&](KernelBody &k, Value r) { return k.load(rows, {r}); };
  auto tokenOf = [&](KernelBody &k, Value r) {
    return routed ? k.divui(pairOf(k, r), slots) : r;
  };
  auto outRowOf = [&](KernelBody &k, Value r) {
    return routed ? pairOf(k, r) : r;
  };

  // What the closures of the GEMMs read: the expert (routed), the weights
  // of the linear being run, where the up projections land, and the first
  // GEMM row of the tile (row r's scratch row is r - tileStart).
  Value expert, w, ws, upOut, tileStart;
  auto at = [&](Value r, Value c) {
    return expert ? SmallVector<Value>{expert, r, c} : SmallVector<Value>{r, c};
  };
  auto scratchAt = [&](KernelBody &k, Value r, Value c) {
    return k.addi(k.muli(k.subi(r, tileStart), inter), c);
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
  auto scaleRefFn = [&](KernelBody &k, Value n, Value j) {
    Value row = fmt == WeightFormat::FP8 ? k.divui(n, k.idx(128)) : n;
    return std::make_pair(ws, at(row, j));
  };
  // Up projections (w1, w3): the bf16-rounded outputs in upOut.
  auto upAct = [&](KernelBody &k, Value r, Value e) {
    return k.loadF(x2, {tokenOf(k, r), e});
  };
  auto upStore = [&](KernelBody &k, Value r, Value n, Value acc) {
    k.store(k.roundBF16(acc), upOut, {scratchAt(k, r, n)});
  };
  auto weightRefFn = [&](KernelBody &, Value n, Value c) {
    return std::make_pair(w, at(n, c));
  };
  TileGemm up;
  up.format = fmt;
  if (failed(setTargetOptions(fn, up)))
    return failure();
  up.weightRef = weightRefFn;
  up.weightScaleRef = scaleRefFn;
  up.quantize = *quantize;
  up.K = d;
  up.N = inter;
  up.act = upAct;
  up.weight = weightFn;
  up.store = upStore;
  // The SwiGLU rows h of a tile, the input of w2.
  Value tileElems = k.muli(k.idx(kGemmRowTile), inter);
  Value a1 = k.scratchF32(tileElems), a3 = k.scratchF32(tileElems),
        h = k.scratchF32(tileElems);
  auto downAct = [&](KernelBody &k, Value r, Value e) {
    return k.load(h, {scratchAt(k, r, e)});
  };
  // The bf16 rounding point of w2's output; an f32 output (shared expert
  // or routed slot) is the unrounded sum (fp32 numerics drop the point
  // anyway; a tensor-parallel partial output is rounded after the ranks'
  // sum).
  bool unrounded = outElt.isF32();
  auto downStore = [&](KernelBody &k, Value r, Value n, Value acc) {
    k.store(k.fromF32(unrounded ? acc : k.roundBF16(acc), outElt), out2,
            {outRowOf(k, r), n});
  };
  TileGemm down = up;
  down.K = inter;
  down.N = d;
  down.act = downAct;
  down.store = downStore;
  TileGemmScratch upScratch = allocTileGemm(k, up);
  TileGemmScratch downScratch = allocTileGemm(k, down);

  // The FFN of GEMM rows [ra, rb) (at most kGemmRowTile).
  auto ffnTile = [&](KernelBody &k, Value ra, Value rb) {
    tileStart = ra;
    w = w1, ws = s1, upOut = a1;
    tileGemm(k, up, upScratch, ra, rb, zero, inter);
    w = w3, ws = s3, upOut = a3;
    tileGemm(k, up, upScratch, ra, rb, zero, inter);
    loop(k, ra, rb, [&](KernelBody &k, Value r) {
      // routed: h = silu(a) * b * r with the row's routing weight.
      Value gate =
          routed ? k.load(rw2, {tokenOf(k, r), k.remui(pairOf(k, r), slots)})
                 : Value();
      // Elements c .. c + lanes - 1 of the row (lanes 1: a scalar): the
      // same operations on every element, tileLanes at a time, then the
      // inter % tileLanes last ones one by one.
      auto swiglu = [&](KernelBody &k, Value c, int64_t lanes) {
        Value i = scratchAt(k, r, c);
        auto read = [&](Value m) -> Value {
          if (lanes == 1)
            return k.load(m, {i});
          return vector::LoadOp::create(
              k.b, VectorType::get({lanes}, k.b.getF32Type()), m,
              ValueRange{i});
        };
        Value a = read(a1), bv = read(a3);
        if (limit) {
          bv = k.minf(k.maxf(bv, k.constantLike(bv, negLim)),
                      k.constantLike(bv, lim));
          a = k.minf(a, k.constantLike(a, lim));
        }
        Value hv = k.mulf(silu(k, a), bv);
        if (gate)
          hv = k.mulf(k.constantLike(hv, gate), hv);
        hv = k.roundBF16(hv);
        if (lanes == 1)
          k.store(hv, h, {i});
        else
          vector::StoreOp::create(k.b, hv, h, ValueRange{i});
      };
      int64_t lanes = up.tileLanes;
      Value whole = k.muli(k.divui(inter, k.idx(lanes)), k.idx(lanes));
      scf::ForOp::create(k.b, zero, whole, k.idx(lanes), ValueRange(),
                         [&](OpBuilder &nb, Location loc, Value c, ValueRange) {
                           ImplicitLocOpBuilder ib(loc, nb);
                           KernelBody vk{ib};
                           swiglu(vk, c, lanes);
                           scf::YieldOp::create(ib);
                         });
      loop(k, whole, inter, [&](KernelBody &k, Value c) { swiglu(k, c, 1); });
    });
    w = w2, ws = s2;
    tileGemm(k, down, downScratch, ra, rb, zero, d);
  };
  // GEMM rows [r0, r1) in tiles.
  auto ffn = [&](KernelBody &k, Value r0, Value r1) {
    scf::ForOp::create(
        k.b, r0, r1, k.idx(kGemmRowTile), ValueRange(),
        [&](OpBuilder &nb, Location loc, Value ra, ValueRange) {
          ImplicitLocOpBuilder ib(loc, nb);
          KernelBody tk{ib};
          ffnTile(tk, ra, tk.minui(tk.addi(ra, tk.idx(kGemmRowTile)), r1));
          scf::YieldOp::create(ib);
        });
  };

  if (!routed) {
    auto [r0, r1] =
        blockRange(k, k.dim(x2, 0), launchArg(fn, 1), launchArg(fn, 4));
    ffn(k, r0, r1);
    func::ReturnOp::create(b);
    return success();
  }
  // This block's experts; each gathers its rows (ascending p), then runs
  // them.
  auto [e0, e1] =
      blockRange(k, k.dim(w1, 0), launchArg(fn, 0), launchArg(fn, 3));
  Value pairs = k.muli(k.dim(x2, 0), slots);
  // The global index of stack member 0.
  Value base =
      epRank ? k.muli(loadIndex(k, epRank, {zero}), k.dim(w1, 0)) : zero;
  if (epRank) {
    ifThen(k, k.cmpi(arith::CmpIPredicate::eq, e0, zero), [&](KernelBody &k) {
      Value local = k.dim(w1, 0);
      Value zeroOut = k.fromF32(k.f32(0.0), outElt);
      loop(k, zero, pairs, [&](KernelBody &k, Value p) {
        // index - base outside [0, E) (unsigned: below base wraps).
        Value g = k.subi(
            loadIndex(k, idx2, {k.divui(p, slots), k.remui(p, slots)}), base);
        ifThen(k, k.cmpi(arith::CmpIPredicate::uge, g, local),
               [&](KernelBody &k) {
                 loop(k, zero, d, [&](KernelBody &k, Value n) {
                   k.store(zeroOut, out2, {p, n});
                 });
               });
      });
    });
  }
  loop(k, e0, e1, [&](KernelBody &k, Value e) {
    Value global = k.addi(e, base);
    Value count =
        reduce(k, zero, pairs, {zero},
               [&](KernelBody &k, Value p, ValueRange n) -> SmallVector<Value> {
                 Value mine = k.cmpi(
                     arith::CmpIPredicate::eq,
                     loadIndex(k, idx2, {k.divui(p, slots), k.remui(p, slots)}),
                     global);
                 k.store(p, rows, {n[0]});
                 return {k.select(mine, k.addi(n[0], k.idx(1)), n[0])};
               })[0];
    expert = e;
    ffn(k, zero, count);
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
                        static_cast<bool>(o.getEpRank()),
                        limitOf(o.getSwigluLimit()));
      })
      .Case<MoESharedExpertOp>([&](MoESharedExpertOp o) {
        return buildFfn(o, fn, /*routed=*/false, o.getW1().getType(),
                        static_cast<bool>(o.getW1Scale()), /*hasEpRank=*/false,
                        limitOf(o.getSwigluLimit()));
      })
      .Default([](Operation *) { return std::nullopt; });
}

} // namespace mlir::v4::cpu
