//===- Pipelines.cpp - the named phases of the compiler -------------------===//
#include "lowering/Pipelines.h"

#include "lowering/Artifact/SerializeArtifact.h"
#include "lowering/Dispatch/DispatchFormation.h"
#include "lowering/Passes.h"
#include "lowering/Target/TargetBackend.h"
#include "passes/Passes.h"

#include "dialects/V4/V4Dialect.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/Extensions/InlinerExtension.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

namespace mlir::v4 {

ArrayRef<PhaseInfo> getPhases() {
  static const PhaseInfo phases[] = {
      {Phase::Input, "input", "the model as imported or parsed"},
      {Phase::Graph, "graph", "layers inlined, canonicalized, fused"},
      {Phase::Dispatch, "dispatch",
       "kernels outlined; @step/@init_state a plan over buffers"},
      {Phase::Kernel, "kernel", "kernels compiled by the target backend"},
      {Phase::Artifact, "artifact", "the serialized .v4a artifact"},
  };
  return phases;
}

std::optional<Phase> parsePhase(StringRef name) {
  for (const PhaseInfo &p : getPhases())
    if (p.name == name)
      return p.phase;
  return std::nullopt;
}

StringRef getPhaseName(Phase phase) {
  return getPhases()[static_cast<size_t>(phase)].name;
}

void buildGraphPhase(OpPassManager &pm, const V4PipelineOptions &) {
  pm.addPass(createInlinerPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createV4PartitionPass());
  pm.addPass(createV4ApplyNumericsPass());
  pm.addNestedPass<func::FuncOp>(createV4FuseMhcBoundariesPass());
  pm.addNestedPass<func::FuncOp>(createV4DecomposeKVCompressPass());
}

void buildDispatchPhase(OpPassManager &pm, const V4PipelineOptions &) {
  pm.addPass(createV4FormDispatchesPass());
  pm.addPass(createV4MarkConcurrentDispatchesPass());
  pm.addPass(createV4MarkOutputOnlyDispatchesPass());
  pm.addPass(createV4PlanMemoryPass());
}

namespace {
/// The kernel phase of a module compiled for several targets: each kernels
/// module (getTargetKernelModules) through its own target's pipeline, as a
/// dynamic pipeline nested on it (one static nesting would run every
/// target's passes on every kernels module).
struct V4CompileTargetKernelsPass
    : public PassWrapper<V4CompileTargetKernelsPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(V4CompileTargetKernelsPass)
  StringRef getArgument() const override { return "v4-compile-target-kernels"; }
  StringRef getDescription() const override {
    return "Compile each target's kernels module with that target's kernel "
           "pipeline";
  }
  void getDependentDialects(DialectRegistry &registry) const override {
    // A dynamic pipeline's dialects and interface models must be loaded
    // before it runs: those of every target's passes.
    registerLoweringDialects(registry);
    for (StringRef name : getRegisteredTargetBackendNames()) {
      OpPassManager pipeline(ModuleOp::getOperationName());
      lookupTargetBackend(name)->buildKernelPipeline(pipeline);
      pipeline.getDependentDialects(registry);
    }
  }
  void runOnOperation() override {
    SmallVector<ModuleOp> modules = getTargetKernelModules(getOperation());
    if (modules.empty()) {
      getOperation().emitError()
          << "the kernel phase needs the kernels module of the dispatch phase";
      return signalPassFailure();
    }
    for (ModuleOp kernels : modules) {
      FailureOr<const TargetBackend *> target = getTargetBackendFor(kernels);
      if (failed(target))
        return signalPassFailure();
      OpPassManager pipeline(ModuleOp::getOperationName());
      (*target)->buildKernelPipeline(pipeline);
      if (failed(runPipeline(pipeline, kernels)))
        return signalPassFailure();
    }
  }
};
} // namespace

void buildKernelPhase(OpPassManager &pm, const V4PipelineOptions &options) {
  registerBuiltinTargetBackends();
  if (StringRef(options.target).contains(',')) {
    pm.addPass(std::make_unique<V4CompileTargetKernelsPass>());
    return;
  }
  OpPassManager &kernels = pm.nest<ModuleOp>();
  if (const TargetBackend *target = lookupTargetBackend(options.target)) {
    target->buildKernelPipeline(kernels);
    return;
  }
  V4BuildTargetKernelsPassOptions unknown;
  unknown.target = options.target;
  kernels.addPass(createV4BuildTargetKernelsPass(unknown));
}

void buildLoweringPipeline(OpPassManager &pm, const V4PipelineOptions &options,
                           Phase from, Phase to) {
  auto wants = [&](Phase p) { return from < p && p <= to; };
  if (wants(Phase::Graph))
    buildGraphPhase(pm, options);
  if (wants(Phase::Dispatch))
    buildDispatchPhase(pm, options);
  if (wants(Phase::Kernel))
    buildKernelPhase(pm, options);
}

LogicalResult compileToArtifact(ModuleOp module,
                                const V4PipelineOptions &options,
                                std::string &bytes) {
  DialectRegistry registry;
  registerLoweringDialects(registry);
  module.getContext()->appendDialectRegistry(registry);
  module.getContext()->loadAllAvailableDialects();
  if (!module->hasAttr("v4.target"))
    module->setAttr("v4.target",
                    StringAttr::get(module.getContext(), options.target));
  PassManager pm(module.getContext());
  buildLoweringPipeline(pm, options, Phase::Input, Phase::Kernel);
  if (failed(pm.run(module)))
    return failure();
  return serializeArtifact(module, bytes);
}

void registerLoweringDialects(DialectRegistry &registry) {
  registerBuiltinTargetBackends();
  func::registerInlinerExtension(registry);
  for (StringRef name : getRegisteredTargetBackendNames())
    lookupTargetBackend(name)->getDependentDialects(registry);
}

void registerV4IRDialects(DialectRegistry &registry) {
  registry.insert<V4Dialect, func::FuncDialect, arith::ArithDialect,
                  tensor::TensorDialect, linalg::LinalgDialect,
                  memref::MemRefDialect, scf::SCFDialect>();
  registerLoweringDialects(registry);
}

void registerV4LoweringPasses() {
  registerBuiltinTargetBackends();
  registerLoweringPasses();
  PassRegistration<V4CompileTargetKernelsPass>();
  PassPipelineRegistration<V4PipelineOptions>(
      "v4-graph-phase", "The graph phase: inline layers, canonicalize, fuse",
      buildGraphPhase);
  PassPipelineRegistration<V4PipelineOptions>(
      "v4-dispatch-phase",
      "The dispatch phase: outline kernels, plan over buffers",
      buildDispatchPhase);
  PassPipelineRegistration<V4PipelineOptions>(
      "v4-kernel-phase",
      "The kernel phase of a target on the nested kernels module",
      buildKernelPhase);
  PassPipelineRegistration<V4PipelineOptions>(
      "v4-lower", "Graph, dispatch and kernel phases",
      [](OpPassManager &pm, const V4PipelineOptions &options) {
        buildLoweringPipeline(pm, options, Phase::Input, Phase::Kernel);
      });
}

} // namespace mlir::v4
