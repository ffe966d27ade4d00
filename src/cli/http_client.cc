#include "cli/http_client.h"

#include <array>
#include <chrono>
#include <limits>
#include <optional>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <openssl/ssl.h>

#include "server/tls_error.h"

namespace timetrail::cli {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// Long enough for a verify of a large store; a dead server is noticed at connect.
constexpr auto kRequestTimeout = std::chrono::seconds(600);
constexpr auto kConnectTimeout = std::chrono::seconds(10);

Status Unreachable(const ServerAddress& a, const beast::error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category()) {
    std::string why = server::TlsErrorReason(ec);
    return Status::Unavailable(
        "TLS with the timetrail server at " + a.ToString() + " failed: " + why +
        (why.find("certificate") != std::string::npos
             ? std::string(" (the server's certificate could not be verified against ") +
                   (a.ca_file.empty() ? "the system's certificate authorities"
                                      : "--cacert '" + a.ca_file + "'") +
                   "; pass the CA that signed it with --cacert)"
             : std::string()));
  }
  if (!a.tls && ec == http::error::end_of_stream) {
    return Status::Unavailable("the timetrail server at " + a.ToString() +
                               " closed the connection without answering (if it serves HTTPS, "
                               "use https://" +
                               a.host + ":" + a.port + ")");
  }
  return Status::Unavailable("cannot reach the timetrail server at " + a.ToString() + ": " +
                             ec.message() +
                             " (is `timetrail serve` running? pass --server URL or --data DIR)");
}

// One connection to the server, plain or TLS, used synchronously. Visit() hands the stream to
// a generic function, so every read and write is written once for both.
class Channel {
 public:
  explicit Channel(asio::io_context& ioc) : ioc_(ioc) {}

  Status Connect(const ServerAddress& a, std::chrono::seconds timeout) {
    beast::error_code ec;
    tcp::resolver resolver(ioc_);
    auto endpoints = resolver.resolve(a.host, a.port, ec);
    if (ec) return Unreachable(a, ec);
    if (!a.tls) {
      plain_.emplace(ioc_);
      plain_->expires_after(timeout);
      plain_->connect(endpoints, ec);
      if (ec) return Unreachable(a, ec);
      return Status::Ok();
    }
    tls_context_.emplace(asio::ssl::context::tls_client);
    if (a.ca_file.empty()) {
      tls_context_->set_default_verify_paths(ec);
    } else {
      tls_context_->load_verify_file(a.ca_file, ec);
    }
    if (ec) {
      return Status::InvalidArgument(
          "--cacert '" + a.ca_file +
          "': cannot load certificate authorities from it: " + ec.message());
    }
    tls_.emplace(ioc_, *tls_context_);
    tls_->set_verify_mode(asio::ssl::verify_peer);
    tls_->set_verify_callback(asio::ssl::host_name_verification(a.host));
    // Server Name Indication, for servers behind a proxy that picks a certificate by name.
    SSL_set_tlsext_host_name(tls_->native_handle(), a.host.c_str());
    beast::get_lowest_layer(*tls_).expires_after(timeout);
    beast::get_lowest_layer(*tls_).connect(endpoints, ec);
    if (!ec) tls_->handshake(asio::ssl::stream_base::client, ec);
    if (ec) return Unreachable(a, ec);
    return Status::Ok();
  }

  beast::tcp_stream& Tcp() { return tls_ ? beast::get_lowest_layer(*tls_) : *plain_; }

  template <class F>
  decltype(auto) Visit(F&& f) {
    if (tls_) return f(*tls_);
    return f(*plain_);
  }

  ~Channel() {
    if (!plain_ && !tls_) return;
    beast::error_code ec;
    Tcp().socket().shutdown(tcp::socket::shutdown_both, ec);
  }

 private:
  asio::io_context& ioc_;
  std::optional<beast::tcp_stream> plain_;
  std::optional<asio::ssl::context> tls_context_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
};

