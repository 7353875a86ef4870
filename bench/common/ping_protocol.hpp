#pragma once
// The raw Asio baseline's wire format, and a blocking ping-pong used to measure the delay
// proxy's round trip for W4.
//
// A request is 16 bytes: two int64 `a` and `b` in host byte order (both ends run on the same
// machine). The response is 16 bytes: `a + b` and `a` echoed back, so a client can check that
// answers come back in order.

#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <array>
#include <cstdint>
#include <cstring>
#include <string>

#include "bench_common.hpp"

namespace bench {

inline constexpr std::size_t message_size = 16;
using Message = std::array<unsigned char, message_size>;

inline Message encode(std::int64_t first, std::int64_t second) {
  Message m;
  std::memcpy(m.data(), &first, 8);
  std::memcpy(m.data() + 8, &second, 8);
  return m;
}

inline std::pair<std::int64_t, std::int64_t> decode(const unsigned char* p) {
  std::int64_t first, second;
  std::memcpy(&first, p, 8);
  std::memcpy(&second, p + 8, 8);
  return {first, second};
}

/// Median round trip of `count` sequential 16-byte pings to a raw Asio bench server at
/// host:port (normally through a delay proxy), in milliseconds. Blocking: it runs before the
/// workload, on its own socket.
inline double measure_ping_rtt_ms(const std::string& host, std::uint16_t port, int count = 20) {
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  asio::ip::tcp::resolver resolver(io);
  asio::connect(socket, resolver.resolve(host, std::to_string(port)));
  socket.set_option(asio::ip::tcp::no_delay(true));
  Samples samples(count);
  Message reply;
  for (int i = 0; i < count + 2; ++i) {  // the first two pings warm up the path
    auto t0 = clock::now();
    asio::write(socket, asio::buffer(encode(i, 1)));
    asio::read(socket, asio::buffer(reply));
    auto t1 = clock::now();
    expect_value(decode(reply.data()).first, i + 1, "ping");
    if (i >= 2) samples.add(t1 - t0);
  }
  return samples.summarize().median_us / 1e3;
}

}  // namespace bench
