#pragma once
// KjLoop: a KJ event loop hosted inside Asio. Internal to src/rpc, src/actors and src/proxy.

#include <kj/async.h>
#include <kj/function.h>

#include <asio/any_io_executor.hpp>
#include <asio/dispatch.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>
#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

namespace remoteable::detail {

/// Something that wants to act once the loop has nothing left to do for now (a stream that
/// sends what its messages wrote). Registered with KjLoop::at_idle.
class IdleTask {
 public:
  virtual ~IdleTask() = default;
  virtual void on_idle() = 0;
};

/// A kj::EventLoop whose turns run as handlers on an Asio strand.
///
/// Ownership and threads: shared by everything that holds KJ objects of this loop (connections,
/// capabilities). All KJ work for the loop runs inside `run()` handlers on the strand, which may
/// be served by any number of threads: the strand makes them one at a time, and each handler
/// makes the loop current for its thread for its duration only. Nothing here blocks.
/// Destroying it requires that every KJ object of the loop is gone (see shutdown()).
class KjLoop final : public kj::EventPort, public std::enable_shared_from_this<KjLoop> {
 public:
  using Strand = asio::strand<asio::any_io_executor>;

  explicit KjLoop(asio::any_io_executor executor);
  ~KjLoop();
  KjLoop(const KjLoop&) = delete;
  KjLoop& operator=(const KjLoop&) = delete;

  const Strand& strand() const noexcept { return strand_; }
  bool in_loop() const noexcept;
  /// True when this thread may open a Scope on the loop (no other loop is current).
  bool can_enter() const noexcept;
  /// Runs KJ until nothing is runnable (bounded). Must be called with the loop current.
  void drain();

  /// Runs `f` with the loop current, then lets KJ run what became ready. Inline when already on
  /// the strand, or when the strand is idle and this thread runs its executor (asio::dispatch:
  /// an operation made from a coroutine on the loop's own io_context costs no trip through
  /// the queue); else queued behind what the strand has, in order.
  template <class F>
  void run(F&& f) {
    if (in_loop()) {
      f();
      return;
    }
    if (!can_enter()) return post(std::forward<F>(f));  // another loop's handler is running here
    asio::dispatch(strand_, handler(std::forward<F>(f)));
  }
  /// Runs `f` through run() once the handlers already queued on the loop's executor have run
  /// (the calling coroutine has suspended, say). Counts as queued until then, so the idle tasks
  /// wait for it.
  template <class F>
  void run_later(F&& f) {
    queued_.fetch_add(1, std::memory_order_relaxed);
    asio::post(strand_.get_inner_executor(), [self = shared_from_this(), f = std::forward<F>(f)]() mutable {
      self->queued_.fetch_sub(1, std::memory_order_relaxed);
      self->run(std::move(f));
    });
  }
  /// Same, always posted (never inline): for continuations that must not run inside the caller.
  template <class F>
  void post(F&& f) {
    asio::post(strand_, handler(std::forward<F>(f)));
  }

  /// Runs KJ until its queue is empty (bounded per handler; reposts itself if work remains),
  /// then, if no other loop handler is queued, the idle tasks. Must be called with the loop
  /// current.
  void drive();

