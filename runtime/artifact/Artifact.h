//===- Artifact.h - the .v4a artifact: writer and validated reader -*- C++
//-*-===//
//
// The artifact is the only contract between the compiler and the runtime
// (schema: runtime/schema/v4_artifact.fbs). This library links no MLIR or
// LLVM and throws no exceptions across its API. Loading runs the layers of
// docs/RELIABILITY.md section 2.5 in order and stops at the first failure:
//
//   AF-1   the file has the 32-byte prefix and the magic "V4ARTFCT"
//   AF-2   format version: major == ours, minor <= ours
//   AF-3   declared total size == actual size; CRC-32 matches
//   AF-4   FlatBuffer: size in bounds, identifier "V4AF", generated verifier
//          with the true length and depth/table limits; required fields;
//          vectors of 8-byte values 8-byte aligned (the 2.0 verifier checks
//          4 only)
//   AF-5   versions table agrees with the prefix; strings non-empty/no NUL
//   AF-6   target, feature bits and static bounds valid
//   AF-7   code objects: valid target/format, blobs inside the file after the
//          FlatBuffer, 64-byte aligned, non-empty, non-overlapping
//   AF-8   kernels: unique names, code object index in range, the code
//          object of the kernel table's target;
//          launch geometry: every grid factor >= 1, block dims >= 1 and at
//          most kMaxThreadsPerBlock threads, shared memory at most
//          kMaxSharedMemoryBytes; a host kernel (CPU code object) has one
//          thread and no shared memory; (1.10) token slices only for a
//          host kernel of one block without scalars
//   AF-9   buffers: unique ids, valid dtype/kind, shape non-negative except
//          one -1 token dim (not on parameters/state), alignment a power of
//          two, byte size overflow-checked at the static bounds; inputs and
//          outputs carry a unique known role of their kind, other buffers
//          none; an arena offset only on activations, aligned to the
//          buffer's alignment, its bytes at max_chunk inside arena_bytes
//   AF-10  entry points: unique names; each step's kernel in range, buffer
//          ids exist, buffer/scalar counts equal the kernel's, scalar kinds
//          valid, debug location index in range; every call of a kernel
//          passes the same dtype and rank per argument (its one compiled
//          signature, KernelABI.h); a token-sliced kernel's buffers have
//          only size-1 dims before their token dim; a concurrent step (1.11)
//          is a launch after a launch, and the distinct buffers of its
//          group do not share arena bytes; a step's only_for_outputs (1.12)
//          are a launch's, ascending, each an output role the artifact has
//   AF-11  state specs: unique names, buffers exist and are of kind state
//          and lead with the batch dim, valid reset kind
//   AF-12  parameters: unique checkpoint names, valid dtype, non-negative
//          overflow-checked shape, buffer exists, is a parameter and is bound
//          once, with the buffer's byte size (a dtype may be stored as another
//          of its width, f8e4m3 as i8); a derivation has a known rule and fits
//          the parameter (engram_multipliers: I64 [n], bound >= 1)
//   AF-16  checked tensors: valid names, unique and no parameter's name,
//          at least one value
//   AF-13  debug locations: non-empty names
//   AF-14  token ids: BOS and EOS are -1 or ids below the vocabulary (the
//          last dim of the logits output)
//   AF-15  numerics: the numerics, fake-quant and sum-order modes are known
//          values
//   AF-17  roles: inputs I64 [batch, -1] (start_positions I64 [batch]),
//          outputs F32 [batch, -1 or 1, vocab] all shaped like the logits:
//          what v4rt_session_run writes and reads
//   AF-18  kernel sets (1.5): each of a known target other than the
//          artifact's and the other sets', and its kernels checked as AF-8,
//          parallel to the artifact's kernels: as many, the same names and
//          the same buffer and scalar argument counts, in the same order
//   AF-19  partition (1.6): expert_parallel 1..65536; a plan of more than
//          one rank has the input "rank" (I64 [1]); a collective step is
//          in a plan of more than one rank, takes no scalars and
//          activations or outputs of one element type: all_reduce_sum one
//          bf16/f32 buffer, all_gather two (bf16/f32/i64) and
//          reduce_scatter_sum two (bf16/f32), the second holding world
//          times (or one world-th of) the first's elements, (1.9)
//          all_to_all four: counts and received counts I64 [world] and two
//          bf16/f32/i64 buffers of one shape, dim 0 the world, rank >= 2;
//          a sharded
//          parameter is a `{}` stack with shards = the partition's ranks;
//          data-parallel attention only with more than one rank;
//          (1.7) tensor_parallel 1..65536, equal to expert_parallel when
//          both are above 1; a sliced parameter (slice_dim >= 0; (1.8)
//          a stack: slice_dim >= 1 and no padding members) has shards =
//          the world, slice_dim < its rank, extent
//          >= 1 there, and blocks 1 <= slice_block dividing slice_block_of
//          (1 and 1 unless it has a slice)
// AF-4 also bounds decoding: no table or vector is referenced twice, and
// the Description takes at most 3x the FlatBuffer's bytes (+1 MiB).
//
// Errors are Status values whose message names the file, the offending item
// and ends in the rule id, e.g. "[AF-8]". Non-rule failures use "IO" (system
// call failed) or "ARG" (bad caller argument).
//
//===----------------------------------------------------------------------===//

