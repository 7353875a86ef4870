#pragma once
// Blocking use of remoteable from plain code (tests, scripts, main): block_on and sync::Client.

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <asio/executor_work_guard.hpp>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>
#include <future>
#include <memory>
#include <optional>
#include <thread>

#include <remoteable/client.hpp>

namespace remoteable {

/// Runs `context` on the calling thread until `awaitable` completes, and returns its result (or
/// rethrows its exception). The context must not be run by another thread meanwhile. Throws
/// RemoteError(disconnected) if the context runs out of work first (nothing could ever complete
/// the awaitable).
template <class T>
T block_on(asio::io_context& context, asio::awaitable<T> awaitable) {
  // Shared with the completion handler: if the context runs dry and we throw, a later run of
  // the context may still complete the awaitable, and must not write into this frame.
  struct State {
    std::optional<T> result;
    std::exception_ptr error;
    bool done = false;
  };
  auto state = std::make_shared<State>();
  asio::co_spawn(context, std::move(awaitable), [state](std::exception_ptr e, T value) {
    state->error = e;
    if (!e) state->result.emplace(std::move(value));
    state->done = true;
  });
  context.restart();
  while (!state->done)
    if (context.run_one() == 0) throw RemoteError(ErrorKind::disconnected, "block_on: nothing left to run");
  if (state->error) std::rethrow_exception(state->error);
  return std::move(*state->result);
}

inline void block_on(asio::io_context& context, asio::awaitable<void> awaitable) {
  struct State {
    std::exception_ptr error;
    bool done = false;
  };
  auto state = std::make_shared<State>();
  asio::co_spawn(context, std::move(awaitable), [state](std::exception_ptr e) {
    state->error = e;
    state->done = true;
  });
  context.restart();
  while (!state->done)
    if (context.run_one() == 0) throw RemoteError(ErrorKind::disconnected, "block_on: nothing left to run");
  if (state->error) std::rethrow_exception(state->error);
}

namespace sync {

class Client;

namespace detail {

/// The background thread of a sync::Client and its io_context, shared by the client and its
/// handles so that a handle outliving its client fails cleanly instead of waiting forever.
///
/// Threads: wait() may be called from any thread but the background one (which would deadlock:
/// it would block the very thread that must run the awaitable; wait() throws std::logic_error).
class Runner {
 public:
  asio::io_context context{1};

  /// Runs `aw` on the background thread and blocks until it completes; rethrows its exception.
  /// Throws RemoteError(disconnected) once the client is closed.
  template <class T>
  T wait(asio::awaitable<T> aw) {
    if (std::this_thread::get_id() == thread_)
      throw std::logic_error("remoteable::sync: a blocking call from the client's own background thread would deadlock");
    std::future<T> result;
    {
      std::lock_guard lock(mutex_);
      if (closed_) throw RemoteError(ErrorKind::disconnected, "the sync client is closed");
      result = asio::co_spawn(context, std::move(aw), asio::use_future);
    }
    return result.get();
  }

  void set_thread(std::thread::id id) { thread_ = id; }
  /// From now on wait() throws; work spawned before is outstanding work of the context, so the
  /// background thread still runs it to completion before it ends.
  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }

 private:
  // Guards closed_ so that checking it and spawning onto the context are one step: a strand
  // cannot, since the callers are arbitrary threads that must not block on the loop to check.
  std::mutex mutex_;
  bool closed_ = false;
  std::thread::id thread_;  // written once, before the client is handed out
};

}  // namespace detail

/// A Handle whose evaluations block. Operations that make handles never block (they pipeline).
///
/// Ownership and threads: a cheap shared reference, usable from any thread but the client's
/// background thread. It keeps the client's io_context alive, not its connection: once the
/// client is closed, evaluations throw RemoteError(disconnected).
class Handle {
 public:
  /// An empty handle: every evaluation on it throws a disconnected error.
  Handle() = default;

