#include "support/postgres_cluster.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace timetrail::testing {
namespace {

constexpr const char* kBinDir = "/usr/lib/postgresql/15/bin";

// Prefix that runs a command as the cluster owner: "postgres" when we are root.
std::string AsOwner() { return geteuid() == 0 ? "runuser -u postgres -- " : ""; }

}  // namespace

int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    throw std::runtime_error("could not find a free port");
  }
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

PostgresCluster::PostgresCluster(Settings settings) : settings_(std::move(settings)) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "timetrail-pg-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  if (geteuid() == 0) {
    passwd* pw = getpwnam("postgres");
    if (pw == nullptr) throw std::runtime_error("running as root needs a 'postgres' user");
    if (chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) throw std::runtime_error("chown failed");
  }
  Run(std::string(kBinDir) + "/initdb -D " + dir_ + "/data -U postgres --auth=trust -E UTF8 " +
      "--no-sync --locale=C.UTF-8 > " + dir_ + "/initdb.log 2>&1");
  port_ = FreeLoopbackPort();
  std::ostringstream conf;
  conf << "listen_addresses = '127.0.0.1'\n"
       << "port = " << port_ << "\n"
       << "unix_socket_directories = '" << dir_ << "'\n"
       << "wal_level = " << settings_.wal_level << "\n"
       << "max_replication_slots = 10\nmax_wal_senders = 10\n"
       << "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
       << "shared_buffers = 32MB\nmax_connections = 50\n";
  for (const auto& line : settings_.extra_conf) conf << line << "\n";
  if (!settings_.ssl_cert_file.empty() && !settings_.ssl_key_file.empty()) {
    const auto copy = std::filesystem::copy_options::overwrite_existing;
    std::filesystem::copy_file(settings_.ssl_cert_file, dir_ + "/server.crt", copy);
    std::filesystem::copy_file(settings_.ssl_key_file, dir_ + "/server.key", copy);
    if (chmod((dir_ + "/server.key").c_str(), 0600) != 0) throw std::runtime_error("chmod failed");
    if (geteuid() == 0) {
      passwd* pw = getpwnam("postgres");
      for (const char* name : {"/server.crt", "/server.key"}) {
        if (pw == nullptr || chown((dir_ + name).c_str(), pw->pw_uid, pw->pw_gid) != 0) {
          throw std::runtime_error("chown of the TLS files failed");
        }
      }
    }
    conf << "ssl = on\nssl_cert_file = '" << dir_ << "/server.crt'\nssl_key_file = '" << dir_
         << "/server.key'\n";
  }
  {
    std::ofstream f(dir_ + "/data/postgresql.auto.conf", std::ios::app);
    f << conf.str();
  }
  Start();
}

PostgresCluster::~PostgresCluster() {
  try {
    if (running_) Run(std::string(kBinDir) + "/pg_ctl -D " + dir_ + "/data -m immediate -w stop" +
                      " >> " + dir_ + "/pg_ctl.log 2>&1");
  } catch (...) {
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string PostgresCluster::Url(const std::string& user) const {
  return "postgresql://" + user + "@127.0.0.1:" + std::to_string(port_) + "/postgres";
}

void PostgresCluster::Start() {
  Run(std::string(kBinDir) + "/pg_ctl -D " + dir_ + "/data -l " + dir_ + "/server.log -w -t 60" +
      " start >> " + dir_ + "/pg_ctl.log 2>&1");
  running_ = true;
}

void PostgresCluster::Stop() {
  if (!running_) return;
  Run(std::string(kBinDir) + "/pg_ctl -D " + dir_ + "/data -m fast -w -t 60 stop >> " + dir_ +
      "/pg_ctl.log 2>&1");
  running_ = false;
}

void PostgresCluster::Run(const std::string& command) const {
  std::string full = AsOwner() + "sh -c '" + command + "'";
  int rc = std::system(full.c_str());
  if (rc != 0) {
    throw std::runtime_error("command failed (" + std::to_string(rc) + "): " + command + "\n" +
                             LogTail());
  }
}

std::string PostgresCluster::LogTail() const {
  std::string out;
  for (const char* name : {"/initdb.log", "/pg_ctl.log", "/server.log"}) {
    std::ifstream f(dir_ + name);
    std::stringstream ss;
    ss << f.rdbuf();
    std::string s = ss.str();
    if (s.size() > 3000) s = s.substr(s.size() - 3000);
    if (!s.empty()) out += std::string("--- ") + name + "\n" + s;
  }
  return out;
}

std::vector<PostgresCluster::Row> PostgresCluster::Query(const std::string& sql) const {
  PGconn* conn = PQconnectdb(Url().c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string err = PQerrorMessage(conn);
    PQfinish(conn);
    throw std::runtime_error("cannot connect to the test cluster: " + err);
  }
  PGresult* res = PQexec(conn, sql.c_str());
  ExecStatusType st = PQresultStatus(res);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    std::string err = PQresultErrorMessage(res);
    PQclear(res);
    PQfinish(conn);
    throw std::runtime_error("SQL failed: " + err + " in: " + sql);
  }
  std::vector<Row> rows;
  for (int r = 0; r < PQntuples(res); ++r) {
    Row row;
    for (int c = 0; c < PQnfields(res); ++c) {
      if (PQgetisnull(res, r, c)) {
        row.push_back(std::nullopt);
      } else {
        row.emplace_back(std::string(PQgetvalue(res, r, c), PQgetlength(res, r, c)));
      }
    }
    rows.push_back(std::move(row));
  }
  PQclear(res);
  PQfinish(conn);
  return rows;
}

void PostgresCluster::Exec(const std::string& sql) const { (void)Query(sql); }

std::string PostgresCluster::Scalar(const std::string& sql) const {
  auto rows = Query(sql);
  if (rows.size() != 1 || rows[0].size() != 1) {
    throw std::runtime_error("expected one value from: " + sql);
  }
  return rows[0][0].value_or("");
}

}  // namespace timetrail::testing
