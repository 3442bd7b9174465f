//===- Tokenizer.cpp - byte-level BPE tokenizer.json reader ---------------===//
//
// The pipeline of Hugging Face `tokenizers` for the byte-level BPE family:
// added tokens split off first (leftmost-longest), then per remaining piece
// the Split pre-tokenizers (PCRE2 with UTF and Unicode properties, each
// pattern run on one piece at a time so look-ahead never sees past it), the
// ByteLevel step, and BPE merges by rank (lowest rank first, leftmost on
// ties). Decoding maps the byte-level characters back to bytes.
//
// JSON_NOEXCEPTION: only non-throwing nlohmann entry points are used.
//
//===----------------------------------------------------------------------===//
#include "runtime/tokenizer/Tokenizer.h"

#include "runtime/base/JsonText.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <queue>
#include <sys/stat.h>
#include <unordered_map>

namespace v4::tokenizer {

using json = nlohmann::json;

namespace {

constexpr uint64_t kMaxFileBytes = 512ull << 20;
/// TK-1: deepest accepted JSON nesting. A real tokenizer.json nests 5
/// levels; the DOM parser and the code walking it must not meet 50,000.
constexpr unsigned kMaxJsonDepth = 64;

//===----------------------------------------------------------------------===//
// UTF-8
//===----------------------------------------------------------------------===//

enum class Utf8Kind { Valid, Invalid, Incomplete };

/// Classifies the character at p[0..n): its length when valid, the length
/// of the maximal invalid subpart, or Incomplete when the bytes so far are a
/// valid prefix that runs out.
Utf8Kind utf8Step(const unsigned char *p, size_t n, size_t &len) {
  unsigned char c = p[0];
  if (c < 0x80) {
    len = 1;
    return Utf8Kind::Valid;
  }
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 3;
    if (c == 0xE0)
      lo = 0xA0;
    else if (c == 0xED)
      hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 4;
    if (c == 0xF0)
      lo = 0x90;
    else if (c == 0xF4)
      hi = 0x8F;
  } else {
    len = 1;
    return Utf8Kind::Invalid;
  }
  for (size_t i = 1; i < need; ++i) {
    if (i >= n) {
      len = i;
      return Utf8Kind::Incomplete;
    }
    unsigned char b = p[i];
    if (b < lo || b > hi) {
      len = i;
      return Utf8Kind::Invalid;
    }
    lo = 0x80;
    hi = 0xBF;
  }
  len = need;
  return Utf8Kind::Valid;
}

void appendUtf8(uint32_t cp, std::string &out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

/// Decodes valid UTF-8 into code points (the input was checked).
void toCodePoints(std::string_view s, std::vector<uint32_t> &out) {
  const auto *p = reinterpret_cast<const unsigned char *>(s.data());
  size_t i = 0, n = s.size();
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      out.push_back(c);
      ++i;
    } else if (c < 0xE0) {
      out.push_back(((c & 0x1F) << 6) | (p[i + 1] & 0x3F));
      i += 2;
    } else if (c < 0xF0) {
      out.push_back(((c & 0x0F) << 12) | ((p[i + 1] & 0x3F) << 6) |
                    (p[i + 2] & 0x3F));
      i += 3;
    } else {
      out.push_back(((c & 0x07) << 18) | ((p[i + 1] & 0x3F) << 12) |
                    ((p[i + 2] & 0x3F) << 6) | (p[i + 3] & 0x3F));
      i += 4;
    }
  }
}

std::string quote(std::string_view s) {
  std::string out = "'";
  out.append(s.data(), s.size());
  out += "'";
  return out;
}

//===----------------------------------------------------------------------===//
// GPT-2 byte <-> character map
//===----------------------------------------------------------------------===//

/// bytes_to_unicode of GPT-2: printable bytes map to themselves, the others
/// to U+0100 + n in byte order.
std::array<uint32_t, 256> byteToChar() {
  std::array<uint32_t, 256> map{};
  uint32_t n = 0;
  for (uint32_t b = 0; b < 256; ++b) {
    bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) ||
                     (b >= 174 && b <= 255);
    map[b] = printable ? b : 256 + n++;
  }
  return map;
}

//===----------------------------------------------------------------------===//
// PCRE2 patterns
//===----------------------------------------------------------------------===//

/// Per-call match state: match data, context and a JIT stack (PCRE2 objects
/// are not shared between threads).
class MatchScratch {
public:
  MatchScratch() {
    data = pcre2_match_data_create(16, nullptr);
    context = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
    if (context && stack)
      pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~MatchScratch() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
  MatchScratch(const MatchScratch &) = delete;
  MatchScratch &operator=(const MatchScratch &) = delete;
  bool ok() const { return data && context; }

  pcre2_match_data *data = nullptr;
  pcre2_match_context *context = nullptr;
  pcre2_jit_stack *stack = nullptr;
};

std::string pcre2Message(int code) {
  PCRE2_UCHAR buffer[256];
  if (pcre2_get_error_message(code, buffer, sizeof(buffer)) < 0)
    return "PCRE2 error " + std::to_string(code);
  return reinterpret_cast<const char *>(buffer);
}

class Regex {
public:
  ~Regex() { pcre2_code_free(code); }

