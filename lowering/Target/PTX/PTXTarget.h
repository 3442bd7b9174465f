//===- PTXTarget.h - the sm_90a target backend ------------------*- C++ -*-===//
//
// The NVIDIA Hopper target (TargetBackend "sm_90a", issue 10). The kernel
// phase is the CPU target's up to bufferization (the hot ops from the same
// hand builders, every other op from its target-neutral linalg body); then
// `v4-gpu-map-kernels` turns each kernel into a `gpu.func` of one
// `gpu.module @v4_gpu` (threads, barriers, a workspace for temporaries), and
// upstream `convert-gpu-to-nvvm` and `nvvm-attach-target` lower it to the
// NVVM dialect. `serialize` gives PTX from LLVM's NVPTX backend (no CUDA
// install needed), and a cubin too when the CUDA toolkit's ptxas is found.
//
// Kernel ABI on the GPU (runtime/base/KernelABI.h): a kernel's parameters
// are the fields of each buffer's memref descriptor in order, then those of
// the workspace (`memref<?xi8>`, Kernel.launch.workspaceBytes at the chunk
// bound); a kernel with a launch grid runs one thread per block of it.
//
//===----------------------------------------------------------------------===//
#ifndef V4_LOWERING_TARGET_PTX_PTXTARGET_H
#define V4_LOWERING_TARGET_PTX_PTXTARGET_H

#include "mlir/Support/LLVM.h"
#include "llvm/ADT/StringRef.h"

#include <optional>
#include <string>

namespace mlir::v4 {

/// The gpu.module that holds every kernel of the sm_90a target.
constexpr llvm::StringLiteral kGPUModuleName = "v4_gpu";
/// A gpu.func kernel's workspace size in bytes at the chunk bound (i64).
constexpr llvm::StringLiteral kWorkspaceBytesAttrName = "v4.workspace_bytes";
/// A gpu.func kernel's threads per block (array<i32: x, y, z>).
constexpr llvm::StringLiteral kBlockSizeAttrName = "v4.block_size";
/// The kernels module attribute naming the CUDA toolkit the sm_90a target
/// takes ptxas and libdevice from (v4c --cuda-toolkit).
constexpr llvm::StringLiteral kCUDAToolkitAttrName = "v4.cuda_toolkit";

/// Registers the "sm_90a" TargetBackend (registerBuiltinTargetBackends).
void registerPTXTargetBackend();

/// The CUDA toolkit to use: `requested` when not empty, else $CUDA_HOME,
/// $CUDA_PATH or /usr/local/cuda, whichever holds bin/ptxas; none when no
/// toolkit is found.
std::optional<std::string> findCUDAToolkit(StringRef requested = {});

} // namespace mlir::v4

#endif // V4_LOWERING_TARGET_PTX_PTXTARGET_H
