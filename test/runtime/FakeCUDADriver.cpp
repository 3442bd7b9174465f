//===- FakeCUDADriver.cpp - a CUDA driver on host memory, for tests -------===//
//
// Built as libcuda.so.1 (SONAME included) for CUDADeviceTest: a test loads
// it by path first, so the runtime's dlopen("libcuda.so.1") finds it among
// the loaded objects. "Device memory" is host memory; a launch runs nothing
// and records its function, geometry and parameter array, which the test
// reads with fakeCudaLastLaunch(). V4_FAKE_CUDA_CC ("8.0") sets the compute
// capability and V4_FAKE_CUDA_DEVICES the device count. Stream capture
// records launches into a "graph" (a list of them) that cuGraphLaunch
// counts; V4_FAKE_CUDA_TRACE=FILE appends a line per launch, capture and
// graph launch to FILE. Work completes at once; V4_FAKE_CUDA_STREAM_BUSY=1
// makes cuStreamQuery say it never does (NcclCollectivesTest's timeout).
//
//===----------------------------------------------------------------------===//
#include "test/runtime/FakeCUDADriver.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>

namespace {
using CUresult = int;
constexpr CUresult kOk = 0, kInvalidValue = 1, kOutOfMemory = 2,
                   kNotFound = 500, kNotReady = 600;

v4::testing::FakeCUDALaunch last;
std::string loadedImage;
// Function handles: the names, owned here (no leak for LeakSanitizer).
std::set<std::string> functionNames;

bool capturing = false;
// Pinned host allocations (cuMemAllocHost) and their sizes.
std::map<void *, size_t> pinned;
// A graph: the number of launches captured into it.
struct FakeGraph {
  int launches = 0;
};

void trace(const std::string &line) {
  if (const char *path = std::getenv("V4_FAKE_CUDA_TRACE"))
    if (FILE *f = std::fopen(path, "a")) {
      std::fprintf(f, "%s\n", line.c_str());
      std::fclose(f);
    }
}

int envInt(const char *name, int dflt) {
  const char *v = std::getenv(name);
  return v ? std::atoi(v) : dflt;
}
} // namespace