  /// Compiles `pattern`, a regex or (literal) a plain string.
  static Expected<std::unique_ptr<Regex>>
  compile(const std::string &pattern, bool literal, const std::string &where) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    uint32_t options = PCRE2_UTF | PCRE2_NO_UTF_CHECK;
    options |= literal ? PCRE2_LITERAL : PCRE2_UCP;
    pcre2_code *code =
        pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()),
                      pattern.size(), options, &error, &offset, nullptr);
    if (!code)
      return Status::error("TK-6", where + ": pattern " + quote(pattern) +
                                       " does not compile at offset " +
                                       std::to_string(offset) + ": " +
                                       pcre2Message(error));
    // Without JIT (not built in) PCRE2 interprets; both give the same matches.
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    auto regex = std::unique_ptr<Regex>(new Regex());
    regex->code = code;
    regex->pattern = pattern;
    return regex;
  }

  /// Appends the [begin, end) of every non-empty match in `s` to `out`.
  Status findAll(std::string_view s, MatchScratch &scratch,
                 std::vector<std::pair<size_t, size_t>> &out) const {
    auto subject = reinterpret_cast<PCRE2_SPTR>(s.data());
    size_t offset = 0;
    while (offset < s.size()) {
      int rc = pcre2_match(code, subject, s.size(), offset, PCRE2_NO_UTF_CHECK,
                           scratch.data, scratch.context);
      if (rc == PCRE2_ERROR_NOMATCH)
        break;
      if (rc < 0)
        return Status::error(StatusCode::ResourceExhausted, "TK-10",
                             "matching pattern " + quote(pattern) +
                                 " at byte " + std::to_string(offset) +
                                 " failed: " + pcre2Message(rc));
      PCRE2_SIZE *ovector = pcre2_get_ovector_pointer(scratch.data);
      size_t begin = ovector[0], end = ovector[1];
      if (end > begin) {
        out.emplace_back(begin, end);
        offset = end;
      } else {
        // An empty match: step over one character.
        size_t len = 1;
        const auto *p = reinterpret_cast<const unsigned char *>(s.data());
        (void)utf8Step(p + begin, s.size() - begin, len);
        offset = begin + std::max<size_t>(len, 1);
      }
    }
    return Status::success();
  }

private:
  Regex() = default;
  pcre2_code *code = nullptr;
  std::string pattern;
};

/// The ByteLevel pre-tokenizer's own pattern (use_regex), GPT-2's.
const char *kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|"
    "\\s+(?!\\S)|\\s+";

enum class Behavior {
  Removed,
  Isolated,
  MergedWithPrevious,
  MergedWithNext,
  Contiguous
};

struct SplitStep {
  std::unique_ptr<Regex> regex;
  Behavior behavior = Behavior::Isolated;
  bool invert = false;
};

using Span = std::pair<size_t, size_t>;

/// HF's NormalizedString::split: matches become delimiter segments, then
/// the behavior decides which segments survive or merge. Empty segments are
/// dropped. Offsets are relative to `s`.
Status applySplit(const SplitStep &step, std::string_view s,
                  MatchScratch &scratch, std::vector<Span> &matches,
                  std::vector<std::pair<Span, bool>> &segments,
                  std::vector<Span> &out) {
  matches.clear();
  if (Status st = step.regex->findAll(s, scratch, matches); !st)
    return st;
  segments.clear();
  size_t prev = 0;
  for (const Span &m : matches) {
    if (m.first != prev)
      segments.push_back({{prev, m.first}, step.invert});
    segments.push_back({m, !step.invert});
    prev = m.second;
  }
  if (prev != s.size())
    segments.push_back({{prev, s.size()}, step.invert});

  auto emit = [&](Span span) {
    if (span.second > span.first)
      out.push_back(span);
  };
  switch (step.behavior) {
  case Behavior::Removed:
    for (auto &[span, isMatch] : segments)
      if (!isMatch)
        emit(span);
    break;
  case Behavior::Isolated:
    for (auto &[span, isMatch] : segments)
      emit(span);
    break;
  case Behavior::MergedWithPrevious:
  case Behavior::Contiguous: {
    // A delimiter joins the segment before it; Contiguous joins every run
    // of segments of one kind.
    bool contiguous = step.behavior == Behavior::Contiguous;
    std::vector<Span> acc;
    bool previousMatch = false;
    for (auto &[span, isMatch] : segments) {
      bool join =
          contiguous ? isMatch == previousMatch : isMatch && !previousMatch;
      if (join && !acc.empty())
        acc.back().second = span.second;
      else
        acc.push_back(span);
      previousMatch = isMatch;
    }
    for (Span sp : acc)
      emit(sp);
    break;
  }
  case Behavior::MergedWithNext: {
    std::vector<Span> acc;
    bool previousMatch = false;
    for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
      if (it->second && !previousMatch && !acc.empty())
        acc.back().first = it->first.first;
      else
        acc.push_back(it->first);
      previousMatch = it->second;
    }
    for (auto it = acc.rbegin(); it != acc.rend(); ++it)
      emit(*it);
    break;
  }
  }
  return Status::success();
}

//===----------------------------------------------------------------------===//
// Added tokens: a byte trie, leftmost-longest
//===----------------------------------------------------------------------===//

class AddedTokenMatcher {
public:
  void add(const std::string &content, int32_t id) {
    size_t node = 0;
    for (unsigned char c : content) {
      auto it = nodes[node].next.find(c);
      if (it == nodes[node].next.end()) {
        nodes.emplace_back();
        nodes[node].next.emplace(c, nodes.size() - 1);
        node = nodes.size() - 1;
      } else {
        node = it->second;
      }
    }
    nodes[node].id = id;
    firstBytes[static_cast<unsigned char>(content[0])] = true;
    empty = false;
  }

  /// The longest token starting at s[pos]: its length and id, or 0.
  size_t longestAt(std::string_view s, size_t pos, int32_t &id) const {
    if (!firstBytes[static_cast<unsigned char>(s[pos])])
      return 0;
    size_t node = 0, best = 0;
    for (size_t i = pos; i < s.size(); ++i) {
      auto it = nodes[node].next.find(static_cast<unsigned char>(s[i]));
      if (it == nodes[node].next.end())
        break;
      node = it->second;
      if (nodes[node].id >= 0) {
        best = i + 1 - pos;
        id = nodes[node].id;
      }
    }
    return best;
  }
  bool isEmpty() const { return empty; }

private:
  struct Node {
    std::unordered_map<unsigned char, size_t> next;
    int32_t id = -1;
  };
  std::vector<Node> nodes{1};
  std::array<bool, 256> firstBytes{};
  bool empty = true;
};

