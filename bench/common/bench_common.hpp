#pragma once
// Shared pieces of every benchmark client: the command line, timing, percentiles and the one
// JSON line each measurement prints. Header-only, no dependency beyond the standard library, so
// that every peer (raw Cap'n Proto, raw Asio, remoteable) measures and reports the same way.

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

using clock = std::chrono::steady_clock;

/// Keeps `value` alive as far as the optimiser can tell, so a result that is never otherwise
/// used still has to be computed.
template <class T>
inline void do_not_optimize(const T& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}

/// Stops the program when a chain evaluated to the wrong value: a fast wrong answer is no result.
inline void expect_value(std::int64_t got, std::int64_t want, std::string_view what) {
  if (got != want) {
    std::cerr << "error: " << what << " evaluated to " << got << ", expected " << want << '\n';
    std::exit(1);
  }
}

[[noreturn]] inline void fail(std::string_view message) {
  std::cerr << "error: " << message << '\n';
  std::exit(2);
}

/// Latency samples in nanoseconds.
class Samples {
 public:
  explicit Samples(std::size_t expected = 0) { ns_.reserve(expected); }

  void add(clock::duration d) {
    ns_.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
  }
  std::size_t size() const { return ns_.size(); }

  struct Summary {
    double median_us = 0;
    double p99_us = 0;
    double mean_us = 0;
  };

  /// Nearest-rank percentiles over the samples taken so far.
  Summary summarize() const {
    if (ns_.empty()) fail("no samples");
    std::vector<std::int64_t> sorted = ns_;
    std::sort(sorted.begin(), sorted.end());
    auto rank = [&](double q) {
      auto i = static_cast<std::size_t>(q * static_cast<double>(sorted.size()));
      return static_cast<double>(sorted[std::min(i, sorted.size() - 1)]) / 1e3;
    };
    double sum = 0;
    for (auto v : sorted) sum += static_cast<double>(v);
    return {rank(0.5), rank(0.99), sum / static_cast<double>(sorted.size()) / 1e3};
  }

 private:
  std::vector<std::int64_t> ns_;
};

/// Builds one JSON object and prints it as one line on stdout.
class JsonLine {
 public:
  JsonLine(std::string_view peer, std::string_view workload) {
    field("peer", peer);
    field("workload", workload);
  }

  JsonLine& field(std::string_view key, std::string_view value) {
    key_(key);
    out_ << '"';
    for (char c : value) {
      if (c == '"' || c == '\\') out_ << '\\';
      out_ << c;
    }
    out_ << '"';
    return *this;
  }
  JsonLine& field(std::string_view key, const char* value) { return field(key, std::string_view(value)); }
  JsonLine& field(std::string_view key, double value) {
    key_(key);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", value);
    out_ << buf;
    return *this;
  }
  JsonLine& field(std::string_view key, std::int64_t value) {
    key_(key);
    out_ << value;
    return *this;
  }
  JsonLine& field(std::string_view key, int value) { return field(key, static_cast<std::int64_t>(value)); }

  void print() {
    std::cout << '{' << out_.str() << '}' << std::endl;
  }

 private:
  void key_(std::string_view key) {
    if (!first_) out_ << ',';
    first_ = false;
    out_ << '"' << key << "\":";
  }
  std::ostringstream out_;
  bool first_ = true;
};

/// The workloads of issue 5; every peer's client implements the same set.
/// MEM and CONN are remoteable's memory measurements (server RSS per live handle and per idle
/// connection), W6 its compute-bound throughput (a method that uses --spin-us of CPU, 200 µs by
/// default, on --actors actors); the baselines do not implement them.
/// W7 and W8 are the callbacks of issue 10 (raw Cap'n Proto and remoteable): W7 a call whose
/// server calls back a client object once before it answers, W8 events pushed by the server to
/// a client object (--events per publish, --iterations publishes).
/// STREAM (issue 13, raw Cap'n Proto and remoteable): --mib MiB written to a server's sink in
/// --chunk-kib chunks with at most --window-kib bytes of writes unanswered; MB/s.
enum class Workload { w1, w2, w3, w4, mem, conn, w6, w7, w8, stream, iter };

