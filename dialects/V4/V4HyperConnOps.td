//===- V4HyperConnOps.td - hyper-connection (mHC) and MTP ops ---*- tablegen -*-===//
//
// Manifold-constrained hyper-connections: lanes, hc_pre with Sinkhorn, hc_post, hc_head; the MTP block's extra pieces (V4-SPEC 4, 7).
//
//===----------------------------------------------------------------------===//

#ifndef V4_DIALECTS_V4_V4HYPERCONNOPS_TD
#define V4_DIALECTS_V4_V4HYPERCONNOPS_TD

include "dialects/V4/V4Base.td"
include "dialects/V4/V4Types.td"
include "dialects/V4/V4Attrs.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

#endif // V4_DIALECTS_V4_V4HYPERCONNOPS_TD
