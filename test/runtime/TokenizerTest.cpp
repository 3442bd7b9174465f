//===- TokenizerTest.cpp - tokenizer, streaming decode, V4 chat -----------===//
//
// Encoding equals the goldens of an independent implementation
// (@huggingface/tokenizers, scripts/tokenizer-goldens.mjs) on 209 texts for
// DeepSeek's tokenizer and a trimmed o200k one; decode(encode(t)) == t;
// streaming decode prints the same text in complete characters; the V4
// chat encoding equals DeepSeek's reference encoder
// (scripts/chat-goldens.py); bad inputs give their TK rule.
//
//===----------------------------------------------------------------------===//
#include "runtime/tokenizer/Tokenizer.h"
#include "runtime/tokenizer/ChatEncoding.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cstddef>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <thread>

using namespace v4::tokenizer;
using json = nlohmann::json;

namespace {

const std::string kInputs = V4_TEST_SOURCE_DIR "/runtime/Inputs/tokenizer";
const std::string kDeepSeekDir = V4_SHARED_MODELS_DIR "/deepseek-v3-tokenizer";
const std::string kO200kDir =
    V4_TEST_SOURCE_DIR "/Inputs/tokenizers/o200k-trimmed";

std::string readText(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool exists(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

/// One tokenizer per directory, loaded once for the whole run.
const Tokenizer &loaded(const std::string &dir) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto &slot = cache[dir];
  if (!slot) {
    auto tok = Tokenizer::load(dir);
    EXPECT_TRUE(tok.ok()) << tok.status().message();
    if (tok)
      slot = tok.take();
  }
  return *slot;
}

struct GoldenParam {
  const char *name;
  std::string dir;
  std::string golden;
};
/// Readable parameter values in gtest output.
void PrintTo(const GoldenParam &p, std::ostream *os) {
  *os << p.name << " (" << p.dir << ")";
}

class TokenizerGolden : public ::testing::TestWithParam<GoldenParam> {};

TEST_P(TokenizerGolden, EncodeDecodeStream) {
  const GoldenParam &p = GetParam();
  if (!exists(p.dir + "/tokenizer.json"))
    GTEST_SKIP() << p.dir << "/tokenizer.json is not present";
  const Tokenizer &tok = loaded(p.dir);
  json golden = json::parse(readText(kInputs + "/" + p.golden));
  ASSERT_GE(golden["cases"].size(), 200u);
  size_t tokens = 0;
  for (const json &c : golden["cases"]) {
    std::string text = c["text"];
    std::vector<int32_t> expected = c["ids"].get<std::vector<int32_t>>();
    std::vector<int32_t> ids;
    v4::Status st = tok.encode(text, ids);
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_EQ(ids, expected) << "text: " << json(text).dump();
    tokens += ids.size();

    std::string back;
    ASSERT_TRUE(tok.decode(ids.data(), ids.size(), back).ok());
    EXPECT_EQ(back, text);

    // Streaming: every piece is complete UTF-8 and the pieces add up.
    StreamDecoder stream(tok);
    std::string streamed;
    for (int32_t id : ids) {
      std::string piece;
      ASSERT_TRUE(stream.push(id, piece).ok());
      EXPECT_EQ(findInvalidUtf8(piece), std::string::npos)
          << "text: " << json(text).dump();
      streamed += piece;
    }
    EXPECT_EQ(stream.pendingBytes(), 0u);
    stream.finish(streamed);
    EXPECT_EQ(streamed, text);
  }
  EXPECT_GT(tokens, 1000u);
}

INSTANTIATE_TEST_SUITE_P(
    Tokenizers, TokenizerGolden,
    ::testing::Values(
        GoldenParam{"DeepSeekV3", kDeepSeekDir, "deepseek-v3.golden.json"},
        GoldenParam{"O200kTrimmed", kO200kDir, "o200k-trimmed.golden.json"}),
    [](const ::testing::TestParamInfo<GoldenParam> &info) {
      return std::string(info.param.name);
    });

TEST(Tokenizer, DeepSeekSpecialTokensAndBos) {
  if (!exists(kDeepSeekDir + "/tokenizer.json"))
    GTEST_SKIP() << kDeepSeekDir << " is not present";
  const Tokenizer &tok = loaded(kDeepSeekDir);
  EXPECT_EQ(tok.bosId(), 0);
  EXPECT_EQ(tok.eosId(), 1);
  EXPECT_EQ(tok.tokenId("<｜User｜>"), 128803);
  EXPECT_TRUE(tok.isSpecial(1));
  EXPECT_EQ(tok.vocabSize(), 128815);
  std::vector<int32_t> ids;
  ASSERT_TRUE(tok.encode("Hello world", ids).ok());
  EXPECT_EQ(ids, (std::vector<int32_t>{19923, 2058}));
}

//===----------------------------------------------------------------------===//
// Streaming
//===----------------------------------------------------------------------===//

TEST(StreamDecoder, HoldsIncompleteCharacters) {
  const Tokenizer &tok = loaded(kO200kDir);
  // "😀" is F0 9F 98 80: push it as four single-byte tokens.
  const std::string emoji = "\xF0\x9F\x98\x80";
  StreamDecoder stream(tok);
  std::string out;
  for (size_t i = 0; i < emoji.size(); ++i) {
    int32_t id = -1;
    for (int32_t cand = 0; cand < tok.vocabSize(); ++cand) {
      const std::string *b = tok.tokenBytes(cand);
      if (b && *b == emoji.substr(i, 1)) {
        id = cand;
        break;
      }
    }
    ASSERT_GE(id, 0);
    ASSERT_TRUE(stream.push(id, out).ok());
    if (i + 1 < emoji.size()) {
      EXPECT_EQ(out, "") << "after byte " << i;
      EXPECT_EQ(stream.pendingBytes(), i + 1);
    }
  }
  EXPECT_EQ(out, emoji);
  // An unfinished character at the end becomes U+FFFD.
  std::string tail;
  int32_t lead = -1;
  for (int32_t cand = 0; cand < tok.vocabSize(); ++cand) {
    const std::string *b = tok.tokenBytes(cand);
    if (b && *b == "\xE4") {
      lead = cand;
      break;
    }
  }
  ASSERT_GE(lead, 0);
  ASSERT_TRUE(stream.push(lead, tail).ok());
  EXPECT_EQ(tail, "");
  stream.finish(tail);
  EXPECT_EQ(tail, "\xEF\xBF\xBD");
}

TEST(Utf8, LossyMaximalSubparts) {
  std::string out;
  // Invalid lead, truncated 3-byte sequence, surrogate, valid tail.
  appendLossyUtf8("a\xFF"
                  "b\xE4\xB8"
                  "c\xED\xA0\x80"
                  "d",
                  true, out);
  EXPECT_EQ(out, "a\xEF\xBF\xBD"
                 "b\xEF\xBF\xBD"
                 "c\xEF\xBF\xBD\xEF\xBF\xBD"
                 "\xEF\xBF\xBD"
                 "d");
  std::string partial;
  EXPECT_EQ(appendLossyUtf8("ok\xE4\xB8", false, partial), 2u);
  EXPECT_EQ(partial, "ok");
}

//===----------------------------------------------------------------------===//
// Bad input
//===----------------------------------------------------------------------===//

json o200kJson() {
  return json::parse(readText(kO200kDir + "/tokenizer.json"));
}

std::string ruleOf(const json &j) {
  auto tok = Tokenizer::parse(j.dump(), "test.json");
  return tok.ok() ? "ok" : tok.status().rule();
}

TEST(TokenizerBadInput, MalformedJsonNamesLineAndColumn) {
  auto tok = Tokenizer::parse("{\n  \"model\": {,\n}", "bad.json");
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().rule(), "TK-1");
  EXPECT_NE(tok.status().message().find("bad.json:2:"), std::string::npos)
      << tok.status().message();
}

// Issue 16: 50,000 nested arrays are refused on the text, before any
// parse builds (or recurses through) a DOM; 64 levels still parse.
TEST(TokenizerBadInput, DeepNestingIsRefusedBeforeParsing) {
  std::string deep =
      "{\"model\": " + std::string(50000, '[') + std::string(50000, ']') + "}";
  auto tok = Tokenizer::parse(deep, "deep.json");
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().rule(), "TK-1");
  EXPECT_NE(tok.status().message().find("deep.json:1:74: JSON nests deeper "
                                        "than 64 levels"),
            std::string::npos)
      << tok.status().message();

