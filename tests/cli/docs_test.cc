// Runs the examples of docs/tutorial.md and docs/cli.md against a real `timetrail serve`
// process, so the documentation cannot rot: every ```sh block is run by bash with the real
// `timetrail` binary and the real curl, and what it prints (stdout and stderr) must be the
// ```text block that follows it in the document.
//
// Block kinds, by the fence's info string:
//   ```sh             run in one shell session per document (variables carry over from block to
//                     block; the working directory is a fresh one holding the server's data
//                     directory, ./timetrail-data)
//   ```sh server      starting a server: not run; the test starts `timetrail serve` itself
//   ```sh background  a command that follows live events (tail): started where it appears, left
//                     running while the later blocks run; what it printed until the server
//                     stopped must be the next ```text block that does not follow a command
// Outputs are compared after replacing what differs from run to run: the times at which events
// were recorded (every time not at midnight; the documents' valid times are dates), event ids,
// hashes and rates. The documents' `localhost:7070` becomes the test server's address.
//
// After changing a document or what a command prints, run this test with
// TIMETRAIL_DOCS_UPDATE=DIR to get each document written to DIR with every ```text block
// holding what its commands printed now.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "cli/cli_harness.h"
#include "server/server_harness.h"
#include "support/temp_dir.h"

namespace timetrail {
namespace {

using testing::Child;
using testing::ServerProcess;
using testing::TempDir;

struct Block {
  std::string kind;      // "sh", "sh server", "sh background"
  std::string commands;  // the block's text
  std::string expected;  // the body of its ```text block ("" if none)
  int line = 0;          // where the block starts in the document (1-based), for messages
  // Lines [text_begin, text_end) of the document hold the ```text block's body; -1 if none.
  int text_begin = -1;
  int text_end = -1;
};

// The ```sh blocks of a markdown text. A block's expected output is the ```text block right
// after it (only blank lines may stand between them); a background block's is the next
// ```text block that does not follow another command block (its output is shown after the
// commands that feed it).
std::vector<Block> ParseBlocks(const std::vector<std::string>& lines) {
  struct Fence {
    std::string info;
    std::string body;
    int begin;  // first line of the body
    int end;    // the closing fence
  };
  auto read_fence = [&lines](int i) {
    Fence f{lines[i].substr(3), "", i + 1, i + 1};
    while (f.end < static_cast<int>(lines.size()) && lines[f.end].rfind("```", 0) != 0) {
      f.body += lines[f.end] + "\n";
      ++f.end;
    }
    return f;
  };
  auto attach = [](Block* b, const Fence& text) {
    b->expected = text.body;
    b->text_begin = text.begin;
    b->text_end = text.end;
  };
  std::vector<Block> blocks;
  int waiting_background = -1;  // index of a background block still without its output
  const int n = static_cast<int>(lines.size());
  for (int i = 0; i < n; ++i) {
    if (lines[i].rfind("```", 0) != 0) continue;
    Fence f = read_fence(i);
    i = f.end;
    if (f.info == "text") {
      if (waiting_background >= 0) attach(&blocks[waiting_background], f);
      waiting_background = -1;
      continue;
    }
    if (f.info != "sh" && f.info.rfind("sh ", 0) != 0) continue;
    Block b{f.info, f.body, "", f.begin};
    if (b.kind == "sh background") {
      waiting_background = static_cast<int>(blocks.size());
    } else {
      int j = f.end + 1;
      while (j < n && lines[j].empty()) ++j;
      if (j < n && lines[j] == "```text") {
        Fence out = read_fence(j);
        attach(&b, out);
        i = out.end;
      }
    }
    blocks.push_back(std::move(b));
  }
  return blocks;
}

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) {
    s.replace(p, from.size(), to);
  }
  return s;
}

