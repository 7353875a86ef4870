#pragma once
// remoteable::Client: a connection to a server, and the registry operations on it.

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <remoteable/client_options.hpp>
#include <remoteable/handle.hpp>
#include <remoteable/endpoint.hpp>
#include <remoteable/registry.hpp>
#include <remoteable/version.hpp>

namespace remoteable {

/// A connection to a remoteable server.
///
/// Ownership and threads: Client is a cheap shared reference to the connection. The Cap'n Proto
/// side of the connection lives on a strand of the executor given to `connect`, which may be run
/// by any number of threads. Client and its Handles may be used from any thread. Destroying the
/// last Client copy closes the connection: awaits still pending end with a disconnected error, and
/// Handles left over fail the same way.
class Client {
 public:
  /// Connects to `endpoint`, making up to `connect_attempts` attempts. Throws the last attempt's
  /// error: RemoteError(timeout) if it took longer than `connect_timeout`, else
  /// RemoteError(disconnected). Each failed attempt is logged at info.
  static asio::awaitable<Client> connect(asio::any_io_executor executor, Endpoint endpoint, ClientOptions options);
  /// The same with the default options. (An overload, not a default argument: GCC 12 copies a
  /// default argument made in a coroutine bit by bit, which a std::string in the options does
  /// not survive. For the same reason, pass options as a named variable, not a temporary.)
  static asio::awaitable<Client> connect(asio::any_io_executor executor, Endpoint endpoint);

  /// A handle to the export `name`. No round trip: an unknown name surfaces as a name-kind
  /// error at the first evaluation that depends on the handle.
  [[nodiscard]] Handle fetch(std::string_view name) const;
  /// The names exported by the server, sorted.
  [[nodiscard]] asio::awaitable<std::vector<std::string>> browse() const;
  /// Stores `value` on the server and returns a handle to it. No round trip.
  [[nodiscard]] Handle store(Value value) const;
  /// Exports `handle` under `name`. The server keeps the object until `detach(name)`.
  [[nodiscard]] asio::awaitable<void> attach(const Handle& handle, std::string_view name) const;
  /// Removes the export `name`.
  [[nodiscard]] asio::awaitable<void> detach(std::string_view name) const;

  /// Shares `object`, of a type registered in ClientOptions::registry, with the server: a Handle
  /// to it, which can be passed in calls like any handle (a callback, a subscriber). The
  /// server's calls on it run on this client's actors, one at a time per object, while the
  /// server holds it: dropping every handle to it on both sides, or the end of the connection,
  /// releases it. Throws std::logic_error without a registry, std::invalid_argument for null.
  /// Any thread.
  template <class T>
  [[nodiscard]] Handle share(std::shared_ptr<T> object) const {
    if (!object) throw std::invalid_argument("Client::share: the object is null");
    return share_object(shared_registry().make_ref(std::move(object)));
  }
  /// Capabilities to the objects this client shares that are alive: held by its server, or by
  /// this client's own handles from share() (for leak checks).
  std::size_t shared_handles() const;

  /// Closes the connection now. Pending awaits end with a disconnected error. Idempotent.
  void close() const;
  /// Connects again to the same endpoint, with the same options, replacing a closed or lost
  /// connection for every copy of this Client. Handles from the old connection stay broken;
  /// fetch names again.
  [[nodiscard]] asio::awaitable<void> reconnect() const;
  /// False once the connection is closed or lost.
  bool connected() const;
  /// The server's library version ("MAJOR.MINOR.PATCH"), as it reported when this connection
  /// was made. connect() checks that it speaks remoteable::protocol_version, and fails with a
  /// `protocol` error (not retried) for a server that does not.
  std::string server_version() const;

  /// Message counts at the stream (always kept) and the message trace (with trace_wire).
  WireStats wire_stats() const;
  std::vector<WireEvent> wire_trace() const;
  void clear_wire_trace() const;

 private:
  static asio::awaitable<Client> connect_owned(asio::any_io_executor executor, Endpoint endpoint,
                                               std::shared_ptr<const ClientOptions> options);
  struct Owner;
  explicit Client(std::shared_ptr<Owner> owner);
  const Registry& shared_registry() const;  // throws std::logic_error without one
  Handle share_object(Object object) const;
  static asio::awaitable<void> reconnect_owner(std::shared_ptr<Owner> owner);
  std::shared_ptr<Owner> owner_;
};

}  // namespace remoteable
