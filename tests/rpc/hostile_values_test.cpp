// Values a client builds across many small calls: depth added one store at a time, sharing that
// doubles what a value expands to with each store, and the walks over them (str, get, ==,
// argument conversion). Each case checks that the server refuses what is over its limits with a
// value error, stays up, and answers another client right after.

#include <chrono>
#include <string>
#include <vector>

#include "counted.hpp"
#include "support.hpp"

using remoteable::ErrorKind;
using remoteable::Handle;
using remoteable::RemoteError;
using remoteable::Value;
using namespace std::chrono_literals;

namespace {

/// `inner` wrapped in `levels` lists: [[...[inner]...]].
Value wrapped(Value inner, int levels) {
  for (int i = 0; i < levels; ++i) inner = Value(Value::List{std::move(inner)});
  return inner;
}

/// A plain value as text, to compare what came back (lists and ints only).
std::string show(const Value& v) {
  if (v.holds<Value::List>()) {
    std::string out = "[";
    for (auto& e : std::get<Value::List>(v.storage())) out += show(e) + ",";
    return out + "]";
  }
  return std::to_string(v.as<std::int64_t>());
}

/// A walkthrough server with `options`, plus a function that wraps what it is given in a list.
struct Hostile {
  explicit Hostile(remoteable::ServerOptions options = {}) {
    example::register_node(types);
    server.emplace(remoteable::Endpoint{"127.0.0.1", 0}, types, options);
    example::export_walkthrough(server->server());
    server->server().export_function("wrap", [](remoteable::Object o) { return std::vector<remoteable::Object>{o}; });
    server->server().export_function("width", [](const std::vector<std::vector<std::int64_t>>& v) {
      return static_cast<std::int64_t>(v.size());
    });
  }
  remoteable::Endpoint endpoint() const { return {"127.0.0.1", server->port()}; }

  /// Another client, on its own connection, gets an answer: the server is alive and not stalled.
  void still_serves() {
    asio::io_context other;
    auto c = test::connect(other, endpoint());
    CHECK(test::await(other, (c.fetch("root").attr("value") + 41).as<std::int64_t>(), 10s) == 42);
    c.close();
    other.restart();
    other.poll();
  }

  remoteable::Registry types;
  std::optional<remoteable::ThreadedServer> server;
};

std::string message_of(asio::io_context& context, asio::awaitable<std::string> aw) {
  try {
    test::await(context, std::move(aw), 60s);
  } catch (const RemoteError& e) {
    CHECK(e.kind() == ErrorKind::value);
    return e.what();
  }
  FAIL("expected a value error");
  return {};
}

}  // namespace

TEST_CASE("depth built across stores is bounded by max_nesting, counted in value levels") {
  Hostile s;
  asio::io_context context;
  auto client = test::connect(context, s.endpoint());

  SECTION("one level per store: the 65th level is refused") {
    Handle h = client.store(Value(std::int64_t{7}));
    for (int level = 1; level <= 64; ++level) h = client.store(Value(Value::List{Value(h)}));
    // 64 lists deep: accepted, and every walk over it works.
    CHECK(test::await(context, h.str(), 30s) == std::string(64, '[') + "7" + std::string(64, ']'));
    CHECK(show(test::await(context, h.get(), 30s)) == show(wrapped(Value(std::int64_t{7}), 64)));
    auto too_deep = client.store(Value(Value::List{Value(h)}));
    auto what = message_of(context, too_deep.str());
    CHECK(what.find("max_nesting") != std::string::npos);
  }

  SECTION("29 levels per store, a thousand times (the crash: 29,000 deep, then str)") {
    Handle h = client.store(Value(std::int64_t{1}));
    int refused = 0;
    for (int i = 0; i < 1000; ++i) {
      h = client.store(wrapped(Value(h), 29));
      if (i % 100 == 99 || i < 3) {
        try {
          test::await(context, h.len().get(), 30s);
        } catch (const RemoteError& e) {
          CHECK(e.kind() == ErrorKind::value);
          ++refused;
        }
      }
    }
    CHECK(refused > 0);
    // The last handle is a broken store: evaluating it is the same value error, not a crash.
    message_of(context, h.str());
  }

  SECTION("through a method that wraps its argument, one level per call") {
    Handle h = client.store(Value(std::int64_t{3}));
    auto wrap = client.fetch("wrap");
    for (int level = 1; level <= 64; ++level) h = wrap(h);
    CHECK(test::await(context, h.str(), 30s) == std::string(64, '[') + "3" + std::string(64, ']'));
    auto what = message_of(context, wrap(h).str());
    CHECK(what.find("max_nesting") != std::string::npos);
  }
  client.close();
  s.still_serves();
}

