// `timetrail export` and `timetrail import`: the global log as NDJSON, one event JSON per line,
// exactly as the API returns events.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <iostream>
#include <memory>
#include <optional>
#include <vector>

#include "cli/commands.h"
#include "cli/ndjson_import.h"
#include "cli/output.h"
#include "cli/progress.h"
#include "server/api.h"
#include "server/raw_json.h"
#include "timetrail/event.h"
#include "timetrail/time.h"

namespace timetrail::cli {
namespace {

using server::JsonQuote;
using server::RawJson;

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
  Result<std::unique_ptr<Backend>> backend = OpenBackend(a.common.target, Access::kRead);
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
  bool no_bulk = false;
};

// How many transactions a data directory's store takes per TransactMany call: up to
// "transactions", fewer when they reach "bytes". Larger batches share more fsyncs and drain the
// store's pipeline less often (TransactMany returns once its whole batch is durable), at the
// cost of memory.
struct ImportBatch {
  std::size_t transactions;
  std::size_t bytes;
};
// Through the write-ahead log (--no-bulk). Not tuned finely: at this size the store's own work
// per event is the limit (bench/README.md, "import").
constexpr ImportBatch kLoggedBatch{4096, 8u << 20};
// A bulk load makes each batch table files of its own, ingested at once: big batches make
// fewer, larger files (fewer to compact later), at the cost of memory (about twice the bytes).
constexpr ImportBatch kBulkBatch{65536, 64u << 20};

// What the check pass found: the events to write, and those left out.
struct InputSummary {
  std::uint64_t events = 0;
  std::uint64_t skipped_system = 0;
};

// What has been written so far.
struct ImportCounts {
  std::uint64_t written = 0;
  std::uint64_t present = 0;
  std::uint64_t transactions = 0;
  std::uint64_t done() const { return written + present; }
};

// Events of system streams ($audit: tokens and administrative actions) belong to the store
// they were exported from; the target store keeps its own.
bool IsSystemStream(const ImportEvent& e) { return e.stream.starts_with('$'); }

// Reads every line, so that a bad one is refused before anything is written.
Result<InputSummary> CheckInput(LineReader& lines) {
  InputSummary summary;
  std::string_view line;
  while (lines.Next(&line)) {
    if (IsBlankLine(line)) continue;
    TT_ASSIGN_OR_RETURN(ImportEvent e, ParseImportLine(lines.line_number(), line));
    ++(IsSystemStream(e) ? summary.skipped_system : summary.events);
  }
  TT_RETURN_IF_ERROR(lines.status());
  return summary;
}

// One transaction of the input and where it came from.
struct ImportTransaction {
  std::size_t first_line = 0;
  std::size_t events = 0;
  std::size_t bytes = 0;  // roughly what it stores, for batch sizes
  Transaction tx;
};

// The input's transactions in order, read a line at a time: consecutive events with the same
// tx form one (TransactionEnd's rule); system streams are left out.
class TransactionReader {
 public:
  TransactionReader(LineReader* lines, bool any_revision)
      : lines_(lines), any_revision_(any_revision) {}

  // The next transaction; nullopt at the end of the input.
  Result<std::optional<ImportTransaction>> Next() {
    std::vector<ImportEvent> group;
    if (lookahead_) {
      group.push_back(std::move(*lookahead_));
      lookahead_.reset();
    }
    std::string_view line;
    while (lines_->Next(&line)) {
      if (IsBlankLine(line)) continue;
      TT_ASSIGN_OR_RETURN(ImportEvent e, ParseImportLine(lines_->line_number(), line));
      if (IsSystemStream(e)) continue;
      if (group.empty() || SameTransaction(group.front(), e)) {
        group.push_back(std::move(e));
      } else {
        lookahead_ = std::move(e);
        break;
      }
    }
    TT_RETURN_IF_ERROR(lines_->status());
    if (group.empty()) return std::optional<ImportTransaction>();
    ImportTransaction t;
    t.first_line = group.front().line;
    t.events = group.size();
    for (const ImportEvent& e : group) {
      t.bytes += e.stream.size() + e.event.type.size() + e.event.data.size() +
                 e.event.metadata.size() + 64;
    }
    t.tx = BuildTransaction(std::move(group), any_revision_);
    return std::optional<ImportTransaction>(std::move(t));
  }

