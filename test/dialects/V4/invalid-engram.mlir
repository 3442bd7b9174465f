// RUN: v4-opt %s -split-input-file -verify-diagnostics

// engram_state_empty_c1: the pad is a compressed id, hence >= 0.
func.func @state_pad() {
  // expected-error @+1 {{expected padId >= 0, got -1 [engram_state_empty_c1]}}
  %s = v4.engram.state_empty pad -1 : !v4.engram_state<batch = 1, lookback = 2>
  return
}

// -----

// engram_hash_c1: orders n = 2 ... N are used, so N >= 2.
func.func @hash_ngram(%ids: tensor<2x8xi64>, %map: tensor<97xi64>, %mult: tensor<1xi64>, %s: !v4.engram_state<batch = 2, lookback = 1>) {
  // expected-error @+1 {{expected maxNgram >= 2, got 1 [engram_hash_c1]}}
  %rows, %s1 = v4.engram.hash %ids, %map, %mult, %s
      {maxNgram = 1 : i64, heads = 2 : i64, primes = array<i64>, padId = 2 : i64}
      : (tensor<2x8xi64>, tensor<97xi64>, tensor<1xi64>, !v4.engram_state<batch = 2, lookback = 1>)
      -> (tensor<2x8x0xi32>, !v4.engram_state<batch = 2, lookback = 1>)
  return
}

// -----

// engram_hash_c2: at least one head per order.
func.func @hash_heads(%ids: tensor<2x8xi64>, %map: tensor<97xi64>, %mult: tensor<3xi64>, %s: !v4.engram_state<batch = 2, lookback = 2>) {
  // expected-error @+1 {{expected heads > 0, got 0 [engram_hash_c2]}}
  %rows, %s1 = v4.engram.hash %ids, %map, %mult, %s
      {maxNgram = 3 : i64, heads = 0 : i64, primes = array<i64>, padId = 2 : i64}
      : (tensor<2x8xi64>, tensor<97xi64>, tensor<3xi64>, !v4.engram_state<batch = 2, lookback = 2>)
      -> (tensor<2x8x0xi32>, !v4.engram_state<batch = 2, lookback = 2>)
  return
}

// -----

// engram_hash_c3: one table size per (order, head).
func.func @hash_prime_count(%ids: tensor<2x8xi64>, %map: tensor<97xi64>, %mult: tensor<3xi64>, %s: !v4.engram_state<batch = 2, lookback = 2>) {
  // expected-error @+1 {{expected (maxNgram-1)*heads = 4 primes, got 3 [engram_hash_c3]}}
  %rows, %s1 = v4.engram.hash %ids, %map, %mult, %s
      {maxNgram = 3 : i64, heads = 2 : i64, primes = array<i64: 41, 43, 47>, padId = 2 : i64}
      : (tensor<2x8xi64>, tensor<97xi64>, tensor<3xi64>, !v4.engram_state<batch = 2, lookback = 2>)
      -> (tensor<2x8x4xi32>, !v4.engram_state<batch = 2, lookback = 2>)
  return
}

// -----

// engram_hash_c4: every table size is a prime.
func.func @hash_not_prime(%ids: tensor<2x8xi64>, %map: tensor<97xi64>, %mult: tensor<3xi64>, %s: !v4.engram_state<batch = 2, lookback = 2>) {
  // expected-error @+1 {{expected primes[2] to be a prime, got 49 [engram_hash_c4]}}
  %rows, %s1 = v4.engram.hash %ids, %map, %mult, %s
      {maxNgram = 3 : i64, heads = 2 : i64, primes = array<i64: 41, 43, 49, 53>, padId = 2 : i64}
      : (tensor<2x8xi64>, tensor<97xi64>, tensor<3xi64>, !v4.engram_state<batch = 2, lookback = 2>)
      -> (tensor<2x8x4xi32>, !v4.engram_state<batch = 2, lookback = 2>)
  return
}

// -----

// engram_hash_c4: every table size is a prime (1 is not).
func.func @hash_one(%ids: tensor<2x8xi64>, %map: tensor<97xi64>, %mult: tensor<3xi64>, %s: !v4.engram_state<batch = 2, lookback = 2>) {
  // expected-error @+1 {{expected primes[0] to be a prime, got 1 [engram_hash_c4]}}
  %rows, %s1 = v4.engram.hash %ids, %map, %mult, %s
      {maxNgram = 3 : i64, heads = 2 : i64, primes = array<i64: 1, 43, 47, 53>, padId = 2 : i64}
      : (tensor<2x8xi64>, tensor<97xi64>, tensor<3xi64>, !v4.engram_state<batch = 2, lookback = 2>)
      -> (tensor<2x8x4xi32>, !v4.engram_state<batch = 2, lookback = 2>)
  return
}

// -----

