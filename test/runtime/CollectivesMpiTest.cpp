//===- CollectivesMpiTest.cpp - the MPI engine across real ranks ----------===//
//
// Run by test/runtime/collectives-mpi.test under mpirun (and alone for the
// singleton world). One mode per run:
//
//   basic          sums (f32, bf16, i64; bf16 bit-exact where one rank holds
//                  the value, the same bits on every rank), gathers (f32,
//                  bf16, i64, i32: every rank's bits in rank order, the same
//                  on every rank), reduce-scatters (f32 and i64 exact, bf16
//                  and f32 bit-exact where one rank holds the value, bf16
//                  near the exact sum), broadcasts from every root, a
//                  barrier that waits, argument errors, the shared object;
//                  rank 0 prints the checks and failures
//   singleton      engine "mpi" without a launcher: a world of one
//   timeout-abort  rank 1 skips a sum that rank 0 enters (timeout 2 s):
//                  rank 0 gets RT-10 in time, later calls (a barrier, a
//                  gather, a reduce-scatter) fail at once, and
//                  abort(3) ends both ranks (rank 1 waits in MPI_Finalize)
//   timeout-exit   the same, but rank 0 returns from main: the exit handler
//                  ends every rank with MPI_Abort(1) instead of finalizing
//   timeout-stop   the same, rank 1 stopped (SIGSTOP) instead of finalizing
//   expect-error   opening engine "mpi" fails with RT-10 saying argv[2]
//                  (WORLD_SIZE disagreeing with mpirun, a missing plugin)
//
// Exit status 0 when every check passed.
//
//===----------------------------------------------------------------------===//
#include "runtime/numerics/Numerics.h"
#include "runtime/src/comm/Collectives.h"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <climits>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace v4;
using namespace v4::rt;

