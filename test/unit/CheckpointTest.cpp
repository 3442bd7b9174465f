//===- CheckpointTest.cpp - manifest, check, generator, quantisers --------===//
#include "frontend/Checkpoint.h"
#include "frontend/ModelImporter.h"
#include "runtime/numerics/Numerics.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <set>

#ifndef V4_SOURCE_DIR
#error "V4_SOURCE_DIR must point at the repository root"
#endif

using namespace v4;
namespace st = ::v4::safetensors;

namespace {

std::string exampleModel() {
  return std::string(V4_SOURCE_DIR) + "/models/example/tiny-v4-model.mlir";
}

/// Unique temporary directories, removed when the test program ends.
class TempDirs : public ::testing::Environment {
public:
  void TearDown() override {
    for (const auto &dir : dirs)
      (void)llvm::sys::fs::remove_directories(dir);
  }
  std::vector<std::string> dirs;
};
TempDirs *tempDirs =
    static_cast<TempDirs *>(::testing::AddGlobalTestEnvironment(new TempDirs));

std::string tempDir(const char *prefix) {
  llvm::SmallString<128> dir;
  EXPECT_FALSE(llvm::sys::fs::createUniqueDirectory(prefix, dir));
  tempDirs->dirs.push_back(dir.str().str());
  return dir.str().str();
}

std::string readAll(const std::string &path) {
  auto buf = llvm::MemoryBuffer::getFile(path);
  EXPECT_TRUE(bool(buf)) << path;
  return buf ? (*buf)->getBuffer().str() : std::string();
}

std::string errorText(llvm::Error err) {
  return llvm::toString(std::move(err));
}

class CheckpointTest : public ::testing::Test {
protected:
  void SetUp() override {
    module = loadModel(context, exampleModel(), ImportOptions());
    ASSERT_TRUE(module);
  }
  mlir::MLIRContext context;
  mlir::OwningOpRef<mlir::ModuleOp> module;
};

//===----------------------------------------------------------------------===//
// Quantisers
//===----------------------------------------------------------------------===//

TEST(Quant, E8M0ScaleRule) {
  using quant::e8m0ScaleCode;
  // FP8: 2^ceil(log2(amax / 448)); exact powers of two stay.
  EXPECT_EQ(e8m0ScaleCode(448.0f, 448.0f, 1e-4f), 127);
  EXPECT_EQ(e8m0ScaleCode(448.5f, 448.0f, 1e-4f), 128);
  EXPECT_EQ(e8m0ScaleCode(224.0f, 448.0f, 1e-4f), 126);
  EXPECT_EQ(e8m0ScaleCode(225.0f, 448.0f, 1e-4f), 127);
  EXPECT_EQ(e8m0ScaleCode(896.0f, 448.0f, 1e-4f), 128);
  // All-zero block: amax raised to 1e-4 -> 2^-22.
  EXPECT_EQ(e8m0ScaleCode(0.0f, 448.0f, 1e-4f), 127 - 22);
  // FP4: 2^ceil(log2(amax / 6)).
  EXPECT_EQ(e8m0ScaleCode(6.0f, 6.0f, 6.0f * 0x1p-126f), 127);
  EXPECT_EQ(e8m0ScaleCode(6.01f, 6.0f, 6.0f * 0x1p-126f), 128);
  EXPECT_EQ(e8m0ScaleCode(3.0f, 6.0f, 6.0f * 0x1p-126f), 126);
  EXPECT_EQ(e8m0ScaleCode(0.0f, 6.0f, 6.0f * 0x1p-126f), 1);
  EXPECT_EQ(quant::decodeE8M0(127), 1.0);
  EXPECT_EQ(quant::decodeE8M0(120), 0x1p-7);
}

TEST(Quant, E4M3RoundToNearestEven) {
  using quant::encodeE4M3;
  EXPECT_EQ(encodeE4M3(1.0f), 0x38);
  EXPECT_EQ(encodeE4M3(-1.0f), 0xB8);
  EXPECT_EQ(encodeE4M3(1.0625f), 0x38); // midpoint 1 | 1.125 -> even 1
  EXPECT_EQ(encodeE4M3(1.1875f), 0x3A); // midpoint 1.125 | 1.25 -> 1.25
  EXPECT_EQ(encodeE4M3(1.07f), 0x39);   // above the midpoint
  EXPECT_EQ(encodeE4M3(448.0f), 0x7E);
  EXPECT_EQ(encodeE4M3(464.0f), 0x7E); // saturates, never NaN
  EXPECT_EQ(encodeE4M3(1e9f), 0x7E);
  EXPECT_EQ(encodeE4M3(0x1p-9f), 0x01);      // smallest subnormal
  EXPECT_EQ(encodeE4M3(0x1p-10f), 0x00);     // midpoint 0 | 2^-9 -> 0
  EXPECT_EQ(encodeE4M3(3 * 0x1p-10f), 0x02); // midpoint 2^-9 | 2^-8 -> 2^-8
  // Every finite code round-trips.
  for (unsigned c = 0; c < 256; ++c) {
    if ((c & 0x7F) == 0x7F)
      continue; // NaN
    float v = quant::decodeE4M3(uint8_t(c));
    EXPECT_EQ(encodeE4M3(v), c) << c;
  }
  EXPECT_EQ(quant::decodeE4M3(0x7E), 448.0f);
}

TEST(Quant, E2M1RoundToNearestEven) {
  using quant::encodeE2M1;
  EXPECT_EQ(encodeE2M1(0.25f), 0); // 0 | 0.5 -> 0
  EXPECT_EQ(encodeE2M1(0.75f), 2); // 0.5 | 1 -> 1
  EXPECT_EQ(encodeE2M1(1.25f), 2); // 1 | 1.5 -> 1
  EXPECT_EQ(encodeE2M1(1.75f), 4); // 1.5 | 2 -> 2
  EXPECT_EQ(encodeE2M1(2.5f), 4);  // 2 | 3 -> 2
  EXPECT_EQ(encodeE2M1(3.5f), 6);  // 3 | 4 -> 4
  EXPECT_EQ(encodeE2M1(5.0f), 6);  // 4 | 6 -> 4
  EXPECT_EQ(encodeE2M1(5.1f), 7);
  EXPECT_EQ(encodeE2M1(100.0f), 7); // saturates
  EXPECT_EQ(encodeE2M1(-3.0f), 0xD);
  for (unsigned c = 0; c < 16; ++c) // -0 (code 8) included
    EXPECT_EQ(encodeE2M1(quant::decodeE2M1(uint8_t(c))), c);
}

TEST(Quant, SubnormalCodesAreTheNearestGridPoints) {
  // Below the formats' smallest normal (e4m3 2^-6, e2m1 1) the encoders
  // round the scaled value to an integer by adding and taking away 2^23;
  // the codes are the nearest grid points (ties to the even code) of the
  // search detail::nearestCode: one in every 4099 floats below, and each
  // midpoint and its neighbours.
  float e2m1Grid[8];
  for (unsigned c = 0; c < 8; ++c)
    e2m1Grid[c] = quant::decodeE2M1(uint8_t(c));
  const float *e4m3Grid = quant::detail::e4m3Grid().v;
  auto check = [](float a, unsigned got, unsigned want) {
    EXPECT_EQ(got, want) << "value " << a;
  };
  auto floatOf = [](uint32_t bits) {
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  };
  auto bitsOf = [](float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    return bits;
  };
  for (uint32_t b = 0; b < bitsOf(1.0f); b += 4099) {
    float a = floatOf(b);
    check(a, quant::encodeE2M1(a), quant::detail::nearestCode(e2m1Grid, 8, a));
  }
  for (uint32_t b = 0; b < bitsOf(0x1p-6f); b += 4099) {
    float a = floatOf(b);
    check(a, quant::encodeE4M3(a),
          quant::detail::nearestCode(e4m3Grid, 127, a));
  }
  for (float mid : {0.25f, 0.75f})
    for (float a : {std::nextafter(mid, 0.0f), mid, std::nextafter(mid, 1.0f)})
      check(a, quant::encodeE2M1(a),
            quant::detail::nearestCode(e2m1Grid, 8, a));
  for (int i = 0; i < 8; ++i) {
    float mid = (2 * i + 1) * 0x1p-10f;
    for (float a : {std::nextafter(mid, 0.0f), mid, std::nextafter(mid, 1.0f)})
      check(a, quant::encodeE4M3(a),
            quant::detail::nearestCode(e4m3Grid, 127, a));
  }
}

TEST(Quant, BF16RoundToNearestEven) {
  EXPECT_EQ(quant::encodeBF16(1.0f), 0x3F80);
  EXPECT_EQ(quant::encodeBF16(1.0f + 0x1p-8f), 0x3F80);     // tie -> even
  EXPECT_EQ(quant::encodeBF16(1.0f + 3 * 0x1p-8f), 0x3F82); // tie -> even
  EXPECT_EQ(quant::encodeBF16(1.0f + 0x1p-8f + 0x1p-20f), 0x3F81);
  EXPECT_EQ(quant::decodeBF16(0xBF80), -1.0f);
}

TEST(Quant, FP8BlockScales) {
  // Two 1x2 blocks: row 0 amax 896 -> scale 2; row 1 amax 0.5 -> 2^-9.
  const float w[4] = {896.0f, 1.0f, 0.5f, 0.25f};
  uint8_t q[4], s[2];
  quant::quantizeFP8(w, 2, 2, 1, 2, q, s);
  EXPECT_EQ(s[0], 128);
  EXPECT_EQ(s[1], 127 - 9);
  EXPECT_EQ(q[0], 0x7E);                      // 448
  EXPECT_EQ(quant::decodeE4M3(q[1]), 0.5f);   // 1 / 2
  EXPECT_EQ(quant::decodeE4M3(q[2]), 256.0f); // 0.5 / 2^-9
  EXPECT_EQ(quant::decodeE4M3(q[3]), 128.0f);
}

TEST(Quant, FP4NibbleOrderAndScales) {
  // One row of 64 = two per-32 blocks. Block 0 amax 6 (scale 1), block 1
  // amax 12 (scale 2).
  std::vector<float> w(64, 0.0f);
  w[0] = 1.0f;   // code 2, low nibble of byte 0
  w[1] = 2.0f;   // code 4, high nibble of byte 0
  w[2] = 0.5f;   // code 1
  w[3] = -6.0f;  // code 0xF
  w[32] = 12.0f; // 6 * 2 -> code 7
  w[33] = 1.0f;  // 0.5 * 2 -> code 1
  uint8_t packed[32], s[2];
  quant::quantizeFP4(w.data(), 1, 64, 1, 32, packed, s);
  EXPECT_EQ(s[0], 127);
  EXPECT_EQ(s[1], 128);
  EXPECT_EQ(packed[0], 0x42);
  EXPECT_EQ(packed[1], 0xF1);
  EXPECT_EQ(packed[2], 0x00);
  EXPECT_EQ(packed[16], 0x17);
}

//===----------------------------------------------------------------------===//
// Manifest
//===----------------------------------------------------------------------===//

const st::ManifestEntry *findEntry(const std::vector<st::ManifestEntry> &m,
                                   const std::string &name) {
  for (auto &e : m)
    if (e.name == name)
      return &e;
  return nullptr;
}

TEST_F(CheckpointTest, ManifestOfExampleModel) {
  auto manifest = collectManifest(*module);
  ASSERT_TRUE(bool(manifest)) << errorText(manifest.takeError());
  // test/models/tiny-v4-model.test counts 436 parameter tensors by hand.
  EXPECT_EQ(manifest->size(), 436u);
  struct Want {
    const char *name;
    st::DType dtype;
    std::vector<int64_t> shape;
  } wants[] = {
      {"embed.weight", st::DType::BF16, {97, 64}},
      {"layers.0.ffn.gate.tid2eid", st::DType::I64, {97, 2}},
      {"layers.0.attn.wq_b.weight", st::DType::F8E4M3, {288, 32}},
      {"layers.0.attn.wq_b.scale", st::DType::F8E8M0, {3, 1}},
      {"layers.0.hc_attn_fn", st::DType::F32, {24, 256}},
      // Packed FP4: K halved.
      {"layers.0.ffn.experts.0.w1.weight", st::DType::I8, {32, 32}},
      {"layers.0.ffn.experts.5.w2.weight", st::DType::I8, {64, 16}},
      {"layers.0.ffn.experts.5.w1.scale", st::DType::F8E8M0, {32, 2}},
  };
  for (auto &want : wants) {
    const st::ManifestEntry *e = findEntry(*manifest, want.name);
    ASSERT_NE(e, nullptr) << want.name;
    EXPECT_EQ(e->dtype, want.dtype) << want.name;
    EXPECT_EQ(e->shape, want.shape) << want.name;
  }
  EXPECT_EQ(findEntry(*manifest, "layers.0.ffn.experts.6.w1.weight"), nullptr);
}

TEST(CheckpointManifest, ConflictingUsesAreRejected) {
  mlir::MLIRContext context;
  const char *src = R"mlir(
    func.func @f() -> (tensor<4xf32>, tensor<4xbf16>) {
      %a = v4.parameter "x" : tensor<4xf32>
      %b = v4.parameter "x" : tensor<4xbf16>
      return %a, %b : tensor<4xf32>, tensor<4xbf16>
    }
  )mlir";
  std::string path = tempDir("v4-ckpt-conflict") + "/m.mlir";
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(path, ec);
    ASSERT_FALSE(ec);
    os << src;
  }
  auto module = loadModel(context, path, ImportOptions());
  ASSERT_TRUE(module);
  auto manifest = collectManifest(*module);
  ASSERT_FALSE(bool(manifest));
  std::string text = errorText(manifest.takeError());
  EXPECT_NE(text.find("conflicting uses"), std::string::npos) << text;
  EXPECT_NE(text.find("'x'"), std::string::npos) << text;
}

