// RUN: v4-opt %s -split-input-file \
// RUN:   --pass-pipeline='builtin.module(func.func(v4-fuse-mhc-boundaries))' | FileCheck %s
// The flag form runs it on the whole module, with the same result.
// RUN: v4-opt %s -split-input-file --v4-fuse-mhc-boundaries | FileCheck %s

// T1 sizes (V4-SPEC 11.1): d = 64, n_hc = 4, batch 1, T dynamic.

// The attention site's post followed by the FFN site's pre in one block:
// one v4.mhc.post_pre; its lanes feed the FFN post, its y/post/comb replace
// the pre's.
// CHECK-LABEL: func.func @block_boundary
// CHECK-SAME: (%[[O:[^:]+]]: tensor<1x?x64xbf16>, %[[X:[^:]+]]: tensor<1x?x4x64xbf16>, %[[P:[^:]+]]: tensor<1x?x4xf32>, %[[C:[^:]+]]: tensor<1x?x4x4xf32>, %[[FN:[^:]+]]: tensor<24x256xf32>, %[[B:[^:]+]]: tensor<24xf32>, %[[S:[^:]+]]: tensor<3xf32>, %[[F:[^:]+]]: tensor<1x?x64xbf16>)
// CHECK-NOT: v4.mhc.pre
// CHECK: %[[NX:[^,]+]], %[[NY:[^,]+]], %[[NP:[^,]+]], %[[NC:[^ ]+]] = v4.mhc.post_pre %[[O]], %[[X]], %[[P]], %[[C]], %[[FN]], %[[B]], %[[S]] {sinkhornIters = 7 : i64}
// CHECK-NOT: v4.mhc.pre
// CHECK: %[[X2:.+]] = v4.mhc.post %[[F]], %[[NX]], %[[NP]], %[[NC]] :
// CHECK: return %[[X2]], %[[NY]]
func.func @block_boundary(%o: tensor<1x?x64xbf16>, %x: tensor<1x?x4x64xbf16>,
                          %post: tensor<1x?x4xf32>, %comb: tensor<1x?x4x4xf32>,
                          %fn: tensor<24x256xf32>, %base: tensor<24xf32>,
                          %scale: tensor<3xf32>, %ffn: tensor<1x?x64xbf16>)
    -> (tensor<1x?x4x64xbf16>, tensor<1x?x64xbf16>) {
  %x1 = v4.mhc.post %o, %x, %post, %comb
      : (tensor<1x?x64xbf16>, tensor<1x?x4x64xbf16>, tensor<1x?x4xf32>, tensor<1x?x4x4xf32>)
      -> tensor<1x?x4x64xbf16>
  %y, %p1, %c1 = v4.mhc.pre %x1, %fn, %base, %scale {sinkhornIters = 7 : i64}
      : (tensor<1x?x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<1x?x64xbf16>, tensor<1x?x4xf32>, tensor<1x?x4x4xf32>)
  %x2 = v4.mhc.post %ffn, %x1, %p1, %c1
      : (tensor<1x?x64xbf16>, tensor<1x?x4x64xbf16>, tensor<1x?x4xf32>, tensor<1x?x4x4xf32>)
      -> tensor<1x?x4x64xbf16>
  return %x2, %y : tensor<1x?x4x64xbf16>, tensor<1x?x64xbf16>
}

// -----

