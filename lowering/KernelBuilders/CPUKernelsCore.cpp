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

LogicalResult buildLinear(LinearOp op, func::FuncOp fn) {
  auto b = bodyBuilder(op, fn);
  KernelBody k{b};
  bool hasScale = static_cast<bool>(op.getScale());
  Value x = fn.getArgument(0), w = fn.getArgument(1);
  Value s = hasScale ? fn.getArgument(2) : Value();
  Value y = fn.getArgument(hasScale ? 3 : 2);
  Type wElt = cast<RankedTensorType>(op.getWeight().getType()).getElementType();
  Type outElt = cast<MemRefType>(y.getType()).getElementType();
  Value x2 = k.collapse2D(x, 1), y2 = k.collapse2D(y, 1);
  Value zero = k.idx(0);
  Value rows = k.dim(x2, 0), kDim = k.dim(x2, 1), nDim = k.dim(w, 0);
  lowp::WeightFormat format = lowp::getWeightFormat(wElt);

  if (format == lowp::WeightFormat::Plain) {
    // bf16 / f32: upcast, fp32 accumulation, one rounding.
    loop(k, zero, rows, [&](KernelBody &k, Value r) {
      loop(k, zero, nDim, [&](KernelBody &k, Value n) {
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
  Value qa = k.scratchF32(kDim), sa = k.scratchF32(nBlocks);
  loop(k, zero, rows, [&](KernelBody &k, Value r) {
    quantizeActFP8(
        k.b,
        [&](ImplicitLocOpBuilder &eb, Value e) {
          return KernelBody{eb}.loadF(x2, {r, e});
        },
        kDim, blk, qa, sa, *quantize);
    loop(k, zero, nDim, [&](KernelBody &k, Value n) {
      // FP8: the weight scale of block j is s_w[n / b, j]; FP4: the scale
      // of 32-K slice c is s_w[n, c].
      Value scaleRow = format == lowp::WeightFormat::FP8 ? k.divui(n, blkV) : n;
      Value acc = blockScaledDot(
          k.b, format, qa, sa, kDim, blk,
          [&](ImplicitLocOpBuilder &eb, Value col) {
            return KernelBody{eb}.load(w, {n, col});
          },
          [&](ImplicitLocOpBuilder &eb, Value block) {
            return KernelBody{eb}.load(s, {scaleRow, block});
          });
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

  loop(k, zero, rows, [&](KernelBody &k, Value r) {
    loop(k, zero, groups, [&](KernelBody &k, Value g) {
      Value row0 = k.muli(g, nPer);
      loop(k, zero, nPer, [&](KernelBody &k, Value n) {
        Value wRow = k.addi(row0, n);
        Value wRowBlk = hasScale ? k.divui(wRow, blkV) : Value();
        Value acc = sumf(k, zero, kDim, [&](KernelBody &k, Value e) {
          Value xv = k.loadF(x3, {r, g, e});
          Value wv;
          if (hasScale) {
            // Dequantised as convert.py does: bf16(W8 * s).
            Value code = k.load(w, {wRow, e});
            Value scaleCode = k.load(s, {wRowBlk, k.divui(e, blkV)});
            wv = k.roundBF16(lowp::dequantizeE4M3(k.b, code, scaleCode));
          } else {
            wv = k.loadF(w, {wRow, e});
          }
          return k.mulf(xv, wv);
        });
        k.store(k.fromF32(acc, outElt), y3, {r, g, n});
      });
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
