#include "server/metrics.h"

#include <cstdio>
#include <string_view>

namespace timetrail::server {

void Metrics::Record(int status, double seconds) {
  int cls = status / 100;
  if (cls >= 1 && cls <= 5)
    by_class_[static_cast<std::size_t>(cls)].fetch_add(1, std::memory_order_relaxed);
  for (std::size_t i = 0; i < kBucketsSeconds.size(); ++i) {
    if (seconds <= kBucketsSeconds[i]) buckets_[i].fetch_add(1, std::memory_order_relaxed);
  }
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<std::uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

std::string Metrics::Render(const StoreStats& st, std::size_t subscribers, Position head) const {
  std::string o;
  auto counter = [&o](std::string_view name, std::string_view help, std::uint64_t v) {
    o += "# HELP " + std::string(name) + " " + std::string(help) + "\n# TYPE " + std::string(name) +
         " counter\n" + std::string(name) + " " + std::to_string(v) + "\n";
  };
  auto gauge = [&o](std::string_view name, std::string_view help, std::int64_t v) {
    o += "# HELP " + std::string(name) + " " + std::string(help) + "\n# TYPE " + std::string(name) +
         " gauge\n" + std::string(name) + " " + std::to_string(v) + "\n";
  };
  counter("timetrail_appends_total", "Transactions committed since the server started.",
          st.transactions_committed);
  counter("timetrail_events_total", "Events committed since the server started.",
          st.events_committed);
  counter("timetrail_conflicts_total", "Appends rejected for a wrong expected revision.",
          st.conflicts);
  counter("timetrail_rejected_total", "Appends rejected as invalid, too large or duplicate.",
          st.rejected);
  counter("timetrail_idempotent_replays_total", "Appends answered as idempotent replays.",
          st.idempotent_replays);
  counter("timetrail_group_commits_total", "Durable writes (one fsync each).", st.group_commits);
  counter("timetrail_commit_latency_micros_total", "Queue and write time summed over transactions.",
          st.commit_latency_micros_total);
  gauge("timetrail_storage_bytes", "Approximate size of the live data files.",
        static_cast<std::int64_t>(st.disk_bytes));
  gauge("timetrail_head_position", "The last committed position.", static_cast<std::int64_t>(head));
  if (st.read_replica_lag_positions) {
    gauge("timetrail_replica_lag_positions",
          "Positions committed on the primary that the read replica has not replayed yet.",
          static_cast<std::int64_t>(*st.read_replica_lag_positions));
  }
  gauge("timetrail_subscribers", "Subscriptions currently waiting for live events.",
        static_cast<std::int64_t>(subscribers));
  gauge("timetrail_http_connections", "Open HTTP connections.",
        connections_.load(std::memory_order_relaxed));
  gauge("timetrail_http_requests_in_flight",
        "Requests read and not yet answered (appends waiting to be durable among them).",
        in_flight_.load(std::memory_order_relaxed));
  counter("timetrail_http_rejected_connections_total", "Connections refused over the limit.",
          rejected_connections_.load(std::memory_order_relaxed));
  counter("timetrail_sse_events_sent_total", "Events sent to subscribers.",
          sse_events_.load(std::memory_order_relaxed));
  o += "# HELP timetrail_http_responses_total HTTP responses by status class.\n"
       "# TYPE timetrail_http_responses_total counter\n";
  for (int c = 1; c <= 5; ++c) {
    o += "timetrail_http_responses_total{code=\"" + std::to_string(c) + "xx\"} " +
         std::to_string(by_class_[static_cast<std::size_t>(c)].load(std::memory_order_relaxed)) +
         "\n";
  }
  o += "# HELP timetrail_http_request_duration_seconds Time from a complete request to its reply.\n"
       "# TYPE timetrail_http_request_duration_seconds histogram\n";
  for (std::size_t i = 0; i < kBucketsSeconds.size(); ++i) {
    char le[32];
    std::snprintf(le, sizeof le, "%g", kBucketsSeconds[i]);
    o += "timetrail_http_request_duration_seconds_bucket{le=\"" + std::string(le) + "\"} " +
         std::to_string(buckets_[i].load(std::memory_order_relaxed)) + "\n";
  }
  std::uint64_t count = count_.load(std::memory_order_relaxed);
  o +=
      "timetrail_http_request_duration_seconds_bucket{le=\"+Inf\"} " + std::to_string(count) + "\n";
  char sum[64];
  std::snprintf(sum, sizeof sum, "%.6f",
                static_cast<double>(sum_micros_.load(std::memory_order_relaxed)) / 1e6);
  o += "timetrail_http_request_duration_seconds_sum " + std::string(sum) + "\n";
  o += "timetrail_http_request_duration_seconds_count " + std::to_string(count) + "\n";
  return o;
}

std::string Metrics::RenderGroups(const std::vector<ConsumerGroupInfo>& groups, Position head) {
  if (groups.empty()) return {};
  std::string o;
  // Group names are letters, digits, '.', '_' and '-': nothing to escape in a label.
  auto family = [&](std::string_view name, std::string_view type, std::string_view help,
                    auto value) {
    o += "# HELP " + std::string(name) + " " + std::string(help) + "\n# TYPE " + std::string(name) +
         " " + std::string(type) + "\n";
    for (const ConsumerGroupInfo& g : groups) {
      o += std::string(name) + "{group=\"" + g.name + "\"} " + std::to_string(value(g)) + "\n";
    }
  };
  family("timetrail_group_acked_through", "gauge",
         "Every matching event at or before this position is done (acked, skipped or parked).",
         [](const ConsumerGroupInfo& g) { return g.acked_through; });
  family("timetrail_group_lag_positions", "gauge",
         "Positions between the log's head and the group's acked_through (an upper bound of the "
         "events it has left: events of other streams count too).",
         [head](const ConsumerGroupInfo& g) {
           return head > g.acked_through ? head - g.acked_through : Position{0};
         });
  family("timetrail_group_in_flight", "gauge", "Events held by members under a lease.",
         [](const ConsumerGroupInfo& g) { return g.in_flight; });
  family("timetrail_group_awaiting_retry", "gauge",
         "Events that failed and wait to be delivered again.",
         [](const ConsumerGroupInfo& g) { return g.awaiting_retry; });
  family("timetrail_group_parked_total", "counter",
         "Events parked (in $parked/<group>) since the group was created.",
         [](const ConsumerGroupInfo& g) { return g.parked; });
  family("timetrail_group_members", "gauge", "Members that read since the server started.",
         [](const ConsumerGroupInfo& g) { return g.members.size(); });
  return o;
}

}  // namespace timetrail::server
