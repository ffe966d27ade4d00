#include "cli/serve_command.h"

#include <arpa/inet.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "capture/capture.h"
#include "capture/capture_api.h"
#include "project/projection_service.h"
#include "project/projections_api.h"
#include "server/http_server.h"
#include "storage/postgres_engine.h"
#include "timetrail/store.h"

namespace timetrail::cli {
namespace {

using server::HttpServer;
using server::ServerOptions;

struct ServeFlags {
  std::string data = "./timetrail-data";
  std::string store;  // a postgresql:// URL: the store is kept there instead of in "data"
  std::string store_schema = "timetrail_store";
  std::string read_replica;  // a streaming replica of "store" that serves the reads
  std::string listen = "127.0.0.1:7070";
  std::string config;
  std::size_t max_body_bytes = 20u << 20;
  std::size_t max_header_bytes = 16u << 10;
  std::size_t max_connections = 1024;
  std::uint32_t request_timeout_ms = 30000;
  std::size_t io_threads = 2;
  std::size_t worker_threads = 64;
  std::uint32_t keepalive_ms = 15000;
  std::uint32_t idle_timeout_ms = 30000;
  std::uint32_t subscriber_write_timeout_ms = 30000;
  std::size_t max_subscriptions = 1000;
  bool no_sync = false;
  std::string capture_url;  // record a PostgreSQL database's changes too (docs/capture.md)
  std::string capture_slot = "timetrail";
  std::string project_config;  // keep projections in step (docs/projections.md)
  std::string auth = "auto";   // on, off, or auto: on unless listening on loopback only
  std::string backup_dir;      // where POST /v1/backup may write; empty: nowhere
  std::string tls_cert;        // HTTPS: PEM certificate chain
  std::string tls_key;         // and its PEM private key
};

// Whether only this machine can reach "host": 127.0.0.0/8, ::1 or "localhost".
bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

// "HOST:PORT", "[v6]:PORT" or ":PORT".
bool SplitListen(const std::string& listen, std::string* host, std::uint16_t* port) {
  std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return false;
  *host = listen.substr(0, colon);
  if (host->empty()) *host = "127.0.0.1";
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  std::string p = listen.substr(colon + 1);
  unsigned v = 0;
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
  if (p.empty() || ec != std::errc() || ptr != p.data() + p.size() || v > 65535) return false;
  *port = static_cast<std::uint16_t>(v);
  return true;
}

// Applies "key = value" lines of the config file to options not already set by a flag or an
// environment variable. Unknown keys are an error, so a typo does not go unnoticed.
void ApplyConfigFile(CLI::App* cmd, const std::string& path) {
  std::ifstream in(path);
  if (!in) throw CLI::ValidationError("--config", "cannot read config file '" + path + "'");
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    auto trim = [](std::string s) {
      std::size_t b = s.find_first_not_of(" \t\r");
      std::size_t e = s.find_last_not_of(" \t\r");
      return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
    };
    std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';' || t[0] == '[') continue;
    std::size_t eq = t.find('=');
    if (eq == std::string::npos) {
      throw CLI::ValidationError("--config",
                                 path + ":" + std::to_string(lineno) + ": expected 'key = value'");
    }
    std::string key = trim(t.substr(0, eq));
    std::string value = trim(t.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    for (char& c : key) {
      if (c == '_') c = '-';
    }
    CLI::Option* opt = nullptr;
    try {
      opt = cmd->get_option("--" + key);
    } catch (const CLI::OptionNotFound&) {
      throw CLI::ValidationError(
          "--config", path + ":" + std::to_string(lineno) + ": unknown key '" + key + "'");
    }
    if (key == "config") continue;
    if (opt->count() > 0) continue;  // a flag or environment variable wins
    opt->add_result(value);
    opt->run_callback();
  }
}

// Says on stderr whether requests need a token, and how to make the first one.
void ReportAuth(const HttpServer& server, bool required, const std::string& data_dir) {
  if (!required) {
    std::cerr << "timetrail serve: authentication off: requests without a token may do "
                 "everything (--auth on to require tokens)"
              << std::endl;
    return;
  }
  std::size_t active = server.active_tokens();
  std::cerr << "timetrail serve: authentication on: " << active << " active token"
            << (active == 1 ? "" : "s") << std::endl;
  if (active == 0) {
    std::cerr << "timetrail serve: no token can authenticate yet, so every request but "
                 "/healthz is refused; stop the server and create one with\n"
                 "  timetrail token create --data "
              << data_dir << " --scope admin --name admin" << std::endl;
  }
}

int RunServe(const ServeFlags& f) {
  ServerOptions so;
  if (!SplitListen(f.listen, &so.host, &so.port)) {
    std::cerr << "timetrail serve: --listen must be HOST:PORT (e.g. 127.0.0.1:7070), got '"
              << f.listen << "'\n";
    return 2;
  }
  so.max_body_bytes = f.max_body_bytes;
  so.max_header_bytes = f.max_header_bytes;
  so.max_connections = f.max_connections;
  so.request_timeout_ms = f.request_timeout_ms;
  so.io_threads = f.io_threads == 0 ? 1 : f.io_threads;
  so.worker_threads = f.worker_threads == 0 ? 1 : f.worker_threads;
  so.keepalive_ms = f.keepalive_ms == 0 ? 1 : f.keepalive_ms;
  so.idle_timeout_ms = f.idle_timeout_ms == 0 ? 1 : f.idle_timeout_ms;
  so.subscriber_write_timeout_ms =
      f.subscriber_write_timeout_ms == 0 ? 1 : f.subscriber_write_timeout_ms;
  so.max_subscriptions = f.max_subscriptions;
  if (!f.backup_dir.empty()) {
    std::error_code ec;
    std::filesystem::path dir = std::filesystem::absolute(f.backup_dir, ec);
    if (ec || !std::filesystem::is_directory(dir, ec)) {
      std::cerr << "timetrail serve: --backup-dir '" << f.backup_dir
                << "' is not an existing directory\n";
      return 2;
    }
    so.backup_dir = dir.lexically_normal().string();
  }
  so.tls_cert_file = f.tls_cert;
  so.tls_key_file = f.tls_key;
  if (f.auth == "auto") {
    so.auth.required = !IsLoopbackHost(so.host);
  } else if (f.auth == "on" || f.auth == "off") {
    so.auth.required = f.auth == "on";
  } else {
    std::cerr << "timetrail serve: --auth must be on, off or auto, got '" << f.auth << "'\n";
    return 2;
  }

  // Before the data directory is opened (or created): a bad flag changes nothing.
  if (Status tls = server::CheckTlsFiles(so); !tls.ok()) {
    std::cerr << "timetrail serve: " << tls.ToString() << "\n";
    return 2;
  }
  Options options;
  options.sync = !f.no_sync;
  options.postgres_schema = f.store_schema;
  const std::string location = f.store.empty() ? f.data : f.store;
  const std::string where = f.store.empty() ? "data directory '" + f.data + "'"
                                            : DescribePostgresStore(f.store, f.store_schema);
  if (!f.store.empty() && !IsPostgresUrl(f.store)) {
    std::cerr << "timetrail serve: --store must be a postgresql:// URL, got '" << f.store
              << "' (a data directory goes in --data)\n";
    return 2;
  }
  if (!f.read_replica.empty()) {
    if (f.store.empty()) {
      std::cerr << "timetrail serve: --read-replica is for a store kept in PostgreSQL (--store "
                   "postgresql://...), not for a data directory\n";
      return 2;
    }
    if (!IsPostgresUrl(f.read_replica)) {
      std::cerr << "timetrail serve: --read-replica must be a postgresql:// URL, like --store\n";
      return 2;
    }
    options.postgres_read_replica = f.read_replica;
  }
  Result<std::unique_ptr<EventStore>> store = EventStore::Open(options, location);
  if (!store.ok()) {
    std::cerr << "timetrail serve: cannot open " << where << ": " << store.status().ToString()
              << "\n";
    return store.status().code() == StatusCode::kUnavailable ? 5 : 1;
  }
  std::unique_ptr<capture::BackgroundCapture> capture;
  std::optional<capture::CaptureLink> capture_link;
  if (!f.capture_url.empty()) {
    capture::CaptureOptions co;
    co.source_url = f.capture_url;
    co.slot = f.capture_slot;
    co.publication = f.capture_slot;
    // A store in the source database must not record its own tables' changes.
    if (!f.store.empty()) co.skip_schemas.push_back(f.store_schema);
    co.log = [](const std::string& line) { std::cerr << "capture: " << line << std::endl; };
    auto started = capture::BackgroundCapture::Start(store->get(), co);
    if (!started.ok()) {
      std::cerr << "timetrail serve: --capture: " << started.status().ToString() << "\n";
      return started.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
    }
    capture = std::move(started).value();
    capture::CaptureLink link;
    link.source_url = f.capture_url;
    link.slot = f.capture_slot;
    capture::BackgroundCapture* running = capture.get();
    link.stats = [running] { return running->stats(); };
    capture_link = std::move(link);
  }
  // Served without a capture too: they answer 404 and say how to start one.
  so.extensions.push_back(capture::CaptureApi(std::move(capture_link)));
  std::unique_ptr<project::ProjectionService> projections;
  if (!f.project_config.empty()) {
    Result<project::ProjectorConfig> config = project::LoadProjectorConfig(f.project_config);
    Result<std::unique_ptr<project::ProjectionService>> started =
        config.ok() ? project::ProjectionService::Start(
                          **store, std::move(*config),
                          [](const std::string& line) { std::cerr << line << std::endl; })
                    : Result<std::unique_ptr<project::ProjectionService>>(config.status());
    if (!started.ok()) {
      std::cerr << "timetrail serve: --project: " << started.status().ToString() << "\n";
      if (capture) (void)capture->Stop();
      return 2;
    }
    projections = std::move(started).value();
  }
  so.extensions.push_back(project::ProjectionsApi(projections.get()));
  {
    HttpServer server(store->get(), so);
    Status s = server.Start();
    if (!s.ok()) {
      std::cerr << "timetrail serve: " << s.ToString() << "\n";
      return s.code() == StatusCode::kInvalidArgument ? 2 : 1;
    }
    std::cout << "listening on " << (so.tls_cert_file.empty() ? "http" : "https") << "://"
              << server.address() << std::endl;
    ReportAuth(server, so.auth.required, f.data);
    std::cerr << "timetrail serve: " << where << ", last position " << (*store)->LastPosition();
    if (!f.read_replica.empty()) {
      std::cerr << "; reads from the read replica ("
                << DescribePostgresStore(f.read_replica, f.store_schema) << ")";
    }
    std::cerr << "; stop with Ctrl-C or SIGTERM" << std::endl;
    std::cerr << "timetrail serve: web UI at " << (so.tls_cert_file.empty() ? "http" : "https")
              << "://" << server.address() << "/ui/ (docs/ui.md)" << std::endl;
    server.Run();
  }
  if (capture) (void)capture->Stop();  // before the store closes
  if (projections) projections->Stop();
  store->reset();  // commits queued appends and closes the store
  std::cerr << "timetrail serve: stopped cleanly" << std::endl;
  return 0;
}

}  // namespace

