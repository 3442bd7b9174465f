//===- CPUTarget.h - kernels module -> host shared object -------*- C++ -*-===//
//
// The CPU backend: a module of kernel functions (func.func on memrefs, scf,
// arith, math) is lowered to the LLVM dialect, translated to LLVM IR,
// compiled for the host with LLVM's x86 (or native) target into a PIC object
// and linked in-process with lld into a shared object, whose bytes go into
// the artifact. The runtime dlopens it; it needs no MLIR or LLVM.
//
// Kernel ABI (docs/ARCHITECTURE.md, "CPU kernel ABI"): every kernel `@k`
// with memref arguments gets an exported entry `void k(void **args)`, where
// args[i] points to the strided memref descriptor of argument i:
//   struct { void *allocated; void *aligned; int64_t offset;
//            int64_t sizes[rank]; int64_t strides[rank]; }
//
//===----------------------------------------------------------------------===//
#ifndef V4_LOWERING_TARGET_CPU_CPUTARGET_H
#define V4_LOWERING_TARGET_CPU_CPUTARGET_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"

#include <string>

namespace mlir::v4 {

struct CPUTargetOptions {
  /// LLVM optimisation level of the kernels (0-3).
  unsigned optLevel = 2;
  /// Target triple and CPU; empty means the host's. CPU "generic" keeps the
  /// object portable across x86-64 machines.
  std::string triple;
  std::string cpu = "x86-64";
};

/// Lowers `kernels` (modified in place) to the LLVM dialect and adds the
/// `void k(void **args)` entry of every public func.func kernel. Emits
/// diagnostics at the failing op.
LogicalResult lowerKernelsToLLVMDialect(ModuleOp kernels);

/// Lowers and compiles `kernels` into the bytes of a host shared object.
FailureOr<std::string> compileKernelsToSharedObject(
    ModuleOp kernels, const CPUTargetOptions &options = CPUTargetOptions());

} // namespace mlir::v4

#endif // V4_LOWERING_TARGET_CPU_CPUTARGET_H
