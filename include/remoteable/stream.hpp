#pragma once
// remoteable::stream: a flow-controlled sequence of calls to one method of a sink object, from
// either side (a client writing to a server's object, or server code writing to an object a
// client shared with Client::share).

#include <asio/awaitable.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <remoteable/error.hpp>
#include <remoteable/handle.hpp>

namespace remoteable {

namespace detail {
class StreamState;
}

struct StreamOptions {
  /// Bytes of writes sent and not yet answered, at most (the size of each write's message).
  /// A write that does not fit waits until earlier ones are answered; one larger than the
  /// window goes alone, when nothing else is in flight.
  std::size_t window_bytes = 1 << 20;
  /// Called (with no arguments) by close() once every write is answered. Empty: none.
  std::string end_method;
  /// Called with (kind, message), both text, when the writer ends the stream with an error:
  /// fail(), or the writer dropped before close() (kind "cancelled"). Empty: none.
  std::string fail_method;
};

/// The writing end of a stream: made by remoteable::stream(). Each write(args...) is a call of
/// the sink's method with those arguments; the sink's actor runs them one at a time, in order.
///
/// Flow control: write() completes as soon as the write is sent while the bytes in flight
/// (sent, not yet answered by the sink) fit in StreamOptions::window_bytes; else it waits until
/// enough earlier writes are answered. A sink that stops reading (its method does not return)
/// stalls the writer with at most a window of bytes in flight.
///
/// Errors: once the sink's method fails for one write, the writes after it run nothing, and the
/// next write() or close() throws that error (RemoteError, with its kind). fail() ends the stream
/// from the writer's side: the sink's fail_method learns the kind and message.
///
/// Ownership and threads: move-only. Await one operation at a time (each write before the
/// next). Any executor; its work runs on the sink handle's connection. Dropping it before
/// close() lets the writes in flight finish and calls fail_method with "cancelled".
class StreamWriter {
 public:
  StreamWriter() = default;
  StreamWriter(StreamWriter&& other) noexcept : state_(std::move(other.state_)) {}
  StreamWriter& operator=(StreamWriter&& other) noexcept;
  StreamWriter(const StreamWriter&) = delete;
  StreamWriter& operator=(const StreamWriter&) = delete;
  ~StreamWriter();

  /// Writes one call of the sink's method with these arguments (plain values or handles).
  template <class... A>
  [[nodiscard]] asio::awaitable<void> write(A&&... args) {
    return write_list({Value(std::forward<A>(args))...});
  }
  [[nodiscard]] asio::awaitable<void> write_list(std::vector<Value> args);
  /// Waits until every write is answered, then calls end_method (if set). Throws the first
  /// error of the stream. Writes after it fail.
  [[nodiscard]] asio::awaitable<void> close();
  /// Ends the stream with an error: no more writes are sent (later writes throw it); after the
  /// writes in flight, the sink's fail_method (if set) is called with (kind, message). If the
  /// sink failed first, nothing is sent. Throws if a write still in flight fails (that error)
  /// or the sink's fail_method does.
  [[nodiscard]] asio::awaitable<void> fail(ErrorKind kind, std::string message);

  /// Bytes sent and not yet answered. Any thread.
  std::size_t bytes_in_flight() const noexcept;
  /// Writes answered by the sink so far. Any thread.
  std::uint64_t writes_answered() const noexcept;
  /// True unless default-constructed or moved from.
  explicit operator bool() const noexcept { return state_ != nullptr; }

 private:
  friend StreamWriter stream(const Handle& sink, std::string_view method, StreamOptions options);
  explicit StreamWriter(std::shared_ptr<detail::StreamState> state) : state_(std::move(state)) {}
  void reset() noexcept;
  std::shared_ptr<detail::StreamState> state_;
};

/// Opens a stream of calls to `sink`'s method `method` (no round trip: the first write is
/// pipelined on the opening). Throws std::invalid_argument for a zero window, RemoteError
/// (disconnected) for an empty handle. A method the sink does not have fails the first write.
[[nodiscard]] StreamWriter stream(const Handle& sink, std::string_view method, StreamOptions options = {});

}  // namespace remoteable
