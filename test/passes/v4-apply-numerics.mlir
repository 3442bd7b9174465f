// RUN: v4-opt %s -split-input-file --v4-apply-numerics -verify-diagnostics | FileCheck %s

// fp32 numerics, fake-quant none: every bf16 activation, state and result
// becomes f32 (the signature follows); the weights keep their checkpoint
// types, a reshape of a weight too; the fake_quant op is gone.
// CHECK-LABEL: func.func @fp32_none
// CHECK-SAME: (%[[X:.+]]: tensor<1x?x64xf32>, %[[R:.+]]: !v4.window_ring<batch = 1, slots = 8, dim = 32, elementType = f32>, %{{.+}}: tensor<1xi64>)
// CHECK-SAME: -> (tensor<1x?x32xf32>, !v4.window_ring<batch = 1, slots = 8, dim = 32, elementType = f32>)
// CHECK: %[[NW:.+]] = v4.parameter "norm.weight" : tensor<64xbf16>
// CHECK: %[[N:.+]] = v4.rms_norm %[[X]], %[[NW]] eps {{.*}} : tensor<1x?x64xf32>, tensor<64xbf16>
// CHECK: %[[W:.+]] = v4.parameter "wkv.weight" : tensor<32x64xf8E4M3FN>
// CHECK: %[[Y:.+]] = v4.linear %[[N]], %[[W]] scale %{{.+}} : tensor<1x?x64xf32>, tensor<32x64xf8E4M3FN>, tensor<1x1xf8E8M0FNU> -> tensor<1x?x32xf32>
// CHECK-NOT: v4.fake_quant
// CHECK: v4.ring.write %[[Y]] into %[[R]]
// CHECK-SAME: -> !v4.window_ring<batch = 1, slots = 8, dim = 32, elementType = f32>
module attributes {v4.numerics = "fp32", v4.fake_quant = "none"} {
  func.func @fp32_none(%x: tensor<1x?x64xbf16>,
      %ring: !v4.window_ring<batch = 1, slots = 8, dim = 32, elementType = bf16>,
      %pos: tensor<1xi64>)
      -> (tensor<1x?x32xbf16>, !v4.window_ring<batch = 1, slots = 8, dim = 32, elementType = bf16>) {
    %nw = v4.parameter "norm.weight" : tensor<64xbf16>
    %n = v4.rms_norm %x, %nw eps 1.0E-6 : tensor<1x?x64xbf16>, tensor<64xbf16>
    %w = v4.parameter "wkv.weight" : tensor<32x64xf8E4M3FN>
    %s = v4.parameter "wkv.scale" : tensor<1x1xf8E8M0FNU>
    %y = v4.linear %n, %w scale %s : tensor<1x?x64xbf16>, tensor<32x64xf8E4M3FN>, tensor<1x1xf8E8M0FNU> -> tensor<1x?x32xbf16>
    %q = v4.fake_quant %y fp8_e4m3 blockSize 32 : tensor<1x?x32xbf16>
    %r = v4.ring.write %q into %ring at %pos : tensor<1x?x32xbf16>, tensor<1xi64> -> !v4.window_ring<batch = 1, slots = 8, dim = 32, elementType = bf16>
    return %q, %r : tensor<1x?x32xbf16>, !v4.window_ring<batch = 1, slots = 8, dim = 32, elementType = bf16>
  }
}

// -----

// A reshape of a weight is still a weight: it keeps bf16.
// CHECK-LABEL: func.func @weight_reshape
// CHECK: tensor.expand_shape %{{.+}} {{.*}} : tensor<64xbf16> into tensor<1x64xbf16>
// CHECK: -> tensor<1x?x32xf32>
module attributes {v4.numerics = "fp32"} {
  func.func @weight_reshape(%x: tensor<1x?x64xbf16>) -> tensor<1x?x32xbf16> {
    %w = v4.parameter "w" : tensor<64xbf16>
    %w2 = tensor.expand_shape %w [[0, 1]] output_shape [1, 64] : tensor<64xbf16> into tensor<1x64xbf16>
    %big = v4.parameter "big" : tensor<32x64xbf16>
    %y = v4.linear %x, %big : tensor<1x?x64xbf16>, tensor<32x64xbf16> -> tensor<1x?x32xbf16>
    return %y : tensor<1x?x32xbf16>
  }
}

// -----

// Production numerics, fake-quant kv (the defaults' rounding points): the
// graph is unchanged; the fake_quant stays.
// CHECK-LABEL: func.func @production_kv
// CHECK: v4.fake_quant %{{.+}} fp8_e4m3 blockSize 32 : tensor<1x?x32xbf16>
// CHECK: return {{.*}} : tensor<1x?x32xbf16>
module attributes {v4.numerics = "production", v4.fake_quant = "kv"} {
  func.func @production_kv(%y: tensor<1x?x32xbf16>) -> tensor<1x?x32xbf16> {
    %q = v4.fake_quant %y fp8_e4m3 blockSize 32 : tensor<1x?x32xbf16>
    return %q : tensor<1x?x32xbf16>
  }
}

// -----

// expected-error @+1 {{'v4.numerics' must be "production" or "fp32", got "fp16"}}
module attributes {v4.numerics = "fp16"} {
  func.func @bad(%y: tensor<1x?x32xbf16>) -> tensor<1x?x32xbf16> {
    return %y : tensor<1x?x32xbf16>
  }
}

// -----

// expected-error @+1 {{'v4.fake_quant' must be "all", "kv" or "none", got 3 : i64}}
module attributes {v4.fake_quant = 3} {
  func.func @bad_fq(%y: tensor<1x?x32xbf16>) -> tensor<1x?x32xbf16> {
    return %y : tensor<1x?x32xbf16>
  }
}
