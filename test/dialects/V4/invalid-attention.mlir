// RUN: v4-opt %s -split-input-file -verify-diagnostics

// ring_write_c1: kv is [B, T, D].
// expected-error @+2 {{kv must have rank 3, got 2 (shape [2, 72]) [ring_write_c1]}}
func.func @f(%r: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %kv: tensor<2x72xbf16>, %p: tensor<2xi64>) {
  %0 = v4.ring.write %kv into %r at %p : tensor<2x72xbf16>, tensor<2xi64> -> !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>
  return
}

// -----

// ring_write_c2: kv batch = ring batch.
// expected-error @+2 {{expected kv dim 0 (batch) = ring batch = 2, got 3 [ring_write_c2]}}
func.func @f(%r: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %kv: tensor<3x4x72xbf16>, %p: tensor<3xi64>) {
  %0 = v4.ring.write %kv into %r at %p : tensor<3x4x72xbf16>, tensor<3xi64> -> !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>
  return
}

// -----

// ring_write_c3: kv width = ring dim.
// expected-error @+2 {{expected kv dim 2 (D) = ring dim = 72, got 64 [ring_write_c3]}}
func.func @f(%r: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %kv: tensor<2x4x64xbf16>, %p: tensor<2xi64>) {
  %0 = v4.ring.write %kv into %r at %p : tensor<2x4x64xbf16>, tensor<2xi64> -> !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>
  return
}

// -----

// ring_write_c4: kv has the ring's element type.
// expected-error @+2 {{expected kv element type 'bf16', got 'f32' [ring_write_c4]}}
func.func @f(%r: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %kv: tensor<2x4x72xf32>, %p: tensor<2xi64>) {
  %0 = v4.ring.write %kv into %r at %p : tensor<2x4x72xf32>, tensor<2xi64> -> !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>
  return
}

// -----

// ring_write_c5: a chunk has at least one token.
// expected-error @+2 {{expected kv dim 1 (T) > 0, got 0 [ring_write_c5]}}
func.func @f(%r: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %kv: tensor<2x0x72xbf16>, %p: tensor<2xi64>) {
  %0 = v4.ring.write %kv into %r at %p : tensor<2x0x72xbf16>, tensor<2xi64> -> !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>
  return
}

// -----

// ring_write_c6: startPos is [B] i64.
// expected-error @+2 {{expected startPos element type 'i64', got 'i32' [ring_write_c6]}}
func.func @f(%r: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %kv: tensor<2x4x72xbf16>, %p: tensor<2xi32>) {
  %0 = v4.ring.write %kv into %r at %p : tensor<2x4x72xbf16>, tensor<2xi32> -> !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>
  return
}

// -----

// ring_write_c7: startPos length = ring batch.
// expected-error @+2 {{expected startPos length (batch) = 2, got 3 [ring_write_c7]}}
func.func @f(%r: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %kv: tensor<2x4x72xbf16>, %p: tensor<3xi64>) {
  %0 = v4.ring.write %kv into %r at %p : tensor<2x4x72xbf16>, tensor<3xi64> -> !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>
  return
}

// -----

// attn_window_indices_c1: the window is positive.
// expected-error @+2 {{expected window > 0, got 0 [attn_window_indices_c1]}}
func.func @f(%p: tensor<2xi64>, %t: index) {
  %0 = v4.attn.window_indices %p window 0 : tensor<2xi64> -> tensor<2x4x0xi64>
  return
}

// -----

// attn_window_indices_c2: the result is [B, T, W] i64.
// expected-error @+2 {{expected result element type 'i64', got 'i32' [attn_window_indices_c2]}}
func.func @f(%p: tensor<2xi64>, %t: index) {
  %0 = v4.attn.window_indices %p window 8 : tensor<2xi64> -> tensor<2x4x8xi32>
  return
}

// -----

// attn_window_indices_c3: result dim 2 = window.
// expected-error @+2 {{expected result dim 2 = window = 8, got 4 [attn_window_indices_c3]}}
func.func @f(%p: tensor<2xi64>, %t: index) {
  %0 = v4.attn.window_indices %p window 8 : tensor<2xi64> -> tensor<2x4x4xi64>
  return
}

// -----

// attn_window_indices_c4: tokens is given exactly when T is dynamic (missing).
// expected-error @+2 {{expected a tokens operand for the dynamic result dim 1 (T) [attn_window_indices_c4]}}
func.func @f(%p: tensor<2xi64>, %t: index) {
  %0 = v4.attn.window_indices %p window 8 : tensor<2xi64> -> tensor<2x?x8xi64>
  return
}

// -----

