//===- V4CompressionOps.td - KV compressor and lightning indexer ops ---*- tablegen -*-===//
//
// The gated KV compressor (overlapping 4:1 and non-overlapping r:1), the lightning indexer scores and causal top-k selection (V4-SPEC 5.3, 5.5, 9.2).
//
//===----------------------------------------------------------------------===//

#ifndef V4_DIALECTS_V4_V4COMPRESSIONOPS_TD
#define V4_DIALECTS_V4_V4COMPRESSIONOPS_TD

include "dialects/V4/V4Base.td"
include "dialects/V4/V4Types.td"
include "dialects/V4/V4Attrs.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

#endif // V4_DIALECTS_V4_V4COMPRESSIONOPS_TD
