//===- CPUKernels.cpp - CPU kernel builders: ABI and dispatch -------------===//
#include "lowering/KernelBuilders/CPUKernels.h"
#include "lowering/KernelBuilders/CPUKernelBody.h"

#include "dialects/V4/V4Types.h"

#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;

namespace mlir::v4 {

void registerCPUKernelDialects(DialectRegistry &registry) {
  registry.insert<func::FuncDialect, scf::SCFDialect, arith::ArithDialect,
                  math::MathDialect, memref::MemRefDialect>();
}

LogicalResult kernelArgumentTypes(Type type, SmallVectorImpl<Type> &out) {
  MLIRContext *ctx = type.getContext();
  Type i8 = IntegerType::get(ctx, 8), i64 = IntegerType::get(ctx, 64);
  Type f32 = Float32Type::get(ctx);
  return llvm::TypeSwitch<Type, LogicalResult>(type)
      .Case<RankedTensorType>([&](RankedTensorType t) {
        SmallVector<int64_t> shape(t.getShape());
        Type elt = t.getElementType();
        if (isa<Float4E2M1FNType>(elt)) {
          // Packed two per byte along the last dim, low nibble first
          // (V4-SPEC 1.4), exactly as the checkpoint stores it.
          if (shape.empty() || ShapedType::isDynamic(shape.back()) ||
              shape.back() % 2)
            return failure();
          shape.back() /= 2;
          elt = i8;
        } else if (isa<Float8E4M3FNType, Float8E8M0FNUType>(elt)) {
          elt = i8; // raw codes, decoded in the kernel
        }
        out.push_back(MemRefType::get(shape, elt));
        return success();
      })
      .Case<WindowRingType>([&](WindowRingType t) {
        out.push_back(MemRefType::get({t.getBatch(), t.getSlots(), t.getDim()},
                                      t.getElementType()));
        return success();
      })
      .Case<KVCacheType>([&](KVCacheType t) {
        out.push_back(MemRefType::get(
            {t.getBatch(), t.getCapacity(), t.getDim()}, t.getElementType()));
        return success();
      })
      .Case<CompressorStateType>([&](CompressorStateType t) {
        // kv_state, then score_state (V4-SPEC 9.1).
        auto m =
            MemRefType::get({t.getBatch(), t.getRows(), t.getWidth()}, f32);
        out.push_back(m);
        out.push_back(m);
        return success();
      })
      .Case<EngramStateType>([&](EngramStateType t) {
        out.push_back(MemRefType::get({t.getBatch(), t.getLookback()}, i64));
        return success();
      })
      .Default([](Type) { return failure(); });
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

} // namespace cpu

FailureOr<func::FuncOp> buildCPUKernel(Operation *op, ModuleOp module,
                                       StringRef name) {
  SmallVector<Type> argTypes;
  for (Type t :
       llvm::concat<Type>(op->getOperandTypes(), op->getResultTypes())) {
    if (failed(kernelArgumentTypes(t, argTypes)))
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
    built = cpu::buildEngramKernel(op, fn);
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
