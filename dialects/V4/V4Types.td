//===- V4Types.td - v4 decode-state types ------------------*- tablegen -*-===//
//
// Decode-time state as typed SSA values (V4-SPEC 9.1). State values are
// updated functionally: an op that writes state takes the old value and
// returns the new one, so prefill and decode steps are plain dataflow.
//
//===----------------------------------------------------------------------===//

#ifndef V4_DIALECTS_V4_V4TYPES_TD
#define V4_DIALECTS_V4_V4TYPES_TD

include "dialects/V4/V4Base.td"
include "mlir/IR/BuiltinTypeInterfaces.td"

class V4_Type<string name, string typeMnemonic, list<Trait> traits = []>
    : TypeDef<V4_Dialect, name, traits> {
  let mnemonic = typeMnemonic;
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def V4_WindowRingType : V4_Type<"WindowRing", "window_ring"> {
  let summary = "sliding-window KV ring of the last `slots` tokens";
  let description = [{
    The raw KV (after kv_norm, RoPE and FP8 fake-quant) of the last `slots`
    tokens of each of `batch` sequences; the token at position p lives in slot
    `p mod slots` (V4-SPEC 5.2, 9.1). Element type bf16 in the reference.

    ```mlir
    !v4.window_ring<batch = 1, slots = 128, dim = 512, elementType = bf16>
    ```
  }];
  let parameters = (ins "int64_t":$batch, "int64_t":$slots, "int64_t":$dim,
                        "::mlir::Type":$elementType);
}

def V4_KVCacheType : V4_Type<"KVCache", "kv_cache"> {
  let summary = "compressed KV (or indexer key) cache of `capacity` entries";
  let description = [{
    Compressed entries of one layer: entry b at row b (V4-SPEC 9.1). The main
    compressor's cache has `dim` = head_dim (512) and holds post-norm, RoPE
    and FP8-fake-quant values; the indexer's cache has `dim` =
    index_head_dim (128) and holds Hadamard-rotated FP4-fake-quant keys.
    `capacity` = floor(S_max / ratio), where S_max is the compiled maximum
    context, and `ratio` is the compression ratio that fills it.

    ```mlir
    !v4.kv_cache<batch = 1, capacity = 1024, dim = 512, ratio = 4, elementType = bf16>
    ```
  }];
  let parameters = (ins "int64_t":$batch, "int64_t":$capacity, "int64_t":$dim,
                        "int64_t":$ratio, "::mlir::Type":$elementType);
}

def V4_CompressorStateType : V4_Type<"CompressorState", "compressor_state"> {
  let summary = "rolling state of a KV compressor (partial blocks)";
  let description = [{
    The fp32 `kv_state` and `score_state` of one compressor (V4-SPEC 9.1,
    9.2). For ratio 4 the compressor overlaps (coff = 2): both buffers are
    [2*ratio, 2*dim] per sequence (rows 0..r-1 hold the previous complete
    block, rows r..2r-1 the current partial block). Any other ratio is
    non-overlapping: [ratio, dim] per sequence. `dim` is the compressor's
    output width c (512 for attention, index_head_dim for the indexer).

    ```mlir
    !v4.compressor_state<batch = 1, ratio = 4, dim = 512>
    ```
  }];
  let parameters = (ins "int64_t":$batch, "int64_t":$ratio, "int64_t":$dim);
  let extraClassDeclaration = [{
    /// Whether this compressor overlaps consecutive blocks (ratio == 4).
    bool isOverlapping() const { return getRatio() == 4; }
    /// 1 + overlap: the projection width factor of V4-SPEC 5.3.
    int64_t getCoff() const { return isOverlapping() ? 2 : 1; }
    /// Rows of kv_state/score_state per sequence.
    int64_t getRows() const { return getCoff() * getRatio(); }
    /// Columns of kv_state/score_state per sequence (coff * dim).
    int64_t getWidth() const { return getCoff() * getDim(); }
  }];
}

def V4_EngramStateType : V4_Type<"EngramState", "engram_state"> {
  let summary = "Engram hash look-back: the last N-1 compressed token ids";
  let description = [{
    Per sequence, the last `lookback` = N-1 compressed token ids, shared by
    all Engram layers (V4-SPEC 8.8). Positions before the sequence start read
    the pad id.

    ```mlir
    !v4.engram_state<batch = 1, lookback = 2>
    ```
  }];
  let parameters = (ins "int64_t":$batch, "int64_t":$lookback);
}

#endif // V4_DIALECTS_V4_V4TYPES_TD
