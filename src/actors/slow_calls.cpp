// The call measurements that decide where a call runs (ServerCore::call_stats, ran_inline,
// ran_measured; DESIGN §4, README "Where an operation runs").

#include "actors/detail/slow_calls.hpp"

#include <spdlog/spdlog.h>

#include <mutex>

namespace remoteable::detail {

CallStats* ServerCore::call_stats(const void* key) {
  if (!key) return nullptr;
  std::lock_guard lock(stats_mutex_);
  auto it = call_stats_.find(key);
  if (it != call_stats_.end()) return &it->second;
  if (call_stats_.size() >= max_call_stats) return &overflow_stats_;
  return &call_stats_.try_emplace(key).first->second;
}

namespace {
/// Moves `stats` from the state it is in to `next`, unless it is blocking (for good) meanwhile.
/// Returns the state it left.
std::uint8_t move_to(CallStats& stats, std::uint8_t next) {
  auto s = stats.state.load(std::memory_order_relaxed);
  while (s != CallStats::blocking && s != next && !stats.state.compare_exchange_weak(s, next, std::memory_order_relaxed)) {
  }
  return s;
}
}  // namespace

void ServerCore::ran_inline(CallStats& stats, std::chrono::nanoseconds wall) {
  // Inline only the wall clock is read: a run that took longer may have computed, waited or been
  // preempted; the next call runs on the pool, where its CPU time tells which.
  if (wall > options.inline_limit) {
    auto s = stats.state.load(std::memory_order_relaxed);
    if (s == CallStats::fast) stats.state.compare_exchange_strong(s, CallStats::unknown, std::memory_order_relaxed);
  }
}

void ServerCore::ran_measured(CallStats& stats, const Object& self, std::string_view name, std::chrono::nanoseconds cpu,
                              std::chrono::nanoseconds waited) {
  auto slow = options.slow_call;
  if (slow.count() > 0 && (cpu > slow || waited > slow)) {
    if (move_to(stats, CallStats::blocking) == CallStats::blocking) return;
    std::string what = self.type ? self.type->name : "";
    if (self.is(builtin::function_type())) what = self.as<builtin::Function>().name;
    else if (self.is(builtin::class_type())) what = self.as<builtin::ClassObject>().type->name + " constructor";
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(cpu > waited ? cpu : waited).count();
    log->warn("'{}{}{}' {} {} ms; its calls now always run on the actor pool (register it with remoteable::blocking)",
              what, name.empty() ? "" : ".", name, cpu > waited ? "used the CPU for" : "waited for", ms);
    return;
  }
  auto limit = options.inline_limit;
  if (cpu > limit || waited > limit) {
    stats.fast_runs.store(0, std::memory_order_relaxed);
    move_to(stats, CallStats::slow);
    return;
  }
  auto s = stats.state.load(std::memory_order_relaxed);
  if (s == CallStats::unknown) move_to(stats, CallStats::fast);
  else if (s == CallStats::slow && stats.fast_runs.fetch_add(1, std::memory_order_relaxed) + 1 >= CallStats::fast_runs_to_inline) {
    stats.fast_runs.store(0, std::memory_order_relaxed);
    move_to(stats, CallStats::fast);
  }
}

}  // namespace remoteable::detail
