//===- Safetensors.cpp - validated safetensors reader and writer ----------===//
//
// See Safetensors.h for the rules. Parsing uses nlohmann-json with
// JSON_NOEXCEPTION: only non-throwing entry points are used (parse with
// allow_exceptions=false, sax_parse, type-checked accessors, dump() of
// strings already checked to be UTF-8), because any internal throw aborts.
//
//===----------------------------------------------------------------------===//

#include "runtime/safetensors/Safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>
#include <system_error>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

using json = nlohmann::json;

namespace v4::safetensors {

//===----------------------------------------------------------------------===//
// Status
//===----------------------------------------------------------------------===//

//===----------------------------------------------------------------------===//
// Dtypes
//===----------------------------------------------------------------------===//

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

namespace {

constexpr uint64_t kPrefixBytes = 8;

std::string quote(std::string_view s) {
  std::string out = "'";
  out.append(s.data(), s.size());
  out += "'";
  return out;
}

std::string shapeString(const std::vector<int64_t> &shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

std::string sysError(int err) { return std::generic_category().message(err); }

Status ioError(const std::string &path, const char *op, int err) {
  return Status::error(StatusCode::NotFound, "IO",
                       path + ": " + op + " failed: " + sysError(err));
}

/// Offset of the first byte that is not part of valid UTF-8 (no overlong
/// forms, no surrogates, nothing above U+10FFFF), or npos if all valid.
size_t findInvalidUtf8(std::string_view s) {
  const auto *p = reinterpret_cast<const unsigned char *>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return i;
    }
    if (n - i < len)
      return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80)
        return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return i;
    i += len;
  }
  return std::string_view::npos;
}

/// Offsets of the keys of the top-level object, in document order. The text
/// is only tokenised far enough to find them; the JSON parser validates it.
std::vector<uint64_t> topLevelKeyOffsets(std::string_view s) {
  std::vector<uint64_t> out;
  int depth = 0;
  bool expectKey = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '"') {
      if (depth == 1 && expectKey) {
        out.push_back(i);
        expectKey = false;
      }
      for (++i; i < s.size(); ++i) {
        if (s[i] == '\\')
          ++i;
        else if (s[i] == '"')
          break;
      }
      continue;
    }
    if (c == '{' || c == '[') {
      ++depth;
      expectKey = depth == 1 && c == '{';
    } else if (c == '}' || c == ']') {
      --depth;
    } else if (c == ',' && depth == 1) {
      expectKey = true;
    }
  }
  return out;
}

/// SAX pass run before building the DOM: bounds the depth, rejects duplicate
/// keys (nlohmann would silently keep the last) and records the position of
/// a syntax error. Rule ids are parameters so that the index reuses it.
class JsonChecker {
public:
  JsonChecker(unsigned maxDepth, std::vector<uint64_t> keyOffsets)
      : maxDepth(maxDepth), keyOffsets(std::move(keyOffsets)) {}

  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(json::number_integer_t) { return true; }
  bool number_unsigned(json::number_unsigned_t) { return true; }
  bool number_float(json::number_float_t, const json::string_t &) {
    return true;
  }
  bool string(json::string_t &) { return true; }
  bool binary(json::binary_t &) { return true; }
  bool start_object(std::size_t) { return push(); }
  bool start_array(std::size_t) { return push(); }
  bool end_object() { return pop(); }
  bool end_array() { return pop(); }
  bool key(json::string_t &k) {
    if (scopes.size() == 1) {
      currentTopKey = k;
      uint64_t offset =
          numTopKeys < keyOffsets.size() ? keyOffsets[numTopKeys] : 0;
      ++numTopKeys;
      if (!topKeyOffsets.emplace(k, offset).second) {
        kind = Duplicate;
        duplicateAtTop = true;
        duplicateKey = k;
        duplicateOffset = offset;
        return false;
      }
      return true;
    }
    if (!scopes.back().insert(k).second) {
      kind = Duplicate;
      duplicateKey = k;
      return false;
    }
    return true;
  }
  bool parse_error(std::size_t position, const std::string &,
                   const json::exception &ex) {
    kind = Syntax;
    errorPosition = position;
    syntaxMessage = ex.what();
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix.
    size_t close = syntaxMessage.find("] ");
    if (syntaxMessage.rfind("[json.exception", 0) == 0 &&
        close != std::string::npos)
      syntaxMessage.erase(0, close + 2);
    return false;
  }

  enum Kind { None, Syntax, TooDeep, Duplicate };
  Kind kind = None;
  size_t errorPosition = 0;
  std::string syntaxMessage;
  std::string duplicateKey;
  uint64_t duplicateOffset = 0;
  bool duplicateAtTop = false;
  std::string currentTopKey;
  std::map<std::string, uint64_t> topKeyOffsets;

private:
  bool push() {
    if (scopes.size() >= maxDepth) {
      kind = TooDeep;
      return false;
    }
    scopes.emplace_back();
    return true;
  }
  bool pop() {
    if (!scopes.empty())
      scopes.pop_back();
    return true;
  }

  unsigned maxDepth;
  std::vector<uint64_t> keyOffsets;
  size_t numTopKeys = 0;
  std::vector<std::set<std::string>> scopes;
};