#ifndef V4_RUNTIME_ARTIFACT_ARTIFACT_H
#define V4_RUNTIME_ARTIFACT_ARTIFACT_H

#include "runtime/base/DType.h"
#include "runtime/base/NumericsMode.h"
#include "runtime/base/Status.h"

#include <algorithm>
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

namespace v4::artifact {

//===----------------------------------------------------------------------===//
// Status and Expected
//===----------------------------------------------------------------------===//

/// The runtime's one Status/Expected (runtime/base/Status.h).
using ::v4::Expected;
using ::v4::Status;
using ::v4::StatusCode;

//===----------------------------------------------------------------------===//
// Format constants
//===----------------------------------------------------------------------===//

/// The format this library writes and the newest it reads.
constexpr uint16_t kFormatMajor = 1;
constexpr uint16_t kFormatMinor = 12;
/// Version of the project (compiler, runtime and tools), named in version
/// messages.
constexpr const char *kRuntimeVersion = "0.1.0";

/// The `--version` line every tool prints: "<tool> 0.1.0 (artifact format
/// 1.1, reads 1.0-1.1; built with MLIR 22.1.8)".
std::string toolVersion(std::string_view tool);

constexpr size_t kPrefixSize = 32;
constexpr char kMagic[8] = {'V', '4', 'A', 'R', 'T', 'F', 'C', 'T'};
constexpr const char *kFileIdentifier = "V4AF";
constexpr uint64_t kBlobAlignment = 64;

/// Feature bits of TargetInfo.features this runtime knows.
enum Feature : uint64_t {
  /// Kernels use FP8 (e4m3 + e8m0 scales) tensor instructions.
  kFeatureFP8 = 1u << 0,
  /// Kernels use FP4 (e2m1) expert weights.
  kFeatureFP4 = 1u << 1,
  /// The artifact has an Engram state (V4-SPEC 8).
  kFeatureEngram = 1u << 2,
};
constexpr uint64_t kKnownFeatures = kFeatureFP8 | kFeatureFP4 | kFeatureEngram;

/// CRC-32 (IEEE 802.3, reflected, init and final xor 0xFFFFFFFF; zlib's).
/// `crc` is the running value, so calls can be chained:
/// crc32(b, n2, crc32(a, n1)).
uint32_t crc32(const void *data, size_t size, uint32_t crc = 0);

/// The checksum stored at prefix offset 12: the CRC-32 of the whole file
/// with the 4 checksum bytes skipped. `size` must be >= kPrefixSize.
uint32_t fileChecksum(const uint8_t *data, size_t size);

//===----------------------------------------------------------------------===//
// Plain descriptions (written by Writer, returned by Artifact)
//===----------------------------------------------------------------------===//

enum class Target : uint8_t { CPU = 0, SM90A = 1 };
enum class CodeFormat : uint8_t { HostSharedObject = 0, PTX = 1, Cubin = 2 };
/// The runtime's one element type (runtime/base/DType.h; the schema's
/// values).
using ::v4::DType;
using ::v4::dtypeBits;
using ::v4::dtypeName;
enum class BufferKind : uint8_t {
  Parameter = 0,
  Input = 1,
  Output = 2,
  Activation = 3,
  State = 4,
};
enum class ResetKind : uint8_t { Zero = 0, NegativeInfinity = 1, PadId = 2 };
enum class ScalarKind : uint8_t { Constant = 0, TokenCount = 1, StartPos = 2 };
/// 1.6: a step that is a collective over its buffers instead of a launch.
enum class Collective : uint8_t {
  None = 0,
  AllReduceSum = 1,
  AllGather = 2,
  ReduceScatterSum = 3,
  /// 1.9: buffers (counts, in, recvCounts, out), counts I64 [world].
  AllToAll = 4
};

const char *targetName(Target target);
const char *codeFormatName(CodeFormat format);
const char *bufferKindName(BufferKind kind);
const char *resetKindName(ResetKind kind);
const char *scalarKindName(ScalarKind kind);
/// The schema's name ("all_reduce_sum", ...; "none" for a launch).
const char *collectiveName(Collective collective);

struct Versions {
  uint16_t formatMajor = kFormatMajor;
  uint16_t formatMinor = kFormatMinor;
  std::string compiler;
  std::string mlir;
};

struct Bounds {
  int64_t batch = 1;
  int64_t maxContext = 1;
  int64_t maxChunk = 1;
};

/// BOS/EOS token ids from the model's config; -1 when it names none.
struct TokenIds {
  int64_t bos = -1;
  int64_t eos = -1;
};

struct CodeObject {
  Target target = Target::CPU;
  CodeFormat format = CodeFormat::HostSharedObject;
  /// Absolute file offset and size of the image; set by the reader, ignored
  /// by the writer (which lays the images out itself).
  uint64_t offset = 0;
  uint64_t size = 0;
  /// A host shared object's x86-64 level (runtime/base/HostISA.h); empty:
  /// x86-64.
  std::string isa;
};

/// One grid dimension as a function of a call's token count T.
struct GridDim {
  uint32_t fixed = 1;
  /// 0: the dimension does not depend on T.
  uint32_t tokenTile = 0;
  /// fixed * ceil(tokens / tokenTile) (fixed when tokenTile is 0).
  uint64_t blocks(int64_t tokens) const {
    if (tokenTile == 0 || tokens <= 0)
      return fixed;
    return uint64_t(fixed) * ((uint64_t(tokens) + tokenTile - 1) / tokenTile);
  }
};

/// How one dispatch of a kernel is launched (format 1.1). The default is a
/// host kernel's: one call, no threads, no shared memory.
struct Launch {
  GridDim grid[3];
  uint32_t block[3] = {1, 1, 1};
  uint32_t sharedMemoryBytes = 0;
  /// Format 1.4: bytes of device scratch the kernel takes after its
  /// buffers (GPU kernels; sized at Bounds::maxChunk tokens).
  uint64_t workspaceBytes = 0;
  /// Format 1.10: 0, or a host kernel of one block that computes each
  /// token from that token's inputs alone: the runtime may call it on
  /// slices of at most tokenSlice tokens, in parallel (AF-8; its steps'
  /// buffers: AF-10).
  uint32_t tokenSlice = 0;
};

/// Limits checked by AF-8 (sm_90a: 1024 threads and 227 KiB of shared
/// memory per block).
constexpr uint64_t kMaxThreadsPerBlock = 1024;
constexpr uint32_t kMaxSharedMemoryBytes = 227 * 1024;

struct Kernel {
  std::string name;
  uint32_t codeObject = 0;
  std::string entrySymbol;
  uint32_t numBufferArgs = 0;
  uint32_t numScalarArgs = 0;
  std::string debugLocation;
  Launch launch;
};

/// Format 1.5: the kernels of one more target (v4c --target=cpu,sm_90a).
/// Kernel i does what Description::kernels[i] does (the same name and
/// argument counts), compiled for `target`: its entry symbol, code object and
/// launch geometry are this target's. Steps index both tables alike.
struct KernelSet {
  Target target = Target::CPU;
  std::vector<Kernel> kernels;
};

struct Buffer {
  uint32_t id = 0;
  DType dtype = DType::F32;
  /// -1 marks the dynamic token dim (bounded by Bounds::maxChunk).
  std::vector<int64_t> shape;
  BufferKind kind = BufferKind::Activation;
  uint32_t alignment = 64;
  /// Inputs and outputs: what the buffer holds (see the role names below);
  /// empty on every other kind.
  std::string role;
  /// Activations: the byte offset in the session's activation arena, or -1
  /// for a buffer of its own.
  int64_t arenaOffset = -1;
};

/// The named roles of input and output buffers (format 1.1; a 1.0 file's
/// inputs and outputs get them by position, in this order).
namespace role {
constexpr const char *kIds = "ids";
constexpr const char *kNextIds = "next_ids";
constexpr const char *kStartPositions = "start_positions";
constexpr const char *kPositions = "positions";
constexpr const char *kInputs[] = {kIds, kNextIds, kStartPositions, kPositions};
/// 1.6: the optional input of a partitioned plan, I64 [1]: the rank the
/// session runs as (Artifact.partition).
constexpr const char *kRank = "rank";
constexpr const char *kLogits = "logits";
constexpr const char *kMtpLogits = "mtp_logits";
} // namespace role
/// The role of output `index`: "logits", "mtp_logits", "mtp_logits.1", ...
std::string outputRole(size_t index);
/// Whether `name` is an input role, or an output role of outputRole's form.
bool isInputRole(std::string_view name);
bool isOutputRole(std::string_view name);

struct StateSpec {
  std::string name;
  std::vector<uint32_t> buffers;
  ResetKind reset = ResetKind::Zero;
  int64_t padValue = 0;
};

struct Scalar {
  ScalarKind kind = ScalarKind::Constant;
  int64_t value = 0;
};

struct Step {
  uint32_t kernel = 0;
  std::vector<uint32_t> buffers;
  std::vector<Scalar> scalars;
  /// Index into Description::debugLocations, or -1.
  int32_t debugLocation = -1;
  /// 1.6: None: launch `kernel`; else the collective over buffers[0].
  Collective collective = Collective::None;
  /// 1.11: may run with the launches before it up to the last step without
  /// the flag (AF-10).
  bool concurrent = false;
  /// 1.12: the only outputs (outputRole indices, ascending) this launch's
  /// writes reach; a call that wants none of them may skip it (AF-10).
  /// Empty: every call runs it.
  std::vector<uint32_t> onlyForOutputs;
};

/// Whether a call that wants the outputs `wanted` (bit i: outputRole(i))
/// runs step `s`: unless all the outputs its writes reach
/// (Step::onlyForOutputs) are unwanted.
bool runsFor(const Step &s, uint64_t wanted);

struct EntryPoint {
  std::string name;
  std::vector<Step> steps;
};

/// The steps of `ep` that a call wanting the outputs `wanted` runs
/// (runsFor), in order; a kept launch whose group leader (the last step
/// before it without Step::concurrent) was dropped leads its group instead.
EntryPoint stepsFor(const EntryPoint &ep, uint64_t wanted);

/// How the runtime computes a parameter the checkpoint may omit (1.2).
enum class DerivedRule : uint8_t {
  None = 0,
  /// V4-SPEC 8.4: m_k = 2 r_k + 1, r = numpy default_rng(seed).integers(0,
  /// bound, size=n, dtype=int64); the parameter is I64 [n].
  EngramMultipliers = 1,
};

struct Derivation {
  DerivedRule rule = DerivedRule::None;
  uint64_t seed = 0;
  int64_t bound = 0;
};

struct Parameter {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint32_t buffer = 0;
  /// 1.2: rule None: the checkpoint must carry it.
  Derivation derived;
  /// 1.6: a stack that is the running rank r's shard of `shards`: member e
  /// is the checkpoint tensor of index r * shape[0] + e.
  uint32_t shards = 1;
  /// 1.6: the pattern's member count (0: shape[0] * shards); members of a
  /// shard from this index on are padding (zeros).
  uint64_t members = 0;
  /// 1.7: with shards > 1, rank r's slice along this dim
  /// (sliceSourceIndex); on a `{}` stack (dim >= 1, 1.8) every member's
  /// slice along dim - 1 (stackMemberSlice); -1: not sliced.
  int32_t sliceDim = -1;
  /// 1.7: the rows of the rank's slice one entry covers, and the
  /// checkpoint's (block scales; 1 and 1 for a plain slice).
  uint64_t sliceBlock = 1;
  uint64_t sliceBlockOf = 1;
};

/// The checkpoint shape of `p`: its shape, with a sliced dim at the
/// checkpoint's extent ceil(shards * L * sliceBlock / sliceBlockOf).
std::vector<int64_t> checkpointShape(const Parameter &p);

/// The checkpoint index along `p`'s sliced dim of its index `i` on rank
/// `rank`: ((rank * L + i) * sliceBlock) / sliceBlockOf.
int64_t sliceSourceIndex(const Parameter &p, uint32_t rank, int64_t i);

/// Copies rank `rank`'s slice of the sliced parameter `p` from `full` (the
/// checkpoint tensor's bytes, checkpointShape(p)) into `dst` (p's bytes,
/// row-major).
void gatherSlice(const Parameter &p, uint32_t rank, const uint8_t *full,
                 uint8_t *dst);

/// Where rank `rank`'s slice of the sliced parameter `p` (no stack) lies in
/// the checkpoint tensor's bytes when it is one contiguous run there (a
/// plain slice with every dim before the sliced one of extent 1, e.g. a
/// row slice): {byte offset, bytes}; nullopt otherwise (gatherSlice).
std::optional<std::pair<uint64_t, uint64_t>>
contiguousSliceBytes(const Parameter &p, uint32_t rank);

/// The checkpoint name of member `member` of the `{}` stack `p` on rank
/// `rank` (a sharded stack's member e is the pattern's member
/// rank * shape[0] + e; an unsharded or sliced one's is e), or nullopt for
/// padding.
std::optional<std::string> stackMemberName(const Parameter &p, int64_t member,
                                           uint32_t rank);

/// Member `member` of the sliced `{}` stack `p` (slice_dim >= 1) as a
/// sliced parameter of its own: its checkpoint name, the member's shape
/// and the slice along slice_dim - 1, for checkpointShape and gatherSlice.
Parameter stackMemberSlice(const Parameter &p, int64_t member);

/// 1.2: a checkpoint tensor no kernel reads that a checkpoint may carry
/// (the Engram primes, V4-SPEC 8.4): when present, I64 [values.size()]
/// equal to `values`. `rule` says what they are, for messages.
struct CheckedTensor {
  std::string name;
  std::vector<int64_t> values;
  std::string rule;
};

struct DebugLocation {
  std::string name;
  std::string file;
  uint32_t line = 0;
  uint32_t column = 0;
};

/// Everything the artifact says, as plain C++ values.
struct Description {
  Versions versions;
  Target target = Target::CPU;
  uint64_t features = 0;
  Bounds bounds;
  std::vector<CodeObject> codeObjects;
  std::vector<Kernel> kernels;
  std::vector<Buffer> buffers;
  std::vector<StateSpec> stateSpecs;
  std::vector<EntryPoint> entryPoints;
  std::vector<Parameter> parameters;
  std::vector<DebugLocation> debugLocations;
  /// Bytes of the activation arena of every session (0: none).
  uint64_t arenaBytes = 0;
  TokenIds tokens;
  /// 1.2: the numerics the kernels were compiled in.
  NumericsMode numerics = NumericsMode::Production;
  FakeQuantMode fakeQuant = FakeQuantMode::All;
  SumOrder sumOrder = SumOrder::Reference;
  /// 1.2: optional checkpoint copies and their values.
  std::vector<CheckedTensor> checkedTensors;
  /// 1.5: the kernels of the targets other than `target`.
  std::vector<KernelSet> kernelSets;
  /// 1.6: the ranks the routed experts span (the world the plan runs on).
  uint32_t expertParallel = 1;
  /// 1.6: every rank runs its own sequences (v4c --dp-attention).
  bool dataParallelAttention = false;
  /// 1.7: the ranks the attention heads span (v4c --tp).
  uint32_t tensorParallel = 1;
  /// The world the plan runs on: the larger partition (equal when both
  /// are above 1, AF-19).
  uint32_t world() const { return std::max(expertParallel, tensorParallel); }
};

//===----------------------------------------------------------------------===//
// Reading
//===----------------------------------------------------------------------===//

struct LoadOptions {
  /// AF-4 limits, set from the largest real artifact (V4-Pro, all targets)
  /// times 4 with headroom: nesting is 4 deep, V4-Pro needs well under 10^5
  /// tables.
  unsigned maxDepth = 16;
  unsigned maxTables = 4000000;
  /// Stop after AF-1..AF-3 (prefix, version, checksum): the compiler's
  /// self-check of a file it just wrote, and the fuzzer's first stage.
  bool integrityOnly = false;
  /// Called with the whole file, as read once into memory, before any byte
  /// of it is parsed; an error stops the load (the runtime's DIG-1 digest
  /// check: the bytes checked are the bytes loaded).
  std::function<Status(const uint8_t *data, uint64_t size)> checkBytes;
};

struct ByteSpan {
  const uint8_t *data = nullptr;
  size_t size = 0;
};

/// A validated, read-only artifact held in memory. Immutable after load and
/// safe to share across threads; copies share the bytes.
class Artifact {
public:
  /// Validates `size` bytes at `data` (copied) through every layer. `source`
  /// names the input in errors (a path or the caller's buffer name).
  static Expected<Artifact> load(std::string_view source, const void *data,
                                 size_t size, const LoadOptions &options = {});
  /// Reads a regular file and validates it like load().
  static Expected<Artifact> loadFile(const std::string &path,
                                     const LoadOptions &options = {});

