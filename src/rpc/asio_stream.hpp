#pragma once
// AsioStream: a kj::AsyncIoStream over a non-blocking socket registered with Asio.

#include <kj/async-io.h>

#include <asio/bind_executor.hpp>
#include <asio/ip/tcp.hpp>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "rpc/event_port.hpp"
#include "rpc/transport.hpp"

namespace remoteable::detail {

class WireCounters;

/// Bytes that streams took from and gave to their sockets (a server's metrics count all its
/// connections in one). Added to on the streams' loop, read from any thread.
struct ByteCounts {
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> sent{0};
};

/// Reads and writes use non-blocking syscalls. When the socket has nothing to read, one Asio
/// receive into the stream's own buffer waits for it, so Asio never holds a pointer into KJ's
/// buffers and a promise KJ drops cancels nothing. Reads are buffered (one recv brings in
/// several messages); writes complete at once and are gathered into one sendmsg, sent when the
/// loop goes idle (KjLoop::at_idle), or at once past 32 KiB. What the peer has not taken yet
/// waits in the stream (see unsent()).
///
/// Ownership and threads: owned by its connection; lives on the KjLoop's strand. Destroying it
/// cancels pending waits and closes the socket.
class AsioStream final : public TransportStream {
 public:
  /// `counters`, if given, counts the socket writes; `bytes`, if given, the bytes read and written.
  AsioStream(std::shared_ptr<KjLoop> loop, asio::ip::tcp::socket socket, std::shared_ptr<WireCounters> counters = nullptr,
             std::shared_ptr<ByteCounts> bytes = nullptr);
  ~AsioStream() noexcept(false);

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
