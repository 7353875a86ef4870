#pragma once
// Completion: one pending evaluation's way back to its awaiting coroutine, from a kj::Promise on
// the connection's loop to the awaiting coroutine's executor. Internal.

#include <asio/any_io_executor.hpp>
#include <asio/associated_executor.hpp>
#include <asio/dispatch.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>

#include <atomic>
#include <exception>
#include <type_traits>
#include <utility>

#include "peer/detail/inline_offer.hpp"

namespace remoteable::detail {

/// One pending evaluation's way back to its awaiting coroutine. Completes exactly once, by
/// posting (never inline from a KJ callback): to the awaiting coroutine's executor, or, when the
/// answer arrives on a loop thread, to that thread, which then resumes the coroutine in place if
/// its executor allows it (see complete()).
class CompletionBase {
 public:
  virtual ~CompletionBase() = default;
  virtual void fail(std::exception_ptr error) = 0;
};

template <class T>
class Completion : public CompletionBase {
 public:
  /// `near`: the executor of the loop this is called on, if it is called on one (a KJ callback).
  virtual void complete(std::exception_ptr error, T value, const asio::any_io_executor* near) = 0;
  void complete(std::exception_ptr error, T value) { complete(error, std::move(value), nullptr); }
  void fail(std::exception_ptr error) override { complete(error, T{}, nullptr); }
};

template <class T, class Handler>
class CompletionImpl final : public Completion<T> {
 public:
  explicit CompletionImpl(Handler handler)
      : handler_(std::move(handler)), work_(asio::make_work_guard(asio::get_associated_executor(handler_))) {}

  void complete(std::exception_ptr error, T value, const asio::any_io_executor* near) override {
    if (done_.exchange(true)) return;
    // The work guard travels with the handler: once it is posted, the awaiting context may
    // run it and be destroyed at any moment, so nothing here touches the context afterwards.
    auto executor = work_.get_executor();
    auto resume = [h = std::move(handler_), work = std::move(work_), error, value = std::move(value)]() mutable {
      inline_offer = false;  // not for whatever the coroutine does next
      std::move(h)(error, std::move(value));
    };
    if (!near || same(executor, *near)) return asio::post(executor, std::move(resume));
    // On the loop's thread, after this KJ callback: dispatched with the inline offer, the
    // coroutine resumes right there when its executor runs on this thread or is an idle actor
    // strand (a server coroutine method awaiting a call to a peer), instead of crossing to the
    // actor pool and back to the loop for its answer; else the dispatch queues it as post did.
    asio::post(*near, [executor, resume = std::move(resume)]() mutable {
      InlineOffer offer;
      asio::dispatch(executor, std::move(resume));
    });
  }

 private:
  // The coroutine runs on the loop's own executor (a client's usual case): posting to it is
  // all it takes.
  template <class Executor>
  static bool same(const Executor& a, const asio::any_io_executor& b) {
    if constexpr (std::is_same_v<Executor, asio::any_io_executor>) return a == b;
    else return false;
  }
  Handler handler_;
  asio::executor_work_guard<asio::associated_executor_t<Handler>> work_;
  std::atomic<bool> done_{false};
};

}  // namespace remoteable::detail
