#include "server/ui.h"

#include <algorithm>
#include <string>

namespace timetrail::server {
namespace {

// Only the UI's own files may run or be fetched by its pages: no inline script, no other
// origin (the UI works offline), no framing.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'none'";

const UiAsset* FindAsset(std::string_view path) {
  auto assets = UiAssets();
  auto it = std::lower_bound(assets.begin(), assets.end(), path,
                             [](const UiAsset& a, std::string_view p) { return a.path < p; });
  return it != assets.end() && it->path == path ? &*it : nullptr;
}

// Whether an If-None-Match header names "etag" (a list, or "*").
bool Matches(std::string_view if_none_match, std::string_view etag) {
  if (if_none_match.empty()) return false;
  if (if_none_match == "*") return true;
  std::size_t at = 0;
  while (at < if_none_match.size()) {
    std::size_t comma = if_none_match.find(',', at);
    std::string_view item = if_none_match.substr(at, comma - at);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.starts_with("W/")) item.remove_prefix(2);
    if (item == etag) return true;
    if (comma == std::string_view::npos) break;
    at = comma + 1;
  }
  return false;
}

// Whether a path names a file (ends in an extension of the files a page loads) rather than one
// of the app's routes.
bool LooksLikeFile(std::string_view rel) {
  std::size_t dot = rel.rfind('.');
  if (dot == std::string_view::npos || rel.find('/', dot) != std::string_view::npos) return false;
  std::string_view ext = rel.substr(dot + 1);
  for (std::string_view known : {"html", "js", "mjs", "css", "svg", "png", "ico", "json", "map",
                                 "txt", "webmanifest", "woff", "woff2", "jpg", "jpeg", "gif"}) {
    if (ext == known) return true;
  }
  return false;
}

void AddCommonHeaders(ApiResponse* r) {
  r->headers.emplace_back("Content-Security-Policy", std::string(kContentSecurityPolicy));
  r->headers.emplace_back("X-Content-Type-Options", "nosniff");
  r->headers.emplace_back("Referrer-Policy", "no-referrer");
}

}  // namespace

bool IsUiPath(std::string_view path) { return path == "/ui" || path.starts_with("/ui/"); }

ApiResponse ServeUi(const ApiRequest& request) {
  std::string_view path = request.target;
  path = path.substr(0, path.find('?'));
  if (request.method != "GET") {
    ApiResponse r =
        ErrorResponse(405, "method_not_allowed", request.method + " is not allowed here; use GET");
    r.headers.emplace_back("Allow", "GET");
    return r;
  }
  if (path == "/ui") {
    // Relative links in the page resolve against /ui/, so send the browser there.
    ApiResponse r;
    r.status = 301;
    r.content_type = "text/plain; charset=utf-8";
    r.body = "moved to /ui/\n";
    r.headers.emplace_back("Location", "/ui/");
    return r;
  }
  std::string_view rel = path.substr(4);  // after "/ui/"
  if (rel.empty()) rel = "index.html";
  const UiAsset* asset = FindAsset(rel);
  if (asset == nullptr) {
    // A deep link into the app (a stream name may hold dots: /ui/stream/public.orders%2F42)
    // gets index.html, which reads its route from the location; a missing file is a plain 404.
    bool app_route = !LooksLikeFile(rel) && rel.find("..") == std::string_view::npos;
    if (app_route) asset = FindAsset("index.html");
  }
  if (asset == nullptr) {
    ApiResponse r = ErrorResponse(404, "not_found",
                                  "no file " + std::string(path) + " in the web UI; open /ui/");
    AddCommonHeaders(&r);
    return r;
  }
  ApiResponse r;
  // Files keep their names across versions, so browsers revalidate each time (a 304 is
  // cheap) rather than run a stale script against a newer server.
  r.headers.emplace_back("ETag", std::string(asset->etag));
  r.headers.emplace_back("Cache-Control", "no-cache");
  AddCommonHeaders(&r);
  if (Matches(request.if_none_match, asset->etag)) {
    r.status = 304;
    r.content_type = std::string(asset->content_type);
    return r;
  }
  r.status = 200;
  r.content_type = std::string(asset->content_type);
  r.body = std::string(asset->bytes);
  return r;
}

}  // namespace timetrail::server
