// HTTPS: `timetrail serve --tls-cert --tls-key` against real clients. Certificates are made by
// the openssl command for each run: a test CA that signs the server's certificate (for
// 127.0.0.1 and localhost) and an unrelated CA. curl and the timetrail CLI succeed with the right
// CA and fail with the wrong one; plain HTTP and silent clients are turned away while the
// server keeps serving; subscriptions stream over TLS (curl, and `timetrail tail`, which a
// graceful stop ends); bad files are refused before the data directory is touched.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "server/server_harness.h"
#include "support/temp_dir.h"

namespace timetrail::testing {
namespace {

// Runs "command" with sh; returns (exit code, stdout + stderr).
std::pair<int, std::string> Shell(const std::string& command) {
  std::string out;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, "popen failed"};
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// A TCP connection to the server that sends nothing; -1 if it cannot connect.
int ConnectSilently(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const std::string d = dir_->path();
    // A CA, a server certificate it signs for 127.0.0.1 and localhost, and an unrelated CA.
    auto [code, out] = Shell(
        "cd " + d +
        " && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2"
        " -subj '/CN=timetrail test CA'"
        " && openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr"
        " -subj '/CN=localhost'"
        " && printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.cnf"
        " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial"
        " -out server.pem -days 2 -extfile san.cnf"
        " && openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 2"
        " -subj '/CN=some other CA'");
    ASSERT_EQ(code, 0) << out;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static std::string File(const std::string& name) { return dir_->Sub(name); }

  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(
        data_.Sub("data"), std::vector<std::string>{"--tls-cert", File("server.pem"), "--tls-key",
                                                    File("server.key"), "--request-timeout-ms",
                                                    "1500"});
    ASSERT_TRUE(server_->started());
    url_ = "https://127.0.0.1:" + std::to_string(server_->port());
  }

  std::pair<int, std::string> Curl(const std::string& args) {
    return Shell("curl -sS --max-time 10 " + args);
  }

  static TempDir* dir_;
  TempDir data_;
  std::unique_ptr<ServerProcess> server_;
  std::string url_;
};

TempDir* TlsTest::dir_ = nullptr;

TEST_F(TlsTest, CurlTrustsTheRightCertificateAndRefusesAWrongOne) {
  auto [ok, body] = Curl("--cacert " + File("ca.pem") + " " + url_ + "/healthz");
  EXPECT_EQ(ok, 0) << body;
  EXPECT_NE(body.find("\"status\":\"ok\""), std::string::npos) << body;
  // The certificate names localhost too.
  std::string by_name = "https://localhost:" + std::to_string(server_->port());
  EXPECT_EQ(Curl("--cacert " + File("ca.pem") + " " + by_name + "/healthz").first, 0);

  // Keep-alive: the second request reuses the first one's TLS connection.
  auto [twice, connects] = Curl("--cacert " + File("ca.pem") +
                                " -o /dev/null -o /dev/null -w '%{num_connects} ' " + url_ +
                                "/healthz " + url_ + "/v1/streams/t");
  EXPECT_EQ(twice, 0) << connects;
  EXPECT_EQ(connects, "1 0 ") << "connections opened per request";

  auto [wrong, why] = Curl("--cacert " + File("other.pem") + " " + url_ + "/healthz");
  EXPECT_EQ(wrong, 60) << why;  // curl: peer certificate cannot be authenticated
  auto [system, why2] = Curl(url_ + "/healthz");
  EXPECT_EQ(system, 60) << why2;

  // A write over TLS is a write.
  auto [posted, answer] =
      Curl("--cacert " + File("ca.pem") + " -H 'Content-Type: application/json' -d " +
           "'{\"events\":[{\"type\":\"$put\",\"data\":{\"n\":1}}]}' " + url_ + "/v1/streams/t");
  EXPECT_EQ(posted, 0) << answer;
  EXPECT_NE(answer.find("\"position\":1"), std::string::npos) << answer;
}

TEST_F(TlsTest, PlainHttpAndSilentClientsAreTurnedAwayWhileTheServerServes) {
  std::string plain = "http://127.0.0.1:" + std::to_string(server_->port());
  auto [code, out] = Curl(plain + "/healthz");
  EXPECT_NE(code, 0) << out;

  // A client that connects and never starts the handshake is dropped at the request deadline.
  int fd = ConnectSilently(server_->port());
  ASSERT_GE(fd, 0);
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 20000), 1) << "the silent connection was never closed";
  char c;
  EXPECT_EQ(::recv(fd, &c, 1, 0), 0) << "closed without a byte";
  ::close(fd);

  EXPECT_EQ(Curl("--cacert " + File("ca.pem") + " " + url_ + "/healthz").first, 0)
      << "the server keeps serving";
  EXPECT_EQ(server_->Stop(SIGTERM), 0) << "and stops cleanly";
}

