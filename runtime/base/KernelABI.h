//===- KernelABI.h - how a host kernel is called ----------------*- C++ -*-===//
//
// The one description of the CPU kernel ABI, shared by the compiler (the
// v4-cpu-add-kernel-entries pass emits it), the runtime's CPU device (calls
// it) and the test harness (calls single kernels):
//
//   extern "C" void k(void **args);
//
// args[i] points at the strided memref descriptor of the kernel's buffer
// argument i, in the order of the artifact step's `buffers` (operands, then
// results; a tied result is not repeated). A descriptor is MLIR's LLVM
// lowering of memref<...> with an identity layout:
//
//   struct { void *allocated, *aligned; int64_t offset;
//            int64_t sizes[rank], strides[rank]; }
//
// with row-major strides and offset 0. Kernels neither allocate nor free
// their arguments and return nothing: results are written into the buffers.
//
// The launch block (artifact format 1.1 geometry, issue 8): after the
// buffers, args[numBufferArgs] points at a LaunchBlock naming the block of
// the kernel's launch grid this call computes, or is null (block 0 of a
// 1 x 1 x 1 grid). A kernel whose launch grid is 1 x 1 x 1 (every cold op)
// never reads it, so callers that pass only the buffers still run those;
// a kernel with a larger grid (the hot CPU kernels: Kernel.launch) computes
// only its block's share of independent outputs (output features, token
// rows, heads), and the caller runs every block of the grid once, in any
// order and on any thread. A block's results never depend on the grid: each
// output element is reduced in the same order whatever block computes it.
//
// GPU kernels (the sm_90a target, artifact format 1.4) take no args array:
// their kernel parameters are the fields of the same descriptors, each a
// separate 8-byte parameter (allocated, aligned, offset, sizes..., strides...)
// for every buffer in the same order (each buffer's aligned pointer at
// least 64-byte aligned, offset 0: the sm_90a target's 16-byte vector loads
// rely on it), then the fields of a rank-1 i8 descriptor of the kernel's
// workspace: Kernel.launch.workspaceBytes of
// device scratch, at least 64-byte aligned, which the kernel may overwrite
// (one launch at a time per workspace). The launch geometry is the
// artifact's: grid dims from Kernel.launch.grid at the call's token count,
// block dims from Kernel.launch.block.
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_BASE_KERNELABI_H
#define V4_RUNTIME_BASE_KERNELABI_H

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace v4::abi {

/// The entry point of a host kernel.
using KernelEntry = void (*)(void **args);

/// The descriptor of a rank-`Rank` buffer, for callers that know the rank.
template <int Rank> struct MemRefDescriptor {
  void *allocated;
  void *aligned;
  int64_t offset;
  int64_t sizes[Rank];
  int64_t strides[Rank];
};
static_assert(sizeof(MemRefDescriptor<2>) == 7 * sizeof(int64_t),
              "a descriptor is 3 + 2 * rank words");

/// Which block of the launch grid a call computes (args[numBufferArgs]).
struct LaunchBlock {
  int64_t x, y, z;
  /// The grid: blocks per dimension at this call's token count.
  int64_t gridX, gridY, gridZ;
};
static_assert(sizeof(LaunchBlock) == 6 * sizeof(int64_t),
              "the entry reads six words");

/// The size, in int64_t words, of a rank-`rank` descriptor.
constexpr size_t descriptorWords(size_t rank) { return 3 + 2 * rank; }

/// Writes the descriptor of a row-major buffer at `data` with `sizes` into
/// `words` (descriptorWords(rank) of them).
inline void writeDescriptor(void *data, const int64_t *sizes, size_t rank,
                            int64_t *words) {
  std::memcpy(&words[0], &data, sizeof(void *));
  std::memcpy(&words[1], &data, sizeof(void *));
  words[2] = 0;
  int64_t stride = 1;
  for (size_t r = rank; r-- > 0;) {
    words[3 + r] = sizes[r];
    words[3 + rank + r] = stride;
    stride *= sizes[r];
  }
}

} // namespace v4::abi

#endif // V4_RUNTIME_BASE_KERNELABI_H
