#include "cli/cli_harness.h"

#include "support/store_helpers.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <sstream>
#include <thread>

namespace timetrail::testing {
namespace {

// Reads "fd" to its end.
std::string Drain(int fd) {
  std::string s;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<std::size_t>(n));
  return s;
}

}  // namespace

const char* TimetrailBinary() { return TIMETRAIL_BIN; }

Child::Child(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  Start(TIMETRAIL_BIN, args, env);
}

Child::Child(const std::string& program, const std::vector<std::string>& args,
             const std::vector<std::string>& env) {
  Start(program, args, env);
}

namespace {

// Against PostgreSQL (TIMETRAIL_TEST_STORE=postgresql, under tests/support/with_postgres.sh),
// the timetrail binary's "--data DIR" becomes "--store URL --store-schema S" with the schema
// named after DIR (support/store_helpers.h), so the same tests run against both backends.
std::vector<std::string> ForTestStore(const std::string& program,
                                      const std::vector<std::string>& args) {
  if (program != TimetrailBinary() || TestStoreUrl() == nullptr) return args;
  std::vector<std::string> out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--data" && i + 1 < args.size()) {
      Options options;
      const std::string location = StoreLocation(args[i + 1], options);
      out.insert(out.end(), {"--store", location, "--store-schema", options.postgres_schema});
      ++i;
    } else {
      out.push_back(args[i]);
    }
  }
  return out;
}

}  // namespace

void Child::Start(const std::string& program, const std::vector<std::string>& given_args,
                  const std::vector<std::string>& env) {
  const std::vector<std::string> args = ForTestStore(program, given_args);
  // A child that exits before reading all its input must fail the test, not kill it.
  ::signal(SIGPIPE, SIG_IGN);
  int in[2], out[2], err[2];
  // Close-on-exec: another child started later must not hold this child's pipes open (its
  // stdin would never reach end-of-file). dup2 clears the flag on the child's 0, 1 and 2.
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    std::abort();
  }
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) ::close(fd);
    ::unsetenv("TIMETRAIL_SERVER");
    for (const std::string& e : env) ::putenv(::strdup(e.c_str()));
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(program.c_str()));
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(program.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  in_ = in[1];
  out_ = out[0];
  err_ = err[0];
}

Child::~Child() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  for (int fd : {in_, out_, err_}) {
    if (fd >= 0) ::close(fd);
  }
}

void Child::Write(const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(in_, s.data() + off, s.size() - off);
    if (n <= 0) break;
    off += static_cast<std::size_t>(n);
  }
}

void Child::CloseStdin() {
  if (in_ >= 0) ::close(in_);
  in_ = -1;
}

std::string Child::ReadLine() {
  std::string line;
  char c;
  while (::read(out_, &c, 1) == 1) {
    if (c == '\n') return line;
    line.push_back(c);
  }
  at_end_ = true;
  return line;
}

Outcome Child::Wait() {
  CloseStdin();
  Outcome r;
  std::thread t([&] { r.err = Drain(err_); });
  r.out = Drain(out_);
  t.join();
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

Outcome Cli(const std::vector<std::string>& args, const std::string& stdin_text) {
  Child c(args);
  c.Write(stdin_text);
  return c.Wait();
}

std::string Describe(const Outcome& r) {
  return "exit " + std::to_string(r.code) + "\nstdout: " + r.out + "\nstderr: " + r.err;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

}  // namespace timetrail::testing
