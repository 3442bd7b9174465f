//===- Digest.h - SHA-256 of an artifact before it is loaded ----*- C++ -*-===//
//
// v4rt_model_options_t.expected_sha256 (RELIABILITY.md §2.5, the trust
// model): the artifact file's SHA-256 (OpenSSL libcrypto, EVP) is compared
// with the caller's before the artifact is parsed or any code loaded.
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_SRC_DIGEST_H
#define V4_RUNTIME_SRC_DIGEST_H

#include "runtime/base/Status.h"

#include <string>

namespace v4::rt {

/// DIG-1: `expectedHex` is 64 hexadecimal digits (either case) and equals
/// the SHA-256 of the file at `path`. A malformed digest is
/// StatusCode::InvalidArgument with rule "ARG"; a mismatch is
/// StatusCode::FailedPrecondition naming expected and found.
Status checkSha256(const std::string &path, const std::string &expectedHex);

/// Lower-case hex SHA-256 of the file at `path`, or an "IO" error.
Expected<std::string> fileSha256(const std::string &path);

} // namespace v4::rt

#endif // V4_RUNTIME_SRC_DIGEST_H
