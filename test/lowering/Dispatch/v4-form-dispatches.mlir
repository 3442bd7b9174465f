// RUN: v4-opt %s -split-input-file -verify-diagnostics \
// RUN:   --pass-pipeline='builtin.module(v4-form-dispatches)' | FileCheck %s

!ring = !v4.window_ring<batch = 1, slots = 4, dim = 8, elementType = bf16>

// A step with a weight read twice (one buffer), a state updated in place,
// a reshape (a copy kernel) and an output.

// The plan: @init_state and @step over buffers.
// CHECK-LABEL: func.func @init_state(
// CHECK-SAME: %[[S0:.*]]: memref<1x4x8xbf16>)
// CHECK: v4.plan.dispatch @kernels::@k3_ring_empty(%[[S0]])
// CHECK-LABEL: func.func @step(
// CHECK-SAME: %[[IDS:[^:]*]]: memref<1x?xi64> {v4.role = "ids"}
// CHECK-SAME: %[[START:[^:]*]]: memref<1xi64> {v4.role = "start_positions"}
// CHECK-SAME: %[[RING:[^:]*]]: memref<1x4x8xbf16> {v4.state = "state0"}
// CHECK-SAME: -> (memref<1x?x2x4xbf16> {v4.role = "logits"})
// CHECK: %[[TOK:.*]] = memref.dim %[[IDS]], %{{.*}}
// CHECK: %[[W:.*]] = v4.plan.parameter "embed.weight" as tensor<16x8xbf16> : memref<16x8xbf16>
// CHECK: %[[X:.*]] = memref.alloc(%[[TOK]]) : memref<1x?x8xbf16>
// CHECK: v4.plan.dispatch @kernels::@k0_embedding(%[[W]], %[[IDS]], %[[X]])
// The ring is updated in place: no buffer of its own, no copy.
// CHECK-NEXT: v4.plan.dispatch @kernels::@k1_ring_write(%[[RING]], %[[X]], %[[START]])
// CHECK: %[[Y:.*]] = memref.alloc(%[[TOK]]) : memref<1x?x2x4xbf16>
// CHECK: v4.plan.dispatch @kernels::@k2_reshape(%[[X]], %[[Y]])
// The second read of the weight reuses its buffer: no second parameter.
// CHECK-NOT: v4.plan.parameter
// CHECK: v4.plan.dispatch @kernels::@k0_embedding(%[[W]], %[[IDS]], %{{.*}})
// CHECK: return %[[Y]]

// The kernels: one per distinct op, destination-passing style.
// CHECK: module @kernels attributes {v4.max_chunk = {{[0-9]+}} : i64, v4.target = "cpu"}
// CHECK: func.func @k0_embedding(%[[T:.*]]: tensor<16x8xbf16>, %[[I:.*]]: tensor<1x?xi64>, %[[O:.*]]: tensor<1x?x8xbf16>) -> tensor<1x?x8xbf16> attributes {v4.kernel, v4.kernel_op = "v4.embedding", v4.token_slice = 8 : i64}
// CHECK:   %[[E:.*]] = v4.embedding %[[T]][%[[I]]]
// CHECK:   %[[ST:.*]] = v4.kernel.store %[[E]] into %[[O]]
// CHECK:   return %[[ST]]
// CHECK: func.func @k1_ring_write(%[[R:.*]]: !v4.window_ring<{{.*}}>, %{{.*}}: tensor<1x?x8xbf16>, %{{.*}}: tensor<1xi64>) -> (!v4.window_ring<{{.*}}> {v4.tied_operand = 0 : i64})
// CHECK:   v4.kernel.store %{{.*}} into %[[R]]
// CHECK: func.func @k2_reshape(%{{.*}}: tensor<1x?x8xbf16>, %[[D:.*]]: tensor<1x?x2x4xbf16>)
// CHECK:   tensor.dim %[[D]], %{{.*}}
// CHECK:   tensor.expand_shape
// CHECK: func.func @k3_ring_empty(%{{.*}}: !v4.window_ring<{{.*}}>)
// CHECK-NOT: func.func @k4
module attributes {v4.target = "cpu"} {
  func.func @init_state() -> !ring {
    %r = v4.ring.empty : !ring
    return %r : !ring
  }
  func.func @step(%ids: tensor<1x?xi64>, %next: tensor<1x?xi64>,
                  %start: tensor<1xi64>, %pos: tensor<1x?xi64>, %ring: !ring)
      -> (tensor<1x?x2x4xbf16>, !ring) {
    %w = v4.parameter "embed.weight" : tensor<16x8xbf16>
    %x = v4.embedding %w[%ids] : tensor<16x8xbf16>, tensor<1x?xi64> -> tensor<1x?x8xbf16>
    %r1 = v4.ring.write %x into %ring at %start
        : tensor<1x?x8xbf16>, tensor<1xi64> -> !ring
    %c1 = arith.constant 1 : index
    %t = tensor.dim %x, %c1 : tensor<1x?x8xbf16>
    %y = tensor.expand_shape %x [[0], [1], [2, 3]] output_shape [1, %t, 2, 4]
        : tensor<1x?x8xbf16> into tensor<1x?x2x4xbf16>
    %w2 = v4.parameter "embed.weight" : tensor<16x8xbf16>
    %x2 = v4.embedding %w2[%ids] : tensor<16x8xbf16>, tensor<1x?xi64> -> tensor<1x?x8xbf16>
    return %y, %r1 : tensor<1x?x2x4xbf16>, !ring
  }
}