/// The command line every `<peer>_bench_client` accepts:
///   PORT W1|W2|W3|W4|W7|W8 [--iterations N] [--warmup N] [--seconds S] [--warmup-seconds S]
///                    [--in-flight N] [--connections N] [--depth K] [--rtt-port P] [--host H]
///                    [--events N]
/// Defaults follow issue 5: W1 2,000 + 20,000 calls; W2 one connection, 128 in flight, 0.5 s +
/// 5 s; W3 1,000 + 10,000 chains; W4 depth 1, 5 + 40 chains. W7 (issue 10) 2,000 + 20,000
/// calls; W8 1 + 5 publishes of 20,000 events.
struct Options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  Workload workload = Workload::w1;
  std::string workload_name;
  int iterations = -1;  // -1: the workload's default
  int warmup = -1;
  double seconds = 5.0;
  double warmup_seconds = 0.5;
  int in_flight = 128;
  int connections = 1;
  int depth = 1;
  std::uint16_t rtt_port = 0;  // 0: do not measure the proxy's round trip
  int actors = 0;              // W2: 0 calls `add`; N >= 1 reads a value from N server objects, one actor each
  int handles = 10'000;        // MEM: live handles to hold
  int spin_us = 200;           // W6: CPU time each call uses on the server
  int events = 20'000;         // W8: events pushed per publish
  int mib = 256;               // STREAM: MiB written per run
  int chunk_kib = 64;          // STREAM: the size of each write's data
  int window_kib = 1024;       // STREAM: bytes of writes unanswered, at most
  int batch = 0;               // ITER: elements per batch (0: ClientOptions::iterate_batch)
  int item_prefix = 10'000;    // ITER: elements of the item(i) baseline

  int iterations_or(int fallback) const { return iterations >= 0 ? iterations : fallback; }
  int warmup_or(int fallback) const { return warmup >= 0 ? warmup : fallback; }
};

namespace detail {
template <class T>
T parse_number(std::string_view text, std::string_view what) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size())
    fail("bad " + std::string(what) + ": '" + std::string(text) + "'");
  return value;
}
}  // namespace detail

inline Options parse_options(int argc, char** argv) {
  auto usage = [&] {
    fail(std::string("usage: ") + argv[0] +
         " PORT W1|W2|W3|W4|W7|W8 [--iterations N] [--warmup N] [--seconds S] [--warmup-seconds S]"
         " [--in-flight N] [--connections N] [--depth K] [--rtt-port P] [--host H] [--actors N] [--handles N]"
         " (remoteable also: MEM --handles N, CONN --connections N, W6 [--actors N] [--spin-us US];"
         " raw Cap'n Proto and remoteable also: W7, W8 [--events N], STREAM [--mib N] [--chunk-kib N] [--window-kib N];"
         " remoteable also: ITER [--batch N] [--item-prefix N])");
  };
  if (argc < 3) usage();
  Options o;
  o.port = detail::parse_number<std::uint16_t>(argv[1], "port");
  o.workload_name = argv[2];
  if (o.workload_name == "W1") o.workload = Workload::w1;
  else if (o.workload_name == "W2") o.workload = Workload::w2;
  else if (o.workload_name == "W3") o.workload = Workload::w3;
  else if (o.workload_name == "W4") o.workload = Workload::w4;
  else if (o.workload_name == "MEM") o.workload = Workload::mem;
  else if (o.workload_name == "CONN") o.workload = Workload::conn, o.connections = 1000;
  else if (o.workload_name == "W6") o.workload = Workload::w6, o.in_flight = 2, o.actors = 1;
  else if (o.workload_name == "W7") o.workload = Workload::w7;
  else if (o.workload_name == "W8") o.workload = Workload::w8;
  else if (o.workload_name == "STREAM") o.workload = Workload::stream;
  else if (o.workload_name == "ITER") o.workload = Workload::iter;
  else usage();
  for (int i = 3; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (i + 1 >= argc) usage();
    std::string_view v = argv[++i];
    if (flag == "--iterations") o.iterations = detail::parse_number<int>(v, "iterations");
    else if (flag == "--warmup") o.warmup = detail::parse_number<int>(v, "warmup");
    else if (flag == "--seconds") o.seconds = std::stod(std::string(v));
    else if (flag == "--warmup-seconds") o.warmup_seconds = std::stod(std::string(v));
    else if (flag == "--in-flight") o.in_flight = detail::parse_number<int>(v, "in-flight");
    else if (flag == "--connections") o.connections = detail::parse_number<int>(v, "connections");
    else if (flag == "--depth") o.depth = detail::parse_number<int>(v, "depth");
    else if (flag == "--rtt-port") o.rtt_port = detail::parse_number<std::uint16_t>(v, "rtt port");
    else if (flag == "--host") o.host = std::string(v);
    else if (flag == "--actors") o.actors = detail::parse_number<int>(v, "actors");
    else if (flag == "--handles") o.handles = detail::parse_number<int>(v, "handles");
    else if (flag == "--spin-us") o.spin_us = detail::parse_number<int>(v, "spin-us");
    else if (flag == "--events") o.events = detail::parse_number<int>(v, "events");
    else if (flag == "--mib") o.mib = detail::parse_number<int>(v, "mib");
    else if (flag == "--chunk-kib") o.chunk_kib = detail::parse_number<int>(v, "chunk-kib");
    else if (flag == "--window-kib") o.window_kib = detail::parse_number<int>(v, "window-kib");
    else if (flag == "--batch") o.batch = detail::parse_number<int>(v, "batch");
    else if (flag == "--item-prefix") o.item_prefix = detail::parse_number<int>(v, "item-prefix");
    else usage();
  }
  if (o.in_flight < 1 || o.connections < 1 || o.depth < 1 || o.events < 1 || o.mib < 1 || o.chunk_kib < 1 ||
      o.window_kib < 1 || o.batch < 0 || o.item_prefix < 1)
    usage();
  return o;
}

