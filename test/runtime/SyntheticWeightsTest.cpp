//===- SyntheticWeightsTest.cpp - weights without a checkpoint ------------===//
//
// Synthetic weights (runtime/src/SyntheticWeights.h) on the tiny artifact
// with a parameter of every kind the manifest has (bf16, f32, FP8 with
// 128-blocks and 32-blocks, FP8 alone, packed FP4 expert stacks with per-32
// scales, a scale alone, tid2eid tables in i64 and i32, the Engram token
// map, derived and stored multipliers, a plain index table): each follows
// its format, the bytes depend only on the seed, the tensor's name and the
// element index (not the thread count, the upload path or the other
// parameters), the bytes written as a checkpoint load to the same buffers,
// and every rule violation is an RT-9 error. The C API's fields and
// v4rt_model_info's report. The compiled T1 and Engram models' logits are
// tested in test/unit/EndToEndTest.cpp (EndToEndSynthetic).
//
//===----------------------------------------------------------------------===//
#include "runtime/src/SyntheticWeights.h"
#include "runtime/artifact/Artifact.h"
#include "runtime/base/NumpyRandom.h"
#include "runtime/numerics/Numerics.h"
#include "runtime/numerics/WeightRecipe.h"
#include "runtime/safetensors/Safetensors.h"
#include "runtime/src/Model.h"
#include "test/lib/TestArtifacts.h"
#include "v4rt/v4rt.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace {

using namespace v4::artifact;
namespace fs = std::filesystem;
namespace st = v4::safetensors;
namespace quant = v4::quant;
using v4::DType;
using v4::StatusCode;
using v4::rt::Model;

struct ParamSpec {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  Derivation derived = {};
};

constexpr uint64_t kEngramSeed = 4242;
const int64_t kBound = v4::numpy::engramMultiplierBound(30);

/// Every kind of parameter a V4 manifest has, beside the tiny artifact's
/// "embed.weight" (bf16 [32, 8]) and "norm.weight" (f32 [8]).
std::vector<ParamSpec> everyKind() {
  return {
      {"layers.0.attn.wq.weight", DType::F8E4M3, {256, 160}},
      {"layers.0.attn.wq.scale", DType::F8E8M0, {2, 2}},
      {"layers.0.ffn.experts.{}.w1.weight", DType::I8, {3, 16, 32}},
      {"layers.0.ffn.experts.{}.w1.scale", DType::F8E8M0, {3, 16, 2}},
      {"layers.0.engram.embed.weight", DType::F8E4M3, {10, 64}},
      {"layers.0.engram.embed.scale", DType::F8E8M0, {10, 2}},
      {"layers.0.attn.lone.weight", DType::F8E4M3, {4, 8}},
      {"layers.0.attn.orphan.scale", DType::F8E8M0, {3}},
      {"layers.0.ffn.gate.weight", DType::BF16, {6, 8}},
      {"layers.0.ffn.gate.tid2eid", DType::I64, {32, 2}},
      {"layers.0.ffn.gate.bias", DType::F32, {6}},
      {"layers.1.ffn.gate.weight", DType::BF16, {5, 8}},
      {"layers.1.ffn.gate.tid2eid", DType::I32, {32, 5}},
      {"engram.token_map", DType::I64, {32}},
      {"layers.0.engram.multipliers",
       DType::I64,
       {3},
       {DerivedRule::EngramMultipliers, kEngramSeed, kBound}},
      {"layers.1.engram.multipliers", DType::I64, {3}},
      {"layers.0.hc_attn_scale", DType::F32, {3}},
      {"layers.0.other.index", DType::I32, {4}},
      // Large enough for several work items (bands of 128-row blocks,
      // chunks of floats).
      {"layers.0.ffn.big.weight", DType::F8E4M3, {1024, 256}},
      {"layers.0.ffn.big.scale", DType::F8E8M0, {8, 2}},
      {"head.weight", DType::BF16, {520, 256}},
  };
}

class SyntheticWeightsTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir = fs::temp_directory_path() /
          ("v4rt-synthetic-test-" + std::to_string(::getpid()));
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }

  /// The tiny artifact (no kernels, every input role, the test host
  /// kernels as its code object) with `extra` parameters, each in a buffer
  /// of its own; `keepTiny` false drops the tiny artifact's own two.
  std::string writeArtifact(const std::vector<ParamSpec> &extra,
                            const std::string &file = "m.v4a",
                            bool keepTiny = true) {
    Description d = v4::artifact::testing::kernelFreeDescription();
    if (!keepTiny) {
      d.parameters.clear();
      std::vector<Buffer> kept;
      for (const Buffer &b : d.buffers)
        if (b.kind != BufferKind::Parameter)
          kept.push_back(b);
      d.buffers = kept;
    }
    uint32_t id = 20;
    for (const ParamSpec &p : extra) {
      Buffer b;
      b.id = id;
      b.dtype = p.dtype;
      b.shape = p.shape;
      b.kind = BufferKind::Parameter;
      d.buffers.push_back(b);
      Parameter param;
      param.name = p.name;
      param.dtype = p.dtype;
      param.shape = p.shape;
      param.buffer = id++;
      param.derived = p.derived;
      d.parameters.push_back(param);
    }
    Writer w(d);
    EXPECT_TRUE(
        v4::artifact::testing::addHostCodeObjectFile(w, V4_TEST_HOST_KERNELS));
    std::string path = (dir / file).string();
    v4::Status s = w.writeFile(path);
    EXPECT_TRUE(s.ok()) << s.message();
    return path;
  }

  /// Loads `artifact` with synthetic weights of `seed` on `threads`.
  std::unique_ptr<Model> loadSynthetic(const std::string &artifact,
                                       uint64_t seed, unsigned threads = 1) {
    Model::LoadOptions o;
    o.syntheticSeed = seed;
    o.threads = threads;
    auto m = Model::load(artifact, o);
    EXPECT_TRUE(m) << m.status().message();
    return m ? m.take() : nullptr;
  }

  fs::path dir;
};

/// Every checkpoint tensor's bytes in a loaded model, by name (a stack's
/// members split).
std::map<std::string, std::vector<uint8_t>> tensorsOf(const Model &m) {
  std::map<std::string, std::vector<uint8_t>> out;
  const Artifact &a = m.artifact();
  auto tensors = v4::rt::syntheticTensors(a);
  EXPECT_TRUE(tensors) << tensors.status().message();
  if (!tensors)
    return out;
  for (const v4::rt::SyntheticTensor &t : *tensors) {
    v4::rt::DeviceBuffer b = m.parameter(a.bufferSlot(t.buffer));
    std::vector<uint8_t> bytes(t.bytes);
    v4::Status s = m.device().download(bytes.data(), b, t.offset, t.bytes);
    EXPECT_TRUE(s.ok()) << s.message();
    out[t.name] = std::move(bytes);
  }
  return out;
}

template <typename T> std::vector<T> as(const std::vector<uint8_t> &bytes) {
  std::vector<T> v(bytes.size() / sizeof(T));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(T));
  return v;
}

double stddev(const std::vector<double> &v) {
  double mean = 0, sq = 0;
  for (double x : v)
    mean += x;
  mean /= double(v.size());
  for (double x : v)
    sq += (x - mean) * (x - mean);
  return std::sqrt(sq / double(v.size()));
}

