// The CLI's HTTP client against a test server in the test, which writes its answers byte by byte
// as each test wants them: chunked bodies cut at awkward places (inside a line, between "\r"
// and "\n", one byte per chunk, chunk framing split between writes), bodies with a length and
// up to the end of the connection, keep-alive reuse, broken connections; and event streams
// whose messages must each arrive while the server still holds the connection open.
#include "cli/http_client.h"

#include <sys/socket.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

namespace timetrail::cli {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// How long the test server waits for the client to have seen something. A client that waits
// for the end of a body before it hands over what arrived fails by this timeout, not by hanging.
constexpr auto kPatience = 20s;

// Something one thread waits for and another does.
class Flag {
 public:
  void Set() {
    std::lock_guard lock(mu_);
    set_ = true;
    cv_.notify_all();
  }
  bool WaitFor(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return set_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool set_ = false;
};

// One request the test server received, and the socket to answer it on.
struct Exchange {
  tcp::socket& socket;
  const http::request<http::string_body>& request;
  int connection;  // 0 for the first connection the server accepted
  int index;       // 0 for the first request on this connection
};

// An HTTP server on 127.0.0.1 (port 0) in its own thread. It accepts connections one after
// another, reads the requests on each, and has "answer" write each response as raw bytes;
// when "answer" returns false it closes the connection.
class TestServer {
 public:
  using Answer = std::function<bool(Exchange&)>;

  explicit TestServer(Answer answer)
      : answer_(std::move(answer)), acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { Run(); });
  }

  ~TestServer() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      if (open_fd_ >= 0) ::shutdown(open_fd_, SHUT_RDWR);
    }
    asio::io_context ioc;
    tcp::socket wake(ioc);
    beast::error_code ec;
    wake.connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
    thread_.join();
  }

  ServerAddress address() const {
    ServerAddress a;
    a.host = "127.0.0.1";
    a.port = std::to_string(port_);
    return a;
  }
  int connections() const { return connections_.load(); }
  int requests() const { return requests_.load(); }

 private:
  void Run() {
    for (int connection = 0;; ++connection) {
      tcp::socket socket(ioc_);
      beast::error_code ec;
      acceptor_.accept(socket, ec);
      {
        std::lock_guard lock(mu_);
        if (ec || stopping_) return;
        open_fd_ = socket.native_handle();
      }
      ++connections_;
      socket.set_option(tcp::no_delay(true));
      beast::flat_buffer buffer;
      for (int index = 0;; ++index) {
        http::request<http::string_body> request;
        http::read(socket, buffer, request, ec);
        if (ec) break;
        ++requests_;
        Exchange exchange{socket, request, connection, index};
        if (!answer_(exchange)) break;
      }
      {
        std::lock_guard lock(mu_);
        open_fd_ = -1;
      }
      socket.shutdown(tcp::socket::shutdown_both, ec);
      socket.close(ec);
    }
  }

  Answer answer_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  std::mutex mu_;
  bool stopping_ = false;
  int open_fd_ = -1;
  std::thread thread_;
};

// Writes "bytes" in writes of "piece" bytes, pausing between them so that the client's reads
// end where the writes do.
void WriteInPieces(tcp::socket& socket, std::string_view bytes, std::size_t piece) {
  for (std::size_t at = 0; at < bytes.size(); at += piece) {
    if (at > 0) std::this_thread::sleep_for(1ms);
    asio::write(socket, asio::buffer(bytes.substr(at, piece)));
  }
}

void Write(tcp::socket& socket, std::string_view bytes) {
  asio::write(socket, asio::buffer(bytes));
}

std::string Hex(std::size_t n) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  do {
    out.insert(out.begin(), kDigits[n % 16]);
    n /= 16;
  } while (n > 0);
  return out;
}

// "body" as chunks that end at the given offsets (and at its end), without the last chunk.
std::string ChunksEndingAt(std::string_view body, std::vector<std::size_t> cuts) {
  cuts.push_back(body.size());
  std::string out;
  std::size_t from = 0;
  for (std::size_t cut : cuts) {
    if (cut <= from || cut > body.size()) continue;
    out += Hex(cut - from) + "\r\n" + std::string(body.substr(from, cut - from)) + "\r\n";
    from = cut;
  }
  return out;
}

std::string OneBytePerChunk(std::string_view body) {
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < body.size(); ++i) cuts.push_back(i);
  return ChunksEndingAt(body, cuts);
}

// Cuts right after every "\r" (so that a CRLF is split between two chunks) and in the middle
// of every line.
std::vector<std::size_t> AwkwardCuts(std::string_view body) {
  std::vector<std::size_t> cuts;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < body.size(); ++i) {
    if (body[i] == '\r') cuts.push_back(i + 1);
    if (body[i] == '\n' || body[i] == '\r') {
      std::size_t middle = line_start + (i - line_start) / 2;
      if (middle > line_start) cuts.push_back(middle);
      line_start = i + 1;
    }
  }
  std::sort(cuts.begin(), cuts.end());
  return cuts;
}

