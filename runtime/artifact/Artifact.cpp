//===- Artifact.cpp - the .v4a artifact: writer and validated reader ------===//
//
// Layers of docs/RELIABILITY.md section 2.5, in order: plain bounded loads of
// the 32-byte prefix (AF-1..AF-3), the generated FlatBuffers verifier with
// the true length and limits (AF-4), then decoding into plain structs and the
// semantic checks (AF-5..AF-14). No FlatBuffers accessor runs before AF-4.
//
//===----------------------------------------------------------------------===//

#include "runtime/artifact/Artifact.h"
#include "runtime/base/HostISA.h"

#include "v4_artifact_generated.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <string_view>
#include <unordered_set>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace v4::artifact {

//===----------------------------------------------------------------------===//
// CRC-32: zlib's
//===----------------------------------------------------------------------===//

uint32_t crc32(const void *data, size_t size, uint32_t crc) {
  // zlib takes uInt lengths: feed it in pieces below 4 GiB.
  const auto *p = static_cast<const Bytef *>(data);
  uLong c = crc;
  while (size > 0) {
    uInt n = static_cast<uInt>(std::min<size_t>(size, 1u << 30));
    c = ::crc32(c, p, n);
    p += n;
    size -= n;
  }
  return static_cast<uint32_t>(c);
}

uint32_t fileChecksum(const uint8_t *data, size_t size) {
  uint32_t c = crc32(data, 12);
  return crc32(data + 16, size - 16, c);
}

//===----------------------------------------------------------------------===//
// Names
//===----------------------------------------------------------------------===//

const char *targetName(Target target) {
  switch (target) {
  case Target::CPU:
    return "cpu";
  case Target::SM90A:
    return "sm_90a";
  }
  return "?";
}

const char *codeFormatName(CodeFormat format) {
  switch (format) {
  case CodeFormat::HostSharedObject:
    return "host-shared-object";
  case CodeFormat::PTX:
    return "ptx";
  case CodeFormat::Cubin:
    return "cubin";
  }
  return "?";
}

#ifndef V4_MLIR_VERSION
#define V4_MLIR_VERSION "unknown"
#endif

std::string toolVersion(std::string_view tool) {
  std::string v(tool);
  v += " ";
  v += kRuntimeVersion;
  v += " (artifact format " + std::to_string(kFormatMajor) + "." +
       std::to_string(kFormatMinor) + ", reads " +
       std::to_string(kFormatMajor) + ".0-" + std::to_string(kFormatMajor) +
       "." + std::to_string(kFormatMinor) + "; built with MLIR " +
       V4_MLIR_VERSION + ")";
  return v;
}

std::string outputRole(size_t index) {
  if (index == 0)
    return role::kLogits;
  if (index == 1)
    return role::kMtpLogits;
  return std::string(role::kMtpLogits) + "." + std::to_string(index - 1);
}

bool runsFor(const Step &s, uint64_t wanted) {
  if (s.onlyForOutputs.empty())
    return true;
  for (uint32_t o : s.onlyForOutputs)
    if (o < 64 && (wanted >> o) & 1)
      return true;
  return false;
}

EntryPoint stepsFor(const EntryPoint &ep, uint64_t wanted) {
  EntryPoint out;
  out.name = ep.name;
  bool leaderDropped = false;
  for (const Step &s : ep.steps) {
    if (!runsFor(s, wanted)) {
      leaderDropped |= !s.concurrent;
      continue;
    }
    out.steps.push_back(s);
    if (leaderDropped)
      out.steps.back().concurrent = false;
    leaderDropped = false;
  }
  return out;
}

std::optional<std::string> stackMemberName(const Parameter &p, int64_t member,
                                           uint32_t rank) {
  size_t at = p.name.find("{}");
  int64_t index = member;
  if (p.shards > 1 && p.sliceDim < 0 && !p.shape.empty())
    index += int64_t(rank) * p.shape[0];
  if (p.members > 0 && uint64_t(index) >= p.members)
    return std::nullopt;
  return p.name.substr(0, at) + std::to_string(index) + p.name.substr(at + 2);
}

std::optional<std::pair<uint64_t, uint64_t>>
contiguousSliceBytes(const Parameter &p, uint32_t rank) {
  if (p.sliceDim < 0 || p.sliceBlock != p.sliceBlockOf ||
      p.name.find("{}") != std::string::npos ||
      size_t(p.sliceDim) >= p.shape.size())
    return std::nullopt;
  for (int32_t i = 0; i < p.sliceDim; ++i)
    if (p.shape[size_t(i)] != 1)
      return std::nullopt;
  uint64_t bits = dtypeBits(p.dtype);
  for (size_t i = size_t(p.sliceDim) + 1; i < p.shape.size(); ++i)
    bits *= uint64_t(p.shape[i]);
  uint64_t local = uint64_t(p.shape[size_t(p.sliceDim)]);
  if ((bits * local) % 8 != 0)
    return std::nullopt;
  return std::make_pair(uint64_t(rank) * local * bits / 8, local * bits / 8);
}

Parameter stackMemberSlice(const Parameter &p, int64_t member) {
  Parameter m = p;
  size_t at = p.name.find("{}");
  m.name =
      p.name.substr(0, at) + std::to_string(member) + p.name.substr(at + 2);
  m.shape.assign(p.shape.begin() + 1, p.shape.end());
  m.sliceDim = p.sliceDim - 1;
  return m;
}

std::vector<int64_t> checkpointShape(const Parameter &p) {
  std::vector<int64_t> shape = p.shape;
  if (p.sliceDim >= 0 && size_t(p.sliceDim) < shape.size() &&
      p.sliceBlockOf > 0) {
    uint64_t rows = uint64_t(shape[p.sliceDim]) * p.shards * p.sliceBlock;
    shape[p.sliceDim] = int64_t((rows + p.sliceBlockOf - 1) / p.sliceBlockOf);
  }
  return shape;
}

int64_t sliceSourceIndex(const Parameter &p, uint32_t rank, int64_t i) {
  int64_t local = p.shape[p.sliceDim];
  return ((int64_t(rank) * local + i) * int64_t(p.sliceBlock)) /
         int64_t(p.sliceBlockOf);
}

void gatherSlice(const Parameter &p, uint32_t rank, const uint8_t *full,
                 uint8_t *dst) {
  std::vector<int64_t> src = checkpointShape(p);
  size_t d = size_t(p.sliceDim);
  size_t outer = 1, inner = dtypeBits(p.dtype) / 8;
  for (size_t i = 0; i < d; ++i)
    outer *= size_t(p.shape[i]);
  for (size_t i = d + 1; i < p.shape.size(); ++i)
    inner *= size_t(p.shape[i]);
  size_t local = size_t(p.shape[d]), whole = size_t(src[d]);
  for (size_t o = 0; o < outer; ++o)
    for (size_t i = 0; i < local; ++i)
      std::memcpy(
          dst + (o * local + i) * inner,
          full + (o * whole + size_t(sliceSourceIndex(p, rank, int64_t(i)))) *
                     inner,
          inner);
}

bool isInputRole(std::string_view name) {
  for (const char *r : role::kInputs)
    if (name == r)
      return true;
  return name == role::kRank;
}

bool isOutputRole(std::string_view name) {
  if (name == role::kLogits || name == role::kMtpLogits)
    return true;
  std::string_view prefix = role::kMtpLogits;
  if (name.size() <= prefix.size() + 1 ||
      name.substr(0, prefix.size()) != prefix || name[prefix.size()] != '.')
    return false;
  std::string_view digits = name.substr(prefix.size() + 1);
  if (digits[0] == '0')
    return false;
  for (char c : digits)
    if (c < '0' || c > '9')
      return false;
  return digits.size() <= 9;
}

const char *bufferKindName(BufferKind kind) {
  switch (kind) {
  case BufferKind::Parameter:
    return "parameter";
  case BufferKind::Input:
    return "input";
  case BufferKind::Output:
    return "output";
  case BufferKind::Activation:
    return "activation";
  case BufferKind::State:
    return "state";
  }
  return "?";
}

const char *resetKindName(ResetKind kind) {
  switch (kind) {
  case ResetKind::Zero:
    return "zero";
  case ResetKind::NegativeInfinity:
    return "negative-infinity";
  case ResetKind::PadId:
    return "pad-id";
  }
  return "?";
}

const char *scalarKindName(ScalarKind kind) {
  switch (kind) {
  case ScalarKind::Constant:
    return "constant";
  case ScalarKind::TokenCount:
    return "token-count";
  case ScalarKind::StartPos:
    return "start-pos";
  }
  return "?";
}

const char *collectiveName(Collective collective) {
  switch (collective) {
  case Collective::None:
    return "none";
  case Collective::AllReduceSum:
    return "all_reduce_sum";
  case Collective::AllGather:
    return "all_gather";
  case Collective::ReduceScatterSum:
    return "reduce_scatter_sum";
  case Collective::AllToAll:
    return "all_to_all";
  }
  return "?";
}

//===----------------------------------------------------------------------===//
// Semantic checks (AF-5..AF-14)
//===----------------------------------------------------------------------===//

namespace {

constexpr int64_t kMaxBatch = int64_t(1) << 16;
constexpr int64_t kMaxContext = int64_t(1) << 26;
constexpr size_t kMaxRank = 8;
constexpr uint32_t kMaxArgs = 4096;
constexpr uint32_t kMaxAlignment = 4096;
constexpr uint64_t kMaxBufferBytes = uint64_t(1) << 44; // 16 TiB
constexpr size_t kMaxNameBytes = 4096;

std::string quote(std::string_view s) {
  std::string out = "'";
  for (char c : s.substr(0, 200)) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) {
      static const char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 15];
    } else {
      out += c;
    }
  }
  if (s.size() > 200)
    out += "...";
  return out + "'";
}

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

/// Empty when `name` is a usable name, else what is wrong with it.
std::string badName(std::string_view name) {
  if (name.empty())
    return "is empty";
  if (name.size() > kMaxNameBytes)
    return "is " + std::to_string(name.size()) + " bytes long (at most " +
           std::to_string(kMaxNameBytes) + ")";
  if (name.find('\0') != std::string_view::npos)
    return "contains a NUL byte";
  return "";
}

bool validTarget(Target t) { return uint8_t(t) <= uint8_t(Target::SM90A); }
bool validFormat(CodeFormat f) {
  return uint8_t(f) <= uint8_t(CodeFormat::Cubin);
}
bool validDType(DType d) { return isValidDType(uint8_t(d)); }
bool validKind(BufferKind k) {
  return uint8_t(k) <= uint8_t(BufferKind::State);
}
bool validReset(ResetKind k) { return uint8_t(k) <= uint8_t(ResetKind::PadId); }
bool validScalar(ScalarKind k) {
  return uint8_t(k) <= uint8_t(ScalarKind::StartPos);
}

