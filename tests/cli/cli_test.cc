// Runs the real `timetrail` binary: each command's output and exit code, --json parsed and
// checked, import/export round trips, bad input, --help, and server mode against a real
// `timetrail serve` process.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/cli_harness.h"
#include "store/keys.h"
#include "support/temp_dir.h"

namespace timetrail {
namespace {

using nlohmann::json;
using testing::Child;
using testing::Cli;
using testing::Describe;
using testing::Lines;
using testing::Outcome;
using testing::TempDir;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// An export without what the receiving store assigns anew (recorded_at, hash).
std::vector<json> Portable(const std::string& ndjson) {
  std::vector<json> out;
  for (const std::string& line : Lines(ndjson)) {
    json e = json::parse(line);
    e.erase("recorded_at");
    e.erase("hash");
    out.push_back(e);
  }
  return out;
}

class CliTest : public ::testing::Test {
 protected:
  std::vector<std::string> Data(std::vector<std::string> args, const std::string& dir = "") {
    args.push_back("--data");
    args.push_back(dir.empty() ? dir_.Sub("data") : dir);
    return args;
  }
  Outcome InData(std::vector<std::string> args, const std::string& stdin_text = "") {
    return Cli(Data(std::move(args)), stdin_text);
  }
  TempDir dir_;
};

TEST_F(CliTest, EveryCommandHasHelpWithAnExample) {
  Outcome top = Cli({"--help"});
  EXPECT_EQ(top.code, 0);
  for (const char* cmd :
       {"append", "read", "info", "event", "log", "tail", "integrity", "verify", "import", "export",
        "get", "history", "diff", "activity", "revert", "serve"}) {
    EXPECT_NE(top.out.find(cmd), std::string::npos) << cmd;
    Outcome r = Cli({cmd, "--help"});
    EXPECT_EQ(r.code, 0) << cmd << Describe(r);
    EXPECT_NE(r.out.find("Usage:"), std::string::npos) << cmd;
    if (std::string(cmd) != "serve") {
      EXPECT_NE(r.out.find("timetrail " + std::string(cmd)), std::string::npos)
          << cmd << " --help shows no example:\n"
          << r.out;
      EXPECT_NE(r.out.find("--server"), std::string::npos) << cmd;
      EXPECT_NE(r.out.find("--json"), std::string::npos) << cmd;
    }
  }
}

TEST_F(CliTest, AppendReadInfoLogOnADataDirectory) {
  Outcome a =
      InData({"append", "friend-1", "--type", "$put", "--event-data",
              R"({"name":"Rachel","location":"New York","n":12345678901234567890123})", "--actor",
              "joey", "--reason", "we met", "--expected", "no_stream", "--json"});
  ASSERT_EQ(a.code, 0) << Describe(a);
  json ack = json::parse(a.out);
  EXPECT_EQ(ack["stream"], "friend-1");
  EXPECT_EQ(ack["revision"], 0);
  EXPECT_EQ(ack["position"], 1);
  EXPECT_EQ(ack["idempotent_replay"], false);

  Outcome b = InData({"append", "friend-1", "-t", "$patch", "-d", R"({"location":"Paris"})",
                      "--expected", "0", "--valid-from", "2026-01-02"});
  ASSERT_EQ(b.code, 0) << Describe(b);
  EXPECT_NE(b.out.find("appended 1 event to friend-1: revision 1, position 2"), std::string::npos)
      << b.out;

  Outcome r = InData({"read", "friend-1", "--json"});
  ASSERT_EQ(r.code, 0) << Describe(r);
  json page = json::parse(r.out);
  ASSERT_EQ(page["events"].size(), 2u);
  EXPECT_TRUE(page["next"].is_null());
  json e0 = page["events"][0];
  EXPECT_EQ(e0["type"], "$put");
  EXPECT_EQ(e0["metadata"]["actor"], "joey");
  EXPECT_EQ(e0["metadata"]["reason"], "we met");
  // Data is printed as stored: the big number keeps every digit.
  EXPECT_NE(r.out.find("12345678901234567890123"), std::string::npos);
  EXPECT_EQ(page["events"][1]["valid_from"], "2026-01-02T00:00:00.000000Z");
  for (const char* key : {"stream", "revision", "position", "id", "type", "data", "metadata",
                          "recorded_at", "valid_from", "tx", "hash"}) {
    EXPECT_TRUE(e0.contains(key)) << key;
  }

  Outcome table = InData({"read", "friend-1"});
  ASSERT_EQ(table.code, 0);
  std::vector<std::string> rows = Lines(table.out);
  ASSERT_EQ(rows.size(), 3u) << table.out;
  EXPECT_EQ(rows[0].rfind("POSITION", 0), 0u);
  EXPECT_NE(rows[1].find("joey"), std::string::npos);
  EXPECT_NE(rows[2].find(R"({"location":"Paris"})"), std::string::npos);

  Outcome back = InData({"read", "friend-1", "--backward", "--limit", "1", "--json"});
  json bp = json::parse(back.out);
  ASSERT_EQ(bp["events"].size(), 1u);
  EXPECT_EQ(bp["events"][0]["revision"], 1);
  EXPECT_EQ(bp["next"], 0);

  Outcome info = InData({"info", "friend-1", "--json"});
  ASSERT_EQ(info.code, 0) << Describe(info);
  json ij = json::parse(info.out);
  EXPECT_EQ(ij["exists"], true);
  EXPECT_EQ(ij["revision"], 1);
  EXPECT_EQ(ij["position"], 2);
  Outcome info_table = InData({"info", "nobody"});
  EXPECT_EQ(info_table.code, 0);
  EXPECT_NE(info_table.out.find("exists:   false"), std::string::npos) << info_table.out;

  Outcome ev = InData({"event", e0["id"].get<std::string>(), "--json"});
  ASSERT_EQ(ev.code, 0) << Describe(ev);
  EXPECT_EQ(json::parse(ev.out)["position"], 1);

  InData({"append", "other", "-t", "note", "-d", "1"});
  Outcome log = InData({"log", "--stream-prefix", "friend-", "--json"});
  ASSERT_EQ(log.code, 0) << Describe(log);
  json lj = json::parse(log.out);
  EXPECT_EQ(lj["events"].size(), 2u);
  EXPECT_EQ(lj["head"], 3);
  Outcome types = InData({"log", "--types", "note", "--json"});
  json tj = json::parse(types.out);
  ASSERT_EQ(tj["events"].size(), 1u);
  EXPECT_EQ(tj["events"][0]["stream"], "other");
  Outcome more = InData({"log", "--limit", "1"});
  EXPECT_NE(more.out.find("(more: continue with --from 2)"), std::string::npos) << more.out;

  Outcome head = InData({"integrity", "--json"});
  ASSERT_EQ(head.code, 0);
  json hj = json::parse(head.out);
  EXPECT_EQ(hj["position"], 3);
  EXPECT_EQ(hj["hash"].get<std::string>().size(), 64u);
  Outcome verify = InData({"verify", "--json"});
  ASSERT_EQ(verify.code, 0) << Describe(verify);
  json vj = json::parse(verify.out);
  EXPECT_EQ(vj["ok"], true);
  EXPECT_EQ(vj["events_checked"], 3);
  EXPECT_EQ(vj["head"]["hash"], hj["hash"]);
  // Nothing else holds the directory: the verification is recorded in $audit.
  EXPECT_NE(vj.value("recorded", true), false) << verify.out;
  Outcome audit = InData({"read", "$audit", "--json"});
  ASSERT_EQ(audit.code, 0) << Describe(audit);
  EXPECT_NE(audit.out.find("verif"), std::string::npos) << audit.out;
}

TEST_F(CliTest, AppendFromAnEventsFileAndStreamNamesWithSlashes) {
  std::string file = dir_.Sub("events.json");
  std::ofstream(file) << R"([{"type":"$put","data":{"total":5}},
                             {"type":"$patch","data":{"total":6},"metadata":{"actor":"ann"}}])";
  Outcome a = InData({"append", "public.orders/42", "--events", file, "--json"});
  ASSERT_EQ(a.code, 0) << Describe(a);
  json ack = json::parse(a.out);
  EXPECT_EQ(ack["first_revision"], 0);
  EXPECT_EQ(ack["revision"], 1);
  Outcome r = InData({"read", "public.orders/42", "--json"});
  ASSERT_EQ(r.code, 0) << Describe(r);
  EXPECT_EQ(json::parse(r.out)["events"][1]["metadata"]["actor"], "ann");
  Outcome stdin_append = InData({"append", "public.orders/42", "--events", "-", "--expected", "1"},
                                R"([{"type":"shipped"}])");
  EXPECT_EQ(stdin_append.code, 0) << Describe(stdin_append);
}

