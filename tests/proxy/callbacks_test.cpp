// Client-side objects (issue 10): a client given a registry shares objects with its server
// (Client::share); server code calls them back, keeps them as subscribers and pushes to them.
// Calls run on the client's actors without the application polling; lifetime and limits hold
// both ways. Over real sockets.

#include <atomic>
#include <condition_variable>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "counted.hpp"
#include "support.hpp"

namespace {

using namespace std::chrono_literals;
using remoteable::ErrorKind;
using remoteable::Handle;

/// On the client: what the server calls. Its calls run on the client's actor pool while the
/// test thread reads it: a mutex.
struct Listener {
  mutable std::mutex mutex;
  std::vector<std::int64_t> got;
  std::atomic<int> calls{0};
  static inline std::atomic<int> live{0};
  Listener() { ++live; }
  ~Listener() { --live; }
  void on_event(std::int64_t x) {
    std::lock_guard lock(mutex);
    got.push_back(x);
  }
  std::int64_t count() const {
    std::lock_guard lock(mutex);
    return static_cast<std::int64_t>(got.size());
  }
  std::int64_t triple(std::int64_t x) {
    ++calls;
    return 3 * x;
  }
  /// Does not answer until the test opens the gate (at most 30 s).
  bool hang() {
    std::unique_lock lock(mutex);
    return opened.wait_for(lock, 30s, [&] { return open; });
  }
  void release() {
    std::lock_guard lock(mutex);
    open = true;
    opened.notify_all();
  }
  std::condition_variable opened;
  bool open = false;
  std::vector<std::int64_t> events() const {
    std::lock_guard lock(mutex);
    return got;
  }
};

/// On the server: subscribers and callbacks.
struct Room {
  std::vector<Handle> members;
  std::optional<Handle> kept;
  std::size_t join(Handle h) {
    members.push_back(std::move(h));
    return members.size();
  }
  void keep(Handle h) { kept = std::move(h); }
  void forget() { kept.reset(); }
  /// Waits for the kept handle's hang().
  asio::awaitable<bool> wait_on_kept() {
    Handle h = *kept;
    co_return co_await h.call("hang").as<bool>();
  }
  /// Calls the client back once and answers with a value made from its answer.
  asio::awaitable<std::int64_t> ask(Handle h, std::int64_t x) {
    std::int64_t y = co_await h.call("triple", x).as<std::int64_t>();
    co_return y + 1;
  }
  /// Pushes 0..n-1 to every member without awaiting, then evaluates each one's count; members
  /// that fail are dropped. Answers with how many are left.
  asio::awaitable<std::int64_t> publish(std::int64_t n) {
    auto to = members;
    for (std::int64_t i = 0; i < n; ++i)
      for (auto& m : to) (void)m.call("on_event", i);
    std::vector<Handle> alive;
    for (auto& m : to) {
      try {
        (void)co_await m.call("count").as<std::int64_t>();
        alive.push_back(m);
      } catch (const remoteable::RemoteError& e) {
        failures.push_back(std::string(remoteable::to_string(e.kind())));
      }
    }
    members = alive;
    co_return static_cast<std::int64_t>(alive.size());
  }
  std::vector<std::string> failures;
  std::vector<std::string> failed() const { return failures; }
};

struct Fixture {
  Fixture() {
    server_types.class_<Room>("Room")
        .method("join", &Room::join)
        .method("keep", &Room::keep)
        .method("forget", &Room::forget)
        .method("ask", &Room::ask)
        .method("wait_on_kept", &Room::wait_on_kept)
        .method("publish", &Room::publish)
        .method("failed", &Room::failed);
    server.emplace(remoteable::Endpoint{"127.0.0.1", 0}, server_types);
    server->server().export_object(std::make_shared<Room>(), "room");
    client_types = std::make_shared<remoteable::Registry>();
    client_types->class_<Listener>("Listener")
        .method("on_event", &Listener::on_event)
        .method("count", &Listener::count)
        .method("triple", &Listener::triple)
        .method("hang", &Listener::hang, remoteable::blocking);
  }
  ~Fixture() {
    for (auto& c : clients) c.close();
    context.restart();
    context.poll();
  }
  remoteable::Client& connect() {
    remoteable::ClientOptions options;
    options.registry = client_types;
    clients.push_back(test::connect(context, {"127.0.0.1", server->port()}, options));
    return clients.back();
  }
  template <class T> T run(asio::awaitable<T> aw) { return test::await(context, std::move(aw), 60s); }
  bool eventually(auto pred) { return test::eventually(context, pred); }

  remoteable::Registry server_types;
  std::optional<remoteable::ThreadedServer> server;
  std::shared_ptr<remoteable::Registry> client_types;
  asio::io_context context;
  std::deque<remoteable::Client> clients;  // connect() hands out references: they stay put
};

}  // namespace

