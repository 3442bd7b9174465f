//===- CUDADevice.h - an NVIDIA GPU as a device -----------------*- C++ -*-===//
//
// The device of sm_90a artifacts (issue 10). The CUDA driver API is loaded at
// run time with dlopen("libcuda.so.1"), so the runtime links nothing of CUDA
// and builds and starts on any machine; a machine without the driver, without
// a GPU, or whose GPU is not sm_90 gets an RT-3 error naming what is missing.
//
// One primary context and one stream per device. Kernels come from the
// artifact's cubin when it has one, else its PTX (JIT-compiled by the
// driver); each launch passes the descriptor fields of every buffer and then
// of the device's workspace (runtime/base/KernelABI.h), with the kernel's
// grid at the call's token count. Buffers are device memory: the host reads
// and writes them with upload/download (mapHostMemory and hostAddress
// decline, and the model copies weights up once).
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_SRC_DEVICES_CUDADEVICE_H
#define V4_RUNTIME_SRC_DEVICES_CUDADEVICE_H

#include "runtime/src/devices/Device.h"

#include <memory>
#include <mutex>

namespace v4::rt {

struct CUDADriver;

class CUDADevice final : public Device {
public:
  /// Opens GPU `ordinal`: an RT-3 (Incompatible) error naming `source` when
  /// there is no driver, no such GPU, or the GPU is not sm_90.
  static Expected<std::unique_ptr<Device>> open(const std::string &source,
                                                int ordinal = 0);
  ~CUDADevice() override;

  const char *name() const override { return "cuda"; }
  artifact::Target target() const override { return artifact::Target::SM90A; }
  uint64_t availableMemory() const override;
  Expected<DeviceBuffer> allocate(size_t bytes) override;
  void release(DeviceBuffer buffer) override;
  Expected<DeviceBuffer> mapHostMemory(const void *data, size_t bytes) override;
  void *hostAddress(DeviceBuffer) const override { return nullptr; }
  Status upload(DeviceBuffer dst, size_t offset, const void *src, size_t bytes,
                Queue *queue = nullptr) override;
  Status download(void *dst, DeviceBuffer src, size_t offset, size_t bytes,
                  Queue *queue = nullptr) override;
  Status fill(DeviceBuffer dst, size_t offset, size_t bytes,
              const void *pattern, size_t patternBytes,
              Queue *queue = nullptr) override;
  Status loadKernels(const artifact::Artifact &artifact) override;
  Expected<std::unique_ptr<Queue>> createQueue() override;
  Status launch(uint32_t kernel, const std::vector<LaunchArg> &args,
                int64_t tokens, Queue *queue = nullptr) override;
  Status synchronize(Queue *queue = nullptr) override;
  void *nativeStream(Queue *queue) override;
  Expected<bool> queueIdle(Queue *queue) override;
  int ordinal() const override { return device; }
  bool canRecord() const override { return graphs; }
  Status beginRecording(Queue *queue = nullptr) override;
  Expected<std::unique_ptr<Recording>>
  endRecording(Queue *queue = nullptr) override;
  Status replay(const Recording &recording, Queue *queue = nullptr) override;

  /// Uploads of kStagingThreshold bytes or more go through two pinned
  /// buffers of kStagingBytes (allocated at a queue's first such upload).
  static constexpr size_t kStagingThreshold = size_t(1) << 20;
  static constexpr size_t kStagingBytes = size_t(16) << 20;

private:
  struct CUDAQueue;
  explicit CUDADevice(std::unique_ptr<CUDADriver> driver);
  /// An error (Internal, RT-7) for a failed driver call `what`.
  Status check(int result, const char *what) const;
  /// A queue with a new stream (and, after loadKernels, its workspace).
  Expected<std::unique_ptr<CUDAQueue>> newQueue();
  CUDAQueue &queueOf(Queue *queue);

  std::unique_ptr<CUDADriver> driver;
  int device = 0;
  void *context = nullptr;
  void *module = nullptr;
  std::vector<void *> functions;
  std::vector<artifact::Launch> launches;
  /// The largest kernel workspace; every queue has one of these bytes.
  uint64_t workspaceBytes = 0;
  /// CUDA graphs are on unless V4RT_CUDA_GRAPH=0 (to compare replay with
  /// eager launches).
  bool graphs = true;
  /// Weights and anything else not of a session.
  std::unique_ptr<CUDAQueue> defaultQueue;
};

} // namespace v4::rt

#endif // V4_RUNTIME_SRC_DEVICES_CUDADEVICE_H
