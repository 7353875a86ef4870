// bench_delay_proxy LISTEN_PORT TARGET_PORT DELAY_MS
//
// A TCP proxy on loopback that holds every chunk it reads for DELAY_MS before forwarding it,
// in each direction, preserving order. A request/response exchange through it therefore costs
// at least 2 * DELAY_MS, which makes round trips countable: W4 divides a chain's latency by
// the proxy's measured ping round trip.
//
// Delays overlap: a chunk read 1 ms after another leaves 1 ms after it, so pipelined traffic is
// not serialised by the proxy. Prints "READY <port>" once listening.

#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/redirect_error.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <deque>
#include <iostream>
#include <memory>
#include <vector>

#include "bench_common.hpp"

using asio::ip::tcp;
using std::chrono::steady_clock;

namespace {

struct Chunk {
  steady_clock::time_point due;
  std::vector<unsigned char> bytes;
};

/// One direction of a link: chunks read but not yet written, oldest first.
struct Direction {
  explicit Direction(const asio::any_io_executor& ex) : wake(ex) {}
  std::deque<Chunk> queue;
  asio::steady_timer wake;  // the writer sleeps on it while the queue is empty
  bool eof = false;
};

/// A proxied connection: the accepted socket, the socket to the target, and the two directions.
/// Owned jointly by its four coroutines (a reader and a writer per direction), all on the one
/// thread of the io_context, so the queues need no lock. The last coroutine to finish frees it.
struct Link {
  Link(tcp::socket c, tcp::socket s)
      : client(std::move(c)), server(std::move(s)),
        up(client.get_executor()), down(client.get_executor()) {}

  /// Tears both sides down after an error; idempotent.
  void close() {
    closed = true;
    asio::error_code ignored;
    client.close(ignored);
    server.close(ignored);
    up.wake.cancel();
    down.wake.cancel();
  }

  tcp::socket client, server;
  Direction up, down;  // up: client to server
  bool closed = false;
};

asio::awaitable<void> read_side(std::shared_ptr<Link> link, tcp::socket& from, Direction& d,
                                steady_clock::duration delay) {
  std::vector<unsigned char> buffer(64 * 1024);
  try {
    for (;;) {
      auto n = co_await from.async_read_some(asio::buffer(buffer), asio::use_awaitable);
      d.queue.push_back({steady_clock::now() + delay, {buffer.begin(), buffer.begin() + n}});
      d.wake.cancel();
    }
  } catch (const std::system_error& e) {
    // A clean end of stream is forwarded once the queue has drained; anything else kills the link.
    d.eof = true;
    d.wake.cancel();
    if (e.code() != asio::error::eof) link->close();
  }
}

asio::awaitable<void> write_side(std::shared_ptr<Link> link, tcp::socket& to, Direction& d) {
  asio::steady_timer hold(to.get_executor());
  try {
    while (!link->closed) {
      if (d.queue.empty()) {
        if (d.eof) {
          to.shutdown(tcp::socket::shutdown_send);
          co_return;
        }
        d.wake.expires_at(steady_clock::time_point::max());
        asio::error_code woken;  // cancellation is the wake-up signal
        co_await d.wake.async_wait(asio::redirect_error(asio::use_awaitable, woken));
        continue;
      }
      hold.expires_at(d.queue.front().due);
      co_await hold.async_wait(asio::use_awaitable);
      co_await asio::async_write(to, asio::buffer(d.queue.front().bytes), asio::use_awaitable);
      d.queue.pop_front();
    }
  } catch (const std::system_error&) {
    link->close();
  }
}

asio::awaitable<void> proxy(tcp::socket client, std::uint16_t target_port,
                            steady_clock::duration delay) {
  auto ex = client.get_executor();
  tcp::socket server(ex);
  co_await server.async_connect({asio::ip::make_address("127.0.0.1"), target_port},
                                asio::use_awaitable);
  client.set_option(tcp::no_delay(true));
  server.set_option(tcp::no_delay(true));
  auto link = std::make_shared<Link>(std::move(client), std::move(server));
  auto log_error = [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      std::cerr << "bench_delay_proxy: " << x.what() << '\n';
    }
  };
  asio::co_spawn(ex, read_side(link, link->client, link->up, delay), log_error);
  asio::co_spawn(ex, write_side(link, link->server, link->up), log_error);
  asio::co_spawn(ex, read_side(link, link->server, link->down, delay), log_error);
  asio::co_spawn(ex, write_side(link, link->client, link->down), log_error);
}

asio::awaitable<void> listen(tcp::acceptor acceptor, std::uint16_t target_port,
                             steady_clock::duration delay) {
  for (;;) {
    auto client = co_await acceptor.async_accept(asio::use_awaitable);
    asio::co_spawn(acceptor.get_executor(), proxy(std::move(client), target_port, delay),
                   [](std::exception_ptr e) {
                     if (!e) return;
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& x) {
                       std::cerr << "bench_delay_proxy: cannot reach target: " << x.what() << '\n';
                     }
                   });
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) bench::fail("usage: bench_delay_proxy LISTEN_PORT TARGET_PORT DELAY_MS");
  auto listen_port = static_cast<std::uint16_t>(std::stoi(argv[1]));
  auto target_port = static_cast<std::uint16_t>(std::stoi(argv[2]));
  auto delay = std::chrono::duration_cast<steady_clock::duration>(
      std::chrono::duration<double, std::milli>(std::stod(argv[3])));

  asio::io_context io(1);
  tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), listen_port});
  std::cout << "READY " << acceptor.local_endpoint().port() << std::endl;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](auto, auto) { io.stop(); });
  asio::co_spawn(io, listen(std::move(acceptor), target_port, delay), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  io.run();
}
