#pragma once
// remoteable::Handle: a client's reference to an object that lives on a server.

#include <asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <remoteable/description.hpp>
#include <remoteable/operators.hpp>
#include <remoteable/value.hpp>

namespace remoteable {

class Handle;
class Iteration;
struct IterateOptions;
/// A value on the client side; its handle alternative is a Handle.
using Value = BasicValue<Handle>;

namespace detail {
class HandleState;
class PeerConnection;
struct access;  // the client's internals reach a Handle's state through it (src/proxy/detail)
}  // namespace detail

/// A reference to a remote object.
///
/// Every operation but evaluation returns a new Handle at once, without a round trip: the request
/// is pipelined on the handle it was made from, so a chain of any length is sent in one go and
/// costs one round trip when it is finally evaluated. Errors anywhere in a chain surface at the
/// evaluation that depends on them, as RemoteError.
///
/// Ownership and threads: a Handle is a cheap shared reference. It can be copied, and used from
/// any thread or executor; work is marshalled to its connection's network strand. Dropping the
/// last copy releases the capability, and the server drops the object when no one else holds it.
/// Evaluations complete on the executor of the coroutine that awaits them.
class Handle {
 public:
  /// An empty handle: every operation on it fails with a disconnected error.
  Handle() = default;

  // Each operation comes in two forms. On a temporary (`h.call("f").attr("x")`, the handle
  // `call` made) the handle gives its reference to the new step: a chain whose handles in
  // between nobody holds is sent as one call, and an evaluation of a temporary asks for no
  // capability back. On a handle you keep, the step is pipelined on it.

  /// Reads attribute `name`.
  [[nodiscard]] Handle attr(std::string_view name) const&;
  [[nodiscard]] Handle attr(std::string_view name) &&;
  /// Writes attribute `name`. Completes once the server has written it.
  [[nodiscard]] asio::awaitable<void> set(std::string_view name, Value value) const;

  /// Calls method `name` with the given arguments (plain values or handles).
  template <class... A>
  [[nodiscard]] Handle call(std::string_view name, A&&... args) const& {
    return call_list(name, {Value(std::forward<A>(args))...});
  }
  template <class... A>
  [[nodiscard]] Handle call(std::string_view name, A&&... args) && {
    return std::move(*this).call_list(name, {Value(std::forward<A>(args))...});
  }
  [[nodiscard]] Handle call_list(std::string_view name, std::vector<Value> args) const&;
  [[nodiscard]] Handle call_list(std::string_view name, std::vector<Value> args) &&;

  /// Calls the object itself: a class handle constructs, a function handle runs.
  template <class... A>
  [[nodiscard]] Handle operator()(A&&... args) const& {
    return invoke_list({Value(std::forward<A>(args))...});
  }
  template <class... A>
  [[nodiscard]] Handle operator()(A&&... args) && {
    return std::move(*this).invoke_list({Value(std::forward<A>(args))...});
  }
  [[nodiscard]] Handle invoke_list(std::vector<Value> args) const&;
  [[nodiscard]] Handle invoke_list(std::vector<Value> args) &&;

  /// Item access: `h[key]`, `h[key] = value`, `len(h)`.
  [[nodiscard]] Handle item(Value key) const&;
  [[nodiscard]] Handle item(Value key) &&;
  [[nodiscard]] asio::awaitable<void> set_item(Value key, Value value) const;
  [[nodiscard]] Handle len() const&;
  [[nodiscard]] Handle len() &&;
  /// A list copied from the elements `start` to `stop` (exclusive), as Python's `h[start:stop]`:
  /// negative indices count from the end, both are clamped. Lists, text and bytes, registered
  /// containers (from a snapshot) and generators (as far as `stop`, non-negative indices only).
  [[nodiscard]] Handle slice(std::int64_t start, std::int64_t stop) const&;
  [[nodiscard]] Handle slice(std::int64_t start, std::int64_t stop) &&;
  /// Iterates the object's elements in batches fetched ahead (see remoteable::Iteration, in
  /// <remoteable/iteration.hpp>). Sends nothing until the first next().
  [[nodiscard]] Iteration iterate() const;
  [[nodiscard]] Iteration iterate(IterateOptions options) const;

  /// Applies a binary operator. `reflected` puts `operand` on the left (`4 + h`).
  [[nodiscard]] Handle binary(BinaryOp op, Value operand, bool reflected = false) const&;
  [[nodiscard]] Handle binary(BinaryOp op, Value operand, bool reflected = false) &&;
  [[nodiscard]] Handle unary(UnaryOp op) const&;
  [[nodiscard]] Handle unary(UnaryOp op) &&;

