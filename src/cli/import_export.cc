// `timetrail export` and `timetrail import`: the global log as NDJSON, one event JSON per line,
// exactly as the API returns events.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/commands.h"
#include "cli/ndjson_import.h"
#include "cli/output.h"
#include "server/raw_json.h"
#include "timetrail/event.h"
#include "timetrail/time.h"

namespace timetrail::cli {
namespace {

using server::JsonQuote;
using server::RawJson;
using Clock = std::chrono::steady_clock;

// Events done and the rate, on stderr: rewritten in place on a terminal, a line every few
// seconds otherwise (for logs of scripted runs with --progress).
class Progress {
 public:
  Progress(std::string verb, bool force)
      : verb_(std::move(verb)), tty_(::isatty(STDERR_FILENO) == 1), enabled_(force || tty_) {}

  void Update(std::uint64_t events) {
    if (!enabled_) return;
    auto now = Clock::now();
    if (now - last_ < (tty_ ? std::chrono::milliseconds(250) : std::chrono::milliseconds(2000))) {
      return;
    }
    last_ = now;
    Print(events, false);
  }

  void Finish(std::uint64_t events) {
    if (enabled_) Print(events, true);
  }

 private:
  void Print(std::uint64_t events, bool done) {
    double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    double rate = seconds > 0 ? static_cast<double>(events) / seconds : 0;
    char line[160];
    std::snprintf(line, sizeof line, "%s %llu events, %.0f events/s, %.1f s%s", verb_.c_str(),
                  static_cast<unsigned long long>(events), rate, seconds, done ? ", done" : "");
    std::cerr << (tty_ ? "\r" : "") << line << (tty_ && !done ? "" : "\n");
    std::cerr.flush();
  }

