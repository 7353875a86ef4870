// Iteration on the calling side (Handle::iterate): batches requested from the server's cursor,
// one fetched ahead of the caller (PeerConnection::next_batch).

#include <remoteable/iteration.hpp>

#include <utility>

#include "peer/detail/access.hpp"
#include "peer/detail/peer_connection.hpp"
#include "peer/detail/value_codec.hpp"
#include "rpc/wire_checks.hpp"

namespace remoteable {
namespace detail {
namespace {

/// The values of a batch that arrived (each decoded within the nesting limit).
PeerConnection::Batch decode_batch(PeerConnection& c, capnp::List<wire::Value>::Reader values, bool done) {
  if (zero_sized_elements(values)) throw to_kj(zero_sized_error(values.size()));
  PeerConnection::Batch b;
  b.values.reserve(values.size());
  for (auto v : values) b.values.push_back(c.decode(v));
  b.done = done;
  return b;
}

}  // namespace

IterationState::IterationState(std::shared_ptr<HandleState> handle, std::uint32_t batch)
    : handle(std::move(handle)), id(this->handle->connection->new_handle_id()), batch(batch) {}

IterationState::~IterationState() {
  auto c = handle->connection;
  c->submit([c, id = id] { c->end_iteration(id); });
}

kj::Promise<PeerConnection::Batch> PeerConnection::next_batch(std::uint64_t id, std::uint64_t handle, std::uint32_t batch) {
  auto& cursor = cursors_[id];
  if (cursor.done) return Batch{{}, true};
  kj::Promise<Batch> now = nullptr;
  if (!cursor.started) {
    cursor.started = true;
    auto request = cap(handle).iterateRequest();
    request.setBatch(batch);
    auto response = request.send();
    cursor.cap = response.getCursor();  // pipelined: the requests for the next batches need not wait
    now = response.then([this](capnp::Response<wire::Handle::IterateResults>&& r) {
      return decode_batch(*this, r.getValues(), r.getDone());
    });
  } else KJ_IF_MAYBE(ahead, cursor.ahead) {
    now = kj::mv(*ahead);
    cursor.ahead = nullptr;
  } else {
    now = request_next(id, cursor, batch);
  }
  return now.then([this, id, batch](Batch b) { return arrived(id, batch, std::move(b)); });
}

kj::Promise<PeerConnection::Batch> PeerConnection::request_next(std::uint64_t, Cursor& cursor, std::uint32_t batch) {
  KJ_IF_MAYBE(cap, cursor.cap) {
    auto request = cap->nextRequest();
    request.setMax(batch);
    return request.send().then([this](capnp::Response<wire::Cursor::NextResults>&& r) {
      return decode_batch(*this, r.getValues(), r.getDone());
    });
  }
  return Batch{{}, true};
}

PeerConnection::Batch PeerConnection::arrived(std::uint64_t id, std::uint32_t batch, Batch b) {
  auto it = cursors_.find(id);
  if (it == cursors_.end()) return b;  // the iteration was dropped meanwhile
  auto& cursor = it->second;
  if (b.done) {
    cursor.done = true;
    cursor.cap = nullptr;  // (the server has dropped its side already)
  } else if (cursor.ahead == nullptr) {
    // Fetch ahead: the next batch travels while the caller consumes this one.
    cursor.ahead = request_next(id, cursor, batch).eagerlyEvaluate(nullptr);
  }
  return b;
}

}  // namespace detail

Iteration::Iteration(std::shared_ptr<detail::IterationState> state) : state_(std::move(state)) {}
Iteration::Iteration(Iteration&&) noexcept = default;
Iteration& Iteration::operator=(Iteration&&) noexcept = default;
Iteration::~Iteration() = default;

asio::awaitable<std::vector<Value>> Iteration::next_batch() {
  if (at_ < buffer_.size()) {
    std::vector<Value> rest(std::make_move_iterator(buffer_.begin() + static_cast<std::ptrdiff_t>(at_)),
                            std::make_move_iterator(buffer_.end()));
    buffer_.clear();
    at_ = 0;
    co_return rest;
  }
  if (!state_) throw RemoteError(ErrorKind::disconnected, "empty handle");
  while (!ended_) {
    auto s = state_;
    auto& connection = s->handle->connection;
    auto fetch = connection->evaluate<detail::PeerConnection::Batch>([s](detail::PeerConnection& c) {
      return c.next_batch(s->id, s->handle->id, s->batch);
    });
    auto batch = co_await std::move(fetch);
    if (batch.done) ended_ = true;
    if (!batch.values.empty()) co_return std::move(batch.values);
  }
  co_return std::vector<Value>{};
}

asio::awaitable<std::optional<Value>> Iteration::next() {
  if (at_ == buffer_.size()) {
    auto fetch = next_batch();
    buffer_ = co_await std::move(fetch);
    at_ = 0;
    if (buffer_.empty()) co_return std::nullopt;
  }
  co_return std::move(buffer_[at_++]);
}

}  // namespace remoteable

namespace remoteable {

Iteration Handle::iterate() const { return iterate(IterateOptions{}); }

Iteration Handle::iterate(IterateOptions options) const {
  if (!state_) return Iteration(nullptr);
  auto batch = options.batch != 0 ? options.batch : std::max<std::uint32_t>(state_->connection->options().iterate_batch, 1);
  return Iteration(std::make_shared<detail::IterationState>(state_, batch));
}

}  // namespace remoteable
