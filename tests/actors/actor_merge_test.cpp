// Actor and IdentityMap (src/actors/actor.hpp), used directly on a thread pool, without a
// server: one-at-a-time order, merging (the oldest root wins, queued work follows, the merged
// work waits for what the losers were running, chains and concurrent merges end in one root),
// dispatch inline or queued, lifetimes, and which actor owns which object.

#include "actors/actor.hpp"

#include <asio/thread_pool.hpp>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

using remoteable::Object;
using remoteable::detail::TypeInfo;
using remoteable::detail::Actor;
using remoteable::detail::IdentityMap;
using namespace std::chrono_literals;

namespace {

/// Waits (yielding, bounded) until `pred` holds; returns whether it does. Pool threads run the
/// work meanwhile.
template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit = 20s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

/// Holds a pool thread until opened (bounded, so that a broken test ends).
struct Gate {
  std::atomic<bool> open{false};
  void wait() const { wait_until([&] { return open.load(); }); }
};

/// Work of one actor: counts how many run at once and records the order.
struct Serial {
  std::atomic<int> inside{0}, overlaps{0}, done{0};
  std::vector<int> order;  // appended only by work that runs one at a time (else `overlaps`)
  void run(int i) {
    if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
    order.push_back(i);
    inside.fetch_sub(1);
    done.fetch_add(1);
  }
};

TypeInfo& thing_type() {
  static TypeInfo type = [] {
    TypeInfo t;
    t.name = "Thing";
    return t;
  }();
  return type;
}

Object object_at(std::shared_ptr<void> ptr) { return Object{std::move(ptr), &thing_type()}; }
Object new_object() { return object_at(std::make_shared<int>(0)); }

}  // namespace

TEST_CASE("an actor runs its work one at a time, in the order it was posted") {
  asio::thread_pool pool(4);
  auto actor = std::make_shared<Actor>(pool);
  Serial s;
  for (int i = 0; i < 1000; ++i) actor->post([&s, i] { s.run(i); });
  REQUIRE(wait_until([&] { return s.done == 1000; }));
  CHECK(s.overlaps == 0);
  for (int i = 0; i < 1000; ++i) REQUIRE(s.order[i] == i);
  pool.join();
}

TEST_CASE("two actors that are not merged run side by side") {
  // Each waits for the other to have started: only two strands that do not serialize get there.
  asio::thread_pool pool(2);
  auto a = std::make_shared<Actor>(pool), b = std::make_shared<Actor>(pool);
  std::atomic<bool> a_started{false}, b_started{false}, a_met{false}, b_met{false};
  a->post([&] {
    a_started = true;
    a_met = wait_until([&] { return b_started.load(); }, 10s);
  });
  b->post([&] {
    b_started = true;
    b_met = wait_until([&] { return a_started.load(); }, 10s);
  });
  pool.join();
  CHECK(a_met);
  CHECK(b_met);
}

TEST_CASE("merging makes the oldest root the root of both, and runs the work on it") {
  asio::thread_pool pool(2);
  auto older = std::make_shared<Actor>(pool), newer = std::make_shared<Actor>(pool);
  REQUIRE(older->id() < newer->id());
  std::atomic<bool> ran{false}, on_older{false};
  Actor::merge_and_post(newer, {older}, [&] {
    on_older = older->strand().running_in_this_thread();
    ran = true;
  });
  CHECK(older->root() == older);
  CHECK(newer->root() == older);
  REQUIRE(wait_until([&] { return ran.load(); }));
  CHECK(on_older);
  pool.join();
}

