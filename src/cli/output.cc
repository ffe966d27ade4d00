#include "cli/output.h"

#include <algorithm>
#include <iostream>

namespace timetrail::cli {

void AddCommonOptions(CLI::App* cmd, CommonOptions* options) {
  cmd->add_option("--server", options->target.server,
                  "URL of a running `timetrail serve` (ignored with --data)")
      ->envname("TIMETRAIL_SERVER")
      ->capture_default_str();
  cmd->add_option("--data", options->target.data_dir,
                  "Work directly on this data directory instead (reads: opened read-only, also "
                  "while a server holds it; writes: no other process may hold it)");
  cmd->add_option("--store", options->target.store_url,
                  "Work directly on a store kept in PostgreSQL instead (postgresql://...); "
                  "writes need no other timetrail writing to it")
      ->envname("TIMETRAIL_STORE");
  cmd->add_option("--store-schema", options->target.store_schema,
                  "Schema of the --store database that holds the store")
      ->envname("TIMETRAIL_STORE_SCHEMA")
      ->default_str("timetrail_store");
  cmd->add_option("--token", options->target.token,
                  "API token for a server with authentication on (docs/security.md)")
      ->envname("TIMETRAIL_TOKEN");
  cmd->add_option("--cacert", options->target.ca_file,
                  "PEM file of the certificate authorities to trust for an https --server "
                  "(default: the system's)")
      ->envname("TIMETRAIL_CACERT");
  cmd->add_flag("--json", options->json, "Print the API's JSON instead of a table");
}

void SetAction(CLI::App* cmd, std::function<int()> run) {
  cmd->callback([run = std::move(run)] {
    int code = run();
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

int ExitCodeForError(std::string_view code) {
  if (code == "bad_json" || code == "invalid_argument" || code == "too_large" ||
      code == "unsupported_media_type") {
    return kExitBadInput;
  }
  if (code == "not_found") return kExitNotFound;
  if (code == "wrong_expected_revision" || code == "duplicate_event") return kExitConflict;
  if (code == "unavailable") return kExitUnavailable;
  if (code == "unauthenticated" || code == "forbidden") return kExitUnauthorized;
  return kExitFailure;
}

int ExitCodeFor(const Status& status) {
  if (status.ok()) return kExitOk;
  return ExitCodeForError(StatusCodeName(status.code()));
}

int ReportStatus(std::string_view command, const Status& status) {
  std::cerr << "timetrail " << command << ": " << status.ToString() << "\n";
  return ExitCodeFor(status);
}

int ReportErrorResponse(std::string_view command, const HttpResponse& response, bool json) {
  Result<json::RawJson> body = json::ParseRawJson(response.body);
  if (!body.ok() || !body->is_object() || body->Find("error") == nullptr) {
    std::cerr << "timetrail " << command << ": the server answered HTTP " << response.status
              << " without an error body: " << response.body.substr(0, 200) << "\n";
    if (response.status == 404) return kExitNotFound;
    if (response.status == 503) return kExitUnavailable;
    return response.status >= 400 && response.status < 500 ? kExitBadInput : kExitFailure;
  }
  if (json) std::cout << OneLine(response.body) << "\n";
  std::string code = Str(*body, "error");
  std::cerr << "timetrail " << command << ": " << code << ": " << Str(*body, "message");
  std::cerr << "\n";
  return ExitCodeForError(code);
}

int CallJson(Backend& backend, std::string_view command, const CommonOptions& options,
             std::string_view method, std::string_view target, std::string_view body,
             const Headers& headers, std::string* raw_body, json::RawJson* out) {
  Result<HttpResponse> res = backend.Call(method, target, body, headers);
  if (!res.ok()) return ReportStatus(command, res.status());
  if (res->status < 200 || res->status >= 300) {
    return ReportErrorResponse(command, *res, options.json);
  }
  // "out" points into the text it was parsed from, so it parses the caller's copy.
  *raw_body = std::move(res->body);
  Result<json::RawJson> parsed = json::ParseRawJson(*raw_body);
  if (!parsed.ok()) {
    std::cerr << "timetrail " << command << ": the answer from " << backend.Describe()
              << " is not JSON: " << parsed.status().message() << "\n";
    return kExitFailure;
  }
  *out = std::move(*parsed);
  return kExitOk;
}

std::string Str(const json::RawJson& obj, std::string_view key) {
  const json::RawJson* v = obj.Find(key);
  return v != nullptr && v->kind == json::RawJson::Kind::kString ? v->str : std::string();
}

std::uint64_t Uint(const json::RawJson& obj, std::string_view key) {
  const json::RawJson* v = obj.Find(key);
  if (v == nullptr) return 0;
  return v->AsUint().value_or(0);
}

std::string Text(const json::RawJson& obj, std::string_view key) {
  const json::RawJson* v = obj.Find(key);
  return v == nullptr ? std::string("null") : std::string(v->text);
}

void Table::Print(std::ostream& out) const {
  std::vector<std::size_t> width(header_.size(), 0);
  auto measure = [&width](const std::vector<std::string>& row) {
    for (std::size_t i = 0; i < row.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  };
  measure(header_);
  for (const auto& row : rows_) measure(row);
  auto print = [&](const std::vector<std::string>& row) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    // Empty cells at the end of a row leave no trailing spaces.
    line.erase(line.find_last_not_of(' ') + 1);
    out << line << "\n";
  };
  print(header_);
  for (const auto& row : rows_) print(row);
}

StreamingTable::StreamingTable(std::vector<std::string> header, std::vector<std::size_t> min_width)
    : header_(std::move(header)), width_(std::move(min_width)) {
  width_.resize(header_.size(), 0);
  for (std::size_t i = 0; i < header_.size(); ++i)
    width_[i] = std::max(width_[i], header_[i].size());
}

void StreamingTable::PrintHeader(std::ostream& out) { PrintLine(out, header_); }

void StreamingTable::PrintRow(std::ostream& out, const std::vector<std::string>& row) {
  PrintLine(out, row);
}

void StreamingTable::PrintLine(std::ostream& out, const std::vector<std::string>& row) {
  std::string line;
  for (std::size_t i = 0; i < row.size(); ++i) {
    line += row[i];
    if (i + 1 < row.size()) {
      if (i < width_.size()) width_[i] = std::max(width_[i], row[i].size());
      std::size_t w = i < width_.size() ? width_[i] : row[i].size();
      line += std::string(w - row[i].size() + 2, ' ');
    }
  }
  line.erase(line.find_last_not_of(' ') + 1);
  out << line << "\n";
}

std::vector<std::size_t> EventMinWidths() {
  // POSITION, STREAM, REV, TYPE, RECORDED_AT (always 27 characters), ACTOR; DATA is last.
  return {8, 12, 4, 8, 27, 8, 0};
}

std::vector<std::string> EventHeader() {
  return {"POSITION", "STREAM", "REV", "TYPE", "RECORDED_AT", "ACTOR", "DATA"};
}

std::string OneLine(std::string_view json) {
  std::string out(json);
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

std::vector<std::string> EventRow(const json::RawJson& event) {
  std::string actor;
  if (const json::RawJson* meta = event.Find("metadata"); meta != nullptr && meta->is_object()) {
    actor = Str(*meta, "actor");
  }
  std::string data = OneLine(Text(event, "data"));
  constexpr std::size_t kMaxData = 80;
  if (data.size() > kMaxData) data = data.substr(0, kMaxData - 3) + "...";
  return {std::to_string(Uint(event, "position")),
          Str(event, "stream"),
          std::to_string(Uint(event, "revision")),
          Str(event, "type"),
          Str(event, "recorded_at"),
          actor,
          data};
}

}  // namespace timetrail::cli
