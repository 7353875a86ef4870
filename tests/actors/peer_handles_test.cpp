// Server code that takes, keeps and calls handles to peers' objects (issue 10): a handle from
// server A, passed by a client to a method of server B, works in B's code: coroutine methods
// await it, pushes made without awaiting arrive in order, it keeps A's object alive until B
// drops it or the connection it came by ends, calls on it then fail with disconnected, and what
// a connection can make B hold is bounded. Over real sockets: two servers and a client.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <remoteable/deadline.hpp>

#include "counted.hpp"
#include "support.hpp"

namespace {

using namespace std::chrono_literals;
using remoteable::ErrorKind;
using remoteable::Handle;

/// On server A: what B's code calls.
struct Sink {
  std::vector<std::int64_t> got;
  std::int64_t n = 0;
  std::int64_t next() { return ++n; }
  void add(std::int64_t x) { got.push_back(x); }
  std::int64_t count() const { return static_cast<std::int64_t>(got.size()); }
  std::vector<std::int64_t> values() const { return got; }
};

/// On server A: a call that does not answer until the test opens the gate (or 30 s pass).
struct Gate {
  std::mutex mutex;
  std::condition_variable changed;
  bool open = false;
  bool wait() {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, 30s, [&] { return open; });
  }
  void release() {
    std::lock_guard lock(mutex);
    open = true;
    changed.notify_all();
  }
};

/// On server B: keeps handles and uses them.
struct Relay {
  std::optional<Handle> held;
  std::vector<Handle> subscribers;

  void hold(Handle h) { held = std::move(h); }
  void drop() { held.reset(); }
  std::size_t hold_all(std::vector<Handle> hs) {
    for (auto& h : hs) subscribers.push_back(std::move(h));
    return subscribers.size();
  }
  void subscribe(Handle h) { subscribers.push_back(std::move(h)); }
  /// Calls the held handle and answers with a value made from its answer.
  asio::awaitable<std::int64_t> ping() {
    if (!held) throw std::invalid_argument("nothing held");
    Handle h = *held;  // the coroutine's own copy: the member may change while it waits
    std::int64_t n = co_await h.call("next").as<std::int64_t>();
    co_return n * 10;
  }
  /// The same, bounded by `ms` in server code.
  asio::awaitable<bool> wait_within(std::int64_t ms) {
    Handle h = *held;
    co_return co_await remoteable::with_timeout(h.call("wait").as<bool>(), std::chrono::milliseconds(ms));
  }
  /// Pushes `n` calls of wait() to the held gate, then waits at most `ms` for one more: behind
  /// pushes that a peer does not answer, the deadline still ends the wait.
  asio::awaitable<bool> flood_then_wait(std::int64_t n, std::int64_t ms) {
    Handle h = *held;
    for (std::int64_t i = 0; i < n; ++i) (void)h.call("wait");
    co_return co_await remoteable::with_timeout(h.call("wait").as<bool>(), std::chrono::milliseconds(ms));
  }
  /// Pushes 0..n-1 to every subscriber without awaiting each, then evaluates each one's count:
  /// the subscribers that answered (a subscriber that fails is dropped).
  asio::awaitable<std::int64_t> push(std::int64_t n) {
    auto subs = subscribers;
    for (std::int64_t i = 0; i < n; ++i)
      for (auto& s : subs) (void)s.call("add", i);
    std::vector<Handle> alive;
    for (auto& s : subs) {
      try {
        (void)co_await s.call("count").as<std::int64_t>();
        alive.push_back(s);
      } catch (const remoteable::RemoteError& e) {
        last_error = e.kind();
      }
    }
    subscribers = alive;
    co_return static_cast<std::int64_t>(alive.size());
  }
  std::string last_error_kind() const { return last_error ? std::string(remoteable::to_string(*last_error)) : "none"; }
  std::optional<ErrorKind> last_error;
  std::optional<Handle> get_held() const { return held; }
};

