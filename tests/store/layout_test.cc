// The key layout's version 2 and the upgrade from version 1: a data directory written by the
// release before (tests/data/store-v1.tar.gz, made by tests/data/make_store_v1.py) opens,
// upgrades in place and answers every query as it did; ids the store generates need no id index
// entry; TransactMany stops at the first failure.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>

#include "storage/kv_engine.h"
#include "store/keys.h"
#include "support/store_helpers.h"
#include "support/temp_dir.h"
#include "timetrail/store.h"

namespace timetrail {
namespace {

using Json = nlohmann::json;
using namespace timetrail::testing;  // NOLINT: TempDir, OpenOrDie, Event

// The directory of tests/data/store-v1.tar.gz, unpacked under "dir".
std::string UnpackStoreV1(const TempDir& dir) {
  const std::string archive = std::string(TIMETRAIL_TEST_DATA) + "/store-v1.tar.gz";
  const std::string command = "tar -xzf '" + archive + "' -C '" + dir.path() + "'";
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  return dir.Sub("store-v1");
}

std::string MetaValue(const std::string& data, std::string_view key) {
  auto engine = OpenRocksDbEngine(RocksDbEngineOptions{}, data);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  auto v = (*engine)->Get(Family::kMeta, key);
  EXPECT_TRUE(v.ok());
  return v->value_or("");
}

std::size_t CountKeys(const std::string& data, Family family) {
  auto engine = OpenRocksDbEngine(RocksDbEngineOptions{}, data);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  auto it = (*engine)->NewIterator(family);
  std::size_t n = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
  return n;
}

Json StateOf(EventStore& store, std::string_view stream, const EntityQuery& q) {
  Result<EntityState> s = store.GetEntity(stream, q);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? Json::parse(s->state) : Json();
}

Uuid IdOf(std::uint64_t n) {
  Uuid id;
  for (int i = 0; i < 8; ++i) id.bytes[15 - i] = static_cast<std::uint8_t>(n >> (8 * i));
  return id;
}

// The history of the top-level member "member" of "stream", read in pages of 7, against a plain
// fold of the stream's events: index entries written before change signatures existed (layout
// 1) must be read as "may change anything".
void ExpectHistoryMatchesAPlainFold(const EventStore& store, const std::string& stream,
                                    const std::string& member) {
  ReadStreamOptions all;
  all.max_count = SIZE_MAX;
  Result<std::vector<RecordedEvent>> events = store.ReadStream(stream, all);
  ASSERT_TRUE(events.ok());
  Json doc;  // null: no document
  std::vector<std::pair<Revision, std::optional<Json>>> want;
  for (const RecordedEvent& e : *events) {
    if (e.type == "$delete") {
      doc = nullptr;
    } else if (e.type == "$put") {
      doc = Json::parse(e.data);
    } else if (e.type == "$patch") {
      if (!doc.is_object()) doc = Json::object();
      doc.merge_patch(Json::parse(e.data));
    } else {
      continue;
    }
    std::optional<Json> v;
    if (doc.is_object() && doc.contains(member)) v = doc[member];
    if (want.empty() || want.back().second != v) want.emplace_back(e.revision, v);
  }
  HistoryQuery q;
  q.limit = 7;
  std::size_t i = 0;
  do {
    Result<PropertyHistory> page = store.GetPropertyHistory(stream, "/" + member, q);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    for (const PropertyInterval& iv : page->intervals) {
      ASSERT_LT(i, want.size()) << stream << " /" << member;
      EXPECT_EQ(iv.from.revision, want[i].first) << stream << " /" << member << " at " << i;
      EXPECT_EQ(iv.present, want[i].second.has_value()) << stream << " /" << member;
      if (iv.present && want[i].second) {
        EXPECT_EQ(Json::parse(iv.value), *want[i].second) << stream << " /" << member;
      }
      ++i;
    }
    q.cursor = page->next_cursor;
  } while (!q.cursor.empty());
  EXPECT_EQ(i, want.size()) << stream << " /" << member;
}

TEST(LayoutUpgradeTest, AVersion1DirectoryOpensUpgradesAndAnswersAsBefore) {
  TempDir dir;
  const std::string data = UnpackStoreV1(dir);
  ASSERT_EQ(MetaValue(data, keys::kFormatVersion), "1");
  const std::size_t ids_before = CountKeys(data, Family::kEventIds);
  // 230 lines imported, then `timetrail verify` recorded its answer in $audit; layout 1 indexed
  // every id.
  ASSERT_EQ(ids_before, 231u);

  {
    auto store = OpenOrDie(data);
    EXPECT_EQ(store->LastPosition(), 231u);
    Result<VerifyReport> verified = store->Verify(VerifyOptions{});
    ASSERT_TRUE(verified.ok());
    EXPECT_TRUE(verified->ok);

    // Every event is found by its id, the random ids of layout 1 included.
    ReadLogOptions all;
    all.max_count = 1000;
    Result<LogPage> log = store->ReadLog(all);
    ASSERT_TRUE(log.ok());
    ASSERT_EQ(log->events.size(), 231u);
    for (const RecordedEvent& e : log->events) {
      Result<RecordedEvent> found = store->GetEvent(e.id);
      ASSERT_TRUE(found.ok()) << e.id.ToString() << ": " << found.status().ToString();
      EXPECT_EQ(found->position, e.position);
    }

    // States as make_store_v1.py wrote them: the last $put at revision 140, then patches.
    EXPECT_EQ(StateOf(*store, "friend/1", EntityQuery::Latest()),
              Json::parse(R"({"name":"Rachel","visits":149,"city":"New York","note":"n149"})"));
    EXPECT_EQ(StateOf(*store, "friend/1", EntityQuery::AtRevision(144)),
              Json::parse(R"({"name":"Rachel","visits":144,"city":"New York"})"));
    // The backdated correction, in valid time.
    Result<Timestamp> feb = ParseTimestamp("2026-02-15");
    ASSERT_TRUE(feb.ok());
    EXPECT_EQ(StateOf(*store, "price/9", EntityQuery::ValidAt(*feb)),
              Json::parse(R"({"amount":110})"));
    EXPECT_EQ(StateOf(*store, "order/7", EntityQuery::Latest()), Json::parse(R"({"items":[3]})"));
    EXPECT_EQ(StateOf(*store, "order/7", EntityQuery::AtRevision(2)), Json());
    ActivityQuery by_dave;
    by_dave.actor = "dave";
    Result<ActivityPage> activity = store->QueryActivity(by_dave);
    ASSERT_TRUE(activity.ok());
    ASSERT_EQ(activity->events.size(), 1u);
    EXPECT_EQ(activity->events[0].stream, "price/9");

    // An idempotent retry of an event written by layout 1 returns the original.
    Result<RecordedEvent> original = store->GetEvent(IdOf(0x1000 + 7));
    ASSERT_TRUE(original.ok()) << original.status().ToString();
    ProposedEvent again;
    again.id = original->id;
    again.type = original->type;
    again.data = original->data;
    again.metadata = original->metadata;
    Result<Committed> replay =
        store->Append("friend/1", ExpectedRevision::Exact(original->revision - 1), {again});
    ASSERT_TRUE(replay.ok()) << replay.status().ToString();
    EXPECT_TRUE(replay->idempotent_replay);
    EXPECT_EQ(replay->last_position, original->position);

    // New events after the upgrade: generated ids carry their position.
    Result<Committed> c = store->Append("friend/1", ExpectedRevision::Exact(149),
                                        {Event("$patch", R"({"visits":150})")});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    Result<RecordedEvent> added = store->GetEventAt(c->last_position);
    ASSERT_TRUE(added.ok());
    Result<RecordedEvent> by_id = store->GetEvent(added->id);
    ASSERT_TRUE(by_id.ok()) << by_id.status().ToString();
    EXPECT_EQ(by_id->position, 232u);
    EXPECT_EQ(StateOf(*store, "friend/1", EntityQuery::Latest())["visits"], 150);
    // Property histories over events written by both layouts.
    ExpectHistoryMatchesAPlainFold(*store, "friend/1", "visits");
    ExpectHistoryMatchesAPlainFold(*store, "friend/1", "note");
    ExpectHistoryMatchesAPlainFold(*store, "order/7", "items");
    // A correction backdated before the stream's latest valid time, on a stream whose head
    // layout 1 wrote (its largest valid_from is not in the head: the index finds it).
    ProposedEvent correction = Event("$patch", R"({"amount":111})");
    Result<Timestamp> jan = ParseTimestamp("2026-01-15");
    ASSERT_TRUE(jan.ok());
    correction.valid_from = *jan;
    ASSERT_TRUE(store->Append("price/9", ExpectedRevision::Any(), {correction}).ok());
    EXPECT_EQ(StateOf(*store, "price/9", EntityQuery::ValidAt(*jan)),
              Json::parse(R"({"amount":111})"));
    EXPECT_EQ(StateOf(*store, "price/9", EntityQuery::ValidAt(*feb)),
              Json::parse(R"({"amount":110})"));
    verified = store->Verify(VerifyOptions{});
    ASSERT_TRUE(verified.ok());
    EXPECT_TRUE(verified->ok);
  }
  EXPECT_EQ(MetaValue(data, keys::kFormatVersion), std::to_string(keys::kLayoutVersion));
  EXPECT_EQ(MetaValue(data, keys::kIdTag).size(), 6u);
  EXPECT_EQ(CountKeys(data, Family::kEventIds), ids_before);  // none for the generated id
  // And it opens again as layout 2, with the same tag (ids generated before still resolve).
  const std::string tag = MetaValue(data, keys::kIdTag);
  auto store = OpenOrDie(data);
  Result<RecordedEvent> last = store->GetEventAt(232);
  ASSERT_TRUE(last.ok());
  EXPECT_TRUE(store->GetEvent(last->id).ok());
  store.reset();
  EXPECT_EQ(MetaValue(data, keys::kIdTag), tag);
}

// The events of "log" that activity query "q" must return, newest first: a plain filter.
std::vector<Position> ActivityByScan(const std::vector<RecordedEvent>& log,
                                     const ActivityQuery& q) {
  std::vector<Position> out;
  for (auto e = log.rbegin(); e != log.rend(); ++e) {
    if (!e->stream.starts_with(q.stream_prefix)) continue;
    if (std::find(q.event_types.begin(), q.event_types.end(), e->type) == q.event_types.end()) {
      continue;
    }
    if ((q.from && e->recorded_at < *q.from) || (q.to && e->recorded_at > *q.to)) continue;
    out.push_back(e->position);
  }
  return out;
}

// A layout 1 directory has no type index: the first open records that it starts after the
// fixture's 231 events, and activity by type finds the older events in the log and the newer
// ones in the index, in one newest-first order across the boundary.
// Every file under "dir" with its size.
std::map<std::string, std::uintmax_t> Files(const std::string& dir) {
  std::map<std::string, std::uintmax_t> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    out[e.path().string()] = e.is_regular_file() ? e.file_size() : 0;
  }
  return out;
}

TEST(LayoutUpgradeTest, AReadOnlyOpenDoesNotUpgradeAndSaysWhatToDo) {
  TempDir dir;
  const std::string data = UnpackStoreV1(dir);
  const auto before = Files(data);
  Options read_only;
  read_only.read_only = true;
  auto refused = EventStore::Open(read_only, data);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("layout version 1"), std::string::npos)
      << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("open it once with a writer"), std::string::npos)
      << refused.status().ToString();
  EXPECT_EQ(Files(data), before);
  // Once a writer has upgraded it, it reads.
  std::vector<std::string> log;
  {
    auto writer = OpenOrDie(data);
    ASSERT_NE(writer, nullptr);
    log = DumpLog(*writer);
  }
  auto reader = OpenOrDie(data, read_only);
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(DumpLog(*reader), log);
  EXPECT_FALSE(log.empty());
}

