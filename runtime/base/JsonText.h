//===- JsonText.h - bounds on JSON text before it is parsed -----*- C++ -*-===//
//
// One tokeniser-level scan of JSON text, run before any parser sees it, for
// every JSON input the project reads: config.json (CF-1), tokenizer.json
// (TK-1), the safetensors header (ST-4) and its index (ST-14). JSON parsers
// recurse per nesting level and spend tens of bytes per value, so depth,
// value count and string length are bounded on the bytes first. The text
// need not be valid JSON (the parser judges that); strings are skipped with
// their escapes so that brackets inside them do not count.
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_BASE_JSONTEXT_H
#define V4_RUNTIME_BASE_JSONTEXT_H

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

namespace v4 {

struct JsonTextLimits {
  /// Deepest accepted nesting of objects and arrays.
  unsigned maxDepth = std::numeric_limits<unsigned>::max();
  /// Most values (counted by their openers and separators).
  uint64_t maxValues = std::numeric_limits<uint64_t>::max();
  /// Longest string (key or value), in bytes of text with its quotes.
  uint64_t maxStringBytes = std::numeric_limits<uint64_t>::max();
};

struct JsonTextScan {
  static constexpr size_t npos = std::string_view::npos;
  /// Offset of the '[' or '{' that opens level maxDepth + 1, or npos.
  size_t tooDeepAt = npos;
  /// Offset of the opener or separator of value maxValues + 1, or npos.
  size_t tooManyValuesAt = npos;
  /// Offset of the first string longer than maxStringBytes, or npos.
  size_t longStringAt = npos;
  /// Offsets of the keys of the top-level object, in document order.
  std::vector<uint64_t> rootKeyOffsets;
  /// Keys at any depth: an upper bound on the entries of any one object.
  uint64_t keys = 0;

  /// True when a limit was exceeded (the scan stops at the first one).
  bool exceeded() const {
    return tooDeepAt != npos || tooManyValuesAt != npos || longStringAt != npos;
  }
};

/// Scans `text` up to the first limit exceeded.
JsonTextScan scanJsonText(std::string_view text,
                          const JsonTextLimits &limits = {});

/// The offset just past the closing quote of the string literal that opens
/// at `text[at]` (a '"'), or text.size() when it is unterminated.
size_t skipJsonString(std::string_view text, size_t at);

} // namespace v4

#endif // V4_RUNTIME_BASE_JSONTEXT_H