// engram_hash_c5: no table size is used twice within a layer.
func.func @hash_duplicate(%ids: tensor<2x8xi64>, %map: tensor<97xi64>, %mult: tensor<3xi64>, %s: !v4.engram_state<batch = 2, lookback = 2>) {
  // expected-error @+1 {{expected distinct primes, got 41 again at index 2 [engram_hash_c5]}}
  %rows, %s1 = v4.engram.hash %ids, %map, %mult, %s
      {maxNgram = 3 : i64, heads = 2 : i64, primes = array<i64: 41, 43, 41, 43>, padId = 2 : i64}
      : (tensor<2x8xi64>, tensor<97xi64>, tensor<3xi64>, !v4.engram_state<batch = 2, lookback = 2>)
      -> (tensor<2x8x4xi32>, !v4.engram_state<batch = 2, lookback = 2>)
  return
}

// -----

// engram_hash_c6: within one order the heads' primes increase.
func.func @hash_order(%ids: tensor<2x8xi64>, %map: tensor<97xi64>, %mult: tensor<3xi64>, %s: !v4.engram_state<batch = 2, lookback = 2>) {
  // expected-error @+1 {{expected primes of order 3 to increase with the head, got 53 then 47 at index 3 [engram_hash_c6]}}
  %rows, %s1 = v4.engram.hash %ids, %map, %mult, %s
      {maxNgram = 3 : i64, heads = 2 : i64, primes = array<i64: 41, 43, 53, 47>, padId = 2 : i64}
      : (tensor<2x8xi64>, tensor<97xi64>, tensor<3xi64>, !v4.engram_state<batch = 2, lookback = 2>)
      -> (tensor<2x8x4xi32>, !v4.engram_state<batch = 2, lookback = 2>)
  return
}

// -----

// engram_hash_c7: ids are [B, T] integer token ids.
func.func @hash_ids(%ids: tensor<2x8xf32>, %map: tensor<97xi64>, %mult: tensor<3xi64>, %s: !v4.engram_state<batch = 2, lookback = 2>) {
  // expected-error @+1 {{expected ids element type 'i32' or 'i64', got 'f32' [engram_hash_c7]}}
  %rows, %s1 = v4.engram.hash %ids, %map, %mult, %s
      {maxNgram = 3 : i64, heads = 2 : i64, primes = array<i64: 41, 43, 47, 53>, padId = 2 : i64}
      : (tensor<2x8xf32>, tensor<97xi64>, tensor<3xi64>, !v4.engram_state<batch = 2, lookback = 2>)
      -> (tensor<2x8x4xi32>, !v4.engram_state<batch = 2, lookback = 2>)
  return
}

// -----

// engram_hash_c8: tokenMap is a [vocab] integer table.
func.func @hash_map(%ids: tensor<2x8xi64>, %map: tensor<97x1xi64>, %mult: tensor<3xi64>, %s: !v4.engram_state<batch = 2, lookback = 2>) {
  // expected-error @+1 {{tokenMap must have rank 1, got 2 (shape [97, 1]) [engram_hash_c8]}}
  %rows, %s1 = v4.engram.hash %ids, %map, %mult, %s
      {maxNgram = 3 : i64, heads = 2 : i64, primes = array<i64: 41, 43, 47, 53>, padId = 2 : i64}
      : (tensor<2x8xi64>, tensor<97x1xi64>, tensor<3xi64>, !v4.engram_state<batch = 2, lookback = 2>)
      -> (tensor<2x8x4xi32>, !v4.engram_state<batch = 2, lookback = 2>)
  return
}

// -----

// engram_hash_c9: multipliers are [N] i64.
func.func @hash_mult(%ids: tensor<2x8xi64>, %map: tensor<97xi64>, %mult: tensor<2xi64>, %s: !v4.engram_state<batch = 2, lookback = 2>) {
  // expected-error @+1 {{expected multipliers shape [3] ([maxNgram]), got [2] [engram_hash_c9]}}
  %rows, %s1 = v4.engram.hash %ids, %map, %mult, %s
      {maxNgram = 3 : i64, heads = 2 : i64, primes = array<i64: 41, 43, 47, 53>, padId = 2 : i64}
      : (tensor<2x8xi64>, tensor<97xi64>, tensor<2xi64>, !v4.engram_state<batch = 2, lookback = 2>)
      -> (tensor<2x8x4xi32>, !v4.engram_state<batch = 2, lookback = 2>)
  return
}

// -----

// engram_hash_c9: multipliers are [N] i64.
func.func @hash_mult_i32(%ids: tensor<2x8xi64>, %map: tensor<97xi64>, %mult: tensor<3xi32>, %s: !v4.engram_state<batch = 2, lookback = 2>) {
  // expected-error @+1 {{expected multipliers element type 'i64', got 'i32' [engram_hash_c9]}}
  %rows, %s1 = v4.engram.hash %ids, %map, %mult, %s
      {maxNgram = 3 : i64, heads = 2 : i64, primes = array<i64: 41, 43, 47, 53>, padId = 2 : i64}
      : (tensor<2x8xi64>, tensor<97xi64>, tensor<3xi32>, !v4.engram_state<batch = 2, lookback = 2>)
      -> (tensor<2x8x4xi32>, !v4.engram_state<batch = 2, lookback = 2>)
  return
}