/// Checks an FP8 weight [rows, cols] against its e8m0 scales of blocks
/// [br, bc]: no NaN code or scale, each block's largest code in (224, 448]
/// (the scale is 2^ceil(log2(amax / 448))); the decoded values.
std::vector<double> checkFP8(const std::vector<uint8_t> &codes,
                             const std::vector<uint8_t> &scales, int64_t rows,
                             int64_t cols, int64_t br, int64_t bc) {
  int64_t nbc = (cols + bc - 1) / bc;
  std::map<int64_t, float> blockMax;
  std::vector<double> values;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      uint8_t code = codes[size_t(r * cols + c)];
      EXPECT_FALSE(quant::isNaNE4M3(code)) << r << "," << c;
      int64_t block = (r / br) * nbc + c / bc;
      uint8_t scale = scales[size_t(block)];
      EXPECT_FALSE(quant::isNaNE8M0(scale));
      float v = quant::decodeE4M3(code);
      blockMax[block] = std::max(blockMax[block], std::fabs(v));
      values.push_back(double(v) * quant::decodeE8M0(scale));
    }
  for (auto &[block, amax] : blockMax) {
    EXPECT_GT(amax, 224.0f) << "block " << block;
    EXPECT_LE(amax, 448.0f) << "block " << block;
  }
  return values;
}

