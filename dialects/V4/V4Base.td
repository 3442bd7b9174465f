//===- V4Base.td - v4 dialect definition, base op, enums ---*- tablegen -*-===//
//
// Part of v4c. The v4 dialect expresses the DeepSeek-V4 model family at model
// level with tensor semantics; V4-SPEC (docs/V4-SPEC.md) is its reference.
//
//===----------------------------------------------------------------------===//

#ifndef V4_DIALECTS_V4_V4BASE_TD
#define V4_DIALECTS_V4_V4BASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def V4_Dialect : Dialect {
  let name = "v4";
  let cppNamespace = "::mlir::v4";
  let summary = "Model-level ops of the DeepSeek-V4 family";
  let description = [{
    The `v4` dialect expresses every computation of the DeepSeek-V4 model
    family (V4-Flash, V4-Pro and Engram variants) with tensor semantics:
    compressed sparse attention (CSA) with the lightning indexer, heavily
    compressed attention (HCA), sliding-window attention, fine-grained MoE
    with hash and score routing, manifold-constrained hyper-connections (mHC),
    FP8/FP4 quantisation-aware linear layers and Engram n-gram memory.

    Weights enter the IR as named parameters (`v4.parameter`), never as
    constants. Decode-time state (window ring, compressed caches, compressor
    state, Engram look-back) is a typed SSA value updated functionally, so
    prefill and decode steps can both be written in IR.

    The reference semantics of every op is V4-SPEC; each op's description
    names its section.
  }];
  let useDefaultTypePrinterParser = 1;
  let useDefaultAttributePrinterParser = 1;
  let extraClassDeclaration = [{
    void registerTypes();
    void registerAttributes();
  }];
}

class V4_Op<string mnemonic, list<Trait> traits = []>
    : Op<V4_Dialect, mnemonic, traits>;

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def V4_QuantFormat : I32EnumAttr<"QuantFormat",
    "low-precision format of a fake-quantisation point (V4-SPEC 2.3)", [
      I32EnumAttrCase<"fp8_e4m3", 0>,
      I32EnumAttrCase<"fp4_e2m1", 1>
    ]> {
  let cppNamespace = "::mlir::v4";
  let genSpecializedAttr = 0;
}
def V4_QuantFormatAttr : EnumAttr<V4_Dialect, V4_QuantFormat, "quant_format">;

def V4_Precision : I32EnumAttr<"Precision",
    "precision an op evaluates in (V4-SPEC 2.1, 5.1)", [
      I32EnumAttrCase<"f32", 0>,
      I32EnumAttrCase<"input", 1>
    ]> {
  let cppNamespace = "::mlir::v4";
  let genSpecializedAttr = 0;
}
def V4_PrecisionAttr : EnumAttr<V4_Dialect, V4_Precision, "precision">;

def V4_ScoreFunc : I32EnumAttr<"ScoreFunc",
    "MoE gate scoring function (V4-SPEC 6.1)", [
      I32EnumAttrCase<"sqrtsoftplus", 0>,
      I32EnumAttrCase<"sigmoid", 1>,
      I32EnumAttrCase<"softmax", 2>
    ]> {
  let cppNamespace = "::mlir::v4";
  let genSpecializedAttr = 0;
}
def V4_ScoreFuncAttr : EnumAttr<V4_Dialect, V4_ScoreFunc, "score_func">;

#endif // V4_DIALECTS_V4_V4BASE_TD
