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
  benchmark::Initialize(&argc, argv);
  if (argc != 3) {
    std::fprintf(stderr, "usage: v4-bench-tokenizer TOKENIZER_DIR TEXT_FILE\n");
    return 2;
  }
  auto tok = v4::tokenizer::Tokenizer::load(argv[1]);
  if (!tok) {
    std::fprintf(stderr, "v4-bench-tokenizer: %s\n",
                 tok.status().message().c_str());
    return 1;
  }
  tokenizer = tok.take();
  std::ifstream in(argv[2], std::ios::binary);
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
