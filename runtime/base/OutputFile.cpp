//===- OutputFile.cpp - the one way tools write an output file ------------===//
#include "runtime/base/OutputFile.h"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace v4 {
namespace {

Status ioError(const std::string &path, const char *op, int err) {
  return Status::error(StatusCode::Unavailable, "IO",
                       path + ": " + op + " failed: " + std::strerror(err));
}

std::string directoryOf(const std::string &path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos)
    return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

bool writeAll(int fd, const char *data, size_t size) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::write(fd, data + done, size - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      if (n == 0)
        errno = EIO;
      return false;
    }
    done += size_t(n);
  }
  return true;
}

/// The file a symlink finally names (the path itself when it is not a
/// link, or when the link dangles: then its target is created).
std::string resolve(const std::string &path) {
  struct stat ls;
  if (::lstat(path.c_str(), &ls) != 0 || !S_ISLNK(ls.st_mode))
    return path;
  char buf[PATH_MAX];
  if (char *real = ::realpath(path.c_str(), buf))
    return real;
  // A dangling link: follow it one level by hand, relative to its directory.
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  if (n <= 0)
    return path;
  std::string target(buf, size_t(n));
  if (target[0] != '/')
    target = directoryOf(path) + "/" + target;
  return target;
}

} // namespace

Status checkOutputPath(const std::string &path) {
  if (path == "-")
    return Status::success();
  if (path.empty())
    return Status::error(StatusCode::InvalidArgument, "ARG",
                         "empty output path");
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode))
      return Status::error(StatusCode::Unavailable, "IO",
                           path + ": is a directory, not an output file");
    if (::access(path.c_str(), W_OK) != 0)
      return ioError(path, "open for writing", errno);
    if (!S_ISREG(st.st_mode))
      return Status::success(); // written in place
  } else if (errno != ENOENT) {
    return ioError(path, "stat", errno);
  }
  std::string dir = directoryOf(resolve(path));
  struct stat ds;
  if (::stat(dir.c_str(), &ds) != 0)
    return Status::error(StatusCode::Unavailable, "IO",
                         path + ": output directory '" + dir +
                             "' does not exist");
  if (!S_ISDIR(ds.st_mode))
    return Status::error(StatusCode::Unavailable, "IO",
                         path + ": '" + dir + "' is not a directory");
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    return ioError(path, ("create a file in '" + dir + "'").c_str(), errno);
  return Status::success();
}

Status writeOutputFile(const std::string &path, const void *data, size_t size) {
  const char *bytes = static_cast<const char *>(data);
  if (path == "-") {
    if (!writeAll(STDOUT_FILENO, bytes, size))
      return ioError("<stdout>", "write", errno);
    return Status::success();
  }
  std::string target = resolve(path);
  struct stat st;
  bool exists = ::stat(target.c_str(), &st) == 0;
  if (exists && S_ISDIR(st.st_mode))
    return Status::error(StatusCode::Unavailable, "IO",
                         path + ": is a directory, not an output file");
  if (exists && !S_ISREG(st.st_mode)) {
    // A device, FIFO or socket: written in place, never replaced.
    int fd = ::open(target.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
      return ioError(path, "open", errno);
    bool ok = writeAll(fd, bytes, size);
    int err = errno;
    if (::close(fd) != 0 && ok) {
      ok = false;
      err = errno;
    }
    return ok ? Status::success() : ioError(path, "write", err);
  }
  std::string name = target.substr(target.rfind('/') + 1);
  std::string tmpl = directoryOf(target) + "/." + name + ".tmp-XXXXXX";
  std::vector<char> tmp(tmpl.begin(), tmpl.end());
  tmp.push_back('\0');
  int fd = ::mkstemp(tmp.data());
  if (fd < 0)
    return ioError(path, "create a temporary file", errno);
  auto fail = [&](const char *op) {
    int err = errno;
    if (fd >= 0)
      ::close(fd);
    ::unlink(tmp.data());
    return ioError(path, op, err);
  };
  // Keep an existing file's mode; a new one gets 0644 less the umask.
  mode_t mode = exists ? (st.st_mode & 07777) : 0644;
  if (!exists) {
    mode_t mask = ::umask(0);
    ::umask(mask);
    mode &= ~mask;
  }
  if (!writeAll(fd, bytes, size))
    return fail("write");
  if (::fchmod(fd, mode) != 0)
    return fail("chmod");
  if (::fsync(fd) != 0)
    return fail("fsync");
  int closed = ::close(fd);
  fd = -1;
  if (closed != 0)
    return fail("close");
  if (::rename(tmp.data(), target.c_str()) != 0)
    return fail("rename");
  // Make the rename itself durable: fsync the directory that holds it.
  int dfd =
      ::open(directoryOf(target).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return ioError(path, "open its directory for fsync", errno);
  int synced = ::fsync(dfd);
  int err = errno;
  ::close(dfd);
  if (synced != 0 && err != EINVAL) // EINVAL: the file system cannot sync it
    return ioError(path, "fsync its directory", err);
  return Status::success();
}

} // namespace v4
