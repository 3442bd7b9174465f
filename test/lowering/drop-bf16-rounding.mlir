// RUN: v4-opt %s -split-input-file --v4-drop-bf16-rounding -verify-diagnostics | FileCheck %s

// fp32 numerics (set on the enclosing module, read through the nested
// kernels module): every extf(truncf(x) : bf16) rounding point is x.
// CHECK-LABEL: func.func @k0
// CHECK-NOT: arith.truncf
// CHECK-NOT: arith.extf
// CHECK: %[[S:.+]] = arith.mulf %arg0, %arg1 : f32
// CHECK: %[[T:.+]] = arith.addf %[[S]], %arg1 : f32
// CHECK: return %[[T]] : f32
module attributes {v4.numerics = "fp32"} {
  module @kernels {
    func.func @k0(%a: f32, %b: f32) -> f32 {
      %p = arith.mulf %a, %b : f32
      %n = arith.truncf %p : f32 to bf16
      %w = arith.extf %n : bf16 to f32
      %s = arith.addf %w, %b : f32
      %n2 = arith.truncf %s : f32 to bf16
      %w2 = arith.extf %n2 : bf16 to f32
      return %w2 : f32
    }
  }
}

// -----

// A vector's rounding point (lane by lane, the experts' SwiGLU) goes too.
// CHECK-LABEL: func.func @kv
// CHECK-NOT: arith.truncf
// CHECK-NOT: arith.extf
// CHECK: %[[P:.+]] = arith.mulf %arg0, %arg1 : vector<16xf32>
// CHECK: return %[[P]] : vector<16xf32>
module attributes {v4.numerics = "fp32"} {
  func.func @kv(%a: vector<16xf32>, %b: vector<16xf32>) -> vector<16xf32> {
    %p = arith.mulf %a, %b : vector<16xf32>
    %n = arith.truncf %p : vector<16xf32> to vector<16xbf16>
    %w = arith.extf %n : vector<16xbf16> to vector<16xf32>
    return %w : vector<16xf32>
  }
}

// -----

// Production: the rounding points stay.
// CHECK-LABEL: func.func @k1
// CHECK: arith.truncf %{{.+}} : f32 to bf16
// CHECK: arith.extf %{{.+}} : bf16 to f32
module attributes {v4.numerics = "production"} {
  func.func @k1(%a: f32) -> f32 {
    %n = arith.truncf %a : f32 to bf16
    %w = arith.extf %n : bf16 to f32
    return %w : f32
  }
}

// -----

// A narrowing to bf16 that is not a rounding point (a bf16 result the graph
// did not widen) is an error in fp32 numerics.
module attributes {v4.numerics = "fp32"} {
  func.func @k2(%a: f32) -> bf16 {
    // expected-error @+1 {{fp32 numerics: kernel 'k2' still rounds to bf16}}
    %n = arith.truncf %a : f32 to bf16
    return %n : bf16
  }
}