struct Fixture {
  explicit Fixture(remoteable::ServerOptions b_options = {}) {
    test::register_counted(a_types);
    a_types.class_<Sink>("Sink").constructor<>().method("next", &Sink::next).method("add", &Sink::add)
        .method("count", &Sink::count).method("values", &Sink::values);
    a_types.class_<Gate>("Gate").method("wait", &Gate::wait, remoteable::blocking).method("release", &Gate::release);
    b_types.class_<Relay>("Relay")
        .method("hold", &Relay::hold)
        .method("drop", &Relay::drop)
        .method("hold_all", &Relay::hold_all)
        .method("subscribe", &Relay::subscribe)
        .method("ping", &Relay::ping)
        .method("wait_within", &Relay::wait_within)
        .method("flood_then_wait", &Relay::flood_then_wait)
        .method("push", &Relay::push)
        .method("last_error_kind", &Relay::last_error_kind)
        .property("held", &Relay::get_held);
    a.emplace(remoteable::Endpoint{"127.0.0.1", 0}, a_types);
    b.emplace(remoteable::Endpoint{"127.0.0.1", 0}, b_types, b_options);
    gate = std::make_shared<Gate>();
    a->server().export_object(std::make_shared<Sink>(), "sink");
    a->server().export_object(gate, "gate");
    a->server().export_class<test::Counted>("Counted");
    b->server().export_object(std::make_shared<Relay>(), "relay");
    to_a = test::connect(context, {"127.0.0.1", a->port()});
    to_b = test::connect(context, {"127.0.0.1", b->port()});
  }
  ~Fixture() {
    if (gate) gate->release();
    to_a->close();
    to_b->close();
    context.restart();
    context.poll();
  }
  template <class T> T run(asio::awaitable<T> aw) { return test::await(context, std::move(aw), 60s); }
  void run(asio::awaitable<void> aw) { test::await(context, std::move(aw), 60s); }
  bool eventually(auto pred) { return test::eventually(context, pred); }

  remoteable::Registry a_types, b_types;
  std::optional<remoteable::ThreadedServer> a, b;
  std::shared_ptr<Gate> gate;
  asio::io_context context;
  std::optional<remoteable::Client> to_a, to_b;
};

}  // namespace

TEST_CASE("a coroutine method calls a handle from another server and answers with a value made from its answer") {
  Fixture f;
  auto relay = f.to_b->fetch("relay");
  f.run(relay.call("hold", f.to_a->fetch("sink")).get());
  CHECK(f.b->server().peer_handles() == 1);
  CHECK(f.run(relay.call("ping").as<std::int64_t>()) == 10);
  CHECK(f.run(relay.call("ping").as<std::int64_t>()) == 20);
  // A's object saw both calls: they reached it, not a copy.
  CHECK(f.run(f.to_a->fetch("sink").call("next").as<std::int64_t>()) == 3);
  // Read back from B, the handle is the capability it came as: the client's calls on it reach A.
  CHECK(f.run(relay.attr("held").call("next").as<std::int64_t>()) == 4);
}

TEST_CASE("pushes made without awaiting arrive in order, none twice") {
  Fixture f;
  auto relay = f.to_b->fetch("relay");
  f.run(relay.call("subscribe", f.to_a->fetch("sink")).get());
  constexpr std::int64_t n = 10'000;
  CHECK(f.run(relay.call("push", n).as<std::int64_t>()) == 1);
  auto got = f.run(f.to_a->fetch("sink").call("values").as<std::vector<std::int64_t>>());
  REQUIRE(got.size() == static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) REQUIRE(got[static_cast<std::size_t>(i)] == i);
}

TEST_CASE("a held handle keeps the peer's object alive until the server drops it, or its connection ends") {
  Fixture f;
  auto before = test::Counted::live.load();
  auto relay = f.to_b->fetch("relay");
  // A new object on A that only B holds (the client's temporary handle goes with the call).
  f.run(relay.call("hold", f.to_a->fetch("Counted")(7)).get());
  REQUIRE(f.eventually([&] { return test::Counted::live.load() == before + 1; }));
  CHECK(f.b->server().peer_handles() == 1);
  f.run(relay.call("drop").get());
  CHECK(f.eventually([&] { return test::Counted::live.load() == before && f.b->server().peer_handles() == 0; }));

  // Held again; then the connection it came by (the client's to B) ends: B lets it go, and A's
  // object goes with it.
  f.run(relay.call("hold", f.to_a->fetch("Counted")(8)).get());
  REQUIRE(f.eventually([&] { return test::Counted::live.load() == before + 1; }));
  f.to_b->close();
  CHECK(f.eventually([&] { return test::Counted::live.load() == before; }));
}

