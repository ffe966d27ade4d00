// What each service's own documentation says is set below:
//
// Amazon RDS and Aurora: rds.logical_replication = 1 in the (cluster) parameter group, then a
// reboot; the rds_replication role grants managing and streaming from logical slots.
// https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/PostgreSQL.Concepts.General.FeatureSupport.LogicalReplication.html
//
// Google Cloud SQL: flag cloudsql.logical_decoding = on; ALTER USER ... WITH REPLICATION.
// https://cloud.google.com/sql/docs/postgres/replication/configure-logical-replication
//
// Azure flexible server: server parameter wal_level = logical and a restart; ALTER ROLE ...
// WITH REPLICATION.
// https://learn.microsoft.com/en-us/azure/postgresql/flexible-server/concepts-logical
//
// Supabase: logical decoding is on; CREATE ROLE ... WITH REPLICATION as the postgres user.
// https://supabase.com/docs/guides/database/postgres/setup-replication-external
//
// Neon: logical replication is enabled in the project settings.
// https://neon.com/docs/guides/logical-replication-neon
#include "capture/source_checks.h"

#include <algorithm>
#include <cctype>

#include "capture/pg.h"

namespace timetrail::capture {
namespace {

bool Has(const std::vector<std::string>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool AnyWithPrefix(const std::vector<std::string>& names, std::string_view prefix) {
  return std::any_of(names.begin(), names.end(),
                     [&](const std::string& n) { return n.rfind(prefix, 0) == 0; });
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool Contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// The source problems the capture knows how to explain.
enum class Problem {
  kNone,
  kReplicationRight,   // the role may not start a WAL sender or use replication slots
  kReplicationHba,     // pg_hba.conf has no line that lets the role open a replication connection
  kConnectOnDatabase,  // the role may not connect to the database
  kCreateOnDatabase,   // CREATE PUBLICATION: no CREATE right on the database
  kTableOwner,         // CREATE PUBLICATION ... FOR TABLE: the role does not own a table
  kAllTables,          // CREATE PUBLICATION FOR ALL TABLES / TABLES IN SCHEMA: needs a superuser
  kNoFreeSlot,         // max_replication_slots reached
  kNoFreeWalSender,    // max_wal_senders reached
  kWalLevel,           // wal_level is not logical
};

// Matches the messages of PostgreSQL 14 to 17 (their wording changed in 16).
Problem Classify(const std::string& message) {
  std::string m = Lower(message);
  if (Contains(m, "must be superuser or replication role") ||
      Contains(m, "permission denied to start wal sender") ||
      Contains(m, "permission denied to use replication slots")) {
    return Problem::kReplicationRight;
  }
  if (Contains(m, "pg_hba.conf entry for replication connection") ||
      Contains(m, "pg_hba.conf rejects replication connection")) {
    return Problem::kReplicationHba;
  }
  if (Contains(m, "permission denied for database")) {
    return Contains(m, "connect privilege") ? Problem::kConnectOnDatabase
                                            : Problem::kCreateOnDatabase;
  }
  if (Contains(m, "must be owner of table") || Contains(m, "must be owner of relation")) {
    return Problem::kTableOwner;
  }
  if (Contains(m, "for all tables publication") ||
      Contains(m, "for tables in schema publication")) {
    return Problem::kAllTables;
  }
  if (Contains(m, "all replication slots are in use")) return Problem::kNoFreeSlot;
  if (Contains(m, "exceeds max_wal_senders")) return Problem::kNoFreeWalSender;
  if (Contains(m, "logical decoding requires")) return Problem::kWalLevel;
  return Problem::kNone;
}

std::string DocsRef(ManagedService s) {
  return s == ManagedService::kNone ? "(docs/capture.md, \"Source settings\")"
                                    : "(docs/capture.md, \"Managed PostgreSQL\")";
}

// Who may run a GRANT or ALTER ROLE on that service.
std::string Admin(ManagedService s) {
  switch (s) {
    case ManagedService::kNone:
      return "a superuser";
    case ManagedService::kRds:
    case ManagedService::kAurora:
      return "the master user (a member of rds_superuser)";
    case ManagedService::kCloudSql:
      return "a member of cloudsqlsuperuser (such as the postgres user)";
    case ManagedService::kAzure:
      return "the server admin (a member of azure_pg_admin)";
    case ManagedService::kSupabase:
      return "the postgres user (as the SQL editor does)";
    case ManagedService::kNeon:
      return "a member of neon_superuser (roles made in the Neon Console, CLI or API are)";
  }
  return "an administrator";
}

std::string WalLevelAdvice(ManagedService s) {
  switch (s) {
    case ManagedService::kNone:
      return "Run ALTER SYSTEM SET wal_level = logical; and restart PostgreSQL";
    case ManagedService::kRds:
      return "On Amazon RDS set rds.logical_replication = 1 in the instance's DB parameter group "
             "(a custom one: the default group cannot be changed) and reboot the instance; "
             "wal_level follows it";
    case ManagedService::kAurora:
      return "On Amazon Aurora set rds.logical_replication = 1 in the DB cluster parameter group "
             "(a custom one: the default group cannot be changed) and reboot the writer "
             "instance; wal_level follows it";
    case ManagedService::kCloudSql:
      return "On Google Cloud SQL set the database flag cloudsql.logical_decoding to on (the "
             "instance restarts); wal_level follows it";
    case ManagedService::kAzure:
      return "On Azure Database for PostgreSQL flexible server set the server parameter "
             "wal_level to logical (portal: Server parameters) and restart the server";
    case ManagedService::kSupabase:
      return "Supabase runs its databases with wal_level=logical already, so this URL does not "
             "lead to the project's primary database: use its direct connection string";
    case ManagedService::kNeon:
      return "On Neon enable logical replication in the project settings (it restarts the "
             "project's computes and cannot be turned off again)";
  }
  return "";
}

// How to raise a server setting that needs a restart on that service.
std::string RaiseSetting(ManagedService s, const std::string& name) {
  switch (s) {
    case ManagedService::kNone:
      return "ALTER SYSTEM SET " + name + " = <more>; and restart PostgreSQL";
    case ManagedService::kRds:
      return "raise " + name + " in the instance's DB parameter group and reboot it";
    case ManagedService::kAurora:
      return "raise " + name + " in the DB cluster parameter group and reboot the writer";
    case ManagedService::kCloudSql:
      return "raise the database flag " + name + " (the instance restarts)";
    case ManagedService::kAzure:
      return "raise the server parameter " + name + " and restart the server";
    case ManagedService::kSupabase:
    case ManagedService::kNeon:
      return "see " + std::string(ManagedServiceName(s)) + "'s limits for " + name;
  }
  return "";
}

std::string ReplicationRightAdvice(const SourceInfo& info) {
  if (!info.inspected) {
    return "Give the role the right to replicate: ALTER ROLE <role> REPLICATION; on "
           "self-managed PostgreSQL, GRANT rds_replication TO <role>; on Amazon RDS and Aurora "
           "(docs/capture.md, \"Managed PostgreSQL\")";
  }
  const std::string& role = info.role_sql;
  std::string who = Admin(info.service);
  std::string head = "Role " + info.role +
                     " may not read the write-ahead log through logical "
                     "replication. ";
  switch (info.service) {
    case ManagedService::kNone: {
      std::string advice = head + "Run ALTER ROLE " + role + " REPLICATION; as " + who +
                           ", or connect as a role that has it";
      if (info.rds_replication_member) {
        advice += " (role " + info.role +
                  " is a member of rds_replication, but that grants replication only on Amazon "
                  "RDS and Aurora, and this server shows no rds.* setting)";
      }
      return advice + " " + DocsRef(info.service);
    }
    case ManagedService::kRds:
    case ManagedService::kAurora: {
      std::string advice = head + "On " + std::string(ManagedServiceName(info.service)) +
                           " replication is granted through the rds_replication role: run GRANT "
                           "rds_replication TO " +
                           role + "; as " + who;
      if (info.rds_replication_member) {
        advice += " (role " + info.role +
                  " is a member already: check that the parameter group sets "
                  "rds.logical_replication = 1 and that the instance was rebooted since)";
      }
      return advice + " " + DocsRef(info.service);
    }
    case ManagedService::kCloudSql:
      return head + "On Google Cloud SQL run ALTER USER " + role + " WITH REPLICATION; as " + who +
             " " + DocsRef(info.service);
    case ManagedService::kAzure:
      return head + "On Azure Database for PostgreSQL run ALTER ROLE " + role +
             " WITH REPLICATION; as " + who + " " + DocsRef(info.service);
    case ManagedService::kSupabase:
      return head + "On Supabase run ALTER ROLE " + role + " WITH REPLICATION; as " + who +
             ", or connect as postgres, which has it " + DocsRef(info.service);
    case ManagedService::kNeon:
      return head + "On Neon run ALTER ROLE " + role + " WITH REPLICATION; as " + who +
             ", or connect as such a role " + DocsRef(info.service);
  }
  return head;
}

std::string HbaAdvice(const SourceInfo& info) {
  std::string role = info.inspected ? info.role : "<role>";
  if (info.inspected && info.service != ManagedService::kNone) {
    std::string advice = std::string(ManagedServiceName(info.service)) +
                         " manages pg_hba.conf and refuses replication connections of roles "
                         "that may not replicate";
    if (info.service == ManagedService::kSupabase || info.service == ManagedService::kNeon) {
      advice +=
          "; connect directly, not through the connection pooler, which does not pass "
          "replication connections on";
    }
    return advice + ". " + ReplicationRightAdvice(info);
  }
  return "The database column of a replication connection's pg_hba.conf line must say "
         "replication (all does not match it): add a line such as \"host replication " +
         role +
         " <capture's address>/32 scram-sha-256\" to pg_hba.conf and reload it (SELECT "
         "pg_reload_conf();) " +
         DocsRef(ManagedService::kNone);
}

std::string Advice(Problem p, const SourceInfo& info) {
  ManagedService s = info.service;
  std::string role = info.inspected ? info.role_sql : "<role>";
  std::string db = info.inspected ? info.database_sql : "<database>";
  std::string publication_elsewhere =
      "or have a role that may create it run CREATE PUBLICATION <name> FOR TABLE ...; and name "
      "it with --publication";
  switch (p) {
    case Problem::kNone:
      return "";
    case Problem::kReplicationRight:
      return ReplicationRightAdvice(info);
    case Problem::kReplicationHba:
      return HbaAdvice(info);
    case Problem::kConnectOnDatabase:
      return "Run GRANT CONNECT ON DATABASE " + db + " TO " + role + "; as the database's owner " +
             DocsRef(s);
    case Problem::kCreateOnDatabase:
      return "The capture creates its publication as role " + (info.inspected ? info.role : "?") +
             ", which needs the CREATE right on the database: run GRANT CREATE ON DATABASE " + db +
             " TO " + role + "; as the database's owner or " + Admin(s) + ", " +
             publication_elsewhere + " " + DocsRef(s);
    case Problem::kTableOwner:
      return "A publication FOR TABLE may list only tables its creator owns: make role " +
             (info.inspected ? info.role : "<role>") +
             " the owner of the captured tables (ALTER TABLE ... OWNER TO " + role + ";), " +
             publication_elsewhere + " " + DocsRef(s);
    case Problem::kAllTables:
      return "Without --tables or --table-pattern the capture creates its publication FOR ALL "
             "TABLES, which needs a superuser" +
             std::string(s == ManagedService::kNone ? ""
                                                    : ", and managed services give no one "
                                                      "superuser") +
             ": name the tables with --tables or --table-pattern (the role must own them), or "
             "have a superuser create the publication and name it with --publication " +
             DocsRef(s);
    case Problem::kNoFreeSlot:
      return "Every replication slot is taken: drop one that is no longer read (see "
             "pg_replication_slots; SELECT pg_drop_replication_slot('<name>');) or " +
             RaiseSetting(s, "max_replication_slots") + " " + DocsRef(s);
    case Problem::kNoFreeWalSender:
      return "Every WAL sender is busy: stop a replication client or " +
             RaiseSetting(s, "max_wal_senders") + " " + DocsRef(s);
    case Problem::kWalLevel:
      return WalLevelAdvice(s) + " " + DocsRef(s);
  }
  return "";
}

}  // namespace

std::string_view ManagedServiceName(ManagedService service) {
  switch (service) {
    case ManagedService::kNone:
      return "self-managed PostgreSQL";
    case ManagedService::kRds:
      return "Amazon RDS";
    case ManagedService::kAurora:
      return "Amazon Aurora";
    case ManagedService::kCloudSql:
      return "Google Cloud SQL";
    case ManagedService::kAzure:
      return "Azure Database for PostgreSQL";
    case ManagedService::kSupabase:
      return "Supabase";
    case ManagedService::kNeon:
      return "Neon";
  }
  return "PostgreSQL";
}

ManagedService DetectManagedService(const ServiceSignals& signals) {
  const auto& settings = signals.settings;
  const auto& roles = signals.roles;
  if (signals.aurora_version_function) return ManagedService::kAurora;
  if (AnyWithPrefix(settings, "rds.")) return ManagedService::kRds;
  if (AnyWithPrefix(settings, "cloudsql.") || Has(roles, "cloudsqlsuperuser")) {
    return ManagedService::kCloudSql;
  }
  if (AnyWithPrefix(settings, "azure.") || Has(roles, "azure_pg_admin")) {
    return ManagedService::kAzure;
  }
  if (AnyWithPrefix(settings, "neon.") || Has(roles, "neon_superuser")) {
    return ManagedService::kNeon;
  }
  if (Has(roles, "supabase_admin") || Has(roles, "supabase_auth_admin")) {
    return ManagedService::kSupabase;
  }
  return ManagedService::kNone;
}

std::string FormatServerVersion(int n) {
  if (n >= 100000) return std::to_string(n / 10000) + "." + std::to_string(n % 10000);
  return std::to_string(n / 10000) + "." + std::to_string(n / 100 % 100) + "." +
         std::to_string(n % 100);
}

Status CheckServerVersion(int server_version_num) {
  if (server_version_num >= kMinServerVersionNum) return Status::Ok();
  return Status::InvalidArgument(
      "the source runs PostgreSQL " + FormatServerVersion(server_version_num) +
      "; capture needs PostgreSQL " + std::to_string(kMinServerVersionNum / 10000) +
      " or later: it reads the application's who/why context from transactional logical "
      "messages, which pgoutput streams (its \"messages\" option) only from PostgreSQL 14 on. "
      "Upgrade the source (docs/capture.md, \"Source settings\")");
}

Status CheckWalLevel(const SourceInfo& info) {
  if (info.wal_level == "logical") return Status::Ok();
  return Status::InvalidArgument(
      "the source has wal_level=" + info.wal_level +
      "; capture reads changes through logical replication, which needs wal_level=logical. " +
      WalLevelAdvice(info.service) + " " + DocsRef(info.service));
}

Status CheckEncoding(const SourceInfo& info) {
  // Events hold JSON, which is UTF-8; pgoutput sends text in the database's own encoding.
  if (info.server_encoding == "UTF8") return Status::Ok();
  return Status::InvalidArgument(
      "the source database's encoding is " + info.server_encoding +
      "; capture records rows as JSON, which is UTF-8, and reads only UTF8 databases "
      "(docs/capture.md, \"Source settings\"). Capture a UTF8 copy of the database, e.g. one "
      "made with CREATE DATABASE ... ENCODING 'UTF8' TEMPLATE template0 and a dump restored "
      "into it");
}

Result<SourceInfo> InspectSource(PGconn* conn) {
  // pg_has_role is given the role's oid: by name it fails where no rds_replication exists.
  TT_ASSIGN_OR_RETURN(
      auto facts,
      PgQuery(conn,
              "SELECT current_setting('server_version_num'), current_setting('wal_level'), "
              "current_setting('server_encoding'), current_database(), current_user, "
              "r.rolsuper, r.rolreplication, rr.oid IS NOT NULL, "
              "CASE WHEN rr.oid IS NULL THEN false "
              "ELSE pg_has_role(current_user, rr.oid, 'MEMBER') END "
              "FROM pg_roles r LEFT JOIN pg_roles rr ON rr.rolname = 'rds_replication' "
              "WHERE r.rolname = current_user"));
  if (facts.empty() || facts[0].size() < 9) {
    return Status::Internal("the source did not describe the role it was connected as");
  }
  const PgRow& f = facts[0];
  SourceInfo info;
  info.inspected = true;
  try {
    info.server_version_num = std::stoi(f[0].value_or("0"));
  } catch (const std::exception&) {
    return Status::Internal("the source reported server_version_num '" + f[0].value_or("") + "'");
  }
  info.wal_level = f[1].value_or("");
  info.server_encoding = f[2].value_or("");
  info.database = f[3].value_or("");
  info.role = f[4].value_or("");
  info.superuser = f[5].value_or("f") == "t";
  info.replication = f[6].value_or("f") == "t";
  info.rds_replication_exists = f[7].value_or("f") == "t";
  info.rds_replication_member = f[8].value_or("f") == "t";
  TT_ASSIGN_OR_RETURN(info.database_sql, PgQuoteIdent(conn, info.database));
  TT_ASSIGN_OR_RETURN(info.role_sql, PgQuoteIdent(conn, info.role));

  TT_ASSIGN_OR_RETURN(
      auto rows,
      PgQuery(conn,
              "SELECT 's', name FROM pg_settings WHERE name LIKE 'rds.%' OR name LIKE "
              "'cloudsql.%' OR name LIKE 'azure.%' OR name LIKE 'neon.%' "
              // The services' best-known settings also when pg_settings does not list them
              // (as for a setting no loaded module defines).
              "UNION ALL SELECT 's', n FROM unnest(ARRAY['rds.logical_replication', "
              "'cloudsql.logical_decoding', 'azure.extensions', 'neon.timeline_id']) n "
              "WHERE current_setting(n, true) IS NOT NULL "
              "UNION ALL SELECT 'r', rolname::text FROM pg_roles WHERE rolname IN "
              "('cloudsqlsuperuser', 'azure_pg_admin', 'neon_superuser', 'supabase_admin', "
              "'supabase_auth_admin') "
              "UNION ALL SELECT 'f', proname::text FROM pg_proc WHERE proname = 'aurora_version'"));
  ServiceSignals signals;
  for (const auto& r : rows) {
    std::string kind = r[0].value_or(""), name = r[1].value_or("");
    if (kind == "s") signals.settings.push_back(name);
    if (kind == "r") signals.roles.push_back(name);
    if (kind == "f") signals.aurora_version_function = true;
  }
  info.service = DetectManagedService(signals);
  return info;
}

Result<SourceInfo> CheckSource(PGconn* conn, const std::string& url) {
  TT_ASSIGN_OR_RETURN(SourceInfo info, InspectSource(conn));
  TT_RETURN_IF_ERROR(CheckServerVersion(info.server_version_num));
  TT_RETURN_IF_ERROR(CheckWalLevel(info));
  TT_RETURN_IF_ERROR(CheckEncoding(info));
  // Whether the role may replicate is PostgreSQL's to say (a service may grant it other than
  // by the REPLICATION attribute): ask it with a replication connection, before anything is
  // created in the source.
  auto probe = PgConnect(url, true);
  if (!probe.ok()) return ExplainSourceError(probe.status(), info);
  return info;
}

Status ExplainSourceError(const Status& error, const SourceInfo& info) {
  if (error.ok()) return error;
  Problem p = Classify(error.message());
  if (p == Problem::kNone) return error;
  std::string message = error.message();
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  message += ". " + Advice(p, info);
  bool missing_right = p == Problem::kReplicationRight || p == Problem::kConnectOnDatabase ||
                       p == Problem::kCreateOnDatabase || p == Problem::kTableOwner ||
                       p == Problem::kAllTables;
  if (missing_right || error.code() == StatusCode::kInvalidArgument) {
    return Status::InvalidArgument(std::move(message));
  }
  if (error.code() == StatusCode::kUnavailable) return Status::Unavailable(std::move(message));
  return error;
}

}  // namespace timetrail::capture