//===----------------------------------------------------------------------===//
// JSON helpers
//===----------------------------------------------------------------------===//

/// The byte offset of the first '[' or '{' (outside strings) that opens
/// level `maxDepth + 1`, or npos. Checked on the text before any parse.
size_t findTooDeep(std::string_view text, unsigned maxDepth) {
  JsonTextLimits limits;
  limits.maxDepth = maxDepth;
  return scanJsonText(text, limits).tooDeepAt;
}

/// "line:col" (1-based) of byte `pos` of `text`.
std::string lineColumn(std::string_view text, size_t pos) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < pos && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return std::to_string(line) + ":" + std::to_string(col);
}

/// Parses JSON text of at most kMaxJsonDepth levels; discarded (not
/// parsed) when deeper. BOS/EOS files are optional, so no error.
json parseBounded(std::string_view text) {
  if (findTooDeep(text, kMaxJsonDepth) != std::string_view::npos)
    return json(json::value_t::discarded);
  return json::parse(text.begin(), text.end(), nullptr,
                     /*allow_exceptions=*/false);
}

/// Records where a syntax error is (nlohmann's SAX interface).
struct SyntaxLocator : nlohmann::json_sax<json> {
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t &) override { return true; }
  bool string(string_t &) override { return true; }
  bool binary(binary_t &) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t &) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t pos, const std::string &,
                   const nlohmann::detail::exception &ex) override {
    position = pos;
    message = ex.what();
    size_t close = message.find("] ");
    if (message.rfind("[json.exception", 0) == 0 && close != std::string::npos)
      message.erase(0, close + 2);
    return false;
  }
  size_t position = 0;
  std::string message;
};

const char *typeName(const json &v) { return v.type_name(); }

/// A string member, or nullopt when absent/null; an error when another type.
bool optionalString(const json &object, const char *key,
                    std::optional<std::string> &out) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null())
    return true;
  if (!it->is_string())
    return false;
  out = it->get<std::string>();
  return true;
}

bool boolMember(const json &object, const char *key, bool fallback) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_boolean())
    return fallback;
  return it->get<bool>();
}

} // namespace

//===----------------------------------------------------------------------===//
// TokenizerImpl
//===----------------------------------------------------------------------===//

class TokenizerImpl {
public:
  std::string source;

  // Model.
  std::unordered_map<std::string, int32_t> vocab;
  std::vector<std::string> idToBytes; // decoded bytes per id
  std::vector<uint8_t> idKind;        // 0 hole, 1 model, 2 added, 3 special
  std::array<int32_t, 256> byteIds{};
  std::optional<int32_t> unkId;
  bool ignoreMerges = false;
  struct Merge {
    int32_t rank;
    int32_t id;
  };
  std::unordered_map<uint64_t, Merge> merges;

  // Pipeline.
  AddedTokenMatcher added;
  std::unordered_map<std::string, int32_t> addedIds;
  std::vector<SplitStep> splits;
  bool byteLevelSeen = false;
  bool byteLevelAddPrefixSpace = false;
  std::unique_ptr<Regex> byteLevelRegex; // use_regex

  std::optional<int32_t> bos, eos;

  // Word cache: BPE of a piece depends only on its bytes.
  mutable std::mutex cacheMutex;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;
  static constexpr size_t kCacheEntries = 1 << 16;
  static constexpr size_t kCacheWordBytes = 64;

  Status fail(const std::string &rule, const std::string &message) const {
    return Status::error(rule, source + ": " + message);
  }

  Status parse(const json &root);
  Status parseModel(const json &model);
  Status parseAddedTokens(const json &list);
  /// TK-3/TK-5: `id` keeps the dense id tables proportional to `tokens`.
  Status checkIdSpace(int64_t id, size_t tokens, const char *rule,
                      const std::string &where);
  /// A component: null (where allowed), a Sequence of components listed
  /// under `listKey`, or a leaf handed to `leaf` with its type.
  using Leaf = std::function<Status(const std::string &type, const json &node,
                                    const std::string &path, bool last)>;
  Status walkComponent(const json &node, const std::string &path,
                       const char *listKey, bool allowNull, const Leaf &leaf,
                       bool last = true);
  Status parseNormalizer(const std::string &type, const json &node,
                         const std::string &path, bool last);
  Status parsePreTokenizer(const std::string &type, const json &node,
                           const std::string &path, bool last);
  Status parseDecoder(const std::string &type, const json &node,
                      const std::string &path, bool last);
  Status parsePostProcessor(const std::string &type, const json &node,
                            const std::string &path, bool last);

  Status encode(std::string_view text, std::vector<int32_t> &ids) const;
  Status encodePiece(std::string_view piece, MatchScratch &scratch,
                     std::vector<int32_t> &ids) const;
  Status bpe(std::string_view bytes, std::vector<int32_t> &ids) const;
};

