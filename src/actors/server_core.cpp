// ServerCore: the server's life on its network threads (lanes): set up, accept, sweep, answer the calls
// its actors complete, stop and serve.

#include "actors/detail/server_core.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "actors/detail/calls.hpp"
#include "actors/detail/server_kj.hpp"
#include "actors/server_connection.hpp"
#include <remoteable/detail/builtins.hpp>
#include "rpc/kj_error.hpp"
#include "rpc/log.hpp"
#include "rpc/wire_checks.hpp"

namespace remoteable::detail {
namespace {
std::vector<std::unique_ptr<Lane>> make_lanes(unsigned threads) {
  std::vector<std::unique_ptr<Lane>> lanes;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < threads; ++i) lanes.push_back(std::make_unique<Lane>(i));
  return lanes;
}
}  // namespace

Lane::Lane(std::size_t i) : index(i), loop(std::make_shared<KjLoop>(io.get_executor())) {}
Lane::Lane(std::size_t i, std::shared_ptr<KjLoop> on) : index(i), loop(std::move(on)) {}
Lane::~Lane() = default;

ServerCore::ServerCore(const Registry& types, ServerOptions opts, std::shared_ptr<KjLoop> loop)
    : registry(types),
      options(std::move(opts)),
      log(make_logger(options.logger, "remoteable.client", options.log_level)),
      lanes([&] {
        std::vector<std::unique_ptr<Lane>> one;
        one.push_back(std::make_unique<Lane>(0, std::move(loop)));
        return one;
      }()),
      io(lanes.front()->io),
      pool(std::max(1u, options.actor_threads)),
      acceptor(io) {
  if (options.max_nesting < 1 || options.max_nesting > max_nesting_limit)
    throw std::invalid_argument("ClientOptions::max_nesting must be between 1 and " + std::to_string(max_nesting_limit));
}

ServerCore::ServerCore(Endpoint endpoint, const Registry& types, ServerOptions opts)
    : registry(types),
      options(std::move(opts)),
      log(make_logger(options.logger, "remoteable.server", options.log_level)),
      lanes(make_lanes(options.network_threads)),
      io(lanes.front()->io),
      pool(options.actor_threads ? options.actor_threads : std::max(1u, std::thread::hardware_concurrency())),
      acceptor(io) {
  if (options.max_nesting < 1 || options.max_nesting > max_nesting_limit)
    throw std::invalid_argument("ServerOptions::max_nesting must be between 1 and " + std::to_string(max_nesting_limit));
  if (options.tls) tls_ = server_context(*options.tls);
  if (options.auth) auth = std::make_unique<Authenticator>(*options.auth);
  listen(endpoint);
  if (options.metrics) metrics = std::make_unique<ServerMetrics>(*options.metrics, ServerMetrics::Gauges{open_connections, live_handles, calls_in_flight}, *log);
}

ServerCore::~ServerCore() = default;

void ServerCore::listen(const Endpoint& endpoint) {
  // A host name is resolved (passive: "" or "*" would be any address; an address is taken as it
  // is); the first address that binds is the one served.
  asio::ip::tcp::resolver resolver(io);
  std::error_code ec;
  auto results = resolver.resolve(endpoint.host, std::to_string(endpoint.port), asio::ip::tcp::resolver::passive, ec);
  if (ec) throw std::system_error(ec, "cannot listen on " + endpoint.to_string() + ": cannot resolve '" + endpoint.host + "'");
  std::vector<std::pair<std::string, std::error_code>> tried;  // each address, and why it failed
  for (const auto& entry : results) {
    auto ep = entry.endpoint();
    std::error_code ignored;
    acceptor.close(ignored);
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (!ec) {
      auto local = acceptor.local_endpoint();
      log->info("listening on {}", Endpoint{local.address().to_string(), local.port()}.to_string());
      return;
    }
    // As std::system_category, so that the code compares equal to std::errc values (Asio's
    // own system category does not).
    if (ec.category() == asio::error::get_system_category()) ec = std::error_code(ec.value(), std::system_category());
    tried.emplace_back(Endpoint{ep.address().to_string(), ep.port()}.to_string(), ec);
  }
  std::error_code ignored;
  acceptor.close(ignored);
  // system_error's what() ends in ": " and the last error's message.
  auto what = "cannot listen on " + endpoint.to_string();
  if (tried.empty()) throw std::system_error(std::make_error_code(std::errc::address_not_available), what);
  if (tried.size() == 1 && tried[0].first != endpoint.to_string()) what += " (" + tried[0].first + ")";
  if (tried.size() > 1) {
    what += " (";
    for (std::size_t i = 0; i + 1 < tried.size(); ++i) what += tried[i].first + ": " + tried[i].second.message() + ", ";
    what += tried.back().first + ")";
  }
  throw std::system_error(tried.back().second, what);
}