TEST_F(TlsTest, AGracefulStopDropsAClientStuckInTheHandshake) {
  // A far request deadline: only the stop can end this connection.
  TempDir data;
  ServerProcess server(data.Sub("data"), {"--tls-cert", File("server.pem"), "--tls-key",
                                          File("server.key"), "--request-timeout-ms", "600000"});
  ASSERT_TRUE(server.started());
  int fd = ConnectSilently(server.port());
  ASSERT_GE(fd, 0);
  // Connections are accepted in order: once a later one is answered, the silent one is in its
  // handshake on the server, not waiting in the listen queue.
  std::string later = "https://127.0.0.1:" + std::to_string(server.port()) + "/healthz";
  ASSERT_EQ(Curl("--cacert " + File("ca.pem") + " " + later).first, 0);

  ASSERT_EQ(::kill(server.pid(), SIGTERM), 0);
  pollfd p{fd, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 60000), 1) << "the stop left the handshaking client connected";
  char c;
  EXPECT_LE(::recv(fd, &c, 1, 0), 0) << "closed without a byte";
  ::close(fd);
  EXPECT_EQ(server.Stop(0), 0) << "and the server exits cleanly";
}

TEST_F(TlsTest, TheConnectionLimitAnswers503OverTls) {
  TempDir data;
  ServerProcess server(data.Sub("data"), {"--tls-cert", File("server.pem"), "--tls-key",
                                          File("server.key"), "--max-connections", "1"});
  ASSERT_TRUE(server.started());
  std::string url = "https://127.0.0.1:" + std::to_string(server.port()) + "/healthz";
  // A silent client holds the only connection.
  int fd = ConnectSilently(server.port());
  ASSERT_GE(fd, 0);
  auto [code, out] = Curl("--cacert " + File("ca.pem") + " -w ' %{http_code}' " + url);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("too many open connections (limit 1)"), std::string::npos) << out;
  EXPECT_NE(out.find(" 503"), std::string::npos) << out;
  ::close(fd);
  // With the slot free again the same request succeeds.
  std::string again;
  for (int i = 0; i < 100 && again.find(" 200") == std::string::npos; ++i) {
    again = Curl("--cacert " + File("ca.pem") + " -w ' %{http_code}' " + url).second;
    if (again.find(" 200") == std::string::npos) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  EXPECT_NE(again.find(" 200"), std::string::npos) << again;
  EXPECT_EQ(server.Stop(SIGTERM), 0);
}

TEST_F(TlsTest, SubscriptionsStreamOverTls) {
  // curl follows the stream in the background until it has seen the event.
  std::string events = data_.Sub("events.txt");
  std::string cmd = "curl -sSN --max-time 20 --cacert " + File("ca.pem") + " '" + url_ +
                    "/v1/subscribe' > " + events + " 2>&1 & echo $! > " + events + ".pid";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const pid_t curl = static_cast<pid_t>(std::stol(Shell("cat " + events + ".pid").second));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto [code, out] = RunServeBinary(
      {"append", "live", "-t", "hello", "--server", url_, "--cacert", File("ca.pem")});
  ASSERT_EQ(code, 0) << out;
  std::string seen;
  for (int i = 0; i < 100 && seen.find("\"type\":\"hello\"") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    seen = Shell("cat " + events).second;
  }
  EXPECT_NE(seen.find(": subscribed"), std::string::npos) << seen;
  EXPECT_NE(seen.find("\"type\":\"hello\""), std::string::npos) << seen;
  ::kill(curl, SIGTERM);
}

TEST_F(TlsTest, TheCliVerifiesTheServerCertificate) {
  auto [appended, o1] = RunServeBinary({"append", "c", "-t", "e", "--server", url_, "--cacert",
                                        File("ca.pem")});
  EXPECT_EQ(appended, 0) << o1;
  auto [read, o2] = RunServeBinary({"read", "c", "--server", url_, "--cacert", File("ca.pem")});
  EXPECT_EQ(read, 0) << o2;
  EXPECT_NE(o2.find(" e "), std::string::npos) << o2;

  auto [wrong, o3] = RunServeBinary({"read", "c", "--server", url_, "--cacert", File("other.pem")});
  EXPECT_EQ(wrong, 5) << o3;
  EXPECT_NE(o3.find("certificate verify failed"), std::string::npos) << o3;
  EXPECT_NE(o3.find("--cacert"), std::string::npos) << o3;

  std::string plain = "http://127.0.0.1:" + std::to_string(server_->port());
  auto [mismatch, o4] = RunServeBinary({"read", "c", "--server", plain});
  EXPECT_EQ(mismatch, 5) << o4;
  EXPECT_NE(o4.find("use https://"), std::string::npos) << o4;
}

