//===- Passes.td - lowering passes: dispatch, kernels, targets -*- tablegen -*-===//
//
// Part of v4c. Every lowering pass, in the order of the phases of
// lowering/Pipelines.h: dispatch formation, then per target the kernel
// phase (hand-built kernels for the hot ops, target-neutral linalg bodies
// for the rest, bufferization, the target's code generation).
//
//===----------------------------------------------------------------------===//
#ifndef V4_LOWERING_PASSES_TD
#define V4_LOWERING_PASSES_TD

include "mlir/Pass/PassBase.td"

//===----------------------------------------------------------------------===//
// Dispatch formation
//===----------------------------------------------------------------------===//

def V4FormDispatchesPass : Pass<"v4-form-dispatches", "::mlir::ModuleOp"> {
  let summary = "Outline every kernel and turn @step/@init_state into a plan "
                "of dispatches over buffers";
  let description = [{
    Input: a model module after the graph phase (layer functions inlined,
    fusions done): `@init_state` returns the empty decode state, `@step`
    takes ids, next ids, start positions, positions and the state and
    returns the outputs (logits, MTP logits) then the new state.

    Output:
    * a nested `module @kernels` with one `func.func` per distinct
      (op name, attributes, operand and result types), marked `v4.kernel`.
      A kernel is written on tensors in destination-passing style: its
      arguments are the op's operands, then one destination per fresh
      result; each result is stored with `v4.kernel.store` into its
      destination, or, for a result tied to an operand
      (TiedResultsOpInterface), into that operand. The result attribute
      `v4.tied_operand` names the operand a result updates in place.
    * `@step` and `@init_state` rewritten over buffers (the storage
      memrefs of dialects/V4/V4StorageLayout.h): step inputs and state are
      arguments (with `v4.role` / `v4.state` / `v4.reset` attributes),
      weights are `v4.plan.parameter`, activations `memref.alloc`, and every
      op is a `v4.plan.dispatch` of its kernel. A tied result reuses its
      operand's buffers; when the operand is still read later (or is a
      weight or an input), the dispatch first copies it to a scratch buffer
      (copy-on-write). Reshapes become copy kernels.

    ```mlir
    // before
    %y = v4.rms_norm %x, %w eps 1.0e-6 : ...
    // after, in @step
    %y = memref.alloc(%T) : memref<1x?x64xbf16>
    v4.plan.dispatch @kernels::@k3_rms_norm(%x, %w, %y) : ...
    ```

    Why: the plan is IR, so later passes (memory planning, partitioning)
    rewrite it and `v4-opt` replays it; the artifact's plan is serialized
    from it, and each kernel is compiled by every requested target.
  }];
  let dependentDialects = [
    "::mlir::func::FuncDialect", "::mlir::memref::MemRefDialect",
    "::mlir::arith::ArithDialect", "::mlir::tensor::TensorDialect",
    "::mlir::v4::V4Dialect"
  ];
  let statistics = [
    Statistic<"numKernels", "kernels", "Distinct kernels outlined">,
    Statistic<"numDispatches", "dispatches", "Dispatches in the plan">,
    Statistic<"numCopies", "copy-on-write", "State copies before an update">,
  ];
}

def V4MarkConcurrentDispatchesPass
    : Pass<"v4-mark-concurrent-dispatches", "::mlir::ModuleOp"> {
  let summary = "Mark the dispatches that may run at the same time as the "
                "ones before them";
  let description = [{
    Input: the plans of `v4-form-dispatches` (`@step`, `@init_state`),
    before the memory plan, when every buffer is its own value. A
    `v4.plan.dispatch` gets `v4.concurrent` when it writes no buffer that a
    dispatch of the current group reads or writes and reads none that one
    writes; the group is the run of dispatches since the last one without
    the mark. What a dispatch writes comes from its kernel's signature: the
    buffers of its fresh results and of the operands its results are tied
    to (`v4.tied_operand`). A collective or any other op with memory effects
    ends the group.

    `v4-plan-memory` gives a group's dispatches one point of its timeline,
    so their buffers never share bytes, and the runtime may run a group's
    launches together (the artifact's `Step.concurrent`; the CPU device runs
    their blocks on one pool), which uses the threads a one-block kernel
    leaves idle.
  }];
  let dependentDialects = ["::mlir::v4::V4Dialect"];
  let statistics = [
    Statistic<"numConcurrent", "concurrent",
              "Dispatches that may run with the ones before them">,
  ];
}

