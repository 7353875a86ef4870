// Soak: 64 concurrent clients on loopback connect, call, hold and drop handles and disconnect at
// random for a bounded time. Every result is checked. At the end: no lost or wrong results, the
// server's live objects (a counted type) and capabilities back at their start, no connection
// left, and the process's RSS within a stated bound.
//
// Environment: REMOTEABLE_SOAK_SECONDS (default 30; ctest, and so scripts/test, sets 60),
// REMOTEABLE_SOAK_SEED (default: random, printed), REMOTEABLE_SOAK_CLIENTS (default 64).

#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "counted.hpp"
#include "support.hpp"

using remoteable::ErrorKind;
using remoteable::Handle;
using test::Counted;
using Clock = std::chrono::steady_clock;

namespace {

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* text = std::getenv(name);
  return text && *text ? std::strtoull(text, nullptr, 10) : fallback;
}

std::size_t rss_mb() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE)) / (1024 * 1024);
}

/// What the clients saw. Counters are atomics: clients run on several threads.
struct Tally {
  std::atomic<std::uint64_t> sessions{0}, ops{0}, wrong{0}, lost{0}, dropped{0}, finished{0};
  std::mutex mutex;  // guards first_problem (written by client threads, read at the end)
  std::string first_problem;

  void problem(std::string what) {
    std::lock_guard lock(mutex);
    if (first_problem.empty()) first_problem = std::move(what);
  }
  std::condition_variable done;  // signalled as clients finish, with `mutex`
};

/// One client's random walk. Parameters, not captures: the coroutine outlives its caller's
/// frame (and GCC 12 mishandles captures in coroutine lambdas).
struct Walk {
  remoteable::Endpoint endpoint;
  std::uint64_t seed;
  Clock::time_point until;
  Tally* tally;
};

/// A handle this client holds across operations, with the value its object must have.
struct Held {
  Handle handle;
  std::int64_t expected;
};

/// Checks one result; a mismatch is a wrong result.
void check(Tally& tally, bool ok, const std::string& what) {
  tally.ops.fetch_add(1, std::memory_order_relaxed);
  if (ok) return;
  tally.wrong.fetch_add(1);
  tally.problem("wrong result: " + what);
}

/// One random operation on a connected client. Every awaited result is named first (GCC 12).
asio::awaitable<void> one_op(remoteable::Client& client, std::mt19937_64& random, std::vector<Held>& held,
                             Tally& tally) {
  auto pick = [&](std::int64_t lo, std::int64_t hi) { return std::uniform_int_distribution<std::int64_t>(lo, hi)(random); };
  switch (pick(0, 8)) {
    case 0: {  // construct a counted object and call it; maybe keep it
      auto x = pick(-1000, 1000), y = pick(-1000, 1000);
      auto object = client.fetch("Counted")(x);
      auto sum = object.call("add", y);
      auto value = co_await sum.as<std::int64_t>();
      check(tally, value == x + y, "Counted(" + std::to_string(x) + ").add(" + std::to_string(y) + ") = " + std::to_string(value));
      if (pick(0, 1) && held.size() < 16) held.push_back({object, x + y});
      break;
    }
    case 1: {  // the walkthrough chain, pipelined
      auto k = pick(0, 1000);
      auto chain = client.fetch("root").call("child", 0).attr("value") + k;
      auto value = co_await chain.as<std::int64_t>();
      check(tally, value == 2 + k, "root.child(0).value + " + std::to_string(k) + " = " + std::to_string(value));
      break;
    }
    case 2: {  // arithmetic on an exported value, both orders
      auto k = pick(-1000, 1000);
      auto product = client.fetch("five") * k;
      auto reflected = k - client.fetch("five");
      auto p = co_await product.as<std::int64_t>();
      auto r = co_await reflected.as<std::int64_t>();
      check(tally, p == 5 * k && r == k - 5, "five * k / k - five");
      break;
    }
    case 3: {  // a value stored on the server, read back by length and item
      auto n = pick(0, 20);
      remoteable::Value::List items;
      for (std::int64_t i = 0; i < n; ++i) items.emplace_back(i * 7);
      auto stored = client.store(remoteable::Value(std::move(items)));
      auto length = stored.len();
      auto count = co_await length.as<std::int64_t>();
      bool ok = count == n;
      if (n > 0) {
        auto j = pick(0, n - 1);
        auto item = stored.item(j);
        auto value = co_await item.as<std::int64_t>();
        ok = ok && value == j * 7;
      }
      check(tally, ok, "store/len/item of " + std::to_string(n));
      break;
    }
    case 4: {  // use a held handle
      if (held.empty()) break;
      auto& h = held[static_cast<std::size_t>(pick(0, static_cast<std::int64_t>(held.size()) - 1))];
      auto sum = h.handle.call("add", 1);
      auto value = co_await sum.as<std::int64_t>();
      ++h.expected;
      check(tally, value == h.expected, "held add(1)");
      break;
    }
    case 5: {  // drop held handles
      auto n = pick(0, static_cast<std::int64_t>(held.size()));
      tally.dropped.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
      held.erase(held.begin(), held.begin() + n);
      break;
    }
    case 6: {  // identity and comparison
      auto same = client.fetch("child") == client.fetch("root").call("child", 0);
      auto less = client.fetch("five") < pick(6, 100);
      auto s = co_await same.truthy();
      auto l = co_await less.truthy();
      check(tally, s && l, "identity / comparison");
      break;
    }
    case 7: {  // an error that must come back as an error
      auto missing = client.fetch("root").call("child", 99);
      auto kind = ErrorKind::user;
      bool failed = false;
      try {
        auto value = co_await missing.get();
        (void)value;
      } catch (const remoteable::RemoteError& e) {
        failed = true;
        kind = e.kind();
      }
      check(tally, failed && kind == ErrorKind::index, "child(99) must be an index error");
      break;
    }
    default: {  // text
      auto text = client.fetch("five").str();
      auto s = co_await std::move(text);
      check(tally, s == "5", "str(five) = " + s);
      break;
    }
  }
}

