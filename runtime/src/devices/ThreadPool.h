//===- ThreadPool.h - the CPU device's worker threads -----------*- C++ -*-===//
//
// A fixed set of std::threads, created once (per CPU device, i.e. per
// model) and reused by every launch: run(n, fn) calls fn(i) exactly once for
// each i in [0, n), on the workers and the calling thread together, and
// returns when every call has returned. The blocks of one kernel dispatch
// are independent (runtime/base/KernelABI.h), so the order does not matter.
//
// A step launches its kernels back to back (a decode token: about 130), so
// the hand-over is on the critical path: waiting threads first spin on the
// shared atomics (with the CPU's pause hint), then yield their core, and
// only then sleep on a condition variable. Sleeping at once costs a futex
// wake-up per launch, about 10 us in a VM; see ThreadPool.cpp.
//
// Every task runs in the IEEE default floating-point mode (round to
// nearest even, subnormals kept, exceptions masked) whatever mode the
// calling thread is in, e.g. flush-to-zero from a host built with
// -ffast-math; run() gives the caller back its mode and exception flags.
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_SRC_DEVICES_THREADPOOL_H
#define V4_RUNTIME_SRC_DEVICES_THREADPOOL_H

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace v4::rt {

class ThreadPool {
public:
  using Task = void (*)(void *context, uint64_t index);

  /// A pool of `threads` threads in all: the caller of run() and
  /// threads - 1 workers (none for 0 or 1).
  explicit ThreadPool(unsigned threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  /// Threads that run a job, the caller included.
  unsigned size() const { return static_cast<unsigned>(workers.size()) + 1; }

  /// Calls task(context, i) once for every i in [0, n) and returns when all
  /// have returned. One job at a time: callers serialise (the CPU device
  /// holds its launch lock).
  void run(uint64_t n, Task task, void *context);

private:
  void work();
  /// Takes indices of the current job until none is left.
  void drain(Task task, void *context, uint64_t n);
  /// A worker's wait for a published job newer than `seen`: its generation,
  /// or 0 when the pool is stopping.
  uint64_t awaitJob(uint64_t seen);

  std::vector<std::thread> workers;
  std::mutex mutex;
  std::condition_variable wake, finished;
  // The job. run() writes it only while `generation` is odd and no worker is
  // `active`; a worker reads it only after it counted itself active and saw
  // the same even generation again (ThreadPool.cpp).
  Task jobTask = nullptr;
  void *jobContext = nullptr;
  uint64_t jobSize = 0;
  /// Even: the current job's number (0 before the first); odd: run() is
  /// writing the next job.
  std::atomic<uint64_t> generation{0};
  std::atomic<uint64_t> next{0};
  std::atomic<uint64_t> done{0};
  /// Workers between taking part in a job and leaving it.
  std::atomic<unsigned> active{0};
  /// Workers asleep on `wake`, and whether run() sleeps on `finished`.
  std::atomic<unsigned> sleepers{0};
  std::atomic<bool> callerAsleep{false};
  std::atomic<bool> stopping{false};
};

/// The most threads a CPU device takes (requested or from the environment).
constexpr unsigned kMaxThreads = 4096;

/// The thread count of a CPU device: `requested` when not 0, else the
/// environment variable V4RT_NUM_THREADS when it is an integer in
/// [1, kMaxThreads], else every core (std::thread::hardware_concurrency, at
/// least 1).
unsigned resolveThreadCount(unsigned requested);

} // namespace v4::rt

#endif // V4_RUNTIME_SRC_DEVICES_THREADPOOL_H
