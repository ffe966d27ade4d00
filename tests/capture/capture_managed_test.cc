// Capture with the rights a managed PostgreSQL service gives (no superuser, no ALTER SYSTEM),
// and the errors for roles that may not replicate, against a real PostgreSQL 15.
#include <gtest/gtest.h>

#include "capture/pg.h"
#include "capture/source_checks.h"
#include "capture_test_util.h"
#include "support/temp_dir.h"

namespace timetrail::testing {
namespace {

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// What RDS, Cloud SQL, Azure, Supabase and Neon let a capture role have: LOGIN and REPLICATION,
// its own tables and CREATE on the database, and nothing of a superuser's.
TEST(CaptureManagedTest, RoleWithAManagedServicesRightsCapturesEndToEnd) {
  PostgresCluster pg;
  pg.Exec(R"sql(
    CREATE ROLE cdc LOGIN REPLICATION;
    GRANT CREATE ON DATABASE postgres TO cdc;
    CREATE TABLE orders (id int PRIMARY KEY, status text, total numeric);
    CREATE TABLE customers (id int PRIMARY KEY, name text);
    ALTER TABLE orders OWNER TO cdc;
    ALTER TABLE customers OWNER TO cdc;)sql");
  // The role really has no more than that.
  EXPECT_EQ(pg.Scalar("SELECT rolsuper::text FROM pg_roles WHERE rolname = 'cdc'"), "false");
  for (const char* role :
       {"pg_read_server_files", "pg_write_server_files", "pg_execute_server_program"}) {
    EXPECT_EQ(pg.Scalar(std::string("SELECT pg_has_role('cdc', '") + role + "', 'MEMBER')::text"),
              "false")
        << role;
  }
  EXPECT_EQ(pg.Scalar("SELECT has_parameter_privilege('cdc', 'wal_level', 'ALTER SYSTEM')::text"),
            "false");
  {
    auto conn = capture::PgConnect(pg.Url("cdc"), false);
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    auto altered = capture::PgQuery(conn->get(), "ALTER SYSTEM SET wal_level = logical");
    ASSERT_FALSE(altered.ok());
    EXPECT_TRUE(Has(altered.status().message(), "permission denied")) << altered.status().message();
    auto info = capture::InspectSource(conn->get());
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    EXPECT_EQ(info->role, "cdc");
    EXPECT_FALSE(info->superuser);
    EXPECT_TRUE(info->replication);
    EXPECT_GE(info->server_version_num, capture::kMinServerVersionNum);
    EXPECT_EQ(info->service, capture::ManagedService::kNone);
  }

  TempDir dir;
  auto store = OpenStore(dir.Sub("store"));
  // Without --tables the publication would be FOR ALL TABLES, which needs a superuser: the
  // error keeps PostgreSQL's words and says what to do instead.
  {
    capture::Capture all_tables(store.get(), OptionsFor(pg, "cdc"));
    Status s = all_tables.Prepare();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(Has(s.message(), "must be superuser to create FOR ALL TABLES publication"))
        << s.message();
    EXPECT_TRUE(Has(s.message(), "--tables or --table-pattern")) << s.message();
    EXPECT_EQ(pg.Scalar("SELECT count(*) FROM pg_replication_slots"), "0");
  }

  auto options = OptionsFor(pg, "cdc");
  options.table_pattern = "public.%";
  CaptureThread cap(store.get(), options);
  Status prepared = cap.Prepare();
  ASSERT_TRUE(prepared.ok()) << prepared.ToString();
  EXPECT_EQ(pg.Scalar("SELECT pubowner::regrole::text FROM pg_publication WHERE pubname = "
                      "'timetrail'"),
            "cdc");
  cap.Start();
  pg.Exec(R"sql(
    INSERT INTO orders VALUES (1, 'new', 10.5), (2, 'new', 20);
    INSERT INTO customers VALUES (7, 'Ada');
    UPDATE orders SET status = 'paid' WHERE id = 1;
    DELETE FROM orders WHERE id = 2;)sql");
  ASSERT_TRUE(cap.WaitCaughtUp(pg));
  EXPECT_EQ(Fold(*store, "public.orders/1"),
            json::parse(R"({"id": 1, "status": "paid", "total": 10.5})"));
  EXPECT_EQ(Fold(*store, "public.customers/7"), json::parse(R"({"id": 7, "name": "Ada"})"));
  EXPECT_FALSE(Fold(*store, "public.orders/2").has_value());
  auto two = ReadAll(*store, "public.orders/2");
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].type, "$put");
  EXPECT_EQ(two[1].type, "$delete");
  Status stopped = cap.Stop();
  EXPECT_TRUE(stopped.ok()) << stopped.ToString();
}