TEST_CASE("a call on a held handle whose connection is gone fails with disconnected, and the server goes on") {
  Fixture f;
  auto relay = f.to_b->fetch("relay");
  f.run(relay.call("hold", f.to_a->fetch("sink")).get());
  CHECK(f.run(relay.call("ping").as<std::int64_t>()) == 10);
  SECTION("the client's connection to A ends: the calls it forwarded fail") {
    f.to_a->close();
    CHECK(test::error_of(f.context, relay.call("ping").as<std::int64_t>()) == ErrorKind::disconnected);
  }
  SECTION("the connection it came by ends: another client's call finds it disconnected") {
    auto other = test::connect(f.context, {"127.0.0.1", f.b->port()});
    f.to_b->close();
    REQUIRE(f.eventually([&] { return f.b->server().connections() == 1; }));
    CHECK(test::error_of(f.context, other.fetch("relay").call("ping").as<std::int64_t>()) == ErrorKind::disconnected);
    CHECK(f.run(other.fetch("relay").call("last_error_kind").as<std::string>()) == "none");
    other.close();
  }
}

TEST_CASE("with_timeout bounds server code waiting on a peer that does not answer") {
  Fixture f;
  auto relay = f.to_b->fetch("relay");
  f.run(relay.call("hold", f.to_a->fetch("gate")).get());
  CHECK(test::error_of(f.context, relay.call("wait_within", 200).as<bool>()) == ErrorKind::timeout);
  f.gate->release();
  CHECK(f.run(relay.call("wait_within", 20'000).as<bool>()));
}

TEST_CASE("with_timeout ends a wait queued behind pushes that the peer does not answer") {
  Fixture f;
  auto relay = f.to_b->fetch("relay");
  f.run(relay.call("hold", f.to_a->fetch("gate")).get());
  // 2,000 pushes fill the window (1,000): the last evaluation waits behind them.
  CHECK(test::error_of(f.context, relay.call("flood_then_wait", 2'000, 300).as<bool>()) == ErrorKind::timeout);
  f.gate->release();  // A answers them all now
  CHECK(f.run(relay.call("wait_within", 20'000).as<bool>()));
}

TEST_CASE("a connection can make the server hold only so many handles to its objects") {
  remoteable::ServerOptions options;
  options.max_remote_handles_per_connection = 3;
  Fixture f(options);
  auto relay = f.to_b->fetch("relay");
  auto sink = f.to_a->fetch("sink");
  CHECK(f.run(relay.call("hold_all", std::vector<remoteable::Value>{sink, sink, sink}).as<std::int64_t>()) == 3);
  CHECK(test::error_of(f.context, relay.call("subscribe", sink).get()) == ErrorKind::overloaded);
  CHECK(f.b->server().peer_handles() == 3);
}

TEST_CASE("a Handle parameter takes a peer's object; the server's own objects are not handles") {
  Fixture f;
  auto relay = f.to_b->fetch("relay");
  CHECK(test::error_of(f.context, relay.call("hold", relay).get()) == ErrorKind::type);
  CHECK(test::error_of(f.context, relay.call("hold", 5).get()) == ErrorKind::type);
}


TEST_CASE("a held handle sent to another connection: through the server on the same network thread, refused across") {
  for (unsigned threads : {1u, 2u}) {
    remoteable::ServerOptions options;
    options.network_threads = threads;
    Fixture f(options);
    auto relay = f.to_b->fetch("relay");
    f.run(relay.call("hold", f.to_a->fetch("sink")).get());
    // A second connection to B: with one network thread it shares the first one's; with two it
    // gets the other thread (a new connection goes where there are fewest).
    auto other = test::connect(f.context, {"127.0.0.1", f.b->port()});
    REQUIRE(f.eventually([&] { return f.b->server().connections() == 2; }));
    auto held = other.fetch("relay").attr("held");
    if (threads == 1) {
      CHECK(f.run(held.call("next").as<std::int64_t>()) == 1);  // other -> B -> to_b's client -> A
    } else {
      CHECK(test::error_of(f.context, held.call("next").as<std::int64_t>()) == ErrorKind::type);
    }
    other.close();
  }
}
