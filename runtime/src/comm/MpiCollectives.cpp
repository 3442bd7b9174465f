//===- MpiCollectives.cpp - the MPI engine (the plugin libv4rt-mpi.so) ----===//
//
// The only code of the runtime that links MPI; libv4rt dlopen()s it
// (MpiPlugin.h). It initializes MPI unless the embedder did, duplicates
// MPI_COMM_WORLD with MPI_ERRORS_RETURN, and runs every collective
// non-blocking (MPI_Iallreduce, MPI_Iallgather, MPI_Ireduce_scatter_block,
// MPI_Ibcast, MPI_Ibarrier), testing the request until the collective's
// deadline. The sums and the broadcast run in chunks of at most INT_MAX
// elements; the gather (INT_MAX bytes per rank) and the reduce-scatter
// (INT_MAX elements per rank) are one call each, as Collectives.cpp checks.
//
// Failure and exit. A collective that misses its deadline cannot be
// cancelled: its request stays pending, and its peers are out of step. So a
// timeout or an MPI error breaks the communicator for good: that call and
// every later one return RT-10 errors without calling MPI again (no late
// progress writes into the caller's buffer), and the process must end. At
// exit, when this plugin initialized MPI, a healthy process frees the
// communicator and finalizes; a broken one calls MPI_Abort instead, since
// MPI_Finalize synchronizes with the other ranks and with a pending request
// could wait forever (and a peer that stopped never arrives): MPI_Abort
// ends every rank, the peers stuck in a collective or in MPI_Finalize
// included, so no rank is left behind. An embedder that initialized MPI
// finalizes it, and ends a job with a broken communicator, itself.
//
//===----------------------------------------------------------------------===//
#include "runtime/base/DType.h"
#include "runtime/numerics/Numerics.h"
#include "runtime/src/comm/Collectives.h"
#include "runtime/src/comm/MpiPlugin.h"

#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <sched.h>
#include <string>
#include <thread>
#include <vector>

namespace v4::rt {
namespace {

using Clock = std::chrono::steady_clock;

//===----------------------------------------------------------------------===//
// Process state: who finalizes, and whether a communicator broke.
//===----------------------------------------------------------------------===//

std::atomic<bool> brokenCommunicator{false};
std::mutex brokenMutex;
char brokenWhat[512];

void markBroken(const std::string &what) {
  std::lock_guard<std::mutex> lock(brokenMutex);
  if (brokenCommunicator.load())
    return;
  std::snprintf(brokenWhat, sizeof brokenWhat, "%s", what.c_str());
  brokenCommunicator.store(true);
}

/// Registered with atexit when this plugin initialized MPI.
void finalizeAtExit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized)
    return;
  if (brokenCommunicator.load()) {
    std::fprintf(stderr,
                 "v4rt: exiting after %s: MPI_Finalize could wait forever, "
                 "so MPI_Abort ends every rank [RT-10]\n",
                 brokenWhat);
    std::fflush(nullptr);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Finalize();
}

std::string mpiErrorText(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS)
    return "MPI error " + std::to_string(code);
  return std::string(text, size_t(length));
}

/// A status's message without its " [rule]" tag (the caller adds it).
std::string untagged(const Status &status) {
  const std::string &text = status.message();
  size_t tag = status.rule().size() + 3;
  return text.size() >= tag ? text.substr(0, text.size() - tag) : text;
}

/// The bf16 sum: each pair in fp32, rounded to nearest even once.
void bf16Sum(void *in, void *inout, int *length, MPI_Datatype *) {
  auto *a = static_cast<const uint16_t *>(in);
  auto *b = static_cast<uint16_t *>(inout);
  for (int i = 0, n = *length; i < n; ++i)
    b[i] = quant::encodeBF16(quant::decodeBF16(a[i]) + quant::decodeBF16(b[i]));
}

class MpiCollectives final : public Collectives {
public:
  /// Initializes MPI if needed and opens the communicator; null after
  /// setting `error`.
  static MpiCollectives *open(double timeoutSeconds, std::string &error);
  ~MpiCollectives() override;

