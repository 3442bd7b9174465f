// RUN: v4-opt %s -split-input-file -verify-diagnostics

// moe_gate_c1: x is [..., d] bf16 or f32.
func.func @gate_c1(%x: tensor<2x3x256xf16>, %w: tensor<8x256xbf16>, %b: tensor<8xf32>) {
  // expected-error @+1 {{expected x element type 'bf16' or 'f32', got 'f16' [moe_gate_c1]}}
  %rw, %i = v4.moe.gate %x, %w bias %b scoreFunc sqrtsoftplus topK 2 routeScale 1.5 : tensor<2x3x256xf16>, tensor<8x256xbf16>, tensor<8xf32> -> tensor<2x3x2xf32>, tensor<2x3x2xi64>
  return
}

// -----

// moe_gate_c2: 1 <= topK <= numExperts.
func.func @gate_c2(%x: tensor<2x3x256xbf16>, %w: tensor<8x256xbf16>, %b: tensor<8xf32>) {
  // expected-error @+1 {{expected topK (9) <= numExperts (8) [moe_gate_c2]}}
  %rw, %i = v4.moe.gate %x, %w bias %b scoreFunc sqrtsoftplus topK 9 routeScale 1.5 : tensor<2x3x256xbf16>, tensor<8x256xbf16>, tensor<8xf32> -> tensor<2x3x9xf32>, tensor<2x3x9xi64>
  return
}

// -----

// moe_gate_c3: weight is [E, d] with d = x last dim.
func.func @gate_c3(%x: tensor<2x3x256xbf16>, %w: tensor<8x512xbf16>, %b: tensor<8xf32>) {
  // expected-error @+1 {{expected weight dim 1 (x last dim d) = 256, got 512 [moe_gate_c3]}}
  %rw, %i = v4.moe.gate %x, %w bias %b scoreFunc sqrtsoftplus topK 2 routeScale 1.5 : tensor<2x3x256xbf16>, tensor<8x512xbf16>, tensor<8xf32> -> tensor<2x3x2xf32>, tensor<2x3x2xi64>
  return
}

// -----

// moe_gate_c4: weight element type is bf16 or f32.
func.func @gate_c4(%x: tensor<2x3x256xbf16>, %w: tensor<8x256xf8E4M3FN>, %b: tensor<8xf32>) {
  // expected-error @+1 {{expected weight element type 'bf16' or 'f32', got 'f8E4M3FN' [moe_gate_c4]}}
  %rw, %i = v4.moe.gate %x, %w bias %b scoreFunc sqrtsoftplus topK 2 routeScale 1.5 : tensor<2x3x256xbf16>, tensor<8x256xf8E4M3FN>, tensor<8xf32> -> tensor<2x3x2xf32>, tensor<2x3x2xi64>
  return
}

// -----

// moe_gate_c5: the bias is [E] f32.
func.func @gate_c5(%x: tensor<2x3x256xbf16>, %w: tensor<8x256xbf16>, %b: tensor<16xf32>) {
  // expected-error @+1 {{expected bias dim 0 (numExperts) = 8, got 16 [moe_gate_c5]}}
  %rw, %i = v4.moe.gate %x, %w bias %b scoreFunc sqrtsoftplus topK 2 routeScale 1.5 : tensor<2x3x256xbf16>, tensor<8x256xbf16>, tensor<16xf32> -> tensor<2x3x2xf32>, tensor<2x3x2xi64>
  return
}

// -----

// moe_gate_c6: routeScale is finite and > 0.
func.func @gate_c6(%x: tensor<2x3x256xbf16>, %w: tensor<8x256xbf16>, %b: tensor<8xf32>) {
  // expected-error @+1 {{expected routeScale to be finite and > 0, got 0.000000e+00 [moe_gate_c6]}}
  %rw, %i = v4.moe.gate %x, %w bias %b scoreFunc sqrtsoftplus topK 2 routeScale 0.0 : tensor<2x3x256xbf16>, tensor<8x256xbf16>, tensor<8xf32> -> tensor<2x3x2xf32>, tensor<2x3x2xi64>
  return
}

// -----

// moe_gate_c7: routingWeights is [..., topK] f32.
func.func @gate_c7(%x: tensor<2x3x256xbf16>, %w: tensor<8x256xbf16>, %b: tensor<8xf32>) {
  // expected-error @+1 {{expected routingWeights element type 'f32', got 'bf16' [moe_gate_c7]}}
  %rw, %i = v4.moe.gate %x, %w bias %b scoreFunc sqrtsoftplus topK 2 routeScale 1.5 : tensor<2x3x256xbf16>, tensor<8x256xbf16>, tensor<8xf32> -> tensor<2x3x2xbf16>, tensor<2x3x2xi64>
  return
}

// -----

// moe_gate_c8: expertIndices is [..., topK] i64 over the leading dims of x.
func.func @gate_c8(%x: tensor<2x3x256xbf16>, %w: tensor<8x256xbf16>, %b: tensor<8xf32>) {
  // expected-error @+1 {{expected expertIndices shape [2, 4, 2] to match x leading dims + [topK] shape [2, 3, 2] [moe_gate_c8]}}
  %rw, %i = v4.moe.gate %x, %w bias %b scoreFunc sqrtsoftplus topK 2 routeScale 1.5 : tensor<2x3x256xbf16>, tensor<8x256xbf16>, tensor<8xf32> -> tensor<2x3x2xf32>, tensor<2x4x2xi64>
  return
}

// -----

// moe_hash_gate_c1: x is [..., d] bf16 or f32.
func.func @hash_gate_c1(%x: tensor<2x3x256xi32>, %w: tensor<8x256xbf16>, %ids: tensor<2x3xi64>, %t: tensor<1000x2xi64>) {
  // expected-error @+1 {{expected x element type 'bf16' or 'f32', got 'i32' [moe_hash_gate_c1]}}
  %rw, %i = v4.moe.hash_gate %x, %w, %ids, %t scoreFunc sqrtsoftplus routeScale 1.5 : tensor<2x3x256xi32>, tensor<8x256xbf16>, tensor<2x3xi64>, tensor<1000x2xi64> -> tensor<2x3x2xf32>, tensor<2x3x2xi64>
  return
}

// -----

