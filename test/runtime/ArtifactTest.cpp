//===- ArtifactTest.cpp - artifact writer and layered loader tests --------===//
//
// Round trip of the tiny artifact, the lies table (one row per AF rule plus
// variants, docs/RELIABILITY.md section 3.2), truncation at every byte and
// every single-bit flip, the version matrix, atomic writes.
//
//===----------------------------------------------------------------------===//

#include "runtime/artifact/Artifact.h"
#include "test/lib/PeakMemory.h"
#include "test/lib/TestArtifacts.h"
#include "v4_artifact_generated.h"

#include "test/lib/StatusMatchers.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

using namespace v4::artifact;
using namespace v4::artifact::testing;
namespace fs = std::filesystem;

namespace {

Status loadStatus(const std::vector<uint8_t> &b,
                  const LoadOptions &options = {}) {
  auto a = Artifact::load("model.v4a", b.data(), b.size(), options);
  return a ? Status::success() : a.status();
}

class ArtifactFileTest : public ::testing::Test {
protected:
  void SetUp() override {
    char tmpl[] = "/tmp/v4-af-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::vector<std::string> listDir() {
    std::vector<std::string> out;
    for (auto &e : fs::directory_iterator(dir))
      out.push_back(e.path().filename().string());
    return out;
  }
  std::string dir;
};

TEST(ArtifactTest, Crc32KnownValue) {
  EXPECT_EQ(crc32("123456789", 9), 0xCBF43926u);
  EXPECT_EQ(crc32("", 0), 0u);
  // Chained equals one call.
  EXPECT_EQ(crc32("6789", 4, crc32("12345", 5)), 0xCBF43926u);
  std::vector<uint8_t> big(1000);
  for (size_t i = 0; i < big.size(); ++i)
    big[i] = uint8_t(i * 7);
  uint32_t bytewise = 0;
  for (uint8_t b : big)
    bytewise = crc32(&b, 1, bytewise);
  EXPECT_EQ(crc32(big.data(), big.size()), bytewise);
}

TEST(ArtifactTest, TinyRoundTrip) {
  std::vector<uint8_t> bytes = tinyArtifact();
  ASSERT_FALSE(bytes.empty());
  auto a = Artifact::load("tiny.v4a", bytes.data(), bytes.size());
  ASSERT_TRUE(a) << a.status().message();
  EXPECT_EQ(a->formatMajor(), kFormatMajor);
  EXPECT_EQ(a->formatMinor(), kFormatMinor);
  EXPECT_EQ(a->fileSize(), bytes.size());
  EXPECT_EQ(a->versions().compiler, "v4c 0.1.0");
  EXPECT_EQ(a->target(), Target::CPU);
  EXPECT_EQ(a->features(), uint64_t(kFeatureFP8));
  EXPECT_EQ(a->bounds().batch, 2);
  EXPECT_EQ(a->bounds().maxContext, 64);
  EXPECT_EQ(a->bounds().maxChunk, 16);
  ASSERT_EQ(a->codeObjects().size(), 1u);
  EXPECT_EQ(a->codeObjects()[0].offset % kBlobAlignment, 0u);
  EXPECT_GE(a->codeObjects()[0].offset, kPrefixSize + a->flatbufferSize());
  ByteSpan code = a->code(0);
  ASSERT_EQ(code.size, kTinyCodeSize);
  EXPECT_EQ(std::memcmp(code.data,
                        "\x7f"
                        "ELF",
                        4),
            0);
  EXPECT_EQ(code.data[100], uint8_t(100 * 31 + 7));
  EXPECT_EQ(a->code(1).size, 0u);

  ASSERT_EQ(a->kernels().size(), 2u);
  EXPECT_EQ(a->kernels()[1].name, "head");
  EXPECT_EQ(a->kernels()[1].entrySymbol, "v4_kernel_head");
  EXPECT_EQ(a->kernels()[1].numBufferArgs, 4u);
  EXPECT_EQ(a->kernels()[1].numScalarArgs, 2u);
  EXPECT_EQ(a->kernels()[1].debugLocation, "head");
  ASSERT_EQ(a->buffers().size(), 6u);
  const Buffer *hidden = a->findBuffer(3);
  ASSERT_NE(hidden, nullptr);
  EXPECT_EQ(hidden->shape, (std::vector<int64_t>{2, -1, 8}));
  EXPECT_EQ(hidden->kind, BufferKind::Activation);
  EXPECT_EQ(a->bufferBytes(*hidden, 16), 2u * 16 * 8 * 2);
  EXPECT_EQ(a->bufferBytes(*hidden, 17), 0u); // above max_chunk
  EXPECT_EQ(a->findBuffer(99), nullptr);
  ASSERT_EQ(a->stateSpecs().size(), 1u);
  EXPECT_EQ(a->stateSpecs()[0].buffers, (std::vector<uint32_t>{6}));
  const EntryPoint *step = a->findEntryPoint("step");
  ASSERT_NE(step, nullptr);
  ASSERT_EQ(step->steps.size(), 2u);
  EXPECT_EQ(step->steps[1].buffers, (std::vector<uint32_t>{3, 4, 6, 5}));
  ASSERT_EQ(step->steps[1].scalars.size(), 2u);
  EXPECT_EQ(step->steps[1].scalars[0].kind, ScalarKind::StartPos);
  EXPECT_EQ(step->steps[1].scalars[1].value, 7);
  EXPECT_EQ(step->steps[1].debugLocation, 1);
  EXPECT_NE(a->findEntryPoint("init_state"), nullptr);
  EXPECT_EQ(a->findKernel("embed"), &a->kernels()[0]);
  ASSERT_EQ(a->parameters().size(), 2u);
  EXPECT_EQ(a->parameters()[0].name, "embed.weight");
  EXPECT_EQ(a->parameters()[0].buffer, 2u);
  ASSERT_EQ(a->debugLocations().size(), 2u);
  EXPECT_EQ(a->debugLocations()[1].line, 9u);

  // Deterministic output.
  EXPECT_EQ(tinyArtifact(), bytes);
  // A loaded description written again gives the same bytes.
  Writer again(a->description());
  again.description().codeObjects.clear();
  again.addCodeObject(Target::CPU, CodeFormat::HostSharedObject,
                      std::vector<uint8_t>(code.data, code.data + code.size));
  auto rewritten = again.serialize();
  ASSERT_TRUE(rewritten) << rewritten.status().message();
  EXPECT_EQ(*rewritten, bytes);
}

// 1.2: a derived parameter (the Engram multipliers, V4-SPEC 8.4) and the
// checked tensors (the Engram primes) round-trip; AF-12 and AF-16 refuse
// what does not fit.
TEST(ArtifactTest, DerivedParametersAndCheckedTensors) {
  auto withDerived = [](Description &d) {
    for (Buffer &b : d.buffers)
      if (b.id == d.parameters[1].buffer)
        b.dtype = DType::I64;
    d.parameters[1].dtype = DType::I64;
    d.parameters[1].derived = {DerivedRule::EngramMultipliers, 10007, 12345};
    d.checkedTensors = {{"layers.1.engram.primes", {41, 43}, "primes"}};
  };
  auto bytesOf = [](const std::function<void(Description &)> &edit) {
    Writer w = tinyWriter();
    edit(w.description());
    auto b = w.serialize();
    return b ? *b : std::vector<uint8_t>();
  };
  std::vector<uint8_t> bytes = bytesOf(withDerived);
  ASSERT_FALSE(bytes.empty());
  auto a = Artifact::load("derived.v4a", bytes.data(), bytes.size());
  ASSERT_TRUE(a) << a.status().message();
  const Parameter &p = a->parameters()[1];
  EXPECT_EQ(p.derived.rule, DerivedRule::EngramMultipliers);
  EXPECT_EQ(p.derived.seed, 10007u);
  EXPECT_EQ(p.derived.bound, 12345);
  EXPECT_EQ(a->parameters()[0].derived.rule, DerivedRule::None);
  ASSERT_EQ(a->checkedTensors().size(), 1u);
  EXPECT_EQ(a->checkedTensors()[0].name, "layers.1.engram.primes");
  EXPECT_EQ(a->checkedTensors()[0].values, (std::vector<int64_t>{41, 43}));
  EXPECT_EQ(a->checkedTensors()[0].rule, "primes");

  struct Case {
    const char *rule;
    std::function<void(Description &)> edit;
  };
  std::vector<Case> cases = {
      {"AF-12",
       [&](Description &d) {
         withDerived(d);
         d.parameters[1].derived.rule = DerivedRule(7);
       }},
      {"AF-12",
       [&](Description &d) {
         withDerived(d);
         d.parameters[1].derived.bound = 0;
       }},
      {"AF-12",
       [&](Description &d) {
         withDerived(d);
         d.parameters[0].derived = d.parameters[1].derived; // BF16 [32, 8]
       }},
      {"AF-16",
       [&](Description &d) {
         withDerived(d);
         d.checkedTensors[0].name = d.parameters[0].name;
       }},
      {"AF-16",
       [&](Description &d) {
         withDerived(d);
         d.checkedTensors[0].values.clear();
       }},
  };
  for (const Case &c : cases) {
    Writer w = tinyWriter();
    c.edit(w.description());
    auto b = w.serialize(); // the writer runs the same checks
    EXPECT_RULE(b ? Status::success() : b.status(), c.rule);
  }
}

TEST(ArtifactTest, LoadCopiesUnalignedInput) {
  std::vector<uint8_t> bytes = tinyArtifact();
  std::vector<uint8_t> shifted(bytes.size() + 1);
  std::memcpy(shifted.data() + 1, bytes.data(), bytes.size());
  auto a = Artifact::load("shifted", shifted.data() + 1, bytes.size());
  ASSERT_TRUE(a) << a.status().message();
  EXPECT_EQ(a->kernels().size(), 2u);
}

TEST(ArtifactTest, LiesTable) {
  const auto &table = lies();
  EXPECT_GE(table.size(), 30u);
  std::set<std::string> rules, names;
  for (const Lie &lie : table) {
    SCOPED_TRACE(lie.name);
    EXPECT_TRUE(names.insert(lie.name).second) << "duplicate lie name";
    rules.insert(lie.rule);
    std::vector<uint8_t> b = lieBytes(lie);
    auto a = Artifact::load("lie.v4a", b.data(), b.size(), lie.load);
    EXPECT_RULE(a ? Status::success() : a.status(), lie.rule);
    if (!a) {
      EXPECT_EQ(a.status().message().rfind("lie.v4a: ", 0), 0u)
          << a.status().message();
    }
  }
  for (int r : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 18})
    EXPECT_TRUE(rules.count("AF-" + std::to_string(r)))
        << "no lie for AF-" << r;
}

