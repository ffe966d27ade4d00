// Writing and reading events: appends, transactions, stream reads, the global log, events by
// id, subscriptions and named consumers (docs/http-api.md, "Writing", "Reading",
// "Subscriptions").
#include <string>

#include "json/json_writer.h"
#include "json/raw_json.h"
#include "server/routes.h"

namespace timetrail::server {
namespace {

using json::JsonWriter;
using json::RawJson;

// Reads an "events" array of a request body into proposed events. "field" prefixes errors.
Status ParseEvents(const RawJson* events, const std::string& field,
                   std::vector<ProposedEvent>* out) {
  if (events == nullptr) return Status::InvalidArgument(field + " is required");
  if (events->kind != RawJson::Kind::kArray) {
    return Status::InvalidArgument(field + " must be an array, got " +
                                   std::string(events->KindName()));
  }
  for (std::size_t i = 0; i < events->items.size(); ++i) {
    const RawJson& ev = events->items[i];
    std::string f = field + "[" + std::to_string(i) + "]";
    if (!ev.is_object()) return Status::InvalidArgument(f + " must be an object");
    ProposedEvent pe;
    for (const auto& [key, value] : ev.members) {
      if (key == "id") {
        if (value.kind != RawJson::Kind::kString) {
          return Status::InvalidArgument(f + ".id must be a UUID string");
        }
        Result<Uuid> id = Uuid::Parse(value.str);
        if (!id.ok()) return id.status().WithPrefix(f + ".id");
        pe.id = *id;
      } else if (key == "type") {
        if (value.kind != RawJson::Kind::kString) {
          return Status::InvalidArgument(f + ".type must be a string");
        }
        pe.type = value.str;
      } else if (key == "data") {
        // Stored exactly as sent: the raw text, never re-serialized.
        pe.data = std::string(value.text);
      } else if (key == "metadata") {
        if (!value.is_object() && value.kind != RawJson::Kind::kNull) {
          return Status::InvalidArgument(f + ".metadata must be an object");
        }
        if (value.is_object()) pe.metadata = std::string(value.text);
      } else if (key == "valid_from") {
        if (value.kind != RawJson::Kind::kString) {
          return Status::InvalidArgument(f + ".valid_from must be an RFC 3339 time string");
        }
        Result<Timestamp> t = ParseTimestamp(value.str);
        if (!t.ok()) return t.status().WithPrefix(f + ".valid_from");
        pe.valid_from = *t;
      } else {
        return Status::InvalidArgument(f + " has an unknown field '" + key +
                                       "'; allowed: id, type, data, metadata, valid_from");
      }
    }
    if (ev.Find("type") == nullptr) return Status::InvalidArgument(f + ".type is required");
    out->push_back(std::move(pe));
  }
  return Status::Ok();
}

std::string ConsumerJson(const std::string& name, Position position) {
  JsonWriter w;
  w.BeginObject().Key("name").String(name).Key("position").Uint(position).EndObject();
  return w.Take();
}

}  // namespace

namespace {

// The transaction of POST /v1/streams/{stream} into "*tx", or the answer refusing it.
std::optional<ApiResponse> ParseStreamAppend(RequestContext& rc, Transaction* tx) {
  const std::string& stream = rc.Param("stream");
  Result<RawJson> body = rc.BodyObject();
  if (!body.ok()) return rc.BodyError(body.status());
  for (const auto& [key, v] : body->members) {
    if (key != "expected_revision" && key != "events") {
      return ErrorResponse(Status::InvalidArgument("unknown field '" + key +
                                                   "'; allowed: expected_revision, events"));
    }
  }
  if (std::optional<ApiResponse> r = RefuseSystemStreamWrite(stream)) return *r;
  StreamAppend append;
  append.stream = stream;
  const RawJson* expected = body->Find("expected_revision");
  if (!rc.request().if_match.empty()) {
    if (expected != nullptr) {
      return ErrorResponse(Status::InvalidArgument(
          "send either an If-Match header or expected_revision in the body, not both"));
    }
    Result<std::uint64_t> rev = IfMatchRevision(rc.request().if_match);
    if (!rev.ok()) {
      return ErrorResponse(Status::InvalidArgument(
          "If-Match must be a stream revision in quotes, like \"3\" (the ETag of a write)"));
    }
    append.expected = ExpectedRevision::Exact(*rev);
  } else {
    Result<ExpectedRevision> e = ParseExpected(expected, "expected_revision");
    if (!e.ok()) return ErrorResponse(e.status());
    append.expected = *e;
  }
  Status s = ParseEvents(body->Find("events"), "events", &append.events);
  if (!s.ok()) return ErrorResponse(s);
  tx->appends.push_back(std::move(append));
  return std::nullopt;
}

// A transaction object ({"appends": [...]}) into "*tx", or the answer refusing it. "field"
// names the object in errors ("" for a whole request body).
std::optional<ApiResponse> ParseTransactionObject(RequestContext& rc, const RawJson& body,
                                                  const std::string& field, Transaction* tx) {
  const std::string in = field.empty() ? "" : field + ".";
  if (!body.is_object()) {
    return ErrorResponse(
        Status::InvalidArgument(field + " must be an object {\"appends\": [...]}"));
  }
  for (const auto& [key, v] : body.members) {
    if (key != "appends") {
      return ErrorResponse(
          Status::InvalidArgument(in + "unknown field '" + key + "'; allowed: appends"));
    }
  }
  const RawJson* appends = body.Find("appends");
  if (appends == nullptr || appends->kind != RawJson::Kind::kArray) {
    return ErrorResponse(Status::InvalidArgument(in + "appends must be an array of {stream, "
                                                      "expected_revision, events}"));
  }
  for (std::size_t i = 0; i < appends->items.size(); ++i) {
    const RawJson& a = appends->items[i];
    std::string f = in + "appends[" + std::to_string(i) + "]";
    if (!a.is_object()) return ErrorResponse(Status::InvalidArgument(f + " must be an object"));
    for (const auto& [key, v] : a.members) {
      if (key != "stream" && key != "expected_revision" && key != "events") {
        return ErrorResponse(Status::InvalidArgument(
            f + " has an unknown field '" + key + "'; allowed: stream, expected_revision, events"));
      }
    }
    StreamAppend sa;
    const RawJson* stream = a.Find("stream");
    if (stream == nullptr || stream->kind != RawJson::Kind::kString) {
      return ErrorResponse(Status::InvalidArgument(f + ".stream must be a string"));
    }
    sa.stream = stream->str;
    if (std::optional<ApiResponse> d = rc.Deny(kScopeAppend, sa.stream)) return *d;
    if (std::optional<ApiResponse> r = RefuseSystemStreamWrite(sa.stream)) return *r;
    Result<ExpectedRevision> e =
        ParseExpected(a.Find("expected_revision"), f + ".expected_revision");
    if (!e.ok()) return ErrorResponse(e.status());
    sa.expected = *e;
    Status s = ParseEvents(a.Find("events"), f + ".events", &sa.events);
    if (!s.ok()) return ErrorResponse(s);
    tx->appends.push_back(std::move(sa));
  }
  return std::nullopt;
}

// The transaction of POST /v1/transactions into "*tx", or the answer refusing it.
std::optional<ApiResponse> ParseTransaction(RequestContext& rc, Transaction* tx) {
  Result<RawJson> body = rc.BodyObject();
  if (!body.ok()) return rc.BodyError(body.status());
  return ParseTransactionObject(rc, *body, "", tx);
}

// Transactions per POST /v1/transactions/batch: enough for a bulk load to share fsyncs widely,
// few enough that one request does not hold a worker for long.
constexpr std::size_t kMaxBatchTransactions = 1000;

// Queues "tx" and answers once the store says it is durable (or why it was refused): 201, or
// 200 for an idempotent replay. "single": the answer of a one-stream append. Nothing waits:
// the answer is built on the store's thread, which is cheap next to the write it follows.
void CommitAndRespond(RequestContext& rc, Transaction tx, bool single, Respond respond) {
  rc.store().TransactAsync(
      std::move(tx), [single, respond = std::move(respond)](Result<Committed> c) {
        if (!c.ok()) return respond(ErrorResponse(c.status()));
        if (single) return respond(CommittedResponse(*c));
        respond(JsonResponse(c->idempotent_replay ? 200 : 201, CommittedJson(*c, false)));
      });
}

}  // namespace

void AppendToStream(RequestContext& rc, Respond respond) {
  Transaction tx;
  if (std::optional<ApiResponse> refused = ParseStreamAppend(rc, &tx)) {
    return respond(std::move(*refused));
  }
  CommitAndRespond(rc, std::move(tx), true, std::move(respond));
}

void Transact(RequestContext& rc, Respond respond) {
  Transaction tx;
  if (std::optional<ApiResponse> refused = ParseTransaction(rc, &tx)) {
    return respond(std::move(*refused));
  }
  CommitAndRespond(rc, std::move(tx), false, std::move(respond));
}

ApiResponse TransactBatch(RequestContext& rc) {
  Result<RawJson> body = rc.BodyObject();
  if (!body.ok()) return rc.BodyError(body.status());
  for (const auto& [key, v] : body->members) {
    if (key != "transactions") {
      return ErrorResponse(
          Status::InvalidArgument("unknown field '" + key + "'; allowed: transactions"));
    }
  }
  const RawJson* list = body->Find("transactions");
  if (list == nullptr || list->kind != RawJson::Kind::kArray || list->items.empty() ||
      list->items.size() > kMaxBatchTransactions) {
    return ErrorResponse(Status::InvalidArgument(
        "transactions must be an array of 1 to " + std::to_string(kMaxBatchTransactions) +
        " transaction objects ({\"appends\": [...]}, as POST /v1/transactions takes)"));
  }
  // Every transaction is checked before any is queued: a bad one refuses the whole batch.
  std::vector<Transaction> txs(list->items.size());
  for (std::size_t i = 0; i < txs.size(); ++i) {
    if (std::optional<ApiResponse> refused = ParseTransactionObject(
            rc, list->items[i], "transactions[" + std::to_string(i) + "]", &txs[i])) {
      return std::move(*refused);
    }
  }
  std::vector<Result<Committed>> results =
      rc.store().TransactMany(std::move(txs), /*stop_at_first_failure=*/true);
  JsonWriter w;
  w.BeginObject().Key("results").BeginArray();
  std::optional<std::size_t> failed;
  int failed_status = 200;
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (results[i].ok()) {
      w.BeginObject().Key("status").Uint(results[i]->idempotent_replay ? 200 : 201);
      w.Key("committed").Raw(CommittedJson(*results[i], false)).EndObject();
      continue;
    }
    ApiResponse error = ErrorResponse(results[i].status());
    if (!failed) {
      failed = i;
      failed_status = error.status;
    }
    w.BeginObject().Key("status").Uint(static_cast<std::uint64_t>(error.status));
    w.Key("error").Raw(error.body).EndObject();
  }
  w.EndArray();
  w.Key("failed").UintOrNull(failed ? std::optional<std::uint64_t>(*failed) : std::nullopt);
  w.EndObject();
  // A batch stored whole is 200; otherwise the first failure's status, so that a client that
  // reads only the status still sees it (the results say which transactions were stored).
  return JsonResponse(failed ? failed_status : 200, w.Take());
}

