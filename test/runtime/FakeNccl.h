//===- FakeNccl.h - what the fake NCCL library records ----------*- C++ -*-===//
//
// The record of FakeNccl.cpp (built as libnccl.so.2 for NcclCollectivesTest),
// read through the fakeNcclRecord() symbol.
//
//===----------------------------------------------------------------------===//
#ifndef V4_TEST_RUNTIME_FAKENCCL_H
#define V4_TEST_RUNTIME_FAKENCCL_H

#include <cstddef>

namespace v4::testing {

/// One collective: "all_reduce", "all_gather" or "reduce_scatter", its
/// buffers, count, NCCL data type and stream.
struct FakeNcclCall {
  const char *what = "";
  const void *send = nullptr;
  void *recv = nullptr;
  size_t count = 0;
  int datatype = -1;
  void *stream = nullptr;
};

struct FakeNcclRecord {
  /// Communicators made, and those aborted and destroyed.
  int inits = 0, aborts = 0, destroys = 0;
  /// The last initialization's world, rank and config.blocking.
  int nranks = 0, rank = -1, blocking = -1;
  /// Collectives enqueued, and the last one.
  int collectives = 0;
  /// Groups of sends and receives ended, and the bytes they sent.
  int groups = 0;
  size_t groupBytes = 0;
  FakeNcclCall call;
};

} // namespace v4::testing

#endif // V4_TEST_RUNTIME_FAKENCCL_H