def V4MarkOutputOnlyDispatchesPass
    : Pass<"v4-mark-output-only-dispatches", "::mlir::ModuleOp"> {
  let summary = "Mark the dispatches of @step that only some outputs need";
  let description = [{
    Input: the plan `@step` of `v4-form-dispatches`, before the memory plan,
    when every buffer is its own value. Walking the plan backwards, a
    buffer reaches the results of `@step` that it is returned as or that a
    later dispatch reading it reaches; a dispatch reaches what the buffers
    it writes reach (its kernel's fresh results and tied operands, as for
    `v4-mark-concurrent-dispatches`). A dispatch that writes the session's
    state (an argument of `@step`), or whose buffers a collective or any
    other op with memory effects uses, is needed by every call, and so is
    one whose writes reach nothing.

    Every other dispatch that does not reach every result gets
    `v4.only_for_outputs`, the indices of the results it reaches (the
    artifact's `Step.only_for_outputs`): a call that asks for none of them
    skips it. A decode step that wants no MTP
    logits then reads the head once, for the main logits, and the MTP
    block still updates its own state.

    ```mlir
    v4.plan.dispatch @kernels::@k48_linear(%h, %head, %mtp_logits)
      {v4.only_for_outputs = array<i64: 1>} : ...
    ```
  }];
  let dependentDialects = ["::mlir::v4::V4Dialect"];
  let statistics = [
    Statistic<"numOutputOnly", "output-only",
              "Dispatches only some outputs of @step need">,
  ];
}

def V4PlanMemoryPass : Pass<"v4-plan-memory", "::mlir::ModuleOp"> {
  let summary = "Place the transient buffers of every plan in one activation "
                "arena by liveness";
  let description = [{
    Input: the plans of `v4-form-dispatches` (`@step`, `@init_state`).
    Every `memref.alloc` a plan does not return (the outputs stay their own
    buffers) is live from the first to the last op that uses it. Sized at
    the compiled bounds (the token dim at `v4.max_chunk`, storage bytes
    rounded up to 64), buffers are placed greedily by size, largest first,
    each at the lowest 64-byte aligned offset that no buffer with an
    overlapping live range occupies. A buffer whose live range overlaps no
    other's shares memory freely: two values never share while both are
    live, so no kernel sees its input change under it. The dispatches of a
    concurrent group (`v4.concurrent`, v4-mark-concurrent-dispatches) and
    the ops between them count as one point of the timeline.

    Output: each plan starts with one `memref.alloc() {v4.arena}` of
    `memref<N x i8>`, and every placed buffer is a `memref.view` of it at
    its offset. `v4.arena_unplanned_bytes` on the arena records what the
    same buffers take one after another, for the memory report.

    ```mlir
    // before
    %a = memref.alloc(%T) : memref<1x?x64xbf16>
    // after
    %arena = memref.alloc() {v4.arena, v4.arena_unplanned_bytes = 4096 : i64}
        : memref<2048xi8>
    %c1024 = arith.constant 1024 : index
    %a = memref.view %arena[%c1024][%T] : memref<2048xi8> to memref<1x?x64xbf16>
    ```
  }];
  let dependentDialects = [
    "::mlir::memref::MemRefDialect", "::mlir::arith::ArithDialect"
  ];
  let statistics = [
    Statistic<"numPlaced", "placed", "Buffers placed in an arena">,
    Statistic<"arenaBytes", "arena-bytes", "Bytes of the largest arena">,
    Statistic<"unplannedBytes", "unplanned-bytes",
              "Bytes of the same buffers one after another">,
  ];
}

//===----------------------------------------------------------------------===//
// Kernel phase (per target)
//===----------------------------------------------------------------------===//

def V4BuildTargetKernelsPass
    : Pass<"v4-build-target-kernels", "::mlir::ModuleOp"> {
  let summary = "Replace the kernels the target builds by hand with its "
                "hand-built bodies";
  let description = [{
    Runs on a kernels module (the nested `module @kernels` of dispatch
    formation). For every `v4.kernel` function whose op the target named by
    `target` (or the `v4.target` attribute of the enclosing module) has a
    hand builder for (lowering/Target/TargetBackend.h), the function is
    replaced by the builder's body on storage memrefs, with the kernel ABI
    signature: the storage buffers of the operands, then of the fresh
    results. Other kernels are left for `convert-v4-to-linalg`.

    Why: the hot ops (GEMMs, grouped experts, sparse attention, indexer
    scores) need schedules a generic lowering does not find; each target
    brings its own, while every other op has one target-neutral body.
  }];
  let options = [
    Option<"target", "target", "std::string", /*default=*/"\"\"",
           "Target backend name (default: the module's v4.target)">
  ];
  let statistics = [
    Statistic<"numHandBuilt", "hand-built", "Kernels built by hand">,
  ];
}

def ConvertV4ToLinalgPass
    : Pass<"convert-v4-to-linalg", "::mlir::ModuleOp"> {
  let summary = "Lower the remaining v4 kernels to linalg/tensor on storage "
                "types";
  let description = [{
    Converts every `v4.kernel` function still on model types to the
    storage types of dialects/V4/V4StorageLayout.h (FP8 as i8 codes, FP4
    packed, decode state as its tensors; 1:N for the compressor state) and
    its v4 ops to target-neutral linalg/tensor bodies with every bf16/fp32
    rounding point explicit (lowering/V4ToLinalg). `v4.kernel.store`
    becomes `bufferization.materialize_in_destination`, so one-shot
    bufferization writes each result into its argument buffer.

    ```mlir
    // before
    %y = v4.rms_norm %x, %w ...
    %r = v4.kernel.store %y into %out : tensor<1x?x64xbf16>
    // after
    %y = linalg.generic ... // sum of squares, rsqrt, scale
    %r = bufferization.materialize_in_destination %y in %out
    ```

    An op with neither a pattern here nor a hand builder of the target is
    an error naming the op and the target.
  }];
  let dependentDialects = [
    "::mlir::linalg::LinalgDialect", "::mlir::tensor::TensorDialect",
    "::mlir::arith::ArithDialect", "::mlir::math::MathDialect",
    "::mlir::scf::SCFDialect", "::mlir::bufferization::BufferizationDialect",
    "::mlir::vector::VectorDialect"
  ];
}

def V4DropBF16RoundingPass
    : Pass<"v4-drop-bf16-rounding", "::mlir::ModuleOp"> {
  let summary = "In fp32 numerics, remove the bf16 rounding points of the "
                "kernels";
  let description = [{
    Runs on a kernels module after the kernel bodies exist (hand-built and
    `convert-v4-to-linalg`), before bufferization. When the enclosing
    module's `v4.numerics` is "fp32" (dialects/V4/V4Numerics.h), every bf16
    rounding point, `arith.extf (arith.truncf %x : f32 to bf16) : bf16 to
    f32` (lowering/Numerics/LowPrecision.h `roundBF16`), becomes `%x`.
    After that no `arith.truncf` to bf16 may remain: `v4-apply-numerics`
    made every activation f32, so one that remains is a rounding the graph
    still asks for, an error at its kernel. In "production" it does nothing.

    Why here: the rounding points are explicit in the kernel IR, so one
    rewrite removes them all, for every target and every body, instead of
    a mode flag in every builder.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect"];
  let statistics = [
    Statistic<"numDropped", "dropped", "bf16 rounding points removed">,
  ];
}

def V4ReassociateSumsPass
    : Pass<"v4-reassociate-sums", "::mlir::ModuleOp"> {
  let summary = "In the fast sum order, let LLVM reassociate and contract "
                "the kernels' float arithmetic";
  let description = [{
    Runs on a kernels module after the kernel bodies exist. When the
    enclosing module's `v4.sum_order` is "fast" (dialects/V4/V4Numerics.h),
    every `arith.addf`, `arith.subf` and `arith.mulf` gets the `reassoc` and
    `contract` fast-math flags, so LLVM may vectorise reductions (the
    linalg bodies' sums, norms and dot products) and fuse multiply-adds.
    No other flag: NaN and infinity keep their meaning, and the bf16 and
    FP8 rounding points (truncations, round-to-even) are not arithmetic
    that can be moved across. Kernels outlined from `v4.mhc.*` ops
    (`v4.kernel_op`) keep their order: their mixes feed the bf16 residual
    lanes, and their exact fp32 sums often sit on bf16 ties (near-uniform
    Sinkhorn weights) that another order breaks. So do `v4.rms_norm`
    kernels (a last-ulp change of a row's scale moves every element's bf16
    rounding at once), and functions marked
    `v4.keep_sum_order` (a hand-built body that sets the flags it may use
    itself: sparse attention's, which contracts exact products only). In
    "reference" it does nothing: every body keeps the reference's
    operation order.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect"];
  let statistics = [
    Statistic<"numFlagged", "flagged", "float operations made reassociable">,
  ];
}

def V4FinalizeKernelABIPass
    : Pass<"v4-finalize-kernel-abi", "::mlir::ModuleOp"> {
  let summary = "Drop the results bufferization wrote into argument buffers";
  let description = [{
    After one-shot bufferization a kernel of a kernels module returns, for
    each result, the argument buffer it was written into (its destination
    or tied operand). Those results are dropped, so every kernel is a
    function on memrefs with no results: the kernel ABI. A result that is
    an scf.for (or scf.if) updating an argument buffer in place counts as
    that argument (a tied state updated element by element, as
    `kv.compress`). A kernel that returns anything else (a result not
    bufferized in place, which would silently change the ABI) is an error
    at the kernel.

    Upstream `drop-equivalent-buffer-results` does the same for private
    functions only; kernels are public entry points.
  }];
}

//===----------------------------------------------------------------------===//
// CPU target
//===----------------------------------------------------------------------===//

def V4CPUAddKernelEntriesPass
    : Pass<"v4-cpu-add-kernel-entries", "::mlir::ModuleOp"> {
  let summary = "Give every CPU kernel the `void k(void **args)` entry of "
                "the kernel ABI";
  let description = [{
    Runs on a bufferized kernels module, before the conversion to the LLVM
    dialect. Each public kernel `@k(memref, ...)` is renamed `@k_impl`
    (private) and a new public `@k(%args: !llvm.ptr)` loads the memref
    descriptor that args[i] points to (runtime/base/KernelABI.h) and calls
    it. After `finalize-memref-to-llvm` and `convert-func-to-llvm` the
    descriptor casts cancel (`reconcile-unrealized-casts`).

    A kernel with a launch grid (attribute `v4.launch_grid`, kept on the
    entry) takes six trailing index arguments, the launch block: the entry
    reads them from the six i64 that args[numBuffers] points to, or uses
    block 0 of a 1x1x1 grid when that pointer is null.

    Why: one C entry signature for every kernel, so the runtime calls any
    kernel with the same code and no per-kernel glue.
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::arith::ArithDialect"];
}

def V4CPUBF16MemoryAsI16Pass
    : Pass<"v4-cpu-bf16-memory-as-i16", "::mlir::ModuleOp"> {
  let summary = "Load and store bf16 (and vectors of it) as i16 in the LLVM "
                "dialect";
  let description = [{
    Runs last in the CPU kernel phase, on the LLVM dialect. Every `llvm.load`
    of bf16 becomes a load of i16 and a bitcast to bf16, every `llvm.store`
    of bf16 a bitcast to i16 and a store of i16 (vectors alike). The bf16
    arithmetic is already bit manipulation on i16 (`arith-expand` with
    bf16), so the bitcasts pair up and fold away in LLVM.

    Why: x86 has no bf16 registers; LLVM legalises a (vectorised) bf16 load
    by widening to f32 and narrowing back through compiler-rt's
    `__truncsfbf2`, which the kernels' shared object does not link. With
    i16 memory operations no bf16 value reaches the backend.
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
}

def V4CPUExpandExpFPass : Pass<"v4-cpu-expand-expf", "::mlir::ModuleOp"> {
  let summary = "Write every f32 math.exp as the arithmetic of glibc's expf "
                "(FMA variant), inline and vectorised";
  let description = [{
    Runs in the CPU kernel phase, before the conversion to the LLVM dialect,
    on modules whose x86-64 level (`v4.cpu`, default x86-64-v3) has FMA.
    Each f32 `math.exp`, scalar or a 1-D vector, becomes glibc's expf
    algorithm in double: `x * 32 / ln 2` split by the 1.5 * 2^52 shift, a
    32-entry table of 2^(j/32) (the module's `memref.global
    @__v4_expf_table`; vectors read it by `vector.gather`), a cubic by
    fused multiply-adds, one product, one rounding to f32, and glibc's
    special cases by selects.

    Why: LLVM scalarises a vector exp into one libm call per lane; the
    reference calls the same expf, and every step here is a correctly
    rounded IEEE operation, so the kernels stay bit-exact with it (the unit
    test compares the expansion with the host's expf) while SwiGLU and
    softmax run in vector registers.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::vector::VectorDialect"];
}

//===----------------------------------------------------------------------===//
// sm_90a target
//===----------------------------------------------------------------------===//

def V4GPUMapKernelsPass : Pass<"v4-gpu-map-kernels", "::mlir::ModuleOp"> {
  let summary = "Turn every bufferized kernel into a gpu.func of one "
                "gpu.module, with threads and a workspace";
  let description = [{
    Runs on a bufferized kernels module whose linalg ops are parallel loops
    (`convert-linalg-to-parallel-loops`). It moves every function and
    constant into `gpu.module @v4_gpu` and replaces each `v4.kernel`
    function `@k` by `gpu.func @k kernel` taking the same buffers, then the
    kernel's workspace (`memref<?xi8>`, runtime/base/KernelABI.h).

    - A kernel with a launch grid (`v4.launch_grid`, a hand-built body)
      runs one thread per block of that grid: its launch block arguments
      become `gpu.block_id` and `gpu.grid_dim`.
    - Every other kernel runs as one block of `block-size` threads. Each
      outermost `scf.parallel` is spread over the threads (its iterations
      linearised, the last dim fastest, so neighbouring threads touch
      neighbouring elements); every other op that writes memory runs on
      thread 0, and its scalar results reach the other threads through the
      workspace. Barriers separate these phases, so every read sees every
      earlier write. Control flow around them is uniform: its values come
      from arguments and from memory read between barriers.
    - A row reduction (a parallel loop, or a loop nest outside any, whose
      only write is a load-combine-store of one f32 output element in the
      innermost of its sequential loops, the combining op addf, maximumf,
      maxnumf, minimumf or minnumf, over at least 32 terms or a number known
      at run time) runs one warp per output element instead: warp w takes
      elements w, w + 8, ...; its lanes stride the innermost loop (16-byte
      vector loads where the row is unit-stride, aligned and a multiple of
      the vector), a butterfly of `gpu.shuffle xor` (offsets 16, 8, 4, 2,
      1) combines the 32 partials, and lane 0 combines the element's
      initial value with the result and stores it. The iter_args form (a
      loop with one f32 value so combined from read-only terms, followed in
      the parallel loop by ops without regions) is reduced the same way and
      lane 0 runs what follows it.
    - An argmax (a top-k round: an scf.for over at least 32 candidates or a
      run-time number, from a constant start >= 0, keeping an f32 value and
      an i64 index_cast(iv), taking the candidate when `x ogt value`, or
      `E and (index < 0 or x ogt value)` with an eligibility E false for
      NaN) runs one warp per selection: lanes stride the candidates with the
      loop's own body from its initial pair, a butterfly shuffles the value
      and the index and keeps the greater value, on a tie the lower index
      (bit-identical to the sequential scan: GPUMapKernels.cpp, Argmax). The
      load-store form in a parallel loop (the MoE gate) takes a warp per
      output pair, lane 0 storing it; a loop outside any parallel loop that
      holds such selections and reads nothing it writes (the CSA indexer's
      token loop) runs on warps, a warp per iteration where every store
      indexes by the loop's variable (else warp 0), its stores on lane 0.
    - Temporaries (`memref.alloc`, and `memref.alloca` outside a parallel
      loop) become views of the workspace at constant offsets, sized at the
      kernels module's `v4.max_chunk` tokens; a temporary inside a parallel
      loop stays private to its thread. The kernel records its workspace
      size as `v4.workspace_bytes` and its block as `known_block_size`.

    Why: one correct mapping of every target-neutral body to the GPU, with
    no host code and no device allocation; the hot kernels and the
    per-family schedules replace it kernel by kernel.
  }];
  let options = [
    Option<"blockSize", "block-size", "int64_t", /*default=*/"256",
           "Threads of the block a kernel without a launch grid runs on">
  ];
  let dependentDialects = ["::mlir::gpu::GPUDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::vector::VectorDialect"];
}

#endif // V4_LOWERING_PASSES_TD
