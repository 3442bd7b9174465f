//===- V4EngramOps.td - Engram n-gram memory ops ---*- tablegen -*-===//
//
// Engram: n-gram hashing, table lookup, gate into the lanes (V4-SPEC 8).
//
//===----------------------------------------------------------------------===//

#ifndef V4_DIALECTS_V4_V4ENGRAMOPS_TD
#define V4_DIALECTS_V4_V4ENGRAMOPS_TD

include "dialects/V4/V4Base.td"
include "dialects/V4/V4Types.td"
include "dialects/V4/V4Attrs.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

#endif // V4_DIALECTS_V4_V4ENGRAMOPS_TD
