//===- NcclCollectivesTest.cpp - the NCCL engine without a GPU ------------===//
//
// The "nccl" engine (runtime/src/comm/NcclCollectives.h) on FakeCUDADriver
// (libcuda.so.1 on host memory) and FakeNccl (libnccl.so.2, named by
// V4RT_NCCL_LIBRARY): loading and its errors, the version check, the
// bootstrap and the non-blocking initialization, each collective's call and
// bits, and the failures: an asynchronous error, a collective or stream that
// never completes, an initialization that never completes; each aborts the
// communicator and fails every later call. The real library is only loaded
// here (no GPU); RealNccl.WorldOfOneOnTheGpu runs the engine on a GPU with
// real NCCL when V4_TEST_REAL_NCCL=1 (scripts/gpu-check.sh).
//
//===----------------------------------------------------------------------===//
#include "runtime/src/comm/NcclCollectives.h"
#include "runtime/src/Session.h"
#include "runtime/src/comm/Collectives.h"
#include "runtime/src/devices/Device.h"
#include "test/lib/TestArtifacts.h"
#include "test/runtime/FakeNccl.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <unistd.h>
#include <vector>

using namespace v4;
using namespace v4::rt;
using v4::testing::FakeNcclRecord;

namespace {

/// Rank `r` of a world of `n` whose host collectives move nothing (the
/// bootstrap's broadcast keeps this rank's bytes): enough for the NCCL
/// engine's own calls, which FakeNccl runs as rank r.
class HostWorld final : public Collectives {
public:
  HostWorld(int r = 0, int n = 1) : r(r), n(n) {}
  int rank() const override { return r; }
  int world() const override { return n; }
  const char *engine() const override { return "test"; }
  [[noreturn]] void abort(int code) override { std::_Exit(code); }

protected:
  Status runAllReduceSum(void *, size_t, DType) override { return {}; }
  Status runBroadcast(void *, size_t, int) override { return {}; }
  Status runAllGather(const void *, void *, size_t) override { return {}; }
  Status runReduceScatterSum(const void *, void *, size_t, DType) override {
    return {};
  }
  Status runAllToAll(const void *, const size_t *, void *, const size_t *,
                     size_t, size_t) override {
    return {};
  }
  Status runBarrier() override { return {}; }

private:
  int r, n;
};

void expectError(const Status &s, const std::string &rule,
                 const std::string &text) {
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.rule(), rule) << s.message();
  EXPECT_NE(s.message().find(text), std::string::npos)
      << "expected '" << text << "' in: " << s.message();
}

