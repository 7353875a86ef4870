#pragma once
// Actors: who owns which server objects, and the strand their operations run on (DESIGN §4).

#include <asio/post.hpp>
#include <asio/strand.hpp>
#include <asio/thread_pool.hpp>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "actors/object.hpp"

namespace remoteable::detail {

/// An actor: a strand on the server's thread pool. Every operation on an object the actor owns
/// runs on this strand, one at a time, in the order the operations were posted.
///
/// Ownership and threads: shared by the exports and capabilities of its objects; destroying the
/// last reference lets queued work finish (the strand keeps itself alive) and frees the strand.
class Actor {
 public:
  using Strand = asio::strand<asio::thread_pool::executor_type>;
  explicit Actor(asio::thread_pool& pool) : strand_(asio::make_strand(pool.get_executor())) {}

  template <class F>
  void post(F&& f) {
    asio::post(strand_, std::forward<F>(f));
  }
  const Strand& strand() const noexcept { return strand_; }

 private:
  Strand strand_;
};

/// Which actor owns an object, by the object's address (DESIGN §4 rule 1).
///
/// Guarded by a mutex: it is read and written from every actor's strand and from the exporting
/// thread, and no single strand owns it.
class IdentityMap {
 public:
  /// The live owner of the object at `o`'s address, if any.
  std::shared_ptr<Actor> owner(const Object& o) const;
  /// Records `actor` as the owner of `o` unless a live actor owns it already; returns the owner.
  std::shared_ptr<Actor> claim(const Object& o, const std::shared_ptr<Actor>& actor);
  std::size_t size() const;

 private:
  struct Entry {
    std::weak_ptr<void> object;
    std::weak_ptr<Actor> actor;
  };
  void sweep();  // drops entries whose object or actor is gone
  mutable std::mutex mutex_;
  std::unordered_map<const void*, Entry> entries_;
  std::size_t sweep_at_ = 1024;
};

}  // namespace remoteable::detail
