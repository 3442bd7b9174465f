// RUN: v4-opt %s | v4-opt | FileCheck %s
// RUN: v4-opt %s --mlir-print-op-generic | v4-opt | FileCheck %s

// CHECK-LABEL: func.func @state_types
// CHECK-SAME: !v4.window_ring<batch = 2, slots = 128, dim = 512, elementType = bf16>
// CHECK-SAME: !v4.kv_cache<batch = 2, capacity = 1024, dim = 512, ratio = 4, elementType = bf16>
// CHECK-SAME: !v4.compressor_state<batch = 2, ratio = 128, dim = 512>
// CHECK-SAME: !v4.engram_state<batch = 2, lookback = 3>
func.func @state_types(
    %ring: !v4.window_ring<batch = 2, slots = 128, dim = 512, elementType = bf16>,
    %cache: !v4.kv_cache<batch = 2, capacity = 1024, dim = 512, ratio = 4, elementType = bf16>,
    %state: !v4.compressor_state<batch = 2, ratio = 128, dim = 512>,
    %engram: !v4.engram_state<batch = 2, lookback = 3>) {
  return
}

// CHECK-LABEL: func.func @rope_attr
// CHECK: #v4.rope<ropeDim = 64, base = 1.600000e+05 : f64, factor = 1.600000e+01 : f64, originalSeqLen = 65536
func.func @rope_attr() attributes {table = #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0>} {
  return
}