TEST_CASE("after a merge, work posted to either actor runs on the root, one at a time, each actor's in order") {
  asio::thread_pool pool(4);
  auto a = std::make_shared<Actor>(pool), b = std::make_shared<Actor>(pool);
  std::atomic<bool> merged{false};
  Actor::merge_and_post(a, {b}, [&] { merged = true; });
  REQUIRE(wait_until([&] { return merged.load(); }));

  Serial s;
  std::atomic<int> off_root{0};
  constexpr int n = 500;
  for (int i = 0; i < n; ++i) {
    a->post([&, i] {
      if (!a->strand().running_in_this_thread()) off_root.fetch_add(1);
      s.run(i);
    });
    b->post([&, i] {
      if (!a->strand().running_in_this_thread()) off_root.fetch_add(1);
      s.run(n + i);
    });
  }
  REQUIRE(wait_until([&] { return s.done == 2 * n; }));
  CHECK(s.overlaps == 0);
  CHECK(off_root == 0);
  int next_a = 0, next_b = n;
  for (int v : s.order) {
    if (v < n) CHECK(v == next_a++);
    else CHECK(v == next_b++);
  }
  pool.join();
}

TEST_CASE("the merged work waits for what a merged actor was running; work queued on it before follows to the root") {
  asio::thread_pool pool(4);
  auto a = std::make_shared<Actor>(pool), b = std::make_shared<Actor>(pool);
  Gate gate;
  std::atomic<bool> running{false}, finished{false}, queued_ran{false}, queued_on_root{false};
  std::atomic<bool> merged_ran{false}, merged_after_running{false}, probe_ran{false}, merged_before_probe{false};
  b->post([&] {
    running = true;
    gate.wait();
    finished = true;
  });
  REQUIRE(wait_until([&] { return running.load(); }));
  b->post([&] {  // queued behind the running work, before the merge
    queued_on_root = a->strand().running_in_this_thread();
    queued_ran = true;
  });
  Actor::merge_and_post(a, {b}, [&] {
    merged_after_running = finished.load();
    merged_ran = true;
  });
  // The root is free meanwhile: its own work runs, and the merged work has not.
  a->post([&] {
    merged_before_probe = merged_ran.load();
    probe_ran = true;
  });
  REQUIRE(wait_until([&] { return probe_ran.load(); }));
  CHECK_FALSE(merged_before_probe);
  gate.open = true;
  REQUIRE(wait_until([&] { return merged_ran.load() && queued_ran.load(); }));
  CHECK(merged_after_running);
  CHECK(queued_on_root);
  pool.join();
}

TEST_CASE("chains of merges, and merging again, resolve to one root") {
  asio::thread_pool pool(2);
  std::vector<std::shared_ptr<Actor>> actors;
  for (int i = 0; i < 5; ++i) actors.push_back(std::make_shared<Actor>(pool));
  std::atomic<int> ran{0};
  auto count = [&] { ran.fetch_add(1); };
  Actor::merge_and_post(actors[3], {actors[4]}, count);  // 3 <- 4
  Actor::merge_and_post(actors[2], {actors[3]}, count);  // 2 <- 3 <- 4
  Actor::merge_and_post(actors[4], {actors[1]}, count);  // through 4's root: 1 <- 2
  Actor::merge_and_post(actors[0], {actors[4], actors[2], actors[0]}, count);
  for (auto& a : actors) CHECK(a->root() == actors[0]);
  // Already one: the work just runs on the root.
  std::atomic<bool> on_root{false};
  Actor::merge_and_post(actors[4], {actors[1]}, [&] {
    on_root = actors[0]->strand().running_in_this_thread();
    ran.fetch_add(1);
  });
  Actor::merge_and_post(actors[2], {}, count);
  REQUIRE(wait_until([&] { return ran == 6; }));
  CHECK(on_root);
  pool.join();
}

