#pragma once
// remoteable::ClientOptions: how a Client connects, and the limits it applies to what it receives.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include <spdlog/common.h>

namespace spdlog { class logger; }

namespace remoteable {

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
  /// How long one attempt's TCP connect may take; past it the attempt fails with a timeout error.
  std::chrono::milliseconds connect_timeout{5000};
  /// Connection attempts before connect() gives up (at least 1).
  int connect_attempts = 1;
  /// The wait after the first failed attempt; it doubles after each, up to retry_backoff_max.
  std::chrono::milliseconds retry_backoff{100};
  std::chrono::milliseconds retry_backoff_max{2000};
  /// The logger; by default one named "remoteable.client" writing to stderr.
  std::shared_ptr<spdlog::logger> logger;
  /// The logger's level. When unset it comes from the REMOTEABLE_LOG environment variable
  /// (trace, debug, info, warn, error, critical, off); when that is unset too, a default logger
  /// logs at warn and a given one keeps its level. An unknown REMOTEABLE_LOG value is ignored
  /// with a warning. Connections and failed connection attempts log at info.
  std::optional<spdlog::level::level_enum> log_level;
};

}  // namespace remoteable
