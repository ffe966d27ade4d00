// Capture over TLS against a real PostgreSQL 15 with ssl=on: the real `timetrail capture`
// process connects with sslmode=verify-full and the CA that signed the server's certificate,
// and a change arrives over an encrypted connection; with an unrelated CA, or with
// sslmode=require against a server without TLS, it stops at once with libpq's reason and
// creates nothing in the source.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>

#include "support/postgres_cluster.h"
#include "support/temp_dir.h"
#include "timetrail/store.h"

namespace timetrail::testing {
namespace {

// Runs a shell command; fails the test if it does not succeed.
void Sh(const std::string& command) {
  int rc = std::system(command.c_str());
  ASSERT_EQ(rc, 0) << command;
}

// A test CA, a server certificate it signs for 127.0.0.1 and localhost, and a second,
// unrelated CA, made with the openssl command in "dir".
struct Certificates {
  std::string ca, server_cert, server_key, other_ca;
};

void MakeCertificates(const std::string& dir, Certificates* out) {
  const std::string q = " > " + dir + "/openssl.log 2>&1";
  Sh("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=timetrail test CA' -keyout " +
     dir + "/ca.key -out " + dir + "/ca.pem" + q);
  Sh("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=unrelated CA' -keyout " + dir +
     "/other.key -out " + dir + "/other.pem" + q);
  Sh("openssl req -newkey rsa:2048 -nodes -subj '/CN=localhost' -keyout " + dir +
     "/server.key -out " + dir + "/server.csr" + q);
  {
    std::ofstream ext(dir + "/ext.cnf");
    ext << "subjectAltName = IP:127.0.0.1, DNS:localhost\n";
  }
  Sh("openssl x509 -req -in " + dir + "/server.csr -CA " + dir + "/ca.pem -CAkey " + dir +
     "/ca.key -CAcreateserial -days 2 -extfile " + dir + "/ext.cnf -out " + dir + "/server.pem" +
     q);
  *out = {dir + "/ca.pem", dir + "/server.pem", dir + "/server.key", dir + "/other.pem"};
}

// Runs `timetrail ARGS...` to completion: its exit code and its stdout and stderr together.
std::pair<int, std::string> RunTool(const std::string& args) {
  std::string command = std::string(CAPTURE_TOOL) + " " + args + " 2>&1";
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return {-1, "popen failed"};
  std::string out;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A URL of "pg" with TLS parameters appended, quoted for the shell.
std::string Quoted(const std::string& url) { return "'" + url + "'"; }

TEST(CaptureTlsTest, VerifiedTlsCapturesAndAWrongCaIsRefusedWithTheReason) {
  TempDir dir;
  Certificates certs;
  ASSERT_NO_FATAL_FAILURE(MakeCertificates(dir.path(), &certs));
  PostgresCluster::Settings settings;
  settings.ssl_cert_file = certs.server_cert;
  settings.ssl_key_file = certs.server_key;
  PostgresCluster pg(settings);
  pg.Exec("CREATE TABLE orders (id int PRIMARY KEY, status text)");
  const std::string base = pg.Url();

  // An unrelated CA: the capture stops before it creates anything, naming the problem.
  auto [wrong_code, wrong_out] = RunTool(
      "capture " + Quoted(base + "?sslmode=verify-full&sslrootcert=" + certs.other_ca) +
      " --data " + dir.Sub("wrong") + " --slot tls_wrong");
  EXPECT_EQ(wrong_code, 1) << wrong_out;
  EXPECT_NE(wrong_out.find("cannot connect to the source database"), std::string::npos)
      << wrong_out;
  EXPECT_NE(wrong_out.find("certificate verify failed"), std::string::npos) << wrong_out;
  EXPECT_EQ(pg.Scalar("SELECT count(*) FROM pg_replication_slots"), "0");
  EXPECT_EQ(pg.Scalar("SELECT count(*) FROM pg_publication"), "0");

  // The right CA, host name checked (the certificate names 127.0.0.1).
  const std::string data = dir.Sub("store");
  const std::string log = dir.path() + "/capture.log";
  const std::string url = base + "?sslmode=verify-full&sslrootcert=" + certs.ca;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    FILE* f = std::freopen(log.c_str(), "a", stderr);
    f = std::freopen(log.c_str(), "a", stdout);
    (void)f;
    execl(CAPTURE_TOOL, CAPTURE_TOOL, "capture", url.c_str(), "--data", data.c_str(), "--slot",
          "tls", "--progress-seconds", "1", static_cast<char*>(nullptr));
    _exit(127);
  }
  // Whatever happens below, the capture does not outlive the test.
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      if (pid > 0 && kill(pid, SIGKILL) == 0) waitpid(pid, nullptr, 0);
    }
  } reaper{pid};
  // The slot exists once the capture has prepared; then a change is made.
  bool ready = false;
  for (int i = 0; i < 600 && !ready; ++i) {
    ready = pg.Scalar("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'tls' "
                      "AND active") == "1";
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(ready) << ReadFile(log);
  pg.Exec("INSERT INTO orders VALUES (42, 'new')");
  std::string lsn = pg.Scalar("SELECT pg_current_wal_insert_lsn()");
  // The capture confirms a position to the source only once its events are durable.
  bool confirmed = false;
  for (int i = 0; i < 600 && !confirmed; ++i) {
    confirmed = pg.Scalar("SELECT confirmed_flush_lsn >= '" + lsn +
                          "'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'tls'") == "t";
    if (!confirmed) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(confirmed) << ReadFile(log);
  // The capture's replication connection is encrypted.
  EXPECT_EQ(pg.Scalar("SELECT s.ssl::text || ' ' || s.version FROM pg_stat_ssl s JOIN "
                      "pg_replication_slots r ON r.active_pid = s.pid WHERE r.slot_name = 'tls'")
                .substr(0, 8),
            "true TLS");
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  reaper.pid = 0;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadFile(log);

  auto store = EventStore::Open(Options{}, data);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ReadStreamOptions o;
  auto events = (*store)->ReadStream("public.orders/42", o);
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 1u);
  EXPECT_NE((*events)[0].data.find("\"new\""), std::string::npos) << (*events)[0].data;
}

TEST(CaptureTlsTest, RequireAgainstAServerWithoutTlsIsRefused) {
  TempDir dir;
  PostgresCluster pg;  // ssl off
  auto [code, out] = RunTool("capture " + Quoted(pg.Url() + "?sslmode=require") + " --data " +
                             dir.Sub("store"));
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("cannot connect to the source database"), std::string::npos) << out;
  EXPECT_NE(out.find("server does not support SSL, but SSL was required"), std::string::npos)
      << out;
  EXPECT_EQ(pg.Scalar("SELECT count(*) FROM pg_replication_slots"), "0");
}

}  // namespace
}  // namespace timetrail::testing