// moe_hash_gate_c2: weight is [E, d] with d = x last dim.
func.func @hash_gate_c2(%x: tensor<2x3x256xbf16>, %w: tensor<8x128xbf16>, %ids: tensor<2x3xi64>, %t: tensor<1000x2xi64>) {
  // expected-error @+1 {{expected weight dim 1 (x last dim d) = 256, got 128 [moe_hash_gate_c2]}}
  %rw, %i = v4.moe.hash_gate %x, %w, %ids, %t scoreFunc sqrtsoftplus routeScale 1.5 : tensor<2x3x256xbf16>, tensor<8x128xbf16>, tensor<2x3xi64>, tensor<1000x2xi64> -> tensor<2x3x2xf32>, tensor<2x3x2xi64>
  return
}

// -----

// moe_hash_gate_c3: weight element type is bf16 or f32.
func.func @hash_gate_c3(%x: tensor<2x3x256xbf16>, %w: tensor<8x256xf16>, %ids: tensor<2x3xi64>, %t: tensor<1000x2xi64>) {
  // expected-error @+1 {{expected weight element type 'bf16' or 'f32', got 'f16' [moe_hash_gate_c3]}}
  %rw, %i = v4.moe.hash_gate %x, %w, %ids, %t scoreFunc sqrtsoftplus routeScale 1.5 : tensor<2x3x256xbf16>, tensor<8x256xf16>, tensor<2x3xi64>, tensor<1000x2xi64> -> tensor<2x3x2xf32>, tensor<2x3x2xi64>
  return
}

// -----

// moe_hash_gate_c4: ids has the leading dims of x.
func.func @hash_gate_c4(%x: tensor<2x3x256xbf16>, %w: tensor<8x256xbf16>, %ids: tensor<2x4xi64>, %t: tensor<1000x2xi64>) {
  // expected-error @+1 {{expected ids shape [2, 4] to match x leading dims shape [2, 3] [moe_hash_gate_c4]}}
  %rw, %i = v4.moe.hash_gate %x, %w, %ids, %t scoreFunc sqrtsoftplus routeScale 1.5 : tensor<2x3x256xbf16>, tensor<8x256xbf16>, tensor<2x4xi64>, tensor<1000x2xi64> -> tensor<2x3x2xf32>, tensor<2x3x2xi64>
  return
}

// -----

// moe_hash_gate_c5: ids are i32 or i64.
func.func @hash_gate_c5(%x: tensor<2x3x256xbf16>, %w: tensor<8x256xbf16>, %ids: tensor<2x3xf32>, %t: tensor<1000x2xi64>) {
  // expected-error @+1 {{expected ids element type 'i32' or 'i64', got 'f32' [moe_hash_gate_c5]}}
  %rw, %i = v4.moe.hash_gate %x, %w, %ids, %t scoreFunc sqrtsoftplus routeScale 1.5 : tensor<2x3x256xbf16>, tensor<8x256xbf16>, tensor<2x3xf32>, tensor<1000x2xi64> -> tensor<2x3x2xf32>, tensor<2x3x2xi64>
  return
}

// -----

// moe_hash_gate_c6: tid2eid is [V, k].
func.func @hash_gate_c6(%x: tensor<2x3x256xbf16>, %w: tensor<8x256xbf16>, %ids: tensor<2x3xi64>, %t: tensor<1000xi64>) {
  // expected-error @+1 {{tid2eid must have rank 2, got 1 (shape [1000]) [moe_hash_gate_c6]}}
  %rw, %i = v4.moe.hash_gate %x, %w, %ids, %t scoreFunc sqrtsoftplus routeScale 1.5 : tensor<2x3x256xbf16>, tensor<8x256xbf16>, tensor<2x3xi64>, tensor<1000xi64> -> tensor<2x3x2xf32>, tensor<2x3x2xi64>
  return
}

// -----

// moe_hash_gate_c7: tid2eid holds i32 or i64 expert ids.
func.func @hash_gate_c7(%x: tensor<2x3x256xbf16>, %w: tensor<8x256xbf16>, %ids: tensor<2x3xi64>, %t: tensor<1000x2xi16>) {
  // expected-error @+1 {{expected tid2eid element type 'i32' or 'i64', got 'i16' [moe_hash_gate_c7]}}
  %rw, %i = v4.moe.hash_gate %x, %w, %ids, %t scoreFunc sqrtsoftplus routeScale 1.5 : tensor<2x3x256xbf16>, tensor<8x256xbf16>, tensor<2x3xi64>, tensor<1000x2xi16> -> tensor<2x3x2xf32>, tensor<2x3x2xi64>
  return
}

// -----

// moe_hash_gate_c8: k = tid2eid dim 1 <= numExperts.
func.func @hash_gate_c8(%x: tensor<2x3x256xbf16>, %w: tensor<8x256xbf16>, %ids: tensor<2x3xi64>, %t: tensor<1000x9xi64>) {
  // expected-error @+1 {{expected tid2eid dim 1 (k = 9) <= numExperts (8) [moe_hash_gate_c8]}}
  %rw, %i = v4.moe.hash_gate %x, %w, %ids, %t scoreFunc sqrtsoftplus routeScale 1.5 : tensor<2x3x256xbf16>, tensor<8x256xbf16>, tensor<2x3xi64>, tensor<1000x9xi64> -> tensor<2x3x9xf32>, tensor<2x3x9xi64>
  return
}

// -----

// moe_hash_gate_c9: routeScale is finite and > 0.
func.func @hash_gate_c9(%x: tensor<2x3x256xbf16>, %w: tensor<8x256xbf16>, %ids: tensor<2x3xi64>, %t: tensor<1000x2xi64>) {
  // expected-error @+1 {{expected routeScale to be finite and > 0, got -1.000000e+00 [moe_hash_gate_c9]}}
  %rw, %i = v4.moe.hash_gate %x, %w, %ids, %t scoreFunc sqrtsoftplus routeScale -1.0 : tensor<2x3x256xbf16>, tensor<8x256xbf16>, tensor<2x3xi64>, tensor<1000x2xi64> -> tensor<2x3x2xf32>, tensor<2x3x2xi64>
  return
}

// -----

// moe_hash_gate_c10: routingWeights is [..., k] f32 with k from tid2eid.
func.func @hash_gate_c10(%x: tensor<2x3x256xbf16>, %w: tensor<8x256xbf16>, %ids: tensor<2x3xi64>, %t: tensor<1000x2xi64>) {
  // expected-error @+1 {{expected routingWeights shape [2, 3, 6] to match x leading dims + [k] shape [2, 3, 2] [moe_hash_gate_c10]}}
  %rw, %i = v4.moe.hash_gate %x, %w, %ids, %t scoreFunc sqrtsoftplus routeScale 1.5 : tensor<2x3x256xbf16>, tensor<8x256xbf16>, tensor<2x3xi64>, tensor<1000x2xi64> -> tensor<2x3x6xf32>, tensor<2x3x2xi64>
  return
}

