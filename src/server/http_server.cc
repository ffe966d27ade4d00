#include "server/http_server.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "server/api.h"
#include "server/tls_error.h"
#include "subscribe/hub.h"

namespace timetrail::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// What the server needs of every connection, whatever its transport.
class Connection {
 public:
  virtual ~Connection() = default;
  // Graceful shutdown: an idle connection closes now; a busy one after its reply; a
  // subscription at its next step.
  virtual void Shutdown() = 0;
};

class HttpServer::Impl {
 public:
  Impl(EventStore* store, const ServerOptions& options)
      : store_(store),
        options_(options),
        hub_(store),
        api_(store, &hub_, &metrics_),
        ioc_(static_cast<int>(options.io_threads)),
        acceptor_(ioc_),
        signals_(ioc_),
        pool_(options.worker_threads) {
    for (const ApiExtension& extension : options.extensions) api_.Extend(extension);
    api_.SetBackupDirectory(options.backup_dir);
  }

  ~Impl() { pool_.join(); }

  Status Start();
  void Run();
  void Stop();
  void DoAccept();

  void Register(Connection* s, std::weak_ptr<Connection> w) {
    std::lock_guard<std::mutex> lock(mu_);
    sessions_.emplace(s, std::move(w));
  }
  void Unregister(Connection* s) {
    std::lock_guard<std::mutex> lock(mu_);
    sessions_.erase(s);
  }

  // Declared before the io_context: sessions still queued in it when it is destroyed use
  // these from their destructors.
  EventStore* store_;
  ServerOptions options_;
  Metrics metrics_;
  subscribe::SubscriptionHub hub_;
  Api api_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> connections_{0};
  std::atomic<std::size_t> subscriptions_{0};
  std::string address_;
  std::mutex mu_;
  std::map<Connection*, std::weak_ptr<Connection>> sessions_;  // GUARDED_BY(mu_)
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  asio::signal_set signals_;
  asio::thread_pool pool_;
  std::optional<asio::ssl::context> tls_;  // set when serving HTTPS
};

