#pragma once
// RegistryServer: the bootstrap capability of one connection, the export registry. Internal.

#include <kj/async.h>

#include <memory>
#include <string>
#include <utility>

#include <remoteable/error.hpp>
#include "actors/detail/server_core.hpp"
#include "rpc/kj_error.hpp"
#include "schemas/remoteable.capnp.h"

namespace remoteable::detail {

/// The bootstrap capability: the export registry, one per connection, and the registries that
/// Registry.authenticate answers with, each scoped to a principal (its grant).
///
/// Lives on the loop; made by ServerConnection, which holds the budget it counts in. Holds the
/// core by reference: the core drops every connection (teardown) before it goes away.
class RegistryServer final : public wire::Registry::Server {
 public:
  /// `grant`: what this registry allows; null: nothing but version and authenticate (a server
  /// with authentication, before the client has authenticated).
  RegistryServer(ServerCore& core, std::shared_ptr<Budget> budget, std::shared_ptr<const Grant> grant)
      : core_(core), budget_(std::move(budget)), grant_(std::move(grant)) {}

 protected:
  kj::Promise<void> fetch(FetchContext context) override;
  kj::Promise<void> browse(BrowseContext context) override;
  kj::Promise<void> store(StoreContext context) override;
  kj::Promise<void> attach(AttachContext context) override;
  kj::Promise<void> detach(DetachContext context) override;
  kj::Promise<void> version(VersionContext context) override;
  kj::Promise<void> authenticate(AuthenticateContext context) override;

 private:
  /// Refuses an attach past max_attached_per_connection or max_attached. [mutex]
  void check_attach_limits() const {
    auto& o = core_.options;
    if (budget_->attached >= o.max_attached_per_connection) {
      if (core_.metrics) core_.metrics->breach(Limit::max_attached_per_connection);
      throw to_kj(RemoteError(ErrorKind::overloaded, "too many names attached by this connection (limit max_attached_per_connection = " +
                                                         std::to_string(o.max_attached_per_connection) + ")"));
    }
    if (core_.attached_names >= o.max_attached) {
      if (core_.metrics) core_.metrics->breach(Limit::max_attached);
      throw to_kj(RemoteError(ErrorKind::overloaded, "too many names attached by clients (limit max_attached = " +
                                                         std::to_string(o.max_attached) + ")"));
    }
  }

  /// This registry's grant; a security error when there is none (not authenticated).
  const Grant& granted() const {
    if (!grant_)
      throw to_kj(RemoteError(ErrorKind::security, "authenticate first: this server wants a token (Registry.authenticate, "
                                                   "ClientOptions::token)"));
    return *grant_;
  }
  /// A security error unless the grant allows `what` (`verb`: "store values", ...).
  static void require(const Grant& g, bool allowed, const char* verb) {
    if (!allowed) throw to_kj(RemoteError(ErrorKind::security, "principal '" + g.principal + "' may not " + verb));
  }
  static RemoteError no_export(const std::string& name) { return RemoteError(ErrorKind::name, "no export named '" + name + "'"); }

  ServerCore& core_;
  std::shared_ptr<Budget> budget_;
  std::shared_ptr<const Grant> grant_;
};

}  // namespace remoteable::detail
