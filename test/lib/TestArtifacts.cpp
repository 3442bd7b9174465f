//===- TestArtifacts.cpp - tiny artifacts and lies for tests --------------===//

#include "test/lib/TestArtifacts.h"

#include "v4_artifact_generated.h"

#include <cstring>
#include <fstream>
#include <iterator>

namespace v4::artifact::testing {

Writer tinyWriter() {
  Description d;
  d.versions.compiler = "v4c 0.1.0";
  d.versions.mlir = "22";
  d.target = Target::CPU;
  d.features = kFeatureFP8;
  d.bounds = {2, 64, 16};

  auto buffer = [](uint32_t id, DType dtype, std::vector<int64_t> shape,
                   BufferKind kind, std::string role = "") {
    Buffer b;
    b.id = id;
    b.dtype = dtype;
    b.shape = std::move(shape);
    b.kind = kind;
    b.role = std::move(role);
    return b;
  };
  d.buffers = {
      buffer(1, DType::I64, {2, -1}, BufferKind::Input, role::kIds),
      buffer(2, DType::BF16, {32, 8}, BufferKind::Parameter),
      buffer(3, DType::BF16, {2, -1, 8}, BufferKind::Activation),
      buffer(4, DType::F32, {8}, BufferKind::Parameter),
      buffer(5, DType::F32, {2, -1, 32}, BufferKind::Output, role::kLogits),
      buffer(6, DType::BF16, {2, 64, 8}, BufferKind::State),
  };
  d.buffers[2].arenaOffset = 0; // the activation, in a 512-byte arena
  d.arenaBytes = 512;
  d.tokens = {0, 1}; // BOS, EOS below the 32-entry vocabulary
  d.kernels = {
      {"embed", 0, "v4_kernel_embed", 3, 1, "embed"},
      {"head", 0, "v4_kernel_head", 4, 2, "head"},
  };
  d.debugLocations = {{"embed", "tiny.mlir", 3, 5},
                      {"head", "tiny.mlir", 9, 5}};
  EntryPoint init;
  init.name = "init_state";
  EntryPoint step;
  step.name = "step";
  step.steps.push_back(
      {0, {1, 2, 3}, {{ScalarKind::TokenCount, 0}}, /*debugLocation=*/0});
  step.steps.push_back({1,
                        {3, 4, 6, 5},
                        {{ScalarKind::StartPos, 0}, {ScalarKind::Constant, 7}},
                        1});
  d.entryPoints = {init, step};
  d.stateSpecs = {{"kv", {6}, ResetKind::Zero, 0}};
  d.parameters = {{"embed.weight", DType::BF16, {32, 8}, 2},
                  {"norm.weight", DType::F32, {8}, 4}};

  Writer w(std::move(d));
  std::vector<uint8_t> image(kTinyCodeSize);
  for (size_t i = 0; i < image.size(); ++i)
    image[i] = uint8_t(i * 31 + 7);
  std::memcpy(image.data(),
              "\x7f"
              "ELF",
              4);
  w.addCodeObject(Target::CPU, CodeFormat::HostSharedObject, std::move(image));
  return w;
}

void addGPUKernelSet(Writer &w) {
  std::string ptx = ".version 8.0\n.target sm_90a\n";
  w.addCodeObject(Target::SM90A, CodeFormat::PTX,
                  std::vector<uint8_t>(ptx.begin(), ptx.end()));
  KernelSet set;
  set.target = Target::SM90A;
  set.kernels = w.description().kernels;
  for (Kernel &k : set.kernels) {
    k.codeObject = 1;
    k.entrySymbol = k.name;
    k.launch.block[0] = 256;
    k.launch.workspaceBytes = 1024;
  }
  w.description().kernelSets.push_back(std::move(set));
}

void addRuntimeInputs(Description &d) {
  for (Buffer &b : d.buffers)
    if (b.role == role::kIds)
      b.dtype = DType::I64;
  uint32_t id = 10;
  for (const char *r :
       {role::kNextIds, role::kStartPositions, role::kPositions}) {
    Buffer b;
    b.id = id++;
    b.dtype = DType::I64;
    b.shape = r == role::kStartPositions ? std::vector<int64_t>{2}
                                         : std::vector<int64_t>{2, -1};
    b.kind = BufferKind::Input;
    b.role = r;
    d.buffers.push_back(b);
  }
}

void makePartitioned(Description &d) {
  d.expertParallel = 2;
  // The rank input, a sharded stack of 3 members (2 per rank, 1 padding)
  // and a collective over the activation after the first step.
  Buffer rank;
  rank.id = 20;
  rank.dtype = DType::I64;
  rank.shape = {1};
  rank.kind = BufferKind::Input;
  rank.role = role::kRank;
  Buffer stack;
  stack.id = 21;
  stack.dtype = DType::BF16;
  stack.shape = {2, 4};
  stack.kind = BufferKind::Parameter;
  d.buffers.push_back(stack);
  d.buffers.push_back(rank);
  Parameter p{"e.{}.w", DType::BF16, {2, 4}, 21};
  p.shards = 2;
  p.members = 3;
  d.parameters.push_back(p);
  Step sum;
  sum.collective = Collective::AllReduceSum;
  sum.buffers = {3};
  EntryPoint &step = d.entryPoints[1];
  step.steps.insert(step.steps.begin() + 1, sum);
}

Description kernelFreeDescription() {
  Description d = tinyWriter().description();
  d.codeObjects.clear();
  d.kernels.clear();
  d.debugLocations.clear();
  for (EntryPoint &e : d.entryPoints)
    e.steps.clear();
  addRuntimeInputs(d);
  return d;
}

bool addHostCodeObjectFile(Writer &w, const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> image(std::istreambuf_iterator<char>(in), {});
  if (image.empty())
    return false;
  w.addCodeObject(Target::CPU, CodeFormat::HostSharedObject, std::move(image));
  return true;
}

std::vector<uint8_t> tinyArtifact() {
  auto bytes = tinyWriter().serialize();
  if (!bytes)
    return {};
  return bytes.take();
}

void fixChecksum(std::vector<uint8_t> &bytes) {
  if (bytes.size() < kPrefixSize)
    return;
  uint32_t c = fileChecksum(bytes.data(), bytes.size());
  for (int i = 0; i < 4; ++i)
    bytes[12 + i] = uint8_t(c >> (8 * i));
}

namespace {

uint64_t getU64(const std::vector<uint8_t> &b, size_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = v << 8 | b[at + i];
  return v;
}

void setU64(std::vector<uint8_t> &b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    b[at + i] = uint8_t(v >> (8 * i));
}

/// Replaces the one 8-byte aligned occurrence of `from` in the FlatBuffer.
void replaceU64(std::vector<uint8_t> &b, uint64_t from, uint64_t to) {
  uint64_t fbEnd = kPrefixSize + getU64(b, 24);
  for (size_t at = kPrefixSize; at + 8 <= fbEnd; at += 8)
    if (getU64(b, at) == from) {
      setU64(b, at, to);
      return;
    }
}

/// The code object offsets of a valid artifact.
std::vector<uint64_t> codeOffsets(const std::vector<uint8_t> &b) {
  std::vector<uint64_t> out;
  auto a = Artifact::load("lie", b.data(), b.size());
  if (a)
    for (const CodeObject &c : a->codeObjects())
      out.push_back(c.offset);
  return out;
}

/// Replaces the FlatBuffer section (and drops the blobs).
void replaceFlatbuffer(std::vector<uint8_t> &b, const uint8_t *fb,
                       size_t size) {
  b.resize(kPrefixSize);
  b.insert(b.end(), fb, fb + size);
  setU64(b, 16, b.size());
  setU64(b, 24, size);
}

using Edit = std::function<void(Writer &, WriteOptions &)>;
using Patch = std::function<void(std::vector<uint8_t> &)>;

Lie descLie(std::string name, std::string rule,
            std::function<void(Description &)> f) {
  Lie l;
  l.name = std::move(name);
  l.rule = std::move(rule);
  l.edit = [f](Writer &w, WriteOptions &) { f(w.description()); };
  return l;
}

Lie byteLie(std::string name, std::string rule, Patch p,
            bool keepChecksum = false) {
  Lie l;
  l.name = std::move(name);
  l.rule = std::move(rule);
  l.patch = std::move(p);
  l.keepChecksum = keepChecksum;
  return l;
}

Lie optionLie(std::string name, std::string rule, Edit e) {
  Lie l;
  l.name = std::move(name);
  l.rule = std::move(rule);
  l.edit = std::move(e);
  return l;
}

std::vector<Lie> makeLies() {
  std::vector<Lie> t;
  // AF-1: prefix and magic.
  t.push_back(byteLie("empty-file", "AF-1", [](auto &b) { b.clear(); }));
  t.push_back(byteLie(
      "shorter-than-prefix", "AF-1", [](auto &b) { b.resize(kPrefixSize - 1); },
      true));
  t.push_back(byteLie("bad-magic", "AF-1", [](auto &b) { b[3] = 'X'; }));
  t.push_back(byteLie("html-page", "AF-1", [](auto &b) {
    std::memcpy(b.data(), "<!DOCTYPE html>", 15);
  }));
  // AF-2: version.
  t.push_back(optionLie("newer-major", "AF-2", [](Writer &, WriteOptions &o) {
    o.formatMajor = kFormatMajor + 1;
  }));
  t.push_back(optionLie("newer-minor", "AF-2", [](Writer &, WriteOptions &o) {
    o.formatMinor = kFormatMinor + 1;
  }));
  t.push_back(optionLie("older-major", "AF-2", [](Writer &, WriteOptions &o) {
    o.formatMajor = kFormatMajor - 1;
  }));
  // AF-3: declared size and checksum.
  t.push_back(byteLie(
      "truncated-by-one", "AF-3", [](auto &b) { b.pop_back(); }, true));
  t.push_back(byteLie(
      "trailing-byte", "AF-3", [](auto &b) { b.push_back(0); }, true));
  t.push_back(byteLie(
      "checksum-flipped", "AF-3", [](auto &b) { b[12] ^= 1; }, true));
  t.push_back(byteLie(
      "payload-flipped", "AF-3", [](auto &b) { b[b.size() - 5] ^= 0x10; },
      true));
  // AF-4: FlatBuffer bounds, identifier, verifier and limits.
  t.push_back(byteLie("flatbuffer-size-past-end", "AF-4", [](auto &b) {
    setU64(b, 24, b.size() - kPrefixSize + 1);
  }));
  t.push_back(byteLie("flatbuffer-size-tiny", "AF-4",
                      [](auto &b) { setU64(b, 24, 4); }));
  t.push_back(byteLie("bad-identifier", "AF-4",
                      [](auto &b) { b[kPrefixSize + 4] = 'X'; }));
  t.push_back(byteLie("root-offset-out-of-bounds", "AF-4",
                      [](auto &b) { b[kPrefixSize + 3] = 0x7F; }));
  t.push_back(byteLie("missing-required-versions", "AF-4", [](auto &b) {
    flatbuffers::FlatBufferBuilder fbb;
    auto start = fbb.StartTable();
    fbb.Finish(flatbuffers::Offset<fb::Artifact>(fbb.EndTable(start)),
               kFileIdentifier);
    replaceFlatbuffer(b, fbb.GetBufferPointer(), fbb.GetSize());
  }));
  // A vector of int64 moved by 4 bytes passes the FlatBuffers 2.0 verifier
  // (found by UBSan on the bit-flip test): search the flip that does it.
  t.push_back(byteLie("vector-misaligned", "AF-4", [](auto &b) {
    uint64_t fbEnd = kPrefixSize + getU64(b, 24);
    for (size_t at = kPrefixSize; at < fbEnd; ++at) {
      std::vector<uint8_t> probe = b;
      probe[at] ^= 4;
      fixChecksum(probe);
      auto a = Artifact::load("probe", probe.data(), probe.size());
      if (!a && a.status().message().find("not 8-byte aligned") !=
                    std::string::npos) {
        b = probe;
        return;
      }
    }
  }));
  {
    Lie l = byteLie("depth-limit", "AF-4", [](auto &) {});
    l.load.maxDepth = 2;
    t.push_back(l);
    Lie m = byteLie("table-limit", "AF-4", [](auto &) {});
    m.load.maxTables = 3;
    t.push_back(m);
  }
  // AF-5: versions table.
  t.push_back(optionLie("versions-table-disagrees", "AF-5",
                        [](Writer &, WriteOptions &o) {
                          o.tableFormatMinor = kFormatMinor + 1;
                        }));
  t.push_back(descLie("empty-compiler-version", "AF-5",
                      [](Description &d) { d.versions.compiler.clear(); }));
  // AF-6: target, features, bounds.
  t.push_back(descLie("unknown-target", "AF-6",
                      [](Description &d) { d.target = Target(9); }));
  t.push_back(descLie("unknown-feature-bit", "AF-6",
                      [](Description &d) { d.features |= uint64_t(1) << 40; }));
  t.push_back(descLie("batch-zero", "AF-6",
                      [](Description &d) { d.bounds.batch = 0; }));
  t.push_back(descLie("chunk-above-context", "AF-6",
                      [](Description &d) { d.bounds.maxChunk = 65; }));
  t.push_back(descLie("context-absurd", "AF-6", [](Description &d) {
    d.bounds.maxContext = int64_t(1) << 40;
  }));
  // AF-7: code objects.
  t.push_back(descLie("ptx-on-cpu", "AF-7", [](Description &d) {
    d.codeObjects[0].format = CodeFormat::PTX;
  }));
  t.push_back(descLie("unknown-code-format", "AF-7", [](Description &d) {
    d.codeObjects[0].format = CodeFormat(7);
  }));
  t.push_back(descLie("unknown-host-isa", "AF-7", [](Description &d) {
    d.codeObjects[0].isa = "x86-64-v9";
  }));
  t.push_back(descLie("code-target-mismatch", "AF-7", [](Description &d) {
    d.codeObjects[0].target = Target::SM90A;
    d.codeObjects[0].format = CodeFormat::PTX;
  }));
  t.push_back(byteLie("blob-misaligned", "AF-7", [](auto &b) {
    auto off = codeOffsets(b);
    replaceU64(b, off.at(0), off.at(0) + 1);
  }));
  t.push_back(byteLie("blob-inside-flatbuffer", "AF-7", [](auto &b) {
    auto off = codeOffsets(b);
    replaceU64(b, off.at(0), 0);
  }));
  t.push_back(byteLie("blob-past-end", "AF-7", [](auto &b) {
    replaceU64(b, kTinyCodeSize, kTinyCodeSize + 64);
  }));
  t.push_back(byteLie("blob-size-overflows", "AF-7", [](auto &b) {
    replaceU64(b, kTinyCodeSize, ~uint64_t(0) - 8);
  }));
  {
    Lie l = byteLie("blobs-overlap", "AF-7", [](auto &b) {
      auto off = codeOffsets(b);
      replaceU64(b, off.at(1), off.at(0));
    });
    l.edit = [](Writer &w, WriteOptions &) {
      w.addCodeObject(Target::CPU, CodeFormat::HostSharedObject,
                      std::vector<uint8_t>(kTinyCodeSize + 64, 1));
    };
    t.push_back(l);
    Lie e =
        optionLie("empty-code-object", "AF-7", [](Writer &w, WriteOptions &) {
          w.addCodeObject(Target::CPU, CodeFormat::HostSharedObject, {});
        });
    t.push_back(e);
  }
  // AF-8: kernels.
  t.push_back(descLie("duplicate-kernel-name", "AF-8", [](Description &d) {
    d.kernels[1].name = d.kernels[0].name;
  }));
  t.push_back(descLie("kernel-code-object-out-of-range", "AF-8",
                      [](Description &d) { d.kernels[1].codeObject = 1; }));
  t.push_back(descLie("empty-entry-symbol", "AF-8", [](Description &d) {
    d.kernels[0].entrySymbol.clear();
  }));
  t.push_back(descLie("empty-kernel-name", "AF-8",
                      [](Description &d) { d.kernels[0].name.clear(); }));
  t.push_back(descLie("nul-in-kernel-name", "AF-8", [](Description &d) {
    d.kernels[0].name = std::string("em\0bed", 6);
  }));
  t.push_back(descLie("absurd-arg-count", "AF-8", [](Description &d) {
    d.kernels[0].numScalarArgs = 100000;
  }));
  t.push_back(descLie("launch-grid-zero", "AF-8", [](Description &d) {
    d.kernels[1].launch.grid[2].fixed = 0;
  }));
  t.push_back(descLie("launch-block-too-large", "AF-8", [](Description &d) {
    d.kernels[0].launch.block[0] = 64;
    d.kernels[0].launch.block[1] = 32;
  }));
  t.push_back(
      descLie("launch-shared-memory-too-large", "AF-8", [](Description &d) {
        d.kernels[0].launch.sharedMemoryBytes = 1u << 20;
      }));
  t.push_back(descLie("host-kernel-with-threads", "AF-8", [](Description &d) {
    d.kernels[1].launch.block[0] = 128;
  }));
  // Format 1.4: a GPU kernel's device scratch; a host kernel has none.
  t.push_back(descLie("host-kernel-with-workspace", "AF-8", [](Description &d) {
    d.kernels[1].launch.workspaceBytes = 4096;
  }));
  // Format 1.11: a concurrent step is a launch after a launch, and the
  // distinct buffers of its group share no arena bytes.
  t.push_back(descLie("concurrent-first-step", "AF-10", [](Description &d) {
    d.entryPoints[1].steps[0].concurrent = true;
  }));
  t.push_back(descLie("concurrent-steps-sharing-arena-bytes", "AF-10",
                      [](Description &d) {
                        // A second activation at the first one's offset, which
                        // the head reads while the embedding writes the first.
                        Buffer other = d.buffers[2];
                        other.id = 7;
                        d.buffers.push_back(other);
                        d.entryPoints[1].steps[1].buffers[0] = 7;
                        d.entryPoints[1].steps[1].concurrent = true;
                      }));
  // Format 1.12: a step's only_for_outputs name outputs the artifact has,
  // ascending.
  t.push_back(descLie("only-for-a-missing-output", "AF-10", [](Description &d) {
    d.entryPoints[1].steps[1].onlyForOutputs = {1};
  }));
  t.push_back(descLie("only-for-outputs-repeated", "AF-10", [](Description &d) {
    d.entryPoints[1].steps[1].onlyForOutputs = {0, 0};
  }));
  // Format 1.10: token slices only for a host kernel of one block
  // without scalars, whose buffers have only size-1 dims before the token
  // dim.
  t.push_back(descLie("token-slices-with-a-grid", "AF-8", [](Description &d) {
    d.kernels[1].launch.tokenSlice = 8;
    d.kernels[1].launch.grid[0].fixed = 2;
  }));
  t.push_back(descLie("token-slices-with-scalars", "AF-8", [](Description &d) {
    d.kernels[1].launch.tokenSlice = 8;
    d.kernels[1].numScalarArgs = 1;
  }));
  t.push_back(
      descLie("token-slices-of-a-batched-buffer", "AF-10", [](Description &d) {
        // The first kernel called with a [B > 1, ..., -1, ...]
        // buffer.
        for (const EntryPoint &e : d.entryPoints)
          for (const Step &st : e.steps)
            for (uint32_t id : st.buffers)
              for (const Buffer &b : d.buffers)
                if (b.id == id && b.shape.size() > 1 && b.shape[0] > 1 &&
                    std::find(b.shape.begin(), b.shape.end(), -1) !=
                        b.shape.end() &&
                    st.collective == Collective::None) {
                  // Without scalars (AF-8), in every call.
                  uint32_t k = st.kernel;
                  d.kernels[k].launch.tokenSlice = 8;
                  d.kernels[k].numScalarArgs = 0;
                  for (EntryPoint &f : d.entryPoints)
                    for (Step &other : f.steps)
                      if (other.kernel == k &&
                          other.collective == Collective::None)
                        other.scalars.clear();
                  return;
                }
      }));
  // AF-8 and AF-18 (format 1.5): a second target's kernel table.
  auto setLie = [](std::string name, std::string rule,
                   std::function<void(Description &)> f) {
    return optionLie(std::move(name), std::move(rule),
                     [f](Writer &w, WriteOptions &) {
                       addGPUKernelSet(w);
                       f(w.description());
                     });
  };
  t.push_back(setLie("kernel-on-other-targets-code-object", "AF-8",
                     [](Description &d) { d.kernels[0].codeObject = 1; }));
  t.push_back(optionLie("code-object-of-no-table", "AF-7",
                        [](Writer &w, WriteOptions &) {
                          addGPUKernelSet(w);
                          w.description().kernelSets.clear();
                        }));
  t.push_back(
      setLie("kernel-set-of-the-artifacts-target", "AF-18", [](Description &d) {
        d.kernelSets[0].target = Target::CPU;
        d.codeObjects[1].target = Target::CPU;
        d.codeObjects[1].format = CodeFormat::HostSharedObject;
      }));
  t.push_back(setLie("kernel-set-twice", "AF-18", [](Description &d) {
    d.kernelSets.push_back(d.kernelSets[0]);
  }));
  t.push_back(
      setLie("kernel-set-one-kernel-short", "AF-18",
             [](Description &d) { d.kernelSets[0].kernels.pop_back(); }));
  t.push_back(setLie("kernel-set-other-name", "AF-18", [](Description &d) {
    d.kernelSets[0].kernels[1].name = "tail";
  }));
  t.push_back(setLie("kernel-set-other-arg-count", "AF-18", [](Description &d) {
    d.kernelSets[0].kernels[1].numScalarArgs = 3;
  }));
  t.push_back(
      setLie("kernel-set-on-cpu-code-object", "AF-18", [](Description &d) {
        d.kernelSets[0].kernels[0].codeObject = 0;
      }));
  t.push_back(
      setLie("kernel-set-launch-grid-zero", "AF-18", [](Description &d) {
        d.kernelSets[0].kernels[1].launch.grid[0].fixed = 0;
      }));
  // AF-9: buffers.
  t.push_back(descLie("duplicate-buffer-id", "AF-9",
                      [](Description &d) { d.buffers[1].id = 1; }));
  t.push_back(descLie("unknown-dtype", "AF-9",
                      [](Description &d) { d.buffers[0].dtype = DType(42); }));
  t.push_back(descLie("unknown-buffer-kind", "AF-9", [](Description &d) {
    d.buffers[2].kind = BufferKind(9);
  }));
  t.push_back(descLie("negative-dim", "AF-9",
                      [](Description &d) { d.buffers[2].shape[2] = -2; }));
  t.push_back(descLie("two-token-dims", "AF-9",
                      [](Description &d) { d.buffers[2].shape[0] = -1; }));
  t.push_back(descLie("token-dim-on-parameter", "AF-9",
                      [](Description &d) { d.buffers[1].shape[0] = -1; }));
  t.push_back(descLie("token-dim-on-state", "AF-9",
                      [](Description &d) { d.buffers[5].shape[1] = -1; }));
  t.push_back(descLie("alignment-not-power-of-two", "AF-9",
                      [](Description &d) { d.buffers[0].alignment = 3; }));
  t.push_back(descLie("alignment-zero", "AF-9",
                      [](Description &d) { d.buffers[0].alignment = 0; }));
  t.push_back(descLie("size-overflows", "AF-9", [](Description &d) {
    d.buffers[2].shape = {int64_t(1) << 31, -1, int64_t(1) << 31};
  }));
  t.push_back(descLie("rank-too-large", "AF-9",
                      [](Description &d) { d.buffers[3].shape.assign(9, 1); }));
  t.push_back(descLie("arena-offset-on-state", "AF-9",
                      [](Description &d) { d.buffers[5].arenaOffset = 0; }));
  t.push_back(descLie("arena-offset-outside", "AF-9",
                      [](Description &d) { d.buffers[2].arenaOffset = 64; }));
  t.push_back(descLie("arena-offset-misaligned", "AF-9", [](Description &d) {
    d.arenaBytes = 1024;
    d.buffers[2].arenaOffset = 32;
  }));
  t.push_back(descLie("arena-too-large", "AF-9", [](Description &d) {
    d.arenaBytes = uint64_t(1) << 60;
  }));
  t.push_back(descLie("role-on-activation", "AF-9", [](Description &d) {
    d.buffers[2].role = role::kPositions;
  }));
  t.push_back(descLie("input-without-role", "AF-9",
                      [](Description &d) { d.buffers[0].role.clear(); }));
  t.push_back(descLie("unknown-output-role", "AF-9", [](Description &d) {
    d.buffers[4].role = "mtp_logits.01";
  }));
  t.push_back(descLie("output-role-on-input", "AF-9", [](Description &d) {
    d.buffers[0].role = role::kLogits;
  }));
  t.push_back(descLie("duplicate-role", "AF-9", [](Description &d) {
    d.buffers[2].kind = BufferKind::Input;
    d.buffers[2].role = role::kIds;
  }));
  t.push_back(descLie("f4-half-byte", "AF-9", [](Description &d) {
    d.buffers[5].dtype = DType::F4E2M1;
    d.buffers[5].shape = {3};
  }));
  // AF-10: entry points and steps.
  t.push_back(descLie("duplicate-entry-point", "AF-10",
                      [](Description &d) { d.entryPoints[0].name = "step"; }));
  t.push_back(descLie("empty-entry-point-name", "AF-10",
                      [](Description &d) { d.entryPoints[0].name.clear(); }));
  t.push_back(descLie("step-kernel-out-of-range", "AF-10", [](Description &d) {
    d.entryPoints[1].steps[1].kernel = 2;
  }));
  t.push_back(descLie("step-buffer-count", "AF-10", [](Description &d) {
    d.entryPoints[1].steps[0].buffers.pop_back();
  }));
  t.push_back(descLie("step-unknown-buffer", "AF-10", [](Description &d) {
    d.entryPoints[1].steps[0].buffers[1] = 77;
  }));
  // A second call of "embed" passing a rank-2 buffer where the first
  // passed rank 3: the kernel would read a rank-3 descriptor past the end
  // of the rank-2 one (KernelABI.h).
  t.push_back(
      descLie("kernel-called-with-two-signatures", "AF-10", [](Description &d) {
        d.entryPoints[1].steps.push_back(
            {0, {1, 2, 2}, {{ScalarKind::TokenCount, 0}}, 0});
      }));
  t.push_back(descLie("step-scalar-count", "AF-10", [](Description &d) {
    d.entryPoints[1].steps[1].scalars.pop_back();
  }));
  t.push_back(descLie("step-scalar-kind", "AF-10", [](Description &d) {
    d.entryPoints[1].steps[1].scalars[0].kind = ScalarKind(5);
  }));
  t.push_back(descLie("step-debug-location", "AF-10", [](Description &d) {
    d.entryPoints[1].steps[1].debugLocation = 2;
  }));
  t.push_back(
      descLie("step-debug-location-negative", "AF-10", [](Description &d) {
        d.entryPoints[1].steps[1].debugLocation = -5;
      }));
  // AF-11: state specs.
  t.push_back(descLie("state-buffer-not-state", "AF-11",
                      [](Description &d) { d.stateSpecs[0].buffers = {3}; }));
  t.push_back(descLie("state-unknown-buffer", "AF-11",
                      [](Description &d) { d.stateSpecs[0].buffers = {99}; }));
  t.push_back(descLie("state-no-buffers", "AF-11",
                      [](Description &d) { d.stateSpecs[0].buffers.clear(); }));
  t.push_back(descLie("state-reset-kind", "AF-11", [](Description &d) {
    d.stateSpecs[0].reset = ResetKind(3);
  }));
  t.push_back(descLie("state-without-batch-dim", "AF-11", [](Description &d) {
    d.buffers[5].shape = {64, 8};
  }));
  t.push_back(descLie("duplicate-state-name", "AF-11", [](Description &d) {
    d.stateSpecs.push_back(d.stateSpecs[0]);
  }));
  // AF-12: parameter manifest.
  t.push_back(descLie("duplicate-parameter-name", "AF-12", [](Description &d) {
    d.parameters[1].name = d.parameters[0].name;
  }));
  t.push_back(descLie("parameter-unknown-buffer", "AF-12",
                      [](Description &d) { d.parameters[1].buffer = 42; }));
  t.push_back(descLie("parameter-buffer-not-parameter", "AF-12",
                      [](Description &d) { d.parameters[1].buffer = 3; }));
  t.push_back(descLie("parameter-bound-twice", "AF-12",
                      [](Description &d) { d.parameters[1].buffer = 2; }));
  t.push_back(descLie("parameter-buffer-unbound", "AF-12",
                      [](Description &d) { d.parameters.pop_back(); }));
  t.push_back(descLie("parameter-negative-dim", "AF-12",
                      [](Description &d) { d.parameters[0].shape[0] = -1; }));
  t.push_back(descLie("parameter-dtype", "AF-12", [](Description &d) {
    d.parameters[0].dtype = DType(200);
  }));
  t.push_back(
      descLie("parameter-smaller-than-buffer", "AF-12", [](Description &d) {
        d.parameters[0].shape = {16, 8};
      }));
  // AF-13: debug locations.
  t.push_back(descLie("empty-debug-location", "AF-13", [](Description &d) {
    d.debugLocations[1].name.clear();
  }));
  // AF-14: token ids.
  t.push_back(descLie("bos-outside-vocabulary", "AF-14",
                      [](Description &d) { d.tokens.bos = 32; }));
  t.push_back(descLie("eos-negative", "AF-14",
                      [](Description &d) { d.tokens.eos = -2; }));
  // AF-15: numerics modes.
  t.push_back(descLie("unknown-numerics", "AF-15", [](Description &d) {
    d.numerics = NumericsMode(uint8_t(7));
  }));
  t.push_back(descLie("unknown-fake-quant", "AF-15", [](Description &d) {
    d.fakeQuant = FakeQuantMode(uint8_t(3));
  }));
  t.push_back(descLie("unknown-sum-order", "AF-15", [](Description &d) {
    d.sumOrder = SumOrder(uint8_t(2));
  }));
  // AF-17: inputs and outputs as v4rt_session_run writes and reads them.
  t.push_back(descLie("ids-int32", "AF-17",
                      [](Description &d) { d.buffers[0].dtype = DType::I32; }));
  t.push_back(descLie("ids-batch-differs", "AF-17", [](Description &d) {
    d.buffers[0].shape = {3, -1};
  }));
  t.push_back(descLie("logits-rank-0", "AF-17",
                      [](Description &d) { d.buffers[4].shape = {}; }));
  t.push_back(descLie("logits-bf16", "AF-17", [](Description &d) {
    d.buffers[4].dtype = DType::BF16;
  }));
  t.push_back(descLie("logits-batch-differs", "AF-17", [](Description &d) {
    d.buffers[4].shape = {1, -1, 32};
  }));
  t.push_back(descLie("mtp-logits-unlike-logits", "AF-17", [](Description &d) {
    Buffer mtp = d.buffers[4];
    mtp.id = 9;
    mtp.role = role::kMtpLogits;
    mtp.shape = {2, -1, 16};
    d.buffers.push_back(mtp);
  }));
  // AF-19 (format 1.6): the partition, collective steps and shards, each
  // a lie about the valid partitioned tiny artifact (makePartitioned).
  auto partLie = [](std::string name, std::string rule,
                    std::function<void(Description &)> f) {
    return descLie(std::move(name), std::move(rule), [f](Description &d) {
      makePartitioned(d);
      f(d);
    });
  };
  t.push_back(partLie("partition-world-zero", "AF-19",
                      [](Description &d) { d.expertParallel = 0; }));
  t.push_back(partLie("partition-world-huge", "AF-19",
                      [](Description &d) { d.expertParallel = 1u << 20; }));
  t.push_back(partLie("partition-without-rank-input", "AF-19",
                      [](Description &d) { d.buffers.pop_back(); }));
  t.push_back(
      partLie("collective-in-a-plan-of-one-rank", "AF-19", [](Description &d) {
        d.expertParallel = 1;
        d.parameters.pop_back();
      }));
  t.push_back(partLie("collective-of-a-parameter", "AF-19", [](Description &d) {
    d.entryPoints[1].steps[1].buffers = {2};
  }));
  t.push_back(partLie("collective-of-two-buffers", "AF-19", [](Description &d) {
    d.entryPoints[1].steps[1].buffers = {3, 3};
  }));
  t.push_back(partLie("collective-with-a-scalar", "AF-19", [](Description &d) {
    d.entryPoints[1].steps[1].scalars = {{ScalarKind::TokenCount, 0}};
  }));
  t.push_back(partLie("collective-unknown", "AF-19", [](Description &d) {
    d.entryPoints[1].steps[1].collective = Collective(7);
  }));
  t.push_back(
      partLie("collective-of-a-missing-buffer", "AF-10", [](Description &d) {
        d.entryPoints[1].steps[1].buffers = {99};
      }));
  t.push_back(partLie("shards-not-the-world", "AF-19",
                      [](Description &d) { d.parameters.back().shards = 3; }));
  t.push_back(partLie("shards-of-a-plain-parameter", "AF-19",
                      [](Description &d) { d.parameters[0].shards = 2; }));
  t.push_back(partLie("members-not-ceil-of-shards", "AF-19",
                      [](Description &d) { d.parameters.back().members = 5; }));
  // A gathered activation: buffer 3 (BF16 [2, -1, 8]) of both ranks.
  auto gather = [](Description &d, std::vector<int64_t> shape,
                   Collective kind) {
    Buffer all = d.buffers[2];
    all.id = 22;
    all.shape = std::move(shape);
    all.arenaOffset = -1;
    d.buffers.push_back(all);
    Step &st = d.entryPoints[1].steps[1];
    st.collective = kind;
    st.buffers = kind == Collective::AllGather ? std::vector<uint32_t>{3, 22}
                                               : std::vector<uint32_t>{22, 3};
  };
  t.push_back(partLie("all-gather-one-buffer", "AF-19", [](Description &d) {
    d.entryPoints[1].steps[1].collective = Collective::AllGather;
  }));
  t.push_back(
      partLie("all-gather-not-world-times", "AF-19", [gather](Description &d) {
        gather(d, {3, -1, 8}, Collective::AllGather);
      }));
  t.push_back(
      partLie("reduce-scatter-other-dims", "AF-19", [gather](Description &d) {
        gather(d, {4, -1, 9}, Collective::ReduceScatterSum);
      }));
  t.push_back(
      partLie("reduce-scatter-of-i64", "AF-19", [gather](Description &d) {
        gather(d, {4, -1, 8}, Collective::ReduceScatterSum);
        d.buffers[2].dtype = DType::I64;
        d.buffers.back().dtype = DType::I64;
        d.arenaBytes = 4096; // the I64 activation fits
      }));
  // An all-to-all of buffer 3 (BF16 [2, -1, 8]) into a buffer of `out`,
  // with counts of `counts`.
  auto toAll = [](Description &d, std::vector<int64_t> out, DType counts) {
    Buffer rows = d.buffers[2];
    rows.id = 22;
    rows.shape = std::move(out);
    rows.arenaOffset = -1;
    d.buffers.push_back(rows);
    for (uint32_t id : {23u, 24u}) {
      Buffer n = d.buffers[2];
      n.id = id;
      n.dtype = counts;
      n.shape = {2};
      n.arenaOffset = -1;
      d.buffers.push_back(n);
    }
    Step &st = d.entryPoints[1].steps[1];
    st.collective = Collective::AllToAll;
    st.buffers = {23, 3, 24, 22};
  };
  t.push_back(
      partLie("all-to-all-counts-not-i64", "AF-19", [toAll](Description &d) {
        toAll(d, {2, -1, 8}, DType::F32);
      }));
  t.push_back(
      partLie("all-to-all-other-shape", "AF-19", [toAll](Description &d) {
        toAll(d, {2, -1, 9}, DType::I64);
      }));
  t.push_back(
      partLie("all-to-all-three-buffers", "AF-19", [toAll](Description &d) {
        toAll(d, {2, -1, 8}, DType::I64);
        d.entryPoints[1].steps[1].buffers.pop_back();
      }));
  t.push_back(partLie("dp-attention-one-rank", "AF-19", [](Description &d) {
    // (checked before the shards, which a world of one also refuses)
    d.entryPoints[1].steps.erase(d.entryPoints[1].steps.begin() + 1);
    d.expertParallel = 1;
    d.dataParallelAttention = true;
  }));
  // AF-19 (format 1.7): tensor parallelism and sliced parameters
  // (embed.weight, BF16 [32, 8], as a slice of 2 along dim 0).
  auto slice = [](Description &d) {
    Parameter &p = d.parameters[0];
    p.shards = 2;
    p.sliceDim = 0;
  };
  t.push_back(partLie("tp-world-huge", "AF-19",
                      [](Description &d) { d.tensorParallel = 1u << 20; }));
  t.push_back(partLie("tp-and-ep-two-worlds", "AF-19",
                      [](Description &d) { d.tensorParallel = 3; }));
  t.push_back(partLie("slice-of-the-expert-dim", "AF-19", [](Description &d) {
    d.parameters.back().sliceDim = 0;
  }));
  // (1.8) a sliced stack holds every member: no padding members.
  t.push_back(partLie("slice-of-a-padded-stack", "AF-19", [](Description &d) {
    d.parameters.back().sliceDim = 1;
  }));
  t.push_back(partLie("slice-dim-past-rank", "AF-19", [slice](Description &d) {
    slice(d);
    d.parameters[0].sliceDim = 2;
  }));
  t.push_back(partLie("slice-of-one-shard", "AF-19", [slice](Description &d) {
    slice(d);
    d.parameters[0].shards = 1;
  }));
  t.push_back(partLie("slice-not-the-world", "AF-19", [slice](Description &d) {
    slice(d);
    d.parameters[0].shards = 4;
  }));
  t.push_back(
      partLie("slice-block-not-dividing", "AF-19", [slice](Description &d) {
        slice(d);
        d.parameters[0].sliceBlock = 3;
        d.parameters[0].sliceBlockOf = 128;
      }));
  t.push_back(
      partLie("slice-block-above-checkpoint", "AF-19", [slice](Description &d) {
        slice(d);
        d.parameters[0].sliceBlock = 256;
        d.parameters[0].sliceBlockOf = 128;
      }));
  t.push_back(partLie("slice-blocks-without-slice", "AF-19",
                      [](Description &d) { d.parameters[0].sliceBlock = 2; }));
  t.push_back(partLie("rank-input-wrong-shape", "AF-17",
                      [](Description &d) { d.buffers.back().shape = {2}; }));
  // AF-4: decoding: a table referenced twice (the buffers vector's second
  // entry pointed at the first buffer's table).
  t.push_back(byteLie("shared-buffer-table", "AF-4", [](auto &b) {
    const fb::Artifact *a = fb::GetArtifact(b.data() + kPrefixSize);
    auto *entries = reinterpret_cast<const uint8_t *>(a->buffers()->Data());
    size_t at = size_t(entries - b.data());
    uint32_t first = uint32_t(b[at] | b[at + 1] << 8 | b[at + 2] << 16 |
                              uint32_t(b[at + 3]) << 24);
    uint32_t second = first - 4; // the same table, seen from entry 1
    for (int i = 0; i < 4; ++i)
      b[at + 4 + i] = uint8_t(second >> (8 * i));
  }));
  return t;
}

} // namespace

const std::vector<Lie> &lies() {
  static const std::vector<Lie> table = makeLies();
  return table;
}

std::vector<uint8_t> lieBytes(const Lie &lie) {
  Writer w = tinyWriter();
  WriteOptions options;
  if (lie.edit)
    lie.edit(w, options);
  options.verify = false;
  auto bytes = w.serialize(options);
  if (!bytes)
    return {};
  std::vector<uint8_t> b = bytes.take();
  if (lie.patch)
    lie.patch(b);
  if (!lie.keepChecksum)
    fixChecksum(b);
  return b;
}

} // namespace v4::artifact::testing
