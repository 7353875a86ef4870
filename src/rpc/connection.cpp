#include "rpc/connection.hpp"

#include <capnp/rpc.capnp.h>
#include <capnp/serialize.h>

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "rpc/kj_error.hpp"

namespace remoteable::detail {

void refuse(Connected& connected, const RemoteError& reason) {
  auto* socket = std::get_if<asio::ip::tcp::socket>(&connected);
  if (socket == nullptr || !socket->is_open()) return;
  capnp::MallocMessageBuilder message;
  auto abort = message.initRoot<capnp::rpc::Message>().initAbort();
  abort.setType(capnp::rpc::Exception::Type::DISCONNECTED);
  abort.setReason(to_kj(reason).getDescription());
  auto words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  // One small message into an empty send buffer: it goes at once, or not at all.
  (void)::send(socket->native_handle(), bytes.begin(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  // What the peer sent already is read away, so that closing sends a FIN rather than a reset
  // (which could overtake the Abort).
  char sink[4096];
  for (int i = 0; i < 16 && ::recv(socket->native_handle(), sink, sizeof sink, MSG_DONTWAIT) > 0; ++i) {
  }
  std::error_code ignored;
  socket->shutdown(asio::socket_base::shutdown_send, ignored);
}

namespace {

const char* message_kind(int which) {
  using M = capnp::rpc::Message;
  switch (static_cast<M::Which>(which)) {
    case M::UNIMPLEMENTED: return "unimplemented";
    case M::ABORT: return "abort";
    case M::CALL: return "call";
    case M::RETURN: return "return";
    case M::FINISH: return "finish";
    case M::RESOLVE: return "resolve";
    case M::RELEASE: return "release";
    case M::DISEMBARGO: return "disembargo";
    case M::BOOTSTRAP: return "bootstrap";
    default: return "other";
  }
}

/// The kind of RPC message whose first segment is `segment` (its union's discriminant), read off
/// the root's struct pointer when that is the plain near pointer Cap'n Proto writes (counting
/// every message through a MessageReader cost the two sides of a callback ~5,000 instructions);
/// nullptr when the root is anything else (a far pointer, say), or points outside the segment.
kj::Maybe<int> plain_which(kj::ArrayPtr<const capnp::word> segment) {
  if (segment.size() == 0) return nullptr;
  auto bytes = segment.asBytes();
  std::uint64_t root = 0;
  for (int i = 7; i >= 0; --i) root = (root << 8) | bytes[i];  // little-endian on the wire
  if (root == 0 || (root & 3) != 0) return nullptr;  // a null root, or not a struct pointer
  auto offset = static_cast<std::int32_t>(static_cast<std::uint32_t>(root)) >> 2;
  auto data_words = static_cast<std::uint16_t>(root >> 32);
  if (data_words == 0) return 0;  // no data section: every field, the discriminant too, is 0
  if (offset < 0 || 1 + static_cast<std::uint64_t>(offset) + data_words > segment.size()) return nullptr;
  auto at = (1 + static_cast<std::size_t>(offset)) * sizeof(capnp::word);  // the discriminant: bits 0-15
  return static_cast<int>(bytes[at] | (bytes[at + 1] << 8));
}

int which_of(capnp::MessageReader& reader) {
  KJ_IF_MAYBE(which, plain_which(reader.getSegment(0))) { return *which; }
  try {
    return static_cast<int>(reader.getRoot<capnp::rpc::Message>().which());
  } catch (kj::Exception&) {
    return -1;  // malformed: the RPC system will report it
  }
}

}  // namespace

void WireCounters::record(bool outgoing, int which) {
  using M = capnp::rpc::Message;
  if (outgoing) {
    sent_.fetch_add(1, std::memory_order_relaxed);
    if (which == M::CALL) calls_.fetch_add(1, std::memory_order_relaxed);
  } else {
    received_.fetch_add(1, std::memory_order_relaxed);
    if (which == M::RETURN) returns_.fetch_add(1, std::memory_order_relaxed);
  }
  if (tracing_) {
    std::lock_guard lock(trace_mutex_);
    trace_.push_back(WireEvent{outgoing, message_kind(which)});
  }
}

WireStats WireCounters::stats() const {
  WireStats s;
  s.messages_sent = sent_.load();
  s.messages_received = received_.load();
  s.calls_sent = calls_.load();
  s.returns_received = returns_.load();
  s.writes = writes_.load();
  return s;
}

std::vector<WireEvent> WireCounters::trace() const {
  std::lock_guard lock(trace_mutex_);
  return trace_;
}

void WireCounters::clear_trace() {
  std::lock_guard lock(trace_mutex_);
  trace_.clear();
}

kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> CountingMessageStream::tryReadMessage(
    kj::ArrayPtr<kj::AutoCloseFd> fd_space, capnp::ReaderOptions options, kj::ArrayPtr<capnp::word> scratch) {
  return inner_.tryReadMessage(fd_space, options, scratch)
      .then([counters = counters_](kj::Maybe<capnp::MessageReaderAndFds>&& result) {
        KJ_IF_MAYBE(r, result) {
          counters->record(false, which_of(*r->reader));
        }
        return kj::mv(result);
      });
}

int CountingMessageStream::count_outgoing(kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) {
  auto which = [&] {
    if (segments.size() > 0) {
      KJ_IF_MAYBE(plain, plain_which(segments[0])) { return *plain; }
    }
    capnp::SegmentArrayMessageReader reader(segments);
    return which_of(reader);
  }();
  counters_->record(true, which);
  return which;
}

namespace {
/// Whether the peer is likely waiting for a message: ordered, so that a batch takes its most
/// awaited. (Finish and Release free what the sender no longer needs; the rest are rare.)
enum class Awaited { no, call, answer };
Awaited awaited(int which) {
  using M = capnp::rpc::Message;
  return which == M::RETURN ? Awaited::answer : which == M::CALL ? Awaited::call : Awaited::no;
}
void expedite(TransportStream& stream, Awaited kind) {
  if (kind != Awaited::no) stream.expedite(kind == Awaited::answer);
}
}  // namespace

kj::Promise<void> CountingMessageStream::writeMessage(kj::ArrayPtr<const int> fds,
                                                      kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) {
  auto kind = awaited(count_outgoing(segments));
  auto written = inner_.writeMessage(fds, segments);
  expedite(stream_, kind);
  return written;
}

kj::Promise<void> CountingMessageStream::writeMessages(
    kj::ArrayPtr<kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>>> messages) {
  auto kind = Awaited::no;
  for (auto& m : messages) kind = std::max(kind, awaited(count_outgoing(m)));
  auto written = inner_.writeMessages(messages);
  expedite(stream_, kind);
  return written;
}

RpcConnection::RpcConnection(std::shared_ptr<KjLoop> loop, kj::Own<TransportStream> stream,
                             capnp::rpc::twoparty::Side side, kj::Maybe<capnp::Capability::Client> bootstrap,
                             capnp::ReaderOptions options, std::shared_ptr<WireCounters> counters)
    : loop_(loop), counters_(std::move(counters)) {
  stream_ = kj::mv(stream);
  messages_ = kj::heap<CountingMessageStream>(*stream_, counters_);
  network_ = kj::heap<capnp::TwoPartyVatNetwork>(*messages_, side, options);
  KJ_IF_MAYBE(b, bootstrap) {
    rpc_ = kj::heap(capnp::makeRpcServer(*network_, kj::mv(*b)));
  } else {
    rpc_ = kj::heap(capnp::makeRpcClient(*network_));
  }
}

RpcConnection::~RpcConnection() {
  rpc_ = nullptr;
  network_ = nullptr;
  messages_ = nullptr;
  stream_ = nullptr;
}

capnp::Capability::Client RpcConnection::bootstrap() {
  capnp::word scratch[4];
  memset(scratch, 0, sizeof(scratch));
  capnp::MallocMessageBuilder message(scratch);
  auto vat = message.getRoot<capnp::rpc::twoparty::VatId>();
  vat.setSide(capnp::rpc::twoparty::Side::SERVER);
  return rpc_->bootstrap(vat);
}

}  // namespace remoteable::detail
