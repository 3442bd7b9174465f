// RUN: v4-opt %s | v4-opt | FileCheck %s
// RUN: v4-opt %s --mlir-print-op-generic | v4-opt | FileCheck %s

//===----------------------------------------------------------------------===//
// Parameters (V4-SPEC 1.4)
//===----------------------------------------------------------------------===//

// CHECK-LABEL: func.func @parameters
// CHECK: v4.parameter "layers.0.attn.wq_a.weight" : tensor<1024x4096xf8E4M3FN>
// CHECK: v4.parameter "layers.0.attn.wq_a.scale" : tensor<8x32xf8E8M0FNU>
// CHECK: v4.parameter "layers.0.ffn.gate.tid2eid" : tensor<129280x6xi64>
// CHECK: v4.parameter_stack "layers.3.ffn.experts.{}.w1.weight" count 256 : tensor<256x2048x4096xf4E2M1FN>
// CHECK: v4.parameter_stack "layers.3.ffn.experts.{}.w1.scale" count 256 : tensor<256x2048x128xf8E8M0FNU>
func.func @parameters() {
  %w = v4.parameter "layers.0.attn.wq_a.weight" : tensor<1024x4096xf8E4M3FN>
  %s = v4.parameter "layers.0.attn.wq_a.scale" : tensor<8x32xf8E8M0FNU>
  %t = v4.parameter "layers.0.ffn.gate.tid2eid" : tensor<129280x6xi64>
  %w1 = v4.parameter_stack "layers.3.ffn.experts.{}.w1.weight" count 256
      : tensor<256x2048x4096xf4E2M1FN>
  %s1 = v4.parameter_stack "layers.3.ffn.experts.{}.w1.scale" count 256
      : tensor<256x2048x128xf8E8M0FNU>
  return
}

//===----------------------------------------------------------------------===//
// Last token (V4-SPEC 3, step 4)
//===----------------------------------------------------------------------===//

// CHECK-LABEL: func.func @last_token
// CHECK: v4.last_token %{{.*}} : tensor<2x?x4x64xbf16> -> tensor<2x1x4x64xbf16>
// CHECK: v4.last_token %{{.*}} : tensor<1x8xf32> -> tensor<1x1xf32>
func.func @last_token(%x: tensor<2x?x4x64xbf16>, %y: tensor<1x8xf32>) {
  %a = v4.last_token %x : tensor<2x?x4x64xbf16> -> tensor<2x1x4x64xbf16>
  %b = v4.last_token %y : tensor<1x8xf32> -> tensor<1x1xf32>
  return
}

//===----------------------------------------------------------------------===//
// Embedding (V4-SPEC 3)
//===----------------------------------------------------------------------===//

// CHECK-LABEL: func.func @embedding_small
// CHECK: v4.embedding %{{.*}}[%{{.*}}] : tensor<64x32xbf16>, tensor<2x8xi32> -> tensor<2x8x32xbf16>
// CHECK: v4.embedding %{{.*}}[%{{.*}}] : tensor<64x32xf32>, tensor<2x?xi64> -> tensor<2x?x32xf32>
func.func @embedding_small(%table: tensor<64x32xbf16>, %ids: tensor<2x8xi32>,
                           %table32: tensor<64x32xf32>, %idsDyn: tensor<2x?xi64>) {
  %e = v4.embedding %table[%ids]
      : tensor<64x32xbf16>, tensor<2x8xi32> -> tensor<2x8x32xbf16>
  %f = v4.embedding %table32[%idsDyn]
      : tensor<64x32xf32>, tensor<2x?xi64> -> tensor<2x?x32xf32>
  return
}

// CHECK-LABEL: func.func @embedding_flash
// CHECK: v4.embedding %{{.*}}[%{{.*}}] : tensor<129280x4096xbf16>, tensor<4x?xi64> -> tensor<4x?x4096xbf16>
func.func @embedding_flash(%ids: tensor<4x?xi64>) -> tensor<4x?x4096xbf16> {
  %table = v4.parameter "embed.weight" : tensor<129280x4096xbf16>
  %e = v4.embedding %table[%ids]
      : tensor<129280x4096xbf16>, tensor<4x?xi64> -> tensor<4x?x4096xbf16>
  return %e : tensor<4x?x4096xbf16>
}

//===----------------------------------------------------------------------===//
// RMSNorm (V4-SPEC 2.1, 4.1, 5.1)
//===----------------------------------------------------------------------===//

