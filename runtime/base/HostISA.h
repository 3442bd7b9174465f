//===- HostISA.h - x86-64 level of the host kernels ----------*- C++ -*-===//
//
// The CPU target compiles its kernels for one x86-64 micro-architecture
// level (the psABI levels: x86-64 = SSE2, x86-64-v2 = + SSE4.2/POPCNT,
// x86-64-v3 = + AVX2/FMA/BMI2, x86-64-v4 = + AVX-512 F/BW/CD/DQ/VL; and
// x86-64-v4-bf16 = + AVX512_BF16 and AVX512_VBMI: the bf16 pair dot
// products and the byte permutes that decode FP8 codes into them, both in
// Zen 4 and later and Sapphire Rapids and later; Cooper Lake, without
// VBMI, runs x86-64-v4). The
// compiler takes it from `v4c --cpu` (default kDefaultHostISA: the tiled
// GEMM's vector<8xf32> lanes are one AVX2 register), records it in the
// artifact's code object (format 1.3), and the runtime refuses a code
// object whose level this CPU lacks instead of dying of SIGILL. Plain C++17.
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_BASE_HOSTISA_H
#define V4_RUNTIME_BASE_HOSTISA_H

#include <iterator>
#include <string>
#include <string_view>
#include <utility>

namespace v4 {

/// The levels, oldest first; each includes the ones before it.
inline constexpr std::string_view kHostISALevels[] = {
    "x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4", "x86-64-v4-bf16"};
inline constexpr std::string_view kDefaultHostISA = "x86-64-v3";

inline bool isKnownHostISA(std::string_view level) {
  for (std::string_view l : kHostISALevels)
    if (l == level)
      return true;
  return false;
}

/// The levels as a message lists them: "x86-64, x86-64-v2, ...".
inline std::string knownHostISAs() {
  std::string s;
  for (std::string_view l : kHostISALevels)
    s.append(s.empty() ? "" : ", ").append(l);
  return s;
}

/// Whether `level` includes `base` (both known levels; false otherwise).
inline bool hostISAIncludes(std::string_view level, std::string_view base) {
  size_t l = std::size(kHostISALevels), b = l;
  for (size_t i = 0; i < std::size(kHostISALevels); ++i) {
    if (kHostISALevels[i] == level)
      l = i;
    if (kHostISALevels[i] == base)
      b = i;
  }
  return l < std::size(kHostISALevels) && b <= l;
}

/// The LLVM CPU name and feature string a level compiles for.
inline std::pair<std::string_view, std::string_view>
hostISALLVMTarget(std::string_view level) {
  if (level == "x86-64-v4-bf16")
    return {"x86-64-v4", "+avx512bf16,+avx512vbmi"};
  return {level, ""};
}

/// What a level adds, for error messages.
inline const char *hostISAFeatures(std::string_view level) {
  if (level == "x86-64-v4-bf16")
    return "AVX-512 with AVX512_BF16 and AVX512_VBMI";
  if (level == "x86-64-v2")
    return "SSE4.2, POPCNT";
  if (level == "x86-64-v3")
    return "AVX2, FMA, BMI2";
  if (level == "x86-64-v4")
    return "AVX-512";
  return "SSE2";
}

/// Whether the CPU this runs on executes code of `level` (false for an
/// unknown level, and for every level off x86-64).
inline bool hostSupportsISA(std::string_view level) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (level == "x86-64")
    return true;
  if (level == "x86-64-v2")
    return __builtin_cpu_supports("x86-64-v2");
  if (level == "x86-64-v3")
    return __builtin_cpu_supports("x86-64-v3");
  if (level == "x86-64-v4")
    return __builtin_cpu_supports("x86-64-v4");
  if (level == "x86-64-v4-bf16")
    return __builtin_cpu_supports("x86-64-v4") &&
           __builtin_cpu_supports("avx512bf16") &&
           __builtin_cpu_supports("avx512vbmi");
#endif
  (void)level;
  return false;
}
/// The newest level the CPU this runs on executes (v4c --cpu=native;
/// "x86-64" off x86-64, where no level runs anyway).
inline std::string_view nativeHostISA() {
  for (size_t i = std::size(kHostISALevels); i-- > 1;)
    if (hostSupportsISA(kHostISALevels[i]))
      return kHostISALevels[i];
  return kHostISALevels[0];
}

} // namespace v4

#endif // V4_RUNTIME_BASE_HOSTISA_H