class NcclCollectivesTest : public ::testing::Test {
protected:
  void SetUp() override {
    driver = dlopen(V4_FAKE_CUDA_DRIVER, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(driver, nullptr) << dlerror();
    nccl = dlopen(V4_FAKE_NCCL, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(nccl, nullptr) << dlerror();
    auto read =
        reinterpret_cast<const void *(*)()>(dlsym(nccl, "fakeNcclRecord"));
    ASSERT_NE(read, nullptr);
    record = static_cast<const FakeNcclRecord *>(read());
    setenv("V4RT_NCCL_LIBRARY", V4_FAKE_NCCL, 1);
    auto opened = createDevice(artifact::Target::SM90A, "m.v4a");
    ASSERT_TRUE(opened) << opened.status().message();
    device = opened.take();
    auto q = device->createQueue();
    ASSERT_TRUE(q) << q.status().message();
    queue = q.take();
  }
  void TearDown() override {
    buffers.clear();
    queue.reset();
    device.reset();
    for (const char *name :
         {"V4RT_NCCL_LIBRARY", "V4_FAKE_NCCL", "V4_FAKE_CUDA_STREAM_BUSY",
          "V4RT_DEVICE_COLLECTIVES"})
      unsetenv(name);
    if (nccl)
      dlclose(nccl);
    if (driver)
      dlclose(driver);
  }
  /// The engine as rank `r` of `n`, or null after a test failure.
  std::unique_ptr<NcclCollectives> open(double timeout = 30, int r = 0,
                                        int n = 1) {
    auto lib = loadNccl();
    EXPECT_TRUE(lib) << lib.status().message();
    if (!lib)
      return nullptr;
    HostWorld host(r, n);
    auto c = NcclCollectives::open(lib.take(), host, *device, timeout);
    EXPECT_TRUE(c) << c.status().message();
    return c ? c.take() : nullptr;
  }
  DeviceBuffer upload(const std::vector<uint8_t> &bytes) {
    auto b = device->allocate(bytes.size());
    EXPECT_TRUE(b);
    EXPECT_TRUE(device->upload(*b, 0, bytes.data(), bytes.size()));
    buffers.emplace_back(device.get(), *b);
    return *b;
  }
  std::vector<uint8_t> download(DeviceBuffer b) {
    std::vector<uint8_t> out(b.bytes);
    EXPECT_TRUE(device->download(out.data(), b, 0, b.bytes));
    return out;
  }

  void *driver = nullptr, *nccl = nullptr;
  const FakeNcclRecord *record = nullptr;
  std::unique_ptr<Device> device;
  std::unique_ptr<Device::Queue> queue;
  std::vector<DeviceAllocation> buffers;
};

std::vector<uint8_t> pattern(size_t bytes, uint8_t seed) {
  std::vector<uint8_t> v(bytes);
  for (size_t i = 0; i < bytes; ++i)
    v[i] = uint8_t(seed + 37 * i);
  return v;
}

} // namespace

TEST(NcclLibrary, AMissingLibraryIsAClearError) {
  setenv("V4RT_NCCL_LIBRARY", "/nonexistent/libnccl.so.2", 1);
  auto lib = loadNccl();
  unsetenv("V4RT_NCCL_LIBRARY");
  ASSERT_FALSE(lib);
  EXPECT_EQ(lib.status().code(), StatusCode::Unavailable);
  expectError(lib.status(), "RT-10",
              "V4RT_NCCL_LIBRARY=/nonexistent/libnccl.so.2 does not load");
  expectError(lib.status(), "RT-10", "install NCCL 2.14 or newer");
  expectError(lib.status(), "RT-10", "V4RT_DEVICE_COLLECTIVES=host");
}

TEST(NcclLibrary, ALibraryWithoutNcclsEntryPointsIsRefused) {
  // The fake CUDA driver: a shared library, but not NCCL.
  setenv("V4RT_NCCL_LIBRARY", V4_FAKE_CUDA_DRIVER, 1);
  auto lib = loadNccl();
  unsetenv("V4RT_NCCL_LIBRARY");
  ASSERT_FALSE(lib);
  expectError(lib.status(), "RT-10", "lacks ncclGetVersion, ");
  expectError(lib.status(), "RT-10", "not NCCL 2.14.0 or newer");
}

TEST(NcclLibrary, ModeComesFromTheEnvironment) {
  unsetenv("V4RT_DEVICE_COLLECTIVES");
  EXPECT_EQ(*deviceCollectivesMode(), DeviceCollectivesMode::Auto);
  for (auto [text, mode] : {std::pair{"auto", DeviceCollectivesMode::Auto},
                            std::pair{"nccl", DeviceCollectivesMode::Nccl},
                            std::pair{"host", DeviceCollectivesMode::Host}}) {
    setenv("V4RT_DEVICE_COLLECTIVES", text, 1);
    auto m = deviceCollectivesMode();
    ASSERT_TRUE(m) << text;
    EXPECT_EQ(*m, mode) << text;
  }
  setenv("V4RT_DEVICE_COLLECTIVES", "mpi", 1);
  auto bad = deviceCollectivesMode();
  unsetenv("V4RT_DEVICE_COLLECTIVES");
  ASSERT_FALSE(bad);
  expectError(bad.status(), "RT-10",
              "V4RT_DEVICE_COLLECTIVES='mpi': expected auto, nccl or host");
}

// The real library loads without a GPU (NCCL starts CUDA only with a
// communicator); what it does on a GPU is RealNccl.WorldOfOneOnTheGpu's.
TEST(NcclLibrary, TheRealLibraryLoadsAndIsNewEnough) {
  const char *real = "/usr/local/cuda/lib64/libnccl.so.2";
  if (access(real, R_OK) != 0)
    GTEST_SKIP() << real << " is not installed";
  setenv("V4RT_NCCL_LIBRARY", real, 1);
  auto lib = loadNccl();
  unsetenv("V4RT_NCCL_LIBRARY");
  ASSERT_TRUE(lib) << lib.status().message();
}

TEST_F(NcclCollectivesTest, AnOldLibraryIsRefusedWithItsVersion) {
  setenv("V4_FAKE_NCCL", "old", 1);
  auto lib = loadNccl();
  ASSERT_FALSE(lib);
  expectError(lib.status(), "RT-10",
              std::string("V4RT_NCCL_LIBRARY=") + V4_FAKE_NCCL + " (");
  expectError(lib.status(), "RT-10",
              "is NCCL 2.10.0; v4rt needs 2.14.0 or newer");
  EXPECT_EQ(ncclVersionName(22809), "2.28.9");
}

TEST_F(NcclCollectivesTest, AWorldOfOneMovesEveryDtypesBits) {
  auto c = open();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->rank(), 0);
  EXPECT_EQ(c->world(), 1);
  EXPECT_EQ(c->version(), 22809);
  EXPECT_EQ(record->nranks, 1);
  EXPECT_EQ(record->rank, 0);
  EXPECT_EQ(record->blocking, 0); // non-blocking: the init is polled too
  void *stream = device->nativeStream(queue.get());
  ASSERT_NE(stream, nullptr);