TEST(LayoutUpgradeTest, ActivityByTypeSpansEventsWrittenBeforeTheTypeIndex) {
  TempDir dir;
  const std::string data = UnpackStoreV1(dir);
  ASSERT_EQ(MetaValue(data, keys::kTypesSince), "");
  {
    auto store = OpenOrDie(data);
    ASSERT_EQ(store->LastPosition(), 231u);
    for (int i = 0; i < 60; ++i) {
      Transaction tx;
      tx.appends.push_back(
          StreamAppend{"friend/1",
                       ExpectedRevision::Any(),
                       {Event("$patch", R"({"visits":)" + std::to_string(150 + i) + "}")}});
      if (i % 3 == 0) {
        tx.appends.push_back(StreamAppend{"order/" + std::to_string(8 + i % 2),
                                          ExpectedRevision::Any(),
                                          {Event("OrderShipped", R"({"carrier":"y"})")}});
      }
      if (i % 7 == 0) {
        tx.appends.push_back(
            StreamAppend{"price/9", ExpectedRevision::Any(), {Event("$put", R"({"amount":1})")}});
      }
      ASSERT_TRUE(store->Transact(tx).ok());
    }
  }
  EXPECT_EQ(MetaValue(data, keys::kTypesSince), "232");
  auto store = OpenOrDie(data);
  ReadLogOptions all;
  all.max_count = SIZE_MAX;
  Result<LogPage> log = store->ReadLog(all);
  ASSERT_TRUE(log.ok());
  const std::vector<RecordedEvent>& events = log->events;
  const std::vector<std::vector<std::string>> type_sets = {
      {"OrderShipped"}, {"$put"}, {"$patch"}, {"$delete", "OrderShipped"}, {"$put", "$patch"}};
  const char* prefixes[] = {"", "order/", "friend/", "price/"};
  std::mt19937 rng(5);
  auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  for (int i = 0; i < 200; ++i) {
    ActivityQuery q;
    q.event_types = type_sets[pick(static_cast<int>(type_sets.size()))];
    q.stream_prefix = prefixes[pick(4)];
    // Windows before, after and across the boundary at position 232.
    if (pick(2)) q.from = events[pick(static_cast<int>(events.size()))].recorded_at;
    if (pick(2)) q.to = events[pick(static_cast<int>(events.size()))].recorded_at;
    const std::size_t limits[] = {1, 2, 5, 20, 1000};
    q.limit = limits[pick(5)];
    const std::vector<Position> want = ActivityByScan(events, q);
    std::vector<Position> got;
    for (int pages = 0; pages < 10000; ++pages) {
      Result<ActivityPage> page = store->QueryActivity(q);
      ASSERT_TRUE(page.ok()) << page.status().ToString();
      ASSERT_LE(page->events.size(), q.limit);
      for (const RecordedEvent& e : page->events) got.push_back(e.position);
      if (page->next_cursor.empty()) break;
      q.cursor = page->next_cursor;
    }
    ASSERT_EQ(got, want) << "query " << i << " '" << q.event_types[0] << "' in '" << q.stream_prefix
                         << "', limit " << q.limit;
  }
}

