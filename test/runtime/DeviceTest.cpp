//===- DeviceTest.cpp - the device seam and the CPU device ----------------===//
//
// The CPU device on a real host code object (test/runtime/TestHostKernels,
// built as a shared library, put in an artifact by the writer): loading from
// memory with nothing written under $TMPDIR, launching through the kernel
// ABI, buffers, and the RT rules of model loading through the C API.
//
//===----------------------------------------------------------------------===//
#include "runtime/src/devices/CPUDevice.h"
#include "test/lib/TestArtifacts.h"
#include "v4rt/v4rt.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace {

using namespace v4::artifact;
using v4::StatusCode;
using v4::rt::CPUDevice;
using v4::rt::DeviceBuffer;
using v4::rt::LaunchArg;
namespace fs = std::filesystem;

std::vector<uint8_t> readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

/// An artifact whose code object is the test host kernels library (built
/// for the x86-64 level `isa`, or unnamed).
Artifact hostKernelArtifact(std::vector<Kernel> kernels, std::string isa = "") {
  Description d;
  d.versions.compiler = "test";
  d.versions.mlir = "22";
  d.target = Target::CPU;
  d.bounds = {2, 64, 16};
  d.kernels = std::move(kernels);
  Writer w(std::move(d));
  std::vector<uint8_t> image = readBytes(V4_TEST_HOST_KERNELS);
  EXPECT_GT(image.size(), 1000u);
  w.addCodeObject(Target::CPU, CodeFormat::HostSharedObject, image, isa);
  auto bytes = w.serialize();
  EXPECT_TRUE(bytes) << bytes.status().message();
  auto a = Artifact::load("host.v4a", bytes->data(), bytes->size());
  EXPECT_TRUE(a) << a.status().message();
  return a.take();
}

size_t tmpKernelFiles(const std::string &dir) {
  size_t n = 0;
  std::error_code ec;
  for (const auto &e : fs::directory_iterator(dir, ec))
    n += e.path().filename().string().rfind("v4rt-kernels-", 0) == 0;
  return n;
}

TEST(CPUDevice, BuffersAreZeroedAlignedAndBoundsChecked) {
  CPUDevice dev;
  auto b = dev.allocate(100);
  ASSERT_TRUE(b) << b.status().message();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b->address) % 64, 0u);
  EXPECT_EQ(b->bytes, 100u);
  EXPECT_EQ(dev.hostAddress(*b), b->address);
  std::vector<uint8_t> zeros(100, 0), back(100, 0xAA);
  ASSERT_TRUE(dev.download(back.data(), *b, 0, 100).ok());
  EXPECT_EQ(back, zeros);
  float v[3] = {1.5f, -2.0f, 3.25f}, w[3] = {};
  ASSERT_TRUE(dev.upload(*b, 88, v, sizeof v).ok());
  ASSERT_TRUE(dev.download(w, *b, 88, sizeof w).ok());
  EXPECT_EQ(std::memcmp(v, w, sizeof v), 0);
  v4::Status over = dev.upload(*b, 90, v, sizeof v);
  EXPECT_EQ(over.code(), StatusCode::Internal);
  EXPECT_EQ(over.rule(), "RT-7");
  EXPECT_EQ(dev.download(w, *b, 101, 0).code(), StatusCode::Internal);
  dev.release(*b);
}

/// Whether the CUDA driver can be loaded here (a GPU machine: the sm_90a
/// device then opens, and scripts/gpu-check.sh tests it).
static bool haveCUDADriver() {
  void *driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (driver)
    dlclose(driver);
  return driver != nullptr;
}

// Without the driver, an sm_90a artifact's device is an RT-3 error that says
// the driver is missing; the runtime itself links nothing of CUDA.
TEST(CPUDevice, NoDeviceForGpuArtifacts) {
  auto cpu0 = v4::rt::createDevice(Target::CPU, "model.v4a");
  ASSERT_TRUE(cpu0);
  if (haveCUDADriver())
    GTEST_SKIP() << "a CUDA driver is installed";
  auto dev = v4::rt::createDevice(Target::SM90A, "model.v4a");
  ASSERT_FALSE(dev);
  EXPECT_EQ(dev.status().code(), StatusCode::Incompatible);
  EXPECT_EQ(dev.status().rule(), "RT-3");
  EXPECT_NE(dev.status().message().find("model.v4a: artifact targets sm_90a; "
                                        "no CUDA driver (libcuda.so.1"),
            std::string::npos)
      << dev.status().message();
  auto cpu = v4::rt::createDevice(Target::CPU, "model.v4a");
  ASSERT_TRUE(cpu);
  EXPECT_STREQ((*cpu)->name(), "cpu");
}

