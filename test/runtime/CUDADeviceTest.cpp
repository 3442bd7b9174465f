//===- CUDADeviceTest.cpp - the CUDA device's host side -------------------===//
//
// Runs CUDADevice against FakeCUDADriver (libcuda.so.1 on host memory, loaded
// by path before the device's dlopen finds it by name): device selection and
// its errors, memory, code object choice, and the kernel parameters and
// geometry of a launch (runtime/base/KernelABI.h). No GPU is involved; what
// runs on one is scripts/gpu-check.sh.
//
//===----------------------------------------------------------------------===//
#include "runtime/src/devices/Device.h"
#include "test/lib/TestArtifacts.h"
#include "test/runtime/FakeCUDADriver.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

using namespace v4::artifact;
using v4::StatusCode;
using v4::rt::DeviceBuffer;
using v4::rt::LaunchArg;
using v4::testing::FakeCUDALaunch;

class CUDADeviceTest : public ::testing::Test {
protected:
  void SetUp() override {
    driver = dlopen(V4_FAKE_CUDA_DRIVER, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(driver, nullptr) << dlerror();
    auto last = reinterpret_cast<const void *(*)()>(
        dlsym(driver, "fakeCudaLastLaunch"));
    auto image = reinterpret_cast<const char *(*)()>(
        dlsym(driver, "fakeCudaLoadedImage"));
    ASSERT_TRUE(last && image);
    launchRecord = static_cast<const FakeCUDALaunch *>(last());
    loadedImage = image;
  }
  void TearDown() override {
    unsetenv("V4_FAKE_CUDA_CC");
    unsetenv("V4_FAKE_CUDA_DEVICES");
    if (driver)
      dlclose(driver);
  }
  void *driver = nullptr;
  const FakeCUDALaunch *launchRecord = nullptr;
  const char *(*loadedImage)() = nullptr;
};

TEST_F(CUDADeviceTest, OpensAnSm90DeviceAndNamesWhatIsMissing) {
  auto dev = v4::rt::createDevice(Target::SM90A, "m.v4a");
  ASSERT_TRUE(dev) << dev.status().message();
  EXPECT_STREQ((*dev)->name(), "cuda");
  EXPECT_EQ((*dev)->availableMemory(), uint64_t(1) << 30);

  setenv("V4_FAKE_CUDA_CC", "8.0", 1);
  auto ampere = v4::rt::createDevice(Target::SM90A, "m.v4a");
  ASSERT_FALSE(ampere);
  EXPECT_EQ(ampere.status().code(), StatusCode::Incompatible);
  EXPECT_EQ(ampere.status().rule(), "RT-3");
  EXPECT_NE(ampere.status().message().find(
                "m.v4a: artifact targets sm_90a; CUDA device 0 (Fake H200) "
                "is sm_80, and sm_90a code runs only on sm_90 (Hopper)"),
            std::string::npos)
      << ampere.status().message();

  unsetenv("V4_FAKE_CUDA_CC");
  setenv("V4_FAKE_CUDA_DEVICES", "0", 1);
  auto none = v4::rt::createDevice(Target::SM90A, "m.v4a");
  ASSERT_FALSE(none);
  EXPECT_NE(none.status().message().find("no CUDA device"), std::string::npos)
      << none.status().message();
}

TEST_F(CUDADeviceTest, MemoryIsZeroedCopiedAndFilled) {
  auto dev = v4::rt::createDevice(Target::SM90A, "m.v4a");
  ASSERT_TRUE(dev) << dev.status().message();
  v4::rt::Device &d = **dev;
  auto b = d.allocate(64);
  ASSERT_TRUE(b);
  EXPECT_EQ(d.hostAddress(*b), nullptr);
  EXPECT_FALSE(d.mapHostMemory(b->address, 64));
  std::vector<uint8_t> out(64, 0xFF);
  ASSERT_TRUE(d.download(out.data(), *b, 0, 64));
  EXPECT_EQ(out, std::vector<uint8_t>(64, 0)); // the fake poisons memory

  uint8_t in[4] = {1, 2, 3, 4};
  ASSERT_TRUE(d.upload(*b, 10, in, 4));
  ASSERT_TRUE(d.download(out.data(), *b, 0, 64));
  EXPECT_EQ(std::memcmp(&out[10], in, 4), 0);

  // Patterns of 1, 2, 4 bytes (memset), 4 bytes at an odd offset and 3 bytes
  // (staged copies).
  uint32_t v32 = 0x11223344;
  uint16_t v16 = 0xBEEF;
  uint8_t v3[3] = {7, 8, 9};
  ASSERT_TRUE(d.fill(*b, 0, 8, &v32, 4));
  ASSERT_TRUE(d.fill(*b, 8, 4, &v16, 2));
  ASSERT_TRUE(d.fill(*b, 13, 8, &v32, 4));
  ASSERT_TRUE(d.fill(*b, 21, 6, v3, 3));
  uint8_t one = 0x5A;
  ASSERT_TRUE(d.fill(*b, 40, 24, &one, 1));
  ASSERT_TRUE(d.download(out.data(), *b, 0, 64));
  uint32_t w;
  std::memcpy(&w, &out[4], 4);
  EXPECT_EQ(w, v32);
  uint16_t h;
  std::memcpy(&h, &out[10], 2);
  EXPECT_EQ(h, v16);
  std::memcpy(&w, &out[17], 4);
  EXPECT_EQ(w, v32);
  EXPECT_EQ(out[24], 7);
  EXPECT_EQ(out[26], 9);
  EXPECT_EQ(out[63], 0x5A);

  auto past = d.upload(*b, 62, in, 4);
  EXPECT_EQ(past.rule(), "RT-7");
  auto huge = d.allocate(size_t(2) << 30);
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.status().code(), StatusCode::ResourceExhausted);
  EXPECT_NE(huge.status().message().find("CUDA_ERROR_OUT_OF_MEMORY"),
            std::string::npos)
      << huge.status().message();
  d.release(*b);
}

