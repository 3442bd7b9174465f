//===- CPUKernelsCore.cpp - CPU kernels of the core family ----------------===//
//
// v4.embedding, v4.rms_norm, v4.rope, v4.linear, v4.grouped_linear,
// v4.fake_quant, v4.hadamard (V4-SPEC 2, 3, 5.1, 5.7).
//
// FP8 (e4m3fn), FP4 (e2m1) and e8m0 codes arrive as raw i8 (the kernel ABI)
// and are decoded by integer bit manipulation. Rounding onto the e4m3 / e2m1
// grids is done exactly: with q the grid spacing of the value's binade (a
// power of two), roundeven(y / q) * q is the round-to-nearest-even grid value
// (both scalings are exact in fp32).
//
//===----------------------------------------------------------------------===//
#include "lowering/KernelBuilders/CPUKernelBody.h"

#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

using namespace mlir;

namespace mlir::v4::cpu {
namespace {

//===----------------------------------------------------------------------===//
// Shared helpers: views, FP8/FP4/E8M0 numerics (loops: CPUKernelBody.h)
//===----------------------------------------------------------------------===//

/// Kernel-body helpers beyond KernelBody: integer constants, bit casts and
/// the low-precision formats.
struct Num : KernelBody {
  Value i32(int64_t v) {
    return arith::ConstantOp::create(b, b.getI32IntegerAttr(v));
  }
  Value add(Value x, Value y) { return arith::AddFOp::create(b, x, y); }
  Value sub(Value x, Value y) { return arith::SubFOp::create(b, x, y); }
  Value mul(Value x, Value y) { return arith::MulFOp::create(b, x, y); }
  Value addi(Value x, Value y) { return arith::AddIOp::create(b, x, y); }
  Value subi(Value x, Value y) { return arith::SubIOp::create(b, x, y); }
  Value muli(Value x, Value y) { return arith::MulIOp::create(b, x, y); }
  Value andi(Value x, int64_t m) { return arith::AndIOp::create(b, x, i32(m)); }
  Value ori(Value x, Value y) { return arith::OrIOp::create(b, x, y); }
  Value shl(Value x, int64_t s) { return arith::ShLIOp::create(b, x, i32(s)); }
  Value shr(Value x, int64_t s) { return arith::ShRUIOp::create(b, x, i32(s)); }
  Value eqi(Value x, int64_t v) {
    return arith::CmpIOp::create(b, arith::CmpIPredicate::eq, x, i32(v));
  }
  Value select(Value c, Value x, Value y) {
    return arith::SelectOp::create(b, c, x, y);
  }
  Value minIdx(Value x, Value y) { return arith::MinUIOp::create(b, x, y); }
  Value divIdx(Value x, Value y) { return arith::DivUIOp::create(b, x, y); }
  Value load(Value m, ValueRange ix) {
    return memref::LoadOp::create(b, m, ix);
  }
  void store(Value v, Value m, ValueRange ix) {
    memref::StoreOp::create(b, v, m, ix);
  }
  Value bitsOf(Value f) {
    return arith::BitcastOp::create(b, b.getI32Type(), f);
  }
  Value floatOf(Value bits) {
    return arith::BitcastOp::create(b, b.getF32Type(), bits);
  }
  /// An i8 code zero-extended to i32.
  Value code(Value i8) { return arith::ExtUIOp::create(b, b.getI32Type(), i8); }
  /// 2^k as f32 for an i32 k in [-126, 127].
  Value pow2(Value k) { return floatOf(shl(addi(k, i32(127)), 23)); }
  /// The unbiased exponent field of an f32 (-127 for zero / subnormals).
  Value exponent(Value f) {
    return subi(andi(shr(bitsOf(f), 23), 0xFF), i32(127));
  }

