// A call that runs too long inline on the network thread is learned as blocking: its later
// calls go to the actor pool, so it holds up other connections at most once.

#include <functional>
#include <thread>

#include "support.hpp"
#include "test_types.hpp"

namespace {

std::int64_t thread_number() { return static_cast<std::int64_t>(std::hash<std::thread::id>{}(std::this_thread::get_id()) >> 1); }

/// Busy for `ms` milliseconds (the work itself, not a wait for anything), then says where it ran.
std::int64_t busy_for(std::int64_t ms) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < until) {
  }
  return thread_number();
}

struct Worker {
  std::int64_t busy(std::int64_t ms) { return busy_for(ms); }
  std::int64_t quick() { return thread_number(); }
};

struct SlowFixture {
  explicit SlowFixture(remoteable::ServerOptions options = slow_options()) {
    example::register_node(types);
    test::register_test_types(types);
    types.class_<Worker>("Worker").method("busy", &Worker::busy).method("quick", &Worker::quick);
    server.emplace(remoteable::Endpoint{"127.0.0.1", 0}, types, std::move(options));
    example::export_walkthrough(server->server());
    server->server().export_object(std::make_shared<Worker>(), "worker");
    server->server().export_function("busy_fn", &busy_for);
    server->server().export_object(gate, "gate");
    client.emplace(test::connect(context, {"127.0.0.1", server->port()}));
  }
  ~SlowFixture() {
    client->close();
    context.restart();
    context.poll();
  }
  static remoteable::ServerOptions slow_options() {
    remoteable::ServerOptions o;
    o.slow_call = std::chrono::milliseconds(2);
    return o;
  }
  template <class T> T run(asio::awaitable<T> aw) { return test::await(context, std::move(aw)); }

  remoteable::Registry types;
  std::optional<remoteable::ThreadedServer> server;
  std::shared_ptr<test::Gate> gate = std::make_shared<test::Gate>();
  asio::io_context context;
  std::optional<remoteable::Client> client;
};

}  // namespace

TEST_CASE("a method that ran too long on the network thread runs on the pool from then on") {
  SlowFixture t;
  auto worker = t.client->fetch("worker");
  auto network = t.run(worker.call("quick").as<std::int64_t>());
  CHECK(t.run(worker.call("busy", 0).as<std::int64_t>()) == network);  // quick enough: inline
  CHECK(t.run(worker.call("busy", 20).as<std::int64_t>()) == network);  // inline, and too long
  CHECK(t.run(worker.call("busy", 0).as<std::int64_t>()) != network);   // learned: the pool
  // Other methods stay inline: whenever the actor is idle. Right after a call on the pool, its
  // strand may not have let go yet (a loaded machine widens that window), so the next call can
  // queue behind it; a learned method would never run inline, an unlearned one soon does.
  bool inline_again = false;
  for (int i = 0; i < 100 && !inline_again; ++i) inline_again = t.run(worker.call("quick").as<std::int64_t>()) == network;
  CHECK(inline_again);
}

TEST_CASE("a function that ran too long on the network thread runs on the pool from then on") {
  SlowFixture t;
  auto fn = t.client->fetch("busy_fn");
  auto network = t.run(t.client->fetch("worker").call("quick").as<std::int64_t>());
  CHECK(t.run(fn(20).as<std::int64_t>()) == network);
  CHECK(t.run(fn(0).as<std::int64_t>()) != network);
}

TEST_CASE("a learned slow method no longer holds up other actors") {
  SlowFixture t;
  auto gate = t.client->fetch("gate");
  // Gate.block waits for the test to open it: it must not run on the network thread, or
  // nothing else would be served. Teach the server first with a call that returns at once
  // only after it ran long: open the gate from here once the call is inside.
  std::thread opener([&] {
    if (t.gate->wait_entered(1)) {
      busy_for(10);  // keep the first call inside past the threshold
      t.gate->release();
    }
  });
  CHECK(t.run(gate.call("block").as<std::int64_t>()) == 1);
  opener.join();
  // Learned: a new gate, blocked, while other actors answer.
  auto fresh = std::make_shared<test::Gate>();
  t.server->server().export_object(fresh, "gate2");
  auto blocked = t.client->fetch("gate2").call("block");
  t.context.restart();
  for (int i = 0; i < 2000 && !fresh->wait_entered(1, std::chrono::milliseconds(10)); ++i) t.context.poll();
  REQUIRE(fresh->wait_entered(1, std::chrono::milliseconds(0)));
  CHECK(t.run((t.client->fetch("root").call("child", 0).attr("value") + 4).as<std::int64_t>()) == 6);
  fresh->release();
  CHECK(t.run(blocked.as<std::int64_t>()) == 1);
}

TEST_CASE("slow_call zero turns the learning off") {
  remoteable::ServerOptions options;
  options.slow_call = std::chrono::microseconds(0);
  SlowFixture t(options);
  auto worker = t.client->fetch("worker");
  auto network = t.run(worker.call("quick").as<std::int64_t>());
  CHECK(t.run(worker.call("busy", 10).as<std::int64_t>()) == network);
  CHECK(t.run(worker.call("busy", 0).as<std::int64_t>()) == network);
}
