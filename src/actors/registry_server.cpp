#include "actors/registry_server.hpp"

#include <remoteable/version.hpp>

#include <spdlog/spdlog.h>

#include <chrono>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "actors/detail/answer.hpp"
#include "actors/detail/calls.hpp"
#include "actors/names.hpp"
#include "rpc/codec.hpp"

namespace remoteable::detail {

kj::Promise<void> RegistryServer::fetch(FetchContext context) {
  auto& g = granted();
  auto name = text(context.getParams().getName());
  if (core_.log->should_log(spdlog::level::trace)) core_.log->trace("fetch '{}'", name);
  // A name the principal may not see is answered as one that does not exist.
  if (!g.may_see(name)) throw to_kj(no_export(name));
  Export e;
  bool read_only = false;
  {
    std::lock_guard lock(core_.exports_mutex);
    auto it = core_.exports.find(name);
    if (it == core_.exports.end()) throw to_kj(no_export(name));
    e = it->second;
    read_only = e.read_only || core_.read_only_names.contains(name);
  }
  budget_->touch();
  context.getResults(small_results).setHandle(core_.wrap(e.object, e.actor, budget_, false, read_only));
  return kj::READY_NOW;
}

kj::Promise<void> RegistryServer::browse(BrowseContext context) {
  auto& g = granted();
  if (core_.log->should_log(spdlog::level::trace)) core_.log->trace("browse");
  std::vector<std::string> names;
  {
    std::lock_guard lock(core_.exports_mutex);
    for (auto& [n, e] : core_.exports)
      if (g.may_see(n)) names.push_back(n);
  }
  auto out = context.getResults().initNames(static_cast<unsigned>(names.size()));
  for (unsigned i = 0; i < out.size(); ++i) out.set(i, names[i]);
  return kj::READY_NOW;
}

kj::Promise<void> RegistryServer::version(VersionContext context) {
  auto results = context.getResults();
  results.setProtocol(protocol_version);
  results.setLibrary(remoteable::version);
  return kj::READY_NOW;
}

kj::Promise<void> RegistryServer::authenticate(AuthenticateContext context) {
  auto* auth = core_.auth.get();
  if (!auth) {  // no authentication: the same registry, whatever the token
    context.getResults(small_results).setRegistry(thisCap());
    return kj::READY_NOW;
  }
  auto now = std::chrono::steady_clock::now();
  budget_->touch();
  // Past the limit the token is not even looked at: guessing gains nothing until the window ends.
  if (!auth->attempt(budget_->address, now, *core_.log))
    throw to_kj(RemoteError(ErrorKind::security, "too many failed authentication attempts from " + budget_->address +
                                                     "; the token was not checked, try again later"));
  auto token = context.getParams().getToken();
  std::shared_ptr<const Grant> grant;
  if (token.size() == 0) grant = auth->for_certificate(budget_->certificate);
  else grant = auth->check_token(std::string_view(token.cStr(), token.size()));
  if (!grant) {  // (attempt() counted the failure already)
    auto why = token.size() == 0 ? std::string("no token given, and no client certificate that the server maps to a principal")
                                 : std::string("the token was refused");
    core_.log->warn("authentication from {} failed: {}", budget_->peer, why);
    throw to_kj(RemoteError(ErrorKind::security, why));
  }
  auth->succeeded(budget_->address);
  if (budget_->principal && budget_->principal != grant)
    throw to_kj(RemoteError(ErrorKind::security, "this connection is authenticated as '" + budget_->principal->principal +
                                                     "' already; use another connection for another principal"));
  if (!budget_->principal) core_.log->info("{} authenticated as '{}'", budget_->peer, grant->principal);
  budget_->principal = grant;
  context.getResults(small_results).setRegistry(kj::heap<RegistryServer>(core_, budget_, std::move(grant)));
  return kj::READY_NOW;
}

kj::Promise<void> RegistryServer::store(StoreContext context) {
  // Cancellable, like every Handle method: else a store waiting on a handle that never
  // resolves outlives its connection (and keeps the call it waits on running).
  auto& g = granted();
  require(g, g.authority.may_store, "store values");
  context.allowCancellation();
  CallSlot slot(core_, budget_);  // counted from here on: decoding may wait
  if (core_.log->should_log(spdlog::level::trace)) core_.log->trace("store");
  return core_.decode(context.getParams().getValue(), budget_).then([this, context](Object value) mutable {
    auto owner = core_.identities.owner(value);
    context.getResults(small_results).setHandle(core_.wrap(value, owner, budget_, owner == nullptr));
  }).attach(kj::mv(slot));
}

kj::Promise<void> RegistryServer::attach(AttachContext context) {
  auto& g = granted();
  require(g, g.authority.may_attach, "attach names");
  auto params = context.getParams();
  auto name = text(params.getName());
  if (core_.log->should_log(spdlog::level::trace)) core_.log->trace("attach '{}'", name);
  if (auto problem = export_name_problem(name); !problem.empty()) throw to_kj(RemoteError(ErrorKind::value, problem));
  if (!g.may_see(name)) require(g, false, ("attach under the name '" + name + "', which it cannot see").c_str());
  context.allowCancellation();  // (as store)
  CallSlot slot(core_, budget_);  // counted from here on: the handle may be a promise
  return core_.unwrap(params.getHandle(), budget_).then([this, name](std::pair<Object, std::shared_ptr<Actor>> target) {
    std::lock_guard lock(core_.exports_mutex);
    check_attach_limits();
    // Through a read-only handle: the object is read-only now (unwrap), and so is the name.
    bool read_only = core_.read_only_objects.contains(target.first);
    auto [it, inserted] = core_.exports.try_emplace(name, Export{target.first, target.second, true, budget_, read_only});
    if (!inserted) throw to_kj(RemoteError(ErrorKind::name, "the name '" + name + "' is already exported"));
    ++budget_->attached;
    ++core_.attached_names;
    core_.log->info("client attached '{}'", name);
  }).attach(kj::mv(slot));
}

kj::Promise<void> RegistryServer::detach(DetachContext context) {
  auto& g = granted();
  require(g, g.authority.may_detach, "detach names");
  auto name = text(context.getParams().getName());
  if (core_.log->should_log(spdlog::level::trace)) core_.log->trace("detach '{}'", name);
  if (!g.may_see(name)) throw to_kj(no_export(name));
  std::lock_guard lock(core_.exports_mutex);
  auto it = core_.exports.find(name);
  if (it == core_.exports.end()) throw to_kj(no_export(name));
  if (!it->second.attached)
    throw to_kj(RemoteError(ErrorKind::name, "'" + name + "' was exported by the server; clients can only detach what they attached"));
  if (it->second.attached_by.lock() != budget_ && !(core_.options.may_detach_any && core_.options.may_detach_any(budget_->peer)))
    throw to_kj(RemoteError(ErrorKind::name, "'" + name + "' was attached by another connection; only that connection may detach it "
                                             "(or one that ServerOptions::may_detach_any allows)"));
  core_.forget_attached(it->second);
  core_.exports.erase(it);
  return kj::READY_NOW;
}

}  // namespace remoteable::detail