TEST_F(SyntheticWeightsTest, EveryDTypeFollowsItsFormat) {
  std::string path = writeArtifact(everyKind());
  auto m = loadSynthetic(path, 5);
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->info().syntheticWeights);
  EXPECT_EQ(m->info().syntheticSeed, 5u);
  EXPECT_EQ(m->info().weightsMapped, 0u);
  EXPECT_EQ(m->info().weightsPrepared, m->artifact().memoryTotals().weights);
  auto t = tensorsOf(*m);
  ASSERT_EQ(t.size(), 2 + everyKind().size() + 2 * 2); // stacks of 3

  // bf16 matrix: finite, N(0, 1/in) with in = 8.
  {
    std::vector<double> v;
    for (uint16_t bits : as<uint16_t>(t["embed.weight"])) {
      EXPECT_FALSE(quant::isNonFiniteBF16(bits));
      v.push_back(quant::decodeBF16(bits));
    }
    EXPECT_NEAR(stddev(v), 1 / std::sqrt(8.0), 0.1);
  }
  // Norm weights about 1; mHC scales in [0.5, 1); biases about 0.
  for (float x : as<float>(t["norm.weight"])) {
    EXPECT_GT(x, 0.6f);
    EXPECT_LT(x, 1.4f);
  }
  for (float x : as<float>(t["layers.0.hc_attn_scale"])) {
    EXPECT_GE(x, 0.5f);
    EXPECT_LT(x, 1.0f);
  }
  for (float x : as<float>(t["layers.0.ffn.gate.bias"]))
    EXPECT_LT(std::fabs(x), 2.0f);

  // FP8 with 128 x 128 blocks: [256, 160] by a [2, 2] scale.
  std::vector<double> wq =
      checkFP8(t["layers.0.attn.wq.weight"], t["layers.0.attn.wq.scale"], 256,
               160, 128, 128);
  EXPECT_NEAR(stddev(wq), 1 / std::sqrt(160.0), 0.1 / std::sqrt(160.0));
  // FP8 Engram table with 1 x 32 blocks.
  checkFP8(t["layers.0.engram.embed.weight"], t["layers.0.engram.embed.scale"],
           10, 64, 1, 32);
  // FP8 alone: scale 1, the codes are the values.
  for (uint8_t code : t["layers.0.attn.lone.weight"]) {
    EXPECT_FALSE(quant::isNaNE4M3(code));
    EXPECT_LT(std::fabs(quant::decodeE4M3(code)), 2.0f);
  }
  // A scale no weight fills: 1.
  for (uint8_t code : t["layers.0.attn.orphan.scale"])
    EXPECT_EQ(code, 127);

  // Packed FP4 experts [16, 64] (i8 [16, 32]) with per-32 scales [16, 2]:
  // each block's largest code in [3, 6], the experts differ.
  std::vector<double> fp4;
  for (int e = 0; e < 3; ++e) {
    std::string p = "layers.0.ffn.experts." + std::to_string(e) + ".w1.";
    const std::vector<uint8_t> &packed = t[p + "weight"];
    const std::vector<uint8_t> &scales = t[p + "scale"];
    ASSERT_EQ(packed.size(), 16u * 32u);
    ASSERT_EQ(scales.size(), 16u * 2u);
    for (int64_t r = 0; r < 16; ++r)
      for (int64_t block = 0; block < 2; ++block) {
        uint8_t scale = scales[size_t(r * 2 + block)];
        EXPECT_FALSE(quant::isNaNE8M0(scale));
        float amax = 0;
        for (int64_t c = block * 32; c < block * 32 + 32; ++c) {
          uint8_t byte = packed[size_t(r * 32 + c / 2)];
          float v = quant::decodeE2M1(c % 2 ? byte >> 4 : byte & 0xF);
          amax = std::max(amax, std::fabs(v));
          fp4.push_back(double(v) * quant::decodeE8M0(scale));
        }
        EXPECT_GE(amax, 3.0f);
        EXPECT_LE(amax, 6.0f);
      }
  }
  EXPECT_NEAR(stddev(fp4), 1 / 8.0, 0.25 / 8.0);
  EXPECT_NE(t["layers.0.ffn.experts.0.w1.weight"],
            t["layers.0.ffn.experts.1.w1.weight"]);

  // tid2eid: k distinct experts below the gate's count in every row (i32:
  // k = experts, so each row is a permutation), not every row alike.
  std::vector<int64_t> i64 = as<int64_t>(t["layers.0.ffn.gate.tid2eid"]);
  std::set<std::vector<int64_t>> rows;
  for (size_t r = 0; r < 32; ++r) {
    std::vector<int64_t> row(i64.begin() + r * 2, i64.begin() + r * 2 + 2);
    for (int64_t e : row) {
      EXPECT_GE(e, 0);
      EXPECT_LT(e, 6);
    }
    EXPECT_NE(row[0], row[1]);
    rows.insert(row);
  }
  EXPECT_GT(rows.size(), 5u);
  std::vector<int32_t> i32 = as<int32_t>(t["layers.1.ffn.gate.tid2eid"]);
  for (size_t r = 0; r < 32; ++r) {
    std::vector<int32_t> row(i32.begin() + r * 5, i32.begin() + r * 5 + 5);
    std::sort(row.begin(), row.end());
    EXPECT_EQ(row, (std::vector<int32_t>{0, 1, 2, 3, 4})) << "row " << r;
  }
  // The token map is the identity; derived multipliers follow their rule
  // (RT-8); stored ones are odd and below 2^63 / V_c; other tables are 0.
  std::vector<int64_t> map = as<int64_t>(t["engram.token_map"]);
  for (size_t i = 0; i < map.size(); ++i)
    EXPECT_EQ(map[i], int64_t(i));
  EXPECT_EQ(as<int64_t>(t["layers.0.engram.multipliers"]),
            v4::numpy::engramMultipliers(kEngramSeed, kBound, 3));
  for (int64_t x : as<int64_t>(t["layers.1.engram.multipliers"])) {
    EXPECT_EQ(x % 2, 1);
    EXPECT_GT(x, 0);
    EXPECT_LT(uint64_t(x), (uint64_t(1) << 63) / 32);
  }
  for (int32_t x : as<int32_t>(t["layers.0.other.index"]))
    EXPECT_EQ(x, 0);
}

