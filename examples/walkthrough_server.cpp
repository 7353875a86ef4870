// Serves the seed walkthrough's objects until SIGINT or SIGTERM.
//   walkthrough_server [HOST:PORT] [--metrics HOST:PORT]      (default 127.0.0.1:3000, no metrics)
// --metrics serves Prometheus metrics on http://HOST:PORT/metrics (unauthenticated: keep it on
// loopback or a private network).

#include <asio/signal_set.hpp>
#include <csignal>
#include <iostream>
#include <stdexcept>
#include <string>

#include "node.hpp"

int main(int argc, char** argv) try {
  remoteable::Endpoint endpoint = remoteable::Endpoint::parse("127.0.0.1:3000");
  remoteable::ServerOptions options;
  bool have_endpoint = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--metrics") {
      if (++i == argc) throw std::invalid_argument("--metrics needs HOST:PORT");
      options.metrics = remoteable::Endpoint::parse(argv[i]);
    } else if (!have_endpoint && arg.rfind("--", 0) != 0) {
      endpoint = remoteable::Endpoint::parse(arg);
      have_endpoint = true;
    } else {
      throw std::invalid_argument("usage: walkthrough_server [HOST:PORT] [--metrics HOST:PORT]");
    }
  }
  remoteable::Registry types;
  example::register_node(types);

  // The handlers go in before "serving" is printed: whoever waits for that line may signal at once.
  asio::io_context signals_context;
  asio::signal_set signals(signals_context, SIGINT, SIGTERM);

  remoteable::ThreadedServer server{endpoint, types, options};
  example::export_walkthrough(server.server());
  signals.async_wait([&](std::error_code, int) { server.stop(); });

  std::cout << "serving";
  for (auto& name : server->browse()) std::cout << ' ' << name;
  std::cout << " on " << endpoint.host << ':' << server.port() << std::endl;
  if (options.metrics)
    std::cout << "metrics on http://" << remoteable::Endpoint{options.metrics->host, server->metrics_port()}.to_string() << "/metrics"
              << std::endl;

  // Wait for a signal on this thread; the server runs on its own.
  signals_context.run();
  std::cout << "stopped" << std::endl;
  return 0;
} catch (const std::exception& e) {
  std::cerr << "walkthrough_server: " << e.what() << std::endl;
  return 1;
}
