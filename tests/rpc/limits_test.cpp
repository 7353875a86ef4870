// ServerOptions limits, graceful stop, cancellation and deadlines, connect retry and reconnect.

#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>

#include <future>

#include "ring_log.hpp"
#include "support.hpp"
#include "test_types.hpp"

using remoteable::ErrorKind;
using namespace std::chrono_literals;

namespace {

/// A server with chosen options, the walkthrough exports, a gate and a big-answer maker.
struct LimitedServer {
  explicit LimitedServer(remoteable::ServerOptions options, std::uint16_t port = 0) {
    example::register_node(types);
    test::register_test_types(types);
    types.class_<Big>("Big").method("make", &Big::make);
    types.class_<Sleeper>("Sleeper").method("nap", &Sleeper::nap).field("cancelled", &Sleeper::cancelled);
    server.emplace(remoteable::Endpoint{"127.0.0.1", port}, types, std::move(options));
    example::export_walkthrough(server->server());
    server->server().export_object(gate, "gate");
    server->server().export_object(std::make_shared<Big>(), "big");
    server->server().export_object(sleeper, "sleeper");
  }
  remoteable::Endpoint endpoint() const { return {"127.0.0.1", server->port()}; }

  struct Big {
    std::string make(std::int64_t bytes) { return std::string(static_cast<std::size_t>(bytes), 'x'); }
  };
  /// A coroutine method that waits long, and counts being cancelled.
  struct Sleeper {
    std::int64_t cancelled = 0;
    asio::awaitable<std::int64_t> nap(std::int64_t ms) {
      asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
      try {
        co_await timer.async_wait(asio::use_awaitable);
      } catch (const std::system_error&) {
        ++cancelled;
        throw;
      }
      co_return ms;
    }
  };

  remoteable::Registry types;
  std::shared_ptr<test::Gate> gate = std::make_shared<test::Gate>();
  std::shared_ptr<Sleeper> sleeper = std::make_shared<Sleeper>();
  std::optional<remoteable::ThreadedServer> server;
};

/// Runs `context` until `pred()` or the limit (bounded; each step waits for an event).
template <class Pred>
bool run_until(asio::io_context& context, Pred pred, std::chrono::milliseconds limit = 20s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  context.restart();
  while (!pred() && std::chrono::steady_clock::now() < deadline) context.run_one_for(10ms);
  return pred();
}

/// Connects to a port on 127.0.0.1. (Parameters, not captures, and no temporaries in the
/// co_await operand: GCC 12 destroys those twice. co_spawn needs a default-constructible result,
/// hence the optional.)
asio::awaitable<std::optional<remoteable::Client>> connect_to(asio::any_io_executor executor, std::uint16_t port,
                                                              remoteable::ClientOptions options) {
  remoteable::Endpoint endpoint{"127.0.0.1", port};
  auto connecting = remoteable::Client::connect(executor, endpoint, std::move(options));
  co_return co_await std::move(connecting);
}

std::int64_t chain_value(asio::io_context& context, const remoteable::Client& client) {
  return test::await(context, (client.fetch("root").call("child", 0).attr("value") + 4).as<std::int64_t>());
}

}  // namespace

TEST_CASE("connections past max_connections are closed; the others are served") {
  remoteable::ServerOptions options;
  options.max_connections = 1;
  LimitedServer s(options);
  asio::io_context context;
  auto first = test::connect(context, s.endpoint());
  CHECK(chain_value(context, first) == 6);
  // The server closes the second connection at once: Client::connect, whose protocol check
  // needs an answer, reports it.
  try {
    test::connect(context, s.endpoint());
    FAIL("a connection past max_connections connected");
  } catch (const remoteable::RemoteError& e) {
    CHECK(e.kind() == ErrorKind::disconnected);
    // The server said why before closing (an Abort message on the refused socket).
    CHECK(e.message() == "connecting to 127.0.0.1:" + std::to_string(s.server->port()) +
                             ": the server refused the connection: 1 connections open (the server's max_connections)");
  }
  CHECK(chain_value(context, first) == 6);
}

