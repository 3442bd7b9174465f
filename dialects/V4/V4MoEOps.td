//===- V4MoEOps.td - mixture-of-experts ops ---*- tablegen -*-===//
//
// MoE gate (sqrt-softplus scores, bias, hash routing), routed experts with clamped SwiGLU, shared expert and combine (V4-SPEC 6).
//
//===----------------------------------------------------------------------===//

#ifndef V4_DIALECTS_V4_V4MOEOPS_TD
#define V4_DIALECTS_V4_V4MOEOPS_TD

include "dialects/V4/V4Base.td"
include "dialects/V4/V4Types.td"
include "dialects/V4/V4Attrs.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

//===----------------------------------------------------------------------===//
// Gates
//===----------------------------------------------------------------------===//

def V4_MoEGateOp : V4_Op<"moe.gate", [Pure]> {
  let summary = "score-routed MoE gate: top-k experts and routing weights";
  let description = [{
    Routes every token to `topK` of the E routed experts by score
    (V4-SPEC 6.1; score layers L >= num_hash_layers and the MTP block). Per
    token, everything in fp32:

    * `z = fp32(x) . fp32(weight)^T` in R^E (no FP8 activation quantisation;
      bf16 inputs are upcast exactly),
    * `s = score(z)`, with `scoreFunc`:
      `sqrtsoftplus`: `s = sqrt(log(1 + exp(z)))` (V4),
      `sigmoid`: `s = 1 / (1 + exp(-z))`,
      `softmax`: `s = softmax(z)` over the E experts,
    * `expertIndices = topk(s + bias, topK)` (just `topk(s)` without a bias);
      the bias only selects, it never enters the weights,
    * `routingWeights = s[expertIndices] / sum(s[expertIndices]) * routeScale`
      with no epsilon in the denominator; `softmax` skips the
      renormalisation (`s[expertIndices] * routeScale`), as the reference
      does.

    Ties in the top-k are implementation-defined (tests build tie-free
    scores); the order of the k slots is not significant (the experts op sums
    over them).

    Operands: `x` [..., d] bf16 (the `ffn_norm` output) or f32; `weight`
    [E, d] bf16 (checkpoint `gate.weight`) or f32; optional `bias` [E] f32
    (`gate.bias`). Results: `routingWeights` [..., topK] f32 and
    `expertIndices` [..., topK] i64 in [0, E), with the leading dims of `x`.
    V4-Flash: d = 4096, E = 256, topK = 6, routeScale = 1.5; V4-Pro:
    d = 7168, E = 384, topK = 6, routeScale = 2.5.

    ```mlir
    %w, %i = v4.moe.gate %x, %gw bias %gb
        scoreFunc sqrtsoftplus topK 6 routeScale 1.5
        : tensor<1x?x4096xbf16>, tensor<256x4096xbf16>, tensor<256xf32>
        -> tensor<1x?x6xf32>, tensor<1x?x6xi64>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$x, AnyRankedTensor:$weight,
                       Optional<AnyRankedTensor>:$bias,
                       V4_ScoreFuncAttr:$scoreFunc, I64Attr:$topK,
                       F64Attr:$routeScale);
  let results = (outs AnyRankedTensor:$routingWeights,
                      AnyRankedTensor:$expertIndices);
  let assemblyFormat = [{
    $x `,` $weight (`bias` $bias^)?
    `scoreFunc` `` $scoreFunc `topK` $topK `routeScale` $routeScale attr-dict
    `:` type($x) `,` type($weight) (`,` type($bias)^)?
    `->` type($routingWeights) `,` type($expertIndices)
  }];
  let hasVerifier = 1;
}

def V4_MoEHashGateOp : V4_Op<"moe.hash_gate", [Pure]> {
  let summary = "hash-routed MoE gate: experts from a token-id table";
  let description = [{
    Routes every token by its input token id (V4-SPEC 6.1; hash layers
    L < num_hash_layers = 3): `expertIndices = tid2eid[ids]` (row `ids[t]`,
    all k = tid2eid dim 1 entries, widened to i64), where `ids` are the token
    ids of the same positions in the current call. The gate logits still
    supply the weights, in fp32 and with the unbiased scores:

    * `z = fp32(x) . fp32(weight)^T`, `s = score(z)` with `scoreFunc` as in
      `v4.moe.gate` (`sqrtsoftplus` for V4),
    * `routingWeights = s[expertIndices] / sum(s[expertIndices]) * routeScale`
      (`softmax`: no renormalisation).

    Hash layers have no bias. Ids outside [0, V) and table entries outside
    [0, E) are undefined behaviour (checked at run time where enabled). The
    spec does not verify that every shipped `tid2eid` row holds distinct
    experts; see `v4.moe.experts` for duplicates.

    Operands: `x` [..., d] bf16 or f32; `weight` [E, d] bf16 or f32; `ids`
    [...] i32 or i64 (the leading dims of `x`); `tid2eid` [V, k] i64
    (checkpoint `gate.tid2eid`) or i32 (the reference's in-memory copy).
    Results: `routingWeights` [..., k] f32 and `expertIndices` [..., k] i64.
    V4-Flash: V = 129280, k = 6, E = 256.

    ```mlir
    %w, %i = v4.moe.hash_gate %x, %gw, %ids, %tid2eid
        scoreFunc sqrtsoftplus routeScale 1.5
        : tensor<1x?x4096xbf16>, tensor<256x4096xbf16>, tensor<1x?xi64>,
          tensor<129280x6xi64> -> tensor<1x?x6xf32>, tensor<1x?x6xi64>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$x, AnyRankedTensor:$weight,
                       AnyRankedTensor:$ids, AnyRankedTensor:$tid2eid,
                       V4_ScoreFuncAttr:$scoreFunc, F64Attr:$routeScale);
  let results = (outs AnyRankedTensor:$routingWeights,
                      AnyRankedTensor:$expertIndices);
  let assemblyFormat = [{
    $x `,` $weight `,` $ids `,` $tid2eid
    `scoreFunc` `` $scoreFunc `routeScale` $routeScale attr-dict
    `:` type($x) `,` type($weight) `,` type($ids) `,` type($tid2eid)
    `->` type($routingWeights) `,` type($expertIndices)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Experts
//===----------------------------------------------------------------------===//

def V4_MoEExpertsOp : V4_Op<"moe.experts",
    [Pure, AttrSizedOperandSegments]> {
  let summary = "all routed experts (clamped SwiGLU) as one grouped op";
  let description = [{
    Applies, for every token, the k experts it was routed to, one output per
    routing slot (V4-SPEC 6.2; `v4.moe.combine` sums the slots, 6.3). With
    `e = expertIndices[t, j]`,
    `r = routingWeights[t, j]` and L = `swigluLimit`:

    * `a = fp32(bf16(w1[e] . x))`, `b = fp32(bf16(w3[e] . x))` (GEMMs per
      V4-SPEC 2.4: for FP4/FP8 weights the bf16 activation is quantised to
      e4m3 per token per 128 along K with a pow-2 (ue8m0) scale, fp32
      accumulation, bf16 output; bf16 weights: bf16 GEMM, fp32 accumulation),
    * `a = min(a, L)` (the gate is clamped only from above),
      `b = clamp(b, -L, L)`,
    * `h = silu(a) * b * r` in fp32 (the routing weight is applied before w2),
    * `y_e = bf16(w2[e] . bf16(h))` (same GEMM recipe, K = I),
    * `result[t, j] = y_e`.

    Per-slot outputs let a target group the rows of one expert across tokens
    (one weight read per expert and tile of rows) with no ordering between
    experts: the slot sum, in slot order, is `v4.moe.combine`'s.

    `swigluLimit` absent means no clamp at all (the DeepSeek-V3 SwiGLU);
    when present it must be > 0 (V4 uses 10; a limit of 0 would zero every
    expert, so it is rejected rather than read as "off"). The k indices of a
    token are expected to be distinct (score routing guarantees it); the
    reference applies a repeated expert once (V4-SPEC 6.1), so duplicates
    give an implementation-defined result. Indices outside [0, E) are
    undefined behaviour.

    Operands: `x` [..., d] bf16; `routingWeights` [..., k] f32 and
    `expertIndices` [..., k] i64 (from `v4.moe.gate` / `v4.moe.hash_gate`,
    leading dims of `x`); stacked expert weights (`v4.parameter_stack`,
    leading dim = expert) `w1`, `w3` [E, I, d] and `w2` [E, d, I], all three
    of one format:

    * FP4: `f4E2M1FN` (logical, unpacked K) with `f8E8M0FNU` scales per 32
      along K: `w1Scale`, `w3Scale` [E, I, d/32], `w2Scale` [E, d, I/32]
      (d and I multiples of 32),
    * FP8: `f8E4M3FN` with `f8E8M0FNU` 128x128 block scales: `w1Scale`,
      `w3Scale` [E, ceil(I/128), ceil(d/128)], `w2Scale`
      [E, ceil(d/128), ceil(I/128)] (e.g. after convert.py's FP4 -> FP8
      re-expression, V4-SPEC 1.4),
    * bf16: no scales.

    Expert parallelism (`v4-partition{ep=N}`): with `epRank` (a
    one-element i64 tensor, `v4.comm.rank`) the stacks hold only the E
    experts `[epRank * E, (epRank + 1) * E)` of the model's N * E, and the
    indices stay global: a slot whose expert is one of them gets `y_e` as
    above, computed with stack member `e - epRank * E`; every other slot
    gets +0, so that a `v4.comm.all_reduce` over the ranks gives every slot
    exactly its one owner's value. k may then exceed E.

    Tensor parallelism (`v4-partition{tp=N}` without `ep`): the stacks hold
    the rank's I/N hidden units of every expert (`v4.parameter_stack ...
    slice`), and the result may be f32: each slot's w2 sum unrounded, which
    a `v4.comm.all_reduce` and `v4.convert` round once.

    Result: [..., k, d] with the element type of `x` (bf16; f32 in fp32
    numerics) or f32. V4-Flash: d = 4096, E = 256, k = 6, I = 2048, FP4; V4-Pro:
    d = 7168, E = 384, I = 3072.

    ```mlir
    %y = v4.moe.experts %x, %w, %i
        w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 scale %s2
        swigluLimit 10.0
        : (tensor<1x?x4096xbf16>, tensor<1x?x6xf32>, tensor<1x?x6xi64>,
           tensor<256x2048x4096xf4E2M1FN>, tensor<256x2048x4096xf4E2M1FN>,
           tensor<256x4096x2048xf4E2M1FN>, tensor<256x2048x128xf8E8M0FNU>,
           tensor<256x2048x128xf8E8M0FNU>, tensor<256x4096x64xf8E8M0FNU>)
        -> tensor<1x?x6x4096xbf16>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$x, AnyRankedTensor:$routingWeights,
                       AnyRankedTensor:$expertIndices, AnyRankedTensor:$w1,
                       AnyRankedTensor:$w3, AnyRankedTensor:$w2,
                       Optional<AnyRankedTensor>:$w1Scale,
                       Optional<AnyRankedTensor>:$w3Scale,
                       Optional<AnyRankedTensor>:$w2Scale,
                       Optional<AnyRankedTensor>:$epRank,
                       OptionalAttr<F64Attr>:$swigluLimit);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $x `,` $routingWeights `,` $expertIndices (`ep_rank` $epRank^)?
    `w1` $w1 (`scale` $w1Scale^)? `,` `w3` $w3 (`scale` $w3Scale^)? `,`
    `w2` $w2 (`scale` $w2Scale^)? (`swigluLimit` $swigluLimit^)? attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def V4_MoEDispatchOp : V4_Op<"moe.dispatch", [Pure]> {
  let summary = "each routing slot's row, packed per owning rank";
  let description = [{
    Expert parallelism with an all-to-all (`v4-partition{ep=N}` under data-
    parallel attention): the routing slots of this rank's tokens, packed
    into one block per rank that owns the slot's expert, for
    `v4.comm.all_to_all`. The slots are taken in row-major order of
    `expertIndices` [..., k] (token, then slot j); slot s with index e
    belongs to rank `q = e floordiv expertsPerRank` (ranks own
    `expertsPerRank` consecutive experts each) and is row p of block q,
    where p counts the earlier slots of rank q. With S = the number of
    slots (the capacity of a block):

    * `counts[q]`: the slots of rank q;
    * `rows[q, s']` (s' the flat row index over the dims after the first,
      [..., k]) = `x` of the token of the s'-th slot of rank q; its
      `rowWeights[q, s', 0]` and `rowIndices[q, s', 0]` are the slot's
      routing weight and (global) expert index;
    * rows s' >= counts[q]: `rows` +0, `rowWeights` +0, `rowIndices` -1.

    A slot whose index is outside [0, worldSize * expertsPerRank) goes to
    no rank (`v4.moe.undispatch` gives it +0). The blocks, sent with
    `v4.comm.all_to_all`, are what `v4.moe.experts` with `ep_rank` runs on
    (k = 1 per row: one slot each); `v4.moe.undispatch` puts the returned
    outputs back in slot order.

    Operands: `x` [..., T, d] bf16 (f32 in fp32 numerics), `routingWeights`
    [..., T, k] f32 and `expertIndices` [..., T, k] i64 over x's leading
    dims (at least the token dim), k static. Results: `counts` [worldSize] i64, `rows` [worldSize, ..., k, d]
    (x's element type), `rowWeights` [worldSize, ..., k, 1] f32,
    `rowIndices` [worldSize, ..., k, 1] i64.

    ```mlir
    %n, %rows, %rw, %ri = v4.moe.dispatch %x, %w, %i world 2 experts 4
        : (tensor<1x?x64xbf16>, tensor<1x?x6xf32>, tensor<1x?x6xi64>)
        -> (tensor<2xi64>, tensor<2x1x?x6x64xbf16>, tensor<2x1x?x6x1xf32>,
            tensor<2x1x?x6x1xi64>)
    ```
  }];
  let arguments = (ins AnyRankedTensor:$x, AnyRankedTensor:$routingWeights,
                       AnyRankedTensor:$expertIndices, I64Attr:$worldSize,
                       I64Attr:$expertsPerRank);
  let results = (outs AnyRankedTensor:$counts, AnyRankedTensor:$rows,
                      AnyRankedTensor:$rowWeights,
                      AnyRankedTensor:$rowIndices);
  let assemblyFormat = [{
    $x `,` $routingWeights `,` $expertIndices `world` $worldSize `experts`
    $expertsPerRank attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def V4_MoEUndispatchOp : V4_Op<"moe.undispatch", [Pure]> {
  let summary = "the returned per-row outputs back in routing-slot order";
  let description = [{
    The inverse of `v4.moe.dispatch` on the outputs: `y` holds, per rank q,
    the outputs of the rows this rank sent to q (after
    `v4.moe.experts ... ep_rank` on the receiving rank and the
    `v4.comm.all_to_all` back), and `result[..., j, :]` is the output of
    slot (..., j): row p of block q, with q and p as `v4.moe.dispatch`
    computes them from the same `expertIndices` and attributes. A slot of
    no rank gets +0. Bytes are copied as they are.

    Operands: `y` [worldSize, ..., T, k, 1, d] bf16 or f32 (the per-slot
    outputs of one-slot rows), `expertIndices` [..., T, k] i64, k static. Result:
    [..., k, d] with y's element type, the form `v4.moe.combine` reads.

    ```mlir
    %r = v4.moe.undispatch %y, %i world 2 experts 4
        : (tensor<2x1x?x6x1x64xbf16>, tensor<1x?x6xi64>) -> tensor<1x?x6x64xbf16>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$y, AnyRankedTensor:$expertIndices,
                       I64Attr:$worldSize, I64Attr:$expertsPerRank);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $y `,` $expertIndices `world` $worldSize `experts` $expertsPerRank
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def V4_MoESharedExpertOp : V4_Op<"moe.shared_expert",
    [Pure, AttrSizedOperandSegments]> {
  let summary = "the shared expert (clamped SwiGLU, FP8 weights)";
  let description = [{
    The one shared expert every token goes through (V4-SPEC 6.2; V4 has
    exactly one, of the routed experts' width I). Per token, with
    L = `swigluLimit`:

    * `a = fp32(bf16(w1 . x))`, `b = fp32(bf16(w3 . x))` (FP8 weights:
      the bf16 activation quantised to e4m3 per token per 128 along K with a
      pow-2 scale, fp32 accumulation, bf16 output, V4-SPEC 2.4),
    * `a = min(a, L)`, `b = clamp(b, -L, L)` (the current revision clamps the
      shared expert too; the initial one did not: omit `swigluLimit`),
    * `h = silu(a) * b` in fp32 (no routing weight),
    * `result = bf16(w2 . bf16(h))`.

    `swigluLimit` absent means no clamp; present it must be > 0 (V4: 10).

    Operands: `x` [..., d] bf16; `w1`, `w3` [I, d] and `w2` [d, I], all
    `f8E4M3FN` with `f8E8M0FNU` 128x128 block scales (`w1Scale`, `w3Scale`
    [ceil(I/128), ceil(d/128)], `w2Scale` [ceil(d/128), ceil(I/128)]), or all
    bf16 without scales. Result: [..., d] bf16; or f32, then `result` is
    the unrounded fp32 sum `w2 . bf16(h)` (a tensor-parallel rank's partial
    output, summed over the ranks and rounded once, `v4-partition`).
    V4-Flash: d = 4096, I = 2048.

    ```mlir
    %s = v4.moe.shared_expert %x w1 %w1 scale %s1, w3 %w3 scale %s3,
        w2 %w2 scale %s2 swigluLimit 10.0
        : (tensor<1x?x4096xbf16>, tensor<2048x4096xf8E4M3FN>,
           tensor<2048x4096xf8E4M3FN>, tensor<4096x2048xf8E4M3FN>,
           tensor<16x32xf8E8M0FNU>, tensor<16x32xf8E8M0FNU>,
           tensor<32x16xf8E8M0FNU>) -> tensor<1x?x4096xbf16>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$x, AnyRankedTensor:$w1,
                       AnyRankedTensor:$w3, AnyRankedTensor:$w2,
                       Optional<AnyRankedTensor>:$w1Scale,
                       Optional<AnyRankedTensor>:$w3Scale,
                       Optional<AnyRankedTensor>:$w2Scale,
                       OptionalAttr<F64Attr>:$swigluLimit);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $x `w1` $w1 (`scale` $w1Scale^)? `,` `w3` $w3 (`scale` $w3Scale^)? `,`
    `w2` $w2 (`scale` $w2Scale^)? (`swigluLimit` $swigluLimit^)? attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Combine
//===----------------------------------------------------------------------===//

def V4_MoECombineOp : V4_Op<"moe.combine", [Pure]> {
  let summary = "routed + shared expert output, one bf16 rounding";
  let description = [{
    `result = bf16(sum_j fp32(routed[..., j, :]) + fp32(shared))` (V4-SPEC
    6.3): the routed experts' per-slot outputs (`v4.moe.experts`) summed in
    fp32 in slot order (from 0, j ascending), plus the shared expert output,
    cast to bf16 once at the end.

    Operands: `routed` [..., k, d] bf16 (f32 in fp32 numerics), `shared`
    [..., d] bf16 (f32 in fp32 numerics). Result: [..., d], bf16 (f32 in
    fp32 numerics).

    ```mlir
    %y = v4.moe.combine %routed, %shared
        : tensor<1x?x6x4096xbf16>, tensor<1x?x4096xbf16>
          -> tensor<1x?x4096xbf16>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$routed, AnyRankedTensor:$shared);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $routed `,` $shared attr-dict `:` type($routed) `,` type($shared) `->`
    type($result)
  }];
  let hasVerifier = 1;
}

#endif // V4_DIALECTS_V4_V4MOEOPS_TD
