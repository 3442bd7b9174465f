//===- FuzzSafetensors.cpp - fuzz-safetensors: bytes through ST-1..12 -----===//
//
// Bytes -> safetensors::parseBuffer (ST-1..ST-11) -> ST-12 against a fixed
// manifest (the tiny model's two parameters) -> every tensor's bytes read,
// so a layout the parser accepts but that points outside the file shows up
// under ASan.
//
//===----------------------------------------------------------------------===//
#include "runtime/safetensors/Safetensors.h"

#include <cstdint>
#include <cstring>
#include <vector>

namespace st = v4::safetensors;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  // parseBuffer judges alignment as if the data were 8-byte aligned.
  std::vector<uint64_t> aligned((size + 7) / 8);
  if (size)
    std::memcpy(aligned.data(), data, size);
  auto layout = st::parseBuffer("fuzz.safetensors", aligned.data(), size);
  if (!layout)
    return 0;
  const auto *bytes = reinterpret_cast<const uint8_t *>(aligned.data());
  volatile uint8_t sink = 0;
  for (const st::TensorInfo &t : layout->tensors) {
    uint64_t at = layout->dataOffset + t.begin,
             end = layout->dataOffset + t.end;
    if (at > end || end > size)
      __builtin_trap(); // ST-8/ST-9 promise the data lies inside the file
    for (uint64_t i = at; i < end; ++i)
      sink = sink ^ bytes[i];
  }
  static const std::vector<st::ManifestEntry> manifest = {
      {"embed.weight", v4::DType::BF16, {32, 8}},
      {"norm.weight", v4::DType::F32, {8}}};
  (void)st::checkManifest("fuzz.safetensors", layout->tensors, manifest);
  return 0;
}
