// Reading `timetrail import`'s NDJSON input: one event JSON per line, checked whole before
// anything is written, and turned into the POST /v1/transactions bodies that write it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "timetrail/status.h"

namespace timetrail::cli {

// One event of the input, checked.
struct ImportEvent {
  std::size_t line = 0;  // 1-based line of the input, for error messages
  std::string stream;
  std::optional<std::uint64_t> revision;  // where the export had it, if it said
  std::optional<std::uint64_t> tx;        // the source transaction, if it said
  std::string json;                       // the event as the API's append takes it
};

// Every non-blank line of `text` as an event. The first bad line is an InvalidArgument that
// names the line and what is wrong with it; no events are returned then.
[[nodiscard]] Result<std::vector<ImportEvent>> ParseNdjson(std::string_view text);

// One past the last event of the transaction starting at `begin`: consecutive events with the
// same tx stay one transaction; an event without tx is a transaction of its own.
[[nodiscard]] std::size_t TransactionEnd(const std::vector<ImportEvent>& events,
                                         std::size_t begin);

// The POST /v1/transactions body for events[begin, end). Each stream's expected revision is the
// one before its first event's recorded revision (so a store where the stream is elsewhere
// conflicts), or "any" with `any_revision` or when the input gave none.
[[nodiscard]] std::string TransactionBody(const std::vector<ImportEvent>& events,
                                          std::size_t begin, std::size_t end, bool any_revision);

}  // namespace timetrail::cli
