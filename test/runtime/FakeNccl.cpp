//===- FakeNccl.cpp - an NCCL library for a world of one, for tests -------===//
//
// Built as libnccl.so.2 (test/fake-nccl/) for NcclCollectivesTest, which
// points V4RT_NCCL_LIBRARY at it: the entry points the NCCL engine
// (runtime/src/comm/NcclCollectives.cpp) resolves, on FakeCUDADriver's
// "device memory" (host memory). Each collective of rank r copies what a
// world of one gives (the all-gather writes block r, the reduce-scatter
// reads block r; a group's sends and receives, all with rank r itself, pair
// up in order at ncclGroupEnd) and completes at once. V4_FAKE_NCCL picks a
// failure:
//   old          ncclGetVersion says 2.10.0
//   init-hang    the non-blocking initialization never completes
//   init-error   the initialization fails (ncclSystemError)
//   hang         a collective never completes (ncclInProgress forever)
//   async-error  a collective fails later (ncclRemoteError)
//   refuse       a collective is refused (ncclInvalidArgument)
// Every call is recorded (FakeNccl.h, fakeNcclRecord()).
//
//===----------------------------------------------------------------------===//
#include "test/runtime/FakeNccl.h"
#include "runtime/src/comm/NcclAbi.h"

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {
using namespace v4::rt::nccl;
using ncclResult = Result;

v4::testing::FakeNcclRecord record;

struct FakeComm {
  int nranks = 1, rank = 0;
  bool initialized = false;
  /// The state ncclCommGetAsyncError reports.
  ncclResult state = kSuccess;
};

/// The sends and receives of the open group (ncclGroupStart).
struct PointToPoint {
  const void *send = nullptr;
  void *recv = nullptr;
  size_t bytes = 0;
  int peer = 0;
};
std::vector<PointToPoint> groupSends, groupRecvs;
bool inGroup = false;

std::string mode() {
  const char *m = std::getenv("V4_FAKE_NCCL");
  return m ? m : "";
}

size_t width(int datatype) {
  switch (datatype) {
  case kInt8:
    return 1;
  case kBfloat16:
    return 2;
  case kInt64:
    return 8;
  default: // ncclFloat32
    return 4;
  }
}

ncclResult collective(const char *what, const void *send, void *recv,
                      size_t count, int datatype, void *comm, void *stream,
                      size_t copyFrom, size_t copyTo) {
  auto *c = static_cast<FakeComm *>(comm);
  record.collectives++;
  record.call = {what, send, recv, count, datatype, stream};
  std::string m = mode();
  if (m == "refuse")
    return kInvalidArgument;
  size_t bytes = count * width(datatype);
  if (bytes && send != recv)
    std::memmove(static_cast<char *>(recv) + copyTo * bytes,
                 static_cast<const char *>(send) + copyFrom * bytes, bytes);
  if (m == "hang") {
    c->state = kInProgress;
    return kInProgress;
  }
  if (m == "async-error")
    c->state = kRemoteError;
  return kSuccess;
}
} // namespace

extern "C" {
__attribute__((visibility("default"))) const void *fakeNcclRecord() {
  return &record;
}

ncclResult ncclGetVersion(int *version) {
  *version = mode() == "old" ? 21000 : 22809;
  return kSuccess;
}
const char *ncclGetErrorString(ncclResult r) {
  switch (r) {
  case kSystemError:
    return "unhandled system error (fake)";
  case kInvalidArgument:
    return "invalid argument (fake)";
  case kRemoteError:
    return "remote process exited or there was a network error (fake)";
  default:
    return "fake NCCL error";
  }
}
const char *ncclGetLastError(void *) { return "the fake's last error"; }
ncclResult ncclGetUniqueId(UniqueId *id) {
  std::memset(id, 7, sizeof *id);
  return kSuccess;
}

ncclResult ncclCommInitRankConfig(void **comm, int nranks, UniqueId, int rank,
                                  Config *config) {
  auto *c = new FakeComm;
  c->nranks = nranks;
  c->rank = rank;
  *comm = c;
  record.inits++;
  record.nranks = nranks;
  record.rank = rank;
  record.blocking = config ? config->blocking : -1;
  std::string m = mode();
  if (m == "init-hang") {
    c->state = kInProgress;
    return kInProgress;
  }
  if (m == "init-error") {
    c->state = kSystemError;
    return kInProgress;
  }
  return kSuccess;
}
ncclResult ncclCommGetAsyncError(void *comm, ncclResult *state) {
  *state = static_cast<FakeComm *>(comm)->state;
  return kSuccess;
}
ncclResult ncclCommAbort(void *comm) {
  record.aborts++;
  delete static_cast<FakeComm *>(comm);
  return kSuccess;
}
ncclResult ncclCommDestroy(void *comm) {
  record.destroys++;
  delete static_cast<FakeComm *>(comm);
  return kSuccess;
}

ncclResult ncclAllReduce(const void *send, void *recv, size_t count,
                         int datatype, int, void *comm, void *stream) {
  return collective("all_reduce", send, recv, count, datatype, comm, stream, 0,
                    0);
}
ncclResult ncclAllGather(const void *send, void *recv, size_t count,
                         int datatype, void *comm, void *stream) {
  return collective("all_gather", send, recv, count, datatype, comm, stream, 0,
                    size_t(static_cast<FakeComm *>(comm)->rank));
}
ncclResult ncclReduceScatter(const void *send, void *recv, size_t count,
                             int datatype, int, void *comm, void *stream) {
  return collective("reduce_scatter", send, recv, count, datatype, comm, stream,
                    size_t(static_cast<FakeComm *>(comm)->rank), 0);
}
ncclResult ncclGroupStart() {
  inGroup = true;
  groupSends.clear();
  groupRecvs.clear();
  return kSuccess;
}
ncclResult ncclSend(const void *send, size_t count, int datatype, int peer,
                    void *, void *) {
  if (!inGroup)
    return kInvalidUsage;
  groupSends.push_back({send, nullptr, count * width(datatype), peer});
  return kSuccess;
}
ncclResult ncclRecv(void *recv, size_t count, int datatype, int peer, void *,
                    void *) {
  if (!inGroup)
    return kInvalidUsage;
  groupRecvs.push_back({nullptr, recv, count * width(datatype), peer});
  return kSuccess;
}
/// A world of one: the i-th send pairs with the i-th receive, of the same
/// size (every peer is rank 0); the group counts as one collective.
ncclResult ncclGroupEnd() {
  inGroup = false;
  if (groupSends.size() != groupRecvs.size())
    return kInvalidUsage;
  for (size_t i = 0; i < groupSends.size(); ++i)
    if (groupSends[i].bytes != groupRecvs[i].bytes || groupSends[i].peer != 0 ||
        groupRecvs[i].peer != 0)
      return kInvalidUsage;
  record.groups++;
  for (size_t i = 0; i < groupSends.size(); ++i)
    record.groupBytes += groupSends[i].bytes;
  std::string m = mode();
  if (m == "refuse")
    return kInvalidArgument;
  for (size_t i = 0; i < groupSends.size(); ++i)
    if (groupSends[i].bytes)
      std::memmove(groupRecvs[i].recv, groupSends[i].send, groupSends[i].bytes);
  return kSuccess;
}
}
