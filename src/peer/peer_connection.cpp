// PeerConnection: the connection's life (start, close, abandon) and its capability table.

#include "peer/detail/peer_connection.hpp"

#include <remoteable/registry.hpp>

#include <asio/execution_context.hpp>
#include <asio/ip/tcp.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "rpc/log.hpp"
#include "rpc/wire_checks.hpp"

namespace remoteable::detail {

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

  void add(std::weak_ptr<PeerConnection> connection) {
    std::lock_guard lock(mutex_);
    std::erase_if(connections_, [](const auto& w) { return w.expired(); });
    connections_.push_back(std::move(connection));
  }

 private:
  void shutdown() override {
    std::vector<std::weak_ptr<PeerConnection>> connections;
    {
      std::lock_guard lock(mutex_);
      connections.swap(connections_);
    }
    for (auto& weak : connections)
      if (auto c = weak.lock()) c->abandon();
  }

  std::mutex mutex_;
  std::vector<std::weak_ptr<PeerConnection>> connections_;
};

/// The KJ loops of the clients made on one execution context, one per executor: clients made
/// with equal executors share a loop, so that a handle of one can be passed in a call on
/// another (Cap'n Proto passes capabilities between connections of one loop).
class SharedLoops final : public asio::execution_context::service {
 public:
  using key_type = SharedLoops;
  static inline asio::execution_context::id id;
  explicit SharedLoops(asio::execution_context& context) : service(context) {}

  std::shared_ptr<KjLoop> loop_for(const asio::any_io_executor& executor) {
    std::lock_guard lock(mutex_);
    std::erase_if(loops_, [](const auto& e) { return e.second.expired(); });
    for (auto& [e, weak] : loops_)
      if (e == executor)
        if (auto loop = weak.lock()) return loop;
    auto loop = std::make_shared<KjLoop>(executor);
    loops_.emplace_back(executor, loop);
    return loop;
  }

 private:
  void shutdown() override {
    std::lock_guard lock(mutex_);
    loops_.clear();
  }
  std::mutex mutex_;
  std::vector<std::pair<asio::any_io_executor, std::weak_ptr<KjLoop>>> loops_;
};

std::shared_ptr<KjLoop> shared_loop(const asio::any_io_executor& executor) {
  return asio::use_service<SharedLoops>(asio::query(executor, asio::execution::context)).loop_for(executor);
}

}  // namespace

PeerConnection::PeerConnection(asio::any_io_executor executor, ClientOptions options)
    : loop_(shared_loop(executor)),
      options_(std::move(options)),
      // connect_with_retries resolved the logger (and its level) once for all attempts: resolving
      // it again would re-apply REMOTEABLE_LOG to the shared registered logger per connection.
      log_(options_.logger ? options_.logger : make_logger(nullptr, "remoteable.client", options_.log_level)),
      counters_(std::make_shared<WireCounters>(options_.trace_wire)) {
  if (options_.push_window < 1) throw std::invalid_argument("ClientOptions::push_window must be at least 1");
  if (options_.max_nesting < 1 || options_.max_nesting > max_nesting_limit)
    throw std::invalid_argument("ClientOptions::max_nesting must be between 1 and " + std::to_string(max_nesting_limit));
}

PeerConnection::PeerConnection(std::shared_ptr<KjLoop> loop, ClientOptions options, std::shared_ptr<spdlog::logger> log,
                               std::shared_ptr<std::atomic<std::size_t>> live)
    : loop_(std::move(loop)),
      hosted_(true),
      live_handles_(std::move(live)),
      options_(std::move(options)),
      log_(std::move(log)),
      counters_(std::make_shared<WireCounters>(false)) {
  tasks_.emplace(errors_);
}

void PeerConnection::close_hosted() {
  if (!hosted_) return;
  open_ = false;
  auto live = std::move(live_);
  live_.clear();
  for (auto& [id, l] : live) l.completion->fail(disconnected_error("the peer's connection is closed"));
  deferred_.clear();
  run_held_back();  // each fails: the connection is closed
  tasks_ = nullptr;
  caps_.clear();
  std::lock_guard lock(host_mutex_);
  if (live_handles_) live_handles_->fetch_sub(counted_, std::memory_order_relaxed);  // dead now, wherever they are held
  counted_ = 0;
  loop_.reset();  // this handler's own reference keeps the loop alive until it returns
}

