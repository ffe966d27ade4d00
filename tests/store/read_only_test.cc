// Options::read_only: a store opened beside the process that holds its data directory reads
// what that writer made durable (table files and write-ahead log), refuses every write, and
// writes nothing into the directory.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <optional>
#include <string>

#include "support/store_helpers.h"
#include "support/temp_dir.h"
#include "timetrail/store.h"

namespace timetrail {
namespace {

using Json = nlohmann::json;
using namespace timetrail::testing;  // NOLINT: TempDir, OpenOrDie, Event, DumpLog

namespace fs = std::filesystem;

Options ReadOnly() {
  Options o;
  o.read_only = true;
  return o;
}

// Every entry under "dir" (recursively) with its size; directories have size 0.
std::map<std::string, std::uintmax_t> Listing(const std::string& dir) {
  std::map<std::string, std::uintmax_t> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string name = fs::relative(e.path(), dir).string();
    out[name] = e.is_regular_file() ? e.file_size() : 0;
  }
  return out;
}

// Expects that "now" has no file that "before" did not have, and that every file has the size
// it had, but for RocksDB's diagnostic log (the writer may add a line to it at any time). Files
// may have gone: the writer deletes obsolete ones in the background.
void ExpectNothingNewOrChanged(const std::map<std::string, std::uintmax_t>& before,
                               const std::map<std::string, std::uintmax_t>& now) {
  for (const auto& [name, size] : now) {
    auto it = before.find(name);
    if (it == before.end()) {
      ADD_FAILURE() << "new in the data directory: " << name;
    } else if (name != "LOG" && name != "LOG.old") {
      EXPECT_EQ(size, it->second) << name;
    }
  }
}

// Points TMPDIR at "dir" while it lives, so that the temporary directory of a read-only store
// can be watched.
class ScopedTmpDir {
 public:
  explicit ScopedTmpDir(const std::string& dir) {
    if (const char* old = std::getenv("TMPDIR")) old_ = old;
    fs::create_directories(dir);
    ::setenv("TMPDIR", dir.c_str(), 1);
  }
  ~ScopedTmpDir() {
    if (old_) {
      ::setenv("TMPDIR", old_->c_str(), 1);
    } else {
      ::unsetenv("TMPDIR");
    }
  }

