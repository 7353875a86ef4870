#include <remoteable/handle.hpp>

#include "peer/detail/access.hpp"
#include "peer/detail/peer_connection.hpp"
#include "peer/detail/value_codec.hpp"
#include "rpc/wire_checks.hpp"

namespace remoteable {
namespace {

using detail::PeerConnection;

using Step = PeerConnection::Step;
using detail::StepKind;

std::shared_ptr<detail::HandleState> require(std::shared_ptr<detail::HandleState> state) {
  if (!state) throw RemoteError(ErrorKind::disconnected, "empty handle");
  return state;
}

/// A new handle made by `step` on `parent`: a pipelined request, made on the connection's loop
/// (deferred briefly, so that an evaluation right behind it can fetch the value in the same
/// call, and steps nobody else holds can go as one chain). A failure to build the request (a
/// bad argument) breaks the new handle with that error, which surfaces at its evaluation.
/// `parent` is taken by value: a temporary handle gives its reference to the step.
Handle derive(std::shared_ptr<detail::HandleState> parent, Step step) {
  if (!parent) return Handle{};
  auto c = parent->connection;
  auto state = c->new_handle();
  c->submit([c, parent = std::move(parent), id = state->id, self = std::weak_ptr(state), step = std::move(step)]() mutable {
    c->defer(id, std::move(self), std::move(parent), std::move(step));
  });
  return detail::access::handle(std::move(state));
}

Step named(StepKind kind, std::string_view name, std::vector<Value> operands = {}) {
  Step step{kind};
  step.name = std::string(name);
  step.operands = std::move(operands);
  return step;
}

Step with_operands(StepKind kind, std::vector<Value> operands) {
  Step step{kind};
  step.operands = std::move(operands);
  return step;
}

Step binary_step(BinaryOp op, Value operand, bool reflected) {
  Step step{StepKind::binary};
  step.binary_op = op;
  step.reflected = reflected;
  step.operands.push_back(std::move(operand));
  return step;
}

Step unary_step(UnaryOp op) {
  Step step{StepKind::unary};
  step.unary_op = op;
  return step;
}

/// Awaits `send(connection, capability) -> kj::Promise<T>` for this handle.
template <class T, class Send>
asio::awaitable<T> evaluate(const std::shared_ptr<detail::HandleState>& state, Send send) {
  auto s = require(state);
  return s->connection->evaluate<T>([s, send = std::move(send)](PeerConnection& c) mutable {
    return send(c, c.cap(s->id));
  });
}

/// Awaits this handle's evaluation of `kind`: carried by the step that makes the handle when
/// that step is still held back (see PeerConnection::defer), else its own call,
/// `send(connection, capability)`. `convert` turns the carried Value into a T. `state` is taken
/// by value: when the evaluation holds the only reference (a temporary handle), the step is
/// sent without asking for a capability.
template <class T, class Convert, class Send>
asio::awaitable<T> evaluate_fetched(std::shared_ptr<detail::HandleState> state, wire::Handle::Fetch kind, Convert convert,
                                    Send send) {
  auto s = require(std::move(state));
  auto& connection = s->connection;
  return connection->template evaluate<T>(
      [s = std::move(s), kind, convert = std::move(convert), send = std::move(send)](PeerConnection& c) mutable -> kj::Promise<T> {
        auto fetched = c.fetch_deferred(s->id, kind, s.use_count() > 1);
        KJ_IF_MAYBE(value, fetched) {
          return value->then([convert](Value v) { return convert(std::move(v)); });
        }
        return send(c, c.cap(s->id));
      });
}

Value get_value(Value v) { return v; }
std::string text_value(Value v) { return v.as<std::string>(); }
bool truth_value(Value v) { return v.as<bool>(); }

kj::Promise<Value> send_get(PeerConnection& c, wire::Handle::Client& cap) {
  return cap.getRequest().send().then([conn = c.shared_from_this()](auto response) { return conn->decode(response.getValue()); });
}
kj::Promise<std::string> send_str(PeerConnection&, wire::Handle::Client& cap) {
  return cap.strRequest().send().then([](auto response) {
    auto t = response.getText();
    return std::string(t.cStr(), t.size());
  });
}
kj::Promise<bool> send_truthy(PeerConnection&, wire::Handle::Client& cap) {
  return cap.truthyRequest().send().then([](auto response) { return response.getValue(); });
}

}  // namespace

Handle Handle::attr(std::string_view name) const& { return derive(state_, named(StepKind::attr, name)); }
Handle Handle::attr(std::string_view name) && { return derive(std::move(state_), named(StepKind::attr, name)); }

asio::awaitable<void> Handle::set(std::string_view name, Value value) const {
  return detail::discard(evaluate<None>(state_, [name = std::string(name), value = std::move(value)](PeerConnection& c,
                                                                                      wire::Handle::Client& cap) {
    auto request = cap.setAttrRequest();
    request.setName(name);
    c.encode(request.initValue(), value);
    return request.send().then([](auto) { return None{}; });
  }));
}

Handle Handle::call_list(std::string_view name, std::vector<Value> args) const& {
  return derive(state_, named(StepKind::call, name, std::move(args)));
}
Handle Handle::call_list(std::string_view name, std::vector<Value> args) && {
  return derive(std::move(state_), named(StepKind::call, name, std::move(args)));
}

Handle Handle::invoke_list(std::vector<Value> args) const& {
  return derive(state_, with_operands(StepKind::invoke, std::move(args)));
}
Handle Handle::invoke_list(std::vector<Value> args) && {
  return derive(std::move(state_), with_operands(StepKind::invoke, std::move(args)));
}

Handle Handle::item(Value key) const& { return derive(state_, with_operands(StepKind::item, {std::move(key)})); }
Handle Handle::item(Value key) && {
  return derive(std::move(state_), with_operands(StepKind::item, {std::move(key)}));
}

asio::awaitable<void> Handle::set_item(Value key, Value value) const {
  return detail::discard(evaluate<None>(state_, [key = std::move(key), value = std::move(value)](PeerConnection& c,
                                                                                  wire::Handle::Client& cap) {
    auto request = cap.setItemRequest();
    c.encode(request.initKey(), key);
    c.encode(request.initValue(), value);
    return request.send().then([](auto) { return None{}; });
  }));
}

namespace {
Step slice_step(std::int64_t start, std::int64_t stop) {
  Step step{StepKind::slice};
  step.start = start;
  step.stop = stop;
  return step;
}
}  // namespace

Handle Handle::slice(std::int64_t start, std::int64_t stop) const& { return derive(state_, slice_step(start, stop)); }
Handle Handle::slice(std::int64_t start, std::int64_t stop) && { return derive(std::move(state_), slice_step(start, stop)); }

Handle Handle::len() const& { return derive(state_, Step{StepKind::len}); }
Handle Handle::len() && { return derive(std::move(state_), Step{StepKind::len}); }

Handle Handle::binary(BinaryOp op, Value operand, bool reflected) const& {
  return derive(state_, binary_step(op, std::move(operand), reflected));
}
Handle Handle::binary(BinaryOp op, Value operand, bool reflected) && {
  return derive(std::move(state_), binary_step(op, std::move(operand), reflected));
}

Handle Handle::unary(UnaryOp op) const& { return derive(state_, unary_step(op)); }
Handle Handle::unary(UnaryOp op) && { return derive(std::move(state_), unary_step(op)); }

asio::awaitable<Value> Handle::get() const& {
  return evaluate_fetched<Value>(state_, wire::Handle::Fetch::VALUE, get_value, send_get);
}
asio::awaitable<Value> Handle::get() && {
  return evaluate_fetched<Value>(std::move(state_), wire::Handle::Fetch::VALUE, get_value, send_get);
}

asio::awaitable<std::string> Handle::str() const& {
  return evaluate_fetched<std::string>(state_, wire::Handle::Fetch::TEXT, text_value, send_str);
}
asio::awaitable<std::string> Handle::str() && {
  return evaluate_fetched<std::string>(std::move(state_), wire::Handle::Fetch::TEXT, text_value, send_str);
}

asio::awaitable<bool> Handle::truthy() const& {
  return evaluate_fetched<bool>(state_, wire::Handle::Fetch::TRUTH, truth_value, send_truthy);
}
asio::awaitable<bool> Handle::truthy() && {
  return evaluate_fetched<bool>(std::move(state_), wire::Handle::Fetch::TRUTH, truth_value, send_truthy);
}

asio::awaitable<Description> Handle::describe() const {
  return evaluate<Description>(state_, [](PeerConnection&, wire::Handle::Client& cap) {
    return cap.describeRequest().send().then([](auto response) {
      Description d;
      d.type_name = response.getTypeName().cStr();
      auto members = response.getMembers();
      if (detail::zero_sized_elements(members)) throw detail::to_kj(detail::zero_sized_error(members.size()));
      auto texts = [](auto list) {
        std::vector<std::string> out;
        out.reserve(list.size());
        for (auto t : list) out.emplace_back(t.cStr(), t.size());
        return out;
      };
      for (auto m : members) d.members.push_back({m.getName().cStr(), m.getKind().cStr(), m.getType().cStr(), texts(m.getSignatures())});
      d.signatures = texts(response.getSignatures());
      return d;
    });
  });
}

}  // namespace remoteable