// -----

// moe_hash_gate_c11: expertIndices is [..., k] i64.
func.func @hash_gate_c11(%x: tensor<2x3x256xbf16>, %w: tensor<8x256xbf16>, %ids: tensor<2x3xi64>, %t: tensor<1000x2xi64>) {
  // expected-error @+1 {{expected expertIndices element type 'i64', got 'i32' [moe_hash_gate_c11]}}
  %rw, %i = v4.moe.hash_gate %x, %w, %ids, %t scoreFunc sqrtsoftplus routeScale 1.5 : tensor<2x3x256xbf16>, tensor<8x256xbf16>, tensor<2x3xi64>, tensor<1000x2xi64> -> tensor<2x3x2xf32>, tensor<2x3x2xi32>
  return
}

// -----

// moe_experts_c1: x is [..., d] bf16.
func.func @experts_c1(%x: tensor<2x3x256xf16>, %rw: tensor<2x3x2xf32>, %ri: tensor<2x3x2xi64>, %w1: tensor<8x128x256xf4E2M1FN>, %w3: tensor<8x128x256xf4E2M1FN>, %w2: tensor<8x256x128xf4E2M1FN>, %s1: tensor<8x128x8xf8E8M0FNU>, %s3: tensor<8x128x8xf8E8M0FNU>, %s2: tensor<8x256x4xf8E8M0FNU>) {
  // expected-error @+1 {{expected x element type 'bf16' or 'f32', got 'f16' [moe_experts_c1]}}
  %y = v4.moe.experts %x, %rw, %ri w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 scale %s2 swigluLimit 10.0 : (tensor<2x3x256xf16>, tensor<2x3x2xf32>, tensor<2x3x2xi64>, tensor<8x128x256xf4E2M1FN>, tensor<8x128x256xf4E2M1FN>, tensor<8x256x128xf4E2M1FN>, tensor<8x128x8xf8E8M0FNU>, tensor<8x128x8xf8E8M0FNU>, tensor<8x256x4xf8E8M0FNU>) -> tensor<2x3x2x256xbf16>
  return
}

// -----

// moe_experts_c2: routingWeights is [..., k] f32 over the leading dims of x.
func.func @experts_c2(%x: tensor<2x3x256xbf16>, %rw: tensor<2x5x2xf32>, %ri: tensor<2x3x2xi64>, %w1: tensor<8x128x256xf4E2M1FN>, %w3: tensor<8x128x256xf4E2M1FN>, %w2: tensor<8x256x128xf4E2M1FN>, %s1: tensor<8x128x8xf8E8M0FNU>, %s3: tensor<8x128x8xf8E8M0FNU>, %s2: tensor<8x256x4xf8E8M0FNU>) {
  // expected-error @+1 {{expected routingWeights shape [2, 5, 2] to match x leading dims + [k] shape [2, 3, 2] [moe_experts_c2]}}
  %y = v4.moe.experts %x, %rw, %ri w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 scale %s2 swigluLimit 10.0 : (tensor<2x3x256xbf16>, tensor<2x5x2xf32>, tensor<2x3x2xi64>, tensor<8x128x256xf4E2M1FN>, tensor<8x128x256xf4E2M1FN>, tensor<8x256x128xf4E2M1FN>, tensor<8x128x8xf8E8M0FNU>, tensor<8x128x8xf8E8M0FNU>, tensor<8x256x4xf8E8M0FNU>) -> tensor<2x3x2x256xbf16>
  return
}

// -----

// moe_experts_c3: expertIndices has the shape of routingWeights and is i64.
func.func @experts_c3(%x: tensor<2x3x256xbf16>, %rw: tensor<2x3x2xf32>, %ri: tensor<2x3x3xi64>, %w1: tensor<8x128x256xf4E2M1FN>, %w3: tensor<8x128x256xf4E2M1FN>, %w2: tensor<8x256x128xf4E2M1FN>, %s1: tensor<8x128x8xf8E8M0FNU>, %s3: tensor<8x128x8xf8E8M0FNU>, %s2: tensor<8x256x4xf8E8M0FNU>) {
  // expected-error @+1 {{expected expertIndices shape [2, 3, 3] to match routingWeights shape [2, 3, 2] [moe_experts_c3]}}
  %y = v4.moe.experts %x, %rw, %ri w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 scale %s2 swigluLimit 10.0 : (tensor<2x3x256xbf16>, tensor<2x3x2xf32>, tensor<2x3x3xi64>, tensor<8x128x256xf4E2M1FN>, tensor<8x128x256xf4E2M1FN>, tensor<8x256x128xf4E2M1FN>, tensor<8x128x8xf8E8M0FNU>, tensor<8x128x8xf8E8M0FNU>, tensor<8x256x4xf8E8M0FNU>) -> tensor<2x3x2x256xbf16>
  return
}

// -----

// moe_experts_c4: w1, w3, w2 share one element type (f4E2M1FN, f8E4M3FN or bf16).
func.func @experts_c4(%x: tensor<2x3x256xbf16>, %rw: tensor<2x3x2xf32>, %ri: tensor<2x3x2xi64>, %w1: tensor<8x128x256xf4E2M1FN>, %w3: tensor<8x128x256xf4E2M1FN>, %w2: tensor<8x256x128xbf16>, %s1: tensor<8x128x8xf8E8M0FNU>, %s3: tensor<8x128x8xf8E8M0FNU>) {
  // expected-error @+1 {{expected w2 element type 'f4E2M1FN' (the type of w1), got 'bf16' [moe_experts_c4]}}
  %y = v4.moe.experts %x, %rw, %ri w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 swigluLimit 10.0 : (tensor<2x3x256xbf16>, tensor<2x3x2xf32>, tensor<2x3x2xi64>, tensor<8x128x256xf4E2M1FN>, tensor<8x128x256xf4E2M1FN>, tensor<8x256x128xbf16>, tensor<8x128x8xf8E8M0FNU>, tensor<8x128x8xf8E8M0FNU>) -> tensor<2x3x2x256xbf16>
  return
}

// -----

