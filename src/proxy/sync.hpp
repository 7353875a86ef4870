#pragma once
// Blocking use of remoteable from plain code (tests, scripts, main): block_on and sync::Client.

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <asio/executor_work_guard.hpp>
#include <exception>
#include <future>
#include <memory>
#include <optional>
#include <thread>

#include "proxy/client.hpp"

namespace remoteable {

/// Runs `context` on the calling thread until `awaitable` completes, and returns its result (or
/// rethrows its exception). The context must not be run by another thread meanwhile.
template <class T>
T block_on(asio::io_context& context, asio::awaitable<T> awaitable) {
  std::optional<T> result;
  std::exception_ptr error;
  bool done = false;
  asio::co_spawn(context, std::move(awaitable), [&](std::exception_ptr e, T value) {
    error = e;
    if (!e) result.emplace(std::move(value));
    done = true;
  });
  context.restart();
  while (!done)
    if (context.run_one() == 0) throw RemoteError(ErrorKind::disconnected, "block_on: nothing left to run");
  if (error) std::rethrow_exception(error);
  return std::move(*result);
}

inline void block_on(asio::io_context& context, asio::awaitable<void> awaitable) {
  std::exception_ptr error;
  bool done = false;
  asio::co_spawn(context, std::move(awaitable), [&](std::exception_ptr e) {
    error = e;
    done = true;
  });
  context.restart();
  while (!done)
    if (context.run_one() == 0) throw RemoteError(ErrorKind::disconnected, "block_on: nothing left to run");
  if (error) std::rethrow_exception(error);
}

namespace sync {

class Client;

/// A Handle whose evaluations block. Operations that make handles never block (they pipeline).
class Handle {
 public:
  Handle attr(std::string_view name) const { return wrap(handle_.attr(name)); }
  void set(std::string_view name, Value value) const { wait(handle_.set(name, std::move(value))); }
  template <class... A>
  Handle call(std::string_view name, A&&... args) const {
    return wrap(handle_.call(name, std::forward<A>(args)...));
  }
  template <class... A>
  Handle operator()(A&&... args) const {
    return wrap(handle_(std::forward<A>(args)...));
  }
  Handle item(Value key) const { return wrap(handle_.item(std::move(key))); }
  void set_item(Value key, Value value) const { wait(handle_.set_item(std::move(key), std::move(value))); }
  Handle len() const { return wrap(handle_.len()); }
  Handle binary(BinaryOp op, Value operand, bool reflected = false) const {
    return wrap(handle_.binary(op, std::move(operand), reflected));
  }
  Handle unary(UnaryOp op) const { return wrap(handle_.unary(op)); }

  template <class T> T as() const { return wait(handle_.as<T>()); }
  Value get() const { return wait(handle_.get()); }
  std::string str() const { return wait(handle_.str()); }
  bool truthy() const { return wait(handle_.truthy()); }
  Description describe() const { return wait(handle_.describe()); }

  /// The asynchronous handle underneath.
  const remoteable::Handle& async() const noexcept { return handle_; }
  operator Value() const { return Value(handle_); }

 private:
  friend class Client;
  Handle(std::shared_ptr<asio::io_context> context, remoteable::Handle h)
      : context_(std::move(context)), handle_(std::move(h)) {}
  Handle wrap(remoteable::Handle h) const { return Handle(context_, std::move(h)); }
  template <class T> T wait(asio::awaitable<T> aw) const {
    return asio::co_spawn(*context_, std::move(aw), asio::use_future).get();
  }

  std::shared_ptr<asio::io_context> context_;
  remoteable::Handle handle_;
};

#define REMOTEABLE_SYNC_BINARY(sym, op)                                                              \
  inline Handle operator sym(const Handle& a, const Handle& b) { return a.binary(op, Value(b.async())); } \
  template <remoteable::detail::operand T>                                                          \
    requires(!std::same_as<std::remove_cvref_t<T>, Handle>)                                         \
  Handle operator sym(const Handle& a, T&& b) { return a.binary(op, Value(std::forward<T>(b))); }     \
  template <remoteable::detail::operand T>                                                          \
    requires(!std::same_as<std::remove_cvref_t<T>, Handle>)                                         \
  Handle operator sym(T&& a, const Handle& b) { return b.binary(op, Value(std::forward<T>(a)), true); }
REMOTEABLE_SYNC_BINARY(+, BinaryOp::add)
REMOTEABLE_SYNC_BINARY(-, BinaryOp::sub)
REMOTEABLE_SYNC_BINARY(*, BinaryOp::mul)
REMOTEABLE_SYNC_BINARY(/, BinaryOp::div)
REMOTEABLE_SYNC_BINARY(%, BinaryOp::mod)
REMOTEABLE_SYNC_BINARY(&, BinaryOp::bit_and)
REMOTEABLE_SYNC_BINARY(|, BinaryOp::bit_or)
REMOTEABLE_SYNC_BINARY(^, BinaryOp::bit_xor)
REMOTEABLE_SYNC_BINARY(<<, BinaryOp::shl)
REMOTEABLE_SYNC_BINARY(>>, BinaryOp::shr)
REMOTEABLE_SYNC_BINARY(==, BinaryOp::eq)
REMOTEABLE_SYNC_BINARY(!=, BinaryOp::ne)
REMOTEABLE_SYNC_BINARY(<, BinaryOp::lt)
REMOTEABLE_SYNC_BINARY(<=, BinaryOp::le)
REMOTEABLE_SYNC_BINARY(>, BinaryOp::gt)
REMOTEABLE_SYNC_BINARY(>=, BinaryOp::ge)
#undef REMOTEABLE_SYNC_BINARY
inline Handle operator-(const Handle& h) { return h.unary(UnaryOp::neg); }
inline Handle operator~(const Handle& h) { return h.unary(UnaryOp::invert); }
inline Handle operator!(const Handle& h) { return h.unary(UnaryOp::logical_not); }

/// A blocking client. It runs its connection on a background thread of its own.
///
/// Ownership and threads: owns that thread and its io_context; any thread may call it.
/// Destruction closes the connection and joins the thread. Calling a blocking member from the
/// background thread itself (e.g. inside a coroutine running there) would deadlock: don't.
class Client {
 public:
  /// Connects; throws RemoteError(disconnected) if the server cannot be reached.
  explicit Client(Endpoint endpoint, ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Handle fetch(std::string_view name) const { return Handle(context_, client_->fetch(name)); }
  std::vector<std::string> browse() const;
  Handle store(Value value) const { return Handle(context_, client_->store(std::move(value))); }
  void attach(const Handle& handle, std::string_view name) const;
  void detach(std::string_view name) const;
  void close();

  /// The asynchronous client underneath.
  const remoteable::Client& async() const { return *client_; }

 private:
  std::shared_ptr<asio::io_context> context_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::optional<remoteable::Client> client_;
};

}  // namespace sync
}  // namespace remoteable
