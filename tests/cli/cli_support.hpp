#pragma once
// Test support for the CLI's end-to-end tests: a walkthrough server on a free loopback port, a
// bounded way to await on an io_context, and a port where nothing answers.

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <exception>
#include <optional>
#include <string>

#include "node.hpp"
#include <remoteable/remoteable.hpp>

namespace cli_test {

using namespace std::chrono_literals;

/// The walkthrough's exports (root Node(1) with child Node(2), the Node class, five = 5) served
/// on 127.0.0.1 and a free port from a thread of its own. One per test, so state never leaks.
struct WalkthroughServer {
  WalkthroughServer() {
    example::register_node(types);
    server.emplace(remoteable::Endpoint{"127.0.0.1", 0}, types);
    example::export_walkthrough(server->server());
  }
  std::uint16_t port() const { return server->port(); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port()); }

  remoteable::Registry types;  // must outlive the server
  std::optional<remoteable::ThreadedServer> server;
};

/// Runs `context` until `aw` completes or `limit` passes (then the test fails). Waits on events.
template <class T>
T await(asio::io_context& context, asio::awaitable<T> aw, std::chrono::milliseconds limit = 20s) {
  std::optional<T> result;
  std::exception_ptr error;
  bool done = false;
  asio::co_spawn(
      context,
      [&]() -> asio::awaitable<void> {
        try {
          T value = co_await std::move(aw);  // not inside emplace(): GCC 12 coroutine bug
          result.emplace(std::move(value));
        } catch (...) {
          error = std::current_exception();
        }
        done = true;
      },
      asio::detached);
  context.restart();
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done && std::chrono::steady_clock::now() < deadline)
    context.run_one_for(deadline - std::chrono::steady_clock::now());
  if (!done) FAIL("timed out waiting for an awaitable");
  if (error) std::rethrow_exception(error);
  return std::move(*result);
}

/// A loopback port that was free a moment ago: connecting to it is refused.
inline std::uint16_t unused_port() {
  asio::io_context context;
  asio::ip::tcp::acceptor acceptor(context, {asio::ip::make_address("127.0.0.1"), 0});
  return acceptor.local_endpoint().port();
}

/// A socket that listens and never answers: connects complete in the kernel backlog, replies
/// never come.
struct SilentListener {
  asio::io_context context;
  asio::ip::tcp::acceptor acceptor{context, {asio::ip::make_address("127.0.0.1"), 0}};
  std::string address() const {
    return "127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());
  }
};

}  // namespace cli_test