TEST(ArtifactTest, WriterRejectsLies) {
  // With verification on, every description-level lie is refused by the
  // writer itself, with the same rule.
  for (const Lie &lie : lies()) {
    if (!lie.edit || lie.patch)
      continue;
    SCOPED_TRACE(lie.name);
    Writer w = tinyWriter();
    WriteOptions options;
    lie.edit(w, options);
    options.verify = true;
    auto b = w.serialize(options);
    EXPECT_RULE(b ? Status::success() : b.status(), lie.rule);
  }
}

TEST(ArtifactTest, WriterArgumentErrors) {
  Writer w = tinyWriter();
  w.description().codeObjects.push_back(CodeObject{});
  auto b = w.serialize();
  EXPECT_RULE(b ? Status::success() : b.status(), "ARG");
}

TEST(ArtifactTest, IntegrityOnlyStopsAfterChecksum) {
  LoadOptions options;
  options.integrityOnly = true;
  for (const Lie &lie : lies()) {
    SCOPED_TRACE(lie.name);
    std::vector<uint8_t> b = lieBytes(lie);
    Status s = loadStatus(b, options);
    if (lie.rule == "AF-1" || lie.rule == "AF-2" || lie.rule == "AF-3")
      EXPECT_RULE(s, lie.rule);
    else
      EXPECT_TRUE(s.ok()) << s.message();
  }
}

