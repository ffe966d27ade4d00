// The worked examples of docs/temporal.md, step by step, and revert's safety rules.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/store_helpers.h"
#include "support/temp_dir.h"
#include "timetrail/store.h"

namespace timetrail {
namespace {

using nlohmann::json;
using testing::DumpLog;
using testing::Event;
using testing::OpenOrDie;
using testing::TempDir;

json State(const EntityState& s) { return json::parse(s.state); }

ProposedEvent Patch(std::string data, std::string meta, std::optional<Timestamp> valid = {}) {
  ProposedEvent e = Event("$patch", std::move(data), std::move(meta));
  e.valid_from = valid;
  return e;
}

Timestamp T(const char* text) { return *ParseTimestamp(text); }

// Waits until the clock has passed "t", so that the next commit gets a later recorded_at than
// an earlier one (commits within one microsecond may share it).
void AfterMicro(Timestamp t) {
  while (Now() <= t) {
  }
}

class TemporalExamplesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options o;
    o.sync = false;
    o.snapshot_interval = 2;  // so that the examples go through snapshots too
    store_ = OpenOrDie(dir_.path(), o);
    ASSERT_NE(store_, nullptr);
  }
  TempDir dir_;
  std::unique_ptr<EventStore> store_;
};

// docs/temporal.md, "A friend who moved".
TEST_F(TemporalExamplesTest, FriendWhoMoved) {
  auto met = store_->Append("friend-1", ExpectedRevision::NoStream(),
                            {Event("$put", R"({"name": "Rachel", "location": "New York"})",
                                   R"({"actor": "joey", "reason": "we met"})")});
  ASSERT_TRUE(met.ok()) << met.status().ToString();
  auto noted =
      store_->Append("friend-1", ExpectedRevision::Exact(0),
                     {Event("BirthdayNoted", R"({"day": "05-05"})", R"({"actor": "joey"})")});
  ASSERT_TRUE(noted.ok());
  AfterMicro(noted->recorded_at);
  auto moved = store_->Append(
      "friend-1", ExpectedRevision::Exact(1),
      {Patch(R"({"location": "San Francisco"})", R"({"actor": "rachel", "reason": "new job"})")});
  ASSERT_TRUE(moved.ok());

  auto now = store_->GetEntity("friend-1", EntityQuery::Latest());
  ASSERT_TRUE(now.ok()) << now.status().ToString();
  EXPECT_TRUE(now->exists);
  EXPECT_EQ(State(*now), json::parse(R"({"name": "Rachel", "location": "San Francisco"})"));
  ASSERT_TRUE(now->event);
  EXPECT_EQ(now->event->revision, 2u);
  EXPECT_EQ(json::parse(now->event->metadata)["actor"], "rachel");

  // As of the moment before the move was recorded: still New York.
  auto before = store_->GetEntity("friend-1", EntityQuery::AsOf(noted->recorded_at));
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(State(*before)["location"], "New York");
  EXPECT_EQ(before->event->revision, 0u);  // the domain event does not produce state
  auto at_rev = store_->GetEntity("friend-1", EntityQuery::AtRevision(1));
  ASSERT_TRUE(at_rev.ok());
  EXPECT_EQ(State(*at_rev)["location"], "New York");
  auto at_pos = store_->GetEntity("friend-1", EntityQuery::AtPosition(met->last_position));
  ASSERT_TRUE(at_pos.ok());
  EXPECT_EQ(State(*at_pos)["location"], "New York");
  // Before the first event, the friend did not exist yet.
  auto earlier =
      store_->GetEntity("friend-1", EntityQuery::AsOf(Timestamp{met->recorded_at.micros - 1}));
  ASSERT_TRUE(earlier.ok());
  EXPECT_FALSE(earlier->exists);
  EXPECT_FALSE(earlier->event.has_value());

  auto history = store_->GetPropertyHistory("friend-1", "/location", HistoryQuery{});
  ASSERT_TRUE(history.ok()) << history.status().ToString();
  ASSERT_EQ(history->intervals.size(), 2u);
  EXPECT_EQ(history->intervals[0].value, "\"New York\"");
  EXPECT_EQ(history->intervals[0].from.revision, 0u);
  ASSERT_TRUE(history->intervals[0].to);
  EXPECT_EQ(history->intervals[0].to->revision, 2u);
  EXPECT_EQ(history->intervals[1].value, "\"San Francisco\"");
  EXPECT_EQ(json::parse(history->intervals[1].from.metadata)["reason"], "new job");
  EXPECT_FALSE(history->intervals[1].to);

  const DiffQuery since_first = DiffQuery::Between(EntityQuery::AtRevision(0));
  auto diff = store_->Diff("friend-1", since_first);
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  EXPECT_EQ(json::parse(diff->patch),
            json::parse(R"([{"op": "replace", "path": "/location", "value": "San Francisco"}])"));
  EXPECT_TRUE(diff->events.empty());  // the events between only when asked for
  EXPECT_TRUE(diff->next_cursor.empty());
  auto with_events = store_->Diff("friend-1", since_first.WithEvents());
  ASSERT_TRUE(with_events.ok()) << with_events.status().ToString();
  EXPECT_EQ(with_events->patch, diff->patch);
  ASSERT_EQ(with_events->events.size(), 2u);
  EXPECT_EQ(with_events->events[0].type, "BirthdayNoted");
  EXPECT_EQ(with_events->events[1].revision, 2u);
  EXPECT_TRUE(with_events->next_cursor.empty());

  EXPECT_EQ(store_->GetEntity("friend-2", EntityQuery::Latest()).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store_->GetEntity("friend-1", EntityQuery::AtRevision(3)).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store_->GetPropertyHistory("friend-1", "location", HistoryQuery{}).status().code(),
            StatusCode::kInvalidArgument);
}

