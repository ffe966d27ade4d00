#include "capture/source_checks.h"

#include <gtest/gtest.h>

namespace timetrail::capture {
namespace {

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(SourceChecksTest, VersionBelow14IsRefusedWithBothVersionsAndTheReason) {
  Status s = CheckServerVersion(130011);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Has(s.message(), "PostgreSQL 13.11")) << s.message();
  EXPECT_TRUE(Has(s.message(), "PostgreSQL 14 or later")) << s.message();
  EXPECT_TRUE(Has(s.message(), "transactional logical messages")) << s.message();
  EXPECT_TRUE(Has(s.message(), "\"messages\" option")) << s.message();
  EXPECT_EQ(CheckServerVersion(90624).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Has(CheckServerVersion(90624).message(), "PostgreSQL 9.6.24"));
  EXPECT_EQ(CheckServerVersion(139999).code(), StatusCode::kInvalidArgument);

  EXPECT_TRUE(CheckServerVersion(140000).ok());
  EXPECT_TRUE(CheckServerVersion(150018).ok());
  EXPECT_TRUE(CheckServerVersion(170002).ok());
  EXPECT_EQ(FormatServerVersion(150018), "15.18");
  EXPECT_EQ(FormatServerVersion(140000), "14.0");
}

TEST(SourceChecksTest, ServiceIsRecognizedByWhatOnlyItCreates) {
  EXPECT_EQ(DetectManagedService({}), ManagedService::kNone);
  EXPECT_EQ(DetectManagedService({{"rds.logical_replication", "rds.extensions"}, {}, false}),
            ManagedService::kRds);
  EXPECT_EQ(DetectManagedService({{"rds.logical_replication"}, {}, true}), ManagedService::kAurora);
  EXPECT_EQ(DetectManagedService({{"cloudsql.logical_decoding"}, {}, false}),
            ManagedService::kCloudSql);
  EXPECT_EQ(DetectManagedService({{}, {"cloudsqlsuperuser"}, false}), ManagedService::kCloudSql);
  EXPECT_EQ(DetectManagedService({{"azure.extensions"}, {}, false}), ManagedService::kAzure);
  EXPECT_EQ(DetectManagedService({{}, {"azure_pg_admin"}, false}), ManagedService::kAzure);
  EXPECT_EQ(DetectManagedService({{}, {"supabase_admin"}, false}), ManagedService::kSupabase);
  EXPECT_EQ(DetectManagedService({{}, {"supabase_auth_admin"}, false}), ManagedService::kSupabase);
  EXPECT_EQ(DetectManagedService({{"neon.timeline_id"}, {}, false}), ManagedService::kNeon);
  EXPECT_EQ(DetectManagedService({{}, {"neon_superuser"}, false}), ManagedService::kNeon);
  // A role of that name proves nothing: anyone may create one.
  EXPECT_EQ(DetectManagedService({{}, {"rds_replication"}, false}), ManagedService::kNone);
}

// "role_sql": the role's name quoted as an identifier, as InspectSource gives it.
SourceInfo On(ManagedService service, std::string role = "cdc", std::string role_sql = "\"cdc\"") {
  SourceInfo info;
  info.inspected = true;
  info.server_version_num = 150018;
  info.wal_level = "replica";
  info.server_encoding = "UTF8";
  info.database = "shop";
  info.database_sql = "\"shop\"";
  info.role_sql = std::move(role_sql);
  info.role = std::move(role);
  info.service = service;
  return info;
}

TEST(SourceChecksTest, WalLevelAdviceFitsTheService) {
  auto advice = [](ManagedService s) { return CheckWalLevel(On(s)).message(); };
  EXPECT_TRUE(Has(advice(ManagedService::kNone), "ALTER SYSTEM SET wal_level = logical"));
  EXPECT_TRUE(Has(advice(ManagedService::kRds), "rds.logical_replication = 1"));
  EXPECT_TRUE(Has(advice(ManagedService::kRds), "DB parameter group"));
  EXPECT_TRUE(Has(advice(ManagedService::kAurora), "DB cluster parameter group"));
  EXPECT_TRUE(Has(advice(ManagedService::kCloudSql), "cloudsql.logical_decoding to on"));
  EXPECT_TRUE(Has(advice(ManagedService::kAzure), "server parameter wal_level to logical"));
  EXPECT_TRUE(Has(advice(ManagedService::kSupabase), "wal_level=logical already"));
  EXPECT_TRUE(Has(advice(ManagedService::kNeon), "enable logical replication in the project"));
  for (auto s : {ManagedService::kRds, ManagedService::kCloudSql, ManagedService::kAzure,
                 ManagedService::kSupabase, ManagedService::kNeon}) {
    EXPECT_FALSE(Has(advice(s), "ALTER SYSTEM")) << advice(s);
    EXPECT_EQ(CheckWalLevel(On(s)).code(), StatusCode::kInvalidArgument);
  }
  SourceInfo ok = On(ManagedService::kNone);
  ok.wal_level = "logical";
  EXPECT_TRUE(CheckWalLevel(ok).ok());
}

// The errors as PostgreSQL 15 (and 16, where the wording changed) gives them, the way the
// capture reports them.
const char* kWalSender15 =
    "cannot connect to the source database: connection to server at \"db\", port 5432 failed: "
    "FATAL:  must be superuser or replication role to start walsender";
const char* kWalSender16 =
    "cannot connect to the source database: connection to server at \"db\", port 5432 failed: "
    "FATAL:  permission denied to start WAL sender\nDETAIL:  Only roles with the REPLICATION "
    "attribute may start a WAL sender process.";
const char* kSlots15 =
    "the source rejected \"CREATE_REPLICATION_SLOT \"timetrail\" LOGICAL pgoutput\": ERROR:  "
    "must be superuser or replication role to use replication slots";
const char* kHba =
    "cannot connect to the source database: connection to server at \"db\", port 5432 failed: "
    "FATAL:  no pg_hba.conf entry for replication connection from host \"10.0.0.7\", user "
    "\"cdc\", no encryption";
const char* kCreateOnDb =
    "the source rejected \"CREATE PUBLICATION \"timetrail\" FOR TABLE public.orders\": ERROR:  "
    "permission denied for database shop";
const char* kOwner =
    "the source rejected \"CREATE PUBLICATION \"timetrail\" FOR TABLE public.orders\": ERROR:  "
    "must be owner of table orders";
const char* kAllTables =
    "the source rejected \"CREATE PUBLICATION \"timetrail\" FOR ALL TABLES\": ERROR:  must be "
    "superuser to create FOR ALL TABLES publication";

TEST(SourceChecksTest, MissingReplicationRightKeepsPostgresWordsAndSaysWhatToDo) {
  struct Case {
    ManagedService service;
    std::string advice;
  };
  std::vector<Case> cases = {
      {ManagedService::kNone, "ALTER ROLE \"cdc\" REPLICATION; as a superuser"},
      {ManagedService::kRds, "GRANT rds_replication TO \"cdc\";"},
      {ManagedService::kAurora, "GRANT rds_replication TO \"cdc\";"},
      {ManagedService::kCloudSql,
       "ALTER USER \"cdc\" WITH REPLICATION; as a member of "
       "cloudsqlsuperuser"},
      {ManagedService::kAzure,
       "ALTER ROLE \"cdc\" WITH REPLICATION; as the server admin (a "
       "member of azure_pg_admin)"},
      {ManagedService::kSupabase, "ALTER ROLE \"cdc\" WITH REPLICATION; as the postgres user"},
      {ManagedService::kNeon,
       "ALTER ROLE \"cdc\" WITH REPLICATION; as a member of "
       "neon_superuser"},
  };
  for (const auto& c : cases) {
    for (const char* error : {kWalSender15, kWalSender16}) {
      Status s = ExplainSourceError(Status::Unavailable(error), On(c.service));
      EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.message();
      EXPECT_TRUE(Has(s.message(), error)) << s.message();
      EXPECT_TRUE(Has(s.message(), c.advice)) << s.message();
    }
    Status s = ExplainSourceError(Status::InvalidArgument(kSlots15), On(c.service));
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(Has(s.message(), kSlots15)) << s.message();
    EXPECT_TRUE(Has(s.message(), c.advice)) << s.message();
  }
  // Only RDS grants replication through rds_replication.
  Status s = ExplainSourceError(Status::Unavailable(kWalSender15), On(ManagedService::kNone));
  EXPECT_FALSE(Has(s.message(), "GRANT rds_replication")) << s.message();
  EXPECT_TRUE(Has(s.message(), "docs/capture.md, \"Source settings\"")) << s.message();

  // A member of a role named rds_replication on a server that is not RDS is told why that
  // membership does not count.
  SourceInfo member = On(ManagedService::kNone);
  member.rds_replication_exists = member.rds_replication_member = true;
  s = ExplainSourceError(Status::Unavailable(kWalSender15), member);
  EXPECT_TRUE(Has(s.message(),
                  "is a member of rds_replication, but that grants replication only "
                  "on Amazon RDS and Aurora"))
      << s.message();

  // Commands name the role quoted as an identifier.
  s = ExplainSourceError(Status::Unavailable(kWalSender15),
                         On(ManagedService::kRds, "Bob\"s", "\"Bob\"\"s\""));
  EXPECT_TRUE(Has(s.message(), "GRANT rds_replication TO \"Bob\"\"s\";")) << s.message();
}

TEST(SourceChecksTest, ReplicationLineMissingFromPgHba) {
  Status s = ExplainSourceError(Status::Unavailable(kHba), On(ManagedService::kNone));
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);  // a connection problem, as before
  EXPECT_TRUE(Has(s.message(), kHba));
  EXPECT_TRUE(Has(s.message(), "host replication cdc <capture's address>/32")) << s.message();
  EXPECT_TRUE(Has(s.message(), "pg_reload_conf()")) << s.message();