/// The tiny artifact as an sm_90a one: PTX and a cubin of the same kernels;
/// "head" has a token-tiled grid, 128 threads and a workspace.
static Writer gpuWriter(const char *headSymbol = "v4_kernel_head") {
  Writer tiny = v4::artifact::testing::tinyWriter();
  Description d = tiny.description();
  d.target = Target::SM90A;
  d.codeObjects.clear();
  d.kernels[1].entrySymbol = headSymbol;
  Launch &l = d.kernels[1].launch;
  l.grid[0] = {3, 0};
  l.grid[1] = {1, 32};
  l.block[0] = 128;
  l.sharedMemoryBytes = 1024;
  l.workspaceBytes = 4096;
  Writer w(d);
  std::string ptx = "// PTX of the tiny model";
  w.addCodeObject(Target::SM90A, CodeFormat::PTX,
                  std::vector<uint8_t>(ptx.begin(), ptx.end()));
  w.addCodeObject(Target::SM90A, CodeFormat::Cubin,
                  std::vector<uint8_t>({0x7f, 'E', 'L', 'F', 1, 2}));
  return w;
}

TEST_F(CUDADeviceTest, LargeUploadsGoThroughPinnedStaging) {
  auto dev = v4::rt::createDevice(Target::SM90A, "m.v4a");
  ASSERT_TRUE(dev) << dev.status().message();
  v4::rt::Device &d = **dev;
  // 40 MiB at offset 3: 16 + 16 + 8 MiB chunks through two pinned buffers.
  const size_t bytes = size_t(40) << 20;
  auto buf = d.allocate(bytes + 3);
  ASSERT_TRUE(buf);
  std::vector<uint8_t> src(bytes);
  for (size_t i = 0; i < bytes; ++i)
    src[i] = uint8_t(i * 2654435761u >> 13);
  int copies = launchRecord->pinnedCopies;
  int pinned = launchRecord->pinnedAllocations;
  ASSERT_TRUE(d.upload(*buf, 3, src.data(), bytes));
  EXPECT_EQ(launchRecord->pinnedCopies, copies + 3);
  EXPECT_EQ(launchRecord->pinnedAllocations, pinned + 2);
  std::vector<uint8_t> back(bytes);
  ASSERT_TRUE(d.download(back.data(), *buf, 3, bytes));
  EXPECT_TRUE(back == src);
  // The staging buffers are kept; small uploads copy directly.
  ASSERT_TRUE(d.upload(*buf, 0, src.data(), bytes));
  EXPECT_EQ(launchRecord->pinnedAllocations, pinned + 2);
  EXPECT_EQ(launchRecord->pinnedCopies, copies + 6);
  ASSERT_TRUE(d.upload(*buf, 0, src.data(), 4096));
  EXPECT_EQ(launchRecord->pinnedCopies, copies + 6);
  d.release(*buf);
}

