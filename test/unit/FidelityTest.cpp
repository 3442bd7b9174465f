//===- FidelityTest.cpp - fp32 numerics against the double reference ------===//
//
// Issue 9, "Done when": compiled with --numerics=fp32 --fake-quant=none, the
// logits equal the double reference to a normwise row error <= 1e-5 at
// every position, over prefill and 32 decode steps through blocks of both
// compression kinds, on T1, on Engram and on five variants that each change
// one thing (hc_mult 2; sliding_window 16 with ratio 16; top-3 of 8 experts
// with index_topk 2; o_groups 4; num_hash_layers 0). With fake-quant on,
// fp32 decode equals fresh prefill within V4-SPEC 2.6's spread. The check
// itself is v4-check's (tools/v4-check/FidelityCheck.h).
//
//===----------------------------------------------------------------------===//
#include "dialects/V4/V4Numerics.h"
#include "frontend/Checkpoint.h"
#include "frontend/ModelImporter.h"
#include "lowering/Pipelines.h"
#include "lowering/Target/TargetBackend.h"
#include "runtime/base/HostISA.h"
#include "tools/v4-check/FidelityCheck.h"

#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <functional>

namespace {

struct Case {
  const char *name;
  const char *base; // models/<base>
  std::function<void(llvm::json::Object &)> change;
  v4::NumericsMode numerics = v4::NumericsMode::FP32;
  v4::FakeQuantMode fakeQuant = v4::FakeQuantMode::None;
  v4::SumOrder sumOrder = v4::SumOrder::Reference;
  /// Sequences per call (the fast order changes one-row GEMVs only).
  int64_t batch = 2;
  /// The kernels' x86-64 level (v4c --cpu; null: the default).
  const char *cpu = nullptr;
  /// v4-gen-checkpoint's seed.
  uint64_t seed = 99;
  /// v4c --max-context.
  int64_t maxContext = 64;
};

void PrintTo(const Case &c, std::ostream *os) { *os << c.name; }

/// Writes the (changed) config to DIR/config.json, compiles it in the
/// case's numerics and generates a checkpoint beside it.
void build(const Case &c, const std::string &dir, std::string &artifact) {
  std::string base = std::string(V4_SOURCE_DIR) + "/models/" + c.base;
  auto buffer = llvm::MemoryBuffer::getFile(base);
  ASSERT_TRUE(static_cast<bool>(buffer));
  auto json = llvm::json::parse((*buffer)->getBuffer());
  ASSERT_TRUE(static_cast<bool>(json));
  if (c.change)
    c.change(*json->getAsObject());
  std::string config = dir + "/config.json";
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(config, ec);
    ASSERT_FALSE(ec);
    os << llvm::formatv("{0:2}", *json);
  }
  mlir::MLIRContext ctx;
  v4::ImportOptions opts;
  opts.batch = c.batch;
  opts.maxContext = c.maxContext;
  opts.allLogits = true;
  auto module = v4::loadModel(ctx, config, opts);
  ASSERT_TRUE(module);
  mlir::v4::setModuleNumerics(*module, {c.numerics, c.fakeQuant, c.sumOrder});
  if (c.cpu)
    (*module)->setAttr(mlir::v4::kHostISAAttrName,
                       mlir::StringAttr::get(&ctx, c.cpu));
  ASSERT_FALSE(
      static_cast<bool>(v4::generateCheckpoint(*module, c.seed, dir, 0)));
  std::string bytes;
  ASSERT_TRUE(succeeded(mlir::v4::compileToArtifact(
      *module, mlir::v4::V4PipelineOptions(), bytes)));
  artifact = dir + "/model.v4a";
  std::error_code ec;
  llvm::raw_fd_ostream os(artifact, ec);
  ASSERT_FALSE(ec);
  os << bytes;
}

/// v4-check's options for the artifact and checkpoint build() made in dir.
v4::check::Options checkOptions(const std::string &dir,
                                const std::string &artifact) {
  v4::check::Options o;
  o.artifact = artifact;
  o.checkpoint = dir;
  o.config = dir + "/config.json";
  return o;
}

class Fidelity : public ::testing::TestWithParam<Case> {};

