//===- CollectivesTest.cpp - the collectives on one rank ------------------===//
//
// The single engine, argument and option errors, the launch environment
// (RT-10), the MPI plugin's lookup and an MPI world of one. The collectives
// are opened once per process, so every test that opens them runs in a
// child process (a death test of the "threadsafe" style: the test binary
// re-run), with the launch variables cleared and its own set. The MPI
// engine across real ranks: CollectivesMpiTest.cpp, collectives-mpi.test.
//
//===----------------------------------------------------------------------===//
#include "runtime/src/comm/Collectives.h"

#include <gtest/gtest.h>

#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

using namespace v4;
using namespace v4::rt;

namespace {

/// The variables openCollectives reads.
const char *const kLaunchVariables[] = {"OMPI_COMM_WORLD_SIZE",
                                        "OMPI_COMM_WORLD_RANK",
                                        "PMI_SIZE",
                                        "PMI_RANK",
                                        "PMIX_RANK",
                                        "RANK",
                                        "WORLD_SIZE",
                                        "V4RT_MPI_PLUGIN"};

/// Failed expectations of a child, reported as its exit.
struct Checks {
  std::string failures;
  void expect(bool ok, const std::string &what) {
    if (!ok)
      failures += what + "\n";
  }
  void expectError(const Status &s, StatusCode code, const char *rule,
                   const std::string &message, const std::string &what) {
    expect(!s.ok() && s.code() == code && s.rule() == rule &&
               s.message().find(message) != std::string::npos,
           what + ": expected [" + rule + "] '" + message + "', got '" +
               s.message() + "'");
  }
};

/// Runs `body` in a child process with only `env` of the launch variables
/// set; the test fails with the child's failures.
void inChild(std::vector<std::pair<const char *, std::string>> env,
             const std::function<void(Checks &)> &body) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        for (const char *name : kLaunchVariables)
          unsetenv(name);
        for (auto &[name, value] : env)
          setenv(name, value.c_str(), 1);
        Checks checks;
        body(checks);
        std::fprintf(stderr, "%s", checks.failures.c_str());
        std::exit(checks.failures.empty() ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

CollectivesOptions options(const char *engine, double timeout = 300) {
  CollectivesOptions o;
  o.engine = engine;
  o.timeoutSeconds = timeout;
  return o;
}

/// Opens the collectives with `engine` and `timeout`; null unless they open
/// as rank 0 of a world of one of engine `expected`.
Collectives *openWorldOfOne(Checks &t, const char *engine, double timeout,
                            const char *expected) {
  auto opened = openCollectives(options(engine, timeout));
  t.expect(opened.ok(), "open: " + opened.status().message());
  if (!opened.ok())
    return nullptr;
  Collectives *c = opened->get();
  t.expect(std::strcmp(c->engine(), expected) == 0 && c->rank() == 0 &&
               c->world() == 1,
           std::string("rank 0 of 1, engine ") + expected);
  return c;
}

} // namespace

TEST(Collectives, OptionsAreCheckedFirst) {
  for (double timeout : {0.0, -1.0, std::nan(""), HUGE_VAL}) {
    auto c = openCollectives(options("auto", timeout));
    ASSERT_FALSE(c.ok()) << timeout;
    EXPECT_EQ(c.status().code(), StatusCode::InvalidArgument);
    EXPECT_EQ(c.status().rule(), "ARG");
    EXPECT_NE(c.status().message().find("CollectivesOptions.timeoutSeconds"),
              std::string::npos)
        << c.status().message();
  }
  auto c = openCollectives(options("nccl"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "CollectivesOptions.engine 'nccl': expected "
                                  "auto, single or mpi [ARG]");
}

TEST(Collectives, SingleRankIsAutoWithoutALauncher) {
  inChild({}, [](Checks &t) {
    Collectives *opened = openWorldOfOne(t, "auto", 300, "single");
    if (!opened)
      return;
    Collectives &c = *opened;
    // Collectives of one rank leave the data as it is.
    float f[2] = {1.5f, -0.0f};
    uint16_t b[2] = {0x0001, 0x7F7F};
    int64_t l[2] = {INT64_MIN, 7};
    t.expect(c.allReduceSum(f, 2, DType::F32).ok() &&
                 c.allReduceSum(b, 2, DType::BF16).ok() &&
                 c.allReduceSum(l, 2, DType::I64).ok() &&
                 c.allReduceSum(nullptr, 0, DType::F32).ok() &&
                 c.broadcast(l, sizeof l, 0).ok() &&
                 c.broadcast(nullptr, 0, 0).ok() && c.barrier().ok(),
             "collectives succeed");
    t.expect(f[0] == 1.5f && std::signbit(f[1]) && b[0] == 1 &&
                 b[1] == 0x7F7F && l[0] == INT64_MIN && l[1] == 7,
             "data unchanged");

    // Argument errors.
    t.expectError(c.allReduceSum(f, 2, DType::F16), StatusCode::InvalidArgument,
                  "ARG",
                  "all_reduce: dtype f16 is not summed by the collectives "
                  "(f32, bf16, i64)",
                  "f16");
    t.expectError(c.allReduceSum(f, SIZE_MAX / 2, DType::F32),
                  StatusCode::InvalidArgument, "ARG",
                  "elements of f32 overflow the address space", "overflow");
    t.expectError(c.allReduceSum(nullptr, 3, DType::I64),
                  StatusCode::InvalidArgument, "ARG",
                  "all_reduce: null data for 3 elements", "null sum");
    t.expectError(c.broadcast(f, 4, 1), StatusCode::InvalidArgument, "ARG",
                  "broadcast: root 1 is not a rank of a world of 1", "root 1");
    t.expectError(c.broadcast(f, 4, -1), StatusCode::InvalidArgument, "ARG",
                  "root -1", "root -1");
    t.expectError(c.broadcast(nullptr, 4, 0), StatusCode::InvalidArgument,
                  "ARG", "broadcast: null data for 4 bytes", "null broadcast");

    // A world of one gathers and reduce-scatters its own block: a copy of
    // every dtype's bits (NaN payloads, -0 and subnormals included).
    {
      uint32_t f32[3] = {0x7FC01234, 0x80000000, 0x00000001};
      uint16_t b16[3] = {0xFFC1, 0x8000, 0x0001};
      int64_t i64[3] = {INT64_MIN, -5, INT64_MAX};
      int32_t i32[3] = {INT32_MIN, -5, INT32_MAX};
      struct Case {
        DType dtype;
        const void *data;
        size_t bytes;
        bool summed;
      };
      for (Case k : {Case{DType::F32, f32, sizeof f32, true},
                     Case{DType::BF16, b16, sizeof b16, true},
                     Case{DType::I64, i64, sizeof i64, true},
                     Case{DType::I32, i32, sizeof i32, false}})
        for (bool gather : {true, false}) {
          if (!gather && !k.summed)
            continue;
          std::vector<unsigned char> to(k.bytes, 0xEE);
          Status s = gather ? c.allGather(k.data, to.data(), 3, k.dtype)
                            : c.reduceScatterSum(k.data, to.data(), 3, k.dtype);
          t.expect(s.ok() && std::memcmp(k.data, to.data(), k.bytes) == 0,
                   std::string(dtypeName(k.dtype)) +
                       (gather ? " gather" : " reduce-scatter") + " of one");
        }
      // Only `count` elements are written.
      int32_t wide[4] = {1, 2, 3, 4}, wideTo[4] = {9, 9, 9, 9};
      t.expect(c.allGather(wide, wideTo, 2, DType::I32).ok() &&
                   wideTo[0] == 1 && wideTo[1] == 2 && wideTo[2] == 9 &&
                   wideTo[3] == 9,
               "a gather writes world * count elements");
      t.expect(c.allGather(nullptr, nullptr, 0, DType::F32).ok() &&
                   c.reduceScatterSum(nullptr, nullptr, 0, DType::BF16).ok(),
               "empty gather and reduce-scatter");
      // Adjacent buffers do not overlap.
      int64_t pair[6] = {1, 2, 3, 0, 0, 0};
      t.expect(c.allGather(pair, pair + 3, 3, DType::I64).ok() &&
                   c.reduceScatterSum(pair + 3, pair, 3, DType::I64).ok() &&
                   pair[0] == 1 && pair[4] == 2 && pair[5] == 3,
               "adjacent buffers");
    }
    int64_t from[3] = {4, -5, 6}, to[3] = {};
    t.expectError(c.allGather(from, from, 3, DType::I64),
                  StatusCode::InvalidArgument, "ARG",
                  "all_gather: send and receive buffers overlap", "overlap");
    t.expectError(c.reduceScatterSum(from, from + 1, 2, DType::I64),
                  StatusCode::InvalidArgument, "ARG",
                  "reduce_scatter: send and receive buffers overlap",
                  "partial overlap");
    t.expectError(c.allGather(from, to, 3, DType::F16),
                  StatusCode::InvalidArgument, "ARG",
                  "all_gather: dtype f16 is not gathered by the collectives "
                  "(f32, bf16, i64, i32)",
                  "gather f16");
    t.expectError(c.allGather(from, to, 3, DType::I8),
                  StatusCode::InvalidArgument, "ARG",
                  "all_gather: dtype i8 is not gathered", "gather i8");
    t.expectError(c.reduceScatterSum(from, to, 3, DType::I32),
                  StatusCode::InvalidArgument, "ARG",
                  "reduce_scatter: dtype i32 is not summed by the collectives "
                  "(f32, bf16, i64)",
                  "scatter i32");
    t.expectError(c.reduceScatterSum(nullptr, to, 3, DType::I64),
                  StatusCode::InvalidArgument, "ARG",
                  "reduce_scatter: null send data for 3 elements of i64 per "
                  "rank",
                  "null scatter send");
    t.expectError(c.allGather(from, nullptr, 3, DType::I64),
                  StatusCode::InvalidArgument, "ARG",
                  "all_gather: null receive data for 3 elements of i64 per "
                  "rank",
                  "null gather receive");
    // One MPI call per gather (INT_MAX bytes a rank) and per reduce-scatter
    // (INT_MAX elements a rank); the sizes are checked before the buffers.
    t.expectError(c.allGather(from, to, size_t(INT_MAX) / 8 + 1, DType::I64),
                  StatusCode::InvalidArgument, "ARG",
                  "all_gather: 268435456 elements of i64 per rank exceed what "
                  "one collective moves (INT_MAX bytes per rank): split it",
                  "gather too large");
    t.expect(c.allGather(nullptr, nullptr, size_t(INT_MAX) / 2, DType::BF16)
                     .message()
                     .find("null send data") != std::string::npos,
             "a gather of INT_MAX bytes is not too large");
    t.expectError(
        c.reduceScatterSum(from, to, size_t(INT_MAX) + 1, DType::BF16),
        StatusCode::InvalidArgument, "ARG",
        "reduce_scatter: 2147483648 elements of bf16 per rank "
        "exceed what one collective moves (INT_MAX elements per "
        "rank): split it",
        "reduce-scatter too large");
    t.expectError(c.reduceScatterSum(from, to, SIZE_MAX / 4, DType::I64),
                  StatusCode::InvalidArgument, "ARG",
                  "ranks overflow the address space", "scatter overflow");

    // A world of one sends its first counts[0] rows to itself; the rest of
    // the block is the fill (+0 bits; -1 for i64).
    {
      int64_t rowsIn[4] = {11, 12, 13, 14}, rowsOut[4] = {0, 0, 0, 0};
      int64_t count = 2, got = -1;
      t.expect(
          c.allToAll(&count, rowsIn, &got, rowsOut, 2, 2, DType::I64).ok() &&
              got == 2 && rowsOut[0] == 11 && rowsOut[3] == 14,
          "all-to-all of a whole block");
      count = 1;
      t.expect(
          c.allToAll(&count, rowsIn, &got, rowsOut, 2, 2, DType::I64).ok() &&
              got == 1 && rowsOut[1] == 12 && rowsOut[2] == -1 &&
              rowsOut[3] == -1,
          "all-to-all fills i64 with -1");
      uint16_t b[4] = {0x3F80, 0x8000, 0x7FC1, 1}, bo[4] = {9, 9, 9, 9};
      count = 0;
      t.expect(c.allToAll(&count, b, &got, bo, 4, 1, DType::BF16).ok() &&
                   got == 0 && bo[0] == 0 && bo[3] == 0,
               "all-to-all fills bf16 with +0");
      count = 3;
      t.expectError(c.allToAll(&count, b, &got, bo, 2, 2, DType::BF16),
                    StatusCode::FailedPrecondition, "RT-10",
                    "all_to_all on rank 0 of 1: the count of rows for rank 0 "
                    "is 3, outside [0, 2]; 1 rank(s) sent a row count "
                    "outside [0, 2]: no rows moved",
                    "count beyond the block");
      count = -1;
      t.expectError(c.allToAll(&count, b, &got, bo, 2, 2, DType::BF16),
                    StatusCode::FailedPrecondition, "RT-10", "is -1",
                    "negative count");
      t.expectError(c.allToAll(nullptr, b, &got, bo, 2, 2, DType::BF16),
                    StatusCode::InvalidArgument, "ARG",
                    "all_to_all: null counts", "null counts");
      t.expectError(
          c.allToAll(&count, b, &got, bo, size_t(INT_MAX) + 1, 1, DType::BF16),
          StatusCode::InvalidArgument, "ARG",
          "exceed what one collective moves (INT_MAX rows", "too many rows");
    }

    // One object per process; other options are refused.
    auto again = openCollectives(options("auto"));
    auto single = openCollectives(options("single"));
    t.expect(again.ok() && again->get() == &c && single.ok() &&
                 single->get() == &c,
             "a second open shares the object");
    t.expectError(openCollectives(options("single", 5)).status(),
                  StatusCode::FailedPrecondition, "RT-10",
                  "the process's collectives are open with engine 'single', "
                  "timeout 300 s; asked again with engine 'single', timeout "
                  "5 s",
                  "another timeout");
    t.expectError(openCollectives(options("mpi")).status(),
                  StatusCode::FailedPrecondition, "RT-10",
                  "asked again with engine 'mpi'", "another engine");
  });
}

TEST(Collectives, SingleRankAbortEndsTheProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        for (const char *name : kLaunchVariables)
          unsetenv(name);
        auto c = openCollectives(options("single"));
        if (c.ok())
          (*c)->abort(7);
        std::exit(1);
      },
      ::testing::ExitedWithCode(7), "");
}

