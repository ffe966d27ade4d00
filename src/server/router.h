// The API's route table: one row per endpoint (method, path pattern, the access it needs,
// where the server runs it, and its handler), and the lookup that turns a request target into a
// row and its path parameters.
#ifndef TIMETRAIL_SERVER_ROUTER_H_
#define TIMETRAIL_SERVER_ROUTER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "server/api_message.h"
#include "timetrail/status.h"

namespace timetrail::server {

class RequestContext;

// Who may call an endpoint (docs/http-api.md, "Authentication"). The dispatcher checks it
// before the handler runs, except kReadAcrossStreams, whose stream prefix is a query parameter
// that the handler checks once it has parsed it (RequestContext::DenyAcrossStreams), so that a
// malformed parameter is still answered 400 first.
enum class Access : std::uint8_t {
  kOpen,               // anyone, without a token: the request is not even authenticated (probes)
  kAuthenticated,      // any caller the server accepts, whatever its scopes
  kRead,               // the read scope
  kAppend,             // the append scope
  kAdmin,              // the admin scope
  kReadStream,         // the read scope, and the {stream} parameter within the token's prefixes
  kAppendStream,       // the append scope, and {stream} within the token's prefixes
  kAdminStream,        // the admin scope, and {stream} within the token's prefixes
  kReadAcrossStreams,  // the read scope and a stream_prefix within the token's prefixes
  kFullAdmin,          // the admin scope without stream prefixes (it reaches every stream)
};

// Serves one request that matched a route. May block unless the route is quick.
using RouteHandler = std::function<ApiResponse(RequestContext&)>;

// Completes a request with its answer. Called exactly once, on any thread; it must be quick
// and must not wait on the store (it may run on a store thread).
using Respond = std::function<void(ApiResponse)>;

// Serves one request without ever waiting: it checks the request and starts the work (an
// append: EventStore::TransactAsync), and "respond" receives the answer when the work is done,
// possibly before the handler returns. The RequestContext, and the request it refers to, are
// valid only until the handler returns, so the work must own what it needs.
using AsyncRouteHandler = std::function<void(RequestContext&, Respond respond)>;

// Where the server runs a route's handler (Api::Placement).
enum class Runs : std::uint8_t {
  // On a worker thread: the handler may block (waits, reads whose cost grows with the answer).
  kOnWorker,
  // On the I/O thread that read the request: cheap and never waits (one entity's state), so a
  // hand-off to a worker and back would cost more than the answer.
  kQuick,
  // Started on the I/O thread, answered from a completion (an AsyncRouteHandler): appends,
  // whose wait for the fsync needs no thread.
  kAsync,
};

// One endpoint. Intentionally copyable.
struct Route {
  std::string method;  // "GET", "POST", "DELETE"
  // Literal segments and "{name}" parameters, e.g. "/v1/streams/{stream}/info". A parameter
  // matches exactly one segment, percent-decoded after the path is split, so "%2F" stays inside
  // its segment.
  std::string pattern;
  Access access = Access::kRead;
  // kQuick rows are answered on an I/O thread unless the request waits for a min_position or
  // has an empty parameter; kAsync rows have an AsyncRouteHandler.
  Runs runs = Runs::kOnWorker;
  std::variant<RouteHandler, AsyncRouteHandler> handler;
};

// Short names for the table's "runs" column.
inline constexpr Runs kOnWorker = Runs::kOnWorker;
inline constexpr Runs kQuick = Runs::kQuick;
inline constexpr Runs kAsync = Runs::kAsync;

using Query = std::map<std::string, std::string, std::less<>>;

// A request target split the way every route reads it: percent-decoded path segments (split
// before decoding, so that a "%2F" inside a stream name stays inside its segment; a trailing
// slash ignored) and the decoded query parameters ("+" is a space there).
struct Target {
  std::vector<std::string> segments;
  Query query;
};
Result<Target> ParseTarget(std::string_view target);

// A route's parameters by name, in pattern order. Intentionally copyable.
using PathParams = std::vector<std::pair<std::string, std::string>>;

class RouteTable {
 public:
  // What Find() made of a path and method.
  struct Lookup {
    const Route* route = nullptr;  // the route for the method; null: see the fields below
    PathParams params;             // when "route" is set
    // The methods of the routes that match the path, in table order: empty for an unknown
    // path (404), else the Allow header of a 405.
    std::vector<std::string> allowed;
    // Every route that matches the path is Access::kOpen: the request needs no token.
    bool open = false;
  };

  // Adds a row after those already there. REQUIRES: a well-formed pattern (starts with '/';
  // "{name}" fills a whole segment); an AsyncRouteHandler exactly when the row runs kAsync.
  void Add(Route route);
  void Add(std::vector<Route> routes);

  Lookup Find(std::string_view method, const std::vector<std::string>& segments) const;

 private:
  struct Segment {
    bool is_param = false;
    std::string text;  // the literal, or the parameter's name
  };
  struct Row {
    Route route;
    std::vector<Segment> segments;
  };
  static bool Matches(const Row& row, const std::vector<std::string>& segments);

  std::vector<Row> rows_;
};

}  // namespace timetrail::server

#endif  // TIMETRAIL_SERVER_ROUTER_H_
