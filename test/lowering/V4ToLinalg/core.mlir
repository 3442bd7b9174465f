// RUN: v4-opt %s --pass-pipeline='builtin.module(convert-v4-to-linalg)' | FileCheck %s

// Target-neutral bodies of the core family (lowering/V4ToLinalg/
// V4ToLinalgCore.cpp) on hand-written kernels in the form dispatch formation
// outlines them: every bf16 rounding point is an explicit truncf/extf pair,
// reductions are linalg reductions accumulated in f32, and each result is
// materialized in its destination argument.

module @kernels attributes {v4.target = "cpu"} {

// CHECK-LABEL: func.func @embedding(
// CHECK-SAME:      %[[TABLE:.+]]: tensor<97x64xbf16>, %[[IDS:.+]]: tensor<1x?xi64>, %[[OUT:.+]]: tensor<1x?x64xbf16>)
// CHECK:         %[[G:.+]] = linalg.generic
// CHECK-SAME:        iterator_types = ["parallel", "parallel", "parallel"]
// CHECK-SAME:        ins(%[[IDS]] : tensor<1x?xi64>)
// CHECK:           %[[ID:.+]] = arith.index_cast
// CHECK:           %[[ROW:.+]] = tensor.extract %[[TABLE]][%[[ID]],
// CHECK:           linalg.yield %[[ROW]] : bf16
// CHECK:         bufferization.materialize_in_destination %[[G]] in %[[OUT]]
func.func @embedding(%table: tensor<97x64xbf16>, %ids: tensor<1x?xi64>, %out: tensor<1x?x64xbf16>) -> tensor<1x?x64xbf16> attributes {v4.kernel} {
  %0 = v4.embedding %table[%ids] : tensor<97x64xbf16>, tensor<1x?xi64> -> tensor<1x?x64xbf16>
  %1 = v4.kernel.store %0 into %out : tensor<1x?x64xbf16>
  return %1 : tensor<1x?x64xbf16>
}

// Per-head q norm in "input" precision: the square, the mean, mean + eps and
// the rsqrt are bf16 rounding points.
// v4.last_token: an exact gather of row T - 1.
// CHECK-LABEL: func.func @last_token(
// CHECK-SAME: %[[X:.*]]: tensor<2x?x4x8xbf16>
// CHECK: %[[T:.*]] = tensor.dim %[[X]], %{{.*}}
// CHECK: %[[L:.*]] = arith.subi %[[T]], %{{.*}}
// CHECK: linalg.generic
// CHECK:   %[[B:.*]] = linalg.index 0
// CHECK:   tensor.extract %[[X]][%[[B]], %[[L]], %{{.*}}, %{{.*}}] : tensor<2x?x4x8xbf16>
// CHECK-NOT: arith.truncf
// CHECK-NOT: v4.last_token
func.func @last_token(%x: tensor<2x?x4x8xbf16>, %out: tensor<2x1x4x8xbf16>) -> tensor<2x1x4x8xbf16> attributes {v4.kernel} {
  %0 = v4.last_token %x : tensor<2x?x4x8xbf16> -> tensor<2x1x4x8xbf16>
  %1 = v4.kernel.store %0 into %out : tensor<2x1x4x8xbf16>
  return %1 : tensor<2x1x4x8xbf16>
}

// CHECK-LABEL: func.func @rms_norm_input(
// CHECK-SAME:      %[[X:.+]]: tensor<1x?x4x72xbf16>, %[[OUT:.+]]: tensor<1x?x4x72xbf16>)
// CHECK:         %[[ZERO:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%{{.+}} : tensor<1x?x4xf32>)
// CHECK:         %[[SUM:.+]] = linalg.generic
// CHECK-SAME:        iterator_types = ["parallel", "parallel", "parallel", "reduction"]
// CHECK-SAME:        ins(%[[X]] : tensor<1x?x4x72xbf16>) outs(%[[ZERO]] : tensor<1x?x4xf32>)
// CHECK:         ^bb0(%[[IN:.+]]: bf16, %[[ACC:.+]]: f32):
// CHECK:           %[[V:.+]] = arith.extf %[[IN]] : bf16 to f32
// CHECK:           %[[SQ:.+]] = arith.mulf %[[V]], %[[V]] : f32
// CHECK:           %[[SQB:.+]] = arith.truncf %[[SQ]] : f32 to bf16
// CHECK:           %[[SQR:.+]] = arith.extf %[[SQB]] : bf16 to f32
// CHECK:           %[[NEXT:.+]] = arith.addf %[[ACC]], %[[SQR]] : f32
// CHECK:           linalg.yield %[[NEXT]] : f32
// CHECK:         %[[RSTD:.+]] = linalg.generic
// CHECK-SAME:        ins(%[[SUM]] : tensor<1x?x4xf32>)
// CHECK:           arith.divf
// CHECK:           arith.truncf
// CHECK:           arith.addf
// CHECK:           arith.truncf
// CHECK:           %[[R:.+]] = math.rsqrt
// CHECK:           %[[RB:.+]] = arith.truncf %[[R]] : f32 to bf16
// CHECK:           %[[RR:.+]] = arith.extf %[[RB]] : bf16 to f32
// CHECK:           linalg.yield %[[RR]] : f32
// CHECK:         %[[Y:.+]] = linalg.generic
// CHECK-SAME:        ins(%[[X]], %[[RSTD]] : tensor<1x?x4x72xbf16>, tensor<1x?x4xf32>)
// CHECK:           arith.mulf
// CHECK:           arith.truncf {{.+}} : f32 to bf16
// CHECK:         bufferization.materialize_in_destination %[[Y]] in %[[OUT]]
func.func @rms_norm_input(%x: tensor<1x?x4x72xbf16>, %out: tensor<1x?x4x72xbf16>) -> tensor<1x?x4x72xbf16> attributes {v4.kernel} {
  %0 = v4.rms_norm %x eps 1.0e-6 precision input : tensor<1x?x4x72xbf16>
  %1 = v4.kernel.store %0 into %out : tensor<1x?x4x72xbf16>
  return %1 : tensor<1x?x4x72xbf16>
}

// Weighted, reduceRank 2: one reduction over both trailing dims; the weight
// multiplies the normalised value in f32, one rounding at the end.
// CHECK-LABEL: func.func @rms_norm_weighted(
// CHECK-SAME:      %[[X:.+]]: tensor<2x?x4x64xbf16>, %[[W:.+]]: tensor<4x64xbf16>, %[[OUT:.+]]: tensor<2x?x4x64xbf16>)
// CHECK:         linalg.generic
// CHECK-SAME:        iterator_types = ["parallel", "parallel", "reduction", "reduction"]
// CHECK-NOT:       arith.truncf
// CHECK:           linalg.yield
// CHECK:         linalg.generic
// CHECK:           math.rsqrt
// CHECK-NOT:       arith.truncf
// CHECK:           linalg.yield
// CHECK:         %[[Y:.+]] = linalg.generic
// CHECK-SAME:        ins(%[[X]], %{{.+}}, %[[W]] : tensor<2x?x4x64xbf16>, tensor<2x?xf32>, tensor<4x64xbf16>)
// CHECK:           %[[N:.+]] = arith.mulf
// CHECK:           %[[WV:.+]] = arith.extf %{{.+}} : bf16 to f32
// CHECK:           %[[P:.+]] = arith.mulf %[[WV]], %[[N]] : f32
// CHECK:           arith.truncf %[[P]] : f32 to bf16
// CHECK:         bufferization.materialize_in_destination %[[Y]] in %[[OUT]]
func.func @rms_norm_weighted(%x: tensor<2x?x4x64xbf16>, %w: tensor<4x64xbf16>, %out: tensor<2x?x4x64xbf16>) -> tensor<2x?x4x64xbf16> attributes {v4.kernel} {
  %0 = v4.rms_norm %x, %w eps 1.0e-6 reduceRank 2 : tensor<2x?x4x64xbf16>, tensor<4x64xbf16>
  %1 = v4.kernel.store %0 into %out : tensor<2x?x4x64xbf16>
  return %1 : tensor<2x?x4x64xbf16>
}

// RoPE: the frequency table is a constant; the rotation is computed in f32
// and rounded once; the nope channels are copied (as bits). On the host CPU
// each token's cos and sin of fp32(p) * f'_i go to tables first, once per
// frequency rather than once per element of every head (@rope_gpu below:
// a GPU target keeps them in the one loop nest).
// CHECK-LABEL: func.func @rope_inverse(
// CHECK-SAME:      %[[X:.+]]: tensor<1x?x4x72xbf16>, %[[POS:.+]]: tensor<1x?xi64>, %[[OUT:.+]]: tensor<1x?x4x72xbf16>)
// CHECK:         %[[FREQ:.+]] = arith.constant dense<{{.+}}> : tensor<4xf32>
// CHECK:         %[[TABLES:.+]]:2 = linalg.generic
// CHECK-SAME:        ins(%[[POS]] : tensor<1x?xi64>)
// CHECK:           %[[PF:.+]] = arith.sitofp %{{.+}} : i64 to f32
// CHECK:           %[[F:.+]] = tensor.extract %[[FREQ]]
// CHECK:           %[[TH:.+]] = arith.mulf %[[PF]], %[[F]] : f32
// CHECK:           %[[COS:.+]] = math.cos %[[TH]]
// CHECK:           %[[SIN:.+]] = math.sin %[[TH]]
// CHECK:           linalg.yield %[[COS]], %[[SIN]]
// CHECK:         -> (tensor<1x?x4xf32>, tensor<1x?x4xf32>)
// CHECK:         %[[Y:.+]] = linalg.generic
// CHECK-SAME:        ins(%[[POS]] : tensor<1x?xi64>)
// CHECK:           scf.if
// CHECK:             tensor.extract %[[X]]
// CHECK:           } else {
// CHECK-NOT:         math.cos
// CHECK:             tensor.extract %[[TABLES]]#0
// CHECK:             %[[S:.+]] = tensor.extract %[[TABLES]]#1
// CHECK:             arith.negf %[[S]]
// CHECK:             arith.truncf {{.+}} : f32 to bf16
// CHECK:         bufferization.materialize_in_destination %[[Y]] in %[[OUT]]
func.func @rope_inverse(%x: tensor<1x?x4x72xbf16>, %pos: tensor<1x?xi64>, %out: tensor<1x?x4x72xbf16>) -> tensor<1x?x4x72xbf16> attributes {v4.kernel} {
  %0 = v4.rope %x, %pos table(<ropeDim = 8, base = 1.000000e+04 : f64, factor = 1.000000e+00 : f64, originalSeqLen = 0, betaFast = 3.200000e+01 : f64, betaSlow = 1.000000e+00 : f64>) inverse : tensor<1x?x4x72xbf16>, tensor<1x?xi64>
  %1 = v4.kernel.store %0 into %out : tensor<1x?x4x72xbf16>
  return %1 : tensor<1x?x4x72xbf16>
}

// Hadamard of order 4: widen, log2(4) = 2 butterfly stages in f32, scale and
// round once.
// CHECK-LABEL: func.func @hadamard(
// CHECK:         linalg.generic
// CHECK:           arith.extf {{.+}} : bf16 to f32
// CHECK-COUNT-2: arith.subf
// CHECK:         linalg.generic
// CHECK:           %[[SC:.+]] = arith.mulf %{{.+}}, %{{.+}} : f32
// CHECK:           arith.truncf %[[SC]] : f32 to bf16
// CHECK:         bufferization.materialize_in_destination
func.func @hadamard(%x: tensor<1x?x4xbf16>, %out: tensor<1x?x4xbf16>) -> tensor<1x?x4xbf16> attributes {v4.kernel} {
  %0 = v4.hadamard %x : tensor<1x?x4xbf16>
  %1 = v4.kernel.store %0 into %out : tensor<1x?x4xbf16>
  return %1 : tensor<1x?x4xbf16>
}

// The compressor state is two f32 tensors (kv = 0, score = -inf).
// CHECK-LABEL: func.func @kv_state_empty(
// CHECK-SAME:      %[[KV:.+]]: tensor<1x8x144xf32>, %[[SC:.+]]: tensor<1x8x144xf32>) -> (tensor<1x8x144xf32>, tensor<1x8x144xf32>)
// CHECK-DAG:     %[[ZERO:.+]] = arith.constant 0.000000e+00 : f32
// CHECK-DAG:     %[[NINF:.+]] = arith.constant 0xFF800000 : f32
// CHECK-DAG:     %[[FKV:.+]] = linalg.fill ins(%[[ZERO]] : f32)
// CHECK-DAG:     %[[FSC:.+]] = linalg.fill ins(%[[NINF]] : f32)
// CHECK:         bufferization.materialize_in_destination %[[FKV]] in %[[KV]]
// CHECK:         bufferization.materialize_in_destination %[[FSC]] in %[[SC]]
func.func @kv_state_empty(%arg0: !v4.compressor_state<batch = 1, ratio = 4, dim = 72>) -> !v4.compressor_state<batch = 1, ratio = 4, dim = 72> attributes {v4.kernel} {
  %0 = v4.kv.state_empty : !v4.compressor_state<batch = 1, ratio = 4, dim = 72>
  %1 = v4.kernel.store %0 into %arg0 : !v4.compressor_state<batch = 1, ratio = 4, dim = 72>
  return %1 : !v4.compressor_state<batch = 1, ratio = 4, dim = 72>
}

// CHECK-LABEL: func.func @ring_empty(
// CHECK-SAME:      %[[R:.+]]: tensor<1x8x72xbf16>)
// CHECK:         %[[F:.+]] = linalg.fill ins(%{{.+}} : bf16) outs(%{{.+}} : tensor<1x8x72xbf16>)
// CHECK:         bufferization.materialize_in_destination %[[F]] in %[[R]]
func.func @ring_empty(%arg0: !v4.window_ring<batch = 1, slots = 8, dim = 72, elementType = bf16>) -> !v4.window_ring<batch = 1, slots = 8, dim = 72, elementType = bf16> attributes {v4.kernel} {
  %0 = v4.ring.empty : !v4.window_ring<batch = 1, slots = 8, dim = 72, elementType = bf16>
  %1 = v4.kernel.store %0 into %arg0 : !v4.window_ring<batch = 1, slots = 8, dim = 72, elementType = bf16>
  return %1 : !v4.window_ring<batch = 1, slots = 8, dim = 72, elementType = bf16>
}

// CHECK-LABEL: func.func @cache_empty(
// CHECK:         linalg.fill ins(%{{.+}} : f32) outs(%{{.+}} : tensor<1x5x16xf32>)
func.func @cache_empty(%arg0: !v4.kv_cache<batch = 1, capacity = 5, dim = 16, ratio = 4, elementType = f32>) -> !v4.kv_cache<batch = 1, capacity = 5, dim = 16, ratio = 4, elementType = f32> attributes {v4.kernel} {
  %0 = v4.cache.empty : !v4.kv_cache<batch = 1, capacity = 5, dim = 16, ratio = 4, elementType = f32>
  %1 = v4.kernel.store %0 into %arg0 : !v4.kv_cache<batch = 1, capacity = 5, dim = 16, ratio = 4, elementType = f32>
  return %1 : !v4.kv_cache<batch = 1, capacity = 5, dim = 16, ratio = 4, elementType = f32>
}

// CHECK-LABEL: func.func @engram_state_empty(
// CHECK-SAME:      %[[S:.+]]: tensor<1x2xi64>)
// CHECK:         %[[PAD:.+]] = arith.constant 2 : i64
// CHECK:         %[[F:.+]] = linalg.fill ins(%[[PAD]] : i64)
// CHECK:         bufferization.materialize_in_destination %[[F]] in %[[S]]
func.func @engram_state_empty(%arg0: !v4.engram_state<batch = 1, lookback = 2>) -> !v4.engram_state<batch = 1, lookback = 2> attributes {v4.kernel} {
  %0 = v4.engram.state_empty pad 2 : !v4.engram_state<batch = 1, lookback = 2>
  %1 = v4.kernel.store %0 into %arg0 : !v4.engram_state<batch = 1, lookback = 2>
  return %1 : !v4.engram_state<batch = 1, lookback = 2>
}

// A tied result: the ring operand is the loop's carried value, updated in
// place after bufferization (the store into the same argument folds
// away). Per batch row only the written slots are copied: two runs of
// rows (the second after the wrap), each an exact copy of kv's rows.
// CHECK-LABEL: func.func @ring_write(
// CHECK-SAME:      %[[R:.+]]: tensor<1x8x72xbf16>, %[[KV:.+]]: tensor<1x?x72xbf16>, %[[SP:.+]]: tensor<1xi64>)
// CHECK:         %[[W:.+]] = scf.for %[[B:.+]] = %{{.+}} to %{{.+}} step %{{.+}} iter_args(%[[ACC:.+]] = %[[R]])
// CHECK:           tensor.extract %[[SP]][%[[B]]]
// CHECK:           %[[SRC:.+]] = tensor.extract_slice %[[KV]][%[[B]], %{{.+}}, 0] [1, %{{.+}}, 72] [1, 1, 1]
// CHECK:           %[[DST:.+]] = tensor.extract_slice %[[ACC]][%[[B]], %{{.+}}, 0] [1, %{{.+}}, 72] [1, 1, 1]
// CHECK:           %[[C:.+]] = linalg.generic
// CHECK-SAME:          ins(%[[SRC]] : tensor<1x?x72xbf16>) outs(%[[DST]] : tensor<1x?x72xbf16>)
// CHECK-NEXT:      ^bb0(%[[IN:.+]]: bf16, %{{.+}}: bf16):
// CHECK-NEXT:        linalg.yield %[[IN]] : bf16
// CHECK:           %[[I1:.+]] = tensor.insert_slice %[[C]] into %[[ACC]]
// CHECK:           tensor.extract_slice %[[KV]]
// CHECK:           linalg.generic
// CHECK:           %[[I2:.+]] = tensor.insert_slice %{{.+}} into %[[I1]]
// CHECK:           scf.yield %[[I2]]
// CHECK:         return %[[W]]
func.func @ring_write(%r: !v4.window_ring<batch = 1, slots = 8, dim = 72, elementType = bf16>, %kv: tensor<1x?x72xbf16>, %sp: tensor<1xi64>) -> !v4.window_ring<batch = 1, slots = 8, dim = 72, elementType = bf16> attributes {v4.kernel} {
  %0 = v4.ring.write %kv into %r at %sp : tensor<1x?x72xbf16>, tensor<1xi64> -> !v4.window_ring<batch = 1, slots = 8, dim = 72, elementType = bf16>
  %1 = v4.kernel.store %0 into %r : !v4.window_ring<batch = 1, slots = 8, dim = 72, elementType = bf16>
  return %1 : !v4.window_ring<batch = 1, slots = 8, dim = 72, elementType = bf16>
}

// CHECK-LABEL: func.func @window_indices(
// CHECK-SAME:      %[[SP:.+]]: tensor<2xi64>, %[[OUT:.+]]: tensor<2x10x4xi64>)
// CHECK:         %[[I:.+]] = linalg.generic
// CHECK-SAME:        ins(%[[SP]] : tensor<2xi64>)
// CHECK:           arith.maxsi
// CHECK:           arith.cmpi sle
// CHECK:           arith.select
// CHECK:         bufferization.materialize_in_destination %[[I]] in %[[OUT]]
func.func @window_indices(%sp: tensor<2xi64>, %out: tensor<2x10x4xi64>) -> tensor<2x10x4xi64> attributes {v4.kernel} {
  %0 = v4.attn.window_indices %sp window 4 : tensor<2xi64> -> tensor<2x10x4xi64>
  %1 = v4.kernel.store %0 into %out : tensor<2x10x4xi64>
  return %1 : tensor<2x10x4xi64>
}

// Top-k by repeated arg-max in scalar loops over the index tensor; the
// result is copied into a fresh tensor before the store (a loop result
// stored straight into its destination would not bufferize).
// CHECK-LABEL: func.func @csa_topk(
// CHECK-SAME:      %[[S:.+]]: tensor<2x?x16xf32>, %[[SP:.+]]: tensor<2xi64>, %[[OUT:.+]]: tensor<2x?x4xi64>)
// CHECK:         %[[PICKED:.+]] = scf.for
// CHECK:           scf.for
// CHECK:             scf.for {{.+}} -> (f32, i64, tensor<2x?x4xi64>)
// CHECK:               scf.for {{.+}} -> (f32, i64)
// CHECK:                 arith.cmpf olt
// CHECK:                 arith.cmpf oeq
// CHECK:                 arith.cmpf ogt
// CHECK:               tensor.insert
// CHECK:         %[[COPY:.+]] = linalg.generic
// CHECK-SAME:        ins(%[[PICKED]] : tensor<2x?x4xi64>)
// CHECK:         bufferization.materialize_in_destination %[[COPY]] in %[[OUT]]
func.func @csa_topk(%s: tensor<2x?x16xf32>, %sp: tensor<2xi64>, %out: tensor<2x?x4xi64>) -> tensor<2x?x4xi64> attributes {v4.kernel} {
  %0 = v4.csa.topk %s, %sp k 4 : (tensor<2x?x16xf32>, tensor<2xi64>) -> tensor<2x?x4xi64>
  %1 = v4.kernel.store %0 into %out : tensor<2x?x4xi64>
  return %1 : tensor<2x?x4xi64>
}

}

// CHECK-LABEL: func.func @rope_gpu(
// CHECK:         linalg.generic
// CHECK:           scf.if
// CHECK:           } else {
// CHECK:             %[[TH:.+]] = arith.mulf %{{.+}}, %{{.+}} : f32
// CHECK:             math.cos %[[TH]]
// CHECK:             math.sin %[[TH]]
module @gpu_kernels attributes {v4.target = "sm_90a"} {
func.func @rope_gpu(%x: tensor<1x?x4x72xbf16>, %pos: tensor<1x?xi64>, %out: tensor<1x?x4x72xbf16>) -> tensor<1x?x4x72xbf16> attributes {v4.kernel} {
  %0 = v4.rope %x, %pos table(<ropeDim = 8, base = 1.000000e+04 : f64, factor = 1.000000e+00 : f64, originalSeqLen = 0, betaFast = 3.200000e+01 : f64, betaSlow = 1.000000e+00 : f64>) : tensor<1x?x4x72xbf16>, tensor<1x?xi64>
  %1 = v4.kernel.store %0 into %out : tensor<1x?x4x72xbf16>
  return %1 : tensor<1x?x4x72xbf16>
}
}