// A request with the fields every request of the CLI carries, and the caller's.
template <class Body>
http::request<Body> MakeRequest(http::verb method, std::string_view target, const ServerAddress& a,
                                std::string_view accept, const Headers& headers) {
  http::request<Body> req{method, std::string(target), 11};
  req.set(http::field::host, a.host + ":" + a.port);
  req.set(http::field::user_agent, "timetrail-cli");
  req.set(http::field::accept, std::string(accept));
  for (const auto& [name, value] : headers) req.set(name, value);
  return req;
}

HttpResponse ToResponse(http::response<http::string_body>&& res) {
  HttpResponse out;
  out.status = static_cast<int>(res.result_int());
  out.content_type = std::string(res[http::field::content_type]);
  for (const auto& field : res) {
    out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  out.body = std::move(res.body());
  return out;
}

}  // namespace

Result<ServerAddress> ParseServerUrl(std::string_view url) {
  std::string_view rest = url;
  ServerAddress a;
  if (rest.starts_with("https://")) {
    a.tls = true;
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  }
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.empty() || rest.find('/') != std::string_view::npos) {
    return Status::InvalidArgument("--server must look like http://HOST:PORT, got '" +
                                   std::string(url) + "'");
  }
  std::size_t colon = rest.rfind(':');
  if (rest.front() == '[') {  // [v6]:port
    std::size_t close = rest.find(']');
    if (close == std::string_view::npos) {
      return Status::InvalidArgument("--server: unterminated '[' in '" + std::string(url) + "'");
    }
    a.host = std::string(rest.substr(1, close - 1));
    colon = rest.size() > close + 1 && rest[close + 1] == ':' ? close + 1 : std::string_view::npos;
  } else {
    a.host = std::string(rest.substr(0, colon));
  }
  a.port = colon == std::string_view::npos ? (a.tls ? "443" : "80")
                                           : std::string(rest.substr(colon + 1));
  bool digits = !a.port.empty() && a.port.size() <= 5;
  for (char c : a.port) digits = digits && c >= '0' && c <= '9';
  if (a.host.empty() || !digits || std::stoul(a.port) > 65535) {
    return Status::InvalidArgument("--server must look like http://HOST:PORT, got '" +
                                   std::string(url) + "'");
  }
  return a;
}

std::string UrlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

struct HttpConnection::Impl {
  ServerAddress address;
  asio::io_context ioc;
  std::optional<Channel> stream;
  beast::flat_buffer buffer;

  Status Connect() {
    stream.reset();
    buffer.clear();
    stream.emplace(ioc);
    Status s = stream->Connect(address, kConnectTimeout);
    if (!s.ok()) stream.reset();
    return s;
  }
};

HttpConnection::HttpConnection(ServerAddress address) : impl_(std::make_unique<Impl>()) {
  impl_->address = std::move(address);
}

HttpConnection::~HttpConnection() = default;

Result<HttpResponse> HttpConnection::Request(std::string_view method, std::string_view target,
                                             std::string_view body, const Headers& headers) {
  auto req = MakeRequest<http::string_body>(
      http::string_to_verb(beast::string_view(method.data(), method.size())), target,
      impl_->address, "application/json", headers);
  if (method == "POST") req.set(http::field::content_type, "application/json");
  req.body() = std::string(body);
  req.keep_alive(true);
  req.prepare_payload();

  // A kept-alive connection may have been closed by the server while idle; then the request
  // is sent again once on a new connection. Nothing was processed in that case, because the
  // server closes idle connections only between requests (and no byte of an answer came).
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool reused = impl_->stream.has_value();
    if (!reused) TT_RETURN_IF_ERROR(impl_->Connect());
    beast::error_code ec;
    impl_->stream->Tcp().expires_after(kRequestTimeout);
    // The parser takes the body in whichever framing the server (or a proxy in front of it)
    // chose: Content-Length, chunked, or up to the end of the connection.
    http::response_parser<http::string_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    impl_->stream->Visit([&](auto& stream) {
      http::write(stream, req, ec);
      if (!ec) http::read(stream, impl_->buffer, parser, ec);
    });
    if (ec) {
      impl_->stream.reset();
      bool stale = ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
                   ec == asio::error::broken_pipe || ec == asio::ssl::error::stream_truncated;
      if (!parser.got_some()) {
        if (reused && stale) continue;
        return Unreachable(impl_->address, ec);
      }
      return Status::Unavailable("the connection to the timetrail server at " +
                                 impl_->address.ToString() + " broke during the answer: " +
                                 (ec.category() == asio::error::get_ssl_category()
                                      ? server::TlsErrorReason(ec)
                                      : ec.message()));
    }
    bool keep_alive = parser.get().keep_alive();
    HttpResponse out = ToResponse(parser.release());
    if (!keep_alive) impl_->stream.reset();
    return out;
  }
  return Status::Unavailable("the timetrail server at " + impl_->address.ToString() +
                             " closed the connection twice; retry");
}

