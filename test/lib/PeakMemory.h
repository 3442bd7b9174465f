//===- PeakMemory.h - this process's peak resident memory -------*- C++ -*-===//
//
// Test support for the "costs at most 4x its size" checks (issue 16): the
// peak resident memory of this process, and a reset of that peak (Linux).
//
//===----------------------------------------------------------------------===//
#ifndef V4_TEST_LIB_PEAKMEMORY_H
#define V4_TEST_LIB_PEAKMEMORY_H

#include <cstdint>
#include <fstream>
#include <string>

namespace v4::test {

/// Whether peak memory and time are measured against their bounds: only in
/// plain builds, since ASan's redzones and quarantine inflate both (the
/// verdicts are still checked there).
#ifdef V4_ASAN_BUILD
inline constexpr bool kMeasuresPeakMemory = false;
#else
inline constexpr bool kMeasuresPeakMemory = true;
#endif

/// VmHWM of /proc/self/status in KiB (0 when unreadable).
inline uint64_t peakKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0)
      return std::stoull(line.substr(6));
  return 0;
}

/// Resets the peak to the current resident size.
inline void resetPeak() { std::ofstream("/proc/self/clear_refs") << "5"; }

} // namespace v4::test

#endif // V4_TEST_LIB_PEAKMEMORY_H