TEST(ArtifactTest, TruncationAtEveryByte) {
  std::vector<uint8_t> bytes = tinyArtifact();
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + n);
    Status s = loadStatus(cut);
    ASSERT_FALSE(s.ok()) << n;
    ASSERT_EQ(s.rule(), n < kPrefixSize ? "AF-1" : "AF-3") << s.message();
  }
}

TEST(ArtifactTest, EveryBitFlip) {
  std::vector<uint8_t> bytes = tinyArtifact();
  size_t loaded = 0, rejected = 0;
  std::map<std::string, size_t> byRule;
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::vector<uint8_t> b = bytes;
      b[i] ^= uint8_t(1u << bit);
      // As stored, every flip fails: the magic (AF-1), the version (AF-2:
      // newer or older, unless it reads as an older minor of our major) or
      // the checksum (AF-3).
      Status s = loadStatus(b);
      ASSERT_FALSE(s.ok()) << "byte " << i << " bit " << bit;
      unsigned major = b[8] | b[9] << 8, minor = b[10] | b[11] << 8;
      bool readable = major == kFormatMajor && minor <= kFormatMinor;
      const char *want = i < 8 ? "AF-1" : i < 12 && !readable ? "AF-2" : "AF-3";
      ASSERT_EQ(s.rule(), want) << s.message();
      // With the checksum recomputed, the later layers end in a clean error
      // or a clean load.
      fixChecksum(b);
      Status t = loadStatus(b);
      if (t.ok()) {
        ++loaded;
      } else {
        ++rejected;
        ++byRule[t.rule()];
        ASSERT_EQ(t.rule().rfind("AF-", 0), 0u) << t.message();
      }
    }
  }
  std::string summary;
  for (auto &[rule, n] : byRule)
    summary += " " + rule + ":" + std::to_string(n);
  std::printf("bit flips with checksum fixed: %zu load, %zu rejected (%s )\n",
              loaded, rejected, summary.c_str());
  EXPECT_GT(rejected, 0u);
}

TEST(ArtifactTest, VersionMessages) {
  struct Case {
    uint16_t major, minor;
    const char *found, *text;
  };
  const std::string range = "(" + std::to_string(kFormatMajor) + ".0-" +
                            std::to_string(kFormatMajor) + "." +
                            std::to_string(kFormatMinor) + ")";
  std::vector<Case> cases = {
      {uint16_t(kFormatMajor + 1), 0, "", "is newer than"},
      {kFormatMajor, uint16_t(kFormatMinor + 1), "", "is newer than"},
      {uint16_t(kFormatMajor - 1), 7, "", "is older than"},
  };
  for (const Case &c : cases) {
    Writer w = tinyWriter();
    WriteOptions options;
    options.verify = false;
    options.formatMajor = c.major;
    options.formatMinor = c.minor;
    auto b = w.serialize(options);
    ASSERT_TRUE(b);
    Status s = loadStatus(*b);
    EXPECT_RULE(s, "AF-2");
    std::string version =
        std::to_string(c.major) + "." + std::to_string(c.minor);
    EXPECT_NE(s.message().find("model.v4a: artifact format " + version + " " +
                               c.text),
              std::string::npos)
        << s.message();
    EXPECT_NE(s.message().find(range), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("v4rt " + std::string(kRuntimeVersion)),
              std::string::npos)
        << s.message();
    EXPECT_NE(s.message().find(std::string(c.text) == "is newer than"
                                   ? "upgrade v4rt or recompile"
                                   : "recompile the model"),
              std::string::npos)
        << s.message();
  }
  // Every older minor of our major is read.
  for (uint16_t minor = 0; minor <= kFormatMinor; ++minor) {
    Writer w = tinyWriter();
    WriteOptions options;
    options.formatMinor = minor;
    auto b = w.serialize(options);
    ASSERT_TRUE(b) << b.status().message();
    EXPECT_TRUE(loadStatus(*b).ok()) << "minor " << minor;
  }
}

TEST(ArtifactTest, Format10ReadsWithPositionalRoles) {
  // A 1.0 file (no roles, no launch geometry): the 1.1 reader gives its
  // inputs and outputs their positional roles and every kernel the host
  // launch.
  Writer w = tinyWriter();
  w.description().kernels[0].launch.grid[0] = {3, 8}; // not written by 1.0
  WriteOptions options;
  options.formatMinor = 0;
  auto b = w.serialize(options);
  ASSERT_TRUE(b) << b.status().message();
  auto a = Artifact::load("old.v4a", b->data(), b->size());
  ASSERT_TRUE(a) << a.status().message();
  EXPECT_EQ(a->formatMinor(), 0);
  EXPECT_EQ(a->findBuffer(1)->role, role::kIds);
  EXPECT_EQ(a->findBuffer(5)->role, role::kLogits);
  EXPECT_EQ(a->findBuffer(3)->role, "");
  EXPECT_EQ(a->findBufferByRole(role::kLogits), a->findBuffer(5));
  EXPECT_EQ(a->kernels()[0].launch.grid[0].fixed, 1u);
  EXPECT_EQ(a->kernels()[0].launch.grid[0].tokenTile, 0u);
}

