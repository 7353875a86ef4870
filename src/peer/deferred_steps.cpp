// PeerConnection's deferred steps: held back briefly, then sent one request each, or with an
// evaluation, as one Handle.chain call.

#include "peer/detail/peer_connection.hpp"

#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "peer/detail/chain_plan.hpp"
#include "peer/detail/value_codec.hpp"
#include "rpc/wire_checks.hpp"
#include "rpc/codec.hpp"

namespace remoteable::detail {

void PeerConnection::defer(std::uint64_t id, std::weak_ptr<HandleState> self, std::shared_ptr<HandleState> parent,
                           Step step) {
  // Closed: the handle gets no capability (its use reports disconnected), and nothing is held
  // back, which would keep the parent, and through it this connection, alive.
  if (!open_) return;
  // A peer that does not answer cannot make this side queue without bound: past the queue's
  // limit the step fails (its handle reports overloaded), as the window would only grow.
  // (A client's burst of steps is sent at the next turn, so only a full window counts there;
  // server code's pushes come from other threads faster than the loop may turn.)
  if ((window_full() || hosted_) && deferred_.size() >= 64 * options_.push_window) {
    set_cap(id, wire::Handle::Client(capnp::newBrokenCap(to_kj(RemoteError(
                    ErrorKind::overloaded, "too many steps wait for the peer to answer earlier ones (" +
                                               std::to_string(deferred_.size()) + ")")))));
    return;
  }
  deferred_.push_back(Deferred{id, std::move(self), std::move(parent), std::move(step)});
  if (deferred_posted_) return;
  deferred_posted_ = true;
  auto send = [weak = weak_from_this()] {
    if (auto self = weak.lock()) {
      self->deferred_posted_ = false;
      self->send_deferred(true);
    }
  };
  // Server code running on the loop: whatever it does next until it suspends runs at once too,
  // so the end of this handler's turns is late enough (and costs no trip through Asio). Else
  // after the handlers queued now: the evaluation behind this step may be one of them.
  if (submitting_inline_) loop_->after_turns(kj::mv(send));
  else loop_->run_later(kj::mv(send));
}

bool PeerConnection::pushes_wait() const {
  if (deferred_.empty()) return false;
  if (window_full()) return true;
  std::size_t room = options_.push_window - unanswered_, pushes = 0;
  for (auto& d : deferred_)  // (a bounded look: at most room + 1 pushes)
    if (d.self.expired() && ++pushes > room) return true;
  return false;
}

void PeerConnection::send_deferred(bool windowed) {
  if (sending_deferred_) return;
  sending_deferred_ = true;
  while (!deferred_.empty() && !(windowed && window_full())) {
    auto d = std::move(deferred_.front());
    deferred_.pop_front();
    send_step(d, wire::Handle::Fetch::NONE);
  }
  sending_deferred_ = false;
}

void PeerConnection::ordered(kj::Function<void()> f, std::uint64_t id, std::shared_ptr<CompletionBase> completion) {
  if (!open_ || !must_wait()) return f();
  held_back_.push_back(HeldBack{kj::mv(f), id, kj::mv(completion)});
}

void PeerConnection::track(kj::Promise<void> answered) {
  KJ_IF_MAYBE(tasks, tasks_) {
    ++unanswered_;
    // The task belongs to tasks_, a member: `this` outlives it.
    tasks->add(answered.then([] {}, [](kj::Exception&&) {}).attach(kj::defer([this] {
      --unanswered_;
      if (open_ && (!deferred_.empty() || !held_back_.empty())) resume();
    })));
  }
}

void PeerConnection::resume() {
  if (resume_posted_) return;
  resume_posted_ = true;
  loop_->run_later([weak = weak_from_this()] {
    auto self = weak.lock();
    if (!self) return;
    self->resume_posted_ = false;
    if (!self->open_) return;
    self->send_deferred(true);
    // Each waiting operation goes, in order, once the pushes before it fit in the window.
    while (!self->held_back_.empty() && !self->pushes_wait()) {
      auto h = kj::mv(self->held_back_.front());
      self->held_back_.pop_front();
      h.run();
      self->send_deferred(true);
    }
  });
}

kj::Maybe<kj::Promise<Value>> PeerConnection::fetch_deferred(std::uint64_t id, wire::Handle::Fetch kind, bool keep) {
  if (sending_deferred_) return nullptr;
  // The steps at the end made each on the one before, whose handles only that next step holds.
  auto plan = plan_chain(deferred_, id, keep, max_chain_steps, [](const Deferred& d) {
    return ChainLink{d.id, d.parent->id, d.parent.use_count() != 1};
  });
  if (!plan) return nullptr;
  auto first = deferred_.begin() + static_cast<std::ptrdiff_t>(plan->first);
  std::vector<Deferred> run(std::make_move_iterator(first), std::make_move_iterator(deferred_.end()));
  deferred_.erase(first, deferred_.end());
  send_deferred();
  if (!plan->as_chain) return send_step(run.front(), kind);
  return send_chain(run, kind, keep);
}

namespace {
/// What an answer carries for `fetch`, as a Value.
template <class Response>
Value fetched_value(PeerConnection& c, Response& response, wire::Handle::Fetch fetch) {
  if (fetch == wire::Handle::Fetch::TEXT) {
    auto t = response.getText();
    return Value(std::string(t.cStr(), t.size()));
  }
  if (fetch == wire::Handle::Fetch::TRUTH) return Value(response.getTruth());
  return c.decode(response.getValue());
}
}  // namespace

template <class Request>
kj::Maybe<kj::Promise<Value>> PeerConnection::send_request(std::uint64_t id, Request& request, wire::Handle::Fetch fetch,
                                                             bool keep) {
  request.setFetch(fetch);
  auto promise = request.send();
  if (keep) set_cap(id, promise.getResult());
  if (fetch == wire::Handle::Fetch::NONE) {
    // A push (its handle was dropped before it went out): its answer is awaited all the same,
    // or dropping the question would let the peer cancel the call. A client's step whose handle
    // is still held is not: dropping that handle later cancels it, as it always has. Server code
    // (hosted) runs on other threads than the loop, which may send a step before the thread
    // that made it has dropped its handle: there every step is awaited.
    if (!keep || hosted_) track(promise.ignoreResult());
    return nullptr;
  }
  return promise.then([conn = shared_from_this(), fetch](auto response) { return fetched_value(*conn, response, fetch); });
}

kj::Maybe<kj::Promise<Value>> PeerConnection::send_step(Deferred& d, wire::Handle::Fetch fetch) {
  auto broken = [&](kj::Exception e) -> kj::Maybe<kj::Promise<Value>> {
    set_cap(d.id, wire::Handle::Client(capnp::newBrokenCap(kj::cp(e))));
    if (fetch != wire::Handle::Fetch::NONE) return kj::Promise<Value>(kj::mv(e));
    return nullptr;
  };
  try {
    auto& parent = find_cap(d.parent->id);
    auto operand = [this](wire::Value::Builder out, const Value& v) { encode(out, v); };
    // A handle already dropped (a push): sent all the same, keeping no capability.
    bool keep = fetch != wire::Handle::Fetch::NONE || !d.self.expired();
    return request_step(parent, d.step, operand, [&](auto& request) { return send_request(d.id, request, fetch, keep); });
  } catch (RemoteError& e) {
    return broken(to_kj(e));
  } catch (kj::Exception& e) {
    return broken(kj::mv(e));
  }
}

kj::Promise<Value> PeerConnection::send_chain(std::vector<Deferred>& run, wire::Handle::Fetch fetch, bool keep) {
  auto id = run.back().id;
  auto broken = [&](kj::Exception e) -> kj::Promise<Value> {
    if (keep) set_cap(id, wire::Handle::Client(capnp::newBrokenCap(kj::cp(e))));
    return kj::mv(e);
  };
  try {
    std::uint64_t words = 0;
    for (const auto& d : run) words += step_words(d.step);
    auto request = find_cap(run.front().parent->id).chainRequest(request_size(words));
    auto steps = request.initSteps(static_cast<unsigned>(run.size()));
    auto operand = [this](wire::Value::Builder out, const Value& v) { encode(out, v); };
    for (unsigned i = 0; i < steps.size(); ++i) encode_step(steps[i], run[i].step, operand);
    request.setKeep(keep);
    // The handles in between get no capability: nobody holds them.
    KJ_IF_MAYBE(value, send_request(id, request, fetch, keep)) { return kj::mv(*value); }
    return Value(None{});  // not reached: a chain is sent for an evaluation
  } catch (RemoteError& e) {
    return broken(to_kj(e));
  } catch (kj::Exception& e) {
    return broken(kj::mv(e));
  }
}

}  // namespace remoteable::detail