  struct Case {
    DType dtype;
    size_t width;
    int ncclType;
  };
  for (Case k : {Case{DType::F32, 4, 7}, Case{DType::BF16, 2, 9},
                 Case{DType::I64, 8, 4}}) {
    SCOPED_TRACE(dtypeName(k.dtype));
    std::vector<uint8_t> bits = pattern(7 * k.width, uint8_t(k.width));
    DeviceBuffer data = upload(bits);
    int before = record->collectives;
    ASSERT_TRUE(c->allReduceSum(data.address, 7, k.dtype, queue.get()));
    EXPECT_EQ(record->collectives, before + 1);
    EXPECT_STREQ(record->call.what, "all_reduce");
    EXPECT_EQ(record->call.send, data.address); // in place
    EXPECT_EQ(record->call.recv, data.address);
    EXPECT_EQ(record->call.count, 7u);
    EXPECT_EQ(record->call.datatype, k.ncclType);
    EXPECT_EQ(record->call.stream, stream); // the session queue's stream
    EXPECT_EQ(download(data), bits);

    DeviceBuffer recv = upload(std::vector<uint8_t>(7 * k.width, 0));
    ASSERT_TRUE(c->reduceScatterSum(data.address, recv.address, 7, k.dtype,
                                    queue.get()));
    EXPECT_STREQ(record->call.what, "reduce_scatter");
    EXPECT_EQ(record->call.datatype, k.ncclType);
    EXPECT_EQ(record->call.count, 7u);
    EXPECT_EQ(download(recv), bits);
  }
  // The gather moves bytes: every dtype, i32 too.
  for (DType dtype : {DType::F32, DType::BF16, DType::I64, DType::I32}) {
    size_t width = (dtypeBits(dtype) + 7) / 8;
    std::vector<uint8_t> bits = pattern(5 * width, 3);
    DeviceBuffer send = upload(bits);
    DeviceBuffer recv = upload(std::vector<uint8_t>(5 * width, 0));
    ASSERT_TRUE(c->allGather(send.address, recv.address, 5, dtype, queue.get()))
        << dtypeName(dtype);
    EXPECT_STREQ(record->call.what, "all_gather");
    EXPECT_EQ(record->call.datatype, 0); // int8
    EXPECT_EQ(record->call.count, 5 * width);
    EXPECT_EQ(download(recv), bits);
  }
  // Nothing to move is still a collective of every rank.
  EXPECT_TRUE(c->allReduceSum(nullptr, 0, DType::F32, queue.get()));
  int aborts = record->aborts, destroys = record->destroys;
  c.reset();
  EXPECT_EQ(record->destroys, destroys + 1);
  EXPECT_EQ(record->aborts, aborts);
}

