//===- V4MoEOps.td - mixture-of-experts ops ---*- tablegen -*-===//
//
// MoE gate (sqrt-softplus scores, bias, hash routing), routed experts with clamped SwiGLU, shared expert and combine (V4-SPEC 6).
//
//===----------------------------------------------------------------------===//

#ifndef V4_DIALECTS_V4_V4MOEOPS_TD
#define V4_DIALECTS_V4_V4MOEOPS_TD

include "dialects/V4/V4Base.td"
include "dialects/V4/V4Types.td"
include "dialects/V4/V4Attrs.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

#endif // V4_DIALECTS_V4_V4MOEOPS_TD
