//===- V4HyperConnOps.td - hyper-connection (mHC) and MTP ops ---*- tablegen -*-===//
//
// Manifold-constrained hyper-connections: lanes, hc_pre with Sinkhorn, hc_post, hc_head; the MTP block's extra pieces (V4-SPEC 4, 7).
//
//===----------------------------------------------------------------------===//

#ifndef V4_DIALECTS_V4_V4HYPERCONNOPS_TD
#define V4_DIALECTS_V4_V4HYPERCONNOPS_TD

include "dialects/V4/V4Base.td"
include "dialects/V4/V4Types.td"
include "dialects/V4/V4Attrs.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

//===----------------------------------------------------------------------===//
// Lanes
//===----------------------------------------------------------------------===//

def V4_MhcExpandOp : V4_Op<"mhc.expand", [Pure]> {
  let summary = "repeat the embedding into the n_hc residual lanes";
  let description = [{
    `lanes[b, t, i, :] = e[b, t, :]` for every lane i = 0 ... n-1: the n
    lanes start as identical copies of the embedding (V4-SPEC 3 step 2). The
    lane count n is the result's dim 2 (n_hc = 4 in V4); it must be static.

    Accepted types: `e` [B, T, d] and `lanes` [B, T, n, d] with the same
    element type (bf16 in the model; f16 and f32 are accepted for reference
    testing). T may be dynamic.

    ```mlir
    %x = v4.mhc.expand %e : tensor<2x?x4096xbf16> -> tensor<2x?x4x4096xbf16>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$e);
  let results = (outs AnyRankedTensor:$lanes);
  let assemblyFormat = "$e attr-dict `:` type($e) `->` type($lanes)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// hc_pre, Sinkhorn, hc_post
//===----------------------------------------------------------------------===//

def V4_MhcPreOp : V4_Op<"mhc.pre", [Pure]> {
  let summary = "mHC pre-mix: mixer, split, Sinkhorn and the layer input";
  let description = [{
    One mHC site's hc_pre (V4-SPEC 4.1-4.3), per token, with the lanes
    `X` [n, d] of that token, n = n_hc (4), m = (2+n)*n (24):

    1. `xh = flatten(X)` in fp32 (n*d values), `rho = 1 / sqrt(mean(xh^2) +
       normEps)`: a weight-less RMS over all n*d values jointly.
    2. `m = (xh . fn^T) * rho`, [(2+n)*n], fp32.
    3. Split (eps = hcEps):
       `pre_j = sigmoid(m_j * scale_0 + base_j) + hcEps`, j < n (not
       normalised);
       `post_j = 2 * sigmoid(m_{n+j} * scale_1 + base_{n+j})`, range (0, 2);
       `C_jk = m_{2n+n*j+k} * scale_2 + base_{2n+n*j+k}`, row-major n x n:
       row j = input lane, column k = output lane.
    4. Sinkhorn-Knopp (`sinkhornIters` iterations in total, exactly as
       `v4.mhc.sinkhorn`): `C <- softmax_row(C) + hcEps`, then
       `C <- C / (colsum(C) + hcEps)`, then `sinkhornIters - 1` times
       `C <- C / (rowsum(C) + hcEps)` followed by
       `C <- C / (colsum(C) + hcEps)`. Columns sum to ~1, rows roughly.
    5. `y = sum_j pre_j * X_j`, computed in fp32 and rounded once to the
       element type of `X` (bf16).

    Results: `y` [B, T, d] (the layer input, before attn_norm / ffn_norm),
    `post` [B, T, n] fp32 and `comb` (= C) [B, T, n, n] fp32, consumed by
    `v4.mhc.post`.

    Operands: `x` [B, T, n, d] bf16 (f16/f32 accepted for reference
    testing), `fn` [(2+n)*n, n*d] f32 (`hc_attn_fn` / `hc_ffn_fn`), `base`
    [(2+n)*n] f32, `scale` [3] f32. T may be dynamic; n must be static.
    V4 values: `sinkhornIters` = hc_sinkhorn_iters = 20, `hcEps` = 1e-6,
    `normEps` = norm_eps = 1e-6 (the defaults).

    ```mlir
    %y, %post, %comb = v4.mhc.pre %x, %fn, %base, %scale
        {hcEps = 1.0e-6 : f64, normEps = 1.0e-6 : f64, sinkhornIters = 20 : i64}
        : (tensor<1x?x4x4096xbf16>, tensor<24x16384xf32>, tensor<24xf32>,
           tensor<3xf32>)
        -> (tensor<1x?x4096xbf16>, tensor<1x?x4xf32>, tensor<1x?x4x4xf32>)
    ```
  }];
  let arguments = (ins AnyRankedTensor:$x, AnyRankedTensor:$fn,
                       AnyRankedTensor:$base, AnyRankedTensor:$scale,
                       DefaultValuedAttr<I64Attr, "20">:$sinkhornIters,
                       DefaultValuedAttr<F64Attr, "1.0e-6">:$hcEps,
                       DefaultValuedAttr<F64Attr, "1.0e-6">:$normEps);
  let results = (outs AnyRankedTensor:$y, AnyRankedTensor:$post,
                      AnyRankedTensor:$comb);
  let assemblyFormat = [{
    $x `,` $fn `,` $base `,` $scale attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def V4_MhcSinkhornOp : V4_Op<"mhc.sinkhorn",
    [Pure, AllTypesMatch<["logits", "comb"]>]> {
  let summary = "Sinkhorn-Knopp projection of mHC combination logits";
  let description = [{
    The projection of step 4 of V4-SPEC 4.2 on its own (for fusion and unit
    tests, V4-SPEC 11.2 item 1). On each trailing n x n matrix C of
    `logits` (row j = input lane, column k = output lane), in fp32:

    1. `C <- softmax_row(C) + eps` (softmax over k);
    2. `C <- C / (colsum(C) + eps)` (each column k divided by sum_j C_jk);
    3. `iters - 1` times: `C <- C / (rowsum(C) + eps)`, then
       `C <- C / (colsum(C) + eps)`.

    The last step normalises columns, so columns sum to ~1 and rows only
    approximately; a constant input gives the uniform matrix 1/n. V4:
    `iters` = 20, `eps` = hc_eps = 1e-6 (the defaults).

    Accepted types: `logits` [..., n, n] f32 (any leading dims, n static or
    dynamic), result of the same type.

    ```mlir
    %c = v4.mhc.sinkhorn %logits {eps = 1.0e-6 : f64, iters = 20 : i64}
        : tensor<2x?x4x4xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$logits,
                       DefaultValuedAttr<I64Attr, "20">:$iters,
                       DefaultValuedAttr<F64Attr, "1.0e-6">:$eps);
  let results = (outs AnyRankedTensor:$comb);
  let assemblyFormat = "$logits attr-dict `:` type($logits)";
  let hasVerifier = 1;
}

def V4_MhcPostOp : V4_Op<"mhc.post", [Pure]> {
  let summary = "mHC post-mix: new lanes from the sublayer output and comb";
  let description = [{
    hc_post (V4-SPEC 4.3), per token, with `o` [d] the sublayer output and
    `X` [n, d] the residual lanes from before the matching `v4.mhc.pre`:

    `X'_k = post_k * o + sum_j comb_jk * X_j`, k = 0 ... n-1,

    i.e. the combination matrix is contracted over its row (input-lane)
    index j; column k is the output lane. Computed in fp32 (o and X upcast,
    post and comb are fp32) and rounded once to the lanes' element type
    (bf16: lanes are stored in bf16 between mHC sites).

    Operands: `o` [B, T, d], `x` [B, T, n, d] (same element type: bf16;
    f16/f32 accepted for reference testing), `post` [B, T, n] f32, `comb`
    [B, T, n, n] f32. Result: [B, T, n, d], the type of `x`. T may be
    dynamic; n must be static.

    ```mlir
    %x2 = v4.mhc.post %o, %x, %post, %comb
        : (tensor<1x?x4096xbf16>, tensor<1x?x4x4096xbf16>, tensor<1x?x4xf32>,
           tensor<1x?x4x4xf32>) -> tensor<1x?x4x4096xbf16>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$o, AnyRankedTensor:$x,
                       AnyRankedTensor:$post, AnyRankedTensor:$comb);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $o `,` $x `,` $post `,` $comb attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def V4_MhcPostPreOp : V4_Op<"mhc.post_pre", [Pure]> {
  let summary = "mHC boundary: one site's hc_post fused with the next hc_pre";
  let description = [{
    The mHC boundary between two consecutive sites (the attention site's
    post and the FFN site's pre in a block; the FFN post of layer i and the
    attention pre of layer i+1), as one op. Semantics: exactly
    `v4.mhc.post` followed by `v4.mhc.pre` on its result (V4-SPEC 4.1-4.3),
    with the same rounding points:

    1. `X'_k = post_k * o + sum_j comb_jk * X_j` in fp32, rounded once to
       the lanes' element type (bf16), k = 0 ... n-1; `lanes` = X'.
    2. On the rounded X' (read back as stored, upcast to fp32): the mixer
       `m = (flatten(X') . fn^T) * rho`, the split with `hcEps`, Sinkhorn
       (`sinkhornIters` iterations) and `y = sum_j pre_j * X'_j` rounded
       once to the element type, as `v4.mhc.pre`; `nextPost` and
       `nextComb` are the pre's `post` and `comb`.

    The point is bandwidth: the lanes are read once per token and X' is
    written once; the second kernel that re-reads X' is gone. X' is still a
    result, because the next site's post needs it. Formed by
    `v4-fuse-mhc-boundaries`.

    Operands: `o` [B, T, d], `x` [B, T, n, d] (same element type: bf16;
    f16/f32 accepted for reference testing), `post` [B, T, n] f32, `comb`
    [B, T, n, n] f32 (as `v4.mhc.post`), then `fn` [(2+n)*n, n*d] f32,
    `base` [(2+n)*n] f32, `scale` [3] f32 of the next site (as
    `v4.mhc.pre`). Results: `lanes` (the type of `x`), `y` [B, T, d] with
    the element type of `x`, `nextPost` [B, T, n] f32, `nextComb`
    [B, T, n, n] f32. T may be dynamic; n must be static. Attributes as
    `v4.mhc.pre` (V4: 20, 1e-6, 1e-6, the defaults).

    ```mlir
    %x2, %y, %post2, %comb2 = v4.mhc.post_pre %o, %x, %post, %comb, %fn,
        %base, %scale
        {hcEps = 1.0e-6 : f64, normEps = 1.0e-6 : f64, sinkhornIters = 20 : i64}
        : (tensor<1x?x4096xbf16>, tensor<1x?x4x4096xbf16>, tensor<1x?x4xf32>,
           tensor<1x?x4x4xf32>, tensor<24x16384xf32>, tensor<24xf32>,
           tensor<3xf32>)
        -> (tensor<1x?x4x4096xbf16>, tensor<1x?x4096xbf16>, tensor<1x?x4xf32>,
            tensor<1x?x4x4xf32>)
    ```
  }];
  let arguments = (ins AnyRankedTensor:$o, AnyRankedTensor:$x,
                       AnyRankedTensor:$post, AnyRankedTensor:$comb,
                       AnyRankedTensor:$fn, AnyRankedTensor:$base,
                       AnyRankedTensor:$scale,
                       DefaultValuedAttr<I64Attr, "20">:$sinkhornIters,
                       DefaultValuedAttr<F64Attr, "1.0e-6">:$hcEps,
                       DefaultValuedAttr<F64Attr, "1.0e-6">:$normEps);
  let results = (outs AnyRankedTensor:$lanes, AnyRankedTensor:$y,
                      AnyRankedTensor:$nextPost, AnyRankedTensor:$nextComb);
  let assemblyFormat = [{
    $o `,` $x `,` $post `,` $comb `,` $fn `,` $base `,` $scale attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def V4_MhcHeadOp : V4_Op<"mhc.head", [Pure]> {
  let summary = "hc_head: collapse the lanes into one hidden state";
  let description = [{
    The final collapse of the lanes (V4-SPEC 4.4, `ParallelHead.hc_head`;
    the MTP block has its own parameters, V4-SPEC 7.1 step 4). Per token,
    with the lanes `X` [n, d]:

    `xh = flatten(X)` in fp32, `rho = 1 / sqrt(mean(xh^2) + normEps)`,
    `m = (xh . fn^T) * rho` [n], `w_j = sigmoid(m_j * scale_0 + base_j) +
    hcEps`, `y = sum_j w_j * X_j` computed in fp32 and rounded once to the
    lanes' element type (bf16). There is no Sinkhorn and no post.

    Operands: `x` [B, T, n, d] bf16 (f16/f32 accepted for reference
    testing), `fn` [n, n*d] f32 (`hc_head_fn`), `base` [n] f32, `scale` [1]
    f32. Result `y` [B, T, d], element type of `x`. V4: `hcEps` = 1e-6,
    `normEps` = 1e-6 (the defaults).

    ```mlir
    %y = v4.mhc.head %x, %fn, %base, %scale
        : (tensor<1x?x4x4096xbf16>, tensor<4x16384xf32>, tensor<4xf32>,
           tensor<1xf32>) -> tensor<1x?x4096xbf16>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$x, AnyRankedTensor:$fn,
                       AnyRankedTensor:$base, AnyRankedTensor:$scale,
                       DefaultValuedAttr<F64Attr, "1.0e-6">:$hcEps,
                       DefaultValuedAttr<F64Attr, "1.0e-6">:$normEps);
  let results = (outs AnyRankedTensor:$y);
  let assemblyFormat = [{
    $x `,` $fn `,` $base `,` $scale attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// MTP
//===----------------------------------------------------------------------===//

def V4_MtpInputOp : V4_Op<"mtp.input", [Pure]> {
  let summary = "MTP input mix: projected embedding broadcast onto the lanes";
  let description = [{
    Step 2 of the MTP block (V4-SPEC 7.1): `X'_i = e + h_i` for every lane
    i, where `e` = e_proj . enorm(embed[next ids]) [B, T, d] is broadcast to
    all lanes and `h` = h_proj . hnorm(X_i) [B, T, n, d] holds one projected
    lane each (hnorm normalises each lane over d separately). The sum is a
    single bf16 addition (each element computed exactly and rounded once to
    the element type). Id alignment (V4-SPEC 7.2): at position t, `e` is the
    embedding of token t+1.

    Operands: `e` [B, T, d] and `h` [B, T, n, d] with the same element type
    (bf16; f16/f32 accepted for reference testing). Result: the type of `h`.

    ```mlir
    %x = v4.mtp.input %e, %h
        : (tensor<1x?x4096xbf16>, tensor<1x?x4x4096xbf16>) -> tensor<1x?x4x4096xbf16>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$e, AnyRankedTensor:$h);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $e `,` $h attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

#endif // V4_DIALECTS_V4_V4HYPERCONNOPS_TD
