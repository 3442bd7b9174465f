// RUN: v4-opt %s -split-input-file -verify-diagnostics

// kv_compress_c1: x is the bf16 normed layer input [B, T, d].
func.func @kv_compress_c1(%x: tensor<2x8x64xf16>, %wkv: tensor<256x64xf32>, %wgate: tensor<256x64xf32>, %ape: tensor<4x256xf32>, %norm: tensor<128xbf16>,
    %s: !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, %c: !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected x element type 'bf16' or 'f32', got 'f16' [kv_compress_c1]}}
  %s1, %c1 = v4.kv.compress %x, %s, %c, %pos weights(%wkv, %wgate, %ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6
      : tensor<2x8x64xf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, tensor<2xi64>
      weights(tensor<256x64xf32>, tensor<256x64xf32>, tensor<4x256xf32>, tensor<128xbf16>)
  return
}

// -----

// kv_compress_c2: T and d are non-empty where static.
func.func @kv_compress_c2(%x: tensor<2x0x64xbf16>, %wkv: tensor<256x64xf32>, %wgate: tensor<256x64xf32>, %ape: tensor<4x256xf32>, %norm: tensor<128xbf16>,
    %s: !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, %c: !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected x dim 1 (T) > 0, got 0 [kv_compress_c2]}}
  %s1, %c1 = v4.kv.compress %x, %s, %c, %pos weights(%wkv, %wgate, %ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6
      : tensor<2x0x64xbf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, tensor<2xi64>
      weights(tensor<256x64xf32>, tensor<256x64xf32>, tensor<4x256xf32>, tensor<128xbf16>)
  return
}

// -----

// kv_compress_c3: wkv and wgate are bf16 or f32 matrices.
func.func @kv_compress_c3(%x: tensor<2x8x64xbf16>, %wkv: tensor<256x64xf32>, %wgate: tensor<256x64xf16>, %ape: tensor<4x256xf32>, %norm: tensor<128xbf16>,
    %s: !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, %c: !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected wgate element type 'bf16' or 'f32', got 'f16' [kv_compress_c3]}}
  %s1, %c1 = v4.kv.compress %x, %s, %c, %pos weights(%wkv, %wgate, %ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6
      : tensor<2x8x64xbf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, tensor<2xi64>
      weights(tensor<256x64xf32>, tensor<256x64xf16>, tensor<4x256xf32>, tensor<128xbf16>)
  return
}

// -----

// kv_compress_c4: wkv/wgate out dim is coff * c (coff = 2 for ratio 4).
func.func @kv_compress_c4(%x: tensor<2x8x64xbf16>, %wkv: tensor<128x64xf32>, %wgate: tensor<128x64xf32>, %ape: tensor<4x256xf32>, %norm: tensor<128xbf16>,
    %s: !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, %c: !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected wkv dim 0 (coff * c = 2 * 128) = 256, got 128 [kv_compress_c4]}}
  %s1, %c1 = v4.kv.compress %x, %s, %c, %pos weights(%wkv, %wgate, %ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6
      : tensor<2x8x64xbf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, tensor<2xi64>
      weights(tensor<128x64xf32>, tensor<128x64xf32>, tensor<4x256xf32>, tensor<128xbf16>)
  return
}

// -----

// kv_compress_c5: wkv/wgate in dim is d.
func.func @kv_compress_c5(%x: tensor<2x8x64xbf16>, %wkv: tensor<256x64xf32>, %wgate: tensor<256x32xf32>, %ape: tensor<4x256xf32>, %norm: tensor<128xbf16>,
    %s: !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, %c: !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected wgate dim 1 (d, x dim 2) = 64, got 32 [kv_compress_c5]}}
  %s1, %c1 = v4.kv.compress %x, %s, %c, %pos weights(%wkv, %wgate, %ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6
      : tensor<2x8x64xbf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, tensor<2xi64>
      weights(tensor<256x64xf32>, tensor<256x32xf32>, tensor<4x256xf32>, tensor<128xbf16>)
  return
}

// -----