TEST_F(SyntheticWeightsTest, BytesDependOnlyOnSeedNameAndIndex) {
  std::string path = writeArtifact(everyKind());
  auto one = loadSynthetic(path, 5, 1);
  auto three = loadSynthetic(path, 5, 3);
  auto other = loadSynthetic(path, 6, 2);
  ASSERT_TRUE(one && three && other);
  auto a = tensorsOf(*one), b = tensorsOf(*three), c = tensorsOf(*other);
  EXPECT_EQ(a, b); // thread count
  // Another seed changes every tensor with random values.
  const std::set<std::string> fixed = {
      "engram.token_map", "layers.0.engram.multipliers",
      "layers.0.attn.orphan.scale", "layers.0.other.index"};
  for (auto &[name, bytes] : a) {
    if (fixed.count(name)) {
      EXPECT_EQ(bytes, c[name]) << name;
    } else if (name.find(".scale") == std::string::npos) {
      EXPECT_NE(bytes, c[name]) << name;
    }
  }
  // A tensor's bytes do not depend on the other parameters: an artifact
  // with only some of them (other buffer ids, another order) agrees.
  std::vector<ParamSpec> some = {
      {"layers.1.ffn.gate.weight", DType::BF16, {5, 8}},
      {"layers.0.attn.wq.scale", DType::F8E8M0, {2, 2}},
      {"layers.0.attn.wq.weight", DType::F8E4M3, {256, 160}},
  };
  auto alone = loadSynthetic(writeArtifact(some, "some.v4a", false), 5, 2);
  ASSERT_TRUE(alone);
  auto d = tensorsOf(*alone);
  ASSERT_EQ(d.size(), 3u);
  for (auto &[name, bytes] : d)
    EXPECT_EQ(bytes, a[name]) << name;
}

/// The recipe's value of element `index` of tensor `name` (logical shape
/// `shape`) for `seed`: what the bytes must encode.
float recipeValue(uint64_t seed, const std::string &name,
                  const std::vector<int64_t> &shape, uint64_t index) {
  namespace recipe = v4::recipe;
  recipe::CounterSource src(recipe::tensorSeed(seed, name), index);
  return recipe::drawValue(recipe::initFor(name, shape.size()),
                           recipe::matrixStd(shape), src);
}

TEST_F(SyntheticWeightsTest, ValuesAreTheRecipeOfSeedNameAndIndex) {
  auto m = loadSynthetic(writeArtifact(everyKind()), 3, 2);
  ASSERT_TRUE(m);
  auto t = tensorsOf(*m);
  // bf16 in several chunks.
  std::vector<uint16_t> head = as<uint16_t>(t["head.weight"]);
  ASSERT_EQ(head.size(), 520u * 256u);
  for (uint64_t i = 0; i < head.size(); i += 97)
    ASSERT_EQ(head[i],
              quant::encodeBF16(recipeValue(3, "head.weight", {520, 256}, i)))
        << i;
  // FP8 in several bands of 128 x 128 blocks: each scale from its block's
  // values, each code the value over its scale.
  const std::vector<uint8_t> &codes = t["layers.0.ffn.big.weight"];
  const std::vector<uint8_t> &scales = t["layers.0.ffn.big.scale"];
  for (int64_t br = 0; br < 8; ++br)
    for (int64_t bc = 0; bc < 2; ++bc) {
      float amax = 0;
      for (int64_t r = br * 128; r < br * 128 + 128; ++r)
        for (int64_t c = bc * 128; c < bc * 128 + 128; ++c)
          amax = std::max(
              amax, std::fabs(recipeValue(3, "layers.0.ffn.big.weight",
                                          {1024, 256}, uint64_t(r * 256 + c))));
      uint8_t scale = quant::e8m0ScaleCode(amax, 448.0f, 1e-4f);
      ASSERT_EQ(scales[size_t(br * 2 + bc)], scale) << br << "," << bc;
      for (int64_t r = br * 128; r < br * 128 + 128; r += 13)
        for (int64_t c = bc * 128; c < bc * 128 + 128; c += 7) {
          float v = recipeValue(3, "layers.0.ffn.big.weight", {1024, 256},
                                uint64_t(r * 256 + c));
          ASSERT_EQ(
              codes[size_t(r * 256 + c)],
              quant::encodeE4M3(float(double(v) / quant::decodeE8M0(scale))))
              << r << "," << c;
        }
    }
  // Packed FP4: expert 2 is a tensor of its own name.
  const std::string w = "layers.0.ffn.experts.2.w1.weight";
  const std::vector<uint8_t> &packed = t[w];
  const std::vector<uint8_t> &fp4Scales = t["layers.0.ffn.experts.2.w1.scale"];
  for (int64_t r = 0; r < 16; ++r)
    for (int64_t b = 0; b < 2; ++b) {
      float amax = 0;
      for (int64_t c = b * 32; c < b * 32 + 32; ++c)
        amax = std::max(
            amax, std::fabs(recipeValue(3, w, {16, 64}, uint64_t(r * 64 + c))));
      uint8_t scale = quant::e8m0ScaleCode(amax, 6.0f, 6.0f * 0x1p-126f);
      ASSERT_EQ(fp4Scales[size_t(r * 2 + b)], scale);
      for (int64_t c = b * 32; c < b * 32 + 32; ++c) {
        float v = recipeValue(3, w, {16, 64}, uint64_t(r * 64 + c));
        uint8_t byte = packed[size_t(r * 32 + c / 2)];
        ASSERT_EQ(
            c % 2 ? byte >> 4 : byte & 0xF,
            quant::encodeE2M1(float(double(v) / quant::decodeE8M0(scale))))
            << r << "," << c;
      }
    }
}