TEST_F(CliTest, BadInputGetsAClearErrorExitCodeAndChangesNothing) {
  ASSERT_EQ(InData({"append", "s", "-t", "$put", "-d", "{}"}).code, 0);
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string says;
  };
  std::vector<Case> cases = {
      {{"append", "s", "-t", "$put", "-d", "{\"a\":"}, 2, "--event-data is not valid JSON"},
      {{"append", "s", "-t", "$put", "-d", "[1]"}, 2, "invalid_argument"},
      {{"append", "s", "-d", "{}"}, 2, "--type is required"},
      {{"append", "s", "-t", "$put", "-m", "[]"}, 2, "--metadata must be a JSON object"},
      {{"append", "s", "-t", "$put", "--id", "not-a-uuid"}, 2, "--id"},
      {{"append", "s", "-t", "$put", "--valid-from", "yesterday"}, 2, "--valid-from"},
      {{"append", "s", "-t", "$put", "--expected", "maybe"}, 2, "--expected must be"},
      {{"append", "s", "-t", "$put", "-d", "{}", "--expected", "no_stream"},
       4,
       "wrong_expected_revision"},
      {{"append", "s", "-t", "$bogus"}, 2, "invalid_argument"},
      {{"read", "missing"}, 3, "not_found"},
      {{"read", "s", "--limit", "0"}, 2, "limit"},
      {{"event", "not-a-uuid"}, 2, "invalid_argument"},
      {{"event", "0191b7a4-6c1e-7d2a-9f3b-1a2b3c4d5e6f"}, 3, "not_found"},
      {{"log", "--limit", "abc"}, 2, "limit"},
      {{"read"}, 2, "stream is required"},
  };
  for (const Case& c : cases) {
    Outcome r = InData(c.args);
    EXPECT_EQ(r.code, c.code) << c.args[0] << " " << c.args.back() << "\n" << Describe(r);
    EXPECT_NE(r.err.find(c.says), std::string::npos) << Describe(r);
  }
  Outcome info = InData({"info", "s", "--json"});
  EXPECT_EQ(json::parse(info.out)["revision"], 0) << "a rejected command changed the store";

  EXPECT_EQ(Cli({"no-such-command"}).code, 2);
  EXPECT_EQ(Cli({}).code, 2);
  Outcome missing_dir = Cli({"read", "s", "--data", dir_.Sub("nowhere")});
  EXPECT_EQ(missing_dir.code, 3) << Describe(missing_dir);
  Outcome unreachable = Cli({"info", "s", "--server", "http://127.0.0.1:1"});
  EXPECT_EQ(unreachable.code, 5) << Describe(unreachable);
  EXPECT_NE(unreachable.err.find("cannot reach the timetrail server at http://127.0.0.1:1"),
            std::string::npos);
  Outcome bad_url = Cli({"info", "s", "--server", "ftp://x/y"});
  EXPECT_EQ(bad_url.code, 2) << Describe(bad_url);
  EXPECT_NE(bad_url.err.find("--server must look like http://HOST:PORT"), std::string::npos)
      << Describe(bad_url);
}

