#pragma once
// ServerCore: the state behind a Server, shared by its network loop and its actors. Internal.

#include <capnp/capability.h>

#include <asio/cancellation_signal.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/steady_timer.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/thread_pool.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <list>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <thread>
#include <variant>
#include <vector>

#include "actors/actor.hpp"
#include "actors/authority.hpp"
#include "actors/detail/outcome.hpp"
#include "actors/metrics.hpp"
#include "rpc/tls.hpp"
#include <remoteable/detail/object.hpp>
#include <remoteable/server.hpp>
#include "schemas/remoteable.capnp.h"

namespace asio::ssl { class context; }
#include "rpc/connection.hpp"
#include "rpc/event_port.hpp"

namespace spdlog { class logger; }

namespace remoteable::detail {

struct Budget;
class PeerConnection;

struct Export {
  Object object;
  std::shared_ptr<Actor> actor;
  bool attached = false;  ///< exported by a client through Registry.attach
  /// The connection that attached it (while it is open): counts it, and may detach it.
  std::weak_ptr<Budget> attached_by;
  /// Attached through a read-only handle: handles fetched from it are read-only.
  bool read_only = false;
};

class HandleServer;
class ServerConnection;

/// What one connection uses, checked against the ServerOptions limits. [loop]
struct Budget {
  std::size_t handles = 0;    ///< live capabilities made for this connection
  std::size_t in_flight = 0;  ///< operations accepted and not yet answered
  std::size_t calls = 0;      ///< calls received and not yet ended, decoding included (CallSlot)
  std::size_t cursors = 0;    ///< iterations open (Cursor capabilities alive)
  /// Bytes the snapshots of its open iterations hold (changed on actors, hence atomic).
  std::atomic<std::size_t> snapshot_bytes{0};
  std::size_t attached = 0;   ///< names this connection attached that are still exported [mutex]
  std::string peer;           ///< "host:port", for ServerOptions::may_detach_any
  std::string address;        ///< the peer's IP address, for the rate limit of failed authentications
  std::string certificate;    ///< the subject of the peer's verified TLS client certificate, if any
  /// With authentication (ServerOptions::auth): the principal this connection authenticated
  /// as (or its client certificate maps to), null until then; one per connection.
  std::shared_ptr<const Grant> principal;
  std::chrono::steady_clock::time_point connected_at = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_activity = std::chrono::steady_clock::now();
  /// The handles the server holds to this peer's objects, made on the first one (unwrap);
  /// closed by the connection before its RPC system goes. [loop]
  std::shared_ptr<PeerConnection> peer_handles;
  void touch() { last_activity = std::chrono::steady_clock::now(); }
};

/// One call's cancellation, shared by the loop (which learns that the client cancelled) and the
/// actor (which stops a coroutine method). The signal is only emitted on the actor's strand.
struct CallCancel {
  std::atomic<bool> cancelled{false};
  asio::cancellation_signal signal;
};

/// How the calls of one method, function or constructor have been running, which decides where
/// the next one runs (ServerCore::call_stats). Shared by the loop, which reads it, and the threads
/// that run the calls, which update it: atomics.
struct CallStats {
  enum State : std::uint8_t {
    unknown,   ///< not measured yet, or its last inline run took long: the pool, measured there
    fast,      ///< its last measured runs used less than inline_limit: inline when its actor is idle
    slow,      ///< used more than inline_limit, or waited: the pool until `fast_runs` in a row
    blocking,  ///< used more than slow_call, or waited longer: the pool for good
  };
  std::atomic<std::uint8_t> state{unknown};
  std::atomic<std::uint8_t> fast_runs{0};  ///< consecutive runs under inline_limit while slow
  /// A coroutine method's: the measurements of its later segments, once looked up
  /// (ServerCore::resumed_stats).
  std::atomic<CallStats*> resumed{nullptr};
  /// Runs under inline_limit in a row that bring a slow call back inline.
  static constexpr std::uint8_t fast_runs_to_inline = 16;

