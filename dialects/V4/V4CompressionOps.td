//===- V4CompressionOps.td - KV compressor and lightning indexer ops ---*- tablegen -*-===//
//
// The gated KV compressor (overlapping 4:1 and non-overlapping r:1), the lightning indexer scores and causal top-k selection (V4-SPEC 5.3, 5.5, 9.2).
//
//===----------------------------------------------------------------------===//

#ifndef V4_DIALECTS_V4_V4COMPRESSIONOPS_TD
#define V4_DIALECTS_V4_V4COMPRESSIONOPS_TD

include "dialects/V4/V4Base.td"
include "dialects/V4/V4Types.td"
include "dialects/V4/V4Attrs.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "dialects/V4/V4Interfaces.td"

//===----------------------------------------------------------------------===//
// KV compressor
//===----------------------------------------------------------------------===//

def V4_KVStateEmptyOp : V4_Op<"kv.state_empty", [Pure]> {
  let summary = "the reset compressor state of a sequence start";
  let description = [{
    Produces the compressor state of a sequence that has seen no token yet:
    every `kv_state` element is 0 and every `score_state` element is −inf
    (V4-SPEC 9.2.2). A model must start every sequence (`startPos` = 0) from
    this value: the reference only overwrites `state[0:r]` when a prefill
    completes a block, so a short prompt would otherwise inherit the state of
    the previous request. With score −inf the absent candidates of entry 0 of
    an overlapping compressor get softmax weight exactly 0 (V4-SPEC 5.3).

    The layout is that of `!v4.compressor_state` (V4-SPEC 9.1): per sequence
    [2r, 2c] for ratio 4 (overlapping), [r, c] otherwise; all fp32.

    ```mlir
    %s = v4.kv.state_empty : !v4.compressor_state<batch = 1, ratio = 4, dim = 512>
    ```
  }];
  let arguments = (ins);
  let results = (outs V4_CompressorStateType:$state);
  let assemblyFormat = "attr-dict `:` qualified(type($state))";
}