// docs/temporal.md, "A backdated correction".
TEST_F(TemporalExamplesTest, BackdatedCorrection) {
  ASSERT_TRUE(store_
                  ->Append("employee-7", ExpectedRevision::NoStream(),
                           {Patch(R"({"salary": 5000})", R"({"actor": "hr"})", T("2026-01-01"))})
                  .ok());
  auto raise =
      store_->Append("employee-7", ExpectedRevision::Exact(0),
                     {Patch(R"({"salary": 6000})", R"({"actor": "hr"})", T("2026-07-01"))});
  ASSERT_TRUE(raise.ok());
  AfterMicro(raise->recorded_at);
  // Later we learn the raise took effect in March, and that salary in February was 5500.
  auto fix =
      store_->Append("employee-7", ExpectedRevision::Exact(1),
                     {Patch(R"({"salary": 5500})",
                            R"({"actor": "hr", "reason": "February correction"})", T("2026-02-01")),
                      Patch(R"({"salary": 6000})", R"({"actor": "hr"})", T("2026-03-01"))});
  ASSERT_TRUE(fix.ok());

  auto salary_in = [&](const char* when, std::optional<Timestamp> known) {
    auto s = store_->GetEntity("employee-7", EntityQuery::ValidAt(T(when), known));
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() && s->exists ? State(*s)["salary"] : json();
  };
  // What we know now.
  EXPECT_EQ(salary_in("2026-01-15", std::nullopt), 5000);
  EXPECT_EQ(salary_in("2026-02-15", std::nullopt), 5500);
  EXPECT_EQ(salary_in("2026-04-15", std::nullopt), 6000);
  EXPECT_EQ(salary_in("2026-08-15", std::nullopt), 6000);
  EXPECT_TRUE(salary_in("2025-12-31", std::nullopt).is_null());
  // What we knew before the correction was recorded.
  EXPECT_EQ(salary_in("2026-02-15", raise->recorded_at), 5000);
  EXPECT_EQ(salary_in("2026-04-15", raise->recorded_at), 5000);
  EXPECT_EQ(salary_in("2026-08-15", raise->recorded_at), 6000);

  HistoryQuery valid;
  valid.valid_time = true;
  auto h = store_->GetPropertyHistory("employee-7", "/salary", valid);
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->intervals.size(), 3u);  // 5000, 5500, 6000: the July event changes nothing
  EXPECT_EQ(h->intervals[0].from.valid_from, T("2026-01-01"));
  EXPECT_EQ(h->intervals[1].from.valid_from, T("2026-02-01"));
  EXPECT_EQ(json::parse(h->intervals[1].from.metadata)["reason"], "February correction");
  EXPECT_EQ(h->intervals[2].from.valid_from, T("2026-03-01"));
  EXPECT_EQ(h->intervals[2].value, "6000");

  valid.known_at = raise->recorded_at;
  h = store_->GetPropertyHistory("employee-7", "/salary", valid);
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->intervals.size(), 2u);
  EXPECT_EQ(h->intervals[1].from.valid_from, T("2026-07-01"));
}