// kv_compress_c6: ape is [r, coff * c].
func.func @kv_compress_c6(%x: tensor<2x8x64xbf16>, %wkv: tensor<256x64xf32>, %wgate: tensor<256x64xf32>, %ape: tensor<8x256xf32>, %norm: tensor<128xbf16>,
    %s: !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, %c: !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected ape dim 0 (ratio) = 4, got 8 [kv_compress_c6]}}
  %s1, %c1 = v4.kv.compress %x, %s, %c, %pos weights(%wkv, %wgate, %ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6
      : tensor<2x8x64xbf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, tensor<2xi64>
      weights(tensor<256x64xf32>, tensor<256x64xf32>, tensor<8x256xf32>, tensor<128xbf16>)
  return
}

// -----

// kv_compress_c7: norm is the RMSNorm weight [c].
func.func @kv_compress_c7(%x: tensor<2x8x64xbf16>, %wkv: tensor<256x64xf32>, %wgate: tensor<256x64xf32>, %ape: tensor<4x256xf32>, %norm: tensor<256xbf16>,
    %s: !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, %c: !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected norm dim 0 (c) = 128, got 256 [kv_compress_c7]}}
  %s1, %c1 = v4.kv.compress %x, %s, %c, %pos weights(%wkv, %wgate, %ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6
      : tensor<2x8x64xbf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, tensor<2xi64>
      weights(tensor<256x64xf32>, tensor<256x64xf32>, tensor<4x256xf32>, tensor<256xbf16>)
  return
}

// -----

// kv_compress_c8: the cache has the state's ratio and dim.
func.func @kv_compress_c8(%x: tensor<2x8x64xbf16>, %wkv: tensor<256x64xf32>, %wgate: tensor<256x64xf32>, %ape: tensor<4x256xf32>, %norm: tensor<128xbf16>,
    %s: !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, %c: !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 8, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected cache ratio and dim (8, 128) to match the compressor state (4, 128) [kv_compress_c8]}}
  %s1, %c1 = v4.kv.compress %x, %s, %c, %pos weights(%wkv, %wgate, %ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6
      : tensor<2x8x64xbf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 8, elementType = bf16>, tensor<2xi64>
      weights(tensor<256x64xf32>, tensor<256x64xf32>, tensor<4x256xf32>, tensor<128xbf16>)
  return
}

// -----

// kv_compress_c9: the cache holds bf16 (or f32) entries.
func.func @kv_compress_c9(%x: tensor<2x8x64xbf16>, %wkv: tensor<256x64xf32>, %wgate: tensor<256x64xf32>, %ape: tensor<4x256xf32>, %norm: tensor<128xbf16>,
    %s: !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, %c: !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = f8E4M3FN>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected cache element type bf16 or f32, got 'f8E4M3FN' [kv_compress_c9]}}
  %s1, %c1 = v4.kv.compress %x, %s, %c, %pos weights(%wkv, %wgate, %ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6
      : tensor<2x8x64xbf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = f8E4M3FN>, tensor<2xi64>
      weights(tensor<256x64xf32>, tensor<256x64xf32>, tensor<4x256xf32>, tensor<128xbf16>)
  return
}

// -----

// kv_compress_c10: x, state and cache agree on the batch.
func.func @kv_compress_c10(%x: tensor<2x8x64xbf16>, %wkv: tensor<256x64xf32>, %wgate: tensor<256x64xf32>, %ape: tensor<4x256xf32>, %norm: tensor<128xbf16>,
    %s: !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, %c: !v4.kv_cache<batch = 1, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected cache batch (state batch) = 2, got 1 [kv_compress_c10]}}
  %s1, %c1 = v4.kv.compress %x, %s, %c, %pos weights(%wkv, %wgate, %ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6
      : tensor<2x8x64xbf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, !v4.kv_cache<batch = 1, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, tensor<2xi64>
      weights(tensor<256x64xf32>, tensor<256x64xf32>, tensor<4x256xf32>, tensor<128xbf16>)
  return
}

// -----

