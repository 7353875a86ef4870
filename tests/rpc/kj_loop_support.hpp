#pragma once
// Test support for the module tests of src/rpc: a KjLoop on an io_context the test thread runs,
// bounded waits on conditions, and a bounded wait for one KJ promise made on the loop.

#include <kj/async.h>

#include <asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <type_traits>

#include "rpc/event_port.hpp"

namespace test {

using namespace std::chrono_literals;
using remoteable::detail::KjLoop;

/// Runs `context` on this thread until `pred` holds or `limit` passes; returns whether it holds.
/// A bounded wait on an event, not a sleep.
template <class Pred>
bool run_until(asio::io_context& context, Pred pred, std::chrono::milliseconds limit = 20s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    context.restart();
    context.run_one_for(std::min<std::chrono::steady_clock::duration>(deadline - now, 10ms));
  }
  return true;
}

/// Runs what is ready on `context` now, without waiting for anything.
inline void run_ready(asio::io_context& context) {
  context.restart();
  context.poll();
}

template <class P> struct promise_value;
template <class T> struct promise_value<kj::Promise<T>> { using type = T; };

/// An io_context and a KjLoop on it. The test thread runs the context; KJ objects made on the
/// loop must be gone before the fixture is (use in_scope()).
struct LoopFixture {
  asio::io_context context;
  std::shared_ptr<KjLoop> loop = std::make_shared<KjLoop>(context.get_executor());

  /// Runs `f` on this thread with the loop current (while the context is not running).
  template <class F>
  void in_scope(F&& f) {
    KjLoop::Scope scope(*loop);
    f();
  }

  /// Makes a promise with `make()` on the loop and runs the context until it settles. Returns
  /// its value (true for a void promise) or rethrows its kj::Exception; the test fails if it
  /// does not settle within `limit`.
  template <class Make>
  auto settle(Make make, std::chrono::milliseconds limit = 20s) {
    using T = typename promise_value<decltype(make())>::type;
    using V = std::conditional_t<std::is_void_v<T>, bool, T>;
    std::optional<V> value;
    std::optional<kj::Exception> error;
    kj::Maybe<kj::Promise<void>> held;
    loop->run([&] {
      // Both continuations are passed as temporaries: then() keeps a reference to an lvalue.
      if constexpr (std::is_void_v<T>)
        held = make()
                   .then([&] { value.emplace(true); }, [&](kj::Exception&& e) { error.emplace(kj::mv(e)); })
                   .eagerlyEvaluate(nullptr);
      else
        held = make()
                   .then([&](T v) { value.emplace(kj::mv(v)); }, [&](kj::Exception&& e) { error.emplace(kj::mv(e)); })
                   .eagerlyEvaluate(nullptr);
    });
    bool settled = run_until(context, [&] { return value || error; }, limit);
    in_scope([&] { held = nullptr; });
    if (!settled) FAIL("timed out waiting for a KJ promise");
    if (error) throw kj::mv(*error);
    return std::move(*value);
  }
};

}  // namespace test