TEST_F(CliTest, ExportImportRoundTripIsExactAndIdempotent) {
  // Source: single-stream appends, a multi-stream transaction (imported from a hand-written
  // file), a correction with valid_from, a delete, data with big numbers and pretty JSON.
  std::string src = dir_.Sub("src");
  ASSERT_EQ(Cli(Data({"append", "friend-1", "-t", "$put", "-d",
                      R"({"name":"Rachel","n":123456789012345678901234567890})", "--actor", "joey"},
                     src))
                .code,
            0);
  std::string handwritten =
      R"({"stream":"order/1","type":"$put","data":{"qty":1},"tx":7})"
      "\n"
      R"({"stream":"stock/9","type":"$patch","data":{"left":4},"tx":7})"
      "\n"
      "\n"
      R"({"stream":"order/1","type":"$patch","data":{"qty":2},"metadata":{"reason":"typo"},"valid_from":"2026-01-01T00:00:00Z","tx":8})"
      "\n";
  Outcome hw = Cli(Data({"import", "-", "--any-revision"}, src), handwritten);
  ASSERT_EQ(hw.code, 0) << Describe(hw);
  EXPECT_NE(hw.out.find("imported 3 events in 2 transactions: 3 written, 0 already present"),
            std::string::npos)
      << hw.out;
  std::string events_file = dir_.Sub("pretty.json");
  std::ofstream(events_file) << "[{\"type\": \"$put\",\n \"data\": {\"a\": [1,\n 2]}}]";
  ASSERT_EQ(Cli(Data({"append", "pretty", "--events", events_file}, src)).code, 0);
  ASSERT_EQ(Cli(Data({"append", "friend-1", "-t", "$delete"}, src)).code, 0);

  Outcome first = Cli(Data({"export"}, src));
  ASSERT_EQ(first.code, 0) << Describe(first);
  // stderr is a pipe, not a terminal, and --progress is not given: no progress report.
  EXPECT_EQ(first.err, "");
  std::vector<std::string> lines = Lines(first.out);
  ASSERT_EQ(lines.size(), 6u) << first.out;
  // Consecutive lines of one source transaction stayed one transaction.
  std::vector<json> src_events = Portable(first.out);
  EXPECT_EQ(src_events[1]["tx"], src_events[2]["tx"]);
  EXPECT_NE(src_events[2]["tx"], src_events[3]["tx"]);
  EXPECT_EQ(src_events[3]["valid_from"], "2026-01-01T00:00:00.000000Z");
  EXPECT_NE(first.out.find("123456789012345678901234567890"), std::string::npos);
  for (const std::string& line : lines) EXPECT_NO_THROW(json::parse(line)) << line;

  std::string file = dir_.Sub("export.ndjson");
  Outcome to_file = Cli(Data({"export", "-o", file, "--progress"}, src));
  ASSERT_EQ(to_file.code, 0) << Describe(to_file);
  EXPECT_NE(to_file.err.find("exported 6 events"), std::string::npos) << to_file.err;
  std::ifstream in(file);
  std::string file_text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(file_text, first.out);
  // --json: a machine-readable summary on stdout when the events go to a file, and on stderr
  // when they go to stdout, which stays pure NDJSON.
  Outcome summary = Cli(Data({"export", "-o", dir_.Sub("again.ndjson"), "--json"}, src));
  ASSERT_EQ(summary.code, 0) << Describe(summary);
  json sj = json::parse(summary.out);
  EXPECT_EQ(sj["events"], 6);
  EXPECT_EQ(sj["head"], 6);
  EXPECT_EQ(sj["output"], dir_.Sub("again.ndjson"));
  Outcome piped = Cli(Data({"export", "--json"}, src));
  ASSERT_EQ(piped.code, 0) << Describe(piped);
  EXPECT_EQ(piped.out, first.out);
  EXPECT_EQ(json::parse(piped.err)["events"], 6);

  std::string dst = dir_.Sub("dst");
  Outcome imp = Cli(Data({"import", file, "--json", "--progress"}, dst));
  ASSERT_EQ(imp.code, 0) << Describe(imp);
  json ij = json::parse(imp.out);
  EXPECT_EQ(ij["events"], 6);
  EXPECT_EQ(ij["transactions"], 5);
  EXPECT_EQ(ij["written"], 6);
  EXPECT_NE(imp.err.find("imported 6 events"), std::string::npos) << imp.err;

  Outcome second = Cli(Data({"export"}, dst));
  ASSERT_EQ(second.code, 0);
  // Everything but what the new store assigns (recorded_at, hash) is identical: stream,
  // revision, position, id, type, data, metadata, valid_from and the tx grouping.
  EXPECT_EQ(Portable(second.out), src_events);
  // Data and metadata are byte-identical, not just equal as JSON.
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::string a = lines[i], b = Lines(second.out)[i];
    EXPECT_EQ(a.substr(0, a.find(",\"recorded_at\"")), b.substr(0, b.find(",\"recorded_at\"")));
  }

  Outcome again = Cli(Data({"import", file, "--json"}, dst));
  ASSERT_EQ(again.code, 0) << Describe(again);
  EXPECT_EQ(json::parse(again.out)["written"], 0);
  EXPECT_EQ(json::parse(again.out)["already_present"], 6);
  Outcome third = Cli(Data({"export"}, dst));
  EXPECT_EQ(third.out, second.out) << "importing the same file twice wrote something";

  // Revisions must line up: the same file into a store whose stream is elsewhere conflicts.
  std::string other = dir_.Sub("other");
  ASSERT_EQ(Cli(Data({"append", "friend-1", "-t", "x"}, other)).code, 0);
  Outcome conflict = Cli(Data({"import", file}, other));
  EXPECT_EQ(conflict.code, 4) << Describe(conflict);
  EXPECT_NE(conflict.err.find("stopped at line 1"), std::string::npos) << conflict.err;
}

