// The table of calls learned to be slow (ServerCore::learned_blocking, learn_blocking).

#include "actors/detail/slow_calls.hpp"

#include <spdlog/spdlog.h>

#include <mutex>

namespace remoteable::detail {

bool ServerCore::learned_blocking(const void* key, std::string_view name) {
  if (!any_learned_.load(std::memory_order_acquire)) return false;
  std::lock_guard lock(learned_mutex_);
  return learned_.find(LearnedLess::Key{key, name}) != learned_.end();
}

void ServerCore::learn_blocking(const void* key, std::string_view type, std::string_view name, std::chrono::nanoseconds took) {
  {
    std::lock_guard lock(learned_mutex_);
    if (!learned_.emplace(key, std::string(name)).second) return;
  }
  any_learned_.store(true, std::memory_order_release);
  log->warn("'{}{}{}' ran {} ms on the network thread; its calls now run on the actor pool "
            "(register it with remoteable::blocking)",
            type, name.empty() ? "" : ".", name, std::chrono::duration_cast<std::chrono::milliseconds>(took).count());
}

}  // namespace remoteable::detail
