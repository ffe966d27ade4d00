// crash_writer DATA_DIR THREADS: appends forever from several threads and prints one line per
// acknowledged (durable) transaction, so that crash_test can kill it at any moment and check
// that every acknowledged transaction survived. Line format:
//   ack <tx> <first_position> <last_position> <stream>:<first_revision>:<count> ...
#include <unistd.h>

#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "timetrail/store.h"

using namespace timetrail;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: crash_writer DATA_DIR THREADS\n");
    return 2;
  }
  Options options;
  options.snapshot_interval = 8;  // many snapshots, each in the write a kill may cut
  auto store = EventStore::Open(options, argv[1]);
  if (!store.ok()) {
    std::fprintf(stderr, "open: %s\n", store.status().ToString().c_str());
    return 1;
  }
  int threads = std::atoi(argv[2]);
  std::mutex out_mu;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::string own = "own/" + std::to_string(t);
      std::string shared = "shared/" + std::to_string(t % 2);
      for (std::uint64_t i = 0;; ++i) {
        // Alternate: a single event to the thread's own stream (conditional on its revision),
        // and a two-stream transaction of three events.
        auto info = (*store)->GetStreamInfo(own);
        if (!info.ok()) continue;
        Transaction tx;
        ExpectedRevision expected = info->exists ? ExpectedRevision::Exact(*info->last_revision)
                                                 : ExpectedRevision::NoStream();
        std::size_t n = i % 2 == 0 ? 1 : 3;
        // Document events, so that the temporal index (snapshots, change signatures) is
        // maintained in the same writes the kill interrupts.
        std::string data = R"({"tx_events":)" + std::to_string(n) + R"(,"k)" +
                           std::to_string(i % 3) + R"(":)" + std::to_string(i % 5) + "}";
        ProposedEvent e;
        e.type = i % 7 == 6 ? "$put" : "$patch";
        e.data = data;
        // Every third one by an actor, so that the actor index is in the writes too.
        if (i % 3 == 0) e.metadata = R"({"actor":"writer-)" + std::to_string(t % 3) + R"("})";
        tx.appends.push_back({own, expected, {e}});
        if (n == 3) tx.appends.push_back({shared, ExpectedRevision::Any(), {e, e}});
        auto r = (*store)->Transact(tx);
        if (!r.ok()) continue;
        std::string line = "ack " + std::to_string(r->tx) + " " +
                           std::to_string(r->first_position) + " " +
                           std::to_string(r->last_position);
        for (const auto& s : r->streams) {
          line += " " + s.stream + ":" + std::to_string(s.first_revision) + ":" +
                  std::to_string(s.last_revision - s.first_revision + 1);
        }
        line += "\n";
        std::lock_guard<std::mutex> l(out_mu);
        if (write(1, line.data(), line.size()) < 0) return;
      }
    });
  }
  for (auto& w : workers) w.join();
}