  s = ExplainSourceError(Status::Unavailable(kHba), On(ManagedService::kRds));
  EXPECT_TRUE(Has(s.message(), "Amazon RDS manages pg_hba.conf")) << s.message();
  EXPECT_TRUE(Has(s.message(), "GRANT rds_replication TO \"cdc\";")) << s.message();
  s = ExplainSourceError(Status::Unavailable(kHba), On(ManagedService::kSupabase));
  EXPECT_TRUE(Has(s.message(), "not through the connection pooler")) << s.message();
  s = ExplainSourceError(Status::Unavailable(kHba), On(ManagedService::kNeon));
  EXPECT_TRUE(Has(s.message(), "not through the connection pooler")) << s.message();
}

TEST(SourceChecksTest, PublicationRightsMissing) {
  for (auto service : {ManagedService::kNone, ManagedService::kRds, ManagedService::kCloudSql,
                       ManagedService::kAzure, ManagedService::kSupabase, ManagedService::kNeon}) {
    Status s = ExplainSourceError(Status::InvalidArgument(kCreateOnDb), On(service));
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(Has(s.message(), kCreateOnDb));
    EXPECT_TRUE(Has(s.message(), "GRANT CREATE ON DATABASE \"shop\" TO \"cdc\";")) << s.message();
    EXPECT_TRUE(Has(s.message(), "--publication")) << s.message();

    s = ExplainSourceError(Status::InvalidArgument(kOwner), On(service));
    EXPECT_TRUE(Has(s.message(), kOwner));
    EXPECT_TRUE(Has(s.message(), "ALTER TABLE ... OWNER TO \"cdc\";")) << s.message();

    s = ExplainSourceError(Status::InvalidArgument(kAllTables), On(service));
    EXPECT_TRUE(Has(s.message(), kAllTables));
    EXPECT_TRUE(Has(s.message(), "--tables or --table-pattern")) << s.message();
  }
  Status s = ExplainSourceError(Status::InvalidArgument(kCreateOnDb), On(ManagedService::kAzure));
  EXPECT_TRUE(Has(s.message(), "azure_pg_admin")) << s.message();
  // PostgreSQL 16's wording.
  s = ExplainSourceError(
      Status::InvalidArgument("ERROR:  permission denied to create FOR ALL TABLES publication"),
      On(ManagedService::kNone));
  EXPECT_TRUE(Has(s.message(), "--tables or --table-pattern")) << s.message();
}

