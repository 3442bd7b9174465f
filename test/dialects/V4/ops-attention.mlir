// RUN: v4-opt %s | v4-opt | FileCheck %s
// RUN: v4-opt %s --mlir-print-op-generic | v4-opt | FileCheck %s

// Small shapes follow the T1 "tiny-v4" configuration (V4-SPEC 11.1): batch 2,
// 4 heads, head_dim 72, window 8, ratios 4 (CSA) and 8 (HCA), index_topk 8.
// Flash shapes: 64 heads, head_dim 512, window 128, index_topk 512.

// CHECK-LABEL: func.func @ring_prefill_small
// CHECK: %[[R0:.*]] = v4.ring.empty : !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>
// CHECK: v4.ring.write %{{.*}} into %[[R0]] at %{{.*}} : tensor<2x21x72xbf16>, tensor<2xi64> -> !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>
func.func @ring_prefill_small(%kv: tensor<2x21x72xbf16>, %pos: tensor<2xi64>)
    -> !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16> {
  %r0 = v4.ring.empty : !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>
  %r1 = v4.ring.write %kv into %r0 at %pos
      : tensor<2x21x72xbf16>, tensor<2xi64>
      -> !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>
  return %r1 : !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>
}

// CHECK-LABEL: func.func @ring_write_flash_dynamic
// CHECK: v4.ring.write %{{.*}} into %{{.*}} at %{{.*}} : tensor<1x?x512xbf16>, tensor<1xi64> -> !v4.window_ring<batch = 1, slots = 128, dim = 512, elementType = bf16>
func.func @ring_write_flash_dynamic(
    %ring: !v4.window_ring<batch = 1, slots = 128, dim = 512, elementType = bf16>,
    %kv: tensor<1x?x512xbf16>, %pos: tensor<1xi64>)
    -> !v4.window_ring<batch = 1, slots = 128, dim = 512, elementType = bf16> {
  %r = v4.ring.write %kv into %ring at %pos
      : tensor<1x?x512xbf16>, tensor<1xi64>
      -> !v4.window_ring<batch = 1, slots = 128, dim = 512, elementType = bf16>
  return %r : !v4.window_ring<batch = 1, slots = 128, dim = 512, elementType = bf16>
}

// CHECK-LABEL: func.func @cache_empty
// CHECK: v4.cache.empty : !v4.kv_cache<batch = 1, capacity = 16384, dim = 512, ratio = 4, elementType = bf16>
// CHECK: v4.cache.empty : !v4.kv_cache<batch = 1, capacity = 512, dim = 512, ratio = 128, elementType = bf16>
// CHECK: v4.cache.empty : !v4.kv_cache<batch = 1, capacity = 16384, dim = 128, ratio = 4, elementType = bf16>
func.func @cache_empty() {
  %csa = v4.cache.empty : !v4.kv_cache<batch = 1, capacity = 16384, dim = 512, ratio = 4, elementType = bf16>
  %hca = v4.cache.empty : !v4.kv_cache<batch = 1, capacity = 512, dim = 512, ratio = 128, elementType = bf16>
  %idx = v4.cache.empty : !v4.kv_cache<batch = 1, capacity = 16384, dim = 128, ratio = 4, elementType = bf16>
  return
}

// V4-SPEC 11.2 item 6: prefill T = 10 with window 4.
// CHECK-LABEL: func.func @window_indices
// CHECK: v4.attn.window_indices %{{.*}} window 4 : tensor<1xi64> -> tensor<1x10x4xi64>
// CHECK: v4.attn.window_indices %{{.*}} tokens(%{{.*}}) window 128 : tensor<2xi64> -> tensor<2x?x128xi64>
// CHECK: v4.attn.window_indices %{{.*}} window 128 : tensor<1xi64> -> tensor<1x1x128xi64>
func.func @window_indices(%p1: tensor<1xi64>, %p2: tensor<2xi64>, %t: index) {
  %a = v4.attn.window_indices %p1 window 4 : tensor<1xi64> -> tensor<1x10x4xi64>
  %b = v4.attn.window_indices %p2 tokens(%t) window 128
      : tensor<2xi64> -> tensor<2x?x128xi64>
  %c = v4.attn.window_indices %p1 window 128 : tensor<1xi64> -> tensor<1x1x128xi64>
  return
}

// CHECK-LABEL: func.func @attn_swa_small
// CHECK: v4.attn.sparse %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} window 8 : tensor<2x21x4x72xbf16>, tensor<2x21x72xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, tensor<4xf32>, tensor<2xi64> -> tensor<2x21x4x72xbf16>
func.func @attn_swa_small(%q: tensor<2x21x4x72xbf16>, %kv: tensor<2x21x72xbf16>,
    %ring: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>,
    %sink: tensor<4xf32>, %pos: tensor<2xi64>) -> tensor<2x21x4x72xbf16> {
  %o = v4.attn.sparse %q, %kv, %ring, %sink, %pos window 8
      : tensor<2x21x4x72xbf16>, tensor<2x21x72xbf16>,
        !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>,
        tensor<4xf32>, tensor<2xi64> -> tensor<2x21x4x72xbf16>
  return %o : tensor<2x21x4x72xbf16>
}