// Runs the timetrail binary with stderr on a pseudo-terminal (stdout and stdin on /dev/null);
// returns what it wrote to the terminal and its exit code.
std::pair<std::string, int> RunWithTerminalStderr(const std::vector<std::string>& args) {
  int master = ::posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0 || ::grantpt(master) != 0 || ::unlockpt(master) != 0) return {"no pty", -1};
  std::string slave_name = ::ptsname(master);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setsid();
    int slave = ::open(slave_name.c_str(), O_RDWR);
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(slave, 2);
    ::close(master);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(testing::TimetrailBinary()));
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(testing::TimetrailBinary(), argv.data());
    ::_exit(127);
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(master, buf, sizeof buf);
    if (n <= 0) break;  // EIO once the child closed the terminal's last descriptor
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(master);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

TEST_F(CliTest, ImportAndExportShowProgressWhenStderrIsATerminal) {
  std::string events;
  for (int i = 0; i < 300; ++i) {
    events += R"({"stream":"s/)" + std::to_string(i % 7) + R"(","type":"tick","data":)" +
              std::to_string(i) + "}\n";
  }
  std::string file = dir_.Sub("in.ndjson");
  std::ofstream(file) << events;
  auto [imported, import_code] = RunWithTerminalStderr(Data({"import", file, "--any-revision"}));
  ASSERT_EQ(import_code, 0) << imported;
  // The report is rewritten in place (a carriage return before each) and ends with the total.
  EXPECT_NE(imported.find("\rimported 300 events, "), std::string::npos) << imported;
  EXPECT_NE(imported.find(" events/s, "), std::string::npos) << imported;
  EXPECT_NE(imported.find(", done"), std::string::npos) << imported;

  auto [exported, export_code] =
      RunWithTerminalStderr(Data({"export", "-o", dir_.Sub("out.ndjson")}));
  ASSERT_EQ(export_code, 0) << exported;
  EXPECT_NE(exported.find("\rexported 300 events, "), std::string::npos) << exported;
  EXPECT_NE(exported.find(", done"), std::string::npos) << exported;
  EXPECT_EQ(Lines(ReadAll(dir_.Sub("out.ndjson"))).size(), 300u);

  // Without a terminal and without --progress, stderr stays quiet.
  Outcome quiet = InData({"import", file, "--any-revision"});
  EXPECT_EQ(quiet.code, 0) << Describe(quiet);
  EXPECT_EQ(quiet.err, "");
}

TEST_F(CliTest, ImportRejectsABadFileBeforeWritingAnything) {
  std::string text = R"({"stream":"a","type":"$put","data":{}})"
                     "\n"
                     R"({"stream":"b","type":"$put","data":{})"
                     "\n";
  Outcome r = InData({"import", "-"}, text);
  EXPECT_EQ(r.code, 2) << Describe(r);
  EXPECT_NE(r.err.find("line 2: not valid JSON"), std::string::npos) << r.err;
  Outcome no_stream = InData({"import", "-"}, R"({"type":"x"})"
                                              "\n");
  EXPECT_EQ(no_stream.code, 2);
  EXPECT_NE(no_stream.err.find("line 1: \"stream\" must be a non-empty string"), std::string::npos)
      << no_stream.err;
  Outcome bad_id = InData({"import", "-"}, R"({"stream":"a","type":"x","id":"zz"})"
                                           "\n");
  EXPECT_EQ(bad_id.code, 2);
  // Nothing was written by any of them: the data directory was not even created.
  Outcome log = InData({"log", "--json"});
  EXPECT_EQ(log.code, 3) << Describe(log);
  EXPECT_NE(log.err.find("does not exist"), std::string::npos) << log.err;
  Outcome missing = InData({"import", dir_.Sub("no-such-file")});
  EXPECT_EQ(missing.code, 3) << Describe(missing);
}

