//===- FidelityCheck.h - a compiled model against the reference -*- C++ -*-===//
//
// The check `v4-check` runs (issue 9): the compiled model (through the
// runtime's C API) and the plain C++ reference (reference/) on the same
// checkpoint and tokens, in three runs:
//   prefill   the prompt in one call;
//   chunked   the prompt in chunks of `chunk`, then `decode` steps of one
//             token (teacher-forced: a seeded pseudo-random continuation, so
//             both sides see the same tokens);
//   replay    the compiled model on prompt + continuation in one call, which
//             must equal `chunked` (decode == prefill).
// Every logit row the artifact returns (main and MTP) is compared with the
// reference's row by normwise relative error ||a - b|| / ||b|| and by top-1.
// The reference runs in the artifact's numerics (toleranceFor is the table).
//
//===----------------------------------------------------------------------===//
#ifndef V4_TOOLS_V4CHECK_FIDELITYCHECK_H
#define V4_TOOLS_V4CHECK_FIDELITYCHECK_H

#include "runtime/base/NumericsMode.h"

#include "llvm/Support/Error.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace v4::check {

struct Options {
  std::string artifact;   // .v4a
  std::string checkpoint; // safetensors file, folder or index
  std::string config;     // config.json of the model
  std::vector<int64_t> prompt;
  int64_t decode = 32;             // decode steps after the prompt
  int64_t chunk = 0;               // prefill chunk (0: half the prompt, >= 1)
  uint64_t seed = 1;               // continuation tokens
  std::optional<double> tolerance; // overrides the mode's table
};

/// The reference a mode is checked against and the error it must meet.
struct Tolerance {
  const char *reference; // "production rounding" / "double"
  double maxRowError;    // per logit row, normwise relative
  bool top1MustAgree;
  const char *why;
};
Tolerance toleranceFor(NumericsMode numerics, FakeQuantMode fakeQuant,
                       SumOrder sumOrder);

struct RunReport {
  std::string name;
  int64_t rows = 0;
  double maxError = 0, meanError = 0;
  int64_t top1Agree = 0;
  std::vector<double> rowErrors; // in call order, main rows then MTP rows
};

struct Report {
  NumericsMode numerics = NumericsMode::Production;
  FakeQuantMode fakeQuant = FakeQuantMode::All;
  SumOrder sumOrder = SumOrder::Reference;
  Tolerance tolerance{};
  double bound = 0; // the tolerance applied (table or override)
  std::vector<RunReport> runs;
  double replayError = 0; // decode == prefill, compiled vs compiled
  bool passed = false;
};

/// Runs the check. An error names the input that could not be used (the
/// artifact, checkpoint, config, prompt or chunk); a result that misses the
/// tolerance is a Report with passed == false.
llvm::Expected<Report> run(const Options &options);

} // namespace v4::check

#endif // V4_TOOLS_V4CHECK_FIDELITYCHECK_H