TEST(ArtifactTest, LaunchGeometryAndRolesRoundTrip) {
  Writer w = tinyWriter();
  Launch &l = w.description().kernels[1].launch;
  l.grid[0] = {4, 64};
  l.grid[2] = {7, 0};
  auto b = w.serialize();
  ASSERT_TRUE(b) << b.status().message();
  auto a = Artifact::load("tiny.v4a", b->data(), b->size());
  ASSERT_TRUE(a) << a.status().message();
  const Launch &r = a->kernels()[1].launch;
  EXPECT_EQ(r.grid[0].fixed, 4u);
  EXPECT_EQ(r.grid[0].tokenTile, 64u);
  EXPECT_EQ(r.grid[1].fixed, 1u);
  EXPECT_EQ(r.grid[2].fixed, 7u);
  EXPECT_EQ(r.block[0], 1u);
  EXPECT_EQ(r.sharedMemoryBytes, 0u);
  EXPECT_EQ(r.workspaceBytes, 0u);
  // ceil(T / 64) tiles of 4 blocks.
  EXPECT_EQ(r.grid[0].blocks(1), 4u);
  EXPECT_EQ(r.grid[0].blocks(64), 4u);
  EXPECT_EQ(r.grid[0].blocks(65), 8u);
  EXPECT_EQ(r.grid[2].blocks(1000), 7u);
  EXPECT_EQ(a->findBufferByRole(role::kIds), a->findBuffer(1));
  EXPECT_EQ(a->findBufferByRole(role::kMtpLogits), nullptr);
  EXPECT_EQ(a->findBufferByRole(""), nullptr);
}

// Format 1.4: a GPU kernel's block, shared memory and workspace survive the
// round trip (the sm_90a target's kernels: v4-gpu-map-kernels).
TEST(ArtifactTest, GPULaunchAndWorkspaceRoundTrip) {
  Writer w = tinyWriter();
  w.description().target = Target::SM90A;
  w.description().codeObjects[0].target = Target::SM90A;
  w.description().codeObjects[0].format = CodeFormat::PTX;
  Launch &l = w.description().kernels[1].launch;
  l.block[0] = 256;
  l.sharedMemoryBytes = 4096;
  l.workspaceBytes = (uint64_t(1) << 33) + 64;
  auto b = w.serialize();
  ASSERT_TRUE(b) << b.status().message();
  auto a = Artifact::load("gpu.v4a", b->data(), b->size());
  ASSERT_TRUE(a) << a.status().message();
  const Launch &r = a->kernels()[1].launch;
  EXPECT_EQ(r.block[0], 256u);
  EXPECT_EQ(r.sharedMemoryBytes, 4096u);
  EXPECT_EQ(r.workspaceBytes, (uint64_t(1) << 33) + 64);
  EXPECT_EQ(a->kernels()[0].launch.workspaceBytes, 0u);
}

TEST(ArtifactTest, KernelSetsRoundTrip) {
  // Format 1.5: one plan, the kernels of two targets.
  Writer w = tinyWriter();
  addGPUKernelSet(w);
  w.description().kernelSets[0].kernels[1].launch.grid[0] = {4, 16};
  auto b = w.serialize();
  ASSERT_TRUE(b) << b.status().message();
  auto a = Artifact::load("both.v4a", b->data(), b->size());
  ASSERT_TRUE(a) << a.status().message();
  EXPECT_EQ(a->formatMinor(), kFormatMinor);
  ASSERT_EQ(a->targets().size(), 2u);
  EXPECT_EQ(a->targets()[0], Target::CPU);
  EXPECT_EQ(a->targets()[1], Target::SM90A);
  EXPECT_EQ(a->kernelsFor(Target::CPU), &a->kernels());
  const std::vector<Kernel> *gpu = a->kernelsFor(Target::SM90A);
  ASSERT_NE(gpu, nullptr);
  ASSERT_EQ(gpu->size(), 2u);
  EXPECT_EQ((*gpu)[1].name, "head");
  EXPECT_EQ((*gpu)[1].entrySymbol, "head");
  EXPECT_EQ((*gpu)[1].codeObject, 1u);
  EXPECT_EQ((*gpu)[1].launch.block[0], 256u);
  EXPECT_EQ((*gpu)[1].launch.grid[0].fixed, 4u);
  EXPECT_EQ((*gpu)[1].launch.grid[0].tokenTile, 16u);
  EXPECT_EQ((*gpu)[0].launch.workspaceBytes, 1024u);
  // The artifact's own table is untouched: host launches.
  EXPECT_EQ(a->kernels()[1].launch.block[0], 1u);
  EXPECT_EQ(a->kernels()[1].entrySymbol, "v4_kernel_head");
  // A single-target artifact has no table for another target.
  std::vector<uint8_t> tiny = tinyArtifact();
  auto one = Artifact::load("one.v4a", tiny.data(), tiny.size());
  ASSERT_TRUE(one);
  EXPECT_EQ(one->targets().size(), 1u);
  EXPECT_EQ(one->kernelsFor(Target::SM90A), nullptr);
}

