#pragma once
// The inline offer: one operation that an actor's strand may run on the calling thread instead
// of posting it to the actor pool. Shared by the server's actors (Actor::dispatch) and by
// completions that resume a coroutine on the loop thread (Completion). Internal.

namespace remoteable::detail {

/// Set for the length of one dispatch: the next execute() on an InlineOr executor runs the work
/// at once instead of posting it. Consumed by that execute(), so the strand's later work goes to
/// the pool.
inline thread_local bool inline_offer = false;

/// Makes the offer for its lifetime, and withdraws it at the end if nothing took it.
struct InlineOffer {
  InlineOffer() noexcept { inline_offer = true; }
  ~InlineOffer() { inline_offer = false; }
  InlineOffer(const InlineOffer&) = delete;
  InlineOffer& operator=(const InlineOffer&) = delete;
};

}  // namespace remoteable::detail
