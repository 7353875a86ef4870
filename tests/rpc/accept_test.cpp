// A server out of descriptors (issue 8 item 3): accept fails with EMFILE, the server backs off
// (it does not spin on the connection left in the kernel's queue), logs at most one line per
// interval, and accepts again once descriptors are free.
//
// The process's descriptor limit is lowered for the test and restored after it, whatever happens.
// Descriptors are used up by raw client sockets of this test, so the connections they make wait
// in the server's accept queue while it has no descriptor left to accept them with.

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cerrno>
#include <dirent.h>
#include <vector>

#include "counted.hpp"
#include "ring_log.hpp"
#include "support.hpp"

using namespace std::chrono_literals;

namespace {

/// Descriptors open in this process now.
int open_descriptors() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d)) ++n;
    ::closedir(d);
    n -= 3;  // ".", ".." and the directory's own descriptor
  }
  return n;
}

/// Lowers the soft descriptor limit; restores it when destroyed.
class DescriptorLimit {
 public:
  explicit DescriptorLimit(rlim_t soft) {
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved_) == 0);
    rlimit lowered = saved_;
    lowered.rlim_cur = soft;
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &lowered) == 0);
  }
  ~DescriptorLimit() { restore(); }
  void restore() {
    if (!restored_) ::setrlimit(RLIMIT_NOFILE, &saved_);
    restored_ = true;
  }

 private:
  rlimit saved_{};
  bool restored_ = false;
};

/// Raw sockets connected to a loopback port (blocking connects: loopback completes them in the
/// kernel, accepted or not). Closed when destroyed.
class Sockets {
 public:
  explicit Sockets(std::uint16_t port) : port_(port) {}
  ~Sockets() { close_all(); }
  /// Opens and connects one more; false when no descriptor is left.
  bool open_one() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      REQUIRE((errno == EMFILE || errno == ENFILE));
      return false;
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port_);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    fds_.push_back(fd);
    return true;
  }
  void close_one() {
    REQUIRE(!fds_.empty());
    ::close(fds_.back());
    fds_.pop_back();
  }
  void close_all() {
    for (int fd : fds_) ::close(fd);
    fds_.clear();
  }
  std::size_t size() const { return fds_.size(); }

 private:
  std::uint16_t port_;
  std::vector<int> fds_;
};

}  // namespace

TEST_CASE("a server out of descriptors backs off, logs once per interval, and accepts again") {
  test::RingLog log("server", spdlog::level::info);
  remoteable::Registry types;
  example::register_node(types);
  remoteable::ServerOptions options;
  options.logger = log.logger;
  remoteable::ThreadedServer server({"127.0.0.1", 0}, types, options);
  example::export_walkthrough(server.server());
  remoteable::Endpoint endpoint{"127.0.0.1", server.port()};

  // A first client and call, so that the connection machinery is set up before descriptors go.
  {
    asio::io_context context;
    auto client = test::connect(context, endpoint);
    CHECK(test::await(context, client.fetch("root").attr("value").as<std::int64_t>()) == 1);
    client.close();
    CHECK(test::eventually(context, [&] { return server.server().connections() == 0; }));
  }

  auto started = std::chrono::steady_clock::now();
  std::size_t used = 0;
  {
    DescriptorLimit limit(static_cast<rlim_t>(open_descriptors() + 16));
    Sockets sockets(server.port());
    // Use every descriptor. The server accepts some of the connections (each takes one of its
    // descriptors too) until none is left; then, to be sure one connection waits in the queue,
    // free one descriptor and take it back at once with a new connection, until the server says
    // it could not accept.
    while (sockets.open_one()) {
    }
    bool failed = test::eventually([&] { return log.has("warning", "accept failed"); }, 2s);
    for (int i = 0; !failed && i < 50; ++i) {
      sockets.close_one();
      REQUIRE(sockets.open_one());
      failed = test::eventually([&] { return log.has("warning", "accept failed"); }, 200ms);
    }
    REQUIRE(failed);
    CHECK(log.has("warning", "Too many open files"));
    used = sockets.size();

    // Still out of descriptors: the server keeps failing, but backs off (the wait doubles up to
    // a second) and reports at most once per second, plus the first line. Wait until the
    // summary line of a later interval shows it kept trying.
    CHECK(test::eventually([&] { return log.has("warning", "failure(s) since the last report"); }, 20s));
    auto elapsed = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started);
    CHECK(log.count("warning", "accept failed") <= static_cast<std::size_t>(elapsed.count()) + 2);
    CHECK(log.count("info", "accepting again") == 0);
    // Descriptors come back (the sockets close, then the limit is restored).
  }
  INFO("client sockets held: " << used);

  // It accepts again, within its longest back-off (bounded here by the usual wait), and serves.
  asio::io_context context;
  auto client = test::connect(context, endpoint);
  CHECK(test::await(context, client.fetch("root").attr("value").as<std::int64_t>()) == 1);
  CHECK(test::eventually([&] { return log.has("info", "accepting again after"); }));
  client.close();
  context.restart();
  context.poll();
}