TEST_F(CliTest, TemporalCommandsGetHistoryDiffActivityRevert) {
  ASSERT_EQ(InData({"append", "friend-1", "-t", "$put", "-d",
                    R"({"name":"Rachel","location":"New York"})", "--actor", "joey", "--reason",
                    "we met", "-e", "no_stream"})
                .code,
            0);
  ASSERT_EQ(InData({"append", "friend-1", "-t", "$patch", "-d", R"({"location":"Paris"})",
                    "--actor", "ross", "--reason", "moved"})
                .code,
            0);
  ASSERT_EQ(
      InData({"append", "friend-2", "-t", "$put", "-d", R"({"name":"Joey"})", "--actor", "joey"})
          .code,
      0);

  Outcome now = InData({"get", "friend-1", "--json"});
  ASSERT_EQ(now.code, 0) << Describe(now);
  EXPECT_EQ(json::parse(now.out)["state"]["location"], "Paris");
  Outcome then = InData({"get", "friend-1", "--at-revision", "0", "--json"});
  EXPECT_EQ(json::parse(then.out)["state"]["location"], "New York");
  Outcome table = InData({"get", "friend-1"});
  EXPECT_NE(table.out.find(R"("location":"Paris")"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("actor:       ross"), std::string::npos) << table.out;
  EXPECT_EQ(InData({"get", "nobody"}).code, 3);
  EXPECT_EQ(InData({"get", "friend-1", "--as-of", "not a time"}).code, 2);

  Outcome hist = InData({"history", "friend-1", "--path", "/location", "--json"});
  ASSERT_EQ(hist.code, 0) << Describe(hist);
  json iv = json::parse(hist.out)["intervals"];
  ASSERT_EQ(iv.size(), 2u);
  EXPECT_EQ(iv[0]["value"], "New York");
  EXPECT_EQ(iv[1]["value"], "Paris");
  EXPECT_TRUE(iv[1]["to"].is_null());
  Outcome known_alone =
      InData({"history", "friend-1", "-p", "/location", "--known-at", "2026-01-01"});
  EXPECT_EQ(known_alone.code, 2) << Describe(known_alone);
  EXPECT_NE(known_alone.err.find("--known-at needs --valid-time"), std::string::npos);
  Outcome hist_table = InData({"history", "friend-1", "-p", "/location"});
  EXPECT_NE(hist_table.out.find("\"Paris\""), std::string::npos) << hist_table.out;
  EXPECT_NE(hist_table.out.find("moved"), std::string::npos) << hist_table.out;

  Outcome diff = InData({"diff", "friend-1", "--from", "0", "--to", "1", "--json"});
  ASSERT_EQ(diff.code, 0) << Describe(diff);
  json dj = json::parse(diff.out);
  ASSERT_EQ(dj["patch"].size(), 1u);
  EXPECT_EQ(dj["patch"][0]["op"], "replace");
  EXPECT_EQ(dj["patch"][0]["path"], "/location");
  EXPECT_FALSE(dj.contains("events")) << diff.out;  // only with --events
  Outcome diff_table = InData({"diff", "friend-1", "--from", "0", "--to", "1"});
  ASSERT_EQ(diff_table.code, 0) << Describe(diff_table);
  EXPECT_NE(diff_table.out.find(R"("path":"/location")"), std::string::npos) << diff_table.out;
  EXPECT_EQ(diff_table.out.find("events:"), std::string::npos) << diff_table.out;
  Outcome with_events = InData({"diff", "friend-1", "--from", "0", "--events", "--json"});
  ASSERT_EQ(with_events.code, 0) << Describe(with_events);
  json ej = json::parse(with_events.out);
  ASSERT_EQ(ej["events"].size(), 1u);
  EXPECT_EQ(ej["events"][0]["revision"], 1);
  EXPECT_TRUE(ej["cursor"].is_null());
  // Pages: --limit 1 from before the first event leaves a cursor; --cursor continues from it.
  Outcome page1 = InData(
      {"diff", "friend-1", "--from-time", "2000-01-01", "--events", "--limit", "1", "--json"});
  ASSERT_EQ(page1.code, 0) << Describe(page1);
  json p1 = json::parse(page1.out);
  ASSERT_EQ(p1["events"].size(), 1u);
  EXPECT_EQ(p1["events"][0]["revision"], 0);
  ASSERT_TRUE(p1["cursor"].is_string()) << page1.out;
  const std::string cursor = p1["cursor"].get<std::string>();
  Outcome page1_table =
      InData({"diff", "friend-1", "--from-time", "2000-01-01", "--events", "--limit", "1"});
  EXPECT_NE(page1_table.out.find("(more: continue with --cursor " + cursor + ")"),
            std::string::npos)
      << page1_table.out;
  Outcome page2 = InData({"diff", "friend-1", "--from-time", "2000-01-01", "--events", "--limit",
                          "1", "--cursor", cursor, "--json"});
  ASSERT_EQ(page2.code, 0) << Describe(page2);
  json p2 = json::parse(page2.out);
  ASSERT_EQ(p2["events"].size(), 1u);
  EXPECT_EQ(p2["events"][0]["revision"], 1);
  EXPECT_TRUE(p2["cursor"].is_null());
  Outcome limit_alone = InData({"diff", "friend-1", "--from", "0", "--limit", "1"});
  EXPECT_EQ(limit_alone.code, 2) << Describe(limit_alone);
  EXPECT_NE(limit_alone.err.find("give --events"), std::string::npos) << limit_alone.err;
  EXPECT_EQ(InData({"diff", "friend-1", "--from", "0", "--events", "--cursor", "bad"}).code, 2);
  EXPECT_EQ(InData({"diff", "friend-1"}).code, 2);

  Outcome act = InData({"activity", "--actor", "joey", "--json"});
  ASSERT_EQ(act.code, 0) << Describe(act);
  json aj = json::parse(act.out)["events"];
  ASSERT_EQ(aj.size(), 2u);
  EXPECT_EQ(aj[0]["stream"], "friend-2");  // newest first
  EXPECT_EQ(aj[1]["stream"], "friend-1");

  Outcome rv = InData({"revert", "friend-1", "--to-revision", "0", "--expected", "1", "--actor",
                       "monica", "--reason", "wrong city"});
  ASSERT_EQ(rv.code, 0) << Describe(rv);
  EXPECT_NE(rv.out.find("new revision 2"), std::string::npos) << rv.out;
  Outcome after = InData({"get", "friend-1", "--json"});
  json st = json::parse(after.out);
  EXPECT_EQ(st["state"]["location"], "New York");
  EXPECT_EQ(st["metadata"]["actor"], "monica");
  Outcome stale = InData({"revert", "friend-1", "--to-revision", "0", "--expected", "1"});
  EXPECT_EQ(stale.code, 4) << Describe(stale);
  EXPECT_EQ(InData({"revert", "friend-1"}).code, 2);
  // History is never rewritten: all three events are still there.
  EXPECT_EQ(json::parse(InData({"read", "friend-1", "--json"}).out)["events"].size(), 3u);
}

// Deletes the stored record of one position, as a faulty tool or an attacker could.
void RemoveLogRecord(const std::string& dir, std::uint64_t position) {
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), dir, cfs, &handles, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == "log") {
      ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), handles[i], keys::Log(position)).ok());
    }
  }
  for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  ASSERT_TRUE(db->Close().ok());
}