// docs/temporal.md, "Reverting a change".
TEST_F(TemporalExamplesTest, Revert) {
  ASSERT_TRUE(store_
                  ->Append("friend-1", ExpectedRevision::NoStream(),
                           {Event("$put", R"({"name": "Rachel", "location": "New York"})")})
                  .ok());
  ASSERT_TRUE(
      store_
          ->Append("friend-1", ExpectedRevision::Exact(0),
                   {Patch(R"({"location": "Paris", "job": "buyer"})", R"({"actor": "ross"})")})
          .ok());
  RevertRequest r;
  r.stream = "friend-1";
  r.target = EntityQuery::AtRevision(0);
  r.expected = ExpectedRevision::Exact(1);
  r.actor = "rachel";
  r.reason = "got off the plane";
  auto done = store_->Revert(r);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->committed.streams[0].last_revision, 2u);
  auto now = store_->GetEntity("friend-1", EntityQuery::Latest());
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(State(*now), json::parse(R"({"name": "Rachel", "location": "New York"})"));
  EXPECT_EQ(now->event->type, "$put");
  json meta = json::parse(now->event->metadata);
  EXPECT_EQ(meta["actor"], "rachel");
  EXPECT_EQ(meta["reason"], "got off the plane");
  EXPECT_EQ(meta["revert"]["target"]["revision"], 0);
  EXPECT_EQ(meta["revert"]["restored_from"]["revision"], 0);
  EXPECT_EQ(meta["revert"]["previous_revision"], 1);

  // Reverting to before the entity existed appends a $delete.
  r.target = EntityQuery::AsOf(Timestamp{0});
  r.expected = ExpectedRevision::Exact(2);
  auto gone = store_->Revert(r);
  ASSERT_TRUE(gone.ok()) << gone.status().ToString();
  now = store_->GetEntity("friend-1", EntityQuery::Latest());
  ASSERT_TRUE(now.ok());
  EXPECT_FALSE(now->exists);
  EXPECT_EQ(now->event->type, "$delete");
}

