#pragma once
// PeerConnection and HandleState: the Cap'n Proto side of the handles of one connection: a
// client's own connection, or (hosted) the handles a server holds that came over one of its
// connections from the peer. Internal.

#include <capnp/capability.h>
#include <kj/async.h>

#include <asio/any_io_executor.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/async_result.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <deque>
#include <string>
#include <vector>
#include <memory>
#include <mutex>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include <remoteable/client_options.hpp>
#include <remoteable/handle.hpp>
#include "peer/detail/completion.hpp"
#include "peer/detail/host.hpp"
#include "rpc/connection.hpp"
#include "rpc/tls.hpp"
#include "rpc/event_port.hpp"
#include "rpc/kj_error.hpp"
#include "rpc/steps.hpp"
#include "schemas/remoteable.capnp.h"

namespace remoteable::detail {

/// The error of an evaluation on a closed connection.
std::exception_ptr disconnected_error(const char* why);

/// Awaits `aw` and drops its value. Takes the awaitable as a parameter so that no lambda
/// temporary stands in a co_await operand (GCC 12 destroys such temporaries twice).
inline asio::awaitable<void> discard(asio::awaitable<None> aw) { co_await std::move(aw); }

/// The handles of one connection, and the calls made on them.
///
/// A client's: made by the Client, which starts it on a socket (start()); it owns the RPC
/// system, and its bootstrap is the server's registry. Hosted: made by a server connection on
/// its network thread, for the capabilities that peer sent it (a client's shared object,
/// another server's object passed on by a client); the server connection owns the RPC system
/// and closes this before it goes (close_hosted()).
///
/// Ownership and threads: shared by its owner (Client::Owner, or the server connection) and
/// every HandleState. All Cap'n Proto objects in it live on `loop`'s strand; members marked
/// [loop] are touched only there. close() drops them all, in the order capabilities → RPC
/// system → network → socket. Any thread hands work to the loop through submit(); a hosted
/// connection, once closed, refuses it (its loop may be gone with its server).
class PeerConnection : public std::enable_shared_from_this<PeerConnection> {
 public:
  PeerConnection(asio::any_io_executor executor, ClientOptions options);
  /// Hosted on `loop` (a server connection's), which outlives it while open. [loop]
  /// `live`, if not null, counts its handles while they live.
  PeerConnection(std::shared_ptr<KjLoop> loop, ClientOptions options, std::shared_ptr<spdlog::logger> log,
                 std::shared_ptr<std::atomic<std::size_t>> live = nullptr);
  ~PeerConnection();

  /// The loop. A hosted one's is reset when it closes: read it only on the loop (off it, use
  /// submit()).
  const std::shared_ptr<KjLoop>& loop() const { return loop_; }
  bool hosted() const { return hosted_; }
  /// Runs `f` on the loop, in the order of submission from each thread (KjLoop::run for a
  /// client's). A hosted one's calls come from actors on several threads and from inline calls
  /// on the loop itself: queued, except on the loop inside one of its handlers (a coroutine
  /// method running inline, calling back its caller) with none of its own still queued, where
  /// running at once overtakes nothing. False, and `f` dropped, once a hosted one is closed.
  /// Any thread.
  template <class F>
  bool submit(F&& f) {
    if (!hosted_) {
      loop_->run(std::forward<F>(f));
      return true;
    }
    {
      std::lock_guard lock(host_mutex_);
      if (!loop_) return false;
      if (queued_submits_ > 0 || !loop_->in_loop() || !inline_room()) {
        ++queued_submits_;
        loop_->post([this, keep = shared_from_this(), f = std::forward<F>(f)]() mutable {
          {
            std::lock_guard lock(host_mutex_);
            --queued_submits_;
          }
          f();
        });
        return true;
      }
    }
    // On the loop: close_hosted() cannot run meanwhile (it runs on the loop too), unless `f`
    // calls it, which leaves `f` what it holds.
    bool was = std::exchange(submitting_inline_, true);
    f();
    submitting_inline_ = was;
    return true;
  }
  /// Closes a hosted connection: fails what is pending with disconnected, drops its
  /// capabilities and lets go of the loop. Before the RPC system it came from goes. [loop]
  void close_hosted();
  /// A new handle to `object`, served to the peer by this connection's host (ClientOptions::
  /// registry); throws std::logic_error without one. Any thread.
  std::shared_ptr<HandleState> share(Object object);
  /// This side's objects the peer holds handles to (zero without a host). Any thread.
  std::size_t shared_handles() const;
  /// Live capabilities it holds (handles the peer's objects have here). [loop]
  std::size_t live_caps() const { return caps_.size(); }
  const std::shared_ptr<WireCounters>& counters() const { return counters_; }
  const ClientOptions& options() const { return options_; }
  bool open() const { return open_.load(); }
  /// The server's library version, as it reported on connecting. Set once, before the
  /// connection is handed to a Client.
  const std::string& server_version() const { return server_version_; }
  void set_server_version(std::string v) { server_version_ = std::move(v); }

