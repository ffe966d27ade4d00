#include "store/temporal_index.h"

#include <algorithm>
#include <map>
#include <utility>

#include "core/coding.h"
#include "core/event_codec.h"
#include "json/object_scan.h"
#include "store/keys.h"

namespace timetrail::temporal {
namespace {

using Json = nlohmann::json;

// Streams whose state the hook keeps between transactions; beyond this, durable entries are
// dropped and reloaded from the nearest snapshot when next written.
constexpr std::size_t kMaxCachedStreams = 4096;

// Snapshot value: fixed64 position, flags byte (1: exists, 2: has a last document revision),
// fixed64 last document revision, then the state's JSON text (empty when it does not exist).
std::string EncodeSnapshot(Position p, const FoldedState& s) {
  std::string v;
  PutFixed64(&v, p);
  v.push_back(static_cast<char>((s.doc.exists ? 1 : 0) | (s.last_document_revision ? 2 : 0)));
  PutFixed64(&v, s.last_document_revision.value_or(0));
  if (s.doc.exists) v += s.doc.state.dump();
  return v;
}

Result<FoldedState> DecodeSnapshot(std::string_view v) {
  Decoder d(v);
  Position p = 0;
  std::uint8_t flags = 0;
  Revision last = 0;
  d.GetFixed64(&p);
  d.GetByte(&flags);
  d.GetFixed64(&last);
  if (!d.ok()) return Status::Corruption("a state snapshot is damaged");
  FoldedState s;
  s.doc.exists = flags & 1;
  if (flags & 2) s.last_document_revision = last;
  if (s.doc.exists) {
    std::string_view text = v.substr(17);
    s.doc.state = Json::parse(text.begin(), text.end(), nullptr, false);
    if (s.doc.state.is_discarded()) return Status::Corruption("a state snapshot is damaged");
  }
  return s;
}

void PutBigEndian32(std::string* out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

Status FoldInto(FoldedState& s, const RecordedEvent& e) {
  if (!query::IsDocumentType(e.type)) return Status::Ok();
  Status st = query::Apply(s.doc, e.type, e.data);
  if (!st.ok()) return st.WithPrefix("position " + std::to_string(e.position));
  s.last_document_revision = e.revision;
  return Status::Ok();
}

std::string Prefixed(char tag, std::string_view stream) {
  std::string k(1, tag);
  PutBigEndian32(&k, static_cast<std::uint32_t>(stream.size()));
  k.append(stream);
  return k;
}

// A valid-time snapshot (kIndex 'w'). Value: fixed64 ordered boundary valid_from, fixed64
// boundary position, flags byte (1: exists, 2: has a last document revision), fixed64 last
// document revision, then the state's JSON text.
struct ValidSnapshot {
  Revision revision = 0;
  Timestamp boundary_valid_from = kMinTimestamp;
  Position boundary_position = 0;
  FoldedState state;
};

std::string EncodeValidSnapshot(const ValidSnapshot& v) {
  std::string out;
  PutFixed64(&out, OrderedFromSigned(v.boundary_valid_from.micros));
  PutFixed64(&out, v.boundary_position);
  out.push_back(
      static_cast<char>((v.state.doc.exists ? 1 : 0) | (v.state.last_document_revision ? 2 : 0)));
  PutFixed64(&out, v.state.last_document_revision.value_or(0));
  if (v.state.doc.exists) out += v.state.doc.state.dump();
  return out;
}

Result<ValidSnapshot> DecodeValidSnapshot(Revision r, std::string_view v) {
  Decoder d(v);
  std::uint64_t boundary = 0;
  std::uint8_t flags = 0;
  Revision last = 0;
  ValidSnapshot s;
  s.revision = r;
  d.GetFixed64(&boundary);
  d.GetFixed64(&s.boundary_position);
  d.GetByte(&flags);
  d.GetFixed64(&last);
  if (!d.ok()) return Status::Corruption("a valid-time snapshot is damaged");
  s.boundary_valid_from.micros = SignedFromOrdered(boundary);
  s.state.doc.exists = flags & 1;
  if (flags & 2) s.state.last_document_revision = last;
  if (s.state.doc.exists) {
    std::string_view text = v.substr(25);
    s.state.doc.state = Json::parse(text.begin(), text.end(), nullptr, false);
    if (s.state.doc.state.is_discarded()) {
      return Status::Corruption("a valid-time snapshot is damaged");
    }
  }
  return s;
}

// The durable valid-time snapshot with the largest revision <= max_revision whose boundary
// valid_from is <= v. Boundaries never decrease with the revision, so this is the snapshot at or
// before min(last revision with boundary <= v, max_revision): two seeks.
Result<std::optional<ValidSnapshot>> FindValidSnapshot(const KvEngine& engine,
                                                       std::string_view stream, Timestamp v,
                                                       Revision max_revision) {
  auto it = engine.NewStreamIterator(Family::kIndex);
  const std::string by_time = Prefixed('x', stream);
  it->SeekForPrev(ValidSnapshotByTimeKey(stream, v, UINT64_MAX));
  TT_RETURN_IF_ERROR(it->status());
  if (!it->Valid() || !it->key().starts_with(by_time) || it->key().size() != by_time.size() + 16) {
    return std::optional<ValidSnapshot>();
  }
  Revision target =
      std::min(DecodeBigEndian64(it->key().data() + by_time.size() + 8), max_revision);
  const std::string by_revision = Prefixed('w', stream);
  it->SeekForPrev(ValidSnapshotKey(stream, target));
  TT_RETURN_IF_ERROR(it->status());
  if (!it->Valid() || !it->key().starts_with(by_revision) ||
      it->key().size() != by_revision.size() + 8) {
    return std::optional<ValidSnapshot>();
  }
  Revision r = DecodeBigEndian64(it->key().data() + by_revision.size());
  TT_ASSIGN_OR_RETURN(ValidSnapshot s, DecodeValidSnapshot(r, it->value()));
  return std::optional<ValidSnapshot>(std::move(s));
}

// Appends the document events of revisions (from, to] stored in the engine to "out".
Status ReadDocumentEvents(const KvEngine& engine, std::string_view stream, Revision from_excl,
                          bool from_start, Revision to, std::map<Revision, RecordedEvent>* out) {
  const std::string prefix = keys::StreamIndexPrefix(stream);
  auto it = engine.NewStreamIterator(Family::kStreamIndex);
  for (it->Seek(keys::StreamIndex(stream, from_start ? 0 : from_excl + 1));
       it->Valid() && it->key().starts_with(prefix); it->Next()) {
    Revision rev = DecodeBigEndian64(it->key().data() + prefix.size());
    if (rev > to) break;
    auto p = keys::DecodePosition(it->value());
    if (!p)
      return Status::Corruption("stream index entry of '" + std::string(stream) + "' is damaged");
    TT_ASSIGN_OR_RETURN(RecordedEvent e, ReadEvent(engine, *p));
    if (query::IsDocumentType(e.type)) out->emplace(rev, std::move(e));
  }
  return it->status();
}

}  // namespace

std::string SnapshotKey(std::string_view stream, Revision r) {
  return keys::StreamIndex(stream, r);
}

std::string ActorPrefix(std::string_view actor) {
  std::string k = "a";
  PutBigEndian32(&k, static_cast<std::uint32_t>(actor.size()));
  k.append(actor);
  return k;
}

std::string ActorKey(std::string_view actor, Position p) {
  std::string k = ActorPrefix(actor);
  PutBigEndian64(&k, p);
  return k;
}

std::string TypePrefix(std::string_view type) { return Prefixed('t', type); }

std::string TypeKey(std::string_view type, Position p) {
  std::string k = TypePrefix(type);
  PutBigEndian64(&k, p);
  return k;
}

std::string PositionPrefix(std::string_view stream) { return Prefixed('p', stream); }

std::string PositionKey(std::string_view stream, Position p) {
  std::string k = PositionPrefix(stream);
  PutBigEndian64(&k, p);
  return k;
}

std::string ValidPrefix(std::string_view stream) { return Prefixed('v', stream); }

std::string ValidKey(std::string_view stream, Timestamp valid_from, Position p) {
  std::string k = ValidPrefix(stream);
  PutBigEndian64(&k, OrderedFromSigned(valid_from.micros));
  PutBigEndian64(&k, p);
  return k;
}

std::string CorrectionPrefix(std::string_view stream) { return Prefixed('c', stream); }

std::string CorrectionKey(std::string_view stream, Revision r) {
  std::string k = CorrectionPrefix(stream);
  PutBigEndian64(&k, r);
  return k;
}

std::string ValidSnapshotKey(std::string_view stream, Revision r) {
  std::string k = Prefixed('w', stream);
  PutBigEndian64(&k, r);
  return k;
}

std::string ValidSnapshotByTimeKey(std::string_view stream, Timestamp boundary, Revision r) {
  std::string k = Prefixed('x', stream);
  PutBigEndian64(&k, OrderedFromSigned(boundary.micros));
  PutBigEndian64(&k, r);
  return k;
}

Result<FoldedState> ValidStateAt(const KvEngine& engine, std::string_view stream, Revision last,
                                 Position known, Timestamp v) {
  TT_ASSIGN_OR_RETURN(std::optional<ValidSnapshot> snap,
                      FindValidSnapshot(engine, stream, v, last));
  const std::string corrections = CorrectionPrefix(stream);
  while (snap) {
    // A correction after the snapshot whose valid_from precedes the snapshot's boundary belongs
    // inside the snapshot's fold: then an earlier snapshot, before that correction, is needed.
    std::optional<Timestamp> earliest;
    auto it = engine.NewStreamIterator(Family::kIndex);
    for (it->Seek(CorrectionKey(stream, snap->revision + 1));
         it->Valid() && it->key().starts_with(corrections) &&
         it->key().size() == corrections.size() + 8;
         it->Next()) {
      if (DecodeBigEndian64(it->key().data() + corrections.size()) > last) break;
      auto vf = keys::DecodePosition(it->value());
      if (!vf) return Status::Corruption("a valid-time correction entry is damaged");
      Timestamp t{SignedFromOrdered(*vf)};
      if (t <= v && (!earliest || t < *earliest)) earliest = t;
    }
    TT_RETURN_IF_ERROR(it->status());
    if (!earliest || *earliest >= snap->boundary_valid_from) break;
    if (snap->revision == 0) {
      snap.reset();
      break;
    }
    TT_ASSIGN_OR_RETURN(snap, FindValidSnapshot(engine, stream, *earliest, snap->revision - 1));
  }
  FoldedState state;
  std::string start = ValidPrefix(stream);
  if (snap) {
    state = std::move(snap->state);
    start = ValidKey(stream, snap->boundary_valid_from, snap->boundary_position + 1);
  }
  const std::string prefix = ValidPrefix(stream);
  auto it = engine.NewStreamIterator(Family::kIndex);
  for (it->Seek(start);
       it->Valid() && it->key().starts_with(prefix) && it->key().size() == prefix.size() + 16;
       it->Next()) {
    Timestamp vf{SignedFromOrdered(DecodeBigEndian64(it->key().data() + prefix.size()))};
    if (vf > v) break;
    Position p = DecodeBigEndian64(it->key().data() + prefix.size() + 8);
    if (p > known) continue;  // recorded after the time it is known at
    TT_ASSIGN_OR_RETURN(RecordedEvent e, ReadEvent(engine, p));
    TT_RETURN_IF_ERROR(FoldInto(state, e));
  }
  TT_RETURN_IF_ERROR(it->status());
  return state;
}

std::uint64_t MemberBit(std::string_view name) {
  // FNV-1a: stable across builds and platforms, unlike std::hash, because the bits are stored.
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (char c : name) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return std::uint64_t{1} << (h >> 58);
}

ChangeSignature SignatureOf(std::string_view type, std::string_view data) {
  ChangeSignature s;
  if (type == kPutType || type == kDeleteType) return s;  // kReset
  if (type != kPatchType) {
    s.kind = ChangeSignature::Kind::kNone;
    return s;
  }
  s.kind = ChangeSignature::Kind::kPatch;
  bool escaped_name = false;
  bool scanned = json::ScanObjectMembers(data, [&](const json::ScannedMember& m) {
    escaped_name = m.key_escaped;
    if (!escaped_name) s.members |= MemberBit(m.raw_key);
    return !escaped_name;
  });
  // A patch whose names could not all be read plainly may change anything.
  if (!scanned || escaped_name) s.members = ~std::uint64_t{0};
  return s;
}

void AppendSignature(const ChangeSignature& s, std::string* out) {
  out->push_back(static_cast<char>(s.kind));
  if (s.kind == ChangeSignature::Kind::kPatch) PutFixed64(out, s.members);
}

std::optional<ChangeSignature> DecodeSignature(std::string_view index_value) {
  Decoder d(index_value.size() > 8 ? index_value.substr(8) : std::string_view());
  std::uint8_t kind = 0;
  if (!d.GetByte(&kind) || kind > 2) return std::nullopt;
  ChangeSignature s;
  s.kind = static_cast<ChangeSignature::Kind>(kind);
  if (s.kind == ChangeSignature::Kind::kPatch && !d.GetFixed64(&s.members)) return std::nullopt;
  return s;
}

bool MayChange(const std::optional<ChangeSignature>& s, std::uint64_t bit) {
  if (!s) return true;
  switch (s->kind) {
    case ChangeSignature::Kind::kNone:
      return false;
    case ChangeSignature::Kind::kReset:
      return true;
    case ChangeSignature::Kind::kPatch:
      return bit == 0 || (s->members & bit) != 0;
  }
  return true;
}

Status VisitEvents(const KvEngine& engine, std::span<const Position> positions,
                   const std::function<Result<bool>(const StoredEventView&)>& visit) {
  // Decodes one stored event and visits it; false when the visit asks to stop.
  auto one = [&visit](Position p, std::string_view raw) -> Result<bool> {
    Result<StoredEventView> e = DecodeStoredEventView(raw);
    if (!e.ok()) return e.status().WithPrefix("position " + std::to_string(p));
    return visit(*e);
  };
  auto missing = [](Position p) {
    return Status::Corruption("position " + std::to_string(p) + " is missing from the log");
  };
  if (positions.empty()) return Status::Ok();
  if (positions.size() == 1) {  // a point read costs less than an iterator
    TT_ASSIGN_OR_RETURN(std::optional<std::string> raw,
                        engine.Get(Family::kLog, keys::Log(positions.front())));
    if (!raw) return missing(positions.front());
    return one(positions.front(), *raw).status();
  }
  const bool ascending = std::is_sorted(positions.begin(), positions.end());
  // Newest first, as activity reads its pages.
  const bool descending =
      !ascending && std::is_sorted(positions.begin(), positions.end(), std::greater<>());
  const Position low = std::min(positions.front(), positions.back());
  const Position high = std::max(positions.front(), positions.back());
  // Dense: at most one other event between two wanted ones on average, so stepping over the
  // others costs less than a seek per event.
  if ((ascending || descending) && high - low < 2 * positions.size()) {
    auto it = engine.NewIterator(Family::kLog);
    if (ascending) {
      it->Seek(keys::Log(low));
    } else {
      it->SeekForPrev(keys::Log(high));
    }
    for (Position p : positions) {
      if (ascending) {
        while (it->Valid() && DecodeBigEndian64(it->key().data()) < p) it->Next();
      } else {
        while (it->Valid() && DecodeBigEndian64(it->key().data()) > p) it->Prev();
      }
      TT_RETURN_IF_ERROR(it->status());
      if (!it->Valid() || DecodeBigEndian64(it->key().data()) != p) return missing(p);
      TT_ASSIGN_OR_RETURN(bool more, one(p, it->value()));
      if (!more) break;
    }
    return Status::Ok();
  }
  std::vector<std::string> log_keys;
  log_keys.reserve(positions.size());
  for (Position p : positions) log_keys.push_back(keys::Log(p));
  TT_ASSIGN_OR_RETURN(std::vector<std::optional<std::string>> raw,
                      engine.MultiGet(Family::kLog, log_keys));
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (!raw[i]) return missing(positions[i]);
    TT_ASSIGN_OR_RETURN(bool more, one(positions[i], *raw[i]));
    if (!more) break;
  }
  return Status::Ok();
}

Result<std::vector<RecordedEvent>> ReadEvents(const KvEngine& engine,
                                              std::span<const Position> positions) {
  std::vector<RecordedEvent> events;
  events.reserve(positions.size());
  TT_RETURN_IF_ERROR(VisitEvents(engine, positions, [&events](const StoredEventView& e) {
    events.push_back(e.ToEvent());
    return Result<bool>(true);
  }));
  return events;
}

Result<RecordedEvent> ReadEvent(const KvEngine& engine, Position p) {
  TT_ASSIGN_OR_RETURN(std::optional<std::string> raw, engine.Get(Family::kLog, keys::Log(p)));
  if (!raw) return Status::Corruption("position " + std::to_string(p) + " is missing from the log");
  auto e = DecodeStoredEvent(*raw);
  if (!e.ok()) return e.status().WithPrefix("position " + std::to_string(p));
  return e;
}

namespace {

bool IsReset(std::string_view type) { return type == kPutType || type == kDeleteType; }

// Folds "newest_first" (read going back in fold order) in reverse into "state", and records the
// last document event's point.
Status FoldBack(FoldedState& state, std::vector<RecordedEvent>& newest_first) {
  for (auto e = newest_first.rbegin(); e != newest_first.rend(); ++e) {
    TT_RETURN_IF_ERROR(FoldInto(state, *e));
  }
  if (!newest_first.empty()) state.last_event = query::PointOf(newest_first.front());
  return Status::Ok();
}

}  // namespace

Result<FoldedState> StateAtRevision(const KvEngine& engine, std::string_view stream, Revision r) {
  TT_ASSIGN_OR_RETURN(std::optional<FoldedState> s,
                      StateAtRevisionAtOrBefore(engine, stream, r, UINT64_MAX));
  if (!s) return Status::Corruption("stream index of '" + std::string(stream) + "' is damaged");
  return std::move(*s);
}

Result<std::optional<FoldedState>> StateAtRevisionAtOrBefore(const KvEngine& engine,
                                                             std::string_view stream, Revision r,
                                                             Position at_or_before) {
  const std::string prefix = keys::StreamIndexPrefix(stream);
  // Document events after the starting point, newest first.
  std::vector<RecordedEvent> tail;
  FoldedState state;
  // The snapshot at or before "r", looked up once the walk meets an event that is no $put.
  bool snapshot_looked_up = false;
  std::optional<Revision> snapshot_revision;
  std::string snapshot_value;
  bool from_snapshot = false;
  auto it = engine.NewStreamIterator(Family::kStreamIndex);
  auto in_stream = [&] {
    return it->Valid() && it->key().starts_with(prefix) && it->key().size() == prefix.size() + 8;
  };
  // Revision r is stored, so a forward seek lands on it (cheaper than SeekForPrev in a memtable).
  it->Seek(keys::StreamIndex(stream, r));
  if (!in_stream() || DecodeBigEndian64(it->key().data() + prefix.size()) != r) {
    it->SeekForPrev(keys::StreamIndex(stream, r));
  }
  for (bool first = true; in_stream(); it->Prev(), first = false) {
    Revision rev = DecodeBigEndian64(it->key().data() + prefix.size());
    if (snapshot_revision && rev <= *snapshot_revision) {
      from_snapshot = true;
      break;
    }
    auto p = keys::DecodePosition(it->value());
    if (!p)
      return Status::Corruption("stream index entry of '" + std::string(stream) + "' is damaged");
    if (first && *p > at_or_before) return std::optional<FoldedState>();
    TT_ASSIGN_OR_RETURN(RecordedEvent e, ReadEvent(engine, *p));
    if (IsReset(e.type)) {
      // A $put or $delete replaces the whole document: nothing before it matters.
      TT_RETURN_IF_ERROR(FoldInto(state, e));
      state.last_event = query::PointOf(e);
      break;
    }
    if (query::IsDocumentType(e.type)) tail.push_back(std::move(e));
    if (!snapshot_looked_up) {
      snapshot_looked_up = true;
      auto snap = engine.NewStreamIterator(Family::kSnapshots);
      snap->SeekForPrev(SnapshotKey(stream, r));
      TT_RETURN_IF_ERROR(snap->status());
      if (snap->Valid() && snap->key().starts_with(prefix) &&
          snap->key().size() == prefix.size() + 8) {
        snapshot_revision = DecodeBigEndian64(snap->key().data() + prefix.size());
        snapshot_value = std::string(snap->value());
        if (*snapshot_revision >= rev) {
          // The snapshot already holds this event (it was taken at "r").
          tail.clear();
          from_snapshot = true;
          break;
        }
      }
    }
  }
  TT_RETURN_IF_ERROR(it->status());
  if (from_snapshot) {
    TT_ASSIGN_OR_RETURN(state, DecodeSnapshot(snapshot_value));
  }
  TT_RETURN_IF_ERROR(FoldBack(state, tail));
  return std::optional<FoldedState>(std::move(state));
}

Result<std::optional<IndexedEvent>> LastIndexedAtOrBefore(const KvEngine& engine,
                                                          std::string_view stream, Revision last,
                                                          Position p) {
  const std::string prefix = PositionPrefix(stream);
  auto it = engine.NewStreamIterator(Family::kIndex);
  auto entry = [&]() -> Result<std::optional<IndexedEvent>> {
    if (!it->Valid() || !it->key().starts_with(prefix) || it->key().size() != prefix.size() + 8) {
      return std::optional<IndexedEvent>();
    }
    Decoder d(it->value());
    IndexedEvent e;
    if (!d.GetFixed64(&e.revision)) {
      return Status::Corruption("position index entry of '" + std::string(stream) + "' is damaged");
    }
    e.position = DecodeBigEndian64(it->key().data() + prefix.size());
    return std::optional<IndexedEvent>(e);
  };
  it->SeekForPrev(PositionKey(stream, p));
  TT_RETURN_IF_ERROR(it->status());
  TT_ASSIGN_OR_RETURN(std::optional<IndexedEvent> found, entry());
  if (!found || found->revision > last) return std::optional<IndexedEvent>();
  if (found->revision == last) return found;  // nothing after it is visible
  // The next entry must be the next revision: a missing entry in between would hide the answer.
  // Its blocks are the ones just read, so this step costs no further reads.
  it->Next();
  TT_RETURN_IF_ERROR(it->status());
  TT_ASSIGN_OR_RETURN(std::optional<IndexedEvent> next, entry());
  if (!next || next->revision != found->revision + 1) return std::optional<IndexedEvent>();
  return found;
}

Result<std::optional<FoldedState>> StateAtIndexedPosition(const KvEngine& engine,
                                                          std::string_view stream, Revision last,
                                                          Position p) {
  TT_ASSIGN_OR_RETURN(std::optional<IndexedEvent> at,
                      LastIndexedAtOrBefore(engine, stream, last, p));
  if (!at) return std::optional<FoldedState>();
  // Usually a $put: the event alone is the state, and the stream index need not be read.
  TT_ASSIGN_OR_RETURN(RecordedEvent e, ReadEvent(engine, at->position));
  if (e.stream != stream || e.revision != at->revision) {
    return Status::Corruption("position index entry of '" + std::string(stream) +
                              "' names an event of another stream or revision");
  }
  if (!IsReset(e.type)) {
    TT_ASSIGN_OR_RETURN(FoldedState state, StateAtRevision(engine, stream, at->revision));
    return std::optional<FoldedState>(std::move(state));
  }
  FoldedState state;
  TT_RETURN_IF_ERROR(FoldInto(state, e));
  state.last_event = query::PointOf(e);
  return std::optional<FoldedState>(std::move(state));
}

Result<RevisionLookup> RevisionAtPosition(const KvEngine& engine, std::string_view stream,
                                          Revision last, Position p) {
  const std::string prefix = PositionPrefix(stream);
  RevisionLookup out;
  if (p == UINT64_MAX) return out;
  auto it = engine.NewStreamIterator(Family::kIndex);
  it->Seek(PositionKey(stream, p + 1));
  TT_RETURN_IF_ERROR(it->status());
  if (!it->Valid() || !it->key().starts_with(prefix) || it->key().size() != prefix.size() + 8) {
    return out;  // the events after p are not indexed
  }
  std::optional<Revision> next = keys::DecodePosition(it->value());  // fixed64, like positions
  if (!next)
    return Status::Corruption("position index entry of '" + std::string(stream) + "' is damaged");
  if (*next == 0) {
    out.known = true;  // the stream's first event comes after p
    return out;
  }
  if (*next - 1 >= last) return out;  // not visible yet: let the caller search what is
  out.known = true;
  out.revision = *next - 1;
  return out;
}

Result<std::optional<FoldedState>> ValidStateFromLastReset(const KvEngine& engine,
                                                           std::string_view stream, Position known,
                                                           Timestamp v, std::size_t max_steps) {
  const std::string prefix = ValidPrefix(stream);
  // The entries back to the last reset, newest first. Their signatures say which one is the
  // reset, so the events are read at once afterwards (one multi-key read, not one read each:
  // on a PostgreSQL store every read is a round trip). An entry without a signature (written
  // before signatures existed) may be a reset: that event is read when it is met.
  std::vector<Position> positions;
  std::optional<RecordedEvent> reset;
  std::size_t steps = 0;
  auto it = engine.NewStreamIterator(Family::kIndex);
  for (it->SeekForPrev(ValidKey(stream, v, UINT64_MAX));
       it->Valid() && it->key().starts_with(prefix) && it->key().size() == prefix.size() + 16;
       it->Prev()) {
    if (++steps > max_steps) return std::optional<FoldedState>();
    Position p = DecodeBigEndian64(it->key().data() + prefix.size() + 8);
    if (p > known) continue;  // recorded after the time it is known at
    std::optional<ChangeSignature> signature = DecodeSignature(it->value());
    if (signature) {
      positions.push_back(p);
      if (signature->kind == ChangeSignature::Kind::kReset) break;
      continue;
    }
    TT_ASSIGN_OR_RETURN(RecordedEvent e, ReadEvent(engine, p));
    if (IsReset(e.type)) {
      reset = std::move(e);
      break;
    }
    positions.push_back(p);
  }
  TT_RETURN_IF_ERROR(it->status());
  TT_ASSIGN_OR_RETURN(std::vector<RecordedEvent> tail, ReadEvents(engine, positions));
  if (!reset && !tail.empty() && IsReset(tail.back().type)) {
    reset = std::move(tail.back());
    tail.pop_back();
  }
  FoldedState state;
  if (reset) {
    TT_RETURN_IF_ERROR(FoldInto(state, *reset));
    state.last_event = query::PointOf(*reset);
  }
  TT_RETURN_IF_ERROR(FoldBack(state, tail));
  return std::optional<FoldedState>(std::move(state));
}

TemporalIndexHook::TemporalIndexHook(const KvEngine* engine, std::uint32_t interval,
                                     std::size_t snapshot_bytes,
                                     std::function<Position()> durable_position)
    : engine_(engine),
      interval_(interval < 1 ? 1 : interval),
      snapshot_bytes_(snapshot_bytes),
      durable_position_(std::move(durable_position)) {}

bool TemporalIndexHook::SnapshotDue(const RecordedEvent& e, Entry& entry) const {
  // By count, every interval_-th revision: a fixed cadence needs no per-stream state, so it
  // holds across evictions and restarts, and a fold from the nearest snapshot reads at most
  // interval_ events. By bytes, sooner when the stream's events are big: a fold then reads about
  // snapshot_bytes_ of event data, not interval_ big events. Readers seek the nearest snapshot
  // and assume no cadence, so stores written with other settings answer the same.
  if (query::IsDocumentType(e.type)) entry.bytes_since_snapshot += e.data.size();
  const bool due = (e.revision + 1) % interval_ == 0 ||
                   (snapshot_bytes_ > 0 && entry.bytes_since_snapshot >= snapshot_bytes_);
  if (due) entry.bytes_since_snapshot = 0;
  return due;
}

Result<std::optional<Timestamp>> TemporalIndexHook::LoadMaxValidFrom(const std::string& stream,
                                                                     Revision r) {
  // The valid-time index is ordered by valid_from: walking it back from its end, the first
  // entry of a revision up to "r" holds the largest valid_from. One seek, where folding the
  // events since the last snapshot read up to snapshot_interval events on every cache miss
  // (and made bulk loads slow down as streams grew).
  const std::string prefix = ValidPrefix(stream);
  auto it = engine_->NewStreamIterator(Family::kIndex);
  for (it->SeekForPrev(ValidKey(stream, kMaxTimestamp, UINT64_MAX));
       it->Valid() && it->key().starts_with(prefix) && it->key().size() == prefix.size() + 16;
       it->Prev()) {
    Decoder d(it->value());
    std::uint64_t revision = 0;
    if (!d.GetFixed64(&revision)) {
      return Status::Corruption("valid-time index entry of '" + stream + "' is damaged");
    }
    if (revision > r) continue;
    return std::optional<Timestamp>(
        Timestamp{SignedFromOrdered(DecodeBigEndian64(it->key().data() + prefix.size()))});
  }
  TT_RETURN_IF_ERROR(it->status());
  return std::optional<Timestamp>();
}

Status TemporalIndexHook::RefoldValid(const std::string& stream, Revision r, Entry& entry) {
  TT_ASSIGN_OR_RETURN(std::optional<ValidSnapshot> snap,
                      FindValidSnapshot(*engine_, stream, kMaxTimestamp, r));
  std::map<Revision, RecordedEvent> events;
  TT_RETURN_IF_ERROR(
      ReadDocumentEvents(*engine_, stream, snap ? snap->revision : 0, !snap, r, &events));
  for (const RecordedEvent& e : pending_) {
    if (e.stream == stream && (!snap || e.revision > snap->revision) && e.revision <= r) {
      events.emplace(e.revision, e);
    }
  }
  // Go back past every snapshot that a later event inserts itself before.
  while (snap) {
    std::optional<Timestamp> earliest;
    for (const auto& [rev, e] : events) {
      if (!earliest || e.valid_from < *earliest) earliest = e.valid_from;
    }
    if (!earliest || *earliest >= snap->boundary_valid_from) break;
    Revision upto = snap->revision;
    if (upto == 0) {
      snap.reset();
    } else {
      TT_ASSIGN_OR_RETURN(snap, FindValidSnapshot(*engine_, stream, *earliest, upto - 1));
    }
    TT_RETURN_IF_ERROR(
        ReadDocumentEvents(*engine_, stream, snap ? snap->revision : 0, !snap, upto, &events));
  }
  std::vector<const RecordedEvent*> order;
  for (const auto& [rev, e] : events) order.push_back(&e);
  std::stable_sort(order.begin(), order.end(), [](const RecordedEvent* a, const RecordedEvent* b) {
    return query::ValidOrderLess(*a, *b);
  });
  ValidSnapshot out;
  out.revision = r;
  if (snap) out = std::move(*snap);
  out.revision = r;
  for (const RecordedEvent* e : order) {
    TT_RETURN_IF_ERROR(FoldInto(out.state, *e));
    out.boundary_valid_from = e->valid_from;
    out.boundary_position = e->position;
  }
  entry.valid_current = true;
  entry.valid_base = std::move(out.state);
  entry.valid_boundary = out.boundary_valid_from;
  entry.valid_boundary_position = out.boundary_position;
  return Status::Ok();
}

void TemporalIndexHook::EvictDurable() {
  const Position durable = durable_position_();
  std::erase_if(cache_, [durable](const auto& kv) { return kv.second.position <= durable; });
}

namespace {

// What PrepareEvent builds for one event, for OnTransaction. Encoded as its parts in this order,
// each length-prefixed (PutLengthPrefixed), so that a part may be added without the others
// knowing its size; never stored.
struct PreparedEvent {
  std::string_view signature;     // the encoded ChangeSignature
  std::string_view type_prefix;   // TypePrefix of the event's type
  std::string_view actor_prefix;  // ActorPrefix of metadata.actor; empty when it names none
};

std::string EncodePrepared(const ChangeSignature& signature, std::string_view type_prefix,
                           std::string_view actor_prefix) {
  std::string encoded_signature;
  AppendSignature(signature, &encoded_signature);
  std::string out;
  out.reserve(3 + encoded_signature.size() + type_prefix.size() + actor_prefix.size());
  PutLengthPrefixed(&out, encoded_signature);
  PutLengthPrefixed(&out, type_prefix);
  PutLengthPrefixed(&out, actor_prefix);
  return out;
}

std::optional<PreparedEvent> DecodePrepared(std::string_view prepared) {
  Decoder d(prepared);
  PreparedEvent out;
  d.GetLengthPrefixed(&out.signature);
  d.GetLengthPrefixed(&out.type_prefix);
  d.GetLengthPrefixed(&out.actor_prefix);
  if (!d.ok()) return std::nullopt;
  return out;
}

// The actor metadata.actor names, when it is a string.
std::optional<std::string> ActorOf(std::string_view metadata) {
  // Metadata was validated as a JSON object. Parsing it is skipped when it cannot hold an
  // "actor" key: the key's letters can only be spelled literally or with \u escapes.
  if (metadata.find("actor") == std::string_view::npos &&
      metadata.find("\\u") == std::string_view::npos) {
    return std::nullopt;
  }
  Json meta = Json::parse(metadata.begin(), metadata.end(), nullptr, false);
  if (!meta.is_object()) return std::nullopt;
  auto actor = meta.find("actor");
  if (actor == meta.end() || !actor->is_string()) return std::nullopt;
  return actor->get<std::string>();
}

}  // namespace

std::string TemporalIndexHook::PrepareEvent(const RecordedEvent& e) const {
  std::optional<std::string> actor = ActorOf(e.metadata);
  return EncodePrepared(SignatureOf(e.type, e.data), TypePrefix(e.type),
                        actor ? ActorPrefix(*actor) : std::string());
}

namespace {

// Whether folding "tail" needs the state before it: not when it holds a $put or $delete, which
// replaces everything before it.
bool TailNeedsBase(const std::vector<RecordedEvent>& tail) {
  return std::none_of(tail.begin(), tail.end(),
                      [](const RecordedEvent& e) { return IsReset(e.type); });
}

// Folds "tail" into "state", from its last $put or $delete when it has one.
Status FoldForward(FoldedState& state, const std::vector<RecordedEvent>& tail) {
  std::size_t from = tail.size();
  while (from > 0 && !IsReset(tail[from - 1].type)) --from;
  if (from > 0) {
    --from;  // the reset itself
    state = FoldedState{};
  }
  for (std::size_t i = from; i < tail.size(); ++i) TT_RETURN_IF_ERROR(FoldInto(state, tail[i]));
  return Status::Ok();
}

}  // namespace

Status TemporalIndexHook::FoldTail(const std::string& stream, Entry& entry) {
  if (!entry.base && (entry.tail.empty() || TailNeedsBase(entry.tail))) {
    // Not loaded yet, so base_revision was durable when the entry was made.
    if (entry.base_revision) {
      TT_ASSIGN_OR_RETURN(FoldedState loaded,
                          StateAtRevision(*engine_, stream, *entry.base_revision));
      entry.base = std::move(loaded);
    } else {
      entry.base = FoldedState{};
    }
  }
  if (!entry.base) entry.base = FoldedState{};  // the tail replaces it whole
  TT_RETURN_IF_ERROR(FoldForward(*entry.base, entry.tail));
  if (entry.valid_current) TT_RETURN_IF_ERROR(FoldForward(entry.valid_base, entry.tail));
  entry.base_revision = entry.revision;
  entry.tail.clear();
  return Status::Ok();
}

Status TemporalIndexHook::OnTransaction(std::span<const RecordedEvent> events,
                                        std::span<const std::string> stored,
                                        std::span<const std::string> prepared,
                                        std::span<const StreamBefore> before, KvWriteBatch& batch) {
  if (cache_.size() >= next_eviction_size_) {
    // At most once per kMaxCachedStreams / 4 new streams: entries not yet durable cannot be
    // evicted, so under a burst of new streams a check on every transaction would scan the
    // whole cache each time.
    EvictDurable();
    next_eviction_size_ = std::max(cache_.size(), kMaxCachedStreams) + kMaxCachedStreams / 4;
  }
  if (!pending_.empty()) {
    // In position order: what became durable is at the front.
    const Position durable = durable_position_();
    while (!pending_.empty() && pending_.front().position <= durable) pending_.pop_front();
  }
  std::string fixed, key;
  // A key whose prefix PrepareEvent built: only the position is appended here.
  auto key_at = [&key](std::string_view prefix, Position p) -> const std::string& {
    key.assign(prefix);
    PutBigEndian64(&key, p);
    return key;
  };
  for (std::size_t i = 0; i < events.size(); ++i) {
    const RecordedEvent& e = events[i];
    const std::optional<PreparedEvent> prep = DecodePrepared(prepared[i]);
    if (!prep) return Status::Internal("the index data prepared for an event is damaged");
    batch.Put(Family::kIndex, key_at(prep->type_prefix, e.position), "");
    if (!prep->actor_prefix.empty()) {
      // Covering: activity by actor reads no log.
      batch.Put(Family::kIndex, key_at(prep->actor_prefix, e.position), stored[i]);
    }
    // The revision and the signature: the value of both the position and valid-time entries.
    fixed.clear();
    PutFixed64(&fixed, e.revision);
    fixed.append(prep->signature);
    batch.Put(Family::kIndex, PositionKey(e.stream, e.position), fixed);

    auto it = cache_.find(e.stream);
    if (it == cache_.end()) {
      Entry fresh;
      fresh.valid_current = e.revision == 0;  // nothing folded yet, in either order
      if (e.revision > 0) {
        // Not cached, so every earlier revision is durable and the engine has it.
        fresh.base_revision = e.revision - 1;
        if (before[i].max_valid_from_known) {
          fresh.max_valid_from = before[i].max_valid_from;  // kept in the stream's head
        } else {
          auto max = LoadMaxValidFrom(e.stream, e.revision - 1);
          if (!max.ok()) return max.status().WithPrefix("stream '" + e.stream + "'");
          fresh.max_valid_from = *max;
        }
      }
      it = cache_.emplace(e.stream, std::move(fresh)).first;
    }
    Entry& entry = it->second;
    entry.revision = e.revision;
    entry.position = e.position;
    if (query::IsDocumentType(e.type)) {
      batch.Put(Family::kIndex, ValidKey(e.stream, e.valid_from, e.position), fixed);
      const std::optional<Timestamp> earlier_max_valid_from = entry.max_valid_from;
      if (entry.max_valid_from && e.valid_from < *entry.max_valid_from) {
        std::string vf;
        PutFixed64(&vf, OrderedFromSigned(e.valid_from.micros));
        batch.Put(Family::kIndex, CorrectionKey(e.stream, e.revision), vf);
      }
      if (!entry.max_valid_from || e.valid_from > *entry.max_valid_from) {
        entry.max_valid_from = e.valid_from;
      }
      pending_.push_back(e);
      if (entry.valid_current && e.valid_from >= entry.valid_boundary) {
        // In valid-time order: this event comes last in the valid-time fold too.
        entry.valid_boundary = e.valid_from;
        entry.valid_boundary_position = e.position;
      } else if (IsReset(e.type) &&
                 (!earlier_max_valid_from || e.valid_from >= *earlier_max_valid_from)) {
        // A $put or $delete that comes last in valid-time order too (no earlier event is valid
        // from later; ties go by position) replaces everything before it in both folds, so the
        // valid-time fold starts over here: a stream whose state is not cached (evicted, or
        // after a restart) needs none of its events read back when its snapshot is due. Bulk
        // loads of $put-only streams otherwise stalled when every stream reached its first
        // snapshot at once, reading back all of their events (bench/README.md, "import").
        entry.valid_current = true;
        entry.valid_base = FoldedState{};
        entry.valid_boundary = e.valid_from;
        entry.valid_boundary_position = e.position;
      } else {
        entry.valid_current = false;  // a correction, or not loaded: refold at the snapshot
      }
      entry.tail.push_back(e);
    }
    if (SnapshotDue(e, entry)) {
      Status s = FoldTail(e.stream, entry);
      if (s.ok() && !entry.valid_current) s = RefoldValid(e.stream, e.revision, entry);
      if (!s.ok()) {
        // The batch is abandoned (OnBatchAborted follows); forget the half-applied state.
        cache_.erase(it);
        return s.WithPrefix("stream '" + e.stream + "'");
      }
      batch.Put(Family::kSnapshots, SnapshotKey(e.stream, e.revision),
                EncodeSnapshot(e.position, *entry.base));
      ValidSnapshot snapshot;
      snapshot.revision = e.revision;
      snapshot.boundary_valid_from = entry.valid_boundary;
      snapshot.boundary_position = entry.valid_boundary_position;
      snapshot.state = entry.valid_base;
      batch.Put(Family::kIndex, ValidSnapshotKey(e.stream, e.revision),
                EncodeValidSnapshot(snapshot));
      batch.Put(Family::kIndex, ValidSnapshotByTimeKey(e.stream, entry.valid_boundary, e.revision),
                "");
    }
  }
  return Status::Ok();
}

void TemporalIndexHook::OnOtherWriters() {
  // Another node may have appended to any cached stream. Every event this process wrote is
  // committed by now (a shared engine's groups commit before the next begins), so the engine
  // answers for all of them and nothing pending is needed either.
  cache_.clear();
  pending_.clear();
}

void TemporalIndexHook::OnBatchAborted() {
  // States that include events of the abandoned batch must go; durable ones stay correct.
  const Position durable = durable_position_();
  std::erase_if(cache_, [durable](const auto& kv) { return kv.second.position > durable; });
  pending_.clear();  // nothing pending was written
}

}  // namespace timetrail::temporal
