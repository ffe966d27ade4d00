// The asynchronous HTTP/1.1 server (Boost.Beast over Asio) that serves the API v1.
//
// A few io threads run the event loop: accept, read, write. Where a request is served is the
// route table's choice (Api::Placement): quick reads are answered on the io thread; appends are
// checked there and queued in the store, whose completion posts the answer back to the
// connection's strand once the write is durable; every other request goes to a worker pool,
// because it may block, and its answer is posted back the same way. Subscriptions stream
// server-sent events from a LogCursor woken by the SubscriptionHub. Keep-alive, limits on body and
// header size, connections and request read time. Stop() shuts down gracefully: no new connections,
// in-flight requests finish, subscriptions end, then Run() returns.
#ifndef TIMETRAIL_SERVER_HTTP_SERVER_H_
#define TIMETRAIL_SERVER_HTTP_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/api.h"
#include "timetrail/store.h"

namespace timetrail::server {

// Intentionally copyable.
struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 7070;  // 0 picks a free port
  std::size_t max_body_bytes = 20u << 20;
  std::size_t max_header_bytes = 16u << 10;
  std::size_t max_connections = 1024;
  std::uint32_t request_timeout_ms = 30000;  // time to read one whole request
  std::size_t io_threads = 2;
  std::size_t worker_threads = 64;     // concurrent blocking requests (reads, waits, admin)
  std::uint32_t keepalive_ms = 15000;  // SSE comment interval
  // A keep-alive connection that starts no new request within this time is closed quietly.
  std::uint32_t idle_timeout_ms = 30000;
  // A subscriber whose socket accepts none of a pending write within this time is dropped:
  // the server holds at most one page of events per subscriber, never a growing backlog.
  std::uint32_t subscriber_write_timeout_ms = 30000;
  std::size_t max_subscriptions = 1000;  // more are answered 503
  // Endpoints and /metrics lines of components running beside the server (e.g. a capture).
  std::vector<ApiExtension> extensions;
  AuthOptions auth;  // tokens required or not (docs/security.md)
  // Where POST /v1/backup may write (an absolute directory); empty: online backups are off.
  std::string backup_dir;
  // HTTPS: PEM files of the certificate chain and its private key; both empty for HTTP.
  std::string tls_cert_file;
  std::string tls_key_file;
};

// Whether the TLS files of "options" load and match (OK when neither is set); errors name the
// file and the reason. Start() checks the same; this lets a caller check before opening a store.
Status CheckTlsFiles(const ServerOptions& options);

class HttpServer {
 public:
  // REQUIRES: "store" outlives the server.
  HttpServer(EventStore* store, const ServerOptions& options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens. kUnavailable (with the reason) if the address cannot be used.
  Status Start();
  // The bound address, "127.0.0.1:7070"; valid after Start().
  std::string address() const;
  // Tokens that can authenticate now (neither revoked nor expired); valid after Start().
  std::size_t active_tokens() const;
  // Serves until Stop(); returns once every connection has closed.
  void Run();
  // Begins a graceful shutdown. Thread-safe; callable from a signal handler thread.
  void Stop();

  class Impl;  // internal; public only so the connection class in the .cc can name it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace timetrail::server

#endif  // TIMETRAIL_SERVER_HTTP_SERVER_H_
