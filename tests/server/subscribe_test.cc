// End-to-end tests of subscriptions (server-sent events), named consumers and graceful
// shutdown, against a real `timetrail serve` process.
#include <signal.h>

#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "server/server_harness.h"
#include "support/store_helpers.h"
#include "support/temp_dir.h"
#include "timetrail/store.h"

namespace timetrail::testing {
namespace {

using nlohmann::json;

void AppendN(HttpClient& client, const std::string& stream, int n) {
  for (int i = 0; i < n; ++i) {
    HttpResult r =
        client.Post("/v1/streams/" + UrlEncode(stream),
                    R"({"events":[{"type":"tick","data":{"i":)" + std::to_string(i) + "}}]}");
    ASSERT_EQ(r.status, 201) << r.body;
  }
}

TEST(SubscribeTest, StoredThenLiveInOrderAndResumableWithLastEventId) {
  TempDir dir;
  ServerProcess server(dir.Sub("data"));
  ASSERT_TRUE(server.started());
  HttpClient client(server.port());
  AppendN(client, "s", 20);

  std::vector<std::uint64_t> seen;
  {
    SseClient sub(server.port(), "/v1/subscribe?from=1");
    ASSERT_EQ(sub.status(), 200);
    EXPECT_EQ(sub.content_type(), "text/event-stream");
    for (int i = 0; i < 10; ++i) {
      std::optional<SseEvent> e = sub.Next();
      ASSERT_TRUE(e.has_value());
      EXPECT_EQ(e->event, "event");
      json j = json::parse(e->data);
      EXPECT_EQ(j["position"].get<std::uint64_t>(), e->id);
      seen.push_back(e->id);
    }
  }  // the client disconnects after 10 events
  AppendN(client, "s", 10);
  {
    SseClient sub(server.port(), "/v1/subscribe?from=1",
                  {{"Last-Event-ID", std::to_string(seen.back())}});
    ASSERT_EQ(sub.status(), 200);
    while (seen.size() < 30) {
      std::optional<SseEvent> e = sub.Next();
      ASSERT_TRUE(e.has_value());
      seen.push_back(e->id);
      // Once caught up, the rest arrives live.
      if (seen.size() == 30) break;
      if (seen.size() == 25) AppendN(client, "s", 5);
    }
    // The 5 live ones make 35.
    while (seen.size() < 35) {
      std::optional<SseEvent> e = sub.Next();
      ASSERT_TRUE(e.has_value());
      seen.push_back(e->id);
    }
  }
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], i + 1) << "at " << i;
}

TEST(SubscribeTest, FiltersByStreamPrefixAndTypes) {
  TempDir dir;
  ServerProcess server(dir.Sub("data"));
  ASSERT_TRUE(server.started());
  HttpClient client(server.port());
  ASSERT_EQ(
      client.Post("/v1/streams/orders%2F1", R"({"events":[{"type":"placed"},{"type":"paid"}]})")
          .status,
      201);
  ASSERT_EQ(client.Post("/v1/streams/users%2F1", R"({"events":[{"type":"placed"}]})").status, 201);
  SseClient sub(server.port(), "/v1/subscribe?stream_prefix=orders%2F&types=placed");
  ASSERT_EQ(sub.status(), 200);
  std::optional<SseEvent> first = sub.Next();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->id, 1u);
  ASSERT_EQ(client.Post("/v1/streams/users%2F2", R"({"events":[{"type":"placed"}]})").status, 201);
  ASSERT_EQ(client.Post("/v1/streams/orders%2F2", R"({"events":[{"type":"placed"}]})").status, 201);
  std::optional<SseEvent> second = sub.Next();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->id, 5u);
  EXPECT_EQ(json::parse(second->data)["stream"], "orders/2");
}

TEST(SubscribeTest, IdleSubscriptionsGetKeepaliveComments) {
  TempDir dir;
  ServerProcess server(dir.Sub("data"), {"--keepalive-ms", "100"});
  ASSERT_TRUE(server.started());
  SseClient sub(server.port(), "/v1/subscribe");
  ASSERT_EQ(sub.status(), 200);
  HttpClient client(server.port());
  // The subscriber is counted while it waits for live events.
  std::string metrics;
  while (metrics.find("timetrail_subscribers 1\n") == std::string::npos) {
    metrics = client.Get("/metrics").body;
  }
  // Comments are skipped by Next(); an event after them still arrives.
  ASSERT_EQ(client.Post("/v1/streams/k", R"({"events":[{"type":"a"}]})").status, 201);
  std::optional<SseEvent> e = sub.Next();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->id, 1u);
  while (sub.comments().size() < 3) {
    ASSERT_TRUE(client.Post("/v1/streams/k", R"({"events":[{"type":"a"}]})").status == 201);
    ASSERT_TRUE(sub.Next().has_value());
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  EXPECT_EQ(sub.comments()[0], ": subscribed");
  EXPECT_EQ(sub.comments()[1], ": keepalive");
}