// -----

// engram_hash_c10: the state holds N-1 ids of each of the B sequences.
func.func @hash_lookback(%ids: tensor<2x8xi64>, %map: tensor<97xi64>, %mult: tensor<3xi64>, %s: !v4.engram_state<batch = 2, lookback = 3>) {
  // expected-error @+1 {{expected state lookback = maxNgram-1 = 2, got 3 [engram_hash_c10]}}
  %rows, %s1 = v4.engram.hash %ids, %map, %mult, %s
      {maxNgram = 3 : i64, heads = 2 : i64, primes = array<i64: 41, 43, 47, 53>, padId = 2 : i64}
      : (tensor<2x8xi64>, tensor<97xi64>, tensor<3xi64>, !v4.engram_state<batch = 2, lookback = 3>)
      -> (tensor<2x8x4xi32>, !v4.engram_state<batch = 2, lookback = 3>)
  return
}

// -----

// engram_hash_c10: the state holds N-1 ids of each of the B sequences.
func.func @hash_batch(%ids: tensor<2x8xi64>, %map: tensor<97xi64>, %mult: tensor<3xi64>, %s: !v4.engram_state<batch = 1, lookback = 2>) {
  // expected-error @+1 {{expected state batch (B of ids) = 2, got 1 [engram_hash_c10]}}
  %rows, %s1 = v4.engram.hash %ids, %map, %mult, %s
      {maxNgram = 3 : i64, heads = 2 : i64, primes = array<i64: 41, 43, 47, 53>, padId = 2 : i64}
      : (tensor<2x8xi64>, tensor<97xi64>, tensor<3xi64>, !v4.engram_state<batch = 1, lookback = 2>)
      -> (tensor<2x8x4xi32>, !v4.engram_state<batch = 1, lookback = 2>)
  return
}

// -----

// engram_hash_c11: the new state has the type of the old one.
func.func @hash_new_state(%ids: tensor<2x8xi64>, %map: tensor<97xi64>, %mult: tensor<3xi64>, %s: !v4.engram_state<batch = 2, lookback = 2>) {
  // expected-error @+1 {{expected newState type '!v4.engram_state<batch = 2, lookback = 2>', got '!v4.engram_state<batch = 1, lookback = 2>' [engram_hash_c11]}}
  %rows, %s1 = v4.engram.hash %ids, %map, %mult, %s
      {maxNgram = 3 : i64, heads = 2 : i64, primes = array<i64: 41, 43, 47, 53>, padId = 2 : i64}
      : (tensor<2x8xi64>, tensor<97xi64>, tensor<3xi64>, !v4.engram_state<batch = 2, lookback = 2>)
      -> (tensor<2x8x4xi32>, !v4.engram_state<batch = 1, lookback = 2>)
  return
}

// -----

// engram_hash_c12: rows are [B, T, (N-1)*H] i32 or i64.
func.func @hash_rows(%ids: tensor<2x?xi64>, %map: tensor<97xi64>, %mult: tensor<3xi64>, %s: !v4.engram_state<batch = 2, lookback = 2>) {
  // expected-error @+1 {{expected rows shape [2, ?, 4] ([B, T, (maxNgram-1)*heads]), got [2, ?, 6] [engram_hash_c12]}}
  %rows, %s1 = v4.engram.hash %ids, %map, %mult, %s
      {maxNgram = 3 : i64, heads = 2 : i64, primes = array<i64: 41, 43, 47, 53>, padId = 2 : i64}
      : (tensor<2x?xi64>, tensor<97xi64>, tensor<3xi64>, !v4.engram_state<batch = 2, lookback = 2>)
      -> (tensor<2x?x6xi32>, !v4.engram_state<batch = 2, lookback = 2>)
  return
}

// -----

// engram_hash_c12: rows are [B, T, (N-1)*H] i32 or i64.
func.func @hash_rows_i16(%ids: tensor<2x8xi64>, %map: tensor<97xi64>, %mult: tensor<3xi64>, %s: !v4.engram_state<batch = 2, lookback = 2>) {
  // expected-error @+1 {{expected rows element type 'i32' or 'i64', got 'i16' [engram_hash_c12]}}
  %rows, %s1 = v4.engram.hash %ids, %map, %mult, %s
      {maxNgram = 3 : i64, heads = 2 : i64, primes = array<i64: 41, 43, 47, 53>, padId = 2 : i64}
      : (tensor<2x8xi64>, tensor<97xi64>, tensor<3xi64>, !v4.engram_state<batch = 2, lookback = 2>)
      -> (tensor<2x8x4xi16>, !v4.engram_state<batch = 2, lookback = 2>)
  return
}

