#include "cli/backend.h"

#include "storage/postgres_engine.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <thread>

#include "capture/capture_api.h"
#include "json/json_writer.h"
#include "json/raw_json.h"
#include "server/api.h"
#include "storage/postgres_engine.h"
#include "subscribe/hub.h"

namespace timetrail::cli {
namespace {

// Set by SIGINT or SIGTERM while a data directory is followed (DataBackend::Subscribe).
std::atomic<bool> stop_following{false};
extern "C" void OnStopFollowing(int) { stop_following.store(true); }

class ServerBackend final : public Backend {
 public:
  ServerBackend(ServerAddress address, std::string token)
      : address_(std::move(address)), token_(std::move(token)), connection_(address_) {}

  Result<HttpResponse> Call(std::string_view method, std::string_view target, std::string_view body,
                            const Headers& headers) override {
    return connection_.Request(method, target, body, WithToken(headers));
  }

  Status Subscribe(std::string_view query, const Headers& headers,
                   const std::function<bool(std::string_view)>& on_event,
                   HttpResponse* error_response) override {
    std::string target = "/v1/subscribe";
    if (!query.empty()) target += "?" + std::string(query);
    return ReadEventStream(
        address_, target, WithToken(headers),
        [&](const SseMessage& m) { return m.event != "event" || on_event(m.data); },
        error_response);
  }

  std::string Describe() const override { return "server " + address_.ToString(); }

 private:
  Headers WithToken(const Headers& headers) const {
    if (token_.empty()) return headers;
    Headers out = headers;
    out.emplace_back("Authorization", "Bearer " + token_);
    return out;
  }

  ServerAddress address_;
  std::string token_;
  HttpConnection connection_;
};

class DataBackend final : public Backend {
 public:
  // "where": what Describe() says, e.g. "data directory ./timetrail-data".
  DataBackend(std::string where, std::unique_ptr<EventStore> store)
      : where_(std::move(where)),
        store_(std::move(store)),
        hub_(store_.get()),
        api_(store_.get(), &hub_, &metrics_) {
    // The user holds the data directory, so a source revert may name its own database.
    capture::CaptureLink link;
    link.request_may_name_source = true;
    api_.Extend(capture::CaptureApi(std::move(link)));
  }

  // Whoever holds the data directory may do everything: its file permissions are the access
  // control. Administrative actions are recorded with the actor "local:$USER".
  Status Init() {
    server::AuthOptions auth;
    auth.required = false;
    const char* user = std::getenv("USER");
    const passwd* pw = user == nullptr ? ::getpwuid(::geteuid()) : nullptr;
    auth.anonymous_actor = std::string("local:") + (user != nullptr ? user
                                                    : pw != nullptr ? pw->pw_name
                                                                    : "unknown");
    return api_.ConfigureAuth(auth);
  }

  Result<HttpResponse> Call(std::string_view method, std::string_view target, std::string_view body,
                            const Headers& headers) override {
    server::ApiRequest req;
    req.method = std::string(method);
    req.target = std::string(target);
    req.body = std::string(body);
    if (method == "POST") req.content_type = "application/json";
    for (const auto& [name, value] : headers) {
      if (name == "If-Match") req.if_match = value;
      if (name == "Last-Event-ID") req.last_event_id = value;
    }
    server::ApiResponse res = api_.Handle(req);
    HttpResponse out;
    out.status = res.status;
    out.body = std::move(res.body);
    out.content_type = res.content_type;
    out.headers = std::move(res.headers);
    return out;
  }