void ServerCore::log_user_error(const Object& self, std::string_view member, std::exception_ptr error) const {
  if (!log->should_log(spdlog::level::debug)) return;
  auto e = to_remote_error(error);
  // Refusals of the binding itself (no such member, wrong arguments) are not the method's.
  if (e.kind() == ErrorKind::attribute || e.kind() == ErrorKind::type) return;
  if (member.empty()) log->debug("calling {} threw: {}", builtin::type_name(self), e.what());
  else log->debug("'{}.{}' threw: {}", builtin::type_name(self), member, e.what());
}

void ServerCore::forget_attached(Export& e) {
  if (!e.attached) return;
  --attached_names;
  if (auto by = e.attached_by.lock()) --by->attached;
  e.attached = false;
}

Lane& ServerCore::here() {
  for (auto& lane : lanes)
    if (lane->loop->in_loop()) return *lane;
  KJ_FAIL_REQUIRE("remoteable: server loop state used off its network threads");
}

bool ServerCore::on_loop() const noexcept {
  return std::any_of(lanes.begin(), lanes.end(), [](auto& lane) { return lane->loop->in_loop(); });
}

ServerCore::Kj& ServerCore::kj(Lane& lane) {
  if (!lane.kj) {
    lane.kj = std::make_unique<Kj>();
    lane.kj->errors.core = this;
  }
  return *lane.kj;
}

Lane& ServerCore::pick_lane() {
  // The fewest connections; among equals, the first. (Read without a lock: two connections
  // accepted at once may pick the same lane; the next ones even it out.)
  Lane* best = lanes.front().get();
  for (auto& lane : lanes)
    if (lane->assigned.load(std::memory_order_relaxed) < best->assigned.load(std::memory_order_relaxed)) best = lane.get();
  return *best;
}

void ServerCore::complete(Lane& lane, std::uint64_t id, Outcome outcome, std::exception_ptr error) {
  // Runs on an actor's strand: hand plain data to the connection's loop; only that loop touches
  // its KJ objects. (Inline when the actor ran the work inline on that loop's thread.)
  lane.loop->run([core = shared_from_this(), &lane, id, outcome = std::move(outcome), error]() mutable {
    if (!lane.kj) return;
    auto it = lane.kj->pending.find(id);
    if (it != lane.kj->pending.end()) {  // else cancelled or torn down meanwhile
      if (error) {
        auto e = to_remote_error(error);
        if (core->log->should_log(spdlog::level::trace)) core->log->trace("call failed ({}): {}", it->second->peer(), e.what());
        it->second->reject(e.kind(), to_kj(e));
      }
      else it->second->fulfill(std::move(outcome));
    }
    // The answered call unregisters once KJ consumes its answer: check for the end of a
    // graceful stop after that.
    if (lane.draining) lane.loop->post([core, &lane] { core->maybe_finish_stop(lane); });
  });
}

void ServerCore::start_accepting() {
  accept_one();
  for (auto& lane : lanes) asio::post(lane->io, [core = shared_from_this(), &lane = *lane] { core->schedule_sweep(lane); });
}