TEST(ArtifactTest, PartitionRoundTrip) {
  // Format 1.6: the world, the rank input, a collective step, a padded
  // shard; the member names of each rank's shard.
  Writer w = tinyWriter();
  makePartitioned(w.description());
  auto b = w.serialize();
  ASSERT_TRUE(b) << b.status().message();
  auto a = Artifact::load("ep.v4a", b->data(), b->size());
  ASSERT_TRUE(a) << a.status().message();
  EXPECT_EQ(a->formatMinor(), kFormatMinor);
  EXPECT_EQ(a->worldSize(), 2u);
  const Buffer *rank = a->findBufferByRole(role::kRank);
  ASSERT_NE(rank, nullptr);
  EXPECT_EQ(rank->id, 20u);
  const Step &sum = a->findEntryPoint("step")->steps[1];
  EXPECT_EQ(sum.collective, Collective::AllReduceSum);
  EXPECT_EQ(sum.buffers, std::vector<uint32_t>{3});
  EXPECT_EQ(a->findEntryPoint("step")->steps[0].collective, Collective::None);
  const Parameter &p = a->parameters().back();
  EXPECT_EQ(p.shards, 2u);
  EXPECT_EQ(p.members, 3u);
  EXPECT_EQ(stackMemberName(p, 0, 0), "e.0.w");
  EXPECT_EQ(stackMemberName(p, 1, 0), "e.1.w");
  EXPECT_EQ(stackMemberName(p, 0, 1), "e.2.w");
  EXPECT_EQ(stackMemberName(p, 1, 1), std::nullopt); // padding
  // Data-parallel attention: a gather and a reduce-scatter (world 2).
  Writer dp = tinyWriter();
  Description &dd = dp.description();
  makePartitioned(dd);
  dd.dataParallelAttention = true;
  Buffer all = dd.buffers[2];
  all.id = 22;
  all.shape = {4, -1, 8};
  all.arenaOffset = -1;
  dd.buffers.push_back(all);
  dd.entryPoints[1].steps[1].collective = Collective::AllGather;
  dd.entryPoints[1].steps[1].buffers = {3, 22};
  Step scatter;
  scatter.collective = Collective::ReduceScatterSum;
  scatter.buffers = {22, 3};
  dd.entryPoints[1].steps.insert(dd.entryPoints[1].steps.begin() + 2, scatter);
  auto db = dp.serialize();
  ASSERT_TRUE(db) << db.status().message();
  auto da = Artifact::load("dp.v4a", db->data(), db->size());
  ASSERT_TRUE(da) << da.status().message();
  EXPECT_TRUE(da->description().dataParallelAttention);
  EXPECT_EQ(da->findEntryPoint("step")->steps[1].collective,
            Collective::AllGather);
  EXPECT_EQ(da->findEntryPoint("step")->steps[2].collective,
            Collective::ReduceScatterSum);
  EXPECT_STREQ(collectiveName(Collective::ReduceScatterSum),
               "reduce_scatter_sum");
  // Format 1.9: an all-to-all of buffer 3 with counts (I64 [world]).
  Writer ta = tinyWriter();
  Description &td = ta.description();
  makePartitioned(td);
  td.dataParallelAttention = true;
  Buffer out = td.buffers[2];
  out.id = 22;
  out.arenaOffset = -1;
  td.buffers.push_back(out);
  for (uint32_t id : {23u, 24u}) {
    Buffer n = td.buffers[2];
    n.id = id;
    n.dtype = DType::I64;
    n.shape = {2};
    n.arenaOffset = -1;
    td.buffers.push_back(n);
  }
  td.entryPoints[1].steps[1].collective = Collective::AllToAll;
  td.entryPoints[1].steps[1].buffers = {23, 3, 24, 22};
  auto tb = ta.serialize();
  ASSERT_TRUE(tb) << tb.status().message();
  auto tl = Artifact::load("a2a.v4a", tb->data(), tb->size());
  ASSERT_TRUE(tl) << tl.status().message();
  EXPECT_EQ(tl->findEntryPoint("step")->steps[1].collective,
            Collective::AllToAll);
  EXPECT_EQ(tl->findEntryPoint("step")->steps[1].buffers,
            (std::vector<uint32_t>{23, 3, 24, 22}));
  EXPECT_STREQ(collectiveName(Collective::AllToAll), "all_to_all");
  // Format 1.10: a host kernel's token slices round-trip.
  Writer ts = tinyWriter();
  // Batch 1: only size-1 dims before the token dims.
  ts.description().bounds.batch = 1;
  for (Buffer &b : ts.description().buffers)
    if (!b.shape.empty() && b.shape[0] == 2)
      b.shape[0] = 1;
  ts.description().kernels[1].launch.tokenSlice = 8;
  ts.description().kernels[1].numScalarArgs = 0;
  for (EntryPoint &e : ts.description().entryPoints)
    for (Step &st : e.steps)
      if (st.kernel == 1 && st.collective == Collective::None)
        st.scalars.clear();
  auto tsb = ts.serialize();
  ASSERT_TRUE(tsb) << tsb.status().message();
  auto tsl = Artifact::load("slices.v4a", tsb->data(), tsb->size());
  ASSERT_TRUE(tsl) << tsl.status().message();
  EXPECT_EQ(tsl->kernels()[1].launch.tokenSlice, 8u);
  EXPECT_EQ(tsl->kernels()[0].launch.tokenSlice, 0u);
  // Format 1.11: a concurrent step round-trips; the buffer both steps of
  // the group name (the activation) is allowed.
  Writer cs = tinyWriter();
  cs.description().entryPoints[1].steps[1].concurrent = true;
  auto csb = cs.serialize();
  ASSERT_TRUE(csb) << csb.status().message();
  auto csl = Artifact::load("concurrent.v4a", csb->data(), csb->size());
  ASSERT_TRUE(csl) << csl.status().message();
  EXPECT_FALSE(csl->findEntryPoint("step")->steps[0].concurrent);
  EXPECT_TRUE(csl->findEntryPoint("step")->steps[1].concurrent);
  // Format 1.12: a step's outputs round-trip; none is the default.
  Writer oo = tinyWriter();
  oo.description().entryPoints[1].steps[1].onlyForOutputs = {0};
  auto oob = oo.serialize();
  ASSERT_TRUE(oob) << oob.status().message();
  auto ool = Artifact::load("outputs.v4a", oob->data(), oob->size());
  ASSERT_TRUE(ool) << ool.status().message();
  EXPECT_TRUE(ool->findEntryPoint("step")->steps[0].onlyForOutputs.empty());
  EXPECT_EQ(ool->findEntryPoint("step")->steps[1].onlyForOutputs,
            std::vector<uint32_t>{0});
  // A plan of one rank has a world of one.
  std::vector<uint8_t> tiny = tinyArtifact();
  auto one = Artifact::load("one.v4a", tiny.data(), tiny.size());
  ASSERT_TRUE(one);
  EXPECT_EQ(one->worldSize(), 1u);
  EXPECT_EQ(one->findBufferByRole(role::kRank), nullptr);
}

