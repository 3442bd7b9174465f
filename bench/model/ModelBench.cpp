//===- ModelBench.cpp - decode and prefill against the DRAM roofline ------===//
//
// v4-bench-model MODEL.v4a CHECKPOINT CONFIG.json [benchmark flags]
//
// Runs a compiled model through the runtime's C API and reports, in the same
// run, the physical limit it is measured against: the machine's DRAM read
// bandwidth (a streaming read of a buffer much larger than the caches) and
// the weight bytes one decode token touches (every weight the steps of a
// call without MTP logits read, routed experts counted num_experts_per_tok of
// n_routed_experts, gathered tables one row; from the artifact's parameters and
// steps and the config). Counters:
//   decode: tokens/s, ms/token, roofline ms/token, ratio (measured/roofline)
//   prefill: tokens/s for a chunk of max_chunk tokens, and its speed-up over
//            decode
// Links no LLVM/MLIR: the runtime and Google Benchmark only.
//
//===----------------------------------------------------------------------===//
#include "bench/BenchCommandLine.h"
#include "runtime/artifact/Artifact.h"
#include "runtime/base/DType.h"
#include "v4rt/v4rt.h"

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <numeric>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

std::string artifactPath, checkpointPath, configPath;
v4rt_model_t *model = nullptr;
v4rt_model_info_t info;
double bandwidth = 0;     // bytes/s, measured
double bytesPerToken = 0; // weight bytes one decode token reads
double macsPerToken = 0;  // weight multiply-adds of one token
double peakFlops = 0;     // FLOP/s, measured

[[noreturn]] void die(const std::string &message) {
  std::fprintf(stderr, "v4-bench-model: %s\n", message.c_str());
  std::exit(1);
}

/// Streaming read of 1 GiB (8x the largest L3 of this class of machine) by
/// `threads` threads, each its own contiguous share (written by that thread
/// first, so its pages are local to it), best of 5: the DRAM read bandwidth
/// the model's kernels can reach with the runtime's thread count.
double measureBandwidth(unsigned threads) {
  const size_t n = (size_t(1) << 30) / sizeof(uint64_t);
  std::vector<uint64_t> buf(n);
  auto share = [&](unsigned t) {
    size_t per = (n / threads) & ~size_t(3);
    return std::make_pair(t * per, t + 1 == threads ? n : (t + 1) * per);
  };
  auto onThreads = [&](auto &&fn) {
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads; ++t)
      pool.emplace_back(fn, t);
    fn(0u);
    for (std::thread &th : pool)
      th.join();
  };
  onThreads([&](unsigned t) {
    auto [lo, hi] = share(t);
    for (size_t i = lo; i < hi; ++i)
      buf[i] = i;
  });
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    onThreads([&](unsigned t) {
      auto [lo, hi] = share(t);
      uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (size_t i = lo; i + 3 < hi; i += 4) {
        s0 += buf[i];
        s1 += buf[i + 1];
        s2 += buf[i + 2];
        s3 += buf[i + 3];
      }
      benchmark::DoNotOptimize(s0 + s1 + s2 + s3);
    });
    double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    best = std::max(best, double(n * sizeof(uint64_t)) / s);
  }
  return best;
}

