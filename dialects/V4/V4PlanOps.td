//===- V4PlanOps.td - the host plan after dispatch formation -*- tablegen -*-===//
//
// Part of v4c. After dispatch formation (lowering/Dispatch) the host
// functions @init_state and @step are a plan: a sequence of kernel
// dispatches over buffers (memrefs). Activations are memref.alloc, decode
// state and step inputs are function arguments, weights are
// v4.plan.parameter. The artifact's plan is serialized from this IR.
//
//===----------------------------------------------------------------------===//

#ifndef V4_DIALECTS_V4_V4PLANOPS_TD
#define V4_DIALECTS_V4_V4PLANOPS_TD

include "dialects/V4/V4Base.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def V4_PlanParameterOp : V4_Op<"plan.parameter", [Pure]> {
  let summary = "the buffer a named checkpoint tensor is bound to";
  let description = [{
    The storage buffer of the weight `name` (a checkpoint tensor name, or a
    `{}` pattern for a stack of per-expert tensors: member e is slice e of
    the buffer). `logicalType` is the parameter's type in the model
    (`f8E4M3FN`, `f4E2M1FN`, ...), from which the checkpoint dtype and shape
    follow (dialects/V4/V4StorageLayout.h); the result is its storage
    memref. The runtime binds the buffer at load time. A stack with
    `shards` = N is the running rank r's shard of N (`v4.parameter_stack`):
    member e is the checkpoint tensor of index r * (leading dim) + e, zeros
    from index `members` on. A single tensor with `shards` = N and
    `slice` D is rank r's slice along D (`v4.parameter ... slice`; with
    `blocks bl of bg` for block scales).

    ```mlir
    %w = v4.plan.parameter "layers.0.attn.wq_a.weight"
           as tensor<64x256xf8E4M3FN> : memref<64x256xi8>
    ```
  }];
  let arguments = (ins StrAttr:$name, TypeAttr:$logicalType,
                       OptionalAttr<I64Attr>:$shards,
                       OptionalAttr<I64Attr>:$members,
                       OptionalAttr<I64Attr>:$sliceDim,
                       OptionalAttr<I64Attr>:$sliceBlock,
                       OptionalAttr<I64Attr>:$sliceBlockOf);
  let results = (outs AnyStaticShapeMemRef:$buffer);
  let assemblyFormat = [{
    $name `as` $logicalType (`shards` $shards^)? (`of` $members^)?
    (`slice` $sliceDim^ (`blocks` $sliceBlock^ `of` $sliceBlockOf)?)?
    attr-dict `:` type($buffer)
  }];
  let hasVerifier = 1;
}

def V4_PlanDispatchOp : V4_Op<"plan.dispatch",
    [DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "runs one kernel over buffers";
  let description = [{
    Runs the kernel `kernel` (a symbol in the nested kernels module) once,
    with `buffers` as its arguments in order: the storage buffers of the
    kernel's operands, then those of its fresh (untied) results. A result
    tied to an operand (TiedResultsOpInterface) has no buffer: the kernel
    updates the operand's buffers in place. The token count of the call is
    the dynamic size of the buffers.

    ```mlir
    v4.plan.dispatch @kernels::@k3_rms_norm(%x, %w, %y)
      : memref<1x?x64xbf16>, memref<64xf32>, memref<1x?x64xbf16>
    ```
  }];
  let arguments = (ins SymbolRefAttr:$kernel,
                       Variadic<AnyRankedOrUnrankedMemRef>:$buffers);
  let assemblyFormat = [{
    $kernel `(` $buffers `)` attr-dict `:` type($buffers)
  }];
}

def V4_PlanCollectiveOp : V4_Op<"plan.collective"> {
  let summary = "a collective over buffers of every rank";
  let description = [{
    Runs the collective `kind` with every other rank of the world (the plan
    form of the `v4.comm` ops):

    * `all_reduce_sum(%b)`: `v4.comm.all_reduce`, in place;
    * `all_gather(%in, %out)`: `v4.comm.all_gather`, %out holding world
      times %in's elements;
    * `reduce_scatter_sum(%in, %out)`: `v4.comm.reduce_scatter`, %in
      holding world times %out's elements;
    * `all_to_all(%counts, %in, %recvCounts, %out)`:
      `v4.comm.all_to_all`, %counts and %recvCounts [world] i64, %in and
      %out of one type.

    Element counts follow from the buffers' sizes (a token dim is the
    call's token count).

    ```mlir
    v4.plan.collective "all_reduce_sum"(%y) : memref<1x?x6x64xbf16>
    v4.plan.collective "all_gather"(%x, %all) : memref<1x?x64xbf16>, memref<2x?x64xbf16>
    ```
  }];
  let arguments = (ins StrAttr:$kind,
                       Variadic<AnyRankedOrUnrankedMemRef>:$buffers);
  let assemblyFormat = [{
    $kind `(` $buffers `)` attr-dict `:` type($buffers)
  }];
  let hasVerifier = 1;
}

def V4_KernelStoreOp : V4_Op<"kernel.store", [Pure,
    AllTypesMatch<["value", "dest", "result"]>]> {
  let summary = "the destination a kernel writes a result into";
  let description = [{
    Destination-passing style for the outlined kernels of dispatch
    formation: `value`, a result of the kernel's op, is written into `dest`,
    a kernel argument (an output buffer, or for a tied result the operand it
    updates in place). The result is `dest` after the write. Its operands
    may be tensors or decode-state values; lowering turns it into one
    `bufferization.materialize_in_destination` per storage tensor, so the
    bufferized kernel writes straight into its argument buffers.

    ```mlir
    %y = v4.rms_norm %x, %w eps 1.0e-6 : ...
    %r = v4.kernel.store %y into %out : tensor<1x?x64xbf16>
    ```
  }];
  let arguments = (ins AnyType:$value, AnyType:$dest);
  let results = (outs AnyType:$result);
  let assemblyFormat = [{
    $value `into` $dest attr-dict `:` type($value)
  }];
}

#endif // V4_DIALECTS_V4_V4PLANOPS_TD