TEST_F(NcclCollectivesTest, RankRsBlocksAreItsOwn) {
  // Rank 1 of 2 (the fake moves what a world of one would, at rank 1's
  // block): the gather writes block 1, the reduce-scatter reads block 1.
  auto c = open(30, 1, 2);
  ASSERT_TRUE(c);
  EXPECT_EQ(record->nranks, 2);
  EXPECT_EQ(record->rank, 1);
  std::vector<uint8_t> mine = pattern(12, 9);
  DeviceBuffer send = upload(mine);
  DeviceBuffer gathered = upload(std::vector<uint8_t>(24, 0));
  ASSERT_TRUE(
      c->allGather(send.address, gathered.address, 3, DType::F32, queue.get()));
  std::vector<uint8_t> out = download(gathered);
  EXPECT_EQ(std::vector<uint8_t>(out.begin() + 12, out.end()), mine);
  DeviceBuffer recv = upload(std::vector<uint8_t>(12, 0));
  ASSERT_TRUE(c->reduceScatterSum(gathered.address, recv.address, 3, DType::F32,
                                  queue.get()));
  EXPECT_EQ(record->call.count, 3u);
  EXPECT_EQ(download(recv), mine);
}

TEST_F(NcclCollectivesTest, AnAllToAllSendsTheCountedRowsAndFillsTheRest) {
  // A world of one: counts exchanged (one group), copied to the host, then
  // the counted rows (a second group) and the fill of the rest on the
  // device.
  auto c = open();
  ASSERT_TRUE(c);
  int64_t count = 2;
  std::vector<uint8_t> counts(8);
  std::memcpy(counts.data(), &count, 8);
  DeviceBuffer n = upload(counts), got = upload(std::vector<uint8_t>(8, 0));
  std::vector<uint8_t> rows = pattern(4 * 3 * 8, 3);
  DeviceBuffer send = upload(rows),
               recv = upload(std::vector<uint8_t>(rows.size(), 0x55));
  int groups = record->groups;
  size_t bytes = record->groupBytes;
  ASSERT_TRUE(c->allToAll(static_cast<const int64_t *>(n.address), send.address,
                          static_cast<int64_t *>(got.address), recv.address, 4,
                          3, DType::I64, queue.get()));
  EXPECT_EQ(record->groups, groups + 2);
  EXPECT_EQ(record->groupBytes, bytes + 8 + 2 * 3 * 8);
  EXPECT_EQ(download(got), counts);
  std::vector<uint8_t> out = download(recv);
  EXPECT_EQ(std::vector<uint8_t>(out.begin(), out.begin() + 48),
            std::vector<uint8_t>(rows.begin(), rows.begin() + 48));
  EXPECT_EQ(std::vector<uint8_t>(out.begin() + 48, out.end()),
            std::vector<uint8_t>(48, 0xff));
  // bf16: the fill is +0.
  ASSERT_TRUE(c->allToAll(static_cast<const int64_t *>(n.address), send.address,
                          static_cast<int64_t *>(got.address), recv.address, 4,
                          12, DType::BF16, queue.get()));
  out = download(recv);
  EXPECT_EQ(std::vector<uint8_t>(out.begin() + 48, out.end()),
            std::vector<uint8_t>(48, 0));
  // A count beyond the block breaks the communicator on this rank.
  count = 5;
  std::memcpy(counts.data(), &count, 8);
  DeviceBuffer tooMany = upload(counts);
  expectError(c->allToAll(static_cast<const int64_t *>(tooMany.address),
                          send.address, static_cast<int64_t *>(got.address),
                          recv.address, 4, 3, DType::I64, queue.get()),
              "RT-10", "the count of rows for rank 0 is 5, outside [0, 4]");
  expectError(c->allReduceSum(send.address, 2, DType::F32, queue.get()),
              "RT-10", "the communicator broke at all_to_all");
}