// One connection over "Stream": beast::tcp_stream for HTTP, TlsStream for HTTPS. Every member
// is touched only on the connection's strand, except "woken_" (set by the hub on the writer
// thread) and the cursor (used by one pool task at a time).
template <class Stream>
class Session final : public Connection, public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  Session(Stream&& stream, HttpServer::Impl* server, bool over_limit)
      : server_(server),
        stream_(std::move(stream)),
        timer_(stream_.get_executor()),
        read_timer_(stream_.get_executor()),
        over_limit_(over_limit) {
    server_->connections_.fetch_add(1);
    server_->metrics_.Connection(1);
  }
  ~Session() {
    if (request_in_flight_) server_->metrics_.InFlight(-1);
    if (counted_subscription_) server_->subscriptions_.fetch_sub(1);
    server_->Unregister(this);
    server_->connections_.fetch_sub(1);
    server_->metrics_.Connection(-1);
  }

  void Start() {
    server_->Register(this, this->weak_from_this());
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if constexpr (kTls) {
        // The handshake has the same deadline as a request: a client that connects and says
        // nothing is dropped, as on plain HTTP.
        self->Tcp().expires_after(std::chrono::milliseconds(self->opts().request_timeout_ms));
        self->handshaking_ = true;
        self->stream_.async_handshake(asio::ssl::stream_base::server, [self](beast::error_code ec) {
          self->handshaking_ = false;
          if (ec) return self->Close();  // not TLS, or untrusted
          self->Tcp().expires_never();
          self->Begin();
        });
      } else {
        self->Begin();
      }
    });
  }

  void Shutdown() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] {
      if (self->closed_) return;
      // A client still in the TLS handshake is waiting like an idle one: it need not delay
      // the stop until its deadline.
      if (self->reading_ || self->handshaking_) {
        self->Tcp().cancel();
      } else if (self->streaming_) {
        self->timer_.cancel();
        if (self->writing_) self->Tcp().cancel();
      }
    });
  }

 private:
  // The connection is ready for HTTP (after the TLS handshake, if any).
  void Begin() {
    if (over_limit_) {
      server_->metrics_.Rejected();
      SendError(ErrorResponse(503, "unavailable",
                              "the server has too many open connections (limit " +
                                  std::to_string(server_->options_.max_connections) +
                                  "); retry later"));
      return;
    }
    DoRead();
  }

  const ServerOptions& opts() const { return server_->options_; }
  // The TCP layer under the stream: deadlines, cancellation, the socket.
  beast::tcp_stream& Tcp() { return beast::get_lowest_layer(stream_); }

  void DoRead() {
    if (server_->stopping_) return Close();
    parser_.emplace();
    parser_->body_limit(opts().max_body_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(opts().max_header_bytes));
    // Our own timer rather than the stream's expiry: that one closes the socket, and a client
    // that sent part of a request deserves a 408 saying why.
    Tcp().expires_never();
    timed_out_ = false;
    read_start_ = Clock::now();
    reading_ = true;
    ArmReadTimer();
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                              self->OnHeader(ec);
                            });
  }

  bool RequestStarted() const { return (parser_ && parser_->got_some()) || buffer_.size() > 0; }

  // One timer, two deadlines, both counted from the start of this read: the idle deadline
  // while no byte of a new request has arrived, then the deadline for the whole request (head
  // and body). A client that trickles a byte a second is cut off at the latter however
  // steadily it sends, because no read re-arms it. The timer wakes at the earlier deadline
  // that may apply and checks which one has passed.
  void ArmReadTimer() {
    Clock::time_point whole = read_start_ + std::chrono::milliseconds(opts().request_timeout_ms);
    Clock::time_point idle = read_start_ + std::chrono::milliseconds(opts().idle_timeout_ms);
    Clock::time_point next = idle;
    if (RequestStarted()) {
      next = whole;
    } else if (Clock::now() < whole) {
      next = std::min(idle, whole);
    }
    read_timer_.expires_at(next);
    read_timer_.async_wait([self = this->shared_from_this(), whole, idle](beast::error_code ec) {
      if (ec || !self->reading_ || self->closed_) return;
      Clock::time_point passed = self->RequestStarted() ? whole : idle;
      if (Clock::now() < passed) return self->ArmReadTimer();
      self->timed_out_ = true;
      beast::error_code ignored;
      self->Tcp().socket().cancel(ignored);
    });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    auto& req = parser_->get();
    if (beast::iequals(req[http::field::expect], "100-continue") && !parser_->is_done()) {
      // curl and others wait for this before sending a large body.
      auto msg = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
      asio::async_write(stream_, asio::buffer(*msg),
                        [self = this->shared_from_this(), msg](beast::error_code wec, std::size_t) {
                          if (wec) return self->Close();
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, std::size_t) { self->OnRead(ec); });
  }

  void OnReadError(beast::error_code ec) {
    reading_ = false;
    read_timer_.cancel();
    if (timed_out_) {
      if (parser_ && parser_->got_some()) {
        return SendError(ErrorResponse(408, "request_timeout",
                                       "the request was not received within " +
                                           std::to_string(opts().request_timeout_ms) + " ms"));
      }
      return Close();  // an idle keep-alive connection
    }
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset || ec == asio::error::eof) {
      return Close();
    }
    if (ec == http::error::body_limit) {
      return SendError(ErrorResponse(413, "too_large",
                                     "the request body exceeds the limit of " +
                                         std::to_string(opts().max_body_bytes) + " bytes"));
    }
    if (ec == http::error::header_limit) {
      return SendError(ErrorResponse(431, "too_large",
                                     "the request headers exceed the limit of " +
                                         std::to_string(opts().max_header_bytes) + " bytes"));
    }
    SendError(ErrorResponse(400, "invalid_argument", "malformed HTTP request: " + ec.message()));
  }

  void OnRead(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    reading_ = false;
    read_timer_.cancel();
    auto& req = parser_->get();
    ApiRequest api_req;
    api_req.method = std::string(req.method_string());
    api_req.target = std::string(req.target());
    api_req.content_type = std::string(req[http::field::content_type]);
    api_req.if_match = std::string(req[http::field::if_match]);
    api_req.if_none_match = std::string(req[http::field::if_none_match]);
    api_req.last_event_id = std::string(req["Last-Event-ID"]);
    api_req.authorization = std::string(req[http::field::authorization]);
    api_req.body = std::move(req.body());
    bool keep_alive = req.keep_alive();
    parser_.reset();
    request_in_flight_ = true;
    server_->metrics_.InFlight(1);
    Clock::time_point start = Clock::now();
    // The target is parsed and looked up once, here; the handler reuses the lookup.
    Api::Routed routed = server_->api_.RouteOf(api_req);
    switch (routed.runs) {
      case Runs::kQuick: {
        // Cheaper here than a hand-off to a worker and back (see Api::Placement).
        auto resp = std::make_shared<ApiResponse>(server_->api_.Handle(api_req, std::move(routed)));
        return OnHandled(resp, keep_alive, start);
      }
      case Runs::kAsync:
        return StartAsync(api_req, std::move(routed), keep_alive, start);
      case Runs::kOnWorker:
        break;
    }
    asio::post(server_->pool_, [self = this->shared_from_this(), api_req = std::move(api_req),
                                routed = std::move(routed), keep_alive, start,
                                guard = asio::make_work_guard(server_->ioc_)]() mutable {
      auto resp =
          std::make_shared<ApiResponse>(self->server_->api_.Handle(api_req, std::move(routed)));
      asio::post(self->stream_.get_executor(),
                 [self, resp, keep_alive, start] { self->OnHandled(resp, keep_alive, start); });
    });
  }

  // An append: checked here, on the I/O thread, and queued in the store; the store's
  // completion (on a store thread, once the write is durable or refused) posts the answer back
  // to this connection's strand. No thread waits for the fsync. The connection reads nothing
  // more until the answer is written, so it has one request in flight at most; its deadlines
  // are not running meanwhile (the read timer stopped with the read, and the write's deadline
  // starts with the write), so the answer is written exactly once, whenever the write lands.
  void StartAsync(const ApiRequest& request, Api::Routed routed, bool keep_alive,
                  Clock::time_point start) {
    // The work guard keeps Run() from returning while an append is in flight: a graceful stop
    // answers it (and the store has made it durable) before the server exits.
    server_->api_.HandleAsync(
        request, std::move(routed),
        [self = this->shared_from_this(), keep_alive, start,
         work = asio::make_work_guard(server_->ioc_)](ApiResponse response) mutable {
          auto resp = std::make_shared<ApiResponse>(std::move(response));
          auto executor = self->stream_.get_executor();
          // The session moves into the posted answer, and the guard is released here: the
          // store may destroy this completion later, on its own thread, when the server may be
          // gone (Run() returns once the io_context runs out of work), so by then it must hold
          // nothing of the server's.
          asio::post(executor, [self = std::move(self), resp, keep_alive, start] {
            self->OnHandled(resp, keep_alive, start);
          });
          work.reset();
        });
  }

  // Takes the shared response rather than a moved copy: moving the optional out trips GCC 12's
  // maybe-uninitialized false positive.
  void OnHandled(const std::shared_ptr<ApiResponse>& resp, bool keep_alive,
                 Clock::time_point start) {
    if (resp->subscribe) {
      RequestAnswered();
      return StartStream(*resp->subscribe);
    }
    Write(std::move(*resp), keep_alive && !server_->stopping_, start);
  }

  // The request read by OnRead (if any) has its answer: it no longer counts as in flight.
  void RequestAnswered() {
    if (!request_in_flight_) return;
    request_in_flight_ = false;
    server_->metrics_.InFlight(-1);
  }

  void SendError(ApiResponse resp) { Write(std::move(resp), false, Clock::now()); }

  // A response ready to send: its head, written here rather than by a beast::http::response,
  // whose header fields and serializer cost more allocations than the rest of a quick request,
  // and the body, sent after it as it is (stored event bytes are never copied again).
  struct Outgoing {
    std::string head;
    std::string body;
  };

  static void AppendHead(const ApiResponse& resp, bool keep_alive, std::string* head) {
    auto status = static_cast<http::status>(resp.status);
    head->reserve(160);
    *head += "HTTP/1.1 ";
    *head += std::to_string(resp.status);
    *head += ' ';
    beast::string_view reason = http::obsolete_reason(status);
    head->append(reason.data(), reason.size());
    *head += "\r\nServer: timetrail\r\nContent-Type: ";
    *head += resp.content_type;
    *head += "\r\n";
    for (const auto& [name, value] : resp.headers) {
      *head += name;
      *head += ": ";
      *head += value;
      *head += "\r\n";
    }
    // As beast's prepare_payload: no length for 1xx, 204 and 304, which have no body.
    if (!(resp.status < 200 || resp.status == 204 || resp.status == 304)) {
      *head += "Content-Length: ";
      *head += std::to_string(resp.body.size());
      *head += "\r\n";
    }
    if (!keep_alive) *head += "Connection: close\r\n";
    *head += "\r\n";
  }

  void Write(ApiResponse resp, bool keep_alive, Clock::time_point start) {
    auto out = std::make_shared<Outgoing>();
    AppendHead(resp, keep_alive, &out->head);
    out->body = std::move(resp.body);
    int status = resp.status;
    Tcp().expires_after(std::chrono::milliseconds(opts().request_timeout_ms));
    writing_ = true;
    std::array<asio::const_buffer, 2> buffers = {asio::buffer(out->head), asio::buffer(out->body)};
    asio::async_write(stream_, buffers,
                      [self = this->shared_from_this(), out, keep_alive, status, start](
                          beast::error_code ec, std::size_t) {
                        self->writing_ = false;
                        double secs = std::chrono::duration<double>(Clock::now() - start).count();
                        self->server_->metrics_.Record(status, secs);
                        self->RequestAnswered();
                        if (ec || !keep_alive) return self->Close();
                        self->DoRead();
                      });
  }

  // --- Server-sent events ------------------------------------------------------------------

  void StartStream(const SubscribeSpec& spec) {
    if (server_->subscriptions_.fetch_add(1) >= opts().max_subscriptions) {
      server_->subscriptions_.fetch_sub(1);
      server_->metrics_.Rejected();
      return SendError(ErrorResponse(503, "unavailable",
                                     "the server has too many open subscriptions (limit " +
                                         std::to_string(opts().max_subscriptions) +
                                         "); retry later"));
    }
    counted_subscription_ = true;
    streaming_ = true;
    cursor_ = std::make_unique<subscribe::LogCursor>(server_->store_, spec.from, spec.filter);
    std::weak_ptr<Session> weak = this->weak_from_this();
    watch_id_ = server_->hub_.Watch([weak](Position) {
      if (auto self = weak.lock()) {
        if (!self->woken_.exchange(true)) {
          asio::post(self->stream_.get_executor(), [self] { self->timer_.cancel(); });
        }
      }
    });
    watching_ = true;
    auto header = std::make_shared<std::string>(
        "HTTP/1.1 200 OK\r\nServer: timetrail\r\nContent-Type: text/event-stream\r\n"
        "Cache-Control: no-cache\r\nConnection: close\r\nX-Accel-Buffering: no\r\n\r\n"
        ": subscribed\n\n");
    WriteToSubscriber(std::move(header), [self = this->shared_from_this()] {
      self->WatchForClose();
      self->ReadPage();
    });
  }

  // The client sends nothing on a subscription; a read that completes means it went away.
  void WatchForClose() {
    stream_.async_read_some(asio::buffer(probe_),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec) return self->Close();
                              self->WatchForClose();
                            });
  }

  void ReadPage() {
    if (closed_) return;
    if (server_->stopping_) return Close();
    woken_.store(false);
    asio::post(server_->pool_, [self = this->shared_from_this(),
                                guard = asio::make_work_guard(server_->ioc_)] {
      auto page = std::make_shared<Result<std::vector<RecordedEvent>>>(self->cursor_->ReadNext());
      bool caught_up = self->cursor_->caught_up();
      asio::post(self->stream_.get_executor(),
                 [self, page, caught_up] { self->OnPage(std::move(*page), caught_up); });
    });
  }

  void OnPage(Result<std::vector<RecordedEvent>> page, bool caught_up) {
    if (closed_) return;
    if (!page.ok() && page.status().code() == StatusCode::kUnavailable) {
      // The database is away (restarting, failing over): the stream stays open and reads again
      // shortly, so subscribers ride out the outage. The comment tells the client why it waits.
      auto msg = std::make_shared<std::string>(": " + page.status().ToString() + "; retrying\n\n");
      WriteToSubscriber(std::move(msg), [self = this->shared_from_this()] {
        self->timer_.expires_after(std::chrono::milliseconds(500));
        self->timer_.async_wait([self](beast::error_code) { self->ReadPage(); });
      });
      return;
    }
    if (!page.ok()) {
      // Tell the client why the stream ends; it resumes with Last-Event-ID.
      auto msg = std::make_shared<std::string>(": error " + page.status().ToString() + "\n\n");
      asio::async_write(stream_, asio::buffer(*msg),
                        [self = this->shared_from_this(), msg](beast::error_code, std::size_t) {
                          self->Close();
                        });
      return;
    }
    if (page->empty()) {
      if (caught_up) return WaitForCommit();
      return ReadPage();  // a filtered scan found nothing in this stretch; keep going
    }
    auto text = std::make_shared<std::string>();
    for (const RecordedEvent& e : *page) {
      std::string json = EventJson(e);
      // Line breaks can only be whitespace between JSON tokens; SSE data must be one line.
      for (char& c : json) {
        if (c == '\n' || c == '\r') c = ' ';
      }
      *text += "id: " + std::to_string(e.position) + "\nevent: event\ndata: " + json + "\n\n";
    }
    WriteToSubscriber(std::move(text), [self = this->shared_from_this(), n = page->size()] {
      self->server_->metrics_.EventsSent(n);
      self->ReadPage();
    });
  }

  void WaitForCommit() {
    if (closed_) return;
    if (server_->stopping_) return Close();
    timer_.expires_after(std::chrono::milliseconds(opts().keepalive_ms));
    timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (self->closed_) return;
      if (self->server_->stopping_) return self->Close();
      if (ec == asio::error::operation_aborted) return self->ReadPage();
      self->WriteToSubscriber(std::make_shared<std::string>(": keepalive\n\n"),
                              [self] { self->WaitForCommit(); });
    });
    // A commit between the last read and arming the timer has set woken_ already.
    if (woken_.load() || server_->store_->LastPosition() >= cursor_->next_position()) {
      timer_.cancel();
    }
  }

  // Writes "text" to the subscriber under the write deadline (ArmSubscriberWrite), then runs
  // "then"; a write that fails drops the subscriber.
  template <typename Then>
  void WriteToSubscriber(std::shared_ptr<std::string> text, Then then) {
    writing_ = true;
    ArmSubscriberWrite();
    asio::async_write(stream_, asio::buffer(*text),
                      [self = this->shared_from_this(), text, then = std::move(then)](
                          beast::error_code ec, std::size_t) mutable {
                        self->writing_ = false;
                        if (ec) return self->DropSubscriber(ec);
                        self->Tcp().expires_never();
                        then();
                      });
  }

  // Every write to a subscriber carries a deadline: a client that stops reading fills the
  // socket's buffers, and without one the write (and the page it holds) would wait forever.
  void ArmSubscriberWrite() {
    Tcp().expires_after(std::chrono::milliseconds(opts().subscriber_write_timeout_ms));
  }

  void DropSubscriber(beast::error_code ec) {
    if (ec == beast::error::timeout) {
      std::cerr << "timetrail serve: dropped a subscriber that read nothing for "
                << opts().subscriber_write_timeout_ms << " ms (slow reader)" << std::endl;
    }
    Close();
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    if (counted_subscription_) {
      server_->subscriptions_.fetch_sub(1);
      counted_subscription_ = false;
    }
    if (watching_) {
      server_->hub_.Unwatch(watch_id_);
      watching_ = false;
    }
    timer_.cancel();
    read_timer_.cancel();
    beast::error_code ec;
    Tcp().socket().shutdown(tcp::socket::shutdown_send, ec);
    Tcp().socket().close(ec);
  }

  HttpServer::Impl* server_;
  Stream stream_;
  asio::steady_timer timer_;       // subscriptions: wake-up and keep-alive
  asio::steady_timer read_timer_;  // the deadline for receiving one request
  bool timed_out_ = false;
  Clock::time_point read_start_;
  bool counted_subscription_ = false;
  bool request_in_flight_ = false;  // read and not yet answered (Metrics::InFlight)
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool over_limit_ = false;
  bool reading_ = false;
  bool handshaking_ = false;  // TLS: the handshake is under way
  bool writing_ = false;
  bool streaming_ = false;
  bool closed_ = false;
  bool watching_ = false;
  std::uint64_t watch_id_ = 0;
  std::atomic<bool> woken_{false};
  std::unique_ptr<subscribe::LogCursor> cursor_;
  std::array<char, 64> probe_{};
};