// CHECK-LABEL: func.func @rms_norm_small
// CHECK: v4.rms_norm %{{.*}}, %{{.*}} eps 9.9999999999999995E-7 : tensor<2x8x32xbf16>, tensor<32xbf16>
// CHECK: v4.rms_norm %{{.*}}, %{{.*}} eps 9.9999999999999995E-7 : tensor<2x8x32xf32>, tensor<32xf32>
// CHECK: v4.rms_norm %{{.*}} eps 9.9999999999999995E-7 precision input : tensor<2x8x4x16xbf16>
// CHECK: v4.rms_norm %{{.*}} eps 9.9999999999999995E-7 reduceRank 2 : tensor<2x8x4x32xf32>
// CHECK: v4.rms_norm %{{.*}}, %{{.*}} eps 1.000000e-05 reduceRank 2 : tensor<2x8x4x32xf16>, tensor<4x32xf16>
func.func @rms_norm_small(%x: tensor<2x8x32xbf16>, %w: tensor<32xbf16>,
                          %x32: tensor<2x8x32xf32>, %w32: tensor<32xf32>,
                          %q: tensor<2x8x4x16xbf16>,
                          %lanes: tensor<2x8x4x32xf32>,
                          %lanes16: tensor<2x8x4x32xf16>, %w2: tensor<4x32xf16>) {
  %a = v4.rms_norm %x, %w eps 1.0e-6 : tensor<2x8x32xbf16>, tensor<32xbf16>
  // precision f32 and reduceRank 1 are the defaults and are elided.
  %b = v4.rms_norm %x32, %w32 eps 1.0e-6 precision f32 reduceRank 1
      : tensor<2x8x32xf32>, tensor<32xf32>
  %c = v4.rms_norm %q eps 1.0e-6 precision input : tensor<2x8x4x16xbf16>
  %d = v4.rms_norm %lanes eps 1.0e-6 reduceRank 2 : tensor<2x8x4x32xf32>
  %e = v4.rms_norm %lanes16, %w2 eps 1.0e-5 reduceRank 2
      : tensor<2x8x4x32xf16>, tensor<4x32xf16>
  return
}

// V4-Flash: attn_norm, per-head q norm over 512 in bf16, mHC joint RMS over
// the 4 x 4096 lanes (fp32), dynamic T.
// CHECK-LABEL: func.func @rms_norm_flash
// CHECK: v4.rms_norm %{{.*}}, %{{.*}} eps 9.9999999999999995E-7 : tensor<1x?x4096xbf16>, tensor<4096xbf16>
// CHECK: v4.rms_norm %{{.*}} eps 9.9999999999999995E-7 precision input : tensor<1x?x64x512xbf16>
// CHECK: v4.rms_norm %{{.*}} eps 9.9999999999999995E-7 reduceRank 2 : tensor<1x?x4x4096xf32>
func.func @rms_norm_flash(%x: tensor<1x?x4096xbf16>, %q: tensor<1x?x64x512xbf16>,
                          %lanes: tensor<1x?x4x4096xf32>) {
  %w = v4.parameter "layers.0.attn_norm.weight" : tensor<4096xbf16>
  %a = v4.rms_norm %x, %w eps 1.0e-6 : tensor<1x?x4096xbf16>, tensor<4096xbf16>
  %b = v4.rms_norm %q eps 1.0e-6 precision input : tensor<1x?x64x512xbf16>
  %c = v4.rms_norm %lanes eps 1.0e-6 reduceRank 2 : tensor<1x?x4x4096xf32>
  return
}

//===----------------------------------------------------------------------===//
// RoPE (V4-SPEC 2.2, 5.1, 5.7)
//===----------------------------------------------------------------------===//