  /// Whether the next call goes to the pool rather than inline.
  bool off_loop() const noexcept { return state.load(std::memory_order_relaxed) != fast; }
};

/// One network thread (ServerOptions::network_threads): an io_context with its own KJ loop, and
/// the Cap'n Proto objects of the connections assigned to it. Lane 0 is served by Server::run()
/// and also holds the acceptor; the others by threads of their own, started by run().
///
/// Ownership and threads: owned by the ServerCore, lives as long as it. Members marked [lane]
/// are touched only on its loop's strand; `assigned` from any thread.
struct Lane {
  explicit Lane(std::size_t i);  // (both where Kj is complete)
  /// A lane on someone else's loop (a client's, which serves its shared objects): its io is
  /// never run.
  Lane(std::size_t i, std::shared_ptr<KjLoop> on);
  ~Lane();
  const std::size_t index;
  asio::io_context io{1};
  std::shared_ptr<KjLoop> loop;
  struct Kj;
  std::unique_ptr<Kj> kj;  ///< the loop-side state, created on first use (ServerCore::kj()) [lane]
  /// Connections assigned to it and not yet closed (handshakes included): where the next goes.
  std::atomic<std::size_t> assigned{0};
  asio::steady_timer sweep_timer{io};
  asio::steady_timer grace_timer{io};
  asio::steady_timer flush_timer{io};
  bool draining = false;   ///< stopping: waits for its calls to end [lane]
  int flush_attempts = 0;  // [lane]
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> keep_running{io.get_executor()};
  std::thread thread;  ///< lanes past 0, once run() started them
  bool stopped = false;  ///< its part of the stop is done [ServerCore::stop_mutex_]
  bool started = false;  ///< lanes past 0: its thread runs [ServerCore::stop_mutex_]
};

/// A connection's place on its lane, counted in Lane::assigned while it is held. Move-only.
class LaneTicket {
 public:
  explicit LaneTicket(Lane& lane) : lane_(&lane) { lane_->assigned.fetch_add(1, std::memory_order_relaxed); }
  LaneTicket(LaneTicket&& other) noexcept : lane_(std::exchange(other.lane_, nullptr)) {}
  LaneTicket& operator=(LaneTicket&&) = delete;
  ~LaneTicket() {
    if (lane_) lane_->assigned.fetch_sub(1, std::memory_order_relaxed);
  }
  Lane& lane() const { return *lane_; }

 private:
  Lane* lane_;
};

/// Shared state of one server.
///
/// Threads: each Lane is a network thread (the Cap'n Proto objects of its connections live on
/// its loop); `pool` runs the actors. Members marked [loop] are touched only on the strand of
/// the loop of the lane they belong to (the one current on the calling thread); [mutex] ones
/// under `exports_mutex`; [lane 0] ones on lane 0's thread (the acceptor's); the rest are
/// immutable after construction, atomic, or guarded as they say.
class ServerCore : public std::enable_shared_from_this<ServerCore> {
 public:
  ServerCore(Endpoint endpoint, const Registry& registry, ServerOptions options);
  /// A core that listens nowhere: one lane on `loop` (a client's), for the objects a client
  /// shares with its server (PeerHost).
  ServerCore(const Registry& registry, ServerOptions options, std::shared_ptr<KjLoop> loop);
  ~ServerCore();

  const Registry& registry;
  const ServerOptions options;
  std::shared_ptr<spdlog::logger> log;
  /// The network threads; never empty, lanes[0] holds the acceptor. Fixed at construction.
  std::vector<std::unique_ptr<Lane>> lanes;
  asio::io_context& io;  ///< lanes[0]'s
  asio::thread_pool pool;
  asio::ip::tcp::acceptor acceptor;
  IdentityMap identities;

  std::mutex exports_mutex;
  std::map<std::string, Export, std::less<>> exports;  // [mutex]
  std::set<std::string, std::less<>> read_only_names;  ///< Server::set_read_only [mutex]
  /// ServerOptions::auth, null without. Its rate-limit records are [loop].
  std::unique_ptr<Authenticator> auth;
  ReadOnlyObjects read_only_objects;  // (its own mutex)

  std::atomic<std::size_t> live_handles{0};
  /// Handles to peers' objects alive (Server::peer_handles; each counts itself out when it
  /// goes, maybe after the core: shared).
  std::shared_ptr<std::atomic<std::size_t>> peer_handles = std::make_shared<std::atomic<std::size_t>>(0);
  std::atomic<std::size_t> open_connections{0};
  std::atomic<std::size_t> calls_in_flight{0};  ///< every connection's Budget::calls together
  std::atomic<std::size_t> peak_queued{0};      ///< the most bytes ever queued for one connection
  std::size_t attached_names = 0;               ///< exports made by clients (attach) [mutex]
  std::atomic<bool> stopping{false};
  /// The metrics (ServerOptions::metrics), null when off: then recording is a null check. Made
  /// after the atomics it reads, so it (and its endpoint's threads) goes first.
  std::unique_ptr<ServerMetrics> metrics;