Status TokenizerImpl::parse(const json &root) {
  if (!root.is_object())
    return fail("TK-1", "expected a JSON object at the top level, found " +
                            std::string(typeName(root)));
  auto member = [&](const char *key) -> const json & {
    static const json null;
    auto it = root.find(key);
    return it == root.end() ? null : *it;
  };
  const json &model = member("model");
  if (!model.is_object())
    return fail("TK-2", "$.model: expected an object with a BPE model, found " +
                            std::string(typeName(model)));
  if (Status st = parseModel(model); !st)
    return st;
  using namespace std::placeholders;
  struct Component {
    const char *key, *listKey;
    bool allowNull;
    Leaf leaf;
  };
  const Component components[] = {
      {"normalizer", "normalizers", true,
       std::bind(&TokenizerImpl::parseNormalizer, this, _1, _2, _3, _4)},
      {"pre_tokenizer", "pretokenizers", true,
       std::bind(&TokenizerImpl::parsePreTokenizer, this, _1, _2, _3, _4)},
      {"decoder", "decoders", false,
       std::bind(&TokenizerImpl::parseDecoder, this, _1, _2, _3, _4)},
      {"post_processor", "processors", true,
       std::bind(&TokenizerImpl::parsePostProcessor, this, _1, _2, _3, _4)}};
  for (const Component &c : components)
    if (Status st = walkComponent(member(c.key), std::string("$.") + c.key,
                                  c.listKey, c.allowNull, c.leaf);
        !st)
      return st;
  if (!byteLevelSeen)
    return fail("TK-2", "$.pre_tokenizer: no ByteLevel step; only byte-level "
                        "BPE tokenizers are supported");
  const json &addedList = member("added_tokens");
  if (!addedList.is_null())
    if (Status st = parseAddedTokens(addedList); !st)
      return st;
  return Status::success();
}

Status TokenizerImpl::parseModel(const json &model) {
  std::optional<std::string> type;
  if (!optionalString(model, "type", type))
    return fail("TK-2", "$.model.type: expected a string");
  if (type && *type != "BPE")
    return fail("TK-2", "$.model.type: '" + *type +
                            "' is not supported (byte-level BPE only)");
  auto dropout = model.find("dropout");
  if (dropout != model.end() && !dropout->is_null() &&
      !(dropout->is_number() && dropout->get<double>() == 0.0))
    return fail("TK-2", "$.model.dropout: BPE dropout is not supported");
  if (boolMember(model, "byte_fallback", false))
    return fail("TK-2", "$.model.byte_fallback: true is not supported (a "
                        "byte-level BPE needs no byte fallback)");
  for (const char *affix :
       {"continuing_subword_prefix", "end_of_word_suffix"}) {
    std::optional<std::string> value;
    if (!optionalString(model, affix, value))
      return fail("TK-2", std::string("$.model.") + affix +
                              ": expected a string or null");
    if (value && !value->empty())
      return fail("TK-2", std::string("$.model.") + affix + ": '" + *value +
                              "' is not supported (only empty)");
  }
  ignoreMerges = boolMember(model, "ignore_merges", false);

  auto vocabIt = model.find("vocab");
  if (vocabIt == model.end() || !vocabIt->is_object())
    return fail("TK-3", "$.model.vocab: expected an object token -> id");
  int64_t maxId = -1;
  vocab.reserve(vocabIt->size());
  for (auto it = vocabIt->begin(); it != vocabIt->end(); ++it) {
    const json &v = it.value();
    if (!v.is_number_unsigned() || v.get<uint64_t>() > INT32_MAX)
      return fail("TK-3", "$.model.vocab[" + quote(it.key()) +
                              "]: expected an id in [0, 2^31), found " +
                              v.dump());
    vocab.emplace(it.key(), static_cast<int32_t>(v.get<uint64_t>()));
    maxId = std::max<int64_t>(maxId, v.get<uint64_t>());
  }
  if (Status s = checkIdSpace(maxId, vocab.size(), "TK-3", "$.model.vocab"); !s)
    return s;
  idToBytes.assign(static_cast<size_t>(maxId + 1), std::string());
  idKind.assign(static_cast<size_t>(maxId + 1), 0);

  // Decoded bytes per token: byte-level characters map back to bytes; a
  // token with any other character decodes to its own UTF-8 (as HF does).
  std::array<uint32_t, 256> b2c = byteToChar();
  std::unordered_map<uint32_t, uint8_t> c2b;
  for (unsigned b = 0; b < 256; ++b)
    c2b.emplace(b2c[b], static_cast<uint8_t>(b));
  std::vector<uint32_t> cps;
  for (const auto &[token, id] : vocab) {
    if (idKind[id] != 0)
      return fail("TK-3", "$.model.vocab: id " + std::to_string(id) +
                              " is used twice (" + quote(token) + " and " +
                              quote(idToBytes[id]) + ")");
    idKind[id] = 1;
    cps.clear();
    if (findInvalidUtf8(token) != std::string_view::npos)
      return fail("TK-3", "$.model.vocab: token of id " + std::to_string(id) +
                              " is not valid UTF-8");
    toCodePoints(token, cps);
    std::string bytes;
    bool mapped = true;
    for (uint32_t cp : cps) {
      auto m = c2b.find(cp);
      if (m == c2b.end()) {
        mapped = false;
        break;
      }
      bytes += static_cast<char>(m->second);
    }
    idToBytes[id] = mapped ? bytes : token;
  }
  for (unsigned b = 0; b < 256; ++b) {
    std::string ch;
    appendUtf8(b2c[b], ch);
    auto it = vocab.find(ch);
    byteIds[b] = it == vocab.end() ? -1 : it->second;
  }
  std::optional<std::string> unk;
  if (!optionalString(model, "unk_token", unk))
    return fail("TK-2", "$.model.unk_token: expected a string or null");
  if (unk) {
    auto it = vocab.find(*unk);
    if (it == vocab.end())
      return fail("TK-3",
                  "$.model.unk_token " + quote(*unk) + " is not in the vocab");
    unkId = it->second;
  }

  auto mergesIt = model.find("merges");
  if (mergesIt == model.end() || !mergesIt->is_array())
    return fail("TK-4", "$.model.merges: expected an array");
  merges.reserve(mergesIt->size());
  int32_t rank = 0;
  for (const json &m : *mergesIt) {
    std::string where = "$.model.merges[" + std::to_string(rank) + "]";
    std::string left, right;
    if (m.is_string()) {
      const std::string &s = m.get_ref<const std::string &>();
      size_t space = s.find(' ');
      if (space == std::string::npos ||
          s.find(' ', space + 1) != std::string::npos)
        return fail("TK-4", where + ": " + quote(s) +
                                " is not two tokens separated by one space");
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() &&
               m[1].is_string()) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      return fail("TK-4", where +
                              ": expected \"a b\" or [\"a\", \"b\"], found " +
                              m.dump());
    }
    auto l = vocab.find(left), r = vocab.find(right),
         lr = vocab.find(left + right);
    if (l == vocab.end() || r == vocab.end() || lr == vocab.end())
      return fail("TK-4", where + ": " +
                              quote(l == vocab.end()   ? left
                                    : r == vocab.end() ? right
                                                       : left + right) +
                              " is not in the vocab");
    uint64_t key = (static_cast<uint64_t>(l->second) << 32) |
                   static_cast<uint32_t>(r->second);
    merges.emplace(key, Merge{rank, lr->second}); // the first rank wins
    ++rank;
  }
  return Status::success();
}