constexpr std::string_view kChunkedHead =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
constexpr std::string_view kLastChunk = "0\r\n\r\n";

// A JSON answer with line breaks of both kinds between its tokens.
const std::string kJson =
    "{\"events\":[\r\n  {\"stream\":\"friend-1\",\"revision\":0,\"data\":{\"name\":\"Joey\"}},\n"
    "  {\"stream\":\"friend-2\",\"revision\":3,\"data\":{\"note\":\"a \\\"quoted\\\" line\"}}\r\n"
    "],\"cursor\":null}";

TEST(HttpClientTest, AChunkedAnswerWithOneBytePerChunkArrivesWhole) {
  TestServer server([](Exchange& x) {
    EXPECT_EQ(x.request.target(), "/v1/entities/friend-1?as_of=2026-01-01");
    EXPECT_EQ(x.request[http::field::accept], "application/json");
    // Three bytes per write: every chunk's framing is split between reads.
    WriteInPieces(x.socket,
                  std::string(kChunkedHead) + OneBytePerChunk(kJson) + std::string(kLastChunk), 3);
    return true;
  });
  HttpConnection connection(server.address());
  Result<HttpResponse> r =
      connection.Request("GET", "/v1/entities/friend-1?as_of=2026-01-01", "", {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->content_type, "application/json");
  EXPECT_EQ(r->body, kJson);
}

TEST(HttpClientTest, ChunksCutInsideLinesAndCrlfsAndTheConnectionIsKept) {
  // A large chunk too (its size has several hex digits), chunk extensions and a trailer field.
  const std::string big(70000, 'x');
  TestServer server([&](Exchange& x) {
    if (x.index == 0) {
      std::string body = ChunksEndingAt(kJson, AwkwardCuts(kJson));
      body.insert(body.find("\r\n"), ";ext=1");
      WriteInPieces(x.socket, std::string(kChunkedHead) + body + "0\r\nX-Checksum: 1\r\n\r\n", 7);
    } else {
      Write(x.socket,
            std::string(kChunkedHead) + ChunksEndingAt(big, {1, 4097}) + std::string(kLastChunk));
    }
    return true;
  });
  HttpConnection connection(server.address());
  Result<HttpResponse> first = connection.Request("POST", "/v1/query", "{\"q\":1}", {});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->body, kJson);
  Result<HttpResponse> second = connection.Request("GET", "/v1/big", "", {});
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->body, big);
  EXPECT_EQ(server.connections(), 1);
}

TEST(HttpClientTest, ContentLengthAnswersReuseOneConnection) {
  TestServer server([](Exchange& x) {
    EXPECT_EQ(x.request.body(), x.index == 1 ? "{\"n\":1}" : "");
    std::string body = "{\"request\":" + std::to_string(x.index) + "}";
    WriteInPieces(x.socket,
                  "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\nX-Served-By: test\r\n\r\n" + body,
                  5);
    return true;
  });
  HttpConnection connection(server.address());
  for (int i = 0; i < 3; ++i) {
    Result<HttpResponse> r = connection.Request(i == 1 ? "POST" : "GET", "/v1/x",
                                                i == 1 ? "{\"n\":1}" : "", {{"X-Try", "1"}});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->body, "{\"request\":" + std::to_string(i) + "}");
    bool named = false;
    for (const auto& [name, value] : r->headers) named |= name == "X-Served-By" && value == "test";
    EXPECT_TRUE(named);
  }
  EXPECT_EQ(server.connections(), 1);
}

TEST(HttpClientTest, ABodyUpToTheEndOfTheConnectionThenANewConnection) {
  TestServer server([](Exchange& x) {
    WriteInPieces(x.socket,
                  "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" +
                      kJson + std::to_string(x.connection),
                  11);
    return false;
  });
  HttpConnection connection(server.address());
  for (int i = 0; i < 2; ++i) {
    Result<HttpResponse> r = connection.Request("GET", "/v1/x", "", {});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->body, kJson + std::to_string(i));
  }
  EXPECT_EQ(server.connections(), 2);
}

TEST(HttpClientTest, AKeptConnectionTheServerClosedIsReopenedOnce) {
  // The server answers with a length and keep-alive, then closes the connection anyway (an idle
  // timeout): the next request goes out again on a new connection.
  TestServer server([](Exchange& x) {
    Write(x.socket, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    return false;
  });
  HttpConnection connection(server.address());
  for (int i = 0; i < 3; ++i) {
    Result<HttpResponse> r = connection.Request("GET", "/v1/x", "", {});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->body, "ok");
  }
  EXPECT_EQ(server.connections(), 3);
}

