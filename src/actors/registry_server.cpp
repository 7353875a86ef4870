#include "actors/registry_server.hpp"

#include <remoteable/version.hpp>

#include <spdlog/spdlog.h>

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
  auto name = text(context.getParams().getName());
  if (core_.log->should_log(spdlog::level::trace)) core_.log->trace("fetch '{}'", name);
  Export e;
  {
    std::lock_guard lock(core_.exports_mutex);
    auto it = core_.exports.find(name);
    if (it == core_.exports.end()) throw to_kj(RemoteError(ErrorKind::name, "no export named '" + name + "'"));
    e = it->second;
  }
  budget_->touch();
  context.getResults(small_results).setHandle(core_.wrap(e.object, e.actor, budget_));
  return kj::READY_NOW;
}

kj::Promise<void> RegistryServer::browse(BrowseContext context) {
  if (core_.log->should_log(spdlog::level::trace)) core_.log->trace("browse");
  std::vector<std::string> names;
  {
    std::lock_guard lock(core_.exports_mutex);
    for (auto& [n, e] : core_.exports) names.push_back(n);
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

kj::Promise<void> RegistryServer::store(StoreContext context) {
  // Cancellable, like every Handle method: else a store waiting on a handle that never
  // resolves outlives its connection (and keeps the call it waits on running).
  context.allowCancellation();
  CallSlot slot(core_, budget_);  // counted from here on: decoding may wait
  if (core_.log->should_log(spdlog::level::trace)) core_.log->trace("store");
  return core_.decode(context.getParams().getValue()).then([this, context](Object value) mutable {
    auto owner = core_.identities.owner(value);
    context.getResults(small_results).setHandle(core_.wrap(value, owner, budget_, owner == nullptr));
  }).attach(kj::mv(slot));
}

kj::Promise<void> RegistryServer::attach(AttachContext context) {
  auto params = context.getParams();
  auto name = text(params.getName());
  if (core_.log->should_log(spdlog::level::trace)) core_.log->trace("attach '{}'", name);
  if (auto problem = export_name_problem(name); !problem.empty()) throw to_kj(RemoteError(ErrorKind::value, problem));
  context.allowCancellation();  // (as store)
  CallSlot slot(core_, budget_);  // counted from here on: the handle may be a promise
  return core_.unwrap(params.getHandle()).then([this, name](std::pair<Object, std::shared_ptr<Actor>> target) {
    std::lock_guard lock(core_.exports_mutex);
    check_attach_limits();
    auto [it, inserted] = core_.exports.try_emplace(name, Export{target.first, target.second, true, budget_});
    if (!inserted) throw to_kj(RemoteError(ErrorKind::name, "the name '" + name + "' is already exported"));
    ++budget_->attached;
    ++core_.attached_names;
    core_.log->info("client attached '{}'", name);
  }).attach(kj::mv(slot));
}

kj::Promise<void> RegistryServer::detach(DetachContext context) {
  auto name = text(context.getParams().getName());
  if (core_.log->should_log(spdlog::level::trace)) core_.log->trace("detach '{}'", name);
  std::lock_guard lock(core_.exports_mutex);
  auto it = core_.exports.find(name);
  if (it == core_.exports.end()) throw to_kj(RemoteError(ErrorKind::name, "no export named '" + name + "'"));
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
