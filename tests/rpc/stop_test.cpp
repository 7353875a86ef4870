// Server::stop() (issue 8 item 6): from another thread it returns only once no user code of the
// server runs (blocking methods on the pool finished, coroutine methods cancelled and finished);
// from the server's own threads it starts the stop and returns, without deadlock.

#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>

#include "counted.hpp"
#include "ring_log.hpp"
#include "support.hpp"
#include "test_types.hpp"

using remoteable::ErrorKind;
using namespace std::chrono_literals;

namespace {

/// A flag one thread sets and another waits for, bounded.
class Flag {
 public:
  void set() {
    std::lock_guard lock(mutex_);
    set_ = true;
    changed_.notify_all();
  }
  bool wait(std::chrono::milliseconds limit = 20s) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, limit, [&] { return set_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool set_ = false;
};

/// User code that is still running when stop() is called. Each method records, when it ends,
/// whether stop() had returned by then (it must not have).
struct Busy {
  std::atomic<bool> stop_returned{false};

  // A blocking method on the pool: held on `hold` until the test opens it.
  test::Gate hold;
  std::atomic<int> blocking_done{0};
  std::atomic<int> blocking_after_stop{0};
  std::int64_t block() {
    hold.block();
    blocking_after_stop = stop_returned.load();
    blocking_done = 1;
    return 1;
  }

  // A coroutine method: waits long; once cancelled, it still has work to do (held on
  // `cleanup` until the test opens it) before it ends.
  Flag napping;
  test::Gate cleanup;
  std::atomic<int> coroutine_cancelled{0};
  std::atomic<int> coroutine_done{0};
  std::atomic<int> coroutine_after_stop{0};
  asio::awaitable<std::int64_t> nap() {
    asio::steady_timer timer(co_await asio::this_coro::executor, 120s);
    napping.set();
    try {
      co_await timer.async_wait(asio::use_awaitable);
    } catch (const std::system_error&) {
      coroutine_cancelled = 1;
      cleanup.block();  // blocks this pool thread: clean-up that takes a while
      coroutine_after_stop = stop_returned.load();
      coroutine_done = 1;
      throw;
    }
    co_return 0;
  }
};

/// Calls stop() from inside a method: on the network thread (a method that runs inline), or on
/// the pool (the same method registered as blocking); through Server or ThreadedServer.
struct Halter {
  remoteable::ThreadedServer* server = nullptr;
  std::int64_t halt() {
    server->server().stop();
    return 1;
  }
  std::int64_t halt_threaded() {
    server->stop();
    return 2;
  }
};

struct StopServer {
  explicit StopServer(remoteable::ServerOptions options) {
    example::register_node(types);
    types.class_<Busy>("Busy").method("block", &Busy::block, remoteable::blocking).method("nap", &Busy::nap);
    types.class_<Halter>("Halter")
        .method("halt", &Halter::halt)
        .method("halt_on_pool", &Halter::halt, remoteable::blocking)
        .method("halt_threaded", &Halter::halt_threaded)
        .method("halt_threaded_on_pool", &Halter::halt_threaded, remoteable::blocking);
    server.emplace(remoteable::Endpoint{"127.0.0.1", 0}, types, std::move(options));
    example::export_walkthrough(server->server());
    // Two objects, two actors: the two methods run at the same time.
    server->server().export_object(blocking, "blocking");
    server->server().export_object(coroutine, "coroutine");
    halter->server = &*server;
    server->server().export_object(halter, "halter");
  }
  remoteable::Endpoint endpoint() const { return {"127.0.0.1", server->port()}; }

