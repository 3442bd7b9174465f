//===- FakeCUDADriver.h - what the fake CUDA driver records -----*- C++ -*-===//
//
// The record of FakeCUDADriver.cpp (built as libcuda.so.1 for
// CUDADeviceTest and the lit tests of the CUDA device's host side): the last
// launch's function, geometry and parameter array, read through the
// fakeCudaLastLaunch() symbol. With V4_FAKE_CUDA_TRACE=FILE it also appends
// one line per launch, capture and graph launch to FILE (the lit tests').
//
//===----------------------------------------------------------------------===//
#ifndef V4_TEST_RUNTIME_FAKECUDADRIVER_H
#define V4_TEST_RUNTIME_FAKECUDADRIVER_H

#include <string>

namespace v4::testing {

struct FakeCUDALaunch {
  std::string function;
  unsigned grid[3] = {0, 0, 0}, block[3] = {0, 0, 0};
  unsigned sharedMemoryBytes = 0;
  /// The stream launched on (one per queue of the device).
  void *stream = nullptr;
  /// The kernel parameter array as passed (valid until the next launch).
  void **params = nullptr;
  int count = 0;
  /// Stream capture (CUDA graphs): launches recorded while capturing (not
  /// counted in `count`), graphs instantiated and graph launches.
  int captured = 0;
  int graphs = 0;
  int graphLaunches = 0;
  /// Host-to-device copies from pinned memory (the staging of large
  /// uploads) and pinned host allocations.
  int pinnedCopies = 0;
  int pinnedAllocations = 0;
};

} // namespace v4::testing

#endif // V4_TEST_RUNTIME_FAKECUDADRIVER_H
