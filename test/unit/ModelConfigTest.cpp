//===- ModelConfigTest.cpp - config.json parsing and validation -----------===//
#include "frontend/ModelConfig.h"

#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

#include <gtest/gtest.h>

#include <cctype>

#include <numeric>

#ifndef V4_SOURCE_DIR
#error "V4_SOURCE_DIR must point at the repository root"
#endif

using namespace v4;

namespace {

std::string modelPath(const char *name) {
  return std::string(V4_SOURCE_DIR) + "/models/" + name;
}

std::string readModel(const char *name) {
  auto buf = llvm::MemoryBuffer::getFile(modelPath(name));
  EXPECT_TRUE(static_cast<bool>(buf)) << name;
  return buf ? (*buf)->getBuffer().str() : std::string();
}

/// Parses `text` and returns the error message ("" on success).
std::string errorOf(const std::string &text,
                    std::vector<std::string> *warnings = nullptr) {
  auto c = parseModelConfig(text, "cfg.json", [&](const std::string &w) {
    if (warnings)
      warnings->push_back(w);
  });
  if (c)
    return "";
  return llvm::toString(c.takeError());
}

/// The T1 config with `key` replaced by the JSON text `value` (or removed
/// when value is empty).
std::string t1With(const std::string &key, const std::string &value) {
  auto parsed = llvm::json::parse(readModel("tiny-v4-t1.config.json"));
  EXPECT_TRUE(static_cast<bool>(parsed));
  llvm::json::Object obj = *parsed->getAsObject();
  if (value.empty()) {
    obj.erase(key);
  } else {
    auto v = llvm::json::parse(value);
    EXPECT_TRUE(static_cast<bool>(v)) << value;
    obj[key] = std::move(*v);
  }
  std::string out;
  llvm::raw_string_ostream os(out);
  os << llvm::json::Value(std::move(obj));
  return out;
}

TEST(ModelConfig, ManyDuplicateKeysGiveABoundedError) {
  // 50,000 copies of one key, one per line, before the T1 config's own:
  // the first 8 duplicates are named with both places, the rest counted.
  // Each duplicate used to rescan the text for its line (quadratic time:
  // a 16 MiB config of duplicates ran for hours) and to add a line to the
  // error.
  std::string t1 = readModel("tiny-v4-t1.config.json");
  ASSERT_EQ(t1.front(), '{');
  std::string text = "{\n";
  for (int i = 0; i < 50000; ++i)
    text += "\"vocab_size\": 7,\n";
  text += t1.substr(1);
  std::string e = errorOf(text);
  EXPECT_LT(e.size(), 2048u) << e.substr(0, 2048);
  EXPECT_NE(e.find("cfg.json:3:1: key '$.vocab_size': duplicate key (first "
                   "at 2:1); give each key once [CF-10]"),
            std::string::npos)
      << e.substr(0, 512);
  EXPECT_NE(e.find("cfg.json:10:1: key '$.vocab_size'"), std::string::npos);
  EXPECT_NE(e.find("cfg.json: 49992 more duplicate keys [CF-10]"),
            std::string::npos)
      << e;
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 8);
}

TEST(ModelConfig, ReleasedProConfig) {
  std::vector<std::string> warnings;
  auto c =
      loadModelConfig(modelPath("deepseek-v4-pro.config.json"),
                      [&](const std::string &w) { warnings.push_back(w); });
  ASSERT_TRUE(static_cast<bool>(c)) << llvm::toString(c.takeError());
  EXPECT_TRUE(warnings.empty()) << warnings.front();
  EXPECT_EQ(c->hiddenSize, 7168);
  EXPECT_EQ(c->numLayers, 61);
  EXPECT_EQ(c->numHeads, 128);
  EXPECT_EQ(c->oGroups, 16);
  EXPECT_EQ(c->numRoutedExperts, 384);
  EXPECT_EQ(c->indexTopk, 1024);
  EXPECT_EQ(c->compressRatios.size(), 62u);
  EXPECT_EQ(c->compressRatios.back(), 0);
  EXPECT_EQ(c->expertDtype, ExpertDtype::FP4);
  EXPECT_DOUBLE_EQ(c->ropeScaling.factor, 16.0);
  EXPECT_EQ(c->ropeScaling.originalMaxPositionEmbeddings, 65536);
  EXPECT_DOUBLE_EQ(c->routedScalingFactor, 2.5);
  EXPECT_FALSE(c->engram.has_value());
  EXPECT_TRUE(c->isHashLayer(2));
  EXPECT_FALSE(c->isHashLayer(3));
}

