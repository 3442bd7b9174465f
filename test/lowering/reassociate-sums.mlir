// RUN: v4-opt %s -split-input-file --v4-reassociate-sums -verify-diagnostics | FileCheck %s

// The fast sum order (set on the enclosing module, read through the nested
// kernels module): float additions, subtractions and multiplications may be
// reassociated and contracted; divisions, conversions and other flags stay.
// CHECK-LABEL: func.func @k0
// CHECK: arith.mulf %arg0, %arg1 fastmath<reassoc,contract> : f32
// CHECK: arith.addf %{{.+}}, %arg1 fastmath<reassoc,contract> : f32
// CHECK: arith.subf %{{.+}}, %arg0 fastmath<reassoc,nnan,contract> : f32
// CHECK: arith.divf %{{.+}}, %arg1 : f32
// CHECK: arith.truncf %{{.+}} : f32 to bf16
module attributes {v4.sum_order = "fast"} {
  module @kernels {
    func.func @k0(%a: f32, %b: f32) -> bf16 {
      %p = arith.mulf %a, %b : f32
      %s = arith.addf %p, %b : f32
      %d = arith.subf %s, %a fastmath<nnan> : f32
      %q = arith.divf %d, %b : f32
      %n = arith.truncf %q : f32 to bf16
      return %n : bf16
    }
  }
}

// -----

// The kernels of mHC ops keep the reference order (their mixes feed the bf16
// residual lanes, whose exact sums sit on bf16 ties), and so do RMS norms
// (a last-ulp change of a row's scale moves every element's bf16 rounding);
// other kernels' ops are flagged.
// CHECK-LABEL: func.func @mhc
// CHECK: arith.mulf %arg0, %arg1 : f32
// CHECK: arith.addf %{{.+}}, %arg1 : f32
// CHECK-LABEL: func.func @rms
// CHECK: arith.mulf %arg0, %arg1 : f32
// CHECK-LABEL: func.func @rope
// CHECK: arith.mulf %arg0, %arg1 fastmath<reassoc,contract> : f32
module attributes {v4.sum_order = "fast"} {
  module @kernels {
    func.func @mhc(%a: f32, %b: f32) -> f32 attributes {v4.kernel, v4.kernel_op = "v4.mhc.post"} {
      %p = arith.mulf %a, %b : f32
      %s = arith.addf %p, %b : f32
      return %s : f32
    }
    func.func @rms(%a: f32, %b: f32) -> f32 attributes {v4.kernel, v4.kernel_op = "v4.rms_norm"} {
      %p = arith.mulf %a, %b : f32
      return %p : f32
    }
    func.func @rope(%a: f32, %b: f32) -> f32 attributes {v4.kernel, v4.kernel_op = "v4.rope"} {
      %p = arith.mulf %a, %b : f32
      return %p : f32
    }
  }
}

// -----

// A body marked v4.keep_sum_order (sparse attention's) keeps its arithmetic
// as built: only the flags its builder set.
// CHECK-LABEL: func.func private @k3_attn_sparse_body
// CHECK: arith.mulf %arg0, %arg1 fastmath<reassoc,contract> : f32
// CHECK: arith.mulf %arg0, %arg1 : f32
// CHECK: arith.addf %{{.+}}, %arg1 : f32
module attributes {v4.sum_order = "fast"} {
  module @kernels {
    func.func private @k3_attn_sparse_body(%a: f32, %b: f32) -> f32 attributes {v4.keep_sum_order} {
      %d = arith.mulf %a, %b fastmath<reassoc,contract> : f32
      %p = arith.mulf %a, %b : f32
      %s = arith.addf %p, %b : f32
      %t = arith.addf %s, %d : f32
      return %t : f32
    }
  }
}

// -----

// The reference order (the default): nothing changes.
// CHECK-LABEL: func.func @k1
// CHECK: arith.mulf %arg0, %arg1 : f32
// CHECK: arith.addf %{{.+}}, %arg1 : f32
module {
  module @kernels {
    func.func @k1(%a: f32, %b: f32) -> f32 {
      %p = arith.mulf %a, %b : f32
      %s = arith.addf %p, %b : f32
      return %s : f32
    }
  }
}

// -----

// A sum order that is not a known value is an error at that module.
// expected-error @+1 {{'v4.sum_order' must be "reference" or "fast", got "quick"}}
module attributes {v4.sum_order = "quick"} {
  module @kernels {
    func.func @k2(%a: f32) -> f32 {
      %s = arith.addf %a, %a : f32
      return %s : f32
    }
  }
}
