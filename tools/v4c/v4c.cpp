//===- v4c.cpp - the v4c compiler driver ----------------------------------===//
//
// Thin main over the frontend and the phases of lowering/Pipelines.h: reads a
// config.json (imported with v4::importModel) or a .mlir file, runs the
// phases up to --compile-to with every --mlir-* option applied to its pass
// manager, and writes the IR or, for the artifact phase, the .v4a file.
// Exit codes: 0 success, 1 input rejected, 2 bad command line, 3 I/O error.
//
//===----------------------------------------------------------------------===//

#include "dialects/V4/V4Numerics.h"
#include "dialects/V4/V4Partition.h"
#include "frontend/Checkpoint.h"
#include "frontend/ModelConfig.h"
#include "frontend/ModelImporter.h"
#include "lowering/Artifact/SerializeArtifact.h"
#include "lowering/Dispatch/DispatchFormation.h"
#include "lowering/Pipelines.h"
#include "lowering/Report/MemoryReport.h"
#include "lowering/Target/PTX/PTXTarget.h"
#include "lowering/Target/TargetBackend.h"
#include "runtime/artifact/Artifact.h"
#include "runtime/base/HostISA.h"
#include "runtime/base/OutputFile.h"
#include "tools/v4c/KernelDump.h"
#include "tools/v4c/PhaseProgress.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Support/Timing.h"

#include "llvm/Config/llvm-config.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

using namespace llvm;