TEST_F(NcclCollectivesTest, ArgumentsAreCheckedAsTheHostEngines) {
  auto c = open();
  ASSERT_TRUE(c);
  DeviceBuffer a = upload(std::vector<uint8_t>(64, 1));
  int before = record->collectives;
  expectError(c->allReduceSum(a.address, 4, DType::F16, queue.get()), "ARG",
              "all_reduce: dtype f16 is not summed");
  expectError(c->allReduceSum(nullptr, 4, DType::F32, queue.get()), "ARG",
              "all_reduce: null data");
  expectError(c->allGather(a.address, static_cast<char *>(a.address) + 4, 4,
                           DType::F32, queue.get()),
              "ARG", "all_gather: send and receive buffers overlap");
  expectError(
      c->reduceScatterSum(a.address, nullptr, 4, DType::BF16, queue.get()),
      "ARG", "reduce_scatter: null receive data");
  EXPECT_EQ(record->collectives, before); // nothing reached NCCL
  // ... and the communicator is still usable.
  EXPECT_TRUE(c->allReduceSum(a.address, 4, DType::F32, queue.get()));
}

TEST_F(NcclCollectivesTest, AnAsynchronousErrorAbortsAndFailsEveryLaterCall) {
  auto c = open();
  ASSERT_TRUE(c);
  DeviceBuffer a = upload(std::vector<uint8_t>(16, 1));
  ASSERT_TRUE(c->allReduceSum(a.address, 4, DType::F32, queue.get()));
  setenv("V4_FAKE_NCCL", "async-error", 1);
  int aborts = record->aborts;
  Status s = c->allReduceSum(a.address, 8, DType::BF16, queue.get());
  EXPECT_EQ(s.code(), StatusCode::Unavailable);
  expectError(s, "RT-10",
              "all_reduce #2 (bf16, 8 elements, NCCL) failed on rank 0 of 1: "
              "remote process exited or there was a network error (fake) "
              "(the fake's last error)");
  EXPECT_EQ(record->aborts, aborts + 1);
  unsetenv("V4_FAKE_NCCL");
  int before = record->collectives;
  expectError(c->allGather(a.address, static_cast<char *>(a.address) + 8, 2,
                           DType::F32, queue.get()),
              "RT-10",
              "all_gather #3 (f32, 2 elements, NCCL) on rank 0 of 1 not run: "
              "the communicator broke at all_reduce #2");
  EXPECT_EQ(record->collectives, before);
  c.reset(); // aborted already: neither destroyed nor aborted again
  EXPECT_EQ(record->aborts, aborts + 1);
}

TEST_F(NcclCollectivesTest, AHungCollectiveTimesOutAndAborts) {
  auto c = open(0.2);
  ASSERT_TRUE(c);
  DeviceBuffer a = upload(std::vector<uint8_t>(16, 1));
  setenv("V4_FAKE_NCCL", "hang", 1);
  int aborts = record->aborts;
  Status s = c->reduceScatterSum(a.address, static_cast<char *>(a.address) + 8,
                                 2, DType::F32, queue.get());
  expectError(s, "RT-10",
              "reduce_scatter #1 (f32, 2 elements, NCCL) timed out after 0.2 "
              "s on rank 0 of 1: another rank stopped or died");
  EXPECT_EQ(record->aborts, aborts + 1);
  expectError(c->allReduceSum(a.address, 1, DType::I64, queue.get()), "RT-10",
              "not run: the communicator broke at reduce_scatter #1");
}

TEST_F(NcclCollectivesTest, AStreamThatNeverFinishesTimesOut) {
  auto c = open(0.2);
  ASSERT_TRUE(c);
  DeviceBuffer a = upload(std::vector<uint8_t>(16, 1));
  // NCCL enqueued it, but the stream never gets to it.
  setenv("V4_FAKE_CUDA_STREAM_BUSY", "1", 1);
  expectError(c->allReduceSum(a.address, 4, DType::F32, queue.get()), "RT-10",
              "all_reduce #1 (f32, 4 elements, NCCL) timed out after 0.2 s");
  unsetenv("V4_FAKE_CUDA_STREAM_BUSY");
}