TEST_F(SyntheticWeightsTest, UploadPathWritesTheSameBytes) {
  std::string path = writeArtifact(everyKind());
  auto loaded = Artifact::loadFile(path);
  ASSERT_TRUE(loaded) << loaded.status().message();
  const Artifact &a = *loaded;
  // In place (host memory) and through upload (a device without it).
  std::map<uint32_t, std::vector<uint8_t>> host, uploaded;
  for (const Buffer &b : a.buffers())
    if (b.kind == BufferKind::Parameter) {
      host[b.id].resize(a.bufferBytes(b, a.bounds().maxChunk));
      uploaded[b.id].resize(host[b.id].size(), 0xEE);
    }
  v4::rt::SyntheticSink inPlace, viaUpload;
  inPlace.hostMemory = [&](const v4::rt::SyntheticTensor &t) {
    return host[t.buffer].data() + t.offset;
  };
  size_t uploads = 0;
  viaUpload.hostMemory = [](const v4::rt::SyntheticTensor &) {
    return static_cast<uint8_t *>(nullptr);
  };
  viaUpload.upload = [&](const v4::rt::SyntheticTensor &t,
                         const uint8_t *bytes) {
    ++uploads;
    std::memcpy(uploaded[t.buffer].data() + t.offset, bytes, t.bytes);
    return v4::Status::success();
  };
  v4::rt::ThreadPool pool(2);
  ASSERT_TRUE(v4::rt::generateSyntheticWeights(a, 9, pool, inPlace).ok());
  ASSERT_TRUE(v4::rt::generateSyntheticWeights(a, 9, pool, viaUpload).ok());
  EXPECT_EQ(uploads, 2 + everyKind().size() + 2 * 2);
  EXPECT_EQ(host, uploaded);
  // An upload's failure is the load's.
  viaUpload.upload = [](const v4::rt::SyntheticTensor &t, const uint8_t *) {
    return v4::Status::error(StatusCode::Internal, "RT-7",
                             "upload of " + t.name + " failed");
  };
  v4::Status failed = v4::rt::generateSyntheticWeights(a, 9, pool, viaUpload);
  EXPECT_FALSE(failed.ok());
  EXPECT_NE(failed.message().find("upload of embed.weight failed"),
            std::string::npos)
      << failed.message();
}

TEST_F(SyntheticWeightsTest, WrittenAsACheckpointTheyLoadToTheSameBuffers) {
  std::string path = writeArtifact(everyKind());
  auto m = loadSynthetic(path, 11, 2);
  ASSERT_TRUE(m);
  auto t = tensorsOf(*m);
  auto tensors = v4::rt::syntheticTensors(m->artifact());
  ASSERT_TRUE(tensors);
  std::vector<st::TensorData> data;
  for (const v4::rt::SyntheticTensor &s : *tensors)
    data.push_back({s.name, s.dtype, s.shape, t[s.name].data(), s.bytes});
  std::string ckpt = (dir / "synthetic.safetensors").string();
  ASSERT_TRUE(st::writeFile(ckpt, data).ok());
  Model::LoadOptions o;
  o.checkpoint = ckpt;
  auto fromFile = Model::load(path, o);
  ASSERT_TRUE(fromFile) << fromFile.status().message();
  EXPECT_FALSE((*fromFile)->info().syntheticWeights);
  EXPECT_EQ(tensorsOf(**fromFile), t);
}

