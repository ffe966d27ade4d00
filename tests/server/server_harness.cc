#include "server/server_harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "support/store_helpers.h"

namespace timetrail::testing {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

namespace {

std::vector<char*> Argv(std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return argv;
}

}  // namespace

ServerProcess::ServerProcess(const std::string& data_dir, const std::vector<std::string>& extra,
                             const std::vector<std::string>& env) {
  std::vector<std::string> args = {TIMETRAIL_SERVE_BIN, "serve"};
  if (!data_dir.empty()) {
    // Against PostgreSQL (TIMETRAIL_TEST_STORE=postgresql) the directory names a schema, so the
    // same suites test both backends and a restart on the directory reopens the same store.
    Options options;
    const std::string location = StoreLocation(data_dir, options);
    if (location == data_dir) {
      args.insert(args.end(), {"--data", data_dir});
    } else {
      args.insert(args.end(), {"--store", location, "--store-schema", options.postgres_schema});
    }
  }
  bool has_listen = false;
  for (const auto& a : extra) has_listen = has_listen || a == "--listen" || a == "--config";
  for (const auto& e : env) has_listen = has_listen || e.rfind("TIMETRAIL_LISTEN=", 0) == 0;
  if (!has_listen) args.insert(args.end(), {"--listen", "127.0.0.1:0"});
  args.insert(args.end(), extra.begin(), extra.end());
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  pid_ = fork();
  if (pid_ == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    for (const auto& e : env) putenv(strdup(e.c_str()));
    auto argv = Argv(args);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  out_fd_ = fds[0];
  std::string line;
  char c;
  while (read(out_fd_, &c, 1) == 1 && c != '\n') line.push_back(c);
  // "listening on http://HOST:PORT" (any host: a test may listen on 0.0.0.0).
  std::size_t colon = line.rfind(':');
  if (line.rfind("listening on ", 0) == 0 && colon != std::string::npos) {
    port_ = static_cast<std::uint16_t>(std::stoi(line.substr(colon + 1)));
  }
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) Stop(SIGKILL);
}

int ServerProcess::Stop(int sig) {
  if (pid_ <= 0) return -1;
  kill(pid_, sig);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  if (out_fd_ >= 0) close(out_fd_);
  out_fd_ = -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::pair<int, std::string> RunServeBinary(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {TIMETRAIL_SERVE_BIN};
  args.insert(args.end(), extra.begin(), extra.end());
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    auto argv = Argv(args);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

nlohmann::json HttpResult::json() const {
  return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
}

std::string HttpResult::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

HttpClient::HttpClient(std::uint16_t port) : port_(port) {}

bool HttpClient::Connect() {
  stream_.emplace(ioc_);
  beast::error_code ec;
  stream_->socket().connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port_), ec);
  if (ec) {
    stream_.reset();
    return false;
  }
  return true;
}

HttpResult HttpClient::Get(const std::string& target,
                           const std::vector<std::pair<std::string, std::string>>& headers) {
  return Request("GET", target, "", headers);
}

HttpResult HttpClient::Post(const std::string& target, const std::string& body,
                            const std::vector<std::pair<std::string, std::string>>& headers) {
  auto h = headers;
  bool has_ct = false;
  for (auto& [k, v] : h) has_ct = has_ct || k == "Content-Type";
  if (!has_ct) h.emplace_back("Content-Type", "application/json");
  return Request("POST", target, body, h);
}

HttpResult HttpClient::Request(const std::string& method, const std::string& target,
                               const std::string& body,
                               const std::vector<std::pair<std::string, std::string>>& headers) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool fresh = false;
    if (!stream_) {
      if (!Connect()) return HttpResult{};
      fresh = true;
    }
    http::request<http::string_body> req(http::string_to_verb(method), target, 11);
    req.set(http::field::host, "127.0.0.1");
    for (auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    req.keep_alive(true);
    beast::error_code ec;
    http::write(*stream_, req, ec);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    if (!ec) http::read(*stream_, buffer, res, ec);
    if (ec) {
      stream_.reset();
      if (fresh) return HttpResult{};
      continue;  // the server closed an idle keep-alive connection: retry once on a new one
    }
    HttpResult r;
    r.status = static_cast<int>(res.result_int());
    r.body = res.body();
    for (auto& f : res) {
      std::string name(f.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers[name] = std::string(f.value());
    }
    if (!res.keep_alive()) stream_.reset();
    return r;
  }
  return HttpResult{};
}

SseClient::SseClient(std::uint16_t port, const std::string& target,
                     const std::vector<std::pair<std::string, std::string>>& headers) {
  fd_ = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{60, 0};
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
  std::string req =
      "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n";
  for (auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  req += "\r\n";
  if (send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return;
  char buf[4096];
  while (buffer_.find("\r\n\r\n") == std::string::npos) {
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return;
    buffer_.append(buf, static_cast<std::size_t>(n));
  }
  std::size_t end = buffer_.find("\r\n\r\n");
  std::string head = buffer_.substr(0, end);
  buffer_.erase(0, end + 4);
  status_ = std::stoi(head.substr(9, 3));
  std::string lower = head;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::size_t ct = lower.find("content-type: ");
  if (ct != std::string::npos) {
    content_type_ = head.substr(ct + 14, head.find("\r\n", ct) - ct - 14);
  }
  if (status_ != 200) {
    // An error answer has a Content-Length body; read it all.
    std::size_t cl = lower.find("content-length: ");
    std::size_t len = cl == std::string::npos ? 0 : std::stoul(lower.substr(cl + 16));
    while (buffer_.size() < len) {
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      buffer_.append(buf, static_cast<std::size_t>(n));
    }
  }
}

SseClient::~SseClient() { Close(); }

void SseClient::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

std::optional<SseEvent> SseClient::Next() {
  char buf[65536];
  while (true) {
    std::size_t end = buffer_.find("\n\n");
    while (end != std::string::npos) {
      std::string block = buffer_.substr(0, end);
      buffer_.erase(0, end + 2);
      SseEvent ev;
      bool has_data = false;
      std::size_t start = 0;
      while (start <= block.size()) {
        std::size_t nl = block.find('\n', start);
        std::string line =
            block.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
        if (line.rfind(":", 0) == 0) {
          comments_.push_back(line);
        } else if (line.rfind("id: ", 0) == 0) {
          ev.id = std::stoull(line.substr(4));
        } else if (line.rfind("event: ", 0) == 0) {
          ev.event = line.substr(7);
        } else if (line.rfind("data: ", 0) == 0) {
          ev.data = line.substr(6);
          has_data = true;
        }
        if (nl == std::string::npos) break;
        start = nl + 1;
      }
      if (has_data) return ev;
      end = buffer_.find("\n\n");
    }
    if (fd_ < 0) return std::nullopt;
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return std::nullopt;
    buffer_.append(buf, static_cast<std::size_t>(n));
  }
}

std::string UrlEncode(const std::string& s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace timetrail::testing
