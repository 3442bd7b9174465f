//===- v4-gen-checkpoint.cpp - T1 random checkpoints and checkpoint checks ===//
//
//   v4-gen-checkpoint MODEL -o DIR --seed N [--max-shard-bytes B]
//   v4-gen-checkpoint MODEL --check PATH
//
// MODEL is a v4 module (.mlir) or a config.json, imported as v4c does.
//
// Generates deterministic random weights for every parameter of a v4 model
// module (V4-SPEC 11.1 recipe, official layout and quantisation), or checks
// a checkpoint against the module and prints every mismatch. Exit codes
// (docs/STYLE.md): 0 ok, 1 input rejected, 2 bad command line, 3 I/O.
//
//===----------------------------------------------------------------------===//

#include "frontend/Checkpoint.h"
#include "frontend/ModelImporter.h"

#include "mlir/IR/MLIRContext.h"
#include "runtime/artifact/Artifact.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;

static cl::OptionCategory category("v4-gen-checkpoint options");
static cl::opt<std::string> inputPath(cl::Positional,
                                      cl::desc("<model.mlir | config.json>"),
                                      cl::Required, cl::cat(category));
static cl::opt<std::string> outputDir("o", cl::desc("output directory"),
                                      cl::value_desc("dir"), cl::cat(category));
static cl::opt<std::string>
    checkPath("check",
              cl::desc("check a checkpoint (file, directory or "
                       "index) against the model instead"),
              cl::value_desc("path"), cl::cat(category));
static cl::opt<uint64_t> seed("seed", cl::desc("random seed"),
                              cl::cat(category));
static cl::opt<int64_t> maxShardBytes(
    "max-shard-bytes",
    cl::desc("shard when the tensors exceed this many bytes (<= 0: never)"),
    cl::init(int64_t(4) << 30), cl::cat(category));
static cl::opt<v4::DerivedCopies> engramCopies(
    "engram-copies",
    cl::desc("which derived Engram constants (V4-SPEC 8.4) to store"),
    cl::values(clEnumValN(v4::DerivedCopies::Multipliers, "multipliers",
                          "the hash multipliers (default)"),
               clEnumValN(v4::DerivedCopies::None, "none",
                          "neither: the DeepSeek-V4.1 layout as shipped"),
               clEnumValN(v4::DerivedCopies::All, "all",
                          "the multipliers and the primes")),
    cl::init(v4::DerivedCopies::Multipliers), cl::cat(category));

static int report(Error err) {
  int code = 1;
  handleAllErrors(
      std::move(err),
      [&](const v4::CheckpointError &e) {
        errs() << "v4-gen-checkpoint: error: " << e.message << "\n";
        code = e.kind == v4::CheckpointError::IO ? 3 : 1;
      },
      [&](const ErrorInfoBase &e) {
        errs() << "v4-gen-checkpoint: error: " << e.message() << "\n";
      });
  return code;
}

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  cl::SetVersionPrinter([](raw_ostream &os) {
    os << v4::artifact::toolVersion("v4-gen-checkpoint") << "\n";
  });
  cl::HideUnrelatedOptions(category);
  if (!cl::ParseCommandLineOptions(
          argc, argv,
          "v4 checkpoint generator and checker\n\n"
          "  v4-gen-checkpoint MODEL -o DIR --seed N\n"
          "  v4-gen-checkpoint MODEL --check PATH\n\n"
          "Exit codes: 0 success; 1 rejected; 2 bad command line; 3 I/O.\n",
          &errs()))
    return 2;
  bool check = checkPath.getNumOccurrences() > 0;
  bool generate = outputDir.getNumOccurrences() > 0;
  if (check == generate) {
    errs() << "v4-gen-checkpoint: error: give exactly one of -o DIR and "
              "--check PATH\n";
    return 2;
  }
  if (generate && seed.getNumOccurrences() == 0) {
    errs() << "v4-gen-checkpoint: error: -o needs --seed N\n";
    return 2;
  }
  if (check &&
      (seed.getNumOccurrences() || maxShardBytes.getNumOccurrences())) {
    errs() << "v4-gen-checkpoint: error: --seed and --max-shard-bytes only "
              "apply to generation (-o)\n";
    return 2;
  }
  // A config.json is imported; batch and context bounds do not change the
  // parameters, so the defaults serve.
  mlir::MLIRContext context;
  v4::LoadFailure why = v4::LoadFailure::Rejected;
  auto module = v4::loadModel(context, inputPath, v4::ImportOptions(), &why);
  if (!module)
    return why == v4::LoadFailure::IO ? 3 : 1;

  if (check) {
    if (Error err = v4::checkCheckpoint(*module, checkPath))
      return report(std::move(err));
    outs() << "checkpoint '" << checkPath << "' matches the module\n";
    return 0;
  }
  if (Error err = v4::generateCheckpoint(*module, seed, outputDir,
                                         maxShardBytes, engramCopies))
    return report(std::move(err));
  return 0;
}
