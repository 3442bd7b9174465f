//===- ApiStatus.h - the C API's status object, shared by API files -*- C++
//-*-===//
//
// v4rt_status_t is a pointer to v4rt_status_s; every file implementing part
// of the C API (Api.cpp, TokenizerApi.cpp) makes its statuses here.
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_SRC_APISTATUS_H
#define V4_RUNTIME_SRC_APISTATUS_H

#include "v4rt/v4rt.h"

#include "runtime/base/Status.h"

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

} // namespace v4::rt

#endif // V4_RUNTIME_SRC_APISTATUS_H
