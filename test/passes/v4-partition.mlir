// RUN: v4-opt %s -split-input-file --v4-partition -verify-diagnostics | FileCheck %s

// --ep 2: the experts take the rank, each stack becomes the rank's half
// (count 4 of 8, shards 2; scales too), and the per-slot output is summed
// over the ranks before the combine reads it. The gate, the shared expert
// and the combine are unchanged.
// CHECK-LABEL: func.func @ep2
// CHECK: %[[R:.+]] = v4.comm.rank world 2 : tensor<1xi64>
// CHECK-DAG: %[[W1:.+]] = v4.parameter_stack "l.experts.{}.w1.weight" count 4 shards 2 : tensor<4x64x64xf4E2M1FN>
// CHECK-DAG: %[[S1:.+]] = v4.parameter_stack "l.experts.{}.w1.scale" count 4 shards 2 : tensor<4x64x2xf8E8M0FNU>
// CHECK-DAG: %[[W2:.+]] = v4.parameter_stack "l.experts.{}.w2.weight" count 4 shards 2 : tensor<4x64x64xf4E2M1FN>
// CHECK-NOT: count 8
// CHECK: %[[Y:.+]] = v4.moe.experts %{{.+}}, %{{.+}}, %{{.+}} ep_rank %[[R]] w1 %[[W1]] scale %[[S1]],
// CHECK: %[[S:.+]] = v4.comm.all_reduce %[[Y]] : tensor<1x?x2x64xbf16>
// CHECK: v4.moe.combine %[[S]], %{{.+}}
module attributes {v4.ep = 2 : i64} {
  func.func @ep2(%x: tensor<1x?x64xbf16>, %rw: tensor<1x?x2xf32>, %idx: tensor<1x?x2xi64>, %sh: tensor<1x?x64xbf16>) -> tensor<1x?x64xbf16> {
    %w1 = v4.parameter_stack "l.experts.{}.w1.weight" count 8 : tensor<8x64x64xf4E2M1FN>
    %s1 = v4.parameter_stack "l.experts.{}.w1.scale" count 8 : tensor<8x64x2xf8E8M0FNU>
    %w3 = v4.parameter_stack "l.experts.{}.w3.weight" count 8 : tensor<8x64x64xf4E2M1FN>
    %s3 = v4.parameter_stack "l.experts.{}.w3.scale" count 8 : tensor<8x64x2xf8E8M0FNU>
    %w2 = v4.parameter_stack "l.experts.{}.w2.weight" count 8 : tensor<8x64x64xf4E2M1FN>
    %s2 = v4.parameter_stack "l.experts.{}.w2.scale" count 8 : tensor<8x64x2xf8E8M0FNU>
    %y = v4.moe.experts %x, %rw, %idx w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 scale %s2 swigluLimit 10.0
        : (tensor<1x?x64xbf16>, tensor<1x?x2xf32>, tensor<1x?x2xi64>,
           tensor<8x64x64xf4E2M1FN>, tensor<8x64x64xf4E2M1FN>, tensor<8x64x64xf4E2M1FN>,
           tensor<8x64x2xf8E8M0FNU>, tensor<8x64x2xf8E8M0FNU>, tensor<8x64x2xf8E8M0FNU>) -> tensor<1x?x2x64xbf16>
    %c = v4.moe.combine %y, %sh : tensor<1x?x2x64xbf16>, tensor<1x?x64xbf16> -> tensor<1x?x64xbf16>
    return %c : tensor<1x?x64xbf16>
  }
}

// -----

// Without v4.ep (or with 1) the module is unchanged.
// CHECK-LABEL: func.func @ep1
// CHECK-NOT: v4.comm
// CHECK: v4.parameter_stack "l.experts.{}.w1.weight" count 8 : tensor<8x64x64xbf16>
module attributes {v4.ep = 1 : i64} {
  func.func @ep1(%x: tensor<1x?x64xbf16>, %rw: tensor<1x?x2xf32>, %idx: tensor<1x?x2xi64>) -> tensor<1x?x2x64xbf16> {
    %w1 = v4.parameter_stack "l.experts.{}.w1.weight" count 8 : tensor<8x64x64xbf16>
    %w3 = v4.parameter_stack "l.experts.{}.w3.weight" count 8 : tensor<8x64x64xbf16>
    %w2 = v4.parameter_stack "l.experts.{}.w2.weight" count 8 : tensor<8x64x64xbf16>
    %y = v4.moe.experts %x, %rw, %idx w1 %w1, w3 %w3, w2 %w2
        : (tensor<1x?x64xbf16>, tensor<1x?x2xf32>, tensor<1x?x2xi64>,
           tensor<8x64x64xbf16>, tensor<8x64x64xbf16>, tensor<8x64x64xbf16>) -> tensor<1x?x2x64xbf16>
    return %y : tensor<1x?x2x64xbf16>
  }
}

// -----