void AddServeCommand(CLI::App& app) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "Serve the HTTP API v1 over a data directory until SIGTERM or Ctrl-C");
  cmd->footer(
      "Every option can also be set by an environment variable (shown as Env) or in a config\n"
      "file given by --config, one 'key = value' line per option, keys named like the long\n"
      "options (e.g. 'listen = 0.0.0.0:7070'). Flags win over the environment, which wins\n"
      "over the file. With --listen HOST:0 a free port is chosen; the first line on stdout is\n"
      "always 'listening on http://HOST:PORT' (https with --tls-cert). See docs/http-api.md.");
  cmd->add_option("--data", flags->data, "Data directory (created if missing)")
      ->envname("TIMETRAIL_DATA")
      ->capture_default_str();
  cmd->add_option("--store", flags->store,
                  "Keep the store in this PostgreSQL database instead of --data, e.g. "
                  "postgresql://timetrail@db/shop (one writing server per store; see "
                  "docs/postgresql-store.md)")
      ->envname("TIMETRAIL_STORE");
  cmd->add_option("--store-schema", flags->store_schema,
                  "Schema of the --store database that holds the store (created if missing)")
      ->envname("TIMETRAIL_STORE_SCHEMA")
      ->capture_default_str();
  cmd->add_option("--read-replica", flags->read_replica,
                  "Send every read to this streaming replica (hot standby) of the --store "
                  "database, e.g. postgresql://timetrail@db-replica/shop; appends still go to "
                  "--store. Reads without min_position may miss the latest appends; with it "
                  "they wait until the replica has them (docs/scaling.md)")
      ->envname("TIMETRAIL_READ_REPLICA");
  cmd->add_option("--listen", flags->listen, "Address to listen on, HOST:PORT (port 0: any free)")
      ->envname("TIMETRAIL_LISTEN")
      ->capture_default_str();
  cmd->add_option("--config", flags->config, "Config file of 'key = value' lines")
      ->envname("TIMETRAIL_CONFIG");
  cmd->add_option("--max-body-bytes", flags->max_body_bytes, "Largest request body accepted")
      ->envname("TIMETRAIL_MAX_BODY_BYTES")
      ->capture_default_str();
  cmd->add_option("--max-header-bytes", flags->max_header_bytes, "Largest request header block")
      ->envname("TIMETRAIL_MAX_HEADER_BYTES")
      ->capture_default_str();
  cmd->add_option("--max-connections", flags->max_connections,
                  "Open connections allowed; more are answered 503")
      ->envname("TIMETRAIL_MAX_CONNECTIONS")
      ->capture_default_str();
  cmd->add_option("--request-timeout-ms", flags->request_timeout_ms,
                  "Time allowed to receive one whole request, head and body; a client still "
                  "sending after it gets 408 and is disconnected")
      ->envname("TIMETRAIL_REQUEST_TIMEOUT_MS")
      ->capture_default_str();
  cmd->add_option("--io-threads", flags->io_threads,
                  "Event-loop threads; they also answer entity reads, stream info and /healthz, "
                  "and queue appends, which are answered once durable")
      ->envname("TIMETRAIL_IO_THREADS")
      ->capture_default_str();
  cmd->add_option("--worker-threads", flags->worker_threads,
                  "Threads for every other request (longer reads, min_position waits, "
                  "administration)")
      ->envname("TIMETRAIL_WORKER_THREADS")
      ->capture_default_str();
  cmd->add_option("--keepalive-ms", flags->keepalive_ms,
                  "Interval of ': keepalive' comments on idle subscriptions")
      ->envname("TIMETRAIL_KEEPALIVE_MS")
      ->capture_default_str();
  cmd->add_option("--idle-timeout-ms", flags->idle_timeout_ms,
                  "A keep-alive connection sending no new request for this long is closed")
      ->envname("TIMETRAIL_IDLE_TIMEOUT_MS")
      ->capture_default_str();
  cmd->add_option("--subscriber-write-timeout-ms", flags->subscriber_write_timeout_ms,
                  "A subscriber that reads nothing for this long while events wait is dropped")
      ->envname("TIMETRAIL_SUBSCRIBER_WRITE_TIMEOUT_MS")
      ->capture_default_str();
  cmd->add_option("--auth", flags->auth,
                  "Require an API token on every request but /healthz: on, off, or auto (on "
                  "unless listening on a loopback address); see docs/security.md")
      ->check(CLI::IsMember({"on", "off", "auto"}))
      ->envname("TIMETRAIL_AUTH")
      ->capture_default_str();
  cmd->add_option("--backup-dir", flags->backup_dir,
                  "Allow online backups (POST /v1/backup, `timetrail backup --server`) into new "
                  "directories inside this one; off without it")
      ->envname("TIMETRAIL_BACKUP_DIR");
  cmd->add_option("--tls-cert", flags->tls_cert,
                  "Serve HTTPS with this PEM certificate (chain) file; needs --tls-key")
      ->envname("TIMETRAIL_TLS_CERT");
  cmd->add_option("--tls-key", flags->tls_key, "PEM private key of --tls-cert")
      ->envname("TIMETRAIL_TLS_KEY");
  cmd->add_option("--max-subscriptions", flags->max_subscriptions,
                  "Open subscriptions allowed; more are answered 503")
      ->envname("TIMETRAIL_MAX_SUBSCRIPTIONS")
      ->capture_default_str();
  cmd->add_flag("--no-sync", flags->no_sync,
                "Acknowledge appends before fsync (throwaway data only: a crash loses them)")
      ->envname("TIMETRAIL_NO_SYNC");
  cmd->add_option("--capture", flags->capture_url,
                  "Also record every row change of this PostgreSQL database (logical "
                  "replication; see docs/capture.md and `timetrail capture --help`)")
      ->envname("TIMETRAIL_CAPTURE");
  cmd->add_option("--project", flags->project_config,
                  "JSON file of projections to keep in step in a PostgreSQL database while "
                  "serving (docs/projections.md); their progress is at GET /v1/projections")
      ->check(CLI::ExistingFile);
  cmd->add_option("--capture-slot", flags->capture_slot,
                  "Replication slot and publication name for --capture")
      ->envname("TIMETRAIL_CAPTURE_SLOT")
      ->capture_default_str();
  cmd->callback([flags, cmd] {
    if (!flags->config.empty()) ApplyConfigFile(cmd, flags->config);
    int code = RunServe(*flags);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

}  // namespace timetrail::cli