TEST_P(Fidelity, CompiledLogitsMatchTheReferenceInTheirNumerics) {
  const Case &c = GetParam();
  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("v4-fidelity", dir));
  std::string artifact;
  ASSERT_NO_FATAL_FAILURE(build(c, std::string(dir), artifact));

  v4::check::Options o = checkOptions(std::string(dir), artifact);
  o.prompt = {3, 17, 5, 29, 11, 42, 7, 63, 13, 2, 31, 19, 23, 8, 50, 37};
  o.decode = 32; // 48 tokens: whole blocks of every ratio up to 16
  o.chunk = 5;
  auto report = v4::check::run(o);
  ASSERT_TRUE(static_cast<bool>(report)) << toString(report.takeError());
  for (const auto &r : report->runs)
    std::printf("[ fidelity ] %s %s/%s: %s: %lld rows, max %.3g, mean %.3g, "
                "top-1 %lld/%lld\n",
                c.name, v4::numericsModeName(report->numerics),
                v4::fakeQuantModeName(report->fakeQuant), r.name.c_str(),
                (long long)r.rows, r.maxError, r.meanError,
                (long long)r.top1Agree, (long long)r.rows);
  std::printf("[ fidelity ] %s: decode == prefill %.3g\n", c.name,
              report->replayError);
  EXPECT_TRUE(report->passed);
  for (const auto &r : report->runs) {
    EXPECT_LE(r.maxError, report->tolerance.maxRowError) << r.name;
    EXPECT_EQ(r.rows,
              c.batch * (r.name.rfind("prefill", 0) == 0 ? 16 * 2 : 48 * 2))
        << "every position of every sequence, main and MTP";
  }
  // The reassociated one-row sums are taken: the decode rows are not the
  // reference's bits.
  if (c.sumOrder == v4::SumOrder::Fast) {
    EXPECT_GT(report->runs.back().maxError, 0.0);
  }
  if (c.numerics == v4::NumericsMode::FP32 &&
      c.fakeQuant == v4::FakeQuantMode::None) {
    EXPECT_EQ(report->tolerance.maxRowError, 1e-5);
  }
  EXPECT_LE(report->replayError, report->tolerance.maxRowError);
  llvm::sys::fs::remove_directories(dir);
}

/// v4-check on a 40-token prompt: a one-call prefill, a chunked one of
/// 20-token chunks and 8 decode steps, every logit row within the case's
/// tolerance of the reference. `replay`: the compiled chunked rows also
/// within it of the compiled one-call rows (v4-check's decode == prefill).
void checkChunkedPrompt(const Case &c, bool replay = true) {
  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("v4-fidelity", dir));
  std::string artifact;
  ASSERT_NO_FATAL_FAILURE(build(c, std::string(dir), artifact));
  v4::check::Options o = checkOptions(std::string(dir), artifact);
  for (int64_t i = 0; i < 40; ++i)
    o.prompt.push_back(2 + (i * 37) % 61);
  o.decode = 8;
  o.chunk = 20;
  auto report = v4::check::run(o);
  ASSERT_TRUE(static_cast<bool>(report)) << toString(report.takeError());
  for (const auto &r : report->runs) {
    std::printf("[ fidelity ] %s: %s: %lld rows, max %.3g\n", c.name,
                r.name.c_str(), (long long)r.rows, r.maxError);
    EXPECT_LE(r.maxError, report->tolerance.maxRowError) << r.name;
  }
  std::printf("[ fidelity ] %s: decode == prefill %.3g\n", c.name,
              report->replayError);
  if (replay) {
    EXPECT_TRUE(report->passed);
  }
  llvm::sys::fs::remove_directories(dir);
}

// The fast order on an x86-64-v4-bf16 module: the one-call prefill runs the
// GEMMs in 32-row tiles of bf16 pair dots (TileGemm::dotBF16), and the
// chunked run's 20-token chunks in few-row passes.
TEST(Fidelity, FastPairDotTilesOnX86V4BF16) {
  if (!::v4::hostSupportsISA("x86-64-v4-bf16"))
    GTEST_SKIP() << "this CPU does not run x86-64-v4-bf16 (AVX512_BF16, "
                    "AVX512_VBMI) code";
  checkChunkedPrompt({"t1_production_fast_bf16", "tiny-v4-t1.config.json",
                      nullptr, v4::NumericsMode::Production,
                      v4::FakeQuantMode::All, v4::SumOrder::Fast,
                      /*batch=*/1, "x86-64-v4-bf16"});
}

