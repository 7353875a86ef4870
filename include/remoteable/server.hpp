#pragma once
// remoteable::Server: exports objects to clients over Cap'n Proto RPC.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <spdlog/common.h>

#include <remoteable/auth.hpp>
#include <remoteable/registry.hpp>
#include <remoteable/endpoint.hpp>
#include <remoteable/tls.hpp>

namespace spdlog { class logger; }

namespace remoteable {

/// Places an export into the actor that already owns the export `name` (DESIGN §4 rule 3).
struct same_actor_as {
  std::string name;
};

/// Asks an export_* call to replace the export of that name if there is one, instead of throwing:
/// `server.export_object(node, "root", remoteable::replace)`.
struct Replace {
  explicit constexpr Replace() = default;
};
inline constexpr Replace replace{};

struct ServerOptions {
  /// Threads of the actor pool. 0 means std::thread::hardware_concurrency().
  unsigned actor_threads = 0;
  /// Network threads, each with its own Cap'n Proto event loop; a new connection goes to the
  /// one with the fewest connections and stays there. 0 means
  /// std::thread::hardware_concurrency(). run() serves the first on the calling thread and starts
  /// the others.
  unsigned network_threads = 0;
  /// The largest message accepted from a client, in 8-byte words (Cap'n Proto traversal limit).
  std::uint64_t max_message_words = 8 * 1024 * 1024;
  /// How many lists or maps deep a value may nest (1 to 1000), counted in value levels, as
  /// ClientOptions::max_nesting counts them: [[1]] is 2 deep. It bounds every value the server
  /// holds, not only one message: a value stored with handles to stored values counts their
  /// depth too, and so does a result a method makes. A deeper value, or result, fails that call
  /// with a value error; the connection stays.
  int max_nesting = 64;
  /// How long stop() lets in-flight calls finish before it closes connections.
  std::chrono::milliseconds stop_grace{2000};
  /// How long a client may leave what the server sent unacknowledged (a host or link that is
  /// gone) before its connection counts as lost: the calls server code makes on its handles
  /// fail with a disconnected error. Idle, a connection is probed after it (TCP keepalive).
  /// Zero: the system's defaults (minutes).
  std::chrono::milliseconds peer_timeout{30'000};
  /// Open connections at most; a connection past the limit is closed at once.
  std::size_t max_connections = 1024;
  /// Live handles (capabilities) one connection may hold; past it, operations that would make
  /// a handle fail with an overloaded error.
  std::size_t max_handles_per_connection = 100'000;
  /// Handles to the peer's objects that one connection may make the server hold (capabilities
  /// it sent in arguments and values: a client's shared objects, another server's objects
  /// passed on), alive at once; past it, the call that brings another fails with an overloaded
  /// error. Each is released when the server code that keeps it drops it, or when its
  /// connection ends.
  std::size_t max_remote_handles_per_connection = 10'000;
  /// For server code's calls on handles to a peer's objects: as ClientOptions::push_window, per
  /// connection, except that every step server code sends is awaited (never cancelled by
  /// dropping its handle), and at most 64 windows of steps wait whether or not the window is
  /// full: past that, server code's new steps fail at once (overloaded).
  std::size_t push_window = 1000;
  /// Calls one connection may have in flight, counted from the moment each is received (while
  /// its arguments are decoded and wait for the handles in them, too) until it ends however it
  /// ends; past it, calls fail with an overloaded error.
  std::size_t max_calls_per_connection = 10'000;
  /// Iterations (Handle::iterate) one connection may have open at once: each holds a snapshot
  /// of a container (at most what get() of it may expand to, 128 MiB) or a suspended generator
  /// until the client reads it to the end or releases it. Past it, iterate fails with an
  /// overloaded error.
  std::size_t max_cursors_per_connection = 64;
  /// The most elements one batch of an iteration carries, whatever the client asks for (a
  /// larger request is clamped, not refused). A batch also ends early once its elements
  /// expand to 8 MiB (it always carries at least one).
  std::uint32_t max_iterate_batch = 65'536;
  /// Bytes of snapshots the open iterations of one connection may hold together (a registered
  /// container's elements, copied or referred to when its iteration starts: sizeof(Object) +
  /// sizeof(Plain) each, about 80 bytes, plus the text, bytes and lists they hold). Past it,
  /// iterate fails with an overloaded error; a snapshot stops counting when its iteration is read
  /// to the end or released. Lists and maps are read in place and generators hold no copy:
  /// neither counts.
  std::size_t max_snapshot_bytes_per_connection = 256u << 20;
  /// Bytes of call messages one connection may have in flight (received, not yet answered).
  /// Past it the server stops reading from that connection until calls end: back-pressure,
  /// not an error (Cap'n Proto's flow limit). The message that crosses it is read, so at most
  /// this plus one message (max_message_words) is held. Zero turns it off.
  std::size_t max_inflight_call_bytes = 64 * 1024 * 1024;
  /// Bytes of answers queued for a connection that does not read. Checked each time an answer
  /// is queued and by the sweep: once more than this is queued, the next answer is not queued
  /// and the connection is dropped (so at most this plus one answer is held).
  std::size_t max_outbound_bytes = 64 * 1024 * 1024;
  /// Names one connection may have attached (Registry.attach) at a time; past it, attach fails
  /// with an overloaded error. A name stops counting when detached or when the connection ends.
  std::size_t max_attached_per_connection = 1'000;
  /// Names all clients together may have attached; past it, attach fails with an overloaded
  /// error. An attached name counts until it is detached or unexported, even after the
  /// connection that attached it has ended.
  std::size_t max_attached = 100'000;
  /// Who may detach a name: the connection that attached it, and any connection whose peer
  /// ("host:port") this returns true for. Empty (the default): only the attaching connection;
  /// once it has ended, only Server::unexport removes the name.
  std::function<bool(std::string_view peer)> may_detach_any;
  /// A connection with no call for this long is closed. Zero turns the timeout off.
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(10)};
  /// How often idle and outbound limits are checked.
  std::chrono::milliseconds sweep_interval{250};
  /// Where a method, function or constructor runs. Its first call runs on the actor pool, where
  /// the thread's CPU time is measured; while its calls use less CPU than this, the next ones
  /// run inline on the network thread whenever their actor is idle (no thread hop), and once one
  /// uses more, or waits (sleeps, blocks) for longer, they go to the pool, where different actors
  /// run in parallel. Zero: always the pool.
  std::chrono::microseconds inline_limit{50};
  /// The safety net: a method, function or constructor whose call used more than this of the
  /// thread's CPU time, or waited for longer, is treated as blocking from then on (as if
  /// registered with remoteable::blocking: never inline again), and the server logs a warning.
  /// Time the thread spent preempted by a loaded machine does not count. Zero turns this off.
  std::chrono::microseconds slow_call{5000};
  /// The logger. By default the one registered with spdlog under "remoteable.server": an
  /// application's own, if it registered one under that name before, or else one the library
  /// makes and registers on first use, writing to stderr, with spdlog's level (info unless
  /// the application changed it: spdlog::set_level, spdlog::cfg::load_env_levels) and pattern; it follows
  /// spdlog::set_level from then on. All servers of the process share it.
  std::shared_ptr<spdlog::logger> logger;
  /// A level of this server's own. For the default logger this makes a private copy (same name
  /// and sinks, not registered, not changed by spdlog::set_level); a given logger is set to it.
  /// When unset: the REMOTEABLE_LOG environment variable (trace, debug, info, warn, error,
  /// critical, off), if set, is applied to a given logger, and to the default one when the
  /// library makes it; otherwise the logger keeps its level. An unknown REMOTEABLE_LOG value is
  /// ignored with a warning.
  /// Lines: "listening on ADDRESS:PORT" and connections at info, limits and failures at warn,
  /// what a method threw at debug (with the type and member), each operation (each step of a
  /// chain) and each failed call at trace (with the connection's "host:port" and the error kind).
  std::optional<spdlog::level::level_enum> log_level;
  /// Where to serve Prometheus metrics over HTTP (GET /metrics, text format), unset (the
  /// default): no metrics, nothing recorded. Bound at construction (port 0: any free port,
  /// see Server::metrics_port()); a failure throws std::system_error naming the address. A
  /// name is resolved, an IPv4 address taken first. Logs "metrics on http://ADDRESS:PORT/metrics"
  /// at info. The endpoint has no authentication and serves anyone who can reach it: keep it on
  /// loopback or a private network. The metrics are listed in the README ("Metrics").
  std::optional<Endpoint> metrics;
  /// TLS for every connection (see ServerTls); unset (the default): plain TCP.
  std::optional<ServerTls> tls;
  /// Authentication and per-principal authority (see ServerAuth); unset (the default): none,
  /// and every client may browse and fetch every export, store, attach and detach (its own
  /// attached names), as the README's "Authentication and authority" says.
  std::optional<ServerAuth> auth;
};

namespace detail { class ServerCore; }

/// A server: binds and listens at construction, serves once run() is called.
///
/// Ownership and threads: the Server owns its network threads (ServerOptions::network_threads),
/// each an io_context with a Cap'n Proto event loop hosted in it: the first is run by whoever
/// calls run() and accepts connections, the others by threads that run() starts; and a thread
/// pool on which actors run. Exports and browse may be called from any thread, before or while
/// it runs. stop() may be called from any thread, including from a signal handler set up with
/// asio::signal_set. Destroying the Server stops it and waits for its threads; it must not run
/// on the server's own threads.
class Server {
 public:
  /// Binds `endpoint` and listens. Throws std::system_error if the address is taken, and
  /// std::invalid_argument (before binding) if a member of `types` names a class or enum that
  /// is not registered in it (Registry::check_complete).
  Server(Endpoint endpoint, const Registry& types, ServerOptions options = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// The port actually bound (useful with port 0).
  std::uint16_t port() const;
  /// The port the metrics endpoint listens on (ServerOptions::metrics); 0 when metrics are off.
  std::uint16_t metrics_port() const;

  // Export names: a name must be one identifier a client can write (an ASCII letter or '_',
  // then letters, digits or '_', at most 255 bytes, not true/True/false/False/none/None/not),
  // and free. Every
  // export_* throws std::invalid_argument for a name that breaks the rule, or that is taken
  // (by the server or by a client's attach) unless it is given remoteable::replace last, which
  // replaces the export of that name. export_function also throws it for a function whose
  // signature names a class or enum not registered.

  /// Exports `object` under `name`, in a new actor unless the object is already owned.
  /// T must be registered with the Registry given to the server; `object` must not be null.
  template <class T>
  void export_object(std::shared_ptr<T> object, std::string name) {
    export_ref(object_ref(std::move(object)), std::move(name), nullptr, false);
  }
  template <class T>
  void export_object(std::shared_ptr<T> object, std::string name, Replace) {
    export_ref(object_ref(std::move(object)), std::move(name), nullptr, true);
  }
  /// Exports `object` under `name` into the actor of the export `actor.name`.
  template <class T>
  void export_object(std::shared_ptr<T> object, std::string name, const same_actor_as& actor) {
    export_ref(object_ref(std::move(object)), std::move(name), &actor.name, false);
  }
  template <class T>
  void export_object(std::shared_ptr<T> object, std::string name, const same_actor_as& actor, Replace) {
    export_ref(object_ref(std::move(object)), std::move(name), &actor.name, true);
  }
  /// Exports the registered class T: calling the handle constructs a T.
  template <class T>
  void export_class(std::string name) {
    export_ref(registry_.class_ref<T>(), std::move(name), nullptr, false);
  }
  template <class T>
  void export_class(std::string name, Replace) {
    export_ref(registry_.class_ref<T>(), std::move(name), nullptr, true);
  }
  /// Exports a plain value (int, double, bool, string, bytes, lists and maps of these).
  template <class V>
  void export_value(V&& value, std::string name) {
    export_ref(registry_.box(std::forward<V>(value)), std::move(name), nullptr, false);
  }
  template <class V>
  void export_value(V&& value, std::string name, Replace) {
    export_ref(registry_.box(std::forward<V>(value)), std::move(name), nullptr, true);
  }
  /// Exports a free function (a function pointer or captureless lambda): calling the handle
  /// runs it. It runs in an actor of its own, one call at a time.
  template <class F>
  void export_function(std::string name, F function) {
    auto object = registry_.function(name, std::move(function));  // before `name` is moved
    export_ref(std::move(object), std::move(name), nullptr, false);
  }
  template <class F>
  void export_function(std::string name, F function, Replace) {
    auto object = registry_.function(name, std::move(function));
    export_ref(std::move(object), std::move(name), nullptr, true);
  }
  /// The same, for a function that may block: its calls always run on the actor pool.
  template <class F>
  void export_function(std::string name, F function, Blocking) {
    auto object = registry_.function(name, std::move(function), blocking);
    export_ref(std::move(object), std::move(name), nullptr, false);
  }
  template <class F>
  void export_function(std::string name, F function, Blocking, Replace) {
    auto object = registry_.function(name, std::move(function), blocking);
    export_ref(std::move(object), std::move(name), nullptr, true);
  }
  /// Removes an export. Returns false if there was none by that name.
  bool unexport(std::string_view name);
  /// Makes the export `name` read-only for every client (or writable again): setting an
  /// attribute or an item fails with an attribute error on its object, on every object reached
  /// from it through handles (attributes, items, calls, values fetched), and on any object a
  /// client passed back to the server through such a handle (as an argument, to store or to
  /// attach). Methods still run. The mark belongs to the name: it may be set before the export
  /// exists and stays when the export is replaced, unexported or attached by a client.
  void set_read_only(std::string name, bool read_only = true);

  /// The exported names, sorted.
  std::vector<std::string> browse() const;

  /// Starts the other network threads, then serves the first on the calling thread until
  /// stop().
  void run();
  /// Stops accepting, lets in-flight calls finish within ServerOptions::stop_grace, closes
  /// every connection and makes run() return. Thread-safe and idempotent.
  ///
  /// Called from any thread but the server's own, it returns only when the stop is done and no
  /// user code of this server runs or will run: cancelled coroutine methods have finished and
  /// no job is left on the actor pool, so the caller may destroy the objects it exported. (When
  /// run() is not running, it serves the network thread itself meanwhile.) Called from the
  /// server's own threads (inside a method, or an asio::signal_set handler on the network
  /// thread) it cannot wait for itself: it starts the stop and returns at once.
  void stop();

  /// True when the exports `a` and `b` are served by one actor (introspection, for tests and
  /// diagnostics: actors merge when their objects meet, DESIGN §4).
  bool same_actor(std::string_view a, std::string_view b) const;

  /// Live server objects held by clients through capabilities (for leak checks).
  std::size_t live_handles() const;
  /// Handles to peers' objects (a client's shared object, another server's passed on) that this
  /// server's objects and values hold (for leak checks).
  std::size_t peer_handles() const;
  /// Open client connections.
  std::size_t connections() const;
  /// Calls received and not yet ended, on every connection (introspection, for tests).
  std::size_t calls_in_flight() const;
  /// The most bytes of answers ever queued, unsent, for one connection (a high-water mark over
  /// connections that have ended and the sweep's view of open ones; for tests).
  std::size_t peak_queued_bytes() const;

 private:
  friend class ThreadedServer;
  template <class T>
  Object object_ref(std::shared_ptr<T> object) const {
    if (!object) throw std::invalid_argument("export_object: the object is null");
    return registry_.make_ref(std::move(object));
  }
  void export_ref(Object ref, std::string name, const std::string* same_actor, bool replace);
  const Registry& registry_;
  std::shared_ptr<detail::ServerCore> core_;
};

/// A Server that serves on a background thread from construction until destruction or stop().
class ThreadedServer {
 public:
  ThreadedServer(Endpoint endpoint, const Registry& types, ServerOptions options = {});
  ~ThreadedServer();
  Server& server() noexcept { return server_; }
  Server* operator->() noexcept { return &server_; }
  std::uint16_t port() const { return server_.port(); }
  /// Stops the server and joins the thread. Idempotent.
  void stop();

 private:
  Server server_;
  std::mutex join_mutex_;
  std::thread thread_;
};

}  // namespace remoteable