TEST_CASE("max_nesting is one option, the same count on both sides") {
  remoteable::ServerOptions options;
  options.max_nesting = 8;
  Hostile s(options);
  asio::io_context context;

  SECTION("the server refuses a value one level over its limit; the connection stays") {
    auto client = test::connect(context, s.endpoint());
    CHECK(test::await(context, client.store(wrapped(Value(std::int64_t{1}), 8)).len().as<std::int64_t>()) == 1);
    auto what = message_of(context, client.store(wrapped(Value(std::int64_t{1}), 9)).str());
    CHECK(what.find("max_nesting") != std::string::npos);
    CHECK(client.connected());
    CHECK(test::await(context, client.fetch("five").as<std::int64_t>()) == 5);
    client.close();
  }
  SECTION("the client refuses to send one over its own limit, and to receive one") {
    remoteable::ClientOptions small;
    small.max_nesting = 4;
    auto client = test::connect(context, s.endpoint(), small);
    auto what = message_of(context, client.store(wrapped(Value(std::int64_t{1}), 5)).str());
    CHECK(what.find("max_nesting") != std::string::npos);
    // Built on the server from depth 4 pieces: 6 deep, which the server (8) allows and this
    // client (4) does not take back.
    auto h = client.store(wrapped(Value(std::int64_t{1}), 4));
    h = client.store(wrapped(Value(h), 2));
    CHECK(test::await(context, h.str()) == "[[[[[[1]]]]]]");
    try {
      test::await(context, h.get());
      FAIL("a value deeper than the client's max_nesting was accepted");
    } catch (const RemoteError& e) {
      CHECK(e.kind() == ErrorKind::value);
      CHECK(std::string(e.what()).find("max_nesting") != std::string::npos);
    }
    CHECK(client.connected());
    client.close();
  }
  context.restart();
  context.poll();
  s.still_serves();
}

TEST_CASE("max_nesting outside 1..1000 is refused at construction") {
  remoteable::Registry types;
  remoteable::ServerOptions zero;
  zero.max_nesting = 0;
  CHECK_THROWS_AS(remoteable::Server(remoteable::Endpoint{"127.0.0.1", 0}, types, zero), std::invalid_argument);
  remoteable::ServerOptions huge;
  huge.max_nesting = 100'000;
  CHECK_THROWS_AS(remoteable::Server(remoteable::Endpoint{"127.0.0.1", 0}, types, huge), std::invalid_argument);
}

TEST_CASE("a value shared across stores costs what was sent, and expanding it is bounded") {
  Hostile s;
  asio::io_context context;
  auto client = test::connect(context, s.endpoint());
  // g(i) = [g(i-1), g(i-1)]: 40 small stores, a value that would expand to 2^40 leaves. Each store
  // is checked (plainness, depth, size) in time proportional to what it sent: were any walk to
  // follow the sharing, this loop would not end before the test's timeout.
  auto build = [&](std::int64_t leaf) {
    std::vector<Handle> g{client.store(Value(leaf))};
    for (int i = 1; i <= 40; ++i) g.push_back(client.store(Value(Value::List{Value(g.back()), Value(g.back())})));
    return g;
  };
  auto g = build(1);
  auto h = build(1);
  CHECK(test::await(context, g[40].len().as<std::int64_t>()) == 2);

  // Small ones expand as they should.
  CHECK(test::await(context, g[2].str()) == "[[1, 1], [1, 1]]");
  CHECK(test::await(context, (g[10] == h[10]).as<bool>()));
  auto v = test::await(context, g[12].get());
  CHECK(show(v) == show(test::await(context, h[12].get())));
  CHECK(show(v).size() > 4096);

  // Large ones: get, str, == and converting the argument are refused, each before it costs
  // more than the budget (128 MiB, counted as what get() really allocates).
  for (int i : {23, 30, 40}) {
    INFO("g(" << i << ")");
    auto what = message_of(context, [](Handle x) -> asio::awaitable<std::string> {
      co_await x.get();
      co_return std::string();
    }(g[i]));
    CHECK(what.find("max_expansion") != std::string::npos);
    message_of(context, g[i].str());
    message_of(context, [](Handle a, Handle b) -> asio::awaitable<std::string> {
      co_await (a == b).as<bool>();
      co_return std::string();
    }(g[i], h[i]));
  }
  // A list holding g(40) twice as a vector<vector<int64>> argument: refused before matching.
  auto wide = client.store(Value(Value::List{Value(g[40]), Value(g[40])}));
  message_of(context, client.fetch("width")(wide).str());
  // The same identical value compares equal at once (identity), however large.
  CHECK(test::await(context, (g[40] == g[40]).as<bool>()));
  client.close();
  context.restart();
  context.poll();
  s.still_serves();
}

TEST_CASE("expanding a large shared value does not hold up other clients") {
  Hostile s;
  asio::io_context context;
  auto client = test::connect(context, s.endpoint());
  auto other = test::connect(context, s.endpoint());  // connected first: accepting is not what is measured
  std::vector<Handle> g{client.store(Value(std::int64_t{1}))};
  for (int i = 1; i <= 30; ++i) g.push_back(client.store(Value(Value::List{Value(g.back()), Value(g.back())})));
  CHECK(test::await(context, g[30].len().as<std::int64_t>()) == 2);

  // Two str() calls on g(30), each refused only once it has done up to ops::max_expansion of
  // work, one after another on the value's actor: a long time, whatever the machine.
  int done = 0;
  for (int i = 0; i < 2; ++i)
    asio::co_spawn(context, g[30].str(), [&](std::exception_ptr, std::string) { ++done; });
  CHECK(test::eventually(context, [&] { return s.server->server().calls_in_flight() >= 1; }));
  // Meanwhile the network thread serves the other client: its answer comes before any of them.
  // (Were the expansion inline on the network thread, it would come after the first at least.)
  CHECK(test::await(context, (other.fetch("root").attr("value") + 41).as<std::int64_t>(), 60s) == 42);
  CHECK(done == 0);
  CHECK(test::eventually(context, [&] { return done == 2; }, 300s));
  client.close();
  other.close();
  context.restart();
  context.poll();
}
