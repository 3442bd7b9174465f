//===- Digest.h - SHA-256 of an artifact before it is parsed ----*- C++ -*-===//
//
// v4rt_model_options_t.expected_sha256 (RELIABILITY.md §2.5, the trust
// model): the SHA-256 (OpenSSL libcrypto, EVP) of the artifact's bytes, as
// read once into memory, is compared with the caller's before any of them
// is parsed or any code loaded (Artifact LoadOptions::checkBytes), so the
// bytes checked are the bytes loaded.
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_SRC_DIGEST_H
#define V4_RUNTIME_SRC_DIGEST_H

#include "runtime/base/Status.h"

#include <cstddef>
#include <string>

namespace v4::rt {

/// Lower-case hex SHA-256 of `size` bytes at `data`.
Expected<std::string> sha256Hex(const void *data, size_t size);

/// `expectedHex` lower-cased, or "ARG" (StatusCode::InvalidArgument) when it
/// is not 64 hexadecimal digits (either case).
Expected<std::string> normalizeSha256(const std::string &expectedHex);

/// DIG-1: the SHA-256 of `size` bytes at `data` (read from `source`) is
/// `expected` (normalized); a mismatch is StatusCode::FailedPrecondition
/// naming both digests.
Status checkSha256(const std::string &source, const void *data, size_t size,
                   const std::string &expected);

} // namespace v4::rt

#endif // V4_RUNTIME_SRC_DIGEST_H
