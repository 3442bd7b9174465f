// RUN: v4-opt %s | v4-opt | FileCheck %s
// RUN: v4-opt %s --mlir-print-op-generic | v4-opt | FileCheck %s

// Small shapes: d = 256, E = 8, k = 2, I = 128.

// CHECK-LABEL: func.func @gate
// CHECK: v4.moe.gate %{{.*}}, %{{.*}} bias %{{.*}} scoreFunc sqrtsoftplus topK 2 routeScale 1.500000e+00 : tensor<2x3x256xbf16>, tensor<8x256xbf16>, tensor<8xf32> -> tensor<2x3x2xf32>, tensor<2x3x2xi64>
func.func @gate(%x: tensor<2x3x256xbf16>, %w: tensor<8x256xbf16>, %b: tensor<8xf32>)
    -> (tensor<2x3x2xf32>, tensor<2x3x2xi64>) {
  %rw, %idx = v4.moe.gate %x, %w bias %b scoreFunc sqrtsoftplus topK 2 routeScale 1.5
      : tensor<2x3x256xbf16>, tensor<8x256xbf16>, tensor<8xf32>
      -> tensor<2x3x2xf32>, tensor<2x3x2xi64>
  return %rw, %idx : tensor<2x3x2xf32>, tensor<2x3x2xi64>
}

// No bias, other score functions, f32 operands, topK = E, token-major [N, d].
// CHECK-LABEL: func.func @gate_variants
// CHECK: v4.moe.gate %{{.*}}, %{{.*}} scoreFunc sigmoid topK 8 routeScale 1.000000e+00 : tensor<5x256xf32>, tensor<8x256xf32> -> tensor<5x8xf32>, tensor<5x8xi64>
// CHECK: v4.moe.gate %{{.*}}, %{{.*}} scoreFunc softmax topK 1 routeScale 2.500000e+00 : tensor<5x256xf32>, tensor<8x256xbf16> -> tensor<5x1xf32>, tensor<5x1xi64>
func.func @gate_variants(%x: tensor<5x256xf32>, %w: tensor<8x256xf32>, %wb: tensor<8x256xbf16>) {
  %rw0, %idx0 = v4.moe.gate %x, %w scoreFunc sigmoid topK 8 routeScale 1.0
      : tensor<5x256xf32>, tensor<8x256xf32> -> tensor<5x8xf32>, tensor<5x8xi64>
  %rw1, %idx1 = v4.moe.gate %x, %wb scoreFunc softmax topK 1 routeScale 2.5
      : tensor<5x256xf32>, tensor<8x256xbf16> -> tensor<5x1xf32>, tensor<5x1xi64>
  return
}

// CHECK-LABEL: func.func @hash_gate
// CHECK: v4.moe.hash_gate %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} scoreFunc sqrtsoftplus routeScale 1.500000e+00 : tensor<2x3x256xbf16>, tensor<8x256xbf16>, tensor<2x3xi32>, tensor<1000x2xi32> -> tensor<2x3x2xf32>, tensor<2x3x2xi64>
func.func @hash_gate(%x: tensor<2x3x256xbf16>, %w: tensor<8x256xbf16>, %ids: tensor<2x3xi32>,
                     %t: tensor<1000x2xi32>) -> (tensor<2x3x2xf32>, tensor<2x3x2xi64>) {
  %rw, %idx = v4.moe.hash_gate %x, %w, %ids, %t scoreFunc sqrtsoftplus routeScale 1.5
      : tensor<2x3x256xbf16>, tensor<8x256xbf16>, tensor<2x3xi32>, tensor<1000x2xi32>
      -> tensor<2x3x2xf32>, tensor<2x3x2xi64>
  return %rw, %idx : tensor<2x3x2xf32>, tensor<2x3x2xi64>
}