TEST_F(TlsTest, CliTailFollowsOverTlsAndAGracefulStopEndsIt) {
  const std::string ca = File("ca.pem");
  ASSERT_EQ(RunServeBinary({"append", "s", "-t", "stored", "--server", url_, "--cacert", ca}).first,
            0);
  // Waits (bounded) until the server has "n" subscriptions waiting for live events.
  auto wait_for_subscribers = [&](int n) {
    const std::string want = "\ntimetrail_subscribers " + std::to_string(n) + "\n";
    std::string page;
    for (int i = 0; i < 200; ++i) {
      page = Curl("--cacert " + ca + " " + url_ + "/metrics").second;
      if (page.find(want) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "no subscriber waiting: " << page;
    return false;
  };

  // The stored event, then a live one appended once the tail waits; --count 2 ends it.
  std::pair<int, std::string> counted;
  std::thread tail([&] {
    counted = RunServeBinary(
        {"tail", "--count", "2", "--json", "--server", url_, "--cacert", ca});
  });
  bool waiting = wait_for_subscribers(1);
  EXPECT_EQ(RunServeBinary({"append", "s", "-t", "live", "--server", url_, "--cacert", ca}).first,
            0);
  tail.join();
  ASSERT_TRUE(waiting);
  EXPECT_EQ(counted.first, 0) << counted.second;
  EXPECT_NE(counted.second.find("\"type\":\"stored\""), std::string::npos) << counted.second;
  EXPECT_NE(counted.second.find("\"type\":\"live\""), std::string::npos) << counted.second;

  // An unverifiable server: the subscription is not made.
  auto [wrong, why] =
      RunServeBinary({"tail", "--server", url_, "--cacert", File("other.pem")});
  EXPECT_EQ(wrong, 5) << why;
  EXPECT_NE(why.find("certificate verify failed"), std::string::npos) << why;

  // A server stopped with SIGTERM ends an open TLS subscription and exits cleanly.
  ASSERT_TRUE(wait_for_subscribers(0)) << "the finished tail's subscription is gone";
  std::pair<int, std::string> following;
  std::thread follower([&] {
    following = RunServeBinary({"tail", "--json", "--server", url_, "--cacert", ca});
  });
  bool followed = wait_for_subscribers(1);
  EXPECT_EQ(server_->Stop(SIGTERM), 0);
  follower.join();  // returns only because the server ended the stream
  ASSERT_TRUE(followed);
  EXPECT_NE(following.second.find("\"type\":\"live\""), std::string::npos) << following.second;
}

TEST(TlsFlagsTest, BadCertificateOrKeyFilesAreRefusedBeforeTheDataDirectoryIsTouched) {
  TempDir dir;
  auto [made, out] = Shell("cd " + dir.path() +
                           " && openssl req -x509 -newkey rsa:2048 -nodes -keyout a.key -out "
                           "a.pem -days 1 -subj /CN=a && openssl req -x509 -newkey rsa:2048 "
                           "-nodes -keyout b.key -out b.pem -days 1 -subj /CN=b");
  ASSERT_EQ(made, 0) << out;
  std::string data = dir.Sub("data");
  struct Case {
    std::vector<std::string> flags;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--tls-cert", dir.Sub("missing.pem"), "--tls-key", dir.Sub("a.key")},
       "cannot read it: No such file or directory"},
      {{"--tls-cert", dir.Sub("a.key"), "--tls-key", dir.Sub("a.key")},
       "cannot load a PEM certificate"},
      {{"--tls-cert", dir.Sub("a.pem"), "--tls-key", dir.Sub("b.key")}, "--tls-key"},
      {{"--tls-cert", dir.Sub("a.pem")}, "give both --tls-cert and --tls-key"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"serve", "--data", data, "--listen", "127.0.0.1:0"};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    auto [code, text] = RunServeBinary(args);
    EXPECT_EQ(code, 2) << text;
    EXPECT_NE(text.find(c.message), std::string::npos) << text;
    EXPECT_FALSE(std::filesystem::exists(data)) << "nothing may be created: " << text;
  }
}

}  // namespace
}  // namespace timetrail::testing
