//===- V4EngramOps.td - Engram n-gram memory ops ---*- tablegen -*-===//
//
// Engram: n-gram hashing, table lookup, gate into the lanes (V4-SPEC 8).
//
//===----------------------------------------------------------------------===//

#ifndef V4_DIALECTS_V4_V4ENGRAMOPS_TD
#define V4_DIALECTS_V4_V4ENGRAMOPS_TD

include "dialects/V4/V4Base.td"
include "dialects/V4/V4Types.td"
include "dialects/V4/V4Attrs.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "dialects/V4/V4Interfaces.td"

//===----------------------------------------------------------------------===//
// Hash look-back state
//===----------------------------------------------------------------------===//

def V4_EngramStateEmptyOp : V4_Op<"engram.state_empty", [Pure]> {
  let summary = "Engram hash look-back of sequences that have not started";
  let description = [{
    The hash look-back state (V4-SPEC 8.8) before the first token of every
    sequence: each of the `batch` sequences holds `lookback` = N-1
    compressed ids, all equal to `padId` = c_pad = c(engram_pad_token_id)
    (V4-SPEC 8.3), so positions before the sequence start hash with the pad.
    One state is shared by all Engram layers (it depends only on the ids).

    ```mlir
    %s = v4.engram.state_empty pad 2 : !v4.engram_state<batch = 1, lookback = 3>
    ```
  }];
  let arguments = (ins I64Attr:$padId);
  let results = (outs V4_EngramStateType:$state);
  let assemblyFormat = "`pad` $padId attr-dict `:` qualified(type($state))";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Hash, lookup, gate
//===----------------------------------------------------------------------===//

def V4_EngramHashOp : V4_Op<"engram.hash", [Pure,
    DeclareOpInterfaceMethods<V4_TiedResultsOpInterface>]> {
  let summary = "Engram n-gram hash: table rows of every token and head";
  let description = [{
    N-gram hashing of one Engram layer (V4-SPEC 8.3, 8.4). For the token t
    of sequence b (t = 0 ... T-1 of this call):

    * `c_t = tokenMap[ids[b, t]]`: the compressed id (V4-SPEC 8.3).
      Look-back ids `c_{t-k}` with t - k < 0 come from `state` (the last
      N-1 compressed ids of the sequence before this call, `padId` where
      the sequence had not started, see `v4.engram.state_empty`).
    * `h_n(t) = XOR_{k=0...n-1} (c_{t-k} * multipliers[k])` in int64 (never
      negative), cumulative in n: `h_{n+1} = h_n XOR (c_{t-n} * m_n)`, for
      n = 2 ... N (N = `maxNgram`).
    * `rows[b, t, (n-2)*H + j] = (h_n(t) mod P_{n,j}) + off_{n,j}` for the
      heads j = 0 ... H-1 (H = `heads`), where `P_{n,j} = primes[(n-2)*H +
      j]` and `off` is the exclusive prefix sum of `primes` in this (n, j)
      order, n-major. Every row lies in [0, sum(primes)), the row count of
      the layer's concatenated table (`engram_num_embeddings`).
    * `newState` holds the last N-1 compressed ids of each sequence after
      this call (of the old look-back followed by `c_0 ... c_{T-1}`).
      Chunked prefill and decode continue across calls; token-by-token
      hashing equals one-shot hashing (V4-SPEC 11.2 item 17).

    Operands: `ids` [B, T] i32/i64 token ids, `tokenMap` [vocab] i32/i64
    (the project tensor `engram.token_map`), `multipliers` [N] i64 (odd,
    computed offline per layer; `layers.L.engram.multipliers`), `state`
    `!v4.engram_state<batch = B, lookback = N-1>`. Results: `rows` [B, T,
    (N-1)*H] i32 or i64 (i32 needs sum(primes) < 2^31) and the new state
    (the type of `state`). Attributes: `maxNgram` N >= 2, `heads` H >= 1,
    `primes` the (N-1)*H distinct per-head table sizes (primes, strictly
    increasing over j within each order n), `padId` the compressed pad id.
    V4.1: N = 4, H = 8, 24 primes 16,000,057 ... 16,000,463 at layer 1.

    ```mlir
    %rows, %s1 = v4.engram.hash %ids, %map, %mult, %s0
        {heads = 2 : i64, maxNgram = 3 : i64, padId = 2 : i64,
         primes = array<i64: 41, 43, 47, 53>}
        : (tensor<2x?xi64>, tensor<97xi64>, tensor<3xi64>,
           !v4.engram_state<batch = 2, lookback = 2>)
        -> (tensor<2x?x4xi32>, !v4.engram_state<batch = 2, lookback = 2>)
    ```
  }];
  let arguments = (ins AnyRankedTensor:$ids, AnyRankedTensor:$tokenMap,
                       AnyRankedTensor:$multipliers,
                       V4_EngramStateType:$state,
                       I64Attr:$maxNgram, I64Attr:$heads,
                       DenseI64ArrayAttr:$primes, I64Attr:$padId);
  let results = (outs AnyRankedTensor:$rows, V4_EngramStateType:$newState);
  let assemblyFormat = [{
    $ids `,` $tokenMap `,` $multipliers `,` $state attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def V4_EngramLookupOp : V4_Op<"engram.lookup", [Pure]> {
  let summary = "Engram table gather and dequantisation";
  let description = [{
    Gathers the rows of one Engram layer's concatenated table (V4-SPEC 8.5):
    `e[b, t, r*De : (r+1)*De] = deq(table[rows[b, t, r]])` for r = 0 ...
    R-1 (R = (N-1)*H, columns in (n, j) order). With an FP8 table,
    `deq(row)[c] = value[c] * 2^(scale[row, c/32] - 127)` (one e8m0 scale
    per 32 consecutive elements of a row), exact in bf16; a bf16 table is
    read as is. Every row index must lie in [0, numEmbeddings).

    Operands: `rows` [B, T, R] i32/i64 (from `v4.engram.hash`), `table`
    [numEmbeddings, De] f8E4M3FN with `scale` [numEmbeddings, De/32]
    f8E8M0FNU (De a multiple of 32), or a bf16 `table` without scale
    (`layers.L.engram.embed.weight` / `.scale`). The table is host-resident
    in deployment (V4-SPEC 8.9). Result `e` [B, T, R*De], bf16 (f32
    accepted: the dequantised values are exact in both). `numEmbeddings` =
    engram_num_embeddings[L] (V4.1 layer 1: 384,006,168); it must equal the
    table's row count and fit the index type.

    ```mlir
    %e = v4.engram.lookup %rows, %table scale %scale {numEmbeddings = 184 : i64}
        : (tensor<2x?x4xi32>, tensor<184x32xf8E4M3FN>, tensor<184x1xf8E8M0FNU>)
        -> tensor<2x?x128xbf16>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$rows, AnyRankedTensor:$table,
                       Optional<AnyRankedTensor>:$scale,
                       I64Attr:$numEmbeddings);
  let results = (outs AnyRankedTensor:$e);
  let assemblyFormat = [{
    $rows `,` $table (`scale` $scale^)? attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def V4_EngramGateOp : V4_Op<"engram.gate",
    [Pure, AttrSizedOperandSegments,
     DeclareOpInterfaceMethods<V4_TiedResultsOpInterface>]> {
  let summary = "Engram gate: inject the gated value into every lane";
  let description = [{
    Gate and residual injection of one Engram layer (V4-SPEC 8.6 steps
    2-4, the production form of TileKernels `engram_gate_ref`). `kv` is the
    output of the `wkv` linear (step 1): for lane i, `k_i` = `kv[..., i*d :
    (i+1)*d]`; `v` = the last d values, shared by all lanes. Per token and
    lane i, in fp32 (`rstd(x) = 1 / sqrt(mean(x^2) + eps)` over the d
    channels of one lane):

    `dot_i = sum_c (X_ic * qWeight_ic * k_ic * kWeight_ic) * rstd(X_i) *
    rstd(k_i) / sqrt(d)`,
    `gate_i = sigmoid(sign(dot_i) * sqrt(max(|dot_i|, 1e-6)))` (sign(0) = 0,
    so dot = 0 gives 0.5), `X'_i = X_i + gate_i * v`, rounded once to the
    lanes' element type (bf16). `qWeight * kWeight` is formed in fp32 from
    the stored values.

    Demo form (V4-SPEC 8.6 step 5), iff the `conv(...)` operands are given:
    with `u_i = gate_i * v`, `out_i = u_i + SiLU(DWConv(RMSNorm_i(u_i)))`
    and `X'_i = X_i + out_i`. `RMSNorm_i` has weight `convNorm[i]` and eps
    `convNormEps` (1e-5); the n normed lanes are concatenated into n*d
    channels; `DWConv` is depthwise and causal over time with weight
    `convWeight` [n*d, 1, K] (K = 4), dilation `convDilation` (= N), no
    bias. `convState` [B, (K-1)*convDilation, n*d] holds each sequence's
    last (K-1)*N conv inputs (zeros before the sequence start), which
    precede this call's inputs; the extra result `newConvState` (type of
    `convState`) holds the last (K-1)*N inputs after this call.

    Operands: `x` [B, T, n, d] bf16 (f16/f32 accepted for reference
    testing), `kv` [B, T, (n+1)*d] with the element type of `x`, `qWeight`
    and `kWeight` [n, d] bf16 or f32 (`layers.L.engram.q_weight` /
    `k_weight`). Result: the type of `x`. `eps` = engram_norm_eps (default
    1e-20, as in V4.1).

    ```mlir
    %x2 = v4.engram.gate %x, %kv, %qw, %kw
        : (tensor<1x?x4x64xbf16>, tensor<1x?x320xbf16>, tensor<4x64xbf16>,
           tensor<4x64xbf16>) -> tensor<1x?x4x64xbf16>
    %x3, %h1 = v4.engram.gate %x, %kv, %qw, %kw
        conv(%cw, %cn, %h0) {convDilation = 3 : i64}
        : (tensor<1x?x4x64xbf16>, tensor<1x?x320xbf16>, tensor<4x64xbf16>,
           tensor<4x64xbf16>, tensor<256x1x4xbf16>, tensor<4x64xbf16>,
           tensor<1x9x256xbf16>) -> (tensor<1x?x4x64xbf16>, tensor<1x9x256xbf16>)
    ```
  }];
  let arguments = (ins AnyRankedTensor:$x, AnyRankedTensor:$kv,
                       AnyRankedTensor:$qWeight, AnyRankedTensor:$kWeight,
                       Optional<AnyRankedTensor>:$convWeight,
                       Optional<AnyRankedTensor>:$convNorm,
                       Optional<AnyRankedTensor>:$convState,
                       DefaultValuedAttr<F64Attr, "1.0e-20">:$eps,
                       OptionalAttr<I64Attr>:$convDilation,
                       DefaultValuedAttr<F64Attr, "1.0e-5">:$convNormEps);
  let results = (outs AnyRankedTensor:$result,
                      Optional<AnyRankedTensor>:$newConvState);
  let assemblyFormat = [{
    $x `,` $kv `,` $qWeight `,` $kWeight
    (`conv` `(` $convWeight^ `,` $convNorm `,` $convState `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
  let extraClassDeclaration = [{
    /// Whether the demo short-conv branch (V4-SPEC 8.6 step 5) is present.
    bool hasShortConv() { return static_cast<bool>(getConvWeight()); }
  }];
  let hasVerifier = 1;
}

#endif // V4_DIALECTS_V4_V4ENGRAMOPS_TD
