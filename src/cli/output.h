// What the CLI's commands share: the --server/--data/--json options, exit codes, error
// reports, and plain-text tables.
#ifndef TIMETRAIL_CLI_OUTPUT_H_
#define TIMETRAIL_CLI_OUTPUT_H_

#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/backend.h"
#include "json/json_writer.h"
#include "json/raw_json.h"
#include "timetrail/status.h"

namespace timetrail::cli {

// The exit codes of the HTTP API contract.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitBadInput = 2;
inline constexpr int kExitNotFound = 3;
inline constexpr int kExitConflict = 4;
inline constexpr int kExitUnavailable = 5;
inline constexpr int kExitUnauthorized = 6;  // no valid token, or the token may not do it

inline constexpr const char* kDefaultServer = "http://127.0.0.1:7070";

// Options every client command takes. Intentionally copyable.
struct CommonOptions {
  TargetOptions target{kDefaultServer, ""};
  bool json = false;
};

// Adds --server (env TIMETRAIL_SERVER), --data, --token (env TIMETRAIL_TOKEN), --cacert
// (env TIMETRAIL_CACERT) and --json to "cmd".
void AddCommonOptions(CLI::App* cmd, CommonOptions* options);

// Makes "run" the command's action; a non-zero result becomes the process's exit code.
void SetAction(CLI::App* cmd, std::function<int()> run);

// The exit code for an API error code ("not_found" -> 3, ...).
int ExitCodeForError(std::string_view code);
int ExitCodeFor(const Status& status);

// Prints "timetrail CMD: CODE: MESSAGE" to stderr; returns the exit code for it.
int ReportStatus(std::string_view command, const Status& status);
// Reports an API error response (with --json its body also goes to stdout); returns the exit
// code for it.
int ReportErrorResponse(std::string_view command, const HttpResponse& response, bool json);

// Calls the backend and parses a 2xx JSON answer into "*out"; on any failure reports it and
// returns the exit code (else kExitOk). "*raw_body" receives the body text, which "*out" points
// into: it must outlive "*out".
int CallJson(Backend& backend, std::string_view command, const CommonOptions& options,
             std::string_view method, std::string_view target, std::string_view body,
             const Headers& headers, std::string* raw_body, json::RawJson* out);

// Accessors for parsed API answers; they return "" / 0 for a missing or mistyped member.
std::string Str(const json::RawJson& obj, std::string_view key);
std::uint64_t Uint(const json::RawJson& obj, std::string_view key);
// The member's JSON text ("null" when missing).
std::string Text(const json::RawJson& obj, std::string_view key);

// A plain-text table whose columns are as wide as their widest cell.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Print(std::ostream& out) const;
  bool empty() const { return rows_.empty(); }

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// A table printed a row at a time, for output that follows live events (`tail`): rows cannot
// wait for the widest cell, so a column is as wide as its header, its minimum width, and the
// widest cell printed so far. Columns stay aligned unless a cell outgrows what came before.
class StreamingTable {
 public:
  StreamingTable(std::vector<std::string> header, std::vector<std::size_t> min_width);
  void PrintHeader(std::ostream& out);
  void PrintRow(std::ostream& out, const std::vector<std::string>& row);

 private:
  void PrintLine(std::ostream& out, const std::vector<std::string>& row);
  std::vector<std::string> header_;
  std::vector<std::size_t> width_;
};

// The event table's columns, and one event's row.
std::vector<std::string> EventHeader();
std::vector<std::string> EventRow(const json::RawJson& event);
// Minimum column widths that keep typical events aligned when they are printed one at a time.
std::vector<std::size_t> EventMinWidths();
// One line of JSON text: line breaks (only ever whitespace between JSON tokens) become spaces.
std::string OneLine(std::string_view json);

}  // namespace timetrail::cli

#endif  // TIMETRAIL_CLI_OUTPUT_H_