  /// Runs `work(ctx)` on `actor`'s strand and resolves with its outcome on the calling lane's loop. Objects in
  /// `touched` that other actors own are merged into this actor first. Unless `blocking`, an
  /// idle actor runs the work inline on the loop's thread. With `fetch`, an object result comes
  /// back as Fetched. `series`, if not null (metrics on), records the call's end and latency.
  /// [loop] (Defined in actors/detail/on_actor.hpp.)
  template <class Work>
  kj::Promise<Outcome> on_actor(const std::shared_ptr<Budget>& budget, const std::shared_ptr<Actor>& actor, CallSeries* series, Work work,
                                std::vector<Object> touched = {}, bool blocking = false,
                                wire::Handle::Fetch fetch = wire::Handle::Fetch::NONE);

  /// A capability for `object`, owned by `actor` (or a new actor when `fresh`), counted in the
  /// connection's budget (a builtin::remote: the capability it came as, on its connection's
  /// lane only); `read_only` refuses setting attributes and items through it and the
  /// handles derived from it (Server::set_read_only). [loop]
  wire::Handle::Client wrap(const Object& object, const std::shared_ptr<Actor>& actor,
                            const std::shared_ptr<Budget>& budget, bool fresh = false, bool read_only = false);
  /// The actor that owns `object` reached from `actor` (a new one when `fresh` or none): an
  /// object already owned keeps its owner, merged with `actor` (DESIGN §4 rules 1-2). [loop]
  std::shared_ptr<Actor> owner_for(const Object& object, const std::shared_ptr<Actor>& actor, bool fresh);
  /// The capability a Handle to a peer's object came as, to send on. [loop]
  wire::Handle::Client remote_cap(const Handle& handle);
  /// The object behind a capability that came over the connection of `budget`: this server's
  /// own (an object that comes through a read-only handle joins read_only_objects), or else a
  /// builtin::remote holding a Handle to the peer's object (no actor), counted against
  /// max_remote_handles_per_connection. [loop]
  kj::Promise<std::pair<Object, std::shared_ptr<Actor>>> unwrap(wire::Handle::Client cap, const std::shared_ptr<Budget>& budget);
  /// The same at once for a settled capability that is not this process's own (the peer's, a
  /// third party's, a broken one): null for one that is, or that may still resolve to one
  /// (unwrap() looks those up). Throws as unwrap() does. [loop]
  kj::Maybe<Object> unwrap_now(wire::Handle::Client& cap, const std::shared_ptr<Budget>& budget);
  /// unwrap() for one that unwrap_now() left: this server's own, or a promise. [loop]
  kj::Promise<std::pair<Object, std::shared_ptr<Actor>>> look_up(wire::Handle::Client cap, const std::shared_ptr<Budget>& budget);
  /// The builtin::remote for a capability of the peer's (unwrap), counted. [loop]
  Object peer_object(wire::Handle::Client cap, const std::shared_ptr<Budget>& budget);

  /// Decodes wire values into objects; handles inside are resolved as unwrap() does. [loop]
  kj::Promise<std::vector<Object>> decode(capnp::List<wire::Value>::Reader values, const std::shared_ptr<Budget>& budget);
  kj::Promise<Object> decode(wire::Value::Reader value, const std::shared_ptr<Budget>& budget);
  /// The same at once, for values whose handles unwrap_now() resolves (most hold none): null
  /// when one does not, and the caller decodes it with decode() instead (the peer handles made
  /// meanwhile are dropped). Malformed values throw as decode() does. [loop]
  kj::Maybe<std::vector<Object>> decode_now(capnp::List<wire::Value>::Reader values, const std::shared_ptr<Budget>& budget);
  kj::Maybe<Object> decode_now(wire::Value::Reader value, const std::shared_ptr<Budget>& budget);
  /// Encodes a plain value; objects inside become capabilities owned by `actor`. [loop]
  void encode(wire::Value::Builder out, const Plain& value, const std::shared_ptr<Actor>& actor,
              const std::shared_ptr<Budget>& budget, bool read_only = false);

