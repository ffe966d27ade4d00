// `timetrail import` into a data directory commits many transactions per fsync. These tests hold
// it to its guarantee: what is stored is always exactly the first transactions of the file, in
// order, whether the import is killed part-way or stops at a line that fails, and running it
// again completes the rest without writing anything twice.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "cli/cli_harness.h"
#include "support/temp_dir.h"
#include "timetrail/store.h"

namespace timetrail {
namespace {

using testing::Child;
using testing::Cli;
using testing::Describe;
using testing::Outcome;
using testing::TempDir;

// One line of a generated import file, and what the store must hold for it.
struct Line {
  std::string stream;
  std::string id;
  std::string data;
  std::string json;
  std::size_t first_of_tx = 0;  // index of the first line of its transaction
};

std::string IdOf(std::size_t i) {
  char id[40];
  std::snprintf(id, sizeof id, "00000000-0000-7000-8000-%012zx", i + 1);
  return id;
}

// "count" lines over 500 streams. Streams "rev/N" carry their revisions (so the import checks
// them); streams "any/N" do not. Every 50th line starts a transaction of three lines (two
// events of one stream, then one of another), the others are transactions of one line. Events
// of one transaction are grouped by stream in file order, so positions follow the lines.
std::vector<Line> MakeLines(std::size_t count) {
  std::vector<Line> lines;
  std::map<std::string, std::uint64_t> next_revision;
  std::uint64_t tx = 0;
  for (std::size_t i = 0; i < count; ++i) {
    Line l;
    bool tx_start = i % 50 == 0 && i + 3 <= count;
    bool in_group = i % 50 < 3 && (i - i % 50) + 3 <= count;
    if (tx_start || !in_group) ++tx;
    l.first_of_tx = in_group ? i - i % 50 : i;
    std::size_t stream_no = in_group ? (i % 50 < 2 ? i / 50 : i / 50 + 7) : i;
    l.stream = (stream_no % 2 == 0 ? "rev/" : "any/") + std::to_string(stream_no % 500);
    l.id = IdOf(i);
    l.data = "{\"i\":" + std::to_string(i) + ",\"name\":\"line " + std::to_string(i) +
             "\",\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}";
    l.json = "{\"stream\":\"" + l.stream + "\"";
    std::uint64_t revision = next_revision[l.stream]++;
    if (l.stream.starts_with("rev/")) l.json += ",\"revision\":" + std::to_string(revision);
    l.json += ",\"id\":\"" + l.id + "\",\"type\":\"$put\",\"data\":" + l.data +
              ",\"metadata\":{\"actor\":\"importer\"}";
    if (in_group) l.json += ",\"tx\":" + std::to_string(tx);
    l.json += "}";
    lines.push_back(std::move(l));
  }
  return lines;
}

std::string WriteFile(const std::string& path, const std::vector<Line>& lines) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (const Line& l : lines) out << l.json << "\n";
  return path;
}

// The whole log of the data directory "dir".
std::vector<RecordedEvent> ReadLog(const std::string& dir) {
  auto store = EventStore::Open(Options{}, dir);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) return {};
  std::vector<RecordedEvent> events;
  ReadLogOptions o;
  while (true) {
    auto page = (*store)->ReadLog(o);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok() || page->events.empty()) break;
    for (RecordedEvent& e : page->events) events.push_back(std::move(e));
    o.from_position = page->next_position;
  }
  return events;
}

// Checks that "log" is exactly the first log.size() lines, in order, ending at a transaction
// boundary.
void ExpectPrefixOfLines(const std::vector<RecordedEvent>& log, const std::vector<Line>& lines) {
  ASSERT_LE(log.size(), lines.size());
  for (std::size_t p = 0; p < log.size(); ++p) {
    const RecordedEvent& e = log[p];
    ASSERT_EQ(e.position, p + 1);
    ASSERT_EQ(e.id.ToString(), lines[p].id) << "position " << p + 1 << " holds another line";
    ASSERT_EQ(e.stream, lines[p].stream) << "position " << p + 1;
    ASSERT_EQ(e.data, lines[p].data) << "position " << p + 1;
    ASSERT_EQ(e.metadata, "{\"actor\":\"importer\"}") << "position " << p + 1;
  }
  if (!log.empty() && log.size() < lines.size()) {
    EXPECT_EQ(lines[log.size()].first_of_tx, log.size())
        << "the store holds part of the transaction of line " << log.size() + 1;
  }
}

std::uint64_t DirectoryBytes(const std::string& dir) {
  std::uint64_t bytes = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) bytes += it->file_size(size_ec);
  }
  return bytes;
}

// Both ways an import loads a data directory: in bulk (the default: batches become table files
// the store ingests) and through the write-ahead log (--no-bulk).
class ImportModeTest : public ::testing::TestWithParam<bool> {
 protected:
  // "args", with --no-bulk for the logged mode.
  static std::vector<std::string> Args(std::vector<std::string> args) {
    if (!GetParam()) args.push_back("--no-bulk");
    return args;
  }
};

INSTANTIATE_TEST_SUITE_P(Modes, ImportModeTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& mode) {
                           return mode.param ? "Bulk" : "Logged";
                         });