asio::awaitable<void> walk(Walk w) {
  std::mt19937_64 random(w.seed);
  auto executor = co_await asio::this_coro::executor;
  while (Clock::now() < w.until) {
    std::optional<remoteable::Client> client;
    try {
      auto connected = co_await remoteable::Client::connect(executor, w.endpoint);
      client.emplace(std::move(connected));
    } catch (const std::exception& e) {
      w.tally->lost.fetch_add(1);
      w.tally->problem(std::string("connect failed: ") + e.what());
      continue;
    }
    w.tally->sessions.fetch_add(1, std::memory_order_relaxed);
    std::vector<Held> held;
    auto ops = std::uniform_int_distribution<int>(1, 40)(random);
    for (int i = 0; i < ops && Clock::now() < w.until; ++i) {
      try {
        co_await one_op(*client, random, held, *w.tally);
      } catch (const std::exception& e) {
        w.tally->lost.fetch_add(1);
        w.tally->problem(std::string("an operation failed: ") + e.what());
      }
    }
    // Leave: closing with handles still held (their objects must go with the connection), or
    // dropping everything first.
    if (std::uniform_int_distribution<int>(0, 1)(random)) held.clear();
    client->close();
  }
  std::lock_guard lock(w.tally->mutex);
  w.tally->finished.fetch_add(1);
  w.tally->done.notify_all();
}

}  // namespace

