#include "cli/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

namespace timetrail::cli {

std::string ProgressLine(std::string_view verb, std::uint64_t events, std::uint64_t total,
                         double seconds, bool done) {
  const double rate = seconds > 0 ? static_cast<double>(events) / seconds : 0;
  char line[256];
  if (done || total == 0) {
    std::snprintf(line, sizeof line, "%.*s %llu events, %.0f events/s, %.1f s%s",
                  static_cast<int>(verb.size()), verb.data(),
                  static_cast<unsigned long long>(events), rate, seconds, done ? ", done" : "");
    return line;
  }
  const std::uint64_t clamped = std::min(events, total);
  const double fraction = static_cast<double>(clamped) / static_cast<double>(total);
  constexpr int kBarWidth = 20;
  const int filled = static_cast<int>(fraction * kBarWidth);
  const std::string bar = std::string(static_cast<std::size_t>(filled), '#') +
                          std::string(static_cast<std::size_t>(kBarWidth - filled), '-');
  const double left = rate > 0 ? static_cast<double>(total - clamped) / rate : 0;
  std::snprintf(line, sizeof line,
                "%.*s %llu events of %llu [%s] %.0f%%, %.0f events/s, %.1f s, about %.0f s left",
                static_cast<int>(verb.size()), verb.data(), static_cast<unsigned long long>(events),
                static_cast<unsigned long long>(total), bar.c_str(), 100.0 * fraction, rate,
                seconds, left);
  return line;
}

Progress::Progress(std::string verb, bool force, std::uint64_t total)
    : verb_(std::move(verb)),
      total_(total),
      tty_(::isatty(STDERR_FILENO) == 1),
      enabled_(force || tty_) {}

void Progress::Update(std::uint64_t events) {
  if (!enabled_) return;
  auto now = Clock::now();
  if (now - last_ < (tty_ ? std::chrono::milliseconds(500) : std::chrono::milliseconds(2000))) {
    return;
  }
  last_ = now;
  Print(events, false);
}

void Progress::Finish(std::uint64_t events) {
  if (enabled_) Print(events, true);
}

void Progress::Print(std::uint64_t events, bool done) {
  std::string text = ProgressLine(
      verb_, events, total_, std::chrono::duration<double>(Clock::now() - start_).count(), done);
  // On a terminal, spaces cover what a longer line before it left behind.
  const std::size_t length = text.size();
  if (tty_ && length < printed_) text.append(printed_ - length, ' ');
  printed_ = length;
  std::cerr << (tty_ ? "\r" : "") << text << (tty_ && !done ? "" : "\n");
  std::cerr.flush();
}

}  // namespace timetrail::cli