ApiResponse ReadStream(RequestContext& rc) {
  ReadStreamOptions o;
  if (const std::string* direction = rc.QueryParam("direction")) {
    if (*direction == "backward") {
      o.direction = Direction::kBackward;
    } else if (*direction != "forward") {
      return ErrorResponse(Status::InvalidArgument(
          "direction must be 'forward' or 'backward', got '" + *direction + "'"));
    }
  }
  if (rc.QueryParam("from") != nullptr) {
    Result<std::uint64_t> from = rc.UintParam("from");
    if (!from.ok()) return ErrorResponse(from.status());
    o.from_revision = *from;
  }
  Result<std::size_t> limit = rc.LimitParam();
  if (!limit.ok()) return ErrorResponse(limit.status());
  o.max_count = *limit + 1;  // one more tells whether there is a next page
  Result<std::vector<RecordedEvent>> events = rc.store().ReadStream(rc.Param("stream"), o);
  if (!events.ok()) return ErrorResponse(events.status());
  JsonWriter w;
  w.BeginObject().Key("events");
  WriteEvents(*events, *limit, &w);
  w.Key("next");
  if (events->size() > *limit) {
    w.Uint((*events)[*limit].revision);
  } else {
    w.Null();
  }
  w.EndObject();
  return JsonResponse(200, w.Take());
}

