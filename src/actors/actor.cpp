#include "actors/actor.hpp"

namespace remoteable::detail {

std::shared_ptr<Actor> IdentityMap::owner(const Object& o) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(o.ptr.get());
  if (it == entries_.end() || it->second.object.expired()) return nullptr;
  return it->second.actor.lock();
}

std::shared_ptr<Actor> IdentityMap::claim(const Object& o, const std::shared_ptr<Actor>& actor) {
  std::lock_guard lock(mutex_);
  auto [it, inserted] = entries_.try_emplace(o.ptr.get());
  if (!inserted && !it->second.object.expired())
    if (auto existing = it->second.actor.lock()) return existing;
  it->second = Entry{o.ptr, actor};
  if (entries_.size() >= sweep_at_) sweep();
  return actor;
}

std::size_t IdentityMap::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

void IdentityMap::sweep() {
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.object.expired() || it->second.actor.expired()) it = entries_.erase(it);
    else ++it;
  }
  sweep_at_ = std::max<std::size_t>(1024, entries_.size() * 2);
}

}  // namespace remoteable::detail