// CHECK-LABEL: func.func @attn_csa_small
// CHECK: v4.attn.sparse %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} compressed %{{.*}} : !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16> indices %{{.*}} : tensor<2x21x8xi64> window 8 :
func.func @attn_csa_small(%q: tensor<2x21x4x72xbf16>, %kv: tensor<2x21x72xbf16>,
    %ring: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>,
    %sink: tensor<4xf32>, %pos: tensor<2xi64>,
    %cache: !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>,
    %topk: tensor<2x21x8xi64>) -> tensor<2x21x4x72xbf16> {
  %o = v4.attn.sparse %q, %kv, %ring, %sink, %pos
      compressed %cache : !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>
      indices %topk : tensor<2x21x8xi64>
      window 8
      : tensor<2x21x4x72xbf16>, tensor<2x21x72xbf16>,
        !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>,
        tensor<4xf32>, tensor<2xi64> -> tensor<2x21x4x72xbf16>
  return %o : tensor<2x21x4x72xbf16>
}

// CHECK-LABEL: func.func @attn_hca_small
// CHECK: v4.attn.sparse %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} compressed %{{.*}} : !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16> window 8 scale 1.250000e-01 :
func.func @attn_hca_small(%q: tensor<2x21x4x72xbf16>, %kv: tensor<2x21x72xbf16>,
    %ring: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>,
    %sink: tensor<4xf32>, %pos: tensor<2xi64>,
    %cache: !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16>)
    -> tensor<2x21x4x72xbf16> {
  %o = v4.attn.sparse %q, %kv, %ring, %sink, %pos
      compressed %cache : !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16>
      window 8 scale 0.125
      : tensor<2x21x4x72xbf16>, tensor<2x21x72xbf16>,
        !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>,
        tensor<4xf32>, tensor<2xi64> -> tensor<2x21x4x72xbf16>
  return %o : tensor<2x21x4x72xbf16>
}

// V4-Flash SWA layer (layers 0, 1 and MTP), prefill of 1024 tokens.
// CHECK-LABEL: func.func @attn_swa_flash
// CHECK: v4.attn.sparse %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} window 128 : tensor<1x1024x64x512xbf16>, tensor<1x1024x512xbf16>, !v4.window_ring<batch = 1, slots = 128, dim = 512, elementType = bf16>, tensor<64xf32>, tensor<1xi64> -> tensor<1x1024x64x512xbf16>
func.func @attn_swa_flash(%q: tensor<1x1024x64x512xbf16>, %kv: tensor<1x1024x512xbf16>,
    %sink: tensor<64xf32>, %pos: tensor<1xi64>) -> tensor<1x1024x64x512xbf16> {
  %ring = v4.ring.empty : !v4.window_ring<batch = 1, slots = 128, dim = 512, elementType = bf16>
  %o = v4.attn.sparse %q, %kv, %ring, %sink, %pos window 128
      : tensor<1x1024x64x512xbf16>, tensor<1x1024x512xbf16>,
        !v4.window_ring<batch = 1, slots = 128, dim = 512, elementType = bf16>,
        tensor<64xf32>, tensor<1xi64> -> tensor<1x1024x64x512xbf16>
  return %o : tensor<1x1024x64x512xbf16>
}