TEST(HttpClientTest, ABrokenConnectionIsUnavailableAndNamesTheAddress) {
  // Part of a chunked body, then the connection ends: on a new connection, and on a kept one,
  // where the request is not sent again because the server had begun to answer it.
  TestServer server([](Exchange& x) {
    if (x.connection == 0 && x.index == 0) {
      Write(x.socket, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
      return true;
    }
    Write(x.socket, std::string(kChunkedHead) + ChunksEndingAt(kJson, {10}).substr(0, 20));
    return false;
  });
  HttpConnection connection(server.address());
  ASSERT_TRUE(connection.Request("GET", "/v1/x", "", {}).ok());
  for (int i = 0; i < 2; ++i) {
    Result<HttpResponse> r = connection.Request("POST", "/v1/append", "{}", {});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
    EXPECT_NE(r.status().message().find(server.address().ToString()), std::string::npos)
        << r.status().ToString();
  }
  EXPECT_EQ(server.requests(), 3);
  EXPECT_EQ(server.connections(), 2);

  ServerAddress nowhere = server.address();
  nowhere.port = "1";
  HttpConnection refused(nowhere);
  Result<HttpResponse> r = refused.Request("GET", "/v1/x", "", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("http://127.0.0.1:1"), std::string::npos);
}

// --- Event streams ---------------------------------------------------------------------------

constexpr std::string_view kStreamHead =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    "Transfer-Encoding: chunked\r\n\r\n";

// The messages of the tests' streams, each as the server writes it, with CRLF, LF and CR line
// ends, multi-line data, comments and keepalives.
const std::vector<std::string> kMessageTexts = {
    ": subscribed\n\nid: 1\nevent: event\ndata: {\"stream\":\"friend-1\",\"revision\":0}\n\n",
    "id: 2\r\nevent: event\r\ndata: {\"stream\":\"friend-2\",\r\ndata: \"revision\":0}\r\n\r\n",
    ": keepalive\r\n\r\nid: 3\revent: event\rdata: third\r\r",
    "id: 4\nevent: event\ndata: {\"note\":\"a: b\"}\n\n",
};
const std::vector<SseMessage> kMessages = {
    {"1", "event", "{\"stream\":\"friend-1\",\"revision\":0}"},
    {"2", "event", "{\"stream\":\"friend-2\",\n\"revision\":0}"},
    {"3", "event", "third"},
    {"4", "event", "{\"note\":\"a: b\"}"},
};

// What the client saw, and whether the server had already ended the stream then.
struct Seen {
  std::mutex mu;
  std::vector<SseMessage> messages;
  std::vector<bool> after_end;
  std::atomic<bool> server_ended{false};
};

void ExpectAllSeenInTime(Seen& seen) {
  std::lock_guard lock(seen.mu);
  ASSERT_EQ(seen.messages.size(), kMessages.size());
  for (std::size_t i = 0; i < kMessages.size(); ++i) {
    EXPECT_EQ(seen.messages[i].id, kMessages[i].id) << i;
    EXPECT_EQ(seen.messages[i].event, kMessages[i].event) << i;
    EXPECT_EQ(seen.messages[i].data, kMessages[i].data) << i;
    EXPECT_FALSE(seen.after_end[i]) << "message " << i << " came only when the stream ended";
  }
}

TEST(EventStreamTest, OneBytePerChunkEveryMessageArrivesWhileTheStreamIsOpen) {
  Seen seen;
  Flag all_seen;
  TestServer server([&](Exchange& x) {
    EXPECT_EQ(x.request.target(), "/v1/subscribe?from=1");
    EXPECT_EQ(x.request[http::field::accept], "text/event-stream");
    EXPECT_EQ(x.request["Last-Event-ID"], "0");
    Write(x.socket, kStreamHead);
    for (const std::string& text : kMessageTexts) {
      std::string chunks = OneBytePerChunk(text);
      for (std::size_t at = 0; at < chunks.size();) {  // one chunk per write
        std::size_t end = chunks.find("\r\n", chunks.find("\r\n", at) + 2) + 2;
        Write(x.socket, std::string_view(chunks).substr(at, end - at));
        at = end;
      }
    }
    EXPECT_TRUE(all_seen.WaitFor(kPatience)) << "the client did not see every message";
    seen.server_ended = true;
    Write(x.socket, kLastChunk);
    return false;
  });
  HttpResponse error;
  Status s = ReadEventStream(
      server.address(), "/v1/subscribe?from=1", {{"Last-Event-ID", "0"}},
      [&](const SseMessage& m) {
        std::lock_guard lock(seen.mu);
        seen.messages.push_back(m);
        seen.after_end.push_back(seen.server_ended.load());
        if (seen.messages.size() == kMessages.size()) all_seen.Set();
        return true;
      },
      &error);
  // The last chunk ends the stream.
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("ended"), std::string::npos) << s.ToString();
  EXPECT_EQ(error.status, 0);
  ExpectAllSeenInTime(seen);
}

