// RUN: v4-opt %s | v4-opt | FileCheck %s
// RUN: v4-opt %s --mlir-print-op-generic | v4-opt | FileCheck %s

// T1 sizes (V4-SPEC 11.1): d = 64, n_hc = 4, batch 2, prefill of 21 tokens.

// CHECK-LABEL: func.func @expand_t1
// CHECK: v4.mhc.expand %{{.*}} : tensor<2x21x64xbf16> -> tensor<2x21x4x64xbf16>
func.func @expand_t1(%e: tensor<2x21x64xbf16>) -> tensor<2x21x4x64xbf16> {
  %x = v4.mhc.expand %e : tensor<2x21x64xbf16> -> tensor<2x21x4x64xbf16>
  return %x : tensor<2x21x4x64xbf16>
}

// CHECK-LABEL: func.func @expand_dynamic_t
// CHECK: v4.mhc.expand %{{.*}} : tensor<1x?x4096xbf16> -> tensor<1x?x4x4096xbf16>
func.func @expand_dynamic_t(%e: tensor<1x?x4096xbf16>) -> tensor<1x?x4x4096xbf16> {
  %x = v4.mhc.expand %e : tensor<1x?x4096xbf16> -> tensor<1x?x4x4096xbf16>
  return %x : tensor<1x?x4x4096xbf16>
}

// CHECK-LABEL: func.func @pre_t1
// CHECK: v4.mhc.pre %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : (tensor<2x21x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>) -> (tensor<2x21x64xbf16>, tensor<2x21x4xf32>, tensor<2x21x4x4xf32>)
func.func @pre_t1(%x: tensor<2x21x4x64xbf16>, %fn: tensor<24x256xf32>,
                  %base: tensor<24xf32>, %scale: tensor<3xf32>)
    -> (tensor<2x21x64xbf16>, tensor<2x21x4xf32>, tensor<2x21x4x4xf32>) {
  %y, %post, %comb = v4.mhc.pre %x, %fn, %base, %scale
      {sinkhornIters = 20 : i64, hcEps = 1.0e-6 : f64, normEps = 1.0e-6 : f64}
      : (tensor<2x21x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x21x64xbf16>, tensor<2x21x4xf32>, tensor<2x21x4x4xf32>)
  return %y, %post, %comb : tensor<2x21x64xbf16>, tensor<2x21x4xf32>, tensor<2x21x4x4xf32>
}

// Non-default attributes survive the round trip; f32 lanes for an oracle.
// CHECK-LABEL: func.func @pre_attrs_f32
// CHECK: v4.mhc.pre
// CHECK-SAME: hcEps = 1.000000e-05 : f64
// CHECK-SAME: normEps = 1.000000e-05 : f64
// CHECK-SAME: sinkhornIters = 10 : i64
// CHECK-SAME: (tensor<2x21x4x64xf32>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>) -> (tensor<2x21x64xf32>, tensor<2x21x4xf32>, tensor<2x21x4x4xf32>)
func.func @pre_attrs_f32(%x: tensor<2x21x4x64xf32>, %fn: tensor<24x256xf32>,
                         %base: tensor<24xf32>, %scale: tensor<3xf32>)
    -> (tensor<2x21x64xf32>, tensor<2x21x4xf32>, tensor<2x21x4x4xf32>) {
  %y, %post, %comb = v4.mhc.pre %x, %fn, %base, %scale
      {sinkhornIters = 10 : i64, hcEps = 1.0e-5 : f64, normEps = 1.0e-5 : f64}
      : (tensor<2x21x4x64xf32>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x21x64xf32>, tensor<2x21x4xf32>, tensor<2x21x4x4xf32>)
  return %y, %post, %comb : tensor<2x21x64xf32>, tensor<2x21x4xf32>, tensor<2x21x4x4xf32>
}

// V4-Flash attention site: d = 4096, fn [24, 16384], dynamic T.
// CHECK-LABEL: func.func @pre_flash_dynamic_t
// CHECK: v4.mhc.pre %{{.*}} : (tensor<1x?x4x4096xbf16>, tensor<24x16384xf32>, tensor<24xf32>, tensor<3xf32>) -> (tensor<1x?x4096xbf16>, tensor<1x?x4xf32>, tensor<1x?x4x4xf32>)
func.func @pre_flash_dynamic_t(%x: tensor<1x?x4x4096xbf16>)
    -> (tensor<1x?x4096xbf16>, tensor<1x?x4xf32>, tensor<1x?x4x4xf32>) {
  %fn = v4.parameter "layers.0.hc_attn_fn" : tensor<24x16384xf32>
  %base = v4.parameter "layers.0.hc_attn_base" : tensor<24xf32>
  %scale = v4.parameter "layers.0.hc_attn_scale" : tensor<3xf32>
  %y, %post, %comb = v4.mhc.pre %x, %fn, %base, %scale
      : (tensor<1x?x4x4096xbf16>, tensor<24x16384xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<1x?x4096xbf16>, tensor<1x?x4xf32>, tensor<1x?x4x4xf32>)
  return %y, %post, %comb : tensor<1x?x4096xbf16>, tensor<1x?x4xf32>, tensor<1x?x4x4xf32>
}