PeerConnection::~PeerConnection() {
  // Normally close_now() ran on the loop. If the executor never ran it (the Client was dropped
  // and its io_context not run again), tear down here, with the loop current.
  if (rpc_ == nullptr || !loop_->can_enter()) return;
  KjLoop::Scope scope(*loop_);
  close_now();
  loop_->drain();
}

void PeerConnection::start(Connected connected) {
  capnp::ReaderOptions reader;
  reader.traversalLimitInWords = options_.max_message_words;
  reader.nestingLimit = reader_nesting_limit(options_.max_nesting);
  std::error_code ignored;
  auto peer = tcp_socket(connected).remote_endpoint(ignored);
  log_->info("connected to {}:{}{}", peer.address().to_string(), peer.port(),
             std::holds_alternative<asio::ip::tcp::socket>(connected) ? "" : " (TLS)");
  if (options_.registry) host_ = options_.registry->host_factory()(*options_.registry, loop_, options_);
  rpc_.emplace(loop_, open_stream(loop_, std::move(connected), counters_), capnp::rpc::twoparty::Side::CLIENT, nullptr,
               reader, counters_);
  asio::use_service<ConnectionShutdown>(asio::query(loop_->strand().get_inner_executor(), asio::execution::context))
      .add(weak_from_this());
  tasks_.emplace(errors_);
  KJ_IF_MAYBE(rpc, rpc_) {
    if (options_.max_inflight_call_bytes > 0) rpc->set_flow_limit(std::max<std::size_t>(1, options_.max_inflight_call_bytes / 8));
    registry_ = rpc->bootstrap().castAs<wire::Registry>();
    open_ = true;
    // The peer went away: pending calls fail with disconnected on their own; free the rest
    // from a fresh handler, never from inside the RPC system's own callback. (A weak pointer:
    // tasks_ belongs to this connection and must not keep it alive.)
    KJ_IF_MAYBE(tasks, tasks_) {
      tasks->add(rpc->on_disconnect().then([this, weak = weak_from_this(), loop = loop_] {
        open_ = false;  // the task belongs to tasks_, a member: `this` is alive here
        KJ_IF_MAYBE(r, rpc_) { lost_because_ = r->failure(); }
        return server_reason().then([weak, loop] {
          loop->post([weak] {
            if (auto self = weak.lock()) self->close_now();
          });
        });
      }));
    }
  }
}

void PeerConnection::close() {
  if (hosted_) return;  // its server connection closes it (close_hosted)
  if (!open_.exchange(false)) return;
  loop_->post([self = shared_from_this()] { self->close_now(); });
}

kj::Promise<void> PeerConnection::server_reason() {
  if (lost_because_ != nullptr) return kj::READY_NOW;
  KJ_IF_MAYBE(r, registry_) {
    // The RPC system fails every call on a lost connection with the error it ended with: the
    // Abort the server sent, or "Peer disconnected". Only a reason the server gave is kept.
    return r->versionRequest().send().then([](auto&&) {}, [this](kj::Exception&& e) {
      if (carries_remote_error(e)) lost_because_ = kj::mv(e);
    });
  }
  return kj::READY_NOW;
}

std::exception_ptr PeerConnection::closed_error(const char* why) const {
  KJ_IF_MAYBE(e, lost_because_) { return to_exception_ptr(*e); }
  return disconnected_error(why);
}

void PeerConnection::close_now() {
  open_ = false;
  if (rpc_ != nullptr) log_->info("connection closed");
  auto live = std::move(live_);
  live_.clear();
  for (auto& [id, l] : live) l.completion->fail(closed_error("the connection was closed"));
  deferred_.clear();  // steps never sent: their handles have no capability, and report disconnected
  run_held_back();    // each fails: the connection is closed
  cursors_.clear();
  tasks_ = nullptr;
  caps_.clear();
  if (host_) host_->close();
  registry_ = nullptr;
  rpc_ = nullptr;
}