// moe_experts_c5: w1, w3, w2 have the same number of experts.
func.func @experts_c5(%x: tensor<2x3x256xbf16>, %rw: tensor<2x3x2xf32>, %ri: tensor<2x3x2xi64>, %w1: tensor<8x128x256xf4E2M1FN>, %w3: tensor<8x128x256xf4E2M1FN>, %w2: tensor<4x256x128xf4E2M1FN>, %s1: tensor<8x128x8xf8E8M0FNU>, %s3: tensor<8x128x8xf8E8M0FNU>, %s2: tensor<4x256x4xf8E8M0FNU>) {
  // expected-error @+1 {{expected w2 dim 0 (numExperts) = 8, got 4 [moe_experts_c5]}}
  %y = v4.moe.experts %x, %rw, %ri w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 scale %s2 swigluLimit 10.0 : (tensor<2x3x256xbf16>, tensor<2x3x2xf32>, tensor<2x3x2xi64>, tensor<8x128x256xf4E2M1FN>, tensor<8x128x256xf4E2M1FN>, tensor<4x256x128xf4E2M1FN>, tensor<8x128x8xf8E8M0FNU>, tensor<8x128x8xf8E8M0FNU>, tensor<4x256x4xf8E8M0FNU>) -> tensor<2x3x2x256xbf16>
  return
}

// -----

// moe_experts_c6: w1 and w3 are [E, I, d] with d = x last dim.
func.func @experts_c6(%x: tensor<2x3x256xbf16>, %rw: tensor<2x3x2xf32>, %ri: tensor<2x3x2xi64>, %w1: tensor<8x128x256xf4E2M1FN>, %w3: tensor<8x64x256xf4E2M1FN>, %w2: tensor<8x256x128xf4E2M1FN>, %s1: tensor<8x128x8xf8E8M0FNU>, %s3: tensor<8x64x8xf8E8M0FNU>, %s2: tensor<8x256x4xf8E8M0FNU>) {
  // expected-error @+1 {{expected w3 shape [8, 64, 256] to match w1 shape [8, 128, 256] [moe_experts_c6]}}
  %y = v4.moe.experts %x, %rw, %ri w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 scale %s2 swigluLimit 10.0 : (tensor<2x3x256xbf16>, tensor<2x3x2xf32>, tensor<2x3x2xi64>, tensor<8x128x256xf4E2M1FN>, tensor<8x64x256xf4E2M1FN>, tensor<8x256x128xf4E2M1FN>, tensor<8x128x8xf8E8M0FNU>, tensor<8x64x8xf8E8M0FNU>, tensor<8x256x4xf8E8M0FNU>) -> tensor<2x3x2x256xbf16>
  return
}

// -----

// moe_experts_c7: w2 is [E, d, I].
func.func @experts_c7(%x: tensor<2x3x256xbf16>, %rw: tensor<2x3x2xf32>, %ri: tensor<2x3x2xi64>, %w1: tensor<8x128x256xf4E2M1FN>, %w3: tensor<8x128x256xf4E2M1FN>, %w2: tensor<8x256x64xf4E2M1FN>, %s1: tensor<8x128x8xf8E8M0FNU>, %s3: tensor<8x128x8xf8E8M0FNU>, %s2: tensor<8x256x2xf8E8M0FNU>) {
  // expected-error @+1 {{expected w2 dim 2 (I) = 128, got 64 [moe_experts_c7]}}
  %y = v4.moe.experts %x, %rw, %ri w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 scale %s2 swigluLimit 10.0 : (tensor<2x3x256xbf16>, tensor<2x3x2xf32>, tensor<2x3x2xi64>, tensor<8x128x256xf4E2M1FN>, tensor<8x128x256xf4E2M1FN>, tensor<8x256x64xf4E2M1FN>, tensor<8x128x8xf8E8M0FNU>, tensor<8x128x8xf8E8M0FNU>, tensor<8x256x2xf8E8M0FNU>) -> tensor<2x3x2x256xbf16>
  return
}

// -----

// moe_experts_c8: 1 <= k <= numExperts.
func.func @experts_c8(%x: tensor<2x3x256xbf16>, %rw: tensor<2x3x9xf32>, %ri: tensor<2x3x9xi64>, %w1: tensor<8x128x256xf4E2M1FN>, %w3: tensor<8x128x256xf4E2M1FN>, %w2: tensor<8x256x128xf4E2M1FN>, %s1: tensor<8x128x8xf8E8M0FNU>, %s3: tensor<8x128x8xf8E8M0FNU>, %s2: tensor<8x256x4xf8E8M0FNU>) {
  // expected-error @+1 {{expected 1 <= k (9) <= numExperts (8) [moe_experts_c8]}}
  %y = v4.moe.experts %x, %rw, %ri w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 scale %s2 swigluLimit 10.0 : (tensor<2x3x256xbf16>, tensor<2x3x9xf32>, tensor<2x3x9xi64>, tensor<8x128x256xf4E2M1FN>, tensor<8x128x256xf4E2M1FN>, tensor<8x256x128xf4E2M1FN>, tensor<8x128x8xf8E8M0FNU>, tensor<8x128x8xf8E8M0FNU>, tensor<8x256x4xf8E8M0FNU>) -> tensor<2x3x9x256xbf16>
  return
}

// -----

// moe_experts_c9: FP4 weights have K a multiple of the 32-element scale block.
func.func @experts_c9(%x: tensor<2x3x240xbf16>, %rw: tensor<2x3x2xf32>, %ri: tensor<2x3x2xi64>, %w1: tensor<8x128x240xf4E2M1FN>, %w3: tensor<8x128x240xf4E2M1FN>, %w2: tensor<8x240x128xf4E2M1FN>, %s1: tensor<8x128x7xf8E8M0FNU>, %s3: tensor<8x128x7xf8E8M0FNU>, %s2: tensor<8x240x4xf8E8M0FNU>) {
  // expected-error @+1 {{expected FP4 w1/w3 dim 2 (d) (240) to be a multiple of 32 [moe_experts_c9]}}
  %y = v4.moe.experts %x, %rw, %ri w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 scale %s2 swigluLimit 10.0 : (tensor<2x3x240xbf16>, tensor<2x3x2xf32>, tensor<2x3x2xi64>, tensor<8x128x240xf4E2M1FN>, tensor<8x128x240xf4E2M1FN>, tensor<8x240x128xf4E2M1FN>, tensor<8x128x7xf8E8M0FNU>, tensor<8x128x7xf8E8M0FNU>, tensor<8x240x4xf8E8M0FNU>) -> tensor<2x3x240xf32>
  return
}

// -----