// Two boundaries in a row, as after inlining (FFN post of layer 0, attention
// pre of layer 1; the pre's parameters are read after the post): both fuse,
// the second post_pre reads the first one's lanes and post/comb.
// CHECK-LABEL: func.func @inlined_layers
// CHECK: %[[AX:[^,]+]], %[[AY:[^,]+]], %[[AP:[^,]+]], %[[AC:[^ ]+]] = v4.mhc.post_pre
// CHECK: %[[BX:[^,]+]], %[[BY:[^,]+]], %[[BP:[^,]+]], %[[BC:[^ ]+]] = v4.mhc.post_pre %{{.*}}, %[[AX]], %[[AP]], %[[AC]],
// CHECK: return %[[BX]], %[[BY]]
func.func @inlined_layers(%o: tensor<1x?x64xbf16>, %x: tensor<1x?x4x64xbf16>,
                          %post: tensor<1x?x4xf32>, %comb: tensor<1x?x4x4xf32>,
                          %o1: tensor<1x?x64xbf16>)
    -> (tensor<1x?x4x64xbf16>, tensor<1x?x64xbf16>) {
  %x1 = v4.mhc.post %o, %x, %post, %comb
      : (tensor<1x?x64xbf16>, tensor<1x?x4x64xbf16>, tensor<1x?x4xf32>, tensor<1x?x4x4xf32>)
      -> tensor<1x?x4x64xbf16>
  %fn = v4.parameter "layers.1.hc_attn_fn" : tensor<24x256xf32>
  %base = v4.parameter "layers.1.hc_attn_base" : tensor<24xf32>
  %scale = v4.parameter "layers.1.hc_attn_scale" : tensor<3xf32>
  %y, %p1, %c1 = v4.mhc.pre %x1, %fn, %base, %scale
      : (tensor<1x?x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<1x?x64xbf16>, tensor<1x?x4xf32>, tensor<1x?x4x4xf32>)
  %x2 = v4.mhc.post %o1, %x1, %p1, %c1
      : (tensor<1x?x64xbf16>, tensor<1x?x4x64xbf16>, tensor<1x?x4xf32>, tensor<1x?x4x4xf32>)
      -> tensor<1x?x4x64xbf16>
  %fn2 = v4.parameter "layers.1.hc_ffn_fn" : tensor<24x256xf32>
  %base2 = v4.parameter "layers.1.hc_ffn_base" : tensor<24xf32>
  %scale2 = v4.parameter "layers.1.hc_ffn_scale" : tensor<3xf32>
  %y2, %p2, %c2 = v4.mhc.pre %x2, %fn2, %base2, %scale2
      : (tensor<1x?x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<1x?x64xbf16>, tensor<1x?x4xf32>, tensor<1x?x4x4xf32>)
  return %x2, %y2 : tensor<1x?x4x64xbf16>, tensor<1x?x64xbf16>
}

// -----

// The lanes are also read between the post and the pre (here by hc_head);
// the pre's parameters are available at the post, so the fused op goes
// there and the reader uses its lanes.
// CHECK-LABEL: func.func @used_between
// CHECK: %[[X:[^,]+]], %[[Y:[^,]+]], %[[P:[^,]+]], %[[C:[^ ]+]] = v4.mhc.post_pre
// CHECK-NEXT: v4.mhc.head %[[X]],
func.func @used_between(%o: tensor<1x?x64xbf16>, %x: tensor<1x?x4x64xbf16>,
                        %post: tensor<1x?x4xf32>, %comb: tensor<1x?x4x4xf32>,
                        %fn: tensor<24x256xf32>, %base: tensor<24xf32>,
                        %scale: tensor<3xf32>, %hfn: tensor<4x256xf32>,
                        %hbase: tensor<4xf32>, %hscale: tensor<1xf32>)
    -> (tensor<1x?x64xbf16>, tensor<1x?x64xbf16>) {
  %x1 = v4.mhc.post %o, %x, %post, %comb
      : (tensor<1x?x64xbf16>, tensor<1x?x4x64xbf16>, tensor<1x?x4xf32>, tensor<1x?x4x4xf32>)
      -> tensor<1x?x4x64xbf16>
  %h = v4.mhc.head %x1, %hfn, %hbase, %hscale
      : (tensor<1x?x4x64xbf16>, tensor<4x256xf32>, tensor<4xf32>, tensor<1xf32>)
      -> tensor<1x?x64xbf16>
  %y, %p1, %c1 = v4.mhc.pre %x1, %fn, %base, %scale
      : (tensor<1x?x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<1x?x64xbf16>, tensor<1x?x4xf32>, tensor<1x?x4x4xf32>)
  return %h, %y : tensor<1x?x64xbf16>, tensor<1x?x64xbf16>
}

// -----

// As after inlining: the next layer reads T from its input lanes between
// the post and its pre. The tensor.dim only needs the shape, so it reads
// the post's input lanes (same type) and the pair still fuses at the pre.
// CHECK-LABEL: func.func @dim_between
// CHECK-SAME: %[[O:[^:]+]]: tensor<1x?x64xbf16>, %[[X:[^:]+]]: tensor<1x?x4x64xbf16>
// CHECK: tensor.dim %[[X]], %{{.*}} : tensor<1x?x4x64xbf16>
// CHECK: v4.parameter "layers.1.hc_attn_fn"
// CHECK: %[[NX:[^,]+]], %[[NY:[^,]+]], %{{.*}}, %{{.*}} = v4.mhc.post_pre %[[O]], %[[X]],
// CHECK: return %[[NX]], %[[NY]],
func.func @dim_between(%o: tensor<1x?x64xbf16>, %x: tensor<1x?x4x64xbf16>,
                       %post: tensor<1x?x4xf32>, %comb: tensor<1x?x4x4xf32>)
    -> (tensor<1x?x4x64xbf16>, tensor<1x?x64xbf16>, index) {
  %x1 = v4.mhc.post %o, %x, %post, %comb
      : (tensor<1x?x64xbf16>, tensor<1x?x4x64xbf16>, tensor<1x?x4xf32>, tensor<1x?x4x4xf32>)
      -> tensor<1x?x4x64xbf16>
  %c1 = arith.constant 1 : index
  %t = tensor.dim %x1, %c1 : tensor<1x?x4x64xbf16>
  %fn = v4.parameter "layers.1.hc_attn_fn" : tensor<24x256xf32>
  %base = v4.parameter "layers.1.hc_attn_base" : tensor<24xf32>
  %scale = v4.parameter "layers.1.hc_attn_scale" : tensor<3xf32>
  %y, %p1, %c1_0 = v4.mhc.pre %x1, %fn, %base, %scale
      : (tensor<1x?x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<1x?x64xbf16>, tensor<1x?x4xf32>, tensor<1x?x4x4xf32>)
  return %x1, %y, %t : tensor<1x?x4x64xbf16>, tensor<1x?x64xbf16>, index
}