// An expert count the world does not divide: ceil(6 / 4) = 2 per rank,
// the last rank's two members are padding (zeros no token is routed to).
// CHECK-LABEL: func.func @uneven
// CHECK: v4.parameter_stack "l.experts.{}.w1.weight" count 2 shards 4 of 6 : tensor<2x64x64xbf16>
// CHECK: v4.comm.all_reduce
module attributes {v4.ep = 4 : i64} {
  func.func @uneven(%x: tensor<1x?x64xbf16>, %rw: tensor<1x?x2xf32>, %idx: tensor<1x?x2xi64>) -> tensor<1x?x2x64xbf16> {
    %w1 = v4.parameter_stack "l.experts.{}.w1.weight" count 6 : tensor<6x64x64xbf16>
    %w3 = v4.parameter_stack "l.experts.{}.w3.weight" count 6 : tensor<6x64x64xbf16>
    %w2 = v4.parameter_stack "l.experts.{}.w2.weight" count 6 : tensor<6x64x64xbf16>
    %y = v4.moe.experts %x, %rw, %idx w1 %w1, w3 %w3, w2 %w2
        : (tensor<1x?x64xbf16>, tensor<1x?x2xf32>, tensor<1x?x2xi64>,
           tensor<6x64x64xbf16>, tensor<6x64x64xbf16>, tensor<6x64x64xbf16>) -> tensor<1x?x2x64xbf16>
    return %y : tensor<1x?x2x64xbf16>
  }
}

// -----

// More ranks than experts.
module attributes {v4.ep = 16 : i64} {
  func.func @too_many(%x: tensor<1x?x64xbf16>, %rw: tensor<1x?x2xf32>, %idx: tensor<1x?x2xi64>) -> tensor<1x?x2x64xbf16> {
    %w1 = v4.parameter_stack "l.experts.{}.w1.weight" count 8 : tensor<8x64x64xbf16>
    %w3 = v4.parameter_stack "l.experts.{}.w3.weight" count 8 : tensor<8x64x64xbf16>
    %w2 = v4.parameter_stack "l.experts.{}.w2.weight" count 8 : tensor<8x64x64xbf16>
    // expected-error @+1 {{--ep 16: the model has only 8 routed experts, fewer than the 16 ranks}}
    %y = v4.moe.experts %x, %rw, %idx w1 %w1, w3 %w3, w2 %w2
        : (tensor<1x?x64xbf16>, tensor<1x?x2xf32>, tensor<1x?x2xi64>,
           tensor<8x64x64xbf16>, tensor<8x64x64xbf16>, tensor<8x64x64xbf16>) -> tensor<1x?x2x64xbf16>
    return %y : tensor<1x?x2x64xbf16>
  }
}

// -----

// A model without routed experts.
// expected-error @+1 {{--ep 2: the model has no routed experts to split}}
module attributes {v4.ep = 2 : i64} {
  func.func @dense(%x: tensor<4xf32>) -> tensor<4xf32> {
    return %x : tensor<4xf32>
  }
}

// -----

// A malformed attribute.
// expected-error @+1 {{v4.ep must be an integer >= 1, got 0 : i64}}
module attributes {v4.ep = 0 : i64} {
}

// -----

// Expert weights that are not a stack.
module attributes {v4.ep = 2 : i64} {
  func.func @not_stack(%x: tensor<1x?x64xbf16>, %rw: tensor<1x?x2xf32>, %idx: tensor<1x?x2xi64>, %w1: tensor<8x64x64xbf16>) -> tensor<1x?x2x64xbf16> {
    // expected-error @+1 {{--ep 2: an expert weight that is not a v4.parameter_stack cannot be sharded}}
    %y = v4.moe.experts %x, %rw, %idx w1 %w1, w3 %w1, w2 %w1
        : (tensor<1x?x64xbf16>, tensor<1x?x2xf32>, tensor<1x?x2xi64>,
           tensor<8x64x64xbf16>, tensor<8x64x64xbf16>, tensor<8x64x64xbf16>) -> tensor<1x?x2x64xbf16>
    return %y : tensor<1x?x2x64xbf16>
  }
}

// -----

