#include "serve_client.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <cstring>

extern char** environ;

namespace bench {

std::unique_ptr<ServeProcess> ServeProcess::Start(const std::string& binary,
                                                  const std::string& data,
                                                  const std::string& log_path, std::string* error,
                                                  const std::vector<std::string>& extra_args) {
  int out[2];
  if (pipe(out) != 0) {
    *error = std::string("pipe: ") + std::strerror(errno);
    return nullptr;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> args = {binary, "serve", "--data", data, "--listen", "127.0.0.1:0"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  if (rc != 0) {
    close(out[0]);
    *error = "cannot run " + binary + ": " + std::strerror(rc);
    return nullptr;
  }
  auto p = std::unique_ptr<ServeProcess>(new ServeProcess(pid));
  std::string line;
  char c = 0;
  while (read(out[0], &c, 1) == 1 && c != '\n') line.push_back(c);
  close(out[0]);
  const std::string marker = "listening on http://";
  auto at = line.find(marker);
  auto colon = line.rfind(':');
  if (at == std::string::npos || colon == std::string::npos || colon < at + marker.size()) {
    *error = "timetrail serve did not start (see " + log_path + ")";
    return nullptr;
  }
  p->host_ = line.substr(at + marker.size(), colon - at - marker.size());
  p->port_ = line.substr(colon + 1);
  return p;
}

int ServeProcess::Stop() {
  if (pid_ <= 0) return exit_status_;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return exit_status_;
}

HttpClient::HttpClient(std::string host, std::string port)
    : host_(std::move(host)), port_(std::move(port)), stream_(ioc_) {}

bool HttpClient::Request(boost::beast::http::verb verb, const std::string& target,
                         const std::string& body, int* status, std::string* answer,
                         std::string* error) {
  namespace http = boost::beast::http;
  boost::beast::error_code ec;
  if (!connected_) {
    boost::asio::ip::tcp::resolver resolver(ioc_);
    auto endpoints = resolver.resolve(host_, port_, ec);
    if (!ec) stream_.connect(endpoints, ec);
    if (ec) {
      *error = "connect to " + host_ + ":" + port_ + ": " + ec.message();
      return false;
    }
    stream_.socket().set_option(boost::asio::ip::tcp::no_delay(true));
    connected_ = true;
  }
  http::request<http::string_body> req{verb, target, 11};
  req.set(http::field::host, host_);
  req.keep_alive(true);
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
  }
  http::write(stream_, req, ec);
  http::response<http::string_body> res;
  if (!ec) http::read(stream_, buffer_, res, ec);
  if (ec) {
    *error = std::string(http::to_string(verb)) + " " + target + ": " + ec.message();
    Close();
    return false;
  }
  if (!res.keep_alive()) Close();
  *status = static_cast<int>(res.result_int());
  *answer = std::move(res.body());
  return true;
}

void HttpClient::Close() {
  boost::beast::error_code ignored;
  stream_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
  stream_.close();
  buffer_.clear();
  connected_ = false;
}

}  // namespace bench