  /// The measurements of the calls made under `key` (method_key, invoke_key), which decide
  /// where its next call runs; null for a null key. Entries live as long as the server; past
  /// max_call_stats keys, the rest share one. Any thread.
  CallStats* call_stats(const void* key);
  /// The measurements of what a coroutine method measured under `first` does after its
  /// co_awaits (its later segments: MethodSegments), kept apart from its first segment's. Keyed
  /// by an address inside `first` itself, which no other key can be; looked up once, then kept
  /// in `first`. Any thread.
  CallStats& resumed_stats(CallStats& first) {
    if (auto* known = first.resumed.load(std::memory_order_acquire)) return *known;
    auto* found = call_stats(reinterpret_cast<const char*>(&first) + 1);
    first.resumed.store(found, std::memory_order_release);  // (a race finds the same entry)
    return *found;
  }
  /// Whether a call measured under `stats` goes to the pool (not measured yet, or slow) rather
  /// than inline on the network thread when its actor is idle. Null stats: inline. Any thread.
  bool off_loop(const CallStats* stats) const noexcept {
    return stats && (options.inline_limit.count() == 0 || stats->off_loop());
  }
  /// Logs at debug what a method (`member`; empty for a function or class object called) threw,
  /// as the error its caller gets. Any thread; formats nothing when debug is off.
  void log_user_error(const Object& self, std::string_view member, std::exception_ptr error) const;
  /// Records a call of `stats` that ran inline for `wall`. Any thread.
  void ran_inline(CallStats& stats, std::chrono::nanoseconds wall);
  /// Records a call of `stats` (`self`'s member `name`) that used `cpu` of its thread's time and,
  /// if it waited (slept or blocked), took `waited` in all (else zero). Any thread.
  void ran_measured(CallStats& stats, const Object& self, std::string_view name, std::chrono::nanoseconds cpu,
                    std::chrono::nanoseconds waited);

  /// Uncounts an attached export that is going away (detach, unexport, replaced). [mutex]
  void forget_attached(Export& e);

  void start_accepting();
  void stop();
  void teardown(Lane& lane);  ///< drops every Cap'n Proto object of `lane`. [loop]
  /// Joins the threads of the lanes past 0 (they end with their lane's stop). Not on them.
  void join_lanes();
  /// A lane thread's body: runs the lane's io until its stop (lanes past 0).
  void serve_lane(Lane& lane);

  /// True on the server's own threads: inside a lane's `io.run()` (a network thread) or on the pool.
  bool on_own_thread();
  /// Server::run: starts the other lanes' threads and accepting (unless stopping), and serves the
  /// first network thread until the server stops. Returns at once if it has stopped already.
  void run();
  /// Waits until the stop has finished on every network thread and no user code runs or is
  /// queued (user_jobs is zero). Serves the first network thread itself while nobody else does.
  /// Not on the server's own threads.
  void await_stopped();
  /// Waits until no thread is inside run_io().
  void await_no_runner();

  /// One unit of user code counted for stop(): an operation handed to an actor, from when it is
  /// made on the loop until it has run (or was dropped), and a coroutine method until its
  /// completion handler has run. Move-only; the moved-from token counts nothing.
  class UserJob {
   public:
    explicit UserJob(std::shared_ptr<ServerCore> core);  // (inline below: made for every call)
    UserJob(UserJob&& other) noexcept : core_(std::move(other.core_)) {}
    UserJob& operator=(UserJob&&) = delete;
    ~UserJob();

   private:
    std::shared_ptr<ServerCore> core_;
  };

  using Kj = Lane::Kj;
  /// The lane whose loop is current on this thread. [loop]
  Lane& here();
  /// here()'s loop-side state, made on first use. [loop]
  Kj& kj() { return kj(here()); }
  Kj& kj(Lane& lane);
  /// True on a network thread of this server with its loop current.
  bool on_loop() const noexcept;

