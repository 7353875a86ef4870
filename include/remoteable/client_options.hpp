#pragma once
// remoteable::ClientOptions: how a Client connects, and the limits it applies to what it receives.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <spdlog/common.h>

#include <remoteable/tls.hpp>

namespace spdlog { class logger; }

namespace remoteable {

class Registry;

struct ClientOptions {
  /// Record every message in `Client::wire_trace()`. Off by default: it costs an allocation
  /// per message.
  bool trace_wire = false;
  /// The largest message accepted from the server, in 8-byte words.
  std::uint64_t max_message_words = 64 * 1024 * 1024;
  /// How many lists or maps deep a value may nest (1 to 1000), both ways, counted in value levels
  /// as ServerOptions::max_nesting counts them ([[1]] is 2 deep): a deeper value to send fails
  /// with a value error before anything is sent, and a deeper value from the server fails the
  /// evaluation that received it with a value error.
  int max_nesting = 64;
  /// Pushes (`h.call("f", x)` made and dropped without awaiting, so that its handle is gone
  /// before the step is sent) whose answers have not come back, at most (at least 1). More
  /// wait, in order, and so does what is made after them, until answers come: a peer that
  /// answers slowly slows the sender instead of being flooded past its limits. A push's answer
  /// is awaited, so it is never cancelled (a step whose handle is dropped after it was sent is
  /// cancelled, as before). Past 64 windows waiting, a new step fails at once (its handle
  /// reports overloaded).
  std::size_t push_window = 1000;
  /// Elements per batch of an iteration (Handle::iterate) unless its IterateOptions say
  /// otherwise (at least 1; the server clamps it to its ServerOptions::max_iterate_batch). One
  /// batch is fetched ahead while the caller consumes the one before.
  std::uint32_t iterate_batch = 4096;
  /// How long one attempt's TCP connect may take, and then its TLS handshake (if on), and then
  /// the protocol check; past it the attempt fails with a timeout error.
  std::chrono::milliseconds connect_timeout{5000};
  /// How long the server may leave what the client sent unacknowledged (a host or link that is
  /// gone) before the connection counts as lost: its pending and later calls fail with a
  /// disconnected error, and so do the calls others make through its handles. Idle, the
  /// connection is probed after it (TCP keepalive). Zero: the system's defaults (minutes).
  std::chrono::milliseconds peer_timeout{30'000};
  /// Connection attempts before connect() gives up (at least 1).
  int connect_attempts = 1;
  /// The wait after the first failed attempt; it doubles after each, up to retry_backoff_max.
  std::chrono::milliseconds retry_backoff{100};
  std::chrono::milliseconds retry_backoff_max{2000};
  /// The logger. By default the one registered with spdlog under "remoteable.client": an
  /// application's own, if it registered one under that name before, or else one the library
  /// makes and registers on first use, writing to stderr, with spdlog's level (info unless
  /// the application changed it: spdlog::set_level, spdlog::cfg::load_env_levels) and pattern; it follows
  /// spdlog::set_level from then on. All clients of the process share it.
  std::shared_ptr<spdlog::logger> logger;
  /// A level of this client's own. For the default logger this makes a private copy (same name
  /// and sinks, not registered, not changed by spdlog::set_level); a given logger is set to it.
  /// When unset: the REMOTEABLE_LOG environment variable (trace, debug, info, warn, error,
  /// critical, off), if set, is applied to a given logger, and to the default one when the
  /// library makes it; otherwise the logger keeps its level. An unknown REMOTEABLE_LOG value is
  /// ignored with a warning.
  /// Lines: connections and failed connection attempts at info.
  std::optional<spdlog::level::level_enum> log_level;
  /// TLS (see ClientTls): off by default. On, the handshake is part of connecting and has the
  /// same connect_timeout; a certificate that is not accepted fails with a security error,
  /// which is not retried.
  ClientTls tls;
  /// A token for a server with authentication (ServerOptions::auth): connect() presents it
  /// (Registry.authenticate) and uses the registry it is given. A refused token fails connect()
  /// with a security error saying so, which is not retried. Unset (the default): none is sent,
  /// and such a server answers every operation with a security error ("authenticate first").
  std::optional<std::string> token;
  /// The types of the objects this client shares with its server (Client::share): set, the
  /// client serves the calls its server makes on them, on actors as a server does (one
  /// operation at a time each, on a pool of `actor_threads` threads), without the application
  /// polling anything. The registry must outlive the client's connections. Null (the default):
  /// the client shares nothing and links no server code.
  std::shared_ptr<const Registry> registry;
  /// Bytes of call messages the server may have in flight to this client's shared objects
  /// (received, not yet answered: a stream's writes to a client sink among them). Past it the
  /// client stops reading from the connection until calls end: back-pressure, not an error
  /// (Cap'n Proto's flow limit), as ServerOptions::max_inflight_call_bytes. Zero turns it off.
  std::size_t max_inflight_call_bytes = 64 * 1024 * 1024;
  /// Threads that run the calls on the objects this client shares (at least 1).
  unsigned actor_threads = 1;
};

}  // namespace remoteable
