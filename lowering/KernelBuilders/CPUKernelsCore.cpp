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

  if (lowp::getWeightFormat(wElt) == lowp::WeightFormat::Plain) {
    // bf16 / f32: upcast, fp32 accumulation, one rounding.
    loop(b, zero, rows, [&](ImplicitLocOpBuilder &rb, Value r) {
      loop(rb, zero, nDim, [&](ImplicitLocOpBuilder &nb, Value n) {
        KernelBody kn{nb};
        Value acc = reduce(nb, zero, kDim, {kn.f32(0.0)},
                           [&](ImplicitLocOpBuilder &eb, Value e,
                               ValueRange a) -> SmallVector<Value> {
                             KernelBody ke{eb};
                             Value xv = ke.toF32(ke.load(x2, {r, e}));
                             Value wv = ke.toF32(ke.load(w, {n, e}));
                             return {ke.addf(a[0], ke.mulf(xv, wv))};
                           })[0];
        kn.store(kn.fromF32(acc, outElt), y2, {r, n});
      });
    });
    func::ReturnOp::create(b);
    return success();
  }

  int64_t blk = op.getBlockSize();
  lowp::WeightFormat format = lowp::getWeightFormat(wElt);
  Value blkV = k.idx(blk);
  Value nBlocks = k.divui(arith::AddIOp::create(b, kDim, k.idx(blk - 1)), blkV);
  Value qa = scratch(b, kDim), sa = scratch(b, nBlocks);
  loop(b, zero, rows, [&](ImplicitLocOpBuilder &rb, Value r) {
    quantizeActFP8(
        rb,
        [&](ImplicitLocOpBuilder &eb, Value e) {
          return KernelBody{eb}.toF32(KernelBody{eb}.load(x2, {r, e}));
        },
        kDim, blk, qa, sa);
    loop(rb, zero, nDim, [&](ImplicitLocOpBuilder &nb, Value n) {
      KernelBody kn{nb};
      // FP8: the weight scale of block j is s_w[n / b, j]; FP4: the scale
      // of 32-K slice c is s_w[n, c].
      Value scaleRow =
          format == lowp::WeightFormat::FP8 ? kn.divui(n, blkV) : n;
      Value acc = blockScaledDot(
          nb, format, qa, sa, kDim, blk,
          [&](ImplicitLocOpBuilder &eb, Value col) {
            return KernelBody{eb}.load(w, {n, col});
          },
          [&](ImplicitLocOpBuilder &eb, Value block) {
            return KernelBody{eb}.load(s, {scaleRow, block});
          });
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
  KernelBody k{b};
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
        KernelBody kn{nb};
        Value wRow = kn.addi(row0, n);
        Value wRowBlk = hasScale ? kn.divui(wRow, blkV) : Value();
        Value acc =
            reduce(nb, zero, kDim, {kn.f32(0.0)},
                   [&](ImplicitLocOpBuilder &eb, Value e,
                       ValueRange a) -> SmallVector<Value> {
                     KernelBody ke{eb};
                     Value xv = ke.toF32(ke.load(x3, {r, g, e}));
                     Value wv = ke.load(w, {wRow, e});
                     if (hasScale) {
                       // Dequantised as convert.py does: bf16(W8 * s).
                       Value sv = lowp::decodeE8M0(
                           eb, ke.load(s, {wRowBlk, ke.divui(e, blkV)}));
                       wv = ke.roundBF16(ke.mulf(lowp::decodeE4M3(eb, wv), sv));
                     } else {
                       wv = ke.toF32(wv);
                     }
                     return {ke.addf(a[0], ke.mulf(xv, wv))};
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
  KernelBody k{b};
  Value x = fn.getArgument(0), y = fn.getArgument(1);
  Type elt = cast<MemRefType>(x.getType()).getElementType();
  bool fp4 = op.getFormat() == QuantFormat::fp4_e2m1;
  int64_t blk = op.getBlockSize();
  Value x2 = k.collapse2D(x, 1), y2 = k.collapse2D(y, 1);
  Value zero = k.idx(0), blkV = k.idx(blk);
  Value n = k.dim(x2, 1);
  Value extent = op.getExtent() ? k.idx(*op.getExtent()) : n;
  Value nBlocks = k.divui(extent, blkV);

  loop(b, zero, k.dim(x2, 0), [&](ImplicitLocOpBuilder &rb, Value r) {
    loop(rb, zero, nBlocks, [&](ImplicitLocOpBuilder &jb, Value j) {
      KernelBody kj{jb};
      Value k0 = arith::MulIOp::create(jb, j, blkV);
      Value k1 = kj.addi(k0, blkV);
      Value amax = reduce(jb, k0, k1, {kj.f32(0.0)},
                          [&](ImplicitLocOpBuilder &eb, Value e,
                              ValueRange acc) -> SmallVector<Value> {
                            KernelBody ke{eb};
                            Value v = ke.toF32(ke.load(x2, {r, e}));
                            return {arith::MaximumFOp::create(
                                eb, acc[0], math::AbsFOp::create(eb, v))};
                          })[0];
      Value s = fp4 ? lowp::fp4ActScale(jb, amax) : lowp::fp8ActScale(jb, amax);
      loop(jb, k0, k1, [&](ImplicitLocOpBuilder &eb, Value e) {
        KernelBody ke{eb};
        Value v = arith::DivFOp::create(eb, ke.toF32(ke.load(x2, {r, e})), s);
        Value q = fp4 ? lowp::roundE2M1(eb, v) : lowp::roundE4M3(eb, v);
        // grid value * s is exact in bf16.
        ke.store(ke.fromF32(ke.mulf(q, s), elt), y2, {r, e});
      });
    });
    // Elements past the extent pass through.
    loop(rb, extent, n, [&](ImplicitLocOpBuilder &eb, Value e) {
      KernelBody ke{eb};
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
