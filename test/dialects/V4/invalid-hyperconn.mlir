// RUN: v4-opt %s -split-input-file -verify-diagnostics

// mhc_expand_c1: e is [B, T, d] activations.
func.func @expand_rank(%e: tensor<2x64xbf16>) {
  // expected-error @+1 {{e must have rank 3, got 2 (shape [2, 64]) [mhc_expand_c1]}}
  %x = v4.mhc.expand %e : tensor<2x64xbf16> -> tensor<2x4x64xbf16>
  return
}

// -----

// mhc_expand_c1: e is [B, T, d] activations.
func.func @expand_int(%e: tensor<2x8x64xi32>) {
  // expected-error @+1 {{expected e element type 'bf16' or 'f16' or 'f32', got 'i32' [mhc_expand_c1]}}
  %x = v4.mhc.expand %e : tensor<2x8x64xi32> -> tensor<2x8x4x64xi32>
  return
}

// -----

// mhc_expand_c2: the result is [B, T, n, d] with a static n > 0.
func.func @expand_dynamic_lanes(%e: tensor<2x8x64xbf16>) {
  // expected-error @+1 {{expected result of shape [B, T, n, d] with a static lane count n > 0, got [2, 8, ?, 64] [mhc_expand_c2]}}
  %x = v4.mhc.expand %e : tensor<2x8x64xbf16> -> tensor<2x8x?x64xbf16>
  return
}

// -----

// mhc_expand_c3: the result repeats e: same B, T, d and element type.
func.func @expand_width(%e: tensor<2x8x64xbf16>) {
  // expected-error @+1 {{expected result shape [2, 8, 4, 64] ([B, T, n, d] of e), got [2, 8, 4, 32] [mhc_expand_c3]}}
  %x = v4.mhc.expand %e : tensor<2x8x64xbf16> -> tensor<2x8x4x32xbf16>
  return
}

// -----

// mhc_expand_c3: the result repeats e: same B, T, d and element type.
func.func @expand_elt(%e: tensor<2x8x64xbf16>) {
  // expected-error @+1 {{expected result element type 'bf16' (that of e), got 'f32' [mhc_expand_c3]}}
  %x = v4.mhc.expand %e : tensor<2x8x64xbf16> -> tensor<2x8x4x64xf32>
  return
}

// -----

// mhc_pre_c1: x is [B, T, n, d] with a static lane count.
func.func @pre_rank(%x: tensor<2x8x256xbf16>, %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{expected x of shape [B, T, n, d] with a static lane count n > 0, got [2, 8, 256] [mhc_pre_c1]}}
  %y, %post, %comb = v4.mhc.pre %x, %fn, %base, %scale
      : (tensor<2x8x256xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x8x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>)
  return
}

// -----

// mhc_pre_c2: x holds activations (bf16, f16 or f32).
func.func @pre_int(%x: tensor<2x8x4x64xi8>, %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{expected x element type 'bf16' or 'f16' or 'f32', got 'i8' [mhc_pre_c2]}}
  %y, %post, %comb = v4.mhc.pre %x, %fn, %base, %scale
      : (tensor<2x8x4x64xi8>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x8x64xi8>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>)
  return
}

// -----

// mhc_pre_c3: fn is [(2+n)*n, n*d] f32.
func.func @pre_fn_shape(%x: tensor<2x8x4x64xbf16>, %fn: tensor<24x64xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{expected fn shape [24, 256] ([(2+n)*n, n*d] with n = 4, d = 64), got [24, 64] [mhc_pre_c3]}}
  %y, %post, %comb = v4.mhc.pre %x, %fn, %base, %scale
      : (tensor<2x8x4x64xbf16>, tensor<24x64xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x8x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>)
  return
}

// -----

// mhc_pre_c3: fn is [(2+n)*n, n*d] f32.
func.func @pre_fn_bf16(%x: tensor<2x8x4x64xbf16>, %fn: tensor<24x256xbf16>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{expected fn element type 'f32', got 'bf16' [mhc_pre_c3]}}
  %y, %post, %comb = v4.mhc.pre %x, %fn, %base, %scale
      : (tensor<2x8x4x64xbf16>, tensor<24x256xbf16>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x8x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>)
  return
}

