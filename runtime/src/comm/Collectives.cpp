//===- Collectives.cpp - argument checks, the single engine, opening ------===//
//
// openCollectives reads the launch environment, picks the engine and opens
// it once per process; the "mpi" engine comes from the plugin
// libv4rt-mpi.so (MpiPlugin.h), found through V4RT_MPI_PLUGIN or beside the
// object holding this code (libv4rt.so, or the executable linking
// libv4rt.a) and in its ../lib.
//
//===----------------------------------------------------------------------===//
#include "runtime/src/comm/Collectives.h"
#include "runtime/src/comm/MpiPlugin.h"

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <link.h>
#include <mutex>
#include <optional>
#include <unistd.h>
#include <vector>

namespace v4::rt {

namespace {

Status argError(std::string message) {
  return Status::error(StatusCode::InvalidArgument, "ARG", std::move(message));
}

} // namespace

//===----------------------------------------------------------------------===//
// The public calls: argument checks, then the engine.
//===----------------------------------------------------------------------===//

Status checkAllReduceSum(const void *data, size_t count, DType dtype) {
  size_t elementBytes = 0;
  switch (dtype) {
  case DType::F32:
    elementBytes = 4;
    break;
  case DType::BF16:
    elementBytes = 2;
    break;
  case DType::I64:
    elementBytes = 8;
    break;
  default:
    return argError(std::string("all_reduce: dtype ") + dtypeName(dtype) +
                    " is not summed by the collectives (f32, bf16, i64)");
  }
  if (count > SIZE_MAX / elementBytes)
    return argError("all_reduce: " + std::to_string(count) + " elements of " +
                    dtypeName(dtype) + " overflow the address space");
  if (count != 0 && !data)
    return argError("all_reduce: null data for " + std::to_string(count) +
                    " elements");
  return Status::success();
}

Status Collectives::allReduceSum(void *data, size_t count, DType dtype) {
  if (Status s = checkAllReduceSum(data, count, dtype); !s)
    return s;
  return runAllReduceSum(data, count, dtype);
}

Status Collectives::broadcast(void *data, size_t bytes, int root) {
  if (root < 0 || root >= world())
    return argError("broadcast: root " + std::to_string(root) +
                    " is not a rank of a world of " + std::to_string(world()));
  if (bytes != 0 && !data)
    return argError("broadcast: null data for " + std::to_string(bytes) +
                    " bytes");
  return runBroadcast(data, bytes, root);
}

namespace {
/// The element width of a dtype the gather moves (0: another dtype).
size_t gatherWidth(DType dtype) {
  switch (dtype) {
  case DType::F32:
  case DType::I32:
    return 4;
  case DType::BF16:
    return 2;
  case DType::I64:
    return 8;
  default:
    return 0;
  }
}

/// ARG unless `count` elements of `width` bytes per rank (`limit` at most,
/// what one MPI call moves: `limitUnit` names its unit) fit the address
/// space for every rank of `world`, and the buffers are there and do not
/// overlap: `send` holds `sendBlocks` blocks of `count` elements, `recv`
/// `recvBlocks`.
Status checkBlocks(const char *what, DType dtype, const void *send,
                   size_t sendBlocks, const void *recv, size_t recvBlocks,
                   size_t count, size_t width, int world, size_t limit,
                   const char *limitUnit) {
  std::string perRank =
      std::to_string(count) + " elements of " + dtypeName(dtype) + " per rank";
  if (count > SIZE_MAX / width / size_t(world))
    return argError(std::string(what) + ": " + perRank + " over " +
                    std::to_string(world) +
                    " ranks overflow the address space");
  if (count > limit)
    return argError(std::string(what) + ": " + perRank +
                    " exceed what one collective moves (INT_MAX " + limitUnit +
                    " per rank): split it");
  if (count != 0 && (!send || !recv))
    return argError(std::string(what) + ": null " +
                    (send ? "receive" : "send") + " data for " + perRank);
  uintptr_t s = reinterpret_cast<uintptr_t>(send);
  uintptr_t r = reinterpret_cast<uintptr_t>(recv);
  size_t bytes = count * width;
  if (count != 0 && s < r + bytes * recvBlocks && r < s + bytes * sendBlocks)
    return argError(std::string(what) + ": send and receive buffers overlap");
  return Status::success();
}
} // namespace

Status checkAllGather(const void *send, const void *recv, size_t count,
                      DType dtype, int world) {
  size_t width = gatherWidth(dtype);
  if (width == 0)
    return argError(std::string("all_gather: dtype ") + dtypeName(dtype) +
                    " is not gathered by the collectives (f32, bf16, i64, "
                    "i32)");
  // Gathered as bytes: the blocks interleave by rank in `recv`, so one call
  // moves them all (no chunks).
  return checkBlocks("all_gather", dtype, send, 1, recv, size_t(world), count,
                     width, world, size_t(INT_MAX) / width, "bytes");
}

Status Collectives::allGather(const void *send, void *recv, size_t count,
                              DType dtype) {
  if (Status s = checkAllGather(send, recv, count, dtype, world()); !s)
    return s;
  return runAllGather(send, recv, count * gatherWidth(dtype));
}

Status checkReduceScatterSum(const void *send, const void *recv, size_t count,
                             DType dtype, int world) {
  if (dtype != DType::F32 && dtype != DType::BF16 && dtype != DType::I64)
    return argError(std::string("reduce_scatter: dtype ") + dtypeName(dtype) +
                    " is not summed by the collectives (f32, bf16, i64)");
  // One call: rank r's block of the sum is block r of `send`, so chunks
  // would need strided types that the reduction ops do not take.
  return checkBlocks("reduce_scatter", dtype, send, size_t(world), recv, 1,
                     count, gatherWidth(dtype), world, size_t(INT_MAX),
                     "elements");
}

Status Collectives::reduceScatterSum(const void *send, void *recv, size_t count,
                                     DType dtype) {
  if (Status s = checkReduceScatterSum(send, recv, count, dtype, world()); !s)
    return s;
  return runReduceScatterSum(send, recv, count, dtype);
}

Status checkAllToAll(const void *send, const void *recv, size_t rows,
                     size_t rowElements, DType dtype, int world) {
  if (dtype != DType::F32 && dtype != DType::BF16 && dtype != DType::I64)
    return argError(std::string("all_to_all: dtype ") + dtypeName(dtype) +
                    " is not sent by the collectives (f32, bf16, i64)");
  size_t width = gatherWidth(dtype);
  if (rowElements > size_t(INT_MAX) / width || rows > size_t(INT_MAX))
    return argError("all_to_all: blocks of " + std::to_string(rows) +
                    " rows of " + std::to_string(rowElements) + " " +
                    dtypeName(dtype) +
                    " exceed what one collective moves (INT_MAX rows of at "
                    "most INT_MAX bytes)");
  // Blocks of rows * rowElements elements, world of them on each side.
  size_t count = rowElements == 0 || rows <= SIZE_MAX / rowElements
                     ? rows * rowElements
                     : SIZE_MAX;
  return checkBlocks("all_to_all", dtype, send, size_t(world), recv,
                     size_t(world), count, width, world, SIZE_MAX, "bytes");
}

std::string badAllToAllCount(const int64_t *counts, int world, size_t rows) {
  for (int q = 0; q < world; ++q)
    if (counts[q] < 0 || uint64_t(counts[q]) > rows)
      return "the count of rows for rank " + std::to_string(q) + " is " +
             std::to_string(counts[q]) + ", outside [0, " +
             std::to_string(rows) + "]";
  return "";
}

Status Collectives::allToAll(const int64_t *counts, const void *send,
                             int64_t *recvCounts, void *recv, size_t rows,
                             size_t rowElements, DType dtype) {
  int n = world();
  if (!counts || !recvCounts)
    return argError("all_to_all: null counts");
  if (Status s = checkAllToAll(send, recv, rows, rowElements, dtype, n); !s)
    return s;
  // The counts first (one row of 8 bytes per rank), then whether every rank
  // sends counts in range, so that all ranks stop together or go on.
  std::vector<size_t> one(size_t(n), 1);
  if (Status s = runAllToAll(counts, one.data(), recvCounts, one.data(), 1,
                             sizeof(int64_t));
      !s)
    return s;
  std::string bad = badAllToAllCount(counts, n, rows);
  int64_t badRanks = bad.empty() ? 0 : 1;
  if (Status s = runAllReduceSum(&badRanks, 1, DType::I64); !s)
    return s;
  if (badRanks != 0)
    return Status::error(StatusCode::FailedPrecondition, kCollectivesRule,
                         "all_to_all on rank " + std::to_string(rank()) +
                             " of " + std::to_string(n) + ": " +
                             (bad.empty() ? "" : bad + "; ") +
                             std::to_string(badRanks) +
                             " rank(s) sent a row count outside [0, " +
                             std::to_string(rows) + "]: no rows moved");
  size_t rowBytes = rowElements * gatherWidth(dtype);
  std::vector<size_t> sendRows(static_cast<size_t>(n)),
      recvRows(static_cast<size_t>(n));
  for (int q = 0; q < n; ++q) {
    sendRows[size_t(q)] = size_t(counts[q]);
    recvRows[size_t(q)] = size_t(recvCounts[q]);
  }
  if (rows != 0 && rowBytes != 0)
    if (Status s = runAllToAll(send, sendRows.data(), recv, recvRows.data(),
                               rows, rowBytes);
        !s)
      return s;
  auto *out = static_cast<unsigned char *>(recv);
  for (int q = 0; rows != 0 && rowBytes != 0 && q < n; ++q) {
    size_t from = (size_t(q) * rows + recvRows[size_t(q)]) * rowBytes;
    std::memset(out + from, allToAllFillByte(dtype),
                (rows - recvRows[size_t(q)]) * rowBytes);
  }
  return Status::success();
}

Status Collectives::barrier() { return runBarrier(); }

namespace {

//===----------------------------------------------------------------------===//
// The single engine
//===----------------------------------------------------------------------===//

class SingleCollectives final : public Collectives {
public:
  int rank() const override { return 0; }
  int world() const override { return 1; }
  const char *engine() const override { return "single"; }
  [[noreturn]] void abort(int code) override {
    std::fflush(nullptr);
    std::_Exit(code);
  }

protected:
  Status runAllReduceSum(void *, size_t, DType) override {
    return Status::success();
  }
  Status runBroadcast(void *, size_t, int) override {
    return Status::success();
  }
  // A world of one: the one block is the whole.
  Status runAllGather(const void *send, void *recv, size_t bytes) override {
    if (bytes)
      std::memcpy(recv, send, bytes);
    return Status::success();
  }
  Status runReduceScatterSum(const void *send, void *recv, size_t count,
                             DType dtype) override {
    if (count)
      std::memcpy(recv, send, count * ((dtypeBits(dtype) + 7) / 8));
    return Status::success();
  }
  Status runAllToAll(const void *send, const size_t *sendRows, void *recv,
                     const size_t *, size_t, size_t rowBytes) override {
    if (sendRows[0])
      std::memcpy(recv, send, sendRows[0] * rowBytes);
    return Status::success();
  }
  Status runBarrier() override { return Status::success(); }
};

//===----------------------------------------------------------------------===//
// The launch environment
//===----------------------------------------------------------------------===//

/// A whole number from environment variable `name`: nullopt when unset or
/// empty; an RT-10 error when it is not a number in [minimum, INT_MAX].
Status readEnvNumber(const char *name, long minimum,
                     std::optional<long> &value) {
  value.reset();
  const char *text = std::getenv(name);
  if (!text || !*text)
    return Status::success();
  errno = 0;
  char *end = nullptr;
  long number = std::strtol(text, &end, 10);
  if (errno != 0 || *end != '\0' || number < minimum || number > INT_MAX)
    return Status::error(
        StatusCode::FailedPrecondition, kCollectivesRule,
        std::string(name) + "='" + text +
            "' is not a whole number >= " + std::to_string(minimum));
  value = number;
  return Status::success();
}

struct LaunchEnvironment {
  /// The MPI launcher's variable that was found (null: no launcher).
  const char *launcherVariable = nullptr;
  /// The launcher's world size, or its rank where only that is known
  /// (PMIX_RANK); 0 when neither says more than one rank.
  long launcherValue = 0;
  /// Whether the launcher's variable shows more than one rank.
  bool launcherMultiRank = false;
  /// torchrun-style RANK and WORLD_SIZE.
  std::optional<long> rank, worldSize;
};

Status readLaunchEnvironment(LaunchEnvironment &env) {
  // Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE (and PMIX_RANK); PMI-1/2
  // launchers (MPICH's hydra, srun --mpi=pmi2) PMI_SIZE; PMIx launchers
  // (srun --mpi=pmix) PMIX_RANK.
  struct Variable {
    const char *name;
    long minimum;
    bool isSize;
  };
  for (Variable variable :
       {Variable{"OMPI_COMM_WORLD_SIZE", 1, true},
        Variable{"PMI_SIZE", 1, true}, Variable{"PMIX_RANK", 0, false}}) {
    std::optional<long> value;
    if (Status s = readEnvNumber(variable.name, variable.minimum, value);
        !s.ok())
      return s;
    if (!value)
      continue;
    env.launcherVariable = variable.name;
    env.launcherValue = *value;
    env.launcherMultiRank = variable.isSize ? *value > 1 : *value > 0;
    break;
  }
  if (Status s = readEnvNumber("WORLD_SIZE", 1, env.worldSize); !s.ok())
    return s;
  if (Status s = readEnvNumber("RANK", 0, env.rank); !s.ok())
    return s;
  if (env.rank && env.worldSize && *env.rank >= *env.worldSize)
    return Status::error(
        StatusCode::FailedPrecondition, kCollectivesRule,
        "RANK=" + std::to_string(*env.rank) +
            " is not a rank of WORLD_SIZE=" + std::to_string(*env.worldSize));
  if (env.worldSize && *env.worldSize > 1 && !env.launcherVariable)
    return Status::error(
        StatusCode::FailedPrecondition, kCollectivesRule,
        "WORLD_SIZE=" + std::to_string(*env.worldSize) +
            " but this process was not started by an MPI launcher: run it "
            "with mpirun -np " +
            std::to_string(*env.worldSize));
  return Status::success();
}

//===----------------------------------------------------------------------===//
// The MPI plugin
//===----------------------------------------------------------------------===//

/// The path of the object holding this code: libv4rt.so, or the executable
/// that links libv4rt.a.
std::string pathOfThisObject() {
  Dl_info info;
  link_map *map = nullptr;
  if (dladdr1(reinterpret_cast<void *>(&openCollectives), &info,
              reinterpret_cast<void **>(&map), RTLD_DL_LINKMAP) &&
      map && map->l_name && map->l_name[0])
    return map->l_name;
  // The main program's link map has no name.
  std::vector<char> buffer(PATH_MAX + 1);
  ssize_t n = readlink("/proc/self/exe", buffer.data(), buffer.size() - 1);
  return n > 0 ? std::string(buffer.data(), size_t(n)) : std::string();
}

/// Where the plugin may be: V4RT_MPI_PLUGIN alone when set, else beside
/// this object and in its ../lib (an installed bin/ tool, the build tree's
/// bin/ tools) and ../<install libdir>.
std::vector<std::string> pluginCandidates() {
  if (const char *path = std::getenv("V4RT_MPI_PLUGIN"); path && *path)
    return {path};
  std::string self = pathOfThisObject();
  size_t slash = self.rfind('/');
  std::string dir = slash == std::string::npos ? "." : self.substr(0, slash);
  std::vector<std::string> candidates = {dir + "/" + kMpiPluginFileName,
                                         dir + "/../lib/" + kMpiPluginFileName};
#ifdef V4RT_INSTALL_LIBDIR
  if (std::strcmp(V4RT_INSTALL_LIBDIR, "lib") != 0)
    candidates.push_back(dir + "/../" + V4RT_INSTALL_LIBDIR + "/" +
                         kMpiPluginFileName);
#endif
  return candidates;
}

/// Opens the "mpi" engine; `started` tells whether the plugin's factory ran
/// (and so MPI may have started).
Expected<std::shared_ptr<Collectives>> openMpiPlugin(double timeoutSeconds,
                                                     bool &started) {
  started = false;
  std::vector<std::string> candidates = pluginCandidates();
  const std::string *found = nullptr;
  for (const std::string &candidate : candidates)
    if (access(candidate.c_str(), F_OK) == 0) {
      found = &candidate;
      break;
    }
  if (!found) {
    if (std::getenv("V4RT_MPI_PLUGIN") && *std::getenv("V4RT_MPI_PLUGIN"))
      return Status::error(StatusCode::Unavailable, kCollectivesRule,
                           "V4RT_MPI_PLUGIN=" + candidates[0] +
                               ": no such file (the MPI engine's plugin, " +
                               kMpiPluginFileName + ")");
#ifdef V4RT_MPI_PLUGIN_BUILT
    std::string looked;
    for (const std::string &candidate : candidates)
      looked += (looked.empty() ? "" : ", ") + candidate;
    return Status::error(StatusCode::Unavailable, kCollectivesRule,
                         std::string("the MPI engine (") + kMpiPluginFileName +
                             ") is not where this runtime looks (" + looked +
                             "): set V4RT_MPI_PLUGIN to its path");
#else
    return Status::error(StatusCode::Unavailable, kCollectivesRule,
                         std::string("the MPI engine (") + kMpiPluginFileName +
                             ") was not built: install libopenmpi-dev and "
                             "rebuild");
#endif
  }
  // Never closed: the plugin's exit handler finalizes MPI.
  void *library = dlopen(found->c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    const char *error = dlerror();
    return Status::error(StatusCode::Unavailable, kCollectivesRule,
                         "dlopen(" + *found +
                             ") failed: " + (error ? error : "unknown error"));
  }
  auto factory = reinterpret_cast<MpiPluginFactory>(
      dlsym(library, kMpiPluginFactorySymbol));
  if (!factory)
    return Status::error(StatusCode::Unavailable, kCollectivesRule,
                         *found + " has no " + kMpiPluginFactorySymbol +
                             ": not v4rt's MPI plugin");
  char error[1024] = {0};
  started = true;
  Collectives *opened =
      factory(kMpiPluginInterface, timeoutSeconds, error, sizeof error);
  if (!opened)
    return Status::error(StatusCode::Unavailable, kCollectivesRule,
                         "the MPI engine (" + *found + "): " + error);
  return std::shared_ptr<Collectives>(opened);
}

/// The torchrun-style variables must name the MPI rank and world.
Status checkAgainstEnvironment(const Collectives &collectives,
                               const LaunchEnvironment &env) {
  std::string where = std::string(" on ") + collectives.engine() + " rank " +
                      std::to_string(collectives.rank()) + " of " +
                      std::to_string(collectives.world());
  if (env.worldSize && *env.worldSize != collectives.world())
    return Status::error(StatusCode::FailedPrecondition, kCollectivesRule,
                         "WORLD_SIZE=" + std::to_string(*env.worldSize) +
                             " but the launcher started " +
                             std::to_string(collectives.world()) + " ranks" +
                             where);
  if (env.rank && *env.rank != collectives.rank())
    return Status::error(StatusCode::FailedPrecondition, kCollectivesRule,
                         "RANK=" + std::to_string(*env.rank) +
                             " but this process is" + where);
  return Status::success();
}

/// The process's collectives. Never destroyed: the MPI engine's exit
/// handler (in the plugin) finalizes MPI, and a destructor running after
/// it must not touch MPI.
struct ProcessCollectives {
  std::mutex mutex;
  std::shared_ptr<Collectives> collectives;
  double timeoutSeconds = 0;
  /// Set once the MPI engine failed after its factory ran (MPI initializes
  /// once per process): every later "mpi" open returns it.
  std::optional<Status> mpiFailure;
};

ProcessCollectives &processCollectives() {
  static ProcessCollectives *state = new ProcessCollectives;
  return *state;
}

} // namespace

double openedCollectivesTimeout() {
  ProcessCollectives &state = processCollectives();
  std::lock_guard<std::mutex> lock(state.mutex);
  return state.collectives ? state.timeoutSeconds
                           : CollectivesOptions().timeoutSeconds;
}

Expected<std::shared_ptr<Collectives>>
openCollectives(const CollectivesOptions &options) {
  if (!(options.timeoutSeconds > 0) || !std::isfinite(options.timeoutSeconds))
    return argError("CollectivesOptions.timeoutSeconds is " +
                    formatSeconds(options.timeoutSeconds) +
                    ": expected a positive number of seconds");
  if (options.engine != "auto" && options.engine != "single" &&
      options.engine != "mpi")
    return argError("CollectivesOptions.engine '" + options.engine +
                    "': expected auto, single or mpi");

  ProcessCollectives &state = processCollectives();
  std::lock_guard<std::mutex> lock(state.mutex);
  if (state.collectives) {
    const char *engine = state.collectives->engine();
    if ((options.engine == "auto" || options.engine == engine) &&
        options.timeoutSeconds == state.timeoutSeconds)
      return state.collectives;
    return Status::error(
        StatusCode::FailedPrecondition, kCollectivesRule,
        std::string("the process's collectives are open with engine '") +
            engine + "', timeout " + formatSeconds(state.timeoutSeconds) +
            " s; asked again with engine '" + options.engine + "', timeout " +
            formatSeconds(options.timeoutSeconds) +
            " s: open them once per process, with the same options");
  }

  LaunchEnvironment env;
  if (Status s = readLaunchEnvironment(env); !s.ok())
    return s;
  std::string engine = options.engine;
  if (engine == "auto")
    engine = env.launcherVariable ? "mpi" : "single";
  if (engine == "single" && env.launcherMultiRank)
    return Status::error(
        StatusCode::FailedPrecondition, kCollectivesRule,
        std::string("engine 'single' but ") + env.launcherVariable + "=" +
            std::to_string(env.launcherValue) +
            ": an MPI launcher started this process as one of several "
            "ranks; use the engine 'mpi' (or 'auto')");

  std::shared_ptr<Collectives> opened;
  if (engine == "single") {
    opened = std::make_shared<SingleCollectives>();
  } else {
    if (state.mpiFailure)
      return *state.mpiFailure;
    bool started = false;
    auto mpi = openMpiPlugin(options.timeoutSeconds, started);
    if (!mpi.ok()) {
      if (started)
        state.mpiFailure = mpi.status();
      return mpi.status();
    }
    if (Status s = checkAgainstEnvironment(**mpi, env); !s.ok()) {
      state.mpiFailure = s;
      return s;
    }
    opened = mpi.take();
  }
  state.collectives = opened;
  state.timeoutSeconds = options.timeoutSeconds;
  return opened;
}

} // namespace v4::rt
