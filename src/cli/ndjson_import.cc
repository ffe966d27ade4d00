#include "cli/ndjson_import.h"

#include <algorithm>

#include "server/raw_json.h"
#include "timetrail/event.h"
#include "timetrail/time.h"

namespace timetrail::cli {
namespace {

using server::JsonQuote;
using server::RawJson;

Status Field(std::size_t line, const std::string& what) {
  return Status::InvalidArgument("line " + std::to_string(line) + ": " + what);
}

Result<ImportEvent> ParseLine(std::size_t line, std::string_view text) {
  Result<RawJson> v = server::ParseRawJson(text);
  if (!v.ok()) return Field(line, "not valid JSON: " + v.status().message());
  if (!v->is_object()) return Field(line, "must be a JSON object (one event per line)");
  ImportEvent ev;
  ev.line = line;
  const RawJson* stream = v->Find("stream");
  if (stream == nullptr || stream->kind != RawJson::Kind::kString || stream->str.empty()) {
    return Field(line, "\"stream\" must be a non-empty string");
  }
  ev.stream = stream->str;
  const RawJson* type = v->Find("type");
  if (type == nullptr || type->kind != RawJson::Kind::kString) {
    return Field(line, "\"type\" must be a string");
  }
  std::string json = "{\"type\":" + JsonQuote(type->str);
  if (const RawJson* id = v->Find("id"); id != nullptr && id->kind != RawJson::Kind::kNull) {
    Result<Uuid> uuid = id->kind == RawJson::Kind::kString ? Uuid::Parse(id->str)
                                                           : Result<Uuid>(Status::InvalidArgument(
                                                                 "must be a string"));
    if (!uuid.ok()) return Field(line, "\"id\" is not a UUID: " + uuid.status().message());
    json += ",\"id\":" + JsonQuote(uuid->ToString());
  }
  if (const RawJson* data = v->Find("data")) json += ",\"data\":" + std::string(data->text);
  if (const RawJson* meta = v->Find("metadata"); meta != nullptr && meta->kind != RawJson::Kind::kNull) {
    if (!meta->is_object()) return Field(line, "\"metadata\" must be a JSON object");
    json += ",\"metadata\":" + std::string(meta->text);
  }
  if (const RawJson* vf = v->Find("valid_from"); vf != nullptr && vf->kind != RawJson::Kind::kNull) {
    Result<Timestamp> t = vf->kind == RawJson::Kind::kString
                              ? ParseTimestamp(vf->str)
                              : Result<Timestamp>(Status::InvalidArgument("must be a string"));
    if (!t.ok()) return Field(line, "\"valid_from\": " + t.status().message());
    json += ",\"valid_from\":" + JsonQuote(FormatTimestamp(*t));
  }
  json += "}";
  ev.json = std::move(json);
  for (const char* key : {"revision", "tx"}) {
    const RawJson* n = v->Find(key);
    if (n == nullptr || n->kind == RawJson::Kind::kNull) continue;
    if (!n->AsUint()) return Field(line, "\"" + std::string(key) + "\" must be a whole number");
    (std::string_view(key) == "tx" ? ev.tx : ev.revision) = *n->AsUint();
  }
  return ev;
}


}  // namespace

Result<std::vector<ImportEvent>> ParseNdjson(std::string_view text) {
  std::vector<ImportEvent> events;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, (nl == std::string_view::npos ? text.size() : nl) - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    Result<ImportEvent> ev = ParseLine(line_no, line);
    if (!ev.ok()) return ev.status();
    events.push_back(std::move(*ev));
  }
  return events;
}

std::size_t TransactionEnd(const std::vector<ImportEvent>& events, std::size_t begin) {
  std::size_t end = begin + 1;
  if (events[begin].tx) {
    while (end < events.size() && events[end].tx == events[begin].tx) ++end;
  }
  return end;
}

// One append per stream, in the order streams first appear, so positions come out in the
// original order.
std::string TransactionBody(const std::vector<ImportEvent>& events, std::size_t begin,
                            std::size_t end, bool any_revision) {
  std::vector<std::string> streams;
  for (std::size_t i = begin; i < end; ++i) {
    if (std::find(streams.begin(), streams.end(), events[i].stream) == streams.end()) {
      streams.push_back(events[i].stream);
    }
  }
  std::string body = "{\"appends\":[";
  for (std::size_t s = 0; s < streams.size(); ++s) {
    std::string list;
    std::string expected = "\"any\"";
    bool first = true;
    for (std::size_t i = begin; i < end; ++i) {
      if (events[i].stream != streams[s]) continue;
      if (first && !any_revision && events[i].revision) {
        // Keep revisions as they were: the stream must be exactly where the export had it.
        expected = *events[i].revision == 0 ? "\"no_stream\""
                                            : std::to_string(*events[i].revision - 1);
      }
      list += (first ? "" : ",") + events[i].json;
      first = false;
    }
    body += (s ? ",{\"stream\":" : "{\"stream\":") + JsonQuote(streams[s]) +
            ",\"expected_revision\":" + expected + ",\"events\":[" + list + "]}";
  }
  return body + "]}";
}

}  // namespace timetrail::cli
