#pragma once
// Completion: one pending evaluation's way back to its awaiting coroutine, from a kj::Promise on
// the connection's loop to the awaiting coroutine's executor. Segments: how a server coroutine
// method's runs between its co_awaits are measured, so that quick ones may resume on the loop's
// thread. Internal.

#include <kj/function.h>

#include <asio/associated_executor.hpp>
#include <asio/dispatch.hpp>
#include <asio/post.hpp>

#include <atomic>
#include <exception>
#include <memory>
#include <utility>

#include "peer/detail/inline_offer.hpp"
#include "rpc/event_port.hpp"

namespace remoteable::detail {

/// The runs of one call of a coroutine method between its co_awaits (its segments), as the
/// server measures them (ServerCore's call measurements: CallStats). Completions made while a
/// segment runs (current_segments) resume the coroutine through it: measured, and on the loop's
/// own thread while the method's segments are quick.
///
/// Ownership and threads: shared by the completions of one call; any thread.
class Segments {
 public:
  virtual ~Segments() = default;
  /// Whether the next segment may run inline on the network thread (the method is measured fast).
  virtual bool quick() const noexcept = 0;
  /// Runs `segment` and measures it, where it runs (inline: the wall clock; the pool: CPU time).
  virtual void measure(kj::FunctionParam<void()> segment) = 0;
};

/// The segments whose run is in progress on this thread, if any (CurrentSegments).
inline thread_local std::shared_ptr<Segments> current_segments;

/// Makes `segments` current on this thread for its lifetime (see CompletionImpl).
class CurrentSegments {
 public:
  explicit CurrentSegments(std::shared_ptr<Segments> segments) : previous_(std::exchange(current_segments, std::move(segments))) {}
  ~CurrentSegments() { current_segments = std::move(previous_); }
  CurrentSegments(const CurrentSegments&) = delete;
  CurrentSegments& operator=(const CurrentSegments&) = delete;

 private:
  std::shared_ptr<Segments> previous_;
};

/// One pending evaluation's way back to its awaiting coroutine. Completes exactly once, by
/// posting (never inline from a KJ callback): to the awaiting coroutine's executor; or, for a
/// quick server coroutine whose answer arrives on a loop (`near`), to the end of that loop's
/// turns, which resumes it in place when its actor's strand is idle; or, for a coroutine of the
/// executor that loop runs on, to the end of the handler (see CompletionImpl::complete).
class CompletionBase {
 public:
  virtual ~CompletionBase() = default;
  virtual void fail(std::exception_ptr error) = 0;
};

template <class T>
class Completion : public CompletionBase {
 public:
  /// `near`: the loop this is called on, if it is called in one of its handlers. True when the
  /// coroutine resumes at the end of this handler's turns, or of the handler (see
  /// CompletionImpl::complete).
  virtual bool complete(std::exception_ptr error, T value, KjLoop* near) = 0;
  void fail(std::exception_ptr error) override { complete(error, T{}, nullptr); }
};

template <class T, class Handler>
class CompletionImpl final : public Completion<T> {
 public:
  /// Made where the coroutine awaits: a segment in progress on this thread is the one that the
  /// coroutine's next segment continues.
  explicit CompletionImpl(Handler handler)
      : handler_(std::move(handler)), executor_(asio::get_associated_executor(handler_)), segments_(current_segments) {}

  bool complete(std::exception_ptr error, T value, KjLoop* near) override {
    if (done_.exchange(true)) return false;
    // Once the handler is posted, the awaiting context may run it and be destroyed at any
    // moment, so nothing here touches the context afterwards. (No work guard: the awaiting
    // coroutine's co_spawn holds work on this executor for as long as the handler lives.)
    auto executor = std::move(executor_);
    bool inline_here = near && segments_ && segments_->quick();
    auto resume = [h = std::move(handler_), segments = std::move(segments_), error, value = std::move(value)]() mutable {
      inline_offer = false;  // not for whatever the coroutine does next
      if (!segments) return std::move(h)(error, std::move(value));
      CurrentSegments current(segments);
      segments->measure([&] { std::move(h)(error, std::move(value)); });
    };
    if (!inline_here) {
      if (near && !segments_ && executor == near->strand().get_inner_executor()) {
        // A coroutine of the executor the loop runs on (a client's, on its io_context): it
        // would run on this thread next anyway. Once this handler is done with the loop (never
        // inside it: what it does there goes through run() as from any handler), in place.
        near->after_handler(std::move(executor), std::move(resume));
        return true;
      }
      asio::post(executor, std::move(resume));
      return false;
    }
    // A quick segment of a server coroutine, its answer read on a loop: once this handler's
    // KJ turns are done (never inside this KJ callback), still in the loop and before what the
    // loop wrote meanwhile goes out, dispatched with the inline offer, it runs right there when
    // the actor's strand is idle (as a call's first segment does), instead of crossing to the
    // actor pool and back to the loop for its answer; when the strand is busy, it queues there
    // as post would. Measured either way: a segment that turns out long sends the method's next
    // ones to the pool.
    near->after_turns([executor = std::move(executor), resume = std::move(resume)]() mutable {
      InlineOffer offer;
      // As asio::dispatch does, without its preferred copy of the executor (an allocation for
      // an actor's strand): the coroutine's executor may block, so this runs in place when
      // the strand is idle and the inline offer is taken.
      executor.execute(std::move(resume));
    });
    return true;
  }

 private:
  Handler handler_;
  asio::associated_executor_t<Handler> executor_;
  std::shared_ptr<Segments> segments_;
  std::atomic<bool> done_{false};
};

}  // namespace remoteable::detail
