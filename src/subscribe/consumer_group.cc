#include "timetrail/consumer_group.h"

#include <algorithm>
#include <set>
#include <utility>

#include "json/json_writer.h"
#include "json/raw_json.h"

namespace timetrail {
namespace {

using SteadyClock = std::chrono::steady_clock;
using SystemClock = std::chrono::system_clock;
using json::JsonWriter;
using json::RawJson;

// Where the list of group names is kept, and the prefix of each group's state.
constexpr std::string_view kIndexCheckpoint = "groups";
constexpr std::string_view kGroupCheckpointPrefix = "group/";
constexpr std::size_t kMaxPositionsPerCall = 1000;
constexpr std::size_t kMaxReasonBytes = 1000;
constexpr std::size_t kMaxEventTypes = 100;
constexpr std::size_t kMaxMembersRemembered = 1000;
// Log events one fetch examines at most, so that a rare match does not make one call read the
// whole log under the group's lock.
constexpr std::size_t kMaxScanPerFetch = 4096;

std::string GroupCheckpoint(std::string_view name) {
  return std::string(kGroupCheckpointPrefix) + std::string(name);
}

Status ValidateSettings(const ConsumerGroupSettings& s) {
  if (s.stream_prefix.size() > 512) {
    return Status::InvalidArgument("stream_prefix must be at most 512 bytes");
  }
  if (s.event_types.size() > kMaxEventTypes) {
    return Status::InvalidArgument("types may name at most " + std::to_string(kMaxEventTypes) +
                                   " event types");
  }
  for (const std::string& t : s.event_types) {
    if (t.empty() || t.size() > 256) {
      return Status::InvalidArgument("types: each event type must be 1 to 256 bytes");
    }
  }
  if (s.max_retries < 1 || s.max_retries > 1000) {
    return Status::InvalidArgument("max_retries must be 1 to 1000, got " +
                                   std::to_string(s.max_retries));
  }
  if (s.lease < std::chrono::milliseconds(10) || s.lease > std::chrono::hours(24)) {
    return Status::InvalidArgument("lease_ms must be 10 to 86400000, got " +
                                   std::to_string(s.lease.count()));
  }
  if (s.max_in_flight < 1 || s.max_in_flight > 10000) {
    return Status::InvalidArgument("max_in_flight must be 1 to 10000, got " +
                                   std::to_string(s.max_in_flight));
  }
  return Status::Ok();
}

// An event fetched from the log and not done yet.
struct Pending {
  RecordedEvent event;
  std::uint32_t failures = 0;  // deliveries that ended in a nack (retry) or an expired lease
  bool delivered = false;      // handed to a member since this process started
  std::string member;          // who holds it; empty: waiting for a member
  SteadyClock::time_point expires;
  SystemClock::time_point expires_wall;
};

struct Member {
  std::size_t in_flight = 0;
  SystemClock::time_point last_seen;
};

}  // namespace

// One group's settings and progress. Every field is guarded by "mu".
struct ConsumerGroups::Group {
  std::mutex mu;
  std::string name;
  ConsumerGroupSettings settings;
  bool deleted = false;
  // The next log position to examine.
  Position scan_next = 1;
  // Fetched events not yet done, by position.
  std::map<Position, Pending> pending;
  // Done events below scan_next and above acked_through().
  std::set<Position> done;
  // Loaded from the store: done events at or after scan_next (after a restart), and failed
  // deliveries of events not fetched since.
  std::set<Position> done_ahead;
  std::map<Position, std::uint32_t> stored_failures;
  // Parked events handed out again by ReplayParked that lie at or before acked_through() (the
  // others went back to "pending"); delivered before newer events. Not counted in the
  // acknowledged position, which never moves back.
  std::map<Position, Pending> replay;
  // The parked stream's events before this revision were replayed.
  Revision parked_replayed = 0;
  std::uint64_t parked = 0;
  std::map<std::string, Member, std::less<>> members;