/// The id tables are dense (an entry per id up to the largest), so the id
/// space may hold at most as many holes as tokens, plus kIdSpaceSlack: a
/// 1.4 KB tokenizer.json with one id of 55,555,553 asked for 1.8 GB (found
/// by fuzz-tokenizer). Real vocabularies are dense or nearly so.
constexpr int64_t kIdSpaceSlack = 1024;

Status TokenizerImpl::checkIdSpace(int64_t id, size_t tokens, const char *rule,
                                   const std::string &where) {
  int64_t limit = 2 * static_cast<int64_t>(tokens) + kIdSpaceSlack;
  if (id < limit)
    return Status::success();
  return fail(rule, where + ": id " + std::to_string(id) + " with " +
                        std::to_string(tokens) +
                        " tokens leaves the id space mostly empty (ids must "
                        "stay below 2 x tokens + " +
                        std::to_string(kIdSpaceSlack) + " = " +
                        std::to_string(limit) + ")");
}

Status TokenizerImpl::parseAddedTokens(const json &list) {
  if (!list.is_array())
    return fail("TK-5", "$.added_tokens: expected an array");
  size_t index = 0;
  for (const json &t : list) {
    std::string where = "$.added_tokens[" + std::to_string(index++) + "]";
    if (!t.is_object())
      return fail("TK-5", where + ": expected an object");
    auto idIt = t.find("id");
    auto contentIt = t.find("content");
    if (idIt == t.end() || !idIt->is_number_unsigned() ||
        idIt->get<uint64_t>() > INT32_MAX)
      return fail("TK-5", where + ".id: expected an id in [0, 2^31)");
    if (contentIt == t.end() || !contentIt->is_string() ||
        contentIt->get_ref<const std::string &>().empty())
      return fail("TK-5", where + ".content: expected a non-empty string");
    int32_t id = static_cast<int32_t>(idIt->get<uint64_t>());
    const std::string &content = contentIt->get_ref<const std::string &>();
    if (findInvalidUtf8(content) != std::string_view::npos)
      return fail("TK-5", where + ".content: not valid UTF-8");
    for (const char *flag : {"lstrip", "rstrip", "single_word"})
      if (boolMember(t, flag, false))
        return fail("TK-2", where + "." + flag + ": true is not supported (" +
                                quote(content) + ")");
    auto inVocab = vocab.find(content);
    if (inVocab != vocab.end() && inVocab->second != id)
      return fail("TK-5", where + ": " + quote(content) + " has id " +
                              std::to_string(id) + " but the vocab gives " +
                              std::to_string(inVocab->second));
    if (static_cast<size_t>(id) >= idKind.size()) {
      if (Status s = checkIdSpace(id, vocab.size() + list.size(), "TK-5",
                                  where + ".id");
          !s)
        return s;
      idKind.resize(id + 1, 0);
      idToBytes.resize(id + 1);
    }
    if (idKind[id] >= 2 && idToBytes[id] != content)
      return fail("TK-5", where + ": id " + std::to_string(id) +
                              " is already the added token " +
                              quote(idToBytes[id]));
    if (idKind[id] == 1 && inVocab == vocab.end())
      return fail("TK-5", where + ": id " + std::to_string(id) +
                              " is already the vocab token of another text");
    idKind[id] = boolMember(t, "special", false) ? 3 : 2;
    idToBytes[id] = content;
    addedIds[content] = id;
    added.add(content, id);
  }
  return Status::success();
}

Status TokenizerImpl::walkComponent(const json &node, const std::string &path,
                                    const char *listKey, bool allowNull,
                                    const Leaf &leaf, bool last) {
  if (node.is_null() && allowNull)
    return Status::success();
  std::optional<std::string> type;
  if (!node.is_object() || !optionalString(node, "type", type) || !type)
    return fail("TK-2", path + ": expected an object with a type, found " +
                            std::string(typeName(node)));
  if (*type != "Sequence")
    return leaf(*type, node, path, last);
  auto list = node.find(listKey);
  if (list == node.end() || !list->is_array())
    return fail("TK-2", path + "." + listKey + ": expected an array");
  for (size_t i = 0; i < list->size(); ++i)
    if (Status st = walkComponent(
            (*list)[i], path + "." + listKey + "[" + std::to_string(i) + "]",
            listKey, false, leaf, last && i + 1 == list->size());
        !st)
      return st;
  return Status::success();
}

Status TokenizerImpl::parseNormalizer(const std::string &type, const json &,
                                      const std::string &path, bool) {
  return fail("TK-2", path + ": normalizer type '" + type +
                          "' is not supported (byte-level BPE: none, or an "
                          "empty Sequence)");
}