// -----

// engram_hash_c13: every row index (< sum of primes) fits the row type.
func.func @hash_i32_overflow(%ids: tensor<2x8xi64>, %map: tensor<97xi64>, %mult: tensor<2xi64>, %s: !v4.engram_state<batch = 2, lookback = 1>) {
  // expected-error @+1 {{expected the sum of primes (table rows) <= 2147483647 for 'i32' row indices, got 2147483650 [engram_hash_c13]}}
  %rows, %s1 = v4.engram.hash %ids, %map, %mult, %s
      {maxNgram = 2 : i64, heads = 2 : i64, primes = array<i64: 3, 2147483647>, padId = 2 : i64}
      : (tensor<2x8xi64>, tensor<97xi64>, tensor<2xi64>, !v4.engram_state<batch = 2, lookback = 1>)
      -> (tensor<2x8x2xi32>, !v4.engram_state<batch = 2, lookback = 1>)
  return
}

// -----

// engram_hash_c14: the pad is a compressed id of the token map's type.
func.func @hash_pad(%ids: tensor<2x8xi64>, %map: tensor<97xi32>, %mult: tensor<3xi64>, %s: !v4.engram_state<batch = 2, lookback = 2>) {
  // expected-error @+1 {{expected padId in [0, 2147483647] (a compressed id of type 'i32'), got -2 [engram_hash_c14]}}
  %rows, %s1 = v4.engram.hash %ids, %map, %mult, %s
      {maxNgram = 3 : i64, heads = 2 : i64, primes = array<i64: 41, 43, 47, 53>, padId = -2 : i64}
      : (tensor<2x8xi64>, tensor<97xi32>, tensor<3xi64>, !v4.engram_state<batch = 2, lookback = 2>)
      -> (tensor<2x8x4xi32>, !v4.engram_state<batch = 2, lookback = 2>)
  return
}

// -----

// engram_lookup_c1: rows are [B, T, R] i32 or i64.
func.func @lookup_rows(%rows: tensor<2x8xi32>, %table: tensor<184x32xbf16>) {
  // expected-error @+1 {{rows must have rank 3, got 2 (shape [2, 8]) [engram_lookup_c1]}}
  %e = v4.engram.lookup %rows, %table {numEmbeddings = 184 : i64}
      : (tensor<2x8xi32>, tensor<184x32xbf16>) -> tensor<2x8x32xbf16>
  return
}

// -----

// engram_lookup_c2: the table is [numEmbeddings, De] FP8 or bf16.
func.func @lookup_table_f16(%rows: tensor<2x8x4xi32>, %table: tensor<184x32xf16>) {
  // expected-error @+1 {{expected table element type 'f8E4M3FN' or 'bf16', got 'f16' [engram_lookup_c2]}}
  %e = v4.engram.lookup %rows, %table {numEmbeddings = 184 : i64}
      : (tensor<2x8x4xi32>, tensor<184x32xf16>) -> tensor<2x8x128xbf16>
  return
}

// -----

// engram_lookup_c3: numEmbeddings > 0 is the table's row count.
func.func @lookup_rows_count(%rows: tensor<2x8x4xi32>, %table: tensor<184x32xbf16>) {
  // expected-error @+1 {{expected table rows (numEmbeddings) = 200, got 184 [engram_lookup_c3]}}
  %e = v4.engram.lookup %rows, %table {numEmbeddings = 200 : i64}
      : (tensor<2x8x4xi32>, tensor<184x32xbf16>) -> tensor<2x8x128xbf16>
  return
}

// -----

// engram_lookup_c3: numEmbeddings > 0 is the table's row count.
func.func @lookup_zero(%rows: tensor<2x8x4xi32>, %table: tensor<?x32xbf16>) {
  // expected-error @+1 {{expected numEmbeddings > 0, got 0 [engram_lookup_c3]}}
  %e = v4.engram.lookup %rows, %table {numEmbeddings = 0 : i64}
      : (tensor<2x8x4xi32>, tensor<?x32xbf16>) -> tensor<2x8x128xbf16>
  return
}

// -----

// engram_lookup_c4: every row index (< numEmbeddings) fits the row type.
func.func @lookup_i32_overflow(%rows: tensor<1x1x24xi32>, %table: tensor<2147483649x32xbf16>) {
  // expected-error @+1 {{expected numEmbeddings (2147483649) <= 2147483648 for 'i32' row indices [engram_lookup_c4]}}
  %e = v4.engram.lookup %rows, %table {numEmbeddings = 2147483649 : i64}
      : (tensor<1x1x24xi32>, tensor<2147483649x32xbf16>) -> tensor<1x1x768xbf16>
  return
}

// -----

