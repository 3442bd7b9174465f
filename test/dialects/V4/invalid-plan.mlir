// RUN: v4-opt %s -split-input-file -verify-diagnostics

// plan_parameter_c1: the logical type is a ranked tensor.
func.func @param_logical() {
  // expected-error @+1 {{expected a ranked tensor logical type, got 'f32' [plan_parameter_c1]}}
  %w = v4.plan.parameter "w" as f32 : memref<4xf32>
  return
}

// -----

// plan_parameter_c2: FP4 needs an even, static last dim to be packed.
func.func @param_fp4_odd() {
  // expected-error @+1 {{logical type 'tensor<4x3xf4E2M1FN>' has no storage layout [plan_parameter_c2]}}
  %w = v4.plan.parameter "w" as tensor<4x3xf4E2M1FN> : memref<4x1xi8>
  return
}

// -----

// plan_parameter_c3: the buffer is the storage of the logical type (FP4
// packed two per byte).
func.func @param_storage() {
  // expected-error @+1 {{expected buffer type 'memref<4x8xi8>' for logical type 'tensor<4x16xf4E2M1FN>', got 'memref<4x16xi8>' [plan_parameter_c3]}}
  %w = v4.plan.parameter "w" as tensor<4x16xf4E2M1FN> : memref<4x16xi8>
  return
}

// -----

// plan_dispatch_c1: the kernel exists.
module {
  module @kernels {
  }
  func.func @step(%x: memref<4xf32>) {
    // expected-error @+1 {{kernel @kernels::@missing does not exist [plan_dispatch_c1]}}
    v4.plan.dispatch @kernels::@missing(%x) : memref<4xf32>
    return
  }
}

// -----

// plan_dispatch_c2: one buffer per storage buffer of the kernel's
// arguments (a compressor state has two).
module {
  module @kernels {
    func.func @k0_copy(%a: !v4.compressor_state<batch = 1, ratio = 4, dim = 8>,
                       %b: !v4.compressor_state<batch = 1, ratio = 4, dim = 8>)
        -> !v4.compressor_state<batch = 1, ratio = 4, dim = 8> attributes {v4.kernel} {
      %r = v4.kernel.store %a into %b : !v4.compressor_state<batch = 1, ratio = 4, dim = 8>
      return %r : !v4.compressor_state<batch = 1, ratio = 4, dim = 8>
    }
  }
  func.func @step(%x: memref<1x8x16xf32>) {
    // expected-error @+1 {{kernel @kernels::@k0_copy takes 4 buffers, got 2 [plan_dispatch_c2]}}
    v4.plan.dispatch @kernels::@k0_copy(%x, %x) : memref<1x8x16xf32>, memref<1x8x16xf32>
    return
  }
}

// -----

// plan_dispatch_c3: each buffer has its storage shape and element type
// (FP8 as i8 codes).
module {
  module @kernels {
    func.func @k0_copy(%a: tensor<4xf8E4M3FN>, %b: tensor<4xf8E4M3FN>)
        -> tensor<4xf8E4M3FN> attributes {v4.kernel} {
      %r = v4.kernel.store %a into %b : tensor<4xf8E4M3FN>
      return %r : tensor<4xf8E4M3FN>
    }
  }
  func.func @step(%x: memref<4xi8>, %y: memref<4xf32>) {
    // expected-error @+1 {{buffer 1 of kernel @kernels::@k0_copy must be 'memref<4xi8>', got 'memref<4xf32>' [plan_dispatch_c3]}}
    v4.plan.dispatch @kernels::@k0_copy(%x, %y) : memref<4xi8>, memref<4xf32>
    return
  }
}