bool mulOverflow(uint64_t a, uint64_t b, uint64_t &out) {
  return __builtin_mul_overflow(a, b, &out);
}

std::string shapeString(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      s += ", ";
    s += shape[i] == -1 ? std::string("?") : std::to_string(shape[i]);
  }
  return s + "]";
}

/// Checks a shape (rank, dims, at most one -1 when `allowToken`) and computes
/// its byte size with the token dim at `tokens`. Returns "" or the problem.
std::string checkShape(const std::vector<int64_t> &shape, DType dtype,
                       bool allowToken, int64_t tokens, uint64_t &bytes) {
  if (shape.size() > kMaxRank)
    return "rank " + std::to_string(shape.size()) + " exceeds " +
           std::to_string(kMaxRank);
  unsigned tokenDims = 0;
  uint64_t elements = 1;
  bool overflow = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    int64_t d = shape[i];
    if (d == -1) {
      if (!allowToken)
        return "dim " + std::to_string(i) +
               " is dynamic (-1); only input, output and activation buffers "
               "have a token dim";
      if (++tokenDims > 1)
        return "has more than one dynamic (-1) dim; only the token dim is "
               "dynamic";
      d = tokens;
    } else if (d < 0) {
      return "dim " + std::to_string(i) + " is " + std::to_string(d) +
             " (dims are >= 0, or -1 for the token dim)";
    }
    overflow |= mulOverflow(elements, uint64_t(d), elements);
  }
  uint64_t bits = 0;
  overflow |= mulOverflow(elements, dtypeBits(dtype), bits);
  if (overflow || bits / 8 > kMaxBufferBytes)
    return "byte size at the static bounds overflows or exceeds " +
           std::to_string(kMaxBufferBytes) + " bytes";
  if (bits % 8)
    return std::to_string(elements) + " elements of " + dtypeName(dtype) +
           " do not fill whole bytes";
  bytes = bits / 8;
  return "";
}

class Checker {
public:
  Checker(std::string_view source, const Description &desc, uint64_t fileSize,
          uint64_t blobStart)
      : src(source), d(desc), fileSize(fileSize), blobStart(blobStart) {}

  Status run() {
    Status s;
    if (!(s = versions()) || !(s = target()) || !(s = codeObjects()) ||
        !(s = kernels()) || !(s = buffers()) || !(s = entryPoints()) ||
        !(s = stateSpecs()) || !(s = parameters()) || !(s = debugLocations()) ||
        !(s = tokenIds()) || !(s = numerics()) || !(s = checkedTensors()) ||
        !(s = roleShapes()) || !(s = kernelSets()) || !(s = partition()))
      return s;
    return Status::success();
  }

private:
  Status fail(const char *rule, const std::string &what) {
    return Status::error(rule, std::string(src) + ": " + what);
  }

  Status versions() {
    std::string bad;
    if (!(bad = badName(d.versions.compiler)).empty())
      return fail("AF-5", "versions.compiler " + bad);
    if (!(bad = badName(d.versions.mlir)).empty())
      return fail("AF-5", "versions.mlir " + bad);
    return Status::success();
  }

  Status target() {
    if (!validTarget(d.target))
      return fail("AF-6", "target " + std::to_string(unsigned(d.target)) +
                              " is not a known target (cpu, sm_90a)");
    if (uint64_t unknown = d.features & ~kKnownFeatures)
      return fail("AF-6", "artifact needs feature bits " + hex(unknown) +
                              " this runtime (v4rt " + kRuntimeVersion +
                              ") does not know (known: " + hex(kKnownFeatures) +
                              "): upgrade v4rt");
    const Bounds &b = d.bounds;
    if (b.batch < 1 || b.batch > kMaxBatch)
      return fail("AF-6", "bounds.batch is " + std::to_string(b.batch) +
                              ", expected 1.." + std::to_string(kMaxBatch));
    if (b.maxContext < 1 || b.maxContext > kMaxContext)
      return fail("AF-6", "bounds.max_context is " +
                              std::to_string(b.maxContext) + ", expected 1.." +
                              std::to_string(kMaxContext));
    if (b.maxChunk < 1 || b.maxChunk > b.maxContext)
      return fail("AF-6", "bounds.max_chunk is " + std::to_string(b.maxChunk) +
                              ", expected 1..max_context (" +
                              std::to_string(b.maxContext) + ")");
    return Status::success();
  }

  Status codeObjects() {
    std::vector<std::pair<uint64_t, uint64_t>> spans;
    for (size_t i = 0; i < d.codeObjects.size(); ++i) {
      const CodeObject &c = d.codeObjects[i];
      std::string what = "code object " + std::to_string(i) + ": ";
      if (!validTarget(c.target))
        return fail("AF-7", what + "target " +
                                std::to_string(unsigned(c.target)) +
                                " is not a known target");
      bool ofASet =
          std::any_of(d.kernelSets.begin(), d.kernelSets.end(),
                      [&](const KernelSet &k) { return k.target == c.target; });
      if (c.target != d.target && c.target != Target::CPU && !ofASet)
        return fail("AF-7", what + "target " + targetName(c.target) +
                                " is neither the artifact's (" +
                                targetName(d.target) +
                                ") nor that of a kernel set");
      if (!validFormat(c.format))
        return fail("AF-7", what + "format " +
                                std::to_string(unsigned(c.format)) +
                                " is not a known code format");
      bool host = c.format == CodeFormat::HostSharedObject;
      if (host != (c.target == Target::CPU))
        return fail("AF-7", what + codeFormatName(c.format) +
                                " does not fit target " + targetName(c.target));
      if (!c.isa.empty() && (!host || !isKnownHostISA(c.isa)))
        return fail("AF-7", what + "isa '" + c.isa +
                                "' is not an x86-64 level of a host object (" +
                                knownHostISAs() + ")");
      if (c.size == 0)
        return fail("AF-7", what + "is empty");
      uint64_t end = 0;
      if (c.offset < blobStart || c.offset % kBlobAlignment ||
          __builtin_add_overflow(c.offset, c.size, &end) || end > fileSize)
        return fail("AF-7", what + "blob [" + std::to_string(c.offset) + ", +" +
                                std::to_string(c.size) +
                                ") must lie inside the blob section [" +
                                std::to_string(blobStart) + ", " +
                                std::to_string(fileSize) + ") at a " +
                                std::to_string(kBlobAlignment) +
                                "-byte aligned offset");
      spans.emplace_back(c.offset, end);
    }
    std::sort(spans.begin(), spans.end());
    for (size_t i = 1; i < spans.size(); ++i)
      if (spans[i].first < spans[i - 1].second)
        return fail("AF-7", "code object blobs overlap at byte " +
                                std::to_string(spans[i].first));
    return Status::success();
  }

  Status kernels() { return kernelTable(d.kernels, d.target, "AF-8", ""); }

  /// AF-8 on one target's kernel table; `rule` and `prefix` name the table
  /// (a kernel set's: AF-18).
  Status kernelTable(const std::vector<Kernel> &table, Target target,
                     const char *rule, const std::string &prefix) {
    std::unordered_set<std::string_view> names;
    for (size_t i = 0; i < table.size(); ++i) {
      const Kernel &k = table[i];
      std::string what = prefix + "kernel " + std::to_string(i);
      std::string bad;
      if (!(bad = badName(k.name)).empty())
        return fail(rule, what + ": name " + bad);
      what += " " + quote(k.name) + ": ";
      if (!names.insert(k.name).second)
        return fail(rule, what + "duplicate kernel name");
      if (k.codeObject >= d.codeObjects.size())
        return fail(rule, what + "code object " + std::to_string(k.codeObject) +
                              " out of range (" +
                              std::to_string(d.codeObjects.size()) +
                              " code objects)");
      if (d.codeObjects[k.codeObject].target != target)
        return fail(rule, what + "code object " + std::to_string(k.codeObject) +
                              " is for " +
                              targetName(d.codeObjects[k.codeObject].target) +
                              ", not the table's target " + targetName(target));
      if (!(bad = badName(k.entrySymbol)).empty())
        return fail(rule, what + "entry symbol " + bad);
      if (k.numBufferArgs > kMaxArgs || k.numScalarArgs > kMaxArgs)
        return fail(rule, what + "argument counts " +
                              std::to_string(k.numBufferArgs) + "/" +
                              std::to_string(k.numScalarArgs) + " exceed " +
                              std::to_string(kMaxArgs));
      if (k.debugLocation.find('\0') != std::string::npos)
        return fail(rule, what + "debug location contains a NUL byte");
      const Launch &l = k.launch;
      uint64_t threads = 1;
      for (int j = 0; j < 3; ++j) {
        if (l.grid[j].fixed == 0)
          return fail(rule, what + "launch grid dimension " +
                                std::to_string(j) + " has fixed factor 0");
        if (l.block[j] == 0)
          return fail(rule, what + "launch block dimension " +
                                std::to_string(j) + " is 0");
        threads *= l.block[j];
      }
      if (threads > kMaxThreadsPerBlock)
        return fail(rule, what + "launch block of " + std::to_string(threads) +
                              " threads exceeds " +
                              std::to_string(kMaxThreadsPerBlock));
      if (l.sharedMemoryBytes > kMaxSharedMemoryBytes)
        return fail(rule, what + "launch needs " +
                              std::to_string(l.sharedMemoryBytes) +
                              " bytes of shared memory, more than " +
                              std::to_string(kMaxSharedMemoryBytes));
      if (k.codeObject < d.codeObjects.size() &&
          d.codeObjects[k.codeObject].format == CodeFormat::HostSharedObject &&
          (threads != 1 || l.sharedMemoryBytes != 0 || l.workspaceBytes != 0))
        return fail(rule, what + "a host kernel is one call: block 1 x 1 "
                                 "x 1, no shared memory and no workspace");
      if (l.workspaceBytes > kMaxBufferBytes)
        return fail(rule,
                    what + "workspace of " + std::to_string(l.workspaceBytes) +
                        " bytes exceeds " + std::to_string(kMaxBufferBytes));
      bool oneBlock = true;
      for (int j = 0; j < 3; ++j)
        oneBlock &= l.grid[j].fixed == 1 && l.grid[j].tokenTile == 0;
      if (l.tokenSlice != 0 && (!oneBlock || k.numScalarArgs != 0 ||
                                !(k.codeObject < d.codeObjects.size() &&
                                  d.codeObjects[k.codeObject].format ==
                                      CodeFormat::HostSharedObject)))
        return fail(rule, what + "token slices of " +
                              std::to_string(l.tokenSlice) +
                              " for a kernel that is not a host kernel of "
                              "one block without scalars");
    }
    return Status::success();
  }

