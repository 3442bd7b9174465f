//===- NcclCollectives.h - the collectives on GPU memory (NCCL) -*- C++ -*-===//
//
// The "nccl" engine: all-reduce, all-gather, reduce-scatter and all-to-all
// on device memory, enqueued on a session queue's CUDA stream, with the
// semantics and argument checks of Collectives.h (checkAllReduceSum etc.). The
// NCCL library is loaded at run time with dlopen (V4RT_NCCL_LIBRARY, else
// libnccl.so.2), so libv4rt links no NCCL and starts on machines without
// it; a missing library or entry point, or one older than
// nccl::kMinimumVersion (NcclAbi.h), is an RT-10 error naming the path tried
// and the fix.
//
// Bootstrap: the ranks and the world are those of the process's host
// collectives (Collectives.h: the MPI launcher, or a world of one); rank 0
// makes the ncclUniqueId and broadcasts it over them, and every rank calls
// ncclCommInitRankConfig with a non-blocking communicator, so that the
// initialization too is polled against the deadline.
//
// No hang: every call waits for its work by polling ncclCommGetAsyncError
// and the stream (Device::queueIdle) against the deadline (the timeout of
// the host collectives); a timeout or an NCCL error aborts the communicator
// (ncclCommAbort, which does not wait for the other ranks) and returns an
// RT-10 error naming the collective, and every later call fails too. The
// other ranks time out in their own wait, so every rank gets an error.
//
// Threads: calls are serialized (one communicator: every rank must issue
// the same collectives in the same order, the caller's job), and each
// returns once its collective has finished on the stream.
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_SRC_COMM_NCCLCOLLECTIVES_H
#define V4_RUNTIME_SRC_COMM_NCCLCOLLECTIVES_H

#include "runtime/base/DType.h"
#include "runtime/base/Status.h"
#include "runtime/src/devices/Device.h"

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace v4::rt {

class Collectives;
struct NcclLibrary;

/// How a model's collective steps run on a device with streams (CUDA),
/// from V4RT_DEVICE_COLLECTIVES:
///  * Auto (unset, "auto"): NCCL when every rank loads it (the ranks agree
///    over the host collectives first), else Host;
///  * Nccl ("nccl"): NCCL; an error on every rank when a rank cannot load it;
///  * Host ("host"): staged through host memory and the host collectives.
/// Another value is an RT-10 error naming the variable.
enum class DeviceCollectivesMode { Auto, Nccl, Host };
Expected<DeviceCollectivesMode> deviceCollectivesMode();

/// Loads the NCCL library and checks its version; an RT-10 error naming the
/// path tried and what to do. The library stays loaded.
Expected<std::shared_ptr<NcclLibrary>> loadNccl();
/// "2.28.9" for NCCL's version code 22809.
std::string ncclVersionName(int code);

class NcclCollectives {
public:
  /// Joins the ranks of `host` in one NCCL communicator on `device`'s GPU
  /// (its context current), each collective with a deadline of
  /// `timeoutSeconds` (the initialization too). Every rank of `host` must
  /// call it at the same point of its collectives.
  static Expected<std::unique_ptr<NcclCollectives>>
  open(std::shared_ptr<NcclLibrary> library, Collectives &host, Device &device,
       double timeoutSeconds);
  /// Destroys the communicator (aborts a broken one).
  ~NcclCollectives();
  /// Aborts the communicator (when another rank failed to open its own):
  /// later calls fail.
  void abort();
  NcclCollectives(const NcclCollectives &) = delete;
  NcclCollectives &operator=(const NcclCollectives &) = delete;

  int rank() const { return rankId; }
  int world() const { return worldSize; }
  /// The loaded library's version code (22809).
  int version() const;

  /// Collectives.h's calls on device memory, after the work queued on
  /// `queue` before them; they return once the collective has finished.
  Status allReduceSum(void *data, size_t count, DType dtype,
                      Device::Queue *queue);
  Status allGather(const void *send, void *recv, size_t count, DType dtype,
                   Device::Queue *queue);
  Status reduceScatterSum(const void *send, void *recv, size_t count,
                          DType dtype, Device::Queue *queue);
  /// Collectives::allToAll with the counts in device memory too: they are
  /// exchanged first and copied to the host (NCCL takes sizes there), then
  /// the rows move as grouped sends and receives. A count outside
  /// [0, rows] breaks the communicator on the ranks that send or receive
  /// it; the others time out.
  Status allToAll(const int64_t *counts, const void *send, int64_t *recvCounts,
                  void *recv, size_t rows, size_t rowElements, DType dtype,
                  Device::Queue *queue);

private:
  NcclCollectives(std::shared_ptr<NcclLibrary> library, Device &device,
                  int rank, int world, double timeoutSeconds)
      : lib(std::move(library)), device(device), rankId(rank), worldSize(world),
        timeoutSeconds(timeoutSeconds) {}
  /// " on rank r of w".
  std::string onRank() const;
  /// Runs one collective: `enqueue(stream)` issues it and returns the NCCL
  /// result; `kind`, `dtype` and `count` name it in errors.
  template <typename Enqueue>
  Status perform(const char *kind, DType dtype, size_t count,
                 Device::Queue *queue, Enqueue enqueue);
  /// Aborts the communicator after `what` broke it; the error to return.
  Status breakWith(const std::string &what, const std::string &why);

  std::shared_ptr<NcclLibrary> lib;
  Device &device;
  void *comm = nullptr;
  int rankId = 0, worldSize = 1;
  double timeoutSeconds = 0;
  std::mutex mutex;
  uint64_t sequence = 0;
  /// The collective that broke the communicator (empty: none).
  std::string brokenAt;
};

} // namespace v4::rt

#endif // V4_RUNTIME_SRC_COMM_NCCLCOLLECTIVES_H
