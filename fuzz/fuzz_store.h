// A real store for fuzz targets that drive the server: opened once per process in a fresh
// temporary directory (removed at exit), without fsync because fuzzing is about parsing, not
// durability. Targets are single-process, so one store per process is all they need.
#ifndef TIMETRAIL_FUZZ_FUZZ_STORE_H_
#define TIMETRAIL_FUZZ_FUZZ_STORE_H_

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "timetrail/store.h"

namespace timetrail::fuzz {

inline EventStore* FuzzStore() {
  // Never destroyed: the exit handler that removes the directory runs after static destructors
  // that were registered later, and must still find the name.
  static const std::string& dir = *[] {
    auto* pattern =
        new std::string(std::filesystem::temp_directory_path() / "timetrail-fuzz.XXXXXX");
    if (mkdtemp(pattern->data()) == nullptr) std::abort();
    std::atexit([] { std::filesystem::remove_all(dir); });
    return pattern;
  }();
  static std::unique_ptr<EventStore> store = [] {
    Options options;
    options.sync = false;
    auto opened = EventStore::Open(options, dir);
    if (!opened.ok()) {
      std::fprintf(stderr, "cannot open a store in %s: %s\n", dir.c_str(),
                   opened.status().ToString().c_str());
      std::abort();
    }
    return std::move(opened).value();
  }();
  return store.get();
}

}  // namespace timetrail::fuzz

#endif  // TIMETRAIL_FUZZ_FUZZ_STORE_H_