  Status kernelSets() {
    std::unordered_set<unsigned> seen = {unsigned(d.target)};
    for (size_t i = 0; i < d.kernelSets.size(); ++i) {
      const KernelSet &set = d.kernelSets[i];
      std::string what = "kernel set " + std::to_string(i);
      if (!validTarget(set.target))
        return fail("AF-18", what + ": target " +
                                 std::to_string(unsigned(set.target)) +
                                 " is not a known target");
      what += std::string(" (") + targetName(set.target) + "): ";
      if (!seen.insert(unsigned(set.target)).second)
        return fail("AF-18", what + "the artifact already has kernels for " +
                                 targetName(set.target));
      if (Status s = kernelTable(set.kernels, set.target, "AF-18", what); !s)
        return s;
      if (set.kernels.size() != d.kernels.size())
        return fail("AF-18", what + "has " +
                                 std::to_string(set.kernels.size()) +
                                 " kernels, the artifact's table " +
                                 std::to_string(d.kernels.size()));
      for (size_t k = 0; k < set.kernels.size(); ++k) {
        const Kernel &a = d.kernels[k], &b = set.kernels[k];
        if (a.name != b.name || a.numBufferArgs != b.numBufferArgs ||
            a.numScalarArgs != b.numScalarArgs)
          return fail(
              "AF-18",
              what + "kernel " + std::to_string(k) + " " + quote(b.name) +
                  " with " + std::to_string(b.numBufferArgs) + "/" +
                  std::to_string(b.numScalarArgs) +
                  " buffer/scalar arguments is not the artifact's " +
                  quote(a.name) + " with " + std::to_string(a.numBufferArgs) +
                  "/" + std::to_string(a.numScalarArgs));
      }
    }
    return Status::success();
  }

  Status buffers() {
    if (d.arenaBytes > kMaxBufferBytes)
      return fail("AF-9", "arena_bytes " + std::to_string(d.arenaBytes) +
                              " exceeds " + std::to_string(kMaxBufferBytes));
    for (size_t i = 0; i < d.buffers.size(); ++i) {
      const Buffer &b = d.buffers[i];
      std::string what = "buffer " + std::to_string(i) + " (id " +
                         std::to_string(b.id) + "): ";
      if (!ids.emplace(b.id, i).second)
        return fail("AF-9", what + "duplicate buffer id");
      if (!validDType(b.dtype))
        return fail("AF-9", what + "dtype " +
                                std::to_string(unsigned(b.dtype)) +
                                " is not a known dtype");
      if (!validKind(b.kind))
        return fail("AF-9", what + "kind " + std::to_string(unsigned(b.kind)) +
                                " is not a known buffer kind");
      if (b.alignment == 0 || (b.alignment & (b.alignment - 1)) ||
          b.alignment > kMaxAlignment)
        return fail("AF-9", what + "alignment " + std::to_string(b.alignment) +
                                " is not a power of two in 1.." +
                                std::to_string(kMaxAlignment));
      bool token = b.kind == BufferKind::Input ||
                   b.kind == BufferKind::Output ||
                   b.kind == BufferKind::Activation;
      uint64_t bytes = 0;
      std::string bad =
          checkShape(b.shape, b.dtype, token, d.bounds.maxChunk, bytes);
      if (!bad.empty())
        return fail("AF-9", what + dtypeName(b.dtype) + " " +
                                shapeString(b.shape) + ": " + bad);
      if (b.arenaOffset != -1) {
        uint64_t end = 0;
        if (b.kind != BufferKind::Activation)
          return fail("AF-9", what + bufferKindName(b.kind) +
                                  " buffer has an arena offset; only "
                                  "activations live in the arena");
        if (b.arenaOffset < 0 || uint64_t(b.arenaOffset) % b.alignment ||
            __builtin_add_overflow(uint64_t(b.arenaOffset), bytes, &end) ||
            end > d.arenaBytes)
          return fail("AF-9", what + "arena offset " +
                                  std::to_string(b.arenaOffset) + " + " +
                                  std::to_string(bytes) +
                                  " bytes must lie inside the arena of " +
                                  std::to_string(d.arenaBytes) +
                                  " bytes at a multiple of its alignment " +
                                  std::to_string(b.alignment));
      }
      bool io = b.kind == BufferKind::Input || b.kind == BufferKind::Output;
      if (!io && !b.role.empty())
        return fail("AF-9", what + bufferKindName(b.kind) +
                                " buffer has role " + quote(b.role) +
                                "; only inputs and outputs have roles");
      if (io) {
        bool known = b.kind == BufferKind::Input ? isInputRole(b.role)
                                                 : isOutputRole(b.role);
        if (!known)
          return fail("AF-9",
                      what + bufferKindName(b.kind) + " role " + quote(b.role) +
                          " is not one of " +
                          (b.kind == BufferKind::Input
                               ? "ids, next_ids, start_positions, positions, "
                                 "rank"
                               : "logits, mtp_logits, mtp_logits.<n>"));
        if (!roles.insert(b.role).second)
          return fail("AF-9", what + "duplicate role " + quote(b.role));
      }
    }
    return Status::success();
  }

  Status entryPoints() {
    std::unordered_set<std::string_view> names;
    // A kernel is compiled for one signature: the first call of each kernel
    // fixes its arguments' dtypes and ranks (KernelABI.h: a rank decides the
    // size of the descriptor the kernel reads, a dtype its element width).
    std::vector<const Step *> firstCall(d.kernels.size(), nullptr);
    for (size_t e = 0; e < d.entryPoints.size(); ++e) {
      const EntryPoint &ep = d.entryPoints[e];
      std::string bad;
      if (!(bad = badName(ep.name)).empty())
        return fail("AF-10",
                    "entry point " + std::to_string(e) + ": name " + bad);
      if (!names.insert(ep.name).second)
        return fail("AF-10", "entry point " + quote(ep.name) + ": duplicate");
      for (size_t s = 0; s < ep.steps.size(); ++s) {
        const Step &st = ep.steps[s];
        std::string what = "entry point " + quote(ep.name) + " step " +
                           std::to_string(s) + ": ";
        if (st.concurrent) {
          if (st.collective != Collective::None || s == 0 ||
              ep.steps[s - 1].collective != Collective::None)
            return fail("AF-10", what + "concurrent, but it or the step "
                                        "before it is not a launch");
          if (Status c = concurrentGroup(ep, s, what); !c)
            return c;
        }
        if (Status o = onlyForOutputs(st, what); !o)
          return o;
        if (st.collective != Collective::None) {
          if (Status c = collectiveStep(st, what); !c)
            return c;
          continue;
        }
        if (st.kernel >= d.kernels.size())
          return fail("AF-10", what + "kernel " + std::to_string(st.kernel) +
                                   " out of range (" +
                                   std::to_string(d.kernels.size()) +
                                   " kernels)");
        const Kernel &k = d.kernels[st.kernel];
        if (st.buffers.size() != k.numBufferArgs)
          return fail("AF-10", what + std::to_string(st.buffers.size()) +
                                   " buffers, kernel " + quote(k.name) +
                                   " takes " + std::to_string(k.numBufferArgs));
        for (uint32_t id : st.buffers)
          if (!ids.count(id))
            return fail("AF-10", what + "buffer id " + std::to_string(id) +
                                     " does not exist");
        if (const Step *first = firstCall[st.kernel]) {
          for (size_t j = 0; j < st.buffers.size(); ++j) {
            const Buffer &x = d.buffers[ids.at(first->buffers[j])];
            const Buffer &y = d.buffers[ids.at(st.buffers[j])];
            if (x.dtype != y.dtype || x.shape.size() != y.shape.size())
              return fail("AF-10",
                          what + "argument " + std::to_string(j) +
                              " of kernel " + quote(k.name) + " is " +
                              dtypeName(y.dtype) + " " + shapeString(y.shape) +
                              "; an earlier call passed " + dtypeName(x.dtype) +
                              " " + shapeString(x.shape) +
                              " (one compiled signature: dtype and "
                              "rank per argument)");
          }
        } else {
          firstCall[st.kernel] = &st;
        }
        // A token-sliced kernel's buffers: a token dim has only size-1 dims
        // before it, so a slice of tokens is one contiguous run.
        if (k.launch.tokenSlice != 0)
          for (uint32_t id : st.buffers) {
            const Buffer &x = d.buffers[ids.at(id)];
            auto token = std::find(x.shape.begin(), x.shape.end(), -1);
            if (token != x.shape.end() &&
                std::any_of(x.shape.begin(), token,
                            [](int64_t n) { return n != 1; }))
              return fail("AF-10", what + "kernel " + quote(k.name) +
                                       " runs on token slices, but buffer " +
                                       std::to_string(id) + " " +
                                       shapeString(x.shape) +
                                       " has dims other than 1 before its "
                                       "token dim");
          }
        if (st.scalars.size() != k.numScalarArgs)
          return fail("AF-10", what + std::to_string(st.scalars.size()) +
                                   " scalars, kernel " + quote(k.name) +
                                   " takes " + std::to_string(k.numScalarArgs));
        for (size_t j = 0; j < st.scalars.size(); ++j)
          if (!validScalar(st.scalars[j].kind))
            return fail("AF-10",
                        what + "scalar " + std::to_string(j) + " kind " +
                            std::to_string(unsigned(st.scalars[j].kind)) +
                            " is not a known scalar kind");
        if (st.debugLocation < -1 ||
            (st.debugLocation >= 0 &&
             size_t(st.debugLocation) >= d.debugLocations.size()))
          return fail("AF-10", what + "debug location " +
                                   std::to_string(st.debugLocation) +
                                   " out of range (" +
                                   std::to_string(d.debugLocations.size()) +
                                   " locations)");
      }
    }
    return Status::success();
  }

  /// AF-10: a step's only_for_outputs (1.12) are a launch's, ascending,
  /// each the index of an output role some buffer has.
  Status onlyForOutputs(const Step &st, const std::string &what) {
    if (st.onlyForOutputs.empty())
      return Status::success();
    if (st.collective != Collective::None)
      return fail("AF-10", what + "a collective cannot be only for some "
                                  "outputs: every rank runs it");
    for (size_t i = 0; i < st.onlyForOutputs.size(); ++i) {
      uint32_t o = st.onlyForOutputs[i];
      if (i > 0 && o <= st.onlyForOutputs[i - 1])
        return fail("AF-10", what + "only_for_outputs must ascend without "
                                    "repeats");
      std::string name = outputRole(o);
      bool found =
          std::any_of(d.buffers.begin(), d.buffers.end(), [&](const Buffer &b) {
            return b.kind == BufferKind::Output && b.role == name;
          });
      if (!found)
        return fail("AF-10", what + "only for output " + std::to_string(o) +
                                 " (" + quote(name) +
                                 "), which no output buffer holds");
    }
    return Status::success();
  }