  /// Sets up RPC over a connected socket and fetches the bootstrap. [loop]
  void start(Connected connected);
  /// Closes the connection. Any thread; idempotent.
  void close();

  /// A fresh handle id, and the state that releases it. Any thread.
  std::shared_ptr<HandleState> new_handle();
  /// A fresh id from the same sequence, for something that is no handle (an iteration). Any thread.
  std::uint64_t new_handle_id() { return next_handle_.fetch_add(1); }
  /// The capability behind a handle id; throws a disconnected/broken error if there is none. [loop]
  wire::Handle::Client& cap(std::uint64_t id);
  void set_cap(std::uint64_t id, wire::Handle::Client cap);  // [loop]
  void release(std::uint64_t id);                            // any thread
  wire::Registry::Client& registry();                        // [loop]
  /// Replaces the registry (the one Registry.authenticate answered with). [loop]
  void set_registry(wire::Registry::Client registry) { registry_ = kj::mv(registry); }
  /// The capability of a handle of this connection; type error for others. [loop]
  wire::Handle::Client& cap_of(const Handle& handle);

  /// Encodes a client Value; handles must belong to this connection. [loop]
  void encode(wire::Value::Builder out, const Value& value);
  /// Decodes a wire value; capabilities in it become new handles. [loop] (Inline, in
  /// peer/detail/value_codec.hpp.)
  inline Value decode(wire::Value::Reader value);

  /// Drops everything, pending evaluations included, without completing them: their handlers
  /// are destroyed. For an io_context that is destroyed (its thread, not a loop handler).
  void abandon();

  /// A derived handle's operation, as data: sent as a request of its own, or as a step of a
  /// Handle.chain call.
  using Step = BasicStep<Value>;
  /// Keeps the step making handle `id` back until the handlers already queued on the loop have
  /// run. If one of them evaluates that handle (`h.call(...).as<T>()`), fetch_deferred sends the
  /// step with `fetch` set: the value comes back in the step's own answer. Steps go out in the
  /// order they were made; anything else that uses the connection sends them first. `self` is
  /// the new handle's state: once it is gone, its step is still sent (a push: its answer is
  /// awaited, so that the peer does not cancel it), but keeps no capability. [loop]
  void defer(std::uint64_t id, std::weak_ptr<HandleState> self, std::shared_ptr<HandleState> parent, Step step);
  /// Sends the deferred steps, in order. `windowed` (the background sending): only while the
  /// window has room, so that at most ClientOptions::push_window steps sent without an
  /// evaluation wait for their answers at once; the rest wait here. An operation that uses the
  /// connection sends them all (ordered() has made it wait until the pushes among them fit). [loop]
  void send_deferred(bool windowed = false);
  /// Runs `f` now, or, while steps made before it wait for the window, after them, in order.
  /// What uses the connection (an evaluation, a fetch, a store) goes through it. An evaluation
  /// passes its id and completion: cancelled while it waits (cancel(id)), it fails at once. [loop]
  void ordered(kj::Function<void()> f, std::uint64_t id = 0, std::shared_ptr<CompletionBase> completion = nullptr);
  /// If the last deferred step makes handle `id`: sends the others, then it with `fetch`, and
  /// returns its value. Else nothing. The steps before it that make handles nobody else holds
  /// (each held only by the step made on it) go with it in one Handle.chain call; so does the
  /// step alone when `keep` is false (the evaluation holds the only reference to handle `id`:
  /// it needs no capability). The choice is plan_chain's (peer/detail/chain_plan.hpp). [loop]
  kj::Maybe<kj::Promise<Value>> fetch_deferred(std::uint64_t id, wire::Handle::Fetch kind, bool keep);

