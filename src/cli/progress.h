// What long-running commands (import, export) report while they work: events done, the rate,
// and with a known total a bar, how far along and about how long the rest takes.
#ifndef TIMETRAIL_CLI_PROGRESS_H_
#define TIMETRAIL_CLI_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace timetrail::cli {

// One report: e.g. "imported 412000 events of 1000000 [########------------] 41%, 38012
// events/s, 10.8 s, about 15 s left" while it runs with a known total, "imported 1000000 events,
// 38500 events/s, 26.0 s, done" at the end. "total" 0: unknown.
std::string ProgressLine(std::string_view verb, std::uint64_t events, std::uint64_t total,
                         double seconds, bool done);

// Reports on stderr: rewritten in place on a terminal (twice a second), a line every few seconds
// otherwise (for logs of scripted runs with --progress, "force").
class Progress {
 public:
  Progress(std::string verb, bool force, std::uint64_t total = 0);
  void Update(std::uint64_t events);
  // For work whose size is learnt as it goes (projections learn where each one starts).
  void set_total(std::uint64_t total) { total_ = total; }
  void Finish(std::uint64_t events);

 private:
  using Clock = std::chrono::steady_clock;
  void Print(std::uint64_t events, bool done);

  std::string verb_;
  std::uint64_t total_;  // 0: unknown
  bool tty_;
  bool enabled_;
  std::size_t printed_ = 0;  // length of the last line on a terminal
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_ = start_;
};

}  // namespace timetrail::cli

#endif  // TIMETRAIL_CLI_PROGRESS_H_
