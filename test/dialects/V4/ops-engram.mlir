// RUN: v4-opt %s | v4-opt | FileCheck %s
// RUN: v4-opt %s --mlir-print-op-generic | v4-opt | FileCheck %s

// T1 + Engram (V4-SPEC 11.1): N = 3, H_e = 2, D_e = 32, primes 41, 43, 47, 53
// for layer 1 (184 rows), V_c = 90, pad id 2, d = 64, n_hc = 4; batch 2.

// CHECK-LABEL: func.func @state_empty_t1
// CHECK: v4.engram.state_empty pad 2 : !v4.engram_state<batch = 2, lookback = 2>
func.func @state_empty_t1() -> !v4.engram_state<batch = 2, lookback = 2> {
  %s = v4.engram.state_empty pad 2 : !v4.engram_state<batch = 2, lookback = 2>
  return %s : !v4.engram_state<batch = 2, lookback = 2>
}

// CHECK-LABEL: func.func @hash_t1
// CHECK: v4.engram.hash %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {heads = 2 : i64, maxNgram = 3 : i64, padId = 2 : i64, primes = array<i64: 41, 43, 47, 53>} : (tensor<2x21xi64>, tensor<97xi64>, tensor<3xi64>, !v4.engram_state<batch = 2, lookback = 2>) -> (tensor<2x21x4xi32>, !v4.engram_state<batch = 2, lookback = 2>)
func.func @hash_t1(%ids: tensor<2x21xi64>, %map: tensor<97xi64>, %mult: tensor<3xi64>)
    -> (tensor<2x21x4xi32>, !v4.engram_state<batch = 2, lookback = 2>) {
  %s0 = v4.engram.state_empty pad 2 : !v4.engram_state<batch = 2, lookback = 2>
  %rows, %s1 = v4.engram.hash %ids, %map, %mult, %s0
      {maxNgram = 3 : i64, heads = 2 : i64, primes = array<i64: 41, 43, 47, 53>, padId = 2 : i64}
      : (tensor<2x21xi64>, tensor<97xi64>, tensor<3xi64>, !v4.engram_state<batch = 2, lookback = 2>)
      -> (tensor<2x21x4xi32>, !v4.engram_state<batch = 2, lookback = 2>)
  return %rows, %s1 : tensor<2x21x4xi32>, !v4.engram_state<batch = 2, lookback = 2>
}

// Decode: one token per call, the look-back continues through the state.
// CHECK-LABEL: func.func @hash_decode_i32_ids
// CHECK: v4.engram.hash {{.*}} : (tensor<2x1xi32>, tensor<97xi32>, tensor<3xi64>, !v4.engram_state<batch = 2, lookback = 2>) -> (tensor<2x1x4xi64>, !v4.engram_state<batch = 2, lookback = 2>)
func.func @hash_decode_i32_ids(%ids: tensor<2x1xi32>, %map: tensor<97xi32>, %mult: tensor<3xi64>,
                               %s0: !v4.engram_state<batch = 2, lookback = 2>)
    -> (tensor<2x1x4xi64>, !v4.engram_state<batch = 2, lookback = 2>) {
  %rows, %s1 = v4.engram.hash %ids, %map, %mult, %s0
      {maxNgram = 3 : i64, heads = 2 : i64, primes = array<i64: 41, 43, 47, 53>, padId = 2 : i64}
      : (tensor<2x1xi32>, tensor<97xi32>, tensor<3xi64>, !v4.engram_state<batch = 2, lookback = 2>)
      -> (tensor<2x1x4xi64>, !v4.engram_state<batch = 2, lookback = 2>)
  return %rows, %s1 : tensor<2x1x4xi64>, !v4.engram_state<batch = 2, lookback = 2>
}

// V4.1 layer 1 (V4-SPEC 8.4, 11.2 item 14): N = 4, H_e = 8, the 24 primes
// 16,000,057 ... 16,000,463 (sum 384,006,168), dynamic T.
// CHECK-LABEL: func.func @hash_v41_dynamic_t
// CHECK: v4.engram.hash
// CHECK-SAME: heads = 8 : i64, maxNgram = 4 : i64, padId = 2 : i64
// CHECK-SAME: primes = array<i64: 16000057, 16000079,
// CHECK-SAME: 16000447, 16000463>
// CHECK-SAME: -> (tensor<1x?x24xi32>, !v4.engram_state<batch = 1, lookback = 3>)
func.func @hash_v41_dynamic_t(%ids: tensor<1x?xi64>, %s0: !v4.engram_state<batch = 1, lookback = 3>)
    -> (tensor<1x?x24xi32>, !v4.engram_state<batch = 1, lookback = 3>) {
  %map = v4.parameter "engram.token_map" : tensor<129280xi64>
  %mult = v4.parameter "layers.1.engram.multipliers" : tensor<4xi64>
  %rows, %s1 = v4.engram.hash %ids, %map, %mult, %s0
      {maxNgram = 4 : i64, heads = 8 : i64, padId = 2 : i64,
       primes = array<i64: 16000057, 16000079, 16000081, 16000097, 16000121, 16000129,
                           16000133, 16000183, 16000189, 16000207, 16000211, 16000253,
                           16000277, 16000289, 16000307, 16000321, 16000339, 16000381,
                           16000393, 16000399, 16000403, 16000409, 16000447, 16000463>}
      : (tensor<1x?xi64>, tensor<129280xi64>, tensor<4xi64>, !v4.engram_state<batch = 1, lookback = 3>)
      -> (tensor<1x?x24xi32>, !v4.engram_state<batch = 1, lookback = 3>)
  return %rows, %s1 : tensor<1x?x24xi32>, !v4.engram_state<batch = 1, lookback = 3>
}