TEST_F(CUDADeviceTest, LaunchesTheCubinWithDescriptorParameters) {
  auto bytes = gpuWriter().serialize();
  ASSERT_TRUE(bytes) << bytes.status().message();
  auto a = Artifact::load("gpu.v4a", bytes->data(), bytes->size());
  ASSERT_TRUE(a) << a.status().message();
  auto dev = v4::rt::createDevice(Target::SM90A, "gpu.v4a");
  ASSERT_TRUE(dev) << dev.status().message();
  v4::rt::Device &d = **dev;
  ASSERT_TRUE(d.loadKernels(*a));
  EXPECT_STREQ(loadedImage(), "\x7f"
                              "ELF");

  auto x = d.allocate(40 * 64 * 2), y = d.allocate(64 * 4);
  ASSERT_TRUE(x && y);
  std::vector<LaunchArg> args = {{*x, {1, 40, 64}}, {*y, {64}}};
  ASSERT_TRUE(d.launch(1, args, 40));
  const FakeCUDALaunch &l = *launchRecord;
  EXPECT_EQ(l.function, "v4_kernel_head");
  // 3 fixed blocks; ceil(40 / 32) token tiles.
  EXPECT_EQ(l.grid[0], 3u);
  EXPECT_EQ(l.grid[1], 2u);
  EXPECT_EQ(l.grid[2], 1u);
  EXPECT_EQ(l.block[0], 128u);
  EXPECT_EQ(l.sharedMemoryBytes, 1024u);
  auto word = [&](int i) { return *static_cast<uint64_t *>(l.params[i]); };
  uint64_t xp = reinterpret_cast<uint64_t>(x->address);
  uint64_t yp = reinterpret_cast<uint64_t>(y->address);
  // [1, 40, 64]: allocated, aligned, offset, sizes, row-major strides.
  std::vector<uint64_t> want = {xp, xp, 0,  1,  40, 64, 2560,
                                64, 1,  yp, yp, 0,  64, 1};
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_EQ(word(i), want[i]) << "parameter " << i;
  // Then the workspace: one device buffer of the largest kernel's bytes.
  EXPECT_NE(word(14), 0u);
  EXPECT_EQ(word(15), word(14));
  EXPECT_EQ(word(16), 0u);
  EXPECT_EQ(word(17), 4096u);
  EXPECT_EQ(word(18), 1u);

  // Kernel 0 has the default geometry: one block of one thread.
  ASSERT_TRUE(d.launch(0, args, 40));
  EXPECT_EQ(l.function, "v4_kernel_embed");
  EXPECT_EQ(l.grid[1], 1u);
  EXPECT_EQ(l.block[0], 1u);
  EXPECT_EQ(d.launch(9, args, 1).rule(), "RT-7");
  d.release(*x);
  d.release(*y);
}

