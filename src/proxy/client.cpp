#include <remoteable/client.hpp>
#include <remoteable/deadline.hpp>
#include <remoteable/version.hpp>

#include <asio/connect.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/experimental/parallel_group.hpp>
#include <asio/steady_timer.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "peer/detail/peer_connection.hpp"
#include "rpc/log.hpp"

namespace remoteable {

// ---- Client ---------------------------------------------------------------------------------

/// Closes the connection when the last Client copy goes; reconnect() swaps the connection.
struct Client::Owner {
  Owner(std::shared_ptr<detail::PeerConnection> c, asio::any_io_executor ex, Endpoint ep, ClientOptions opts)
      : executor(std::move(ex)), endpoint(std::move(ep)), options(std::move(opts)), connection_(std::move(c)) {}
  ~Owner() { connection_->close(); }

  std::shared_ptr<detail::PeerConnection> connection() const {
    std::lock_guard lock(mutex_);
    return connection_;
  }
  void replace(std::shared_ptr<detail::PeerConnection> c) {
    std::shared_ptr<detail::PeerConnection> old;
    {
      std::lock_guard lock(mutex_);
      old = std::exchange(connection_, std::move(c));
    }
    old->close();
  }

  const asio::any_io_executor executor;
  const Endpoint endpoint;
  const ClientOptions options;

