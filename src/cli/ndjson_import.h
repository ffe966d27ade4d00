// Reading `timetrail import`'s NDJSON input: one event JSON per line, checked whole before
// anything is written, and grouped into the transactions that write it (as timetrail::
// Transaction for a data directory, as POST /v1/transactions bodies for a server).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "timetrail/event.h"
#include "timetrail/status.h"

namespace timetrail::cli {

// One event of the input, checked.
struct ImportEvent {
  std::size_t line = 0;  // 1-based line of the input, for error messages
  std::string stream;
  std::optional<std::uint64_t> revision;  // where the export had it, if it said
  std::optional<std::uint64_t> tx;        // the source transaction, if it said
  ProposedEvent event;                    // what is appended: type, id, data, metadata, valid_from
};

// One line of input ("line" is its 1-based number) as an event. A bad line is an
// InvalidArgument that names the line and what is wrong with it.
[[nodiscard]] Result<ImportEvent> ParseImportLine(std::size_t line, std::string_view text);

// Whether a line holds nothing but white space (such lines are skipped).
[[nodiscard]] bool IsBlankLine(std::string_view text);

// Every non-blank line of `text` as an event. The first bad line is an InvalidArgument that
// names the line and what is wrong with it; no events are returned then.
[[nodiscard]] Result<std::vector<ImportEvent>> ParseNdjson(std::string_view text);

// One past the last event of the transaction starting at `begin`: consecutive events with the
// same tx stay one transaction; an event without tx is a transaction of its own.
[[nodiscard]] std::size_t TransactionEnd(const std::vector<ImportEvent>& events, std::size_t begin);

// Whether `next` continues the transaction whose first event is `first` (TransactionEnd's rule).
[[nodiscard]] inline bool SameTransaction(const ImportEvent& first, const ImportEvent& next) {
  return first.tx.has_value() && next.tx == first.tx;
}

// The transaction that writes `events` (one source transaction): one append per stream, in the
// order streams first appear, so positions come out in the original order. Each stream's
// expected revision is the one before its first event's recorded revision (so a store where the
// stream is elsewhere conflicts), or "any" with `any_revision` or when the input gave none.
[[nodiscard]] Transaction BuildTransaction(std::vector<ImportEvent> events, bool any_revision);

// The POST /v1/transactions body of `tx`.
[[nodiscard]] std::string TransactionJson(const Transaction& tx);

// The POST /v1/transactions body for events[begin, end): TransactionJson of BuildTransaction.
[[nodiscard]] std::string TransactionBody(const std::vector<ImportEvent>& events, std::size_t begin,
                                          std::size_t end, bool any_revision);

// The lines of the input, read as a stream: a file is read a line at a time (and read again
// for a second pass); stdin and pipes are held in memory because they can be read only once.
class LineReader {
 public:
  // "-" is stdin. kNotFound when the file cannot be opened.
  static Result<std::unique_ptr<LineReader>> Open(const std::string& path);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // The next line without its newline, valid until the next call; false at the end of the
  // input or on a read error (then status() says so).
  bool Next(std::string_view* line);
  // The 1-based number of the line Next returned last.
  std::size_t line_number() const { return line_number_; }
  const Status& status() const { return status_; }
  // Back to the first line.
  Status Rewind();

 private:
  LineReader() = default;
  std::string path_;
  std::FILE* file_ = nullptr;  // null for stdin, whose text is in memory
  char* buffer_ = nullptr;     // getline's buffer
  std::size_t capacity_ = 0;
  std::string memory_;
  std::size_t memory_pos_ = 0;
  std::size_t line_number_ = 0;
  Status status_;
};

}  // namespace timetrail::cli
