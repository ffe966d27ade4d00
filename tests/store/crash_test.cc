// Crash recovery: a child process appends from several threads and is killed with SIGKILL at
// random moments. After each reopen, every transaction the child saw acknowledged is present,
// no transaction is partial, positions have no gaps, the integrity chain verifies, and the
// temporal index written in the same writes (snapshots, change signatures) answers as a plain
// fold of the events does, and activity (through the type and actor indexes) as a plain filter
// of the log does.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "support/store_helpers.h"
#include "support/temp_dir.h"

namespace timetrail {
namespace {

struct Ack {
  TxId tx;
  Position first, last;
  std::vector<std::tuple<std::string, Revision, std::uint64_t>> streams;
};

// Runs crash_writer for "run_for", kills it with SIGKILL, and returns the acknowledged lines.
std::vector<Ack> RunAndKill(const std::string& dir, std::chrono::milliseconds run_for) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execl(CRASH_WRITER, CRASH_WRITER, dir.c_str(), "6", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  std::string out;
  char buf[65536];
  auto drain = [&] {
    for (;;) {
      ssize_t n = read(fds[0], buf, sizeof(buf));
      if (n <= 0) return;
      out.append(buf, n);
    }
  };
  auto deadline = std::chrono::steady_clock::now() + run_for;
  while (std::chrono::steady_clock::now() < deadline) {
    drain();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status)) << "crash_writer exited on its own: status " << status;
  drain();  // what the child wrote before it died is still in the pipe
  close(fds[0]);

  std::vector<Ack> acks;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    if (lines.eof()) break;  // a line cut by the kill was never fully acknowledged to us
    std::istringstream f(line);
    std::string word;
    Ack a;
    f >> word >> a.tx >> a.first >> a.last;
    while (f >> word) {
      auto c1 = word.find(':'), c2 = word.rfind(':');
      a.streams.emplace_back(word.substr(0, c1), std::stoull(word.substr(c1 + 1, c2 - c1 - 1)),
                             std::stoull(word.substr(c2 + 1)));
    }
    acks.push_back(std::move(a));
  }
  return acks;
}

// States at some revisions and a property's history, paged, against a plain fold of the stream.
void ExpectTemporalAnswersMatchAPlainFold(const EventStore& store, const std::string& stream,
                                          const std::string& what) {
  using Json = nlohmann::json;
  ReadStreamOptions all;
  all.max_count = SIZE_MAX;
  auto events = store.ReadStream(stream, all);
  if (!events.ok() && events.status().code() == StatusCode::kNotFound) return;
  ASSERT_TRUE(events.ok()) << what;
  Json doc;  // null: no document
  std::vector<std::pair<Revision, std::optional<Json>>> history;
  for (const RecordedEvent& e : *events) {
    Json data = Json::parse(e.data);
    if (e.type == "$put") {
      doc = data;
    } else {
      if (!doc.is_object()) doc = Json::object();
      doc.merge_patch(data);
    }
    std::optional<Json> v;
    if (doc.contains("k1")) v = doc["k1"];
    if (history.empty() || history.back().second != v) history.emplace_back(e.revision, v);
    if (e.revision % 5 == 0 || e.revision + 1 == events->size()) {
      auto state = store.GetEntity(stream, EntityQuery::AtRevision(e.revision));
      ASSERT_TRUE(state.ok()) << what;
      EXPECT_EQ(Json::parse(state->state), doc) << what << " at revision " << e.revision;
    }
  }
  HistoryQuery q;
  q.limit = 3;
  std::size_t i = 0;
  do {
    auto page = store.GetPropertyHistory(stream, "/k1", q);
    ASSERT_TRUE(page.ok()) << what << ": " << page.status().ToString();
    for (const PropertyInterval& iv : page->intervals) {
      ASSERT_LT(i, history.size()) << what;
      EXPECT_EQ(iv.from.revision, history[i].first) << what << " interval " << i;
      EXPECT_EQ(iv.present, history[i].second.has_value()) << what << " interval " << i;
      if (iv.present && history[i].second) {
        EXPECT_EQ(Json::parse(iv.value), *history[i].second) << what << " interval " << i;
      }
      ++i;
    }
    q.cursor = page->next_cursor;
  } while (!q.cursor.empty());
  EXPECT_EQ(i, history.size()) << what;
}

