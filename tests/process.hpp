#pragma once
// A child process with pipes on its stdin and stdout, for tests that kill a real peer or tell it
// when to go on.

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
#include <vector>

extern char** environ;

namespace test {

class Process {
 public:
  explicit Process(std::vector<std::string> argv) {
    // Close-on-exec: neither this child nor one started later inherits the test's ends.
    int fds[2], ins[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    if (pipe2(ins, O_CLOEXEC) != 0) {
      close(fds[0]);
      close(fds[1]);
      throw std::runtime_error("pipe failed");
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, ins[0], STDIN_FILENO);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    close(ins[0]);
    out_ = fds[0];
    in_ = ins[1];
    if (rc != 0) {
      close(out_);
      close(in_);
      throw std::runtime_error("cannot start " + argv[0]);
    }
  }
  ~Process() {
    kill(SIGKILL);
    wait();
    close(out_);
    close(in_);
  }

  /// Writes `line` and a newline to its stdin; false if it could not (the child is gone). A
  /// line fits the pipe's buffer, so this does not wait on the child.
  bool write_line(const std::string& line) {
    // A child that has exited must not kill the test with SIGPIPE.
    ::signal(SIGPIPE, SIG_IGN);
    const std::string text = line + "\n";
    return ::write(in_, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  }

  /// The next line of its stdout, waiting at most `limit`; nullopt on timeout or EOF.
  std::optional<std::string> read_line(std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (true) {
      if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
        auto line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[512];
      auto n = ::read(out_, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  void kill(int signal) {
    if (pid_ > 0) ::kill(pid_, signal);
  }
  /// Waits for it to exit; returns the wait status.
  int wait() {
    int status = 0;
    if (pid_ > 0 && waitpid(pid_, &status, 0) == pid_) pid_ = -1;
    return status;
  }
  /// Waits at most `limit` for it to exit (on a pidfd, no sleep); its wait status, or nullopt
  /// if it still runs.
  std::optional<int> wait_for(std::chrono::milliseconds limit) {
    if (pid_ <= 0) return std::nullopt;
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    if (pidfd < 0) return std::nullopt;
    pollfd p{pidfd, POLLIN, 0};
    auto deadline = std::chrono::steady_clock::now() + limit;
    int ready = 0;
    do {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      ready = poll(&p, 1, static_cast<int>(std::max<long long>(left.count(), 0)));
    } while (ready < 0 && errno == EINTR);
    close(pidfd);
    if (ready <= 0) return std::nullopt;
    return wait();
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  int in_ = -1;
  std::string buffer_;
};

}  // namespace test