// CHECK-LABEL: func.func @rope_small
// CHECK: v4.rope %{{.*}}, %{{.*}} table(<ropeDim = 8, base = 1.000000e+04 : f64, factor = 1.000000e+00 : f64, originalSeqLen = 0, betaFast = 3.200000e+01 : f64, betaSlow = 1.000000e+00 : f64>) : tensor<2x8x4x32xbf16>, tensor<2x8xi64>
// CHECK: v4.rope %{{.*}}, %{{.*}} table(<ropeDim = 8, {{.*}}>) inverse : tensor<2x8x4x32xbf16>, tensor<2x8xi64>
// CHECK: v4.rope %{{.*}}, %{{.*}} table(<ropeDim = 32, {{.*}}>) : tensor<2x8x32xf32>, tensor<2x8xi32>
// CHECK: v4.rope %{{.*}}, %{{.*}} table(<ropeDim = 8, {{.*}}>) : tensor<2x8x4x32xbf16>, tensor<2x8x4xi64>
func.func @rope_small(%q: tensor<2x8x4x32xbf16>, %pos: tensor<2x8xi64>,
                      %kv: tensor<2x8x32xf32>, %pos32: tensor<2x8xi32>,
                      %posHead: tensor<2x8x4xi64>) {
  %a = v4.rope %q, %pos table(#v4.rope<ropeDim = 8, base = 10000.0,
      factor = 1.0, originalSeqLen = 0, betaFast = 32.0, betaSlow = 1.0>)
      : tensor<2x8x4x32xbf16>, tensor<2x8xi64>
  %b = v4.rope %a, %pos table(#v4.rope<ropeDim = 8, base = 10000.0,
      factor = 1.0, originalSeqLen = 0, betaFast = 32.0, betaSlow = 1.0>)
      inverse : tensor<2x8x4x32xbf16>, tensor<2x8xi64>
  // ropeDim = n: the whole vector is rotated.
  %c = v4.rope %kv, %pos32 table(#v4.rope<ropeDim = 32, base = 10000.0,
      factor = 1.0, originalSeqLen = 0, betaFast = 32.0, betaSlow = 1.0>)
      : tensor<2x8x32xf32>, tensor<2x8xi32>
  // Positions may cover more leading dims (one position per head).
  %d = v4.rope %q, %posHead table(#v4.rope<ropeDim = 8, base = 10000.0,
      factor = 1.0, originalSeqLen = 0, betaFast = 32.0, betaSlow = 1.0>)
      : tensor<2x8x4x32xbf16>, tensor<2x8x4xi64>
  return
}

// V4-Flash CSA layer (YaRN table): q [B, T, 64, 512], kv [B, T, 512],
// indexer q [B, T, 64, 128], inverse RoPE on the output; dynamic T.
// CHECK-LABEL: func.func @rope_flash
// CHECK: v4.rope %{{.*}}, %{{.*}} table(<ropeDim = 64, base = 1.600000e+05 : f64, factor = 1.600000e+01 : f64, originalSeqLen = 65536, betaFast = 3.200000e+01 : f64, betaSlow = 1.000000e+00 : f64>) : tensor<1x?x64x512xbf16>, tensor<1x?xi64>
// CHECK: v4.rope %{{.*}}, %{{.*}} table(<ropeDim = 64, {{.*}}>) : tensor<1x?x512xbf16>, tensor<1x?xi64>
// CHECK: v4.rope %{{.*}}, %{{.*}} table(<ropeDim = 64, {{.*}}>) : tensor<1x?x64x128xbf16>, tensor<1x?xi64>
// CHECK: v4.rope %{{.*}}, %{{.*}} table(<ropeDim = 64, {{.*}}>) inverse : tensor<1x?x64x512xbf16>, tensor<1x?xi64>
func.func @rope_flash(%q: tensor<1x?x64x512xbf16>, %kv: tensor<1x?x512xbf16>,
                      %qi: tensor<1x?x64x128xbf16>, %o: tensor<1x?x64x512xbf16>,
                      %pos: tensor<1x?xi64>) {
  %a = v4.rope %q, %pos table(#v4.rope<ropeDim = 64, base = 160000.0,
      factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0>)
      : tensor<1x?x64x512xbf16>, tensor<1x?xi64>
  %b = v4.rope %kv, %pos table(#v4.rope<ropeDim = 64, base = 160000.0,
      factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0>)
      : tensor<1x?x512xbf16>, tensor<1x?xi64>
  %c = v4.rope %qi, %pos table(#v4.rope<ropeDim = 64, base = 160000.0,
      factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0>)
      : tensor<1x?x64x128xbf16>, tensor<1x?xi64>
  %d = v4.rope %o, %pos table(#v4.rope<ropeDim = 64, base = 160000.0,
      factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0>)
      inverse : tensor<1x?x64x512xbf16>, tensor<1x?xi64>
  return
}

//===----------------------------------------------------------------------===//
// Linear layers (V4-SPEC 2.4)
//===----------------------------------------------------------------------===//

