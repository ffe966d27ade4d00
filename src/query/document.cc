#include "query/document.h"

#include <utility>

#include "json/object_scan.h"

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

// RFC 6901 unescaping of one reference token: "~1" is '/', "~0" is '~'.
std::string UnescapeToken(std::string_view token) {
  std::string out;
  for (std::size_t i = 0; i < token.size(); ++i) {
    if (token[i] == '~' && i + 1 < token.size()) {
      out.push_back(token[i + 1] == '1' ? '/' : '~');
      ++i;
    } else {
      out.push_back(token[i]);
    }
  }
  return out;
}

// The decoded name of a scanned member.
Result<std::string> MemberName(const json::ScannedMember& m) {
  if (!m.key_escaped) return std::string(m.raw_key);
  std::string quoted = "\"" + std::string(m.raw_key) + "\"";
  Json key = Json::parse(quoted, nullptr, /*allow_exceptions=*/false);
  if (!key.is_string()) return Status::Corruption("a stored document has a malformed key");
  return key.get<std::string>();
}

// The source text of the member "name" of the object "text" (the last one, as a parse keeps),
// or nullopt when it has none.
Result<std::optional<std::string_view>> FindMember(std::string_view text, const std::string& name,
                                                   std::string_view what) {
  std::optional<std::string_view> found;
  Status error = Status::Ok();
  bool ok = json::ScanObjectMembers(text, [&](const json::ScannedMember& m) {
    if (m.key_escaped) {
      Result<std::string> decoded = MemberName(m);
      if (!decoded.ok()) {
        error = decoded.status();
        return false;
      }
      if (*decoded == name) found = m.value;
    } else if (m.raw_key == name) {
      found = m.value;
    }
    return true;
  });
  if (!error.ok()) return error;
  if (!ok) return Status::Corruption(std::string(what) + " is not a JSON object");
  return found;
}

}  // namespace

std::optional<Json> ValueAtPointer(const Json& value, const Json::json_pointer& pointer) {
  try {
    if (!value.contains(pointer)) return std::nullopt;
    return value.at(pointer);
  } catch (const Json::exception&) {
    return std::nullopt;
  }
}

Result<PointerTracker> PointerTracker::Make(std::string_view path) {
  TT_ASSIGN_OR_RETURN(Json::json_pointer pointer, ParsePointer(path));
  PointerTracker t;
  if (pointer.empty()) return t;  // the root: whole documents
  const std::size_t end = path.find('/', 1);
  t.member_ = UnescapeToken(path.substr(1, end == std::string_view::npos ? path.npos : end - 1));
  if (end != std::string_view::npos) {
    TT_ASSIGN_OR_RETURN(t.inner_, ParsePointer(path.substr(end)));
  }
  return t;
}

namespace {

// Text that dump() would write unchanged: a string without escapes (it holds no control
// characters, which JSON strings cannot hold raw) or a literal.
bool IsVerbatimText(std::string_view t) {
  if (t == "true" || t == "false" || t == "null") return true;
  return t.size() >= 2 && t.front() == '"' && t.back() == '"' &&
         t.find('\\') == std::string_view::npos;
}

// Whether text of a value that is a string or a literal (compared by text alone).
bool IsTextComparable(std::string_view t) {
  return !t.empty() && (t[0] == '"' || t[0] == 't' || t[0] == 'f' || t[0] == 'n');
}

}  // namespace

bool SameValue(const std::optional<std::string>& a, const std::optional<std::string>& b) {
  if (!a || !b) return a.has_value() == b.has_value();
  if (*a == *b) return true;
  if (IsTextComparable(*a) && IsTextComparable(*b)) return false;
  Json x = Json::parse(*a, nullptr, false);
  Json y = Json::parse(*b, nullptr, false);
  return !x.is_discarded() && !y.is_discarded() && x == y;
}

void PointerTracker::Reset(const Document& doc) {
  if (!member_) {
    whole_ = doc;
    return;
  }
  top_.reset();
  top_text_.reset();
  if (!doc.exists || !doc.state.is_object()) return;
  auto it = doc.state.find(*member_);
  if (it != doc.state.end()) top_ = *it;
}

Status PointerTracker::Apply(std::string_view type, std::string_view data, bool* changed) {
  *changed = false;
  if (!member_) {
    if (!IsDocumentType(type)) return Status::Ok();
    *changed = true;
    return query::Apply(whole_, type, data);
  }
  if (type == kDeleteType) {
    *changed = true;
    top_.reset();
    top_text_.reset();
    return Status::Ok();
  }
  if (type != kPutType && type != kPatchType) return Status::Ok();
  const std::string what = std::string(type) + " data";
  TT_ASSIGN_OR_RETURN(std::optional<std::string_view> text, FindMember(data, *member_, what));
  if (type == kPatchType && !text) return Status::Ok();  // a $patch that leaves the member alone
  *changed = true;
  if (!text || (type == kPatchType && *text == "null")) {
    // Absent from a $put, or removed by a $patch (RFC 7386: null removes the member).
    top_.reset();
    top_text_.reset();
    return Status::Ok();
  }
  if (inner_.empty() && IsVerbatimText(*text)) {
    // Replaces the member whole (a $patch with a non-object value does too): no parse.
    top_.reset();
    top_text_ = std::string(*text);
    return Status::Ok();
  }
  TT_ASSIGN_OR_RETURN(Json value, ParseStored(*text, what));
  if (type == kPatchType && value.is_object()) {
    // A merge; a member held as text is a string or a literal, which the merge replaces.
    Json target = top_ ? std::move(*top_) : Json();
    target.merge_patch(value);
    value = std::move(target);
  }
  top_ = std::move(value);
  top_text_.reset();
  return Status::Ok();
}

std::optional<Json> PointerTracker::Value() const {
  if (!member_) return whole_.exists ? std::optional<Json>(whole_.state) : std::nullopt;
  if (top_text_) {
    Json v = Json::parse(*top_text_, nullptr, /*allow_exceptions=*/false);  // checked as stored
    return v.is_discarded() ? std::nullopt : std::optional<Json>(std::move(v));
  }
  if (!top_) return std::nullopt;
  if (inner_.empty()) return top_;
  return ValueAtPointer(*top_, inner_);
}

std::optional<std::string> PointerTracker::ValueText() const {
  if (top_text_) return top_text_;
  std::optional<Json> v = Value();
  if (!v) return std::nullopt;
  return v->dump();
}
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

EntityState ToState(std::string_view stream, const Document& doc, std::optional<EventPoint> event) {
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
    if (!s.ok())
      return s.WithPrefix("stream '" + std::string(stream) + "' revision " +
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
                                   "tokens, with '~0' for '~' and '~1' for '/'): " +
                                   e.what());
  }
}

Result<std::string> DiffStates(const EntityState& from, const EntityState& to) {
  TT_ASSIGN_OR_RETURN(Json a, ParseStored(from.state, "state"));
  TT_ASSIGN_OR_RETURN(Json b, ParseStored(to.state, "state"));
  return Json::diff(a, b).dump();
}

}  // namespace timetrail::query