  /// AF-10: concurrent step `s` of `ep` shares no arena bytes between a
  /// buffer of its own and a different buffer of an earlier step of its
  /// group (the steps back to the last one without the flag). The same
  /// buffer in two steps is allowed: both read it, which the compiler
  /// guarantees and bytes cannot show.
  Status concurrentGroup(const EntryPoint &ep, size_t s,
                         const std::string &what) {
    auto range = [&](uint32_t id) -> std::pair<uint64_t, uint64_t> {
      auto it = ids.find(id);
      if (it == ids.end())
        return {0, 0};
      const Buffer &b = d.buffers[it->second];
      if (b.arenaOffset < 0)
        return {0, 0};
      uint64_t begin = uint64_t(b.arenaOffset), bytes = 0;
      checkShape(b.shape, b.dtype, true, d.bounds.maxChunk, bytes); // AF-9
      return {begin, begin + bytes};
    };
    size_t first = s;
    while (first > 0 && ep.steps[first].concurrent)
      --first;
    for (uint32_t mine : ep.steps[s].buffers) {
      auto [b0, b1] = range(mine);
      if (b0 == b1)
        continue;
      for (size_t t = first; t < s; ++t)
        for (uint32_t other : ep.steps[t].buffers) {
          auto [o0, o1] = range(other);
          if (other != mine && o0 < b1 && b0 < o1)
            return fail("AF-10",
                        what + "concurrent with step " + std::to_string(t) +
                            ", but its buffer " + std::to_string(mine) +
                            " shares arena bytes with that step's buffer " +
                            std::to_string(other));
        }
    }
    return Status::success();
  }

  /// AF-19: a collective step (all_reduce_sum: one buffer in place;
  /// all_gather, reduce_scatter_sum: from the first buffer into the second,
  /// which holds world times, or one world-th of, its elements; all_to_all:
  /// counts, rows, received counts, received rows) over activations or
  /// outputs of one element type, no scalars, in a partitioned plan.
  Status collectiveStep(const Step &st, const std::string &what) {
    size_t want = st.collective == Collective::AllReduceSum ? 1
                  : st.collective == Collective::AllGather ||
                          st.collective == Collective::ReduceScatterSum
                      ? 2
                  : st.collective == Collective::AllToAll ? 4
                                                          : 0;
    if (want == 0)
      return fail("AF-19", what + "collective " +
                               std::to_string(unsigned(st.collective)) +
                               " is not a known collective");
    if (st.buffers.size() != want || !st.scalars.empty())
      return fail("AF-19",
                  what + "the collective takes " + std::to_string(want) +
                      " buffers and no scalars, got " +
                      std::to_string(st.buffers.size()) + " buffers and " +
                      std::to_string(st.scalars.size()) + " scalars");
    std::vector<const Buffer *> bufs;
    for (uint32_t id : st.buffers) {
      auto it = ids.find(id);
      if (it == ids.end())
        return fail("AF-10", what + "buffer id " + std::to_string(id) +
                                 " does not exist");
      bufs.push_back(&d.buffers[it->second]);
    }
    bool toAll = st.collective == Collective::AllToAll;
    const Buffer &b = *bufs[toAll ? 1 : 0];
    bool summed = st.collective != Collective::AllGather && !toAll;
    for (size_t i = 0; i < bufs.size(); ++i) {
      const Buffer *x = bufs[i];
      bool counts = toAll && i % 2 == 0;
      bool ok =
          x->kind == BufferKind::Activation || x->kind == BufferKind::Output;
      if (counts)
        ok &= x->dtype == DType::I64 &&
              x->shape == std::vector<int64_t>{int64_t(d.world())};
      else
        ok &= (x->dtype == DType::BF16 || x->dtype == DType::F32 ||
               (!summed && x->dtype == DType::I64)) &&
              x->dtype == b.dtype;
      if (!ok)
        return fail("AF-19",
                    what + "collective over buffer id " +
                        std::to_string(x->id) + ", a " +
                        bufferKindName(x->kind) + " " + dtypeName(x->dtype) +
                        " " + shapeString(x->shape) +
                        (counts ? "; expected the counts, an I64 [" +
                                      std::to_string(d.world()) +
                                      "] activation or output"
                                : "; expected activations or outputs of one "
                                  "element type, bf16 or f32 (or i64 to "
                                  "gather or send)"));
    }
    if (d.world() < 2)
      return fail("AF-19", what + "a collective in a plan of one rank "
                                  "(partition expert_parallel and "
                                  "tensor_parallel 1)");
    if (toAll) {
      // Rows in blocks, one per rank along dim 0; sent and received alike.
      const Buffer &in = *bufs[1], &out = *bufs[3];
      if (in.shape.size() < 2 || in.shape[0] != int64_t(d.world()) ||
          in.shape != out.shape)
        return fail("AF-19", what + "buffers " + shapeString(in.shape) +
                                 " and " + shapeString(out.shape) +
                                 " are not one shape of " +
                                 std::to_string(d.world()) +
                                 " blocks of rows (dim 0 the world, rank "
                                 ">= 2)");
    }
    if (want == 2) {
      // The same token dim and trailing dims; dim 0 scaled by the world.
      const Buffer &small =
          st.collective == Collective::AllGather ? *bufs[0] : *bufs[1];
      const Buffer &big =
          st.collective == Collective::AllGather ? *bufs[1] : *bufs[0];
      bool ok = !small.shape.empty() &&
                small.shape.size() == big.shape.size() && small.shape[0] >= 0 &&
                big.shape[0] == small.shape[0] * int64_t(d.world());
      for (size_t i = 1; ok && i < small.shape.size(); ++i)
        ok = small.shape[i] == big.shape[i];
      if (!ok)
        return fail("AF-19", what + "buffer " + shapeString(big.shape) +
                                 " is not " + shapeString(small.shape) +
                                 " with dim 0 times the world of " +
                                 std::to_string(d.world()));
    }
    return Status::success();
  }

  /// AF-19: the partition's world is 1..kMaxWorld; a partitioned plan has
  /// the rank input; shards are 1 or the world, on `{}` stacks whose
  /// members the world's ranks split.
  Status partition() {
    constexpr uint32_t kMaxWorld = 1u << 16;
    for (auto [name, n] : {std::pair{"expert_parallel", d.expertParallel},
                           std::pair{"tensor_parallel", d.tensorParallel}})
      if (n < 1 || n > kMaxWorld)
        return fail("AF-19", std::string("partition.") + name + " is " +
                                 std::to_string(n) + ", expected 1.." +
                                 std::to_string(kMaxWorld));
    if (d.expertParallel > 1 && d.tensorParallel > 1 &&
        d.expertParallel != d.tensorParallel)
      return fail("AF-19", "partition.expert_parallel " +
                               std::to_string(d.expertParallel) +
                               " and tensor_parallel " +
                               std::to_string(d.tensorParallel) +
                               " are not one world");
    uint32_t world = d.world();
    bool hasRank = false;
    for (const Buffer &b : d.buffers)
      hasRank |= b.kind == BufferKind::Input && b.role == role::kRank;
    if (d.expertParallel > 1 && !hasRank)
      return fail("AF-19", "partition.expert_parallel is " +
                               std::to_string(d.expertParallel) +
                               " but no input has role 'rank'");
    if (world == 1 && d.dataParallelAttention)
      return fail("AF-19", "data-parallel attention in a plan of one rank");
    for (const Parameter &p : d.parameters) {
      std::string what = "parameter " + quote(p.name) + ": ";
      bool stack = p.name.find("{}") != std::string::npos;
      if (p.sliceDim < 0 && (p.sliceBlock != 1 || p.sliceBlockOf != 1))
        return fail("AF-19", what + "slice blocks without a slice_dim");
      if (p.sliceDim >= 0) {
        if ((stack && (p.sliceDim < 1 || p.members != 0)) || p.shards < 2 ||
            size_t(p.sliceDim) >= p.shape.size() || p.shape[p.sliceDim] < 1)
          return fail("AF-19",
                      what + "slice_dim " + std::to_string(p.sliceDim) +
                          " of shape " + shapeString(p.shape) + " over " +
                          std::to_string(p.shards) +
                          " shards; expected a dim of extent >= 1 (of a "
                          "stack: a member dim, every member) and shards "
                          ">= 2");
        if (p.sliceBlock < 1 || p.sliceBlockOf < p.sliceBlock ||
            p.sliceBlockOf % p.sliceBlock != 0)
          return fail("AF-19", what + "slice blocks " +
                                   std::to_string(p.sliceBlock) + " of " +
                                   std::to_string(p.sliceBlockOf) +
                                   "; expected a block dividing the "
                                   "checkpoint's");
      }
      if (p.shards == 1)
        continue;
      if (p.shards != world)
        return fail("AF-19", what + "shards " + std::to_string(p.shards) +
                                 ", expected 1 or the partition's " +
                                 std::to_string(world) + " ranks");
      if (p.sliceDim < 0 && (!stack || p.shape.empty() || p.shape[0] < 1))
        return fail("AF-19", what + "only a `{}` stack of at least one "
                                    "member or a slice is sharded");
    }
    for (const Parameter &p : d.parameters) {
      if (p.members == 0)
        continue;
      uint64_t count = p.shape.empty() ? 0 : uint64_t(p.shape[0]);
      if (p.shards < 2 || p.name.find("{}") == std::string::npos ||
          count != (p.members + p.shards - 1) / p.shards)
        return fail("AF-19", "parameter " + quote(p.name) + ": " +
                                 std::to_string(p.members) +
                                 " members need a `{}` stack of shards of "
                                 "ceil(members / shards), got " +
                                 std::to_string(p.shards) + " shards of " +
                                 std::to_string(count));
    }
    return Status::success();
  }

