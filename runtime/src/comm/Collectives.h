//===- Collectives.h - the runtime's collectives across ranks ---*- C++ -*-===//
//
// Sums, gathers, reduce-scatters, all-to-alls, broadcasts and barriers over
// the ranks of a process group, on host memory, for expert parallelism
// across processes. One object per process (openCollectives), shared by
// everything that needs it. Two engines:
//
//  * "single": one rank (rank 0 of a world of 1); once its arguments are
//    checked every collective is a no-op, but the gather, the
//    reduce-scatter and the all-to-all, which copy `send` (the one block)
//    to `recv`.
//  * "mpi": the ranks of an MPI job, in the plugin libv4rt-mpi.so
//    (MpiCollectives.cpp), which libv4rt dlopen()s, so libv4rt itself never
//    links MPI. Every collective has a deadline (CollectivesOptions); one
//    that misses it, or fails in MPI, breaks the communicator: that call and
//    every later one return an error, and at exit the process ends every
//    rank with MPI_Abort instead of an MPI_Finalize that could wait forever.
//
// On GPU memory the "nccl" engine (NcclCollectives.h) runs the sums, the
// gather and the reduce-scatter; it bootstraps over these.
//
// Errors: caller arguments are "ARG" (InvalidArgument); everything about the
// launch environment, the plugin and the collectives themselves is "RT-10"
// (docs/RELIABILITY.md).
//
// Threads: a collective may be called from any thread; calls are serialized
// here, and every rank must issue the same collectives in the same order
// (the caller's job).
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_SRC_COMM_COLLECTIVES_H
#define V4_RUNTIME_SRC_COMM_COLLECTIVES_H

#include "runtime/base/DType.h"
#include "runtime/base/Status.h"

#include <cstddef>
#include <memory>
#include <string>

namespace v4::rt {

struct CollectivesOptions {
  /// "auto": "mpi" when an MPI launcher started the process, else "single";
  /// "single"; "mpi" (without a launcher: an MPI world of one).
  std::string engine = "auto";
  /// The deadline of each collective; <= 0 (or not finite) is an ARG error.
  double timeoutSeconds = 300;
};

/// The collectives of the process's ranks. The public calls check their
/// arguments (ARG errors) and then run the engine's collective; the
/// engines implement the protected run* functions. Every virtual function
/// is inline or pure, so the plugin needs nothing of libv4rt to derive from
/// this class.
class Collectives {
public:
  virtual ~Collectives() = default;
  virtual int rank() const = 0;
  virtual int world() const = 0;
  /// "single" or "mpi".
  virtual const char *engine() const = 0;

  /// Sums `count` elements of `dtype` in place (host memory) over all
  /// ranks: F32; BF16 (summed in fp32 and rounded to nearest even once per
  /// pairwise combine, so a sum where only one rank holds a non-zero value
  /// is that value's bits); I64. Every rank gets the same bits.
  Status allReduceSum(void *data, size_t count, DType dtype);
  /// Concatenates every rank's `count` elements of `dtype` at `send`, in
  /// rank order, into `recv` (world * count elements) on every rank: F32,
  /// BF16, I64, I32 (bytes moved as they are, so every rank gets the same
  /// bits); `send` and `recv` must not overlap. At most INT_MAX bytes per
  /// rank (ARG beyond).
  Status allGather(const void *send, void *recv, size_t count, DType dtype);
  /// Sums the world * count elements of `dtype` at `send` over the ranks
  /// (as allReduceSum: exact bits when one rank's term is non-zero) and
  /// gives rank r block r of `count` elements of the sum in `recv`: F32,
  /// BF16, I64; `send` and `recv` must not overlap. At most INT_MAX
  /// elements per rank (ARG beyond).
  Status reduceScatterSum(const void *send, void *recv, size_t count,
                          DType dtype);
  /// Sends rows between every pair of ranks (`v4.comm.all_to_all`): `send`
  /// holds world blocks of `rows` rows of `rowElements` elements of `dtype`
  /// (F32, BF16, I64); its first counts[q] rows of block q go to rank q.
  /// recvCounts[q] gets what rank q sent to this rank, and block q of
  /// `recv` (world blocks too) those rows, then fill rows (zero bits: +0;
  /// -1 for I64). A count outside [0, rows] on any rank makes the call an
  /// RT-10 error on every rank, which moves no rows. The buffers must not
  /// overlap; rows and a row's bytes at most INT_MAX (ARG beyond).
  Status allToAll(const int64_t *counts, const void *send, int64_t *recvCounts,
                  void *recv, size_t rows, size_t rowElements, DType dtype);
  /// Copies `bytes` bytes of rank `root`'s `data` into every rank's `data`.
  Status broadcast(void *data, size_t bytes, int root);
  /// Returns once every rank has entered it.
  Status barrier();

