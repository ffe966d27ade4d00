#include "store/property_history.h"

#include <charconv>
#include <optional>
#include <utility>
#include <vector>

#include "core/coding.h"
#include "store/keys.h"
#include "store/temporal_index.h"

namespace timetrail::temporal {
namespace {

// Events read from the log at a time.
constexpr std::size_t kReadChunk = 256;

// Cursors: "r<revision>.<position>" (system time) and "v<ordered valid_from>.<position>" (valid
// time), naming the event that starts the next page's first interval.
struct Cursor {
  std::uint64_t first = 0;  // revision, or ordered valid_from
  Position position = 0;
};

std::string FormatCursor(char kind, std::uint64_t first, Position p) {
  return kind + std::to_string(first) + "." + std::to_string(p);
}

Result<std::optional<Cursor>> ParseCursor(std::string_view text, char kind) {
  if (text.empty()) return std::optional<Cursor>();
  Cursor c;
  const char* end = text.data() + text.size();
  auto bad = [&] {
    return Status::InvalidArgument("history cursor '" + std::string(text) +
                                   "': not a cursor this store returned for this history; pass "
                                   "next_cursor from the previous page unchanged");
  };
  if (text[0] != kind) return bad();
  auto [dot, ec1] = std::from_chars(text.data() + 1, end, c.first);
  if (ec1 != std::errc() || dot == end || *dot != '.') return bad();
  auto [last, ec2] = std::from_chars(dot + 1, end, c.position);
  if (ec2 != std::errc() || last != end) return bad();
  return std::optional<Cursor>(c);
}

Status CursorMismatch(std::string_view cursor) {
  return Status::InvalidArgument("history cursor '" + std::string(cursor) +
                                 "' names no event of this stream; pass next_cursor from the "
                                 "previous page unchanged, with the same stream and path");
}

// The point of an event read in place.
EventPoint PointOf(const StoredEventView& e) {
  EventPoint p;
  p.revision = e.revision;
  p.position = e.position;
  p.id = e.id;
  p.type = std::string(e.type);
  p.recorded_at = e.recorded_at;
  p.valid_from = e.valid_from;
  p.tx = e.tx;
  p.metadata = std::string(e.metadata);
  return p;
}

// Turns the events offered in fold order into intervals: a new one wherever the value changes,
// and the first at the first document event. Stops once the page is full and the event that
// starts the next page is known.
class IntervalBuilder {
 public:
  IntervalBuilder(query::PointerTracker tracker, std::size_t limit, PropertyHistory* out)
      : tracker_(std::move(tracker)), limit_(limit), out_(out) {}

  query::PointerTracker& tracker() { return tracker_; }
  // Continues a history whose value before the next event is the tracker's.
  void Resume() {
    started_ = true;
    current_ = tracker_.ValueText();
  }
  bool started() const { return started_; }
  bool full() const { return done_; }

  // Folds "e" in; false once the page is complete (next_cursor is then cursor_of(e)). Copies
  // out of the view only what an interval keeps.
  template <typename CursorOf>
  Result<bool> Offer(const StoredEventView& e, CursorOf cursor_of) {
    bool changed = false;
    Status s = tracker_.Apply(e.type, e.data, &changed);
    if (!s.ok()) return s.WithPrefix("revision " + std::to_string(e.revision));
    if (!query::IsDocumentType(e.type)) return true;
    if (started_ && !changed) return true;
    std::optional<std::string> value = tracker_.ValueText();
    if (started_ && query::SameValue(value, current_)) return true;  // the interval goes on
    if (out_->intervals.size() == limit_) {
      out_->next_cursor = cursor_of(e);
      out_->intervals.back().to = PointOf(e);
      done_ = true;
      return false;
    }
    EventPoint point = PointOf(e);
    if (!out_->intervals.empty()) out_->intervals.back().to = point;
    PropertyInterval interval;
    interval.present = value.has_value();
    interval.value = value ? *value : "null";
    interval.from = std::move(point);
    out_->intervals.push_back(std::move(interval));
    current_ = std::move(value);
    started_ = true;
    return true;
  }