//===----------------------------------------------------------------------===//
// Generate and check
//===----------------------------------------------------------------------===//

TEST_F(CheckpointTest, GenerateThenCheckPasses) {
  std::string dir = tempDir("v4-ckpt-gen");
  ASSERT_FALSE(bool(generateCheckpoint(*module, 7, dir, 0)));
  EXPECT_TRUE(llvm::sys::fs::exists(dir + "/model.safetensors"));
  llvm::Error err = checkCheckpoint(*module, dir);
  EXPECT_FALSE(bool(err)) << errorText(std::move(err));
  // The single file works as a path too.
  err = checkCheckpoint(*module, dir + "/model.safetensors");
  EXPECT_FALSE(bool(err)) << errorText(std::move(err));
}

TEST_F(CheckpointTest, ShardedGenerateThenCheckPasses) {
  std::string dir = tempDir("v4-ckpt-shard");
  ASSERT_FALSE(bool(generateCheckpoint(*module, 7, dir, 200000)));
  EXPECT_TRUE(llvm::sys::fs::exists(dir + "/" + st::kIndexFileName));
  EXPECT_FALSE(llvm::sys::fs::exists(dir + "/model.safetensors"));
  llvm::Error err = checkCheckpoint(*module, dir);
  EXPECT_FALSE(bool(err)) << errorText(std::move(err));
  auto reader = st::Reader::open(dir);
  ASSERT_TRUE(reader.ok());
  EXPECT_GT(reader->shards().size(), 1u);
  EXPECT_EQ(reader->tensors().size(), 436u);
}

