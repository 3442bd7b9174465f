// RUN: v4-opt %s | v4-opt | FileCheck %s
// RUN: v4-opt %s --mlir-print-op-generic | v4-opt | FileCheck %s

// The plan after dispatch formation: weights as storage buffers, kernels
// in destination-passing style, dispatches over buffers.

module attributes {v4.target = "cpu"} {
  // CHECK: module @kernels
  module @kernels attributes {v4.target = "cpu"} {
    // CHECK-LABEL: func.func @k0_ring_write
    // CHECK: v4.ring.write
    // CHECK: v4.kernel.store %{{.*}} into %{{.*}} : !v4.window_ring<batch = 1, slots = 4, dim = 8, elementType = bf16>
    func.func @k0_ring_write(%ring: !v4.window_ring<batch = 1, slots = 4, dim = 8, elementType = bf16>,
                             %kv: tensor<1x?x8xbf16>, %pos: tensor<1xi64>)
        -> (!v4.window_ring<batch = 1, slots = 4, dim = 8, elementType = bf16> {v4.tied_operand = 0 : i64})
        attributes {v4.kernel} {
      %r = v4.ring.write %kv into %ring at %pos : tensor<1x?x8xbf16>, tensor<1xi64>
          -> !v4.window_ring<batch = 1, slots = 4, dim = 8, elementType = bf16>
      %s = v4.kernel.store %r into %ring : !v4.window_ring<batch = 1, slots = 4, dim = 8, elementType = bf16>
      return %s : !v4.window_ring<batch = 1, slots = 4, dim = 8, elementType = bf16>
    }
  }
  // CHECK-LABEL: func.func @step
  // CHECK: v4.plan.parameter "w" as tensor<8x16xf4E2M1FN> : memref<8x8xi8>
  // CHECK: v4.plan.dispatch @kernels::@k0_ring_write(%{{.*}}, %{{.*}}, %{{.*}}) : memref<1x4x8xbf16>, memref<1x?x8xbf16>, memref<1xi64>
  func.func @step(%ring: memref<1x4x8xbf16>, %kv: memref<1x?x8xbf16>, %pos: memref<1xi64>) {
    %w = v4.plan.parameter "w" as tensor<8x16xf4E2M1FN> : memref<8x8xi8>
    v4.plan.dispatch @kernels::@k0_ring_write(%ring, %kv, %pos) : memref<1x4x8xbf16>, memref<1x?x8xbf16>, memref<1xi64>
    return
  }
}