TEST_F(CUDADeviceTest, RunsTheSm90aTableOfAMultiTargetArtifact) {
  // Format 1.5 (v4c --target=cpu,sm_90a): the host object and the CPU table
  // are skipped; the kernel set's code object, symbols and geometry used.
  Writer w = v4::artifact::testing::tinyWriter();
  v4::artifact::testing::addGPUKernelSet(w);
  auto bytes = w.serialize();
  ASSERT_TRUE(bytes) << bytes.status().message();
  auto a = Artifact::load("both.v4a", bytes->data(), bytes->size());
  ASSERT_TRUE(a) << a.status().message();
  auto dev = v4::rt::createDevice(Target::SM90A, "both.v4a");
  ASSERT_TRUE(dev) << dev.status().message();
  v4::rt::Device &d = **dev;
  EXPECT_EQ(d.target(), Target::SM90A);
  ASSERT_TRUE(d.loadKernels(*a));
  // The fake driver keeps an image's first 4 bytes: the PTX, not an ELF.
  EXPECT_STREQ(loadedImage(), ".ver");
  auto x = d.allocate(64), y = d.allocate(64);
  ASSERT_TRUE(x && y);
  std::vector<LaunchArg> args = {{*x, {16}}, {*y, {16}}};
  ASSERT_TRUE(d.launch(1, args, 4));
  EXPECT_EQ(launchRecord->function, "head");
  EXPECT_EQ(launchRecord->block[0], 256u);
  d.release(*x);
  d.release(*y);

  // The CPU device takes the artifact's own table and skips the PTX.
  auto cpu = v4::rt::createDevice(Target::CPU, "both.v4a", 1);
  ASSERT_TRUE(cpu);
  EXPECT_EQ((*cpu)->target(), Target::CPU);
}

/// A CUDA device (on the fake driver) with gpuWriter()'s kernels loaded.
static std::unique_ptr<v4::rt::Device> loadedGPUDevice() {
  auto bytes = gpuWriter().serialize();
  auto a = bytes ? Artifact::load("gpu.v4a", bytes->data(), bytes->size())
                 : v4::Expected<Artifact>(bytes.status());
  auto dev = v4::rt::createDevice(Target::SM90A, "gpu.v4a");
  if (!a || !dev || !(*dev)->loadKernels(*a))
    return nullptr;
  return dev.take();
}

TEST_F(CUDADeviceTest, EachQueueHasItsOwnStreamAndWorkspace) {
  // Sessions launch on queues of their own: a stream and a kernel
  // workspace each, so they run side by side.
  auto dev = loadedGPUDevice();
  ASSERT_TRUE(dev);
  v4::rt::Device &d = *dev;
  auto q1 = d.createQueue(), q2 = d.createQueue();
  ASSERT_TRUE(q1 && q2);
  auto x = d.allocate(64), y = d.allocate(64);
  ASSERT_TRUE(x && y);
  std::vector<LaunchArg> args = {{*x, {1, 1, 8}}, {*y, {8}}};
  auto workspace = [&] {
    return *static_cast<uint64_t *>(launchRecord->params[14]);
  };
  std::vector<void *> streams;
  std::vector<uint64_t> workspaces;
  for (v4::rt::Device::Queue *q :
       {static_cast<v4::rt::Device::Queue *>(nullptr), q1->get(), q2->get()}) {
    ASSERT_TRUE(d.launch(1, args, 1, q));
    streams.push_back(launchRecord->stream);
    workspaces.push_back(workspace());
    EXPECT_NE(workspaces.back(), 0u);
    ASSERT_TRUE(d.synchronize(q));
  }
  EXPECT_NE(streams[0], streams[1]);
  EXPECT_NE(streams[1], streams[2]);
  EXPECT_NE(streams[0], streams[2]);
  EXPECT_NE(workspaces[0], workspaces[1]);
  EXPECT_NE(workspaces[1], workspaces[2]);
  // Copies go to the queue too and read back in order.
  uint8_t in[64], out[64];
  for (int i = 0; i < 64; ++i)
    in[i] = uint8_t(i * 7);
  ASSERT_TRUE(d.upload(*x, 0, in, 64, q1->get()));
  ASSERT_TRUE(d.download(out, *x, 0, 64, q2->get()));
  EXPECT_EQ(std::memcmp(in, out, 64), 0);
  q1->reset();
  q2->reset();
  d.release(*x);
  d.release(*y);
}

