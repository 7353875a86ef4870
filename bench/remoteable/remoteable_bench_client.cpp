// remoteable_bench_client PORT W1|W2|W3|W4|W6|W7|W8|STREAM|ITER|MEM|CONN [options]: the remoteable peer, through
// the public client API only.
//
// W1: sequential `add(i, 2)`. W2: closed loop, --in-flight coroutines per connection each
// awaiting one call at a time, over --connections Clients. W3/W4:
// `root.call("child", 0)...attr("value") + 4`, built without round trips and evaluated once;
// nobody holds the handles in between, so the steps travel as one Handle.chain call (the raw
// Cap'n Proto peer pipelines one call per step, and adds the 4 locally). The result must be 42.
// W6: compute-bound throughput, spin(200 µs of CPU) over 1 to 1,000 actors (see compute()).
// W7/W8 (issue 10): the client shares a Sink (ClientOptions::registry, Client::share) once and
// passes the same handle to every call. W7: sequential hub.ask(sink, i), where the server awaits
// sink.triple(i) before it answers; the answer must be 3i. W8: hub.publish(sink, n): the server
// pushes n sink.on_event(i) without awaiting them, then awaits sink.count(); events/s over the
// publish, which must have delivered all n in order. The sink's calls run on the client's actor
// pool (ClientOptions::actor_threads, 1), not on the main thread.
// STREAM (issue 13): remoteable::stream(bytes_sink, "write") with a --window-kib window (1 MiB),
// --mib MiB (256) in --chunk-kib chunks (64 KiB), 1 + 5 runs; MB/s from the first write to
// close() (every write answered); the sink's byte count must match.
//
// ITER (issue 13): `ints`, a list of 1,000,000 int64 (0, 1, 2, ...), read whole by iteration
// (Handle::iterate, ClientOptions::iterate_batch per batch unless --batch N) and by one get();
// medians of 5 each (after 1 warmup), every element checked. The round-trip-per-element baseline
// (item(i), one await each) runs over the first --item-prefix elements (10,000) and is
// extrapolated to the whole list.
//
// Everything runs on one io_context driven by the main thread, so evaluations complete there and
// the shared counters need no lock.

#include <sys/resource.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <cstdint>
#include <exception>
#include <iostream>
#include <memory>
#include <vector>

#include <cstdlib>

#include "bench_common.hpp"
#include "ping_protocol.hpp"
#include <remoteable/remoteable.hpp>
#include <remoteable/stream.hpp>

