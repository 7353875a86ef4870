// AsioStream (src/rpc/asio_stream.hpp): a kj::AsyncIoStream over a loopback TCP socket whose
// other end is a plain Asio socket. Reads (min and max, buffering, end of stream), writes (pieces,
// gathering into one socket write, sending early with expedite(), large writes), half-close,
// aborting and closing with a read pending, dropped reads, the bound on unsent bytes, and the
// socket-write count.

#include "rpc/asio_stream.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ioctl.h>

#include <asio/read.hpp>
#include <asio/write.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "rpc/connection.hpp"  // WireCounters
#include "rpc/kj_loop_support.hpp"

using remoteable::detail::AsioStream;
using remoteable::detail::KjLoop;
using remoteable::detail::WireCounters;
using namespace std::chrono_literals;

namespace {

kj::ArrayPtr<const kj::byte> bytes(const std::string& s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

/// A connected loopback pair: `stream` (an AsioStream on the loop) and `peer` (a plain socket
/// the test drives through the same context).
struct StreamFixture : test::LoopFixture {
  explicit StreamFixture(std::shared_ptr<WireCounters> counters = nullptr) {
    asio::ip::tcp::acceptor acceptor(context, {asio::ip::make_address("127.0.0.1"), 0});
    asio::ip::tcp::socket mine(context);
    mine.connect(acceptor.local_endpoint());
    peer = acceptor.accept();
    stream_fd = mine.native_handle();
    in_scope([&] { stream = kj::heap<AsioStream>(loop, std::move(mine), std::move(counters)); });
  }
  ~StreamFixture() {
    in_scope([&] { stream = nullptr; });
  }

  /// One tryRead(min, max), awaited: the bytes it returned.
  std::string read(std::size_t min, std::size_t max) {
    std::string buffer(max, '\0');
    auto n = settle([&] { return stream->tryRead(buffer.data(), min, max); });
    REQUIRE(n <= max);
    buffer.resize(n);
    return buffer;
  }
  /// Runs `f` in one loop handler and waits until it has run.
  template <class F>
  void on_loop(F&& f) {
    bool done = false;
    loop->run([&] {
      f();
      done = true;
    });
    REQUIRE(test::run_until(context, [&] { return done; }));
  }
  /// Bytes received on the stream's socket that the stream has not taken yet.
  int kernel_queued() const {
    int n = -1;
    ::ioctl(stream_fd, FIONREAD, &n);
    return n;
  }

  void peer_write(const std::string& s) { asio::write(peer, asio::buffer(s)); }
  std::string peer_read(std::size_t n) {
    std::string s(n, '\0');
    bool done = false;
    std::error_code error;
    asio::async_read(peer, asio::buffer(s), [&](std::error_code ec, std::size_t) {
      error = ec;
      done = true;
    });
    REQUIRE(test::run_until(context, [&] { return done; }));
    REQUIRE_FALSE(error);
    return s;
  }
  /// Everything the peer receives until the end of the stream.
  std::string peer_read_to_end() {
    std::string s;
    bool done = false;
    std::error_code error;
    asio::async_read(peer, asio::dynamic_buffer(s), [&](std::error_code ec, std::size_t) {
      error = ec;
      done = true;
    });
    REQUIRE(test::run_until(context, [&] { return done; }));
    CHECK(error == asio::error::eof);
    return s;
  }

  kj::Own<AsioStream> stream;
  asio::ip::tcp::socket peer{context};
  int stream_fd = -1;
};

}  // namespace

TEST_CASE("bytes the peer writes are read through tryRead") {
  StreamFixture f;
  f.peer_write("hello");
  CHECK(f.read(5, 5) == "hello");
}

TEST_CASE("tryRead returns at most max bytes and keeps the rest for the next read") {
  StreamFixture f;
  auto sent = pattern(100);
  f.peer_write(sent);
  CHECK(f.read(1, 10) == sent.substr(0, 10));
  CHECK(f.read(90, 200) == sent.substr(10));
}

TEST_CASE("tryRead waits for min bytes when fewer have arrived") {
  StreamFixture f;
  f.peer_write("0123");
  REQUIRE(test::run_until(f.context, [&] { return f.kernel_queued() == 4; }));

  std::string buffer(100, '\0');
  std::optional<std::size_t> got;
  kj::Maybe<kj::Promise<void>> held;
  f.loop->run([&] {
    held = f.stream->tryRead(buffer.data(), 10, 100).then([&](std::size_t n) { got = n; }).eagerlyEvaluate(nullptr);
  });
  REQUIRE(test::run_until(f.context, [&] { return f.kernel_queued() == 0; }));  // taken: 4 of 10
  test::run_ready(f.context);
  CHECK_FALSE(got);

  f.peer_write("456789");
  CHECK(test::run_until(f.context, [&] { return got.has_value(); }));
  f.in_scope([&] { held = nullptr; });
  REQUIRE(got);
  CHECK(*got == 10);
  CHECK(buffer.substr(0, 10) == "0123456789");
}

TEST_CASE("a read larger than the stream's buffer gets all the peer writes") {
  StreamFixture f;
  auto sent = pattern(1 << 20);
  bool written = false;
  asio::async_write(f.peer, asio::buffer(sent), [&](std::error_code ec, std::size_t) { written = !ec; });
  CHECK((f.read(sent.size(), sent.size()) == sent));  // (parenthesized: Catch would print megabytes)
  CHECK(test::run_until(f.context, [&] { return written; }));
}

TEST_CASE("the end of the stream ends a short read with what was there, then reads as 0 bytes") {
  StreamFixture f;
  f.peer_write("abc");
  f.peer.shutdown(asio::socket_base::shutdown_send);
  CHECK(f.read(10, 10) == "abc");
  CHECK(f.read(1, 10) == "");
  CHECK(f.read(1, 10) == "");
}

TEST_CASE("a pending read ends with 0 bytes when the peer closes") {
  StreamFixture f;
  std::optional<std::size_t> got;
  kj::Maybe<kj::Promise<void>> held;
  std::string buffer(10, '\0');
  f.loop->run([&] { held = f.stream->tryRead(buffer.data(), 1, 10).then([&](std::size_t n) { got = n; }).eagerlyEvaluate(nullptr); });
  test::run_ready(f.context);
  CHECK_FALSE(got);
  f.peer.close();
  CHECK(test::run_until(f.context, [&] { return got.has_value(); }));
  f.in_scope([&] { held = nullptr; });
  CHECK(got == std::size_t(0));
}

TEST_CASE("pieces written together reach the peer in order") {
  StreamFixture f;
  std::vector<std::string> parts{"ab", "", "cde", "f"};
  std::vector<kj::ArrayPtr<const kj::byte>> pieces;
  for (auto& p : parts) pieces.push_back(bytes(p));
  f.settle([&] { return f.stream->write(kj::arrayPtr(pieces.data(), pieces.size())); });
  std::string single = "ghi";
  f.settle([&] { return f.stream->write(single.data(), single.size()); });
  CHECK(f.peer_read(9) == "abcdefghi");
  CHECK(f.stream->unsent() == 0);
}

TEST_CASE("writes made in one loop handler go out in one socket write") {
  auto counters = std::make_shared<WireCounters>(false);
  StreamFixture f(counters);
  std::string a = "one ", b = "two ", c = "three ", d = "four";
  f.on_loop([&] {
    auto w1 = f.stream->write(a.data(), a.size());
    auto w2 = f.stream->write(b.data(), b.size());
    std::vector<kj::ArrayPtr<const kj::byte>> pieces{bytes(c), bytes(d)};
    auto w3 = f.stream->write(kj::arrayPtr(pieces.data(), pieces.size()));
    CHECK(counters->stats().writes == 0);  // gathered until the loop goes idle
  });
  CHECK(f.peer_read(18) == "one two three four");
  CHECK(counters->stats().writes == 1);

  f.on_loop([&] { auto w = f.stream->write(a.data(), a.size()); });
  CHECK(f.peer_read(4) == "one ");
  CHECK(counters->stats().writes == 2);
}

TEST_CASE("expedite sends what the handler wrote so far once per handler, and the rest at its end") {
  auto counters = std::make_shared<WireCounters>(false);
  StreamFixture f(counters);
  std::string a = "call ", b = "finish ", c = "answer";
  f.on_loop([&] {
    auto w1 = f.stream->write(a.data(), a.size());
    f.stream->expedite(true);
    CHECK(counters->stats().writes == 1);  // sent now, not at the end of the handler
    CHECK(f.stream->unsent() == 0);
    auto w2 = f.stream->write(b.data(), b.size());
    f.stream->expedite(true);  // the handler has sent early once: this waits for its end
    CHECK(counters->stats().writes == 1);
    CHECK(f.stream->unsent() == b.size());
  });
  CHECK(f.peer_read(a.size() + b.size()) == a + b);
  CHECK(counters->stats().writes == 2);

  // The next handler may send early again.
  f.on_loop([&] {
    auto w = f.stream->write(c.data(), c.size());
    f.stream->expedite(true);
    CHECK(counters->stats().writes == 3);
  });
  CHECK(f.peer_read(c.size()) == c);
  CHECK(counters->stats().writes == 3);
}

TEST_CASE("expedite waits for the end of the handler while more of its input is buffered") {
  auto counters = std::make_shared<WireCounters>(false);
  StreamFixture f(counters);
  f.peer_write("xy");
  REQUIRE(test::run_until(f.context, [&] { return f.kernel_queued() == 2; }));
  std::string answer = "answer";
  f.on_loop([&] {
    char first = 0;
    auto read = f.stream->tryRead(&first, 1, 1);  // takes "xy" into the stream's buffer, returns "x"
    CHECK(f.kernel_queued() == 0);
    auto w = f.stream->write(answer.data(), answer.size());
    f.stream->expedite(true);  // "y" is still to be read: its answer may follow, in the same send
    CHECK(counters->stats().writes == 0);
  });
  CHECK(f.peer_read(answer.size()) == answer);
  CHECK(counters->stats().writes == 1);
  CHECK(f.read(1, 1) == "y");
}

TEST_CASE("expedite sends a call early only from a handler that has read input") {
  auto counters = std::make_shared<WireCounters>(false);
  StreamFixture f(counters);
  std::string first = "call one ", second = "call two";
  // Calls an application makes together stay in one send.
  f.on_loop([&] {
    auto w1 = f.stream->write(first.data(), first.size());
    f.stream->expedite(false);
    CHECK(counters->stats().writes == 0);
    auto w2 = f.stream->write(second.data(), second.size());
    f.stream->expedite(false);
    CHECK(counters->stats().writes == 0);
  });
  CHECK(f.peer_read(first.size() + second.size()) == first + second);
  CHECK(counters->stats().writes == 1);

  // A call made in reaction to input (a callback) goes at once.
  f.peer_write("q");
  REQUIRE(test::run_until(f.context, [&] { return f.kernel_queued() == 1; }));
  f.on_loop([&] {
    char got = 0;
    auto read = f.stream->tryRead(&got, 1, 1);
    auto w = f.stream->write(first.data(), first.size());
    f.stream->expedite(false);
    CHECK(counters->stats().writes == 2);
  });
  CHECK(f.peer_read(first.size()) == first);
  CHECK(counters->stats().writes == 2);
}

TEST_CASE("a write larger than the socket takes at once reaches the peer whole") {
  StreamFixture f;
  auto sent = pattern(32 << 20);  // more than loopback buffers take
  f.settle([&] { return f.stream->write(sent.data(), sent.size()); });  // completes at once
  CHECK((f.peer_read(sent.size()) == sent));
  CHECK(f.stream->unsent() == 0);
  CHECK(f.stream->peak_unsent() > 0);  // the socket did not take it all at once
}

TEST_CASE("shutdownWrite sends what was written, then the end of the stream; reading goes on") {
  StreamFixture f;
  std::string bye = "bye";
  f.on_loop([&] {
    auto w = f.stream->write(bye.data(), bye.size());
    f.stream->shutdownWrite();
  });
  CHECK(f.peer_read_to_end() == "bye");
  f.peer_write("still here");
  CHECK(f.read(10, 10) == "still here");
}

TEST_CASE("abortRead ends a pending read with 0 bytes, and later reads too") {
  StreamFixture f;
  std::optional<std::size_t> got;
  kj::Maybe<kj::Promise<void>> held;
  std::string buffer(10, '\0');
  f.loop->run([&] { held = f.stream->tryRead(buffer.data(), 1, 10).then([&](std::size_t n) { got = n; }).eagerlyEvaluate(nullptr); });
  test::run_ready(f.context);
  CHECK_FALSE(got);
  f.on_loop([&] { f.stream->abortRead(); });
  CHECK(test::run_until(f.context, [&] { return got.has_value(); }));
  f.in_scope([&] { held = nullptr; });
  CHECK(got == std::size_t(0));
  f.peer_write("late");
  CHECK(f.read(1, 10) == "");
}

TEST_CASE("close() ends a pending read with 0 bytes and the peer sees the end of the stream") {
  StreamFixture f;
  std::optional<std::size_t> got;
  kj::Maybe<kj::Promise<void>> held;
  std::string buffer(10, '\0');
  f.loop->run([&] { held = f.stream->tryRead(buffer.data(), 1, 10).then([&](std::size_t n) { got = n; }).eagerlyEvaluate(nullptr); });
  test::run_ready(f.context);
  CHECK_FALSE(got);
  f.on_loop([&] { f.stream->close(); });
  CHECK(test::run_until(f.context, [&] { return got.has_value(); }));
  f.in_scope([&] { held = nullptr; });
  CHECK(got == std::size_t(0));
  CHECK(f.peer_read_to_end() == "");
}

TEST_CASE("destroying the stream ends a pending read and closes the socket") {
  StreamFixture f;
  std::optional<std::size_t> got;
  kj::Maybe<kj::Promise<void>> held;
  std::string buffer(10, '\0');
  f.loop->run([&] { held = f.stream->tryRead(buffer.data(), 1, 10).then([&](std::size_t n) { got = n; }).eagerlyEvaluate(nullptr); });
  test::run_ready(f.context);
  f.in_scope([&] { f.stream = nullptr; });
  CHECK(test::run_until(f.context, [&] { return got.has_value(); }));
  f.in_scope([&] { held = nullptr; });
  CHECK(got == std::size_t(0));
  CHECK(f.peer_read_to_end() == "");
}

TEST_CASE("a read dropped before its bytes arrive takes none of them, and writes nothing to its buffer") {
  StreamFixture f;
  // The dropped read's buffer is freed at once: under ASan, a write into it would be reported.
  auto buffer = std::make_unique<char[]>(64);
  kj::Maybe<kj::Promise<size_t>> dropped;
  f.on_loop([&] { dropped = f.stream->tryRead(buffer.get(), 1, 64); });
  test::run_ready(f.context);
  f.in_scope([&] { dropped = nullptr; });
  buffer.reset();
  f.peer_write("xyz");
  CHECK(f.read(3, 3) == "xyz");
}

TEST_CASE("writes fail once more than limit_unsent bytes wait; on_breach is told once and the socket closes") {
  // The peer reads nothing until the end: the socket fills, then the stream's own buffer.
  StreamFixture f;
  constexpr std::size_t limit = 1 << 20;
  std::vector<std::size_t> breaches;
  f.stream->limit_unsent(limit, [&](std::size_t queued) { breaches.push_back(queued); });

  auto chunk = pattern(64 << 10);
  int accepted = 0, refused = 0, other_errors = 0;
  kj::Vector<kj::Promise<void>> results;
  auto write_chunk = [&] {
    results.add(f.stream->write(chunk.data(), chunk.size())
                    .then([&] { ++accepted; },
                          [&](kj::Exception&& e) {
                            if (e.getType() == kj::Exception::Type::DISCONNECTED) ++refused;
                            else ++other_errors;
                          })
                    .eagerlyEvaluate(nullptr));
  };
  f.on_loop([&] {
    // All in one handler: the socket is never waited on meanwhile, so what it does not take
    // piles up in the stream.
    for (int i = 0; i < 4096 && breaches.empty(); ++i) write_chunk();
    write_chunk();  // after the breach
  });
  REQUIRE(test::run_until(f.context, [&] { return accepted + refused + other_errors == int(results.size()); }));
  f.in_scope([&] { results.clear(); });
  CHECK(refused == 2);  // the write that found too much waiting, and the one after it
  CHECK(other_errors == 0);
  REQUIRE(breaches.size() == 1);
  CHECK(breaches[0] > limit);
  CHECK(breaches[0] <= limit + chunk.size());
  CHECK(f.stream->unsent() == 0);  // dropped
  CHECK(f.stream->peak_unsent() > limit);
  // The peer gets what the socket had taken, then the end of the stream: the bytes waiting in
  // the stream at the breach are all that is missing.
  auto got = f.peer_read_to_end();
  CHECK(got.size() + breaches[0] == std::size_t(accepted) * chunk.size());
}

TEST_CASE("writes to a peer that has gone end with DISCONNECTED") {
  StreamFixture f;
  f.peer.close();
  std::string x = "x";
  std::optional<kj::Exception> failure;
  REQUIRE(test::run_until(f.context, [&] {
    try {
      f.settle([&] { return f.stream->write(x.data(), x.size()); });
    } catch (kj::Exception& e) {
      failure.emplace(e);
    }
    return failure.has_value();
  }));
  CHECK(failure->getType() == kj::Exception::Type::DISCONNECTED);
}

TEST_CASE("getsockname and getpeername name the two ends of the connection") {
  StreamFixture f;
  sockaddr_storage mine{}, theirs{};
  uint mine_len = sizeof mine, theirs_len = sizeof theirs;
  f.in_scope([&] {
    f.stream->getsockname(reinterpret_cast<sockaddr*>(&mine), &mine_len);
    f.stream->getpeername(reinterpret_cast<sockaddr*>(&theirs), &theirs_len);
  });
  REQUIRE(mine.ss_family == AF_INET);
  REQUIRE(theirs.ss_family == AF_INET);
  CHECK(ntohs(reinterpret_cast<sockaddr_in*>(&mine)->sin_port) == f.peer.remote_endpoint().port());
  CHECK(ntohs(reinterpret_cast<sockaddr_in*>(&theirs)->sin_port) == f.peer.local_endpoint().port());
}
