//===- DType.h - the one element type enum of the runtime -------*- C++ -*-===//
//
// Every element type a buffer, a parameter or a checkpoint tensor can have,
// with its name, its safetensors spelling and its bit width. The numeric
// values are the artifact schema's (runtime/schema/v4_artifact.fbs, enum
// DType), so the artifact library stores them as they are. Sub-byte types
// (F4E2M1) are packed two per byte, low nibble first. No MLIR/LLVM: the
// compiler maps MLIR types to it in one place (dialects/V4/V4StorageLayout).
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_BASE_DTYPE_H
#define V4_RUNTIME_BASE_DTYPE_H

#include <cstdint>
#include <optional>
#include <string_view>

namespace v4 {

enum class DType : uint8_t {
  BF16 = 0,
  F16 = 1,
  F32 = 2,
  F8E4M3 = 3,
  F8E8M0 = 4,
  F4E2M1 = 5,
  I8 = 6,
  I32 = 7,
  I64 = 8,
  U8 = 9,
};

/// The largest enumerator (values above it are invalid in any input).
constexpr DType kLastDType = DType::U8;

/// Whether `value` is an enumerator of DType.
constexpr bool isValidDType(uint8_t value) {
  return value <= static_cast<uint8_t>(kLastDType);
}

/// The artifact and diagnostic name, e.g. "bf16", "f8e4m3"; "?" if invalid.
const char *dtypeName(DType dtype);
/// The safetensors spelling, e.g. "BF16", "F8_E4M3", "F4"; "?" if invalid.
const char *safetensorsDTypeName(DType dtype);
/// Parses a safetensors dtype string; nullopt when it is not one of ours.
std::optional<DType> parseSafetensorsDType(std::string_view name);

/// Bits per element (4 for F4E2M1); 0 if invalid.
unsigned dtypeBits(DType dtype);
/// Elements per byte when packed (2 for F4E2M1), else 1.
inline unsigned dtypeElementsPerByte(DType dtype) {
  unsigned bits = dtypeBits(dtype);
  return bits != 0 && bits < 8 ? 8 / bits : 1;
}
/// Byte alignment a tensor of this dtype needs; 1 for sub-byte types.
inline unsigned dtypeAlignment(DType dtype) {
  unsigned bytes = dtypeBits(dtype) / 8;
  return bytes == 0 ? 1 : bytes;
}

} // namespace v4

#endif // V4_RUNTIME_BASE_DTYPE_H
