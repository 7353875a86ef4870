// raw_asio_bench_client PORT W1|W2 [options]: the transport floor for W1 (sequential
// request/response latency) and W2 (closed-loop throughput, N requests in flight per
// connection). There is no object model here, so W3 and W4 do not apply.

#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <vector>

#include "ping_protocol.hpp"

using asio::ip::tcp;

namespace {

constexpr std::string_view peer = "raw_asio";

asio::awaitable<tcp::socket> connect(const bench::Options& o) {
  auto executor = co_await asio::this_coro::executor;
  tcp::resolver resolver(executor);
  tcp::socket socket(executor);
  co_await asio::async_connect(socket, co_await resolver.async_resolve(o.host, std::to_string(o.port), asio::use_awaitable),
                               asio::use_awaitable);
  socket.set_option(tcp::no_delay(true));
  co_return socket;
}

asio::awaitable<void> latency(const bench::Options& o) {
  auto socket = co_await connect(o);
  const int warmup = o.warmup_or(2'000), timed = o.iterations_or(20'000);
  bench::Samples samples(timed);
  bench::Message reply;
  for (int i = 0; i < warmup + timed; ++i) {
    auto t0 = bench::clock::now();
    co_await asio::async_write(socket, asio::buffer(bench::encode(i, 2)), asio::use_awaitable);
    co_await asio::async_read(socket, asio::buffer(reply), asio::use_awaitable);
    auto t1 = bench::clock::now();
    auto sum = bench::decode(reply.data()).first;
    bench::expect_value(sum, i + 2, "add");
    if (i >= warmup) samples.add(t1 - t0);
  }
  bench::print_latency(peer, "W1", samples);
}

/// One connection of the closed loop: keeps `in_flight` requests outstanding, and replaces each
/// answered request with a new one until the window closes.
asio::awaitable<void> closed_loop(const bench::Options& o, bench::ThroughputWindow& window) {
  auto socket = co_await connect(o);
  std::vector<unsigned char> out;
  auto send = [&](int count) {
    out.clear();
    for (int i = 0; i < count; ++i) {
      auto m = bench::encode(i, 1);
      out.insert(out.end(), m.begin(), m.end());
    }
    return asio::async_write(socket, asio::buffer(out), asio::use_awaitable);
  };
  int outstanding = o.in_flight;
  co_await send(outstanding);
  std::vector<unsigned char> in(64 * 1024);
  std::size_t filled = 0;
  std::int64_t checksum = 0;
  bool issuing = true;
  while (outstanding > 0) {
    filled += co_await socket.async_read_some(asio::buffer(in.data() + filled, in.size() - filled),
                                              asio::use_awaitable);
    int answered = static_cast<int>(filled / bench::message_size);
    for (int i = 0; i < answered; ++i) {
      checksum += bench::decode(in.data() + i * bench::message_size).first;
      issuing = window.complete() && issuing;
    }
    std::size_t used = answered * bench::message_size;
    std::memmove(in.data(), in.data() + used, filled - used);
    filled -= used;
    if (issuing) co_await send(answered);
    else outstanding -= answered;
  }
  bench::do_not_optimize(checksum);
}

void throughput(asio::io_context& io, const bench::Options& o) {
  bench::ThroughputWindow window(o);
  for (int c = 0; c < o.connections; ++c)
    asio::co_spawn(io, closed_loop(o, window), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
  io.run();
  bench::print_throughput(peer, o, window.calls_per_s());
}

}  // namespace

int main(int argc, char** argv) {
  auto o = bench::parse_options(argc, argv);
  asio::io_context io(1);
  switch (o.workload) {
    case bench::Workload::w1:
      asio::co_spawn(io, latency(o), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
      io.run();
      break;
    case bench::Workload::w2:
      throughput(io, o);
      break;
    default:
      bench::fail("raw_asio implements W1 and W2 only");
  }
}