// CHECK-LABEL: func.func @experts_fp4
// CHECK: v4.moe.experts %{{.*}}, %{{.*}}, %{{.*}} w1 %{{.*}} scale %{{.*}}, w3 %{{.*}} scale %{{.*}}, w2 %{{.*}} scale %{{.*}} swigluLimit 1.000000e+01 : (tensor<2x3x256xbf16>, tensor<2x3x2xf32>, tensor<2x3x2xi64>, tensor<8x128x256xf4E2M1FN>, tensor<8x128x256xf4E2M1FN>, tensor<8x256x128xf4E2M1FN>, tensor<8x128x8xf8E8M0FNU>, tensor<8x128x8xf8E8M0FNU>, tensor<8x256x4xf8E8M0FNU>) -> tensor<2x3x2x256xbf16>
func.func @experts_fp4(%x: tensor<2x3x256xbf16>, %rw: tensor<2x3x2xf32>, %idx: tensor<2x3x2xi64>,
    %w1: tensor<8x128x256xf4E2M1FN>, %w3: tensor<8x128x256xf4E2M1FN>, %w2: tensor<8x256x128xf4E2M1FN>,
    %s1: tensor<8x128x8xf8E8M0FNU>, %s3: tensor<8x128x8xf8E8M0FNU>, %s2: tensor<8x256x4xf8E8M0FNU>)
    -> tensor<2x3x2x256xbf16> {
  %y = v4.moe.experts %x, %rw, %idx w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 scale %s2 swigluLimit 10.0
      : (tensor<2x3x256xbf16>, tensor<2x3x2xf32>, tensor<2x3x2xi64>,
         tensor<8x128x256xf4E2M1FN>, tensor<8x128x256xf4E2M1FN>, tensor<8x256x128xf4E2M1FN>,
         tensor<8x128x8xf8E8M0FNU>, tensor<8x128x8xf8E8M0FNU>, tensor<8x256x4xf8E8M0FNU>)
      -> tensor<2x3x2x256xbf16>
  return %y : tensor<2x3x2x256xbf16>
}

// FP8 experts (128x128 block scales, partial blocks round up: I = 192).
// CHECK-LABEL: func.func @experts_fp8
// CHECK: v4.moe.experts {{.*}} swigluLimit 1.000000e+01 : (tensor<4x256xbf16>, tensor<4x2xf32>, tensor<4x2xi64>, tensor<8x192x256xf8E4M3FN>, tensor<8x192x256xf8E4M3FN>, tensor<8x256x192xf8E4M3FN>, tensor<8x2x2xf8E8M0FNU>, tensor<8x2x2xf8E8M0FNU>, tensor<8x2x2xf8E8M0FNU>) -> tensor<4x2x256xbf16>
func.func @experts_fp8(%x: tensor<4x256xbf16>, %rw: tensor<4x2xf32>, %idx: tensor<4x2xi64>,
    %w1: tensor<8x192x256xf8E4M3FN>, %w3: tensor<8x192x256xf8E4M3FN>, %w2: tensor<8x256x192xf8E4M3FN>,
    %s1: tensor<8x2x2xf8E8M0FNU>, %s3: tensor<8x2x2xf8E8M0FNU>, %s2: tensor<8x2x2xf8E8M0FNU>)
    -> tensor<4x2x256xbf16> {
  %y = v4.moe.experts %x, %rw, %idx w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 scale %s2 swigluLimit 10.0
      : (tensor<4x256xbf16>, tensor<4x2xf32>, tensor<4x2xi64>,
         tensor<8x192x256xf8E4M3FN>, tensor<8x192x256xf8E4M3FN>, tensor<8x256x192xf8E4M3FN>,
         tensor<8x2x2xf8E8M0FNU>, tensor<8x2x2xf8E8M0FNU>, tensor<8x2x2xf8E8M0FNU>)
      -> tensor<4x2x256xbf16>
  return %y : tensor<4x2x256xbf16>
}

