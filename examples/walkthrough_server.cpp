// Serves the seed walkthrough's objects until SIGINT or SIGTERM.
//   walkthrough_server [HOST:PORT]      (default 127.0.0.1:3000)

#include <asio/signal_set.hpp>
#include <csignal>
#include <iostream>

#include "node.hpp"

int main(int argc, char** argv) try {
  auto endpoint = remoteable::Endpoint::parse(argc > 1 ? argv[1] : "127.0.0.1:3000");
  remoteable::Registry types;
  example::register_node(types);

  // The handlers go in before "serving" is printed: whoever waits for that line may signal at once.
  asio::io_context signals_context;
  asio::signal_set signals(signals_context, SIGINT, SIGTERM);

  remoteable::ThreadedServer server{endpoint, types};
  example::export_walkthrough(server.server());
  signals.async_wait([&](std::error_code, int) { server.stop(); });

  std::cout << "serving";
  for (auto& name : server->browse()) std::cout << ' ' << name;
  std::cout << " on " << endpoint.host << ':' << server.port() << std::endl;

  // Wait for a signal on this thread; the server runs on its own.
  signals_context.run();
  std::cout << "stopped" << std::endl;
  return 0;
} catch (const std::exception& e) {
  std::cerr << "walkthrough_server: " << e.what() << std::endl;
  return 1;
}
