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
class AsioStream final : public kj::AsyncIoStream {
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
  void getsockopt(int level, int option, void* value, uint* length) override;
  void setsockopt(int level, int option, const void* value, uint length) override;
  void getsockname(struct sockaddr* addr, uint* length) override;
  void getpeername(struct sockaddr* addr, uint* length) override;

  /// Closes the socket now; pending reads end with a disconnect.
  void close();
  /// Bytes written but not yet taken by the socket.
  std::size_t unsent() const;
  /// The most bytes ever waiting in unsent().
  std::size_t peak_unsent() const;
  /// Bounds unsent(): a write that finds more than `max_bytes` already waiting is not queued;
  /// the stream fails (this and later writes end with a disconnect), closes the socket and
  /// calls `on_breach` once with the bytes that were waiting. So at most `max_bytes` plus one
  /// message wait. Zero: no bound.
  void limit_unsent(std::size_t max_bytes, std::function<void(std::size_t)> on_breach);

 private:
  struct Shared;
  class ReadOp;
  std::shared_ptr<Shared> shared_;
};

}  // namespace remoteable::detail