TEST_CASE("64 clients connecting, calling, dropping and disconnecting at random lose nothing", "[soak]") {
  const auto seconds = env_or("REMOTEABLE_SOAK_SECONDS", 30);
  const auto seed = env_or("REMOTEABLE_SOAK_SEED", std::random_device{}());
  const auto clients = env_or("REMOTEABLE_SOAK_CLIENTS", 64);
  std::printf("soak: seed=%llu clients=%llu seconds=%llu (REMOTEABLE_SOAK_SEED / _CLIENTS / _SECONDS)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(clients),
              static_cast<unsigned long long>(seconds));
  std::fflush(stdout);

  remoteable::Registry types;
  example::register_node(types);
  test::register_counted(types);
  std::optional<remoteable::ThreadedServer> server;
  server.emplace(remoteable::Endpoint{"127.0.0.1", 0}, types);
  example::export_walkthrough(server->server());
  server->server().export_class<Counted>("Counted");
  const auto base_live = Counted::live.load();
  const auto base_handles = server->server().live_handles();
  const auto rss_start = rss_mb();

  // Clients spread over four io_contexts, each run by its own thread.
  constexpr std::size_t threads = 4;
  std::vector<asio::io_context> contexts(threads);
  Tally tally;
  const auto started = Clock::now();
  const auto until = started + std::chrono::seconds(seconds);
  for (std::uint64_t i = 0; i < clients; ++i) {
    Walk w{{"127.0.0.1", server->port()}, seed * 1000003 + i, until, &tally};
    asio::co_spawn(contexts[i % threads], walk(std::move(w)), [&tally](std::exception_ptr e) {
      if (!e) return;
      tally.lost.fetch_add(1);
      tally.problem("a client coroutine failed");
    });
  }
  std::vector<std::thread> runners;
  for (auto& c : contexts) runners.emplace_back([&c] { c.run(); });

  // Wait for every client to finish (bounded: the duration plus a grace for the last calls),
  // sampling RSS each second while waiting. The first samples are the warm-up.
  std::size_t rss_warm = 0, rss_peak = rss_start;
  std::string rss_series;  // one sample every 5 s, for the log
  int tick = 0;
  {
    std::unique_lock lock(tally.mutex);
    const auto limit = until + std::chrono::seconds(60);
    while (tally.finished.load() < clients && Clock::now() < limit) {
      tally.done.wait_for(lock, std::chrono::seconds(1));
      auto rss = rss_mb();
      rss_peak = std::max(rss_peak, rss);
      if (++tick % 5 == 0) rss_series += " " + std::to_string(rss);
      if (!rss_warm && Clock::now() - started >= std::chrono::seconds(std::max<std::uint64_t>(5, seconds / 3)))
        rss_warm = rss;
    }
  }
  const auto finished = tally.finished.load();
  // Clients that never finished are stuck on a result that never came: lost. Stop them.
  for (auto& c : contexts) c.stop();
  for (auto& r : runners) r.join();
  // A client's last close() may still be queued on its stopped context: destroying the
  // contexts tears down whatever they still hold, as destroying any io_context does.
  contexts.clear();
  const auto elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  if (!rss_warm) rss_warm = rss_peak;

  // The server lets go of everything the clients held.
  bool released = test::eventually([&] {
    return server->server().connections() == 0 && server->server().live_handles() == base_handles &&
           Counted::live.load() == base_live;
  });
  const auto rss_end = rss_mb();

  std::printf(
      "soak: %.1f s, %llu sessions, %llu checked results (%.0f/s), %llu wrong, %llu lost, %llu clients stuck, "
      "%llu handles dropped\n"
      "soak: server after: connections=%zu live_handles=%zu (start %zu) counted live=%lld (start %lld)\n"
      "soak: RSS start=%zu MB warm=%zu MB peak=%zu MB end=%zu MB; every 5 s:%s\n",
      elapsed, static_cast<unsigned long long>(tally.sessions.load()), static_cast<unsigned long long>(tally.ops.load()),
      static_cast<double>(tally.ops.load()) / elapsed, static_cast<unsigned long long>(tally.wrong.load()),
      static_cast<unsigned long long>(tally.lost.load()), static_cast<unsigned long long>(clients - finished),
      static_cast<unsigned long long>(tally.dropped.load()), server->server().connections(),
      server->server().live_handles(), base_handles, static_cast<long long>(Counted::live.load()),
      static_cast<long long>(base_live), rss_start, rss_warm, rss_peak, rss_end, rss_series.c_str());
  std::fflush(stdout);

  INFO("seed " << seed << "; first problem: " << tally.first_problem);
  CHECK(finished == clients);
  CHECK(tally.wrong.load() == 0);
  CHECK(tally.lost.load() == 0);
  CHECK(tally.ops.load() > 0);
  CHECK(released);
  // Memory: after warm-up (a third of the run) the process, server and clients together,
  // stays flat: without sanitizers it grows by at most 32 MB and stays under 256 MB (measured:
  // 13-14 MB over 60 s and 125k results). Under ASan the allocator's quarantine (256 MB by
  // default) and stack depot keep filling long after warm-up, so the bound is that plus slack.
#if defined(__SANITIZE_ADDRESS__)
  constexpr std::size_t growth_mb = 320, peak_mb = 1536;
#else
  constexpr std::size_t growth_mb = 32, peak_mb = 256;
#endif
  CHECK(rss_end <= rss_warm + growth_mb);
  CHECK(rss_peak <= peak_mb);
  server.reset();
}
