//===- Safetensors.cpp - validated safetensors reader and writer ----------===//
//
// See Safetensors.h for the rules. Parsing uses nlohmann-json with
// JSON_NOEXCEPTION: only non-throwing entry points are used (parse with
// allow_exceptions=false, sax_parse, type-checked accessors, dump() of
// strings already checked to be UTF-8), because any internal throw aborts.
//
//===----------------------------------------------------------------------===//

#include "runtime/safetensors/Safetensors.h"

#include "runtime/base/JsonText.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iterator>
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

/// 's' for messages; a name longer than 256 bytes is cut (a header may
/// hold one of 100 MB, and a message must not cost a multiple of it).
std::string quote(std::string_view s) {
  constexpr size_t kShown = 256;
  std::string out = "'";
  out.append(s.data(), std::min(s.size(), kShown));
  out += "'";
  if (s.size() > kShown)
    out += "... (" + std::to_string(s.size()) + " bytes)";
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

/// "<what> byte N (file byte M)" for byte `pos` of a text at `fileBase`.
std::string byteAt(const char *what, uint64_t pos, uint64_t fileBase) {
  return std::string(what) + " byte " + std::to_string(pos) + " (file byte " +
         std::to_string(fileBase + pos) + ")";
}

/// nlohmann's message without its "[json.exception.parse_error.101] " prefix.
std::string syntaxText(const json::exception &ex) {
  std::string message = ex.what();
  size_t close = message.find("] ");
  if (message.rfind("[json.exception", 0) == 0 && close != std::string::npos)
    message.erase(0, close + 2);
  return message;
}

/// The longest accepted JSON string (key or value). nlohmann's lexer keeps
/// two growing copies of the string being read, so one 100 MB name cost 4.4x
/// the header before its error; no real name or metadata value is near this.
constexpr uint64_t kMaxJsonStringBytes = uint64_t(1) << 24;

/// The pre-parse scan of a header or index (runtime/base/JsonText.h): the
/// string-length bound, the root keys' offsets and the key count.
JsonTextScan scanText(std::string_view text) {
  JsonTextLimits limits;
  limits.maxStringBytes = kMaxJsonStringBytes;
  return scanJsonText(text, limits);
}

/// `rule` error for JsonTextScan::longStringAt, if set.
Status checkStringLengths(const std::string &source, const JsonTextScan &scan,
                          const char *rule, const char *what,
                          uint64_t fileBase) {
  if (scan.longStringAt == JsonTextScan::npos)
    return Status::success();
  return Status::error(
      rule, source + ": " + what + " string at " +
                byteAt(what, scan.longStringAt, fileBase) + " is longer than " +
                std::to_string(kMaxJsonStringBytes) + " bytes");
}

/// ST-4 (or `rule`) on JSON text before it is parsed: valid UTF-8 and an
/// object ('{' first; '<' is taken for an HTML page). `what` names the text
/// ("header" or "index"), `fileBase` its offset in the file.
Status checkJsonText(const std::string &source, std::string_view text,
                     uint64_t fileBase, const char *rule, const char *what) {
  auto at = [&](uint64_t pos) { return byteAt(what, pos, fileBase); };
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
  return Status::success();
}

/// What a number event is, for messages ("found ..."); other values are
/// named as nlohmann's type_name() names them ("string", "object").
constexpr const char *kKindNegative = "a negative integer";
constexpr const char *kKindFloat = "a non-integer number";

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

/// The names of one JSON object's entries, for the duplicate check and for
/// lookups: open addressing over entry indices, sized once from the
/// pre-scan's key count (JsonTextScan::keys) and kept at most half full.
/// `NameOf(i)` gives entry i's name as a string_view.
class NameTable {
public:
  explicit NameTable(uint64_t keys) {
    size_t slots = 16;
    while (slots < 2 * keys + 2)
      slots *= 2;
    slots_.assign(slots, 0);
  }

  /// The index of the entry named `k`, or -1.
  template <typename NameOf>
  int64_t find(std::string_view k, NameOf nameOf) const {
    if (slots_.empty())
      return -1;
    size_t mask = slots_.size() - 1;
    for (size_t h = std::hash<std::string_view>()(k) & mask; slots_[h];
         h = (h + 1) & mask)
      if (nameOf(slots_[h] - 1) == k)
        return slots_[h] - 1;
    return -1;
  }

  /// Adds entry `index`, named `k` (absent: see find), growing the table
  /// only if the pre-scan miscounted (invalid JSON).
  template <typename NameOf>
  void insert(std::string_view k, uint32_t index, NameOf nameOf) {
    if (2 * (size_t(index) + 1) >= slots_.size()) {
      std::vector<uint32_t> old(std::max<size_t>(16, 2 * slots_.size()), 0);
      old.swap(slots_);
      for (uint32_t slot : old)
        if (slot)
          place(nameOf(slot - 1), slot);
    }
    place(k, index + 1);
  }

  /// Frees the table (no lookups after this).
  void release() { std::vector<uint32_t>().swap(slots_); }

private:
  void place(std::string_view k, uint32_t slot) {
    size_t mask = slots_.size() - 1;
    size_t h = std::hash<std::string_view>()(k) & mask;
    while (slots_[h])
      h = (h + 1) & mask;
    slots_[h] = slot;
  }

  std::vector<uint32_t> slots_; // entry index + 1, 0 = empty
};

/// Upper bounds that keep a header's cost proportional to its size: a rank
/// is 8 bytes a dimension once parsed but may be 2 bytes of text ("1,"),
/// and metadata entries cost a map node each. Real checkpoints use rank <= 4
/// and a handful of metadata keys.
constexpr size_t kMaxRank = 64;
constexpr size_t kMaxMetadataKeys = 1024;

/// ST-4..ST-8 and ST-10 in one SAX pass over the header, without a DOM: each
/// entry is checked as it is read and recorded compactly (names in one arena,
/// dims in another), so a header costs about its own size before any error.
/// On a schema error the rest of the offending top-level entry is still read
/// (bounded by the depth limit, nothing recorded) so that a syntax or depth
/// error inside it is reported first; then parsing stops.
class HeaderSax {
public:
  struct Entry {
    uint64_t nameOffset, nameSize; // into `names`
    uint64_t dimsOffset;           // into `dims` (LEB128, see putDim)
    uint64_t begin = 0, end = 0, numElements = 1;
    uint64_t keyByte = 0;
    uint32_t rank = 0;
    DType dtype = DType::F32;
  };

  HeaderSax(const std::string &source, std::string_view header,
            unsigned maxDepth, std::vector<uint64_t> keyOffsets)
      : source(source), maxDepth(maxDepth), keyOffsets(std::move(keyOffsets)),
        table(this->keyOffsets.size()) {
    // Reservations are virtual memory until used; exact where known.
    entries.reserve(this->keyOffsets.size());
    names.reserve(header.size());
    dims.reserve(header.size());
  }

  // Results.
  std::vector<Entry> entries;
  std::string names;
  std::string dims;
  std::map<std::string, std::string> metadata;
  std::optional<Status> failure; // the first error, if any
  size_t syntaxPosition = 0;
  std::string syntaxMessage;
  bool syntax = false;

  /// Frees what only the parse needs (the name table and the key offsets)
  /// before the caller builds its output from `entries`.
  void releaseLookup() {
    table.release();
    std::vector<uint64_t>().swap(keyOffsets);
  }

  /// The dims of `e`, decoded.
  std::vector<int64_t> shape(const Entry &e) const {
    std::vector<int64_t> out;
    size_t at = e.dimsOffset;
    for (uint32_t d = 0; d < e.rank; ++d) {
      uint64_t v = 0;
      for (unsigned shift = 0;; shift += 7) {
        uint8_t byte = static_cast<uint8_t>(dims[at++]);
        v |= uint64_t(byte & 0x7F) << shift;
        if (!(byte & 0x80))
          break;
      }
      out.push_back(static_cast<int64_t>(v));
    }
    return out;
  }

  std::string_view name(const Entry &e) const {
    return std::string_view(names).substr(e.nameOffset, e.nameSize);
  }
  /// "<source>: tensor '<name>' (header byte N): ".
  std::string where(const Entry &e) const {
    return source + ": tensor " + quote(name(e)) + " (header byte " +
           std::to_string(e.keyByte) + "): ";
  }

  // nlohmann::json SAX interface.
  bool null() { return scalar("null"); }
  bool boolean(bool) { return scalar("boolean"); }
  bool number_integer(json::number_integer_t) { return scalar(kKindNegative); }
  bool number_float(json::number_float_t, const json::string_t &) {
    return scalar(kKindFloat);
  }
  bool binary(json::binary_t &) { return scalar("binary"); }
  bool number_unsigned(json::number_unsigned_t v) {
    if (skipping())
      return true;
    switch (top()) {
    case Ctx::Shape: {
      Entry &e = entries.back();
      if (e.rank >= kMaxRank)
        return fail("ST-6", where(e) + "shape has more than " +
                                std::to_string(kMaxRank) + " dimensions");
      if (v > static_cast<uint64_t>(INT64_MAX))
        return fail("ST-7", where(e) + "shape[" + std::to_string(e.rank) +
                                "] = " + std::to_string(v) +
                                " exceeds the int64 range");
      putDim(v);
      ++e.rank;
      shapeOverflow |= __builtin_mul_overflow(e.numElements, v, &e.numElements);
      return true;
    }
    case Ctx::Offsets: {
      Entry &e = entries.back();
      if (offsetCount >= 2)
        return fail("ST-6", where(e) + "data_offsets must be an array of "
                                       "two integers");
      (offsetCount++ == 0 ? e.begin : e.end) = v;
      return true;
    }
    default:
      return scalar("number");
    }
  }
  bool string(json::string_t &s) {
    if (skipping())
      return true;
    if (top() == Ctx::Metadata) {
      metadata[currentKey] = std::move(s);
      return true;
    }
    if (top() == Ctx::Entry && field == Field::DType) {
      Entry &e = entries.back();
      std::optional<DType> dtype = parseSafetensorsDType(s);
      if (!dtype)
        return fail("ST-6", where(e) + "unknown dtype " + quote(s) +
                                " (supported: BF16, F16, F32, I8, U8, I32, "
                                "I64, F8_E4M3, F8_E8M0, F4)");
      e.dtype = *dtype;
      return true;
    }
    return scalar("string");
  }
  bool start_object(std::size_t) { return open(/*object=*/true); }
  bool start_array(std::size_t) { return open(/*object=*/false); }
  bool end_array() { return close(); }
  bool end_object() { return close(); }

  bool key(json::string_t &k) {
    if (skipping())
      return true;
    switch (top()) {
    case Ctx::Root: {
      uint64_t at = ordinal < keyOffsets.size() ? keyOffsets[ordinal] : 0;
      ++ordinal;
      atMetadata = k == "__metadata__";
      if (atMetadata) {
        if (seenMetadata)
          return fail("ST-5", source + ": duplicate key '__metadata__' at " +
                                  headerAt(at));
        seenMetadata = true;
        return true;
      }
      return insertName(k, at);
    }
    case Ctx::Entry: {
      Entry &e = entries.back();
      Field f = k == "dtype"          ? Field::DType
                : k == "shape"        ? Field::Shape
                : k == "data_offsets" ? Field::Offsets
                                      : Field::None;
      if (f == Field::None)
        return fail("ST-6", where(e) + "unexpected key " + quote(k) +
                                " (allowed: dtype, shape, data_offsets)");
      if (seenFields & unsigned(f))
        return fail("ST-5", source + ": duplicate key " + quote(k) +
                                " in entry " + quote(name(e)));
      seenFields |= unsigned(f);
      field = f;
      return true;
    }
    case Ctx::Metadata:
      if (metadata.count(k))
        return fail("ST-5", source + ": duplicate key " + quote(k) +
                                " in entry '__metadata__'");
      if (metadata.size() >= kMaxMetadataKeys)
        return fail("ST-10", source + ": __metadata__ has more than " +
                                 std::to_string(kMaxMetadataKeys) + " keys");
      currentKey = std::move(k); // the lexer's buffer, reset per token
      return true;
    default:
      return true; // unreachable: other contexts are arrays
    }
  }

  bool parse_error(std::size_t position, const std::string &,
                   const json::exception &ex) {
    syntax = true;
    syntaxPosition = position;
    syntaxMessage = syntaxText(ex);
    return false;
  }

  bool tooDeep = false;

private:
  enum class Ctx : uint8_t { Root, Entry, Metadata, Shape, Offsets, Skip };
  enum class Field : uint8_t { None = 0, DType = 1, Shape = 2, Offsets = 4 };

  Ctx top() const { return stack.back(); }

  /// Dims are stored LEB128-encoded: never more bytes than their decimal
  /// text, so a header of huge ranks costs no more than its size.
  void putDim(uint64_t v) {
    do {
      uint8_t byte = v & 0x7F;
      v >>= 7;
      dims.push_back(static_cast<char>(byte | (v ? 0x80 : 0)));
    } while (v);
  }
  bool skipping() const { return failure.has_value(); }

  static std::string headerAt(uint64_t pos) {
    return byteAt("header", pos, kPrefixBytes);
  }

  /// Records the first error. An error at the top level stops at once;
  /// inside an entry the entry is read to its end first (see the class).
  bool fail(const char *rule, std::string message) {
    failure = Status::error(rule, std::move(message));
    return stack.size() > 1;
  }

  /// A scalar where the schema wants something else.
  bool scalar(const char *kind) {
    if (skipping())
      return true;
    return mismatch(kind);
  }

  /// The message for a value of `kind` in the current position.
  bool mismatch(const char *kind) {
    switch (top()) {
    case Ctx::Root:
      if (atMetadata)
        return fail("ST-10", source +
                                 ": __metadata__ must be an object of "
                                 "strings, found " +
                                 kind);
      return fail("ST-6", where(entries.back()) +
                              "entry must be an object, found " + kind);
    case Ctx::Metadata:
      return fail("ST-10", source + ": __metadata__ value " +
                               quote(currentKey) + " must be a string, found " +
                               kind);
    case Ctx::Entry: {
      Entry &e = entries.back();
      if (field == Field::DType)
        return fail("ST-6", where(e) + "dtype must be a string, found " + kind);
      if (field == Field::Shape)
        return fail("ST-6", where(e) + "shape must be an array, found " + kind);
      return fail("ST-6", where(e) + "data_offsets must be an array of "
                                     "two integers");
    }
    case Ctx::Shape:
      return fail("ST-6", where(entries.back()) + "shape[" +
                              std::to_string(entries.back().rank) +
                              "] must be a non-negative integer, found " +
                              kind);
    case Ctx::Offsets:
      return fail("ST-6", where(entries.back()) + "data_offsets[" +
                              std::to_string(offsetCount) +
                              "] must be a non-negative integer, found " +
                              kind);
    default:
      return true;
    }
  }

  bool open(bool object) {
    if (stack.size() >= maxDepth) {
      tooDeep = true;
      failure.reset();
      return false;
    }
    if (skipping()) {
      stack.push_back(Ctx::Skip);
      return true;
    }
    if (stack.empty()) {
      stack.push_back(Ctx::Root); // the text starts with '{' (checked)
      return true;
    }
    const char *kind = object ? "object" : "array";
    switch (top()) {
    case Ctx::Root:
      if (atMetadata && object) {
        stack.push_back(Ctx::Metadata);
        return true;
      }
      if (!atMetadata && object) {
        stack.push_back(Ctx::Entry);
        seenFields = 0;
        field = Field::None;
        shapeOverflow = false;
        return true;
      }
      break;
    case Ctx::Entry:
      if (!object && field == Field::Shape) {
        entries.back().dimsOffset = dims.size();
        stack.push_back(Ctx::Shape);
        return true;
      }
      if (!object && field == Field::Offsets) {
        offsetCount = 0;
        stack.push_back(Ctx::Offsets);
        return true;
      }
      break;
    default:
      break;
    }
    mismatch(kind);
    stack.push_back(Ctx::Skip); // read the wrong value to its end
    return true;
  }

  bool close() {
    Ctx ctx = stack.back();
    stack.pop_back();
    if (skipping())
      return stack.size() > 1; // stop once back at the top level
    if (ctx == Ctx::Offsets && offsetCount != 2)
      return fail("ST-6", where(entries.back()) +
                              "data_offsets must be an array of two integers");
    if (ctx == Ctx::Entry)
      return finishEntry();
    return true;
  }

  /// ST-6 (required keys), ST-7 and ST-8 once an entry is complete.
  bool finishEntry() {
    Entry &e = entries.back();
    static const std::pair<Field, const char *> required[] = {
        {Field::DType, "dtype"},
        {Field::Shape, "shape"},
        {Field::Offsets, "data_offsets"}};
    for (auto [f, label] : required)
      if (!(seenFields & unsigned(f)))
        return fail("ST-6", where(e) + "missing key " + quote(label));
    std::vector<int64_t> shape = this->shape(e);
    std::string described = std::string("dtype ") +
                            std::string(safetensorsDTypeName(e.dtype)) + " x " +
                            shapeString(shape);
    if (shapeOverflow)
      return fail("ST-7", where(e) + "element count of " + shapeString(shape) +
                              " overflows 64 bits");
    uint64_t bits;
    if (__builtin_mul_overflow(e.numElements, uint64_t(dtypeBits(e.dtype)),
                               &bits))
      return fail("ST-7", where(e) + "byte count of " + described +
                              " overflows 64 bits");
    if (bits % 8 != 0)
      return fail("ST-7", where(e) + described + " has " +
                              std::to_string(e.numElements) + " elements of " +
                              std::to_string(dtypeBits(e.dtype)) +
                              " bits, which do not fill whole bytes");
    if (e.begin > e.end)
      return fail("ST-8", where(e) + "data_offsets [" +
                              std::to_string(e.begin) + ", " +
                              std::to_string(e.end) + "] begin after end");
    if (e.end - e.begin != bits / 8)
      return fail("ST-7", where(e) + "data_offsets span " +
                              std::to_string(e.end - e.begin) + " bytes, " +
                              described + " needs " + std::to_string(bits / 8));
    return true;
  }

  /// ST-5: records a new entry named `k`, rejecting a duplicate name.
  bool insertName(const std::string &k, uint64_t at) {
    auto nameOf = [&](uint32_t i) { return name(entries[i]); };
    if (table.find(k, nameOf) >= 0)
      return fail("ST-5", source + ": duplicate tensor name " + quote(k) +
                              " at " + headerAt(at));
    if (entries.size() + 1 >= UINT32_MAX)
      return fail("ST-4", source + ": more than 2^32 tensors");
    Entry e{};
    e.nameOffset = names.size();
    e.nameSize = k.size();
    e.dimsOffset = dims.size();
    e.numElements = 1;
    e.keyByte = at;
    names += k;
    entries.push_back(e);
    table.insert(k, static_cast<uint32_t>(entries.size() - 1), nameOf);
    return true;
  }

  const std::string &source;
  unsigned maxDepth;
  std::vector<uint64_t> keyOffsets;
  NameTable table;
  std::vector<Ctx> stack;
  size_t ordinal = 0;
  std::string currentKey;
  bool seenMetadata = false;
  bool atMetadata = false; // the root key being read is __metadata__
  unsigned seenFields = 0;
  Field field = Field::None;
  bool shapeOverflow = false;
  unsigned offsetCount = 0;
};

/// ST-4..ST-11 on the header text. When `owned` holds the text, it is freed
/// once read, before the layout is built (so that a header at its cap costs
/// at most 4x its size): `header` must not be used after that.
Expected<FileLayout> parseHeader(const std::string &source,
                                 std::string_view header, uint64_t fileSize,
                                 const ReaderOptions &options,
                                 std::string *owned = nullptr) {
  FileLayout layout;
  layout.fileSize = fileSize;
  layout.headerSize = header.size();
  layout.dataOffset = kPrefixBytes + header.size();
  const uint64_t dataSize = fileSize - layout.dataOffset;

  if (Status s = checkJsonText(source, header, kPrefixBytes, "ST-4", "header");
      !s)
    return s;
  JsonTextScan scan = scanText(header);
  if (Status s =
          checkStringLengths(source, scan, "ST-4", "header", kPrefixBytes);
      !s)
    return s;
  HeaderSax sax(source, header, options.maxJsonDepth,
                std::move(scan.rootKeyOffsets));
  json::sax_parse(header.begin(), header.end(), &sax);
  if (sax.tooDeep)
    return Status::error("ST-4", source + ": header JSON nests deeper than " +
                                     std::to_string(options.maxJsonDepth) +
                                     " levels");
  if (sax.syntax)
    return Status::error(
        "ST-4",
        source + ": header is not valid JSON at " +
            byteAt("header", sax.syntaxPosition ? sax.syntaxPosition - 1 : 0,
                   kPrefixBytes) +
            ": " + sax.syntaxMessage);
  if (sax.failure)
    return *sax.failure;
  sax.releaseLookup();
  if (owned)
    std::string().swap(*owned);
  using Entry = HeaderSax::Entry;
  const std::vector<Entry> &entries = sax.entries;

  // ST-9: contiguous cover of the data section, zero-size tensors included.
  std::vector<uint32_t> byOffset(entries.size());
  for (uint32_t i = 0; i < byOffset.size(); ++i)
    byOffset[i] = i;
  std::sort(byOffset.begin(), byOffset.end(), [&](uint32_t a, uint32_t b) {
    const Entry &x = entries[a], &y = entries[b];
    if (x.begin != y.begin)
      return x.begin < y.begin;
    if (x.end != y.end)
      return x.end < y.end;
    return sax.name(x) < sax.name(y);
  });
  uint64_t expected = 0;
  const Entry *prev = nullptr;
  for (uint32_t i : byOffset) {
    const Entry &t = entries[i];
    if (t.begin != expected) {
      std::string prevText = prev
                                 ? "previous tensor " + quote(sax.name(*prev)) +
                                       " ends at " + std::to_string(expected)
                                 : std::string("the data section starts at 0");
      const char *problem = t.begin > expected ? "gap of " : "overlap of ";
      uint64_t amount =
          t.begin > expected ? t.begin - expected : expected - t.begin;
      return Status::error("ST-9", sax.where(t) + "starts at data byte " +
                                       std::to_string(t.begin) + " but " +
                                       prevText + ": " + problem +
                                       std::to_string(amount) + " bytes");
    }
    expected = t.end;
    prev = &t;
  }
  if (expected != dataSize) {
    if (expected > dataSize)
      return Status::error(
          "ST-9", sax.where(*prev) + "ends at data byte " +
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

  // ST-11: alignment of every non-empty tensor's absolute offset (cannot
  // overflow: ST-9 bounds every end by the file size).
  std::vector<bool> misaligned(entries.size());
  for (uint32_t i : byOffset) {
    const Entry &t = entries[i];
    uint64_t fileOffset = layout.dataOffset + t.begin;
    unsigned align = dtypeAlignment(t.dtype);
    if (t.end == t.begin || fileOffset % align == 0)
      continue;
    if (!options.allowMisaligned)
      return Status::error("ST-11",
                           sax.where(t) + "data at file byte " +
                               std::to_string(fileOffset) + " is not " +
                               std::to_string(align) + "-byte aligned as " +
                               safetensorsDTypeName(t.dtype) +
                               " needs (header not padded to 8 bytes?)");
    misaligned[i] = true;
  }

  // The layout, sorted by name.
  std::vector<uint32_t> byName(std::move(byOffset));
  std::sort(byName.begin(), byName.end(), [&](uint32_t a, uint32_t b) {
    return sax.name(entries[a]) < sax.name(entries[b]);
  });
  layout.tensors.reserve(entries.size());
  for (uint32_t i : byName) {
    const Entry &e = entries[i];
    TensorInfo info;
    info.name = std::string(sax.name(e));
    info.dtype = e.dtype;
    info.shape = sax.shape(e);
    info.numElements = e.numElements;
    info.begin = e.begin;
    info.end = e.end;
    info.fileOffset = layout.dataOffset + e.begin;
    info.headerByte = e.keyByte;
    info.aligned = !misaligned[i];
    layout.tensors.push_back(std::move(info));
  }
  layout.metadata = std::move(sax.metadata);
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
  Expected<FileLayout> layout =
      parseHeader(path, header, size, options, &header);
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

  /// Moves every shard's tensors into one list (the shards keep none: a
  /// header at the cap has ~1.7M of them). The first shard's list is taken
  /// whole, so a single file is never held twice; each shard's list is freed
  /// as soon as it is moved.
  void finish() {
    size_t count = 0;
    for (const auto &shard : shards)
      count += shard->layout.tensors.size();
    for (size_t i = 0; i < shards.size(); ++i) {
      shardPaths.push_back(shards[i]->path);
      std::vector<TensorInfo> &list = shards[i]->layout.tensors;
      for (TensorInfo &t : list) {
        t.shardIndex = static_cast<uint32_t>(i);
        totalBytes += t.byteSize();
      }
      if (i == 0) {
        tensors = std::move(list);
        tensors.reserve(count);
      } else {
        std::move(list.begin(), list.end(), std::back_inserter(tensors));
      }
      std::vector<TensorInfo>().swap(list);
    }
    if (shards.size() > 1) // each shard's list is sorted already
      std::sort(tensors.begin(), tensors.end(),
                [](const TensorInfo &a, const TensorInfo &b) {
                  return a.name < b.name;
                });
  }
};

namespace {

/// ST-15: index shard names are plain names inside the model directory.
bool isPlainName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find('/') == std::string_view::npos &&
         name.find('\\') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos &&
         name.find("..") == std::string_view::npos;
}

/// Bounds that keep an index's cost proportional to its size: every object
/// but weight_map holds a set of its keys (for the duplicate check), and
/// each distinct shard is a file to open. Real indexes have two root keys,
/// one or two metadata keys and at most a few hundred shards.
constexpr size_t kMaxIndexObjectKeys = 1024;
constexpr size_t kMaxIndexShards = 65536;

/// ST-14 and ST-15 in one SAX pass over model.safetensors.index.json,
/// without a DOM: weight_map is recorded compactly (names in one arena,
/// shard names once each), so an index costs about its own size before any
/// error. Any other key is allowed and its value only checked for depth and
/// duplicate keys. The first error stops the parse.
class IndexSax {
public:
  struct Entry {
    uint64_t nameOffset; // into `names`
    uint32_t nameSize;
    uint32_t shard;                // into `shardNames`
    uint32_t foundIn = UINT32_MAX; // ST-16: the shard that holds it
  };

  /// `scan` is the text's JsonTextScan: the tables are sized once from its key
  /// count (reservations are virtual memory until used).
  IndexSax(const std::string &source, unsigned maxDepth, JsonTextScan scan,
           size_t textSize)
      : source(source), maxDepth(maxDepth),
        rootKeyOffsets(std::move(scan.rootKeyOffsets)), table(scan.keys) {
    entries.reserve(scan.keys);
    names.reserve(textSize);
  }

  // Results.
  std::vector<Entry> entries; // document order
  std::string names;
  std::vector<std::string> shardNames; // first-use order
  std::optional<uint64_t> totalSize;
  bool sawWeightMap = false;
  std::optional<Status> failure;
  bool tooDeep = false;
  bool syntax = false;
  size_t syntaxPosition = 0;
  std::string syntaxMessage;

  std::string_view name(const Entry &e) const {
    return std::string_view(names).substr(e.nameOffset, e.nameSize);
  }

  /// Entry i's name, for the NameTable.
  struct NameOf {
    const IndexSax *sax;
    std::string_view operator()(uint32_t i) const {
      return sax->name(sax->entries[i]);
    }
  };
  NameOf nameOf() const { return NameOf{this}; }

  /// The weight_map entry named `k`, or nullptr.
  Entry *find(std::string_view k) {
    int64_t i = table.find(k, nameOf());
    return i < 0 ? nullptr : &entries[i];
  }

  // nlohmann::json SAX interface.
  bool null() { return value(nullptr); }
  bool boolean(bool) { return value("boolean"); }
  bool number_integer(json::number_integer_t) { return value(kKindNegative); }
  bool number_float(json::number_float_t, const json::string_t &) {
    return value(kKindFloat);
  }
  bool binary(json::binary_t &) { return value("binary"); }
  bool number_unsigned(json::number_unsigned_t v) {
    if (pending == Pending::TotalSize)
      totalSize = v;
    return value("number");
  }
  bool string(json::string_t &s) {
    if (pending == Pending::Shard)
      return shard(s);
    return value("string");
  }
  bool start_object(std::size_t) { return open(/*object=*/true); }
  bool start_array(std::size_t) { return open(/*object=*/false); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(json::string_t &k) {
    Scope &scope = scopes.back();
    if (scope.ctx == Ctx::WeightMap) {
      pending = Pending::Shard;
      return insertName(k);
    }
    uint64_t at = 0;
    if (scopes.size() == 1)
      at = rootKey < rootKeyOffsets.size() ? rootKeyOffsets[rootKey] : 0;
    if (scopes.size() == 1)
      ++rootKey;
    if (!scope.keys.insert(k).second) {
      if (scopes.size() == 1)
        return fail("ST-14", source + ": duplicate key " + quote(k) + " at " +
                                 byteAt("index", at, 0));
      return fail("ST-14",
                  source + ": duplicate key " + quote(k) + " in " + path());
    }
    if (scope.keys.size() > kMaxIndexObjectKeys)
      return fail("ST-14", source + ": " + path() + " has more than " +
                               std::to_string(kMaxIndexObjectKeys) +
                               " keys (only $.weight_map may have more)");
    pending = Pending::Other;
    if (scope.ctx == Ctx::Root && k == "weight_map")
      pending = Pending::WeightMap;
    else if (scope.ctx == Ctx::Root && k == "metadata")
      pending = Pending::Metadata;
    else if (scope.ctx == Ctx::Metadata && k == "total_size")
      pending = Pending::TotalSize;
    if (scopes.size() <= 2)
      lastKey[scopes.size() - 1] = k;
    return true;
  }

  bool parse_error(std::size_t position, const std::string &,
                   const json::exception &ex) {
    syntax = true;
    syntaxPosition = position;
    syntaxMessage = syntaxText(ex);
    return false;
  }

private:
  enum class Ctx : uint8_t { Root, WeightMap, Metadata, Other };
  /// What the value after the last key is.
  enum class Pending : uint8_t {
    None,
    Other,
    WeightMap,
    Metadata,
    TotalSize,
    Shard
  };
  struct Scope {
    Ctx ctx;
    bool object;
    std::set<std::string> keys; // not for weight_map
  };

  /// "$.metadata" and the like, for messages.
  std::string path() const {
    if (scopes.size() <= 1)
      return "$";
    std::string p = "$." + lastKey[0];
    if (scopes.size() > 2)
      p += "." + lastKey[1] + (scopes.size() > 3 ? "..." : "");
    return p;
  }

  bool fail(const char *rule, std::string message) {
    failure = Status::error(rule, std::move(message));
    return false;
  }

  /// A scalar value (`kind` for messages; nullptr for null).
  bool value(const char *kind) {
    Pending p = std::exchange(pending, Pending::None);
    switch (p) {
    case Pending::WeightMap:
      return wrongWeightMap(kind ? kind : "null");
    case Pending::Metadata:
      if (kind)
        return fail("ST-14", source +
                                 ": $.metadata must be an object, "
                                 "found " +
                                 kind);
      return true;
    case Pending::TotalSize:
      if (!totalSize)
        return fail("ST-14", source +
                                 ": $.metadata.total_size must be a "
                                 "non-negative integer, found " +
                                 (kind ? kind : "null"));
      return true;
    case Pending::Shard:
      return wrongShard(kind ? kind : "null");
    default:
      return true;
    }
  }

  bool wrongWeightMap(const char *kind) {
    return fail("ST-14", source +
                             ": $.weight_map must be an object of "
                             "tensor name -> shard file name, found " +
                             kind);
  }
  bool wrongShard(const char *kind) {
    return fail("ST-14", source + ": $.weight_map[" +
                             quote(name(entries.back())) +
                             "] must be a string, found " + kind);
  }

  bool open(bool object) {
    if (scopes.size() >= maxDepth) {
      tooDeep = true;
      return false;
    }
    const char *kind = object ? "object" : "array";
    Ctx ctx = Ctx::Other;
    switch (std::exchange(pending, Pending::None)) {
    case Pending::WeightMap:
      if (!object)
        return wrongWeightMap(kind);
      sawWeightMap = true;
      ctx = Ctx::WeightMap;
      break;
    case Pending::Metadata:
      if (!object)
        return fail("ST-14", source +
                                 ": $.metadata must be an object, "
                                 "found " +
                                 kind);
      ctx = Ctx::Metadata;
      break;
    case Pending::TotalSize:
      return fail("ST-14", source +
                               ": $.metadata.total_size must be a "
                               "non-negative integer, found " +
                               kind);
    case Pending::Shard:
      return wrongShard(kind);
    default:
      ctx = scopes.empty() ? Ctx::Root : Ctx::Other;
      break;
    }
    scopes.push_back(Scope{ctx, object, {}});
    return true;
  }

  bool close() {
    scopes.pop_back();
    return true;
  }

  /// ST-14: records weight_map entry `k`, rejecting a duplicate name.
  bool insertName(const std::string &k) {
    if (find(k))
      return fail("ST-14", source + ": duplicate tensor name " + quote(k) +
                               " in $.weight_map");
    if (entries.size() + 1 >= UINT32_MAX)
      return fail("ST-14", source + ": more than 2^32 tensors");
    entries.push_back(Entry{names.size(), static_cast<uint32_t>(k.size()), 0});
    names += k;
    table.insert(k, static_cast<uint32_t>(entries.size() - 1), nameOf());
    return true;
  }

  /// ST-15 and the shard id of the last entry.
  bool shard(const std::string &s) {
    pending = Pending::None;
    Entry &e = entries.back();
    if (!isPlainName(s))
      return fail("ST-15", source + ": tensor " + quote(name(e)) +
                               " names shard " + quote(s) +
                               ", which is not a plain file name in the "
                               "model directory");
    auto it = shardIds.find(s);
    if (it == shardIds.end()) {
      if (shardNames.size() >= kMaxIndexShards)
        return fail("ST-14", source + ": tensor " + quote(name(e)) +
                                 " names a shard beyond the " +
                                 std::to_string(kMaxIndexShards) +
                                 " distinct shards an index may name");
      it = shardIds.emplace(s, static_cast<uint32_t>(shardNames.size())).first;
      shardNames.push_back(s);
    }
    e.shard = it->second;
    return true;
  }

  const std::string &source;
  unsigned maxDepth;
  std::vector<uint64_t> rootKeyOffsets;
  size_t rootKey = 0;
  std::vector<Scope> scopes;
  Pending pending = Pending::None;
  std::string lastKey[2];
  NameTable table;
  std::unordered_map<std::string, uint32_t> shardIds;
};

Status openIndex(const std::string &indexPath, const ReaderOptions &options,
                 Reader::Impl &impl) {
  Fd file;
  uint64_t size = 0;
  if (Status s = openRegular(indexPath, file, size, "ST-14"); !s)
    return s;
  if (size == 0)
    return Status::error("ST-14", indexPath + ": empty file");
  if (size > options.maxIndexBytes)
    return Status::error("ST-14", indexPath + ": index is " +
                                      std::to_string(size) +
                                      " bytes, above the cap " +
                                      std::to_string(options.maxIndexBytes));
  std::string text;
  text.resize(size);
  if (Status s = readFully(indexPath, file.fd, text.data(), size, 0); !s)
    return s;
  if (Status s = checkJsonText(indexPath, text, 0, "ST-14", "index"); !s)
    return s;
  JsonTextScan scan = scanText(text);
  if (Status s = checkStringLengths(indexPath, scan, "ST-14", "index", 0); !s)
    return s;
  IndexSax sax(indexPath, options.maxJsonDepth, std::move(scan), text.size());
  json::sax_parse(text.begin(), text.end(), &sax);
  std::string().swap(text);
  if (sax.tooDeep)
    return Status::error("ST-14",
                         indexPath + ": index JSON nests deeper than " +
                             std::to_string(options.maxJsonDepth) + " levels");
  if (sax.failure)
    return *sax.failure;
  if (sax.syntax)
    return Status::error(
        "ST-14",
        indexPath + ": index is not valid JSON at " +
            byteAt("index", sax.syntaxPosition ? sax.syntaxPosition - 1 : 0,
                   0) +
            ": " + sax.syntaxMessage);
  if (!sax.sawWeightMap)
    return Status::error("ST-14", indexPath + ": $.weight_map must be an "
                                              "object of tensor name -> "
                                              "shard file name");
  impl.totalSize = sax.totalSize;

  // Shards in name order; each exists (ST-15) and is valid (ST-1..ST-11).
  std::vector<uint32_t> order(sax.shardNames.size());
  for (uint32_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return sax.shardNames[a] < sax.shardNames[b];
  });
  std::vector<uint32_t> example(sax.shardNames.size(), UINT32_MAX);
  for (uint32_t i = 0; i < sax.entries.size(); ++i)
    if (example[sax.entries[i].shard] == UINT32_MAX)
      example[sax.entries[i].shard] = i;
  std::string dir = parentDir(indexPath);
  std::vector<uint32_t> position(sax.shardNames.size()); // id -> impl.shards
  for (uint32_t id : order) {
    const std::string &shardName = sax.shardNames[id];
    std::string shardPath = joinPath(dir, shardName);
    struct stat st;
    if (::stat(shardPath.c_str(), &st) != 0 && errno == ENOENT)
      return Status::error("ST-15",
                           indexPath + ": shard " + quote(shardName) +
                               " (named for tensor " +
                               quote(sax.name(sax.entries[example[id]])) +
                               ") does not exist at " + shardPath);
    Expected<std::unique_ptr<Shard>> shard = loadShard(shardPath, options);
    if (!shard)
      return shard.status();
    position[id] = static_cast<uint32_t>(impl.shards.size());
    impl.shards.push_back(shard.take());
  }

  // ST-16: each tensor in exactly the shard the index names.
  auto shardName = [&](uint32_t loaded) {
    return quote(sax.shardNames[order[loaded]]);
  };
  for (uint32_t s = 0; s < impl.shards.size(); ++s) {
    for (const TensorInfo &t : impl.shards[s]->layout.tensors) {
      IndexSax::Entry *e = sax.find(t.name);
      if (!e)
        return Status::error("ST-16", indexPath + ": tensor " + quote(t.name) +
                                          " is in shard " + shardName(s) +
                                          " but not listed in the index");
      if (e->foundIn != UINT32_MAX)
        return Status::error("ST-16", indexPath + ": tensor " + quote(t.name) +
                                          " appears in shards " +
                                          shardName(e->foundIn) + " and " +
                                          shardName(s));
      e->foundIn = s;
      if (position[e->shard] != s)
        return Status::error("ST-16", indexPath + ": tensor " + quote(t.name) +
                                          " is in shard " + shardName(s) +
                                          " but the index names shard " +
                                          quote(sax.shardNames[e->shard]));
    }
  }
  for (const IndexSax::Entry &e : sax.entries)
    if (e.foundIn == UINT32_MAX)
      return Status::error("ST-16", indexPath + ": tensor " +
                                        quote(sax.name(e)) +
                                        " is listed for shard " +
                                        quote(sax.shardNames[e.shard]) +
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
        "ST-11", impl->shardPaths[t->shardIndex] + ": tensor " + quote(name) +
                     " at file byte " + std::to_string(t->fileOffset) +
                     " is misaligned for " + safetensorsDTypeName(t->dtype) +
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
    return Status::error(
        "ARG", impl->shardPaths[t->shardIndex] + ": tensor " + quote(name) +
                   " needs " + std::to_string(t->byteSize()) +
                   " bytes, destination has " + std::to_string(dstSize));
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
    // The reader's rule: any JSON string but the reserved key names a
    // tensor, the empty one included (test/fuzz/safetensors/regress).
    if (t.name == "__metadata__")
      return Status::error("ST-6", where + "reserved tensor name");
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

/// Writes one safetensors file (tensors given by index) through `write`,
/// which takes the bytes in order: into an open temp (writeFile,
/// writeSharded) or memory (serialize).
Status writeTensors(const std::function<Status(const void *, size_t)> &write,
                    const std::vector<TensorData> &all,
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
  if (Status s = write(prefix, sizeof(prefix)); !s)
    return s;
  if (Status s = write(header.data(), header.size()); !s)
    return s;
  for (size_t i : dataOrder)
    if (all[i].size)
      if (Status s = write(all[i].data, all[i].size); !s)
        return s;
  return Status::success();
}

/// writeTensors into a temp file, then fsync and close it.
Status writeTensors(TempFile &out, const std::vector<TensorData> &all,
                    std::vector<size_t> picked,
                    const std::map<std::string, std::string> &metadata) {
  auto write = [&](const void *data, size_t n) { return out.write(data, n); };
  if (Status s = writeTensors(write, all, std::move(picked), metadata); !s)
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

Expected<std::vector<uint8_t>> serialize(const std::vector<TensorData> &tensors,
                                         const WriteOptions &options) {
  if (Status s = checkTensors("<memory>", tensors, options); !s)
    return s;
  std::vector<size_t> all(tensors.size());
  for (size_t i = 0; i < all.size(); ++i)
    all[i] = i;
  std::vector<uint8_t> bytes;
  auto write = [&](const void *data, size_t n) {
    const auto *p = static_cast<const uint8_t *>(data);
    bytes.insert(bytes.end(), p, p + n);
    return Status::success();
  };
  if (Status s = writeTensors(write, tensors, all, options.metadata); !s)
    return s;
  return bytes;
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
