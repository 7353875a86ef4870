#include <remoteable/server.hpp>

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <remoteable/detail/builtins.hpp>
#include <remoteable/registry.hpp>
#include "actors/detail/server_core.hpp"
#include "actors/names.hpp"

namespace remoteable {

// ---- Server ---------------------------------------------------------------------------------

namespace {
/// The registry, once it is known to name only registered types: a signature naming another
/// would otherwise fail only when a client first calls it.
const Registry& checked(const Registry& types) {
  types.check_complete();
  return types;
}
}  // namespace

Server::Server(Endpoint endpoint, const Registry& types, ServerOptions options)
    : registry_(checked(types)), core_(std::make_shared<detail::ServerCore>(std::move(endpoint), types, std::move(options))) {}

Server::~Server() {
  stop();  // waits for the stop and for user code, serving the network thread if nobody does
  core_->await_no_runner();  // a run() on another thread returning
  if (!core_->io.stopped()) core_->io.run();
  core_->join_lanes();
  core_->pool.join();
  // Results that actors posted after the loops stopped: run them (they find nothing to fulfil)
  // so that they release the core.
  for (auto& lane : core_->lanes) {
    lane->io.restart();
    lane->io.poll();
    detail::KjLoop::Scope scope(*lane->loop);
    core_->teardown(*lane);
    lane->loop->drive();
  }
}

std::uint16_t Server::port() const { return core_->acceptor.local_endpoint().port(); }
std::uint16_t Server::metrics_port() const { return core_->metrics ? core_->metrics->port() : 0; }

void Server::export_ref(Object ref, std::string name, const std::string* same_actor, bool replace) {
  if (auto problem = export_name_problem(name); !problem.empty()) throw std::invalid_argument(problem);
  if (ref.is(detail::builtin::function_type()))
    for (auto& o : ref.as<detail::builtin::Function>().overloads)
      detail::check_uses(registry_, o.uses, "the function '" + name + "'");
  std::lock_guard lock(core_->exports_mutex);
  if (!replace && core_->exports.contains(name))
    throw std::invalid_argument("the name '" + name + "' is already exported (pass remoteable::replace to replace it)");
  std::shared_ptr<detail::Actor> actor;
  if (same_actor) {
    auto it = core_->exports.find(*same_actor);
    if (it == core_->exports.end())
      throw std::invalid_argument("same_actor_as: no export named '" + *same_actor + "'");
    actor = it->second.actor;
  } else {
    actor = core_->identities.owner(ref);
    if (!actor) actor = std::make_shared<detail::Actor>(core_->pool);
  }
  if (!detail::builtin::is_plain(ref)) actor = core_->identities.claim(ref, actor);
  if (auto it = core_->exports.find(name); it != core_->exports.end()) core_->forget_attached(it->second);
  core_->exports.insert_or_assign(std::move(name), detail::Export{std::move(ref), std::move(actor), false, {}});
}

bool Server::unexport(std::string_view name) {
  std::lock_guard lock(core_->exports_mutex);
  auto it = core_->exports.find(name);
  if (it == core_->exports.end()) return false;
  core_->forget_attached(it->second);
  core_->exports.erase(it);
  return true;
}

void Server::set_read_only(std::string name, bool read_only) {
  std::lock_guard lock(core_->exports_mutex);
  if (read_only) core_->read_only_names.insert(std::move(name));
  else core_->read_only_names.erase(name);
}

std::vector<std::string> Server::browse() const {
  std::lock_guard lock(core_->exports_mutex);
  std::vector<std::string> names;
  for (auto& [n, e] : core_->exports) names.push_back(n);
  return names;
}

void Server::run() { core_->run(); }

void Server::stop() {
  core_->stop();
  // On the network thread or the pool, waiting would wait for the caller itself (or for the
  // thread that must do the stop's work): the stop is started, and finishes after we return.
  if (core_->on_own_thread()) return;
  core_->await_stopped();
}

bool Server::same_actor(std::string_view a, std::string_view b) const {
  std::lock_guard lock(core_->exports_mutex);
  auto x = core_->exports.find(a);
  auto y = core_->exports.find(b);
  if (x == core_->exports.end() || y == core_->exports.end()) return false;
  return x->second.actor->root() == y->second.actor->root();
}

std::size_t Server::live_handles() const { return core_->live_handles.load(); }
std::size_t Server::peer_handles() const { return core_->peer_handles->load(); }
std::size_t Server::connections() const { return core_->open_connections.load(); }
std::size_t Server::calls_in_flight() const { return core_->calls_in_flight.load(); }
std::size_t Server::peak_queued_bytes() const { return core_->peak_queued.load(); }

ThreadedServer::ThreadedServer(Endpoint endpoint, const Registry& types, ServerOptions options)
    : server_(std::move(endpoint), types, std::move(options)), thread_([this] { server_.run(); }) {}

ThreadedServer::~ThreadedServer() { stop(); }

void ThreadedServer::stop() {
  server_.stop();
  if (server_.core_->on_own_thread()) return;  // the thread may be this one; the destructor joins
  std::lock_guard lock(join_mutex_);  // two threads stopping at once: one joins, the other waits
  if (thread_.joinable()) thread_.join();
}

}  // namespace remoteable