  // Brackets inside strings do not count; 64 levels reach the schema check.
  std::string ok =
      "{\"x\": \"[[[[\\\"{{{{\", \"model\": " + std::string(63, '[') +
      std::string(63, ']') + "}";
  tok = Tokenizer::parse(ok, "ok.json");
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().rule(), "TK-2") << tok.status().message();
}

TEST(TokenizerBadInput, MissingFile) {
  auto tok = Tokenizer::load("/nonexistent/dir/tokenizer.json");
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().rule(), "TK-1");
  EXPECT_EQ(tok.status().code(), v4::StatusCode::NotFound);
}

TEST(TokenizerBadInput, UnsupportedComponentsAreNamed) {
  json j = o200kJson();
  j["normalizer"] = {{"type", "NFC"}};
  auto tok = Tokenizer::parse(j.dump(), "test.json");
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().rule(), "TK-2");
  EXPECT_NE(tok.status().message().find("'NFC'"), std::string::npos);

  j = o200kJson();
  j["pre_tokenizer"]["pretokenizers"][0] = {{"type", "Metaspace"}};
  EXPECT_EQ(ruleOf(j), "TK-2");
  j = o200kJson();
  j["model"]["type"] = "WordPiece";
  EXPECT_EQ(ruleOf(j), "TK-2");
  j = o200kJson();
  j["decoder"] = {{"type", "WordPiece"}};
  EXPECT_EQ(ruleOf(j), "TK-2");
  j = o200kJson();
  j["added_tokens"][0]["lstrip"] = true;
  EXPECT_EQ(ruleOf(j), "TK-2");
  j = o200kJson();
  j["pre_tokenizer"] = nullptr;
  EXPECT_EQ(ruleOf(j), "TK-2");
}

