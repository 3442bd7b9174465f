// v4-gpu-map-kernels on bufferized kernels whose linalg ops are parallel
// loops: each kernel becomes a gpu.func of gpu.module @v4_gpu taking its
// buffers and then a workspace.
// RUN: v4-opt %s --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(builtin.module(v4-gpu-map-kernels))' | FileCheck %s

module attributes {v4.target = "sm_90a"} {
  module @kernels attributes {v4.max_chunk = 16 : i64, v4.target = "sm_90a"} {
    // CHECK: module @kernels attributes {gpu.container_module
    // CHECK: gpu.module @v4_gpu {
    // CHECK-LABEL: gpu.func @k0_norm(
    // CHECK-SAME: %[[X:.*]]: memref<1x?x64xf32>, %[[Y:.*]]: memref<1x?x64xf32>, %[[WS:.*]]: memref<?xi8>) kernel
    // CHECK-SAME: known_block_size = array<i32: 256, 1, 1>
    // CHECK-SAME: v4.block_size = array<i32: 256, 1, 1>
    // CHECK-SAME: v4.kernel_op = "v4.rms_norm"
    // A [1, T] f32 temporary at T <= 16: 64 bytes; the scalar slot after it
    // at the next 64-byte boundary: 68 bytes in all.
    // CHECK-SAME: v4.workspace_bytes = 68 : i64
    // CHECK: %[[TID:.*]] = gpu.thread_id x
    // CHECK: %[[C256:.*]] = arith.constant 256 : index
    // CHECK: %[[T:.*]] = memref.dim %[[X]], %c1
    // CHECK: %[[ACC:.*]] = memref.view %[[WS]][%c0{{.*}}][%[[T]]] : memref<?xi8> to memref<1x?xf32>
    //
    // The first parallel loop: each thread takes iterations tid, tid + 256,
    // ... between barriers.
    // CHECK: gpu.barrier
    // CHECK: scf.for %[[I:.*]] = %[[TID]] to %{{.*}} step %[[C256]] {
    // CHECK: memref.store %{{.*}}, %[[ACC]][%c0{{.*}}, %{{.*}}] : memref<1x?xf32>
    // CHECK: }
    // CHECK: gpu.barrier
    //
    // A 2-d loop is linearised, the last dim fastest: (i / 64, i % 64).
    // CHECK: scf.for %[[L:.*]] = %[[TID]] to %{{.*}} step %[[C256]] {
    // CHECK: %[[J:.*]] = arith.remsi %[[L]], %c64{{.*}}
    // CHECK: %[[R:.*]] = arith.divsi %[[L]], %c64{{.*}}
    // CHECK: memref.load %[[X]][%c0{{.*}}, %[[R]], %[[J]]]
    // CHECK: gpu.barrier
    //
    // A store outside any parallel loop runs on thread 0; its result (a
    // loop's) reaches every thread through a workspace slot.
    // CHECK: %[[FIRST:.*]] = arith.cmpi eq, %[[TID]], %c0
    // CHECK: %[[SLOT:.*]] = memref.view %[[WS]][%c64{{.*}}][] : memref<?xi8> to memref<1xf32>
    // CHECK: scf.if %[[FIRST]] {
    // CHECK: %[[SUM:.*]] = scf.for
    // CHECK: memref.store %[[SUM]], %[[SLOT]]
    // CHECK: }
    // CHECK: gpu.barrier
    // CHECK: %[[SHARED:.*]] = memref.load %[[SLOT]]
    // CHECK: memref.store %[[SHARED]], %[[Y]]
    // CHECK: gpu.return
    func.func @k0_norm(%x: memref<1x?x64xf32>, %y: memref<1x?x64xf32>)
        attributes {v4.kernel, v4.kernel_op = "v4.rms_norm"} {
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c64 = arith.constant 64 : index
      %zero = arith.constant 0.0 : f32
      %t = memref.dim %x, %c1 : memref<1x?x64xf32>
      %acc = memref.alloc(%t) {alignment = 64 : i64} : memref<1x?xf32>
      scf.parallel (%i) = (%c0) to (%t) step (%c1) {
        memref.store %zero, %acc[%c0, %i] : memref<1x?xf32>
        scf.reduce
      }
      scf.parallel (%i, %j) = (%c0, %c0) to (%t, %c64) step (%c1, %c1) {
        %v = memref.load %x[%c0, %i, %j] : memref<1x?x64xf32>
        memref.store %v, %y[%c0, %i, %j] : memref<1x?x64xf32>
        scf.reduce
      }
      %sum = scf.for %k = %c0 to %c64 step %c1 iter_args(%s = %zero) -> f32 {
        %v = memref.load %x[%c0, %c0, %k] : memref<1x?x64xf32>
        %n = arith.addf %s, %v : f32
        memref.store %n, %y[%c0, %c0, %k] : memref<1x?x64xf32>
        scf.yield %n : f32
      }
      memref.store %sum, %y[%c0, %c0, %c0] : memref<1x?x64xf32>
      return
    }

    // A hand-built kernel with a launch grid runs one thread per block; its
    // launch block comes from the block ids and grid dims, and its scratch
    // stays on the thread's stack.
    // CHECK-LABEL: gpu.func @k1_hot(
    // CHECK-SAME: %[[A:.*]]: memref<4xf32>, %{{.*}}: memref<?xi8>) kernel
    // CHECK-SAME: known_block_size = array<i32: 1, 1, 1>
    // CHECK-SAME: v4.launch_grid = array<i64: 4, 0, 1, 0, 1, 0>
    // CHECK-SAME: v4.workspace_bytes = 0 : i64
    // CHECK: %[[BX:.*]] = gpu.block_id x
    // CHECK: %[[GX:.*]] = gpu.grid_dim x
    // CHECK: %[[TMP:.*]] = memref.alloca() : memref<8xf32>
    // CHECK-NOT: gpu.barrier
    // CHECK: memref.store %{{.*}}, %[[A]][%[[BX]]]
    func.func @k1_hot(%a: memref<4xf32>, %bx: index, %by: index, %bz: index,
                      %gx: index, %gy: index, %gz: index)
        attributes {v4.kernel, v4.launch_grid = array<i64: 4, 0, 1, 0, 1, 0>} {
      %c0 = arith.constant 0 : index
      %tmp = memref.alloc() : memref<8xf32>
      %v = memref.load %tmp[%c0] : memref<8xf32>
      %g = arith.index_cast %gx : index to i32
      %f = arith.sitofp %g : i32 to f32
      %w = arith.addf %v, %f : f32
      memref.store %w, %a[%bx] : memref<4xf32>
      return
    }

    // memref.copy becomes a parallel loop spread over the threads.
    // CHECK-LABEL: gpu.func @k2_copy(
    // CHECK-NOT: memref.copy
    // CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %c256
    func.func @k2_copy(%a: memref<1x?x8xf32>, %b: memref<1x?x8xf32>)
        attributes {v4.kernel} {
      memref.copy %a, %b : memref<1x?x8xf32> to memref<1x?x8xf32>
      return
    }
  }
}

