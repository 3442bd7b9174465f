//===- CollectivesMpiTest.cpp - the MPI engine across real ranks ----------===//
//
// Run by test/runtime/collectives-mpi.test under mpirun (and alone for the
// singleton world). One mode per run:
//
//   basic          sums (f32, bf16, i64; bf16 bit-exact where one rank holds
//                  the value, the same bits on every rank), broadcasts from
//                  every root, a barrier that waits, argument errors, the
//                  shared object; rank 0 prints the checks and failures
//   singleton      engine "mpi" without a launcher: a world of one
//   timeout-abort  rank 1 skips a sum that rank 0 enters (timeout 2 s):
//                  rank 0 gets RT-10 in time, later calls fail at once, and
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

#include <chrono>
#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
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

  // Gathers: every rank's block in rank order, the same on every rank.
  {
    std::vector<int64_t> mine = {rank * 10 + 1, rank * 10 + 2, -rank};
    std::vector<int64_t> all(3 * size_t(world), -99);
    checkOk(c.allGather(mine.data(), all.data(), 3, DType::I64), "gather");
    int bad = 0;
    for (int r = 0; r < world; ++r)
      bad += all[3 * r] != r * 10 + 1 || all[3 * r + 1] != r * 10 + 2 ||
             all[3 * r + 2] != -r;
    check(bad == 0, "gather: " + std::to_string(bad) + " wrong blocks");
    // Reduce-scatter of bf16 where one rank holds each element (rank q
    // the elements of block q's "next" rank): exact bits, block r to r.
    const size_t n = 5;
    std::vector<uint16_t> send(n * size_t(world), 0), recv(n, 0xFFFF);
    for (int r = 0; r < world; ++r)
      if ((r + 1) % world == rank)
        for (size_t i = 0; i < n; ++i)
          send[size_t(r) * n + i] = uint16_t(0x3C01 + 7 * i + r); // odd bits
    checkOk(c.reduceScatterSum(send.data(), recv.data(), n, DType::BF16),
            "bf16 reduce-scatter");
    bad = 0;
    for (size_t i = 0; i < n; ++i)
      bad += recv[i] != uint16_t(0x3C01 + 7 * i + rank);
    check(bad == 0, "bf16 reduce-scatter: " + std::to_string(bad) +
                        " elements not the one rank's bits");
    std::vector<float> fs(2 * size_t(world), 1.0f), fr(2, 0.0f);
    checkOk(c.reduceScatterSum(fs.data(), fr.data(), 2, DType::F32),
            "f32 reduce-scatter");
    check(fr[0] == float(world) && fr[1] == float(world),
          "f32 reduce-scatter of ones");
    checkError(c.allGather(mine.data(), mine.data(), 3, DType::I64), "ARG",
               "overlap", "overlapping gather");
  }

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