// kv_compress_c11: startPos is an i64 tensor [B].
func.func @kv_compress_c11(%x: tensor<2x8x64xbf16>, %wkv: tensor<256x64xf32>, %wgate: tensor<256x64xf32>, %ape: tensor<4x256xf32>, %norm: tensor<128xbf16>,
    %s: !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, %c: !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, %pos: tensor<2xi32>) {
  // expected-error @+1 {{expected startPos element type 'i64', got 'i32' [kv_compress_c11]}}
  %s1, %c1 = v4.kv.compress %x, %s, %c, %pos weights(%wkv, %wgate, %ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6
      : tensor<2x8x64xbf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, tensor<2xi32>
      weights(tensor<256x64xf32>, tensor<256x64xf32>, tensor<4x256xf32>, tensor<128xbf16>)
  return
}

// -----

// kv_compress_c12: startPos has one position per sequence.
func.func @kv_compress_c12(%x: tensor<2x8x64xbf16>, %wkv: tensor<256x64xf32>, %wgate: tensor<256x64xf32>, %ape: tensor<4x256xf32>, %norm: tensor<128xbf16>,
    %s: !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, %c: !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, %pos: tensor<3xi64>) {
  // expected-error @+1 {{expected startPos dim 0 (batch) = 2, got 3 [kv_compress_c12]}}
  %s1, %c1 = v4.kv.compress %x, %s, %c, %pos weights(%wkv, %wgate, %ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6
      : tensor<2x8x64xbf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, tensor<3xi64>
      weights(tensor<256x64xf32>, tensor<256x64xf32>, tensor<4x256xf32>, tensor<128xbf16>)
  return
}

// -----

// kv_compress_c18: a chunk completes at most capacity entries: floor(T / r) <= capacity.
func.func @kv_compress_c18(%x: tensor<2x80x64xbf16>, %wkv: tensor<256x64xf32>, %wgate: tensor<256x64xf32>, %ape: tensor<4x256xf32>, %norm: tensor<128xbf16>,
    %s: !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, %c: !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected floor(T / ratio) (80 / 4 = 20) <= cache capacity (16) [kv_compress_c18]}}
  %s1, %c1 = v4.kv.compress %x, %s, %c, %pos weights(%wkv, %wgate, %ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6
      : tensor<2x80x64xbf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, tensor<2xi64>
      weights(tensor<256x64xf32>, tensor<256x64xf32>, tensor<4x256xf32>, tensor<128xbf16>)
  return
}

// -----

// kv_compress_c13: RoPE rotates at most c dims.
func.func @kv_compress_c13(%x: tensor<2x8x64xbf16>, %wkv: tensor<64x64xf32>, %wgate: tensor<64x64xf32>, %ape: tensor<4x64xf32>, %norm: tensor<32xbf16>,
    %s: !v4.compressor_state<batch = 2, ratio = 4, dim = 32>, %c: !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected rope.ropeDim (64) <= c (32) [kv_compress_c13]}}
  %s1, %c1 = v4.kv.compress %x, %s, %c, %pos weights(%wkv, %wgate, %ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6
      : tensor<2x8x64xbf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 32>, !v4.kv_cache<batch = 2, capacity = 16, dim = 32, ratio = 4, elementType = bf16>, tensor<2xi64>
      weights(tensor<64x64xf32>, tensor<64x64xf32>, tensor<4x64xf32>, tensor<32xbf16>)
  return
}

// -----

// kv_compress_c14: the RMSNorm epsilon is positive.
func.func @kv_compress_c14(%x: tensor<2x8x64xbf16>, %wkv: tensor<256x64xf32>, %wgate: tensor<256x64xf32>, %ape: tensor<4x256xf32>, %norm: tensor<128xbf16>,
    %s: !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, %c: !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected normEps > 0, got 0.000000e+00 [kv_compress_c14]}}
  %s1, %c1 = v4.kv.compress %x, %s, %c, %pos weights(%wkv, %wgate, %ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0> eps 0.0
      : tensor<2x8x64xbf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, tensor<2xi64>
      weights(tensor<256x64xf32>, tensor<256x64xf32>, tensor<4x256xf32>, tensor<128xbf16>)
  return
}

// -----

// kv_compress_c15: main compressor: c - ropeDim is a multiple of the FP8 block 64.
func.func @kv_compress_c15(%x: tensor<2x8x64xbf16>, %wkv: tensor<256x64xf32>, %wgate: tensor<256x64xf32>, %ape: tensor<4x256xf32>, %norm: tensor<128xbf16>,
    %s: !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, %c: !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected c - rope.ropeDim (128 - 32 = 96) to be a multiple of 64 (FP8 fake-quant block) [kv_compress_c15]}}
  %s1, %c1 = v4.kv.compress %x, %s, %c, %pos weights(%wkv, %wgate, %ape, %norm)
      rope #v4.rope<ropeDim = 32, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6
      : tensor<2x8x64xbf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, tensor<2xi64>
      weights(tensor<256x64xf32>, tensor<256x64xf32>, tensor<4x256xf32>, tensor<128xbf16>)
  return
}