// CHECK-LABEL: func.func @linear_small
// CHECK: v4.linear %{{.*}}, %{{.*}} scale %{{.*}} : tensor<2x8x256xbf16>, tensor<192x256xf8E4M3FN>, tensor<2x2xf8E8M0FNU> -> tensor<2x8x192xbf16>
// CHECK: v4.linear %{{.*}}, %{{.*}} scale %{{.*}} blockSize 64 : tensor<2x8x256xbf16>, tensor<192x256xf8E4M3FN>, tensor<3x4xf8E8M0FNU> -> tensor<2x8x192xbf16>
// CHECK: v4.linear %{{.*}}, %{{.*}} scale %{{.*}} : tensor<16x256xbf16>, tensor<64x256xf4E2M1FN>, tensor<64x8xf8E8M0FNU> -> tensor<16x64xbf16>
// CHECK: v4.linear %{{.*}}, %{{.*}} scale %{{.*}} blockSize 32 : tensor<16x256xbf16>, tensor<64x256xf4E2M1FN>, tensor<64x8xf8E8M0FNU> -> tensor<16x64xbf16>
// CHECK: v4.linear %{{.*}}, %{{.*}} : tensor<2x8x256xbf16>, tensor<16x256xbf16> -> tensor<2x8x16xbf16>
// CHECK: v4.linear %{{.*}}, %{{.*}} : tensor<2x8x256xf32>, tensor<16x256xf32> -> tensor<2x8x16xf32>
// CHECK: v4.linear %{{.*}}, %{{.*}} : tensor<2x8x256xbf16>, tensor<16x256xf32> -> tensor<2x8x16xf32>
// CHECK: v4.linear %{{.*}}, %{{.*}} : tensor<256xf32>, tensor<16x256xbf16> -> tensor<16xf32>
func.func @linear_small(%x: tensor<2x8x256xbf16>, %w8: tensor<192x256xf8E4M3FN>,
                        %s8: tensor<2x2xf8E8M0FNU>, %s8b64: tensor<3x4xf8E8M0FNU>,
                        %xt: tensor<16x256xbf16>, %w4: tensor<64x256xf4E2M1FN>,
                        %s4: tensor<64x8xf8E8M0FNU>, %wb: tensor<16x256xbf16>,
                        %x32: tensor<2x8x256xf32>, %wf: tensor<16x256xf32>,
                        %v32: tensor<256xf32>) {
  // FP8, partial last block along N (192 = 128 + 64): scale [2, 2].
  %a = v4.linear %x, %w8 scale %s8
      : tensor<2x8x256xbf16>, tensor<192x256xf8E4M3FN>, tensor<2x2xf8E8M0FNU>
      -> tensor<2x8x192xbf16>
  %b = v4.linear %x, %w8 scale %s8b64 blockSize 64
      : tensor<2x8x256xbf16>, tensor<192x256xf8E4M3FN>, tensor<3x4xf8E8M0FNU>
      -> tensor<2x8x192xbf16>
  // FP4 expert weight, per-32 scales along K.
  %c = v4.linear %xt, %w4 scale %s4
      : tensor<16x256xbf16>, tensor<64x256xf4E2M1FN>, tensor<64x8xf8E8M0FNU>
      -> tensor<16x64xbf16>
  %d = v4.linear %xt, %w4 scale %s4 blockSize 32
      : tensor<16x256xbf16>, tensor<64x256xf4E2M1FN>, tensor<64x8xf8E8M0FNU>
      -> tensor<16x64xbf16>
  // bf16 / f32 weights: no scale, result dtype as declared.
  %e = v4.linear %x, %wb : tensor<2x8x256xbf16>, tensor<16x256xbf16>
      -> tensor<2x8x16xbf16>
  %f = v4.linear %x32, %wf : tensor<2x8x256xf32>, tensor<16x256xf32>
      -> tensor<2x8x16xf32>
  %g = v4.linear %x, %wf : tensor<2x8x256xbf16>, tensor<16x256xf32>
      -> tensor<2x8x16xf32>
  %h = v4.linear %v32, %wb : tensor<256xf32>, tensor<16x256xbf16>
      -> tensor<16xf32>
  return
}

