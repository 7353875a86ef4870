#include "actors/actor.hpp"

#include <algorithm>

namespace remoteable::detail {
namespace {
std::atomic<std::uint64_t> next_actor_id{1};
// Merges are rare; one lock for all of them keeps two concurrent merges from forming a cycle.
std::mutex merge_mutex;
}  // namespace

Actor::Actor(asio::thread_pool& pool) : id_(next_actor_id.fetch_add(1)), strand_(InlineOr<asio::thread_pool::executor_type>(pool.get_executor())) {}

std::shared_ptr<Actor> Actor::forwarded_to() {
  if (!merged_.load(std::memory_order_acquire)) return nullptr;
  std::lock_guard lock(mutex_);
  return forward_;
}

std::shared_ptr<Actor> Actor::root() {
  auto current = shared_from_this();
  while (auto next = current->forwarded_to()) current = std::move(next);
  return current;
}

std::pair<std::shared_ptr<Actor>, std::vector<std::shared_ptr<Actor>>> Actor::merge(std::vector<std::shared_ptr<Actor>> actors) {
  std::lock_guard lock(merge_mutex);
  for (auto& a : actors) a = a->root();
  std::sort(actors.begin(), actors.end(), [](auto& x, auto& y) { return x->id_ < y->id_; });
  actors.erase(std::unique(actors.begin(), actors.end()), actors.end());
  auto winner = actors.front();
  std::vector<std::shared_ptr<Actor>> losers(actors.begin() + 1, actors.end());
  for (auto& l : losers) {
    std::lock_guard inner(l->mutex_);
    l->forward_ = winner;
    l->merged_.store(true, std::memory_order_release);
  }
  return {winner, losers};
}

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
