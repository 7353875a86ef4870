// TlsStream (src/rpc/tls_stream.hpp): a kj::AsyncIoStream over a loopback TLS connection whose
// handshake Asio did. Bytes that came with the client's Finished, session tickets that come after
// the handshake with no data, large transfers both ways, gathered writes, the ends of the stream
// (TCP's end and close_notify), bytes that are not TLS, and the bound on unsent bytes.

#include "rpc/tls_stream.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <asio/read.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/write.hpp>
#include <optional>
#include <string>
#include <vector>

#include "pki.hpp"
#include "rpc/asio_stream.hpp"  // ByteCounts
#include "rpc/connection.hpp"   // WireCounters
#include "rpc/kj_loop_support.hpp"
#include "rpc/tls.hpp"

using remoteable::detail::ByteCounts;
using remoteable::detail::TlsConnection;
using remoteable::detail::TlsStream;
using remoteable::detail::WireCounters;
using namespace std::chrono_literals;

namespace {

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

auto server_context() { return remoteable::detail::server_context(test::pki().server("server")); }
auto client_context() { return remoteable::detail::client_context(test::pki().client()); }

/// A loopback TCP pair on the fixture's context: `mine` for the stream, `theirs` for the peer.
struct Sockets {
  explicit Sockets(asio::io_context& context) : mine(context), theirs(context) {
    asio::ip::tcp::acceptor acceptor(context, {asio::ip::make_address("127.0.0.1"), 0});
    mine.connect(acceptor.local_endpoint());
    theirs = acceptor.accept();
  }
  asio::ip::tcp::socket mine, theirs;
};

/// A TLS connection whose other end (`peer`, an asio::ssl::stream) the test drives through the
/// same context. `stream_is_server`: the stream's side accepted the handshake.
struct TlsFixture : test::LoopFixture {
  explicit TlsFixture(bool stream_is_server = false, std::shared_ptr<WireCounters> counters = nullptr,
                      std::shared_ptr<ByteCounts> bytes = nullptr) {
    Sockets s(context);
    auto mine = std::make_unique<TlsConnection>(stream_is_server ? server_context() : client_context(), std::move(s.mine));
    peer_connection = std::make_unique<TlsConnection>(stream_is_server ? client_context() : server_context(), std::move(s.theirs));
    std::optional<std::error_code> mine_done, peer_done;
    using asio::ssl::stream_base;
    mine->stream.async_handshake(stream_is_server ? stream_base::server : stream_base::client,
                                 [&](std::error_code ec) { mine_done = ec; });
    peer().async_handshake(stream_is_server ? stream_base::client : stream_base::server,
                           [&](std::error_code ec) { peer_done = ec; });
    // The stream starts when its own side is done, as a connection does: the client's side is
    // done before the server has read its Finished (and sent its session tickets).
    REQUIRE(test::run_until(context, [&] { return mine_done.has_value(); }));
    REQUIRE_FALSE(*mine_done);
    in_scope([&] { stream = kj::heap<TlsStream>(loop, std::move(mine), std::move(counters), std::move(bytes)); });
    REQUIRE(test::run_until(context, [&] { return peer_done.has_value(); }));
    REQUIRE_FALSE(*peer_done);
  }
  ~TlsFixture() {
    in_scope([&] { stream = nullptr; });
  }
  remoteable::detail::TlsSocket& peer() { return peer_connection->stream; }

  std::string read(std::size_t min, std::size_t max) {
    std::string buffer(max, '\0');
    auto n = settle([&] { return stream->tryRead(buffer.data(), min, max); });
    REQUIRE(n <= max);
    buffer.resize(n);
    return buffer;
  }
  template <class F>
  void on_loop(F&& f) {
    bool done = false;
    loop->run([&] {
      f();
      done = true;
    });
    REQUIRE(test::run_until(context, [&] { return done; }));
  }
  void peer_write(const std::string& s) {
    std::optional<std::error_code> done;
    asio::async_write(peer(), asio::buffer(s), [&](std::error_code ec, std::size_t) { done = ec; });
    REQUIRE(test::run_until(context, [&] { return done.has_value(); }));
    REQUIRE_FALSE(*done);
  }
  std::string peer_read(std::size_t n) {
    std::string s(n, '\0');
    std::optional<std::error_code> done;
    asio::async_read(peer(), asio::buffer(s), [&](std::error_code ec, std::size_t) { done = ec; });
    REQUIRE(test::run_until(context, [&] { return done.has_value(); }));
    REQUIRE_FALSE(*done);
    return s;
  }
  /// Everything the peer reads until the connection ends, and how it ended.
  std::pair<std::string, std::error_code> peer_read_to_end() {
    std::string s;
    std::optional<std::error_code> done;
    asio::async_read(peer(), asio::dynamic_buffer(s), [&](std::error_code ec, std::size_t) { done = ec; });
    REQUIRE(test::run_until(context, [&] { return done.has_value(); }));
    return {s, *done};
  }