/// The sum of the first byte of each page. Not instrumented: under
/// AddressSanitizer or ThreadSanitizer each read would also touch its
/// shadow memory (a fault per 8 fresh pages, or per page), faults that are
/// not the mapping's.
#if defined(__clang__) || defined(__GNUC__)
__attribute__((no_sanitize("address", "thread")))
#endif
unsigned
touchPages(const void *map, size_t pages, size_t page) {
  unsigned sum = 0;
  for (size_t i = 0; i < pages; ++i)
    sum += static_cast<const volatile unsigned char *>(map)[i * page];
  return sum;
}

// A mapped weight file served in place has its page-table entries filled
// when it is mapped for the kernels: reading every page afterwards takes no
// minor fault (without, the kernel maps 16 cached pages per fault: 64 here).
TEST(CPUDevice, MappedHostMemoryTakesNoFaultsInsideAStep) {
  const size_t pages = 1024, page = size_t(sysconf(_SC_PAGESIZE));
  const size_t bytes = pages * page;
  fs::path path = fs::temp_directory_path() /
                  ("v4-populate-" + std::to_string(::getpid()) + ".bin");
  {
    std::ofstream out(path, std::ios::binary);
    std::vector<char> chunk(page, 7);
    for (size_t i = 0; i < pages; ++i)
      out.write(chunk.data(), std::streamsize(page));
  }
  int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  void *map = ::mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  fs::remove(path);
  ASSERT_NE(map, MAP_FAILED);
#ifdef MADV_POPULATE_READ
  // The kernel must know the advice (Linux 5.14); probe it on a page of an
  // anonymous mapping.
  void *probe =
      ::mmap(nullptr, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(probe, MAP_FAILED);
  bool known = ::madvise(probe, page, MADV_POPULATE_READ) == 0;
  ::munmap(probe, page);
  if (!known) {
    ::munmap(map, bytes);
    GTEST_SKIP() << "the kernel lacks MADV_POPULATE_READ";
  }
#else
  ::munmap(map, bytes);
  GTEST_SKIP() << "no MADV_POPULATE_READ in these headers";
#endif
  CPUDevice dev(1);
  auto view = dev.mapHostMemory(map, bytes);
  ASSERT_TRUE(view);
  EXPECT_EQ(view->address, map);
  auto faults = [] {
    struct rusage u;
    ::getrusage(RUSAGE_THREAD, &u);
    return u.ru_minflt;
  };
  long before = faults();
  unsigned sum = touchPages(map, pages, page);
  long taken = faults() - before;
  EXPECT_EQ(sum, 7u * pages);
  EXPECT_LE(taken, 2) << "minor faults reading " << pages << " pages";
  ::munmap(map, bytes);
}

TEST(CPUDevice, LoadsFromMemoryAndLaunchesThroughTheKernelABI) {
  Artifact a = hostKernelArtifact({{"iota", 0, "v4_test_iota", 1, 0, ""},
                                   {"scale", 0, "v4_test_scale", 2, 0, ""}});
  // Nothing may be written to disk: point TMPDIR at a missing directory and
  // count kernel files in /tmp.
  const char *old = std::getenv("TMPDIR");
  std::string saved = old ? old : "";
  setenv("TMPDIR", "/nonexistent/v4rt-test", 1);
  size_t before = tmpKernelFiles("/tmp");
  CPUDevice dev;
  v4::Status loaded = dev.loadKernels(a);
  if (old)
    setenv("TMPDIR", saved.c_str(), 1);
  else
    unsetenv("TMPDIR");
  ASSERT_TRUE(loaded.ok()) << loaded.message();
  EXPECT_EQ(tmpKernelFiles("/tmp"), before);

  // iota over a [2, T] buffer with T = 5 of a 16-token bound.
  auto ids = dev.allocate(2 * 16 * sizeof(int64_t));
  ASSERT_TRUE(ids);
  ASSERT_TRUE(dev.launch(0, {LaunchArg{*ids, {2, 5}}}, 5).ok());
  std::vector<int64_t> got(10);
  ASSERT_TRUE(dev.download(got.data(), *ids, 0, 80).ok());
  EXPECT_EQ(got,
            (std::vector<int64_t>{0, 1, 2, 3, 4, 100, 101, 102, 103, 104}));

  auto in = dev.allocate(3 * sizeof(float));
  auto out = dev.allocate(2 * 3 * sizeof(float));
  ASSERT_TRUE(in && out);
  float x[3] = {1.0f, -2.0f, 0.5f};
  ASSERT_TRUE(dev.upload(*in, 0, x, sizeof x).ok());
  ASSERT_TRUE(
      dev.launch(1, {LaunchArg{*in, {3}}, LaunchArg{*out, {2, 3}}}, 1).ok());
  float y[6];
  ASSERT_TRUE(dev.download(y, *out, 0, sizeof y).ok());
  EXPECT_EQ(std::vector<float>(y, y + 6),
            (std::vector<float>{1.0f, -2.0f, 0.5f, 2.0f, -4.0f, 1.0f}));
  v4::Status bad = dev.launch(2, {}, 1);
  EXPECT_EQ(bad.code(), StatusCode::Internal);
  for (DeviceBuffer b : {*ids, *in, *out})
    dev.release(b);
}

// The launch grid: a kernel of grid 3 x 2*ceil(T/4) x 1 at T = 9 (18
// blocks) runs each block exactly once per launch, with the grid in its
// launch block, on a device of 1 thread and of 4.
TEST(CPUDevice, RunsEveryBlockOfTheGridOnceOnTheThreadPool) {
  Kernel k{"blocks", 0, "v4_test_blocks", 1, 0, ""};
  k.launch.grid[0].fixed = 3;
  k.launch.grid[1].fixed = 2;
  k.launch.grid[1].tokenTile = 4;
  Artifact a = hostKernelArtifact({k});
  for (unsigned threads : {1u, 4u}) {
    CPUDevice dev(threads);
    EXPECT_EQ(dev.numThreads(), threads);
    ASSERT_TRUE(dev.loadKernels(a).ok());
    const int64_t blocks = 3 * 2 * 3, words = blocks + 3;
    auto out = dev.allocate(words * sizeof(int64_t));
    ASSERT_TRUE(out);
    for (int launch = 1; launch <= 3; ++launch) {
      ASSERT_TRUE(dev.launch(0, {LaunchArg{*out, {words}}}, 9).ok());
      std::vector<int64_t> got(words);
      ASSERT_TRUE(
          dev.download(got.data(), *out, 0, words * sizeof(int64_t)).ok());
      for (int64_t i = 0; i < blocks; ++i)
        EXPECT_EQ(got[i], launch)
            << "block " << i << ", " << threads << " threads";
      EXPECT_EQ(got[blocks], 3);
      EXPECT_EQ(got[blocks + 1], 6);
      EXPECT_EQ(got[blocks + 2], 1);
    }
    dev.release(*out);
  }
}

/// The kernels of the group tests: `blocks` on a grid of 3 x 2*ceil(T/4)
/// x 1 blocks, and the one-block `iota` and `scale`.
Artifact groupKernelArtifact() {
  Kernel blocks{"blocks", 0, "v4_test_blocks", 1, 0, ""};
  blocks.launch.grid[0].fixed = 3;
  blocks.launch.grid[1].fixed = 2;
  blocks.launch.grid[1].tokenTile = 4;
  return hostKernelArtifact({blocks,
                             {"iota", 0, "v4_test_iota", 1, 0, ""},
                             {"scale", 0, "v4_test_scale", 2, 0, ""}});
}

/// The buffers of one launch of each group-test kernel at T = 9, and what
/// those launches leave in them.
struct GroupBuffers {
  static constexpr int64_t kTokens = 9, kGrid = 3 * 2 * 3, kWords = kGrid + 3;
  CPUDevice &dev;
  DeviceBuffer out, ids, in, scaled;
  std::vector<LaunchArg> blocksArgs, iotaArgs, scaleArgs;

  explicit GroupBuffers(CPUDevice &dev) : dev(dev) {
    out = take(dev.allocate(kWords * sizeof(int64_t)));
    ids = take(dev.allocate(2 * 16 * sizeof(int64_t)));
    in = take(dev.allocate(3 * sizeof(float)));
    scaled = take(dev.allocate(2 * 3 * sizeof(float)));
    float x[3] = {1.0f, -2.0f, 0.5f};
    EXPECT_TRUE(dev.upload(in, 0, x, sizeof x).ok());
    blocksArgs = {LaunchArg{out, {kWords}}};
    iotaArgs = {LaunchArg{ids, {2, kTokens}}};
    scaleArgs = {LaunchArg{in, {3}}, LaunchArg{scaled, {2, 3}}};
  }
  ~GroupBuffers() {
    for (DeviceBuffer b : {out, ids, in, scaled})
      dev.release(b);
  }
  static DeviceBuffer take(v4::Expected<DeviceBuffer> b) {
    EXPECT_TRUE(b) << b.status().message();
    return b ? *b : DeviceBuffer{};
  }
  /// Every block of `blocks` ran `times` times (with the grid in its launch
  /// block), and iota and scale wrote their results.
  void expectRan(int64_t times, const std::string &what) {
    std::vector<int64_t> got(kWords);
    ASSERT_TRUE(
        dev.download(got.data(), out, 0, kWords * sizeof(int64_t)).ok());
    for (int64_t i = 0; i < kGrid; ++i)
      EXPECT_EQ(got[i], times) << "block " << i << ", " << what;
    EXPECT_EQ(got[kGrid], 3);
    EXPECT_EQ(got[kGrid + 1], 6);
    std::vector<int64_t> iota(2 * kTokens);
    ASSERT_TRUE(dev.download(iota.data(), ids, 0, 2 * kTokens * 8).ok());
    for (int64_t t = 0; t < kTokens; ++t) {
      EXPECT_EQ(iota[t], t) << what;
      EXPECT_EQ(iota[kTokens + t], 100 + t) << what;
    }
    float y[6];
    ASSERT_TRUE(dev.download(y, scaled, 0, sizeof y).ok());
    EXPECT_EQ(std::vector<float>(y, y + 6),
              (std::vector<float>{1.0f, -2.0f, 0.5f, 2.0f, -4.0f, 1.0f}))
        << what;
  }
};

// A concurrent group (artifact Step.concurrent): the blocks of every launch
// on the pool at once give each launch's result as if it ran alone, with 1
// thread and 4, the gridded kernel beside two one-block ones.
TEST(CPUDevice, RunsAConcurrentGroupsLaunchesTogether) {
  Artifact a = groupKernelArtifact();
  for (unsigned threads : {1u, 4u}) {
    CPUDevice dev(threads);
    ASSERT_TRUE(dev.loadKernels(a).ok());
    GroupBuffers g(dev);
    ASSERT_TRUE(
        dev.launchConcurrent(
               {{0, &g.blocksArgs}, {1, &g.iotaArgs}, {2, &g.scaleArgs}},
               GroupBuffers::kTokens)
            .ok());
    g.expectRan(1, std::to_string(threads) + " threads");
    // A kernel index out of range fails the whole group before any runs.
    EXPECT_EQ(
        dev.launchConcurrent({{0, &g.blocksArgs}, {7, &g.iotaArgs}}, 9).rule(),
        "RT-7");
  }
}

// Recording (the session's decode step): launches on a recording queue are
// prepared, not run, and each replay runs them all as launched (the
// concurrent group together) after the caller's arguments are gone, with 1
// thread and 4; another queue of the device launches at once meanwhile.
TEST(CPUDevice, RecordsLaunchesOnAQueueAndReplaysThem) {
  Artifact a = groupKernelArtifact();
  for (unsigned threads : {1u, 4u}) {
    CPUDevice dev(threads);
    ASSERT_TRUE(dev.loadKernels(a).ok());
    ASSERT_TRUE(dev.canRecord());
    auto queue = dev.createQueue(), other = dev.createQueue();
    ASSERT_TRUE(queue && other);
    GroupBuffers g(dev);
    ASSERT_TRUE(dev.beginRecording(queue->get()).ok());
    EXPECT_EQ(dev.beginRecording(queue->get()).rule(), "RT-7");
    {
      // Copies: the recording must not keep the caller's arguments.
      std::vector<LaunchArg> a0 = g.blocksArgs, a1 = g.iotaArgs,
                             a2 = g.scaleArgs;
      ASSERT_TRUE(dev.launch(0, a0, 9, queue->get()).ok());
      ASSERT_TRUE(
          dev.launchConcurrent({{0, &a0}, {1, &a1}, {2, &a2}}, 9, queue->get())
              .ok());
      // A bad launch fails when recorded.
      EXPECT_EQ(dev.launch(7, a0, 9, queue->get()).rule(), "RT-7");
    }
    ASSERT_TRUE(dev.launch(1, g.iotaArgs, 9, other->get()).ok());
    auto recording = dev.endRecording(queue->get());
    ASSERT_TRUE(recording) << recording.status().message();
    EXPECT_EQ(dev.endRecording(queue->get()).status().rule(), "RT-7");
    std::vector<int64_t> got(GroupBuffers::kWords);
    ASSERT_TRUE(dev.download(got.data(), g.out, 0, got.size() * 8).ok());
    EXPECT_EQ(got, std::vector<int64_t>(got.size(), 0)) << "recorded, not run";
    std::vector<int64_t> iota(18);
    ASSERT_TRUE(dev.download(iota.data(), g.ids, 0, 18 * 8).ok());
    EXPECT_EQ(iota[8], 8) << "the other queue ran at once";
    float y[6];
    ASSERT_TRUE(dev.download(y, g.scaled, 0, sizeof y).ok());
    EXPECT_EQ(y[3], 0.0f);
    std::vector<int64_t> zeros(18, 0);
    ASSERT_TRUE(dev.upload(g.ids, 0, zeros.data(), 18 * 8).ok());
    for (int replay = 1; replay <= 2; ++replay) {
      ASSERT_TRUE(dev.replay(**recording, queue->get()).ok());
      g.expectRan(2 * replay, "replay " + std::to_string(replay) + ", " +
                                  std::to_string(threads) + " threads");
    }
    // A recording replays on its own device only.
    CPUDevice second(threads);
    ASSERT_TRUE(second.loadKernels(a).ok());
    EXPECT_EQ(second.replay(**recording).rule(), "RT-7");
  }
}

TEST(ThreadPool, RunsEachIndexOnceAcrossManyJobs) {
  for (unsigned threads : {1u, 2u, 5u}) {
    v4::rt::ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    std::vector<std::atomic<int>> hits(997);
    for (auto &h : hits)
      h = 0;
    for (int job = 0; job < 200; ++job)
      pool.run(
          job % 2 ? hits.size() : 1 + job % 7,
          [](void *c, uint64_t i) {
            (*static_cast<std::vector<std::atomic<int>> *>(c))[i]++;
          },
          &hits);
    // Even jobs cover [0, 1 + job % 7), odd jobs everything.
    for (size_t i = 0; i < hits.size(); ++i) {
      int want = 100;
      for (int job = 0; job < 200; job += 2)
        want += i < size_t(1 + job % 7);
      EXPECT_EQ(hits[i].load(), want) << "index " << i;
    }
    pool.run(
        0, [](void *, uint64_t) { std::abort(); }, nullptr);
  }
}

// Back-to-back jobs of two or three tiny blocks: a worker often arrives
// after the caller took every index of a job, and must take none of the
// next job's for this one's task (run under TSan in CI).
TEST(ThreadPool, TinyJobsBackToBackRunEachIndexOnce) {
  v4::rt::ThreadPool pool(3);
  struct Job {
    std::atomic<uint64_t> sum{0};
    uint64_t tag = 0;
  } job;
  uint64_t want = 0;
  for (uint64_t j = 0; j < 20000; ++j) {
    job.tag = j << 8;
    uint64_t n = 2 + j % 2;
    pool.run(
        n,
        [](void *c, uint64_t i) {
          auto *job = static_cast<Job *>(c);
          job->sum.fetch_add(job->tag + i + 1, std::memory_order_relaxed);
        },
        &job);
    for (uint64_t i = 0; i < n; ++i)
      want += (j << 8) + i + 1;
    ASSERT_EQ(job.sum.load(), want) << "job " << j;
  }
}

// Both blocks of a job wait until both have started, so the job finishes
// only if the worker takes one: whether it was spinning (the next job at
// once) or asleep (after an idle pause well past its spin). A worker that
// missed the hand-over leaves the caller waiting: each wait gives up after
// 10 s and the test fails instead of hanging.
/// A block's half of a two-block rendezvous: counts itself in `arrived`,
/// then waits up to 10 s for the other; false if it never came.
bool meetTheOtherBlock(std::atomic<int> &arrived) {
  arrived.fetch_add(1);
  auto start = std::chrono::steady_clock::now();
  while (arrived.load() < 2)
    if (std::chrono::steady_clock::now() - start > std::chrono::seconds(10))
      return false;
  return true;
}

TEST(ThreadPool, AWaitingOrSleepingWorkerTakesTheNextJob) {
  v4::rt::ThreadPool pool(2);
  struct Rendezvous {
    std::atomic<int> arrived{0};
    std::atomic<bool> timedOut{false};
  };
  auto meet = [](void *c, uint64_t) {
    auto *r = static_cast<Rendezvous *>(c);
    if (!meetTheOtherBlock(r->arrived))
      r->timedOut = true;
  };
  for (int pauseMs : {0, 0, 50, 50}) {
    std::this_thread::sleep_for(std::chrono::milliseconds(pauseMs));
    Rendezvous r;
    pool.run(2, meet, &r);
    EXPECT_FALSE(r.timedOut.load()) << "after an idle " << pauseMs << " ms";
  }
}

// A host built with -ffast-math runs with flush-to-zero and
// denormals-are-zero (and a program may change the rounding): the tasks, on
// the caller and on a worker created in that mode, still get the IEEE
// default, and the caller gets its own mode back.
TEST(ThreadPool, TasksRunInTheDefaultFloatModeWhateverTheHostSet) {
#if defined(__x86_64__) || defined(__i386__)
  const unsigned original = _mm_getcsr();
  // DAZ, FTZ and round toward +infinity.
  const unsigned host = (original & ~0x6000u) | 0x8040u | 0x4000u;
  _mm_setcsr(host);
  {
    v4::rt::ThreadPool pool(2); // its worker starts in the host's mode
    struct Probe {
      std::atomic<int> arrived{0}, defaults{0};
    } probe;
    pool.run(
        2,
        [](void *c, uint64_t) {
          auto *p = static_cast<Probe *>(c);
          volatile float tiny = 0x1p-140f, one = 1.0f, half = 0x1p-24f;
          // A subnormal survives a multiplication by one (not DAZ/FTZ), and
          // 1 + 2^-24 rounds to even, down to 1 (not toward +infinity).
          bool ok = tiny * one == 0x1p-140f && one + half == 1.0f;
          p->defaults += ok;
          // Both threads take a block (see the rendezvous test above).
          meetTheOtherBlock(p->arrived);
        },
        &probe);
    EXPECT_EQ(probe.arrived.load(), 2);
    EXPECT_EQ(probe.defaults.load(), 2)
        << "a task ran in the host's flush-to-zero or rounding mode";
    // One block runs on the caller alone, in the default mode too.
    int alone = 0;
    pool.run(
        1,
        [](void *c, uint64_t) {
          volatile float tiny = 0x1p-140f, one = 1.0f;
          *static_cast<int *>(c) = tiny * one == 0x1p-140f;
        },
        &alone);
    EXPECT_EQ(alone, 1);
    EXPECT_EQ(_mm_getcsr() & ~0x3Fu, host & ~0x3Fu)
        << "run() did not give the caller its mode back";
  }
  _mm_setcsr(original);
#else
  GTEST_SKIP() << "the floating-point mode test is for x86";
#endif
}

// Issue 16 (found by the runtime fuzzer on a loaded machine): an idle
// worker spins on sched_yield before it sleeps, and that spin did not look
// at `stopping`, so on an oversubscribed machine, where each yield hands the
// core away for a time slice, destroying a pool (every model unload) took
// seconds: 12 s under a fuzzer's timeout. Busy threads hold every core here.
TEST(ThreadPool, DestroyingAPoolIsPromptWhenTheMachineIsBusy) {
  std::atomic<bool> hog{true};
  std::vector<std::thread> hogs;
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < 2 * cores; ++i)
    hogs.emplace_back([&] {
      while (hog.load(std::memory_order_relaxed)) {
      }
    });
  double worst = 0;
  for (int round = 0; round < 3; ++round) {
    auto start = std::chrono::steady_clock::now();
    {
      v4::rt::ThreadPool pool(4);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    worst = std::max(worst, std::chrono::duration<double>(
                                std::chrono::steady_clock::now() - start)
                                .count());
  }
  hog = false;
  for (std::thread &t : hogs)
    t.join();
  EXPECT_LT(worst, 1.0) << "a pool took " << worst << " s to stop";
}

TEST(ThreadPool, ThreadCountFromRequestEnvironmentOrCores) {
  EXPECT_EQ(v4::rt::resolveThreadCount(3), 3u);
  const char *old = std::getenv("V4RT_NUM_THREADS");
  std::string saved = old ? old : "";
  setenv("V4RT_NUM_THREADS", "2", 1);
  EXPECT_EQ(v4::rt::resolveThreadCount(0), 2u);
  EXPECT_EQ(v4::rt::resolveThreadCount(7), 7u);
  setenv("V4RT_NUM_THREADS", "lots", 1);
  EXPECT_GE(v4::rt::resolveThreadCount(0), 1u);
  unsetenv("V4RT_NUM_THREADS");
  unsigned cores = std::thread::hardware_concurrency();
  EXPECT_EQ(v4::rt::resolveThreadCount(0), cores ? cores : 1u);
  if (old)
    setenv("V4RT_NUM_THREADS", saved.c_str(), 1);
}

// A code object records the x86-64 level it was compiled for; the device
// loads it only on a CPU of that level, and otherwise says what is missing
// and how to recompile.
TEST(CPUDevice, CodeObjectsNeedTheirX86Level) {
  EXPECT_TRUE(v4::hostSupportsISA("x86-64"));
  EXPECT_FALSE(v4::hostSupportsISA("x86-64-v9"));
  // Each level includes the ones before it.
  for (size_t i = 1; i < std::size(v4::kHostISALevels); ++i)
    if (v4::hostSupportsISA(v4::kHostISALevels[i])) {
      EXPECT_TRUE(v4::hostSupportsISA(v4::kHostISALevels[i - 1]));
    }
  for (std::string_view level : v4::kHostISALevels) {
    Artifact a = hostKernelArtifact({{"iota", 0, "v4_test_iota", 1, 0, ""}},
                                    std::string(level));
    EXPECT_EQ(a.codeObjects()[0].isa, level);
    CPUDevice dev;
    v4::Status s = dev.loadKernels(a);
    if (v4::hostSupportsISA(level)) {
      EXPECT_TRUE(s.ok()) << level << ": " << s.message();
    } else {
      EXPECT_EQ(s.code(), StatusCode::Incompatible) << level;
      EXPECT_EQ(s.rule(), "RT-4");
    }
  }
  v4::Status refused = v4::rt::requireHostISA(
      "x86-64-v4", "m.v4a: code object 0", /*supported=*/false);
  EXPECT_EQ(refused.code(), StatusCode::Incompatible);
  EXPECT_EQ(refused.rule(), "RT-4");
  EXPECT_NE(refused.message().find(
                "m.v4a: code object 0 needs an x86-64-v4 CPU (AVX-512), which "
                "this machine lacks: recompile the model with v4c "
                "--cpu=x86-64"),
            std::string::npos)
      << refused.message();
  EXPECT_TRUE(v4::rt::requireHostISA("x86-64-v3", "m.v4a", true).ok());
  // x86-64-v4-bf16: x86-64-v4 with AVX512_BF16 and AVX512_VBMI, compiled
  // as LLVM's x86-64-v4 with +avx512bf16,+avx512vbmi, and named so when the
  // machine lacks it.
  EXPECT_TRUE(v4::hostISAIncludes("x86-64-v4-bf16", "x86-64-v4"));
  EXPECT_TRUE(v4::hostISAIncludes("x86-64-v4", "x86-64-v4"));
  EXPECT_FALSE(v4::hostISAIncludes("x86-64-v4", "x86-64-v4-bf16"));
  EXPECT_FALSE(v4::hostISAIncludes("x86-64-v9", "x86-64"));
  EXPECT_EQ(v4::hostISALLVMTarget("x86-64-v4-bf16").first, "x86-64-v4");
  EXPECT_EQ(v4::hostISALLVMTarget("x86-64-v4-bf16").second,
            "+avx512bf16,+avx512vbmi");
  EXPECT_EQ(v4::hostISALLVMTarget("x86-64-v3").first, "x86-64-v3");
  EXPECT_EQ(v4::hostISALLVMTarget("x86-64-v3").second, "");
  v4::Status noBF16 = v4::rt::requireHostISA(
      "x86-64-v4-bf16", "m.v4a: code object 0", /*supported=*/false);
  EXPECT_NE(noBF16.message().find("needs an x86-64-v4-bf16 CPU (AVX-512 with "
                                  "AVX512_BF16 and AVX512_VBMI)"),
            std::string::npos)
      << noBF16.message();
}

TEST(CPUDevice, MissingSymbolNamesTheKernel) {
  Artifact a = hostKernelArtifact({{"iota", 0, "v4_test_iota", 1, 0, ""},
                                   {"gone", 0, "v4_test_gone", 1, 0, ""}});
  CPUDevice dev;
  v4::Status s = dev.loadKernels(a);
  EXPECT_EQ(s.code(), StatusCode::Incompatible);
  EXPECT_EQ(s.rule(), "RT-4");
  EXPECT_NE(s.message().find("kernel 'gone' has no symbol 'v4_test_gone'"),
            std::string::npos)
      << s.message();
}

TEST(CPUDevice, CorruptCodeObjectIsUnavailable) {
  // The tiny artifact's code object starts with "\x7fELF" but is noise.
  std::vector<uint8_t> bytes = v4::artifact::testing::tinyArtifact();
  auto a = Artifact::load("tiny.v4a", bytes.data(), bytes.size());
  ASSERT_TRUE(a) << a.status().message();
  CPUDevice dev;
  v4::Status s = dev.loadKernels(*a);
  EXPECT_EQ(s.code(), StatusCode::Unavailable);
  EXPECT_EQ(s.rule(), "RT-4");
  EXPECT_NE(s.message().find("tiny.v4a: code object 0"), std::string::npos)
      << s.message();
}

TEST(CPUDevice, EachLoadGetsItsOwnCodeObject) {
  // A memory file reuses the descriptor number of an earlier one; the loader
  // must not hand back the library loaded from that number before, whether
  // it is still loaded or was closed without being unloaded.
  std::vector<uint8_t> bytes = v4::artifact::testing::tinyArtifact();
  auto corrupt = Artifact::load("tiny.v4a", bytes.data(), bytes.size());
  ASSERT_TRUE(corrupt) << corrupt.status().message();
  Artifact good = hostKernelArtifact({{"iota", 0, "v4_test_iota", 1, 0, ""}});
  {
    CPUDevice first;
    ASSERT_TRUE(first.loadKernels(good).ok());
    CPUDevice second;
    EXPECT_EQ(second.loadKernels(*corrupt).code(), StatusCode::Unavailable);
    CPUDevice third;
    EXPECT_TRUE(third.loadKernels(good).ok());
  }
  CPUDevice after;
  EXPECT_EQ(after.loadKernels(*corrupt).code(), StatusCode::Unavailable);
}

/// Mappings of code objects loaded from memory files in this process.
size_t mappedCodeObjectPages() {
  std::ifstream maps("/proc/self/maps");
  size_t n = 0;
  for (std::string line; std::getline(maps, line);)
    n += line.find("/memfd:v4rt-kernels") != std::string::npos;
  return n;
}

TEST(CPUDevice, ADeviceUnloadsItsCodeObjectWhenDestroyed) {
  // A server that loads and releases models must not keep their code: the
  // device dlcloses its libraries, and a code object without the NODELETE
  // flag (v4c's never has it; the test kernels must not either, though
  // LLVM's CMake adds -z nodelete to every shared library) is unmapped.
  // Objects left loaded piled up in fuzz-runtime (20,000 mappings after
  // 15,000 inputs) and made each load slower than the one before.
  Artifact good = hostKernelArtifact({{"iota", 0, "v4_test_iota", 1, 0, ""}});
  size_t before = mappedCodeObjectPages();
  for (int i = 0; i < 3; ++i) {
    CPUDevice dev;
    ASSERT_TRUE(dev.loadKernels(good).ok());
    EXPECT_GT(mappedCodeObjectPages(), before);
  }
  EXPECT_EQ(mappedCodeObjectPages(), before);
}

class ModelLoadTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir = fs::temp_directory_path() /
          ("v4rt-device-test-" + std::to_string(::getpid()));
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  /// Loads `w`'s artifact through the C API; returns the status.
  std::pair<v4rt_status_code_t, std::string> load(const Writer &w) {
    std::string path = (dir / "m.v4a").string();
    EXPECT_TRUE(w.writeFile(path).ok());
    v4rt_model_options_t options;
    v4rt_model_options_initialize(&options);
    options.checkpoint_path = "/nonexistent/ckpt";
    v4rt_model_t *model = nullptr;
    v4rt_status_t st = v4rt_model_load(path.c_str(), &options, &model);
    EXPECT_EQ(model, nullptr);
    std::pair<v4rt_status_code_t, std::string> r{v4rt_status_code(st),
                                                 v4rt_status_message(st)};
    v4rt_status_free(st);
    return r;
  }
  fs::path dir;
};

TEST_F(ModelLoadTest, InputsAreFoundByRole) {
  // The tiny artifact has "ids" but no "next_ids" input.
  auto [code, message] = load(v4::artifact::testing::tinyWriter());
  EXPECT_EQ(code, V4RT_INCOMPATIBLE);
  EXPECT_NE(message.find("no input with role 'next_ids' [RT-2]"),
            std::string::npos)
      << message;
}

TEST_F(ModelLoadTest, GpuArtifactNeedsADevice) {
  if (haveCUDADriver())
    GTEST_SKIP() << "a CUDA driver is installed";
  Writer tiny = v4::artifact::testing::tinyWriter();
  Description d = tiny.description();
  d.target = Target::SM90A;
  d.codeObjects.clear();
  v4::artifact::testing::addRuntimeInputs(d);
  Writer w(d);
  w.addCodeObject(Target::SM90A, CodeFormat::PTX,
                  std::vector<uint8_t>(64, 'x'));
  auto [code, message] = load(w);
  EXPECT_EQ(code, V4RT_INCOMPATIBLE);
  EXPECT_NE(message.find("artifact targets sm_90a; no CUDA driver"),
            std::string::npos)
      << message;
}

} // namespace