TEST_F(CheckpointTest, SameSeedSameBytesOtherSeedOtherBytes) {
  std::string a = tempDir("v4-ckpt-a"), b = tempDir("v4-ckpt-b"),
              c = tempDir("v4-ckpt-c");
  ASSERT_FALSE(bool(generateCheckpoint(*module, 42, a, 0)));
  ASSERT_FALSE(bool(generateCheckpoint(*module, 42, b, 0)));
  ASSERT_FALSE(bool(generateCheckpoint(*module, 43, c, 0)));
  std::string fa = readAll(a + "/model.safetensors");
  std::string fb = readAll(b + "/model.safetensors");
  std::string fc = readAll(c + "/model.safetensors");
  EXPECT_FALSE(fa.empty());
  EXPECT_EQ(fa, fb);
  EXPECT_NE(fa, fc);
  EXPECT_EQ(fa.size(), fc.size()) << "only the seed metadata and data differ";
}

/// Rewrites `dir`'s checkpoint into `out` with `edit` applied to the list.
void rewrite(const std::string &dir, const std::string &out,
             const std::function<void(std::vector<st::TensorData> &)> &edit) {
  auto reader = st::Reader::open(dir);
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  std::vector<st::TensorData> tensors;
  for (const auto &t : reader->tensors()) {
    auto span = reader->data(t.name);
    ASSERT_TRUE(span.ok());
    tensors.push_back({t.name, t.dtype, t.shape, span->data, span->size});
  }
  edit(tensors);
  st::Status s = st::writeFile(out + "/model.safetensors", tensors);
  ASSERT_TRUE(s.ok()) << s.message();
}

