// ServerOptions::metrics: /metrics over real HTTP, read by Prometheus' own parser
// (python3-prometheus-client), with the counts of the calls a client made.

#include <dirent.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "scrape.hpp"
#include "support.hpp"

using remoteable::ErrorKind;
using namespace std::chrono_literals;

namespace {

std::int64_t add(std::int64_t a, std::int64_t b) { return a + b; }
std::int64_t boom(std::int64_t) { throw std::domain_error("boom"); }

/// A gate that `hold` waits at (at most 20 s, so that a failing test cannot hang).
struct Gate {
  std::mutex mutex;
  std::condition_variable changed;
  bool open = false;
  int waiting = 0;
};
Gate gate;
std::int64_t hold(std::int64_t x) {
  std::unique_lock lock(gate.mutex);
  ++gate.waiting;
  gate.changed.notify_all();
  gate.changed.wait_for(lock, 20s, [] { return gate.open; });
  return x;
}

/// A walkthrough server with metrics on 127.0.0.1 and a free port, and the functions above.
struct Metered {
  explicit Metered(remoteable::ServerOptions options = {}) {
    example::register_node(types);
    options.metrics = remoteable::Endpoint{"127.0.0.1", 0};
    server.emplace(remoteable::Endpoint{"127.0.0.1", 0}, types, options);
    example::export_walkthrough(server->server());
    server->server().export_function("add", &add);
    server->server().export_function("boom", &boom);
    server->server().export_function("hold", &hold, remoteable::blocking);
  }
  remoteable::Endpoint endpoint() const { return {"127.0.0.1", server->port()}; }
  test::Scrape scrape() { return test::scrape(server->server().metrics_port()); }
  remoteable::Registry types;
  std::optional<remoteable::ThreadedServer> server;
};

/// Waits (bounded) until `done()`.
template <class F>
bool eventually(F done, std::chrono::milliseconds limit = 20s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

using Labels = std::map<std::string, std::string>;
Labels of(std::string op, std::string member) { return {{"op", std::move(op)}, {"member", std::move(member)}}; }
Labels of(std::string op, std::string member, std::string kind) {
  return {{"op", std::move(op)}, {"member", std::move(member)}, {"kind", std::move(kind)}};
}

/// TCP sockets of this process that listen (from /proc: the inodes of our socket descriptors
/// that /proc/net/tcp and tcp6 list in state LISTEN).
std::size_t listening_sockets() {
  std::set<std::string> mine;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (auto* e = readdir(dir)) {
      char target[128] = {};
      auto path = std::string("/proc/self/fd/") + e->d_name;
      auto n = readlink(path.c_str(), target, sizeof target - 1);
      std::string t(target, n > 0 ? static_cast<std::size_t>(n) : 0);
      if (t.rfind("socket:[", 0) == 0) mine.insert(t.substr(8, t.size() - 9));
    }
    closedir(dir);
  }
  std::size_t listening = 0;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string sl, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
      fields >> sl >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode;
      if (state == "0A" && mine.contains(inode)) ++listening;
    }
  }
  return listening;
}

}  // namespace