  int rank() const override { return rankId; }
  int world() const override { return worldSize; }
  const char *engine() const override { return "mpi"; }
  [[noreturn]] void abort(int code) override;

protected:
  Status runAllReduceSum(void *data, size_t count, DType dtype) override;
  Status runBroadcast(void *data, size_t bytes, int root) override;
  Status runAllGather(const void *send, void *recv, size_t bytes) override;
  Status runReduceScatterSum(const void *send, void *recv, size_t count,
                             DType dtype) override;
  Status runAllToAll(const void *send, const size_t *sendRows, void *recv,
                     const size_t *recvRows, size_t rowsPerBlock,
                     size_t rowBytes) override;
  Status runBarrier() override;

private:
  MpiCollectives(double timeoutSeconds) : timeoutSeconds(timeoutSeconds) {}

  Clock::time_point deadline() const {
    return Clock::now() + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(timeoutSeconds));
  }
  std::string onRank() const {
    return " on rank " + std::to_string(rankId) + " of " +
           std::to_string(worldSize);
  }
  /// Runs one collective of `count` units as chunks of at most INT_MAX:
  /// `issue(first, n, request)` starts the chunk [first, first + n) and
  /// returns the MPI result. `kind` and `detail` name it in errors.
  template <typename Issue>
  Status perform(const char *kind, const std::string &detail,
                 const char *mpiFunction, size_t count, Issue issue);
  /// Tests `request` until done or `until`.
  Status wait(MPI_Request &request, Clock::time_point until,
              const std::string &what);
  Status fail(const std::string &what, const char *mpiFunction, int code);

  MPI_Comm comm = MPI_COMM_NULL;
  MPI_Op bf16SumOp = MPI_OP_NULL;
  int rankId = 0;
  int worldSize = 1;
  int threadLevel = MPI_THREAD_SINGLE;
  double timeoutSeconds;
  /// Serializes the collectives (MPI_THREAD_SERIALIZED suffices).
  std::mutex mutex;
  uint64_t sequence = 0;
  /// The collective that broke the communicator; empty while it works.
  std::string brokenAt;
};

MpiCollectives *MpiCollectives::open(double timeoutSeconds,
                                     std::string &error) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (finalized) {
    error = "MPI was finalized already in this process";
    return nullptr;
  }
  int provided = MPI_THREAD_SINGLE;
  if (!initialized) {
    // MPI_THREAD_MULTIPLE lets abort() run while another thread waits in a
    // collective; the collectives themselves are serialized here.
    int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
    if (rc != MPI_SUCCESS) {
      error = "MPI_Init_thread: " + mpiErrorText(rc);
      return nullptr;
    }
    std::atexit(finalizeAtExit);
  } else {
    MPI_Query_thread(&provided);
  }
  if (provided < MPI_THREAD_SERIALIZED) {
    error = "MPI runs at thread level " + std::to_string(provided) +
            " (MPI_Init_thread's 'provided'); the collectives need "
            "MPI_THREAD_SERIALIZED or better";
    return nullptr;
  }

  std::unique_ptr<MpiCollectives> c(new MpiCollectives(timeoutSeconds));
  c->threadLevel = provided;
  MPI_Comm_rank(MPI_COMM_WORLD, &c->rankId);
  MPI_Comm_size(MPI_COMM_WORLD, &c->worldSize);
  // The duplicate is collective: every rank must open the collectives, so
  // it has the collectives' deadline too.
  MPI_Request request;
  int rc = MPI_Comm_idup(MPI_COMM_WORLD, &c->comm, &request);
  if (rc != MPI_SUCCESS) {
    error = "MPI_Comm_idup: " + mpiErrorText(rc);
    return nullptr;
  }
  Status s = c->wait(request, c->deadline(),
                     "opening the communicator (MPI_Comm_idup)");
  if (!s.ok()) {
    error = untagged(s);
    return nullptr;
  }
  MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
  rc = MPI_Op_create(bf16Sum, /*commute=*/1, &c->bf16SumOp);
  if (rc != MPI_SUCCESS) {
    error = "MPI_Op_create: " + mpiErrorText(rc);
    return nullptr;
  }
  return c.release();
}

MpiCollectives::~MpiCollectives() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  // A broken communicator may have a pending request: leave it to exit.
  if (finalized || !brokenAt.empty())
    return;
  if (bf16SumOp != MPI_OP_NULL)
    MPI_Op_free(&bf16SumOp);
  if (comm != MPI_COMM_NULL)
    MPI_Comm_free(&comm);
}