  // Every matching event at or before this is done, but those in "replay".
  Position acked_through() const {
    Position lowest = pending.empty() ? scan_next : std::min(pending.begin()->first, scan_next);
    return lowest - 1;
  }
  LogFilter filter() const {
    LogFilter f;
    f.stream_prefix = settings.stream_prefix;
    f.event_types = settings.event_types;
    f.skip_system_streams = true;  // never the parked streams, nor the server's audit stream
    return f;
  }
};

namespace {

using Group = ConsumerGroups::Group;

// A change to a group, written to the store before it is applied in memory, so that a write
// that fails changes nothing.
struct Change {
  std::set<Position> done;                              // acked, skipped or parked
  std::map<Position, std::uint32_t> failures;           // new failed-delivery counts
  std::vector<std::pair<Position, std::string>> parks;  // with the reason of the last failure
  std::map<Position, RecordedEvent> replay;             // parked events to deliver again
  std::optional<Revision> parked_replayed;
};

// The event at "p" not done yet, or null.
const Pending* FindHeld(const Group& g, Position p) {
  if (auto it = g.replay.find(p); it != g.replay.end()) return &it->second;
  if (auto it = g.pending.find(p); it != g.pending.end()) return &it->second;
  return nullptr;
}
Pending* FindHeld(Group* g, Position p) {
  return const_cast<Pending*>(FindHeld(static_cast<const Group&>(*g), p));
}

// The durable state of "g" with "change" applied, as the checkpoint's JSON.
std::string StateJson(const Group& g, const Change& change) {
  // The acknowledged position as the change leaves it.
  Position before = g.acked_through();
  Position lowest = g.scan_next;
  for (const auto& [p, pe] : g.pending) {
    if (!change.done.contains(p)) {
      lowest = std::min(lowest, p);
      break;
    }
  }
  // Replayed events after the acknowledged position go back to the pending ones.
  if (auto r = change.replay.upper_bound(before); r != change.replay.end()) {
    lowest = std::min(lowest, r->first);
  }
  Position through = lowest - 1;
  JsonWriter w;
  w.BeginObject();
  w.Key("settings").BeginObject();
  w.Key("stream_prefix").String(g.settings.stream_prefix);
  w.Key("types").BeginArray();
  for (const std::string& t : g.settings.event_types) w.String(t);
  w.EndArray();
  w.Key("start_position").Uint(g.settings.start_position);
  w.Key("start_at_end").Bool(g.settings.start_at_end);
  w.Key("max_retries").Uint(g.settings.max_retries);
  w.Key("lease_ms").Uint(static_cast<std::uint64_t>(g.settings.lease.count()));
  w.Key("max_in_flight").Uint(g.settings.max_in_flight);
  w.EndObject();
  w.Key("acked_through").Uint(through);
  w.Key("done").BeginArray();
  std::set<Position> done = g.done;
  done.insert(g.done_ahead.begin(), g.done_ahead.end());
  done.insert(change.done.begin(), change.done.end());
  for (const auto& [p, e] : change.replay) done.erase(p);
  for (Position p : done) {
    if (p > through) w.Uint(p);
  }
  w.EndArray();
  // [[position, failed deliveries], ...] of the events not done.
  std::map<Position, std::uint32_t> failures = g.stored_failures;
  for (const auto& [p, pe] : g.pending) {
    if (pe.failures > 0) failures[p] = pe.failures;
  }
  for (const auto& [p, n] : change.failures) failures[p] = n;
  w.Key("failures").BeginArray();
  for (const auto& [p, n] : failures) {
    if (p > through && !done.contains(p)) w.BeginArray().Uint(p).Uint(n).EndArray();
  }
  w.EndArray();
  // [[position, failed deliveries], ...] of the replayed events at or before "through".
  std::map<Position, std::uint32_t> replay;
  for (const auto& [p, pe] : g.replay) replay[p] = pe.failures;
  for (const auto& [p, e] : change.replay) {
    if (p <= before) replay[p] = 0;
  }
  w.Key("replay").BeginArray();
  for (const auto& [p, n] : replay) {
    if (change.done.contains(p)) continue;
    auto f = change.failures.find(p);
    w.BeginArray().Uint(p).Uint(f != change.failures.end() ? f->second : n).EndArray();
  }
  w.EndArray();
  w.Key("parked_replayed").Uint(change.parked_replayed.value_or(g.parked_replayed));
  w.Key("parked").Uint(g.parked + change.parks.size());
  w.EndObject();
  return w.Take();
}

Status Corrupt(std::string_view name, std::string_view what) {
  return Status::Corruption("the stored state of consumer group '" + std::string(name) +
                            "' is damaged: " + std::string(what));
}

// Reads a group's state (StateJson) into "g".
Status ParseState(std::string_view text, Group* g) {
  TT_ASSIGN_OR_RETURN(RawJson root, json::ParseRawJson(text));
  auto uint_of = [](const RawJson* v) { return v == nullptr ? std::nullopt : v->AsUint(); };
  const RawJson* s = root.Find("settings");
  if (s == nullptr || !s->is_object()) return Corrupt(g->name, "no settings");
  if (const RawJson* prefix = s->Find("stream_prefix");
      prefix != nullptr && prefix->kind == RawJson::Kind::kString) {
    g->settings.stream_prefix = prefix->str;
  }
  if (const RawJson* types = s->Find("types");
      types != nullptr && types->kind == RawJson::Kind::kArray) {
    for (const RawJson& t : types->items) g->settings.event_types.push_back(t.str);
  }
  std::optional<std::uint64_t> start = uint_of(s->Find("start_position"));
  std::optional<std::uint64_t> retries = uint_of(s->Find("max_retries"));
  std::optional<std::uint64_t> lease = uint_of(s->Find("lease_ms"));
  std::optional<std::uint64_t> in_flight = uint_of(s->Find("max_in_flight"));
  std::optional<std::uint64_t> through = uint_of(root.Find("acked_through"));
  if (!start || !retries || !lease || !in_flight || !through) {
    return Corrupt(g->name, "a setting or the acknowledged position is missing");
  }
  g->settings.start_position = *start;
  const RawJson* at_end = s->Find("start_at_end");
  g->settings.start_at_end = at_end != nullptr && at_end->boolean;
  g->settings.max_retries = static_cast<std::uint32_t>(*retries);
  g->settings.lease = std::chrono::milliseconds(*lease);
  g->settings.max_in_flight = static_cast<std::uint32_t>(*in_flight);
  g->scan_next = *through + 1;
  if (const RawJson* done = root.Find("done");
      done != nullptr && done->kind == RawJson::Kind::kArray) {
    for (const RawJson& d : done->items) {
      std::optional<std::uint64_t> p = d.AsUint();
      if (!p) return Corrupt(g->name, "a done position is not a number");
      if (*p > *through) g->done_ahead.insert(*p);
    }
  }
  if (const RawJson* failures = root.Find("failures");
      failures != nullptr && failures->kind == RawJson::Kind::kArray) {
    for (const RawJson& f : failures->items) {
      if (f.kind != RawJson::Kind::kArray || f.items.size() != 2 || !f.items[0].AsUint() ||
          !f.items[1].AsUint()) {
        return Corrupt(g->name, "a failure count is not [position, count]");
      }
      g->stored_failures[*f.items[0].AsUint()] = static_cast<std::uint32_t>(*f.items[1].AsUint());
    }
  }
  if (const RawJson* replay = root.Find("replay");
      replay != nullptr && replay->kind == RawJson::Kind::kArray) {
    for (const RawJson& r : replay->items) {
      if (r.kind != RawJson::Kind::kArray || r.items.size() != 2 || !r.items[0].AsUint() ||
          !r.items[1].AsUint()) {
        return Corrupt(g->name, "a replayed event is not [position, count]");
      }
      Pending pe;  // its event is read by the caller
      pe.failures = static_cast<std::uint32_t>(*r.items[1].AsUint());
      g->replay.emplace(*r.items[0].AsUint(), std::move(pe));
    }
  }
  g->parked_replayed = uint_of(root.Find("parked_replayed")).value_or(0);
  g->parked = uint_of(root.Find("parked")).value_or(0);
  return Status::Ok();
}

// The parked copy of an event: what it was, where, and why it was given up.
ProposedEvent ParkedCopy(const Group& g, const Pending& pe, std::uint32_t failures,
                         std::string_view reason, bool with_data) {
  const RecordedEvent& e = pe.event;
  JsonWriter w;
  w.BeginObject();
  w.Key("group").String(g.name);
  w.Key("position").Uint(e.position);
  w.Key("stream").String(e.stream);
  w.Key("revision").Uint(e.revision);
  w.Key("event_id").String(e.id.ToString());
  w.Key("type").String(e.type);
  w.Key("recorded_at").String(FormatTimestamp(e.recorded_at));
  w.Key("failed_deliveries").Uint(failures);
  w.Key("reason").String(reason);
  if (with_data) {
    w.Key("data").Raw(e.data.empty() ? "null" : e.data);
    w.Key("metadata").Raw(e.metadata.empty() ? "{}" : e.metadata);
  } else {
    w.Key("data_omitted").Bool(true);  // the copy would exceed the event size limit
  }
  w.EndObject();
  ProposedEvent copy;
  copy.type = "parked";
  copy.data = w.Take();
  return copy;
}

// The transaction that appends the parked copies of "change".
Transaction ParkTransaction(const Group& g, const Change& change, bool with_data) {
  StreamAppend append;
  append.stream = ConsumerGroups::ParkedStream(g.name);
  for (const auto& [p, reason] : change.parks) {
    const Pending& pe = *FindHeld(g, p);
    auto f = change.failures.find(p);
    std::uint32_t failures = f != change.failures.end() ? f->second : pe.failures;
    append.events.push_back(ParkedCopy(g, pe, failures, reason, with_data));
  }
  Transaction tx;
  tx.appends.push_back(std::move(append));
  return tx;
}

void Unlease(Group* g, Pending* pe) {
  if (pe->member.empty()) return;
  auto m = g->members.find(pe->member);
  if (m != g->members.end() && m->second.in_flight > 0) --m->second.in_flight;
  pe->member.clear();
}

// Writes "change" to the store, then applies it to "g": nothing changes if the write fails.
Status Commit(EventStore* store, Group* g, const Change& change) {
  if (change.done.empty() && change.failures.empty() && change.replay.empty() &&
      !change.parked_replayed) {
    return Status::Ok();
  }
  std::string state = StateJson(*g, change);
  if (change.parks.empty()) {
    TT_RETURN_IF_ERROR(store->SetCheckpoint(GroupCheckpoint(g->name), state));
  } else {
    // The copies and the state that marks their events done in one atomic write: an event is
    // parked exactly once, even if the process dies right after.
    Result<Committed> c = store->TransactWithCheckpoint(ParkTransaction(*g, change, true),
                                                        GroupCheckpoint(g->name), state);
    if (!c.ok() && c.status().code() == StatusCode::kTooLarge) {
      c = store->TransactWithCheckpoint(ParkTransaction(*g, change, false),
                                        GroupCheckpoint(g->name), state);
    }
    if (!c.ok()) return c.status();
  }
  for (const auto& [p, n] : change.failures) {
    Pending* pe = FindHeld(g, p);
    if (pe == nullptr) continue;
    pe->failures = n;
    Unlease(g, pe);
  }
  for (Position p : change.done) {
    if (auto it = g->replay.find(p); it != g->replay.end()) {
      Unlease(g, &it->second);
      g->replay.erase(it);  // at or before the acknowledged position: nothing to record
      continue;
    }
    auto it = g->pending.find(p);
    if (it == g->pending.end()) continue;
    Unlease(g, &it->second);
    g->pending.erase(it);
    g->done.insert(p);
  }
  Position before = g->acked_through();
  for (const auto& [p, e] : change.replay) {
    Pending pe;
    pe.event = e;
    if (p > before) {
      g->done.erase(p);
      g->done_ahead.erase(p);
      g->pending.emplace(p, std::move(pe));
    } else {
      g->replay.emplace(p, std::move(pe));
    }
  }
  if (change.parked_replayed) g->parked_replayed = *change.parked_replayed;
  g->parked += change.parks.size();
  // Forget what the acknowledged position now covers, so the state stays small.
  Position through = g->acked_through();
  g->done.erase(g->done.begin(), g->done.upper_bound(through));
  return Status::Ok();
}

// Takes back the events whose lease ran out: each counts a failed delivery, and one that
// reaches max_retries is parked.
Status ExpireLeases(EventStore* store, Group* g, SteadyClock::time_point now) {
  Change change;
  for (const auto* held : {&g->replay, &g->pending}) {
    for (const auto& [p, pe] : *held) {
      if (pe.member.empty() || pe.expires > now) continue;
      std::uint32_t failures = pe.failures + 1;
      change.failures[p] = failures;
      if (failures >= g->settings.max_retries) {
        change.done.insert(p);
        change.parks.emplace_back(p, "the lease of member '" + pe.member + "' expired");
      }
    }
  }
  return Commit(store, g, change);
}

// Reads matching events from the log into g->pending until "want" are waiting for a member,
// the log's head is reached, the group's window is full, or kMaxScanPerFetch log events were
// examined. Returns true in that last case only: there is more to read now.
Result<bool> Fetch(const EventStore* store, Group* g, std::size_t want) {
  bool more = false;
  std::size_t waiting = 0;
  for (const auto& [p, pe] : g->pending) waiting += pe.member.empty() ? 1 : 0;
  std::size_t scanned = 0;
  while (waiting < want && g->pending.size() + g->done.size() < ConsumerGroups::kMaxWindow &&
         scanned < kMaxScanPerFetch) {
    ReadLogOptions o;
    o.from_position = g->scan_next;
    o.max_count =
        std::min(want - waiting, ConsumerGroups::kMaxWindow - g->pending.size() - g->done.size());
    o.filter = g->filter();
    o.max_scan = kMaxScanPerFetch;
    TT_ASSIGN_OR_RETURN(LogPage page, store->ReadLog(o));
    for (RecordedEvent& e : page.events) {
      if (g->done_ahead.erase(e.position) > 0) {
        g->done.insert(e.position);  // done before a restart
        continue;
      }
      Pending pe;
      if (auto f = g->stored_failures.find(e.position); f != g->stored_failures.end()) {
        pe.failures = f->second;
        g->stored_failures.erase(f);
      }
      Position p = e.position;
      pe.event = std::move(e);
      g->pending.emplace(p, std::move(pe));
      ++waiting;
    }
    Position next = std::max(page.next_position, g->scan_next);
    if (!page.events.empty()) next = std::max(next, page.events.back().position + 1);
    scanned += next - g->scan_next;
    g->scan_next = next;
    if (g->scan_next > page.head_position) break;  // caught up with the log
    more = scanned >= kMaxScanPerFetch;
  }
  // Done positions from before a restart that the scan passed without meeting cannot exist
  // (the log does not change); drop them all the same, so that the state stays bounded.
  g->done_ahead.erase(g->done_ahead.begin(), g->done_ahead.lower_bound(g->scan_next));
  Position through = g->acked_through();
  g->done.erase(g->done.begin(), g->done.upper_bound(through));
  return more;
}

ConsumerGroupInfo InfoOf(const Group& g) {
  ConsumerGroupInfo info;
  info.name = g.name;
  info.settings = g.settings;
  info.acked_through = g.acked_through();
  info.done_above = g.done.size() + g.done_ahead.size();
  for (const auto& [p, pe] : g.pending) {
    if (!pe.member.empty()) {
      ++info.in_flight;
    } else if (pe.failures > 0) {
      ++info.awaiting_retry;
    }
  }
  info.awaiting_retry += g.stored_failures.size();
  for (const auto& [p, pe] : g.replay) {
    ++info.replaying;
    if (!pe.member.empty()) ++info.in_flight;
  }
  info.parked = g.parked;
  info.parked_stream = ConsumerGroups::ParkedStream(g.name);
  for (const auto& [name, m] : g.members) {
    info.members.push_back(GroupMemberInfo{name, m.in_flight, m.last_seen});
  }
  return info;
}

// Remembers that "name" read now; forgets the longest-idle members beyond a bound, so that
// clients inventing member names cannot grow the server's memory.
Member& Touch(Group* g, std::string_view name) {
  auto it = g->members.find(name);
  if (it == g->members.end()) {
    if (g->members.size() >= kMaxMembersRemembered) {
      auto idle = g->members.end();
      for (auto m = g->members.begin(); m != g->members.end(); ++m) {
        if (m->second.in_flight == 0 &&
            (idle == g->members.end() || m->second.last_seen < idle->second.last_seen)) {
          idle = m;
        }
      }
      if (idle != g->members.end()) g->members.erase(idle);
    }
    it = g->members.emplace(std::string(name), Member{}).first;
  }
  it->second.last_seen = SystemClock::now();
  return it->second;
}

}  // namespace

ConsumerGroups::ConsumerGroups(EventStore* store) : store_(store) {
  listener_id_ = store_->AddCommitListener([this](Position) {
    // A Read counts itself before it looks at the log, so one that starts after this check
    // sees the commit anyway.
    if (readers_.load() > 0) Wake();
  });
}

ConsumerGroups::~ConsumerGroups() {
  Close();
  store_->RemoveCommitListener(listener_id_);
}

Status ConsumerGroups::ValidateName(std::string_view name) {
  if (name.empty() || name.size() > 200) {
    return Status::InvalidArgument("a consumer group or member name must be 1 to 200 characters");
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) {
      return Status::InvalidArgument("name '" + std::string(name) +
                                     "' may contain only letters, digits, '.', '_' and '-'");
    }
  }
  return Status::Ok();
}

