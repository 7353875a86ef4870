#pragma once
// TransportStream: what a connection needs of its byte stream, plain TCP (AsioStream) or TLS
// (TlsStream). Internal to the library.

#include <kj/async-io.h>

#include <cstddef>
#include <functional>

namespace remoteable::detail {

/// A kj::AsyncIoStream whose writes complete at once and wait inside the stream for the peer
/// (so Cap'n Proto never chains one message's write on another's), and whose waiting bytes are
/// counted and bounded.
///
/// Ownership and threads: owned by its RpcConnection; lives on the KjLoop's strand.
class TransportStream : public kj::AsyncIoStream {
 public:
  /// Closes the socket now; pending reads end with a disconnect.
  virtual void close() = 0;
  /// Bytes written but not yet taken by the socket.
  virtual std::size_t unsent() const = 0;
  /// The most bytes ever waiting in unsent().
  virtual std::size_t peak_unsent() const = 0;
  /// Bounds unsent(): a write that finds more than `max_bytes` already waiting is not queued;
  /// the stream fails (this and later writes end with a disconnect), closes the socket and
  /// calls `on_breach` once with the bytes that were waiting. So at most `max_bytes` plus one
  /// message wait. Zero: no bound.
  virtual void limit_unsent(std::size_t max_bytes, std::function<void(std::size_t)> on_breach) = 0;
  /// Why reading or writing failed, if it did (a TLS alert from the peer, a reset): what a
  /// connection that ended reports, rather than only that it ended.
  virtual kj::Maybe<kj::Exception> failure() const = 0;
  /// The socket's descriptor, or -1 once closed.
  virtual int descriptor() const = 0;
  /// Makes the pending read and every later one fail with `reason`, while writes go on. The RPC
  /// system then ends the connection with it: it sends the peer an Abort carrying the reason's
  /// description and shuts the stream down (so the peer learns why, not only that it ended).
  virtual void fail_reads(kj::Exception reason) = 0;
  /// The message just written is one the peer is likely waiting for: a stream that gathers a
  /// handler's writes into one send may send what it holds now, rather than after the rest of
  /// the handler's work. `answer`: it answers a call (a Return); otherwise it is a call, sent
  /// early only from a handler that has read input (a call made in reaction, a callback; not
  /// calls an application makes together, which stay in one send). Default: nothing.
  virtual void expedite(bool answer) { (void)answer; }

  // On the socket itself.
  void getsockopt(int level, int option, void* value, uint* length) override;
  void setsockopt(int level, int option, const void* value, uint length) override;
  void getsockname(struct sockaddr* addr, uint* length) override;
  void getpeername(struct sockaddr* addr, uint* length) override;
};

}  // namespace remoteable::detail
