// Iteration over remote sequences (Handle::iterate, Handle::slice) and server-side generators
// (remoteable::Generator), over real loopback connections: every value checked, round trips
// counted in calls sent, a dropped generator seen stopping by a server-side counter, and the
// limits (batch clamp, batch bytes, open iterations per connection).

#include <atomic>
#include <deque>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "support.hpp"

using remoteable::ErrorKind;
using remoteable::Handle;
using remoteable::Value;
using namespace std::chrono_literals;

namespace {

struct Ship {
  std::string name;
  std::int64_t speed = 1;
  void faster() { speed *= 2; }
};

/// A registered container of registered objects: begin()/end() make it iterable.
struct Fleet {
  std::vector<std::shared_ptr<Ship>> ships;
  auto begin() { return ships.begin(); }
  auto end() { return ships.end(); }
  std::size_t size() const { return ships.size(); }
  void launch(const std::string& name) { ships.push_back(std::make_shared<Ship>(Ship{name, 1})); }
  void scrap() { ships.erase(ships.begin()); }
  std::shared_ptr<Ship> operator[](std::int64_t i) { return ships.at(static_cast<std::size_t>(i)); }
};

/// What the generators did, read by the test thread.
struct Counters {
  std::atomic<std::int64_t> produced{0};
  std::atomic<int> destroyed{0};
};

/// Counts its destruction: a local of the generator's frame.
struct FrameGuard {
  Counters* counters;
  ~FrameGuard() { counters->destroyed.fetch_add(1); }
};

struct Source {
  std::shared_ptr<Counters> counters = std::make_shared<Counters>();
  /// 0, 1, 2, ... without end, counting what it yields.
  remoteable::Generator<std::int64_t> numbers() {
    FrameGuard guard{counters.get()};
    for (std::int64_t i = 0;; ++i) {
      counters->produced.fetch_add(1);
      co_yield i;
    }
  }
  /// 1, 2, then a value error.
  remoteable::Generator<std::int64_t> failing() {
    co_yield 1;
    co_yield 2;
    throw std::invalid_argument("no third");
  }
  /// n ships, made as they are read.
  remoteable::Generator<Ship> ships(std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) {
      Ship ship{"s" + std::to_string(i), i};  // named: GCC 12 destroys a temporary in co_yield twice
      co_yield std::move(ship);
    }
  }
};

struct IterServer {
  explicit IterServer(remoteable::ServerOptions options = {}) {
    types.class_<Ship>("Ship").field("name", &Ship::name).field("speed", &Ship::speed).method("faster", &Ship::faster);
    types.class_<Fleet>("Fleet").method("launch", &Fleet::launch).method("scrap", &Fleet::scrap);
    types.class_<Source>("Source")
        .method("numbers", &Source::numbers)
        .method("failing", &Source::failing)
        .method("ships", &Source::ships);
    server.emplace(remoteable::Endpoint{"127.0.0.1", 0}, types, options);
    std::vector<std::int64_t> ints(1'000'000);
    for (std::size_t i = 0; i < ints.size(); ++i) ints[i] = static_cast<std::int64_t>(i);
    server->server().export_value(ints, "ints");
    server->server().export_value(std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, "ten");
    server->server().export_value(std::vector<std::int64_t>{}, "empty");
    server->server().export_value(std::map<std::string, std::int64_t>{{"b", 2}, {"a", 1}, {"c", 3}}, "map");
    server->server().export_value(std::string("hello world"), "text");
    server->server().export_value(std::int64_t{7}, "seven");
    std::vector<std::string> big(20, std::string(1u << 20, 'x'));
    server->server().export_value(big, "big");
    for (int i = 0; i < 5; ++i) fleet->launch("ship" + std::to_string(i));
    server->server().export_object(fleet, "fleet");
    server->server().export_object(source, "source");
  }
  remoteable::Registry types;
  std::shared_ptr<Fleet> fleet = std::make_shared<Fleet>();
  std::shared_ptr<Source> source = std::make_shared<Source>();
  std::optional<remoteable::ThreadedServer> server;
};

struct Connected : IterServer {
  explicit Connected(remoteable::ServerOptions server_options = {}, remoteable::ClientOptions options = {})
      : IterServer(std::move(server_options)), client(test::connect(context, {"127.0.0.1", server->port()}, options)) {}
  ~Connected() {
    client.close();
    context.restart();
    context.poll();
  }
  template <class T> T run(asio::awaitable<T> aw) { return test::await(context, std::move(aw)); }
  void run(asio::awaitable<void> aw) { test::await(context, std::move(aw)); }
  /// Runs the client's loop until `done()` holds, at most 20 s (a bounded wait for a condition).
  template <class F> bool wait_until(F done) {
    auto deadline = std::chrono::steady_clock::now() + 20s;
    context.restart();
    while (!done() && std::chrono::steady_clock::now() < deadline) context.run_one_for(10ms);
    return done();
  }
  asio::io_context context;
  remoteable::Client client;
};