std::string ConsumerGroups::ParkedStream(std::string_view name) {
  return "$parked/" + std::string(name);
}

void ConsumerGroups::Wake() {
  std::lock_guard<std::mutex> lock(wait_mu_);
  ++wake_seq_;
  wake_.notify_all();
}

void ConsumerGroups::Close() {
  std::lock_guard<std::mutex> lock(wait_mu_);
  closed_ = true;
  wake_.notify_all();
}

Status ConsumerGroups::LoadLocked() {
  if (loaded_) return Status::Ok();
  TT_ASSIGN_OR_RETURN(std::optional<std::string> index, store_->GetCheckpoint(kIndexCheckpoint));
  if (index && !index->empty()) {
    TT_ASSIGN_OR_RETURN(RawJson names, json::ParseRawJson(*index));
    if (names.kind != RawJson::Kind::kArray) {
      return Status::Corruption("the list of consumer groups is not a JSON array");
    }
    for (const RawJson& n : names.items) {
      TT_ASSIGN_OR_RETURN(std::optional<std::string> state,
                          store_->GetCheckpoint(GroupCheckpoint(n.str)));
      if (!state || state->empty()) continue;  // deleted before the list was rewritten
      auto g = std::make_shared<Group>();
      g->name = n.str;
      TT_RETURN_IF_ERROR(ParseState(*state, g.get()));
      for (auto& [p, pe] : g->replay) {
        TT_ASSIGN_OR_RETURN(pe.event, store_->GetEventAt(p));
      }
      groups_.emplace(n.str, std::move(g));
    }
  }
  loaded_ = true;
  return Status::Ok();
}

