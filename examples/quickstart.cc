// quickstart: the smallest complete timetrail program. It opens (or creates) a store, records
// that a friend moved, shows the stream and the integrity head, and verifies the chain.
//
//   quickstart [DATA_DIR]      (default ./timetrail-data)
#include <cstdlib>
#include <iostream>

#include "timetrail/store.h"

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : "./timetrail-data";
  if (dir == "--help" || dir == "-h") {
    std::cout << "usage: quickstart [DATA_DIR]\n"
                 "Appends two events to stream friend-1 in DATA_DIR (default ./timetrail-data),\n"
                 "prints the stream and verifies the integrity chain.\n";
    return 0;
  }
  auto store = timetrail::EventStore::Open(timetrail::Options{}, dir);
  if (!store.ok()) {
    std::cerr << "cannot open " << dir << ": " << store.status().ToString() << "\n";
    return 1;
  }

  timetrail::ProposedEvent met;
  met.type = "$put";
  met.data = R"({"name": "Rachel", "location": "New York"})";
  met.metadata = R"({"actor": "joey", "reason": "we met"})";
  timetrail::ProposedEvent moved;
  moved.type = "$patch";
  moved.data = R"({"location": "San Francisco"})";
  moved.metadata = R"({"actor": "rachel", "reason": "new job"})";

  // "any" so that running the example twice appends again instead of failing.
  auto committed = (*store)->Append("friend-1", timetrail::ExpectedRevision::Any(), {met, moved});
  if (!committed.ok()) {
    std::cerr << "append failed: " << committed.status().ToString() << "\n";
    return 1;
  }
  std::cout << "appended tx " << committed->tx << " at positions " << committed->first_position
            << ".." << committed->last_position << " (durable)\n";

  auto events = (*store)->ReadStream("friend-1", timetrail::ReadStreamOptions{});
  if (!events.ok()) {
    std::cerr << "read failed: " << events.status().ToString() << "\n";
    return 1;
  }
  for (const auto& e : *events) {
    std::cout << "  friend-1@" << e.revision << "  pos " << e.position << "  " << e.type << "  "
              << e.data << "  " << e.metadata << "  " << timetrail::FormatTimestamp(e.recorded_at)
              << "\n";
  }

  auto report = (*store)->Verify(timetrail::VerifyOptions{});
  if (!report.ok() || !report->ok) {
    std::cerr << "verify failed: "
              << (report.ok() ? report->message : report.status().ToString()) << "\n";
    return 1;
  }
  std::cout << "integrity chain verified: " << report->events_checked << " events, head "
            << report->head.position << " " << report->head.hash_hex << "\n";
  return 0;
}
