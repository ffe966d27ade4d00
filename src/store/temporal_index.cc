#include "store/temporal_index.h"

#include <utility>

#include "core/coding.h"
#include "core/event_codec.h"
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

}  // namespace

std::string SnapshotKey(std::string_view stream, Revision r) { return keys::StreamIndex(stream, r); }

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

Result<RecordedEvent> ReadEvent(const KvEngine& engine, Position p) {
  TT_ASSIGN_OR_RETURN(std::optional<std::string> raw, engine.Get(Family::kLog, keys::Log(p)));
  if (!raw) return Status::Corruption("position " + std::to_string(p) + " is missing from the log");
  auto e = DecodeStoredEvent(*raw);
  if (!e.ok()) return e.status().WithPrefix("position " + std::to_string(p));
  return e;
}

Result<FoldedState> StateAtRevision(const KvEngine& engine, std::string_view stream, Revision r) {
  const std::string prefix = keys::StreamIndexPrefix(stream);
  FoldedState state;
  Revision next = 0;
  {
    auto it = engine.NewIterator(Family::kSnapshots);
    it->SeekForPrev(SnapshotKey(stream, r));
    TT_RETURN_IF_ERROR(it->status());
    if (it->Valid() && it->key().starts_with(prefix) && it->key().size() == prefix.size() + 8) {
      TT_ASSIGN_OR_RETURN(state, DecodeSnapshot(it->value()));
      next = DecodeBigEndian64(it->key().data() + prefix.size()) + 1;
    }
  }
  if (next > r) return state;
  auto it = engine.NewIterator(Family::kStreamIndex);
  for (it->Seek(keys::StreamIndex(stream, next)); it->Valid() && it->key().starts_with(prefix);
       it->Next()) {
    Revision rev = DecodeBigEndian64(it->key().data() + prefix.size());
    if (rev > r) break;
    auto p = keys::DecodePosition(it->value());
    if (!p) return Status::Corruption("stream index entry of '" + std::string(stream) + "' is damaged");
    TT_ASSIGN_OR_RETURN(RecordedEvent e, ReadEvent(engine, *p));
    TT_RETURN_IF_ERROR(FoldInto(state, e));
  }
  TT_RETURN_IF_ERROR(it->status());
  return state;
}

TemporalIndexHook::TemporalIndexHook(const KvEngine* engine, std::uint32_t interval,
                                     std::function<Position()> durable_position)
    : engine_(engine), interval_(interval < 1 ? 1 : interval),
      durable_position_(std::move(durable_position)) {}

void TemporalIndexHook::EvictDurable() {
  const Position durable = durable_position_();
  std::erase_if(cache_, [durable](const auto& kv) { return kv.second.position <= durable; });
}

Status TemporalIndexHook::OnTransaction(std::span<const RecordedEvent> events,
                                        KvWriteBatch& batch) {
  if (cache_.size() > kMaxCachedStreams) EvictDurable();
  for (const RecordedEvent& e : events) {
    // Actor index. Metadata was validated as a JSON object by the write path.
    Json meta = Json::parse(e.metadata.begin(), e.metadata.end(), nullptr, false);
    if (meta.is_object()) {
      auto actor = meta.find("actor");
      if (actor != meta.end() && actor->is_string()) {
        batch.Put(Family::kIndex, ActorKey(actor->get_ref<const std::string&>(), e.position), "");
      }
    }

    auto it = cache_.find(e.stream);
    if (it == cache_.end()) {
      Entry fresh;
      if (e.revision > 0) {
        // Not cached, so every earlier revision is durable and the engine can fold it.
        auto loaded = StateAtRevision(*engine_, e.stream, e.revision - 1);
        if (!loaded.ok()) return loaded.status().WithPrefix("stream '" + e.stream + "'");
        fresh.state = std::move(loaded).value();
      }
      it = cache_.emplace(e.stream, std::move(fresh)).first;
    }
    Entry& entry = it->second;
    Status s = FoldInto(entry.state, e);
    if (!s.ok()) {
      // The batch is abandoned (OnBatchAborted follows); forget the half-applied state.
      cache_.erase(it);
      return s.WithPrefix("stream '" + e.stream + "'");
    }
    entry.revision = e.revision;
    entry.position = e.position;
    if ((e.revision + 1) % interval_ == 0) {
      batch.Put(Family::kSnapshots, SnapshotKey(e.stream, e.revision),
                EncodeSnapshot(e.position, entry.state));
    }
  }
  return Status::Ok();
}

void TemporalIndexHook::OnBatchAborted() {
  // States that include events of the abandoned batch must go; durable ones stay correct.
  const Position durable = durable_position_();
  std::erase_if(cache_, [durable](const auto& kv) { return kv.second.position > durable; });
}

}  // namespace timetrail::temporal
