// v4-cpu-bf16-memory-as-i16: bf16 loads and stores (scalars and vectors)
// become i16 memory operations with bitcasts, so no bf16 value reaches the
// x86 backend (which would call compiler-rt's __truncsfbf2); other types
// are left alone.
// RUN: v4-opt %s --v4-cpu-bf16-memory-as-i16 | FileCheck %s

// CHECK-LABEL: llvm.func @scalar(
// CHECK: %[[L:.*]] = llvm.load %{{.*}} : !llvm.ptr -> i16
// CHECK: %[[B:.*]] = llvm.bitcast %[[L]] : i16 to bf16
// CHECK: %[[S:.*]] = llvm.bitcast %[[B]] : bf16 to i16
// CHECK: llvm.store %[[S]], %{{.*}} : i16, !llvm.ptr
llvm.func @scalar(%p: !llvm.ptr, %q: !llvm.ptr) {
  %v = llvm.load %p : !llvm.ptr -> bf16
  llvm.store %v, %q : bf16, !llvm.ptr
  llvm.return
}

// CHECK-LABEL: llvm.func @vector(
// CHECK: llvm.load %{{.*}} {alignment = 2 : i64} : !llvm.ptr -> vector<8xi16>
// CHECK: llvm.bitcast %{{.*}} : vector<8xi16> to vector<8xbf16>
// CHECK: llvm.bitcast %{{.*}} : vector<8xbf16> to vector<8xi16>
// CHECK: llvm.store %{{.*}}, %{{.*}} {alignment = 2 : i64} : vector<8xi16>, !llvm.ptr
llvm.func @vector(%p: !llvm.ptr, %q: !llvm.ptr) {
  %v = llvm.load %p {alignment = 2 : i64} : !llvm.ptr -> vector<8xbf16>
  llvm.store %v, %q {alignment = 2 : i64} : vector<8xbf16>, !llvm.ptr
  llvm.return
}

// CHECK-LABEL: llvm.func @other(
// CHECK: llvm.load %{{.*}} : !llvm.ptr -> f32
// CHECK-NOT: llvm.bitcast
// CHECK: llvm.store %{{.*}}, %{{.*}} : f32, !llvm.ptr
llvm.func @other(%p: !llvm.ptr, %q: !llvm.ptr) {
  %v = llvm.load %p : !llvm.ptr -> f32
  llvm.store %v, %q : f32, !llvm.ptr
  llvm.return
}