// Shaped like an RDS role: a member of rds_replication without the REPLICATION attribute. On
// RDS that membership grants replication; on this vanilla server (no rds.* setting, so not
// recognized as RDS) it does not. The capture does not refuse it on the catalog's word:
// PostgreSQL refuses the replication connection, and the error keeps PostgreSQL's reason and
// adds what to do on a self-managed server, and why the membership does not count here.
TEST(CaptureManagedTest, RdsShapedRoleGetsPostgresReasonWithAdvice) {
  PostgresCluster pg;
  pg.Exec(R"sql(
    CREATE ROLE rds_replication NOLOGIN;
    CREATE ROLE rdsuser LOGIN IN ROLE rds_replication;
    GRANT CREATE ON DATABASE postgres TO rdsuser;
    CREATE TABLE orders (id int PRIMARY KEY);
    ALTER TABLE orders OWNER TO rdsuser;)sql");
  TempDir dir;
  auto store = OpenStore(dir.Sub("store"));
  auto options = OptionsFor(pg, "rdsuser");
  options.tables = {"public.orders"};
  capture::Capture cap(store.get(), options);
  Status s = cap.Prepare();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Has(s.message(), "must be superuser or replication role to start walsender"))
      << s.message();
  EXPECT_FALSE(Has(s.message(), "lacks the REPLICATION attribute")) << s.message();
  EXPECT_TRUE(Has(s.message(), "ALTER ROLE \"rdsuser\" REPLICATION;")) << s.message();
  EXPECT_TRUE(Has(s.message(),
                  "is a member of rds_replication, but that grants replication "
                  "only on Amazon RDS and Aurora"))
      << s.message();
  EXPECT_FALSE(Has(s.message(), "GRANT rds_replication")) << s.message();
  // Nothing was created in the source.
  EXPECT_EQ(pg.Scalar("SELECT count(*) FROM pg_publication"), "0");
  EXPECT_EQ(pg.Scalar("SELECT count(*) FROM pg_replication_slots"), "0");

  // Given the attribute, the same role captures.
  pg.Exec("ALTER ROLE rdsuser REPLICATION");
  capture::Capture again(store.get(), options);
  Status prepared = again.Prepare();
  EXPECT_TRUE(prepared.ok()) << prepared.ToString();
}

// A server showing an rds.* setting is taken for RDS: its errors say what to do there.
TEST(CaptureManagedTest, ServerWithRdsSettingsGetsRdsAdvice) {
  PostgresCluster::Settings settings;
  settings.wal_level = "replica";
  settings.extra_conf = {"rds.logical_replication = off"};
  PostgresCluster pg(settings);
  pg.Exec("CREATE ROLE app LOGIN");
  TempDir dir;
  auto store = OpenStore(dir.Sub("store"));
  capture::Capture cap(store.get(), OptionsFor(pg, "app"));
  Status s = cap.Prepare();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Has(s.message(), "wal_level=replica")) << s.message();
  EXPECT_TRUE(Has(s.message(), "rds.logical_replication = 1")) << s.message();
  EXPECT_TRUE(Has(s.message(), "DB parameter group")) << s.message();
  EXPECT_FALSE(Has(s.message(), "ALTER SYSTEM")) << s.message();

  auto conn = capture::PgConnect(pg.Url("app"), false);
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  auto info = capture::InspectSource(conn->get());
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->service, capture::ManagedService::kRds);
  // The real refusal of a replication connection, explained for RDS.
  auto repl = capture::PgConnect(pg.Url("app"), true);
  ASSERT_FALSE(repl.ok());
  Status explained = capture::ExplainSourceError(repl.status(), *info);
  EXPECT_EQ(explained.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Has(explained.message(), "must be superuser or replication role to start walsender"))
      << explained.message();
  EXPECT_TRUE(Has(explained.message(), "GRANT rds_replication TO \"app\";")) << explained.message();
}

}  // namespace
}  // namespace timetrail::testing