TEST(SourceChecksTest, LimitsAndWalLevelAtSlotCreation) {
  Status s = ExplainSourceError(Status::InvalidArgument("ERROR:  all replication slots are in use"),
                                On(ManagedService::kRds));
  EXPECT_TRUE(Has(s.message(), "max_replication_slots in the instance's DB parameter group"))
      << s.message();
  s = ExplainSourceError(
      Status::Unavailable("FATAL:  number of requested standby connections exceeds "
                          "max_wal_senders (currently 10)"),
      On(ManagedService::kNone));
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Has(s.message(), "ALTER SYSTEM SET max_wal_senders")) << s.message();
  s = ExplainSourceError(
      Status::InvalidArgument("ERROR:  logical decoding requires wal_level >= logical"),
      On(ManagedService::kCloudSql));
  EXPECT_TRUE(Has(s.message(), "cloudsql.logical_decoding")) << s.message();
}

TEST(SourceChecksTest, OtherErrorsAreUnchanged) {
  Status in = Status::Unavailable("source connection lost: server closed the connection");
  Status out = ExplainSourceError(in, On(ManagedService::kRds));
  EXPECT_EQ(out.code(), in.code());
  EXPECT_EQ(out.message(), in.message());
  EXPECT_TRUE(ExplainSourceError(Status::Ok(), On(ManagedService::kNone)).ok());
  // Before the source was inspected the advice names the usual ways.
  Status s = ExplainSourceError(Status::Unavailable(kWalSender15), SourceInfo{});
  EXPECT_TRUE(Has(s.message(), "ALTER ROLE <role> REPLICATION")) << s.message();
  EXPECT_TRUE(Has(s.message(), "GRANT rds_replication TO <role>")) << s.message();
}

}  // namespace
}  // namespace timetrail::capture