Status ConsumerGroups::SaveIndexLocked() {
  JsonWriter w;
  w.BeginArray();
  for (const auto& [name, g] : groups_) w.String(name);
  w.EndArray();
  return store_->SetCheckpoint(kIndexCheckpoint, w.Take());
}

Result<std::shared_ptr<ConsumerGroups::Group>> ConsumerGroups::Find(std::string_view name) {
  TT_RETURN_IF_ERROR(ValidateName(name));
  std::lock_guard<std::mutex> lock(mu_);
  TT_RETURN_IF_ERROR(LoadLocked());
  auto it = groups_.find(name);
  if (it == groups_.end()) {
    return Status::NotFound("there is no consumer group '" + std::string(name) + "'");
  }
  return it->second;
}

Result<PutGroupResult> ConsumerGroups::Put(std::string_view name,
                                           const ConsumerGroupSettings& settings) {
  TT_RETURN_IF_ERROR(ValidateName(name));
  TT_RETURN_IF_ERROR(ValidateSettings(settings));
  std::lock_guard<std::mutex> lock(mu_);
  TT_RETURN_IF_ERROR(LoadLocked());
  PutGroupResult result;
  if (auto it = groups_.find(name); it != groups_.end()) {
    Group& g = *it->second;
    std::lock_guard<std::mutex> group_lock(g.mu);
    bool same_start = settings.start_at_end ? g.settings.start_at_end
                                            : !g.settings.start_at_end &&
                                                  std::max<Position>(settings.start_position, 1) ==
                                                      g.settings.start_position;
    if (settings.stream_prefix != g.settings.stream_prefix ||
        settings.event_types != g.settings.event_types || !same_start) {
      return Status::InvalidArgument(
          "consumer group '" + std::string(name) +
          "' exists with another stream_prefix, types or start; these cannot change: delete "
          "the group and create it again");
    }
    ConsumerGroupSettings before = g.settings;
    g.settings.max_retries = settings.max_retries;
    g.settings.lease = settings.lease;
    g.settings.max_in_flight = settings.max_in_flight;
    Status s = store_->SetCheckpoint(GroupCheckpoint(name), StateJson(g, Change{}));
    if (!s.ok()) {
      g.settings = before;
      return s;
    }
    result.info = InfoOf(g);
    return result;
  }
  auto g = std::make_shared<Group>();
  g->name = std::string(name);
  g->settings = settings;
  g->settings.start_position = settings.start_at_end
                                   ? store_->LastPosition() + 1
                                   : std::max<Position>(settings.start_position, 1);
  g->scan_next = g->settings.start_position;
  // The state first, then the list that names it: a crash between leaves an unlisted state,
  // which a later create overwrites.
  TT_RETURN_IF_ERROR(store_->SetCheckpoint(GroupCheckpoint(name), StateJson(*g, Change{})));
  groups_.emplace(std::string(name), g);
  Status s = SaveIndexLocked();
  if (!s.ok()) {
    groups_.erase(std::string(name));
    return s;
  }
  result.info = InfoOf(*g);
  result.created = true;
  return result;
}