TEST(ArtifactTest, StepsForDropOnlyUnwantedOutputs) {
  // Format 1.12 (Model::stepFor).
  // The steps a call runs: a launch only for the MTP logits is dropped
  // unless they are wanted, and a kept follower of a dropped leader leads.
  EntryPoint ep;
  ep.name = "step";
  auto launch = [&](uint32_t kernel, bool concurrent,
                    std::vector<uint32_t> only) {
    Step s;
    s.kernel = kernel;
    s.concurrent = concurrent;
    s.onlyForOutputs = std::move(only);
    ep.steps.push_back(s);
  };
  launch(0, false, {});
  launch(1, false, {1}); // a leader only for the MTP logits
  launch(2, true, {1});
  launch(3, true, {}); // leads once 1 and 2 are dropped
  launch(4, true, {0, 1});
  launch(5, false, {0});
  launch(6, true, {1}); // a dropped follower
  launch(7, true, {});
  launch(8, false, {2}); // mtp_logits.1: no call asks for it
  EntryPoint main = stepsFor(ep, 1), both = stepsFor(ep, 3);
  std::vector<std::pair<uint32_t, bool>> got,
      want = {{0, false}, {3, false}, {4, true}, {5, false}, {7, true}};
  for (const Step &s : main.steps)
    got.emplace_back(s.kernel, s.concurrent);
  EXPECT_EQ(got, want);
  EXPECT_EQ(main.name, "step");
  ASSERT_EQ(both.steps.size(), 8u);
  for (size_t i = 0; i < both.steps.size(); ++i) {
    EXPECT_EQ(both.steps[i].kernel, ep.steps[i].kernel);
    EXPECT_EQ(both.steps[i].concurrent, ep.steps[i].concurrent);
  }
  EXPECT_EQ(stepsFor(ep, 7).steps.size(), 9u);
}

TEST(ArtifactTest, TensorParallelSliceRoundTrip) {
  // Format 1.7: a world of tensor parallelism (no rank input needed) and a
  // sliced parameter: its checkpoint shape and each rank's rows.
  Writer w = tinyWriter();
  Description &d = w.description();
  d.tensorParallel = 2;
  Parameter &p = d.parameters[0]; // embed.weight BF16 [32, 8]
  p.shards = 2;
  p.sliceDim = 0;
  p.sliceBlock = 2;
  p.sliceBlockOf = 4;
  auto b = w.serialize();
  ASSERT_TRUE(b) << b.status().message();
  auto a = Artifact::load("tp.v4a", b->data(), b->size());
  ASSERT_TRUE(a) << a.status().message();
  EXPECT_EQ(a->worldSize(), 2u);
  EXPECT_EQ(a->description().tensorParallel, 2u);
  EXPECT_EQ(a->description().expertParallel, 1u);
  const Parameter &q = a->parameters()[0];
  EXPECT_EQ(q.sliceDim, 0);
  EXPECT_EQ(q.sliceBlock, 2u);
  EXPECT_EQ(q.sliceBlockOf, 4u);
  // 2 ranks x 32 entries of 2 rows = 128 rows in checkpoint entries of 4.
  EXPECT_EQ(checkpointShape(q), (std::vector<int64_t>{32, 8}));
  // Rank 1's entry i covers rows 64 + 2i: checkpoint entry (64 + 2i) / 4.
  EXPECT_EQ(sliceSourceIndex(q, 0, 0), 0);
  EXPECT_EQ(sliceSourceIndex(q, 0, 3), 1);
  EXPECT_EQ(sliceSourceIndex(q, 1, 0), 16);
  EXPECT_EQ(sliceSourceIndex(q, 1, 31), 31);
  // The gather: row r of the checkpoint is 8 bf16 values of r.
  std::vector<uint16_t> whole(32 * 8), part(32 * 8);
  for (size_t i = 0; i < whole.size(); ++i)
    whole[i] = uint16_t(i / 8);
  gatherSlice(q, 1, reinterpret_cast<const uint8_t *>(whole.data()),
              reinterpret_cast<uint8_t *>(part.data()));
  for (int64_t i = 0; i < 32; ++i)
    for (int64_t c = 0; c < 8; ++c)
      ASSERT_EQ(part[i * 8 + c], uint16_t((64 + 2 * i) / 4)) << i << "," << c;
  // A plain slice along the last dim: rank r's columns.
  Parameter cols{"w", DType::F32, {3, 2}, 0};
  cols.shards = 3;
  cols.sliceDim = 1;
  EXPECT_EQ(checkpointShape(cols), (std::vector<int64_t>{3, 6}));
  std::vector<float> m(18), mine(6);
  for (size_t i = 0; i < m.size(); ++i)
    m[i] = float(i);
  gatherSlice(cols, 2, reinterpret_cast<const uint8_t *>(m.data()),
              reinterpret_cast<uint8_t *>(mine.data()));
  EXPECT_EQ(mine, (std::vector<float>{4, 5, 10, 11, 16, 17}));
  // Rows are one run of the checkpoint tensor (mapped, not gathered):
  // rank 1's 4 rows of 8 bf16 start at byte 64; columns and block scales
  // that repeat entries are not.
  Parameter rows{"r", DType::BF16, {4, 8}, 0};
  rows.shards = 2;
  rows.sliceDim = 0;
  EXPECT_EQ(contiguousSliceBytes(rows, 1),
            (std::optional<std::pair<uint64_t, uint64_t>>{{64, 64}}));
  EXPECT_EQ(contiguousSliceBytes(cols, 1), std::nullopt);
  EXPECT_EQ(contiguousSliceBytes(q, 1), std::nullopt);
  Parameter lead{"l", DType::F32, {1, 3, 2}, 0};
  lead.shards = 2;
  lead.sliceDim = 1;
  EXPECT_EQ(contiguousSliceBytes(lead, 1),
            (std::optional<std::pair<uint64_t, uint64_t>>{{24, 24}}));
}

