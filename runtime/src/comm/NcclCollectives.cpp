//===- NcclCollectives.cpp - the NCCL engine, loaded with dlopen ----------===//
//
// The entry points are resolved with the C ABI of NcclAbi.h (nccl.h is not
// needed to build).
//
//===----------------------------------------------------------------------===//
#include "runtime/src/comm/NcclCollectives.h"
#include "runtime/src/comm/Collectives.h"
#include "runtime/src/comm/MpiPlugin.h"
#include "runtime/src/comm/NcclAbi.h"
#include "runtime/src/devices/SymbolTable.h"

#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <sched.h>
#include <thread>
#include <type_traits>
#include <vector>

namespace v4::rt {

namespace {

using Clock = std::chrono::steady_clock;

Status ncclError(std::string message) {
  return Status::error(StatusCode::Unavailable, kCollectivesRule,
                       std::move(message));
}

/// What to do when NCCL is not there.
constexpr const char *kNcclFix =
    "install NCCL 2.14 or newer (the libnccl2 package, or pip install "
    "nvidia-nccl-cu13) or set V4RT_NCCL_LIBRARY to its libnccl.so.2, or run "
    "the collectives through host memory with V4RT_DEVICE_COLLECTIVES=host";

} // namespace

/// NCCL's entry points, resolved from the library (never closed: NCCL
/// leaves threads behind that run its code).
struct NcclLibrary {
  void *handle = nullptr;
  /// The path that was loaded (from dladdr) and the version code.
  std::string path;
  int version = 0;
  nccl::Result (*ncclGetVersion)(int *);
  const char *(*ncclGetErrorString)(nccl::Result);
  const char *(*ncclGetLastError)(nccl::Comm);
  nccl::Result (*ncclGetUniqueId)(nccl::UniqueId *);
  nccl::Result (*ncclCommInitRankConfig)(nccl::Comm *, int, nccl::UniqueId, int,
                                         nccl::Config *);
  nccl::Result (*ncclCommGetAsyncError)(nccl::Comm, nccl::Result *);
  nccl::Result (*ncclCommAbort)(nccl::Comm);
  nccl::Result (*ncclCommDestroy)(nccl::Comm);
  nccl::Result (*ncclAllReduce)(const void *, void *, size_t, int, int,
                                nccl::Comm, void *);
  nccl::Result (*ncclAllGather)(const void *, void *, size_t, int, nccl::Comm,
                                void *);
  nccl::Result (*ncclReduceScatter)(const void *, void *, size_t, int, int,
                                    nccl::Comm, void *);
  nccl::Result (*ncclSend)(const void *, size_t, int, int, nccl::Comm, void *);
  nccl::Result (*ncclRecv)(void *, size_t, int, int, nccl::Comm, void *);
  nccl::Result (*ncclGroupStart)();
  nccl::Result (*ncclGroupEnd)();