// The fast order with another checkpoint (seed 3), on x86-64-v3: a
// reassociated sum of squares in rms_norm (1.9e-2 per logit row) and
// reassociated attention score dots (5.4e-3) each broke the bound here by
// moving a value's bf16 rounding.
TEST(Fidelity, FastOrderOnCheckpointSeed3) {
  if (!::v4::hostSupportsISA("x86-64-v3"))
    GTEST_SKIP() << "this CPU does not run x86-64-v3 code";
  checkChunkedPrompt({"t1_production_fast_seed3", "tiny-v4-t1.config.json",
                      nullptr, v4::NumericsMode::Production,
                      v4::FakeQuantMode::All, v4::SumOrder::Fast,
                      /*batch=*/1, "x86-64-v3", /*seed=*/3});
}

// The mid-size config (bench/configs: hidden 1024, FP8 blocks of 128 over
// K up to 1024, 32 FP4 experts, an MTP layer) in the reference order: the
// reference's bits in every row, chunked too. The reference's std::log1p in
// the gate once moved a routing weight's last bit and with it one MTP row
// of the chunked run by 1.2e-3 (the gates' kernel test now holds their
// weights exact). Not held to decode == prefill: this random checkpoint is
// chaotic in production rounding, where the reference's own chunked and
// one-call rows differ by up to 0.13 (both match the compiled exactly).
TEST(Fidelity, MidSizeReferenceOrderChunked) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "the mid-size model takes minutes under ASan; the release "
                  "build runs this test";
#endif
  Case c{"mid_production", "../bench/configs/mid-v4.config.json", nullptr,
         v4::NumericsMode::Production, v4::FakeQuantMode::All};
  c.batch = 1;
  c.seed = 1;
  c.maxContext = 128;
  checkChunkedPrompt(c, /*replay=*/false);
}

void set(llvm::json::Object &o, llvm::StringRef key, llvm::json::Value v) {
  o[key] = std::move(v);
}

const Case kCases[] = {
    {"t1", "tiny-v4-t1.config.json", nullptr},
    {"engram", "tiny-v4-engram.config.json", nullptr},
    {"hc_mult_2", "tiny-v4-t1.config.json",
     [](llvm::json::Object &o) { set(o, "hc_mult", 2); }},
    {"window_16_ratio_16", "tiny-v4-t1.config.json",
     [](llvm::json::Object &o) {
       set(o, "sliding_window", 16);
       set(o, "compress_ratios", llvm::json::Array{0, 4, 16, 4, 16, 0});
     }},
    {"top3_of_8_index_topk_2", "tiny-v4-t1.config.json",
     [](llvm::json::Object &o) {
       set(o, "n_routed_experts", 8);
       set(o, "num_experts_per_tok", 3);
       set(o, "index_topk", 2);
     }},
    {"o_groups_4", "tiny-v4-t1.config.json",
     [](llvm::json::Object &o) { set(o, "o_groups", 4); }},
    {"no_hash_layers", "tiny-v4-t1.config.json",
     [](llvm::json::Object &o) { set(o, "num_hash_layers", 0); }},
    // Fake quantisation on, in fp32: against the double reference with the
    // same fake-quant points; decode == prefill within the spread.
    {"t1_fake_quant_all", "tiny-v4-t1.config.json", nullptr,
     v4::NumericsMode::FP32, v4::FakeQuantMode::All},
    {"t1_fake_quant_kv", "tiny-v4-t1.config.json", nullptr,
     v4::NumericsMode::FP32, v4::FakeQuantMode::KV},
    // Production: bit-exact against the reference in production rounding.
    {"t1_production", "tiny-v4-t1.config.json", nullptr,
     v4::NumericsMode::Production, v4::FakeQuantMode::All},
    // Production with the decode GEMVs' sums reassociated (issue 8): held
    // to V4-SPEC 2.6's spread bound against the production reference.
    {"t1_production_fast", "tiny-v4-t1.config.json", nullptr,
     v4::NumericsMode::Production, v4::FakeQuantMode::All, v4::SumOrder::Fast,
     /*batch=*/1},
};

INSTANTIATE_TEST_SUITE_P(Numerics, Fidelity, ::testing::ValuesIn(kCases),
                         [](const auto &info) {
                           return std::string(info.param.name);
                         });

} // namespace