TEST(LayoutTest, GeneratedIdsNeedNoIndexEntryAndForgedOnesAreRefused) {
  TempDir dir;
  const std::string data = dir.Sub("data");
  Uuid generated;
  {
    auto store = OpenOrDie(data);
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE(store
                      ->Append("s/" + std::to_string(i % 3), ExpectedRevision::Any(),
                               {Event("$put", R"({"i":)" + std::to_string(i) + "}")})
                      .ok());
    }
    Uuid chosen = IdOf(42);
    ASSERT_TRUE(
        store->Append("s/0", ExpectedRevision::Any(), {EventWithId("$put", "{}", chosen)}).ok());
    EXPECT_EQ(store->GetEvent(chosen)->position, 21u);
    for (Position p = 1; p <= 20; ++p) {
      Result<RecordedEvent> e = store->GetEventAt(p);
      ASSERT_TRUE(e.ok());
      Result<RecordedEvent> found = store->GetEvent(e->id);
      ASSERT_TRUE(found.ok()) << found.status().ToString();
      EXPECT_EQ(found->position, p);
      EXPECT_EQ(e->id.bytes[6] >> 4, 8);  // a version 8 UUID
    }
    generated = store->GetEventAt(5)->id;

    // The generated form with a position that holds another event, or none yet: not found,
    // and refused as a client's id (the event later written there would share it).
    keys::IdTag tag;
    std::copy(generated.bytes.begin(), generated.bytes.begin() + 6, tag.begin());
    ASSERT_EQ(keys::PositionOfGeneratedId(tag, generated), std::optional<Position>(5));
    for (Position p : {Position{500}, Position{21}}) {
      Uuid forged = keys::GeneratedId(tag, p);
      EXPECT_EQ(store->GetEvent(forged).status().code(), StatusCode::kNotFound);
      Result<Committed> refused =
          store->Append("s/1", ExpectedRevision::Any(), {EventWithId("$put", "{}", forged)});
      ASSERT_FALSE(refused.ok());
      EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
      EXPECT_NE(refused.status().message().find("form of the ids this store generates"),
                std::string::npos);
    }
    EXPECT_EQ(store->LastPosition(), 21u);
  }
  EXPECT_EQ(CountKeys(data, Family::kEventIds), 1u);  // only the id the client chose
}

