//===- CPUKernelsAttention.cpp - CPU kernels: Attention ------------------===//
//
// v4.csa.indexer_scores, v4.attn.sparse, v4.kv.compress (V4-SPEC 5.3, 5.5,
// 5.6, 9.2); the other attention ops have target-neutral bodies
// (lowering/V4ToLinalg).
//
// Every kernel is plain scf loops over memref loads/stores; fp32 inside,
// rounded to bf16 exactly at the spec's rounding points. Kernels that write
// state (ring, compressor state, caches) are correct when the result memref
// aliases the state operand (the runtime updates state in place).
//
//===----------------------------------------------------------------------===//
#include "lowering/KernelBuilders/CPUKernelBody.h"

#include "dialects/V4/V4Attrs.h"
#include "dialects/V4/V4Types.h"

#include "llvm/ADT/TypeSwitch.h"

#include <cmath>
#include <limits>

using namespace mlir;

namespace mlir::v4::cpu {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

/// Copies rank-3 `src` into `dst` (same shape) unless both are the same
/// buffer (a state result aliasing its operand).
void copy3DUnlessAliased(KernelBody &e, Value src, Value dst) {
  Value ps = memref::ExtractAlignedPointerAsIndexOp::create(e.b, src);
  Value pd = memref::ExtractAlignedPointerAsIndexOp::create(e.b, dst);
  ifThen(e, e.cmpi(arith::CmpIPredicate::ne, ps, pd), [&](KernelBody &e) {
    loop(e, e.idx(0), e.dim(src, 0), [&](KernelBody &e, Value i) {
      loop(e, e.idx(0), e.dim(src, 1), [&](KernelBody &e, Value j) {
        loop(e, e.idx(0), e.dim(src, 2), [&](KernelBody &e, Value k) {
          e.store(e.load(src, {i, j, k}), dst, {i, j, k});
        });
      });
    });
  });
}

/// Start position of sequence `b` as an index.
Value startPosAt(KernelBody &e, Value startPos, Value b) {
  return e.toIndex(e.load(startPos, {b}));
}

//===----------------------------------------------------------------------===//
// v4.csa.indexer_scores (V4-SPEC 5.5 steps 3-5)
//===----------------------------------------------------------------------===//

LogicalResult buildIndexerScores(CSAIndexerScoresOp op, func::FuncOp fn) {
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
  loop(e, e.idx(0), e.dim(out, 0), [&](KernelBody &e, Value bi) {
    Value sp = startPosAt(e, startPos, bi);
    loop(e, e.idx(0), e.dim(out, 1), [&](KernelBody &e, Value t) {
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
// into fp32 scratch (bf16 values, exact), then every head updates its online
// softmax state (m, l, acc) from it.
LogicalResult buildSparseAttention(AttnSparseOp op, func::FuncOp fn) {
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
  Value valid = e.stackBuffer({kTile}, b.getI1Type());
  Value sc = e.stackBuffer({kTile}, f32);
  Value mArr = e.scratchF32(H), lArr = e.scratchF32(H);
  Value acc = memref::AllocaOp::create(
      b, MemRefType::get({ShapedType::kDynamic, D}, f32), ValueRange{H});
  Value Dv = e.idx(D), zero = e.idx(0), one = e.idx(1);
  Value ninf = e.f32(-kInf), fzero = e.f32(0.0);

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
    loop(e, zero, T, [&](KernelBody &e, Value t) {
      Value p = e.addi(sp, t);
      Value np = e.divui(e.addi(p, one), e.idx(ratio));
      // q0 = max(0, p - W + 1), in signed index arithmetic.
      Value q0 = e.maxsi(zero, e.subi(e.addi(p, one), e.idx(W)));
      loop(e, zero, H, [&](KernelBody &e, Value h) {
        e.store(ninf, mArr, {h});
        e.store(fzero, lArr, {h});
        loop(e, zero, Dv, [&](KernelBody &e, Value d) {
          e.store(fzero, acc, {h, d});
        });
      });
      loop(e, zero, nTiles, [&](KernelBody &e, Value ti) {
        Value base = e.muli(ti, e.idx(kTile));
        Value cnt = e.minsi(e.idx(kTile), e.subi(L, base));
        // Gather the tile's rows.
        loop(e, zero, cnt, [&](KernelBody &e, Value j) {
          Value ent = e.addi(base, j);
          auto copyRow = [&](KernelBody &e, Value src, Value row) {
            loop(e, zero, Dv, [&](KernelBody &e, Value d) {
              e.store(e.loadF(src, {bi, row, d}), tile, {j, d});
            });
          };
          auto window = [&](KernelBody &e) {
            Value pos = e.addi(q0, ent);
            Value ok = e.cmpi(P::sle, pos, p);
            e.store(ok, valid, {j});
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
            e.store(ok, valid, {j});
            ifThen(e, ok, [&](KernelBody &e) { copyRow(e, cache, id); });
          });
        });
        // Online softmax update of every head.
        loop(e, zero, H, [&](KernelBody &e, Value h) {
          Value m = e.load(mArr, {h});
          Value mt = reduce(
              e, zero, cnt, {m},
              [&](KernelBody &e, Value j, ValueRange mx) -> SmallVector<Value> {
                Value dot = reduce(
                    e, zero, Dv, {e.f32(0.0)},
                    [&](KernelBody &e, Value d,
                        ValueRange s) -> SmallVector<Value> {
                      return {e.addf(s[0], e.mulf(e.loadF(q, {bi, t, h, d}),
                                                  e.load(tile, {j, d})))};
                    })[0];
                Value s = e.select(e.load(valid, {j}),
                                   e.mulf(dot, e.f32(scale)), ninf);
                e.store(s, sc, {j});
                return {e.maxf(mx[0], s)};
              })[0];
          Value mtInf = e.cmpf(F::OEQ, mt, ninf);
          Value alpha = e.select(mtInf, fzero, e.exp(e.subf(m, mt)));
          loop(e, zero, Dv, [&](KernelBody &e, Value d) {
            e.store(e.mulf(e.load(acc, {h, d}), alpha), acc, {h, d});
          });
          Value psum = reduce(
              e, zero, cnt, {e.f32(0.0)},
              [&](KernelBody &e, Value j, ValueRange ps) -> SmallVector<Value> {
                Value s = e.load(sc, {j});
                Value pj = e.select(e.cmpf(F::OEQ, s, ninf), fzero,
                                    e.exp(e.subf(s, mt)));
                ifThen(e, e.load(valid, {j}), [&](KernelBody &e) {
                  Value pb = e.roundBF16(pj);
                  loop(e, zero, Dv, [&](KernelBody &e, Value d) {
                    Value v = e.addf(e.load(acc, {h, d}),
                                     e.mulf(pb, e.load(tile, {j, d})));
                    e.store(v, acc, {h, d});
                  });
                });
                return {e.addf(ps[0], pj)};
              })[0];
          e.store(e.addf(e.mulf(e.load(lArr, {h}), alpha), psum), lArr, {h});
          e.store(mt, mArr, {h});
        });
      });
      // The sink, once, relative to the final max; bf16 out.
      loop(e, zero, H, [&](KernelBody &e, Value h) {
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

//===----------------------------------------------------------------------===//
// v4.kv.compress (V4-SPEC 5.3, 9.2)
//===----------------------------------------------------------------------===//

/// In-place fake-quant of buf[start, start + len) (bf16 values in f32) to
/// FP8 e4m3 or FP4 e2m1 with the pow-2 block scale of V4-SPEC 2.3; the
/// result is rounded to bf16.
void fakeQuantBlock(KernelBody &e, Value buf, int64_t start, int64_t len,
                    bool fp4) {
  Value lo = e.idx(start), hi = e.idx(start + len);
  Value amax =
      reduce(e, lo, hi, {e.f32(0.0)},
             [&](KernelBody &e, Value i, ValueRange a) -> SmallVector<Value> {
               return {e.maxf(a[0], e.absf(e.load(buf, {i})))};
             })[0];
  Value s = fp4 ? lowp::fp4ActScale(e.b, amax) : lowp::fp8ActScale(e.b, amax);
  loop(e, lo, hi, [&](KernelBody &e, Value i) {
    Value v = e.load(buf, {i});
    Value g =
        fp4 ? lowp::quantizeE2M1(e.b, v, s) : lowp::quantizeE4M3(e.b, v, s);
    e.store(e.roundBF16(e.mulf(g, s)), buf, {i});
  });
}

LogicalResult buildCompress(KVCompressOp op, func::FuncOp fn) {
  auto b = bodyBuilder(op, fn);
  KernelBody e{b};
  Value x = fn.getArgument(0), wkv = fn.getArgument(1),
        wgate = fn.getArgument(2), ape = fn.getArgument(3),
        norm = fn.getArgument(4), kvS = fn.getArgument(5),
        scS = fn.getArgument(6), cache = fn.getArgument(7),
        startPos = fn.getArgument(8), nkv = fn.getArgument(9),
        nsc = fn.getArgument(10), ncache = fn.getArgument(11);
  auto stateType = cast<CompressorStateType>(op.getState().getType());
  int64_t c = stateType.getDim(), r = stateType.getRatio();
  bool overlap = stateType.isOverlapping();
  int64_t width = stateType.getWidth(), off = overlap ? r : 0;
  RopeTableAttr rope = op.getRope();
  int64_t rd = rope.getRopeDim();
  SmallVector<float> freqs = rope.getFrequencies();
  bool rotate = op.getRotate();
  float eps = static_cast<float>(op.getNormEps().convertToDouble());
  using P = arith::CmpIPredicate;
  Type f32 = e.b.getF32Type();

  Value zero = e.idx(0), one = e.idx(1);
  Value entry = e.stackBuffer({c}, f32);
  Value freqBuf = e.stackBuffer({int64_t(freqs.size())}, f32);
  for (size_t i = 0; i < freqs.size(); ++i)
    e.store(e.f32(freqs[i]), freqBuf, {e.idx(i)});

  copy3DUnlessAliased(e, kvS, nkv);
  copy3DUnlessAliased(e, scS, nsc);
  copy3DUnlessAliased(e, cache, ncache);

  Value T = e.dim(x, 1), d = e.dim(x, 2), capacity = e.dim(cache, 1);
  Value rV = e.idx(r), cV = e.idx(c), widthV = e.idx(width);
  loop(e, zero, e.dim(x, 0), [&](KernelBody &e, Value bi) {
    Value sp = startPosAt(e, startPos, bi);
    loop(e, zero, T, [&](KernelBody &e, Value t) {
      Value p = e.addi(sp, t);
      Value pm = e.remui(p, rV);
      Value row = e.addi(e.idx(off), pm);
      // 1-2. k = wkv x, g = wgate x + ape[p mod r] (fp32), into the state.
      loop(e, zero, widthV, [&](KernelBody &e, Value o) {
        SmallVector<Value> kg = reduce(
            e, zero, d, {e.f32(0.0), e.f32(0.0)},
            [&](KernelBody &e, Value i, ValueRange a) -> SmallVector<Value> {
              Value xv = e.loadF(x, {bi, t, i});
              return {e.addf(a[0], e.mulf(e.loadF(wkv, {o, i}), xv)),
                      e.addf(a[1], e.mulf(e.loadF(wgate, {o, i}), xv))};
            });
        e.store(kg[0], nkv, {bi, row, o});
        e.store(e.addf(kg[1], e.loadF(ape, {pm, o})), nsc, {bi, row, o});
      });
      // 3. Block completion.
      Value done = e.cmpi(P::eq, pm, e.idx(r - 1));
      Value blk = e.divui(p, rV);
      ifThen(
          e, e.andi(done, e.cmpi(P::slt, blk, capacity)), [&](KernelBody &e) {
            // Candidates per channel: (row, column offset) pairs.
            SmallVector<std::pair<int64_t, int64_t>> cands;
            if (overlap) {
              for (int64_t j = 0; j < r; ++j)
                cands.push_back({j, 0});
              for (int64_t j = 0; j < r; ++j)
                cands.push_back({r + j, c});
            } else {
              for (int64_t j = 0; j < r; ++j)
                cands.push_back({j, 0});
            }
            loop(e, zero, cV, [&](KernelBody &e, Value ch) {
              auto at = [&](KernelBody &e, Value m,
                            std::pair<int64_t, int64_t> cand) {
                return e.load(
                    m, {bi, e.idx(cand.first),
                        cand.second ? e.addi(ch, e.idx(cand.second)) : ch});
              };
              if (cands.size() <= 8) {
                // Overlap (2r = 8): unrolled.
                Value mx = e.f32(-kInf);
                for (auto cand : cands)
                  mx = e.maxf(mx, at(e, nsc, cand));
                SmallVector<Value> ex;
                Value sum = e.f32(0.0);
                for (auto cand : cands) {
                  ex.push_back(e.exp(e.subf(at(e, nsc, cand), mx)));
                  sum = e.addf(sum, ex.back());
                }
                Value accv = e.f32(0.0);
                for (size_t j = 0; j < cands.size(); ++j)
                  accv = e.addf(
                      accv, e.mulf(at(e, nkv, cands[j]), e.divf(ex[j], sum)));
                e.store(accv, entry, {ch});
                return;
              }
              // Non-overlap: loops over the r rows (column ch).
              Value mx =
                  reduce(e, zero, rV, {e.f32(-kInf)},
                         [&](KernelBody &e, Value j,
                             ValueRange a) -> SmallVector<Value> {
                           return {e.maxf(a[0], e.load(nsc, {bi, j, ch}))};
                         })[0];
              Value sum = reduce(
                  e, zero, rV, {e.f32(0.0)},
                  [&](KernelBody &e, Value j,
                      ValueRange a) -> SmallVector<Value> {
                    return {e.addf(
                        a[0], e.exp(e.subf(e.load(nsc, {bi, j, ch}), mx)))};
                  })[0];
              Value accv = reduce(
                  e, zero, rV, {e.f32(0.0)},
                  [&](KernelBody &e, Value j,
                      ValueRange a) -> SmallVector<Value> {
                    Value w = e.divf(
                        e.exp(e.subf(e.load(nsc, {bi, j, ch}), mx)), sum);
                    return {e.addf(a[0], e.mulf(e.load(nkv, {bi, j, ch}), w))};
                  })[0];
              e.store(accv, entry, {ch});
            });
            // Post-processing: bf16, RMSNorm (fp32, bf16 out).
            Value ss = reduce(e, zero, cV, {e.f32(0.0)},
                              [&](KernelBody &e, Value ch,
                                  ValueRange a) -> SmallVector<Value> {
                                Value v = e.roundBF16(e.load(entry, {ch}));
                                e.store(v, entry, {ch});
                                return {e.addf(a[0], e.mulf(v, v))};
                              })[0];
            Value rstd =
                e.rsqrt(e.addf(e.divf(ss, e.f32(double(c))), e.f32(eps)));
            loop(e, zero, cV, [&](KernelBody &e, Value ch) {
              Value v = e.mulf(e.load(entry, {ch}), rstd);
              e.store(e.roundBF16(e.mulf(e.loadF(norm, {ch}), v)), entry, {ch});
            });
            // RoPE at b*r on the last rd dims (interleaved pairs).
            Value posF = e.uitofp(e.toI64(e.muli(blk, rV)));
            loop(e, zero, e.idx(rd / 2), [&](KernelBody &e, Value i) {
              Value th = e.mulf(posF, e.load(freqBuf, {i}));
              Value cs = e.cos(th), sn = e.sin(th);
              Value i0 = e.addi(e.idx(c - rd), e.muli(i, e.idx(2)));
              Value i1 = e.addi(i0, one);
              Value x0 = e.load(entry, {i0}), x1 = e.load(entry, {i1});
              e.store(e.roundBF16(e.subf(e.mulf(x0, cs), e.mulf(x1, sn))),
                      entry, {i0});
              e.store(e.roundBF16(e.addf(e.mulf(x0, sn), e.mulf(x1, cs))),
                      entry, {i1});
            });
            if (!rotate) {
              for (int64_t s0 = 0; s0 < c - rd; s0 += 64)
                fakeQuantBlock(e, entry, s0, std::min<int64_t>(64, c - rd - s0),
                               /*fp4=*/false);
            } else {
              // Hadamard (Sylvester order, fp32 butterflies, scale n^-1/2,
              // bf16).
              for (int64_t h = 1; h < c; h *= 2) {
                loop(e, zero, e.idx(c / 2), [&](KernelBody &e, Value i) {
                  Value j0 = e.addi(e.muli(e.divui(i, e.idx(h)), e.idx(2 * h)),
                                    e.remui(i, e.idx(h)));
                  Value j1 = e.addi(j0, e.idx(h));
                  Value va = e.load(entry, {j0}), vb = e.load(entry, {j1});
                  e.store(e.addf(va, vb), entry, {j0});
                  e.store(e.subf(va, vb), entry, {j1});
                });
              }
              Value hs = e.f32(float(1.0 / std::sqrt(double(c))));
              loop(e, zero, cV, [&](KernelBody &e, Value ch) {
                e.store(e.roundBF16(e.mulf(e.load(entry, {ch}), hs)), entry,
                        {ch});
              });
              for (int64_t s0 = 0; s0 < c; s0 += 32)
                fakeQuantBlock(e, entry, s0, 32, /*fp4=*/true);
            }
            loop(e, zero, cV, [&](KernelBody &e, Value ch) {
              e.storeF(e.load(entry, {ch}), ncache, {bi, blk, ch});
            });
          });
      // Overlap: the completed block becomes the previous block.
      if (overlap) {
        ifThen(e, done, [&](KernelBody &e) {
          loop(e, zero, rV, [&](KernelBody &e, Value j) {
            loop(e, zero, widthV, [&](KernelBody &e, Value o) {
              Value src = e.addi(j, rV);
              e.store(e.load(nkv, {bi, src, o}), nkv, {bi, j, o});
              e.store(e.load(nsc, {bi, src, o}), nsc, {bi, j, o});
            });
          });
        });
      }
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
      .Case<KVCompressOp>([&](auto o) { return buildCompress(o, fn); })
      .Default([](Operation *) { return std::nullopt; });
}

} // namespace mlir::v4::cpu
