//===- CPUKernels.cpp - CPU kernel builders: ABI and dispatch -------------===//
#include "lowering/KernelBuilders/CPUKernels.h"
#include "lowering/KernelBuilders/CPUKernelBody.h"

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
