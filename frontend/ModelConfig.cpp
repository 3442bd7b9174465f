//===- ModelConfig.cpp - V4 model configuration (config.json) -------------===//
#include "frontend/ModelConfig.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

#include "runtime/base/JsonText.h"
#include "runtime/base/Primes.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

using namespace llvm;

namespace v4 {

bool ModelConfig::isEngramLayer(int64_t layer) const {
  return engram && llvm::is_contained(engram->layerIds, layer);
}

namespace {

/// Keys a V4 config may carry that the compiler reads or knowingly ignores.
/// Anything else is warned about (a typo must not pass silently).
const char *const kIgnoredKeys[] = {
    "architectures",
    "attention_dropout",
    "auto_map",
    "bos_token_id",
    "eos_token_id",
    "initializer_range",
    "model_type",
    "transformers_version",
    "use_cache",
    "torch_dtype",
    "dtype",
    "pad_token_id",
    "first_k_dense_replace",
    "n_group",
    "topk_group",
};

/// Collects every violated rule, so one run reports all of them.
class ConfigReader {
public:
  ConfigReader(StringRef path, const json::Object &root)
      : path(path), root(root) {}

  std::vector<std::string> errors;
  StringSet<> used;

  void error(StringRef key, StringRef rule, const Twine &msg) {
    errors.push_back(
        formatv("{0}: key '{1}': {2} [{3}]", path, key, msg.str(), rule));
  }

  const json::Value *get(StringRef key, bool required) {
    used.insert(key);
    const json::Value *v = root.get(key);
    if (!v && required)
      error(key, "CF-3", "required key is missing");
    return v;
  }

  std::optional<int64_t> integer(StringRef key, bool required = true) {
    const json::Value *v = get(key, required);
    if (!v)
      return std::nullopt;
    if (auto i = v->getAsInteger())
      return *i;
    error(key, "CF-4", "expected an integer, got " + describe(*v));
    return std::nullopt;
  }

  /// An integer that must lie in [lo, hi].
  int64_t intInRange(StringRef key, int64_t lo, int64_t hi,
                     std::optional<int64_t> dflt = std::nullopt) {
    auto v = integer(key, !dflt.has_value());
    if (!v)
      return dflt.value_or(0);
    if (*v < lo || *v > hi) {
      error(key, "CF-5",
            formatv("expected a value in [{0}, {1}], got {2}", lo, hi, *v));
      return dflt.value_or(lo);
    }
    return *v;
  }

  std::optional<double> number(StringRef key, bool required = true) {
    const json::Value *v = get(key, required);
    if (!v)
      return std::nullopt;
    if (auto d = v->getAsNumber())
      return *d;
    error(key, "CF-4", "expected a number, got " + describe(*v));
    return std::nullopt;
  }

  double positiveNumber(StringRef key,
                        std::optional<double> dflt = std::nullopt) {
    auto v = number(key, !dflt.has_value());
    if (!v)
      return dflt.value_or(0.0);
    if (!(*v > 0.0) || !std::isfinite(*v)) {
      error(key, "CF-5", formatv("expected a finite value > 0, got {0}", *v));
      return dflt.value_or(1.0);
    }
    return *v;
  }

  std::optional<std::string> string(StringRef key, bool required = true) {
    const json::Value *v = get(key, required);
    if (!v)
      return std::nullopt;
    if (auto s = v->getAsString())
      return s->str();
    error(key, "CF-4", "expected a string, got " + describe(*v));
    return std::nullopt;
  }

  std::optional<bool> boolean(StringRef key) {
    const json::Value *v = get(key, false);
    if (!v)
      return std::nullopt;
    if (auto b = v->getAsBoolean())
      return *b;
    error(key, "CF-4", "expected true or false, got " + describe(*v));
    return std::nullopt;
  }

  /// A list of integers (a scalar is accepted when `allowScalar`).
  std::optional<std::vector<int64_t>> intList(StringRef key, bool required,
                                              bool allowScalar = false) {
    const json::Value *v = get(key, required);
    if (!v)
      return std::nullopt;
    std::vector<int64_t> out;
    if (allowScalar) {
      if (auto i = v->getAsInteger())
        return std::vector<int64_t>{*i};
    }
    const json::Array *arr = v->getAsArray();
    if (!arr) {
      error(key, "CF-4", "expected a list of integers, got " + describe(*v));
      return std::nullopt;
    }
    for (auto [i, e] : llvm::enumerate(*arr)) {
      auto x = e.getAsInteger();
      if (!x) {
        error(key, "CF-4",
              formatv("element {0}: expected an integer, got {1}", i,
                      describe(e)));
        return std::nullopt;
      }
      out.push_back(*x);
    }
    return out;
  }

