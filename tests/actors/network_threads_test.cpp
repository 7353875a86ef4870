// Several network threads (ServerOptions::network_threads, README "Network threads"): each
// connection is served by one of them, and a network thread held up by one connection does not
// hold up the connections of the others.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "counted.hpp"
#include "support.hpp"

namespace {

using namespace std::chrono_literals;

/// A gate the test shares between two exports: one waits until it opens, the other opens and
/// closes it. No method is registered as blocking.
struct Gate {
  std::mutex mutex;
  std::condition_variable changed;
  bool open = false;
  int entered = 0;  ///< calls of wait() so far (only ever grows)
};

struct Gated {
  Gated(std::shared_ptr<Gate> g, std::chrono::milliseconds limit) : gate(std::move(g)), wait_limit(limit) {}
  /// Waits (at most wait_limit) for the gate to be open; whether it was.
  bool wait() {
    std::unique_lock lock(gate->mutex);
    ++gate->entered;
    return gate->changed.wait_for(lock, wait_limit, [&] { return gate->open; });
  }
  bool set(bool open) {
    std::lock_guard lock(gate->mutex);
    gate->open = open;
    gate->changed.notify_all();
    return open;
  }
  std::int64_t twice(std::int64_t x) { return 2 * x; }
  std::shared_ptr<Gate> gate;
  std::chrono::milliseconds wait_limit;
};

struct Fixture {
  explicit Fixture(unsigned network_threads, std::chrono::milliseconds wait_limit, std::size_t clients_count = 2) {
    types.class_<Gated>("Gated").method("wait", &Gated::wait).method("set", &Gated::set).method("twice", &Gated::twice);
    remoteable::ServerOptions options;
    options.network_threads = network_threads;
    options.actor_threads = 2;
    // Calls measured quick run inline on their connection's network thread when their actor is
    // idle; a long inline_limit keeps `wait` there however long it waits (the slow-call net
    // measures an inline run by its wall time).
    options.inline_limit = std::chrono::duration_cast<std::chrono::microseconds>(10min);
    options.slow_call = std::chrono::duration_cast<std::chrono::microseconds>(10min);
    server.emplace(remoteable::Endpoint{"127.0.0.1", 0}, types, options);
    gate = std::make_shared<Gate>();
    server->server().export_object(std::make_shared<Gated>(gate, wait_limit), "a");
    server->server().export_object(std::make_shared<Gated>(gate, wait_limit), "b");
    // One after the other: a connection goes to the network thread with the fewest, so with
    // two threads the first client is on one and the second on the other.
    for (std::size_t i = 0; i < clients_count; ++i) {
      clients.push_back(test::connect(context, {"127.0.0.1", server->port()}));
      REQUIRE(test::eventually(context, [&] { return server->server().connections() == i + 1; }));
    }
  }
  ~Fixture() {
    for (auto& c : clients) c.close();
    context.restart();
    context.poll();
  }
  template <class T> T run(asio::awaitable<T> aw) { return test::await(context, std::move(aw), 60s); }

  /// Teaches the server that a.wait() and b.set() are quick (the gate open, wait returns at
  /// once), so that their next calls run inline on the calling connection's network thread.
  void learn_quick() {
    for (int i = 0; i < 5; ++i) {
      CHECK(run(clients[1].fetch("b").call("set", true).as<bool>()));
      CHECK(run(clients[0].fetch("a").call("wait").as<bool>()));
    }
    CHECK_FALSE(run(clients[1].fetch("b").call("set", false).as<bool>()));
  }

  /// a.wait() from the first client, then b.set(true) from the second; what a.wait() returned.
  bool wait_then_open() {
    int before = 0;
    {
      std::lock_guard lock(gate->mutex);
      before = gate->entered;
    }
    auto waited = clients[0].fetch("a").call("wait");
    // The wait has started (inline) before the second client opens the gate: its connection's
    // network thread is inside it, or has been. (A count that only grows: seen however late
    // this thread looks.)
    REQUIRE(test::eventually(context, [&] {
      std::lock_guard lock(gate->mutex);
      return gate->entered > before;
    }));
    auto opened = clients[1].fetch("b").call("set", true);
    CHECK(test::await(context, opened.as<bool>(), 60s));
    return test::await(context, waited.as<bool>(), 60s);
  }

  remoteable::Registry types;
  std::shared_ptr<Gate> gate;
  std::optional<remoteable::ThreadedServer> server;
  asio::io_context context;
  std::vector<remoteable::Client> clients;
};

}  // namespace

TEST_CASE("a connection whose network thread is held up does not hold up another network thread's") {
  // a.wait() runs inline on the first client's network thread and holds it until b.set(true),
  // sent by the second client, runs. The second client's connection is on the other network
  // thread, which reads and runs it; with one network thread, nothing would read it until
  // a.wait() gave up after 30 s and returned false.
  Fixture t(2, 30s);
  t.learn_quick();
  INFO("a.wait() gave up after 30 s: the second connection's call was not read while the first's network thread waited");
  CHECK(t.wait_then_open());
}

TEST_CASE("with one network thread, a call that holds it up holds up every connection") {
  // The control for the test above: the same calls with network_threads = 1, where b.set(true)
  // is only read once a.wait() has given up. (A short limit: this outcome does not depend on
  // timing.)
  Fixture t(1, 300ms);
  t.learn_quick();
  CHECK_FALSE(t.wait_then_open());
}

TEST_CASE("connections spread over the network threads and all of them are served") {
  // Eight clients on four network threads (two each), each making calls in flight at once on
  // the two exports; every answer comes back right, and stopping with them connected ends
  // cleanly (the ASan build checks that nothing leaks).
  Fixture t(4, 30s, 8);
  for (int round = 0; round < 3; ++round) {
    std::vector<remoteable::Handle> results;
    for (std::size_t c = 0; c < t.clients.size(); ++c)
      for (int k = 0; k < 16; ++k) results.push_back(t.clients[c].fetch(k % 2 ? "a" : "b").call("twice", static_cast<std::int64_t>(c * 100 + k)));
    for (std::size_t i = 0; i < results.size(); ++i) {
      auto c = i / 16, k = i % 16;
      CHECK(t.run(results[i].as<std::int64_t>()) == static_cast<std::int64_t>(2 * (c * 100 + k)));
    }
  }
  CHECK(t.server->server().connections() == 8);
  t.server->stop();
  CHECK(t.server->server().connections() == 0);
}

TEST_CASE("a stop that waits for a call on one network thread ends every network thread's connections") {
  // The call on the first client's thread ends during the stop's grace period (the test opens
  // the gate once the stop has begun); stop() returns only when the connections on the other
  // thread are gone too.
  Fixture t(2, 30s);
  auto waited = t.clients[0].fetch("a").call("wait");
  REQUIRE(test::eventually(t.context, [&] {
    std::lock_guard lock(t.gate->mutex);
    return t.gate->entered == 1;
  }));
  std::thread stopper([&] { t.server->stop(); });
  REQUIRE(test::eventually([&] { return t.server->server().calls_in_flight() == 1 && !t.gate->open; }));
  {
    std::lock_guard lock(t.gate->mutex);
    t.gate->open = true;
    t.gate->changed.notify_all();
  }
  stopper.join();
  CHECK(t.server->server().connections() == 0);
  CHECK(t.server->server().calls_in_flight() == 0);
}
