#pragma once
// Actors: who owns which server objects, and the strand their operations run on (DESIGN §4).

#include <asio/dispatch.hpp>
#include <asio/execution/execute.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>
#include <asio/query.hpp>
#include <asio/require.hpp>
#include <asio/strand.hpp>
#include <asio/thread_pool.hpp>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include <remoteable/detail/object.hpp>
#include "peer/detail/inline_offer.hpp"

namespace remoteable::detail {

/// An executor that posts to `Inner` (the actor pool), except for one execute() made while
/// `inline_offer` is set, which runs inline. An actor's strand sits on it: when the strand is
/// idle, Actor::dispatch runs the operation on the calling (network) thread, still inside the
/// strand, so one-at-a-time holds; when it is busy, the operation queues behind the running one.
template <class Inner>
class InlineOr {
 public:
  explicit InlineOr(Inner inner) noexcept : inner_(std::move(inner)) {}

  template <class F>
  void execute(F&& f) const {
    if (inline_offer) {
      inline_offer = false;
      std::forward<F>(f)();
      return;
    }
    asio::execution::execute(inner_, std::forward<F>(f));
  }

  template <class P>
    requires asio::can_query<const Inner&, const P&>::value
  decltype(auto) query(const P& p) const noexcept(asio::is_nothrow_query<const Inner&, const P&>::value) {
    return asio::query(inner_, p);
  }
  template <class P>
    requires asio::can_require<const Inner&, const P&>::value
  auto require(const P& p) const {
    return InlineOr<std::decay_t<decltype(asio::require(inner_, p))>>(asio::require(inner_, p));
  }
  template <class P>
    requires asio::can_prefer<const Inner&, const P&>::value
  auto prefer(const P& p) const {
    return InlineOr<std::decay_t<decltype(asio::prefer(inner_, p))>>(asio::prefer(inner_, p));
  }

  friend bool operator==(const InlineOr& a, const InlineOr& b) noexcept { return a.inner_ == b.inner_; }
  friend bool operator!=(const InlineOr& a, const InlineOr& b) noexcept { return !(a == b); }

 private:
  Inner inner_;
};

/// An actor: a strand on the server's thread pool. Every operation on an object the actor owns
/// runs on this strand, one at a time, in the order the operations were posted.
///
/// An actor can be merged into another (merge_and_post): from then on it forwards all its work
/// to the other's strand, so objects that reference each other are serialized by one strand.
///
/// Ownership and threads: shared by the exports and capabilities of its objects, and by actors
/// merged into it. Thread-safe. Destroying the last reference lets queued work finish.
class Actor : public std::enable_shared_from_this<Actor> {
 public:
  using Strand = asio::strand<InlineOr<asio::thread_pool::executor_type>>;
  explicit Actor(asio::thread_pool& pool);

  /// Runs `f` on this actor (or the one it was merged into): inline on the calling thread when
  /// the actor is idle, else queued like post(). For operations that do not block, called from
  /// the network thread: it saves two thread hops per call.
  template <class F>
  void dispatch(F&& f) {
    auto target = root();
    InlineOffer offer;
    asio::dispatch(target->strand_, [self = target, f = std::forward<F>(f)]() mutable {
      inline_offer = false;  // whatever f does, nothing else runs inline on this offer
      if (auto next = self->forwarded_to()) next->post(std::move(f));  // merged meanwhile
      else f();
    });
  }

  /// Runs `f` on this actor's strand, or on the strand of the actor it was merged into.
  template <class F>
  void post(F&& f) {
    asio::post(strand_, [self = shared_from_this(), f = std::forward<F>(f)]() mutable {
      // Work queued before a merge is forwarded when it comes up.
      if (auto target = self->forwarded_to()) target->post(std::move(f));
      else f();
    });
  }
  const Strand& strand() const noexcept { return strand_; }
  std::uint64_t id() const noexcept { return id_; }

  /// The actor that really runs this actor's work (itself unless merged).
  std::shared_ptr<Actor> root();

  /// Merges the roots of `self` and of `others` into one (the oldest), then runs `f` on it once
  /// every merged actor has finished the work it was running (DESIGN §4 rule 4).
  template <class F>
  static void merge_and_post(const std::shared_ptr<Actor>& self, const std::vector<std::shared_ptr<Actor>>& others, F&& f);

 private:
  std::shared_ptr<Actor> forwarded_to();
  /// Sets the forwarding of every root in `actors` but the oldest; returns {winner, losers}.
  static std::pair<std::shared_ptr<Actor>, std::vector<std::shared_ptr<Actor>>> merge(
      std::vector<std::shared_ptr<Actor>> actors);

  const std::uint64_t id_;
  Strand strand_;
  std::atomic<bool> merged_{false};
  // Guards forward_: read by every post (from any thread), written once by a merge. A strand
  // cannot guard it: the readers are other actors' strands and the network thread.
  std::mutex mutex_;
  std::shared_ptr<Actor> forward_;
};

template <class F>
void Actor::merge_and_post(const std::shared_ptr<Actor>& self, const std::vector<std::shared_ptr<Actor>>& others, F&& f) {
  std::vector<std::shared_ptr<Actor>> all{self};
  all.insert(all.end(), others.begin(), others.end());
  auto [winner, losers] = merge(std::move(all));
  if (losers.empty()) return winner->post(std::forward<F>(f));
  // A barrier on each loser's own strand (not forwarded): when it runs, whatever the loser was
  // running has finished. The last barrier hands the work to the winner.
  auto remaining = std::make_shared<std::atomic<std::size_t>>(losers.size());
  auto work = std::make_shared<std::decay_t<F>>(std::forward<F>(f));
  for (auto& loser : losers) {
    asio::post(loser->strand_, [remaining, work, winner = winner] {
      if (remaining->fetch_sub(1) == 1) winner->post(std::move(*work));
    });
  }
}

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