TEST(EventStreamTest, ChunksCutInsideLinesAndCrlfsDeliverEachMessageBeforeTheNextIsSent) {
  // Each message goes out in chunks cut inside its lines and between "\r" and "\n", in writes
  // of 4 bytes; the CRLF that ends its last chunk goes out only with the next message. The
  // server sends the next message only once the client has seen this one; the client stops
  // after the last one, and then the connection is still open.
  Seen seen;
  std::vector<Flag> seen_message(kMessages.size());
  TestServer server([&](Exchange& x) {
    Write(x.socket, kStreamHead);
    std::string held;
    for (std::size_t i = 0; i < kMessageTexts.size(); ++i) {
      std::string chunks = ChunksEndingAt(kMessageTexts[i], AwkwardCuts(kMessageTexts[i]));
      chunks.resize(chunks.size() - 1);  // hold back the "\n" that ends the last chunk
      WriteInPieces(x.socket, held + chunks, 4);
      held = "\n";
      if (!seen_message[i].WaitFor(kPatience)) {
        ADD_FAILURE() << "the client did not see message " << i << " while the stream was open";
        break;
      }
    }
    seen.server_ended = true;
    return false;
  });
  HttpResponse error;
  Status s = ReadEventStream(
      server.address(), "/v1/subscribe", {},
      [&](const SseMessage& m) {
        std::lock_guard lock(seen.mu);
        seen.messages.push_back(m);
        seen.after_end.push_back(seen.server_ended.load());
        seen_message[seen.messages.size() - 1].Set();
        return seen.messages.size() < kMessages.size();
      },
      &error);
  EXPECT_TRUE(s.ok()) << s.ToString();
  ExpectAllSeenInTime(seen);
}

TEST(EventStreamTest, AStreamUpToTheEndOfTheConnectionLikeTimetrailServe) {
  Seen seen;
  Flag all_seen;
  TestServer server([&](Exchange& x) {
    std::string all;
    for (const std::string& text : kMessageTexts) all += text;
    WriteInPieces(
        x.socket,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n" + all, 9);
    EXPECT_TRUE(all_seen.WaitFor(kPatience));
    seen.server_ended = true;
    return false;
  });
  HttpResponse error;
  Status s = ReadEventStream(
      server.address(), "/v1/subscribe", {},
      [&](const SseMessage& m) {
        std::lock_guard lock(seen.mu);
        seen.messages.push_back(m);
        seen.after_end.push_back(seen.server_ended.load());
        if (seen.messages.size() == kMessages.size()) all_seen.Set();
        return true;
      },
      &error);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("ended"), std::string::npos) << s.ToString();
  ExpectAllSeenInTime(seen);
}

TEST(EventStreamTest, AnErrorCommentEndsTheStreamWithItsReason) {
  TestServer server([](Exchange& x) {
    Write(x.socket, std::string(kStreamHead) +
                        OneBytePerChunk("id: 1\ndata: x\n\n: error unavailable: the store is "
                                        "closing\n\n"));
    std::this_thread::sleep_for(100ms);
    return false;
  });
  int messages = 0;
  HttpResponse error;
  Status s = ReadEventStream(
      server.address(), "/v1/subscribe", {},
      [&](const SseMessage&) {
        ++messages;
        return true;
      },
      &error);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("the server ended the event stream: unavailable: the store is "
                             "closing"),
            std::string::npos)
      << s.ToString();
  EXPECT_EQ(messages, 1);
}

TEST(EventStreamTest, AnAnswerOtherThan200IsReturnedWhole) {
  // Chunked, one byte per chunk, then with a length as timetrail serve answers.
  const std::string body = "{\"error\":{\"code\":\"unauthenticated\",\"message\":\"no token\"}}";
  TestServer server([&](Exchange& x) {
    std::string head = "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n";
    if (x.connection == 0) {
      WriteInPieces(x.socket,
                    head + "Transfer-Encoding: chunked\r\n\r\n" + OneBytePerChunk(body) +
                        std::string(kLastChunk),
                    6);
    } else {
      Write(x.socket, head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    }
    return true;
  });
  for (int i = 0; i < 2; ++i) {
    HttpResponse error;
    Status s = ReadEventStream(
        server.address(), "/v1/subscribe", {},
        [](const SseMessage&) {
          ADD_FAILURE() << "no message expected";
          return true;
        },
        &error);
    EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(error.status, 401);
    EXPECT_EQ(error.content_type, "application/json");
    EXPECT_EQ(error.body, body);
  }
}

}  // namespace
}  // namespace timetrail::cli
