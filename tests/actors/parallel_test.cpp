// Different actors run in parallel, with no marking (DESIGN §4 rule 6, README "Where an operation
// runs"); one actor still runs one operation at a time, in arrival order per connection.

#include <time.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "support.hpp"

namespace {

using namespace std::chrono_literals;

/// A latch the test shares between two exported objects: opened by one, waited on by the other.
struct Latch {
  std::mutex mutex;
  std::condition_variable opened_changed;
  bool opened = false;
};

/// Waits on, or opens, its latch. Neither method is registered as blocking.
struct Latched {
  Latched(std::shared_ptr<Latch> l, std::chrono::milliseconds limit) : latch(std::move(l)), wait_limit(limit) {}
  /// Waits (at most wait_limit) for the latch to open; whether it did.
  bool wait() {
    std::unique_lock lock(latch->mutex);
    return latch->opened_changed.wait_for(lock, wait_limit, [&] { return latch->opened; });
  }
  bool open() {
    std::lock_guard lock(latch->mutex);
    latch->opened = true;
    latch->opened_changed.notify_all();
    return true;
  }
  std::shared_ptr<Latch> latch;
  std::chrono::milliseconds wait_limit;
};

/// Uses the CPU (not a wait) for `us` microseconds of this thread's time.
void spin_cpu(std::int64_t us) {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  const auto until = t.tv_sec * 1'000'000'000LL + t.tv_nsec + us * 1000;
  do clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  while (t.tv_sec * 1'000'000'000LL + t.tv_nsec < until);
}

/// Counts how often two of its operations (on any object sharing `count`) were inside at once,
/// and records the order its entries arrived in, per client.
struct Exclusive {
  struct Count {
    std::atomic<int> inside{0};
    std::atomic<int> overlaps{0};
    std::map<std::int64_t, std::vector<std::int64_t>> order;  // touched only inside
  };
  explicit Exclusive(std::shared_ptr<Count> c) : count(std::move(c)) {}
  /// Appends `entry` to `who`'s list after `us` microseconds of CPU (0: at once).
  std::int64_t append(std::int64_t who, std::int64_t entry, std::int64_t us) {
    if (count->inside.fetch_add(1) != 0) ++count->overlaps;
    if (us > 0) spin_cpu(us);
    count->order[who].push_back(entry);
    count->inside.fetch_sub(1);
    return entry;
  }
  std::vector<std::int64_t> order_of(std::int64_t who) { return count->order[who]; }
  std::shared_ptr<Count> count;
};

struct ParallelFixture {
  ParallelFixture() {
    types.class_<Latched>("Latched").method("wait", &Latched::wait).method("open", &Latched::open);
    types.class_<Exclusive>("Exclusive").method("append", &Exclusive::append)
        .method("append_slowly", &Exclusive::append)
        .method("order_of", &Exclusive::order_of);
    remoteable::ServerOptions options;
    // Two pool threads, whatever this machine has: the test is about two operations at once.
    options.actor_threads = 2;
    server.emplace(remoteable::Endpoint{"127.0.0.1", 0}, types, options);
    for (int i = 0; i < 2; ++i) clients.push_back(test::connect(context, {"127.0.0.1", server->port()}));
  }
  ~ParallelFixture() {
    for (auto& c : clients) c.close();
    context.restart();
    context.poll();
  }
  /// Exports a pair waiting on / opening one latch: "a" and "b", in one actor if `one_actor`.
  std::shared_ptr<Latch> export_pair(std::chrono::milliseconds wait_limit, bool one_actor) {
    auto latch = std::make_shared<Latch>();
    server->server().export_object(std::make_shared<Latched>(latch, wait_limit), "a");
    if (one_actor) server->server().export_object(std::make_shared<Latched>(latch, wait_limit), "b", remoteable::same_actor_as{"a"});
    else server->server().export_object(std::make_shared<Latched>(latch, wait_limit), "b");
    return latch;
  }
  /// Calls a.wait() from `from_a`, then b.open() from `from_b`; what a.wait() returned.
  bool wait_then_open(remoteable::Client& from_a, remoteable::Client& from_b) {
    auto waited = from_a.fetch("a").call("wait");
    auto opened = from_b.fetch("b").call("open");
    // Bounded beyond the latch's own limit: a result always comes back, true or false.
    CHECK(test::await(context, opened.as<bool>(), 60s));
    return test::await(context, waited.as<bool>(), 60s);
  }
  template <class T> T run(asio::awaitable<T> aw) { return test::await(context, std::move(aw), 60s); }

  remoteable::Registry types;
  std::optional<remoteable::ThreadedServer> server;
  asio::io_context context;
  std::vector<remoteable::Client> clients;
};

}  // namespace

TEST_CASE("two operations on different actors overlap: one waits for what only the other does") {
  ParallelFixture t;
  t.export_pair(30s, false);
  // a.wait() is sent first and holds its actor until b.open() runs: if the two could not run
  // at once, a.wait() would give up after 30 s and return false.
  SECTION("over one connection") {
    INFO("a.wait() gave up after 30 s: b.open(), on another actor, did not run while it waited");
    CHECK(t.wait_then_open(t.clients[0], t.clients[0]));
  }
  SECTION("over two connections") {
    INFO("a.wait() gave up after 30 s: b.open(), on another actor, did not run while it waited");
    CHECK(t.wait_then_open(t.clients[0], t.clients[1]));
  }
}

TEST_CASE("the same two operations on one actor do not overlap: the wait gives up first") {
  // The control for the test above: in one actor b.open() queues behind a.wait(), which can
  // only give up. (A short limit: this outcome does not depend on timing.)
  ParallelFixture t;
  auto latch = t.export_pair(200ms, true);
  CHECK_FALSE(t.wait_then_open(t.clients[0], t.clients[0]));
  std::lock_guard lock(latch->mutex);
  CHECK(latch->opened);
}

TEST_CASE("one actor runs one operation at a time, in arrival order per connection, inline or on the pool") {
  ParallelFixture t;
  auto count = std::make_shared<Exclusive::Count>();
  // Two objects of one actor; calls that run long (sent to the pool once measured) and calls
  // that run at once (inline when the actor is idle), from two connections at once.
  t.server->server().export_object(std::make_shared<Exclusive>(count), "x");
  t.server->server().export_object(std::make_shared<Exclusive>(count), "y", remoteable::same_actor_as{"x"});
  constexpr int per_client = 120;
  std::vector<remoteable::Handle> sent;
  for (int round = 0; round < 2; ++round) {  // the first round teaches the server which is which
    for (int i = 0; i < per_client; ++i) {
      for (std::int64_t who = 0; who < 2; ++who) {
        auto& client = t.clients[static_cast<std::size_t>(who)];
        auto target = client.fetch(i % 2 ? "x" : "y");
        if (i % 3 == 0) sent.push_back(target.call("append_slowly", who * 10 + round, i, 300));
        else sent.push_back(target.call("append", who * 10 + round, i, 0));
      }
    }
    for (auto& s : sent) t.run(s.as<std::int64_t>());
    sent.clear();
  }
  CHECK(count->overlaps.load() == 0);
  std::vector<std::int64_t> in_order(per_client);
  for (int i = 0; i < per_client; ++i) in_order[static_cast<std::size_t>(i)] = i;
  for (std::int64_t who = 0; who < 2; ++who) {
    for (int round = 0; round < 2; ++round) {
      INFO("client " << who << ", round " << round);
      CHECK(t.run(t.clients[0].fetch("x").call("order_of", who * 10 + round).as<std::vector<std::int64_t>>()) == in_order);
    }
  }
}