// engram_lookup_c5: an FP8 table comes with its scales, a bf16 one without.
func.func @lookup_missing_scale(%rows: tensor<2x8x4xi32>, %table: tensor<184x32xf8E4M3FN>) {
  // expected-error @+1 {{expected a scale operand with a 'f8E4M3FN' table [engram_lookup_c5]}}
  %e = v4.engram.lookup %rows, %table {numEmbeddings = 184 : i64}
      : (tensor<2x8x4xi32>, tensor<184x32xf8E4M3FN>) -> tensor<2x8x128xbf16>
  return
}

// -----

// engram_lookup_c5: an FP8 table comes with its scales, a bf16 one without.
func.func @lookup_extra_scale(%rows: tensor<2x8x4xi32>, %table: tensor<184x32xbf16>, %scale: tensor<184x1xf8E8M0FNU>) {
  // expected-error @+1 {{expected no scale operand with a 'bf16' table [engram_lookup_c5]}}
  %e = v4.engram.lookup %rows, %table scale %scale {numEmbeddings = 184 : i64}
      : (tensor<2x8x4xi32>, tensor<184x32xbf16>, tensor<184x1xf8E8M0FNU>) -> tensor<2x8x128xbf16>
  return
}

// -----

// engram_lookup_c6: one scale per 32 elements of a row.
func.func @lookup_de(%rows: tensor<2x8x4xi32>, %table: tensor<184x48xf8E4M3FN>, %scale: tensor<184x1xf8E8M0FNU>) {
  // expected-error @+1 {{expected table row width De (48) to be a multiple of 32 [engram_lookup_c6]}}
  %e = v4.engram.lookup %rows, %table scale %scale {numEmbeddings = 184 : i64}
      : (tensor<2x8x4xi32>, tensor<184x48xf8E4M3FN>, tensor<184x1xf8E8M0FNU>) -> tensor<2x8x192xbf16>
  return
}

// -----

// engram_lookup_c7: scale is [numEmbeddings, De/32] f8E8M0FNU.
func.func @lookup_scale_shape(%rows: tensor<1x?x24xi32>, %table: tensor<1000x256xf8E4M3FN>, %scale: tensor<1000x2xf8E8M0FNU>) {
  // expected-error @+1 {{expected scale shape [1000, 8] ([numEmbeddings, De/32]), got [1000, 2] [engram_lookup_c7]}}
  %e = v4.engram.lookup %rows, %table scale %scale {numEmbeddings = 1000 : i64}
      : (tensor<1x?x24xi32>, tensor<1000x256xf8E4M3FN>, tensor<1000x2xf8E8M0FNU>) -> tensor<1x?x6144xbf16>
  return
}

// -----

// engram_lookup_c7: scale is [numEmbeddings, De/32] f8E8M0FNU.
func.func @lookup_scale_type(%rows: tensor<2x8x4xi32>, %table: tensor<184x32xf8E4M3FN>, %scale: tensor<184x1xf32>) {
  // expected-error @+1 {{expected scale element type 'f8E8M0FNU', got 'f32' [engram_lookup_c7]}}
  %e = v4.engram.lookup %rows, %table scale %scale {numEmbeddings = 184 : i64}
      : (tensor<2x8x4xi32>, tensor<184x32xf8E4M3FN>, tensor<184x1xf32>) -> tensor<2x8x128xbf16>
  return
}

// -----

// engram_lookup_c8: e is [B, T, R*De], bf16 or f32.
func.func @lookup_e(%rows: tensor<2x8x4xi32>, %table: tensor<184x32xbf16>) {
  // expected-error @+1 {{expected e shape [2, 8, 128] ([B, T, R*De]), got [2, 8, 32] [engram_lookup_c8]}}
  %e = v4.engram.lookup %rows, %table {numEmbeddings = 184 : i64}
      : (tensor<2x8x4xi32>, tensor<184x32xbf16>) -> tensor<2x8x32xbf16>
  return
}

// -----

// engram_lookup_c8: e is [B, T, R*De], bf16 or f32.
func.func @lookup_e_fp8(%rows: tensor<2x8x4xi32>, %table: tensor<184x32xf8E4M3FN>, %scale: tensor<184x1xf8E8M0FNU>) {
  // expected-error @+1 {{expected e element type 'bf16' or 'f32', got 'f8E4M3FN' [engram_lookup_c8]}}
  %e = v4.engram.lookup %rows, %table scale %scale {numEmbeddings = 184 : i64}
      : (tensor<2x8x4xi32>, tensor<184x32xf8E4M3FN>, tensor<184x1xf8E8M0FNU>) -> tensor<2x8x128xf8E4M3FN>
  return
}

// -----