TEST_CASE("calls past max_calls_per_connection fail with overloaded; another client is served meanwhile") {
  remoteable::ServerOptions options;
  options.max_calls_per_connection = 2;
  LimitedServer s(options);
  asio::io_context context;
  auto client = test::connect(context, s.endpoint());
  auto gate = client.fetch("gate");
  std::vector<std::optional<remoteable::Value>> results(2);
  for (int i = 0; i < 2; ++i)
    asio::co_spawn(context, [](remoteable::Handle h, std::optional<remoteable::Value>* out) -> asio::awaitable<void> {
      *out = co_await h.get();
    }(gate.call("block"), &results[static_cast<std::size_t>(i)]), asio::detached);
  REQUIRE(run_until(context, [&] { return s.gate->wait_entered(1, 0ms); }));
  CHECK(test::error_of(context, client.fetch("five").get()) == ErrorKind::overloaded);
  // The limit is the first connection's: a second one is served while the first is at it.
  auto other = test::connect(context, s.endpoint());
  CHECK(test::await(context, other.fetch("five").as<std::int64_t>()) == 5);
  CHECK(chain_value(context, other) == 6);
  CHECK(test::error_of(context, client.fetch("five").get()) == ErrorKind::overloaded);  // still at it
  s.gate->release();
  REQUIRE(run_until(context, [&] { return results[0] && results[1]; }));
  CHECK(test::await(context, client.fetch("five").as<std::int64_t>()) == 5);  // back under the limit
  CHECK(chain_value(context, other) == 6);
}

TEST_CASE("handles past max_handles_per_connection fail with overloaded until some are dropped; another client is served meanwhile") {
  remoteable::ServerOptions options;
  options.max_handles_per_connection = 8;
  LimitedServer s(options);
  asio::io_context context;
  auto client = test::connect(context, s.endpoint());
  std::vector<remoteable::Handle> held;
  std::optional<ErrorKind> refused;
  for (int i = 0; i < 20 && !refused; ++i) {
    held.push_back(client.fetch("five"));
    try {
      test::await(context, held.back().get());
    } catch (const remoteable::RemoteError& e) {
      refused = e.kind();
    }
  }
  CHECK(refused == ErrorKind::overloaded);
  // While the first client holds its limit, a second makes and holds handles of its own (three,
  // and four more for the chain: under its own limit of eight).
  auto other = test::connect(context, s.endpoint());
  std::vector<remoteable::Handle> other_held;
  for (int i = 0; i < 3; ++i) {
    other_held.push_back(other.fetch("five"));
    CHECK(test::await(context, other_held.back().as<std::int64_t>()) == 5);
  }
  CHECK(chain_value(context, other) == 6);
  held.clear();
  // Releases travel to the server; once they arrive, new handles are allowed again.
  bool ok = false;
  for (int i = 0; i < 200 && !ok; ++i) {
    try {
      ok = test::await(context, client.fetch("five").as<std::int64_t>()) == 5;
    } catch (const remoteable::RemoteError& e) {
      REQUIRE(e.kind() == ErrorKind::overloaded);
    }
  }
  CHECK(ok);
  CHECK(test::await(context, other_held.front().as<std::int64_t>()) == 5);
}

TEST_CASE("an idle connection is closed after idle_timeout; a busy one stays and is served") {
  remoteable::ServerOptions options;
  options.idle_timeout = 200ms;
  options.sweep_interval = 20ms;
  LimitedServer s(options);
  asio::io_context context;
  auto client = test::connect(context, s.endpoint());
  CHECK(chain_value(context, client) == 6);
  // A second client with a call in flight: never idle, however long the first takes to be.
  auto other = test::connect(context, s.endpoint());
  std::optional<std::int64_t> blocked;
  asio::co_spawn(context, [](remoteable::Handle h, std::optional<std::int64_t>* out) -> asio::awaitable<void> {
    *out = co_await h.as<std::int64_t>();
  }(other.fetch("gate").call("block"), &blocked), asio::detached);
  REQUIRE(run_until(context, [&] { return s.gate->wait_entered(1, 0ms); }));
  CHECK(run_until(context, [&] { return !client.connected(); }));
  CHECK(run_until(context, [&] { return s.server->server().connections() == 1; }));
  CHECK(other.connected());
  CHECK(chain_value(context, other) == 6);
  s.gate->release();
  REQUIRE(run_until(context, [&] { return blocked.has_value(); }));
  CHECK(*blocked == 1);
}

TEST_CASE("a connection closed for idleness tells the client why") {
  remoteable::ServerOptions options;
  options.idle_timeout = 200ms;
  options.sweep_interval = 20ms;
  LimitedServer s(options);
  asio::io_context context;
  auto client = test::connect(context, s.endpoint());
  CHECK(chain_value(context, client) == 6);
  REQUIRE(run_until(context, [&] { return !client.connected(); }));
  // Whatever is asked of the closed connection fails with the server's reason, not only
  // "closed": the server sent it in an Abort before shutting the connection down.
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      chain_value(context, client);
      FAIL("a call on a closed connection succeeded");
    } catch (const remoteable::RemoteError& e) {
      CHECK(e.kind() == ErrorKind::disconnected);
      CHECK(e.message() == "the server closed the connection: idle for more than 200 ms (the server's idle_timeout)");
    }
    // Again once the client has run all it had queued, letting go of the connection too.
    context.restart();
    while (context.poll() > 0) {
    }
  }
}

