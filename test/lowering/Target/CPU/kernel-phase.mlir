// The CPU kernel phase, step by step, on a kernels module as dispatch
// formation writes it.
//
// Hot ops are hand-built: the kernel keeps the ABI signature (the storage
// buffers of its operands, then of its fresh results) and calls the body.
// A hot kernel with a launch grid (v4.launch_grid: fixed and token-tile
// blocks per dimension) also takes the six indices of its launch block
// (block x, y, z, grid x, y, z), which its `void k(void **args)` entry reads
// from args[buffers] (null: block 0 of a 1x1x1 grid).
// RUN: v4-opt %s --pass-pipeline='builtin.module(builtin.module(v4-build-target-kernels))' | FileCheck %s --check-prefix=HAND
//
// Kernels without a v4 op (copies, reshapes) are bufferized: every result is
// written into its argument buffer, and the kernel returns nothing.
// RUN: v4-opt %s --pass-pipeline='builtin.module(builtin.module(v4-build-target-kernels,convert-v4-to-linalg,eliminate-empty-tensors,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},v4-finalize-kernel-abi))' | FileCheck %s --check-prefix=BUF
//
// The whole phase: every kernel becomes `void k(void **args)` in the LLVM
// dialect.
// RUN: v4-opt %s --pass-pipeline='builtin.module(v4-kernel-phase{target=cpu})' | FileCheck %s --check-prefix=LLVM

module attributes {v4.target = "cpu"} {
  module @kernels attributes {v4.target = "cpu"} {
    // HAND-LABEL: func.func @k0_linear(
    // HAND-SAME: %[[X:.*]]: memref<1x?x64xbf16>, %[[W:.*]]: memref<32x64xi8>, %[[S:.*]]: memref<1x1xi8>, %[[Y:.*]]: memref<1x?x32xbf16>,
    // HAND-SAME: %[[BX:.*]]: index, %[[BY:.*]]: index, %[[BZ:.*]]: index, %[[GX:.*]]: index, %[[GY:.*]]: index, %[[GZ:.*]]: index)
    // 32 outputs: one block of 256 features; tiles of 32 tokens. The finest
    // grid (8 features x 1 token per block) is for targets of many small
    // processors; the CPU's entries drop it later.
    // HAND-SAME: attributes {v4.kernel, v4.launch_grid = array<i64: 1, 0, 1, 32, 1, 0>, v4.launch_grid_finest = array<i64: 4, 0, 1, 1, 1, 0>}
    // HAND: call @k0_linear_body(%[[X]], %[[W]], %[[S]], %[[Y]], %[[BX]], %[[BY]], %[[BZ]], %[[GX]], %[[GY]], %[[GZ]])
    // HAND: func.func private @k0_linear_body(
    // A whole block of activations is FP8-quantised as vectors of 16 lanes
    // (its maximum |x| as the unsigned maximum of the bits with the sign
    // cleared, then each element's product with the power-of-2 scale's
    // exact reciprocal, one division per block, and rounding); a partial
    // block (here K = 64 < 128) element by element.
    // HAND: %[[ABS:.*]] = arith.andi %{{.*}}, %{{.*}} : vector<16xi32>
    // HAND: arith.maxui %{{.*}}, %[[ABS]] : vector<16xi32>
    // HAND: vector.reduction <maxui>, %{{.*}} : vector<16xi32> into i32
    // HAND: %[[RCP:.*]] = arith.divf %{{.*}}, %{{.*}} : f32
    // HAND: %[[RCPV:.*]] = vector.broadcast %[[RCP]] : f32 to vector<16xf32>
    // HAND: arith.mulf %{{.*}}, %[[RCPV]] : vector<16xf32>
    // HAND: math.roundeven %{{.*}} : vector<16xf32>
    // LLVM-LABEL: llvm.func @k0_linear(%{{.*}}: !llvm.ptr)
    // The launch block pointer after the four buffers, compared with null.
    // LLVM: %[[SLOT:.*]] = llvm.getelementptr %{{.*}}[4] : (!llvm.ptr) -> !llvm.ptr, !llvm.ptr
    // LLVM: %[[LB:.*]] = llvm.load %[[SLOT]] : !llvm.ptr -> !llvm.ptr
    // LLVM: llvm.icmp "eq" %[[LB]], %{{.*}} : !llvm.ptr
    // LLVM: llvm.call @k0_linear_impl
    func.func @k0_linear(%x: tensor<1x?x64xbf16>, %w: tensor<32x64xf8E4M3FN>,
                         %s: tensor<1x1xf8E8M0FNU>, %out: tensor<1x?x32xbf16>)
        -> tensor<1x?x32xbf16> attributes {v4.kernel} {
      %y = v4.linear %x, %w scale %s : tensor<1x?x64xbf16>, tensor<32x64xf8E4M3FN>, tensor<1x1xf8E8M0FNU> -> tensor<1x?x32xbf16>
      %r = v4.kernel.store %y into %out : tensor<1x?x32xbf16>
      return %r : tensor<1x?x32xbf16>
    }
    // BUF-LABEL: func.func @k1_reshape(
    // BUF-SAME: %[[A:.*]]: memref<1x?x8xbf16>, %[[B:.*]]: memref<1x?x2x4xbf16>) attributes {v4.kernel} {
    // BUF: %[[V:.*]] = memref.expand_shape %[[A]]
    // BUF: memref.copy %[[V]], %[[B]]
    // BUF-NEXT: return{{$}}
    func.func @k1_reshape(%x: tensor<1x?x8xbf16>, %out: tensor<1x?x2x4xbf16>)
        -> tensor<1x?x2x4xbf16> attributes {v4.kernel} {
      %c1 = arith.constant 1 : index
      %t = tensor.dim %out, %c1 : tensor<1x?x2x4xbf16>
      %y = tensor.expand_shape %x [[0], [1], [2, 3]] output_shape [1, %t, 2, 4]
          : tensor<1x?x8xbf16> into tensor<1x?x2x4xbf16>
      %r = v4.kernel.store %y into %out : tensor<1x?x2x4xbf16>
      return %r : tensor<1x?x2x4xbf16>
    }
    // A compressor state is two buffers (kv, score): its copy is two copies.
    // BUF-LABEL: func.func @k2_copy(
    // BUF-SAME: %[[KV:.*]]: memref<1x8x16xf32>, %[[SC:.*]]: memref<1x8x16xf32>, %[[KV2:.*]]: memref<1x8x16xf32>, %[[SC2:.*]]: memref<1x8x16xf32>)
    // BUF: memref.copy %[[KV]], %[[KV2]]
    // BUF: memref.copy %[[SC]], %[[SC2]]
    // LLVM-LABEL: llvm.func @k2_copy(%{{.*}}: !llvm.ptr)
    func.func @k2_copy(%a: !v4.compressor_state<batch = 1, ratio = 4, dim = 8>,
                       %b: !v4.compressor_state<batch = 1, ratio = 4, dim = 8>)
        -> !v4.compressor_state<batch = 1, ratio = 4, dim = 8> attributes {v4.kernel} {
      %r = v4.kernel.store %a into %b : !v4.compressor_state<batch = 1, ratio = 4, dim = 8>
      return %r : !v4.compressor_state<batch = 1, ratio = 4, dim = 8>
    }
  }
}