// -----

// mhc_pre_c4: base is [(2+n)*n] f32.
func.func @pre_base(%x: tensor<2x8x4x64xbf16>, %fn: tensor<24x256xf32>, %base: tensor<16xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{expected base shape [24] ([(2+n)*n] with n = 4), got [16] [mhc_pre_c4]}}
  %y, %post, %comb = v4.mhc.pre %x, %fn, %base, %scale
      : (tensor<2x8x4x64xbf16>, tensor<24x256xf32>, tensor<16xf32>, tensor<3xf32>)
      -> (tensor<2x8x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>)
  return
}

// -----

// mhc_pre_c5: scale is [3] f32 (pre, post, comb).
func.func @pre_scale(%x: tensor<2x8x4x64xbf16>, %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<1xf32>) {
  // expected-error @+1 {{expected scale shape [3], got [1] [mhc_pre_c5]}}
  %y, %post, %comb = v4.mhc.pre %x, %fn, %base, %scale
      : (tensor<2x8x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<1xf32>)
      -> (tensor<2x8x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>)
  return
}

// -----

// mhc_pre_c6: y is [B, T, d] with the element type of x.
func.func @pre_y(%x: tensor<2x8x4x64xbf16>, %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{expected y shape [2, 8, 64] ([B, T, d] of x), got [2, 8, 256] [mhc_pre_c6]}}
  %y, %post, %comb = v4.mhc.pre %x, %fn, %base, %scale
      : (tensor<2x8x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x8x256xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>)
  return
}

// -----

// mhc_pre_c6: y is [B, T, d] with the element type of x.
func.func @pre_y_elt(%x: tensor<2x8x4x64xbf16>, %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{expected y element type 'bf16', got 'f32' [mhc_pre_c6]}}
  %y, %post, %comb = v4.mhc.pre %x, %fn, %base, %scale
      : (tensor<2x8x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x8x64xf32>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>)
  return
}

// -----

// mhc_pre_c7: post is [B, T, n] f32.
func.func @pre_post(%x: tensor<2x?x4x64xbf16>, %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{expected post element type 'f32', got 'bf16' [mhc_pre_c7]}}
  %y, %post, %comb = v4.mhc.pre %x, %fn, %base, %scale
      : (tensor<2x?x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x?x64xbf16>, tensor<2x?x4xbf16>, tensor<2x?x4x4xf32>)
  return
}

// -----

// mhc_pre_c8: comb is [B, T, n, n] f32.
func.func @pre_comb(%x: tensor<2x8x4x64xbf16>, %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{expected comb shape [2, 8, 4, 4] ([B, T, n, n] of x), got [2, 8, 16] [mhc_pre_c8]}}
  %y, %post, %comb = v4.mhc.pre %x, %fn, %base, %scale
      : (tensor<2x8x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x8x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x16xf32>)
  return
}

// -----

// mhc_pre_c9: at least one Sinkhorn iteration.
func.func @pre_iters(%x: tensor<2x8x4x64xbf16>, %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{expected sinkhornIters >= 1, got 0 [mhc_pre_c9]}}
  %y, %post, %comb = v4.mhc.pre %x, %fn, %base, %scale {sinkhornIters = 0 : i64}
      : (tensor<2x8x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x8x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>)
  return
}

// -----

// mhc_pre_c10: hcEps > 0.
func.func @pre_hc_eps(%x: tensor<2x8x4x64xbf16>, %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{expected hcEps > 0, got 0.000000e+00 [mhc_pre_c10]}}
  %y, %post, %comb = v4.mhc.pre %x, %fn, %base, %scale {hcEps = 0.0 : f64}
      : (tensor<2x8x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x8x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>)
  return
}

// -----

// mhc_pre_c11: normEps > 0.
func.func @pre_norm_eps(%x: tensor<2x8x4x64xbf16>, %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{expected normEps > 0, got -1.000000e-06 [mhc_pre_c11]}}
  %y, %post, %comb = v4.mhc.pre %x, %fn, %base, %scale {normEps = -1.0e-6 : f64}
      : (tensor<2x8x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x8x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>)
  return
}

