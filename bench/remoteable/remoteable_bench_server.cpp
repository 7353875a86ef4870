// remoteable_bench_server PORT: the benchmark's object model served by remoteable. Exports
// "root" (a Node whose value is 38) and "add" (a free function). Prints "READY <port>" once
// listening.

#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "bench_common.hpp"
#include "remoteable.hpp"

namespace {

/// A tree node. child(i) keeps the child it makes, so the same i gives the same object; the
/// children map is only touched on the node's actor strand, like all of its state.
struct Node {
  explicit Node(std::int64_t v) : value(v) {}

  std::shared_ptr<Node> child(std::int64_t i) {
    auto& kept = children_[i];
    if (!kept) kept = std::make_shared<Node>(value + i);
    return kept;
  }

  std::int64_t value;

 private:
  std::map<std::int64_t, std::shared_ptr<Node>> children_;
};

std::int64_t add(std::int64_t a, std::int64_t b) { return a + b; }

/// Exports `add` with Server::export_function where the library has it, and otherwise as a
/// function object boxed by export_value (the same object export_function makes).
/// TODO: keep only export_function once it is in every build this bench runs against.
template <class S>
void export_add(S& server, const remoteable::Registry& types) {
  if constexpr (requires { server.export_function("add", &add); })
    server.export_function("add", &add);
  else
    server.export_value(types.function("add", &add), "add");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) bench::fail("usage: remoteable_bench_server PORT");
  auto port = static_cast<std::uint16_t>(std::stoi(argv[1]));

  remoteable::Registry types;
  types.class_<Node>("Node").field("value", &Node::value).method("child", &Node::child);

  remoteable::Server server{{"127.0.0.1", port}, types};
  server.export_object(std::make_shared<Node>(38), "root");
  export_add(server, types);
  std::cout << "READY " << server.port() << std::endl;
  server.run();
}