  Handle attr(std::string_view name) const { return wrap(handle_.attr(name)); }
  void set(std::string_view name, Value value) const { wait(handle_.set(name, std::move(value))); }
  template <class... A>
  Handle call(std::string_view name, A&&... args) const {
    return wrap(handle_.call_list(name, {to_value(std::forward<A>(args))...}));
  }
  Handle call_list(std::string_view name, std::vector<Value> args) const {
    return wrap(handle_.call_list(name, std::move(args)));
  }
  template <class... A>
  Handle operator()(A&&... args) const {
    return wrap(handle_.invoke_list({to_value(std::forward<A>(args))...}));
  }
  Handle invoke_list(std::vector<Value> args) const { return wrap(handle_.invoke_list(std::move(args))); }
  Handle item(Value key) const { return wrap(handle_.item(std::move(key))); }
  void set_item(Value key, Value value) const { wait(handle_.set_item(std::move(key), std::move(value))); }
  Handle len() const { return wrap(handle_.len()); }
  Handle binary(BinaryOp op, Value operand, bool reflected = false) const {
    return wrap(handle_.binary(op, std::move(operand), reflected));
  }
  Handle unary(UnaryOp op) const { return wrap(handle_.unary(op)); }

  /// Evaluation, as remoteable::Handle::as<T>; T may also be sync::Handle.
  template <class T>
  T as() const {
    if constexpr (std::same_as<T, Handle>) return wrap(wait(handle_.as<remoteable::Handle>()));
    else return wait(handle_.as<T>());
  }
  Value get() const { return wait(handle_.get()); }
  std::string str() const { return wait(handle_.str()); }
  bool truthy() const { return wait(handle_.truthy()); }
  Description describe() const { return wait(handle_.describe()); }

  /// The asynchronous handle underneath.
  const remoteable::Handle& async() const noexcept { return handle_; }
  /// A blocking handle for `h`, a handle of the same client (such as one inside a get() result).
  Handle wrap(remoteable::Handle h) const { return Handle(runner_, std::move(h)); }
  operator Value() const { return Value(handle_); }
  explicit operator bool() const noexcept { return static_cast<bool>(handle_); }

 private:
  friend class Client;
  Handle(std::shared_ptr<detail::Runner> runner, remoteable::Handle h) : runner_(std::move(runner)), handle_(std::move(h)) {}
  template <class A>
  static Value to_value(A&& a) {
    if constexpr (std::same_as<std::remove_cvref_t<A>, Handle>) return Value(a.async());
    else return Value(std::forward<A>(a));
  }
  template <class T> T wait(asio::awaitable<T> aw) const {
    if (!runner_) throw RemoteError(ErrorKind::disconnected, "empty handle");
    return runner_->wait(std::move(aw));
  }

  std::shared_ptr<detail::Runner> runner_;
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
/// Ownership and threads: owns that thread and its io_context; any thread may call it, except
/// the background thread itself (blocking there would deadlock; it throws std::logic_error).
/// close() or destruction closes the connection and joins the thread; handles left over then
/// fail with a disconnected error.
class Client {
 public:
  /// Connects; throws RemoteError(disconnected) if the server cannot be reached.
  explicit Client(Endpoint endpoint, ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Handle fetch(std::string_view name) const {
    return Handle(runner_, client_ ? client_->fetch(name) : remoteable::Handle{});
  }
  std::vector<std::string> browse() const;
  Handle store(Value value) const {
    return Handle(runner_, client_ ? client_->store(std::move(value)) : remoteable::Handle{});
  }
  void attach(const Handle& handle, std::string_view name) const;
  void detach(std::string_view name) const;
  /// Closes the connection and joins the background thread. Idempotent; not to be called
  /// concurrently with itself.
  void close();

  /// Runs any awaitable on the background thread and blocks until it completes.
  template <class T>
  T wait(asio::awaitable<T> aw) const {
    return runner_->wait(std::move(aw));
  }

  /// The asynchronous client underneath (empty after close()).
  const remoteable::Client& async() const;

 private:
  std::shared_ptr<detail::Runner> runner_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::optional<remoteable::Client> client_;
};

}  // namespace sync
}  // namespace remoteable
