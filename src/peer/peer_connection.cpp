// PeerConnection: the connection's life (start, close, abandon) and its capability table.

#include "peer/detail/peer_connection.hpp"

#include <asio/execution_context.hpp>
#include <asio/ip/tcp.hpp>
#include <spdlog/spdlog.h>

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

}  // namespace

PeerConnection::PeerConnection(asio::any_io_executor executor, ClientOptions options)
    : loop_(std::make_shared<KjLoop>(std::move(executor))),
      options_(std::move(options)),
      // connect_with_retries resolved the logger (and its level) once for all attempts: resolving
      // it again would re-apply REMOTEABLE_LOG to the shared registered logger per connection.
      log_(options_.logger ? options_.logger : make_logger(nullptr, "remoteable.client", options_.log_level)),
      counters_(std::make_shared<WireCounters>(options_.trace_wire)) {
  if (options_.max_nesting < 1 || options_.max_nesting > max_nesting_limit)
    throw std::invalid_argument("ClientOptions::max_nesting must be between 1 and " + std::to_string(max_nesting_limit));
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
  rpc_.emplace(loop_, open_stream(loop_, std::move(connected), counters_), capnp::rpc::twoparty::Side::CLIENT, nullptr,
               reader, counters_);
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
  tasks_ = nullptr;
  caps_.clear();
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
  tasks_ = nullptr;  // the evaluations' promises, each holding its completion
  live.clear();      // destroys the awaiting handlers without calling them, as Asio does
  caps_.clear();
  registry_ = nullptr;
  rpc_ = nullptr;
  loop_->drain();
}

void PeerConnection::cancel(std::uint64_t id) {
  auto it = live_.find(id);
  if (it != live_.end()) it->second.cancel->fulfill();
}

std::shared_ptr<HandleState> PeerConnection::new_handle() {
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
  if (!open_) return;
  loop_->run([self = shared_from_this(), id] {
    self->send_deferred();  // a step still held back for this handle is sent first, not leaked
    self->caps_.erase(id);
  });
}

wire::Registry::Client& PeerConnection::registry() {
  send_deferred();
  KJ_IF_MAYBE(r, registry_) { return *r; }
  std::rethrow_exception(closed_error("the connection is closed"));
}

wire::Handle::Client& PeerConnection::cap_of(const Handle& handle) {
  auto& state = handle.state();
  if (!state) throw RemoteError(ErrorKind::type, "an empty handle cannot be sent");
  if (state->connection.get() != this)
    throw RemoteError(ErrorKind::type, "a handle from another connection cannot be sent on this one");
  return cap(state->id);
}

}  // namespace remoteable::detail
