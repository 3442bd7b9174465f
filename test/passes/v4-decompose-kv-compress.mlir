// RUN: v4-opt %s -split-input-file \
// RUN:   --pass-pipeline='builtin.module(func.func(v4-decompose-kv-compress))' | FileCheck %s
// The flag form runs it on the whole module, with the same result.
// RUN: v4-opt %s -split-input-file --v4-decompose-kv-compress | FileCheck %s

// A CSA layer's two compressors (main overlapping c = 128, indexer c = 64
// with rotate) over one x: each becomes wkv . x and wgate . x as f32
// v4.linear ops and a kv.compress_projected with the same ape, norm, state,
// cache, positions and attributes.
// CHECK-LABEL: func.func @csa_pair
// CHECK-SAME: (%[[X:[^:]+]]: tensor<1x?x64xbf16>, %[[WKV:[^:]+]]: tensor<256x64xbf16>, %[[WG:[^:]+]]: tensor<256x64xbf16>, %[[APE:[^:]+]]: tensor<4x256xf32>, %[[N:[^:]+]]: tensor<128xbf16>,
// CHECK-SAME: %[[IWKV:[^:]+]]: tensor<128x64xf32>, %[[IWG:[^:]+]]: tensor<128x64xf32>, %[[IAPE:[^:]+]]: tensor<4x128xbf16>, %[[IN:[^:]+]]: tensor<64xf32>,
// CHECK-SAME: %[[S:[^:]+]]: !v4.compressor_state<{{.*}}>, %[[C:[^:]+]]: !v4.kv_cache<{{.*}}>, %[[IS:[^:]+]]: !v4.compressor_state<{{.*}}>, %[[IC:[^:]+]]: !v4.kv_cache<{{.*}}>, %[[P:[^:]+]]: tensor<1xi64>)
// CHECK-NOT: v4.kv.compress %
// CHECK: %[[K:.+]] = v4.linear %[[X]], %[[WKV]] : tensor<1x?x64xbf16>, tensor<256x64xbf16> -> tensor<1x?x256xf32>
// CHECK: %[[G:.+]] = v4.linear %[[X]], %[[WG]] : tensor<1x?x64xbf16>, tensor<256x64xbf16> -> tensor<1x?x256xf32>
// CHECK: %[[S1:.+]], %[[C1:.+]] = v4.kv.compress_projected %[[K]], %[[G]], %[[S]], %[[C]], %[[P]] weights(%[[APE]], %[[N]]) rope #v4.rope<ropeDim = 64, {{.*}}> eps 9.9999999999999995E-7 : tensor<1x?x256xf32>, !v4.compressor_state<batch = 1, ratio = 4, dim = 128>, {{.*}} weights(tensor<4x256xf32>, tensor<128xbf16>)
// CHECK: %[[IK:.+]] = v4.linear %[[X]], %[[IWKV]] : tensor<1x?x64xbf16>, tensor<128x64xf32> -> tensor<1x?x128xf32>
// CHECK: %[[IG:.+]] = v4.linear %[[X]], %[[IWG]] : tensor<1x?x64xbf16>, tensor<128x64xf32> -> tensor<1x?x128xf32>
// CHECK: %[[IS1:.+]], %[[IC1:.+]] = v4.kv.compress_projected %[[IK]], %[[IG]], %[[IS]], %[[IC]], %[[P]] weights(%[[IAPE]], %[[IN]]) rope #v4.rope<ropeDim = 16, {{.*}}> eps 9.9999999999999995E-7 rotate : tensor<1x?x128xf32>
// CHECK-NOT: v4.kv.compress %
// CHECK: return %[[S1]], %[[C1]], %[[IS1]], %[[IC1]]
func.func @csa_pair(%x: tensor<1x?x64xbf16>, %wkv: tensor<256x64xbf16>, %wgate: tensor<256x64xbf16>,
    %ape: tensor<4x256xf32>, %norm: tensor<128xbf16>,
    %iwkv: tensor<128x64xf32>, %iwgate: tensor<128x64xf32>, %iape: tensor<4x128xbf16>, %inorm: tensor<64xf32>,
    %s: !v4.compressor_state<batch = 1, ratio = 4, dim = 128>,
    %c: !v4.kv_cache<batch = 1, capacity = 16, dim = 128, ratio = 4, elementType = bf16>,
    %is: !v4.compressor_state<batch = 1, ratio = 4, dim = 64>,
    %ic: !v4.kv_cache<batch = 1, capacity = 16, dim = 64, ratio = 4, elementType = bf16>,
    %pos: tensor<1xi64>)
    -> (!v4.compressor_state<batch = 1, ratio = 4, dim = 128>,
        !v4.kv_cache<batch = 1, capacity = 16, dim = 128, ratio = 4, elementType = bf16>,
        !v4.compressor_state<batch = 1, ratio = 4, dim = 64>,
        !v4.kv_cache<batch = 1, capacity = 16, dim = 64, ratio = 4, elementType = bf16>) {
  %s1, %c1 = v4.kv.compress %x, %s, %c, %pos weights(%wkv, %wgate, %ape, %norm)
      rope #v4.rope<ropeDim = 64, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0>
      eps 1.0e-6
      : tensor<1x?x64xbf16>, !v4.compressor_state<batch = 1, ratio = 4, dim = 128>,
        !v4.kv_cache<batch = 1, capacity = 16, dim = 128, ratio = 4, elementType = bf16>, tensor<1xi64>
      weights(tensor<256x64xbf16>, tensor<256x64xbf16>, tensor<4x256xf32>, tensor<128xbf16>)
  %is1, %ic1 = v4.kv.compress %x, %is, %ic, %pos weights(%iwkv, %iwgate, %iape, %inorm)
      rope #v4.rope<ropeDim = 16, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0>
      eps 1.0e-6 rotate
      : tensor<1x?x64xbf16>, !v4.compressor_state<batch = 1, ratio = 4, dim = 64>,
        !v4.kv_cache<batch = 1, capacity = 16, dim = 64, ratio = 4, elementType = bf16>, tensor<1xi64>
      weights(tensor<128x64xf32>, tensor<128x64xf32>, tensor<4x128xbf16>, tensor<64xf32>)
  return %s1, %c1, %is1, %ic1 : !v4.compressor_state<batch = 1, ratio = 4, dim = 128>,
      !v4.kv_cache<batch = 1, capacity = 16, dim = 128, ratio = 4, elementType = bf16>,
      !v4.compressor_state<batch = 1, ratio = 4, dim = 64>,
      !v4.kv_cache<batch = 1, capacity = 16, dim = 64, ratio = 4, elementType = bf16>
}