// moe_experts_c10: quantised weights carry a scale, bf16 weights none.
func.func @experts_c10(%x: tensor<2x3x256xbf16>, %rw: tensor<2x3x2xf32>, %ri: tensor<2x3x2xi64>, %w1: tensor<8x128x256xf4E2M1FN>, %w3: tensor<8x128x256xf4E2M1FN>, %w2: tensor<8x256x128xf4E2M1FN>, %s1: tensor<8x128x8xf8E8M0FNU>, %s2: tensor<8x256x4xf8E8M0FNU>) {
  // expected-error @+1 {{expected a scale for 'f4E2M1FN' weight w3, got none [moe_experts_c10]}}
  %y = v4.moe.experts %x, %rw, %ri w1 %w1 scale %s1, w3 %w3, w2 %w2 scale %s2 swigluLimit 10.0 : (tensor<2x3x256xbf16>, tensor<2x3x2xf32>, tensor<2x3x2xi64>, tensor<8x128x256xf4E2M1FN>, tensor<8x128x256xf4E2M1FN>, tensor<8x256x128xf4E2M1FN>, tensor<8x128x8xf8E8M0FNU>, tensor<8x256x4xf8E8M0FNU>) -> tensor<2x3x2x256xbf16>
  return
}

// -----

// moe_experts_c11: scales are f8E8M0FNU.
func.func @experts_c11(%x: tensor<2x3x256xbf16>, %rw: tensor<2x3x2xf32>, %ri: tensor<2x3x2xi64>, %w1: tensor<8x128x256xf4E2M1FN>, %w3: tensor<8x128x256xf4E2M1FN>, %w2: tensor<8x256x128xf4E2M1FN>, %s1: tensor<8x128x8xf32>, %s3: tensor<8x128x8xf8E8M0FNU>, %s2: tensor<8x256x4xf8E8M0FNU>) {
  // expected-error @+1 {{expected w1Scale element type 'f8E8M0FNU', got 'f32' [moe_experts_c11]}}
  %y = v4.moe.experts %x, %rw, %ri w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 scale %s2 swigluLimit 10.0 : (tensor<2x3x256xbf16>, tensor<2x3x2xf32>, tensor<2x3x2xi64>, tensor<8x128x256xf4E2M1FN>, tensor<8x128x256xf4E2M1FN>, tensor<8x256x128xf4E2M1FN>, tensor<8x128x8xf32>, tensor<8x128x8xf8E8M0FNU>, tensor<8x256x4xf8E8M0FNU>) -> tensor<2x3x2x256xbf16>
  return
}

// -----

// moe_experts_c12: FP4 scales are [E, out, in/32], FP8 scales [E, ceil(out/128), ceil(in/128)].
func.func @experts_c12(%x: tensor<2x3x256xbf16>, %rw: tensor<2x3x2xf32>, %ri: tensor<2x3x2xi64>, %w1: tensor<8x128x256xf4E2M1FN>, %w3: tensor<8x128x256xf4E2M1FN>, %w2: tensor<8x256x128xf4E2M1FN>, %s1: tensor<8x128x8xf8E8M0FNU>, %s3: tensor<8x128x8xf8E8M0FNU>, %s2: tensor<8x2x1xf8E8M0FNU>) {
  // expected-error @+1 {{expected w2Scale shape [8, 2, 1] to match w2 [8, 256, 128] per-32 shape [8, 256, 4] [moe_experts_c12]}}
  %y = v4.moe.experts %x, %rw, %ri w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 scale %s2 swigluLimit 10.0 : (tensor<2x3x256xbf16>, tensor<2x3x2xf32>, tensor<2x3x2xi64>, tensor<8x128x256xf4E2M1FN>, tensor<8x128x256xf4E2M1FN>, tensor<8x256x128xf4E2M1FN>, tensor<8x128x8xf8E8M0FNU>, tensor<8x128x8xf8E8M0FNU>, tensor<8x2x1xf8E8M0FNU>) -> tensor<2x3x2x256xbf16>
  return
}

// -----

// moe_experts_c13: swigluLimit is absent (no clamp) or finite and > 0.
func.func @experts_c13(%x: tensor<2x3x256xbf16>, %rw: tensor<2x3x2xf32>, %ri: tensor<2x3x2xi64>, %w1: tensor<8x128x256xf4E2M1FN>, %w3: tensor<8x128x256xf4E2M1FN>, %w2: tensor<8x256x128xf4E2M1FN>, %s1: tensor<8x128x8xf8E8M0FNU>, %s3: tensor<8x128x8xf8E8M0FNU>, %s2: tensor<8x256x4xf8E8M0FNU>) {
  // expected-error @+1 {{expected swigluLimit to be finite and > 0, got 0.000000e+00 [moe_experts_c13]}}
  %y = v4.moe.experts %x, %rw, %ri w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 scale %s2 swigluLimit 0.0 : (tensor<2x3x256xbf16>, tensor<2x3x2xf32>, tensor<2x3x2xi64>, tensor<8x128x256xf4E2M1FN>, tensor<8x128x256xf4E2M1FN>, tensor<8x256x128xf4E2M1FN>, tensor<8x128x8xf8E8M0FNU>, tensor<8x128x8xf8E8M0FNU>, tensor<8x256x4xf8E8M0FNU>) -> tensor<2x3x2x256xbf16>
  return
}

// -----

// moe_experts_c14: the result is [..., k, d] of x's element type or f32.
func.func @experts_c14(%x: tensor<2x3x256xbf16>, %rw: tensor<2x3x2xf32>, %ri: tensor<2x3x2xi64>, %w1: tensor<8x128x256xf4E2M1FN>, %w3: tensor<8x128x256xf4E2M1FN>, %w2: tensor<8x256x128xf4E2M1FN>, %s1: tensor<8x128x8xf8E8M0FNU>, %s3: tensor<8x128x8xf8E8M0FNU>, %s2: tensor<8x256x4xf8E8M0FNU>) {
  // expected-error @+1 {{expected result shape [2, 3, 256] to match x leading dims + [k, d] shape [2, 3, 2, 256] [moe_experts_c14]}}
  %y = v4.moe.experts %x, %rw, %ri w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 scale %s2 swigluLimit 10.0 : (tensor<2x3x256xbf16>, tensor<2x3x2xf32>, tensor<2x3x2xi64>, tensor<8x128x256xf4E2M1FN>, tensor<8x128x256xf4E2M1FN>, tensor<8x256x128xf4E2M1FN>, tensor<8x128x8xf8E8M0FNU>, tensor<8x128x8xf8E8M0FNU>, tensor<8x256x4xf8E8M0FNU>) -> tensor<2x3x256xf32>
  return
}

// -----