void PeerConnection::abandon() {
  if (rpc_ == nullptr || !loop_->can_enter()) return;
  KjLoop::Scope scope(*loop_);
  open_ = false;
  auto live = std::move(live_);
  live_.clear();
  deferred_.clear();
  held_back_.clear();  // destroys their handlers too
  cursors_.clear();
  tasks_ = nullptr;  // the evaluations' promises, each holding its completion
  live.clear();      // destroys the awaiting handlers without calling them, as Asio does
  caps_.clear();
  if (host_) host_->close();
  registry_ = nullptr;
  rpc_ = nullptr;
  loop_->drain();
}

void PeerConnection::cancel(std::uint64_t id) {
  auto it = live_.find(id);
  if (it != live_.end()) return it->second.cancel->fulfill();
  // Still waiting behind pushes (a peer that does not answer them): it ends now.
  for (auto h = held_back_.begin(); h != held_back_.end(); ++h) {
    if (h->id != id || !h->completion) continue;
    auto completion = std::move(h->completion);
    held_back_.erase(h);
    completion->fail(std::make_exception_ptr(RemoteError(ErrorKind::cancelled, "the call was cancelled")));
    return;
  }
}

std::shared_ptr<HandleState> PeerConnection::new_handle() {
  if (live_handles_) {
    std::lock_guard lock(host_mutex_);
    if (loop_) {
      ++counted_;
      live_handles_->fetch_add(1, std::memory_order_relaxed);
    }
  }
  return std::make_shared<HandleState>(shared_from_this(), next_handle_.fetch_add(1));
}

wire::Handle::Client& PeerConnection::cap(std::uint64_t id) {
  send_deferred();  // whatever uses a capability comes after the steps made before it
  return find_cap(id);
}

wire::Handle::Client& PeerConnection::find_cap(std::uint64_t id) {
  auto it = caps_.find(id);
  if (it == caps_.end()) std::rethrow_exception(closed_error("the connection is closed"));
  return it->second;
}

void PeerConnection::set_cap(std::uint64_t id, wire::Handle::Client c) {
  if (open_) caps_.insert_or_assign(id, kj::mv(c));
}

void PeerConnection::release(std::uint64_t id) {
  if (live_handles_) {
    std::lock_guard lock(host_mutex_);
    if (loop_) {  // (once closed, none counts)
      --counted_;
      live_handles_->fetch_sub(1, std::memory_order_relaxed);
    }
  }
  if (!open_) return;
  submit([self = shared_from_this(), id] {
    // A step still deferred for this handle is sent later without keeping a capability.
    self->caps_.erase(id);
  });
}

wire::Registry::Client& PeerConnection::registry() {
  send_deferred();
  KJ_IF_MAYBE(r, registry_) { return *r; }
  std::rethrow_exception(closed_error("the connection is closed"));
}

std::shared_ptr<HandleState> PeerConnection::share(Object object) {
  if (!host_) throw std::logic_error("Client::share needs ClientOptions::registry");
  auto state = new_handle();
  submit([self = shared_from_this(), id = state->id, object = std::move(object)] {
    if (!self->open_) return;  // no capability: the handle reports disconnected
    try {
      self->set_cap(id, self->host_->share(object));
    } catch (kj::Exception& e) {
      self->set_cap(id, wire::Handle::Client(capnp::newBrokenCap(kj::mv(e))));
    }
  });
  return state;
}

std::size_t PeerConnection::shared_handles() const { return host_ ? host_->live_handles() : 0; }

wire::Handle::Client& PeerConnection::cap_of(const Handle& handle) {
  auto& state = handle.state();
  if (!state) throw RemoteError(ErrorKind::type, "an empty handle cannot be sent");
  if (state->connection.get() == this) return cap(state->id);
  // Another connection's, on the same loop: Cap'n Proto passes the capability on (calls on it
  // then go through this peer, which forwards them over the connection the handle came by).
  if (state->connection->loop_ == loop_ && state->connection->open()) return state->connection->cap(state->id);
  throw RemoteError(ErrorKind::type, hosted_ ? "a handle from another network thread or client connection cannot be sent "
                                               "on this connection"
                                             : "a handle of a client made on another executor cannot be sent on this "
                                               "connection (clients made with the same executor can pass handles)");
}

}  // namespace remoteable::detail