// attn_window_indices_c4: tokens is given exactly when T is dynamic (extra).
// expected-error @+2 {{expected no tokens operand with a static result dim 1 (T = 4) [attn_window_indices_c4]}}
func.func @f(%p: tensor<2xi64>, %t: index) {
  %0 = v4.attn.window_indices %p tokens(%t) window 8 : tensor<2xi64> -> tensor<2x4x8xi64>
  return
}

// -----

// attn_window_indices_c5: a chunk has at least one token.
// expected-error @+2 {{expected result dim 1 (T) > 0, got 0 [attn_window_indices_c5]}}
func.func @f(%p: tensor<2xi64>, %t: index) {
  %0 = v4.attn.window_indices %p window 8 : tensor<2xi64> -> tensor<2x0x8xi64>
  return
}

// -----

// attn_window_indices_c6: startPos is [B] i64.
// expected-error @+2 {{startPos must have rank 1, got 2 (shape [2, 1]) [attn_window_indices_c6]}}
func.func @f(%p: tensor<2x1xi64>, %t: index) {
  %0 = v4.attn.window_indices %p window 8 : tensor<2x1xi64> -> tensor<2x4x8xi64>
  return
}

// -----

// attn_window_indices_c7: startPos length = B.
// expected-error @+2 {{expected startPos length (batch) = 2, got 3 [attn_window_indices_c7]}}
func.func @f(%p: tensor<3xi64>, %t: index) {
  %0 = v4.attn.window_indices %p window 8 : tensor<3xi64> -> tensor<2x4x8xi64>
  return
}

// -----

// attn_sparse_c1: q is [B, T, H, D] bf16 (or f32).
// expected-error @+2 {{expected q element type 'bf16', got 'f16' [attn_sparse_c1]}}
func.func @f(%q: tensor<2x21x4x72xf16>, %kv: tensor<2x21x72xbf16>, %r: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %s: tensor<4xf32>, %p: tensor<2xi64>) {
  %0 = v4.attn.sparse %q, %kv, %r, %s, %p window 8 : tensor<2x21x4x72xf16>, tensor<2x21x72xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, tensor<4xf32>, tensor<2xi64> -> tensor<2x21x4x72xbf16>
  return
}

// -----

// attn_sparse_c2: at least one token and one head.
// expected-error @+2 {{expected q dim 2 (H) > 0, got 0 [attn_sparse_c2]}}
func.func @f(%q: tensor<2x21x0x72xbf16>, %kv: tensor<2x21x72xbf16>, %r: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %s: tensor<0xf32>, %p: tensor<2xi64>) {
  %0 = v4.attn.sparse %q, %kv, %r, %s, %p window 8 : tensor<2x21x0x72xbf16>, tensor<2x21x72xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, tensor<0xf32>, tensor<2xi64> -> tensor<2x21x0x72xbf16>
  return
}

// -----

// attn_sparse_c3: kv is [B, T, D] bf16.
// expected-error @+2 {{kv must have rank 3, got 4 (shape [2, 21, 1, 72]) [attn_sparse_c3]}}
func.func @f(%q: tensor<2x21x4x72xbf16>, %kv: tensor<2x21x1x72xbf16>, %r: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %s: tensor<4xf32>, %p: tensor<2xi64>) {
  %0 = v4.attn.sparse %q, %kv, %r, %s, %p window 8 : tensor<2x21x4x72xbf16>, tensor<2x21x1x72xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, tensor<4xf32>, tensor<2xi64> -> tensor<2x21x4x72xbf16>
  return
}

// -----

// attn_sparse_c4: kv has the sequences and tokens of q.
// expected-error @+2 {{expected kv dim 1 (T) = q dim 1 = 21, got 20 [attn_sparse_c4]}}
func.func @f(%q: tensor<2x21x4x72xbf16>, %kv: tensor<2x20x72xbf16>, %r: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %s: tensor<4xf32>, %p: tensor<2xi64>) {
  %0 = v4.attn.sparse %q, %kv, %r, %s, %p window 8 : tensor<2x21x4x72xbf16>, tensor<2x20x72xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, tensor<4xf32>, tensor<2xi64> -> tensor<2x21x4x72xbf16>
  return
}

// -----

// attn_sparse_c5: kv width = head width (one shared head).
// expected-error @+2 {{expected kv dim 2 (D) = q dim 3 = 72, got 64 [attn_sparse_c5]}}
func.func @f(%q: tensor<2x21x4x72xbf16>, %kv: tensor<2x21x64xbf16>, %r: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %s: tensor<4xf32>, %p: tensor<2xi64>) {
  %0 = v4.attn.sparse %q, %kv, %r, %s, %p window 8 : tensor<2x21x4x72xbf16>, tensor<2x21x64xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, tensor<4xf32>, tensor<2xi64> -> tensor<2x21x4x72xbf16>
  return
}

// -----

