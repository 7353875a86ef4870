#pragma once
// remoteable::Generator<T>: a lazy sequence that a registered method or function returns, which
// a client reads with Handle::iterate.

#include <concepts>
#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

namespace remoteable {

/// A coroutine that yields T values (`co_yield x;`), one at a time, when asked.
///
/// A method or function registered with the library may return one: the client that iterates
/// the result (Handle::iterate) runs it on the object's actor, only as far as it reads (at most
/// one batch ahead of what it consumed), and dropping the iteration destroys the coroutine frame
/// (its locals' destructors run). An exception thrown inside ends the iteration with that
/// error on the client (mapped as a method's exceptions are). T is any type a method may return.
///
/// It may also be used directly: `while (g.next()) use(g.value());`. Move-only.
template <class T>
class Generator {
 public:
  struct promise_type {
    std::optional<T> current;
    std::exception_ptr error;
    Generator get_return_object() noexcept { return Generator(std::coroutine_handle<promise_type>::from_promise(*this)); }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    template <class U = T>
      requires std::constructible_from<T, U&&>
    std::suspend_always yield_value(U&& value) {
      current.emplace(std::forward<U>(value));
      return {};
    }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { error = std::current_exception(); }
  };
  using value_type = T;

  Generator(Generator&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Generator& operator=(Generator&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;
  ~Generator() { reset(); }

  /// Runs the coroutine to its next co_yield: true with a value to read (value()), false at its
  /// end. Rethrows what the coroutine threw (it has ended then).
  bool next() {
    if (!handle_ || handle_.done()) return false;
    handle_.promise().current.reset();
    handle_.resume();
    if (auto e = std::exchange(handle_.promise().error, nullptr)) std::rethrow_exception(e);
    return !handle_.done();
  }
  /// The value the last next() stopped at.
  T& value() { return *handle_.promise().current; }

 private:
  explicit Generator(std::coroutine_handle<promise_type> handle) noexcept : handle_(handle) {}
  void reset() noexcept {
    if (handle_) handle_.destroy();
    handle_ = {};
  }
  std::coroutine_handle<promise_type> handle_;
};

}  // namespace remoteable
