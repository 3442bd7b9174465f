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

//===----------------------------------------------------------------------===//
// Fusion
//===----------------------------------------------------------------------===//

// Not anchored: it runs on a function or on a whole module, so that both
// `--pass-pipeline=...func.func(v4-fuse-mhc-boundaries)` and the flag form
// `v4-opt m.mlir --v4-fuse-mhc-boundaries` work.
def V4FuseMhcBoundariesPass : Pass<"v4-fuse-mhc-boundaries"> {
  let summary = "Fuse each mHC post with the mHC pre that reads its lanes";
  let description = [{
    At every mHC boundary the new lanes of one site's `v4.mhc.post` are the
    input of the next site's `v4.mhc.pre`: the attention site's post and the
    FFN site's pre inside a block, and (once the layer functions are
    inlined) the FFN post of layer i and the attention pre of layer i+1.
    The pass replaces such a pair by one `v4.mhc.post_pre`, which computes
    the new lanes and, on them, the pre's y, post and comb. The new lanes
    stay a result: the next site's post reads them.

    Before:
    ```mlir
    %x1 = v4.mhc.post %o, %x, %post, %comb : (...) -> tensor<1x?x4x64xbf16>
    %y, %p1, %c1 = v4.mhc.pre %x1, %fn, %base, %scale : (...) -> (...)
    ```
    After:
    ```mlir
    %x1, %y, %p1, %c1 = v4.mhc.post_pre %o, %x, %post, %comb, %fn, %base,
        %scale : (...) -> (...)
    ```

    Why: the boundary is memory-bound (docs/PERFORMANCE.md, mHC row: "post
    of layer i fused with pre of layer i+1"); fused, each token's lanes are
    read once and X' is written once instead of written by one kernel and
    re-read by a second. The numerics are unchanged (same rounding points).

    Fires only when the pre's lane operand is exactly a post's result in
    the same block. A pre on a block argument or on any other value (e.g.
    the Engram output, `v4.mhc.expand`) is left alone. The fused op is put
    at the pre, or at the post when the lanes are also used between the two
    (then the pre's parameters must already be defined at the post). A
    `tensor.dim` of the new lanes between the two (each inlined layer reads
    T from its input) is redirected to the old lanes, which have the same
    type.
  }];
  let dependentDialects = ["::mlir::v4::V4Dialect",
                           "::mlir::tensor::TensorDialect"];
  let statistics = [
    Statistic<"numFused", "fused", "mhc.post / mhc.pre pairs fused">
  ];
}

// Not anchored, as v4-fuse-mhc-boundaries.
def V4DecomposeKVCompressPass : Pass<"v4-decompose-kv-compress"> {
  let summary = "Split each KV compressor into its two projections and the "
                "stateful rest";
  let description = [{
    Rewrites every `v4.kv.compress` into two `v4.linear` ops, `wkv · x` and
    `wgate · x` with an f32 result [B, T, coff·c] (plain weights: fp32 sums
    over d, rounded to nothing), and a `v4.kv.compress_projected` of them,
    which keeps the op's `ape`, `norm`, state, cache, start positions and
    attributes and is located where the op was.

    Before:
    ```mlir
    %s1, %c1 = v4.kv.compress %x, %s0, %c0, %pos
        weights(%wkv, %wgate, %ape, %norm) rope #rope eps 1.0e-6
        : tensor<1x?x1024xbf16>, !state, !cache, tensor<1xi64>
        weights(tensor<256x1024xbf16>, tensor<256x1024xbf16>,
                tensor<4x256xf32>, tensor<128xbf16>)
    ```
    After:
    ```mlir
    %kv = v4.linear %x, %wkv : tensor<1x?x1024xbf16>, tensor<256x1024xbf16>
        -> tensor<1x?x256xf32>
    %score = v4.linear %x, %wgate : tensor<1x?x1024xbf16>,
        tensor<256x1024xbf16> -> tensor<1x?x256xf32>
    %s1, %c1 = v4.kv.compress_projected %kv, %score, %s0, %c0, %pos
        weights(%ape, %norm) rope #rope eps 1.0e-6
        : tensor<1x?x256xf32>, !state, !cache, tensor<1xi64>
        weights(tensor<4x256xf32>, tensor<128xbf16>)
    ```

    Why: the compressor's state makes it run token after token on one
    thread, and its projections were per-token GEMVs inside it: at a
    256-token prefill chunk of the mid-size benchmark model the whole op
    took 12.6% of the step (docs/PERFORMANCE.md 7.1). As `v4.linear`s the
    projections are tiled GEMMs over every thread (the token tiles share
    each weight read), and only the pooling stays in order. The values are
    unchanged: the plain-weight `v4.linear` sums each output as the
    compressor does (ascending over d from 0, separate multiply and add, in
    the reference order), and the fast order reassociates both the same
    way (docs/PERFORMANCE.md 7).
  }];
  let dependentDialects = ["::mlir::v4::V4Dialect"];
  let statistics = [
    Statistic<"numDecomposed", "decomposed", "v4.kv.compress ops split">
  ];
}

//===----------------------------------------------------------------------===//
// Numerics
//===----------------------------------------------------------------------===//

def V4ApplyNumericsPass : Pass<"v4-apply-numerics", "::mlir::ModuleOp"> {
  let summary = "Make the graph say the module's numerics mode";
  let description = [{
    Reads the module attributes `v4.numerics` and `v4.fake_quant`
    (dialects/V4/V4Numerics.h) and rewrites the graph to match:

    * `v4.fake_quant = "none"`: every `v4.fake_quant` op is removed (its
      result replaced by its input): no FP8 KV and no FP4 indexer
      quantisation (V4-SPEC 2.3, 5.4, 5.5). The FP8 activation
      quantisation inside the FP8/FP4 GEMMs is the kernel builders'
      (they read the same attribute): it runs only with "all".
    * `v4.numerics = "fp32"`: every activation, state and result that is
      bf16 becomes f32 (tensors, `!v4.window_ring`, `!v4.kv_cache`); the
      weights keep their checkpoint types, and so does a value that is only
      a reshape of a weight. The kernel phase then drops every bf16
      rounding point left inside the kernels (`v4-drop-bf16-rounding`).

    With the defaults ("production", "all") the IR is unchanged. Why a
    pass: the mode is a property of the lowering, not a flag every builder
    takes; the graph after this pass is what the kernels are built from.
  }];
  let dependentDialects = ["::mlir::v4::V4Dialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::func::FuncDialect"];
  let statistics = [
    Statistic<"numRetyped", "retyped", "Values retyped from bf16 to f32">,
    Statistic<"numFakeQuantsRemoved", "fake-quants-removed",
              "v4.fake_quant ops removed">
  ];
}

//===----------------------------------------------------------------------===//
// Partitioning over ranks
//===----------------------------------------------------------------------===//

def V4PartitionPass : Pass<"v4-partition", "::mlir::ModuleOp"> {
  let summary = "Split the graph over the ranks of the module's partition";
  let description = [{
    Reads the module attributes `v4.ep` and `v4.tp` (`v4c --ep N`, `--tp N`;
    absent or 1: the IR is unchanged). `v4.ep` makes the graph the one
    program every rank of a world of N ranks runs (SPMD), expert-parallel:

    * every `v4.moe.experts` takes the rank (one `v4.comm.rank` per
      function) as `epRank`, and each of its stacked weights
      (`v4.parameter_stack`, count E) becomes the rank's shard: count E / N
      with `shards` N, so a rank binds only its E / N experts;
    * the experts' per-slot output is summed over the ranks by a
      `v4.comm.all_reduce` before anything reads it. A slot is computed
      only by the rank that owns its expert and is +0 elsewhere, so the sum
      is exact: every rank ends with the bits one rank would compute, and
      the gate, attention, shared expert and head stay replicated.

    Before:
    ```mlir
    %w1 = v4.parameter_stack "layers.0.ffn.experts.{}.w1.weight" count 8 : ...
    %y = v4.moe.experts %x, %rw, %idx w1 %w1 ... : (...) -> tensor<1x?x2x64xbf16>
    ```
    After (`v4.ep = 2`):
    ```mlir
    %r = v4.comm.rank world 2 : tensor<1xi64>
    %w1 = v4.parameter_stack "layers.0.ffn.experts.{}.w1.weight" count 4
        shards 2 : ...
    %y0 = v4.moe.experts %x, %rw, %idx ep_rank %r w1 %w1 ... : (...) -> ...
    %y = v4.comm.all_reduce %y0 : tensor<1x?x2x64xbf16>
    ```

    With `v4.dp_attention` (`v4c --dp-attention`) each rank runs its own
    `v4.batch` sequences through everything but the routed experts. As a
    unit or `"all_to_all"` (the default), each routing slot's row goes to
    the rank of its expert: `v4.moe.dispatch` packs the slots per owning
    rank (counts known only on the device), three `v4.comm.all_to_all`s
    send the rows, routing weights and indices, the experts run on the
    received one-slot rows (`[N, ..., k, 1]`), a fourth all-to-all returns
    as many output rows to each rank as it received from it, and
    `v4.moe.undispatch` puts them back in slot order: every value a copy or
    one expert's output, so exact. As `"gather"` (`--moe-exchange=gather`)
    the experts' input (x, routing weights, expert indices) is gathered
    from every rank along the batch dim (`v4.comm.all_gather`), and each
    rank keeps its own sequences' block of the ranks' summed slot outputs
    (`v4.comm.reduce_scatter`, exact for the same reason).

    Errors: N < 1, a model without routed experts, or with fewer experts
    than ranks, --dp-attention without N > 1, a `v4.dp_attention` that
    names no known exchange (each naming the numbers).
    When N does not divide the E experts, each rank holds ceil(E / N) and
    the last ones end in padding (`parameter_stack ... of E`).

    `v4.tp` = N (`v4c --tp N`; with `v4.ep` > 1 it must be the same N: one
    world) makes the graph tensor-parallel, as the reference's
    Column/RowParallelLinear layers split it:

    * attention: rank r runs heads [r H/N, (r+1) H/N) and output groups
      [r G/N, (r+1) G/N): wq_b's rows, `attn_sink`, wo_a's group rows and
      wo_b's input columns become `v4.parameter ... slice D shards N`, the
      per-head ops between them run on H/N heads, and wo_b's partial
      output, computed in f32, is summed by a `v4.comm.all_reduce` in f32
      and rounded once (`v4.convert`): the one-rank output up to the order
      of the fp32 additions (the reference's RowParallelLinear rounds each
      bf16 partial instead). wq_a, q_norm, the kv
      path, the compressors and the lightning indexer stay replicated, so
      the indexer selects the same entries on every rank. A rank's slice of
      an FP8 weight that does not start on a 128-block reads block scales
      of fewer rows (`rowBlockSize`; `slice ... blocks bl of 128`), and a
      column slice narrower than a block quantises its activations in
      blocks of that width;
    * shared expert: w1 and w3's rows and w2's columns are sliced and the
      f32 partial output summed and rounded likewise, when each rank's I/N
      hidden units are whole
      128-blocks of the scales (every released model); otherwise it stays
      replicated;
    * routed experts, unless `v4.ep` shards them: the same split of every
      expert's hidden units (`v4.parameter_stack ... shards N slice D`,
      f32 per-slot partial outputs all-reduced and rounded once), under
      the same 128-block condition; otherwise replicated;
    * the gate, mHC and the head stay replicated.

    Errors: heads or groups not divisible by N, a query or output
    projection that is not the importer's chain, --tp with --dp-attention.
  }];
  let dependentDialects = ["::mlir::v4::V4Dialect",
                           "::mlir::func::FuncDialect",
                           "::mlir::tensor::TensorDialect"];
  let statistics = [
    Statistic<"numSharded", "experts-sharded",
              "v4.moe.experts ops made expert-parallel">,
    Statistic<"numTensorParallel", "attention-split",
              "attentions split over the tensor-parallel ranks">,
    Statistic<"numSharedSplit", "shared-experts-split",
              "shared experts split over the tensor-parallel ranks">,
    Statistic<"numReplicatedShared", "shared-experts-replicated",
              "shared experts left whole (I/N not in 128-blocks)">,
    Statistic<"numRoutedSplit", "routed-experts-split",
              "v4.moe.experts ops split over the tensor-parallel ranks">,
    Statistic<"numReplicatedRouted", "routed-experts-replicated",
              "v4.moe.experts ops left whole (I/N not in 128-blocks)">
  ];
}

#endif // V4_PASSES_PASSES_TD
