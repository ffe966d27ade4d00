// What the capture needs from its source, checked with ordinary SQL (no superuser), and the
// source's own errors turned into advice for the kind of server it is: self-managed
// PostgreSQL, or one of the managed services (Amazon RDS and Aurora, Google Cloud SQL, Azure
// Database for PostgreSQL flexible server, Supabase, Neon), which grant replication in their
// own ways and allow neither superuser nor ALTER SYSTEM.
//
// The capture never refuses a role on what the catalog says about its rights: a managed
// service may grant replication through something other than the REPLICATION attribute (RDS:
// membership in rds_replication). It asks PostgreSQL itself, by opening a replication
// connection, and explains PostgreSQL's answer.
#ifndef TIMETRAIL_CAPTURE_SOURCE_CHECKS_H_
#define TIMETRAIL_CAPTURE_SOURCE_CHECKS_H_

#include <string>
#include <string_view>
#include <vector>

#include "timetrail/status.h"

// As libpq-fe.h declares it, so that this header does not need libpq's include directory.
typedef struct pg_conn PGconn;

namespace timetrail::capture {

// The oldest PostgreSQL the capture reads: pgoutput's "messages" option (transactional logical
// messages, which carry the application's who/why context) exists from PostgreSQL 14 on.
inline constexpr int kMinServerVersionNum = 140000;

enum class ManagedService {
  kNone,  // self-managed PostgreSQL, or a service not recognized
  kRds,
  kAurora,
  kCloudSql,
  kAzure,
  kSupabase,
  kNeon,
};

// "Amazon RDS", "Google Cloud SQL", ... ; "self-managed PostgreSQL" for kNone.
std::string_view ManagedServiceName(ManagedService service);

// What a service leaves visible to any role: the names of settings in pg_settings with the
// prefixes rds., cloudsql., azure. and neon., the roles that exist of those the services
// create, and whether the function aurora_version() exists.
struct ServiceSignals {
  std::vector<std::string> settings;
  std::vector<std::string> roles;
  bool aurora_version_function = false;
};

// Which service the signals show. A service is recognized by what only it creates:
//   Aurora:    the function aurora_version();
//   RDS:       settings named rds.* (rds.logical_replication, rds.extensions, ...);
//   Cloud SQL: settings named cloudsql.* (cloudsql.logical_decoding, ...) or role
//              cloudsqlsuperuser;
//   Azure:     settings named azure.* (azure.extensions, ...) or role azure_pg_admin;
//   Neon:      settings named neon.* or role neon_superuser;
//   Supabase:  role supabase_admin or supabase_auth_admin.
// A role named rds_replication alone does not make a server RDS: any server may have a role of
// that name, and only on RDS does membership in it grant replication.
ManagedService DetectManagedService(const ServiceSignals& signals);

// What the capture learned about its source and the role it connects as.
struct SourceInfo {
  bool inspected = false;  // false until InspectSource filled it in
  int server_version_num = 0;
  std::string wal_level;
  std::string server_encoding;
  std::string database;
  std::string role;
  // The two names quoted as SQL identifiers (by libpq), for the commands the advice gives.
  std::string database_sql;
  std::string role_sql;
  bool superuser = false;
  bool replication = false;             // the role's REPLICATION attribute
  bool rds_replication_exists = false;  // a role named rds_replication exists
  bool rds_replication_member = false;  // the role is a member of it
  ManagedService service = ManagedService::kNone;
};

// "13.11" for 130011, "9.6.24" for 90624.
std::string FormatServerVersion(int server_version_num);

// Ok from PostgreSQL 14 on; kInvalidArgument naming the version found and the minimum.
Status CheckServerVersion(int server_version_num);
// Ok for wal_level=logical; otherwise kInvalidArgument saying how to change it on that service.
Status CheckWalLevel(const SourceInfo& info);
// Ok for a UTF8 database; otherwise kInvalidArgument.
Status CheckEncoding(const SourceInfo& info);

// Reads the facts above with ordinary SQL on "conn".
Result<SourceInfo> InspectSource(PGconn* conn);

// The checks at the start of the capture: inspects the source, checks its version, wal_level
// and encoding, then opens (and closes) a replication connection to "url", so that a role
// without the right to replicate, or a pg_hba.conf without a replication line, is reported with
// PostgreSQL's own reason before anything is created in the source.
Result<SourceInfo> CheckSource(PGconn* conn, const std::string& url);

// "error" (from connecting to, or running a statement on, the source) with advice added when
// it is one the capture knows how to fix on that service: no right to replicate, no pg_hba.conf
// line for replication, no right to create the publication, no free slot or WAL sender, or
// wal_level not logical. PostgreSQL's words stay in the message. A missing right becomes
// kInvalidArgument (a setup problem, as the capture's own check reported it before); the rest
// keep their code. Any other error is returned unchanged.
Status ExplainSourceError(const Status& error, const SourceInfo& info);
// The same for a Result: its value as it is, its error explained.
template <typename T>
Result<T> ExplainSourceError(Result<T> result, const SourceInfo& info) {
  if (result.ok()) return result;
  return ExplainSourceError(result.status(), info);
}

}  // namespace timetrail::capture

#endif  // TIMETRAIL_CAPTURE_SOURCE_CHECKS_H_
