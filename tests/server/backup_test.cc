// `timetrail backup` and `timetrail restore`, run as the real binary over a data directory a
// real server wrote: refused while the server holds the directory, then a copy that opens,
// holds every event byte for byte and verifies; nothing is ever overwritten.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "server/server_harness.h"
#include "support/temp_dir.h"
#include "timetrail/store.h"

namespace timetrail::testing {
namespace {

std::vector<RecordedEvent> AllEvents(const std::string& dir) {
  Options options;
  options.create_if_missing = false;
  Result<std::unique_ptr<EventStore>> store = EventStore::Open(options, dir);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) return {};
  Result<VerifyReport> report = (*store)->Verify(VerifyOptions{});
  EXPECT_TRUE(report.ok() && report->ok) << dir;
  ReadLogOptions ro;
  ro.max_count = 100000;
  Result<LogPage> page = (*store)->ReadLog(ro);
  EXPECT_TRUE(page.ok());
  return page.ok() ? page->events : std::vector<RecordedEvent>{};
}

TEST(BackupTest, BackupOfAStoppedServerRestoresEveryEventAndVerifies) {
  TempDir dir;
  std::string data = dir.Sub("data");
  std::string backup = dir.Sub("backup");
  std::string restored = dir.Sub("restored");
  {
    ServerProcess server(data);
    ASSERT_TRUE(server.started());
    HttpClient client(server.port());
    for (int i = 0; i < 60; ++i) {
      HttpResult r = client.Post("/v1/streams/s-" + std::to_string(i % 4),
                                 R"({"events":[{"type":"e","data":{"i":)" + std::to_string(i) +
                                     R"(}},{"type":"$put","data":{"doc":)" + std::to_string(i) +
                                     "}}]}");
      ASSERT_EQ(r.status, 201) << r.body;
    }
    // The running server holds the directory: refused with the reason, nothing created.
    auto [code, out] = RunServeBinary({"backup", "--data", data, "--to", backup});
    EXPECT_EQ(code, 5) << out;
    EXPECT_NE(out.find("stop the server"), std::string::npos) << out;
    EXPECT_FALSE(std::filesystem::exists(backup));
    EXPECT_EQ(server.Stop(SIGTERM), 0);
  }
  auto [code, out] = RunServeBinary({"backup", "--data", data, "--to", backup});
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("last position 120"), std::string::npos) << out;

  // An existing, non-empty destination is never overwritten.
  auto [again, again_out] = RunServeBinary({"backup", "--data", data, "--to", backup});
  EXPECT_EQ(again, 2) << again_out;
  EXPECT_NE(again_out.find("already exists"), std::string::npos) << again_out;

  auto [rcode, rout] = RunServeBinary({"restore", "--from", backup, "--data", restored});
  ASSERT_EQ(rcode, 0) << rout;

  std::vector<RecordedEvent> original = AllEvents(data);
  std::vector<RecordedEvent> copy = AllEvents(restored);
  ASSERT_EQ(original.size(), 120u);
  ASSERT_EQ(copy.size(), original.size());
  for (std::size_t i = 0; i < original.size(); ++i) {
    EXPECT_EQ(copy[i].position, original[i].position);
    EXPECT_EQ(copy[i].id, original[i].id);
    EXPECT_EQ(copy[i].stream, original[i].stream);
    EXPECT_EQ(copy[i].data, original[i].data);
    EXPECT_EQ(copy[i].HashHex(), original[i].HashHex());
  }

