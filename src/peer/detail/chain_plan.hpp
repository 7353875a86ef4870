#pragma once
// The client's choice of which deferred steps travel as one Handle.chain call, as a function of
// the queue alone (no connection, no socket), so that it is tested by itself
// (tests/proxy/chain_plan_test.cpp). Internal.

#include <cstddef>
#include <cstdint>
#include <optional>

namespace remoteable::detail {

/// What the planner needs to know of one deferred step: the handle it makes, the handle it is
/// made on, and whether anything but this step holds that parent handle (another handle copy,
/// another step, a user's variable).
struct ChainLink {
  std::uint64_t id;
  std::uint64_t parent;
  bool parent_held_elsewhere;
};

/// How an evaluation of the last deferred step is sent: the steps `[first, end)` of the queue go
/// out together with it; the ones before `first` are sent as requests of their own, first.
/// `as_chain` is false when the step goes alone as its own request with `fetch` set (it makes a
/// handle that is kept), true when the steps go as one Handle.chain call.
struct ChainPlan {
  std::size_t first;
  bool as_chain;
};

/// Plans the evaluation of handle `fetched` when `steps` (a random-access queue of deferred
/// steps, oldest first; `link(step)` gives each one's ChainLink) are waiting to be sent. Nothing
/// when the last step does not make `fetched` (its step was sent already: the caller evaluates
/// the handle's capability instead). Steps join the run back from the last one while each is made
/// on the handle of the step just before it, a handle nobody else holds, and the run stays
/// within `max_steps` (the server's bound on one chain). `keep`: the evaluated handle stays in
/// use after the evaluation, so it needs a capability of its own; a chain's last capability is
/// only kept when `keep` is set, so that a lone step that is not kept still goes as a chain.
template <class Steps, class Link>
std::optional<ChainPlan> plan_chain(const Steps& steps, std::uint64_t fetched, bool keep, std::size_t max_steps,
                                    Link link) {
  if (steps.empty()) return std::nullopt;
  const std::size_t size = steps.size();
  if (ChainLink last = link(steps[size - 1]); last.id != fetched) return std::nullopt;
  std::size_t first = size - 1;
  while (first > 0 && size - first < max_steps) {
    ChainLink here = link(steps[first]);
    if (link(steps[first - 1]).id != here.parent || here.parent_held_elsewhere) break;
    --first;
  }
  return ChainPlan{first, !(size - first == 1 && keep)};
}

}  // namespace remoteable::detail