// -----

// mhc_sinkhorn_c1: logits are [..., n, n].
func.func @sinkhorn_rank(%c: tensor<4xf32>) {
  // expected-error @+1 {{logits must have rank >= 2, got 1 [mhc_sinkhorn_c1]}}
  %p = v4.mhc.sinkhorn %c : tensor<4xf32>
  return
}

// -----

// mhc_sinkhorn_c1: logits are [..., n, n].
func.func @sinkhorn_square(%c: tensor<2x4x3xf32>) {
  // expected-error @+1 {{expected logits to end in a square n x n matrix, got 4 x 3 [mhc_sinkhorn_c1]}}
  %p = v4.mhc.sinkhorn %c : tensor<2x4x3xf32>
  return
}

// -----

// mhc_sinkhorn_c2: fp32.
func.func @sinkhorn_bf16(%c: tensor<4x4xbf16>) {
  // expected-error @+1 {{expected logits element type 'f32', got 'bf16' [mhc_sinkhorn_c2]}}
  %p = v4.mhc.sinkhorn %c : tensor<4x4xbf16>
  return
}

// -----

// mhc_sinkhorn_c3: at least one iteration.
func.func @sinkhorn_iters(%c: tensor<4x4xf32>) {
  // expected-error @+1 {{expected iters >= 1, got -3 [mhc_sinkhorn_c3]}}
  %p = v4.mhc.sinkhorn %c {iters = -3 : i64} : tensor<4x4xf32>
  return
}

// -----

// mhc_sinkhorn_c4: eps > 0.
func.func @sinkhorn_eps(%c: tensor<4x4xf32>) {
  // expected-error @+1 {{expected eps > 0, got 0.000000e+00 [mhc_sinkhorn_c4]}}
  %p = v4.mhc.sinkhorn %c {eps = 0.0 : f64} : tensor<4x4xf32>
  return
}

// -----

// mhc_post_c1: x is [B, T, n, d] with a static lane count.
func.func @post_lanes(%o: tensor<2x8x64xbf16>, %x: tensor<2x8x?x64xbf16>, %post: tensor<2x8x4xf32>, %comb: tensor<2x8x4x4xf32>) {
  // expected-error @+1 {{expected x of shape [B, T, n, d] with a static lane count n > 0, got [2, 8, ?, 64] [mhc_post_c1]}}
  %r = v4.mhc.post %o, %x, %post, %comb
      : (tensor<2x8x64xbf16>, tensor<2x8x?x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>) -> tensor<2x8x?x64xbf16>
  return
}

// -----

// mhc_post_c2: x holds activations; o and the result share its type.
func.func @post_o_elt(%o: tensor<2x8x64xf32>, %x: tensor<2x8x4x64xbf16>, %post: tensor<2x8x4xf32>, %comb: tensor<2x8x4x4xf32>) {
  // expected-error @+1 {{expected o element type 'bf16', got 'f32' [mhc_post_c2]}}
  %r = v4.mhc.post %o, %x, %post, %comb
      : (tensor<2x8x64xf32>, tensor<2x8x4x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>) -> tensor<2x8x4x64xbf16>
  return
}

// -----

// mhc_post_c3: o is [B, T, d].
func.func @post_o(%o: tensor<2x7x64xbf16>, %x: tensor<2x8x4x64xbf16>, %post: tensor<2x8x4xf32>, %comb: tensor<2x8x4x4xf32>) {
  // expected-error @+1 {{expected o shape [2, 8, 64] ([B, T, d] of x), got [2, 7, 64] [mhc_post_c3]}}
  %r = v4.mhc.post %o, %x, %post, %comb
      : (tensor<2x7x64xbf16>, tensor<2x8x4x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>) -> tensor<2x8x4x64xbf16>
  return
}

// -----

