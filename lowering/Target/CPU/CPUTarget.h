//===- CPUTarget.h - the CPU target backend ---------------------*- C++ -*-===//
//
// The CPU target (TargetBackend "cpu"): the hot ops come from the CPU
// kernel builders (lowering/KernelBuilders), every other op from its
// target-neutral linalg body; the kernels are bufferized, given the
// `void k(void **args)` entries of the kernel ABI (runtime/base/KernelABI.h),
// lowered to the LLVM dialect, compiled for x86-64 into a PIC object and
// linked with lld into a host shared object, whose bytes go into the
// artifact. The runtime dlopens it; it needs no MLIR or LLVM.
//
//===----------------------------------------------------------------------===//
#ifndef V4_LOWERING_TARGET_CPU_CPUTARGET_H
#define V4_LOWERING_TARGET_CPU_CPUTARGET_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"

#include "runtime/base/HostISA.h"

#include <string>

namespace mlir::v4 {

struct CPUTargetOptions {
  /// LLVM optimisation level of the kernels (0-3).
  unsigned optLevel = 2;
  /// Target triple (empty: the host's) and CPU: an x86-64 level
  /// (runtime/base/HostISA.h), which the artifact records and the runtime
  /// checks.
  std::string triple;
  std::string cpu = std::string(::v4::kDefaultHostISA);
  /// Instrument the kernels with AddressSanitizer (kSanitizeKernelsAttrName).
  bool sanitizeAddress = false;
};

/// Registers the "cpu" TargetBackend (registerBuiltinTargetBackends).
void registerCPUTargetBackend();

/// Compiles a kernels module in the LLVM dialect (after the CPU kernel
/// phase) into the bytes of a host shared object.
FailureOr<std::string>
linkKernelsToSharedObject(ModuleOp kernels,
                          const CPUTargetOptions &options = CPUTargetOptions());

} // namespace mlir::v4

#endif // V4_LOWERING_TARGET_CPU_CPUTARGET_H