TEST_F(NcclCollectivesTest, ARefusedCollectiveLeavesTheCommunicatorUsable) {
  auto c = open();
  ASSERT_TRUE(c);
  DeviceBuffer a = upload(std::vector<uint8_t>(16, 1));
  setenv("V4_FAKE_NCCL", "refuse", 1);
  int aborts = record->aborts;
  expectError(c->allReduceSum(a.address, 4, DType::F32, queue.get()), "RT-10",
              "all_reduce #1 (f32, 4 elements, NCCL) on rank 0 of 1: NCCL "
              "refused it: invalid argument (fake)");
  EXPECT_EQ(record->aborts, aborts);
  unsetenv("V4_FAKE_NCCL");
  EXPECT_TRUE(c->allReduceSum(a.address, 4, DType::F32, queue.get()));
}

TEST_F(NcclCollectivesTest, InitializationFailuresAndTimeouts) {
  auto lib = loadNccl();
  ASSERT_TRUE(lib) << lib.status().message();
  HostWorld host;
  setenv("V4_FAKE_NCCL", "init-hang", 1);
  int aborts = record->aborts;
  auto hung = NcclCollectives::open(*lib, host, *device, 0.2);
  ASSERT_FALSE(hung);
  expectError(hung.status(), "RT-10",
              "NCCL 2.28.9 (" + std::string(V4_FAKE_NCCL) +
                  ") communicator on rank 0 of 1: initialization timed out "
                  "after 0.2 s");
  EXPECT_EQ(record->aborts, aborts + 1);
  setenv("V4_FAKE_NCCL", "init-error", 1);
  auto failed = NcclCollectives::open(*lib, host, *device, 5);
  ASSERT_FALSE(failed);
  expectError(failed.status(), "RT-10",
              "ncclCommInitRankConfig failed: unhandled system error (fake)");
  EXPECT_EQ(record->aborts, aborts + 2);
}

namespace {
/// A kernel-free sm_90a artifact partitioned over 2 ranks (makePartitioned)
/// whose step is one all_reduce_sum of activation 3 (bf16 [2, T, 8]), loaded on
/// the fake driver as rank 0 of HostWorld(0, 2), with synthetic weights; then
/// one chunk of `tokens` runs. Returns the run's status.
Status runPartitionedStep(int64_t tokens) {
  using namespace v4::artifact;
  Description d = v4::artifact::testing::kernelFreeDescription();
  d.target = Target::SM90A;
  // makePartitioned's collective goes after the first step: a placeholder.
  d.entryPoints[1].steps.resize(1);
  v4::artifact::testing::makePartitioned(d);
  d.entryPoints[1].steps.erase(d.entryPoints[1].steps.begin());
  std::string path = (std::filesystem::temp_directory_path() /
                      ("v4-nccl-" + std::to_string(getpid()) + ".v4a"))
                         .string();
  Writer w(d);
  std::string ptx = "// no kernels";
  w.addCodeObject(Target::SM90A, CodeFormat::PTX,
                  std::vector<uint8_t>(ptx.begin(), ptx.end()));
  if (Status s = w.writeFile(path); !s)
    return s;
  Model::LoadOptions o;
  o.device = "cuda";
  o.syntheticSeed = 1;
  o.collectives = std::make_shared<HostWorld>(0, 2);
  auto model = Model::load(path, o);
  std::filesystem::remove(path);
  if (!model)
    return model.status();
  auto session = Session::create(**model);
  if (!session)
    return session.status();
  std::vector<int64_t> ids(size_t(2 * tokens), 1);
  std::vector<float> logits(size_t(2 * tokens * 32));
  return (*session)->run(ids.data(), nullptr, tokens, logits.data(), nullptr);
}
} // namespace