  /// e8m0 code -> 2^(code - 127) (code 0 is the subnormal 2^-127, 0xFF NaN).
  Value decodeE8M0(Value i8) {
    Value c = code(i8);
    Value bits = select(eqi(c, 0), i32(0x00400000), shl(c, 23));
    return floatOf(select(eqi(c, 0xFF), i32(0x7FC00000), bits));
  }
  /// e4m3fn code -> f32 (exact; 0x7F / 0xFF are NaN).
  Value decodeE4M3(Value i8) {
    Value c = code(i8);
    Value e = andi(shr(c, 3), 0xF), m = andi(c, 7);
    Value normal = ori(shl(addi(e, i32(120)), 23), shl(m, 20));
    Value subnormal =
        bitsOf(mul(arith::UIToFPOp::create(b, b.getF32Type(), m), f32(0x1p-9)));
    Value bits = select(eqi(e, 0), subnormal, normal);
    bits = select(eqi(andi(c, 0x7F), 0x7F), i32(0x7FC00000), bits);
    return floatOf(ori(bits, shl(andi(c, 0x80), 24)));
  }
  /// e2m1 nibble (i32 in [0, 16)) -> f32: +-{0, 0.5, 1, 1.5, 2, 3, 4, 6}.
  Value decodeE2M1(Value nib) {
    Value e = andi(shr(nib, 1), 3), m = andi(nib, 1);
    Value normal = ori(shl(addi(e, i32(126)), 23), shl(m, 22));
    Value subnormal = muli(m, i32(0x3F000000)); // 0.5 or 0
    Value bits = select(eqi(e, 0), subnormal, normal);
    return floatOf(ori(bits, shl(andi(nib, 8), 28)));
  }
  /// Round-to-nearest-even of y onto a grid whose spacing in the binade
  /// [2^e, 2^(e+1)) is 2^(e - mantBits), with e >= minExp (subnormals).
  Value roundGrid(Value y, int64_t mantBits, int64_t minExp) {
    Value e = arith::MaxSIOp::create(b, exponent(math::AbsFOp::create(b, y)),
                                     i32(minExp));
    Value up = pow2(subi(i32(mantBits), e)),
          down = pow2(subi(e, i32(mantBits)));
    return mul(math::RoundEvenOp::create(b, mul(y, up)), down);
  }
  /// e4m3fn RNE of y, saturating to +-448.
  Value roundE4M3(Value y) {
    y = arith::MinimumFOp::create(
        b, arith::MaximumFOp::create(b, y, f32(-448.0)), f32(448.0));
    return roundGrid(y, 3, -6);
  }
  /// e2m1 RNE of y, saturating to +-6.
  Value roundE2M1(Value y) {
    y = arith::MinimumFOp::create(b, arith::MaximumFOp::create(b, y, f32(-6.0)),
                                  f32(6.0));
    return roundGrid(y, 1, 0);
  }
  /// The pow-2 activation scale of V4-SPEC 2.3: s = 2^ceil(log2(fp32(
  /// max(amax, floor) * fp32(1 / gridMax)))), ceil(log2) read off the bits.
  Value actScale(Value amax, float floor, float gridMax) {
    Value prod = mul(arith::MaximumFOp::create(b, amax, f32(floor)),
                     f32(1.0f / gridMax));
    Value bits = bitsOf(prod);
    Value exp = subi(andi(shr(bits, 23), 0xFF), i32(127));
    Value mantNonZero = arith::CmpIOp::create(b, arith::CmpIPredicate::ne,
                                              andi(bits, 0x7FFFFF), i32(0));
    Value k = addi(exp, arith::ExtUIOp::create(b, b.getI32Type(), mantNonZero));
    return pow2(k);
  }
};

/// Views `m` with the given dim groups (no-op when every group is one dim).
Value regroup(ImplicitLocOpBuilder &b, Value m,
              ArrayRef<ReassociationIndices> groups) {
  if (llvm::all_of(groups, [](auto &g) { return g.size() == 1; }))
    return m;
  return memref::CollapseShapeOp::create(b, m, groups);
}

/// Views [d0, ..., dn-3, G, K] as [prod(d0..dn-3), G, K] ([1, G, K] for
/// rank 2).
Value collapse3D(ImplicitLocOpBuilder &b, Value m) {
  auto type = cast<MemRefType>(m.getType());
  int64_t rank = type.getRank();
  if (rank == 2) {
    SmallVector<OpFoldResult> sizes = {
        b.getIndexAttr(1), memref::getMixedSize(b, b.getLoc(), m, 0),
        memref::getMixedSize(b, b.getLoc(), m, 1)};
    SmallVector<int64_t> shape = {1, type.getDimSize(0), type.getDimSize(1)};
    return memref::ExpandShapeOp::create(
        b, MemRefType::get(shape, type.getElementType()), m,
        ArrayRef<ReassociationIndices>{{0, 1}, {2}}, sizes);
  }
  SmallVector<ReassociationIndices> groups(3);
  for (int64_t i = 0; i < rank; ++i)
    groups[i < rank - 2 ? 0 : i - (rank - 3)].push_back(i);
  return regroup(b, m, groups);
}

/// A scratch f32 buffer of `size` elements on the stack of the kernel.
Value scratch(ImplicitLocOpBuilder &b, Value size) {
  return memref::AllocaOp::create(
      b, MemRefType::get({ShapedType::kDynamic}, b.getF32Type()),
      ValueRange{size});
}

//===----------------------------------------------------------------------===//
// v4.embedding (V4-SPEC 3 step 1)
//===----------------------------------------------------------------------===//

//===----------------------------------------------------------------------===//
// v4.rms_norm (V4-SPEC 2.1, 5.1)
//===----------------------------------------------------------------------===//

//===----------------------------------------------------------------------===//
// v4.rope (V4-SPEC 2.2)
//===----------------------------------------------------------------------===//

//===----------------------------------------------------------------------===//
// v4.linear (V4-SPEC 2.4)
//===----------------------------------------------------------------------===//

/// Quantises row `r` of x2 [M, K] (bf16) to FP8 per 1 x blk block along K
/// (V4-SPEC 2.4 step 1): qa[k] = the e4m3 value of x / s_a (as f32),
/// sa[j] = s_a of block j.
void quantizeActRow(ImplicitLocOpBuilder &b, Value x2, Value r, Value kDim,
                    int64_t blk, Value qa, Value sa) {
  Num k{{b}};
  Value blkV = k.idx(blk);
  Value nBlocks =
      k.divIdx(arith::AddIOp::create(b, kDim, k.idx(blk - 1)), blkV);
  loop(b, k.idx(0), nBlocks, [&](ImplicitLocOpBuilder &jb, Value j) {
    Num kj{{jb}};
    Value k0 = arith::MulIOp::create(jb, j, blkV);
    Value k1 = kj.minIdx(arith::AddIOp::create(jb, k0, blkV), kDim);
    Value amax = reduce(jb, k0, k1, {kj.f32(0.0)},
                        [&](ImplicitLocOpBuilder &eb, Value e,
                            ValueRange acc) -> SmallVector<Value> {
                          Num ke{{eb}};
                          Value v = ke.toF32(ke.load(x2, {r, e}));
                          return {arith::MaximumFOp::create(
                              eb, acc[0], math::AbsFOp::create(eb, v))};
                        })[0];
    Value s = kj.actScale(amax, 1e-4f, 448.0f);
    kj.store(s, sa, {j});
    loop(jb, k0, k1, [&](ImplicitLocOpBuilder &eb, Value e) {
      Num ke{{eb}};
      Value v = ke.toF32(ke.load(x2, {r, e}));
      ke.store(ke.roundE4M3(arith::DivFOp::create(eb, v, s)), qa, {e});
    });
  });
}

LogicalResult buildLinear(LinearOp op, func::FuncOp fn) {
  auto b = bodyBuilder(op, fn);
  Num k{{b}};
  bool hasScale = static_cast<bool>(op.getScale());
  Value x = fn.getArgument(0), w = fn.getArgument(1);
  Value s = hasScale ? fn.getArgument(2) : Value();
  Value y = fn.getArgument(hasScale ? 3 : 2);
  Type wElt = cast<RankedTensorType>(op.getWeight().getType()).getElementType();
  Type outElt = cast<MemRefType>(y.getType()).getElementType();
  Value x2 = k.collapse2D(x, 1), y2 = k.collapse2D(y, 1);
  Value zero = k.idx(0);
  Value rows = k.dim(x2, 0), kDim = k.dim(x2, 1), nDim = k.dim(w, 0);

  if (!isa<Float8E4M3FNType, Float4E2M1FNType>(wElt)) {
    // bf16 / f32: upcast, fp32 accumulation, one rounding.
    loop(b, zero, rows, [&](ImplicitLocOpBuilder &rb, Value r) {
      loop(rb, zero, nDim, [&](ImplicitLocOpBuilder &nb, Value n) {
        Num kn{{nb}};
        Value acc = reduce(nb, zero, kDim, {kn.f32(0.0)},
                           [&](ImplicitLocOpBuilder &eb, Value e,
                               ValueRange a) -> SmallVector<Value> {
                             Num ke{{eb}};
                             Value xv = ke.toF32(ke.load(x2, {r, e}));
                             Value wv = ke.toF32(ke.load(w, {n, e}));
                             return {ke.add(a[0], ke.mul(xv, wv))};
                           })[0];
        kn.store(kn.fromF32(acc, outElt), y2, {r, n});
      });
    });
    func::ReturnOp::create(b);
    return success();
  }

  int64_t blk = op.getBlockSize();
  bool fp4 = isa<Float4E2M1FNType>(wElt);
  Value blkV = k.idx(blk);
  Value nBlocks =
      k.divIdx(arith::AddIOp::create(b, kDim, k.idx(blk - 1)), blkV);
  Value qa = scratch(b, kDim), sa = scratch(b, nBlocks);
  loop(b, zero, rows, [&](ImplicitLocOpBuilder &rb, Value r) {
    quantizeActRow(rb, x2, r, kDim, blk, qa, sa);
    loop(rb, zero, nDim, [&](ImplicitLocOpBuilder &nb, Value n) {
      Num kn{{nb}};
      Value acc;
      if (!fp4) {
        // Per 128-K block: fp32 partial of A_fp8 . W_fp8, scaled by
        // s_a[r, j] * s_w[n / b, j].
        Value nb0 = kn.divIdx(n, blkV);
        acc = reduce(
            nb, zero, nBlocks, {kn.f32(0.0)},
            [&](ImplicitLocOpBuilder &jb, Value j,
                ValueRange a) -> SmallVector<Value> {
              Num kj{{jb}};
              Value k0 = arith::MulIOp::create(jb, j, blkV);
              Value k1 = kj.minIdx(arith::AddIOp::create(jb, k0, blkV), kDim);
              Value part =
                  reduce(jb, k0, k1, {kj.f32(0.0)},
                         [&](ImplicitLocOpBuilder &eb, Value e,
                             ValueRange p) -> SmallVector<Value> {
                           Num ke{{eb}};
                           Value wv = ke.decodeE4M3(ke.load(w, {n, e}));
                           return {ke.add(p[0], ke.mul(ke.load(qa, {e}), wv))};
                         })[0];
              Value scale =
                  kj.mul(kj.load(sa, {j}), kj.decodeE8M0(kj.load(s, {nb0, j})));
              return {kj.add(a[0], kj.mul(part, scale))};
            })[0];
      } else {
        // Per 32-K slice c: fp32 partial of A_fp8 . W_fp4, scaled by
        // s_a[r, 32c / b] * s_w[n, c]. Byte c*16 + q holds K elements
        // 32c + 2q (low nibble) and 32c + 2q + 1 (high nibble).
        Value slices = kn.divIdx(kDim, kn.idx(32));
        acc = reduce(
            nb, zero, slices, {kn.f32(0.0)},
            [&](ImplicitLocOpBuilder &cb, Value c,
                ValueRange a) -> SmallVector<Value> {
              Num kc{{cb}};
              Value byte0 = arith::MulIOp::create(cb, c, kc.idx(16));
              Value part =
                  reduce(cb, zero, kc.idx(16), {kc.f32(0.0)},
                         [&](ImplicitLocOpBuilder &eb, Value q,
                             ValueRange p) -> SmallVector<Value> {
                           Num ke{{eb}};
                           Value byteIdx = ke.addi(byte0, q);
                           Value bits = ke.code(ke.load(w, {n, byteIdx}));
                           Value e0 = ke.addi(byteIdx, byteIdx);
                           Value e1 = ke.addi(e0, ke.idx(1));
                           Value lo = ke.decodeE2M1(ke.andi(bits, 0xF));
                           Value hi = ke.decodeE2M1(ke.shr(bits, 4));
                           Value acc0 =
                               ke.add(p[0], ke.mul(ke.load(qa, {e0}), lo));
                           return {ke.add(acc0, ke.mul(ke.load(qa, {e1}), hi))};
                         })[0];
              Value aBlock =
                  kc.divIdx(arith::MulIOp::create(cb, c, kc.idx(32)), blkV);
              Value scale = kc.mul(kc.load(sa, {aBlock}),
                                   kc.decodeE8M0(kc.load(s, {n, c})));
              return {kc.add(a[0], kc.mul(part, scale))};
            })[0];
      }
      kn.store(kn.fromF32(acc, outElt), y2, {r, n});
    });
  });
  func::ReturnOp::create(b);
  return success();
}

//===----------------------------------------------------------------------===//
// v4.grouped_linear (V4-SPEC 5.7)
//===----------------------------------------------------------------------===//

LogicalResult buildGroupedLinear(GroupedLinearOp op, func::FuncOp fn) {
  auto b = bodyBuilder(op, fn);
  Num k{{b}};
  bool hasScale = static_cast<bool>(op.getScale());
  Value x = fn.getArgument(0), w = fn.getArgument(1);
  Value s = hasScale ? fn.getArgument(2) : Value();
  Value y = fn.getArgument(hasScale ? 3 : 2);
  Type outElt = cast<MemRefType>(y.getType()).getElementType();
  Value x3 = collapse3D(b, x), y3 = collapse3D(b, y);
  Value zero = k.idx(0);
  Value rows = k.dim(x3, 0), groups = k.dim(x3, 1), kDim = k.dim(x3, 2);
  Value nPer = k.dim(y3, 2);
  Value blkV = k.idx(op.getBlockSize());

  loop(b, zero, rows, [&](ImplicitLocOpBuilder &rb, Value r) {
    loop(rb, zero, groups, [&](ImplicitLocOpBuilder &gb, Value g) {
      Value row0 = arith::MulIOp::create(gb, g, nPer);
      loop(gb, zero, nPer, [&](ImplicitLocOpBuilder &nb, Value n) {
        Num kn{{nb}};
        Value wRow = kn.addi(row0, n);
        Value wRowBlk = hasScale ? kn.divIdx(wRow, blkV) : Value();
        Value acc = reduce(nb, zero, kDim, {kn.f32(0.0)},
                           [&](ImplicitLocOpBuilder &eb, Value e,
                               ValueRange a) -> SmallVector<Value> {
                             Num ke{{eb}};
                             Value xv = ke.toF32(ke.load(x3, {r, g, e}));
                             Value wv = ke.load(w, {wRow, e});
                             if (hasScale) {
                               // Dequantised as convert.py does: bf16(W8 * s).
                               Value sv = ke.decodeE8M0(
                                   ke.load(s, {wRowBlk, ke.divIdx(e, blkV)}));
                               wv = ke.roundBF16(ke.mul(ke.decodeE4M3(wv), sv));
                             } else {
                               wv = ke.toF32(wv);
                             }
                             return {ke.add(a[0], ke.mul(xv, wv))};
                           })[0];
        kn.store(kn.fromF32(acc, outElt), y3, {r, g, n});
      });
    });
  });
  func::ReturnOp::create(b);
  return success();
}

//===----------------------------------------------------------------------===//
// v4.fake_quant (V4-SPEC 2.3)
//===----------------------------------------------------------------------===//

LogicalResult buildFakeQuant(FakeQuantOp op, func::FuncOp fn) {
  auto b = bodyBuilder(op, fn);
  Num k{{b}};
  Value x = fn.getArgument(0), y = fn.getArgument(1);
  Type elt = cast<MemRefType>(x.getType()).getElementType();
  bool fp4 = op.getFormat() == QuantFormat::fp4_e2m1;
  int64_t blk = op.getBlockSize();
  Value x2 = k.collapse2D(x, 1), y2 = k.collapse2D(y, 1);
  Value zero = k.idx(0), blkV = k.idx(blk);
  Value n = k.dim(x2, 1);
  Value extent = op.getExtent() ? k.idx(*op.getExtent()) : n;
  Value nBlocks = k.divIdx(extent, blkV);

  loop(b, zero, k.dim(x2, 0), [&](ImplicitLocOpBuilder &rb, Value r) {
    loop(rb, zero, nBlocks, [&](ImplicitLocOpBuilder &jb, Value j) {
      Num kj{{jb}};
      Value k0 = arith::MulIOp::create(jb, j, blkV);
      Value k1 = kj.addi(k0, blkV);
      Value amax = reduce(jb, k0, k1, {kj.f32(0.0)},
                          [&](ImplicitLocOpBuilder &eb, Value e,
                              ValueRange acc) -> SmallVector<Value> {
                            Num ke{{eb}};
                            Value v = ke.toF32(ke.load(x2, {r, e}));
                            return {arith::MaximumFOp::create(
                                eb, acc[0], math::AbsFOp::create(eb, v))};
                          })[0];
      Value s = fp4 ? kj.actScale(amax, 6.0f * 0x1p-126f, 6.0f)
                    : kj.actScale(amax, 1e-4f, 448.0f);
      loop(jb, k0, k1, [&](ImplicitLocOpBuilder &eb, Value e) {
        Num ke{{eb}};
        Value v = arith::DivFOp::create(eb, ke.toF32(ke.load(x2, {r, e})), s);
        Value q = fp4 ? ke.roundE2M1(v) : ke.roundE4M3(v);
        // grid value * s is exact in bf16.
        ke.store(ke.fromF32(ke.mul(q, s), elt), y2, {r, e});
      });
    });
    // Elements past the extent pass through.
    loop(rb, extent, n, [&](ImplicitLocOpBuilder &eb, Value e) {
      Num ke{{eb}};
      ke.store(ke.load(x2, {r, e}), y2, {r, e});
    });
  });
  func::ReturnOp::create(b);
  return success();
}

//===----------------------------------------------------------------------===//
// v4.hadamard (V4-SPEC 2.5)
//===----------------------------------------------------------------------===//

} // namespace

std::optional<LogicalResult> buildCoreKernel(Operation *op, func::FuncOp fn) {
  return llvm::TypeSwitch<Operation *, std::optional<LogicalResult>>(op)
      .Case<LinearOp>([&](auto o) { return buildLinear(o, fn); })
      .Case<GroupedLinearOp>([&](auto o) { return buildGroupedLinear(o, fn); })
      .Case<FakeQuantOp>([&](auto o) { return buildFakeQuant(o, fn); })
      .Default([](Operation *) { return std::nullopt; });
}

} // namespace mlir::v4::cpu