  /// Ends every rank's process with exit status `code` (MPI_Abort on MPI;
  /// on a single rank, stdio flushed and _Exit) after an unrecoverable
  /// error on this rank.
  [[noreturn]] virtual void abort(int code) = 0;

protected:
  /// Run after the arguments were checked: `data` is non-null when there
  /// is anything to move, `dtype` is F32, BF16 or I64, `root` is a rank.
  virtual Status runAllReduceSum(void *data, size_t count, DType dtype) = 0;
  virtual Status runBroadcast(void *data, size_t bytes, int root) = 0;
  /// `bytes` per rank, at most INT_MAX; `recv` holds world blocks of it;
  /// the buffers are non-null when `bytes` is not 0 and do not overlap.
  virtual Status runAllGather(const void *send, void *recv, size_t bytes) = 0;
  /// `count` elements per rank, at most INT_MAX, `dtype` F32, BF16 or I64;
  /// `send` holds world blocks of it; the buffers are non-null when
  /// `count` is not 0 and do not overlap.
  virtual Status runReduceScatterSum(const void *send, void *recv, size_t count,
                                     DType dtype) = 0;
  /// Rank q gets `sendRows[q]` rows of `rowBytes` bytes from
  /// send + q * rowsPerBlock * rowBytes into its block of this rank's
  /// index; this rank gets `recvRows[q]` rows from rank q at
  /// recv + q * rowsPerBlock * rowBytes. Every count is at most
  /// rowsPerBlock, which, like rowBytes, is at most INT_MAX; the buffers
  /// are non-null and do not overlap.
  virtual Status runAllToAll(const void *send, const size_t *sendRows,
                             void *recv, const size_t *recvRows,
                             size_t rowsPerBlock, size_t rowBytes) = 0;
  virtual Status runBarrier() = 0;
};

/// The argument checks of the calls above (ARG errors), shared by the host
/// engines' public calls and the device engine (NcclCollectives.h): the
/// buffers are those of a world of `world` ranks.
Status checkAllReduceSum(const void *data, size_t count, DType dtype);
Status checkAllGather(const void *send, const void *recv, size_t count,
                      DType dtype, int world);
Status checkReduceScatterSum(const void *send, const void *recv, size_t count,
                             DType dtype, int world);
Status checkAllToAll(const void *send, const void *recv, size_t rows,
                     size_t rowElements, DType dtype, int world);
/// all_to_all's send counts against its `rows` per block: empty when each
/// is in [0, rows], else what is wrong with the first that is not.
std::string badAllToAllCount(const int64_t *counts, int world, size_t rows);
/// The byte all_to_all fills the rows past a received count with (0x00:
/// +0; 0xff: -1 for I64).
inline unsigned char allToAllFillByte(DType dtype) {
  return dtype == DType::I64 ? 0xff : 0x00;
}

/// The process's collectives, opened once per process and shared: a later
/// call returns the same object when its options agree (the same timeout,
/// and the engine "auto" or the one opened), an error otherwise.
Expected<std::shared_ptr<Collectives>>
openCollectives(const CollectivesOptions &options);

/// The timeout of the process's collectives (openCollectives), or the
/// default of CollectivesOptions when none are open.
double openedCollectivesTimeout();

} // namespace v4::rt

#endif // V4_RUNTIME_SRC_COMM_COLLECTIVES_H
