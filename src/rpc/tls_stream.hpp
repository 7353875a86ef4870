#pragma once
// TlsStream: a TransportStream over a TLS connection (asio::ssl), after its handshake.

#include <memory>

#include "rpc/event_port.hpp"
#include "rpc/tls.hpp"
#include "rpc/transport.hpp"

namespace remoteable::detail {

/// Reads go through a buffer filled by one asio::ssl async read at a time; writes complete at
/// once, gather in a buffer and go out in one async write when the loop goes idle (or at once
/// past 32 KiB), one write in flight at a time while the next gathers: the same contract as
/// AsioStream, with Asio's TLS engine in place of the non-blocking syscalls.
///
/// Ownership and threads: owned by its connection; lives on the KjLoop's strand. Destroying it
/// cancels pending operations and closes the socket. Closing does not send TLS's close_notify:
/// the peer sees the end of the TCP stream (which it treats as the end of the connection, as it
/// does for a plain one).
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

 private:
  struct Shared;
  class ReadOp;
  std::shared_ptr<Shared> shared_;
};

}  // namespace remoteable::detail
