//===- V4CoreOps.td - core ops: parameters, norms, linear -*- tablegen -*-===//
//
// Parameters, embedding, RMSNorm, RoPE, linear layers with FP8/FP4 weights,
// fake-quantisation and the Hadamard rotation (V4-SPEC 2, 3).
//
//===----------------------------------------------------------------------===//

#ifndef V4_DIALECTS_V4_V4COREOPS_TD
#define V4_DIALECTS_V4_V4COREOPS_TD

include "dialects/V4/V4Base.td"
include "dialects/V4/V4Types.td"
include "dialects/V4/V4Attrs.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

//===----------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------===//

def V4_ParameterOp : V4_Op<"parameter", [Pure]> {
  let summary = "a model weight, referenced by its checkpoint tensor name";
  let description = [{
    Produces the value of the checkpoint tensor `name` (V4-SPEC 1.4). Weights
    are never embedded in the IR; the runtime binds them by name at load time
    and checks the declared type against the checkpoint.

    The result type states the logical dtype: FP8 weights are `f8E4M3FN`,
    their block scales `f8E8M0FNU`, packed FP4 expert weights are logical
    `f4E2M1FN` tensors with their full K extent (the checkpoint packs two per
    byte), token-to-expert tables are integer tensors.

    With `slice D shards N` (tensor parallelism, `v4-partition`) the result
    is the running rank r's part of the checkpoint tensor along dim D: index
    i of the result's dim D (extent L) is index `r * L + i` of the
    checkpoint's, whose dim D has N * L entries; the other dims are whole.
    Block scales of a sliced FP8 weight add `blocks bl of bg`: each of the
    result's L scale entries along D covers bl weight rows (columns) of the
    rank's slice, the checkpoint's entries bg, and index i reads the
    checkpoint's entry `((r * L + i) * bl) / bg` (so a rank's scale rows
    repeat a checkpoint row when its slice does not start on a bg block);
    the checkpoint's dim D has ceil(N * L * bl / bg) entries. Each rank binds
    only its slice.

    ```mlir
    %w = v4.parameter "layers.0.attn.wq_a.weight" : tensor<1024x4096xf8E4M3FN>
    // rank r's heads of wq_b (T1: 4 heads of 72 over 2 ranks)
    %q = v4.parameter "layers.0.attn.wq_b.weight" slice 0 shards 2
        : tensor<144x32xf8E4M3FN>
    %s = v4.parameter "layers.0.attn.wq_b.scale" slice 0 shards 2
        blocks 16 of 128 : tensor<9x1xf8E8M0FNU>
    ```
  }];
  let arguments = (ins StrAttr:$name, OptionalAttr<I64Attr>:$sliceDim,
                       OptionalAttr<I64Attr>:$shards,
                       OptionalAttr<I64Attr>:$sliceBlock,
                       OptionalAttr<I64Attr>:$sliceBlockOf);
  let results = (outs AnyStaticShapeTensor:$result);
  let assemblyFormat = [{
    $name (`slice` $sliceDim^ `shards` $shards
           (`blocks` $sliceBlock^ `of` $sliceBlockOf)?)? attr-dict
    `:` type($result)
  }];
  let builders = [
    // A whole checkpoint tensor.
    OpBuilder<(ins "Type":$type, "StringRef":$name), [{
      build($_builder, $_state, type, $_builder.getStringAttr(name),
            IntegerAttr(), IntegerAttr(), IntegerAttr(), IntegerAttr());
    }]>
  ];
  let hasVerifier = 1;
}

