//===- RunOnThreads.h - a body run on several threads at once ----*- C++
//-*-===//
//
// For tests of thread safety (reference counts, shared tokenizers).
//
//===----------------------------------------------------------------------===//
#ifndef V4_TEST_LIB_RUNONTHREADS_H
#define V4_TEST_LIB_RUNONTHREADS_H

#include <thread>
#include <vector>

namespace v4::test {

/// Runs `body` `iterations` times on each of `threads` threads at once and
/// joins them.
template <typename Body>
void runOnThreads(int threads, int iterations, const Body &body) {
  std::vector<std::thread> running;
  for (int t = 0; t < threads; ++t)
    running.emplace_back([&] {
      for (int i = 0; i < iterations; ++i)
        body();
    });
  for (std::thread &t : running)
    t.join();
}

} // namespace v4::test

#endif // V4_TEST_LIB_RUNONTHREADS_H