Status TokenizerImpl::parsePreTokenizer(const std::string &type,
                                        const json &node,
                                        const std::string &path, bool last) {
  if (byteLevelSeen)
    return fail("TK-2", path + ": '" + type +
                            "' after ByteLevel is not supported (ByteLevel "
                            "must be the last pre-tokenizer)");
  if (type == "Split") {
    auto pattern = node.find("pattern");
    if (pattern == node.end() || !pattern->is_object() || pattern->size() != 1)
      return fail("TK-2", path + ".pattern: expected {\"Regex\": ...} or "
                                 "{\"String\": ...}");
    bool literal = pattern->begin().key() == "String";
    if (!literal && pattern->begin().key() != "Regex")
      return fail("TK-2", path + ".pattern: '" + pattern->begin().key() +
                              "' is not supported (Regex or String)");
    if (!pattern->begin().value().is_string())
      return fail("TK-2", path + ".pattern: expected a string");
    SplitStep step;
    auto regex = Regex::compile(pattern->begin().value().get<std::string>(),
                                literal, source + ": " + path);
    if (!regex)
      return regex.status();
    step.regex = regex.take();
    std::optional<std::string> behavior;
    if (!optionalString(node, "behavior", behavior) || !behavior)
      return fail("TK-2", path + ".behavior: expected a string");
    static const std::pair<const char *, Behavior> kBehaviors[] = {
        {"Removed", Behavior::Removed},
        {"Isolated", Behavior::Isolated},
        {"MergedWithPrevious", Behavior::MergedWithPrevious},
        {"MergedWithNext", Behavior::MergedWithNext},
        {"Contiguous", Behavior::Contiguous}};
    bool found = false;
    for (auto &[name, value] : kBehaviors)
      if (*behavior == name) {
        step.behavior = value;
        found = true;
      }
    if (!found)
      return fail("TK-2", path + ".behavior: '" + *behavior +
                              "' is not a split behavior");
    step.invert = boolMember(node, "invert", false);
    splits.push_back(std::move(step));
    return Status::success();
  }
  if (type == "ByteLevel") {
    if (!last)
      return fail("TK-2", path + ": ByteLevel must be the last pre-tokenizer");
    byteLevelAddPrefixSpace = boolMember(node, "add_prefix_space", false);
    if (boolMember(node, "use_regex", true)) {
      auto regex = Regex::compile(kGpt2Pattern, false, source + ": " + path);
      if (!regex)
        return regex.status();
      byteLevelRegex = regex.take();
    }
    byteLevelSeen = true;
    return Status::success();
  }
  return fail("TK-2", path + ": pre-tokenizer type '" + type +
                          "' is not supported (byte-level BPE: Sequence, "
                          "Split, ByteLevel)");
}

Status TokenizerImpl::parseDecoder(const std::string &type, const json &,
                                   const std::string &path, bool) {
  if (type == "ByteLevel")
    return Status::success();
  return fail("TK-2", path + ": decoder type '" + type +
                          "' is not supported (byte-level BPE: ByteLevel)");
}

Status TokenizerImpl::parsePostProcessor(const std::string &type, const json &,
                                         const std::string &path, bool) {
  if (type == "ByteLevel" || type == "TemplateProcessing")
    return Status::success();
  return fail("TK-2", path + ": post-processor type '" + type +
                          "' is not supported (ByteLevel, "
                          "TemplateProcessing, Sequence)");
}

//===----------------------------------------------------------------------===//
// Encoding
//===----------------------------------------------------------------------===//

Status TokenizerImpl::bpe(std::string_view bytes,
                          std::vector<int32_t> &ids) const {
  const bool cacheable = bytes.size() <= kCacheWordBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cacheMutex);
    auto it = cache.find(std::string(bytes));
    if (it != cache.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      return Status::success();
    }
  }
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool alive;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size(); ++i) {
    int32_t id = byteIds[static_cast<unsigned char>(bytes[i])];
    if (id < 0) {
      if (!unkId)
        return Status::error(
            "TK-9",
            source + ": byte 0x" +
                std::string(1, "0123456789abcdef"[(bytes[i] >> 4) & 15]) +
                std::string(1, "0123456789abcdef"[bytes[i] & 15]) +
                " has no vocabulary entry and there is no unk_token");
      id = *unkId;
    }
    symbols.push_back({id, static_cast<int32_t>(i) - 1,
                       i + 1 < bytes.size() ? static_cast<int32_t>(i + 1) : -1,
                       true});
  }
  std::vector<int32_t> out;
  if (ignoreMerges) {
    std::string chars;
    std::array<uint32_t, 256> b2c = byteToChar();
    for (unsigned char c : bytes)
      appendUtf8(b2c[c], chars);
    auto it = vocab.find(chars);
    if (it != vocab.end()) {
      ids.push_back(it->second);
      return Status::success();
    }
  }
  // Min-heap of (rank, position); stale entries are skipped when popped.
  using Entry = std::pair<int32_t, int32_t>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
  auto rankOf = [&](int32_t pos, int32_t &newId) -> int32_t {
    int32_t next = symbols[pos].next;
    if (next < 0)
      return -1;
    uint64_t key = (static_cast<uint64_t>(symbols[pos].id) << 32) |
                   static_cast<uint32_t>(symbols[next].id);
    auto it = merges.find(key);
    if (it == merges.end())
      return -1;
    newId = it->second.id;
    return it->second.rank;
  };
  int32_t unused = -1;
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) {
    int32_t rank = rankOf(i, unused);
    if (rank >= 0)
      heap.push({rank, i});
  }
  while (!heap.empty()) {
    auto [rank, pos] = heap.top();
    heap.pop();
    if (!symbols[pos].alive)
      continue;
    int32_t newId = -1;
    if (rankOf(pos, newId) != rank)
      continue;
    int32_t next = symbols[pos].next;
    symbols[pos].id = newId;
    symbols[next].alive = false;
    symbols[pos].next = symbols[next].next;
    if (symbols[pos].next >= 0)
      symbols[symbols[pos].next].prev = pos;
    int32_t prev = symbols[pos].prev;
    if (prev >= 0) {
      int32_t r = rankOf(prev, unused);
      if (r >= 0)
        heap.push({r, prev});
    }
    int32_t r = rankOf(pos, unused);
    if (r >= 0)
      heap.push({r, pos});
  }
  for (int32_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next)
    out.push_back(symbols[i].id);
  ids.insert(ids.end(), out.begin(), out.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cacheMutex);
    if (cache.size() >= kCacheEntries)
      cache.clear();
    cache.emplace(std::string(bytes), std::move(out));
  }
  return Status::success();
}

