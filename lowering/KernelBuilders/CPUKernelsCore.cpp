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

/// Output features per block of a linear kernel's launch grid, and token
/// rows per tile: a block computes a tile of rows against a range of
/// weight rows, decoding each weight row once for the whole tile.
constexpr int64_t kFeatureTile = 64;
constexpr int64_t kTokenTile = 16;

/// The grid of a GEMM-like kernel over `features` output features: feature
/// blocks x token tiles.
void setGemmGrid(func::FuncOp fn, int64_t features) {
  int64_t blocks =
      features > 0 ? (features + kFeatureTile - 1) / kFeatureTile : 1;
  setLaunchGrid(fn, {blocks, 0}, {1, kTokenTile});
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
  Value zero = k.idx(0);
  Value rows = k.dim(x2, 0), kDim = k.dim(x2, 1), nDim = k.dim(w, 0);
  lowp::WeightFormat format = lowp::getWeightFormat(wElt);
  // This block's output features [n0, n1) and token rows [r0, r1).
  auto [n0, n1] = blockRange(k, nDim, launchArg(fn, 0), launchArg(fn, 3));
  auto [r0, r1] = blockRange(k, rows, launchArg(fn, 1), launchArg(fn, 4));

  if (format == lowp::WeightFormat::Plain) {
    // bf16 / f32: upcast, fp32 accumulation, one rounding; each weight row
    // against the tile's rows while it is in cache.
    loop(k, n0, n1, [&](KernelBody &k, Value n) {
      loop(k, r0, r1, [&](KernelBody &k, Value r) {
        Value acc = sumf(k, zero, kDim, [&](KernelBody &k, Value e) {
          Value xv = k.loadF(x2, {r, e});
          Value wv = k.loadF(w, {n, e});
          return k.mulf(xv, wv);
        });
        k.store(k.fromF32(acc, outElt), y2, {r, n});
      });
    });
    func::ReturnOp::create(b);
    return success();
  }

  FailureOr<bool> quantize = quantizesActivations(fn);
  if (failed(quantize))
    return failure();
  int64_t blk = op.getBlockSize();
  Value blkV = k.idx(blk);
  Value nBlocks = k.ceilDivui(kDim, blk);
  // FP8 scales per 128-K block, FP4 per 32-K slice.
  Value nScales =
      format == lowp::WeightFormat::FP8 ? nBlocks : k.divui(kDim, k.idx(32));
  // The tile's quantised activations (row i of the tile at i * K) and the
  // decoded weight row.
  Value tileRows = k.subi(r1, r0);
  Value qa = k.scratchF32(k.muli(tileRows, kDim));
  Value sa = k.scratchF32(k.muli(tileRows, nBlocks));
  Value wdec = k.scratchF32(kDim), sdec = k.scratchF32(nScales);
  auto rowView = [&](KernelBody &k, Value m, Value i, Value len) -> Value {
    return memref::SubViewOp::create(
        k.b, m, ArrayRef<OpFoldResult>{k.muli(i, len)},
        ArrayRef<OpFoldResult>{len},
        ArrayRef<OpFoldResult>{k.b.getIndexAttr(1)});
  };
  loop(k, r0, r1, [&](KernelBody &k, Value r) {
    Value i = k.subi(r, r0);
    quantizeActFP8(
        k.b,
        [&](ImplicitLocOpBuilder &eb, Value e) {
          return KernelBody{eb}.loadF(x2, {r, e});
        },
        kDim, blk, rowView(k, qa, i, kDim), rowView(k, sa, i, nBlocks),
        *quantize);
  });
  loop(k, n0, n1, [&](KernelBody &k, Value n) {
    // FP8: the weight scale of block j is s_w[n / b, j]; FP4: the scale
    // of 32-K slice c is s_w[n, c].
    Value scaleRow = format == lowp::WeightFormat::FP8 ? k.divui(n, blkV) : n;
    decodeWeightRow(
        k.b, format, kDim, blk,
        [&](ImplicitLocOpBuilder &eb, Value col) {
          return KernelBody{eb}.load(w, {n, col});
        },
        [&](ImplicitLocOpBuilder &eb, Value block) {
          return KernelBody{eb}.load(s, {scaleRow, block});
        },
        wdec, sdec);
    loop(k, r0, r1, [&](KernelBody &k, Value r) {
      Value i = k.subi(r, r0);
      Value acc = blockScaledDotDecoded(k.b, format, rowView(k, qa, i, kDim),
                                        rowView(k, sa, i, nBlocks), kDim, blk,
                                        wdec, sdec);
      k.store(k.fromF32(acc, outElt), y2, {r, n});
    });
  });
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
  Value zero = k.idx(0);
  Value rows = k.dim(x3, 0), groups = k.dim(x3, 1), kDim = k.dim(x3, 2);
  Value nPer = k.dim(y3, 2);
  Value blkV = k.idx(op.getBlockSize());
  auto [n0, n1] =
      blockRange(k, k.muli(groups, nPer), launchArg(fn, 0), launchArg(fn, 3));
  auto [r0, r1] = blockRange(k, rows, launchArg(fn, 1), launchArg(fn, 4));
  Value wdec = k.scratchF32(kDim);

  loop(k, n0, n1, [&](KernelBody &k, Value wRow) {
    Value g = k.divui(wRow, nPer), n = k.remui(wRow, nPer);
    Value wRowBlk = hasScale ? k.divui(wRow, blkV) : Value();
    // The weight row as the dot reads it, once for the tile.
    loop(k, zero, kDim, [&](KernelBody &k, Value e) {
      Value wv;
      if (hasScale) {
        // Dequantised as convert.py does: bf16(W8 * s).
        Value code = k.load(w, {wRow, e});
        Value scaleCode = k.load(s, {wRowBlk, k.divui(e, blkV)});
        wv = k.roundBF16(lowp::dequantizeE4M3(k.b, code, scaleCode));
      } else {
        wv = k.loadF(w, {wRow, e});
      }
      k.store(wv, wdec, {e});
    });
    loop(k, r0, r1, [&](KernelBody &k, Value r) {
      Value acc = sumf(k, zero, kDim, [&](KernelBody &k, Value e) {
        return k.mulf(k.loadF(x3, {r, g, e}), k.load(wdec, {e}));
      });
      k.store(k.fromF32(acc, outElt), y3, {r, g, n});
    });
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
