#pragma once
// A counted test type: every live instance is counted, so tests can prove that the server drops
// what clients no longer hold (and holds what they still do). In the spirit of cppcoro's
// `counted` helper.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>

#include <asio/io_context.hpp>

#include <remoteable/remoteable.hpp>

namespace test {

/// A server-side object whose constructors and destructor keep a process-wide live count.
///
/// The count is an atomic because instances are made and destroyed on the server's actor pool
/// and loop threads while the test thread reads it; it is the one piece of global state here,
/// and it is test-only.
struct Counted {
  static inline std::atomic<std::int64_t> live{0};
  static inline std::atomic<std::int64_t> constructed{0};

  explicit Counted(std::int64_t v = 0) : value(v) { bump(); }
  Counted(const Counted& other) : value(other.value) { bump(); }
  Counted(Counted&& other) noexcept : value(other.value) { bump(); }
  Counted& operator=(const Counted&) = default;
  Counted& operator=(Counted&&) = default;
  ~Counted() { live.fetch_sub(1, std::memory_order_acq_rel); }

  std::int64_t value;

  std::int64_t get() const { return value; }
  std::int64_t add(std::int64_t by) { return value += by; }
  /// A new, separately owned Counted (a registered class returned by value).
  Counted twin() const { return Counted(value); }

 private:
  static void bump() {
    live.fetch_add(1, std::memory_order_acq_rel);
    constructed.fetch_add(1, std::memory_order_relaxed);
  }
};

inline void register_counted(remoteable::Registry& types) {
  types.class_<Counted>("Counted")
      .constructor<>()
      .constructor<std::int64_t>()
      .field("value", &Counted::value)
      .method("get", &Counted::get)
      .method("add", &Counted::add)
      .method("twin", &Counted::twin);
}

/// Polls `pred` until it holds or `limit` passes, running `context` meanwhile (a client's
/// releases and results travel only while its context runs). A bounded wait on an event, not a
/// sleep standing in for one. Returns whether `pred` came to hold.
template <class Pred>
bool eventually(asio::io_context& context, Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  context.restart();
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    context.run_for(std::chrono::milliseconds(1));
    context.restart();
  }
  return true;
}

/// The same without a client context to run (the client's context runs elsewhere).
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

}  // namespace test
