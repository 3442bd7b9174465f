//===- CPUDevice.h - the host as a device -----------------------*- C++ -*-===//
//
// Buffers are 64-byte aligned host memory; the code object is the host
// shared object of the CPU target, loaded from an anonymous memory file
// (memfd_create; a private file under $TMPDIR where that is unavailable)
// so nothing is left on disk; a launch is one call through the kernel ABI
// (runtime/base/KernelABI.h) per block of the kernel's launch grid: a grid
// of one block runs on the calling thread, a larger one on the device's
// thread pool (ThreadPool.h: created with the device, i.e. once per model;
// its size is the model's thread count, by default V4RT_NUM_THREADS or
// every core). Launches are serialised by a lock, so sessions of one model
// may step from different threads.
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_SRC_DEVICES_CPUDEVICE_H
#define V4_RUNTIME_SRC_DEVICES_CPUDEVICE_H

#include "runtime/base/HostISA.h"
#include "runtime/base/KernelABI.h"
#include "runtime/src/devices/Device.h"
#include "runtime/src/devices/ThreadPool.h"

#include <memory>
#include <mutex>

namespace v4::rt {

/// Success when `supported`, else the Incompatible error (RT-4) that says
/// `what` (a code object) needs a CPU of x86-64 level `isa` and how to
/// recompile. The CPU device calls it with hostSupportsISA(isa).
Status requireHostISA(const std::string &isa, const std::string &what,
                      bool supported);

class CPUDevice final : public Device {
public:
  /// `threads`: the threads a launch uses (resolveThreadCount: 0 is
  /// V4RT_NUM_THREADS or every core).
  explicit CPUDevice(unsigned threads = 0);
  ~CPUDevice() override;

  const char *name() const override { return "cpu"; }
  artifact::Target target() const override { return artifact::Target::CPU; }
  uint64_t availableMemory() const override;
  Expected<DeviceBuffer> allocate(size_t bytes) override;
  void release(DeviceBuffer buffer) override;
  /// The memory itself; its page-table entries are filled first
  /// (madvise MADV_POPULATE_READ, a hint: ignored where the kernel lacks
  /// it), so that a kernel's first read of a weight page (decode: the
  /// embedding row of each new token) does not fault inside a step.
  Expected<DeviceBuffer> mapHostMemory(const void *data, size_t bytes) override;
  void *hostAddress(DeviceBuffer buffer) const override {
    return buffer.address;
  }
  Status upload(DeviceBuffer dst, size_t offset, const void *src, size_t bytes,
                Queue *queue = nullptr) override;
  Status download(void *dst, DeviceBuffer src, size_t offset, size_t bytes,
                  Queue *queue = nullptr) override;
  Status fill(DeviceBuffer dst, size_t offset, size_t bytes,
              const void *pattern, size_t patternBytes,
              Queue *queue = nullptr) override;
  Status loadKernels(const artifact::Artifact &artifact) override;
  Status launch(uint32_t kernel, const std::vector<LaunchArg> &args,
                int64_t tokens, Queue *queue = nullptr) override;
  /// The blocks (or token slices) of every launch of the group on the pool
  /// at once: a one-block kernel no longer leaves the other threads idle.
  Status launchConcurrent(const std::vector<Launch> &group, int64_t tokens,
                          Queue *queue = nullptr) override;
  /// Launches run when called: every queue is always done.
  Status synchronize(Queue * = nullptr) override { return Status::success(); }
  /// A queue that can record (a CPUQueue).
  Expected<std::unique_ptr<Queue>> createQueue() override;
  /// A recording keeps each launch (or concurrent group) prepared: its
  /// descriptors written and its grid resolved, so a replay only hands the
  /// blocks to the pool (a decode step: about 135 launches whose arguments
  /// were rebuilt every step). Recording is per queue, so sessions of one
  /// model may record and step from different threads.
  bool canRecord() const override { return true; }
  Status beginRecording(Queue *queue = nullptr) override;
  Expected<std::unique_ptr<Recording>>
  endRecording(Queue *queue = nullptr) override;
  Status replay(const Recording &recording, Queue *queue = nullptr) override;

  /// The threads a launch runs its blocks on, the caller included.
  unsigned numThreads() const override { return pool->size(); }

private:
  struct PreparedCall;
  /// Launches prepared to run as one pool job: each launch's grid call, its
  /// descriptors (words) and their pointers, where each launch's blocks
  /// start.
  struct PreparedGroup {
    std::vector<PreparedCall> calls;
    std::vector<int64_t> words;
    std::vector<void *> pointers;
    std::vector<uint64_t> starts;
    uint64_t blocks = 0;
  };
  class CPUQueue;
  class CPURecording;
  struct GroupCall;
  /// Prepares the `count` launches at `group` as one pool job into `out`,
  /// the launches of fewest blocks first.
  Status prepare(const Launch *group, size_t count, int64_t tokens,
                 PreparedGroup &out);
  /// Runs a prepared group (launchMutex held).
  void runPrepared(const PreparedGroup &group);
  /// Prepares and runs, or records where `queue` is recording (launchMutex
  /// held).
  Status launchLocked(const Launch *group, size_t count, int64_t tokens,
                      Queue *queue);
  /// The pool task of a group of more than one launch (a GroupCall).
  static void runGroupBlock(void *context, uint64_t index);

  std::vector<void *> libraries;
  std::vector<abi::KernelEntry> entries;
  std::vector<artifact::Launch> launches;
  std::unique_ptr<ThreadPool> pool;
  std::mutex launchMutex;
  /// Reused storage of launchLocked(): the group it runs, a sliced
  /// buffer's sizes.
  std::unique_ptr<PreparedGroup> current;
  std::vector<int64_t> sliceSizes;
};

} // namespace v4::rt

#endif // V4_RUNTIME_SRC_DEVICES_CPUDEVICE_H