def V4_ParameterStackOp : V4_Op<"parameter_stack", [Pure]> {
  let summary = "per-expert weights stacked along a new leading dimension";
  let description = [{
    Produces the checkpoint tensors whose names follow `pattern` with `{}`
    replaced by 0, 1, ..., count-1, stacked along a new leading dimension of
    size `count`. This is how the routed experts' weights
    (`layers.L.ffn.experts.e.w1.weight`, V4-SPEC 1.4) enter the IR as one
    value for the grouped expert op, instead of 3 x 2 x E separate
    parameters. Every member has the type of the result without its leading
    dimension.

    With `shards` = N (expert parallelism, `v4-partition`) the stack is one
    of N equal shards of the pattern's `members` tensors (default
    N * count), the one of the running rank r (`v4.comm.rank`): member e is
    the checkpoint tensor of index r * count + e, or zeros when that index
    is `members` or more (the padding of the last shards when N does not
    divide the member count: count = ceil(members / N)). Each rank binds
    only its own shard.

    With `shards` = N and `slice` D (tensor parallelism over the experts'
    hidden units, `v4-partition` with `--tp` and no `--ep`) every member is
    the checkpoint tensor e of the pattern, and the stack is the running
    rank r's part of it along result dim D >= 1 (member dim D - 1): index i
    of the result's dim D (extent L) is index `r * L + i` of the member's,
    which has N * L entries.

    ```mlir
    %w1 = v4.parameter_stack "layers.3.ffn.experts.{}.w1.weight" count 256
        : tensor<256x2048x4096xf4E2M1FN>
    %s1 = v4.parameter_stack "layers.3.ffn.experts.{}.w1.weight" count 128
        shards 2 : tensor<128x2048x4096xf4E2M1FN>
    %p1 = v4.parameter_stack "layers.3.ffn.experts.{}.w1.weight" count 2
        shards 4 of 6 : tensor<2x64x64xf4E2M1FN>
    // rank r's hidden units [r 1536, (r+1) 1536) of every expert's w2
    %t2 = v4.parameter_stack "layers.3.ffn.experts.{}.w2.weight" count 384
        shards 2 slice 2 : tensor<384x7168x1536xf4E2M1FN>
    ```
  }];
  let arguments = (ins StrAttr:$pattern, I64Attr:$count,
                       OptionalAttr<I64Attr>:$shards,
                       OptionalAttr<I64Attr>:$members,
                       OptionalAttr<I64Attr>:$sliceDim);
  let results = (outs AnyStaticShapeTensor:$result);
  let assemblyFormat = [{
    $pattern `count` $count (`shards` $shards^)? (`of` $members^)?
    (`slice` $sliceDim^)? attr-dict `:` type($result)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The checkpoint name of member `index`.
    std::string getMemberName(int64_t index);
  }];
}

//===----------------------------------------------------------------------===//
// Embedding
//===----------------------------------------------------------------------===//

def V4_EmbeddingOp : V4_Op<"embedding", [Pure]> {
  let summary = "token embedding lookup: rows of the table gathered by id";
  let description = [{
    Gathers one row of the embedding table per token (V4-SPEC 3, step 1):

        result[b, t, :] = table[ids[b, t], :]

    `table` is `[V, d]` (`embed.weight`, V = vocab_size = 129280, d = dim),
    element type bf16 (as stored) or f32; `ids` is `[B, T]` of i32 or i64
    (T may be dynamic). The result is `[B, T, d]` with the table's element
    type: the lookup is an exact copy, there is no rounding. An id outside
    `[0, V)` is undefined behaviour (the runtime may trap). The same op is
    the MTP embedding of the next-token ids (V4-SPEC 7.1), which shares
    `embed.weight`.

    ```mlir
    %e = v4.embedding %table[%ids]
        : tensor<129280x4096xbf16>, tensor<2x?xi64> -> tensor<2x?x4096xbf16>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$table, AnyRankedTensor:$ids);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $table `[` $ids `]` attr-dict `:` type($table) `,` type($ids) `->`
    type($result)
  }];
  let hasVerifier = 1;
}

def V4_ConvertOp : V4_Op<"convert", [Pure]> {
  let summary = "an element type conversion between bf16 and f32";
  let description = [{
    `result = input` in the result's element type: f32 -> bf16 rounds to
    nearest even (the rounding point every bf16 kernel output has), bf16 ->
    f32 is exact, and the same type is the input itself (folded). Same
    shape. `v4-partition` sums a tensor-parallel projection's f32 partial
    outputs over the ranks and rounds the sum once with it, so that the
    ranks' result is the one-rank bf16 output up to the order of the fp32
    additions.

    ```mlir
    %y = v4.convert %sum : tensor<1x?x4096xf32> -> tensor<1x?x4096xbf16>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $input attr-dict `:` type($input) `->` type($result)
  }];
  let hasVerifier = 1;
  let hasFolder = 1;
}

