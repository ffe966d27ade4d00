#include "core/validation.h"

#include <nlohmann/json.hpp>

#include <set>
#include <string>
#include <unordered_set>

namespace timetrail {
namespace {

std::string Field(std::size_t append, std::size_t event, std::string_view name) {
  return "appends[" + std::to_string(append) + "].events[" + std::to_string(event) + "]." +
         std::string(name);
}

bool IsReservedType(std::string_view type) {
  return type == kPutType || type == kPatchType || type == kDeleteType;
}

// Whether JSON text is null, {} or nothing (what "$delete" accepts as data).
bool IsEmptyDocument(std::string_view json) {
  std::string compact;
  for (char c : json) {
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') compact.push_back(c);
  }
  return compact.empty() || compact == "null" || compact == "{}";
}

Status ValidateEvent(const ProposedEvent& e, std::size_t a, std::size_t i, const Limits& limits) {
  if (e.type.empty() || e.type.size() > limits.max_type_bytes) {
    return Status::InvalidArgument(Field(a, i, "type") + ": must be 1 to " +
                                   std::to_string(limits.max_type_bytes) + " bytes, got " +
                                   std::to_string(e.type.size()) + " (limit max_type_bytes)");
  }
  if (!IsPrintableUtf8(e.type)) {
    return Status::InvalidArgument(Field(a, i, "type") +
                                   ": must be UTF-8 without control characters");
  }
  if (e.type[0] == '$' && !IsReservedType(e.type)) {
    return Status::InvalidArgument(Field(a, i, "type") + ": '" + e.type +
                                   "' is reserved; types beginning with '$' are for the store, "
                                   "and only $put, $patch and $delete may be appended");
  }
  std::size_t bytes = e.data.size() + e.metadata.size();
  if (bytes > limits.max_event_bytes) {
    return Status::TooLarge(Field(a, i, "data") + ": data and metadata are " +
                            std::to_string(bytes) + " bytes, over the limit of " +
                            std::to_string(limits.max_event_bytes) + " (max_event_bytes)");
  }
  if (!e.data.empty() && !IsValidJson(e.data)) {
    return Status::InvalidArgument(Field(a, i, "data") + ": is not valid JSON");
  }
  if (!e.metadata.empty()) {
    if (!IsValidJson(e.metadata)) {
      return Status::InvalidArgument(Field(a, i, "metadata") + ": is not valid JSON");
    }
    if (!IsJsonObject(e.metadata)) {
      return Status::InvalidArgument(Field(a, i, "metadata") + ": must be a JSON object");
    }
  }
  if (e.type == kPutType || e.type == kPatchType) {
    if (e.data.empty() || !IsJsonObject(e.data)) {
      return Status::InvalidArgument(Field(a, i, "data") + ": a " + e.type +
                                     " event needs a JSON object (the " +
                                     (e.type == kPutType ? "whole document" : "merge patch") +
                                     ")");
    }
  } else if (e.type == kDeleteType && !IsEmptyDocument(e.data)) {
    return Status::InvalidArgument(Field(a, i, "data") +
                                   ": a $delete event carries no document: send null, {} or no "
                                   "data");
  }
  if (e.id && e.id->is_nil()) {
    return Status::InvalidArgument(Field(a, i, "id") + ": the nil UUID is not an event id");
  }
  if (e.valid_from && (*e.valid_from < kMinTimestamp || *e.valid_from > kMaxTimestamp)) {
    return Status::InvalidArgument(Field(a, i, "valid_from") +
                                   ": must lie between 0001-01-01 and 9999-12-31");
  }
  return Status::Ok();
}

// The length of the UTF-8 sequence starting at s[i], with its code point in *cp; 0 if the
// bytes there are not one.
std::size_t Utf8Sequence(std::string_view s, std::size_t i, std::uint32_t* cp) {
  auto c = static_cast<unsigned char>(s[i]);
  std::size_t n;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if ((c & 0xE0) == 0xC0) {
    *cp = c & 0x1F;
    n = 2;
  } else if ((c & 0xF0) == 0xE0) {
    *cp = c & 0x0F;
    n = 3;
  } else if ((c & 0xF8) == 0xF0) {
    *cp = c & 0x07;
    n = 4;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    *cp = *cp << 6 | (cc & 0x3F);
  }
  // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
  static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (*cp < kMin[n] || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF)) return 0;
  return n;
}

// True if "s" is UTF-8 and accept(code point) holds for each of its code points.
template <typename Accept>
bool AllUtf8(std::string_view s, Accept accept) {
  for (std::size_t i = 0; i < s.size();) {
    std::uint32_t cp;
    std::size_t n = Utf8Sequence(s, i, &cp);
    if (n == 0 || !accept(cp)) return false;
    i += n;
  }
  return true;
}

}  // namespace