 private:
  LineReader* lines_;
  bool any_revision_;
  std::optional<ImportEvent> lookahead_;
};

void ReportStop(std::size_t line, std::size_t events, const ImportCounts& counts) {
  std::cerr << "timetrail import: stopped at line " << line << " (" << events
            << " events of one transaction); " << counts.written
            << " events were written before it, " << counts.present
            << " were already present. Fix the input and run the import again: events "
               "already imported are skipped.\n";
}

// Server mode: POST /v1/transactions/batch with up to this many transactions (or about this
// many bytes of them) per request, in order. The server commits a batch as TransactMany does,
// many transactions to one fsync, and stores nothing after the first that fails.
constexpr std::size_t kServerBatchTransactions = 1000;
constexpr std::size_t kServerBatchBytes = 4u << 20;

// Counts the stored transactions of a batch's answer, up to the first that failed (whose index
// it returns, if any).
std::optional<std::size_t> CountBatchAnswer(const RawJson& answer,
                                            const std::vector<ImportTransaction>& batch,
                                            ImportCounts* counts) {
  const RawJson* results = answer.Find("results");
  if (results == nullptr) return std::nullopt;
  for (std::size_t i = 0; i < results->items.size() && i < batch.size(); ++i) {
    const std::uint64_t status = Uint(results->items[i], "status");
    if (status != 200 && status != 201) return i;
    (status == 200 ? counts->present : counts->written) += batch[i].events;
    ++counts->transactions;
  }
  return std::nullopt;
}

int ImportThroughApi(Backend& backend, TransactionReader& reader, Progress& progress,
                     ImportCounts* counts) {
  while (true) {
    std::vector<ImportTransaction> batch;
    std::string body = "{\"transactions\":[";
    Status read_status;
    while (batch.size() < kServerBatchTransactions && body.size() < kServerBatchBytes) {
      Result<std::optional<ImportTransaction>> next = reader.Next();
      if (!next.ok()) {
        read_status = next.status();
        break;
      }
      if (!next->has_value()) break;
      if (!batch.empty()) body += ',';
      body += TransactionJson((*next)->tx);
      batch.push_back(std::move(**next));
    }
    body += "]}";
    if (!batch.empty()) {
      Result<HttpResponse> res = backend.Call("POST", "/v1/transactions/batch", body, {});
      if (!res.ok()) {
        ReportStop(batch.front().first_line, batch.front().events, *counts);
        return ReportStatus("import", res.status());
      }
      Result<RawJson> answer = json::ParseRawJson(res->body);
      if (!answer.ok() && res->status >= 200 && res->status < 300) {
        ReportStop(batch.front().first_line, batch.front().events, *counts);
        return ReportStatus("import", answer.status().WithPrefix("the server's answer"));
      }
      std::optional<std::size_t> failed;
      if (answer.ok()) failed = CountBatchAnswer(*answer, batch, counts);
      if (res->status < 200 || res->status >= 300) {
        // Either one transaction failed (the answer says which, and what was stored before it)
        // or the whole request was refused (nothing of it was stored).
        const std::size_t at = failed.value_or(0);
        HttpResponse error = *res;
        if (failed) {
          const RawJson* results = answer->Find("results");
          const RawJson* e = results->items[at].Find("error");
          if (e != nullptr) error.body = std::string(e->text);
        }
        int code = ReportErrorResponse("import", error, /*json=*/false);
        ReportStop(batch[at].first_line, batch[at].events, *counts);
        return code;
      }
      progress.Update(counts->done());
    }
    if (!read_status.ok()) return ReportStatus("import", read_status);
    if (batch.empty()) return kExitOk;
  }
}

// Data mode: batches of transactions committed with TransactMany, which shares fsyncs between
// them and stores nothing after the first that fails, so what is stored is always a prefix of
// the input, even after a crash. The next batch is read and parsed while one commits.
int ImportIntoStore(EventStore& store, TransactionReader& reader, const ImportBatch& limits,
                    Progress& progress, ImportCounts* counts) {
  struct Origin {
    std::size_t first_line;
    std::size_t events;
  };
  std::vector<Origin> committing;  // of the batch in flight
  std::future<std::vector<Result<Committed>>> in_flight;
  // Waits for the batch in flight and counts it; reports its first failure.
  auto settle = [&]() -> int {
    std::vector<Result<Committed>> results = in_flight.get();
    for (std::size_t i = 0; i < results.size(); ++i) {
      if (!results[i].ok()) {
        // The same report as the API's answer in server mode.
        server::ApiResponse error = server::ErrorResponse(results[i].status());
        HttpResponse response;
        response.status = error.status;
        response.body = std::move(error.body);
        int code = ReportErrorResponse("import", response, /*json=*/false);
        ReportStop(committing[i].first_line, committing[i].events, *counts);
        return code;
      }
      (results[i]->idempotent_replay ? counts->present : counts->written) += committing[i].events;
      ++counts->transactions;
    }
    progress.Update(counts->done());
    return kExitOk;
  };
  while (true) {
    std::vector<Transaction> batch;
    std::vector<Origin> origins;
    std::size_t bytes = 0;
    Status read_status;
    while (batch.size() < limits.transactions && bytes < limits.bytes) {
      Result<std::optional<ImportTransaction>> next = reader.Next();
      if (!next.ok()) {
        read_status = next.status();
        break;
      }
      if (!next->has_value()) break;
      origins.push_back({(*next)->first_line, (*next)->events});
      bytes += (*next)->bytes;
      batch.push_back(std::move((*next)->tx));
    }
    if (in_flight.valid()) {
      if (int code = settle(); code != kExitOk) return code;
    }
    if (!read_status.ok()) return ReportStatus("import", read_status);
    if (batch.empty()) return kExitOk;
    committing = std::move(origins);
    in_flight = std::async(std::launch::async, [&store, txs = std::move(batch)]() mutable {
      return store.TransactMany(std::move(txs), /*stop_at_first_failure=*/true);
    });
  }
}

int RunImport(const ImportArgs& a) {
  std::string input_name = a.input == "-" ? "stdin" : a.input;
  Result<std::unique_ptr<LineReader>> lines = LineReader::Open(a.input);
  if (!lines.ok()) return ReportStatus("import", lines.status());
  // Check every line before writing anything, so a bad file changes nothing. The file is then
  // read again to write it, so it is never held in memory whole (stdin is).
  Result<InputSummary> summary = CheckInput(**lines);
  if (!summary.ok()) return ReportStatus("import", summary.status().WithPrefix(input_name));
  if (Status s = (*lines)->Rewind(); !s.ok()) return ReportStatus("import", s);

  // A data directory is loaded in bulk (Options::bulk_load): nothing else can use it meanwhile.
  const bool bulk = !a.no_bulk;
  Options store_options;
  if (bulk) {
    store_options.bulk_load = true;
    // One batch, one group commit, one ingestion (a group is also cut at these limits).
    store_options.group_commit_max_transactions = kBulkBatch.transactions;
    store_options.group_commit_max_bytes = 2 * kBulkBatch.bytes;
  }
  Result<std::unique_ptr<Backend>> backend =
      OpenBackend(a.common.target, Access::kCreate, store_options);
  if (!backend.ok()) return ReportStatus("import", backend.status());
  Progress progress("imported", a.progress, summary->events);
  ImportCounts counts;
  TransactionReader reader(lines->get(), a.any_revision);
  EventStore* store = (*backend)->store();
  int code = store != nullptr ? ImportIntoStore(*store, reader, bulk ? kBulkBatch : kLoggedBatch,
                                                progress, &counts)
                              : ImportThroughApi(**backend, reader, progress, &counts);
  if (code != kExitOk) return code;
  progress.Finish(counts.done());
  if (a.common.json) {
    std::cout << "{\"events\":" << counts.done() << ",\"transactions\":" << counts.transactions
              << ",\"written\":" << counts.written << ",\"already_present\":" << counts.present
              << ",\"skipped_system\":" << summary->skipped_system << "}\n";
  } else {
    std::cout << "imported " << counts.done() << " events in " << counts.transactions
              << " transactions: " << counts.written << " written, " << counts.present
              << " already present\n";
    if (summary->skipped_system > 0) {
      std::cout << "skipped " << summary->skipped_system
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
                "Report events done of the total, the rate and the time left on stderr even "
                "when it is not a terminal (where it is always shown)");
  cmd->add_flag("--no-bulk", a->no_bulk,
                "With --data: commit through the store's write-ahead log, 4,096 transactions "
                "at a time, instead of loading batches of up to 65,536 as sorted table files");
  cmd->footer(
      "Examples:\n"
      "  timetrail import backup.ndjson --data ./restored --progress\n"
      "  timetrail export --server http://old:7070 | timetrail import --server http://new:7070\n"
      "Each line needs stream and type; id, data, metadata and valid_from are kept, so importing\n"
      "the same file twice writes nothing new. Consecutive lines with the same tx become one\n"
      "transaction. recorded_at, position and hash are assigned by the receiving store. The\n"
      "whole file is checked first: a bad line (exit 2) changes nothing. Revisions must line\n"
      "up (exit 4 otherwise) unless --any-revision. The import stops at the first transaction\n"
      "that fails and names its line; what was stored before it is exactly the lines before it\n"
      "(with --data also after a crash), and running it again skips events already present.\n"
      "Transactions are committed many to one fsync: with --data through the store directly,\n"
      "in bulk (each batch of up to 65,536 transactions becomes sorted table files that the\n"
      "store takes in whole, in one atomic step: nothing else may use the directory meanwhile),\n"
      "with --server up to 1,000 per request (POST /v1/transactions/batch).\n"
      "--progress (or a terminal on stderr) shows events done of the total, events/s and\n"
      "the time left.");
  SetAction(cmd, [a] { return RunImport(*a); });
}

}  // namespace

void AddImportExportCommands(CLI::App& app) {
  AddImport(app);
  AddExport(app);
}

}  // namespace timetrail::cli