// -----

// kv_compress_c16: the indexer compressor (rotate) only exists with ratio 4.
func.func @kv_compress_c16(%x: tensor<2x8x64xbf16>, %wkv: tensor<128x64xf32>, %wgate: tensor<128x64xf32>, %ape: tensor<8x128xf32>, %norm: tensor<128xbf16>,
    %s: !v4.compressor_state<batch = 2, ratio = 8, dim = 128>, %c: !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 8, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected ratio 4 for the indexer compressor (rotate), got 8 [kv_compress_c16]}}
  %s1, %c1 = v4.kv.compress %x, %s, %c, %pos weights(%wkv, %wgate, %ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6 rotate
      : tensor<2x8x64xbf16>, !v4.compressor_state<batch = 2, ratio = 8, dim = 128>, !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 8, elementType = bf16>, tensor<2xi64>
      weights(tensor<128x64xf32>, tensor<128x64xf32>, tensor<8x128xf32>, tensor<128xbf16>)
  return
}

// -----

// kv_compress_c17: rotate: c is a power of two (Hadamard) and a multiple of 32 (FP4 blocks).
func.func @kv_compress_c17(%x: tensor<2x8x64xbf16>, %wkv: tensor<192x64xf32>, %wgate: tensor<192x64xf32>, %ape: tensor<4x192xf32>, %norm: tensor<96xbf16>,
    %s: !v4.compressor_state<batch = 2, ratio = 4, dim = 96>, %c: !v4.kv_cache<batch = 2, capacity = 16, dim = 96, ratio = 4, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected c (96) to be a power of two and a multiple of 32 with rotate (Hadamard, FP4 block 32) [kv_compress_c17]}}
  %s1, %c1 = v4.kv.compress %x, %s, %c, %pos weights(%wkv, %wgate, %ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6 rotate
      : tensor<2x8x64xbf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 96>, !v4.kv_cache<batch = 2, capacity = 16, dim = 96, ratio = 4, elementType = bf16>, tensor<2xi64>
      weights(tensor<192x64xf32>, tensor<192x64xf32>, tensor<4x192xf32>, tensor<96xbf16>)
  return
}

// -----

// kv_compress_projected_c1: kv and score are f32 [B, T, coff * c].
func.func @kv_compress_projected_c1(%kv: tensor<2x8x256xbf16>, %g: tensor<2x8x256xbf16>, %ape: tensor<4x256xf32>, %norm: tensor<128xbf16>,
    %s: !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, %c: !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected kv element type 'f32', got 'bf16' [kv_compress_projected_c1]}}
  %s1, %c1 = v4.kv.compress_projected %kv, %g, %s, %c, %pos weights(%ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6
      : tensor<2x8x256xbf16>, !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, tensor<2xi64>
      weights(tensor<4x256xf32>, tensor<128xbf16>)
  return
}

// -----

// kv_compress_projected_c1: their last dim is coff * c.
func.func @kv_compress_projected_c1_width(%kv: tensor<2x8x128xf32>, %g: tensor<2x8x128xf32>, %ape: tensor<4x256xf32>, %norm: tensor<128xbf16>,
    %s: !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, %c: !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected kv dim 2 (coff * c = 2 * 128) = 256, got 128 [kv_compress_projected_c1]}}
  %s1, %c1 = v4.kv.compress_projected %kv, %g, %s, %c, %pos weights(%ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6
      : tensor<2x8x128xf32>, !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, tensor<2xi64>
      weights(tensor<4x256xf32>, tensor<128xbf16>)
  return
}

// -----

// kv_compress_projected_c2: T is non-empty where static.
func.func @kv_compress_projected_c2(%kv: tensor<2x0x256xf32>, %g: tensor<2x0x256xf32>, %ape: tensor<4x256xf32>, %norm: tensor<128xbf16>,
    %s: !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, %c: !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected kv dim 1 (T) > 0, got 0 [kv_compress_projected_c2]}}
  %s1, %c1 = v4.kv.compress_projected %kv, %g, %s, %c, %pos weights(%ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6
      : tensor<2x0x256xf32>, !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, tensor<2xi64>
      weights(tensor<4x256xf32>, tensor<128xbf16>)
  return
}

