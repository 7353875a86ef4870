// A server for the stream tests: exports "sink" (a test::Sink) and "valve" (its valve) and prints "port N" once it
// listens; runs until killed. Its argument, if any, is ServerOptions::max_inflight_call_bytes.

#include <iostream>
#include <string>

#include "stream_sink.hpp"

int main(int argc, char** argv) {
  remoteable::Registry types;
  test::Sink::register_type(types);
  remoteable::ServerOptions options;
  if (argc > 1) options.max_inflight_call_bytes = std::stoull(argv[1]);
  remoteable::Server server{{"127.0.0.1", 0}, types, options};
  auto sink = std::make_shared<test::Sink>();
  server.export_object(sink, "sink");
  server.export_object(sink->valve, "valve");
  std::cout << "port " << server.port() << std::endl;
  server.run();
}
