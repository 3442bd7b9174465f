// RUN: v4-opt %s --pass-pipeline='builtin.module(v4-form-dispatches,v4-mark-concurrent-dispatches,v4-plan-memory)' | FileCheck %s
// RUN: v4-opt %s --pass-pipeline='builtin.module(v4-form-dispatches,v4-plan-memory)' | FileCheck %s --check-prefix=ALONE

// Two chains: x0 -> x1 -> o1 and x2 -> y -> o2 (128-byte activations at the
// chunk bound 8). The embedding of x2 reads and writes nothing of the rms
// norm before it (which reads x0 and writes x1): it may run with it. The
// norm of x2 reads what its group wrote: a new group, which the norm of x1
// joins. A group is one point of the memory plan's timeline, so x2 does not
// take the bytes of x0 (read by its group) as it does without the mark.
// CHECK-LABEL: func.func @step(
// CHECK: %[[ARENA:.*]] = memref.alloc() {v4.arena, v4.arena_unplanned_bytes = 512 : i64} : memref<384xi8>
// CHECK: %[[C0:.*]] = arith.constant 0 : index
// CHECK: %[[X0:.*]] = memref.view %[[ARENA]][%[[C0]]]
// CHECK: v4.plan.dispatch @kernels::@k0_embedding(%{{.*}}, %arg0, %[[X0]]) :
// CHECK: %[[C128:.*]] = arith.constant 128 : index
// CHECK: %[[X1:.*]] = memref.view %[[ARENA]][%[[C128]]]
// CHECK: v4.plan.dispatch @kernels::@k1_rms_norm(%[[X0]], %[[X1]]) :
// CHECK: %[[C256:.*]] = arith.constant 256 : index
// CHECK: %[[X2:.*]] = memref.view %[[ARENA]][%[[C256]]]
// CHECK: v4.plan.dispatch @kernels::@k0_embedding(%{{.*}}, %arg1, %[[X2]]) {v4.concurrent}
// CHECK: %[[Y:.*]] = memref.view
// CHECK: v4.plan.dispatch @kernels::@k1_rms_norm(%[[X2]], %[[Y]]) :
// CHECK: %[[O1:.*]] = memref.alloc
// CHECK: v4.plan.dispatch @kernels::@k1_rms_norm(%[[X1]], %[[O1]]) {v4.concurrent}
// CHECK: %[[O2:.*]] = memref.alloc
// CHECK: v4.plan.dispatch @kernels::@k1_rms_norm(%[[Y]], %[[O2]]) :
// ALONE-LABEL: func.func @step(
// ALONE-NOT: v4.concurrent
// ALONE: %[[ARENA:.*]] = memref.alloc() {v4.arena, v4.arena_unplanned_bytes = 512 : i64} : memref<384xi8>
// ALONE: v4.plan.dispatch @kernels::@k1_rms_norm
// ALONE-NEXT: %[[C0:.*]] = arith.constant 0 : index
// ALONE-NEXT: %[[X2:.*]] = memref.view %[[ARENA]][%[[C0]]]
// ALONE-NEXT: v4.plan.dispatch @kernels::@k0_embedding(%{{.*}}, %arg1, %[[X2]]) :
module attributes {v4.target = "cpu", v4.batch = 1 : i64, v4.max_context = 64 : i64, v4.max_chunk = 8 : i64} {
  func.func @init_state() {
    return
  }
  func.func @step(%ids: tensor<1x?xi64>, %next: tensor<1x?xi64>,
                  %start: tensor<1xi64>, %pos: tensor<1x?xi64>)
      -> (tensor<1x?x8xbf16>, tensor<1x?x8xbf16>) {
    %e = v4.parameter "embed.weight" : tensor<16x8xbf16>
    %x0 = v4.embedding %e[%ids] : tensor<16x8xbf16>, tensor<1x?xi64> -> tensor<1x?x8xbf16>
    %x1 = v4.rms_norm %x0 eps 1.0e-6 precision input : tensor<1x?x8xbf16>
    %x2 = v4.embedding %e[%next] : tensor<16x8xbf16>, tensor<1x?xi64> -> tensor<1x?x8xbf16>
    %y = v4.rms_norm %x2 eps 1.0e-6 precision input : tensor<1x?x8xbf16>
    %o1 = v4.rms_norm %x1 eps 1.0e-6 precision input : tensor<1x?x8xbf16>
    %o2 = v4.rms_norm %y eps 1.0e-6 precision input : tensor<1x?x8xbf16>
    return %o1, %o2 : tensor<1x?x8xbf16>, tensor<1x?x8xbf16>
  }
}
