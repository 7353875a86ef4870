#pragma once
// TlsStream: a TransportStream over a TLS connection after its handshake (OpenSSL on the socket).

#include <memory>

#include "rpc/event_port.hpp"
#include "rpc/tls.hpp"
#include "rpc/transport.hpp"

namespace remoteable::detail {

/// The same contract as AsioStream, over TLS. The handshake is Asio's (asio::ssl, see tls.cpp
/// and the server's accept); then the stream drives the connection's SSL* itself, through a BIO
/// of its own on the non-blocking socket, instead of through Asio's engine (its memory BIO
/// pair, composed operations and a read that always completes through the reactor). Bytes
/// that Asio read past the handshake (a client's first request may share a segment with its
/// Finished) are taken over first.
///
/// Reads: SSL_read inline into the stream's buffer (one record's plaintext; larger reads
/// decrypt straight into the caller's buffer), OpenSSL reading ahead so that one recv brings
/// in every record there is. When OpenSSL wants more (SSL_ERROR_WANT_READ, also after a
/// post-handshake message such as a session ticket that carried no data), one Asio receive
/// into a ciphertext buffer waits for it, which the BIO hands to OpenSSL before the socket.
/// Writes complete at once and gather; one SSL_write per batch when the loop goes idle (or at
/// once past 32 KiB), partial writes continuing from the moved buffer after the socket waited.
/// Counts (ByteCounts) are of the application's bytes, before encryption; WireCounters counts
/// socket writes.
///
/// Ownership and threads: owned by its connection; lives on the KjLoop's strand (OpenSSL's
/// calls too). Destroying it cancels pending waits and closes the socket. Closing does not
/// send TLS's close_notify: the peer sees the end of the TCP stream (which it treats as the end
/// of the connection, as it does for a plain one).
class TlsStream final : public TransportStream {
 public:
  TlsStream(std::shared_ptr<KjLoop> loop, std::unique_ptr<TlsConnection> connection,
            std::shared_ptr<WireCounters> counters = nullptr, std::shared_ptr<ByteCounts> bytes = nullptr);
  ~TlsStream() noexcept(false);

  kj::Promise<size_t> tryRead(void* buffer, size_t min_bytes, size_t max_bytes) override;
  kj::Promise<void> write(const void* buffer, size_t size) override;
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override;
  kj::Promise<void> whenWriteDisconnected() override;
  void shutdownWrite() override;
  void abortRead() override;

  void close() override;
  std::size_t unsent() const override;
  std::size_t peak_unsent() const override;
  void limit_unsent(std::size_t max_bytes, std::function<void(std::size_t)> on_breach) override;
  int descriptor() const override;
  kj::Maybe<kj::Exception> failure() const override;
  void fail_reads(kj::Exception reason) override;
  void expedite(bool answer) override;

 private:
  struct Shared;
  class ReadOp;
  std::shared_ptr<Shared> shared_;
};

}  // namespace remoteable::detail
