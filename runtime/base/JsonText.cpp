//===- JsonText.cpp - bounds on JSON text before it is parsed -------------===//

#include "runtime/base/JsonText.h"

namespace v4 {

size_t skipJsonString(std::string_view text, size_t at) {
  for (size_t i = at + 1; i < text.size(); ++i) {
    if (text[i] == '\\')
      ++i;
    else if (text[i] == '"')
      return i + 1;
  }
  return text.size();
}

JsonTextScan scanJsonText(std::string_view text, const JsonTextLimits &limits) {
  JsonTextScan out;
  std::vector<bool> objects; // per open container: an object?
  bool expectKey = false;
  uint64_t values = 1;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '"') {
      if (expectKey) {
        ++out.keys;
        if (objects.size() == 1)
          out.rootKeyOffsets.push_back(i);
        expectKey = false;
      }
      size_t end = skipJsonString(text, i);
      if (end - i > limits.maxStringBytes) {
        out.longStringAt = i;
        return out;
      }
      i = end - 1;
      continue;
    }
    if (c == '{' || c == '[') {
      if (objects.size() >= limits.maxDepth) {
        out.tooDeepAt = i;
        return out;
      }
      objects.push_back(c == '{');
      expectKey = c == '{';
    } else if (c == '}' || c == ']') {
      if (!objects.empty())
        objects.pop_back();
      expectKey = false;
    } else if (c == ',') {
      expectKey = !objects.empty() && objects.back();
    }
    if ((c == ',' || c == '{' || c == '[') && ++values > limits.maxValues) {
      out.tooManyValuesAt = i;
      return out;
    }
  }
  return out;
}

} // namespace v4
