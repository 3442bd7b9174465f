//===- NcclAbi.h - the NCCL C ABI the NCCL engine calls ---------*- C++ -*-===//
//
// The few NCCL types and codes the engine (NcclCollectives.cpp) uses, with
// NCCL's C ABI, so that libv4rt builds without nccl.h and loads the library
// with dlopen. The test's fake library (test/runtime/FakeNccl.cpp) defines
// its entry points with these same types: a call through a resolved pointer
// then has the callee's exact function type (UBSan's -fsanitize=function
// checks it).
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_SRC_COMM_NCCLABI_H
#define V4_RUNTIME_SRC_COMM_NCCLABI_H

#include <climits>
#include <cstddef>

namespace v4::rt::nccl {

using Result = int;
using Comm = void *;
constexpr Result kSuccess = 0, kSystemError = 2, kInvalidArgument = 4,
                 kInvalidUsage = 5, kRemoteError = 6, kInProgress = 7;
constexpr int kInt8 = 0, kInt64 = 4, kFloat32 = 7, kBfloat16 = 9;
constexpr int kSum = 0;
constexpr int kConfigUndefined = INT_MIN;
/// NCCL 2.14: the first with non-blocking communicators
/// (ncclCommInitRankConfig) and the config layout below.
constexpr int kMinimumVersion = 21400;

struct UniqueId {
  char internal[128];
};

/// ncclConfig_t as of NCCL 2.14 (NCCL_CONFIG_INITIALIZER's first fields;
/// NCCL reads a config by its size and version, so later fields keep their
/// defaults).
struct Config {
  size_t size = sizeof(Config);
  unsigned magic = 0xcafebeef;
  unsigned version = kMinimumVersion;
  int blocking = kConfigUndefined;
  int cgaClusterSize = kConfigUndefined;
  int minCTAs = kConfigUndefined;
  int maxCTAs = kConfigUndefined;
  const char *netName = nullptr;
};

} // namespace v4::rt::nccl

#endif // V4_RUNTIME_SRC_COMM_NCCLABI_H
