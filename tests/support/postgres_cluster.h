// A private PostgreSQL cluster for tests: its own data directory under /tmp, its own free port
// on 127.0.0.1, stopped and removed when the object goes away.
//
//   timetrail::testing::PostgresCluster pg;            // initdb + start, wal_level=logical
//   pg.Exec("CREATE TABLE t (id int primary key)");
//   std::string url = pg.Url();                        // "postgresql://postgres@127.0.0.1:PORT/postgres"
//   pg.Restart();                                      // same data, same port
//
// When the test runs as root, initdb and postgres run as the "postgres" user (PostgreSQL refuses
// to run as root), so the directory is handed to that user.
//
// Failures throw std::runtime_error with the server's log tail: a test cannot go on without its
// database, and GoogleTest reports the exception as a failure of that test.
#ifndef TIMETRAIL_TESTS_SUPPORT_POSTGRES_CLUSTER_H_
#define TIMETRAIL_TESTS_SUPPORT_POSTGRES_CLUSTER_H_

#include <optional>
#include <string>
#include <vector>

namespace timetrail::testing {

class PostgresCluster {
 public:
  struct Settings {
    // "logical" for capture; "replica" to test the error for a source that is not ready.
    std::string wal_level = "logical";
    // Extra postgresql.conf lines.
    std::vector<std::string> extra_conf;
    // PEM files of a server certificate and its key: when both are set the cluster runs with
    // ssl=on, on copies owned by the cluster's user (PostgreSQL refuses a key that others can
    // read). Clients may still connect without TLS; their sslmode decides.
    std::string ssl_cert_file;
    std::string ssl_key_file;
  };

  PostgresCluster() : PostgresCluster(Settings{}) {}
  explicit PostgresCluster(Settings settings);
  ~PostgresCluster();
  PostgresCluster(const PostgresCluster&) = delete;
  PostgresCluster& operator=(const PostgresCluster&) = delete;

  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  // libpq URL for "user" on database "postgres".
  std::string Url(const std::string& user = "postgres") const;

  // Fast shutdown (waits for it), and start again with the same data and port.
  void Stop();
  void Start();
  void Restart() {
    Stop();
    Start();
  }

  // Runs SQL (any number of statements) as the superuser; throws on error.
  void Exec(const std::string& sql) const;
  // Rows of a query as text; a NULL is nullopt.
  using Row = std::vector<std::optional<std::string>>;
  std::vector<Row> Query(const std::string& sql) const;
  // The single value of a one-row, one-column query ("" for NULL).
  std::string Scalar(const std::string& sql) const;

 private:
  std::string LogTail() const;
  void Run(const std::string& command) const;  // as the cluster's owner; throws on failure

  Settings settings_;
  std::string dir_;  // holds data/, the socket and the log
  int port_ = 0;
  bool running_ = false;
};

// A port nobody listens on right now on 127.0.0.1.
int FreeLoopbackPort();

}  // namespace timetrail::testing

#endif  // TIMETRAIL_TESTS_SUPPORT_POSTGRES_CLUSTER_H_