Status ConsumerGroups::Delete(std::string_view name) {
  TT_ASSIGN_OR_RETURN(std::shared_ptr<Group> g, Find(name));
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = groups_.find(name);
    if (it == groups_.end() || it->second != g) {
      return Status::NotFound("there is no consumer group '" + std::string(name) + "'");
    }
    groups_.erase(it);
    Status s = SaveIndexLocked();
    if (!s.ok()) {
      groups_.emplace(std::string(name), g);
      return s;
    }
  }
  std::lock_guard<std::mutex> group_lock(g->mu);
  g->deleted = true;
  // Unlisted already; clearing the state too keeps a later group of that name from finding it.
  Status s = store_->SetCheckpoint(GroupCheckpoint(name), "");
  Wake();
  return s;
}

Result<ConsumerGroupInfo> ConsumerGroups::Describe(std::string_view name) {
  TT_ASSIGN_OR_RETURN(std::shared_ptr<Group> g, Find(name));
  std::lock_guard<std::mutex> lock(g->mu);
  if (g->deleted) return Status::NotFound("consumer group '" + std::string(name) + "' was deleted");
  TT_RETURN_IF_ERROR(ExpireLeases(store_, g.get(), SteadyClock::now()));
  return InfoOf(*g);
}

Result<ConsumerGroupSettings> ConsumerGroups::Settings(std::string_view name) {
  TT_ASSIGN_OR_RETURN(std::shared_ptr<Group> g, Find(name));
  std::lock_guard<std::mutex> lock(g->mu);
  return g->settings;
}