/// Parses JSON text that must be an object, applying UTF-8, depth and
/// duplicate-key checks. `rule` tags the errors; `what` names the text
/// ("header" or "index").
Expected<json> parseCheckedJson(const std::string &source,
                                std::string_view text, uint64_t fileBase,
                                unsigned maxDepth, const char *rule,
                                const char *dupRule, const char *what,
                                std::map<std::string, uint64_t> *keyOffsets) {
  auto at = [&](uint64_t pos) {
    return std::string(what) + " byte " + std::to_string(pos) + " (file byte " +
           std::to_string(fileBase + pos) + ")";
  };
  size_t bad = findInvalidUtf8(text);
  if (bad != std::string_view::npos)
    return Status::error(rule, source + ": " + what +
                                   " is not valid UTF-8 at " + at(bad));
  if (text.empty() || text[0] != '{') {
    if (!text.empty() && text[0] == '<')
      return Status::error(rule, source + ": " + what +
                                     " starts with '<': looks like an HTML "
                                     "page, not safetensors");
    return Status::error(rule, source + ": " + what +
                                   " must be a JSON object starting with "
                                   "'{' at " +
                                   at(0));
  }
  JsonChecker checker(maxDepth, topLevelKeyOffsets(text));
  bool ok = json::sax_parse(text.begin(), text.end(), &checker);
  if (!ok || checker.kind != JsonChecker::None) {
    switch (checker.kind) {
    case JsonChecker::TooDeep:
      return Status::error(rule, source + ": " + what +
                                     " JSON nests deeper than " +
                                     std::to_string(maxDepth) + " levels");
    case JsonChecker::Duplicate:
      if (checker.duplicateAtTop)
        return Status::error(dupRule,
                             source + ": duplicate " +
                                 (rule == dupRule ? "key " : "tensor name ") +
                                 quote(checker.duplicateKey) + " at " +
                                 at(checker.duplicateOffset));
      return Status::error(
          dupRule, source + ": duplicate key " + quote(checker.duplicateKey) +
                       " in entry " + quote(checker.currentTopKey));
    default:
      return Status::error(
          rule, source + ": " + what + " is not valid JSON at " +
                    at(checker.errorPosition ? checker.errorPosition - 1 : 0) +
                    ": " + checker.syntaxMessage);
    }
  }
  json root = json::parse(text.begin(), text.end(), nullptr,
                          /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object())
    return Status::error(rule, source + ": " + what + " is not a JSON object");
  if (keyOffsets)
    *keyOffsets = std::move(checker.topKeyOffsets);
  return root;
}

/// Reads a non-negative integer that fits in uint64_t.
bool getUnsigned(const json &v, uint64_t &out) {
  if (!v.is_number_unsigned())
    return false;
  out = v.get<uint64_t>();
  return true;
}

const char *jsonKind(const json &v) {
  if (v.is_number_float())
    return "a non-integer number";
  if (v.is_number_integer() && !v.is_number_unsigned())
    return "a negative integer";
  return v.type_name();
}

/// ST-1..ST-3 on the first 8 bytes; returns the header length.
Expected<uint64_t> checkPrefix(const std::string &source, const uint8_t *bytes,
                               uint64_t fileSize,
                               const ReaderOptions &options) {
  if (fileSize == 0)
    return Status::error("ST-1", source + ": empty file");
  if (fileSize < kPrefixBytes)
    return Status::error("ST-1", source + ": file is " +
                                     std::to_string(fileSize) +
                                     " bytes, shorter than the 8-byte header "
                                     "length prefix");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | bytes[i];
  if (n > options.maxHeaderBytes)
    return Status::error("ST-2", source + ": header length " +
                                     std::to_string(n) + " exceeds the cap " +
                                     std::to_string(options.maxHeaderBytes) +
                                     " (file byte 0)");
  uint64_t end;
  if (__builtin_add_overflow(n, kPrefixBytes, &end))
    return Status::error("ST-3", source + ": 8 + header length " +
                                     std::to_string(n) + " overflows");
  if (end > fileSize)
    return Status::error("ST-3", source + ": header ends at byte " +
                                     std::to_string(end) +
                                     " but the file has only " +
                                     std::to_string(fileSize) + " bytes");
  return n;
}

