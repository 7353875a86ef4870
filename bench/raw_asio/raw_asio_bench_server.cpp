// raw_asio_bench_server PORT: the transport floor. Answers every 16-byte request with a 16-byte
// response (see common/ping_protocol.hpp), on one thread, with no framing beyond the fixed size.
// Prints "READY <port>" once listening.

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <iostream>
#include <vector>

#include "ping_protocol.hpp"

using asio::ip::tcp;

namespace {

/// One connection. The coroutine frame owns the socket. Everything that has arrived is answered
/// with one write, so a client that pipelines requests gets batched responses, which is what a
/// well-written hand-rolled protocol would do.
asio::awaitable<void> serve(tcp::socket socket) {
  socket.set_option(tcp::no_delay(true));
  std::vector<unsigned char> in(64 * 1024);
  std::vector<unsigned char> out;
  std::size_t filled = 0;
  for (;;) {
    filled += co_await socket.async_read_some(asio::buffer(in.data() + filled, in.size() - filled),
                                              asio::use_awaitable);
    std::size_t whole = filled / bench::message_size * bench::message_size;
    out.resize(whole);
    for (std::size_t at = 0; at < whole; at += bench::message_size) {
      auto [a, b] = bench::decode(in.data() + at);
      auto reply = bench::encode(a + b, a);
      std::memcpy(out.data() + at, reply.data(), reply.size());
    }
    std::memmove(in.data(), in.data() + whole, filled - whole);
    filled -= whole;
    co_await asio::async_write(socket, asio::buffer(out), asio::use_awaitable);
  }
}

asio::awaitable<void> listen(tcp::acceptor acceptor) {
  for (;;) {
    auto socket = co_await acceptor.async_accept(asio::use_awaitable);
    // A session ends by exception when its client hangs up; that is the normal way out.
    asio::co_spawn(acceptor.get_executor(), serve(std::move(socket)), [](std::exception_ptr) {});
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) bench::fail("usage: raw_asio_bench_server PORT");
  auto port = static_cast<unsigned short>(std::stoi(argv[1]));
  asio::io_context io(1);
  tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), port});
  std::cout << "READY " << acceptor.local_endpoint().port() << std::endl;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](auto, auto) { io.stop(); });
  asio::co_spawn(io, listen(std::move(acceptor)), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  io.run();
}