Result<std::size_t> ConsumerGroups::ReplayParked(std::string_view name) {
  TT_ASSIGN_OR_RETURN(std::shared_ptr<Group> g, Find(name));
  std::size_t replayed = 0;
  {
    std::lock_guard<std::mutex> lock(g->mu);
    if (g->deleted) {
      return Status::NotFound("consumer group '" + std::string(name) + "' was deleted");
    }
    ReadStreamOptions o;
    o.from_revision = g->parked_replayed;
    o.max_count = kMaxReplayPerCall;
    Result<std::vector<RecordedEvent>> copies = store_->ReadStream(ParkedStream(name), o);
    if (!copies.ok() && copies.status().code() == StatusCode::kNotFound) return replayed;
    if (!copies.ok()) return copies.status();
    Change change;
    for (const RecordedEvent& copy : *copies) {
      change.parked_replayed = copy.revision + 1;
      Result<RawJson> data = json::ParseRawJson(copy.data);
      const RawJson* position = data.ok() ? data->Find("position") : nullptr;
      std::optional<std::uint64_t> p = position == nullptr ? std::nullopt : position->AsUint();
      if (!p) return Status::Corruption("parked copy " + copy.id.ToString() + " has no position");
      // Already back (a copy of an event parked, replayed and parked again).
      if (FindHeld(*g, *p) != nullptr || change.replay.contains(*p)) continue;
      TT_ASSIGN_OR_RETURN(RecordedEvent original, store_->GetEventAt(*p));
      change.replay.emplace(*p, std::move(original));
    }
    TT_RETURN_IF_ERROR(Commit(store_, g.get(), change));
    replayed = change.replay.size();
  }
  Wake();
  return replayed;
}

