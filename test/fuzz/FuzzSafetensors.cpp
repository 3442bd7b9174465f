//===- FuzzSafetensors.cpp - fuzz-safetensors: bytes through ST-1..12 -----===//
//
// Bytes -> safetensors::parseBuffer (ST-1..ST-11) -> ST-12 against a fixed
// manifest (the tiny model's two parameters) -> every tensor's bytes read,
// so a layout the parser accepts but that points outside the file shows up
// under ASan. Then the writer -> reader round trip: what the reader
// accepted is written again with safetensors::serialize (tensors and
// __metadata__) and read back, and must come back the same (names, dtypes,
// shapes, bytes, metadata); a file the reader accepts that the writer
// refuses is a finding too. The writer serializes in memory
// (safetensors::serialize, the bytes writeFile writes), so no file system
// error can pass for a finding.
//
//===----------------------------------------------------------------------===//
#include "runtime/safetensors/Safetensors.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace st = v4::safetensors;

namespace {

[[noreturn]] void finding(const std::string &what) {
  std::fprintf(stderr, "fuzz-safetensors: round trip: %s\n", what.c_str());
  __builtin_trap();
}

/// Serializes `layout`'s tensors (their bytes in `bytes`) and metadata with
/// the writer (in memory: the same bytes writeFile writes, with no file
/// system under the fuzzer), parses them back and compares.
void roundTrip(const st::FileLayout &layout, const uint8_t *bytes) {
  std::vector<st::TensorData> tensors;
  for (const st::TensorInfo &t : layout.tensors)
    tensors.push_back({t.name, t.dtype, t.shape,
                       bytes + layout.dataOffset + t.begin, t.byteSize()});
  st::WriteOptions options;
  options.metadata = layout.metadata;
  auto written = st::serialize(tensors, options);
  if (!written)
    finding("the writer refused what the reader accepted: " +
            written.status().message());
  std::vector<uint64_t> aligned((written->size() + 7) / 8);
  if (!written->empty())
    std::memcpy(aligned.data(), written->data(), written->size());
  auto back =
      st::parseBuffer("written.safetensors", aligned.data(), written->size());
  if (!back)
    finding("the reader refused what the writer wrote: " +
            back.status().message());
  if (back->metadata != layout.metadata)
    finding("__metadata__ differs");
  if (back->tensors.size() != layout.tensors.size())
    finding("tensor count differs");
  const auto *again = reinterpret_cast<const uint8_t *>(aligned.data());
  for (size_t i = 0; i < layout.tensors.size(); ++i) {
    const st::TensorInfo &a = layout.tensors[i], &b = back->tensors[i];
    if (a.name != b.name || a.dtype != b.dtype || a.shape != b.shape ||
        a.byteSize() != b.byteSize() ||
        (a.byteSize() &&
         std::memcmp(bytes + layout.dataOffset + a.begin,
                     again + back->dataOffset + b.begin, a.byteSize()) != 0))
      finding("tensor " + a.name + " differs");
  }
}

} // namespace

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
  roundTrip(*layout, bytes);
  return 0;
}
