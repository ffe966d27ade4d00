#include "server/router.h"

#include <algorithm>
#include <cassert>

namespace timetrail::server {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes "in"; "+" means a space only in query strings.
Result<std::string> PercentDecode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size() || HexValue(in[i + 1]) < 0 || HexValue(in[i + 2]) < 0) {
        return Status::InvalidArgument("malformed percent-encoding in '" + std::string(in) + "'");
      }
      out.push_back(static_cast<char>(HexValue(in[i + 1]) * 16 + HexValue(in[i + 2])));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

Result<Target> ParseTarget(std::string_view target) {
  Target t;
  std::size_t qm = target.find('?');
  if (qm != std::string_view::npos) {
    std::string_view q = target.substr(qm + 1);
    while (!q.empty()) {
      std::size_t amp = q.find('&');
      std::string_view pair = q.substr(0, amp);
      if (!pair.empty()) {
        std::size_t eq = pair.find('=');
        TT_ASSIGN_OR_RETURN(std::string k, PercentDecode(pair.substr(0, eq), true));
        std::string v;
        if (eq != std::string_view::npos) {
          TT_ASSIGN_OR_RETURN(v, PercentDecode(pair.substr(eq + 1), true));
        }
        t.query[std::move(k)] = std::move(v);
      }
      if (amp == std::string_view::npos) break;
      q.remove_prefix(amp + 1);
    }
  }
  std::string_view rest = target.substr(0, qm);
  if (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  while (true) {
    std::size_t slash = rest.find('/');
    TT_ASSIGN_OR_RETURN(std::string seg, PercentDecode(rest.substr(0, slash), false));
    t.segments.push_back(std::move(seg));
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  if (!t.segments.empty() && t.segments.back().empty() && t.segments.size() > 1) {
    t.segments.pop_back();
  }
  return t;
}

void RouteTable::Add(Route route) {
  // A row whose column and handler disagree is a programming error: an async handler run as a
  // blocking one (or the reverse) would never answer.
  assert((route.runs == Runs::kAsync) == std::holds_alternative<AsyncRouteHandler>(route.handler));
  Row row;
  std::string_view p = route.pattern;
  if (!p.empty() && p.front() == '/') p.remove_prefix(1);
  while (true) {
    std::size_t slash = p.find('/');
    std::string_view seg = p.substr(0, slash);
    Segment s;
    s.is_param = seg.size() >= 2 && seg.front() == '{' && seg.back() == '}';
    s.text = std::string(s.is_param ? seg.substr(1, seg.size() - 2) : seg);
    row.segments.push_back(std::move(s));
    if (slash == std::string_view::npos) break;
    p.remove_prefix(slash + 1);
  }
  row.route = std::move(route);
  rows_.push_back(std::move(row));
}

void RouteTable::Add(std::vector<Route> routes) {
  for (Route& r : routes) Add(std::move(r));
}

bool RouteTable::Matches(const Row& row, const std::vector<std::string>& segments) {
  if (row.segments.size() != segments.size()) return false;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (!row.segments[i].is_param && row.segments[i].text != segments[i]) return false;
  }
  return true;
}

RouteTable::Lookup RouteTable::Find(std::string_view method,
                                    const std::vector<std::string>& segments) const {
  Lookup out;
  bool all_open = true;
  for (const Row& row : rows_) {
    if (!Matches(row, segments)) continue;
    all_open = all_open && row.route.access == Access::kOpen;
    if (std::find(out.allowed.begin(), out.allowed.end(), row.route.method) == out.allowed.end()) {
      out.allowed.push_back(row.route.method);
    }
    if (out.route == nullptr && row.route.method == method) {
      out.route = &row.route;
      for (std::size_t i = 0; i < segments.size(); ++i) {
        if (row.segments[i].is_param) out.params.emplace_back(row.segments[i].text, segments[i]);
      }
    }
  }
  out.open = !out.allowed.empty() && all_open;
  return out;
}

}  // namespace timetrail::server