/// What one decode token reads and computes of the weights: the parameters
/// the steps of the `step` entry point that a call without MTP logits runs
/// read, routed-expert stacks counted k/E, and the
/// tables a token reads one row of (the embedding, the hash-routing table
/// tid2eid, Engram's embedding tables) counted one row. `macs`: the
/// multiply-adds of the weight matrices (rank >= 2, not a gathered table,
/// not an e8m0 scale), one per logical element (FP4 expert weights, stored
/// as i8 pairs, two per byte); attention's score and value products are not
/// counted, so 2 * macs is a lower bound of a token's floating-point work.
struct WeightCounts {
  double bytes = 0, macs = 0;
};
WeightCounts weightCountsPerToken(const v4::artifact::Artifact &a) {
  std::ifstream in(configPath);
  nlohmann::json cfg = nlohmann::json::parse(in, nullptr, false);
  if (cfg.is_discarded())
    die(configPath + ": not JSON");
  double k = cfg.value("num_experts_per_tok", 0.0),
         e = cfg.value("n_routed_experts", 1.0);
  bool fp4Experts = cfg.value("expert_dtype", std::string()) == "fp4";
  // The steps a decode call that wants only the logits runs (BM_Decode).
  std::set<uint32_t> read;
  for (const v4::artifact::EntryPoint &ep : a.entryPoints())
    if (ep.name == "step")
      for (const v4::artifact::Step &st : ep.steps)
        if (v4::artifact::runsFor(st, 1))
          read.insert(st.buffers.begin(), st.buffers.end());
  auto endsWith = [](const std::string &s, const std::string &t) {
    return s.size() >= t.size() &&
           s.compare(s.size() - t.size(), t.size(), t) == 0;
  };
  WeightCounts total;
  for (const v4::artifact::Parameter &p : a.parameters()) {
    if (!read.count(p.buffer))
      continue;
    double bytes = double(a.bufferBytes(*a.findBuffer(p.buffer), 1));
    bool routed = p.name.find(".experts.{}.") != std::string::npos;
    bool oneRow = p.name == "embed.weight" || endsWith(p.name, ".tid2eid") ||
                  (p.name.find(".engram.") != std::string::npos &&
                   endsWith(p.name, "embed.weight"));
    if (oneRow && !p.shape.empty() && p.shape[0] > 0)
      bytes /= double(p.shape[0]);
    double share = routed ? k / e : 1.0;
    total.bytes += bytes * share;
    if (oneRow || p.shape.size() < 2 || p.dtype == v4::DType::F8E8M0)
      continue;
    double elements = 1;
    for (int64_t d : p.shape)
      elements *= double(d);
    if (routed && fp4Experts && p.dtype == v4::DType::I8)
      elements *= 2;
    total.macs += elements * share;
  }
  return total;
}

/// One thread's peak fp32 multiply-add rate (FLOP/s, 2 per fused
/// multiply-add): 12 independent chains of fused multiply-adds on vectors
/// of V, for `iters` steps. The body is a macro so that each caller's target
/// attribute (the vector ISA) applies to it.
#define V4_BENCH_FMA_CHAINS(V, iters)                                          \
  {                                                                            \
    constexpr int kChains = 12;                                                \
    constexpr int kLanes = sizeof(V) / sizeof(float);                          \
    V acc[kChains], a, b;                                                      \
    for (int l = 0; l < kLanes; ++l) {                                         \
      a[l] = 0.999999f;                                                        \
      b[l] = 1e-7f;                                                            \
    }                                                                          \
    for (int c = 0; c < kChains; ++c)                                          \
      for (int l = 0; l < kLanes; ++l)                                         \
        acc[c][l] = float(c + l);                                              \
    auto t0 = std::chrono::steady_clock::now();                                \
    for (uint64_t i = 0; i < iters; ++i)                                       \
      for (int c = 0; c < kChains; ++c)                                        \
        acc[c] = acc[c] * a + b;                                               \
    double s =                                                                 \
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)   \
            .count();                                                          \
    V sum = acc[0];                                                            \
    for (int c = 1; c < kChains; ++c)                                          \
      sum += acc[c];                                                           \
    benchmark::DoNotOptimize(sum);                                             \
    return 2.0 * kChains * kLanes * double(iters) / s;                         \
  }
using F32x16 = float __attribute__((vector_size(64)));
using F32x8 = float __attribute__((vector_size(32)));
__attribute__((target("avx512f,fma"))) double fma512(uint64_t iters) {
  V4_BENCH_FMA_CHAINS(F32x16, iters);
}
__attribute__((target("avx2,fma"))) double fma256(uint64_t iters) {
  V4_BENCH_FMA_CHAINS(F32x8, iters);
}
#undef V4_BENCH_FMA_CHAINS

