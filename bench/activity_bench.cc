// activity_bench: QueryActivity alone, on a store that is kept between runs, so that one load
// of 10^7 events serves many measurements (and profiles: run it under `perf record`).
//
// The log has temporal_bench's shape: event i is a $put of stream "item-(i mod entities)" by
// metadata.actor "actor-k" (a hash of i over --actors). The store is grown to --size events if
// it holds fewer; then each query kind runs --queries times with windows of --window of the log
// placed at random, and the p50/p99 latency and the mean answer size are printed.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "bench_common.h"
#include "timetrail/store.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kHelp =
    R"(activity_bench: QueryActivity latency on a store kept between runs

Usage: activity_bench --data-dir=DIR [options]

  --data-dir=DIR      the store (created, or grown to --size when it holds fewer events)
  --size=N            events in the store (default 1000000)
  --entities=N        streams the log is spread over (default 100000)
  --actors=N          actors (metadata.actor) it is spread over (default 1000)
  --window=F          the query window as a fraction of the log (default 0.01)
  --queries=N         queries per kind (default 200)
  --kinds=a,b         query kinds among actor, prefix, type (default actor,prefix)
  --block-cache-mb=N  RocksDB block cache (default 256)
  --help              this text
)";

bool Load(timetrail::EventStore& store, std::int64_t size, std::int64_t entities,
          std::int64_t actors) {
  constexpr std::int64_t kPerTx = 1000;
  constexpr int kInFlight = 4;
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;
  std::string failure;
  const std::int64_t from = static_cast<std::int64_t>(store.LastPosition());
  auto start = Clock::now();
  auto last_report = start;
  for (std::int64_t i = from; i < size; i += kPerTx) {
    std::int64_t n = std::min(kPerTx, size - i);
    timetrail::Transaction tx;
    for (std::int64_t k = 0; k < n; ++k) {
      timetrail::StreamAppend a;
      a.stream = "item-" + std::to_string((i + k) % entities);
      a.expected = timetrail::ExpectedRevision::Any();
      timetrail::ProposedEvent e;
      e.type = "$put";
      e.data = bench::ScalingItemData(i + k, entities);
      e.metadata = bench::ScalingItemMetadata(i + k, actors);
      a.events.push_back(std::move(e));
      tx.appends.push_back(std::move(a));
    }
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return in_flight < kInFlight; });
      if (!failure.empty()) break;
      ++in_flight;
    }
    store.TransactAsync(std::move(tx), [&](timetrail::Result<timetrail::Committed> r) {
      std::lock_guard<std::mutex> lock(mu);
      if (!r.ok() && failure.empty()) failure = r.status().ToString();
      --in_flight;
      cv.notify_all();
    });
    if (Clock::now() - last_report > std::chrono::seconds(10)) {
      last_report = Clock::now();
      std::chrono::duration<double> s = Clock::now() - start;
      std::fprintf(stderr, "  %lld of %lld events, %.0f events/s\n", static_cast<long long>(i + n),
                   static_cast<long long>(size), static_cast<double>(i + n - from) / s.count());
    }
  }
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return in_flight == 0; });
  if (!failure.empty()) {
    std::cerr << "activity_bench: load failed: " << failure << "\n";
    return false;
  }
  return true;
}

timetrail::Timestamp RecordedAt(const timetrail::EventStore& store, timetrail::Position p) {
  timetrail::ReadLogOptions o;
  o.from_position = p;
  o.max_count = 1;
  auto page = store.ReadLog(o);
  return page.ok() && !page->events.empty() ? page->events[0].recorded_at : timetrail::Timestamp{};
}

}  // namespace

int main(int argc, char** argv) {
  bench::Flags flags(argc, argv);
  if (flags.Help(kHelp)) return 0;
  if (!flags.Has("data-dir")) {
    std::cerr << kHelp;
    return 2;
  }
  const std::string dir = flags.Get("data-dir", "");
  const std::int64_t size = flags.GetInt("size", 1000000);
  const std::int64_t entities = flags.GetInt("entities", 100000);
  const std::int64_t actors = flags.GetInt("actors", 1000);
  const double window = flags.GetDouble("window", 0.01);
  const std::int64_t queries = flags.GetInt("queries", 200);
  const std::string kinds = "," + flags.Get("kinds", "actor,prefix") + ",";
  const auto cache_mb = static_cast<std::size_t>(flags.GetInt("block-cache-mb", 256));

  if (!flags.CheckAllUsed()) return 2;
  timetrail::Options options;
  options.block_cache_bytes = cache_mb << 20;
  auto opened = timetrail::EventStore::Open(options, dir);
  if (!opened.ok()) {
    std::cerr << "activity_bench: " << opened.status().ToString() << "\n";
    return 1;
  }
  std::unique_ptr<timetrail::EventStore> store = std::move(opened).value();
  if (static_cast<std::int64_t>(store->LastPosition()) < size) {
    auto start = Clock::now();
    if (!Load(*store, size, entities, actors)) return 1;
    if (auto s = store->WaitForBackgroundWork(); !s.ok()) {
      std::cerr << "activity_bench: " << s.ToString() << "\n";
      return 1;
    }
    std::chrono::duration<double> took = Clock::now() - start;
    std::printf("loaded to %llu events in %.1f s\n",
                static_cast<unsigned long long>(store->LastPosition()), took.count());
  }
  const auto last = static_cast<std::int64_t>(store->LastPosition());
  const std::int64_t span = std::max<std::int64_t>(1, static_cast<std::int64_t>(last * window));
  std::mt19937_64 rng(42);
  for (const char* kind : {"actor", "prefix", "type"}) {
    if (kinds.find("," + std::string(kind) + ",") == std::string::npos) continue;
    std::vector<std::uint64_t> nanos;
    std::int64_t answered = 0;
    for (std::int64_t q = 0; q < queries; ++q) {
      std::int64_t first = std::uniform_int_distribution<std::int64_t>(1, last - span + 1)(rng);
      timetrail::ActivityQuery aq;
      aq.from = RecordedAt(*store, static_cast<timetrail::Position>(first));
      aq.to = RecordedAt(*store, static_cast<timetrail::Position>(first + span - 1));
      aq.limit = 1000;
      const std::string pick = std::to_string(std::uniform_int_distribution<std::int64_t>(
          0, std::string(kind) == "actor" ? actors - 1 : entities / 10 - 1)(rng));
      if (std::string(kind) == "actor") aq.actor = "actor-" + pick;
      // "item-123" and the ten streams "item-1230".."item-1239" (and their own ten each).
      if (std::string(kind) == "prefix") aq.stream_prefix = "item-" + pick;
      // Every event of this log is a $put: the window's whole answer, in pages.
      if (std::string(kind) == "type") aq.event_types = {"$put"};
      auto start = Clock::now();
      for (;;) {
        auto page = store->QueryActivity(aq);
        if (!page.ok()) {
          std::cerr << "activity_bench: " << page.status().ToString() << "\n";
          return 1;
        }
        answered += static_cast<std::int64_t>(page->events.size());
        if (page->next_cursor.empty()) break;
        aq.cursor = page->next_cursor;
      }
      nanos.push_back(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count()));
    }
    bench::Latency l = bench::Summarize(nanos);
    std::printf(
        "%-7s %lld events, window %lld: p50 %.1f us, p99 %.1f us, mean %.1f us, %.1f "
        "events per answer\n",
        kind, static_cast<long long>(last), static_cast<long long>(span), l.p50_us, l.p99_us,
        l.mean_us, static_cast<double>(answered) / static_cast<double>(queries));
  }
  return 0;
}