// -----

// kv_compress_c6: the projected form checks the rest as kv.compress does.
func.func @kv_compress_projected_ape(%kv: tensor<2x8x256xf32>, %g: tensor<2x8x256xf32>, %ape: tensor<8x256xf32>, %norm: tensor<128xbf16>,
    %s: !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, %c: !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected ape dim 0 (ratio) = 4, got 8 [kv_compress_c6]}}
  %s1, %c1 = v4.kv.compress_projected %kv, %g, %s, %c, %pos weights(%ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6
      : tensor<2x8x256xf32>, !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, tensor<2xi64>
      weights(tensor<8x256xf32>, tensor<128xbf16>)
  return
}

// -----

// kv_compress_c10: the projected form takes the batch from kv.
func.func @kv_compress_projected_batch(%kv: tensor<3x8x256xf32>, %g: tensor<3x8x256xf32>, %ape: tensor<4x256xf32>, %norm: tensor<128xbf16>,
    %s: !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, %c: !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected state batch (x dim 0) = 3, got 2 [kv_compress_c10]}}
  %s1, %c1 = v4.kv.compress_projected %kv, %g, %s, %c, %pos weights(%ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6
      : tensor<3x8x256xf32>, !v4.compressor_state<batch = 2, ratio = 4, dim = 128>, !v4.kv_cache<batch = 2, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, tensor<2xi64>
      weights(tensor<4x256xf32>, tensor<128xbf16>)
  return
}

// -----

// csa_indexer_scores_c1: q is bf16 [B, T, HI, DI].
func.func @csa_indexer_scores_c1(%q: tensor<2x6x128xbf16>, %w: tensor<2x6x4xbf16>, %k: !v4.kv_cache<batch = 2, capacity = 8, dim = 32, ratio = 4, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{q must have rank 4, got 3 (shape [2, 6, 128]) [csa_indexer_scores_c1]}}
  %s = v4.csa.indexer_scores %q, %w, %k, %pos : (tensor<2x6x128xbf16>, tensor<2x6x4xbf16>, !v4.kv_cache<batch = 2, capacity = 8, dim = 32, ratio = 4, elementType = bf16>, tensor<2xi64>) -> tensor<2x6x8xbf16>
  return
}

// -----

// csa_indexer_scores_c2: HI is static and > 0 (the weight scale is a constant).
func.func @csa_indexer_scores_c2(%q: tensor<2x6x?x32xbf16>, %w: tensor<2x6x?xbf16>, %k: !v4.kv_cache<batch = 2, capacity = 8, dim = 32, ratio = 4, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected a static q dim 2 (index heads) > 0, got ? [csa_indexer_scores_c2]}}
  %s = v4.csa.indexer_scores %q, %w, %k, %pos : (tensor<2x6x?x32xbf16>, tensor<2x6x?xbf16>, !v4.kv_cache<batch = 2, capacity = 8, dim = 32, ratio = 4, elementType = bf16>, tensor<2xi64>) -> tensor<2x6x8xbf16>
  return
}

// -----

// csa_indexer_scores_c3: weights are bf16 [B, T, HI].
func.func @csa_indexer_scores_c3(%q: tensor<2x6x4x32xbf16>, %w: tensor<2x6x8xbf16>, %k: !v4.kv_cache<batch = 2, capacity = 8, dim = 32, ratio = 4, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected weights shape [2, 6, 8] to match q [B, T, HI] shape [2, 6, 4] [csa_indexer_scores_c3]}}
  %s = v4.csa.indexer_scores %q, %w, %k, %pos : (tensor<2x6x4x32xbf16>, tensor<2x6x8xbf16>, !v4.kv_cache<batch = 2, capacity = 8, dim = 32, ratio = 4, elementType = bf16>, tensor<2xi64>) -> tensor<2x6x8xbf16>
  return
}

// -----

// csa_indexer_scores_c4: the keys come from the 4:1 indexer compressor.
func.func @csa_indexer_scores_c4(%q: tensor<2x6x4x32xbf16>, %w: tensor<2x6x4xbf16>, %k: !v4.kv_cache<batch = 2, capacity = 8, dim = 32, ratio = 128, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected keys ratio 4 (CSA indexer), got 128 [csa_indexer_scores_c4]}}
  %s = v4.csa.indexer_scores %q, %w, %k, %pos : (tensor<2x6x4x32xbf16>, tensor<2x6x4xbf16>, !v4.kv_cache<batch = 2, capacity = 8, dim = 32, ratio = 128, elementType = bf16>, tensor<2xi64>) -> tensor<2x6x8xbf16>
  return
}