Transaction OneEvent(const std::string& stream, ExpectedRevision expected, int i) {
  Transaction tx;
  tx.appends.push_back(
      StreamAppend{stream, expected, {Event("$put", R"({"i":)" + std::to_string(i) + "}")}});
  return tx;
}

TEST(TransactManyTest, CommitsInOrderAndStopsAtTheFirstFailure) {
  TempDir dir;
  auto store = OpenOrDie(dir.Sub("data"));
  std::vector<Transaction> txs;
  for (int i = 0; i < 500; ++i)
    txs.push_back(OneEvent("m/" + std::to_string(i % 7), ExpectedRevision::Any(), i));
  std::vector<Result<Committed>> results = store->TransactMany(std::move(txs), true);
  ASSERT_EQ(results.size(), 500u);
  for (std::size_t i = 0; i < results.size(); ++i) {
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status().ToString();
    EXPECT_EQ(results[i]->last_position, i + 1);  // queue order is commit order
  }
  EXPECT_LT(store->GetStats().group_commits, 500u);  // they shared fsyncs

  // Transaction 3 of 6 fails its expectation; 4 and 5 are not written although they are valid,
  // and an invalid one stops the chain the same way.
  for (bool invalid : {false, true}) {
    const Position before = store->LastPosition();
    txs.clear();
    for (int i = 0; i < 6; ++i)
      txs.push_back(OneEvent("n/" + std::to_string(i), ExpectedRevision::Any(), i));
    if (invalid) {
      txs[3].appends[0].events[0].type = "";
    } else {
      txs[3].appends[0].expected = ExpectedRevision::Exact(99);
    }
    results = store->TransactMany(std::move(txs), true);
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(results[i].ok()) << results[i].status().ToString();
    EXPECT_EQ(results[3].status().code(),
              invalid ? StatusCode::kInvalidArgument : StatusCode::kWrongExpectedRevision);
    for (int i = 4; i < 6; ++i) {
      EXPECT_EQ(results[i].status().code(), StatusCode::kUnavailable) << i;
      EXPECT_NE(results[i].status().message().find("an earlier transaction"), std::string::npos);
    }
    EXPECT_EQ(store->LastPosition(), before + 3);
  }

  // Without stopping, every valid transaction is written.
  txs.clear();
  for (int i = 0; i < 4; ++i)
    txs.push_back(OneEvent("o/" + std::to_string(i), ExpectedRevision::NoStream(), i));
  txs[1].appends[0].expected = ExpectedRevision::Exact(5);
  const Position before = store->LastPosition();
  results = store->TransactMany(std::move(txs), false);
  EXPECT_FALSE(results[1].ok());
  EXPECT_TRUE(results[2].ok() && results[3].ok());
  EXPECT_EQ(store->LastPosition(), before + 3);
}

}  // namespace
}  // namespace timetrail