  std::unique_ptr<TlsConnection> peer_connection;
  kj::Own<TlsStream> stream;
};

}  // namespace

TEST_CASE("over TLS, bytes the peer writes are read through tryRead, and the stream's writes reach the peer") {
  auto bytes = std::make_shared<ByteCounts>();
  TlsFixture f(false, nullptr, bytes);
  f.peer_write("hello");
  CHECK(f.read(5, 5) == "hello");
  std::string answer = "world";
  f.settle([&] { return f.stream->write(answer.data(), answer.size()); });
  CHECK(f.peer_read(5) == "world");
  CHECK(f.stream->unsent() == 0);
  CHECK(bytes->received == 5);  // the application's bytes
  CHECK(bytes->sent == 5);
}

TEST_CASE("session tickets that come after the handshake with no data leave a read waiting for the data") {
  // The stream is the client: the server's session tickets (TLS 1.3) reach it after its
  // handshake, records that OpenSSL reads without any data for the stream.
  TlsFixture f(false);
  REQUIRE(SSL_version(f.peer().native_handle()) == TLS1_3_VERSION);
  std::optional<std::size_t> got;
  kj::Maybe<kj::Promise<void>> held;
  std::string buffer(16, '\0');
  f.loop->run([&] { held = f.stream->tryRead(buffer.data(), 4, 16).then([&](std::size_t n) { got = n; }).eagerlyEvaluate(nullptr); });
  test::run_ready(f.context);
  CHECK_FALSE(got);
  f.peer_write("data");
  CHECK(test::run_until(f.context, [&] { return got.has_value(); }));
  f.in_scope([&] { held = nullptr; });
  REQUIRE(got == std::size_t(4));
  CHECK(buffer.substr(0, 4) == "data");
}

TEST_CASE("a client's first request in the same segment as its Finished is read after the server's handshake") {
  // The client is OpenSSL on memory BIOs, so that the test chooses the segments: its Finished
  // and its first record go out in one write, and Asio's handshake on the server reads both.
  test::LoopFixture f;
  Sockets s(f.context);
  auto server = std::make_unique<TlsConnection>(server_context(), std::move(s.mine));
  auto client_context_ = client_context();
  SSL* client = SSL_new(client_context_->native_handle());
  BIO* to_client = BIO_new(BIO_s_mem());
  BIO* from_client = BIO_new(BIO_s_mem());
  SSL_set_bio(client, to_client, from_client);
  SSL_set1_host(client, "localhost");
  auto send_from_client = [&] {
    std::vector<char> bytes(static_cast<std::size_t>(BIO_ctrl_pending(from_client)));
    REQUIRE(BIO_read(from_client, bytes.data(), static_cast<int>(bytes.size())) == int(bytes.size()));
    asio::write(s.theirs, asio::buffer(bytes));  // one write, one segment on loopback
  };
  std::optional<std::error_code> handshake;
  server->stream.async_handshake(asio::ssl::stream_base::server, [&](std::error_code ec) { handshake = ec; });
  REQUIRE(SSL_connect(client) == -1);  // the ClientHello
  send_from_client();
  while (SSL_connect(client) != 1) {
    REQUIRE(SSL_get_error(client, -1) == SSL_ERROR_WANT_READ);
    REQUIRE(test::run_until(f.context, [&] { return s.theirs.available() > 0; }));
    std::vector<char> bytes(s.theirs.available());
    s.theirs.read_some(asio::buffer(bytes));
    BIO_write(to_client, bytes.data(), static_cast<int>(bytes.size()));
  }
  std::string request = "first request";
  REQUIRE(SSL_write(client, request.data(), static_cast<int>(request.size())) == int(request.size()));
  send_from_client();  // Finished and the request together
  REQUIRE(test::run_until(f.context, [&] { return handshake.has_value(); }));
  REQUIRE_FALSE(*handshake);

  kj::Own<TlsStream> stream;
  f.in_scope([&] { stream = kj::heap<TlsStream>(f.loop, std::move(server)); });
  std::string buffer(64, '\0');
  auto n = f.settle([&] { return stream->tryRead(buffer.data(), request.size(), buffer.size()); });
  CHECK(buffer.substr(0, n) == request);
  f.in_scope([&] { stream = nullptr; });
  SSL_free(client);
}