extern "C" {
__attribute__((visibility("default"))) const void *fakeCudaLastLaunch() {
  return &last;
}
__attribute__((visibility("default"))) const char *fakeCudaLoadedImage() {
  return loadedImage.c_str();
}

CUresult cuInit(unsigned) { return kOk; }
CUresult cuGetErrorString(CUresult r, const char **s) {
  *s = r == kOutOfMemory ? "CUDA_ERROR_OUT_OF_MEMORY" : "CUDA_ERROR_FAKE";
  return kOk;
}
CUresult cuDeviceGetCount(int *n) {
  *n = envInt("V4_FAKE_CUDA_DEVICES", 1);
  return kOk;
}
CUresult cuDeviceGet(int *d, int ordinal) {
  *d = ordinal;
  return kOk;
}
CUresult cuDeviceGetAttribute(int *v, int attribute, int) {
  const char *cc = std::getenv("V4_FAKE_CUDA_CC");
  int major = 9, minor = 0;
  if (cc)
    std::sscanf(cc, "%d.%d", &major, &minor);
  if (attribute == 75)
    *v = major;
  else if (attribute == 76)
    *v = minor;
  else
    return kInvalidValue;
  return kOk;
}
CUresult cuDeviceGetName(char *name, int len, int) {
  std::strncpy(name, "Fake H200", len);
  return kOk;
}
CUresult cuDevicePrimaryCtxRetain(void **c, int) {
  *c = &last;
  return kOk;
}
CUresult cuDevicePrimaryCtxRelease_v2(int) { return kOk; }
CUresult cuCtxSetCurrent(void *) { return kOk; }
// A stream is a distinct handle (its launches record it).
CUresult cuStreamCreate(void **s, unsigned) {
  *s = new int(0);
  return kOk;
}
CUresult cuStreamDestroy_v2(void *s) {
  delete static_cast<int *>(s);
  return kOk;
}
CUresult cuStreamSynchronize(void *) { return kOk; }
// V4_FAKE_CUDA_STREAM_BUSY=1: work never finishes (a hung collective).
CUresult cuStreamQuery(void *) {
  return envInt("V4_FAKE_CUDA_STREAM_BUSY", 0) ? kNotReady : kOk;
}
CUresult cuMemGetInfo_v2(size_t *free, size_t *total) {
  *free = size_t(1) << 30;
  *total = size_t(2) << 30;
  return kOk;
}
CUresult cuMemAlloc_v2(unsigned long long *p, size_t bytes) {
  if (bytes > (size_t(1) << 30))
    return kOutOfMemory;
  // Poisoned, so a test sees whether the device zero-fills.
  void *m = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
  std::memset(m, 0xA5, bytes);
  *p = reinterpret_cast<unsigned long long>(m);
  return kOk;
}
CUresult cuMemFree_v2(unsigned long long p) {
  std::free(reinterpret_cast<void *>(p));
  return kOk;
}
CUresult cuMemcpyDtoHAsync_v2(void *dst, unsigned long long src, size_t n,
                              void *) {
  std::memcpy(dst, reinterpret_cast<void *>(src), n);
  return kOk;
}
CUresult cuMemsetD8_v2(unsigned long long p, unsigned char v, size_t n) {
  std::memset(reinterpret_cast<void *>(p), v, n);
  return kOk;
}
CUresult cuMemsetD8Async(unsigned long long p, unsigned char v, size_t n,
                         void *) {
  return cuMemsetD8_v2(p, v, n);
}
CUresult cuMemsetD16Async(unsigned long long p, unsigned short v, size_t n,
                          void *) {
  for (size_t i = 0; i < n; ++i)
    std::memcpy(reinterpret_cast<char *>(p) + 2 * i, &v, 2);
  return kOk;
}
CUresult cuMemsetD32Async(unsigned long long p, unsigned v, size_t n, void *) {
  for (size_t i = 0; i < n; ++i)
    std::memcpy(reinterpret_cast<char *>(p) + 4 * i, &v, 4);
  return kOk;
}
CUresult cuModuleLoadData(void **m, const void *image) {
  // The first bytes, as text: "PTX..." or the cubin's ELF magic.
  loadedImage.assign(static_cast<const char *>(image), 4);
  *m = &loadedImage;
  return kOk;
}
CUresult cuModuleUnload(void *) { return kOk; }
CUresult cuModuleGetFunction(void **f, void *, const char *name) {
  if (std::strncmp(name, "missing", 7) == 0)
    return kNotFound;
  *f = const_cast<char *>(functionNames.insert(name).first->c_str());
  return kOk;
}
CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz,
                        unsigned bx, unsigned by, unsigned bz, unsigned smem,
                        void *stream, void **params, void **) {
  last.function = static_cast<const char *>(f);
  last.stream = stream;
  last.grid[0] = gx, last.grid[1] = gy, last.grid[2] = gz;
  last.block[0] = bx, last.block[1] = by, last.block[2] = bz;
  last.sharedMemoryBytes = smem;
  last.params = params;
  if (capturing) {
    ++last.captured;
    trace(std::string("captured ") + last.function);
  } else {
    ++last.count;
    trace(std::string("launch ") + last.function);
  }
  return kOk;
}
CUresult cuMemAllocHost_v2(void **p, size_t bytes) {
  *p = std::malloc(bytes);
  if (!*p)
    return kOutOfMemory;
  pinned[*p] = bytes;
  ++last.pinnedAllocations;
  return kOk;
}
CUresult cuMemFreeHost(void *p) {
  pinned.erase(p);
  std::free(p);
  return kOk;
}
CUresult cuMemcpyHtoDAsync_v2(unsigned long long dst, const void *src, size_t n,
                              void *) {
  std::memcpy(reinterpret_cast<void *>(dst), src, n);
  auto from = reinterpret_cast<uintptr_t>(src);
  for (auto &[base, bytes] : pinned)
    if (from >= reinterpret_cast<uintptr_t>(base) &&
        from + n <= reinterpret_cast<uintptr_t>(base) + bytes)
      ++last.pinnedCopies;
  return kOk;
}
// Events: copies complete at once, so an event is only a handle.
CUresult cuEventCreate(void **e, unsigned) {
  *e = new int(0);
  return kOk;
}
CUresult cuEventRecord(void *, void *) { return kOk; }
CUresult cuEventSynchronize(void *) { return kOk; }
CUresult cuEventDestroy_v2(void *e) {
  delete static_cast<int *>(e);
  return kOk;
}
CUresult cuStreamBeginCapture_v2(void *, int) {
  if (capturing)
    return kInvalidValue;
  capturing = true;
  last.captured = 0;
  trace("begin capture");
  return kOk;
}
CUresult cuStreamEndCapture(void *, void **graph) {
  if (!capturing)
    return kInvalidValue;
  capturing = false;
  *graph = new FakeGraph{last.captured};
  trace("end capture: " + std::to_string(last.captured) + " launches");
  return kOk;
}
CUresult cuGraphInstantiateWithFlags(void **exec, void *graph,
                                     unsigned long long) {
  ++last.graphs;
  *exec = new FakeGraph(*static_cast<FakeGraph *>(graph));
  return kOk;
}
CUresult cuGraphLaunch(void *exec, void *) {
  ++last.graphLaunches;
  trace("graph launch: " +
        std::to_string(static_cast<FakeGraph *>(exec)->launches) + " launches");
  return kOk;
}
CUresult cuGraphExecDestroy(void *exec) {
  delete static_cast<FakeGraph *>(exec);
  return kOk;
}
CUresult cuGraphDestroy(void *graph) {
  delete static_cast<FakeGraph *>(graph);
  return kOk;
}
}
