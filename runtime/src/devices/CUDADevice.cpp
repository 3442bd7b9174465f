//===- CUDADevice.cpp - an NVIDIA GPU as a device -------------------------===//
#include "runtime/src/devices/CUDADevice.h"
#include "runtime/src/devices/SymbolTable.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <string>
#include <vector>

namespace v4::rt {

namespace art = v4::artifact;

namespace {
// The driver API's types and the few constants used, as the CUDA driver's
// ABI defines them (cuda.h is not needed to build the runtime).
using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = void *;
using CUmodule = void *;
using CUfunction = void *;
using CUstream = void *;
using CUgraph = void *;
using CUevent = void *;
using CUgraphExec = void *;
/// CU_STREAM_CAPTURE_MODE_THREAD_LOCAL: only this thread's unsafe calls
/// during a capture are errors.
constexpr int kCaptureModeThreadLocal = 1;
constexpr CUresult kSuccess = 0;
/// CUDA_ERROR_NOT_READY: cuStreamQuery's "work still pending".
constexpr CUresult kNotReady = 600;
constexpr int kAttrComputeCapabilityMajor = 75;
constexpr int kAttrComputeCapabilityMinor = 76;
} // namespace

/// The driver entry points, resolved from libcuda.so.1 (the versioned names
/// cuda.h maps the API to).
struct CUDADriver {
  void *library = nullptr;
  CUresult (*cuInit)(unsigned);
  CUresult (*cuGetErrorString)(CUresult, const char **);
  CUresult (*cuDeviceGetCount)(int *);
  CUresult (*cuDeviceGet)(CUdevice *, int);
  CUresult (*cuDeviceGetAttribute)(int *, int, CUdevice);
  CUresult (*cuDeviceGetName)(char *, int, CUdevice);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
  CUresult (*cuDevicePrimaryCtxRelease)(CUdevice);
  CUresult (*cuCtxSetCurrent)(CUcontext);
  CUresult (*cuStreamCreate)(CUstream *, unsigned);
  CUresult (*cuStreamDestroy)(CUstream);
  CUresult (*cuStreamSynchronize)(CUstream);
  CUresult (*cuStreamQuery)(CUstream);
  CUresult (*cuMemGetInfo)(size_t *, size_t *);
  CUresult (*cuMemAlloc)(CUdeviceptr *, size_t);
  CUresult (*cuMemFree)(CUdeviceptr);
  CUresult (*cuMemsetD8)(CUdeviceptr, unsigned char, size_t);
  CUresult (*cuModuleLoadData)(CUmodule *, const void *);
  CUresult (*cuModuleUnload)(CUmodule);
  CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned,
                             unsigned, unsigned, unsigned, CUstream, void **,
                             void **);
  CUresult (*cuMemcpyDtoHAsync)(void *, CUdeviceptr, size_t, CUstream);
  CUresult (*cuMemsetD8Async)(CUdeviceptr, unsigned char, size_t, CUstream);
  CUresult (*cuMemsetD16Async)(CUdeviceptr, unsigned short, size_t, CUstream);
  CUresult (*cuMemsetD32Async)(CUdeviceptr, unsigned, size_t, CUstream);
  CUresult (*cuMemAllocHost)(void **, size_t);
  CUresult (*cuMemFreeHost)(void *);
  CUresult (*cuMemcpyHtoDAsync)(CUdeviceptr, const void *, size_t, CUstream);
  CUresult (*cuEventCreate)(CUevent *, unsigned);
  CUresult (*cuEventRecord)(CUevent, CUstream);
  CUresult (*cuEventSynchronize)(CUevent);
  CUresult (*cuEventDestroy)(CUevent);
  CUresult (*cuStreamBeginCapture)(CUstream, int);
  CUresult (*cuStreamEndCapture)(CUstream, CUgraph *);
  CUresult (*cuGraphInstantiate)(CUgraphExec *, CUgraph, unsigned long long);
  CUresult (*cuGraphLaunch)(CUgraphExec, CUstream);
  CUresult (*cuGraphExecDestroy)(CUgraphExec);
  CUresult (*cuGraphDestroy)(CUgraph);