// mhc_post_c4: post is [B, T, n] f32.
func.func @post_post(%o: tensor<2x8x64xbf16>, %x: tensor<2x8x4x64xbf16>, %post: tensor<2x8x3xf32>, %comb: tensor<2x8x4x4xf32>) {
  // expected-error @+1 {{expected post shape [2, 8, 4] ([B, T, n] of x), got [2, 8, 3] [mhc_post_c4]}}
  %r = v4.mhc.post %o, %x, %post, %comb
      : (tensor<2x8x64xbf16>, tensor<2x8x4x64xbf16>, tensor<2x8x3xf32>, tensor<2x8x4x4xf32>) -> tensor<2x8x4x64xbf16>
  return
}

// -----

// mhc_post_c5: comb is [B, T, n, n] f32.
func.func @post_comb(%o: tensor<2x8x64xbf16>, %x: tensor<2x8x4x64xbf16>, %post: tensor<2x8x4xf32>, %comb: tensor<2x8x4x4xbf16>) {
  // expected-error @+1 {{expected comb element type 'f32', got 'bf16' [mhc_post_c5]}}
  %r = v4.mhc.post %o, %x, %post, %comb
      : (tensor<2x8x64xbf16>, tensor<2x8x4x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xbf16>) -> tensor<2x8x4x64xbf16>
  return
}

// -----

// mhc_post_c6: the result has the type of x.
func.func @post_result(%o: tensor<2x8x64xbf16>, %x: tensor<2x8x4x64xbf16>, %post: tensor<2x8x4xf32>, %comb: tensor<2x8x4x4xf32>) {
  // expected-error @+1 {{expected result type 'tensor<2x8x4x64xbf16>' (that of x), got 'tensor<2x8x4x64xf32>' [mhc_post_c6]}}
  %r = v4.mhc.post %o, %x, %post, %comb
      : (tensor<2x8x64xbf16>, tensor<2x8x4x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>) -> tensor<2x8x4x64xf32>
  return
}

// -----

// mhc_post_pre_c1: x is [B, T, n, d] with a static lane count.
func.func @post_pre_lanes_dyn(%o: tensor<2x8x64xbf16>, %x: tensor<2x8x?x64xbf16>, %post: tensor<2x8x4xf32>, %comb: tensor<2x8x4x4xf32>, %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{expected x of shape [B, T, n, d] with a static lane count n > 0, got [2, 8, ?, 64] [mhc_post_pre_c1]}}
  %x1, %y, %p1, %c1 = v4.mhc.post_pre %o, %x, %post, %comb, %fn, %base, %scale
      : (tensor<2x8x64xbf16>, tensor<2x8x?x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x8x?x64xbf16>, tensor<2x8x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>)
  return
}

// -----

// mhc_post_pre_c2: x holds activations; o and lanes share its type.
func.func @post_pre_o_elt(%o: tensor<2x8x64xf32>, %x: tensor<2x8x4x64xbf16>, %post: tensor<2x8x4xf32>, %comb: tensor<2x8x4x4xf32>, %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{expected o element type 'bf16', got 'f32' [mhc_post_pre_c2]}}
  %x1, %y, %p1, %c1 = v4.mhc.post_pre %o, %x, %post, %comb, %fn, %base, %scale
      : (tensor<2x8x64xf32>, tensor<2x8x4x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x8x4x64xbf16>, tensor<2x8x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>)
  return
}

// -----

// mhc_post_pre_c3: o is [B, T, d].
func.func @post_pre_o_shape(%o: tensor<2x7x64xbf16>, %x: tensor<2x8x4x64xbf16>, %post: tensor<2x8x4xf32>, %comb: tensor<2x8x4x4xf32>, %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{expected o shape [2, 8, 64] ([B, T, d] of x), got [2, 7, 64] [mhc_post_pre_c3]}}
  %x1, %y, %p1, %c1 = v4.mhc.post_pre %o, %x, %post, %comb, %fn, %base, %scale
      : (tensor<2x7x64xbf16>, tensor<2x8x4x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x8x4x64xbf16>, tensor<2x8x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>)
  return
}

// -----

