//===- Bytes.h - byte counts for people -------------------------*- C++ -*-===//
#ifndef V4_RUNTIME_BASE_BYTES_H
#define V4_RUNTIME_BASE_BYTES_H

#include <cstdint>
#include <string>

namespace v4 {

/// "512 B", "1.50 KiB", "6.72 GiB": binary units, two decimals.
std::string formatBytes(uint64_t bytes);

} // namespace v4

#endif // V4_RUNTIME_BASE_BYTES_H