TEST_P(ImportModeTest, AKilledImportLeavesAPrefixAndARerunCompletesIt) {
  TempDir dir;
  const std::vector<Line> lines = MakeLines(200000);
  const std::string file = WriteFile(dir.Sub("events.ndjson"), lines);

  // Kill the import once its data directory has grown by "threshold" bytes: the events are
  // being written then. If it finished first (a fast machine), try again with a fresh
  // directory and a smaller threshold; if it was killed before anything was stored, a larger.
  std::uint64_t threshold = 8u << 20;
  std::string data;
  std::size_t stored = 0;
  for (int attempt = 0; attempt < 8; ++attempt) {
    data = dir.Sub("data-" + std::to_string(attempt));
    Child import(Args({"import", file, "--data", data}));
    bool exited = false;
    std::uint64_t start_bytes = 0;
    for (;;) {
      siginfo_t info{};  // WNOWAIT: Wait() below reaps it
      if (::waitid(P_PID, static_cast<id_t>(import.pid()), &info, WEXITED | WNOHANG | WNOWAIT) ==
              0 &&
          info.si_pid == import.pid()) {
        exited = true;
        break;
      }
      std::uint64_t bytes = DirectoryBytes(data);
      if (start_bytes == 0) start_bytes = bytes;
      if (bytes > start_bytes + threshold) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (!exited) {
      ASSERT_EQ(::kill(import.pid(), SIGKILL), 0);
    }
    Outcome outcome = import.Wait();
    if (exited) {
      ASSERT_EQ(outcome.code, 0) << Describe(outcome);
    }
    std::vector<RecordedEvent> log = ReadLog(data);
    ExpectPrefixOfLines(log, lines);
    if (::testing::Test::HasFatalFailure()) return;
    stored = log.size();
    if (exited || stored == lines.size()) {
      threshold /= 4;
    } else if (stored == 0) {
      threshold *= 2;
    } else {
      break;  // killed part-way
    }
  }
  ASSERT_GT(stored, 0u) << "the import was never killed after it had stored something";
  ASSERT_LT(stored, lines.size()) << "the import always finished before it could be killed";

  Outcome rerun = Cli(Args({"import", file, "--data", data}));
  ASSERT_EQ(rerun.code, 0) << Describe(rerun);
  EXPECT_NE(rerun.out.find(std::to_string(lines.size() - stored) + " written, " +
                           std::to_string(stored) + " already present"),
            std::string::npos)
      << rerun.out;
  std::vector<RecordedEvent> log = ReadLog(data);
  EXPECT_EQ(log.size(), lines.size());
  ExpectPrefixOfLines(log, lines);
  // Revisions came out as the file has them.
  std::map<std::string, Revision> next;
  for (const RecordedEvent& e : log) ASSERT_EQ(e.revision, next[e.stream]++) << e.stream;
}

TEST_P(ImportModeTest, AFailingLineStopsTheImportWithExactlyTheLinesBeforeItStored) {
  TempDir dir;
  std::vector<Line> lines = MakeLines(6000);
  // Line 5005 (a transaction of its own; with --no-bulk in the second batch of commits) claims
  // a revision its stream does not have.
  const std::size_t bad = 5004;
  ASSERT_EQ(lines[bad].first_of_tx, bad);
  ASSERT_TRUE(lines[bad].stream.starts_with("rev/")) << lines[bad].stream;
  std::size_t at = lines[bad].json.find(",\"revision\":");
  lines[bad].json.replace(at, lines[bad].json.find(',', at + 1) - at, ",\"revision\":777");
  const std::string file = WriteFile(dir.Sub("events.ndjson"), lines);
  const std::string data = dir.Sub("data");

  Outcome r = Cli(Args({"import", file, "--data", data}));
  EXPECT_EQ(r.code, 4) << Describe(r);
  EXPECT_NE(r.err.find("wrong_expected_revision"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("stopped at line 5005 (1 events of one transaction); 5004 events were "
                       "written before it, 0 were already present"),
            std::string::npos)
      << r.err;
  std::vector<RecordedEvent> log = ReadLog(data);
  EXPECT_EQ(log.size(), bad);
  ExpectPrefixOfLines(log, lines);

  // Run again unchanged: the lines before are already present, the same line fails again.
  Outcome again = Cli(Args({"import", file, "--data", data}));
  EXPECT_EQ(again.code, 4) << Describe(again);
  EXPECT_NE(again.err.find("stopped at line 5005 (1 events of one transaction); 0 events were "
                           "written before it, 5004 were already present"),
            std::string::npos)
      << again.err;
  EXPECT_EQ(ReadLog(data).size(), bad);
}

TEST(ImportTest, APipeIsReadOnceAndImportedWhole) {
  // A pipe cannot be read twice (once to check, once to write), so it is held in memory.
  TempDir dir;
  const std::vector<Line> lines = MakeLines(300);
  const std::string file = WriteFile(dir.Sub("events.ndjson"), lines);
  const std::string data = dir.Sub("data");
  Child shell(
      "/bin/bash",
      {"-c", "\"$0\" import <(cat \"$1\") --data \"$2\"", testing::TimetrailBinary(), file, data},
      {});
  Outcome r = shell.Wait();
  ASSERT_EQ(r.code, 0) << Describe(r);
  EXPECT_NE(r.out.find("300 written, 0 already present"), std::string::npos) << r.out;
  std::vector<RecordedEvent> log = ReadLog(data);
  EXPECT_EQ(log.size(), lines.size());
  ExpectPrefixOfLines(log, lines);
}

}  // namespace
}  // namespace timetrail
