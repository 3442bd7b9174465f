//===- Digest.cpp - SHA-256 of an artifact before it is parsed ------------===//

#include "runtime/src/Digest.h"

#include <openssl/evp.h>

#include <cctype>

namespace v4::rt {

Expected<std::string> sha256Hex(const void *data, size_t size) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (EVP_Digest(data, size, md, &len, EVP_sha256(), nullptr) != 1)
    return Status::error(StatusCode::Internal, "IO",
                         "OpenSSL's SHA-256 is unavailable");
  static const char digits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned i = 0; i < len; ++i) {
    hex += digits[md[i] >> 4];
    hex += digits[md[i] & 15];
  }
  return hex;
}

Expected<std::string> normalizeSha256(const std::string &expectedHex) {
  std::string expected = expectedHex;
  bool wellFormed = expected.size() == 64;
  for (char &c : expected) {
    wellFormed = wellFormed && std::isxdigit(static_cast<unsigned char>(c));
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (!wellFormed)
    return Status::error("ARG", "expected_sha256 '" + expectedHex +
                                    "' is not 64 hexadecimal digits");
  return expected;
}

Status checkSha256(const std::string &source, const void *data, size_t size,
                   const std::string &expected) {
  auto found = sha256Hex(data, size);
  if (!found)
    return found.status();
  if (*found != expected)
    return Status::error(StatusCode::FailedPrecondition, "DIG-1",
                         source + ": SHA-256 " + *found +
                             " is not the expected " + expected +
                             ": the artifact is not the one you trust; "
                             "nothing of it was loaded");
  return Status::success();
}

} // namespace v4::rt