TEST(ArtifactTest, TensorParallelStackSliceRoundTrip) {
  // Format 1.8: a sliced `{}` stack (routed experts under --tp): every rank
  // binds every member, each the rank's columns of that member.
  Writer w = tinyWriter();
  Description &d = w.description();
  d.tensorParallel = 2;
  d.buffers.push_back(Buffer{});
  Buffer &buf = d.buffers.back();
  buf.id = 40;
  buf.dtype = DType::BF16;
  buf.shape = {3, 2, 2};
  buf.kind = BufferKind::Parameter;
  Parameter stack{"e.{}.w2", DType::BF16, {3, 2, 2}, 40};
  stack.shards = 2;
  stack.sliceDim = 2;
  d.parameters.push_back(stack);
  auto b = w.serialize();
  ASSERT_TRUE(b) << b.status().message();
  auto a = Artifact::load("tp-stack.v4a", b->data(), b->size());
  ASSERT_TRUE(a) << a.status().message();
  const Parameter &q = a->parameters().back();
  EXPECT_EQ(q.sliceDim, 2);
  EXPECT_EQ(checkpointShape(q), (std::vector<int64_t>{3, 2, 4}));
  // Members are the pattern's 0..2 on every rank (no shard offset).
  EXPECT_EQ(stackMemberName(q, 2, 0), "e.2.w2");
  EXPECT_EQ(stackMemberName(q, 2, 1), "e.2.w2");
  Parameter m = stackMemberSlice(q, 1);
  EXPECT_EQ(m.name, "e.1.w2");
  EXPECT_EQ(m.shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(m.sliceDim, 1);
  EXPECT_EQ(checkpointShape(m), (std::vector<int64_t>{2, 4}));
  // Rank 1's columns 2 and 3 of a member [2, 4] holding 0..7.
  std::vector<uint16_t> whole{0, 1, 2, 3, 4, 5, 6, 7}, part(4);
  gatherSlice(m, 1, reinterpret_cast<const uint8_t *>(whole.data()),
              reinterpret_cast<uint8_t *>(part.data()));
  EXPECT_EQ(part, (std::vector<uint16_t>{2, 3, 6, 7}));
}

TEST(ArtifactTest, RoleNames) {
  EXPECT_EQ(outputRole(0), "logits");
  EXPECT_EQ(outputRole(1), "mtp_logits");
  EXPECT_EQ(outputRole(3), "mtp_logits.2");
  for (size_t i = 0; i < 12; ++i)
    EXPECT_TRUE(isOutputRole(outputRole(i))) << outputRole(i);
  for (const char *r : role::kInputs) {
    EXPECT_TRUE(isInputRole(r));
    EXPECT_FALSE(isOutputRole(r));
  }
  for (const char *bad :
       {"", "logit", "mtp_logits.", "mtp_logits.0", "mtp_logits.01",
        "mtp_logits.1x", "mtp_logits1", "mtp_logits.1234567890"})
    EXPECT_FALSE(isOutputRole(bad)) << bad;
  EXPECT_FALSE(isInputRole("logits"));
  EXPECT_TRUE(isInputRole(role::kRank));
}

TEST(ArtifactTest, VersionBeforeChecksum) {
  // A newer file whose checksum is also wrong reads "newer", not "corrupt".
  Writer w = tinyWriter();
  WriteOptions options;
  options.verify = false;
  options.formatMajor = kFormatMajor + 3;
  auto b = w.serialize(options);
  ASSERT_TRUE(b);
  (*b)[b->size() - 1] ^= 0xFF;
  EXPECT_RULE(loadStatus(*b), "AF-2");
}

// LoadOptions::checkBytes (the runtime's DIG-1 digest check) sees the whole
// file as read once, before any byte is parsed, and its error stops the load.
TEST_F(ArtifactFileTest, CheckBytesSeesTheBytesLoadedBeforeParsing) {
  std::string path = dir + "/model.v4a";
  ASSERT_TRUE(tinyWriter().writeFile(path).ok());
  std::ifstream in(path, std::ios::binary);
  std::string file((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  LoadOptions options;
  std::string seen;
  options.checkBytes = [&](const uint8_t *data, uint64_t size) {
    seen.assign(reinterpret_cast<const char *>(data), size);
    return Status::success();
  };
  auto a = Artifact::loadFile(path, options);
  ASSERT_TRUE(a) << a.status().message();
  EXPECT_EQ(seen, file);
  EXPECT_EQ(a->fileSize(), file.size());

  options.checkBytes = [](const uint8_t *, uint64_t) {
    return Status::error("DIG-1", "not trusted");
  };
  std::ofstream(dir + "/junk.v4a") << "junk";
  EXPECT_RULE(Artifact::loadFile(dir + "/junk.v4a", options).status(), "DIG-1");
}

TEST_F(ArtifactFileTest, WriteFileAndLoadFile) {
  std::string path = dir + "/model.v4a";
  ASSERT_TRUE(tinyWriter().writeFile(path).ok());
  EXPECT_EQ(listDir(), std::vector<std::string>{"model.v4a"});
  auto a = Artifact::loadFile(path);
  ASSERT_TRUE(a) << a.status().message();
  EXPECT_EQ(a->source(), path);
  EXPECT_EQ(a->kernels().size(), 2u);

  // A refused write keeps the old file and leaves no temporary.
  Writer bad = tinyWriter();
  bad.description().kernels[0].codeObject = 5;
  EXPECT_RULE(bad.writeFile(path), "AF-8");
  EXPECT_EQ(listDir(), std::vector<std::string>{"model.v4a"});
  EXPECT_TRUE(Artifact::loadFile(path));

  // A directory that does not exist is an I/O error naming the path.
  Status s = tinyWriter().writeFile(dir + "/missing/model.v4a");
  EXPECT_RULE(s, "IO");
  EXPECT_NE(s.message().find("missing"), std::string::npos);
}

TEST_F(ArtifactFileTest, LoadFileErrors) {
  auto missing = Artifact::loadFile(dir + "/none.v4a");
  EXPECT_RULE(missing.status(), "IO");
  EXPECT_NE(missing.status().message().find("none.v4a"), std::string::npos);

  auto directory = Artifact::loadFile(dir);
  EXPECT_RULE(directory.status(), "AF-1");

  std::string empty = dir + "/empty.v4a";
  std::ofstream(empty).close();
  auto e = Artifact::loadFile(empty);
  EXPECT_RULE(e.status(), "AF-1");
  EXPECT_NE(e.status().message().find("empty.v4a: empty file"),
            std::string::npos)
      << e.status().message();

  // A lie through the file path names the file.
  std::string liePath = dir + "/lie.v4a";
  for (const Lie &lie : lies()) {
    if (lie.name != "kernel-code-object-out-of-range")
      continue;
    std::vector<uint8_t> b = lieBytes(lie);
    std::ofstream(liePath, std::ios::binary)
        .write(reinterpret_cast<const char *>(b.data()), b.size());
    auto a = Artifact::loadFile(liePath);
    EXPECT_RULE(a.status(), "AF-8");
    EXPECT_EQ(a.status().message().rfind(liePath + ": kernel 1 'head'", 0), 0u)
        << a.status().message();
  }
}

} // namespace

// Issue 16: shared FlatBuffer offsets made a 4 MB artifact decode to
// 770 MiB. Here 64 checked tensors all point at one table holding 500,000
// values (a 4 MB file that would decode to 256 MB): the loader refuses the
// second reference (AF-4), and its peak memory, measured in a child
// process, grows by at most 4x the file.
TEST(ArtifactTest, SharedOffsetsDoNotAmplify) {
#ifdef V4_TSAN_BUILD
  GTEST_SKIP() << "peak memory is not measured under TSan (shadow memory)";
#endif
  Writer w = tinyWriter();
  Description &d = w.description();
  d.checkedTensors.push_back(
      {"big", std::vector<int64_t>(500000, 7), "amplification"});
  for (int i = 1; i < 64; ++i)
    d.checkedTensors.push_back({"c" + std::to_string(i), {1}, "small"});
  WriteOptions o;
  o.verify = false;
  auto serialized = w.serialize(o);
  ASSERT_TRUE(serialized) << serialized.status().message();
  std::vector<uint8_t> bytes = serialized.take();
  {
    const fb::Artifact *a = fb::GetArtifact(bytes.data() + kPrefixSize);
    auto *entries =
        reinterpret_cast<const uint8_t *>(a->checked_tensors()->Data());
    size_t at = size_t(entries - bytes.data());
    uint32_t first;
    std::memcpy(&first, &bytes[at], 4);
    for (uint32_t i = 1; i < 64; ++i) {
      uint32_t same = first - 4 * i; // entry 0's table, seen from entry i
      std::memcpy(&bytes[at + 4 * i], &same, 4);
    }
  }
  fixChecksum(bytes);
  ASSERT_GT(bytes.size(), 4000000u);

  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Reset the peak to the current resident size, then load.
    v4::test::resetPeak();
    long before = long(v4::test::peakKiB());
    auto a = Artifact::load("amplified.v4a", bytes.data(), bytes.size());
    long growth = long(v4::test::peakKiB()) - before;
    bool shared = !a &&
                  a.status().message().find("twice") != std::string::npos &&
                  a.status().message().find("[AF-4]") != std::string::npos;
    std::fprintf(stderr, "amplified artifact: %zu bytes, load grew %ld KiB\n",
                 bytes.size(), growth);
    bool bounded = !v4::test::kMeasuresPeakMemory ||
                   growth * 1024 <= long(4 * bytes.size());
    _exit(shared && bounded ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "the load was not refused with AF-4 'twice', or grew over 4x";
}
