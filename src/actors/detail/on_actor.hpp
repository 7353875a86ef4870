#pragma once
// ServerCore::on_actor: runs an operation on its actor's strand and brings its outcome back to
// the loop. Included by the capability servers that call it. Internal.

#include <kj/async.h>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/co_spawn.hpp>
#include <asio/post.hpp>

#include <exception>
#include <memory>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include <remoteable/detail/builtins.hpp>
#include <remoteable/detail/object.hpp>
#include <remoteable/error.hpp>
#include "actors/actor.hpp"
#include "actors/detail/calls.hpp"
#include "actors/detail/outcome.hpp"
#include "actors/detail/server_core.hpp"
#include "actors/detail/server_kj.hpp"
#include "actors/detail/slow_calls.hpp"

namespace remoteable::detail {

/// Objects that no strand needs to guard: immutable boxed values, classes and functions.
inline bool immutable(const Object& o) {
  return builtin::is_plain(o) || o.is(builtin::class_type()) || o.is(builtin::function_type()) ||
         o.is(builtin::remote_type());
}

template <class Work>
kj::Promise<Outcome> ServerCore::on_actor(const std::shared_ptr<Budget>& budget, const std::shared_ptr<Actor>& actor,
                                          CallSeries* series, Work work, std::vector<Object> touched, bool blocking,
                                          wire::Handle::Fetch fetch) {
  auto& here_lane = here();  // where the call's connection lives, and its answer goes
  auto& k = kj(here_lane);
  budget->touch();  // (max_calls_per_connection is checked when the call is received: CallSlot)
  auto id = k.next_id++;
  auto cancel = std::make_shared<CallCancel>();
  auto promise = kj::newAdaptedPromise<Outcome, PendingCall>(k, id, budget, cancel, actor, series);
  // Arguments owned by other actors: merge them with this one first (DESIGN §4 rule 4).
  std::vector<std::shared_ptr<Actor>> others;
  for (auto& o : touched) {
    if (immutable(o)) continue;
    if (auto owner = identities.owner(o); owner && owner->root() != actor->root()) others.push_back(std::move(owner));
  }
  auto job = [core = shared_from_this(), lane = &here_lane, actor, id, cancel, fetch, work = std::move(work),
              counted = UserJob(shared_from_this())]() mutable {
    // Counted for stop() until the work and what it holds are gone: `held` is declared first,
    // so it ends last (or moves on with a coroutine method).
    UserJob held = std::move(counted);
    auto user_work = std::move(work);
    if (cancel->cancelled) return core->complete(*lane, id, None{}, std::make_exception_ptr(RemoteError(ErrorKind::cancelled, "cancelled")));
    Ctx ctx{core->registry};
    Outcome outcome;
    std::exception_ptr error;
    try {
      outcome = user_work(ctx);
      if (auto* obj = std::get_if<Object>(&outcome); obj && obj->is(builtin::pending_type())) {
        // A coroutine method: run it on this actor's strand; other calls to the actor may run
        // while it is suspended (reentrancy at co_await, DESIGN §4 rule 5). A cancelled call
        // stops at its next co_await.
        // Its first segment runs within co_spawn (asio dispatches to the strand it is on):
        // measured as a segment of the method, like the later ones (MethodSegments).
        auto& pending = obj->as<builtin::Pending>();
        auto run = std::move(pending.run);
        auto segments = std::static_pointer_cast<MethodSegments>(std::move(pending.segments));
        auto spawn = [&] {
          asio::co_spawn(actor->root()->strand(), std::move(run),
                         asio::bind_cancellation_slot(cancel->signal.slot(), [core, lane, id, cancel, fetch, held = std::move(held)](std::exception_ptr e, Object result) {
                           // On the actor's strand: the value may be read here.
                           Outcome outcome;
                           if (!e) {
                             try {
                               outcome = object_outcome(std::move(result), fetch, false, core->options.max_nesting);
                             } catch (...) {
                               e = std::current_exception();
                             }
                           }
                           core->complete(*lane, id, std::move(outcome), e);
                         }));
        };
        if (!segments) return spawn();
        CurrentSegments current(segments);
        segments->first(spawn);
        return;
      }
      if (auto* obj = std::get_if<Object>(&outcome)) {
        if (fetch != wire::Handle::Fetch::NONE && expansive(*obj)) {
          // Evaluating a large plain result: on the pool (it is immutable, any thread may read
          // it), so that this job, perhaps inline on the network thread, ends now.
          asio::post(core->pool, [core, lane, id, fetch, fresh = ctx.fresh_actor, result = std::move(*obj), held = std::move(held)]() mutable {
            Outcome evaluated;
            std::exception_ptr e;
            try {
              evaluated = object_outcome(std::move(result), fetch, fresh, core->options.max_nesting);
            } catch (...) {
              e = std::current_exception();
            }
            core->complete(*lane, id, std::move(evaluated), e);
          });
          return;
        }
        outcome = object_outcome(std::move(*obj), fetch, ctx.fresh_actor, core->options.max_nesting);
      }
    } catch (...) {
      error = std::current_exception();
    }
    core->complete(*lane, id, std::move(outcome), error);
  };
  if (others.empty()) {
    if (blocking) actor->post(std::move(job));
    else actor->dispatch(std::move(job));
  } else {
    log->debug("merging {} actor(s) on contact", others.size());
    Actor::merge_and_post(actor, others, std::move(job));
  }
  return promise;
}

}  // namespace remoteable::detail