// V4-Flash: wq_a (FP8 [1024, 4096], scale [8, 32]), a routed expert w1
// (FP4 [2048, 4096], scale [2048, 128]), the MoE gate (bf16 weight, fp32
// matmul) and the head (fp32); dynamic T.
// CHECK-LABEL: func.func @linear_flash
// CHECK: v4.linear %{{.*}}, %{{.*}} scale %{{.*}} : tensor<1x?x4096xbf16>, tensor<1024x4096xf8E4M3FN>, tensor<8x32xf8E8M0FNU> -> tensor<1x?x1024xbf16>
// CHECK: v4.linear %{{.*}}, %{{.*}} scale %{{.*}} : tensor<?x4096xbf16>, tensor<2048x4096xf4E2M1FN>, tensor<2048x128xf8E8M0FNU> -> tensor<?x2048xbf16>
// CHECK: v4.linear %{{.*}}, %{{.*}} : tensor<1x?x4096xf32>, tensor<256x4096xbf16> -> tensor<1x?x256xf32>
// CHECK: v4.linear %{{.*}}, %{{.*}} : tensor<1x4096xf32>, tensor<129280x4096xbf16> -> tensor<1x129280xf32>
func.func @linear_flash(%x: tensor<1x?x4096xbf16>, %tok: tensor<?x4096xbf16>,
                        %x32: tensor<1x?x4096xf32>, %last: tensor<1x4096xf32>)
    -> tensor<1x?x1024xbf16> {
  %wq_a = v4.parameter "layers.0.attn.wq_a.weight" : tensor<1024x4096xf8E4M3FN>
  %wq_a_s = v4.parameter "layers.0.attn.wq_a.scale" : tensor<8x32xf8E8M0FNU>
  %qa = v4.linear %x, %wq_a scale %wq_a_s
      : tensor<1x?x4096xbf16>, tensor<1024x4096xf8E4M3FN>,
        tensor<8x32xf8E8M0FNU> -> tensor<1x?x1024xbf16>
  %w1 = v4.parameter "layers.3.ffn.experts.0.w1.weight"
      : tensor<2048x4096xf4E2M1FN>
  %w1_s = v4.parameter "layers.3.ffn.experts.0.w1.scale"
      : tensor<2048x128xf8E8M0FNU>
  %h = v4.linear %tok, %w1 scale %w1_s
      : tensor<?x4096xbf16>, tensor<2048x4096xf4E2M1FN>,
        tensor<2048x128xf8E8M0FNU> -> tensor<?x2048xbf16>
  %wg = v4.parameter "layers.3.ffn.gate.weight" : tensor<256x4096xbf16>
  %z = v4.linear %x32, %wg : tensor<1x?x4096xf32>, tensor<256x4096xbf16>
      -> tensor<1x?x256xf32>
  %head = v4.parameter "head.weight" : tensor<129280x4096xbf16>
  %logits = v4.linear %last, %head : tensor<1x4096xf32>,
      tensor<129280x4096xbf16> -> tensor<1x129280xf32>
  return %qa : tensor<1x?x1024xbf16>
}

// CHECK-LABEL: func.func @grouped_linear_small
// CHECK: v4.grouped_linear %{{.*}}, %{{.*}} : tensor<2x8x4x64xbf16>, tensor<128x64xbf16> -> tensor<2x8x4x32xbf16>
// CHECK: v4.grouped_linear %{{.*}}, %{{.*}} : tensor<2x8x4x64xf32>, tensor<128x64xf32> -> tensor<2x8x4x32xf32>
// CHECK: v4.grouped_linear %{{.*}}, %{{.*}} scale %{{.*}} blockSize 32 : tensor<2x8x4x64xbf16>, tensor<128x64xf8E4M3FN>, tensor<4x2xf8E8M0FNU> -> tensor<2x8x4x32xbf16>
func.func @grouped_linear_small(%o: tensor<2x8x4x64xbf16>, %w: tensor<128x64xbf16>,
                                %o32: tensor<2x8x4x64xf32>, %w32: tensor<128x64xf32>,
                                %w8: tensor<128x64xf8E4M3FN>,
                                %s8: tensor<4x2xf8E8M0FNU>) {
  %a = v4.grouped_linear %o, %w : tensor<2x8x4x64xbf16>, tensor<128x64xbf16>
      -> tensor<2x8x4x32xbf16>
  %b = v4.grouped_linear %o32, %w32 : tensor<2x8x4x64xf32>, tensor<128x64xf32>
      -> tensor<2x8x4x32xf32>
  %c = v4.grouped_linear %o, %w8 scale %s8 blockSize 32
      : tensor<2x8x4x64xbf16>, tensor<128x64xf8E4M3FN>, tensor<4x2xf8E8M0FNU>
      -> tensor<2x8x4x32xbf16>
  return
}

