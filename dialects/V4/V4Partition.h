//===- V4Partition.h - how a module is split over ranks ---------*- C++ -*-===//
//
// The partition a module is compiled for (issue 13) is a module attribute,
// set by `v4c --ep N` or written in the .mlir:
//   v4.ep = N : i64    expert parallelism over N ranks (default 1: none)
//   v4.tp = N : i64    tensor parallelism over N ranks: attention heads and
//                      the shared expert split, partial sums all-reduced
//                      (default 1); with v4.ep > 1 both span one world
//   v4.dp_attention    each rank runs its own sequences through attention;
//                      the routed experts serve every rank's tokens, which
//                      reach them as the attribute says: unit or
//                      "all_to_all": each routing slot's row is sent to the
//                      rank of its expert and back (v4.moe.dispatch,
//                      v4.comm.all_to_all); "gather": every rank's tokens
//                      are gathered to every rank and the outputs
//                      reduce-scattered
// `v4-partition` (graph phase) makes the graph say it; the artifact writer
// records it (Artifact.partition) so that the runtime runs the artifact on
// a world of exactly N ranks. This is the one reader.
//
//===----------------------------------------------------------------------===//
#ifndef V4_DIALECTS_V4_V4PARTITION_H
#define V4_DIALECTS_V4_V4PARTITION_H

#include "mlir/IR/BuiltinOps.h"

namespace mlir::v4 {

constexpr llvm::StringLiteral kExpertParallelAttrName = "v4.ep";
constexpr llvm::StringLiteral kTensorParallelAttrName = "v4.tp";
constexpr llvm::StringLiteral kDataParallelAttentionAttrName =
    "v4.dp_attention";

/// Whether `module` runs attention data-parallel (v4.dp_attention).
inline bool getDataParallelAttention(ModuleOp module) {
  return module->hasAttr(kDataParallelAttentionAttrName);
}

/// How the routed experts' rows travel under data-parallel attention.
enum class MoEExchange { AllToAll, Gather };

/// The exchange v4.dp_attention names (all-to-all when it is a unit); any
/// other value is an error at the module.
inline FailureOr<MoEExchange> getMoEExchange(ModuleOp module) {
  Attribute a = module->getAttr(kDataParallelAttentionAttrName);
  auto s = dyn_cast_or_null<StringAttr>(a);
  if (!a || isa<UnitAttr>(a) || (s && s.getValue() == "all_to_all"))
    return MoEExchange::AllToAll;
  if (s && s.getValue() == "gather")
    return MoEExchange::Gather;
  return module.emitError() << kDataParallelAttentionAttrName
                            << " must be a unit, \"all_to_all\" or "
                               "\"gather\", got "
                            << a;
}

/// The expert-parallel world of `module` (1 when the attribute is absent);
/// an attribute that is not an integer >= 1 is an error at the module.
/// The world of `module`'s partition attribute `name` (1 when absent); an
/// attribute that is not an integer >= 1 is an error at the module.
inline FailureOr<int64_t> getPartitionWorld(ModuleOp module,
                                            llvm::StringRef name) {
  Attribute a = module->getAttr(name);
  if (!a)
    return int64_t(1);
  auto i = dyn_cast<IntegerAttr>(a);
  if (!i || i.getValue().getSExtValue() < 1)
    return module.emitError() << name << " must be an integer >= 1, got " << a;
  return i.getValue().getSExtValue();
}

/// The expert-parallel world of `module` (v4.ep).
inline FailureOr<int64_t> getExpertParallel(ModuleOp module) {
  return getPartitionWorld(module, kExpertParallelAttrName);
}

/// The tensor-parallel world of `module` (v4.tp).
inline FailureOr<int64_t> getTensorParallel(ModuleOp module) {
  return getPartitionWorld(module, kTensorParallelAttrName);
}

} // namespace mlir::v4

#endif // V4_DIALECTS_V4_V4PARTITION_H
