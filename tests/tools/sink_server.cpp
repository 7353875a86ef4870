// A server for the stream tests: exports "sink" (a test::Sink), "valve" (its valve) and "pump"
// (streams to a sink the client shares), and prints "port N" once it listens; runs until killed.
// Its argument, if any, is ServerOptions::max_inflight_call_bytes.

#include <atomic>
#include <iostream>
#include <string>

#include <remoteable/stream.hpp>

#include "stream_sink.hpp"

namespace {

std::atomic<std::int64_t> pumped{0};

/// Streams `n` chunks of 64 KiB to the client's `sink`.put_gated with a 1 GiB window: a writer
/// that ignores the receiver's bounds. pumped() counts the writes that returned.
struct Pump {
  asio::awaitable<std::int64_t> flood(remoteable::Handle sink, std::int64_t n) {
    remoteable::StreamOptions options;
    options.window_bytes = std::size_t{1} << 30;
    auto w = remoteable::stream(sink, "put_gated", options);
    remoteable::Bytes data(64 * 1024, std::byte{7});
    for (std::int64_t i = 0; i < n; ++i) {
      co_await w.write(data);
      ++pumped;
    }
    co_await w.close();
    co_return n;
  }
};

std::int64_t pumped_writes() { return pumped.load(); }

}  // namespace

int main(int argc, char** argv) {
  remoteable::Registry types;
  test::Sink::register_type(types);
  types.class_<Pump>("Pump").method("flood", &Pump::flood);
  remoteable::ServerOptions options;
  if (argc > 1) options.max_inflight_call_bytes = std::stoull(argv[1]);
  remoteable::Server server{{"127.0.0.1", 0}, types, options};
  auto sink = std::make_shared<test::Sink>();
  server.export_object(sink, "sink");
  server.export_object(sink->valve, "valve");
  server.export_object(std::make_shared<Pump>(), "pump");
  server.export_function("pumped", &pumped_writes);
  std::cout << "port " << server.port() << std::endl;
  server.run();
}