TEST(TokenizerBadInput, VocabMergesAddedTokensPatterns) {
  json j = o200kJson();
  j["model"]["vocab"]["zzz-dup"] = 5;
  EXPECT_EQ(ruleOf(j), "TK-3");
  j = o200kJson();
  j["model"]["vocab"]["neg"] = -1;
  EXPECT_EQ(ruleOf(j), "TK-3");
  j = o200kJson();
  j["model"]["merges"].push_back("nothere alsonot");
  EXPECT_EQ(ruleOf(j), "TK-4");
  j = o200kJson();
  j["model"]["merges"].push_back("onlyone");
  EXPECT_EQ(ruleOf(j), "TK-4");
  j = o200kJson();
  j["added_tokens"][0]["content"] = "";
  EXPECT_EQ(ruleOf(j), "TK-5");
  j = o200kJson();
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
  auto tok = Tokenizer::parse(j.dump(), "test.json");
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().rule(), "TK-6");
  EXPECT_NE(tok.status().message().find("(unclosed"), std::string::npos);
}

// fuzz-tokenizer (issue 16): one vocab id of 55,555,553 in a 1.4 KB file
// sized the dense id tables at 1.8 GB. The id space may hold at most as many
// holes as tokens (+1,024), in the vocab and in the added tokens; a few
// holes are fine.
TEST(TokenizerBadInput, SparseIdsAreRefusedBeforeTheTablesAreSized) {
  json j = o200kJson();
  size_t tokens = j["model"]["vocab"].size();
  j["model"]["vocab"]["far"] = 55555553;
  auto tok = Tokenizer::parse(j.dump(), "test.json");
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().rule(), "TK-3");
  EXPECT_NE(tok.status().message().find("$.model.vocab: id 55555553 with " +
                                        std::to_string(tokens + 1) + " tokens"),
            std::string::npos)
      << tok.status().message();

  j = o200kJson();
  j["added_tokens"].push_back({{"id", 1 << 30}, {"content", "<far>"}});
  tok = Tokenizer::parse(j.dump(), "test.json");
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().rule(), "TK-5");
  EXPECT_NE(tok.status().message().find("leaves the id space mostly empty"),
            std::string::npos)
      << tok.status().message();

  j = o200kJson();
  j["added_tokens"].push_back(
      {{"id", int64_t(tokens) + 1000}, {"content", "<near>"}});
  tok = Tokenizer::parse(j.dump(), "test.json");
  ASSERT_TRUE(tok.ok()) << tok.status().message();
}

