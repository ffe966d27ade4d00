#include "cli/ndjson_import.h"

#include <stdio.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <sstream>

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

// The event as the API's append takes it: {"type", "id", "data", "metadata", "valid_from"}.
std::string EventJson(const ProposedEvent& e) {
  std::string json = "{\"type\":" + JsonQuote(e.type);
  if (e.id) json += ",\"id\":" + JsonQuote(e.id->ToString());
  if (!e.data.empty()) json += ",\"data\":" + e.data;
  if (!e.metadata.empty()) json += ",\"metadata\":" + e.metadata;
  if (e.valid_from) json += ",\"valid_from\":" + JsonQuote(FormatTimestamp(*e.valid_from));
  return json + "}";
}

}  // namespace

Result<ImportEvent> ParseImportLine(std::size_t line, std::string_view text) {
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
  ProposedEvent& e = ev.event;
  e.type = type->str;
  if (const RawJson* id = v->Find("id"); id != nullptr && id->kind != RawJson::Kind::kNull) {
    Result<Uuid> uuid = id->kind == RawJson::Kind::kString
                            ? Uuid::Parse(id->str)
                            : Result<Uuid>(Status::InvalidArgument("must be a string"));
    if (!uuid.ok()) return Field(line, "\"id\" is not a UUID: " + uuid.status().message());
    e.id = *uuid;
  }
  // Data and metadata keep their exact bytes (numbers keep every digit).
  if (const RawJson* data = v->Find("data")) e.data = std::string(data->text);
  if (const RawJson* meta = v->Find("metadata");
      meta != nullptr && meta->kind != RawJson::Kind::kNull) {
    if (!meta->is_object()) return Field(line, "\"metadata\" must be a JSON object");
    e.metadata = std::string(meta->text);
  }
  if (const RawJson* vf = v->Find("valid_from");
      vf != nullptr && vf->kind != RawJson::Kind::kNull) {
    Result<Timestamp> t = vf->kind == RawJson::Kind::kString
                              ? ParseTimestamp(vf->str)
                              : Result<Timestamp>(Status::InvalidArgument("must be a string"));
    if (!t.ok()) return Field(line, "\"valid_from\": " + t.status().message());
    e.valid_from = *t;
  }
  for (const char* key : {"revision", "tx"}) {
    const RawJson* n = v->Find(key);
    if (n == nullptr || n->kind == RawJson::Kind::kNull) continue;
    if (!n->AsUint()) return Field(line, "\"" + std::string(key) + "\" must be a whole number");
    (std::string_view(key) == "tx" ? ev.tx : ev.revision) = *n->AsUint();
  }
  return ev;
}

bool IsBlankLine(std::string_view text) {
  return text.find_first_not_of(" \t\r") == std::string_view::npos;
}

Result<std::vector<ImportEvent>> ParseNdjson(std::string_view text) {
  std::vector<ImportEvent> events;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    std::string_view line =
        text.substr(pos, (nl == std::string_view::npos ? text.size() : nl) - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    if (IsBlankLine(line)) continue;
    Result<ImportEvent> ev = ParseImportLine(line_no, line);
    if (!ev.ok()) return ev.status();
    events.push_back(std::move(*ev));
  }
  return events;
}

std::size_t TransactionEnd(const std::vector<ImportEvent>& events, std::size_t begin) {
  std::size_t end = begin + 1;
  while (end < events.size() && SameTransaction(events[begin], events[end])) ++end;
  return end;
}

Transaction BuildTransaction(std::vector<ImportEvent> events, bool any_revision) {
  Transaction tx;
  for (ImportEvent& e : events) {
    auto append = std::find_if(tx.appends.begin(), tx.appends.end(),
                               [&](const StreamAppend& a) { return a.stream == e.stream; });
    if (append == tx.appends.end()) {
      StreamAppend fresh;
      fresh.stream = std::move(e.stream);
      if (!any_revision && e.revision) {
        // Keep revisions as they were: the stream must be exactly where the export had it.
        fresh.expected = *e.revision == 0 ? ExpectedRevision::NoStream()
                                          : ExpectedRevision::Exact(*e.revision - 1);
      }
      tx.appends.push_back(std::move(fresh));
      append = std::prev(tx.appends.end());
    }
    append->events.push_back(std::move(e.event));
  }
  return tx;
}