  /// Evaluation: waits for the chain and copies the result to the client.
  template <class T>
  [[nodiscard]] asio::awaitable<T> as() const&;
  template <class T>
  [[nodiscard]] asio::awaitable<T> as() &&;
  [[nodiscard]] asio::awaitable<Value> get() const&;
  [[nodiscard]] asio::awaitable<Value> get() &&;
  [[nodiscard]] asio::awaitable<std::string> str() const&;
  [[nodiscard]] asio::awaitable<std::string> str() &&;
  [[nodiscard]] asio::awaitable<bool> truthy() const&;
  [[nodiscard]] asio::awaitable<bool> truthy() &&;
  [[nodiscard]] asio::awaitable<Description> describe() const;

  /// True unless default-constructed.
  explicit operator bool() const noexcept { return state_ != nullptr; }

 private:
  friend class Client;
  friend class detail::PeerConnection;
  friend struct detail::access;
  explicit Handle(std::shared_ptr<detail::HandleState> state) : state_(std::move(state)) {}
  // The state behind the handle (the connection marshals it).
  const std::shared_ptr<detail::HandleState>& state() const noexcept { return state_; }
  static Handle from_state(std::shared_ptr<detail::HandleState> state) { return Handle(std::move(state)); }
  std::shared_ptr<detail::HandleState> state_;
};

namespace detail {
// A free coroutine that owns its Handle: the awaitable stays valid after the Handle it came
// from is gone (a member coroutine would keep `this`).
template <class T>
asio::awaitable<T> evaluate_as(Handle handle) {
  Value value = co_await std::move(handle).get();
  co_return value.template as<T>();
}
}  // namespace detail

template <class T>
asio::awaitable<T> Handle::as() const& {
  return detail::evaluate_as<T>(*this);
}
template <class T>
asio::awaitable<T> Handle::as() && {
  return detail::evaluate_as<T>(std::move(*this));
}

namespace detail {
/// Operands a Handle operator accepts beside another Handle.
template <class T>
concept operand = std::constructible_from<Value, T> && !std::same_as<std::remove_cvref_t<T>, Handle>;
}  // namespace detail

// A temporary handle on the left (or, reflected, on the right) gives its reference to the step,
// as the members' && forms do. Every pairing of handle kinds is spelled out: C++20 would
// otherwise consider `b == a` reversed for `a == b`, and these do not return bool.
#define REMOTEABLE_BINARY_OPERATOR(sym, op)                                                         \
  inline Handle operator sym(const Handle& a, const Handle& b) { return a.binary(op, Value(b)); }   \
  inline Handle operator sym(Handle&& a, const Handle& b) { return std::move(a).binary(op, Value(b)); } \
  inline Handle operator sym(const Handle& a, Handle&& b) { return a.binary(op, Value(std::move(b))); } \
  inline Handle operator sym(Handle&& a, Handle&& b) { return std::move(a).binary(op, Value(std::move(b))); } \
  template <detail::operand T>                                                                     \
  Handle operator sym(const Handle& a, T&& b) {                                                    \
    return a.binary(op, Value(std::forward<T>(b)));                                                \
  }                                                                                                \
  template <detail::operand T>                                                                     \
  Handle operator sym(Handle&& a, T&& b) {                                                         \
    return std::move(a).binary(op, Value(std::forward<T>(b)));                                     \
  }                                                                                                \
  template <detail::operand T>                                                                     \
  Handle operator sym(T&& a, const Handle& b) {                                                    \
    return b.binary(op, Value(std::forward<T>(a)), true);                                          \
  }                                                                                                \
  template <detail::operand T>                                                                     \
  Handle operator sym(T&& a, Handle&& b) {                                                         \
    return std::move(b).binary(op, Value(std::forward<T>(a)), true);                               \
  }

#define REMOTEABLE_HANDLE_OPERATOR(name, symbol, wire) REMOTEABLE_BINARY_OPERATOR(symbol, BinaryOp::name)
REMOTEABLE_BINARY_OPS(REMOTEABLE_HANDLE_OPERATOR)
#undef REMOTEABLE_HANDLE_OPERATOR
#undef REMOTEABLE_BINARY_OPERATOR

#define REMOTEABLE_UNARY_OPERATOR(name, symbol, wire)                                  \
  inline Handle operator symbol(const Handle& h) { return h.unary(UnaryOp::name); } \
  inline Handle operator symbol(Handle&& h) { return std::move(h).unary(UnaryOp::name); }
REMOTEABLE_UNARY_OPS(REMOTEABLE_UNARY_OPERATOR)
#undef REMOTEABLE_UNARY_OPERATOR

}  // namespace remoteable
