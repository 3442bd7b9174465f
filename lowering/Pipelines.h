//===- Pipelines.h - the named phases of the compiler -----------*- C++ -*-===//
//
// v4c and v4-opt build the same pipelines from these builders, so any phase
// v4c runs can be printed (--mlir-print-ir-after-all), stopped at
// (v4c --compile-to=<phase>) and replayed from a .mlir file
// (v4-opt --pass-pipeline='builtin.module(v4-kernel-phase{target=cpu})').
//
//   input     the model as imported (or read from .mlir): v4 ops, one
//             function per layer, @init_state and @step
//   graph     layer functions inlined, canonicalized, fusions
//             (v4-fuse-mhc-boundaries)
//   dispatch  kernels outlined into `module @kernels`, @step/@init_state a
//             plan of v4.plan.dispatch over buffers (v4-form-dispatches)
//   kernel    the kernels module compiled by the target backend (hand-built
//             hot ops, linalg bodies, bufferized, target IR)
//   artifact  the code object and the plan serialized into the .v4a file
//             (lowering/Artifact; not a pass: it writes bytes)
//
//===----------------------------------------------------------------------===//
#ifndef V4_LOWERING_PIPELINES_H
#define V4_LOWERING_PIPELINES_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"
#include "mlir/Support/LLVM.h"

#include <optional>
#include <string>

namespace mlir::v4 {

enum class Phase { Input, Graph, Dispatch, Kernel, Artifact };

struct PhaseInfo {
  Phase phase;
  StringLiteral name;
  StringLiteral description;
};
/// Every phase in order, with its name and a one-line description.
ArrayRef<PhaseInfo> getPhases();
std::optional<Phase> parsePhase(StringRef name);
StringRef getPhaseName(Phase phase);

struct V4PipelineOptions : public PassPipelineOptions<V4PipelineOptions> {
  Option<std::string> target{
      *this, "target",
      llvm::cl::desc("Target backend of the kernel phase (cpu), or a comma "
                     "list of them (cpu,sm_90a: the kernels of each)"),
      llvm::cl::init("cpu")};
};

void buildGraphPhase(OpPassManager &pm, const V4PipelineOptions &options);
void buildDispatchPhase(OpPassManager &pm, const V4PipelineOptions &options);
/// The target's kernel pipeline, nested on the kernels module. An unknown
/// target still builds (its first pass reports the name). A target list
/// compiles each target's kernels module (getTargetKernelModules) with its
/// own pipeline (pass v4-compile-target-kernels).
void buildKernelPhase(OpPassManager &pm, const V4PipelineOptions &options);

/// Appends the phases after `from` up to and including `to` (Artifact adds
/// nothing: serialization is not a pass).
void buildLoweringPipeline(OpPassManager &pm, const V4PipelineOptions &options,
                           Phase from, Phase to);

/// The whole compile of a model module (modified): sets `v4.target` from
/// `options` if the module has none, runs every phase and serializes the
/// artifact into `bytes`. Loads the lowering dialects into the module's
/// context. Emits diagnostics on failure.
LogicalResult compileToArtifact(ModuleOp module,
                                const V4PipelineOptions &options,
                                std::string &bytes);

/// Adds every target's dialects and interface models to `registry`, so
/// that a context can run any kernel phase.
void registerLoweringDialects(DialectRegistry &registry);
/// Everything v4 IR at any phase may hold: the v4 dialect, the upstream
/// dialects of its bodies (func, arith, tensor, linalg, memref, scf) and
/// registerLoweringDialects. What v4-opt and the IR fuzzer parse with.
void registerV4IRDialects(DialectRegistry &registry);

/// Registers the lowering passes and the pipelines v4-graph-phase,
/// v4-dispatch-phase, v4-kernel-phase and v4-lower (all three) for v4-opt.
void registerV4LoweringPasses();

} // namespace mlir::v4

#endif // V4_LOWERING_PIPELINES_H
