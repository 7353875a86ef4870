// remoteable_bench_server PORT [ADVERTISED_PORT] [--metrics HOST:PORT]: the benchmark's object
// model served by remoteable. Exports "root" (a Node whose value is 38), "add" (a free
// function), "hub" (W7 and W8's calls back to a client's object), "bytes_sink" (STREAM's sink) and W6's "spin0" to "spin999" (Spinner objects, one actor each). Prints "READY
// <port>" once listening. --metrics turns ServerOptions::metrics on (scripts/bench-ab
// --metrics-b measures what that costs). --tls-cert and --tls-key serve TLS (scripts/bench's
// remoteable_tls peer).

#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bench_common.hpp"
#include <remoteable/remoteable.hpp>

namespace {

/// A tree node. child(i) keeps the child it makes, so the same i gives the same object; the
/// children map is only touched on the node's actor strand, like all of its state.
struct Node {
  explicit Node(std::int64_t v) : value(v) {}

  std::shared_ptr<Node> child(std::int64_t i) {
    auto& kept = children_[i];
    if (!kept) kept = std::make_shared<Node>(value + i);
    return kept;
  }

  std::int64_t value;

 private:
  std::map<std::int64_t, std::shared_ptr<Node>> children_;
};

std::int64_t add(std::int64_t a, std::int64_t b) { return a + b; }

std::int64_t thread_cpu_ns() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec * 1'000'000'000LL + t.tv_nsec;
}

/// W6's object: spin(us) uses `us` microseconds (at most 10 ms) of its thread's CPU time, then
/// returns how many calls this object has run. Nothing marks it as blocking: the server finds
/// out where it runs best.
struct Spinner {
  std::int64_t spin(std::int64_t us) {
    const auto until = thread_cpu_ns() + std::min<std::int64_t>(us, 10'000) * 1000;
    while (thread_cpu_ns() < until) {
    }
    return ++calls;
  }
  std::int64_t calls = 0;
};
/// W6 exports this many spinners, "spin0" to "spin999", each its own actor.
constexpr int spinners = 1000;

/// W7 and W8 (issue 10): calls back the client object the caller passes ("hub"). ask calls
/// cb.triple(x) once and answers with its answer. publish pushes sink.on_event(0) ...
/// on_event(n - 1) without awaiting them (dropped handles: pushes, sent in order and bounded by
/// ServerOptions::push_window, 1,000 unanswered by default), then awaits sink.count() and
/// answers with it. Too many queued (documented: 64 windows) and a push fails, unseen, and so
/// does the final count (seen at 200,000 events, not at 100,000): W8 pushes 20,000 per publish.
struct Hub {
  asio::awaitable<std::int64_t> ask(remoteable::Handle cb, std::int64_t x) {
    co_return co_await cb.call("triple", x).as<std::int64_t>();
  }
  asio::awaitable<std::int64_t> publish(remoteable::Handle sink, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) (void)sink.call("on_event", i);
    co_return co_await sink.call("count").as<std::int64_t>();
  }
};

/// STREAM (issue 13): the sink a client streams chunks to ("bytes_sink"). take() answers with the
/// bytes received since the last take() and starts again from zero.
struct ByteSink {
  void write(const remoteable::Bytes& data) { received += static_cast<std::int64_t>(data.size()); }
  std::int64_t take() { return std::exchange(received, 0); }
  std::int64_t received = 0;
};

/// This process's resident set size in bytes: the MEM and CONN measurements read it remotely.
std::int64_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::int64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

/// Raises the open-file limit to its maximum: CONN holds a thousand connections.
void raise_fd_limit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

/// Exports `add` with Server::export_function where the library has it, and otherwise as a
/// function object boxed by export_value (the same object export_function makes).
/// TODO: keep only export_function once it is in every build this bench runs against.
template <class S>
void export_add(S& server, const remoteable::Registry& types) {
  if constexpr (requires { server.export_function("add", &add); })
    server.export_function("add", &add);
  else
    server.export_value(types.function("add", &add), "add");
}

}  // namespace

int main(int argc, char** argv) {
  // ADVERTISED_PORT: the port clients are told to use (a proxy in front of this server, say);
  // it is what the READY line shows. By default the port actually bound.
  std::vector<std::string> args;
  std::optional<remoteable::Endpoint> metrics;
  remoteable::ServerTls tls;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--metrics" && i + 1 < argc) metrics = remoteable::Endpoint::parse(argv[++i]);
    else if (arg == "--tls-cert" && i + 1 < argc) tls.cert_file = argv[++i];
    else if (arg == "--tls-key" && i + 1 < argc) tls.key_file = argv[++i];
    else args.emplace_back(argv[i]);
  }
  if (args.size() != 1 && args.size() != 2)
    bench::fail(
        "usage: remoteable_bench_server PORT [ADVERTISED_PORT] [--metrics HOST:PORT] [--tls-cert FILE --tls-key FILE]");
  auto port = static_cast<std::uint16_t>(std::stoi(args[0]));

  remoteable::Registry types;
  types.class_<Node>("Node").constructor<std::int64_t>().field("value", &Node::value).method("child", &Node::child);
  types.class_<Spinner>("Spinner").method("spin", &Spinner::spin);
  types.class_<Hub>("Hub").method("ask", &Hub::ask).method("publish", &Hub::publish);
  types.class_<ByteSink>("ByteSink").method("write", &ByteSink::write).method("take", &ByteSink::take);

  raise_fd_limit();
  // MEM holds up to a million handles on one connection, CONN a thousand connections.
  remoteable::ServerOptions options;
  // BENCH_SLOW_CALL_MS sets options.slow_call: under callgrind an inline call can take 5 ms of
  // wall time, after which it would run on the pool for the rest of the run (scripts/bench-ab).
  if (const char* ms = std::getenv("BENCH_SLOW_CALL_MS")) options.slow_call = std::chrono::milliseconds(std::atoi(ms));
  // BENCH_INLINE_LIMIT_MS sets options.inline_limit: under callgrind
  // `add` uses far more than 50 µs of CPU, and would run on the pool instead of inline.
  if (const char* ms = std::getenv("BENCH_INLINE_LIMIT_MS")) options.inline_limit = std::chrono::milliseconds(std::atoi(ms));
  options.max_handles_per_connection = 2'000'000;
  options.max_connections = 4096;
  options.metrics = metrics;
  if (!tls.cert_file.empty()) options.tls = tls;
  remoteable::Server server{{"127.0.0.1", port}, types, options};
  server.export_object(std::make_shared<Node>(38), "root");
  export_add(server, types);
  server.export_function("rss_bytes", &rss_bytes);
  server.export_class<Node>("Node");  // W2 --actors N constructs N nodes: one actor each
  server.export_object(std::make_shared<Hub>(), "hub");  // W7, W8
  server.export_object(std::make_shared<ByteSink>(), "bytes_sink");  // STREAM
  {
    std::vector<std::int64_t> ints(1'000'000);  // ITER: 0, 1, 2, ...
    for (std::size_t i = 0; i < ints.size(); ++i) ints[i] = static_cast<std::int64_t>(i);
    server.export_value(ints, "ints");
  }
  for (int i = 0; i < spinners; ++i) server.export_object(std::make_shared<Spinner>(), "spin" + std::to_string(i));
  std::cout << "READY " << (args.size() == 2 ? args[1] : std::to_string(server.port())) << std::endl;
  server.run();
}
