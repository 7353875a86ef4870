#pragma once
// remoteable::Iteration: reading a remote sequence (a list, a map's keys, a registered container,
// a generator) in batches fetched ahead (Handle::iterate).

#include <asio/awaitable.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include <remoteable/handle.hpp>

namespace remoteable {

namespace detail {
class IterationState;
}

struct IterateOptions {
  /// Elements per batch; 0: ClientOptions::iterate_batch. The server clamps it to its
  /// ServerOptions::max_iterate_batch.
  std::uint32_t batch = 0;
};

/// One pass over the elements of a remote object, made by Handle::iterate.
///
/// Elements come in batches of IterateOptions::batch: each batch is one round trip, and the
/// next is requested as soon as one arrives, so a loop over N elements costs about N / batch
/// round trips, overlapped with the caller's work. Plain elements arrive as values; registered
/// objects as handles (as Handle::item gives them).
///
/// What is iterated: a list (its elements), a map (its keys, in order), a registered type with
/// begin()/end() (a snapshot of its elements taken on its actor when the first batch is made:
/// later changes to the container are not seen), or the result of a method returning
/// remoteable::Generator<T> (run on its actor only as far as the batches asked for; once only).
/// Anything else fails with a type error at the first next().
///
/// Dropping the Iteration ends it: the server drops its snapshot, or destroys the generator.
/// Errors (the server's, a generator's exception, a lost connection) surface as RemoteError from
/// next() or next_batch(). Move-only; one caller at a time: await each next() before the
/// following, and keep the Iteration alive while an await of it is pending.
class Iteration {
 public:
  /// An empty iteration (also what an empty Handle gives): next() fails with a disconnected error.
  Iteration() = default;
  explicit Iteration(std::shared_ptr<detail::IterationState> state);
  Iteration(Iteration&&) noexcept;
  Iteration& operator=(Iteration&&) noexcept;
  ~Iteration();

  /// The next element, or nullopt at the end.
  [[nodiscard]] asio::awaitable<std::optional<Value>> next();
  /// The rest of the current batch (the next one, if it has been consumed): empty at the end.
  [[nodiscard]] asio::awaitable<std::vector<Value>> next_batch();

 private:
  std::shared_ptr<detail::IterationState> state_;
  std::vector<Value> buffer_;
  std::size_t at_ = 0;
  bool ended_ = false;
};

}  // namespace remoteable