// -----

// Copy-on-write: the state is written by one op while a later op still
// reads the old value, so the first update goes to a scratch copy; the
// state returned is the second update, in place.

!ring = !v4.window_ring<batch = 1, slots = 4, dim = 8, elementType = bf16>

// CHECK-LABEL: func.func @step(
// CHECK-SAME: %[[RING:[^:]*]]: memref<1x4x8xbf16> {v4.state = "state0"}
// CHECK: %[[SCRATCH:.*]] = memref.alloc() : memref<1x4x8xbf16>
// CHECK: v4.plan.dispatch @kernels::@k2_copy(%[[RING]], %[[SCRATCH]])
// CHECK: v4.plan.dispatch @kernels::@k1_ring_write(%[[SCRATCH]],
// CHECK: v4.plan.dispatch @kernels::@k1_ring_write(%[[RING]],
// CHECK-LABEL: module @kernels
// CHECK: func.func @k2_copy(%[[A:.*]]: !v4.window_ring<{{.*}}>, %[[B:.*]]: !v4.window_ring<{{.*}}>)
// CHECK: v4.kernel.store %[[A]] into %[[B]]
module attributes {v4.target = "cpu"} {
  func.func @init_state() -> !ring {
    %r = v4.ring.empty : !ring
    return %r : !ring
  }
  func.func @step(%ids: tensor<1x?xi64>, %next: tensor<1x?xi64>,
                  %start: tensor<1xi64>, %pos: tensor<1x?xi64>, %ring: !ring)
      -> (tensor<1x?x8xbf16>, !ring) {
    %w = v4.parameter "embed.weight" : tensor<16x8xbf16>
    %x = v4.embedding %w[%ids] : tensor<16x8xbf16>, tensor<1x?xi64> -> tensor<1x?x8xbf16>
    %dead = v4.ring.write %x into %ring at %start
        : tensor<1x?x8xbf16>, tensor<1xi64> -> !ring
    %r1 = v4.ring.write %x into %ring at %start
        : tensor<1x?x8xbf16>, tensor<1xi64> -> !ring
    return %x, %r1 : tensor<1x?x8xbf16>, !ring
  }
}

// -----

// Must not run: a module without the model entry points.
// expected-error @+1 {{a model needs @step and @init_state to be compiled}}
module {
  func.func @f() {
    return
  }
}

// -----

// Must not run: an op the plan cannot hold.
module {
  func.func @init_state() -> () {
    return
  }
  func.func @step(%ids: tensor<1x?xi64>, %next: tensor<1x?xi64>,
                  %start: tensor<1xi64>, %pos: tensor<1x?xi64>) -> (tensor<1x?xi64>) {
    // expected-error @+1 {{dispatch formation does not handle 'func.call'}}
    %r = func.call @g(%ids) : (tensor<1x?xi64>) -> tensor<1x?xi64>
    return %r : tensor<1x?xi64>
  }
  func.func private @g(tensor<1x?xi64>) -> tensor<1x?xi64>
}