Status TokenizerImpl::encodePiece(std::string_view piece, MatchScratch &scratch,
                                  std::vector<int32_t> &ids) const {
  std::vector<Span> current{{0, piece.size()}}, next, matches;
  std::vector<std::pair<Span, bool>> segments;
  for (const SplitStep &step : splits) {
    next.clear();
    for (Span span : current) {
      std::string_view s = piece.substr(span.first, span.second - span.first);
      size_t before = next.size();
      if (Status st = applySplit(step, s, scratch, matches, segments, next);
          !st)
        return st;
      for (size_t i = before; i < next.size(); ++i) {
        next[i].first += span.first;
        next[i].second += span.first;
      }
    }
    std::swap(current, next);
  }
  std::string prefixed;
  for (Span span : current) {
    std::string_view s = piece.substr(span.first, span.second - span.first);
    if (byteLevelAddPrefixSpace && s[0] != ' ') {
      prefixed = " ";
      prefixed.append(s.data(), s.size());
      s = prefixed;
    }
    if (!byteLevelRegex) {
      if (Status st = bpe(s, ids); !st)
        return st;
      continue;
    }
    matches.clear();
    if (Status st = byteLevelRegex->findAll(s, scratch, matches); !st)
      return st;
    // Isolated: the gaps between matches are pieces too.
    size_t prev = 0;
    for (const Span &m : matches) {
      if (m.first > prev)
        if (Status st = bpe(s.substr(prev, m.first - prev), ids); !st)
          return st;
      if (Status st = bpe(s.substr(m.first, m.second - m.first), ids); !st)
        return st;
      prev = m.second;
    }
    if (prev < s.size())
      if (Status st = bpe(s.substr(prev), ids); !st)
        return st;
  }
  return Status::success();
}

Status TokenizerImpl::encode(std::string_view text,
                             std::vector<int32_t> &ids) const {
  size_t bad = findInvalidUtf8(text);
  if (bad != std::string_view::npos)
    return Status::error("TK-7", "encode: the input is not valid UTF-8 at "
                                 "byte " +
                                     std::to_string(bad));
  MatchScratch scratch;
  if (!scratch.ok())
    return Status::error(StatusCode::ResourceExhausted, "TK-10",
                         "encode: cannot allocate PCRE2 match data");
  size_t start = 0, pos = 0;
  while (pos < text.size()) {
    int32_t id = -1;
    size_t len = added.isEmpty() ? 0 : added.longestAt(text, pos, id);
    if (len == 0) {
      ++pos;
      continue;
    }
    if (pos > start)
      if (Status st =
              encodePiece(text.substr(start, pos - start), scratch, ids);
          !st)
        return st;
    ids.push_back(id);
    pos += len;
    start = pos;
  }
  if (start < text.size())
    return encodePiece(text.substr(start), scratch, ids);
  return Status::success();
}

//===----------------------------------------------------------------------===//
// Tokenizer
//===----------------------------------------------------------------------===//