  /// NCCL's words for `result`, and the communicator's last error.
  std::string describe(nccl::Result result, nccl::Comm comm) const {
    const char *text = ncclGetErrorString(result);
    std::string out = text ? text : "NCCL error " + std::to_string(result);
    if (const char *last = ncclGetLastError(comm); last && *last)
      out += std::string(" (") + last + ")";
    return out;
  }
};

Expected<DeviceCollectivesMode> deviceCollectivesMode() {
  const char *text = std::getenv("V4RT_DEVICE_COLLECTIVES");
  std::string value = text ? text : "";
  if (value.empty() || value == "auto")
    return DeviceCollectivesMode::Auto;
  if (value == "nccl")
    return DeviceCollectivesMode::Nccl;
  if (value == "host")
    return DeviceCollectivesMode::Host;
  return Status::error(StatusCode::FailedPrecondition, kCollectivesRule,
                       "V4RT_DEVICE_COLLECTIVES='" + value +
                           "': expected auto, nccl or host");
}

std::string ncclVersionName(int code) {
  return std::to_string(code / 10000) + "." + std::to_string(code / 100 % 100) +
         "." + std::to_string(code % 100);
}

Expected<std::shared_ptr<NcclLibrary>> loadNccl() {
  const char *variable = std::getenv("V4RT_NCCL_LIBRARY");
  bool overridden = variable && *variable;
  std::string tried = overridden ? variable : "libnccl.so.2";
  std::string named =
      overridden ? "V4RT_NCCL_LIBRARY=" + tried : "the NCCL library " + tried;
  auto lib = std::make_shared<NcclLibrary>();
  lib->handle = dlopen(tried.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib->handle) {
    const char *error = dlerror();
    return ncclError(named + " does not load (" +
                     (error ? error : "not found") + "): " + kNcclFix);
  }
  lib->path = tried;
  SymbolTable symbols(lib->handle);
  auto get = [&](auto &fn, const char *symbol) { symbols.get(fn, symbol); };
  get(lib->ncclGetVersion, "ncclGetVersion");
  get(lib->ncclGetErrorString, "ncclGetErrorString");
  get(lib->ncclGetLastError, "ncclGetLastError");
  get(lib->ncclGetUniqueId, "ncclGetUniqueId");
  get(lib->ncclCommInitRankConfig, "ncclCommInitRankConfig");
  get(lib->ncclCommGetAsyncError, "ncclCommGetAsyncError");
  get(lib->ncclCommAbort, "ncclCommAbort");
  get(lib->ncclCommDestroy, "ncclCommDestroy");
  get(lib->ncclAllReduce, "ncclAllReduce");
  get(lib->ncclAllGather, "ncclAllGather");
  get(lib->ncclReduceScatter, "ncclReduceScatter");
  get(lib->ncclSend, "ncclSend");
  get(lib->ncclRecv, "ncclRecv");
  get(lib->ncclGroupStart, "ncclGroupStart");
  get(lib->ncclGroupEnd, "ncclGroupEnd");
  Dl_info info;
  if (lib->ncclGetVersion &&
      dladdr(reinterpret_cast<void *>(lib->ncclGetVersion), &info) &&
      info.dli_fname && *info.dli_fname)
    lib->path = info.dli_fname;
  if (const std::string &missing = symbols.missing(); !missing.empty())
    return ncclError(named + " (" + lib->path + ") lacks " + missing +
                     ": not NCCL " + ncclVersionName(nccl::kMinimumVersion) +
                     " or newer; " + kNcclFix);
  if (nccl::Result r = lib->ncclGetVersion(&lib->version); r != nccl::kSuccess)
    return ncclError(named + " (" + lib->path + "): ncclGetVersion failed (" +
                     std::to_string(r) + ")");
  if (lib->version < nccl::kMinimumVersion)
    return ncclError(named + " (" + lib->path + ") is NCCL " +
                     ncclVersionName(lib->version) + "; v4rt needs " +
                     ncclVersionName(nccl::kMinimumVersion) +
                     " or newer (non-blocking communicators): " + kNcclFix);
  return lib;
}

namespace {

Clock::time_point deadlineAfter(double seconds) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(seconds));
}

/// Spins briefly (small collectives finish in microseconds), then yields,
/// then sleeps between polls, as the MPI engine's wait does.
void pause(Clock::time_point start) {
  Clock::duration waited = Clock::now() - start;
  if (waited < std::chrono::microseconds(50))
    return;
  if (waited < std::chrono::milliseconds(2))
    sched_yield();
  else
    std::this_thread::sleep_for(std::chrono::microseconds(100));
}

} // namespace

Expected<std::unique_ptr<NcclCollectives>>
NcclCollectives::open(std::shared_ptr<NcclLibrary> library, Collectives &host,
                      Device &device, double timeoutSeconds) {
  const NcclLibrary &lib = *library;
  std::unique_ptr<NcclCollectives> self(new NcclCollectives(
      std::move(library), device, host.rank(), host.world(), timeoutSeconds));
  std::string what = "NCCL " + ncclVersionName(lib.version) + " (" + lib.path +
                     ") communicator" + self->onRank();
  // Rank 0's id, or its failure, reaches every rank.
  struct {
    int64_t failed = 0;
    nccl::UniqueId id;
  } bootstrap;
  std::memset(&bootstrap.id, 0, sizeof bootstrap.id);
  std::string idError;
  if (host.rank() == 0)
    if (nccl::Result r = lib.ncclGetUniqueId(&bootstrap.id);
        r != nccl::kSuccess) {
      bootstrap.failed = 1;
      idError = lib.describe(r, nullptr);
    }
  if (Status s = host.broadcast(&bootstrap, sizeof bootstrap, 0); !s)
    return s;
  if (bootstrap.failed)
    return ncclError(what + ": ncclGetUniqueId failed on rank 0" +
                     (idError.empty() ? "" : ": " + idError));

  if (!device.nativeStream(nullptr))
    return ncclError(what + ": the " + device.name() +
                     " device has no streams for NCCL");
  nccl::Config config;
  config.blocking = 0;
  Clock::time_point start = Clock::now();
  Clock::time_point end = deadlineAfter(timeoutSeconds);
  nccl::Result r = lib.ncclCommInitRankConfig(
      &self->comm, self->worldSize, bootstrap.id, self->rankId, &config);
  while (r == nccl::kInProgress && self->comm) {
    if (Clock::now() >= end) {
      lib.ncclCommAbort(self->comm);
      self->comm = nullptr;
      return ncclError(what + ": initialization timed out after " +
                       formatSeconds(timeoutSeconds) +
                       " s: another rank stopped, died or cannot reach this "
                       "one");
    }
    pause(start);
    if (nccl::Result q = lib.ncclCommGetAsyncError(self->comm, &r);
        q != nccl::kSuccess)
      r = q;
  }
  if (r != nccl::kSuccess) {
    std::string why = lib.describe(r, self->comm);
    if (self->comm)
      lib.ncclCommAbort(self->comm);
    self->comm = nullptr;
    return ncclError(what + ": ncclCommInitRankConfig failed: " + why);
  }
  return self;
}

