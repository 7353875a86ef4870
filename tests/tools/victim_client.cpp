// A client for failure tests: connects to 127.0.0.1:PORT, calls gate.block() (which does not
// return while the test holds the gate) and waits for it. The test kills it mid-call.

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <iostream>
#include <string>

#include <remoteable/remoteable.hpp>

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  asio::io_context context;
  auto port = static_cast<std::uint16_t>(std::stoi(argv[1]));
  asio::co_spawn(
      context,
      [](std::uint16_t port) -> asio::awaitable<void> {  // a parameter, not a capture: the frame outlives the lambda
        // One co_await per full-expression: GCC 12 destroys temporaries twice when a
        // full-expression holds two co_awaits (the endpoint and executor are named first).
        auto executor = co_await asio::this_coro::executor;
        remoteable::Endpoint endpoint{"127.0.0.1", port};
        auto client = co_await remoteable::Client::connect(executor, endpoint);
        std::cout << "connected" << std::endl;
        auto result = client.fetch("gate").call("block");
        std::cout << co_await result.as<std::int64_t>() << std::endl;
      }(port),
      asio::detached);
  context.run();
}
