#pragma once
// Which calls run off the network thread: those not measured yet or measured long (CallStats,
// CallMeter, ServerCore::call_stats) and those on values that expand far. Internal.

#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <remoteable/detail/builtins.hpp>
#include <remoteable/detail/object.hpp>
#include "actors/detail/server_core.hpp"
#include "peer/detail/completion.hpp"

namespace remoteable::detail {

/// Measures one call of `stats`'s method (nothing if `stats` is null). Inline on the network
/// thread it reads only the wall clock (CPU time never exceeds it): a run that took longer than
/// inline_limit sends the next call to the pool to be measured. Elsewhere it reads the
/// thread's CPU time and voluntary context switches (getrusage, a system call), so that time the
/// thread spent preempted does not count and waiting does.
class CallMeter {
 public:
  CallMeter(ServerCore& core, CallStats* stats, const Object& self, std::string_view name)
      : core_(core), stats_(stats), self_(self), name_(name), inline_(stats && core.on_loop()) {
    if (!stats_) return;
    if (!inline_) getrusage(RUSAGE_THREAD, &usage_);
    start_ = std::chrono::steady_clock::now();
  }
  ~CallMeter() {
    if (!stats_) return;
    auto wall = std::chrono::steady_clock::now() - start_;
    if (inline_) {
      core_.ran_inline(*stats_, wall);
      return;
    }
    rusage now{};
    getrusage(RUSAGE_THREAD, &now);
    auto cpu = std::chrono::seconds(now.ru_utime.tv_sec + now.ru_stime.tv_sec - usage_.ru_utime.tv_sec - usage_.ru_stime.tv_sec) +
               std::chrono::microseconds(now.ru_utime.tv_usec + now.ru_stime.tv_usec - usage_.ru_utime.tv_usec - usage_.ru_stime.tv_usec);
    bool waited = now.ru_nvcsw != usage_.ru_nvcsw;
    core_.ran_measured(*stats_, self_, name_, cpu, waited ? std::chrono::duration_cast<std::chrono::nanoseconds>(wall) : std::chrono::nanoseconds(0));
  }
  CallMeter(const CallMeter&) = delete;
  CallMeter& operator=(const CallMeter&) = delete;

 private:
  ServerCore& core_;
  CallStats* stats_;
  const Object& self_;
  std::string_view name_;
  bool inline_;
  rusage usage_{};
  std::chrono::steady_clock::time_point start_;
};

/// The segments of one call of a coroutine method (the runs between its co_awaits), measured
/// like calls of it: the first one when the method is called (on_actor, under the method's own
/// CallStats), the later ones when they resume (Completion, under its resumed_stats). While the
/// later ones are fast, they resume inline on the network thread when the actor is idle; one that
/// runs longer than inline_limit there sends the method's next ones to the pool, where they are
/// measured until they are fast again (CallStats::fast_runs_to_inline in a row).
class MethodSegments final : public Segments {
 public:
  MethodSegments(std::shared_ptr<ServerCore> core, CallStats* first, Object self, std::string name)
      : core_(std::move(core)), first_(first), resumed_(&core_->resumed_stats(*first)), self_(std::move(self)),
        name_(std::move(name)) {}
  bool quick() const noexcept override { return !core_->off_loop(resumed_); }
  void measure(kj::FunctionParam<void()> segment) override {
    CallMeter meter(*core_, resumed_, self_, name_);
    segment();
  }
  /// Runs the first segment (co_spawn runs it in place), measured as the method's call is.
  /// (The caller makes these segments current: CurrentSegments.)
  void first(kj::FunctionParam<void()> segment) {
    CallMeter meter(*core_, first_, self_, name_);
    segment();
  }

 private:
  const std::shared_ptr<ServerCore> core_;
  CallStats* const first_;
  CallStats* const resumed_;
  const Object self_;
  const std::string name_;
};

/// `result`, a call's of `stats`'s method on `self`; when it is a coroutine's (builtin::Pending)
/// and the method is measured, with the segments that measure its runs.
inline Object with_segments(Object result, ServerCore& core, CallStats* stats, const Object& self, std::string_view name) {
  if (stats && result.is(builtin::pending_type()))
    result.as<builtin::Pending>().segments = std::make_shared<MethodSegments>(core.shared_from_this(), stats, self, std::string(name));
  return result;
}

/// A plain list or map whose get() or str() makes more than this many bytes (Shape::expansion) is
/// worked on off the network thread: an operation on it may take up to ops::max_expansion of
/// work, and inline on the network thread that would hold up every other client meanwhile.
inline constexpr std::uint64_t inline_expansion_limit = 64u << 10;
/// Lists and maps only: text and bytes expand to their own size, which came in one message. Two
/// type checks for anything else: this runs for every operand of every call.
inline bool expansive(const Object& o) {
  if (!o.is(builtin::list_type()) && !o.is(builtin::map_type())) return false;
  auto shape = builtin::shape(o);
  return shape.plain && shape.expansion > inline_expansion_limit;
}
inline bool any_expansive(const std::vector<Object>& objects) {
  for (auto& o : objects)
    if (expansive(o)) return true;
  return false;
}

/// What a call of the object itself is measured under: the function or class object (a bound
/// method: its method, as method_key), else the type. Null when nothing would run (the type has
/// no call operator).
inline const void* invoke_key(const Object& o) {
  if (o.is(builtin::function_type())) {
    auto& f = o.as<builtin::Function>();
    return f.method ? f.method : o.ptr.get();
  }
  if (o.is(builtin::class_type())) return o.ptr.get();
  return o.type && !o.type->call.empty() ? o.type : nullptr;
}
/// What a call of method `name` is measured under: the registered method itself. Null for a name
/// that is no method (the call fails at once), so that a client's names never make entries.
inline const void* method_key(const Object& o, std::string_view name) {
  if (!o.type) return nullptr;
  auto it = o.type->members.find(name);
  return it != o.type->members.end() && it->second.kind == Member::Kind::method ? &it->second : nullptr;
}

}  // namespace remoteable::detail
