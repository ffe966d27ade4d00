// Temporal queries: an entity's state at any point, the history of one property, the diff
// between two points, activity across streams, and revert. See docs/temporal.md.
//
//   auto now = store->GetEntity("friend-1", timetrail::EntityQuery::Latest());
//   auto then = store->GetEntity("friend-1",
//   timetrail::EntityQuery::AsOf(*ParseTimestamp("2026-01-01"))); auto moves =
//   store->GetPropertyHistory("friend-1", "/location", timetrail::HistoryQuery{});
//
// States are JSON text. The fold parses documents into doubles or 64-bit integers: a number
// beyond double precision is folded (and so returned in states, histories and diffs) as the
// nearest double, while the events themselves keep every digit the client sent.
#ifndef TIMETRAIL_TEMPORAL_H_
#define TIMETRAIL_TEMPORAL_H_

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "timetrail/event.h"
#include "timetrail/time.h"

namespace timetrail {

// Which point of a stream's history to look at. Intentionally copyable.
struct EntityQuery {
  enum class Kind : std::uint8_t {
    kLatest,      // every committed event
    kRevision,    // events 0..revision
    kPosition,    // events with position <= position (a consistent cut across streams)
    kSystemTime,  // events with recorded_at <= as_of
    kValidTime,   // events with recorded_at <= known_at and valid_from <= valid_at,
                  // folded in (valid_from, position) order (bitemporal)
  };
  Kind kind = Kind::kLatest;
  Revision revision = 0;              // kRevision
  Position position = 0;              // kPosition
  Timestamp as_of;                    // kSystemTime
  Timestamp valid_at;                 // kValidTime
  std::optional<Timestamp> known_at;  // kValidTime; nullopt means now (every committed event)

  static EntityQuery Latest() { return EntityQuery{}; }
  static EntityQuery AtRevision(Revision r) {
    EntityQuery q;
    q.kind = Kind::kRevision;
    q.revision = r;
    return q;
  }
  static EntityQuery AtPosition(Position p) {
    EntityQuery q;
    q.kind = Kind::kPosition;
    q.position = p;
    return q;
  }
  static EntityQuery AsOf(Timestamp t) {
    EntityQuery q;
    q.kind = Kind::kSystemTime;
    q.as_of = t;
    return q;
  }
  static EntityQuery ValidAt(Timestamp v, std::optional<Timestamp> known_at = std::nullopt) {
    EntityQuery q;
    q.kind = Kind::kValidTime;
    q.valid_at = v;
    q.known_at = known_at;
    return q;
  }
};

// Where an event sits, and who made it and why. Intentionally copyable.
struct EventPoint {
  Revision revision = 0;
  Position position = 0;
  Uuid id;
  std::string type;
  Timestamp recorded_at;
  Timestamp valid_from;
  TxId tx = 0;
  std::string metadata;  // JSON object text (actor, reason, activity, ...)
};

// An entity's state at one point. Intentionally copyable.
struct EntityState {
  std::string stream;
  // False before the first document event, and after a $delete until a later $put or $patch.
  bool exists = false;
  // The document as JSON text; "null" when !exists.
  std::string state = "null";
  // The last document event folded in (in fold order): the one that produced this state.
  // nullopt when no document event is included at that point.
  std::optional<EventPoint> event;
};

// Intentionally copyable.
struct HistoryQuery {
  // false: intervals in system time (revision order; what the store knew when).
  // true: intervals in valid time, as known at "known_at" (events folded in (valid_from,
  // position) order).
  bool valid_time = false;
  std::optional<Timestamp> known_at;  // valid_time only; nullopt means now
  // Intervals per page, 1..10000. A page costs the events read for it: those that may have
  // changed the property's top-level member (see docs/temporal.md), not the whole stream.
  std::size_t limit = 1000;
  // PropertyHistory::next_cursor of the previous page, with the same stream, path, valid_time
  // and known_at; empty: the first page.
  std::string cursor;
};

// One interval during which the value at a JSON pointer stayed the same. Intentionally copyable.
struct PropertyInterval {
  bool present = false;          // whether the path exists in the document
  std::string value = "null";    // JSON text of the value; "null" when !present
  EventPoint from;               // the event that set this value (and its metadata)
  std::optional<EventPoint> to;  // the event that changed it; nullopt for the last (open) one
};

// Intentionally copyable.
struct PropertyHistory {
  std::string stream;
  std::string path;
  // In fold order; consecutive intervals meet (one's "to" is the next one's "from") and have
  // different values. Empty when the stream has no document events (at known_at). At most
  // HistoryQuery::limit; when more follow, the last one's "to" is the event that starts the
  // next page.
  std::vector<PropertyInterval> intervals;
  // Opaque; pass as HistoryQuery::cursor for the next page. Empty when there are no more.
  std::string next_cursor;
};

// What to compare: the states at two points of one stream and, on request, the events between
// them a page at a time. Both points are valid-time points, or neither. Intentionally copyable.
struct DiffQuery {
  EntityQuery from;
  EntityQuery to = EntityQuery::Latest();
  // The states and the patch cost two as-of folds however far apart the points are; the events
  // between cost a read of each, so they are listed only when asked for.
  bool include_events = false;
  std::size_t limit = 100;  // with include_events: events per page, 1..10000
  std::string cursor;       // with include_events: DiffResult::next_cursor; empty: the first page

