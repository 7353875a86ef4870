// PeerHost's implementation: a client's shared objects, served to its server by the same object
// model as a server's (ServerCore in its hosted form: one lane on the client's loop, its own
// actor pool, no acceptor).

#include <memory>
#include <thread>
#include <utility>

#include <remoteable/registry.hpp>
#include "actors/detail/server_core.hpp"
#include "actors/detail/server_kj.hpp"
#include "peer/detail/host.hpp"
#include "peer/detail/peer_connection.hpp"

namespace remoteable::detail {

namespace {

class Host final : public PeerHost {
 public:
  Host(const Registry& registry, std::shared_ptr<KjLoop> loop, const ClientOptions& client)
      : core_(std::make_shared<ServerCore>(registry, options_for(client), std::move(loop))),
        budget_(std::make_shared<Budget>()) {
    budget_->peer = "the server";
  }

  ~Host() override {
    // User code may still run on the pool (it finds nothing to answer): wait for it, but never
    // from one of the pool's own threads (a handle dropped there can be the last reference).
    if (core_->pool.get_executor().running_in_this_thread()) {
      std::thread([core = std::move(core_)] { core->pool.join(); }).detach();
      return;
    }
    core_->pool.join();
  }

  wire::Handle::Client share(const Object& object) override {
    return core_->wrap(object, nullptr, budget_, false, false);
  }

  void close() override {
    if (budget_->peer_handles) budget_->peer_handles->close_hosted();
    core_->teardown(*core_->lanes.front());
  }

  std::size_t live_handles() const override { return core_->live_handles.load(); }

 private:
  static ServerOptions options_for(const ClientOptions& client) {
    ServerOptions o;
    o.actor_threads = client.actor_threads;
    o.max_nesting = client.max_nesting;
    o.logger = client.logger;
    o.log_level = client.log_level;
    o.push_window = client.push_window;
    return o;
  }

  std::shared_ptr<ServerCore> core_;
  std::shared_ptr<Budget> budget_;
};

}  // namespace

std::shared_ptr<PeerHost> make_peer_host(const Registry& registry, std::shared_ptr<KjLoop> loop,
                                         const ClientOptions& options) {
  registry.check_complete();
  return std::make_shared<Host>(registry, std::move(loop), options);
}

}  // namespace remoteable::detail