// Text with what differs from run to run replaced, trailing spaces and blank lines at either
// end removed.
std::string Normalize(const std::string& text) {
  static const std::regex kTime(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z)");
  static const std::regex kUuid(R"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})");
  static const std::regex kHash(R"([0-9a-f]{64})");
  static const std::regex kRate(R"(\d+ events/s, \d+\.\d s)");
  std::string out;
  std::size_t last = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kTime); it != std::sregex_iterator();
       ++it) {
    std::string t = it->str();
    out += text.substr(last, static_cast<std::size_t>(it->position()) - last);
    // Valid times in the documents are dates (midnight); any other time is a recording time.
    out += t.find("T00:00:00.000000Z") != std::string::npos ? t : "<time>";
    last = static_cast<std::size_t>(it->position() + it->length());
  }
  out += text.substr(last);
  out = std::regex_replace(out, kUuid, "<id>");
  out = std::regex_replace(out, kHash, "<hash>");
  out = std::regex_replace(out, kRate, "<rate>");
  std::istringstream in(out);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && line.back() == ' ') line.pop_back();
    lines.push_back(line);
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  std::size_t first = 0;
  while (first < lines.size() && lines[first].empty()) ++first;
  std::string joined;
  for (std::size_t i = first; i < lines.size(); ++i) joined += lines[i] + "\n";
  return joined;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Directory(const std::string& path) { return path.substr(0, path.rfind('/')); }

// Writes "document" to "path" with each block's ```text body replaced by what it printed.
void WriteUpdated(const std::vector<std::string>& document,
                  std::vector<std::pair<const Block*, std::string>> printed,
                  const std::string& path) {
  std::sort(printed.begin(), printed.end(),
            [](const auto& a, const auto& b) { return a.first->text_begin < b.first->text_begin; });
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  int next = 0;
  for (const auto& [block, text] : printed) {
    std::string body = text;
    while (!body.empty() && body.back() == '\n') body.pop_back();
    while (!body.empty() && body.front() == '\n') body.erase(0, 1);
    if (block->text_begin < 0) {
      if (!body.empty()) {
        ADD_FAILURE() << "line " << block->line << " prints something: add a ```text block";
      }
      continue;
    }
    for (; next < block->text_begin; ++next) out << document[next] << "\n";
    if (!body.empty()) out << body << "\n";
    next = block->text_end;
  }
  for (; next < static_cast<int>(document.size()); ++next) out << document[next] << "\n";
}

