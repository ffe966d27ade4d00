#include "timetrail/status.h"

namespace timetrail {

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: return "invalid_argument";
    case StatusCode::kTooLarge: return "too_large";
    case StatusCode::kWrongExpectedRevision: return "wrong_expected_revision";
    case StatusCode::kDuplicateEvent: return "duplicate_event";
    case StatusCode::kNotFound: return "not_found";
    case StatusCode::kTimeout: return "timeout";
    case StatusCode::kUnavailable: return "unavailable";
    case StatusCode::kIOError: return "io_error";
    case StatusCode::kCorruption: return "corruption";
    case StatusCode::kInternal: return "internal";
  }
  return "internal";
}

Status Status::WrongExpectedRevision(std::string message, ConflictDetail detail) {
  Status s(StatusCode::kWrongExpectedRevision, std::move(message));
  s.conflict_ = std::make_shared<const ConflictDetail>(std::move(detail));
  return s;
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return message_ ? *message_ : kEmpty;
}

std::string Status::ToString() const {
  std::string out(StatusCodeName(code_));
  if (!message().empty()) {
    out += ": ";
    out += message();
  }
  return out;
}

Status Status::WithPrefix(std::string_view prefix) const {
  if (ok()) return *this;
  Status s = *this;
  s.message_ = std::make_shared<const std::string>(std::string(prefix) + ": " + message());
  return s;
}

}  // namespace timetrail