TEST(TokenizerBadInput, InvalidUtf8AndIdsOutsideTheVocabulary) {
  const Tokenizer &tok = loaded(kO200kDir);
  std::vector<int32_t> ids;
  v4::Status st = tok.encode("ok\xC3(", ids);
  EXPECT_EQ(st.rule(), "TK-7");
  EXPECT_NE(st.message().find("byte 2"), std::string::npos) << st.message();

  std::string text;
  int32_t bad[] = {1, static_cast<int32_t>(tok.vocabSize()), 2};
  st = tok.decode(bad, 3, text);
  EXPECT_EQ(st.rule(), "TK-8");
  EXPECT_EQ(st.code(), v4::StatusCode::OutOfRange);
  int32_t negative = -3;
  EXPECT_EQ(tok.decode(&negative, 1, text).rule(), "TK-8");
  StreamDecoder stream(tok);
  EXPECT_EQ(stream.push(1 << 30, text).rule(), "TK-8");
}

TEST(TokenizerBadInput, LongWhitespaceRunsStillMatch) {
  const Tokenizer &tok = loaded(kO200kDir);
  std::string text = std::string(200000, ' ') + "x" + std::string(1000, '\n');
  std::vector<int32_t> ids;
  v4::Status st = tok.encode(text, ids);
  ASSERT_TRUE(st.ok()) << st.message();
  std::string back;
  ASSERT_TRUE(tok.decode(ids.data(), ids.size(), back).ok());
  EXPECT_EQ(back, text);
}

//===----------------------------------------------------------------------===//
// V4 chat encoding
//===----------------------------------------------------------------------===//

TEST(V4Chat, MatchesTheReferenceEncoder) {
  json golden = json::parse(readText(kInputs + "/v4-chat.golden.json"));
  size_t n = 0;
  for (const json &c : golden["cases"]) {
    std::vector<ChatMessage> messages;
    for (const json &m : c["messages"]) {
      ChatMessage msg{m["role"], m["content"], std::nullopt};
      if (m.contains("reasoning_content"))
        msg.reasoning = m["reasoning_content"].get<std::string>();
      messages.push_back(msg);
    }
    ChatOptions options;
    const json &o = c["options"];
    options.thinking = o["thinking"];
    options.dropThinking = o["drop_thinking"];
    options.addBos = o["add_bos"];
    if (o["reasoning_effort"].is_string())
      options.reasoningEffort = o["reasoning_effort"];
    auto prompt = encodeV4Chat(messages, options);
    ASSERT_TRUE(prompt.ok()) << prompt.status().message();
    EXPECT_EQ(*prompt, c["prompt"].get<std::string>())
        << c["name"] << " " << o.dump();
    ++n;
  }
  EXPECT_EQ(n, 50u);
}

