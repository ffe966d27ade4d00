// Status and Result<T>: how every fallible timetrail call reports failure.
//
// timetrail does not throw across its public API. A call that can fail returns a Status (or a
// Result<T>, which is either a value or a non-OK Status). Both are [[nodiscard]].
//
//   timetrail::Result<timetrail::Committed> r = store->Append("friend-1",
//   ExpectedRevision::NoStream(),
//                                                           events);
//   if (!r.ok()) {
//     if (r.status().code() == timetrail::StatusCode::kWrongExpectedRevision) {
//       // r.status().conflict()->actual_revision says where the stream really is: re-read, retry.
//     }
//     std::cerr << r.status().ToString() << "\n";
//   }
//
// Choosing a code (for code that adds new failures):
//   kInvalidArgument       the request itself is wrong; retrying it unchanged fails again
//                          (also: a write to a store opened with Options::read_only).
//   kTooLarge              the request exceeds a configured limit (size or count).
//   kWrongExpectedRevision an optimistic-concurrency expectation did not hold; re-read and retry.
//   kDuplicateEvent        event ids overlap earlier writes only partly (not a clean retry).
//   kNotFound              the thing asked for does not exist.
//   kTimeout               a bounded wait ran out; the caller may retry the same call.
//   kUnavailable           the store is closing or a dependency is down; retry later.
//   kIOError               the operating system or disk failed; nothing was acknowledged.
//   kCorruption            stored data does not decode or does not match its integrity chain.
//   kInternal              a bug in timetrail; please report it.
#ifndef TIMETRAIL_STATUS_H_
#define TIMETRAIL_STATUS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace timetrail {

enum class StatusCode : std::uint8_t {
  kOk = 0,
  kInvalidArgument,
  kTooLarge,
  kWrongExpectedRevision,
  kDuplicateEvent,
  kNotFound,
  kTimeout,
  kUnavailable,
  kIOError,
  kCorruption,
  kInternal,
};

// A stable, lower-case name for "code", e.g. "wrong_expected_revision". Used in HTTP error
// bodies and CLI output, so it never changes once released.
std::string_view StatusCodeName(StatusCode code);

// Details of a failed expectation: which stream, and where it actually is.
struct ConflictDetail {
  std::string stream;
  // The revision of the stream's last event, or nullopt if the stream has no events.
  std::optional<std::uint64_t> actual_revision;
};

// Intentionally copyable. An OK status carries no allocation.
class [[nodiscard]] Status {
 public:
  Status() = default;  // OK

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string message) {
    return Status(StatusCode::kInvalidArgument, std::move(message));
  }
  static Status TooLarge(std::string message) {
    return Status(StatusCode::kTooLarge, std::move(message));
  }
  static Status WrongExpectedRevision(std::string message, ConflictDetail detail);
  static Status DuplicateEvent(std::string message) {
    return Status(StatusCode::kDuplicateEvent, std::move(message));
  }
  static Status NotFound(std::string message) {
    return Status(StatusCode::kNotFound, std::move(message));
  }
  static Status Timeout(std::string message) {
    return Status(StatusCode::kTimeout, std::move(message));
  }
  static Status Unavailable(std::string message) {
    return Status(StatusCode::kUnavailable, std::move(message));
  }
  static Status IOError(std::string message) {
    return Status(StatusCode::kIOError, std::move(message));
  }
  static Status Corruption(std::string message) {
    return Status(StatusCode::kCorruption, std::move(message));
  }
  static Status Internal(std::string message) {
    return Status(StatusCode::kInternal, std::move(message));
  }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  // Human-readable: what went wrong and, where it helps, what to do about it.
  const std::string& message() const;
  // Set only for kWrongExpectedRevision.
  const ConflictDetail* conflict() const { return conflict_.get(); }
  // "wrong_expected_revision: stream 'a' is at revision 3, expected no_stream".
  std::string ToString() const;

  // Returns a copy whose message is "prefix: <message>" (for adding context on the way up).
  Status WithPrefix(std::string_view prefix) const;

 private:
  Status(StatusCode code, std::string message)
      : code_(code), message_(std::make_shared<const std::string>(std::move(message))) {}

  StatusCode code_ = StatusCode::kOk;
  std::shared_ptr<const std::string> message_;
  std::shared_ptr<const ConflictDetail> conflict_;
};

// Either a T or a non-OK Status. Intentionally copyable when T is.
//
// REQUIRES: a Result is never built from an OK Status (that would hold neither a value nor an
// error); doing so yields kInternal.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design, like absl::StatusOr
  Result(Status status)                      // NOLINT
      : v_(status.ok() ? Status::Internal("Result built from an OK status") : std::move(status)) {}

  bool ok() const { return std::holds_alternative<T>(v_); }
  // The error, or OK when a value is held.
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

  // REQUIRES: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace timetrail

// Propagates a non-OK Status from an expression returning Status.
#define TT_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::timetrail::Status tt_status_ = (expr); \
    if (!tt_status_.ok()) return tt_status_; \
  } while (0)

#define TT_CONCAT_INNER_(a, b) a##b
#define TT_CONCAT_(a, b) TT_CONCAT_INNER_(a, b)
// Evaluates a Result<T> expression; on error returns its Status, else moves the value to "lhs".
#define TT_ASSIGN_OR_RETURN(lhs, expr) \
  TT_ASSIGN_OR_RETURN_IMPL_(TT_CONCAT_(tt_result_, __LINE__), lhs, expr)
#define TT_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()

#endif  // TIMETRAIL_STATUS_H_
