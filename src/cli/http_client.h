// A small synchronous HTTP/1.1 client for the CLI's server mode: plain requests over one
// keep-alive connection, and a reader for server-sent events (GET /v1/subscribe).
#ifndef TIMETRAIL_CLI_HTTP_CLIENT_H_
#define TIMETRAIL_CLI_HTTP_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/sse_parser.h"
#include "timetrail/status.h"

namespace timetrail::cli {

using Headers = std::vector<std::pair<std::string, std::string>>;

// Intentionally copyable.
struct HttpResponse {
  int status = 0;
  std::string body;
  std::string content_type;
  Headers headers;  // names as the server sent them
};

// Where the server listens. Intentionally copyable.
struct ServerAddress {
  std::string host;
  std::string port;
  bool tls = false;  // https: the server's certificate is verified, host name included
  // PEM file of the certificate authorities to trust for https; empty: the system's.
  std::string ca_file;
  // "http://HOST:PORT", for messages.
  std::string ToString() const { return (tls ? "https://" : "http://") + host + ":" + port; }
};

// Accepts "http://HOST:PORT[/]", "https://HOST:PORT", "HOST:PORT", or a URL without a port
// (80, or 443 for https). kInvalidArgument names what is wrong.
Result<ServerAddress> ParseServerUrl(std::string_view url);

// Percent-encodes one path segment or query value: every byte except A-Z a-z 0-9 - . _ ~
// ("/" becomes "%2F", as the API wants inside a {stream} segment).
std::string UrlEncode(std::string_view text);

// One keep-alive connection, opened on first use and reopened when the server closed it.
// Not thread-safe.
class HttpConnection {
 public:
  explicit HttpConnection(ServerAddress address);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Sends one request and reads the whole response, whether its body comes with a
  // Content-Length, chunked (Transfer-Encoding: chunked, as reverse proxies may send it), or
  // until the server closes the connection. A POST body is sent as application/json.
  // kUnavailable when the server cannot be reached or the connection breaks (the message names
  // the address); any HTTP status is a successful call.
  Result<HttpResponse> Request(std::string_view method, std::string_view target,
                               std::string_view body, const Headers& headers);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Opens GET "target" as an event stream on its own connection and calls "on_message" for every
// message as soon as its bytes have arrived, until it returns false (then returns OK) or the
// stream ends (kUnavailable; also when the server explains the end in a ": error ..."
// comment). When the server answers with anything but 200, returns OK and sets
// "*error_response" to it. The body may come chunked, with a length, or until the connection
// closes.
Status ReadEventStream(const ServerAddress& address, std::string_view target,
                       const Headers& headers,
                       const std::function<bool(const SseMessage&)>& on_message,
                       HttpResponse* error_response);

}  // namespace timetrail::cli

#endif  // TIMETRAIL_CLI_HTTP_CLIENT_H_