/// ST-4..ST-11 on the header text.
Expected<FileLayout> parseHeader(const std::string &source,
                                 std::string_view header, uint64_t fileSize,
                                 const ReaderOptions &options) {
  FileLayout layout;
  layout.fileSize = fileSize;
  layout.headerSize = header.size();
  layout.dataOffset = kPrefixBytes + header.size();
  const uint64_t dataSize = fileSize - layout.dataOffset;

  std::map<std::string, uint64_t> keyOffsets;
  Expected<json> parsed =
      parseCheckedJson(source, header, kPrefixBytes, options.maxJsonDepth,
                       "ST-4", "ST-5", "header", &keyOffsets);
  if (!parsed)
    return parsed.status();
  const json &root = *parsed;

  auto where = [&](const std::string &name) {
    auto it = keyOffsets.find(name);
    uint64_t pos = it == keyOffsets.end() ? 0 : it->second;
    return source + ": tensor " + quote(name) + " (header byte " +
           std::to_string(pos) + "): ";
  };

  const json *metadata = nullptr;
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string &name = it.key();
    const json &entry = it.value();
    if (name == "__metadata__") {
      metadata = &entry;
      continue;
    }
    // ST-6: exactly dtype, shape and data_offsets.
    if (!entry.is_object())
      return Status::error("ST-6", where(name) +
                                       "entry must be an object, "
                                       "found " +
                                       entry.type_name());
    for (auto field = entry.begin(); field != entry.end(); ++field)
      if (field.key() != "dtype" && field.key() != "shape" &&
          field.key() != "data_offsets")
        return Status::error("ST-6", where(name) + "unexpected key " +
                                         quote(field.key()) +
                                         " (allowed: dtype, shape, "
                                         "data_offsets)");
    for (const char *required : {"dtype", "shape", "data_offsets"})
      if (!entry.contains(required))
        return Status::error("ST-6",
                             where(name) + "missing key " + quote(required));
    const json &dtypeJson = entry["dtype"];
    if (!dtypeJson.is_string())
      return Status::error("ST-6", where(name) +
                                       "dtype must be a string, found " +
                                       dtypeJson.type_name());
    const std::string &dtypeText = dtypeJson.get_ref<const std::string &>();
    std::optional<DType> dtype = parseSafetensorsDType(dtypeText);
    if (!dtype)
      return Status::error("ST-6",
                           where(name) + "unknown dtype " + quote(dtypeText) +
                               " (supported: BF16, F16, F32, I8, U8, I32, I64, "
                               "F8_E4M3, F8_E8M0, F4)");
    const json &shapeJson = entry["shape"];
    if (!shapeJson.is_array())
      return Status::error("ST-6", where(name) +
                                       "shape must be an array, found " +
                                       shapeJson.type_name());
    TensorInfo info;
    info.name = name;
    info.dtype = *dtype;
    info.headerByte = keyOffsets.count(name) ? keyOffsets[name] : 0;
    uint64_t elements = 1;
    bool overflow = false;
    for (size_t d = 0; d < shapeJson.size(); ++d) {
      uint64_t dim;
      if (!getUnsigned(shapeJson[d], dim))
        return Status::error("ST-6",
                             where(name) + "shape[" + std::to_string(d) +
                                 "] must be a non-negative integer, found " +
                                 jsonKind(shapeJson[d]));
      if (dim > static_cast<uint64_t>(INT64_MAX))
        return Status::error("ST-7", where(name) + "shape[" +
                                         std::to_string(d) +
                                         "] = " + std::to_string(dim) +
                                         " exceeds the int64 range");
      info.shape.push_back(static_cast<int64_t>(dim));
      overflow |= __builtin_mul_overflow(elements, dim, &elements);
    }
    const json &offsetsJson = entry["data_offsets"];
    if (!offsetsJson.is_array() || offsetsJson.size() != 2)
      return Status::error("ST-6", where(name) +
                                       "data_offsets must be an array of "
                                       "two integers");
    for (int k = 0; k < 2; ++k)
      if (!getUnsigned(offsetsJson[k], k == 0 ? info.begin : info.end))
        return Status::error("ST-6", where(name) + "data_offsets[" +
                                         std::to_string(k) +
                                         "] must be a non-negative integer, "
                                         "found " +
                                         jsonKind(offsetsJson[k]));
    // ST-7: overflow-checked element and byte counts, whole bytes.
    std::string described =
        std::string("dtype ") + dtypeText + " x " + shapeString(info.shape);
    if (overflow)
      return Status::error("ST-7", where(name) + "element count of " +
                                       shapeString(info.shape) +
                                       " overflows 64 bits");
    uint64_t bits;
    if (__builtin_mul_overflow(elements, uint64_t(dtypeBits(*dtype)), &bits))
      return Status::error("ST-7", where(name) + "byte count of " + described +
                                       " overflows 64 bits");
    if (bits % 8 != 0)
      return Status::error(
          "ST-7", where(name) + described + " has " + std::to_string(elements) +
                      " elements of " + std::to_string(dtypeBits(*dtype)) +
                      " bits, which do not fill whole bytes");
    info.numElements = elements;
    // ST-8: begin <= end.
    if (info.begin > info.end)
      return Status::error(
          "ST-8", where(name) + "data_offsets [" + std::to_string(info.begin) +
                      ", " + std::to_string(info.end) + "] begin after end");
    if (info.end - info.begin != bits / 8)
      return Status::error("ST-7", where(name) + "data_offsets span " +
                                       std::to_string(info.end - info.begin) +
                                       " bytes, " + described + " needs " +
                                       std::to_string(bits / 8));
    info.fileOffset = layout.dataOffset + info.begin; // cannot overflow: ST-9
    layout.tensors.push_back(std::move(info));
  }

  // ST-9: contiguous cover of the data section, zero-size tensors included.
  std::vector<const TensorInfo *> byOffset;
  for (const TensorInfo &t : layout.tensors)
    byOffset.push_back(&t);
  std::sort(byOffset.begin(), byOffset.end(),
            [](const TensorInfo *a, const TensorInfo *b) {
              if (a->begin != b->begin)
                return a->begin < b->begin;
              if (a->end != b->end)
                return a->end < b->end;
              return a->name < b->name;
            });
  uint64_t expected = 0;
  const TensorInfo *prev = nullptr;
  for (const TensorInfo *t : byOffset) {
    if (t->begin != expected) {
      std::string prevText = prev ? "previous tensor " + quote(prev->name) +
                                        " ends at " + std::to_string(expected)
                                  : std::string("the data section starts at 0");
      const char *problem = t->begin > expected ? "gap of " : "overlap of ";
      uint64_t amount =
          t->begin > expected ? t->begin - expected : expected - t->begin;
      return Status::error("ST-9", where(t->name) + "starts at data byte " +
                                       std::to_string(t->begin) + " but " +
                                       prevText + ": " + problem +
                                       std::to_string(amount) + " bytes");
    }
    expected = t->end;
    prev = t;
  }
  if (expected != dataSize) {
    if (expected > dataSize)
      return Status::error(
          "ST-9", where(prev->name) + "ends at data byte " +
                      std::to_string(expected) + " (file byte " +
                      std::to_string(layout.dataOffset + expected) +
                      ") beyond the end of the file (data section is " +
                      std::to_string(dataSize) + " bytes): truncated file?");
    return Status::error(
        "ST-9", source + ": " + std::to_string(dataSize - expected) +
                    " trailing bytes after the last tensor (data section is " +
                    std::to_string(dataSize) + " bytes, tensors end at " +
                    std::to_string(expected) + ", file byte " +
                    std::to_string(layout.dataOffset + expected) + ")");
  }

  // ST-10: flat string -> string metadata.
  if (metadata) {
    if (!metadata->is_object())
      return Status::error("ST-10", source +
                                        ": __metadata__ must be an object of "
                                        "strings, found " +
                                        metadata->type_name());
    for (auto it = metadata->begin(); it != metadata->end(); ++it) {
      if (!it.value().is_string())
        return Status::error(
            "ST-10", source + ": __metadata__ value " + quote(it.key()) +
                         " must be a string, found " + it.value().type_name());
      layout.metadata.emplace(it.key(),
                              it.value().get_ref<const std::string &>());
    }
  }

  // ST-11: alignment of every non-empty tensor's absolute offset.
  for (TensorInfo &t : layout.tensors) {
    unsigned align = dtypeAlignment(t.dtype);
    if (t.byteSize() == 0 || t.fileOffset % align == 0)
      continue;
    if (!options.allowMisaligned)
      return Status::error("ST-11",
                           where(t.name) + "data at file byte " +
                               std::to_string(t.fileOffset) + " is not " +
                               std::to_string(align) + "-byte aligned as " +
                               safetensorsDTypeName(t.dtype) +
                               " needs (header not padded to 8 bytes?)");
    t.aligned = false;
  }
  return layout;
}

} // namespace