  const std::string &source() const { return src; }
  /// Format version read from the prefix.
  uint16_t formatMajor() const { return major; }
  uint16_t formatMinor() const { return minor; }
  uint64_t fileSize() const { return size; }
  /// Size of the FlatBuffer section.
  uint64_t flatbufferSize() const { return fbSize; }
  /// The CRC-32 of the file (AF-3), which identifies its bytes cheaply.
  uint32_t fileCrc32() const { return checksum; }
  /// 1.6: the ranks the plan runs on (Description::expertParallel).
  uint32_t worldSize() const { return desc.world(); }

  /// The decoded tables; empty when loaded with integrityOnly.
  const Description &description() const { return desc; }
  const Versions &versions() const { return desc.versions; }
  Target target() const { return desc.target; }
  uint64_t features() const { return desc.features; }
  const Bounds &bounds() const { return desc.bounds; }
  const std::vector<CodeObject> &codeObjects() const {
    return desc.codeObjects;
  }
  /// The kernels of the artifact's target().
  const std::vector<Kernel> &kernels() const { return desc.kernels; }
  /// Every target the artifact has kernels for: target(), then those of
  /// its kernel sets (1.5).
  std::vector<Target> targets() const;
  /// The kernels of `target` (parallel to kernels()), or nullptr when the
  /// artifact has none for it.
  const std::vector<Kernel> *kernelsFor(Target target) const;
  const std::vector<Buffer> &buffers() const { return desc.buffers; }
  const std::vector<StateSpec> &stateSpecs() const { return desc.stateSpecs; }
  const std::vector<EntryPoint> &entryPoints() const {
    return desc.entryPoints;
  }
  const std::vector<Parameter> &parameters() const { return desc.parameters; }
  const std::vector<CheckedTensor> &checkedTensors() const {
    return desc.checkedTensors;
  }
  const std::vector<DebugLocation> &debugLocations() const {
    return desc.debugLocations;
  }

