// KjLoop (src/rpc/event_port.hpp): a KJ event loop whose turns run as handlers on an Asio strand.
// When functions run, in which order, what wakes the loop, when the idle tasks run, and what
// shutting down with work still queued leaves behind.

#include "rpc/event_port.hpp"

#include <kj/debug.h>

#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "rpc/kj_loop_support.hpp"

using remoteable::detail::IdleTask;
using remoteable::detail::KjLoop;
using Log = std::vector<std::string>;
using namespace std::chrono_literals;

namespace {

/// An idle task that writes "idle" to a log each time it runs.
struct LoggingIdle final : IdleTask {
  explicit LoggingIdle(Log& l) : log(l) {}
  void on_idle() override { log.push_back("idle"); }
  Log& log;
};

/// A promise that counts `n` turns of the loop, one evalLater each.
kj::Promise<void> count_turns(int& count, int n) {
  return kj::evalLater([&count, n]() -> kj::Promise<void> {
    ++count;
    if (n > 1) return count_turns(count, n - 1);
    return kj::READY_NOW;
  });
}

}  // namespace

TEST_CASE("run() from a thread outside the executor queues the function, which runs with the loop current") {
  test::LoopFixture f;
  bool ran = false, current = false, on_strand = false;
  f.loop->run([&] {
    ran = true;
    current = f.loop->in_loop();
    on_strand = f.loop->strand().running_in_this_thread();
  });
  CHECK_FALSE(ran);  // queued: this thread is not running the executor
  REQUIRE(test::run_until(f.context, [&] { return ran; }));
  CHECK(current);
  CHECK(on_strand);
  CHECK_FALSE(f.loop->in_loop());  // current only for the handler's duration
}

TEST_CASE("run() on a thread running the executor, with the strand idle, runs the function inline") {
  test::LoopFixture f;
  bool ran = false, ran_inside_run = false, handler_done = false;
  asio::post(f.context, [&] {
    f.loop->run([&] { ran = true; });
    ran_inside_run = ran;
    handler_done = true;
  });
  REQUIRE(test::run_until(f.context, [&] { return handler_done; }));
  CHECK(ran_inside_run);
}

TEST_CASE("inside a loop handler run() runs at once and post() runs after the handler") {
  test::LoopFixture f;
  Log log;
  f.loop->run([&] {
    log.push_back("a");
    f.loop->run([&] { log.push_back("run"); });
    f.loop->post([&] { log.push_back("post"); });
    log.push_back("b");
  });
  REQUIRE(test::run_until(f.context, [&] { return log.size() == 4; }));
  CHECK(log == Log{"a", "run", "b", "post"});
}

TEST_CASE("functions queued with run() and post() run in the order they were given") {
  test::LoopFixture f;
  std::vector<int> order;
  for (int i = 0; i < 100; ++i) {
    if (i % 2) f.loop->run([&order, i] { order.push_back(i); });
    else f.loop->post([&order, i] { order.push_back(i); });
  }
  REQUIRE(test::run_until(f.context, [&] { return order.size() == 100; }));
  for (int i = 0; i < 100; ++i) CHECK(order[i] == i);
}

