//===- V4AttentionOps.td - window, sink attention, state ---*- tablegen -*-===//
//
// Sliding-window indices, sink attention (SWA, HCA, CSA) and the decode-state
// ops of the window ring and compressed caches (V4-SPEC 5.1-5.8, 9).
//
//===----------------------------------------------------------------------===//

#ifndef V4_DIALECTS_V4_V4ATTENTIONOPS_TD
#define V4_DIALECTS_V4_V4ATTENTIONOPS_TD

include "dialects/V4/V4Base.td"
include "dialects/V4/V4Types.td"
include "dialects/V4/V4Attrs.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "dialects/V4/V4Interfaces.td"

//===----------------------------------------------------------------------===//
// Decode state: window ring and compressed cache
//===----------------------------------------------------------------------===//

def V4_RingEmptyOp : V4_Op<"ring.empty", [Pure]> {
  let summary = "a fresh sliding-window ring with all slots empty";
  let description = [{
    Produces the window ring of `batch` new sequences (V4-SPEC 5.2, 9.1):
    every slot is empty (zero). A sequence that starts at position 0 never
    reads a slot before writing it (`v4.attn.sparse` reads the ring only for
    positions before `startPos`), so the contents of an empty slot are never
    observed by a valid program.

    ```mlir
    %ring = v4.ring.empty
        : !v4.window_ring<batch = 1, slots = 128, dim = 512, elementType = bf16>
    ```
  }];
  let results = (outs V4_WindowRingType:$result);
  let assemblyFormat = "attr-dict `:` qualified(type($result))";
}

def V4_RingWriteOp : V4_Op<"ring.write",
    [Pure, AllTypesMatch<["ring", "result"]>,
     DeclareOpInterfaceMethods<V4_TiedResultsOpInterface>]> {
  let summary = "writes a chunk's raw kv into the sliding-window ring";
  let description = [{
    Returns `ring` with the raw kv of this chunk written into it (V4-SPEC
    5.2, 9.1, 9.2 item 4.2, 9.2.1). `kv` is [B, T, D]: token t of sequence b
    is at position `p = startPos[b] + t` and is the post kv_norm, RoPE and
    FP8-fake-quant vector of V4-SPEC 5.1 (the same vector the attention uses
    as key and value). With S = `slots` of the ring type:

    * only the last min(T, S) tokens of each sequence are written: for
      t = max(0, T - S) ... T - 1, slot `p mod S` of sequence b receives
      `kv[b, t, :]` (a prefill with T > S keeps positions T-S ... T-1);
    * every other slot keeps its previous contents, so after the write the
      ring of sequence b holds positions
      max(0, startPos[b] + T - S) ... startPos[b] + T - 1, each at slot
      position mod S.

    No element is converted: `kv` has the ring's element type (bf16 in the
    reference), so a decode step reads back exactly the values a prefill
    attends to. In a layer the write happens after the window's attention
    inputs are formed: `v4.attn.sparse` takes the ring from BEFORE the write
    together with the chunk's own `kv` (V4-SPEC 9.2 item 4).

    Shapes: `kv` [B, T, D] with B = ring batch and D = ring dim, T >= 1 (may
    be dynamic); `startPos` [B] i64.

    ```mlir
    %ring1 = v4.ring.write %kv into %ring0 at %startPos
        : tensor<1x?x512xbf16>, tensor<1xi64>
        -> !v4.window_ring<batch = 1, slots = 128, dim = 512,
                           elementType = bf16>
    ```
  }];
  let arguments = (ins V4_WindowRingType:$ring, AnyRankedTensor:$kv,
                       AnyRankedTensor:$startPos);
  let results = (outs V4_WindowRingType:$result);
  let assemblyFormat = [{
    $kv `into` $ring `at` $startPos attr-dict `:` type($kv) `,`
    type($startPos) `->` qualified(type($result))
  }];
  let hasVerifier = 1;
}

def V4_CacheEmptyOp : V4_Op<"cache.empty", [Pure]> {
  let summary = "an empty compressed KV (or indexer key) cache";
  let description = [{
    Produces the compressed cache of `batch` new sequences with no entry
    written (V4-SPEC 9.1). Entry b of a sequence is written at row b by the
    compressor op of the compression family (`v4.kv.compress`) when block b
    completes, i.e. once token `b*ratio + ratio - 1` has been seen (V4-SPEC
    5.3, 9.2); rows not written yet are zero and are never read by a valid
    program (attention and the indexer only read entries
    b < floor((p+1)/ratio)).

    ```mlir
    %cache = v4.cache.empty : !v4.kv_cache<batch = 1, capacity = 1024,
        dim = 512, ratio = 4, elementType = bf16>
    ```
  }];
  let results = (outs V4_KVCacheType:$result);
  let assemblyFormat = "attr-dict `:` qualified(type($result))";
}