// Runs the ```sh blocks of the markdown file "path" (see the top of this file); "live_tail":
// the document must have a background block.
void RunDocument(const std::string& path, bool live_tail) {
  std::string markdown = ReadFile(path);
  ASSERT_FALSE(markdown.empty()) << "cannot read " << path;
  std::vector<std::string> document;
  std::istringstream in(markdown);
  for (std::string line; std::getline(in, line);) document.push_back(line);
  std::vector<Block> blocks = ParseBlocks(document);
  std::vector<std::pair<const Block*, std::string>> printed;
  ASSERT_GE(blocks.size(), 10u) << path << " lost its commands";

  TempDir dir;
  ServerProcess server(dir.Sub("timetrail-data"));
  ASSERT_TRUE(server.started());
  const std::string address = "127.0.0.1:" + std::to_string(server.port());
  const std::vector<std::string> env = {
      "PATH=" + Directory(testing::TimetrailBinary()) + ":/usr/local/bin:/usr/bin:/bin",
      "TIMETRAIL_SERVER=http://" + address, "LC_ALL=C", "TZ=UTC"};

  // One shell session for the whole document. Each block is sourced from a file with stdin
  // from /dev/null (so no command can read the next block) and stderr merged into stdout, as a
  // terminal shows them; a marker line ends each block's output.
  Child shell("/bin/bash", {"--noprofile", "--norc"}, env);
  shell.Write("cd '" + dir.path() + "'\n");
  const std::string marker = "@@block-done@@";

  struct Background {
    std::unique_ptr<Child> child;
    const Block* block;
  };
  std::vector<Background> background;
  int sourced = 0;
  int servers = 0;
  for (const Block& b : blocks) {
    std::string commands = ReplaceAll(b.commands, "localhost:7070", address);
    commands = ReplaceAll(commands, "127.0.0.1:7070", address);
    SCOPED_TRACE(path + " line " + std::to_string(b.line) + ":\n" + b.commands);
    if (b.kind == "sh server") {
      ++servers;
      continue;
    }
    if (b.kind == "sh background") {
      // A single command, run with exec so that stopping the shell stops it.
      while (!commands.empty() && commands.back() == '\n') commands.pop_back();
      ASSERT_EQ(commands.find('\n'), std::string::npos) << "a background block holds one command";
      std::vector<std::string> args = {"--noprofile", "--norc", "-c",
                                       "cd '" + dir.path() + "' && exec " + commands + " 2>&1"};
      background.push_back({std::make_unique<Child>("/bin/bash", args, env), &b});
      continue;
    }
    ASSERT_EQ(b.kind, "sh") << "unknown block kind";
    std::string file = dir.Sub("block-" + std::to_string(++sourced) + ".sh");
    std::ofstream(file) << commands;
    shell.Write("source '" + file + "' </dev/null 2>&1; printf '\\n%s\\n' '" + marker + "'\n");
    std::string output;
    for (;;) {
      std::string line = shell.ReadLine();
      if (line == marker) break;
      ASSERT_FALSE(shell.at_end()) << "the shell ended early; output so far:\n" << output;
      output += line + "\n";
    }
    output = ReplaceAll(output, address, "127.0.0.1:7070");
    printed.emplace_back(&b, output);
    EXPECT_EQ(Normalize(output), Normalize(b.expected))
        << "the command printed (left) something other than the document shows (right)";
  }
  EXPECT_GE(servers, 1) << path << " starts a server";
  if (live_tail) {
    EXPECT_FALSE(background.empty()) << path << " has no live tail";
  }

  const bool updating = std::getenv("TIMETRAIL_DOCS_UPDATE") != nullptr;
  // A background command must have printed its block's lines, all events committed above.
  // They are read one at a time and compared as they come, so a wrong line fails at once; only
  // a missing one (an event never delivered) leaves the read waiting, until the test's timeout.
  for (Background& bg : background) {
    SCOPED_TRACE(path + " line " + std::to_string(bg.block->line) + ":\n" + bg.block->commands);
    std::vector<std::string> want = testing::Lines(Normalize(bg.block->expected));
    std::string got;
    for (const std::string& want_line : want) {
      std::string line = bg.child->ReadLine();
      if (bg.child->at_end()) break;
      got += line + "\n";
      // (Updating the document reads as many lines as it shows, to replace them all.)
      if (Normalize(line) != want_line + "\n" && !updating) break;
    }
    EXPECT_EQ(Normalize(got), Normalize(bg.block->expected));
    printed.emplace_back(bg.block, got);
  }
  shell.CloseStdin();
  EXPECT_EQ(shell.Wait().code, 0);
  // Stopping the server ends every subscription (Ctrl-C in the document): a background command
  // then prints only that its event stream ended, and exits.
  EXPECT_EQ(server.Stop(SIGTERM), 0);
  for (Background& bg : background) {
    testing::Outcome r = bg.child->Wait();
    std::vector<std::string> rest = testing::Lines(r.out);
    EXPECT_EQ(rest.size(), 1u) << "printed after the expected lines:\n" << r.out;
    if (!rest.empty()) {
      EXPECT_NE(rest.back().find("ended"), std::string::npos) << r.out;
    }
  }
  if (const char* update = std::getenv("TIMETRAIL_DOCS_UPDATE")) {
    WriteUpdated(document, printed, std::string(update) + path.substr(path.rfind('/')));
  }
}

TEST(DocsTest, EveryTutorialCommandPrintsWhatTheTutorialShows) {
  RunDocument(TIMETRAIL_DOCS_DIR "/tutorial.md", /*live_tail=*/true);
}

TEST(DocsTest, EveryCliReferenceExamplePrintsWhatTheReferenceShows) {
  RunDocument(TIMETRAIL_DOCS_DIR "/cli.md", /*live_tail=*/false);
}

}  // namespace
}  // namespace timetrail