// bf16 experts, no scales, no clamp (swigluLimit absent), dynamic T.
// CHECK-LABEL: func.func @experts_bf16_dynamic
// CHECK: v4.moe.experts %{{.*}}, %{{.*}}, %{{.*}} w1 %{{.*}}, w3 %{{.*}}, w2 %{{.*}} : (tensor<1x?x256xbf16>, tensor<1x?x2xf32>, tensor<1x?x2xi64>, tensor<8x128x256xbf16>, tensor<8x128x256xbf16>, tensor<8x256x128xbf16>) -> tensor<1x?x2x256xbf16>
func.func @experts_bf16_dynamic(%x: tensor<1x?x256xbf16>, %rw: tensor<1x?x2xf32>, %idx: tensor<1x?x2xi64>,
    %w1: tensor<8x128x256xbf16>, %w3: tensor<8x128x256xbf16>, %w2: tensor<8x256x128xbf16>)
    -> tensor<1x?x2x256xbf16> {
  %y = v4.moe.experts %x, %rw, %idx w1 %w1, w3 %w3, w2 %w2
      : (tensor<1x?x256xbf16>, tensor<1x?x2xf32>, tensor<1x?x2xi64>,
         tensor<8x128x256xbf16>, tensor<8x128x256xbf16>, tensor<8x256x128xbf16>)
      -> tensor<1x?x2x256xbf16>
  return %y : tensor<1x?x2x256xbf16>
}

// CHECK-LABEL: func.func @shared_expert
// CHECK: v4.moe.shared_expert %{{.*}} w1 %{{.*}} scale %{{.*}}, w3 %{{.*}} scale %{{.*}}, w2 %{{.*}} scale %{{.*}} swigluLimit 1.000000e+01 : (tensor<2x3x256xbf16>, tensor<128x256xf8E4M3FN>, tensor<128x256xf8E4M3FN>, tensor<256x128xf8E4M3FN>, tensor<1x2xf8E8M0FNU>, tensor<1x2xf8E8M0FNU>, tensor<2x1xf8E8M0FNU>) -> tensor<2x3x256xbf16>
// CHECK: v4.moe.shared_expert %{{.*}} w1 %{{.*}}, w3 %{{.*}}, w2 %{{.*}} : (tensor<2x3x256xbf16>, tensor<128x256xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>) -> tensor<2x3x256xbf16>
func.func @shared_expert(%x: tensor<2x3x256xbf16>,
    %w1: tensor<128x256xf8E4M3FN>, %w3: tensor<128x256xf8E4M3FN>, %w2: tensor<256x128xf8E4M3FN>,
    %s1: tensor<1x2xf8E8M0FNU>, %s3: tensor<1x2xf8E8M0FNU>, %s2: tensor<2x1xf8E8M0FNU>,
    %b1: tensor<128x256xbf16>, %b3: tensor<128x256xbf16>, %b2: tensor<256x128xbf16>) {
  %y = v4.moe.shared_expert %x w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 scale %s2 swigluLimit 10.0
      : (tensor<2x3x256xbf16>, tensor<128x256xf8E4M3FN>, tensor<128x256xf8E4M3FN>,
         tensor<256x128xf8E4M3FN>, tensor<1x2xf8E8M0FNU>, tensor<1x2xf8E8M0FNU>,
         tensor<2x1xf8E8M0FNU>) -> tensor<2x3x256xbf16>
  // Initial-revision shared expert: bf16 weights, no clamp.
  %z = v4.moe.shared_expert %x w1 %b1, w3 %b3, w2 %b2
      : (tensor<2x3x256xbf16>, tensor<128x256xbf16>, tensor<128x256xbf16>,
         tensor<256x128xbf16>) -> tensor<2x3x256xbf16>
  return
}