// CHECK-LABEL: func.func @lookup_t1_fp8
// CHECK: v4.engram.lookup %{{.*}}, %{{.*}} scale %{{.*}} {numEmbeddings = 184 : i64} : (tensor<2x21x4xi32>, tensor<184x32xf8E4M3FN>, tensor<184x1xf8E8M0FNU>) -> tensor<2x21x128xbf16>
func.func @lookup_t1_fp8(%rows: tensor<2x21x4xi32>) -> tensor<2x21x128xbf16> {
  %table = v4.parameter "layers.1.engram.embed.weight" : tensor<184x32xf8E4M3FN>
  %scale = v4.parameter "layers.1.engram.embed.scale" : tensor<184x1xf8E8M0FNU>
  %e = v4.engram.lookup %rows, %table scale %scale {numEmbeddings = 184 : i64}
      : (tensor<2x21x4xi32>, tensor<184x32xf8E4M3FN>, tensor<184x1xf8E8M0FNU>)
      -> tensor<2x21x128xbf16>
  return %e : tensor<2x21x128xbf16>
}

// CHECK-LABEL: func.func @lookup_t1_bf16
// CHECK: v4.engram.lookup %{{.*}}, %{{.*}} {numEmbeddings = 184 : i64} : (tensor<2x?x4xi64>, tensor<184x32xbf16>) -> tensor<2x?x128xf32>
func.func @lookup_t1_bf16(%rows: tensor<2x?x4xi64>, %table: tensor<184x32xbf16>) -> tensor<2x?x128xf32> {
  %e = v4.engram.lookup %rows, %table {numEmbeddings = 184 : i64}
      : (tensor<2x?x4xi64>, tensor<184x32xbf16>) -> tensor<2x?x128xf32>
  return %e : tensor<2x?x128xf32>
}

// V4.1 layer 1: 384,006,168 rows of 256 FP8 values, 8 scales each; E = 6144.
// CHECK-LABEL: func.func @lookup_v41_dynamic_t
// CHECK: v4.engram.lookup {{.*}} scale {{.*}} {numEmbeddings = 384006168 : i64} : (tensor<1x?x24xi32>, tensor<384006168x256xf8E4M3FN>, tensor<384006168x8xf8E8M0FNU>) -> tensor<1x?x6144xbf16>
func.func @lookup_v41_dynamic_t(%rows: tensor<1x?x24xi32>) -> tensor<1x?x6144xbf16> {
  %table = v4.parameter "layers.1.engram.embed.weight" : tensor<384006168x256xf8E4M3FN>
  %scale = v4.parameter "layers.1.engram.embed.scale" : tensor<384006168x8xf8E8M0FNU>
  %e = v4.engram.lookup %rows, %table scale %scale {numEmbeddings = 384006168 : i64}
      : (tensor<1x?x24xi32>, tensor<384006168x256xf8E4M3FN>, tensor<384006168x8xf8E8M0FNU>)
      -> tensor<1x?x6144xbf16>
  return %e : tensor<1x?x6144xbf16>
}

// CHECK-LABEL: func.func @gate_t1
// CHECK: v4.engram.gate %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : (tensor<2x21x4x64xbf16>, tensor<2x21x320xbf16>, tensor<4x64xbf16>, tensor<4x64xbf16>) -> tensor<2x21x4x64xbf16>
func.func @gate_t1(%x: tensor<2x21x4x64xbf16>, %kv: tensor<2x21x320xbf16>,
                   %qw: tensor<4x64xbf16>, %kw: tensor<4x64xbf16>) -> tensor<2x21x4x64xbf16> {
  %r = v4.engram.gate %x, %kv, %qw, %kw
      : (tensor<2x21x4x64xbf16>, tensor<2x21x320xbf16>, tensor<4x64xbf16>, tensor<4x64xbf16>)
      -> tensor<2x21x4x64xbf16>
  return %r : tensor<2x21x4x64xbf16>
}

