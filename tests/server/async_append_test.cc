// End-to-end tests of asynchronous appends: `timetrail serve` checks an append on its I/O
// thread, queues it in the store and answers from the store's completion once it is durable.
// These tests hold what that path must keep: every append answered exactly once, with the
// position it was stored at; conflicts and idempotent replays; answers that outlive the
// request deadline; and appends in flight when a graceful stop begins.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "server/server_harness.h"
#include "support/temp_dir.h"

namespace timetrail::testing {
namespace {

using nlohmann::json;

std::string OneEvent(const std::string& expected, const std::string& data) {
  return R"({"expected_revision":)" + expected + R"(,"events":[{"type":"t","data":)" + data + "}]}";
}

// A transaction body of "events" events of about 100 bytes each: big enough that the store
// takes a while over it, so that other appends queue behind it.
std::string BigAppend(int events) {
  std::string body = R"({"expected_revision":"any","events":[)";
  for (int i = 0; i < events; ++i) {
    if (i > 0) body += ",";
    body += R"({"type":"bulk","data":{"i":)" + std::to_string(i) + R"(,"pad":")" +
            std::string(64, 'p') + R"("}})";
  }
  return body + "]}";
}

std::int64_t MetricValue(const std::string& page, const std::string& name) {
  std::size_t at = page.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stoll(page.substr(at + name.size() + 2));
}

// Many clients append at once over keep-alive connections. Each waits for its answer before
// the next request on its connection, so an answer sent twice (or lost) would show up as the
// wrong answer to a later request (or a failed one): every answer must be the 201 of its own
// request, with the stream's next revision and a position no other append got. Then, after a
// restart, every stream holds exactly the events at the positions the answers named.
TEST(AsyncAppendTest, ConcurrentAppendsAreEachAnsweredOnceWithTheirDurablePosition) {
  TempDir dir;
  constexpr int kClients = 16;
  constexpr int kAppendsEach = 40;
  std::vector<std::vector<std::uint64_t>> positions(kClients);
  std::vector<std::vector<std::uint64_t>> shared_revisions(kClients);
  {
    ServerProcess server(dir.Sub("data"));
    ASSERT_TRUE(server.started());
    std::vector<std::thread> clients;
    std::atomic<int> failures{0};
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&, c] {
        HttpClient client(server.port());
        for (int i = 0; i < kAppendsEach; ++i) {
          // Alternate between an own stream with exact revisions and one shared stream.
          if (i % 2 == 0) {
            std::string expected = i == 0 ? "\"no_stream\"" : std::to_string(i / 2 - 1);
            HttpResult r = client.Post("/v1/streams/own-" + std::to_string(c),
                                       OneEvent(expected, std::to_string(i)));
            json j = r.json();
            if (r.status != 201 || j["revision"] != i / 2 ||
                j["stream"] != "own-" + std::to_string(c)) {
              ++failures;
              ADD_FAILURE() << "client " << c << " append " << i << ": " << r.status << " "
                            << r.body;
              return;
            }
            positions[c].push_back(j["position"].get<std::uint64_t>());
          } else {
            HttpResult r = client.Post("/v1/transactions",
                                       R"({"appends":[{"stream":"shared","events":[{"type":"t",)"
                                       R"("data":{"client":)" +
                                           std::to_string(c) + "}}]}]}");
            json j = r.json();
            if (r.status != 201 || j["streams"].size() != 1 ||
                j["streams"][0]["stream"] != "shared") {
              ++failures;
              ADD_FAILURE() << "client " << c << " transaction " << i << ": " << r.status << " "
                            << r.body;
              return;
            }
            positions[c].push_back(j["position"].get<std::uint64_t>());
            shared_revisions[c].push_back(j["streams"][0]["revision"].get<std::uint64_t>());
          }
        }
      });
    }
    for (auto& t : clients) t.join();
    ASSERT_EQ(failures.load(), 0);
    EXPECT_EQ(server.Stop(SIGTERM), 0);
  }

  std::set<std::uint64_t> all_positions;
  std::set<std::uint64_t> all_shared_revisions;
  for (int c = 0; c < kClients; ++c) {
    all_positions.insert(positions[c].begin(), positions[c].end());
    all_shared_revisions.insert(shared_revisions[c].begin(), shared_revisions[c].end());
  }
  EXPECT_EQ(all_positions.size(), static_cast<std::size_t>(kClients * kAppendsEach));
  EXPECT_EQ(all_shared_revisions.size(), static_cast<std::size_t>(kClients * kAppendsEach / 2));
  EXPECT_EQ(*all_shared_revisions.rbegin(), kClients * kAppendsEach / 2 - 1u);

  // Durable: a new server on the same directory has every event where its answer said.
  ServerProcess server(dir.Sub("data"));
  ASSERT_TRUE(server.started());
  HttpClient client(server.port());
  for (int c = 0; c < kClients; ++c) {
    HttpResult r = client.Get("/v1/streams/own-" + std::to_string(c) + "?limit=1000");
    ASSERT_EQ(r.status, 200) << r.body;
    json page = r.json();
    const json& events = page["events"];
    ASSERT_EQ(events.size(), static_cast<std::size_t>(kAppendsEach / 2));
    for (std::size_t k = 0; k < events.size(); ++k) {
      EXPECT_EQ(events[k]["position"], positions[c][2 * k]);
      EXPECT_EQ(events[k]["data"], static_cast<int>(2 * k));
    }
  }
  HttpResult shared = client.Get("/v1/streams/shared/info");
  EXPECT_EQ(shared.json()["revision"], kClients * kAppendsEach / 2 - 1);
}