namespace {

Status CheckReadable(const std::string& flag, const std::string& file) {
  if (::access(file.c_str(), R_OK) != 0) {
    return Status::InvalidArgument(flag + " '" + file +
                                   "': cannot read it: " + std::strerror(errno));
  }
  return Status::Ok();
}

// A TLS 1.2+ server context with the certificate chain and key of the options. Errors name
// the file and OpenSSL's reason.
Result<asio::ssl::context> MakeTlsContext(const ServerOptions& o) {
  if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
    return Status::InvalidArgument("give both --tls-cert and --tls-key, or neither");
  }
  TT_RETURN_IF_ERROR(CheckReadable("--tls-cert", o.tls_cert_file));
  TT_RETURN_IF_ERROR(CheckReadable("--tls-key", o.tls_key_file));
  asio::ssl::context ctx(asio::ssl::context::tls_server);
  ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                  asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                  asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  beast::error_code ec;
  ctx.use_certificate_chain_file(o.tls_cert_file, ec);
  if (ec) {
    return Status::InvalidArgument("--tls-cert '" + o.tls_cert_file +
                                   "': cannot load a PEM certificate: " + TlsErrorReason(ec));
  }
  ctx.use_private_key_file(o.tls_key_file, asio::ssl::context::pem, ec);
  if (ec) {
    return Status::InvalidArgument("--tls-key '" + o.tls_key_file +
                                   "': cannot load a PEM private key: " + TlsErrorReason(ec));
  }
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
    return Status::InvalidArgument("--tls-key '" + o.tls_key_file +
                                   "' does not belong to the certificate in --tls-cert '" +
                                   o.tls_cert_file + "'");
  }
  return ctx;
}

}  // namespace