TEST_F(CheckpointTest, CheckListsEveryMismatchAtOnce) {
  std::string dir = tempDir("v4-ckpt-src"), bad = tempDir("v4-ckpt-bad");
  ASSERT_FALSE(bool(generateCheckpoint(*module, 1, dir, 0)));
  rewrite(dir, bad, [](std::vector<st::TensorData> &ts) {
    std::vector<st::TensorData> kept;
    for (auto &t : ts) {
      if (t.name == "layers.2.ffn.gate.bias")
        continue; // missing
      if (t.name == "embed.weight")
        t.shape = {64, 97}; // wrong shape, same bytes
      if (t.name == "layers.0.attn.attn_sink")
        t.dtype = st::DType::I32; // wrong dtype, same bytes
      kept.push_back(t);
    }
    ts = kept;
  });
  llvm::Error err = checkCheckpoint(*module, bad);
  ASSERT_TRUE(bool(err));
  std::vector<st::ManifestMismatch> mismatches;
  std::string message;
  llvm::handleAllErrors(std::move(err), [&](const CheckpointError &e) {
    EXPECT_EQ(e.kind, CheckpointError::Rejected);
    mismatches = e.mismatches;
    message = e.message;
  });
  ASSERT_EQ(mismatches.size(), 3u) << message;
  EXPECT_NE(message.find("missing: layers.2.ffn.gate.bias"), std::string::npos)
      << message;
  EXPECT_NE(message.find("wrong shape: embed.weight: expected [97, 64]"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("wrong dtype: layers.0.attn.attn_sink: expected F32"),
            std::string::npos)
      << message;
}

TEST_F(CheckpointTest, UnexpectedTensorIsListed) {
  std::string dir = tempDir("v4-ckpt-src2"), bad = tempDir("v4-ckpt-extra");
  ASSERT_FALSE(bool(generateCheckpoint(*module, 1, dir, 0)));
  static const float extra[2] = {1, 2};
  rewrite(dir, bad, [](std::vector<st::TensorData> &ts) {
    ts.push_back({"extra.weight", st::DType::F32, {2}, extra, sizeof(extra)});
  });
  std::string text = errorText(checkCheckpoint(*module, bad));
  EXPECT_NE(text.find("unexpected: extra.weight"), std::string::npos) << text;
}

TEST_F(CheckpointTest, MissingCheckpointIsIOError) {
  llvm::Error err = checkCheckpoint(*module, "/nonexistent/v4/ckpt");
  ASSERT_TRUE(bool(err));
  llvm::handleAllErrors(std::move(err), [&](const CheckpointError &e) {
    EXPECT_EQ(e.kind, CheckpointError::IO) << e.message;
  });
}

TEST_F(CheckpointTest, ValuesAreFiniteAndTablesValid) {
  std::string dir = tempDir("v4-ckpt-values");
  ASSERT_FALSE(bool(generateCheckpoint(*module, 3, dir, 0)));
  auto reader = st::Reader::open(dir);
  ASSERT_TRUE(reader.ok());
  int tid2eidTables = 0;
  for (const auto &t : reader->tensors()) {
    auto span = reader->data(t.name);
    ASSERT_TRUE(span.ok());
    const uint8_t *p = span->data;
    size_t n = t.numElements;
    auto finite = [&](double v) { ASSERT_TRUE(std::isfinite(v)) << t.name; };
    llvm::StringRef name(t.name);
    switch (t.dtype) {
    case st::DType::F32:
      for (size_t i = 0; i < n; ++i) {
        float v;
        std::memcpy(&v, p + 4 * i, 4);
        finite(v);
        if (name.ends_with("_scale")) { // mHC scales U(0.5, 1)
          EXPECT_TRUE(v >= 0.5f && v <= 1.0f) << t.name;
        }
      }
      break;
    case st::DType::BF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t b;
        std::memcpy(&b, p + 2 * i, 2);
        finite(quant::decodeBF16(b));
      }
      break;
    case st::DType::F8E4M3:
      for (size_t i = 0; i < n; ++i)
        ASSERT_NE(p[i] & 0x7F, 0x7F) << t.name << " has NaN";
      break;
    case st::DType::F8E8M0:
      for (size_t i = 0; i < n; ++i)
        ASSERT_NE(p[i], 0xFF) << t.name << " has NaN";
      break;
    case st::DType::I8: // packed FP4: every nibble is a finite e2m1 code
      for (size_t i = 0; i < t.byteSize(); ++i) {
        finite(quant::decodeE2M1(p[i] & 0xF));
        finite(quant::decodeE2M1(p[i] >> 4));
      }
      break;
    case st::DType::I64:
      if (name.ends_with("tid2eid")) {
        ++tid2eidTables;
        ASSERT_EQ(t.shape.size(), 2u);
        int64_t k = t.shape[1];
        std::vector<int64_t> ids(n);
        std::memcpy(ids.data(), p, 8 * n);
        for (int64_t row = 0; row < t.shape[0]; ++row) {
          std::set<int64_t> seen(ids.begin() + row * k,
                                 ids.begin() + (row + 1) * k);
          EXPECT_EQ(int64_t(seen.size()), k) << "row " << row;
          EXPECT_GE(*seen.begin(), 0);
          EXPECT_LT(*seen.rbegin(), 6);
        }
      }
      break;
    default:
      ADD_FAILURE() << "unexpected dtype for " << t.name;
    }
  }
  EXPECT_EQ(tid2eidTables, 2);
}

