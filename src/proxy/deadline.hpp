#pragma once
// Deadlines for any awaitable: remoteable::with_timeout.

#include <asio/experimental/awaitable_operators.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>

#include "rpc/error.hpp"

namespace remoteable {

/// Awaits `aw`, or fails with RemoteError(timeout) once `limit` has passed. On timeout `aw` is
/// cancelled: a remote evaluation's call is cancelled on the wire (the server skips it if it has
/// not started, and a coroutine method stops at its next co_await).
template <class T>
asio::awaitable<T> with_timeout(asio::awaitable<T> aw, std::chrono::steady_clock::duration limit) {
  using namespace asio::experimental::awaitable_operators;
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor, limit);
  auto waited = timer.async_wait(asio::use_awaitable);
  auto result = co_await (std::move(aw) || std::move(waited));
  if (result.index() == 1) throw RemoteError(ErrorKind::timeout, "the deadline passed");
  co_return std::get<0>(std::move(result));
}

inline asio::awaitable<void> with_timeout(asio::awaitable<void> aw, std::chrono::steady_clock::duration limit) {
  using namespace asio::experimental::awaitable_operators;
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor, limit);
  auto waited = timer.async_wait(asio::use_awaitable);
  auto result = co_await (std::move(aw) || std::move(waited));
  if (result.index() == 1) throw RemoteError(ErrorKind::timeout, "the deadline passed");
}

}  // namespace remoteable
