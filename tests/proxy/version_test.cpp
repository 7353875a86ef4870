// The protocol version: a server reports it (Registry.version), Client::connect checks it. The
// servers of other versions here are plain Cap'n Proto servers written with the schema alone,
// on their own thread and loopback port.

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include <atomic>
#include <future>
#include <thread>

#include <remoteable/version.hpp>

#include "schemas/remoteable.capnp.h"
#include "support.hpp"

using remoteable::ErrorKind;
namespace wire = remoteable::wire;

namespace {

/// How a fake server answers Registry.version.
enum class Answer { protocol, unimplemented, never };

/// A Registry that implements version only (everything else is Cap'n Proto's "unimplemented").
class FakeRegistry final : public wire::Registry::Server {
 public:
  FakeRegistry(Answer answer, std::uint32_t protocol) : answer_(answer), protocol_(protocol) {}

 protected:
  kj::Promise<void> version(VersionContext context) override {
    if (answer_ == Answer::unimplemented) return wire::Registry::Server::version(context);
    if (answer_ == Answer::never) return kj::NEVER_DONE;
    context.getResults().setProtocol(protocol_);
    context.getResults().setLibrary("9.9.9");
    return kj::READY_NOW;
  }

 private:
  Answer answer_;
  std::uint32_t protocol_;
};

/// A fake server on 127.0.0.1 and a free port, on its own thread, counting its connections.
class FakeServer {
 public:
  explicit FakeServer(Answer answer, std::uint32_t protocol = remoteable::protocol_version)
      : thread_([this, answer, protocol] { run(answer, protocol); }) {
    port_ = port_promise_.get_future().get();
  }
  ~FakeServer() {
    stop_ = true;
    thread_.join();
  }
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  remoteable::Endpoint endpoint() const { return {"127.0.0.1", port_}; }
  int accepted() const { return accepted_.load(); }

 private:
  void run(Answer answer, std::uint32_t protocol) {
    auto io = kj::setupAsyncIo();
    auto listener = io.provider->getNetwork().parseAddress("127.0.0.1", 0).wait(io.waitScope)->listen();
    port_promise_.set_value(static_cast<std::uint16_t>(listener->getPort()));
    kj::Vector<kj::Own<capnp::TwoPartyServer>> servers;  // one per connection: counted
    kj::Promise<void> accepting = accept(*listener, servers, answer, protocol);
    // Runs the loop until told to stop: a bounded poll, not a wait on a condition of the test.
    while (!stop_) io.provider->getTimer().afterDelay(2 * kj::MILLISECONDS).wait(io.waitScope);
  }

  kj::Promise<void> accept(kj::ConnectionReceiver& listener, kj::Vector<kj::Own<capnp::TwoPartyServer>>& servers,
                           Answer answer, std::uint32_t protocol) {
    return listener.accept().then([this, &listener, &servers, answer, protocol](kj::Own<kj::AsyncIoStream> stream) {
      ++accepted_;
      auto server = kj::heap<capnp::TwoPartyServer>(kj::heap<FakeRegistry>(answer, protocol));
      server->accept(kj::mv(stream));
      servers.add(kj::mv(server));
      return accept(listener, servers, answer, protocol);
    });
  }

  std::promise<std::uint16_t> port_promise_;
  std::uint16_t port_ = 0;
  std::atomic<int> accepted_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

/// Client::connect's error, or a test failure if it connects.
remoteable::RemoteError connect_error(remoteable::Endpoint endpoint, remoteable::ClientOptions options) {
  asio::io_context context;
  try {
    test::connect(context, std::move(endpoint), std::move(options));
  } catch (const remoteable::RemoteError& e) {
    return e;
  }
  FAIL("connect succeeded");
  return remoteable::RemoteError(ErrorKind::user, "");
}

}  // namespace

TEST_CASE("the server reports its library version; the client keeps it after checking the protocol") {
  test::Connected t;
  CHECK(t.client.server_version() == remoteable::version);
  CHECK(std::string(remoteable::version) ==
        std::to_string(REMOTEABLE_VERSION_MAJOR) + "." + std::to_string(REMOTEABLE_VERSION_MINOR) + "." +
            std::to_string(REMOTEABLE_VERSION_PATCH));
  // The connection works as before.
  CHECK(t.run((t.client.fetch("five") * 2).as<std::int64_t>()) == 10);
}

TEST_CASE("a server of the same protocol is accepted whatever its library version") {
  FakeServer fake(Answer::protocol);
  asio::io_context context;
  auto client = test::connect(context, fake.endpoint());
  CHECK(client.server_version() == "9.9.9");
  client.close();
  context.restart();
  context.poll();
}

TEST_CASE("a server of another protocol version is refused with a protocol error naming both, not retried") {
  FakeServer fake(Answer::protocol, remoteable::protocol_version + 1);
  remoteable::ClientOptions options;
  options.connect_attempts = 3;
  options.retry_backoff = std::chrono::milliseconds(1);
  auto e = connect_error(fake.endpoint(), options);
  CHECK(e.kind() == ErrorKind::protocol);
  CHECK_THAT(e.message(), Catch::Contains("server speaks protocol " + std::to_string(remoteable::protocol_version + 1)) &&
                              Catch::Contains("(remoteable 9.9.9)") &&
                              Catch::Contains("this client protocol " + std::to_string(remoteable::protocol_version)) &&
                              Catch::Contains(fake.endpoint().to_string()));
  CHECK(fake.accepted() == 1);
}

TEST_CASE("a server that predates Registry.version is refused with a protocol error") {
  FakeServer fake(Answer::unimplemented);
  remoteable::ClientOptions options;
  options.connect_attempts = 1;
  auto e = connect_error(fake.endpoint(), options);
  CHECK(e.kind() == ErrorKind::protocol);
  CHECK_THAT(e.message(), Catch::Contains("reports no protocol version"));
}

TEST_CASE("a server that never answers the check fails connect with a timeout within connect_timeout") {
  FakeServer fake(Answer::never);
  remoteable::ClientOptions options;
  options.connect_attempts = 1;
  options.connect_timeout = std::chrono::milliseconds(200);
  auto e = connect_error(fake.endpoint(), options);
  CHECK(e.kind() == ErrorKind::timeout);
  CHECK_THAT(e.message(), Catch::Contains("did not answer within 200 ms"));
}