  Status stateSpecs() {
    std::unordered_set<std::string_view> names;
    for (size_t i = 0; i < d.stateSpecs.size(); ++i) {
      const StateSpec &s = d.stateSpecs[i];
      std::string bad;
      if (!(bad = badName(s.name)).empty())
        return fail("AF-11",
                    "state spec " + std::to_string(i) + ": name " + bad);
      std::string what = "state spec " + quote(s.name) + ": ";
      if (!names.insert(s.name).second)
        return fail("AF-11", what + "duplicate state name");
      if (!validReset(s.reset))
        return fail("AF-11", what + "reset kind " +
                                 std::to_string(unsigned(s.reset)) +
                                 " is not a known reset kind");
      if (s.buffers.empty())
        return fail("AF-11", what + "names no buffers");
      for (uint32_t id : s.buffers) {
        auto it = ids.find(id);
        if (it == ids.end())
          return fail("AF-11", what + "buffer id " + std::to_string(id) +
                                   " does not exist");
        const Buffer &b = d.buffers[it->second];
        if (b.kind != BufferKind::State)
          return fail("AF-11", what + "buffer id " + std::to_string(id) +
                                   " is of kind " + bufferKindName(b.kind) +
                                   ", expected state");
        // A sequence's reset clears its row: the batch dim leads.
        if (b.shape.empty() || b.shape[0] != d.bounds.batch)
          return fail("AF-11", what + "buffer id " + std::to_string(id) +
                                   " has shape " + shapeString(b.shape) +
                                   "; a state leads with the batch dim (" +
                                   std::to_string(d.bounds.batch) + ")");
      }
    }
    return Status::success();
  }

  Status parameters() {
    std::unordered_set<std::string_view> names;
    std::map<uint32_t, size_t> bound;
    for (size_t i = 0; i < d.parameters.size(); ++i) {
      const Parameter &p = d.parameters[i];
      std::string bad;
      if (!(bad = badName(p.name)).empty())
        return fail("AF-12",
                    "parameter " + std::to_string(i) + ": name " + bad);
      std::string what = "parameter " + quote(p.name) + ": ";
      if (!names.insert(p.name).second)
        return fail("AF-12", what + "duplicate checkpoint name");
      if (!validDType(p.dtype))
        return fail("AF-12", what + "dtype " +
                                 std::to_string(unsigned(p.dtype)) +
                                 " is not a known dtype");
      uint64_t bytes = 0;
      if (!(bad = checkShape(p.shape, p.dtype, false, 0, bytes)).empty())
        return fail("AF-12", what + "checkpoint shape " + shapeString(p.shape) +
                                 ": " + bad);
      auto it = ids.find(p.buffer);
      if (it == ids.end())
        return fail("AF-12", what + "buffer id " + std::to_string(p.buffer) +
                                 " does not exist");
      const Buffer &b = d.buffers[it->second];
      if (b.kind != BufferKind::Parameter)
        return fail("AF-12", what + "buffer id " + std::to_string(p.buffer) +
                                 " is of kind " + bufferKindName(b.kind) +
                                 ", expected parameter");
      // The runtime binds the checkpoint tensor as the buffer (mapped, or
      // copied for a per-expert stack): the bytes must agree, or kernels
      // read past a mapped tensor.
      uint64_t bufferBytes = 0;
      checkShape(b.shape, b.dtype, false, 0, bufferBytes);
      if (bytes != bufferBytes)
        return fail("AF-12",
                    what + dtypeName(p.dtype) + " " + shapeString(p.shape) +
                        " (" + std::to_string(bytes) +
                        " bytes) does not fill its buffer id " +
                        std::to_string(p.buffer) + ", " + dtypeName(b.dtype) +
                        " " + shapeString(b.shape) + " (" +
                        std::to_string(bufferBytes) + " bytes)");
      auto prev = bound.emplace(p.buffer, i);
      if (!prev.second)
        return fail("AF-12", what + "buffer id " + std::to_string(p.buffer) +
                                 " is already bound by parameter " +
                                 quote(d.parameters[prev.first->second].name));
      if (p.derived.rule == DerivedRule::None)
        continue;
      if (p.derived.rule != DerivedRule::EngramMultipliers)
        return fail("AF-12", what + "derivation rule " +
                                 std::to_string(unsigned(p.derived.rule)) +
                                 " is not a known rule");
      if (p.dtype != DType::I64 || p.shape.size() != 1 || p.derived.bound < 1)
        return fail("AF-12", what +
                                 "engram_multipliers derive an I64 [n] "
                                 "parameter with a bound >= 1, got " +
                                 dtypeName(p.dtype) + " " +
                                 shapeString(p.shape) + " and bound " +
                                 std::to_string(p.derived.bound));
    }
    for (const Buffer &b : d.buffers)
      if (b.kind == BufferKind::Parameter && !bound.count(b.id))
        return fail("AF-12", "parameter buffer id " + std::to_string(b.id) +
                                 " is bound by no parameter");
    return Status::success();
  }

  /// AF-17: the inputs and outputs have the dtype and shape the runtime
  /// writes and reads (v4rt_session_run): int64 ids, next ids and
  /// positions [batch, -1], start positions [batch]; float32 logits
  /// [batch, -1 or 1, vocab], every MTP output shaped like the logits.
  Status roleShapes() {
    const Buffer *logits = nullptr;
    for (const Buffer &b : d.buffers)
      if (b.role == role::kLogits)
        logits = &b;
    for (const Buffer &b : d.buffers) {
      if (b.role.empty())
        continue;
      std::string what = "buffer id " + std::to_string(b.id) + " (role " +
                         quote(b.role) + "): " + dtypeName(b.dtype) + " " +
                         shapeString(b.shape) + "; the runtime ";
      int64_t batch = d.bounds.batch;
      if (b.kind == BufferKind::Input) {
        std::vector<int64_t> want = {batch, -1};
        if (b.role == role::kStartPositions)
          want = {batch};
        if (b.role == role::kRank)
          want = {1};
        if (b.dtype != DType::I64 || b.shape != want)
          return fail("AF-17", what + "writes I64 " + shapeString(want));
        continue;
      }
      bool ok = b.dtype == DType::F32 && b.shape.size() == 3 &&
                b.shape[0] == batch && (b.shape[1] == -1 || b.shape[1] == 1) &&
                b.shape[2] >= 1;
      if (!ok)
        return fail("AF-17", what + "reads F32 [" + std::to_string(batch) +
                                 ", -1 or 1, vocab >= 1]");
      if (logits && b.shape != logits->shape)
        return fail("AF-17", what + "reads it like the logits, " +
                                 shapeString(logits->shape));
    }
    return Status::success();
  }

  Status debugLocations() {
    for (size_t i = 0; i < d.debugLocations.size(); ++i) {
      const DebugLocation &l = d.debugLocations[i];
      std::string bad;
      if (!(bad = badName(l.name)).empty())
        return fail("AF-13",
                    "debug location " + std::to_string(i) + ": name " + bad);
      if (l.file.find('\0') != std::string::npos)
        return fail("AF-13", "debug location " + std::to_string(i) +
                                 ": file contains a NUL byte");
    }
    return Status::success();
  }

  Status numerics() {
    if (uint8_t(d.numerics) > uint8_t(NumericsMode::FP32))
      return fail("AF-15", "numerics.mode is " +
                               std::to_string(unsigned(d.numerics)) +
                               ", expected 0 (production) or 1 (fp32)");
    if (uint8_t(d.fakeQuant) > uint8_t(FakeQuantMode::None))
      return fail("AF-15", "numerics.fake_quant is " +
                               std::to_string(unsigned(d.fakeQuant)) +
                               ", expected 0 (all), 1 (kv) or 2 (none)");
    if (uint8_t(d.sumOrder) > uint8_t(SumOrder::Fast))
      return fail("AF-15", "numerics.sum_order is " +
                               std::to_string(unsigned(d.sumOrder)) +
                               ", expected 0 (reference) or 1 (fast)");
    return Status::success();
  }

  Status checkedTensors() {
    std::unordered_set<std::string_view> names;
    for (const Parameter &p : d.parameters)
      names.insert(p.name);
    for (size_t i = 0; i < d.checkedTensors.size(); ++i) {
      const CheckedTensor &c = d.checkedTensors[i];
      std::string bad;
      if (!(bad = badName(c.name)).empty())
        return fail("AF-16",
                    "checked tensor " + std::to_string(i) + ": name " + bad);
      if (!names.insert(c.name).second)
        return fail("AF-16", "checked tensor " + quote(c.name) +
                                 ": duplicate name (of a parameter or "
                                 "another checked tensor)");
      if (c.values.empty())
        return fail("AF-16", "checked tensor " + quote(c.name) + ": no values");
    }
    return Status::success();
  }

  Status tokenIds() {
    // The vocabulary is the last dim of the logits output, when there is one.
    int64_t vocab = -1;
    for (const Buffer &b : d.buffers)
      if (b.role == role::kLogits && !b.shape.empty())
        vocab = b.shape.back();
    for (auto [name, id] :
         {std::pair<const char *, int64_t>{"bos_token_id", d.tokens.bos},
          {"eos_token_id", d.tokens.eos}}) {
      if (id < -1 || (vocab > 0 && id >= vocab) || id > INT32_MAX)
        return fail(
            "AF-14",
            std::string("tokens.") + name + " is " + std::to_string(id) +
                ", expected -1 (none) or an id below the "
                "vocabulary (" +
                (vocab > 0 ? std::to_string(vocab) : std::string("2^31")) +
                ")");
    }
    return Status::success();
  }

  std::string_view src;
  const Description &d;
  uint64_t fileSize;
  uint64_t blobStart;
  std::map<uint32_t, size_t> ids;
  std::set<std::string> roles;
};

} // namespace

Status checkDescription(std::string_view source, const Description &desc,
                        uint64_t fileSize, uint64_t blobStart) {
  return Checker(source, desc, fileSize, blobStart).run();
}

//===----------------------------------------------------------------------===//
// Decoding (after AF-4)
//===----------------------------------------------------------------------===//

namespace {

/// The decoded Description may take kDecodeBudgetFactor times the
/// FlatBuffer's bytes plus kDecodeBudgetSlack: real artifacts take under 2x
/// (T1 and the mid benchmark model: 1.81x), and the file itself is the other 1x
/// of the 4x the loader may hold before an error (docs/RELIABILITY.md 2.5).
constexpr uint64_t kDecodeBudgetFactor = 3;
constexpr uint64_t kDecodeBudgetSlack = uint64_t(1) << 20;

/// Decodes a verified FlatBuffer into plain structs, within a budget.
///
/// The verifier proves reads in bounds, not that the buffer is a tree: one
/// table or vector may be referenced from many places, so a small file can
/// describe a huge Description (a 4 MB artifact decoded to 770 MiB, an 8 MB
/// one to bad_alloc). Every table and scalar vector is decoded at most once
/// (a second reference to a non-empty one is `shared`, refused), and the
/// decoded bytes are charged against `budget` (a multiple of the FlatBuffer's
/// size), so the loader's memory stays proportional to the file.
struct Decoder {
  explicit Decoder(uint64_t budget) : budget(budget) {}