std::string TransactionJson(const Transaction& tx) {
  std::string body = "{\"appends\":[";
  for (std::size_t s = 0; s < tx.appends.size(); ++s) {
    const StreamAppend& a = tx.appends[s];
    std::string expected = a.expected.kind() == ExpectedRevision::Kind::kExact
                               ? std::to_string(a.expected.revision())
                               : JsonQuote(a.expected.ToString());
    body += (s ? ",{\"stream\":" : "{\"stream\":") + JsonQuote(a.stream) +
            ",\"expected_revision\":" + expected + ",\"events\":[";
    for (std::size_t i = 0; i < a.events.size(); ++i) {
      if (i > 0) body += ",";
      body += EventJson(a.events[i]);
    }
    body += "]}";
  }
  return body + "]}";
}

std::string TransactionBody(const std::vector<ImportEvent>& events, std::size_t begin,
                            std::size_t end, bool any_revision) {
  return TransactionJson(
      BuildTransaction(std::vector<ImportEvent>(events.begin() + static_cast<std::ptrdiff_t>(begin),
                                                events.begin() + static_cast<std::ptrdiff_t>(end)),
                       any_revision));
}

Result<std::unique_ptr<LineReader>> LineReader::Open(const std::string& path) {
  std::unique_ptr<LineReader> reader(new LineReader());
  reader->path_ = path;
  if (path == "-") {
    std::ostringstream s;
    s << std::cin.rdbuf();
    reader->memory_ = s.str();
    return reader;
  }
  reader->file_ = std::fopen(path.c_str(), "rb");
  if (reader->file_ == nullptr) return Status::NotFound("cannot read '" + path + "'");
  struct stat st {};
  if (::fstat(::fileno(reader->file_), &st) != 0 || !S_ISREG(st.st_mode)) {
    // A pipe (such as <(zcat backup.ndjson.gz)) can be read only once, like stdin.
    std::string text;
    char chunk[1 << 16];
    for (std::size_t n; (n = std::fread(chunk, 1, sizeof chunk, reader->file_)) > 0;) {
      text.append(chunk, n);
    }
    bool failed = std::ferror(reader->file_) != 0;
    std::fclose(reader->file_);
    reader->file_ = nullptr;
    if (failed) return Status::IOError("reading '" + path + "' failed");
    reader->memory_ = std::move(text);
  }
  return reader;
}

LineReader::~LineReader() {
  if (file_ != nullptr) std::fclose(file_);
  std::free(buffer_);
}

bool LineReader::Next(std::string_view* line) {
  if (file_ == nullptr) {
    if (memory_pos_ >= memory_.size()) return false;
    std::size_t nl = memory_.find('\n', memory_pos_);
    std::size_t end = nl == std::string::npos ? memory_.size() : nl;
    *line = std::string_view(memory_).substr(memory_pos_, end - memory_pos_);
    memory_pos_ = nl == std::string::npos ? memory_.size() : nl + 1;
    ++line_number_;
    return true;
  }
  ssize_t n = ::getline(&buffer_, &capacity_, file_);
  if (n < 0) {
    if (std::ferror(file_) != 0) status_ = Status::IOError("reading '" + path_ + "' failed");
    return false;
  }
  auto size = static_cast<std::size_t>(n);
  if (size > 0 && buffer_[size - 1] == '\n') --size;
  *line = std::string_view(buffer_, size);
  ++line_number_;
  return true;
}

Status LineReader::Rewind() {
  line_number_ = 0;
  memory_pos_ = 0;
  if (file_ != nullptr) {
    std::clearerr(file_);
    if (std::fseek(file_, 0, SEEK_SET) != 0) {
      return Status::IOError("cannot read '" + path_ + "' a second time (it must be a file)");
    }
  }
  return status_ = Status::Ok();
}

}  // namespace timetrail::cli
