//===- V4IRText.h - bounds on MLIR text before it is parsed -----*- C++ -*-===//
//
// MLIR's parser recurses once (several frames) per nesting level of types,
// attributes and regions, so deeply nested text overflows the stack: 20,000
// '(' in a function type crashed the parser (found by fuzz-v4-ir). Every
// tool that parses IR text the user gives it (v4-opt, v4c on a .mlir input,
// the fuzzer) first bounds the nesting on the bytes, like the JSON scan of
// runtime/base/JsonText.h. Real IR nests a few tens of levels.
//
//===----------------------------------------------------------------------===//
#ifndef V4_DIALECTS_V4_V4IRTEXT_H
#define V4_DIALECTS_V4_V4IRTEXT_H

#include "llvm/ADT/StringRef.h"
#include "llvm/ADT/Twine.h"

#include <cstddef>
#include <optional>
#include <string>

namespace mlir::v4 {

/// Deepest accepted nesting of (, [, { and < in IR text.
inline constexpr unsigned kMaxIRNesting = 256;

/// The offset of the first opener beyond `maxDepth` levels of (, [, { and <
/// (outside strings and // comments; the '>' of "->" closes nothing), or
/// std::nullopt. The text need not be valid.
inline std::optional<size_t> findTooDeepIR(llvm::StringRef text,
                                           unsigned maxDepth = kMaxIRNesting) {
  unsigned depth = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '"') {
      for (++i; i < text.size() && text[i] != '"'; ++i)
        if (text[i] == '\\')
          ++i;
    } else if (c == '/' && i + 1 < text.size() && text[i + 1] == '/') {
      while (i < text.size() && text[i] != '\n')
        ++i;
    } else if (c == '(' || c == '[' || c == '{' || c == '<') {
      if (++depth > maxDepth)
        return i;
    } else if ((c == ')' || c == ']' || c == '}' ||
                (c == '>' && (i == 0 || text[i - 1] != '-'))) &&
               depth > 0) {
      --depth;
    }
  }
  return std::nullopt;
}

/// "NAME:LINE:COL: error: nesting deeper than ..." for the offset `at` that
/// findTooDeepIR returned.
inline std::string tooDeepIRMessage(llvm::StringRef name, llvm::StringRef text,
                                    size_t at) {
  llvm::StringRef before = text.take_front(at);
  size_t line = before.count('\n') + 1;
  size_t col = at - (before.rfind('\n') + 1) + 1;
  return (name + ":" + llvm::Twine(line) + ":" + llvm::Twine(col) +
          ": error: nesting deeper than " + llvm::Twine(kMaxIRNesting) +
          " levels of (, [, { and <; real IR nests a few tens")
      .str();
}

} // namespace mlir::v4

#endif // V4_DIALECTS_V4_V4IRTEXT_H
