//===- DType.cpp - names and widths of the element types ------------------===//

#include "runtime/base/DType.h"

namespace v4 {
namespace {
struct Row {
  DType dtype;
  const char *name;
  const char *safetensors;
  unsigned bits;
};
/// Indexed by the enum value.
constexpr Row kRows[] = {
    {DType::BF16, "bf16", "BF16", 16},
    {DType::F16, "f16", "F16", 16},
    {DType::F32, "f32", "F32", 32},
    {DType::F8E4M3, "f8e4m3", "F8_E4M3", 8},
    {DType::F8E8M0, "f8e8m0", "F8_E8M0", 8},
    {DType::F4E2M1, "f4e2m1", "F4", 4},
    {DType::I8, "i8", "I8", 8},
    {DType::I32, "i32", "I32", 32},
    {DType::I64, "i64", "I64", 64},
    {DType::U8, "u8", "U8", 8},
};
static_assert(sizeof(kRows) / sizeof(kRows[0]) ==
                  static_cast<size_t>(kLastDType) + 1,
              "one row per DType");

const Row *row(DType dtype) {
  uint8_t v = static_cast<uint8_t>(dtype);
  return isValidDType(v) ? &kRows[v] : nullptr;
}
} // namespace

const char *dtypeName(DType dtype) {
  const Row *r = row(dtype);
  return r ? r->name : "?";
}

const char *safetensorsDTypeName(DType dtype) {
  const Row *r = row(dtype);
  return r ? r->safetensors : "?";
}

std::optional<DType> parseSafetensorsDType(std::string_view name) {
  for (const Row &r : kRows)
    if (name == r.safetensors)
      return r.dtype;
  return std::nullopt;
}

unsigned dtypeBits(DType dtype) {
  const Row *r = row(dtype);
  return r ? r->bits : 0;
}

} // namespace v4