void ServerCore::accept_one() {
  acceptor.async_accept([core = shared_from_this()](std::error_code ec, asio::ip::tcp::socket socket) {
    if (ec) {
      if (ec != asio::error::operation_aborted && !core->stopping) core->accept_failed(ec);
      return;
    }
    if (core->accept_failures_ > 0) {
      // Told only when the failures were (at most one line per interval, so this is bounded too).
      if (core->accept_reported_failure_)
        core->log->info("accepting again after {} failed attempt(s)", core->accept_failures_);
      core->accept_failures_ = 0;
      core->accept_reported_failure_ = false;
      core->accept_backoff_ = accept_backoff_min;
    }
    std::error_code ignored;
    auto remote = socket.remote_endpoint(ignored);
    auto address = remote.address().to_string();
    auto peer = address + ":" + std::to_string(remote.port());
    // The connection's lane: its socket moves to the lane's io_context, where everything it
    // does from now on runs.
    LaneTicket ticket(core->pick_lane());
    auto& lane = ticket.lane();
    asio::ip::tcp::socket moved(lane.io);
    std::error_code ec2;
    auto protocol = remote.protocol();
    auto fd = socket.release(ec2);
    if (!ec2) moved.assign(protocol, fd, ec2);
    if (ec2) {
      core->log->warn("could not hand the connection from {} to a network thread: {}", peer, ec2.message());
    } else if (core->tls_) {
      asio::post(lane.io, [core, ticket = std::move(ticket), socket = std::move(moved), peer = std::move(peer),
                           address = std::move(address)]() mutable {
        core->handshake(std::move(ticket), std::move(socket), std::move(peer), std::move(address));
      });
    } else {
      lane.loop->run([core, ticket = std::move(ticket), socket = std::move(moved), peer = std::move(peer),
                      address = std::move(address)]() mutable {
        core->admit(std::move(ticket), std::move(socket), std::move(peer), std::move(address), {});
      });
    }
    core->accept_one();
  });
}

void ServerCore::admit(LaneTicket ticket, Connected connected, std::string peer, std::string address, std::string subject) {
  if (stopping) return;
  // Reserved here, at once (connections are admitted on every network thread at the same time):
  // the count never passes the limit. The connection gives its place back when it ends.
  if (open_connections.fetch_add(1) >= options.max_connections) {
    open_connections.fetch_sub(1);
    log->warn("refusing {}: {} connections open (limit)", peer, options.max_connections);
    if (metrics) metrics->breach(Limit::max_connections);
    refuse(connected, RemoteError(ErrorKind::disconnected,
                                  "the server refused the connection: " + std::to_string(options.max_connections) +
                                      " connections open (the server's max_connections)"));
    return;  // the socket closes here
  }
  try {
    auto& lane = ticket.lane();
    auto conn = kj::heap<ServerConnection>(*this, std::move(ticket), std::move(connected), std::move(peer), std::move(address), subject);
    auto done = conn->on_disconnect();
    kj(lane).tasks.add(done.attach(kj::mv(conn)));
  } catch (kj::Exception& e) {
    open_connections.fetch_sub(1);  // (a connection not made gives nothing back itself)
    log->warn("could not set up a connection: {}", e.getDescription().cStr());
  }
}

struct ServerCore::Handshake {
  Handshake(const std::shared_ptr<asio::ssl::context>& context, asio::ip::tcp::socket socket)
      : executor(socket.get_executor()),
        connection(std::make_unique<TlsConnection>(context, std::move(socket))),
        timer(executor) {}
  /// On `executor` only. Once the handshake succeeded, `connection` has moved on (to admit).
  void close() {
    std::error_code ignored;
    if (connection) connection->stream.next_layer().close(ignored);
  }
  const asio::any_io_executor executor;  ///< its lane's: everything of it runs there
  std::unique_ptr<TlsConnection> connection;
  asio::steady_timer timer;
  bool timed_out = false;
};