  /// One batch of an iteration (Handle::iterate): `done` once there are no more.
  struct Batch {
    std::vector<Value> values;
    bool done = false;
  };
  /// The next batch of iteration `id` over handle `handle`, at most `batch` elements: the first
  /// call sends Handle.iterate, the next ones take the batch fetched ahead. When a batch arrives
  /// that is not the last, the one after it is requested at once (fetched ahead while the
  /// caller consumes this one). [loop] (src/peer/iteration.cpp)
  kj::Promise<Batch> next_batch(std::uint64_t id, std::uint64_t handle, std::uint32_t batch);
  /// Drops iteration `id`: its cursor (the server ends the iteration) and the batch in flight. [loop]
  void end_iteration(std::uint64_t id) { cursors_.erase(id); }
  /// Iterations open (for tests). [loop]
  std::size_t open_iterations() const { return cursors_.size(); }

  /// Cancels the evaluation `id` if it is still pending. [loop]
  void cancel(std::uint64_t id);
  /// An evaluation was answered, its coroutine resumed elsewhere (not at the end of the loop's
  /// turns, where what it writes goes out with the Finish anyway). If it was the last in flight,
  /// what the loop writes now (the answer's Finish) waits for a handler queued behind the
  /// awaiting coroutine's resumption, so that it goes out with the coroutine's next request
  /// instead of in a write of its own. [loop]
  void answered() {
    if (live_.size() == 1) loop_->run_later([] {});
  }

  /// Keeps `task` running until it ends or the connection closes (then it is dropped). [loop]
  void add_task(kj::Promise<void> task) {
    KJ_IF_MAYBE(tasks, tasks_) { tasks->add(kj::mv(task)); }
  }

  /// Runs `build(*this) -> kj::Promise<T>` on the loop and awaits its result. Cancelling the
  /// await (Asio per-operation cancellation) cancels the call.
  template <class T, class Build>
  asio::awaitable<T> evaluate(Build build);

 private:
  void close_now();  // [loop]

  std::shared_ptr<KjLoop> loop_;  // hosted: reset (under host_mutex_) when closed
  const bool hosted_ = false;
  const std::shared_ptr<std::atomic<std::size_t>> live_handles_;  // hosted: the server's count
  std::size_t counted_ = 0;  // its handles in live_handles_ [host_mutex_]
  std::mutex host_mutex_;
  std::size_t queued_submits_ = 0;  // hosted: submit()s posted and not yet run [host_mutex_]
  // Hosted: a submit() runs at once, inside server code on the loop, whose next submit() (an
  // evaluation right behind a step, say) runs at once too. [loop]
  bool submitting_inline_ = false;
  // Hosted: submit()s run at once since KJ's queue last ran (KjLoop::runs() was inline_runs_at_).
  // Cap'n Proto chains each message's write on the previous one until the loop turns; a chain
  // thousands deep (server code dropping that many handles at once) is destroyed recursively
  // if the connection ends first. Past max_inline_submits, submissions queue, a handler each. [loop]
  static constexpr std::size_t max_inline_submits = 64;
  std::size_t inline_submits_ = 0;
  std::uint64_t inline_runs_at_ = 0;
  bool inline_room() {
    if (loop_->runs() != inline_runs_at_) inline_runs_at_ = loop_->runs(), inline_submits_ = 0;
    return ++inline_submits_ <= max_inline_submits;
  }
  ClientOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  std::shared_ptr<WireCounters> counters_;
  std::atomic<bool> open_{true};  // until closed or lost
  kj::Maybe<kj::Exception> lost_because_;  // [loop] the stream's failure, when it ended so
  /// The error for an operation on the closed connection: why it was lost if known (a TLS
  /// alert, a reset), else disconnected with `why`. [loop]
  std::exception_ptr closed_error(const char* why) const;
  /// Sets lost_because_ to the reason the server gave for ending the connection, if it gave one
  /// (an Abort carrying a remoteable error) and nothing else explains the loss. [loop]
  kj::Promise<void> server_reason();
  std::string server_version_;
  std::atomic<std::uint64_t> next_handle_{1};