// -----

module {
  // expected-error @+1 {{the kernels module has no v4.max_chunk}}
  module @kernels attributes {v4.target = "sm_90a"} {
    func.func @k0(%a: memref<4xf32>) attributes {v4.kernel} {
      return
    }
  }
}
// -----

module {
  module @kernels attributes {v4.max_chunk = 16 : i64} {
    func.func @k0(%a: memref<?xi64>, %b: memref<1x?xf32>) attributes {v4.kernel} {
      %c0 = arith.constant 0 : index
      %n = memref.load %a[%c0] : memref<?xi64>
      %m = arith.index_cast %n : i64 to index
      // expected-error @+1 {{kernel 'k0': a temporary's size has no bound in terms of the token count}}
      %t = memref.alloc(%m) : memref<?xf32>
      return
    }
  }
}
// -----

module {
  module @kernels attributes {v4.max_chunk = 16 : i64} {
    func.func @k0(%b: memref<1x?xf32>) attributes {v4.kernel} {
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %t = memref.dim %b, %c1 : memref<1x?xf32>
      scf.parallel (%i) = (%c0) to (%t) step (%c1) {
        // expected-error @+1 {{kernel 'k0': a per-thread temporary of dynamic size}}
        %tmp = memref.alloc(%t) : memref<?xf32>
        scf.reduce
      }
      return
    }
  }
}
// -----

module {
  module @kernels attributes {v4.max_chunk = 16 : i64} {
    func.func @k0(%b: memref<1x?xf32>) attributes {v4.kernel} {
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %t = memref.dim %b, %c1 : memref<1x?xf32>
      // expected-error @+1 {{kernel 'k0': parallel loops inside 'scf.while' cannot be spread over threads}}
      scf.while : () -> () {
        %false = arith.constant false
        scf.condition(%false)
      } do {
        scf.parallel (%i) = (%c0) to (%t) step (%c1) {
          scf.reduce
        }
        scf.yield
      }
      return
    }
  }
}
