// Accept failures (issue 8 item 3): a server out of file descriptors backs off instead of
// retrying at once, logs a bounded number of lines, and serves again once descriptors free up.
// The test lowers RLIMIT_NOFILE for its own process (server and clients), so it has a binary of
// its own.

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "counted.hpp"
#include "ring_log.hpp"
#include "support.hpp"

using namespace std::chrono_literals;

namespace {

/// The highest open file descriptor of this process.
int highest_fd() {
  int highest = -1;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (auto* entry = ::readdir(dir)) highest = std::max(highest, std::atoi(entry->d_name));
    ::closedir(dir);
  }
  return highest;
}

/// Lowers the soft RLIMIT_NOFILE for its lifetime; puts the old limits back however the test
/// ends.
class LoweredFileLimit {
 public:
  explicit LoweredFileLimit(rlim_t soft) {
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &old_) == 0);
    rlimit lowered = old_;
    lowered.rlim_cur = std::min(soft, old_.rlim_max);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &lowered) == 0);
  }
  ~LoweredFileLimit() { ::setrlimit(RLIMIT_NOFILE, &old_); }
  LoweredFileLimit(const LoweredFileLimit&) = delete;
  LoweredFileLimit& operator=(const LoweredFileLimit&) = delete;

 private:
  rlimit old_{};
};

/// Raw TCP sockets, closed at the end of the test whatever happens.
struct Sockets {
  std::vector<int> fds;
  ~Sockets() { close_all(); }
  void close_all() {
    for (int fd : fds) ::close(fd);
    fds.clear();
  }
};

std::size_t accept_lines(const test::RingLog& log) { return log.count("warning", "accept failed"); }

}  // namespace

TEST_CASE("a server out of file descriptors backs off, logs a bounded number of lines, and recovers") {
  test::RingLog log("accept");
  remoteable::ServerOptions options;
  options.logger = log.logger;
  test::WalkthroughServer s;  // for its registry and exports
  s.server.reset();
  s.server.emplace(remoteable::Endpoint{"127.0.0.1", 0}, s.types, options);
  example::export_walkthrough(s.server->server());
  asio::io_context context;  // made now: it needs descriptors of its own

  // The sockets of the burst are made first, under the normal limit; their connects need no
  // descriptor, but the server needs one for each connection it accepts. With the limit
  // lowered to a few above what is open, it accepts a few and then runs out, with the rest of
  // the burst waiting in the listen queue.
  constexpr int burst = 64;
  Sockets sockets;
  for (int i = 0; i < burst; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockets.fds.push_back(fd);
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(s.server->port());
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

  auto start = std::chrono::steady_clock::now();
  {
    LoweredFileLimit limit(static_cast<rlim_t>(highest_fd() + 1 + 8));
    for (int fd : sockets.fds) ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);

    // The server retries: after the first failure it reports the failures since the last
    // line, at most once per interval. (Retrying at once logged about 400,000 lines a second.)
    CHECK(test::eventually(context, [&] { return log.has("warning", "since the last report"); }));
    auto lines = accept_lines(log);
    auto seconds = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start).count();
    INFO(lines << " accept failure lines in " << seconds << " s");
    CHECK(lines <= static_cast<std::size_t>(2 + seconds));

    // The burst goes: descriptors free up, and the server accepts again by itself, with the
    // limit still low.
    sockets.close_all();
    auto client = test::connect(context, s.endpoint());
    CHECK(test::await(context, (client.fetch("root").call("child", 0).attr("value") + 4).as<std::int64_t>()) == 6);
    CHECK(test::eventually(context, [&] { return log.has("info", "accepting again after"); }));
    client.close();
  }
  auto lines = accept_lines(log);
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start).count();
  INFO(lines << " accept failure lines in " << seconds << " s");
  CHECK(lines <= static_cast<std::size_t>(2 + seconds));
}