TEST(SubscribeTest, SecondServerOnTheSameDataDirectoryIsRefused) {
  TempDir dir;
  ServerProcess first(dir.Sub("data"));
  ASSERT_TRUE(first.started());
  auto [code, output] =
      RunServeBinary({"serve", "--data", dir.Sub("data"), "--listen", "127.0.0.1:0"});
  EXPECT_EQ(code, 5) << output;
  EXPECT_NE(output.find("cannot open data directory"), std::string::npos) << output;
  HttpClient client(first.port());
  EXPECT_EQ(client.Get("/healthz").status, 200);
}

TEST(SubscribeTest, BadSubscriptionRequestsAreRejected) {
  TempDir dir;
  ServerProcess server(dir.Sub("data"));
  ASSERT_TRUE(server.started());
  SseClient bad_from(server.port(), "/v1/subscribe?from=abc");
  EXPECT_EQ(bad_from.status(), 400);
  SseClient bad_id(server.port(), "/v1/subscribe", {{"Last-Event-ID", "x"}});
  EXPECT_EQ(bad_id.status(), 400);
  SseClient bad_consumer(server.port(), "/v1/subscribe?consumer=a%20b");
  EXPECT_EQ(bad_consumer.status(), 400);
  EXPECT_NE(bad_consumer.error_body().find("invalid_argument"), std::string::npos);
}

TEST(SubscribeTest, NamedConsumerSurvivesServerRestart) {
  TempDir dir;
  {
    ServerProcess server(dir.Sub("data"));
    ASSERT_TRUE(server.started());
    HttpClient client(server.port());
    AppendN(client, "c", 8);
    SseClient sub(server.port(), "/v1/subscribe?consumer=mailer");
    for (int i = 0; i < 5; ++i) {
      std::optional<SseEvent> e = sub.Next();
      ASSERT_TRUE(e.has_value());
      ASSERT_EQ(
          client.Post("/v1/consumers/mailer/ack", R"({"position":)" + std::to_string(e->id) + "}")
              .status,
          200);
    }
    sub.Close();
    EXPECT_EQ(server.Stop(SIGTERM), 0);
  }
  ServerProcess server(dir.Sub("data"));
  ASSERT_TRUE(server.started());
  HttpClient client(server.port());
  EXPECT_EQ(client.Get("/v1/consumers/mailer").json()["position"], 5);
  SseClient sub(server.port(), "/v1/subscribe?consumer=mailer");
  ASSERT_EQ(sub.status(), 200);
  for (std::uint64_t want = 6; want <= 8; ++want) {
    std::optional<SseEvent> e = sub.Next();
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->id, want);
  }
}