  /// Bytes the Description may still take.
  uint64_t budget;
  /// Set when the budget ran out; decoding then yields empty values.
  bool overBudget = false;
  /// The first table or vector referenced twice (nullptr: none).
  const void *shared = nullptr;
  /// First misaligned scalar vector met (nullptr: none). The FlatBuffers 2.0
  /// verifier checks a vector's length field for 4-byte alignment only, so a
  /// vector of 8-byte scalars can pass it misaligned; it is not read.
  const void *misaligned = nullptr;
  std::unordered_set<const void *> seen;

  bool ok() const { return !overBudget && !shared && !misaligned; }
  /// Charges `bytes`; false (and overBudget) when they do not fit.
  bool charge(uint64_t bytes) {
    if (overBudget || bytes > budget) {
      overBudget = true;
      return false;
    }
    budget -= bytes;
    return true;
  }
  /// Marks `p` (a non-empty table or vector) decoded; false when it was.
  bool once(const void *p) {
    if (!seen.insert(p).second) {
      if (!shared)
        shared = p;
      return false;
    }
    return true;
  }

  std::string str(const flatbuffers::String *s) {
    if (!s || !ok() || !charge(sizeof(std::string) + s->size()))
      return std::string();
    return std::string(s->data(), s->size());
  }

  template <typename T, typename F>
  auto each(const flatbuffers::Vector<flatbuffers::Offset<T>> *v, F f) {
    std::vector<decltype(f(static_cast<const T *>(nullptr)))> out;
    if (!v || v->size() == 0 || !ok() || !once(v) ||
        !charge(uint64_t(v->size()) * sizeof(out[0])))
      return out;
    out.reserve(v->size());
    for (const T *x : *v) {
      if (!once(x) || !ok())
        return out;
      out.push_back(f(x));
    }
    return out;
  }

  template <typename T> std::vector<T> vec(const flatbuffers::Vector<T> *v) {
    if (!v || v->size() == 0 || !ok())
      return {};
    if (reinterpret_cast<uintptr_t>(v->Data()) % alignof(T)) {
      if (!misaligned)
        misaligned = v->Data();
      return {};
    }
    if (!once(v) || !charge(uint64_t(v->size()) * sizeof(T)))
      return {};
    return std::vector<T>(v->begin(), v->end());
  }

  Description decode(const fb::Artifact &a) {
    Description d;
    // Required tables were checked by the verifier.
    d.versions.formatMajor = a.versions()->format_major();
    d.versions.formatMinor = a.versions()->format_minor();
    d.versions.compiler = str(a.versions()->compiler());
    d.versions.mlir = str(a.versions()->mlir());
    d.target = Target(uint8_t(a.target()->target()));
    d.features = a.target()->features();
    d.bounds.batch = a.bounds()->batch();
    d.bounds.maxContext = a.bounds()->max_context();
    d.bounds.maxChunk = a.bounds()->max_chunk();
    d.codeObjects = each(a.code_objects(), [&](const fb::CodeObject *c) {
      CodeObject o;
      o.target = Target(uint8_t(c->target()));
      o.format = CodeFormat(uint8_t(c->format()));
      o.offset = c->offset();
      o.size = c->size();
      o.isa = str(c->isa());
      return o;
    });
    auto kernel = [&](const fb::Kernel *k) {
      Kernel o;
      o.name = str(k->name());
      o.codeObject = k->code_object();
      o.entrySymbol = str(k->entry_symbol());
      o.numBufferArgs = k->num_buffer_args();
      o.numScalarArgs = k->num_scalar_args();
      o.debugLocation = str(k->debug_location());
      if (const fb::Launch *l = k->launch()) {
        const fb::GridDim *g[3] = {l->grid_x(), l->grid_y(), l->grid_z()};
        for (int i = 0; i < 3; ++i)
          if (g[i])
            o.launch.grid[i] = {g[i]->fixed(), g[i]->token_tile()};
        if (const fb::Dim3 *b = l->block()) {
          o.launch.block[0] = b->x();
          o.launch.block[1] = b->y();
          o.launch.block[2] = b->z();
        }
        o.launch.sharedMemoryBytes = l->shared_memory_bytes();
        o.launch.workspaceBytes = l->workspace_bytes();
        o.launch.tokenSlice = l->token_slice();
      }
      return o;
    };
    d.kernels = each(a.kernels(), kernel);
    d.kernelSets = each(a.kernel_sets(), [&](const fb::KernelSet *k) {
      KernelSet o;
      o.target = Target(uint8_t(k->target()));
      o.kernels = each(k->kernels(), kernel);
      return o;
    });
    d.buffers = each(a.buffers(), [&](const fb::Buffer *b) {
      Buffer o;
      o.id = b->id();
      o.dtype = DType(uint8_t(b->dtype()));
      o.shape = vec(b->shape());
      o.kind = BufferKind(uint8_t(b->kind()));
      o.alignment = b->alignment();
      o.role = str(b->role());
      o.arenaOffset = b->arena_offset();
      return o;
    });
    if (d.versions.formatMinor == 0 && d.versions.formatMajor == 1) {
      // 1.0 named no roles: inputs and outputs are positional.
      size_t inputs = 0, outputs = 0;
      for (Buffer &b : d.buffers) {
        if (b.kind == BufferKind::Input && inputs < std::size(role::kInputs))
          b.role = role::kInputs[inputs++];
        else if (b.kind == BufferKind::Output)
          b.role = outputRole(outputs++);
      }
    }
    d.stateSpecs = each(a.state_specs(), [&](const fb::StateSpec *s) {
      StateSpec o;
      o.name = str(s->name());
      o.buffers = vec(s->buffers());
      o.reset = ResetKind(uint8_t(s->reset()));
      o.padValue = s->pad_value();
      return o;
    });
    d.entryPoints = each(a.entry_points(), [&](const fb::EntryPoint *e) {
      EntryPoint o;
      o.name = str(e->name());
      o.steps = each(e->steps(), [&](const fb::Step *s) {
        Step st;
        st.kernel = s->kernel();
        st.buffers = vec(s->buffers());
        st.scalars = each(s->scalars(), [&](const fb::Scalar *x) {
          return Scalar{ScalarKind(uint8_t(x->kind())), x->value()};
        });
        st.debugLocation = s->debug_location();
        st.collective = Collective(uint8_t(s->collective()));
        st.concurrent = s->concurrent();
        st.onlyForOutputs = vec(s->only_for_outputs());
        return st;
      });
      return o;
    });
    d.parameters = each(a.parameters(), [&](const fb::Parameter *p) {
      Parameter o;
      o.name = str(p->name());
      o.dtype = DType(uint8_t(p->dtype()));
      o.shape = vec(p->shape());
      o.buffer = p->buffer();
      if (const fb::Derivation *x = p->derived()) {
        o.derived.rule = DerivedRule(uint8_t(x->rule()));
        o.derived.seed = x->seed();
        o.derived.bound = x->bound();
      }
      o.shards = p->shards();
      o.members = p->members();
      o.sliceDim = p->slice_dim();
      o.sliceBlock = p->slice_block();
      o.sliceBlockOf = p->slice_block_of();
      return o;
    });
    d.checkedTensors =
        each(a.checked_tensors(), [&](const fb::CheckedTensor *c) {
          CheckedTensor o;
          o.name = str(c->name());
          o.values = vec(c->values());
          o.rule = str(c->rule());
          return o;
        });
    d.arenaBytes = a.arena_bytes();
    if (const fb::Partition *x = a.partition()) {
      d.expertParallel = x->expert_parallel();
      d.dataParallelAttention = x->data_parallel_attention();
      d.tensorParallel = x->tensor_parallel();
    }
    if (const fb::Tokens *t = a.tokens()) {
      d.tokens.bos = t->bos_token_id();
      d.tokens.eos = t->eos_token_id();
    }
    if (const fb::Numerics *n = a.numerics()) {
      d.numerics = NumericsMode(uint8_t(n->mode()));
      d.fakeQuant = FakeQuantMode(uint8_t(n->fake_quant()));
      d.sumOrder = SumOrder(uint8_t(n->sum_order()));
    }
    d.debugLocations =
        each(a.debug_locations(), [&](const fb::DebugLocation *l) {
          DebugLocation o;
          o.name = str(l->name());
          o.file = str(l->file());
          o.line = l->line();
          o.column = l->column();
          return o;
        });
    return d;
  }
};

uint16_t loadU16(const uint8_t *p) { return uint16_t(p[0] | p[1] << 8); }
uint32_t loadU32(const uint8_t *p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 |
         uint32_t(p[3]) << 24;
}
uint64_t loadU64(const uint8_t *p) {
  return uint64_t(loadU32(p)) | uint64_t(loadU32(p + 4)) << 32;
}
void storeU16(uint8_t *p, uint16_t v) {
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
}
void storeU32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    p[i] = uint8_t(v >> (8 * i));
}
void storeU64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    p[i] = uint8_t(v >> (8 * i));
}

std::string version(uint16_t major, uint16_t minor) {
  return std::to_string(major) + "." + std::to_string(minor);
}

std::string readRange() {
  return version(kFormatMajor, 0) + "-" + version(kFormatMajor, kFormatMinor);
}

} // namespace

//===----------------------------------------------------------------------===//
// Loading
//===----------------------------------------------------------------------===//

Expected<Artifact> Artifact::load(std::string_view source, const void *data,
                                  size_t size, const LoadOptions &options) {
  if (!data && size)
    return Status::error("ARG", std::string(source) + ": null data");
  auto storage = std::make_shared<std::vector<uint64_t>>((size + 7) / 8);
  if (size)
    std::memcpy(storage->data(), data, size);
  return loadStorage(source, std::move(storage), size, options);
}

static Status ioError(const std::string &path, const char *op, int err) {
  return Status::error(StatusCode::NotFound, "IO",
                       path + ": " + op + " failed: " + std::strerror(err));
}

Expected<Artifact> Artifact::loadFile(const std::string &path,
                                      const LoadOptions &options) {
  int fd;
  do
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0)
    return ioError(path, "open", errno);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0)
    return ioError(path, "stat", errno);
  if (!S_ISREG(st.st_mode))
    return Status::error("AF-1", path + ": not a regular file");
  uint64_t size = uint64_t(st.st_size);
  if (size == 0)
    return Status::error("AF-1", path + ": empty file");
  // An artifact holds code, not weights: 16 GiB is far above any real one.
  if (size > (uint64_t(1) << 34))
    return Status::error("AF-1", path + ": " + std::to_string(size) +
                                     " bytes is larger than any artifact "
                                     "(at most 17179869184)");
  auto storage = std::make_shared<std::vector<uint64_t>>((size + 7) / 8);
  uint8_t *out = reinterpret_cast<uint8_t *>(storage->data());
  uint64_t done = 0;
  while (done < size) {
    ssize_t n =
        ::read(fd, out + done,
               size_t(std::min<uint64_t>(size - done, uint64_t(1) << 30)));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return ioError(path, "read", errno);
    if (n == 0)
      return Status::error("AF-3", path + ": file shrank while reading (" +
                                       std::to_string(done) + " of " +
                                       std::to_string(size) + " bytes)");
    done += uint64_t(n);
  }
  return loadStorage(path, std::move(storage), size, options);
}

