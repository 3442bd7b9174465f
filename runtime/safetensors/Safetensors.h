//===- Safetensors.h - validated safetensors reader and writer --*- C++ -*-===//
//
// A safetensors library shared by the frontend and the runtime. It links no
// MLIR or LLVM, throws no exceptions across its API and validates every input
// per docs/RELIABILITY.md section 2.4 before any tensor byte is read:
//
//   ST-1   regular file of >= 8 bytes
//   ST-2   header length <= the cap (100,000,000 bytes)
//   ST-3   8 + header length (overflow-checked) <= file size
//   ST-4   header is valid UTF-8, starts with '{', is JSON of bounded depth
//   ST-5   no duplicate tensor names (nor duplicate keys anywhere)
//   ST-6   each entry has exactly dtype (whitelisted), shape (non-negative
//          integers) and two data_offsets
//   ST-7   elements and bytes overflow-checked, sub-byte dtypes fill whole
//          bytes, bytes == end - begin
//   ST-8   begin <= end
//   ST-9   sorted by begin: first at 0, contiguous, last end == data size
//   ST-10  __metadata__ is a flat string -> string map
//   ST-11  every tensor's absolute offset is aligned for its dtype
//   ST-12  names, dtypes and shapes match a parameter manifest
//   ST-13  the file size is re-checked after mapping
//   ST-14  model.safetensors.index.json is valid: JSON object with a
//          weight_map of string -> string (and an optional metadata object)
//   ST-15  index shard names are plain names in the model directory
//          (no '/', no "..") and the shards exist
//   ST-16  every tensor lies in exactly the shard the index names: none
//          missing, none unlisted, none in two shards
//
// Errors are Status values whose message names the file, the tensor, a byte
// offset where useful, and ends in the rule id, e.g. "[ST-7]". Non-rule
// failures use "IO" (system call failed) or "ARG" (bad caller argument).
//
//===----------------------------------------------------------------------===//

#ifndef V4_RUNTIME_SAFETENSORS_SAFETENSORS_H
#define V4_RUNTIME_SAFETENSORS_SAFETENSORS_H

#include "runtime/base/DType.h"
#include "runtime/base/Status.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace v4::safetensors {

//===----------------------------------------------------------------------===//
// Status and Expected
//===----------------------------------------------------------------------===//

/// The runtime's one Status/Expected (runtime/base/Status.h).
using ::v4::Expected;
using ::v4::Status;
using ::v4::StatusCode;

//===----------------------------------------------------------------------===//
// Dtypes
//===----------------------------------------------------------------------===//

/// The runtime's one element type (runtime/base/DType.h). The safetensors
/// whitelist is every DType (V4-SPEC section 1.4, plus F4 so that sub-byte
/// checkpoints are read and checked rather than rejected); I8/U8 also carry
/// packed FP4 (two e2m1 values per byte, shape already halved). Spelled the
/// safetensors way ("F8_E4M3") in headers and messages.
using ::v4::DType;
using ::v4::dtypeAlignment;
using ::v4::dtypeBits;
using ::v4::parseSafetensorsDType;
using ::v4::safetensorsDTypeName;

//===----------------------------------------------------------------------===//
// Reading
//===----------------------------------------------------------------------===//

struct TensorInfo {
  std::string name;
  std::vector<int64_t> shape;
  uint64_t numElements = 0;
  /// data_offsets, relative to the start of the data section.
  uint64_t begin = 0;
  uint64_t end = 0;
  /// Absolute offset of the first byte in the file (8 + header + begin).
  uint64_t fileOffset = 0;
  /// Offset of the tensor's key inside the header JSON (for diagnostics).
  uint64_t headerByte = 0;
  /// Index in Reader::shards() of the shard holding the tensor (its path:
  /// Reader::shards()[shardIndex]; not a copy per tensor, so that a header
  /// at its cap costs at most 4x its size).
  uint32_t shardIndex = 0;
  DType dtype = DType::F32;
  /// False only when ReaderOptions::allowMisaligned let a misaligned tensor
  /// through; such tensors are read with Reader::copyTensor only.
  bool aligned = true;

  uint64_t byteSize() const { return end - begin; }
};

struct ReaderOptions {
  /// ST-2: largest accepted header (the reference implementation's cap).
  uint64_t maxHeaderBytes = 100000000;
  /// ST-4: deepest accepted JSON nesting (the valid schema needs 3).
  unsigned maxJsonDepth = 16;
  /// ST-14: largest accepted model.safetensors.index.json, read in one SAX
  /// pass; real ones are a few MB (~100 bytes a tensor).
  uint64_t maxIndexBytes = uint64_t(64) << 20;
  /// ST-11: accept misaligned tensors (flagged, copy-only) instead of
  /// rejecting the file.
  bool allowMisaligned = false;
  /// ST-13 opt-in copy mode: read files into memory instead of mapping them,
  /// so later changes to the files cannot fault the process.
  bool copyIntoMemory = false;
  /// Fault-injection hook for tests: called with the path after a file is
  /// mapped (or read) and before its size is re-checked.
  std::function<void(const std::string &path)> afterMapHook;
};

/// The validated layout of one safetensors file.
struct FileLayout {
  uint64_t fileSize = 0;
  uint64_t headerSize = 0;
  /// 8 + headerSize: where the data section starts.
  uint64_t dataOffset = 0;
  /// Sorted by name; shardIndex is left 0.
  std::vector<TensorInfo> tensors;
  std::map<std::string, std::string> metadata;
};

