#include "proxy/client.hpp"

#include <asio/connect.hpp>
#include <asio/execution_context.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/experimental/parallel_group.hpp>
#include <asio/steady_timer.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "proxy/detail/client_connection.hpp"
#include "rpc/log.hpp"
#include "rpc/wire_checks.hpp"

namespace remoteable {

// ---- Endpoint -------------------------------------------------------------------------------

Endpoint Endpoint::parse(std::string_view text) {
  Endpoint e;
  std::string_view port = text;
  if (auto colon = text.rfind(':'); colon != std::string_view::npos) {
    auto host = text.substr(0, colon);
    bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
    if (bracketed) host = host.substr(1, host.size() - 2);
    if (host.empty()) throw std::invalid_argument("endpoint '" + std::string(text) + "' has an empty host");
    // Brackets only around the whole host; an IPv6 address only inside them ("fe80::1" alone
    // would read as host "fe80:", port 1).
    if (host.find_first_of("[]") != host.npos || (!bracketed && host.find(':') != host.npos))
      throw std::invalid_argument("endpoint '" + std::string(text) + "': expected HOST:PORT or [IPV6]:PORT");
    e.host = std::string(host);
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || port.empty() || value > 65535)
    throw std::invalid_argument("endpoint '" + std::string(text) + "': expected HOST:PORT with a port 0..65535");
  e.port = static_cast<std::uint16_t>(value);
  return e;
}

std::string Endpoint::to_string() const {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

namespace detail {

std::exception_ptr disconnected_error(const char* why) {
  return std::make_exception_ptr(RemoteError(ErrorKind::disconnected, why));
}

namespace {

/// Tears down the connections bound to an io_context when that context is destroyed without
/// being run again. An evaluation's awaiting coroutine is held by the connection, and the
/// coroutine holds the connection through its handles: unless someone drops the Cap'n Proto
/// side, neither is freed. Asio destroys unfinished handlers at shutdown; this does the same
/// for ours.
class ConnectionShutdown final : public asio::execution_context::service {
 public:
  using key_type = ConnectionShutdown;
  static inline asio::execution_context::id id;
  explicit ConnectionShutdown(asio::execution_context& context) : service(context) {}

  void add(std::weak_ptr<ClientConnection> connection) {
    std::lock_guard lock(mutex_);
    std::erase_if(connections_, [](const auto& w) { return w.expired(); });
    connections_.push_back(std::move(connection));
  }

 private:
  void shutdown() override {
    std::vector<std::weak_ptr<ClientConnection>> connections;
    {
      std::lock_guard lock(mutex_);
      connections.swap(connections_);
    }
    for (auto& weak : connections)
      if (auto c = weak.lock()) c->abandon();
  }

  std::mutex mutex_;
  std::vector<std::weak_ptr<ClientConnection>> connections_;
};

}  // namespace

ClientConnection::ClientConnection(asio::any_io_executor executor, ClientOptions options)
    : loop_(std::make_shared<KjLoop>(std::move(executor))),
      options_(std::move(options)),
      log_(make_logger(options_.logger, "remoteable.client", options_.log_level)),
      counters_(std::make_shared<WireCounters>(options_.trace_wire)) {
  if (options_.max_nesting < 1 || options_.max_nesting > max_nesting_limit)
    throw std::invalid_argument("ClientOptions::max_nesting must be between 1 and " + std::to_string(max_nesting_limit));
}

ClientConnection::~ClientConnection() {
  // Normally close_now() ran on the loop. If the executor never ran it (the Client was dropped
  // and its io_context not run again), tear down here, with the loop current.
  if (rpc_ == nullptr || !loop_->can_enter()) return;
  KjLoop::Scope scope(*loop_);
  close_now();
  loop_->drain();
}

void ClientConnection::start(asio::ip::tcp::socket socket) {
  capnp::ReaderOptions reader;
  reader.traversalLimitInWords = options_.max_message_words;
  reader.nestingLimit = reader_nesting_limit(options_.max_nesting);
  std::error_code ignored;
  auto peer = socket.remote_endpoint(ignored);
  log_->info("connected to {}:{}", peer.address().to_string(), peer.port());
  rpc_.emplace(loop_, std::move(socket), capnp::rpc::twoparty::Side::CLIENT, nullptr, reader, counters_);
  asio::use_service<ConnectionShutdown>(asio::query(loop_->strand().get_inner_executor(), asio::execution::context))
      .add(weak_from_this());
  tasks_.emplace(errors_);
  KJ_IF_MAYBE(rpc, rpc_) {
    registry_ = rpc->bootstrap().castAs<wire::Registry>();
    open_ = true;
    // The peer went away: pending calls fail with disconnected on their own; free the rest
    // from a fresh handler, never from inside the RPC system's own callback. (A weak pointer:
    // tasks_ belongs to this connection and must not keep it alive.)
    KJ_IF_MAYBE(tasks, tasks_) {
      tasks->add(rpc->on_disconnect().then([this, weak = weak_from_this(), loop = loop_] {
        open_ = false;  // the task belongs to tasks_, a member: `this` is alive here
        loop->post([weak] {
          if (auto self = weak.lock()) self->close_now();
        });
      }));
    }
  }
}

void ClientConnection::close() {
  if (!open_.exchange(false)) return;
  loop_->post([self = shared_from_this()] { self->close_now(); });
}

void ClientConnection::close_now() {
  open_ = false;
  if (rpc_ != nullptr) log_->info("connection closed");
  auto live = std::move(live_);
  live_.clear();
  for (auto& [id, l] : live) l.completion->fail(disconnected_error("the connection was closed"));
  deferred_.clear();  // steps never sent: their handles have no capability, and report disconnected
  tasks_ = nullptr;
  caps_.clear();
  registry_ = nullptr;
  rpc_ = nullptr;
}

void ClientConnection::abandon() {
  if (rpc_ == nullptr || !loop_->can_enter()) return;
  KjLoop::Scope scope(*loop_);
  open_ = false;
  auto live = std::move(live_);
  live_.clear();
  deferred_.clear();
  tasks_ = nullptr;  // the evaluations' promises, each holding its completion
  live.clear();      // destroys the awaiting handlers without calling them, as Asio does
  caps_.clear();
  registry_ = nullptr;
  rpc_ = nullptr;
  loop_->drain();
}

void ClientConnection::cancel(std::uint64_t id) {
  auto it = live_.find(id);
  if (it != live_.end()) it->second.cancel->fulfill();
}

std::shared_ptr<HandleState> ClientConnection::new_handle() {
  return std::make_shared<HandleState>(shared_from_this(), next_handle_.fetch_add(1));
}

void ClientConnection::defer(std::uint64_t id, std::shared_ptr<HandleState> parent, Step step) {
  // Closed: the handle gets no capability (its use reports disconnected), and nothing is held
  // back, which would keep the parent, and through it this connection, alive.
  if (!open_) return;
  deferred_.push_back(Deferred{id, std::move(parent), std::move(step)});
  if (deferred_posted_) return;
  deferred_posted_ = true;
  loop_->run_later([weak = weak_from_this()] {
    if (auto self = weak.lock()) {
      self->deferred_posted_ = false;
      self->send_deferred();
    }
  });
}

void ClientConnection::send_deferred() {
  if (sending_deferred_) return;
  sending_deferred_ = true;
  while (!deferred_.empty()) {
    auto d = std::move(deferred_.front());
    deferred_.pop_front();
    send_step(d, wire::Handle::Fetch::NONE);
  }
  sending_deferred_ = false;
}

kj::Maybe<kj::Promise<Value>> ClientConnection::fetch_deferred(std::uint64_t id, wire::Handle::Fetch kind, bool keep) {
  if (sending_deferred_ || deferred_.empty() || deferred_.back().id != id) return nullptr;
  // The steps at the end made each on the one before, whose handles only that next step holds.
  std::size_t first = deferred_.size() - 1;
  while (first > 0 && deferred_.size() - first < max_chain_steps) {
    const auto& parent = deferred_[first].parent;
    if (deferred_[first - 1].id != parent->id || parent.use_count() != 1) break;
    --first;
  }
  std::vector<Deferred> run(std::make_move_iterator(deferred_.begin() + static_cast<std::ptrdiff_t>(first)),
                            std::make_move_iterator(deferred_.end()));
  deferred_.erase(deferred_.begin() + static_cast<std::ptrdiff_t>(first), deferred_.end());
  send_deferred();
  if (run.size() == 1 && keep) return send_step(run.front(), kind);
  return send_chain(run, kind, keep);
}

namespace {
/// What an answer carries for `fetch`, as a Value.
template <class Response>
Value fetched_value(ClientConnection& c, Response& response, wire::Handle::Fetch fetch) {
  if (fetch == wire::Handle::Fetch::TEXT) {
    auto t = response.getText();
    return Value(std::string(t.cStr(), t.size()));
  }
  if (fetch == wire::Handle::Fetch::TRUTH) return Value(response.getTruth());
  return c.decode(response.getValue());
}
}  // namespace

template <class Request>
kj::Maybe<kj::Promise<Value>> ClientConnection::send_request(std::uint64_t id, Request& request, wire::Handle::Fetch fetch,
                                                             bool keep) {
  request.setFetch(fetch);
  auto promise = request.send();
  if (keep) set_cap(id, promise.getResult());
  if (fetch == wire::Handle::Fetch::NONE) return nullptr;
  return promise.then([conn = shared_from_this(), fetch](auto response) { return fetched_value(*conn, response, fetch); });
}

kj::Maybe<kj::Promise<Value>> ClientConnection::send_step(Deferred& d, wire::Handle::Fetch fetch) {
  auto broken = [&](kj::Exception e) -> kj::Maybe<kj::Promise<Value>> {
    set_cap(d.id, wire::Handle::Client(capnp::newBrokenCap(kj::cp(e))));
    if (fetch != wire::Handle::Fetch::NONE) return kj::Promise<Value>(kj::mv(e));
    return nullptr;
  };
  try {
    auto& parent = find_cap(d.parent->id);
    const auto& step = d.step;
    auto encode_all = [&](capnp::List<wire::Value>::Builder out) {
      for (unsigned i = 0; i < out.size(); ++i) encode(out[i], step.operands[i]);
    };
    auto count = static_cast<unsigned>(step.operands.size());
    switch (step.kind) {
      case wire::Handle::Step::ATTR: {
        auto request = parent.attrRequest();
        request.setName(step.name);
        return send_request(d.id, request, fetch);
      }
      case wire::Handle::Step::CALL: {
        auto request = parent.callRequest();
        request.setName(step.name);
        encode_all(request.initArgs(count));
        return send_request(d.id, request, fetch);
      }
      case wire::Handle::Step::INVOKE: {
        auto request = parent.invokeRequest();
        encode_all(request.initArgs(count));
        return send_request(d.id, request, fetch);
      }
      case wire::Handle::Step::ITEM: {
        auto request = parent.itemRequest();
        encode(request.initKey(), step.operands.at(0));
        return send_request(d.id, request, fetch);
      }
      case wire::Handle::Step::LEN: {
        auto request = parent.lenRequest();
        return send_request(d.id, request, fetch);
      }
      case wire::Handle::Step::BINARY: {
        auto request = parent.binaryRequest();
        request.setOp(step.binary_op);
        request.setReflected(step.reflected);
        encode(request.initOperand(), step.operands.at(0));
        return send_request(d.id, request, fetch);
      }
      case wire::Handle::Step::UNARY: {
        auto request = parent.unaryRequest();
        request.setOp(step.unary_op);
        return send_request(d.id, request, fetch);
      }
    }
    throw RemoteError(ErrorKind::type, "unknown step");
  } catch (RemoteError& e) {
    return broken(to_kj(e));
  } catch (kj::Exception& e) {
    return broken(kj::mv(e));
  }
}

void ClientConnection::encode_step(wire::Handle::Step::Builder out, const Step& step) {
  auto encode_all = [&](capnp::List<wire::Value>::Builder list) {
    for (unsigned i = 0; i < list.size(); ++i) encode(list[i], step.operands[i]);
  };
  auto count = static_cast<unsigned>(step.operands.size());
  switch (step.kind) {
    case wire::Handle::Step::ATTR: out.setAttr(step.name); return;
    case wire::Handle::Step::CALL: {
      auto call = out.initCall();
      call.setName(step.name);
      encode_all(call.initArgs(count));
      return;
    }
    case wire::Handle::Step::INVOKE: encode_all(out.initInvoke(count)); return;
    case wire::Handle::Step::ITEM: encode(out.initItem(), step.operands.at(0)); return;
    case wire::Handle::Step::LEN: out.setLen(); return;
    case wire::Handle::Step::BINARY: {
      auto binary = out.initBinary();
      binary.setOp(step.binary_op);
      binary.setReflected(step.reflected);
      encode(binary.initOperand(), step.operands.at(0));
      return;
    }
    case wire::Handle::Step::UNARY: out.setUnary(step.unary_op); return;
  }
  throw RemoteError(ErrorKind::type, "unknown step");
}

kj::Promise<Value> ClientConnection::send_chain(std::vector<Deferred>& run, wire::Handle::Fetch fetch, bool keep) {
  auto id = run.back().id;
  auto broken = [&](kj::Exception e) -> kj::Promise<Value> {
    if (keep) set_cap(id, wire::Handle::Client(capnp::newBrokenCap(kj::cp(e))));
    return kj::mv(e);
  };
  try {
    auto request = find_cap(run.front().parent->id).chainRequest();
    auto steps = request.initSteps(static_cast<unsigned>(run.size()));
    for (unsigned i = 0; i < steps.size(); ++i) encode_step(steps[i], run[i].step);
    request.setKeep(keep);
    // The handles in between get no capability: nobody holds them.
    KJ_IF_MAYBE(value, send_request(id, request, fetch, keep)) { return kj::mv(*value); }
    return Value(None{});  // not reached: a chain is sent for an evaluation
  } catch (RemoteError& e) {
    return broken(to_kj(e));
  } catch (kj::Exception& e) {
    return broken(kj::mv(e));
  }
}

wire::Handle::Client& ClientConnection::cap(std::uint64_t id) {
  send_deferred();  // whatever uses a capability comes after the steps made before it
  return find_cap(id);
}

wire::Handle::Client& ClientConnection::find_cap(std::uint64_t id) {
  auto it = caps_.find(id);
  if (it == caps_.end()) throw RemoteError(ErrorKind::disconnected, "the connection is closed");
  return it->second;
}

void ClientConnection::set_cap(std::uint64_t id, wire::Handle::Client c) {
  if (open_) caps_.insert_or_assign(id, kj::mv(c));
}

void ClientConnection::release(std::uint64_t id) {
  if (!open_) return;
  loop_->run([self = shared_from_this(), id] {
    self->send_deferred();  // a step still held back for this handle is sent first, not leaked
    self->caps_.erase(id);
  });
}

wire::Registry::Client& ClientConnection::registry() {
  send_deferred();
  KJ_IF_MAYBE(r, registry_) { return *r; }
  throw RemoteError(ErrorKind::disconnected, "the connection is closed");
}

wire::Handle::Client& ClientConnection::cap_of(const Handle& handle) {
  auto& state = handle.state();
  if (!state) throw RemoteError(ErrorKind::type, "an empty handle cannot be sent");
  if (state->connection.get() != this)
    throw RemoteError(ErrorKind::type, "a handle from another connection cannot be sent on this one");
  return cap(state->id);
}

namespace {
RemoteError too_deep(int limit, std::string_view what) {
  return RemoteError(ErrorKind::value, "a value nested more than " + std::to_string(limit) + " lists or maps deep " +
                                           std::string(what) + " (limit max_nesting)");
}
}  // namespace

void ClientConnection::encode(wire::Value::Builder out, const Value& value, int depth) {
  if ((value.holds<Value::List>() || value.holds<Value::Map>()) && depth >= options_.max_nesting)
    throw too_deep(options_.max_nesting, "cannot be sent");
  std::visit(
      [&](const auto& x) {
        using X = std::decay_t<decltype(x)>;
        if constexpr (std::same_as<X, None>) out.setNone();
        else if constexpr (std::same_as<X, bool>) out.setBool(x);
        else if constexpr (std::same_as<X, std::int64_t>) out.setInt64(x);
        else if constexpr (std::same_as<X, double>) out.setFloat64(x);
        else if constexpr (std::same_as<X, std::string>) out.setText(capnp::Text::Reader(x.data(), x.size()));
        else if constexpr (std::same_as<X, Bytes>)
          out.setBytes(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(x.data()), x.size()));
        else if constexpr (std::same_as<X, Value::List>) {
          auto list = out.initList(static_cast<unsigned>(x.size()));
          for (unsigned i = 0; i < x.size(); ++i) encode(list[i], x[i], depth + 1);
        } else if constexpr (std::same_as<X, Value::Map>) {
          auto map = out.initMap(static_cast<unsigned>(x.size()));
          unsigned i = 0;
          for (auto& [k, e] : x) {
            map[i].setKey(k);
            encode(map[i].initValue(), e, depth + 1);
            ++i;
          }
        } else if constexpr (std::same_as<X, Handle>) {
          out.setHandle(cap_of(x));
        }
      },
      value.storage());
}

Value ClientConnection::decode(wire::Value::Reader v, int depth) {
  auto which = v.which();
  if ((which == wire::Value::LIST || which == wire::Value::MAP) && depth >= options_.max_nesting)
    throw to_kj(too_deep(options_.max_nesting, "from the server is refused"));
  switch (which) {
    case wire::Value::NONE: return None{};
    case wire::Value::BOOL: return v.getBool();
    case wire::Value::INT64: return static_cast<std::int64_t>(v.getInt64());
    case wire::Value::FLOAT64: return v.getFloat64();
    case wire::Value::TEXT: return std::string(v.getText().cStr(), v.getText().size());
    case wire::Value::BYTES: {
      auto d = v.getBytes();
      Bytes b(d.size());
      if (!b.empty()) std::memcpy(b.data(), d.begin(), d.size());
      return b;
    }
    case wire::Value::LIST: {
      auto list = v.getList();
      if (zero_sized_elements(list)) throw to_kj(zero_sized_error(list.size()));
      Value::List out;
      out.reserve(list.size());
      for (auto e : list) out.push_back(decode(e, depth + 1));
      return out;
    }
    case wire::Value::MAP: {
      auto map = v.getMap();
      if (zero_sized_elements(map)) throw to_kj(zero_sized_error(map.size()));
      Value::Map out;
      for (auto e : map) out.insert_or_assign(std::string(e.getKey().cStr(), e.getKey().size()), decode(e.getValue(), depth + 1));
      return out;
    }
    case wire::Value::HANDLE: {
      auto state = new_handle();
      set_cap(state->id, v.getHandle());
      return Handle::from_state(std::move(state));
    }
  }
  throw to_kj(RemoteError(ErrorKind::type, "unknown value kind on the wire"));
}

}  // namespace detail

// ---- Client ---------------------------------------------------------------------------------

/// Closes the connection when the last Client copy goes; reconnect() swaps the connection.
struct Client::Owner {
  Owner(std::shared_ptr<detail::ClientConnection> c, asio::any_io_executor ex, Endpoint ep, ClientOptions opts)
      : executor(std::move(ex)), endpoint(std::move(ep)), options(std::move(opts)), connection_(std::move(c)) {}
  ~Owner() { connection_->close(); }