/// Every element of an iteration, through next().
asio::awaitable<std::vector<Value>> all_of(remoteable::Iteration it) {
  std::vector<Value> out;
  while (auto v = co_await it.next()) out.push_back(std::move(*v));
  co_return out;
}

std::vector<std::int64_t> ints_of(const std::vector<Value>& values) {
  std::vector<std::int64_t> out;
  for (auto& v : values) out.push_back(v.as<std::int64_t>());
  return out;
}

}  // namespace

TEST_CASE("iterating 1,000,000 ints sees every value, in one call per batch") {
  Connected t;
  auto ints = t.client.fetch("ints");
  CHECK(t.run(ints.len().as<std::int64_t>()) == 1'000'000);  // the fetch is done
  auto before = t.client.wire_stats();
  const std::uint32_t batch = 4096;
  struct Seen {
    std::int64_t count = 0;
    std::int64_t wrong = -1;  // the first index whose value is not the index
  };
  auto seen = t.run([](Handle h, std::uint32_t batch) -> asio::awaitable<Seen> {
    Seen s;
    auto it = h.iterate({.batch = batch});
    while (auto v = co_await it.next()) {
      if (s.wrong < 0 && v->as<std::int64_t>() != s.count) s.wrong = s.count;
      ++s.count;
    }
    co_return s;
  }(ints, batch));
  CHECK(seen.count == 1'000'000);
  CHECK(seen.wrong == -1);
  // One call per batch: iterate with the first, then a Cursor.next for each of the others.
  auto calls = t.client.wire_stats().calls_sent - before.calls_sent;
  const std::uint64_t batches = (1'000'000 + batch - 1) / batch;
  CHECK(calls >= batches);
  CHECK(calls <= batches + 1);
}

TEST_CASE("next_batch gives whole batches, then an empty one at the end") {
  Connected t;
  auto batches = t.run([](Handle h) -> asio::awaitable<std::vector<std::size_t>> {
    std::vector<std::size_t> sizes;
    auto it = h.iterate({.batch = 4});
    for (;;) {
      auto b = co_await it.next_batch();
      sizes.push_back(b.size());
      if (b.empty()) break;
    }
    co_return sizes;
  }(t.client.fetch("ten")));
  CHECK(batches == std::vector<std::size_t>{4, 4, 2, 0});
}