//===----------------------------------------------------------------------===//
// Sliding-window indices
//===----------------------------------------------------------------------===//

def V4_AttnWindowIndicesOp : V4_Op<"attn.window_indices", [Pure]> {
  let summary = "absolute positions of each query's sliding window";
  let description = [{
    For every query of a chunk, the absolute positions of the raw kv rows its
    sliding window covers (V4-SPEC 5.2, `get_window_topk_idxs`; test case
    V4-SPEC 11.2 item 6). Token t of sequence b is the query at position
    `p = startPos[b] + t`. With W = `window`, entry j (j = 0 ... W-1) is

        result[b, t, j] = q0 + j   if q0 + j <= p, else -1,
        where q0 = max(0, p - W + 1),

    i.e. the positions max(0, p-W+1) ... p, oldest first, which is W
    positions including the query itself once p >= W - 1, followed by -1
    padding while fewer than W positions exist. A position q lives in ring
    slot `q mod W` (V4-SPEC 9.1); the decode list of the reference,
    `(p+1) mod W, ..., W-1, 0, ..., p mod W`, is this list mapped to slots.
    The reference prefill list (start 0) is this list truncated to min(T, W)
    entries (the dropped entries are all -1).

    Shapes: `startPos` [B] i64, result [B, T, W] i64. T is the static result
    dimension, or, when the result has a dynamic T, the `tokens` index
    operand (present exactly when T is dynamic).

    ```mlir
    %idx = v4.attn.window_indices %startPos window 128
        : tensor<2xi64> -> tensor<2x16x128xi64>
    %dyn = v4.attn.window_indices %startPos tokens(%t) window 128
        : tensor<2xi64> -> tensor<2x?x128xi64>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$startPos, Optional<Index>:$numTokens,
                       I64Attr:$window);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $startPos (`tokens` `(` $numTokens^ `)`)? `window` $window attr-dict `:`
    type($startPos) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Sink attention (SWA, HCA, CSA)
//===----------------------------------------------------------------------===//

def V4_AttnSparseOp : V4_Op<"attn.sparse",
    [Pure, AttrSizedOperandSegments]> {
  let summary = "sink attention over the sliding window and compressed entries";
  let description = [{
    The attention of one layer for a chunk of T tokens (V4-SPEC 5.2, 5.4,
    5.5 item 7, 5.6, 5.8): multi-query attention of H query heads over a
    single shared key = value head of width D (512 in V4), with a learned
    per-head sink and an attended set made of the sliding window and,
    on compressed layers, compressed KV entries.

    Operands:
    * `q` [B, T, H, D] bf16: queries after the per-head norm and RoPE.
    * `kv` [B, T, D] bf16: this chunk's raw kv (after kv_norm, RoPE and FP8
      fake-quant, V4-SPEC 5.1).
    * `ring` (!v4.window_ring, batch B, dim D, slots = `window`): the window
      ring BEFORE this chunk is written (`v4.ring.write`); it supplies the
      window positions before `startPos`.
    * `sink` [H] f32: `attn_sink`.
    * `startPos` [B] i64: token t of sequence b is at `p = startPos[b] + t`.
    * `compressed %cache` (optional, !v4.kv_cache, batch B, dim D): the main
      compressor's cache, already holding every entry completed by this
      chunk (a block completed by a token is visible to that token).
    * `indices %topkIndices` (optional, only with a cache) [B, T, K] i64:
      the compressed entry ids selected by the lightning indexer (already
      masked to -1 where not causal, V4-SPEC 5.5 item 6), in the indexer's
      order; -1 = none.

    Layer forms: no cache = SWA (ratio 0); cache without indices = HCA
    (ratio != 4: all completed entries); cache with indices = CSA
    (ratio 4: the selected entries).

    Attended list. For query (b, t) at p, with W = `window`, the kernel walks
    one list of L = L_w + L_c entries, each a D-vector or "none" (-1):
    * Window part, L_w = W if startPos[b] > 0, else min(T, W) (the
      reference's prefill and decode list lengths; T is the runtime T).
      Entry j holds position `q = max(0, p-W+1) + j`, or none if q > p
      (the list of `v4.attn.window_indices`). The vector of position q is
      `kv[b, q - startPos[b], :]` if q >= startPos[b], else ring slot
      `q mod W` of sequence b (the ring must hold positions
      max(0, startPos[b]-W) ... startPos[b]-1, as `v4.ring.write` leaves it).
    * Compressed part (with a cache of ratio r; n_p = floor((p+1)/r) entries
      are visible to the query):
      - HCA: L_c = floor((startPos[b]+T)/r); entry i is cache row i if
        i < n_p, else none (all completed blocks, V4-SPEC 5.4).
      - CSA: L_c = K; entry k is cache row `topkIndices[b, t, k]`; an id of
        -1, or any id outside [0, n_p), is none (V4-SPEC 5.5 item 7).
      - SWA: L_c = 0.
    Duplicates are not removed: a recent token can appear both raw in the
    window and inside a compressed entry, and a repeated id counts twice.

    Per head h (V4-SPEC 5.6, `sparse_attn_kernel`), with scale s (`scale`,
    default D^-1/2 = 512^-1/2):
    * score of entry j: `s_j = f32(q_h . v_j) * s` (bf16 operands, fp32
      accumulation); a none entry has s_j = -inf and a zero vector.
    * Online softmax over the list in its order, in tiles of 64 entries,
      with fp32 running max m (initially -inf), denominator l (0) and
      accumulator acc (0): per tile, `m' = max(m, max_j s_j)`,
      `p_j = exp(s_j - m')`, `l <- l * exp(m - m') + sum_j p_j`,
      `acc <- acc * exp(m - m') + sum_j bf16(p_j) * v_j` (probabilities
      rounded to bf16 for the P.V product, fp32 accumulation), `m <- m'`.
    * The sink enters once, after the last tile, relative to the final max:
      `l <- l + exp(sink[h] - m)`; then `out[b, t, h, :] = bf16(acc / l)`.
      Mathematically `out = sum_j exp(s_j - M) v_j /
      (sum_j exp(s_j - M) + exp(sink_h - M))`, M = max_j s_j: the sink is a
      virtual key with logit sink_h and a zero value (sink = -inf gives plain
      softmax attention, sink = +inf a zero output).
    The query's own position is always in its window, so m is finite.
    Bit-exact results depend on the list order and its 64-entry tiling,
    which is why the order above is part of the semantics.

    Attributes: `window` (= ring slots, 128 in V4), `scale` (optional,
    > 0; default D^-1/2).
    Result: [B, T, H, D] bf16, the attention output before the inverse RoPE
    and output projection (V4-SPEC 5.7).

    ```mlir
    // CSA decode step of V4-Flash (H = 64, D = 512, window 128, top-512).
    %o = v4.attn.sparse %q, %kv, %ring, %sink, %startPos
        compressed %cache : !v4.kv_cache<batch = 1, capacity = 16384,
            dim = 512, ratio = 4, elementType = bf16>
        indices %topk : tensor<1x1x512xi64>
        window 128
        : tensor<1x1x64x512xbf16>, tensor<1x1x512xbf16>,
          !v4.window_ring<batch = 1, slots = 128, dim = 512,
                          elementType = bf16>,
          tensor<64xf32>, tensor<1xi64> -> tensor<1x1x64x512xbf16>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$q, AnyRankedTensor:$kv,
                       V4_WindowRingType:$ring, AnyRankedTensor:$sink,
                       AnyRankedTensor:$startPos,
                       Optional<V4_KVCacheType>:$cache,
                       Optional<AnyRankedTensor>:$topkIndices,
                       I64Attr:$window, OptionalAttr<F64Attr>:$scale);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $q `,` $kv `,` $ring `,` $sink `,` $startPos
    (`compressed` $cache^ `:` qualified(type($cache)))?
    (`indices` $topkIndices^ `:` type($topkIndices))?
    `window` $window (`scale` $scale^)? attr-dict
    `:` type($q) `,` type($kv) `,` qualified(type($ring)) `,` type($sink) `,`
    type($startPos) `->` type($result)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The softmax scale: `scale` if set, else D^-1/2 (D = ring dim).
    double getEffectiveScale();
    /// True for the CSA form (cache and selected indices).
    bool isCSA() { return getCache() && getTopkIndices(); }
    /// True for the HCA form (cache, all completed entries).
    bool isHCA() { return getCache() && !getTopkIndices(); }
  }];
}

#endif // V4_DIALECTS_V4_V4ATTENTIONOPS_TD