// --ep 2 --dp-attention: each rank's own sequence; each routing slot's row
// (x, routing weight, index) goes to the rank owning its expert (4 of the
// 8 per rank), the experts run on the received one-slot rows, and the
// outputs come back by the received counts and into slot order.
// CHECK-LABEL: func.func @dp_all_to_all
// CHECK: %[[R:.+]] = v4.comm.rank world 2
// CHECK: %[[N:.+]], %[[ROWS:.+]], %[[RW:.+]], %[[RI:.+]] = v4.moe.dispatch %{{.+}}, %{{.+}}, %[[IDX:[^ ]+]] world 2 experts 4 : (tensor<1x?x64xbf16>, tensor<1x?x2xf32>, tensor<1x?x2xi64>) -> (tensor<2xi64>, tensor<2x1x?x2x64xbf16>, tensor<2x1x?x2x1xf32>, tensor<2x1x?x2x1xi64>)
// CHECK: %[[GOT:.+]], %[[X:.+]] = v4.comm.all_to_all %[[N]], %[[ROWS]] world 2
// CHECK: %{{.+}}, %[[W:.+]] = v4.comm.all_to_all %[[N]], %[[RW]] world 2
// CHECK: %{{.+}}, %[[I:.+]] = v4.comm.all_to_all %[[N]], %[[RI]] world 2
// CHECK: %[[Y:.+]] = v4.moe.experts %[[X]], %[[W]], %[[I]] ep_rank %[[R]] {{.*}} -> tensor<2x1x?x2x1x64xbf16>
// CHECK: %{{.+}}, %[[BACK:.+]] = v4.comm.all_to_all %[[GOT]], %[[Y]] world 2 : (tensor<2xi64>, tensor<2x1x?x2x1x64xbf16>)
// CHECK: %[[M:.+]] = v4.moe.undispatch %[[BACK]], %[[IDX]] world 2 experts 4 : (tensor<2x1x?x2x1x64xbf16>, tensor<1x?x2xi64>) -> tensor<1x?x2x64xbf16>
// CHECK-NOT: v4.comm.all_reduce
// CHECK: return %[[M]]
module attributes {v4.ep = 2 : i64, v4.dp_attention} {
  func.func @dp_all_to_all(%x: tensor<1x?x64xbf16>, %rw: tensor<1x?x2xf32>, %idx: tensor<1x?x2xi64>) -> tensor<1x?x2x64xbf16> {
    %w1 = v4.parameter_stack "l.experts.{}.w1.weight" count 8 : tensor<8x64x64xbf16>
    %w3 = v4.parameter_stack "l.experts.{}.w3.weight" count 8 : tensor<8x64x64xbf16>
    %w2 = v4.parameter_stack "l.experts.{}.w2.weight" count 8 : tensor<8x64x64xbf16>
    %y = v4.moe.experts %x, %rw, %idx w1 %w1, w3 %w3, w2 %w2
        : (tensor<1x?x64xbf16>, tensor<1x?x2xf32>, tensor<1x?x2xi64>,
           tensor<8x64x64xbf16>, tensor<8x64x64xbf16>, tensor<8x64x64xbf16>) -> tensor<1x?x2x64xbf16>
    return %y : tensor<1x?x2x64xbf16>
  }
}

// -----

// v4.dp_attention = "gather": the experts run on the tokens of both ranks
// (gathered along the batch dim) and each rank keeps its block of the
// summed slot outputs.
// CHECK-LABEL: func.func @dp
// CHECK: %[[R:.+]] = v4.comm.rank world 2
// CHECK-DAG: %[[X:.+]] = v4.comm.all_gather %{{.+}} world 2 : tensor<1x?x64xbf16> -> tensor<2x?x64xbf16>
// CHECK-DAG: %[[W:.+]] = v4.comm.all_gather %{{.+}} world 2 : tensor<1x?x2xf32> -> tensor<2x?x2xf32>
// CHECK-DAG: %[[I:.+]] = v4.comm.all_gather %{{.+}} world 2 : tensor<1x?x2xi64> -> tensor<2x?x2xi64>
// CHECK: %[[Y:.+]] = v4.moe.experts %[[X]], %[[W]], %[[I]] ep_rank %[[R]] {{.*}} -> tensor<2x?x2x64xbf16>
// CHECK: %[[M:.+]] = v4.comm.reduce_scatter %[[Y]] world 2 : tensor<2x?x2x64xbf16> -> tensor<1x?x2x64xbf16>
// CHECK-NOT: v4.comm.all_reduce
// CHECK: return %[[M]]
module attributes {v4.ep = 2 : i64, v4.dp_attention = "gather"} {
  func.func @dp(%x: tensor<1x?x64xbf16>, %rw: tensor<1x?x2xf32>, %idx: tensor<1x?x2xi64>) -> tensor<1x?x2x64xbf16> {
    %w1 = v4.parameter_stack "l.experts.{}.w1.weight" count 8 : tensor<8x64x64xbf16>
    %w3 = v4.parameter_stack "l.experts.{}.w3.weight" count 8 : tensor<8x64x64xbf16>
    %w2 = v4.parameter_stack "l.experts.{}.w2.weight" count 8 : tensor<8x64x64xbf16>
    %y = v4.moe.experts %x, %rw, %idx w1 %w1, w3 %w3, w2 %w2
        : (tensor<1x?x64xbf16>, tensor<1x?x2xf32>, tensor<1x?x2xi64>,
           tensor<8x64x64xbf16>, tensor<8x64x64xbf16>, tensor<8x64x64xbf16>) -> tensor<1x?x2x64xbf16>
    return %y : tensor<1x?x2x64xbf16>
  }
}

// -----

// An exchange v4-partition does not know.
// expected-error @+1 {{v4.dp_attention must be a unit, "all_to_all" or "gather", got "scatter"}}
module attributes {v4.ep = 2 : i64, v4.dp_attention = "scatter"} {
}

// -----

// --dp-attention needs more than one rank.
// expected-error @+1 {{--dp-attention needs --ep N with N > 1: the ranks' experts serve every rank's tokens}}
module attributes {v4.dp_attention} {
}