Expected<Artifact> Artifact::loadStorage(std::string_view source,
                                         Storage storage, uint64_t size,
                                         const LoadOptions &options) {
  const uint8_t *p = reinterpret_cast<const uint8_t *>(storage->data());
  if (options.checkBytes)
    if (Status s = options.checkBytes(p, size); !s)
      return s;
  std::string src(source);
  auto fail = [&](const char *rule, const std::string &what) {
    // A version this runtime cannot read is incompatible, not malformed.
    StatusCode code = std::string_view(rule) == "AF-2"
                          ? StatusCode::Incompatible
                          : StatusCode::InvalidArgument;
    return Status::error(code, rule, src + ": " + what);
  };

  // AF-1: prefix and magic.
  if (size == 0)
    return fail("AF-1", "empty file");
  if (size < kPrefixSize)
    return fail("AF-1", "truncated: " + std::to_string(size) +
                            " bytes, smaller than the " +
                            std::to_string(kPrefixSize) +
                            "-byte artifact prefix");
  if (std::memcmp(p, kMagic, sizeof(kMagic)) != 0) {
    std::string hint;
    if (p[0] == '<')
      hint = " (looks like an HTML page)";
    else if (p[8] == '{')
      hint = " (looks like a safetensors file)";
    return fail("AF-1", "not a v4 artifact: magic " +
                            quote(std::string_view(
                                reinterpret_cast<const char *>(p), 8)) +
                            ", expected 'V4ARTFCT'" + hint);
  }

  // AF-2: version, before the checksum so a newer file reads "newer".
  uint16_t major = loadU16(p + 8), minor = loadU16(p + 10);
  std::string found = "artifact format " + version(major, minor);
  std::string reads = " this runtime (v4rt " + std::string(kRuntimeVersion) +
                      ") reads (" + readRange() + ")";
  if (major > kFormatMajor || (major == kFormatMajor && minor > kFormatMinor))
    return fail("AF-2", found + " is newer than" + reads +
                            ": upgrade v4rt or recompile the model with a "
                            "v4c that writes format " +
                            std::to_string(kFormatMajor) + ".x");
  if (major < kFormatMajor)
    return fail("AF-2", found + " is older than" + reads +
                            ": recompile the model with the current v4c");

  // AF-3: declared size and checksum.
  uint64_t declared = loadU64(p + 16);
  if (declared > size)
    return fail("AF-3", "truncated: the prefix declares " +
                            std::to_string(declared) + " bytes, the file has " +
                            std::to_string(size));
  if (declared < size)
    return fail("AF-3",
                std::to_string(size - declared) + " trailing bytes after the " +
                    std::to_string(declared) + " bytes the prefix declares");
  uint32_t stored = loadU32(p + 12), computed = fileChecksum(p, size);
  if (stored != computed)
    return fail("AF-3", "checksum mismatch: stored " + hex(stored) +
                            ", computed " + hex(computed) +
                            ": the file is corrupt; copy it again or "
                            "recompile");

  Artifact a;
  a.src = src;
  a.storage = storage;
  a.bytes = p;
  a.size = size;
  a.major = major;
  a.minor = minor;
  a.checksum = stored;
  uint64_t fbSize = loadU64(p + 24);
  if (options.integrityOnly) {
    a.fbSize = fbSize;
    return a;
  }

  // AF-4: FlatBuffer bounds, identifier, generated verifier.
  if (fbSize < 8 || fbSize > size - kPrefixSize ||
      fbSize >= FLATBUFFERS_MAX_BUFFER_SIZE)
    return fail("AF-4", "FlatBuffer size " + std::to_string(fbSize) +
                            " does not fit the file (8.." +
                            std::to_string(size - kPrefixSize) + " bytes)");
  const uint8_t *fbData = p + kPrefixSize;
  if (std::memcmp(fbData + 4, kFileIdentifier, 4) != 0)
    return fail("AF-4",
                "FlatBuffer identifier " +
                    quote(std::string_view(
                        reinterpret_cast<const char *>(fbData + 4), 4)) +
                    ", expected 'V4AF'");
  flatbuffers::Verifier::Options vo;
  vo.max_depth = options.maxDepth;
  vo.max_tables = options.maxTables;
  vo.check_alignment = true;
  flatbuffers::Verifier verifier(fbData, size_t(fbSize), vo);
  if (!fb::VerifyArtifactBuffer(verifier))
    return fail("AF-4",
                "the FlatBuffer (bytes 32.." + std::to_string(32 + fbSize) +
                    ") fails the schema verifier: an offset out of bounds, "
                    "a missing required field, or more than " +
                    std::to_string(options.maxDepth) + " levels or " +
                    std::to_string(options.maxTables) + " tables");

  // Decode; then AF-5..AF-14.
  a.fbSize = fbSize;
  Decoder decoder(kDecodeBudgetFactor * fbSize + kDecodeBudgetSlack);
  a.desc = decoder.decode(*fb::GetArtifact(fbData));
  if (const void *at = decoder.shared)
    return fail("AF-4",
                "the FlatBuffer references the table or vector at file byte " +
                    std::to_string(static_cast<const uint8_t *>(at) - p) +
                    " twice; an artifact's tables form a tree (a shared "
                    "offset would make a small file decode to a huge one)");
  if (decoder.overBudget)
    return fail("AF-4", "the FlatBuffer of " + std::to_string(fbSize) +
                            " bytes decodes to more than " +
                            std::to_string(kDecodeBudgetFactor) +
                            " times its size");
  if (const void *at = decoder.misaligned) {
    return fail("AF-4",
                "the FlatBuffer has a vector of 8-byte values at "
                "file byte " +
                    std::to_string(static_cast<const uint8_t *>(at) - p) +
                    ", not 8-byte aligned");
  }
  const Versions &v = a.desc.versions;
  if (v.formatMajor != major || v.formatMinor != minor)
    return fail("AF-5", "versions table says format " +
                            version(v.formatMajor, v.formatMinor) +
                            ", the prefix " + version(major, minor));
  uint64_t blobStart = (kPrefixSize + fbSize + kBlobAlignment - 1) /
                       kBlobAlignment * kBlobAlignment;
  if (Status s = checkDescription(src, a.desc, size, blobStart); !s)
    return s;
  for (size_t i = 0; i < a.desc.buffers.size(); ++i)
    a.bufferIndex.emplace(a.desc.buffers[i].id, i);
  return a;
}

ByteSpan Artifact::code(size_t index) const {
  if (index >= desc.codeObjects.size())
    return {};
  const CodeObject &c = desc.codeObjects[index];
  return {bytes + c.offset, size_t(c.size)};
}

const Buffer *Artifact::findBuffer(uint32_t id) const {
  auto it = bufferIndex.find(id);
  return it == bufferIndex.end() ? nullptr : &desc.buffers[it->second];
}

size_t Artifact::bufferSlot(uint32_t id) const {
  auto it = bufferIndex.find(id);
  return it == bufferIndex.end() ? desc.buffers.size() : it->second;
}

std::vector<Target> Artifact::targets() const {
  std::vector<Target> all = {desc.target};
  for (const KernelSet &k : desc.kernelSets)
    all.push_back(k.target);
  return all;
}

const std::vector<Kernel> *Artifact::kernelsFor(Target target) const {
  if (target == desc.target)
    return &desc.kernels;
  for (const KernelSet &k : desc.kernelSets)
    if (k.target == target)
      return &k.kernels;
  return nullptr;
}

const Kernel *Artifact::findKernel(std::string_view name) const {
  for (const Kernel &k : desc.kernels)
    if (k.name == name)
      return &k;
  return nullptr;
}

const Buffer *Artifact::findBufferByRole(std::string_view role) const {
  for (const Buffer &b : desc.buffers)
    if (!b.role.empty() && b.role == role)
      return &b;
  return nullptr;
}

Artifact::MemoryTotals Artifact::memoryTotals() const {
  MemoryTotals t;
  t.arena = desc.arenaBytes;
  for (const Buffer &b : desc.buffers) {
    uint64_t n = bufferBytes(b, desc.bounds.maxChunk);
    switch (b.kind) {
    case BufferKind::Parameter:
      t.weights += n;
      break;
    case BufferKind::State:
      t.state += n;
      break;
    case BufferKind::Activation:
      t.otherActivations += b.arenaOffset < 0 ? n : 0;
      break;
    case BufferKind::Input:
    case BufferKind::Output:
      t.io += n;
      break;
    }
  }
  return t;
}

const EntryPoint *Artifact::findEntryPoint(std::string_view name) const {
  for (const EntryPoint &e : desc.entryPoints)
    if (e.name == name)
      return &e;
  return nullptr;
}

uint64_t Artifact::bufferBytes(const Buffer &buffer, int64_t tokens) const {
  uint64_t bytes = 0;
  if (tokens < 0 || tokens > desc.bounds.maxChunk)
    return 0;
  bool token = buffer.kind == BufferKind::Input ||
               buffer.kind == BufferKind::Output ||
               buffer.kind == BufferKind::Activation;
  if (!checkShape(buffer.shape, buffer.dtype, token, tokens, bytes).empty())
    return 0;
  return bytes;
}

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

uint32_t Writer::addCodeObject(Target target, CodeFormat format,
                               std::vector<uint8_t> image, std::string isa) {
  CodeObject c;
  c.target = target;
  c.format = format;
  c.isa = std::move(isa);
  c.size = image.size();
  desc.codeObjects.push_back(c);
  images.push_back(std::move(image));
  return uint32_t(desc.codeObjects.size() - 1);
}