/// Validates a complete in-memory safetensors file (ST-1..ST-11). `source`
/// names it in errors. Alignment (ST-11) is judged on file offsets, i.e. as
/// if `data` were at least 8-byte aligned. Used by the reader and the fuzzer.
Expected<FileLayout> parseBuffer(std::string_view source, const void *data,
                                 size_t size,
                                 const ReaderOptions &options = {});

struct ByteSpan {
  const uint8_t *data = nullptr;
  size_t size = 0;
};

/// A read-only, validated view of a checkpoint: one `.safetensors` file, or a
/// sharded checkpoint given as its directory or its index.json. Immutable
/// after open and safe to share across threads. Do not modify the files while
/// a Reader maps them (use ReaderOptions::copyIntoMemory if you must).
class Reader {
public:
  /// Opens `path`: a `.safetensors` file, a `*.index.json` file, or a
  /// directory holding `model.safetensors.index.json` or `model.safetensors`.
  static Expected<Reader> open(const std::string &path,
                               const ReaderOptions &options = {});

  Reader(Reader &&) noexcept;
  Reader &operator=(Reader &&) noexcept;
  Reader(const Reader &) = delete;
  Reader &operator=(const Reader &) = delete;
  ~Reader();

  /// The path given to open().
  const std::string &path() const;
  /// All tensors of all shards, sorted by name.
  const std::vector<TensorInfo> &tensors() const;
  /// nullptr when absent.
  const TensorInfo *find(std::string_view name) const;
  /// Pointer and size of a tensor's bytes inside the mapping; ST-11 error for
  /// a tensor accepted misaligned, "ARG" for an unknown name.
  Expected<ByteSpan> data(std::string_view name) const;
  /// Copies a tensor's bytes to `dst` (works for misaligned tensors too).
  Status copyTensor(std::string_view name, void *dst, size_t dstSize) const;
  /// Shard paths, in index order (one entry for a single file).
  const std::vector<std::string> &shards() const;
  /// __metadata__ of one shard (logged, never interpreted).
  const std::map<std::string, std::string> &metadata(size_t shard = 0) const;
  /// metadata.total_size of the index, when present (informational: it is
  /// not checked against the tensors, see totalTensorBytes()).
  std::optional<uint64_t> indexTotalSize() const;
  /// Sum of all tensors' byte sizes.
  uint64_t totalTensorBytes() const;

  struct Impl;

private:
  explicit Reader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl;
};

//===----------------------------------------------------------------------===//
// Manifest check (ST-12)
//===----------------------------------------------------------------------===//

struct ManifestEntry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  /// May be absent from the checkpoint.
  bool optional = false;
};

struct ManifestMismatch {
  enum Kind { Missing, Unexpected, WrongDType, WrongShape };
  Kind kind;
  std::string name;
  /// "expected F32, found BF16", "expected [2, 3], found [3, 2]", ...
  std::string detail;
};

/// Every mismatch between `found` and `expected`, sorted by name then kind.
std::vector<ManifestMismatch>
compareManifest(const std::vector<TensorInfo> &found,
                const std::vector<ManifestEntry> &expected);

/// ST-12: success, or one error listing the first 20 mismatches and the
/// count of the rest. `source` names the checkpoint in the message.
Status checkManifest(std::string_view source,
                     const std::vector<TensorInfo> &found,
                     const std::vector<ManifestEntry> &expected);

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

/// A tensor to write; `data` is borrowed and must hold exactly the bytes the
/// dtype and shape need.
struct TensorData {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void *data = nullptr;
  size_t size = 0;
};

struct WriteOptions {
  /// Written as __metadata__ (of every shard when sharded).
  std::map<std::string, std::string> metadata;
  /// Fault-injection hook for tests: called before each write/rename step
  /// with a step name; returning false makes that step fail as with EIO.
  std::function<bool(std::string_view step)> faultHook;
};

/// Writes one safetensors file atomically (temp file in the target
/// directory, fsync, rename; the temp is removed on failure and an old file
/// at `path` is kept). The output is deterministic: header keys sorted by
/// name, data ordered by (alignment descending, name), header padded with
/// spaces to 8-byte alignment.
Status writeFile(const std::string &path,
                 const std::vector<TensorData> &tensors,
                 const WriteOptions &options = {});

/// The bytes writeFile writes for `tensors` (the same checks and layout),
/// in memory; `options.faultHook` is not called. Errors name "<memory>".
Expected<std::vector<uint8_t>> serialize(const std::vector<TensorData> &tensors,
                                         const WriteOptions &options = {});

/// Writes `numShards` files `model-0000i-of-0000N.safetensors` plus
/// `model.safetensors.index.json` (weight_map and metadata.total_size) into
/// the existing directory `dir`. Tensors are split in name order into
/// contiguous, byte-balanced, non-empty shards. All files are written to
/// temps first and renamed only when every one succeeded.
Status writeSharded(const std::string &dir,
                    const std::vector<TensorData> &tensors, unsigned numShards,
                    const WriteOptions &options = {});

/// The index file name used for sharded checkpoints.
inline constexpr const char *kIndexFileName = "model.safetensors.index.json";

} // namespace v4::safetensors

#endif // V4_RUNTIME_SAFETENSORS_SAFETENSORS_H