// Appends need no worker thread: with the only worker held by a request waiting for a position
// never written, appends on both endpoints are answered (and durable: a later read sees them)
// while that request still waits. It is an order, not a speed.
TEST(AsyncAppendTest, AppendsAreAnsweredWhileEveryWorkerWaits) {
  TempDir dir;
  ServerProcess server(dir.Sub("data"), {"--worker-threads=1"});
  ASSERT_TRUE(server.started());
  std::atomic<bool> waiter_done{false};
  int waiter_status = 0;
  HttpClient waiter_client(server.port());
  ASSERT_EQ(waiter_client.Get("/healthz").status, 200);  // connected before the wait begins
  const auto waiter_start = std::chrono::steady_clock::now();
  std::thread waiter([&] {
    waiter_status = waiter_client.Get("/v1/log?min_position=1000000&timeout_ms=4000").status;
    waiter_done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the waiter takes the worker
  HttpClient client(server.port());
  HttpResult single = client.Post("/v1/streams/while-waiting", OneEvent("\"no_stream\"", "1"));
  bool single_before_waiter = !waiter_done;
  HttpResult tx = client.Post("/v1/transactions",
                              R"({"appends":[{"stream":"while-waiting","expected_revision":0,)"
                              R"("events":[{"type":"t","data":2}]}]})");
  bool tx_before_waiter = !waiter_done;
  HttpResult info = client.Get("/v1/streams/while-waiting/info");  // quick: an I/O thread's job
  // A worker's job: answered only once the waiter has let the worker go (its 4 s wait), which
  // shows the worker was held while the appends were answered. No sooner than 3 s after the
  // waiter started is a bound that only a worker not held at all could break: an order, not a
  // speed.
  HttpResult read = client.Get("/v1/streams/while-waiting");
  const auto read_answered_after = std::chrono::steady_clock::now() - waiter_start;
  waiter.join();
  EXPECT_EQ(read.status, 200) << read.body;
  EXPECT_GE(read_answered_after, std::chrono::seconds(3))
      << "the stream read did not wait for the held worker";
  EXPECT_EQ(single.status, 201) << single.body;
  EXPECT_TRUE(single_before_waiter);
  EXPECT_EQ(tx.status, 201) << tx.body;
  EXPECT_TRUE(tx_before_waiter);
  EXPECT_EQ(info.json()["revision"], 1) << info.body;
  EXPECT_EQ(waiter_status, 504);  // it timed out waiting for a position never written
  EXPECT_EQ(server.Stop(SIGTERM), 0);
}

// Conditional appends racing for the same stream: exactly one wins, the others are answered
// 409 and store nothing. Retrying a stored append with the same event id is answered 200 with
// the original result, through both append endpoints.
TEST(AsyncAppendTest, ConflictsAndIdempotentReplaysAreAnsweredByTheCompletion) {
  TempDir dir;
  ServerProcess server(dir.Sub("data"));
  ASSERT_TRUE(server.started());
  constexpr int kRacers = 12;
  std::vector<int> statuses(kRacers);
  std::vector<std::thread> racers;
  for (int c = 0; c < kRacers; ++c) {
    racers.emplace_back([&, c] {
      HttpClient client(server.port());
      statuses[c] =
          client.Post("/v1/streams/race", OneEvent("\"no_stream\"", std::to_string(c))).status;
    });
  }
  for (auto& t : racers) t.join();
  int created = 0, conflicts = 0;
  for (int s : statuses) {
    created += s == 201;
    conflicts += s == 409;
  }
  EXPECT_EQ(created, 1);
  EXPECT_EQ(conflicts, kRacers - 1);

  HttpClient client(server.port());
  EXPECT_EQ(client.Get("/v1/streams/race/info").json()["revision"], 0);
  EXPECT_EQ(client.Post("/v1/streams/race", OneEvent("0", "1"), {{"If-Match", "\"5\""}}).status,
            400);  // both an If-Match and expected_revision
  EXPECT_EQ(client.Post("/v1/streams/race", R"({"events":[{"type":"t"}]})", {{"If-Match", "\"5\""}})
                .status,
            409);
  HttpResult by_etag =
      client.Post("/v1/streams/race", R"({"events":[{"type":"t"}]})", {{"If-Match", "\"0\""}});
  EXPECT_EQ(by_etag.status, 201) << by_etag.body;
  EXPECT_EQ(by_etag.header("etag"), "\"1\"");

  const std::string id = "0190a5d2-7c1e-7000-8000-00000000abcd";
  std::string body = R"({"events":[{"id":")" + id + R"(","type":"t","data":1}]})";
  HttpResult first = client.Post("/v1/streams/once", body);
  ASSERT_EQ(first.status, 201) << first.body;
  std::vector<std::thread> retries;
  std::vector<HttpResult> replays(6);
  for (std::size_t i = 0; i < replays.size(); ++i) {
    retries.emplace_back([&, i] {
      HttpClient retry(server.port());
      replays[i] = retry.Post("/v1/streams/once", body);
    });
  }
  for (auto& t : retries) t.join();
  for (const HttpResult& r : replays) {
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["idempotent_replay"], true);
    EXPECT_EQ(r.json()["position"], first.json()["position"]);
  }
  std::string tx =
      R"({"appends":[{"stream":"once","events":[{"id":")" + id + R"(","type":"t","data":1}]}]})";
  HttpResult tx_replay = client.Post("/v1/transactions", tx);
  EXPECT_EQ(tx_replay.status, 200) << tx_replay.body;
  EXPECT_EQ(tx_replay.json()["position"], first.json()["position"]);
  EXPECT_EQ(client.Get("/v1/streams/once/info").json()["revision"], 0);

  // Refusals decided before anything is queued are answered on the same path.
  EXPECT_EQ(client.Post("/v1/streams/$audit", OneEvent("\"any\"", "1")).status, 400);
  EXPECT_EQ(client.Post("/v1/streams/x", "{not json").status, 400);
  EXPECT_EQ(client.Post("/v1/streams/x", "{}", {{"Content-Type", "text/plain"}}).status, 415);
  EXPECT_EQ(client.Post("/v1/transactions", R"({"appends":[{"stream":"","events":[]}]})").status,
            400);
  EXPECT_EQ(server.Stop(SIGTERM), 0);
}

// The request deadline (--request-timeout-ms) and the idle deadline cover receiving a request,
// not the time its append waits in the store. Several large transactions sent at once queue
// behind each other for longer than both deadlines: each is still answered 201, once, and the
// same connection then serves its next request.
TEST(AsyncAppendTest, AnAppendQueuedPastTheRequestDeadlineIsAnsweredOnce) {
  TempDir dir;
  ServerProcess server(dir.Sub("data"),
                       {"--request-timeout-ms", "250", "--idle-timeout-ms", "250"});
  ASSERT_TRUE(server.started());
  constexpr int kClients = 4;
  const std::string big = BigAppend(10000);
  std::vector<std::thread> clients;
  std::atomic<int> failures{0};
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      HttpClient client(server.port());
      std::string stream = "/v1/streams/bulk-" + std::to_string(c);
      HttpResult r = client.Post(stream, big);
      if (r.status != 201 || r.json()["revision"] != 9999) {
        ++failures;
        ADD_FAILURE() << "big append " << c << ": " << r.status << " " << r.body.substr(0, 200);
        return;
      }
      HttpResult next = client.Post(stream, OneEvent("9999", "\"after\""));
      if (next.status != 201 || next.json()["revision"] != 10000) {
        ++failures;
        ADD_FAILURE() << "next append " << c << ": " << next.status << " " << next.body;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(failures.load(), 0);
  HttpClient client(server.port());
  std::string metrics = client.Get("/metrics").body;
  EXPECT_EQ(MetricValue(metrics, "timetrail_events_total"), kClients * 10001);
  // Every response was a 2xx: no 408 for a request whose append outlived the deadline.
  EXPECT_EQ(metrics.find("timetrail_http_responses_total{code=\"4xx\"} 0") != std::string::npos,
            true)
      << metrics;
  EXPECT_EQ(server.Stop(SIGTERM), 0);
}

// A graceful stop (SIGTERM) that begins while an append is in flight (read by the server and
// not yet answered, as /metrics shows) answers it with its 201 before the server exits 0, and
// the append is stored. The append is large so that the stop can be caught while it is in
// flight; an attempt that finishes too quickly is repeated on a new server.
TEST(AsyncAppendTest, GracefulStopAnswersAndStoresTheAppendsInFlight) {
  TempDir dir;
  const std::string big = BigAppend(10000);
  bool caught_in_flight = false;
  for (int attempt = 0; attempt < 20 && !caught_in_flight; ++attempt) {
    std::string data = dir.Sub("data-" + std::to_string(attempt));
    HttpResult answer;
    {
      ServerProcess server(data);
      ASSERT_TRUE(server.started());
      std::atomic<bool> answered{false};
      std::thread appender([&] {
        HttpClient client(server.port());
        answer = client.Post("/v1/streams/in-flight", big);
        answered = true;
      });
      HttpClient observer(server.port());
      // In flight: this /metrics request and the append.
      while (!answered && !caught_in_flight) {
        std::string page = observer.Get("/metrics").body;
        caught_in_flight = !answered && MetricValue(page, "timetrail_http_requests_in_flight") >= 2;
      }
      if (caught_in_flight) {
        EXPECT_EQ(server.Stop(SIGTERM), 0);
      }
      appender.join();
      if (!caught_in_flight) {
        EXPECT_EQ(server.Stop(SIGTERM), 0);
        continue;
      }
    }
    ASSERT_EQ(answer.status, 201) << answer.body.substr(0, 200);
    EXPECT_EQ(answer.json()["revision"], 9999);
    ServerProcess reopened(data);
    ASSERT_TRUE(reopened.started());
    HttpClient client(reopened.port());
    HttpResult info = client.Get("/v1/streams/in-flight/info");
    EXPECT_EQ(info.json()["revision"], 9999) << info.body;
    EXPECT_EQ(info.json()["position"], answer.json()["position"]);
  }
  EXPECT_TRUE(caught_in_flight) << "no attempt caught the append in flight";
}

}  // namespace
}  // namespace timetrail::testing