  /// The image of code object `index` (empty span when out of range).
  ByteSpan code(size_t index) const;
  /// Lookups; nullptr when absent.
  const Buffer *findBuffer(uint32_t id) const;
  /// The index in buffers() of buffer `id` (buffers().size() when absent).
  /// Ids are unique (AF-9) but need not be dense, nor small: tables of
  /// buffers are indexed by slot, never by id.
  size_t bufferSlot(uint32_t id) const;
  const Kernel *findKernel(std::string_view name) const;
  const EntryPoint *findEntryPoint(std::string_view name) const;
  /// The input or output buffer with role `role`.
  const Buffer *findBufferByRole(std::string_view role) const;
  /// Buffer byte size with the token dim at `tokens` (checked at load for
  /// tokens = Bounds::maxChunk, so no overflow for tokens <= maxChunk).
  uint64_t bufferBytes(const Buffer &buffer, int64_t tokens) const;
  uint64_t arenaBytes() const { return desc.arenaBytes; }

  /// Bytes at the compiled bounds: weights per model, the rest per session.
  struct MemoryTotals {
    uint64_t weights = 0;
    uint64_t state = 0;
    uint64_t arena = 0;
    /// Activations outside the arena.
    uint64_t otherActivations = 0;
    /// Inputs and outputs.
    uint64_t io = 0;
    uint64_t session() const { return state + arena + otherActivations + io; }
  };
  MemoryTotals memoryTotals() const;

private:
  using Storage = std::shared_ptr<const std::vector<uint64_t>>;
  Artifact() = default;
  /// Runs every layer on `size` bytes held (8-byte aligned) by `storage`.
  static Expected<Artifact> loadStorage(std::string_view source,
                                        Storage storage, uint64_t size,
                                        const LoadOptions &options);

