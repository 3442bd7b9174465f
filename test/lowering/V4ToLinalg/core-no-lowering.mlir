// RUN: not v4-opt %s --pass-pipeline='builtin.module(convert-v4-to-linalg)' 2>&1 | FileCheck %s

// An op with no target-neutral body (v4.linear: every target builds its
// GEMMs by hand, in v4-build-target-kernels, which this test does not run)
// is an error at the op naming the op and the target.

module @kernels attributes {v4.target = "cpu"} {
  func.func @linear(%x: tensor<1x?x64xbf16>, %w: tensor<4x64xbf16>, %out: tensor<1x?x4xbf16>) -> tensor<1x?x4xbf16> attributes {v4.kernel} {
    // CHECK: core-no-lowering.mlir:[[@LINE+1]]:10: error: no target-neutral lowering for 'v4.linear', and target 'cpu' builds no kernel for it
    %0 = v4.linear %x, %w : tensor<1x?x64xbf16>, tensor<4x64xbf16> -> tensor<1x?x4xbf16>
    %1 = v4.kernel.store %0 into %out : tensor<1x?x4xbf16>
    return %1 : tensor<1x?x4xbf16>
  }
}
