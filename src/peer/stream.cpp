// StreamWriter: the writing end of a stream, its window counted on the connection's loop.

#include <remoteable/stream.hpp>

#include <capnp/any.h>

#include <atomic>
#include <deque>
#include <stdexcept>
#include <vector>

#include "peer/detail/access.hpp"
#include "peer/detail/peer_connection.hpp"
#include "rpc/kj_error.hpp"

namespace remoteable {
namespace detail {

/// One stream's writer state. Made by stream(); shared by the StreamWriter and the answers in
/// flight (tasks of the connection). Members marked [loop] are touched only on the connection's
/// loop; the counters are atomics for any thread. The Stream capability sits in the
/// connection's capability table under `stream`'s id, so that the connection drops it in order
/// when it closes.
class StreamState : public std::enable_shared_from_this<StreamState> {
 public:
  StreamState(std::shared_ptr<HandleState> sink, std::shared_ptr<HandleState> stream, StreamOptions options)
      : sink_(std::move(sink)), stream_(std::move(stream)), options_(std::move(options)) {}

  PeerConnection& connection() const { return *sink_->connection; }

  /// Opens the stream on the sink (pipelined). [loop]
  void open(const std::string& method) {
    auto& c = connection();
    try {
      auto request = c.cap(sink_->id).openStreamRequest();
      request.setMethod(method);
      auto promise = request.send();
      c.set_cap(stream_->id, promise.getStream().castAs<wire::Handle>());
    } catch (kj::Exception& e) {
      c.set_cap(stream_->id, wire::Handle::Client(capnp::newBrokenCap(kj::mv(e))));
    } catch (const RemoteError& e) {
      c.set_cap(stream_->id, wire::Handle::Client(capnp::newBrokenCap(to_kj(e))));
    }
  }

  /// Sends a write now if the window has room, else queues it; resolves once it is sent. [loop]
  kj::Promise<None> write(const std::vector<Value>& args) {
    KJ_IF_MAYBE(e, error_) { return kj::cp(*e); }
    if (closed_) throw to_kj(RemoteError(ErrorKind::value, "write on a closed stream"));
    auto& c = connection();
    auto request = c.cap(stream_->id).typelessRequest(capnp::typeId<wire::Stream>(), 0, nullptr);
    auto params = request.initAs<wire::Stream::WriteParams>();
    auto list = params.initArgs(static_cast<unsigned>(args.size()));
    for (unsigned i = 0; i < list.size(); ++i) c.encode(list[i], args[i]);
    std::size_t bytes = params.asReader().totalSize().wordCount * sizeof(capnp::word);
    if (waiting_.empty() && fits(bytes)) {
      send(kj::mv(request), bytes);
      return None{};
    }
    auto paf = kj::newPromiseAndFulfiller<void>();
    waiting_.push_back(Waiting{kj::mv(request), bytes, kj::mv(paf.fulfiller)});
    return paf.promise.then([] { return None{}; });
  }

  /// Waits for every write to be answered, then ends the stream (end_method). [loop]
  kj::Promise<None> close() {
    if (closed_) throw to_kj(RemoteError(ErrorKind::value, "the stream is closed already"));
    closed_ = true;
    return drained().then([self = shared_from_this()]() -> kj::Promise<None> {
      KJ_IF_MAYBE(e, self->error_) { return kj::cp(*e); }
      auto request = self->connection().cap(self->stream_->id).castAs<wire::Stream>().endRequest();
      request.setMethod(self->options_.end_method);
      return request.send().then([](auto&&) { return None{}; });
    });
  }

  /// Ends the stream with the writer's error. [loop]
  kj::Promise<None> fail(ErrorKind kind, const std::string& message) {
    closed_ = true;
    if (error_ != nullptr) return None{};  // the sink failed first: it knows
    error_ = to_kj(RemoteError(kind, message));
    reject_waiting();
    auto request = connection().cap(stream_->id).castAs<wire::Stream>().failRequest();
    request.setMethod(options_.fail_method);
    request.setKind(std::string(to_string(kind)));
    request.setMessage(message);
    return request.send().then([](auto&&) { return None{}; });
  }

  /// The writer is gone: unless closed, the sink learns it was cancelled. [loop]
  void dropped() {
    if (closed_ || !connection().open()) return;
    closed_ = true;
    if (error_ != nullptr || options_.fail_method.empty()) return;
    try {
      auto request = connection().cap(stream_->id).castAs<wire::Stream>().failRequest();
      request.setMethod(options_.fail_method);
      request.setKind(std::string(to_string(ErrorKind::cancelled)));
      request.setMessage("the writer was dropped before closing the stream");
      connection().add_task(request.send().then([](auto&&) {}, [](kj::Exception&&) {}));
    } catch (...) {
      // The connection is closing: the sink's end goes with it.
    }
  }

  std::atomic<std::size_t> in_flight_seen{0};
  std::atomic<std::uint64_t> answered{0};

 private:
  using Request = capnp::Request<capnp::AnyPointer, capnp::AnyPointer>;
  struct Waiting {
    Request request;
    std::size_t bytes;
    kj::Own<kj::PromiseFulfiller<void>> sent;
  };