Result<std::vector<ConsumerGroupInfo>> ConsumerGroups::List() {
  std::vector<std::shared_ptr<Group>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    TT_RETURN_IF_ERROR(LoadLocked());
    for (const auto& [name, g] : groups_) all.push_back(g);
  }
  std::vector<ConsumerGroupInfo> out;
  for (const std::shared_ptr<Group>& g : all) {
    std::lock_guard<std::mutex> lock(g->mu);
    if (!g->deleted) out.push_back(InfoOf(*g));
  }
  return out;
}

Result<std::vector<GroupEvent>> ConsumerGroups::Read(std::string_view group,
                                                     std::string_view member, std::size_t max,
                                                     std::chrono::milliseconds wait) {
  TT_RETURN_IF_ERROR(ValidateName(member).WithPrefix("member"));
  if (max == 0) return Status::InvalidArgument("max must be at least 1");
  TT_ASSIGN_OR_RETURN(std::shared_ptr<Group> g, Find(group));
  SteadyClock::time_point deadline = SteadyClock::now() + wait;
  readers_.fetch_add(1);
  struct Uncount {
    std::atomic<int>* n;
    ~Uncount() { n->fetch_sub(1); }
  } uncount{&readers_};
  while (true) {
    std::uint64_t seq;
    bool closed;
    {
      std::lock_guard<std::mutex> lock(wait_mu_);
      seq = wake_seq_;
      closed = closed_;
    }
    std::vector<GroupEvent> out;
    bool scan_more = false;
    SteadyClock::time_point next_expiry = deadline;
    {
      std::lock_guard<std::mutex> lock(g->mu);
      if (g->deleted)
        return Status::NotFound("consumer group '" + std::string(group) + "' was deleted");
      SteadyClock::time_point now = SteadyClock::now();
      TT_RETURN_IF_ERROR(ExpireLeases(store_, g.get(), now));
      Member& m = Touch(g.get(), member);
      std::size_t room = g->settings.max_in_flight > m.in_flight
                             ? std::min<std::size_t>(max, g->settings.max_in_flight - m.in_flight)
                             : 0;
      if (room > 0) {
        TT_ASSIGN_OR_RETURN(scan_more, Fetch(store_, g.get(), room));
      }
      // Replayed events first, then the others, each in position order.
      for (auto* held : {&g->replay, &g->pending}) {
        for (auto& [p, pe] : *held) {
          if (!pe.member.empty()) {
            next_expiry = std::min(next_expiry, pe.expires);
            continue;
          }
          if (out.size() >= room) continue;
          pe.member = std::string(member);
          pe.delivered = true;
          pe.expires = now + g->settings.lease;
          pe.expires_wall = SystemClock::now() + g->settings.lease;
          ++m.in_flight;
          out.push_back(GroupEvent{pe.event, pe.failures + 1, pe.expires_wall});
        }
      }
    }
    if (!out.empty() || closed) return out;
    // A filter that matches rarely: read on through the log (one bounded step per turn, the
    // group's lock released between them), whatever the deadline.
    if (scan_more) continue;
    if (SteadyClock::now() >= deadline) return out;
    // Sleep until a commit, an ack or nack, a lease that runs out, or the deadline.
    std::unique_lock<std::mutex> lock(wait_mu_);
    wake_.wait_until(lock, std::min(deadline, next_expiry),
                     [&] { return wake_seq_ != seq || closed_; });
  }
}