TEST_CASE("a coroutine method calls back a client object and answers with a value made from its answer") {
  Fixture f;
  auto& client = f.connect();
  auto listener = std::make_shared<Listener>();
  auto room = client.fetch("room");
  CHECK(f.run(room.call("ask", client.share(listener), 5).as<std::int64_t>()) == 16);
  CHECK(listener->calls == 1);
  // The shared handle works on the client too (a local call, no round trip to the server).
  auto mine = client.share(listener);
  CHECK(f.run(mine.call("triple", 2).as<std::int64_t>()) == 6);
}

TEST_CASE("a subscription: another client's call makes the server push 10,000 events, all in order, none twice") {
  Fixture f;
  auto& subscriber = f.connect();
  auto& publisher = f.connect();
  auto listener = std::make_shared<Listener>();
  CHECK(f.run(subscriber.fetch("room").call("join", subscriber.share(listener)).as<std::int64_t>()) == 1);
  constexpr std::int64_t n = 10'000;
  CHECK(f.run(publisher.fetch("room").call("publish", n).as<std::int64_t>()) == 1);
  auto got = listener->events();
  REQUIRE(got.size() == static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) REQUIRE(got[static_cast<std::size_t>(i)] == i);
}

TEST_CASE("a subscriber that disconnects: pushes to it fail disconnected, the others keep receiving") {
  Fixture f;
  auto& stays = f.connect();
  auto& leaves = f.connect();
  auto& publisher = f.connect();
  auto a = std::make_shared<Listener>();
  auto b = std::make_shared<Listener>();
  f.run(stays.fetch("room").call("join", stays.share(a)).get());
  f.run(leaves.fetch("room").call("join", leaves.share(b)).get());
  CHECK(f.run(publisher.fetch("room").call("publish", 100).as<std::int64_t>()) == 2);
  CHECK(b->count() == 100);
  leaves.close();
  REQUIRE(f.eventually([&] { return f.server->server().connections() == 2; }));
  CHECK(f.run(publisher.fetch("room").call("publish", 100).as<std::int64_t>()) == 1);
  CHECK(a->count() == 200);
  CHECK(b->count() == 100);
  CHECK(f.run(publisher.fetch("room").call("failed").as<std::vector<std::string>>()) == std::vector<std::string>{"disconnected"});
  // The server let go of what the gone subscriber shared.
  CHECK(f.eventually([&] { return f.server->server().peer_handles() == 1; }));
}

TEST_CASE("a handle the server keeps keeps the client object alive; dropping it, or the connection's end, releases it") {
  Fixture f;
  auto& client = f.connect();
  auto room = client.fetch("room");
  auto before = Listener::live.load();
  f.run(room.call("keep", client.share(std::make_shared<Listener>())).get());
  CHECK(Listener::live == before + 1);
  CHECK(f.eventually([&] { return client.shared_handles() == 1; }));
  f.run(room.call("forget").get());
  CHECK(f.eventually([&] { return Listener::live == before && client.shared_handles() == 0; }));
  CHECK(f.eventually([&] { return f.server->server().peer_handles() == 0; }));

  // A cycle: the server holds the client's object, and the client holds the server's room
  // (and the object holds nothing). The connection's end releases both.
  f.run(room.call("keep", client.share(std::make_shared<Listener>())).get());
  CHECK(Listener::live == before + 1);
  client.close();
  CHECK(f.eventually([&] { return f.server->server().peer_handles() == 0; }));
  CHECK(f.eventually([&] { return Listener::live == before; }));
}

TEST_CASE("share needs a registry, and a registered type") {
  Fixture f;
  auto plain = test::connect(f.context, {"127.0.0.1", f.server->port()});
  CHECK_THROWS_AS(plain.share(std::make_shared<Listener>()), std::logic_error);
  auto& client = f.connect();
  CHECK_THROWS_AS(client.share(std::shared_ptr<Listener>()), std::invalid_argument);
  plain.close();
}

TEST_CASE("a coroutine method waiting on a peer that goes away ends with disconnected") {
  Fixture f;
  auto& holder = f.connect();
  auto& caller = f.connect();
  auto listener = std::make_shared<Listener>();
  f.run(holder.fetch("room").call("keep", holder.share(listener)).get());
  // The caller's call waits in the server's coroutine, which waits on the holder's object.
  auto waiting = caller.fetch("room").call("wait_on_kept").as<bool>();
  std::optional<remoteable::ErrorKind> kind;
  asio::co_spawn(f.context, std::move(waiting), [&](std::exception_ptr e, bool) {
    try {
      if (e) std::rethrow_exception(e);
      kind = ErrorKind::user;  // answered: wrong
    } catch (const remoteable::RemoteError& error) {
      kind = error.kind();
    }
  });
  REQUIRE(f.eventually([&] { return f.server->server().calls_in_flight() == 1; }));
  holder.close();
  REQUIRE(f.eventually([&] { return kind.has_value(); }));
  CHECK(*kind == ErrorKind::disconnected);
  listener->release();  // the holder's pool thread, still in hang(), ends
}

