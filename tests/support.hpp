#pragma once
// Test support: a walkthrough server on a free loopback port, and a bounded way to await.

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "node.hpp"
#include <remoteable/remoteable.hpp>

namespace test {

using namespace std::chrono_literals;

/// Runs `context` until `aw` completes or `limit` passes (then the test fails). A bounded wait
/// on events, not a sleep.
template <class T>
T await(asio::io_context& context, asio::awaitable<T> aw, std::chrono::milliseconds limit = 20s) {
  std::optional<T> result;
  std::exception_ptr error;
  bool done = false;
  asio::co_spawn(context, std::move(aw), [&](std::exception_ptr e, T value) {
    error = e;
    if (!e) result.emplace(std::move(value));
    done = true;
  });
  context.restart();
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done && std::chrono::steady_clock::now() < deadline)
    context.run_one_for(deadline - std::chrono::steady_clock::now());
  if (!done) FAIL("timed out waiting for an awaitable");
  if (error) std::rethrow_exception(error);
  return std::move(*result);
}

inline void await(asio::io_context& context, asio::awaitable<void> aw, std::chrono::milliseconds limit = 20s) {
  await(context, [](asio::awaitable<void> inner) -> asio::awaitable<bool> {
    co_await std::move(inner);
    co_return true;
  }(std::move(aw)), limit);
}

/// The error kind an awaitable fails with (the test fails if it succeeds).
template <class T>
remoteable::ErrorKind error_of(asio::io_context& context, asio::awaitable<T> aw) {
  try {
    await(context, std::move(aw));
  } catch (const remoteable::RemoteError& e) {
    return e.kind();
  }
  FAIL("expected a RemoteError");
  return remoteable::ErrorKind::user;
}

/// The server's message for a failing awaitable (the test fails if it succeeds).
template <class T>
std::string message_of(asio::io_context& context, asio::awaitable<T> aw) {
  try {
    await(context, std::move(aw));
  } catch (const remoteable::RemoteError& e) {
    return e.message();
  }
  FAIL("expected a RemoteError");
  return {};
}

/// A walkthrough server on 127.0.0.1 and a free port, serving on its own thread.
struct WalkthroughServer {
  WalkthroughServer() {
    example::register_node(types);
    server.emplace(remoteable::Endpoint{"127.0.0.1", 0}, types);
    example::export_walkthrough(server->server());
  }
  remoteable::Endpoint endpoint() const { return {"127.0.0.1", server->port()}; }

  remoteable::Registry types;
  std::optional<remoteable::ThreadedServer> server;
};

/// Connects a client, bounded like every other wait. (co_spawn needs a default-constructible
/// result type, hence the optional.)
inline remoteable::Client connect(asio::io_context& context, remoteable::Endpoint endpoint,
                                  remoteable::ClientOptions options = {}) {
  auto wrapped = [](asio::any_io_executor ex, remoteable::Endpoint ep,
                    remoteable::ClientOptions opts) -> asio::awaitable<std::optional<remoteable::Client>> {
    co_return co_await remoteable::Client::connect(ex, std::move(ep), std::move(opts));
  };
  return *await(context, wrapped(context.get_executor(), std::move(endpoint), std::move(options)));
}

/// A walkthrough server and a client connected to it.
struct Connected : WalkthroughServer {
  explicit Connected(remoteable::ClientOptions options = {}) : client(connect(context, endpoint(), options)) {}
  ~Connected() {
    client.close();
    context.restart();
    context.poll();  // runs the close; nothing here waits
  }
  template <class T> T run(asio::awaitable<T> aw) { return await(context, std::move(aw)); }
  void run(asio::awaitable<void> aw) { await(context, std::move(aw)); }

  asio::io_context context;
  remoteable::Client client;
};

}  // namespace test
