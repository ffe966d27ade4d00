// The web UI (docs/ui.md): the files under ui/ are compiled into the binary
// (cmake/embed_ui.cmake) and served at /ui/ without a token, since they hold no data; every
// call the UI makes goes to the API with the user's own token.
#ifndef TIMETRAIL_SERVER_UI_H_
#define TIMETRAIL_SERVER_UI_H_

#include <span>
#include <string_view>

#include "server/api_message.h"

namespace timetrail::server {

// One embedded file.
struct UiAsset {
  std::string_view path;          // below /ui/, e.g. "app.js"
  std::string_view content_type;  // e.g. "text/javascript; charset=utf-8"
  std::string_view etag;          // quoted, from the file's SHA-256
  std::string_view bytes;
};

// Every embedded file, sorted by path (generated).
std::span<const UiAsset> UiAssets();

// Whether a request path (without its query) belongs to the UI: "/ui" or below "/ui/".
bool IsUiPath(std::string_view path);

// The answer to a request for a UI path: the file, or index.html for a path that looks like
// one of the app's own routes (no extension), so that deep links work; 304 when the client's
// If-None-Match holds the file's ETag; 404 for a missing file, 405 for a method but GET.
ApiResponse ServeUi(const ApiRequest& request);

}  // namespace timetrail::server

#endif  // TIMETRAIL_SERVER_UI_H_