// 50 concurrent writers and 10 subscribers: each subscriber receives every event exactly once,
// in position order.
TEST(SubscribeTest, ManyWritersManySubscribersExactlyOnceInOrder) {
  TempDir dir;
  ServerProcess server(dir.Sub("data"));
  ASSERT_TRUE(server.started());
  constexpr int kWriters = 50;
  constexpr int kAppendsPerWriter = 30;
  constexpr int kSubscribers = 10;
  constexpr std::uint64_t kTotal = kWriters * kAppendsPerWriter;

  std::vector<std::vector<std::uint64_t>> received(kSubscribers);
  std::vector<std::unique_ptr<SseClient>> subs;
  for (int i = 0; i < kSubscribers; ++i) {
    // Half start from the beginning of the log, half live from wherever the log is.
    subs.push_back(std::make_unique<SseClient>(server.port(), "/v1/subscribe?from=1"));
    ASSERT_EQ(subs.back()->status(), 200);
  }
  std::vector<std::thread> readers;
  for (int i = 0; i < kSubscribers; ++i) {
    readers.emplace_back([&, i] {
      while (received[i].size() < kTotal) {
        std::optional<SseEvent> e = subs[i]->Next();
        if (!e) return;
        received[i].push_back(e->id);
      }
    });
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      HttpClient client(server.port());
      for (int i = 0; i < kAppendsPerWriter; ++i) {
        HttpResult r =
            client.Post("/v1/streams/w-" + std::to_string(w),
                        R"({"expected_revision":)" +
                            (i == 0 ? std::string("\"no_stream\"") : std::to_string(i - 1)) +
                            R"(,"events":[{"type":"n"}]})");
        if (r.status != 201) failures.fetch_add(1);
      }
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(failures.load(), 0);
  for (auto& t : readers) t.join();
  for (int i = 0; i < kSubscribers; ++i) {
    ASSERT_EQ(received[i].size(), kTotal) << "subscriber " << i;
    for (std::uint64_t k = 0; k < kTotal; ++k) {
      ASSERT_EQ(received[i][k], k + 1) << "subscriber " << i << " index " << k;
    }
  }
}

// A subscriber that stops reading holds back neither writers nor other subscribers.
TEST(SubscribeTest, StalledSubscriberDoesNotBlockWritersOrOthers) {
  TempDir dir;
  ServerProcess server(dir.Sub("data"));
  ASSERT_TRUE(server.started());
  SseClient stalled(server.port(), "/v1/subscribe");  // never reads after the header
  ASSERT_EQ(stalled.status(), 200);
  SseClient healthy(server.port(), "/v1/subscribe");
  ASSERT_EQ(healthy.status(), 200);
  // About 8 MB of events: far more than the socket buffers between the server and "stalled".
  constexpr int kEvents = 2000;
  std::string payload(4000, 'x');
  std::atomic<int> received{0};
  std::thread reader([&] {
    while (received.load() < kEvents) {
      std::optional<SseEvent> e = healthy.Next();
      if (!e) return;
      if (e->id != static_cast<std::uint64_t>(received.load() + 1)) return;
      received.fetch_add(1);
    }
  });
  HttpClient client(server.port());
  for (int i = 0; i < kEvents; ++i) {
    HttpResult r = client.Post("/v1/streams/big",
                               R"({"events":[{"type":"blob","data":{"p":")" + payload + "\"}}]}");
    ASSERT_EQ(r.status, 201) << r.body;
  }
  reader.join();
  EXPECT_EQ(received.load(), kEvents);
  EXPECT_EQ(client.Get("/healthz").json()["position"], kEvents);
  EXPECT_EQ(server.Stop(SIGTERM), 0);  // shutdown does not hang on the stalled connection
}

// SIGTERM while writers are busy: the server exits 0 and every write it acknowledged is stored.
TEST(SubscribeTest, SigtermDuringLoadLosesNoAcknowledgedWrite) {
  TempDir dir;
  ServerProcess server(dir.Sub("data"));
  ASSERT_TRUE(server.started());
  constexpr int kWriters = 16;
  std::mutex mu;
  std::vector<std::pair<std::uint64_t, std::string>> acked;  // position, stream
  std::atomic<int> total{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      HttpClient client(server.port());
      std::string stream = "load-" + std::to_string(w);
      while (true) {
        HttpResult r = client.Post("/v1/streams/" + stream, R"({"events":[{"type":"n"}]})");
        if (r.status != 201) return;  // the server is going away
        std::lock_guard<std::mutex> lock(mu);
        acked.emplace_back(r.json()["position"].get<std::uint64_t>(), stream);
        total.fetch_add(1);
      }
    });
  }
  SseClient sub(server.port(), "/v1/subscribe");
  ASSERT_EQ(sub.status(), 200);
  while (total.load() < 300) std::this_thread::yield();
  EXPECT_EQ(server.Stop(SIGTERM), 0);
  for (auto& t : writers) t.join();
  // The subscription ended cleanly with the server.
  while (sub.Next()) {
  }
  ASSERT_GE(acked.size(), 300u);

  Options options;
  const std::string location = testing::StoreLocation(dir.Sub("data"), options);
  Result<std::unique_ptr<EventStore>> store = EventStore::Open(options, location);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  for (const auto& [position, stream] : acked) {
    Result<RecordedEvent> e = (*store)->GetEventAt(position);
    ASSERT_TRUE(e.ok()) << "acknowledged position " << position << ": " << e.status().ToString();
    EXPECT_EQ(e->stream, stream);
  }
  Result<VerifyReport> report = (*store)->Verify(VerifyOptions{});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->message;
}

}  // namespace
}  // namespace timetrail::testing
