#pragma once
// TLS for servers and clients (OpenSSL, through asio::ssl): ServerOptions::tls, ClientOptions::tls.

#include <chrono>
#include <string>

namespace remoteable {

/// TLS on a server: every connection to it is TLS 1.2 or later. A client that does not speak
/// TLS fails its handshake and is closed; the server keeps serving the others.
struct ServerTls {
  /// PEM files: the server's certificate (chain) and its private key. Both required; a file
  /// that cannot be read, or a key that does not match, fails the Server's construction.
  std::string cert_file;
  std::string key_file;
  /// Mutual TLS: a PEM file of the CAs that client certificates must be signed by. Empty (the
  /// default): clients are not asked for a certificate.
  std::string client_ca_file;
  /// With client_ca_file: refuse a client that presents no certificate (the default). False:
  /// one is checked if given, and a client without one is let in.
  bool require_client_cert = true;
  /// A handshake not done within this is abandoned and its socket closed: a client that opens
  /// connections and sends nothing holds each for this long at most. Handshakes under way count
  /// against ServerOptions::max_connections.
  std::chrono::milliseconds handshake_timeout{10000};
};

/// TLS on a client.
struct ClientTls {
  /// Off by default (plain TCP).
  bool enabled = false;
  /// A PEM file of the CAs the server's certificate must be signed by. Empty: the system's
  /// CAs (Debian: /etc/ssl/certs).
  std::string ca_file;
  /// The name the server's certificate must be for (also sent as SNI). Empty: the endpoint's
  /// host, a DNS name or an IP address.
  std::string server_name;
  /// Check the server's certificate and name: on by default. Off, the connection is encrypted
  /// but anyone in the path can pretend to be the server; only for tests.
  bool verify = true;
  /// A client certificate and its key (PEM), for servers that ask for one (mutual TLS).
  std::string cert_file;
  std::string key_file;
};

}  // namespace remoteable
