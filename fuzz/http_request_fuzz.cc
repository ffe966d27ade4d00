// Raw bytes on a connection to the real HTTP server (Boost.Beast parser, limits, routing,
// keep-alive, pipelining, subscriptions): the server must answer or close, never crash or
// wedge. Each input is written to a fresh loopback connection, the write side is shut, and the
// answer is read until the server closes (or stays quiet for a moment, as an open subscription
// does). After each of the first 16 inputs and every 64th after, a /healthz request on a new connection must still get 200.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>

#include "fuzz_store.h"
#include "server/http_server.h"

namespace {

std::uint16_t ServerPort() {
  static std::uint16_t port = [] {
    timetrail::server::ServerOptions options;
    options.port = 0;
    options.request_timeout_ms = 1000;
    options.keepalive_ms = 200;
    options.max_body_bytes = 1 << 20;
    options.worker_threads = 4;
    static auto* server = new timetrail::server::HttpServer(timetrail::fuzz::FuzzStore(), options);
    if (!server->Start().ok()) std::abort();
    static std::thread runner([] { server->Run(); });
    // Registered after the store was opened, so it runs before the store closes.
    std::atexit([] {
      server->Stop();
      runner.join();
      delete server;
    });
    std::string address = server->address();
    return static_cast<std::uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
  }();
  return port;
}

// Sends "bytes", half-closes, and returns what came back before the server closed or was quiet
// for "quiet_ms".
std::string Exchange(std::string_view bytes, int quiet_ms) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) std::abort();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(ServerPort());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) std::abort();
  timeval tv{quiet_ms / 1000, (quiet_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may close early, e.g. on a header it refuses
    sent += static_cast<std::size_t>(n);
  }
  shutdown(fd, SHUT_WR);
  std::string answer;
  char buf[4096];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    answer.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  return answer;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static std::uint64_t inputs = 0;
  (void)Exchange(std::string_view(reinterpret_cast<const char*>(data), size), 300);
  if (++inputs % 64 == 0 || inputs <= 16) {
    std::string health = Exchange("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                                  5000);
    if (health.rfind("HTTP/1.1 200", 0) != 0) {
      std::fprintf(stderr, "the server stopped answering /healthz: %s\n", health.c_str());
      std::abort();
    }
  }
  return 0;
}
