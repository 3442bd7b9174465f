// RUN: v4-opt %s -split-input-file -verify-diagnostics

// parameter_c1: a parameter is named after its checkpoint tensor.
func.func @parameter_empty_name() {
  // expected-error @+1 {{expected a non-empty checkpoint tensor name [parameter_c1]}}
  %w = v4.parameter "" : tensor<4x4xbf16>
  return
}

// -----

// parameter_c2: no zero-sized weights.
func.func @parameter_zero_dim() {
  // expected-error @+1 {{expected every dimension of 'layers.0.attn_norm.weight' > 0, got shape [0] [parameter_c2]}}
  %w = v4.parameter "layers.0.attn_norm.weight" : tensor<0xbf16>
  return
}

// -----

// parameter_stack_c1: exactly one `{}` placeholder.
func.func @parameter_stack_no_placeholder() {
  // expected-error @+1 {{expected pattern 'layers.3.ffn.experts.w1.weight' to contain exactly one '{}' [parameter_stack_c1]}}
  %w = v4.parameter_stack "layers.3.ffn.experts.w1.weight" count 4 : tensor<4x8x16xbf16>
  return
}

// -----

// parameter_stack_c1: exactly one `{}` placeholder (two given).
func.func @parameter_stack_two_placeholders() {
  // expected-error @+1 {{to contain exactly one '{}' [parameter_stack_c1]}}
  %w = v4.parameter_stack "layers.{}.ffn.experts.{}.w1.weight" count 4 : tensor<4x8x16xbf16>
  return
}

// -----

// parameter_stack_c2: the leading dimension is the member count.
func.func @parameter_stack_count() {
  // expected-error @+1 {{expected result leading dimension = count (4), got shape [3, 8, 16] [parameter_stack_c2]}}
  %w = v4.parameter_stack "layers.3.ffn.experts.{}.w1.weight" count 4 : tensor<3x8x16xbf16>
  return
}

// -----

// embedding_c1: the table is [V, d] of bf16 or f32.
func.func @embedding_table_rank(%t: tensor<64x4x8xbf16>, %ids: tensor<2x8xi64>) {
  // expected-error @+1 {{table must have rank 2, got 3 (shape [64, 4, 8]) [embedding_c1]}}
  %e = v4.embedding %t[%ids] : tensor<64x4x8xbf16>, tensor<2x8xi64> -> tensor<2x8x32xbf16>
  return
}

// -----

// embedding_c1: the table is bf16 or f32.
func.func @embedding_table_type(%t: tensor<64x32xf8E4M3FN>, %ids: tensor<2x8xi64>) {
  // expected-error @+1 {{expected table element type 'bf16' or 'f32', got 'f8E4M3FN' [embedding_c1]}}
  %e = v4.embedding %t[%ids] : tensor<64x32xf8E4M3FN>, tensor<2x8xi64> -> tensor<2x8x32xf8E4M3FN>
  return
}

// -----

// embedding_c2: ids are [B, T] of i32 or i64.
func.func @embedding_ids_type(%t: tensor<64x32xbf16>, %ids: tensor<2x8xi16>) {
  // expected-error @+1 {{expected ids element type 'i32' or 'i64', got 'i16' [embedding_c2]}}
  %e = v4.embedding %t[%ids] : tensor<64x32xbf16>, tensor<2x8xi16> -> tensor<2x8x32xbf16>
  return
}

// -----

// embedding_c2: ids are [B, T].
func.func @embedding_ids_rank(%t: tensor<64x32xbf16>, %ids: tensor<16xi64>) {
  // expected-error @+1 {{ids must have rank 2, got 1 (shape [16]) [embedding_c2]}}
  %e = v4.embedding %t[%ids] : tensor<64x32xbf16>, tensor<16xi64> -> tensor<16x32xbf16>
  return
}

// -----

// embedding_c3: the result is [B, T, d].
func.func @embedding_result_shape(%t: tensor<64x32xbf16>, %ids: tensor<2x?xi64>) {
  // expected-error @+1 {{expected result shape [2, ?, 16] to match [B, T, d] shape [2, ?, 32] [embedding_c3]}}
  %e = v4.embedding %t[%ids] : tensor<64x32xbf16>, tensor<2x?xi64> -> tensor<2x?x16xbf16>
  return
}

// -----

// embedding_c3: the result has the table's element type.
func.func @embedding_result_type(%t: tensor<64x32xbf16>, %ids: tensor<2x8xi64>) {
  // expected-error @+1 {{expected result element type 'bf16' (the table's) or 'f32', got 'f16' [embedding_c3]}}
  %e = v4.embedding %t[%ids] : tensor<64x32xbf16>, tensor<2x8xi64> -> tensor<2x8x32xf16>
  return
}

// -----