TEST_CASE("large writes both ways over TLS arrive whole and in order") {
  TlsFixture f(true);
  auto sent = pattern(8 << 20);  // more than loopback buffers take: writes wait and go on
  f.settle([&] { return f.stream->write(sent.data(), sent.size()); });  // completes at once
  CHECK((f.peer_read(sent.size()) == sent));
  CHECK(f.stream->unsent() == 0);
  CHECK(f.stream->peak_unsent() >= sent.size());

  auto incoming = pattern(3 << 20);
  std::optional<std::error_code> written;
  asio::async_write(f.peer(), asio::buffer(incoming), [&](std::error_code ec, std::size_t) { written = ec; });
  std::string got(incoming.size(), '\0');
  // Reads larger than the stream's buffer decrypt straight into the caller's.
  auto n = f.settle([&] { return f.stream->tryRead(got.data(), got.size(), got.size()); });
  CHECK(n == incoming.size());
  CHECK((got == incoming));
  REQUIRE(test::run_until(f.context, [&] { return written.has_value(); }));
}

TEST_CASE("over TLS, writes made in one loop handler go out in one socket write") {
  auto counters = std::make_shared<WireCounters>(false);
  TlsFixture f(true, counters);
  auto before = counters->stats().writes;
  std::string a = "one ", b = "two ", c = "three";
  f.on_loop([&] {
    auto w1 = f.stream->write(a.data(), a.size());
    auto w2 = f.stream->write(b.data(), b.size());
    auto w3 = f.stream->write(c.data(), c.size());
  });
  CHECK(f.peer_read(13) == "one two three");
  CHECK(counters->stats().writes == before + 1);
}

TEST_CASE("over TLS, the end of the TCP stream and close_notify both read as the end") {
  SECTION("the peer closes its socket") {
    TlsFixture f(false);  // (the server has read all the client sent: its close sends no reset)
    f.peer_write("last");
    f.peer().next_layer().close();
    CHECK(f.read(4, 4) == "last");
    CHECK(f.read(1, 4) == "");
  }
  SECTION("the peer sends close_notify") {
    TlsFixture f(true);
    bool shut = false;
    f.peer().async_shutdown([&](std::error_code) { shut = true; });  // waits for ours: never comes
    CHECK(f.read(1, 4) == "");
    f.in_scope([&] { f.stream = nullptr; });
    CHECK(test::run_until(f.context, [&] { return shut; }));
  }
}

TEST_CASE("shutdownWrite over TLS sends what was written, then the end of the stream; reading goes on") {
  TlsFixture f(true);
  std::string bye = "bye";
  f.on_loop([&] {
    auto w = f.stream->write(bye.data(), bye.size());
    f.stream->shutdownWrite();
  });
  auto [got, ended] = f.peer_read_to_end();
  CHECK(got == "bye");
  CHECK(ended == asio::ssl::error::stream_truncated);  // no close_notify, as documented
  f.peer_write("still here");
  CHECK(f.read(10, 10) == "still here");
}

TEST_CASE("bytes that are not TLS records fail the read with a security error") {
  TlsFixture f(true);
  std::string junk(64, 'x');
  asio::write(f.peer().next_layer(), asio::buffer(junk));
  try {
    f.read(1, 16);
    FAIL("the read succeeded");
  } catch (kj::Exception& e) {
    CHECK(std::string(e.getDescription().cStr()).find("TLS read failed") != std::string::npos);
  }
  CHECK(f.stream->failure() != nullptr);
}

TEST_CASE("over TLS, writes fail once more than limit_unsent bytes wait, and on_breach is told once") {
  TlsFixture f(true);
  constexpr std::size_t limit = 1 << 20;
  std::vector<std::size_t> breaches;
  f.stream->limit_unsent(limit, [&](std::size_t queued) { breaches.push_back(queued); });
  auto chunk = pattern(64 << 10);
  int accepted = 0, refused = 0;
  kj::Vector<kj::Promise<void>> results;
  f.on_loop([&] {
    for (int i = 0; i < 4096 && breaches.empty(); ++i)
      results.add(f.stream->write(chunk.data(), chunk.size()).then([&] { ++accepted; }, [&](kj::Exception&&) { ++refused; }).eagerlyEvaluate(nullptr));
  });
  REQUIRE(test::run_until(f.context, [&] { return accepted + refused == int(results.size()); }));
  f.in_scope([&] { results.clear(); });
  CHECK(refused == 1);
  REQUIRE(breaches.size() == 1);
  CHECK(breaches[0] > limit);
  CHECK(f.stream->unsent() == 0);
  CHECK(f.stream->descriptor() < 0);
}
