#pragma once
// remoteable::Endpoint: where a server listens and a client connects.

#include <cstdint>
#include <string>
#include <string_view>

namespace remoteable {

/// A TCP endpoint. Port 0 asks the server for any free port (see Server::port()).
struct Endpoint {
  std::string host = "127.0.0.1";
  std::uint16_t port = 3000;

  /// Parses "HOST:PORT", "PORT" or "[V6ADDR]:PORT". Throws std::invalid_argument on bad input.
  static Endpoint parse(std::string_view text);
  std::string to_string() const;
};

/// What one connection has put on and taken off the wire, counted at the message stream.
struct WireStats {
  std::uint64_t messages_sent = 0;
  std::uint64_t messages_received = 0;
  std::uint64_t calls_sent = 0;         ///< Cap'n Proto Call messages written
  std::uint64_t returns_received = 0;   ///< Cap'n Proto Return messages read
  std::uint64_t writes = 0;             ///< socket writes (one may carry several messages)
};

/// One message on the wire, in the order the connection saw it (with tracing on).
struct WireEvent {
  bool outgoing;
  std::string kind;  ///< the rpc.capnp Message union member: "call", "return", "finish", ...
};

}  // namespace remoteable