TEST_CASE("lists, maps and empty lists iterate; other objects refuse with a type error") {
  Connected t;
  CHECK(ints_of(t.run(all_of(t.client.fetch("ten").iterate({.batch = 3})))) == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(t.run(all_of(t.client.fetch("empty").iterate())).empty());
  auto keys = t.run(all_of(t.client.fetch("map").iterate()));
  REQUIRE(keys.size() == 3);
  CHECK(keys[0].as<std::string>() == "a");
  CHECK(keys[2].as<std::string>() == "c");
  CHECK(test::error_of(t.context, all_of(t.client.fetch("seven").iterate())) == ErrorKind::type);
  CHECK(test::error_of(t.context, all_of(Handle{}.iterate())) == ErrorKind::disconnected);
}

TEST_CASE("a registered container's elements come as handles that work") {
  Connected t;
  auto fleet = t.client.fetch("fleet");
  auto ships = t.run(all_of(fleet.iterate({.batch = 2})));
  REQUIRE(ships.size() == 5);
  for (auto& s : ships) {
    auto ship = s.as<Handle>();
    t.run(ship.call("faster").get());
  }
  CHECK(t.run(ships[3].as<Handle>().attr("name").as<std::string>()) == "ship3");
  // The handles are the fleet's own ships, not copies: the fleet sees what was done through them.
  for (std::int64_t i = 0; i < 5; ++i) CHECK(t.run(fleet.item(i).attr("speed").as<std::int64_t>()) == 2);
}

TEST_CASE("an iteration reads the snapshot taken when it started") {
  Connected t;
  auto fleet = t.client.fetch("fleet");
  auto names = t.run([](Handle fleet) -> asio::awaitable<std::vector<std::string>> {
    std::vector<std::string> out;
    auto it = fleet.iterate({.batch = 2});
    auto first = co_await it.next_batch();  // the snapshot is taken with the first batch
    for (auto& s : first) out.push_back(co_await s.as<Handle>().attr("name").as<std::string>());
    co_await fleet.call("launch", "late").get();
    co_await fleet.call("scrap").get();
    co_await fleet.call("scrap").get();
    while (auto s = co_await it.next()) out.push_back(co_await s->as<Handle>().attr("name").as<std::string>());
    co_return out;
  }(fleet));
  CHECK(names == std::vector<std::string>{"ship0", "ship1", "ship2", "ship3", "ship4"});
  // A new iteration sees the fleet as it is now.
  CHECK(t.run(all_of(fleet.iterate())).size() == 4);
}

TEST_CASE("a generator runs only as far as it is read, and stops when the iteration is dropped") {
  Connected t;
  auto& counters = *t.source->counters;
  const std::uint32_t batch = 5;
  auto first = t.run([](Handle source, std::uint32_t batch) -> asio::awaitable<std::vector<std::int64_t>> {
    std::vector<std::int64_t> out;
    auto it = source.call("numbers").iterate({.batch = batch});
    while (out.size() < 10) {
      auto v = co_await it.next();
      if (!v) break;
      out.push_back(v->as<std::int64_t>());
    }
    co_return out;  // `it` goes here: the iteration is dropped after 10 elements
  }(t.client.fetch("source"), batch));
  CHECK(first == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  // The frame is destroyed on the server once the cursor is released.
  CHECK(t.wait_until([&] { return counters.destroyed.load() == 1; }));
  // It produced what was read and at most one batch ahead, and nothing after.
  auto produced = counters.produced.load();
  CHECK(produced >= 10);
  CHECK(produced <= 10 + static_cast<std::int64_t>(batch));
  t.run(t.client.fetch("source").attr("numbers").str());  // a round trip: anything still running has run
  CHECK(counters.produced.load() == produced);
}

TEST_CASE("a generator that throws ends the iteration with its error's kind") {
  Connected t;
  std::vector<std::int64_t> got;
  auto kind = test::error_of(t.context, [](Handle source, std::vector<std::int64_t>* got) -> asio::awaitable<bool> {
    auto it = source.call("failing").iterate({.batch = 1});
    while (auto v = co_await it.next()) got->push_back(v->as<std::int64_t>());
    co_return true;
  }(t.client.fetch("source"), &got));
  CHECK(kind == ErrorKind::value);
  CHECK(got == std::vector<std::int64_t>{1, 2});
}

TEST_CASE("a generator of registered objects gives handles; a generator is read once") {
  Connected t;
  auto gen = t.client.fetch("source").call("ships", 3);
  auto ships = t.run(all_of(gen.iterate()));
  REQUIRE(ships.size() == 3);
  CHECK(t.run(ships[2].as<Handle>().attr("speed").as<std::int64_t>()) == 2);
  CHECK(test::error_of(t.context, all_of(gen.iterate())) == ErrorKind::value);
  // describe() names what a generator yields.
  auto d = t.run(t.client.fetch("source").describe());
  bool found = false;
  for (auto& m : d.members)
    if (m.name == "ships") found = m.signatures == std::vector<std::string>{"(int64) -> generator of Ship"};
  CHECK(found);
}

TEST_CASE("slices copy a range, as Python's x[a:b]") {
  Connected t;
  auto ten = t.client.fetch("ten");
  CHECK(ints_of(t.run(ten.slice(2, 5).as<std::vector<Value>>())) == std::vector<std::int64_t>{2, 3, 4});
  CHECK(ints_of(t.run(ten.slice(-3, 100).as<std::vector<Value>>())) == std::vector<std::int64_t>{7, 8, 9});
  CHECK(t.run(ten.slice(5, 2).as<std::vector<Value>>()).empty());
  CHECK(t.run(ten.slice(1, 3).len().as<std::int64_t>()) == 2);  // a handle: pipelined like item
  CHECK(t.run(t.client.fetch("text").slice(0, 5).as<std::string>()) == "hello");
  auto ships = t.run(t.client.fetch("fleet").slice(1, 3).get());
  REQUIRE(ships.as<std::vector<Value>>().size() == 2);
  CHECK(t.run(ships.as<std::vector<Value>>()[0].as<Handle>().attr("name").as<std::string>()) == "ship1");
  auto numbers = t.client.fetch("source").call("numbers");
  CHECK(ints_of(t.run(numbers.slice(2, 5).as<std::vector<Value>>())) == std::vector<std::int64_t>{2, 3, 4});
  CHECK(test::error_of(t.context, t.client.fetch("source").call("numbers").slice(-2, -1).get()) == ErrorKind::value);
  CHECK(test::error_of(t.context, t.client.fetch("seven").slice(0, 1).get()) == ErrorKind::type);
}

TEST_CASE("limits: a huge batch is clamped to max_iterate_batch") {
  remoteable::ServerOptions options;
  options.max_iterate_batch = 100;
  Connected t(options);
  auto sizes = t.run([](Handle h) -> asio::awaitable<std::vector<std::size_t>> {
    auto it = h.iterate({.batch = 1'000'000});
    std::vector<std::size_t> out;
    out.push_back((co_await it.next_batch()).size());
    out.push_back((co_await it.next_batch()).size());
    co_return out;
  }(t.client.fetch("ints")));
  CHECK(sizes == std::vector<std::size_t>{100, 100});
}

TEST_CASE("limits: a batch ends early once its elements reach 8 MiB") {
  Connected t;
  auto sizes = t.run([](Handle h) -> asio::awaitable<std::vector<std::size_t>> {
    auto it = h.iterate({.batch = 1000});
    std::vector<std::size_t> out;
    for (;;) {
      auto b = co_await it.next_batch();
      if (b.empty()) break;
      for (auto& v : b)
        if (v.as<std::string>().size() != (1u << 20)) throw std::runtime_error("a wrong element");
      out.push_back(b.size());
    }
    co_return out;
  }(t.client.fetch("big")));
  std::size_t total = 0;
  for (auto n : sizes) {
    CHECK(n <= 8);
    total += n;
  }
  CHECK(total == 20);
}

TEST_CASE("limits: open iterations per connection are bounded by max_cursors_per_connection") {
  remoteable::ServerOptions options;
  options.max_cursors_per_connection = 2;
  Connected t(options);
  auto ints = t.client.fetch("ints");
  auto a = ints.iterate({.batch = 10});
  auto b = ints.iterate({.batch = 10});
  CHECK(t.run(a.next_batch()).size() == 10);
  CHECK(t.run(b.next_batch()).size() == 10);
  auto c = ints.iterate({.batch = 10});
  CHECK(test::error_of(t.context, c.next_batch()) == ErrorKind::overloaded);
  a = remoteable::Iteration{};  // dropped: its cursor is released
  auto e = t.client.fetch("ten").iterate({.batch = 100});
  // The release travels ahead of the new iterate on the same connection.
  CHECK(t.run(all_of(std::move(e))).size() == 10);
}

TEST_CASE("limits: the snapshots a connection holds are bounded by max_snapshot_bytes_per_connection") {
  // The fleet's snapshot: 5 ships, each charged sizeof(Object) + sizeof(Plain) (handles expand to nothing).
  const std::size_t one = 5 * (sizeof(remoteable::Object) + sizeof(remoteable::detail::Plain));
  remoteable::ServerOptions options;
  options.max_snapshot_bytes_per_connection = one + one / 2;  // one snapshot fits, two do not
  Connected t(options);
  auto fleet = t.client.fetch("fleet");
  auto a = fleet.iterate({.batch = 2});
  CHECK(t.run(a.next_batch()).size() == 2);  // open: its snapshot is held
  auto b = fleet.iterate({.batch = 2});
  CHECK(test::message_of(t.context, b.next_batch()).find("max_snapshot_bytes_per_connection") != std::string::npos);
  // A list is read in place: it holds no snapshot, and iterates meanwhile.
  CHECK(t.run(all_of(t.client.fetch("ten").iterate())).size() == 10);
  // Read to the end, the first one holds nothing more.
  CHECK(t.run(all_of(std::move(a))).size() == 3);
  CHECK(t.run(all_of(fleet.iterate())).size() == 5);
}

TEST_CASE("the next batch is requested before the caller asks for it") {
  Connected t;
  auto ten = t.client.fetch("ten");
  CHECK(t.run(ten.len().as<std::int64_t>()) == 10);  // the fetch is done
  auto it = ten.iterate({.batch = 3});
  auto before = t.client.wire_stats();
  CHECK(t.run(it.next_batch()).size() == 3);  // Handle.iterate, with the first batch
  // With no further next_batch(), Cursor.next for the second batch goes out by itself.
  CHECK(t.wait_until([&] { return t.client.wire_stats().calls_sent - before.calls_sent == 2; }));
  // And only that one: the buffer ahead is one batch.
  CHECK(t.wait_until([&] { return t.client.wire_stats().returns_received - before.returns_received == 2; }));
  CHECK(t.client.wire_stats().calls_sent - before.calls_sent == 2);
  CHECK(ints_of(t.run(all_of(std::move(it)))) == std::vector<std::int64_t>{3, 4, 5, 6, 7, 8, 9});
}