// V4-Flash wo_a: G = 8 groups of 8 heads x 512 = 4096 inputs, rank 1024;
// as dequantised (bf16) and as shipped (FP8 [8192, 4096], scale [64, 32]).
// CHECK-LABEL: func.func @grouped_linear_flash
// CHECK: v4.grouped_linear %{{.*}}, %{{.*}} : tensor<1x?x8x4096xbf16>, tensor<8192x4096xbf16> -> tensor<1x?x8x1024xbf16>
// CHECK: v4.grouped_linear %{{.*}}, %{{.*}} scale %{{.*}} : tensor<1x?x8x4096xbf16>, tensor<8192x4096xf8E4M3FN>, tensor<64x32xf8E8M0FNU> -> tensor<1x?x8x1024xbf16>
func.func @grouped_linear_flash(%o: tensor<1x?x8x4096xbf16>) {
  %w = v4.parameter "layers.0.attn.wo_a.weight" : tensor<8192x4096xbf16>
  %u = v4.grouped_linear %o, %w : tensor<1x?x8x4096xbf16>,
      tensor<8192x4096xbf16> -> tensor<1x?x8x1024xbf16>
  %w8 = v4.parameter "layers.1.attn.wo_a.weight" : tensor<8192x4096xf8E4M3FN>
  %s8 = v4.parameter "layers.1.attn.wo_a.scale" : tensor<64x32xf8E8M0FNU>
  %v = v4.grouped_linear %o, %w8 scale %s8 : tensor<1x?x8x4096xbf16>,
      tensor<8192x4096xf8E4M3FN>, tensor<64x32xf8E8M0FNU>
      -> tensor<1x?x8x1024xbf16>
  return
}

//===----------------------------------------------------------------------===//
// Fake quantisation (V4-SPEC 2.3) and Hadamard (V4-SPEC 2.5)
//===----------------------------------------------------------------------===//

// CHECK-LABEL: func.func @fake_quant_small
// CHECK: v4.fake_quant %{{.*}} fp8_e4m3 blockSize 8 extent 48 : tensor<2x8x64xbf16>
// CHECK: v4.fake_quant %{{.*}} fp8_e4m3 blockSize 64 : tensor<2x8x64xbf16>
// CHECK: v4.fake_quant %{{.*}} fp4_e2m1 blockSize 32 : tensor<2x8x4x64xbf16>
func.func @fake_quant_small(%kv: tensor<2x8x64xbf16>, %qi: tensor<2x8x4x64xbf16>) {
  %a = v4.fake_quant %kv fp8_e4m3 blockSize 8 extent 48 : tensor<2x8x64xbf16>
  %b = v4.fake_quant %kv fp8_e4m3 blockSize 64 : tensor<2x8x64xbf16>
  %c = v4.fake_quant %qi fp4_e2m1 blockSize 32 : tensor<2x8x4x64xbf16>
  return
}

// V4-Flash: window kv (FP8, 7 blocks of 64 over the 448 nope dims) and the
// indexer q (Hadamard over 128, then FP4 per 32); dynamic T.
// CHECK-LABEL: func.func @fake_quant_flash
// CHECK: v4.fake_quant %{{.*}} fp8_e4m3 blockSize 64 extent 448 : tensor<1x?x512xbf16>
// CHECK: %[[H:.*]] = v4.hadamard %{{.*}} : tensor<1x?x64x128xbf16>
// CHECK: v4.fake_quant %[[H]] fp4_e2m1 blockSize 32 : tensor<1x?x64x128xbf16>
func.func @fake_quant_flash(%kv: tensor<1x?x512xbf16>, %qi: tensor<1x?x64x128xbf16>) {
  %a = v4.fake_quant %kv fp8_e4m3 blockSize 64 extent 448 : tensor<1x?x512xbf16>
  %h = v4.hadamard %qi : tensor<1x?x64x128xbf16>
  %b = v4.fake_quant %h fp4_e2m1 blockSize 32 : tensor<1x?x64x128xbf16>
  return
}

// CHECK-LABEL: func.func @hadamard_small
// CHECK: v4.hadamard %{{.*}} : tensor<1xbf16>
// CHECK: v4.hadamard %{{.*}} : tensor<2x8x16xbf16>
// CHECK: v4.hadamard %{{.*}} : tensor<?x128xbf16>
func.func @hadamard_small(%a: tensor<1xbf16>, %b: tensor<2x8x16xbf16>,
                          %c: tensor<?x128xbf16>) {
  %0 = v4.hadamard %a : tensor<1xbf16>
  %1 = v4.hadamard %b : tensor<2x8x16xbf16>
  %2 = v4.hadamard %c : tensor<?x128xbf16>
  return
}
