//===- ThreadPool.h - the CPU device's worker threads -----------*- C++ -*-===//
//
// A fixed set of std::threads, created once (per CPU device, i.e. per
// model) and reused by every launch: run(n, fn) calls fn(i) exactly once for
// each i in [0, n), on the workers and the calling thread together, and
// returns when every call has returned. The blocks of one kernel dispatch
// are independent (runtime/base/KernelABI.h), so the order does not matter.
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

  std::vector<std::thread> workers;
  std::mutex mutex;
  std::condition_variable wake, finished;
  // The job, written under `mutex` before `generation` is raised.
  Task jobTask = nullptr;
  void *jobContext = nullptr;
  uint64_t jobSize = 0;
  std::atomic<uint64_t> generation{0};
  std::atomic<uint64_t> next{0};
  std::atomic<uint64_t> done{0};
  /// Workers inside the current job (run() waits until none is).
  unsigned active = 0;
  /// Set under `mutex` (for the wait) and read by the spin without it.
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
