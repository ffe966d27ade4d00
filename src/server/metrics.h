// The server's counters and their Prometheus text exposition (GET /metrics, docs/http-api.md
// "Operations"): the store's statistics, HTTP responses by status class and a latency
// histogram, connections and subscription events.
#ifndef TIMETRAIL_SERVER_METRICS_H_
#define TIMETRAIL_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "timetrail/consumer_group.h"
#include "timetrail/store.h"

namespace timetrail::server {

// Counters for /metrics. Thread-safe.
class Metrics {
 public:
  static constexpr std::array<double, 12> kBucketsSeconds = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};
  void Record(int status, double seconds);
  void EventsSent(std::uint64_t n) { sse_events_.fetch_add(n, std::memory_order_relaxed); }
  void Connection(int delta) { connections_.fetch_add(delta, std::memory_order_relaxed); }
  void Rejected() { rejected_connections_.fetch_add(1, std::memory_order_relaxed); }
  // A request was read (+1) or its answer written (-1): appends waiting for their fsync count.
  void InFlight(int delta) { in_flight_.fetch_add(delta, std::memory_order_relaxed); }
  // Prometheus text exposition.
  std::string Render(const StoreStats& stats, std::size_t subscribers, Position head) const;
  // The consumer groups' gauges, one series per group (label "group"); nothing without groups.
  static std::string RenderGroups(const std::vector<ConsumerGroupInfo>& groups, Position head);

 private:
  std::array<std::atomic<std::uint64_t>, 6> by_class_{};  // 1xx..5xx, index = status / 100
  std::array<std::atomic<std::uint64_t>, kBucketsSeconds.size()> buckets_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_micros_{0};
  std::atomic<std::uint64_t> sse_events_{0};
  std::atomic<std::int64_t> connections_{0};
  std::atomic<std::uint64_t> rejected_connections_{0};
  std::atomic<std::int64_t> in_flight_{0};
};

}  // namespace timetrail::server

#endif  // TIMETRAIL_SERVER_METRICS_H_