 private:
  query::PointerTracker tracker_;
  const std::size_t limit_;
  PropertyHistory* out_;
  bool started_ = false;
  bool done_ = false;
  std::optional<std::string> current_;  // the value's text (PointerTracker::ValueText)
};

// The bit of the tracked member (0 for the whole document: every document event matters).
std::uint64_t TrackedBit(const query::PointerTracker& t) {
  return t.member() ? MemberBit(*t.member()) : 0;
}

// Whether an event with signature "s" must be read: every event that may change the member,
// and before the history starts, the first document event (where the first interval begins).
bool MustRead(const std::optional<ChangeSignature>& s, std::uint64_t bit, bool started) {
  if (!started) return !s || s->kind != ChangeSignature::Kind::kNone;
  return MayChange(s, bit);
}

bool IsKnownDocumentEvent(const std::optional<ChangeSignature>& s) {
  return s && s->kind != ChangeSignature::Kind::kNone;
}

// Reads the events at "positions" and offers them in order; "cursor_of(event)" makes the cursor
// of the event that starts the next page. Clears "positions".
template <typename CursorOf>
Status OfferChunk(const KvEngine& engine, std::vector<Position>& positions,
                  IntervalBuilder& builder, CursorOf cursor_of) {
  Status s = VisitEvents(engine, positions,
                         [&](const StoredEventView& e) { return builder.Offer(e, cursor_of); });
  positions.clear();
  return s;
}

}  // namespace

Status SystemTimeHistory(const KvEngine& engine, const HistoryPageRequest& request,
                         query::PointerTracker tracker, Revision last, PropertyHistory* out) {
  TT_ASSIGN_OR_RETURN(std::optional<Cursor> cursor, ParseCursor(request.cursor, 'r'));
  const std::string_view stream = request.stream;
  IntervalBuilder builder(std::move(tracker), request.limit, out);
  Revision next = 0;  // the next revision to consider
  Position from_position = 0;
  if (cursor) {
    // The page starts at the cursor's event; the value before it comes from the state at the
    // revision before, folded from its nearest snapshot.
    TT_ASSIGN_OR_RETURN(std::optional<std::string> raw,
                        engine.Get(Family::kStreamIndex, keys::StreamIndex(stream, cursor->first)));
    std::optional<Position> p = raw ? keys::DecodePosition(*raw) : std::nullopt;
    if (!p || *p != cursor->position || cursor->first == 0 || cursor->first > last) {
      return CursorMismatch(request.cursor);
    }
    TT_ASSIGN_OR_RETURN(FoldedState before, StateAtRevision(engine, stream, cursor->first - 1));
    builder.tracker().Reset(before.doc);
    builder.Resume();
    next = cursor->first;
    from_position = cursor->position;
  }
  const std::uint64_t bit = TrackedBit(builder.tracker());
  auto cursor_of = [](const StoredEventView& e) {
    return FormatCursor('r', e.revision, e.position);
  };
  std::vector<Position> chunk;
  bool document_seen = builder.started();

  // The position index holds each event's signature: the events that cannot change the member
  // are passed over without reading the log. Its entries must run revision by revision; where
  // they do not (a store written before the index existed), the stream index takes over.
  const std::string prefix = PositionPrefix(stream);
  auto it = engine.NewIterator(Family::kIndex);
  for (it->Seek(PositionKey(stream, from_position));
       it->Valid() && it->key().starts_with(prefix) && next <= last && !builder.full();
       it->Next()) {
    std::optional<Revision> r = keys::DecodePosition(it->value());  // fixed64, like positions
    if (!r || *r != next) break;
    std::optional<ChangeSignature> sig = DecodeSignature(it->value());
    if (MustRead(sig, bit, document_seen)) {
      chunk.push_back(DecodeBigEndian64(it->key().data() + prefix.size()));
      if (chunk.size() == kReadChunk) {
        TT_RETURN_IF_ERROR(OfferChunk(engine, chunk, builder, cursor_of));
      }
    }
    document_seen = document_seen || IsKnownDocumentEvent(sig);
    ++next;
  }
  TT_RETURN_IF_ERROR(it->status());
  if (!builder.full()) TT_RETURN_IF_ERROR(OfferChunk(engine, chunk, builder, cursor_of));
  if (builder.full() || next > last) return Status::Ok();

  // The rest from the stream index: every event is read.
  auto si = engine.NewIterator(Family::kStreamIndex);
  const std::string si_prefix = keys::StreamIndexPrefix(stream);
  for (si->Seek(keys::StreamIndex(stream, next));
       si->Valid() && si->key().starts_with(si_prefix) && next <= last && !builder.full();
       si->Next(), ++next) {
    std::optional<Position> p = keys::DecodePosition(si->value());
    if (!p) return Status::Corruption("stream index of '" + std::string(stream) + "' is damaged");
    chunk.push_back(*p);
    if (chunk.size() == kReadChunk)
      TT_RETURN_IF_ERROR(OfferChunk(engine, chunk, builder, cursor_of));
  }
  TT_RETURN_IF_ERROR(si->status());
  if (!builder.full()) TT_RETURN_IF_ERROR(OfferChunk(engine, chunk, builder, cursor_of));
  return Status::Ok();
}

Status ValidTimeHistory(const KvEngine& engine, const HistoryPageRequest& request,
                        query::PointerTracker tracker, Revision last_known, Position known,
                        PropertyHistory* out) {
  TT_ASSIGN_OR_RETURN(std::optional<Cursor> cursor, ParseCursor(request.cursor, 'v'));
  const std::string_view stream = request.stream;
  IntervalBuilder builder(std::move(tracker), request.limit, out);
  const std::string prefix = ValidPrefix(stream);
  // A valid-time entry's key ends with the ordered valid_from and the position.
  auto valid_of = [&](std::string_view key) {
    return DecodeBigEndian64(key.data() + prefix.size());
  };
  auto position_of = [&](std::string_view key) {
    return DecodeBigEndian64(key.data() + prefix.size() + 8);
  };
  auto is_entry = [&](const KvIterator& i) {
    return i.Valid() && i.key().starts_with(prefix) && i.key().size() == prefix.size() + 16;
  };
  std::string start_key = prefix;
  if (cursor) {
    const Timestamp valid_from{SignedFromOrdered(cursor->first)};
    TT_ASSIGN_OR_RETURN(std::optional<std::string> entry,
                        engine.Get(Family::kIndex, ValidKey(stream, valid_from, cursor->position)));
    if (!entry || cursor->position > known) return CursorMismatch(request.cursor);
    // The value before the cursor's event: the state valid just before its valid_from, then the
    // events with the same valid_from that come before it in position order.
    FoldedState before;
    if (valid_from > kMinTimestamp) {
      TT_ASSIGN_OR_RETURN(before, ValidStateAt(engine, stream, last_known, known,
                                               Timestamp{valid_from.micros - 1}));
    }
    builder.tracker().Reset(before.doc);
    std::vector<Position> same_time;
    auto it = engine.NewIterator(Family::kIndex);
    for (it->Seek(ValidKey(stream, valid_from, 0));
         is_entry(*it) && valid_of(it->key()) == cursor->first &&
         position_of(it->key()) < cursor->position;
         it->Next()) {
      if (position_of(it->key()) <= known) same_time.push_back(position_of(it->key()));
    }
    TT_RETURN_IF_ERROR(it->status());
    Status replayed = VisitEvents(engine, same_time, [&](const StoredEventView& e) -> Result<bool> {
      bool changed = false;
      Status applied = builder.tracker().Apply(e.type, e.data, &changed);
      if (!applied.ok()) return applied;
      return true;
    });
    TT_RETURN_IF_ERROR(replayed);
    builder.Resume();
    start_key = ValidKey(stream, valid_from, cursor->position);
  }
  const std::uint64_t bit = TrackedBit(builder.tracker());
  auto cursor_of = [](const StoredEventView& e) {
    return FormatCursor('v', OrderedFromSigned(e.valid_from.micros), e.position);
  };
  std::vector<Position> chunk;
  bool document_seen = builder.started();
  auto it = engine.NewIterator(Family::kIndex);
  for (it->Seek(start_key); is_entry(*it) && !builder.full(); it->Next()) {
    const Position p = position_of(it->key());
    if (p > known) continue;  // not known at that time
    std::optional<Revision> r = keys::DecodePosition(it->value());
    if (!r)
      return Status::Corruption("valid-time index of '" + std::string(stream) + "' is damaged");
    if (*r > last_known) continue;
    std::optional<ChangeSignature> sig = DecodeSignature(it->value());
    if (MustRead(sig, bit, document_seen)) {
      chunk.push_back(p);
      if (chunk.size() == kReadChunk)
        TT_RETURN_IF_ERROR(OfferChunk(engine, chunk, builder, cursor_of));
    }
    document_seen = true;  // the valid-time index holds document events only
  }
  TT_RETURN_IF_ERROR(it->status());
  if (!builder.full()) TT_RETURN_IF_ERROR(OfferChunk(engine, chunk, builder, cursor_of));
  return Status::Ok();
}

}  // namespace timetrail::temporal