Expected<FileLayout> parseBuffer(std::string_view source, const void *data,
                                 size_t size, const ReaderOptions &options) {
  std::string name(source);
  const auto *bytes = static_cast<const uint8_t *>(data);
  Expected<uint64_t> headerSize = checkPrefix(name, bytes, size, options);
  if (!headerSize)
    return headerSize.status();
  std::string_view header(reinterpret_cast<const char *>(bytes) + kPrefixBytes,
                          *headerSize);
  return parseHeader(name, header, size, options);
}

//===----------------------------------------------------------------------===//
// File access
//===----------------------------------------------------------------------===//

namespace {

struct Fd {
  int fd = -1;
  Fd() = default;
  Fd(const Fd &) = delete;
  Fd &operator=(const Fd &) = delete;
  ~Fd() {
    if (fd >= 0)
      ::close(fd);
  }
};

/// Opens a regular file read-only (ST-1) and returns its size.
Status openRegular(const std::string &path, Fd &file, uint64_t &size,
                   const char *rule) {
  do
    file.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  while (file.fd < 0 && errno == EINTR);
  if (file.fd < 0)
    return ioError(path, "open", errno);
  struct stat st;
  if (::fstat(file.fd, &st) != 0)
    return ioError(path, "fstat", errno);
  if (!S_ISREG(st.st_mode))
    return Status::error(rule, path + ": not a regular file");
  size = static_cast<uint64_t>(st.st_size);
  return Status::success();
}

/// pread until `n` bytes are in, retrying EINTR and short reads.
Status readFully(const std::string &path, int fd, void *buffer, uint64_t n,
                 uint64_t offset) {
  auto *out = static_cast<uint8_t *>(buffer);
  uint64_t done = 0;
  while (done < n) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(n - done, 1u << 30));
    ssize_t got = ::pread(fd, out + done, chunk, off_t(offset + done));
    if (got < 0) {
      if (errno == EINTR)
        continue;
      return ioError(path, "read", errno);
    }
    if (got == 0)
      return Status::error("ST-13", path + ": file ended at byte " +
                                        std::to_string(offset + done) +
                                        " while reading; it shrank while "
                                        "being loaded");
    done += static_cast<uint64_t>(got);
  }
  return Status::success();
}

/// One opened shard: its validated layout and its bytes (mapped or copied).
struct Shard {
  std::string path;
  FileLayout layout;
  uint8_t *base = nullptr;
  uint64_t size = 0;
  bool mapped = false;

  Shard() = default;
  Shard(const Shard &) = delete;
  Shard &operator=(const Shard &) = delete;
  ~Shard() {
    if (!base)
      return;
    if (mapped)
      ::munmap(base, size);
    else
      std::free(base);
  }
};

Expected<std::unique_ptr<Shard>> loadShard(const std::string &path,
                                           const ReaderOptions &options) {
  Fd file;
  uint64_t size = 0;
  if (Status s = openRegular(path, file, size, "ST-1"); !s)
    return s;
  uint8_t prefix[kPrefixBytes] = {};
  if (size >= kPrefixBytes)
    if (Status s = readFully(path, file.fd, prefix, kPrefixBytes, 0); !s)
      return s;
  Expected<uint64_t> headerSize = checkPrefix(path, prefix, size, options);
  if (!headerSize)
    return headerSize.status();
  std::string header;
  header.resize(*headerSize);
  if (Status s =
          readFully(path, file.fd, header.data(), *headerSize, kPrefixBytes);
      !s)
    return s;
  Expected<FileLayout> layout = parseHeader(path, header, size, options);
  if (!layout)
    return layout.status();

  auto shard = std::make_unique<Shard>();
  shard->path = path;
  shard->layout = layout.take();
  shard->size = size;
  if (options.copyIntoMemory) {
    void *buffer = nullptr;
    if (::posix_memalign(&buffer, 64, size) != 0)
      return Status::error(StatusCode::ResourceExhausted, "IO",
                           path + ": cannot allocate " + std::to_string(size) +
                               " bytes for copy mode");
    shard->base = static_cast<uint8_t *>(buffer);
    if (Status s = readFully(path, file.fd, shard->base, size, 0); !s)
      return s;
  } else {
    void *map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, file.fd, 0);
    if (map == MAP_FAILED)
      return ioError(path, "mmap", errno);
    shard->base = static_cast<uint8_t *>(map);
    shard->mapped = true;
  }
  if (options.afterMapHook)
    options.afterMapHook(path);
  // ST-13: a file that shrank under the mapping would raise SIGBUS on access.
  struct stat st;
  if (::fstat(file.fd, &st) != 0)
    return ioError(path, "fstat", errno);
  if (static_cast<uint64_t>(st.st_size) != size)
    return Status::error("ST-13", path + ": file size changed from " +
                                      std::to_string(size) + " to " +
                                      std::to_string(st.st_size) +
                                      " bytes while loading; do not modify "
                                      "weights while they are loaded");
  return shard;
}

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string joinPath(const std::string &dir, const std::string &name) {
  if (dir.empty())
    return name;
  if (dir.back() == '/')
    return dir + name;
  return dir + "/" + name;
}

std::string parentDir(const std::string &path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos)
    return ".";
  if (slash == 0)
    return "/";
  return path.substr(0, slash);
}