namespace {

/// Builds the FlatBuffer with the given absolute blob offsets. ForceDefaults
/// keeps the size independent of the offsets' values.
std::vector<uint8_t> buildFlatbuffer(const Description &d,
                                     const std::vector<uint64_t> &offsets,
                                     const WriteOptions &options) {
  flatbuffers::FlatBufferBuilder b(4096);
  b.ForceDefaults(true);
  uint16_t tableMinor = options.tableFormatMinor >= 0
                            ? uint16_t(options.tableFormatMinor)
                            : options.formatMinor;
  auto versions = fb::CreateVersionsDirect(b, options.formatMajor, tableMinor,
                                           d.versions.compiler.c_str(),
                                           d.versions.mlir.c_str());
  auto target =
      fb::CreateTargetInfo(b, fb::Target(uint8_t(d.target)), d.features);
  auto bounds = fb::CreateBounds(b, d.bounds.batch, d.bounds.maxContext,
                                 d.bounds.maxChunk);
  std::vector<flatbuffers::Offset<fb::CodeObject>> codes;
  for (size_t i = 0; i < d.codeObjects.size(); ++i)
    codes.push_back(fb::CreateCodeObjectDirect(
        b, fb::Target(uint8_t(d.codeObjects[i].target)),
        fb::CodeFormat(uint8_t(d.codeObjects[i].format)), offsets[i],
        d.codeObjects[i].size,
        d.codeObjects[i].isa.empty() ? nullptr : d.codeObjects[i].isa.c_str()));
  bool v10 = options.formatMajor == 1 && options.formatMinor == 0;
  auto kernelTable = [&](const std::vector<Kernel> &table) {
    std::vector<flatbuffers::Offset<fb::Kernel>> kernels;
    for (const Kernel &k : table) {
      // 1.0 had no launch geometry.
      flatbuffers::Offset<fb::Launch> launch;
      if (!v10) {
        const Launch &l = k.launch;
        fb::GridDim g[3];
        for (int i = 0; i < 3; ++i)
          g[i] = fb::GridDim(l.grid[i].fixed, l.grid[i].tokenTile);
        fb::Dim3 block(l.block[0], l.block[1], l.block[2]);
        launch = fb::CreateLaunch(b, &g[0], &g[1], &g[2], &block,
                                  l.sharedMemoryBytes, l.workspaceBytes,
                                  l.tokenSlice);
      }
      kernels.push_back(fb::CreateKernel(
          b, b.CreateString(k.name), k.codeObject,
          b.CreateString(k.entrySymbol), k.numBufferArgs, k.numScalarArgs,
          b.CreateString(k.debugLocation), launch));
    }
    return b.CreateVector(kernels);
  };
  auto kernels = kernelTable(d.kernels);
  std::vector<flatbuffers::Offset<fb::KernelSet>> sets;
  for (const KernelSet &k : d.kernelSets)
    sets.push_back(fb::CreateKernelSet(b, fb::Target(uint8_t(k.target)),
                                       kernelTable(k.kernels)));
  std::vector<flatbuffers::Offset<fb::Buffer>> buffers;
  for (const Buffer &x : d.buffers)
    buffers.push_back(fb::CreateBuffer(
        b, x.id, fb::DType(uint8_t(x.dtype)), b.CreateVector(x.shape),
        fb::BufferKind(uint8_t(x.kind)), x.alignment,
        v10 || x.role.empty() ? 0 : b.CreateString(x.role),
        v10 ? -1 : x.arenaOffset));
  std::vector<flatbuffers::Offset<fb::StateSpec>> states;
  for (const StateSpec &s : d.stateSpecs)
    states.push_back(fb::CreateStateSpec(
        b, b.CreateString(s.name), b.CreateVector(s.buffers),
        fb::ResetKind(uint8_t(s.reset)), s.padValue));
  std::vector<flatbuffers::Offset<fb::EntryPoint>> entries;
  for (const EntryPoint &e : d.entryPoints) {
    std::vector<flatbuffers::Offset<fb::Step>> steps;
    for (const Step &s : e.steps) {
      std::vector<flatbuffers::Offset<fb::Scalar>> scalars;
      for (const Scalar &x : s.scalars)
        scalars.push_back(
            fb::CreateScalar(b, fb::ScalarKind(uint8_t(x.kind)), x.value));
      steps.push_back(fb::CreateStep(
          b, s.kernel, b.CreateVector(s.buffers), b.CreateVector(scalars),
          s.debugLocation, fb::Collective(uint8_t(s.collective)), s.concurrent,
          s.onlyForOutputs.empty() ? 0 : b.CreateVector(s.onlyForOutputs)));
    }
    entries.push_back(
        fb::CreateEntryPoint(b, b.CreateString(e.name), b.CreateVector(steps)));
  }
  std::vector<flatbuffers::Offset<fb::Parameter>> params;
  for (const Parameter &p : d.parameters)
    params.push_back(fb::CreateParameter(
        b, b.CreateString(p.name), fb::DType(uint8_t(p.dtype)),
        b.CreateVector(p.shape), p.buffer,
        p.derived.rule == DerivedRule::None
            ? 0
            : fb::CreateDerivation(b, fb::DerivedRule(uint8_t(p.derived.rule)),
                                   p.derived.seed, p.derived.bound),
        p.shards, p.members, p.sliceDim, p.sliceBlock, p.sliceBlockOf));
  std::vector<flatbuffers::Offset<fb::CheckedTensor>> checked;
  for (const CheckedTensor &c : d.checkedTensors)
    checked.push_back(fb::CreateCheckedTensor(b, b.CreateString(c.name),
                                              b.CreateVector(c.values),
                                              b.CreateString(c.rule)));
  std::vector<flatbuffers::Offset<fb::DebugLocation>> locs;
  for (const DebugLocation &l : d.debugLocations)
    locs.push_back(fb::CreateDebugLocation(
        b, b.CreateString(l.name), b.CreateString(l.file), l.line, l.column));
  auto root = fb::CreateArtifact(
      b, versions, target, bounds, b.CreateVector(codes), kernels,
      b.CreateVector(buffers), b.CreateVector(states), b.CreateVector(entries),
      b.CreateVector(params), b.CreateVector(locs), v10 ? 0 : d.arenaBytes,
      v10 || (d.tokens.bos < 0 && d.tokens.eos < 0)
          ? 0
          : fb::CreateTokens(b, d.tokens.bos, d.tokens.eos),
      checked.empty() ? 0 : b.CreateVector(checked),
      options.formatMinor < 2 && options.formatMajor == 1
          ? 0
          : fb::CreateNumerics(b, fb::NumericsMode(uint8_t(d.numerics)),
                               fb::FakeQuantMode(uint8_t(d.fakeQuant)),
                               fb::SumOrder(uint8_t(d.sumOrder))),
      sets.empty() ? 0 : b.CreateVector(sets),
      d.expertParallel == 1 && !d.dataParallelAttention && d.tensorParallel == 1
          ? 0
          : fb::CreatePartition(b, d.expertParallel, d.dataParallelAttention,
                                d.tensorParallel));
  fb::FinishArtifactBuffer(b, root);
  return std::vector<uint8_t>(b.GetBufferPointer(),
                              b.GetBufferPointer() + b.GetSize());
}

uint64_t alignUp(uint64_t v) {
  return (v + kBlobAlignment - 1) / kBlobAlignment * kBlobAlignment;
}

} // namespace

Expected<std::vector<uint8_t>>
Writer::serialize(const WriteOptions &options) const {
  if (images.size() != desc.codeObjects.size())
    return Status::error(
        "ARG", "artifact writer: " + std::to_string(desc.codeObjects.size()) +
                   " code objects but " + std::to_string(images.size()) +
                   " images; add code with addCodeObject");
  for (size_t i = 0; i < images.size(); ++i)
    if (images[i].size() != desc.codeObjects[i].size)
      return Status::error("ARG", "artifact writer: code object " +
                                      std::to_string(i) +
                                      " size differs from its image");
  if (options.verify) {
    // Check the description before laying it out, with the blob layout the
    // writer is about to produce taken as given.
    Description laidOut = desc;
    uint64_t at = 0;
    for (CodeObject &c : laidOut.codeObjects) {
      c.offset = at;
      at = alignUp(at + c.size);
    }
    if (Status s =
            checkDescription("artifact being written", laidOut, UINT64_MAX, 0);
        !s)
      return s;
  }
  // Two passes: the FlatBuffer's size does not depend on offset values.
  std::vector<uint64_t> offsets(images.size(), 0);
  std::vector<uint8_t> fbBytes = buildFlatbuffer(desc, offsets, options);
  for (int pass = 0; pass < 2; ++pass) {
    uint64_t at = alignUp(kPrefixSize + fbBytes.size());
    for (size_t i = 0; i < images.size(); ++i) {
      offsets[i] = at;
      at = alignUp(at + images[i].size());
    }
    std::vector<uint8_t> again = buildFlatbuffer(desc, offsets, options);
    bool stable = again.size() == fbBytes.size();
    fbBytes = std::move(again);
    if (stable)
      break;
  }
  uint64_t total = images.empty() ? kPrefixSize + fbBytes.size()
                                  : offsets.back() + images.back().size();
  std::vector<uint8_t> out(total, 0);
  std::memcpy(out.data(), kMagic, sizeof(kMagic));
  storeU16(out.data() + 8, options.formatMajor);
  storeU16(out.data() + 10, options.formatMinor);
  storeU64(out.data() + 16, total);
  storeU64(out.data() + 24, fbBytes.size());
  std::memcpy(out.data() + kPrefixSize, fbBytes.data(), fbBytes.size());
  for (size_t i = 0; i < images.size(); ++i)
    if (!images[i].empty())
      std::memcpy(out.data() + offsets[i], images[i].data(), images[i].size());
  storeU32(out.data() + 12, fileChecksum(out.data(), out.size()));
  if (options.verify) {
    auto loaded =
        Artifact::load("artifact being written", out.data(), out.size());
    if (!loaded)
      return loaded.status();
  }
  return out;
}

Status Writer::writeFile(const std::string &path,
                         const WriteOptions &options) const {
  auto bytes = serialize(options);
  if (!bytes)
    return bytes.status();
  std::string dir = ".";
  std::string base = path;
  if (size_t slash = path.rfind('/'); slash != std::string::npos) {
    dir = slash == 0 ? "/" : path.substr(0, slash);
    base = path.substr(slash + 1);
  }
  if (base.empty())
    return Status::error("ARG", path + ": output path names a directory");
  std::string tmp = (dir == "/" ? "" : dir) + "/." + base + ".tmp-XXXXXX";
  std::vector<char> buf(tmp.begin(), tmp.end());
  buf.push_back('\0');
  int fd = ::mkstemp(buf.data());
  if (fd < 0)
    return ioError(tmp, "create temporary", errno);
  tmp = buf.data();
  auto abandon = [&](const char *op, int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return ioError(path, op, err);
  };
  const uint8_t *p = bytes->data();
  size_t left = bytes->size();
  while (left) {
    ssize_t n = ::write(fd, p, std::min<size_t>(left, size_t(1) << 30));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return abandon("write", n < 0 ? errno : EIO);
    p += n;
    left -= size_t(n);
  }
  if (::fchmod(fd, 0644) != 0)
    return abandon("chmod", errno);
  if (::fsync(fd) != 0)
    return abandon("fsync", errno);
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ioError(path, "close", err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ioError(path, "rename", err);
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::success();
}

} // namespace v4::artifact
