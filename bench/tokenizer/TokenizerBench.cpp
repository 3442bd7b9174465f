//===- TokenizerBench.cpp - tokenizer encode speed (Google Benchmark) -----===//
//
//   v4-bench-tokenizer TOKENIZER_DIR TEXT_FILE [benchmark flags]
//
// Encodes the text (1 MB from bench/tokenizer/run.sh) with the runtime's
// tokenizer: a cold run (empty word cache, a fresh tokenizer per iteration
// is too slow to load, so the first iteration is reported separately) and
// warm runs. bytes_per_second is the figure run.sh compares with the
// reference implementation timed in the same run.
//
//===----------------------------------------------------------------------===//
#include "bench/BenchCommandLine.h"
#include "runtime/tokenizer/Tokenizer.h"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace {

std::unique_ptr<v4::tokenizer::Tokenizer> tokenizer;
std::string text;

void encode(benchmark::State &state) {
  size_t tokens = 0;
  for (auto _ : state) {
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3);
    v4::Status st = tokenizer->encode(text, ids);
    if (!st) {
      state.SkipWithError(st.message().c_str());
      return;
    }
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * text.size());
  state.counters["tokens"] = double(tokens);
  state.counters["text_bytes"] = double(text.size());
}

} // namespace

int main(int argc, char **argv) {
  std::string dir, textPath;
  CLI::App cli(std::string(), "v4-bench-tokenizer");
  v4::cli::setup(cli, "Encode speed of the runtime's tokenizer on a text.",
                 "usage: v4-bench-tokenizer TOKENIZER_DIR TEXT_FILE "
                 "[--benchmark_* flags]",
                 "Exit codes: 0 success; 1 failure; 2 bad command line.");
  cli.add_option("TOKENIZER_DIR", dir, "Folder of tokenizer.json")->required();
  cli.add_option("TEXT_FILE", textPath, "The text to encode")->required();
  if (int code = v4::bench::parseCommandLine(cli, argc, argv);
      code != v4::cli::kContinue)
    return code;
  auto tok = v4::tokenizer::Tokenizer::load(dir);
  if (!tok) {
    std::fprintf(stderr, "v4-bench-tokenizer: %s\n",
                 tok.status().message().c_str());
    return 1;
  }
  tokenizer = tok.take();
  std::ifstream in(textPath, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  text = ss.str();
  // The first pass fills the word cache (a cold encode); it is timed as its
  // own single-iteration benchmark before the warm ones.
  benchmark::RegisterBenchmark("encode_cold", encode)
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("encode_warm", encode)
      ->MinTime(2.0)
      ->Unit(benchmark::kMillisecond);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
