// Layer 3 of T1: CSA with the lightning indexer and a score-routed MoE,
// with both mHC sites.
// A complete block that verifies (V4-SPEC 4.3, 5, 6).
// RUN: v4-opt %s | v4-opt | FileCheck %s
// RUN: v4-opt %s --mlir-print-op-generic | v4-opt | FileCheck %s

// CHECK-LABEL: func.func @layer3_csa_score
// CHECK: v4.mhc.pre
// CHECK: v4.csa.indexer_scores
// CHECK: v4.csa.topk
// CHECK: v4.attn.sparse {{.*}} indices
// CHECK: v4.moe.gate {{.*}} bias
// CHECK: v4.moe.experts
// CHECK: v4.mhc.post
func.func @layer3_csa_score(%x: tensor<2x?x4x64xbf16>, %ids: tensor<2x?xi64>, %pos: tensor<2xi64>, %positions: tensor<2x?xi64>, %ring: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %kvState: !v4.compressor_state<batch = 2, ratio = 4, dim = 72>, %kvCache: !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>, %idxState: !v4.compressor_state<batch = 2, ratio = 4, dim = 32>, %idxCache: !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>)
    -> (tensor<2x?x4x64xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 72>, !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 32>, !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>) {
  %c1 = arith.constant 1 : index
  %T = tensor.dim %x, %c1 : tensor<2x?x4x64xbf16>

  // ---- attention site: mHC pre (V4-SPEC 4.1-4.3) ----
  %hc_attn_fn = v4.parameter "layers.3.hc_attn_fn" : tensor<24x256xf32>
  %hc_attn_base = v4.parameter "layers.3.hc_attn_base" : tensor<24xf32>
  %hc_attn_scale = v4.parameter "layers.3.hc_attn_scale" : tensor<3xf32>
  %y, %post, %comb = v4.mhc.pre %x, %hc_attn_fn, %hc_attn_base, %hc_attn_scale {sinkhornIters = 20 : i64} : (tensor<2x?x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>) -> (tensor<2x?x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>)
  %attn_norm = v4.parameter "layers.3.attn_norm.weight" : tensor<64xbf16>
  %xn = v4.rms_norm %y, %attn_norm eps 1.0e-6 : tensor<2x?x64xbf16>, tensor<64xbf16>

  // ---- q path (V4-SPEC 5.1) ----
  %wq_a = v4.parameter "layers.3.attn.wq_a.weight" : tensor<32x64xf8E4M3FN>
  %wq_a_s = v4.parameter "layers.3.attn.wq_a.scale" : tensor<1x1xf8E8M0FNU>
  %qa = v4.linear %xn, %wq_a scale %wq_a_s : tensor<2x?x64xbf16>, tensor<32x64xf8E4M3FN>, tensor<1x1xf8E8M0FNU> -> tensor<2x?x32xbf16>
  %q_norm = v4.parameter "layers.3.attn.q_norm.weight" : tensor<32xbf16>
  %qr = v4.rms_norm %qa, %q_norm eps 1.0e-6 : tensor<2x?x32xbf16>, tensor<32xbf16>
  %wq_b = v4.parameter "layers.3.attn.wq_b.weight" : tensor<288x32xf8E4M3FN>
  %wq_b_s = v4.parameter "layers.3.attn.wq_b.scale" : tensor<3x1xf8E8M0FNU>
  %qflat = v4.linear %qr, %wq_b scale %wq_b_s : tensor<2x?x32xbf16>, tensor<288x32xf8E4M3FN>, tensor<3x1xf8E8M0FNU> -> tensor<2x?x288xbf16>
  %q0 = tensor.expand_shape %qflat [[0], [1], [2, 3]] output_shape [2, %T, 4, 72] : tensor<2x?x288xbf16> into tensor<2x?x4x72xbf16>
  %q1 = v4.rms_norm %q0 eps 1.0e-6 precision input : tensor<2x?x4x72xbf16>
  %q = v4.rope %q1, %positions table(#v4.rope<ropeDim = 8, base = 160000.0, factor = 4.0, originalSeqLen = 16, betaFast = 32.0, betaSlow = 1.0>) : tensor<2x?x4x72xbf16>, tensor<2x?xi64>

  // ---- kv path: norm, RoPE, FP8 fake-quant of the nope dims (V4-SPEC 5.1) ----
  %wkv = v4.parameter "layers.3.attn.wkv.weight" : tensor<72x64xf8E4M3FN>
  %wkv_s = v4.parameter "layers.3.attn.wkv.scale" : tensor<1x1xf8E8M0FNU>
  %kv0 = v4.linear %xn, %wkv scale %wkv_s : tensor<2x?x64xbf16>, tensor<72x64xf8E4M3FN>, tensor<1x1xf8E8M0FNU> -> tensor<2x?x72xbf16>
  %kv_norm = v4.parameter "layers.3.attn.kv_norm.weight" : tensor<72xbf16>
  %kv1 = v4.rms_norm %kv0, %kv_norm eps 1.0e-6 : tensor<2x?x72xbf16>, tensor<72xbf16>
  %kv2 = v4.rope %kv1, %positions table(#v4.rope<ropeDim = 8, base = 160000.0, factor = 4.0, originalSeqLen = 16, betaFast = 32.0, betaSlow = 1.0>) : tensor<2x?x72xbf16>, tensor<2x?xi64>
  %kv = v4.fake_quant %kv2 fp8_e4m3 blockSize 64 extent 64 : tensor<2x?x72xbf16>

  // ---- lightning indexer (V4-SPEC 5.5) ----
  %iwq_b = v4.parameter "layers.3.attn.indexer.wq_b.weight" : tensor<128x32xf8E4M3FN>
  %iwq_b_s = v4.parameter "layers.3.attn.indexer.wq_b.scale" : tensor<1x1xf8E8M0FNU>
  %qi0 = v4.linear %qr, %iwq_b scale %iwq_b_s : tensor<2x?x32xbf16>, tensor<128x32xf8E4M3FN>, tensor<1x1xf8E8M0FNU> -> tensor<2x?x128xbf16>
  %qi1 = tensor.expand_shape %qi0 [[0], [1], [2, 3]] output_shape [2, %T, 4, 32] : tensor<2x?x128xbf16> into tensor<2x?x4x32xbf16>
  %qi2 = v4.rope %qi1, %positions table(#v4.rope<ropeDim = 8, base = 160000.0, factor = 4.0, originalSeqLen = 16, betaFast = 32.0, betaSlow = 1.0>) : tensor<2x?x4x32xbf16>, tensor<2x?xi64>
  %qi3 = v4.hadamard %qi2 : tensor<2x?x4x32xbf16>
  %qi = v4.fake_quant %qi3 fp4_e2m1 blockSize 32 : tensor<2x?x4x32xbf16>
  %iweights = v4.parameter "layers.3.attn.indexer.weights_proj.weight" : tensor<4x64xbf16>
  %iw = v4.linear %xn, %iweights : tensor<2x?x64xbf16>, tensor<4x64xbf16> -> tensor<2x?x4xbf16>
  %ic_wkv = v4.parameter "layers.3.attn.indexer.compressor.wkv.weight" : tensor<64x64xbf16>
  %ic_wgate = v4.parameter "layers.3.attn.indexer.compressor.wgate.weight" : tensor<64x64xbf16>
  %ic_ape = v4.parameter "layers.3.attn.indexer.compressor.ape" : tensor<4x64xf32>
  %ic_norm = v4.parameter "layers.3.attn.indexer.compressor.norm.weight" : tensor<32xbf16>
  %idxState1, %idxCache1 = v4.kv.compress %xn, %idxState, %idxCache, %pos weights(%ic_wkv, %ic_wgate, %ic_ape, %ic_norm) rope #v4.rope<ropeDim = 8, base = 160000.0, factor = 4.0, originalSeqLen = 16, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6 rotate : tensor<2x?x64xbf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 32>, !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>, tensor<2xi64> weights(tensor<64x64xbf16>, tensor<64x64xbf16>, tensor<4x64xf32>, tensor<32xbf16>)
  %scores = v4.csa.indexer_scores %qi, %iw, %idxCache1, %pos : (tensor<2x?x4x32xbf16>, tensor<2x?x4xbf16>, !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>, tensor<2xi64>) -> tensor<2x?x16xf32>
  %topk = v4.csa.topk %scores, %pos k 8 : (tensor<2x?x16xf32>, tensor<2xi64>) -> tensor<2x?x8xi64>

  // ---- main KV compressor, ratio 4 (V4-SPEC 5.3) ----
  %c_wkv = v4.parameter "layers.3.attn.compressor.wkv.weight" : tensor<144x64xbf16>
  %c_wgate = v4.parameter "layers.3.attn.compressor.wgate.weight" : tensor<144x64xbf16>
  %c_ape = v4.parameter "layers.3.attn.compressor.ape" : tensor<4x144xf32>
  %c_norm = v4.parameter "layers.3.attn.compressor.norm.weight" : tensor<72xbf16>
  %kvState1, %kvCache1 = v4.kv.compress %xn, %kvState, %kvCache, %pos weights(%c_wkv, %c_wgate, %c_ape, %c_norm) rope #v4.rope<ropeDim = 8, base = 160000.0, factor = 4.0, originalSeqLen = 16, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6 : tensor<2x?x64xbf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 72>, !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>, tensor<2xi64> weights(tensor<144x64xbf16>, tensor<144x64xbf16>, tensor<4x144xf32>, tensor<72xbf16>)

  // ---- sink attention over window + compressed (V4-SPEC 5.6) ----
  %sink = v4.parameter "layers.3.attn.attn_sink" : tensor<4xf32>
  %o0 = v4.attn.sparse %q, %kv, %ring, %sink, %pos compressed %kvCache1 : !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16> indices %topk : tensor<2x?x8xi64> window 8 : tensor<2x?x4x72xbf16>, tensor<2x?x72xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, tensor<4xf32>, tensor<2xi64> -> tensor<2x?x4x72xbf16>
  %ring1 = v4.ring.write %kv into %ring at %pos : tensor<2x?x72xbf16>, tensor<2xi64> -> !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>

  // ---- inverse RoPE and grouped output projection (V4-SPEC 5.7) ----
  %o1 = v4.rope %o0, %positions table(#v4.rope<ropeDim = 8, base = 160000.0, factor = 4.0, originalSeqLen = 16, betaFast = 32.0, betaSlow = 1.0>) inverse : tensor<2x?x4x72xbf16>, tensor<2x?xi64>
  %o2 = tensor.collapse_shape %o1 [[0], [1], [2, 3]] : tensor<2x?x4x72xbf16> into tensor<2x?x288xbf16>
  %o3 = tensor.expand_shape %o2 [[0], [1], [2, 3]] output_shape [2, %T, 2, 144] : tensor<2x?x288xbf16> into tensor<2x?x2x144xbf16>
  %wo_a = v4.parameter "layers.3.attn.wo_a.weight" : tensor<32x144xf8E4M3FN>
  %wo_a_s = v4.parameter "layers.3.attn.wo_a.scale" : tensor<1x2xf8E8M0FNU>
  %u0 = v4.grouped_linear %o3, %wo_a scale %wo_a_s : tensor<2x?x2x144xbf16>, tensor<32x144xf8E4M3FN>, tensor<1x2xf8E8M0FNU> -> tensor<2x?x2x16xbf16>
  %u = tensor.collapse_shape %u0 [[0], [1], [2, 3]] : tensor<2x?x2x16xbf16> into tensor<2x?x32xbf16>
  %wo_b = v4.parameter "layers.3.attn.wo_b.weight" : tensor<64x32xf8E4M3FN>
  %wo_b_s = v4.parameter "layers.3.attn.wo_b.scale" : tensor<1x1xf8E8M0FNU>
  %attn = v4.linear %u, %wo_b scale %wo_b_s : tensor<2x?x32xbf16>, tensor<64x32xf8E4M3FN>, tensor<1x1xf8E8M0FNU> -> tensor<2x?x64xbf16>
  %x1 = v4.mhc.post %attn, %x, %post, %comb : (tensor<2x?x64xbf16>, tensor<2x?x4x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>) -> tensor<2x?x4x64xbf16>

  // ---- FFN site: mHC pre, MoE (V4-SPEC 6) ----
  %hc_ffn_fn = v4.parameter "layers.3.hc_ffn_fn" : tensor<24x256xf32>
  %hc_ffn_base = v4.parameter "layers.3.hc_ffn_base" : tensor<24xf32>
  %hc_ffn_scale = v4.parameter "layers.3.hc_ffn_scale" : tensor<3xf32>
  %fy, %fpost, %fcomb = v4.mhc.pre %x1, %hc_ffn_fn, %hc_ffn_base, %hc_ffn_scale {sinkhornIters = 20 : i64} : (tensor<2x?x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>) -> (tensor<2x?x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>)
  %ffn_norm = v4.parameter "layers.3.ffn_norm.weight" : tensor<64xbf16>
  %fx = v4.rms_norm %fy, %ffn_norm eps 1.0e-6 : tensor<2x?x64xbf16>, tensor<64xbf16>
  %gate = v4.parameter "layers.3.ffn.gate.weight" : tensor<6x64xbf16>
  %gate_bias = v4.parameter "layers.3.ffn.gate.bias" : tensor<6xf32>
  %rw, %idx = v4.moe.gate %fx, %gate bias %gate_bias scoreFunc sqrtsoftplus topK 2 routeScale 1.5 : tensor<2x?x64xbf16>, tensor<6x64xbf16>, tensor<6xf32> -> tensor<2x?x2xf32>, tensor<2x?x2xi64>
  %e_w1 = v4.parameter_stack "layers.3.ffn.experts.{}.w1.weight" count 6 : tensor<6x32x64xf4E2M1FN>
  %e_w1_s = v4.parameter_stack "layers.3.ffn.experts.{}.w1.scale" count 6 : tensor<6x32x2xf8E8M0FNU>
  %e_w3 = v4.parameter_stack "layers.3.ffn.experts.{}.w3.weight" count 6 : tensor<6x32x64xf4E2M1FN>
  %e_w3_s = v4.parameter_stack "layers.3.ffn.experts.{}.w3.scale" count 6 : tensor<6x32x2xf8E8M0FNU>
  %e_w2 = v4.parameter_stack "layers.3.ffn.experts.{}.w2.weight" count 6 : tensor<6x64x32xf4E2M1FN>
  %e_w2_s = v4.parameter_stack "layers.3.ffn.experts.{}.w2.scale" count 6 : tensor<6x64x1xf8E8M0FNU>
  %routed = v4.moe.experts %fx, %rw, %idx w1 %e_w1 scale %e_w1_s, w3 %e_w3 scale %e_w3_s, w2 %e_w2 scale %e_w2_s swigluLimit 0.7 : (tensor<2x?x64xbf16>, tensor<2x?x2xf32>, tensor<2x?x2xi64>, tensor<6x32x64xf4E2M1FN>, tensor<6x32x64xf4E2M1FN>, tensor<6x64x32xf4E2M1FN>, tensor<6x32x2xf8E8M0FNU>, tensor<6x32x2xf8E8M0FNU>, tensor<6x64x1xf8E8M0FNU>) -> tensor<2x?x2x64xbf16>
  %s_w1 = v4.parameter "layers.3.ffn.shared_experts.w1.weight" : tensor<32x64xf8E4M3FN>
  %s_w1_s = v4.parameter "layers.3.ffn.shared_experts.w1.scale" : tensor<1x1xf8E8M0FNU>
  %s_w3 = v4.parameter "layers.3.ffn.shared_experts.w3.weight" : tensor<32x64xf8E4M3FN>
  %s_w3_s = v4.parameter "layers.3.ffn.shared_experts.w3.scale" : tensor<1x1xf8E8M0FNU>
  %s_w2 = v4.parameter "layers.3.ffn.shared_experts.w2.weight" : tensor<64x32xf8E4M3FN>
  %s_w2_s = v4.parameter "layers.3.ffn.shared_experts.w2.scale" : tensor<1x1xf8E8M0FNU>
  %shared = v4.moe.shared_expert %fx w1 %s_w1 scale %s_w1_s, w3 %s_w3 scale %s_w3_s, w2 %s_w2 scale %s_w2_s swigluLimit 0.7 : (tensor<2x?x64xbf16>, tensor<32x64xf8E4M3FN>, tensor<32x64xf8E4M3FN>, tensor<64x32xf8E4M3FN>, tensor<1x1xf8E8M0FNU>, tensor<1x1xf8E8M0FNU>, tensor<1x1xf8E8M0FNU>) -> tensor<2x?x64xbf16>
  %ffn = v4.moe.combine %routed, %shared : tensor<2x?x2x64xbf16>, tensor<2x?x64xbf16> -> tensor<2x?x64xbf16>
  %x2 = v4.mhc.post %ffn, %x1, %fpost, %fcomb : (tensor<2x?x64xbf16>, tensor<2x?x4x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>) -> tensor<2x?x4x64xbf16>
  return %x2, %ring1, %kvState1, %kvCache1, %idxState1, %idxCache1 : tensor<2x?x4x64xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 72>, !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 32>, !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>
}