NcclCollectives::~NcclCollectives() {
  if (!comm)
    return;
  device.nativeStream(nullptr);
  // A healthy communicator's work has finished (every call waits for it).
  if (brokenAt.empty())
    lib->ncclCommDestroy(comm);
  else
    lib->ncclCommAbort(comm);
}

void NcclCollectives::abort() {
  std::lock_guard<std::mutex> lock(mutex);
  if (!comm)
    return;
  device.nativeStream(nullptr);
  brokenAt = "its opening (another rank's failed)";
  lib->ncclCommAbort(comm);
  comm = nullptr;
}

int NcclCollectives::version() const { return lib->version; }

std::string NcclCollectives::onRank() const {
  return " on rank " + std::to_string(rankId) + " of " +
         std::to_string(worldSize);
}

Status NcclCollectives::breakWith(const std::string &what,
                                  const std::string &why) {
  brokenAt = what;
  // Abort returns without the other ranks; they time out in their waits.
  lib->ncclCommAbort(comm);
  comm = nullptr;
  return ncclError(what + why);
}

template <typename Enqueue>
Status NcclCollectives::perform(const char *kind, DType dtype, size_t count,
                                Device::Queue *queue, Enqueue enqueue) {
  std::lock_guard<std::mutex> lock(mutex);
  std::string what = std::string(kind) + " #" + std::to_string(++sequence) +
                     " (" + dtypeName(dtype) + ", " + std::to_string(count) +
                     " elements, NCCL)";
  if (!brokenAt.empty())
    return ncclError(what + onRank() + " not run: the communicator broke at " +
                     brokenAt + "; the ranks are out of step, end the process");
  // The deadline is the collective's: the work queued before it first.
  if (Status s = device.synchronize(queue); !s)
    return s;
  void *stream = device.nativeStream(queue);
  Clock::time_point start = Clock::now();
  Clock::time_point end = deadlineAfter(timeoutSeconds);
  nccl::Result r = enqueue(stream);
  if (r == nccl::kInvalidArgument || r == nccl::kInvalidUsage)
    // Refused before it ran: the communicator stays usable.
    return Status::error(StatusCode::Internal, kCollectivesRule,
                         what + onRank() +
                             ": NCCL refused it: " + lib->describe(r, comm));
  if (r != nccl::kSuccess && r != nccl::kInProgress)
    return breakWith(what,
                     " failed" + onRank() + ": " + lib->describe(r, comm));
  for (;;) {
    // In progress while a non-blocking call is still being enqueued; then
    // success until an error on the communicator.
    nccl::Result state = nccl::kSuccess;
    if (nccl::Result q = lib->ncclCommGetAsyncError(comm, &state);
        q != nccl::kSuccess)
      state = q;
    if (state != nccl::kSuccess && state != nccl::kInProgress)
      return breakWith(what, " failed" + onRank() + ": " +
                                 lib->describe(state, comm));
    if (state == nccl::kSuccess) {
      auto idle = device.queueIdle(queue);
      if (!idle)
        return breakWith(what,
                         " failed" + onRank() + ": " + idle.status().message());
      if (*idle)
        return Status::success();
    }
    if (Clock::now() >= end)
      return breakWith(what, " timed out after " +
                                 formatSeconds(timeoutSeconds) + " s" +
                                 onRank() + ": another rank stopped or died");
    pause(start);
  }
}

namespace {
int ncclType(DType dtype) {
  switch (dtype) {
  case DType::BF16:
    return nccl::kBfloat16;
  case DType::I64:
    return nccl::kInt64;
  default:
    return nccl::kFloat32;
  }
}
} // namespace

Status NcclCollectives::allReduceSum(void *data, size_t count, DType dtype,
                                     Device::Queue *queue) {
  if (Status s = checkAllReduceSum(data, count, dtype); !s)
    return s;
  return perform("all_reduce", dtype, count, queue, [&](void *stream) {
    return lib->ncclAllReduce(data, data, count, ncclType(dtype), nccl::kSum,
                              comm, stream);
  });
}