// CHECK-LABEL: func.func @sinkhorn_4x4
// CHECK: v4.mhc.sinkhorn %{{.*}} : tensor<4x4xf32>
func.func @sinkhorn_4x4(%c: tensor<4x4xf32>) -> tensor<4x4xf32> {
  %p = v4.mhc.sinkhorn %c {iters = 20 : i64, eps = 1.0e-6 : f64} : tensor<4x4xf32>
  return %p : tensor<4x4xf32>
}

// CHECK-LABEL: func.func @sinkhorn_batched
// CHECK: v4.mhc.sinkhorn %{{.*}} {eps = 1.000000e-04 : f64, iters = 3 : i64} : tensor<2x?x4x4xf32>
func.func @sinkhorn_batched(%c: tensor<2x?x4x4xf32>) -> tensor<2x?x4x4xf32> {
  %p = v4.mhc.sinkhorn %c {iters = 3 : i64, eps = 1.0e-4 : f64} : tensor<2x?x4x4xf32>
  return %p : tensor<2x?x4x4xf32>
}

// CHECK-LABEL: func.func @post_t1
// CHECK: v4.mhc.post %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : (tensor<2x21x64xbf16>, tensor<2x21x4x64xbf16>, tensor<2x21x4xf32>, tensor<2x21x4x4xf32>) -> tensor<2x21x4x64xbf16>
func.func @post_t1(%o: tensor<2x21x64xbf16>, %x: tensor<2x21x4x64xbf16>,
                   %post: tensor<2x21x4xf32>, %comb: tensor<2x21x4x4xf32>)
    -> tensor<2x21x4x64xbf16> {
  %r = v4.mhc.post %o, %x, %post, %comb
      : (tensor<2x21x64xbf16>, tensor<2x21x4x64xbf16>, tensor<2x21x4xf32>, tensor<2x21x4x4xf32>)
      -> tensor<2x21x4x64xbf16>
  return %r : tensor<2x21x4x64xbf16>
}

// CHECK-LABEL: func.func @post_pro_dynamic_t
// CHECK: v4.mhc.post {{.*}} -> tensor<1x?x4x7168xbf16>
func.func @post_pro_dynamic_t(%o: tensor<1x?x7168xbf16>, %x: tensor<1x?x4x7168xbf16>,
                              %post: tensor<1x?x4xf32>, %comb: tensor<1x?x4x4xf32>)
    -> tensor<1x?x4x7168xbf16> {
  %r = v4.mhc.post %o, %x, %post, %comb
      : (tensor<1x?x7168xbf16>, tensor<1x?x4x7168xbf16>, tensor<1x?x4xf32>, tensor<1x?x4x4xf32>)
      -> tensor<1x?x4x7168xbf16>
  return %r : tensor<1x?x4x7168xbf16>
}

// CHECK-LABEL: func.func @head_t1
// CHECK: v4.mhc.head %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : (tensor<2x21x4x64xbf16>, tensor<4x256xf32>, tensor<4xf32>, tensor<1xf32>) -> tensor<2x21x64xbf16>
func.func @head_t1(%x: tensor<2x21x4x64xbf16>, %fn: tensor<4x256xf32>,
                   %base: tensor<4xf32>, %scale: tensor<1xf32>) -> tensor<2x21x64xbf16> {
  %y = v4.mhc.head %x, %fn, %base, %scale
      : (tensor<2x21x4x64xbf16>, tensor<4x256xf32>, tensor<4xf32>, tensor<1xf32>)
      -> tensor<2x21x64xbf16>
  return %y : tensor<2x21x64xbf16>
}

// CHECK-LABEL: func.func @head_flash_dynamic_t
// CHECK: v4.mhc.head {{.*}} {hcEps = 2.000000e-06 : f64} : (tensor<1x?x4x4096xbf16>, tensor<4x16384xf32>, tensor<4xf32>, tensor<1xf32>) -> tensor<1x?x4096xbf16>
func.func @head_flash_dynamic_t(%x: tensor<1x?x4x4096xbf16>) -> tensor<1x?x4096xbf16> {
  %fn = v4.parameter "hc_head_fn" : tensor<4x16384xf32>
  %base = v4.parameter "hc_head_base" : tensor<4xf32>
  %scale = v4.parameter "hc_head_scale" : tensor<1xf32>
  %y = v4.mhc.head %x, %fn, %base, %scale {hcEps = 2.0e-6 : f64}
      : (tensor<1x?x4x4096xbf16>, tensor<4x16384xf32>, tensor<4xf32>, tensor<1xf32>)
      -> tensor<1x?x4096xbf16>
  return %y : tensor<1x?x4096xbf16>
}