namespace {

enum ExitCode { kOk = 0, kRejected = 1, kBadCommandLine = 2, kIOError = 3 };
enum class Emit { MLIR, Artifact, Plan };

cl::OptionCategory v4cCategory("v4c options");

cl::opt<std::string> inputPath(cl::Positional, cl::Required,
                               cl::desc("<config.json | file.mlir>"),
                               cl::cat(v4cCategory));
cl::opt<std::string> outputPath("o", cl::desc("Output file ('-' = stdout)"),
                                cl::value_desc("file"), cl::init("-"),
                                cl::cat(v4cCategory));
cl::opt<Emit>
    emit("emit",
         cl::desc("What to write (default: artifact when -o ends in .v4a, "
                  "else mlir)"),
         cl::values(clEnumValN(Emit::MLIR, "mlir",
                               "the module as MLIR text, after --compile-to"),
                    clEnumValN(Emit::Artifact, "artifact",
                               "the compiled model (.v4a) for the runtime"),
                    clEnumValN(Emit::Plan, "plan",
                               "the memory plan: weights, state, arena and "
                               "a table over bounds (text; JSON with -o)")),
         cl::init(Emit::MLIR), cl::cat(v4cCategory));
cl::opt<std::string>
    compileTo("compile-to",
              cl::desc("Stop after this phase and write its IR: input, "
                       "graph, dispatch, kernel, artifact (default: input "
                       "for --emit=mlir, artifact for --emit=artifact)"),
              cl::value_desc("phase"), cl::cat(v4cCategory));
cl::opt<std::string>
    compileFrom("compile-from",
                cl::desc("The phase a .mlir input was written after "
                         "(default input): later phases only are run"),
                cl::value_desc("phase"), cl::init("input"),
                cl::cat(v4cCategory));
cl::opt<std::string> targetName("target",
                                cl::desc("Target backend of the kernels, or a "
                                         "comma list (cpu,sm_90a: one "
                                         "artifact that runs on either; "
                                         "default: the module's v4.target, "
                                         "else cpu)"),
                                cl::value_desc("name"), cl::cat(v4cCategory));
// Built from runtime/base/HostISA.h, the one list of levels.
const std::string hostISADesc =
    "x86-64 level of the CPU target's kernels: " + v4::knownHostISAs() +
    ", or native: this machine's newest (default " +
    std::string(v4::kDefaultHostISA) + ")";
cl::opt<std::string> hostISA("cpu", cl::desc(hostISADesc),
                             cl::value_desc("level"), cl::cat(v4cCategory));
cl::opt<std::string> sanitizeKernels(
    "sanitize-kernels",
    cl::desc("Instrument the CPU kernels with a sanitizer: address. The "
             "artifact then loads only into a runtime built with "
             "V4_SANITIZE=address (scripts/sanitize.sh)"),
    cl::value_desc("sanitizer"), cl::cat(v4cCategory));
cl::opt<std::string> cudaToolkit(
    "cuda-toolkit",
    cl::desc("CUDA toolkit the sm_90a target takes ptxas and libdevice from "
             "(default: $CUDA_HOME, $CUDA_PATH or /usr/local/cuda; without "
             "one the artifact holds PTX only)"),
    cl::value_desc("dir"), cl::cat(v4cCategory));
cl::opt<std::string>
    checkpointPath("checkpoint",
                   cl::desc("Check every parameter against this checkpoint "
                            "(file, directory or index) and report all "
                            "mismatches"),
                   cl::value_desc("path"), cl::cat(v4cCategory));
cl::opt<int64_t> batch("batch", cl::desc("Sequences per call (static bound)"),
                       cl::init(1), cl::cat(v4cCategory));
cl::opt<int64_t> maxContext("max-context",
                            cl::desc("Longest sequence the decode state "
                                     "holds (static bound; default: the "
                                     "config's max_position_embeddings)"),
                            cl::init(0), cl::cat(v4cCategory));
cl::opt<int64_t> maxChunk("max-chunk",
                          cl::desc("Most tokens one call takes (static "
                                   "bound of prefill chunks; default: "
                                   "min(max context, 512))"),
                          cl::init(0), cl::cat(v4cCategory));
cl::opt<int64_t> expertParallel(
    "ep",
    cl::desc("Expert parallelism: split the routed experts over N ranks "
             "(one program for every rank, run with mpirun -np N; default 1)"),
    cl::init(1), cl::cat(v4cCategory));
cl::opt<int64_t> tensorParallel(
    "tp",
    cl::desc("Tensor parallelism: split the attention heads, the shared "
             "expert and (without --ep) the routed experts' hidden units over "
             "N ranks, partial sums all-reduced (with --ep, the same N; "
             "default 1)"),
    cl::init(1), cl::cat(v4cCategory));
cl::opt<bool> dataParallelAttention(
    "dp-attention",
    cl::desc("With --ep N: each rank runs its own --batch sequences through "
             "attention, the experts serve every rank's tokens"),
    cl::init(false), cl::cat(v4cCategory));
cl::opt<mlir::v4::MoEExchange> moeExchange(
    "moe-exchange",
    cl::desc("With --dp-attention: how the routed experts' rows reach the "
             "experts' ranks"),
    cl::values(clEnumValN(mlir::v4::MoEExchange::AllToAll, "all-to-all",
                          "each routing slot's row to its expert's rank and "
                          "back, with counts known on the device (default)"),
               clEnumValN(mlir::v4::MoEExchange::Gather, "gather",
                          "every rank's tokens to every rank, the outputs "
                          "reduce-scattered")),
    cl::init(mlir::v4::MoEExchange::AllToAll), cl::cat(v4cCategory));
cl::opt<cl::boolOrDefault>
    progress("progress",
             cl::desc("Print each phase and its time on stderr (default: "
                      "when stderr is a terminal and the compile takes over "
                      "a second)"),
             cl::cat(v4cCategory));
cl::opt<bool> noProgress("no-progress", cl::desc("Same as --progress=false"),
                         cl::cat(v4cCategory));
cl::opt<std::string> dumpKernelsTo(
    "dump-kernels-to",
    cl::desc("Write each kernel's kernel-phase IR (<symbol>.mlir) and the "
             "artifact's code objects (code<N>.so) into this folder"),
    cl::value_desc("dir"), cl::cat(v4cCategory));

enum class Logits { Last, All };
cl::opt<Logits> logits(
    "logits", cl::desc("Which positions the step returns logits for"),
    cl::values(clEnumValN(Logits::Last, "last",
                          "the last position of each sequence (default)"),
               clEnumValN(Logits::All, "all",
                          "every position of a chunk (v4-run --dump-logits, "
                          "speculative decoding)")),
    cl::init(Logits::Last), cl::cat(v4cCategory));

cl::opt<v4::NumericsMode> numerics(
    "numerics", cl::desc("Rounding points of the compiled model"),
    cl::values(clEnumValN(v4::NumericsMode::Production, "production",
                          "bf16 rounding points of V4-SPEC 2.6 (default)"),
               clEnumValN(v4::NumericsMode::FP32, "fp32",
                          "every intermediate in fp32, weights dequantised "
                          "exactly")),
    cl::init(v4::NumericsMode::Production), cl::cat(v4cCategory));
cl::opt<v4::FakeQuantMode> fakeQuant(
    "fake-quant", cl::desc("Which FP8/FP4 fake quantisation points run"),
    cl::values(clEnumValN(v4::FakeQuantMode::All, "all",
                          "activations before FP8/FP4 GEMMs, KV, indexer "
                          "(default)"),
               clEnumValN(v4::FakeQuantMode::KV, "kv",
                          "only the KV and indexer points"),
               clEnumValN(v4::FakeQuantMode::None, "none", "none")),
    cl::init(v4::FakeQuantMode::All), cl::cat(v4cCategory));
cl::opt<v4::SumOrder> sumOrder(
    "sum-order", cl::desc("Summation order of the kernels' dot products"),
    cl::values(clEnumValN(v4::SumOrder::Reference, "reference",
                          "the reference's order: logits bit-identical to "
                          "test/reference (default)"),
               clEnumValN(v4::SumOrder::Fast, "fast",
                          "decode GEMVs sum along K in vector lanes with "
                          "FMA (docs/PERFORMANCE.md states the tolerance)")),
    cl::init(v4::SumOrder::Reference), cl::cat(v4cCategory));

const char *kOverview =
    "v4c: ahead-of-time compiler for DeepSeek-V4 models\n\n"
    "  v4c <config.json | file.mlir> --emit=mlir [-o <file>]\n"
    "  v4c <config.json | file.mlir> -o model.v4a [--target=cpu]\n"
    "  v4c <config.json | file.mlir> --compile-to=<phase> -o file.mlir\n\n"
    "Phases: input, graph, dispatch, kernel, artifact (lowering/Pipelines.h).\n"
    "Every MLIR pass-manager flag applies (--mlir-timing, ...: "
    "--help-hidden).\n"
    "Exit codes: 0 success; 1 input rejected (diagnostics printed);\n"
    "2 bad command line; 3 I/O error (missing file, unwritable output).\n";

/// Writes `text` to `path` through the tools' one output writer
/// (runtime/base/OutputFile.h): atomic for a regular file, in place for a
/// device or a pipe, "-" for stdout.
int writeOutput(StringRef path, const std::string &text) {
  if (path == "-") {
    outs() << text;
    outs().flush();
    return kOk;
  }
  if (v4::Status s = v4::writeOutputFile(path.str(), text); !s) {
    errs() << "v4c: error: " << s.message() << "\n";
    return kIOError;
  }
  return kOk;
}

/// The memory plan of a module through the dispatch phase, plus (for a
/// config input) a table over context lengths and batch sizes at the same
/// chunk bound. Text on stdout, JSON with -o.
int emitMemoryPlan(mlir::ModuleOp module, mlir::v4::Phase from,
                   const mlir::v4::V4PipelineOptions &options,
                   mlir::TimingScope &timing) {
  mlir::MLIRContext &context = *module.getContext();
  auto planModule =
      [&](mlir::ModuleOp m,
          mlir::v4::Phase start) -> FailureOr<mlir::v4::MemoryPlan> {
    std::optional<mlir::v4::StateBytes> state;
    if (start <= mlir::v4::Phase::Graph) {
      FailureOr<mlir::v4::StateBytes> s = mlir::v4::getStateBytes(m);
      if (failed(s))
        return failure();
      state = *s;
    }
    mlir::PassManager pm(&context);
    mlir::v4::buildLoweringPipeline(pm, options, start,
                                    mlir::v4::Phase::Dispatch);
    if (failed(pm.run(m)))
      return failure();
    FailureOr<mlir::v4::MemoryPlan> plan = mlir::v4::getMemoryPlan(m);
    if (succeeded(plan) && state)
      plan->state = *state;
    return plan;
  };
  mlir::TimingScope planTiming = timing.nest("memory plan");
  FailureOr<mlir::v4::MemoryPlan> plan = planModule(module, from);
  if (failed(plan))
    return kRejected;

  std::vector<mlir::v4::MemoryPlanRow> table;
  if (!StringRef(inputPath).ends_with(".mlir")) {
    auto config = v4::loadModelConfig(inputPath);
    if (!config) {
      errs() << toString(config.takeError()) << "\n";
      return kRejected;
    }
    for (int64_t b : {int64_t(1), int64_t(4), int64_t(16)})
      for (int64_t ctx :
           {int64_t(4096), int64_t(32768), int64_t(131072), int64_t(1048576)}) {
        if (ctx > config->maxPositionEmbeddings)
          continue;
        v4::ImportOptions rowOptions;
        rowOptions.batch = b;
        rowOptions.maxContext = ctx;
        auto row = v4::importModel(context, *config, rowOptions);
        if (failed(row))
          return kRejected;
        (**row)->setAttr(
            mlir::v4::kMaxChunkAttrName,
            mlir::IntegerAttr::get(mlir::IntegerType::get(&context, 64),
                                   std::min(ctx, plan->bounds.maxChunk)));
        FailureOr<mlir::v4::MemoryPlan> p =
            planModule(**row, mlir::v4::Phase::Input);
        if (failed(p))
          return kRejected;
        table.push_back({p->bounds, p->state, p->arena, p->io});
      }
  }
  std::string text;
  raw_string_ostream os(text);
  if (outputPath == "-")
    mlir::v4::printMemoryPlan(os, *plan, options.target, table);
  else
    os << formatv("{0:2}", mlir::v4::toJSON(*plan, options.target, table))
       << "\n";
  return writeOutput(outputPath, text);
}

} // namespace

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  mlir::registerAsmPrinterCLOptions();
  mlir::registerMLIRContextCLOptions();
  mlir::registerPassManagerCLOptions();
  mlir::registerDefaultTimingManagerCLOptions();
  cl::SetVersionPrinter(
      [](raw_ostream &os) { os << v4::artifact::toolVersion("v4c") << "\n"; });
  // --help shows v4c's own options; --help-hidden every LLVM/MLIR one.
  cl::HideUnrelatedOptions(v4cCategory);
  if (!cl::ParseCommandLineOptions(argc, argv, kOverview, &errs()))
    return kBadCommandLine;
  if (batch < 1 || (maxContext.getNumOccurrences() && maxContext < 1) ||
      (maxChunk.getNumOccurrences() && maxChunk < 1)) {
    errs() << "v4c: --batch, --max-context and --max-chunk must be >= 1\n";
    return kBadCommandLine;
  }
  if (dataParallelAttention && expertParallel < 2) {
    errs() << "v4c: --dp-attention needs --ep N with N > 1\n";
    return kBadCommandLine;
  }
  if (expertParallel < 1) {
    errs() << "v4c: --ep must be >= 1, got " << expertParallel << "\n";
    return kBadCommandLine;
  }
  if (tensorParallel < 1) {
    errs() << "v4c: --tp must be >= 1, got " << tensorParallel << "\n";
    return kBadCommandLine;
  }
  if (tensorParallel > 1 && expertParallel > 1 &&
      tensorParallel != expertParallel) {
    errs() << "v4c: --tp " << tensorParallel << " and --ep " << expertParallel
           << " must be the same world of ranks\n";
    return kBadCommandLine;
  }
  if (moeExchange.getNumOccurrences() && !dataParallelAttention) {
    errs() << "v4c: --moe-exchange needs --dp-attention\n";
    return kBadCommandLine;
  }
  if (dataParallelAttention && tensorParallel > 1) {
    errs() << "v4c: --dp-attention does not combine with --tp\n";
    return kBadCommandLine;
  }

  std::optional<mlir::v4::Phase> from = mlir::v4::parsePhase(compileFrom);
  if (!from || *from >= mlir::v4::Phase::Artifact) {
    errs() << "v4c: --compile-from: unknown or final phase '" << compileFrom
           << "' (input, graph, dispatch, kernel)\n";
    return kBadCommandLine;
  }
  bool wantArtifact = compileTo.getNumOccurrences()
                          ? compileTo == "artifact"
                          : (emit.getNumOccurrences()
                                 ? emit == Emit::Artifact
                                 : StringRef(outputPath).ends_with(".v4a"));
  std::optional<mlir::v4::Phase> to =
      wantArtifact ? mlir::v4::Phase::Artifact
                   : mlir::v4::parsePhase(compileTo.getNumOccurrences()
                                              ? StringRef(compileTo)
                                              : StringRef(compileFrom));
  if (!to || *to < *from) {
    errs() << "v4c: --compile-to: unknown phase '" << compileTo
           << "', or one before --compile-from (input, graph, dispatch, "
              "kernel, artifact)\n";
    return kBadCommandLine;
  }
  mlir::v4::registerBuiltinTargetBackends();
  if (targetName.getNumOccurrences()) {
    std::string error;
    if (failed(mlir::v4::parseTargetList(targetName, error))) {
      errs() << "v4c: --target: " << error << "\n";
      return kBadCommandLine;
    }
  }
  if (sanitizeKernels.getNumOccurrences() && sanitizeKernels != "address") {
    errs() << "v4c: --sanitize-kernels: unknown sanitizer '" << sanitizeKernels
           << "' (known: address)\n";
    return kBadCommandLine;
  }
  if (cudaToolkit.getNumOccurrences() &&
      !mlir::v4::findCUDAToolkit(cudaToolkit)) {
    errs() << "v4c: --cuda-toolkit: '" << cudaToolkit
           << "' is not a CUDA toolkit (no executable bin/ptxas in it)\n";
    return kBadCommandLine;
  }
  if (hostISA == "native")
    hostISA = std::string(v4::nativeHostISA());
  if (hostISA.getNumOccurrences() && !v4::isKnownHostISA(hostISA)) {
    errs() << "v4c: --cpu: unknown x86-64 level '" << hostISA
           << "' (known: " << v4::knownHostISAs() << ", native)\n";
    return kBadCommandLine;
  }

  // The output path is checked before the work (RELIABILITY.md §2.11).
  if (v4::Status s = v4::checkOutputPath(outputPath); !s) {
    errs() << "v4c: error: -o " << s.message() << "\n";
    return kIOError;
  }
  // Options are read before compiling: linking the kernels (lld, in
  // process) resets every llvm::cl option to its default.
  const std::string dumpDir = dumpKernelsTo;
  if (!dumpDir.empty()) {
    if (emit == Emit::Plan || *to < mlir::v4::Phase::Kernel) {
      errs() << "v4c: --dump-kernels-to needs the kernel phase "
                "(--compile-to=kernel or an artifact)\n";
      return kBadCommandLine;
    }
    if (std::error_code ec = sys::fs::create_directories(dumpDir)) {
      errs() << "v4c: --dump-kernels-to: cannot create directory '" << dumpDir
             << "': " << ec.message() << "\n";
      return kIOError;
    }
  }
  // Steps: input, the phases run, then the artifact (or the memory plan).
  unsigned steps =
      1 +
      (emit == Emit::Plan
           ? 1
           : static_cast<unsigned>(std::min(*to, mlir::v4::Phase::Kernel)) -
                 static_cast<unsigned>(*from)) +
      (wantArtifact && emit != Emit::Plan ? 1 : 0);
  v4::PhaseProgress phases(
      noProgress || progress == cl::BOU_FALSE ? v4::PhaseProgress::Mode::Off
      : progress == cl::BOU_TRUE              ? v4::PhaseProgress::Mode::On
                                              : v4::PhaseProgress::Mode::Auto,
      steps);

  mlir::DialectRegistry registry;
  v4::registerImportDialects(registry);
  mlir::v4::registerLoweringDialects(registry);
  mlir::MLIRContext context(registry);
  context.loadAllAvailableDialects();

  mlir::DefaultTimingManager tm;
  mlir::applyDefaultTimingManagerCLOptions(tm);
  mlir::TimingScope timing = tm.getRootScope();
  phases.begin("input");
  mlir::TimingScope inputTiming = timing.nest("input (parse or import)");
  v4::ImportOptions options;
  options.batch = batch;
  options.maxContext = maxContext;
  options.allLogits = logits == Logits::All;
  v4::LoadFailure why = v4::LoadFailure::Rejected;
  mlir::OwningOpRef<mlir::ModuleOp> module =
      v4::loadModel(context, inputPath, options, &why);
  if (!module)
    return why == v4::LoadFailure::IO ? kIOError : kRejected;
  inputTiming.stop();

  // The chunk bound is a module attribute like the other bounds: the flag
  // sets it, else the module keeps its own, else it is min(max context, 512)
  // (mlir::v4::getPlanBounds).
  if (maxChunk.getNumOccurrences()) {
    mlir::v4::PlanBounds bounds = mlir::v4::getPlanBounds(*module);
    int64_t chunk = maxChunk;
    if (chunk > bounds.maxContext) {
      errs() << "v4c: --max-chunk " << chunk << " exceeds the max context "
             << bounds.maxContext << "\n";
      return kBadCommandLine;
    }
    (*module)->setAttr(
        mlir::v4::kMaxChunkAttrName,
        mlir::IntegerAttr::get(mlir::IntegerType::get(&context, 64), chunk));
  }

  // The partition is a module attribute (v4-partition reads it).
  if (expertParallel.getNumOccurrences())
    (*module)->setAttr(
        mlir::v4::kExpertParallelAttrName,
        mlir::IntegerAttr::get(mlir::IntegerType::get(&context, 64),
                               expertParallel));
  if (tensorParallel.getNumOccurrences())
    (*module)->setAttr(
        mlir::v4::kTensorParallelAttrName,
        mlir::IntegerAttr::get(mlir::IntegerType::get(&context, 64),
                               tensorParallel));
  if (dataParallelAttention)
    (*module)->setAttr(
        mlir::v4::kDataParallelAttentionAttrName,
        mlir::StringAttr::get(&context,
                              moeExchange == mlir::v4::MoEExchange::Gather
                                  ? "gather"
                                  : "all_to_all"));

  // The numerics are module attributes: the flags set them, else the module
  // keeps its own (v4-apply-numerics and the kernel phase read them).
  if (numerics.getNumOccurrences() || fakeQuant.getNumOccurrences() ||
      sumOrder.getNumOccurrences()) {
    FailureOr<mlir::v4::ModuleNumerics> modes =
        mlir::v4::getModuleNumerics(*module);
    if (failed(modes))
      return kRejected;
    if (numerics.getNumOccurrences())
      modes->numerics = numerics;
    if (fakeQuant.getNumOccurrences())
      modes->fakeQuant = fakeQuant;
    if (sumOrder.getNumOccurrences())
      modes->sumOrder = sumOrder;
    mlir::v4::setModuleNumerics(*module, *modes);
  }

  // The target is a module attribute: the flag sets it, else the module
  // keeps its own, else the CPU.
  if (targetName.getNumOccurrences())
    (*module)->setAttr("v4.target",
                       mlir::StringAttr::get(&context, targetName));
  else if (!(*module)->hasAttr("v4.target"))
    (*module)->setAttr("v4.target", mlir::StringAttr::get(&context, "cpu"));
  if (hostISA.getNumOccurrences())
    (*module)->setAttr(mlir::v4::kHostISAAttrName,
                       mlir::StringAttr::get(&context, hostISA));
  if (sanitizeKernels.getNumOccurrences())
    (*module)->setAttr(mlir::v4::kSanitizeKernelsAttrName,
                       mlir::StringAttr::get(&context, sanitizeKernels));
  if (cudaToolkit.getNumOccurrences())
    (*module)->setAttr(mlir::v4::kCUDAToolkitAttrName,
                       mlir::StringAttr::get(&context, cudaToolkit));
  mlir::v4::V4PipelineOptions pipelineOptions;
  pipelineOptions.target =
      cast<mlir::StringAttr>((*module)->getAttr("v4.target")).str();

  if (!checkpointPath.empty()) {
    // Every parameter the model needs against the checkpoint, all mismatches
    // at once (docs/RELIABILITY.md ST-12).
    mlir::TimingScope checkTiming = timing.nest("checkpoint check");
    if (Error err = v4::checkCheckpoint(*module, checkpointPath)) {
      int code = kRejected;
      handleAllErrors(
          std::move(err),
          [&](const v4::CheckpointError &e) {
            errs() << "v4c: error: " << e.message << "\n";
            code = e.kind == v4::CheckpointError::IO ? kIOError : kRejected;
          },
          [&](const ErrorInfoBase &e) {
            errs() << "v4c: error: " << e.message() << "\n";
          });
      return code;
    }
  }

  if (emit == Emit::Plan) {
    phases.begin("plan");
    int code = emitMemoryPlan(*module, *from, pipelineOptions, timing);
    if (code == kOk)
      phases.finish();
    return code;
  }

  // Linking the kernels runs lld in-process, and lld resets every llvm::cl
  // option to its default: keep the output path before compiling.
  const std::string output = outputPath;
  if (wantArtifact && output == "-" && sys::Process::StandardOutIsDisplayed()) {
    errs() << "v4c: refusing to write a binary artifact to a terminal; "
              "use -o <file>.v4a\n";
    return kBadCommandLine;
  }

  // One pass manager per phase, so that each is timed (--mlir-timing
  // nests its passes under the phase) and reported by --progress.
  for (const mlir::v4::PhaseInfo &p : mlir::v4::getPhases()) {
    if (p.phase <= *from || p.phase > std::min(*to, mlir::v4::Phase::Kernel))
      continue;
    phases.begin(p.name);
    mlir::TimingScope phaseTiming = timing.nest(p.name);
    mlir::PassManager pm(&context);
    mlir::v4::buildLoweringPipeline(
        pm, pipelineOptions,
        static_cast<mlir::v4::Phase>(static_cast<int>(p.phase) - 1), p.phase);
    pm.enableTiming(phaseTiming);
    if (failed(mlir::applyPassManagerCLOptions(pm)) || failed(pm.run(*module)))
      return kRejected;
  }
  std::vector<std::pair<std::string, std::string>> kernelIR;
  if (!dumpDir.empty())
    kernelIR = v4::getKernelIR(*module);

  if (!wantArtifact) {
    mlir::TimingScope outputTiming = timing.nest("output");
    std::string text;
    raw_string_ostream os(text);
    module->print(os);
    if (!dumpDir.empty() && !v4::writeKernelDump(dumpDir, kernelIR, nullptr))
      return kIOError;
    int code = writeOutput(output, text);
    if (code == kOk)
      phases.finish();
    return code;
  }
  phases.begin("artifact");
  std::string bytes;
  {
    mlir::TimingScope artifactTiming = timing.nest("artifact");
    if (failed(mlir::v4::serializeArtifact(*module, bytes)))
      return kRejected;
  }
  if (!dumpDir.empty() && !v4::writeKernelDump(dumpDir, kernelIR, &bytes))
    return kIOError;
  int code = writeOutput(output, bytes);
  if (code == kOk)
    phases.finish();
  return code;
}
