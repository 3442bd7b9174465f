//===- MemoryReport.h - what a compiled model needs, per device -*- C++ -*-===//
//
// The memory a model needs at its compiled bounds, read from the IR: the
// state by kind from the @step of an input-phase module (window rings,
// compressed KV caches, compressor state, Engram state), weights, the
// activation arena and the inputs/outputs from the plan of the dispatch
// phase. `v4c --emit=plan` prints it with a table over bounds; the runtime
// checks the same totals (read from the artifact) before it allocates.
//
//===----------------------------------------------------------------------===//
#ifndef V4_LOWERING_REPORT_MEMORYREPORT_H
#define V4_LOWERING_REPORT_MEMORYREPORT_H

#include "lowering/Dispatch/DispatchFormation.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <vector>

namespace mlir::v4 {

/// Per-session state bytes by kind.
struct StateBytes {
  uint64_t windowRings = 0;
  uint64_t kvCaches = 0;
  uint64_t compressorState = 0;
  uint64_t engramState = 0;
  uint64_t total() const {
    return windowRings + kvCaches + compressorState + engramState;
  }
};

/// The state of the @step of an input-phase (or graph-phase) module.
FailureOr<StateBytes> getStateBytes(ModuleOp module);

struct MemoryPlan {
  PlanBounds bounds;
  /// Ranks of the partition (the world of v4.tp and v4.ep); every other
  /// number is one rank's.
  int64_t ranks = 1;
  /// How the ranks split the model: v4.tp, v4.ep (1: not split that way)
  /// and v4.dp_attention.
  int64_t tensorParallel = 1;
  int64_t expertParallel = 1;
  bool dataParallelAttention = false;
  /// Some per-expert stack is whole on every rank (not sharded or sliced).
  bool wholeStacks = false;
  /// Parameters bound as the checkpoint stores them.
  uint64_t weightsStored = 0;
  /// Parameters the runtime gathers into a layout of their own (per-expert
  /// stacks: one buffer from E checkpoint tensors).
  uint64_t weightsPrepared = 0;
  StateBytes state;
  uint64_t arena = 0;
  /// Activations outside the arena (none after v4-plan-memory).
  uint64_t otherActivations = 0;
  /// Inputs and outputs (ids, positions, logits) per session.
  uint64_t io = 0;

  uint64_t weights() const { return weightsStored + weightsPrepared; }
  uint64_t session() const {
    return state.total() + arena + otherActivations + io;
  }
};

/// Weights, arena, other activations and inputs/outputs of a module after
/// the dispatch phase; `state` is filled from the plan's state buffers as
/// one total (in `kvCaches`) unless the caller sets it from getStateBytes.
FailureOr<MemoryPlan> getMemoryPlan(ModuleOp planned);

/// One row of the table over bounds.
struct MemoryPlanRow {
  PlanBounds bounds;
  StateBytes state;
  uint64_t arena = 0;
  uint64_t io = 0;
};

llvm::json::Value toJSON(const MemoryPlan &plan, StringRef device,
                         ArrayRef<MemoryPlanRow> table);
void printMemoryPlan(llvm::raw_ostream &os, const MemoryPlan &plan,
                     StringRef device, ArrayRef<MemoryPlanRow> table);

} // namespace mlir::v4

#endif // V4_LOWERING_REPORT_MEMORYREPORT_H
