#pragma once
// ServerCore::Kj: the server's loop-side state (every Cap'n Proto object it keeps). Internal.

#include <capnp/capability.h>
#include <kj/async.h>

#include <cstdint>
#include <list>
#include <memory>
#include <unordered_map>

#include "actors/detail/server_core.hpp"
#include "schemas/remoteable.capnp.h"

#include <spdlog/spdlog.h>

namespace remoteable::detail {

class PendingCall;

/// One lane's: created on first use in its loop (ServerCore::kj()), dropped by
/// ServerCore::teardown. [lane]
struct Lane::Kj {
  Kj() : tasks(errors) {}

  struct Errors final : kj::TaskSet::ErrorHandler {
    ServerCore* core = nullptr;
    void taskFailed(kj::Exception&& e) override {
      if (core) core->log->info("connection ended: {}", e.getDescription().cStr());
    }
  } errors;
  capnp::CapabilityServerSet<wire::Handle> caps;
  // Calls running on actors. Shared with each PendingCall: KJ may destroy a call's promise
  // (held in a fork for pipelining) after this state is gone.
  using Pending = std::unordered_map<std::uint64_t, PendingCall*>;
  std::shared_ptr<Pending> pending_calls = std::make_shared<Pending>();
  Pending& pending = *pending_calls;
  std::uint64_t next_id = 1;
  std::list<ServerConnection*> connections;  // for the sweep; each removes itself
  kj::TaskSet tasks;  // one task per connection: onDisconnect().attach(connection); last, so destroyed first
};

}  // namespace remoteable::detail
