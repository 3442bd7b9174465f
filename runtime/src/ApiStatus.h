//===- ApiStatus.h - the C API's status object, shared by API files -*- C++
//-*-===//
//
// v4rt_status_t is a pointer to v4rt_status_s; every file implementing part
// of the C API (Api.cpp, TokenizerApi.cpp) makes its statuses here, counts
// its handles' references with RefCount and fills its info structs with
// copyInfo.
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_SRC_APISTATUS_H
#define V4_RUNTIME_SRC_APISTATUS_H

#include "v4rt/v4rt.h"

#include "runtime/base/Status.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>
#include <string>

struct v4rt_status_s {
  v4rt_status_code_t code;
  std::string message;
};

namespace v4::rt {

inline v4rt_status_t makeStatus(v4rt_status_code_t code, std::string message) {
  return new (std::nothrow) v4rt_status_s{code, std::move(message)};
}

/// A runtime error as a C API status: the code was decided where the error
/// happened (runtime/base/Status.h uses the C API's values).
inline v4rt_status_t fromStatus(const v4::Status &status) {
  if (status.ok())
    return nullptr;
  return makeStatus(static_cast<v4rt_status_code_t>(status.code()),
                    status.message());
}

/// The reference count of a C API handle (a member named `refs`): a new
/// handle holds one reference; any thread may retain or release.
class RefCount {
public:
  void retain() { count.fetch_add(1, std::memory_order_relaxed); }
  /// True when this released the last reference.
  bool release() { return count.fetch_sub(1, std::memory_order_acq_rel) == 1; }

private:
  std::atomic<int64_t> count{1};
};

/// _retain and _release of every handle type; the handle's destructor
/// releases what it holds (a session its model, a detokenizer its
/// tokenizer).
template <typename Handle> void retainHandle(Handle *handle) {
  if (handle)
    handle->refs.retain();
}
template <typename Handle> void releaseHandle(Handle *handle) {
  if (handle && handle->refs.release())
    delete handle;
}

/// Hands `full` out through `out`, a struct with a leading struct_size set
/// by the caller: writes the fields the caller's struct_size covers, and
/// the bytes written to out->struct_size. `abi1Size` is the size of the
/// struct of ABI 1, the least a caller may pass.
template <typename Info>
v4rt_status_t copyInfo(const char *what, Info full, Info *out,
                       size_t abi1Size) {
  if (!out)
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      std::string(what) + ": the info pointer is NULL [ARG]");
  if (out->struct_size < abi1Size)
    return makeStatus(V4RT_INVALID_ARGUMENT,
                      std::string(what) + ": struct_size is " +
                          std::to_string(out->struct_size) +
                          ", less than the " + std::to_string(abi1Size) +
                          " bytes of the struct of ABI 1; set it to "
                          "sizeof the struct [ARG]");
  size_t written = std::min(out->struct_size, sizeof(Info));
  full.struct_size = written;
  std::memcpy(static_cast<void *>(out), &full, written);
  return nullptr;
}

} // namespace v4::rt

#endif // V4_RUNTIME_SRC_APISTATUS_H