namespace {

// Checks that every position was delivered and is not done; with "member", also that it holds
// each of them under a lease that has not run out. The error names the positions that fail.
Status CheckHeld(const Group& g, const std::vector<Position>& positions,
                 std::string_view member = {}) {
  if (positions.empty() || positions.size() > kMaxPositionsPerCall) {
    return Status::InvalidArgument("positions must list 1 to " +
                                   std::to_string(kMaxPositionsPerCall) + " positions");
  }
  std::string bad;
  for (Position p : positions) {
    const Pending* pe = FindHeld(g, p);
    if (pe != nullptr && pe->delivered) continue;
    if (!bad.empty()) bad += ", ";
    bad += std::to_string(p);
  }
  if (!bad.empty()) {
    return Status::InvalidArgument("position(s) " + bad + " of consumer group '" + g.name +
                                   "' are not delivered and unacknowledged: never handed to a "
                                   "member, already done, or delivered before a restart");
  }
  if (member.empty()) return Status::Ok();
  // A member whose lease ran out no longer decides: the event may be with another member now.
  const SteadyClock::time_point now = SteadyClock::now();
  for (Position p : positions) {
    const Pending* pe = FindHeld(g, p);
    if (pe->member == member && pe->expires > now) continue;
    if (!bad.empty()) bad += ", ";
    bad += std::to_string(p) + (pe->member == member ? " (its lease ran out)"
                                : pe->member.empty() ? " (it waits to be delivered again)"
                                                     : " (member '" + pe->member + "' holds it)");
  }
  if (bad.empty()) return Status::Ok();
  return Status::InvalidArgument("member '" + std::string(member) + "' of consumer group '" +
                                 g.name + "' does not hold position(s) " + bad +
                                 "; nothing was changed: read the group again for events to "
                                 "work on");
}

}  // namespace

Status ConsumerGroups::Ack(std::string_view group, const std::vector<Position>& positions) {
  TT_ASSIGN_OR_RETURN(std::shared_ptr<Group> g, Find(group));
  {
    std::lock_guard<std::mutex> lock(g->mu);
    if (g->deleted)
      return Status::NotFound("consumer group '" + std::string(group) + "' was deleted");
    TT_RETURN_IF_ERROR(CheckHeld(*g, positions));
    Change change;
    change.done.insert(positions.begin(), positions.end());
    TT_RETURN_IF_ERROR(Commit(store_, g.get(), change));
  }
  Wake();  // a member may have room for more events now
  return Status::Ok();
}

Status ConsumerGroups::Nack(std::string_view group, const std::vector<Position>& positions,
                            NackAction action, std::string_view reason, std::string_view member) {
  if (reason.size() > kMaxReasonBytes) {
    return Status::InvalidArgument("reason must be at most " + std::to_string(kMaxReasonBytes) +
                                   " bytes");
  }
  TT_ASSIGN_OR_RETURN(std::shared_ptr<Group> g, Find(group));
  {
    std::lock_guard<std::mutex> lock(g->mu);
    if (g->deleted)
      return Status::NotFound("consumer group '" + std::string(group) + "' was deleted");
    TT_RETURN_IF_ERROR(CheckHeld(*g, positions, member));
    std::string why = reason.empty() ? "nacked without a reason" : std::string(reason);
    Change change;
    for (Position p : std::set<Position>(positions.begin(), positions.end())) {
      const Pending& pe = *FindHeld(g.get(), p);
      switch (action) {
        case NackAction::kRetry:
          change.failures[p] = pe.failures + 1;
          if (pe.failures + 1 >= g->settings.max_retries) {
            change.done.insert(p);
            change.parks.emplace_back(p, why);
          }
          break;
        case NackAction::kPark:
          change.done.insert(p);
          change.parks.emplace_back(p, why);
          break;
        case NackAction::kSkip:
          change.done.insert(p);
          break;
      }
    }
    TT_RETURN_IF_ERROR(Commit(store_, g.get(), change));
  }
  Wake();
  return Status::Ok();
}

}  // namespace timetrail