TEST_CASE("a client that does not read its answers is disconnected; others are unaffected") {
  remoteable::ServerOptions options;
  options.max_outbound_bytes = 2 * 1024 * 1024;
  options.sweep_interval = 20ms;
  LimitedServer s(options);
  asio::io_context reader_context;
  auto reader = test::connect(reader_context, s.endpoint());
  asio::io_context stalled_context;
  auto stalled = test::connect(stalled_context, s.endpoint());
  // Both counted by the server (a connect completes before the server has set the connection up).
  REQUIRE(run_until(reader_context, [&] { return s.server->server().connections() == 2; }));
  // Ask for 64 answers of 1 MiB each, then stop running the client: it never reads them.
  std::vector<remoteable::Handle> answers;
  for (int i = 0; i < 64; ++i) answers.push_back(stalled.fetch("big").call("make", 1024 * 1024));
  for (auto& a : answers) asio::co_spawn(stalled_context, [](remoteable::Handle h) -> asio::awaitable<void> {
      try { co_await h.get(); } catch (const remoteable::RemoteError&) {}
    }(a), asio::detached);
  // 64 fetches, 64 calls and 64 evaluations on the wire; then the client stops reading.
  REQUIRE(run_until(stalled_context, [&] { return stalled.wire_stats().calls_sent >= 192; }));
  stalled_context.restart();
  stalled_context.poll();  // what is ready to run: the socket write that carries those calls
  // The server queues answers until the cap, then drops the connection.
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (s.server->server().connections() > 1 && std::chrono::steady_clock::now() < deadline)
    CHECK(chain_value(reader_context, reader) == 6);
  CHECK(s.server->server().connections() == 1);
  CHECK(chain_value(reader_context, reader) == 6);
  stalled.close();
}

TEST_CASE("stop lets in-flight calls finish within the grace period") {
  test::RingLog log("limits.grace");
  remoteable::ServerOptions options;
  options.stop_grace = 20s;
  options.logger = log.logger;
  LimitedServer s(options);
  asio::io_context context;
  auto client = test::connect(context, s.endpoint());
  std::optional<std::int64_t> result;
  asio::co_spawn(context, [](remoteable::Handle h, std::optional<std::int64_t>* out) -> asio::awaitable<void> {
    *out = co_await h.as<std::int64_t>();
  }(client.fetch("gate").call("block"), &result), asio::detached);
  REQUIRE(run_until(context, [&] { return s.gate->wait_entered(1, 0ms); }));
  // stop() returns only once the blocked call has finished, so it runs on another thread; the
  // gate opens once the stop has begun waiting for the call.
  auto stopping = std::async(std::launch::async, [&] { s.server->server().stop(); });
  struct ReleaseAtEnd {  // before the future's destructor waits for stop(), whatever fails
    std::shared_ptr<test::Gate> gate;
    ~ReleaseAtEnd() { gate->release(); }
  } release_at_end{s.gate};
  REQUIRE(run_until(context, [&] { return log.has("info", "stopping: waiting up to"); }));
  s.gate->release();
  REQUIRE(run_until(context, [&] { return result.has_value(); }));
  CHECK(*result == 1);
  CHECK(run_until(context, [&] { return !client.connected(); }));
  REQUIRE(stopping.wait_for(20s) == std::future_status::ready);
  s.server->stop();  // joins
}

