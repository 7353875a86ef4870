#pragma once
// PendingCall and CallSlot: one call's accounting on the loop, from receipt to answer. Internal.

#include <kj/async.h>

#include <asio/post.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include <remoteable/error.hpp>
#include "actors/actor.hpp"
#include "actors/detail/outcome.hpp"
#include "actors/detail/server_core.hpp"
#include "actors/detail/server_kj.hpp"
#include "rpc/kj_error.hpp"

namespace remoteable::detail {

/// A call handed to an actor, as the promise KJ holds. Destroying it before it completed means
/// the client cancelled (or the connection went): the actor is told, so that a call not yet
/// started is skipped and a coroutine method stops at its next co_await. With metrics on, it
/// records the call's end (a cancelled one as a `cancelled` error) in its series.
class PendingCall {
 public:
  PendingCall(kj::PromiseFulfiller<Outcome>& fulfiller, ServerCore::Kj& kj, std::uint64_t id,
              std::shared_ptr<Budget> budget, std::shared_ptr<CallCancel> cancel, std::shared_ptr<Actor> actor,
              CallSeries* series)
      : fulfiller_(fulfiller), pending_(kj.pending_calls), id_(id), budget_(std::move(budget)), cancel_(std::move(cancel)),
        actor_(std::move(actor)), series_(series) {
    pending_->emplace(id_, this);
    ++budget_->in_flight;
    if (series_) start_ = std::chrono::steady_clock::now();
  }
  ~PendingCall() {
    pending_->erase(id_);
    --budget_->in_flight;
    if (!done_) {
      if (series_) series_->failed(ErrorKind::cancelled, std::chrono::steady_clock::now() - start_);
      cancel_->cancelled = true;
      asio::post(actor_->root()->strand(), [cancel = cancel_] { cancel->signal.emit(asio::cancellation_type::all); });
    }
  }
  /// The connection's peer ("host:port"), for log lines.
  const std::string& peer() const { return budget_->peer; }
  void fulfill(Outcome&& outcome) {
    done_ = true;
    if (series_) series_->ended(std::chrono::steady_clock::now() - start_);
    fulfiller_.fulfill(std::move(outcome));
  }
  /// Fails the call with `e`, of `kind`.
  void reject(ErrorKind kind, kj::Exception&& e) {
    done_ = true;
    if (series_) series_->failed(kind, std::chrono::steady_clock::now() - start_);
    fulfiller_.reject(kj::mv(e));
  }
  /// Rejects the call and stops the work behind it: a call not started is skipped, a coroutine
  /// method stops at its next co_await. For a server tearing down.
  void abort(const RemoteError& e) {
    if (done_) return;
    cancel_->cancelled = true;
    asio::post(actor_->root()->strand(), [cancel = cancel_] { cancel->signal.emit(asio::cancellation_type::all); });
    reject(e.kind(), to_kj(e));
  }

 private:
  kj::PromiseFulfiller<Outcome>& fulfiller_;
  std::shared_ptr<ServerCore::Kj::Pending> pending_;
  std::uint64_t id_;
  std::shared_ptr<Budget> budget_;
  std::shared_ptr<CallCancel> cancel_;
  std::shared_ptr<Actor> actor_;
  CallSeries* series_;                           ///< null: metrics off
  std::chrono::steady_clock::time_point start_;  ///< when handed to the actor (metrics on)
  bool done_ = false;
};

/// One call counted in its connection's budget from the moment it is received until it ends,
/// however it ends (answered, failed, cancelled, or its connection gone): made first thing in
/// each method that can wait (decoding arguments may wait for handles that never resolve), and
/// attached to the call's promise. Past max_calls_per_connection the call is refused. [loop]
class CallSlot {
 public:
  CallSlot(ServerCore& core, const std::shared_ptr<Budget>& budget) : core_(&core), budget_(budget) {
    if (budget_->calls >= core.options.max_calls_per_connection) {
      if (core.metrics) core.metrics->breach(Limit::max_calls_per_connection);
      throw to_kj(RemoteError(ErrorKind::overloaded, "too many calls in flight on this connection (limit max_calls_per_connection = " +
                                                         std::to_string(core.options.max_calls_per_connection) + ")"));
    }
    ++budget_->calls;
    core.calls_in_flight.fetch_add(1, std::memory_order_relaxed);
  }
  CallSlot(CallSlot&& other) noexcept : core_(other.core_), budget_(std::move(other.budget_)) {}
  CallSlot& operator=(CallSlot&&) = delete;
  ~CallSlot() {
    if (!budget_) return;
    --budget_->calls;
    core_->calls_in_flight.fetch_sub(1, std::memory_order_relaxed);
  }

 private:
  ServerCore* core_;
  std::shared_ptr<Budget> budget_;
};

}  // namespace remoteable::detail
