// Evaluates one pipelined chain on a walkthrough server (or consumer_server) and prints it:
//   consumer_client HOST:PORT
// root.call("child", 0).attr("value") + 4 travels as one chain; the walkthrough's first child
// holds 2, so the answer is 6. Exits 0 on 6, 1 otherwise.

#include <remoteable/client.hpp>  // alone: it brings Client, Handle and Endpoint

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>

#include <cstdint>
#include <exception>
#include <iostream>

namespace {

asio::awaitable<std::int64_t> evaluate(remoteable::Endpoint endpoint) {
  auto client = co_await remoteable::Client::connect(co_await asio::this_coro::executor, endpoint);
  auto value = co_await (client.fetch("root").call("child", 0).attr("value") + 4).as<std::int64_t>();
  client.close();
  co_return value;
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc != 2) {
    std::cerr << "usage: consumer_client HOST:PORT" << std::endl;
    return 2;
  }
  asio::io_context context;
  auto result = asio::co_spawn(context, evaluate(remoteable::Endpoint::parse(argv[1])), asio::use_future);
  context.run();
  auto value = result.get();
  std::cout << "root.call(\"child\", 0).attr(\"value\") + 4 = " << value << std::endl;
  return value == 6 ? 0 : 1;
} catch (const std::exception& e) {
  std::cerr << "consumer_client: " << e.what() << std::endl;
  return 1;
}
