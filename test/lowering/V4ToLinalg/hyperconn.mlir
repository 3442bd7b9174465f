// RUN: v4-opt %s --convert-v4-to-linalg | FileCheck %s

// Target-neutral bodies of the mHC / MTP / MoE-gate family: every v4 op
// becomes linalg on tensors (fp32 reductions, explicit bf16 rounding), and
// v4.kernel.store a materialize_in_destination into the kernel argument.

module @kernels attributes {v4.target = "cpu"} {

// The lanes are the embedding broadcast over lane dim 2.
// CHECK-LABEL: func.func @k_mhc_expand(
// CHECK-SAME: %[[E:.*]]: tensor<1x?x8xbf16>, %[[OUT:.*]]: tensor<1x?x4x8xbf16>)
// CHECK: %[[B:.*]] = linalg.broadcast ins(%[[E]] : tensor<1x?x8xbf16>) outs(%{{.*}} : tensor<1x?x4x8xbf16>) dimensions = [2]
// CHECK: bufferization.materialize_in_destination %[[B]] in %[[OUT]]
func.func @k_mhc_expand(%arg0: tensor<1x?x8xbf16>, %arg1: tensor<1x?x4x8xbf16>) -> tensor<1x?x4x8xbf16> attributes {v4.kernel} {
  %0 = v4.mhc.expand %arg0 : tensor<1x?x8xbf16> -> tensor<1x?x4x8xbf16>
  %1 = v4.kernel.store %0 into %arg1 : tensor<1x?x4x8xbf16>
  return %1 : tensor<1x?x4x8xbf16>
}

// hc_post: the lane contraction is a reduction over the input lane j in
// fp32, then one bf16 rounding of post_k * o + mix.
// CHECK-LABEL: func.func @k_mhc_post(
// CHECK: linalg.fill
// CHECK: %[[MIX:.*]] = linalg.generic
// CHECK-SAME: iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]
// CHECK: arith.extf
// CHECK: arith.mulf
// CHECK: arith.addf
// CHECK: %[[R:.*]] = linalg.generic
// CHECK-SAME: ins(%{{.*}}, %{{.*}}, %[[MIX]] :
// CHECK: arith.mulf
// CHECK: arith.addf
// CHECK: arith.truncf %{{.*}} : f32 to bf16
// CHECK: bufferization.materialize_in_destination %[[R]]
func.func @k_mhc_post(%arg0: tensor<1x?x8xbf16>, %arg1: tensor<1x?x4x8xbf16>, %arg2: tensor<1x?x4xf32>, %arg3: tensor<1x?x4x4xf32>, %arg4: tensor<1x?x4x8xbf16>) -> tensor<1x?x4x8xbf16> attributes {v4.kernel} {
  %0 = v4.mhc.post %arg0, %arg1, %arg2, %arg3 : (tensor<1x?x8xbf16>, tensor<1x?x4x8xbf16>, tensor<1x?x4xf32>, tensor<1x?x4x4xf32>) -> tensor<1x?x4x8xbf16>
  %1 = v4.kernel.store %0 into %arg4 : tensor<1x?x4x8xbf16>
  return %1 : tensor<1x?x4x8xbf16>
}

// hc_pre: the mixes (M = 24 and n*d = 32, both multiples of 8) 8 at a
// time in vector lanes: per token an scf.for over the 8-element runs of the
// flat lanes carries one vector<8xf32> per 8 mixes, each 8 x 8 block of fn
// read as rows and transposed in registers, so each lane's sum stays in
// ascending flat order (mul, then add: no FMA), and (on the host CPU, the
// default target) the tokens' joint sums of squares over n*d in the same
// order (a block's in the lanes of a vector, a lone token's as a scalar);
// then the RMS scale, the split of the mixes, Sinkhorn
// with its iterations 1..19 as an scf.for over tensors, and the lane mix.
// CHECK-LABEL: func.func @k_mhc_pre(
// CHECK-SAME: %[[X:[^:]*]]: tensor<1x?x4x8xbf16>, %[[FN:[^:]*]]: tensor<24x32xf32>
// CHECK-NOT: linalg.generic
// CHECK: %[[X3:.*]] = tensor.collapse_shape %[[X]] {{\[\[}}0], [1], [2, 3]]
// Blocks of 8 tokens (8 x 3 sums, and the 8 sums of squares in the lanes
// of one vector: the block's runs of x transposed, squared and added in
// order) share each transposed block of fn:
// CHECK: scf.for %{{.*}} = %c0{{.*}} to %c4{{.*}} step %c1{{.*}} iter_args({{.*}}) -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// CHECK-COUNT-8: vector.transfer_read %[[X3]]
// CHECK-COUNT-24: vector.shuffle
// CHECK: %[[SQ8:.*]] = arith.mulf %[[C8:.*]], %[[C8]] : vector<8xf32>
// CHECK-NEXT: arith.addf %{{.*}}, %[[SQ8]] : vector<8xf32>
// CHECK-COUNT-8: vector.transfer_read %[[FN]]
// CHECK-COUNT-24: vector.shuffle
// CHECK-COUNT-24: vector.transfer_write
// then a block of 4 of the rest:
// CHECK: scf.for %{{.*}} = %c0{{.*}} to %c4{{.*}} step %c1{{.*}} iter_args({{.*}}) -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// CHECK-COUNT-4: vector.transfer_read %[[X3]]
// CHECK-COUNT-24: vector.shuffle
// CHECK: %[[SQ4:.*]] = arith.mulf %[[C4:.*]], %[[C4]] : vector<8xf32>
// CHECK-NEXT: arith.addf %{{.*}}, %[[SQ4]] : vector<8xf32>
// CHECK-COUNT-8: vector.transfer_read %[[FN]]
// CHECK-COUNT-24: vector.shuffle
// CHECK-NOT: vector.shuffle
// CHECK: arith.mulf %{{.*}} : vector<8xf32>
// CHECK-COUNT-12: vector.transfer_write
// then the last T % 4 tokens one at a time, one pass per group of 8 mixes
// (8 rows of fn streamed at a time), the squares in the first:
// CHECK: scf.for %{{.*}} = %c0{{.*}} to %c4{{.*}} step %c1{{.*}} iter_args(%{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}) -> (vector<8xf32>, f32)
// CHECK: vector.transfer_read %[[X3]]
// CHECK: arith.extf %{{.*}} : vector<8xbf16> to vector<8xf32>
// CHECK-COUNT-8: vector.transfer_read %[[FN]]
// CHECK-COUNT-24: vector.shuffle
// CHECK-NOT: vector.shuffle
// CHECK-NOT: math.fma
// CHECK: arith.mulf %{{.*}} : vector<8xf32>
// CHECK-NEXT: arith.addf %{{.*}} : vector<8xf32>
// CHECK: vector.transfer_write %{{.*}}[%{{.*}}, %{{.*}}, %c0{{.*}}] {in_bounds = [true]} : vector<8xf32>, tensor<1x?x24xf32>
// CHECK: scf.for %{{.*}} = %c0{{.*}} to %c4{{.*}} step %c1{{.*}} iter_args(%{{.*}} = %{{.*}}) -> (vector<8xf32>)
// CHECK-COUNT-8: vector.transfer_read %[[FN]]
// CHECK-COUNT-24: vector.shuffle
// CHECK-NOT: vector.shuffle
// CHECK: vector.transfer_write %{{.*}}[%{{.*}}, %{{.*}}, %c8{{.*}}] {in_bounds = [true]} : vector<8xf32>, tensor<1x?x24xf32>
// CHECK: scf.for %{{.*}} = %c0{{.*}} to %c4{{.*}} step %c1{{.*}} iter_args(%{{.*}} = %{{.*}}) -> (vector<8xf32>)
// CHECK: vector.transfer_write %{{.*}}[%{{.*}}, %{{.*}}, %c16{{.*}}] {in_bounds = [true]} : vector<8xf32>, tensor<1x?x24xf32>
// CHECK: tensor.extract_slice %{{.*}}[0, 0, 8] [1, %{{.*}}, 16] [1, 1, 1]
// CHECK: arith.maximumf
// CHECK: math.exp
// CHECK: %[[C:.*]] = scf.for %{{.*}} = %c1{{.*}} to %c20 step %c1{{.*}} iter_args(%{{.*}} = %{{.*}}) -> (tensor<1x?x4x4xf32>)
// CHECK: scf.yield
// CHECK: arith.truncf %{{.*}} : f32 to bf16
// CHECK: bufferization.materialize_in_destination
// CHECK: bufferization.materialize_in_destination
// CHECK: bufferization.materialize_in_destination %[[C]]
func.func @k_mhc_pre(%arg0: tensor<1x?x4x8xbf16>, %arg1: tensor<24x32xf32>, %arg2: tensor<24xf32>, %arg3: tensor<3xf32>, %arg4: tensor<1x?x8xbf16>, %arg5: tensor<1x?x4xf32>, %arg6: tensor<1x?x4x4xf32>) -> (tensor<1x?x8xbf16>, tensor<1x?x4xf32>, tensor<1x?x4x4xf32>) attributes {v4.kernel} {
  %y, %post, %comb = v4.mhc.pre %arg0, %arg1, %arg2, %arg3 : (tensor<1x?x4x8xbf16>, tensor<24x32xf32>, tensor<24xf32>, tensor<3xf32>) -> (tensor<1x?x8xbf16>, tensor<1x?x4xf32>, tensor<1x?x4x4xf32>)
  %0 = v4.kernel.store %y into %arg4 : tensor<1x?x8xbf16>
  %1 = v4.kernel.store %post into %arg5 : tensor<1x?x4xf32>
  %2 = v4.kernel.store %comb into %arg6 : tensor<1x?x4x4xf32>
  return %0, %1, %2 : tensor<1x?x8xbf16>, tensor<1x?x4xf32>, tensor<1x?x4x4xf32>
}

// hc_head: its M = n = 4 mixes are not a multiple of 8, so the mixes are a
// reduction against fn viewed [M, n, d / S, S] (S = 8 here: the largest of
// 16, 8, 4, 2 that divides d) with the mix dim between the runs and their
// elements (each mix's sum still in ascending (lane, element) order).
// CHECK-LABEL: func.func @k_mhc_head(
// CHECK-SAME: %[[X:[^:]*]]: tensor<1x?x4x8xbf16>, %[[FN:[^:]*]]: tensor<4x32xf32>
// CHECK: %[[FN4:.*]] = tensor.expand_shape %[[FN]] {{\[\[}}0], [1, 2, 3]] output_shape [4, 4, 1, 8]
// CHECK: %[[X5:.*]] = tensor.expand_shape %[[X]] {{\[\[}}0], [1], [2], [3, 4]] output_shape [1, %{{.*}}, 4, 1, 8]
// CHECK: linalg.generic
// CHECK-SAME: iterator_types = ["parallel", "parallel", "reduction", "reduction", "parallel", "reduction"]
// CHECK-SAME: ins(%[[X5]], %[[FN4]] :
// CHECK-NOT: vector.shuffle
// CHECK: bufferization.materialize_in_destination
func.func @k_mhc_head(%arg0: tensor<1x?x4x8xbf16>, %arg1: tensor<4x32xf32>, %arg2: tensor<4xf32>, %arg3: tensor<1xf32>, %arg4: tensor<1x?x8xbf16>) -> tensor<1x?x8xbf16> attributes {v4.kernel} {
  %y = v4.mhc.head %arg0, %arg1, %arg2, %arg3 : (tensor<1x?x4x8xbf16>, tensor<4x32xf32>, tensor<4xf32>, tensor<1xf32>) -> tensor<1x?x8xbf16>
  %0 = v4.kernel.store %y into %arg4 : tensor<1x?x8xbf16>
  return %0 : tensor<1x?x8xbf16>
}

// One Sinkhorn iteration: a single scf.for is not needed.
// CHECK-LABEL: func.func @k_mhc_sinkhorn_once(
// CHECK-NOT: scf.for
// CHECK: return
func.func @k_mhc_sinkhorn_once(%arg0: tensor<?x4x4xf32>, %arg1: tensor<?x4x4xf32>) -> tensor<?x4x4xf32> attributes {v4.kernel} {
  %0 = v4.mhc.sinkhorn %arg0 {eps = 1.0e-6 : f64, iters = 1 : i64} : tensor<?x4x4xf32>
  %1 = v4.kernel.store %0 into %arg1 : tensor<?x4x4xf32>
  return %1 : tensor<?x4x4xf32>
}

// The score gate: z in fp32, sqrt(softplus), + bias, then one scf.for
// iteration per top-k slot (arg-max with a strict >), then the weights.
// CHECK-LABEL: func.func @k_moe_gate(
// CHECK: linalg.generic
// CHECK-SAME: iterator_types = ["parallel", "parallel", "parallel", "reduction"]
// CHECK: math.log
// CHECK: math.sqrt
// CHECK: scf.for %{{.*}} = %c0{{.*}} to %c2 step %c1{{.*}} iter_args
// CHECK: arith.cmpf ogt
// CHECK: scf.yield
// CHECK: tensor.extract
// CHECK: arith.divf
// CHECK: bufferization.materialize_in_destination
// CHECK: bufferization.materialize_in_destination
func.func @k_moe_gate(%arg0: tensor<1x?x8xbf16>, %arg1: tensor<6x8xbf16>, %arg2: tensor<6xf32>, %arg3: tensor<1x?x2xf32>, %arg4: tensor<1x?x2xi64>) -> (tensor<1x?x2xf32>, tensor<1x?x2xi64>) attributes {v4.kernel} {
  %routingWeights, %expertIndices = v4.moe.gate %arg0, %arg1 bias %arg2 scoreFunc sqrtsoftplus topK 2 routeScale 1.500000e+00 : tensor<1x?x8xbf16>, tensor<6x8xbf16>, tensor<6xf32> -> tensor<1x?x2xf32>, tensor<1x?x2xi64>
  %0 = v4.kernel.store %routingWeights into %arg3 : tensor<1x?x2xf32>
  %1 = v4.kernel.store %expertIndices into %arg4 : tensor<1x?x2xi64>
  return %0, %1 : tensor<1x?x2xf32>, tensor<1x?x2xi64>
}

// The hash gate reads its experts from tid2eid: no top-k loop.
// CHECK-LABEL: func.func @k_moe_hash_gate(
// CHECK-SAME: %[[T:[^:]*]]: tensor<97x2xi64>
// CHECK-NOT: scf.for
// CHECK: tensor.extract %[[T]]
// CHECK: return
func.func @k_moe_hash_gate(%arg0: tensor<1x?x8xbf16>, %arg1: tensor<6x8xbf16>, %arg2: tensor<1x?xi64>, %arg3: tensor<97x2xi64>, %arg4: tensor<1x?x2xf32>, %arg5: tensor<1x?x2xi64>) -> (tensor<1x?x2xf32>, tensor<1x?x2xi64>) attributes {v4.kernel} {
  %routingWeights, %expertIndices = v4.moe.hash_gate %arg0, %arg1, %arg2, %arg3 scoreFunc sqrtsoftplus routeScale 1.500000e+00 : tensor<1x?x8xbf16>, tensor<6x8xbf16>, tensor<1x?xi64>, tensor<97x2xi64> -> tensor<1x?x2xf32>, tensor<1x?x2xi64>
  %0 = v4.kernel.store %routingWeights into %arg4 : tensor<1x?x2xf32>
  %1 = v4.kernel.store %expertIndices into %arg5 : tensor<1x?x2xi64>
  return %0, %1 : tensor<1x?x2xf32>, tensor<1x?x2xi64>
}

// moe.combine: the slot sum (reduction innermost, from 0 in fp32), then the
// shared expert and one rounding.
// CHECK-LABEL: func.func @k_moe_combine(
// CHECK: linalg.fill
// CHECK: linalg.generic
// CHECK-SAME: iterator_types = ["parallel", "parallel", "parallel", "reduction"]
// CHECK: arith.extf %{{.*}} : bf16 to f32
// CHECK: arith.addf
// CHECK: linalg.generic
// CHECK: arith.extf %{{.*}} : bf16 to f32
// CHECK: arith.addf
// CHECK: arith.truncf %{{.*}} : f32 to bf16
func.func @k_moe_combine(%arg0: tensor<1x?x3x8xbf16>, %arg1: tensor<1x?x8xbf16>, %arg2: tensor<1x?x8xbf16>) -> tensor<1x?x8xbf16> attributes {v4.kernel} {
  %0 = v4.moe.combine %arg0, %arg1 : tensor<1x?x3x8xbf16>, tensor<1x?x8xbf16> -> tensor<1x?x8xbf16>
  %1 = v4.kernel.store %0 into %arg2 : tensor<1x?x8xbf16>
  return %1 : tensor<1x?x8xbf16>
}

// engram.gate (production form): three fp32 sums per lane in one
// reduction, the gate, then one bf16 rounding of x + gate * v.
// CHECK-LABEL: func.func @k_engram_gate(
// CHECK: %[[S:.*]]:3 = linalg.generic
// CHECK-SAME: iterator_types = ["parallel", "parallel", "parallel", "reduction"]
// CHECK: %[[G:.*]] = linalg.generic
// CHECK-SAME: ins(%[[S]]#1, %[[S]]#2 :
// CHECK: math.exp
// CHECK: linalg.generic
// CHECK-SAME: ins(%{{.*}}, %{{.*}}, %[[G]] :
// CHECK: arith.truncf %{{.*}} : f32 to bf16
func.func @k_engram_gate(%arg0: tensor<1x?x4x8xbf16>, %arg1: tensor<1x?x40xbf16>, %arg2: tensor<4x8xbf16>, %arg3: tensor<4x8xbf16>, %arg4: tensor<1x?x4x8xbf16>) -> tensor<1x?x4x8xbf16> attributes {v4.kernel} {
  %result = v4.engram.gate %arg0, %arg1, %arg2, %arg3 : (tensor<1x?x4x8xbf16>, tensor<1x?x40xbf16>, tensor<4x8xbf16>, tensor<4x8xbf16>) -> tensor<1x?x4x8xbf16>
  %0 = v4.kernel.store %result into %arg4 : tensor<1x?x4x8xbf16>
  return %0 : tensor<1x?x4x8xbf16>
}

// engram.hash: the rows and the new look-back are two generics; the new
// look-back is stored into the state operand (tied).
// CHECK-LABEL: func.func @k_engram_hash(
// CHECK-SAME: %[[STATE:[^:]*]]: tensor<1x2xi64>, %[[ROWS:[^:]*]]: tensor<1x?x4xi32>)
// CHECK: %[[R:.*]] = linalg.generic
// CHECK: arith.xori
// CHECK: arith.remsi
// CHECK: arith.trunci %{{.*}} : i64 to i32
// CHECK: %[[N:.*]] = linalg.generic
// CHECK: scf.if
// CHECK: bufferization.materialize_in_destination %[[R]] in %[[ROWS]]
// CHECK: bufferization.materialize_in_destination %[[N]] in %[[STATE]]
func.func @k_engram_hash(%arg0: tensor<1x?xi64>, %arg1: tensor<97xi64>, %arg2: tensor<3xi64>, %arg3: !v4.engram_state<batch = 1, lookback = 2>, %arg4: tensor<1x?x4xi32>) -> (tensor<1x?x4xi32>, !v4.engram_state<batch = 1, lookback = 2> {v4.tied_operand = 3 : i64}) attributes {v4.kernel} {
  %rows, %newState = v4.engram.hash %arg0, %arg1, %arg2, %arg3 {heads = 2 : i64, maxNgram = 3 : i64, padId = 2 : i64, primes = array<i64: 41, 43, 47, 53>} : (tensor<1x?xi64>, tensor<97xi64>, tensor<3xi64>, !v4.engram_state<batch = 1, lookback = 2>) -> (tensor<1x?x4xi32>, !v4.engram_state<batch = 1, lookback = 2>)
  %0 = v4.kernel.store %rows into %arg4 : tensor<1x?x4xi32>
  %1 = v4.kernel.store %newState into %arg3 : !v4.engram_state<batch = 1, lookback = 2>
  return %0, %1 : tensor<1x?x4xi32>, !v4.engram_state<batch = 1, lookback = 2>
}

// engram.lookup, FP8 table: a gather over e [B, T, R*De]; column r*De + c
// reads row rows[b, t, r] of the table and its e8m0 scale of column block
// c / 32; decoded by bit manipulation (no calls), one rounding to bf16.
// CHECK-LABEL: func.func @k_engram_lookup_fp8(
// CHECK-SAME: %[[ROWS:[^:]+]]: tensor<2x?x4xi32>, %[[T:[^:]+]]: tensor<184x32xi8>, %[[S:[^:]+]]: tensor<184x1xi8>, %[[OUT:[^:]+]]: tensor<2x?x128xbf16>)
// CHECK: %[[E:.*]] = linalg.generic
// CHECK-SAME: outs(%{{.*}} : tensor<2x?x128xbf16>)
// CHECK: %[[R:.*]] = arith.divui %{{.*}}, %{{.*}} : index
// CHECK: %[[C:.*]] = arith.remui %{{.*}}, %{{.*}} : index
// CHECK: %[[ID:.*]] = tensor.extract %[[ROWS]][%{{.*}}, %{{.*}}, %[[R]]]
// CHECK: %[[ROW:.*]] = arith.index_cast %[[ID]] : i32 to index
// CHECK: tensor.extract %[[T]][%[[ROW]], %[[C]]] : tensor<184x32xi8>
// CHECK: %[[BLK:.*]] = arith.divui %[[C]], %{{.*}} : index
// CHECK: tensor.extract %[[S]][%[[ROW]], %[[BLK]]] : tensor<184x1xi8>
// CHECK: arith.mulf %{{.*}}, %{{.*}} : f32
// CHECK: %[[V:.*]] = arith.mulf %{{.*}}, %{{.*}} : f32
// CHECK-NEXT: %[[VB:.*]] = arith.truncf %[[V]] : f32 to bf16
// CHECK-NEXT: linalg.yield %[[VB]] : bf16
// CHECK: bufferization.materialize_in_destination %[[E]] in %[[OUT]]
func.func @k_engram_lookup_fp8(%arg0: tensor<2x?x4xi32>, %arg1: tensor<184x32xf8E4M3FN>, %arg2: tensor<184x1xf8E8M0FNU>, %arg3: tensor<2x?x128xbf16>) -> tensor<2x?x128xbf16> attributes {v4.kernel} {
  %e = v4.engram.lookup %arg0, %arg1 scale %arg2 {numEmbeddings = 184 : i64} : (tensor<2x?x4xi32>, tensor<184x32xf8E4M3FN>, tensor<184x1xf8E8M0FNU>) -> tensor<2x?x128xbf16>
  %0 = v4.kernel.store %e into %arg3 : tensor<2x?x128xbf16>
  return %0 : tensor<2x?x128xbf16>
}

// engram.lookup, bf16 table into an f32 result: the element widened
// exactly, no rounding.
// CHECK-LABEL: func.func @k_engram_lookup_bf16(
// CHECK: linalg.generic
// CHECK: %[[V:.*]] = tensor.extract %{{.*}} : tensor<30x16xbf16>
// CHECK: %[[W:.*]] = arith.extf %[[V]] : bf16 to f32
// CHECK-NOT: arith.truncf
// CHECK: linalg.yield %[[W]] : f32
func.func @k_engram_lookup_bf16(%arg0: tensor<1x?x2xi64>, %arg1: tensor<30x16xbf16>, %arg2: tensor<1x?x32xf32>) -> tensor<1x?x32xf32> attributes {v4.kernel} {
  %e = v4.engram.lookup %arg0, %arg1 {numEmbeddings = 30 : i64} : (tensor<1x?x2xi64>, tensor<30x16xbf16>) -> tensor<1x?x32xf32>
  %0 = v4.kernel.store %e into %arg2 : tensor<1x?x32xf32>
  return %0 : tensor<1x?x32xf32>
}

}