bool isRegularFile(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

} // namespace

//===----------------------------------------------------------------------===//
// Reader
//===----------------------------------------------------------------------===//

struct Reader::Impl {
  std::string path;
  std::vector<std::unique_ptr<Shard>> shards;
  std::vector<std::string> shardPaths;
  std::vector<TensorInfo> tensors;
  std::optional<uint64_t> totalSize;
  uint64_t totalBytes = 0;

  void finish() {
    for (size_t i = 0; i < shards.size(); ++i) {
      shardPaths.push_back(shards[i]->path);
      for (TensorInfo t : shards[i]->layout.tensors) {
        t.shard = shards[i]->path;
        t.shardIndex = i;
        totalBytes += t.byteSize();
        tensors.push_back(std::move(t));
      }
    }
    std::sort(tensors.begin(), tensors.end(),
              [](const TensorInfo &a, const TensorInfo &b) {
                return a.name < b.name;
              });
  }
};

namespace {

/// ST-15: index shard names are plain names inside the model directory.
bool isPlainName(const std::string &name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find('/') == std::string::npos &&
         name.find('\\') == std::string::npos &&
         name.find('\0') == std::string::npos &&
         name.find("..") == std::string::npos;
}

Status openIndex(const std::string &indexPath, const ReaderOptions &options,
                 Reader::Impl &impl) {
  Fd file;
  uint64_t size = 0;
  if (Status s = openRegular(indexPath, file, size, "ST-14"); !s)
    return s;
  if (size == 0)
    return Status::error("ST-14", indexPath + ": empty file");
  if (size > options.maxHeaderBytes)
    return Status::error("ST-14", indexPath + ": index is " +
                                      std::to_string(size) +
                                      " bytes, above the cap " +
                                      std::to_string(options.maxHeaderBytes));
  std::string text;
  text.resize(size);
  if (Status s = readFully(indexPath, file.fd, text.data(), size, 0); !s)
    return s;
  Expected<json> parsed =
      parseCheckedJson(indexPath, text, 0, options.maxJsonDepth, "ST-14",
                       "ST-14", "index", nullptr);
  if (!parsed)
    return parsed.status();
  const json &root = *parsed;

  auto it = root.find("weight_map");
  if (it == root.end() || !it->is_object())
    return Status::error("ST-14", indexPath + ": $.weight_map must be an "
                                              "object of tensor name -> "
                                              "shard file name");
  const json &weightMap = *it;
  auto meta = root.find("metadata");
  if (meta != root.end() && !meta->is_null()) {
    if (!meta->is_object())
      return Status::error("ST-14", indexPath +
                                        ": $.metadata must be an "
                                        "object, found " +
                                        meta->type_name());
    auto total = meta->find("total_size");
    if (total != meta->end()) {
      uint64_t value;
      if (!getUnsigned(*total, value))
        return Status::error("ST-14", indexPath +
                                          ": $.metadata.total_size must be a "
                                          "non-negative integer, found " +
                                          jsonKind(*total));
      impl.totalSize = value;
    }
  }

  // Shard names, and one example tensor each for the messages.
  std::map<std::string, std::string> shardExample;
  std::map<std::string, std::string> indexed; // tensor -> shard
  for (auto entry = weightMap.begin(); entry != weightMap.end(); ++entry) {
    if (!entry.value().is_string())
      return Status::error("ST-14", indexPath + ": $.weight_map[" +
                                        quote(entry.key()) +
                                        "] must be a string, found " +
                                        entry.value().type_name());
    const std::string &shardName = entry.value().get_ref<const std::string &>();
    if (!isPlainName(shardName))
      return Status::error("ST-15", indexPath + ": tensor " +
                                        quote(entry.key()) + " names shard " +
                                        quote(shardName) +
                                        ", which is not a plain file name in "
                                        "the model directory");
    shardExample.emplace(shardName, entry.key());
    indexed.emplace(entry.key(), shardName);
  }

  std::string dir = parentDir(indexPath);
  std::map<std::string, size_t> shardIndex;
  for (const auto &[shardName, example] : shardExample) {
    std::string shardPath = joinPath(dir, shardName);
    struct stat st;
    if (::stat(shardPath.c_str(), &st) != 0 && errno == ENOENT)
      return Status::error("ST-15", indexPath + ": shard " + quote(shardName) +
                                        " (named for tensor " + quote(example) +
                                        ") does not exist at " + shardPath);
    Expected<std::unique_ptr<Shard>> shard = loadShard(shardPath, options);
    if (!shard)
      return shard.status();
    shardIndex.emplace(shardName, impl.shards.size());
    impl.shards.push_back(shard.take());
  }

  // ST-16: each tensor in exactly the shard the index names.
  std::map<std::string, std::vector<std::string>> foundIn;
  for (const auto &[shardName, idx] : shardIndex)
    for (const TensorInfo &t : impl.shards[idx]->layout.tensors)
      foundIn[t.name].push_back(shardName);
  for (const auto &[name, shardNames] : foundIn) {
    if (shardNames.size() > 1)
      return Status::error("ST-16", indexPath + ": tensor " + quote(name) +
                                        " appears in shards " +
                                        quote(shardNames[0]) + " and " +
                                        quote(shardNames[1]));
    auto listed = indexed.find(name);
    if (listed == indexed.end())
      return Status::error("ST-16", indexPath + ": tensor " + quote(name) +
                                        " is in shard " + quote(shardNames[0]) +
                                        " but not listed in the index");
    if (listed->second != shardNames[0])
      return Status::error("ST-16", indexPath + ": tensor " + quote(name) +
                                        " is in shard " + quote(shardNames[0]) +
                                        " but the index names shard " +
                                        quote(listed->second));
  }
  for (const auto &[name, shardName] : indexed)
    if (!foundIn.count(name))
      return Status::error("ST-16", indexPath + ": tensor " + quote(name) +
                                        " is listed for shard " +
                                        quote(shardName) +
                                        " but that shard does not contain it");
  return Status::success();
}

} // namespace