void ServerCore::handshake(LaneTicket ticket, asio::ip::tcp::socket socket, std::string peer, std::string address) {
  // A handshake costs the server CPU and a descriptor before anything is known of the peer:
  // counted against max_connections, and bounded in time.
  if (stopping) return;  // the socket closes here
  if (handshaking_.fetch_add(1) + open_connections.load() >= options.max_connections) {
    --handshaking_;
    log->warn("refusing {}: {} connections open or in their TLS handshake (limit)", peer, options.max_connections);
    if (metrics) metrics->breach(Limit::max_connections);
    return;
  }
  auto h = std::make_shared<Handshake>(tls_, std::move(socket));
  {
    std::lock_guard lock(handshakes_mutex_);
    handshakes_.remove_if([](const std::weak_ptr<Handshake>& h) { return h.expired(); });
    handshakes_.push_back(h);
  }
  // A stop() that began meanwhile may have looked at the list before this one was in it; it
  // set `stopping` before it looked.
  if (stopping) {
    --handshaking_;
    return h->close();
  }
  h->timer.expires_after(options.tls->handshake_timeout);
  h->timer.async_wait([weak = std::weak_ptr<Handshake>(h)](std::error_code ec) {
    auto self = weak.lock();
    if (ec || !self) return;
    self->timed_out = true;
    self->close();
  });
  h->connection->stream.async_handshake(
      asio::ssl::stream_base::server, [core = shared_from_this(), h, ticket = std::move(ticket), peer = std::move(peer),
                                       address = std::move(address)](std::error_code ec) mutable {
        --core->handshaking_;
        h->timer.cancel();
        if (core->stopping) return;
        if (ec) {
          auto why = h->timed_out ? "no handshake within " + std::to_string(core->options.tls->handshake_timeout.count()) + " ms"
                                  : handshake_failure(h->connection->stream, ec, true);
          core->log->info("TLS handshake with {} failed: {}", peer, why);
          return;
        }
        auto subject = peer_subject(h->connection->stream);
        if (!subject.empty()) peer += " (" + subject + ")";
        auto& lane = ticket.lane();
        lane.loop->run([core, ticket = std::move(ticket), connection = std::move(h->connection), peer = std::move(peer),
                        address = std::move(address), subject = std::move(subject)]() mutable {
          core->admit(std::move(ticket), std::move(connection), std::move(peer), std::move(address), std::move(subject));
        });
      });
}

void ServerCore::accept_failed(std::error_code ec) {
  // Out of descriptors (EMFILE, ENFILE) or memory (ENOBUFS, ENOMEM), or any other error: the
  // pending connection stays in the kernel's queue, so retrying at once would fail at once,
  // forever. Wait, doubling the wait up to accept_backoff_max; the first accept that succeeds
  // resets it.
  ++accept_failures_;
  ++accept_unreported_;
  auto now = std::chrono::steady_clock::now();
  // One line per interval at most, whatever successes come in between (each success after a
  // reported failure adds one "accepting again" line: two lines per interval at most).
  if (accept_reported_ == decltype(now){} || now - accept_reported_ >= accept_report_interval) {
    if (accept_unreported_ == 1)
      log->warn("accept failed: {}; retrying in {} ms (backing off up to {} ms, one line per {} ms at most)", ec.message(),
                accept_backoff_.count(), accept_backoff_max.count(), accept_report_interval.count());
    else
      log->warn("accept failed: {} ({} failure(s) since the last report); retrying in {} ms", ec.message(),
                accept_unreported_, accept_backoff_.count());
    accept_unreported_ = 0;
    accept_reported_ = now;
    accept_reported_failure_ = true;
  }
  accept_timer_.expires_after(accept_backoff_);
  accept_backoff_ = std::min(accept_backoff_ * 2, accept_backoff_max);
  accept_timer_.async_wait([core = shared_from_this()](std::error_code ec) {
    if (ec || core->stopping) return;
    core->accept_one();
  });
}