def V4_LastTokenOp : V4_Op<"last_token", [Pure]> {
  let summary = "the last position of every sequence of a chunk";
  let description = [{
    Selects token T-1 of each of the B sequences of a call (V4-SPEC 3,
    step 4: the logits of a step are those of its last position):

        result[b, 0, ...] = input[b, T - 1, ...]

    `input` is `[B, T, ...]` (rank >= 2, T may be dynamic); the result is
    `[B, 1, ...]` with the same element type. The copy is exact. The
    importer puts it before the head unless every position's logits are
    asked for (`v4c --logits=all`), so a prefill chunk runs the head on one
    position per sequence.

    ```mlir
    %l = v4.last_token %x : tensor<1x?x4x4096xbf16> -> tensor<1x1x4x4096xbf16>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $input attr-dict `:` type($input) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// RMSNorm
//===----------------------------------------------------------------------===//

def V4_RMSNormOp
    : V4_Op<"rms_norm", [Pure, AllTypesMatch<["x", "result"]>]> {
  let summary = "RMS normalisation over the trailing dims, optional weight";
  let description = [{
    RMS normalisation of `x` over its last `reduceRank` dims jointly
    (V4-SPEC 2.1, 4.1, 5.1). With `R` = the set of the last `reduceRank`
    dims and `m` = their element count, for every index of the leading dims:

        y = w * x * rsqrt(sum_R(x^2) / m + eps)

    where `w` is the optional `weight` (shape = the reduced trailing dims of
    `x`, i.e. `[K]` for reduceRank 1, `[n_hc, d]` for reduceRank 2) and is 1
    when absent (weight-less form). The result has the type of `x`.

    Precision (`precision`, default `f32`):
    * `#v4.precision<f32>`: RMSNorm as the reference `RMSNorm.forward`
      (2.1). Everything is computed in fp32 and rounded once at the end:
      `y = cast(fp32(w) * (fp32(x) * rsqrt(mean(fp32(x)^2) + eps)))`; the
      weight multiplies the already normalised value. This is attn_norm,
      ffn_norm, q_norm, kv_norm, the compressors' norm, the final norm and
      the MTP enorm / hnorm / norm, all with eps = norm_eps = 1e-6.
    * `#v4.precision<input>`: evaluated in the input dtype, as the per-head
      q norm of 5.1 (`q * rsqrt(mean_over_512(q^2) + 1e-6)` on the bf16
      tensor): the mean reduction accumulates in fp32 and is rounded to the
      input dtype, then `+ eps`, the rsqrt and the product with x are each
      rounded to the input dtype (and the product with w, if present).
      For an f32 input both precisions coincide.

    `reduceRank` (default 1) normalises jointly over the last `reduceRank`
    dims. reduceRank = 2 on the mHC lanes `[B, T, n_hc, d]` is the weight-less
    joint RMS over all n_hc * d values of a token (4.1, 4.4: `rho =
    1/sqrt(mean(x_hat^2) + 1e-6)`); there the input is the fp32 upcast of the
    lanes, so no rounding occurs.

    In the custom syntax `precision` and `reduceRank` are optional keywords
    (elided at their defaults). `eps` is the constant added to the mean
    square (> 0). Accepted element
    types: x bf16, f16 or f32; weight bf16, f16 or f32 (stored bf16, held in
    fp32 by the reference).

    ```mlir
    // attn_norm (2.1)
    %h = v4.rms_norm %x, %w eps 1.0e-6
        : tensor<2x?x4096xbf16>, tensor<4096xbf16>
    // per-head q norm, weight-less, in bf16 (5.1)
    %q = v4.rms_norm %q0 eps 1.0e-6 precision input : tensor<2x?x64x512xbf16>
    // mHC joint RMS over the 4 lanes of an fp32 token (4.1)
    %l = v4.rms_norm %lanes eps 1.0e-6 reduceRank 2 : tensor<2x?x4x4096xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$x, Optional<AnyRankedTensor>:$weight,
                       F64Attr:$eps,
                       DefaultValuedAttr<V4_PrecisionAttr,
                           "::mlir::v4::Precision::f32">:$precision,
                       DefaultValuedAttr<I64Attr, "1">:$reduceRank);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $x (`,` $weight^)? `eps` $eps (`precision` $precision^)?
    (`reduceRank` $reduceRank^)? attr-dict `:` type($x) (`,` type($weight)^)?
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// RoPE
//===----------------------------------------------------------------------===//

def V4_RopeOp
    : V4_Op<"rope", [Pure, AllTypesMatch<["x", "result"]>]> {
  let summary = "rotary embedding of the last ropeDim dims, interleaved pairs";
  let description = [{
    Applies RoPE (V4-SPEC 2.2) to the last `r = table.ropeDim` elements of
    the last dim of `x` (`[..., n]`, r <= n); the first `n - r` ("nope")
    elements pass through unchanged. Pairs are **interleaved**: with
    `o = n - r` and `i = 0 .. r/2 - 1`, `(a, b) = (x[o+2i], x[o+2i+1])` is one
    complex number, rotated by `theta = p * f'_i`:

        (a, b) -> (a cos(theta) - b sin(theta), a sin(theta) + b cos(theta))

    With `inverse` the rotation is by `-theta` (complex conjugate), the
    de-rotation of the attention output by the query position (5.7).

    `positions` holds the position `p` of every row; its shape is a prefix
    of the shape of `x` (at least one dim, not the last), and each position
    is broadcast over the remaining leading dims: q `[B, T, H, 512]` takes
    positions `[B, T]` (all heads of a token share p), the compressed kv
    `[B, Tc, 512]` takes `[B, Tc]` with p = b * ratio (5.3). Element type
    i32 or i64.

    Frequencies `f'_i` come from the table attribute (`#v4.rope`, see
    RopeTableAttr::getFrequencies): `f_i = base^(-2i/r)` and, when factor != 1,
    the YaRN blend `f'_i = f_i/factor * ramp_i + f_i * (1 - ramp_i)`; no
    mscale. Rounding points as the reference: f'_i in fp32, the angle is
    `theta = fp32(fp32(p) * f'_i)`, cos/sin of that fp32 angle, the rotation is
    computed in fp32 on the upcast input and rounded back to the element type
    of x. Accepted element types of x: bf16, f16, f32. The result has the
    type of x.

    ```mlir
    %qr = v4.rope %q, %pos table(#v4.rope<ropeDim = 64, base = 160000.0,
        factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0>)
        : tensor<2x?x64x512xbf16>, tensor<2x?xi64>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$x, AnyRankedTensor:$positions,
                       V4_RopeTableAttr:$table, UnitAttr:$inverse);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $x `,` $positions `table` `(` $table `)` (`inverse` $inverse^)? attr-dict
    `:` type($x) `,` type($positions)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Linear layers
//===----------------------------------------------------------------------===//

def V4_LinearOp : V4_Op<"linear", [Pure]> {
  let summary = "y = x W^T with bf16/f32, FP8 block-scaled or FP4 weights";
  let description = [{
    A linear layer without bias (V4-SPEC 2.4): `x` is `[..., K]`, `weight`
    is `[N, K]` in checkpoint layout `[out, in]`, the result is `[..., N]`:
    `y[r, n] = sum_k x[r, k] * W[n, k]` for every row r of the leading dims.
    The weight element type selects the numerics:

    * **f8E4M3FN weight** (wq_a, wq_b, wkv, wo_b, indexer wq_b, shared
      experts, MTP e_proj / h_proj): `scale` is required, f8E8M0FNU of shape
      `[ceil(N/rb), ceil(K/b)]` with `b = blockSize` (default 128, the
      checkpoint's 128x128 weight blocks) and `rb = rowBlockSize` (default
      b; a rank's slice of a tensor-parallel weight whose rows do not start
      on a 128-block has scale rows of fewer rows, `v4-partition`). The bf16 activation is quantised
      to a real FP8 tensor per row, per 1 x b block along K (the recipe of
      2.3 with block b, not in place):
        `amax = max(|x_blk|, 1e-4)`, `s_a = 2^ceil(log2(amax * fp32(1/448)))`,
        `A = e4m3_RNE(clamp(x / s_a, -448, 448))`.
      Then `y[r, n] = sum_j s_a[r, j] * s_w[n / rb, j] * (sum_{k in block j}
      A[r, k] * W[n, k])`, accumulated in fp32 per K block; the result is
      bf16 (RNE). x must be bf16.
    * **f4E2M1FN weight** (routed experts; logical, unpacked K): `scale` is
      required, f8E8M0FNU `[N, K/32]` (one scale per 32 along K), and
      K % 32 == 0. The activation is quantised to FP8 as above with block
      `b = blockSize` (default 128; a multiple of 32 so that every 32-slice
      lies in one activation block). The weight is cast FP4 -> FP8 (exact)
      and each 32-wide K slice c accumulates in fp32 scaled by
      `s_a[r, 32c / b] * s_w[n, c]`. The result is bf16. x must be bf16.
    * **bf16 / f32 weight** (wo_a as a plain GEMM, indexer weights_proj,
      compressor wkv / wgate, MoE gate, head, mHC fn): no scale and no
      activation quantisation; x and W are upcast to fp32, the products are
      accumulated in fp32 and the sum is rounded once to the declared result
      element type (bf16 or f32; e.g. the gate and head are f32 x f32 -> f32).
      blockSize has no meaning here and must stay at its default.

    Accepted: x bf16 or f32 (bf16 for quantised weights); result bf16 or f32
    (bf16 for quantised weights), same leading dims as x.

    ```mlir
    // wq_a of V4-Flash: FP8 [1024, 4096] with 128x128 block scales [8, 32]
    %qa = v4.linear %x, %wq_a scale %wq_a_s
        : tensor<2x?x4096xbf16>, tensor<1024x4096xf8E4M3FN>,
          tensor<8x32xf8E8M0FNU> -> tensor<2x?x1024xbf16>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$x, AnyRankedTensor:$weight,
                       Optional<AnyRankedTensor>:$scale,
                       DefaultValuedAttr<I64Attr, "128">:$blockSize,
                       OptionalAttr<I64Attr>:$rowBlockSize);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $x `,` $weight (`scale` $scale^)? (`blockSize` $blockSize^)?
    (`rowBlockSize` $rowBlockSize^)? attr-dict `:`
    type($x) `,` type($weight) (`,` type($scale)^)? `->` type($result)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The weight rows one FP8 scale row covers: rowBlockSize, else
    /// blockSize.
    int64_t getScaleRowBlock() {
      return static_cast<int64_t>(getRowBlockSize().value_or(getBlockSize()));
    }
  }];
}

