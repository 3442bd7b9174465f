// RUN: v4-opt %s | v4-opt | FileCheck %s
// Round trip of the rank and collective ops, the expert-parallel form of
// v4.moe.experts and a sharded v4.parameter_stack.

// CHECK-LABEL: func.func @expert_parallel
// CHECK: %[[R:.*]] = v4.comm.rank world 2 : tensor<1xi64>
// CHECK: v4.parameter_stack "layers.0.ffn.experts.{}.w1.weight" count 4 shards 2 : tensor<4x128x256xbf16>
// CHECK: %[[Y:.*]] = v4.moe.experts %{{.*}}, %{{.*}}, %{{.*}} ep_rank %[[R]] w1
// CHECK: v4.comm.all_reduce %[[Y]] : tensor<2x3x6x256xbf16>
func.func @expert_parallel(%x: tensor<2x3x256xbf16>, %rw: tensor<2x3x6xf32>, %idx: tensor<2x3x6xi64>)
    -> tensor<2x3x6x256xbf16> {
  %r = v4.comm.rank world 2 : tensor<1xi64>
  %w1 = v4.parameter_stack "layers.0.ffn.experts.{}.w1.weight" count 4 shards 2 : tensor<4x128x256xbf16>
  %w3 = v4.parameter_stack "layers.0.ffn.experts.{}.w3.weight" count 4 shards 2 : tensor<4x128x256xbf16>
  %w2 = v4.parameter_stack "layers.0.ffn.experts.{}.w2.weight" count 4 shards 2 : tensor<4x256x128xbf16>
  // k = 6 exceeds the shard's 4 experts: allowed with ep_rank.
  %y = v4.moe.experts %x, %rw, %idx ep_rank %r w1 %w1, w3 %w3, w2 %w2
      : (tensor<2x3x256xbf16>, tensor<2x3x6xf32>, tensor<2x3x6xi64>,
         tensor<4x128x256xbf16>, tensor<4x128x256xbf16>, tensor<4x256x128xbf16>,
         tensor<1xi64>) -> tensor<2x3x6x256xbf16>
  %s = v4.comm.all_reduce %y : tensor<2x3x6x256xbf16>
  return %s : tensor<2x3x6x256xbf16>
}

// CHECK-LABEL: func.func @plan_collective
// CHECK: v4.plan.collective "all_reduce_sum"(%{{.*}}) : memref<1x?x2x64xf32>
// CHECK: v4.plan.parameter "e.{}.w" as tensor<3x8xbf16> shards 2 : memref<3x8xbf16>
func.func @plan_collective(%b: memref<1x?x2x64xf32>) {
  v4.plan.collective "all_reduce_sum"(%b) : memref<1x?x2x64xf32>
  %p = v4.plan.parameter "e.{}.w" as tensor<3x8xbf16> shards 2 : memref<3x8xbf16>
  return
}

// CHECK-LABEL: func.func @data_parallel
// CHECK: v4.comm.all_gather %{{.*}} world 2 : tensor<1x?x64xbf16> -> tensor<2x?x64xbf16>
// CHECK: v4.comm.reduce_scatter %{{.*}} world 2 : tensor<2x?x2x64xbf16> -> tensor<1x?x2x64xbf16>
// CHECK: v4.plan.collective "reduce_scatter_sum"(%{{.*}}, %{{.*}}) : memref<2x?x4xf32>, memref<1x?x4xf32>
func.func @data_parallel(%x: tensor<1x?x64xbf16>, %y: tensor<2x?x2x64xbf16>, %a: memref<2x?x4xf32>, %b: memref<1x?x4xf32>)
    -> (tensor<2x?x64xbf16>, tensor<1x?x2x64xbf16>) {
  %all = v4.comm.all_gather %x world 2 : tensor<1x?x64xbf16> -> tensor<2x?x64xbf16>
  %mine = v4.comm.reduce_scatter %y world 2 : tensor<2x?x2x64xbf16> -> tensor<1x?x2x64xbf16>
  v4.plan.collective "reduce_scatter_sum"(%a, %b) : memref<2x?x4xf32>, memref<1x?x4xf32>
  return %all, %mine : tensor<2x?x64xbf16>, tensor<1x?x2x64xbf16>
}

// CHECK-LABEL: func.func @all_to_all
// CHECK: %[[N:.*]], %[[R:.*]], %[[W:.*]], %[[I:.*]] = v4.moe.dispatch %{{.*}}, %{{.*}}, %{{.*}} world 2 experts 4 : (tensor<1x?x64xbf16>, tensor<1x?x6xf32>, tensor<1x?x6xi64>) -> (tensor<2xi64>, tensor<2x1x?x6x64xbf16>, tensor<2x1x?x6x1xf32>, tensor<2x1x?x6x1xi64>)
// CHECK: v4.comm.all_to_all %[[N]], %[[R]] world 2 : (tensor<2xi64>, tensor<2x1x?x6x64xbf16>) -> (tensor<2xi64>, tensor<2x1x?x6x64xbf16>)
// CHECK: v4.comm.all_to_all %[[N]], %[[I]] world 2 : (tensor<2xi64>, tensor<2x1x?x6x1xi64>) -> (tensor<2xi64>, tensor<2x1x?x6x1xi64>)
// CHECK: v4.moe.undispatch %{{.*}}, %{{.*}} world 2 experts 4 : (tensor<2x1x?x6x1x64xbf16>, tensor<1x?x6xi64>) -> tensor<1x?x6x64xbf16>
// CHECK: v4.plan.collective "all_to_all"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : memref<2xi64>, memref<2x1x?x6x1xi64>, memref<2xi64>, memref<2x1x?x6x1xi64>
func.func @all_to_all(%x: tensor<1x?x64xbf16>, %w: tensor<1x?x6xf32>, %i: tensor<1x?x6xi64>,
    %y: tensor<2x1x?x6x1x64xbf16>, %n: memref<2xi64>, %a: memref<2x1x?x6x1xi64>, %m: memref<2xi64>, %b: memref<2x1x?x6x1xi64>)
    -> (tensor<2x1x?x6x64xbf16>, tensor<2x1x?x6x1xi64>, tensor<1x?x6x64xbf16>) {
  %counts, %rows, %rw, %ri = v4.moe.dispatch %x, %w, %i world 2 experts 4
      : (tensor<1x?x64xbf16>, tensor<1x?x6xf32>, tensor<1x?x6xi64>)
      -> (tensor<2xi64>, tensor<2x1x?x6x64xbf16>, tensor<2x1x?x6x1xf32>, tensor<2x1x?x6x1xi64>)
  %got, %xs = v4.comm.all_to_all %counts, %rows world 2
      : (tensor<2xi64>, tensor<2x1x?x6x64xbf16>) -> (tensor<2xi64>, tensor<2x1x?x6x64xbf16>)
  %got2, %is = v4.comm.all_to_all %counts, %ri world 2
      : (tensor<2xi64>, tensor<2x1x?x6x1xi64>) -> (tensor<2xi64>, tensor<2x1x?x6x1xi64>)
  %back = v4.moe.undispatch %y, %i world 2 experts 4
      : (tensor<2x1x?x6x1x64xbf16>, tensor<1x?x6xi64>) -> tensor<1x?x6x64xbf16>
  v4.plan.collective "all_to_all"(%n, %a, %m, %b) : memref<2xi64>, memref<2x1x?x6x1xi64>, memref<2xi64>, memref<2x1x?x6x1xi64>
  return %xs, %is, %back : tensor<2x1x?x6x64xbf16>, tensor<2x1x?x6x1xi64>, tensor<1x?x6x64xbf16>
}