Tokenizer::Tokenizer(std::unique_ptr<TokenizerImpl> impl)
    : impl(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

Expected<std::unique_ptr<Tokenizer>>
Tokenizer::parse(std::string_view text, const std::string &source) {
  auto impl = std::make_unique<TokenizerImpl>();
  impl->source = source;
  if (size_t deep = findTooDeep(text, kMaxJsonDepth);
      deep != std::string_view::npos)
    return Status::error("TK-1", source + ":" + lineColumn(text, deep) +
                                     ": JSON nests deeper than " +
                                     std::to_string(kMaxJsonDepth) + " levels");
  json root = json::parse(text.begin(), text.end(), nullptr,
                          /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    SyntaxLocator locator;
    (void)json::sax_parse(text.begin(), text.end(), &locator);
    size_t pos = locator.position ? locator.position - 1 : 0;
    return Status::error("TK-1", source + ":" + lineColumn(text, pos) +
                                     ": not valid JSON: " + locator.message);
  }
  if (Status st = impl->parse(root); !st)
    return st;
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
}

namespace {

Status readFile(const std::string &path, std::string &out) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return Status::error(StatusCode::NotFound, "TK-1",
                         path + ": cannot open: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    return Status::error("TK-1", path + ": not a regular file");
  if (static_cast<uint64_t>(st.st_size) > kMaxFileBytes)
    return Status::error("TK-1", path + ": " + std::to_string(st.st_size) +
                                     " bytes, more than the limit of " +
                                     std::to_string(kMaxFileBytes));
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::error(StatusCode::NotFound, "TK-1", path + ": cannot open");
  out.assign(static_cast<size_t>(st.st_size), '\0');
  in.read(out.data(), st.st_size);
  if (in.gcount() != st.st_size)
    return Status::error(StatusCode::Unavailable, "IO", path + ": short read");
  return Status::success();
}

bool isDirectory(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

/// A token spelled as a string or as {"content": ...} in
/// tokenizer_config.json.
std::optional<std::string> tokenContent(const json &config, const char *key) {
  auto it = config.find(key);
  if (it == config.end())
    return std::nullopt;
  if (it->is_string())
    return it->get<std::string>();
  if (it->is_object()) {
    auto c = it->find("content");
    if (c != it->end() && c->is_string())
      return c->get<std::string>();
  }
  return std::nullopt;
}

} // namespace

Expected<std::unique_ptr<Tokenizer>> Tokenizer::load(const std::string &path) {
  std::string dir;
  std::string file = path;
  if (isDirectory(path)) {
    dir = path;
    file = path + "/tokenizer.json";
  }
  std::string text;
  if (Status st = readFile(file, text); !st)
    return st;
  auto tokenizer = parse(text, file);
  if (!tokenizer || dir.empty())
    return tokenizer;
  TokenizerImpl &impl = *(*tokenizer)->impl;
  // BOS/EOS: tokenizer_config.json names the tokens; config.json gives ids.
  std::string configText;
  if (readFile(dir + "/tokenizer_config.json", configText)) {
    json config = parseBounded(configText);
    if (config.is_object()) {
      if (auto bos = tokenContent(config, "bos_token"))
        impl.bos = (*tokenizer)->tokenId(*bos);
      if (auto eos = tokenContent(config, "eos_token"))
        impl.eos = (*tokenizer)->tokenId(*eos);
    }
  }
  if (readFile(dir + "/config.json", configText)) {
    json config = parseBounded(configText);
    if (config.is_object()) {
      auto idOf = [&](const char *key) -> std::optional<int32_t> {
        auto it = config.find(key);
        if (it == config.end() || !it->is_number_unsigned() ||
            it->get<uint64_t>() >= impl.idKind.size())
          return std::nullopt;
        return static_cast<int32_t>(it->get<uint64_t>());
      };
      if (auto bos = idOf("bos_token_id"))
        impl.bos = bos;
      if (auto eos = idOf("eos_token_id"))
        impl.eos = eos;
    }
  }
  return tokenizer;
}

Status Tokenizer::encode(std::string_view text,
                         std::vector<int32_t> &ids) const {
  return impl->encode(text, ids);
}

Status Tokenizer::decode(const int32_t *ids, size_t count,
                         std::string &text) const {
  std::string bytes;
  for (size_t i = 0; i < count; ++i) {
    const std::string *b = tokenBytes(ids[i]);
    if (!b)
      return Status::error(StatusCode::OutOfRange, "TK-8",
                           "decode: id " + std::to_string(ids[i]) +
                               " at position " + std::to_string(i) +
                               " is outside the vocabulary of " + impl->source +
                               " (" + std::to_string(vocabSize()) + " ids)");
    bytes += *b;
  }
  appendLossyUtf8(bytes, /*final=*/true, text);
  return Status::success();
}

std::optional<int32_t> Tokenizer::tokenId(std::string_view token) const {
  std::string key(token);
  auto a = impl->addedIds.find(key);
  if (a != impl->addedIds.end())
    return a->second;
  auto v = impl->vocab.find(key);
  if (v != impl->vocab.end())
    return v->second;
  return std::nullopt;
}

const std::string *Tokenizer::tokenBytes(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= impl->idKind.size() ||
      impl->idKind[id] == 0)
    return nullptr;
  return &impl->idToBytes[id];
}

int64_t Tokenizer::vocabSize() const {
  return static_cast<int64_t>(impl->idKind.size());
}

bool Tokenizer::isSpecial(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < impl->idKind.size() &&
         impl->idKind[id] == 3;
}

std::optional<int32_t> Tokenizer::bosId() const { return impl->bos; }
std::optional<int32_t> Tokenizer::eosId() const { return impl->eos; }
const std::string &Tokenizer::source() const { return impl->source; }

//===----------------------------------------------------------------------===//
// Streaming and UTF-8 helpers
//===----------------------------------------------------------------------===//

Status StreamDecoder::push(int32_t id, std::string &text) {
  const std::string *bytes = tokenizer->tokenBytes(id);
  if (!bytes)
    return Status::error(StatusCode::OutOfRange, "TK-8",
                         "decode: id " + std::to_string(id) +
                             " is outside the vocabulary of " +
                             tokenizer->source() + " (" +
                             std::to_string(tokenizer->vocabSize()) + " ids)");
  pending += *bytes;
  size_t used = appendLossyUtf8(pending, /*final=*/false, text);
  pending.erase(0, used);
  return Status::success();
}

void StreamDecoder::finish(std::string &text) {
  appendLossyUtf8(pending, /*final=*/true, text);
  pending.clear();
}

size_t appendLossyUtf8(std::string_view bytes, bool final, std::string &out) {
  const auto *p = reinterpret_cast<const unsigned char *>(bytes.data());
  size_t i = 0, n = bytes.size();
  size_t runStart = 0;
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    Utf8Kind kind = utf8Step(p + i, n - i, len);
    if (kind == Utf8Kind::Valid) {
      i += len;
      continue;
    }
    out.append(bytes.data() + runStart, i - runStart);
    if (kind == Utf8Kind::Incomplete && !final)
      return i;
    out += "\xEF\xBF\xBD";
    i += len;
    runStart = i;
  }
  out.append(bytes.data() + runStart, n - runStart);
  return n;
}

size_t findInvalidUtf8(std::string_view bytes) {
  const auto *p = reinterpret_cast<const unsigned char *>(bytes.data());
  size_t i = 0, n = bytes.size();
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    if (utf8Step(p + i, n - i, len) != Utf8Kind::Valid)
      return i;
    i += len;
  }
  return std::string_view::npos;
}

} // namespace v4::tokenizer
