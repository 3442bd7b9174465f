//===- TestHostKernels.cpp - two kernels with the host kernel ABI ---------===//
//
// Built as a shared library whose bytes the device tests put in an artifact
// as its host code object, so the CPU device's loading and launching are
// tested without the compiler.
//
//===----------------------------------------------------------------------===//
#include "runtime/base/KernelABI.h"

using v4::abi::MemRefDescriptor;

extern "C" {

/// out[b][t] = 100 * b + t, through the descriptor's sizes and strides.
__attribute__((visibility("default"))) void v4_test_iota(void **args) {
  auto *out = static_cast<MemRefDescriptor<2> *>(args[0]);
  auto *data = static_cast<int64_t *>(out->aligned) + out->offset;
  for (int64_t b = 0; b < out->sizes[0]; ++b)
    for (int64_t t = 0; t < out->sizes[1]; ++t)
      data[b * out->strides[0] + t * out->strides[1]] = 100 * b + t;
}

/// out[r][c] = in[c] * (r + 1).
__attribute__((visibility("default"))) void v4_test_scale(void **args) {
  auto *in = static_cast<MemRefDescriptor<1> *>(args[0]);
  auto *out = static_cast<MemRefDescriptor<2> *>(args[1]);
  auto *x = static_cast<const float *>(in->aligned);
  auto *y = static_cast<float *>(out->aligned);
  for (int64_t r = 0; r < out->sizes[0]; ++r)
    for (int64_t c = 0; c < out->sizes[1]; ++c)
      y[r * out->strides[0] + c * out->strides[1]] =
          x[c * in->strides[0]] * float(r + 1);
}

/// A kernel with a launch grid: adds 1 to out[block] (the block's linear
/// index, x fastest), and block 0 stores the grid it was told into
/// out[blocks + 0..2] (runtime/base/KernelABI.h: the launch block follows
/// the buffers). Blocks write disjoint words, as the ABI requires, so the
/// concurrency tests run it under TSan.
__attribute__((visibility("default"))) void v4_test_blocks(void **args) {
  auto *out = static_cast<MemRefDescriptor<1> *>(args[0]);
  auto *block = static_cast<const v4::abi::LaunchBlock *>(args[1]);
  auto *data = static_cast<int64_t *>(out->aligned);
  int64_t blocks = block->gridX * block->gridY * block->gridZ;
  int64_t i = block->x + block->gridX * (block->y + block->gridY * block->z);
  if (i < 0 || i >= blocks || blocks + 3 > out->sizes[0])
    return;
  data[i] += 1;
  if (i != 0)
    return;
  data[blocks] = block->gridX;
  data[blocks + 1] = block->gridY;
  data[blocks + 2] = block->gridZ;
}

} // extern "C"