void ServerCore::schedule_sweep(Lane& lane) {
  if (stopping) return;
  lane.sweep_timer.expires_after(options.sweep_interval);
  lane.sweep_timer.async_wait([core = shared_from_this(), &lane](std::error_code ec) {
    if (ec || core->stopping) return;
    lane.loop->run([core, &lane] { core->sweep(lane); });
    core->schedule_sweep(lane);
  });
}

void ServerCore::sweep(Lane& lane) {
  if (!lane.kj) return;
  auto now = std::chrono::steady_clock::now();
  auto connections = lane.kj->connections;  // check() may end a connection, which unlinks itself later
  for (auto* c : connections) c->check(now);
}

void ServerCore::stop() {
  if (stopping.exchange(true)) return;
  asio::post(io, [core = shared_from_this()] {
    std::error_code ignored;
    core->acceptor.close(ignored);
    {
      std::lock_guard lock(core->handshakes_mutex_);
      for (auto& weak : core->handshakes_)
        if (auto h = weak.lock()) asio::post(h->executor, [h] { h->close(); });
    }
    core->accept_timer_.cancel();
    std::vector<bool> started;
    {
      std::lock_guard lock(core->stop_mutex_);
      for (auto& lane : core->lanes) started.push_back(lane->index == 0 || lane->started);
    }
    for (auto& lane : core->lanes) {
      // A lane whose thread never started has served nothing (connections are accepted only
      // once run() has started the threads, and none goes to a lane without one): nothing to
      // wait for.
      if (!started[lane->index]) {
        core->lane_stopped(*lane);
        continue;
      }
      asio::post(lane->io, [core, &lane = *lane] {
        lane.sweep_timer.cancel();
        lane.loop->run([core, &lane] { core->drain(lane); });
      });
    }
  });
}

void ServerCore::drain(Lane& lane) {
  lane.draining = true;
  if (!lane.kj || lane.kj->pending.empty()) return maybe_finish_stop(lane);
  log->info("stopping: waiting up to {} ms for {} call(s)", options.stop_grace.count(), lane.kj->pending.size());
  lane.grace_timer.expires_after(options.stop_grace);
  lane.grace_timer.async_wait([core = shared_from_this(), &lane](std::error_code ec) {
    if (ec) return;  // cancelled: the calls ended in time, maybe_finish_stop() finished the lane
    lane.loop->run([core, &lane] { core->finish_stop(lane); });
  });
}

void ServerCore::maybe_finish_stop(Lane& lane) {
  if (!lane.draining || (lane.kj && !lane.kj->pending.empty())) return;
  // From a fresh handler, after KJ has delivered what the last answer unblocked (calls
  // pipelined on it are part of the same chain): stop only if still nothing is running.
  lane.loop->post([core = shared_from_this(), &lane] {
    if (!lane.draining || (lane.kj && !lane.kj->pending.empty())) return;
    if (lane.kj && lane.flush_attempts < 50) {
      // Let the last answers reach their clients first (at most ~100 ms).
      for (auto* c : lane.kj->connections) {
        if (!c->flushed()) {
          ++lane.flush_attempts;
          lane.flush_timer.expires_after(std::chrono::milliseconds(2));
          lane.flush_timer.async_wait([core, &lane](std::error_code ec) {
            if (!ec) lane.loop->run([core, &lane] { core->maybe_finish_stop(lane); });
          });
          return;
        }
      }
    }
    lane.draining = false;
    lane.flush_timer.cancel();
    lane.grace_timer.cancel();
    core->finish_stop(lane);
  });
}

void ServerCore::finish_stop(Lane& lane) {
  teardown(lane);
  lane_stopped(lane);
}

void ServerCore::lane_stopped(Lane& lane) {
  lane.keep_running.reset();  // its io.run() returns once the lane has nothing left
  std::lock_guard lock(stop_mutex_);
  if (lane.stopped) return;  // (counted once, however many ways its stop ended)
  lane.stopped = true;
  if (++lanes_stopped_ < lanes.size()) return;
  network_stopped_ = true;
  stop_changed_.notify_all();
}