// rms_norm_c1: x holds bf16, f16 or f32 activations.
func.func @rms_norm_x_type(%x: tensor<2x8x32xf8E4M3FN>) {
  // expected-error @+1 {{expected x element type 'bf16' or 'f16' or 'f32', got 'f8E4M3FN' [rms_norm_c1]}}
  %y = v4.rms_norm %x eps 1.0e-6 : tensor<2x8x32xf8E4M3FN>
  return
}

// -----

// rms_norm_c2: reduceRank >= 1.
func.func @rms_norm_reduce_rank_zero(%x: tensor<2x8x32xbf16>) {
  // expected-error @+1 {{expected reduceRank > 0, got 0 [rms_norm_c2]}}
  %y = v4.rms_norm %x eps 1.0e-6 reduceRank 0 : tensor<2x8x32xbf16>
  return
}

// -----

// rms_norm_c2: reduceRank <= rank(x).
func.func @rms_norm_reduce_rank_big(%x: tensor<8x32xbf16>) {
  // expected-error @+1 {{expected reduceRank (3) <= rank of x (2) [rms_norm_c2]}}
  %y = v4.rms_norm %x eps 1.0e-6 reduceRank 3 : tensor<8x32xbf16>
  return
}

// -----

// rms_norm_c3: eps is positive and finite.
func.func @rms_norm_eps(%x: tensor<2x8x32xbf16>) {
  // expected-error @+1 {{expected eps > 0 and finite, got 0.000000e+00 [rms_norm_c3]}}
  %y = v4.rms_norm %x eps 0.0 : tensor<2x8x32xbf16>
  return
}

// -----

// rms_norm_c4: the weight has the shape of the reduced trailing dims.
func.func @rms_norm_weight_shape(%x: tensor<2x8x32xbf16>, %w: tensor<16xbf16>) {
  // expected-error @+1 {{expected weight shape [16] to match reduced trailing dims of x shape [32] [rms_norm_c4]}}
  %y = v4.rms_norm %x, %w eps 1.0e-6 : tensor<2x8x32xbf16>, tensor<16xbf16>
  return
}

// -----

// rms_norm_c4: with reduceRank 2 the weight covers both reduced dims.
func.func @rms_norm_weight_rank(%x: tensor<2x8x4x32xf32>, %w: tensor<32xf32>) {
  // expected-error @+1 {{expected weight shape [32] to match reduced trailing dims of x shape [4, 32] [rms_norm_c4]}}
  %y = v4.rms_norm %x, %w eps 1.0e-6 reduceRank 2 : tensor<2x8x4x32xf32>, tensor<32xf32>
  return
}

// -----

// rms_norm_c5: the weight is bf16, f16 or f32.
func.func @rms_norm_weight_type(%x: tensor<2x8x32xbf16>, %w: tensor<32xi8>) {
  // expected-error @+1 {{expected weight element type 'bf16' or 'f16' or 'f32', got 'i8' [rms_norm_c5]}}
  %y = v4.rms_norm %x, %w eps 1.0e-6 : tensor<2x8x32xbf16>, tensor<32xi8>
  return
}

// -----

