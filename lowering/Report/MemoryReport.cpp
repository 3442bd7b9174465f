//===- MemoryReport.cpp - what a compiled model needs, per device ---------===//
#include "lowering/Report/MemoryReport.h"

#include "dialects/V4/V4Ops.h"
#include "dialects/V4/V4Partition.h"
#include "dialects/V4/V4StorageLayout.h"
#include "dialects/V4/V4Types.h"
#include "runtime/base/Bytes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"

using namespace mlir;
using namespace mlir::v4;

namespace {

/// Bytes of a storage memref with the token dim at `tokens` (0 without a
/// storage dtype).
uint64_t memrefBytes(MemRefType type, int64_t tokens) {
  FailureOr<uint64_t> n = getStorageBytes(type, tokens);
  return succeeded(n) ? *n : 0;
}

uint64_t storageBytes(Type type, int64_t tokens) {
  SmallVector<Type> memrefs;
  if (failed(getStorageMemRefTypes(type, memrefs)))
    return 0;
  uint64_t n = 0;
  for (Type t : memrefs)
    n += memrefBytes(cast<MemRefType>(t), tokens);
  return n;
}

} // namespace

FailureOr<StateBytes> mlir::v4::getStateBytes(ModuleOp module) {
  auto step = module.lookupSymbol<func::FuncOp>("step");
  if (!step || step.isExternal() || step.getNumArguments() < 4)
    return module.emitError() << "no @step with ids, next ids, start "
                                 "positions, positions and the state";
  StateBytes s;
  for (BlockArgument a : step.getArguments().drop_front(4)) {
    Type t = a.getType();
    uint64_t n = storageBytes(t, 1);
    if (isa<WindowRingType>(t))
      s.windowRings += n;
    else if (isa<KVCacheType>(t))
      s.kvCaches += n;
    else if (isa<CompressorStateType>(t))
      s.compressorState += n;
    else if (isa<EngramStateType>(t))
      s.engramState += n;
    else
      return step.emitError() << "state argument #" << a.getArgNumber()
                              << " of type " << t << " is no decode state";
  }
  return s;
}

FailureOr<MemoryPlan> mlir::v4::getMemoryPlan(ModuleOp planned) {
  MemoryPlan p;
  p.bounds = getPlanBounds(planned);
  FailureOr<int64_t> ep = getExpertParallel(planned);
  FailureOr<int64_t> tp = getTensorParallel(planned);
  if (failed(ep) || failed(tp))
    return failure();
  p.ranks = std::max(*ep, *tp);
  p.tensorParallel = *tp;
  p.expertParallel = *ep;
  p.dataParallelAttention = getDataParallelAttention(planned);
  auto step = planned.lookupSymbol<func::FuncOp>("step");
  if (!step || step.isExternal() || step.getNumArguments() < 4)
    return planned.emitError() << "no @step plan: run the dispatch phase";
  int64_t tokens = p.bounds.maxChunk;
  for (BlockArgument a : step.getArguments()) {
    auto type = dyn_cast<MemRefType>(a.getType());
    if (!type)
      return planned.emitError() << "@step is not a plan: run the dispatch "
                                    "phase";
    uint64_t n = memrefBytes(type, tokens);
    if (step.getArgAttr(a.getArgNumber(), "v4.state"))
      p.state.kvCaches += n;
    else
      p.io += n;
  }
  for (Type t : step.getResultTypes())
    if (auto m = dyn_cast<MemRefType>(t))
      p.io += memrefBytes(m, tokens);
  llvm::DenseSet<StringRef> parameters;
  for (StringRef fn : {"init_state", "step"}) {
    auto f = planned.lookupSymbol<func::FuncOp>(fn);
    if (!f || f.isExternal())
      continue;
    for (Operation &op : f.getBody().front()) {
      if (auto param = dyn_cast<PlanParameterOp>(op)) {
        if (!parameters.insert(param.getName()).second)
          continue;
        uint64_t n = memrefBytes(param.getBuffer().getType(), tokens);
        bool stack = param.getName().contains("{}");
        (stack ? p.weightsPrepared : p.weightsStored) += n;
        if (stack && !param.getShards())
          p.wholeStacks = true;
      } else if (auto alloc = dyn_cast<memref::AllocOp>(op)) {
        bool returned = llvm::any_of(alloc->getUsers(), [](Operation *u) {
          return isa<func::ReturnOp>(u);
        });
        if (alloc->hasAttr("v4.arena"))
          p.arena = std::max<uint64_t>(
              p.arena, static_cast<uint64_t>(alloc.getType().getNumElements()));
        else if (!returned)
          p.otherActivations += memrefBytes(alloc.getType(), tokens);
      }
    }
  }
  return p;
}