func.func @experts_c14_type(%x: tensor<2x3x256xbf16>, %rw: tensor<2x3x2xf32>, %ri: tensor<2x3x2xi64>, %w1: tensor<8x128x256xf4E2M1FN>, %w3: tensor<8x128x256xf4E2M1FN>, %w2: tensor<8x256x128xf4E2M1FN>, %s1: tensor<8x128x8xf8E8M0FNU>, %s3: tensor<8x128x8xf8E8M0FNU>, %s2: tensor<8x256x4xf8E8M0FNU>) {
  // expected-error @+1 {{expected result element type 'bf16', got 'f16' [moe_experts_c14]}}
  %y = v4.moe.experts %x, %rw, %ri w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 scale %s2 swigluLimit 10.0 : (tensor<2x3x256xbf16>, tensor<2x3x2xf32>, tensor<2x3x2xi64>, tensor<8x128x256xf4E2M1FN>, tensor<8x128x256xf4E2M1FN>, tensor<8x256x128xf4E2M1FN>, tensor<8x128x8xf8E8M0FNU>, tensor<8x128x8xf8E8M0FNU>, tensor<8x256x4xf8E8M0FNU>) -> tensor<2x3x2x256xf16>
  return
}

// -----

// moe_shared_expert_c1: x is [..., d] bf16.
func.func @shared_expert_c1(%x: tensor<2x3x256xf16>, %w1: tensor<128x256xf8E4M3FN>, %w3: tensor<128x256xf8E4M3FN>, %w2: tensor<256x128xf8E4M3FN>, %s1: tensor<1x2xf8E8M0FNU>, %s3: tensor<1x2xf8E8M0FNU>, %s2: tensor<2x1xf8E8M0FNU>) {
  // expected-error @+1 {{expected x element type 'bf16' or 'f32', got 'f16' [moe_shared_expert_c1]}}
  %y = v4.moe.shared_expert %x w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 scale %s2 swigluLimit 10.0 : (tensor<2x3x256xf16>, tensor<128x256xf8E4M3FN>, tensor<128x256xf8E4M3FN>, tensor<256x128xf8E4M3FN>, tensor<1x2xf8E8M0FNU>, tensor<1x2xf8E8M0FNU>, tensor<2x1xf8E8M0FNU>) -> tensor<2x3x256xbf16>
  return
}

// -----

// moe_shared_expert_c2: w1, w3, w2 share one element type, f8E4M3FN or bf16.
func.func @shared_expert_c2(%x: tensor<2x3x256xbf16>, %w1: tensor<128x256xf4E2M1FN>, %w3: tensor<128x256xf4E2M1FN>, %w2: tensor<256x128xf4E2M1FN>, %s1: tensor<128x8xf8E8M0FNU>, %s3: tensor<128x8xf8E8M0FNU>, %s2: tensor<256x4xf8E8M0FNU>) {
  // expected-error @+1 {{expected w1 element type 'f8E4M3FN' or 'bf16', got 'f4E2M1FN' [moe_shared_expert_c2]}}
  %y = v4.moe.shared_expert %x w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 scale %s2 swigluLimit 10.0 : (tensor<2x3x256xbf16>, tensor<128x256xf4E2M1FN>, tensor<128x256xf4E2M1FN>, tensor<256x128xf4E2M1FN>, tensor<128x8xf8E8M0FNU>, tensor<128x8xf8E8M0FNU>, tensor<256x4xf8E8M0FNU>) -> tensor<2x3x256xbf16>
  return
}

// -----

// moe_shared_expert_c3: w1 and w3 are [I, d] with d = x last dim.
func.func @shared_expert_c3(%x: tensor<2x3x256xbf16>, %w1: tensor<128x512xf8E4M3FN>, %w3: tensor<128x256xf8E4M3FN>, %w2: tensor<256x128xf8E4M3FN>, %s1: tensor<1x4xf8E8M0FNU>, %s3: tensor<1x2xf8E8M0FNU>, %s2: tensor<2x1xf8E8M0FNU>) {
  // expected-error @+1 {{expected w1 dim 1 (d) = 256, got 512 [moe_shared_expert_c3]}}
  %y = v4.moe.shared_expert %x w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 scale %s2 swigluLimit 10.0 : (tensor<2x3x256xbf16>, tensor<128x512xf8E4M3FN>, tensor<128x256xf8E4M3FN>, tensor<256x128xf8E4M3FN>, tensor<1x4xf8E8M0FNU>, tensor<1x2xf8E8M0FNU>, tensor<2x1xf8E8M0FNU>) -> tensor<2x3x256xbf16>
  return
}

// -----

// moe_shared_expert_c4: w2 is [d, I].
func.func @shared_expert_c4(%x: tensor<2x3x256xbf16>, %w1: tensor<128x256xf8E4M3FN>, %w3: tensor<128x256xf8E4M3FN>, %w2: tensor<256x256xf8E4M3FN>, %s1: tensor<1x2xf8E8M0FNU>, %s3: tensor<1x2xf8E8M0FNU>, %s2: tensor<2x2xf8E8M0FNU>) {
  // expected-error @+1 {{expected w2 dim 1 (I) = 128, got 256 [moe_shared_expert_c4]}}
  %y = v4.moe.shared_expert %x w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 scale %s2 swigluLimit 10.0 : (tensor<2x3x256xbf16>, tensor<128x256xf8E4M3FN>, tensor<128x256xf8E4M3FN>, tensor<256x256xf8E4M3FN>, tensor<1x2xf8E8M0FNU>, tensor<1x2xf8E8M0FNU>, tensor<2x2xf8E8M0FNU>) -> tensor<2x3x256xbf16>
  return
}

// -----

// moe_shared_expert_c5: FP8 weights carry a scale, bf16 weights none.
func.func @shared_expert_c5(%x: tensor<2x3x256xbf16>, %w1: tensor<128x256xf8E4M3FN>, %w3: tensor<128x256xf8E4M3FN>, %w2: tensor<256x128xf8E4M3FN>, %s3: tensor<1x2xf8E8M0FNU>, %s2: tensor<2x1xf8E8M0FNU>) {
  // expected-error @+1 {{expected a scale for 'f8E4M3FN' weight w1, got none [moe_shared_expert_c5]}}
  %y = v4.moe.shared_expert %x w1 %w1, w3 %w3 scale %s3, w2 %w2 scale %s2 swigluLimit 10.0 : (tensor<2x3x256xbf16>, tensor<128x256xf8E4M3FN>, tensor<128x256xf8E4M3FN>, tensor<256x128xf8E4M3FN>, tensor<1x2xf8E8M0FNU>, tensor<2x1xf8E8M0FNU>) -> tensor<2x3x256xbf16>
  return
}

// -----