TEST_F(CliTest, VerifyNamesTheFirstBadPosition) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(InData({"append", "s", "-t", "tick", "-d", std::to_string(i)}).code, 0);
  }
  ASSERT_EQ(InData({"verify"}).code, 0);
  RemoveLogRecord(dir_.Sub("data"), 3);
  Outcome r = InData({"verify"});
  EXPECT_EQ(r.code, 1) << Describe(r);
  EXPECT_NE(r.out.find("BROKEN: the integrity chain does not hold at position 3"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.err.find("first bad position 3"), std::string::npos) << r.err;
  Outcome j = InData({"verify", "--json"});
  EXPECT_EQ(j.code, 1);
  EXPECT_EQ(json::parse(j.out)["first_bad_position"], 3);
}

TEST_F(CliTest, TailOnADataDirectoryDeliversStoredEventsWithFilters) {
  for (const char* s : {"a/1", "b/1", "a/2"}) {
    ASSERT_EQ(InData({"append", s, "-t", "$put", "-d", "{}"}).code, 0);
  }
  Outcome r = InData({"tail", "--stream-prefix", "a/", "--count", "2", "--json"});
  ASSERT_EQ(r.code, 0) << Describe(r);
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(json::parse(lines[0])["stream"], "a/1");
  EXPECT_EQ(json::parse(lines[1])["stream"], "a/2");
  Outcome from = InData({"tail", "--from", "3", "--count", "1"});
  ASSERT_EQ(from.code, 0);
  EXPECT_NE(from.out.find("a/2"), std::string::npos);
  EXPECT_EQ(from.out.find("b/1"), std::string::npos);
}

// A `timetrail serve` process on a free port, stopped at the end.
class ServerTest : public CliTest {
 protected:
  void SetUp() override {
    server_ = std::make_unique<Child>(
        std::vector<std::string>{"serve", "--data", dir_.Sub("served"), "--listen", "127.0.0.1:0"});
    std::string line = server_->ReadLine();
    const std::string prefix = "listening on ";
    ASSERT_EQ(line.rfind(prefix, 0), 0u) << "server did not start: " << line;
    url_ = line.substr(prefix.size());
  }
  void TearDown() override {
    if (server_) {
      ::kill(server_->pid(), SIGTERM);
      Outcome r = server_->Wait();
      EXPECT_EQ(r.code, 0) << r.err;
    }
  }
  Outcome OnServer(std::vector<std::string> args, const std::string& stdin_text = "") {
    args.push_back("--server");
    args.push_back(url_);
    return Cli(args, stdin_text);
  }
  std::unique_ptr<Child> server_;
  std::string url_;
};

