//===- V4CommOps.td - ranks and collectives ---------------*- tablegen -*-===//
//
// What a partitioned model (v4-partition, issue 13) needs beyond one device:
// the rank a process runs as, and collectives over the ranks' values.
//
//===----------------------------------------------------------------------===//

#ifndef V4_DIALECTS_V4_V4COMMOPS_TD
#define V4_DIALECTS_V4_V4COMMOPS_TD

include "dialects/V4/V4Base.td"
include "dialects/V4/V4Interfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def V4_CommRankOp : V4_Op<"comm.rank", [Pure]> {
  let summary = "the rank this copy of the program runs as";
  let description = [{
    A partitioned model is one program that every rank of a world of
    `worldSize` ranks runs (SPMD); this op gives the running copy its rank r,
    0 <= r < worldSize, as a one-element i64 tensor. Ops whose work depends
    on the rank (an expert-parallel `v4.moe.experts`) take it as an operand;
    a rank-dependent weight shard is a `v4.parameter_stack` with `shards`.

    The runtime supplies the value (the plan's input with role `rank`);
    `worldSize` is the module's `v4.partition` world, which the runtime
    checks against the world it runs in.

    ```mlir
    %r = v4.comm.rank world 2 : tensor<1xi64>
    ```
  }];
  let arguments = (ins I64Attr:$worldSize);
  let results = (outs AnyStaticShapeTensor:$result);
  let assemblyFormat = "`world` $worldSize attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def V4_CommAllReduceOp : V4_Op<"comm.all_reduce",
    [AllTypesMatch<["input", "result"]>,
     DeclareOpInterfaceMethods<V4_TiedResultsOpInterface>]> {
  let summary = "the element-wise sum of one value over every rank";
  let description = [{
    `result = sum over ranks r of input_r`, element by element, the same
    value on every rank. Every rank of the world must reach the op with the
    same type (token count included); the runtime turns a rank that never
    does into an error on the others after its collective timeout.

    Sums are formed in f32 and rounded to the element type once per
    combination of two ranks' partial sums, in an order the collective
    engine chooses: exact when at most one rank holds a non-zero element
    (how expert parallelism uses it: each routing slot's output comes from
    the one rank that owns the slot's expert), otherwise within the
    rounding of `worldSize - 1` additions.

    The result is tied to the input (TiedResultsOpInterface): a plan sums in
    place in the input's buffer.

    Element types: bf16, f32.

    ```mlir
    %y = v4.comm.all_reduce %x : tensor<1x?x6x4096xbf16>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def V4_CommAllGatherOp : V4_Op<"comm.all_gather"> {
  let summary = "every rank's value, concatenated along dim 0 in rank order";
  let description = [{
    `result[r * n + i, ...] = input_r[i, ...]` for every rank r of the
    world of `worldSize` ranks, where n is the input's dim 0 (the
    sequences of one rank under data-parallel attention): every rank gets
    the same concatenation. Every rank must reach the op with the same
    type (token count included).

    ```mlir
    %all = v4.comm.all_gather %x world 2 : tensor<1x?x64xbf16> -> tensor<2x?x64xbf16>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input, I64Attr:$worldSize);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $input `world` $worldSize attr-dict `:` type($input) `->` type($result)
  }];
  let hasVerifier = 1;
}

def V4_CommReduceScatterOp : V4_Op<"comm.reduce_scatter"> {
  let summary = "the sum over every rank, each rank keeping its dim-0 block";
  let description = [{
    With n = the result's dim 0: `result_r[i, ...] = sum over ranks q of
    input_q[r * n + i, ...]`: the element-wise sum of every rank's input
    (as `v4.comm.all_reduce` forms it, exact when one term is non-zero),
    of which rank r keeps block r along dim 0 (its own sequences under
    data-parallel attention). Element types: bf16, f32.

    ```mlir
    %mine = v4.comm.reduce_scatter %y world 2 : tensor<2x?x6x64xbf16> -> tensor<1x?x6x64xbf16>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input, I64Attr:$worldSize);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $input `world` $worldSize attr-dict `:` type($input) `->` type($result)
  }];
  let hasVerifier = 1;
}

def V4_CommAllToAllOp : V4_Op<"comm.all_to_all"> {
  let summary = "every rank sends a counted prefix of each block to its rank";
  let description = [{
    Each rank's `input` is `worldSize` blocks along dim 0, block q holding
    rows for rank q: the product of dims 1 .. rank-2 rows of the last dim's
    elements each. `counts[q]` (known only when the program runs, e.g. from
    `v4.moe.dispatch`) says how many leading rows of block q are sent,
    0 <= counts[q] <= rows. On rank r:

    * `recvCounts[q] = counts_q[r]`: what rank q sent to rank r;
    * block q of `result` is the first `recvCounts[q]` rows of rank q's
      block r, followed by fill rows: +0 for float elements, -1 ("no
      index", as `v4.moe.experts` reads it) for integers.

    Bytes move as they are (every value is exact). Every rank must reach
    the op with the same type (token count included); a count outside
    [0, rows] is a run-time error on the rank that sent it.

    Element types: bf16, f32, i64.

    ```mlir
    %rc, %rows = v4.comm.all_to_all %counts, %x world 2
        : (tensor<2xi64>, tensor<2x1x?x6x64xbf16>) -> (tensor<2xi64>, tensor<2x1x?x6x64xbf16>)
    ```
  }];
  let arguments = (ins AnyRankedTensor:$counts, AnyRankedTensor:$input,
                       I64Attr:$worldSize);
  let results = (outs AnyRankedTensor:$recvCounts, AnyRankedTensor:$result);
  let assemblyFormat = [{
    $counts `,` $input `world` $worldSize attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

#endif // V4_DIALECTS_V4_V4COMMOPS_TD