inline double seconds_between(clock::time_point a, clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

/// Closed-loop throughput bookkeeping: counts completions that land inside the timed window
/// [warm_end, end) and says whether a finished call should be replaced by a new one.
class ThroughputWindow {
 public:
  explicit ThroughputWindow(const Options& o)
      : start_(clock::now()),
        warm_end_(start_ + std::chrono::duration_cast<clock::duration>(
                               std::chrono::duration<double>(o.warmup_seconds))),
        end_(warm_end_ + std::chrono::duration_cast<clock::duration>(
                             std::chrono::duration<double>(o.seconds))) {}

  /// Records one completed call; returns true while new calls should still be issued.
  bool complete() {
    auto now = clock::now();
    if (now >= warm_end_ && now < end_) ++counted_;
    return now < end_;
  }
  double calls_per_s() const {
    return static_cast<double>(counted_) / seconds_between(warm_end_, end_);
  }

 private:
  clock::time_point start_, warm_end_, end_;
  std::uint64_t counted_ = 0;
};

/// Prints the W2 line (also used for the connection-scaling runs).
inline void print_throughput(std::string_view peer, const Options& o, double calls_per_s) {
  JsonLine line(peer, o.workload == Workload::w6 ? "W6" : "W2");
  line.field("connections", o.connections).field("in_flight", o.in_flight);
  if (o.actors > 0) line.field("actors", o.actors);
  line.field("calls_per_s", calls_per_s).print();
}

/// Prints a W1 or W3 latency line.
inline void print_latency(std::string_view peer, std::string_view workload, const Samples& s) {
  auto sum = s.summarize();
  JsonLine line(peer, workload);
  line.field("median_us", sum.median_us).field("p99_us", sum.p99_us);
  if (workload == "W1" || workload == "W7") line.field("mean_us", sum.mean_us);
  line.field("samples", static_cast<std::int64_t>(s.size())).print();
}

/// Prints the W8 line: the median over the timed publishes of events / publish's wall time.
inline void print_push(std::string_view peer, const Options& o, std::vector<double> events_per_s) {
  if (events_per_s.empty()) fail("no publishes timed");
  std::sort(events_per_s.begin(), events_per_s.end());
  const auto n = events_per_s.size();
  const double median = n % 2 ? events_per_s[n / 2] : (events_per_s[n / 2 - 1] + events_per_s[n / 2]) / 2;
  JsonLine(peer, "W8")
      .field("events", o.events)
      .field("events_per_s", median)
      .field("min_events_per_s", events_per_s.front())
      .field("max_events_per_s", events_per_s.back())
      .field("publishes", static_cast<std::int64_t>(n))
      .print();
}

/// Prints the STREAM line: the median over the timed runs of MB (10^6 bytes) written per second,
/// from the first write to the last one's answer.
inline void print_stream(std::string_view peer, const Options& o, std::vector<double> mb_per_s) {
  if (mb_per_s.empty()) fail("no runs timed");
  std::sort(mb_per_s.begin(), mb_per_s.end());
  const auto n = mb_per_s.size();
  const double median = n % 2 ? mb_per_s[n / 2] : (mb_per_s[n / 2 - 1] + mb_per_s[n / 2]) / 2;
  JsonLine(peer, "STREAM")
      .field("bytes", static_cast<std::int64_t>(o.mib) * 1024 * 1024)
      .field("chunk_bytes", static_cast<std::int64_t>(o.chunk_kib) * 1024)
      .field("window_bytes", static_cast<std::int64_t>(o.window_kib) * 1024)
      .field("mb_per_s", median)
      .field("min_mb_per_s", mb_per_s.front())
      .field("max_mb_per_s", mb_per_s.back())
      .field("runs", static_cast<std::int64_t>(n))
      .print();
}

/// Prints the W4 line. `rtt_ms` is the proxy's raw round trip, 0 when not measured.
inline void print_chain_under_latency(std::string_view peer, int depth, const Samples& s,
                                      double rtt_ms) {
  auto sum = s.summarize();
  JsonLine line(peer, "W4");
  line.field("depth", depth).field("median_ms", sum.median_us / 1e3);
  if (rtt_ms > 0) line.field("proxy_rtt_ms", rtt_ms).field("round_trips", sum.median_us / 1e3 / rtt_ms);
  line.field("samples", static_cast<std::int64_t>(s.size())).print();
}

}  // namespace bench