namespace {

using Clock = std::chrono::steady_clock;

int rankForMessages = -1;
int64_t checks = 0, failures = 0;

void check(bool ok, const std::string &what) {
  ++checks;
  if (ok)
    return;
  ++failures;
  std::fprintf(stderr, "rank %d: FAILED: %s\n", rankForMessages, what.c_str());
}

void checkOk(const Status &s, const std::string &what) {
  check(s.ok(), what + ": " + s.message());
}

void checkError(const Status &s, const char *rule, const std::string &needle,
                const std::string &what) {
  check(!s.ok() && s.rule() == rule &&
            s.message().find(needle) != std::string::npos,
        what + ": expected [" + rule + "] with '" + needle + "', got '" +
            s.message() + "'");
}

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int envInt(const char *name) {
  const char *text = std::getenv(name);
  return text ? std::atoi(text) : -1;
}

/// Whether `bytes` bytes at `data` are rank 0's bits (a collective: every
/// rank calls it).
bool sameAsRank0(Collectives &c, const void *data, size_t bytes) {
  std::vector<unsigned char> ofRank0(static_cast<const unsigned char *>(data),
                                     static_cast<const unsigned char *>(data) +
                                         bytes);
  Status s = c.broadcast(ofRank0.data(), bytes, 0);
  checkOk(s, "broadcast of rank 0's bits");
  return s.ok() &&
         (bytes == 0 || std::memcmp(ofRank0.data(), data, bytes) == 0);
}

/// Arbitrary bits of element `i` of rank `rank`'s block (any pattern: the
/// gather moves bytes).
uint64_t bitsOf(int rank, size_t i) {
  uint64_t z = (uint64_t(rank) << 40) + i + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// Gathers of every dtype: every rank's block in rank order, its bits
/// exactly (NaN payloads included), the same on every rank.
void gathers(Collectives &c) {
  int rank = c.rank(), world = c.world();
  const std::pair<DType, size_t> dtypes[] = {
      {DType::F32, 4}, {DType::BF16, 2}, {DType::I64, 8}, {DType::I32, 4}};
  for (auto [dtype, width] : dtypes)
    for (size_t n : {size_t(1), size_t(1001), size_t(1) << 16}) {
      std::string what = std::string(dtypeName(dtype)) + " gather of " +
                         std::to_string(n) + " per rank";
      std::vector<unsigned char> mine(n * width);
      for (size_t i = 0; i < n; ++i) {
        uint64_t bits = bitsOf(rank, i);
        std::memcpy(&mine[i * width], &bits, width);
      }
      std::vector<unsigned char> all(n * width * size_t(world), 0xEE);
      checkOk(c.allGather(mine.data(), all.data(), n, dtype), what);
      size_t bad = 0;
      for (int r = 0; r < world; ++r)
        for (size_t i = 0; i < n; ++i) {
          uint64_t bits = bitsOf(r, i);
          bad +=
              std::memcmp(&all[(size_t(r) * n + i) * width], &bits, width) != 0;
        }
      check(bad == 0, what + ": " + std::to_string(bad) + " wrong elements");
      check(sameAsRank0(c, all.data(), all.size()),
            what + ": bits differ from rank 0's");
    }
  checkOk(c.allGather(nullptr, nullptr, 0, DType::I32), "empty gather");

  // Argument errors run no collective (the ranks stay in step): `send`
  // inside the last block of `recv`; more than INT_MAX bytes a rank.
  std::vector<int64_t> all(3 * size_t(world));
  checkError(c.allGather(all.data() + 3 * size_t(world - 1), all.data(), 3,
                         DType::I64),
             "ARG", "all_gather: send and receive buffers overlap",
             "overlapping gather");
  checkError(
      c.allGather(all.data(), all.data(), size_t(INT_MAX) / 4 + 1, DType::F32),
      "ARG", "exceed what one collective moves (INT_MAX bytes",
      "gather too large");
}

/// Reduce-scatters: rank q gets block q of the sum; f32 and i64 exact
/// (integers; i64 past 2^53), bf16 and f32 the exact bits where one rank
/// holds the element, bf16 of every rank's values near the exact sum.
void reduceScatters(Collectives &c) {
  int rank = c.rank(), world = c.world();
  size_t w = size_t(world);
  int64_t triangle = int64_t(world) * (world + 1) / 2;
  for (size_t n : {size_t(1), size_t(1000), size_t(1) << 16}) {
    std::string of = " reduce-scatter of " + std::to_string(n) + " per rank";
    // The element of block q at i is element e = q * n + i of the sum.
    size_t mine = size_t(rank) * n;

    std::vector<float> f(n * w), fr(n, -1.0f);
    for (size_t e = 0; e < f.size(); ++e)
      f[e] = float((rank + 1) * int(e % 13) - (e % 2 ? 40 : 0));
    checkOk(c.reduceScatterSum(f.data(), fr.data(), n, DType::F32), "f32" + of);
    size_t bad = 0;
    for (size_t i = 0; i < n; ++i) {
      size_t e = mine + i;
      bad += fr[i] != float(triangle * int64_t(e % 13) -
                            (e % 2 ? 40 * int64_t(world) : 0));
    }
    check(bad == 0, "f32" + of + ": " + std::to_string(bad) + " wrong");

    std::vector<int64_t> l(n * w), lr(n, -1);
    for (size_t e = 0; e < l.size(); ++e)
      l[e] = (int64_t(rank + 1) << 54) + 3 * int64_t(e) - rank;
    checkOk(c.reduceScatterSum(l.data(), lr.data(), n, DType::I64), "i64" + of);
    bad = 0;
    for (size_t i = 0; i < n; ++i) {
      int64_t e = int64_t(mine + i);
      bad += lr[i] != (triangle << 54) + int64_t(world) * 3 * e -
                          int64_t(world) * (world - 1) / 2;
    }
    check(bad == 0, "i64" + of + ": " + std::to_string(bad) + " wrong");

    // One holder per element (rank e % world, so each block has every
    // rank's values): its bits, exactly; normal, subnormal, largest finite,
    // negative values, never NaN, infinity or a zero.
    std::vector<uint16_t> b(n * w, 0), br(n, 0xFFFF);
    std::vector<uint32_t> g(n * w, 0), gr(n, 0xFFFFFFFF);
    auto bf16Of = [](size_t e) {
      uint16_t v = uint16_t(bitsOf(-1, e));
      return (v & 0x7F80) == 0x7F80 || (v & 0x7FFF) == 0 ? uint16_t(0x7F7F) : v;
    };
    auto f32Of = [](size_t e) {
      uint32_t v = uint32_t(bitsOf(-2, e));
      return (v & 0x7F800000) == 0x7F800000 || (v & 0x7FFFFFFF) == 0
                 ? uint32_t(0x00000001)
                 : v;
    };
    for (size_t e = 0; e < b.size(); ++e)
      if (int(e % w) == rank) {
        b[e] = bf16Of(e);
        g[e] = f32Of(e);
      }
    checkOk(c.reduceScatterSum(b.data(), br.data(), n, DType::BF16),
            "bf16 one-holder" + of);
    checkOk(c.reduceScatterSum(g.data(), gr.data(), n, DType::F32),
            "f32 one-holder" + of);
    size_t badB = 0, badG = 0;
    for (size_t i = 0; i < n; ++i) {
      badB += br[i] != bf16Of(mine + i);
      badG += gr[i] != f32Of(mine + i);
    }
    check(badB == 0, "bf16 one-holder" + of + ": " + std::to_string(badB) +
                         " not the holder's bits");
    check(badG == 0, "f32 one-holder" + of + ": " + std::to_string(badG) +
                         " not the holder's bits");

    // bf16 of every rank's values: near the exact sum; the blocks gathered
    // are the same bits on every rank.
    std::vector<uint16_t> m(n * w), mr(n);
    std::vector<double> exact(n, 0.0);
    for (int r = 0; r < world; ++r)
      for (size_t e = 0; e < m.size(); ++e) {
        uint16_t v = quant::encodeBF16(
            float(int64_t(bitsOf(r + 100, e) % 8001) - 4000) / 1000.0f);
        if (r == rank)
          m[e] = v;
        if (e >= mine && e < mine + n)
          exact[e - mine] += quant::decodeBF16(v);
      }
    checkOk(c.reduceScatterSum(m.data(), mr.data(), n, DType::BF16),
            "bf16 mixed" + of);
    bad = 0;
    for (size_t i = 0; i < n; ++i)
      bad += std::fabs(quant::decodeBF16(mr[i]) - exact[i]) > 0.02 * world * 4;
    check(bad == 0, "bf16 mixed" + of + ": " + std::to_string(bad) +
                        " far from the exact sum");
    std::vector<uint16_t> sum(n * w);
    checkOk(c.allGather(mr.data(), sum.data(), n, DType::BF16),
            "gather of the bf16 blocks");
    check(sameAsRank0(c, sum.data(), sum.size() * 2),
          "bf16 mixed" + of + ": the gathered sum differs from rank 0's");
  }
  checkOk(c.reduceScatterSum(nullptr, nullptr, 0, DType::I64),
          "empty reduce-scatter");

  std::vector<int64_t> send(3 * w);
  checkError(
      c.reduceScatterSum(send.data(), send.data() + 3 * (w - 1), 3, DType::I64),
      "ARG", "reduce_scatter: send and receive buffers overlap",
      "overlapping reduce-scatter");
  checkError(c.reduceScatterSum(send.data(), send.data(), 3, DType::I32), "ARG",
             "reduce_scatter: dtype i32 is not summed", "i32 reduce-scatter");
  checkError(c.reduceScatterSum(send.data(), nullptr, size_t(INT_MAX) + 1,
                                DType::BF16),
             "ARG", "exceed what one collective moves (INT_MAX elements",
             "reduce-scatter too large");
}

/// All-to-alls: rank r sends rank q (q + r) % 5 rows (capped at the block)
/// whose elements say (sender, receiver, row, column); the rest of every
/// received block is the fill (+0 bits; -1 for i64). A bad count on one
/// rank is an error on every rank and moves nothing.
void allToAlls(Collectives &c) {
  int rank = c.rank(), world = c.world();
  size_t w = size_t(world);
  auto sent = [&](int from, int to) { return int64_t((to + from) % 5); };
  for (size_t rows : {size_t(0), size_t(3), size_t(6)})
    for (DType dtype : {DType::I64, DType::F32, DType::BF16}) {
      size_t cols = 3, width = dtype == DType::I64   ? 8
                               : dtype == DType::F32 ? 4
                                                     : 2;
      std::string of = std::string(" all-to-all of ") + dtypeName(dtype) +
                       ", " + std::to_string(rows) + " rows";
      auto element = [&](int from, int to, size_t row, size_t col) {
        return uint64_t(from * 1000 + to * 100 + int(row) * 10 + int(col) + 1);
      };
      auto store = [&](std::vector<unsigned char> &b, size_t at, uint64_t v) {
        std::memcpy(b.data() + at * width, &v, width);
      };
      std::vector<int64_t> counts(w), got(w, -7);
      std::vector<unsigned char> send(w * rows * cols * width, 0xAB),
          recv(w * rows * cols * width, 0xCD);
      for (int q = 0; q < world; ++q) {
        counts[size_t(q)] = std::min<int64_t>(sent(rank, q), int64_t(rows));
        for (size_t i = 0; i < rows; ++i)
          for (size_t j = 0; j < cols; ++j)
            store(send, (size_t(q) * rows + i) * cols + j,
                  element(rank, q, i, j));
      }
      checkOk(c.allToAll(counts.data(), send.data(), got.data(), recv.data(),
                         rows, cols, dtype),
              of);
      int64_t bad = 0;
      for (int q = 0; q < world; ++q) {
        int64_t n = std::min<int64_t>(sent(q, rank), int64_t(rows));
        bad += got[size_t(q)] != n;
        for (size_t i = 0; i < rows; ++i)
          for (size_t j = 0; j < cols; ++j) {
            std::vector<unsigned char> want(width,
                                            dtype == DType::I64 ? 0xff : 0);
            if (int64_t(i) < n) {
              uint64_t v = element(q, rank, i, j);
              std::memcpy(want.data(), &v, width);
            }
            bad += std::memcmp(recv.data() +
                                   ((size_t(q) * rows + i) * cols + j) * width,
                               want.data(), width) != 0;
          }
      }
      check(bad == 0,
            std::to_string(bad) + " wrong counts or elements in" + of);
    }
  // A count beyond the block on the last rank stops every rank.
  std::vector<int64_t> counts(w, 1), got(w);
  std::vector<int64_t> send(w * 2), recv(w * 2, 5);
  if (rank == world - 1)
    counts[0] = 3;
  Status s = c.allToAll(counts.data(), send.data(), got.data(), recv.data(), 2,
                        1, DType::I64);
  checkError(s, "RT-10",
             "1 rank(s) sent a row count outside [0, 2]: no rows moved",
             "a bad count");
  check(recv[0] == 5, "a refused all-to-all moved rows");
  if (rank == world - 1)
    check(s.message().find("the count of rows for rank 0 is 3, outside "
                           "[0, 2]") != std::string::npos,
          "the bad rank names its count: " + s.message());
  checkError(c.allToAll(counts.data(), send.data(), got.data(), send.data(), 2,
                        1, DType::I64),
             "ARG", "all_to_all: send and receive buffers overlap",
             "overlapping all-to-all");
  checkError(c.allToAll(counts.data(), send.data(), got.data(), recv.data(), 2,
                        1, DType::I32),
             "ARG", "all_to_all: dtype i32 is not sent", "i32 all-to-all");
}

void basic(Collectives &c) {
  int rank = c.rank(), world = c.world();
  check(std::strcmp(c.engine(), "mpi") == 0,
        std::string("engine ") + c.engine());
  check(world == envInt("OMPI_COMM_WORLD_SIZE"), "world vs mpirun");
  check(rank == envInt("OMPI_COMM_WORLD_RANK"), "rank vs mpirun");

  // The one object of the process.
  auto again = openCollectives(CollectivesOptions{"auto", 60});
  check(again.ok() && again->get() == &c, "a second open shares the object");
  auto single = openCollectives(CollectivesOptions{"single", 60});
  checkError(single.status(), "RT-10", "open with engine 'mpi'",
             "open again as single");

  // f32 and i64: exact sums; a large f32 sum too.
  for (size_t n : {size_t(1000), size_t(1) << 20}) {
    std::vector<float> f(n);
    for (size_t i = 0; i < n; ++i)
      f[i] = float((rank + 1) * int(i % 7));
    checkOk(c.allReduceSum(f.data(), n, DType::F32), "f32 sum");
    size_t bad = 0;
    for (size_t i = 0; i < n; ++i)
      bad += f[i] != float(world * (world + 1) / 2 * int(i % 7));
    check(bad == 0, "f32 sum of " + std::to_string(n) + ": " +
                        std::to_string(bad) + " wrong");
  }
  std::vector<int64_t> l(777);
  for (size_t i = 0; i < l.size(); ++i)
    l[i] = (int64_t(rank + 1) << 40) - int64_t(i);
  checkOk(c.allReduceSum(l.data(), l.size(), DType::I64), "i64 sum");
  size_t bad = 0;
  for (size_t i = 0; i < l.size(); ++i)
    bad += l[i] != (int64_t(world * (world + 1) / 2) << 40) -
                       int64_t(world) * int64_t(i);
  check(bad == 0, "i64 sum: " + std::to_string(bad) + " wrong");

  // bf16 where one rank holds the value: its bits, exactly (normal,
  // subnormal, largest finite, negative, odd mantissas).
  const uint16_t values[] = {0x3F80, 0xC060, 0x0001, 0x8001, 0x7F7F,
                             0xFF7F, 0x3F81, 0x4049, 0x0080, 0x1234};
  std::mt19937 random(7);
  std::vector<uint16_t> owned(4096), expect(4096);
  for (size_t i = 0; i < owned.size(); ++i) {
    uint16_t v = i < std::size(values) ? values[i] : uint16_t(random());
    if ((v & 0x7F80) == 0x7F80 || v == 0 || v == 0x8000)
      v = 0x3F80; // no NaN, infinity or zero
    expect[i] = v;
    owned[i] = int(i % size_t(world)) == rank ? v : 0;
  }
  checkOk(c.allReduceSum(owned.data(), owned.size(), DType::BF16), "bf16 sum");
  bad = 0;
  for (size_t i = 0; i < owned.size(); ++i)
    bad += owned[i] != expect[i];
  check(bad == 0, "bf16 one-holder sums: " + std::to_string(bad) +
                      " differ from the holder's bits");

  // bf16 sums of every rank's values: near the exact sum, and the same bits
  // on every rank (rank 0's result broadcast and compared).
  std::vector<uint16_t> mixed(3000);
  std::vector<double> exact(mixed.size(), 0.0);
  for (int r = 0; r < world; ++r) {
    std::mt19937 source(100 + unsigned(r));
    std::uniform_real_distribution<float> uniform(-4.0f, 4.0f);
    for (size_t i = 0; i < mixed.size(); ++i) {
      uint16_t v = quant::encodeBF16(uniform(source));
      exact[i] += quant::decodeBF16(v);
      if (r == rank)
        mixed[i] = v;
    }
  }
  checkOk(c.allReduceSum(mixed.data(), mixed.size(), DType::BF16),
          "bf16 mixed sum");
  bad = 0;
  for (size_t i = 0; i < mixed.size(); ++i)
    bad +=
        std::fabs(quant::decodeBF16(mixed[i]) - exact[i]) > 0.02 * world * 4.0;
  check(bad == 0,
        "bf16 mixed sums far from the exact sum: " + std::to_string(bad));
  std::vector<uint16_t> ofRank0 = mixed;
  checkOk(c.broadcast(ofRank0.data(), ofRank0.size() * 2, 0),
          "broadcast of the bf16 sum");
  check(ofRank0 == mixed, "bf16 sum bits differ from rank 0's");
  std::vector<uint16_t> ones(64, 0x3F80);
  checkOk(c.allReduceSum(ones.data(), ones.size(), DType::BF16), "bf16 ones");
  check(quant::decodeBF16(ones[5]) == float(world), "bf16 ones sum to world");

  // Broadcast from every root, and an empty one.
  for (int root = 0; root < world; ++root) {
    std::vector<unsigned char> bytes(4099);
    for (size_t i = 0; i < bytes.size(); ++i)
      bytes[i] = rank == root ? (unsigned char)(i * 31 + root) : 0xEE;
    checkOk(c.broadcast(bytes.data(), bytes.size(), root), "broadcast");
    bad = 0;
    for (size_t i = 0; i < bytes.size(); ++i)
      bad += bytes[i] != (unsigned char)(i * 31 + root);
    check(bad == 0, "broadcast from " + std::to_string(root) + ": " +
                        std::to_string(bad) + " wrong bytes");
  }
  checkOk(c.broadcast(nullptr, 0, world - 1), "empty broadcast");
  checkOk(c.allReduceSum(nullptr, 0, DType::F32), "empty sum");

  gathers(c);
  reduceScatters(c);
  allToAlls(c);

  // A barrier waits for the last rank.
  if (rank == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  Clock::time_point start = Clock::now();
  checkOk(c.barrier(), "barrier");
  if (rank != 0)
    check(secondsSince(start) > 0.2,
          "barrier returned before rank 0 entered it");

  // Argument errors run no collective (the ranks stay in step).
  checkError(c.broadcast(ones.data(), 2, world), "ARG", "root",
             "broadcast root");
  checkError(c.allReduceSum(ones.data(), 2, DType::F16), "ARG", "f16",
             "f16 sum");
  checkError(c.allReduceSum(nullptr, 2, DType::F32), "ARG", "null",
             "null data");

  // Everyone's failures, counted on every rank.
  int64_t total[2] = {failures, checks};
  Status s = c.allReduceSum(total, 2, DType::I64);
  checkOk(s, "failure count");
  if (rank == 0 && s.ok())
    std::printf("collectives: world %d, %" PRId64
                " checks over all ranks, %" PRId64 " failures\n",
                world, total[1], total[0]);
}

void singleton(Collectives &c) {
  check(std::strcmp(c.engine(), "mpi") == 0 && c.rank() == 0 && c.world() == 1,
        "a singleton is rank 0 of 1");
  float f[3] = {1.5f, -2.0f, 3.0f};
  checkOk(c.allReduceSum(f, 3, DType::F32), "f32 sum");
  check(f[0] == 1.5f && f[1] == -2.0f && f[2] == 3.0f, "sum of one rank");
  uint16_t b[2] = {0x0001, 0x7F7F};
  checkOk(c.allReduceSum(b, 2, DType::BF16), "bf16 sum");
  check(b[0] == 0x0001 && b[1] == 0x7F7F, "bf16 sum of one rank");
  checkOk(c.broadcast(f, sizeof f, 0), "broadcast");
  checkOk(c.barrier(), "barrier");
  checkError(c.broadcast(f, sizeof f, 1), "ARG", "root 1", "broadcast root");
  uint16_t g[2] = {};
  checkOk(c.allGather(b, g, 2, DType::BF16), "gather");
  check(g[0] == 0x0001 && g[1] == 0x7F7F, "gather of one rank");
  float r[3] = {};
  checkOk(c.reduceScatterSum(f, r, 3, DType::F32), "reduce-scatter");
  check(std::memcmp(f, r, sizeof f) == 0, "reduce-scatter of one rank");
  allToAlls(c);
  std::printf("singleton: %" PRId64 " checks, %" PRId64 " failures\n", checks,
              failures);
}

/// Rank 1 skips the second sum (or stops); rank 0 times out in it.
void timeout(Collectives &c, bool abortAfter, bool stop) {
  float f[16] = {1};
  checkOk(c.allReduceSum(f, 16, DType::F32), "the first sum");
  if (c.rank() != 0) {
    if (stop)
      raise(SIGSTOP);
    return; // to exit: MPI_Finalize waits for rank 0
  }
  Clock::time_point start = Clock::now();
  Status s = c.allReduceSum(f, 16, DType::F32);
  double seconds = secondsSince(start);
  checkError(s, "RT-10",
             "all_reduce #2 (f32, 16 elements) timed out after 2 s on rank 0 "
             "of 2: another rank stopped or died",
             "the skipped sum");
  check(s.code() == StatusCode::Unavailable, "timeout code");
  check(seconds >= 1.9 && seconds < 4.0,
        "timed out after " + std::to_string(seconds) + " s");
  start = Clock::now();
  checkError(c.barrier(), "RT-10",
             "barrier #3 on rank 0 of 2 not run: the communicator broke at "
             "all_reduce #2",
             "a later barrier");
  check(secondsSince(start) < 0.5, "a later barrier fails at once");
  // The gather and the reduce-scatter are counted and named the same way.
  float to[32];
  checkError(c.allGather(f, to, 16, DType::F32), "RT-10",
             "all_gather #4 (64 bytes per rank) on rank 0 of 2 not run: the "
             "communicator broke at all_reduce #2",
             "a later gather");
  checkError(c.reduceScatterSum(to, f, 16, DType::F32), "RT-10",
             "reduce_scatter #5 (f32, 16 elements per rank) on rank 0 of 2 "
             "not run: the communicator broke at all_reduce #2",
             "a later reduce-scatter");
  std::printf("rank 0: %s\nrank 0: timed out in %.1f s; %" PRId64
              " checks, %" PRId64 " failures\n",
              s.message().c_str(), seconds, checks, failures);
  std::fflush(stdout);
  if (abortAfter)
    c.abort(failures == 0 ? 3 : 4);
}

} // namespace

int main(int argc, char **argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  CollectivesOptions options;
  options.timeoutSeconds = mode.rfind("timeout", 0) == 0 ? 2 : 60;
  if (mode == "singleton" || mode == "expect-error")
    options.engine = "mpi";
  auto opened = openCollectives(options);
  if (mode == "expect-error") {
    const char *needle = argc > 2 ? argv[2] : "";
    checkError(opened.status(), "RT-10", needle, "opening");
    std::printf("expect-error: %s\n", opened.status().message().c_str());
    return failures == 0 ? 0 : 1;
  }
  if (!opened.ok()) {
    std::fprintf(stderr, "%s\n", opened.status().message().c_str());
    return 1;
  }
  Collectives &c = **opened;
  rankForMessages = c.rank();
  if (mode == "basic")
    basic(c);
  else if (mode == "singleton")
    singleton(c);
  else if (mode == "timeout-abort" || mode == "timeout-exit" ||
           mode == "timeout-stop")
    timeout(c, mode == "timeout-abort", mode == "timeout-stop");
  else {
    std::fprintf(stderr, "unknown mode '%s'\n", mode.c_str());
    return 2;
  }
  return failures == 0 ? 0 : 1;
}