TEST_CASE("functions given from several threads run one at a time, each thread's in its order") {
  // The executor is served by two threads and fed by four others: the strand keeps the loop's
  // handlers one at a time.
  asio::io_context context;
  auto loop = std::make_shared<KjLoop>(context.get_executor());
  auto guard = asio::make_work_guard(context);
  std::vector<std::thread> runners;
  for (int i = 0; i < 2; ++i) runners.emplace_back([&] { context.run(); });

  constexpr int threads = 4, each = 250;
  std::vector<std::pair<int, int>> seen;  // touched only on the strand
  std::atomic<int> inside{0}, overlaps{0}, done{0};
  std::vector<std::thread> feeders;
  for (int t = 0; t < threads; ++t)
    feeders.emplace_back([&, t] {
      for (int i = 0; i < each; ++i)
        loop->run([&, t, i] {
          if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
          if (!loop->in_loop()) overlaps.fetch_add(1);
          seen.emplace_back(t, i);
          inside.fetch_sub(1);
          done.fetch_add(1);
        });
    });
  for (auto& t : feeders) t.join();
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (done.load() < threads * each && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  guard.reset();
  context.stop();
  for (auto& t : runners) t.join();

  REQUIRE(done.load() == threads * each);
  CHECK(overlaps.load() == 0);
  std::vector<int> next(threads, 0);
  for (auto [t, i] : seen) {
    CHECK(i == next[t]);
    next[t] = i + 1;
  }
}

TEST_CASE("a KJ promise chain started in a handler runs to its end, across more turns than one handler takes") {
  test::LoopFixture f;
  int count = 0;
  // 1000 turns: the loop yields to Asio every 256 and must come back by itself.
  f.settle([&] { return count_turns(count, 1000); });
  CHECK(count == 1000);
}

TEST_CASE("a KJ promise fulfilled from another thread wakes the loop") {
  test::LoopFixture f;
  kj::Maybe<kj::Own<kj::CrossThreadPromiseFulfiller<int>>> fulfiller;
  kj::Maybe<kj::Promise<void>> held;
  int got = 0;
  bool armed = false;
  f.loop->run([&] {
    auto paf = kj::newPromiseAndCrossThreadFulfiller<int>();
    held = paf.promise.then([&](int v) { got = v; }).eagerlyEvaluate(nullptr);
    fulfiller = kj::mv(paf.fulfiller);
    armed = true;
  });
  REQUIRE(test::run_until(f.context, [&] { return armed; }));
  test::run_ready(f.context);  // the loop has nothing left to do: only a wake() brings it back
  CHECK(got == 0);

  std::thread other([&] { KJ_ASSERT_NONNULL(fulfiller)->fulfill(42); });
  other.join();
  CHECK(test::run_until(f.context, [&] { return got == 42; }));
  f.in_scope([&] {
    held = nullptr;
    fulfiller = nullptr;
  });
}

TEST_CASE("the idle tasks run once, after the loop handlers queued when they were registered") {
  test::LoopFixture f;
  Log log;
  auto task = std::make_shared<LoggingIdle>(log);
  f.loop->run([&] {
    log.push_back("a");
    f.loop->at_idle(task);
  });
  f.loop->run([&] { log.push_back("b"); });
  REQUIRE(test::run_until(f.context, [&] { return log.size() == 3; }));
  f.loop->run([&] { log.push_back("c"); });
  REQUIRE(test::run_until(f.context, [&] { return log.size() == 4; }));
  test::run_ready(f.context);
  CHECK(log == Log{"a", "b", "idle", "c"});
}

TEST_CASE("urgent() runs the idle tasks at the end of this handler, before the queued ones") {
  test::LoopFixture f;
  Log log;
  auto task = std::make_shared<LoggingIdle>(log);
  f.loop->run([&] {
    log.push_back("a");
    f.loop->at_idle(task);
    f.loop->urgent();
  });
  f.loop->run([&] { log.push_back("b"); });
  REQUIRE(test::run_until(f.context, [&] { return log.size() == 3; }));
  test::run_ready(f.context);
  CHECK(log == Log{"a", "idle", "b"});
}

TEST_CASE("a function given to run_later() runs after the handler, and the idle tasks wait for it") {
  test::LoopFixture f;
  Log log;
  auto task = std::make_shared<LoggingIdle>(log);
  f.loop->run([&] {
    f.loop->at_idle(task);
    f.loop->run_later([&] { log.push_back("later"); });
    log.push_back("handler");
  });
  REQUIRE(test::run_until(f.context, [&] { return log.size() == 3; }));
  test::run_ready(f.context);
  CHECK(log == Log{"handler", "later", "idle"});
}

TEST_CASE("after_handler work runs when the handler is done with the loop, before handlers queued earlier and before the idle tasks") {
  test::LoopFixture f;
  Log log;
  auto task = std::make_shared<LoggingIdle>(log);
  bool current = true;
  asio::post(f.context, [&] {
    f.loop->run([&] {
      asio::post(f.context, [&] { log.push_back("queued before"); });
      f.loop->at_idle(task);
      f.loop->after_handler(f.context.get_executor(), [&] {
        current = f.loop->in_loop();
        log.push_back("after");
        // What it does on the loop runs in a handler of its own, at once (the strand is this
        // thread's), with its own turns.
        f.loop->run([&] { log.push_back("run from after"); });
      });
      log.push_back("handler");
    });
  });
  REQUIRE(test::run_until(f.context, [&] { return log.size() == 5; }));
  CHECK(log == Log{"handler", "after", "run from after", "idle", "queued before"});
  CHECK_FALSE(current);
}

TEST_CASE("after_handler work given outside a loop handler, or by a handler that throws, is posted to its executor") {
  test::LoopFixture f;
  Log log;
  {
    KjLoop::Scope scope(*f.loop);
    f.loop->after_handler(f.context.get_executor(), [&] { log.push_back("posted"); });
  }
  CHECK(log.empty());  // not run when the plain Scope closed
  REQUIRE(test::run_until(f.context, [&] { return log.size() == 1; }));
  f.loop->run([&] {
    f.loop->after_handler(f.context.get_executor(), [&] { log.push_back("after a throw"); });
    throw std::runtime_error("handler failed");
  });
  CHECK_THROWS_WITH(test::run_until(f.context, [] { return false; }, 5s), "handler failed");
  REQUIRE(test::run_until(f.context, [&] { return log.size() == 2; }));
  CHECK(log == Log{"posted", "after a throw"});
}

TEST_CASE("an idle task destroyed before the loop goes idle is not run") {
  test::LoopFixture f;
  Log log;
  auto task = std::make_shared<LoggingIdle>(log);
  bool done = false;
  f.loop->run([&] {
    f.loop->at_idle(task);
    task.reset();
    done = true;
  });
  REQUIRE(test::run_until(f.context, [&] { return done; }));
  test::run_ready(f.context);
  CHECK(log.empty());
}

TEST_CASE("a handler of one loop does not enter another: the other's work is queued for later") {
  test::LoopFixture f;
  auto other = std::make_shared<KjLoop>(f.context.get_executor());
  bool entered_other = false, could_enter = true, other_ran = false, other_current = false, first_current = true;
  bool handler_done = false;
  f.loop->run([&] {
    could_enter = other->can_enter();
    CHECK_THROWS_AS(KjLoop::Scope(*other), kj::Exception);
    other->run([&] {
      other_ran = true;
      other_current = other->in_loop();
      first_current = f.loop->in_loop();
    });
    entered_other = other_ran;
    handler_done = true;
  });
  REQUIRE(test::run_until(f.context, [&] { return handler_done && other_ran; }));
  CHECK_FALSE(could_enter);
  CHECK_FALSE(entered_other);
  CHECK(other_current);
  CHECK_FALSE(first_current);
}

TEST_CASE("an exception thrown by a loop handler reaches the thread running the executor, and the loop stays usable") {
  test::LoopFixture f;
  f.loop->run([] { throw std::runtime_error("handler failed"); });
  CHECK_THROWS_WITH(test::run_until(f.context, [] { return false; }, 5s), "handler failed");
  CHECK_FALSE(f.loop->in_loop());
  CHECK(f.loop->can_enter());
  int count = 0;
  f.settle([&] { return count_turns(count, 10); });
  CHECK(count == 10);
}

TEST_CASE("shutting down with work still queued frees the work and the loop, and runs none of it") {
  std::weak_ptr<KjLoop> weak;
  auto token = std::make_shared<int>(0);
  bool ran = false, continued = false;
  {
    asio::io_context context;
    auto loop = std::make_shared<KjLoop>(context.get_executor());
    weak = loop;
    kj::Maybe<kj::Promise<void>> pending;
    kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> never;
    {
      // A KJ promise that nothing will fulfil, holding a copy of the token.
      KjLoop::Scope scope(*loop);
      auto paf = kj::newPromiseAndFulfiller<void>();
      pending = paf.promise.then([&continued, token] { continued = true; }).eagerlyEvaluate(nullptr);
      never = kj::mv(paf.fulfiller);
    }
    loop->run([&ran, token] { ran = true; });
    loop->post([&ran, token] { ran = true; });
    loop->run_later([&ran, token] { ran = true; });
    CHECK(token.use_count() == 5);
    {
      // KJ objects go first, with the loop current; the Asio handlers go with the context.
      KjLoop::Scope scope(*loop);
      pending = nullptr;
      never = nullptr;
    }
    loop.reset();
    CHECK_FALSE(weak.expired());  // the queued handlers hold it
  }
  CHECK(weak.expired());
  CHECK(token.use_count() == 1);
  CHECK_FALSE(ran);
  CHECK_FALSE(continued);
}
