#include "rpc/event_port.hpp"

#include <kj/debug.h>

namespace remoteable::detail {
namespace {
// The KjLoop whose Scope is open on this thread, if any.
thread_local KjLoop* current_loop = nullptr;
// Turns per handler before yielding to other Asio work.
constexpr unsigned max_turns_per_handler = 256;
}  // namespace

KjLoop::KjLoop(asio::any_io_executor executor) : strand_(asio::make_strand(std::move(executor))), loop_(*this) {}

KjLoop::~KjLoop() {
  // What still waits for the end of the turns (a coroutine's resumption) goes while KJ's loop
  // is still there.
  after_.clear();
}

bool KjLoop::in_loop() const noexcept { return current_loop == this; }
bool KjLoop::can_enter() const noexcept { return current_loop == nullptr || current_loop == this; }

void KjLoop::drain() {
  for (int i = 0; i < 1000 && (loop_.isRunnable() || (!after_.empty() && !running_after_)); ++i) {
    ++runs_;
    loop_.run(max_turns_per_handler);
    run_after_turns();
  }
  run_idle_tasks();
}

void KjLoop::run_after_turns() {
  // Not within itself (one of them closing a connection drains the loop): the outer one runs
  // what was queued meanwhile, or schedules it.
  if (after_.empty() || running_after_) return;
  running_after_ = true;
  KJ_DEFER({
    after_running_.clear();
    running_after_ = false;
  });
  // Only those queued so far: what they queue waits for a later handler (schedule()).
  after_running_.swap(after_);
  for (auto& f : after_running_) {
    f();
    ++runs_;
    loop_.run(max_turns_per_handler);
  }
  after_running_.clear();
  if (!after_.empty()) schedule();
}

void KjLoop::run_idle_tasks() {
  urgent_ = false;
  // A task may write again (and register again) while it runs: swap, so that it runs next time.
  while (!idle_.empty()) {
    idle_running_.swap(idle_);
    for (auto& weak : idle_running_)
      if (auto task = weak.lock()) task->on_idle();
    idle_running_.clear();
    if (loop_.isRunnable()) break;  // what the tasks woke runs in a later turn
  }
}

void KjLoop::run_after_handler(bool run) noexcept {
  if (after_handler_.empty() || running_after_handler_) return;
  running_after_handler_ = true;
  // Only those registered so far; what they register runs in the handlers they open.
  auto work = std::move(after_handler_);
  after_handler_.clear();
  for (auto& d : work) {
    if (!run) {
      asio::post(d.executor, std::move(d.f));
      continue;
    }
    try {
      d.executor.execute(std::move(d.f));
    } catch (...) {
      // As from a handler of its own: out of the executor's run().
      asio::post(d.executor, [e = std::current_exception()] { std::rethrow_exception(e); });
    }
  }
  work.clear();  // (what the functions held goes here, outside the loop)
  running_after_handler_ = false;
  if (!idle_.empty() || !after_handler_.empty()) {
    // The idle tasks drive() held back for this work (and what it registered meanwhile).
    Scope scope(*this);
    if (!after_handler_.empty()) {
      for (auto& d : after_handler_) asio::post(d.executor, std::move(d.f));
      after_handler_.clear();
    }
    if (urgent_ || queued_.load(std::memory_order_relaxed) == 0) run_idle_tasks();
  }
}

KjLoop::HandlerScope::~HandlerScope() {
  scope_.reset();
  loop_.run_after_handler(std::uncaught_exceptions() == exceptions_);
}

KjLoop::Scope::Scope(KjLoop& loop) : loop_(&loop), previous_(current_loop) {
  if (previous_ == &loop) return;  // nested: already current
  KJ_REQUIRE(previous_ == nullptr, "remoteable: a KJ loop handler ran inside another loop's handler");
  wait_scope_.emplace(loop.loop_);
  current_loop = &loop;
  ++loop.scopes_;
}

KjLoop::Scope::~Scope() {
  if (wait_scope_ != nullptr) {
    wait_scope_ = nullptr;
    current_loop = previous_;
    // Not a handler's (a HandlerScope runs it itself, once this one is closed): posted.
    if (!handler_ && !loop_->after_handler_.empty() && !loop_->running_after_handler_) loop_->run_after_handler(false);
  }
}

void KjLoop::drive() {
  ++runs_;
  loop_.run(max_turns_per_handler);
  run_after_turns();
  if (loop_.isRunnable()) {
    // Yielding to Asio with work left: what is written so far goes out now rather than after
    // all of it, so that the peer works on it meanwhile.
    run_idle_tasks();
    return schedule();
  }
  // With after_handler work waiting, the idle tasks wait for it (HandlerScope): what it writes
  // goes out with what this handler wrote.
  if ((urgent_ || queued_.load(std::memory_order_relaxed) == 0) && after_handler_.empty()) run_idle_tasks();
}

void KjLoop::schedule() {
  if (turn_posted_) return;
  turn_posted_ = true;
  queued_.fetch_add(1, std::memory_order_relaxed);
  asio::post(strand_, [self = shared_from_this()] {
    self->queued_.fetch_sub(1, std::memory_order_relaxed);
    self->turn_posted_ = false;
    HandlerScope scope(*self);
    self->drive();
  });
}

// Promise::wait() is never used on this loop: everything is driven by Asio handlers.
bool KjLoop::wait() { return woken_.exchange(false); }
bool KjLoop::poll() { return woken_.exchange(false); }

void KjLoop::setRunnable(bool runnable) {
  // Called by KJ on the strand (events are only armed from within loop handlers). Inside one,
  // the drive() that ends it runs what became ready (and schedules a turn if it cannot finish):
  // a turn posted now would only find the queue empty, and would keep the strand busy, so that
  // operations dispatched meanwhile queue instead of running inline.
  if (runnable && !in_loop()) schedule();
}

void KjLoop::wake() const {
  // Runs while KJ holds a mutex, possibly on another thread: only post from here.
  woken_.store(true);
  auto self = std::const_pointer_cast<KjLoop>(shared_from_this());
  self->queued_.fetch_add(1, std::memory_order_relaxed);
  asio::post(strand_, [self] {
    self->queued_.fetch_sub(1, std::memory_order_relaxed);
    HandlerScope scope(*self);
    scope.poll();          // cross-thread events (kj::Executor) arrive only through poll()
    self->loop_.run(0);    // so that setRunnable() fires again for what poll() queued
    self->drive();
  });
}

}  // namespace remoteable::detail
