//===- V4PlanOps.cpp - verifiers of the host plan ops ---------------------===//
#include "dialects/V4/V4Ops.h"
#include "dialects/V4/V4StorageLayout.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/SymbolTable.h"

using namespace mlir;
using namespace mlir::v4;

#define GET_OP_CLASSES
#include "dialects/V4/V4PlanOps.cpp.inc"

LogicalResult PlanParameterOp::verify() {
  auto logical = dyn_cast<RankedTensorType>(getLogicalType());
  if (!logical)
    return emitOpError() << "expected a ranked tensor logical type, got "
                         << getLogicalType() << " [plan_parameter_c1]";
  SmallVector<Type> storage;
  if (failed(getStorageMemRefTypes(logical, storage)) || storage.size() != 1)
    return emitOpError() << "logical type " << logical
                         << " has no storage layout [plan_parameter_c2]";
  if (storage.front() != getBuffer().getType())
    return emitOpError() << "expected buffer type " << storage.front()
                         << " for logical type " << logical << ", got "
                         << getBuffer().getType() << " [plan_parameter_c3]";
  return success();
}

LogicalResult
PlanDispatchOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  Operation *kernel = symbolTable.lookupNearestSymbolFrom(*this, getKernel());
  // After a GPU target's kernel phase the kernel lives in a code module
  // nested in the kernels module (sm_90a: gpu.module @v4_gpu).
  if (!kernel && !getKernel().getNestedReferences().empty())
    if (Operation *kernels = symbolTable.lookupNearestSymbolFrom(
            *this, getKernel().getRootReference()))
      for (Region &r : kernels->getRegions())
        for (Operation &code : r.getOps())
          if (code.hasTrait<OpTrait::SymbolTable>() && !kernel)
            kernel = symbolTable.lookupSymbolIn(&code,
                                                getKernel().getLeafReference());
  if (!kernel)
    return emitOpError() << "kernel " << getKernel()
                         << " does not exist [plan_dispatch_c1]";
  // Before the kernel phase lowers it, a kernel is a func.func whose
  // arguments (operands, then a destination per fresh result) must take
  // exactly these buffers.
  auto fn = dyn_cast<func::FuncOp>(kernel);
  if (!fn || !fn->hasAttr("v4.kernel"))
    return success();
  SmallVector<Type> expected;
  for (Type t : fn.getArgumentTypes())
    if (failed(getStorageMemRefTypes(t, expected)))
      return success(); // already in storage (memref) form
  if (expected.size() != getBuffers().size())
    return emitOpError() << "kernel " << getKernel() << " takes "
                         << expected.size() << " buffers, got "
                         << getBuffers().size() << " [plan_dispatch_c2]";
  for (auto [i, pair] : llvm::enumerate(llvm::zip(expected, getBuffers()))) {
    auto want = cast<MemRefType>(std::get<0>(pair));
    auto got = cast<MemRefType>(std::get<1>(pair).getType());
    if (want.getShape() != got.getShape() ||
        want.getElementType() != got.getElementType())
      return emitOpError() << "buffer " << i << " of kernel " << getKernel()
                           << " must be " << want << ", got " << got
                           << " [plan_dispatch_c3]";
  }
  return success();
}

LogicalResult PlanCollectiveOp::verify() {
  // plan_collective_c1: a known collective with its buffer count.
  StringRef kind = getKind();
  size_t want = kind == "all_reduce_sum"                                 ? 1
                : (kind == "all_gather" || kind == "reduce_scatter_sum") ? 2
                : kind == "all_to_all"                                   ? 4
                                                                         : 0;
  if (want == 0)
    return emitOpError() << "unknown collective '" << kind
                         << "' (known: all_reduce_sum, all_gather, "
                            "reduce_scatter_sum, all_to_all) "
                            "[plan_collective_c1]";
  if (getBuffers().size() != want)
    return emitOpError() << kind << " takes " << want << " buffers, got "
                         << getBuffers().size() << " [plan_collective_c1]";
  // plan_collective_c2: bf16 or f32 elements to sum (i64 too to gather or
  // send), the same in every buffer; all_to_all's counts (buffers 0 and 2)
  // are i64.
  auto eltOf = [&](size_t i) {
    return cast<ShapedType>(getBuffers()[i].getType()).getElementType();
  };
  bool toAll = kind == "all_to_all";
  Type elt = eltOf(toAll ? 1 : 0);
  bool known = elt.isBF16() || elt.isF32() ||
               ((kind == "all_gather" || toAll) && elt.isInteger(64));
  for (size_t i = 0; i < want; ++i)
    known &= eltOf(i) == ((toAll && i % 2 == 0)
                              ? Type(IntegerType::get(getContext(), 64))
                              : elt);
  if (!known)
    return emitOpError() << "expected one element type, bf16 or f32 (or i64 "
                            "to gather or send; i64 counts), got "
                         << elt << " [plan_collective_c2]";
  return success();
}
