// Test support for the server tests: a real `timetrail serve` process on a free port, a small
// synchronous HTTP/1.1 client over Boost.Beast, and a server-sent-events reader.
#ifndef TIMETRAIL_TESTS_SERVER_SERVER_HARNESS_H_
#define TIMETRAIL_TESTS_SERVER_SERVER_HARNESS_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <nlohmann/json.hpp>

namespace timetrail::testing {

// Runs `timetrail serve --data DIR --listen 127.0.0.1:0 [extra]` and reads the bound port from
// its first line of output. The destructor stops it (SIGTERM) if it still runs.
class ServerProcess {
 public:
  ServerProcess(const std::string& data_dir, const std::vector<std::string>& extra_args = {},
                const std::vector<std::string>& env = {});
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  bool started() const { return port_ != 0; }
  std::uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  // Sends "sig" and waits; returns the exit code (128+signal if killed by one).
  int Stop(int sig);

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::uint16_t port_ = 0;
};

// Runs the serve binary with "args" to completion; returns (exit code, stdout + stderr).
std::pair<int, std::string> RunServeBinary(const std::vector<std::string>& args);

struct HttpResult {
  int status = 0;  // 0: the connection failed
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  nlohmann::json json() const;
  std::string header(const std::string& lower_name) const;
};

// One keep-alive connection; reconnects when the server closed it. Not thread-safe.
class HttpClient {
 public:
  explicit HttpClient(std::uint16_t port);
  HttpResult Get(const std::string& target,
                 const std::vector<std::pair<std::string, std::string>>& headers = {});
  // Sends "body" with Content-Type: application/json unless "headers" name another.
  HttpResult Post(const std::string& target, const std::string& body,
                  const std::vector<std::pair<std::string, std::string>>& headers = {});
  HttpResult Request(const std::string& method, const std::string& target, const std::string& body,
                     const std::vector<std::pair<std::string, std::string>>& headers);

 private:
  bool Connect();
  std::uint16_t port_;
  boost::asio::io_context ioc_;
  std::optional<boost::beast::tcp_stream> stream_;
};

struct SseEvent {
  std::uint64_t id = 0;
  std::string event;
  std::string data;
};

// Reads a subscription. Blocking reads give up after 60 s so a broken server fails the test
// instead of hanging it.
class SseClient {
 public:
  SseClient(std::uint16_t port, const std::string& target,
            const std::vector<std::pair<std::string, std::string>>& headers = {});
  ~SseClient();
  SseClient(const SseClient&) = delete;
  SseClient& operator=(const SseClient&) = delete;

  int status() const { return status_; }
  const std::string& content_type() const { return content_type_; }
  const std::string& error_body() const { return buffer_; }
  // The next event; nullopt when the stream ended.
  std::optional<SseEvent> Next();
  // Comment lines seen so far (": keepalive", ...).
  const std::vector<std::string>& comments() const { return comments_; }
  void Close();

 private:
  int fd_ = -1;
  int status_ = 0;
  std::string content_type_;
  std::string buffer_;
  std::vector<std::string> comments_;
};

// Percent-encodes one path segment or query value.
std::string UrlEncode(const std::string& s);

}  // namespace timetrail::testing

#endif  // TIMETRAIL_TESTS_SERVER_SERVER_HARNESS_H_
