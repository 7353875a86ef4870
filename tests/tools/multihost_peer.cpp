// The three processes of the three-hosts test (tests/multihost/three_hosts_test.cpp), one mode
// each; the test runs each in a network namespace of its own and reads what they print.
//
//   multihost_peer serve-a HOST:PORT   exports "counter", whose next() counts up from 1
//   multihost_peer serve-b HOST:PORT   exports "relay": hold(handle) keeps a handle, ping()
//                                      calls next() on it, last_failure() says how ping last failed
//   multihost_peer client A_HOST:PORT B_HOST:PORT
//
// The servers print "serving HOST:PORT" (the port bound, so port 0 works) and run until killed.
// The client gives B a handle to A's counter (B's calls on it go B -> client -> A), pings through
// B, prints "waiting for cut" and waits for a line "cut" on stdin; then it pings once more and
// reports how that ended. Every line it prints is listed in run_client. On anything unexpected
// it prints "error: WHAT" and exits 1.
//
// A process whose parent (the test) dies is killed with it (PR_SET_PDEATHSIG): a test killed by
// its timeout leaves no server running in a namespace.

#include <sys/prctl.h>
#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/read_until.hpp>
#include <asio/streambuf.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <iostream>
#include <istream>
#include <memory>
#include <string>

#include <remoteable/remoteable.hpp>

namespace {

using namespace std::chrono_literals;

/// How long a sent segment may stay unacknowledged before a connection counts as cut. Short, so
/// that the test's bound on the failing call stays well inside its ctest timeout.
constexpr std::chrono::milliseconds peer_timeout = 2000ms;

struct Counter {
  std::int64_t count = 0;
  std::int64_t next() { return ++count; }
};

/// B's object: keeps a handle from another connection (the client's, pointing on to A) and calls it.
struct Relay {
  remoteable::Handle held;
  std::string failure = "none";

  void hold(remoteable::Handle handle) { held = std::move(handle); }
  /// Evaluated on B: the call goes to the client, which forwards it to A.
  asio::awaitable<std::int64_t> ping() {
    try {
      co_return co_await held.call("next").as<std::int64_t>();
    } catch (const remoteable::RemoteError& e) {
      // Recorded here, where the call was made: what reaches the client through B's answer is
      // another hop's view.
      failure = std::string(remoteable::to_string(e.kind()));
      throw;
    }
  }
  std::string last_failure() const { return failure; }
};

int serve(const std::string& mode, const remoteable::Endpoint& endpoint) {
  remoteable::Registry types;
  types.class_<Counter>("Counter").method("next", &Counter::next);
  types.class_<Relay>("Relay")
      .method("hold", &Relay::hold)
      .method("ping", &Relay::ping)
      .method("last_failure", &Relay::last_failure);
  remoteable::ServerOptions options;
  options.actor_threads = 1;
  options.network_threads = 1;
  options.peer_timeout = peer_timeout;
  remoteable::Server server{endpoint, types, options};
  if (mode == "serve-a") server.export_object(std::make_shared<Counter>(), "counter");
  else server.export_object(std::make_shared<Relay>(), "relay");
  std::cout << "serving " << endpoint.host << ":" << server.port() << std::endl;
  server.run();
  return 0;
}

/// The next line of stdin, without blocking the context (the client's connections are served
/// on it: B's calls through the client are forwarded from here).
asio::awaitable<std::string> read_stdin_line() {
  asio::posix::stream_descriptor in(co_await asio::this_coro::executor, ::dup(STDIN_FILENO));
  asio::streambuf buffer;
  co_await asio::async_read_until(in, buffer, '\n', asio::use_awaitable);
  std::istream stream(&buffer);
  std::string line;
  std::getline(stream, line);
  co_return line;
}

/// Lines printed, in order: "connected"; "ping N" three times (B's calls on A's counter: 1, 2, 3);
/// "direct 4" (the client's own call on the counter: the same object); "waiting for cut"; then,
/// after "cut" on stdin, "after cut: error KIND MS" or "after cut: value N MS" (how B's next
/// ping ended and how long it took); "b saw: KIND" (how B's own call on the handle failed, asked
/// of B: B still serves); "a connected: BOOL"; "done".
asio::awaitable<int> run_client(remoteable::Endpoint a_endpoint, remoteable::Endpoint b_endpoint) {
  // One co_await per full-expression and options as named variables (GCC 12, see client.hpp).
  auto executor = co_await asio::this_coro::executor;
  remoteable::ClientOptions options;
  options.peer_timeout = peer_timeout;
  auto a = co_await remoteable::Client::connect(executor, a_endpoint, options);
  auto b = co_await remoteable::Client::connect(executor, b_endpoint, options);
  std::cout << "connected" << std::endl;

  auto relay = b.fetch("relay");
  co_await relay.call("hold", a.fetch("counter")).get();
  for (std::int64_t expected = 1; expected <= 3; ++expected) {
    auto got = co_await relay.call("ping").as<std::int64_t>();
    std::cout << "ping " << got << std::endl;
    if (got != expected) co_return 1;
  }
  auto direct = co_await a.fetch("counter").call("next").as<std::int64_t>();
  std::cout << "direct " << direct << std::endl;

  std::cout << "waiting for cut" << std::endl;
  auto line = co_await read_stdin_line();
  if (line != "cut") {
    std::cout << "error: expected cut, read '" << line << "'" << std::endl;
    co_return 1;
  }

  const auto start = std::chrono::steady_clock::now();
  std::string outcome;
  try {
    auto got = co_await relay.call("ping").as<std::int64_t>();
    outcome = "value " + std::to_string(got);
  } catch (const remoteable::RemoteError& e) {
    outcome = "error " + std::string(remoteable::to_string(e.kind()));
  }
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  std::cout << "after cut: " << outcome << " " << took.count() << std::endl;

  auto seen = co_await relay.call("last_failure").as<std::string>();
  std::cout << "b saw: " << seen << std::endl;
  std::cout << "a connected: " << (a.connected() ? "true" : "false") << std::endl;
  std::cout << "done" << std::endl;
  co_return 0;
}

int client(const remoteable::Endpoint& a, const remoteable::Endpoint& b) {
  asio::io_context context;
  int status = 1;
  asio::co_spawn(context, run_client(a, b), [&](std::exception_ptr error, int result) {
    status = result;
    if (!error) return;
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      std::cout << "error: " << e.what() << std::endl;
    }
    status = 1;
  });
  context.run();
  return status;
}

}  // namespace

int main(int argc, char** argv) try {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() == 1) return 1;  // the parent died before prctl took effect
  const std::string mode = argc > 1 ? argv[1] : "";
  if ((mode == "serve-a" || mode == "serve-b") && argc == 3) return serve(mode, remoteable::Endpoint::parse(argv[2]));
  if (mode == "client" && argc == 4) return client(remoteable::Endpoint::parse(argv[2]), remoteable::Endpoint::parse(argv[3]));
  std::cerr << "usage: multihost_peer serve-a HOST:PORT | serve-b HOST:PORT | client A_HOST:PORT B_HOST:PORT\n";
  return 2;
} catch (const std::exception& e) {
  std::cout << "error: " << e.what() << std::endl;
  return 1;
}