// Activity by type (the type index), by type and actor (the actor index), over windows near
// the end of the log and in pages of random sizes, against a plain filter of "log", newest
// first.
void ExpectActivityMatchesTheLog(const EventStore& store, const std::vector<RecordedEvent>& log,
                                 std::mt19937& rng, const std::string& what) {
  if (log.empty()) return;
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  const std::vector<std::vector<std::string>> type_sets = {
      {"$put"}, {"$patch"}, {"$put", "$patch"}};
  for (int i = 0; i < 8; ++i) {
    ActivityQuery q;
    q.event_types = type_sets[pick(type_sets.size())];
    if (pick(3) == 0) q.actor = "writer-" + std::to_string(pick(3));
    // Windows of up to 3,000 events, mostly at the end of the log, where the kills cut writes.
    const std::size_t end = log.size();
    const std::size_t first =
        pick(4) == 0 ? pick(end) : end - std::min<std::size_t>(end, 1 + pick(3000));
    const std::size_t last = std::min(end - 1, first + pick(3000));
    q.from = log[first].recorded_at;
    if (last + 1 < end || pick(2) == 0) q.to = log[last].recorded_at;
    const std::size_t limits[] = {1, 7, 100, 10000};
    q.limit = limits[pick(4)];
    std::vector<Position> want;
    for (auto e = log.rbegin(); e != log.rend(); ++e) {
      if (std::find(q.event_types.begin(), q.event_types.end(), e->type) == q.event_types.end()) {
        continue;
      }
      if (!q.actor.empty() && nlohmann::json::parse(e->metadata).value("actor", "") != q.actor) {
        continue;
      }
      if ((q.from && e->recorded_at < *q.from) || (q.to && e->recorded_at > *q.to)) continue;
      want.push_back(e->position);
    }
    std::vector<Position> got;
    for (int pages = 0; pages < 100000; ++pages) {
      auto page = store.QueryActivity(q);
      ASSERT_TRUE(page.ok()) << what << ": " << page.status().ToString();
      for (const RecordedEvent& e : page->events) got.push_back(e.position);
      if (page->next_cursor.empty()) break;
      q.cursor = page->next_cursor;
    }
    ASSERT_EQ(got, want) << what << ": activity query " << i << " limit " << q.limit;
  }
}

TEST(CrashTest, KilledWriterLosesNothingAcknowledgedAndLeavesNothingPartial) {
  testing::TempDir dir;
  const std::string data = dir.Sub("data");
  std::mt19937 rng(20261122);
  std::map<TxId, Ack> all_acks;
  constexpr int kRounds = 24;
  for (int round = 0; round < kRounds; ++round) {
    auto run_for = std::chrono::milliseconds(150 + rng() % 450);
    for (Ack& a : RunAndKill(data, run_for)) all_acks[a.tx] = a;

    auto store = testing::OpenOrDie(data);
    ASSERT_NE(store, nullptr);
    // Every acknowledged transaction is there, exactly where the child was told it is.
    for (const auto& [tx, ack] : all_acks) {
      Position p = ack.first;
      for (const auto& [stream, first_rev, count] : ack.streams) {
        for (std::uint64_t k = 0; k < count; ++k, ++p) {
          auto e = store->GetEventAt(p);
          ASSERT_TRUE(e.ok()) << "round " << round << ": acknowledged position " << p
                              << " is lost: " << e.status().ToString();
          EXPECT_EQ(e->tx, tx);
          EXPECT_EQ(e->stream, stream);
          EXPECT_EQ(e->revision, first_rev + k);
        }
      }
      EXPECT_EQ(p - 1, ack.last);
    }
    // The log has no gaps and no partial transaction.
    ReadLogOptions o;
    o.max_count = SIZE_MAX;
    auto page = store->ReadLog(o);
    ASSERT_TRUE(page.ok());
    std::map<TxId, std::uint64_t> seen, expected_size;
    for (std::size_t i = 0; i < page->events.size(); ++i) {
      const RecordedEvent& e = page->events[i];
      ASSERT_EQ(e.position, i + 1) << "gap in the log after a crash";
      ++seen[e.tx];
      expected_size[e.tx] = nlohmann::json::parse(e.data)["tx_events"].get<std::uint64_t>();
    }
    for (const auto& [tx, n] : seen) {
      EXPECT_EQ(n, expected_size[tx]) << "transaction " << tx << " is partial";
    }
    auto report = store->Verify(VerifyOptions{});
    ASSERT_TRUE(report.ok());
    EXPECT_TRUE(report->ok) << "round " << round << ": " << report->message;
    ExpectActivityMatchesTheLog(*store, page->events, rng, "round " + std::to_string(round));
    for (const char* stream : {"own/0", "own/3", "shared/0", "shared/1"}) {
      ExpectTemporalAnswersMatchAPlainFold(*store, stream,
                                           "round " + std::to_string(round) + " " + stream);
    }
  }
  EXPECT_GT(all_acks.size(), static_cast<std::size_t>(kRounds));
}

}  // namespace
}  // namespace timetrail