Reader::Reader(std::unique_ptr<Impl> impl) : impl(std::move(impl)) {}
Reader::Reader(Reader &&) noexcept = default;
Reader &Reader::operator=(Reader &&) noexcept = default;
Reader::~Reader() = default;

Expected<Reader> Reader::open(const std::string &path,
                              const ReaderOptions &options) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return ioError(path, "stat", errno);
  std::string target = path;
  if (S_ISDIR(st.st_mode)) {
    if (isRegularFile(joinPath(path, kIndexFileName))) {
      target = joinPath(path, kIndexFileName);
    } else if (isRegularFile(joinPath(path, "model.safetensors"))) {
      target = joinPath(path, "model.safetensors");
    } else {
      return Status::error("ST-1", path + ": directory holds neither " +
                                       kIndexFileName +
                                       " nor model.safetensors");
    }
  }
  if (endsWith(target, ".json")) {
    if (Status s = openIndex(target, options, *impl); !s)
      return s;
  } else {
    Expected<std::unique_ptr<Shard>> shard = loadShard(target, options);
    if (!shard)
      return shard.status();
    impl->shards.push_back(shard.take());
  }
  impl->finish();
  return Reader(std::move(impl));
}

const std::string &Reader::path() const { return impl->path; }

const std::vector<TensorInfo> &Reader::tensors() const { return impl->tensors; }

const TensorInfo *Reader::find(std::string_view name) const {
  auto it = std::lower_bound(
      impl->tensors.begin(), impl->tensors.end(), name,
      [](const TensorInfo &t, std::string_view n) { return t.name < n; });
  if (it == impl->tensors.end() || it->name != name)
    return nullptr;
  return &*it;
}

Expected<ByteSpan> Reader::data(std::string_view name) const {
  const TensorInfo *t = find(name);
  if (!t)
    return Status::error("ARG",
                         impl->path + ": no tensor named " + quote(name));
  if (!t->aligned)
    return Status::error(
        "ST-11", t->shard + ": tensor " + quote(name) + " at file byte " +
                     std::to_string(t->fileOffset) + " is misaligned for " +
                     safetensorsDTypeName(t->dtype) +
                     "; read it with copyTensor");
  const Shard &shard = *impl->shards[t->shardIndex];
  return ByteSpan{shard.base + t->fileOffset, t->byteSize()};
}

Status Reader::copyTensor(std::string_view name, void *dst,
                          size_t dstSize) const {
  const TensorInfo *t = find(name);
  if (!t)
    return Status::error("ARG",
                         impl->path + ": no tensor named " + quote(name));
  if (dstSize < t->byteSize() || (!dst && t->byteSize()))
    return Status::error("ARG", t->shard + ": tensor " + quote(name) +
                                    " needs " + std::to_string(t->byteSize()) +
                                    " bytes, destination has " +
                                    std::to_string(dstSize));
  if (t->byteSize())
    std::memcpy(dst, impl->shards[t->shardIndex]->base + t->fileOffset,
                t->byteSize());
  return Status::success();
}

const std::vector<std::string> &Reader::shards() const {
  return impl->shardPaths;
}

const std::map<std::string, std::string> &Reader::metadata(size_t shard) const {
  static const std::map<std::string, std::string> empty;
  if (shard >= impl->shards.size())
    return empty;
  return impl->shards[shard]->layout.metadata;
}

std::optional<uint64_t> Reader::indexTotalSize() const {
  return impl->totalSize;
}

uint64_t Reader::totalTensorBytes() const { return impl->totalBytes; }

//===----------------------------------------------------------------------===//
// Manifest (ST-12)
//===----------------------------------------------------------------------===//

std::vector<ManifestMismatch>
compareManifest(const std::vector<TensorInfo> &found,
                const std::vector<ManifestEntry> &expected) {
  std::map<std::string, const TensorInfo *> have;
  for (const TensorInfo &t : found)
    have.emplace(t.name, &t);
  std::map<std::string, const ManifestEntry *> want;
  for (const ManifestEntry &e : expected)
    want.emplace(e.name, &e);

  std::vector<ManifestMismatch> out;
  for (const auto &[name, e] : want) {
    auto it = have.find(name);
    if (it == have.end()) {
      if (!e->optional)
        out.push_back({ManifestMismatch::Missing, name,
                       std::string("expected ") +
                           safetensorsDTypeName(e->dtype) + " " +
                           shapeString(e->shape)});
      continue;
    }
    const TensorInfo &t = *it->second;
    if (t.dtype != e->dtype)
      out.push_back({ManifestMismatch::WrongDType, name,
                     std::string("expected ") + safetensorsDTypeName(e->dtype) +
                         ", found " + safetensorsDTypeName(t.dtype)});
    if (t.shape != e->shape)
      out.push_back({ManifestMismatch::WrongShape, name,
                     "expected " + shapeString(e->shape) + ", found " +
                         shapeString(t.shape)});
  }
  for (const auto &[name, t] : have)
    if (!want.count(name))
      out.push_back({ManifestMismatch::Unexpected, name,
                     std::string(safetensorsDTypeName(t->dtype)) + " " +
                         shapeString(t->shape) + " is not in the manifest"});
  std::sort(out.begin(), out.end(),
            [](const ManifestMismatch &a, const ManifestMismatch &b) {
              if (a.name != b.name)
                return a.name < b.name;
              return a.kind < b.kind;
            });
  return out;
}