TEST_F(CUDADeviceTest, RecordsLaunchesIntoAGraphAndReplaysIt) {
  auto dev = loadedGPUDevice();
  ASSERT_TRUE(dev);
  v4::rt::Device &d = *dev;
  ASSERT_TRUE(d.canRecord());
  auto x = d.allocate(64), y = d.allocate(64);
  ASSERT_TRUE(x && y);
  std::vector<LaunchArg> args = {{*x, {1, 1, 8}}, {*y, {8}}};
  int before = launchRecord->count;
  ASSERT_TRUE(d.beginRecording());
  ASSERT_TRUE(d.launch(0, args, 1));
  ASSERT_TRUE(d.launch(1, args, 1));
  auto recording = d.endRecording();
  ASSERT_TRUE(recording) << recording.status().message();
  // Captured, not run; then run as one graph, as often as replayed.
  EXPECT_EQ(launchRecord->captured, 2);
  EXPECT_EQ(launchRecord->count, before);
  int graphs = launchRecord->graphLaunches;
  ASSERT_TRUE(d.replay(**recording));
  ASSERT_TRUE(d.replay(**recording));
  EXPECT_EQ(launchRecord->graphLaunches, graphs + 2);
  ASSERT_TRUE(d.synchronize());
  // Launches after the recording run eagerly again.
  ASSERT_TRUE(d.launch(0, args, 1));
  EXPECT_EQ(launchRecord->count, before + 1);
  EXPECT_EQ(d.endRecording().status().rule(), "RT-7");
  recording->reset();

  // V4RT_CUDA_GRAPH=0: eager launches only (to compare with the graph).
  setenv("V4RT_CUDA_GRAPH", "0", 1);
  auto eager = v4::rt::createDevice(Target::SM90A, "gpu.v4a");
  unsetenv("V4RT_CUDA_GRAPH");
  ASSERT_TRUE(eager);
  EXPECT_FALSE((*eager)->canRecord());
  // The CPU device records on a queue of its own only, and replays only
  // its own recordings.
  auto cpu = v4::rt::createDevice(Target::CPU, "gpu.v4a", 1);
  ASSERT_TRUE(cpu);
  EXPECT_TRUE((*cpu)->canRecord());
  EXPECT_EQ((*cpu)->beginRecording().rule(), "RT-7");
  auto foreign = d.createQueue();
  ASSERT_TRUE(foreign);
  EXPECT_EQ((*cpu)->beginRecording(foreign->get()).rule(), "RT-7");
  ASSERT_TRUE(d.beginRecording());
  ASSERT_TRUE(d.launch(0, args, 1));
  auto graph = d.endRecording();
  ASSERT_TRUE(graph) << graph.status().message();
  EXPECT_EQ((*cpu)->replay(**graph).rule(), "RT-7");
  graph->reset();
  foreign->reset();
  d.release(*x);
  d.release(*y);
}

TEST_F(CUDADeviceTest, AMissingEntryOrAHostObjectIsRefused) {
  auto bytes = gpuWriter("missing_head").serialize();
  ASSERT_TRUE(bytes);
  auto a = Artifact::load("gpu.v4a", bytes->data(), bytes->size());
  ASSERT_TRUE(a) << a.status().message();
  auto dev = v4::rt::createDevice(Target::SM90A, "gpu.v4a");
  ASSERT_TRUE(dev);
  v4::Status s = (*dev)->loadKernels(*a);
  EXPECT_EQ(s.rule(), "RT-4");
  EXPECT_NE(s.message().find("gpu.v4a: kernel 'head' has no entry "
                             "'missing_head' in code object 1"),
            std::string::npos)
      << s.message();

  auto host = v4::artifact::testing::tinyWriter().serialize();
  ASSERT_TRUE(host);
  auto h = Artifact::load("cpu.v4a", host->data(), host->size());
  ASSERT_TRUE(h);
  auto dev2 = v4::rt::createDevice(Target::SM90A, "cpu.v4a");
  ASSERT_TRUE(dev2);
  s = (*dev2)->loadKernels(*h);
  EXPECT_EQ(s.rule(), "RT-4");
  EXPECT_NE(s.message().find("cpu.v4a: no sm_90a code object"),
            std::string::npos)
      << s.message();
}

} // namespace