// -----

// A non-overlapping compressor (ratio 128, coff 1) in fp32 numerics (x f32),
// batch 2, static T: the projections keep x's leading dims.
// CHECK-LABEL: func.func @hca_fp32
// CHECK: v4.linear %{{.*}}, %{{.*}} : tensor<2x3x64xf32>, tensor<72x64xbf16> -> tensor<2x3x72xf32>
// CHECK: v4.linear %{{.*}}, %{{.*}} : tensor<2x3x64xf32>, tensor<72x64xbf16> -> tensor<2x3x72xf32>
// CHECK: v4.kv.compress_projected {{.*}} : tensor<2x3x72xf32>, !v4.compressor_state<batch = 2, ratio = 128, dim = 72>
func.func @hca_fp32(%x: tensor<2x3x64xf32>, %wkv: tensor<72x64xbf16>, %wgate: tensor<72x64xbf16>,
    %ape: tensor<128x72xf32>, %norm: tensor<72xbf16>,
    %s: !v4.compressor_state<batch = 2, ratio = 128, dim = 72>,
    %c: !v4.kv_cache<batch = 2, capacity = 4, dim = 72, ratio = 128, elementType = f32>,
    %pos: tensor<2xi64>) -> !v4.kv_cache<batch = 2, capacity = 4, dim = 72, ratio = 128, elementType = f32> {
  %s1, %c1 = v4.kv.compress %x, %s, %c, %pos weights(%wkv, %wgate, %ape, %norm)
      rope #v4.rope<ropeDim = 8, base = 160000.0, factor = 16.0, originalSeqLen = 65536, betaFast = 32.0, betaSlow = 1.0>
      eps 1.0e-6
      : tensor<2x3x64xf32>, !v4.compressor_state<batch = 2, ratio = 128, dim = 72>,
        !v4.kv_cache<batch = 2, capacity = 4, dim = 72, ratio = 128, elementType = f32>, tensor<2xi64>
      weights(tensor<72x64xbf16>, tensor<72x64xbf16>, tensor<128x72xf32>, tensor<72xbf16>)
  return %c1 : !v4.kv_cache<batch = 2, capacity = 4, dim = 72, ratio = 128, elementType = f32>
}