  static DiffQuery Between(EntityQuery from, EntityQuery to = EntityQuery::Latest()) {
    DiffQuery q;
    q.from = from;
    q.to = to;
    return q;
  }
  // The same points, with the events between them listed "limit" at a time.
  DiffQuery WithEvents(std::size_t page_limit = 100, std::string page_cursor = {}) const {
    DiffQuery q = *this;
    q.include_events = true;
    q.limit = page_limit;
    q.cursor = std::move(page_cursor);
    return q;
  }
};

// Intentionally copyable.
struct DiffResult {
  EntityState from;
  EntityState to;
  // RFC 6902 JSON Patch text turning from.state into to.state ("[]" when equal).
  std::string patch;
  // Only with DiffQuery::include_events (else empty): one page of the stream's events after
  // "from" up to and including "to": for revision, position and system-time points, those with
  // position in (cut(from), cut(to)]; for valid-time points, those with valid_from in
  // (from.valid_at, to.valid_at] known at to.known_at. In position order.
  std::vector<RecordedEvent> events;
  // Opaque; pass as DiffQuery::cursor (with the same points) for the next page of events. Empty
  // when there are no more (and always without include_events).
  std::string next_cursor;
};

// Which events of the whole store to list, newest first. Empty fields match everything.
// Intentionally copyable.
struct ActivityQuery {
  std::string stream_prefix;
  std::vector<std::string> event_types;  // any of these
  std::string actor;                     // metadata.actor equal to this
  bool skip_system_streams = false;      // leave out streams whose names begin with '$'
  std::optional<Timestamp> from;         // recorded_at >= from
  std::optional<Timestamp> to;           // recorded_at <= to
  std::size_t limit = 100;               // events per page, 1..10000
  std::string cursor;                    // from ActivityPage::next_cursor; empty: the newest
};

// Intentionally copyable.
struct ActivityPage {
  std::vector<RecordedEvent> events;  // newest first
  // Opaque; pass as ActivityQuery::cursor (with the same filters) for the next page. Empty when
  // there is nothing more.
  std::string next_cursor;
};

// Intentionally copyable.
struct RevertRequest {
  std::string stream;
  // The point whose state to restore. Must be an earlier point of the same stream.
  EntityQuery target;
  // What the stream's last revision must be, so that a change made since the caller looked is
  // not overwritten silently (kWrongExpectedRevision otherwise). Any() skips the check.
  ExpectedRevision expected = ExpectedRevision::Any();
  std::string actor;   // recorded as metadata.actor
  std::string reason;  // recorded as metadata.reason
  // Further metadata keys (JSON object text, may be empty). "actor", "reason" and "revert" are
  // set by the store.
  std::string metadata;
  std::optional<Uuid> id;  // for idempotent retries
};

// Intentionally copyable.
struct RevertResult {
  Committed committed;
  EntityState restored;  // the target state that was restored (as read before appending)
};

}  // namespace timetrail

#endif  // TIMETRAIL_TEMPORAL_H_