/// Loads `artifact` with synthetic weights; the error.
v4::Status syntheticError(const std::string &artifact,
                          const std::string &checkpoint = "") {
  Model::LoadOptions o;
  o.syntheticSeed = 1;
  o.checkpoint = checkpoint;
  auto m = Model::load(artifact, o);
  EXPECT_FALSE(m);
  return m ? v4::Status::success() : m.status();
}

TEST_F(SyntheticWeightsTest, EveryRuleViolationIsAnRT9Error) {
  // A checkpoint as well: refused before the artifact is read.
  v4::Status both = syntheticError((dir / "absent.v4a").string(), "ck");
  EXPECT_EQ(both.code(), StatusCode::InvalidArgument);
  EXPECT_EQ(both.rule(), "RT-9");
  EXPECT_NE(both.message().find("synthetic weights (seed 1) and the "
                                "checkpoint 'ck' were both given"),
            std::string::npos)
      << both.message();

  struct Case {
    std::string what;
    std::vector<ParamSpec> params;
    std::string expected;
  };
  std::vector<Case> cases = {
      {"f16",
       {{"x.weight", DType::F16, {4}}},
       "parameter 'x.weight' (f16 [4]): no synthetic rule for dtype f16"},
      {"scale",
       {{"w.weight", DType::F8E4M3, {256, 160}},
        {"w.scale", DType::F8E8M0, {3, 2}}},
       "scale 'w.scale' [3, 2] does not block parameter 'w.weight' (f8e4m3 "
       "[256, 160])"},
      {"odd fp4",
       {{"w.weight", DType::F4E2M1, {4, 3}}},
       "parameter 'w.weight' (f4e2m1 [4, 3]) is packed FP4 and needs an even "
       "last dimension"},
      {"no gate",
       {{"l.gate.tid2eid", DType::I64, {32, 2}}},
       "parameter 'l.gate.tid2eid' (i64 [32, 2]): no gate weight "
       "'l.gate.weight' gives the expert count"},
      {"k above experts",
       {{"l.gate.weight", DType::BF16, {2, 8}},
        {"l.gate.tid2eid", DType::I64, {32, 3}}},
       "3 distinct experts per row but only 2 experts"},
      {"tid2eid rank",
       {{"l.gate.weight", DType::BF16, {2, 8}},
        {"l.gate.tid2eid", DType::I64, {32}}},
       "is a tid2eid table and must be [vocab, k]"},
  };
  for (const Case &c : cases) {
    v4::Status s = syntheticError(writeArtifact(c.params, "bad.v4a"));
    EXPECT_EQ(s.code(), StatusCode::Incompatible) << c.what;
    EXPECT_EQ(s.rule(), "RT-9") << c.what;
    EXPECT_NE(s.message().find(c.expected), std::string::npos)
        << c.what << ": " << s.message();
    EXPECT_NE(s.message().find("bad.v4a: synthetic weights: "),
              std::string::npos)
        << s.message();
  }
}

/// v4rt_model_load's status code and message.
std::pair<v4rt_status_code_t, std::string>
apiLoad(const std::string &artifact, const v4rt_model_options_t &o,
        v4rt_model_t **model) {
  v4rt_status_t s = v4rt_model_load(artifact.c_str(), &o, model);
  std::pair<v4rt_status_code_t, std::string> r{v4rt_status_code(s),
                                               v4rt_status_message(s)};
  v4rt_status_free(s);
  return r;
}

