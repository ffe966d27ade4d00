// ServeUi in-process: the embedded table answers without any file on disk.
#include "server/ui.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace timetrail::server {
namespace {

ApiRequest Get(std::string target, std::string if_none_match = "") {
  ApiRequest r;
  r.method = "GET";
  r.target = std::move(target);
  r.if_none_match = std::move(if_none_match);
  return r;
}

std::string Header(const ApiResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

TEST(UiTest, TheTableIsSortedAndHoldsTheApp) {
  auto assets = UiAssets();
  ASSERT_FALSE(assets.empty());
  EXPECT_TRUE(std::is_sorted(assets.begin(), assets.end(),
                             [](const UiAsset& a, const UiAsset& b) { return a.path < b.path; }));
  for (const char* name : {"index.html", "app.js", "app.css"}) {
    EXPECT_TRUE(std::any_of(assets.begin(), assets.end(), [&](const UiAsset& a) {
      return a.path == name;
    })) << name;
  }
}

TEST(UiTest, ServesFilesWithTheirTypeAndRevalidates) {
  ApiResponse index = ServeUi(Get("/ui/"));
  EXPECT_EQ(index.status, 200);
  EXPECT_EQ(index.content_type, "text/html; charset=utf-8");
  EXPECT_NE(index.body.find("<script type=\"module\" src=\"/ui/app.js\">"), std::string::npos);
  EXPECT_EQ(Header(index, "Content-Security-Policy").rfind("default-src 'self'", 0), 0u);

  ApiResponse js = ServeUi(Get("/ui/app.js?v=1"));
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.content_type, "text/javascript; charset=utf-8");
  std::string etag = Header(js, "ETag");
  ASSERT_FALSE(etag.empty());
  EXPECT_EQ(ServeUi(Get("/ui/app.js", etag)).status, 304);
  EXPECT_EQ(ServeUi(Get("/ui/app.js", "\"other\", W/" + etag)).status, 304);
  EXPECT_EQ(ServeUi(Get("/ui/app.js", "\"other\"")).status, 200);
}

TEST(UiTest, DeepLinksGetTheAppAndMissingFilesA404) {
  ApiResponse deep = ServeUi(Get("/ui/stream/public.orders%2F42"));
  EXPECT_EQ(deep.status, 200);
  EXPECT_EQ(deep.body, ServeUi(Get("/ui/")).body);
  EXPECT_EQ(ServeUi(Get("/ui/missing.js")).status, 404);
  EXPECT_EQ(ServeUi(Get("/ui/../etc/passwd")).status, 404);
  EXPECT_EQ(ServeUi(Get("/ui")).status, 301);
  ApiRequest post = Get("/ui/");
  post.method = "POST";
  EXPECT_EQ(ServeUi(post).status, 405);
  EXPECT_TRUE(IsUiPath("/ui"));
  EXPECT_TRUE(IsUiPath("/ui/app.js"));
  EXPECT_FALSE(IsUiPath("/uix"));
  EXPECT_FALSE(IsUiPath("/v1/ui"));
}

}  // namespace
}  // namespace timetrail::server
