//===- V4AttentionOps.td - attention ops: window, sink attention, state ---*- tablegen -*-===//
//
// Sliding-window indices, sink attention, output projection and the decode-state (window ring, caches) ops (V4-SPEC 5.1, 5.2, 5.4, 5.6-5.8, 9).
//
//===----------------------------------------------------------------------===//

#ifndef V4_DIALECTS_V4_V4ATTENTIONOPS_TD
#define V4_DIALECTS_V4_V4ATTENTIONOPS_TD

include "dialects/V4/V4Base.td"
include "dialects/V4/V4Types.td"
include "dialects/V4/V4Attrs.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

#endif // V4_DIALECTS_V4_V4ATTENTIONOPS_TD