  static std::string describe(const json::Value &v) {
    switch (v.kind()) {
    case json::Value::Null:
      return "null";
    case json::Value::Boolean:
      return "a boolean";
    case json::Value::Number:
      return formatv("{0}", v);
    case json::Value::String:
      return formatv("the string {0}", v);
    case json::Value::Array:
      return "a list";
    case json::Value::Object:
      return "an object";
    }
    return "a value";
  }

  StringRef path;
  const json::Object &root;
};

/// CF-1 bounds on the text, checked before it is parsed: llvm::json's
/// parser recurses per nesting level (50,000 levels overflowed the stack)
/// and spends ~60 bytes per value (16 MiB of small values took 18x the file
/// in memory), so depth and the number of values are capped as well as the
/// size. No real config is near any limit (the released ones are 3 deep,
/// under 4 KiB and 200 values); at the caps parsing costs at most ~3x the
/// file (a 16 MiB string value).
constexpr size_t kMaxConfigBytes = size_t(16) << 20;
constexpr unsigned kMaxConfigDepth = 64;
constexpr size_t kMaxConfigValues = size_t(1) << 16;
constexpr size_t kMaxDuplicatesNamed = 8;

/// "LINE:COL" (1-based) of byte offsets of one text: the newlines are found
/// once, each offset is a binary search.
class LineIndex {
public:
  explicit LineIndex(StringRef text) {
    for (size_t i = text.find('\n'); i != StringRef::npos;
         i = text.find('\n', i + 1))
      newlines.push_back(i);
  }
  std::string operator()(size_t offset) const {
    auto after = std::lower_bound(newlines.begin(), newlines.end(), offset);
    size_t line = size_t(after - newlines.begin()) + 1;
    size_t col = after == newlines.begin() ? offset + 1 : offset - after[-1];
    return formatv("{0}:{1}", line, col);
  }

private:
  std::vector<size_t> newlines;
};

/// CF-1: nesting deeper than kMaxConfigDepth or more than kMaxConfigValues
/// values (counted by their separators), on any text (valid or not).
std::optional<std::string> checkShape(StringRef text, StringRef path) {
  v4::JsonTextLimits limits;
  limits.maxDepth = kMaxConfigDepth;
  limits.maxValues = kMaxConfigValues;
  v4::JsonTextScan scan = v4::scanJsonText(text, limits);
  if (scan.tooDeepAt != scan.npos)
    return formatv("{0}:{1}: nesting deeper than {2} levels; a config is "
                   "a few levels deep [CF-1]",
                   path, LineIndex(text)(scan.tooDeepAt), kMaxConfigDepth)
        .str();
  if (scan.tooManyValuesAt != scan.npos)
    return formatv("{0}:{1}: more than {2} JSON values; a config has a "
                   "few hundred [CF-1]",
                   path, LineIndex(text)(scan.tooManyValuesAt),
                   kMaxConfigValues)
        .str();
  return std::nullopt;
}

/// CF-10: every key of every object of `text` (valid JSON) appears once;
/// llvm::json, like most parsers, would keep the last silently. Errors name
/// the key path and both places, for the first kMaxDuplicatesNamed
/// duplicates; the rest are counted (a 16 MiB config of duplicates once
/// took time quadratic in its size and an error of hundreds of MiB).
std::vector<std::string> findDuplicateKeys(StringRef text, StringRef path) {
  struct Frame {
    bool object;
    std::string path;
    llvm::StringMap<size_t> keys; // key -> offset of its first occurrence
    std::string key;              // the key of the value being read
    bool expectKey = false;
    int64_t index = 0;
  };
  std::vector<std::string> errors;
  std::optional<LineIndex> lines;
  size_t unnamed = 0; // duplicates past the first kMaxDuplicatesNamed
  std::vector<Frame> stack;
  auto childPath = [&]() -> std::string {
    if (stack.empty())
      return "$";
    Frame &top = stack.back();
    return top.object ? top.path + "." + top.key
                      : formatv("{0}[{1}]", top.path, top.index).str();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char ch = text[i];
    if (ch == '"') {
      size_t end = v4::skipJsonString(text, i);
      if (!stack.empty() && stack.back().object && stack.back().expectKey) {
        Frame &top = stack.back();
        // The key as JSON decodes it (escapes resolved).
        Expected<json::Value> key = json::parse(text.slice(i, end));
        std::string name;
        if (key && key->getAsString())
          name = key->getAsString()->str();
        else
          consumeError(key.takeError());
        auto [it, inserted] = top.keys.try_emplace(name, i);
        if (!inserted && errors.size() < kMaxDuplicatesNamed) {
          if (!lines)
            lines.emplace(text);
          errors.push_back(formatv("{0}:{1}: key '{2}.{3}': duplicate key "
                                   "(first at {4}); give each key once "
                                   "[CF-10]",
                                   path, (*lines)(i), top.path, name,
                                   (*lines)(it->second)));
        } else if (!inserted) {
          ++unnamed;
        }
        top.key = name;
        top.expectKey = false;
      }
      i = end - 1;
    } else if (ch == '{' || ch == '[') {
      Frame f;
      f.object = ch == '{';
      f.path = childPath();
      f.expectKey = f.object;
      stack.push_back(std::move(f));
    } else if (ch == '}' || ch == ']') {
      if (!stack.empty())
        stack.pop_back();
    } else if (ch == ',' && !stack.empty()) {
      if (stack.back().object)
        stack.back().expectKey = true;
      else
        ++stack.back().index;
    }
  }
  if (unnamed)
    errors.push_back(
        formatv("{0}: {1} more duplicate keys [CF-10]", path, unnamed));
  return errors;
}

/// Whether `v` is a finite number that converts to int64_t exactly enough:
/// in [1, 2^53] (the casts below are then defined).
bool isCastableCount(double v) { return v >= 1.0 && v <= 9007199254740992.0; }

/// Primes the V4-SPEC 8.4 search may produce for one config (layers x
/// (N - 1) x heads): the released configs need 16; the bound keeps the
/// search well under a second.
constexpr int64_t kMaxEngramPrimes = int64_t(1) << 16;

} // namespace

std::vector<std::vector<int64_t>>
computeEngramPrimes(const EngramConfig &engram) {
  // V4-SPEC 8.4: layers in order, then n = 2..N, then heads; each prime is the
  // smallest unused one >= the search start.
  std::set<int64_t> used;
  std::vector<std::vector<int64_t>> result;
  for (size_t l = 0; l < engram.layerIds.size(); ++l) {
    std::vector<int64_t> primes;
    for (int64_t n = 2; n <= engram.maxNgramSize; ++n) {
      int64_t start = engram.vocabSizes.size() == 1 ? engram.vocabSizes[0]
                                                    : engram.vocabSizes[n - 2];
      for (int64_t j = 0; j < engram.numHeads; ++j) {
        int64_t p = start;
        while (!isPrime(p) || used.count(p))
          ++p; // a prime gap below 2^64 is under 1,600: few steps
        used.insert(p);
        primes.push_back(p);
        start = p + 1;
      }
    }
    result.push_back(std::move(primes));
  }
  return result;
}

static void parseRope(ConfigReader &r, ModelConfig &c) {
  // V4-SPEC 2.2; models/README: `rope_scaling` (released) or
  // `rope_parameters` (newer transformers). Both spellings are accepted.
  const json::Value *scaling = r.get("rope_scaling", false);
  const json::Value *params = r.get("rope_parameters", false);
  if (scaling && params && scaling->kind() != json::Value::Null)
    r.error("rope_parameters", "CF-6",
            "both 'rope_scaling' and 'rope_parameters' are given; keep one");
  const json::Value *src =
      (scaling && scaling->kind() != json::Value::Null) ? scaling : params;
  StringRef key = src == scaling ? "rope_scaling" : "rope_parameters";
  if (!src || src->kind() == json::Value::Null)
    return; // no YaRN
  const json::Object *obj = src->getAsObject();
  if (!obj) {
    r.error(key, "CF-4", "expected an object, got " + r.describe(*src));
    return;
  }
  std::optional<StringRef> type = obj->getString("type");
  if (!type)
    type = obj->getString("rope_type");
  if (!type) {
    r.error(key, "CF-3", "missing 'type' (or 'rope_type')");
    return;
  }
  if (*type == "default" || *type == "none")
    return;
  if (*type != "yarn" && *type != "deepseek_yarn") {
    r.error(key, "CF-7",
            "unsupported RoPE scaling type '" + *type +
                "'; V4 uses 'yarn' (or 'deepseek_yarn')");
    return;
  }
  auto num = [&](StringRef field, double dflt, bool required) -> double {
    const json::Value *v = obj->get(field);
    if (!v) {
      if (required)
        r.error((key + "." + field).str(), "CF-3", "required key is missing");
      return dflt;
    }
    auto d = v->getAsNumber();
    if (!d || !(*d > 0.0) || !std::isfinite(*d)) {
      r.error((key + "." + field).str(), "CF-5",
              "expected a finite number > 0, got " + r.describe(*v));
      return dflt;
    }
    return *d;
  };
  c.ropeScaling.factor = num("factor", 1.0, true);
  // Range before the cast: a double above 2^63 does not convert.
  double orig = num("original_max_position_embeddings", 0.0, true);
  if (orig > 0.0 && !isCastableCount(orig))
    r.error((key + ".original_max_position_embeddings").str(), "CF-5",
            formatv("expected a value in [1, 2^53], got {0:e}", orig));
  else
    c.ropeScaling.originalMaxPositionEmbeddings = static_cast<int64_t>(orig);
  c.ropeScaling.betaFast = num("beta_fast", 32.0, false);
  c.ropeScaling.betaSlow = num("beta_slow", 1.0, false);
  if (c.ropeScaling.factor < 1.0)
    r.error((key + ".factor").str(), "CF-5",
            formatv("expected factor >= 1, got {0}", c.ropeScaling.factor));
  if (key == "rope_parameters" && !r.root.get("rope_theta"))
    if (auto theta = obj->getNumber("rope_theta")) {
      if (*theta > 0.0 && std::isfinite(*theta))
        c.ropeTheta = *theta;
      else
        r.error((key + ".rope_theta").str(), "CF-5",
                formatv("expected a finite value > 0, got {0}", *theta));
    }
}

static void parseEngram(ConfigReader &r, ModelConfig &c) {
  auto ids = r.intList("engram_layer_ids", false);
  if (!ids || ids->empty()) {
    // Any other engram_* key without layer ids is a mistake.
    for (auto &kv : r.root)
      if (StringRef(kv.first).starts_with("engram_") &&
          kv.first != "engram_layer_ids") {
        r.used.insert(kv.first);
        r.error(kv.first, "CF-9",
                "Engram keys given but 'engram_layer_ids' is absent or empty");
      }
    return;
  }
  EngramConfig e;
  e.layerIds = *ids;
  for (size_t i = 0; i < ids->size(); ++i) {
    int64_t id = (*ids)[i];
    if (id < 0 || id >= c.numLayers)
      r.error("engram_layer_ids", "CF-9",
              formatv("layer id {0} is outside [0, {1})", id, c.numLayers));
    if (i && id <= (*ids)[i - 1])
      r.error("engram_layer_ids", "CF-9",
              "layer ids must be distinct and ascending");
  }
  e.maxNgramSize = r.intInRange("engram_max_ngram_size", 2, 16);
  e.numHeads = r.intInRange("engram_n_heads", 1, 1024);
  e.headDim = r.intInRange("engram_head_dim", 1, 1 << 16);
  if (e.headDim % 32)
    r.error("engram_head_dim", "CF-9",
            formatv("expected a multiple of 32 (FP8 tables with per-32 "
                    "scales), got {0}",
                    e.headDim));
  if (auto v = r.intList("engram_vocab_size", true, /*allowScalar=*/true)) {
    e.vocabSizes = *v;
    if (e.vocabSizes.size() != 1 &&
        (int64_t)e.vocabSizes.size() != e.maxNgramSize - 1)
      r.error("engram_vocab_size", "CF-9",
              formatv("expected one value or N-1 = {0} values, got {1}",
                      e.maxNgramSize - 1, e.vocabSizes.size()));
    for (int64_t x : e.vocabSizes)
      if (x < 2 || x > (int64_t(1) << 40))
        r.error("engram_vocab_size", "CF-5",
                formatv("expected values in [2, 2^40], got {0}", x));
  }
  e.padTokenId = r.intInRange("engram_pad_token_id", 0, c.vocabSize - 1);
  e.compressedVocabSize =
      r.intInRange("engram_compressed_vocab_size", 1, c.vocabSize);
  e.seed =
      r.intInRange("engram_seed", 0, std::numeric_limits<int64_t>::max(), 0);
  e.normEps = r.positiveNumber("engram_norm_eps", 1e-20);
  if (!r.errors.empty())
    return;
  int64_t numPrimes =
      int64_t(e.layerIds.size()) * (e.maxNgramSize - 1) * e.numHeads;
  if (numPrimes > kMaxEngramPrimes) {
    r.error("engram_n_heads", "CF-9",
            formatv("{0} Engram layers x (engram_max_ngram_size - 1) x {1} "
                    "heads need {2} distinct primes (V4-SPEC 8.4); at most "
                    "{3} are supported",
                    e.layerIds.size(), e.numHeads, numPrimes,
                    kMaxEngramPrimes));
    return;
  }
  e.primes = computeEngramPrimes(e);
  std::vector<int64_t> sums;
  for (auto &p : e.primes) {
    int64_t s = 0;
    for (int64_t x : p)
      s += x;
    sums.push_back(s);
  }
  if (auto n = r.intList("engram_num_embeddings", false)) {
    if (*n != sums) {
      std::string expected;
      llvm::raw_string_ostream os(expected);
      llvm::interleaveComma(sums, os);
      r.error("engram_num_embeddings", "CF-9",
              "expected [" + expected +
                  "] (sums of each layer's primes, V4-SPEC 8.4)");
    }
  }
  e.numEmbeddings = sums;
  c.engram = std::move(e);
}

Expected<ModelConfig> parseModelConfig(StringRef text, StringRef path,
                                       const ConfigWarningHandler &warn) {
  if (text.empty())
    return createStringError(inconvertibleErrorCode(), "%s: empty file [CF-1]",
                             path.str().c_str());
  if (text.size() > kMaxConfigBytes)
    return createStringError(
        inconvertibleErrorCode(),
        "%s: %zu bytes; a config.json is at most %zu bytes [CF-1]",
        path.str().c_str(), text.size(), kMaxConfigBytes);
  if (auto deep = checkShape(text, path))
    return createStringError(inconvertibleErrorCode(), *deep);
  Expected<json::Value> parsed = json::parse(text);
  if (!parsed)
    return createStringError(inconvertibleErrorCode(),
                             "%s: invalid JSON: %s [CF-1]", path.str().c_str(),
                             toString(parsed.takeError()).c_str());
  std::vector<std::string> duplicates = findDuplicateKeys(text, path);
  if (!duplicates.empty())
    return createStringError(inconvertibleErrorCode(),
                             llvm::join(duplicates, "\n"));
  const json::Object *root = parsed->getAsObject();
  if (!root)
    return createStringError(inconvertibleErrorCode(),
                             "%s: expected a JSON object at top level [CF-2]",
                             path.str().c_str());

  ConfigReader r(path, *root);
  ModelConfig c;
  c.hiddenSize = r.intInRange("hidden_size", 1, 1 << 20);
  c.numLayers = r.intInRange("num_hidden_layers", 1, 1024);
  c.numHeads = r.intInRange("num_attention_heads", 1, 4096);
  c.headDim = r.intInRange("head_dim", 2, 1 << 16);
  c.ropeHeadDim = r.intInRange("qk_rope_head_dim", 2, 1 << 16);
  c.qLoraRank = r.intInRange("q_lora_rank", 1, 1 << 20);
  c.oGroups = r.intInRange("o_groups", 1, 4096);
  c.oLoraRank = r.intInRange("o_lora_rank", 1, 1 << 20);
  c.vocabSize = r.intInRange("vocab_size", 1, int64_t(1) << 31);
  c.bosTokenId = r.intInRange("bos_token_id", 0, c.vocabSize - 1, -1);
  c.eosTokenId = r.intInRange("eos_token_id", 0, c.vocabSize - 1, -1);
  c.numRoutedExperts = r.intInRange("n_routed_experts", 1, 1 << 16);
  c.numExpertsPerTok = r.intInRange("num_experts_per_tok", 1, 1 << 16);
  c.moeIntermediateSize = r.intInRange("moe_intermediate_size", 1, 1 << 20);
  c.numHashLayers = r.intInRange("num_hash_layers", 0, 1024, 0);
  c.slidingWindow = r.intInRange("sliding_window", 1, 1 << 20);
  c.maxPositionEmbeddings =
      r.intInRange("max_position_embeddings", 1, int64_t(1) << 40);
  c.indexNumHeads = r.intInRange("index_n_heads", 1, 4096);
  c.indexHeadDim = r.intInRange("index_head_dim", 2, 1 << 16);
  c.indexTopk = r.intInRange("index_topk", 1, int64_t(1) << 30);
  c.hcMult = r.intInRange("hc_mult", 1, 64);
  c.hcSinkhornIters = r.intInRange("hc_sinkhorn_iters", 1, 10000);
  c.numMtpLayers = r.intInRange("num_nextn_predict_layers", 0, 16, 0);
  c.routedScalingFactor = r.positiveNumber("routed_scaling_factor");
  c.swigluLimit = r.positiveNumber("swiglu_limit");
  c.ropeTheta = r.positiveNumber("rope_theta", 10000.0);
  c.compressRopeTheta = r.positiveNumber("compress_rope_theta");
  c.hcEps = r.positiveNumber("hc_eps");
  c.rmsNormEps = r.positiveNumber("rms_norm_eps");

  // Values the V4 architecture fixes (V4-SPEC 1.1).
  if (r.intInRange("num_key_value_heads", 1, 4096, 1) != 1)
    r.error("num_key_value_heads", "CF-7",
            "V4 has one shared K=V latent head; expected 1");
  if (r.intInRange("n_shared_experts", 0, 1024, 1) != 1)
    r.error("n_shared_experts", "CF-7", "V4 has exactly 1 shared expert");
  if (auto act = r.string("hidden_act", false); act && *act != "silu")
    r.error("hidden_act", "CF-7", "expected 'silu', got '" + *act + "'");
  if (auto b = r.boolean("attention_bias"); b && *b)
    r.error("attention_bias", "CF-7", "V4 has no attention biases");
  if (auto b = r.boolean("tie_word_embeddings"); b && *b)
    r.error("tie_word_embeddings", "CF-7",
            "V4 has separate embed and head weights");
  r.boolean("norm_topk_prob");
  if (auto m = r.string("topk_method", false); m && *m != "noaux_tc")
    r.error("topk_method", "CF-7", "expected 'noaux_tc', got '" + *m + "'");
  if (auto f = r.string("scoring_func")) {
    c.scoringFunc = *f;
    if (*f != "sqrtsoftplus" && *f != "sigmoid" && *f != "softmax")
      r.error("scoring_func", "CF-7",
              "expected 'sqrtsoftplus', 'sigmoid' or 'softmax', got '" + *f +
                  "'");
  }
  if (auto d = r.string("expert_dtype", false)) {
    if (*d == "fp4")
      c.expertDtype = ExpertDtype::FP4;
    else if (*d == "fp8")
      c.expertDtype = ExpertDtype::FP8;
    else if (*d == "bf16")
      c.expertDtype = ExpertDtype::BF16;
    else
      r.error("expert_dtype", "CF-7",
              "expected 'fp4', 'fp8' or 'bf16', got '" + *d + "'");
  }
  if (const json::Value *q = r.get("quantization_config", false)) {
    const json::Object *qo = q->getAsObject();
    if (!qo) {
      r.error("quantization_config", "CF-4", "expected an object");
    } else {
      if (auto m = qo->getString("quant_method"); m && *m != "fp8")
        r.error("quantization_config.quant_method", "CF-7",
                "expected 'fp8', got '" + *m + "'");
      if (auto f = qo->getString("fmt"); f && *f != "e4m3")
        r.error("quantization_config.fmt", "CF-7",
                "expected 'e4m3', got '" + *f + "'");
      if (auto s = qo->getString("scale_fmt"); s && *s != "ue8m0")
        r.error("quantization_config.scale_fmt", "CF-7",
                "expected 'ue8m0', got '" + *s + "'");
      if (const json::Array *b = qo->getArray("weight_block_size")) {
        auto b0 = b->size() == 2 ? (*b)[0].getAsInteger() : std::nullopt;
        auto b1 = b->size() == 2 ? (*b)[1].getAsInteger() : std::nullopt;
        // V4-SPEC 8.10: other block sizes (V4.1's 32x32) are out of scope.
        if (!b0 || !b1 || *b0 != 128 || *b1 != 128)
          r.error("quantization_config.weight_block_size", "CF-7",
                  "only [128, 128] is supported (V4-SPEC 8.10)");
      }
    }
  }
  parseRope(r, c);

  if (auto ratios = r.intList("compress_ratios", true))
    c.compressRatios = *ratios;

  // Cross-key consistency (CF-6, CF-8) once every key parsed cleanly.
  if (r.errors.empty()) {
    int64_t want = c.numLayers + c.numMtpLayers;
    if ((int64_t)c.compressRatios.size() != want)
      r.error("compress_ratios", "CF-8",
              formatv("expected {0} entries (num_hidden_layers {1} + "
                      "num_nextn_predict_layers {2}), got {3}",
                      want, c.numLayers, c.numMtpLayers,
                      c.compressRatios.size()));
    for (auto [i, ratio] : llvm::enumerate(c.compressRatios)) {
      if (ratio == 1 || ratio == 2)
        r.error("compress_ratios", "CF-7",
                formatv("entry {0}: ratio {1} belongs to V4.1 CSA2, which is "
                        "out of scope (V4-SPEC 8.10)",
                        i, ratio));
      else if (ratio < 0 || ratio > c.maxPositionEmbeddings)
        r.error("compress_ratios", "CF-8",
                formatv("entry {0}: expected 0 (SWA), 4 (CSA) or a ratio in "
                        "[3, max_position_embeddings], got {1}",
                        i, ratio));
    }
    if (c.numHeads % c.oGroups)
      r.error("o_groups", "CF-6",
              formatv("num_attention_heads ({0}) must be divisible by "
                      "o_groups ({1})",
                      c.numHeads, c.oGroups));
    if (c.ropeHeadDim > c.headDim || c.ropeHeadDim % 2)
      r.error("qk_rope_head_dim", "CF-6",
              formatv("expected an even value <= head_dim ({0}), got {1}",
                      c.headDim, c.ropeHeadDim));
    if ((c.headDim - c.ropeHeadDim) % 64)
      r.error("head_dim", "CF-6",
              formatv("head_dim - qk_rope_head_dim ({0}) must be a multiple "
                      "of 64, the FP8 fake-quant block (V4-SPEC 2.3)",
                      c.headDim - c.ropeHeadDim));
    if (c.ropeHeadDim > c.indexHeadDim)
      r.error("index_head_dim", "CF-6",
              formatv("expected >= qk_rope_head_dim ({0}), got {1}",
                      c.ropeHeadDim, c.indexHeadDim));
    if (c.indexHeadDim % 32 || (c.indexHeadDim & (c.indexHeadDim - 1)))
      r.error("index_head_dim", "CF-6",
              formatv("expected a power of two and a multiple of 32 "
                      "(Hadamard rotation, FP4 blocks), got {0}",
                      c.indexHeadDim));
    if (c.numExpertsPerTok > c.numRoutedExperts)
      r.error("num_experts_per_tok", "CF-6",
              formatv("top-k ({0}) exceeds n_routed_experts ({1})",
                      c.numExpertsPerTok, c.numRoutedExperts));
    if (c.numHashLayers > c.numLayers)
      r.error("num_hash_layers", "CF-6",
              formatv("exceeds num_hidden_layers ({0})", c.numLayers));
    if (c.expertDtype == ExpertDtype::FP4 &&
        (c.hiddenSize % 32 || c.moeIntermediateSize % 32))
      r.error("expert_dtype", "CF-6",
              "FP4 experts need hidden_size and moe_intermediate_size to be "
              "multiples of 32");
    if (c.ropeScaling.factor != 1.0 &&
        c.ropeScaling.originalMaxPositionEmbeddings <= 0)
      r.error("rope_scaling", "CF-5",
              "original_max_position_embeddings must be > 0 with YaRN");
  }
  if (r.errors.empty())
    parseEngram(r, c);

  for (auto &kv : *root) {
    if (r.used.contains(kv.first) ||
        llvm::is_contained(kIgnoredKeys, StringRef(kv.first)))
      continue;
    if (warn)
      warn(formatv("{0}: warning: unknown key '{1}' ignored", path,
                   StringRef(kv.first)));
  }
  if (!r.errors.empty())
    return createStringError(inconvertibleErrorCode(),
                             llvm::join(r.errors, "\n"));
  return c;
}

Expected<ModelConfig> loadModelConfig(StringRef path,
                                      const ConfigWarningHandler &warn) {
  auto buf = MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buf)
    return createStringError(buf.getError(), "%s: cannot read: %s [CF-1]",
                             path.str().c_str(),
                             buf.getError().message().c_str());
  return parseModelConfig((*buf)->getBuffer(), path, warn);
}

} // namespace v4