TEST_CASE("metrics count each call by operation and member, its errors by kind and its latency") {
  Metered m;
  REQUIRE(m.server->server().metrics_port() != 0);
  asio::io_context context;
  auto client = test::connect(context, m.endpoint());
  auto root = client.fetch("root");
  auto add = client.fetch("add");
  auto boom = client.fetch("boom");
  for (int i = 0; i < 3; ++i) CHECK(test::await(context, add(i, 2).as<std::int64_t>()) == i + 2);
  for (int i = 0; i < 2; ++i) CHECK(test::error_of(context, boom(i).as<std::int64_t>()) == ErrorKind::value);
  CHECK(test::await(context, root.call("child", 0).attr("value").as<std::int64_t>()) == 2);

  auto s = m.scrape();
  CHECK(s.types["remoteable_calls"] == "counter");
  CHECK(s.types["remoteable_call_errors"] == "counter");
  CHECK(s.types["remoteable_call_duration_seconds"] == "histogram");
  CHECK(s.count("remoteable_calls_total", of("invoke", "add")) == 3);
  CHECK(s.count("remoteable_calls_total", of("invoke", "boom")) == 2);
  CHECK(s.count("remoteable_calls_total", of("call", "Node.child")) == 1);   // a chain: one call per step
  CHECK(s.count("remoteable_calls_total", of("attr", "Node.value")) == 1);
  CHECK(s.count("remoteable_call_errors_total", of("invoke", "boom", "value")) == 2);
  CHECK_FALSE(s.value("remoteable_call_errors_total", of("invoke", "add", "value")));  // no error, no series
  // The histogram counts every call; its +Inf bucket is the count, and the times add up.
  CHECK(s.count("remoteable_call_duration_seconds_count", of("invoke", "add")) == 3);
  CHECK(s.count("remoteable_call_duration_seconds_bucket", {{"op", "invoke"}, {"member", "add"}, {"le", "+Inf"}}) == 3);
  CHECK(s.count("remoteable_call_duration_seconds_count", of("invoke", "boom")) == 2);
  CHECK(s.count("remoteable_call_duration_seconds_sum", of("invoke", "add")) > 0);
  // No other call was counted: these are all of them.
  double calls = 0;
  for (auto& [key, value] : s.samples)
    if (key.rfind("remoteable_calls_total{", 0) == 0) calls += value;
  CHECK(calls == 7);

  // Gauges as the server counts them, and bytes both ways.
  CHECK(s.count("remoteable_connections") == 1);
  CHECK(s.count("remoteable_connections_opened_total") == 1);
  CHECK(s.count("remoteable_live_handles") == static_cast<double>(m.server->server().live_handles()));
  CHECK(s.count("remoteable_live_handles") >= 3);
  CHECK(s.count("remoteable_calls_in_flight") == 0);
  auto received = s.count("remoteable_received_bytes_total");
  auto sent = s.count("remoteable_sent_bytes_total");
  CHECK(received > 0);
  CHECK(sent > 0);
  // Every limit is listed, at zero.
  for (auto limit : {"max_connections", "max_handles_per_connection", "max_calls_per_connection", "max_outbound_bytes",
                     "max_attached_per_connection", "max_attached", "idle_timeout"})
    CHECK(s.value("remoteable_limit_breaches_total", {{"limit", limit}}) == 0.0);

  CHECK(test::await(context, add(40, 2).as<std::int64_t>()) == 42);
  auto again = m.scrape();
  CHECK(again.count("remoteable_calls_total", of("invoke", "add")) == 4);
  CHECK(again.count("remoteable_received_bytes_total") > received);
  CHECK(again.count("remoteable_sent_bytes_total") > sent);

  // Once the client has gone, the gauges come back to zero.
  root = {};
  add = {};
  boom = {};
  client.close();
  context.restart();
  context.poll();
  REQUIRE(eventually([&] { return m.server->server().connections() == 0 && m.server->server().live_handles() == 0; }));
  auto after = m.scrape();
  CHECK(after.count("remoteable_connections") == 0);
  CHECK(after.count("remoteable_live_handles") == 0);
  CHECK(after.count("remoteable_connections_opened_total") == 1);
}

TEST_CASE("metrics show a call in flight while it runs") {
  Metered m;
  asio::io_context context;
  auto client = test::connect(context, m.endpoint());
  std::optional<std::int64_t> result;
  asio::co_spawn(context, client.fetch("hold")(7).as<std::int64_t>(), [&](std::exception_ptr, std::int64_t v) { result = v; });
  // Run the client until the call has reached the pool, then scrape with the call held there.
  auto deadline = std::chrono::steady_clock::now() + 20s;
  auto held = [] {
    std::lock_guard lock(gate.mutex);
    return gate.waiting > 0;
  };
  while (!held() && std::chrono::steady_clock::now() < deadline) context.run_one_for(10ms);
  REQUIRE(held());
  auto s = m.scrape();
  CHECK(s.count("remoteable_calls_in_flight") == 1);
  CHECK(s.count("remoteable_calls_total", of("invoke", "hold")) == 0);  // counted when it ends
  {
    std::lock_guard lock(gate.mutex);
    gate.open = true;
  }
  gate.changed.notify_all();
  while (!result && std::chrono::steady_clock::now() < deadline) context.run_one_for(10ms);
  CHECK(result == 7);
  REQUIRE(eventually([&] { return m.server->server().calls_in_flight() == 0; }));
  auto after = m.scrape();
  CHECK(after.count("remoteable_calls_in_flight") == 0);
  CHECK(after.count("remoteable_calls_total", of("invoke", "hold")) == 1);
  CHECK(after.count("remoteable_call_duration_seconds_count", of("invoke", "hold")) == 1);
  client.close();
  context.restart();
  context.poll();
}