Status CheckTlsFiles(const ServerOptions& options) {
  if (options.tls_cert_file.empty() && options.tls_key_file.empty()) return Status::Ok();
  return MakeTlsContext(options).status();
}

Status HttpServer::Impl::Start() {
  if (Status s = api_.ConfigureAuth(options_.auth); !s.ok()) return s;
  if (!options_.tls_cert_file.empty() || !options_.tls_key_file.empty()) {
    Result<asio::ssl::context> ctx = MakeTlsContext(options_);
    if (!ctx.ok()) return ctx.status();
    tls_.emplace(std::move(*ctx));
  }
  beast::error_code ec;
  auto addr = asio::ip::make_address(options_.host, ec);
  if (ec) {
    return Status::InvalidArgument("listen address '" + options_.host +
                                   "' is not an IP address: " + ec.message());
  }
  tcp::endpoint ep(addr, options_.port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::Unavailable("cannot listen on " + options_.host + ":" +
                               std::to_string(options_.port) + ": " + ec.message());
  }
  tcp::endpoint bound = acceptor_.local_endpoint(ec);
  std::string host = bound.address().to_string();
  if (bound.address().is_v6()) host = "[" + host + "]";
  address_ = host + ":" + std::to_string(bound.port());
  signals_.add(SIGINT);
  signals_.add(SIGTERM);
  signals_.async_wait([this](beast::error_code sec, int) {
    if (!sec) Stop();
  });
  DoAccept();
  return Status::Ok();
}

