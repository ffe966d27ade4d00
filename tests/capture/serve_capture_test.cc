// `timetrail serve --capture URL` end to end against a real PostgreSQL 15: the changes arrive in
// the server's store, /v1/capture and /metrics report the capture, and a captured row is put
// back in the source through the API and through `timetrail revert --source`, the revert being
// captured in turn.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "server/server_harness.h"
#include "support/postgres_cluster.h"
#include "support/temp_dir.h"

namespace timetrail::testing {
namespace {

using nlohmann::json;

// Polls "target" until "done" holds for its JSON answer (bounded, so a broken capture fails).
json WaitFor(HttpClient& http, const std::string& target,
             const std::function<bool(const HttpResult&)>& done) {
  HttpResult r;
  for (int i = 0; i < 600; ++i) {
    r = http.Get(target);
    if (done(r)) return r.json();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "gave up waiting on " << target << ": " << r.status << " " << r.body;
  return json();
}

double Metric(const std::string& page, const std::string& name) {
  std::size_t at = page.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(page.substr(at + name.size() + 2));
}

TEST(ServeCaptureTest, CapturesRevertsInTheSourceAndReportsItsLag) {
  PostgresCluster pg;
  pg.Exec("CREATE TABLE orders (id int PRIMARY KEY, status text, total numeric)");
  TempDir dir;
  ServerProcess server(dir.Sub("store"), {"--capture", pg.Url(), "--capture-slot", "served"});
  ASSERT_TRUE(server.started());
  HttpClient http(server.port());

  pg.Exec("INSERT INTO orders VALUES (42, 'new', 10.5), (43, 'new', 7)");
  json order = WaitFor(http, "/v1/entities/public.orders%2F42",
                       [](const HttpResult& r) { return r.status == 200; });
  EXPECT_EQ(order["state"]["status"], "new");
  std::string before_refund = pg.Scalar("SELECT to_char(now() AT TIME ZONE 'UTC', "
                                        "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  pg.Exec("BEGIN; SELECT pg_logical_emit_message(true, 'timetrail', '{\"actor\": \"mallory\"}'); "
          "UPDATE orders SET status = 'refunded', total = 0 WHERE id = 42; COMMIT");
  WaitFor(http, "/v1/entities/public.orders%2F42", [](const HttpResult& r) {
    return r.status == 200 && r.json()["state"]["status"] == "refunded";
  });

  // Status and metrics of the running capture.
  json status = WaitFor(http, "/v1/capture", [](const HttpResult& r) {
    return r.status == 200 && r.json()["lag_bytes"] == 0;
  });
  EXPECT_EQ(status["slot"], "served");
  EXPECT_GE(status["transactions"].get<int>(), 2);
  // Every event in the store came from the capture: two inserts, an update, the table's schema.
  std::uint64_t head = http.Get("/healthz").json()["position"];
  EXPECT_EQ(head, 4u);
  EXPECT_EQ(status["changes"], head);
  EXPECT_EQ(status["lag_seconds"], 0.0);
  std::string metrics = http.Get("/metrics").body;
  EXPECT_EQ(Metric(metrics, "timetrail_capture_changes_total"), 4) << metrics;
  EXPECT_EQ(Metric(metrics, "timetrail_capture_lag_bytes"), 0) << metrics;
  EXPECT_GE(Metric(metrics, "timetrail_capture_lag_seconds"), 0) << metrics;
  EXPECT_GE(Metric(metrics, "timetrail_capture_transactions_total"), 2) << metrics;

  // Bad requests change nothing.
  EXPECT_EQ(http.Post("/v1/capture/revert", "{\"streams\":[\"public.orders/42\"]}").status, 400);
  HttpResult unknown = http.Post("/v1/capture/revert", "{\"stream\":\"public.orders/42\"}");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_NE(unknown.body.find("unknown field 'stream'"), std::string::npos) << unknown.body;
  HttpResult elsewhere = http.Post(
      "/v1/capture/revert", "{\"streams\":[\"public.orders/42\"],\"to\":\"" + before_refund +
                                "\",\"source\":\"postgresql://someone@db.example/other\"}");
  EXPECT_EQ(elsewhere.status, 400);
  EXPECT_NE(elsewhere.body.find("not the database this server captures"), std::string::npos);
  EXPECT_EQ(http.Get("/v1/capture/revert").status, 405);
  EXPECT_EQ(pg.Scalar("SELECT status FROM orders WHERE id = 42"), "refunded");

  // A dry run shows the SQL and changes nothing.
  HttpResult dry = http.Post("/v1/capture/revert",
                             "{\"streams\":[\"public.orders/42\"],\"to\":\"" + before_refund +
                                 "\",\"dry_run\":true}");
  ASSERT_EQ(dry.status, 200) << dry.body;
  EXPECT_EQ(dry.json()["dry_run"], true);
  EXPECT_NE(dry.body.find("INSERT INTO \\\"public\\\".\\\"orders\\\""), std::string::npos)
      << dry.body;
  EXPECT_EQ(pg.Scalar("SELECT status FROM orders WHERE id = 42"), "refunded");

  // Everything mallory did, undone through the API; the revert is captured like any change.
  HttpResult undo = http.Post("/v1/capture/revert",
                              "{\"table\":\"public.orders\",\"changes_by\":\"mallory\","
                              "\"actor\":\"alice\",\"reason\":\"refund by mistake\"}");
  ASSERT_EQ(undo.status, 200) << undo.body;
  EXPECT_EQ(undo.json()["rows_changed"], 1);
  EXPECT_EQ(pg.Scalar("SELECT status || ' ' || total FROM orders WHERE id = 42"), "new 10.5");
  json reverted = WaitFor(http, "/v1/streams/public.orders%2F42", [](const HttpResult& r) {
    return r.status == 200 && r.json()["events"].size() == 3;
  });
  json last_meta = reverted["events"][2]["metadata"];
  EXPECT_EQ(last_meta["actor"], "alice") << last_meta;
  EXPECT_EQ(last_meta["reason"], "refund by mistake") << last_meta;
  EXPECT_TRUE(last_meta.contains("revert")) << last_meta;

  // The CLI form: `timetrail revert STREAM --to T --source URL` against the server.
  pg.Exec("UPDATE orders SET status = 'lost' WHERE id = 43");
  WaitFor(http, "/v1/entities/public.orders%2F43", [](const HttpResult& r) {
    return r.status == 200 && r.json()["state"]["status"] == "lost";
  });
  std::string server_url = "http://127.0.0.1:" + std::to_string(server.port());
  auto [code, out] = RunServeBinary({"revert", "public.orders/43", "--to", before_refund,
                                     "--source", pg.Url(), "--server", server_url});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("reverted 1 row(s) in the source"), std::string::npos) << out;
  EXPECT_EQ(pg.Scalar("SELECT status FROM orders WHERE id = 43"), "new");
  auto [bad_code, bad_out] = RunServeBinary({"revert", "public.orders/43", "--to-revision", "0",
                                             "--source", pg.Url(), "--server", server_url});
  EXPECT_EQ(bad_code, 2) << bad_out;
  EXPECT_NE(bad_out.find("give --to TIME"), std::string::npos) << bad_out;

  EXPECT_EQ(server.Stop(SIGTERM), 0);
}

// Without --capture, the capture endpoints say so.
TEST(ServeCaptureTest, ServerWithoutCaptureAnswersNotFound) {
  TempDir dir;
  ServerProcess server(dir.Sub("store"));
  ASSERT_TRUE(server.started());
  HttpClient http(server.port());
  HttpResult status = http.Get("/v1/capture");
  EXPECT_EQ(status.status, 404);
  EXPECT_NE(status.body.find("serve --capture"), std::string::npos) << status.body;
  EXPECT_EQ(http.Post("/v1/capture/revert", "{\"streams\":[\"a/1\"],\"to\":\"2026-01-01\"}").status,
            404);
  EXPECT_EQ(http.Get("/metrics").body.find("timetrail_capture_"), std::string::npos);
}

}  // namespace
}  // namespace timetrail::testing