  /// Runs `task->on_idle()` once, at the end of the first drive() after which no loop handler is
  /// queued, or that yields to Asio with work left: what the handlers queued now write goes out
  /// together, and what a lone handler writes goes out at once, without another trip through
  /// Asio. [loop]
  void at_idle(std::weak_ptr<IdleTask> task) { idle_.push_back(std::move(task)); }
  /// Runs `f` once this handler's KJ turns are done, before its idle tasks, with the loop still
  /// current: for work that must not run inside a KJ callback and need not wait behind Asio's
  /// queue (resuming a quick coroutine whose answer just arrived). What such work queues in
  /// turn runs in a later handler, so a handler's share is bounded. [loop]
  void after_turns(kj::Function<void()> f) { after_.push_back(kj::mv(f)); }
  /// Whether work waits for the end of this handler's turns or of the handler (after_turns,
  /// after_handler): a coroutine about to resume, which may well write. [loop]
  bool resumption_pending() const noexcept { return !after_.empty() || !after_handler_.empty(); }
  /// Executes `f` on `executor` (in place when that may block and this thread runs it) once
  /// this handler is done with the loop (its Scope closed, the loop no longer current), still
  /// in it, before its idle tasks: for resuming a coroutine of the executor the
  /// loop runs on (a client's), which would run on this thread next anyway, without a trip
  /// through Asio's queue. What it does on the loop goes through run() as from any other
  /// handler (each in a handler of its own, KJ driven after each). Outside a handler (a Scope
  /// that is not a HandlerScope closes with work left), or when the handler ends by an
  /// exception, `f` is posted to `executor` instead. [loop]
  void after_handler(asio::any_io_executor executor, kj::Function<void()> f) {
    after_handler_.push_back(Deferred{std::move(executor), kj::mv(f)});
  }
  /// Counts the times KJ's queue was run: work done on the loop with the same count saw no
  /// turn between (what it sent is chained on what was sent before, unwritten). [loop]
  std::uint64_t runs() const noexcept { return runs_; }
  /// Counts the outermost Scopes opened (each handler's, among them): what a stream did with
  /// the same count happened in the same handler. [loop]
  std::uint64_t scopes() const noexcept { return scopes_; }
  /// Runs the idle tasks at the end of this handler's drive() even if loop handlers are queued:
  /// for a write someone waits on with nothing else in flight, where gathering only adds
  /// latency. [loop]
  void urgent() { urgent_ = true; }

  /// Makes the loop current on this thread for the lifetime of the Scope.
  class Scope {
   public:
    explicit Scope(KjLoop& loop);
    ~Scope();
    Scope(const Scope&) = delete;
    /// Delivers cross-thread events (kj::Executor); only valid in the outermost Scope.
    void poll() {
      KJ_IF_MAYBE(ws, wait_scope_) { ws->poll(); }
    }
    Scope& operator=(const Scope&) = delete;

   private:
    friend class KjLoop;
    KjLoop* loop_;
    KjLoop* previous_;
    kj::Maybe<kj::WaitScope> wait_scope_;
    bool handler_ = false;  // a HandlerScope's: it runs the after_handler work itself
  };

  /// The Scope of a loop handler: when it closes, the handler's after_handler work runs, then
  /// the idle tasks it held back.
  class HandlerScope {
   public:
    explicit HandlerScope(KjLoop& loop) : loop_(loop), exceptions_(std::uncaught_exceptions()) {
      scope_.emplace(loop);
      scope_->handler_ = true;
    }
    ~HandlerScope();
    HandlerScope(const HandlerScope&) = delete;
    HandlerScope& operator=(const HandlerScope&) = delete;
    void poll() { scope_->poll(); }

   private:
    KjLoop& loop_;
    int exceptions_;
    std::optional<Scope> scope_;
  };

  // kj::EventPort
  bool wait() override;
  bool poll() override;
  void setRunnable(bool runnable) override;
  void wake() const override;

 private:
  void schedule();
  void run_idle_tasks();
  void run_after_turns();
  /// A loop handler for `f`, counted as queued until it starts: makes the loop current, runs
  /// `f`, then drives KJ.
  template <class F>
  auto handler(F&& f) {
    queued_.fetch_add(1, std::memory_order_relaxed);
    return [self = shared_from_this(), f = std::forward<F>(f)]() mutable {
      self->queued_.fetch_sub(1, std::memory_order_relaxed);
      HandlerScope scope(*self);
      f();
      self->drive();
    };
  }
  struct Deferred {
    asio::any_io_executor executor;
    kj::Function<void()> f;
  };
  /// Runs the after_handler work (HandlerScope), or posts it (`run` false). [loop thread]
  void run_after_handler(bool run) noexcept;

  Strand strand_;
  // Loop handlers posted and not yet started (any thread posts them).
  std::atomic<int> queued_{0};
  bool urgent_ = false;  // [loop]
  std::uint64_t runs_ = 0;  // [loop]
  std::uint64_t scopes_ = 0;  // [loop]
  std::vector<std::weak_ptr<IdleTask>> idle_, idle_running_;  // [loop]
  std::vector<kj::Function<void()>> after_, after_running_;     // [loop]
  bool running_after_ = false;                                   // [loop]
  std::vector<Deferred> after_handler_;                          // [loop]
  bool running_after_handler_ = false;                           // [loop]
  kj::EventLoop loop_;
  bool turn_posted_ = false;
  mutable std::atomic<bool> woken_{false};
};

}  // namespace remoteable::detail