TEST(Collectives, WorldSizeNeedsAnMpiLauncher) {
  for (const char *engine : {"auto", "single", "mpi"})
    inChild({{"WORLD_SIZE", "2"}, {"RANK", "1"}}, [engine](Checks &t) {
      auto c = openCollectives(options(engine));
      t.expect(!c.ok() &&
                   c.status().message() ==
                       "WORLD_SIZE=2 but this process was not started by an "
                       "MPI launcher: run it with mpirun -np 2 [RT-10]",
               std::string(engine) + ": " + c.status().message());
    });
}

TEST(Collectives, MalformedLaunchVariables) {
  struct Case {
    const char *name, *value, *message;
  };
  for (Case k :
       {Case{"WORLD_SIZE", "two",
             "WORLD_SIZE='two' is not a whole "
             "number >= 1"},
        Case{"WORLD_SIZE", "0", "WORLD_SIZE='0'"},
        Case{"RANK", "-1", "RANK='-1' is not a whole number >= 0"},
        Case{"OMPI_COMM_WORLD_SIZE", "4x", "OMPI_COMM_WORLD_SIZE='4x'"},
        Case{"PMI_SIZE", "99999999999", "PMI_SIZE='99999999999'"}})
    inChild({{k.name, k.value}}, [k](Checks &t) {
      t.expectError(openCollectives(options("single")).status(),
                    StatusCode::FailedPrecondition, "RT-10", k.message, k.name);
    });
  inChild({{"WORLD_SIZE", "1"}, {"RANK", "1"}}, [](Checks &t) {
    t.expectError(openCollectives(options("auto")).status(),
                  StatusCode::FailedPrecondition, "RT-10",
                  "RANK=1 is not a rank of WORLD_SIZE=1", "rank >= world");
  });
  // A world of one is a single rank.
  inChild({{"WORLD_SIZE", "1"}, {"RANK", "0"}}, [](Checks &t) {
    auto c = openCollectives(options("auto"));
    t.expect(c.ok() && std::strcmp((*c)->engine(), "single") == 0,
             "WORLD_SIZE=1: " + c.status().message());
  });
}