// mhc_post_pre_c4: post is [B, T, n] f32.
func.func @post_pre_post_shape(%o: tensor<2x8x64xbf16>, %x: tensor<2x8x4x64xbf16>, %post: tensor<2x8x3xf32>, %comb: tensor<2x8x4x4xf32>, %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{expected post shape [2, 8, 4] ([B, T, n] of x), got [2, 8, 3] [mhc_post_pre_c4]}}
  %x1, %y, %p1, %c1 = v4.mhc.post_pre %o, %x, %post, %comb, %fn, %base, %scale
      : (tensor<2x8x64xbf16>, tensor<2x8x4x64xbf16>, tensor<2x8x3xf32>, tensor<2x8x4x4xf32>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x8x4x64xbf16>, tensor<2x8x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>)
  return
}

// -----

// mhc_post_pre_c5: comb is [B, T, n, n] f32.
func.func @post_pre_comb_elt(%o: tensor<2x8x64xbf16>, %x: tensor<2x8x4x64xbf16>, %post: tensor<2x8x4xf32>, %comb: tensor<2x8x4x4xbf16>, %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{expected comb element type 'f32', got 'bf16' [mhc_post_pre_c5]}}
  %x1, %y, %p1, %c1 = v4.mhc.post_pre %o, %x, %post, %comb, %fn, %base, %scale
      : (tensor<2x8x64xbf16>, tensor<2x8x4x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x8x4x64xbf16>, tensor<2x8x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>)
  return
}

// -----

// mhc_post_pre_c6: lanes has the type of x.
func.func @post_pre_lanes_type(%o: tensor<2x8x64xbf16>, %x: tensor<2x8x4x64xbf16>, %post: tensor<2x8x4xf32>, %comb: tensor<2x8x4x4xf32>, %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{expected result type 'tensor<2x8x4x64xbf16>' (that of x), got 'tensor<2x8x4x64xf32>' [mhc_post_pre_c6]}}
  %x1, %y, %p1, %c1 = v4.mhc.post_pre %o, %x, %post, %comb, %fn, %base, %scale
      : (tensor<2x8x64xbf16>, tensor<2x8x4x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x8x4x64xf32>, tensor<2x8x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>)
  return
}

// -----

// mhc_post_pre_c7: fn is [(2+n)*n, n*d] f32.
func.func @post_pre_fn_shape(%o: tensor<2x8x64xbf16>, %x: tensor<2x8x4x64xbf16>, %post: tensor<2x8x4xf32>, %comb: tensor<2x8x4x4xf32>, %fn: tensor<24x64xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{expected fn shape [24, 256] ([(2+n)*n, n*d] with n = 4, d = 64), got [24, 64] [mhc_post_pre_c7]}}
  %x1, %y, %p1, %c1 = v4.mhc.post_pre %o, %x, %post, %comb, %fn, %base, %scale
      : (tensor<2x8x64xbf16>, tensor<2x8x4x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>, tensor<24x64xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x8x4x64xbf16>, tensor<2x8x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>)
  return
}

// -----

// mhc_post_pre_c8: base is [(2+n)*n] f32.
func.func @post_pre_base_shape(%o: tensor<2x8x64xbf16>, %x: tensor<2x8x4x64xbf16>, %post: tensor<2x8x4xf32>, %comb: tensor<2x8x4x4xf32>, %fn: tensor<24x256xf32>, %base: tensor<16xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{expected base shape [24] ([(2+n)*n] with n = 4), got [16] [mhc_post_pre_c8]}}
  %x1, %y, %p1, %c1 = v4.mhc.post_pre %o, %x, %post, %comb, %fn, %base, %scale
      : (tensor<2x8x64xbf16>, tensor<2x8x4x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>, tensor<24x256xf32>, tensor<16xf32>, tensor<3xf32>)
      -> (tensor<2x8x4x64xbf16>, tensor<2x8x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>)
  return
}

// -----

