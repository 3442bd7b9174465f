//===- ThreadPool.cpp - the CPU device's worker threads -------------------===//
//
// The hand-over of a job, without a lock on the fast path:
//
//   run():   generation = odd; wait until active == 0; write the job, reset
//            next and done; generation = even (the new job's number).
//   worker:  see an even generation g it has not run; active += 1; read the
//            generation again: still g, so run() had not begun the next job
//            when it counted itself (the accesses are sequentially
//            consistent), and the job it reads now is g's; else active -= 1
//            and wait again. It takes indices of g until none is left, then
//            active -= 1.
//
// A worker that arrives after g's last index was taken takes none (next is
// already >= n), and run() does not reset `next` for the next job while
// such a worker is active. run() returns once `done` reaches n.
//
// Waiting: spin on the atomics with the CPU's pause hint for kSpinTime, then
// yield the core kYields times (on an oversubscribed machine the thread
// being waited for may need this core), then sleep on a condition variable
// (Dekker-style: the sleeper announces itself, then re-reads what it waits
// for; the waker publishes, then reads the announcement, and notifies under
// the mutex). On the development VM, sleeping at once cost about 10 us per
// launch: a futex wake-up and a scheduling of the woken thread.
//
//===----------------------------------------------------------------------===//
#include "runtime/src/devices/ThreadPool.h"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace v4::rt {
namespace {

/// Puts the calling thread in the IEEE default floating-point mode (round
/// to nearest even, subnormals kept and produced, exceptions masked) for
/// its lifetime, then gives back the mode and the exception flags it found.
/// A host built with -ffast-math sets flush-to-zero and denormals-are-zero
/// on its threads; kernels run in its mode would read FP8 weights' tiny
/// products and subnormal e8m0 scales as zero and round differently from
/// the reference. Only the control bits are compared, so in the usual case
/// this costs one read of the control register.
class DefaultFloatMode {
public:
#if defined(__x86_64__) || defined(__i386__)
  // MXCSR: every exception masked, round to nearest, no DAZ (bit 6) or FTZ
  // (bit 15); bits 0-5 are the sticky exception flags.
  static constexpr unsigned kDefault = 0x1F80, kControl = ~0x3Fu;
  DefaultFloatMode() : saved(_mm_getcsr()) {
    if ((saved & kControl) != kDefault)
      _mm_setcsr(kDefault);
    else
      restore = false;
  }
  ~DefaultFloatMode() {
    if (restore)
      _mm_setcsr(saved);
  }

private:
  unsigned saved;
  bool restore = true;
#elif defined(__aarch64__)
  // FPCR: 0 is round to nearest, no flush-to-zero (FZ, FZ16), no default
  // NaN, every trap off.
  DefaultFloatMode() {
    asm volatile("mrs %0, fpcr" : "=r"(saved));
    if (saved != 0)
      asm volatile("msr fpcr, %0" : : "r"(uint64_t(0)));
  }
  ~DefaultFloatMode() {
    if (saved != 0)
      asm volatile("msr fpcr, %0" : : "r"(saved));
  }

private:
  uint64_t saved;
#endif
public:
  DefaultFloatMode(const DefaultFloatMode &) = delete;
  DefaultFloatMode &operator=(const DefaultFloatMode &) = delete;
};

constexpr std::chrono::microseconds kSpinTime{50};
constexpr int kYields = 64;

inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/// Spins, then yields, until ready() holds; false if it still does not (the
/// caller then sleeps).
template <typename Ready> bool spinUntil(Ready &&ready) {
  auto start = std::chrono::steady_clock::now();
  for (unsigned i = 1;; ++i) {
    if (ready())
      return true;
    cpuRelax();
    if (i % 16 == 0 && std::chrono::steady_clock::now() - start > kSpinTime)
      break;
  }
  for (int i = 0; i < kYields; ++i) {
    if (ready())
      return true;
    std::this_thread::yield();
  }
  return ready();
}

} // namespace

ThreadPool::ThreadPool(unsigned threads) {
  for (unsigned i = 1; i < threads; ++i)
    workers.emplace_back([this] { work(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex);
    stopping.store(true);
  }
  wake.notify_all();
  for (std::thread &t : workers)
    t.join();
}

void ThreadPool::drain(Task task, void *context, uint64_t n) {
  for (;;) {
    uint64_t i = next.fetch_add(1, std::memory_order_relaxed);
    if (i >= n)
      return;
    task(context, i);
    // The last block wakes a sleeping caller (seq_cst: it reads
    // callerAsleep after its increment; run() sets it before it re-reads
    // done).
    if (done.fetch_add(1) + 1 == n && callerAsleep.load()) {
      { std::lock_guard<std::mutex> lock(mutex); }
      finished.notify_all();
    }
  }
}

uint64_t ThreadPool::awaitJob(uint64_t seen) {
  uint64_t g = seen;
  auto ready = [&] {
    if (stopping.load())
      return true;
    g = generation.load();
    return g != seen && g % 2 == 0;
  };
  if (!spinUntil(ready)) {
    std::unique_lock<std::mutex> lock(mutex);
    sleepers.fetch_add(1);
    wake.wait(lock, ready);
    sleepers.fetch_sub(1);
  }
  return stopping.load() ? 0 : g;
}

void ThreadPool::work() {
  // A worker inherits its creator's mode (the host's, at model load).
  DefaultFloatMode mode;
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = awaitJob(seen);
    if (g == 0)
      return;
    active.fetch_add(1);
    if (generation.load() != g) {
      // run() has begun another job since: this one is over.
      active.fetch_sub(1);
      continue;
    }
    seen = g;
    drain(jobTask, jobContext, jobSize);
    active.fetch_sub(1);
  }
}

void ThreadPool::run(uint64_t n, Task task, void *context) {
  if (n == 0)
    return;
  DefaultFloatMode mode;
  if (workers.empty() || n == 1) {
    for (uint64_t i = 0; i < n; ++i)
      task(context, i);
    return;
  }
  uint64_t g = generation.load(std::memory_order_relaxed);
  generation.store(g + 1);
  // A worker still leaving the previous job (it found no index left) must
  // be out before `next` is reset. This is a few instructions of its, unless
  // it lost its core (spinUntil then yields to it); no sleep.
  while (!spinUntil([&] { return active.load() == 0; })) {
  }
  jobTask = task;
  jobContext = context;
  jobSize = n;
  next.store(0, std::memory_order_relaxed);
  done.store(0, std::memory_order_relaxed);
  generation.store(g + 2);
  if (sleepers.load() != 0) {
    { std::lock_guard<std::mutex> lock(mutex); }
    wake.notify_all();
  }
  drain(task, context, n);
  auto allDone = [&] { return done.load() == n; };
  if (!spinUntil(allDone)) {
    std::unique_lock<std::mutex> lock(mutex);
    callerAsleep.store(true);
    finished.wait(lock, allDone);
    callerAsleep.store(false);
  }
}

unsigned resolveThreadCount(unsigned requested) {
  if (requested)
    return requested;
  if (const char *env = std::getenv("V4RT_NUM_THREADS")) {
    char *end = nullptr;
    unsigned long v = std::strtoul(env, &end, 10);
    if (end != env && *end == '\0' && v > 0 && v <= kMaxThreads)
      return static_cast<unsigned>(v);
  }
  unsigned cores = std::thread::hardware_concurrency();
  return cores ? cores : 1;
}

} // namespace v4::rt
