// raw_capnp_bench_client PORT W1|W2|W3|W4|W7|W8|STREAM [options]: the raw Cap'n Proto baseline.
//
// W1: sequential Bench.add calls. W2: closed loop, --in-flight calls per connection over
// --connections EzRpcClients sharing this thread's event loop. W3/W4: the chain
// `root.child(0)...child(0).getAttr("value")`, every call pipelined on the previous one's
// promised capability, so the whole chain is one round trip. Cap'n Proto cannot pipeline on
// an Int64 result, so the final `+ 4` is done here on the client after the round trip; the
// sum must be 42.
// W7: sequential Bench.ask(sink, i), where the server calls sink.triple(i) back once before it
// answers; the answer must be 3i. W8: Bench.publish(sink, n): the server sends n
// sink.onEvent(i) calls (at most 1,000 unanswered), then awaits sink.count(); events/s over
// the publish, which must have delivered all n in order. The sink is one capability made once
// and passed as a parameter to every call; this thread's event loop serves its calls while it
// waits for the answer.
// STREAM: --mib MiB (256) written to the server's ByteSink in --chunk-kib chunks (64 KiB) with
// at most --window-kib (1 MiB) of writes unanswered, counted here as remoteable's writer counts
// them (each write's message size, released by its answer): ByteSink.write is `-> stream`, sent
// as a plain request so that its answer can be counted (Cap'n Proto's own streaming window is
// the socket's send buffer, which cannot be set to 1 MiB). 1 + 5 runs; MB/s from the first
// write to the last answer; take() must match. --native-flow 1 instead uses Cap'n Proto's
// StreamingRequest and its own window (printed as peer raw_capnp_native).

#include <capnp/ez-rpc.h>
#include <cstring>
#include <kj/async.h>
#include <string>
#include <vector>

#include "bench.capnp.h"
#include "bench_common.hpp"
#include "ping_protocol.hpp"

namespace {

constexpr std::string_view peer = "raw_capnp";

std::string address(const bench::Options& o) { return o.host + ":" + std::to_string(o.port); }

void latency(const bench::Options& o) {
  capnp::EzRpcClient client(address(o));
  auto& ws = client.getWaitScope();
  auto calc = client.getMain<Bench>();
  const int warmup = o.warmup_or(2'000), timed = o.iterations_or(20'000);
  bench::Samples samples(timed);
  for (int i = 0; i < warmup + timed; ++i) {
    auto t0 = bench::clock::now();
    auto request = calc.addRequest();
    request.setA(i);
    request.setB(2);
    auto sum = request.send().wait(ws).getSum();
    auto t1 = bench::clock::now();
    bench::expect_value(sum, i + 2, "add");
    if (i >= warmup) samples.add(t1 - t0);
  }
  bench::print_latency(peer, "W1", samples);
}

/// One slot of the closed loop: a call that, when answered, is replaced by the next one until
/// the window closes. KJ collapses the resulting promise chain, so this does not grow.
kj::Promise<void> lane(Bench::Client calc, bench::ThroughputWindow& window, std::int64_t& checksum) {
  auto request = calc.addRequest();
  request.setA(1);
  request.setB(2);
  return request.send().then(
      [calc, &window, &checksum](capnp::Response<Bench::AddResults>&& response) mutable
      -> kj::Promise<void> {
        checksum += response.getSum();
        if (window.complete()) return lane(kj::mv(calc), window, checksum);
        return kj::READY_NOW;
      });
}

void throughput(const bench::Options& o) {
  // EzRpcClients made on one thread share its event loop: one thread drives every connection.
  std::vector<kj::Own<capnp::EzRpcClient>> clients;
  for (int c = 0; c < o.connections; ++c)
    clients.push_back(kj::heap<capnp::EzRpcClient>(address(o)));
  auto& ws = clients.front()->getWaitScope();
  std::int64_t checksum = 0;
  bench::ThroughputWindow window(o);
  auto lanes = kj::heapArrayBuilder<kj::Promise<void>>(o.connections * o.in_flight);
  for (auto& client : clients) {
    auto calc = client->getMain<Bench>();
    for (int i = 0; i < o.in_flight; ++i) lanes.add(lane(calc, window, checksum));
  }
  kj::joinPromises(lanes.finish()).wait(ws);
  bench::do_not_optimize(checksum);
  bench::print_throughput(peer, o, window.calls_per_s());
}

/// `root.child(0)` `depth` times, then `.getAttr("value")`: sent as one batch of pipelined calls.
kj::Promise<std::int64_t> chain(Node::Client root, int depth) {
  Node::Client node = kj::mv(root);
  for (int d = 0; d < depth; ++d) {
    auto request = node.childRequest();
    request.setI(0);
    node = request.send().getNode();
  }
  auto request = node.getAttrRequest();
  request.setName("value");
  return request.send().then(
      [](capnp::Response<Node::GetAttrResults>&& r) { return r.getValue(); });
}

void chain_latency(const bench::Options& o) {
  const bool w4 = o.workload == bench::Workload::w4;
  double rtt_ms = w4 && o.rtt_port ? bench::measure_ping_rtt_ms(o.host, o.rtt_port) : 0;
  capnp::EzRpcClient client(address(o));
  auto& ws = client.getWaitScope();
  Node::Client root = client.getMain<Bench>().rootRequest().send().getNode();
  const int warmup = o.warmup_or(w4 ? 5 : 1'000), timed = o.iterations_or(w4 ? 40 : 10'000);
  bench::Samples samples(timed);
  for (int i = 0; i < warmup + timed; ++i) {
    auto t0 = bench::clock::now();
    std::int64_t result = chain(root, o.depth).wait(ws) + 4;
    auto t1 = bench::clock::now();
    bench::expect_value(result, 42, "root.child(0).value + 4");
    if (i >= warmup) samples.add(t1 - t0);
  }
  if (w4) bench::print_chain_under_latency(peer, o.depth, samples, rtt_ms);
  else bench::print_latency(peer, "W3", samples);
}

/// The client's object the server calls back (W7, W8). Runs on this thread's event loop.
class SinkImpl final : public Sink::Server {
 public:
  void reset() { received = 0, next = 0, in_order = true; }
  std::uint64_t received = 0;
  std::int64_t next = 0;
  bool in_order = true;