def V4_KVCompressOp : V4_Op<"kv.compress", [Pure,
    DeclareOpInterfaceMethods<V4_TiedResultsOpInterface>,
    AllTypesMatch<["state", "newState"]>,
    AllTypesMatch<["cache", "newCache"]>]> {
  let summary = "one layer's gated KV compressor over a chunk of tokens";
  let description = [{
    The whole KV compressor (`Compressor.forward`) of one layer for a chunk of
    T tokens per sequence (V4-SPEC 5.3, 9.2, 9.2.1). Token t of sequence b is
    at position `p = startPos[b] + t`. The compressor has ratio `r` and output
    width `c`, both taken from the state type; it overlaps iff `r == 4`, and
    `coff = 1 + overlap` (V4-SPEC 5.3). `d` is the model width.

    Operands:
    * `x` [B, T, d] bf16: the normed layer input (`attn_norm` output).
    * `wkv`, `wgate` [coff·c, d], bf16 or f32: upcast to fp32.
    * `ape` [r, coff·c] f32 (bf16 accepted, upcast; one MLX conversion stores
      it as bf16, V4-SPEC 1.4): the in-block position bias.
    * `norm` [c], bf16 or f32: the compressor's RMSNorm weight, held in fp32.
    * `state`: `!v4.compressor_state<batch = B, ratio = r, dim = c>`.
    * `cache`: `!v4.kv_cache<batch = B, dim = c, ratio = r>`; entry e of a
      sequence lives at row e.
    * `startPos` [B] i64.

    Attributes: `rope` is the layer's RoPE table (`rope.ropeDim` rotated last
    dims; V4-SPEC 2.2), `normEps` the RMSNorm epsilon (1e-6 in every released
    model), and `rotate` selects the indexer compressor.

    Semantics, per sequence, processing the tokens in position order (all in
    fp32 unless stated):
    1. `k_p = wkv · fp32(x_p)`, `g_p = wgate · fp32(x_p) + ape[p mod r]`, both
       in R^{coff·c}.
    2. The token's (k_p, g_p) goes to state row `off + (p mod r)`, with
       `off = r` if overlapping, else 0 (kv_state gets k, score_state g).
    3. When `(p + 1) mod r == 0`, block `e = floor(p / r)` is complete (its
       last token is in this chunk) and is compressed from the state rows,
       i.e. from earlier chunks and/or this one (V4-SPEC 9.2.2):
       * non-overlap: per channel ch, `w_j = softmax_j(score[j, ch])` over
         the r rows and `ĉ_ch = Σ_j w_j · kv[j, ch]`;
       * overlap: the 2r candidates per channel ch < c are
         `(kv[j, ch], score[j, ch])` for rows j = 0..r−1 (the previous
         block's first half, −inf scores for e = 0) and
         `(kv[r+j, c+ch], score[r+j, c+ch])` for j = 0..r−1 (the current
         block's second half); softmax over the 2r scores, weighted sum;
         then the shift `state[0:r] ← state[r:2r]`.
       Post-processing: `ĉ ← bf16(ĉ)`; `ĉ ← RMSNorm(ĉ; norm, normEps)` (fp32
       math, bf16 result, V4-SPEC 2.1); RoPE on the last `ropeDim` dims at
       position `e·r` (the block's first token, interleaved pairs, V4-SPEC
       2.2); then
       * main compressor (no `rotate`): FP8 e4m3 fake-quant with ue8m0 scale,
         block 64, on the first `c − ropeDim` dims; the rope dims stay bf16;
       * indexer compressor (`rotate`): Hadamard rotation over all c dims
         (bf16 out, V4-SPEC 2.5), then FP4 e2m1 fake-quant, block 32, on all
         c dims (V4-SPEC 2.3).
       The bf16 result is written to row e of the cache (converted exactly if
       the cache is f32). Rows not completed in this chunk keep their values.
    4. `newState` is the state after the last token of the chunk: the
       trailing `(startPos + T) mod r` tokens' (k, g+ape) in rows
       `[off, off + (startPos + T) mod r)`, and, for overlap, the last
       complete block's rows in `state[0:r]` (V4-SPEC 9.2.1). Rows past the
       partial block are not read before they are rewritten.

    The result equals the reference both for prefill (`startPos` = 0 with any
    T, starting from `v4.kv.state_empty`) and for decode (T = 1); other chunk
    sizes follow the generalisation of V4-SPEC 9.2.2, and per-sequence
    `startPos` means per-sequence block boundaries. Run-time preconditions:
    `state` is the state left by the previous chunk of the same sequence (or
    empty when `startPos` = 0), and `floor((startPos + T) / r) <= capacity`.
    With a dynamic T every sequence of the call has T tokens.

    Verified: x [B, T, d] bf16; wkv and wgate [coff·c, d] bf16/f32; ape
    [r, coff·c]; norm [c]; state and cache agree on batch, ratio and dim with
    each other, with `x` and with `startPos` [B] i64; the cache holds bf16 or
    f32; `ropeDim <= c`; main form: `(c − ropeDim) % 64 == 0`; `rotate`:
    ratio 4 (the indexer exists only on CSA layers, V4-SPEC 1.2), c a power of
    two (Hadamard) and a multiple of 32 (FP4 blocks); `normEps > 0`; with a
    static T, `floor(T / r) <= capacity`.

    Flash CSA layer, main compressor (c = 512, coff = 2) and indexer
    compressor (c = 128), decode of one token:

    ```mlir
    %s1, %c1 = v4.kv.compress %x, %s0, %c0, %pos
        weights(%wkv, %wgate, %ape, %norm)
        rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0,
                      originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0>
        eps 1.0e-6
        : tensor<1x1x4096xbf16>, !v4.compressor_state<batch = 1, ratio = 4, dim = 512>,
          !v4.kv_cache<batch = 1, capacity = 16384, dim = 512, ratio = 4, elementType = bf16>,
          tensor<1xi64>
        weights(tensor<1024x4096xbf16>, tensor<1024x4096xbf16>,
                tensor<4x1024xf32>, tensor<512xbf16>)
    %is1, %ic1 = v4.kv.compress %x, %is0, %ic0, %pos
        weights(%iwkv, %iwgate, %iape, %inorm)
        rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0,
                      originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0>
        eps 1.0e-6 rotate
        : tensor<1x1x4096xbf16>, !v4.compressor_state<batch = 1, ratio = 4, dim = 128>,
          !v4.kv_cache<batch = 1, capacity = 16384, dim = 128, ratio = 4, elementType = bf16>,
          tensor<1xi64>
        weights(tensor<256x4096xbf16>, tensor<256x4096xbf16>,
                tensor<4x256xf32>, tensor<128xbf16>)
    ```
  }];
  let arguments = (ins AnyRankedTensor:$x, AnyRankedTensor:$wkv,
                       AnyRankedTensor:$wgate, AnyRankedTensor:$ape,
                       AnyRankedTensor:$norm,
                       V4_CompressorStateType:$state, V4_KVCacheType:$cache,
                       AnyRankedTensor:$startPos, V4_RopeTableAttr:$rope,
                       F64Attr:$normEps, UnitAttr:$rotate);
  let results = (outs V4_CompressorStateType:$newState,
                      V4_KVCacheType:$newCache);
  let assemblyFormat = [{
    $x `,` $state `,` $cache `,` $startPos
    `weights` `(` $wkv `,` $wgate `,` $ape `,` $norm `)`
    `rope` qualified($rope) `eps` $normEps (`rotate` $rotate^)? attr-dict `:`
    type($x) `,` qualified(type($state)) `,` qualified(type($cache)) `,`
    type($startPos)
    `weights` `(` type($wkv) `,` type($wgate) `,` type($ape) `,` type($norm)
    `)`
  }];
  let hasVerifier = 1;
}

def V4_KVCompressProjectedOp : V4_Op<"kv.compress_projected", [Pure,
    DeclareOpInterfaceMethods<V4_TiedResultsOpInterface>,
    AllTypesMatch<["state", "newState"]>,
    AllTypesMatch<["cache", "newCache"]>,
    AllTypesMatch<["kv", "score"]>]> {
  let summary = "a KV compressor whose projections are given";
  let description = [{
    `v4.kv.compress` after its step 1's projections: `kv` = `wkv · fp32(x)`
    and `score` = `wgate · fp32(x)`, both [B, T, coff·c] f32 (without `ape`),
    are operands instead of `x`, `wkv` and `wgate`. Everything else (`ape`,
    `norm`, `state`, `cache`, `startPos`, the attributes, steps 1's `+ ape`
    and 2-4, the results and the run-time preconditions) is that op's, so
    `v4.kv.compress %x ... weights(%wkv, %wgate, %ape, %norm)` equals
    `v4.kv.compress_projected (v4.linear %x, %wkv -> f32),
    (v4.linear %x, %wgate -> f32) ... weights(%ape, %norm)`, bit for bit in
    the reference summation order (ascending fp32 sums over d from 0, the
    plain-weight `v4.linear`'s). `v4-decompose-kv-compress` makes this
    rewrite, so that the projections run as tiled GEMMs on every thread and
    only the stateful part runs in order.

    Verified: `kv` and `score` are f32 [B, T, coff·c] of the same type; the
    rest as `v4.kv.compress` (kv_compress_c6 to c18, with `kv` in the place
    of `x` for the batch and T).

    ```mlir
    %s1, %c1 = v4.kv.compress_projected %kv, %score, %s0, %c0, %pos
        weights(%ape, %norm)
        rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0,
                      originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0>
        eps 1.0e-6
        : tensor<1x?x1024xf32>, !v4.compressor_state<batch = 1, ratio = 4, dim = 512>,
          !v4.kv_cache<batch = 1, capacity = 16384, dim = 512, ratio = 4, elementType = bf16>,
          tensor<1xi64>
        weights(tensor<4x1024xf32>, tensor<512xbf16>)
    ```
  }];
  let arguments = (ins AnyRankedTensor:$kv, AnyRankedTensor:$score,
                       AnyRankedTensor:$ape, AnyRankedTensor:$norm,
                       V4_CompressorStateType:$state, V4_KVCacheType:$cache,
                       AnyRankedTensor:$startPos, V4_RopeTableAttr:$rope,
                       F64Attr:$normEps, UnitAttr:$rotate);
  let results = (outs V4_CompressorStateType:$newState,
                      V4_KVCacheType:$newCache);
  let assemblyFormat = [{
    $kv `,` $score `,` $state `,` $cache `,` $startPos
    `weights` `(` $ape `,` $norm `)`
    `rope` qualified($rope) `eps` $normEps (`rotate` $rotate^)? attr-dict `:`
    type($kv) `,` qualified(type($state)) `,` qualified(type($cache)) `,`
    type($startPos)
    `weights` `(` type($ape) `,` type($norm) `)`
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Lightning indexer
//===----------------------------------------------------------------------===//

def V4_CSAIndexerScoresOp : V4_Op<"csa.indexer_scores", [Pure]> {
  let summary = "lightning indexer scores of each query against the index keys";
  let description = [{
    The scoring part of the CSA lightning indexer (V4-SPEC 5.5 steps 3-5).
    Token t of sequence b is the query at position `p = startPos[b] + t`.

    Operands:
    * `q` [B, T, HI, DI] bf16: the indexer queries after RoPE, Hadamard and
      FP4 fake-quant (step 1).
    * `weights` [B, T, HI] bf16: the output of `weights_proj` on the normed
      layer input.
    * `keys`: `!v4.kv_cache<batch = B, capacity = N, dim = DI, ratio = 4>`,
      the indexer key cache already updated for this chunk (step 2, by
      `v4.kv.compress ... rotate`), so an entry completed by a query's own
      token is scored.
    * `startPos` [B] i64.

    Result `scores` [B, T, N], bf16 or f32 (f32 holds the same bf16-rounded
    values exactly):
    1. `w_h = bf16(weights_h · (DI^−½ · HI^−½))`, the constant formed in fp32
       (step 3). HI is the full `index_n_heads` (64 in V4-Flash and V4-Pro).
    2. For every entry `e < floor((p + 1) / 4)`:
       `I(p, e) = bf16( Σ_h bf16( w_h · ReLU( bf16(q_h · K_e) ) ) )`, where
       the dot `q_h · K_e` over DI accumulates in fp32 and is rounded to
       bf16, each product with `w_h` is rounded to bf16, and the sum over
       heads is rounded to bf16 (step 4; the sum itself accumulates in fp32).
       There is no softmax.
    3. Entries `e >= floor((p + 1) / 4)` (not yet complete at p, including
       rows never written) are −inf (step 5; the causal mask, per query).

    Verified: q rank 4 bf16; weights [B, T, HI] bf16; HI static and > 0;
    keys ratio 4, dim DI, batch B, element type bf16 or f32; DI a power of two
    and a multiple of 32 (Hadamard and FP4 blocks of the keys and queries);
    startPos [B] i64; scores [B, T, N] bf16 or f32.

    V4-Flash, prefill of a dynamic-T chunk at S_max = 65536:

    ```mlir
    %scores = v4.csa.indexer_scores %q, %w, %keys, %pos
        : (tensor<1x?x64x128xbf16>, tensor<1x?x64xbf16>,
           !v4.kv_cache<batch = 1, capacity = 16384, dim = 128, ratio = 4, elementType = bf16>,
           tensor<1xi64>) -> tensor<1x?x16384xbf16>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$q, AnyRankedTensor:$weights,
                       V4_KVCacheType:$keys, AnyRankedTensor:$startPos);
  let results = (outs AnyRankedTensor:$scores);
  let assemblyFormat = [{
    $q `,` $weights `,` $keys `,` $startPos attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def V4_CSATopKOp : V4_Op<"csa.topk", [Pure]> {
  let summary = "causal top-k compressed-entry ids per query";
  let description = [{
    The selection step of the CSA lightning indexer (V4-SPEC 5.5 step 6).
    Token t of sequence b is the query at position `p = startPos[b] + t`; its
    visible entries are the ids `e < V(p) = min(N, floor((p + 1) / ratio))`.

    `indices[b, t, :]` ([B, T, k] i64) lists the min(k, V(p)) visible ids
    with the largest `scores[b, t, e]`, in descending score order, followed by
    −1 in the remaining slots (ids `>= floor((p + 1) / ratio)`, which the
    reference takes from the −inf region when too few entries exist, become
    −1). Only visible ids are considered, so masked or unmasked scores give
    the same result. This equals the reference's
    `top_k(I, min(index_topk, floor(end_pos / 4)))` padded with −1 to k
    columns; `k > N` is allowed (small S_max) and pads with −1.

    The ids are entry ids (cache rows); the offset into the attention kernel's
    index space (T in prefill, the ring size in decode, V4-SPEC 5.4) is added
    by the attention ops, not here.

    Ties: which of several equal-scored entries is selected, and the relative
    order of equal-scored ids, are implementation-defined (V4-SPEC 5.5, 11.2
    item 8; ReLU makes exact-zero ties likely). NaN scores are not defined.

    Verified: scores [B, T, N] bf16 or f32; startPos [B] i64; `k > 0`;
    `ratio >= 2`; indices [B, T, k] i64.

    V4-Flash, decode (T = 1), index_topk 512:

    ```mlir
    %ids = v4.csa.topk %scores, %pos k 512
        : (tensor<1x1x16384xbf16>, tensor<1xi64>) -> tensor<1x1x512xi64>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$scores, AnyRankedTensor:$startPos,
                       I64Attr:$k, DefaultValuedAttr<I64Attr, "4">:$ratio);
  let results = (outs AnyRankedTensor:$indices);
  let assemblyFormat = [{
    $scores `,` $startPos `k` $k (`ratio` $ratio^)? attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

#endif // V4_DIALECTS_V4_V4COMPRESSIONOPS_TD
