#pragma once
// Which calls run off the network thread: those that ran too long inline once (SlowWatch, the
// table in ServerCore::learn_blocking) and those on values that expand far. Internal.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <remoteable/detail/builtins.hpp>
#include <remoteable/detail/object.hpp>
#include "actors/detail/server_core.hpp"

namespace remoteable::detail {

/// Times a call that runs inline on the network thread; one that runs past
/// ServerOptions::slow_call is sent to the pool from then on.
class SlowWatch {
 public:
  SlowWatch(ServerCore& core, const void* key, const Object& self, std::string_view name)
      : core_(core), key_(key), self_(self), name_(name),
        timed_(core.options.slow_call.count() > 0 && core.loop->in_loop()) {
    if (timed_) start_ = std::chrono::steady_clock::now();
  }
  ~SlowWatch() {
    if (!timed_) return;
    auto took = std::chrono::steady_clock::now() - start_;
    if (took <= core_.options.slow_call) return;
    std::string what = self_.type ? self_.type->name : "";
    if (self_.is(builtin::function_type())) what = self_.as<builtin::Function>().name;
    else if (self_.is(builtin::class_type())) what = self_.as<builtin::ClassObject>().type->name + " constructor";
    core_.learn_blocking(key_, what, name_, took);
  }
  SlowWatch(const SlowWatch&) = delete;
  SlowWatch& operator=(const SlowWatch&) = delete;

 private:
  ServerCore& core_;
  const void* key_;
  const Object& self_;
  std::string_view name_;
  bool timed_;
  std::chrono::steady_clock::time_point start_;
};

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

/// What a call of the object itself is learned under: the function or class object, else the type.
inline const void* invoke_key(const Object& o) {
  if (o.is(builtin::function_type()) || o.is(builtin::class_type())) return o.ptr.get();
  return o.type;
}

}  // namespace remoteable::detail