// V4.1 sizes (d = 7168, wkv output (4+1)*7168 = 35840), dynamic T, eps 1e-6.
// CHECK-LABEL: func.func @gate_v41_dynamic_t
// CHECK: v4.engram.gate {{.*}} {eps = 9.9999999999999995E-7 : f64} : (tensor<1x?x4x7168xbf16>, tensor<1x?x35840xbf16>, tensor<4x7168xbf16>, tensor<4x7168xbf16>) -> tensor<1x?x4x7168xbf16>
func.func @gate_v41_dynamic_t(%x: tensor<1x?x4x7168xbf16>, %kv: tensor<1x?x35840xbf16>)
    -> tensor<1x?x4x7168xbf16> {
  %qw = v4.parameter "layers.1.engram.q_weight" : tensor<4x7168xbf16>
  %kw = v4.parameter "layers.1.engram.k_weight" : tensor<4x7168xbf16>
  %r = v4.engram.gate %x, %kv, %qw, %kw {eps = 1.0e-6 : f64}
      : (tensor<1x?x4x7168xbf16>, tensor<1x?x35840xbf16>, tensor<4x7168xbf16>, tensor<4x7168xbf16>)
      -> tensor<1x?x4x7168xbf16>
  return %r : tensor<1x?x4x7168xbf16>
}

// Demo form with the short-conv branch: kernel 4, dilation N = 3, history
// (4-1)*3 = 9 rows of n*d = 256 channels.
// CHECK-LABEL: func.func @gate_t1_short_conv
// CHECK: v4.engram.gate %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} conv(%{{.*}}, %{{.*}}, %{{.*}}) {convDilation = 3 : i64} : (tensor<2x?x4x64xbf16>, tensor<2x?x320xbf16>, tensor<4x64xbf16>, tensor<4x64xbf16>, tensor<256x1x4xbf16>, tensor<4x64xbf16>, tensor<2x9x256xbf16>) -> (tensor<2x?x4x64xbf16>, tensor<2x9x256xbf16>)
func.func @gate_t1_short_conv(%x: tensor<2x?x4x64xbf16>, %kv: tensor<2x?x320xbf16>,
                              %qw: tensor<4x64xbf16>, %kw: tensor<4x64xbf16>,
                              %h0: tensor<2x9x256xbf16>)
    -> (tensor<2x?x4x64xbf16>, tensor<2x9x256xbf16>) {
  %cw = v4.parameter "layers.1.engram.short_conv.conv.weight" : tensor<256x1x4xbf16>
  %cn = v4.parameter "layers.1.engram.short_conv.norms.weight" : tensor<4x64xbf16>
  %r, %h1 = v4.engram.gate %x, %kv, %qw, %kw conv(%cw, %cn, %h0) {convDilation = 3 : i64}
      : (tensor<2x?x4x64xbf16>, tensor<2x?x320xbf16>, tensor<4x64xbf16>, tensor<4x64xbf16>,
         tensor<256x1x4xbf16>, tensor<4x64xbf16>, tensor<2x9x256xbf16>)
      -> (tensor<2x?x4x64xbf16>, tensor<2x9x256xbf16>)
  return %r, %h1 : tensor<2x?x4x64xbf16>, tensor<2x9x256xbf16>
}

// T1 + Engram at layer 1: hash, lookup, (wkv linear), gate on the lanes.
// CHECK-LABEL: func.func @engram_t1_chain
// CHECK: v4.engram.hash
// CHECK: v4.engram.lookup
// CHECK: v4.engram.gate
func.func @engram_t1_chain(%ids: tensor<2x?xi64>, %map: tensor<97xi64>, %mult: tensor<3xi64>,
                           %s0: !v4.engram_state<batch = 2, lookback = 2>,
                           %x: tensor<2x?x4x64xbf16>, %kv: tensor<2x?x320xbf16>,
                           %table: tensor<184x32xf8E4M3FN>, %scale: tensor<184x1xf8E8M0FNU>,
                           %qw: tensor<4x64xbf16>, %kw: tensor<4x64xbf16>)
    -> (tensor<2x?x128xbf16>, tensor<2x?x4x64xbf16>, !v4.engram_state<batch = 2, lookback = 2>) {
  %rows, %s1 = v4.engram.hash %ids, %map, %mult, %s0
      {maxNgram = 3 : i64, heads = 2 : i64, primes = array<i64: 41, 43, 47, 53>, padId = 2 : i64}
      : (tensor<2x?xi64>, tensor<97xi64>, tensor<3xi64>, !v4.engram_state<batch = 2, lookback = 2>)
      -> (tensor<2x?x4xi32>, !v4.engram_state<batch = 2, lookback = 2>)
  %e = v4.engram.lookup %rows, %table scale %scale {numEmbeddings = 184 : i64}
      : (tensor<2x?x4xi32>, tensor<184x32xf8E4M3FN>, tensor<184x1xf8E8M0FNU>) -> tensor<2x?x128xbf16>
  %r = v4.engram.gate %x, %kv, %qw, %kw
      : (tensor<2x?x4x64xbf16>, tensor<2x?x320xbf16>, tensor<4x64xbf16>, tensor<4x64xbf16>)
      -> tensor<2x?x4x64xbf16>
  return %e, %r, %s1 : tensor<2x?x128xbf16>, tensor<2x?x4x64xbf16>, !v4.engram_state<batch = 2, lookback = 2>
}