  // Polls the store. Opened read-only, each poll first catches up with the process that holds
  // the directory (a server or a capture), so the events it commits meanwhile are followed.
  // Opened for writing, no other process can write to the directory, so the poll mostly serves
  // a tail that was asked to wait.
  Status Subscribe(std::string_view query, const Headers& headers,
                   const std::function<bool(std::string_view)>& on_event,
                   HttpResponse* error_response) override {
    std::string target = "/v1/subscribe";
    if (!query.empty()) target += "?" + std::string(query);
    server::ApiRequest req;
    req.method = "GET";
    req.target = target;
    for (const auto& [name, value] : headers) {
      if (name == "Last-Event-ID") req.last_event_id = value;
    }
    server::ApiResponse res = api_.Handle(req);
    if (!res.subscribe) {
      error_response->status = res.status;
      error_response->body = std::move(res.body);
      return Status::Ok();
    }
    subscribe::LogCursor cursor(store_.get(), res.subscribe->from, res.subscribe->filter);
    // Ctrl-C (or SIGTERM) ends the poll, and with it the command, normally: the store closes
    // (one opened read-only removes its temporary directory then).
    std::signal(SIGINT, OnStopFollowing);
    std::signal(SIGTERM, OnStopFollowing);
    while (!stop_following.load()) {
      Result<std::vector<RecordedEvent>> page = cursor.ReadNext();
      if (!page.ok()) return page.status();
      for (const RecordedEvent& e : *page) {
        if (!on_event(server::EventJson(e))) return Status::Ok();
      }
      if (page->empty() && cursor.caught_up()) {
        TT_RETURN_IF_ERROR(store_->Refresh());
        Status s = store_->WaitForPosition(cursor.next_position(), std::chrono::milliseconds(500));
        if (!s.ok() && s.code() != StatusCode::kTimeout) return s;
      }
    }
    return Status::Ok();
  }

  std::string Describe() const override { return where_; }

  EventStore* store() override { return store_.get(); }

 private:
  std::string where_;
  std::unique_ptr<EventStore> store_;
  subscribe::SubscriptionHub hub_;
  server::Metrics metrics_;
  server::Api api_;
};

}  // namespace

Result<std::unique_ptr<Backend>> OpenBackend(const TargetOptions& target, Access access,
                                             Options store_options) {
  if (target.data_dir.empty() && target.store_url.empty()) {
    TT_ASSIGN_OR_RETURN(ServerAddress address, ParseServerUrl(target.server));
    address.ca_file = target.ca_file;
    return std::unique_ptr<Backend>(
        std::make_unique<ServerBackend>(std::move(address), target.token));
  }
  // The store itself: a data directory, or one kept in PostgreSQL (--store).
  std::string location;
  std::string where;     // for messages: "data directory './timetrail-data'"
  std::string describe;  // for Backend::Describe: "data directory ./timetrail-data"
  if (!target.store_url.empty()) {
    if (!IsPostgresUrl(target.store_url)) {
      return Status::InvalidArgument("--store must be a postgresql:// URL, got '" +
                                     target.store_url + "' (a data directory goes in --data)");
    }
    store_options.postgres_schema =
        target.store_schema.empty() ? std::string("timetrail_store") : target.store_schema;
    location = target.store_url;
    where = DescribePostgresStore(target.store_url, store_options.postgres_schema);
    describe = where;
  } else {
    struct stat st {};
    if (access != Access::kCreate && ::stat(target.data_dir.c_str(), &st) != 0) {
      return Status::NotFound("data directory '" + target.data_dir +
                              "' does not exist (commands that write create it)");
    }
    location = target.data_dir;
    where = "data directory '" + target.data_dir + "'";
    describe = "data directory " + target.data_dir;
  }
  store_options.create_if_missing = access == Access::kCreate;
  store_options.read_only = access == Access::kRead;
  Result<std::unique_ptr<EventStore>> store = EventStore::Open(store_options, location);
  if (access == Access::kWriteIfFree && !store.ok() &&
      store.status().code() == StatusCode::kUnavailable) {
    store_options.read_only = true;
    store = EventStore::Open(store_options, location);
  }
  if (!store.ok()) {
    Status s = store.status();
    // kUnavailable: another process holds the store; the store's message names it and says
    // to go through its server with --server, so it is passed on as it is.
    if (s.code() == StatusCode::kUnavailable) return s;
    return s.WithPrefix("cannot open " + where);
  }
  auto backend = std::make_unique<DataBackend>(describe, std::move(*store));
  TT_RETURN_IF_ERROR(backend->Init());
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace timetrail::cli