namespace {

template <class Stream>
Status FollowEventStream(Stream& stream, const ServerAddress& address, std::string_view target,
                         const Headers& headers,
                         const std::function<bool(const SseMessage&)>& on_message,
                         HttpResponse* error_response) {
  beast::error_code ec;
  auto req =
      MakeRequest<http::empty_body>(http::verb::get, target, address, "text/event-stream", headers);
  http::write(stream, req, ec);
  if (ec) return Unreachable(address, ec);

  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  // A subscription has no end. (Not boost::none: Boost 1.74 compares a Content-Length with it
  // as if it were a limit below every length.)
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  http::read_header(stream, buffer, parser, ec);
  if (ec) return Unreachable(address, ec);
  if (parser.get().result() != http::status::ok) {
    http::response_parser<http::string_body> whole(std::move(parser));
    whole.body_limit(std::numeric_limits<std::uint64_t>::max());
    http::read(stream, buffer, whole, ec);
    if (ec) return Unreachable(address, ec);
    *error_response = ToResponse(whole.release());
    return Status::Ok();
  }

  // The body as it arrives, piece by piece, into the SSE parser: not eager, so that each
  // read_some hands over the body bytes it parsed before it waits for more (a chunk's data
  // before the next chunk's header, which may come only with the next event).
  parser.eager(false);
  std::optional<Status> stopped;
  auto deliver = [&](const SseMessage& m) {
    if (on_message(m)) return true;
    stopped = Status::Ok();
    return false;
  };
  // The server explains an ending stream in a comment ("error ...").
  auto comment = [&](std::string_view text) {
    if (!text.starts_with("error ")) return true;
    stopped =
        Status::Unavailable("the server ended the event stream: " + std::string(text.substr(6)));
    return false;
  };
  SseParser sse;
  std::array<char, 16384> piece;
  while (!parser.is_done()) {
    parser.get().body().data = piece.data();
    parser.get().body().size = piece.size();
    http::read_some(stream, buffer, parser, ec);
    if (ec == http::error::need_buffer) ec = {};
    std::size_t n = piece.size() - parser.get().body().size;
    if (n > 0 && !sse.Feed(std::string_view(piece.data(), n), deliver, comment)) {
      return *stopped;
    }
    if (ec) {
      return Status::Unavailable("the event stream from " + address.ToString() +
                                 " ended: " + ec.message());
    }
  }
  return Status::Unavailable("the event stream from " + address.ToString() +
                             " ended: the server closed it");
}

}  // namespace

Status ReadEventStream(const ServerAddress& address, std::string_view target,
                       const Headers& headers,
                       const std::function<bool(const SseMessage&)>& on_message,
                       HttpResponse* error_response) {
  asio::io_context ioc;
  Channel channel(ioc);
  TT_RETURN_IF_ERROR(channel.Connect(address, kConnectTimeout));
  channel.Tcp().expires_never();  // a subscription waits for events as long as it takes
  return channel.Visit([&](auto& socket) {
    return FollowEventStream(socket, address, target, headers, on_message, error_response);
  });
}

}  // namespace timetrail::cli
