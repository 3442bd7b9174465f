//===- CPUKernels.h - CPU kernel builders for v4 ops ------------*- C++ -*-===//
//
// A kernel builder turns one v4 op into a func.func on memrefs whose body is
// loops (scf) over arith/math, following the op's V4-SPEC rounding points.
// The kernel takes the memrefs of every operand, then of every result, in
// order (kernelArgumentTypes). A state result may alias its state operand
// (the runtime updates state in place), so kernels that write state must be
// correct under aliasing. The CPU target (Target/CPU) compiles a module of
// kernels into a shared object.
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

/// Appends the kernel argument types (memrefs) that carry a value of
/// `type`: tensors map to memrefs of the same shape, with f8E4M3FN/f8E8M0FNU
/// stored as raw i8 codes and f4E2M1FN packed two per byte along the last
/// dim (the checkpoint layout); !v4.window_ring -> [B, slots, dim];
/// !v4.kv_cache -> [B, capacity, dim]; !v4.compressor_state -> kv_state and
/// score_state, both f32 [B, rows, width]; !v4.engram_state -> i64
/// [B, lookback]. Fails for other types.
LogicalResult kernelArgumentTypes(Type type, SmallVectorImpl<Type> &out);

/// Builds the kernel of `op` at the end of `module` as a public function
/// named `name`. Fails with a diagnostic at `op` if the op (or this form of
/// it) has no CPU kernel builder yet.
FailureOr<func::FuncOp> buildCPUKernel(Operation *op, ModuleOp module,
                                       StringRef name);

} // namespace mlir::v4

#endif // V4_LOWERING_KERNELBUILDERS_CPUKERNELS_H