  struct Errors final : kj::TaskSet::ErrorHandler {
    void taskFailed(kj::Exception&&) override {}  // evaluation tasks catch everything themselves
  } errors_;
  /// Serves the objects this side shares (ClientOptions::registry); kept until the connection
  /// goes, after its RPC system (the capabilities the peer holds refer to it). Set once, before
  /// the connection is handed out.
  std::shared_ptr<PeerHost> host_;
  kj::Maybe<RpcConnection> rpc_;                                    // [loop]
  kj::Maybe<wire::Registry::Client> registry_;                      // [loop]
  std::unordered_map<std::uint64_t, wire::Handle::Client> caps_;    // [loop]
  struct Live {
    std::shared_ptr<CompletionBase> completion;
    kj::Own<kj::PromiseFulfiller<void>> cancel;
  };
  std::unordered_map<std::uint64_t, Live> live_;                    // [loop]
  struct Cursor {
    bool started = false;
    bool done = false;
    kj::Maybe<wire::Cursor::Client> cap;
    kj::Maybe<kj::Promise<Batch>> ahead;  ///< the next batch, requested
  };
  std::unordered_map<std::uint64_t, Cursor> cursors_;               // [loop]
  /// Requests the next batch of `cursor` (iteration `id`). [loop]
  kj::Promise<Batch> request_next(std::uint64_t id, Cursor& cursor, std::uint32_t batch);
  /// What a batch that arrived does to iteration `id`: the last drops the cursor; another
  /// sends the request for the one after it. [loop]
  Batch arrived(std::uint64_t id, std::uint32_t batch, Batch b);
  struct Deferred {
    std::uint64_t id;
    std::weak_ptr<HandleState> self;
    std::shared_ptr<HandleState> parent;
    Step step;
  };
  /// A step request sent without an evaluation, counted in the window until it is answered. [loop]
  void track(kj::Promise<void> answered);
  /// Sends what waited for the window once it has room (from a fresh handler). [loop]
  void resume();
  void run_held_back() {
    auto held = kj::mv(held_back_);
    held_back_.clear();
    for (auto& h : held) h.run();
  }
  bool window_full() const { return unanswered_ >= options_.push_window; }
  /// Whether an operation made now must wait behind steps that wait for the window: the pushes
  /// among the deferred steps (those whose handles are gone) do not fit in it. (Steps of handles
  /// still held are not counted: an evaluation may send them as one chain.) [loop]
  bool must_wait() const { return !held_back_.empty() || pushes_wait(); }
  bool pushes_wait() const;  ///< the deferred part of must_wait()
  std::size_t unanswered_ = 0;                                       // [loop]
  struct HeldBack {
    kj::Function<void()> run;
    std::uint64_t id;                          ///< an evaluation's, else 0
    std::shared_ptr<CompletionBase> completion;  ///< an evaluation's, else null
  };
  std::deque<HeldBack> held_back_;                                   // [loop]
  bool resume_posted_ = false;                                       // [loop]
  kj::Maybe<kj::Promise<Value>> send_step(Deferred& d, wire::Handle::Fetch fetch);  // [loop]
  /// Sends `run` (each step made on the one before) as one Handle.chain call. [loop]
  kj::Promise<Value> send_chain(std::vector<Deferred>& run, wire::Handle::Fetch fetch, bool keep);
  /// Sets `fetch` on a step's request, sends it, and gives its result capability to handle `id`
  /// (unless `keep` is false) and its evaluation, if any, as a Value. [loop]
  template <class Request>
  kj::Maybe<kj::Promise<Value>> send_request(std::uint64_t id, Request& request, wire::Handle::Fetch fetch, bool keep = true);
  wire::Handle::Client& find_cap(std::uint64_t id);                  // [loop], without sending
  std::deque<Deferred> deferred_;                                    // [loop]
  bool deferred_posted_ = false;                                     // [loop]
  bool sending_deferred_ = false;                                    // [loop]
  std::atomic<std::uint64_t> next_op_{1};
  kj::Maybe<kj::TaskSet> tasks_;                                    // [loop]
};

/// An iteration (remoteable::Iteration) on a connection: dropping it ends the iteration.
class IterationState {
 public:
  IterationState(std::shared_ptr<HandleState> handle, std::uint32_t batch);
  ~IterationState();
  const std::shared_ptr<HandleState> handle;  ///< what is iterated
  const std::uint64_t id;
  const std::uint32_t batch;
};

/// What a Handle refers to: a capability id on a connection. Dropping it releases the capability.
class HandleState {
 public:
  HandleState(std::shared_ptr<PeerConnection> connection, std::uint64_t id)
      : connection(std::move(connection)), id(id) {}
  ~HandleState() { connection->release(id); }  // (release() counts it out)
  const std::shared_ptr<PeerConnection> connection;
  const std::uint64_t id;
};

template <class T, class Build>
asio::awaitable<T> PeerConnection::evaluate(Build build) {
  auto self = shared_from_this();
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr, T)>(
      [self, build = std::move(build)](auto handler) mutable {
        auto slot = asio::get_associated_cancellation_slot(handler);
        auto completion = std::make_shared<CompletionImpl<T, decltype(handler)>>(std::move(handler));
        auto id = self->next_op_.fetch_add(1);
        if (slot.is_connected()) {
          // Cancelling the await (a timeout, a parallel group) cancels the call on the wire.
          slot.assign([weak = std::weak_ptr<PeerConnection>(self), id](asio::cancellation_type) {
            if (auto c = weak.lock()) c->submit([c, id] { c->cancel(id); });
          });
        }
        bool submitted = self->submit([self, build = std::move(build), completion, id]() mutable {
          // Behind steps that wait for the window (pushes to a peer that answers slowly): after them.
          auto done = std::static_pointer_cast<CompletionBase>(completion);
          self->ordered([self, build = kj::mv(build), completion, id]() mutable {
            if (!self->open_) return completion->fail(self->closed_error("the connection is closed"));
            kj::Promise<T> promise = nullptr;
            try {
              promise = build(*self);
            } catch (kj::Exception& e) {
              return completion->fail(to_exception_ptr(e));
            } catch (...) {
              return completion->fail(std::current_exception());
            }
            auto stop = kj::newPromiseAndFulfiller<void>();
            self->live_.emplace(id, Live{completion, kj::mv(stop.fulfiller)});
            // The only evaluation in flight: its caller waits for nothing else, so what it wrote
            // goes out at the end of this handler instead of after the handlers queued behind it.
            if (self->live_.size() == 1) self->loop_->urgent();
            KJ_IF_MAYBE(tasks, self->tasks_) {
              // Whichever comes first: the answer, or a cancellation (which drops the call, and
              // Cap'n Proto sends Finish so that the server can stop it).
              auto cancelled = stop.promise.then([]() -> T {
                throw to_kj(RemoteError(ErrorKind::cancelled, "the call was cancelled"));
              });
              tasks->add(promise.exclusiveJoin(kj::mv(cancelled))
                             .then([completion, connection = self.get()](T&& value) {
                                     if (!completion->complete(nullptr, std::move(value), connection->loop_.get())) connection->answered();
                                   },
                                   [completion, connection = self.get()](kj::Exception&& e) {
                                     if (!completion->complete(to_exception_ptr(e), T{}, connection->loop_.get())) connection->answered();
                                   })
                             // The task belongs to tasks_, a member: `this` outlives it.
                             .attach(kj::defer([connection = self.get(), id] { connection->live_.erase(id); })));
            }
          }, id, kj::mv(done));
        });
        if (!submitted) completion->fail(disconnected_error("the peer's connection is closed"));
      },
      asio::use_awaitable);
}

}  // namespace remoteable::detail