namespace {

/// BENCH_TLS_CA=FILE: connect with TLS, checking the server against the CA in FILE, and report
/// as the peer "remoteable_tls" (the same client over TLS; scripts/bench compares the two).
const char* const tls_ca = std::getenv("BENCH_TLS_CA");
const std::string_view peer = tls_ca != nullptr && *tls_ca != '\0' ? "remoteable_tls" : "remoteable";

asio::awaitable<remoteable::Client> connect(const bench::Options& o,
                                            std::shared_ptr<const remoteable::Registry> registry = nullptr) {
  // Named locals, not temporaries inside the co_await expression: with g++ 12,
  // `co_await connect(co_await this_coro::executor, {host, port})` frees an invalid pointer.
  auto executor = co_await asio::this_coro::executor;
  remoteable::Endpoint endpoint{o.host, o.port};
  remoteable::ClientOptions options;
  options.registry = std::move(registry);
  if (peer == "remoteable_tls") {
    options.tls.enabled = true;
    options.tls.ca_file = tls_ca;
  }
  auto client = co_await remoteable::Client::connect(executor, endpoint, options);
  co_return client;
}

asio::awaitable<void> latency(bench::Options o) {
  auto client = co_await connect(o);
  auto add = client.fetch("add");
  const int warmup = o.warmup_or(2'000), timed = o.iterations_or(20'000);
  bench::Samples samples(timed);
  for (int i = 0; i < warmup + timed; ++i) {
    auto t0 = bench::clock::now();
    auto sum = co_await add(i, 2).as<std::int64_t>();
    auto t1 = bench::clock::now();
    bench::expect_value(sum, i + 2, "add");
    if (i >= warmup) samples.add(t1 - t0);
  }
  bench::print_latency(peer, "W1", samples);
}

/// One slot of the closed loop: awaits a call, then issues the next, until the window closes.
asio::awaitable<void> lane(remoteable::Handle add, bench::ThroughputWindow& window,
                           std::int64_t& checksum) {
  do {
    checksum += co_await add(1, 2).as<std::int64_t>();
  } while (window.complete());
}

/// A lane reading `value` from `targets` in turn, starting at `first`.
asio::awaitable<void> read_lane(std::vector<remoteable::Handle> targets, std::size_t first,
                                bench::ThroughputWindow& window, std::int64_t& checksum) {
  auto next = first;
  do {
    checksum += co_await targets[next++ % targets.size()].attr("value").as<std::int64_t>();
  } while (window.complete());
}

/// The server's RSS, as it reports it.
asio::awaitable<std::int64_t> server_rss(const remoteable::Client& client) {
  co_return co_await client.fetch("rss_bytes")().as<std::int64_t>();
}

/// MEM: server RSS growth per live handle, with --handles N held by one client.
asio::awaitable<void> memory_per_handle(bench::Options o) {
  auto client = co_await connect(o);
  auto root = client.fetch("root");
  bench::expect_value(co_await root.attr("value").as<std::int64_t>(), 38, "root.value");
  const auto before = co_await server_rss(client);
  std::vector<remoteable::Handle> held;
  held.reserve(static_cast<std::size_t>(o.handles));
  constexpr int batch = 5'000;  // pipelined, then one evaluation: the server has made them all
  for (int i = 0; i < o.handles; i += batch) {
    for (int j = i; j < std::min(o.handles, i + batch); ++j) held.push_back(root.attr("value"));
    bench::expect_value(co_await held.back().as<std::int64_t>(), 38, "a held handle");
  }
  const auto after = co_await server_rss(client);
  bench::JsonLine(peer, "MEM")
      .field("handles", o.handles)
      .field("bytes_per_handle", static_cast<double>(after - before) / o.handles)
      .print();
}

/// CONN: server RSS growth per idle connection, with --connections N open (each has fetched and
/// evaluated one name, then stays idle).
asio::awaitable<void> memory_per_connection(bench::Options o) {
  auto probe = co_await connect(o);
  const auto before = co_await server_rss(probe);
  std::vector<remoteable::Client> idle;
  for (int c = 0; c < o.connections; ++c) {
    idle.push_back(co_await connect(o));
    bench::expect_value(co_await idle.back().fetch("root").attr("value").as<std::int64_t>(), 38, "root.value");
  }
  const auto after = co_await server_rss(probe);
  bench::JsonLine(peer, "CONN")
      .field("connections", o.connections)
      .field("bytes_per_connection", static_cast<double>(after - before) / o.connections)
      .print();
}

asio::awaitable<void> throughput(bench::Options o) {
  auto executor = co_await asio::this_coro::executor;
  std::vector<remoteable::Client> clients;
  for (int c = 0; c < o.connections; ++c) clients.push_back(co_await connect(o));
  std::int64_t checksum = 0;
  bench::ThroughputWindow window(o);
  // The lanes are owned by this frame: it does not return before the last one has finished, so
  // their completion handlers may refer to its locals.
  int running = 1;  // this loop holds one count until every lane is spawned
  std::exception_ptr failure;
  asio::steady_timer all_done(executor, asio::steady_timer::time_point::max());
  auto lane_finished = [&](std::exception_ptr e) {
    if (e && !failure) failure = e;
    if (--running == 0) all_done.cancel();
  };
  // --actors N: each lane reads `value` from server objects in turn. One actor: every lane of
  // every connection reads the exported root. N actors: N nodes constructed (each
  // construction starts an actor), spread over the connections and their lanes.
  std::vector<std::vector<remoteable::Handle>> nodes(clients.size());
  if (o.actors > 1) {
    for (int k = 0; k < o.actors; ++k) {
      auto c = static_cast<std::size_t>(k) % clients.size();
      nodes[c].push_back(clients[c].fetch("Node")(38));
    }
    for (auto& per_client : nodes)
      for (auto& n : per_client) bench::expect_value(co_await n.attr("value").as<std::int64_t>(), 38, "Node(38).value");
  }
  for (std::size_t c = 0; c < clients.size(); ++c) {
    auto add = clients[c].fetch("add");
    for (int i = 0; i < o.in_flight; ++i) {
      ++running;
      if (o.actors == 1) {
        asio::co_spawn(executor, read_lane({clients[c].fetch("root")}, 0, window, checksum), lane_finished);
      } else if (o.actors > 1) {
        asio::co_spawn(executor, read_lane(nodes[c], static_cast<std::size_t>(i), window, checksum), lane_finished);
      } else {
        asio::co_spawn(executor, lane(add, window, checksum), lane_finished);
      }
    }
  }
  if (--running > 0) {
    asio::error_code ignored;  // cancellation is the signal that every lane has finished
    co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  if (failure) std::rethrow_exception(failure);
  bench::do_not_optimize(checksum);
  bench::print_throughput(peer, o, window.calls_per_s());
}

/// A W6 lane: calls spin(us) on its spinners in turn, one call at a time.
asio::awaitable<void> spin_lane(std::vector<remoteable::Handle> targets, int us, bench::ThroughputWindow& window,
                                std::int64_t& checksum) {
  std::size_t next = 0;
  do {
    checksum += co_await targets[next++ % targets.size()].call("spin", us).as<std::int64_t>();
  } while (window.complete());
}

/// W6: --connections clients, --in-flight lanes each, calling spin(--spin-us) on --actors of the
/// server's spinners ("spin0"...). Lane k of L (numbered across the connections) uses spinners
/// k, k + L, k + 2L, ... when there are at least L of them, else spinner k mod A: no two lanes
/// share an actor unless there are fewer actors than lanes.
asio::awaitable<void> compute(bench::Options o) {
  constexpr int spinners = 1000;
  if (o.actors < 1 || o.actors > spinners) bench::fail("W6: --actors must be between 1 and 1000");
  auto executor = co_await asio::this_coro::executor;
  std::vector<remoteable::Client> clients;
  for (int c = 0; c < o.connections; ++c) clients.push_back(co_await connect(o));
  const int lanes = o.connections * o.in_flight;
  std::vector<std::vector<remoteable::Handle>> targets(static_cast<std::size_t>(lanes));
  for (int k = 0; k < lanes; ++k) {
    auto& client = clients[static_cast<std::size_t>(k / o.in_flight)];
    auto& mine = targets[static_cast<std::size_t>(k)];
    if (o.actors >= lanes) {
      for (int a = k; a < o.actors; a += lanes) mine.push_back(client.fetch("spin" + std::to_string(a)));
    } else {
      mine.push_back(client.fetch("spin" + std::to_string(k % o.actors)));
    }
    for (auto& t : mine) co_await t.call("spin", 0).as<std::int64_t>();  // resolved, and measured once
  }
  std::int64_t checksum = 0;
  bench::ThroughputWindow window(o);
  int running = 1;
  std::exception_ptr failure;
  asio::steady_timer all_done(executor, asio::steady_timer::time_point::max());
  auto lane_finished = [&](std::exception_ptr e) {
    if (e && !failure) failure = e;
    if (--running == 0) all_done.cancel();
  };
  for (auto& mine : targets) {
    ++running;
    asio::co_spawn(executor, spin_lane(mine, o.spin_us, window, checksum), lane_finished);
  }
  if (--running > 0) {
    asio::error_code ignored;
    co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  if (failure) std::rethrow_exception(failure);
  bench::do_not_optimize(checksum);
  bench::print_throughput(peer, o, window.calls_per_s());
}

/// W7 and W8's client object. Its calls run on the client's actor pool, one at a time; the main
/// thread resets and reads it between publishes, when none is running: atomics, no lock.
struct Sink {
  void on_event(std::int64_t i) {
    if (i != next.load(std::memory_order_relaxed)) in_order.store(false, std::memory_order_relaxed);
    next.store(i + 1, std::memory_order_relaxed);
    received.fetch_add(1, std::memory_order_release);
  }
  std::int64_t triple(std::int64_t x) { return 3 * x; }
  std::int64_t count() const { return received.load(std::memory_order_acquire); }
  void reset() { received = 0, next = 0, in_order = true; }

  std::atomic<std::int64_t> received{0}, next{0};
  std::atomic<bool> in_order{true};
};

std::shared_ptr<const remoteable::Registry> sink_types() {
  auto types = std::make_shared<remoteable::Registry>();
  types->class_<Sink>("Sink").method("on_event", &Sink::on_event).method("triple", &Sink::triple).method("count", &Sink::count);
  return types;
}

asio::awaitable<void> callback_latency(bench::Options o) {
  auto client = co_await connect(o, sink_types());
  auto sink = client.share(std::make_shared<Sink>());
  auto hub = client.fetch("hub");
  const int warmup = o.warmup_or(2'000), timed = o.iterations_or(20'000);
  bench::Samples samples(timed);
  for (int i = 0; i < warmup + timed; ++i) {
    auto t0 = bench::clock::now();
    auto y = co_await hub.call("ask", sink, i).as<std::int64_t>();
    auto t1 = bench::clock::now();
    bench::expect_value(y, 3 * static_cast<std::int64_t>(i), "hub.ask(sink, i)");
    if (i >= warmup) samples.add(t1 - t0);
  }
  bench::print_latency(peer, "W7", samples);
}

asio::awaitable<void> push_throughput(bench::Options o) {
  auto client = co_await connect(o, sink_types());
  auto impl = std::make_shared<Sink>();
  auto sink = client.share(impl);
  auto hub = client.fetch("hub");
  const int warmup = o.warmup_or(1), timed = o.iterations_or(5);
  std::vector<double> rates;
  for (int r = 0; r < warmup + timed; ++r) {
    impl->reset();
    auto t0 = bench::clock::now();
    auto count = co_await hub.call("publish", sink, o.events).as<std::int64_t>();
    auto t1 = bench::clock::now();
    bench::expect_value(count, o.events, "hub.publish(sink, n): sink.count()");
    bench::expect_value(impl->count(), o.events, "events received");
    bench::expect_value(impl->in_order ? 1 : 0, 1, "events in order");
    if (r >= warmup) rates.push_back(o.events / bench::seconds_between(t0, t1));
  }
  bench::print_push(peer, o, rates);
}

asio::awaitable<void> stream_throughput(bench::Options o) {
  auto client = co_await connect(o);
  auto sink = client.fetch("bytes_sink");
  const auto chunk = static_cast<std::size_t>(o.chunk_kib) * 1024;
  const auto total = static_cast<std::int64_t>(o.mib) * 1024 * 1024;
  const auto writes = total / static_cast<std::int64_t>(chunk);
  remoteable::Bytes data(chunk);
  for (std::size_t i = 0; i < chunk; ++i) data[i] = static_cast<std::byte>(i * 131);
  (void)co_await sink.call("take").as<std::int64_t>();
  const int warmup = o.warmup_or(1), timed = o.iterations_or(5);
  std::vector<double> rates;
  for (int r = 0; r < warmup + timed; ++r) {
    auto t0 = bench::clock::now();
    remoteable::StreamOptions options;
    options.window_bytes = static_cast<std::size_t>(o.window_kib) * 1024;
    auto w = remoteable::stream(sink, "write", options);
    for (std::int64_t i = 0; i < writes; ++i) co_await w.write(data);
    co_await w.close();
    auto t1 = bench::clock::now();
    bench::expect_value(co_await sink.call("take").as<std::int64_t>(), writes * static_cast<std::int64_t>(chunk), "bytes_sink.take()");
    if (r >= warmup) rates.push_back(static_cast<double>(writes * static_cast<std::int64_t>(chunk)) / 1e6 / bench::seconds_between(t0, t1));
  }
  bench::print_stream(peer, o, rates);
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

asio::awaitable<void> iteration(bench::Options o) {
  auto client = co_await connect(o);
  auto ints = client.fetch("ints");
  const std::int64_t n = 1'000'000;
  const std::int64_t want_sum = n * (n - 1) / 2;
  const int warmup = o.warmup_or(1), timed = o.iterations_or(5);
  std::uint32_t batch = o.batch > 0 ? static_cast<std::uint32_t>(o.batch) : remoteable::ClientOptions{}.iterate_batch;
  std::vector<double> iter_ms, get_ms;
  std::int64_t sum = 0;
  for (int r = 0; r < warmup + timed; ++r) {
    auto t0 = bench::clock::now();
    auto it = ints.iterate({.batch = batch});
    std::int64_t s = 0, i = 0;
    while (auto v = co_await it.next()) {
      auto x = v->as<std::int64_t>();
      if (x != i) bench::fail("ITER: element " + std::to_string(i) + " is " + std::to_string(x));
      s += x;
      ++i;
    }
    auto t1 = bench::clock::now();
    bench::expect_value(i, n, "ITER: elements iterated");
    bench::expect_value(s, want_sum, "ITER: sum of the elements iterated");
    sum = s;
    if (r >= warmup) iter_ms.push_back(bench::seconds_between(t0, t1) * 1e3);
  }
  for (int r = 0; r < warmup + timed; ++r) {
    auto t0 = bench::clock::now();
    auto list = co_await ints.as<std::vector<std::int64_t>>();
    auto t1 = bench::clock::now();
    bench::expect_value(static_cast<std::int64_t>(list.size()), n, "ITER: elements of get()");
    std::int64_t s = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      if (list[static_cast<std::size_t>(i)] != i) bench::fail("ITER: get() element " + std::to_string(i) + " is wrong");
      s += list[static_cast<std::size_t>(i)];
    }
    bench::expect_value(s, want_sum, "ITER: sum of get()");
    if (r >= warmup) get_ms.push_back(bench::seconds_between(t0, t1) * 1e3);
  }
  // The baseline: one round trip per element, item(i) awaited in turn, over a prefix.
  const std::int64_t prefix = o.item_prefix;
  auto t0 = bench::clock::now();
  for (std::int64_t i = 0; i < prefix; ++i) {
    auto x = co_await ints.item(i).as<std::int64_t>();
    bench::expect_value(x, i, "ITER: item(i)");
  }
  auto t1 = bench::clock::now();
  const double item_us = bench::seconds_between(t0, t1) * 1e6 / static_cast<double>(prefix);
  const double median = median_of(iter_ms), get_median = median_of(get_ms);
  bench::JsonLine(peer, "ITER")
      .field("elements", n)
      .field("batch", static_cast<std::int64_t>(batch))
      .field("median_ms", median)
      .field("get_median_ms", get_median)
      .field("ratio_to_get", median / get_median)
      .field("item_per_element_us", item_us)
      .field("item_prefix", prefix)
      .field("item_extrapolated_ms", item_us * static_cast<double>(n) / 1e3)
      .field("sum", sum)
      .field("runs", static_cast<std::int64_t>(timed))
      .print();
}

remoteable::Handle chain(const remoteable::Handle& root, int depth) {
  auto node = root;
  for (int d = 0; d < depth; ++d) node = node.call("child", 0);
  return node.attr("value") + 4;
}

asio::awaitable<void> chain_latency(bench::Options o) {
  const bool w4 = o.workload == bench::Workload::w4;
  double rtt_ms = w4 && o.rtt_port ? bench::measure_ping_rtt_ms(o.host, o.rtt_port) : 0;
  auto client = co_await connect(o);
  auto root = client.fetch("root");
  const int warmup = o.warmup_or(w4 ? 5 : 1'000), timed = o.iterations_or(w4 ? 40 : 10'000);
  bench::Samples samples(timed);
  for (int i = 0; i < warmup + timed; ++i) {
    auto t0 = bench::clock::now();
    auto result = co_await chain(root, o.depth).as<std::int64_t>();
    auto t1 = bench::clock::now();
    bench::expect_value(result, 42, "root.child(0).value + 4");
    if (i >= warmup) samples.add(t1 - t0);
  }
  if (w4) bench::print_chain_under_latency(peer, o.depth, samples, rtt_ms);
  else bench::print_latency(peer, "W3", samples);
}

}  // namespace

int main(int argc, char** argv) {
  auto o = bench::parse_options(argc, argv);
  rlimit r{};  // CONN opens a thousand connections
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
  asio::io_context io(1);
  auto run = [&]() -> asio::awaitable<void> {
    switch (o.workload) {
      case bench::Workload::w1: return latency(o);
      case bench::Workload::w2: return throughput(o);
      case bench::Workload::mem: return memory_per_handle(o);
      case bench::Workload::conn: return memory_per_connection(o);
      case bench::Workload::w6: return compute(o);
      case bench::Workload::w7: return callback_latency(o);
      case bench::Workload::w8: return push_throughput(o);
      case bench::Workload::stream: return stream_throughput(o);
      case bench::Workload::iter: return iteration(o);
      default: return chain_latency(o);
    }
  };
  std::exception_ptr failure;
  asio::co_spawn(io, run(), [&](std::exception_ptr e) { failure = e; });
  io.run();
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      bench::fail(e.what());
    }
  }
}