// mhc_post_pre_c9: scale is [3] f32.
func.func @post_pre_scale_shape(%o: tensor<2x8x64xbf16>, %x: tensor<2x8x4x64xbf16>, %post: tensor<2x8x4xf32>, %comb: tensor<2x8x4x4xf32>, %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<1xf32>) {
  // expected-error @+1 {{expected scale shape [3], got [1] [mhc_post_pre_c9]}}
  %x1, %y, %p1, %c1 = v4.mhc.post_pre %o, %x, %post, %comb, %fn, %base, %scale
      : (tensor<2x8x64xbf16>, tensor<2x8x4x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>, tensor<24x256xf32>, tensor<24xf32>, tensor<1xf32>)
      -> (tensor<2x8x4x64xbf16>, tensor<2x8x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>)
  return
}

// -----

// mhc_post_pre_c10: y is [B, T, d] with the element type of x.
func.func @post_pre_y_elt(%o: tensor<2x8x64xbf16>, %x: tensor<2x8x4x64xbf16>, %post: tensor<2x8x4xf32>, %comb: tensor<2x8x4x4xf32>, %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{expected y element type 'bf16', got 'f32' [mhc_post_pre_c10]}}
  %x1, %y, %p1, %c1 = v4.mhc.post_pre %o, %x, %post, %comb, %fn, %base, %scale
      : (tensor<2x8x64xbf16>, tensor<2x8x4x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x8x4x64xbf16>, tensor<2x8x64xf32>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>)
  return
}

// -----

// mhc_post_pre_c11: nextPost is [B, T, n] f32.
func.func @post_pre_next_post(%o: tensor<2x8x64xbf16>, %x: tensor<2x8x4x64xbf16>, %post: tensor<2x8x4xf32>, %comb: tensor<2x8x4x4xf32>, %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{expected nextPost element type 'f32', got 'bf16' [mhc_post_pre_c11]}}
  %x1, %y, %p1, %c1 = v4.mhc.post_pre %o, %x, %post, %comb, %fn, %base, %scale
      : (tensor<2x8x64xbf16>, tensor<2x8x4x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x8x4x64xbf16>, tensor<2x8x64xbf16>, tensor<2x8x4xbf16>, tensor<2x8x4x4xf32>)
  return
}

// -----

// mhc_post_pre_c12: nextComb is [B, T, n, n] f32.
func.func @post_pre_next_comb(%o: tensor<2x8x64xbf16>, %x: tensor<2x8x4x64xbf16>, %post: tensor<2x8x4xf32>, %comb: tensor<2x8x4x4xf32>, %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{expected nextComb shape [2, 8, 4, 4] ([B, T, n, n] of x), got [2, 8, 16] [mhc_post_pre_c12]}}
  %x1, %y, %p1, %c1 = v4.mhc.post_pre %o, %x, %post, %comb, %fn, %base, %scale
      : (tensor<2x8x64xbf16>, tensor<2x8x4x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x8x4x64xbf16>, tensor<2x8x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x16xf32>)
  return
}

// -----

// mhc_post_pre_c13: at least one Sinkhorn iteration.
func.func @post_pre_iters(%o: tensor<2x8x64xbf16>, %x: tensor<2x8x4x64xbf16>, %post: tensor<2x8x4xf32>, %comb: tensor<2x8x4x4xf32>, %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{expected sinkhornIters >= 1, got 0 [mhc_post_pre_c13]}}
  %x1, %y, %p1, %c1 = v4.mhc.post_pre %o, %x, %post, %comb, %fn, %base, %scale {sinkhornIters = 0 : i64}
      : (tensor<2x8x64xbf16>, tensor<2x8x4x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x8x4x64xbf16>, tensor<2x8x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>)
  return
}

// -----

// mhc_post_pre_c14: hcEps > 0.
func.func @post_pre_hc_eps(%o: tensor<2x8x64xbf16>, %x: tensor<2x8x4x64xbf16>, %post: tensor<2x8x4xf32>, %comb: tensor<2x8x4x4xf32>, %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{expected hcEps > 0, got 0.000000e+00 [mhc_post_pre_c14]}}
  %x1, %y, %p1, %c1 = v4.mhc.post_pre %o, %x, %post, %comb, %fn, %base, %scale {hcEps = 0.0 : f64}
      : (tensor<2x8x64xbf16>, tensor<2x8x4x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x8x4x64xbf16>, tensor<2x8x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>)
  return
}