Status checkManifest(std::string_view source,
                     const std::vector<TensorInfo> &found,
                     const std::vector<ManifestEntry> &expected) {
  std::vector<ManifestMismatch> mismatches = compareManifest(found, expected);
  if (mismatches.empty())
    return Status::success();
  size_t counts[4] = {0, 0, 0, 0};
  for (const ManifestMismatch &m : mismatches)
    ++counts[m.kind];
  static const char *const kKindNames[] = {"missing", "unexpected",
                                           "wrong dtype", "wrong shape"};
  std::string msg(source);
  msg += ": checkpoint does not match the parameter manifest (" +
         std::to_string(mismatches.size()) + " problems: ";
  bool first = true;
  for (int k = 0; k < 4; ++k) {
    if (!counts[k])
      continue;
    msg +=
        (first ? "" : ", ") + std::to_string(counts[k]) + " " + kKindNames[k];
    first = false;
  }
  msg += ")";
  constexpr size_t kShown = 20;
  for (size_t i = 0; i < mismatches.size() && i < kShown; ++i)
    msg += "\n  " + std::string(kKindNames[mismatches[i].kind]) + " " +
           quote(mismatches[i].name) + ": " + mismatches[i].detail;
  if (mismatches.size() > kShown)
    msg +=
        "\n  ... and " + std::to_string(mismatches.size() - kShown) + " more";
  return Status::error("ST-12", msg);
}

//===----------------------------------------------------------------------===//
// Writer
//===----------------------------------------------------------------------===//

namespace {

/// A temporary file next to its target, removed unless committed.
class TempFile {
public:
  TempFile(std::string target, const WriteOptions &options)
      : target(std::move(target)), options(options) {}
  TempFile(const TempFile &) = delete;
  TempFile &operator=(const TempFile &) = delete;
  ~TempFile() {
    if (fd >= 0)
      ::close(fd);
    if (!tmpPath.empty() && !committed)
      ::unlink(tmpPath.c_str());
  }

  Status create() {
    size_t slash = target.find_last_of('/');
    std::string dir =
        slash == std::string::npos ? "" : target.substr(0, slash + 1);
    std::string base =
        slash == std::string::npos ? target : target.substr(slash + 1);
    std::string pattern = dir + "." + base + ".tmp-XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    fd = ::mkstemp(buf.data());
    if (fd < 0)
      return ioError(target, "create temporary file", errno);
    tmpPath = buf.data();
    if (::fchmod(fd, 0644) != 0)
      return ioError(tmpPath, "fchmod", errno);
    return Status::success();
  }

  Status write(const void *data, size_t n) {
    if (!step("write"))
      return ioError(tmpPath, "write", EIO);
    const auto *p = static_cast<const uint8_t *>(data);
    while (n > 0) {
      ssize_t put = ::write(fd, p, std::min<size_t>(n, size_t(1) << 30));
      if (put < 0) {
        if (errno == EINTR)
          continue;
        return ioError(tmpPath, "write", errno);
      }
      p += put;
      n -= static_cast<size_t>(put);
    }
    return Status::success();
  }

  /// fsync and close.
  Status finish() {
    if (!step("fsync") || ::fsync(fd) != 0)
      return ioError(tmpPath, "fsync", errno ? errno : EIO);
    int rc = ::close(fd);
    fd = -1;
    if (rc != 0)
      return ioError(tmpPath, "close", errno);
    return Status::success();
  }

  Status commit() {
    if (!step("rename"))
      return ioError(target, "rename", EIO);
    if (::rename(tmpPath.c_str(), target.c_str()) != 0)
      return Status::error(StatusCode::Unavailable, "IO",
                           target + ": rename from " + tmpPath +
                               " failed: " + sysError(errno));
    committed = true;
    return Status::success();
  }

private:
  bool step(const char *what) {
    errno = 0;
    if (!options.faultHook)
      return true;
    std::string name = std::string(what) + ":" + target;
    return options.faultHook(name);
  }

