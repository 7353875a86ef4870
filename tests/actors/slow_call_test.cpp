// Where a call runs: its first call on the actor pool, where its thread's CPU time is measured;
// inline on the network thread while its calls are quick; on the pool while they run long; and,
// past slow_call of CPU or of waiting, on the pool for good (the safety net).

#include <time.h>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "support.hpp"
#include "test_types.hpp"

namespace {

std::int64_t thread_number() { return static_cast<std::int64_t>(std::hash<std::thread::id>{}(std::this_thread::get_id()) >> 1); }

std::int64_t cpu_ns() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec * 1'000'000'000LL + t.tv_nsec;
}

/// Uses the CPU for `ms` milliseconds of this thread's time (the work itself, not a wait for
/// anything), then says where it ran.
std::int64_t busy_for(std::int64_t ms) {
  const auto until = cpu_ns() + ms * 1'000'000;
  while (cpu_ns() < until) {
  }
  return thread_number();
}

/// Waits `ms` milliseconds for a condition nobody signals: a method that waits (on I/O, a lock,
/// a timer) rather than computes. Then says where it ran.
std::int64_t wait_for(std::int64_t ms) {
  std::mutex m;
  std::condition_variable never;
  std::unique_lock lock(m);
  never.wait_for(lock, std::chrono::milliseconds(ms), [] { return false; });
  return thread_number();
}

struct Worker {
  std::int64_t busy(std::int64_t ms) { return busy_for(ms); }
  std::int64_t wait(std::int64_t ms) { return wait_for(ms); }
  std::int64_t quick() { return thread_number(); }
  std::int64_t thread() const { return thread_number(); }
};

struct SlowFixture {
  explicit SlowFixture(remoteable::ServerOptions options = slow_options()) {
    example::register_node(types);
    test::register_test_types(types);
    types.class_<Worker>("Worker")
        .method("busy", &Worker::busy)
        .method("wait", &Worker::wait)
        .method("quick", &Worker::quick)
        .method("quick_blocking", &Worker::quick, remoteable::blocking)
        .property("thread", &Worker::thread);
    server.emplace(remoteable::Endpoint{"127.0.0.1", 0}, types, std::move(options));
    example::export_walkthrough(server->server());
    server->server().export_object(std::make_shared<Worker>(), "worker");
    // A property read is not measured: on an actor that never ran anything, it runs inline.
    server->server().export_object(std::make_shared<Worker>(), "probe");
    server->server().export_function("busy_fn", &busy_for);
    server->server().export_object(gate, "gate");
    client.emplace(test::connect(context, {"127.0.0.1", server->port()}));
  }
  ~SlowFixture() {
    client->close();
    context.restart();
    context.poll();
  }
  /// Limits far above what a quick call uses in a Debug or sanitizer build on a loaded machine,
  /// and far below what busy() and wait() are asked for.
  static remoteable::ServerOptions slow_options() {
    remoteable::ServerOptions o;
    o.inline_limit = std::chrono::milliseconds(1);
    o.slow_call = std::chrono::milliseconds(5);
    return o;
  }
  template <class T> T run(asio::awaitable<T> aw) { return test::await(context, std::move(aw)); }
  /// The network thread, as thread_number() (once: the probe's actor is idle only the first time).
  std::int64_t network() {
    if (!network_) network_ = run(client->fetch("probe").attr("thread").as<std::int64_t>());
    return *network_;
  }
  /// Calls `h` (a fresh handle each time) until a call runs on the network thread, at most
  /// `tries` times; whether one did. Right after a call on the pool, the actor's strand may not
  /// have let go yet (a loaded machine widens that window), so one call may queue behind it.
  bool runs_inline_soon(const std::function<remoteable::Handle()>& h, int tries = 100) {
    for (int i = 0; i < tries; ++i)
      if (run(h().as<std::int64_t>()) == network()) return true;
    return false;
  }
  /// Whether any of `tries` calls of `h` ran on the network thread.
  bool ever_inline(const std::function<remoteable::Handle()>& h, int tries = 40) { return runs_inline_soon(h, tries); }
  std::optional<std::int64_t> network_;

