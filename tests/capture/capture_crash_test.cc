// The capture process is killed with SIGKILL at random moments during a steady workload and
// restarted; at the end every change must be recorded exactly once. Two independent witnesses:
// the source's final rows, and PostgreSQL's own test_decoding output read with pg_recvlogical
// from a second slot (which transaction changed how many rows).
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <random>
#include <set>

#include "capture_test_util.h"
#include "support/temp_dir.h"

namespace timetrail::testing {
namespace {

pid_t StartCaptureTool(const std::string& url, const std::string& data, const std::string& log) {
  pid_t pid = fork();
  if (pid == 0) {
    FILE* f = std::freopen(log.c_str(), "a", stderr);
    (void)f;
    execl(CAPTURE_TOOL, CAPTURE_TOOL, "capture", url.c_str(), "--data", data.c_str(), "--slot",
          "crashy", "--tables", "public.accounts,public.transfers", "--progress-seconds", "1",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

// Runs small transactions until told to stop: inserts, updates and deletes over two tables,
// some with a context message; every 20th is a large one (more changes than the capture puts in
// one timetrail transaction, so it is stored in parts and a kill can fall between them).
class Workload {
 public:
  explicit Workload(const std::string& url) : url_(url) {}
  void Start() {
    thread_ = std::thread([this] { Loop(); });
  }
  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  std::uint64_t transactions() const { return transactions_.load(); }
  std::string error() const { return error_; }

 private:
  void Loop() {
    PGconn* conn = PQconnectdb(url_.c_str());
    std::mt19937 rng(7);
    int next_id = 1;
    while (!stop_.load() && PQstatus(conn) == CONNECTION_OK) {
      std::string sql = "BEGIN;";
      if (rng() % 3 == 0) {
        sql += "SELECT timetrail.set_context('{\"actor\": \"user" + std::to_string(rng() % 5) +
               "\"}');";
      }
      if (transactions_.load() % 20 == 19) {
        sql += "INSERT INTO transfers (account, amount) SELECT 1, g FROM generate_series(1, " +
               std::to_string(2100 + rng() % 2000) + ") g;";
      }
      int changes = 1 + static_cast<int>(rng() % 4);
      for (int i = 0; i < changes; ++i) {
        int id = 1 + static_cast<int>(rng() % static_cast<unsigned>(next_id));
        switch (rng() % 4) {
          case 0:
          case 1:
            sql += "INSERT INTO accounts VALUES (" + std::to_string(next_id++) + ", 100, 'new');";
            break;
          case 2:
            sql += "UPDATE accounts SET balance = balance + 1, note = 'n" +
                   std::to_string(rng() % 1000) + "' WHERE id = " + std::to_string(id) + ";";
            sql +=
                "INSERT INTO transfers (account, amount) VALUES (" + std::to_string(id) + ", 1);";
            break;
          default:
            sql += "DELETE FROM accounts WHERE id = " + std::to_string(id) + ";";
            break;
        }
      }
      sql += "COMMIT;";
      PGresult* r = PQexec(conn, sql.c_str());
      if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        error_ = PQresultErrorMessage(r);
        PQclear(r);
        break;
      }
      PQclear(r);
      ++transactions_;
      // A steady load the capture keeps up with (each stored transaction is one fsync here).
      std::this_thread::sleep_for(std::chrono::milliseconds(4));
    }
    PQfinish(conn);
  }

  std::string url_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> transactions_{0};
  std::string error_;
  std::thread thread_;
};

TEST(CaptureCrashTest, KilledAndRestartedCaptureRecordsEveryChangeExactlyOnce) {
  PostgresCluster pg;
  LoadContextHelper(pg);
  pg.Exec(R"sql(
    CREATE TABLE accounts (id int PRIMARY KEY, balance int, note text);
    CREATE TABLE transfers (id bigserial PRIMARY KEY, account int, amount int))sql");
  pg.Exec("SELECT pg_create_logical_replication_slot('witness', 'test_decoding')");
  TempDir dir;
  std::string data = dir.Sub("store");
  std::string log = dir.Sub("capture.log");
  Workload workload(pg.Url());
  pid_t pid = StartCaptureTool(pg.Url(), data, log);
  // Changes made before the slot exists are not in it (that is what --snapshot is for).
  for (int i = 0; i < 600 && pg.Scalar("SELECT count(*) FROM pg_replication_slots WHERE "
                                       "slot_name = 'crashy'") == "0";
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  workload.Start();
  std::mt19937 rng(std::random_device{}());
  constexpr int kKills = 6;
  for (int i = 0; i < kKills; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 900));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    waitpid(pid, &status, 0);
    pid = StartCaptureTool(pg.Url(), data, log);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  workload.Stop();
  ASSERT_EQ(workload.error(), "");
  ASSERT_GT(workload.transactions(), 50u);
  std::string target = pg.Scalar("SELECT pg_current_wal_insert_lsn()");
  // The capture confirms a position only once the events are durable: wait for it to pass the
  // end of the workload, then stop it cleanly.
  bool caught_up = false;
  for (int i = 0; i < 600 && !caught_up; ++i) {
    caught_up =
        pg.Scalar("SELECT coalesce(confirmed_flush_lsn >= '" + target +
                  "', false)::text FROM pg_replication_slots WHERE slot_name = 'crashy'") == "true";
    if (!caught_up) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(caught_up);
  // While the capture runs (and holds the data directory), a read opens it read-only and sees
  // every event stored so far.
  std::string read_held = std::string(CAPTURE_TOOL) + " log --data " + data +
                          " --limit 1 --json > " + dir.Sub("held.json") + " 2>&1";
  int read_rc = std::system(read_held.c_str());
  std::ifstream held_file(dir.Sub("held.json"));
  std::stringstream held_text;
  held_text << held_file.rdbuf();
  ASSERT_TRUE(WIFEXITED(read_rc) && WEXITSTATUS(read_rc) == 0) << held_text.str();
  const std::uint64_t held_head = json::parse(held_text.str())["head"].get<std::uint64_t>();
  EXPECT_GT(held_head, 0u);
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  auto store = EventStore::Open(Options{}, data);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->LastPosition(), held_head);

  // On failure, show what the capture said.
  struct DumpLogOnFailure {
    std::string path;
    ~DumpLogOnFailure() {
      if (!::testing::Test::HasFailure()) return;
      std::ifstream in(path);
      std::cerr << "--- capture log\n" << in.rdbuf();
    }
  } dump{log};

  // Witness 1: the source's rows, exactly.
  std::size_t live_rows = 0;
  for (const auto& r : pg.Query("SELECT id, balance, note FROM accounts")) {
    auto row = Fold(**store, "public.accounts/" + *r[0]);
    ++live_rows;
    EXPECT_TRUE(row.has_value()) << *r[0];
    if (!row) continue;
    EXPECT_EQ((*row)["balance"], std::stoi(*r[1]));
    EXPECT_EQ((*row)["note"], *r[2]);
  }
  for (const auto& r : pg.Query("SELECT id, amount FROM transfers")) {
    EXPECT_TRUE(Fold(**store, "public.transfers/" + *r[0]).has_value()) << *r[0];
    ++live_rows;
  }
  std::map<std::string, std::optional<json>> states;
  std::map<std::uint64_t, int> captured_per_xid;
  std::map<std::uint64_t, std::set<std::uint64_t>> parts_per_xid;  // timetrail txs per source tx
  for (const auto& e : Log(**store)) {
    if (e.type == "schema") continue;
    json meta = json::parse(e.metadata);
    std::uint64_t source_xid = meta["source"]["xid"].get<std::uint64_t>();
    captured_per_xid[source_xid]++;
    parts_per_xid[source_xid].insert(e.tx);
    states[e.stream];
  }
  // The large source transactions were stored in parts, each part whole.
  std::size_t split = 0;
  for (const auto& [x, txs] : parts_per_xid) split += txs.size() > 1 ? 1 : 0;
  EXPECT_GT(split, 0u);
  std::size_t live_streams = 0;
  for (auto& [stream, state] : states) live_streams += Fold(**store, stream).has_value() ? 1 : 0;
  EXPECT_EQ(live_streams, live_rows);

  // Witness 2: test_decoding's record of the same transactions.
  std::string out = dir.Sub("witness.txt");
  std::string cmd = std::string(PG_RECVLOGICAL) + " -d '" + pg.Url() +
                    "' --slot witness --start --no-loop -f " + out + " --endpos " + target + " 2>" +
                    dir.Sub("recvlogical.err");
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream f(out);
  std::map<std::uint64_t, int> witness_per_xid;
  std::uint64_t xid = 0;
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("BEGIN ", 0) == 0) {
      xid = std::stoull(line.substr(6));
    } else if (line.rfind("table public.accounts: ", 0) == 0 ||
               line.rfind("table public.transfers: ", 0) == 0) {
      witness_per_xid[xid]++;
    }
  }
  ASSERT_GT(witness_per_xid.size(), 50u);

  // The revert command over the same store, as a user runs it: a dry run prints the SQL and
  // changes nothing; a request without a target is refused as bad input (exit code 2).
  store->reset();
  std::string first_id = pg.Scalar("SELECT min(id)::text FROM accounts");
  std::string before = pg.Scalar("SELECT balance::text FROM accounts WHERE id = " + first_id);
  std::string revert = std::string(CAPTURE_TOOL) + " revert-source '" + pg.Url() + "' --data " +
                       data + " public.accounts/" + first_id +
                       " --to 2000-01-01 --actor alice --dry-run > " + dir.Sub("dry.sql") + " 2>&1";
  ASSERT_EQ(std::system(revert.c_str()), 0);
  std::ifstream dry(dir.Sub("dry.sql"));
  std::stringstream dry_text;
  dry_text << dry.rdbuf();
  EXPECT_NE(dry_text.str().find("DELETE FROM \"public\".\"accounts\" WHERE \"id\" = '" + first_id +
                                "'::integer;"),
            std::string::npos)
      << dry_text.str();
  // --actor names who reverted, as `timetrail revert` does (--as, its earlier name, still works).
  EXPECT_NE(dry_text.str().find("\"actor\":\"alice\""), std::string::npos) << dry_text.str();
  EXPECT_EQ(pg.Scalar("SELECT balance::text FROM accounts WHERE id = " + first_id), before);
  // The same through `timetrail revert --source` on the data directory.
  std::string revert_cli = std::string(CAPTURE_TOOL) + " revert public.accounts/" + first_id +
                           " --to 2000-01-01 --source '" + pg.Url() + "' --data " + data +
                           " --dry-run > " + dir.Sub("dry2.sql") + " 2>&1";
  ASSERT_EQ(std::system(revert_cli.c_str()), 0);
  std::ifstream dry2(dir.Sub("dry2.sql"));
  std::stringstream dry2_text;
  dry2_text << dry2.rdbuf();
  EXPECT_NE(dry2_text.str().find("DELETE FROM \"public\".\"accounts\" WHERE \"id\" = '" + first_id +
                                 "'::integer;"),
            std::string::npos)
      << dry2_text.str();
  EXPECT_EQ(pg.Scalar("SELECT balance::text FROM accounts WHERE id = " + first_id), before);
  std::string no_target = std::string(CAPTURE_TOOL) + " revert-source '" + pg.Url() + "' --data " +
                          data + " > /dev/null 2>&1";
  int rc = std::system(no_target.c_str());
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 2) << rc;
  EXPECT_EQ(captured_per_xid, witness_per_xid);
  for (const auto& [x, n] : witness_per_xid) {
    if (captured_per_xid[x] != n) {
      ADD_FAILURE() << "xid " << x << ": source changed " << n << " rows, captured "
                    << captured_per_xid[x];
    }
  }
}

}  // namespace
}  // namespace timetrail::testing
