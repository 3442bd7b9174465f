// RUN: v4-opt %s -split-input-file -verify-diagnostics

// state_c1: sizes are positive.
// expected-error @+1 {{window_ring: expected slots > 0, got 0 [state_c1]}}
func.func @ring_zero_slots(%r: !v4.window_ring<batch = 1, slots = 0, dim = 512, elementType = bf16>) { return }

// -----

// state_c2: state holds activations.
// expected-error @+1 {{window_ring: expected elementType bf16, f16, f32 or f8E4M3FN, got 'i32' [state_c2]}}
func.func @ring_int(%r: !v4.window_ring<batch = 1, slots = 128, dim = 512, elementType = i32>) { return }

// -----

// state_c3: a compressor compresses at least 2:1.
// expected-error @+1 {{compressor_state: expected ratio >= 2, got 1 [state_c3]}}
func.func @state_ratio(%s: !v4.compressor_state<batch = 1, ratio = 1, dim = 512>) { return }

// -----

// rope_c1: rotated dims come in pairs.
// expected-error @+1 {{rope: expected ropeDim to be even and > 0, got 63 [rope_c1]}}
func.func @rope_odd() attributes {t = #v4.rope<ropeDim = 63, base = 10000.0, factor = 1.0, originalSeqLen = 0, betaFast = 32.0, betaSlow = 1.0>} { return }

// -----

// rope_c2
// expected-error @+1 {{rope: expected base > 1, got 1.000000e+00 [rope_c2]}}
func.func @rope_base() attributes {t = #v4.rope<ropeDim = 64, base = 1.0, factor = 1.0, originalSeqLen = 0, betaFast = 32.0, betaSlow = 1.0>} { return }

// -----

// rope_c3
// expected-error @+1 {{rope: expected factor >= 1, got 5.000000e-01 [rope_c3]}}
func.func @rope_factor() attributes {t = #v4.rope<ropeDim = 64, base = 10000.0, factor = 0.5, originalSeqLen = 0, betaFast = 32.0, betaSlow = 1.0>} { return }

// -----

// rope_c4
// expected-error @+1 {{rope: expected originalSeqLen > 0 with YaRN, got 0 [rope_c4]}}
func.func @rope_yarn() attributes {t = #v4.rope<ropeDim = 64, base = 10000.0, factor = 4.0, originalSeqLen = 0, betaFast = 32.0, betaSlow = 1.0>} { return }