TEST_F(TemporalExamplesTest, StaleRevertFailsAndChangesNothing) {
  ASSERT_TRUE(
      store_->Append("doc", ExpectedRevision::NoStream(), {Event("$put", R"({"v": 1})")}).ok());
  ASSERT_TRUE(store_->Append("doc", ExpectedRevision::Exact(0), {Patch(R"({"v": 2})", "")}).ok());
  // Someone changes the document after the caller read revision 1.
  ASSERT_TRUE(store_->Append("doc", ExpectedRevision::Exact(1), {Patch(R"({"v": 3})", "")}).ok());
  auto log_before = DumpLog(*store_);
  RevertRequest r;
  r.stream = "doc";
  r.target = EntityQuery::AtRevision(0);
  r.expected = ExpectedRevision::Exact(1);
  auto stale = store_->Revert(r);
  ASSERT_EQ(stale.status().code(), StatusCode::kWrongExpectedRevision);
  ASSERT_NE(stale.status().conflict(), nullptr);
  EXPECT_EQ(DumpLog(*store_), log_before);
  auto now = store_->GetEntity("doc", EntityQuery::Latest());
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(State(*now)["v"], 3);

  // Bad input: a target that does not exist, and metadata that is not an object.
  r.expected = ExpectedRevision::Exact(2);
  r.target = EntityQuery::AtRevision(9);
  EXPECT_EQ(store_->Revert(r).status().code(), StatusCode::kNotFound);
  r.target = EntityQuery::AtRevision(0);
  r.metadata = "[1]";
  EXPECT_EQ(store_->Revert(r).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DumpLog(*store_), log_before);
}

TEST_F(TemporalExamplesTest, InvalidDocumentEventsAreRejectedAtAppend) {
  EXPECT_EQ(
      store_->Append("doc", ExpectedRevision::Any(), {Event("$put", "[1, 2]")}).status().code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(
      store_->Append("doc", ExpectedRevision::Any(), {Event("$patch", "\"text\"")}).status().code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Append("doc", ExpectedRevision::Any(), {Event("$delete", R"({"a": 1})")})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(DumpLog(*store_).empty());
}

TEST_F(TemporalExamplesTest, StateSurvivesReopen) {
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(store_
                    ->Append("counter", ExpectedRevision::Any(),
                             {Patch("{\"n\": " + std::to_string(i) + "}", "")})
                    .ok());
  }
  store_.reset();
  Options o;
  o.sync = false;
  o.snapshot_interval = 2;
  store_ = OpenOrDie(dir_.path(), o);
  ASSERT_TRUE(
      store_->Append("counter", ExpectedRevision::Exact(6), {Patch(R"({"m": 1})", "")}).ok());
  for (Revision r = 0; r <= 7; ++r) {
    auto s = store_->GetEntity("counter", EntityQuery::AtRevision(r));
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(State(*s)["n"], std::min<Revision>(r, 6)) << r;
  }
  auto s = store_->GetEntity("counter", EntityQuery::Latest());
  EXPECT_EQ(State(*s), json::parse(R"({"n": 6, "m": 1})"));
}

}  // namespace
}  // namespace timetrail

namespace timetrail {
namespace {

// A correction appended right after a restart must still be found by valid-time queries that
// start from a snapshot written before the restart.
TEST_F(TemporalExamplesTest, CorrectionAfterReopen) {
  const char* days[] = {"2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"};
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(store_
                    ->Append("price", ExpectedRevision::Any(),
                             {Patch("{\"p" + std::to_string(i) + "\": " + std::to_string(i) + "}",
                                    "", T(days[i]))})
                    .ok());
  }
  store_.reset();
  Options o;
  o.sync = false;
  o.snapshot_interval = 2;
  store_ = OpenOrDie(dir_.path(), o);
  ASSERT_NE(store_, nullptr);
  ASSERT_TRUE(
      store_
          ->Append("price", ExpectedRevision::Exact(3),
                   {Patch(R"({"fix": "january"})", R"({"reason": "late"})", T("2026-01-15"))})
          .ok());
  auto s = store_->GetEntity("price", EntityQuery::ValidAt(T("2026-05-01")));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(State(*s), json::parse(R"({"p0": 0, "p1": 1, "p2": 2, "p3": 3, "fix": "january"})"));
  EXPECT_EQ(s->event->revision, 3u);  // the last in valid-time order
  s = store_->GetEntity("price", EntityQuery::ValidAt(T("2026-01-20")));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(State(*s), json::parse(R"({"p0": 0, "fix": "january"})"));
  EXPECT_EQ(s->event->revision, 4u);
}

}  // namespace
}  // namespace timetrail
