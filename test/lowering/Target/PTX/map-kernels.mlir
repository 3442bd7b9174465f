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

// Row reductions (a load-combine-store of one output element in the
// innermost of the sequential loops inside a parallel loop): one warp per
// output element, warp w of the 8 taking elements w, w + 8, ...; its lanes
// stride the terms, a butterfly of xor shuffles combines the 32 partials,
// and lane 0 adds the element's initial value and stores it.
module {
  module @kernels attributes {v4.max_chunk = 16 : i64} {
    // CHECK-LABEL: gpu.func @k0_sum_of_squares(
    // CHECK-SAME: %[[X:[^:]*]]: memref<1x?x64xbf16>, %[[Y:[^:]*]]: memref<1x?xf32>
    // CHECK: %[[TID:.*]] = gpu.thread_id x
    // CHECK: gpu.barrier
    // CHECK-DAG: %[[C32:.*]] = arith.constant 32 : index
    // CHECK-DAG: %[[LANE:.*]] = arith.remui %[[TID]], %[[C32]] : index
    // CHECK-DAG: %[[WARP:.*]] = arith.divui %[[TID]], %[[C32]] : index
    // CHECK-DAG: %[[WARPS:.*]] = arith.constant 8 : index
    // CHECK-DAG: %[[MZERO:.*]] = arith.constant -0.000000e+00 : f32
    // CHECK-DAG: %[[W32:.*]] = arith.constant 32 : i32
    // CHECK-DAG: %[[O16:.*]] = arith.constant 16 : i32
    // CHECK-DAG: %[[O8:.*]] = arith.constant 8 : i32
    // CHECK-DAG: %[[O4:.*]] = arith.constant 4 : i32
    // CHECK-DAG: %[[O2:.*]] = arith.constant 2 : i32
    // CHECK-DAG: %[[O1:.*]] = arith.constant 1 : i32
    // CHECK: scf.for %[[ROW:.*]] = %[[WARP]] to %{{.*}} step %[[WARPS]] {
    // Lane l loads 8 consecutive bf16 (16 bytes) from 8 * l, then from
    // 8 * (l + 32), ...
    // CHECK: %[[START:.*]] = arith.muli %[[LANE]], %c8
    // CHECK: %[[PARTIAL:.*]] = scf.for %[[K:.*]] = %[[START]] to %c64 step %c256{{.*}} iter_args(%[[ACC:.*]] = %[[MZERO]]) -> (f32) {
    // CHECK: %[[V:.*]] = vector.load %[[X]][%c0, %[[ROW]], %[[K]]] {alignment = 16 : i64} : memref<1x?x64xbf16>, vector<8xbf16>
    // CHECK: %[[E0:.*]] = vector.extract %[[V]][0]
    // CHECK: %[[F0:.*]] = arith.extf %[[E0]]
    // CHECK: %[[S0:.*]] = arith.mulf %[[F0]], %[[F0]]
    // CHECK: %[[A0:.*]] = arith.addf %[[ACC]], %[[S0]]
    // CHECK: vector.extract %[[V]][1]
    // CHECK: vector.extract %[[V]][7]
    // CHECK: %[[A7:.*]] = arith.addf
    // CHECK-NEXT: scf.yield %[[A7]] : f32
    // CHECK: }
    // CHECK: %[[SH16:.*]], %{{.*}} = gpu.shuffle xor %[[PARTIAL]], %[[O16]], %[[W32]] : f32
    // CHECK: %[[P16:.*]] = arith.addf %[[PARTIAL]], %[[SH16]] : f32
    // CHECK: %[[SH8:.*]], %{{.*}} = gpu.shuffle xor %[[P16]], %[[O8]], %[[W32]] : f32
    // CHECK: %[[P8:.*]] = arith.addf %[[P16]], %[[SH8]] : f32
    // CHECK: gpu.shuffle xor %{{.*}}, %[[O4]], %[[W32]] : f32
    // CHECK: gpu.shuffle xor %{{.*}}, %[[O2]], %[[W32]] : f32
    // CHECK: %[[SH1:.*]], %{{.*}} = gpu.shuffle xor %[[P2:.*]], %[[O1]], %[[W32]] : f32
    // CHECK: %[[SUM:.*]] = arith.addf %[[P2]], %[[SH1]] : f32
    // CHECK: %[[FIRST:.*]] = arith.cmpi eq, %[[LANE]], %c0
    // CHECK: scf.if %[[FIRST]] {
    // CHECK: %[[INIT:.*]] = memref.load %[[Y]][%c0, %[[ROW]]] : memref<1x?xf32>
    // CHECK: %[[OUT:.*]] = arith.addf %[[INIT]], %[[SUM]] : f32
    // CHECK: memref.store %[[OUT]], %[[Y]][%c0, %[[ROW]]] : memref<1x?xf32>
    // CHECK: }
    // CHECK: }
    // CHECK: gpu.barrier
    // CHECK: gpu.return
    func.func @k0_sum_of_squares(%x: memref<1x?x64xbf16>, %y: memref<1x?xf32>)
        attributes {v4.kernel} {
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c64 = arith.constant 64 : index
      %t = memref.dim %x, %c1 : memref<1x?x64xbf16>
      scf.parallel (%i) = (%c0) to (%t) step (%c1) {
        scf.for %k = %c0 to %c64 step %c1 {
          %v = memref.load %x[%c0, %i, %k] : memref<1x?x64xbf16>
          %a = memref.load %y[%c0, %i] : memref<1x?xf32>
          %e = arith.extf %v : bf16 to f32
          %s = arith.mulf %e, %e : f32
          %n = arith.addf %a, %s : f32
          memref.store %n, %y[%c0, %i] : memref<1x?xf32>
        }
        scf.reduce
      }
      return
    }

    // A max over a nest of two loops (the lanes stride the inner one) of a
    // row known only at run time: scalar loads, consecutive across lanes;
    // a 2-d parallel loop linearised as the spread loops are.
    // CHECK-LABEL: gpu.func @k1_max(
    // CHECK-SAME: %[[X:[^:]*]]: memref<?x4x?xf32>, %[[Y:[^:]*]]: memref<?x3xf32>
    // CHECK-DAG: %[[LANE:.*]] = arith.remui %{{.*}}, %c32
    // CHECK-DAG: %[[NEGINF:.*]] = arith.constant 0xFF800000 : f32
    // CHECK: scf.for %[[L:.*]] = %{{.*}} to %{{.*}} step %c8{{.*}} {
    // CHECK: %[[J:.*]] = arith.remsi %[[L]], %c3
    // CHECK: %[[I:.*]] = arith.divsi %[[L]], %c3
    // CHECK: %[[P:.*]] = scf.for %[[A:.*]] = %c0 to %c4 step %c1 iter_args(%[[ACC:.*]] = %[[NEGINF]]) -> (f32) {
    // CHECK: %[[IN:.*]] = scf.for %[[K:.*]] = %[[LANE]] to %[[N:.*]] step %c32{{.*}} iter_args(%[[ACC2:.*]] = %[[ACC]]) -> (f32) {
    // CHECK-NOT: vector.load
    // CHECK: %[[V:.*]] = memref.load %[[X]][%[[I]], %[[A]], %[[K]]] : memref<?x4x?xf32>
    // CHECK: %[[M:.*]] = arith.maximumf %[[ACC2]], %[[V]] : f32
    // CHECK: scf.yield %[[M]]
    // CHECK: scf.yield %[[IN]]
    // CHECK: gpu.shuffle xor %[[P]], %c16_i32, %c32_i32 : f32
    // CHECK: arith.maximumf
    // CHECK: scf.if
    // CHECK: memref.load %[[Y]][%[[I]], %[[J]]]
    // CHECK: arith.maximumf
    // CHECK: memref.store %{{.*}}, %[[Y]][%[[I]], %[[J]]]
    func.func @k1_max(%x: memref<?x4x?xf32>, %y: memref<?x3xf32>)
        attributes {v4.kernel} {
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c2 = arith.constant 2 : index
      %c3 = arith.constant 3 : index
      %c4 = arith.constant 4 : index
      %t = memref.dim %x, %c0 : memref<?x4x?xf32>
      %n = memref.dim %x, %c2 : memref<?x4x?xf32>
      scf.parallel (%i, %j) = (%c0, %c0) to (%t, %c3) step (%c1, %c1) {
        scf.for %a = %c0 to %c4 step %c1 {
          scf.for %k = %c0 to %n step %c1 {
            %v = memref.load %x[%i, %a, %k] : memref<?x4x?xf32>
            %m = memref.load %y[%i, %j] : memref<?x3xf32>
            %r = arith.maximumf %m, %v : f32
            memref.store %r, %y[%i, %j] : memref<?x3xf32>
          }
        }
        scf.reduce
      }
      return
    }

    // One sum at the top of a kernel (no parallel loop): warp 0 computes it
    // (where thread 0 alone did); f32 rows take 4-element (16-byte) loads.
    // CHECK-LABEL: gpu.func @k2_one_sum(
    // CHECK-SAME: %[[X:[^:]*]]: memref<128xf32>, %[[S:[^:]*]]: memref<f32>
    // CHECK: gpu.barrier
    // CHECK: %[[WARP:.*]] = arith.divui %{{.*}}, %c32
    // CHECK: scf.for %{{.*}} = %[[WARP]] to %c1{{.*}} step %c8
    // CHECK: scf.for %[[K:.*]] = %{{.*}} to %c128 step %c128{{.*}} iter_args(
    // CHECK: vector.load %[[X]][%[[K]]] {alignment = 16 : i64} : memref<128xf32>, vector<4xf32>
    // CHECK: gpu.shuffle xor
    // CHECK: scf.if
    // CHECK: memref.store %{{.*}}, %[[S]][] : memref<f32>
    // CHECK: gpu.barrier
    func.func @k2_one_sum(%x: memref<128xf32>, %s: memref<f32>)
        attributes {v4.kernel} {
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c128 = arith.constant 128 : index
      scf.for %k = %c0 to %c128 step %c1 {
        %v = memref.load %x[%k] : memref<128xf32>
        %a = memref.load %s[] : memref<f32>
        %n = arith.addf %v, %a : f32
        memref.store %n, %s[] : memref<f32>
      }
      return
    }

    // The iter_args form (a block's absolute maximum, as fake_quant's): the
    // lanes stride the loop from the combining op's identity, the loop's
    // value is its initial value combined with the warp's, and the rest of
    // the parallel iteration (no loops in it) runs on lane 0.
    // CHECK-LABEL: gpu.func @k3_amax(
    // CHECK-SAME: %[[X:[^:]*]]: memref<1x?x512xbf16>, %[[S:[^:]*]]: memref<1x?x4xf32>
    // CHECK-DAG: %[[LANE:.*]] = arith.remui %{{.*}}, %c32
    // CHECK-DAG: %[[NEGINF:.*]] = arith.constant 0xFF800000 : f32
    // CHECK: scf.for %[[L:.*]] = %{{.*}} to %{{.*}} step %c8{{.*}} {
    // CHECK: %[[B:.*]] = arith.remsi %[[L]], %c4
    // CHECK: %[[T:.*]] = arith.divsi %[[L]], %c4
    // CHECK: %[[LO:.*]] = arith.muli %[[B]], %c128
    // CHECK: %[[HI:.*]] = arith.addi %[[LO]], %c128
    // CHECK: %[[START:.*]] = arith.addi %[[LO]], %[[LANE]]
    // CHECK: %[[P:.*]] = scf.for %[[K:.*]] = %[[START]] to %[[HI]] step %c32{{.*}} iter_args(%[[ACC:.*]] = %[[NEGINF]]) -> (f32) {
    // CHECK: memref.load %[[X]][%c0, %[[T]], %[[K]]]
    // CHECK: math.absf
    // CHECK: arith.maximumf %[[ACC]]
    // CHECK: gpu.shuffle xor %[[P]], %c16_i32, %c32_i32 : f32
    // CHECK: gpu.shuffle xor %{{.*}}, %c1_i32, %c32_i32 : f32
    // CHECK-NEXT: %[[M1:.*]] = arith.maximumf %{{.*}}, %{{.*}} : f32
    // CHECK-NEXT: %[[FIRST:.*]] = arith.cmpi eq, %[[LANE]], %c0
    // CHECK-NEXT: scf.if %[[FIRST]] {
    // CHECK-NEXT: %[[AMAX:.*]] = arith.maximumf %cst, %[[M1]] : f32
    // CHECK-NEXT: %[[SCALE:.*]] = arith.mulf %[[AMAX]], %{{.*}} : f32
    // CHECK-NEXT: memref.store %[[SCALE]], %[[S]][%c0, %[[T]], %[[B]]]
    // CHECK-NEXT: }
    func.func @k3_amax(%x: memref<1x?x512xbf16>, %s: memref<1x?x4xf32>)
        attributes {v4.kernel} {
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c4 = arith.constant 4 : index
      %c128 = arith.constant 128 : index
      %zero = arith.constant 0.0 : f32
      %inv = arith.constant 0.00223214296 : f32
      %t = memref.dim %x, %c1 : memref<1x?x512xbf16>
      scf.parallel (%i, %b) = (%c0, %c0) to (%t, %c4) step (%c1, %c1) {
        %lo = arith.muli %b, %c128 : index
        %hi = arith.addi %lo, %c128 : index
        %m = scf.for %k = %lo to %hi step %c1 iter_args(%a = %zero) -> (f32) {
          %v = memref.load %x[%c0, %i, %k] : memref<1x?x512xbf16>
          %e = arith.extf %v : bf16 to f32
          %abs = math.absf %e : f32
          %n = arith.maximumf %a, %abs : f32
          scf.yield %n : f32
        }
        %scale = arith.mulf %m, %inv : f32
        memref.store %scale, %s[%c0, %i, %b] : memref<1x?x4xf32>
        scf.reduce
      }
      return
    }

    // Reductions the warps do not take keep the thread mapping: too short a
    // row (16 terms), a combining op that is not known (subf), the output
    // element read by the terms as well, an integer sum, a second store.
    // CHECK-LABEL: gpu.func @k4_not_rows(
    // CHECK-NOT: gpu.shuffle
    // CHECK-NOT: vector.load
    // CHECK: gpu.return
    func.func @k4_not_rows(%x: memref<1x?x64xf32>, %y: memref<1x?xf32>,
                           %z: memref<1x?xi32>, %w: memref<1x?x64xf32>)
        attributes {v4.kernel} {
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c16 = arith.constant 16 : index
      %c64 = arith.constant 64 : index
      %t = memref.dim %x, %c1 : memref<1x?x64xf32>
      scf.parallel (%i) = (%c0) to (%t) step (%c1) {
        scf.for %k = %c0 to %c16 step %c1 {
          %v = memref.load %x[%c0, %i, %k] : memref<1x?x64xf32>
          %a = memref.load %y[%c0, %i] : memref<1x?xf32>
          %n = arith.addf %a, %v : f32
          memref.store %n, %y[%c0, %i] : memref<1x?xf32>
        }
        scf.reduce
      }
      scf.parallel (%i) = (%c0) to (%t) step (%c1) {
        scf.for %k = %c0 to %c64 step %c1 {
          %v = memref.load %x[%c0, %i, %k] : memref<1x?x64xf32>
          %a = memref.load %y[%c0, %i] : memref<1x?xf32>
          %n = arith.subf %a, %v : f32
          memref.store %n, %y[%c0, %i] : memref<1x?xf32>
        }
        scf.reduce
      }
      scf.parallel (%i) = (%c0) to (%t) step (%c1) {
        scf.for %k = %c0 to %c64 step %c1 {
          %v = memref.load %x[%c0, %i, %k] : memref<1x?x64xf32>
          %a = memref.load %y[%c0, %i] : memref<1x?xf32>
          %b = memref.load %y[%c0, %i] : memref<1x?xf32>
          %p = arith.mulf %v, %b : f32
          %n = arith.addf %a, %p : f32
          memref.store %n, %y[%c0, %i] : memref<1x?xf32>
        }
        scf.reduce
      }
      scf.parallel (%i) = (%c0) to (%t) step (%c1) {
        scf.for %k = %c0 to %c64 step %c1 {
          %v = memref.load %x[%c0, %i, %k] : memref<1x?x64xf32>
          %a = memref.load %z[%c0, %i] : memref<1x?xi32>
          %vi = arith.fptosi %v : f32 to i32
          %n = arith.addi %a, %vi : i32
          memref.store %n, %z[%c0, %i] : memref<1x?xi32>
        }
        scf.reduce
      }
      scf.parallel (%i) = (%c0) to (%t) step (%c1) {
        scf.for %k = %c0 to %c64 step %c1 {
          %v = memref.load %x[%c0, %i, %k] : memref<1x?x64xf32>
          %a = memref.load %y[%c0, %i] : memref<1x?xf32>
          %n = arith.addf %a, %v : f32
          memref.store %n, %y[%c0, %i] : memref<1x?xf32>
          memref.store %v, %w[%c0, %i, %k] : memref<1x?x64xf32>
        }
        scf.reduce
      }
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
// -----

// Argmax (a top-k round, issue 10): the load-store form in a parallel loop
// over tokens, the candidate taken when strictly greater (a tie keeps the
// lower index, NaN never taken), becomes one warp per token: every lane
// reads the running pair, folds candidates lane, lane + 32, ... with the
// loop's own body, then a butterfly of shuffles of the value AND the index
// keeps the pair that comes first (greater, or equal at a lower index);
// lane 0 stores both.
module {
  module @kernels attributes {v4.max_chunk = 16 : i64} {
    // CHECK-LABEL: gpu.func @k0_argmax(
    // CHECK-SAME: %[[S:.*]]: memref<1x?x64xf32>, %[[V:.*]]: memref<1x?xf32>, %[[I:.*]]: memref<1x?xi64>
    // CHECK: %[[TID:.*]] = gpu.thread_id x
    // CHECK: gpu.barrier
    // CHECK: %[[LANE:.*]] = arith.remui %[[TID]], %c32
    // CHECK: %[[WARP:.*]] = arith.divui %[[TID]], %c32
    // CHECK: scf.for %[[T:.*]] = %[[WARP]] to %{{.*}} step %c8
    // CHECK: %[[V0:.*]] = memref.load %[[V]][%c0{{.*}}, %[[T]]]
    // CHECK: %[[I0:.*]] = memref.load %[[I]][%c0{{.*}}, %[[T]]]
    // CHECK: %[[FOLD:.*]]:2 = scf.for %[[E:.*]] = %[[LANE]] to %c64{{.*}} step %c32{{.*}} iter_args(%[[AV:.*]] = %[[V0]], %[[AI:.*]] = %[[I0]]) -> (f32, i64)
    // CHECK: %[[X:.*]] = memref.load %[[S]][%c0{{.*}}, %[[T]], %[[E]]]
    // CHECK: %[[J:.*]] = arith.index_cast %[[E]] : index to i64
    // CHECK: %[[GT:.*]] = arith.cmpf ogt, %[[X]], %[[AV]]
    // CHECK: arith.select %[[GT]], %[[X]], %[[AV]] : f32
    // CHECK: arith.select %[[GT]], %[[J]], %[[AI]] : i64
    // CHECK: %[[OV:.*]], %{{.*}} = gpu.shuffle xor %[[FOLD]]#0, %c16_i32, %c32_i32 : f32
    // CHECK: %[[OI:.*]], %{{.*}} = gpu.shuffle xor %[[FOLD]]#1, %c16_i32, %c32_i32 : i64
    // CHECK: %[[G:.*]] = arith.cmpf ogt, %[[OV]], %[[FOLD]]#0
    // CHECK: %[[EQ:.*]] = arith.cmpf oeq, %[[OV]], %[[FOLD]]#0
    // CHECK: %[[LO:.*]] = arith.cmpi slt, %[[OI]], %[[FOLD]]#1
    // CHECK: %[[TIE:.*]] = arith.andi %[[EQ]], %[[LO]]
    // CHECK: %[[FIRST:.*]] = arith.ori %[[G]], %[[TIE]]
    // CHECK: arith.select %[[FIRST]], %[[OV]], %[[FOLD]]#0
    // CHECK: arith.select %[[FIRST]], %[[OI]], %[[FOLD]]#1
    // CHECK: gpu.shuffle xor %{{.*}}, %c8_i32
    // CHECK: gpu.shuffle xor %{{.*}}, %c8_i32
    // CHECK: gpu.shuffle xor %{{.*}}, %c4_i32
    // CHECK: gpu.shuffle xor %{{.*}}, %c2_i32
    // CHECK: gpu.shuffle xor %{{.*}}, %c1_i32
    // CHECK: %[[BV:.*]] = arith.select %{{.*}} : f32
    // CHECK: %[[BI:.*]] = arith.select %{{.*}} : i64
    // CHECK: %[[L0:.*]] = arith.cmpi eq, %[[LANE]], %c0
    // CHECK: scf.if %[[L0]] {
    // CHECK-NEXT: memref.store %[[BV]], %[[V]][%c0{{.*}}, %[[T]]]
    // CHECK-NEXT: memref.store %[[BI]], %[[I]][%c0{{.*}}, %[[T]]]
    // CHECK: gpu.barrier
    // CHECK: gpu.return
    func.func @k0_argmax(%s: memref<1x?x64xf32>, %v: memref<1x?xf32>, %i: memref<1x?xi64>)
        attributes {v4.kernel} {
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c64 = arith.constant 64 : index
      %t = memref.dim %s, %c1 : memref<1x?x64xf32>
      scf.parallel (%tok) = (%c0) to (%t) step (%c1) {
        scf.for %e = %c0 to %c64 step %c1 {
          %x = memref.load %s[%c0, %tok, %e] : memref<1x?x64xf32>
          %av = memref.load %v[%c0, %tok] : memref<1x?xf32>
          %ai = memref.load %i[%c0, %tok] : memref<1x?xi64>
          %j = arith.index_cast %e : index to i64
          %gt = arith.cmpf ogt, %x, %av : f32
          %nv = arith.select %gt, %x, %av : f32
          %ni = arith.select %gt, %j, %ai : i64
          memref.store %nv, %v[%c0, %tok] : memref<1x?xf32>
          memref.store %ni, %i[%c0, %tok] : memref<1x?xi64>
        }
        scf.reduce
      }
      return
    }

    // The CSA indexer's top-k: a token loop outside any parallel loop whose
    // rounds pick the best candidate after the previous pick (guarded:
    // eligible, and none yet or greater). Its stores put the token at one
    // position of one buffer, so warps take tokens; the rounds' selections
    // are warp argmaxes whose merge also puts a candidate before none
    // (index < 0); lane 0 stores each pick.
    // CHECK-LABEL: gpu.func @k1_topk(
    // CHECK-SAME: %[[S:.*]]: memref<1x?x64xf32>, %[[N:.*]]: memref<1xi64>, %[[OUT:.*]]: memref<1x?x4xi64>
    // CHECK: gpu.barrier
    // CHECK: %[[LANE:.*]] = arith.remui %{{.*}}, %c32
    // CHECK: %[[WARP:.*]] = arith.divui %{{.*}}, %c32
    // CHECK: %[[L0:.*]] = arith.cmpi eq, %[[LANE]], %c0
    // CHECK: scf.for %[[T:.*]] = %[[WARP]] to %{{.*}} step %c8
    // CHECK: scf.for %[[R:.*]] = %c0 to %c4 step %c1 iter_args
    // CHECK: %[[FOLD:.*]]:2 = scf.for %{{.*}} = %[[LANE]] to %{{.*}} step %c32{{.*}} iter_args
    // CHECK: gpu.shuffle xor %[[FOLD]]#0, %c16_i32, %c32_i32 : f32
    // CHECK: %[[OI:.*]], %{{.*}} = gpu.shuffle xor %[[FOLD]]#1, %c16_i32, %c32_i32 : i64
    // CHECK: %[[TIE:.*]] = arith.ori
    // CHECK: %[[CAND:.*]] = arith.cmpi sge, %[[OI]], %c0_i64
    // CHECK: %[[NONE:.*]] = arith.cmpi slt, %[[FOLD]]#1, %c0_i64
    // CHECK: %[[OR:.*]] = arith.ori %[[NONE]], %[[TIE]]
    // CHECK: arith.andi %[[CAND]], %[[OR]]
    // CHECK: gpu.shuffle xor %{{.*}}, %c1_i32, %c32_i32 : i64
    // CHECK: %[[PICK:.*]] = arith.select %{{.*}} : i64
    // CHECK: scf.if %[[L0]] {
    // CHECK-NEXT: memref.store %[[PICK]], %[[OUT]][%c0, %[[T]], %[[R]]]
    // CHECK: gpu.barrier
    // CHECK: gpu.return
    func.func @k1_topk(%s: memref<1x?x64xf32>, %n: memref<1xi64>, %out: memref<1x?x4xi64>)
        attributes {v4.kernel} {
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c4 = arith.constant 4 : index
      %c0_i64 = arith.constant 0 : i64
      %m1 = arith.constant -1 : i64
      %ninf = arith.constant 0xFF800000 : f32
      %inf = arith.constant 0x7F800000 : f32
      %t = memref.dim %s, %c1 : memref<1x?x64xf32>
      %n0 = memref.load %n[%c0] : memref<1xi64>
      %count = arith.index_cast %n0 : i64 to index
      scf.for %tok = %c0 to %t step %c1 {
        %p:2 = scf.for %r = %c0 to %c4 step %c1 iter_args(%pv = %inf, %pi = %m1) -> (f32, i64) {
          %b:2 = scf.for %e = %c0 to %count step %c1 iter_args(%av = %ninf, %ai = %m1) -> (f32, i64) {
            %x = memref.load %s[%c0, %tok, %e] : memref<1x?x64xf32>
            %j = arith.index_cast %e : index to i64
            %lt = arith.cmpf olt, %x, %pv : f32
            %eq = arith.cmpf oeq, %x, %pv : f32
            %after = arith.cmpi sgt, %j, %pi : i64
            %tie = arith.andi %eq, %after : i1
            %elig = arith.ori %lt, %tie : i1
            %none = arith.cmpi slt, %ai, %c0_i64 : i64
            %gt = arith.cmpf ogt, %x, %av : f32
            %better = arith.ori %none, %gt : i1
            %take = arith.andi %elig, %better : i1
            %nv = arith.select %take, %x, %av : f32
            %ni = arith.select %take, %j, %ai : i64
            scf.yield %nv, %ni : f32, i64
          }
          memref.store %b#1, %out[%c0, %tok, %r] : memref<1x?x4xi64>
          scf.yield %b#0, %b#1 : f32, i64
        }
      }
      return
    }

    // Not an argmax of this kind: oge keeps the LAST maximum (the butterfly's
    // lower-index merge would differ), so it stays one thread per token.
    // CHECK-LABEL: gpu.func @k2_last_max(
    // CHECK-NOT: gpu.shuffle
    // CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %c256
    // CHECK: scf.for %{{.*}} = %c0 to %c64 step %c1
    // CHECK-NOT: gpu.shuffle
    // CHECK: gpu.return
    func.func @k2_last_max(%s: memref<1x?x64xf32>, %v: memref<1x?xf32>, %i: memref<1x?xi64>)
        attributes {v4.kernel} {
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c64 = arith.constant 64 : index
      %t = memref.dim %s, %c1 : memref<1x?x64xf32>
      scf.parallel (%tok) = (%c0) to (%t) step (%c1) {
        scf.for %e = %c0 to %c64 step %c1 {
          %x = memref.load %s[%c0, %tok, %e] : memref<1x?x64xf32>
          %av = memref.load %v[%c0, %tok] : memref<1x?xf32>
          %ai = memref.load %i[%c0, %tok] : memref<1x?xi64>
          %j = arith.index_cast %e : index to i64
          %ge = arith.cmpf oge, %x, %av : f32
          %nv = arith.select %ge, %x, %av : f32
          %ni = arith.select %ge, %j, %ai : i64
          memref.store %nv, %v[%c0, %tok] : memref<1x?xf32>
          memref.store %ni, %i[%c0, %tok] : memref<1x?xi64>
        }
        scf.reduce
      }
      return
    }

    // A guarded selection whose eligibility admits NaN (a NaN taken first
    // would stick: the sequential scan is then not a maximum) stays on
    // thread 0.
    // CHECK-LABEL: gpu.func @k3_nan_eligible(
    // CHECK-NOT: gpu.shuffle
    // CHECK: scf.if
    // CHECK-NOT: gpu.shuffle
    // CHECK: gpu.return
    func.func @k3_nan_eligible(%s: memref<1x?x64xf32>, %n: memref<1xi64>, %out: memref<1x?xi64>)
        attributes {v4.kernel} {
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c0_i64 = arith.constant 0 : i64
      %m1 = arith.constant -1 : i64
      %ninf = arith.constant 0xFF800000 : f32
      %t = memref.dim %s, %c1 : memref<1x?x64xf32>
      %n0 = memref.load %n[%c0] : memref<1xi64>
      %count = arith.index_cast %n0 : i64 to index
      scf.for %tok = %c0 to %t step %c1 {
        %b:2 = scf.for %e = %c0 to %count step %c1 iter_args(%av = %ninf, %ai = %m1) -> (f32, i64) {
          %x = memref.load %s[%c0, %tok, %e] : memref<1x?x64xf32>
          %j = arith.index_cast %e : index to i64
          %elig = arith.cmpf une, %x, %ninf : f32
          %none = arith.cmpi slt, %ai, %c0_i64 : i64
          %gt = arith.cmpf ogt, %x, %av : f32
          %better = arith.ori %none, %gt : i1
          %take = arith.andi %elig, %better : i1
          %nv = arith.select %take, %x, %av : f32
          %ni = arith.select %take, %j, %ai : i64
          scf.yield %nv, %ni : f32, i64
        }
        memref.store %b#1, %out[%c0, %tok] : memref<1x?xi64>
      }
      return
    }
  }
}