TEST(ModelConfig, FlashSchedule) {
  auto c = loadModelConfig(modelPath("deepseek-v4-flash.config.json"));
  ASSERT_TRUE(static_cast<bool>(c)) << llvm::toString(c.takeError());
  int csa = 0, hca = 0, swa = 0;
  for (int64_t i = 0; i < c->numLayers; ++i) {
    int64_t r = c->ratioOf(i);
    csa += r == 4;
    hca += r == 128;
    swa += r == 0;
  }
  EXPECT_EQ(swa, 2);
  EXPECT_EQ(csa, 21);
  EXPECT_EQ(hca, 20);
  EXPECT_EQ(c->ratioOf(43), 0) << "the MTP block is SWA";
}

TEST(ModelConfig, RopeParametersSpelling) {
  // models/README.md: newer transformers write rope_parameters.
  std::string text = t1With("rope_scaling", "");
  text = text.substr(0, text.size() - 1) +
         R"(,"rope_parameters":{"rope_type":"deepseek_yarn","factor":4,)"
         R"("original_max_position_embeddings":16,"beta_fast":32,)"
         R"("beta_slow":1}})";
  auto c = parseModelConfig(text, "cfg.json");
  ASSERT_TRUE(static_cast<bool>(c)) << llvm::toString(c.takeError());
  EXPECT_DOUBLE_EQ(c->ropeScaling.factor, 4.0);
  EXPECT_EQ(c->ropeScaling.originalMaxPositionEmbeddings, 16);
}

TEST(ModelConfig, EngramPrimesOfTheTinyVariant) {
  auto c = loadModelConfig(modelPath("tiny-v4-engram.config.json"));
  ASSERT_TRUE(static_cast<bool>(c)) << llvm::toString(c.takeError());
  ASSERT_TRUE(c->engram.has_value());
  EXPECT_EQ(c->engram->primes[0], (std::vector<int64_t>{41, 43, 47, 53}));
  EXPECT_EQ(c->engram->primes[1], (std::vector<int64_t>{59, 61, 67, 71}));
  EXPECT_TRUE(c->isEngramLayer(3));
  EXPECT_FALSE(c->isEngramLayer(2));
}

TEST(ModelConfig, EngramPrimesOfV41) {
  // V4-SPEC 11.2 item 14.
  EngramConfig e;
  e.layerIds = {1, 14};
  e.maxNgramSize = 4;
  e.numHeads = 8;
  e.vocabSizes = {16000000};
  auto primes = computeEngramPrimes(e);
  ASSERT_EQ(primes.size(), 2u);
  ASSERT_EQ(primes[0].size(), 24u);
  EXPECT_EQ(primes[0].front(), 16000057);
  EXPECT_EQ(primes[0].back(), 16000463);
  EXPECT_EQ(primes[1].front(), 16000477);
  EXPECT_EQ(primes[1].back(), 16000889);
  EXPECT_EQ(std::accumulate(primes[0].begin(), primes[0].end(), int64_t(0)),
            384006168);
  EXPECT_EQ(std::accumulate(primes[1].begin(), primes[1].end(), int64_t(0)),
            384016682);
}

struct BadConfig {
  const char *key;
  const char *value; // "" removes the key
  const char *rule;
  const char *text; // a substring of the message
};
void PrintTo(const BadConfig &c, std::ostream *os) {
  *os << c.rule << " " << c.key << " = '" << c.value << "'";
}

class ConfigRules : public ::testing::TestWithParam<BadConfig> {};

