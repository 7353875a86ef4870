// A server for failure tests: the walkthrough's exports plus "gate", whose block() never returns.
// Prints "port N" once it listens; runs until killed.

#include <iostream>

#include "node.hpp"
#include "test_types.hpp"

int main() {
  remoteable::Registry types;
  example::register_node(types);
  test::register_test_types(types);
  remoteable::Server server{{"127.0.0.1", 0}, types};
  example::export_walkthrough(server);
  server.export_object(std::make_shared<test::Gate>(), "gate");
  std::cout << "port " << server.port() << std::endl;
  server.run();
}