  std::shared_ptr<detail::ClientConnection> connection() const {
    std::lock_guard lock(mutex_);
    return connection_;
  }
  void replace(std::shared_ptr<detail::ClientConnection> c) {
    std::shared_ptr<detail::ClientConnection> old;
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
  std::shared_ptr<detail::ClientConnection> connection_;
};

Client::Client(std::shared_ptr<Owner> owner) : owner_(std::move(owner)) {}

namespace {

/// One attempt: resolve, connect with a deadline, and set up RPC on the new connection.
asio::awaitable<std::shared_ptr<detail::ClientConnection>> connect_once(asio::any_io_executor executor,
                                                                          const Endpoint& endpoint,
                                                                          const ClientOptions& options) {
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
  auto connection = std::make_shared<detail::ClientConnection>(executor, options);
  // Set up the RPC system on the connection's loop, then carry on here. (The awaitable is made
  // outside the co_await operand: GCC 12 destroys lambda temporaries there twice.)
  auto started = connection->evaluate<None>([socket = std::make_shared<asio::ip::tcp::socket>(std::move(socket))](
                                                detail::ClientConnection& c) mutable -> kj::Promise<None> {
    c.start(std::move(*socket));
    return None{};
  });
  co_await std::move(started);
  co_return connection;
}

asio::awaitable<std::shared_ptr<detail::ClientConnection>> connect_with_retries(asio::any_io_executor executor,
                                                                                 const Endpoint& endpoint,
                                                                                 ClientOptions options) {
  // One logger for the attempts and the connection that results.
  options.logger = detail::make_logger(options.logger, "remoteable.client", options.log_level);
  auto backoff = options.retry_backoff;
  for (int attempt = 1;; ++attempt) {
    try {
      auto connection = co_await connect_once(executor, endpoint, options);
      co_return connection;
    } catch (const RemoteError& e) {
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

asio::awaitable<Client> Client::connect(asio::any_io_executor executor, Endpoint endpoint, ClientOptions options) {
  auto connection = co_await connect_with_retries(executor, endpoint, options);
  co_return Client(std::make_shared<Owner>(std::move(connection), executor, std::move(endpoint), std::move(options)));
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
    try {
      auto request = c->registry().fetchRequest();
      request.setName(name);
      c->set_cap(id, request.send().getHandle());
    } catch (...) {
    }  // closed: the handle has no capability, and evaluating it reports disconnected
  });
  return Handle::from_state(std::move(state));
}

asio::awaitable<std::vector<std::string>> Client::browse() const {
  return owner_->connection()->evaluate<std::vector<std::string>>([](detail::ClientConnection& c) {
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
    try {
      auto request = c->registry().storeRequest();
      c->encode(request.initValue(), value);
      c->set_cap(id, request.send().getHandle());
    } catch (RemoteError& e) {
      c->set_cap(id, wire::Handle::Client(capnp::newBrokenCap(detail::to_kj(e))));
    } catch (...) {
    }
  });
  return Handle::from_state(std::move(state));
}

asio::awaitable<void> Client::attach(const Handle& handle, std::string_view name) const {
  return detail::discard(owner_->connection()->evaluate<None>([h = handle, name = std::string(name)](detail::ClientConnection& c) {
    auto request = c.registry().attachRequest();
    request.setName(name);
    request.setHandle(c.cap_of(h));
    return request.send().then([](auto) { return None{}; });
  }));
}

asio::awaitable<void> Client::detach(std::string_view name) const {
  return detail::discard(owner_->connection()->evaluate<None>([name = std::string(name)](detail::ClientConnection& c) {
    auto request = c.registry().detachRequest();
    request.setName(name);
    return request.send().then([](auto) { return None{}; });
  }));
}

void Client::close() const { owner_->connection()->close(); }
bool Client::connected() const { return owner_->connection()->open(); }
WireStats Client::wire_stats() const { return owner_->connection()->counters()->stats(); }
std::vector<WireEvent> Client::wire_trace() const { return owner_->connection()->counters()->trace(); }
void Client::clear_wire_trace() const { owner_->connection()->counters()->clear_trace(); }

}  // namespace remoteable