TEST_CASE("with_timeout ends an evaluation with a timeout error, and a fast one with its value") {
  LimitedServer s({});
  asio::io_context context;
  auto client = test::connect(context, s.endpoint());
  auto sleeper = client.fetch("sleeper");
  CHECK(test::error_of(context, remoteable::with_timeout(sleeper.call("nap", 2'000).get(), 50ms)) == ErrorKind::timeout);
  CHECK(test::await(context, remoteable::with_timeout(sleeper.call("nap", 1).as<std::int64_t>(), 20s)) == 1);
  // An error is reported as itself, not as a timeout.
  CHECK(test::error_of(context, remoteable::with_timeout(client.fetch("nope").get(), 20s)) == ErrorKind::name);
}

TEST_CASE("dropping every handle to a running coroutine method stops it at its next co_await") {
  LimitedServer s({});
  asio::io_context context;
  auto client = test::connect(context, s.endpoint());
  auto sleeper = client.fetch("sleeper");
  auto nap = sleeper.call("nap", 60'000);
  CHECK(chain_value(context, client) == 6);  // the nap call is on the server now
  nap = {};
  bool stopped = false;
  for (int i = 0; i < 400 && !stopped; ++i)
    stopped = test::await(context, sleeper.attr("cancelled").as<std::int64_t>()) == 1;
  CHECK(stopped);
}

TEST_CASE("an evaluation that times out cancels the call it rode in: the coroutine method stops") {
  LimitedServer s({});
  asio::io_context context;
  auto client = test::connect(context, s.endpoint());
  auto sleeper = client.fetch("sleeper");
  CHECK(test::await(context, sleeper.attr("cancelled").as<std::int64_t>()) == 0);
  // The evaluation rides in the nap call itself; when it times out and the temporary handle
  // goes, nothing refers to the call any more, and its Finish stops the method.
  CHECK(test::error_of(context, remoteable::with_timeout(sleeper.call("nap", 60'000).as<std::int64_t>(), 100ms)) ==
        ErrorKind::timeout);
  bool stopped = false;
  for (int i = 0; i < 400 && !stopped; ++i)
    stopped = test::await(context, sleeper.attr("cancelled").as<std::int64_t>()) == 1;
  CHECK(stopped);
}

TEST_CASE("stopping the server stops a running coroutine method, even one an evaluation is pipelined on") {
  remoteable::ServerOptions options;
  options.stop_grace = 100ms;
  LimitedServer s(options);
  asio::io_context context;
  auto client = test::connect(context, s.endpoint());
  auto nap = client.fetch("sleeper").call("nap", 120'000);
  std::optional<ErrorKind> ended;
  asio::co_spawn(context, [](remoteable::Handle h, std::optional<ErrorKind>* out) -> asio::awaitable<void> {
    try {
      co_await (h + 1).get();
    } catch (const remoteable::RemoteError& e) {
      *out = e.kind();
    }
  }(nap, &ended), asio::detached);
  CHECK(chain_value(context, client) == 6);  // the nap call is running on the server now
  // Stop and join on another thread, bounded: a coroutine left running would hold the join.
  auto stopped = std::async(std::launch::async, [&] { s.server->stop(); });
  REQUIRE(stopped.wait_for(20s) == std::future_status::ready);
  // stop() returns only once no user code of the server runs: the cancelled method has
  // finished, and the future's readiness orders its write before this read.
  CHECK(s.sleeper->cancelled == 1);
  REQUIRE(run_until(context, [&] { return ended.has_value(); }));
  CHECK(*ended == ErrorKind::disconnected);
}

TEST_CASE("a cancelled call that has not started on the server never runs") {
  LimitedServer s({});
  auto node = std::make_shared<example::Node>(10);
  s.server->server().export_object(node, "gated_node", remoteable::same_actor_as{"gate"});
  asio::io_context context;
  auto client = test::connect(context, s.endpoint());
  std::optional<std::int64_t> first;
  asio::co_spawn(context, [](remoteable::Handle h, std::optional<std::int64_t>* out) -> asio::awaitable<void> {
    *out = co_await h.as<std::int64_t>();
  }(client.fetch("gate").call("block"), &first), asio::detached);
  REQUIRE(run_until(context, [&] { return s.gate->wait_entered(1, 0ms); }));
  // Queued behind the blocked call on the same actor, then abandoned.
  auto gated = client.fetch("gated_node");
  CHECK(test::error_of(context, remoteable::with_timeout(gated.set("value", 99), 50ms)) == ErrorKind::timeout);
  // A round trip on the same connection: the server has read the cancellation before it answers.
  CHECK(chain_value(context, client) == 6);
  s.gate->release();
  REQUIRE(run_until(context, [&] { return first.has_value(); }));
  CHECK(test::await(context, gated.attr("value").as<std::int64_t>()) == 10);
}

TEST_CASE("connect gives up after connect_attempts attempts, doubling its pause, with a disconnected error") {
  // A port bound but not listening: every attempt is refused at once, and no one else can take
  // the port meanwhile.
  asio::io_context context;
  asio::ip::tcp::acceptor refusing(context);
  refusing.open(asio::ip::tcp::v4());
  refusing.bind({asio::ip::make_address("127.0.0.1"), 0});
  test::RingLog log("client");
  remoteable::ClientOptions options;
  options.logger = log.logger;
  options.connect_attempts = 4;
  options.retry_backoff = 1ms;
  options.retry_backoff_max = 3ms;
  CHECK(test::error_of(context, connect_to(context.get_executor(), refusing.local_endpoint().port(), options)) ==
        ErrorKind::disconnected);
  CHECK(log.count("info", "connection attempt") == 4);
  // The pause doubles from retry_backoff up to retry_backoff_max; the last attempt has none.
  CHECK(log.has("info", "attempt 1 of 4"));
  CHECK(log.has("info", "failed: cannot connect to 127.0.0.1:"));
  CHECK(log.count("info", "retrying in 1 ms") == 1);
  CHECK(log.count("info", "retrying in 2 ms") == 1);
  CHECK(log.count("info", "retrying in 3 ms") == 1);
  CHECK(log.count("info", "retrying") == 3);
  CHECK(log.has("info", "attempt 4 of 4"));
}

TEST_CASE("connect retries until a server starts listening, and the connection then works") {
  asio::io_context context;
  auto refusing = std::make_optional<asio::ip::tcp::acceptor>(context);
  refusing->open(asio::ip::tcp::v4());
  refusing->bind({asio::ip::make_address("127.0.0.1"), 0});
  const auto port = refusing->local_endpoint().port();
  test::RingLog log("client");
  remoteable::ClientOptions options;
  options.logger = log.logger;
  options.connect_attempts = 1000;  // bounded; the wait below is bounded too
  options.retry_backoff = 1ms;
  options.retry_backoff_max = 10ms;
  std::optional<remoteable::Client> client;
  std::exception_ptr failure;
  asio::co_spawn(context, connect_to(context.get_executor(), port, options),
                 [&](std::exception_ptr e, std::optional<remoteable::Client> c) {
                   failure = e;
                   client = std::move(c);
                 });
  // The first attempt fails; only then does the server start, on that port.
  REQUIRE(run_until(context, [&] { return log.has("info", "connection attempt 1 of 1000"); }));
  CHECK_FALSE(client.has_value());
  refusing.reset();
  LimitedServer s({}, port);
  REQUIRE(run_until(context, [&] { return client.has_value() || failure; }));
  REQUIRE_FALSE(failure);
  CHECK(log.count("info", "connection attempt") >= 1);
  CHECK(log.has("info", "connected to 127.0.0.1:" + std::to_string(port)));
  CHECK(chain_value(context, *client) == 6);
}

TEST_CASE("connect_timeout ends an attempt that the server does not complete with a timeout error") {
  // A listener whose accept queue is full: the kernel drops further SYNs, so a connect never
  // completes (Linux; a backlog of 0 queues one connection).
  asio::io_context context;
  asio::ip::tcp::acceptor full(context);
  full.open(asio::ip::tcp::v4());
  full.bind({asio::ip::make_address("127.0.0.1"), 0});
  full.listen(0);
  asio::ip::tcp::socket queued(context);
  queued.connect(full.local_endpoint());  // completes: the queue had room; never accepted
  test::RingLog log("client");
  remoteable::ClientOptions options;
  options.logger = log.logger;
  options.connect_timeout = 100ms;
  options.connect_attempts = 2;  // the timeout is per attempt
  options.retry_backoff = 1ms;
  CHECK(test::error_of(context, connect_to(context.get_executor(), full.local_endpoint().port(), options)) ==
        ErrorKind::timeout);
  CHECK(log.count("info", "took longer than 100 ms") == 2);
}

TEST_CASE("a lost connection can be re-established, and fetched names work again") {
  remoteable::Registry types;
  example::register_node(types);
  std::optional<remoteable::ThreadedServer> server;
  server.emplace(remoteable::Endpoint{"127.0.0.1", 0}, types);
  example::export_walkthrough(server->server());
  auto port = server->port();
  asio::io_context context;
  auto client = test::connect(context, {"127.0.0.1", port});
  CHECK(chain_value(context, client) == 6);

  server.reset();  // the server goes away
  CHECK(run_until(context, [&] { return !client.connected(); }));
  CHECK(test::error_of(context, client.fetch("root").get()) == ErrorKind::disconnected);

  server.emplace(remoteable::Endpoint{"127.0.0.1", port}, types);  // back on the same port
  example::export_walkthrough(server->server());
  test::await(context, client.reconnect());
  CHECK(client.connected());
  CHECK(chain_value(context, client) == 6);
}
