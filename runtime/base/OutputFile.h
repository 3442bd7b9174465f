//===- OutputFile.h - the one way tools write an output file ----*- C++ -*-===//
//
// Every tool output (v4c -o, v4-dump -o, v4-run --dump-logits,
// v4-gen-checkpoint, v4-tokenize) goes through here (RELIABILITY.md §1,
// §2.11):
//  - checkOutputPath() runs BEFORE the work: the directory exists and is
//    writable, the target is not a directory;
//  - writeOutputFile() writes a regular (or new) target through a unique
//    temporary (mkstemp) in the target's directory: write, fsync, rename,
//    fsync of the directory;
//    on failure the temporary is removed and the old output kept;
//  - a non-regular target (character device, FIFO, socket, /dev/stdout)
//    and "-" (stdout) are written in place, never replaced;
//  - a symlink is resolved and the file it points to is replaced
//    atomically; the link itself stays a link (a link to a device is
//    written in place, as the device is).
// No exceptions, no LLVM: the runtime-only tools and v4c share it.
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_BASE_OUTPUTFILE_H
#define V4_RUNTIME_BASE_OUTPUTFILE_H

#include "runtime/base/Status.h"

#include <cstddef>
#include <string>

namespace v4 {

/// Checks that `path` can be written, before any work is done: "-" is
/// stdout; an existing non-directory target must be writable; a new one
/// needs an existing, writable directory. Errors are StatusCode::Unavailable
/// with rule "IO" and name the path.
Status checkOutputPath(const std::string &path);

/// Writes `size` bytes to `path` as described above. The status names the
/// path, the operation and the system error.
Status writeOutputFile(const std::string &path, const void *data, size_t size);

inline Status writeOutputFile(const std::string &path,
                              const std::string &text) {
  return writeOutputFile(path, text.data(), text.size());
}

} // namespace v4

#endif // V4_RUNTIME_BASE_OUTPUTFILE_H