// CHECK-LABEL: func.func @combine
// CHECK: v4.moe.combine %{{.*}}, %{{.*}} : tensor<2x3x2x256xbf16>, tensor<2x3x256xbf16> -> tensor<2x3x256xbf16>
// CHECK: v4.moe.combine %{{.*}}, %{{.*}} : tensor<1x?x2x256xbf16>, tensor<1x?x256xbf16> -> tensor<1x?x256xbf16>
func.func @combine(%r: tensor<2x3x2x256xbf16>, %s: tensor<2x3x256xbf16>,
                   %rd: tensor<1x?x2x256xbf16>, %sd: tensor<1x?x256xbf16>) {
  %y = v4.moe.combine %r, %s : tensor<2x3x2x256xbf16>, tensor<2x3x256xbf16> -> tensor<2x3x256xbf16>
  %yd = v4.moe.combine %rd, %sd : tensor<1x?x2x256xbf16>, tensor<1x?x256xbf16> -> tensor<1x?x256xbf16>
  return
}

// V4-Flash score-routed MoE (layer 3): d = 4096, E = 256, k = 6, I = 2048,
// FP4 routed experts, FP8 shared expert, dynamic T.
// CHECK-LABEL: func.func @flash_score_moe
// CHECK: v4.moe.gate {{.*}} scoreFunc sqrtsoftplus topK 6 routeScale 1.500000e+00 : tensor<1x?x4096xbf16>, tensor<256x4096xbf16>, tensor<256xf32> -> tensor<1x?x6xf32>, tensor<1x?x6xi64>
// CHECK: v4.moe.experts {{.*}} swigluLimit 1.000000e+01 : (tensor<1x?x4096xbf16>, tensor<1x?x6xf32>, tensor<1x?x6xi64>, tensor<256x2048x4096xf4E2M1FN>, tensor<256x2048x4096xf4E2M1FN>, tensor<256x4096x2048xf4E2M1FN>, tensor<256x2048x128xf8E8M0FNU>, tensor<256x2048x128xf8E8M0FNU>, tensor<256x4096x64xf8E8M0FNU>) -> tensor<1x?x6x4096xbf16>
// CHECK: v4.moe.shared_expert {{.*}} swigluLimit 1.000000e+01 : (tensor<1x?x4096xbf16>, tensor<2048x4096xf8E4M3FN>, tensor<2048x4096xf8E4M3FN>, tensor<4096x2048xf8E4M3FN>, tensor<16x32xf8E8M0FNU>, tensor<16x32xf8E8M0FNU>, tensor<32x16xf8E8M0FNU>) -> tensor<1x?x4096xbf16>
// CHECK: v4.moe.combine {{.*}} : tensor<1x?x6x4096xbf16>, tensor<1x?x4096xbf16> -> tensor<1x?x4096xbf16>
func.func @flash_score_moe(%x: tensor<1x?x4096xbf16>) -> tensor<1x?x4096xbf16> {
  %gw = v4.parameter "layers.3.ffn.gate.weight" : tensor<256x4096xbf16>
  %gb = v4.parameter "layers.3.ffn.gate.bias" : tensor<256xf32>
  %w1 = v4.parameter_stack "layers.3.ffn.experts.{}.w1.weight" count 256 : tensor<256x2048x4096xf4E2M1FN>
  %s1 = v4.parameter_stack "layers.3.ffn.experts.{}.w1.scale" count 256 : tensor<256x2048x128xf8E8M0FNU>
  %w3 = v4.parameter_stack "layers.3.ffn.experts.{}.w3.weight" count 256 : tensor<256x2048x4096xf4E2M1FN>
  %s3 = v4.parameter_stack "layers.3.ffn.experts.{}.w3.scale" count 256 : tensor<256x2048x128xf8E8M0FNU>
  %w2 = v4.parameter_stack "layers.3.ffn.experts.{}.w2.weight" count 256 : tensor<256x4096x2048xf4E2M1FN>
  %s2 = v4.parameter_stack "layers.3.ffn.experts.{}.w2.scale" count 256 : tensor<256x4096x64xf8E8M0FNU>
  %sw1 = v4.parameter "layers.3.ffn.shared_experts.w1.weight" : tensor<2048x4096xf8E4M3FN>
  %ss1 = v4.parameter "layers.3.ffn.shared_experts.w1.scale" : tensor<16x32xf8E8M0FNU>
  %sw3 = v4.parameter "layers.3.ffn.shared_experts.w3.weight" : tensor<2048x4096xf8E4M3FN>
  %ss3 = v4.parameter "layers.3.ffn.shared_experts.w3.scale" : tensor<16x32xf8E8M0FNU>
  %sw2 = v4.parameter "layers.3.ffn.shared_experts.w2.weight" : tensor<4096x2048xf8E4M3FN>
  %ss2 = v4.parameter "layers.3.ffn.shared_experts.w2.scale" : tensor<32x16xf8E8M0FNU>
  %rw, %idx = v4.moe.gate %x, %gw bias %gb scoreFunc sqrtsoftplus topK 6 routeScale 1.5
      : tensor<1x?x4096xbf16>, tensor<256x4096xbf16>, tensor<256xf32>
      -> tensor<1x?x6xf32>, tensor<1x?x6xi64>
  %routed = v4.moe.experts %x, %rw, %idx w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 scale %s2 swigluLimit 10.0
      : (tensor<1x?x4096xbf16>, tensor<1x?x6xf32>, tensor<1x?x6xi64>,
         tensor<256x2048x4096xf4E2M1FN>, tensor<256x2048x4096xf4E2M1FN>, tensor<256x4096x2048xf4E2M1FN>,
         tensor<256x2048x128xf8E8M0FNU>, tensor<256x2048x128xf8E8M0FNU>, tensor<256x4096x64xf8E8M0FNU>)
      -> tensor<1x?x6x4096xbf16>
  %shared = v4.moe.shared_expert %x w1 %sw1 scale %ss1, w3 %sw3 scale %ss3, w2 %sw2 scale %ss2 swigluLimit 10.0
      : (tensor<1x?x4096xbf16>, tensor<2048x4096xf8E4M3FN>, tensor<2048x4096xf8E4M3FN>,
         tensor<4096x2048xf8E4M3FN>, tensor<16x32xf8E8M0FNU>, tensor<16x32xf8E8M0FNU>,
         tensor<32x16xf8E8M0FNU>) -> tensor<1x?x4096xbf16>
  %y = v4.moe.combine %routed, %shared
      : tensor<1x?x6x4096xbf16>, tensor<1x?x4096xbf16> -> tensor<1x?x4096xbf16>
  return %y : tensor<1x?x4096xbf16>
}