namespace {
/// Which thread a call ran on, and where a coroutine method ran before and after awaiting the
/// client.
std::int64_t thread_tag() { return static_cast<std::int64_t>(std::hash<std::thread::id>{}(std::this_thread::get_id())); }
struct Where {
  std::int64_t here() { return thread_tag(); }
  asio::awaitable<std::int64_t> after_callback(Handle h) {
    (void)co_await h.call("triple", 1).as<std::int64_t>();
    co_return thread_tag();
  }
  /// Long after its co_await: 50 ms.
  asio::awaitable<std::int64_t> sleep_after_callback(Handle h) {
    (void)co_await h.call("triple", 1).as<std::int64_t>();
    std::this_thread::sleep_for(50ms);
    co_return thread_tag();
  }
  /// Long before its first co_await: 50 ms; answers with where that ran.
  asio::awaitable<std::int64_t> sleep_before_callback(Handle h) {
    std::this_thread::sleep_for(50ms);
    auto tag = thread_tag();
    (void)co_await h.call("triple", 1).as<std::int64_t>();
    co_return tag;
  }
};

/// A server of Where ("where") with one network thread, run by a thread of the fixture's (so
/// that the test knows the network thread), and a client sharing a Listener.
struct WhereFixture {
  explicit WhereFixture(std::chrono::microseconds inline_limit) {
    types.class_<Where>("Where")
        .method("here", &Where::here)
        .method("after_callback", &Where::after_callback)
        .method("after_callback_blocking", &Where::after_callback, remoteable::blocking)
        .method("sleep_after_callback", &Where::sleep_after_callback)
        .method("sleep_before_callback", &Where::sleep_before_callback);
    remoteable::ServerOptions options;
    options.network_threads = 1;
    options.inline_limit = inline_limit;
    options.slow_call = std::chrono::seconds(60);
    server.emplace(remoteable::Endpoint{"127.0.0.1", 0}, types, options);
    server->export_object(std::make_shared<Where>(), "where");
    std::promise<std::int64_t> tag;
    network_thread = std::thread([&] {
      tag.set_value(thread_tag());
      server->run();
    });
    network = tag.get_future().get();
    auto client_types = std::make_shared<remoteable::Registry>();
    client_types->class_<Listener>("Listener").method("triple", &Listener::triple);
    remoteable::ClientOptions client_options;
    client_options.registry = client_types;
    client.emplace(test::connect(context, {"127.0.0.1", server->port()}, client_options));
    where = client->fetch("where");
    listener = client->share(std::make_shared<Listener>());
  }
  ~WhereFixture() {
    client->close();
    context.restart();
    context.poll();
    server->stop();
    network_thread.join();
  }
  std::int64_t run(asio::awaitable<std::int64_t> aw) { return test::await(context, std::move(aw), 60s); }
  std::int64_t call(const char* method) { return run(where->call(method, *listener).as<std::int64_t>()); }

  remoteable::Registry types;
  std::optional<remoteable::Server> server;
  std::thread network_thread;
  std::int64_t network = 0;  // network_thread's tag
  asio::io_context context;
  std::optional<remoteable::Client> client;
  std::optional<Handle> where, listener;
};
}  // namespace

TEST_CASE("a quick coroutine method resumes on the network thread after awaiting a callback, a blocking one on the pool") {
  // Nothing the machine's load does may make these calls look slow: they are measured quick.
  WhereFixture f(std::chrono::seconds(60));
  // A method's first call runs on the pool, where it is measured; the next ones inline.
  CHECK(f.run(f.where->call("here").as<std::int64_t>()) != f.network);
  REQUIRE(f.run(f.where->call("here").as<std::int64_t>()) == f.network);
  // Its first resumption runs on the pool, measured there; the next ones on the network thread.
  CHECK(f.call("after_callback") != f.network);
  CHECK(f.call("after_callback") == f.network);
  CHECK(f.call("after_callback") == f.network);
  CHECK(f.call("after_callback_blocking") != f.network);
  CHECK(f.call("after_callback_blocking") != f.network);
}

TEST_CASE("every segment of a coroutine method is measured: a long one, before or after a co_await, runs on the pool") {
  // 50 ms of sleep is ten times inline_limit: measured, a segment with it is slow however the
  // machine is loaded. Load can only make the quick ones look slow too, which sends them to the
  // pool as well: every check below is "not on the network thread".
  WhereFixture f(std::chrono::milliseconds(5));
  // What ran after the co_await (the sleep) is never on the network thread: first measured on
  // the pool, then kept there (slow: it needs 16 quick runs in a row to come back).
  for (int i = 0; i < 20; ++i) CHECK(f.call("sleep_after_callback") != f.network);
  // What ran before the first co_await likewise: the first segment is measured as a call is.
  for (int i = 0; i < 20; ++i) CHECK(f.call("sleep_before_callback") != f.network);
}