void HttpServer::Impl::DoAccept() {
  acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code ec, tcp::socket s) {
    if (ec) {
      if (!acceptor_.is_open() || stopping_) return;
      // Out of file descriptors and the like: keep serving the connections we have.
      DoAccept();
      return;
    }
    if (stopping_) return;
    bool over = connections_.load() >= options_.max_connections;
    if (tls_) {
      std::make_shared<Session<TlsStream>>(TlsStream(std::move(s), *tls_), this, over)->Start();
    } else {
      std::make_shared<Session<beast::tcp_stream>>(beast::tcp_stream(std::move(s)), this, over)
          ->Start();
    }
    DoAccept();
  });
}

void HttpServer::Impl::Run() {
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < options_.io_threads; ++i) {
    threads.emplace_back([this] { ioc_.run(); });
  }
  ioc_.run();
  for (auto& t : threads) t.join();
}

void HttpServer::Impl::Stop() {
  asio::post(ioc_, [this] {
    if (stopping_.exchange(true)) return;
    api_.Shutdown();
    beast::error_code ec;
    acceptor_.close(ec);
    signals_.cancel(ec);
    std::vector<std::shared_ptr<Connection>> live;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [p, w] : sessions_) {
        if (auto s = w.lock()) live.push_back(std::move(s));
      }
    }
    for (auto& s : live) s->Shutdown();
  });
}

HttpServer::HttpServer(EventStore* store, const ServerOptions& options)
    : impl_(std::make_unique<Impl>(store, options)) {}
HttpServer::~HttpServer() = default;
Status HttpServer::Start() { return impl_->Start(); }
std::string HttpServer::address() const { return impl_->address_; }
std::size_t HttpServer::active_tokens() const { return impl_->api_.tokens().ActiveCount(); }
void HttpServer::Run() { impl_->Run(); }
void HttpServer::Stop() { impl_->Stop(); }

}  // namespace timetrail::server