// rope_c5: x is [..., n] with rank >= 2.
func.func @rope_x_rank(%x: tensor<64xbf16>, %p: tensor<1xi64>) {
  // expected-error @+1 {{x must have rank >= 2, got 1 [rope_c5]}}
  %y = v4.rope %x, %p table(#v4.rope<ropeDim = 64, base = 10000.0, factor = 1.0, originalSeqLen = 0, betaFast = 32.0, betaSlow = 1.0>) : tensor<64xbf16>, tensor<1xi64>
  return
}

// -----

// rope_c5: x is bf16, f16 or f32.
func.func @rope_x_type(%x: tensor<2x8x64xi32>, %p: tensor<2x8xi64>) {
  // expected-error @+1 {{expected x element type 'bf16' or 'f16' or 'f32', got 'i32' [rope_c5]}}
  %y = v4.rope %x, %p table(#v4.rope<ropeDim = 64, base = 10000.0, factor = 1.0, originalSeqLen = 0, betaFast = 32.0, betaSlow = 1.0>) : tensor<2x8x64xi32>, tensor<2x8xi64>
  return
}

// -----

// rope_c6: positions are i32 or i64.
func.func @rope_pos_type(%x: tensor<2x8x64xbf16>, %p: tensor<2x8xf32>) {
  // expected-error @+1 {{expected positions element type 'i32' or 'i64', got 'f32' [rope_c6]}}
  %y = v4.rope %x, %p table(#v4.rope<ropeDim = 64, base = 10000.0, factor = 1.0, originalSeqLen = 0, betaFast = 32.0, betaSlow = 1.0>) : tensor<2x8x64xbf16>, tensor<2x8xf32>
  return
}

// -----

// rope_c7: positions do not cover the last dim of x.
func.func @rope_pos_rank(%x: tensor<2x8x64xbf16>, %p: tensor<2x8x64xi64>) {
  // expected-error @+1 {{expected positions rank in [1, 2] (a prefix of x shape [2, 8, 64]), got rank 3 [rope_c7]}}
  %y = v4.rope %x, %p table(#v4.rope<ropeDim = 64, base = 10000.0, factor = 1.0, originalSeqLen = 0, betaFast = 32.0, betaSlow = 1.0>) : tensor<2x8x64xbf16>, tensor<2x8x64xi64>
  return
}

// -----

// rope_c7: the positions' shape is a prefix of x's shape.
func.func @rope_pos_prefix(%x: tensor<2x8x4x64xbf16>, %p: tensor<2x4xi64>) {
  // expected-error @+1 {{expected positions shape [2, 4] to match x prefix shape [2, 8] [rope_c7]}}
  %y = v4.rope %x, %p table(#v4.rope<ropeDim = 64, base = 10000.0, factor = 1.0, originalSeqLen = 0, betaFast = 32.0, betaSlow = 1.0>) : tensor<2x8x4x64xbf16>, tensor<2x4xi64>
  return
}

// -----

// rope_c8: the rotated dims fit in the last dim.
func.func @rope_dim_too_big(%x: tensor<2x8x32xbf16>, %p: tensor<2x8xi64>) {
  // expected-error @+1 {{expected table ropeDim (64) <= last dim of x (32) [rope_c8]}}
  %y = v4.rope %x, %p table(#v4.rope<ropeDim = 64, base = 10000.0, factor = 1.0, originalSeqLen = 0, betaFast = 32.0, betaSlow = 1.0>) : tensor<2x8x32xbf16>, tensor<2x8xi64>
  return
}

// -----

// linear_c1: x is bf16 or f32.
func.func @linear_x_type(%x: tensor<2x8x256xf16>, %w: tensor<16x256xbf16>) {
  // expected-error @+1 {{expected x element type 'bf16' or 'f32', got 'f16' [linear_c1]}}
  %y = v4.linear %x, %w : tensor<2x8x256xf16>, tensor<16x256xbf16> -> tensor<2x8x16xbf16>
  return
}

// -----

// linear_c1: x is [..., K] (rank >= 1).
func.func @linear_x_rank(%x: tensor<bf16>, %w: tensor<16x256xbf16>) {
  // expected-error @+1 {{x must have rank >= 1, got 0 [linear_c1]}}
  %y = v4.linear %x, %w : tensor<bf16>, tensor<16x256xbf16> -> tensor<16xbf16>
  return
}

// -----

// linear_c2: the weight is [N, K].
func.func @linear_weight_rank(%x: tensor<2x8x256xbf16>, %w: tensor<4x16x256xbf16>) {
  // expected-error @+1 {{weight must have rank 2, got 3 (shape [4, 16, 256]) [linear_c2]}}
  %y = v4.linear %x, %w : tensor<2x8x256xbf16>, tensor<4x16x256xbf16> -> tensor<2x8x16xbf16>
  return
}

// -----

// linear_c2: the weight is bf16, f32, f8E4M3FN or f4E2M1FN.
func.func @linear_weight_type(%x: tensor<2x8x256xbf16>, %w: tensor<16x256xi8>) {
  // expected-error @+1 {{expected weight element type 'bf16' or 'f32' or 'f8E4M3FN' or 'f4E2M1FN', got 'i8' [linear_c2]}}
  %y = v4.linear %x, %w : tensor<2x8x256xbf16>, tensor<16x256xi8> -> tensor<2x8x16xbf16>
  return
}

// -----

// linear_c3: the weight's in features match the last dim of x.
func.func @linear_k(%x: tensor<2x8x256xbf16>, %w: tensor<16x128xbf16>) {
  // expected-error @+1 {{expected weight dim 1 (in features, K) = 256, got 128 [linear_c3]}}
  %y = v4.linear %x, %w : tensor<2x8x256xbf16>, tensor<16x128xbf16> -> tensor<2x8x16xbf16>
  return
}

// -----

// linear_c4: the result is [..., N].
func.func @linear_result_shape(%x: tensor<2x?x256xbf16>, %w: tensor<16x256xbf16>) {
  // expected-error @+1 {{expected result shape [2, ?, 32] to match expected shape [2, ?, 16] [linear_c4]}}
  %y = v4.linear %x, %w : tensor<2x?x256xbf16>, tensor<16x256xbf16> -> tensor<2x?x32xbf16>
  return
}

// -----

// linear_c4: the result keeps the leading dims of x.
func.func @linear_result_rank(%x: tensor<2x8x256xbf16>, %w: tensor<16x256xbf16>) {
  // expected-error @+1 {{expected result shape [16, 16] to match expected shape [2, 8, 16] [linear_c4]}}
  %y = v4.linear %x, %w : tensor<2x8x256xbf16>, tensor<16x256xbf16> -> tensor<16x16xbf16>
  return
}

// -----

// linear_c5: the result is bf16 or f32.
func.func @linear_result_type(%x: tensor<2x8x256xbf16>, %w: tensor<16x256xbf16>) {
  // expected-error @+1 {{expected result element type 'bf16' or 'f32', got 'f16' [linear_c5]}}
  %y = v4.linear %x, %w : tensor<2x8x256xbf16>, tensor<16x256xbf16> -> tensor<2x8x16xf16>
  return
}

// -----

// linear_c5: the result is bf16 or f32.
func.func @linear_fp8_result_f32(%x: tensor<2x8x256xbf16>, %w: tensor<16x256xf8E4M3FN>, %s: tensor<1x2xf8E8M0FNU>) {
  // expected-error @+1 {{expected result element type 'bf16' or 'f32', got 'f16' [linear_c5]}}
  %y = v4.linear %x, %w scale %s : tensor<2x8x256xbf16>, tensor<16x256xf8E4M3FN>, tensor<1x2xf8E8M0FNU> -> tensor<2x8x16xf16>
  return
}

// -----

// linear_c7: FP8 weights need their e8m0 block scales.
func.func @linear_fp8_no_scale(%x: tensor<2x8x256xbf16>, %w: tensor<16x256xf8E4M3FN>) {
  // expected-error @+1 {{expected a f8E8M0FNU scale operand with a f8E4M3FN weight [linear_c7]}}
  %y = v4.linear %x, %w : tensor<2x8x256xbf16>, tensor<16x256xf8E4M3FN> -> tensor<2x8x16xbf16>
  return
}

// -----

// linear_c7: FP4 weights need their e8m0 scales.
func.func @linear_fp4_no_scale(%x: tensor<2x8x256xbf16>, %w: tensor<16x256xf4E2M1FN>) {
  // expected-error @+1 {{expected a f8E8M0FNU scale operand with a f4E2M1FN weight [linear_c7]}}
  %y = v4.linear %x, %w : tensor<2x8x256xbf16>, tensor<16x256xf4E2M1FN> -> tensor<2x8x16xbf16>
  return
}

// -----

// linear_c7: bf16/f32 weights take no scale.
func.func @linear_bf16_scale(%x: tensor<2x8x256xbf16>, %w: tensor<16x256xbf16>, %s: tensor<1x2xf8E8M0FNU>) {
  // expected-error @+1 {{expected no scale with a bf16/f32 weight, got 'tensor<1x2xf8E8M0FNU>' [linear_c7]}}
  %y = v4.linear %x, %w scale %s : tensor<2x8x256xbf16>, tensor<16x256xbf16>, tensor<1x2xf8E8M0FNU> -> tensor<2x8x16xbf16>
  return
}

// -----

// linear_c8: the scale is f8E8M0FNU.
func.func @linear_scale_type(%x: tensor<2x8x256xbf16>, %w: tensor<16x256xf8E4M3FN>, %s: tensor<1x2xf32>) {
  // expected-error @+1 {{expected scale element type f8E8M0FNU, got 'f32' [linear_c8]}}
  %y = v4.linear %x, %w scale %s : tensor<2x8x256xbf16>, tensor<16x256xf8E4M3FN>, tensor<1x2xf32> -> tensor<2x8x16xbf16>
  return
}

// -----

// linear_c8: the scale is rank 2.
func.func @linear_scale_rank(%x: tensor<2x8x256xbf16>, %w: tensor<16x256xf8E4M3FN>, %s: tensor<2xf8E8M0FNU>) {
  // expected-error @+1 {{scale must have rank 2, got 1 (shape [2]) [linear_c8]}}
  %y = v4.linear %x, %w scale %s : tensor<2x8x256xbf16>, tensor<16x256xf8E4M3FN>, tensor<2xf8E8M0FNU> -> tensor<2x8x16xbf16>
  return
}

// -----

// linear_c9: blockSize > 0.
func.func @linear_block_zero(%x: tensor<2x8x256xbf16>, %w: tensor<16x256xf8E4M3FN>, %s: tensor<1x2xf8E8M0FNU>) {
  // expected-error @+1 {{expected blockSize > 0, got 0 [linear_c9]}}
  %y = v4.linear %x, %w scale %s blockSize 0 : tensor<2x8x256xbf16>, tensor<16x256xf8E4M3FN>, tensor<1x2xf8E8M0FNU> -> tensor<2x8x16xbf16>
  return
}

// -----

// linear_c9: blockSize is unused (default) without a quantised weight.
func.func @linear_block_bf16(%x: tensor<2x8x256xbf16>, %w: tensor<16x256xbf16>) {
  // expected-error @+1 {{expected blockSize = 128 (default; unused without a quantised weight), got 64 [linear_c9]}}
  %y = v4.linear %x, %w blockSize 64 : tensor<2x8x256xbf16>, tensor<16x256xbf16> -> tensor<2x8x16xbf16>
  return
}

// -----

// linear_c10: FP8 block scales are [ceil(N/b), ceil(K/b)].
func.func @linear_fp8_scale_shape(%x: tensor<1x?x4096xbf16>, %w: tensor<1024x4096xf8E4M3FN>, %s: tensor<32x8xf8E8M0FNU>) {
  // expected-error @+1 {{expected scale shape [32, 8] to match [ceil(N/128), ceil(K/128)] shape [8, 32] [linear_c10]}}
  %y = v4.linear %x, %w scale %s : tensor<1x?x4096xbf16>, tensor<1024x4096xf8E4M3FN>, tensor<32x8xf8E8M0FNU> -> tensor<1x?x1024xbf16>
  return
}

// -----

// linear_c10: partial blocks round up (N = 192 -> 2 blocks of 128).
func.func @linear_fp8_scale_ceil(%x: tensor<2x8x256xbf16>, %w: tensor<192x256xf8E4M3FN>, %s: tensor<1x2xf8E8M0FNU>) {
  // expected-error @+1 {{expected scale shape [1, 2] to match [ceil(N/128), ceil(K/128)] shape [2, 2] [linear_c10]}}
  %y = v4.linear %x, %w scale %s : tensor<2x8x256xbf16>, tensor<192x256xf8E4M3FN>, tensor<1x2xf8E8M0FNU> -> tensor<2x8x192xbf16>
  return
}

// -----

// linear_c11: FP4 weights are scaled per 32 along K.
func.func @linear_fp4_k(%x: tensor<2x8x48xbf16>, %w: tensor<16x48xf4E2M1FN>, %s: tensor<16x1xf8E8M0FNU>) {
  // expected-error @+1 {{expected weight in features K (FP4) (48) to be a multiple of 32 [linear_c11]}}
  %y = v4.linear %x, %w scale %s : tensor<2x8x48xbf16>, tensor<16x48xf4E2M1FN>, tensor<16x1xf8E8M0FNU> -> tensor<2x8x16xbf16>
  return
}

// -----

// linear_c12: FP4 scales are [N, K/32].
func.func @linear_fp4_scale_shape(%x: tensor<?x4096xbf16>, %w: tensor<2048x4096xf4E2M1FN>, %s: tensor<16x32xf8E8M0FNU>) {
  // expected-error @+1 {{expected scale shape [16, 32] to match [N, K/32] shape [2048, 128] [linear_c12]}}
  %y = v4.linear %x, %w scale %s : tensor<?x4096xbf16>, tensor<2048x4096xf4E2M1FN>, tensor<16x32xf8E8M0FNU> -> tensor<?x2048xbf16>
  return
}

// -----

// linear_c13: every 32-slice of K lies in one activation block.
func.func @linear_fp4_block(%x: tensor<?x256xbf16>, %w: tensor<64x256xf4E2M1FN>, %s: tensor<64x8xf8E8M0FNU>) {
  // expected-error @+1 {{expected blockSize (activation block, FP4) (48) to be a multiple of 32 [linear_c13]}}
  %y = v4.linear %x, %w scale %s blockSize 48 : tensor<?x256xbf16>, tensor<64x256xf4E2M1FN>, tensor<64x8xf8E8M0FNU> -> tensor<?x64xbf16>
  return
}

// -----

// grouped_linear_c1: x is [..., G, K] (rank >= 2).
func.func @grouped_linear_x_rank(%x: tensor<64xbf16>, %w: tensor<128x64xbf16>) {
  // expected-error @+1 {{x must have rank >= 2, got 1 [grouped_linear_c1]}}
  %y = v4.grouped_linear %x, %w : tensor<64xbf16>, tensor<128x64xbf16> -> tensor<32xbf16>
  return
}

// -----

// grouped_linear_c1: x is bf16 or f32.
func.func @grouped_linear_x_type(%x: tensor<2x4x64xf16>, %w: tensor<128x64xbf16>) {
  // expected-error @+1 {{expected x element type 'bf16' or 'f32', got 'f16' [grouped_linear_c1]}}
  %y = v4.grouped_linear %x, %w : tensor<2x4x64xf16>, tensor<128x64xbf16> -> tensor<2x4x32xbf16>
  return
}

// -----

// grouped_linear_c2: the weight is [G*N, K] of bf16, f32 or f8E4M3FN.
func.func @grouped_linear_weight_type(%x: tensor<2x4x64xbf16>, %w: tensor<128x64xf4E2M1FN>) {
  // expected-error @+1 {{expected weight element type 'bf16' or 'f32' or 'f8E4M3FN', got 'f4E2M1FN' [grouped_linear_c2]}}
  %y = v4.grouped_linear %x, %w : tensor<2x4x64xbf16>, tensor<128x64xf4E2M1FN> -> tensor<2x4x32xbf16>
  return
}

// -----

// grouped_linear_c2: the weight is rank 2 (not pre-split into groups).
func.func @grouped_linear_weight_rank(%x: tensor<2x4x64xbf16>, %w: tensor<4x32x64xbf16>) {
  // expected-error @+1 {{weight must have rank 2, got 3 (shape [4, 32, 64]) [grouped_linear_c2]}}
  %y = v4.grouped_linear %x, %w : tensor<2x4x64xbf16>, tensor<4x32x64xbf16> -> tensor<2x4x32xbf16>
  return
}

// -----

// grouped_linear_c3: the weight's in features match the last dim of x.
func.func @grouped_linear_k(%x: tensor<2x?x8x4096xbf16>, %w: tensor<8192x512xbf16>) {
  // expected-error @+1 {{expected weight dim 1 (in features per group, K) = 4096, got 512 [grouped_linear_c3]}}
  %y = v4.grouped_linear %x, %w : tensor<2x?x8x4096xbf16>, tensor<8192x512xbf16> -> tensor<2x?x8x1024xbf16>
  return
}

// -----

// grouped_linear_c4: the weight rows are divisible by G.
func.func @grouped_linear_rows(%x: tensor<2x3x64xbf16>, %w: tensor<128x64xbf16>) {
  // expected-error @+1 {{expected weight rows (G*N, G = 3) (128) to be a multiple of 3 [grouped_linear_c4]}}
  %y = v4.grouped_linear %x, %w : tensor<2x3x64xbf16>, tensor<128x64xbf16> -> tensor<2x3x42xbf16>
  return
}

// -----

// grouped_linear_c4: G > 0.
func.func @grouped_linear_zero_groups(%x: tensor<2x0x64xbf16>, %w: tensor<128x64xbf16>) {
  // expected-error @+1 {{expected groups G (x dim -2) > 0, got 0 [grouped_linear_c4]}}
  %y = v4.grouped_linear %x, %w : tensor<2x0x64xbf16>, tensor<128x64xbf16> -> tensor<2x0x32xbf16>
  return
}

// -----

// grouped_linear_c5: the result is [..., G, N].
func.func @grouped_linear_result(%x: tensor<2x?x8x4096xbf16>, %w: tensor<8192x4096xbf16>) {
  // expected-error @+1 {{expected result shape [2, ?, 8, 8192] to match expected shape [2, ?, 8, 1024] [grouped_linear_c5]}}
  %y = v4.grouped_linear %x, %w : tensor<2x?x8x4096xbf16>, tensor<8192x4096xbf16> -> tensor<2x?x8x8192xbf16>
  return
}

// -----

// grouped_linear_c6: the result is bf16 or f32.
func.func @grouped_linear_result_type(%x: tensor<2x4x64xbf16>, %w: tensor<128x64xbf16>) {
  // expected-error @+1 {{expected result element type 'bf16' or 'f32', got 'f16' [grouped_linear_c6]}}
  %y = v4.grouped_linear %x, %w : tensor<2x4x64xbf16>, tensor<128x64xbf16> -> tensor<2x4x32xf16>
  return
}

// -----

// grouped_linear_c7: FP8 weights need their e8m0 block scales.
func.func @grouped_linear_fp8_no_scale(%x: tensor<2x4x64xbf16>, %w: tensor<128x64xf8E4M3FN>) {
  // expected-error @+1 {{expected a f8E8M0FNU scale operand with a f8E4M3FN weight [grouped_linear_c7]}}
  %y = v4.grouped_linear %x, %w : tensor<2x4x64xbf16>, tensor<128x64xf8E4M3FN> -> tensor<2x4x32xbf16>
  return
}

// -----

// grouped_linear_c7: bf16/f32 weights take no scale.
func.func @grouped_linear_bf16_scale(%x: tensor<2x4x64xbf16>, %w: tensor<128x64xbf16>, %s: tensor<1x1xf8E8M0FNU>) {
  // expected-error @+1 {{expected no scale with a bf16/f32 weight, got 'tensor<1x1xf8E8M0FNU>' [grouped_linear_c7]}}
  %y = v4.grouped_linear %x, %w scale %s : tensor<2x4x64xbf16>, tensor<128x64xbf16>, tensor<1x1xf8E8M0FNU> -> tensor<2x4x32xbf16>
  return
}

// -----

// grouped_linear_c8: the scale is a rank-2 f8E8M0FNU tensor.
func.func @grouped_linear_scale_type(%x: tensor<2x4x64xbf16>, %w: tensor<128x64xf8E4M3FN>, %s: tensor<1x1xbf16>) {
  // expected-error @+1 {{expected scale element type f8E8M0FNU, got 'bf16' [grouped_linear_c8]}}
  %y = v4.grouped_linear %x, %w scale %s : tensor<2x4x64xbf16>, tensor<128x64xf8E4M3FN>, tensor<1x1xbf16> -> tensor<2x4x32xbf16>
  return
}

// -----

// grouped_linear_c9: blockSize > 0.
func.func @grouped_linear_block(%x: tensor<2x4x64xbf16>, %w: tensor<128x64xf8E4M3FN>, %s: tensor<1x1xf8E8M0FNU>) {
  // expected-error @+1 {{expected blockSize > 0, got -128 [grouped_linear_c9]}}
  %y = v4.grouped_linear %x, %w scale %s blockSize -128 : tensor<2x4x64xbf16>, tensor<128x64xf8E4M3FN>, tensor<1x1xf8E8M0FNU> -> tensor<2x4x32xbf16>
  return
}

// -----

// grouped_linear_c10: FP8 scales are [ceil(G*N/b), ceil(K/b)].
func.func @grouped_linear_scale_shape(%x: tensor<1x?x8x4096xbf16>, %w: tensor<8192x4096xf8E4M3FN>, %s: tensor<8x32xf8E8M0FNU>) {
  // expected-error @+1 {{expected scale shape [8, 32] to match [ceil(G*N/128), ceil(K/128)] shape [64, 32] [grouped_linear_c10]}}
  %y = v4.grouped_linear %x, %w scale %s : tensor<1x?x8x4096xbf16>, tensor<8192x4096xf8E4M3FN>, tensor<8x32xf8E8M0FNU> -> tensor<1x?x8x1024xbf16>
  return
}

// -----

// fake_quant_c1: x is bf16 (or f32).
func.func @fake_quant_x_type(%x: tensor<2x8x512xf16>) {
  // expected-error @+1 {{expected x element type 'bf16' or 'f32', got 'f16' [fake_quant_c1]}}
  %y = v4.fake_quant %x fp8_e4m3 blockSize 64 extent 448 : tensor<2x8x512xf16>
  return
}

// -----

// fake_quant_c1: x is [..., n] (rank >= 1).
func.func @fake_quant_x_rank(%x: tensor<bf16>) {
  // expected-error @+1 {{x must have rank >= 1, got 0 [fake_quant_c1]}}
  %y = v4.fake_quant %x fp8_e4m3 blockSize 64 : tensor<bf16>
  return
}

// -----

// fake_quant_c2: blockSize > 0.
func.func @fake_quant_block(%x: tensor<2x8x512xbf16>) {
  // expected-error @+1 {{expected blockSize > 0, got 0 [fake_quant_c2]}}
  %y = v4.fake_quant %x fp8_e4m3 blockSize 0 : tensor<2x8x512xbf16>
  return
}

// -----

// fake_quant_c3: extent <= n.
func.func @fake_quant_extent_big(%x: tensor<2x8x512xbf16>) {
  // expected-error @+1 {{expected extent (576) <= last dim of x (512) [fake_quant_c3]}}
  %y = v4.fake_quant %x fp8_e4m3 blockSize 64 extent 576 : tensor<2x8x512xbf16>
  return
}

// -----

// fake_quant_c3: extent > 0.
func.func @fake_quant_extent_zero(%x: tensor<2x8x512xbf16>) {
  // expected-error @+1 {{expected extent > 0, got 0 [fake_quant_c3]}}
  %y = v4.fake_quant %x fp8_e4m3 blockSize 64 extent 0 : tensor<2x8x512xbf16>
  return
}

// -----

// fake_quant_c4: the quantised range is whole blocks (extent % blockSize).
func.func @fake_quant_extent_blocks(%x: tensor<2x8x512xbf16>) {
  // expected-error @+1 {{expected extent (448) to be a multiple of 128 [fake_quant_c4]}}
  %y = v4.fake_quant %x fp8_e4m3 blockSize 128 extent 448 : tensor<2x8x512xbf16>
  return
}

// -----

// fake_quant_c4: without extent the whole last dim is whole blocks.
func.func @fake_quant_n_blocks(%x: tensor<2x8x100xbf16>) {
  // expected-error @+1 {{expected last dim of x (extent) (100) to be a multiple of 32 [fake_quant_c4]}}
  %y = v4.fake_quant %x fp4_e2m1 blockSize 32 : tensor<2x8x100xbf16>
  return
}

// -----

// hadamard_c1: x is bf16 (or f32).
func.func @hadamard_x_type(%x: tensor<2x8x128xf16>) {
  // expected-error @+1 {{expected x element type 'bf16' or 'f32', got 'f16' [hadamard_c1]}}
  %y = v4.hadamard %x : tensor<2x8x128xf16>
  return
}

// -----

// hadamard_c1: x is [..., n] (rank >= 1).
func.func @hadamard_x_rank(%x: tensor<bf16>) {
  // expected-error @+1 {{x must have rank >= 1, got 0 [hadamard_c1]}}
  %y = v4.hadamard %x : tensor<bf16>
  return
}

// -----

// hadamard_c2: n is a power of two.
func.func @hadamard_not_pow2(%x: tensor<2x8x96xbf16>) {
  // expected-error @+1 {{expected last dim of x to be a static power of two, got 96 [hadamard_c2]}}
  %y = v4.hadamard %x : tensor<2x8x96xbf16>
  return
}

// -----

// hadamard_c2: n is static.
func.func @hadamard_dynamic(%x: tensor<2x8x?xbf16>) {
  // expected-error @+1 {{expected last dim of x to be a static power of two, got ? [hadamard_c2]}}
  %y = v4.hadamard %x : tensor<2x8x?xbf16>
  return
}

// -----

// last_token_c1: the input is [B, T, ...].
func.func @last_token_rank(%x: tensor<8xbf16>) -> tensor<1xbf16> {
  // expected-error @+1 {{expected input of rank >= 2 ([B, T, ...]), got 'tensor<8xbf16>' [last_token_c1]}}
  %l = v4.last_token %x : tensor<8xbf16> -> tensor<1xbf16>
  return %l : tensor<1xbf16>
}

// -----

// last_token_c2: the result is the input's type with T = 1.
func.func @last_token_result(%x: tensor<2x?x16xbf16>) -> tensor<2x2x16xbf16> {
  // expected-error @+1 {{expected result type 'tensor<2x1x16xbf16>' (the input's with T = 1), got 'tensor<2x2x16xbf16>' [last_token_c2]}}
  %l = v4.last_token %x : tensor<2x?x16xbf16> -> tensor<2x2x16xbf16>
  return %l : tensor<2x2x16xbf16>
}

// -----

// convert_c1: input and result are bf16 or f32 tensors of one shape.
func.func @convert_shape(%x: tensor<2x8xf32>) {
  // expected-error @+1 {{expected the result shape of the input, got 'tensor<2x8xf32>' -> 'tensor<2x4xbf16>' [convert_c1]}}
  %y = v4.convert %x : tensor<2x8xf32> -> tensor<2x4xbf16>
  return
}

// -----

// convert_c1: f16 is not converted.
func.func @convert_f16(%x: tensor<2x8xf16>) {
  // expected-error @+1 {{[convert_c1]}}
  %y = v4.convert %x : tensor<2x8xf16> -> tensor<2x8xbf16>
  return
}

// -----

// linear_c14: rowBlockSize > 0, only with an FP8 weight.
func.func @linear_row_block_plain(%x: tensor<2x?x64xbf16>, %w: tensor<32x64xbf16>) {
  // expected-error @+1 {{expected no rowBlockSize without an f8E4M3FN weight, got 16 [linear_c14]}}
  %y = v4.linear %x, %w rowBlockSize 16 : tensor<2x?x64xbf16>, tensor<32x64xbf16> -> tensor<2x?x32xbf16>
  return
}

// -----

// linear_c10 with rowBlockSize: scale rows are ceil(N / rowBlockSize).
func.func @linear_row_block_shape(%x: tensor<2x?x64xbf16>, %w: tensor<144x64xf8E4M3FN>, %s: tensor<2x1xf8E8M0FNU>) {
  // expected-error @+1 {{[ceil(N/16), ceil(K/128)]}}
  %y = v4.linear %x, %w scale %s rowBlockSize 16 : tensor<2x?x64xbf16>, tensor<144x64xf8E4M3FN>, tensor<2x1xf8E8M0FNU> -> tensor<2x?x144xbf16>
  return
}

// -----

// grouped_linear_c11: rowBlockSize > 0.
func.func @grouped_row_block(%x: tensor<2x?x1x144xbf16>, %w: tensor<16x144xf8E4M3FN>, %s: tensor<1x2xf8E8M0FNU>) {
  // expected-error @+1 {{[grouped_linear_c11]}}
  %y = v4.grouped_linear %x, %w scale %s rowBlockSize 0 : tensor<2x?x1x144xbf16>, tensor<16x144xf8E4M3FN>, tensor<1x2xf8E8M0FNU> -> tensor<2x?x1x16xbf16>
  return
}

// -----

// parameter_c3: a slice of a dim of the result over shards >= 2.
func.func @parameter_slice_dim() {
  // expected-error @+1 {{[parameter_c3]}}
  %w = v4.parameter "w" slice 2 shards 2 : tensor<4x8xbf16>
  return
}

// -----

// parameter_c3: blocks only on a slice.
func.func @parameter_blocks_alone() {
  // expected-error @+1 {{expected 'blocks' only on a slice [parameter_c3]}}
  %w = v4.parameter "w" {sliceBlock = 2 : i64, sliceBlockOf = 4 : i64} : tensor<4x8xbf16>
  return
}

// -----

// parameter_c4: bl divides bg.
func.func @parameter_blocks() {
  // expected-error @+1 {{[parameter_c4]}}
  %w = v4.parameter "w.scale" slice 0 shards 2 blocks 3 of 128 : tensor<4x1xf8E8M0FNU>
  return
}

// -----

// parameter_c5: the packed last dim of FP4 is not sliced.
func.func @parameter_fp4_last() {
  // expected-error @+1 {{[parameter_c5]}}
  %w = v4.parameter "w" slice 1 shards 2 : tensor<4x32xf4E2M1FN>
  return
}