// CHECK-LABEL: func.func @mtp_input_t1
// CHECK: v4.mtp.input %{{.*}}, %{{.*}} : (tensor<2x21x64xbf16>, tensor<2x21x4x64xbf16>) -> tensor<2x21x4x64xbf16>
func.func @mtp_input_t1(%e: tensor<2x21x64xbf16>, %h: tensor<2x21x4x64xbf16>)
    -> tensor<2x21x4x64xbf16> {
  %x = v4.mtp.input %e, %h
      : (tensor<2x21x64xbf16>, tensor<2x21x4x64xbf16>) -> tensor<2x21x4x64xbf16>
  return %x : tensor<2x21x4x64xbf16>
}

// CHECK-LABEL: func.func @mtp_input_flash_dynamic_t
// CHECK: v4.mtp.input {{.*}} -> tensor<1x?x4x4096xbf16>
func.func @mtp_input_flash_dynamic_t(%e: tensor<1x?x4096xbf16>, %h: tensor<1x?x4x4096xbf16>)
    -> tensor<1x?x4x4096xbf16> {
  %x = v4.mtp.input %e, %h
      : (tensor<1x?x4096xbf16>, tensor<1x?x4x4096xbf16>) -> tensor<1x?x4x4096xbf16>
  return %x : tensor<1x?x4x4096xbf16>
}

// One T1 Block's mHC skeleton: expand, pre, (sublayer), post, head.
// CHECK-LABEL: func.func @block_t1
// CHECK: v4.mhc.expand
// CHECK: v4.mhc.pre
// CHECK: v4.mhc.post
// CHECK: v4.mhc.head
func.func @block_t1(%e: tensor<2x?x64xbf16>, %fn: tensor<24x256xf32>,
                    %base: tensor<24xf32>, %scale: tensor<3xf32>,
                    %hfn: tensor<4x256xf32>, %hbase: tensor<4xf32>,
                    %hscale: tensor<1xf32>) -> tensor<2x?x64xbf16> {
  %x = v4.mhc.expand %e : tensor<2x?x64xbf16> -> tensor<2x?x4x64xbf16>
  %y, %post, %comb = v4.mhc.pre %x, %fn, %base, %scale
      : (tensor<2x?x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x?x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>)
  %x1 = v4.mhc.post %y, %x, %post, %comb
      : (tensor<2x?x64xbf16>, tensor<2x?x4x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>)
      -> tensor<2x?x4x64xbf16>
  %out = v4.mhc.head %x1, %hfn, %hbase, %hscale
      : (tensor<2x?x4x64xbf16>, tensor<4x256xf32>, tensor<4xf32>, tensor<1xf32>)
      -> tensor<2x?x64xbf16>
  return %out : tensor<2x?x64xbf16>
}

// One mHC boundary, fused: the new lanes and the next site's pre.
// CHECK-LABEL: func.func @post_pre_t1
// CHECK: %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} = v4.mhc.post_pre %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {sinkhornIters = 10 : i64} : (tensor<2x?x64xbf16>, tensor<2x?x4x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>) -> (tensor<2x?x4x64xbf16>, tensor<2x?x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>)
func.func @post_pre_t1(%o: tensor<2x?x64xbf16>, %x: tensor<2x?x4x64xbf16>,
                       %post: tensor<2x?x4xf32>, %comb: tensor<2x?x4x4xf32>,
                       %fn: tensor<24x256xf32>, %base: tensor<24xf32>,
                       %scale: tensor<3xf32>)
    -> (tensor<2x?x4x64xbf16>, tensor<2x?x64xbf16>, tensor<2x?x4xf32>,
        tensor<2x?x4x4xf32>) {
  %x1, %y, %p1, %c1 = v4.mhc.post_pre %o, %x, %post, %comb, %fn, %base, %scale
      {sinkhornIters = 10 : i64}
      : (tensor<2x?x64xbf16>, tensor<2x?x4x64xbf16>, tensor<2x?x4xf32>,
         tensor<2x?x4x4xf32>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<2x?x4x64xbf16>, tensor<2x?x64xbf16>, tensor<2x?x4xf32>,
          tensor<2x?x4x4xf32>)
  return %x1, %y, %p1, %c1
      : tensor<2x?x4x64xbf16>, tensor<2x?x64xbf16>, tensor<2x?x4xf32>,
        tensor<2x?x4x4xf32>
}
