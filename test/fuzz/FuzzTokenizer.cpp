//===- FuzzTokenizer.cpp - fuzz-tokenizer: tokenizer.json and its use -----===//
//
// Bytes -> Tokenizer::parse -> encode of fixed texts (ASCII, CJK, emoji,
// invalid UTF-8, digits, whitespace runs) -> decode of the ids, and of every
// id near the vocabulary's ends -> a streaming decode.
//
//===----------------------------------------------------------------------===//
#include "runtime/tokenizer/Tokenizer.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using v4::tokenizer::StreamDecoder;
using v4::tokenizer::Tokenizer;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto tok = Tokenizer::parse(
      std::string_view(reinterpret_cast<const char *>(data), size),
      "fuzz.tokenizer.json");
  if (!tok)
    return 0;
  static const char *const texts[] = {
      "Hello, world! 12345 678",
      "  \t\n\n  spaces   and\r\nlines ",
      "\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c",
      "\xf0\x9f\x98\x80 emoji \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd",
      "bad \xff\xfe utf-8 \xc3",
      "<｜begin▁of▁sentence｜>x",
  };
  for (const char *text : texts) {
    std::vector<int32_t> ids;
    if (!(*tok)->encode(text, ids).ok())
      continue;
    std::string out;
    (void)(*tok)->decode(ids.data(), ids.size(), out);
  }
  int64_t vocab = (*tok)->vocabSize();
  std::vector<int32_t> ids;
  for (int64_t id :
       {int64_t(-1), int64_t(0), int64_t(1), vocab - 1, vocab, vocab + 1})
    if (id >= INT32_MIN && id <= INT32_MAX)
      ids.push_back(int32_t(id));
  std::string out;
  (void)(*tok)->decode(ids.data(), ids.size(), out);
  StreamDecoder stream(**tok);
  std::string streamed;
  for (int32_t id : ids)
    (void)stream.push(id, streamed);
  stream.finish(streamed);
  return 0;
}
