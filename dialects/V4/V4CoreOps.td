//===- V4CoreOps.td - core ops: parameters, embedding, norms, RoPE, linear layers ---*- tablegen -*-===//
//
// Parameters, embedding, RMSNorm, RoPE, linear layers with FP8/FP4 weights, fake-quantisation and the Hadamard rotation (V4-SPEC 2, 3).
//
//===----------------------------------------------------------------------===//

#ifndef V4_DIALECTS_V4_V4COREOPS_TD
#define V4_DIALECTS_V4_V4COREOPS_TD

include "dialects/V4/V4Base.td"
include "dialects/V4/V4Types.td"
include "dialects/V4/V4Attrs.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

//===----------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------===//

def V4_ParameterOp : V4_Op<"parameter", [Pure]> {
  let summary = "a model weight, referenced by its checkpoint tensor name";
  let description = [{
    Produces the value of the checkpoint tensor `name` (V4-SPEC 1.4). Weights
    are never embedded in the IR; the runtime binds them by name at load time
    and checks the declared type against the checkpoint.

    The result type states the logical dtype: FP8 weights are `f8E4M3FN`,
    their block scales `f8E8M0FNU`, packed FP4 expert weights are logical
    `f4E2M1FN` tensors with their full K extent (the checkpoint packs two per
    byte), token-to-expert tables are integer tensors.

    ```mlir
    %w = v4.parameter "layers.0.attn.wq_a.weight" : tensor<1024x4096xf8E4M3FN>
    ```
  }];
  let arguments = (ins StrAttr:$name);
  let results = (outs AnyStaticShapeTensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def V4_ParameterStackOp : V4_Op<"parameter_stack", [Pure]> {
  let summary = "per-expert weights stacked along a new leading dimension";
  let description = [{
    Produces the checkpoint tensors whose names follow `pattern` with `{}`
    replaced by 0, 1, ..., count-1, stacked along a new leading dimension of
    size `count`. This is how the routed experts' weights
    (`layers.L.ffn.experts.e.w1.weight`, V4-SPEC 1.4) enter the IR as one
    value for the grouped expert op, instead of 3 x 2 x E separate
    parameters. Every member has the type of the result without its leading
    dimension.

    ```mlir
    %w1 = v4.parameter_stack "layers.3.ffn.experts.{}.w1.weight" count 256
        : tensor<256x2048x4096xf4E2M1FN>
    ```
  }];
  let arguments = (ins StrAttr:$pattern, I64Attr:$count);
  let results = (outs AnyStaticShapeTensor:$result);
  let assemblyFormat = "$pattern `count` $count attr-dict `:` type($result)";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The checkpoint name of member `index`.
    std::string getMemberName(int64_t index);
  }];
}

#endif // V4_DIALECTS_V4_V4COREOPS_TD
