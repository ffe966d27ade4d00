#include "query/document.h"

#include <utility>

namespace timetrail::query {
namespace {

using Json = nlohmann::json;

// Parses stored JSON text. The write path validated it, so failing here means the stored bytes
// changed; without exceptions (allow_exceptions = false) nlohmann returns a discarded value.
Result<Json> ParseStored(std::string_view text, std::string_view what) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Status::Corruption(std::string(what) + " is not valid JSON");
  }
  return j;
}

// The value at "path" of "doc", or nullopt when absent. Pointer lookups that step through a
// non-container or an array with a non-numeric token mean "absent" here.
std::optional<Json> ValueAt(const Document& doc, const Json::json_pointer& path) {
  if (!doc.exists) return std::nullopt;
  try {
    if (!doc.state.contains(path)) return std::nullopt;
    return doc.state.at(path);
  } catch (const Json::exception&) {
    return std::nullopt;
  }
}

}  // namespace

bool IsDocumentType(std::string_view type) {
  return type == kPutType || type == kPatchType || type == kDeleteType;
}

Status Apply(Document& doc, std::string_view type, std::string_view data) {
  if (type == kDeleteType) {
    doc.exists = false;
    doc.state = nullptr;
    return Status::Ok();
  }
  if (type != kPutType && type != kPatchType) return Status::Ok();
  auto parsed = ParseStored(data, std::string(type) + " data");
  if (!parsed.ok()) return parsed.status();
  if (!parsed->is_object()) {
    return Status::Corruption(std::string(type) + " data is not a JSON object");
  }
  if (type == kPutType) {
    doc.state = std::move(parsed).value();
  } else {
    if (!doc.exists) doc.state = Json::object();
    doc.state.merge_patch(*parsed);
  }
  doc.exists = true;
  return Status::Ok();
}

EventPoint PointOf(const RecordedEvent& e) {
  EventPoint p;
  p.revision = e.revision;
  p.position = e.position;
  p.id = e.id;
  p.type = e.type;
  p.recorded_at = e.recorded_at;
  p.valid_from = e.valid_from;
  p.tx = e.tx;
  p.metadata = e.metadata;
  return p;
}

bool ValidOrderLess(const RecordedEvent& a, const RecordedEvent& b) {
  if (a.valid_from != b.valid_from) return a.valid_from < b.valid_from;
  return a.position < b.position;
}

EntityState ToState(std::string_view stream, const Document& doc,
                    std::optional<EventPoint> event) {
  EntityState s;
  s.stream = std::string(stream);
  s.exists = doc.exists;
  s.state = doc.exists ? doc.state.dump() : "null";
  s.event = std::move(event);
  return s;
}

Result<EntityState> Fold(std::string_view stream, Document start,
                         std::optional<EventPoint> start_event,
                         std::span<const RecordedEvent> events) {
  Document doc = std::move(start);
  const RecordedEvent* last = nullptr;
  for (const RecordedEvent& e : events) {
    if (!IsDocumentType(e.type)) continue;
    Status s = Apply(doc, e.type, e.data);
    if (!s.ok()) return s.WithPrefix("stream '" + std::string(stream) + "' revision " +
                                     std::to_string(e.revision));
    last = &e;
  }
  if (last) start_event = PointOf(*last);
  return ToState(stream, doc, std::move(start_event));
}

Result<nlohmann::json::json_pointer> ParsePointer(std::string_view path) {
  try {
    return Json::json_pointer(std::string(path));
  } catch (const Json::exception& e) {
    return Status::InvalidArgument("path '" + std::string(path) +
                                   "': not a JSON pointer (RFC 6901: empty, or '/' followed by "
                                   "tokens, with '~0' for '~' and '~1' for '/'): " + e.what());
  }
}

Result<std::vector<PropertyInterval>> History(std::span<const RecordedEvent> events,
                                              const nlohmann::json::json_pointer& path) {
  std::vector<PropertyInterval> out;
  Document doc;
  std::optional<Json> current;
  for (const RecordedEvent& e : events) {
    if (!IsDocumentType(e.type)) continue;
    Status s = Apply(doc, e.type, e.data);
    if (!s.ok()) return s.WithPrefix("revision " + std::to_string(e.revision));
    std::optional<Json> value = ValueAt(doc, path);
    if (!out.empty() && value == current) continue;  // unchanged: the interval goes on
    EventPoint point = PointOf(e);
    if (!out.empty()) out.back().to = point;
    PropertyInterval interval;
    interval.present = value.has_value();
    interval.value = value ? value->dump() : "null";
    interval.from = std::move(point);
    out.push_back(std::move(interval));
    current = std::move(value);
  }
  return out;
}

Result<std::string> DiffStates(const EntityState& from, const EntityState& to) {
  TT_ASSIGN_OR_RETURN(Json a, ParseStored(from.state, "state"));
  TT_ASSIGN_OR_RETURN(Json b, ParseStored(to.state, "state"));
  return Json::diff(a, b).dump();
}

}  // namespace timetrail::query
