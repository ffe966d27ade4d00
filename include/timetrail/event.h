// The event model: what a client proposes, and what the store records.
//
// Vocabulary (see docs/concepts.md):
//   stream     the ordered events of one entity, e.g. "public.orders/42"
//   revision   0-based index of an event in its stream
//   position   global, strictly increasing in commit order across the store (first is 1)
//   tx         id of the transaction that wrote an event (first is 1)
//
// Data and metadata are JSON text. timetrail validates them and stores the bytes exactly as
// given, so numbers keep every digit the client sent.
#ifndef TIMETRAIL_EVENT_H_
#define TIMETRAIL_EVENT_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "timetrail/status.h"
#include "timetrail/time.h"

namespace timetrail {

using Position = std::uint64_t;
using Revision = std::uint64_t;
using TxId = std::uint64_t;

// The reserved document event types (see docs/concepts.md, "Document events").
inline constexpr std::string_view kPutType = "$put";
inline constexpr std::string_view kPatchType = "$patch";
inline constexpr std::string_view kDeleteType = "$delete";

// A 128-bit UUID. Intentionally copyable.
struct Uuid {
  std::array<std::uint8_t, 16> bytes{};

  bool is_nil() const;
  // Lower-case, hyphenated: "0191b7a4-6c1e-7d2a-9f3b-1a2b3c4d5e6f".
  std::string ToString() const;
  // Accepts the hyphenated form (either case) or 32 hex digits.
  static Result<Uuid> Parse(std::string_view text);
  // A new random, time-ordered (version 7) UUID. Thread-safe.
  static Uuid Generate();

  friend auto operator<=>(const Uuid&, const Uuid&) = default;
};

// What an append must find. Intentionally copyable.
class ExpectedRevision {
 public:
  enum class Kind : std::uint8_t { kAny, kNoStream, kExists, kExact };

  static ExpectedRevision Any() { return ExpectedRevision(Kind::kAny, 0); }
  static ExpectedRevision NoStream() { return ExpectedRevision(Kind::kNoStream, 0); }
  static ExpectedRevision Exists() { return ExpectedRevision(Kind::kExists, 0); }
  // The stream's last event must have exactly this revision.
  static ExpectedRevision Exact(Revision r) { return ExpectedRevision(Kind::kExact, r); }

  // Parses "any", "no_stream", "exists" or a decimal revision.
  static Result<ExpectedRevision> Parse(std::string_view text);

  Kind kind() const { return kind_; }
  // REQUIRES: kind() == kExact.
  Revision revision() const { return revision_; }
  // The inverse of Parse.
  std::string ToString() const;
  // Whether a stream whose last revision is "actual" (nullopt: no events) satisfies this.
  bool Matches(std::optional<Revision> actual) const;

  friend bool operator==(const ExpectedRevision&, const ExpectedRevision&) = default;

 private:
  ExpectedRevision(Kind kind, Revision r) : kind_(kind), revision_(r) {}
  Kind kind_;
  Revision revision_;
};

// An event a client asks to append. Intentionally copyable.
struct ProposedEvent {
  // Supply one to make retries idempotent; a v7 UUID is generated when absent.
  std::optional<Uuid> id;
  // 1..max_type_bytes of UTF-8; "$put", "$patch" and "$delete" are the only "$" types accepted.
  std::string type;
  // JSON text. "$put" and "$patch" need an object; "$delete" needs null, {} or nothing.
  // Empty means null.
  std::string data;
  // JSON object text; empty means {}.
  std::string metadata;
  // When the change takes effect in the real world; defaults to the commit time.
  std::optional<Timestamp> valid_from;
};

// The events for one stream within a transaction. Intentionally copyable.
struct StreamAppend {
  std::string stream;
  ExpectedRevision expected = ExpectedRevision::Any();
  std::vector<ProposedEvent> events;
};

// One atomic append to one or more distinct streams. Intentionally copyable.
struct Transaction {
  std::vector<StreamAppend> appends;
};

// A stored event, as every read returns it. Intentionally copyable.
struct RecordedEvent {
  std::string stream;
  Revision revision = 0;
  Position position = 0;
  Uuid id;
  std::string type;
  std::string data;      // JSON text ("null" when the event had none)
  std::string metadata;  // JSON object text
  Timestamp recorded_at;
  Timestamp valid_from;
  TxId tx = 0;
  std::array<std::uint8_t, 32> hash{};  // link of the integrity chain

  // The hash as 64 lower-case hex digits.
  std::string HashHex() const;
};

// Where the events of one stream landed. Intentionally copyable.
struct StreamResult {
  std::string stream;
  Revision first_revision = 0;
  Revision last_revision = 0;  // the stream's new revision (the ETag of a conditional write)
  Position first_position = 0;
  Position last_position = 0;
};

// The outcome of a committed (durable) transaction. Intentionally copyable.
struct Committed {
  TxId tx = 0;
  Position first_position = 0;
  Position last_position = 0;  // the consistency token to pass as min_position
  Timestamp recorded_at;
  std::vector<StreamResult> streams;  // in the order of Transaction::appends
  // True when every event id had been written before by an identical request: nothing new was
  // written and the fields above describe the original commit.
  bool idempotent_replay = false;
};

// What is known about a stream. Intentionally copyable.
struct StreamInfo {
  bool exists = false;                   // has at least one event
  std::optional<Revision> last_revision;  // nullopt when !exists
  Position last_position = 0;            // position of the last event, 0 when !exists
  // True when the stream's last document event is "$delete": the entity no longer exists,
  // although its history does.
  bool deleted = false;
};

}  // namespace timetrail

#endif  // TIMETRAIL_EVENT_H_