TEST(Collectives, SingleUnderAMultiRankLauncher) {
  for (auto [name, value] :
       {std::pair{"OMPI_COMM_WORLD_SIZE", "2"}, std::pair{"PMI_SIZE", "4"},
        std::pair{"PMIX_RANK", "1"}})
    inChild({{name, value}}, [name = name, value = value](Checks &t) {
      t.expectError(openCollectives(options("single")).status(),
                    StatusCode::FailedPrecondition, "RT-10",
                    std::string("engine 'single' but ") + name + "=" + value +
                        ": an MPI launcher started this process as one of "
                        "several ranks",
                    name);
    });
  // A launcher's world of one may run single.
  inChild({{"OMPI_COMM_WORLD_SIZE", "1"}}, [](Checks &t) {
    auto c = openCollectives(options("single"));
    t.expect(c.ok() && (*c)->world() == 1, c.status().message());
  });
}

TEST(Collectives, MpiPluginErrors) {
  inChild({{"V4RT_MPI_PLUGIN", "/nonexistent/libv4rt-mpi.so"}}, [](Checks &t) {
    t.expectError(openCollectives(options("mpi")).status(),
                  StatusCode::Unavailable, "RT-10",
                  "V4RT_MPI_PLUGIN=/nonexistent/libv4rt-mpi.so: no "
                  "such file",
                  "missing plugin");
  });
  // Not a shared library: dlopen's own words.
  std::string notALibrary =
      std::string(V4_TEST_SOURCE_DIR) + "/runtime/CollectivesTest.cpp";
  inChild({{"V4RT_MPI_PLUGIN", notALibrary}}, [&](Checks &t) {
    t.expectError(openCollectives(options("mpi")).status(),
                  StatusCode::Unavailable, "RT-10",
                  "dlopen(" + notALibrary + ") failed: " + notALibrary + ":",
                  "not a library");
    // Nothing started: a single rank may still open.
    auto c = openCollectives(options("single"));
    t.expect(c.ok(), "single after a failed mpi: " + c.status().message());
  });
}

