// The tiny T1 model (models/tiny-v4-t1.config.json, V4-SPEC 11.1) written out
// in the v4 dialect: every layer kind of the V4 family in one small module.
//
//   layer 0  SWA (window 8)                        hash-routed MoE
//   layer 1  CSA (4:1 overlap + indexer, top-8)    hash-routed MoE
//   layer 2  HCA-style non-overlap ratio 8         score-routed MoE
//   layer 3  CSA                                   score-routed MoE
//   layer 4  non-overlap ratio 8                   score-routed MoE
//   mtp.0    SWA MTP block                         score-routed MoE
//
// Sizes: d 64, 4 heads of 72 (64 nope + 8 rope), q_lora 32, 2 output groups of
// rank 16, 6 experts (top-2) of width 32 with FP4 weights, an FP8 shared
// expert, 4 mHC lanes, 4 indexer heads of 32, vocab 97, batch 2, maximum
// context 64 (CSA caches 16 entries, ratio-8 caches 8). Every weight is a
// named checkpoint tensor; @step runs a chunk of any length (prefill, chunked
// prefill or decode) and threads the decode state through.
//
// This file is the input of the README's main command (scripts/run-default-model.sh);
// test/models/tiny-v4-model.test checks it.
func.func @layer0_swa_hash(%x: tensor<2x?x4x64xbf16>, %ids: tensor<2x?xi64>, %pos: tensor<2xi64>, %positions: tensor<2x?xi64>, %ring: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>)
    -> (tensor<2x?x4x64xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>) {
  %c1 = arith.constant 1 : index
  %T = tensor.dim %x, %c1 : tensor<2x?x4x64xbf16>

  // ---- attention site: mHC pre (V4-SPEC 4.1-4.3) ----
  %hc_attn_fn = v4.parameter "layers.0.hc_attn_fn" : tensor<24x256xf32>
  %hc_attn_base = v4.parameter "layers.0.hc_attn_base" : tensor<24xf32>
  %hc_attn_scale = v4.parameter "layers.0.hc_attn_scale" : tensor<3xf32>
  %y, %post, %comb = v4.mhc.pre %x, %hc_attn_fn, %hc_attn_base, %hc_attn_scale {sinkhornIters = 20 : i64} : (tensor<2x?x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>) -> (tensor<2x?x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>)
  %attn_norm = v4.parameter "layers.0.attn_norm.weight" : tensor<64xbf16>
  %xn = v4.rms_norm %y, %attn_norm eps 1.0e-6 : tensor<2x?x64xbf16>, tensor<64xbf16>

  // ---- q path (V4-SPEC 5.1) ----
  %wq_a = v4.parameter "layers.0.attn.wq_a.weight" : tensor<32x64xf8E4M3FN>
  %wq_a_s = v4.parameter "layers.0.attn.wq_a.scale" : tensor<1x1xf8E8M0FNU>
  %qa = v4.linear %xn, %wq_a scale %wq_a_s : tensor<2x?x64xbf16>, tensor<32x64xf8E4M3FN>, tensor<1x1xf8E8M0FNU> -> tensor<2x?x32xbf16>
  %q_norm = v4.parameter "layers.0.attn.q_norm.weight" : tensor<32xbf16>
  %qr = v4.rms_norm %qa, %q_norm eps 1.0e-6 : tensor<2x?x32xbf16>, tensor<32xbf16>
  %wq_b = v4.parameter "layers.0.attn.wq_b.weight" : tensor<288x32xf8E4M3FN>
  %wq_b_s = v4.parameter "layers.0.attn.wq_b.scale" : tensor<3x1xf8E8M0FNU>
  %qflat = v4.linear %qr, %wq_b scale %wq_b_s : tensor<2x?x32xbf16>, tensor<288x32xf8E4M3FN>, tensor<3x1xf8E8M0FNU> -> tensor<2x?x288xbf16>
  %q0 = tensor.expand_shape %qflat [[0], [1], [2, 3]] output_shape [2, %T, 4, 72] : tensor<2x?x288xbf16> into tensor<2x?x4x72xbf16>
  %q1 = v4.rms_norm %q0 eps 1.0e-6 precision input : tensor<2x?x4x72xbf16>
  %q = v4.rope %q1, %positions table(#v4.rope<ropeDim = 8, base = 10000.0, factor = 1.0, originalSeqLen = 0, betaFast = 32.0, betaSlow = 1.0>) : tensor<2x?x4x72xbf16>, tensor<2x?xi64>

  // ---- kv path: norm, RoPE, FP8 fake-quant of the nope dims (V4-SPEC 5.1) ----
  %wkv = v4.parameter "layers.0.attn.wkv.weight" : tensor<72x64xf8E4M3FN>
  %wkv_s = v4.parameter "layers.0.attn.wkv.scale" : tensor<1x1xf8E8M0FNU>
  %kv0 = v4.linear %xn, %wkv scale %wkv_s : tensor<2x?x64xbf16>, tensor<72x64xf8E4M3FN>, tensor<1x1xf8E8M0FNU> -> tensor<2x?x72xbf16>
  %kv_norm = v4.parameter "layers.0.attn.kv_norm.weight" : tensor<72xbf16>
  %kv1 = v4.rms_norm %kv0, %kv_norm eps 1.0e-6 : tensor<2x?x72xbf16>, tensor<72xbf16>
  %kv2 = v4.rope %kv1, %positions table(#v4.rope<ropeDim = 8, base = 10000.0, factor = 1.0, originalSeqLen = 0, betaFast = 32.0, betaSlow = 1.0>) : tensor<2x?x72xbf16>, tensor<2x?xi64>
  %kv = v4.fake_quant %kv2 fp8_e4m3 blockSize 64 extent 64 : tensor<2x?x72xbf16>

  // ---- sink attention over window (V4-SPEC 5.6) ----
  %sink = v4.parameter "layers.0.attn.attn_sink" : tensor<4xf32>
  %o0 = v4.attn.sparse %q, %kv, %ring, %sink, %pos window 8 : tensor<2x?x4x72xbf16>, tensor<2x?x72xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, tensor<4xf32>, tensor<2xi64> -> tensor<2x?x4x72xbf16>
  %ring1 = v4.ring.write %kv into %ring at %pos : tensor<2x?x72xbf16>, tensor<2xi64> -> !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>

  // ---- inverse RoPE and grouped output projection (V4-SPEC 5.7) ----
  %o1 = v4.rope %o0, %positions table(#v4.rope<ropeDim = 8, base = 10000.0, factor = 1.0, originalSeqLen = 0, betaFast = 32.0, betaSlow = 1.0>) inverse : tensor<2x?x4x72xbf16>, tensor<2x?xi64>
  %o2 = tensor.collapse_shape %o1 [[0], [1], [2, 3]] : tensor<2x?x4x72xbf16> into tensor<2x?x288xbf16>
  %o3 = tensor.expand_shape %o2 [[0], [1], [2, 3]] output_shape [2, %T, 2, 144] : tensor<2x?x288xbf16> into tensor<2x?x2x144xbf16>
  %wo_a = v4.parameter "layers.0.attn.wo_a.weight" : tensor<32x144xf8E4M3FN>
  %wo_a_s = v4.parameter "layers.0.attn.wo_a.scale" : tensor<1x2xf8E8M0FNU>
  %u0 = v4.grouped_linear %o3, %wo_a scale %wo_a_s : tensor<2x?x2x144xbf16>, tensor<32x144xf8E4M3FN>, tensor<1x2xf8E8M0FNU> -> tensor<2x?x2x16xbf16>
  %u = tensor.collapse_shape %u0 [[0], [1], [2, 3]] : tensor<2x?x2x16xbf16> into tensor<2x?x32xbf16>
  %wo_b = v4.parameter "layers.0.attn.wo_b.weight" : tensor<64x32xf8E4M3FN>
  %wo_b_s = v4.parameter "layers.0.attn.wo_b.scale" : tensor<1x1xf8E8M0FNU>
  %attn = v4.linear %u, %wo_b scale %wo_b_s : tensor<2x?x32xbf16>, tensor<64x32xf8E4M3FN>, tensor<1x1xf8E8M0FNU> -> tensor<2x?x64xbf16>
  %x1 = v4.mhc.post %attn, %x, %post, %comb : (tensor<2x?x64xbf16>, tensor<2x?x4x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>) -> tensor<2x?x4x64xbf16>

  // ---- FFN site: mHC pre, MoE (V4-SPEC 6) ----
  %hc_ffn_fn = v4.parameter "layers.0.hc_ffn_fn" : tensor<24x256xf32>
  %hc_ffn_base = v4.parameter "layers.0.hc_ffn_base" : tensor<24xf32>
  %hc_ffn_scale = v4.parameter "layers.0.hc_ffn_scale" : tensor<3xf32>
  %fy, %fpost, %fcomb = v4.mhc.pre %x1, %hc_ffn_fn, %hc_ffn_base, %hc_ffn_scale {sinkhornIters = 20 : i64} : (tensor<2x?x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>) -> (tensor<2x?x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>)
  %ffn_norm = v4.parameter "layers.0.ffn_norm.weight" : tensor<64xbf16>
  %fx = v4.rms_norm %fy, %ffn_norm eps 1.0e-6 : tensor<2x?x64xbf16>, tensor<64xbf16>
  %gate = v4.parameter "layers.0.ffn.gate.weight" : tensor<6x64xbf16>
  %tid2eid = v4.parameter "layers.0.ffn.gate.tid2eid" : tensor<97x2xi64>
  %rw, %idx = v4.moe.hash_gate %fx, %gate, %ids, %tid2eid scoreFunc sqrtsoftplus routeScale 1.5 : tensor<2x?x64xbf16>, tensor<6x64xbf16>, tensor<2x?xi64>, tensor<97x2xi64> -> tensor<2x?x2xf32>, tensor<2x?x2xi64>
  %e_w1 = v4.parameter_stack "layers.0.ffn.experts.{}.w1.weight" count 6 : tensor<6x32x64xf4E2M1FN>
  %e_w1_s = v4.parameter_stack "layers.0.ffn.experts.{}.w1.scale" count 6 : tensor<6x32x2xf8E8M0FNU>
  %e_w3 = v4.parameter_stack "layers.0.ffn.experts.{}.w3.weight" count 6 : tensor<6x32x64xf4E2M1FN>
  %e_w3_s = v4.parameter_stack "layers.0.ffn.experts.{}.w3.scale" count 6 : tensor<6x32x2xf8E8M0FNU>
  %e_w2 = v4.parameter_stack "layers.0.ffn.experts.{}.w2.weight" count 6 : tensor<6x64x32xf4E2M1FN>
  %e_w2_s = v4.parameter_stack "layers.0.ffn.experts.{}.w2.scale" count 6 : tensor<6x64x1xf8E8M0FNU>
  %routed = v4.moe.experts %fx, %rw, %idx w1 %e_w1 scale %e_w1_s, w3 %e_w3 scale %e_w3_s, w2 %e_w2 scale %e_w2_s swigluLimit 0.7 : (tensor<2x?x64xbf16>, tensor<2x?x2xf32>, tensor<2x?x2xi64>, tensor<6x32x64xf4E2M1FN>, tensor<6x32x64xf4E2M1FN>, tensor<6x64x32xf4E2M1FN>, tensor<6x32x2xf8E8M0FNU>, tensor<6x32x2xf8E8M0FNU>, tensor<6x64x1xf8E8M0FNU>) -> tensor<2x?x2x64xbf16>
  %s_w1 = v4.parameter "layers.0.ffn.shared_experts.w1.weight" : tensor<32x64xf8E4M3FN>
  %s_w1_s = v4.parameter "layers.0.ffn.shared_experts.w1.scale" : tensor<1x1xf8E8M0FNU>
  %s_w3 = v4.parameter "layers.0.ffn.shared_experts.w3.weight" : tensor<32x64xf8E4M3FN>
  %s_w3_s = v4.parameter "layers.0.ffn.shared_experts.w3.scale" : tensor<1x1xf8E8M0FNU>
  %s_w2 = v4.parameter "layers.0.ffn.shared_experts.w2.weight" : tensor<64x32xf8E4M3FN>
  %s_w2_s = v4.parameter "layers.0.ffn.shared_experts.w2.scale" : tensor<1x1xf8E8M0FNU>
  %shared = v4.moe.shared_expert %fx w1 %s_w1 scale %s_w1_s, w3 %s_w3 scale %s_w3_s, w2 %s_w2 scale %s_w2_s swigluLimit 0.7 : (tensor<2x?x64xbf16>, tensor<32x64xf8E4M3FN>, tensor<32x64xf8E4M3FN>, tensor<64x32xf8E4M3FN>, tensor<1x1xf8E8M0FNU>, tensor<1x1xf8E8M0FNU>, tensor<1x1xf8E8M0FNU>) -> tensor<2x?x64xbf16>
  %ffn = v4.moe.combine %routed, %shared : tensor<2x?x2x64xbf16>, tensor<2x?x64xbf16> -> tensor<2x?x64xbf16>
  %x2 = v4.mhc.post %ffn, %x1, %fpost, %fcomb : (tensor<2x?x64xbf16>, tensor<2x?x4x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>) -> tensor<2x?x4x64xbf16>
  return %x2, %ring1 : tensor<2x?x4x64xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>
}

func.func @layer1_csa_hash(%x: tensor<2x?x4x64xbf16>, %ids: tensor<2x?xi64>, %pos: tensor<2xi64>, %positions: tensor<2x?xi64>, %ring: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %kvState: !v4.compressor_state<batch = 2, ratio = 4, dim = 72>, %kvCache: !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>, %idxState: !v4.compressor_state<batch = 2, ratio = 4, dim = 32>, %idxCache: !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>)
    -> (tensor<2x?x4x64xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 72>, !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 32>, !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>) {
  %c1 = arith.constant 1 : index
  %T = tensor.dim %x, %c1 : tensor<2x?x4x64xbf16>

  // ---- attention site: mHC pre (V4-SPEC 4.1-4.3) ----
  %hc_attn_fn = v4.parameter "layers.1.hc_attn_fn" : tensor<24x256xf32>
  %hc_attn_base = v4.parameter "layers.1.hc_attn_base" : tensor<24xf32>
  %hc_attn_scale = v4.parameter "layers.1.hc_attn_scale" : tensor<3xf32>
  %y, %post, %comb = v4.mhc.pre %x, %hc_attn_fn, %hc_attn_base, %hc_attn_scale {sinkhornIters = 20 : i64} : (tensor<2x?x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>) -> (tensor<2x?x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>)
  %attn_norm = v4.parameter "layers.1.attn_norm.weight" : tensor<64xbf16>
  %xn = v4.rms_norm %y, %attn_norm eps 1.0e-6 : tensor<2x?x64xbf16>, tensor<64xbf16>

  // ---- q path (V4-SPEC 5.1) ----
  %wq_a = v4.parameter "layers.1.attn.wq_a.weight" : tensor<32x64xf8E4M3FN>
  %wq_a_s = v4.parameter "layers.1.attn.wq_a.scale" : tensor<1x1xf8E8M0FNU>
  %qa = v4.linear %xn, %wq_a scale %wq_a_s : tensor<2x?x64xbf16>, tensor<32x64xf8E4M3FN>, tensor<1x1xf8E8M0FNU> -> tensor<2x?x32xbf16>
  %q_norm = v4.parameter "layers.1.attn.q_norm.weight" : tensor<32xbf16>
  %qr = v4.rms_norm %qa, %q_norm eps 1.0e-6 : tensor<2x?x32xbf16>, tensor<32xbf16>
  %wq_b = v4.parameter "layers.1.attn.wq_b.weight" : tensor<288x32xf8E4M3FN>
  %wq_b_s = v4.parameter "layers.1.attn.wq_b.scale" : tensor<3x1xf8E8M0FNU>
  %qflat = v4.linear %qr, %wq_b scale %wq_b_s : tensor<2x?x32xbf16>, tensor<288x32xf8E4M3FN>, tensor<3x1xf8E8M0FNU> -> tensor<2x?x288xbf16>
  %q0 = tensor.expand_shape %qflat [[0], [1], [2, 3]] output_shape [2, %T, 4, 72] : tensor<2x?x288xbf16> into tensor<2x?x4x72xbf16>
  %q1 = v4.rms_norm %q0 eps 1.0e-6 precision input : tensor<2x?x4x72xbf16>
  %q = v4.rope %q1, %positions table(#v4.rope<ropeDim = 8, base = 160000.0, factor = 4.0, originalSeqLen = 16, betaFast = 32.0, betaSlow = 1.0>) : tensor<2x?x4x72xbf16>, tensor<2x?xi64>

  // ---- kv path: norm, RoPE, FP8 fake-quant of the nope dims (V4-SPEC 5.1) ----
  %wkv = v4.parameter "layers.1.attn.wkv.weight" : tensor<72x64xf8E4M3FN>
  %wkv_s = v4.parameter "layers.1.attn.wkv.scale" : tensor<1x1xf8E8M0FNU>
  %kv0 = v4.linear %xn, %wkv scale %wkv_s : tensor<2x?x64xbf16>, tensor<72x64xf8E4M3FN>, tensor<1x1xf8E8M0FNU> -> tensor<2x?x72xbf16>
  %kv_norm = v4.parameter "layers.1.attn.kv_norm.weight" : tensor<72xbf16>
  %kv1 = v4.rms_norm %kv0, %kv_norm eps 1.0e-6 : tensor<2x?x72xbf16>, tensor<72xbf16>
  %kv2 = v4.rope %kv1, %positions table(#v4.rope<ropeDim = 8, base = 160000.0, factor = 4.0, originalSeqLen = 16, betaFast = 32.0, betaSlow = 1.0>) : tensor<2x?x72xbf16>, tensor<2x?xi64>
  %kv = v4.fake_quant %kv2 fp8_e4m3 blockSize 64 extent 64 : tensor<2x?x72xbf16>

  // ---- lightning indexer (V4-SPEC 5.5) ----
  %iwq_b = v4.parameter "layers.1.attn.indexer.wq_b.weight" : tensor<128x32xf8E4M3FN>
  %iwq_b_s = v4.parameter "layers.1.attn.indexer.wq_b.scale" : tensor<1x1xf8E8M0FNU>
  %qi0 = v4.linear %qr, %iwq_b scale %iwq_b_s : tensor<2x?x32xbf16>, tensor<128x32xf8E4M3FN>, tensor<1x1xf8E8M0FNU> -> tensor<2x?x128xbf16>
  %qi1 = tensor.expand_shape %qi0 [[0], [1], [2, 3]] output_shape [2, %T, 4, 32] : tensor<2x?x128xbf16> into tensor<2x?x4x32xbf16>
  %qi2 = v4.rope %qi1, %positions table(#v4.rope<ropeDim = 8, base = 160000.0, factor = 4.0, originalSeqLen = 16, betaFast = 32.0, betaSlow = 1.0>) : tensor<2x?x4x32xbf16>, tensor<2x?xi64>
  %qi3 = v4.hadamard %qi2 : tensor<2x?x4x32xbf16>
  %qi = v4.fake_quant %qi3 fp4_e2m1 blockSize 32 : tensor<2x?x4x32xbf16>
  %iweights = v4.parameter "layers.1.attn.indexer.weights_proj.weight" : tensor<4x64xbf16>
  %iw = v4.linear %xn, %iweights : tensor<2x?x64xbf16>, tensor<4x64xbf16> -> tensor<2x?x4xbf16>
  %ic_wkv = v4.parameter "layers.1.attn.indexer.compressor.wkv.weight" : tensor<64x64xbf16>
  %ic_wgate = v4.parameter "layers.1.attn.indexer.compressor.wgate.weight" : tensor<64x64xbf16>
  %ic_ape = v4.parameter "layers.1.attn.indexer.compressor.ape" : tensor<4x64xf32>
  %ic_norm = v4.parameter "layers.1.attn.indexer.compressor.norm.weight" : tensor<32xbf16>
  %idxState1, %idxCache1 = v4.kv.compress %xn, %idxState, %idxCache, %pos weights(%ic_wkv, %ic_wgate, %ic_ape, %ic_norm) rope #v4.rope<ropeDim = 8, base = 160000.0, factor = 4.0, originalSeqLen = 16, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6 rotate : tensor<2x?x64xbf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 32>, !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>, tensor<2xi64> weights(tensor<64x64xbf16>, tensor<64x64xbf16>, tensor<4x64xf32>, tensor<32xbf16>)
  %scores = v4.csa.indexer_scores %qi, %iw, %idxCache1, %pos : (tensor<2x?x4x32xbf16>, tensor<2x?x4xbf16>, !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>, tensor<2xi64>) -> tensor<2x?x16xf32>
  %topk = v4.csa.topk %scores, %pos k 8 : (tensor<2x?x16xf32>, tensor<2xi64>) -> tensor<2x?x8xi64>

  // ---- main KV compressor, ratio 4 (V4-SPEC 5.3) ----
  %c_wkv = v4.parameter "layers.1.attn.compressor.wkv.weight" : tensor<144x64xbf16>
  %c_wgate = v4.parameter "layers.1.attn.compressor.wgate.weight" : tensor<144x64xbf16>
  %c_ape = v4.parameter "layers.1.attn.compressor.ape" : tensor<4x144xf32>
  %c_norm = v4.parameter "layers.1.attn.compressor.norm.weight" : tensor<72xbf16>
  %kvState1, %kvCache1 = v4.kv.compress %xn, %kvState, %kvCache, %pos weights(%c_wkv, %c_wgate, %c_ape, %c_norm) rope #v4.rope<ropeDim = 8, base = 160000.0, factor = 4.0, originalSeqLen = 16, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6 : tensor<2x?x64xbf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 72>, !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>, tensor<2xi64> weights(tensor<144x64xbf16>, tensor<144x64xbf16>, tensor<4x144xf32>, tensor<72xbf16>)

  // ---- sink attention over window + compressed (V4-SPEC 5.6) ----
  %sink = v4.parameter "layers.1.attn.attn_sink" : tensor<4xf32>
  %o0 = v4.attn.sparse %q, %kv, %ring, %sink, %pos compressed %kvCache1 : !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16> indices %topk : tensor<2x?x8xi64> window 8 : tensor<2x?x4x72xbf16>, tensor<2x?x72xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, tensor<4xf32>, tensor<2xi64> -> tensor<2x?x4x72xbf16>
  %ring1 = v4.ring.write %kv into %ring at %pos : tensor<2x?x72xbf16>, tensor<2xi64> -> !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>

  // ---- inverse RoPE and grouped output projection (V4-SPEC 5.7) ----
  %o1 = v4.rope %o0, %positions table(#v4.rope<ropeDim = 8, base = 160000.0, factor = 4.0, originalSeqLen = 16, betaFast = 32.0, betaSlow = 1.0>) inverse : tensor<2x?x4x72xbf16>, tensor<2x?xi64>
  %o2 = tensor.collapse_shape %o1 [[0], [1], [2, 3]] : tensor<2x?x4x72xbf16> into tensor<2x?x288xbf16>
  %o3 = tensor.expand_shape %o2 [[0], [1], [2, 3]] output_shape [2, %T, 2, 144] : tensor<2x?x288xbf16> into tensor<2x?x2x144xbf16>
  %wo_a = v4.parameter "layers.1.attn.wo_a.weight" : tensor<32x144xf8E4M3FN>
  %wo_a_s = v4.parameter "layers.1.attn.wo_a.scale" : tensor<1x2xf8E8M0FNU>
  %u0 = v4.grouped_linear %o3, %wo_a scale %wo_a_s : tensor<2x?x2x144xbf16>, tensor<32x144xf8E4M3FN>, tensor<1x2xf8E8M0FNU> -> tensor<2x?x2x16xbf16>
  %u = tensor.collapse_shape %u0 [[0], [1], [2, 3]] : tensor<2x?x2x16xbf16> into tensor<2x?x32xbf16>
  %wo_b = v4.parameter "layers.1.attn.wo_b.weight" : tensor<64x32xf8E4M3FN>
  %wo_b_s = v4.parameter "layers.1.attn.wo_b.scale" : tensor<1x1xf8E8M0FNU>
  %attn = v4.linear %u, %wo_b scale %wo_b_s : tensor<2x?x32xbf16>, tensor<64x32xf8E4M3FN>, tensor<1x1xf8E8M0FNU> -> tensor<2x?x64xbf16>
  %x1 = v4.mhc.post %attn, %x, %post, %comb : (tensor<2x?x64xbf16>, tensor<2x?x4x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>) -> tensor<2x?x4x64xbf16>

  // ---- FFN site: mHC pre, MoE (V4-SPEC 6) ----
  %hc_ffn_fn = v4.parameter "layers.1.hc_ffn_fn" : tensor<24x256xf32>
  %hc_ffn_base = v4.parameter "layers.1.hc_ffn_base" : tensor<24xf32>
  %hc_ffn_scale = v4.parameter "layers.1.hc_ffn_scale" : tensor<3xf32>
  %fy, %fpost, %fcomb = v4.mhc.pre %x1, %hc_ffn_fn, %hc_ffn_base, %hc_ffn_scale {sinkhornIters = 20 : i64} : (tensor<2x?x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>) -> (tensor<2x?x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>)
  %ffn_norm = v4.parameter "layers.1.ffn_norm.weight" : tensor<64xbf16>
  %fx = v4.rms_norm %fy, %ffn_norm eps 1.0e-6 : tensor<2x?x64xbf16>, tensor<64xbf16>
  %gate = v4.parameter "layers.1.ffn.gate.weight" : tensor<6x64xbf16>
  %tid2eid = v4.parameter "layers.1.ffn.gate.tid2eid" : tensor<97x2xi64>
  %rw, %idx = v4.moe.hash_gate %fx, %gate, %ids, %tid2eid scoreFunc sqrtsoftplus routeScale 1.5 : tensor<2x?x64xbf16>, tensor<6x64xbf16>, tensor<2x?xi64>, tensor<97x2xi64> -> tensor<2x?x2xf32>, tensor<2x?x2xi64>
  %e_w1 = v4.parameter_stack "layers.1.ffn.experts.{}.w1.weight" count 6 : tensor<6x32x64xf4E2M1FN>
  %e_w1_s = v4.parameter_stack "layers.1.ffn.experts.{}.w1.scale" count 6 : tensor<6x32x2xf8E8M0FNU>
  %e_w3 = v4.parameter_stack "layers.1.ffn.experts.{}.w3.weight" count 6 : tensor<6x32x64xf4E2M1FN>
  %e_w3_s = v4.parameter_stack "layers.1.ffn.experts.{}.w3.scale" count 6 : tensor<6x32x2xf8E8M0FNU>
  %e_w2 = v4.parameter_stack "layers.1.ffn.experts.{}.w2.weight" count 6 : tensor<6x64x32xf4E2M1FN>
  %e_w2_s = v4.parameter_stack "layers.1.ffn.experts.{}.w2.scale" count 6 : tensor<6x64x1xf8E8M0FNU>
  %routed = v4.moe.experts %fx, %rw, %idx w1 %e_w1 scale %e_w1_s, w3 %e_w3 scale %e_w3_s, w2 %e_w2 scale %e_w2_s swigluLimit 0.7 : (tensor<2x?x64xbf16>, tensor<2x?x2xf32>, tensor<2x?x2xi64>, tensor<6x32x64xf4E2M1FN>, tensor<6x32x64xf4E2M1FN>, tensor<6x64x32xf4E2M1FN>, tensor<6x32x2xf8E8M0FNU>, tensor<6x32x2xf8E8M0FNU>, tensor<6x64x1xf8E8M0FNU>) -> tensor<2x?x2x64xbf16>
  %s_w1 = v4.parameter "layers.1.ffn.shared_experts.w1.weight" : tensor<32x64xf8E4M3FN>
  %s_w1_s = v4.parameter "layers.1.ffn.shared_experts.w1.scale" : tensor<1x1xf8E8M0FNU>
  %s_w3 = v4.parameter "layers.1.ffn.shared_experts.w3.weight" : tensor<32x64xf8E4M3FN>
  %s_w3_s = v4.parameter "layers.1.ffn.shared_experts.w3.scale" : tensor<1x1xf8E8M0FNU>
  %s_w2 = v4.parameter "layers.1.ffn.shared_experts.w2.weight" : tensor<64x32xf8E4M3FN>
  %s_w2_s = v4.parameter "layers.1.ffn.shared_experts.w2.scale" : tensor<1x1xf8E8M0FNU>
  %shared = v4.moe.shared_expert %fx w1 %s_w1 scale %s_w1_s, w3 %s_w3 scale %s_w3_s, w2 %s_w2 scale %s_w2_s swigluLimit 0.7 : (tensor<2x?x64xbf16>, tensor<32x64xf8E4M3FN>, tensor<32x64xf8E4M3FN>, tensor<64x32xf8E4M3FN>, tensor<1x1xf8E8M0FNU>, tensor<1x1xf8E8M0FNU>, tensor<1x1xf8E8M0FNU>) -> tensor<2x?x64xbf16>
  %ffn = v4.moe.combine %routed, %shared : tensor<2x?x2x64xbf16>, tensor<2x?x64xbf16> -> tensor<2x?x64xbf16>
  %x2 = v4.mhc.post %ffn, %x1, %fpost, %fcomb : (tensor<2x?x64xbf16>, tensor<2x?x4x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>) -> tensor<2x?x4x64xbf16>
  return %x2, %ring1, %kvState1, %kvCache1, %idxState1, %idxCache1 : tensor<2x?x4x64xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 72>, !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 32>, !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>
}

func.func @layer2_hca_score(%x: tensor<2x?x4x64xbf16>, %ids: tensor<2x?xi64>, %pos: tensor<2xi64>, %positions: tensor<2x?xi64>, %ring: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %kvState: !v4.compressor_state<batch = 2, ratio = 8, dim = 72>, %kvCache: !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16>)
    -> (tensor<2x?x4x64xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 8, dim = 72>, !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16>) {
  %c1 = arith.constant 1 : index
  %T = tensor.dim %x, %c1 : tensor<2x?x4x64xbf16>

  // ---- attention site: mHC pre (V4-SPEC 4.1-4.3) ----
  %hc_attn_fn = v4.parameter "layers.2.hc_attn_fn" : tensor<24x256xf32>
  %hc_attn_base = v4.parameter "layers.2.hc_attn_base" : tensor<24xf32>
  %hc_attn_scale = v4.parameter "layers.2.hc_attn_scale" : tensor<3xf32>
  %y, %post, %comb = v4.mhc.pre %x, %hc_attn_fn, %hc_attn_base, %hc_attn_scale {sinkhornIters = 20 : i64} : (tensor<2x?x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>) -> (tensor<2x?x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>)
  %attn_norm = v4.parameter "layers.2.attn_norm.weight" : tensor<64xbf16>
  %xn = v4.rms_norm %y, %attn_norm eps 1.0e-6 : tensor<2x?x64xbf16>, tensor<64xbf16>

  // ---- q path (V4-SPEC 5.1) ----
  %wq_a = v4.parameter "layers.2.attn.wq_a.weight" : tensor<32x64xf8E4M3FN>
  %wq_a_s = v4.parameter "layers.2.attn.wq_a.scale" : tensor<1x1xf8E8M0FNU>
  %qa = v4.linear %xn, %wq_a scale %wq_a_s : tensor<2x?x64xbf16>, tensor<32x64xf8E4M3FN>, tensor<1x1xf8E8M0FNU> -> tensor<2x?x32xbf16>
  %q_norm = v4.parameter "layers.2.attn.q_norm.weight" : tensor<32xbf16>
  %qr = v4.rms_norm %qa, %q_norm eps 1.0e-6 : tensor<2x?x32xbf16>, tensor<32xbf16>
  %wq_b = v4.parameter "layers.2.attn.wq_b.weight" : tensor<288x32xf8E4M3FN>
  %wq_b_s = v4.parameter "layers.2.attn.wq_b.scale" : tensor<3x1xf8E8M0FNU>
  %qflat = v4.linear %qr, %wq_b scale %wq_b_s : tensor<2x?x32xbf16>, tensor<288x32xf8E4M3FN>, tensor<3x1xf8E8M0FNU> -> tensor<2x?x288xbf16>
  %q0 = tensor.expand_shape %qflat [[0], [1], [2, 3]] output_shape [2, %T, 4, 72] : tensor<2x?x288xbf16> into tensor<2x?x4x72xbf16>
  %q1 = v4.rms_norm %q0 eps 1.0e-6 precision input : tensor<2x?x4x72xbf16>
  %q = v4.rope %q1, %positions table(#v4.rope<ropeDim = 8, base = 160000.0, factor = 4.0, originalSeqLen = 16, betaFast = 32.0, betaSlow = 1.0>) : tensor<2x?x4x72xbf16>, tensor<2x?xi64>

  // ---- kv path: norm, RoPE, FP8 fake-quant of the nope dims (V4-SPEC 5.1) ----
  %wkv = v4.parameter "layers.2.attn.wkv.weight" : tensor<72x64xf8E4M3FN>
  %wkv_s = v4.parameter "layers.2.attn.wkv.scale" : tensor<1x1xf8E8M0FNU>
  %kv0 = v4.linear %xn, %wkv scale %wkv_s : tensor<2x?x64xbf16>, tensor<72x64xf8E4M3FN>, tensor<1x1xf8E8M0FNU> -> tensor<2x?x72xbf16>
  %kv_norm = v4.parameter "layers.2.attn.kv_norm.weight" : tensor<72xbf16>
  %kv1 = v4.rms_norm %kv0, %kv_norm eps 1.0e-6 : tensor<2x?x72xbf16>, tensor<72xbf16>
  %kv2 = v4.rope %kv1, %positions table(#v4.rope<ropeDim = 8, base = 160000.0, factor = 4.0, originalSeqLen = 16, betaFast = 32.0, betaSlow = 1.0>) : tensor<2x?x72xbf16>, tensor<2x?xi64>
  %kv = v4.fake_quant %kv2 fp8_e4m3 blockSize 64 extent 64 : tensor<2x?x72xbf16>

  // ---- main KV compressor, ratio 8 (V4-SPEC 5.3) ----
  %c_wkv = v4.parameter "layers.2.attn.compressor.wkv.weight" : tensor<72x64xbf16>
  %c_wgate = v4.parameter "layers.2.attn.compressor.wgate.weight" : tensor<72x64xbf16>
  %c_ape = v4.parameter "layers.2.attn.compressor.ape" : tensor<8x72xf32>
  %c_norm = v4.parameter "layers.2.attn.compressor.norm.weight" : tensor<72xbf16>
  %kvState1, %kvCache1 = v4.kv.compress %xn, %kvState, %kvCache, %pos weights(%c_wkv, %c_wgate, %c_ape, %c_norm) rope #v4.rope<ropeDim = 8, base = 160000.0, factor = 4.0, originalSeqLen = 16, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6 : tensor<2x?x64xbf16>, !v4.compressor_state<batch = 2, ratio = 8, dim = 72>, !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16>, tensor<2xi64> weights(tensor<72x64xbf16>, tensor<72x64xbf16>, tensor<8x72xf32>, tensor<72xbf16>)

  // ---- sink attention over window + compressed (V4-SPEC 5.6) ----
  %sink = v4.parameter "layers.2.attn.attn_sink" : tensor<4xf32>
  %o0 = v4.attn.sparse %q, %kv, %ring, %sink, %pos compressed %kvCache1 : !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16> window 8 : tensor<2x?x4x72xbf16>, tensor<2x?x72xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, tensor<4xf32>, tensor<2xi64> -> tensor<2x?x4x72xbf16>
  %ring1 = v4.ring.write %kv into %ring at %pos : tensor<2x?x72xbf16>, tensor<2xi64> -> !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>

  // ---- inverse RoPE and grouped output projection (V4-SPEC 5.7) ----
  %o1 = v4.rope %o0, %positions table(#v4.rope<ropeDim = 8, base = 160000.0, factor = 4.0, originalSeqLen = 16, betaFast = 32.0, betaSlow = 1.0>) inverse : tensor<2x?x4x72xbf16>, tensor<2x?xi64>
  %o2 = tensor.collapse_shape %o1 [[0], [1], [2, 3]] : tensor<2x?x4x72xbf16> into tensor<2x?x288xbf16>
  %o3 = tensor.expand_shape %o2 [[0], [1], [2, 3]] output_shape [2, %T, 2, 144] : tensor<2x?x288xbf16> into tensor<2x?x2x144xbf16>
  %wo_a = v4.parameter "layers.2.attn.wo_a.weight" : tensor<32x144xf8E4M3FN>
  %wo_a_s = v4.parameter "layers.2.attn.wo_a.scale" : tensor<1x2xf8E8M0FNU>
  %u0 = v4.grouped_linear %o3, %wo_a scale %wo_a_s : tensor<2x?x2x144xbf16>, tensor<32x144xf8E4M3FN>, tensor<1x2xf8E8M0FNU> -> tensor<2x?x2x16xbf16>
  %u = tensor.collapse_shape %u0 [[0], [1], [2, 3]] : tensor<2x?x2x16xbf16> into tensor<2x?x32xbf16>
  %wo_b = v4.parameter "layers.2.attn.wo_b.weight" : tensor<64x32xf8E4M3FN>
  %wo_b_s = v4.parameter "layers.2.attn.wo_b.scale" : tensor<1x1xf8E8M0FNU>
  %attn = v4.linear %u, %wo_b scale %wo_b_s : tensor<2x?x32xbf16>, tensor<64x32xf8E4M3FN>, tensor<1x1xf8E8M0FNU> -> tensor<2x?x64xbf16>
  %x1 = v4.mhc.post %attn, %x, %post, %comb : (tensor<2x?x64xbf16>, tensor<2x?x4x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>) -> tensor<2x?x4x64xbf16>

  // ---- FFN site: mHC pre, MoE (V4-SPEC 6) ----
  %hc_ffn_fn = v4.parameter "layers.2.hc_ffn_fn" : tensor<24x256xf32>
  %hc_ffn_base = v4.parameter "layers.2.hc_ffn_base" : tensor<24xf32>
  %hc_ffn_scale = v4.parameter "layers.2.hc_ffn_scale" : tensor<3xf32>
  %fy, %fpost, %fcomb = v4.mhc.pre %x1, %hc_ffn_fn, %hc_ffn_base, %hc_ffn_scale {sinkhornIters = 20 : i64} : (tensor<2x?x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>) -> (tensor<2x?x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>)
  %ffn_norm = v4.parameter "layers.2.ffn_norm.weight" : tensor<64xbf16>
  %fx = v4.rms_norm %fy, %ffn_norm eps 1.0e-6 : tensor<2x?x64xbf16>, tensor<64xbf16>
  %gate = v4.parameter "layers.2.ffn.gate.weight" : tensor<6x64xbf16>
  %gate_bias = v4.parameter "layers.2.ffn.gate.bias" : tensor<6xf32>
  %rw, %idx = v4.moe.gate %fx, %gate bias %gate_bias scoreFunc sqrtsoftplus topK 2 routeScale 1.5 : tensor<2x?x64xbf16>, tensor<6x64xbf16>, tensor<6xf32> -> tensor<2x?x2xf32>, tensor<2x?x2xi64>
  %e_w1 = v4.parameter_stack "layers.2.ffn.experts.{}.w1.weight" count 6 : tensor<6x32x64xf4E2M1FN>
  %e_w1_s = v4.parameter_stack "layers.2.ffn.experts.{}.w1.scale" count 6 : tensor<6x32x2xf8E8M0FNU>
  %e_w3 = v4.parameter_stack "layers.2.ffn.experts.{}.w3.weight" count 6 : tensor<6x32x64xf4E2M1FN>
  %e_w3_s = v4.parameter_stack "layers.2.ffn.experts.{}.w3.scale" count 6 : tensor<6x32x2xf8E8M0FNU>
  %e_w2 = v4.parameter_stack "layers.2.ffn.experts.{}.w2.weight" count 6 : tensor<6x64x32xf4E2M1FN>
  %e_w2_s = v4.parameter_stack "layers.2.ffn.experts.{}.w2.scale" count 6 : tensor<6x64x1xf8E8M0FNU>
  %routed = v4.moe.experts %fx, %rw, %idx w1 %e_w1 scale %e_w1_s, w3 %e_w3 scale %e_w3_s, w2 %e_w2 scale %e_w2_s swigluLimit 0.7 : (tensor<2x?x64xbf16>, tensor<2x?x2xf32>, tensor<2x?x2xi64>, tensor<6x32x64xf4E2M1FN>, tensor<6x32x64xf4E2M1FN>, tensor<6x64x32xf4E2M1FN>, tensor<6x32x2xf8E8M0FNU>, tensor<6x32x2xf8E8M0FNU>, tensor<6x64x1xf8E8M0FNU>) -> tensor<2x?x2x64xbf16>
  %s_w1 = v4.parameter "layers.2.ffn.shared_experts.w1.weight" : tensor<32x64xf8E4M3FN>
  %s_w1_s = v4.parameter "layers.2.ffn.shared_experts.w1.scale" : tensor<1x1xf8E8M0FNU>
  %s_w3 = v4.parameter "layers.2.ffn.shared_experts.w3.weight" : tensor<32x64xf8E4M3FN>
  %s_w3_s = v4.parameter "layers.2.ffn.shared_experts.w3.scale" : tensor<1x1xf8E8M0FNU>
  %s_w2 = v4.parameter "layers.2.ffn.shared_experts.w2.weight" : tensor<64x32xf8E4M3FN>
  %s_w2_s = v4.parameter "layers.2.ffn.shared_experts.w2.scale" : tensor<1x1xf8E8M0FNU>
  %shared = v4.moe.shared_expert %fx w1 %s_w1 scale %s_w1_s, w3 %s_w3 scale %s_w3_s, w2 %s_w2 scale %s_w2_s swigluLimit 0.7 : (tensor<2x?x64xbf16>, tensor<32x64xf8E4M3FN>, tensor<32x64xf8E4M3FN>, tensor<64x32xf8E4M3FN>, tensor<1x1xf8E8M0FNU>, tensor<1x1xf8E8M0FNU>, tensor<1x1xf8E8M0FNU>) -> tensor<2x?x64xbf16>
  %ffn = v4.moe.combine %routed, %shared : tensor<2x?x2x64xbf16>, tensor<2x?x64xbf16> -> tensor<2x?x64xbf16>
  %x2 = v4.mhc.post %ffn, %x1, %fpost, %fcomb : (tensor<2x?x64xbf16>, tensor<2x?x4x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>) -> tensor<2x?x4x64xbf16>
  return %x2, %ring1, %kvState1, %kvCache1 : tensor<2x?x4x64xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 8, dim = 72>, !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16>
}

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

func.func @layer4_hca_score(%x: tensor<2x?x4x64xbf16>, %ids: tensor<2x?xi64>, %pos: tensor<2xi64>, %positions: tensor<2x?xi64>, %ring: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %kvState: !v4.compressor_state<batch = 2, ratio = 8, dim = 72>, %kvCache: !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16>)
    -> (tensor<2x?x4x64xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 8, dim = 72>, !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16>) {
  %c1 = arith.constant 1 : index
  %T = tensor.dim %x, %c1 : tensor<2x?x4x64xbf16>

  // ---- attention site: mHC pre (V4-SPEC 4.1-4.3) ----
  %hc_attn_fn = v4.parameter "layers.4.hc_attn_fn" : tensor<24x256xf32>
  %hc_attn_base = v4.parameter "layers.4.hc_attn_base" : tensor<24xf32>
  %hc_attn_scale = v4.parameter "layers.4.hc_attn_scale" : tensor<3xf32>
  %y, %post, %comb = v4.mhc.pre %x, %hc_attn_fn, %hc_attn_base, %hc_attn_scale {sinkhornIters = 20 : i64} : (tensor<2x?x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>) -> (tensor<2x?x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>)
  %attn_norm = v4.parameter "layers.4.attn_norm.weight" : tensor<64xbf16>
  %xn = v4.rms_norm %y, %attn_norm eps 1.0e-6 : tensor<2x?x64xbf16>, tensor<64xbf16>

  // ---- q path (V4-SPEC 5.1) ----
  %wq_a = v4.parameter "layers.4.attn.wq_a.weight" : tensor<32x64xf8E4M3FN>
  %wq_a_s = v4.parameter "layers.4.attn.wq_a.scale" : tensor<1x1xf8E8M0FNU>
  %qa = v4.linear %xn, %wq_a scale %wq_a_s : tensor<2x?x64xbf16>, tensor<32x64xf8E4M3FN>, tensor<1x1xf8E8M0FNU> -> tensor<2x?x32xbf16>
  %q_norm = v4.parameter "layers.4.attn.q_norm.weight" : tensor<32xbf16>
  %qr = v4.rms_norm %qa, %q_norm eps 1.0e-6 : tensor<2x?x32xbf16>, tensor<32xbf16>
  %wq_b = v4.parameter "layers.4.attn.wq_b.weight" : tensor<288x32xf8E4M3FN>
  %wq_b_s = v4.parameter "layers.4.attn.wq_b.scale" : tensor<3x1xf8E8M0FNU>
  %qflat = v4.linear %qr, %wq_b scale %wq_b_s : tensor<2x?x32xbf16>, tensor<288x32xf8E4M3FN>, tensor<3x1xf8E8M0FNU> -> tensor<2x?x288xbf16>
  %q0 = tensor.expand_shape %qflat [[0], [1], [2, 3]] output_shape [2, %T, 4, 72] : tensor<2x?x288xbf16> into tensor<2x?x4x72xbf16>
  %q1 = v4.rms_norm %q0 eps 1.0e-6 precision input : tensor<2x?x4x72xbf16>
  %q = v4.rope %q1, %positions table(#v4.rope<ropeDim = 8, base = 160000.0, factor = 4.0, originalSeqLen = 16, betaFast = 32.0, betaSlow = 1.0>) : tensor<2x?x4x72xbf16>, tensor<2x?xi64>

  // ---- kv path: norm, RoPE, FP8 fake-quant of the nope dims (V4-SPEC 5.1) ----
  %wkv = v4.parameter "layers.4.attn.wkv.weight" : tensor<72x64xf8E4M3FN>
  %wkv_s = v4.parameter "layers.4.attn.wkv.scale" : tensor<1x1xf8E8M0FNU>
  %kv0 = v4.linear %xn, %wkv scale %wkv_s : tensor<2x?x64xbf16>, tensor<72x64xf8E4M3FN>, tensor<1x1xf8E8M0FNU> -> tensor<2x?x72xbf16>
  %kv_norm = v4.parameter "layers.4.attn.kv_norm.weight" : tensor<72xbf16>
  %kv1 = v4.rms_norm %kv0, %kv_norm eps 1.0e-6 : tensor<2x?x72xbf16>, tensor<72xbf16>
  %kv2 = v4.rope %kv1, %positions table(#v4.rope<ropeDim = 8, base = 160000.0, factor = 4.0, originalSeqLen = 16, betaFast = 32.0, betaSlow = 1.0>) : tensor<2x?x72xbf16>, tensor<2x?xi64>
  %kv = v4.fake_quant %kv2 fp8_e4m3 blockSize 64 extent 64 : tensor<2x?x72xbf16>

  // ---- main KV compressor, ratio 8 (V4-SPEC 5.3) ----
  %c_wkv = v4.parameter "layers.4.attn.compressor.wkv.weight" : tensor<72x64xbf16>
  %c_wgate = v4.parameter "layers.4.attn.compressor.wgate.weight" : tensor<72x64xbf16>
  %c_ape = v4.parameter "layers.4.attn.compressor.ape" : tensor<8x72xf32>
  %c_norm = v4.parameter "layers.4.attn.compressor.norm.weight" : tensor<72xbf16>
  %kvState1, %kvCache1 = v4.kv.compress %xn, %kvState, %kvCache, %pos weights(%c_wkv, %c_wgate, %c_ape, %c_norm) rope #v4.rope<ropeDim = 8, base = 160000.0, factor = 4.0, originalSeqLen = 16, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6 : tensor<2x?x64xbf16>, !v4.compressor_state<batch = 2, ratio = 8, dim = 72>, !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16>, tensor<2xi64> weights(tensor<72x64xbf16>, tensor<72x64xbf16>, tensor<8x72xf32>, tensor<72xbf16>)

  // ---- sink attention over window + compressed (V4-SPEC 5.6) ----
  %sink = v4.parameter "layers.4.attn.attn_sink" : tensor<4xf32>
  %o0 = v4.attn.sparse %q, %kv, %ring, %sink, %pos compressed %kvCache1 : !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16> window 8 : tensor<2x?x4x72xbf16>, tensor<2x?x72xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, tensor<4xf32>, tensor<2xi64> -> tensor<2x?x4x72xbf16>
  %ring1 = v4.ring.write %kv into %ring at %pos : tensor<2x?x72xbf16>, tensor<2xi64> -> !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>

  // ---- inverse RoPE and grouped output projection (V4-SPEC 5.7) ----
  %o1 = v4.rope %o0, %positions table(#v4.rope<ropeDim = 8, base = 160000.0, factor = 4.0, originalSeqLen = 16, betaFast = 32.0, betaSlow = 1.0>) inverse : tensor<2x?x4x72xbf16>, tensor<2x?xi64>
  %o2 = tensor.collapse_shape %o1 [[0], [1], [2, 3]] : tensor<2x?x4x72xbf16> into tensor<2x?x288xbf16>
  %o3 = tensor.expand_shape %o2 [[0], [1], [2, 3]] output_shape [2, %T, 2, 144] : tensor<2x?x288xbf16> into tensor<2x?x2x144xbf16>
  %wo_a = v4.parameter "layers.4.attn.wo_a.weight" : tensor<32x144xf8E4M3FN>
  %wo_a_s = v4.parameter "layers.4.attn.wo_a.scale" : tensor<1x2xf8E8M0FNU>
  %u0 = v4.grouped_linear %o3, %wo_a scale %wo_a_s : tensor<2x?x2x144xbf16>, tensor<32x144xf8E4M3FN>, tensor<1x2xf8E8M0FNU> -> tensor<2x?x2x16xbf16>
  %u = tensor.collapse_shape %u0 [[0], [1], [2, 3]] : tensor<2x?x2x16xbf16> into tensor<2x?x32xbf16>
  %wo_b = v4.parameter "layers.4.attn.wo_b.weight" : tensor<64x32xf8E4M3FN>
  %wo_b_s = v4.parameter "layers.4.attn.wo_b.scale" : tensor<1x1xf8E8M0FNU>
  %attn = v4.linear %u, %wo_b scale %wo_b_s : tensor<2x?x32xbf16>, tensor<64x32xf8E4M3FN>, tensor<1x1xf8E8M0FNU> -> tensor<2x?x64xbf16>
  %x1 = v4.mhc.post %attn, %x, %post, %comb : (tensor<2x?x64xbf16>, tensor<2x?x4x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>) -> tensor<2x?x4x64xbf16>

  // ---- FFN site: mHC pre, MoE (V4-SPEC 6) ----
  %hc_ffn_fn = v4.parameter "layers.4.hc_ffn_fn" : tensor<24x256xf32>
  %hc_ffn_base = v4.parameter "layers.4.hc_ffn_base" : tensor<24xf32>
  %hc_ffn_scale = v4.parameter "layers.4.hc_ffn_scale" : tensor<3xf32>
  %fy, %fpost, %fcomb = v4.mhc.pre %x1, %hc_ffn_fn, %hc_ffn_base, %hc_ffn_scale {sinkhornIters = 20 : i64} : (tensor<2x?x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>) -> (tensor<2x?x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>)
  %ffn_norm = v4.parameter "layers.4.ffn_norm.weight" : tensor<64xbf16>
  %fx = v4.rms_norm %fy, %ffn_norm eps 1.0e-6 : tensor<2x?x64xbf16>, tensor<64xbf16>
  %gate = v4.parameter "layers.4.ffn.gate.weight" : tensor<6x64xbf16>
  %gate_bias = v4.parameter "layers.4.ffn.gate.bias" : tensor<6xf32>
  %rw, %idx = v4.moe.gate %fx, %gate bias %gate_bias scoreFunc sqrtsoftplus topK 2 routeScale 1.5 : tensor<2x?x64xbf16>, tensor<6x64xbf16>, tensor<6xf32> -> tensor<2x?x2xf32>, tensor<2x?x2xi64>
  %e_w1 = v4.parameter_stack "layers.4.ffn.experts.{}.w1.weight" count 6 : tensor<6x32x64xf4E2M1FN>
  %e_w1_s = v4.parameter_stack "layers.4.ffn.experts.{}.w1.scale" count 6 : tensor<6x32x2xf8E8M0FNU>
  %e_w3 = v4.parameter_stack "layers.4.ffn.experts.{}.w3.weight" count 6 : tensor<6x32x64xf4E2M1FN>
  %e_w3_s = v4.parameter_stack "layers.4.ffn.experts.{}.w3.scale" count 6 : tensor<6x32x2xf8E8M0FNU>
  %e_w2 = v4.parameter_stack "layers.4.ffn.experts.{}.w2.weight" count 6 : tensor<6x64x32xf4E2M1FN>
  %e_w2_s = v4.parameter_stack "layers.4.ffn.experts.{}.w2.scale" count 6 : tensor<6x64x1xf8E8M0FNU>
  %routed = v4.moe.experts %fx, %rw, %idx w1 %e_w1 scale %e_w1_s, w3 %e_w3 scale %e_w3_s, w2 %e_w2 scale %e_w2_s swigluLimit 0.7 : (tensor<2x?x64xbf16>, tensor<2x?x2xf32>, tensor<2x?x2xi64>, tensor<6x32x64xf4E2M1FN>, tensor<6x32x64xf4E2M1FN>, tensor<6x64x32xf4E2M1FN>, tensor<6x32x2xf8E8M0FNU>, tensor<6x32x2xf8E8M0FNU>, tensor<6x64x1xf8E8M0FNU>) -> tensor<2x?x2x64xbf16>
  %s_w1 = v4.parameter "layers.4.ffn.shared_experts.w1.weight" : tensor<32x64xf8E4M3FN>
  %s_w1_s = v4.parameter "layers.4.ffn.shared_experts.w1.scale" : tensor<1x1xf8E8M0FNU>
  %s_w3 = v4.parameter "layers.4.ffn.shared_experts.w3.weight" : tensor<32x64xf8E4M3FN>
  %s_w3_s = v4.parameter "layers.4.ffn.shared_experts.w3.scale" : tensor<1x1xf8E8M0FNU>
  %s_w2 = v4.parameter "layers.4.ffn.shared_experts.w2.weight" : tensor<64x32xf8E4M3FN>
  %s_w2_s = v4.parameter "layers.4.ffn.shared_experts.w2.scale" : tensor<1x1xf8E8M0FNU>
  %shared = v4.moe.shared_expert %fx w1 %s_w1 scale %s_w1_s, w3 %s_w3 scale %s_w3_s, w2 %s_w2 scale %s_w2_s swigluLimit 0.7 : (tensor<2x?x64xbf16>, tensor<32x64xf8E4M3FN>, tensor<32x64xf8E4M3FN>, tensor<64x32xf8E4M3FN>, tensor<1x1xf8E8M0FNU>, tensor<1x1xf8E8M0FNU>, tensor<1x1xf8E8M0FNU>) -> tensor<2x?x64xbf16>
  %ffn = v4.moe.combine %routed, %shared : tensor<2x?x2x64xbf16>, tensor<2x?x64xbf16> -> tensor<2x?x64xbf16>
  %x2 = v4.mhc.post %ffn, %x1, %fpost, %fcomb : (tensor<2x?x64xbf16>, tensor<2x?x4x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>) -> tensor<2x?x4x64xbf16>
  return %x2, %ring1, %kvState1, %kvCache1 : tensor<2x?x4x64xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 8, dim = 72>, !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16>
}

func.func @mtp_block(%x: tensor<2x?x4x64xbf16>, %ids: tensor<2x?xi64>, %pos: tensor<2xi64>, %positions: tensor<2x?xi64>, %ring: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>)
    -> (tensor<2x?x4x64xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>) {
  %c1 = arith.constant 1 : index
  %T = tensor.dim %x, %c1 : tensor<2x?x4x64xbf16>

  // ---- attention site: mHC pre (V4-SPEC 4.1-4.3) ----
  %hc_attn_fn = v4.parameter "mtp.0.hc_attn_fn" : tensor<24x256xf32>
  %hc_attn_base = v4.parameter "mtp.0.hc_attn_base" : tensor<24xf32>
  %hc_attn_scale = v4.parameter "mtp.0.hc_attn_scale" : tensor<3xf32>
  %y, %post, %comb = v4.mhc.pre %x, %hc_attn_fn, %hc_attn_base, %hc_attn_scale {sinkhornIters = 20 : i64} : (tensor<2x?x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>) -> (tensor<2x?x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>)
  %attn_norm = v4.parameter "mtp.0.attn_norm.weight" : tensor<64xbf16>
  %xn = v4.rms_norm %y, %attn_norm eps 1.0e-6 : tensor<2x?x64xbf16>, tensor<64xbf16>

  // ---- q path (V4-SPEC 5.1) ----
  %wq_a = v4.parameter "mtp.0.attn.wq_a.weight" : tensor<32x64xf8E4M3FN>
  %wq_a_s = v4.parameter "mtp.0.attn.wq_a.scale" : tensor<1x1xf8E8M0FNU>
  %qa = v4.linear %xn, %wq_a scale %wq_a_s : tensor<2x?x64xbf16>, tensor<32x64xf8E4M3FN>, tensor<1x1xf8E8M0FNU> -> tensor<2x?x32xbf16>
  %q_norm = v4.parameter "mtp.0.attn.q_norm.weight" : tensor<32xbf16>
  %qr = v4.rms_norm %qa, %q_norm eps 1.0e-6 : tensor<2x?x32xbf16>, tensor<32xbf16>
  %wq_b = v4.parameter "mtp.0.attn.wq_b.weight" : tensor<288x32xf8E4M3FN>
  %wq_b_s = v4.parameter "mtp.0.attn.wq_b.scale" : tensor<3x1xf8E8M0FNU>
  %qflat = v4.linear %qr, %wq_b scale %wq_b_s : tensor<2x?x32xbf16>, tensor<288x32xf8E4M3FN>, tensor<3x1xf8E8M0FNU> -> tensor<2x?x288xbf16>
  %q0 = tensor.expand_shape %qflat [[0], [1], [2, 3]] output_shape [2, %T, 4, 72] : tensor<2x?x288xbf16> into tensor<2x?x4x72xbf16>
  %q1 = v4.rms_norm %q0 eps 1.0e-6 precision input : tensor<2x?x4x72xbf16>
  %q = v4.rope %q1, %positions table(#v4.rope<ropeDim = 8, base = 10000.0, factor = 1.0, originalSeqLen = 0, betaFast = 32.0, betaSlow = 1.0>) : tensor<2x?x4x72xbf16>, tensor<2x?xi64>

  // ---- kv path: norm, RoPE, FP8 fake-quant of the nope dims (V4-SPEC 5.1) ----
  %wkv = v4.parameter "mtp.0.attn.wkv.weight" : tensor<72x64xf8E4M3FN>
  %wkv_s = v4.parameter "mtp.0.attn.wkv.scale" : tensor<1x1xf8E8M0FNU>
  %kv0 = v4.linear %xn, %wkv scale %wkv_s : tensor<2x?x64xbf16>, tensor<72x64xf8E4M3FN>, tensor<1x1xf8E8M0FNU> -> tensor<2x?x72xbf16>
  %kv_norm = v4.parameter "mtp.0.attn.kv_norm.weight" : tensor<72xbf16>
  %kv1 = v4.rms_norm %kv0, %kv_norm eps 1.0e-6 : tensor<2x?x72xbf16>, tensor<72xbf16>
  %kv2 = v4.rope %kv1, %positions table(#v4.rope<ropeDim = 8, base = 10000.0, factor = 1.0, originalSeqLen = 0, betaFast = 32.0, betaSlow = 1.0>) : tensor<2x?x72xbf16>, tensor<2x?xi64>
  %kv = v4.fake_quant %kv2 fp8_e4m3 blockSize 64 extent 64 : tensor<2x?x72xbf16>

  // ---- sink attention over window (V4-SPEC 5.6) ----
  %sink = v4.parameter "mtp.0.attn.attn_sink" : tensor<4xf32>
  %o0 = v4.attn.sparse %q, %kv, %ring, %sink, %pos window 8 : tensor<2x?x4x72xbf16>, tensor<2x?x72xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, tensor<4xf32>, tensor<2xi64> -> tensor<2x?x4x72xbf16>
  %ring1 = v4.ring.write %kv into %ring at %pos : tensor<2x?x72xbf16>, tensor<2xi64> -> !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>

  // ---- inverse RoPE and grouped output projection (V4-SPEC 5.7) ----
  %o1 = v4.rope %o0, %positions table(#v4.rope<ropeDim = 8, base = 10000.0, factor = 1.0, originalSeqLen = 0, betaFast = 32.0, betaSlow = 1.0>) inverse : tensor<2x?x4x72xbf16>, tensor<2x?xi64>
  %o2 = tensor.collapse_shape %o1 [[0], [1], [2, 3]] : tensor<2x?x4x72xbf16> into tensor<2x?x288xbf16>
  %o3 = tensor.expand_shape %o2 [[0], [1], [2, 3]] output_shape [2, %T, 2, 144] : tensor<2x?x288xbf16> into tensor<2x?x2x144xbf16>
  %wo_a = v4.parameter "mtp.0.attn.wo_a.weight" : tensor<32x144xf8E4M3FN>
  %wo_a_s = v4.parameter "mtp.0.attn.wo_a.scale" : tensor<1x2xf8E8M0FNU>
  %u0 = v4.grouped_linear %o3, %wo_a scale %wo_a_s : tensor<2x?x2x144xbf16>, tensor<32x144xf8E4M3FN>, tensor<1x2xf8E8M0FNU> -> tensor<2x?x2x16xbf16>
  %u = tensor.collapse_shape %u0 [[0], [1], [2, 3]] : tensor<2x?x2x16xbf16> into tensor<2x?x32xbf16>
  %wo_b = v4.parameter "mtp.0.attn.wo_b.weight" : tensor<64x32xf8E4M3FN>
  %wo_b_s = v4.parameter "mtp.0.attn.wo_b.scale" : tensor<1x1xf8E8M0FNU>
  %attn = v4.linear %u, %wo_b scale %wo_b_s : tensor<2x?x32xbf16>, tensor<64x32xf8E4M3FN>, tensor<1x1xf8E8M0FNU> -> tensor<2x?x64xbf16>
  %x1 = v4.mhc.post %attn, %x, %post, %comb : (tensor<2x?x64xbf16>, tensor<2x?x4x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>) -> tensor<2x?x4x64xbf16>

  // ---- FFN site: mHC pre, MoE (V4-SPEC 6) ----
  %hc_ffn_fn = v4.parameter "mtp.0.hc_ffn_fn" : tensor<24x256xf32>
  %hc_ffn_base = v4.parameter "mtp.0.hc_ffn_base" : tensor<24xf32>
  %hc_ffn_scale = v4.parameter "mtp.0.hc_ffn_scale" : tensor<3xf32>
  %fy, %fpost, %fcomb = v4.mhc.pre %x1, %hc_ffn_fn, %hc_ffn_base, %hc_ffn_scale {sinkhornIters = 20 : i64} : (tensor<2x?x4x64xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>) -> (tensor<2x?x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>)
  %ffn_norm = v4.parameter "mtp.0.ffn_norm.weight" : tensor<64xbf16>
  %fx = v4.rms_norm %fy, %ffn_norm eps 1.0e-6 : tensor<2x?x64xbf16>, tensor<64xbf16>
  %gate = v4.parameter "mtp.0.ffn.gate.weight" : tensor<6x64xbf16>
  %gate_bias = v4.parameter "mtp.0.ffn.gate.bias" : tensor<6xf32>
  %rw, %idx = v4.moe.gate %fx, %gate bias %gate_bias scoreFunc sqrtsoftplus topK 2 routeScale 1.5 : tensor<2x?x64xbf16>, tensor<6x64xbf16>, tensor<6xf32> -> tensor<2x?x2xf32>, tensor<2x?x2xi64>
  %e_w1 = v4.parameter_stack "mtp.0.ffn.experts.{}.w1.weight" count 6 : tensor<6x32x64xf4E2M1FN>
  %e_w1_s = v4.parameter_stack "mtp.0.ffn.experts.{}.w1.scale" count 6 : tensor<6x32x2xf8E8M0FNU>
  %e_w3 = v4.parameter_stack "mtp.0.ffn.experts.{}.w3.weight" count 6 : tensor<6x32x64xf4E2M1FN>
  %e_w3_s = v4.parameter_stack "mtp.0.ffn.experts.{}.w3.scale" count 6 : tensor<6x32x2xf8E8M0FNU>
  %e_w2 = v4.parameter_stack "mtp.0.ffn.experts.{}.w2.weight" count 6 : tensor<6x64x32xf4E2M1FN>
  %e_w2_s = v4.parameter_stack "mtp.0.ffn.experts.{}.w2.scale" count 6 : tensor<6x64x1xf8E8M0FNU>
  %routed = v4.moe.experts %fx, %rw, %idx w1 %e_w1 scale %e_w1_s, w3 %e_w3 scale %e_w3_s, w2 %e_w2 scale %e_w2_s swigluLimit 0.7 : (tensor<2x?x64xbf16>, tensor<2x?x2xf32>, tensor<2x?x2xi64>, tensor<6x32x64xf4E2M1FN>, tensor<6x32x64xf4E2M1FN>, tensor<6x64x32xf4E2M1FN>, tensor<6x32x2xf8E8M0FNU>, tensor<6x32x2xf8E8M0FNU>, tensor<6x64x1xf8E8M0FNU>) -> tensor<2x?x2x64xbf16>
  %s_w1 = v4.parameter "mtp.0.ffn.shared_experts.w1.weight" : tensor<32x64xf8E4M3FN>
  %s_w1_s = v4.parameter "mtp.0.ffn.shared_experts.w1.scale" : tensor<1x1xf8E8M0FNU>
  %s_w3 = v4.parameter "mtp.0.ffn.shared_experts.w3.weight" : tensor<32x64xf8E4M3FN>
  %s_w3_s = v4.parameter "mtp.0.ffn.shared_experts.w3.scale" : tensor<1x1xf8E8M0FNU>
  %s_w2 = v4.parameter "mtp.0.ffn.shared_experts.w2.weight" : tensor<64x32xf8E4M3FN>
  %s_w2_s = v4.parameter "mtp.0.ffn.shared_experts.w2.scale" : tensor<1x1xf8E8M0FNU>
  %shared = v4.moe.shared_expert %fx w1 %s_w1 scale %s_w1_s, w3 %s_w3 scale %s_w3_s, w2 %s_w2 scale %s_w2_s swigluLimit 0.7 : (tensor<2x?x64xbf16>, tensor<32x64xf8E4M3FN>, tensor<32x64xf8E4M3FN>, tensor<64x32xf8E4M3FN>, tensor<1x1xf8E8M0FNU>, tensor<1x1xf8E8M0FNU>, tensor<1x1xf8E8M0FNU>) -> tensor<2x?x64xbf16>
  %ffn = v4.moe.combine %routed, %shared : tensor<2x?x2x64xbf16>, tensor<2x?x64xbf16> -> tensor<2x?x64xbf16>
  %x2 = v4.mhc.post %ffn, %x1, %fpost, %fcomb : (tensor<2x?x64xbf16>, tensor<2x?x4x64xbf16>, tensor<2x?x4xf32>, tensor<2x?x4x4xf32>) -> tensor<2x?x4x64xbf16>
  return %x2, %ring1 : tensor<2x?x4x64xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>
}
// Fresh decode state for a new batch of sequences (V4-SPEC 9.2.2: compressor
// state reset at sequence start).
func.func @init_state() -> (!v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 72>, !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 32>, !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 8, dim = 72>, !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 72>, !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 32>, !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 8, dim = 72>, !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>) {
  %s0 = v4.ring.empty : !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>
  %s1 = v4.ring.empty : !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>
  %s2 = v4.kv.state_empty : !v4.compressor_state<batch = 2, ratio = 4, dim = 72>
  %s3 = v4.cache.empty : !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>
  %s4 = v4.kv.state_empty : !v4.compressor_state<batch = 2, ratio = 4, dim = 32>
  %s5 = v4.cache.empty : !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>
  %s6 = v4.ring.empty : !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>
  %s7 = v4.kv.state_empty : !v4.compressor_state<batch = 2, ratio = 8, dim = 72>
  %s8 = v4.cache.empty : !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16>
  %s9 = v4.ring.empty : !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>
  %s10 = v4.kv.state_empty : !v4.compressor_state<batch = 2, ratio = 4, dim = 72>
  %s11 = v4.cache.empty : !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>
  %s12 = v4.kv.state_empty : !v4.compressor_state<batch = 2, ratio = 4, dim = 32>
  %s13 = v4.cache.empty : !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>
  %s14 = v4.ring.empty : !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>
  %s15 = v4.kv.state_empty : !v4.compressor_state<batch = 2, ratio = 8, dim = 72>
  %s16 = v4.cache.empty : !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16>
  %s17 = v4.ring.empty : !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>
  return %s0, %s1, %s2, %s3, %s4, %s5, %s6, %s7, %s8, %s9, %s10, %s11, %s12, %s13, %s14, %s15, %s16, %s17 : !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 72>, !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 32>, !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 8, dim = 72>, !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 72>, !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 32>, !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 8, dim = 72>, !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>
}

// One forward call over a chunk of T tokens per sequence at positions
// startPos[b] + t: a prefill (startPos = 0), a later prefill chunk, or a decode
// step (T = 1). Returns the logits of every position of the main model and of
// the MTP block (V4-SPEC 3, 7), and the updated state.
func.func @step(%ids: tensor<2x?xi64>, %nextIds: tensor<2x?xi64>, %pos: tensor<2xi64>, %positions: tensor<2x?xi64>, %st0: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %st1: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %st2: !v4.compressor_state<batch = 2, ratio = 4, dim = 72>, %st3: !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>, %st4: !v4.compressor_state<batch = 2, ratio = 4, dim = 32>, %st5: !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>, %st6: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %st7: !v4.compressor_state<batch = 2, ratio = 8, dim = 72>, %st8: !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16>, %st9: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %st10: !v4.compressor_state<batch = 2, ratio = 4, dim = 72>, %st11: !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>, %st12: !v4.compressor_state<batch = 2, ratio = 4, dim = 32>, %st13: !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>, %st14: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %st15: !v4.compressor_state<batch = 2, ratio = 8, dim = 72>, %st16: !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16>, %st17: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>)
    -> (tensor<2x?x97xf32>, tensor<2x?x97xf32>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 72>, !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 32>, !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 8, dim = 72>, !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 72>, !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 32>, !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 8, dim = 72>, !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>) {
  %embed = v4.parameter "embed.weight" : tensor<97x64xbf16>
  %e = v4.embedding %embed[%ids] : tensor<97x64xbf16>, tensor<2x?xi64> -> tensor<2x?x64xbf16>
  %x0 = v4.mhc.expand %e : tensor<2x?x64xbf16> -> tensor<2x?x4x64xbf16>
  %x1, %l0_0 = func.call @layer0_swa_hash(%x0, %ids, %pos, %positions, %st0) : (tensor<2x?x4x64xbf16>, tensor<2x?xi64>, tensor<2xi64>, tensor<2x?xi64>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>) -> (tensor<2x?x4x64xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>)
  %x2, %l1_0, %l1_1, %l1_2, %l1_3, %l1_4 = func.call @layer1_csa_hash(%x1, %ids, %pos, %positions, %st1, %st2, %st3, %st4, %st5) : (tensor<2x?x4x64xbf16>, tensor<2x?xi64>, tensor<2xi64>, tensor<2x?xi64>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 72>, !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 32>, !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>) -> (tensor<2x?x4x64xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 72>, !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 32>, !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>)
  %x3, %l2_0, %l2_1, %l2_2 = func.call @layer2_hca_score(%x2, %ids, %pos, %positions, %st6, %st7, %st8) : (tensor<2x?x4x64xbf16>, tensor<2x?xi64>, tensor<2xi64>, tensor<2x?xi64>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 8, dim = 72>, !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16>) -> (tensor<2x?x4x64xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 8, dim = 72>, !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16>)
  %x4, %l3_0, %l3_1, %l3_2, %l3_3, %l3_4 = func.call @layer3_csa_score(%x3, %ids, %pos, %positions, %st9, %st10, %st11, %st12, %st13) : (tensor<2x?x4x64xbf16>, tensor<2x?xi64>, tensor<2xi64>, tensor<2x?xi64>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 72>, !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 32>, !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>) -> (tensor<2x?x4x64xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 72>, !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 32>, !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>)
  %x5, %l4_0, %l4_1, %l4_2 = func.call @layer4_hca_score(%x4, %ids, %pos, %positions, %st14, %st15, %st16) : (tensor<2x?x4x64xbf16>, tensor<2x?xi64>, tensor<2xi64>, tensor<2x?xi64>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 8, dim = 72>, !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16>) -> (tensor<2x?x4x64xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 8, dim = 72>, !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16>)

  // Head (V4-SPEC 3 step 4): hc_head, final norm, fp32 logits of the last position.
  %head = v4.parameter "head.weight" : tensor<97x64xbf16>
  %logits_fn = v4.parameter "hc_head_fn" : tensor<4x256xf32>
  %logits_base = v4.parameter "hc_head_base" : tensor<4xf32>
  %logits_scale = v4.parameter "hc_head_scale" : tensor<1xf32>
  %logits_y = v4.mhc.head %x5, %logits_fn, %logits_base, %logits_scale : (tensor<2x?x4x64xbf16>, tensor<4x256xf32>, tensor<4xf32>, tensor<1xf32>) -> tensor<2x?x64xbf16>
  %logits_norm = v4.parameter "norm.weight" : tensor<64xbf16>
  %logits_yn = v4.rms_norm %logits_y, %logits_norm eps 1.0e-6 : tensor<2x?x64xbf16>, tensor<64xbf16>
  %logits = v4.linear %logits_yn, %head : tensor<2x?x64xbf16>, tensor<97x64xbf16> -> tensor<2x?x97xf32>

  // MTP (V4-SPEC 7.1): the next ids' embedding with the main lanes before hc_head.
  %enorm = v4.parameter "mtp.0.enorm.weight" : tensor<64xbf16>
  %hnorm = v4.parameter "mtp.0.hnorm.weight" : tensor<64xbf16>
  %me = v4.embedding %embed[%nextIds] : tensor<97x64xbf16>, tensor<2x?xi64> -> tensor<2x?x64xbf16>
  %men = v4.rms_norm %me, %enorm eps 1.0e-6 : tensor<2x?x64xbf16>, tensor<64xbf16>
  %e_proj = v4.parameter "mtp.0.e_proj.weight" : tensor<64x64xf8E4M3FN>
  %e_proj_s = v4.parameter "mtp.0.e_proj.scale" : tensor<1x1xf8E8M0FNU>
  %mep = v4.linear %men, %e_proj scale %e_proj_s : tensor<2x?x64xbf16>, tensor<64x64xf8E4M3FN>, tensor<1x1xf8E8M0FNU> -> tensor<2x?x64xbf16>
  %mhn = v4.rms_norm %x5, %hnorm eps 1.0e-6 : tensor<2x?x4x64xbf16>, tensor<64xbf16>
  %h_proj = v4.parameter "mtp.0.h_proj.weight" : tensor<64x64xf8E4M3FN>
  %h_proj_s = v4.parameter "mtp.0.h_proj.scale" : tensor<1x1xf8E8M0FNU>
  %mhp = v4.linear %mhn, %h_proj scale %h_proj_s : tensor<2x?x4x64xbf16>, tensor<64x64xf8E4M3FN>, tensor<1x1xf8E8M0FNU> -> tensor<2x?x4x64xbf16>
  %mx0 = v4.mtp.input %mep, %mhp : (tensor<2x?x64xbf16>, tensor<2x?x4x64xbf16>) -> tensor<2x?x4x64xbf16>
  %mx1, %mtpRing = func.call @mtp_block(%mx0, %nextIds, %pos, %positions, %st17) : (tensor<2x?x4x64xbf16>, tensor<2x?xi64>, tensor<2xi64>, tensor<2x?xi64>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>) -> (tensor<2x?x4x64xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>)
  %mtpLogits_fn = v4.parameter "mtp.0.hc_head_fn" : tensor<4x256xf32>
  %mtpLogits_base = v4.parameter "mtp.0.hc_head_base" : tensor<4xf32>
  %mtpLogits_scale = v4.parameter "mtp.0.hc_head_scale" : tensor<1xf32>
  %mtpLogits_y = v4.mhc.head %mx1, %mtpLogits_fn, %mtpLogits_base, %mtpLogits_scale : (tensor<2x?x4x64xbf16>, tensor<4x256xf32>, tensor<4xf32>, tensor<1xf32>) -> tensor<2x?x64xbf16>
  %mtpLogits_norm = v4.parameter "mtp.0.norm.weight" : tensor<64xbf16>
  %mtpLogits_yn = v4.rms_norm %mtpLogits_y, %mtpLogits_norm eps 1.0e-6 : tensor<2x?x64xbf16>, tensor<64xbf16>
  %mtpLogits = v4.linear %mtpLogits_yn, %head : tensor<2x?x64xbf16>, tensor<97x64xbf16> -> tensor<2x?x97xf32>
  return %logits, %mtpLogits, %l0_0, %l1_0, %l1_1, %l1_2, %l1_3, %l1_4, %l2_0, %l2_1, %l2_2, %l3_0, %l3_1, %l3_2, %l3_3, %l3_4, %l4_0, %l4_1, %l4_2, %mtpRing : tensor<2x?x97xf32>, tensor<2x?x97xf32>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 72>, !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 32>, !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 8, dim = 72>, !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 72>, !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 32>, !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, !v4.compressor_state<batch = 2, ratio = 8, dim = 72>, !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>
}