/// The machine's peak fp32 multiply-add rate with `threads` threads (FLOP/s,
/// best of 3 runs of each thread's chains, summed): prefill's compute
/// roofline, as the DRAM bandwidth is decode's.
double measurePeakFlops(unsigned threads) {
  __builtin_cpu_init();
  bool avx512 = __builtin_cpu_supports("avx512f");
  if (!avx512 &&
      !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")))
    return 0; // no FMA: no figure
  const uint64_t iters = uint64_t(1) << 24;
  std::vector<double> rate(threads, 0);
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (int rep = 0; rep < 3; ++rep)
        rate[t] = std::max(rate[t], avx512 ? fma512(iters) : fma256(iters));
    });
  for (std::thread &th : pool)
    th.join();
  return std::accumulate(rate.begin(), rate.end(), 0.0);
}

void BM_Decode(benchmark::State &state) {
  v4rt_session_t *s = nullptr;
  if (v4rt_session_create(model, &s))
    die("session");
  const int64_t B = info.batch, V = info.vocab_size;
  std::vector<int64_t> ids(B, 1);
  std::vector<float> logits(B * V);
  // Decode at positions 64.. (a prompt's worth of state), restarting before
  // the context is full.
  std::vector<int64_t> prompt(B * 64, 3);
  auto prefill = [&] {
    v4rt_session_reset(s);
    std::vector<float> l(B * (info.logits_positions ? 1 : 64) * V);
    if (v4rt_session_run(s, prompt.data(), nullptr,
                         std::min<int64_t>(64, info.max_chunk), l.data(),
                         l.size(), nullptr, 0))
      die("prefill");
  };
  prefill();
  int64_t tokens = 0;
  for (auto _ : state) {
    int64_t position = 0;
    if (v4rt_session_position(s, 0, &position))
      die("position");
    if (position + 1 >= info.max_context) {
      state.PauseTiming();
      prefill();
      state.ResumeTiming();
    }
    if (v4rt_status_t st =
            v4rt_session_run(s, ids.data(), nullptr, 1, logits.data(),
                             logits.size(), nullptr, 0))
      die(v4rt_status_message(st));
    ids[0] = (ids[0] * 31 + 7) % V;
    ++tokens;
  }
  state.counters["tokens/s"] =
      benchmark::Counter(double(tokens * B), benchmark::Counter::kIsRate);
  state.counters["weight_MB/token"] = bytesPerToken / 1e6;
  state.counters["DRAM_GB/s"] = bandwidth / 1e9;
  state.counters["roofline_ms/token"] = 1e3 * bytesPerToken / bandwidth;
  // Roofline time over measured time (1 = at the DRAM roofline).
  state.counters["roofline_fraction"] = benchmark::Counter(
      double(tokens) * bytesPerToken / bandwidth, benchmark::Counter::kIsRate);
  v4rt_session_release(s);
}

void BM_Prefill(benchmark::State &state) {
  v4rt_session_t *s = nullptr;
  if (v4rt_session_create(model, &s))
    die("session");
  const int64_t B = info.batch, V = info.vocab_size, C = info.max_chunk;
  std::vector<int64_t> ids(B * C);
  for (size_t i = 0; i < ids.size(); ++i)
    ids[i] = int64_t(i * 37 % size_t(V));
  std::vector<float> logits(B * (info.logits_positions ? 1 : C) * V);
  int64_t tokens = 0;
  for (auto _ : state) {
    state.PauseTiming();
    v4rt_session_reset(s);
    state.ResumeTiming();
    if (v4rt_status_t st =
            v4rt_session_run(s, ids.data(), nullptr, C, logits.data(),
                             logits.size(), nullptr, 0))
      die(v4rt_status_message(st));
    tokens += C;
  }
  state.counters["tokens/s"] =
      benchmark::Counter(double(tokens * B), benchmark::Counter::kIsRate);
  state.counters["chunk"] = double(C);
  // The weight matrices' FLOP/s, and its ratio to the machine's peak
  // multiply-add rate measured in the same run (1 = compute-bound at peak).
  state.counters["weight_GFLOP/s"] = benchmark::Counter(
      double(tokens * B) * 2e-9 * macsPerToken, benchmark::Counter::kIsRate);
  state.counters["peak_GFLOP/s"] = peakFlops / 1e9;
  if (peakFlops > 0)
    state.counters["compute_fraction"] =
        benchmark::Counter(double(tokens * B) * 2.0 * macsPerToken / peakFlops,
                           benchmark::Counter::kIsRate);
  v4rt_session_release(s);
}

} // namespace

