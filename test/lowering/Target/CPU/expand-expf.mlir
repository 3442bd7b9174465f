// v4-cpu-expand-expf: every f32 math.exp (scalar or vector) becomes glibc's
// expf arithmetic in double with the module's 2^(j/32) table (gathered for
// vectors), on levels with FMA (the default x86-64-v3 and up); f64 exps
// are left alone, and a level without FMA keeps every call.
// RUN: v4-opt %s --split-input-file --v4-cpu-expand-expf | FileCheck %s

// CHECK: memref.global "private" constant @__v4_expf_table : memref<32xi64> = dense<[4607182418800017408, 4607140297302181236,
// CHECK-LABEL: func.func @scalar(
// CHECK-NOT: math.exp
// CHECK: arith.extf %{{.*}} : f32 to f64
// CHECK: math.fma
// CHECK: memref.get_global @__v4_expf_table
// CHECK: memref.load
// CHECK: arith.truncf %{{.*}} : f64 to f32
// CHECK: arith.select
// CHECK-LABEL: func.func @vector(
// CHECK-NOT: math.exp
// CHECK: arith.extf %{{.*}} : vector<16xf32> to vector<16xf64>
// CHECK: vector.gather %{{.*}} : memref<32xi64>, vector<16xindex>, vector<16xi1>, vector<16xi64> into vector<16xi64>
// CHECK: arith.truncf %{{.*}} : vector<16xf64> to vector<16xf32>
// CHECK-LABEL: func.func @double(
// CHECK: math.exp %{{.*}} : f64
module attributes {v4.cpu = "x86-64-v4"} {
  func.func @scalar(%x: f32) -> f32 {
    %y = math.exp %x : f32
    return %y : f32
  }
  func.func @vector(%x: vector<16xf32>) -> vector<16xf32> {
    %y = math.exp %x : vector<16xf32>
    return %y : vector<16xf32>
  }
  func.func @double(%x: f64) -> f64 {
    %y = math.exp %x : f64
    return %y : f64
  }
}

// -----

// CHECK-NOT: memref.global
// CHECK-LABEL: func.func @no_fma(
// CHECK: math.exp %{{.*}} : f32
module attributes {v4.cpu = "x86-64-v2"} {
  func.func @no_fma(%x: f32) -> f32 {
    %y = math.exp %x : f32
    return %y : f32
  }
}