TEST_CASE("names a client makes up add no series: they count as (unknown)") {
  Metered m;
  test::Connected t;  // (an unmetered server beside it: nothing of it shows)
  asio::io_context context;
  auto client = test::connect(context, m.endpoint());
  auto root = client.fetch("root");
  for (int i = 0; i < 3; ++i) {
    auto name = "x123_" + std::to_string(i);
    CHECK(test::error_of(context, root.call(name, 1).as<std::int64_t>()) == ErrorKind::attribute);
    CHECK(test::error_of(context, root.attr(name + "_field").as<std::int64_t>()) == ErrorKind::attribute);
  }
  CHECK(test::error_of(context, root.set("y456", 1)) == ErrorKind::attribute);
  auto s = m.scrape();
  CHECK_FALSE(s.mentions("x123"));
  CHECK_FALSE(s.mentions("y456"));
  CHECK(s.count("remoteable_calls_total", of("call", "(unknown)")) == 3);
  CHECK(s.count("remoteable_call_errors_total", of("call", "(unknown)", "attribute")) == 3);
  CHECK(s.count("remoteable_calls_total", of("attr", "(unknown)")) == 3);
  CHECK(s.count("remoteable_calls_total", of("set_attr", "(unknown)")) == 1);
  // A registered member still has its own series.
  CHECK(test::await(context, root.call("child_count").as<std::int64_t>()) == 1);
  CHECK(m.scrape().count("remoteable_calls_total", of("call", "Node.child_count")) == 1);
  client.close();
  context.restart();
  context.poll();
}

TEST_CASE("metrics count limit breaches by limit") {
  remoteable::ServerOptions options;
  options.max_connections = 1;
  options.max_handles_per_connection = 1;
  Metered m(options);
  asio::io_context context;
  auto client = test::connect(context, m.endpoint());
  auto root = client.fetch("root");
  CHECK(test::await(context, root.attr("value").as<std::int64_t>()) == 1);  // the one handle: root
  CHECK(test::error_of(context, client.fetch("child").attr("value").as<std::int64_t>()) == ErrorKind::overloaded);
  // A second connection is refused.
  asio::io_context other;
  try {
    auto refused = test::connect(other, m.endpoint());
    FAIL("a second connection was served past max_connections = 1");
  } catch (const remoteable::RemoteError& e) {
    CHECK(e.kind() == ErrorKind::disconnected);
  }
  auto s = m.scrape();
  CHECK(s.count("remoteable_limit_breaches_total", {{"limit", "max_handles_per_connection"}}) == 1);
  CHECK(s.count("remoteable_limit_breaches_total", {{"limit", "max_connections"}}) == 1);
  CHECK(s.count("remoteable_limit_breaches_total", {{"limit", "max_calls_per_connection"}}) == 0);
  CHECK(s.count("remoteable_connections_opened_total") == 1);
  client.close();
  context.restart();
  context.poll();
}

TEST_CASE("metrics are off by default: no endpoint, no port") {
  remoteable::Registry types;
  example::register_node(types);
  auto before = listening_sockets();
  {
    remoteable::Server off{{"127.0.0.1", 0}, types};
    CHECK(off.metrics_port() == 0);
    CHECK(listening_sockets() == before + 1);  // its own port only
  }
  {
    remoteable::ServerOptions options;
    options.metrics = remoteable::Endpoint{"127.0.0.1", 0};
    remoteable::Server on{{"127.0.0.1", 0}, types, options};
    CHECK(on.metrics_port() != 0);
    CHECK(listening_sockets() == before + 2);  // and the metrics endpoint
    auto s = test::scrape(on.metrics_port());
    CHECK(s.value("remoteable_connections") == 0.0);
  }
  CHECK(listening_sockets() == before);
}

TEST_CASE("a metrics address that cannot be bound fails the server's construction, naming it") {
  remoteable::Registry types;
  remoteable::ServerOptions first;
  first.metrics = remoteable::Endpoint{"127.0.0.1", 0};
  remoteable::Server taken{{"127.0.0.1", 0}, types, first};
  remoteable::ServerOptions second;
  auto address = remoteable::Endpoint{"127.0.0.1", taken.metrics_port()};
  second.metrics = address;
  try {
    remoteable::Server clash{{"127.0.0.1", 0}, types, second};
    FAIL("a second metrics endpoint bound " << address.to_string());
  } catch (const std::system_error& e) {
    CHECK(std::string(e.what()).find("cannot serve metrics on " + address.to_string()) != std::string::npos);
    CHECK(e.code() == std::errc::address_in_use);
  }
}
