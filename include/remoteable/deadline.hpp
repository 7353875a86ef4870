#pragma once
// Deadlines for any awaitable: remoteable::with_timeout.

#include <asio/co_spawn.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/experimental/parallel_group.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <exception>

#include <remoteable/error.hpp>

namespace remoteable {

/// Awaits `aw`, or fails with RemoteError(timeout) once `limit` has passed, whichever comes
/// first (an error from `aw` is reported as it is). On timeout `aw` is cancelled: a remote
/// evaluation's call is cancelled on the wire, so the server skips it if it has not started and
/// stops a coroutine method at its next co_await. T must be default-constructible.
template <class T>
asio::awaitable<T> with_timeout(asio::awaitable<T> aw, std::chrono::steady_clock::duration limit) {
  namespace ex = asio::experimental;
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor, limit);
  auto group = ex::make_parallel_group(asio::co_spawn(executor, std::move(aw), ex::deferred),
                                       timer.async_wait(ex::deferred));
  auto [order, error, value, timer_error] = co_await group.async_wait(ex::wait_for_one(), asio::use_awaitable);
  if (order[0] == 1) throw RemoteError(ErrorKind::timeout, "the deadline passed");
  if (error) std::rethrow_exception(error);
  co_return std::move(value);
}

inline asio::awaitable<void> with_timeout(asio::awaitable<void> aw, std::chrono::steady_clock::duration limit) {
  namespace ex = asio::experimental;
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor, limit);
  auto group = ex::make_parallel_group(asio::co_spawn(executor, std::move(aw), ex::deferred),
                                       timer.async_wait(ex::deferred));
  auto [order, error, timer_error] = co_await group.async_wait(ex::wait_for_one(), asio::use_awaitable);
  if (order[0] == 1) throw RemoteError(ErrorKind::timeout, "the deadline passed");
  if (error) std::rethrow_exception(error);
}

}  // namespace remoteable