TEST_CASE("merges made from several threads at once end in one root, with no cycle") {
  asio::thread_pool pool(4);
  constexpr int n = 32;
  std::vector<std::shared_ptr<Actor>> actors;
  for (int i = 0; i < n; ++i) actors.push_back(std::make_shared<Actor>(pool));
  std::atomic<int> ran{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      wait_until([&] { return go.load(); });
      // Together the threads merge every neighbouring pair, from both ends.
      for (int i = t; i + 1 < n; i += 4) {
        if (t % 2) Actor::merge_and_post(actors[i + 1], {actors[i]}, [&] { ran.fetch_add(1); });
        else Actor::merge_and_post(actors[i], {actors[i + 1]}, [&] { ran.fetch_add(1); });
      }
    });
  go = true;
  for (auto& t : threads) t.join();
  for (auto& a : actors) CHECK(a->root() == actors[0]);
  REQUIRE(wait_until([&] { return ran == n - 1; }));
  pool.join();
}

TEST_CASE("dispatch runs inline on the calling thread when the actor is idle, and queues when it is busy") {
  asio::thread_pool pool(2);
  auto a = std::make_shared<Actor>(pool), other = std::make_shared<Actor>(pool);
  const auto caller = std::this_thread::get_id();

  bool inline_ran = false, on_strand = false;
  std::atomic<bool> posted_ran{false}, posted_on_caller{true};
  a->dispatch([&] {
    inline_ran = std::this_thread::get_id() == caller;
    on_strand = a->strand().running_in_this_thread();
    // The inline offer is used up: work this posts elsewhere goes to the pool.
    other->post([&] {
      posted_on_caller = std::this_thread::get_id() == caller;
      posted_ran = true;
    });
  });
  CHECK(inline_ran);
  CHECK(on_strand);
  REQUIRE(wait_until([&] { return posted_ran.load(); }));
  CHECK_FALSE(posted_on_caller);

  Gate gate;
  std::atomic<bool> busy{false}, queued_ran{false}, queued_on_pool{false};
  a->post([&] {
    busy = true;
    gate.wait();
  });
  REQUIRE(wait_until([&] { return busy.load(); }));
  a->dispatch([&] {
    queued_on_pool = std::this_thread::get_id() != caller;
    queued_ran = true;
  });
  CHECK_FALSE(queued_ran);  // behind the running work
  gate.open = true;
  REQUIRE(wait_until([&] { return queued_ran.load(); }));
  CHECK(queued_on_pool);
  pool.join();
}

TEST_CASE("dispatch on a merged actor runs on its root") {
  asio::thread_pool pool(2);
  auto a = std::make_shared<Actor>(pool), b = std::make_shared<Actor>(pool);
  std::atomic<bool> merged{false}, ran{false}, on_root{false};
  Actor::merge_and_post(a, {b}, [&] { merged = true; });
  REQUIRE(wait_until([&] { return merged.load(); }));
  b->dispatch([&] {
    on_root = a->strand().running_in_this_thread();
    ran = true;
  });
  REQUIRE(wait_until([&] { return ran.load(); }));
  CHECK(on_root);
  pool.join();
}

TEST_CASE("actors and the work they ran are freed once nothing holds them; a merged actor holds its root") {
  asio::thread_pool pool(2);
  auto token = std::make_shared<int>(0);
  std::weak_ptr<Actor> weak_a, weak_b;
  {
    auto a = std::make_shared<Actor>(pool), b = std::make_shared<Actor>(pool);
    weak_a = a;
    weak_b = b;
    std::atomic<int> ran{0};
    Actor::merge_and_post(a, {b}, [&ran, token] { ran.fetch_add(1); });
    b->post([&ran, token] { ran.fetch_add(1); });
    REQUIRE(wait_until([&] { return ran == 2; }));
    a.reset();
    CHECK_FALSE(weak_a.expired());  // b forwards to it
    // (the pool may still hold the finished work's references until join below)
    b.reset();
  }
  pool.join();
  CHECK(weak_a.expired());
  CHECK(weak_b.expired());
  CHECK(token.use_count() == 1);
}

