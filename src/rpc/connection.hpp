#pragma once
// RpcConnection: one Cap'n Proto two-party RPC connection over an Asio TCP socket.
// Internal to the library (it shows Cap'n Proto types).

#include <capnp/rpc-twoparty.h>
#include <capnp/rpc.h>
#include <capnp/serialize-async.h>

#include <asio/ip/tcp.hpp>
#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "rpc/tls.hpp"
#include "rpc/transport.hpp"
#include <remoteable/error.hpp>
#include <remoteable/endpoint.hpp>
#include "rpc/event_port.hpp"

namespace remoteable::detail {

/// Message counts of one connection, readable from any thread.
///
/// Counters are atomics; the optional trace is guarded by a mutex because it is read by the
/// user's thread while the loop's strand appends to it (a strand cannot serve a synchronous read).
class WireCounters {
 public:
  explicit WireCounters(bool trace) : tracing_(trace) {}
  void record(bool outgoing, int which);
  void count_write() { writes_.fetch_add(1, std::memory_order_relaxed); }
  WireStats stats() const;
  std::vector<WireEvent> trace() const;
  void clear_trace();

 private:
  std::atomic<std::uint64_t> sent_{0}, received_{0}, calls_{0}, returns_{0}, writes_{0};
  const bool tracing_;
  mutable std::mutex trace_mutex_;
  std::vector<WireEvent> trace_;
};

/// A capnp::MessageStream that counts (and optionally traces) what passes through it.
class CountingMessageStream final : public capnp::MessageStream {
 public:
  CountingMessageStream(TransportStream& stream, std::shared_ptr<WireCounters> counters)
      : stream_(stream), inner_(stream), counters_(std::move(counters)) {}

  kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> tryReadMessage(
      kj::ArrayPtr<kj::AutoCloseFd> fd_space, capnp::ReaderOptions options,
      kj::ArrayPtr<capnp::word> scratch) override;
  kj::Promise<void> writeMessage(kj::ArrayPtr<const int> fds,
                                 kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) override;
  kj::Promise<void> writeMessages(
      kj::ArrayPtr<kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>>> messages) override;
  kj::Maybe<int> getSendBufferSize() override { return inner_.getSendBufferSize(); }
  kj::Promise<void> end() override { return inner_.end(); }

 private:
  /// Counts the message; returns its kind (-1: unknown).
  int count_outgoing(kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments);
  TransportStream& stream_;
  capnp::AsyncIoMessageStream inner_;
  std::shared_ptr<WireCounters> counters_;
};

/// Tells a peer that gets no RPC connection why: writes it one Abort message carrying `reason`
/// (what its calls then fail with), if the socket takes it at once, and shuts the socket down.
/// Plain TCP only (a TLS peer gets nothing). The caller closes the socket.
void refuse(Connected& connected, const RemoteError& reason);

/// One two-party RPC connection: byte stream (plain or TLS), message stream, vat network and RPC
/// system.
///
/// Ownership and threads: owned by the server's connection table or by a client; lives on its
/// KjLoop's strand and must be created and destroyed there. Destruction tears down in the order
/// RPC system → network → message stream → socket.
class RpcConnection {
 public:
  /// `bootstrap` is what the peer gets as our bootstrap capability (servers); null for clients.
  RpcConnection(std::shared_ptr<KjLoop> loop, kj::Own<TransportStream> stream, capnp::rpc::twoparty::Side side,
                kj::Maybe<capnp::Capability::Client> bootstrap, capnp::ReaderOptions options,
                std::shared_ptr<WireCounters> counters);
  ~RpcConnection();

  /// The peer's bootstrap capability (client side).
  capnp::Capability::Client bootstrap();
  /// Resolves when the peer disconnects.
  kj::Promise<void> on_disconnect() { return network_->onDisconnect(); }
  const std::shared_ptr<WireCounters>& counters() const { return counters_; }
  /// Bytes of outgoing messages waiting for the peer to read them.
  std::size_t queued_bytes() { return network_->getCurrentQueueSize() + stream_->unsent(); }
  /// Closes the socket: the peer sees a disconnect, and on_disconnect() resolves.
  void abort() { stream_->close(); }
  /// Ends the connection with `reason`: the peer is sent an Abort carrying its description, then
  /// the stream is shut down and on_disconnect() resolves (see TransportStream::fail_reads).
  void end_with(kj::Exception reason) { stream_->fail_reads(kj::mv(reason)); }
  /// Why the byte stream failed, if it did.
  kj::Maybe<kj::Exception> failure() const { return stream_->failure(); }
  /// The most bytes ever waiting in the stream for the peer.
  std::size_t peak_queued_bytes() const { return stream_->peak_unsent(); }
  /// Drops the connection at the write that finds more than `max_bytes` queued (see
  /// TransportStream::limit_unsent); `on_breach` is told the bytes queued, once.
  void limit_queued(std::size_t max_bytes, std::function<void(std::size_t)> on_breach) {
    stream_->limit_unsent(max_bytes, std::move(on_breach));
  }
  /// Stops reading while more than `words` of calls from the peer are unanswered (Cap'n
  /// Proto's flow limit: back-pressure, not an error).
  void set_flow_limit(std::size_t words) { rpc_->setFlowLimit(words); }

 private:
  std::shared_ptr<KjLoop> loop_;
  std::shared_ptr<WireCounters> counters_;
  kj::Own<TransportStream> stream_;
  kj::Own<CountingMessageStream> messages_;
  kj::Own<capnp::TwoPartyVatNetwork> network_;
  kj::Own<capnp::RpcSystem<capnp::rpc::twoparty::VatId>> rpc_;
};

}  // namespace remoteable::detail