TEST(CheckpointGenerate, EngramIntegerTables) {
  mlir::MLIRContext context;
  const char *src = R"mlir(
    func.func @f() -> (tensor<90xi64>, tensor<3xi64>, tensor<40x32xf8E4M3FN>,
                       tensor<40x1xf8E8M0FNU>) {
      %m = v4.parameter "engram.token_map" : tensor<90xi64>
      %k = v4.parameter "layers.1.engram.multipliers" : tensor<3xi64>
      %t = v4.parameter "layers.1.engram.embed.weight" : tensor<40x32xf8E4M3FN>
      %s = v4.parameter "layers.1.engram.embed.scale" : tensor<40x1xf8E8M0FNU>
      return %m, %k, %t, %s : tensor<90xi64>, tensor<3xi64>,
          tensor<40x32xf8E4M3FN>, tensor<40x1xf8E8M0FNU>
    }
  )mlir";
  std::string dir = tempDir("v4-ckpt-engram");
  std::string path = dir + "/m.mlir";
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(path, ec);
    ASSERT_FALSE(ec);
    os << src;
  }
  auto module = loadModel(context, path, ImportOptions());
  ASSERT_TRUE(module);
  std::string out = dir + "/ckpt";
  llvm::Error err = generateCheckpoint(*module, 5, out, 0);
  ASSERT_FALSE(bool(err)) << errorText(std::move(err));
  auto reader = st::Reader::open(out);
  ASSERT_TRUE(reader.ok());
  std::vector<int64_t> map(90), mult(3);
  ASSERT_TRUE(reader->copyTensor("engram.token_map", map.data(), 90 * 8).ok());
  ASSERT_TRUE(
      reader->copyTensor("layers.1.engram.multipliers", mult.data(), 24).ok());
  for (int64_t i = 0; i < 90; ++i)
    EXPECT_EQ(map[i], i);
  for (int64_t m : mult) {
    EXPECT_GT(m, 0);
    EXPECT_EQ(m % 2, 1);
    EXPECT_LT(uint64_t(m), (uint64_t(1) << 63) / 90);
  }
  // Per-row scales of the table (block 1 x 32): each row's amax decides.
  auto scales = reader->data("layers.1.engram.embed.scale");
  ASSERT_TRUE(scales.ok());
  std::set<uint8_t> distinct(scales->data, scales->data + scales->size);
  EXPECT_GT(distinct.size(), 1u);
}

} // namespace

