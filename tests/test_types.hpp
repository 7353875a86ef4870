#pragma once
// Types the tests export, beside the walkthrough's Node.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>

#include <remoteable/remoteable.hpp>

namespace test {

/// A method that blocks its caller until released: for calls that are "in flight" on purpose.
/// The mutex is the test's own synchronisation between the actor's pool thread and the test.
struct Gate {
  std::int64_t block() {
    std::unique_lock lock(mutex_);
    ++entered_;
    changed_.notify_all();
    changed_.wait(lock, [&] { return open_; });
    return entered_;
  }
  void release() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  std::int64_t entered() {
    std::lock_guard lock(mutex_);
    return entered_;
  }
  /// Waits (bounded) until `n` calls are inside block().
  bool wait_entered(int n, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, limit, [&] { return entered_ >= n; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = false;
  std::int64_t entered_ = 0;
};

struct Faulty {
  const std::int64_t fixed = 7;
  std::int64_t fail() { throw std::runtime_error("boom"); }
  std::int64_t twice(std::int64_t x) { return 2 * x; }
  std::string greet(const std::string& who) { return "hello " + who; }
};

inline void register_test_types(remoteable::Registry& types) {
  types.class_<Gate>("Gate").method("block", &Gate::block, remoteable::blocking).method("entered", &Gate::entered);
  types.class_<Faulty>("Faulty")
      .field("fixed", &Faulty::fixed)
      .method("fail", &Faulty::fail)
      .method("twice", &Faulty::twice)
      .method("greet", &Faulty::greet);
}

}  // namespace test