// -----

// mhc_post_pre_c15: normEps > 0.
func.func @post_pre_norm_eps(%o: tensor<2x8x64xbf16>, %x: tensor<2x8x4x64xbf16>, %post: tensor<2x8x4xf32>, %comb: tensor<2x8x4x4xf32>, %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{expected normEps > 0, got -1.000000e-06 [mhc_post_pre_c15]}}
  %x1, %y, %p1, %c1 = v4.mhc.post_pre %o, %x, %post, %comb, %fn, %base, %scale {normEps = -1.0e-6 : f64}
      : (tensor<2x8x64xbf16>, tensor<2x8x4x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x8x4x64xbf16>, tensor<2x8x64xbf16>, tensor<2x8x4xf32>, tensor<2x8x4x4xf32>)
  return
}

// -----

// mhc_head_c1: x is [B, T, n, d] with a static lane count.
func.func @head_rank(%x: tensor<8x4x64xbf16>, %fn: tensor<4x256xf32>, %base: tensor<4xf32>, %scale: tensor<1xf32>) {
  // expected-error @+1 {{expected x of shape [B, T, n, d] with a static lane count n > 0, got [8, 4, 64] [mhc_head_c1]}}
  %y = v4.mhc.head %x, %fn, %base, %scale
      : (tensor<8x4x64xbf16>, tensor<4x256xf32>, tensor<4xf32>, tensor<1xf32>) -> tensor<8x64xbf16>
  return
}

// -----

// mhc_head_c2: x holds activations (bf16, f16 or f32).
func.func @head_int(%x: tensor<2x8x4x64xi16>, %fn: tensor<4x256xf32>, %base: tensor<4xf32>, %scale: tensor<1xf32>) {
  // expected-error @+1 {{expected x element type 'bf16' or 'f16' or 'f32', got 'i16' [mhc_head_c2]}}
  %y = v4.mhc.head %x, %fn, %base, %scale
      : (tensor<2x8x4x64xi16>, tensor<4x256xf32>, tensor<4xf32>, tensor<1xf32>) -> tensor<2x8x64xi16>
  return
}

// -----

// mhc_head_c3: fn is [n, n*d] f32.
func.func @head_fn(%x: tensor<2x8x4x64xbf16>, %fn: tensor<24x256xf32>, %base: tensor<4xf32>, %scale: tensor<1xf32>) {
  // expected-error @+1 {{expected fn shape [4, 256] ([n, n*d] with n = 4, d = 64), got [24, 256] [mhc_head_c3]}}
  %y = v4.mhc.head %x, %fn, %base, %scale
      : (tensor<2x8x4x64xbf16>, tensor<24x256xf32>, tensor<4xf32>, tensor<1xf32>) -> tensor<2x8x64xbf16>
  return
}

// -----

// mhc_head_c4: base is [n] f32.
func.func @head_base(%x: tensor<2x8x4x64xbf16>, %fn: tensor<4x256xf32>, %base: tensor<4xbf16>, %scale: tensor<1xf32>) {
  // expected-error @+1 {{expected base element type 'f32', got 'bf16' [mhc_head_c4]}}
  %y = v4.mhc.head %x, %fn, %base, %scale
      : (tensor<2x8x4x64xbf16>, tensor<4x256xf32>, tensor<4xbf16>, tensor<1xf32>) -> tensor<2x8x64xbf16>
  return
}

// -----

// mhc_head_c5: scale is [1] f32.
func.func @head_scale(%x: tensor<2x8x4x64xbf16>, %fn: tensor<4x256xf32>, %base: tensor<4xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{expected scale shape [1], got [3] [mhc_head_c5]}}
  %y = v4.mhc.head %x, %fn, %base, %scale
      : (tensor<2x8x4x64xbf16>, tensor<4x256xf32>, tensor<4xf32>, tensor<3xf32>) -> tensor<2x8x64xbf16>
  return
}

// -----

