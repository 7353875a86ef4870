#include "subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

extern char** environ;

namespace cli_test {

namespace {

[[noreturn]] void fail(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

struct Pipe {
  int read = -1;
  int write = -1;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) fail("pipe2");
    read = fds[0];
    write = fds[1];
  }
};

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

Completed run_process(const std::vector<std::string>& argv, std::string_view input,
                      std::chrono::milliseconds limit) {
  // A child that exits before reading all its input must not kill the test with SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);

  Pipe in, out, err;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.read, 0);
  posix_spawn_file_actions_adddup2(&actions, out.write, 1);
  posix_spawn_file_actions_adddup2(&actions, err.write, 2);

  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close_fd(in.read);
  close_fd(out.write);
  close_fd(err.write);
  if (rc != 0) {
    close_fd(in.write);
    close_fd(out.read);
    close_fd(err.read);
    errno = rc;
    fail("posix_spawn");
  }

  Completed result;
  ::fcntl(in.write, F_SETFL, ::fcntl(in.write, F_GETFL) | O_NONBLOCK);
  if (input.empty()) close_fd(in.write);

  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (out.read >= 0 || err.read >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      break;
    }
    pollfd fds[3];
    nfds_t n = 0;
    int* owners[3];
    auto watch = [&](int& fd, short events) {
      if (fd < 0) return;
      fds[n] = {fd, events, 0};
      owners[n++] = &fd;
    };
    watch(in.write, POLLOUT);
    watch(out.read, POLLIN);
    watch(err.read, POLLIN);
    int ready = ::poll(fds, n, static_cast<int>(left.count()));
    if (ready < 0 && errno != EINTR) fail("poll");
    for (nfds_t i = 0; i < n && ready > 0; ++i) {
      if (fds[i].revents == 0) continue;
      int& fd = *owners[i];
      if (fd == in.write) {
        ssize_t wrote = ::write(fd, input.data(), input.size());
        if (wrote > 0) input.remove_prefix(static_cast<std::size_t>(wrote));
        if (wrote < 0 && errno != EAGAIN && errno != EINTR) close_fd(fd);  // the child closed it
        else if (input.empty()) close_fd(fd);
      } else {
        char buf[4096];
        ssize_t got = ::read(fd, buf, sizeof buf);
        if (got > 0) (fd == out.read ? result.out : result.err).append(buf, static_cast<std::size_t>(got));
        else if (got == 0 || (errno != EAGAIN && errno != EINTR)) close_fd(fd);
      }
    }
  }
  close_fd(in.write);
  close_fd(out.read);
  close_fd(err.read);

  // The pipes are at end of file, yet the child may still be shutting down: wait for its exit on
  // a pidfd, within what is left of the limit.
  if (!result.timed_out) {
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfd >= 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{pidfd, POLLIN, 0};
      int ready = 0;
      do {
        ready = ::poll(&p, 1, static_cast<int>(std::max<long long>(left.count(), 0)));
      } while (ready < 0 && errno == EINTR);
      if (ready == 0) result.timed_out = true;
      ::close(pidfd);
    }
  }
  if (result.timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) result.exit_code = 128 + WTERMSIG(status);
  return result;
}

}  // namespace cli_test