// engram_gate_c1: x is [B, T, n, d] activations with a static lane count.
func.func @gate_x(%x: tensor<2x8x256xbf16>, %kv: tensor<2x8x320xbf16>, %qw: tensor<4x64xbf16>, %kw: tensor<4x64xbf16>) {
  // expected-error @+1 {{expected x of shape [B, T, n, d] with a static lane count n > 0, got [2, 8, 256] [engram_gate_c1]}}
  %r = v4.engram.gate %x, %kv, %qw, %kw
      : (tensor<2x8x256xbf16>, tensor<2x8x320xbf16>, tensor<4x64xbf16>, tensor<4x64xbf16>) -> tensor<2x8x256xbf16>
  return
}

// -----

// engram_gate_c1: x is [B, T, n, d] activations with a static lane count.
func.func @gate_x_int(%x: tensor<2x8x4x64xi8>, %kv: tensor<2x8x320xi8>, %qw: tensor<4x64xbf16>, %kw: tensor<4x64xbf16>) {
  // expected-error @+1 {{expected x element type 'bf16' or 'f16' or 'f32', got 'i8' [engram_gate_c1]}}
  %r = v4.engram.gate %x, %kv, %qw, %kw
      : (tensor<2x8x4x64xi8>, tensor<2x8x320xi8>, tensor<4x64xbf16>, tensor<4x64xbf16>) -> tensor<2x8x4x64xi8>
  return
}

// -----

// engram_gate_c2: kv is [B, T, (n+1)*d]: n keys, then the value.
func.func @gate_kv(%x: tensor<2x8x4x64xbf16>, %kv: tensor<2x8x256xbf16>, %qw: tensor<4x64xbf16>, %kw: tensor<4x64xbf16>) {
  // expected-error @+1 {{expected kv shape [2, 8, 320] ([B, T, (n+1)*d] of x), got [2, 8, 256] [engram_gate_c2]}}
  %r = v4.engram.gate %x, %kv, %qw, %kw
      : (tensor<2x8x4x64xbf16>, tensor<2x8x256xbf16>, tensor<4x64xbf16>, tensor<4x64xbf16>) -> tensor<2x8x4x64xbf16>
  return
}

// -----

// engram_gate_c3: qWeight is [n, d], bf16 or f32.
func.func @gate_q(%x: tensor<2x8x4x64xbf16>, %kv: tensor<2x8x320xbf16>, %qw: tensor<64xbf16>, %kw: tensor<4x64xbf16>) {
  // expected-error @+1 {{expected qWeight shape [4, 64] ([n, d] of x), got [64] [engram_gate_c3]}}
  %r = v4.engram.gate %x, %kv, %qw, %kw
      : (tensor<2x8x4x64xbf16>, tensor<2x8x320xbf16>, tensor<64xbf16>, tensor<4x64xbf16>) -> tensor<2x8x4x64xbf16>
  return
}

// -----

// engram_gate_c4: kWeight is [n, d], bf16 or f32.
func.func @gate_k(%x: tensor<2x8x4x64xbf16>, %kv: tensor<2x8x320xbf16>, %qw: tensor<4x64xbf16>, %kw: tensor<4x64xf8E4M3FN>) {
  // expected-error @+1 {{expected kWeight element type 'bf16' or 'f32', got 'f8E4M3FN' [engram_gate_c4]}}
  %r = v4.engram.gate %x, %kv, %qw, %kw
      : (tensor<2x8x4x64xbf16>, tensor<2x8x320xbf16>, tensor<4x64xbf16>, tensor<4x64xf8E4M3FN>) -> tensor<2x8x4x64xbf16>
  return
}

// -----

// engram_gate_c5: eps > 0.
func.func @gate_eps(%x: tensor<2x8x4x64xbf16>, %kv: tensor<2x8x320xbf16>, %qw: tensor<4x64xbf16>, %kw: tensor<4x64xbf16>) {
  // expected-error @+1 {{expected eps > 0, got 0.000000e+00 [engram_gate_c5]}}
  %r = v4.engram.gate %x, %kv, %qw, %kw {eps = 0.0 : f64}
      : (tensor<2x8x4x64xbf16>, tensor<2x8x320xbf16>, tensor<4x64xbf16>, tensor<4x64xbf16>) -> tensor<2x8x4x64xbf16>
  return
}

// -----

// engram_gate_c6: the result has the type of x.
func.func @gate_result(%x: tensor<2x8x4x64xbf16>, %kv: tensor<2x8x320xbf16>, %qw: tensor<4x64xbf16>, %kw: tensor<4x64xbf16>) {
  // expected-error @+1 {{expected result type 'tensor<2x8x4x64xbf16>' (that of x), got 'tensor<2x8x4x64xf32>' [engram_gate_c6]}}
  %r = v4.engram.gate %x, %kv, %qw, %kw
      : (tensor<2x8x4x64xbf16>, tensor<2x8x320xbf16>, tensor<4x64xbf16>, tensor<4x64xbf16>) -> tensor<2x8x4x64xf32>
  return
}

// -----