// attn_sparse_c6: the ring matches B, D and is bf16.
// expected-error @+2 {{expected ring dim = q dim 3 (D) = 72, got 64 [attn_sparse_c6]}}
func.func @f(%q: tensor<2x21x4x72xbf16>, %kv: tensor<2x21x72xbf16>, %r: !v4.window_ring<batch = 2, slots = 8, dim = 64, elementType = bf16>, %s: tensor<4xf32>, %p: tensor<2xi64>) {
  %0 = v4.attn.sparse %q, %kv, %r, %s, %p window 8 : tensor<2x21x4x72xbf16>, tensor<2x21x72xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 64, elementType = bf16>, tensor<4xf32>, tensor<2xi64> -> tensor<2x21x4x72xbf16>
  return
}

// -----

// attn_sparse_c7: window = ring slots.
// expected-error @+2 {{expected window = ring slots (8), got 16 [attn_sparse_c7]}}
func.func @f(%q: tensor<2x21x4x72xbf16>, %kv: tensor<2x21x72xbf16>, %r: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %s: tensor<4xf32>, %p: tensor<2xi64>) {
  %0 = v4.attn.sparse %q, %kv, %r, %s, %p window 16 : tensor<2x21x4x72xbf16>, tensor<2x21x72xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, tensor<4xf32>, tensor<2xi64> -> tensor<2x21x4x72xbf16>
  return
}

// -----

// attn_sparse_c8: sink is [H] f32.
// expected-error @+2 {{expected sink length = q dim 2 (H) = 4, got 8 [attn_sparse_c8]}}
func.func @f(%q: tensor<2x21x4x72xbf16>, %kv: tensor<2x21x72xbf16>, %r: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %s: tensor<8xf32>, %p: tensor<2xi64>) {
  %0 = v4.attn.sparse %q, %kv, %r, %s, %p window 8 : tensor<2x21x4x72xbf16>, tensor<2x21x72xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, tensor<8xf32>, tensor<2xi64> -> tensor<2x21x4x72xbf16>
  return
}

// -----

// attn_sparse_c9: startPos is [B] i64.
// expected-error @+2 {{expected startPos element type 'i64', got 'i32' [attn_sparse_c9]}}
func.func @f(%q: tensor<2x21x4x72xbf16>, %kv: tensor<2x21x72xbf16>, %r: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %s: tensor<4xf32>, %p: tensor<2xi32>) {
  %0 = v4.attn.sparse %q, %kv, %r, %s, %p window 8 : tensor<2x21x4x72xbf16>, tensor<2x21x72xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, tensor<4xf32>, tensor<2xi32> -> tensor<2x21x4x72xbf16>
  return
}

// -----

// attn_sparse_c10: startPos length = B.
// expected-error @+2 {{expected startPos length (batch) = 2, got 1 [attn_sparse_c10]}}
func.func @f(%q: tensor<2x21x4x72xbf16>, %kv: tensor<2x21x72xbf16>, %r: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %s: tensor<4xf32>, %p: tensor<1xi64>) {
  %0 = v4.attn.sparse %q, %kv, %r, %s, %p window 8 : tensor<2x21x4x72xbf16>, tensor<2x21x72xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, tensor<4xf32>, tensor<1xi64> -> tensor<2x21x4x72xbf16>
  return
}

// -----

// attn_sparse_c11: the cache matches B, D and is bf16.
// expected-error @+2 {{expected cache dim = q dim 3 (D) = 72, got 64 [attn_sparse_c11]}}
func.func @f(%q: tensor<2x21x4x72xbf16>, %kv: tensor<2x21x72xbf16>, %r: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %s: tensor<4xf32>, %p: tensor<2xi64>, %c: !v4.kv_cache<batch = 2, capacity = 8, dim = 64, ratio = 8, elementType = bf16>) {
  %0 = v4.attn.sparse %q, %kv, %r, %s, %p compressed %c : !v4.kv_cache<batch = 2, capacity = 8, dim = 64, ratio = 8, elementType = bf16> window 8 : tensor<2x21x4x72xbf16>, tensor<2x21x72xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, tensor<4xf32>, tensor<2xi64> -> tensor<2x21x4x72xbf16>
  return
}

// -----

// attn_sparse_c12: topk indices only with a cache.
// expected-error @+2 {{expected a compressed cache with topk indices (CSA) [attn_sparse_c12]}}
func.func @f(%q: tensor<2x21x4x72xbf16>, %kv: tensor<2x21x72xbf16>, %r: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %s: tensor<4xf32>, %p: tensor<2xi64>, %i: tensor<2x21x8xi64>) {
  %0 = v4.attn.sparse %q, %kv, %r, %s, %p indices %i : tensor<2x21x8xi64> window 8 : tensor<2x21x4x72xbf16>, tensor<2x21x72xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, tensor<4xf32>, tensor<2xi64> -> tensor<2x21x4x72xbf16>
  return
}