TEST_F(NcclCollectivesTest, ASessionsCollectiveStepRunsOnNcclWhenAsked) {
  // auto: every rank loads NCCL, so the step runs on the buffer itself.
  int before = record->collectives, inits = record->inits;
  Status s = runPartitionedStep(3);
  ASSERT_TRUE(s) << s.message();
  EXPECT_EQ(record->inits, inits + 1);
  EXPECT_EQ(record->nranks, 2);
  EXPECT_EQ(record->collectives, before + 1);
  EXPECT_STREQ(record->call.what, "all_reduce");
  EXPECT_EQ(record->call.count, 2u * 3 * 8);
  EXPECT_EQ(record->call.datatype, 9); // bf16
  EXPECT_EQ(record->call.send, record->call.recv);
  EXPECT_NE(record->call.stream, nullptr);

  // host: staged through host memory and the host collectives.
  setenv("V4RT_DEVICE_COLLECTIVES", "host", 1);
  before = record->collectives;
  s = runPartitionedStep(2);
  EXPECT_TRUE(s) << s.message();
  EXPECT_EQ(record->collectives, before);

  // auto without NCCL: the host path too.
  setenv("V4RT_DEVICE_COLLECTIVES", "auto", 1);
  setenv("V4RT_NCCL_LIBRARY", "/nonexistent/libnccl.so.2", 1);
  s = runPartitionedStep(2);
  EXPECT_TRUE(s) << s.message();
  EXPECT_EQ(record->collectives, before);

  // nccl without NCCL: the run fails, saying why.
  setenv("V4RT_DEVICE_COLLECTIVES", "nccl", 1);
  expectError(runPartitionedStep(2), "RT-10",
              "V4RT_NCCL_LIBRARY=/nonexistent/libnccl.so.2 does not load");

  // A communicator that does not open: auto takes the host path, nccl
  // fails.
  setenv("V4RT_NCCL_LIBRARY", V4_FAKE_NCCL, 1);
  setenv("V4_FAKE_NCCL", "init-error", 1);
  setenv("V4RT_DEVICE_COLLECTIVES", "auto", 1);
  inits = record->inits;
  s = runPartitionedStep(2);
  EXPECT_TRUE(s) << s.message();
  EXPECT_EQ(record->inits, inits + 1);
  EXPECT_EQ(record->collectives, before);
  setenv("V4RT_DEVICE_COLLECTIVES", "nccl", 1);
  expectError(runPartitionedStep(2), "RT-10",
              "communicator on rank 0 of 2: ncclCommInitRankConfig failed");
  unsetenv("V4_FAKE_NCCL");
  setenv("V4RT_DEVICE_COLLECTIVES", "gloo", 1);
  expectError(runPartitionedStep(2), "RT-10",
              "V4RT_DEVICE_COLLECTIVES='gloo': expected auto, nccl or host");
}