TEST_CASE("the identity map gives an object's first live owner to every later claim") {
  asio::thread_pool pool(1);
  auto a = std::make_shared<Actor>(pool), b = std::make_shared<Actor>(pool);
  IdentityMap map;
  auto o = new_object();
  CHECK(map.owner(o) == nullptr);
  CHECK(map.claim(o, a) == a);
  CHECK(map.claim(o, b) == a);
  CHECK(map.owner(o) == a);
  // Another reference to the same object is the same object.
  Object alias{o.ptr, o.type};
  CHECK(map.owner(alias) == a);
  CHECK(map.owner(new_object()) == nullptr);
  pool.join();
}

TEST_CASE("when an object's owner is gone the object has no owner, and the next claim takes it") {
  asio::thread_pool pool(1);
  IdentityMap map;
  auto o = new_object();
  auto a = std::make_shared<Actor>(pool);
  map.claim(o, a);
  a.reset();
  CHECK(map.owner(o) == nullptr);
  auto b = std::make_shared<Actor>(pool);
  CHECK(map.claim(o, b) == b);
  CHECK(map.owner(o) == b);
  pool.join();
}

TEST_CASE("a new object at a dead object's address does not inherit its owner") {
  asio::thread_pool pool(1);
  IdentityMap map;
  static int slot = 0;
  auto a = std::make_shared<Actor>(pool), b = std::make_shared<Actor>(pool);
  {
    auto first = object_at(std::shared_ptr<void>(&slot, [](void*) {}));
    map.claim(first, a);
    CHECK(map.owner(first) == a);
  }
  auto second = object_at(std::shared_ptr<void>(&slot, [](void*) {}));  // same address, new object
  CHECK(map.owner(second) == nullptr);
  CHECK(map.claim(second, b) == b);
  pool.join();
}

TEST_CASE("the identity map keeps neither objects nor actors alive") {
  asio::thread_pool pool(1);
  IdentityMap map;
  auto object = std::make_shared<int>(0);
  auto actor = std::make_shared<Actor>(pool);
  std::weak_ptr<int> weak_object = object;
  std::weak_ptr<Actor> weak_actor = actor;
  map.claim(object_at(object), actor);
  object.reset();
  actor.reset();
  CHECK(weak_object.expired());
  CHECK(weak_actor.expired());
  pool.join();
}

TEST_CASE("the identity map drops the entries of dead objects as it grows, and keeps the live ones") {
  asio::thread_pool pool(1);
  IdentityMap map;
  auto actor = std::make_shared<Actor>(pool);
  // Distinct addresses, so that no entry is merely overwritten by a reused one.
  std::vector<int> slots(20000);
  std::vector<Object> live;
  for (int i = 0; i < 2000; ++i) {
    live.push_back(object_at(std::shared_ptr<void>(&slots[i], [](void*) {})));
    map.claim(live.back(), actor);
  }
  for (std::size_t i = 2000; i < slots.size(); ++i) map.claim(object_at(std::shared_ptr<void>(&slots[i], [](void*) {})), actor);
  CHECK(map.size() < 8000);  // 18,000 dead objects were claimed
  CHECK(map.size() >= live.size());
  for (auto& o : live) REQUIRE(map.owner(o) == actor);
  pool.join();
}

TEST_CASE("claims of one object made at once from several threads agree on one owner") {
  asio::thread_pool pool(1);
  constexpr int n = 8;
  for (int round = 0; round < 20; ++round) {
    IdentityMap map;
    auto o = new_object();
    std::vector<std::shared_ptr<Actor>> actors, results(n);
    for (int i = 0; i < n; ++i) actors.push_back(std::make_shared<Actor>(pool));
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i)
      threads.emplace_back([&, i] {
        wait_until([&] { return go.load(); });
        results[i] = map.claim(o, actors[i]);
      });
    go = true;
    for (auto& t : threads) t.join();
    for (auto& r : results) REQUIRE(r == results[0]);
    CHECK(map.owner(o) == results[0]);
  }
  pool.join();
}
