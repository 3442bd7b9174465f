//===- CPUKernelsAttention.cpp - CPU kernels: Attention ------------------===//
//
// v4.csa.indexer_scores, v4.attn.sparse (V4-SPEC 5.5, 5.6); the other
// attention ops have target-neutral bodies (lowering/V4ToLinalg).
//
// Every kernel is scf loops over memref loads/stores (sparse attention's
// rows also as vectors); fp32 inside, rounded to bf16 exactly at the spec's
// rounding points.
//
//===----------------------------------------------------------------------===//
#include "lowering/KernelBuilders/CPUKernelBody.h"

#include "dialects/V4/V4Numerics.h"
#include "lowering/Dispatch/DispatchFormation.h"
#include "lowering/KernelBuilders/Transpose8x8.h"

#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/TypeSwitch.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

using namespace mlir;

namespace mlir::v4::cpu {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

/// Start position of sequence `b` as an index.
Value startPosAt(KernelBody &e, Value startPos, Value b) {
  return e.toIndex(e.load(startPos, {b}));
}

/// The vector<lanes x f32> of `m`'s elements at `ix` (the last index the
/// first lane), widened from the element type (exact).
Value loadF32Vector(KernelBody &e, Value m, ValueRange ix, int64_t lanes) {
  Type element = cast<MemRefType>(m.getType()).getElementType();
  Value v =
      vector::LoadOp::create(e.b, VectorType::get({lanes}, element), m, ix);
  if (element.isF32())
    return v;
  return arith::ExtFOp::create(e.b, VectorType::get({lanes}, e.b.getF32Type()),
                               v);
}

/// reduce over [0, n), n static, with the body unrolled by 4 or 2 where n
/// allows: the same operations in the same order, fewer loop branches.
SmallVector<Value> reduceUnrolled(KernelBody &e, int64_t n, ValueRange init,
                                  AccFn body) {
  int64_t unroll = n % 4 == 0 ? 4 : n % 2 == 0 ? 2 : 1;
  return reduce(
      e, e.idx(0), e.idx(n / unroll), init,
      [&](KernelBody &e, Value u, ValueRange acc) -> SmallVector<Value> {
        SmallVector<Value> next(acc.begin(), acc.end());
        Value i0 = e.muli(u, e.idx(unroll));
        for (int64_t i = 0; i < unroll; ++i)
          next = body(e, i == 0 ? i0 : e.addi(i0, e.idx(i)), next);
        return next;
      });
}

//===----------------------------------------------------------------------===//
// v4.csa.indexer_scores (V4-SPEC 5.5 steps 3-5)
//===----------------------------------------------------------------------===//

/// Query tokens per block of the indexer; heads per block of attention.
constexpr int64_t kIndexerTokenTile = 4;
constexpr int64_t kHeadTile = 8;
/// Keys whose scores and softmax weights attention computes as one vector.
constexpr int64_t kWeightLanes = 16;
/// Independent score vectors attention computes together (the fp32 add's
/// latency in cycles, about: each is a chain of additions).
constexpr int64_t kScoreChains = 4;

LogicalResult buildIndexerScores(CSAIndexerScoresOp op, func::FuncOp fn) {
  // Blocks of kIndexerTokenTile query tokens.
  setLaunchGrid(fn, {1, 0}, {1, kIndexerTokenTile});
  setFinestLaunchGrid(fn, {1, 0}, {1, 1});
  auto b = bodyBuilder(op, fn);
  KernelBody e{b};
  Value q = fn.getArgument(0), w = fn.getArgument(1), keys = fn.getArgument(2),
        startPos = fn.getArgument(3), out = fn.getArgument(4);
  auto qType = cast<MemRefType>(q.getType());
  int64_t HI = qType.getDimSize(2);
  Value H = e.dim(q, 2), DI = e.dim(q, 3), N = e.dim(out, 2);
  int64_t DIs = qType.getDimSize(3);
  if (ShapedType::isDynamic(DIs))
    DIs = cast<KVCacheType>(op.getKeys().getType()).getDim();
  // index_head_dim^-1/2 * index_n_heads^-1/2, formed in double as the
  // reference's Python scalars, then applied in fp32.
  float cst = static_cast<float>(1.0 / std::sqrt(double(DIs)) *
                                 (1.0 / std::sqrt(double(HI))));
  Value scale = e.f32(cst);
  int64_t ratio = cast<KVCacheType>(op.getKeys().getType()).getRatio();
  auto [t0, t1] =
      blockRange(e, e.dim(out, 1), launchArg(fn, 1), launchArg(fn, 4));
  loop(e, e.idx(0), e.dim(out, 0), [&](KernelBody &e, Value bi) {
    Value sp = startPosAt(e, startPos, bi);
    loop(e, t0, t1, [&](KernelBody &e, Value t) {
      Value p = e.addi(sp, t);
      Value vis = e.minsi(N, e.divui(e.addi(p, e.idx(1)), e.idx(ratio)));
      loop(e, e.idx(0), vis, [&](KernelBody &e, Value ent) {
        Value sum = reduce(
            e, e.idx(0), H, {e.f32(0.0)},
            [&](KernelBody &e, Value h, ValueRange acc) -> SmallVector<Value> {
              Value dot = reduce(e, e.idx(0), DI, {e.f32(0.0)},
                                 [&](KernelBody &e, Value i,
                                     ValueRange a) -> SmallVector<Value> {
                                   Value prod =
                                       e.mulf(e.loadF(q, {bi, t, h, i}),
                                              e.loadF(keys, {bi, ent, i}));
                                   return {e.addf(a[0], prod)};
                                 })[0];
              Value relu = e.maxf(e.roundBF16(dot), e.f32(0.0));
              Value wh = e.roundBF16(e.mulf(e.loadF(w, {bi, t, h}), scale));
              return {e.addf(acc[0], e.roundBF16(e.mulf(wh, relu)))};
            })[0];
        e.storeF(e.roundBF16(sum), out, {bi, t, ent});
      });
      loop(e, vis, N, [&](KernelBody &e, Value ent) {
        e.storeF(e.f32(-kInf), out, {bi, t, ent});
      });
    });
  });
  func::ReturnOp::create(b);
  return success();
}

//===----------------------------------------------------------------------===//
// v4.attn.sparse (V4-SPEC 5.6)
//===----------------------------------------------------------------------===//

// The list of query (b, t) at p is walked in the op's documented order:
// window entries first (positions max(0, p-W+1) ... oldest first, L_w of
// them), then the compressed entries (HCA: ids 0 ... L_c-1; CSA: the
// indexer's ids in their given order). Each 64-entry tile is gathered once
// into fp32 scratch (bf16 values, exact), in rows and transposed, then every
// head updates its online softmax state (m, l, acc) from it.
//
// Every sum keeps the reference's order in both sum orders: a score's dot
// product is summed in ascending d with one key per vector lane (the
// transposed tile's columns), the weights' sum and acc in ascending j. A
// reassociated dot product moves a score by an ulp, and with it a weight's
// bf16 rounding (the T1 config with checkpoint seed 3 moved by 5.4e-3 per
// logit row that way); keys in lanes need no reassociation to run 16 dot
// products per vector.
//
// Where a product is exact in fp32 (both factors of at most 12 significant
// bits: bf16 or FP8 values), its multiply and add are marked contractible:
// an FMA then rounds once, where the reference rounds the product (exactly)
// and then the sum, the same value. The scores' products are bf16 q times
// bf16 keys; acc's terms bf16(p_j) times bf16 values, in production numerics
// only (fp32 numerics drops the weights' bf16 rounding). The one exception
// is a product under 2^-126, whose rounding to the subnormal grid the FMA
// skips.
LogicalResult buildSparseAttention(AttnSparseOp op, func::FuncOp fn) {
  // Blocks of heads x single query tokens: every (token, head) is
  // independent; a block gathers the tiles its heads read.
  int64_t heads = cast<RankedTensorType>(op.getQ().getType()).getDimSize(2);
  int64_t headBlocks =
      ShapedType::isDynamic(heads) ? 1 : (heads + kHeadTile - 1) / kHeadTile;
  setLaunchGrid(fn, {headBlocks, 0}, {1, 1});
  setFinestLaunchGrid(fn, {ShapedType::isDynamic(heads) ? 1 : heads, 0},
                      {1, 1});
  // The attention output's bf16 roundings sit on the weights' bf16
  // roundings, which any reassociated sum flips (tiny models' logits moved
  // by up to 0.14 per row that way): the fast order leaves the body as built.
  fn->setAttr(kKeepSumOrderAttrName, UnitAttr::get(fn.getContext()));
  FailureOr<ModuleNumerics> modes = getModuleNumerics(fn);
  if (failed(modes))
    return failure();
  auto b = bodyBuilder(op, fn);
  KernelBody e{b};
  bool hca = op.isHCA(), csa = op.isCSA();
  unsigned a = 0;
  Value q = fn.getArgument(a++), kv = fn.getArgument(a++),
        ring = fn.getArgument(a++), sink = fn.getArgument(a++),
        startPos = fn.getArgument(a++);
  Value cache = op.getCache() ? fn.getArgument(a++) : Value();
  Value topk = op.getTopkIndices() ? fn.getArgument(a++) : Value();
  Value out = fn.getArgument(a);
  auto narrow = [](Value m) {
    auto t =
        dyn_cast<FloatType>(cast<MemRefType>(m.getType()).getElementType());
    return t && llvm::APFloat::semanticsPrecision(t.getFloatSemantics()) <= 12;
  };
  bool narrowRows = narrow(kv) && narrow(ring) && (!cache || narrow(cache));
  auto exact = arith::FastMathFlags::contract;
  auto none = arith::FastMathFlags::none;
  auto scoreFlags = narrowRows && narrow(q) ? exact : none;
  auto termFlags =
      narrowRows && modes->numerics == ::v4::NumericsMode::Production ? exact
                                                                      : none;
  int64_t W = op.getWindow();
  int64_t D = op.getRing().getType().getDim();
  int64_t ratio =
      cache ? cast<KVCacheType>(op.getCache().getType()).getRatio() : 1;
  constexpr int64_t kTile = 64;
  float scale = static_cast<float>(op.getEffectiveScale());
  using P = arith::CmpIPredicate;
  using F = arith::CmpFPredicate;

  Type f32 = e.b.getF32Type();
  Value H = e.dim(q, 2), T = e.dim(q, 1);
  Value tile = e.stackBuffer({kTile, D}, f32);
  // Its transpose: the scores' keys in vector lanes.
  Value tileT = e.stackBuffer({D, kTile}, f32);
  // The tile's valid rows so far (they are gathered to its front).
  Value validRows = e.stackBuffer({1}, b.getIndexType());
  // Every head's scores of the tile, and its query in f32 (bf16 values,
  // exact).
  auto headRows = [&](int64_t n) {
    return memref::AllocaOp::create(
        b, MemRefType::get({ShapedType::kDynamic, n}, f32), ValueRange{H});
  };
  Value sc = headRows(kTile), qf = headRows(D);
  // The tile's softmax weights and their bf16 roundings.
  Value pw = e.stackBuffer({kTile}, f32), pbw = e.stackBuffer({kTile}, f32);
  Value mArr = e.scratchF32(H), lArr = e.scratchF32(H);
  Value acc = memref::AllocaOp::create(
      b, MemRefType::get({ShapedType::kDynamic, D}, f32), ValueRange{H});
  Value Dv = e.idx(D), zero = e.idx(0), one = e.idx(1);
  auto [h0, h1] = blockRange(e, H, launchArg(fn, 0), launchArg(fn, 3));
  auto [t0, t1] = blockRange(e, T, launchArg(fn, 1), launchArg(fn, 4));
  Value ninf = e.f32(-kInf), fzero = e.f32(0.0);
  // Rows of D as dVecs vectors of dLanes; acc in blocks of accVecs of them.
  int64_t dLanes = 16;
  while (D % dLanes != 0)
    dLanes /= 2;
  int64_t dVecs = D / dLanes;
  int64_t accVecs = dVecs % 4 == 0 ? 4 : dVecs % 2 == 0 ? 2 : 1;
  auto dVecType = VectorType::get({dLanes}, f32);
  auto wVecType = VectorType::get({kWeightLanes}, f32);
  Value ninfW = vector::BroadcastOp::create(e.b, wVecType, ninf);
  Value zeroW = e.constantLike(ninfW, fzero);
  Value zeroD = vector::BroadcastOp::create(e.b, dVecType, fzero);
  // The tile starts as zeros: its rows past the valid ones up to the next
  // multiple of kWeightLanes, which the transpose and the scores read (and
  // whose scores are then set to -inf), hold zeros or an earlier tile's
  // values, never uninitialised memory.
  loop(e, zero, e.idx(kTile), [&](KernelBody &e, Value j) {
    for (int64_t v = 0; v < dVecs; ++v)
      vector::StoreOp::create(e.b, zeroD, tile,
                              ValueRange{j, e.idx(v * dLanes)});
  });

  loop(e, zero, e.dim(q, 0), [&](KernelBody &e, Value bi) {
    Value sp = startPosAt(e, startPos, bi);
    Value Lw =
        e.select(e.cmpi(P::sgt, sp, zero), e.idx(W), e.minsi(T, e.idx(W)));
    Value Lc = zero;
    if (hca)
      Lc = e.divui(e.addi(sp, T), e.idx(ratio));
    if (csa)
      Lc = e.dim(topk, 2);
    Value L = e.addi(Lw, Lc);
    Value nTiles = e.divui(e.addi(L, e.idx(kTile - 1)), e.idx(kTile));
    Value capacity = cache ? e.dim(cache, 1) : zero;
    loop(e, t0, t1, [&](KernelBody &e, Value t) {
      Value p = e.addi(sp, t);
      Value np = e.divui(e.addi(p, one), e.idx(ratio));
      // q0 = max(0, p - W + 1), in signed index arithmetic.
      Value q0 = e.maxsi(zero, e.subi(e.addi(p, one), e.idx(W)));
      loop(e, h0, h1, [&](KernelBody &e, Value h) {
        e.store(ninf, mArr, {h});
        e.store(fzero, lArr, {h});
        for (int64_t v = 0; v < dVecs; ++v) {
          vector::StoreOp::create(e.b, zeroD, acc,
                                  ValueRange{h, e.idx(v * dLanes)});
          vector::StoreOp::create(
              e.b, loadF32Vector(e, q, {bi, t, h, e.idx(v * dLanes)}, dLanes),
              qf, ValueRange{h, e.idx(v * dLanes)});
        }
      });
      loop(e, zero, nTiles, [&](KernelBody &e, Value ti) {
        Value base = e.muli(ti, e.idx(kTile));
        Value cnt = e.minsi(e.idx(kTile), e.subi(L, base));
        // Gather the tile's valid rows to its front, in order. An invalid
        // entry's score would be -inf and its weight 0: it changes no max
        // and no sum, so leaving it out gives the same values.
        e.store(zero, validRows, {zero});
        loop(e, zero, cnt, [&](KernelBody &e, Value j) {
          Value ent = e.addi(base, j);
          auto copyRow = [&](KernelBody &e, Value src, Value row) {
            Value at = e.load(validRows, {zero});
            for (int64_t v = 0; v < dVecs; ++v)
              vector::StoreOp::create(
                  e.b,
                  loadF32Vector(e, src, {bi, row, e.idx(v * dLanes)}, dLanes),
                  tile, ValueRange{at, e.idx(v * dLanes)});
            e.store(e.addi(at, one), validRows, {zero});
          };
          auto window = [&](KernelBody &e) {
            Value pos = e.addi(q0, ent);
            Value ok = e.cmpi(P::sle, pos, p);
            ifThen(e, ok, [&](KernelBody &e) {
              ifElse(
                  e, e.cmpi(P::sge, pos, sp),
                  [&](KernelBody &e) { copyRow(e, kv, e.subi(pos, sp)); },
                  [&](KernelBody &e) {
                    copyRow(e, ring, e.remui(pos, e.idx(W)));
                  });
            });
          };
          if (!cache) {
            window(e);
            return;
          }
          ifElse(e, e.cmpi(P::slt, ent, Lw), window, [&](KernelBody &e) {
            Value i = e.subi(ent, Lw);
            Value id = csa ? e.toIndex(e.load(topk, {bi, t, i})) : i;
            Value ok = e.andi(
                e.cmpi(P::sge, id, zero),
                e.andi(e.cmpi(P::slt, id, np), e.cmpi(P::slt, id, capacity)));
            ifThen(e, ok, [&](KernelBody &e) { copyRow(e, cache, id); });
          });
        });
        // Online softmax update of every head over the nv valid rows. A
        // tile without any changes nothing (its update would scale by
        // exp(m - m) = 1, or add 0 to a state at m = -inf): it is skipped.
        Value nv = e.load(validRows, {zero});
        ifThen(e, e.cmpi(P::ugt, nv, zero), [&](KernelBody &e) {
          // Scores in whole vectors of kWeightLanes: the entries from nv on
          // are set to -inf (they change no max and weigh 0).
          Value chunks = e.ceilDivui(nv, kWeightLanes);
          Value lanesEnd = e.muli(chunks, e.idx(kWeightLanes));
          // The transpose of the chunks' rows, in dLanes x dLanes blocks.
          loop(e, zero, e.divui(lanesEnd, e.idx(dLanes)),
               [&](KernelBody &e, Value kb) {
                 Value j0 = e.muli(kb, e.idx(dLanes));
                 for (int64_t v = 0; v < dVecs; ++v) {
                   SmallVector<Value> rows;
                   for (int64_t i = 0; i < dLanes; ++i)
                     rows.push_back(vector::LoadOp::create(
                         e.b, dVecType, tile,
                         ValueRange{e.addi(j0, e.idx(i)), e.idx(v * dLanes)}));
                   SmallVector<Value> cols = transposeSquare(e.b, rows);
                   for (int64_t c = 0; c < dLanes; ++c)
                     vector::StoreOp::create(
                         e.b, cols[c], tileT,
                         ValueRange{e.idx(v * dLanes + c), j0});
                 }
               });
          // The scores s_j of heads [hA, hA + G), kWeightLanes keys per vector
          // over the tile's first k chunks: each lane sums its key's products
          // from 0 in ascending d, as the reference. The k x G chains (up to
          // kScoreChains) hide the additions' latency; the scores from nv on
          // are set to -inf below.
          auto scores = [&](KernelBody &e, Value hA, int64_t G, int64_t k) {
            SmallVector<Value> hs;
            for (int64_t g = 0; g < G; ++g)
              hs.push_back(g == 0 ? hA : e.addi(hA, e.idx(g)));
            SmallVector<Value> dots = reduceUnrolled(
                e, D, SmallVector<Value>(G * k, zeroW),
                [&](KernelBody &e, Value d,
                    ValueRange s) -> SmallVector<Value> {
                  SmallVector<Value> keys, next;
                  for (int64_t c = 0; c < k; ++c)
                    keys.push_back(vector::LoadOp::create(
                        e.b, wVecType, tileT,
                        ValueRange{d, e.idx(c * kWeightLanes)}));
                  for (int64_t g = 0; g < G; ++g) {
                    Value qd = e.constantLike(zeroW, e.load(qf, {hs[g], d}));
                    for (int64_t c = 0; c < k; ++c)
                      next.push_back(arith::AddFOp::create(
                          e.b, s[g * k + c],
                          arith::MulFOp::create(e.b, qd, keys[c], scoreFlags),
                          scoreFlags));
                  }
                  return next;
                });
            Value scaleW = e.constantLike(zeroW, e.f32(scale));
            for (int64_t g = 0; g < G; ++g)
              for (int64_t c = 0; c < k; ++c)
                vector::StoreOp::create(
                    e.b, e.mulf(dots[g * k + c], scaleW), sc,
                    ValueRange{hs[g], e.idx(c * kWeightLanes)});
          };
          // k chunks: heads in groups of kScoreChains / k (then one at a
          // time).
          auto scoresOfBlock = [&](KernelBody &e, int64_t k) {
            int64_t G = std::max<int64_t>(1, kScoreChains / k);
            Value groups = e.divui(e.subi(h1, h0), e.idx(G));
            loop(e, zero, groups, [&](KernelBody &e, Value g) {
              scores(e, e.addi(h0, e.muli(g, e.idx(G))), G, k);
            });
            loop(e, e.addi(h0, e.muli(groups, e.idx(G))), h1,
                 [&](KernelBody &e, Value h) { scores(e, h, 1, k); });
          };
          std::function<void(KernelBody &, int64_t)> byChunks =
              [&](KernelBody &e, int64_t k) {
                ifElse(
                    e, e.cmpi(P::eq, chunks, e.idx(k)),
                    [&](KernelBody &e) { scoresOfBlock(e, k); },
                    [&](KernelBody &e) {
                      if (k > 1)
                        byChunks(e, k - 1);
                    });
              };
          byChunks(e, kTile / kWeightLanes);
          loop(e, h0, h1, [&](KernelBody &e, Value h) {
            Value m = e.load(mArr, {h});
            loop(e, nv, lanesEnd, [&](KernelBody &e, Value j) {
              e.store(ninf, sc, {h, j});
            });
            // m_t: the max of m and the scores, lane-wise over the chunks,
            // then across the lanes (a max of the same values in any order is
            // the same value).
            Value laneMax =
                reduce(e, zero, chunks, {ninfW},
                       [&](KernelBody &e, Value c,
                           ValueRange mx) -> SmallVector<Value> {
                         Value s = vector::LoadOp::create(
                             e.b, wVecType, sc,
                             ValueRange{h, e.muli(c, e.idx(kWeightLanes))});
                         return {e.maxf(mx[0], s)};
                       })[0];
            Value mt =
                e.maxf(m, vector::ReductionOp::create(
                              e.b, vector::CombiningKind::MAXIMUMF, laneMax));
            Value mtInf = e.cmpf(F::OEQ, mt, ninf);
            Value alpha = e.select(mtInf, fzero, e.exp(e.subf(m, mt)));
            // The weights p_j = exp(s_j - m_t) (0 for s_j = -inf) and
            // bf16(p_j), kWeightLanes keys at a time: the same operations on
            // every lane (the vector exp is the scalar one's arithmetic,
            // ExpandExpF), so the same values as one key at a time.
            loop(e, zero, chunks, [&](KernelBody &e, Value c) {
              Value j = e.muli(c, e.idx(kWeightLanes));
              Value s =
                  vector::LoadOp::create(e.b, wVecType, sc, ValueRange{h, j});
              Value pj =
                  e.select(e.cmpf(F::OEQ, s, ninfW), e.constantLike(s, fzero),
                           e.exp(e.subf(s, e.constantLike(s, mt))));
              vector::StoreOp::create(e.b, pj, pw, j);
              vector::StoreOp::create(e.b, e.roundBF16(pj), pbw, j);
            });
            // Their running sum in ascending j.
            Value psum = reduce(e, zero, nv, {e.f32(0.0)},
                                [&](KernelBody &e, Value j,
                                    ValueRange ps) -> SmallVector<Value> {
                                  return {e.addf(ps[0], e.load(pw, {j}))};
                                })[0];
            // acc = acc * alpha + bf16(p_j) v_j, ascending j, in blocks of
            // accVecs vectors of d held in registers across the keys: each
            // element gets the same operations in the same order as with the
            // scaling and every key's term stored in turn.
            loop(e, zero, e.idx(dVecs / accVecs),
                 [&](KernelBody &e, Value blk) {
                   Value d0 = e.muli(blk, e.idx(accVecs * dLanes));
                   SmallVector<Value> at, init;
                   for (int64_t r = 0; r < accVecs; ++r) {
                     at.push_back(r == 0 ? d0 : e.addi(d0, e.idx(r * dLanes)));
                     Value a = vector::LoadOp::create(e.b, dVecType, acc,
                                                      ValueRange{h, at[r]});
                     init.push_back(e.mulf(a, e.constantLike(a, alpha)));
                   }
                   SmallVector<Value> sums = reduce(
                       e, zero, nv, init,
                       [&](KernelBody &e, Value j,
                           ValueRange a) -> SmallVector<Value> {
                         Value pb = e.load(pbw, {j});
                         SmallVector<Value> next;
                         for (int64_t r = 0; r < accVecs; ++r) {
                           Value v = vector::LoadOp::create(
                               e.b, dVecType, tile, ValueRange{j, at[r]});
                           next.push_back(arith::AddFOp::create(
                               e.b, a[r],
                               arith::MulFOp::create(e.b, e.constantLike(v, pb),
                                                     v, termFlags),
                               termFlags));
                         }
                         return next;
                       });
                   for (int64_t r = 0; r < accVecs; ++r)
                     vector::StoreOp::create(e.b, sums[r], acc,
                                             ValueRange{h, at[r]});
                 });
            e.store(e.addf(e.mulf(e.load(lArr, {h}), alpha), psum), lArr, {h});
            e.store(mt, mArr, {h});
          });
        });
      });
      // The sink, once, relative to the final max; bf16 out.
      loop(e, h0, h1, [&](KernelBody &e, Value h) {
        Value m = e.load(mArr, {h});
        Value l =
            e.addf(e.load(lArr, {h}), e.exp(e.subf(e.load(sink, {h}), m)));
        loop(e, zero, Dv, [&](KernelBody &e, Value d) {
          e.storeF(e.divf(e.load(acc, {h, d}), l), out, {bi, t, h, d});
        });
      });
    });
  });
  func::ReturnOp::create(b);
  return success();
}

} // namespace

std::optional<LogicalResult> buildAttentionKernel(Operation *op,
                                                  func::FuncOp fn) {
  return llvm::TypeSwitch<Operation *, std::optional<LogicalResult>>(op)
      .Case<CSAIndexerScoresOp>(
          [&](auto o) { return buildIndexerScores(o, fn); })
      .Case<AttnSparseOp>([&](auto o) { return buildSparseAttention(o, fn); })
      .Default([](Operation *) { return std::nullopt; });
}

} // namespace mlir::v4::cpu