  // The restored directory serves like the original, and takes new events after the old ones.
  ServerProcess server(restored);
  ASSERT_TRUE(server.started());
  HttpClient client(server.port());
  HttpResult r = client.Post("/v1/streams/s-0", R"({"events":[{"type":"after"}]})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.json()["position"], 121) << r.body;
}

// An online backup through the running server while writers keep appending: the copy holds
// every event acknowledged before the command started, byte for byte as the original holds
// them, verifies, and the action is recorded in $audit.
TEST(BackupTest, OnlineBackupHoldsEveryAcknowledgedEventWhileWritersGoOn) {
  TempDir dir;
  std::string data = dir.Sub("data");
  std::string backups = dir.Sub("backups");
  std::string backup = backups + "/online";
  std::filesystem::create_directories(backups);
  {
    // Without --backup-dir a server writes no backup anywhere.
    ServerProcess closed(dir.Sub("other"));
    ASSERT_TRUE(closed.started());
    auto [off, why] = RunServeBinary({"backup", "--server", "http://127.0.0.1:" +
                                      std::to_string(closed.port()), "--to", "x"});
    EXPECT_EQ(off, 2) << why;
    EXPECT_NE(why.find("start it with --backup-dir"), std::string::npos) << why;
  }
  ServerProcess server(data, {"--backup-dir", backups});
  ASSERT_TRUE(server.started());
  std::string url = "http://127.0.0.1:" + std::to_string(server.port());
  std::atomic<std::uint64_t> acknowledged{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < 3; ++w) {
    writers.emplace_back([&, w] {
      HttpClient client(server.port());
      for (int i = 0; !stop; ++i) {
        HttpResult r = client.Post("/v1/streams/w-" + std::to_string(w),
                                   R"({"events":[{"type":"e","data":{"i":)" + std::to_string(i) +
                                       "}}]}");
        if (r.status != 201) break;
        acknowledged.fetch_add(1);
      }
    });
  }
  while (acknowledged.load() < 200) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::uint64_t before = acknowledged.load();
  auto [code, out] = RunServeBinary({"backup", "--server", url, "--to", "online"});
  std::uint64_t after = acknowledged.load();
  stop = true;
  for (auto& t : writers) t.join();
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("integrity chain verified"), std::string::npos) << out;

  // Bad destinations change nothing.
  auto [exists, o1] = RunServeBinary({"backup", "--server", url, "--to", "online"});
  EXPECT_EQ(exists, 2) << o1;
  EXPECT_NE(o1.find("already exists"), std::string::npos) << o1;
  for (std::string outside : {"../escape", "a/b", "..", "/tmp/x"}) {
    auto [refused, o2] = RunServeBinary({"backup", "--server", url, "--to", outside});
    EXPECT_EQ(refused, 2) << o2;
    EXPECT_NE(o2.find("must be a plain directory name"), std::string::npos) << o2;
  }
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("escape")));
  ASSERT_EQ(server.Stop(SIGTERM), 0);

  std::vector<RecordedEvent> original = AllEvents(data);
  std::vector<RecordedEvent> copy = AllEvents(backup);
  std::uint64_t in_copy = 0;
  for (const RecordedEvent& e : copy) in_copy += e.stream.starts_with("w-") ? 1 : 0;
  EXPECT_GE(in_copy, before);
  EXPECT_LE(copy.size(), original.size());
  for (std::size_t i = 0; i < copy.size() && i < original.size(); ++i) {
    EXPECT_EQ(copy[i].position, original[i].position);
    EXPECT_EQ(copy[i].id, original[i].id);
    EXPECT_EQ(copy[i].HashHex(), original[i].HashHex());
  }
  bool audited = false;
  for (const RecordedEvent& e : original) {
    audited = audited || (e.stream == "$audit" && e.type == "backup" &&
                          e.data.find(backup) != std::string::npos);
  }
  EXPECT_TRUE(audited);
  std::cerr << "acknowledged before the backup " << before << ", after " << after
            << ", in the copy " << in_copy << "\n";
}

TEST(BackupTest, MissingSourceIsAClearError) {
  TempDir dir;
  auto [code, out] =
      RunServeBinary({"backup", "--data", dir.Sub("nothing"), "--to", dir.Sub("b")});
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("no timetrail store"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("b")));
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("nothing")));
}

}  // namespace
}  // namespace timetrail::testing
