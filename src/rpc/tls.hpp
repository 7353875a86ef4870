#pragma once
// TLS set-up for both sides (OpenSSL through asio::ssl): contexts from the options, the
// handshake's errors in words, and the connected socket a connection is opened on.

#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/stream.hpp>
#include <kj/memory.h>

#include <chrono>
#include <memory>
#include <string>
#include <system_error>
#include <variant>

#include <remoteable/tls.hpp>

#include "rpc/transport.hpp"

namespace remoteable::detail {

class KjLoop;
class WireCounters;
struct ByteCounts;

using TlsSocket = asio::ssl::stream<asio::ip::tcp::socket>;

/// A TLS connection after its handshake, with the context it needs alive.
struct TlsConnection {
  TlsConnection(std::shared_ptr<asio::ssl::context> c, asio::ip::tcp::socket s)
      : context(std::move(c)), stream(std::move(s), *context) {}
  std::shared_ptr<asio::ssl::context> context;
  TlsSocket stream;
};

/// A connected socket, plain or TLS (handshake done), not yet a stream.
using Connected = std::variant<asio::ip::tcp::socket, std::unique_ptr<TlsConnection>>;

/// The TCP socket under `connected`.
inline asio::ip::tcp::socket& tcp_socket(Connected& connected) {
  if (auto* plain = std::get_if<asio::ip::tcp::socket>(&connected)) return *plain;
  return std::get<std::unique_ptr<TlsConnection>>(connected)->stream.next_layer();
}

/// Bounds how long the peer may leave what was sent unacknowledged (TCP_USER_TIMEOUT), and
/// probes an idle connection after `timeout` (keepalive, three probes `timeout`/3 apart, at
/// least a second): a peer whose host or link is gone is noticed within about that, and the
/// connection ends as lost. Zero: the system's defaults (minutes). Errors are ignored (a socket
/// that cannot take them keeps the defaults).
void set_peer_timeout(asio::ip::tcp::socket& socket, std::chrono::milliseconds timeout);

/// The stream a connection reads and writes `connected` through, on `loop`.
/// `bytes`, if given, counts the bytes through the socket (over TLS: the application's bytes, before encryption).
kj::Own<TransportStream> open_stream(std::shared_ptr<KjLoop> loop, Connected connected,
                                     std::shared_ptr<WireCounters> counters, std::shared_ptr<ByteCounts> bytes = nullptr);

/// The server's context: certificate, key, and for mutual TLS the client CAs. Throws
/// std::invalid_argument naming the file and OpenSSL's reason.
std::shared_ptr<asio::ssl::context> server_context(const ServerTls& options);
/// The client's context: the CAs to trust and the client's own certificate, if any. Throws
/// std::invalid_argument naming the file and OpenSSL's reason.
std::shared_ptr<asio::ssl::context> client_context(const ClientTls& options);
/// Makes `stream` check that the server's certificate is for `name` (a DNS name or an IP
/// address) and sends it as SNI (names only). Before the handshake.
void expect_server_name(TlsSocket& stream, const std::string& name);

/// Why a handshake failed, in words: the certificate check's verdict when it failed (unknown
/// CA, expired, host-name mismatch...), a peer that does not speak TLS, or OpenSSL's reason.
/// `server`: said by the server about a client (else by a client about its server).
std::string handshake_failure(TlsSocket& stream, const std::error_code& error, bool server);

/// The subject of the peer's certificate (its common name, else the whole subject), or empty
/// when it presented none.
std::string peer_subject(TlsSocket& stream);

}  // namespace remoteable::detail