// -----

// attn_sparse_c13: CSA (indices) uses the ratio-4 cache.
// expected-error @+2 {{expected cache ratio = 4 with topk indices (CSA), got 8 [attn_sparse_c13]}}
func.func @f(%q: tensor<2x21x4x72xbf16>, %kv: tensor<2x21x72xbf16>, %r: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %s: tensor<4xf32>, %p: tensor<2xi64>, %c: !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16>, %i: tensor<2x21x8xi64>) {
  %0 = v4.attn.sparse %q, %kv, %r, %s, %p compressed %c : !v4.kv_cache<batch = 2, capacity = 8, dim = 72, ratio = 8, elementType = bf16> indices %i : tensor<2x21x8xi64> window 8 : tensor<2x21x4x72xbf16>, tensor<2x21x72xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, tensor<4xf32>, tensor<2xi64> -> tensor<2x21x4x72xbf16>
  return
}

// -----

// attn_sparse_c14: indices are [B, T, K] i64.
// expected-error @+2 {{expected topkIndices element type 'i64', got 'i32' [attn_sparse_c14]}}
func.func @f(%q: tensor<2x21x4x72xbf16>, %kv: tensor<2x21x72xbf16>, %r: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %s: tensor<4xf32>, %p: tensor<2xi64>, %c: !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>, %i: tensor<2x21x8xi32>) {
  %0 = v4.attn.sparse %q, %kv, %r, %s, %p compressed %c : !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16> indices %i : tensor<2x21x8xi32> window 8 : tensor<2x21x4x72xbf16>, tensor<2x21x72xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, tensor<4xf32>, tensor<2xi64> -> tensor<2x21x4x72xbf16>
  return
}

// -----

// attn_sparse_c15: 1 <= K <= cache capacity.
// expected-error @+2 {{expected 1 <= topkIndices dim 2 (K) <= cache capacity (16), got 32 [attn_sparse_c15]}}
func.func @f(%q: tensor<2x21x4x72xbf16>, %kv: tensor<2x21x72xbf16>, %r: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %s: tensor<4xf32>, %p: tensor<2xi64>, %c: !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>, %i: tensor<2x21x32xi64>) {
  %0 = v4.attn.sparse %q, %kv, %r, %s, %p compressed %c : !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16> indices %i : tensor<2x21x32xi64> window 8 : tensor<2x21x4x72xbf16>, tensor<2x21x72xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, tensor<4xf32>, tensor<2xi64> -> tensor<2x21x4x72xbf16>
  return
}

// -----

// attn_sparse_c16: HCA (no indices) is not ratio 4.
// expected-error @+2 {{expected cache ratio != 4 without topk indices (HCA), got 4 [attn_sparse_c16]}}
func.func @f(%q: tensor<2x21x4x72xbf16>, %kv: tensor<2x21x72xbf16>, %r: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %s: tensor<4xf32>, %p: tensor<2xi64>, %c: !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16>) {
  %0 = v4.attn.sparse %q, %kv, %r, %s, %p compressed %c : !v4.kv_cache<batch = 2, capacity = 16, dim = 72, ratio = 4, elementType = bf16> window 8 : tensor<2x21x4x72xbf16>, tensor<2x21x72xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, tensor<4xf32>, tensor<2xi64> -> tensor<2x21x4x72xbf16>
  return
}

// -----

// attn_sparse_c17: scale is positive and finite.
// expected-error @+2 {{expected scale > 0 and finite, got -1.000000e+00 [attn_sparse_c17]}}
func.func @f(%q: tensor<2x21x4x72xbf16>, %kv: tensor<2x21x72xbf16>, %r: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %s: tensor<4xf32>, %p: tensor<2xi64>) {
  %0 = v4.attn.sparse %q, %kv, %r, %s, %p window 8 scale -1.0 : tensor<2x21x4x72xbf16>, tensor<2x21x72xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, tensor<4xf32>, tensor<2xi64> -> tensor<2x21x4x72xbf16>
  return
}

// -----

// attn_sparse_c18: the result is [B, T, H, D] bf16 like q.
// expected-error @+2 {{expected result shape [2, 21, 4, 64] to match q shape [2, 21, 4, 72] [attn_sparse_c18]}}
func.func @f(%q: tensor<2x21x4x72xbf16>, %kv: tensor<2x21x72xbf16>, %r: !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, %s: tensor<4xf32>, %p: tensor<2xi64>) {
  %0 = v4.attn.sparse %q, %kv, %r, %s, %p window 8 : tensor<2x21x4x72xbf16>, tensor<2x21x72xbf16>, !v4.window_ring<batch = 2, slots = 8, dim = 72, elementType = bf16>, tensor<4xf32>, tensor<2xi64> -> tensor<2x21x4x64xbf16>
  return
}
