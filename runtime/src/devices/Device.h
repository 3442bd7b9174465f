//===- Device.h - the runtime's device seam ---------------------*- C++ -*-===//
//
// Everything the runtime does to a device goes through this interface:
// allocate buffers, upload and download bytes, load the artifact's code
// objects, launch a kernel over buffers, wait. The model, the session and
// the executor above it hold no device-specific code, so a CUDA device (a
// cuModuleLoadData of the artifact's cubin/PTX and cuLaunchKernel with the
// kernel's launch geometry) is one more subclass and one more case in
// createDevice().
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_SRC_DEVICES_DEVICE_H
#define V4_RUNTIME_SRC_DEVICES_DEVICE_H

#include "runtime/artifact/Artifact.h"
#include "runtime/base/Status.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace v4::rt {

/// A buffer in a device's memory.
struct DeviceBuffer {
  /// The device address (the host address on the CPU); null when empty.
  void *address = nullptr;
  size_t bytes = 0;
};

/// One buffer argument of a launch: its memory and its sizes in this call
/// (the token dim resolved).
struct LaunchArg {
  DeviceBuffer buffer;
  std::vector<int64_t> sizes;
  /// For a kernel run on token slices (artifact Launch.tokenSlice): the
  /// index of the token dim in `sizes` and the bytes of one token (-1 and
  /// 0 for a buffer without one).
  int tokenDim = -1;
  uint64_t tokenBytes = 0;
};

class Device {
public:
  virtual ~Device();

  /// An ordered queue of device work: each session has its own (on the
  /// CUDA device a stream with its own kernel workspace and staging, so
  /// sessions run concurrently). Copies, fills, launches, waits and
  /// recordings take the queue they go to; null: the device's default
  /// queue (loading the weights). Created after loadKernels; destroyed
  /// before the device.
  class Queue {
  public:
    virtual ~Queue();
  };
  /// A new queue (the CPU: a token, its launches run at once).
  virtual Expected<std::unique_ptr<Queue>> createQueue();

  /// Names the device in messages ("cpu").
  virtual const char *name() const = 0;
  /// The target whose kernels the device runs (Artifact::kernelsFor).
  virtual artifact::Target target() const = 0;

  /// Host threads a launch runs on (1 where the device runs it).
  virtual unsigned numThreads() const { return 1; }

  /// Bytes the device can allocate now (the CPU: MemAvailable).
  virtual uint64_t availableMemory() const = 0;
  /// Allocates `bytes` bytes, 64-byte aligned and zero-filled.
  virtual Expected<DeviceBuffer> allocate(size_t bytes) = 0;
  virtual void release(DeviceBuffer buffer) = 0;
  /// `bytes` of read-only host memory at `data` (which outlives the result)
  /// as a buffer kernels can read, without a copy; an error where the device
  /// cannot read host memory (the caller then copies). Not released.
  virtual Expected<DeviceBuffer> mapHostMemory(const void *data,
                                               size_t bytes) = 0;
  /// The buffer's bytes as host memory, or null when the device's memory is
  /// not host-addressable (then use upload/download).
  virtual void *hostAddress(DeviceBuffer buffer) const = 0;
  virtual Status upload(DeviceBuffer dst, size_t offset, const void *src,
                        size_t bytes, Queue *queue = nullptr) = 0;
  /// After the queue's earlier work.
  virtual Status download(void *dst, DeviceBuffer src, size_t offset,
                          size_t bytes, Queue *queue = nullptr) = 0;

  /// Fills `bytes` bytes at `offset` with copies of the `patternBytes`-byte
  /// `pattern` (`bytes` is a multiple of it).
  virtual Status fill(DeviceBuffer dst, size_t offset, size_t bytes,
                      const void *pattern, size_t patternBytes,
                      Queue *queue = nullptr) = 0;

  /// Loads the code objects of `artifact` for target() and resolves the
  /// entry symbol of every kernel of that target's table
  /// (Artifact::kernelsFor, which the caller has checked exists); kernel i
  /// is then launched as index i (steps index every target's table alike).
  virtual Status loadKernels(const artifact::Artifact &artifact) = 0;
  /// Launches kernel `kernel` over `args` (one per buffer argument) for a
  /// call of `tokens` tokens, the T of the kernel's launch geometry: every
  /// block of its grid once.
  virtual Status launch(uint32_t kernel, const std::vector<LaunchArg> &args,
                        int64_t tokens, Queue *queue = nullptr) = 0;
  /// One launch of a group: the kernel and its arguments (as launch()).
  struct Launch {
    uint32_t kernel;
    const std::vector<LaunchArg> *args;
  };
  /// Launches that may run at the same time, in any order (the artifact's
  /// Step.concurrent: none writes memory another reads or writes). The
  /// default runs them one after another.
  virtual Status launchConcurrent(const std::vector<Launch> &group,
                                  int64_t tokens, Queue *queue = nullptr);
  /// Waits until the queue's work has finished.
  virtual Status synchronize(Queue *queue = nullptr) = 0;

