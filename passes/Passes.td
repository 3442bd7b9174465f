//===- Passes.td - graph-level passes on v4 ops ------------*- tablegen -*-===//
#ifndef V4_PASSES_PASSES_TD
#define V4_PASSES_PASSES_TD

include "mlir/Pass/PassBase.td"

//===----------------------------------------------------------------------===//
// Analysis and reporting
//===----------------------------------------------------------------------===//

def V4ModelStatisticsPass : Pass<"v4-model-statistics", "::mlir::ModuleOp"> {
  let summary = "Count the model's parameters, bytes and ops per family";
  let description = [{
    Walks the module and reports, as pass statistics and optionally as a text
    report on stderr:

    * the distinct parameters (`v4.parameter`, deduplicated by checkpoint
      name), their element count and their byte size in the logical dtype
      (FP4 counts half a byte per element, as in the checkpoint);
    * the model parameters (V4-SPEC 1.3: without `.scale` tensors and
      integer tables such as `tid2eid`), with and without `mtp.*`, and the
      parameters activated per token (main model, no embedding table, routed
      experts counted as top-k of E from the `v4.moe.experts` operand types);
    * the number of v4 ops per family (`v4.moe.*`, `v4.mhc.*`, ...).

    The IR is not changed. Why: a newcomer running `v4-opt` on a model sees
    what it contains, and the frontend's parameter-count test (V4-SPEC 1.3)
    reads the same numbers.

    ```
    v4-opt model.mlir --v4-model-statistics --mlir-pass-statistics
    ```
  }];
  let options = [
    Option<"printReport", "print-report", "bool", /*default=*/"false",
           "Print a human-readable report to stderr">
  ];
  let statistics = [
    Statistic<"numParameters", "parameters", "Distinct checkpoint tensors">,
    Statistic<"numParameterElements", "parameter-elements",
              "Elements over all distinct parameters">,
    Statistic<"numParameterBytes", "parameter-bytes",
              "Bytes of all distinct parameters in their logical dtypes">,
    Statistic<"numModelParameters", "model-parameters",
              "Model parameters (no scales, no integer tables), incl. MTP">,
    Statistic<"numActivatedParameters", "activated-parameters",
              "Parameters used per token: main model without the embedding, "
              "routed experts at top-k of E">,
    Statistic<"numV4Ops", "v4-ops", "Operations of the v4 dialect">
  ];
}

#endif // V4_PASSES_PASSES_TD