// V4-Flash hash-routed gate (layer 0): tid2eid [129280, 6] i64, dynamic T.
// CHECK-LABEL: func.func @flash_hash_gate
// CHECK: v4.moe.hash_gate {{.*}} scoreFunc sqrtsoftplus routeScale 1.500000e+00 : tensor<2x?x4096xbf16>, tensor<256x4096xbf16>, tensor<2x?xi64>, tensor<129280x6xi64> -> tensor<2x?x6xf32>, tensor<2x?x6xi64>
func.func @flash_hash_gate(%x: tensor<2x?x4096xbf16>, %ids: tensor<2x?xi64>)
    -> (tensor<2x?x6xf32>, tensor<2x?x6xi64>) {
  %gw = v4.parameter "layers.0.ffn.gate.weight" : tensor<256x4096xbf16>
  %t = v4.parameter "layers.0.ffn.gate.tid2eid" : tensor<129280x6xi64>
  %rw, %idx = v4.moe.hash_gate %x, %gw, %ids, %t scoreFunc sqrtsoftplus routeScale 1.5
      : tensor<2x?x4096xbf16>, tensor<256x4096xbf16>, tensor<2x?xi64>, tensor<129280x6xi64>
      -> tensor<2x?x6xf32>, tensor<2x?x6xi64>
  return %rw, %idx : tensor<2x?x6xf32>, tensor<2x?x6xi64>
}
