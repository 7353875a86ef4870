#include "proxy/handle.hpp"

#include "proxy/detail/client_connection.hpp"
#include "rpc/wire_checks.hpp"

namespace remoteable {
namespace {

using detail::ClientConnection;

wire::BinaryOp to_wire(BinaryOp op) { return static_cast<wire::BinaryOp>(static_cast<int>(op)); }
wire::UnaryOp to_wire(UnaryOp op) { return static_cast<wire::UnaryOp>(static_cast<int>(op)); }

std::shared_ptr<detail::HandleState> require(const std::shared_ptr<detail::HandleState>& state) {
  if (!state) throw RemoteError(ErrorKind::disconnected, "empty handle");
  return state;
}

/// A new handle whose capability is `step(connection, parent capability, fetch)`: a pipelined
/// request, made on the connection's loop (deferred briefly, so that an evaluation right behind
/// it can fetch the value in the same call). A failure to build the request (a bad argument)
/// breaks the new handle with that error, which surfaces at its evaluation.
template <class Step>
Handle derive(const std::shared_ptr<detail::HandleState>& parent, Step step) {
  if (!parent) return Handle{};
  auto& c = parent->connection;
  auto state = c->new_handle();
  c->loop()->run([c, parent, id = state->id, step = std::move(step)]() mutable {
    c->defer(id, parent, std::move(step));
  });
  return Handle::from_state(std::move(state));
}

/// Sends a step's request, with `fetch` set if asked: then the answer also carries the
/// evaluation (a Value; text for str, a bool for truthy).
template <class Request>
ClientConnection::Sent send_step(ClientConnection& c, Request& request, wire::Handle::Fetch fetch) {
  request.setFetch(fetch);
  auto promise = request.send();
  ClientConnection::Sent sent{promise.getResult(), nullptr};
  if (fetch != wire::Handle::Fetch::NONE)
    sent.value = promise.then([conn = c.shared_from_this(), fetch](auto response) -> Value {
      if (fetch == wire::Handle::Fetch::TEXT) {
        auto t = response.getText();
        return Value(std::string(t.cStr(), t.size()));
      }
      if (fetch == wire::Handle::Fetch::TRUTH) return Value(response.getTruth());
      return conn->decode(response.getValue());
    });
  return sent;
}

/// Awaits `send(connection, capability) -> kj::Promise<T>` for this handle.
template <class T, class Send>
asio::awaitable<T> evaluate(const std::shared_ptr<detail::HandleState>& state, Send send) {
  auto s = require(state);
  return s->connection->evaluate<T>([s, send = std::move(send)](ClientConnection& c) mutable {
    return send(c, c.cap(s->id));
  });
}

/// Awaits this handle's evaluation of `kind`: carried by the step that makes the handle when
/// that step is still held back (see ClientConnection::defer), else its own call,
/// `send(connection, capability)`. `convert` turns the carried Value into a T.
template <class T, class Convert, class Send>
asio::awaitable<T> evaluate_fetched(const std::shared_ptr<detail::HandleState>& state, wire::Handle::Fetch kind,
                                    Convert convert, Send send) {
  auto s = require(state);
  return s->connection->evaluate<T>(
      [s, kind, convert = std::move(convert), send = std::move(send)](ClientConnection& c) mutable -> kj::Promise<T> {
        auto fetched = c.fetch_deferred(s->id, kind);
        KJ_IF_MAYBE(value, fetched) { return value->then(kj::mv(convert)); }
        return send(c, c.cap(s->id));
      });
}

}  // namespace

Handle Handle::attr(std::string_view name) const {
  return derive(state_, [name = std::string(name)](ClientConnection& c, wire::Handle::Client& cap, wire::Handle::Fetch fetch) {
    auto request = cap.attrRequest();
    request.setName(name);
    return send_step(c, request, fetch);
  });
}

asio::awaitable<void> Handle::set(std::string_view name, Value value) const {
  return detail::discard(evaluate<None>(state_, [name = std::string(name), value = std::move(value)](ClientConnection& c,
                                                                                      wire::Handle::Client& cap) {
    auto request = cap.setAttrRequest();
    request.setName(name);
    c.encode(request.initValue(), value);
    return request.send().then([](auto) { return None{}; });
  }));
}

Handle Handle::call_list(std::string_view name, std::vector<Value> args) const {
  return derive(state_, [name = std::string(name), args = std::move(args)](ClientConnection& c, wire::Handle::Client& cap, wire::Handle::Fetch fetch) {
    auto request = cap.callRequest();
    request.setName(name);
    auto list = request.initArgs(static_cast<unsigned>(args.size()));
    for (unsigned i = 0; i < args.size(); ++i) c.encode(list[i], args[i]);
    return send_step(c, request, fetch);
  });
}

Handle Handle::invoke_list(std::vector<Value> args) const {
  return derive(state_, [args = std::move(args)](ClientConnection& c, wire::Handle::Client& cap, wire::Handle::Fetch fetch) {
    auto request = cap.invokeRequest();
    auto list = request.initArgs(static_cast<unsigned>(args.size()));
    for (unsigned i = 0; i < args.size(); ++i) c.encode(list[i], args[i]);
    return send_step(c, request, fetch);
  });
}

Handle Handle::item(Value key) const {
  return derive(state_, [key = std::move(key)](ClientConnection& c, wire::Handle::Client& cap, wire::Handle::Fetch fetch) {
    auto request = cap.itemRequest();
    c.encode(request.initKey(), key);
    return send_step(c, request, fetch);
  });
}

asio::awaitable<void> Handle::set_item(Value key, Value value) const {
  return detail::discard(evaluate<None>(state_, [key = std::move(key), value = std::move(value)](ClientConnection& c,
                                                                                  wire::Handle::Client& cap) {
    auto request = cap.setItemRequest();
    c.encode(request.initKey(), key);
    c.encode(request.initValue(), value);
    return request.send().then([](auto) { return None{}; });
  }));
}

Handle Handle::len() const {
  return derive(state_, [](ClientConnection& c, wire::Handle::Client& cap, wire::Handle::Fetch fetch) {
    auto request = cap.lenRequest();
    return send_step(c, request, fetch);
  });
}

Handle Handle::binary(BinaryOp op, Value operand, bool reflected) const {
  return derive(state_, [op, operand = std::move(operand), reflected](ClientConnection& c, wire::Handle::Client& cap, wire::Handle::Fetch fetch) {
    auto request = cap.binaryRequest();
    request.setOp(to_wire(op));
    request.setReflected(reflected);
    c.encode(request.initOperand(), operand);
    return send_step(c, request, fetch);
  });
}

Handle Handle::unary(UnaryOp op) const {
  return derive(state_, [op](ClientConnection& c, wire::Handle::Client& cap, wire::Handle::Fetch fetch) {
    auto request = cap.unaryRequest();
    request.setOp(to_wire(op));
    return send_step(c, request, fetch);
  });
}

asio::awaitable<Value> Handle::get() const {
  return evaluate_fetched<Value>(state_, wire::Handle::Fetch::VALUE, [](Value v) { return v; },
                                 [](ClientConnection& c, wire::Handle::Client& cap) {
                                   return cap.getRequest().send().then(
                                       [conn = c.shared_from_this()](auto response) { return conn->decode(response.getValue()); });
                                 });
}

asio::awaitable<std::string> Handle::str() const {
  return evaluate_fetched<std::string>(state_, wire::Handle::Fetch::TEXT, [](Value v) { return v.as<std::string>(); },
                                       [](ClientConnection&, wire::Handle::Client& cap) {
                                         return cap.strRequest().send().then([](auto response) {
                                           auto t = response.getText();
                                           return std::string(t.cStr(), t.size());
                                         });
                                       });
}

asio::awaitable<bool> Handle::truthy() const {
  return evaluate_fetched<bool>(state_, wire::Handle::Fetch::TRUTH, [](Value v) { return v.as<bool>(); },
                                [](ClientConnection&, wire::Handle::Client& cap) {
                                  return cap.truthyRequest().send().then([](auto response) { return response.getValue(); });
                                });
}

asio::awaitable<Description> Handle::describe() const {
  return evaluate<Description>(state_, [](ClientConnection&, wire::Handle::Client& cap) {
    return cap.describeRequest().send().then([](auto response) {
      Description d;
      d.type_name = response.getTypeName().cStr();
      auto members = response.getMembers();
      if (detail::zero_sized_elements(members)) throw detail::to_kj(detail::zero_sized_error(members.size()));
      for (auto m : members) d.members.push_back({m.getName().cStr(), m.getKind().cStr()});
      return d;
    });
  });
}

}  // namespace remoteable
