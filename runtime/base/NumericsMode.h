//===- NumericsMode.h - the numerics a model is compiled in -----*- C++ -*-===//
//
// The settings that say which rounding points a compiled model (and the
// reference) applies (issue 9), and in which order its kernels sum:
//  - NumericsMode: `production` = the bf16 rounding points of V4-SPEC 2.6
//    with fp32 accumulation; `fp32` = every intermediate value kept in fp32,
//    weights dequantised exactly, no bf16 rounding point.
//  - FakeQuantMode: which V4-SPEC 2.3-2.5 fake quantisation points run:
//    `all` (FP8 activation quant before the FP8/FP4 GEMMs, FP8 KV, FP4
//    indexer), `kv` (only the KV and indexer points), `none`.
//  - SumOrder: `reference` = every dot product summed in the reference's
//    order (test/reference; the compiled logits are bit-identical to it);
//    `fast` = the one-row (decode) GEMVs sum along K in vector lanes with
//    fused multiply-adds and apply the block scales per part, within the
//    tolerance of docs/PERFORMANCE.md (issue 8).
// The numeric values are the artifact schema's (enums NumericsMode,
// FakeQuantMode and SumOrder in runtime/schema/v4_artifact.fbs). Plain C++17.
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_BASE_NUMERICSMODE_H
#define V4_RUNTIME_BASE_NUMERICSMODE_H

#include <cstdint>
#include <optional>
#include <string_view>

namespace v4 {

enum class NumericsMode : uint8_t { Production = 0, FP32 = 1 };
enum class FakeQuantMode : uint8_t { All = 0, KV = 1, None = 2 };
enum class SumOrder : uint8_t { Reference = 0, Fast = 1 };

/// "production" / "fp32".
inline const char *numericsModeName(NumericsMode mode) {
  return mode == NumericsMode::FP32 ? "fp32" : "production";
}
/// "all" / "kv" / "none".
inline const char *fakeQuantModeName(FakeQuantMode mode) {
  switch (mode) {
  case FakeQuantMode::All:
    return "all";
  case FakeQuantMode::KV:
    return "kv";
  case FakeQuantMode::None:
    return "none";
  }
  return "?";
}
/// "reference" / "fast".
inline const char *sumOrderName(SumOrder order) {
  return order == SumOrder::Fast ? "fast" : "reference";
}
inline std::optional<SumOrder> parseSumOrder(std::string_view s) {
  if (s == "reference")
    return SumOrder::Reference;
  if (s == "fast")
    return SumOrder::Fast;
  return std::nullopt;
}
inline std::optional<NumericsMode> parseNumericsMode(std::string_view s) {
  if (s == "production")
    return NumericsMode::Production;
  if (s == "fp32")
    return NumericsMode::FP32;
  return std::nullopt;
}
inline std::optional<FakeQuantMode> parseFakeQuantMode(std::string_view s) {
  if (s == "all")
    return FakeQuantMode::All;
  if (s == "kv")
    return FakeQuantMode::KV;
  if (s == "none")
    return FakeQuantMode::None;
  return std::nullopt;
}
/// Whether the FP8 activation quantisation before FP8/FP4 GEMMs runs.
inline bool quantizesActivations(FakeQuantMode mode) {
  return mode == FakeQuantMode::All;
}
/// Whether the FP8 KV and FP4 indexer fake quantisation runs.
inline bool fakeQuantizesKV(FakeQuantMode mode) {
  return mode != FakeQuantMode::None;
}

} // namespace v4

#endif // V4_RUNTIME_BASE_NUMERICSMODE_H
