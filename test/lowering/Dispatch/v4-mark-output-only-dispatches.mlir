// RUN: v4-opt %s --pass-pipeline='builtin.module(v4-form-dispatches,v4-mark-output-only-dispatches)' | FileCheck %s

!ring = !v4.window_ring<batch = 1, slots = 4, dim = 8, elementType = bf16>

// Two outputs (logits, MTP logits) and a state. x0 reaches both outputs
// and o1 only the logits; y reaches the MTP logits but also the state (the
// ring write): every call needs it. o2 reaches only the MTP logits. The
// embedding of the next ids reaches nothing: kept, not this pass's
// business.
// CHECK-LABEL: func.func @step(
// CHECK: v4.plan.dispatch @kernels::@[[EMB:k[0-9]+_embedding]](%{{.*}}, %arg0, %[[X0:[^)]*]]) :
// CHECK-NEXT: %[[O1:.*]] = memref.alloc
// CHECK-NEXT: v4.plan.dispatch @kernels::@[[NORM:k[0-9]+_rms_norm]](%[[X0]], %[[O1]]) {v4.only_for_outputs = array<i64: 0>} :
// CHECK-NEXT: %[[Y:.*]] = memref.alloc
// CHECK-NEXT: v4.plan.dispatch @kernels::@[[NORM]](%[[X0]], %[[Y]]) :
// CHECK-NEXT: v4.plan.dispatch @kernels::@{{k[0-9]+}}_ring_write(%arg4, %[[Y]], %arg2) :
// CHECK-NEXT: %[[O2:.*]] = memref.alloc
// CHECK-NEXT: v4.plan.dispatch @kernels::@[[NORM]](%[[Y]], %[[O2]]) {v4.only_for_outputs = array<i64: 1>} :
// CHECK: v4.plan.dispatch @kernels::@[[EMB]](%{{.*}}, %arg1, %{{.*}}) :
// CHECK: return %[[O1]], %[[O2]]
module attributes {v4.target = "cpu", v4.batch = 1 : i64, v4.max_context = 64 : i64, v4.max_chunk = 8 : i64} {
  func.func @init_state() -> !ring {
    %r = v4.ring.empty : !ring
    return %r : !ring
  }
  func.func @step(%ids: tensor<1x?xi64>, %next: tensor<1x?xi64>,
                  %start: tensor<1xi64>, %pos: tensor<1x?xi64>, %ring: !ring)
      -> (tensor<1x?x8xbf16>, tensor<1x?x8xbf16>, !ring) {
    %e = v4.parameter "embed.weight" : tensor<16x8xbf16>
    %x0 = v4.embedding %e[%ids] : tensor<16x8xbf16>, tensor<1x?xi64> -> tensor<1x?x8xbf16>
    %o1 = v4.rms_norm %x0 eps 1.0e-6 precision input : tensor<1x?x8xbf16>
    %y = v4.rms_norm %x0 eps 1.0e-6 precision input : tensor<1x?x8xbf16>
    %r1 = v4.ring.write %y into %ring at %start
        : tensor<1x?x8xbf16>, tensor<1xi64> -> !ring
    %o2 = v4.rms_norm %y eps 1.0e-6 precision input : tensor<1x?x8xbf16>
    %x2 = v4.embedding %e[%next] : tensor<16x8xbf16>, tensor<1x?xi64> -> tensor<1x?x8xbf16>
    return %o1, %o2, %r1 : tensor<1x?x8xbf16>, tensor<1x?x8xbf16>, !ring
  }
}
