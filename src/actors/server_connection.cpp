#include "actors/server_connection.hpp"

#include "peer/detail/peer_connection.hpp"

#include <capnp/message.h>
#include <kj/debug.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "actors/detail/server_kj.hpp"
#include "actors/registry_server.hpp"
#include "rpc/kj_error.hpp"
#include "rpc/wire_checks.hpp"

namespace remoteable::detail {

ServerConnection::ServerConnection(ServerCore& core, LaneTicket ticket, Connected connected, std::string peer,
                                   std::string address, const std::string& subject)
    : core_(core),
      ticket_(std::move(ticket)),
      peer_(std::move(peer)),
      budget_(std::make_shared<Budget>()),
      list_(core.kj(ticket_.lane()).connections) {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = core.options.max_message_words;
  options.nestingLimit = reader_nesting_limit(core.options.max_nesting);
  set_peer_timeout(tcp_socket(connected), core.options.peer_timeout);
  budget_->peer = peer_;
  budget_->address = std::move(address);
  budget_->certificate = subject;
  // The bootstrap registry: everything without authentication; with it, the principal of the
  // client's certificate if it maps to one, else nothing until Registry.authenticate.
  std::shared_ptr<const Grant> grant = full_grant();
  if (core.auth) {
    grant = core.auth->for_certificate(subject);
    budget_->principal = grant;
    if (grant) core.log->info("{} authenticated as '{}' by its certificate", peer_, grant->principal);
  }
  auto counters = std::make_shared<WireCounters>(false);
  auto& loop = ticket_.lane().loop;
  rpc_.emplace(loop, open_stream(loop, std::move(connected), counters, core.metrics ? core.metrics->bytes() : nullptr),
               capnp::rpc::twoparty::Side::SERVER, capnp::Capability::Client(kj::heap<RegistryServer>(core, budget_, std::move(grant))),
               options, counters);
  auto& rpc = KJ_ASSERT_NONNULL(rpc_);
  if (core.options.max_inflight_call_bytes > 0) rpc.set_flow_limit(std::max<std::size_t>(1, core.options.max_inflight_call_bytes / 8));
  // Checked where answers are queued, not only by the sweep (which may wait behind the
  // loop's work while answers pile up).
  rpc.limit_queued(core.options.max_outbound_bytes, [this](std::size_t queued) {
    core_.log->warn("disconnecting {}: {} bytes of answers unread (limit max_outbound_bytes = {})", peer_, queued,
                    core_.options.max_outbound_bytes);
    if (core_.metrics) core_.metrics->breach(Limit::max_outbound_bytes);
    if (close_) close_->fulfill();  // the stream has closed the socket
  });
  // (open_connections counts this connection already: ServerCore::admit reserved its place.)
  if (core_.metrics) core_.metrics->connection_opened();
  self_ = list_.insert(list_.end(), this);
  core_.log->info("connection from {}", peer_);
}

ServerConnection::~ServerConnection() {
  list_.erase(self_);
  note_peak();
  // The handles server code holds to this peer's objects fail with disconnected from now on,
  // and their capabilities go before the RPC system they came from.
  if (budget_->peer_handles) budget_->peer_handles->close_hosted();
  rpc_ = nullptr;
  core_.open_connections.fetch_sub(1);
  core_.log->info("connection from {} closed", peer_);
}

kj::Promise<void> ServerConnection::on_disconnect() {
  auto closed = kj::newPromiseAndFulfiller<void>();
  close_ = kj::mv(closed.fulfiller);
  KJ_IF_MAYBE(r, rpc_) { return r->on_disconnect().exclusiveJoin(kj::mv(closed.promise)); }
  return kj::READY_NOW;
}

void ServerConnection::close() {
  KJ_IF_MAYBE(r, rpc_) { r->abort(); }
  if (close_) close_->fulfill();
}

void ServerConnection::end_with(std::string reason) {
  KJ_IF_MAYBE(r, rpc_) {
    if (!ending_) {
      ending_ = true;
      r->end_with(to_kj(RemoteError(ErrorKind::disconnected, "the server closed the connection: " + reason)));
      return;
    }
  }
  close();  // asked twice: the RPC system did not end it, so close it here
}

namespace {

// "90 s", "1500 ms".
std::string duration_text(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

}  // namespace

bool ServerConnection::flushed() {
  KJ_IF_MAYBE(r, rpc_) { return r->queued_bytes() == 0; }
  return true;
}

void ServerConnection::note_peak() {
  KJ_IF_MAYBE(r, rpc_) {
    auto peak = r->peak_queued_bytes();
    auto seen = core_.peak_queued.load();
    while (peak > seen && !core_.peak_queued.compare_exchange_weak(seen, peak)) {}
  }
}

void ServerConnection::check(std::chrono::steady_clock::time_point now) {
  note_peak();
  KJ_IF_MAYBE(r, rpc_) {
    auto& o = core_.options;
    if (r->queued_bytes() > o.max_outbound_bytes) {
      core_.log->warn("disconnecting {}: {} bytes of answers unread (limit max_outbound_bytes = {})", peer_, r->queued_bytes(), o.max_outbound_bytes);
      if (core_.metrics) core_.metrics->breach(Limit::max_outbound_bytes);
      this->close();
    } else if (core_.auth && !budget_->principal && now - budget_->connected_at > core_.auth->options().timeout) {
      core_.log->info("disconnecting {}: not authenticated within {} ms", peer_, core_.auth->options().timeout.count());
      this->close();
    } else if (o.idle_timeout.count() > 0 && budget_->in_flight == 0 && now - budget_->last_activity > o.idle_timeout) {
      if (!ending_) {
        core_.log->info("disconnecting {}: idle", peer_);
        if (core_.metrics) core_.metrics->breach(Limit::idle_timeout);
      }
      end_with("idle for more than " + duration_text(o.idle_timeout) + " (the server's idle_timeout)");
    }
  }
}

}  // namespace remoteable::detail
