//===- Tokenizer.h - byte-level BPE tokenizer.json reader -------*- C++ -*-===//
//
// Reads Hugging Face tokenizer.json files of the byte-level BPE family
// (GPT-2, DeepSeek V3/V4, cl100k/o200k conversions, ...) and encodes and
// decodes text exactly as the reference `tokenizers` library does. Plain
// C++17, PCRE2 (UTF + Unicode properties, JIT) for the split patterns,
// nlohmann-json for parsing; no MLIR/LLVM, no exceptions.
//
// Supported components (anything else is refused naming it, TK-2):
//   normalizer     null, Sequence of supported normalizers (an empty one)
//   pre_tokenizer  Sequence of Split (String or Regex pattern, every
//                  behavior, invert) and a final ByteLevel (add_prefix_space,
//                  use_regex with the GPT-2 pattern)
//   model          BPE: vocab, merges ("a b" or ["a", "b"]), unk_token,
//                  ignore_merges; no dropout, byte_fallback or affixes
//   added_tokens   matched leftmost-longest in the raw text before any other
//                  step (special or not); lstrip/rstrip/single_word refused
//   decoder        ByteLevel (or a Sequence of it)
//   post_processor null, ByteLevel, TemplateProcessing, Sequence: accepted
//                  and not applied (encode never adds tokens; callers add
//                  BOS explicitly)
//
// Rules (errors end in the id; tests assert the id, not the wording):
//   TK-1   the file is readable, at most 512 MiB, a JSON object nested at
//          most 64 levels deep (checked on the text before parsing)
//   TK-2   every component type and option is supported (names it)
//   TK-3   vocab: token -> id in [0, 2^31), no id used twice; ids below
//          2 x tokens + 1024 (the id tables are dense; TK-5 likewise)
//   TK-4   merges: two parts, both and their concatenation in the vocab
//   TK-5   added_tokens: id and non-empty content; the id agrees with the
//          vocab when the content is in it
//   TK-6   every Split pattern compiles (PCRE2 message and offset)
//   TK-7   encode input is valid UTF-8 (byte offset of the first bad byte)
//   TK-8   decode ids are inside the vocabulary
//   TK-9   every byte of the input has a vocabulary entry (or unk_token)
//   TK-10  a pattern match failed at run time (PCRE2 error)
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_TOKENIZER_TOKENIZER_H
#define V4_RUNTIME_TOKENIZER_TOKENIZER_H

#include "runtime/base/Status.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace v4::tokenizer {

class TokenizerImpl;

/// An immutable tokenizer: after load, encode and decode may be called from
/// any number of threads at once.
class Tokenizer {
public:
  ~Tokenizer();
  Tokenizer(const Tokenizer &) = delete;
  Tokenizer &operator=(const Tokenizer &) = delete;

  /// Loads `path`: a tokenizer.json file, or a directory holding one. From a
  /// directory, tokenizer_config.json (bos_token, eos_token) and
  /// config.json (bos_token_id, eos_token_id) give BOS and EOS if present.
  static Expected<std::unique_ptr<Tokenizer>> load(const std::string &path);
  /// Parses tokenizer.json text; `source` names it in messages.
  static Expected<std::unique_ptr<Tokenizer>> parse(std::string_view json,
                                                    const std::string &source);

  /// Appends the ids of `text` (UTF-8) to `ids`; no BOS/EOS is added.
  Status encode(std::string_view text, std::vector<int32_t> &ids) const;
  /// Appends the text of `ids` to `text`: bytes of every token, invalid
  /// UTF-8 replaced by U+FFFD (maximal subparts, as Rust and WHATWG do).
  /// Special tokens are kept.
  Status decode(const int32_t *ids, size_t count, std::string &text) const;

  /// The id of `token` (a vocab entry or an added token).
  std::optional<int32_t> tokenId(std::string_view token) const;
  /// The bytes token `id` decodes to; nullptr outside the vocabulary.
  const std::string *tokenBytes(int32_t id) const;
  /// One more than the largest id (vocab and added tokens).
  int64_t vocabSize() const;
  /// Added tokens marked special.
  bool isSpecial(int32_t id) const;
  /// BOS and EOS when the tokenizer's directory names them.
  std::optional<int32_t> bosId() const;
  std::optional<int32_t> eosId() const;
  /// The file or text this tokenizer came from.
  const std::string &source() const;

private:
  explicit Tokenizer(std::unique_ptr<TokenizerImpl> impl);
  std::unique_ptr<TokenizerImpl> impl;
};

/// Detokenizes one token at a time: each push appends only complete UTF-8
/// characters, so text already handed out never changes and no character
/// is split. The concatenation of every push and finish equals
/// Tokenizer::decode of all the ids. Thread-compatible.
class StreamDecoder {
public:
  explicit StreamDecoder(const Tokenizer &tokenizer) : tokenizer(&tokenizer) {}
  /// Appends the text that `id` completes to `text`.
  Status push(int32_t id, std::string &text);
  /// Appends what is still held (an incomplete character) as U+FFFD.
  void finish(std::string &text);
  /// Bytes held back waiting for the rest of a character (0..3).
  size_t pendingBytes() const { return pending.size(); }

private:
  const Tokenizer *tokenizer;
  std::string pending;
};

/// Appends `bytes` to `out` with invalid UTF-8 replaced by U+FFFD. With
/// `final` false an incomplete character at the end is not consumed; the
/// return value is the number of bytes consumed.
size_t appendLossyUtf8(std::string_view bytes, bool final, std::string &out);
/// The byte offset of the first invalid UTF-8 byte, or npos.
size_t findInvalidUtf8(std::string_view bytes);

} // namespace v4::tokenizer

#endif // V4_RUNTIME_TOKENIZER_TOKENIZER_H
