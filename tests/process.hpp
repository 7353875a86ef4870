#pragma once
// A child process with a pipe on its stdout (and, if asked, one on its stdin), for tests that
// kill a real peer or talk to a real program line by line. Every wait is bounded.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

extern char** environ;

namespace test {

class Process {
 public:
  enum class Stdin { inherit, pipe };

  /// Starts argv[0] (a path). With Stdin::pipe its standard input is a pipe that write() feeds
  /// and close_stdin() ends. The pipes are close-on-exec, so a later child does not inherit the
  /// ends kept here (an inherited stdin end would keep this child from ever seeing end of file).
  explicit Process(std::vector<std::string> argv, Stdin input = Stdin::inherit) {
    int out[2];
    int in[2] = {-1, -1};
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    if (input == Stdin::pipe && ::pipe2(in, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    if (in[0] >= 0) posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    out_ = out[0];
    if (in[0] >= 0) {
      ::close(in[0]);
      in_ = in[1];
      // A child that is gone must fail write(), not kill the test with SIGPIPE.
      ::signal(SIGPIPE, SIG_IGN);
    }
    if (rc != 0) {
      pid_ = -1;
      throw std::runtime_error("cannot start " + argv[0]);
    }
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process() {
    kill(SIGKILL);
    wait();
    close_stdin();
    ::close(out_);
  }

  /// The next line of its stdout, waiting at most `limit` (zero: only what has already been
  /// written); nullopt on timeout or EOF.
  std::optional<std::string> read_line(std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (true) {
      if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
        auto line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, left_ms(deadline)) <= 0) {
        if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
        continue;
      }
      char chunk[512];
      auto n = ::read(out_, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  /// Writes `data` to its stdin (Stdin::pipe), waiting at most `limit` for room in the pipe.
  /// False if it could not write it all: timeout, or the child closed its end.
  bool write(std::string_view data, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!data.empty()) {
      if (in_ < 0) return false;
      pollfd p{in_, POLLOUT, 0};
      if (::poll(&p, 1, left_ms(deadline)) <= 0) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        continue;
      }
      auto n = ::write(in_, data.data(), data.size());
      if (n < 0 && errno != EINTR && errno != EAGAIN) return false;
      if (n > 0) data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  /// Writes `line` and a newline to its stdin (Stdin::pipe); false if it could not.
  bool write_line(const std::string& line) { return write(line + "\n"); }
  /// Ends its stdin: the child reads end of file.
  void close_stdin() {
    if (in_ >= 0) ::close(in_);
    in_ = -1;
  }

  pid_t pid() const { return pid_; }
  void kill(int signal) {
    if (pid_ > 0) ::kill(pid_, signal);
  }
  /// Waits for it to exit; returns the wait status.
  int wait() {
    int status = 0;
    if (pid_ > 0 && waitpid(pid_, &status, 0) == pid_) pid_ = -1;
    return status;
  }
  /// Waits at most `limit` for it to exit (on a pidfd, no polling); its wait status, or nullopt
  /// if it is still running (or was reaped already).
  std::optional<int> wait_for(std::chrono::milliseconds limit) {
    if (pid_ <= 0) return std::nullopt;
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    if (pidfd < 0) throw std::runtime_error("pidfd_open failed");
    auto deadline = std::chrono::steady_clock::now() + limit;
    pollfd p{pidfd, POLLIN, 0};
    int ready = 0;
    do ready = ::poll(&p, 1, left_ms(deadline));
    while (ready < 0 && errno == EINTR);
    ::close(pidfd);
    if (ready <= 0) return std::nullopt;
    return wait();
  }

 private:
  static int left_ms(std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<std::chrono::milliseconds::rep>(left.count(), 0));
  }

  pid_t pid_ = -1;
  int out_ = -1;
  int in_ = -1;
  std::string buffer_;
};

}  // namespace test