TEST_P(ConfigRules, NamesKeyAndRule) {
  const BadConfig &bad = GetParam();
  std::string msg = errorOf(t1With(bad.key, bad.value));
  EXPECT_NE(msg.find(std::string("[") + bad.rule + "]"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find(bad.text), std::string::npos) << msg;
}

INSTANTIATE_TEST_SUITE_P(
    Validation, ConfigRules,
    ::testing::Values(
        BadConfig{"hidden_size", "", "CF-3", "key 'hidden_size'"},
        BadConfig{"hidden_size", "\"64\"", "CF-4", "expected an integer"},
        BadConfig{"hidden_size", "64.5", "CF-4", "expected an integer"},
        BadConfig{"num_hidden_layers", "0", "CF-5", "[1, 1024]"},
        BadConfig{"swiglu_limit", "-1", "CF-5", "key 'swiglu_limit'"},
        BadConfig{"o_groups", "3", "CF-6", "divisible by o_groups (3)"},
        BadConfig{"num_experts_per_tok", "7", "CF-6",
                  "top-k (7) exceeds n_routed_experts (6)"},
        BadConfig{"compress_ratios", "[0, 4, 8, 4, 8]", "CF-8",
                  "expected 6 entries"},
        BadConfig{"compress_ratios", "[0, 4, 2, 4, 8, 0]", "CF-7", "V4.1 CSA2"},
        BadConfig{"compress_ratios", "[0, 4, \"x\", 4, 8, 0]", "CF-4",
                  "element 2"},
        BadConfig{"num_key_value_heads", "2", "CF-7", "expected 1"},
        BadConfig{"scoring_func", "\"relu\"", "CF-7", "got 'relu'"},
        BadConfig{"qk_rope_head_dim", "7", "CF-6", "even value"},
        BadConfig{"head_dim", "80", "CF-6", "multiple of 64"},
        BadConfig{"index_head_dim", "24", "CF-6", "power of two"},
        BadConfig{"rope_scaling", "{\"type\": \"linear\", \"factor\": 2}",
                  "CF-7", "unsupported RoPE scaling type"},
        BadConfig{"rope_scaling", "[1]", "CF-4", "expected an object"},
        BadConfig{
            "quantization_config",
            "{\"quant_method\": \"fp8\", \"weight_block_size\": [32, 32]}",
            "CF-7", "[128, 128]"},
        BadConfig{"engram_max_ngram_size", "3", "CF-9",
                  "'engram_layer_ids' is absent"},
        BadConfig{"expert_dtype", "\"int3\"", "CF-7", "got 'int3'"}),
    [](const ::testing::TestParamInfo<BadConfig> &info) {
      // e.g. "3_CF6_hidden_size": index, rule and key.
      std::string n = std::to_string(info.index) + "_" + info.param.rule + "_" +
                      info.param.key;
      for (char &c : n)
        if (!std::isalnum(static_cast<unsigned char>(c)))
          c = '_';
      return n;
    });

TEST(ModelConfig, EngramRules) {
  auto parsed = llvm::json::parse(readModel("tiny-v4-engram.config.json"));
  ASSERT_TRUE(static_cast<bool>(parsed));
  llvm::json::Object base = *parsed->getAsObject();
  auto check = [&](const char *key, llvm::json::Value v, const char *text) {
    llvm::json::Object obj = base;
    obj[key] = std::move(v);
    std::string s;
    llvm::raw_string_ostream os(s);
    os << llvm::json::Value(std::move(obj));
    std::string msg = errorOf(s);
    EXPECT_NE(msg.find(text), std::string::npos) << key << ": " << msg;
  };
  check("engram_num_embeddings", llvm::json::Array{184, 259},
        "expected [184, 258]");
  check("engram_layer_ids", llvm::json::Array{3, 1}, "ascending");
  check("engram_layer_ids", llvm::json::Array{1, 9}, "outside [0, 5)");
  check("engram_head_dim", 48, "multiple of 32");
  check("engram_vocab_size", llvm::json::Array{40, 50, 60}, "N-1 = 2 values");
}

TEST(ModelConfig, MalformedFiles) {
  EXPECT_NE(errorOf("").find("[CF-1]"), std::string::npos);
  EXPECT_NE(errorOf("{\"hidden_size\": ").find("invalid JSON"),
            std::string::npos);
  EXPECT_NE(errorOf("{\"a\": \"\xff\xfe\"}").find("[CF-1]"), std::string::npos);
  EXPECT_NE(errorOf("[1, 2]").find("[CF-2]"), std::string::npos);
  auto missing = loadModelConfig("/nonexistent/config.json");
  ASSERT_FALSE(static_cast<bool>(missing));
  EXPECT_NE(llvm::toString(missing.takeError()).find("cannot read"),
            std::string::npos);
}

TEST(ModelConfig, ReportsEveryErrorAtOnce) {
  std::string text = t1With("hidden_size", "\"x\"");
  auto parsed = llvm::json::parse(text);
  llvm::json::Object obj = *parsed->getAsObject();
  obj["vocab_size"] = "y";
  std::string s;
  llvm::raw_string_ostream os(s);
  os << llvm::json::Value(std::move(obj));
  std::string msg = errorOf(s);
  EXPECT_NE(msg.find("'hidden_size'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'vocab_size'"), std::string::npos) << msg;
}

TEST(ModelConfig, UnknownKeysWarn) {
  std::vector<std::string> warnings;
  std::string text = t1With("hiden_size", "64");
  EXPECT_EQ(errorOf(text, &warnings), "");
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("unknown key 'hiden_size'"), std::string::npos);
}

} // namespace
