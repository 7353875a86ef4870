#include "proxy/handle.hpp"

#include "proxy/detail/client_connection.hpp"

namespace remoteable {
namespace {

using detail::ClientConnection;

wire::BinaryOp to_wire(BinaryOp op) { return static_cast<wire::BinaryOp>(static_cast<int>(op)); }
wire::UnaryOp to_wire(UnaryOp op) { return static_cast<wire::UnaryOp>(static_cast<int>(op)); }

std::shared_ptr<detail::HandleState> require(const std::shared_ptr<detail::HandleState>& state) {
  if (!state) throw RemoteError(ErrorKind::disconnected, "empty handle");
  return state;
}

/// A new handle whose capability is `send(connection, parent capability)`: a pipelined request,
/// made on the connection's loop. A failure to build the request (a bad argument) breaks the new
/// handle with that error, which surfaces at its evaluation.
template <class Send>
Handle derive(const std::shared_ptr<detail::HandleState>& parent, Send send) {
  if (!parent) return Handle{};
  auto& c = parent->connection;
  auto state = c->new_handle();
  c->loop()->run([c, parent, id = state->id, send = std::move(send)]() mutable {
    try {
      c->set_cap(id, send(*c, c->cap(parent->id)));
    } catch (RemoteError& e) {
      c->set_cap(id, wire::Handle::Client(capnp::newBrokenCap(detail::to_kj(e))));
    } catch (kj::Exception& e) {
      c->set_cap(id, wire::Handle::Client(capnp::newBrokenCap(kj::mv(e))));
    }
  });
  return Handle::from_state(std::move(state));
}

/// Awaits `send(connection, capability) -> kj::Promise<T>` for this handle.
template <class T, class Send>
asio::awaitable<T> evaluate(const std::shared_ptr<detail::HandleState>& state, Send send) {
  auto s = require(state);
  return s->connection->evaluate<T>([s, send = std::move(send)](ClientConnection& c) mutable {
    return send(c, c.cap(s->id));
  });
}

}  // namespace

Handle Handle::attr(std::string_view name) const {
  return derive(state_, [name = std::string(name)](ClientConnection&, wire::Handle::Client& cap) {
    auto request = cap.attrRequest();
    request.setName(name);
    return request.send().getResult();
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
  return derive(state_, [name = std::string(name), args = std::move(args)](ClientConnection& c, wire::Handle::Client& cap) {
    auto request = cap.callRequest();
    request.setName(name);
    auto list = request.initArgs(static_cast<unsigned>(args.size()));
    for (unsigned i = 0; i < args.size(); ++i) c.encode(list[i], args[i]);
    return request.send().getResult();
  });
}

Handle Handle::invoke_list(std::vector<Value> args) const {
  return derive(state_, [args = std::move(args)](ClientConnection& c, wire::Handle::Client& cap) {
    auto request = cap.invokeRequest();
    auto list = request.initArgs(static_cast<unsigned>(args.size()));
    for (unsigned i = 0; i < args.size(); ++i) c.encode(list[i], args[i]);
    return request.send().getResult();
  });
}

Handle Handle::item(Value key) const {
  return derive(state_, [key = std::move(key)](ClientConnection& c, wire::Handle::Client& cap) {
    auto request = cap.itemRequest();
    c.encode(request.initKey(), key);
    return request.send().getResult();
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
  return derive(state_, [](ClientConnection&, wire::Handle::Client& cap) { return cap.lenRequest().send().getResult(); });
}

Handle Handle::binary(BinaryOp op, Value operand, bool reflected) const {
  return derive(state_, [op, operand = std::move(operand), reflected](ClientConnection& c, wire::Handle::Client& cap) {
    auto request = cap.binaryRequest();
    request.setOp(to_wire(op));
    request.setReflected(reflected);
    c.encode(request.initOperand(), operand);
    return request.send().getResult();
  });
}

Handle Handle::unary(UnaryOp op) const {
  return derive(state_, [op](ClientConnection&, wire::Handle::Client& cap) {
    auto request = cap.unaryRequest();
    request.setOp(to_wire(op));
    return request.send().getResult();
  });
}

asio::awaitable<Value> Handle::get() const {
  return evaluate<Value>(state_, [](ClientConnection& c, wire::Handle::Client& cap) {
    return cap.getRequest().send().then(
        [conn = c.shared_from_this()](auto response) { return conn->decode(response.getValue()); });
  });
}

asio::awaitable<std::string> Handle::str() const {
  return evaluate<std::string>(state_, [](ClientConnection&, wire::Handle::Client& cap) {
    return cap.strRequest().send().then([](auto response) {
      auto t = response.getText();
      return std::string(t.cStr(), t.size());
    });
  });
}

asio::awaitable<bool> Handle::truthy() const {
  return evaluate<bool>(state_, [](ClientConnection&, wire::Handle::Client& cap) {
    return cap.truthyRequest().send().then([](auto response) { return response.getValue(); });
  });
}

asio::awaitable<Description> Handle::describe() const {
  return evaluate<Description>(state_, [](ClientConnection&, wire::Handle::Client& cap) {
    return cap.describeRequest().send().then([](auto response) {
      Description d;
      d.type_name = response.getTypeName().cStr();
      for (auto m : response.getMembers()) d.members.push_back({m.getName().cStr(), m.getKind().cStr()});
      return d;
    });
  });
}

}  // namespace remoteable
