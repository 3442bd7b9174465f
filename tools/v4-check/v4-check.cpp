//===- v4-check.cpp - check a compiled model against the reference --------===//
//
// v4-check model.v4a --checkpoint DIR [--config config.json]
//          [--prompt-ids 1,2,3] [--decode N] [--chunk C] [--tolerance X]
//
// Runs the compiled model and the plain C++ reference on the same checkpoint
// and tokens (tools/v4-check/FidelityCheck.h) and prints, per run, the
// largest and mean normwise error of a logit row, the top-1 agreement, and
// decode == prefill. Exit codes: 0 within the tolerance of the artifact's
// numerics mode; 1 outside it, or an input it cannot use; 2 bad command line.
//
//===----------------------------------------------------------------------===//
#include "runtime/artifact/Artifact.h"
#include "tools/v4-check/FidelityCheck.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;

namespace {

enum ExitCode { kOk = 0, kFailed = 1, kBadCommandLine = 2 };

cl::OptionCategory checkCategory("v4-check options");
cl::opt<std::string> artifactPath(cl::Positional, cl::Required,
                                  cl::desc("<model.v4a>"),
                                  cl::cat(checkCategory));
cl::opt<std::string>
    checkpointPath("checkpoint", cl::Required,
                   cl::desc("Checkpoint: safetensors file, folder or index"),
                   cl::value_desc("path"), cl::cat(checkCategory));
cl::opt<std::string>
    configPath("config",
               cl::desc("The model's config.json (default: config.json in "
                        "the checkpoint's folder)"),
               cl::value_desc("path"), cl::cat(checkCategory));
cl::list<int64_t> promptIds("prompt-ids", cl::CommaSeparated,
                            cl::desc("Prompt token ids (default: 1..16)"),
                            cl::value_desc("1,2,3"), cl::cat(checkCategory));
cl::opt<int64_t> decode("decode",
                        cl::desc("Decode steps after the prompt (default 32)"),
                        cl::init(32), cl::cat(checkCategory));
cl::opt<int64_t> chunk("chunk",
                       cl::desc("Prefill chunk of the chunked run (default: "
                                "half the prompt)"),
                       cl::init(0), cl::cat(checkCategory));
cl::opt<uint64_t> seed("seed",
                       cl::desc("Seed of the decode continuation tokens"),
                       cl::init(1), cl::cat(checkCategory));
cl::opt<double> tolerance(
    "tolerance",
    cl::desc("Largest normwise error of a logit row (default: the table of "
             "the artifact's numerics mode)"),
    cl::cat(checkCategory));
cl::opt<bool> verbose("verbose", cl::desc("Print every row's error"),
                      cl::cat(checkCategory));

} // namespace

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  cl::SetVersionPrinter([](raw_ostream &os) {
    os << v4::artifact::toolVersion("v4-check") << "\n";
  });
  cl::HideUnrelatedOptions(checkCategory);
  if (!cl::ParseCommandLineOptions(
          argc, argv,
          "v4-check: a compiled model (.v4a) against the C++ reference on "
          "one checkpoint\n\n"
          "Exit codes: 0 within the tolerance of the artifact's numerics "
          "mode; 1 outside it, or an input it cannot use; 2 bad command "
          "line.\n",
          &errs()))
    return kBadCommandLine;
  if (tolerance.getNumOccurrences() && !(tolerance >= 0)) {
    errs() << "v4-check: --tolerance must be >= 0\n";
    return kBadCommandLine;
  }

  v4::check::Options o;
  o.artifact = artifactPath;
  o.checkpoint = checkpointPath;
  if (configPath.empty()) {
    SmallString<256> dir(checkpointPath);
    if (!sys::fs::is_directory(dir))
      sys::path::remove_filename(dir);
    sys::path::append(dir, "config.json");
    o.config = std::string(dir);
  } else {
    o.config = configPath;
  }
  if (promptIds.empty())
    for (int64_t i = 1; i <= 16; ++i)
      o.prompt.push_back(i);
  else
    o.prompt.assign(promptIds.begin(), promptIds.end());
  o.decode = decode;
  o.chunk = chunk;
  o.seed = seed;
  if (tolerance.getNumOccurrences())
    o.tolerance = tolerance;

  auto report = v4::check::run(o);
  if (!report) {
    errs() << toString(report.takeError()) << "\n";
    return kFailed;
  }
  outs() << formatv("v4-check: {0}: numerics {1}, fake-quant {2}, sum order "
                    "{6}; reference in {3}; tolerance {4:e2} per logit row "
                    "({5})\n",
                    artifactPath, v4::numericsModeName(report->numerics),
                    v4::fakeQuantModeName(report->fakeQuant),
                    report->tolerance.reference, report->bound,
                    tolerance.getNumOccurrences() ? "--tolerance"
                                                  : report->tolerance.why,
                    v4::sumOrderName(report->sumOrder));
  for (const auto &r : report->runs) {
    outs() << formatv("  {0,-26} rows {1,4}  max error {2:e2}  mean {3:e2}  "
                      "top-1 {4}/{5}\n",
                      r.name, r.rows, r.maxError, r.meanError, r.top1Agree,
                      r.rows);
    if (verbose)
      for (size_t i = 0; i < r.rowErrors.size(); ++i)
        outs() << formatv("    row {0,4}  {1:e2}\n", i, r.rowErrors[i]);
  }
  outs() << formatv("  {0,-26} max error {1:e2}\n", "decode == prefill",
                    report->replayError);
  outs() << (report->passed ? "PASS\n" : "FAIL: outside the tolerance\n");
  return report->passed ? kOk : kFailed;
}
