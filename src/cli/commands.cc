#include "cli/commands.h"

#include <csignal>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include "cli/output.h"
#include "json/json_writer.h"
#include "json/raw_json.h"
#include "timetrail/event.h"
#include "timetrail/time.h"

namespace timetrail::cli {
namespace {

using json::JsonQuote;
using json::RawJson;

// Reads a whole file, or stdin for "-".
Result<std::string> ReadInput(const std::string& path) {
  std::ostringstream text;
  if (path == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status::NotFound("cannot read '" + path + "'");
    text << in.rdbuf();
  }
  return text.str();
}

Status CheckJson(std::string_view flag, std::string_view text, bool object_only) {
  Result<RawJson> v = json::ParseRawJson(text);
  if (!v.ok()) {
    return Status::InvalidArgument(std::string(flag) +
                                   " is not valid JSON: " + v.status().message());
  }
  if (object_only && !v->is_object()) {
    return Status::InvalidArgument(std::string(flag) + " must be a JSON object, got " +
                                   std::string(v->KindName()));
  }
  return Status::Ok();
}

// "any", "no_stream", "exists" as JSON strings; a revision as a JSON number.
Result<std::string> ExpectedJson(const std::string& expected) {
  Result<ExpectedRevision> e = ExpectedRevision::Parse(expected);
  if (!e.ok()) {
    return Status::InvalidArgument(
        "--expected must be any, no_stream, exists or a revision, got '" + expected + "'");
  }
  if (e->kind() == ExpectedRevision::Kind::kExact) return std::to_string(e->revision());
  return JsonQuote(e->ToString());
}

// ---- append ------------------------------------------------------------------------------

struct AppendArgs {
  CommonOptions common;
  std::string stream;
  std::string type;
  std::string data;
  std::string metadata;
  std::string id;
  std::string valid_from;
  std::string actor;
  std::string reason;
  std::string expected = "any";
  std::string events_file;
};

// The metadata object with "actor" and "reason" set (replacing keys of the same name), keeping
// the other members' text as given.
Result<std::string> MetadataJson(const AppendArgs& a) {
  std::string out = "{";
  bool first = true;
  auto add = [&](const std::string& key, const std::string& value_json) {
    if (!first) out += ",";
    first = false;
    out += JsonQuote(key) + ":" + value_json;
  };
  if (!a.actor.empty()) add("actor", JsonQuote(a.actor));
  if (!a.reason.empty()) add("reason", JsonQuote(a.reason));
  if (!a.metadata.empty()) {
    TT_RETURN_IF_ERROR(CheckJson("--metadata", a.metadata, true));
    Result<RawJson> m = json::ParseRawJson(a.metadata);
    for (const auto& [key, value] : m->members) {
      if ((key == "actor" && !a.actor.empty()) || (key == "reason" && !a.reason.empty())) continue;
      add(key, std::string(value.text));
    }
  }
  return out + "}";
}

Result<std::string> AppendBody(const AppendArgs& a) {
  TT_ASSIGN_OR_RETURN(std::string expected, ExpectedJson(a.expected));
  std::string events;
  if (!a.events_file.empty()) {
    if (!a.type.empty() || !a.data.empty() || !a.id.empty() || !a.valid_from.empty()) {
      return Status::InvalidArgument(
          "--events takes the whole events array; do not combine it with --type, --event-data, "
          "--id "
          "or --valid-from");
    }
    TT_ASSIGN_OR_RETURN(events, ReadInput(a.events_file));
    Result<RawJson> parsed = json::ParseRawJson(events);
    if (!parsed.ok()) {
      return Status::InvalidArgument("--events: not valid JSON: " + parsed.status().message());
    }
    if (parsed->kind != RawJson::Kind::kArray) {
      return Status::InvalidArgument("--events must hold a JSON array of events, got " +
                                     std::string(parsed->KindName()));
    }
  } else {
    if (a.type.empty()) {
      return Status::InvalidArgument(
          "--type is required (e.g. --type '$put'), or pass --events FILE");
    }
    std::string ev = "{\"type\":" + JsonQuote(a.type);
    if (!a.data.empty()) {
      TT_RETURN_IF_ERROR(CheckJson("--event-data", a.data, false));
      ev += ",\"data\":" + a.data;
    }
    if (!a.metadata.empty() || !a.actor.empty() || !a.reason.empty()) {
      TT_ASSIGN_OR_RETURN(std::string meta, MetadataJson(a));
      ev += ",\"metadata\":" + meta;
    }
    if (!a.id.empty()) {
      Result<Uuid> id = Uuid::Parse(a.id);
      if (!id.ok()) return id.status().WithPrefix("--id");
      ev += ",\"id\":" + JsonQuote(id->ToString());
    }
    if (!a.valid_from.empty()) {
      Result<Timestamp> t = ParseTimestamp(a.valid_from);
      if (!t.ok()) return t.status().WithPrefix("--valid-from");
      ev += ",\"valid_from\":" + JsonQuote(FormatTimestamp(*t));
    }
    events = "[" + ev + "}]";
  }
  return "{\"expected_revision\":" + expected + ",\"events\":" + events + "}";
}

int RunAppend(const AppendArgs& a) {
  Result<std::string> body = AppendBody(a);
  if (!body.ok()) return ReportStatus("append", body.status());
  Result<std::unique_ptr<Backend>> backend = OpenBackend(a.common.target, Access::kCreate);
  if (!backend.ok()) return ReportStatus("append", backend.status());
  std::string raw;
  RawJson res;
  int code = CallJson(**backend, "append", a.common, "POST", "/v1/streams/" + UrlEncode(a.stream),
                      *body, {}, &raw, &res);
  if (code != kExitOk) return code;
  if (a.common.json) {
    std::cout << raw << "\n";
    return kExitOk;
  }
  std::uint64_t first = Uint(res, "first_revision");
  std::uint64_t last = Uint(res, "revision");
  bool replay = res.Find("idempotent_replay") != nullptr && res.Find("idempotent_replay")->boolean;
  std::cout << (replay ? "already written (idempotent replay): " : "appended ")
            << (last - first + 1) << (last == first ? " event" : " events") << " to "
            << Str(res, "stream") << ": revision "
            << (first == last ? "" : std::to_string(first) + "..") << last << ", position "
            << Uint(res, "position") << ", tx " << Uint(res, "tx") << ", recorded at "
            << Str(res, "recorded_at") << "\n";
  return kExitOk;
}

void AddAppend(CLI::App& app) {
  auto a = std::make_shared<AppendArgs>();
  CLI::App* cmd =
      app.add_subcommand("append", "Append events to a stream (POST /v1/streams/{stream})");
  AddCommonOptions(cmd, &a->common);
  cmd->add_option("stream", a->stream, "Stream name, e.g. friend-1 or public.orders/42")
      ->required();
  cmd->add_option("--type,-t", a->type, "Event type ($put, $patch, $delete or a domain type)");
  cmd->add_option("--event-data,-d", a->data, "Event data as JSON (--data names a data directory)");
  cmd->add_option("--metadata,-m", a->metadata, "Metadata as a JSON object");
  cmd->add_option("--actor", a->actor, "Sets metadata.actor: who made the change");
  cmd->add_option("--reason", a->reason, "Sets metadata.reason: why");
  cmd->add_option("--id", a->id, "Event id (UUID); resending the same id is a no-op");
  cmd->add_option("--valid-from", a->valid_from,
                  "When the change takes effect (RFC 3339); default: the commit time");
  cmd->add_option("--expected,-e", a->expected,
                  "Expected revision: any, no_stream, exists or the stream's last revision")
      ->capture_default_str();
  cmd->add_option("--events", a->events_file,
                  "File with a JSON array of events ({type, data?, metadata?, id?, valid_from?}); "
                  "- reads stdin");
  cmd->footer(
      "Examples:\n"
      "  timetrail append friend-1 --type '$put' \\\n"
      "      --event-data '{\"name\":\"Rachel\",\"location\":\"New York\"}' \\\n"
      "      --actor joey --reason 'we met' --expected no_stream\n"
      "  timetrail append friend-1 -t '$patch' -d '{\"location\":\"Paris\"}' --expected 0\n"
      "  timetrail append orders/42 --events events.json --data ./timetrail-data\n"
      "Exit codes: 0 ok, 2 bad input, 4 wrong expected revision or duplicate event id,\n"
      "5 server unreachable.");
  SetAction(cmd, [a] { return RunAppend(*a); });
}

// ---- read, info, event -------------------------------------------------------------------

void PrintEvents(const RawJson& events) {
  Table t(EventHeader());
  for (const RawJson& e : events.items) t.AddRow(EventRow(e));
  if (t.empty()) {
    std::cout << "(no events)\n";
  } else {
    t.Print(std::cout);
  }
}

struct ReadArgs {
  CommonOptions common;
  std::string stream;
  std::optional<std::uint64_t> from;
  bool backward = false;
  std::uint64_t limit = 100;
};

int RunRead(const ReadArgs& a) {
  Result<std::unique_ptr<Backend>> backend = OpenBackend(a.common.target, Access::kRead);
  if (!backend.ok()) return ReportStatus("read", backend.status());
  std::string target = "/v1/streams/" + UrlEncode(a.stream) + "?limit=" + std::to_string(a.limit);
  if (a.from) target += "&from=" + std::to_string(*a.from);
  if (a.backward) target += "&direction=backward";
  std::string raw;
  RawJson res;
  int code = CallJson(**backend, "read", a.common, "GET", target, "", {}, &raw, &res);
  if (code != kExitOk) return code;
  if (a.common.json) {
    std::cout << OneLine(raw) << "\n";
    return kExitOk;
  }
  if (const RawJson* events = res.Find("events")) PrintEvents(*events);
  if (const RawJson* next = res.Find("next"); next != nullptr && next->AsUint()) {
    std::cout << "(more: continue with --from " << *next->AsUint() << ")\n";
  }
  return kExitOk;
}

void AddRead(CLI::App& app) {
  auto a = std::make_shared<ReadArgs>();
  CLI::App* cmd =
      app.add_subcommand("read", "Read the events of one stream (GET /v1/streams/{stream})");
  AddCommonOptions(cmd, &a->common);
  cmd->add_option("stream", a->stream, "Stream name")->required();
  cmd->add_option("--from", a->from, "First revision (default: the first, or the last backwards)");
  cmd->add_flag("--backward", a->backward, "Newest first");
  cmd->add_option("--limit", a->limit, "Events per call, 1..1000")->capture_default_str();
  cmd->footer(
      "Examples:\n"
      "  timetrail read friend-1\n"
      "  timetrail read friend-1 --backward --limit 1 --json\n"
      "Exit codes: 0 ok, 2 bad input, 3 the stream has no events, 5 server unreachable.");
  SetAction(cmd, [a] { return RunRead(*a); });
}

struct SimpleArgs {
  CommonOptions common;
  std::string arg;
};

// Runs GET "target" and prints the answer as "key: value" lines (or the JSON).
int RunShow(const SimpleArgs& a, std::string_view command, const std::string& target) {
  Result<std::unique_ptr<Backend>> backend = OpenBackend(a.common.target, Access::kRead);
  if (!backend.ok()) return ReportStatus(command, backend.status());
  std::string raw;
  RawJson res;
  int code = CallJson(**backend, command, a.common, "GET", target, "", {}, &raw, &res);
  if (code != kExitOk) return code;
  if (a.common.json) {
    std::cout << OneLine(raw) << "\n";
    return kExitOk;
  }
  std::size_t width = 0;
  for (const auto& [key, v] : res.members) width = std::max(width, key.size());
  for (const auto& [key, v] : res.members) {
    std::string value = v.kind == RawJson::Kind::kString ? v.str : OneLine(v.text);
    std::cout << key << ":" << std::string(width - key.size() + 1, ' ') << value << "\n";
  }
  return kExitOk;
}

void AddInfo(CLI::App& app) {
  auto a = std::make_shared<SimpleArgs>();
  CLI::App* cmd = app.add_subcommand("info",
                                     "Show a stream's revision, position and whether it is deleted "
                                     "(GET /v1/streams/{stream}/info)");
  AddCommonOptions(cmd, &a->common);
  cmd->add_option("stream", a->arg, "Stream name")->required();
  cmd->footer(
      "Example:\n  timetrail info friend-1\n"
      "A stream without events is shown with exists: false (exit code 0).");
  SetAction(cmd, [a] { return RunShow(*a, "info", "/v1/streams/" + UrlEncode(a->arg) + "/info"); });
}

void AddEvent(CLI::App& app) {
  auto a = std::make_shared<SimpleArgs>();
  CLI::App* cmd = app.add_subcommand("event", "Show one event by its id (GET /v1/events/{id})");
  AddCommonOptions(cmd, &a->common);
  cmd->add_option("id", a->arg, "Event id (UUID)")->required();
  cmd->footer(
      "Example:\n  timetrail event 0191b7a4-6c1e-7d2a-9f3b-1a2b3c4d5e6f --json\n"
      "Exit codes: 0 ok, 2 not a UUID, 3 no such event, 5 server unreachable.");
  SetAction(cmd, [a] { return RunShow(*a, "event", "/v1/events/" + UrlEncode(a->arg)); });
}

void AddIntegrity(CLI::App& app) {
  auto a = std::make_shared<SimpleArgs>();
  CLI::App* cmd = app.add_subcommand(
      "integrity",
      "Show the head of the integrity chain: last position and its hash (GET /v1/integrity)");
  AddCommonOptions(cmd, &a->common);
  cmd->footer(
      "Example:\n  timetrail integrity --json > head.json   # keep it somewhere else\n"
      "Later, `timetrail verify` recomputes the chain; compare its head with the kept one.");
  SetAction(cmd, [a] { return RunShow(*a, "integrity", "/v1/integrity"); });
}

// ---- log ---------------------------------------------------------------------------------

struct LogArgs {
  CommonOptions common;
  std::uint64_t from = 1;
  std::uint64_t limit = 100;
  std::string stream_prefix;
  std::string types;
};

std::string FilterQuery(const std::string& stream_prefix, const std::string& types) {
  std::string q;
  if (!stream_prefix.empty()) q += "&stream_prefix=" + UrlEncode(stream_prefix);
  if (!types.empty()) q += "&types=" + UrlEncode(types);
  return q;
}

int RunLog(const LogArgs& a) {
  Result<std::unique_ptr<Backend>> backend = OpenBackend(a.common.target, Access::kRead);
  if (!backend.ok()) return ReportStatus("log", backend.status());
  std::string target = "/v1/log?from=" + std::to_string(a.from) +
                       "&limit=" + std::to_string(a.limit) + FilterQuery(a.stream_prefix, a.types);
  std::string raw;
  RawJson res;
  int code = CallJson(**backend, "log", a.common, "GET", target, "", {}, &raw, &res);
  if (code != kExitOk) return code;
  if (a.common.json) {
    std::cout << OneLine(raw) << "\n";
    return kExitOk;
  }
  if (const RawJson* events = res.Find("events")) PrintEvents(*events);
  std::uint64_t next = Uint(res, "next");
  std::uint64_t head = Uint(res, "head");
  if (next <= head) std::cout << "(more: continue with --from " << next << ")\n";
  return kExitOk;
}

void AddLog(CLI::App& app) {
  auto a = std::make_shared<LogArgs>();
  CLI::App* cmd = app.add_subcommand("log", "Read the global log in position order (GET /v1/log)");
  AddCommonOptions(cmd, &a->common);
  cmd->add_option("--from", a->from, "First position")->capture_default_str();
  cmd->add_option("--limit", a->limit, "Events per call, 1..1000")->capture_default_str();
  cmd->add_option("--stream-prefix", a->stream_prefix, "Only streams whose name starts with this");
  cmd->add_option("--types", a->types, "Only these event types, comma-separated");
  cmd->footer(
      "Examples:\n  timetrail log --from 1 --limit 20\n"
      "  timetrail log --stream-prefix friend- --types '$put,$patch' --json");
  SetAction(cmd, [a] { return RunLog(*a); });
}

// ---- verify ------------------------------------------------------------------------------

int RunVerify(const CommonOptions& o) {
  Result<std::unique_ptr<Backend>> backend = OpenBackend(o.target, Access::kWriteIfFree);
  if (!backend.ok()) return ReportStatus("verify", backend.status());
  std::string raw;
  RawJson res;
  int code = CallJson(**backend, "verify", o, "POST", "/v1/integrity/verify", "", {}, &raw, &res);
  if (code != kExitOk) return code;
  bool ok = res.Find("ok") != nullptr && res.Find("ok")->boolean;
  if (o.json) {
    std::cout << OneLine(raw) << "\n";
  } else if (ok) {
    const RawJson* head = res.Find("head");
    std::cout << "ok: the integrity chain holds; " << Uint(res, "events_checked")
              << " events checked; head position "
              << (head != nullptr ? Uint(*head, "position") : 0) << ", hash "
              << (head != nullptr ? Str(*head, "hash") : "") << "\n";
  } else {
    std::cout << "BROKEN: the integrity chain does not hold at position "
              << Text(res, "first_bad_position") << ": " << Str(res, "message") << " ("
              << Uint(res, "events_checked") << " events checked)\n";
  }
  if (const RawJson* recorded = res.Find("recorded");
      !o.json && recorded != nullptr && !recorded->boolean) {
    std::cout << "note: " << Str(res, "note") << "\n";
  }
  if (!ok) {
    std::cerr << "timetrail verify: first bad position " << Text(res, "first_bad_position") << "\n";
  }
  return ok ? kExitOk : kExitFailure;
}

void AddVerify(CLI::App& app) {
  auto o = std::make_shared<CommonOptions>();
  CLI::App* cmd = app.add_subcommand(
      "verify",
      "Recompute the integrity chain and name the first bad position (POST /v1/integrity/verify)");
  AddCommonOptions(cmd, o.get());
  cmd->footer(
      "Example:\n  timetrail verify --data ./timetrail-data\n"
      "Each verification is recorded in the $audit stream. With --data, when a running server\n"
      "or capture holds the directory, it is opened read-only: the chain is verified all the\n"
      "same, and the output says the result was not recorded.\n"
      "Exit codes: 0 the chain holds, 1 it is broken (the first bad position is named),\n"
      "5 server unreachable.");
  SetAction(cmd, [o] { return RunVerify(*o); });
}

// ---- tail --------------------------------------------------------------------------------

struct TailArgs {
  CommonOptions common;
  std::optional<std::uint64_t> from;
  std::string stream_prefix;
  std::string types;
  std::string consumer;
  std::uint64_t count = 0;
};

int RunTail(const TailArgs& a) {
  // A named consumer's acknowledgements are writes.
  Result<std::unique_ptr<Backend>> backend =
      OpenBackend(a.common.target, a.consumer.empty() ? Access::kRead : Access::kWrite);
  if (!backend.ok()) return ReportStatus("tail", backend.status());
  std::string query;
  if (a.from) query += "&from=" + std::to_string(*a.from);
  query += FilterQuery(a.stream_prefix, a.types);
  if (!a.consumer.empty()) query += "&consumer=" + UrlEncode(a.consumer);
  if (!query.empty()) query.erase(0, 1);

  // Acknowledgements go over a second connection while the stream stays open.
  std::unique_ptr<Backend> acker;
  if (!a.consumer.empty() && a.common.target.data_dir.empty()) {
    Result<std::unique_ptr<Backend>> second = OpenBackend(a.common.target, Access::kWrite);
    if (!second.ok()) return ReportStatus("tail", second.status());
    acker = std::move(*second);
  }
  Backend& ack_backend = acker ? *acker : **backend;

  StreamingTable table(EventHeader(), EventMinWidths());
  if (!a.common.json) {
    table.PrintHeader(std::cout);
    std::cout.flush();
  }
  std::uint64_t seen = 0;
  int failure = kExitOk;
  HttpResponse error;
  Status s = (*backend)->Subscribe(
      query, {},
      [&](std::string_view event_json) {
        Result<RawJson> ev = json::ParseRawJson(event_json);
        if (!ev.ok()) {
          std::cerr << "timetrail tail: skipping an event that is not JSON: "
                    << ev.status().message() << "\n";
          return true;
        }
        if (a.common.json) {
          std::cout << OneLine(event_json) << "\n";
        } else {
          table.PrintRow(std::cout, EventRow(*ev));
        }
        std::cout.flush();
        if (!a.consumer.empty()) {
          std::string raw;
          RawJson res;
          CommonOptions quiet = a.common;
          quiet.json = false;
          int code = CallJson(
              ack_backend, "tail", quiet, "POST", "/v1/consumers/" + UrlEncode(a.consumer) + "/ack",
              "{\"position\":" + std::to_string(Uint(*ev, "position")) + "}", {}, &raw, &res);
          if (code != kExitOk) {
            failure = code;
            return false;
          }
        }
        ++seen;
        return a.count == 0 || seen < a.count;
      },
      &error);
  if (failure != kExitOk) return failure;
  if (!s.ok()) return ReportStatus("tail", s);
  if (error.status != 0) return ReportErrorResponse("tail", error, a.common.json);
  return kExitOk;
}

void AddTail(CLI::App& app) {
  auto a = std::make_shared<TailArgs>();
  CLI::App* cmd = app.add_subcommand(
      "tail",
      "Follow the global log: stored events, then live ones as they commit (GET /v1/subscribe)");
  AddCommonOptions(cmd, &a->common);
  cmd->add_option("--from", a->from, "First position (default 1)");
  cmd->add_option("--stream-prefix", a->stream_prefix, "Only streams whose name starts with this");
  cmd->add_option("--types", a->types, "Only these event types, comma-separated");
  cmd->add_option("--consumer", a->consumer,
                  "Named consumer: start after its acknowledged position, and acknowledge each "
                  "event once printed, so the next tail resumes after it");
  cmd->add_option("--count", a->count,
                  "Stop after this many events (default: follow until Ctrl-C)");
  cmd->footer(
      "Examples:\n"
      "  timetrail tail --stream-prefix friend-\n"
      "  timetrail tail --consumer mailer --json | ./send-mails\n"
      "With --json each event is one line of JSON (NDJSON). Against a data directory the store\n"
      "is polled: without --consumer it is opened read-only, and follows what the process that\n"
      "holds it (a server or a capture) commits; with --consumer the directory is held.");
  SetAction(cmd, [a] { return RunTail(*a); });
}

}  // namespace

void AddStreamCommands(CLI::App& app) {
  AddAppend(app);
  AddRead(app);
  AddInfo(app);
  AddEvent(app);
  AddLog(app);
  AddTail(app);
  AddIntegrity(app);
  AddVerify(app);
}

}  // namespace timetrail::cli