 protected:
  kj::Promise<void> onEvent(OnEventContext context) override {
    auto i = context.getParams().getI();
    if (i != next) in_order = false;
    next = i + 1;
    ++received;
    return kj::READY_NOW;
  }
  kj::Promise<void> triple(TripleContext context) override {
    context.getResults().setY(3 * context.getParams().getX());
    return kj::READY_NOW;
  }
  kj::Promise<void> count(CountContext context) override {
    context.getResults().setN(received);
    return kj::READY_NOW;
  }
};

void callback_latency(const bench::Options& o) {
  capnp::EzRpcClient client(address(o));
  auto& ws = client.getWaitScope();
  auto bench_cap = client.getMain<Bench>();
  Sink::Client sink = kj::heap<SinkImpl>();
  const int warmup = o.warmup_or(2'000), timed = o.iterations_or(20'000);
  bench::Samples samples(timed);
  for (int i = 0; i < warmup + timed; ++i) {
    auto t0 = bench::clock::now();
    auto request = bench_cap.askRequest();
    request.setSink(sink);
    request.setX(i);
    auto y = request.send().wait(ws).getY();
    auto t1 = bench::clock::now();
    bench::expect_value(y, 3 * static_cast<std::int64_t>(i), "ask(sink, i)");
    if (i >= warmup) samples.add(t1 - t0);
  }
  bench::print_latency(peer, "W7", samples);
}

void push_throughput(const bench::Options& o) {
  capnp::EzRpcClient client(address(o));
  auto& ws = client.getWaitScope();
  auto bench_cap = client.getMain<Bench>();
  auto owned = kj::heap<SinkImpl>();
  SinkImpl& impl = *owned;
  Sink::Client sink = kj::mv(owned);
  const int warmup = o.warmup_or(1), timed = o.iterations_or(5);
  std::vector<double> rates;
  for (int r = 0; r < warmup + timed; ++r) {
    impl.reset();
    auto t0 = bench::clock::now();
    auto request = bench_cap.publishRequest();
    request.setSink(sink);
    request.setN(o.events);
    auto count = request.send().wait(ws).getCount();
    auto t1 = bench::clock::now();
    bench::expect_value(static_cast<std::int64_t>(count), o.events, "publish(sink, n): sink.count()");
    bench::expect_value(static_cast<std::int64_t>(impl.received), o.events, "events received");
    bench::expect_value(impl.in_order ? 1 : 0, 1, "events in order");
    if (r >= warmup) rates.push_back(o.events / bench::seconds_between(t0, t1));
  }
  bench::print_push(peer, o, rates);
}

void stream_throughput(const bench::Options& o, bool native) {
  capnp::EzRpcClient client(address(o));
  auto& ws = client.getWaitScope();
  ByteSink::Client sink = client.getMain<Bench>().byteSinkRequest().send().getSink();
  const auto chunk = static_cast<std::size_t>(o.chunk_kib) * 1024;
  const auto window = static_cast<std::size_t>(o.window_kib) * 1024;
  const auto writes = static_cast<std::int64_t>(o.mib) * 1024 * 1024 / static_cast<std::int64_t>(chunk);
  std::vector<kj::byte> data(chunk);
  for (std::size_t i = 0; i < chunk; ++i) data[i] = static_cast<kj::byte>(i * 131);
  sink.takeRequest().send().wait(ws);
  const int warmup = o.warmup_or(1), timed = o.iterations_or(5);
  std::vector<double> rates;
  struct Flight {
    std::size_t bytes = 0;
    kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> room;
  } flight;
  struct Errors final : kj::TaskSet::ErrorHandler {
    void taskFailed(kj::Exception&& e) override { bench::fail(e.getDescription().cStr()); }
  } errors;
  kj::TaskSet answers(errors);
  for (int r = 0; r < warmup + timed; ++r) {
    auto t0 = bench::clock::now();
    for (std::int64_t i = 0; i < writes; ++i) {
      if (native) {
        auto request = sink.writeRequest();
        std::memcpy(request.initData(static_cast<unsigned>(chunk)).begin(), data.data(), chunk);
        request.send().wait(ws);
        continue;
      }
      auto request = sink.typelessRequest(capnp::typeId<ByteSink>(), 0, nullptr);
      auto params = request.initAs<ByteSink::WriteParams>();
      std::memcpy(params.initData(static_cast<unsigned>(chunk)).begin(), data.data(), chunk);
      auto bytes = params.asReader().totalSize().wordCount * sizeof(capnp::word);
      while (flight.bytes != 0 && flight.bytes + bytes > window) {
        auto paf = kj::newPromiseAndFulfiller<void>();
        flight.room = kj::mv(paf.fulfiller);
        paf.promise.wait(ws);
      }
      flight.bytes += bytes;
      answers.add(request.send().then([&flight, bytes](auto&&) {
        flight.bytes -= bytes;
        KJ_IF_MAYBE(room, flight.room) {
          (*room)->fulfill();
          flight.room = nullptr;
        }
      }));
    }
    answers.onEmpty().wait(ws);
    auto taken = sink.takeRequest().send().wait(ws).getBytes();  // (native: after every write)
    auto t1 = bench::clock::now();
    bench::expect_value(static_cast<std::int64_t>(taken), writes * static_cast<std::int64_t>(chunk), "ByteSink.take()");
    if (r >= warmup) rates.push_back(static_cast<double>(writes * static_cast<std::int64_t>(chunk)) / 1e6 / bench::seconds_between(t0, t1));
  }
  bench::print_stream(native ? "raw_capnp_native" : peer, o, rates);
}

}  // namespace

int main(int argc, char** argv) {
  // --native-flow 1 (STREAM only): Cap'n Proto's own streaming flow control. Taken out before
  // the common options are parsed.
  bool native = false;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--native-flow" && i + 1 < argc) native = std::string_view(argv[++i]) == "1";
    else args.push_back(argv[i]);
  }
  argc = static_cast<int>(args.size());
  argv = args.data();
  auto o = bench::parse_options(argc, argv);
  switch (o.workload) {
    case bench::Workload::w1: latency(o); break;
    case bench::Workload::w2: throughput(o); break;
    case bench::Workload::w3:
    case bench::Workload::w4: chain_latency(o); break;
    case bench::Workload::w7: callback_latency(o); break;
    case bench::Workload::w8: push_throughput(o); break;
    case bench::Workload::stream: stream_throughput(o, native); break;
    default: bench::fail("raw_capnp_bench_client: W1-W4, W7, W8 and STREAM only");
  }
}
