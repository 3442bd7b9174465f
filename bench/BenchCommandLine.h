//===- BenchCommandLine.h - command line of the benchmark tools -*- C++ -*-===//
//
// The bench tools take Google Benchmark's --benchmark_* flags, then their
// own arguments through the tools' CLI11 helpers (tools/common/
// CommandLine.h): --help prints both, --version the one toolVersion line,
// a bad command line names the argument and exits 2.
//
//===----------------------------------------------------------------------===//
#ifndef V4_BENCH_BENCHCOMMANDLINE_H
#define V4_BENCH_BENCHCOMMANDLINE_H

#include "tools/common/CommandLine.h"

#include <benchmark/benchmark.h>

namespace v4::bench {

/// The app whose help --help prints before Google Benchmark's.
inline CLI::App *&helpApp() {
  static CLI::App *app = nullptr;
  return app;
}

/// Google Benchmark's flags leave argv, then `app` parses the rest:
/// v4::cli::kContinue, or the exit code to return now.
inline int parseCommandLine(CLI::App &app, int argc, char **argv) {
  helpApp() = &app;
  benchmark::Initialize(&argc, argv, [] {
    std::cout << helpApp()->help() << "\nGoogle Benchmark flags:\n"
              << std::flush;
    benchmark::PrintDefaultHelp();
  });
  return v4::cli::parse(app, argc, argv);
}

} // namespace v4::bench

#endif // V4_BENCH_BENCHCOMMANDLINE_H
