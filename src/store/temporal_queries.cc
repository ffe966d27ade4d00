// EventStoreImpl's temporal queries: the reads (snapshots, stream index, actor and type
// indexes), with the folding done by the pure functions of src/query. docs/temporal.md explains
// the costs.
#include <algorithm>
#include <charconv>
#include <functional>
#include <queue>
#include <utility>

#include "core/coding.h"
#include "core/validation.h"
#include "query/document.h"
#include "store/event_store_impl.h"
#include "store/property_history.h"
#include "store/temporal_index.h"

namespace timetrail {
namespace {

using Json = nlohmann::json;

constexpr std::size_t kMaxActivityLimit = 10000;
// Activity with a stream prefix (and no actor) reads the streams' own indexes when at most this
// many streams begin with the prefix: a seek or two per stream against examining the window's
// events in the log, which a broad prefix fills a page from quickly anyway.
constexpr std::size_t kMaxActivityPrefixStreams = 1024;
constexpr std::size_t kMaxDiffEventsLimit = 10000;
constexpr std::size_t kMaxHistoryLimit = 10000;

// A diff's cursor is "r" and the revision the next page of events starts at.
std::string DiffCursor(Revision next) { return "r" + std::to_string(next); }

Result<std::optional<Revision>> ParseDiffCursor(const std::string& cursor) {
  if (cursor.empty()) return std::optional<Revision>();
  Revision r = 0;
  const char* begin = cursor.data() + 1;
  const char* end = cursor.data() + cursor.size();
  auto [ptr, ec] = std::from_chars(begin, end, r);
  if (cursor[0] != 'r' || begin == end || ec != std::errc() || ptr != end) {
    return Status::InvalidArgument("diff cursor '" + cursor +
                                   "': not a cursor this store returned; pass next_cursor from "
                                   "the previous page unchanged");
  }
  return std::optional<Revision>(r);
}

std::string Quoted(std::string_view stream) { return "stream '" + std::string(stream) + "'"; }

Json PointJson(const EventPoint& p) {
  return Json{{"revision", p.revision},
              {"position", p.position},
              {"recorded_at", FormatTimestamp(p.recorded_at)},
              {"valid_from", FormatTimestamp(p.valid_from)}};
}

Json QueryJson(const EntityQuery& q) {
  switch (q.kind) {
    case EntityQuery::Kind::kLatest:
      return Json{{"latest", true}};
    case EntityQuery::Kind::kRevision:
      return Json{{"revision", q.revision}};
    case EntityQuery::Kind::kPosition:
      return Json{{"position", q.position}};
    case EntityQuery::Kind::kSystemTime:
      return Json{{"as_of", FormatTimestamp(q.as_of)}};
    case EntityQuery::Kind::kValidTime: {
      Json j{{"valid_at", FormatTimestamp(q.valid_at)}};
      if (q.known_at) j["known_at"] = FormatTimestamp(*q.known_at);
      return j;
    }
  }
  return Json::object();
}

}  // namespace

void EventStoreImpl::RegisterTemporalIndex() {
  // The hook reads in the write path's ordered stage, which must see every commit: the store's
  // own engine (the primary), never the read replica. What it keeps of groups is dropped once
  // they are known committed, not once a replica that may lag has them.
  temporal_index_ = std::make_unique<temporal::TemporalIndexHook>(
      engine_.get(), options_.snapshot_interval, options_.snapshot_bytes,
      [this] { return KnownPosition(); });
  AddIndexHook(temporal_index_.get());
}

Result<std::optional<Revision>> EventStoreImpl::LastRevisionAtOrBefore(std::string_view stream,
                                                                       Revision last,
                                                                       Position p) const {
  TT_ASSIGN_OR_RETURN(std::optional<temporal::IndexedEvent> at,
                      temporal::LastIndexedAtOrBefore(engine(), stream, last, p));
  if (at) return std::optional<Revision>(at->revision);
  TT_ASSIGN_OR_RETURN(temporal::RevisionLookup lookup,
                      temporal::RevisionAtPosition(engine(), stream, last, p));
  if (lookup.known && !lookup.revision) return lookup.revision;
  if (lookup.known) {
    // The index's answer holds when that revision lies at or before p (see RevisionAtPosition).
    TT_ASSIGN_OR_RETURN(
        std::optional<std::string> raw,
        engine().Get(Family::kStreamIndex, keys::StreamIndex(stream, *lookup.revision)));
    auto pos = raw ? keys::DecodePosition(*raw) : std::nullopt;
    if (!pos) return Status::Corruption("stream index of " + Quoted(stream) + " is damaged");
    if (*pos <= p) return lookup.revision;
  }
  // Events written before the position index existed: positions grow with revisions, so a
  // binary search over the stream index finds the cut.
  auto position_of = [&](Revision r) -> Result<Position> {
    TT_ASSIGN_OR_RETURN(std::optional<std::string> raw,
                        engine().Get(Family::kStreamIndex, keys::StreamIndex(stream, r)));
    auto pos = raw ? keys::DecodePosition(*raw) : std::nullopt;
    if (!pos) return Status::Corruption("stream index of " + Quoted(stream) + " is damaged");
    return *pos;
  };
  TT_ASSIGN_OR_RETURN(Position first, position_of(0));
  if (first > p) return std::optional<Revision>();
  Revision lo = 0, hi = last;  // invariant: position_of(lo) <= p
  while (lo < hi) {
    Revision mid = lo + (hi - lo + 1) / 2;
    TT_ASSIGN_OR_RETURN(Position pos, position_of(mid));
    if (pos <= p) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return std::optional<Revision>(lo);
}

Result<EntityState> EventStoreImpl::StateAt(std::string_view stream,
                                            std::optional<Revision> r) const {
  if (!r) return query::ToState(stream, query::Document{}, std::nullopt);
  TT_ASSIGN_OR_RETURN(temporal::FoldedState folded,
                      temporal::StateAtRevision(engine(), stream, *r));
  return WithEvent(stream, folded);
}

Result<EntityState> EventStoreImpl::StateAtPosition(std::string_view stream, const StreamInfo& info,
                                                    Position p) const {
  const Revision last = *info.last_revision;
  if (p >= info.last_position) return StateAt(stream, last);
  TT_ASSIGN_OR_RETURN(std::optional<temporal::FoldedState> indexed,
                      temporal::StateAtIndexedPosition(engine(), stream, last, p));
  if (indexed) return WithEvent(stream, *indexed);
  TT_ASSIGN_OR_RETURN(temporal::RevisionLookup lookup,
                      temporal::RevisionAtPosition(engine(), stream, last, p));
  if (lookup.known && !lookup.revision) return StateAt(stream, std::nullopt);
  if (lookup.known) {
    // The fold checks the revision's position as it reads it: no separate read.
    TT_ASSIGN_OR_RETURN(std::optional<temporal::FoldedState> folded,
                        temporal::StateAtRevisionAtOrBefore(engine(), stream, *lookup.revision, p));
    if (folded) return WithEvent(stream, *folded);
  }
  TT_ASSIGN_OR_RETURN(std::optional<Revision> r, LastRevisionAtOrBefore(stream, last, p));
  return StateAt(stream, r);
}

Result<EntityState> EventStoreImpl::WithEvent(std::string_view stream,
                                              const temporal::FoldedState& folded) const {
  std::optional<EventPoint> point = folded.last_event;
  if (!point && folded.last_document_revision) {
    TT_ASSIGN_OR_RETURN(std::optional<Position> p,
                        FindRevision(stream, *folded.last_document_revision));
    if (!p)
      return Status::Corruption("revision missing from the stream index of " + Quoted(stream));
    TT_ASSIGN_OR_RETURN(RecordedEvent e, LoadEvent(*p));
    point = query::PointOf(e);
  }
  return query::ToState(stream, folded.doc, std::move(point));
}

Result<Position> EventStoreImpl::KnownCut(const std::optional<Timestamp>& known_at) const {
  if (!known_at) return LastPosition();
  return PositionAt(*known_at);
}

Result<EntityState> EventStoreImpl::GetEntity(std::string_view stream,
                                              const EntityQuery& query) const {
  TT_ASSIGN_OR_RETURN(StreamInfo info, GetStreamInfo(stream));
  if (!info.exists) return Status::NotFound(Quoted(stream) + " has no events");
  const Revision last = *info.last_revision;
  switch (query.kind) {
    case EntityQuery::Kind::kLatest:
      return StateAt(stream, last);
    case EntityQuery::Kind::kRevision:
      if (query.revision > last) {
        return Status::NotFound(Quoted(stream) + " has no revision " +
                                std::to_string(query.revision) + "; its last revision is " +
                                std::to_string(last));
      }
      return StateAt(stream, query.revision);
    case EntityQuery::Kind::kPosition:
      return StateAtPosition(stream, info, query.position);
    case EntityQuery::Kind::kSystemTime: {
      TT_ASSIGN_OR_RETURN(Position p, PositionAt(query.as_of));
      return StateAtPosition(stream, info, p);
    }
    case EntityQuery::Kind::kValidTime: {
      TT_ASSIGN_OR_RETURN(Position cut, KnownCut(query.known_at));
      // Usually the last $put or $delete before valid_at is a few entries back; the bound keeps
      // a stream of patches at the snapshot path's cost.
      TT_ASSIGN_OR_RETURN(std::optional<temporal::FoldedState> quick,
                          temporal::ValidStateFromLastReset(engine(), stream, cut, query.valid_at,
                                                            options_.snapshot_interval));
      if (quick) return WithEvent(stream, *quick);
      TT_ASSIGN_OR_RETURN(std::optional<Revision> r, LastRevisionAtOrBefore(stream, last, cut));
      if (!r) return query::ToState(stream, query::Document{}, std::nullopt);
      TT_ASSIGN_OR_RETURN(temporal::FoldedState folded,
                          temporal::ValidStateAt(engine(), stream, *r, cut, query.valid_at));
      return WithEvent(stream, folded);
    }
  }
  return Status::InvalidArgument("entity query: unknown kind");
}

Result<PropertyHistory> EventStoreImpl::GetPropertyHistory(std::string_view stream,
                                                           std::string_view path,
                                                           const HistoryQuery& query) const {
  if (query.limit == 0 || query.limit > kMaxHistoryLimit) {
    return Status::InvalidArgument("history limit: must be 1 to " +
                                   std::to_string(kMaxHistoryLimit) + ", got " +
                                   std::to_string(query.limit));
  }
  TT_ASSIGN_OR_RETURN(query::PointerTracker tracker, query::PointerTracker::Make(path));
  TT_ASSIGN_OR_RETURN(StreamInfo info, GetStreamInfo(stream));
  if (!info.exists) return Status::NotFound(Quoted(stream) + " has no events");
  PropertyHistory h;
  h.stream = std::string(stream);
  h.path = std::string(path);
  const temporal::HistoryPageRequest page{stream, query.cursor, query.limit};
  if (!query.valid_time) {
    TT_RETURN_IF_ERROR(
        temporal::SystemTimeHistory(engine(), page, std::move(tracker), *info.last_revision, &h));
    return h;
  }
  TT_ASSIGN_OR_RETURN(Position cut, KnownCut(query.known_at));
  TT_ASSIGN_OR_RETURN(std::optional<Revision> last_known, RevisionAtCut(stream, info, cut));
  if (!last_known) return h;  // nothing of the stream was known then
  TT_RETURN_IF_ERROR(
      temporal::ValidTimeHistory(engine(), page, std::move(tracker), *last_known, cut, &h));
  return h;
}

Result<DiffResult> EventStoreImpl::Diff(std::string_view stream, const DiffQuery& query) const {
  using Kind = EntityQuery::Kind;
  if ((query.from.kind == Kind::kValidTime) != (query.to.kind == Kind::kValidTime)) {
    return Status::InvalidArgument(
        "diff: both points must be valid-time points, or neither (events between a valid-time "
        "point and a system point are not defined)");
  }
  if (!query.include_events && !query.cursor.empty()) {
    return Status::InvalidArgument(
        "diff: a cursor pages the events between the points; ask for "
        "them (include_events) to use one");
  }
  if (query.include_events && (query.limit == 0 || query.limit > kMaxDiffEventsLimit)) {
    return Status::InvalidArgument("diff events limit: must be 1 to " +
                                   std::to_string(kMaxDiffEventsLimit) + ", got " +
                                   std::to_string(query.limit));
  }
  TT_ASSIGN_OR_RETURN(std::optional<Revision> cursor, ParseDiffCursor(query.cursor));
  TT_ASSIGN_OR_RETURN(StreamInfo info, GetStreamInfo(stream));
  if (!info.exists) return Status::NotFound(Quoted(stream) + " has no events");
  // "Now" is read once, so that the "to" state and the events listed up to it agree even while
  // the stream grows.
  DiffQuery pinned = query;
  if (pinned.from.kind == Kind::kLatest) pinned.from = EntityQuery::AtRevision(*info.last_revision);
  if (pinned.to.kind == Kind::kLatest) pinned.to = EntityQuery::AtRevision(*info.last_revision);
  // Each end state is an as-of fold from its nearest snapshot: the events between the points
  // are not read for the states or the patch.
  DiffResult d;
  TT_ASSIGN_OR_RETURN(d.from, GetEntity(stream, pinned.from));
  TT_ASSIGN_OR_RETURN(d.to, GetEntity(stream, pinned.to));
  TT_ASSIGN_OR_RETURN(d.patch, query::DiffStates(d.from, d.to));
  if (query.include_events) {
    TT_RETURN_IF_ERROR(DiffEvents(stream, info, pinned, cursor, &d));
  }
  return d;
}

Result<std::optional<Revision>> EventStoreImpl::RevisionAtCut(std::string_view stream,
                                                              const StreamInfo& info,
                                                              Position p) const {
  if (p >= info.last_position) return std::optional<Revision>(*info.last_revision);
  return LastRevisionAtOrBefore(stream, *info.last_revision, p);
}

Status EventStoreImpl::DiffEvents(std::string_view stream, const StreamInfo& info,
                                  const DiffQuery& query, std::optional<Revision> cursor,
                                  DiffResult* d) const {
  using Kind = EntityQuery::Kind;
  if (query.from.kind == Kind::kValidTime) {
    // Events known at to.known_at whose valid_from lies in (from.valid_at, to.valid_at]: any
    // revision up to the last one known may qualify, so a page reads the stream from the cursor
    // until it has "limit" of them and has found the next one (where the next page starts).
    TT_ASSIGN_OR_RETURN(Position known, KnownCut(query.to.known_at));
    TT_ASSIGN_OR_RETURN(std::optional<Revision> last_known, RevisionAtCut(stream, info, known));
    if (!last_known) return Status::Ok();
    const Timestamp after = query.from.valid_at, until = query.to.valid_at;
    Revision next = cursor.value_or(0);
    while (next <= *last_known) {
      ReadStreamOptions o;
      o.from_revision = next;
      o.max_count = std::min<std::uint64_t>(
          std::clamp<std::size_t>(query.limit + 1 - d->events.size(), 16, 1024),
          *last_known - next + 1);
      TT_ASSIGN_OR_RETURN(std::vector<RecordedEvent> chunk, ReadStream(stream, o));
      if (chunk.empty()) break;
      next = chunk.back().revision + 1;
      for (RecordedEvent& e : chunk) {
        if (e.valid_from <= after || e.valid_from > until) continue;
        if (d->events.size() == query.limit) {
          d->next_cursor = DiffCursor(e.revision);
          return Status::Ok();
        }
        d->events.push_back(std::move(e));
      }
    }
    return Status::Ok();
  }
  // Revision, position and system-time points: within a stream positions grow with revisions,
  // so the events with position in (cut(from), cut(to)] are the revisions after the one at
  // cut(from) up to the one at cut(to), found with a seek each.
  auto revision_at = [&](const EntityQuery& q) -> Result<std::optional<Revision>> {
    switch (q.kind) {
      case Kind::kRevision:
        return std::optional<Revision>(q.revision);  // GetEntity found it
      case Kind::kPosition:
        return RevisionAtCut(stream, info, q.position);
      case Kind::kSystemTime: {
        TT_ASSIGN_OR_RETURN(Position p, PositionAt(q.as_of));
        return RevisionAtCut(stream, info, p);
      }
      default:  // kLatest was pinned to a revision by Diff
        return std::optional<Revision>(*info.last_revision);
    }
  };
  TT_ASSIGN_OR_RETURN(std::optional<Revision> before, revision_at(query.from));
  TT_ASSIGN_OR_RETURN(std::optional<Revision> through, revision_at(query.to));
  if (!through) return Status::Ok();
  Revision first = before ? *before + 1 : 0;
  if (cursor) first = std::max(first, *cursor);
  if (first > *through) return Status::Ok();
  ReadStreamOptions o;
  o.from_revision = first;
  o.max_count = std::min<std::uint64_t>(query.limit, *through - first + 1);
  TT_ASSIGN_OR_RETURN(d->events, ReadStream(stream, o));
  if (!d->events.empty() && d->events.back().revision < *through) {
    d->next_cursor = DiffCursor(d->events.back().revision + 1);
  }
  return Status::Ok();
}

Result<ActivityPage> EventStoreImpl::QueryActivity(const ActivityQuery& query) const {
  if (query.limit == 0 || query.limit > kMaxActivityLimit) {
    return Status::InvalidArgument("activity limit: must be 1 to " +
                                   std::to_string(kMaxActivityLimit) + ", got " +
                                   std::to_string(query.limit));
  }
  const Position visible = LastPosition();
  Position upper = visible;
  if (!query.cursor.empty()) {
    // The cursor is "p" and the last position returned; the next page starts below it.
    Position before = 0;
    const char* begin = query.cursor.data() + 1;
    const char* end = query.cursor.data() + query.cursor.size();
    auto [ptr, ec] = std::from_chars(begin, end, before);
    if (query.cursor[0] != 'p' || ec != std::errc() || ptr != end || before == 0) {
      return Status::InvalidArgument("activity cursor '" + query.cursor +
                                     "': not a cursor this store returned; pass next_cursor "
                                     "from the previous page unchanged");
    }
    upper = std::min(upper, before - 1);
  }
  if (query.to) {
    TT_ASSIGN_OR_RETURN(Position p, PositionAt(*query.to));
    upper = std::min(upper, p);
  }
  Position lower = 1;
  if (query.from) {
    if (*query.from > kMinTimestamp) {
      TT_ASSIGN_OR_RETURN(Position p, PositionAt(Timestamp{query.from->micros - 1}));
      lower = p + 1;
    }
  }
  ActivityPage page;
  if (upper < lower) return page;
  LogFilter filter{query.stream_prefix, query.event_types, query.skip_system_streams};
  bool more = false;
  auto take = [&](RecordedEvent e) {
    if (!filter.Matches(e.stream, e.type)) return;
    page.events.push_back(std::move(e));
  };
  auto decode = [](std::string_view stored, Position p) -> Result<RecordedEvent> {
    auto e = DecodeStoredEvent(stored);
    if (!e.ok()) return e.status().WithPrefix("position " + std::to_string(p));
    if (e->position != p) {
      return Status::Corruption("an index entry of position " + std::to_string(p) +
                                " holds the event of position " + std::to_string(e->position));
    }
    return e;
  };
  // Reads the events at "positions" (newest first, so with one MultiGet, which reads each table
  // block once for all of them) into the page until it is full.
  auto read_from_log = [&](std::vector<Position> positions) -> Status {
    if (positions.empty() || more) return Status::Ok();
    return temporal::VisitEvents(engine(), positions,
                                 [&](const StoredEventView& e) -> Result<bool> {
                                   if (page.events.size() >= query.limit) {
                                     more = true;
                                     return false;
                                   }
                                   if (filter.Matches(e.stream, e.type)) {
                                     page.events.push_back(e.ToEvent());
                                   }
                                   return true;
                                 });
  };
  // Enough for the rest of the page when the filter takes every event, at least 16.
  auto chunk_size = [&] {
    return std::clamp<std::size_t>(query.limit - std::min(query.limit, page.events.size()), 16,
                                   1024);
  };
  if (!query.actor.empty()) {
    // The actor index holds only this actor's events, each entry with the event's log value:
    // the window is one seek and a walk over adjacent keys, so the cost follows the answer and
    // not the size of the log (reading each event from the log was a random block read). An
    // entry with an empty value was written by an older release and names a log position; runs
    // of those are read from the log a chunk at a time.
    const std::string prefix = temporal::ActorPrefix(query.actor);
    auto it = engine().NewIterator(Family::kIndex);
    it->SeekForPrev(temporal::ActorKey(query.actor, upper));
    auto in_index = [&] {
      return it->Valid() && it->key().starts_with(prefix) && it->key().size() == prefix.size() + 8;
    };
    std::vector<Position> log_positions;  // entries without the event, newest first
    for (; in_index(); it->Prev()) {
      const Position p = DecodeBigEndian64(it->key().data() + prefix.size());
      if (p < lower) break;
      if (log_positions.empty() && page.events.size() >= query.limit) {
        more = true;  // an event in the window is left for the next page
        break;
      }
      if (it->value().empty()) {
        log_positions.push_back(p);
        if (log_positions.size() >= chunk_size()) {
          TT_RETURN_IF_ERROR(read_from_log(std::exchange(log_positions, {})));
        }
        if (more) break;
        continue;
      }
      // The newer entries go first.
      TT_RETURN_IF_ERROR(read_from_log(std::exchange(log_positions, {})));
      if (more) break;
      if (page.events.size() >= query.limit) {
        more = true;
        break;
      }
      TT_ASSIGN_OR_RETURN(RecordedEvent e, decode(it->value(), p));
      take(std::move(e));
    }
    TT_RETURN_IF_ERROR(it->status());
    TT_RETURN_IF_ERROR(read_from_log(std::exchange(log_positions, {})));
    if (more) page.next_cursor = "p" + std::to_string(page.events.back().position);
    return page;
  }
  if (!query.stream_prefix.empty()) {
    // A stream prefix without an actor: when few streams begin with it, their stream indexes
    // name their events in the window (a seek or two each) instead of a scan that examines
    // every event of the window in the log. Stream heads are ordered by name, so those streams
    // are adjacent, and a head says whether its stream was written since "lower" at all.
    std::vector<std::pair<std::string, keys::StreamHead>> streams;
    bool few = true;
    {
      auto it = engine().NewIterator(Family::kStreamHeads);
      std::size_t seen = 0;
      for (it->Seek(query.stream_prefix); it->Valid() && it->key().starts_with(query.stream_prefix);
           it->Next()) {
        if (++seen > kMaxActivityPrefixStreams) {
          few = false;
          break;
        }
        auto head = keys::DecodeStreamHead(it->value());
        if (!head) {
          return Status::Corruption("the head record of " + Quoted(it->key()) + " is damaged");
        }
        if (head->last_position < lower) continue;  // nothing in the window
        streams.emplace_back(std::string(it->key()), *head);
      }
      TT_RETURN_IF_ERROR(it->status());
    }
    if (few) {
      // Each stream's events in the window, newest first: one more than a page when every
      // event of these streams is an answer, and all of them when a type filter may turn some
      // down. The page is the newest of them all.
      const std::size_t per_stream = query.event_types.empty() ? query.limit + 1 : SIZE_MAX;
      std::vector<Position> positions;
      auto index = engine().NewIterator(Family::kStreamIndex);
      for (const auto& [stream, head] : streams) {
        Revision from = head.last_revision;
        if (head.last_position > upper && head.last_position <= visible) {
          TT_ASSIGN_OR_RETURN(std::optional<Revision> at,
                              LastRevisionAtOrBefore(stream, head.last_revision, upper));
          if (!at) continue;
          from = *at;
        }  // (a head not visible yet: its events past "upper" are skipped below)
        const std::string prefix = keys::StreamIndexPrefix(stream);
        std::size_t taken = 0;
        for (index->SeekForPrev(keys::StreamIndex(stream, from));
             taken < per_stream && index->Valid() && index->key().starts_with(prefix) &&
             index->key().size() == prefix.size() + 8;
             index->Prev()) {
          auto p = keys::DecodePosition(index->value());
          if (!p) return Status::Corruption("stream index of " + Quoted(stream) + " is damaged");
          if (*p > upper) continue;
          if (*p < lower) break;
          positions.push_back(*p);
          ++taken;
        }
        TT_RETURN_IF_ERROR(index->status());
      }
      std::sort(positions.begin(), positions.end(), std::greater<>());
      for (std::size_t i = 0; i < positions.size() && !more;) {
        if (page.events.size() >= query.limit) {
          more = true;
          break;
        }
        const std::size_t n = std::min(chunk_size(), positions.size() - i);
        TT_RETURN_IF_ERROR(
            read_from_log(std::vector<Position>(positions.begin() + i, positions.begin() + i + n)));
        i += n;
      }
      if (more) page.next_cursor = "p" + std::to_string(page.events.back().position);
      return page;
    }
  }
  // The log itself, newest first from "hi" back to "lo", examining every event until the page
  // is full.
  auto scan_log = [&](Position lo, Position hi) -> Status {
    auto it = engine().NewIterator(Family::kLog);
    for (it->SeekForPrev(keys::Log(hi)); it->Valid(); it->Prev()) {
      Position p = DecodeBigEndian64(it->key().data());
      if (p < lo) break;
      if (page.events.size() >= query.limit) {
        more = true;
        break;
      }
      // Decoded in place: only the events the filter takes are copied out.
      auto e = DecodeStoredEventView(it->value());
      if (!e.ok()) return e.status().WithPrefix("position " + std::to_string(p));
      if (filter.Matches(e->stream, e->type)) page.events.push_back(e->ToEvent());
    }
    return it->status();
  };
  // The type index entries of query.event_types from "hi" back to "lo" (all of them indexed):
  // one seek per type, the types' walks merged newest first by position, their events read from
  // the log a chunk at a time until the page is full.
  auto walk_types = [&](Position lo, Position hi) -> Status {
    std::vector<std::string> types = query.event_types;
    std::sort(types.begin(), types.end());
    types.erase(std::unique(types.begin(), types.end()), types.end());
    // Without a stream filter every entry is an answer, so a chunk is exactly what the page
    // lacks; with one, the filter needs the events, read a chunk at a time.
    const bool stream_filter = !query.stream_prefix.empty() || query.skip_system_streams;
    // Entries looked at before deciding whether the window is dense with these types.
    constexpr std::size_t kProbe = 32;
    bool probe = true;
    for (;;) {
      std::vector<std::string> prefixes;
      std::vector<std::unique_ptr<KvIterator>> walks;
      // The position of each walk's current entry, and the walk: the newest on top.
      std::priority_queue<std::pair<Position, std::size_t>> next;
      auto queue_entry = [&](std::size_t w) -> Status {
        KvIterator& it = *walks[w];
        TT_RETURN_IF_ERROR(it.status());
        if (!it.Valid() || !it.key().starts_with(prefixes[w]) ||
            it.key().size() != prefixes[w].size() + 8) {
          return Status::Ok();
        }
        const Position p = DecodeBigEndian64(it.key().data() + prefixes[w].size());
        if (p >= lo) next.emplace(p, w);
        return Status::Ok();
      };
      for (const std::string& type : types) {
        prefixes.push_back(temporal::TypePrefix(type));
        walks.push_back(engine().NewStreamIterator(Family::kIndex));
        walks.back()->SeekForPrev(temporal::TypeKey(type, hi));
        TT_RETURN_IF_ERROR(queue_entry(walks.size() - 1));
      }
      std::vector<Position> chunk;  // newest first
      std::optional<Position> scanned_to;
      while (!next.empty()) {
        if (chunk.empty() && page.events.size() >= query.limit) {
          more = true;  // an event in the window is left for the next page
          break;
        }
        const auto [p, w] = next.top();
        next.pop();
        chunk.push_back(p);
        walks[w]->Prev();
        TT_RETURN_IF_ERROR(queue_entry(w));
        const std::size_t lacking = query.limit - std::min(query.limit, page.events.size());
        if (probe && chunk.size() == kProbe) {
          probe = false;
          if (lacking > kProbe && chunk.front() - chunk.back() < 2 * kProbe) {
            // At least every other event here is of these types (a common type): stepping
            // through the log costs less than stepping through the index as well. For at most
            // four times what the page lacks, in case they thin out further back; then the
            // index again, below what was scanned. The chunk lies within the scan.
            const Position from = hi - lo >= 4 * lacking ? hi - 4 * lacking + 1 : lo;
            TT_RETURN_IF_ERROR(scan_log(from, hi));
            scanned_to = from;
            break;
          }
        }
        const std::size_t wanted = stream_filter ? chunk_size() : lacking;
        if (chunk.size() >= wanted) {
          TT_RETURN_IF_ERROR(read_from_log(std::exchange(chunk, {})));
          if (more) break;
        }
      }
      if (!scanned_to) return read_from_log(std::exchange(chunk, {}));
      if (more || *scanned_to == lo) return Status::Ok();
      hi = *scanned_to - 1;
    }
  };
  if (!query.event_types.empty()) {
    // The type index, from "upper" back to the first position it covers: each type's entries
    // in the window are adjacent keys, so a rare type costs a seek and its answer, not a scan
    // of the window. Events written before the index existed are older than all indexed ones
    // (kTypesSince), so the log answers for them after it, newest first as before.
    const Position types_since = types_since_.load(std::memory_order_acquire);
    const Position indexed_from = std::max(lower, types_since);
    if (indexed_from <= upper) TT_RETURN_IF_ERROR(walk_types(indexed_from, upper));
    if (!more && lower < types_since) {
      TT_RETURN_IF_ERROR(scan_log(lower, std::min(upper, types_since - 1)));
    }
  } else {
    TT_RETURN_IF_ERROR(scan_log(lower, upper));
  }
  if (more) page.next_cursor = "p" + std::to_string(page.events.back().position);
  return page;
}

Result<RevertResult> EventStoreImpl::Revert(const RevertRequest& request) {
  if (options_.read_only) return ReadOnlyError(dir_);
  Json extra = Json::object();
  if (!request.metadata.empty()) {
    extra = Json::parse(request.metadata.begin(), request.metadata.end(), nullptr, false);
    if (!extra.is_object()) {
      return Status::InvalidArgument("revert metadata: must be a JSON object");
    }
  }
  // What the revert records (the revision it follows) is read first: with a read replica,
  // from one that has every write known here.
  TT_RETURN_IF_ERROR(AwaitReplica());
  TT_ASSIGN_OR_RETURN(StreamInfo info, GetStreamInfo(request.stream));
  if (!info.exists) return Status::NotFound(Quoted(request.stream) + " has no events");
  RevertResult result;
  TT_ASSIGN_OR_RETURN(result.restored, GetEntity(request.stream, request.target));

  Json revert{{"target", QueryJson(request.target)},
              {"exists", result.restored.exists},
              {"previous_revision", *info.last_revision}};
  if (result.restored.event) revert["restored_from"] = PointJson(*result.restored.event);
  extra["revert"] = std::move(revert);
  if (!request.actor.empty()) extra["actor"] = request.actor;
  if (!request.reason.empty()) extra["reason"] = request.reason;

  ProposedEvent e;
  e.id = request.id;
  e.type = std::string(result.restored.exists ? kPutType : kDeleteType);
  e.data = result.restored.exists ? result.restored.state : "null";
  e.metadata = extra.dump();
  TT_ASSIGN_OR_RETURN(result.committed, Append(request.stream, request.expected, {std::move(e)}));
  return result;
}

}  // namespace timetrail
