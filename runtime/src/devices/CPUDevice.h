//===- CPUDevice.h - the host as a device -----------------------*- C++ -*-===//
//
// Buffers are 64-byte aligned host memory; the code object is the host
// shared object of the CPU target, loaded from an anonymous memory file
// (memfd_create; a private file under $TMPDIR where that is unavailable)
// so nothing is left on disk; a launch is one call through the kernel ABI
// (runtime/base/KernelABI.h) on the calling thread.
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_SRC_DEVICES_CPUDEVICE_H
#define V4_RUNTIME_SRC_DEVICES_CPUDEVICE_H

#include "runtime/base/KernelABI.h"
#include "runtime/src/devices/Device.h"

namespace v4::rt {

class CPUDevice final : public Device {
public:
  CPUDevice() = default;
  ~CPUDevice() override;

  const char *name() const override { return "cpu"; }
  uint64_t availableMemory() const override;
  Expected<DeviceBuffer> allocate(size_t bytes) override;
  void release(DeviceBuffer buffer) override;
  Expected<DeviceBuffer> mapHostMemory(const void *data,
                                       size_t bytes) override {
    return DeviceBuffer{const_cast<void *>(data), bytes};
  }
  void *hostAddress(DeviceBuffer buffer) const override {
    return buffer.address;
  }
  Status upload(DeviceBuffer dst, size_t offset, const void *src,
                size_t bytes) override;
  Status download(void *dst, DeviceBuffer src, size_t offset,
                  size_t bytes) override;
  Status fill(DeviceBuffer dst, size_t offset, size_t bytes,
              const void *pattern, size_t patternBytes) override;
  Status loadKernels(const artifact::Artifact &artifact) override;
  Status launch(uint32_t kernel, const std::vector<LaunchArg> &args,
                int64_t tokens) override;
  Status synchronize() override { return Status::success(); }

private:
  std::vector<void *> libraries;
  std::vector<abi::KernelEntry> entries;
  /// Reused descriptor storage of launch().
  std::vector<int64_t> words;
  std::vector<void *> pointers;
};

} // namespace v4::rt

#endif // V4_RUNTIME_SRC_DEVICES_CPUDEVICE_H