  std::string src;
  Storage storage; // 8-byte aligned
  const uint8_t *bytes = nullptr;
  uint64_t size = 0;
  uint64_t fbSize = 0;
  uint16_t major = 0;
  uint16_t minor = 0;
  uint32_t checksum = 0;
  Description desc;
  std::map<uint32_t, size_t> bufferIndex;
};

/// Runs the semantic layer (AF-5..AF-13) on a description. `fileSize` and
/// `blobStart` bound the code objects' offsets (AF-7). Used by the loader and
/// by the writer on its input.
Status checkDescription(std::string_view source, const Description &desc,
                        uint64_t fileSize, uint64_t blobStart);

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

struct WriteOptions {
  /// Validate the description first and load the result back through every
  /// layer before returning it. Tests turn this off to write lies.
  bool verify = true;
  /// Format version written to the prefix and the versions table; tests set
  /// other values for the version matrix.
  uint16_t formatMajor = kFormatMajor;
  uint16_t formatMinor = kFormatMinor;
  /// Tests: a different minor for the versions table than for the prefix
  /// (-1: the same).
  int tableFormatMinor = -1;
};

/// Builds an artifact from a Description and code images.
class Writer {
public:
  explicit Writer(Description description = {})
      : desc(std::move(description)) {}

  Description &description() { return desc; }
  const Description &description() const { return desc; }
  /// Appends a code object with its image (a host object: `isa`, its
  /// x86-64 level, or empty); returns its index.
  uint32_t addCodeObject(Target target, CodeFormat format,
                         std::vector<uint8_t> image, std::string isa = "");

  /// The complete file: prefix, FlatBuffer, 64-byte aligned images.
  Expected<std::vector<uint8_t>>
  serialize(const WriteOptions &options = {}) const;
  /// Serializes and writes atomically: a temporary file in the target
  /// directory, fsync, rename (and a directory fsync). On failure the
  /// temporary is removed and an existing file is left as it was.
  Status writeFile(const std::string &path,
                   const WriteOptions &options = {}) const;

private:
  Description desc;
  std::vector<std::vector<uint8_t>> images;
};

} // namespace v4::artifact

#endif // V4_RUNTIME_ARTIFACT_ARTIFACT_H
