//===- CPUKernels.h - CPU kernel builders for v4 ops ------------*- C++ -*-===//
//
// A kernel builder turns one v4 op into a func.func on memrefs whose body is
// loops (scf) over arith/math, following the op's V4-SPEC rounding points.
// The kernel takes the memrefs of every operand, then of every result, in
// order (their storage memrefs: dialects/V4/V4StorageLayout.h). A state result
// may alias its state operand (the runtime updates state in place), so kernels
// that write state must be correct under aliasing. The CPU target (Target/CPU)
// compiles a module of kernels into a shared object.
//
//===----------------------------------------------------------------------===//
#ifndef V4_LOWERING_KERNELBUILDERS_CPUKERNELS_H
#define V4_LOWERING_KERNELBUILDERS_CPUKERNELS_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"

namespace mlir::v4 {

/// Registers the dialects kernel bodies use (func, scf, arith, math, memref).
void registerCPUKernelDialects(DialectRegistry &registry);

/// Whether `op` is a hot op (a GEMM, grouped experts, sparse attention,
/// indexer scores) with a tiled hand-built body here; every other op has
/// its target-neutral body in V4ToLinalg.
bool hasTiledKernelBuilder(Operation *op);

/// Builds the kernel of `op` at the end of `module` as a public function
/// named `name`. Fails with a diagnostic at `op` if the op (or this form of
/// it) has no CPU kernel builder yet.
FailureOr<func::FuncOp> buildCPUKernel(Operation *op, ModuleOp module,
                                       StringRef name);

} // namespace mlir::v4

#endif // V4_LOWERING_KERNELBUILDERS_CPUKERNELS_H