Status NcclCollectives::allGather(const void *send, void *recv, size_t count,
                                  DType dtype, Device::Queue *queue) {
  if (Status s = checkAllGather(send, recv, count, dtype, worldSize); !s)
    return s;
  // Moved as bytes, so every dtype gathers its bits.
  size_t bytes = count * ((dtypeBits(dtype) + 7) / 8);
  return perform("all_gather", dtype, count, queue, [&](void *stream) {
    return lib->ncclAllGather(send, recv, bytes, nccl::kInt8, comm, stream);
  });
}

Status NcclCollectives::reduceScatterSum(const void *send, void *recv,
                                         size_t count, DType dtype,
                                         Device::Queue *queue) {
  if (Status s = checkReduceScatterSum(send, recv, count, dtype, worldSize); !s)
    return s;
  return perform("reduce_scatter", dtype, count, queue, [&](void *stream) {
    return lib->ncclReduceScatter(send, recv, count, ncclType(dtype),
                                  nccl::kSum, comm, stream);
  });
}

Status NcclCollectives::allToAll(const int64_t *counts, const void *send,
                                 int64_t *recvCounts, void *recv, size_t rows,
                                 size_t rowElements, DType dtype,
                                 Device::Queue *queue) {
  if (!counts || !recvCounts)
    return Status::error(StatusCode::InvalidArgument, "ARG",
                         "all_to_all: null counts");
  if (Status s = checkAllToAll(send, recv, rows, rowElements, dtype, worldSize);
      !s)
    return s;
  size_t n = size_t(worldSize);
  // One grouped send and receive per peer (NCCL's all-to-all): `bytes(q)`
  // bytes at block q of both sides.
  auto exchange = [&](const char *kind, const void *from, void *to,
                      size_t blockBytes, auto sendBytes, auto recvBytes) {
    return perform(kind, dtype, n, queue, [&](void *stream) {
      nccl::Result r = lib->ncclGroupStart();
      for (size_t q = 0; q < n && r == nccl::kSuccess; ++q) {
        if (size_t b = sendBytes(q))
          r = lib->ncclSend(static_cast<const char *>(from) + q * blockBytes, b,
                            nccl::kInt8, int(q), comm, stream);
        if (size_t b = recvBytes(q); b && r == nccl::kSuccess)
          r = lib->ncclRecv(static_cast<char *>(to) + q * blockBytes, b,
                            nccl::kInt8, int(q), comm, stream);
      }
      nccl::Result end = lib->ncclGroupEnd();
      return r != nccl::kSuccess ? r : end;
    });
  };
  auto eight = [](size_t) { return sizeof(int64_t); };
  if (Status s = exchange("all_to_all counts", counts, recvCounts,
                          sizeof(int64_t), eight, eight);
      !s)
    return s;
  // The counts live on the device; NCCL takes sizes on the host.
  std::vector<int64_t> sent(n), got(n);
  DeviceBuffer sentOn{const_cast<int64_t *>(counts), n * sizeof(int64_t)};
  DeviceBuffer gotOn{recvCounts, n * sizeof(int64_t)};
  if (Status s = device.download(sent.data(), sentOn, 0, sentOn.bytes, queue);
      !s)
    return s;
  if (Status s = device.download(got.data(), gotOn, 0, gotOn.bytes, queue); !s)
    return s;
  if (Status s = device.synchronize(queue); !s)
    return s;
  // A bad count stops the ranks that send or receive it here; the others
  // time out in the exchange below.
  std::string bad = badAllToAllCount(sent.data(), worldSize, rows);
  if (bad.empty() && !badAllToAllCount(got.data(), worldSize, rows).empty())
    bad = "received " + badAllToAllCount(got.data(), worldSize, rows);
  if (!bad.empty())
    return breakWith("all_to_all", onRank() + ": " + bad);
  size_t rowBytes = rowElements * ((dtypeBits(dtype) + 7) / 8);
  size_t blockBytes = rows * rowBytes;
  if (Status s = exchange(
          "all_to_all", send, recv, blockBytes,
          [&](size_t q) { return size_t(sent[q]) * rowBytes; },
          [&](size_t q) { return size_t(got[q]) * rowBytes; });
      !s)
    return s;
  // The rows past each received count.
  unsigned char fill = allToAllFillByte(dtype);
  DeviceBuffer out{recv, n * blockBytes};
  for (size_t q = 0; q < n; ++q) {
    size_t have = size_t(got[q]) * rowBytes;
    if (have < blockBytes)
      if (Status s = device.fill(out, q * blockBytes + have, blockBytes - have,
                                 &fill, 1, queue);
          !s)
        return s;
  }
  return device.synchronize(queue);
}

} // namespace v4::rt