 private:
  // Guards connection_: Client copies on any thread read it, reconnect() replaces it. A strand
  // cannot serve the synchronous accessors.
  mutable std::mutex mutex_;
  std::shared_ptr<detail::PeerConnection> connection_;
};

Client::Client(std::shared_ptr<Owner> owner) : owner_(std::move(owner)) {}

namespace {

/// TLS on a connected socket: the handshake, with the server's certificate checked against the
/// CAs and the name, within connect_timeout. A failure is a security error saying why.
asio::awaitable<std::shared_ptr<detail::Connected>> tls_handshake(asio::ip::tcp::socket socket, const Endpoint& endpoint,
                                                                  const ClientOptions& options,
                                                                  const std::shared_ptr<asio::ssl::context>& context) {
  namespace ex = asio::experimental;
  auto executor = socket.get_executor();
  auto tls = std::make_unique<detail::TlsConnection>(context, std::move(socket));
  if (options.tls.verify) detail::expect_server_name(tls->stream, options.tls.server_name.empty() ? endpoint.host : options.tls.server_name);
  asio::steady_timer timer(executor, options.connect_timeout);
  auto group = ex::make_parallel_group(tls->stream.async_handshake(asio::ssl::stream_base::client, ex::deferred),
                                       timer.async_wait(ex::deferred));
  auto [order, error, timer_error] = co_await group.async_wait(ex::wait_for_one(), asio::use_awaitable);
  if (order[0] == 1)
    throw RemoteError(ErrorKind::timeout, "the TLS handshake with " + endpoint.to_string() + " took longer than " +
                                              std::to_string(options.connect_timeout.count()) + " ms");
  if (error)
    throw RemoteError(ErrorKind::security, "TLS handshake with " + endpoint.to_string() + " failed: " +
                                               detail::handshake_failure(tls->stream, error, false));
  co_return std::make_shared<detail::Connected>(std::move(tls));
}

/// One attempt: resolve, connect with a deadline, and set up RPC on the new connection.
asio::awaitable<std::shared_ptr<detail::PeerConnection>> connect_once(asio::any_io_executor executor,
                                                                          const Endpoint& endpoint,
                                                                          const ClientOptions& options,
                                                                          const std::shared_ptr<asio::ssl::context>& tls) {
  namespace ex = asio::experimental;
  asio::ip::tcp::socket socket(executor);
  try {
    asio::ip::tcp::resolver resolver(executor);
    auto results = co_await resolver.async_resolve(endpoint.host, std::to_string(endpoint.port), asio::use_awaitable);
    asio::steady_timer timer(executor, options.connect_timeout);
    auto group = ex::make_parallel_group(asio::async_connect(socket, results, ex::deferred), timer.async_wait(ex::deferred));
    auto [order, connect_error, connected_to, timer_error] = co_await group.async_wait(ex::wait_for_one(), asio::use_awaitable);
    if (order[0] == 1)
      throw RemoteError(ErrorKind::timeout, "connecting to " + endpoint.to_string() + " took longer than " +
                                                std::to_string(options.connect_timeout.count()) + " ms");
    if (connect_error) throw std::system_error(connect_error);
  } catch (const std::system_error& e) {
    throw RemoteError(ErrorKind::disconnected, "cannot connect to " + endpoint.to_string() + ": " + e.code().message());
  }
  detail::set_peer_timeout(socket, options.peer_timeout);
  auto connected = std::make_shared<detail::Connected>(std::move(socket));
  if (tls) connected = co_await tls_handshake(std::move(std::get<asio::ip::tcp::socket>(*connected)), endpoint, options, tls);
  auto connection = std::make_shared<detail::PeerConnection>(executor, options);
  // Set up the RPC system on the connection's loop, then carry on here. (The awaitable is made
  // outside the co_await operand: GCC 12 destroys lambda temporaries there twice.)
  auto started = connection->evaluate<None>([connected](detail::PeerConnection& c) mutable -> kj::Promise<None> {
    c.start(std::move(*connected));
    return None{};
  });
  co_await std::move(started);
  // The protocol check: one round trip, within the connect timeout. A server of another protocol
  // version is refused; one that does not know Registry.version predates protocol 1.
  auto checked = connection->evaluate<std::string>([](detail::PeerConnection& c) -> kj::Promise<std::string> {
    return c.registry().versionRequest().send().then(
        [](auto response) -> std::string {
          auto library = response.getLibrary();
          if (response.getProtocol() != protocol_version)
            throw detail::to_kj(RemoteError(ErrorKind::protocol, "the server speaks protocol " + std::to_string(response.getProtocol()) +
                                                                     " (remoteable " + std::string(library.cStr(), library.size()) +
                                                                     "), this client protocol " + std::to_string(protocol_version) +
                                                                     " (remoteable " + version + ")"));
          return std::string(library.cStr(), library.size());
        },
        [](kj::Exception&& e) -> std::string {
          if (e.getType() != kj::Exception::Type::UNIMPLEMENTED) throw kj::mv(e);
          throw detail::to_kj(RemoteError(ErrorKind::protocol, std::string("the server reports no protocol version (it predates protocol 1); "
                                                                           "this client speaks protocol ") +
                                                                   std::to_string(protocol_version) + " (remoteable " + version + ")"));
        });
  });
  try {
    connection->set_server_version(co_await with_timeout(std::move(checked), options.connect_timeout));
    if (options.token) {
      // Authentication: the registry it answers with, scoped to the token's principal, is the
      // one this connection uses from now on.
      auto authenticated = connection->evaluate<None>([token = *options.token](detail::PeerConnection& c) -> kj::Promise<None> {
        auto request = c.registry().authenticateRequest();
        request.setToken(token);
        return request.send().then(
            [&c](auto response) {
              c.set_registry(response.getRegistry());
              return None{};
            },
            [](kj::Exception&& e) -> None {
              if (e.getType() != kj::Exception::Type::UNIMPLEMENTED) throw kj::mv(e);
              throw detail::to_kj(RemoteError(ErrorKind::security, "a token was given, but the server does not know "
                                                                   "authentication (it predates it)"));
            });
      });
      co_await with_timeout(std::move(authenticated), options.connect_timeout);
    }
  } catch (const RemoteError& e) {
    connection->close();
    if (e.kind() == ErrorKind::timeout)
      throw RemoteError(ErrorKind::timeout, "connecting to " + endpoint.to_string() + ": the server did not answer within " +
                                                std::to_string(options.connect_timeout.count()) + " ms");
    // A server that says why it closed the connection ("the server refused the connection: ...",
    // sent before closing) needs no guess at the reason.
    bool said_why = e.message().rfind("the server ", 0) == 0;
    auto hint = !tls && e.kind() == ErrorKind::disconnected && !said_why
                    ? " (the server closed the connection before answering; if it serves TLS, turn on ClientOptions::tls)"
                    : "";
    throw RemoteError(e.kind(), "connecting to " + endpoint.to_string() + ": " + e.message() + hint);
  }
  co_return connection;
}

asio::awaitable<std::shared_ptr<detail::PeerConnection>> connect_with_retries(asio::any_io_executor executor,
                                                                                 const Endpoint& endpoint,
                                                                                 ClientOptions options) {
  // One logger for the attempts and the connection that results.
  options.logger = detail::make_logger(options.logger, "remoteable.client", options.log_level);
  // The TLS context once for all attempts: its files are read here (a file that cannot be used
  // fails connect() with std::invalid_argument).
  auto tls = options.tls.enabled ? detail::client_context(options.tls) : nullptr;
  auto backoff = options.retry_backoff;
  for (int attempt = 1;; ++attempt) {
    try {
      auto connection = co_await connect_once(executor, endpoint, options, tls);
      co_return connection;
    } catch (const RemoteError& e) {
      // Another attempt would meet the same server, or the same certificate.
      if (e.kind() == ErrorKind::protocol || e.kind() == ErrorKind::security) throw;
      bool last = attempt >= options.connect_attempts;
      options.logger->info("connection attempt {} of {} to {} failed: {}{}", attempt, std::max(1, options.connect_attempts),
                           endpoint.to_string(), e.message(), last ? "" : fmt::format("; retrying in {} ms", backoff.count()));
      if (last) throw;
    }
    asio::steady_timer pause(executor, backoff);
    co_await pause.async_wait(asio::use_awaitable);
    backoff = std::min(backoff * 2, options.retry_backoff_max);
  }
}

}  // namespace

// Neither is a coroutine: they move their arguments into one. The default options are made here,
// not as a default argument in the caller's coroutine frame (see client.hpp).
asio::awaitable<Client> Client::connect(asio::any_io_executor executor, Endpoint endpoint) {
  return connect_owned(std::move(executor), std::move(endpoint), std::make_shared<const ClientOptions>());
}

asio::awaitable<Client> Client::connect(asio::any_io_executor executor, Endpoint endpoint, ClientOptions options) {
  return connect_owned(std::move(executor), std::move(endpoint), std::make_shared<const ClientOptions>(std::move(options)));
}

asio::awaitable<Client> Client::connect_owned(asio::any_io_executor executor, Endpoint endpoint,
                                              std::shared_ptr<const ClientOptions> options) {
  auto connection = co_await connect_with_retries(executor, endpoint, *options);
  co_return Client(std::make_shared<Owner>(std::move(connection), executor, std::move(endpoint), *options));
}

asio::awaitable<void> Client::reconnect() const { return reconnect_owner(owner_); }

// Static, owning its Owner: the awaitable stays valid after this Client copy is gone.
asio::awaitable<void> Client::reconnect_owner(std::shared_ptr<Owner> owner) {
  auto connection = co_await connect_with_retries(owner->executor, owner->endpoint, owner->options);
  owner->replace(std::move(connection));
}

Handle Client::fetch(std::string_view name) const {
  auto c = owner_->connection();
  auto state = c->new_handle();
  c->loop()->run([c, id = state->id, name = std::string(name)] {
    c->ordered([c, id, name] {
      try {
        auto request = c->registry().fetchRequest();
        request.setName(name);
        c->set_cap(id, request.send().getHandle());
      } catch (...) {
      }  // closed: the handle has no capability, and evaluating it reports disconnected
    });
  });
  return Handle::from_state(std::move(state));
}

const Registry& Client::shared_registry() const {
  if (!owner_->options.registry) throw std::logic_error("Client::share needs ClientOptions::registry");
  return *owner_->options.registry;
}

Handle Client::share_object(Object object) const { return Handle::from_state(owner_->connection()->share(std::move(object))); }

std::size_t Client::shared_handles() const { return owner_->connection()->shared_handles(); }

asio::awaitable<std::vector<std::string>> Client::browse() const {
  return owner_->connection()->evaluate<std::vector<std::string>>([](detail::PeerConnection& c) {
    return c.registry().browseRequest().send().then([](auto response) {
      std::vector<std::string> names;
      for (auto n : response.getNames()) names.emplace_back(n.cStr(), n.size());
      return names;
    });
  });
}

Handle Client::store(Value value) const {
  auto c = owner_->connection();
  auto state = c->new_handle();
  c->loop()->run([c, id = state->id, value = std::move(value)] {
    c->ordered([c, id, value] {
      try {
        auto request = c->registry().storeRequest();
        c->encode(request.initValue(), value);
        c->set_cap(id, request.send().getHandle());
      } catch (RemoteError& e) {
        c->set_cap(id, wire::Handle::Client(capnp::newBrokenCap(detail::to_kj(e))));
      } catch (...) {
      }
    });
  });
  return Handle::from_state(std::move(state));
}

asio::awaitable<void> Client::attach(const Handle& handle, std::string_view name) const {
  return detail::discard(owner_->connection()->evaluate<None>([h = handle, name = std::string(name)](detail::PeerConnection& c) {
    auto request = c.registry().attachRequest();
    request.setName(name);
    request.setHandle(c.cap_of(h));
    return request.send().then([](auto) { return None{}; });
  }));
}

asio::awaitable<void> Client::detach(std::string_view name) const {
  return detail::discard(owner_->connection()->evaluate<None>([name = std::string(name)](detail::PeerConnection& c) {
    auto request = c.registry().detachRequest();
    request.setName(name);
    return request.send().then([](auto) { return None{}; });
  }));
}

void Client::close() const { owner_->connection()->close(); }
bool Client::connected() const { return owner_->connection()->open(); }
std::string Client::server_version() const { return owner_->connection()->server_version(); }
WireStats Client::wire_stats() const { return owner_->connection()->counters()->stats(); }
std::vector<WireEvent> Client::wire_trace() const { return owner_->connection()->counters()->trace(); }
void Client::clear_wire_trace() const { owner_->connection()->counters()->clear_trace(); }

}  // namespace remoteable
