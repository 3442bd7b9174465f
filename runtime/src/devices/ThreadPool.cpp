//===- ThreadPool.cpp - the CPU device's worker threads -------------------===//
#include "runtime/src/devices/ThreadPool.h"

#include <cstdlib>
#include <string>

namespace v4::rt {

ThreadPool::ThreadPool(unsigned threads) {
  for (unsigned i = 1; i < threads; ++i)
    workers.emplace_back([this] { work(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex);
    stopping.store(true, std::memory_order_release);
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
    if (done.fetch_add(1, std::memory_order_acq_rel) + 1 == n) {
      // The last block: wake the caller (under the lock, so the wake-up
      // cannot fall between its check and its wait).
      std::lock_guard<std::mutex> lock(mutex);
      finished.notify_all();
    }
  }
}

void ThreadPool::work() {
  uint64_t seen = 0;
  for (;;) {
    // A short spin catches the next launch of a step without a sleep. It
    // watches `stopping` too: on a busy machine each yield can cost a time
    // slice, and a pool being destroyed must not wait out 2,000 of them.
    for (int spin = 0;
         spin < 2000 && generation.load(std::memory_order_acquire) == seen &&
         !stopping.load(std::memory_order_acquire);
         ++spin)
      std::this_thread::yield();
    Task task;
    void *context;
    uint64_t n;
    {
      std::unique_lock<std::mutex> lock(mutex);
      wake.wait(lock, [&] {
        return stopping.load(std::memory_order_relaxed) ||
               generation.load(std::memory_order_relaxed) != seen;
      });
      if (stopping.load(std::memory_order_relaxed))
        return;
      seen = generation.load(std::memory_order_relaxed);
      task = jobTask;
      context = jobContext;
      n = jobSize;
      ++active;
    }
    drain(task, context, n);
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (--active == 0)
        finished.notify_all();
    }
  }
}

void ThreadPool::run(uint64_t n, Task task, void *context) {
  if (n == 0)
    return;
  if (workers.empty() || n == 1) {
    for (uint64_t i = 0; i < n; ++i)
      task(context, i);
    return;
  }
  {
    std::unique_lock<std::mutex> lock(mutex);
    // A worker that woke for the previous job after it was done is still
    // draining nothing from it; let it leave before `next` is reset.
    finished.wait(lock, [&] { return active == 0; });
    jobTask = task;
    jobContext = context;
    jobSize = n;
    next.store(0, std::memory_order_relaxed);
    done.store(0, std::memory_order_relaxed);
    generation.fetch_add(1, std::memory_order_release);
  }
  wake.notify_all();
  drain(task, context, n);
  std::unique_lock<std::mutex> lock(mutex);
  // Every block done, and no worker still inside the job (a late one could
  // otherwise take an index of the next job for this one's task).
  finished.wait(lock, [&] {
    return done.load(std::memory_order_acquire) == n && active == 0;
  });
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
