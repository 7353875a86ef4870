#pragma once
// Completion: one pending evaluation's way back to its awaiting coroutine, from a kj::Promise on
// the connection's loop to the awaiting coroutine's executor. Internal.

#include <asio/associated_executor.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>

#include <atomic>
#include <exception>
#include <utility>

namespace remoteable::detail {

/// One pending evaluation's way back to its awaiting coroutine. Completes exactly once, by
/// posting to the awaiting coroutine's executor (never inline from a KJ callback).
class CompletionBase {
 public:
  virtual ~CompletionBase() = default;
  virtual void fail(std::exception_ptr error) = 0;
};

template <class T>
class Completion : public CompletionBase {
 public:
  virtual void complete(std::exception_ptr error, T value) = 0;
  void fail(std::exception_ptr error) override { complete(error, T{}); }
};

template <class T, class Handler>
class CompletionImpl final : public Completion<T> {
 public:
  explicit CompletionImpl(Handler handler)
      : handler_(std::move(handler)), work_(asio::make_work_guard(asio::get_associated_executor(handler_))) {}

  void complete(std::exception_ptr error, T value) override {
    if (done_.exchange(true)) return;
    // The work guard travels with the handler: once it is posted, the awaiting context may
    // run it and be destroyed at any moment, so nothing here touches the context afterwards.
    auto executor = work_.get_executor();
    asio::post(executor, [h = std::move(handler_), work = std::move(work_), error, value = std::move(value)]() mutable {
      std::move(h)(error, std::move(value));
    });
  }

 private:
  Handler handler_;
  asio::executor_work_guard<asio::associated_executor_t<Handler>> work_;
  std::atomic<bool> done_{false};
};

}  // namespace remoteable::detail