// moe_shared_expert_c6: scales are f8E8M0FNU.
func.func @shared_expert_c6(%x: tensor<2x3x256xbf16>, %w1: tensor<128x256xf8E4M3FN>, %w3: tensor<128x256xf8E4M3FN>, %w2: tensor<256x128xf8E4M3FN>, %s1: tensor<1x2xf8E8M0FNU>, %s3: tensor<1x2xf8E8M0FNU>, %s2: tensor<2x1xf32>) {
  // expected-error @+1 {{expected w2Scale element type 'f8E8M0FNU', got 'f32' [moe_shared_expert_c6]}}
  %y = v4.moe.shared_expert %x w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 scale %s2 swigluLimit 10.0 : (tensor<2x3x256xbf16>, tensor<128x256xf8E4M3FN>, tensor<128x256xf8E4M3FN>, tensor<256x128xf8E4M3FN>, tensor<1x2xf8E8M0FNU>, tensor<1x2xf8E8M0FNU>, tensor<2x1xf32>) -> tensor<2x3x256xbf16>
  return
}

// -----

// moe_shared_expert_c7: scales are [ceil(out/128), ceil(in/128)].
func.func @shared_expert_c7(%x: tensor<2x3x256xbf16>, %w1: tensor<128x256xf8E4M3FN>, %w3: tensor<128x256xf8E4M3FN>, %w2: tensor<256x128xf8E4M3FN>, %s1: tensor<128x8xf8E8M0FNU>, %s3: tensor<1x2xf8E8M0FNU>, %s2: tensor<2x1xf8E8M0FNU>) {
  // expected-error @+1 {{expected w1Scale shape [128, 8] to match w1 [128, 256] 128x128 block shape [1, 2] [moe_shared_expert_c7]}}
  %y = v4.moe.shared_expert %x w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 scale %s2 swigluLimit 10.0 : (tensor<2x3x256xbf16>, tensor<128x256xf8E4M3FN>, tensor<128x256xf8E4M3FN>, tensor<256x128xf8E4M3FN>, tensor<128x8xf8E8M0FNU>, tensor<1x2xf8E8M0FNU>, tensor<2x1xf8E8M0FNU>) -> tensor<2x3x256xbf16>
  return
}

// -----

// moe_shared_expert_c8: swigluLimit is absent (no clamp) or finite and > 0.
func.func @shared_expert_c8(%x: tensor<2x3x256xbf16>, %w1: tensor<128x256xf8E4M3FN>, %w3: tensor<128x256xf8E4M3FN>, %w2: tensor<256x128xf8E4M3FN>, %s1: tensor<1x2xf8E8M0FNU>, %s3: tensor<1x2xf8E8M0FNU>, %s2: tensor<2x1xf8E8M0FNU>) {
  // expected-error @+1 {{expected swigluLimit to be finite and > 0, got -1.000000e+01 [moe_shared_expert_c8]}}
  %y = v4.moe.shared_expert %x w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 scale %s2 swigluLimit -10.0 : (tensor<2x3x256xbf16>, tensor<128x256xf8E4M3FN>, tensor<128x256xf8E4M3FN>, tensor<256x128xf8E4M3FN>, tensor<1x2xf8E8M0FNU>, tensor<1x2xf8E8M0FNU>, tensor<2x1xf8E8M0FNU>) -> tensor<2x3x256xbf16>
  return
}

// -----

// moe_shared_expert_c9: the result is [..., d] of x's type or f32.
func.func @shared_expert_c9(%x: tensor<2x3x256xbf16>, %w1: tensor<128x256xf8E4M3FN>, %w3: tensor<128x256xf8E4M3FN>, %w2: tensor<256x128xf8E4M3FN>, %s1: tensor<1x2xf8E8M0FNU>, %s3: tensor<1x2xf8E8M0FNU>, %s2: tensor<2x1xf8E8M0FNU>) {
  // expected-error @+1 {{expected result element type 'bf16', got 'f16' [moe_shared_expert_c9]}}
  %y = v4.moe.shared_expert %x w1 %w1 scale %s1, w3 %w3 scale %s3, w2 %w2 scale %s2 swigluLimit 10.0 : (tensor<2x3x256xbf16>, tensor<128x256xf8E4M3FN>, tensor<128x256xf8E4M3FN>, tensor<256x128xf8E4M3FN>, tensor<1x2xf8E8M0FNU>, tensor<1x2xf8E8M0FNU>, tensor<2x1xf8E8M0FNU>) -> tensor<2x3x256xf16>
  return
}

// -----

// moe_combine_c1: routed is the per-slot outputs [..., k, d], bf16 or f32.
func.func @combine_c1(%r: tensor<2x3x2x256xf16>, %s: tensor<2x3x256xbf16>) {
  // expected-error @+1 {{expected routed element type 'bf16' or 'f32', got 'f16' [moe_combine_c1]}}
  %y = v4.moe.combine %r, %s : tensor<2x3x2x256xf16>, tensor<2x3x256xbf16> -> tensor<2x3x256xbf16>
  return
}

// -----

// moe_combine_c2: shared is bf16.
func.func @combine_c2(%r: tensor<2x3x2x256xbf16>, %s: tensor<2x3x256xf16>) {
  // expected-error @+1 {{expected shared element type 'bf16' or 'f32', got 'f16' [moe_combine_c2]}}
  %y = v4.moe.combine %r, %s : tensor<2x3x2x256xbf16>, tensor<2x3x256xf16> -> tensor<2x3x256xbf16>
  return
}

// -----

// moe_combine_c3: shared has the shape of routed without the slot dim.
func.func @combine_c3(%r: tensor<2x3x2x256xbf16>, %s: tensor<2x4x256xbf16>) {
  // expected-error @+1 {{expected shared shape [2, 4, 256] to match routed without k shape [2, 3, 256] [moe_combine_c3]}}
  %y = v4.moe.combine %r, %s : tensor<2x3x2x256xbf16>, tensor<2x4x256xbf16> -> tensor<2x3x256xbf16>
  return
}

// -----

// moe_combine_c4: the result is bf16 of the same shape.
func.func @combine_c4(%r: tensor<2x3x2x256xbf16>, %s: tensor<2x3x256xbf16>) {
  // expected-error @+1 {{expected result element type 'bf16' or 'f32', got 'f16' [moe_combine_c4]}}
  %y = v4.moe.combine %r, %s : tensor<2x3x2x256xbf16>, tensor<2x3x256xbf16> -> tensor<2x3x256xf16>
  return
}

// -----