#ifdef V4_MPI_PLUGIN
TEST(Collectives, MpiWorldOfOne) {
  // MPI's singleton init, finalized by the plugin's exit handler. The child
  // (re-executed: it reads the environment at start) runs without the
  // sanitizer's exit-time leak check: Open MPI dlclose()s its components in
  // MPI_Finalize, so what they keep is reported from unknown modules that
  // no suppression can name (test/lit.cfg.py does the same for %mpirun).
  const char *asan = std::getenv("ASAN_OPTIONS");
  std::string saved = asan ? asan : "";
  setenv("ASAN_OPTIONS",
         (saved.empty() ? "" : saved + ":").append("detect_leaks=0").c_str(),
         1);
  inChild(
      {{"V4RT_MPI_PLUGIN", V4_MPI_PLUGIN}, {"WORLD_SIZE", "1"}, {"RANK", "0"}},
      [](Checks &t) {
        Collectives *opened = openWorldOfOne(t, "mpi", 30, "mpi");
        if (!opened)
          return;
        Collectives &c = *opened;
        uint16_t b[3] = {0x0001, 0x7F7F, 0xBF80};
        int64_t l = -5;
        t.expect(c.allReduceSum(b, 3, DType::BF16).ok() &&
                     c.allReduceSum(&l, 1, DType::I64).ok() &&
                     c.broadcast(b, sizeof b, 0).ok() && c.barrier().ok(),
                 "collectives succeed");
        t.expect(b[0] == 1 && b[1] == 0x7F7F && b[2] == 0xBF80 && l == -5,
                 "data unchanged");
        t.expectError(c.broadcast(b, 2, 1), StatusCode::InvalidArgument, "ARG",
                      "root 1", "root 1");
        auto again = openCollectives(options("auto", 30));
        t.expect(again.ok() && again->get() == &c, "shared");
      });
  if (asan)
    setenv("ASAN_OPTIONS", saved.c_str(), 1);
  else
    unsetenv("ASAN_OPTIONS");
}
#else
TEST(Collectives, MpiEngineNotBuilt) {
  inChild({}, [](Checks &t) {
    t.expectError(openCollectives(options("mpi")).status(),
                  StatusCode::Unavailable, "RT-10",
                  "the MPI engine (libv4rt-mpi.so) was not built: install "
                  "libopenmpi-dev and rebuild",
                  "not built");
  });
}
#endif