int main(int argc, char **argv) {
  CLI::App cli(std::string(), "v4-bench-model");
  v4::cli::setup(cli,
                 "Decode and prefill of a compiled model against the DRAM "
                 "roofline.",
                 "usage: v4-bench-model MODEL.v4a CHECKPOINT CONFIG.json "
                 "[--benchmark_* flags]\n"
                 "       v4-bench-model MODEL.v4a CONFIG.json "
                 "--synthetic-weights SEED [--benchmark_* flags]",
                 "Exit codes: 0 success; 1 failure; 2 bad command line.");
  cli.add_option("MODEL.v4a", artifactPath, "The compiled model")->required();
  cli.add_option("CHECKPOINT", checkpointPath, "Its checkpoint")->required();
  cli.add_option("CONFIG.json", configPath, "Its config.json");
  uint64_t syntheticSeed = 0;
  CLI::Option *synthetic = cli.add_option(
      "--synthetic-weights", syntheticSeed,
      "No checkpoint: the runtime's deterministic synthetic weights of this "
      "seed (then MODEL.v4a CONFIG.json)");
  if (int code = v4::bench::parseCommandLine(cli, argc, argv);
      code != v4::cli::kContinue)
    return code;
  // With synthetic weights the second argument is the config.
  if (synthetic->count() && configPath.empty())
    std::swap(configPath, checkpointPath);
  if (configPath.empty() || !checkpointPath.empty() == bool(synthetic->count()))
    return v4::cli::usageError(cli, "give MODEL.v4a CHECKPOINT CONFIG.json, "
                                    "or MODEL.v4a CONFIG.json "
                                    "--synthetic-weights SEED");
  auto a = v4::artifact::Artifact::loadFile(artifactPath);
  if (!a)
    die(a.status().message());
  v4rt_model_options_t options;
  v4rt_model_options_initialize(&options);
  if (synthetic->count()) {
    options.synthetic_weights = 1;
    options.synthetic_seed = syntheticSeed;
  } else {
    options.checkpoint_path = checkpointPath.c_str();
  }
  if (v4rt_status_t st =
          v4rt_model_load(artifactPath.c_str(), &options, &model))
    die(v4rt_status_message(st));
  info.struct_size = sizeof info;
  if (v4rt_status_t st = v4rt_model_info(model, &info))
    die(v4rt_status_message(st));
  bandwidth =
      measureBandwidth(unsigned(std::max<int64_t>(1, info.num_threads)));
  WeightCounts counts = weightCountsPerToken(*a);
  bytesPerToken = counts.bytes;
  macsPerToken = counts.macs;
  peakFlops =
      measurePeakFlops(unsigned(std::max<int64_t>(1, info.num_threads)));
  benchmark::AddCustomContext("model", artifactPath);
  benchmark::AddCustomContext("dram_read_GB_per_s",
                              std::to_string(bandwidth / 1e9));
  benchmark::AddCustomContext("threads", std::to_string(info.num_threads));
  benchmark::AddCustomContext("weight_bytes_per_decode_token",
                              std::to_string(bytesPerToken));
  benchmark::AddCustomContext("weight_MFLOP_per_token",
                              std::to_string(2e-6 * macsPerToken));
  benchmark::AddCustomContext("peak_fp32_GFLOP_per_s",
                              std::to_string(peakFlops / 1e9));
  benchmark::AddCustomContext("decode_roofline_ms_per_token",
                              std::to_string(1e3 * bytesPerToken / bandwidth));
  // Wall-clock rates: the kernels run on the runtime's worker threads too,
  // whose time the calling thread's CPU time does not see.
  benchmark::RegisterBenchmark("decode", BM_Decode)
      ->Unit(benchmark::kMillisecond)
      ->MinTime(2.0)
      ->UseRealTime();
  benchmark::RegisterBenchmark("prefill", BM_Prefill)
      ->Unit(benchmark::kMillisecond)
      ->MinTime(2.0)
      ->UseRealTime();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  v4rt_model_release(model);
  return 0;
}
