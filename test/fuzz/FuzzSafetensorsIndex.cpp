//===- FuzzSafetensorsIndex.cpp - fuzz-safetensors-index: ST-14..16 -------===//
//
// Bytes -> model.safetensors.index.json of a directory that holds two valid
// shards (written once with safetensors::writeSharded) -> Reader::open of
// the directory (ST-14 index schema, ST-15 shard names, ST-16 each tensor in
// exactly the shard named) -> every tensor's bytes through the Reader.
// Shard names in the input may try to leave the directory ("../", "/"):
// they must be refused, never opened.
//
//===----------------------------------------------------------------------===//
#include "runtime/safetensors/Safetensors.h"

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace st = v4::safetensors;
namespace fs = std::filesystem;

namespace {

struct Fixture {
  std::string dir, index;
  Fixture() {
    dir = (fs::temp_directory_path() /
           ("v4-fuzz-index-" + std::to_string(::getpid())))
              .string();
    fs::create_directories(dir);
    static const uint8_t bytes[64] = {1, 2, 3, 4, 5, 6, 7, 8};
    v4::Status s =
        st::writeSharded(dir,
                         {{"a.weight", v4::DType::F32, {2, 4}, bytes, 32},
                          {"b.weight", v4::DType::BF16, {4}, bytes, 8},
                          {"c.scale", v4::DType::F8E8M0, {3}, bytes, 3}},
                         2);
    if (!s.ok()) {
      std::fprintf(stderr, "fuzz-safetensors-index: %s\n", s.message().c_str());
      std::abort();
    }
    index = dir + "/" + st::kIndexFileName;
  }
  ~Fixture() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static Fixture f;
  {
    std::ofstream out(f.index, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char *>(data), std::streamsize(size));
  }
  auto reader = st::Reader::open(f.dir);
  if (!reader)
    return 0;
  std::vector<uint8_t> buffer;
  for (const st::TensorInfo &t : reader->tensors()) {
    buffer.resize(t.end - t.begin);
    (void)reader->copyTensor(t.name, buffer.data(), buffer.size());
  }
  (void)reader->indexTotalSize();
  return 0;
}