TEST(V4Chat, RefusesWhatItDoesNotEncode) {
  auto tool = encodeV4Chat({{"tool", "result", std::nullopt}}, ChatOptions());
  EXPECT_EQ(tool.status().rule(), "TK-11");
  ChatOptions effort;
  effort.reasoningEffort = "extreme";
  EXPECT_EQ(encodeV4Chat({{"user", "x", std::nullopt}}, effort).status().rule(),
            "TK-11");
}

TEST(V4Chat, TokenizesWithSpecialTokens) {
  if (!exists(kDeepSeekDir + "/tokenizer.json"))
    GTEST_SKIP() << kDeepSeekDir << " is not present";
  const Tokenizer &tok = loaded(kDeepSeekDir);
  auto prompt = encodeV4Chat({{"user", "Hi", std::nullopt}}, ChatOptions());
  ASSERT_TRUE(prompt.ok());
  std::vector<int32_t> ids;
  ASSERT_TRUE(tok.encode(*prompt, ids).ok());
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ(ids[0], 0);      // BOS
  EXPECT_EQ(ids[1], 128803); // <｜User｜>
  EXPECT_EQ(ids[3], 128804); // <｜Assistant｜>
}

} // namespace

//===----------------------------------------------------------------------===//
// C API
//===----------------------------------------------------------------------===//

#include "test/lib/RunOnThreads.h"
#include "v4rt/v4rt.h"