namespace {

// V4-SPEC 8.4: the Engram multipliers and primes follow from the config; a
// checkpoint may leave them out (the DeepSeek-V4.1 layout) or carry copies,
// which must equal the computed values (numpy default_rng, checked bit for
// bit in test/runtime/NumpyRandomTest.cpp).
TEST(CheckpointCheck, EngramCopiesAreOptionalButChecked) {
  mlir::MLIRContext context;
  auto module = loadModel(context,
                          std::string(V4_SOURCE_DIR) +
                              "/models/tiny-v4-engram.config.json",
                          ImportOptions());
  ASSERT_TRUE(module);
  std::string dir = tempDir("v4-ckpt-engram-copies");
  std::string all = dir + "/all", none = dir + "/none";
  ASSERT_FALSE(
      bool(generateCheckpoint(*module, 9, all, 0, DerivedCopies::All)));
  ASSERT_FALSE(
      bool(generateCheckpoint(*module, 9, none, 0, DerivedCopies::None)));
  EXPECT_FALSE(bool(checkCheckpoint(*module, all)));
  EXPECT_FALSE(bool(checkCheckpoint(*module, none)));
  {
    auto reader = st::Reader::open(all);
    ASSERT_TRUE(reader.ok());
    std::vector<int64_t> mult(3), primes(4);
    ASSERT_TRUE(
        reader->copyTensor("layers.1.engram.multipliers", mult.data(), 24)
            .ok());
    ASSERT_TRUE(
        reader->copyTensor("layers.1.engram.primes", primes.data(), 32).ok());
    // numpy: 2 * default_rng(10007).integers(0, B(90), 3) + 1.
    EXPECT_EQ(mult, (std::vector<int64_t>{84373640682384813, 5328811131540259,
                                          39592398327432931}));
    EXPECT_EQ(primes, (std::vector<int64_t>{41, 43, 47, 53}));
    auto noCopies = st::Reader::open(none);
    ASSERT_TRUE(noCopies.ok());
    EXPECT_EQ(noCopies->find("layers.1.engram.multipliers"), nullptr);
    EXPECT_EQ(noCopies->tensors().size() + 4, reader->tensors().size());
  }
  // A wrong copy is named with its rule.
  uint64_t offset = 0;
  {
    auto reader = st::Reader::open(all);
    ASSERT_TRUE(reader.ok());
    offset = reader->find("layers.3.engram.multipliers")->fileOffset;
  }
  {
    std::fstream f(all + "/model.safetensors",
                   std::ios::in | std::ios::out | std::ios::binary);
    int64_t v = 0;
    f.seekg(std::streamoff(offset));
    f.read(reinterpret_cast<char *>(&v), sizeof v);
    v += 2;
    f.seekp(std::streamoff(offset));
    f.write(reinterpret_cast<const char *>(&v), sizeof v);
  }
  std::string text = errorText(checkCheckpoint(*module, all));
  EXPECT_NE(text.find("wrong value: layers.3.engram.multipliers element 0"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("Engram multiplier rule (V4-SPEC 8.4"), std::string::npos)
      << text;
  EXPECT_NE(text.find("default_rng(30021)"), std::string::npos) << text;
}

} // namespace