 private:
  std::optional<std::string> old_;
};

void ExpectReadOnlyError(const Status& s, const std::string& what) {
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << what << ": " << s.ToString();
  EXPECT_NE(s.message().find("read-only"), std::string::npos) << what << ": " << s.ToString();
}

Transaction OneEvent(const std::string& stream) {
  Transaction tx;
  tx.appends.push_back(StreamAppend{stream, ExpectedRevision::Any(), {Event("$put", "{}")}});
  return tx;
}

TEST(ReadOnlyStoreTest, ReadsBesideAWriterAndRefusesEveryWrite) {
  TempDir dir;
  const std::string data = dir.Sub("data");
  auto writer = OpenOrDie(data);
  ASSERT_NE(writer, nullptr);
  auto put =
      writer->Append("orders/1", ExpectedRevision::NoStream(),
                     {Event("$put", R"({"status":"new","total":10})", R"({"actor":"ann"})")});
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  ASSERT_TRUE(writer->Append("orders/2", ExpectedRevision::Any(), {Event("Created", "1")}).ok());
  ASSERT_TRUE(writer->SetCheckpoint("capture", "0/16B3748").ok());
  // A backup flushes the writer's memory tables: what was written so far is in table files,
  // what follows only in the write-ahead log.
  ASSERT_TRUE(writer->Backup(dir.Sub("backup")).ok());
  auto patch = writer->Append("orders/1", ExpectedRevision::Exact(0),
                              {Event("$patch", R"({"status":"paid"})", R"({"actor":"bob"})")});
  ASSERT_TRUE(patch.ok()) << patch.status().ToString();
  ASSERT_TRUE(writer->Append("orders/3", ExpectedRevision::Any(), {Event("Created", "3")}).ok());
  const Position last = writer->LastPosition();
  ASSERT_EQ(last, 4u);

  ASSERT_TRUE(writer->WaitForBackgroundWork().ok());
  const std::map<std::string, std::uintmax_t> before = Listing(data);
  ScopedTmpDir tmp(dir.Sub("tmp"));
  {
    Result<std::unique_ptr<EventStore>> opened = EventStore::Open(ReadOnly(), data);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    EventStore& reader = **opened;
    EXPECT_TRUE(reader.IsReadOnly());
    EXPECT_FALSE(writer->IsReadOnly());
    // Its own files are in one new temporary directory, not in the data directory.
    int own = 0;
    for (const auto& e : fs::directory_iterator(dir.Sub("tmp"))) {
      EXPECT_TRUE(e.path().filename().string().starts_with("timetrail-reader-")) << e.path();
      ++own;
    }
    EXPECT_EQ(own, 1);

    // Everything the writer committed, including the events only in its write-ahead log.
    EXPECT_EQ(reader.LastPosition(), last);
    EXPECT_EQ(DumpLog(reader), DumpLog(*writer));
    EXPECT_EQ(reader.GetIntegrityHead().hash_hex, writer->GetIntegrityHead().hash_hex);
    ReadStreamOptions all;
    auto events = reader.ReadStream("orders/1", all);
    ASSERT_TRUE(events.ok()) << events.status().ToString();
    ASSERT_EQ(events->size(), 2u);
    EXPECT_EQ((*events)[1].type, "$patch");
    auto by_id = reader.GetEvent((*events)[1].id);
    ASSERT_TRUE(by_id.ok()) << by_id.status().ToString();
    EXPECT_EQ(by_id->position, patch->last_position);
    auto state = reader.GetEntity("orders/1", EntityQuery::Latest());
    ASSERT_TRUE(state.ok()) << state.status().ToString();
    EXPECT_EQ(Json::parse(state->state), Json::parse(R"({"status":"paid","total":10})"));
    auto before_patch = reader.GetEntity("orders/1", EntityQuery::AtRevision(0));
    ASSERT_TRUE(before_patch.ok());
    EXPECT_EQ(Json::parse(before_patch->state)["status"], "new");
    auto info = reader.GetStreamInfo("orders/3");
    ASSERT_TRUE(info.ok());
    EXPECT_TRUE(info->exists);
    EXPECT_EQ(info->last_position, last);
    ActivityQuery by_bob;
    by_bob.actor = "bob";
    auto activity = reader.QueryActivity(by_bob);
    ASSERT_TRUE(activity.ok()) << activity.status().ToString();
    ASSERT_EQ(activity->events.size(), 1u);
    EXPECT_EQ(activity->events[0].position, patch->last_position);
    ActivityQuery created;
    created.event_types = {"Created"};
    auto typed = reader.QueryActivity(created);
    ASSERT_TRUE(typed.ok()) << typed.status().ToString();
    EXPECT_EQ(typed->events.size(), 2u);
    auto checkpoint = reader.GetCheckpoint("capture");
    ASSERT_TRUE(checkpoint.ok());
    EXPECT_EQ(checkpoint->value_or(""), "0/16B3748");
    auto verified = reader.Verify(VerifyOptions{});
    ASSERT_TRUE(verified.ok()) << verified.status().ToString();
    EXPECT_TRUE(verified->ok) << verified->message;
    EXPECT_EQ(verified->events_checked, last);

    // Every write fails, saying why, and changes nothing.
    ExpectReadOnlyError(reader.Append("orders/9", ExpectedRevision::Any(), {Event("x")}).status(),
                        "Append");
    ExpectReadOnlyError(reader.Transact(OneEvent("orders/9")).status(), "Transact");
    std::promise<Result<Committed>> async;
    reader.TransactAsync(OneEvent("orders/9"), [&](Result<Committed> r) { async.set_value(r); });
    ExpectReadOnlyError(async.get_future().get().status(), "TransactAsync");
    std::vector<Transaction> many = {OneEvent("orders/9"), OneEvent("orders/10")};
    for (const Result<Committed>& r : reader.TransactMany(many, /*stop_at_first_failure=*/false)) {
      ExpectReadOnlyError(r.status(), "TransactMany");
    }
    ExpectReadOnlyError(
        reader.TransactWithCheckpoint(OneEvent("orders/9"), "capture", "0/FFFFFFF").status(),
        "TransactWithCheckpoint");
    std::promise<Result<Committed>> async_checkpoint;
    reader.TransactWithCheckpointAsync(OneEvent("orders/9"), "capture", "0/FFFFFFF", std::nullopt,
                                       [&](Result<Committed> r) { async_checkpoint.set_value(r); });
    ExpectReadOnlyError(async_checkpoint.get_future().get().status(),
                        "TransactWithCheckpointAsync");
    ExpectReadOnlyError(reader.SetCheckpoint("capture", "0/FFFFFFF"), "SetCheckpoint");
    RevertRequest revert;
    revert.stream = "orders/1";
    revert.target = EntityQuery::AtRevision(0);
    ExpectReadOnlyError(reader.Revert(revert).status(), "Revert");
    ExpectReadOnlyError(reader.Backup(dir.Sub("backup-2")).status(), "Backup");
    EXPECT_FALSE(fs::exists(dir.Sub("backup-2")));

    EXPECT_EQ(reader.LastPosition(), last);
    EXPECT_EQ(writer->LastPosition(), last);
    EXPECT_EQ(DumpLog(reader), DumpLog(*writer));
    EXPECT_EQ(reader.GetCheckpoint("capture")->value_or(""), "0/16B3748");
    ExpectNothingNewOrChanged(before, Listing(data));

    // What the writer commits later is seen after a refresh, not before.
    ASSERT_TRUE(writer->Append("orders/4", ExpectedRevision::Any(), {Event("Created", "4")}).ok());
    EXPECT_EQ(reader.LastPosition(), last);
    ASSERT_TRUE(reader.Refresh().ok());
    EXPECT_EQ(reader.LastPosition(), last + 1);
    EXPECT_EQ(DumpLog(reader), DumpLog(*writer));
    EXPECT_TRUE(reader.WaitForPosition(last + 1, std::chrono::milliseconds(0)).ok());
    EXPECT_TRUE(reader.GetStreamInfo("orders/4")->exists);
  }
  // Closed: its temporary directory is gone.
  EXPECT_TRUE(Listing(dir.Sub("tmp")).empty());
}

TEST(ReadOnlyStoreTest, TakesNoLockAndWritesNothing) {
  TempDir dir;
  const std::string data = dir.Sub("data");
  {
    auto writer = OpenOrDie(data);
    ASSERT_NE(writer, nullptr);
    ASSERT_TRUE(writer->Append("s", ExpectedRevision::Any(), {Event("e", "1")}).ok());
  }
  const std::map<std::string, std::uintmax_t> before = Listing(data);
  {
    auto reader = OpenOrDie(data, ReadOnly());
    ASSERT_NE(reader, nullptr);
    EXPECT_EQ(reader->LastPosition(), 1u);
    // A writer can open the directory while the reader has it open, and vice versa.
    auto writer = OpenOrDie(data);
    ASSERT_NE(writer, nullptr);
    auto second_reader = OpenOrDie(data, ReadOnly());
    ASSERT_NE(second_reader, nullptr);
    EXPECT_EQ(second_reader->LastPosition(), 1u);
  }
  // The reader alone (the writer above reopened the directory, so compare with that state).
  const std::map<std::string, std::uintmax_t> reopened = Listing(data);
  {
    auto reader = OpenOrDie(data, ReadOnly());
    ASSERT_NE(reader, nullptr);
    EXPECT_EQ(DumpLog(*reader).size(), 1u);
  }
  EXPECT_EQ(Listing(data), reopened);
  EXPECT_FALSE(before.empty());
}

TEST(ReadOnlyStoreTest, RemovesTheTemporaryDirectoriesOfKilledReaders) {
  TempDir dir;
  {
    auto writer = EventStore::Open(Options{}, dir.Sub("store"));
    ASSERT_TRUE(writer.ok()) << writer.status().ToString();
    ASSERT_TRUE((*writer)->Transact(OneEvent("a")).ok());
  }
  ScopedTmpDir tmp(dir.Sub("tmp"));
  // A process that has exited: its pid names no process any more.
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);
  const std::string killed =
      dir.Sub("tmp") + "/timetrail-reader-" + std::to_string(child) + "-abc123";
  const std::string running =
      dir.Sub("tmp") + "/timetrail-reader-" + std::to_string(::getppid()) + "-def456";
  const std::string unrelated = dir.Sub("tmp") + "/timetrail-readerish";
  for (const auto& d : {killed, running, unrelated}) {
    fs::create_directories(d);
    std::ofstream(d + "/LOG") << "x";
  }
  auto reader = EventStore::Open(ReadOnly(), dir.Sub("store"));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_FALSE(fs::exists(killed));
  EXPECT_TRUE(fs::exists(running));  // its process is alive
  EXPECT_TRUE(fs::exists(unrelated));
}

TEST(ReadOnlyStoreTest, NeedsAStore) {
  TempDir dir;
  // No directory: not created.
  auto missing = EventStore::Open(ReadOnly(), dir.Sub("none"));
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound) << missing.status().ToString();
  EXPECT_FALSE(fs::exists(dir.Sub("none")));
  // An empty directory: left empty.
  fs::create_directories(dir.Sub("empty"));
  auto empty = EventStore::Open(ReadOnly(), dir.Sub("empty"));
  EXPECT_EQ(empty.status().code(), StatusCode::kNotFound) << empty.status().ToString();
  EXPECT_TRUE(fs::is_empty(dir.Sub("empty")));
  // A bulk load writes.
  Options both = ReadOnly();
  both.bulk_load = true;
  EXPECT_EQ(EventStore::Open(both, dir.Sub("empty")).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace timetrail
