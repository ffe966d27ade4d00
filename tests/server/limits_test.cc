// Resource limits of `timetrail serve`, against a real server process over raw sockets: a
// client that trickles its request is cut off, oversized headers and bodies are refused without
// reading them, connections and subscriptions beyond their limits are refused, and a
// subscriber that stops reading is dropped while the server's memory stays bounded; quick reads
// do not queue behind requests that hold every worker.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "server/server_harness.h"
#include "support/temp_dir.h"

namespace timetrail::testing {
namespace {

// A plain TCP connection to the server. "rcvbuf" > 0 shrinks the receive buffer before
// connecting, so a client that does not read fills up quickly.
class RawConn {
 public:
  explicit RawConn(std::uint16_t port, int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RawConn() { Close(); }
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;

  bool ok() const { return fd_ >= 0; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // False once the server has closed its end.
  bool Send(const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<std::size_t>(n);
    }
    return true;
  }

  bool Readable(int wait_ms) {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, wait_ms) > 0;
  }

  // Reads until the server closes the connection (or 60 s pass, so a broken server fails the
  // test instead of hanging it).
  std::string ReadToEnd() {
    std::string out;
    char buf[65536];
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < give_up) {
      if (!Readable(1000)) continue;
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }

  // Reads one response head and a Content-Length body of a keep-alive exchange.
  std::string ReadResponse() {
    std::string out;
    char buf[4096];
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < give_up) {
      std::size_t head_end = out.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        std::size_t cl = out.find("Content-Length: ");
        std::size_t len = cl == std::string::npos ? 0 : std::stoul(out.substr(cl + 16));
        if (out.size() >= head_end + 4 + len) return out;
      }
      if (!Readable(1000)) continue;
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }

 private:
  int fd_ = -1;
};

std::size_t RssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6));
  }
  return 0;
}

// Polls "cond" every 100 ms for up to 60 s: the server's bookkeeping after a close is
// asynchronous, and a generous bound keeps this about correctness, not speed.
template <typename F>
bool Eventually(F cond) {
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < give_up) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return cond();
}

TEST(LimitsTest, SlowlorisIsCutOffAtTheRequestTimeoutWhileOthersAreServed) {
  TempDir dir;
  ServerProcess server(dir.Sub("data"), {"--request-timeout-ms=1500", "--idle-timeout-ms=1500"});
  ASSERT_TRUE(server.started());
  RawConn slow(server.port());
  ASSERT_TRUE(slow.ok());
  // A valid request, one byte every 100 ms: every read makes progress, so only a deadline for
  // the whole request (not per read) stops it. Sending all of it would take 30 s.
  std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(250, 'p') +
                        "\r\n\r\n";
  std::size_t sent = 0;
  bool others_served = false;
  std::string answer;
  for (; sent < request.size(); ++sent) {
    if (!slow.Send(request.substr(sent, 1))) break;
    if (sent == 3) {
      HttpClient other(server.port());
      others_served = other.Get("/healthz").status == 200;
    }
    if (slow.Readable(100)) {
      answer = slow.ReadToEnd();
      break;
    }
  }
  EXPECT_TRUE(others_served);
  EXPECT_LT(sent, request.size()) << "the trickled request was read to its end";
  EXPECT_EQ(answer.rfind("HTTP/1.1 408", 0), 0u) << answer;
  EXPECT_NE(answer.find("request_timeout"), std::string::npos) << answer;
  HttpClient after(server.port());
  EXPECT_EQ(after.Get("/healthz").status, 200);
}