namespace {

TEST(TokenizerCApi, HandlesAreRetainedAndReleasedSymmetrically) {
  v4rt_tokenizer_t *tok = nullptr;
  ASSERT_EQ(v4rt_tokenizer_load(kO200kDir.c_str(), &tok), nullptr);
  v4rt_detokenizer_t *stream = nullptr;
  ASSERT_EQ(v4rt_detokenizer_create(tok, &stream), nullptr);
  // Threads retain and release both at once; each keeps one reference.
  v4::test::runOnThreads(8, 20000, [&] {
    v4rt_tokenizer_retain(tok);
    v4rt_detokenizer_retain(stream);
    v4rt_tokenizer_release(tok);
    v4rt_detokenizer_release(stream);
  });
  v4rt_detokenizer_retain(stream);
  v4rt_detokenizer_release(stream); // one reference left: still usable
  v4rt_tokenizer_release(tok);      // the detokenizer holds it now
  const char *piece = nullptr;
  size_t n = 0;
  int32_t h = -1;
  v4rt_tokenizer_info_t info;
  info.struct_size = offsetof(v4rt_tokenizer_info_t, eos_id); // too short
  v4rt_status_t s = v4rt_tokenizer_info(tok, &info);
  EXPECT_EQ(v4rt_status_code(s), V4RT_INVALID_ARGUMENT);
  v4rt_status_free(s);
  ASSERT_EQ(v4rt_tokenizer_token_id(tok, "H", &h), nullptr);
  ASSERT_EQ(v4rt_detokenizer_push(stream, h, &piece, &n), nullptr);
  EXPECT_EQ(std::string(piece, n), "H");
  v4rt_detokenizer_release(stream); // frees it, then the tokenizer
}

TEST(TokenizerCApi, EncodeDecodeStreamChat) {
  v4rt_tokenizer_t *tok = nullptr;
  ASSERT_EQ(v4rt_tokenizer_load(kO200kDir.c_str(), &tok), nullptr);
  v4rt_tokenizer_info_t info;
  info.struct_size = sizeof info;
  ASSERT_EQ(v4rt_tokenizer_info(tok, &info), nullptr);
  EXPECT_EQ(info.struct_size, sizeof info);
  EXPECT_EQ(info.vocab_size, 12258);
  EXPECT_EQ(info.bos_id, 12256);
  EXPECT_EQ(info.eos_id, 12256);

  const std::string text = "Hello world 你好";
  size_t count = 0;
  v4rt_status_t s =
      v4rt_tokenizer_encode(tok, text.data(), text.size(), nullptr, 0, &count);
  ASSERT_EQ(v4rt_status_code(s), V4RT_OUT_OF_RANGE);
  v4rt_status_free(s);
  std::vector<int32_t> ids(count);
  ASSERT_EQ(v4rt_tokenizer_encode(tok, text.data(), text.size(), ids.data(),
                                  ids.size(), &count),
            nullptr);

  std::string back(text.size(), '\0');
  size_t length = 0;
  ASSERT_EQ(v4rt_tokenizer_decode(tok, ids.data(), ids.size(), back.data(),
                                  back.size(), &length),
            nullptr);
  EXPECT_EQ(back.substr(0, length), text);

  int32_t eot = -1;
  ASSERT_EQ(v4rt_tokenizer_token_id(tok, "<|endoftext|>", &eot), nullptr);
  EXPECT_EQ(eot, 12256);
  s = v4rt_tokenizer_token_id(tok, "<|nope|>", &eot);
  EXPECT_EQ(v4rt_status_code(s), V4RT_NOT_FOUND);
  v4rt_status_free(s);

  v4rt_detokenizer_t *stream = nullptr;
  ASSERT_EQ(v4rt_detokenizer_create(tok, &stream), nullptr);
  v4rt_tokenizer_release(tok); // the detokenizer keeps it alive
  std::string streamed;
  for (int32_t id : ids) {
    const char *piece = nullptr;
    size_t n = 0;
    ASSERT_EQ(v4rt_detokenizer_push(stream, id, &piece, &n), nullptr);
    streamed.append(piece, n);
  }
  const char *rest = nullptr;
  size_t restLength = 0;
  ASSERT_EQ(v4rt_detokenizer_finish(stream, &rest, &restLength), nullptr);
  EXPECT_EQ(restLength, 0u);
  EXPECT_EQ(streamed, text);
  const char *piece = nullptr;
  size_t n = 0;
  s = v4rt_detokenizer_push(stream, 1 << 30, &piece, &n);
  EXPECT_EQ(v4rt_status_code(s), V4RT_OUT_OF_RANGE);
  v4rt_status_free(s);
  v4rt_detokenizer_release(stream);

  v4rt_chat_message_t messages[] = {{"system", "Be brief.", nullptr},
                                    {"user", "Hi", nullptr}};
  v4rt_chat_options_t options;
  v4rt_chat_options_initialize(&options);
  options.thinking = 1;
  char prompt[256];
  ASSERT_EQ(v4rt_chat_encode_v4(messages, 2, &options, prompt, sizeof(prompt),
                                &length),
            nullptr);
  EXPECT_EQ(
      std::string(prompt, length),
      "<｜begin▁of▁sentence｜>Be brief.<｜User｜>Hi<｜Assistant｜><think>");
  v4rt_chat_message_t tool[] = {{"tool", "x", nullptr}};
  s = v4rt_chat_encode_v4(tool, 1, &options, prompt, sizeof(prompt), &length);
  EXPECT_EQ(v4rt_status_code(s), V4RT_INVALID_ARGUMENT);
  v4rt_status_free(s);

  s = v4rt_tokenizer_load("/nonexistent", &tok);
  EXPECT_EQ(v4rt_status_code(s), V4RT_NOT_FOUND);
  v4rt_status_free(s);
}

} // namespace

//===----------------------------------------------------------------------===//
// Split behaviors and the ByteLevel step
//===----------------------------------------------------------------------===//

