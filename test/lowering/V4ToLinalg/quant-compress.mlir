// RUN: v4-opt %s --pass-pipeline='builtin.module(convert-v4-to-linalg)' | FileCheck %s
// RUN: v4-opt %s --pass-pipeline='builtin.module(convert-v4-to-linalg,eliminate-empty-tensors,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},v4-finalize-kernel-abi)' | FileCheck %s --check-prefix=BUF

// Target-neutral bodies of v4.fake_quant and v4.kv.compress (lowering/
// V4ToLinalg/V4ToLinalgCore.cpp): the FP8/FP4 numerics are the ops of
// lowering/Numerics (no calls), every bf16 rounding point is an explicit
// truncf (and extf where the value stays f32), and the compressor updates
// its tied state and cache in place.

module @kernels attributes {v4.target = "cpu"} {

// FP8, block 64, extent 448 of 512: the block scales (ascending fp32 |x|
// maximum from 0, then the pow-2 scale read off the bits), an exact copy of
// x, then the first 448 channels quantised into a slice of the copy: x / s
// saturated to +-448, RNE onto the e4m3 grid (math.roundeven), times s, one
// rounding to bf16. No bf16 value crosses a branch.
// CHECK-LABEL: func.func @fake_quant_fp8(
// CHECK-SAME:      %[[X:.+]]: tensor<2x?x512xbf16>, %[[OUT:.+]]: tensor<2x?x512xbf16>)
// CHECK:         %[[S:.+]] = linalg.generic
// CHECK-SAME:        outs(%{{.+}} : tensor<2x?x7xf32>)
// CHECK:           scf.for
// CHECK:             tensor.extract %[[X]]
// CHECK:             arith.extf %{{.+}} : bf16 to f32
// CHECK:             math.absf
// CHECK:             arith.maximumf
// CHECK:           arith.bitcast %{{.+}} : f32 to i32
// CHECK:           linalg.yield %{{.+}} : f32
// CHECK:         %[[COPY:.+]] = linalg.generic
// CHECK-SAME:        ins(%[[X]] : tensor<2x?x512xbf16>)
// CHECK-NEXT:      ^bb0(%[[IN:.+]]: bf16, %{{.+}}: bf16):
// CHECK-NEXT:        linalg.yield %[[IN]] : bf16
// CHECK:         %[[XS:.+]] = tensor.extract_slice %[[X]][0, 0, 0] [2, %{{.+}}, 448] [1, 1, 1]
// CHECK:         %[[YS:.+]] = tensor.extract_slice %[[COPY]][0, 0, 0] [2, %{{.+}}, 448] [1, 1, 1]
// CHECK:         %[[Q:.+]] = linalg.generic
// CHECK-SAME:        ins(%[[XS]] : tensor<2x?x448xbf16>) outs(%[[YS]] : tensor<2x?x448xbf16>)
// CHECK:           %[[SC:.+]] = tensor.extract %[[S]]
// CHECK:           %[[V:.+]] = arith.extf %{{.+}} : bf16 to f32
// CHECK:           arith.divf %[[V]], %[[SC]] : f32
// CHECK:           math.roundeven
// CHECK:           %[[Y:.+]] = arith.mulf %{{.+}}, %[[SC]] : f32
// CHECK:           %[[YB:.+]] = arith.truncf %[[Y]] : f32 to bf16
// CHECK:           linalg.yield %[[YB]] : bf16
// CHECK:         %[[R:.+]] = tensor.insert_slice %[[Q]] into %[[COPY]]
// CHECK:         bufferization.materialize_in_destination %[[R]] in %[[OUT]]
// CHECK-NOT:     func.call
// BUF-LABEL:   func.func @fake_quant_fp8(
// BUF-NOT:       memref.alloc(%{{.+}}) {{.+}} : memref<2x?x512xbf16>
// BUF:           return
func.func @fake_quant_fp8(%x: tensor<2x?x512xbf16>, %out: tensor<2x?x512xbf16>) -> tensor<2x?x512xbf16> attributes {v4.kernel} {
  %0 = v4.fake_quant %x fp8_e4m3 blockSize 64 extent 448 : tensor<2x?x512xbf16>
  %1 = v4.kernel.store %0 into %out : tensor<2x?x512xbf16>
  return %1 : tensor<2x?x512xbf16>
}

// FP4, block 32 over the whole last dim: no copy, no slice; the e2m1 grid
// saturates at +-6.
// CHECK-LABEL: func.func @fake_quant_fp4(
// CHECK-SAME:      %[[X:.+]]: tensor<2x?x4x128xbf16>, %[[OUT:.+]]: tensor<2x?x4x128xbf16>)
// CHECK:         %[[S:.+]] = linalg.generic
// CHECK-SAME:        outs(%{{.+}} : tensor<2x?x4x4xf32>)
// CHECK-NOT:     tensor.extract_slice
// CHECK:         %[[Q:.+]] = linalg.generic
// CHECK-SAME:        ins(%[[X]] : tensor<2x?x4x128xbf16>)
// CHECK:           arith.constant 6.000000e+00 : f32
// CHECK:           math.roundeven
// CHECK:           arith.truncf %{{.+}} : f32 to bf16
// CHECK:         bufferization.materialize_in_destination %[[Q]] in %[[OUT]]
func.func @fake_quant_fp4(%x: tensor<2x?x4x128xbf16>, %out: tensor<2x?x4x128xbf16>) -> tensor<2x?x4x128xbf16> attributes {v4.kernel} {
  %0 = v4.fake_quant %x fp4_e2m1 blockSize 32 : tensor<2x?x4x128xbf16>
  %1 = v4.kernel.store %0 into %out : tensor<2x?x4x128xbf16>
  return %1 : tensor<2x?x4x128xbf16>
}

// kv.compress, overlapping main compressor (r = 4, c = 128, ropeDim 64): the
// projections of all tokens first (fp32 sums over d), then loops over the
// sequences and tokens carrying the state (kv, score) and the cache, which
// start as the kernel's arguments. Per token: its state row (k, g + ape);
// on block completion the pooled entry (max, sum of exps, weighted sum over
// the 2r candidates), bf16, RMSNorm (bf16), RoPE (bf16), FP8 fake-quant of
// the first 64 channels (bf16), written to the cache row as bf16; then the
// overlap shift of the state. The projections (b, t, then 8 channels at a
// time, then d in steps of 8): each 8 x 8 weight block read row by row and
// transposed in registers, so each lane still adds its channel's products
// in ascending e; a d % 8 tail element by element, then width % 8 channels.
// CHECK-LABEL: func.func @compress(
// CHECK-SAME:      %[[X:[^:]+]]: tensor<1x?x32xbf16>, %[[WKV:[^:]+]]: tensor<256x32xf32>, %[[WG:[^:]+]]: tensor<256x32xf32>, %[[APE:[^:]+]]: tensor<4x256xf32>, %[[NORM:[^:]+]]: tensor<128xbf16>, %[[KV:[^:]+]]: tensor<1x8x256xf32>, %[[SC:[^:]+]]: tensor<1x8x256xf32>, %[[CACHE:[^:]+]]: tensor<1x8x128xbf16>, %[[POS:[^:]+]]: tensor<1xi64>)
// CHECK:         %[[KG:.+]]:2 = scf.for {{.+}} -> (tensor<1x?x256xf32>, tensor<1x?x256xf32>)
// CHECK:           scf.for
// CHECK:             scf.for %{{.+}} = %{{.+}} to %c32 step
// CHECK:               scf.for {{.+}} -> (vector<8xf32>, vector<8xf32>)
// CHECK:                 tensor.extract %[[X]]
// CHECK:                 arith.extf %{{.+}} : bf16 to f32
// CHECK:                 vector.broadcast %{{.+}} : f32 to vector<8xf32>
// CHECK:                 vector.transfer_read %[[WKV]]{{.+}} : tensor<256x32xf32>, vector<8xf32>
// CHECK-COUNT-24:        vector.shuffle
// CHECK:                 arith.mulf %{{.+}} : vector<8xf32>
// CHECK-NEXT:            arith.addf %{{.+}} : vector<8xf32>
// CHECK:                 vector.transfer_read %[[WG]]{{.+}} : tensor<256x32xf32>, vector<8xf32>
// CHECK:               vector.from_elements
// CHECK:               vector.transfer_write %{{.+}} : vector<8xf32>, tensor<1x?x256xf32>
// CHECK:               vector.transfer_write %{{.+}} : vector<8xf32>, tensor<1x?x256xf32>
// CHECK:             scf.for
// CHECK:               tensor.insert %{{.+}} : tensor<1x?x256xf32>
// CHECK:         %[[R:.+]]:3 = scf.for {{.+}} iter_args(%{{.+}} = %[[KV]], %{{.+}} = %[[SC]], %{{.+}} = %[[CACHE]])
// CHECK:           scf.for
// CHECK:             scf.for
// CHECK:               tensor.extract %[[KG]]#0
// CHECK:               tensor.extract %[[KG]]#1
// CHECK:               tensor.extract %[[APE]]
// CHECK:               tensor.insert
// CHECK:               arith.addf
// CHECK:               tensor.insert
// CHECK:             scf.if %{{.+}} -> (tensor<1x8x128xbf16>) {
// CHECK:               %[[POOL:.+]] = linalg.generic
// CHECK:                 arith.maximumf
// CHECK:                 math.exp
// CHECK:                 arith.addf
// CHECK:                 math.exp
// CHECK:                 arith.divf
// CHECK:                 arith.mulf
// CHECK:                 arith.addf
// CHECK:               linalg.generic {{.+}} ins(%[[POOL]] : tensor<128xf32>)
// CHECK:                 arith.truncf %{{.+}} : f32 to bf16
// CHECK:                 arith.extf %{{.+}} : bf16 to f32
// CHECK:               iterator_types = ["reduction"]
// CHECK:               math.rsqrt
// CHECK:               linalg.generic {{.+}} ins(%{{.+}}, %[[NORM]] : tensor<128xf32>, tensor<128xbf16>)
// CHECK:                 arith.truncf %{{.+}} : f32 to bf16
// CHECK:               arith.uitofp %{{.+}} : i64 to f32
// CHECK:               linalg.generic
// CHECK:                 math.cos
// CHECK:                 math.sin
// CHECK:                 arith.truncf %{{.+}} : f32 to bf16
// CHECK:                 arith.truncf %{{.+}} : f32 to bf16
// CHECK:               tensor.extract_slice %{{.+}}[0] [64] [1] : tensor<128xf32> to tensor<64xf32>
// CHECK:                 math.roundeven
// CHECK:                 arith.truncf %{{.+}} : f32 to bf16
// CHECK:               tensor.insert_slice
// CHECK:               scf.for
// CHECK:                 arith.truncf %{{.+}} : f32 to bf16
// CHECK:                 tensor.insert
// CHECK:             scf.if %{{.+}} -> (tensor<1x8x256xf32>, tensor<1x8x256xf32>) {
// CHECK:         return %[[R]]#0, %[[R]]#1, %[[R]]#2
// CHECK-NOT:     materialize_in_destination
// In place: the loops update the state and cache buffers; no copy of them.
// BUF-LABEL:   func.func @compress(
// BUF-SAME:        %[[KV:[^:]+]]: memref<1x8x256xf32>, %[[SC:[^:]+]]: memref<1x8x256xf32>, %[[CACHE:[^:]+]]: memref<1x8x128xbf16>, %{{.+}}: memref<1xi64>) attributes {v4.kernel} {
// BUF-NOT:       memref.alloc() {{.+}} : memref<1x8x
// BUF:           scf.for {{.+}} iter_args(%{{.+}} = %[[KV]], %{{.+}} = %[[SC]], %{{.+}} = %[[CACHE]])
// BUF-NOT:       memref.copy {{.+}} : memref<1x8x
// BUF:           memref.store %{{.+}}, %{{.+}} : memref<1x8x128xbf16>
// BUF-NOT:       memref.copy {{.+}} : memref<1x8x
// BUF:           return{{$}}
func.func @compress(%x: tensor<1x?x32xbf16>, %wkv: tensor<256x32xf32>, %wg: tensor<256x32xf32>, %ape: tensor<4x256xf32>, %norm: tensor<128xbf16>, %s: !v4.compressor_state<batch = 1, ratio = 4, dim = 128>, %c: !v4.kv_cache<batch = 1, capacity = 8, dim = 128, ratio = 4, elementType = bf16>, %pos: tensor<1xi64>) -> (!v4.compressor_state<batch = 1, ratio = 4, dim = 128> {v4.tied_operand = 5 : i64}, !v4.kv_cache<batch = 1, capacity = 8, dim = 128, ratio = 4, elementType = bf16> {v4.tied_operand = 6 : i64}) attributes {v4.kernel} {
  %s1, %c1 = v4.kv.compress %x, %s, %c, %pos weights(%wkv, %wg, %ape, %norm) rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6 : tensor<1x?x32xbf16>, !v4.compressor_state<batch = 1, ratio = 4, dim = 128>, !v4.kv_cache<batch = 1, capacity = 8, dim = 128, ratio = 4, elementType = bf16>, tensor<1xi64> weights(tensor<256x32xf32>, tensor<256x32xf32>, tensor<4x256xf32>, tensor<128xbf16>)
  %2 = v4.kernel.store %s1 into %s : !v4.compressor_state<batch = 1, ratio = 4, dim = 128>
  %3 = v4.kernel.store %c1 into %c : !v4.kv_cache<batch = 1, capacity = 8, dim = 128, ratio = 4, elementType = bf16>
  return %2, %3 : !v4.compressor_state<batch = 1, ratio = 4, dim = 128>, !v4.kv_cache<batch = 1, capacity = 8, dim = 128, ratio = 4, elementType = bf16>
}

// The indexer compressor: Hadamard butterflies in fp32 (add/sub selected
// per channel), the c^-1/2 scale rounded to bf16, then FP4 over all c.
// CHECK-LABEL: func.func @compress_rotate(
// CHECK:             scf.if %{{.+}} -> (tensor<1x8x32xbf16>) {
// CHECK-COUNT-5:       arith.select %{{.+}}, %{{.+}}, %{{.+}} : f32
// CHECK:               arith.constant 0.176776692 : f32
// CHECK:               arith.truncf %{{.+}} : f32 to bf16
// CHECK:               arith.constant 6.000000e+00 : f32
// CHECK:               math.roundeven
func.func @compress_rotate(%x: tensor<1x?x32xbf16>, %wkv: tensor<64x32xf32>, %wg: tensor<64x32xf32>, %ape: tensor<4x64xf32>, %norm: tensor<32xbf16>, %s: !v4.compressor_state<batch = 1, ratio = 4, dim = 32>, %c: !v4.kv_cache<batch = 1, capacity = 8, dim = 32, ratio = 4, elementType = bf16>, %pos: tensor<1xi64>) -> (!v4.compressor_state<batch = 1, ratio = 4, dim = 32> {v4.tied_operand = 5 : i64}, !v4.kv_cache<batch = 1, capacity = 8, dim = 32, ratio = 4, elementType = bf16> {v4.tied_operand = 6 : i64}) attributes {v4.kernel} {
  %s1, %c1 = v4.kv.compress %x, %s, %c, %pos weights(%wkv, %wg, %ape, %norm) rope #v4.rope<ropeDim = 16, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0> eps 1.0e-6 rotate : tensor<1x?x32xbf16>, !v4.compressor_state<batch = 1, ratio = 4, dim = 32>, !v4.kv_cache<batch = 1, capacity = 8, dim = 32, ratio = 4, elementType = bf16>, tensor<1xi64> weights(tensor<64x32xf32>, tensor<64x32xf32>, tensor<4x64xf32>, tensor<32xbf16>)
  %2 = v4.kernel.store %s1 into %s : !v4.compressor_state<batch = 1, ratio = 4, dim = 32>
  %3 = v4.kernel.store %c1 into %c : !v4.kv_cache<batch = 1, capacity = 8, dim = 32, ratio = 4, elementType = bf16>
  return %2, %3 : !v4.compressor_state<batch = 1, ratio = 4, dim = 32>, !v4.kv_cache<batch = 1, capacity = 8, dim = 32, ratio = 4, elementType = bf16>
}

}
