// Test support for the CLI tests: runs the real `timetrail` binary (or any program) as a child
// process with pipes on stdin, stdout and stderr, and collects what it printed and its exit code.
#ifndef TIMETRAIL_TESTS_CLI_CLI_HARNESS_H_
#define TIMETRAIL_TESTS_CLI_CLI_HARNESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace timetrail::testing {

// The `timetrail` binary of this build.
const char* TimetrailBinary();

struct Outcome {
  int code = -1;  // exit code; 128 + signal when killed by one
  std::string out;
  std::string err;
};

// A child process. The destructor kills it (SIGKILL) if it still runs. Not thread-safe.
class Child {
 public:
  // Runs the timetrail binary with "args"; "env" entries ("NAME=value") are added to the
  // environment, from which TIMETRAIL_SERVER is removed so tests pick their server explicitly.
  explicit Child(const std::vector<std::string>& args, const std::vector<std::string>& env = {});
  // Runs "program" (a path) with "args".
  Child(const std::string& program, const std::vector<std::string>& args,
        const std::vector<std::string>& env);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  void Write(const std::string& s);
  void CloseStdin();
  // One line of stdout without its newline; "" at the end of the output.
  std::string ReadLine();
  // Whether ReadLine met the end of stdout (the child closed it or exited).
  bool at_end() const { return at_end_; }
  // Closes stdin, waits for the exit and collects the rest of stdout and stderr.
  Outcome Wait();
  pid_t pid() const { return pid_; }

 private:
  void Start(const std::string& program, const std::vector<std::string>& args,
             const std::vector<std::string>& env);
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1, err_ = -1;
  bool at_end_ = false;
};

// Runs the timetrail binary to completion with "stdin_text" on its stdin.
Outcome Cli(const std::vector<std::string>& args, const std::string& stdin_text = "");

// The exit code, stdout and stderr, for failure messages.
std::string Describe(const Outcome& r);

// The non-empty lines of "text".
std::vector<std::string> Lines(const std::string& text);

}  // namespace timetrail::testing

#endif  // TIMETRAIL_TESTS_CLI_CLI_HARNESS_H_