 private:
  friend class PendingCall;
  void accept_one();
  /// Sets up a connection on an accepted socket, plain or TLS after its handshake, unless the
  /// server is stopping or at max_connections. [loop]
  /// `address`: the peer's IP; `subject`: its verified TLS client certificate's, if any.
  /// On the ticket's lane, whose connection it becomes.
  void admit(LaneTicket ticket, Connected connected, std::string peer, std::string address, std::string subject);
  /// TLS: runs the handshake on an accepted socket within ServerTls::handshake_timeout, then
  /// admits it. Handshakes under way count against max_connections. On the ticket's lane, whose
  /// io_context `socket` uses.
  void handshake(LaneTicket ticket, asio::ip::tcp::socket socket, std::string peer, std::string address);
  struct Handshake;
  std::shared_ptr<asio::ssl::context> tls_;         // set when options.tls is
  std::mutex handshakes_mutex_;
  std::list<std::weak_ptr<Handshake>> handshakes_;  // under way, closed by stop() [handshakes_mutex_]
  std::atomic<std::size_t> handshaking_{0};
  /// Retries accepting after `ec`, on accept_timer_ with a doubling back-off; logs at most
  /// once per accept_report_interval. [lane 0]
  void accept_failed(std::error_code ec);
  /// Picks the lane for a new connection: the one with the fewest assigned. Any thread.
  Lane& pick_lane();
  /// Hands a call's outcome to `lane`'s loop, where the PendingCall `id` waits. Any thread.
  void complete(Lane& lane, std::uint64_t id, Outcome outcome, std::exception_ptr error);
  void sweep(Lane& lane);  ///< closes idle connections and those that do not read. [loop]
  /// Resolves `endpoint` and binds the acceptor to the first of its addresses that binds; logs
  /// "listening on ADDRESS:PORT" at info. Throws std::system_error naming the address and why.
  void listen(const Endpoint& endpoint);
  void schedule_sweep(Lane& lane);
  /// Starts `lane`'s part of a stop: waits up to stop_grace for its calls. [loop]
  void drain(Lane& lane);
  void maybe_finish_stop(Lane& lane);  ///< tears down once a stopping lane has no call left. [loop]
  /// Tears `lane` down and lets its thread end; the last lane to finish tells the stop()
  /// waiters. [loop]
  void finish_stop(Lane& lane);
  /// Counts `lane` as stopped; the last one tells the stop() waiters. Any thread.
  void lane_stopped(Lane& lane);
  /// Runs `io` on this thread, counted in io_runners_. Called with `lock` (on stop_mutex_)
  /// held; returns with it held.
  void serve(std::unique_lock<std::mutex>& lock);

  // Accept failures (EMFILE, ENFILE, ENOBUFS, ...): retried after a back-off that doubles from
  // accept_backoff_min to accept_backoff_max and resets on success, so a process out of
  // descriptors neither spins nor floods the log. [lane 0]
  static constexpr std::chrono::milliseconds accept_backoff_min{10};
  static constexpr std::chrono::milliseconds accept_backoff_max{1000};
  static constexpr std::chrono::milliseconds accept_report_interval{1000};
  asio::steady_timer accept_timer_{io};
  std::chrono::milliseconds accept_backoff_ = accept_backoff_min;
  std::size_t accept_failures_ = 0;     // since the last success
  std::size_t accept_unreported_ = 0;   // failures not yet in a log line
  bool accept_reported_failure_ = false;  // a failure line was logged since the last success
  std::chrono::steady_clock::time_point accept_reported_{};

  // What stop() waits for (any thread): the network side has finished the stop, and no user
  // code of this server runs or is queued. The count is atomic so that a call costs no lock;
  // a job that brings it to zero takes the mutex only while someone waits (stop_waiting_).
  std::atomic<std::size_t> user_jobs_{0};
  std::atomic<bool> stop_waiting_{false};
  std::mutex stop_mutex_;
  std::condition_variable stop_changed_;
  bool network_stopped_ = false;   // [stop_mutex_] every lane has finished its stop
  std::size_t lanes_stopped_ = 0;  // [stop_mutex_]
  bool lanes_started_ = false;     // [stop_mutex_] run() started (or tried) the lanes' threads
  int io_runners_ = 0;             // [stop_mutex_] threads inside run_io()
  bool waiting_logged_ = false;    // [stop_mutex_]

  // Call measurements by key (CallStats). Looked up by every measured call, from the loop and
  // from the actors' strands: a mutex, not a strand. The map's nodes never move.
  static constexpr std::size_t max_call_stats = 4096;
  std::mutex stats_mutex_;
  std::unordered_map<const void*, CallStats> call_stats_;
  CallStats overflow_stats_;  // shared by the keys past max_call_stats
};

inline ServerCore::UserJob::UserJob(std::shared_ptr<ServerCore> core) : core_(std::move(core)) { core_->user_jobs_.fetch_add(1); }

}  // namespace remoteable::detail
