// Small helpers shared by the store tests.
#ifndef TIMETRAIL_TESTS_SUPPORT_STORE_HELPERS_H_
#define TIMETRAIL_TESTS_SUPPORT_STORE_HELPERS_H_

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "timetrail/store.h"

namespace timetrail::testing {

// The database of the store when the suite runs against PostgreSQL: TIMETRAIL_TEST_STORE is
// "postgresql" (tests/CMakeLists.txt runs the contract suites so, under
// tests/support/with_postgres.sh, which sets TIMETRAIL_PG_URL). Null otherwise.
inline const char* TestStoreUrl() {
  const char* kind = std::getenv("TIMETRAIL_TEST_STORE");
  if (kind == nullptr || std::string(kind) != "postgresql") return nullptr;
  const char* url = std::getenv("TIMETRAIL_PG_URL");
  return url != nullptr && *url != '\0' ? url : nullptr;
}

// Where a test keeps the store it would keep in "dir": the directory, or, against PostgreSQL,
// that database with a schema named after "dir", so that reopening "dir" reopens the same store.
inline std::string StoreLocation(const std::string& dir, Options& options) {
  const char* url = TestStoreUrl();
  if (url == nullptr) return dir;
  char name[24];
  std::snprintf(name, sizeof name, "s%016zx", std::hash<std::string>{}(dir));
  options.postgres_schema = name;
  return url;
}

inline std::unique_ptr<EventStore> OpenOrDie(const std::string& dir, Options options = {}) {
  std::string location = StoreLocation(dir, options);
  auto store = EventStore::Open(options, location);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

inline ProposedEvent Event(std::string type, std::string data = "{}", std::string metadata = "") {
  ProposedEvent e;
  e.type = std::move(type);
  e.data = std::move(data);
  e.metadata = std::move(metadata);
  return e;
}

inline ProposedEvent EventWithId(std::string type, std::string data, const Uuid& id) {
  ProposedEvent e = Event(std::move(type), std::move(data));
  e.id = id;
  return e;
}

// Every event of the log, for comparing a store before and after an operation.
inline std::vector<std::string> DumpLog(const EventStore& store) {
  std::vector<std::string> out;
  ReadLogOptions o;
  o.max_count = SIZE_MAX;
  auto page = store.ReadLog(o);
  EXPECT_TRUE(page.ok()) << page.status().ToString();
  if (!page.ok()) return out;
  for (const auto& e : page->events) {
    out.push_back(e.stream + "@" + std::to_string(e.revision) + "#" + std::to_string(e.position) +
                  " " + e.type + " " + e.data + " " + e.HashHex());
  }
  return out;
}

}  // namespace timetrail::testing

#endif  // TIMETRAIL_TESTS_SUPPORT_STORE_HELPERS_H_