// moe_dispatch_c1: a world of at least one rank.
func.func @dispatch_c1(%x: tensor<1x4x8xbf16>, %w: tensor<1x4x2xf32>, %i: tensor<1x4x2xi64>) {
  // expected-error @+1 {{[moe_dispatch_c1]}}
  %n, %r, %rw, %ri = v4.moe.dispatch %x, %w, %i world 0 experts 4
      : (tensor<1x4x8xbf16>, tensor<1x4x2xf32>, tensor<1x4x2xi64>)
      -> (tensor<0xi64>, tensor<0x1x4x2x8xbf16>, tensor<0x1x4x2x1xf32>, tensor<0x1x4x2x1xi64>)
  return
}

// -----

// moe_dispatch_c1: at least one expert per rank.
func.func @dispatch_c1_experts(%x: tensor<1x4x8xbf16>, %w: tensor<1x4x2xf32>, %i: tensor<1x4x2xi64>) {
  // expected-error @+1 {{[moe_dispatch_c1]}}
  %n, %r, %rw, %ri = v4.moe.dispatch %x, %w, %i world 2 experts 0
      : (tensor<1x4x8xbf16>, tensor<1x4x2xf32>, tensor<1x4x2xi64>)
      -> (tensor<2xi64>, tensor<2x1x4x2x8xbf16>, tensor<2x1x4x2x1xf32>, tensor<2x1x4x2x1xi64>)
  return
}

// -----

// moe_dispatch_c2: the indices are over x's leading dims.
func.func @dispatch_c2(%x: tensor<1x4x8xbf16>, %w: tensor<1x4x2xf32>, %i: tensor<1x5x2xi64>) {
  // expected-error @+1 {{[moe_dispatch_c2]}}
  %n, %r, %rw, %ri = v4.moe.dispatch %x, %w, %i world 2 experts 4
      : (tensor<1x4x8xbf16>, tensor<1x4x2xf32>, tensor<1x5x2xi64>)
      -> (tensor<2xi64>, tensor<2x1x4x2x8xbf16>, tensor<2x1x4x2x1xf32>, tensor<2x1x4x2x1xi64>)
  return
}

// -----

// moe_dispatch_c2: a token dim.
func.func @dispatch_c2_rank(%x: tensor<8xbf16>, %w: tensor<2xf32>, %i: tensor<2xi64>) {
  // expected-error @+1 {{[moe_dispatch_c2]}}
  %n, %r, %rw, %ri = v4.moe.dispatch %x, %w, %i world 2 experts 4
      : (tensor<8xbf16>, tensor<2xf32>, tensor<2xi64>)
      -> (tensor<2xi64>, tensor<2x2x8xbf16>, tensor<2x2x1xf32>, tensor<2x2x1xi64>)
  return
}

// -----

// moe_dispatch_c3: counts [world] i64.
func.func @dispatch_c3(%x: tensor<1x4x8xbf16>, %w: tensor<1x4x2xf32>, %i: tensor<1x4x2xi64>) {
  // expected-error @+1 {{[moe_dispatch_c3]}}
  %n, %r, %rw, %ri = v4.moe.dispatch %x, %w, %i world 2 experts 4
      : (tensor<1x4x8xbf16>, tensor<1x4x2xf32>, tensor<1x4x2xi64>)
      -> (tensor<3xi64>, tensor<2x1x4x2x8xbf16>, tensor<2x1x4x2x1xf32>, tensor<2x1x4x2x1xi64>)
  return
}

// -----

// moe_dispatch_c4: rows [world, ..., k, d] of x's type.
func.func @dispatch_c4(%x: tensor<1x4x8xbf16>, %w: tensor<1x4x2xf32>, %i: tensor<1x4x2xi64>) {
  // expected-error @+1 {{[moe_dispatch_c4]}}
  %n, %r, %rw, %ri = v4.moe.dispatch %x, %w, %i world 2 experts 4
      : (tensor<1x4x8xbf16>, tensor<1x4x2xf32>, tensor<1x4x2xi64>)
      -> (tensor<2xi64>, tensor<2x1x4x8xbf16>, tensor<2x1x4x2x1xf32>, tensor<2x1x4x2x1xi64>)
  return
}

// -----

// moe_dispatch_c4: row indices are i64.
func.func @dispatch_c4_type(%x: tensor<1x4x8xbf16>, %w: tensor<1x4x2xf32>, %i: tensor<1x4x2xi64>) {
  // expected-error @+1 {{[moe_dispatch_c4]}}
  %n, %r, %rw, %ri = v4.moe.dispatch %x, %w, %i world 2 experts 4
      : (tensor<1x4x8xbf16>, tensor<1x4x2xf32>, tensor<1x4x2xi64>)
      -> (tensor<2xi64>, tensor<2x1x4x2x8xbf16>, tensor<2x1x4x2x1xf32>, tensor<2x1x4x2x1xi32>)
  return
}

// -----

// moe_undispatch_c1: at least one expert per rank.
func.func @undispatch_c1(%y: tensor<2x1x4x2x1x8xbf16>, %i: tensor<1x4x2xi64>) {
  // expected-error @+1 {{[moe_undispatch_c1]}}
  %r = v4.moe.undispatch %y, %i world 2 experts 0
      : (tensor<2x1x4x2x1x8xbf16>, tensor<1x4x2xi64>) -> tensor<1x4x2x8xbf16>
  return
}

// -----

// moe_undispatch_c2: i64 indices with a token dim.
func.func @undispatch_c2(%y: tensor<2x1x4x2x1x8xbf16>, %i: tensor<1x4x2xi32>) {
  // expected-error @+1 {{[moe_undispatch_c2]}}
  %r = v4.moe.undispatch %y, %i world 2 experts 4
      : (tensor<2x1x4x2x1x8xbf16>, tensor<1x4x2xi32>) -> tensor<1x4x2x8xbf16>
  return
}

// -----

// moe_undispatch_c3: y is [world, indices' dims, 1, d].
func.func @undispatch_c3(%y: tensor<2x1x4x2x8xbf16>, %i: tensor<1x4x2xi64>) {
  // expected-error @+1 {{[moe_undispatch_c3]}}
  %r = v4.moe.undispatch %y, %i world 2 experts 4
      : (tensor<2x1x4x2x8xbf16>, tensor<1x4x2xi64>) -> tensor<1x4x2x8xbf16>
  return
}

// -----

// moe_undispatch_c4: the result is [indices' dims, d] of y's type.
func.func @undispatch_c4(%y: tensor<2x1x4x2x1x8xbf16>, %i: tensor<1x4x2xi64>) {
  // expected-error @+1 {{[moe_undispatch_c4]}}
  %r = v4.moe.undispatch %y, %i world 2 experts 4
      : (tensor<2x1x4x2x1x8xbf16>, tensor<1x4x2xi64>) -> tensor<1x4x2x8xf32>
  return
}
