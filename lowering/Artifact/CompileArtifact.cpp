//===- CompileArtifact.cpp - v4 module -> CPU artifact --------------------===//
#include "lowering/Artifact/CompileArtifact.h"

#include "lowering/Dispatch/DispatchFormation.h"
#include "lowering/Target/CPU/CPUTarget.h"
#include "runtime/artifact/Artifact.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/Config/llvm-config.h"

using namespace mlir;
namespace art = ::v4::artifact;

namespace mlir::v4 {

static int64_t intAttr(ModuleOp m, StringRef name, int64_t dflt) {
  if (auto a = m->getAttrOfType<IntegerAttr>(name))
    return a.getInt();
  return dflt;
}

LogicalResult compileArtifact(ModuleOp model, std::string &bytes) {
  FailureOr<DispatchPlan> plan = formDispatches(model);
  if (failed(plan))
    return failure();
  FailureOr<std::string> so = compileKernelsToSharedObject(*plan->kernels);
  if (failed(so))
    return failure();

  art::Writer writer(std::move(plan->description));
  art::Description &d = writer.description();
  d.versions.compiler = "v4c 0.1.0";
  d.versions.mlir = LLVM_VERSION_STRING;
  d.target = art::Target::CPU;
  d.bounds.batch = intAttr(model, "v4.batch", 1);
  d.bounds.maxContext = intAttr(model, "v4.max_context", 1);
  d.bounds.maxChunk = d.bounds.maxContext;
  for (const art::Parameter &p : d.parameters) {
    if (p.dtype == art::DType::F8E4M3 || p.dtype == art::DType::F8E8M0)
      d.features |= art::kFeatureFP8;
    if (p.name.find("{}") != std::string::npos && p.dtype == art::DType::I8)
      d.features |= art::kFeatureFP4;
  }
  for (const art::StateSpec &s : d.stateSpecs)
    if (s.reset == art::ResetKind::PadId)
      d.features |= art::kFeatureEngram;
  writer.addCodeObject(art::Target::CPU, art::CodeFormat::HostSharedObject,
                       std::vector<uint8_t>(so->begin(), so->end()));
  art::Expected<std::vector<uint8_t>> file = writer.serialize();
  if (!file)
    return model.emitError()
           << "writing the artifact failed: " << file.status().message();
  // Self-check with the runtime's loader: every AF layer.
  art::Expected<art::Artifact> check =
      art::Artifact::load("compiled artifact", file->data(), file->size());
  if (!check)
    return model.emitError() << "the compiled artifact does not verify (a "
                                "compiler bug): "
                             << check.status().message();
  bytes.assign(file->begin(), file->end());
  return success();
}

} // namespace mlir::v4