ApiResponse GetStreamInfo(RequestContext& rc) {
  const std::string& stream = rc.Param("stream");
  Result<StreamInfo> info = rc.store().GetStreamInfo(stream);
  if (!info.ok()) return ErrorResponse(info.status());
  JsonWriter w;
  w.BeginObject();
  w.Key("stream").String(stream);
  w.Key("exists").Bool(info->exists);
  w.Key("revision").UintOrNull(info->last_revision);
  w.Key("position").Uint(info->last_position);
  w.Key("deleted").Bool(info->deleted);
  w.EndObject();
  return JsonResponse(200, w.Take());
}

ApiResponse ReadLog(RequestContext& rc) {
  ReadLogOptions o;
  if (rc.QueryParam("from") != nullptr) {
    Result<std::uint64_t> from = rc.UintParam("from");
    if (!from.ok()) return ErrorResponse(from.status());
    o.from_position = *from == 0 ? 1 : *from;
  }
  Result<std::size_t> limit = rc.LimitParam();
  if (!limit.ok()) return ErrorResponse(limit.status());
  o.max_count = *limit;
  LogFilter filter = rc.FilterParams();
  if (std::optional<ApiResponse> d =
          rc.DenyAcrossStreams(filter.stream_prefix, &filter.skip_system_streams)) {
    return *d;
  }
  o.filter = filter;
  if (!o.filter.empty()) o.max_scan = 100000;
  Result<LogPage> page = rc.store().ReadLog(o);
  if (!page.ok()) return ErrorResponse(page.status());
  JsonWriter w;
  w.BeginObject().Key("events");
  WriteEvents(page->events, page->events.size(), &w);
  w.Key("next").Uint(page->next_position);
  w.Key("head").Uint(page->head_position);
  w.EndObject();
  return JsonResponse(200, w.Take());
}