namespace {

/// o200k-trimmed with its pre-tokenizer replaced by `pre`.
std::unique_ptr<Tokenizer> withPreTokenizer(const json &pre) {
  json j = o200kJson();
  j["pre_tokenizer"] = pre;
  auto tok = Tokenizer::parse(j.dump(), "test.json");
  EXPECT_TRUE(tok.ok()) << tok.status().message();
  return tok ? tok.take() : nullptr;
}

const json kByteLevelOnly = {
    {"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};

/// The ids of `pieces` each encoded alone without any split: what a
/// pre-tokenizer that produces exactly these pieces must give.
std::vector<int32_t> piecesIds(const std::vector<std::string> &pieces) {
  static std::unique_ptr<Tokenizer> plain = withPreTokenizer(kByteLevelOnly);
  std::vector<int32_t> ids;
  for (const std::string &p : pieces)
    EXPECT_TRUE(plain->encode(p, ids).ok());
  return ids;
}

std::vector<int32_t> encodeWith(const Tokenizer &tok, const std::string &t) {
  std::vector<int32_t> ids;
  EXPECT_TRUE(tok.encode(t, ids).ok());
  return ids;
}

json splitOn(const char *kind, const char *pattern, const char *behavior,
             bool invert = false) {
  return {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"},
             {"pattern", {{kind, pattern}}},
             {"behavior", behavior},
             {"invert", invert}},
            kByteLevelOnly}}};
}

TEST(TokenizerSplit, EveryBehaviorAsTheReferenceDefinesIt) {
  const std::string text = "ab  cd e";
  struct Case {
    const char *behavior;
    bool invert;
    std::vector<std::string> pieces;
  } cases[] = {
      {"Removed", false, {"ab", "cd", "e"}},
      {"Isolated", false, {"ab", " ", " ", "cd", " ", "e"}},
      {"MergedWithPrevious", false, {"ab ", " ", "cd ", "e"}},
      {"MergedWithNext", false, {"ab", " ", " cd", " e"}},
      {"Contiguous", false, {"ab", "  ", "cd", " ", "e"}},
      // invert: the matches are the pieces, the spaces the delimiters.
      {"Removed", true, {" ", " ", " "}},
      {"Isolated", true, {"ab", " ", " ", "cd", " ", "e"}},
  };
  for (const Case &c : cases) {
    auto tok = withPreTokenizer(splitOn("String", " ", c.behavior, c.invert));
    ASSERT_TRUE(tok);
    EXPECT_EQ(encodeWith(*tok, text), piecesIds(c.pieces))
        << c.behavior << (c.invert ? " inverted" : "");
  }
  // A regex pattern with Unicode properties and look-ahead.
  auto tok =
      withPreTokenizer(splitOn("Regex", "\\s+(?!\\S)|\\p{L}+", "Isolated"));
  EXPECT_EQ(encodeWith(*tok, "ab   cd"), piecesIds({"ab", "  ", " ", "cd"}));
  // A String pattern is literal, never a regex.
  tok = withPreTokenizer(splitOn("String", ".", "Isolated"));
  EXPECT_EQ(encodeWith(*tok, "a.b"), piecesIds({"a", ".", "b"}));
}

TEST(TokenizerSplit, ByteLevelRegexAndPrefixSpace) {
  auto tok = withPreTokenizer(
      {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}});
  ASSERT_TRUE(tok);
  // GPT-2's pattern: contractions, letters, numbers, punctuation, spaces;
  // the prefix space goes before the first piece.
  EXPECT_EQ(encodeWith(*tok, "Don't 42!"),
            piecesIds({" Don", "'t", " 42", "!"}));
}

TEST(Tokenizer, EncodesFromManyThreadsAtOnce) {
  const Tokenizer &tok = loaded(kO200kDir);
  json golden = json::parse(readText(kInputs + "/o200k-trimmed.golden.json"));
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (const json &c : golden["cases"]) {
        std::vector<int32_t> ids;
        if (!tok.encode(c["text"].get<std::string>(), ids).ok() ||
            ids != c["ids"].get<std::vector<int32_t>>())
          ++mismatches;
      }
    });
  for (std::thread &t : threads)
    t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

} // namespace