// mhc_head_c6: y is [B, T, d] with the element type of x.
func.func @head_y(%x: tensor<2x8x4x64xbf16>, %fn: tensor<4x256xf32>, %base: tensor<4xf32>, %scale: tensor<1xf32>) {
  // expected-error @+1 {{expected y shape [2, 8, 64] ([B, T, d] of x), got [2, 8, 4, 64] [mhc_head_c6]}}
  %y = v4.mhc.head %x, %fn, %base, %scale
      : (tensor<2x8x4x64xbf16>, tensor<4x256xf32>, tensor<4xf32>, tensor<1xf32>) -> tensor<2x8x4x64xbf16>
  return
}

// -----

// mhc_head_c7: hcEps > 0.
func.func @head_hc_eps(%x: tensor<2x8x4x64xbf16>, %fn: tensor<4x256xf32>, %base: tensor<4xf32>, %scale: tensor<1xf32>) {
  // expected-error @+1 {{expected hcEps > 0, got -1.000000e+00 [mhc_head_c7]}}
  %y = v4.mhc.head %x, %fn, %base, %scale {hcEps = -1.0 : f64}
      : (tensor<2x8x4x64xbf16>, tensor<4x256xf32>, tensor<4xf32>, tensor<1xf32>) -> tensor<2x8x64xbf16>
  return
}

// -----

// mhc_head_c8: normEps > 0.
func.func @head_norm_eps(%x: tensor<2x8x4x64xbf16>, %fn: tensor<4x256xf32>, %base: tensor<4xf32>, %scale: tensor<1xf32>) {
  // expected-error @+1 {{expected normEps > 0, got 0.000000e+00 [mhc_head_c8]}}
  %y = v4.mhc.head %x, %fn, %base, %scale {normEps = 0.0 : f64}
      : (tensor<2x8x4x64xbf16>, tensor<4x256xf32>, tensor<4xf32>, tensor<1xf32>) -> tensor<2x8x64xbf16>
  return
}

// -----

// mtp_input_c1: h is [B, T, n, d] with a static lane count.
func.func @mtp_rank(%e: tensor<2x8x64xbf16>, %h: tensor<2x8x64xbf16>) {
  // expected-error @+1 {{expected h of shape [B, T, n, d] with a static lane count n > 0, got [2, 8, 64] [mtp_input_c1]}}
  %x = v4.mtp.input %e, %h : (tensor<2x8x64xbf16>, tensor<2x8x64xbf16>) -> tensor<2x8x64xbf16>
  return
}

// -----

// mtp_input_c2: h holds activations and e has the same element type.
func.func @mtp_elt(%e: tensor<2x8x64xf32>, %h: tensor<2x8x4x64xbf16>) {
  // expected-error @+1 {{expected e element type 'bf16', got 'f32' [mtp_input_c2]}}
  %x = v4.mtp.input %e, %h : (tensor<2x8x64xf32>, tensor<2x8x4x64xbf16>) -> tensor<2x8x4x64xbf16>
  return
}

// -----

// mtp_input_c3: e is [B, T, d] of h.
func.func @mtp_e(%e: tensor<2x8x32xbf16>, %h: tensor<2x?x4x64xbf16>) {
  // expected-error @+1 {{expected e shape [2, ?, 64] ([B, T, d] of h), got [2, 8, 32] [mtp_input_c3]}}
  %x = v4.mtp.input %e, %h : (tensor<2x8x32xbf16>, tensor<2x?x4x64xbf16>) -> tensor<2x?x4x64xbf16>
  return
}

// -----

// mtp_input_c4: the result has the type of h.
func.func @mtp_result(%e: tensor<2x8x64xbf16>, %h: tensor<2x8x4x64xbf16>) {
  // expected-error @+1 {{expected result type 'tensor<2x8x4x64xbf16>' (that of h), got 'tensor<2x8x64xbf16>' [mtp_input_c4]}}
  %x = v4.mtp.input %e, %h : (tensor<2x8x64xbf16>, tensor<2x8x4x64xbf16>) -> tensor<2x8x64xbf16>
  return
}
