// RUN: v4-opt %s | v4-opt | FileCheck %s
// RUN: v4-opt %s --mlir-print-op-generic | v4-opt | FileCheck %s

// CHECK-LABEL: func.func @state_empty
// CHECK: v4.kv.state_empty : !v4.compressor_state<batch = 2, ratio = 4, dim = 16>
// CHECK: v4.kv.state_empty : !v4.compressor_state<batch = 2, ratio = 8, dim = 16>
func.func @state_empty() -> (!v4.compressor_state<batch = 2, ratio = 4, dim = 16>,
                             !v4.compressor_state<batch = 2, ratio = 8, dim = 16>) {
  %0 = v4.kv.state_empty : !v4.compressor_state<batch = 2, ratio = 4, dim = 16>
  %1 = v4.kv.state_empty : !v4.compressor_state<batch = 2, ratio = 8, dim = 16>
  return %0, %1 : !v4.compressor_state<batch = 2, ratio = 4, dim = 16>, !v4.compressor_state<batch = 2, ratio = 8, dim = 16>
}

// Small overlapping (ratio 4) main compressor: c = 128, ropeDim 64, d = 64.
// CHECK-LABEL: func.func @compress_overlap_small
// CHECK: v4.kv.compress %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} weights(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) rope #v4.rope<ropeDim = 64
// CHECK-SAME: eps 9.9999999999999995E-7 :
// CHECK-SAME: tensor<2x8x64xbf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 128>
// CHECK-SAME: weights(tensor<256x64xf32>, tensor<256x64xf32>, tensor<4x256xf32>, tensor<128xbf16>)
func.func @compress_overlap_small(%x: tensor<2x8x64xbf16>, %wkv: tensor<256x64xf32>,
    %wgate: tensor<256x64xf32>, %ape: tensor<4x256xf32>, %norm: tensor<128xbf16>,
    %cache: !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>,
    %pos: tensor<2xi64>) -> !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16> {
  %s0 = v4.kv.state_empty : !v4.compressor_state<batch = 2, ratio = 4, dim = 128>
  %s1, %c1 = v4.kv.compress %x, %s0, %cache, %pos weights(%wkv, %wgate, %ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0>
      eps 1.0e-6
      : tensor<2x8x64xbf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 128>,
        !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, tensor<2xi64>
      weights(tensor<256x64xf32>, tensor<256x64xf32>, tensor<4x256xf32>, tensor<128xbf16>)
  return %c1 : !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>
}

// Small non-overlapping (ratio 8, as in the T1 oracle) compressor with an f32
// cache and a bf16 ape; decode step (T = 1).
// CHECK-LABEL: func.func @compress_nonoverlap_decode
// CHECK: v4.kv.compress
// CHECK-SAME: !v4.compressor_state<batch = 1, ratio = 8, dim = 64>
// CHECK-SAME: weights(tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<8x64xbf16>, tensor<64xf32>)
func.func @compress_nonoverlap_decode(%x: tensor<1x1x32xbf16>, %wkv: tensor<64x32xbf16>,
    %wgate: tensor<64x32xbf16>, %ape: tensor<8x64xbf16>, %norm: tensor<64xf32>,
    %s0: !v4.compressor_state<batch = 1, ratio = 8, dim = 64>,
    %c0: !v4.kv_cache<batch = 1, capacity = 4, dim = 64, ratio = 8, elementType = f32>,
    %pos: tensor<1xi64>) -> (!v4.compressor_state<batch = 1, ratio = 8, dim = 64>,
                              !v4.kv_cache<batch = 1, capacity = 4, dim = 64, ratio = 8, elementType = f32>) {
  %s1, %c1 = v4.kv.compress %x, %s0, %c0, %pos weights(%wkv, %wgate, %ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0>
      eps 1.0e-6
      : tensor<1x1x32xbf16>, !v4.compressor_state<batch = 1, ratio = 8, dim = 64>,
        !v4.kv_cache<batch = 1, capacity = 4, dim = 64, ratio = 8, elementType = f32>, tensor<1xi64>
      weights(tensor<64x32xbf16>, tensor<64x32xbf16>, tensor<8x64xbf16>, tensor<64xf32>)
  return %s1, %c1 : !v4.compressor_state<batch = 1, ratio = 8, dim = 64>, !v4.kv_cache<batch = 1, capacity = 4, dim = 64, ratio = 8, elementType = f32>
}

// The projected form (v4-decompose-kv-compress): kv and score are the f32
// projections [B, T, coff * c]; indexer compressor (rotate), f32 ape.
// CHECK-LABEL: func.func @compress_projected_rotate
// CHECK: v4.kv.compress_projected %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} weights(%{{.*}}, %{{.*}}) rope #v4.rope<ropeDim = 64
// CHECK-SAME: eps 9.9999999999999995E-7 rotate :
// CHECK-SAME: tensor<1x?x256xf32>, !v4.compressor_state<batch = 1, ratio = 4, dim = 128>
// CHECK-SAME: weights(tensor<4x256xf32>, tensor<128xbf16>)
func.func @compress_projected_rotate(%kv: tensor<1x?x256xf32>, %score: tensor<1x?x256xf32>,
    %ape: tensor<4x256xf32>, %norm: tensor<128xbf16>,
    %s0: !v4.compressor_state<batch = 1, ratio = 4, dim = 128>,
    %c0: !v4.kv_cache<batch = 1, capacity = 16, dim = 128, ratio = 4, elementType = bf16>,
    %pos: tensor<1xi64>) -> (!v4.compressor_state<batch = 1, ratio = 4, dim = 128>,
                              !v4.kv_cache<batch = 1, capacity = 16, dim = 128, ratio = 4, elementType = bf16>) {
  %s1, %c1 = v4.kv.compress_projected %kv, %score, %s0, %c0, %pos weights(%ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0>
      eps 1.0e-6 rotate
      : tensor<1x?x256xf32>, !v4.compressor_state<batch = 1, ratio = 4, dim = 128>,
        !v4.kv_cache<batch = 1, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, tensor<1xi64>
      weights(tensor<4x256xf32>, tensor<128xbf16>)
  return %s1, %c1 : !v4.compressor_state<batch = 1, ratio = 4, dim = 128>, !v4.kv_cache<batch = 1, capacity = 16, dim = 128, ratio = 4, elementType = bf16>
}

// V4-Flash CSA layer (S_max = 65536), prefill of a dynamic-T chunk: main
// compressor (c = 512, coff 2) and indexer compressor (c = 128, rotate), then
// the indexer scores against the updated keys and top-512 selection.
// CHECK-LABEL: func.func @flash_csa_prefill
// CHECK: v4.kv.state_empty : !v4.compressor_state<batch = 1, ratio = 4, dim = 512>
// CHECK: v4.kv.compress
// CHECK-SAME: eps 9.9999999999999995E-7 : tensor<1x?x4096xbf16>, !v4.compressor_state<batch = 1, ratio = 4, dim = 512>, !v4.kv_cache<batch = 1, capacity = 16384, dim = 512, ratio = 4, elementType = bf16>, tensor<1xi64>
// CHECK-SAME: weights(tensor<1024x4096xbf16>, tensor<1024x4096xbf16>, tensor<4x1024xf32>, tensor<512xbf16>)
// CHECK: v4.kv.compress
// CHECK-SAME: rotate
// CHECK-SAME: weights(tensor<256x4096xbf16>, tensor<256x4096xbf16>, tensor<4x256xf32>, tensor<128xbf16>)
// CHECK: v4.csa.indexer_scores %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : (tensor<1x?x64x128xbf16>, tensor<1x?x64xbf16>, !v4.kv_cache<batch = 1, capacity = 16384, dim = 128, ratio = 4, elementType = bf16>, tensor<1xi64>) -> tensor<1x?x16384xbf16>
// CHECK: v4.csa.topk %{{.*}}, %{{.*}} k 512 : (tensor<1x?x16384xbf16>, tensor<1xi64>) -> tensor<1x?x512xi64>
func.func @flash_csa_prefill(%x: tensor<1x?x4096xbf16>, %qI: tensor<1x?x64x128xbf16>,
    %wI: tensor<1x?x64xbf16>, %pos: tensor<1xi64>,
    %cache: !v4.kv_cache<batch = 1, capacity = 16384, dim = 512, ratio = 4, elementType = bf16>,
    %keys: !v4.kv_cache<batch = 1, capacity = 16384, dim = 128, ratio = 4, elementType = bf16>)
    -> (!v4.kv_cache<batch = 1, capacity = 16384, dim = 512, ratio = 4, elementType = bf16>, tensor<1x?x512xi64>) {
  %wkv = v4.parameter "layers.2.attn.compressor.wkv.weight" : tensor<1024x4096xbf16>
  %wgate = v4.parameter "layers.2.attn.compressor.wgate.weight" : tensor<1024x4096xbf16>
  %ape = v4.parameter "layers.2.attn.compressor.ape" : tensor<4x1024xf32>
  %norm = v4.parameter "layers.2.attn.compressor.norm.weight" : tensor<512xbf16>
  %iwkv = v4.parameter "layers.2.attn.indexer.compressor.wkv.weight" : tensor<256x4096xbf16>
  %iwgate = v4.parameter "layers.2.attn.indexer.compressor.wgate.weight" : tensor<256x4096xbf16>
  %iape = v4.parameter "layers.2.attn.indexer.compressor.ape" : tensor<4x256xf32>
  %inorm = v4.parameter "layers.2.attn.indexer.compressor.norm.weight" : tensor<128xbf16>
  %s0 = v4.kv.state_empty : !v4.compressor_state<batch = 1, ratio = 4, dim = 512>
  %is0 = v4.kv.state_empty : !v4.compressor_state<batch = 1, ratio = 4, dim = 128>
  %s1, %c1 = v4.kv.compress %x, %s0, %cache, %pos weights(%wkv, %wgate, %ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0>
      eps 1.0e-6
      : tensor<1x?x4096xbf16>, !v4.compressor_state<batch = 1, ratio = 4, dim = 512>,
        !v4.kv_cache<batch = 1, capacity = 16384, dim = 512, ratio = 4, elementType = bf16>, tensor<1xi64>
      weights(tensor<1024x4096xbf16>, tensor<1024x4096xbf16>, tensor<4x1024xf32>, tensor<512xbf16>)
  %is1, %k1 = v4.kv.compress %x, %is0, %keys, %pos weights(%iwkv, %iwgate, %iape, %inorm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0>
      eps 1.0e-6 rotate
      : tensor<1x?x4096xbf16>, !v4.compressor_state<batch = 1, ratio = 4, dim = 128>,
        !v4.kv_cache<batch = 1, capacity = 16384, dim = 128, ratio = 4, elementType = bf16>, tensor<1xi64>
      weights(tensor<256x4096xbf16>, tensor<256x4096xbf16>, tensor<4x256xf32>, tensor<128xbf16>)
  %scores = v4.csa.indexer_scores %qI, %wI, %k1, %pos
      : (tensor<1x?x64x128xbf16>, tensor<1x?x64xbf16>,
         !v4.kv_cache<batch = 1, capacity = 16384, dim = 128, ratio = 4, elementType = bf16>,
         tensor<1xi64>) -> tensor<1x?x16384xbf16>
  %ids = v4.csa.topk %scores, %pos k 512 : (tensor<1x?x16384xbf16>, tensor<1xi64>) -> tensor<1x?x512xi64>
  return %c1, %ids : !v4.kv_cache<batch = 1, capacity = 16384, dim = 512, ratio = 4, elementType = bf16>, tensor<1x?x512xi64>
}

// V4-Flash HCA layer (ratio 128, c = 512, no overlap), decode (T = 1), batch 4.
// CHECK-LABEL: func.func @flash_hca_decode
// CHECK: v4.kv.compress
// CHECK-SAME: tensor<4x1x4096xbf16>, !v4.compressor_state<batch = 4, ratio = 128, dim = 512>
// CHECK-SAME: weights(tensor<512x4096xbf16>, tensor<512x4096xbf16>, tensor<128x512xf32>, tensor<512xbf16>)
func.func @flash_hca_decode(%x: tensor<4x1x4096xbf16>, %pos: tensor<4xi64>,
    %s0: !v4.compressor_state<batch = 4, ratio = 128, dim = 512>,
    %c0: !v4.kv_cache<batch = 4, capacity = 512, dim = 512, ratio = 128, elementType = bf16>)
    -> (!v4.compressor_state<batch = 4, ratio = 128, dim = 512>,
        !v4.kv_cache<batch = 4, capacity = 512, dim = 512, ratio = 128, elementType = bf16>) {
  %wkv = v4.parameter "layers.3.attn.compressor.wkv.weight" : tensor<512x4096xbf16>
  %wgate = v4.parameter "layers.3.attn.compressor.wgate.weight" : tensor<512x4096xbf16>
  %ape = v4.parameter "layers.3.attn.compressor.ape" : tensor<128x512xf32>
  %norm = v4.parameter "layers.3.attn.compressor.norm.weight" : tensor<512xbf16>
  %s1, %c1 = v4.kv.compress %x, %s0, %c0, %pos weights(%wkv, %wgate, %ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0>
      eps 1.0e-6
      : tensor<4x1x4096xbf16>, !v4.compressor_state<batch = 4, ratio = 128, dim = 512>,
        !v4.kv_cache<batch = 4, capacity = 512, dim = 512, ratio = 128, elementType = bf16>, tensor<4xi64>
      weights(tensor<512x4096xbf16>, tensor<512x4096xbf16>, tensor<128x512xf32>, tensor<512xbf16>)
  return %s1, %c1 : !v4.compressor_state<batch = 4, ratio = 128, dim = 512>, !v4.kv_cache<batch = 4, capacity = 512, dim = 512, ratio = 128, elementType = bf16>
}

// V4-Flash indexer decode (T = 1): 64 index heads of 128, f32 scores, top-512.
// CHECK-LABEL: func.func @flash_indexer_decode
// CHECK: v4.csa.indexer_scores
// CHECK-SAME: -> tensor<1x1x16384xf32>
// CHECK: v4.csa.topk %{{.*}}, %{{.*}} k 512 : (tensor<1x1x16384xf32>, tensor<1xi64>) -> tensor<1x1x512xi64>
func.func @flash_indexer_decode(%q: tensor<1x1x64x128xbf16>, %w: tensor<1x1x64xbf16>,
    %keys: !v4.kv_cache<batch = 1, capacity = 16384, dim = 128, ratio = 4, elementType = bf16>,
    %pos: tensor<1xi64>) -> tensor<1x1x512xi64> {
  %s = v4.csa.indexer_scores %q, %w, %keys, %pos
      : (tensor<1x1x64x128xbf16>, tensor<1x1x64xbf16>,
         !v4.kv_cache<batch = 1, capacity = 16384, dim = 128, ratio = 4, elementType = bf16>,
         tensor<1xi64>) -> tensor<1x1x16384xf32>
  %ids = v4.csa.topk %s, %pos k 512 : (tensor<1x1x16384xf32>, tensor<1xi64>) -> tensor<1x1x512xi64>
  return %ids : tensor<1x1x512xi64>
}

// Small indexer (4 heads of 32) and a top-k with k > N and an explicit ratio.
// CHECK-LABEL: func.func @indexer_small
// CHECK: v4.csa.indexer_scores
// CHECK-SAME: -> tensor<2x6x8xbf16>
// CHECK: v4.csa.topk %{{.*}}, %{{.*}} k 16 :
// CHECK: v4.csa.topk %{{.*}}, %{{.*}} k 3 ratio 8 :
func.func @indexer_small(%q: tensor<2x6x4x32xbf16>, %w: tensor<2x6x4xbf16>,
    %keys: !v4.kv_cache<batch = 2, capacity = 8, dim = 32, ratio = 4, elementType = f32>,
    %pos: tensor<2xi64>) -> (tensor<2x6x16xi64>, tensor<2x6x3xi64>) {
  %s = v4.csa.indexer_scores %q, %w, %keys, %pos
      : (tensor<2x6x4x32xbf16>, tensor<2x6x4xbf16>,
         !v4.kv_cache<batch = 2, capacity = 8, dim = 32, ratio = 4, elementType = f32>,
         tensor<2xi64>) -> tensor<2x6x8xbf16>
  %a = v4.csa.topk %s, %pos k 16 ratio 4 : (tensor<2x6x8xbf16>, tensor<2xi64>) -> tensor<2x6x16xi64>
  %b = v4.csa.topk %s, %pos k 3 ratio 8 : (tensor<2x6x8xbf16>, tensor<2xi64>) -> tensor<2x6x3xi64>
  return %a, %b : tensor<2x6x16xi64>, tensor<2x6x3xi64>
}