  std::string verb_;
  bool tty_;
  bool enabled_;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_ = start_;
};

// ---- export ------------------------------------------------------------------------------

struct ExportArgs {
  CommonOptions common;
  std::string output = "-";
  std::uint64_t from = 1;
  std::string stream_prefix;
  std::string types;
  bool progress = false;
};

int RunExport(const ExportArgs& a) {
  Result<std::unique_ptr<Backend>> backend = OpenBackend(a.common.target, false);
  if (!backend.ok()) return ReportStatus("export", backend.status());
  std::ofstream file;
  if (a.output != "-") {
    file.open(a.output, std::ios::binary | std::ios::trunc);
    if (!file) {
      return ReportStatus("export", Status::InvalidArgument("cannot write '" + a.output + "'"));
    }
  }
  std::ostream& out = a.output == "-" ? std::cout : file;
  std::string filter;
  if (!a.stream_prefix.empty()) filter += "&stream_prefix=" + UrlEncode(a.stream_prefix);
  if (!a.types.empty()) filter += "&types=" + UrlEncode(a.types);

  Progress progress("exported", a.progress);
  std::uint64_t from = a.from == 0 ? 1 : a.from;
  std::optional<std::uint64_t> head;  // the export is the log up to the head when it began
  std::uint64_t count = 0;
  CommonOptions quiet = a.common;
  quiet.json = false;
  while (!head || from <= *head) {
    std::string target = "/v1/log?from=" + std::to_string(from) + "&limit=1000" + filter;
    std::string raw;
    RawJson page;
    int code = CallJson(**backend, "export", quiet, "GET", target, "", {}, &raw, &page);
    if (code != kExitOk) return code;
    if (!head) head = Uint(page, "head");
    const RawJson* events = page.Find("events");
    if (events == nullptr) break;
    for (const RawJson& e : events->items) {
      if (Uint(e, "position") > *head) {
        from = *head + 1;
        break;
      }
      out << OneLine(e.text) << "\n";
      ++count;
    }
    std::uint64_t next = Uint(page, "next");
    if (next <= from) break;  // no progress: never loop forever on a confused answer
    from = next;
    progress.Update(count);
  }
  out.flush();
  if (!out) return ReportStatus("export", Status::IOError("writing '" + a.output + "' failed"));
  progress.Finish(count);
  // The summary goes to stdout only when the events do not: a pipe of events stays pure NDJSON.
  if (a.common.json) {
    (a.output == "-" ? std::cerr : std::cout)
        << "{\"events\":" << count << ",\"head\":" << head.value_or(0)
        << ",\"output\":" << JsonQuote(a.output) << "}\n";
  } else if (a.output != "-") {
    std::cerr << "exported " << count << " events up to position " << head.value_or(0) << " to "
              << a.output << "\n";
  }
  return kExitOk;
}

void AddExport(CLI::App& app) {
  auto a = std::make_shared<ExportArgs>();
  CLI::App* cmd = app.add_subcommand(
      "export", "Write the global log as NDJSON, one event JSON per line (what `import` reads)");
  AddCommonOptions(cmd, &a->common);
  cmd->add_option("--output,-o", a->output, "File to write; - is stdout")->capture_default_str();
  cmd->add_option("--from", a->from, "First position")->capture_default_str();
  cmd->add_option("--stream-prefix", a->stream_prefix, "Only streams whose name starts with this");
  cmd->add_option("--types", a->types, "Only these event types, comma-separated");
  cmd->add_flag("--progress", a->progress,
                "Report events done and the rate on stderr even when it is not a terminal");
  cmd->footer(
      "Examples:\n"
      "  timetrail export -o backup.ndjson\n"
      "  timetrail export --data ./timetrail-data --stream-prefix public.orders/ > orders.ndjson\n"
      "The export ends at the head the store had when it began. Each line is the event JSON of\n"
      "the API: stream, revision, position, id, type, data, metadata, recorded_at, valid_from,\n"
      "tx, hash.");
  SetAction(cmd, [a] { return RunExport(*a); });
}

// ---- import ------------------------------------------------------------------------------

struct ImportArgs {
  CommonOptions common;
  std::string input = "-";
  bool any_revision = false;
  bool progress = false;
};

int RunImport(const ImportArgs& a) {
  std::string text;
  if (a.input == "-") {
    std::ostringstream s;
    s << std::cin.rdbuf();
    text = s.str();
  } else {
    std::ifstream in(a.input, std::ios::binary);
    if (!in) return ReportStatus("import", Status::NotFound("cannot read '" + a.input + "'"));
    std::ostringstream s;
    s << in.rdbuf();
    text = s.str();
  }
  // Check every line before writing anything, so a bad file changes nothing.
  Result<std::vector<ImportEvent>> parsed = ParseNdjson(text);
  if (!parsed.ok()) {
    return ReportStatus("import", parsed.status().WithPrefix(a.input == "-" ? "stdin" : a.input));
  }
  // Events of system streams ($audit: tokens and administrative actions) belong to the store
  // they were exported from; the target store keeps its own.
  std::vector<ImportEvent> events;
  std::uint64_t skipped = 0;
  for (ImportEvent& e : *parsed) {
    if (e.stream.starts_with('$')) {
      ++skipped;
    } else {
      events.push_back(std::move(e));
    }
  }

  Result<std::unique_ptr<Backend>> backend = OpenBackend(a.common.target, /*create=*/true);
  if (!backend.ok()) return ReportStatus("import", backend.status());
  Progress progress("imported", a.progress);
  std::uint64_t written = 0, present = 0, transactions = 0;
  CommonOptions quiet = a.common;
  quiet.json = false;
  for (std::size_t begin = 0; begin < events.size();) {
    std::size_t end = TransactionEnd(events, begin);
    std::string raw;
    RawJson res;
    int code = CallJson(**backend, "import", quiet, "POST", "/v1/transactions",
                        TransactionBody(events, begin, end, a.any_revision), {}, &raw, &res);
    if (code != kExitOk) {
      std::cerr << "timetrail import: stopped at line " << events[begin].line << " ("
                << (end - begin) << " events of one transaction); " << written
                << " events were written before it, " << present
                << " were already present. Fix the input and run the import again: events "
                   "already imported are skipped.\n";
      return code;
    }
    const RawJson* replay = res.Find("idempotent_replay");
    ((replay != nullptr && replay->boolean) ? present : written) += end - begin;
    ++transactions;
    begin = end;
    progress.Update(written + present);
  }
  progress.Finish(written + present);
  if (a.common.json) {
    std::cout << "{\"events\":" << events.size() << ",\"transactions\":" << transactions
              << ",\"written\":" << written << ",\"already_present\":" << present
              << ",\"skipped_system\":" << skipped << "}\n";
  } else {
    std::cout << "imported " << events.size() << " events in " << transactions
              << " transactions: " << written << " written, " << present
              << " already present\n";
    if (skipped > 0) {
      std::cout << "skipped " << skipped
                << " events of system streams ($audit): they belong to the exported store\n";
    }
  }
  return kExitOk;
}

void AddImport(CLI::App& app) {
  auto a = std::make_shared<ImportArgs>();
  CLI::App* cmd = app.add_subcommand(
      "import", "Append the events of an NDJSON file (as `export` writes it), idempotently");
  AddCommonOptions(cmd, &a->common);
  cmd->add_option("file", a->input, "NDJSON file, one event per line; - reads stdin")
      ->capture_default_str();
  cmd->add_flag("--any-revision", a->any_revision,
                "Append each stream's events after whatever it holds, instead of requiring the "
                "revisions of the file");
  cmd->add_flag("--progress", a->progress,
                "Report events done and the rate on stderr even when it is not a terminal");
  cmd->footer(
      "Examples:\n"
      "  timetrail import backup.ndjson --data ./restored\n"
      "  timetrail export --server http://old:7070 | timetrail import --server http://new:7070\n"
      "Each line needs stream and type; id, data, metadata and valid_from are kept, so importing\n"
      "the same file twice writes nothing new. Consecutive lines with the same tx become one\n"
      "transaction. recorded_at, position and hash are assigned by the receiving store. The\n"
      "whole file is checked first: a bad line (exit 2) changes nothing. Revisions must line\n"
      "up (exit 4 otherwise) unless --any-revision.");
  SetAction(cmd, [a] { return RunImport(*a); });
}

}  // namespace

void AddImportExportCommands(CLI::App& app) {
  AddImport(app);
  AddExport(app);
}

}  // namespace timetrail::cli
