//===- Digest.cpp - SHA-256 of an artifact before it is loaded ------------===//
#include "runtime/src/Digest.h"

#include <openssl/evp.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <unistd.h>
#include <vector>

namespace v4::rt {

Expected<std::string> fileSha256(const std::string &path) {
  auto ioError = [&](const char *op) {
    return Status::error(StatusCode::NotFound, "IO",
                         path + ": " + op + " failed: " + std::strerror(errno));
  };
  int fd;
  do
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0)
    return ioError("open");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX *)> ctx(EVP_MD_CTX_new(),
                                                          EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
    return Status::error(StatusCode::Internal, "IO",
                         path + ": OpenSSL's SHA-256 is unavailable");
  std::vector<unsigned char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return ioError("read");
    if (n == 0)
      break;
    EVP_DigestUpdate(ctx.get(), buf.data(), size_t(n));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  static const char digits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned i = 0; i < len; ++i) {
    hex += digits[md[i] >> 4];
    hex += digits[md[i] & 15];
  }
  return hex;
}

Status checkSha256(const std::string &path, const std::string &expectedHex) {
  std::string expected = expectedHex;
  bool wellFormed = expected.size() == 64;
  for (char &c : expected) {
    wellFormed = wellFormed && std::isxdigit(static_cast<unsigned char>(c));
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (!wellFormed)
    return Status::error("ARG", "expected_sha256 '" + expectedHex +
                                    "' is not 64 hexadecimal digits");
  auto found = fileSha256(path);
  if (!found)
    return found.status();
  if (*found != expected)
    return Status::error(StatusCode::FailedPrecondition, "DIG-1",
                         path + ": SHA-256 " + *found +
                             " is not the expected " + expected +
                             ": the artifact is not the one you trust; "
                             "nothing of it was loaded");
  return Status::success();
}

} // namespace v4::rt