// -----

// csa_indexer_scores_c5: keys have the query head dim DI.
func.func @csa_indexer_scores_c5(%q: tensor<2x6x4x64xbf16>, %w: tensor<2x6x4xbf16>, %k: !v4.kv_cache<batch = 2, capacity = 8, dim = 32, ratio = 4, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected q dim 3 (DI, keys dim) = 32, got 64 [csa_indexer_scores_c5]}}
  %s = v4.csa.indexer_scores %q, %w, %k, %pos : (tensor<2x6x4x64xbf16>, tensor<2x6x4xbf16>, !v4.kv_cache<batch = 2, capacity = 8, dim = 32, ratio = 4, elementType = bf16>, tensor<2xi64>) -> tensor<2x6x8xbf16>
  return
}

// -----

// csa_indexer_scores_c6: DI is a power of two and a multiple of 32.
func.func @csa_indexer_scores_c6(%q: tensor<2x6x4x96xbf16>, %w: tensor<2x6x4xbf16>, %k: !v4.kv_cache<batch = 2, capacity = 8, dim = 96, ratio = 4, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected keys dim (96) to be a power of two and a multiple of 32 [csa_indexer_scores_c6]}}
  %s = v4.csa.indexer_scores %q, %w, %k, %pos : (tensor<2x6x4x96xbf16>, tensor<2x6x4xbf16>, !v4.kv_cache<batch = 2, capacity = 8, dim = 96, ratio = 4, elementType = bf16>, tensor<2xi64>) -> tensor<2x6x8xbf16>
  return
}

// -----

// csa_indexer_scores_c7: the keys hold bf16 values (bf16 or f32 storage).
func.func @csa_indexer_scores_c7(%q: tensor<2x6x4x32xbf16>, %w: tensor<2x6x4xbf16>, %k: !v4.kv_cache<batch = 2, capacity = 8, dim = 32, ratio = 4, elementType = f16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected keys element type bf16 or f32, got 'f16' [csa_indexer_scores_c7]}}
  %s = v4.csa.indexer_scores %q, %w, %k, %pos : (tensor<2x6x4x32xbf16>, tensor<2x6x4xbf16>, !v4.kv_cache<batch = 2, capacity = 8, dim = 32, ratio = 4, elementType = f16>, tensor<2xi64>) -> tensor<2x6x8xbf16>
  return
}

// -----

// csa_indexer_scores_c8: keys batch is the query batch.
func.func @csa_indexer_scores_c8(%q: tensor<2x6x4x32xbf16>, %w: tensor<2x6x4xbf16>, %k: !v4.kv_cache<batch = 1, capacity = 8, dim = 32, ratio = 4, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected keys batch (q dim 0) = 2, got 1 [csa_indexer_scores_c8]}}
  %s = v4.csa.indexer_scores %q, %w, %k, %pos : (tensor<2x6x4x32xbf16>, tensor<2x6x4xbf16>, !v4.kv_cache<batch = 1, capacity = 8, dim = 32, ratio = 4, elementType = bf16>, tensor<2xi64>) -> tensor<2x6x8xbf16>
  return
}

// -----

// csa_indexer_scores_c9: startPos is an i64 tensor [B].
func.func @csa_indexer_scores_c9(%q: tensor<2x6x4x32xbf16>, %w: tensor<2x6x4xbf16>, %k: !v4.kv_cache<batch = 2, capacity = 8, dim = 32, ratio = 4, elementType = bf16>, %pos: tensor<2x1xi64>) {
  // expected-error @+1 {{startPos must have rank 1, got 2 (shape [2, 1]) [csa_indexer_scores_c9]}}
  %s = v4.csa.indexer_scores %q, %w, %k, %pos : (tensor<2x6x4x32xbf16>, tensor<2x6x4xbf16>, !v4.kv_cache<batch = 2, capacity = 8, dim = 32, ratio = 4, elementType = bf16>, tensor<2x1xi64>) -> tensor<2x6x8xbf16>
  return
}

// -----