// engram_gate_c7: the short-conv branch is all or nothing.
func.func @gate_conv_no_dilation(%x: tensor<2x8x4x64xbf16>, %kv: tensor<2x8x320xbf16>, %qw: tensor<4x64xbf16>, %kw: tensor<4x64xbf16>,
                                 %cw: tensor<256x1x4xbf16>, %cn: tensor<4x64xbf16>, %h: tensor<2x9x256xbf16>) {
  // expected-error @+1 {{expected convWeight, convNorm, convState, convDilation and the newConvState result all present or all absent, got 4 of 5 [engram_gate_c7]}}
  %r, %h1 = v4.engram.gate %x, %kv, %qw, %kw conv(%cw, %cn, %h)
      : (tensor<2x8x4x64xbf16>, tensor<2x8x320xbf16>, tensor<4x64xbf16>, tensor<4x64xbf16>,
         tensor<256x1x4xbf16>, tensor<4x64xbf16>, tensor<2x9x256xbf16>)
      -> (tensor<2x8x4x64xbf16>, tensor<2x9x256xbf16>)
  return
}

// -----

// engram_gate_c7: the short-conv branch is all or nothing (generic form).
func.func @gate_conv_partial(%x: tensor<2x8x4x64xbf16>, %kv: tensor<2x8x320xbf16>, %qw: tensor<4x64xbf16>, %kw: tensor<4x64xbf16>,
                             %cw: tensor<256x1x4xbf16>) {
  // expected-error @+1 {{got 1 of 5 [engram_gate_c7]}}
  %r = "v4.engram.gate"(%x, %kv, %qw, %kw, %cw) <{operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 0, 0>}>
      : (tensor<2x8x4x64xbf16>, tensor<2x8x320xbf16>, tensor<4x64xbf16>, tensor<4x64xbf16>, tensor<256x1x4xbf16>)
      -> tensor<2x8x4x64xbf16>
  return
}

// -----

// engram_gate_c8: convWeight is the depthwise [n*d, 1, K] layout, K >= 2.
func.func @gate_conv_weight(%x: tensor<2x8x4x64xbf16>, %kv: tensor<2x8x320xbf16>, %qw: tensor<4x64xbf16>, %kw: tensor<4x64xbf16>,
                            %cw: tensor<64x1x4xbf16>, %cn: tensor<4x64xbf16>, %h: tensor<2x9x256xbf16>) {
  // expected-error @+1 {{expected convWeight shape [256, 1, 4] ([n*d, 1, K] of x), got [64, 1, 4] [engram_gate_c8]}}
  %r, %h1 = v4.engram.gate %x, %kv, %qw, %kw conv(%cw, %cn, %h) {convDilation = 3 : i64}
      : (tensor<2x8x4x64xbf16>, tensor<2x8x320xbf16>, tensor<4x64xbf16>, tensor<4x64xbf16>,
         tensor<64x1x4xbf16>, tensor<4x64xbf16>, tensor<2x9x256xbf16>)
      -> (tensor<2x8x4x64xbf16>, tensor<2x9x256xbf16>)
  return
}

// -----

// engram_gate_c8: convWeight is the depthwise [n*d, 1, K] layout, K >= 2.
func.func @gate_conv_kernel(%x: tensor<2x8x4x64xbf16>, %kv: tensor<2x8x320xbf16>, %qw: tensor<4x64xbf16>, %kw: tensor<4x64xbf16>,
                            %cw: tensor<256x1x1xbf16>, %cn: tensor<4x64xbf16>, %h: tensor<2x0x256xbf16>) {
  // expected-error @+1 {{expected convWeight of shape [n*d, 1, K] with a static kernel size K >= 2, got [256, 1, 1] [engram_gate_c8]}}
  %r, %h1 = v4.engram.gate %x, %kv, %qw, %kw conv(%cw, %cn, %h) {convDilation = 3 : i64}
      : (tensor<2x8x4x64xbf16>, tensor<2x8x320xbf16>, tensor<4x64xbf16>, tensor<4x64xbf16>,
         tensor<256x1x1xbf16>, tensor<4x64xbf16>, tensor<2x0x256xbf16>)
      -> (tensor<2x8x4x64xbf16>, tensor<2x0x256xbf16>)
  return
}

// -----

// engram_gate_c9: convNorm holds one RMSNorm weight per lane: [n, d].
func.func @gate_conv_norm(%x: tensor<2x8x4x64xbf16>, %kv: tensor<2x8x320xbf16>, %qw: tensor<4x64xbf16>, %kw: tensor<4x64xbf16>,
                          %cw: tensor<256x1x4xbf16>, %cn: tensor<64xbf16>, %h: tensor<2x9x256xbf16>) {
  // expected-error @+1 {{expected convNorm shape [4, 64] ([n, d] of x), got [64] [engram_gate_c9]}}
  %r, %h1 = v4.engram.gate %x, %kv, %qw, %kw conv(%cw, %cn, %h) {convDilation = 3 : i64}
      : (tensor<2x8x4x64xbf16>, tensor<2x8x320xbf16>, tensor<4x64xbf16>, tensor<4x64xbf16>,
         tensor<256x1x4xbf16>, tensor<64xbf16>, tensor<2x9x256xbf16>)
      -> (tensor<2x8x4x64xbf16>, tensor<2x9x256xbf16>)
  return
}

