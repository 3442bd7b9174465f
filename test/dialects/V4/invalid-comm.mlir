// RUN: v4-opt %s -split-input-file -verify-diagnostics

// comm_rank_c1: a world of at least one rank.
func.func @rank_c1() {
  // expected-error @+1 {{expected world >= 1, got 0 [comm_rank_c1]}}
  %r = v4.comm.rank world 0 : tensor<1xi64>
  return
}

// -----

// comm_rank_c2: the rank is one i64.
func.func @rank_c2() {
  // expected-error @+1 {{expected result tensor<1xi64>, got 'tensor<2xi64>' [comm_rank_c2]}}
  %r = v4.comm.rank world 2 : tensor<2xi64>
  return
}

// -----

// comm_all_reduce_c1: bf16 or f32 elements.
func.func @all_reduce_c1(%x: tensor<4xi64>) {
  // expected-error @+1 {{expected bf16 or f32 elements, got 'i64' [comm_all_reduce_c1]}}
  %y = v4.comm.all_reduce %x : tensor<4xi64>
  return
}

// -----

// plan_collective_c1: a known collective.
func.func @plan_collective_c1(%b: memref<4xf32>) {
  // expected-error @+1 {{unknown collective 'all_scatter' (known: all_reduce_sum, all_gather, reduce_scatter_sum, all_to_all) [plan_collective_c1]}}
  v4.plan.collective "all_scatter"(%b) : memref<4xf32>
  return
}

// -----

// plan_collective_c2: bf16 or f32 elements.
func.func @plan_collective_c2(%b: memref<4xi8>) {
  // expected-error @+1 {{expected one element type, bf16 or f32 (or i64 to gather or send; i64 counts), got 'i8' [plan_collective_c2]}}
  v4.plan.collective "all_reduce_sum"(%b) : memref<4xi8>
  return
}

// -----

// parameter_stack_c3: at least one shard.
func.func @stack_c3() {
  // expected-error @+1 {{expected shards >= 1, got 0 [parameter_stack_c3]}}
  %w = v4.parameter_stack "e.{}.w" count 4 shards 0 : tensor<4x8xbf16>
  return
}

// -----

// moe_experts_c15: epRank is one i64.
func.func @experts_c15(%x: tensor<2x3x256xbf16>, %rw: tensor<2x3x2xf32>, %idx: tensor<2x3x2xi64>,
    %w1: tensor<8x128x256xbf16>, %w3: tensor<8x128x256xbf16>, %w2: tensor<8x256x128xbf16>, %r: tensor<1xi32>) {
  // expected-error @+1 {{expected epRank tensor<1xi64>, got 'tensor<1xi32>' [moe_experts_c15]}}
  %y = v4.moe.experts %x, %rw, %idx ep_rank %r w1 %w1, w3 %w3, w2 %w2
      : (tensor<2x3x256xbf16>, tensor<2x3x2xf32>, tensor<2x3x2xi64>,
         tensor<8x128x256xbf16>, tensor<8x128x256xbf16>, tensor<8x256x128xbf16>,
         tensor<1xi32>) -> tensor<2x3x2x256xbf16>
  return
}

// -----

// parameter_stack_c4: shards of ceil(members / shards).
func.func @stack_c4() {
  // expected-error @+1 {{expected 4 shards of ceil(6 / 4) members, got count 3 [parameter_stack_c4]}}
  %w = v4.parameter_stack "e.{}.w" count 3 shards 4 of 6 : tensor<3x8xbf16>
  return
}

// -----

// parameter_stack_c5: a slice of a member dim over shards >= 2.
func.func @stack_c5_dim() {
  // expected-error @+1 {{expected slice dim in [1, 3) of a stack of every member over shards >= 2, got slice 0 over 2 shards [parameter_stack_c5]}}
  %w = v4.parameter_stack "e.{}.w" count 3 shards 2 slice 0 : tensor<3x8x4xbf16>
  return
}

