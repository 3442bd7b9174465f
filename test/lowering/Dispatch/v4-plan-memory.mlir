// RUN: v4-opt %s -split-input-file -verify-diagnostics \
// RUN:   --pass-pipeline='builtin.module(v4-form-dispatches,v4-plan-memory)' | FileCheck %s
// RUN: not v4-opt %s -split-input-file \
// RUN:   --pass-pipeline='builtin.module(v4-form-dispatches,v4-plan-memory,v4-plan-memory)' 2>&1 \
// RUN:   | FileCheck %s --check-prefix=TWICE
// TWICE: error: @step already has an arena: memory is planned once

// A chain x -> y -> w -> out of 128-byte activations at the chunk bound 8
// (1 x 8 x 8 bf16). x and w are never live at the same time, so they share
// bytes; y overlaps both; the output is returned and keeps its own buffer.
// CHECK-LABEL: func.func @step(
// CHECK: %[[ARENA:.*]] = memref.alloc() {v4.arena, v4.arena_unplanned_bytes = 384 : i64} : memref<256xi8>
// CHECK: %[[TOK:.*]] = memref.dim
// CHECK: %[[O0:.*]] = arith.constant 0 : index
// CHECK: %[[X:.*]] = memref.view %[[ARENA]][%[[O0]]][%[[TOK]]] : memref<256xi8> to memref<1x?x8xbf16>
// CHECK: v4.plan.dispatch @kernels::@k0_embedding(%{{.*}}, %{{.*}}, %[[X]])
// CHECK: %[[O1:.*]] = arith.constant 128 : index
// CHECK: %[[Y:.*]] = memref.view %[[ARENA]][%[[O1]]][%[[TOK]]]
// CHECK: v4.plan.dispatch @kernels::@k1_rms_norm(%[[X]], %[[Y]])
// CHECK: %[[O2:.*]] = arith.constant 0 : index
// CHECK: %[[W:.*]] = memref.view %[[ARENA]][%[[O2]]][%[[TOK]]]
// CHECK: v4.plan.dispatch @kernels::@k1_rms_norm(%[[Y]], %[[W]])
// CHECK: %[[OUT:.*]] = memref.alloc(%[[TOK]]) : memref<1x?x8xbf16>
// CHECK: v4.plan.dispatch @kernels::@k1_rms_norm(%[[W]], %[[OUT]])
// CHECK: return %[[OUT]]
module attributes {v4.target = "cpu", v4.batch = 1 : i64, v4.max_context = 64 : i64, v4.max_chunk = 8 : i64} {
  func.func @init_state() {
    return
  }
  func.func @step(%ids: tensor<1x?xi64>, %next: tensor<1x?xi64>,
                  %start: tensor<1xi64>, %pos: tensor<1x?xi64>)
      -> tensor<1x?x8xbf16> {
    %e = v4.parameter "embed.weight" : tensor<16x8xbf16>
    %x = v4.embedding %e[%ids] : tensor<16x8xbf16>, tensor<1x?xi64> -> tensor<1x?x8xbf16>
    %y = v4.rms_norm %x eps 1.0e-6 precision input : tensor<1x?x8xbf16>
    %w = v4.rms_norm %y eps 1.0e-6 precision input : tensor<1x?x8xbf16>
    %o = v4.rms_norm %w eps 1.0e-6 precision input : tensor<1x?x8xbf16>
    return %o : tensor<1x?x8xbf16>
  }
}

// -----

// Without v4.max_chunk the token dim is sized at min(max context, 512):
// 1 x 16 x 8 bf16 = 256 bytes.
// CHECK-LABEL: func.func @step(
// CHECK: memref.alloc() {v4.arena, v4.arena_unplanned_bytes = 256 : i64} : memref<256xi8>
module attributes {v4.target = "cpu", v4.batch = 1 : i64, v4.max_context = 16 : i64} {
  func.func @init_state() {
    return
  }
  func.func @step(%ids: tensor<1x?xi64>, %next: tensor<1x?xi64>,
                  %start: tensor<1xi64>, %pos: tensor<1x?xi64>)
      -> tensor<1x?x8xbf16> {
    %e = v4.parameter "embed.weight" : tensor<16x8xbf16>
    %x = v4.embedding %e[%ids] : tensor<16x8xbf16>, tensor<1x?xi64> -> tensor<1x?x8xbf16>
    %o = v4.rms_norm %x eps 1.0e-6 precision input : tensor<1x?x8xbf16>
    return %o : tensor<1x?x8xbf16>
  }
}