// V4-Flash CSA decode step (T = 1, top-512 of 16384 entries), followed by the
// ring write of the step (V4-SPEC 9.2 item 4).
// CHECK-LABEL: func.func @attn_csa_flash_decode
// CHECK: v4.attn.sparse %{{.*}}, %{{.*}}, %[[RING:.*]], %{{.*}}, %{{.*}} compressed %{{.*}} : !v4.kv_cache<batch = 1, capacity = 16384, dim = 512, ratio = 4, elementType = bf16> indices %{{.*}} : tensor<1x1x512xi64> window 128 : tensor<1x1x64x512xbf16>, tensor<1x1x512xbf16>, !v4.window_ring<batch = 1, slots = 128, dim = 512, elementType = bf16>, tensor<64xf32>, tensor<1xi64> -> tensor<1x1x64x512xbf16>
// CHECK: v4.ring.write %{{.*}} into %[[RING]] at
func.func @attn_csa_flash_decode(%q: tensor<1x1x64x512xbf16>, %kv: tensor<1x1x512xbf16>,
    %ring: !v4.window_ring<batch = 1, slots = 128, dim = 512, elementType = bf16>,
    %sink: tensor<64xf32>, %pos: tensor<1xi64>,
    %cache: !v4.kv_cache<batch = 1, capacity = 16384, dim = 512, ratio = 4, elementType = bf16>,
    %topk: tensor<1x1x512xi64>)
    -> (tensor<1x1x64x512xbf16>, !v4.window_ring<batch = 1, slots = 128, dim = 512, elementType = bf16>) {
  %o = v4.attn.sparse %q, %kv, %ring, %sink, %pos
      compressed %cache : !v4.kv_cache<batch = 1, capacity = 16384, dim = 512, ratio = 4, elementType = bf16>
      indices %topk : tensor<1x1x512xi64>
      window 128
      : tensor<1x1x64x512xbf16>, tensor<1x1x512xbf16>,
        !v4.window_ring<batch = 1, slots = 128, dim = 512, elementType = bf16>,
        tensor<64xf32>, tensor<1xi64> -> tensor<1x1x64x512xbf16>
  %r = v4.ring.write %kv into %ring at %pos
      : tensor<1x1x512xbf16>, tensor<1xi64>
      -> !v4.window_ring<batch = 1, slots = 128, dim = 512, elementType = bf16>
  return %o, %r : tensor<1x1x64x512xbf16>, !v4.window_ring<batch = 1, slots = 128, dim = 512, elementType = bf16>
}

// V4-Flash CSA chunk with a dynamic T and a dynamic K (k = min(512, end/4)).
// CHECK-LABEL: func.func @attn_csa_flash_dynamic
// CHECK: indices %{{.*}} : tensor<4x?x?xi64> window 128 : tensor<4x?x64x512xbf16>, tensor<4x?x512xbf16>, !v4.window_ring<batch = 4, slots = 128, dim = 512, elementType = bf16>, tensor<64xf32>, tensor<4xi64> -> tensor<4x?x64x512xbf16>
func.func @attn_csa_flash_dynamic(%q: tensor<4x?x64x512xbf16>, %kv: tensor<4x?x512xbf16>,
    %ring: !v4.window_ring<batch = 4, slots = 128, dim = 512, elementType = bf16>,
    %sink: tensor<64xf32>, %pos: tensor<4xi64>,
    %cache: !v4.kv_cache<batch = 4, capacity = 16384, dim = 512, ratio = 4, elementType = bf16>,
    %topk: tensor<4x?x?xi64>) -> tensor<4x?x64x512xbf16> {
  %o = v4.attn.sparse %q, %kv, %ring, %sink, %pos
      compressed %cache : !v4.kv_cache<batch = 4, capacity = 16384, dim = 512, ratio = 4, elementType = bf16>
      indices %topk : tensor<4x?x?xi64>
      window 128
      : tensor<4x?x64x512xbf16>, tensor<4x?x512xbf16>,
        !v4.window_ring<batch = 4, slots = 128, dim = 512, elementType = bf16>,
        tensor<64xf32>, tensor<4xi64> -> tensor<4x?x64x512xbf16>
  return %o : tensor<4x?x64x512xbf16>
}

// V4-Flash HCA layer (ratio 128, 512 entries at 64K context), dynamic T.
// CHECK-LABEL: func.func @attn_hca_flash_dynamic
// CHECK: v4.attn.sparse %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} compressed %{{.*}} : !v4.kv_cache<batch = 1, capacity = 512, dim = 512, ratio = 128, elementType = bf16> window 128 : tensor<1x?x64x512xbf16>, tensor<1x?x512xbf16>, !v4.window_ring<batch = 1, slots = 128, dim = 512, elementType = bf16>, tensor<64xf32>, tensor<1xi64> -> tensor<1x?x64x512xbf16>
func.func @attn_hca_flash_dynamic(%q: tensor<1x?x64x512xbf16>, %kv: tensor<1x?x512xbf16>,
    %ring: !v4.window_ring<batch = 1, slots = 128, dim = 512, elementType = bf16>,
    %sink: tensor<64xf32>, %pos: tensor<1xi64>,
    %cache: !v4.kv_cache<batch = 1, capacity = 512, dim = 512, ratio = 128, elementType = bf16>)
    -> tensor<1x?x64x512xbf16> {
  %o = v4.attn.sparse %q, %kv, %ring, %sink, %pos
      compressed %cache : !v4.kv_cache<batch = 1, capacity = 512, dim = 512, ratio = 128, elementType = bf16>
      window 128
      : tensor<1x?x64x512xbf16>, tensor<1x?x512xbf16>,
        !v4.window_ring<batch = 1, slots = 128, dim = 512, elementType = bf16>,
        tensor<64xf32>, tensor<1xi64> -> tensor<1x?x64x512xbf16>
  return %o : tensor<1x?x64x512xbf16>
}
