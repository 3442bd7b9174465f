//===- Status.h - the runtime's one error type ------------------*- C++ -*-===//
//
// Success, or an error with a code, a stable rule id and a message. The
// code is decided where the error happens, and it is the canonical set of
// the C API (v4rt_status_code_t in runtime/include/v4rt/v4rt.h has the same
// values), so the API returns it as is. No exceptions, no MLIR/LLVM: the
// artifact and safetensors libraries, the runtime and the compiler share it.
//
//===----------------------------------------------------------------------===//
#ifndef V4_RUNTIME_BASE_STATUS_H
#define V4_RUNTIME_BASE_STATUS_H

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace v4 {

/// Same values as v4rt_status_code_t.
enum class StatusCode : uint8_t {
  Ok = 0,
  InvalidArgument = 1,
  NotFound = 2,
  FailedPrecondition = 3,
  OutOfRange = 4,
  Unavailable = 5,
  Incompatible = 6,
  ResourceExhausted = 7,
  Internal = 8,
};

class [[nodiscard]] Status {
public:
  Status() = default;
  static Status success() { return Status(); }
  /// An error; `message` should not end in the rule tag, it is appended as
  /// " [rule]". Rules name the violated input rule ("AF-7", "ST-3") or the
  /// kind of failure ("IO": a system call failed, "ARG": a bad caller
  /// argument).
  static Status error(StatusCode code, std::string rule, std::string message);
  /// An error in the input's content: StatusCode::InvalidArgument.
  static Status error(std::string rule, std::string message) {
    return error(StatusCode::InvalidArgument, std::move(rule),
                 std::move(message));
  }

  bool ok() const { return statusCode == StatusCode::Ok; }
  explicit operator bool() const { return ok(); }
  StatusCode code() const { return statusCode; }
  /// Stable rule id; empty on success.
  const std::string &rule() const { return ruleId; }
  /// Full message including the trailing " [rule]"; empty on success.
  const std::string &message() const { return text; }

private:
  StatusCode statusCode = StatusCode::Ok;
  std::string ruleId;
  std::string text;
};

inline Status Status::error(StatusCode code, std::string rule,
                            std::string message) {
  Status s;
  s.statusCode = code == StatusCode::Ok ? StatusCode::Internal : code;
  s.text = std::move(message);
  s.text += " [";
  s.text += rule;
  s.text += "]";
  s.ruleId = std::move(rule);
  return s;
}

/// A value or an error Status.
template <typename T> class [[nodiscard]] Expected {
public:
  Expected(T value) : value(std::move(value)) {}
  Expected(Status error) : err(std::move(error)) {}

  bool ok() const { return value.has_value(); }
  explicit operator bool() const { return ok(); }
  const Status &status() const { return err; }

  T &operator*() { return *value; }
  const T &operator*() const { return *value; }
  T *operator->() { return &*value; }
  const T *operator->() const { return &*value; }
  T take() { return std::move(*value); }

private:
  std::optional<T> value;
  Status err;
};

} // namespace v4

#endif // V4_RUNTIME_BASE_STATUS_H
