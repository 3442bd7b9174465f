//===- CodeCache.cpp - the compiler's cache of code objects ---------------===//
#include "lowering/Target/CodeCache.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/SHA256.h"
#include "llvm/Support/raw_ostream.h"

#include <optional>

namespace mlir::v4 {

namespace {

std::optional<std::string> cacheDir(const CodeCacheKind &kind) {
  SmallString<256> dir;
  if (std::optional<std::string> v =
          llvm::sys::Process::GetEnv("V4C_CACHE_DIR")) {
    if (v->empty())
      return std::nullopt;
    dir = *v;
  } else if (std::optional<std::string> xdg =
                 llvm::sys::Process::GetEnv("XDG_CACHE_HOME");
             xdg && !xdg->empty()) {
    dir = *xdg;
    llvm::sys::path::append(dir, "v4c");
  } else if (llvm::sys::path::home_directory(dir)) {
    llvm::sys::path::append(dir, ".cache", "v4c");
  } else {
    return std::nullopt;
  }
  llvm::sys::path::append(dir, kind.folder);
  return dir.str().str();
}

std::string entryPath(StringRef dir, const CodeCacheKind &kind, StringRef key) {
  SmallString<256> path(dir);
  llvm::sys::path::append(path, key + "." + kind.extension);
  return path.str().str();
}

} // namespace

std::string codeCacheKey(ArrayRef<StringRef> parts) {
  llvm::SHA256 hash;
  for (StringRef part : parts) {
    hash.update(part);
    hash.update(StringRef("\0", 1));
  }
  return llvm::toHex(hash.final(), /*LowerCase=*/true);
}

std::vector<uint8_t> readCachedCode(const CodeCacheKind &kind, StringRef key) {
  std::optional<std::string> dir = cacheDir(kind);
  if (!dir)
    return {};
  auto buffer = llvm::MemoryBuffer::getFile(entryPath(*dir, kind, key),
                                            /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false);
  if (!buffer || !(*buffer)->getBuffer().starts_with("\x7f"
                                                     "ELF"))
    return {};
  StringRef bytes = (*buffer)->getBuffer();
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

void writeCachedCode(const CodeCacheKind &kind, StringRef key,
                     ArrayRef<uint8_t> bytes) {
  std::optional<std::string> dir = cacheDir(kind);
  if (!dir || llvm::sys::fs::create_directories(*dir))
    return;
  SmallString<256> temp;
  int fd = -1;
  if (llvm::sys::fs::createUniqueFile(*dir + "/tmp-%%%%%%%%." + kind.extension,
                                      fd, temp))
    return;
  {
    llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
    os.write(reinterpret_cast<const char *>(bytes.data()), bytes.size());
    os.close();
    if (os.has_error()) {
      os.clear_error();
      llvm::sys::fs::remove(temp);
      return;
    }
  }
  if (llvm::sys::fs::rename(temp, entryPath(*dir, kind, key)))
    llvm::sys::fs::remove(temp);
}

} // namespace mlir::v4