// On a GPU with real NCCL (scripts/gpu-check.sh sets V4_TEST_REAL_NCCL=1 and
// V4RT_NCCL_LIBRARY where NCCL is not on the loader's path): the same
// engine, real NCCL calls, a world of one. Without the variable it skips
// (no GPU, or the fake driver of the tests above would be found).
TEST(RealNccl, WorldOfOneOnTheGpu) {
  const char *asked = std::getenv("V4_TEST_REAL_NCCL");
  if (!asked || std::string(asked) != "1")
    GTEST_SKIP() << "needs a GPU and NCCL: set V4_TEST_REAL_NCCL=1 (as "
                    "scripts/gpu-check.sh does)";
  auto opened = createDevice(artifact::Target::SM90A, "real-nccl");
  ASSERT_TRUE(opened) << opened.status().message();
  Device &dev = **opened;
  auto queue = dev.createQueue();
  ASSERT_TRUE(queue) << queue.status().message();
  auto lib = loadNccl();
  ASSERT_TRUE(lib) << lib.status().message();
  HostWorld host;
  auto c = NcclCollectives::open(lib.take(), host, dev, 60);
  ASSERT_TRUE(c) << c.status().message();
  std::printf("NCCL %s, a world of one on %s\n",
              ncclVersionName((*c)->version()).c_str(), dev.name());
  size_t n = 1 << 20;
  for (DType dtype : {DType::F32, DType::BF16, DType::I64}) {
    SCOPED_TRACE(dtypeName(dtype));
    size_t width = (dtypeBits(dtype) + 7) / 8;
    std::vector<uint8_t> bits = pattern(n * width, uint8_t(width));
    if (dtype != DType::I64) // no NaNs: a sum of one term keeps its bits
      for (size_t i = width - 1; i < bits.size(); i += width)
        bits[i] &= 0x3f;
    auto a = dev.allocate(bits.size());
    auto b = dev.allocate(bits.size());
    ASSERT_TRUE(a && b);
    DeviceAllocation ownA(&dev, *a), ownB(&dev, *b);
    ASSERT_TRUE(dev.upload(*a, 0, bits.data(), bits.size(), queue->get()));
    ASSERT_TRUE((*c)->allReduceSum(a->address, n, dtype, queue->get()));
    ASSERT_TRUE(
        (*c)->reduceScatterSum(a->address, b->address, n, dtype, queue->get()));
    std::vector<uint8_t> out(bits.size());
    ASSERT_TRUE(dev.download(out.data(), *b, 0, out.size(), queue->get()));
    EXPECT_EQ(out, bits);
    ASSERT_TRUE(dev.fill(*b, 0, out.size(), "\0", 1, queue->get()));
    ASSERT_TRUE(
        (*c)->allGather(a->address, b->address, n, dtype, queue->get()));
    ASSERT_TRUE(dev.download(out.data(), *b, 0, out.size(), queue->get()));
    EXPECT_EQ(out, bits);
    // All-to-all of rows of 8 elements: the first 3/4 sent (the count in
    // device memory), the rest filled.
    int64_t rows = int64_t(n / 8), count = rows * 3 / 4;
    auto counts = dev.allocate(16);
    ASSERT_TRUE(counts);
    DeviceAllocation ownCounts(&dev, *counts);
    ASSERT_TRUE(dev.upload(*counts, 0, &count, 8, queue->get()));
    auto *sent = static_cast<int64_t *>(counts->address);
    ASSERT_TRUE((*c)->allToAll(sent, a->address, sent + 1, b->address,
                               size_t(rows), 8, dtype, queue->get()));
    int64_t got = -1;
    ASSERT_TRUE(dev.download(&got, *counts, 8, 8, queue->get()));
    EXPECT_EQ(got, count);
    ASSERT_TRUE(dev.download(out.data(), *b, 0, out.size(), queue->get()));
    size_t kept = size_t(count) * 8 * width;
    EXPECT_EQ(std::vector<uint8_t>(out.begin(), out.begin() + kept),
              std::vector<uint8_t>(bits.begin(), bits.begin() + kept));
    EXPECT_EQ(std::vector<uint8_t>(out.begin() + kept, out.end()),
              std::vector<uint8_t>(out.size() - kept, allToAllFillByte(dtype)));
  }
}

// Real NCCL on the fake driver (no GPU): NCCL's CUDA runtime finds the fake
// libcuda.so.1 already loaded and no usable driver in it ("CUDA driver
// version is insufficient"), so the communicator is refused with NCCL's
// words, not a crash; in a child process (NCCL's threads stay out of this
// one).
TEST_F(NcclCollectivesTest, RealNcclWithoutAGpuIsAClearError) {
  const char *real = "/usr/local/cuda/lib64/libnccl.so.2";
  if (access(real, R_OK) != 0)
    GTEST_SKIP() << real << " is not installed";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setenv("V4RT_NCCL_LIBRARY", real, 1);
        auto lib = loadNccl();
        if (!lib) {
          std::fprintf(stderr, "load: %s\n", lib.status().message().c_str());
          std::exit(1);
        }
        HostWorld host;
        auto c = NcclCollectives::open(lib.take(), host, *device, 20);
        std::fprintf(stderr, "%s\n",
                     c ? "opened" : c.status().message().c_str());
        std::exit(!c && c.status().rule() == "RT-10" ? 0 : 1);
      },
      ::testing::ExitedWithCode(0),
      "NCCL 2\\..* communicator on rank 0 of 1: "
      "ncclCommInitRankConfig failed: unhandled cuda error");
}