// -----

// parameter_stack_c5: no slice of a shard of some members.
func.func @stack_c5_members() {
  // expected-error @+1 {{got slice 1 over 4 shards of some members [parameter_stack_c5]}}
  %w = v4.parameter_stack "e.{}.w" count 2 shards 4 of 6 slice 1 : tensor<2x8x4xbf16>
  return
}

// -----

// parameter_stack_c5: no slice without shards.
func.func @stack_c5_shards() {
  // expected-error @+1 {{got slice 2 over 0 shards [parameter_stack_c5]}}
  %w = v4.parameter_stack "e.{}.w" count 3 slice 2 : tensor<3x8x4xbf16>
  return
}

// -----

// parameter_stack_c6: the sliced packed FP4 dim holds whole bytes.
func.func @stack_c6() {
  // expected-error @+1 {{expected an even extent of the sliced packed FP4 dim, got 3 [parameter_stack_c6]}}
  %w = v4.parameter_stack "e.{}.w" count 2 shards 2 slice 2 : tensor<2x8x3xf4E2M1FN>
  return
}

// -----

// comm_all_gather_c1: a world of at least one rank.
func.func @all_gather_c1(%x: tensor<1x4xf32>) {
  // expected-error @+1 {{expected world >= 1, got 0 [comm_all_gather_c1]}}
  %y = v4.comm.all_gather %x world 0 : tensor<1x4xf32> -> tensor<1x4xf32>
  return
}

// -----

// comm_all_gather_c2: the result is the input with dim 0 times the world.
func.func @all_gather_c2(%x: tensor<1x4xf32>) {
  // expected-error @+1 {{expected 'tensor<3x4xf32>' to be 'tensor<1x4xf32>' with a static dim 0 2 times as large [comm_all_gather_c2]}}
  %y = v4.comm.all_gather %x world 2 : tensor<1x4xf32> -> tensor<3x4xf32>
  return
}

// -----

// comm_reduce_scatter_c1: a world of at least one rank.
func.func @reduce_scatter_c1(%x: tensor<2x4xf32>) {
  // expected-error @+1 {{expected world >= 1, got -1 [comm_reduce_scatter_c1]}}
  %y = v4.comm.reduce_scatter %x world -1 : tensor<2x4xf32> -> tensor<2x4xf32>
  return
}

// -----

// comm_reduce_scatter_c2: the input is the result with dim 0 times the world.
func.func @reduce_scatter_c2(%x: tensor<2x4xf32>) {
  // expected-error @+1 {{expected 'tensor<2x4xf32>' to be 'tensor<1x5xf32>' with a static dim 0 2 times as large [comm_reduce_scatter_c2]}}
  %y = v4.comm.reduce_scatter %x world 2 : tensor<2x4xf32> -> tensor<1x5xf32>
  return
}

// -----

// comm_reduce_scatter_c3: bf16 or f32 elements.
func.func @reduce_scatter_c3(%x: tensor<2x4xi64>) {
  // expected-error @+1 {{expected bf16 or f32 elements, got 'i64' [comm_reduce_scatter_c3]}}
  %y = v4.comm.reduce_scatter %x world 2 : tensor<2x4xi64> -> tensor<1x4xi64>
  return
}

// -----

// plan_collective_c1: the buffer count of the collective.
func.func @plan_collective_c1_count(%b: memref<4xf32>) {
  // expected-error @+1 {{all_gather takes 2 buffers, got 1 [plan_collective_c1]}}
  v4.plan.collective "all_gather"(%b) : memref<4xf32>
  return
}

// -----

// plan_collective_c2: one element type.
func.func @plan_collective_c2_mixed(%a: memref<2xf32>, %b: memref<4xbf16>) {
  // expected-error @+1 {{expected one element type, bf16 or f32 (or i64 to gather or send; i64 counts), got 'f32' [plan_collective_c2]}}
  v4.plan.collective "all_gather"(%a, %b) : memref<2xf32>, memref<4xbf16>
  return
}

