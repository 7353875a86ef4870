#pragma once
// Sink: the receiving object of the stream tests (tests/proxy/streams_test.cpp and
// tools/sink_server.cpp). Its methods run on its actor while the test thread reads it: a mutex.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <remoteable/remoteable.hpp>

namespace test {

/// What put_gated waits on: its own object (exported apart, on an actor of its own), so that it
/// can be opened while the sink's actor is stuck in put_gated.
struct Valve {
  /// Waits until open (at most 60 s); whether it opened.
  bool pass() {
    std::unique_lock lock(mutex_);
    ++entered_;
    return changed_.wait_for(lock, std::chrono::seconds(60), [&] { return open_; });
  }
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  std::int64_t entered() const {
    std::lock_guard lock(mutex_);
    return entered_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = false;
  std::int64_t entered_ = 0;
};

struct Sink {
  std::shared_ptr<Valve> valve = std::make_shared<Valve>();

  /// Records `x`; fails with a value error on the write numbered `fail_at` (from 0).
  void put_int(std::int64_t x) {
    std::lock_guard lock(mutex_);
    ++calls_;
    if (calls_ - 1 == fail_at_) throw remoteable::RemoteError(remoteable::ErrorKind::value, "record " + std::to_string(x) + " is bad");
    ints_.push_back(x);
  }
  /// Counts a chunk's bytes (keeps nothing of it).
  void put(const remoteable::Bytes& b) {
    std::lock_guard lock(mutex_);
    ++calls_;
    bytes_ += static_cast<std::int64_t>(b.size());
  }
  /// As put(), but waits while the valve is shut (at most 60 s): a reader that stops reading.
  bool put_gated(const remoteable::Bytes& b) {
    {
      std::lock_guard lock(mutex_);
      ++calls_;
    }
    bool opened = valve->pass();
    std::lock_guard lock(mutex_);
    bytes_ += static_cast<std::int64_t>(b.size());
    return opened;
  }
  void fail_at(std::int64_t n) {
    std::lock_guard lock(mutex_);
    fail_at_ = n;
  }
  void end() {
    std::lock_guard lock(mutex_);
    ended_ = true;
    end_saw_ = calls_;
  }
  void fail(std::string kind, std::string message) {
    std::lock_guard lock(mutex_);
    failure_ = kind + ": " + message;
    fail_saw_ = calls_;
  }

  std::int64_t calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  std::int64_t bytes() const {
    std::lock_guard lock(mutex_);
    return bytes_;
  }
  std::vector<std::int64_t> ints() const {
    std::lock_guard lock(mutex_);
    return ints_;
  }
  bool ended() const {
    std::lock_guard lock(mutex_);
    return ended_;
  }
  /// The calls made before end() ran (-1: it did not).
  std::int64_t end_saw() const {
    std::lock_guard lock(mutex_);
    return end_saw_;
  }
  /// "kind: message" of fail(), empty if it was not called.
  std::string failure() const {
    std::lock_guard lock(mutex_);
    return failure_;
  }
  std::int64_t fail_saw() const {
    std::lock_guard lock(mutex_);
    return fail_saw_;
  }

  static void register_type(remoteable::Registry& types) {
    types.class_<Sink>("Sink")
        .method("put_int", &Sink::put_int)
        .method("put", &Sink::put)
        .method("put_gated", &Sink::put_gated, remoteable::blocking)
        .method("fail_at", &Sink::fail_at)
        .method("end", &Sink::end)
        .method("fail", &Sink::fail)
        .method("calls", &Sink::calls)
        .method("bytes", &Sink::bytes)
        .method("ended", &Sink::ended)
        .method("failure", &Sink::failure);
    types.class_<Valve>("Valve").method("open", &Valve::open).method("entered", &Valve::entered);
  }

 private:
  mutable std::mutex mutex_;
  std::int64_t calls_ = 0;
  std::int64_t bytes_ = 0;
  std::int64_t fail_at_ = -1;
  std::vector<std::int64_t> ints_;
  bool ended_ = false;
  std::int64_t end_saw_ = -1;
  std::string failure_;
  std::int64_t fail_saw_ = -1;
};

}  // namespace test
