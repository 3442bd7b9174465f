//===- CPUKernels.cpp - CPU kernel builders: ABI and dispatch -------------===//
#include "lowering/KernelBuilders/CPUKernels.h"
#include "lowering/KernelBuilders/CPUKernelBody.h"
#include "lowering/KernelBuilders/Transpose8x8.h"

#include "dialects/V4/V4Numerics.h"
#include "dialects/V4/V4StorageLayout.h"
#include "dialects/V4/V4Types.h"
#include "runtime/base/HostISA.h"

#include "llvm/ADT/TypeSwitch.h"

#include <limits>

using namespace mlir;

namespace mlir::v4 {

void registerCPUKernelDialects(DialectRegistry &registry) {
  registry.insert<func::FuncDialect, scf::SCFDialect, arith::ArithDialect,
                  math::MathDialect, memref::MemRefDialect,
                  vector::VectorDialect>();
}

namespace cpu {

Value KernelBody::collapse2D(Value m, int64_t innerRank) {
  auto type = cast<MemRefType>(m.getType());
  int64_t rank = type.getRank();
  if (rank == innerRank) {
    // No leading dims: view as [1, prod(all)].
    Value flat = m;
    if (rank != 1) {
      ReassociationIndices all;
      for (int64_t i = 0; i < rank; ++i)
        all.push_back(i);
      flat = memref::CollapseShapeOp::create(
          b, m, ArrayRef<ReassociationIndices>{all});
    }
    auto flatType = cast<MemRefType>(flat.getType());
    return memref::ExpandShapeOp::create(
        b, MemRefType::get({1, flatType.getDimSize(0)}, type.getElementType()),
        flat, ArrayRef<ReassociationIndices>{{0, 1}},
        ArrayRef<OpFoldResult>{b.getIndexAttr(1),
                               memref::getMixedSize(b, b.getLoc(), flat, 0)});
  }
  SmallVector<ReassociationIndices> groups(2);
  for (int64_t i = 0; i < rank; ++i)
    groups[i < rank - innerRank ? 0 : 1].push_back(i);
  return memref::CollapseShapeOp::create(b, m, groups);
}

FailureOr<bool> quantizesActivations(func::FuncOp fn) {
  FailureOr<ModuleNumerics> modes = getModuleNumerics(fn);
  if (failed(modes))
    return failure();
  return ::v4::quantizesActivations(modes->fakeQuant);
}

LogicalResult setTargetOptions(func::FuncOp fn, TileGemm &g) {
  FailureOr<ModuleNumerics> modes = getModuleNumerics(fn);
  if (failed(modes))
    return failure();
  g.fastRow = modes->sumOrder == ::v4::SumOrder::Fast;
  // The kernels module's x86-64 level (v4c --cpu; absent: the default):
  // FP4 slices are decoded by vpermps on x86-64-v4 (g.format must be set).
  std::string_view level = ::v4::kDefaultHostISA;
  for (Operation *p = fn; p; p = p->getParentOp())
    if (auto a = p->getAttrOfType<StringAttr>(kHostISAAttrName)) {
      level = std::string_view(a.getValue().data(), a.getValue().size());
      break;
    }
  bool v4 = ::v4::hostISAIncludes(level, "x86-64-v4");
  if (v4 && g.format == lowp::WeightFormat::FP4)
    g.permuteFP4 = lowp::declareE2M1Permute(fn->getParentOfType<ModuleOp>());
  if (v4)
    g.tileLanes = 16;
  bool plain = g.format == lowp::WeightFormat::Plain;
  if (g.fastRow && (!plain || g.bf16Operands) &&
      ::v4::hostISAIncludes(level, "x86-64-v4-bf16")) {
    g.dotBF16 = lowp::declareDotBF16(fn->getParentOfType<ModuleOp>());
    if (!plain || g.dequantizeWeights)
      g.pairDecoders =
          lowp::declareBF16PairDecoders(fn->getParentOfType<ModuleOp>());
  }
  return success();
}

Value readVector(KernelBody &k, Value m, ValueRange ix, int64_t lanes,
                 bool inBounds) {
  auto type =
      VectorType::get({lanes}, cast<MemRefType>(m.getType()).getElementType());
  if (inBounds)
    return vector::LoadOp::create(k.b, type, m, ix);
  // Element by element, as integer bits (a masked vector read of bf16 would
  // legalise through f32 conversions on targets without bf16 support): the
  // lanes past the last dimension are zero bits, i.e. +0.
  Type elt = type.getElementType();
  Type bits = k.b.getIntegerType(elt.getIntOrFloatBitWidth());
  Value last =
      k.subi(k.dim(m, cast<MemRefType>(m.getType()).getRank() - 1), k.idx(1));
  Value zeroBits = arith::ConstantOp::create(k.b, k.b.getIntegerAttr(bits, 0));
  SmallVector<Value> at(ix.begin(), ix.end()), lanesBits;
  for (int64_t i = 0; i < lanes; ++i) {
    Value c = k.addi(ix.back(), k.idx(i));
    at.back() = k.minui(c, last);
    Value v = k.load(m, at);
    if (v.getType() != bits)
      v = arith::BitcastOp::create(k.b, bits, v);
    lanesBits.push_back(
        k.select(k.cmpi(arith::CmpIPredicate::ule, c, last), v, zeroBits));
  }
  Value vec = vector::FromElementsOp::create(
      k.b, VectorType::get({lanes}, bits), lanesBits);
  return bits == elt ? vec : Value(arith::BitcastOp::create(k.b, type, vec));
}

void quantizeActFP8(ImplicitLocOpBuilder &b, ActLoadFn act, Value K,
                    int64_t blk, Value qa, Value sa, bool quantize) {
  KernelBody k{b};
  Value zero = k.idx(0), blkV = k.idx(blk);
  // The row read once into qa, then each block quantised there in place.
  loop(k, zero, K,
       [&](KernelBody &k, Value e) { k.store(act(k.b, e), qa, {e}); });
  Value nBlocks = k.ceilDivui(K, blk);
  if (!quantize) {
    // The activation as it is, at scale 1: the block-scaled dot is then
    // the dot with the exactly dequantised weight (s_w is a power of 2).
    loop(k, zero, nBlocks,
         [&](KernelBody &k, Value j) { k.store(k.f32(1.0), sa, {j}); });
    return;
  }
  // A whole block of whole vectors of L lanes is quantised as vectors: the
  // maximum and each element's rounding are those of the scalar code.
  constexpr int64_t L = 16;
  const bool vec = blk % L == 0;
  auto vecType = VectorType::get({L}, b.getF32Type());
  loop(k, zero, nBlocks, [&](KernelBody &k, Value j) {
    Value k0 = k.muli(j, blkV);
    Value k1 = k.minui(k.addi(k0, blkV), K);
    auto scalarBlock = [&](KernelBody &k) {
      Value amax = reduce(
          k, k0, k1, {k.f32(0.0)},
          [&](KernelBody &k, Value e, ValueRange acc) -> SmallVector<Value> {
            return {arith::MaximumFOp::create(
                k.b, acc[0], math::AbsFOp::create(k.b, k.load(qa, {e})))};
          })[0];
      Value s = lowp::fp8ActScale(k.b, amax);
      k.store(s, sa, {j});
      loop(k, k0, k1, [&](KernelBody &k, Value e) {
        k.store(lowp::roundE4M3(k.b,
                                arith::DivFOp::create(k.b, k.load(qa, {e}), s)),
                qa, {e});
      });
    };
    if (!vec)
      return scalarBlock(k);
    auto vectorBlock = [&](KernelBody &k) {
      Value steps = k.idx(blk / L);
      auto at = [&](KernelBody &k, Value q) {
        return k.addi(k0, k.muli(q, k.idx(L)));
      };
      // max |x| as the unsigned maximum of the bits with the sign cleared:
      // magnitudes order as their bits, and a NaN's lie above +inf's, so
      // the maximum is the same number as maximumf's, or a NaN when any
      // element is one (fp8ActScale gives every NaN the same scale); one
      // integer max per vector instead of a NaN-checking float max, and
      // the same across the lanes.
      auto vecI32 = VectorType::get({L}, b.getI32Type());
      Value absBits = arith::ConstantOp::create(
          k.b,
          DenseElementsAttr::get(vecI32, k.b.getI32IntegerAttr(0x7FFFFFFF)));
      Value zeroV = arith::ConstantOp::create(
          k.b, cast<TypedAttr>(k.b.getZeroAttr(vecI32)));
      Value lanes = reduce(
          k, zero, steps, {zeroV},
          [&](KernelBody &k, Value q, ValueRange acc) -> SmallVector<Value> {
            Value x =
                vector::LoadOp::create(k.b, vecType, qa, ValueRange{at(k, q)});
            Value bits = arith::AndIOp::create(
                k.b, arith::BitcastOp::create(k.b, vecI32, x), absBits);
            return {arith::MaxUIOp::create(k.b, acc[0], bits)};
          })[0];
      Value amax = arith::BitcastOp::create(
          k.b, k.b.getF32Type(),
          vector::ReductionOp::create(k.b, vector::CombiningKind::MAXUI,
                                      lanes));
      Value s = lowp::fp8ActScale(k.b, amax);
      k.store(s, sa, {j});
      // x / s as x * (1 / s): s is 2^k with k at most 120 for a finite
      // maximum (so 1 / s is exact and normal), or +inf (1 / s = +0), and
      // either way the product is the quotient, bit for bit (NaN too); one
      // division per block instead of one per vector.
      Value rV = vector::BroadcastOp::create(
          k.b, vecType, arith::DivFOp::create(k.b, k.f32(1.0), s));
      loop(k, zero, steps, [&](KernelBody &k, Value q) {
        Value x =
            vector::LoadOp::create(k.b, vecType, qa, ValueRange{at(k, q)});
        vector::StoreOp::create(
            k.b, lowp::roundE4M3(k.b, arith::MulFOp::create(k.b, x, rV)), qa,
            ValueRange{at(k, q)});
      });
    };
    ifElse(k, k.cmpi(arith::CmpIPredicate::eq, k.subi(k1, k0), blkV),
           vectorBlock, scalarBlock);
  });
}

//===----------------------------------------------------------------------===//
// The tiled GEMM
//===----------------------------------------------------------------------===//

namespace {

/// Features per step of the one-row chunk (kRowVecs vectors of 8 feature
/// lanes), and the K elements per Plain partial sum there (the sum carries
/// across parts, so the order is still ascending e).
constexpr int64_t kRowVecs = 4;
constexpr int64_t kRowFeatures = 8 * kRowVecs;
constexpr int64_t kRowPlainPart = 128;

/// Elements of one partial sum (P of the header): K for Plain (blk for
/// dequantised weights: one scale per part; the sum carries across parts),
/// blk for FP8, 32 for FP4.
Value partSize(KernelBody &k, const TileGemm &g) {
  switch (g.format) {
  case lowp::WeightFormat::Plain:
    return g.dequantizeWeights ? k.idx(g.blk) : g.K;
  case lowp::WeightFormat::FP8:
    return k.idx(g.blk);
  case lowp::WeightFormat::FP4:
    return k.idx(32);
  }
  llvm_unreachable("weight format");
}

/// Elements of one partial sum of the one-row pass: Plain in parts of
/// kRowPlainPart (that pass transposes a part of kRowFeatures rows), else
/// partSize's.
Value rowPartSize(KernelBody &k, const TileGemm &g) {
  return g.format == lowp::WeightFormat::Plain && !g.dequantizeWeights
             ? k.idx(kRowPlainPart)
             : partSize(k, g);
}

/// The parts of K of P elements each (FP4: the 32-slices).
Value partCount(KernelBody &k, const TileGemm &g, Value P) {
  return g.format == lowp::WeightFormat::FP4
             ? k.divui(g.K, k.idx(32))
             : k.divui(k.addi(g.K, k.subi(P, k.idx(1))), P);
}

/// A vector of `lanes` f32 (or the scalar for one lane) at m[i].
Value loadLanes(KernelBody &k, Value m, Value i, int64_t lanes) {
  if (lanes == 1)
    return k.load(m, {i});
  return vector::LoadOp::create(k.b, VectorType::get({lanes}, k.b.getF32Type()),
                                m, ValueRange{i});
}
void storeLanes(KernelBody &k, Value v, Value m, Value i, int64_t lanes) {
  if (lanes == 1)
    return k.store(v, m, {i});
  vector::StoreOp::create(k.b, v, m, ValueRange{i});
}
Value splat(KernelBody &k, Value scalar, int64_t lanes) {
  if (lanes == 1)
    return scalar;
  return vector::BroadcastOp::create(
      k.b, VectorType::get({lanes}, k.b.getF32Type()), scalar);
}

/// The even and odd elements of a vector<32xf32> (an FP4 slice's
/// activations, against its low and high nibbles) as two vector<16xf32>.
std::pair<Value, Value> evenOddHalves(KernelBody &k, Value v) {
  SmallVector<int64_t> evens, odds;
  for (int64_t i = 0; i < 16; ++i) {
    evens.push_back(2 * i);
    odds.push_back(2 * i + 1);
  }
  return {vector::ShuffleOp::create(k.b, v, v, evens),
          vector::ShuffleOp::create(k.b, v, v, odds)};
}

/// The activation block of part j (FP4 32-slices lie within one).
Value partActBlock(KernelBody &k, const TileGemm &g, Value j) {
  return g.format == lowp::WeightFormat::FP4
             ? k.divui(k.muli(j, k.idx(32)), k.idx(g.blk))
             : j;
}

/// The e8m0 code of the weight scale of feature n, block or slice j.
Value scaleCode(KernelBody &k, const TileGemm &g, Value n, Value j) {
  auto [m, ix] = g.weightScaleRef(k, n, j);
  return k.load(m, ix);
}

/// The low and high nibbles (the even and odd K elements) of a vector of
/// packed FP4 bytes as f32 vectors worth 2^-14 of their values
/// (lowp::kE2M1HalfScale).
std::pair<Value, Value> fp4SliceHalves(KernelBody &k, Value bytes) {
  // One widening to i16 serves both nibbles.
  auto type = cast<VectorType>(bytes.getType());
  Value wide = arith::ExtUIOp::create(k.b, type.clone(k.b.getI16Type()), bytes);
  Value lo = lowp::halfToF32(k.b, lowp::e2m1HalfBits(k.b, wide, 0));
  Value hi = lowp::halfToF32(k.b, lowp::e2m1HalfBits(k.b, wide, 4));
  return {lo, hi};
}

/// Decodes weight row n over [e0, e1), part j, to f32: element e into
/// wdec[at(e)].
void decodePart(KernelBody &k, const TileGemm &g, Value wdec, Value n, Value j,
                Value e0, Value e1,
                function_ref<Value(KernelBody &, Value)> at) {
  // FP8 / FP4 codes with their location known: whole steps (16 FP8 codes,
  // one FP4 slice of 16 bytes) decoded as vectors through binary16, the
  // same exact values as the scalar decoders (the 2^k scaling of a half is
  // exact); the rest one by one.
  bool vec = g.weightRef && !g.dequantizeWeights &&
             g.format != lowp::WeightFormat::Plain;
  if (vec) {
    bool fp4 = g.format == lowp::WeightFormat::FP4;
    const int64_t G = fp4 ? 32 : 16;
    auto scaled = [&](KernelBody &k, Value f, double scale) {
      return k.mulf(f, splat(k, k.f32(scale),
                             cast<VectorType>(f.getType()).getNumElements()));
    };
    Value steps = k.divui(k.subi(e1, e0), k.idx(G));
    loop(k, k.idx(0), steps, [&](KernelBody &k, Value q) {
      Value e = k.addi(e0, k.muli(q, k.idx(G)));
      Value w;
      if (fp4) {
        auto [m, ix] = g.weightRef(k, n, k.divui(e, k.idx(2)));
        Value bytes = readVector(k, m, ix, 16, true);
        Value lo, hi;
        if (g.permuteFP4) {
          std::tie(lo, hi) =
              lowp::decodeE2M1BytesPermuted(k.b, bytes, g.permuteFP4);
        } else {
          std::tie(lo, hi) = fp4SliceHalves(k, bytes);
          lo = scaled(k, lo, lowp::kE2M1HalfScale);
          hi = scaled(k, hi, lowp::kE2M1HalfScale);
        }
        SmallVector<int64_t> interleave;
        for (int64_t i = 0; i < 16; ++i) {
          interleave.push_back(i);
          interleave.push_back(16 + i);
        }
        w = vector::ShuffleOp::create(k.b, lo, hi, interleave);
      } else {
        auto [m, ix] = g.weightRef(k, n, e);
        w = scaled(
            k,
            lowp::halfToF32(
                k.b, lowp::e4m3HalfBits(k.b, readVector(k, m, ix, 16, true))),
            lowp::kE4M3HalfScale);
      }
      vector::StoreOp::create(k.b, w, wdec, ValueRange{at(k, e)});
    });
    e0 = k.addi(e0, k.muli(steps, k.idx(G)));
  }
  if (g.format == lowp::WeightFormat::FP4) {
    loop(k, k.idx(0), k.divui(k.subi(e1, e0), k.idx(2)),
         [&](KernelBody &k, Value q) {
           Value e = k.addi(e0, k.addi(q, q));
           auto [lo, hi] = lowp::decodeE2M1Byte(k.b, g.weight(k, n, e));
           k.store(lo, wdec, {at(k, e)});
           k.store(hi, wdec, {at(k, k.addi(e, k.idx(1)))});
         });
    return;
  }
  // Dequantised weights: bf16(e4m3 * s) with the part's one scale.
  Value scale = g.dequantizeWeights
                    ? lowp::decodeE8M0(k.b, scaleCode(k, g, n, j))
                    : Value();
  loop(k, e0, e1, [&](KernelBody &k, Value e) {
    Value v = g.weight(k, n, e);
    if (scale)
      v = k.roundBF16(k.mulf(lowp::decodeE4M3(k.b, v), scale));
    else if (g.format == lowp::WeightFormat::FP8)
      v = lowp::decodeE4M3(k.b, v);
    k.store(v, wdec, {at(k, e)});
  });
}

/// Whether a tile pass of `lanes` lanes (gemmPass; gemmRowsFastFP4Pass asks
/// with the module's tileLanes) multiplies bf16 pairs (TileGemm::dotBF16),
/// 16 lanes: quantised activations against FP8 weights in blocks of an even
/// size or FP4 weights (32-slices), or Plain operands exact in bf16
/// (TileGemm::bf16Operands; dequantised weights in blocks of an even size).
bool usesDotBF16(const TileGemm &g, int64_t lanes) {
  if (!g.dotBF16 || lanes != 16)
    return false;
  if (g.format == lowp::WeightFormat::Plain)
    return g.bf16Operands && (!g.dequantizeWeights || g.blk % 2 == 0);
  return g.quantize &&
         (g.format == lowp::WeightFormat::FP4 ||
          (g.format == lowp::WeightFormat::FP8 && g.blk % 2 == 0));
}

/// Whether a pair-dot tile of FP4 weights (fast sums, x86-64-v4 permuted
/// decoding) sums exact products along all of K, as gemmRowsFastFP4Pass
/// does: its activations dequantised (code times block scale, exact), each
/// weight slice decoded times its s_w (exact), so no part scaling; instead
/// of one partial sum per 32-slice, each scaled and added (12 lane sums
/// loaded, scaled and stored per 16 pair steps).
bool usesWholeFP4Tile(const TileGemm &g) {
  return g.fastRow && g.format == lowp::WeightFormat::FP4 && g.permuteFP4 &&
         usesDotBF16(g, g.tileLanes) && g.blk % 16 == 0;
}

/// f32 values exact in bf16 (their low 16 bits zero: FP8 / FP4 values, +0)
/// at elements 2q and 2q + 1 as one bf16 pair in an f32 slot, the even one
/// in the low half. Vectors of 16 pairs from vectors lo (the even elements)
/// and hi (the odd ones), or scalars.
Value packBF16Pair(KernelBody &k, Value lo, Value hi) {
  Type f32 = k.b.getF32Type(), i32 = k.b.getI32Type();
  auto vt = dyn_cast<VectorType>(lo.getType());
  Type it = vt ? Type(vt.clone(i32)) : i32;
  auto c = [&](uint32_t v) -> Value {
    Attribute a = k.b.getI32IntegerAttr(int32_t(v));
    if (vt)
      a = DenseElementsAttr::get(cast<ShapedType>(it), a);
    return arith::ConstantOp::create(k.b, cast<TypedAttr>(a));
  };
  Value l = arith::BitcastOp::create(k.b, it, lo);
  Value h = arith::BitcastOp::create(k.b, it, hi);
  Value bits =
      arith::OrIOp::create(k.b, arith::ShRUIOp::create(k.b, l, c(16)),
                           arith::AndIOp::create(k.b, h, c(0xFFFF0000u)));
  return arith::BitcastOp::create(k.b, vt ? Type(vt.clone(f32)) : f32, bits);
}

/// Where weight row f's bf16 pairs of a part of P elements start in wdec2:
/// rows of ceil(P / 64) runs of 32 pairs (decodeWeightPairs writes whole
/// runs).
Value pairRowStride(KernelBody &k, Value P) {
  return k.muli(k.ceilDivui(P, 64), k.idx(32));
}

/// Weight row f of a part [e0, e1), decoded into wdec[f * P + (e - e0)],
/// for e in [from, e1) (from - e0 even) as bf16 pairs (packBF16Pair) times
/// `scale` (a power of 2 or null) into wdec2[f * pairRowStride + (e - e0) /
/// 2]: 16 pairs at a time, then one by one; a missing odd element is +0.
void packWeightPairs(KernelBody &k, const TileGemmScratch &s, int64_t f,
                     Value P, Value e0, Value from, Value e1, Value scale) {
  const int64_t L = 16;
  Type f32 = k.b.getF32Type();
  Value zero = k.idx(0), one = k.idx(1), two = k.idx(2);
  Value len = k.subi(e1, from);
  Value src = k.addi(k.muli(k.idx(f), P), k.subi(from, e0));
  Value dst = k.addi(k.muli(k.idx(f), pairRowStride(k, P)),
                     k.divui(k.subi(from, e0), two));
  auto scaled = [&](Value v) -> Value {
    if (!scale)
      return v;
    auto vt = dyn_cast<VectorType>(v.getType());
    return k.mulf(v, splat(k, scale, vt ? vt.getNumElements() : 1));
  };
  Value whole = k.divui(len, k.idx(2 * L));
  SmallVector<int64_t> evens, odds;
  for (int64_t i = 0; i < L; ++i) {
    evens.push_back(2 * i);
    odds.push_back(2 * i + 1);
  }
  loop(k, zero, whole, [&](KernelBody &k, Value v) {
    Value w = vector::LoadOp::create(
        k.b, VectorType::get({2 * L}, f32), s.wdec,
        ValueRange{k.addi(src, k.muli(v, k.idx(2 * L)))});
    Value lo = scaled(vector::ShuffleOp::create(k.b, w, w, evens));
    Value hi = scaled(vector::ShuffleOp::create(k.b, w, w, odds));
    vector::StoreOp::create(k.b, packBF16Pair(k, lo, hi), s.wdec2,
                            ValueRange{k.addi(dst, k.muli(v, k.idx(L)))});
  });
  loop(k, k.muli(whole, k.idx(L)), k.ceilDivui(len, 2),
       [&](KernelBody &k, Value q) {
         Value e = k.addi(k.muli(q, two), one);
         Value lo = scaled(k.load(s.wdec, {k.addi(src, k.muli(q, two))}));
         Value last = k.subi(k.addi(k.muli(k.idx(f), P), P), one);
         Value hi =
             k.select(k.cmpi(arith::CmpIPredicate::ult, e, len),
                      scaled(k.load(s.wdec, {k.minui(k.addi(src, e), last)})),
                      k.f32(0.0));
         k.store(packBF16Pair(k, lo, hi), s.wdec2, {k.addi(dst, q)});
       });
}

/// Weight row n of an FP8 part [e0, e1) (scaled, or dequantised: its codes
/// without the block's scale `dequantScale`) as bf16 pairs for the pair-dot
/// tile (usesDotBF16) in wdec2 (pairRowStride rows), worth 2^-8 of the
/// weights (kE4M3HalfScale, folded into the part's activation scale): each
/// whole run of 64 codes straight to bf16 by decodeE4M3BytesBF16's
/// permutes, its pairs put back in element order by two shuffles of 32-bit
/// lanes; the rest through decodePart and packWeightPairs times 2^-8. The
/// values and their places are packWeightPairs' after decodePart, scaled by
/// 2^-8 (exact: e4m3's least magnitude is 2^-9).
void decodeWeightPairs(KernelBody &k, const TileGemm &g,
                       const TileGemmScratch &s, int64_t f, Value n, Value j,
                       Value P, Value e0, Value e1, Value dequantScale) {
  constexpr int64_t W = 64, L = 16;
  Value runs = k.divui(k.subi(e1, e0), k.idx(W));
  Value dst = k.muli(k.idx(f), pairRowStride(k, P));
  auto i8s = VectorType::get({W}, k.b.getI8Type());
  auto i32s = VectorType::get({L}, k.b.getI32Type());
  // Natural pair q (elements 2q, 2q + 1) of a run is 32-bit lane i = 4 (q /
  // 8) + q % 4 of half h = q % 8 / 4 (e4m3PairElement).
  SmallVector<int64_t> order;
  for (int64_t q = 0; q < 2 * L; ++q)
    order.push_back(L * (q % 8 / 4) + 4 * (q / 8) + q % 4);
  loop(k, k.idx(0), runs, [&](KernelBody &k, Value r) {
    Value e = k.addi(e0, k.muli(r, k.idx(W)));
    auto [m, ix] = g.weightRef(k, n, e);
    auto [h0, h1] = lowp::decodeE4M3BytesBF16(
        k.b, vector::LoadOp::create(k.b, i8s, m, ix), g.pairDecoders);
    Value a = vector::BitCastOp::create(k.b, i32s, h0);
    Value b = vector::BitCastOp::create(k.b, i32s, h1);
    for (int64_t half = 0; half < 2; ++half) {
      Value natural = vector::ShuffleOp::create(
          k.b, a, b, ArrayRef<int64_t>(order).slice(half * L, L));
      vector::StoreOp::create(
          k.b,
          vector::BitCastOp::create(k.b, VectorType::get({L}, k.b.getF32Type()),
                                    natural),
          s.wdec2,
          ValueRange{
              k.addi(dst, k.addi(k.muli(r, k.idx(W / 2)), k.idx(half * L)))});
    }
  });
  Value from = k.addi(e0, k.muli(runs, k.idx(W)));
  Value base = k.subi(k.muli(k.idx(f), P), e0);
  decodePart(k, g, s.wdec, n, j, from, e1,
             [&](KernelBody &k, Value e) { return k.addi(base, e); });
  // Dequantised weights leave decodePart times the block's scale s (a power
  // of 2, `dequantScale`, decoded by the caller): divided out again, exactly.
  Value tail = k.f32(1.0 / lowp::kE4M3HalfScale);
  if (dequantScale)
    tail = k.divf(tail, dequantScale);
  packWeightPairs(k, s, f, P, e0, from, e1, tail);
}

/// FP4 weight row n, all of K (usesWholeFP4Tile), as bf16 pairs in wdec2
/// (pairRowStride(K) rows): each 16-byte slice decoded by two vpermps of
/// the e2m1 table times the slice's s_w (the values times a power of 2,
/// exact), the even and odd elements' values packed into 16 pairs.
void decodeFP4RowPairs(KernelBody &k, const TileGemm &g,
                       const TileGemmScratch &s, int64_t f, Value n) {
  Value dst = k.muli(k.idx(f), pairRowStride(k, g.K));
  loop(k, k.idx(0), k.divui(g.K, k.idx(32)), [&](KernelBody &k, Value j) {
    auto [m, ix] = g.weightRef(k, n, k.muli(j, k.idx(16)));
    Value sw = lowp::decodeE8M0(k.b, scaleCode(k, g, n, j));
    auto [lo, hi] = lowp::decodeE2M1BytesPermuted(
        k.b, readVector(k, m, ix, 16, true), g.permuteFP4, sw);
    vector::StoreOp::create(k.b, packBF16Pair(k, lo, hi), s.wdec2,
                            ValueRange{k.addi(dst, k.muli(j, k.idx(16)))});
  });
}

/// Weight row n of a part [e0, e1) of bf16 weights (Plain bf16Operands, not
/// dequantised; e0 even) as bf16 pairs for the pair-dot tile in wdec2
/// (pairRowStride rows): each whole run of 32 elements is its stored bits,
/// 16 pairs (the even element in the low half, as stored); the rest through
/// decodePart and packWeightPairs. The values and places of packWeightPairs
/// after decodePart.
void copyWeightPairs(KernelBody &k, const TileGemm &g, const TileGemmScratch &s,
                     int64_t f, Value n, Value j, Value P, Value e0, Value e1) {
  constexpr int64_t L = 16;
  Value runs = k.divui(k.subi(e1, e0), k.idx(2 * L));
  Value dst = k.muli(k.idx(f), pairRowStride(k, P));
  auto bf16s = VectorType::get({2 * L}, k.b.getBF16Type());
  loop(k, k.idx(0), runs, [&](KernelBody &k, Value r) {
    auto [m, ix] = g.weightRef(k, n, k.addi(e0, k.muli(r, k.idx(2 * L))));
    Value pairs =
        vector::BitCastOp::create(k.b, VectorType::get({L}, k.b.getF32Type()),
                                  vector::LoadOp::create(k.b, bf16s, m, ix));
    vector::StoreOp::create(k.b, pairs, s.wdec2,
                            ValueRange{k.addi(dst, k.muli(r, k.idx(L)))});
  });
  Value from = k.addi(e0, k.muli(runs, k.idx(2 * L)));
  Value base = k.subi(k.muli(k.idx(f), P), e0);
  decodePart(k, g, s.wdec, n, j, from, e1,
             [&](KernelBody &k, Value e) { return k.addi(base, e); });
  packWeightPairs(k, s, f, P, e0, from, e1, Value());
}

/// The features [n0, n1) (at most kGemmChunk) against the tile of a pass
/// (aT / saT: rows ra + [0, cnt)). With `dots` (usesDotBF16) each part's
/// decoded weight rows are also packed into bf16 pairs (wdec2) and each step
/// takes a pair of elements: the 16 rows' activation pairs (aT2, packed by
/// gemmPass) against a feature's broadcast pair, vdpbf16ps adding both exact
/// products to the lane sums (the odd one first); a part's sums are scaled
/// as without.
void gemmChunk(KernelBody &k, const TileGemm &g, const TileGemmScratch &s,
               Value ra, Value cnt, Value n0, Value n1, int64_t lanes,
               int64_t vecs, int64_t feats, bool dots) {
  const int64_t T = lanes * vecs;
  bool scaled = g.format != lowp::WeightFormat::Plain;
  Value zero = k.idx(0), TV = k.idx(T);
  // acc[slot * T + i]: the running sum of feature n0 + slot, row ra + i;
  // slot kGemmChunk takes the stores of a pass's surplus features.
  loop(k, zero, k.muli(k.subi(n1, n0), TV),
       [&](KernelBody &k, Value i) { k.store(k.f32(0.0), s.acc, {i}); });
  // FP4 pair tiles of exact products run all of K as one part.
  const bool fp4Whole = dots && usesWholeFP4Tile(g);
  Value P = fp4Whole ? g.K : partSize(k, g);
  Value nParts = fp4Whole ? k.idx(1) : partCount(k, g, P);
  Type f32 = k.b.getF32Type();
  Type laneType =
      lanes == 1 ? f32 : Type(VectorType::get({lanes}, k.b.getF32Type()));
  Value zeroLanes = arith::ConstantOp::create(
      k.b, cast<TypedAttr>(k.b.getZeroAttr(laneType)));
  // Codes times codes (FP8 activations against FP8 / FP4 weights, at most 4
  // and 4 significant bits, products between 2^-18 and 448^2) are exact
  // products, so a fused multiply-add rounds once where the product and the
  // sum would: the same bits, in either sum order, half the instructions.
  // Anything else (Plain, unquantised activations) keeps the two roundings.
  arith::FastMathFlags mulAdd = scaled && g.quantize
                                    ? arith::FastMathFlags::contract
                                    : arith::FastMathFlags::none;
  // FP8 weights' pairs straight from their codes (decodeWeightPairs). So
  // are dequantised weights' (bf16(e4m3 * s) is e4m3 * s, s a power of 2),
  // each block's partial sum then scaled by its s like an FP8 block's, with
  // no activation scale: per block the same exact products times a power
  // of 2, the blocks added in ascending order (no decodePart, rounding and
  // repacking per element).
  const bool fp8Pairs =
      dots && (g.format == lowp::WeightFormat::FP8 || g.dequantizeWeights) &&
      static_cast<bool>(g.pairDecoders.bytePermute2);
  const bool blockScaled =
      !fp4Whole && (scaled || (fp8Pairs && g.dequantizeWeights));
  // bf16 weights' pairs are their stored bits (copyWeightPairs).
  const bool bf16Pairs = dots && g.format == lowp::WeightFormat::Plain &&
                         !g.dequantizeWeights && g.weightRef;
  loop(k, zero, nParts, [&](KernelBody &k, Value j) {
    Value e0 = k.muli(j, P), e1 = k.minui(k.addi(e0, P), g.K);
    Value aj = partActBlock(k, g, j);
    scf::ForOp::create(
        k.b, n0, n1, k.idx(feats), ValueRange(),
        [&](OpBuilder &nb, Location loc, Value fb, ValueRange) {
          ImplicitLocOpBuilder ib(loc, nb);
          KernelBody k{ib};
          SmallVector<Value> slots, sdec;
          for (int64_t f = 0; f < feats; ++f) {
            Value n = k.addi(fb, k.idx(f));
            Value valid = k.cmpi(arith::CmpIPredicate::ult, n, n1);
            Value nRead = k.minui(n, k.subi(n1, k.idx(1)));
            slots.push_back(k.select(valid, k.subi(n, n0), k.idx(kGemmChunk)));
            // The block's weight scale (also what a dequantised part's
            // tail is divided by).
            Value sw = blockScaled
                           ? lowp::decodeE8M0(k.b, scaleCode(k, g, nRead, j))
                           : Value();
            if (sw)
              sdec.push_back(sw);
            // Weight row nRead over [e0, e1), decoded into wdec[f * P ...].
            if (fp4Whole) {
              decodeFP4RowPairs(k, g, s, f, nRead);
            } else if (fp8Pairs) {
              decodeWeightPairs(k, g, s, f, nRead, j, P, e0, e1,
                                g.dequantizeWeights ? sw : Value());
            } else if (bf16Pairs) {
              copyWeightPairs(k, g, s, f, nRead, j, P, e0, e1);
            } else {
              Value base = k.subi(k.muli(k.idx(f), P), e0);
              decodePart(
                  k, g, s.wdec, nRead, j, e0, e1,
                  [&](KernelBody &k, Value e) { return k.addi(base, e); });
              if (dots)
                packWeightPairs(k, s, f, P, e0, e0, e1, Value());
            }
          }
          // The partial sums: feats x vecs lane groups, ascending e (Plain:
          // continuing the running sums of the parts before).
          SmallVector<Value> init(feats * vecs, zeroLanes);
          if (!blockScaled)
            for (int64_t f = 0; f < feats; ++f)
              for (int64_t v = 0; v < vecs; ++v)
                init[f * vecs + v] = loadLanes(
                    k, s.acc, k.addi(k.muli(slots[f], TV), k.idx(v * lanes)),
                    lanes);
          // With pair dots: one step per pair of elements (aT2 from pair
          // q0, wdec2 rows P2 apart).
          auto bf16s = VectorType::get({2 * lanes}, k.b.getBF16Type());
          Value P2 = pairRowStride(k, P), q0 = k.divui(e0, k.idx(2));
          auto pairStep = [&](KernelBody &k, Value q, ValueRange acc) {
            SmallVector<Value> a, next;
            for (int64_t v = 0; v < vecs; ++v)
              a.push_back(vector::BitCastOp::create(
                  k.b, bf16s,
                  loadLanes(k, s.aT2,
                            k.addi(k.muli(k.addi(q0, q), TV), k.idx(v * lanes)),
                            lanes)));
            for (int64_t f = 0; f < feats; ++f) {
              Value wv = vector::BitCastOp::create(
                  k.b, bf16s,
                  splat(k, k.load(s.wdec2, {k.addi(k.muli(k.idx(f), P2), q)}),
                        lanes));
              for (int64_t v = 0; v < vecs; ++v)
                next.push_back(
                    LLVM::CallOp::create(
                        k.b, g.dotBF16, ValueRange{acc[f * vecs + v], a[v], wv})
                        .getResult());
            }
            return next;
          };
          SmallVector<Value> parts =
              dots ? reduce(k, zero, k.ceilDivui(k.subi(e1, e0), 2), init,
                            pairStep)
                   : reduce(k, e0, e1, init,
                            [&](KernelBody &k, Value e, ValueRange acc) {
                              SmallVector<Value> a, next;
                              for (int64_t v = 0; v < vecs; ++v)
                                a.push_back(loadLanes(
                                    k, s.aT,
                                    k.addi(k.muli(e, TV), k.idx(v * lanes)),
                                    lanes));
                              for (int64_t f = 0; f < feats; ++f) {
                                Value wv = splat(
                                    k,
                                    k.load(s.wdec, {k.addi(k.muli(k.idx(f), P),
                                                           k.subi(e, e0))}),
                                    lanes);
                                for (int64_t v = 0; v < vecs; ++v) {
                                  Value p = arith::MulFOp::create(k.b, a[v], wv,
                                                                  mulAdd);
                                  next.push_back(arith::AddFOp::create(
                                      k.b, acc[f * vecs + v], p, mulAdd));
                                }
                              }
                              return next;
                            });
          for (int64_t f = 0; f < feats; ++f)
            for (int64_t v = 0; v < vecs; ++v) {
              Value at = k.addi(k.muli(slots[f], TV), k.idx(v * lanes));
              Value part = parts[f * vecs + v];
              if (blockScaled) {
                // FP8 pairs are worth 2^-8 of the weights: s_a 2^8 (exact,
                // a power of 2) gives the same scaled part; dequantised
                // weights' activations have no scale (2^8 alone).
                Value sa =
                    scaled ? loadLanes(k, s.saT,
                                       k.addi(k.muli(aj, TV), k.idx(v * lanes)),
                                       lanes)
                           : Value();
                if (fp8Pairs) {
                  Value half = splat(k, k.f32(lowp::kE4M3HalfScale), lanes);
                  sa = sa ? k.mulf(sa, half) : half;
                }
                Value scaledPart =
                    lowp::scaleBlock(k.b, part, sa, splat(k, sdec[f], lanes));
                part = k.addf(loadLanes(k, s.acc, at, lanes), scaledPart);
              }
              storeLanes(k, part, s.acc, at, lanes);
            }
          scf::YieldOp::create(ib);
        });
  });
  // Row by row: each row's features are contiguous in the output (a
  // feature's rows are not). With 16-lane tiles, whole blocks of 16
  // features are first turned row-major through registers (accT[i *
  // kGemmChunk + n - n0], transposeSquare), so the stores read
  // contiguously instead of gathering a row's sums T apart.
  Value rowMajorEnd = n0;
  const bool rowMajor = lanes == 16 && T % 16 == 0;
  if (rowMajor) {
    constexpr int64_t L = 16;
    Value blocks = k.divui(k.subi(n1, n0), k.idx(L));
    rowMajorEnd = k.addi(n0, k.muli(blocks, k.idx(L)));
    auto v16 = VectorType::get({L}, f32);
    for (int64_t grp = 0; grp < T / L; ++grp)
      loop(k, zero, blocks, [&](KernelBody &k, Value fb) {
        SmallVector<Value> rows;
        for (int64_t f = 0; f < L; ++f)
          rows.push_back(vector::LoadOp::create(
              k.b, v16, s.acc,
              ValueRange{
                  k.addi(k.muli(k.addi(k.muli(fb, k.idx(L)), k.idx(f)), TV),
                         k.idx(grp * L))}));
        SmallVector<Value> cols = transposeSquare(k.b, rows);
        for (int64_t i = 0; i < L; ++i)
          vector::StoreOp::create(
              k.b, cols[i], s.accT,
              ValueRange{k.addi(k.idx((grp * L + i) * kGemmChunk),
                                k.muli(fb, k.idx(L)))});
      });
  }
  loop(k, zero, cnt, [&](KernelBody &k, Value i) {
    Value r = k.addi(ra, i);
    if (rowMajor)
      loop(k, n0, rowMajorEnd, [&](KernelBody &k, Value n) {
        Value acc = k.load(
            s.accT, {k.addi(k.muli(i, k.idx(kGemmChunk)), k.subi(n, n0))});
        g.store(k, r, n, acc);
      });
    loop(k, rowMajorEnd, n1, [&](KernelBody &k, Value n) {
      Value acc = k.load(s.acc, {k.addi(k.muli(k.subi(n, n0), TV), i)});
      g.store(k, r, n, acc);
    });
  });
}

/// The features [n0, n1) (at most kGemmChunk) of the one row in aT / saT
/// (row ra), with features in vector lanes: each lane is the sequential sum
/// of one feature, so the numbers are those of gemmChunk; the F weight rows
/// of a part are decoded into wrow (wrow[f * P + e - e0]) and transposed 8 x
/// 8 in registers (transpose8x8).
void gemmRowChunk(KernelBody &k, const TileGemm &g, const TileGemmScratch &s,
                  Value ra, Value n0, Value n1) {
  const int64_t L = 8, F = kRowFeatures;
  bool scaled = g.format != lowp::WeightFormat::Plain;
  Value zero = k.idx(0), FV = k.idx(F);
  Value P = rowPartSize(k, g);
  Value nParts = partCount(k, g, P);
  // acc[n - n0] for whole steps of F features (the surplus lanes of the
  // last step land past n1 - n0 and are never read).
  Value steps = k.ceilDivui(k.subi(n1, n0), F);
  loop(k, zero, k.muli(steps, FV),
       [&](KernelBody &k, Value i) { k.store(k.f32(0.0), s.acc, {i}); });
  loop(k, zero, nParts, [&](KernelBody &k, Value j) {
    Value e0 = k.muli(j, P), e1 = k.minui(k.addi(e0, P), g.K);
    Value aj = partActBlock(k, g, j);
    scf::ForOp::create(
        k.b, n0, n1, FV, ValueRange(),
        [&](OpBuilder &nb, Location loc, Value fb, ValueRange) {
          ImplicitLocOpBuilder ib(loc, nb);
          KernelBody k{ib};
          // Weight rows fb + f (past n1: the last row again) over [e0, e1),
          // and their decoded scales in sdec[f].
          loop(k, zero, FV, [&](KernelBody &k, Value f) {
            Value nRead = k.minui(k.addi(fb, f), k.subi(n1, k.idx(1)));
            // Decoded contiguously (a loop LLVM vectorises), transposed
            // below.
            Value base = k.subi(k.muli(f, P), e0);
            decodePart(k, g, s.wrow, nRead, j, e0, e1,
                       [&](KernelBody &k, Value e) { return k.addi(base, e); });
            if (scaled)
              k.store(lowp::decodeE8M0(k.b, scaleCode(k, g, nRead, j)), s.sdec,
                      {f});
          });
          Value slot = k.subi(fb, n0);
          // Plain continues the running sums; scaled parts start at zero.
          SmallVector<Value> init;
          for (int64_t v = 0; v < kRowVecs; ++v)
            init.push_back(
                scaled ? splat(k, k.f32(0.0), L)
                       : loadLanes(k, s.acc, k.addi(slot, k.idx(v * L)), L));
          // Each lane adds a[e] * W[f, e] in ascending e: whole groups of
          // L elements with L weight rows transposed in registers, then the
          // rest one element at a time.
          Value LV = k.idx(L);
          Value groups = k.divui(k.subi(e1, e0), LV);
          SmallVector<Value> sums = reduce(
              k, zero, groups, init,
              [&](KernelBody &k, Value q, ValueRange acc) {
                Value c = k.muli(q, LV);
                SmallVector<Value> a;
                for (int64_t i = 0; i < L; ++i)
                  a.push_back(splat(
                      k, k.load(s.aT, {k.addi(e0, k.addi(c, k.idx(i)))}), L));
                SmallVector<Value> next;
                for (int64_t v = 0; v < kRowVecs; ++v) {
                  SmallVector<Value> rows;
                  for (int64_t i = 0; i < L; ++i)
                    rows.push_back(loadLanes(
                        k, s.wrow, k.addi(k.muli(k.idx(v * L + i), P), c), L));
                  next.push_back(addTransposedProducts(k.b, acc[v], rows, a));
                }
                return next;
              });
          SmallVector<Value> parts = reduce(
              k, k.addi(e0, k.muli(groups, LV)), e1, sums,
              [&](KernelBody &k, Value e, ValueRange acc) {
                Value a = splat(k, k.load(s.aT, {e}), L);
                Value col = k.subi(e, e0);
                SmallVector<Value> next;
                for (int64_t v = 0; v < kRowVecs; ++v) {
                  SmallVector<Value> lanes;
                  for (int64_t i = 0; i < L; ++i)
                    lanes.push_back(k.load(
                        s.wrow, {k.addi(k.muli(k.idx(v * L + i), P), col)}));
                  Value w = vector::FromElementsOp::create(
                      k.b, VectorType::get({L}, k.b.getF32Type()), lanes);
                  next.push_back(k.addf(acc[v], k.mulf(a, w)));
                }
                return next;
              });
          Value sa = scaled ? splat(k, k.load(s.saT, {aj}), L) : Value();
          for (int64_t v = 0; v < kRowVecs; ++v) {
            Value at = k.addi(slot, k.idx(v * L));
            Value part = parts[v];
            if (scaled)
              part = k.addf(
                  loadLanes(k, s.acc, at, L),
                  lowp::scaleBlock(k.b, part, sa,
                                   loadLanes(k, s.sdec, k.idx(v * L), L)));
            storeLanes(k, part, s.acc, at, L);
          }
          scf::YieldOp::create(ib);
        });
  });
  loop(k, n0, n1, [&](KernelBody &k, Value n) {
    g.store(k, ra, n, k.load(s.acc, {k.subi(n, n0)}));
  });
}

/// Lanes of gemmRowFast's sums, the weight rows it runs at once (they
/// share each activation vector), and how many rows ahead it prefetches the
/// weights it will read (each row is one short stream, too short for the
/// hardware prefetcher to hide DRAM latency).
constexpr int64_t kFastLanes = 16;
constexpr int64_t kFastRows = 4;
constexpr int64_t kFastPrefetchRows = 2 * kFastRows;
/// Activation rows of gemmRowsFastPass (a tile of 2 to this many rows; FP8
/// and Plain weights), and the weight rows it runs at once then (R x A lane
/// sums and as many part sums stay in the 32 vector registers).
constexpr int64_t kFastActRows = 4;
constexpr int64_t kFastRowsMulti = 2;
/// Activation rows of gemmRowsFastFP4Pass (a tile of 2 to this many rows).
constexpr int64_t kFastActRowsFP4 = 8;

/// Whether tileGemm's one-row pass is gemmRowFast: asked for, and the FP8
/// blocks (scaled or dequantised) are whole steps of lanes.
bool usesFastRow(const TileGemm &g) {
  bool fp8Blocks = g.format == lowp::WeightFormat::FP8 || g.dequantizeWeights;
  return g.fastRow && (!fp8Blocks || g.blk % kFastLanes == 0);
}

/// Whether gemmRowFast's one activation row takes bf16 pair dots: FP4
/// slices, or FP8 runs of 64 codes (blocks of whole runs), decoded straight
/// to bf16 by permutes (TileGemm::pairDecoders).
bool usesPairRow(const TileGemm &g) {
  return g.format != lowp::WeightFormat::Plain && usesFastRow(g) &&
         usesDotBF16(g, kFastLanes) &&
         (g.format == lowp::WeightFormat::FP4 || g.blk % 64 == 0);
}

/// gemmRowFast with FP4 weights decodes the scale codes of a row kFastLanes
/// slices at a time: the slices of a row, rounded up to whole steps.
Value fastScaleStride(KernelBody &k, const TileGemm &g) {
  return k.muli(k.ceilDivui(k.ceilDivui(g.K, 32), kFastLanes),
                k.idx(kFastLanes));
}

/// The slice scales of FP4 weight rows `rows` for the fast passes: each
/// row's e8m0 codes decoded kFastLanes at a time (decodeE8M0 on a vector),
/// then `scale(j, s_w)` (slices j .. j + kFastLanes) stored at rowScale[r *
/// stride + j].
void storeRowScales(KernelBody &k, const TileGemm &g, const TileGemmScratch &s,
                    ArrayRef<Value> rows, Value stride,
                    function_ref<Value(KernelBody &, Value, Value)> scale) {
  const int64_t L = kFastLanes;
  for (size_t r = 0; r < rows.size(); ++r)
    loop(k, k.idx(0), k.divui(stride, k.idx(L)), [&](KernelBody &k, Value q) {
      Value j = k.muli(q, k.idx(L));
      auto [m, ix] = g.weightScaleRef(k, rows[r], j);
      Value sw = lowp::decodeE8M0(k.b, readVector(k, m, ix, L, false));
      vector::StoreOp::create(
          k.b, scale(k, j, sw), s.rowScale,
          ValueRange{k.addi(k.muli(k.idx(int64_t(r)), stride), j)});
    });
}

/// The features [n0, n1) of the one row in aT / saT (row ra) with
/// reassociated sums (v4.sum_order = "fast"): kFastRows weight rows at a
/// time share each activation vector; with A > 1 (not FP4) the A rows
/// ra + i (clamped to rb - 1; only rows below rb are stored) at aT[i *
/// aStride + e] and saT[i * saStride + j] share each decoded weight vector,
/// kFastRowsMulti weight rows at a time. Each feature's products are summed in
/// kFastLanes lanes along K with fused multiply-adds, a part's lane sums are
/// scaled once (s_a * s_w, with the 2^k of the half decoding folded in) into
/// the feature's lane sums, and the lanes are added at the end. Plain sums
/// all of K as one part; FP4 decodes a 32-slice (16 bytes) at a time, its
/// even and odd elements against the even and odd activations. Dequantised
/// weights (bf16(e4m3 * s), which is e4m3 * s: 4 significant bits) are FP8
/// blocks against the unquantised activations (s_a = 1).
void gemmRowFast(KernelBody &k, const TileGemm &g, const TileGemmScratch &s,
                 Value ra, Value rb, Value n0, Value n1, int64_t A = 1,
                 Value aStride = Value(), Value saStride = Value()) {
  using lowp::WeightFormat;
  const int64_t L = kFastLanes, R = A == 1 ? kFastRows : kFastRowsMulti;
  // Quantised activations (aT, saT); weights stored as codes with block
  // scales.
  bool scaled = g.format != WeightFormat::Plain;
  bool codes = scaled || g.dequantizeWeights;
  bool fp4 = g.format == WeightFormat::FP4;
  assert((A == 1 || !fp4) && "FP4 weights run one activation row at a time");
  // Where activation row i's element e and block scale j lie.
  auto aAt = [&](KernelBody &k, int64_t i, Value e) {
    return i == 0 ? e : k.addi(k.muli(k.idx(i), aStride), e);
  };
  auto saAt = [&](KernelBody &k, int64_t i, Value j) {
    return i == 0 ? j : k.addi(k.muli(k.idx(i), saStride), j);
  };
  Type f32 = k.b.getF32Type();
  auto vecF32 = [&](int64_t n) { return VectorType::get({n}, f32); };
  arith::FastMathFlags contract = arith::FastMathFlags::contract;
  auto fma = [&](KernelBody &k, Value x, Value y, Value acc) {
    Value p = arith::MulFOp::create(k.b, x, y, contract);
    return Value(arith::AddFOp::create(k.b, acc, p, contract));
  };
  Value zero = k.idx(0);
  Value zeroV = arith::ConstantOp::create(
      k.b, cast<TypedAttr>(k.b.getZeroAttr(vecF32(L))));
  // Elements per step: an FP4 slice, else L; a part that is not whole steps
  // is the last one (K), read past its end as zeros.
  const int64_t G = fp4 ? 32 : L;
  Value P = codes ? partSize(k, g) : g.K;
  Value nParts = codes ? partCount(k, g, P) : k.idx(1);
  bool permuted = fp4 && static_cast<bool>(g.permuteFP4);
  double fold = fp4 ? (permuted ? 1.0 : lowp::kE2M1HalfScale)
                    : (codes ? lowp::kE4M3HalfScale : 1.0);
  // The activations past K are zero for the tail step.
  for (int64_t i = 0; i < A; ++i)
    loop(k, g.K, k.addi(g.K, k.idx(L)), [&](KernelBody &k, Value e) {
      k.store(k.f32(0.0), s.aT, {aAt(k, i, e)});
    });
  // Pair dots (usesPairRow): FP4 slices and FP8 runs of W = 64 codes
  // decoded straight to bf16 (the FP8 values worth 2^-8 of the code's, as
  // through binary16, so a part's tail steps join the same sums), each
  // vdpbf16ps adding two exact products per lane. The row's activations
  // (FP8 values, exact in bf16) go to aT2 as bf16 pairs once: an FP4
  // slice's in element order, an FP8 run's in decodeE4M3BytesBF16's (its
  // half h, pair i: elements e4m3PairElement(h, 2i) and the next).
  const bool pairs = usesPairRow(g);
  // Activation row i's pairs at aT2[i * pairStride + e / 2].
  Value pairStride = k.ceilDivui(g.K, 2);
  auto pairAt = [&](KernelBody &k, int64_t i, Value at) {
    return i == 0 ? at : k.addi(k.muli(k.idx(i), pairStride), at);
  };
  const int64_t W = 4 * L;
  auto i8s = VectorType::get({W}, k.b.getI8Type());
  auto bf16s = VectorType::get({2 * L}, k.b.getBF16Type());
  auto dot = [&](KernelBody &k, Value acc, Value a, Value w) -> Value {
    return LLVM::CallOp::create(k.b, g.dotBF16, ValueRange{acc, a, w})
        .getResult();
  };
  auto loadPairs = [&](KernelBody &k, Value at) -> Value {
    return vector::BitCastOp::create(
        k.b, bf16s,
        vector::LoadOp::create(k.b, vecF32(L), s.aT2, ValueRange{at}));
  };
  if (pairs) {
    SmallVector<int64_t> order;
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t i = 0; i < L; ++i)
        order.push_back(lowp::e4m3PairElement(h, 2 * i) / 2);
    // (FP4: only an odd last slice; the whole runs of two follow.)
    const int64_t run = fp4 ? 32 : W;
    Value firstRun = fp4 ? k.muli(k.divui(g.K, k.idx(W)), k.idx(2)) : zero;
    for (int64_t i = 0; i < A; ++i)
      loop(k, firstRun, k.divui(g.K, k.idx(run)), [&](KernelBody &k, Value c) {
        Value e = k.muli(c, k.idx(run));
        SmallVector<Value> natural;
        for (int64_t q = 0; q < run / 32; ++q) {
          Value v = vector::LoadOp::create(
              k.b, vecF32(32), s.aT,
              ValueRange{aAt(k, i, k.addi(e, k.idx(32 * q)))});
          auto [even, odd] = evenOddHalves(k, v);
          natural.push_back(packBF16Pair(k, even, odd));
        }
        Value at = pairAt(k, i, k.divui(e, k.idx(2)));
        if (fp4) {
          vector::StoreOp::create(k.b, natural[0], s.aT2, ValueRange{at});
          return;
        }
        for (int64_t h = 0; h < 2; ++h)
          vector::StoreOp::create(k.b,
                                  vector::ShuffleOp::create(
                                      k.b, natural[0], natural[1],
                                      ArrayRef<int64_t>(order).slice(h * L, L)),
                                  s.aT2, ValueRange{k.addi(at, k.idx(h * L))});
      });
    // FP4 runs of two slices in decodeE2M1RunBF16's order: the first half
    // pairs elements 4i and 4i + 2, the second 4i + 1 and 4i + 3.
    if (fp4)
      loop(k, zero, k.divui(g.K, k.idx(W)), [&](KernelBody &k, Value c) {
        Value e = k.muli(c, k.idx(W));
        Value v0 = vector::LoadOp::create(k.b, vecF32(32), s.aT, ValueRange{e});
        Value v1 = vector::LoadOp::create(k.b, vecF32(32), s.aT,
                                          ValueRange{k.addi(e, k.idx(32))});
        auto every4 = [&](int64_t from) -> Value {
          SmallVector<int64_t> mask;
          for (int64_t i = 0; i < L; ++i)
            mask.push_back(4 * i + from);
          return vector::ShuffleOp::create(k.b, v0, v1, mask);
        };
        Value at = k.divui(e, k.idx(2));
        for (int64_t h = 0; h < 2; ++h)
          vector::StoreOp::create(k.b,
                                  packBF16Pair(k, every4(h), every4(h + 2)),
                                  s.aT2, ValueRange{k.addi(at, k.idx(h * L))});
      });
  }
  // FP4: slice j's scale is s_a * s_w * 2^14; s_a (times the 2^14) per
  // slice once, and each row group's s_w decoded kFastLanes at a time
  // (rowScales).
  Value stride = fp4 ? fastScaleStride(k, g) : Value();
  if (fp4)
    loop(k, zero, nParts, [&](KernelBody &k, Value j) {
      k.store(k.mulf(k.load(s.saT, {partActBlock(k, g, j)}), k.f32(fold)),
              s.sliceSa, {j});
    });
  auto rowScales = [&](KernelBody &k, ArrayRef<Value> rows) {
    storeRowScales(
        k, g, s, rows, stride, [&](KernelBody &k, Value j, Value sw) {
          Value sa =
              vector::LoadOp::create(k.b, vecF32(L), s.sliceSa, ValueRange{j});
          return k.mulf(sa, sw);
        });
  };
  // The rows kFastPrefetchRows ahead of the current ones (clamped to the
  // last), set per row group.
  SmallVector<Value> ahead;
  auto prefetch = [&](KernelBody &k, Value col) {
    for (Value n : ahead) {
      auto [m, ix] = g.weightRef(k, n, col);
      memref::PrefetchOp::create(k.b, m, ix, /*isWrite=*/false,
                                 /*localityHint=*/3, /*isDataCache=*/true);
    }
  };
  // The products of the step at e, added to the rows' lane sums p.
  auto step = [&](KernelBody &k, ArrayRef<Value> rows, Value e, ValueRange p,
                  bool inBounds) {
    SmallVector<Value> next;
    if (fp4 && pairs) {
      Value col = k.divui(e, k.idx(2));
      Value a = loadPairs(k, col);
      prefetch(k, col);
      for (int64_t r = 0; r < R; ++r) {
        auto [m, ix] = g.weightRef(k, rows[r], col);
        Value w = lowp::decodeE2M1BytesBF16(k.b, readVector(k, m, ix, 16, true),
                                            g.pairDecoders);
        next.push_back(dot(k, p[r], a, w));
      }
      return next;
    }
    if (fp4) {
      Value a = vector::LoadOp::create(k.b, vecF32(32), s.aT, ValueRange{e});
      auto [aEven, aOdd] = evenOddHalves(k, a);
      Value col = k.divui(e, k.idx(2));
      prefetch(k, col);
      for (int64_t r = 0; r < R; ++r) {
        auto [m, ix] = g.weightRef(k, rows[r], col);
        Value bytes = readVector(k, m, ix, 16, true);
        auto [lo, hi] =
            permuted ? lowp::decodeE2M1BytesPermuted(k.b, bytes, g.permuteFP4)
                     : fp4SliceHalves(k, bytes);
        next.push_back(fma(k, hi, aOdd, fma(k, lo, aEven, p[r])));
      }
      return next;
    }
    SmallVector<Value> a;
    for (int64_t i = 0; i < A; ++i)
      a.push_back(vector::LoadOp::create(k.b, vecF32(L), s.aT,
                                         ValueRange{aAt(k, i, e)}));
    if (inBounds)
      prefetch(k, e);
    for (int64_t r = 0; r < R; ++r) {
      auto [m, ix] = g.weightRef(k, rows[r], e);
      Value raw = readVector(k, m, ix, L, inBounds);
      Value w;
      if (codes)
        w = lowp::halfToF32(k.b, lowp::e4m3HalfBits(k.b, raw));
      else if (cast<VectorType>(raw.getType()).getElementType().isF32())
        w = raw;
      else
        w = arith::ExtFOp::create(k.b, vecF32(L), raw);
      for (int64_t i = 0; i < A; ++i)
        next.push_back(fma(k, w, a[i], p[r * A + i]));
    }
    return next;
  };
  // One activation row of FP8 codes: in whole runs of W = 4 steps the codes
  // decode in three operations (e4m3HalfBitsFinite) and each row's NaN
  // codes are found once per run: the minimum of the runs' probes
  // (e4m3NaNProbe, one vector<W x i8> per weight row, carried with the
  // sums) is zero when the row read one, and its sum is then NaN, as the
  // products' would be.
  const bool wide = codes && !fp4 && A == 1 && !pairs;
  // A run of W FP8 codes of each row by two pair dots; each decoded run
  // serves the A activation rows.
  auto pairStep = [&](KernelBody &k, ArrayRef<Value> rows, Value e,
                      ValueRange p) {
    SmallVector<Value> a0, a1;
    for (int64_t i = 0; i < A; ++i) {
      Value at = pairAt(k, i, k.divui(e, k.idx(2)));
      a0.push_back(loadPairs(k, at));
      a1.push_back(loadPairs(k, k.addi(at, k.idx(L))));
    }
    prefetch(k, e);
    SmallVector<Value> next;
    for (int64_t r = 0; r < R; ++r) {
      auto [m, ix] = g.weightRef(k, rows[r], e);
      auto [w0, w1] = lowp::decodeE4M3BytesBF16(
          k.b, vector::LoadOp::create(k.b, i8s, m, ix), g.pairDecoders);
      for (int64_t i = 0; i < A; ++i)
        next.push_back(dot(k, dot(k, p[r * A + i], a0[i], w0), a1[i], w1));
    }
    return next;
  };
  // FP4 slices 2q and 2q + 1 of each row (32 bytes) by two pair dots
  // (decodeE2M1RunBF16: lanes 0-7 hold slice 2q's products, 8-15 the
  // next's), each lane's sum scaled by its slice's s_a s_w into acc.
  auto slicePairStep = [&](KernelBody &k, ArrayRef<Value> rows, Value q,
                           ValueRange acc) {
    Value e = k.muli(q, k.idx(W)), col = k.muli(q, k.idx(W / 2));
    Value at = k.divui(e, k.idx(2));
    Value a0 = loadPairs(k, at), a1 = loadPairs(k, k.addi(at, k.idx(L)));
    prefetch(k, col);
    SmallVector<int64_t> spread;
    for (int64_t i = 0; i < L; ++i)
      spread.push_back(i < L / 2 ? 0 : 1);
    SmallVector<Value> next;
    for (int64_t r = 0; r < R; ++r) {
      auto [m, ix] = g.weightRef(k, rows[r], col);
      auto [w0, w1] = lowp::decodeE2M1RunBF16(
          k.b,
          vector::LoadOp::create(k.b, VectorType::get({W / 2}, k.b.getI8Type()),
                                 m, ix),
          g.pairDecoders);
      Value p = dot(k, dot(k, zeroV, a0, w0), a1, w1);
      Value two = vector::LoadOp::create(
          k.b, vecF32(2), s.rowScale,
          ValueRange{k.addi(k.muli(k.idx(r), stride), k.muli(q, k.idx(2)))});
      next.push_back(
          fma(k, p, vector::ShuffleOp::create(k.b, two, two, spread), acc[r]));
    }
    return next;
  };
  auto wideStep = [&](KernelBody &k, ArrayRef<Value> rows, Value e,
                      ValueRange p, ValueRange probes) {
    SmallVector<Value> a;
    for (int64_t q = 0; q < 4; ++q)
      a.push_back(vector::LoadOp::create(k.b, vecF32(L), s.aT,
                                         ValueRange{k.addi(e, k.idx(q * L))}));
    prefetch(k, e);
    SmallVector<Value> next, nextProbes;
    for (int64_t r = 0; r < R; ++r) {
      auto [m, ix] = g.weightRef(k, rows[r], e);
      Value run = vector::LoadOp::create(k.b, i8s, m, ix);
      nextProbes.push_back(
          arith::MinUIOp::create(k.b, probes[r], lowp::e4m3NaNProbe(k.b, run)));
      // Each step's codes loaded again (a load, not a lane extraction).
      Value sum = p[r];
      for (int64_t q = 0; q < 4; ++q) {
        auto [mq, ixq] = g.weightRef(k, rows[r], k.addi(e, k.idx(q * L)));
        Value codes16 = readVector(k, mq, ixq, L, true);
        Value w = lowp::halfToF32(k.b, lowp::e4m3HalfBitsFinite(k.b, codes16));
        sum = fma(k, w, a[q], sum);
      }
      next.push_back(sum);
    }
    next.append(nextProbes);
    return next;
  };
  Value noProbe =
      wide ? arith::ConstantOp::create(
                 k.b, DenseElementsAttr::get(i8s, k.b.getI8IntegerAttr(-1)))
           : Value();
  scf::ForOp::create(
      k.b, n0, n1, k.idx(R), ValueRange(),
      [&](OpBuilder &nb, Location loc, Value fb, ValueRange) {
        ImplicitLocOpBuilder ib(loc, nb);
        KernelBody k{ib};
        // Rows fb + r (past n1: the last row again, its sum not stored).
        SmallVector<Value> rows;
        ahead.clear();
        for (int64_t r = 0; r < R; ++r) {
          rows.push_back(k.minui(k.addi(fb, k.idx(r)), k.subi(n1, k.idx(1))));
          ahead.push_back(k.minui(k.addi(fb, k.idx(kFastPrefetchRows + r)),
                                  k.subi(g.N, k.idx(1))));
        }
        if (fp4)
          rowScales(k, rows);
        SmallVector<Value> init(R * A, zeroV);
        SmallVector<Value> carried(init);
        if (wide)
          carried.append(R, noProbe);
        auto partBody = [&](KernelBody &k, Value j,
                            ValueRange accAll) -> SmallVector<Value> {
          ValueRange acc = accAll.take_front(R * A);
          SmallVector<Value> probes(accAll.drop_front(R * A));
          Value e0 = k.muli(j, P), e1 = k.minui(k.addi(e0, P), g.K);
          Value span = k.subi(e1, e0);
          SmallVector<Value> p(codes ? init : SmallVector<Value>(acc));
          Value stepsFrom = zero;
          if (wide) {
            Value runs = k.divui(span, k.idx(W));
            SmallVector<Value> pp(p);
            pp.append(probes);
            pp = reduce(
                k, zero, runs, pp, [&](KernelBody &k, Value q, ValueRange pp) {
                  return wideStep(k, rows, k.addi(e0, k.muli(q, k.idx(W))),
                                  pp.take_front(R), pp.drop_front(R));
                });
            p.assign(pp.begin(), pp.begin() + R);
            probes.assign(pp.begin() + R, pp.end());
            stepsFrom = k.muli(runs, k.idx(W / G));
          } else if (pairs && !fp4) {
            Value runs = k.divui(span, k.idx(W));
            p = reduce(
                k, zero, runs, p, [&](KernelBody &k, Value q, ValueRange p) {
                  return pairStep(k, rows, k.addi(e0, k.muli(q, k.idx(W))), p);
                });
            stepsFrom = k.muli(runs, k.idx(W / G));
          }
          p = reduce(k, stepsFrom, k.divui(span, k.idx(G)), p,
                     [&](KernelBody &k, Value q, ValueRange p) {
                       return step(k, rows, k.addi(e0, k.muli(q, k.idx(G))), p,
                                   true);
                     });
          if (!fp4)
            p = reduce(k, k.divui(span, k.idx(G)), k.ceilDivui(span, G), p,
                       [&](KernelBody &k, Value q, ValueRange p) {
                         return step(k, rows, k.addi(e0, k.muli(q, k.idx(G))),
                                     p, false);
                       });
          if (!codes)
            return p;
          SmallVector<Value> next;
          auto withProbes = [&](SmallVector<Value> v) {
            v.append(probes);
            return v;
          };
          if (fp4) {
            for (int64_t r = 0; r < R; ++r) {
              Value sc =
                  k.load(s.rowScale, {k.addi(k.muli(k.idx(r), stride), j)});
              next.push_back(fma(k, p[r], splat(k, sc, L), acc[r]));
            }
            return next;
          }
          SmallVector<Value> sa;
          for (int64_t i = 0; i < A; ++i)
            sa.push_back(
                scaled
                    ? k.mulf(k.load(s.saT, {saAt(k, i, partActBlock(k, g, j))}),
                             k.f32(fold))
                    : k.f32(fold));
          for (int64_t r = 0; r < R; ++r) {
            Value sw = lowp::decodeE8M0(k.b, scaleCode(k, g, rows[r], j));
            for (int64_t i = 0; i < A; ++i) {
              Value sc = k.mulf(sa[i], sw);
              next.push_back(
                  fma(k, p[r * A + i], splat(k, sc, L), acc[r * A + i]));
            }
          }
          return withProbes(std::move(next));
        };
        // FP4 pair dots: whole pairs of slices first (slicePairStep), then
        // a last odd slice as a part of its own.
        SmallVector<Value> sumsAndProbes(carried);
        Value partsFrom = zero;
        if (fp4 && pairs) {
          Value twos = k.divui(nParts, k.idx(2));
          sumsAndProbes = reduce(k, zero, twos, carried,
                                 [&](KernelBody &k, Value q, ValueRange acc) {
                                   return slicePairStep(k, rows, q, acc);
                                 });
          partsFrom = k.muli(twos, k.idx(2));
        }
        sumsAndProbes = reduce(k, partsFrom, nParts, sumsAndProbes, partBody);
        ValueRange sums = ValueRange(sumsAndProbes).take_front(R * A);
        for (int64_t r = 0; r < R; ++r) {
          Value n = k.addi(fb, k.idx(r));
          for (int64_t i = 0; i < A; ++i) {
            Value y = k.laneSum(sums[r * A + i]);
            if (wide) {
              Value least = vector::ReductionOp::create(
                  k.b, vector::CombiningKind::MINUI, sumsAndProbes[R + r]);
              Value nanCode = arith::CmpIOp::create(
                  k.b, arith::CmpIPredicate::eq, least,
                  arith::ConstantOp::create(k.b, k.b.getI8IntegerAttr(0)));
              y = k.select(
                  nanCode,
                  arith::ConstantOp::create(
                      k.b, k.b.getF32FloatAttr(
                               std::numeric_limits<float>::quiet_NaN())),
                  y);
            }
            Value row = i == 0 ? ra : k.addi(ra, k.idx(i));
            Value stored = k.cmpi(arith::CmpIPredicate::ult, n, n1);
            if (i > 0)
              stored = arith::AndIOp::create(
                  k.b, stored, k.cmpi(arith::CmpIPredicate::ult, row, rb));
            ifThen(k, stored, [&](KernelBody &k) { g.store(k, row, n, y); });
          }
        }
        scf::YieldOp::create(ib);
      });
}

/// Activation row r FP8 quantised (quantizeActFP8) into qa (or `into`, a
/// K-element view), its block scales into sa.
void quantizeActRow(KernelBody &k, const TileGemm &g, const TileGemmScratch &s,
                    Value r, Value into = Value()) {
  quantizeActFP8(
      k.b,
      [&](ImplicitLocOpBuilder &eb, Value e) {
        KernelBody ek{eb};
        return g.act(ek, r, e);
      },
      g.K, g.blk, into ? into : s.qa, s.sa, g.quantize);
}

/// Activation row r into aT at aAt(e), FP8 quantised when the weights are
/// scaled (quantizeActFP8), with its block scales into saT at saAt(j).
void fillActRow(KernelBody &k, const TileGemm &g, const TileGemmScratch &s,
                Value r, function_ref<Value(KernelBody &, Value)> aAt,
                function_ref<Value(KernelBody &, Value)> saAt) {
  Value zero = k.idx(0);
  if (g.format == lowp::WeightFormat::Plain) {
    loop(k, zero, g.K, [&](KernelBody &k, Value e) {
      k.store(g.act(k, r, e), s.aT, {aAt(k, e)});
    });
    return;
  }
  quantizeActRow(k, g, s, r);
  loop(k, zero, g.K, [&](KernelBody &k, Value e) {
    k.store(k.load(s.qa, {e}), s.aT, {aAt(k, e)});
  });
  loop(k, zero, k.ceilDivui(g.K, g.blk), [&](KernelBody &k, Value j) {
    k.store(k.load(s.sa, {j}), s.saT, {saAt(k, j)});
  });
}

/// Rows [ra, rb) (2 to kFastActRows of them; FP8 or Plain weights) by
/// gemmRowFast with A = kFastActRows: each row's activations (FP8 quantised
/// when scaled) at aT[i * (K + kFastLanes) + e], its block scales at saT[i *
/// blocks + j]; a row past rb repeats the last one (not stored).
void gemmRowsFastPass(KernelBody &k, const TileGemm &g,
                      const TileGemmScratch &s, Value ra, Value rb, Value n0,
                      Value n1) {
  Value aStride = k.addi(g.K, k.idx(kFastLanes));
  Value nBlocks = k.ceilDivui(g.K, g.blk);
  for (int64_t i = 0; i < kFastActRows; ++i) {
    Value r = k.minui(k.addi(ra, k.idx(i)), k.subi(rb, k.idx(1)));
    Value base = k.muli(k.idx(i), aStride), sBase = k.muli(k.idx(i), nBlocks);
    fillActRow(
        k, g, s, r, [&](KernelBody &k, Value e) { return k.addi(base, e); },
        [&](KernelBody &k, Value j) { return k.addi(sBase, j); });
  }
  scf::ForOp::create(k.b, n0, n1, k.idx(kGemmChunk), ValueRange(),
                     [&](OpBuilder &nb, Location loc, Value c0, ValueRange) {
                       ImplicitLocOpBuilder ib(loc, nb);
                       KernelBody ck{ib};
                       Value c1 = ck.minui(ck.addi(c0, ck.idx(kGemmChunk)), n1);
                       gemmRowFast(ck, g, s, ra, rb, c0, c1, kFastActRows,
                                   aStride, nBlocks);
                       scf::YieldOp::create(ib);
                     });
}

/// Rows [ra, rb) (2 to A <= kFastActRowsFP4 of them) of FP4 weights with fast
/// sums: each row's activations dequantised (FP8 code times its block
/// scale, exact) and, per 32-slice, its even then its odd elements at aT[i
/// * K + 32 s + 16 h + j] (element 32 s + 2 j + h; two shuffles of the
/// slice's 32 values); each weight row's slice scales s_w are decoded 16 at
/// a time (rowScale) before its slices, and per weight row and slice the
/// 16-byte slice is decoded once into its low and high nibbles' values
/// times the slice's s_w (on x86-64-v4 by two vpermps from the
/// e2m1 table times s_w; else through binary16), and every row adds both
/// against its halves with fused multiply-adds into 16 lane sums; on
/// x86-64-v4 two weight rows at a time share each activation load. No
/// per-part scaling: the products are those of the block-scaled dot, summed
/// in another order. A row past rb repeats the last one (not stored). With
/// TileGemm::dotBF16 (quantised activations) the slice's activations are
/// stored as 16 bf16 pairs instead (aT[i * K + 32 s + j]: elements 32 s +
/// 2 j and 2 j + 1), each weight row's decoded halves are packed likewise,
/// and one vdpbf16ps per row adds both (exact values in bf16 unless a scale
/// makes them subnormal in f32, which vdpbf16ps reads as zero).
void gemmRowsFastFP4Pass(KernelBody &k, const TileGemm &g,
                         const TileGemmScratch &s, Value ra, Value rb, Value n0,
                         Value n1, int64_t A) {
  const int64_t L = kFastLanes;
  Type f32 = k.b.getF32Type();
  auto vecF32 = VectorType::get({L}, f32);
  arith::FastMathFlags contract = arith::FastMathFlags::contract;
  Value zero = k.idx(0);
  Value blkV = k.idx(g.blk);
  // With pair dots (TileGemm::dotBF16; the dequantised activations and the
  // decoded weights are exact in bf16) a slice's activations are 16 bf16
  // pairs at aT[i * K + 32 s], and each row adds both halves by one
  // vdpbf16ps.
  const bool dots = usesDotBF16(g, g.tileLanes);
  auto bf16s = VectorType::get({2 * L}, k.b.getBF16Type());
  for (int64_t i = 0; i < A; ++i) {
    Value r = k.minui(k.addi(ra, k.idx(i)), k.subi(rb, k.idx(1)));
    quantizeActRow(k, g, s, r);
    Value base = k.muli(k.idx(i), g.K);
    loop(k, zero, k.divui(g.K, k.idx(32)), [&](KernelBody &k, Value j) {
      Value e0 = k.muli(j, k.idx(32));
      Value v = k.mulf(vector::LoadOp::create(k.b, VectorType::get({32}, f32),
                                              s.qa, ValueRange{e0}),
                       splat(k, k.load(s.sa, {k.divui(e0, blkV)}), 32));
      Value at = k.addi(base, e0);
      auto [even, odd] = evenOddHalves(k, v);
      if (dots) {
        vector::StoreOp::create(k.b, packBF16Pair(k, even, odd), s.aT,
                                ValueRange{at});
        return;
      }
      vector::StoreOp::create(k.b, even, s.aT, ValueRange{at});
      vector::StoreOp::create(k.b, odd, s.aT,
                              ValueRange{k.addi(at, k.idx(16))});
    });
  }
  Value zeroV =
      arith::ConstantOp::create(k.b, cast<TypedAttr>(k.b.getZeroAttr(vecF32)));
  Value slices = k.divui(g.K, k.idx(32));
  Value stride = fastScaleStride(k, g);
  // R weight rows at a time share each activation load (x86-64-v4: the R x
  // A lane sums, 2 x 8, and the decoded slices fit the 32 registers).
  const int64_t R = g.tileLanes == 16 ? 2 : 1;
  scf::ForOp::create(
      k.b, n0, n1, k.idx(R), ValueRange(),
      [&](OpBuilder &nb, Location loc, Value nb0, ValueRange) {
        ImplicitLocOpBuilder ib(loc, nb);
        KernelBody k{ib};
        // Rows nb0 + r (past n1: the last row again, its sums not stored).
        SmallVector<Value> rows, ahead;
        for (int64_t r = 0; r < R; ++r) {
          rows.push_back(k.minui(k.addi(nb0, k.idx(r)), k.subi(n1, k.idx(1))));
          ahead.push_back(k.minui(k.addi(rows.back(), k.idx(kFastPrefetchRows)),
                                  k.subi(g.N, k.idx(1))));
        }
        // Each row's slice scales s_w (times the 2^14 of the half decoding
        // unless permuted), decoded L codes at a time into rowScale[r *
        // stride + j] before its slices run.
        storeRowScales(
            k, g, s, rows, stride, [&](KernelBody &k, Value, Value sw) {
              return g.permuteFP4
                         ? sw
                         : k.mulf(sw, splat(k, k.f32(lowp::kE2M1HalfScale), L));
            });
        SmallVector<Value> sums = reduce(
            k, zero, slices, SmallVector<Value>(R * A, zeroV),
            [&](KernelBody &k, Value j, ValueRange acc) -> SmallVector<Value> {
              Value col = k.muli(j, k.idx(16));
              SmallVector<Value> lo(R), hi(R);
              for (int64_t r = 0; r < R; ++r) {
                auto [pm, pix] = g.weightRef(k, ahead[r], col);
                memref::PrefetchOp::create(k.b, pm, pix, /*isWrite=*/false,
                                           /*localityHint=*/3,
                                           /*isDataCache=*/true);
                auto [m, ix] = g.weightRef(k, rows[r], col);
                Value bytes = readVector(k, m, ix, 16, true);
                Value sw =
                    k.load(s.rowScale, {k.addi(k.muli(k.idx(r), stride), j)});
                if (g.permuteFP4) {
                  std::tie(lo[r], hi[r]) = lowp::decodeE2M1BytesPermuted(
                      k.b, bytes, g.permuteFP4, sw);
                } else {
                  std::tie(lo[r], hi[r]) = fp4SliceHalves(k, bytes);
                  Value sc = splat(k, sw, L);
                  lo[r] = k.mulf(lo[r], sc);
                  hi[r] = k.mulf(hi[r], sc);
                }
              }
              SmallVector<Value> next(R * A);
              if (dots) {
                SmallVector<Value> w(R);
                for (int64_t r = 0; r < R; ++r)
                  w[r] = vector::BitCastOp::create(
                      k.b, bf16s, packBF16Pair(k, lo[r], hi[r]));
                for (int64_t i = 0; i < A; ++i) {
                  Value a = vector::BitCastOp::create(
                      k.b, bf16s,
                      vector::LoadOp::create(
                          k.b, vecF32, s.aT,
                          ValueRange{k.addi(k.muli(k.idx(i), g.K),
                                            k.muli(j, k.idx(32)))}));
                  for (int64_t r = 0; r < R; ++r)
                    next[r * A + i] =
                        LLVM::CallOp::create(
                            k.b, g.dotBF16, ValueRange{acc[r * A + i], a, w[r]})
                            .getResult();
                }
                return next;
              }
              for (int64_t i = 0; i < A; ++i) {
                Value at = k.addi(k.muli(k.idx(i), g.K), k.muli(j, k.idx(32)));
                Value aLo =
                    vector::LoadOp::create(k.b, vecF32, s.aT, ValueRange{at});
                Value aHi = vector::LoadOp::create(
                    k.b, vecF32, s.aT, ValueRange{k.addi(at, k.idx(16))});
                for (int64_t r = 0; r < R; ++r) {
                  Value p = arith::AddFOp::create(
                      k.b, acc[r * A + i],
                      arith::MulFOp::create(k.b, lo[r], aLo, contract),
                      contract);
                  next[r * A + i] = arith::AddFOp::create(
                      k.b, p, arith::MulFOp::create(k.b, hi[r], aHi, contract),
                      contract);
                }
              }
              return next;
            });
        for (int64_t r = 0; r < R; ++r) {
          Value n = k.addi(nb0, k.idx(r));
          for (int64_t i = 0; i < A; ++i) {
            Value y = k.laneSum(sums[r * A + i]);
            Value row = k.addi(ra, k.idx(i));
            Value stored = arith::AndIOp::create(
                k.b, k.cmpi(arith::CmpIPredicate::ult, row, rb),
                k.cmpi(arith::CmpIPredicate::ult, n, n1));
            ifThen(k, stored, [&](KernelBody &k) { g.store(k, row, n, y); });
          }
        }
        scf::YieldOp::create(ib);
      });
}

/// The activations of a pair-dot tile (rows ra + [0, cnt), T of them, a
/// multiple of 16) as bf16 pairs in aT2[q * T + i] (scaled weights: the
/// quantised activations, their block scales in saT[j * T + i]; Plain: the
/// activations as they are, exact in bf16); rows past cnt are zero. Each
/// row is quantised (Plain: copied) in place at aT[i * K + e] (row-major),
/// then each 16 rows x 32 elements go to aT2 through registers: the pairs
/// of a row
/// are its values' high halves in order (every value is exact in bf16), 16
/// rows of 16 pairs are transposed (transposeSquare) and stored as 16 lane
/// vectors, instead of K strided stores per row. A last odd element pairs
/// with +0.
void fillPairTile(KernelBody &k, const TileGemm &g, const TileGemmScratch &s,
                  Value ra, Value cnt, int64_t T) {
  constexpr int64_t L = 16;
  Type f32 = k.b.getF32Type(), i32 = k.b.getI32Type(),
       i16 = k.b.getIntegerType(16);
  Value zero = k.idx(0), TV = k.idx(T);
  Value nBlocks = k.ceilDivui(g.K, g.blk);
  const bool plain = g.format == lowp::WeightFormat::Plain;
  // Whole-K FP4 tiles take the codes times their scales (no saT).
  const bool dequantise = usesWholeFP4Tile(g);
  loop(k, zero, TV, [&](KernelBody &k, Value i) {
    Value row = k.muli(i, g.K);
    ifElse(
        k, k.cmpi(arith::CmpIPredicate::ult, i, cnt),
        [&](KernelBody &k) {
          if (plain) {
            Value r = k.addi(ra, i);
            loop(k, zero, g.K, [&](KernelBody &k, Value e) {
              k.store(g.act(k, r, e), s.aT, {k.addi(row, e)});
            });
            return;
          }
          // Quantised in place in its row of aT.
          Value rowView = memref::SubViewOp::create(
              k.b, s.aT, ArrayRef<OpFoldResult>{row},
              ArrayRef<OpFoldResult>{g.K},
              ArrayRef<OpFoldResult>{k.b.getIndexAttr(1)});
          quantizeActRow(k, g, s, k.addi(ra, i), rowView);
          if (dequantise) {
            // Each code times its block's scale (exact), 16 at a time.
            loop(k, zero, k.divui(g.K, k.idx(L)), [&](KernelBody &k, Value q) {
              Value e = k.muli(q, k.idx(L));
              Value at = k.addi(row, e);
              Value v = vector::LoadOp::create(k.b, VectorType::get({L}, f32),
                                               s.aT, ValueRange{at});
              Value sa = k.load(s.sa, {k.divui(e, k.idx(g.blk))});
              vector::StoreOp::create(k.b, k.mulf(v, splat(k, sa, L)), s.aT,
                                      ValueRange{at});
            });
            return;
          }
          loop(k, zero, nBlocks, [&](KernelBody &k, Value j) {
            k.store(k.load(s.sa, {j}), s.saT, {k.addi(k.muli(j, TV), i)});
          });
        },
        [&](KernelBody &k) {
          loop(k, zero, g.K, [&](KernelBody &k, Value e) {
            k.store(k.f32(0.0), s.aT, {k.addi(row, e)});
          });
          if (!plain && !dequantise)
            loop(k, zero, nBlocks, [&](KernelBody &k, Value j) {
              k.store(k.f32(0.0), s.saT, {k.addi(k.muli(j, TV), i)});
            });
        });
  });
  // Whole blocks of 16 pairs (32 elements) through the transpose.
  Value whole = k.divui(g.K, k.idx(2 * L));
  auto v32i32 = VectorType::get({2 * L}, i32);
  auto v32i16 = VectorType::get({2 * L}, i16);
  auto v16i32 = VectorType::get({L}, i32);
  auto v16f32 = VectorType::get({L}, f32);
  Value sixteen = arith::ConstantOp::create(
      k.b, DenseElementsAttr::get(v32i32, k.b.getI32IntegerAttr(16)));
  for (int64_t grp = 0; grp < T / L; ++grp)
    loop(k, zero, whole, [&](KernelBody &k, Value qb) {
      SmallVector<Value> rows;
      for (int64_t r = 0; r < L; ++r) {
        Value at =
            k.addi(k.muli(k.idx(grp * L + r), g.K), k.muli(qb, k.idx(2 * L)));
        Value v = vector::LoadOp::create(k.b, VectorType::get({2 * L}, f32),
                                         s.aT, ValueRange{at});
        Value hiHalves = arith::TruncIOp::create(
            k.b, v32i16,
            arith::ShRUIOp::create(
                k.b, arith::BitcastOp::create(k.b, v32i32, v), sixteen));
        rows.push_back(vector::BitCastOp::create(k.b, v16i32, hiHalves));
      }
      SmallVector<Value> cols = transposeSquare(k.b, rows);
      for (int64_t q = 0; q < L; ++q)
        vector::StoreOp::create(
            k.b, arith::BitcastOp::create(k.b, v16f32, cols[q]), s.aT2,
            ValueRange{
                k.addi(k.muli(k.addi(k.muli(qb, k.idx(L)), k.idx(q)), TV),
                       k.idx(grp * L))});
    });
  // The pairs past them, row by row.
  loop(k, k.muli(whole, k.idx(L)), k.ceilDivui(g.K, 2),
       [&](KernelBody &k, Value q) {
         Value e = k.muli(q, k.idx(2));
         Value odd = k.addi(e, k.idx(1));
         Value hasOdd = k.cmpi(arith::CmpIPredicate::ult, odd, g.K);
         Value oddAt = k.minui(odd, k.subi(g.K, k.idx(1)));
         loop(k, zero, TV, [&](KernelBody &k, Value i) {
           Value row = k.muli(i, g.K);
           Value lo = k.load(s.aT, {k.addi(row, e)});
           Value hi =
               k.select(hasOdd, k.load(s.aT, {k.addi(row, oddAt)}), k.f32(0.0));
           k.store(packBF16Pair(k, lo, hi), s.aT2, {k.addi(k.muli(q, TV), i)});
         });
       });
}

/// One pass of the tiled GEMM: rows [ra, rb) (at most lanes * vecs) in
/// `vecs` groups of `lanes` lanes, `feats` weight rows at a time.
void gemmPass(KernelBody &k, const TileGemm &g, const TileGemmScratch &s,
              Value ra, Value rb, Value n0, Value n1, int64_t lanes,
              int64_t vecs, int64_t feats) {
  const int64_t T = lanes * vecs;
  bool scaled = g.format != lowp::WeightFormat::Plain;
  Value zero = k.idx(0), TV = k.idx(T);
  Value cnt = k.subi(rb, ra);
  Value nBlocks = k.ceilDivui(g.K, g.blk);
  // With bf16 pair dots the tile's activations go to aT2 as pairs
  // (fillPairTile); otherwise, transposed: aT[e * T + i] is row ra + i
  // (FP8 quantised when scaled, with its block scales in saT); rows past
  // the tile are zero and never stored.
  bool dots = T > 1 && usesDotBF16(g, lanes);
  if (dots) {
    fillPairTile(k, g, s, ra, cnt, T);
  } else {
    loop(k, zero, TV, [&](KernelBody &k, Value i) {
      Value r = k.addi(ra, i);
      auto fill = [&](KernelBody &k) {
        fillActRow(
            k, g, s, r,
            [&](KernelBody &k, Value e) { return k.addi(k.muli(e, TV), i); },
            [&](KernelBody &k, Value j) { return k.addi(k.muli(j, TV), i); });
      };
      if (T == 1)
        return fill(k);
      ifElse(k, k.cmpi(arith::CmpIPredicate::ult, i, cnt), fill,
             [&](KernelBody &k) {
               loop(k, zero, g.K, [&](KernelBody &k, Value e) {
                 k.store(k.f32(0.0), s.aT, {k.addi(k.muli(e, TV), i)});
               });
               if (scaled)
                 loop(k, zero, nBlocks, [&](KernelBody &k, Value j) {
                   k.store(k.f32(0.0), s.saT, {k.addi(k.muli(j, TV), i)});
                 });
             });
    });
  }
  // The tile against the features, in chunks that fit acc.
  scf::ForOp::create(k.b, n0, n1, k.idx(kGemmChunk), ValueRange(),
                     [&](OpBuilder &nb, Location loc, Value c0, ValueRange) {
                       ImplicitLocOpBuilder ib(loc, nb);
                       KernelBody ck{ib};
                       Value c1 = ck.minui(ck.addi(c0, ck.idx(kGemmChunk)), n1);
                       if (T == 1 && usesFastRow(g))
                         gemmRowFast(ck, g, s, ra, rb, c0, c1);
                       else if (T == 1)
                         gemmRowChunk(ck, g, s, ra, c0, c1);
                       else
                         gemmChunk(ck, g, s, ra, cnt, c0, c1, lanes, vecs,
                                   feats, dots);
                       scf::YieldOp::create(ib);
                     });
}

/// Weight rows a kGemmRowTile-row tile runs at once: 6 on x86-64-v4 (12 lane
/// sums of 16 rows, the 2 activation vectors and a broadcast weight: 15 of
/// the 32 registers; each step's 8 loads feed 12 FMAs, against 6 and 8 with
/// 4 rows: mid-size prefill 3-5% faster; 8 rows measured no better than 6),
/// else 2 (the 4 x 8-lane vectors of 2 rows and the tile's activations fill
/// the 16). The numbers are the same either way; gemmChunk's wdec holds 8
/// rows.
int64_t bigTileFeatures(const TileGemm &g) { return g.tileLanes == 16 ? 6 : 2; }

} // namespace

TileGemmScratch allocTileGemm(KernelBody &k, const TileGemm &g) {
  TileGemmScratch s;
  bool scaled = g.format != lowp::WeightFormat::Plain;
  Value nBlocks = k.ceilDivui(g.K, g.blk);
  // (gemmRowsFastPass: kFastActRows rows of K + kFastLanes.)
  s.aT = k.scratchF32(k.addi(k.muli(g.K, k.idx(kGemmRowTile)),
                             k.idx(kFastActRows * kFastLanes)));
  s.acc = k.scratchF32(k.idx((kGemmChunk + 1) * kGemmRowTile));
  if (g.tileLanes == 16)
    s.accT = k.scratchF32(k.idx(kGemmChunk * kGemmRowTile));
  // gemmChunk decodes 8 weight rows of a part at a time (wdec),
  // gemmRowChunk kRowFeatures (wrow).
  s.wdec = k.scratchF32(k.muli(partSize(k, g), k.idx(8)));
  if (usesDotBF16(g, g.tileLanes)) {
    s.aT2 = k.scratchF32(k.muli(k.ceilDivui(g.K, 2), k.idx(kGemmRowTile)));
    s.wdec2 = k.scratchF32(
        k.muli(pairRowStride(k, usesWholeFP4Tile(g) ? g.K : partSize(k, g)),
               k.idx(8)));
  }
  s.wrow = k.scratchF32(k.muli(rowPartSize(k, g), k.idx(kRowFeatures)));
  if (scaled) {
    s.saT = k.scratchF32(k.muli(nBlocks, k.idx(kGemmRowTile)));
    s.qa = k.scratchF32(g.K);
    s.sa = k.scratchF32(nBlocks);
    s.sdec = k.scratchF32(k.idx(kRowFeatures));
  }
  if (usesFastRow(g) && g.format == lowp::WeightFormat::FP4) {
    Value stride = fastScaleStride(k, g);
    s.sliceSa = k.scratchF32(stride);
    s.rowScale = k.scratchF32(k.muli(stride, k.idx(kFastRows)));
  }
  return s;
}

void tileGemm(KernelBody &k, const TileGemm &g, const TileGemmScratch &s,
              Value r0, Value r1, Value n0, Value n1) {
  // Tiles of kGemmRowTile rows in 4 x 8 lanes (2 x 16 on x86-64-v4:
  // g.tileLanes) against bigTileFeatures weight rows at a time while at
  // least 24 rows remain (a tile's weight part is decoded once for all its
  // lanes); the rest (an expert's few rows) in tiles of 8 lanes against 4
  // weight rows at a time, so that fewer than 24 rows do not pay for 32 lanes;
  // a last single row in the one-row pass (decode: gemmRowFast or
  // gemmRowChunk). Each row's numbers are the same in any tile. With fast sums
  // a tile of 2 to kFastActRows rows of FP8 or Plain weights (the MTP
  // projection's 4 lanes of a decode token) takes gemmRowsFastPass instead (its
  // rows share each decoded weight vector, and each row's numbers are those of
  // gemmRowFast), and one of 2 to kFastActRowsFP4 rows of FP4 weights (an
  // expert's rows in a prefill chunk) gemmRowsFastFP4Pass.
  Value rows = k.subi(r1, r0);
  Value big =
      k.divui(k.addi(rows, k.idx(kGemmRowTile - 24)), k.idx(kGemmRowTile));
  Value bigEnd = k.minui(k.addi(r0, k.muli(big, k.idx(kGemmRowTile))), r1);
  scf::ForOp::create(k.b, r0, bigEnd, k.idx(kGemmRowTile), ValueRange(),
                     [&](OpBuilder &nb, Location loc, Value ra, ValueRange) {
                       ImplicitLocOpBuilder ib(loc, nb);
                       KernelBody k{ib};
                       Value rb = k.minui(k.addi(ra, k.idx(kGemmRowTile)), r1);
                       gemmPass(k, g, s, ra, rb, n0, n1, g.tileLanes,
                                kGemmRowTile / g.tileLanes, bigTileFeatures(g));
                       scf::YieldOp::create(ib);
                     });
  scf::ForOp::create(
      k.b, bigEnd, r1, k.idx(8), ValueRange(),
      [&](OpBuilder &nb, Location loc, Value ra, ValueRange) {
        ImplicitLocOpBuilder ib(loc, nb);
        KernelBody k{ib};
        Value rb = k.minui(k.addi(ra, k.idx(8)), r1);
        Value cnt = k.subi(rb, ra);
        auto tile = [&](KernelBody &k) {
          gemmPass(k, g, s, ra, rb, n0, n1, 8, 1, 4);
        };
        bool fp4 = g.format == lowp::WeightFormat::FP4;
        auto few = [&](KernelBody &k) {
          ifElse(
              k,
              k.cmpi(arith::CmpIPredicate::ule, cnt,
                     k.idx(fp4 ? kFastActRowsFP4 : kFastActRows)),
              [&](KernelBody &k) {
                if (fp4)
                  // Four rows or fewer pay for 4, not 8.
                  ifElse(
                      k, k.cmpi(arith::CmpIPredicate::ule, cnt, k.idx(4)),
                      [&](KernelBody &k) {
                        gemmRowsFastFP4Pass(k, g, s, ra, rb, n0, n1, 4);
                      },
                      [&](KernelBody &k) {
                        gemmRowsFastFP4Pass(k, g, s, ra, rb, n0, n1,
                                            kFastActRowsFP4);
                      });
                else
                  gemmRowsFastPass(k, g, s, ra, rb, n0, n1);
              },
              tile);
        };
        bool fewFast = usesFastRow(g);
        ifElse(
            k, k.cmpi(arith::CmpIPredicate::uge, cnt, k.idx(2)),
            [&](KernelBody &k) { fewFast ? few(k) : tile(k); },
            [&](KernelBody &k) { gemmPass(k, g, s, ra, rb, n0, n1, 1, 1, 1); });
        scf::YieldOp::create(ib);
      });
}

void setLaunchGrid(func::FuncOp fn, GridSpec x, GridSpec y, GridSpec z) {
  Builder b(fn.getContext());
  fn->setAttr(kLaunchGridAttrName,
              b.getDenseI64ArrayAttr({x.fixed, x.tokenTile, y.fixed,
                                      y.tokenTile, z.fixed, z.tokenTile}));
  SmallVector<Type> inputs(fn.getArgumentTypes());
  inputs.append(kLaunchBlockArgs, b.getIndexType());
  fn.setType(b.getFunctionType(inputs, {}));
}

void setFinestLaunchGrid(func::FuncOp fn, GridSpec x, GridSpec y, GridSpec z) {
  Builder b(fn.getContext());
  fn->setAttr(kFinestLaunchGridAttrName,
              b.getDenseI64ArrayAttr({x.fixed, x.tokenTile, y.fixed,
                                      y.tokenTile, z.fixed, z.tokenTile}));
}

Value launchArg(func::FuncOp fn, unsigned i) {
  return fn.getArgument(fn.getNumArguments() - kLaunchBlockArgs + i);
}

std::pair<Value, Value> blockRange(KernelBody &k, Value n, Value blk,
                                   Value grid) {
  Value per = k.divui(k.addi(n, k.subi(grid, k.idx(1))), grid);
  Value lo = k.minui(k.muli(blk, per), n);
  Value hi = k.minui(k.addi(lo, per), n);
  return {lo, hi};
}

} // namespace cpu

bool hasTiledKernelBuilder(Operation *op) {
  return isa<LinearOp, GroupedLinearOp, MoEExpertsOp, MoESharedExpertOp,
             AttnSparseOp, CSAIndexerScoresOp>(op);
}

FailureOr<func::FuncOp> buildCPUKernel(Operation *op, ModuleOp module,
                                       StringRef name) {
  SmallVector<Type> argTypes;
  for (Type t :
       llvm::concat<Type>(op->getOperandTypes(), op->getResultTypes())) {
    if (failed(getStorageMemRefTypes(t, argTypes)))
      return op->emitError() << "no CPU kernel argument for type " << t;
  }
  OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
  auto fn = func::FuncOp::create(b, op->getLoc(), name,
                                 b.getFunctionType(argTypes, {}));
  std::optional<LogicalResult> built = cpu::buildCoreKernel(op, fn);
  if (!built)
    built = cpu::buildAttentionKernel(op, fn);
  if (!built)
    built = cpu::buildMoEHyperConnKernel(op, fn);
  if (!built)
    op->emitError() << "no CPU kernel builder for '" << op->getName()
                    << "' yet";
  if (!built || failed(*built)) {
    fn.erase();
    return failure();
  }
  return fn;
}

} // namespace mlir::v4
