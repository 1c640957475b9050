// The runtime's internal status: a code and a message. Every fallible
// function in the runtime returns one; the C API turns it into a
// gemmac_status for the caller. Messages name the file, the field, what was
// found and what was expected.
#ifndef GEMMAC_RUNTIME_STATUS_H_
#define GEMMAC_RUNTIME_STATUS_H_

#include <string>
#include <utility>

namespace gemmac {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument = 1,   // the caller passed something wrong
  kNotFound = 2,          // a file, symbol or plugin is missing
  kDataLoss = 3,          // a file is corrupt, truncated or inconsistent
  kUnimplemented = 4,     // a version, op or dtype this build cannot run
  kResourceExhausted = 5, // memory or context does not fit
  kFailedPrecondition = 6,
  kCancelled = 7,
  kInternal = 8,
};

class Status {
public:
  Status() = default;
  Status(StatusCode code, std::string message)
      : code_(code), message_(std::move(message)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

#define GEMMAC_RETURN_IF_ERROR(expr)                                           \
  do {                                                                         \
    ::gemmac::Status _gemmac_status = (expr);                                  \
    if (!_gemmac_status.ok()) return _gemmac_status;                           \
  } while (0)

} // namespace gemmac

#endif // GEMMAC_RUNTIME_STATUS_H_