// -----

// plan_collective_c2: all_to_all's counts are i64.
func.func @plan_collective_c2_counts(%n: memref<2xf32>, %a: memref<2x?x4xbf16>, %m: memref<2xi64>, %b: memref<2x?x4xbf16>) {
  // expected-error @+1 {{expected one element type, bf16 or f32 (or i64 to gather or send; i64 counts), got 'bf16' [plan_collective_c2]}}
  v4.plan.collective "all_to_all"(%n, %a, %m, %b) : memref<2xf32>, memref<2x?x4xbf16>, memref<2xi64>, memref<2x?x4xbf16>
  return
}

// -----

// comm_all_to_all_c1: a world of at least one rank.
func.func @all_to_all_c1(%n: tensor<0xi64>, %x: tensor<0x4x8xbf16>) {
  // expected-error @+1 {{expected world >= 1, got 0 [comm_all_to_all_c1]}}
  %m, %y = v4.comm.all_to_all %n, %x world 0 : (tensor<0xi64>, tensor<0x4x8xbf16>) -> (tensor<0xi64>, tensor<0x4x8xbf16>)
  return
}

// -----

// comm_all_to_all_c2: the counts are [world] i64.
func.func @all_to_all_c2(%n: tensor<2xi32>, %x: tensor<2x4x8xbf16>) {
  // expected-error @+1 {{expected counts tensor<2xi64>, got 'tensor<2xi32>' [comm_all_to_all_c2]}}
  %m, %y = v4.comm.all_to_all %n, %x world 2 : (tensor<2xi32>, tensor<2x4x8xbf16>) -> (tensor<2xi64>, tensor<2x4x8xbf16>)
  return
}

// -----

// comm_all_to_all_c2: the received counts too.
func.func @all_to_all_c2_recv(%n: tensor<2xi64>, %x: tensor<2x4x8xbf16>) {
  // expected-error @+1 {{expected recvCounts tensor<2xi64>, got 'tensor<3xi64>' [comm_all_to_all_c2]}}
  %m, %y = v4.comm.all_to_all %n, %x world 2 : (tensor<2xi64>, tensor<2x4x8xbf16>) -> (tensor<3xi64>, tensor<2x4x8xbf16>)
  return
}

// -----

// comm_all_to_all_c3: one block per rank along dim 0.
func.func @all_to_all_c3(%n: tensor<2xi64>, %x: tensor<3x4x8xbf16>) {
  // expected-error @+1 {{expected an input of 2 blocks along dim 0 (rank >= 2) of bf16, f32 or i64, and a result of its type; got 'tensor<3x4x8xbf16>' -> 'tensor<3x4x8xbf16>' [comm_all_to_all_c3]}}
  %m, %y = v4.comm.all_to_all %n, %x world 2 : (tensor<2xi64>, tensor<3x4x8xbf16>) -> (tensor<2xi64>, tensor<3x4x8xbf16>)
  return
}

// -----

// comm_all_to_all_c3: the result has the input's type.
func.func @all_to_all_c3_result(%n: tensor<2xi64>, %x: tensor<2x4x8xbf16>) {
  // expected-error @+1 {{[comm_all_to_all_c3]}}
  %m, %y = v4.comm.all_to_all %n, %x world 2 : (tensor<2xi64>, tensor<2x4x8xbf16>) -> (tensor<2xi64>, tensor<2x4x8xf32>)
  return
}

// -----

// comm_all_to_all_c3: bf16, f32 or i64 elements.
func.func @all_to_all_c3_type(%n: tensor<2xi64>, %x: tensor<2x4x8xi8>) {
  // expected-error @+1 {{[comm_all_to_all_c3]}}
  %m, %y = v4.comm.all_to_all %n, %x world 2 : (tensor<2xi64>, tensor<2x4x8xi8>) -> (tensor<2xi64>, tensor<2x4x8xi8>)
  return
}
