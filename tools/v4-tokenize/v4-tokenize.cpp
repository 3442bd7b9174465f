//===- v4-tokenize.cpp - text <-> token ids with a model's tokenizer ------===//
//
//   v4-tokenize DIR [--bos]     UTF-8 text on stdin -> one JSON array of ids
//   v4-tokenize DIR --decode    a JSON array of ids on stdin -> the text,
//                               exactly, with no newline added
//
// DIR holds tokenizer.json (or is the file itself). Special tokens written
// in the text become their ids; --bos prepends BOS (from the folder's
// tokenizer_config.json or config.json). Uses only the public C API.
// Exit codes: 0 ok, 1 rejected input, 2 bad command line, 3 I/O.
//
//===----------------------------------------------------------------------===//
#include "tools/common/CommandLine.h"
#include "v4rt/v4rt.h"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

int fail(v4rt_status_t status) {
  v4rt_status_code_t code = v4rt_status_code(status);
  std::fprintf(stderr, "v4-tokenize: error: %s\n", v4rt_status_message(status));
  v4rt_status_free(status);
  return code == V4RT_NOT_FOUND || code == V4RT_UNAVAILABLE ? 3 : 1;
}

bool readStdin(std::string &out) {
  char buffer[1 << 16];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), stdin)) > 0)
    out.append(buffer, n);
  return !std::ferror(stdin);
}

/// Parses "[1, 2, 3]" (JSON integers, whitespace anywhere); names the byte
/// offset of what it cannot read.
bool parseIdArray(const std::string &s, std::vector<int32_t> &ids,
                  std::string &error) {
  size_t i = 0;
  auto skip = [&] {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])))
      ++i;
  };
  auto at = [&](const char *what) {
    error = "<stdin>: byte " + std::to_string(i) + ": expected " + what;
    return false;
  };
  skip();
  if (i >= s.size() || s[i] != '[')
    return at("'[' (a JSON array of ids)");
  ++i;
  skip();
  if (i < s.size() && s[i] == ']') {
    ++i;
  } else {
    while (true) {
      skip();
      size_t start = i;
      if (i < s.size() && s[i] == '-')
        ++i;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])))
        ++i;
      if (i == start || (i == start + 1 && s[start] == '-'))
        return at("an integer id");
      errno = 0;
      long long v = std::strtoll(s.c_str() + start, nullptr, 10);
      if (errno || v < INT32_MIN || v > INT32_MAX) {
        i = start;
        return at("an id that fits in 32 bits");
      }
      ids.push_back(static_cast<int32_t>(v));
      skip();
      if (i < s.size() && s[i] == ',') {
        ++i;
        continue;
      }
      if (i < s.size() && s[i] == ']') {
        ++i;
        break;
      }
      return at("',' or ']'");
    }
  }
  skip();
  if (i != s.size())
    return at("the end of the input after the array");
  return true;
}

} // namespace

int main(int argc, char **argv) {
  std::string dir;
  bool bos = false, decode = false;
  CLI::App cli(std::string(), "v4-tokenize");
  v4::cli::setup(cli, "Text <-> token ids with a tokenizer.json.",
                 "usage: v4-tokenize DIR [--bos] < text       (prints a JSON "
                 "array of ids)\n"
                 "       v4-tokenize DIR --decode < ids.json  (prints the "
                 "text exactly)",
                 "Exit codes: 0 ok; 1 rejected input; 2 bad command line; "
                 "3 I/O.");
  cli.add_option("DIR", dir, "Folder of tokenizer.json (or the file)");
  cli.add_flag("--bos", bos, "Prepend the BOS id when encoding");
  cli.add_flag("--decode", decode, "Read a JSON array of ids, print its text");
  if (int code = v4::cli::parse(cli, argc, argv); code != v4::cli::kContinue)
    return code;
  if (dir.empty())
    return v4::cli::usageError(cli, "the tokenizer folder DIR is required");
  if (bos && decode)
    return v4::cli::usageError(cli, "--bos applies to encoding only");

  std::string input;
  if (!readStdin(input)) {
    std::fprintf(stderr, "v4-tokenize: error: <stdin>: read failed\n");
    return 3;
  }
  v4rt_tokenizer_t *tok = nullptr;
  if (v4rt_status_t s = v4rt_tokenizer_load(dir.c_str(), &tok))
    return fail(s);
  int code = 0;
  if (decode) {
    std::vector<int32_t> ids;
    std::string error;
    if (!parseIdArray(input, ids, error)) {
      std::fprintf(stderr, "v4-tokenize: error: %s\n", error.c_str());
      code = 1;
    } else {
      size_t length = 0;
      std::string text;
      v4rt_status_t s = v4rt_tokenizer_decode(tok, ids.data(), ids.size(),
                                              nullptr, 0, &length);
      // A first call sizes the text (length is set only when decoding
      // succeeded).
      if (s && v4rt_status_code(s) == V4RT_OUT_OF_RANGE && length > 0) {
        v4rt_status_free(s);
        text.resize(length);
        s = v4rt_tokenizer_decode(tok, ids.data(), ids.size(), text.data(),
                                  text.size(), &length);
      }
      if (s)
        code = fail(s);
      else
        std::fwrite(text.data(), 1, text.size(), stdout);
    }
  } else {
    std::vector<int32_t> ids(input.size() + 1);
    size_t count = 0;
    v4rt_tokenizer_info_t info;
    info.struct_size = sizeof info;
    if (v4rt_status_t s = v4rt_tokenizer_info(tok, &info)) {
      v4rt_tokenizer_release(tok);
      return fail(s);
    }
    if (bos && info.bos_id < 0) {
      std::fprintf(stderr,
                   "v4-tokenize: error: %s: --bos: the folder names no BOS "
                   "token (tokenizer_config.json bos_token or config.json "
                   "bos_token_id)\n",
                   dir.c_str());
      code = 1;
    } else if (v4rt_status_t s =
                   v4rt_tokenizer_encode(tok, input.data(), input.size(),
                                         ids.data(), ids.size(), &count)) {
      code = fail(s);
    } else {
      std::string out = "[";
      if (bos)
        out += std::to_string(info.bos_id);
      for (size_t i = 0; i < count; ++i) {
        if (bos || i)
          out += ",";
        out += std::to_string(ids[i]);
      }
      out += "]\n";
      std::fwrite(out.data(), 1, out.size(), stdout);
    }
  }
  v4rt_tokenizer_release(tok);
  if (std::fflush(stdout) != 0 && code == 0)
    code = 3;
  return code;
}