  bool fits(std::size_t bytes) const { return in_flight_ == 0 || in_flight_ + bytes <= options_.window_bytes; }

  void send(Request request, std::size_t bytes) {
    in_flight_ += bytes;
    in_flight_seen.store(in_flight_, std::memory_order_relaxed);
    connection().add_task(request.send().then(
        [self = shared_from_this(), bytes](auto&&) { self->on_answer(bytes, nullptr); },
        [self = shared_from_this(), bytes](kj::Exception&& e) { self->on_answer(bytes, &e); }));
  }

  void on_answer(std::size_t bytes, kj::Exception* e) {
    in_flight_ -= bytes;
    in_flight_seen.store(in_flight_, std::memory_order_relaxed);
    answered.fetch_add(1, std::memory_order_relaxed);
    if (e != nullptr && error_ == nullptr) error_ = kj::mv(*e);
    if (error_ != nullptr) reject_waiting();
    while (!waiting_.empty()) {
      auto& w = waiting_.front();
      if (!w.sent->isWaiting()) {  // its write() was cancelled: it is not sent
        waiting_.pop_front();
        continue;
      }
      if (!fits(w.bytes)) break;
      auto next = kj::mv(w);
      waiting_.pop_front();
      send(kj::mv(next.request), next.bytes);
      next.sent->fulfill();
    }
    if (in_flight_ == 0 && waiting_.empty()) {
      auto done = kj::mv(drained_);
      drained_.clear();
      for (auto& d : done) d->fulfill();
    }
  }

  void reject_waiting() {
    KJ_IF_MAYBE(e, error_) {
      auto waiting = kj::mv(waiting_);
      waiting_.clear();
      for (auto& w : waiting) w.sent->reject(kj::cp(*e));
    }
  }

  kj::Promise<void> drained() {
    if (in_flight_ == 0 && waiting_.empty()) return kj::READY_NOW;
    auto paf = kj::newPromiseAndFulfiller<void>();
    drained_.push_back(kj::mv(paf.fulfiller));
    return kj::mv(paf.promise);
  }

  const std::shared_ptr<HandleState> sink_;
  const std::shared_ptr<HandleState> stream_;
  const StreamOptions options_;
  std::size_t in_flight_ = 0;                         // [loop]
  kj::Maybe<kj::Exception> error_;                    // [loop] the stream's first error
  bool closed_ = false;                               // [loop] closed, failed or dropped
  std::deque<Waiting> waiting_;                       // [loop]
  std::vector<kj::Own<kj::PromiseFulfiller<void>>> drained_;  // [loop]
};

}  // namespace detail

namespace {

/// Runs `f(state) -> kj::Promise<None>` on the stream's loop and awaits it.
template <class F>
asio::awaitable<void> on_stream(const std::shared_ptr<detail::StreamState>& state, F f) {
  if (!state) throw RemoteError(ErrorKind::disconnected, "an empty stream writer");
  auto& c = state->connection();
  return detail::discard(c.evaluate<None>([state, f = std::move(f)](detail::PeerConnection&) mutable { return f(*state); }));
}

}  // namespace

StreamWriter stream(const Handle& sink, std::string_view method, StreamOptions options) {
  auto& s = detail::access::state(sink);
  if (!s) throw RemoteError(ErrorKind::disconnected, "empty handle");
  if (options.window_bytes == 0) throw std::invalid_argument("StreamOptions::window_bytes must be at least 1");
  auto c = s->connection;
  auto state = std::make_shared<detail::StreamState>(s, c->new_handle(), std::move(options));
  c->submit([state, method = std::string(method)] { state->open(method); });
  return StreamWriter(std::move(state));
}

StreamWriter& StreamWriter::operator=(StreamWriter&& other) noexcept {
  if (this != &other) {
    reset();
    state_ = std::move(other.state_);
  }
  return *this;
}

StreamWriter::~StreamWriter() { reset(); }

void StreamWriter::reset() noexcept {
  if (!state_) return;
  auto state = std::move(state_);
  auto& c = state->connection();
  try {
    // Dropped on the loop, where its Cap'n Proto objects live.
    c.submit([state] { state->dropped(); });
  } catch (...) {
  }
}

asio::awaitable<void> StreamWriter::write_list(std::vector<Value> args) {
  return on_stream(state_, [args = std::move(args)](detail::StreamState& s) { return s.write(args); });
}

asio::awaitable<void> StreamWriter::close() {
  return on_stream(state_, [](detail::StreamState& s) { return s.close(); });
}

asio::awaitable<void> StreamWriter::fail(ErrorKind kind, std::string message) {
  return on_stream(state_, [kind, message = std::move(message)](detail::StreamState& s) { return s.fail(kind, message); });
}

std::size_t StreamWriter::bytes_in_flight() const noexcept {
  return state_ ? state_->in_flight_seen.load(std::memory_order_relaxed) : 0;
}

std::uint64_t StreamWriter::writes_answered() const noexcept {
  return state_ ? state_->answered.load(std::memory_order_relaxed) : 0;
}

}  // namespace remoteable