TEST(LimitsTest, IdleKeepAliveConnectionIsClosedQuietly) {
  TempDir dir;
  ServerProcess server(dir.Sub("data"), {"--idle-timeout-ms=500"});
  ASSERT_TRUE(server.started());
  RawConn c(server.port());
  ASSERT_TRUE(c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string first = c.ReadResponse();
  ASSERT_EQ(first.rfind("HTTP/1.1 200", 0), 0u) << first;
  // Nothing more is sent: the server closes the connection without a response.
  EXPECT_EQ(c.ReadToEnd(), "");
}

TEST(LimitsTest, OversizedHeadersAre431AndOversizedBodiesAre413UnreadAndNothingIsStored) {
  TempDir dir;
  ServerProcess server(dir.Sub("data"), {"--max-header-bytes=4096", "--max-body-bytes=65536"});
  ASSERT_TRUE(server.started());
  {
    RawConn c(server.port());
    ASSERT_TRUE(c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(8000, 'h') +
                       "\r\n\r\n"));
    std::string r = c.ReadToEnd();
    EXPECT_EQ(r.rfind("HTTP/1.1 431", 0), 0u) << r;
    EXPECT_NE(r.find("4096"), std::string::npos) << r;
  }
  {
    // Announces 100 MB and sends none of it: the answer comes from the head alone.
    RawConn c(server.port());
    ASSERT_TRUE(c.Send("POST /v1/streams/s HTTP/1.1\r\nHost: x\r\nContent-Type: "
                       "application/json\r\nContent-Length: 100000000\r\n\r\n"));
    std::string r = c.ReadToEnd();
    EXPECT_EQ(r.rfind("HTTP/1.1 413", 0), 0u) << r;
    EXPECT_NE(r.find("65536"), std::string::npos) << r;
  }
  HttpClient client(server.port());
  HttpResult log = client.Get("/v1/log");
  ASSERT_EQ(log.status, 200) << log.body;
  EXPECT_TRUE(log.json()["events"].empty()) << log.body;
  EXPECT_EQ(client.Get("/v1/log?limit=100000").status, 400);
}

