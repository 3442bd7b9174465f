//===- CPUKernels.cpp - CPU kernel builders: ABI and dispatch -------------===//
#include "lowering/KernelBuilders/CPUKernels.h"
#include "lowering/KernelBuilders/CPUKernelBody.h"

#include "dialects/V4/V4Numerics.h"
#include "dialects/V4/V4StorageLayout.h"
#include "dialects/V4/V4Types.h"

#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;

namespace mlir::v4 {

void registerCPUKernelDialects(DialectRegistry &registry) {
  registry.insert<func::FuncDialect, scf::SCFDialect, arith::ArithDialect,
                  math::MathDialect, memref::MemRefDialect>();
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

void quantizeActFP8(ImplicitLocOpBuilder &b, ActLoadFn act, Value K,
                    int64_t blk, Value qa, Value sa, bool quantize) {
  KernelBody k{b};
  Value blkV = k.idx(blk);
  Value nBlocks = arith::DivUIOp::create(
      b, arith::AddIOp::create(b, K, k.idx(blk - 1)), blkV);
  loop(b, k.idx(0), nBlocks, [&](ImplicitLocOpBuilder &jb, Value j) {
    Value k0 = arith::MulIOp::create(jb, j, blkV);
    Value k1 =
        arith::MinUIOp::create(jb, arith::AddIOp::create(jb, k0, blkV), K);
    if (!quantize) {
      // The activation as it is, at scale 1: the block-scaled dot is then
      // the dot with the exactly dequantised weight (s_w is a power of 2).
      memref::StoreOp::create(jb, lowp::f32(jb, 1.0), sa, ValueRange{j});
      loop(jb, k0, k1, [&](ImplicitLocOpBuilder &eb, Value e) {
        memref::StoreOp::create(eb, act(eb, e), qa, ValueRange{e});
      });
      return;
    }
    Value amax =
        reduce(jb, k0, k1, {lowp::f32(jb, 0.0)},
               [&](ImplicitLocOpBuilder &eb, Value e,
                   ValueRange acc) -> SmallVector<Value> {
                 return {arith::MaximumFOp::create(
                     eb, acc[0], math::AbsFOp::create(eb, act(eb, e)))};
               })[0];
    Value s = lowp::fp8ActScale(jb, amax);
    memref::StoreOp::create(jb, s, sa, ValueRange{j});
    loop(jb, k0, k1, [&](ImplicitLocOpBuilder &eb, Value e) {
      Value q = lowp::roundE4M3(eb, arith::DivFOp::create(eb, act(eb, e), s));
      memref::StoreOp::create(eb, q, qa, ValueRange{e});
    });
  });
}

Value blockScaledDot(ImplicitLocOpBuilder &b, lowp::WeightFormat format,
                     Value qa, Value sa, Value K, int64_t blk,
                     CodeLoadFn weightCode, CodeLoadFn scaleCode) {
  KernelBody k{b};
  Value zero = k.idx(0), blkV = k.idx(blk);
  auto qaAt = [](ImplicitLocOpBuilder &eb, Value qa, Value i) -> Value {
    return memref::LoadOp::create(eb, qa, ValueRange{i});
  };
  if (format == lowp::WeightFormat::FP8) {
    Value nBlocks = arith::DivUIOp::create(
        b, arith::AddIOp::create(b, K, k.idx(blk - 1)), blkV);
    return reduce(
        b, zero, nBlocks, {lowp::f32(b, 0.0)},
        [&](ImplicitLocOpBuilder &jb, Value j,
            ValueRange a) -> SmallVector<Value> {
          Value k0 = arith::MulIOp::create(jb, j, blkV);
          Value k1 = arith::MinUIOp::create(
              jb, arith::AddIOp::create(jb, k0, blkV), K);
          Value part = reduce(
              jb, k0, k1, {lowp::f32(jb, 0.0)},
              [&](ImplicitLocOpBuilder &eb, Value e,
                  ValueRange p) -> SmallVector<Value> {
                Value w = lowp::decodeE4M3(eb, weightCode(eb, e));
                return {arith::AddFOp::create(
                    eb, p[0], arith::MulFOp::create(eb, qaAt(eb, qa, e), w))};
              })[0];
          Value scaled = lowp::scaleBlock(
              jb, part, memref::LoadOp::create(jb, sa, ValueRange{j}),
              lowp::decodeE8M0(jb, scaleCode(jb, j)));
          return {arith::AddFOp::create(jb, a[0], scaled)};
        })[0];
  }
  // FP4: byte c*16 + q holds K elements 32c + 2q (low nibble) and
  // 32c + 2q + 1 (high nibble).
  Value slices = arith::DivUIOp::create(b, K, k.idx(32));
  return reduce(
      b, zero, slices, {lowp::f32(b, 0.0)},
      [&](ImplicitLocOpBuilder &cb, Value c,
          ValueRange a) -> SmallVector<Value> {
        Value byte0 = arith::MulIOp::create(cb, c, KernelBody{cb}.idx(16));
        Value part = reduce(
            cb, zero, KernelBody{cb}.idx(16), {lowp::f32(cb, 0.0)},
            [&](ImplicitLocOpBuilder &eb, Value q,
                ValueRange p) -> SmallVector<Value> {
              Value byteIdx = arith::AddIOp::create(eb, byte0, q);
              Value bits = arith::ExtUIOp::create(eb, eb.getI32Type(),
                                                  weightCode(eb, byteIdx));
              Value e0 = arith::AddIOp::create(eb, byteIdx, byteIdx);
              Value e1 = arith::AddIOp::create(eb, e0, KernelBody{eb}.idx(1));
              Value lo = lowp::decodeE2M1(
                  eb, arith::AndIOp::create(eb, bits, lowp::i32(eb, 15)));
              Value hi = lowp::decodeE2M1(
                  eb, arith::ShRUIOp::create(eb, bits, lowp::i32(eb, 4)));
              Value acc0 = arith::AddFOp::create(
                  eb, p[0], arith::MulFOp::create(eb, qaAt(eb, qa, e0), lo));
              return {arith::AddFOp::create(
                  eb, acc0, arith::MulFOp::create(eb, qaAt(eb, qa, e1), hi))};
            })[0];
        Value aBlock = arith::DivUIOp::create(
            cb, arith::MulIOp::create(cb, c, KernelBody{cb}.idx(32)), blkV);
        Value scaled = lowp::scaleBlock(
            cb, part, memref::LoadOp::create(cb, sa, ValueRange{aBlock}),
            lowp::decodeE8M0(cb, scaleCode(cb, c)));
        return {arith::AddFOp::create(cb, a[0], scaled)};
      })[0];
}

Value blockScaledDotDecoded(ImplicitLocOpBuilder &b, lowp::WeightFormat format,
                            Value qa, Value sa, Value K, int64_t blk,
                            Value wdec, Value sdec) {
  KernelBody k{b};
  Value zero = k.idx(0), blkV = k.idx(blk);
  auto at = [](ImplicitLocOpBuilder &eb, Value m, Value i) -> Value {
    return memref::LoadOp::create(eb, m, ValueRange{i});
  };
  if (format == lowp::WeightFormat::FP8) {
    Value nBlocks = arith::DivUIOp::create(
        b, arith::AddIOp::create(b, K, k.idx(blk - 1)), blkV);
    return reduce(
        b, zero, nBlocks, {lowp::f32(b, 0.0)},
        [&](ImplicitLocOpBuilder &jb, Value j,
            ValueRange a) -> SmallVector<Value> {
          Value k0 = arith::MulIOp::create(jb, j, blkV);
          Value k1 = arith::MinUIOp::create(
              jb, arith::AddIOp::create(jb, k0, blkV), K);
          Value part = reduce(
              jb, k0, k1, {lowp::f32(jb, 0.0)},
              [&](ImplicitLocOpBuilder &eb, Value e,
                  ValueRange p) -> SmallVector<Value> {
                return {arith::AddFOp::create(
                    eb, p[0],
                    arith::MulFOp::create(eb, at(eb, qa, e), at(eb, wdec, e)))};
              })[0];
          Value scaled =
              lowp::scaleBlock(jb, part, at(jb, sa, j), at(jb, sdec, j));
          return {arith::AddFOp::create(jb, a[0], scaled)};
        })[0];
  }
  Value slices = arith::DivUIOp::create(b, K, k.idx(32));
  return reduce(
      b, zero, slices, {lowp::f32(b, 0.0)},
      [&](ImplicitLocOpBuilder &cb, Value c,
          ValueRange a) -> SmallVector<Value> {
        KernelBody ck{cb};
        Value e00 = arith::MulIOp::create(cb, c, ck.idx(32));
        Value part = reduce(
            cb, zero, ck.idx(16), {lowp::f32(cb, 0.0)},
            [&](ImplicitLocOpBuilder &eb, Value q,
                ValueRange p) -> SmallVector<Value> {
              KernelBody ek{eb};
              Value e0 = arith::AddIOp::create(eb, e00, ek.addi(q, q));
              Value e1 = arith::AddIOp::create(eb, e0, ek.idx(1));
              Value acc0 = arith::AddFOp::create(
                  eb, p[0],
                  arith::MulFOp::create(eb, at(eb, qa, e0), at(eb, wdec, e0)));
              return {arith::AddFOp::create(
                  eb, acc0,
                  arith::MulFOp::create(eb, at(eb, qa, e1), at(eb, wdec, e1)))};
            })[0];
        Value aBlock = arith::DivUIOp::create(cb, e00, blkV);
        Value scaled =
            lowp::scaleBlock(cb, part, at(cb, sa, aBlock), at(cb, sdec, c));
        return {arith::AddFOp::create(cb, a[0], scaled)};
      })[0];
}

void decodeWeightRow(ImplicitLocOpBuilder &b, lowp::WeightFormat format,
                     Value K, int64_t blk, CodeLoadFn weightCode,
                     CodeLoadFn scaleCode, Value wdec, Value sdec) {
  KernelBody k{b};
  Value zero = k.idx(0);
  if (format == lowp::WeightFormat::FP8) {
    loop(b, zero, K, [&](ImplicitLocOpBuilder &eb, Value e) {
      memref::StoreOp::create(eb, lowp::decodeE4M3(eb, weightCode(eb, e)), wdec,
                              ValueRange{e});
    });
    loop(b, zero, k.ceilDivui(K, blk), [&](ImplicitLocOpBuilder &jb, Value j) {
      memref::StoreOp::create(jb, lowp::decodeE8M0(jb, scaleCode(jb, j)), sdec,
                              ValueRange{j});
    });
    return;
  }
  Value slices = k.divui(K, k.idx(32));
  loop(b, zero, k.muli(slices, k.idx(16)),
       [&](ImplicitLocOpBuilder &eb, Value byteIdx) {
         KernelBody ek{eb};
         Value bits = arith::ExtUIOp::create(eb, eb.getI32Type(),
                                             weightCode(eb, byteIdx));
         Value e0 = ek.addi(byteIdx, byteIdx);
         Value e1 = ek.addi(e0, ek.idx(1));
         memref::StoreOp::create(
             eb,
             lowp::decodeE2M1(
                 eb, arith::AndIOp::create(eb, bits, lowp::i32(eb, 15))),
             wdec, ValueRange{e0});
         memref::StoreOp::create(
             eb,
             lowp::decodeE2M1(
                 eb, arith::ShRUIOp::create(eb, bits, lowp::i32(eb, 4))),
             wdec, ValueRange{e1});
       });
  loop(b, zero, slices, [&](ImplicitLocOpBuilder &cb, Value c) {
    memref::StoreOp::create(cb, lowp::decodeE8M0(cb, scaleCode(cb, c)), sdec,
                            ValueRange{c});
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
