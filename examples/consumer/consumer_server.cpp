// Serves a root with one child (value 2), the shape consumer_client asks for, until SIGINT or
// SIGTERM:  consumer_server [HOST:PORT]   (default 127.0.0.1:0, a free port)
// Prints "serving on HOST:PORT" once it accepts connections.

#include <remoteable/server.hpp>  // alone: it brings Registry, Server, ThreadedServer and Endpoint

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <csignal>
#include <cstdint>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <vector>

namespace {

struct Item {
  explicit Item(std::int64_t v) : value(v) {}
  std::int64_t value;
  std::vector<std::shared_ptr<Item>> children;

  std::shared_ptr<Item> child(std::int64_t index) const {
    if (index < 0 || index >= static_cast<std::int64_t>(children.size())) throw std::out_of_range("no such child");
    return children[static_cast<std::size_t>(index)];
  }
};

}  // namespace

int main(int argc, char** argv) try {
  auto endpoint = remoteable::Endpoint::parse(argc > 1 ? argv[1] : "127.0.0.1:0");
  remoteable::Registry types;
  types.class_<Item>("Item").field("value", &Item::value).method("child", &Item::child);

  asio::io_context signals_context;
  asio::signal_set signals(signals_context, SIGINT, SIGTERM);

  remoteable::ThreadedServer server{endpoint, types};
  auto root = std::make_shared<Item>(1);
  root->children.push_back(std::make_shared<Item>(2));
  server->export_object(root, "root");
  signals.async_wait([&](std::error_code, int) { server.stop(); });

  std::cout << "serving on " << endpoint.host << ':' << server.port() << std::endl;
  signals_context.run();
  return 0;
} catch (const std::exception& e) {
  std::cerr << "consumer_server: " << e.what() << std::endl;
  return 1;
}