void MpiCollectives::abort(int code) {
  std::fflush(nullptr);
  // Below MPI_THREAD_MULTIPLE, wait for a collective in flight (it ends by
  // its deadline).
  std::unique_lock<std::mutex> lock(mutex, std::defer_lock);
  if (threadLevel < MPI_THREAD_MULTIPLE)
    lock.lock();
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized)
    MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

Status MpiCollectives::fail(const std::string &what, const char *mpiFunction,
                            int code) {
  brokenAt = what;
  markBroken(what + " failed");
  return Status::error(StatusCode::Unavailable, kCollectivesRule,
                       what + " failed" + onRank() + ": " + mpiFunction + ": " +
                           mpiErrorText(code));
}

Status MpiCollectives::wait(MPI_Request &request, Clock::time_point until,
                            const std::string &what) {
  // Spin briefly (a collective of small messages completes in
  // microseconds), then yield, then sleep between tests so that waiting
  // ranks leave the CPU to the others (oversubscribed hosts).
  Clock::time_point start = Clock::now();
  for (;;) {
    int done = 0;
    int rc = MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS)
      return fail(what, "MPI_Test", rc);
    if (done)
      return Status::success();
    Clock::time_point now = Clock::now();
    if (now >= until) {
      brokenAt = what;
      markBroken(what + " timed out");
      return Status::error(StatusCode::Unavailable, kCollectivesRule,
                           what + " timed out after " +
                               formatSeconds(timeoutSeconds) + " s" + onRank() +
                               ": another rank stopped or died");
    }
    if (now - start < std::chrono::microseconds(50))
      continue;
    if (now - start < std::chrono::milliseconds(2))
      sched_yield();
    else
      std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

template <typename Issue>
Status MpiCollectives::perform(const char *kind, const std::string &detail,
                               const char *mpiFunction, size_t count,
                               Issue issue) {
  std::lock_guard<std::mutex> lock(mutex);
  std::string what = std::string(kind) + " #" + std::to_string(++sequence) +
                     (detail.empty() ? "" : " (" + detail + ")");
  if (!brokenAt.empty())
    return Status::error(StatusCode::Unavailable, kCollectivesRule,
                         what + onRank() +
                             " not run: the communicator broke at " + brokenAt +
                             "; the ranks are out of step, end the process");
  Clock::time_point end = deadline();
  size_t first = 0;
  do {
    int n = int(std::min<size_t>(count - first, size_t(INT_MAX)));
    MPI_Request request;
    int rc = issue(first, n, &request);
    if (rc != MPI_SUCCESS)
      return fail(what, mpiFunction, rc);
    if (Status s = wait(request, end, what); !s.ok())
      return s;
    first += size_t(n);
  } while (first < count);
  return Status::success();
}

Status MpiCollectives::runAllReduceSum(void *data, size_t count, DType dtype) {
  MPI_Datatype type = MPI_FLOAT;
  MPI_Op op = MPI_SUM;
  size_t elementBytes = 4;
  if (dtype == DType::BF16) {
    type = MPI_UINT16_T;
    op = bf16SumOp;
    elementBytes = 2;
  } else if (dtype == DType::I64) {
    type = MPI_INT64_T;
    elementBytes = 8;
  }
  auto *bytes = static_cast<char *>(data);
  return perform(
      "all_reduce",
      std::string(dtypeName(dtype)) + ", " + std::to_string(count) +
          " elements",
      "MPI_Iallreduce", count, [&](size_t first, int n, MPI_Request *request) {
        return MPI_Iallreduce(MPI_IN_PLACE,
                              bytes ? bytes + first * elementBytes : bytes, n,
                              type, op, comm, request);
      });
}

Status MpiCollectives::runBroadcast(void *data, size_t bytes, int root) {
  auto *base = static_cast<char *>(data);
  return perform(
      "broadcast",
      std::to_string(bytes) + " bytes from rank " + std::to_string(root),
      "MPI_Ibcast", bytes, [&](size_t first, int n, MPI_Request *request) {
        return MPI_Ibcast(base ? base + first : base, n, MPI_BYTE, root, comm,
                          request);
      });
}

Status MpiCollectives::runAllGather(const void *send, void *recv,
                                    size_t bytes) {
  // One call (Collectives::allGather checked bytes <= INT_MAX): the blocks
  // interleave by rank, so they are not split.
  return perform("all_gather", std::to_string(bytes) + " bytes per rank",
                 "MPI_Iallgather", 1, [&](size_t, int, MPI_Request *request) {
                   return MPI_Iallgather(send, int(bytes), MPI_BYTE, recv,
                                         int(bytes), MPI_BYTE, comm, request);
                 });
}

Status MpiCollectives::runReduceScatterSum(const void *send, void *recv,
                                           size_t count, DType dtype) {
  MPI_Datatype type = MPI_FLOAT;
  MPI_Op op = MPI_SUM;
  if (dtype == DType::BF16) {
    type = MPI_UINT16_T;
    op = bf16SumOp;
  } else if (dtype == DType::I64) {
    type = MPI_INT64_T;
  }
  return perform("reduce_scatter",
                 std::string(dtypeName(dtype)) + ", " + std::to_string(count) +
                     " elements per rank",
                 "MPI_Ireduce_scatter_block", 1,
                 [&](size_t, int, MPI_Request *request) {
                   return MPI_Ireduce_scatter_block(send, recv, int(count),
                                                    type, op, comm, request);
                 });
}

Status MpiCollectives::runAllToAll(const void *send, const size_t *sendRows,
                                   void *recv, const size_t *recvRows,
                                   size_t rowsPerBlock, size_t rowBytes) {
  // Counts and displacements in rows: one contiguous type of a row's bytes
  // (Collectives::allToAll checked both <= INT_MAX).
  const size_t n = static_cast<size_t>(worldSize);
  std::vector<int> sendCounts(n), recvCounts(n), displacements(n);
  for (int q = 0; q < worldSize; ++q) {
    sendCounts[size_t(q)] = int(sendRows[q]);
    recvCounts[size_t(q)] = int(recvRows[q]);
    displacements[size_t(q)] = int(size_t(q) * rowsPerBlock);
  }
  MPI_Datatype row = MPI_DATATYPE_NULL;
  // The blocks start rowsPerBlock rows apart: a displacement beyond INT_MAX
  // rows does not fit MPI's int.
  if (rowsPerBlock * size_t(worldSize) > size_t(INT_MAX))
    return Status::error(StatusCode::InvalidArgument, "ARG",
                         "all_to_all: " + std::to_string(worldSize) +
                             " blocks of " + std::to_string(rowsPerBlock) +
                             " rows exceed MPI's INT_MAX displacement");
  int rc = MPI_Type_contiguous(int(rowBytes), MPI_BYTE, &row);
  if (rc == MPI_SUCCESS)
    rc = MPI_Type_commit(&row);
  if (rc != MPI_SUCCESS)
    return fail("all_to_all", "MPI_Type_contiguous", rc);
  Status s = perform(
      "all_to_all",
      std::to_string(rowsPerBlock) + " rows of " + std::to_string(rowBytes) +
          " bytes per block",
      "MPI_Ialltoallv", 1, [&](size_t, int, MPI_Request *request) {
        return MPI_Ialltoallv(send, sendCounts.data(), displacements.data(),
                              row, recv, recvCounts.data(),
                              displacements.data(), row, comm, request);
      });
  // A request that timed out may still use the type: leave it to exit.
  if (s.ok())
    MPI_Type_free(&row);
  return s;
}

Status MpiCollectives::runBarrier() {
  return perform("barrier", "", "MPI_Ibarrier", 0,
                 [&](size_t, int, MPI_Request *request) {
                   return MPI_Ibarrier(comm, request);
                 });
}

} // namespace
} // namespace v4::rt

extern "C" __attribute__((visibility("default"))) v4::rt::Collectives *
v4rt_mpi_collectives_open(int interfaceVersion, double timeoutSeconds,
                          char *error, size_t errorSize) {
  std::string why;
  v4::rt::Collectives *opened = nullptr;
  if (interfaceVersion != v4::rt::kMpiPluginInterface)
    why = "the plugin has interface " +
          std::to_string(v4::rt::kMpiPluginInterface) +
          ", this runtime calls interface " + std::to_string(interfaceVersion) +
          ": use the libv4rt-mpi.so built with this runtime";
  else if (!(timeoutSeconds > 0))
    why = "timeout " + std::to_string(timeoutSeconds) + " s is not positive";
  else
    opened = v4::rt::MpiCollectives::open(timeoutSeconds, why);
  if (!opened && error && errorSize)
    std::snprintf(error, errorSize, "%s", why.c_str());
  return opened;
}