  /// For a library that enqueues its own work on a queue (NCCL,
  /// runtime/src/comm/NcclCollectives.h): the queue's native stream (CUDA:
  /// its CUstream) with the device's context made current on the calling
  /// thread; null where the device has none (the CPU).
  virtual void *nativeStream(Queue *) { return nullptr; }
  /// Whether the queue's work has all finished, without waiting; an error
  /// when it failed (or the device has no streams).
  virtual Expected<bool> queueIdle(Queue *queue);
  /// The device's number among its kind (CUDA device N); 0 on the CPU.
  virtual int ordinal() const { return 0; }

  /// Recorded launches (a CUDA graph, the CPU's prepared launches): a device
  /// that can record a sequence of launches replays it as one submission. The
  /// session records its decode step once and replays it every step after: the
  /// same kernels over the same buffers at one token.
  class Recording {
  public:
    virtual ~Recording();
  };
  /// Whether beginRecording works (the CPU: yes, its prepared launches;
  /// CUDA: unless V4RT_CUDA_GRAPH=0).
  virtual bool canRecord() const { return false; }
  /// Until endRecording, the queue's launches are recorded instead of run.
  virtual Status beginRecording(Queue *queue = nullptr);
  virtual Expected<std::unique_ptr<Recording>>
  endRecording(Queue *queue = nullptr);
  /// Runs a recording's launches on a queue (asynchronously, like launch).
  virtual Status replay(const Recording &recording, Queue *queue = nullptr);
};

/// RT-7 unless `bytes` bytes at `offset` lie inside a buffer of `size`
/// bytes, and (a fill's) `bytes` is a non-zero multiple of a
/// `patternBytes`-byte pattern; `what` names the operation ("upload"). Every
/// device checks its copies and fills with these.
Status checkCopy(const char *what, size_t offset, size_t bytes, size_t size);
Status checkFill(size_t offset, size_t bytes, size_t size, size_t patternBytes);

/// A device by name: "cpu", "cuda" (CUDA device 0) or "cuda:N".
struct DeviceSpec {
  artifact::Target target = artifact::Target::CPU;
  int ordinal = 0;
};
/// Parses a device name (v4rt_model_options_t.device, v4-run --device); an
/// InvalidArgument "ARG" error naming `what` and the spellings otherwise.
Expected<DeviceSpec> parseDeviceSpec(const std::string &name,
                                     const std::string &what);
/// "cpu", "cuda:N".
std::string deviceSpecName(const DeviceSpec &spec);

/// The device that runs kernels of `target` (CUDA: device `ordinal`); an
/// Incompatible error naming `source` (the artifact) when this runtime has
/// none. `threads`: the host threads a CPU device runs a launch's blocks on
/// (0: V4RT_NUM_THREADS, else every core).
Expected<std::unique_ptr<Device>> createDevice(artifact::Target target,
                                               const std::string &source,
                                               unsigned threads = 0,
                                               int ordinal = 0);

/// A device allocation released when it goes out of scope.
class DeviceAllocation {
public:
  DeviceAllocation() = default;
  DeviceAllocation(Device *device, DeviceBuffer buffer)
      : device(device), buf(buffer) {}
  DeviceAllocation(const DeviceAllocation &) = delete;
  DeviceAllocation &operator=(const DeviceAllocation &) = delete;
  DeviceAllocation(DeviceAllocation &&o) noexcept
      : device(o.device), buf(o.buf) {
    o.buf = {};
  }
  DeviceAllocation &operator=(DeviceAllocation &&o) noexcept {
    if (this != &o) {
      reset();
      device = o.device;
      buf = o.buf;
      o.buf = {};
    }
    return *this;
  }
  ~DeviceAllocation() { reset(); }

  const DeviceBuffer &buffer() const { return buf; }
  explicit operator bool() const { return buf.address != nullptr; }

private:
  void reset() {
    if (device && buf.address)
      device->release(buf);
    buf = {};
  }
  Device *device = nullptr;
  DeviceBuffer buf;
};

} // namespace v4::rt

#endif // V4_RUNTIME_SRC_DEVICES_DEVICE_H
