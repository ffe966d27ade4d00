// The temporal commands: get (state at a point), history (of one property), diff, activity and
// revert. They mirror /v1/entities/... and /v1/activity; see docs/temporal.md for the model.
#include <iostream>
#include <memory>
#include <optional>

#include "cli/commands.h"
#include "cli/output.h"
#include "json/json_writer.h"
#include "json/raw_json.h"
#include "timetrail/event.h"
#include "timetrail/time.h"

namespace timetrail::cli {
namespace {

using json::JsonQuote;
using json::RawJson;

// Appends "&name=value" when value is set.
void Param(std::string* q, const char* name, const std::string& value) {
  if (!value.empty()) *q += std::string("&") + name + "=" + UrlEncode(value);
}
void Param(std::string* q, const char* name, const std::optional<std::uint64_t>& value) {
  if (value) *q += std::string("&") + name + "=" + std::to_string(*value);
}

std::string WithQuery(std::string path, std::string query) {
  if (query.empty()) return path;
  query[0] = '?';
  return path + query;
}

// GETs "target"; with --json prints the body, else hands the parsed answer to "print".
int GetAndPrint(const CommonOptions& o, std::string_view command, const std::string& target,
                const std::function<void(const RawJson&)>& print) {
  Result<std::unique_ptr<Backend>> backend = OpenBackend(o.target, Access::kRead);
  if (!backend.ok()) return ReportStatus(command, backend.status());
  std::string raw;
  RawJson res;
  int code = CallJson(**backend, command, o, "GET", target, "", {}, &raw, &res);
  if (code != kExitOk) return code;
  if (o.json) {
    std::cout << OneLine(raw) << "\n";
  } else {
    print(res);
  }
  return kExitOk;
}

std::string MetaField(const RawJson& obj, std::string_view key) {
  const RawJson* m = obj.Find("metadata");
  return m != nullptr && m->is_object() ? Str(*m, key) : std::string();
}

// ---- get ---------------------------------------------------------------------------------

struct GetArgs {
  CommonOptions common;
  std::string stream;
  std::optional<std::uint64_t> at_revision;
  std::optional<std::uint64_t> at_position;
  std::string as_of;
  std::string valid_at;
  std::string known_at;
};

void AddGet(CLI::App& app) {
  auto a = std::make_shared<GetArgs>();
  CLI::App* cmd = app.add_subcommand(
      "get", "An entity's state (its document) now or at any point (GET /v1/entities/{stream})");
  AddCommonOptions(cmd, &a->common);
  cmd->add_option("stream", a->stream, "Stream name")->required();
  cmd->add_option("--at-revision", a->at_revision, "State after this revision");
  cmd->add_option("--at-position", a->at_position, "State at this global position");
  cmd->add_option("--as-of", a->as_of, "State as the store knew it at this time (system time)");
  cmd->add_option("--valid-at", a->valid_at, "State valid at this business time (bitemporal)");
  cmd->add_option("--known-at", a->known_at, "With --valid-at: as known at this time");
  cmd->footer(
      "Examples:\n"
      "  timetrail get friend-1\n"
      "  timetrail get friend-1 --as-of 2026-11-22T13:40:00Z\n"
      "  timetrail get friend-1 --valid-at 2026-06-01 --known-at 2026-07-01 --json\n"
      "Give at most one of --at-revision, --at-position, --as-of, --valid-at.");
  SetAction(cmd, [a] {
    std::string q;
    Param(&q, "at_revision", a->at_revision);
    Param(&q, "at_position", a->at_position);
    Param(&q, "as_of", a->as_of);
    Param(&q, "valid_at", a->valid_at);
    Param(&q, "known_at", a->known_at);
    return GetAndPrint(a->common, "get", WithQuery("/v1/entities/" + UrlEncode(a->stream), q),
                       [](const RawJson& r) {
                         bool exists = r.Find("exists") != nullptr && r.Find("exists")->boolean;
                         auto line = [](std::string_view key, const std::string& value) {
                           std::cout << key << ":";
                           if (!value.empty()) {
                             std::cout << std::string(12 - key.size(), ' ') << value;
                           }
                           std::cout << "\n";
                         };
                         line("stream", Str(r, "stream"));
                         line("exists", exists ? "true" : "false");
                         line("revision", Text(r, "revision"));
                         line("position", Text(r, "position"));
                         line("recorded_at", Str(r, "recorded_at"));
                         line("valid_from", Str(r, "valid_from"));
                         line("actor", MetaField(r, "actor"));
                         line("reason", MetaField(r, "reason"));
                         line("state", OneLine(Text(r, "state")));
                       });
  });
}

// ---- history -----------------------------------------------------------------------------

struct HistoryArgs {
  CommonOptions common;
  std::string stream;
  std::string path;
  bool valid_time = false;
  std::string known_at;
  std::optional<std::uint64_t> limit;
  std::string cursor;
};

void AddHistory(CLI::App& app) {
  auto a = std::make_shared<HistoryArgs>();
  CLI::App* cmd = app.add_subcommand(
      "history",
      "The intervals during which one property kept its value (GET /v1/entities/{stream}/history)");
  AddCommonOptions(cmd, &a->common);
  cmd->add_option("stream", a->stream, "Stream name")->required();
  cmd->add_option("--path,-p", a->path, "JSON pointer, e.g. /location (empty: the whole document)");
  cmd->add_flag("--valid-time", a->valid_time, "Intervals in valid (business) time");
  cmd->add_option("--known-at", a->known_at, "With --valid-time: as known at this time");
  cmd->add_option("--limit", a->limit, "Intervals per page (1 to 10000, default 1000)");
  cmd->add_option("--cursor", a->cursor, "Continue from the cursor a previous page printed");
  cmd->footer(
      "Examples:\n  timetrail history friend-1 --path /location\n"
      "  timetrail history friend-1 -p /location --limit 100\n"
      "  timetrail history friend-1 -p /location --valid-time --json");
  SetAction(cmd, [a] {
    if (!a->known_at.empty() && !a->valid_time) {
      // Without --valid-time the intervals are in system time, where "known at" means nothing;
      // say so rather than answer a question that was not asked.
      return ReportStatus("history", Status::InvalidArgument(
                                         "--known-at needs --valid-time (it picks what was known "
                                         "at that time about the valid-time history)"));
    }
    std::string q;
    Param(&q, "path", a->path);
    if (a->valid_time) q += "&valid_time=true";
    Param(&q, "known_at", a->known_at);
    Param(&q, "limit", a->limit);
    Param(&q, "cursor", a->cursor);
    return GetAndPrint(
        a->common, "history", WithQuery("/v1/entities/" + UrlEncode(a->stream) + "/history", q),
        [a](const RawJson& r) {
          Table t({"FROM_REV", a->valid_time ? "VALID_FROM" : "RECORDED_AT", "TO_REV", "VALUE",
                   "ACTOR", "REASON"});
          if (const RawJson* ivs = r.Find("intervals")) {
            for (const RawJson& iv : ivs->items) {
              const RawJson* from = iv.Find("from");
              const RawJson* to = iv.Find("to");
              bool exists = iv.Find("exists") != nullptr && iv.Find("exists")->boolean;
              std::string to_rev = to != nullptr && to->is_object()
                                       ? std::to_string(Uint(*to, "revision"))
                                       : "(now)";
              t.AddRow({from ? std::to_string(Uint(*from, "revision")) : "",
                        from ? Str(*from, a->valid_time ? "valid_from" : "recorded_at") : "",
                        to_rev, exists ? OneLine(Text(iv, "value")) : "(absent)",
                        MetaField(iv, "actor"), MetaField(iv, "reason")});
            }
          }
          if (t.empty()) {
            std::cout << "(no history)\n";
          } else {
            t.Print(std::cout);
          }
          std::string cursor = Str(r, "cursor");
          if (!cursor.empty()) std::cout << "(more: continue with --cursor " << cursor << ")\n";
        });
  });
}

// ---- diff --------------------------------------------------------------------------------

struct DiffArgs {
  CommonOptions common;
  std::string stream;
  std::optional<std::uint64_t> from;
  std::optional<std::uint64_t> to;
  std::string from_time;
  std::string to_time;
  bool events = false;
  std::optional<std::uint64_t> limit;
  std::string cursor;
};

void AddDiff(CLI::App& app) {
  auto a = std::make_shared<DiffArgs>();
  CLI::App* cmd = app.add_subcommand(
      "diff",
      "The JSON Patch between two points of a stream, and on request the events in "
      "between (GET /v1/entities/{stream}/diff)");
  AddCommonOptions(cmd, &a->common);
  cmd->add_option("stream", a->stream, "Stream name")->required();
  cmd->add_option("--from", a->from, "Starting revision");
  cmd->add_option("--to", a->to, "Ending revision (default: now)");
  cmd->add_option("--from-time", a->from_time, "Starting time instead of --from");
  cmd->add_option("--to-time", a->to_time, "Ending time instead of --to");
  cmd->add_flag("--events", a->events,
                "Also list the events in between, a page at a time (they cost a read each)");
  cmd->add_option("--limit", a->limit, "With --events: events per page");
  cmd->add_option("--cursor", a->cursor,
                  "With --events: continue from the cursor a previous page printed");
  cmd->footer(
      "Examples:\n  timetrail diff friend-1 --from 0 --to 2\n"
      "  timetrail diff friend-1 --from 0 --events --limit 50\n"
      "  timetrail diff friend-1 --from-time 2026-11-01 --json");
  SetAction(cmd, [a] {
    if (!a->events && (a->limit || !a->cursor.empty())) {
      return ReportStatus(
          "diff", Status::InvalidArgument("--limit and --cursor page the events: give --events"));
    }
    std::string q;
    Param(&q, "from", a->from);
    Param(&q, "to", a->to);
    Param(&q, "from_time", a->from_time);
    Param(&q, "to_time", a->to_time);
    if (a->events) q += "&events=true";
    Param(&q, "limit", a->limit);
    Param(&q, "cursor", a->cursor);
    return GetAndPrint(a->common, "diff",
                       WithQuery("/v1/entities/" + UrlEncode(a->stream) + "/diff", q),
                       [](const RawJson& r) {
                         std::cout << "patch:\n";
                         if (const RawJson* patch = r.Find("patch")) {
                           if (patch->items.empty()) std::cout << "  (no change)\n";
                           for (const RawJson& op : patch->items) {
                             std::cout << "  " << OneLine(op.text) << "\n";
                           }
                         }
                         const RawJson* events = r.Find("events");
                         if (events == nullptr) return;  // not asked for
                         std::cout << "events:\n";
                         Table t(EventHeader());
                         for (const RawJson& e : events->items) t.AddRow(EventRow(e));
                         if (t.empty()) {
                           std::cout << "  (none)\n";
                         } else {
                           t.Print(std::cout);
                         }
                         std::string cursor = Str(r, "cursor");
                         if (!cursor.empty()) {
                           std::cout << "(more: continue with --cursor " << cursor << ")\n";
                         }
                       });
  });
}

// ---- activity ----------------------------------------------------------------------------

struct ActivityArgs {
  CommonOptions common;
  std::string actor;
  std::string stream_prefix;
  std::string type;
  std::string since;
  std::string until;
  std::optional<std::uint64_t> limit;
  std::string cursor;
};

void AddActivity(CLI::App& app) {
  auto a = std::make_shared<ActivityArgs>();
  CLI::App* cmd = app.add_subcommand(
      "activity", "Who changed what, across streams, newest first (GET /v1/activity)");
  AddCommonOptions(cmd, &a->common);
  cmd->add_option("--actor", a->actor, "Only events whose metadata.actor is this");
  cmd->add_option("--stream-prefix", a->stream_prefix, "Only streams whose name starts with this");
  cmd->add_option("--type", a->type, "Only these event types, comma-separated");
  cmd->add_option("--since", a->since, "Recorded at or after this time");
  cmd->add_option("--until", a->until, "Recorded at or before this time");
  cmd->add_option("--limit", a->limit, "Events per page");
  cmd->add_option("--cursor", a->cursor, "Continue from the cursor a previous page printed");
  cmd->footer(
      "Examples:\n  timetrail activity --actor joey\n"
      "  timetrail activity --stream-prefix friend- --since 2026-11-01 --limit 20");
  SetAction(cmd, [a] {
    std::string q;
    Param(&q, "actor", a->actor);
    Param(&q, "stream_prefix", a->stream_prefix);
    Param(&q, "type", a->type);
    Param(&q, "since", a->since);
    Param(&q, "until", a->until);
    Param(&q, "limit", a->limit);
    Param(&q, "cursor", a->cursor);
    return GetAndPrint(a->common, "activity", WithQuery("/v1/activity", q), [](const RawJson& r) {
      Table t(EventHeader());
      if (const RawJson* events = r.Find("events")) {
        for (const RawJson& e : events->items) t.AddRow(EventRow(e));
      }
      if (t.empty()) {
        std::cout << "(no events)\n";
      } else {
        t.Print(std::cout);
      }
      std::string cursor = Str(r, "cursor");
      if (!cursor.empty()) std::cout << "(more: continue with --cursor " << cursor << ")\n";
    });
  });
}

// ---- revert ------------------------------------------------------------------------------

struct RevertArgs {
  CommonOptions common;
  std::string stream;
  std::optional<std::uint64_t> to_revision;
  std::string to_time;
  std::string expected = "any";
  std::string reason;
  std::string actor;
  std::string source;  // revert the row in this PostgreSQL database instead (docs/capture.md)
  bool dry_run = false;
};

// Finishes a revert request body (the optional actor and reason, then the closing brace) and
// POSTs it to "target"; returns the exit code.
int PostRevert(const RevertArgs& a, std::string body, const std::string& target, std::string* raw,
               RawJson* res) {
  if (!a.reason.empty()) body += ",\"reason\":" + JsonQuote(a.reason);
  if (!a.actor.empty()) body += ",\"actor\":" + JsonQuote(a.actor);
  body += "}";
  Result<std::unique_ptr<Backend>> backend = OpenBackend(a.common.target, Access::kWrite);
  if (!backend.ok()) return ReportStatus("revert", backend.status());
  return CallJson(**backend, "revert", a.common, "POST", target, body, {}, raw, res);
}

// revert --source: the captured row goes back in the source database, through
// POST /v1/capture/revert; the capture then records the change like any other.
int RunSourceRevert(const RevertArgs& a) {
  if (a.to_revision || a.to_time.empty()) {
    return ReportStatus(
        "revert", Status::InvalidArgument("--source puts the row back as it was at a source time: "
                                          "give --to TIME (not --to-revision)"));
  }
  std::string body = "{\"streams\":[" + JsonQuote(a.stream) + "],\"to\":" + JsonQuote(a.to_time) +
                     ",\"source\":" + JsonQuote(a.source) +
                     ",\"dry_run\":" + (a.dry_run ? "true" : "false");
  std::string raw;
  RawJson res;
  int code = PostRevert(a, std::move(body), "/v1/capture/revert", &raw, &res);
  if (code != kExitOk) return code;
  if (a.common.json) {
    std::cout << OneLine(raw) << "\n";
  } else if (a.dry_run) {
    if (const RawJson* statements = res.Find("statements")) {
      for (const RawJson& st : statements->items) std::cout << st.str << ";\n";
    }
  } else {
    std::cout << "reverted " << Uint(res, "rows_changed") << " row(s) in the source to their "
              << "state at " << a.to_time << "\n";
  }
  return kExitOk;
}

int RunRevert(const RevertArgs& a) {
  if (!a.source.empty()) return RunSourceRevert(a);
  if (a.dry_run) {
    return ReportStatus("revert", Status::InvalidArgument("--dry-run goes with --source"));
  }
  if (a.to_revision.has_value() == !a.to_time.empty()) {
    return ReportStatus("revert",
                        Status::InvalidArgument("give exactly one of --to-revision or --to-time"));
  }
  Result<ExpectedRevision> e = ExpectedRevision::Parse(a.expected);
  if (!e.ok()) {
    return ReportStatus("revert", Status::InvalidArgument(
                                      "--expected must be any, no_stream, exists or a revision"));
  }
  std::string body = "{";
  if (a.to_revision) {
    body += "\"to_revision\":" + std::to_string(*a.to_revision);
  } else {
    body += "\"to_time\":" + JsonQuote(a.to_time);
  }
  body += ",\"expected_revision\":" + (e->kind() == ExpectedRevision::Kind::kExact
                                           ? std::to_string(e->revision())
                                           : JsonQuote(e->ToString()));
  std::string raw;
  RawJson res;
  int code =
      PostRevert(a, std::move(body), "/v1/entities/" + UrlEncode(a.stream) + "/revert", &raw, &res);
  if (code != kExitOk) return code;
  if (a.common.json) {
    std::cout << OneLine(raw) << "\n";
  } else {
    std::cout << "reverted " << Str(res, "stream") << " to its state at "
              << (a.to_revision ? "revision " + std::to_string(*a.to_revision) : a.to_time)
              << ": new revision " << Uint(res, "revision") << ", position "
              << Uint(res, "position") << ", recorded at " << Str(res, "recorded_at") << "\n";
  }
  return kExitOk;
}

void AddRevert(CLI::App& app) {
  auto a = std::make_shared<RevertArgs>();
  CLI::App* cmd =
      app.add_subcommand("revert",
                         "Restore an entity's earlier state by appending a new event "
                         "(POST /v1/entities/{stream}/revert); history is never rewritten");
  AddCommonOptions(cmd, &a->common);
  cmd->add_option("stream", a->stream, "Stream name")->required();
  cmd->add_option("--to-revision", a->to_revision, "Restore the state after this revision");
  cmd->add_option("--to-time,--to", a->to_time, "Restore the state as of this time");
  cmd->add_option("--expected,-e", a->expected,
                  "The stream's last revision must be this (any skips the check)")
      ->capture_default_str();
  cmd->add_option("--reason", a->reason, "Why (recorded as metadata.reason)");
  cmd->add_option("--actor", a->actor, "Who (recorded as metadata.actor)");
  cmd->add_option("--source", a->source,
                  "Put a captured row back in this PostgreSQL database instead, as it was at "
                  "--to (docs/capture.md); a server reverts only in the database it captures");
  cmd->add_flag("--dry-run", a->dry_run, "With --source: print the SQL instead of running it");
  cmd->footer(
      "Examples:\n  timetrail revert friend-1 --to-revision 1 --expected 3 --actor monica "
      "--reason 'the move was a mistake'\n"
      "  timetrail revert public.orders/42 --to 2026-11-22T13:00:00Z "
      "--source postgresql://app@db/shop --data ./audit --actor alice\n"
      "Exit codes: 0 ok, 2 bad input, 3 no such stream, 4 the stream moved on.");
  SetAction(cmd, [a] { return RunRevert(*a); });
}

}  // namespace

void AddTemporalCommands(CLI::App& app) {
  AddGet(app);
  AddHistory(app);
  AddDiff(app);
  AddActivity(app);
  AddRevert(app);
}

}  // namespace timetrail::cli