llvm::json::Value mlir::v4::toJSON(const MemoryPlan &p, StringRef device,
                                   ArrayRef<MemoryPlanRow> table) {
  auto state = [](const StateBytes &s) {
    return llvm::json::Object{{"window_rings", s.windowRings},
                              {"kv_caches", s.kvCaches},
                              {"compressor_state", s.compressorState},
                              {"engram_state", s.engramState},
                              {"total", s.total()}};
  };
  auto bounds = [](const PlanBounds &b) {
    return llvm::json::Object{{"batch", b.batch},
                              {"max_context", b.maxContext},
                              {"max_chunk", b.maxChunk}};
  };
  llvm::json::Array rows;
  for (const MemoryPlanRow &r : table)
    rows.push_back(
        llvm::json::Object{{"bounds", bounds(r.bounds)},
                           {"state", state(r.state)},
                           {"arena", r.arena},
                           {"inputs_outputs", r.io},
                           {"session", r.state.total() + r.arena + r.io}});
  return llvm::json::Object{
      {"device", device},
      {"ranks", p.ranks},
      {"partition",
       llvm::json::Object{
           {"tensor_parallel", p.tensorParallel},
           {"expert_parallel", p.expertParallel},
           {"data_parallel_attention", p.dataParallelAttention},
           {"routed_experts_replicated", p.ranks > 1 && p.wholeStacks}}},
      {"bounds", bounds(p.bounds)},
      {"weights", llvm::json::Object{{"stored", p.weightsStored},
                                     {"prepared", p.weightsPrepared},
                                     {"total", p.weights()}}},
      {"session", llvm::json::Object{{"state", state(p.state)},
                                     {"arena", p.arena},
                                     {"other_activations", p.otherActivations},
                                     {"inputs_outputs", p.io},
                                     {"total", p.session()}}},
      {"table", std::move(rows)}};
}

void mlir::v4::printMemoryPlan(llvm::raw_ostream &os, const MemoryPlan &p,
                               StringRef device,
                               ArrayRef<MemoryPlanRow> table) {
  os << "memory plan (" << device << "), batch " << p.bounds.batch
     << ", max context " << p.bounds.maxContext << ", max chunk "
     << p.bounds.maxChunk;
  if (p.ranks > 1) {
    // Routed experts are replicated when neither --ep nor --tp split them
    // (--tp: unless I/N is whole 128-blocks).
    os << ", per rank of " << p.ranks << " (";
    llvm::ListSeparator sep;
    if (p.tensorParallel > 1)
      os << sep << "tensor parallel";
    if (p.expertParallel > 1)
      os << sep << "expert parallel";
    else if (p.wholeStacks)
      os << sep << "routed experts replicated";
    if (p.dataParallelAttention)
      os << sep << "data-parallel attention";
    os << ")";
  }
  os << "\n";
  os << "  weights            " << ::v4::formatBytes(p.weights())
     << " (as stored " << ::v4::formatBytes(p.weightsStored) << ", prepared "
     << ::v4::formatBytes(p.weightsPrepared) << ")\n";
  os << "  per session        " << ::v4::formatBytes(p.session()) << "\n";
  os << "    window rings     " << ::v4::formatBytes(p.state.windowRings)
     << "\n";
  os << "    KV caches        " << ::v4::formatBytes(p.state.kvCaches) << "\n";
  os << "    compressor state " << ::v4::formatBytes(p.state.compressorState)
     << "\n";
  os << "    engram state     " << ::v4::formatBytes(p.state.engramState)
     << "\n";
  os << "    activation arena " << ::v4::formatBytes(p.arena) << "\n";
  if (p.otherActivations)
    os << "    other activations " << ::v4::formatBytes(p.otherActivations)
       << "\n";
  os << "    inputs/outputs   " << ::v4::formatBytes(p.io) << "\n";
  if (table.empty())
    return;
  os << "per session over bounds (max chunk " << p.bounds.maxChunk << "):\n";
  os << llvm::format("  %6s %10s %12s %12s %12s %12s\n", "batch", "context",
                     "KV+rings", "other state", "arena", "session");
  for (const MemoryPlanRow &r : table)
    os << llvm::format(
        "  %6lld %10lld %12s %12s %12s %12s\n", (long long)r.bounds.batch,
        (long long)r.bounds.maxContext,
        ::v4::formatBytes(r.state.kvCaches + r.state.windowRings).c_str(),
        ::v4::formatBytes(r.state.compressorState + r.state.engramState)
            .c_str(),
        ::v4::formatBytes(r.arena).c_str(),
        ::v4::formatBytes(r.state.total() + r.arena + r.io).c_str());
}