bool IsUtf8(std::string_view s) {
  return AllUtf8(s, [](std::uint32_t) { return true; });
}

bool IsPrintableUtf8(std::string_view s) {
  return AllUtf8(s, [](std::uint32_t cp) {
    return !(cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F));
  });
}

std::string ToValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    std::uint32_t cp;
    std::size_t n = Utf8Sequence(s, i, &cp);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

bool IsValidJson(std::string_view json) {
  return nlohmann::json::accept(json.begin(), json.end());
}

bool IsJsonObject(std::string_view json) {
  for (char c : json) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    return c == '{';
  }
  return false;
}

Status ValidateStreamName(std::string_view stream, const Limits& limits, std::string_view field) {
  if (stream.empty() || stream.size() > limits.max_stream_name_bytes) {
    return Status::InvalidArgument(std::string(field) + ": a stream name must be 1 to " +
                                   std::to_string(limits.max_stream_name_bytes) +
                                   " bytes, got " + std::to_string(stream.size()) +
                                   " (limit max_stream_name_bytes)");
  }
  if (!IsPrintableUtf8(stream)) {
    return Status::InvalidArgument(std::string(field) +
                                   ": a stream name must be UTF-8 without control characters");
  }
  return Status::Ok();
}

Status ValidateTransaction(const Transaction& tx, const Limits& limits) {
  if (tx.appends.empty()) {
    return Status::InvalidArgument("appends: a transaction needs at least one stream");
  }
  if (tx.appends.size() > limits.max_transaction_streams) {
    return Status::TooLarge("appends: " + std::to_string(tx.appends.size()) +
                            " streams, over the limit of " +
                            std::to_string(limits.max_transaction_streams) +
                            " (max_transaction_streams)");
  }
  std::size_t events = 0, bytes = 0;
  std::set<std::string_view> streams;
  std::unordered_set<std::string> ids;
  for (std::size_t a = 0; a < tx.appends.size(); ++a) {
    const StreamAppend& sa = tx.appends[a];
    std::string field = "appends[" + std::to_string(a) + "]";
    TT_RETURN_IF_ERROR(ValidateStreamName(sa.stream, limits, field + ".stream"));
    if (!streams.insert(sa.stream).second) {
      return Status::InvalidArgument(field + ".stream: '" + sa.stream +
                                     "' appears twice in one transaction; put all its events "
                                     "in one append");
    }
    if (sa.events.empty()) {
      return Status::InvalidArgument(field + ".events: needs at least one event");
    }
    events += sa.events.size();
    if (events > limits.max_transaction_events) {
      return Status::TooLarge("the transaction has more than " +
                              std::to_string(limits.max_transaction_events) +
                              " events (limit max_transaction_events); split it");
    }
    for (std::size_t i = 0; i < sa.events.size(); ++i) {
      const ProposedEvent& e = sa.events[i];
      TT_RETURN_IF_ERROR(ValidateEvent(e, a, i, limits));
      bytes += e.data.size() + e.metadata.size() + e.type.size();
      if (e.id) {
        std::string key(reinterpret_cast<const char*>(e.id->bytes.data()), 16);
        if (!ids.insert(key).second) {
          return Status::InvalidArgument(Field(a, i, "id") + ": " + e.id->ToString() +
                                         " is used by two events of this transaction");
        }
      }
    }
    if (bytes > limits.max_transaction_bytes) {
      return Status::TooLarge("the transaction's events are over " +
                              std::to_string(limits.max_transaction_bytes) +
                              " bytes (limit max_transaction_bytes); split it");
    }
  }
  return Status::Ok();
}

}  // namespace timetrail