// Entity reads and stream info are answered on the I/O threads (Api::IsQuick), so they do not
// queue behind requests that hold every worker; everything else does. With the only worker held
// for 4 s by a request waiting for a position never written, an entity read and a stream's info
// answer while that request still waits, and a stream read (a worker's job) only once the
// worker is free again: no sooner than 3 s after the waiter started, a bound that only a worker
// not held at all could break (it is an order, not a speed).
TEST(LimitsTest, QuickReadsAreAnsweredWhileEveryWorkerWaits) {
  using Clock = std::chrono::steady_clock;
  TempDir dir;
  ServerProcess server(dir.Sub("data"), {"--worker-threads=1"});
  ASSERT_TRUE(server.started());
  HttpClient writer(server.port());
  ASSERT_EQ(writer.Post("/v1/streams/order-1",
                        R"({"events":[{"type":"$put","data":{"status":"open"}}]})")
                .status,
            201);
  std::atomic<bool> waiter_done{false};
  int waiter_status = 0;
  const Clock::time_point waiter_start = Clock::now();
  std::thread waiter([&] {
    HttpClient c(server.port());
    waiter_status = c.Get("/v1/log?min_position=1000000&timeout_ms=4000").status;
    waiter_done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the waiter takes the worker
  HttpClient reader(server.port());
  HttpResult entity = reader.Get("/v1/entities/order-1");
  bool entity_before_waiter = !waiter_done;
  HttpResult info = reader.Get("/v1/streams/order-1/info");
  bool info_before_waiter = !waiter_done;
  HttpResult stream = reader.Get("/v1/streams/order-1");  // served by the worker
  const auto stream_answered_after = Clock::now() - waiter_start;
  waiter.join();
  EXPECT_EQ(entity.status, 200) << entity.body;
  EXPECT_EQ(entity.json()["state"]["status"], "open") << entity.body;
  EXPECT_TRUE(entity_before_waiter);
  EXPECT_EQ(info.status, 200) << info.body;
  EXPECT_TRUE(info_before_waiter);
  EXPECT_EQ(stream.status, 200) << stream.body;
  EXPECT_GE(stream_answered_after, std::chrono::seconds(3))
      << "the stream read did not wait for the held worker";
  EXPECT_NE(waiter_status, 200);  // it timed out waiting for a position never written
}

TEST(LimitsTest, ConnectionsBeyondTheLimitAre503UntilOneCloses) {
  TempDir dir;
  ServerProcess server(dir.Sub("data"), {"--max-connections=3"});
  ASSERT_TRUE(server.started());
  std::vector<std::unique_ptr<RawConn>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<RawConn>(server.port()));
    ASSERT_TRUE(held.back()->Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::string r = held.back()->ReadResponse();
    ASSERT_EQ(r.rfind("HTTP/1.1 200", 0), 0u) << r;  // accepted and kept alive
  }
  {
    RawConn extra(server.port());
    std::string r = extra.ReadToEnd();
    EXPECT_EQ(r.rfind("HTTP/1.1 503", 0), 0u) << r;
    EXPECT_NE(r.find("too many open connections"), std::string::npos) << r;
  }
  held.front()->Close();
  EXPECT_TRUE(Eventually([&] {
    RawConn c(server.port());
    if (!c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) return false;
    return c.ReadToEnd().rfind("HTTP/1.1 200", 0) == 0;
  }));
}

TEST(LimitsTest, SubscriptionsBeyondTheLimitAre503) {
  TempDir dir;
  ServerProcess server(dir.Sub("data"), {"--max-subscriptions=2"});
  ASSERT_TRUE(server.started());
  auto a = std::make_unique<SseClient>(server.port(), "/v1/subscribe?from=1");
  SseClient b(server.port(), "/v1/subscribe?from=1");
  ASSERT_EQ(a->status(), 200);
  ASSERT_EQ(b.status(), 200);
  {
    SseClient c(server.port(), "/v1/subscribe?from=1");
    EXPECT_EQ(c.status(), 503);
    EXPECT_NE(c.error_body().find("too many open subscriptions"), std::string::npos)
        << c.error_body();
  }
  a.reset();
  EXPECT_TRUE(Eventually([&] {
    SseClient c(server.port(), "/v1/subscribe?from=1");
    return c.status() == 200;
  }));
}

TEST(LimitsTest, SubscriberThatDoesNotReadIsDroppedAndMemoryStaysBounded) {
  TempDir dir;
  ServerProcess server(dir.Sub("data"), {"--subscriber-write-timeout-ms=1000"});
  ASSERT_TRUE(server.started());
  HttpClient client(server.port());
  std::size_t rss_before = RssKiB(server.pid());
  ASSERT_GT(rss_before, 0u);

  RawConn stalled(server.port(), 4096);
  ASSERT_TRUE(stalled.Send("GET /v1/subscribe?from=1 HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(Eventually([&] {
    return client.Get("/metrics").body.find("timetrail_subscribers 1\n") != std::string::npos;
  }));
  // About 24 MB of events, far beyond what the socket buffers can hold for a client that
  // reads nothing.
  std::string data(30000, 'x');
  std::string batch = "{\"events\":[";
  for (int i = 0; i < 10; ++i) {
    if (i > 0) batch += ",";
    batch += "{\"type\":\"blob\",\"data\":{\"x\":\"" + data + "\"}}";
  }
  batch += "]}";
  for (int i = 0; i < 80; ++i) {
    HttpResult r = client.Post("/v1/streams/big", batch);
    ASSERT_EQ(r.status, 201) << r.body;
  }
  // Dropped without the client reading a byte.
  EXPECT_TRUE(Eventually([&] {
    return client.Get("/metrics").body.find("timetrail_subscribers 0\n") != std::string::npos;
  }));
  std::size_t rss_after = RssKiB(server.pid());
  // A backlog of the 24 MB per subscriber would show; the bound leaves room for RocksDB's
  // memtable and caches.
  EXPECT_LT(rss_after, rss_before + 200 * 1024) << "VmRSS " << rss_before << " -> " << rss_after
                                                << " KiB";
  // What the client finds when it finally reads: some events, then the end of the stream.
  std::string got = stalled.ReadToEnd();
  EXPECT_NE(got.find("text/event-stream"), std::string::npos);
  EXPECT_LT(got.size(), 24u << 20);
  EXPECT_EQ(client.Get("/healthz").status, 200);
}

}  // namespace
}  // namespace timetrail::testing