TEST_F(ServerTest, CommandsWorkAgainstAServerLikeOnADataDirectory) {
  Outcome a = OnServer({"append", "public.orders/42", "-t", "$put", "-d", R"({"qty":1})",
                        "--expected", "no_stream", "--json"});
  ASSERT_EQ(a.code, 0) << Describe(a);
  EXPECT_EQ(json::parse(a.out)["stream"], "public.orders/42");
  Outcome conflict =
      OnServer({"append", "public.orders/42", "-t", "$put", "-d", "{}", "--expected", "no_stream"});
  EXPECT_EQ(conflict.code, 4) << Describe(conflict);
  Outcome r = OnServer({"read", "public.orders/42", "--json"});
  ASSERT_EQ(r.code, 0) << Describe(r);
  EXPECT_EQ(json::parse(r.out)["events"][0]["data"]["qty"], 1);
  EXPECT_EQ(OnServer({"read", "nothing"}).code, 3);
  Outcome info = OnServer({"info", "public.orders/42", "--json"});
  EXPECT_EQ(json::parse(info.out)["revision"], 0);
  EXPECT_EQ(json::parse(OnServer({"log", "--json"}).out)["head"], 1);
  EXPECT_EQ(OnServer({"verify"}).code, 0);
  // The verification itself is recorded in $audit, after the one event.
  EXPECT_EQ(json::parse(OnServer({"integrity", "--json"}).out)["position"], 2);

  // TIMETRAIL_SERVER picks the server when --server is not given.
  Child env_child({"info", "public.orders/42", "--json"}, {"TIMETRAIL_SERVER=" + url_});
  Outcome via_env = env_child.Wait();
  EXPECT_EQ(via_env.code, 0) << Describe(via_env);

  // The server holds its data directory: a command that writes to it directly is refused,
  // clearly (reads work: ReadsWorkOnTheDataDirectoryTheServerHolds).
  Outcome held = Cli({"append", "public.orders/42", "-t", "x", "--data", dir_.Sub("served")});
  EXPECT_EQ(held.code, 5) << Describe(held);
  EXPECT_NE(held.err.find("in use by another timetrail process"), std::string::npos) << held.err;
  EXPECT_NE(held.err.find("--server"), std::string::npos) << held.err;

  // Import through the server, twice; export through the server equals the file.
  std::string file = dir_.Sub("in.ndjson");
  ASSERT_EQ(InData({"append", "x/1", "-t", "$put", "-d", "{\"v\":1}"}).code, 0);
  ASSERT_EQ(InData({"append", "x/2", "-t", "note", "-d", "\"hi\""}).code, 0);
  ASSERT_EQ(InData({"export", "-o", file}).code, 0);
  Outcome imp = OnServer({"import", file, "--json"});
  ASSERT_EQ(imp.code, 0) << Describe(imp);
  EXPECT_EQ(json::parse(imp.out)["written"], 2);
  Outcome imp2 = OnServer({"import", file, "--json"});
  EXPECT_EQ(json::parse(imp2.out)["already_present"], 2) << Describe(imp2);
  Outcome exp = OnServer({"export", "--stream-prefix", "x/"});
  ASSERT_EQ(exp.code, 0);
  std::vector<json> got = Portable(exp.out);
  ASSERT_EQ(got.size(), 2u);
  std::vector<json> want = Portable(InData({"export"}).out);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(got[i]["id"], want[i]["id"]);
    EXPECT_EQ(got[i]["data"], want[i]["data"]);
    EXPECT_EQ(got[i]["valid_from"], want[i]["valid_from"]);
  }
}

TEST_F(ServerTest, ReadsWorkOnTheDataDirectoryTheServerHolds) {
  ASSERT_EQ(OnServer({"append", "public.orders/42", "-t", "$put", "-d",
                      R"({"status":"new","qty":1})", "--actor", "ann"})
                .code,
            0);
  ASSERT_EQ(OnServer({"append", "public.orders/42", "-t", "$patch", "-d", R"({"status":"paid"})",
                      "--actor", "bob"})
                .code,
            0);
  ASSERT_EQ(OnServer({"append", "other/1", "-t", "note", "-d", "1"}).code, 0);
  const std::string served = dir_.Sub("served");
  auto held = [&](std::vector<std::string> args) {
    args.push_back("--data");
    args.push_back(served);
    return Cli(args);
  };

  // What the server committed is there, read without the directory's lock.
  Outcome read = held({"read", "public.orders/42", "--json"});
  ASSERT_EQ(read.code, 0) << Describe(read);
  json events = json::parse(read.out)["events"];
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1]["data"]["status"], "paid");
  Outcome get = held({"get", "public.orders/42", "--json"});
  ASSERT_EQ(get.code, 0) << Describe(get);
  EXPECT_EQ(json::parse(get.out)["state"], json::parse(R"({"status":"paid","qty":1})"));
  Outcome history = held({"history", "public.orders/42", "--path", "/status", "--json"});
  ASSERT_EQ(history.code, 0) << Describe(history);
  json intervals = json::parse(history.out)["intervals"];
  ASSERT_EQ(intervals.size(), 2u);
  EXPECT_EQ(intervals[0]["value"], "new");
  EXPECT_EQ(intervals[1]["value"], "paid");
  Outcome log = held({"log", "--json"});
  ASSERT_EQ(log.code, 0) << Describe(log);
  EXPECT_EQ(json::parse(log.out)["head"], 3);
  EXPECT_EQ(json::parse(log.out)["events"].size(), 3u);
  Outcome activity = held({"activity", "--actor", "bob", "--json"});
  ASSERT_EQ(activity.code, 0) << Describe(activity);
  EXPECT_EQ(json::parse(activity.out)["events"].size(), 1u);
  Outcome exported = held({"export"});
  ASSERT_EQ(exported.code, 0) << Describe(exported);
  std::vector<std::string> lines = Lines(exported.out);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(json::parse(lines[2])["stream"], "other/1");

  // verify checks the chain, and says that it could not record the check in $audit.
  Outcome verify = held({"verify"});
  ASSERT_EQ(verify.code, 0) << Describe(verify);
  EXPECT_NE(verify.out.find("ok: the integrity chain holds; 3 events checked"), std::string::npos)
      << verify.out;
  EXPECT_NE(verify.out.find("note: not recorded in the $audit stream: the data directory was "
                            "opened read-only"),
            std::string::npos)
      << verify.out;
  Outcome verify_json = held({"verify", "--json"});
  ASSERT_EQ(verify_json.code, 0) << Describe(verify_json);
  json vj = json::parse(verify_json.out);
  EXPECT_EQ(vj["ok"], true);
  EXPECT_EQ(vj["events_checked"], 3);
  EXPECT_EQ(vj["recorded"], false);
  EXPECT_NE(vj["note"].get<std::string>().find("read-only"), std::string::npos);
  // Nothing was written: the server's head is where it was.
  EXPECT_EQ(json::parse(OnServer({"integrity", "--json"}).out)["position"], 3);

  // tail follows what the server commits while it runs.
  Child tail({"tail", "--data", served, "--stream-prefix", "public.", "--count", "3", "--json"});
  ASSERT_EQ(json::parse(tail.ReadLine())["revision"], 0);
  ASSERT_EQ(json::parse(tail.ReadLine())["revision"], 1);
  ASSERT_EQ(
      OnServer({"append", "public.orders/42", "-t", "$patch", "-d", R"({"status":"sent"})"}).code,
      0);
  Outcome followed = tail.Wait();
  ASSERT_EQ(followed.code, 0) << Describe(followed);
  ASSERT_EQ(Lines(followed.out).size(), 1u) << followed.out;
  EXPECT_EQ(json::parse(Lines(followed.out)[0])["data"]["status"], "sent");

  // Commands that write still need the directory: refused, and nothing changes.
  for (std::vector<std::string> write : std::vector<std::vector<std::string>>{
           {"append", "public.orders/42", "-t", "$patch", "-d", "{}"},
           {"revert", "public.orders/42", "--to-revision", "0"},
           {"token", "create", "--name", "ci", "--scope", "read"},
           {"tail", "--consumer", "mailer", "--count", "1"}}) {
    Outcome refused = held(write);
    EXPECT_EQ(refused.code, 5) << write[0] << ": " << Describe(refused);
    EXPECT_NE(refused.err.find("in use by another timetrail process"), std::string::npos)
        << refused.err;
  }
  EXPECT_EQ(json::parse(OnServer({"integrity", "--json"}).out)["position"], 4);
}

