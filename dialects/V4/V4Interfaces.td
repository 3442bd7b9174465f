//===- V4Interfaces.td - v4 op interfaces ------------------*- tablegen -*-===//
//
// Part of v4c. Interfaces the lowering reads off v4 ops instead of guessing.
//
//===----------------------------------------------------------------------===//

#ifndef V4_DIALECTS_V4_V4INTERFACES_TD
#define V4_DIALECTS_V4_V4INTERFACES_TD

include "mlir/IR/OpBase.td"

def V4_TiedResultsOpInterface : OpInterface<"TiedResultsOpInterface"> {
  let cppNamespace = "::mlir::v4";
  let description = [{
    An op whose results include an updated copy of one of its operands (the
    decode state: window ring, compressed cache, compressor state, Engram
    look-back, short-conv state). In value semantics the result is a new
    value; a backend may update the operand's storage in place, which is
    what dispatch formation does: a tied result gets no buffer of its own and
    no kernel argument, the kernel writes into the tied operand's buffers.
    A kernel lowered for a tied op must therefore be correct when it reads
    and writes the same storage (it reads every element it needs before it
    overwrites it, or works on a copy). Idea and name from IREE's
    `TiedOpInterface`.
  }];
  let methods = [
    InterfaceMethod<[{
        Returns the index of the operand that result `resultIndex` updates in
        place, or std::nullopt for a fresh result.
      }], "::std::optional<unsigned>", "getTiedOperandIndex",
      (ins "unsigned":$resultIndex)>,
  ];
}

#endif // V4_DIALECTS_V4_V4INTERFACES_TD