TEST_F(SyntheticWeightsTest, TheCApiLoadsThemAndSaysSo) {
  std::string path = writeArtifact(everyKind());
  v4rt_model_options_t o;
  v4rt_model_options_initialize(&o);
  EXPECT_EQ(o.synthetic_weights, 0);
  EXPECT_EQ(o.synthetic_seed, 0u);
  o.synthetic_weights = 1;
  o.synthetic_seed = 77;
  o.check_weights = 1; // nothing to scan: ignored
  v4rt_model_t *model = nullptr;
  auto r = apiLoad(path, o, &model);
  ASSERT_EQ(r.first, V4RT_OK) << r.second;
  v4rt_model_info_t info;
  info.struct_size = sizeof info;
  ASSERT_EQ(v4rt_model_info(model, &info), nullptr);
  EXPECT_EQ(info.synthetic_weights, 1);
  EXPECT_EQ(info.synthetic_seed, 77u);
  EXPECT_EQ(info.weights_mapped_bytes, 0);
  EXPECT_EQ(info.weights_prepared_bytes, info.weights_bytes);
  v4rt_session_t *session = nullptr;
  ASSERT_EQ(v4rt_session_create(model, &session), nullptr);
  int64_t ids[2] = {3, 4};
  std::vector<float> logits(2 * 32);
  EXPECT_EQ(v4rt_session_run(session, ids, nullptr, 1, logits.data(),
                             logits.size(), nullptr, 0),
            nullptr);
  v4rt_session_release(session);
  v4rt_model_release(model);

  // An empty checkpoint path is no checkpoint.
  o.checkpoint_path = "";
  model = nullptr;
  r = apiLoad(path, o, &model);
  EXPECT_EQ(r.first, V4RT_OK) << r.second;
  v4rt_model_release(model);
  // Both: the rule.
  o.checkpoint_path = "model.safetensors";
  r = apiLoad(path, o, &model);
  EXPECT_EQ(r.first, V4RT_INVALID_ARGUMENT);
  EXPECT_NE(r.second.find("[RT-9]"), std::string::npos) << r.second;
  EXPECT_EQ(model, nullptr);
  // Not a flag.
  o.checkpoint_path = nullptr;
  o.synthetic_weights = 2;
  r = apiLoad(path, o, &model);
  EXPECT_EQ(r.first, V4RT_INVALID_ARGUMENT);
  EXPECT_NE(r.second.find("synthetic_weights is 2, expected 0 or 1 [ARG]"),
            std::string::npos)
      << r.second;
  // A caller's struct that ends before the fields: a checkpoint is needed.
  o.synthetic_weights = 1;
  o.struct_size = offsetof(v4rt_model_options_t, synthetic_weights);
  r = apiLoad(path, o, &model);
  EXPECT_EQ(r.first, V4RT_INVALID_ARGUMENT);
  EXPECT_NE(r.second.find("checkpoint_path is required"), std::string::npos)
      << r.second;
  // Loaded from a checkpoint, the info says so.
  std::vector<uint8_t> embed(32 * 8 * 2, 0), norm(8 * 4, 0);
  std::string ckpt = (dir / "tiny.safetensors").string();
  ASSERT_TRUE(
      st::writeFile(
          ckpt,
          {{"embed.weight", DType::BF16, {32, 8}, embed.data(), embed.size()},
           {"norm.weight", DType::F32, {8}, norm.data(), norm.size()}})
          .ok());
  v4rt_model_options_initialize(&o);
  o.checkpoint_path = ckpt.c_str();
  r = apiLoad(writeArtifact({}, "tiny.v4a"), o, &model);
  ASSERT_EQ(r.first, V4RT_OK) << r.second;
  info.struct_size = sizeof info;
  ASSERT_EQ(v4rt_model_info(model, &info), nullptr);
  EXPECT_EQ(info.synthetic_weights, 0);
  EXPECT_EQ(info.synthetic_seed, 0u);
  v4rt_model_release(model);
}

} // namespace