TEST_F(ServerTest, ImportThroughTheServerSendsBatchesAndStopsAtTheFailingLine) {
  // 2,500 lines (three requests of up to 1,000 transactions); line 1,800 starts a stream the
  // server already has, so its revision 0 conflicts.
  ASSERT_EQ(OnServer({"append", "late", "-t", "x", "-d", "{}"}).code, 0);
  std::string text;
  std::map<std::string, int> revisions;
  for (int i = 1; i <= 2500; ++i) {
    std::string stream = i == 1800 ? "late" : "bulk/" + std::to_string(i % 50);
    int revision = i == 1800 ? 0 : revisions[stream]++;
    text += R"({"stream":")" + stream + R"(","revision":)" + std::to_string(revision) +
            R"(,"type":"t","data":{"i":)" + std::to_string(i) + "}}\n";
  }
  std::string file = dir_.Sub("bulk.ndjson");
  std::ofstream(file) << text;
  Outcome imp = OnServer({"import", file});
  EXPECT_EQ(imp.code, 4) << Describe(imp);
  EXPECT_NE(imp.err.find("stopped at line 1800"), std::string::npos) << imp.err;
  EXPECT_NE(imp.err.find("1799 events were written"), std::string::npos) << imp.err;
  // Exactly the lines before it are stored.
  Outcome exp = OnServer({"export", "--stream-prefix", "bulk/"});
  ASSERT_EQ(exp.code, 0) << Describe(exp);
  std::vector<std::string> lines = Lines(exp.out);
  ASSERT_EQ(lines.size(), 1799u);
  EXPECT_EQ(json::parse(lines.back())["data"]["i"], 1799);
}

TEST_F(ServerTest, TailFollowsLiveEventsAndConsumersResume) {
  ASSERT_EQ(OnServer({"append", "f/1", "-t", "$put", "-d", "{}"}).code, 0);
  // Follows: the stored event first, then one appended while it runs.
  Child tail({"tail", "--server", url_, "--stream-prefix", "f/", "--count", "2", "--json"});
  std::string first = tail.ReadLine();
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(json::parse(first)["stream"], "f/1");
  ASSERT_EQ(OnServer({"append", "g/1", "-t", "$put", "-d", "{}"}).code, 0);  // filtered out
  ASSERT_EQ(OnServer({"append", "f/2", "-t", "$put", "-d", "{\"live\":true}"}).code, 0);
  Outcome rest = tail.Wait();
  EXPECT_EQ(rest.code, 0) << Describe(rest);
  std::vector<std::string> lines = Lines(rest.out);
  ASSERT_EQ(lines.size(), 1u) << rest.out;
  EXPECT_EQ(json::parse(lines[0])["stream"], "f/2");
  EXPECT_EQ(json::parse(lines[0])["data"]["live"], true);

  // A named consumer acknowledges what it printed; the next tail resumes after it.
  Outcome c1 = OnServer({"tail", "--consumer", "mailer", "--count", "2", "--json"});
  ASSERT_EQ(c1.code, 0) << Describe(c1);
  ASSERT_EQ(Lines(c1.out).size(), 2u);
  EXPECT_EQ(json::parse(Lines(c1.out)[1])["position"], 2);
  Outcome c2 = OnServer({"tail", "--consumer", "mailer", "--count", "1", "--json"});
  ASSERT_EQ(c2.code, 0) << Describe(c2);
  EXPECT_EQ(json::parse(Lines(c2.out)[0])["position"], 3);
  Outcome bad = OnServer({"tail", "--consumer", "bad name!", "--count", "1"});
  EXPECT_EQ(bad.code, 2) << Describe(bad);
}

}  // namespace
}  // namespace timetrail