void ServerCore::join_lanes() {
  for (auto& lane : lanes)
    if (lane->thread.joinable()) lane->thread.join();
}

bool ServerCore::on_own_thread() {
  for (auto& lane : lanes)
    if (lane->io.get_executor().running_in_this_thread()) return true;
  return pool.get_executor().running_in_this_thread();
}

void ServerCore::serve(std::unique_lock<std::mutex>& lock) {
  ++io_runners_;
  lock.unlock();
  struct Unregister {
    ServerCore& core;
    std::unique_lock<std::mutex>& lock;
    ~Unregister() {
      lock.lock();
      --core.io_runners_;
      core.stop_changed_.notify_all();
    }
  } unregister{*this, lock};
  io.run();
}

void ServerCore::run() {
  std::unique_lock lock(stop_mutex_);
  // One thread serves the first network thread at a time: a stop() that found nobody serving it may
  // be doing so now.
  stop_changed_.wait(lock, [&] { return io_runners_ == 0; });
  if (network_stopped_) return;  // stopped before run() got here: nothing to serve
  if (!stopping && !lanes_started_) {
    // The other network threads, then accepting (on this thread, before it runs io: nobody
    // else does now). A stop that comes later finds them started (Lane::started).
    lanes_started_ = true;
    for (auto& lane : lanes) {
      if (lane->index == 0) continue;
      try {
        lane->thread = std::thread([this, &lane = *lane] { serve_lane(lane); });
        lane->started = true;
      } catch (const std::system_error& e) {
        // Out of threads: serve with the others; no connection goes to this one.
        log->error("could not start network thread {}: {}; serving without it", lane->index, e.what());
        lane->assigned.store(std::numeric_limits<std::size_t>::max() / 2);
      }
    }
    start_accepting();
  }
  serve(lock);
}

void ServerCore::await_stopped() {
  std::unique_lock lock(stop_mutex_);
  stop_waiting_ = true;
  while (!(network_stopped_ && user_jobs_ == 0)) {
    if (!lanes.front()->stopped && io_runners_ == 0) {
      // run() is not running (never called, or it ended): the stop's work is queued on the
      // first network thread's io_context, and nobody else will run it. Serve it here.
      if (io.stopped()) io.restart();
      serve(lock);
      continue;
    }
    if (network_stopped_ && !waiting_logged_) {
      waiting_logged_ = true;
      log->info("stopping: waiting for {} call(s) still running user code", user_jobs_.load());
    }
    stop_changed_.wait(lock);
  }
}

void ServerCore::await_no_runner() {
  std::unique_lock lock(stop_mutex_);
  stop_changed_.wait(lock, [&] { return io_runners_ == 0; });
}


ServerCore::UserJob::~UserJob() {
  if (!core_) return;
  // The lock orders this wake-up after a waiter's check of the count (no lost wake-up); taken
  // only while someone waits, so that a call normally costs two atomic operations.
  if (core_->user_jobs_.fetch_sub(1) == 1 && core_->stop_waiting_.load()) {
    std::lock_guard lock(core_->stop_mutex_);
    core_->stop_changed_.notify_all();
  }
}

void ServerCore::teardown(Lane& lane) {
  lane.flush_timer.cancel();
  if (!lane.kj) return;
  lane.draining = false;
  auto calls = lane.kj->pending;  // rejecting unlinks nothing: only destruction does
  for (auto& [id, call] : calls) call->abort(RemoteError(ErrorKind::disconnected, "the server is stopping"));
  auto k = std::move(lane.kj);
  k.reset();  // tasks first (every connection, capability and call), then the capability set
}

void ServerCore::serve_lane(Lane& lane) {
  for (;;) {
    try {
      lane.io.run();
      return;
    } catch (const std::exception& e) {
      log->error("network thread {}: {}", lane.index, e.what());
    } catch (...) {
      log->error("network thread {}: an unknown exception", lane.index);
    }
  }
}

}  // namespace remoteable::detail
