#pragma once
// remoteable::Server: exports objects to clients over Cap'n Proto RPC.

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <spdlog/common.h>

#include "actors/registry.hpp"
#include "rpc/endpoint.hpp"

namespace spdlog { class logger; }

namespace remoteable {

/// Places an export into the actor that already owns the export `name` (DESIGN §4 rule 3).
struct same_actor_as {
  std::string name;
};

struct ServerOptions {
  /// Threads of the actor pool. 0 means std::thread::hardware_concurrency().
  unsigned actor_threads = 0;
  /// The largest message accepted from a client, in 8-byte words (Cap'n Proto traversal limit).
  std::uint64_t max_message_words = 8 * 1024 * 1024;
  /// The deepest nesting accepted in a message.
  int max_nesting = 64;
  /// How long stop() lets in-flight calls finish before it closes connections.
  std::chrono::milliseconds stop_grace{2000};
  /// Open connections at most; a connection past the limit is closed at once.
  std::size_t max_connections = 1024;
  /// Live handles (capabilities) one connection may hold; past it, operations that would make
  /// a handle fail with an overloaded error.
  std::size_t max_handles_per_connection = 100'000;
  /// Calls one connection may have in flight; past it, calls fail with an overloaded error.
  std::size_t max_calls_per_connection = 10'000;
  /// Bytes of answers queued for a connection that does not read; past it, it is disconnected.
  std::size_t max_outbound_bytes = 64 * 1024 * 1024;
  /// A connection with no call for this long is closed. Zero turns the timeout off.
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(10)};
  /// How often idle and outbound limits are checked.
  std::chrono::milliseconds sweep_interval{250};
  /// A method, function or constructor that runs inline on the network thread for longer than
  /// this is treated as blocking from then on (as if registered with remoteable::blocking): its
  /// later calls go to the actor pool, so one slow call holds up other connections only once.
  /// Zero turns this off.
  std::chrono::microseconds slow_call{5000};
  /// The logger; by default one named "remoteable.server" writing to stderr.
  std::shared_ptr<spdlog::logger> logger;
  /// The logger's level. When unset it comes from the REMOTEABLE_LOG environment variable
  /// (trace, debug, info, warn, error, critical, off); when that is unset too, a default logger
  /// logs at warn and a given one keeps its level. An unknown REMOTEABLE_LOG value is ignored
  /// with a warning. Connections log at info, limits and failures at warn, each operation
  /// (each step of a chain) at trace.
  std::optional<spdlog::level::level_enum> log_level;
};

namespace detail { class ServerCore; }

/// A server: binds and listens at construction, serves once run() is called.
///
/// Ownership and threads: the Server owns its network thread's io_context (run by whoever calls
/// run()), the Cap'n Proto event loop hosted in it, and a thread pool on which actors run.
/// Exports and browse may be called from any thread, before or while it runs. stop() may be
/// called from any thread, including from a signal handler set up with asio::signal_set.
/// Destroying the Server stops it and waits for the pool; it must not run on the server's own
/// threads.
class Server {
 public:
  /// Binds `endpoint` and listens. Throws std::system_error if the address is taken.
  Server(Endpoint endpoint, const Registry& types, ServerOptions options = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// The port actually bound (useful with port 0).
  std::uint16_t port() const;

  /// Exports `object` under `name`, in a new actor unless the object is already owned.
  /// T must be registered with the Registry given to the server.
  template <class T>
  void export_object(std::shared_ptr<T> object, std::string name) {
    export_ref(registry_.make_ref(std::move(object)), std::move(name), nullptr);
  }
  /// Exports `object` under `name` into the actor of the export `actor.name`.
  template <class T>
  void export_object(std::shared_ptr<T> object, std::string name, const same_actor_as& actor) {
    export_ref(registry_.make_ref(std::move(object)), std::move(name), &actor.name);
  }
  /// Exports the registered class T: calling the handle constructs a T.
  template <class T>
  void export_class(std::string name) {
    export_ref(registry_.class_ref<T>(), std::move(name), nullptr);
  }
  /// Exports a plain value (int, double, bool, string, bytes, lists and maps of these).
  template <class V>
  void export_value(V&& value, std::string name) {
    export_ref(registry_.box(std::forward<V>(value)), std::move(name), nullptr);
  }
  /// Exports a free function (a function pointer or captureless lambda): calling the handle
  /// runs it. It runs in an actor of its own, one call at a time.
  template <class F>
  void export_function(std::string name, F function) {
    auto object = registry_.function(name, std::move(function));  // before `name` is moved
    export_ref(std::move(object), std::move(name), nullptr);
  }
  /// The same, for a function that may block: its calls always run on the actor pool.
  template <class F>
  void export_function(std::string name, F function, Blocking) {
    auto object = registry_.function(name, std::move(function), blocking);
    export_ref(std::move(object), std::move(name), nullptr);
  }
  /// Removes an export. Returns false if there was none by that name.
  bool unexport(std::string_view name);

  /// The exported names, sorted.
  std::vector<std::string> browse() const;

  /// Serves on the calling thread until stop().
  void run();
  /// Stops accepting, lets in-flight calls finish within ServerOptions::stop_grace, closes
  /// every connection and makes run() return. Thread-safe and idempotent.
  void stop();

  /// True when the exports `a` and `b` are served by one actor (introspection, for tests and
  /// diagnostics: actors merge when their objects meet, DESIGN §4).
  bool same_actor(std::string_view a, std::string_view b) const;

  /// Live server objects held by clients through capabilities (for leak checks).
  std::size_t live_handles() const;
  /// Open client connections.
  std::size_t connections() const;

 private:
  friend class ThreadedServer;
  void export_ref(Object ref, std::string name, const std::string* same_actor);
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