  remoteable::Registry types;
  std::shared_ptr<Busy> blocking = std::make_shared<Busy>();
  std::shared_ptr<Busy> coroutine = std::make_shared<Busy>();
  std::shared_ptr<Halter> halter = std::make_shared<Halter>();
  std::optional<remoteable::ThreadedServer> server;
};

/// Starts an evaluation of `h` and records how it ended (a value, or an error kind).
struct Outcome {
  std::optional<std::int64_t> value;
  std::optional<ErrorKind> error;
  bool done() const { return value || error; }
};
void start(asio::io_context& context, remoteable::Handle h, Outcome& out) {
  asio::co_spawn(context, [](remoteable::Handle h, Outcome* out) -> asio::awaitable<void> {
    try {
      out->value = co_await h.as<std::int64_t>();
    } catch (const remoteable::RemoteError& e) {
      out->error = e.kind();
    }
  }(std::move(h), &out), asio::detached);
}

}  // namespace

TEST_CASE("stop() from other threads returns only after running methods have finished") {
  test::RingLog log("stop");
  remoteable::ServerOptions options;
  options.actor_threads = 4;  // the two methods, each holding a pool thread, and room to spare
  options.stop_grace = 100ms;
  options.logger = log.logger;
  StopServer s(options);
  Busy& blocking = *s.blocking;
  Busy& coroutine = *s.coroutine;
  asio::io_context context;
  auto client = test::connect(context, s.endpoint());
  Outcome blocked, napped;
  start(context, client.fetch("blocking").call("block"), blocked);
  start(context, client.fetch("coroutine").call("nap"), napped);
  REQUIRE(test::eventually(context, [&] { return blocking.hold.wait_entered(1, 0ms) && coroutine.napping.wait(0ms); }));

  // Two stops at once, through Server and through ThreadedServer: both must wait.
  auto stop_and_tell = [&](auto stop) {
    return std::async(std::launch::async, [&, stop] {
      stop();
      blocking.stop_returned = true;
      coroutine.stop_returned = true;
    });
  };
  auto stop_server = stop_and_tell([&] { s.server->server().stop(); });
  auto stop_threaded = stop_and_tell([&] { s.server->stop(); });
  struct OpenAtEnd {  // whatever fails, the methods end before the futures wait for stop()
    Busy& blocking;
    Busy& coroutine;
    ~OpenAtEnd() {
      blocking.hold.release();
      coroutine.cleanup.release();
    }
  } open_at_end{blocking, coroutine};

  // The network side stops (the grace period ends, the calls are aborted, the coroutine is
  // cancelled and enters its clean-up), then stop() waits for the two methods.
  REQUIRE(coroutine.cleanup.wait_entered(1));
  REQUIRE(test::eventually(context, [&] { return blocked.done() && napped.done(); }));
  CHECK(blocked.error == ErrorKind::disconnected);
  CHECK(napped.error == ErrorKind::disconnected);
  REQUIRE(test::eventually(context, [&] { return log.has("info", "still running user code"); }));
  // Both methods are held: neither stop() can have returned.
  CHECK(stop_server.wait_for(0s) == std::future_status::timeout);
  CHECK(stop_threaded.wait_for(0s) == std::future_status::timeout);

  blocking.hold.release();
  coroutine.cleanup.release();
  REQUIRE(stop_server.wait_for(20s) == std::future_status::ready);
  // Right after stop() returns, what the methods did is complete and visible.
  CHECK(blocking.blocking_done == 1);
  CHECK(coroutine.coroutine_cancelled == 1);
  CHECK(coroutine.coroutine_done == 1);
  REQUIRE(stop_threaded.wait_for(20s) == std::future_status::ready);
  CHECK(blocking.blocking_after_stop == 0);
  CHECK(coroutine.coroutine_after_stop == 0);
}

TEST_CASE("stop() called inside a method starts the stop and returns, without deadlock") {
  auto method = GENERATE(as<std::string>{}, "halt", "halt_on_pool", "halt_threaded", "halt_threaded_on_pool");
  INFO(method);
  remoteable::ServerOptions options;
  options.stop_grace = 20s;  // the halting call itself is in flight: it may finish
  StopServer s(options);
  asio::io_context context;
  auto client = test::connect(context, s.endpoint());
  Outcome halted;
  start(context, client.fetch("halter").call(method), halted);
  // The call answers (its stop waits for it within the grace period), then the server stops.
  REQUIRE(test::eventually(context, [&] { return halted.done(); }));
  CHECK(halted.value.has_value());
  CHECK(test::eventually(context, [&] { return !client.connected(); }));
  auto stopped = std::async(std::launch::async, [&] { s.server->stop(); });
  REQUIRE(stopped.wait_for(20s) == std::future_status::ready);
}

TEST_CASE("stop() on a server that was never run returns; run() after it returns at once") {
  remoteable::Registry types;
  example::register_node(types);
  remoteable::Server server({"127.0.0.1", 0}, types);
  example::export_walkthrough(server);
  auto stopped = std::async(std::launch::async, [&] { server.stop(); });
  REQUIRE(stopped.wait_for(20s) == std::future_status::ready);
  auto ran = std::async(std::launch::async, [&] { server.run(); });
  REQUIRE(ran.wait_for(20s) == std::future_status::ready);
  server.stop();  // idempotent
}

TEST_CASE("stop() from another thread while run() serves on this one ends run()") {
  remoteable::Registry types;
  example::register_node(types);
  remoteable::Server server({"127.0.0.1", 0}, types);
  example::export_walkthrough(server);
  std::promise<void> started;
  auto ran = std::async(std::launch::async, [&] {
    started.set_value();
    server.run();
  });
  started.get_future().wait();
  asio::io_context context;
  auto client = test::connect(context, {"127.0.0.1", server.port()});  // run() is serving
  auto stopped = std::async(std::launch::async, [&] { server.stop(); });
  REQUIRE(stopped.wait_for(20s) == std::future_status::ready);
  REQUIRE(ran.wait_for(20s) == std::future_status::ready);
  client.close();
}