// -----

// Must not fire: the pre's lanes are a block argument (the first site of a
// layer function before inlining); there is no post to fuse with.
// CHECK-LABEL: func.func @pre_on_block_argument
// CHECK: v4.mhc.pre
// CHECK-NOT: v4.mhc.post_pre
func.func @pre_on_block_argument(%x: tensor<1x?x4x64xbf16>,
                                 %fn: tensor<24x256xf32>, %base: tensor<24xf32>,
                                 %scale: tensor<3xf32>) -> tensor<1x?x64xbf16> {
  %y, %p, %c = v4.mhc.pre %x, %fn, %base, %scale
      : (tensor<1x?x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<1x?x64xbf16>, tensor<1x?x4xf32>, tensor<1x?x4x4xf32>)
  return %y : tensor<1x?x64xbf16>
}

// -----

// Must not fire: the pre's lanes come from something other than a post
// (here mhc.expand, the first layer's input; Engram's output is the same
// case), so there is no post to fold in.
// CHECK-LABEL: func.func @pre_on_other_op
// CHECK: v4.mhc.expand
// CHECK-NEXT: v4.mhc.pre
// CHECK-NOT: v4.mhc.post_pre
func.func @pre_on_other_op(%e: tensor<1x?x64xbf16>, %fn: tensor<24x256xf32>,
                           %base: tensor<24xf32>, %scale: tensor<3xf32>)
    -> tensor<1x?x64xbf16> {
  %x = v4.mhc.expand %e : tensor<1x?x64xbf16> -> tensor<1x?x4x64xbf16>
  %y, %p, %c = v4.mhc.pre %x, %fn, %base, %scale
      : (tensor<1x?x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<1x?x64xbf16>, tensor<1x?x4xf32>, tensor<1x?x4x4xf32>)
  return %y : tensor<1x?x64xbf16>
}

// -----

// Must not fire: the lanes are read between the post and the pre, and the
// pre's parameters are only defined after that reader, so neither the post's
// nor the pre's position can hold the fused op.
// CHECK-LABEL: func.func @used_between_params_after
// CHECK: v4.mhc.post
// CHECK: v4.mhc.head
// CHECK: v4.mhc.pre
// CHECK-NOT: v4.mhc.post_pre
func.func @used_between_params_after(%o: tensor<1x?x64xbf16>,
                                     %x: tensor<1x?x4x64xbf16>,
                                     %post: tensor<1x?x4xf32>,
                                     %comb: tensor<1x?x4x4xf32>,
                                     %hfn: tensor<4x256xf32>,
                                     %hbase: tensor<4xf32>,
                                     %hscale: tensor<1xf32>)
    -> (tensor<1x?x64xbf16>, tensor<1x?x64xbf16>) {
  %x1 = v4.mhc.post %o, %x, %post, %comb
      : (tensor<1x?x64xbf16>, tensor<1x?x4x64xbf16>, tensor<1x?x4xf32>, tensor<1x?x4x4xf32>)
      -> tensor<1x?x4x64xbf16>
  %h = v4.mhc.head %x1, %hfn, %hbase, %hscale
      : (tensor<1x?x4x64xbf16>, tensor<4x256xf32>, tensor<4xf32>, tensor<1xf32>)
      -> tensor<1x?x64xbf16>
  %fn = v4.parameter "layers.1.hc_attn_fn" : tensor<24x256xf32>
  %base = v4.parameter "layers.1.hc_attn_base" : tensor<24xf32>
  %scale = v4.parameter "layers.1.hc_attn_scale" : tensor<3xf32>
  %y, %p1, %c1 = v4.mhc.pre %x1, %fn, %base, %scale
      : (tensor<1x?x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<1x?x64xbf16>, tensor<1x?x4xf32>, tensor<1x?x4x4xf32>)
  return %h, %y : tensor<1x?x64xbf16>, tensor<1x?x64xbf16>
}