  std::string target;
  const WriteOptions &options;
  std::string tmpPath;
  int fd = -1;
  bool committed = false;
};

void syncDir(const std::string &dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return;
  ::fsync(fd);
  ::close(fd);
}

std::string jsonString(const std::string &s) { return json(s).dump(); }

/// Validates writer input with the reader's rules.
Status checkTensors(const std::string &path,
                    const std::vector<TensorData> &tensors,
                    const WriteOptions &options) {
  std::set<std::string_view> names;
  for (const TensorData &t : tensors) {
    std::string where = path + ": tensor " + quote(t.name) + ": ";
    if (t.name.empty() || t.name == "__metadata__")
      return Status::error("ST-6", where + "reserved or empty tensor name");
    if (findInvalidUtf8(t.name) != std::string_view::npos)
      return Status::error("ST-4", where + "name is not valid UTF-8");
    if (!names.insert(t.name).second)
      return Status::error("ST-5", where + "duplicate tensor name");
    uint64_t elements = 1;
    for (int64_t d : t.shape) {
      if (d < 0)
        return Status::error("ST-6", where + "negative dimension in shape " +
                                         shapeString(t.shape));
      if (__builtin_mul_overflow(elements, uint64_t(d), &elements))
        return Status::error("ST-7", where + "element count overflows");
    }
    uint64_t bits;
    if (__builtin_mul_overflow(elements, uint64_t(dtypeBits(t.dtype)), &bits) ||
        bits % 8 != 0)
      return Status::error("ST-7", where + safetensorsDTypeName(t.dtype) +
                                       " x " + shapeString(t.shape) +
                                       " does not fill whole bytes or "
                                       "overflows");
    if (bits / 8 != t.size)
      return Status::error("ST-7", where + "has " + std::to_string(t.size) +
                                       " bytes, dtype " +
                                       safetensorsDTypeName(t.dtype) + " x " +
                                       shapeString(t.shape) + " needs " +
                                       std::to_string(bits / 8));
    if (t.size && !t.data)
      return Status::error("ARG", where + "null data");
  }
  for (const auto &[k, v] : options.metadata)
    if (findInvalidUtf8(k) != std::string_view::npos ||
        findInvalidUtf8(v) != std::string_view::npos)
      return Status::error("ST-10", path + ": __metadata__ entry " + quote(k) +
                                        " is not valid UTF-8");
  return Status::success();
}

/// Writes one safetensors file (tensors given by index) into an open temp.
Status writeTensors(TempFile &out, const std::vector<TensorData> &all,
                    std::vector<size_t> picked,
                    const std::map<std::string, std::string> &metadata) {
  // Data order: alignment descending, then name, so every tensor stays
  // aligned without padding. Header order: by name.
  std::vector<size_t> dataOrder = picked;
  std::sort(dataOrder.begin(), dataOrder.end(), [&](size_t a, size_t b) {
    unsigned aa = dtypeAlignment(all[a].dtype),
             ab = dtypeAlignment(all[b].dtype);
    if (aa != ab)
      return aa > ab;
    return all[a].name < all[b].name;
  });
  std::map<size_t, std::pair<uint64_t, uint64_t>> offsets;
  uint64_t cursor = 0;
  for (size_t i : dataOrder) {
    offsets[i] = {cursor, cursor + all[i].size};
    cursor += all[i].size;
  }
  std::sort(picked.begin(), picked.end(),
            [&](size_t a, size_t b) { return all[a].name < all[b].name; });

  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto &[k, v] : metadata) {
      header += (first ? "" : ",") + jsonString(k) + ":" + jsonString(v);
      first = false;
    }
    header += "}";
  }
  for (size_t i : picked) {
    const TensorData &t = all[i];
    if (header.size() > 1)
      header += ",";
    header += jsonString(t.name) + ":{\"dtype\":\"" +
              safetensorsDTypeName(t.dtype) + "\",\"shape\":[";
    for (size_t d = 0; d < t.shape.size(); ++d)
      header += (d ? "," : "") + std::to_string(t.shape[d]);
    header += "],\"data_offsets\":[" + std::to_string(offsets[i].first) + "," +
              std::to_string(offsets[i].second) + "]}";
  }
  header += "}";
  while ((kPrefixBytes + header.size()) % 8 != 0)
    header += ' ';

  uint8_t prefix[kPrefixBytes];
  uint64_t n = header.size();
  for (int b = 0; b < 8; ++b)
    prefix[b] = static_cast<uint8_t>(n >> (8 * b));
  if (Status s = out.write(prefix, sizeof(prefix)); !s)
    return s;
  if (Status s = out.write(header.data(), header.size()); !s)
    return s;
  for (size_t i : dataOrder)
    if (all[i].size)
      if (Status s = out.write(all[i].data, all[i].size); !s)
        return s;
  return out.finish();
}

} // namespace

Status writeFile(const std::string &path,
                 const std::vector<TensorData> &tensors,
                 const WriteOptions &options) {
  if (Status s = checkTensors(path, tensors, options); !s)
    return s;
  std::vector<size_t> all(tensors.size());
  for (size_t i = 0; i < all.size(); ++i)
    all[i] = i;
  TempFile out(path, options);
  if (Status s = out.create(); !s)
    return s;
  if (Status s = writeTensors(out, tensors, all, options.metadata); !s)
    return s;
  if (Status s = out.commit(); !s)
    return s;
  syncDir(parentDir(path));
  return Status::success();
}

Status writeSharded(const std::string &dir,
                    const std::vector<TensorData> &tensors, unsigned numShards,
                    const WriteOptions &options) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return Status::error("ARG", dir + ": not an existing directory");
  size_t maxShards = std::max<size_t>(1, tensors.size());
  if (numShards < 1 || numShards > maxShards)
    return Status::error(
        "ARG", dir + ": cannot split " + std::to_string(tensors.size()) +
                   " tensors into " + std::to_string(numShards) + " shards");
  std::string indexPath = joinPath(dir, kIndexFileName);
  if (Status s = checkTensors(indexPath, tensors, options); !s)
    return s;

  // Contiguous, byte-balanced, non-empty shards in name order.
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return tensors[a].name < tensors[b].name;
  });
  uint64_t total = 0;
  for (const TensorData &t : tensors)
    total += t.size;
  uint64_t target = (total + numShards - 1) / numShards;
  std::vector<std::vector<size_t>> groups(numShards);
  size_t next = 0;
  for (unsigned s = 0; s < numShards; ++s) {
    bool isLast = s + 1 == numShards;
    size_t shardsAfter = numShards - s - 1;
    uint64_t bytes = 0;
    while (next < order.size()) {
      uint64_t size = tensors[order[next]].size;
      if (!isLast && !groups[s].empty() &&
          (order.size() - next <= shardsAfter || bytes + size > target))
        break;
      bytes += size;
      groups[s].push_back(order[next++]);
    }
  }

  auto shardName = [&](unsigned s) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "model-%05u-of-%05u.safetensors", s + 1,
                  numShards);
    return std::string(buf);
  };
  std::vector<std::unique_ptr<TempFile>> temps;
  json weightMap = json::object();
  for (unsigned s = 0; s < numShards; ++s) {
    temps.push_back(
        std::make_unique<TempFile>(joinPath(dir, shardName(s)), options));
    if (Status st = temps.back()->create(); !st)
      return st;
    if (Status st =
            writeTensors(*temps.back(), tensors, groups[s], options.metadata);
        !st)
      return st;
    for (size_t i : groups[s])
      weightMap[tensors[i].name] = shardName(s);
  }
  json index = json::object();
  index["metadata"] = json::object();
  index["metadata"]["total_size"] = total;
  index["weight_map"] = std::move(weightMap);
  std::string text = index.dump(2) + "\n";
  temps.push_back(std::make_unique<TempFile>(indexPath, options));
  if (Status st = temps.back()->create(); !st)
    return st;
  if (Status st = temps.back()->write(text.data(), text.size()); !st)
    return st;
  if (Status st = temps.back()->finish(); !st)
    return st;
  // Shards first, index last: a reader never sees an index naming
  // shards that are not there yet.
  for (auto &t : temps)
    if (Status st = t->commit(); !st)
      return st;
  syncDir(dir);
  return Status::success();
}

} // namespace v4::safetensors
