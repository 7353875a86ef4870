// The client's chain planner on its own (peer/detail/chain_plan.hpp): which deferred steps go
// out with an evaluation as one Handle.chain call, without a connection or a socket.

#include <catch2/catch.hpp>

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "peer/detail/chain_plan.hpp"

using remoteable::detail::ChainLink;
using remoteable::detail::ChainPlan;
using remoteable::detail::plan_chain;

namespace {

constexpr std::size_t unbounded = 1024;

/// A queue of deferred steps as the client holds it (a deque), each described by its ChainLink.
std::optional<ChainPlan> plan(const std::deque<ChainLink>& steps, std::uint64_t fetched, bool keep,
                              std::size_t max_steps = unbounded) {
  return plan_chain(steps, fetched, keep, max_steps, [](const ChainLink& l) { return l; });
}

/// `n` steps, each made on the handle the one before made: handle 1 (the root) → 2 → … → n + 1,
/// no handle in between held by anything else.
std::deque<ChainLink> linear(std::uint64_t n) {
  std::deque<ChainLink> steps;
  for (std::uint64_t i = 0; i < n; ++i) steps.push_back(ChainLink{i + 2, i + 1, false});
  return steps;
}

}  // namespace

TEST_CASE("no deferred steps, or a last step that makes another handle: nothing to plan") {
  CHECK_FALSE(plan({}, 2, false));
  auto steps = linear(3);  // makes handles 2, 3, 4
  CHECK_FALSE(plan(steps, 3, false));  // handle 3's step is not last: it goes out with the rest
  CHECK_FALSE(plan(steps, 2, true));
  CHECK_FALSE(plan(steps, 99, false));
}

TEST_CASE("a lone step that is kept goes as its own request; one that is not kept, as a chain") {
  auto steps = linear(1);
  auto kept = plan(steps, 2, true);
  REQUIRE(kept);
  CHECK(kept->first == 0);
  CHECK_FALSE(kept->as_chain);
  auto dropped = plan(steps, 2, false);
  REQUIRE(dropped);
  CHECK(dropped->first == 0);
  CHECK(dropped->as_chain);
}

TEST_CASE("steps each made on the one before, whose handles nobody else holds, go as one chain") {
  for (bool keep : {false, true}) {
    auto steps = linear(5);
    auto p = plan(steps, 6, keep);
    REQUIRE(p);
    CHECK(p->first == 0);
    CHECK(p->as_chain);
  }
}

TEST_CASE("a handle in between that something else holds ends the chain after it") {
  auto steps = linear(5);  // handles 2..6
  steps[3].parent_held_elsewhere = true;  // the step making 5 is made on 4, which a variable holds
  auto p = plan(steps, 6, false);
  REQUIRE(p);
  // 4 needs a capability of its own: its step goes alone, before; the chain starts at 5.
  CHECK(p->first == 3);
  CHECK(p->as_chain);

  steps = linear(2);
  steps[1].parent_held_elsewhere = true;
  p = plan(steps, 3, true);
  REQUIRE(p);
  CHECK(p->first == 1);
  CHECK_FALSE(p->as_chain);  // alone, and kept: its own request
}

TEST_CASE("a step made on a handle other than the one the step before made ends the chain") {
  // root 1 → 2 → 3, then a step on the root again (1 → 4), then 4 → 5.
  std::deque<ChainLink> steps{{2, 1, false}, {3, 2, false}, {4, 1, false}, {5, 4, false}};
  auto p = plan(steps, 5, false);
  REQUIRE(p);
  CHECK(p->first == 2);
  // Two handles made on the same parent, one after the other: the second is no step of a chain
  // through the first.
  steps = {{2, 1, false}, {3, 1, false}};
  p = plan(steps, 3, false);
  REQUIRE(p);
  CHECK(p->first == 1);
}

TEST_CASE("a chain holds at most the server's bound of steps; the older ones go before it") {
  auto steps = linear(10);
  auto p = plan(steps, 11, false, 4);
  REQUIRE(p);
  CHECK(steps.size() - p->first == 4);
  CHECK(p->first == 6);
  p = plan(steps, 11, false, 1);
  REQUIRE(p);
  CHECK(p->first == 9);
  CHECK(p->as_chain);
  // Within the bound, the whole queue.
  p = plan(steps, 11, false, 10);
  REQUIRE(p);
  CHECK(p->first == 0);
}

TEST_CASE("the planner reads any random-access queue through its projection") {
  struct Step {
    std::uint64_t id, parent;
    long uses;
  };
  std::vector<Step> steps{{2, 1, 1}, {3, 2, 1}, {4, 3, 2}};
  auto p = plan_chain(steps, 4, false, unbounded, [](const Step& s) { return ChainLink{s.id, s.parent, s.uses != 1}; });
  REQUIRE(p);
  CHECK(p->first == 2);  // handle 3 is held twice
}