ApiResponse GetEvent(RequestContext& rc) {
  Result<Uuid> id = Uuid::Parse(rc.Param("id"));
  if (!id.ok()) return ErrorResponse(id.status().WithPrefix("event id"));
  Result<RecordedEvent> e = rc.store().GetEvent(*id);
  if (!e.ok()) return ErrorResponse(e.status());
  if (std::optional<ApiResponse> d = rc.Deny(kScopeRead, e->stream)) return *d;
  return JsonResponse(200, EventJson(*e));
}

ApiResponse Subscribe(RequestContext& rc) {
  SubscribeSpec spec;
  LogFilter filter = rc.FilterParams();
  if (std::optional<ApiResponse> d =
          rc.DenyAcrossStreams(filter.stream_prefix, &filter.skip_system_streams)) {
    return *d;
  }
  spec.filter = filter;
  if (rc.QueryParam("from") != nullptr) {
    Result<std::uint64_t> from = rc.UintParam("from");
    if (!from.ok()) return ErrorResponse(from.status());
    spec.from = *from == 0 ? 1 : *from;
  }
  if (const std::string* consumer = rc.QueryParam("consumer")) {
    Result<std::optional<Position>> acked = rc.hub().GetConsumer(*consumer);
    if (!acked.ok()) return ErrorResponse(acked.status());
    if (*acked) spec.from = **acked + 1;
  }
  if (!rc.request().last_event_id.empty()) {
    Result<std::uint64_t> last = ParseUint(rc.request().last_event_id, "Last-Event-ID");
    if (!last.ok()) return ErrorResponse(last.status());
    spec.from = *last + 1;
  }
  ApiResponse r;
  r.content_type = "text/event-stream";
  r.subscribe = spec;
  return r;
}

ApiResponse AckConsumer(RequestContext& rc) {
  const std::string& name = rc.Param("name");
  Result<RawJson> body = rc.BodyObject();
  if (!body.ok()) return rc.BodyError(body.status());
  const RawJson* pos = body->Find("position");
  std::optional<std::uint64_t> p = pos == nullptr ? std::nullopt : pos->AsUint();
  if (!p) {
    return ErrorResponse(Status::InvalidArgument(
        "body must be {\"position\": N} with N the last position the consumer processed"));
  }
  Status s = rc.hub().AckConsumer(name, *p);
  if (!s.ok()) return ErrorResponse(s);
  return JsonResponse(200, ConsumerJson(name, *p));
}

ApiResponse GetConsumer(RequestContext& rc) {
  const std::string& name = rc.Param("name");
  Result<std::optional<Position>> acked = rc.hub().GetConsumer(name);
  if (!acked.ok()) return ErrorResponse(acked.status());
  if (!*acked) {
    return ErrorResponse(404, "not_found",
                         "consumer '" + name + "' has never acknowledged a position");
  }
  return JsonResponse(200, ConsumerJson(name, **acked));
}

}  // namespace timetrail::server
