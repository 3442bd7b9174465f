//===- CPUKernelsCore.cpp - CPU kernels of the core family ----------------===//
//
// v4.linear, v4.grouped_linear (V4-SPEC 2.4, 5.7); the other core ops have
// target-neutral bodies (lowering/V4ToLinalg).
//
// FP8 (e4m3fn), FP4 (e2m1) and e8m0 codes arrive as raw i8 (the kernel ABI);
// decoding, grid rounding and scales are lowering/Numerics/LowPrecision.h.
//
//===----------------------------------------------------------------------===//
#include "lowering/KernelBuilders/CPUKernelBody.h"

#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;

namespace mlir::v4::cpu {
namespace {

//===----------------------------------------------------------------------===//
// Views
//===----------------------------------------------------------------------===//

/// Views [d0, ..., dn-3, G, K] as [prod(d0..dn-3), G, K] ([1, G, K] for
/// rank 2).
Value collapse3D(KernelBody &k, Value m) {
  ImplicitLocOpBuilder &b = k.b;
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
  if (rank == 3)
    return m;
  SmallVector<ReassociationIndices> groups(3);
  for (int64_t i = 0; i < rank; ++i)
    groups[i < rank - 2 ? 0 : i - (rank - 3)].push_back(i);
  return memref::CollapseShapeOp::create(b, m, groups);
}

//===----------------------------------------------------------------------===//
// v4.linear (V4-SPEC 2.4)
//===----------------------------------------------------------------------===//

/// The stored element (FP4: byte) of row n, column c of a weight [N, K]
/// (gemmRowFast's TileGemm::weightRef).
struct RowMajorWeight {
  Value w;
  std::pair<Value, SmallVector<Value>> operator()(KernelBody &, Value n,
                                                  Value c) const {
    return {w, SmallVector<Value>{n, c}};
  }
};

/// The grid of a GEMM-like kernel over `features` output features: blocks
/// of kGemmFeatureBlock features x tiles of kGemmRowTile token rows; at the
/// finest, kGemmFinestFeatures features x one token.
void setGemmGrid(func::FuncOp fn, int64_t features) {
  int64_t blocks =
      features > 0 ? (features + kGemmFeatureBlock - 1) / kGemmFeatureBlock : 1;
  setLaunchGrid(fn, {blocks, 0}, {1, kGemmRowTile});
  setFinestLaunchGrid(
      fn,
      {features > 0 ? (features + kGemmFinestFeatures - 1) / kGemmFinestFeatures
                    : 1,
       0},
      {1, 1});
}

LogicalResult buildLinear(LinearOp op, func::FuncOp fn) {
  Type wElt = cast<RankedTensorType>(op.getWeight().getType()).getElementType();
  setGemmGrid(fn,
              cast<RankedTensorType>(op.getWeight().getType()).getDimSize(0));
  auto b = bodyBuilder(op, fn);
  KernelBody k{b};
  bool hasScale = static_cast<bool>(op.getScale());
  Value x = fn.getArgument(0), w = fn.getArgument(1);
  Value s = hasScale ? fn.getArgument(2) : Value();
  Value y = fn.getArgument(hasScale ? 3 : 2);
  Type outElt = cast<MemRefType>(y.getType()).getElementType();
  Value x2 = k.collapse2D(x, 1), y2 = k.collapse2D(y, 1);
  TileGemm g;
  g.format = lowp::getWeightFormat(wElt);
  if (g.format != lowp::WeightFormat::Plain) {
    FailureOr<bool> quantize = quantizesActivations(fn);
    if (failed(quantize))
      return failure();
    g.quantize = *quantize;
    g.blk = op.getBlockSize();
  }
  // bf16 activations against bf16 weights: pairs of exact products.
  g.bf16Operands = g.format == lowp::WeightFormat::Plain &&
                   getElementTypeOrSelf(x.getType()).isBF16() && wElt.isBF16();
  g.K = k.dim(x2, 1);
  g.N = k.dim(w, 0);
  auto actFn = [&](KernelBody &k, Value r, Value e) {
    return k.loadF(x2, {r, e});
  };
  g.act = actFn;
  // Plain: the weight as f32; FP8: the code of (n, e); FP4: the byte of
  // elements e and e + 1.
  auto weightFn = [&](KernelBody &k, Value n, Value e) {
    if (g.format == lowp::WeightFormat::Plain)
      return k.loadF(w, {n, e});
    if (g.format == lowp::WeightFormat::FP4)
      return k.load(w, {n, k.divui(e, k.idx(2))});
    return k.load(w, {n, e});
  };
  g.weight = weightFn;
  // FP8: the scale of block j is s_w[n / rb, j]; FP4: of 32-K slice j,
  // s_w[n, j].
  int64_t rowBlk = op.getScaleRowBlock();
  auto weightScaleRefFn = [&](KernelBody &k, Value n, Value j) {
    Value row =
        g.format == lowp::WeightFormat::FP8 ? k.divui(n, k.idx(rowBlk)) : n;
    return std::make_pair(s, SmallVector<Value>{row, j});
  };
  g.weightScaleRef = weightScaleRefFn;
  if (failed(setTargetOptions(fn, g)))
    return failure();
  RowMajorWeight weightRef{w};
  g.weightRef = weightRef;
  auto storeFn = [&](KernelBody &k, Value r, Value n, Value acc) {
    k.store(k.fromF32(acc, outElt), y2, {r, n});
  };
  g.store = storeFn;
  TileGemmScratch scratch = allocTileGemm(k, g);
  // This block's output features [n0, n1) and token rows [r0, r1).
  auto [n0, n1] = blockRange(k, g.N, launchArg(fn, 0), launchArg(fn, 3));
  auto [r0, r1] =
      blockRange(k, k.dim(x2, 0), launchArg(fn, 1), launchArg(fn, 4));
  tileGemm(k, g, scratch, r0, r1, n0, n1);
  func::ReturnOp::create(b);
  return success();
}

//===----------------------------------------------------------------------===//
// v4.grouped_linear (V4-SPEC 5.7)
//===----------------------------------------------------------------------===//

LogicalResult buildGroupedLinear(GroupedLinearOp op, func::FuncOp fn) {
  // Output features: the G * N/G rows of the weight.
  setGemmGrid(fn,
              cast<RankedTensorType>(op.getWeight().getType()).getDimSize(0));
  auto b = bodyBuilder(op, fn);
  KernelBody k{b};
  bool hasScale = static_cast<bool>(op.getScale());
  Value x = fn.getArgument(0), w = fn.getArgument(1);
  Value s = hasScale ? fn.getArgument(2) : Value();
  Value y = fn.getArgument(hasScale ? 3 : 2);
  Type outElt = cast<MemRefType>(y.getType()).getElementType();
  Value x3 = collapse3D(k, x), y3 = collapse3D(k, y);
  Value groups = k.dim(x3, 1), nPer = k.dim(y3, 2);
  Value rowBlkV = k.idx(op.getScaleRowBlock());
  // Feature n of the GEMM is weight row n: group n / nPer. A block's
  // features are cut at group boundaries, each piece a GEMM of its group's
  // activations (g of the closures).
  Value group;
  TileGemm g;
  g.K = k.dim(x3, 2);
  g.N = k.muli(groups, nPer);
  auto actFn = [&](KernelBody &k, Value r, Value e) {
    return k.loadF(x3, {r, group, e});
  };
  g.act = actFn;
  // FP8 weights dequantised as convert.py does, bf16(W8 * s), by tileGemm.
  g.dequantizeWeights = hasScale;
  // bf16 activations against bf16 (or dequantised) weights: pairs of exact
  // products.
  g.bf16Operands = getElementTypeOrSelf(x.getType()).isBF16() &&
                   (hasScale || cast<RankedTensorType>(op.getWeight().getType())
                                    .getElementType()
                                    .isBF16());
  g.blk = op.getBlockSize();
  auto weightFn = [&](KernelBody &k, Value n, Value e) {
    return hasScale ? k.load(w, {n, e}) : k.loadF(w, {n, e});
  };
  g.weight = weightFn;
  auto scaleRefFn = [&](KernelBody &k, Value n, Value j) {
    return std::make_pair(s, SmallVector<Value>{k.divui(n, rowBlkV), j});
  };
  g.weightScaleRef = scaleRefFn;
  if (failed(setTargetOptions(fn, g)))
    return failure();
  RowMajorWeight weightRef{w};
  g.weightRef = weightRef;
  auto storeFn = [&](KernelBody &k, Value r, Value n, Value acc) {
    k.store(k.fromF32(acc, outElt), y3,
            {r, k.divui(n, nPer), k.remui(n, nPer)});
  };
  g.store = storeFn;
  TileGemmScratch scratch = allocTileGemm(k, g);
  auto [n0, n1] = blockRange(k, g.N, launchArg(fn, 0), launchArg(fn, 3));
  auto [r0, r1] =
      blockRange(k, k.dim(x3, 0), launchArg(fn, 1), launchArg(fn, 4));
  // The groups [n0 / nPer, ceil(n1 / nPer)) this block touches.
  Value gEnd = k.divui(k.addi(n1, k.subi(nPer, k.idx(1))), nPer);
  loop(k, k.divui(n0, nPer), gEnd, [&](KernelBody &k, Value gi) {
    group = gi;
    Value lo = k.maxsi(n0, k.muli(gi, nPer));
    Value hi = k.minui(n1, k.muli(k.addi(gi, k.idx(1)), nPer));
    tileGemm(k, g, scratch, r0, r1, lo, hi);
  });
  func::ReturnOp::create(b);
  return success();
}

} // namespace

std::optional<LogicalResult> buildCoreKernel(Operation *op, func::FuncOp fn) {
  return llvm::TypeSwitch<Operation *, std::optional<LogicalResult>>(op)
      .Case<LinearOp>([&](auto o) { return buildLinear(o, fn); })
      .Case<GroupedLinearOp>([&](auto o) { return buildGroupedLinear(o, fn); })
      .Default([](Operation *) { return std::nullopt; });
}

} // namespace mlir::v4::cpu