// -----

// engram_gate_c10: the dilation (= maxNgram) is positive.
func.func @gate_conv_dilation(%x: tensor<2x8x4x64xbf16>, %kv: tensor<2x8x320xbf16>, %qw: tensor<4x64xbf16>, %kw: tensor<4x64xbf16>,
                              %cw: tensor<256x1x4xbf16>, %cn: tensor<4x64xbf16>, %h: tensor<2x9x256xbf16>) {
  // expected-error @+1 {{expected convDilation > 0, got 0 [engram_gate_c10]}}
  %r, %h1 = v4.engram.gate %x, %kv, %qw, %kw conv(%cw, %cn, %h) {convDilation = 0 : i64}
      : (tensor<2x8x4x64xbf16>, tensor<2x8x320xbf16>, tensor<4x64xbf16>, tensor<4x64xbf16>,
         tensor<256x1x4xbf16>, tensor<4x64xbf16>, tensor<2x9x256xbf16>)
      -> (tensor<2x8x4x64xbf16>, tensor<2x9x256xbf16>)
  return
}

// -----

// engram_gate_c11: convState is [B, (K-1)*dilation, n*d] activations.
func.func @gate_conv_state(%x: tensor<2x8x4x64xbf16>, %kv: tensor<2x8x320xbf16>, %qw: tensor<4x64xbf16>, %kw: tensor<4x64xbf16>,
                           %cw: tensor<256x1x4xbf16>, %cn: tensor<4x64xbf16>, %h: tensor<2x12x256xbf16>) {
  // expected-error @+1 {{expected convState shape [2, 9, 256] ([B, (K-1)*convDilation, n*d] with K = 4, convDilation = 3), got [2, 12, 256] [engram_gate_c11]}}
  %r, %h1 = v4.engram.gate %x, %kv, %qw, %kw conv(%cw, %cn, %h) {convDilation = 3 : i64}
      : (tensor<2x8x4x64xbf16>, tensor<2x8x320xbf16>, tensor<4x64xbf16>, tensor<4x64xbf16>,
         tensor<256x1x4xbf16>, tensor<4x64xbf16>, tensor<2x12x256xbf16>)
      -> (tensor<2x8x4x64xbf16>, tensor<2x12x256xbf16>)
  return
}

// -----

// engram_gate_c12: newConvState has the type of convState.
func.func @gate_new_conv_state(%x: tensor<2x8x4x64xbf16>, %kv: tensor<2x8x320xbf16>, %qw: tensor<4x64xbf16>, %kw: tensor<4x64xbf16>,
                               %cw: tensor<256x1x4xbf16>, %cn: tensor<4x64xbf16>, %h: tensor<2x9x256xbf16>) {
  // expected-error @+1 {{expected newConvState type 'tensor<2x9x256xbf16>', got 'tensor<2x9x256xf32>' [engram_gate_c12]}}
  %r, %h1 = v4.engram.gate %x, %kv, %qw, %kw conv(%cw, %cn, %h) {convDilation = 3 : i64}
      : (tensor<2x8x4x64xbf16>, tensor<2x8x320xbf16>, tensor<4x64xbf16>, tensor<4x64xbf16>,
         tensor<256x1x4xbf16>, tensor<4x64xbf16>, tensor<2x9x256xbf16>)
      -> (tensor<2x8x4x64xbf16>, tensor<2x9x256xf32>)
  return
}

// -----

// engram_gate_c13: convNormEps > 0.
func.func @gate_conv_eps(%x: tensor<2x8x4x64xbf16>, %kv: tensor<2x8x320xbf16>, %qw: tensor<4x64xbf16>, %kw: tensor<4x64xbf16>,
                         %cw: tensor<256x1x4xbf16>, %cn: tensor<4x64xbf16>, %h: tensor<2x9x256xbf16>) {
  // expected-error @+1 {{expected convNormEps > 0, got -1.000000e-05 [engram_gate_c13]}}
  %r, %h1 = v4.engram.gate %x, %kv, %qw, %kw conv(%cw, %cn, %h) {convDilation = 3 : i64, convNormEps = -1.0e-5 : f64}
      : (tensor<2x8x4x64xbf16>, tensor<2x8x320xbf16>, tensor<4x64xbf16>, tensor<4x64xbf16>,
         tensor<256x1x4xbf16>, tensor<4x64xbf16>, tensor<2x9x256xbf16>)
      -> (tensor<2x8x4x64xbf16>, tensor<2x9x256xbf16>)
  return
}