  remoteable::Registry types;
  std::optional<remoteable::ThreadedServer> server;
  std::shared_ptr<test::Gate> gate = std::make_shared<test::Gate>();
  asio::io_context context;
  std::optional<remoteable::Client> client;
};

}  // namespace

TEST_CASE("a method's first call runs on the pool; once measured quick, its calls run inline") {
  SlowFixture t;
  auto worker = t.client->fetch("worker");
  auto network = t.network();
  CHECK(t.run(worker.call("quick").as<std::int64_t>()) != network);  // not measured yet
  CHECK(t.runs_inline_soon([&] { return worker.call("quick"); }));
  CHECK(t.runs_inline_soon([&] { return t.client->fetch("busy_fn")(0); }));
  CHECK(t.runs_inline_soon([&] { return worker.attr("quick")(); }));  // measured as the method
  // Registered as blocking: never inline, however quick.
  CHECK_FALSE(t.ever_inline([&] { return worker.call("quick_blocking"); }));
  CHECK_FALSE(t.ever_inline([&] { return worker.attr("quick_blocking")(); }));
}

TEST_CASE("a method that computes past the inline limit runs on the pool; quick again, inline again") {
  remoteable::ServerOptions options = SlowFixture::slow_options();
  options.slow_call = std::chrono::seconds(10);  // the safety net out of the way
  SlowFixture t(options);
  auto worker = t.client->fetch("worker");
  REQUIRE(t.runs_inline_soon([&] { return worker.call("busy", 0); }));
  // 3 ms of CPU is past the inline limit (1 ms here): the next call is measured on the pool.
  t.run(worker.call("busy", 3).as<std::int64_t>());
  t.run(worker.call("busy", 3).as<std::int64_t>());
  CHECK(t.run(worker.call("busy", 0).as<std::int64_t>()) != t.network());
  // Runs under the limit in a row bring it back inline.
  CHECK(t.runs_inline_soon([&] { return worker.call("busy", 0); }));
}

TEST_CASE("a method that used more than slow_call of CPU runs on the pool from then on") {
  SlowFixture t;
  auto worker = t.client->fetch("worker");
  REQUIRE(t.runs_inline_soon([&] { return worker.call("busy", 0); }));
  t.run(worker.call("busy", 20).as<std::int64_t>());  // inline, and long: measured next time
  t.run(worker.call("busy", 20).as<std::int64_t>());  // on the pool: 20 ms of CPU, past 5 ms
  CHECK_FALSE(t.ever_inline([&] { return worker.call("busy", 0); }));
  // Other methods of the type are measured on their own.
  CHECK(t.runs_inline_soon([&] { return worker.call("quick"); }));
}

TEST_CASE("a method that waited longer than slow_call runs on the pool from then on") {
  SlowFixture t;
  auto worker = t.client->fetch("worker");
  t.run(worker.call("wait", 20).as<std::int64_t>());  // on the pool (not measured yet): waits 20 ms
  CHECK_FALSE(t.ever_inline([&] { return worker.call("wait", 0); }));
}

TEST_CASE("a function that used more than slow_call of CPU runs on the pool from then on") {
  SlowFixture t;
  auto fn = t.client->fetch("busy_fn");
  t.run(fn(20).as<std::int64_t>());
  CHECK_FALSE(t.ever_inline([&] { return fn(0); }));
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

TEST_CASE("slow_call zero turns the safety net off: a long call does not keep a method off the loop") {
  remoteable::ServerOptions options = SlowFixture::slow_options();
  options.slow_call = std::chrono::microseconds(0);
  SlowFixture t(options);
  auto worker = t.client->fetch("worker");
  t.run(worker.call("busy", 20).as<std::int64_t>());
  CHECK(t.runs_inline_soon([&] { return worker.call("busy", 0); }));
}

TEST_CASE("inline_limit zero: every call runs on the pool") {
  remoteable::ServerOptions options;
  options.inline_limit = std::chrono::microseconds(0);
  SlowFixture t(options);
  auto worker = t.client->fetch("worker");
  CHECK_FALSE(t.ever_inline([&] { return worker.call("quick"); }));
}
