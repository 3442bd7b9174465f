//===- CodeCache.h - the compiler's cache of code objects -------*- C++ -*-===//
//
// Code objects that are a pure function of their inputs (the sm_90a cubin of
// a PTX text, the CPU shared object of an LLVM module) are kept under the
// SHA-256 of those inputs, so a compile that finds one skips its code
// generation (docs/ARCHITECTURE.md, "The code cache").
//
//===----------------------------------------------------------------------===//
#ifndef V4_LOWERING_TARGET_CODECACHE_H
#define V4_LOWERING_TARGET_CODECACHE_H

#include "mlir/Support/LLVM.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mlir::v4 {

/// One kind of cached object: its subfolder and file extension ("cubin",
/// "so").
struct CodeCacheKind {
  StringRef folder;
  StringRef extension;
};
inline constexpr CodeCacheKind kCubinCache{"cubin", "cubin"};
inline constexpr CodeCacheKind kCPUObjectCache{"cpu", "so"};

/// SHA-256 (hex) of `parts`, each followed by a NUL byte.
std::string codeCacheKey(ArrayRef<StringRef> parts);

/// The entry of `key`, or nothing: no cache ($V4C_CACHE_DIR empty), a miss,
/// or an entry that is not an ELF file (a damaged entry is rebuilt, never
/// used). The folder is $V4C_CACHE_DIR, else $XDG_CACHE_HOME/v4c, else
/// ~/.cache/v4c, then the kind's subfolder.
std::vector<uint8_t> readCachedCode(const CodeCacheKind &kind, StringRef key);

/// Stores an entry: a temporary file renamed into place, so concurrent
/// compiles never see a partial entry. Failures only cost the next compile
/// its hit.
void writeCachedCode(const CodeCacheKind &kind, StringRef key,
                     ArrayRef<uint8_t> bytes);

} // namespace mlir::v4

#endif // V4_LOWERING_TARGET_CODECACHE_H
