#pragma once
// Authentication and per-principal authority on a server: ServerOptions::auth.

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>

namespace remoteable {

/// What one principal may do on a server (ServerAuth::authorities). The default is everything
/// an unauthenticated server allows today.
struct Authority {
  /// The exports it can see (browse lists only these) and fetch, detach or attach under, by
  /// name; unset (the default): every export, the ones clients attach included. A name outside
  /// the set is answered as if there were no such export.
  std::optional<std::set<std::string, std::less<>>> exports;
  /// Whether it may store values (Registry.store), attach names, and detach names (still only
  /// those its own connection attached, or any if ServerOptions::may_detach_any allows).
  bool may_store = true;
  bool may_attach = true;
  bool may_detach = true;
};

/// Authentication on a server. With it, a new connection's bootstrap registry grants nothing:
/// every operation but `version` fails with a security error ("authenticate first") until the
/// client calls Registry.authenticate with a token (ClientOptions::token), which answers with a
/// registry scoped to the token's principal. A client whose TLS certificate is mapped to a
/// principal (`certificates`) is that principal from the start: its bootstrap registry is
/// scoped already, and `authenticate("")` returns the same.
struct ServerAuth {
  /// Token → principal name (several tokens may name one principal). Tokens are compared in
  /// constant time, as SHA-256 digests. A token must be non-empty and at most max_token_bytes
  /// long, a principal name non-empty; a bad entry fails the Server's construction with
  /// std::invalid_argument.
  std::map<std::string, std::string> tokens;
  /// Mutual TLS (ServerTls::client_ca_file): a verified client certificate's common name (or,
  /// without one, its subject line) → principal name.
  std::map<std::string, std::string> certificates;
  /// Principal name → what it may do. A principal not listed gets Authority{} (everything).
  std::map<std::string, Authority, std::less<>> authorities;
  /// A connection that has not authenticated within this is closed (checked by the sweep,
  /// ServerOptions::sweep_interval).
  std::chrono::milliseconds timeout{10000};
  /// Failed attempts allowed per client address (the IP, any port) within failure_window; past
  /// them, every attempt from that address within the window is refused without checking the
  /// token, and one warning is logged per window. Each failure is logged at warn.
  std::size_t max_failures = 5;
  std::chrono::milliseconds failure_window{std::chrono::minutes(1)};
  /// Addresses whose failures are remembered at most; past it the oldest record is dropped (an
  /// attacker rotating addresses cannot grow the table).
  std::size_t max_tracked_addresses = 4096;
  /// A longer token is refused without being hashed.
  std::size_t max_token_bytes = 1024;
};

}  // namespace remoteable