def V4_GroupedLinearOp : V4_Op<"grouped_linear", [Pure]> {
  let summary = "per-group linear layer: the grouped low-rank wo_a projection";
  let description = [{
    The grouped low-rank output projection `wo_a` (V4-SPEC 5.7). `x` is
    `[..., G, K]` (the attention output `[B, T, H, 512]` reshaped to
    `[B, T, G, (H/G)*512]`), `weight` is `[G*N, K]` viewed as `[G, N, K]`, the
    result is `[..., G, N]`:

        y[..., g, n] = sum_k x[..., g, k] * W[g*N + n, k]

    G is taken from x (dim -2); the weight rows must be divisible by G.
    This is a bf16 einsum with no activation quantisation: x and W are upcast
    to fp32, accumulated in fp32 and rounded once to the result element type
    (bf16 or f32). x: bf16 or f32. weight: bf16 or f32; or f8E4M3FN with a
    f8E8M0FNU `scale` of shape `[ceil(G*N/rb), ceil(K/b)]`, b = blockSize
    (default 128), rb = rowBlockSize (default b), as shipped in the
    checkpoint: it is then dequantised first,
    `W[m, k] = bf16(fp32(W8[m, k]) * s[m / rb, k / b])` (what `convert.py`
    does), and used as a bf16 weight. Flash: G = 8, N = 1024, K = 4096;
    Pro: G = 16, N = 1024, K = 4096.

    ```mlir
    %u = v4.grouped_linear %o, %wo_a
        : tensor<2x?x8x4096xbf16>, tensor<8192x4096xbf16>
          -> tensor<2x?x8x1024xbf16>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$x, AnyRankedTensor:$weight,
                       Optional<AnyRankedTensor>:$scale,
                       DefaultValuedAttr<I64Attr, "128">:$blockSize,
                       OptionalAttr<I64Attr>:$rowBlockSize);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $x `,` $weight (`scale` $scale^)? (`blockSize` $blockSize^)?
    (`rowBlockSize` $rowBlockSize^)? attr-dict `:`
    type($x) `,` type($weight) (`,` type($scale)^)? `->` type($result)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The weight rows one FP8 scale row covers: rowBlockSize, else
    /// blockSize.
    int64_t getScaleRowBlock() {
      return static_cast<int64_t>(getRowBlockSize().value_or(getBlockSize()));
    }
  }];
}

//===----------------------------------------------------------------------===//
// Fake quantisation and the Hadamard rotation
//===----------------------------------------------------------------------===//

def V4_FakeQuantOp
    : V4_Op<"fake_quant", [Pure, AllTypesMatch<["x", "result"]>]> {
  let summary = "quantise-dequantise (QAT) with pow-2 block scales";
  let description = [{
    Fake quantisation that is part of the model's math (V4-SPEC 2.3): each
    contiguous block of `blockSize` elements among the first `extent`
    elements of the last dim of `x` (`[..., n]`, bf16) is quantised to
    `format` with a power-of-2 (ue8m0) scale and dequantised back to bf16;
    the elements from `extent` to `n - 1` pass through unchanged. `extent`
    defaults to n. The result has the type of x.

    `#v4.quant_format<fp8_e4m3>` (act_quant, scale format ue8m0), per block:

        amax = max(max|x_blk|, 1e-4)
        s    = 2^ceil(log2(amax * fp32(1/448)))
        x   <- bf16(e4m3_RNE(clamp(x / s, -448, 448)) * s)

    `#v4.quant_format<fp4_e2m1>` (fp4_act_quant), per block:

        amax = max(max|x_blk|, 6 * 2^-126)
        s    = 2^ceil(log2(amax * fp32(1/6)))
        x   <- bf16(e2m1_RNE(clamp(x / s, -6, 6)) * s)
        e2m1 grid: +-{0, 0.5, 1, 1.5, 2, 3, 4, 6}

    Rounding points: `x / s` is exact in fp32 (s is a power of 2); amax times
    the fp32 reciprocal is rounded to fp32 and `ceil(log2(.))` is read off
    its exponent and mantissa bits (equal to `ceil(log2(amax/448))` for bf16
    inputs, powers of two included); e4m3 is the `fn` variant (max 448, no
    infinities, subnormals down to 2^-9, so `|x/s| < 2^-10` rounds to 0); the
    grid value times s is exact in bf16. The only rounding is the RNE onto
    the grid, so after this op every value is `grid_value * 2^k` and a cache
    stored as FP8/FP4 plus e8m0 scale is lossless.

    Uses in V4: FP8, blockSize 64, extent 448 on the 512-dim window kv and
    main compressed kv (the 64 rope dims stay bf16); FP4, blockSize 32 on the
    whole 128-dim indexer q and indexer compressed keys, after the Hadamard
    rotation.

    ```mlir
    %kvq = v4.fake_quant %kv fp8_e4m3 blockSize 64 extent 448
        : tensor<2x?x512xbf16>
    %qiq = v4.fake_quant %qi fp4_e2m1 blockSize 32 : tensor<2x?x64x128xbf16>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$x, V4_QuantFormatAttr:$format,
                       I64Attr:$blockSize, OptionalAttr<I64Attr>:$extent);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $x $format `blockSize` $blockSize (`extent` $extent^)? attr-dict `:`
    type($x)
  }];
  let hasVerifier = 1;
}

def V4_HadamardOp
    : V4_Op<"hadamard", [Pure, AllTypesMatch<["x", "result"]>]> {
  let summary = "orthonormal Sylvester Hadamard rotation of the last dim";
  let description = [{
    `rotate_activation` (V4-SPEC 2.5): `y = x . H_n / sqrt(n)` over the last
    dim of `x` (`[..., n]`, n a power of two), with `H_n` the Sylvester
    (natural-order) Hadamard matrix: `H_1 = [1]`,
    `H_2m = [[H_m, H_m], [H_m, -H_m]]`, i.e.
    `H_n[i, j] = (-1)^popcount(i & j)`:

        y[..., j] = bf16( sum_i fp32(x[..., i]) * H_n[i, j] / sqrt(n) )

    No random signs; the transform is orthonormal and its own inverse.
    Input and output are bf16 (the reference asserts a bf16 input); the
    transform accumulates in fp32 and rounds its result once to bf16. Used
    with n = 128 on the indexer q (after RoPE) and the indexer compressed
    keys (after norm and RoPE), before the FP4 fake-quant.

    ```mlir
    %qh = v4.hadamard %qi : tensor<2x?x64x128xbf16>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$x);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$x attr-dict `:` type($x)";
  let hasVerifier = 1;
}

#endif // V4_DIALECTS_V4_V4COREOPS_TD