  ~CUDADriver() {
    if (library)
      dlclose(library);
  }

  /// Loads the driver library and every entry point; null after setting
  /// `why` to what is missing.
  static std::unique_ptr<CUDADriver> load(std::string &why) {
    auto d = std::make_unique<CUDADriver>();
    d->library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!d->library) {
      const char *error = dlerror();
      why = std::string("no CUDA driver (") +
            (error ? error : "libcuda.so.1 not found") + ")";
      return nullptr;
    }
    SymbolTable symbols(d->library);
    auto get = [&](auto &fn, const char *symbol) { symbols.get(fn, symbol); };
    get(d->cuInit, "cuInit");
    get(d->cuGetErrorString, "cuGetErrorString");
    get(d->cuDeviceGetCount, "cuDeviceGetCount");
    get(d->cuDeviceGet, "cuDeviceGet");
    get(d->cuDeviceGetAttribute, "cuDeviceGetAttribute");
    get(d->cuDeviceGetName, "cuDeviceGetName");
    get(d->cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    get(d->cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
    get(d->cuCtxSetCurrent, "cuCtxSetCurrent");
    get(d->cuStreamCreate, "cuStreamCreate");
    get(d->cuStreamDestroy, "cuStreamDestroy_v2");
    get(d->cuStreamSynchronize, "cuStreamSynchronize");
    get(d->cuStreamQuery, "cuStreamQuery");
    get(d->cuMemGetInfo, "cuMemGetInfo_v2");
    get(d->cuMemAlloc, "cuMemAlloc_v2");
    get(d->cuMemFree, "cuMemFree_v2");
    get(d->cuMemsetD8, "cuMemsetD8_v2");
    get(d->cuModuleLoadData, "cuModuleLoadData");
    get(d->cuModuleUnload, "cuModuleUnload");
    get(d->cuModuleGetFunction, "cuModuleGetFunction");
    get(d->cuLaunchKernel, "cuLaunchKernel");
    get(d->cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2");
    get(d->cuMemsetD8Async, "cuMemsetD8Async");
    get(d->cuMemsetD16Async, "cuMemsetD16Async");
    get(d->cuMemsetD32Async, "cuMemsetD32Async");
    get(d->cuMemAllocHost, "cuMemAllocHost_v2");
    get(d->cuMemFreeHost, "cuMemFreeHost");
    get(d->cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2");
    get(d->cuEventCreate, "cuEventCreate");
    get(d->cuEventRecord, "cuEventRecord");
    get(d->cuEventSynchronize, "cuEventSynchronize");
    get(d->cuEventDestroy, "cuEventDestroy_v2");
    get(d->cuStreamBeginCapture, "cuStreamBeginCapture_v2");
    get(d->cuStreamEndCapture, "cuStreamEndCapture");
    get(d->cuGraphInstantiate, "cuGraphInstantiateWithFlags");
    get(d->cuGraphLaunch, "cuGraphLaunch");
    get(d->cuGraphExecDestroy, "cuGraphExecDestroy");
    get(d->cuGraphDestroy, "cuGraphDestroy");
    if (const std::string &missing = symbols.missing(); !missing.empty()) {
      why = "the CUDA driver libcuda.so.1 lacks " + missing +
            " (a driver for CUDA 12 or newer is needed)";
      return nullptr;
    }
    return d;
  }

  std::string errorName(CUresult r) const {
    const char *s = nullptr;
    if (cuGetErrorString && cuGetErrorString(r, &s) == kSuccess && s)
      return s;
    return "CUDA error " + std::to_string(r);
  }
};

/// A queue: its stream, kernel workspace, pinned staging and the parameter
/// words of its launches. Its mutex orders its users (recursive: a
/// recording holds it from beginRecording to endRecording while its thread
/// launches).
struct CUDADevice::CUDAQueue final : public Device::Queue {
  explicit CUDAQueue(CUDADevice &dev) : dev(dev) {}
  ~CUDAQueue() override {
    const CUDADriver &d = *dev.driver;
    d.cuCtxSetCurrent(dev.context);
    if (stream)
      d.cuStreamSynchronize(stream);
    dev.release(workspace);
    for (Staging &st : staging) {
      if (st.host)
        d.cuMemFreeHost(st.host);
      if (st.done)
        d.cuEventDestroy(st.done);
    }
    if (stream)
      d.cuStreamDestroy(stream);
  }
  CUDADevice &dev;
  CUstream stream = nullptr;
  DeviceBuffer workspace;
  std::recursive_mutex mutex;
  bool recording = false;
  std::vector<uint64_t> words;
  std::vector<void *> params;
  struct Staging {
    void *host = nullptr;
    CUevent done = nullptr; // after its chunk's copy
  };
  Staging staging[2];
};

Expected<std::unique_ptr<CUDADevice::CUDAQueue>> CUDADevice::newQueue() {
  auto q = std::make_unique<CUDAQueue>(*this);
  driver->cuCtxSetCurrent(context);
  if (Status s = check(driver->cuStreamCreate(&q->stream, 0), "cuStreamCreate");
      !s)
    return s;
  if (workspaceBytes) {
    auto ws = allocate(workspaceBytes);
    if (!ws)
      return ws.status();
    q->workspace = *ws;
  }
  return q;
}

Expected<std::unique_ptr<Device::Queue>> CUDADevice::createQueue() {
  auto q = newQueue();
  if (!q)
    return q.status();
  return std::unique_ptr<Queue>(q.take());
}

CUDADevice::CUDAQueue &CUDADevice::queueOf(Queue *queue) {
  return queue ? static_cast<CUDAQueue &>(*queue) : *defaultQueue;
}

Expected<std::unique_ptr<Device>> CUDADevice::open(const std::string &source,
                                                   int ordinal) {
  std::string prefix = source + ": artifact targets sm_90a; ";
  std::string why;
  std::unique_ptr<CUDADriver> driver = CUDADriver::load(why);
  if (!driver)
    return Status::error(StatusCode::Incompatible, "RT-3", prefix + why);
  CUDADriver &d = *driver;
  auto fail = [&](const std::string &what) {
    return Status::error(StatusCode::Incompatible, "RT-3", prefix + what);
  };
  if (CUresult r = d.cuInit(0); r != kSuccess)
    return fail("the CUDA driver does not start (cuInit: " + d.errorName(r) +
                ")");
  int count = 0;
  if (CUresult r = d.cuDeviceGetCount(&count); r != kSuccess || count == 0)
    return fail("no CUDA device");
  if (ordinal < 0 || ordinal >= count)
    return fail("no CUDA device " + std::to_string(ordinal) + " (" +
                std::to_string(count) + " present)");
  CUdevice dev = 0;
  int major = 0, minor = 0;
  char name[256] = {};
  if (CUresult r = d.cuDeviceGet(&dev, ordinal); r != kSuccess)
    return fail("cuDeviceGet: " + d.errorName(r));
  d.cuDeviceGetAttribute(&major, kAttrComputeCapabilityMajor, dev);
  d.cuDeviceGetAttribute(&minor, kAttrComputeCapabilityMinor, dev);
  d.cuDeviceGetName(name, sizeof name - 1, dev);
  if (major != 9 || minor != 0)
    return fail("CUDA device " + std::to_string(ordinal) + " (" + name +
                ") is sm_" + std::to_string(major) + std::to_string(minor) +
                ", and sm_90a code runs only on sm_90 (Hopper)");
  std::unique_ptr<CUDADevice> device(new CUDADevice(std::move(driver)));
  device->device = dev;
  if (CUresult r = d.cuDevicePrimaryCtxRetain(&device->context, dev);
      r != kSuccess)
    return fail("cuDevicePrimaryCtxRetain: " + d.errorName(r));
  if (CUresult r = d.cuCtxSetCurrent(device->context); r != kSuccess)
    return fail("cuCtxSetCurrent: " + d.errorName(r));
  auto queue = device->newQueue();
  if (!queue)
    return fail(queue.status().message());
  device->defaultQueue = queue.take();
  return std::unique_ptr<Device>(std::move(device));
}

CUDADevice::CUDADevice(std::unique_ptr<CUDADriver> driver)
    : driver(std::move(driver)) {
  const char *graph = std::getenv("V4RT_CUDA_GRAPH");
  graphs = !(graph && std::string(graph) == "0");
}

CUDADevice::~CUDADevice() {
  CUDADriver &d = *driver;
  defaultQueue.reset();
  if (context)
    d.cuCtxSetCurrent(context);
  if (module)
    d.cuModuleUnload(module);
  if (context)
    d.cuDevicePrimaryCtxRelease(device);
}

Status CUDADevice::check(CUresult result, const char *what) const {
  if (result == kSuccess)
    return Status::success();
  return Status::error(StatusCode::Internal, "RT-7",
                       std::string("cuda device: ") + what +
                           " failed: " + driver->errorName(result));
}

uint64_t CUDADevice::availableMemory() const {
  size_t free = 0, total = 0;
  driver->cuCtxSetCurrent(context);
  if (driver->cuMemGetInfo(&free, &total) != kSuccess)
    return 0;
  return free;
}

Expected<DeviceBuffer> CUDADevice::allocate(size_t bytes) {
  if (bytes == 0)
    return DeviceBuffer{};
  driver->cuCtxSetCurrent(context);
  CUdeviceptr p = 0;
  if (CUresult r = driver->cuMemAlloc(&p, bytes); r != kSuccess)
    return Status::error(StatusCode::ResourceExhausted, "RT-6",
                         "cuda device: cannot allocate " +
                             std::to_string(bytes) +
                             " bytes: " + driver->errorName(r));
  // Zero-filled, as the device seam promises (cuMemAlloc is 256-byte
  // aligned).
  if (CUresult r = driver->cuMemsetD8(p, 0, bytes); r != kSuccess) {
    driver->cuMemFree(p);
    return check(r, "cuMemsetD8");
  }
  return DeviceBuffer{reinterpret_cast<void *>(p), bytes};
}

void CUDADevice::release(DeviceBuffer buffer) {
  if (!buffer.address)
    return;
  driver->cuCtxSetCurrent(context);
  driver->cuMemFree(reinterpret_cast<CUdeviceptr>(buffer.address));
}

Expected<DeviceBuffer> CUDADevice::mapHostMemory(const void *, size_t) {
  return Status::error(StatusCode::Unavailable, "RT-6",
                       "cuda device: kernels read device memory only");
}

static CUdeviceptr at(DeviceBuffer b, size_t offset) {
  return reinterpret_cast<CUdeviceptr>(b.address) + offset;
}

Status CUDADevice::upload(DeviceBuffer dst, size_t offset, const void *src,
                          size_t bytes, Queue *queue) {
  if (Status s = checkCopy("upload", offset, bytes, dst.bytes); !s)
    return s;
  CUDAQueue &q = queueOf(queue);
  std::lock_guard<std::recursive_mutex> lock(q.mutex);
  driver->cuCtxSetCurrent(context);
  // Ordered on the queue's stream; from pageable memory the call returns
  // once the bytes are staged, so `src` may change after it.
  if (bytes < kStagingThreshold)
    return check(
        driver->cuMemcpyHtoDAsync(at(dst, offset), src, bytes, q.stream),
        "cuMemcpyHtoDAsync");
  // Large copies (the weights, from the mapped checkpoint) go through two
  // pinned staging buffers: the host copy of one chunk overlaps the DMA of
  // the other, and DMA from pinned memory runs at the link's speed.
  if (!q.staging[0].host)
    for (CUDAQueue::Staging &st : q.staging) {
      if (Status s = check(driver->cuMemAllocHost(&st.host, kStagingBytes),
                           "cuMemAllocHost");
          !s)
        return s;
      if (Status s = check(driver->cuEventCreate(&st.done, 0), "cuEventCreate");
          !s)
        return s;
    }
  const auto *from = static_cast<const uint8_t *>(src);
  for (size_t done = 0, i = 0; done < bytes; done += kStagingBytes, ++i) {
    CUDAQueue::Staging &st = q.staging[i % 2];
    size_t n = std::min(kStagingBytes, bytes - done);
    if (i >= 2)
      if (Status s =
              check(driver->cuEventSynchronize(st.done), "cuEventSynchronize");
          !s)
        return s;
    std::memcpy(st.host, from + done, n);
    if (Status s = check(driver->cuMemcpyHtoDAsync(at(dst, offset + done),
                                                   st.host, n, q.stream),
                         "cuMemcpyHtoDAsync");
        !s)
      return s;
    if (Status s =
            check(driver->cuEventRecord(st.done, q.stream), "cuEventRecord");
        !s)
      return s;
  }
  return check(driver->cuStreamSynchronize(q.stream), "cuStreamSynchronize");
}

Status CUDADevice::download(void *dst, DeviceBuffer src, size_t offset,
                            size_t bytes, Queue *queue) {
  if (Status s = checkCopy("download", offset, bytes, src.bytes); !s)
    return s;
  CUDAQueue &q = queueOf(queue);
  std::lock_guard<std::recursive_mutex> lock(q.mutex);
  driver->cuCtxSetCurrent(context);
  // After the queue's kernels; done when the stream is.
  if (Status s = check(
          driver->cuMemcpyDtoHAsync(dst, at(src, offset), bytes, q.stream),
          "cuMemcpyDtoHAsync");
      !s)
    return s;
  return check(driver->cuStreamSynchronize(q.stream), "cuStreamSynchronize");
}

Status CUDADevice::fill(DeviceBuffer dst, size_t offset, size_t bytes,
                        const void *pattern, size_t patternBytes,
                        Queue *queue) {
  if (Status s = checkFill(offset, bytes, dst.bytes, patternBytes); !s)
    return s;
  CUDAQueue &q = queueOf(queue);
  driver->cuCtxSetCurrent(context);
  CUdeviceptr p = at(dst, offset);
  if (patternBytes == 1)
    return check(
        driver->cuMemsetD8Async(p, *static_cast<const unsigned char *>(pattern),
                                bytes, q.stream),
        "cuMemsetD8Async");
  if (patternBytes == 2 && p % 2 == 0) {
    unsigned short v;
    std::memcpy(&v, pattern, 2);
    return check(driver->cuMemsetD16Async(p, v, bytes / 2, q.stream),
                 "cuMemsetD16Async");
  }
  if (patternBytes == 4 && p % 4 == 0) {
    unsigned v;
    std::memcpy(&v, pattern, 4);
    return check(driver->cuMemsetD32Async(p, v, bytes / 4, q.stream),
                 "cuMemsetD32Async");
  }
  std::vector<uint8_t> staging(bytes);
  for (size_t i = 0; i < bytes; i += patternBytes)
    std::memcpy(&staging[i], pattern, patternBytes);
  return upload(dst, offset, staging.data(), bytes, queue);
}

Status CUDADevice::loadKernels(const art::Artifact &a) {
  // The cubin when the artifact has one (the same kernels as its PTX), else
  // the PTX, which the driver compiles for this GPU.
  int chosen = -1;
  // Another target's code objects (a multi-target artifact) are not ours;
  // AF-7 has checked that sm_90a ones are PTX or cubin.
  for (size_t i = 0; i < a.codeObjects().size(); ++i) {
    const art::CodeObject &c = a.codeObjects()[i];
    if (c.target == art::Target::SM90A &&
        (chosen < 0 || c.format == art::CodeFormat::Cubin))
      chosen = static_cast<int>(i);
  }
  if (chosen < 0)
    return Status::error(StatusCode::Incompatible, "RT-4",
                         a.source() + ": no sm_90a code object");
  art::ByteSpan image = a.code(chosen);
  // PTX is text the driver reads up to a NUL.
  std::string text;
  const void *data = image.data;
  if (a.codeObjects()[chosen].format == art::CodeFormat::PTX) {
    text.assign(reinterpret_cast<const char *>(image.data), image.size);
    data = text.c_str();
  }
  driver->cuCtxSetCurrent(context);
  if (CUresult r = driver->cuModuleLoadData(&module, data); r != kSuccess)
    return Status::error(
        StatusCode::Incompatible, "RT-4",
        a.source() + ": code object " + std::to_string(chosen) +
            " does not load on this GPU: " + driver->errorName(r));
  const std::vector<art::Kernel> *kernels = a.kernelsFor(art::Target::SM90A);
  if (!kernels)
    return Status::error(StatusCode::Incompatible, "RT-3",
                         a.source() + ": the artifact has no sm_90a kernels");
  workspaceBytes = 0;
  for (const art::Kernel &k : *kernels) {
    CUfunction f = nullptr;
    if (driver->cuModuleGetFunction(&f, module, k.entrySymbol.c_str()) !=
        kSuccess)
      return Status::error(StatusCode::Incompatible, "RT-4",
                           a.source() + ": kernel '" + k.name +
                               "' has no entry '" + k.entrySymbol +
                               "' in code object " + std::to_string(chosen));
    functions.push_back(f);
    launches.push_back(k.launch);
    workspaceBytes = std::max(workspaceBytes, k.launch.workspaceBytes);
  }
  // A workspace per queue: a queue's launches run one at a time, queues
  // side by side. The default queue's now; createQueue makes the others'.
  if (workspaceBytes) {
    auto ws = allocate(workspaceBytes);
    if (!ws)
      return ws.status();
    defaultQueue->workspace = *ws;
  }
  return Status::success();
}

Status CUDADevice::launch(uint32_t kernel, const std::vector<LaunchArg> &args,
                          int64_t tokens, Queue *queue) {
  if (kernel >= functions.size())
    return Status::error(StatusCode::Internal, "RT-7",
                         "cuda device: kernel " + std::to_string(kernel) +
                             " was not loaded");
  CUDAQueue &q = queueOf(queue);
  std::lock_guard<std::recursive_mutex> lock(q.mutex);
  const art::Launch &l = launches[kernel];
  // Every buffer's descriptor fields, then the workspace's.
  std::vector<uint64_t> &words = q.words;
  std::vector<void *> &params = q.params;
  words.clear();
  auto descriptor = [&](void *data, const std::vector<int64_t> &sizes) {
    uint64_t p = reinterpret_cast<uint64_t>(data);
    words.push_back(p);
    words.push_back(p);
    words.push_back(0);
    size_t first = words.size();
    words.insert(words.end(), sizes.begin(), sizes.end());
    words.resize(first + 2 * sizes.size());
    int64_t stride = 1;
    for (size_t r = sizes.size(); r-- > 0;) {
      words[first + sizes.size() + r] = static_cast<uint64_t>(stride);
      stride *= sizes[r];
    }
  };
  for (const LaunchArg &a : args)
    descriptor(a.buffer.address, a.sizes);
  descriptor(q.workspace.address, {static_cast<int64_t>(q.workspace.bytes)});
  params.resize(words.size());
  for (size_t i = 0; i < words.size(); ++i)
    params[i] = &words[i];
  unsigned grid[3];
  for (int d = 0; d < 3; ++d)
    grid[d] = static_cast<unsigned>(l.grid[d].blocks(tokens));
  if (grid[0] == 0 || grid[1] == 0 || grid[2] == 0)
    return Status::success();
  driver->cuCtxSetCurrent(context);
  return check(driver->cuLaunchKernel(functions[kernel], grid[0], grid[1],
                                      grid[2], l.block[0], l.block[1],
                                      l.block[2], l.sharedMemoryBytes, q.stream,
                                      params.data(), nullptr),
               "cuLaunchKernel");
}

namespace {
/// An instantiated CUDA graph, destroyed with its device's driver.
class CUDARecording final : public Device::Recording {
public:
  CUDARecording(const CUDADriver &driver, void *context, CUgraph graph,
                CUgraphExec exec)
      : driver(driver), context(context), graph(graph), exec(exec) {}
  ~CUDARecording() override {
    driver.cuCtxSetCurrent(context);
    driver.cuGraphExecDestroy(exec);
    driver.cuGraphDestroy(graph);
  }
  const CUDADriver &driver;
  void *context;
  CUgraph graph;
  CUgraphExec exec;
};
} // namespace

Status CUDADevice::beginRecording(Queue *queue) {
  // The queue's mutex is held until endRecording: nothing else joins the
  // capture.
  CUDAQueue &q = queueOf(queue);
  q.mutex.lock();
  q.recording = true;
  driver->cuCtxSetCurrent(context);
  if (Status s =
          check(driver->cuStreamBeginCapture(q.stream, kCaptureModeThreadLocal),
                "cuStreamBeginCapture");
      !s) {
    q.recording = false;
    q.mutex.unlock();
    return s;
  }
  return Status::success();
}

Expected<std::unique_ptr<Device::Recording>>
CUDADevice::endRecording(Queue *queue) {
  CUDAQueue &q = queueOf(queue);
  // Only the recording thread holds the mutex; try_lock tells it apart
  // from a queue nobody is recording on (recursive: it succeeds again for
  // the holder).
  if (!q.mutex.try_lock())
    return Status::error(StatusCode::Internal, "RT-7",
                         "cuda device: endRecording from another thread");
  bool recording = q.recording;
  q.mutex.unlock();
  if (!recording)
    return Status::error(StatusCode::Internal, "RT-7",
                         "cuda device: endRecording without beginRecording");
  CUgraph graph = nullptr;
  CUresult r = driver->cuStreamEndCapture(q.stream, &graph);
  q.recording = false;
  q.mutex.unlock();
  if (Status s = check(r, "cuStreamEndCapture"); !s)
    return s;
  CUgraphExec exec = nullptr;
  if (Status s = check(driver->cuGraphInstantiate(&exec, graph, 0),
                       "cuGraphInstantiate");
      !s) {
    driver->cuGraphDestroy(graph);
    return s;
  }
  return std::unique_ptr<Recording>(
      new CUDARecording(*driver, context, graph, exec));
}

Status CUDADevice::replay(const Recording &recording, Queue *queue) {
  CUDAQueue &q = queueOf(queue);
  std::lock_guard<std::recursive_mutex> lock(q.mutex);
  driver->cuCtxSetCurrent(context);
  return check(
      driver->cuGraphLaunch(static_cast<const CUDARecording &>(recording).exec,
                            q.stream),
      "cuGraphLaunch");
}

Status CUDADevice::synchronize(Queue *queue) {
  CUDAQueue &q = queueOf(queue);
  driver->cuCtxSetCurrent(context);
  return check(driver->cuStreamSynchronize(q.stream), "cuStreamSynchronize");
}

void *CUDADevice::nativeStream(Queue *queue) {
  driver->cuCtxSetCurrent(context);
  return queueOf(queue).stream;
}

Expected<bool> CUDADevice::queueIdle(Queue *queue) {
  CUDAQueue &q = queueOf(queue);
  driver->cuCtxSetCurrent(context);
  CUresult r = driver->cuStreamQuery(q.stream);
  if (r == kNotReady)
    return false;
  if (Status s = check(r, "cuStreamQuery"); !s)
    return s;
  return true;
}

} // namespace v4::rt