// csa_indexer_scores_c10: startPos has one position per sequence.
func.func @csa_indexer_scores_c10(%q: tensor<2x6x4x32xbf16>, %w: tensor<2x6x4xbf16>, %k: !v4.kv_cache<batch = 2, capacity = 8, dim = 32, ratio = 4, elementType = bf16>, %pos: tensor<4xi64>) {
  // expected-error @+1 {{expected startPos dim 0 (batch) = 2, got 4 [csa_indexer_scores_c10]}}
  %s = v4.csa.indexer_scores %q, %w, %k, %pos : (tensor<2x6x4x32xbf16>, tensor<2x6x4xbf16>, !v4.kv_cache<batch = 2, capacity = 8, dim = 32, ratio = 4, elementType = bf16>, tensor<4xi64>) -> tensor<2x6x8xbf16>
  return
}

// -----

// csa_indexer_scores_c11: scores are bf16 or f32 [B, T, capacity].
func.func @csa_indexer_scores_c11(%q: tensor<2x6x4x32xbf16>, %w: tensor<2x6x4xbf16>, %k: !v4.kv_cache<batch = 2, capacity = 8, dim = 32, ratio = 4, elementType = bf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected scores shape [2, 6, 16] to match [B, T, capacity] shape [2, 6, 8] [csa_indexer_scores_c11]}}
  %s = v4.csa.indexer_scores %q, %w, %k, %pos : (tensor<2x6x4x32xbf16>, tensor<2x6x4xbf16>, !v4.kv_cache<batch = 2, capacity = 8, dim = 32, ratio = 4, elementType = bf16>, tensor<2xi64>) -> tensor<2x6x16xbf16>
  return
}

// -----

// csa_topk_c1: scores are bf16 or f32 [B, T, N].
func.func @csa_topk_c1(%s: tensor<2x6x8xi32>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected scores element type 'bf16' or 'f32', got 'i32' [csa_topk_c1]}}
  %i = v4.csa.topk %s, %pos k 3 : (tensor<2x6x8xi32>, tensor<2xi64>) -> tensor<2x6x3xi64>
  return
}

// -----

// csa_topk_c2: startPos is an i64 tensor [B].
func.func @csa_topk_c2(%s: tensor<2x6x8xbf16>, %pos: tensor<2xf32>) {
  // expected-error @+1 {{expected startPos element type 'i64', got 'f32' [csa_topk_c2]}}
  %i = v4.csa.topk %s, %pos k 3 : (tensor<2x6x8xbf16>, tensor<2xf32>) -> tensor<2x6x3xi64>
  return
}

// -----

// csa_topk_c3: startPos has one position per sequence.
func.func @csa_topk_c3(%s: tensor<2x6x8xbf16>, %pos: tensor<1xi64>) {
  // expected-error @+1 {{expected startPos dim 0 (batch) = 2, got 1 [csa_topk_c3]}}
  %i = v4.csa.topk %s, %pos k 3 : (tensor<2x6x8xbf16>, tensor<1xi64>) -> tensor<2x6x3xi64>
  return
}

// -----

// csa_topk_c4: k is positive.
func.func @csa_topk_c4(%s: tensor<2x6x8xbf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected k > 0, got 0 [csa_topk_c4]}}
  %i = v4.csa.topk %s, %pos k 0 : (tensor<2x6x8xbf16>, tensor<2xi64>) -> tensor<2x6x0xi64>
  return
}

// -----

// csa_topk_c5: visibility follows a compressor ratio >= 2.
func.func @csa_topk_c5(%s: tensor<2x6x8xbf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected ratio >= 2, got 1 [csa_topk_c5]}}
  %i = v4.csa.topk %s, %pos k 3 ratio 1 : (tensor<2x6x8xbf16>, tensor<2xi64>) -> tensor<2x6x3xi64>
  return
}

// -----

// csa_topk_c6: indices are i64 [B, T, k].
func.func @csa_topk_c6(%s: tensor<2x6x8xbf16>, %pos: tensor<2xi64>) {
  // expected-error @+1 {{expected indices shape [2, 6, 4] to match [B, T, k] shape [2, 6, 3] [csa_topk_c6]}}
  %i = v4.csa.topk %s, %pos k 3 : (tensor<2x6x8xbf16>, tensor<2xi64>) -> tensor<2x6x4xi64>
  return
}
