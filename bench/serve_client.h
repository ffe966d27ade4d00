// The real `timetrail serve` as a child process, and a keep-alive HTTP client for it: what the
// benchmarks that go through HTTP share.
#pragma once

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http/verb.hpp>
#include <memory>
#include <string>
#include <vector>

namespace bench {

// `timetrail serve` on a data directory, on a free loopback port; stopped with SIGTERM.
class ServeProcess {
 public:
  // Starts `binary serve --data data --listen 127.0.0.1:0 extra_args...` and waits for its
  // "listening on http://HOST:PORT" line; nullptr with *error set when it does not come up.
  // The server's own log goes to "log_path".
  static std::unique_ptr<ServeProcess> Start(const std::string& binary, const std::string& data,
                                             const std::string& log_path, std::string* error,
                                             const std::vector<std::string>& extra_args = {});
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;
  ~ServeProcess() { Stop(); }

  // Stops the server and returns its exit status (0 after a clean shutdown).
  int Stop();

  const std::string& host() const { return host_; }
  const std::string& port() const { return port_; }
  pid_t pid() const { return pid_; }

 private:
  explicit ServeProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  int exit_status_ = -1;
  std::string host_, port_;
};

// One keep-alive HTTP/1.1 connection (Boost.Beast, synchronous), reconnecting when the server
// closes it. Not thread-safe: one per client thread.
class HttpClient {
 public:
  HttpClient(std::string host, std::string port);

  // Sends one request ("body" empty: none) and reads the answer; false with *error set when
  // the request fails at the transport level.
  bool Request(boost::beast::http::verb verb, const std::string& target, const std::string& body,
               int* status, std::string* answer, std::string* error);
  bool Get(const std::string& target, int* status, std::string* answer, std::string* error) {
    return Request(boost::beast::http::verb::get, target, "", status, answer, error);
  }

 private:
  void Close();

  std::string host_, port_;
  boost::asio::io_context ioc_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  bool connected_ = false;
};

}  // namespace bench
