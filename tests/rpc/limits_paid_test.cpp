// Limits counted where the cost is paid (issue 8 item 3): calls from the moment they are received,
// call bytes in flight, unread answers at the moment they are queued, answers awaiting Finish,
// and names attached by clients. Each test also checks that another client is served.
//
// Some traffic only a raw peer sends (calls whose arguments wait on an answer that never comes,
// answers never finished, answers never read): raw Cap'n Proto clients on a thread of their own
// (KJ allows one event loop per thread, and the library's client has one on the test's thread),
// and raw bytes (tests/fuzz/wire.hpp).

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <malloc.h>

#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

#include "counted.hpp"  // test::eventually
#include "fuzz/wire.hpp"
#include "heap.hpp"
#include "support.hpp"
#include "test_types.hpp"

using remoteable::ErrorKind;
namespace wire = remoteable::wire;
using test::heap_in_use;
using namespace std::chrono_literals;

namespace {

/// The walkthrough exports and a few more, with chosen options.
struct PaidServer {
  explicit PaidServer(remoteable::ServerOptions options = {}) {
    example::register_node(types);
    test::register_test_types(types);
    types.class_<Big>("Big").method("make", &Big::make);
    types.class_<Sleeper>("Sleeper").method("nap", &Sleeper::nap);
    server.emplace(remoteable::Endpoint{"127.0.0.1", 0}, types, std::move(options));
    example::export_walkthrough(server->server());
    server->server().export_object(std::make_shared<Big>(), "big");
    server->server().export_object(std::make_shared<Sleeper>(), "sleeper");
  }
  remoteable::Endpoint endpoint() const { return {"127.0.0.1", server->port()}; }
  std::uint16_t port() const { return server->port(); }
  remoteable::Server& operator*() { return server->server(); }
  remoteable::Server* operator->() { return &server->server(); }

  struct Big {
    std::string make(std::int64_t bytes) { return std::string(static_cast<std::size_t>(bytes), 'x'); }
  };
  /// A coroutine method that waits long: a call that does not return during a test.
  struct Sleeper {
    asio::awaitable<std::int64_t> nap(std::int64_t ms) {
      asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
      co_await timer.async_wait(asio::use_awaitable);
      co_return ms;
    }
  };

  remoteable::Registry types;
  std::optional<remoteable::ThreadedServer> server;
};

/// A library client on the test's thread: the one that must still be served.
struct Healthy {
  explicit Healthy(remoteable::Endpoint endpoint) : client(test::connect(context, endpoint)) {}
  ~Healthy() {
    client.close();
    context.restart();
    context.poll();
  }
  /// A real walkthrough evaluation on this connection.
  void served() {
    CHECK(test::await(context, (client.fetch("root").call("child", 0).attr("value") + 4).as<std::int64_t>()) == 6);
  }
  asio::io_context context;
  remoteable::Client client;
};

/// A raw Cap'n Proto client on its own thread. `script` runs there once connected: it sends
/// what it likes and keeps the promises it cares about in `keep` (each counted by outcome);
/// then the thread runs the loop until the object is destroyed, which disconnects.
class RawRpc {
 public:
  struct Session {
    kj::AsyncIoContext& io;
    wire::Registry::Client registry;
    RawRpc& self;
    /// Counts the answer of `promise` (results, or a failure by its description).
    template <class T>
    void keep(kj::Promise<T>&& promise) {
      self.kept_.add(promise.then([this](auto&&) { ++self.answered; },
                                  [this](kj::Exception&& e) {
                                    std::string d = e.getDescription().cStr();
                                    if (d.find("overloaded") != std::string::npos) ++self.overloaded;
                                    else ++self.failed;
                                    std::lock_guard lock(self.mutex_);
                                    self.last_error_ = d;
                                  })
                         .eagerlyEvaluate(nullptr));
    }
  };
  using Script = std::function<void(Session&)>;

  RawRpc(std::uint16_t port, Script script) : thread_([this, port, script = std::move(script)] { run(port, script); }) {}
  ~RawRpc() {
    stop_ = true;
    thread_.join();
  }
  RawRpc(const RawRpc&) = delete;
  RawRpc& operator=(const RawRpc&) = delete;

  std::string last_error() const {
    std::lock_guard lock(mutex_);
    return last_error_;
  }

  std::atomic<int> answered{0}, overloaded{0}, failed{0};
  std::atomic<bool> sent{false};  ///< the script has run

 private:
  void run(std::uint16_t port, const Script& script) {
    auto io = kj::setupAsyncIo();
    auto address = io.provider->getNetwork().parseAddress("127.0.0.1", port).wait(io.waitScope);
    auto stream = address->connect().wait(io.waitScope);
    auto client = kj::heap<capnp::TwoPartyClient>(*stream);
    {
      Session session{io, client->bootstrap().castAs<wire::Registry>(), *this};
      script(session);
      sent = true;
      // Runs the loop (sending what the script queued, receiving answers) until told to stop.
      while (!stop_) io.provider->getTimer().afterDelay(2 * kj::MILLISECONDS).wait(io.waitScope);
      kept_.clear();
    }
    client = nullptr;
    stream = nullptr;
  }

  kj::Vector<kj::Promise<void>> kept_;
  mutable std::mutex mutex_;
  std::string last_error_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

/// A handle pipelined on a call that does not return during the test (sleeper.nap(10 min)).
wire::Handle::Client never_returns(RawRpc::Session& s) {
  auto fetch = s.registry.fetchRequest();
  fetch.setName("sleeper");
  auto sleeper = fetch.send().getHandle();
  auto nap = sleeper.callRequest();
  nap.setName("nap");
  nap.initArgs(1)[0].setInt64(600'000);
  auto parked = nap.send();
  auto handle = parked.getResult();
  s.keep(kj::mv(parked));
  return handle;
}

}  // namespace

TEST_CASE("calls waiting to decode their arguments count against max_calls_per_connection") {
  remoteable::ServerOptions options;
  options.max_calls_per_connection = 100;
  PaidServer s(options);
  Healthy healthy(s.endpoint());
  const int stores = 300;
  {
    // 1 parked nap + 300 stores whose value is a handle waiting on it: each waits in decoding.
    RawRpc raw(s.port(), [&](RawRpc::Session& session) {
      auto parked = never_returns(session);
      for (int i = 0; i < stores; ++i) {
        auto store = session.registry.storeRequest();
        store.initValue().initList(1)[0].setHandle(parked);
        session.keep(store.send());
      }
    });
    // The nap takes one call; 99 stores fit; the other 201 are refused at once.
    REQUIRE(test::eventually(healthy.context, [&] { return raw.overloaded.load() >= stores - 99; }));
    CHECK_THAT(raw.last_error(), Catch::Matchers::Contains("max_calls_per_connection = 100"));
    CHECK(raw.overloaded.load() == stores - 99);
    CHECK(raw.answered.load() == 0);
    CHECK(s->calls_in_flight() == 100);
    healthy.served();  // the limit is that connection's
  }
  // The parked calls end with their connection.
  CHECK(test::eventually(healthy.context, [&] { return s->calls_in_flight() == 0 && s->connections() == 1; }));
  CHECK(s->calls_in_flight() == 0);
  CHECK(s->connections() == 1);
  healthy.served();
}

TEST_CASE("a connection's call messages in flight are bounded by max_inflight_call_bytes (reading waits)") {
  // Defaults: 64 MiB of call messages in flight. 300 parked calls of 1 MiB each would pin
  // 300 MiB of messages (and as much again decoded) without the bound.
  PaidServer s;
  Healthy healthy(s.endpoint());
  const int stores = 300;
  const std::size_t mib = 1024 * 1024;
  RawRpc raw(s.port(), [&](RawRpc::Session& session) {
    auto parked = never_returns(session);
    for (int i = 0; i < stores; ++i) {
      auto store = session.registry.storeRequest();
      auto list = store.initValue().initList(2);
      list[0].setHandle(parked);
      list[1].initBytes(mib);
      session.keep(store.send());
    }
  });
  REQUIRE(test::eventually(healthy.context, [&] { return raw.sent.load(); }));
  // The server reads about 64 of them, then stops reading that connection.
  REQUIRE(test::eventually(healthy.context, [&] { return s->calls_in_flight() >= 60; }, 60s));
  healthy.served();
  // Give the server every chance to read more (bounded): it must not. Without the flow limit
  // it reads all 300 within this wait.
  CHECK_FALSE(test::eventually(healthy.context, [&] { return s->calls_in_flight() > 70; }, 10s));
  INFO("calls in flight: " << s->calls_in_flight());
  CHECK(s->calls_in_flight() <= 70);
  CHECK(raw.failed.load() == 0);
  healthy.served();
}

TEST_CASE("unread answers are checked when queued: the connection is dropped at max_outbound_bytes plus one answer") {
  remoteable::ServerOptions options;
  options.max_outbound_bytes = 4 * 1024 * 1024;
  options.sweep_interval = std::chrono::hours(1);  // only the check at the write can act
  PaidServer s(options);
  Healthy healthy(s.endpoint());
  using Step = wire::Handle::Step;
  const std::int64_t answer = 1024 * 1024;
  wire_test::RawConnection raw(s.port());
  std::string calls = wire_test::bootstrap(0) + wire_test::fetch(1, 0, "big");
  for (std::uint32_t q = 2; q < 102; ++q)  // 100 answers of 1 MiB: big.make(1 MiB) fetched as a value
    calls += wire_test::chain(q, 1, 1, [&](unsigned, Step::Builder step) {
      auto c = step.initCall();
      c.setName("make");
      c.initArgs(1)[0].setInt64(answer);
    });
  REQUIRE(raw.write(calls));  // a few KB: the server reads it all; we read nothing
  REQUIRE(test::eventually(healthy.context, [&] { return s->connections() == 1; }));
  INFO("peak queued " << s->peak_queued_bytes());
  CHECK(s->peak_queued_bytes() <= options.max_outbound_bytes + static_cast<std::size_t>(answer) + 4096);
  healthy.served();
}

TEST_CASE("answers that carry a handle and await Finish cost little, and nothing stays once the connection has gone") {
  PaidServer s;
  Healthy healthy(s.endpoint());
  healthy.served();
  const std::size_t baseline_handles = s->live_handles();
  const std::uint32_t calls = 20'000;
  auto before = heap_in_use();
  {
    // root.child(0), pipelined on one fetch, 20,000 times: each answer carries a handle and is
    // never finished. Sent in batches, reading every answer (the test's reads free nothing on
    // the server).
    wire_test::RawConnection raw(s.port());
    REQUIRE(raw.write(wire_test::bootstrap(0) + wire_test::fetch(1, 0, "root")));
    REQUIRE(raw.returns(2) == 2);  // the bootstrap's and the fetch's
    for (std::uint32_t q = 2; q < calls + 2; q += 1000) {
      std::string batch;
      for (std::uint32_t i = q; i < q + 1000; ++i) batch += wire_test::call_method(i, 1, "child", {0});
      REQUIRE(raw.write(batch));
      // Every answer of the batch, in whatever order they come (Cap'n Proto orders calls, not
      // their answers: the last call's answer may come before an earlier one's).
      REQUIRE(raw.returns(1000) == 1000);
    }
    auto held = heap_in_use();
    auto per_call = (held - std::min(held, before)) / calls;
    INFO("bytes per unfinished handle-making answer: " << per_call);
    WARN("bytes per live handle made by a pipelined call, answer unfinished: " << per_call);
    CHECK(s->live_handles() >= baseline_handles + calls);
    CHECK(per_call < 4096);  // was 11 KB and more: an 8 KiB first segment per answer
    healthy.served();
  }
  REQUIRE(test::eventually(healthy.context, [&] { return s->connections() == 1 && s->live_handles() == baseline_handles; }));
  malloc_trim(0);
  auto after = heap_in_use();
  INFO("heap before " << before << ", after the connection went " << after);
  CHECK(after < before + calls * 64);  // no per-call leftovers (allocator noise aside)
  healthy.served();
}

TEST_CASE("the handle limit bounds the answers a connection leaves unfinished") {
  remoteable::ServerOptions options;
  options.max_handles_per_connection = 500;
  PaidServer s(options);
  Healthy healthy(s.endpoint());
  wire_test::RawConnection raw(s.port());
  std::string batch = wire_test::bootstrap(0) + wire_test::fetch(1, 0, "root");
  for (std::uint32_t i = 2; i < 1002; ++i) batch += wire_test::call_method(i, 1, "child", {0});
  REQUIRE(raw.write(batch));
  auto a = raw.answer(1001);
  REQUIRE(a.kind == wire_test::Answer::exception);
  CHECK_THAT(a.reason, Catch::Matchers::Contains("limit 500"));
  CHECK(s->live_handles() <= 500 + 10);  // the walkthrough's own, and the healthy client's
  healthy.served();
}

TEST_CASE("attached names count against the connection and the server, and only their connection detaches them") {
  remoteable::ServerOptions options;
  options.max_attached_per_connection = 3;
  options.max_attached = 5;
  PaidServer s(options);
  Healthy healthy(s.endpoint());
  asio::io_context& context = healthy.context;
  auto first = test::connect(context, s.endpoint());
  auto second = test::connect(context, s.endpoint());
  auto attach = [&](remoteable::Client& c, std::string name) { return c.attach(c.store(remoteable::Value(std::int64_t{1})), name); };
  auto refused = [&](asio::awaitable<void> aw, ErrorKind kind, std::string_view words) {
    try {
      test::await(context, std::move(aw));
      FAIL("accepted");
    } catch (const remoteable::RemoteError& e) {
      CHECK(e.kind() == kind);
      CHECK_THAT(e.what(), Catch::Matchers::Contains(std::string(words)));
    }
  };
  for (int i = 0; i < 3; ++i) test::await(context, attach(first, "a" + std::to_string(i)));
  refused(attach(first, "a3"), ErrorKind::overloaded, "max_attached_per_connection = 3");
  test::await(context, attach(second, "b0"));
  test::await(context, attach(second, "b1"));
  refused(attach(second, "b2"), ErrorKind::overloaded, "max_attached = 5");
  healthy.served();

  // Only the connection that attached a name detaches it.
  refused(second.detach("a0"), ErrorKind::name, "another connection");
  test::await(context, first.detach("a0"));
  test::await(context, attach(second, "b2"));  // room again, server-wide

  // Names outlive their connection and stay counted server-wide; nobody else detaches them.
  first.close();
  REQUIRE(test::eventually(context, [&] { return s->connections() == 2; }));
  auto& third = healthy.client;  // has attached nothing
  CHECK(test::await(context, third.fetch("a1").as<std::int64_t>()) == 1);
  refused(attach(third, "c0"), ErrorKind::overloaded, "max_attached = 5");
  refused(third.detach("a1"), ErrorKind::name, "another connection");
  CHECK(s->unexport("a1"));  // the server may
  test::await(context, attach(third, "c0"));
  healthy.served();
}

TEST_CASE("may_detach_any lets chosen connections detach what others attached") {
  remoteable::ServerOptions options;
  options.may_detach_any = [](std::string_view peer) { return peer.starts_with("127.0.0.1:"); };
  PaidServer s(options);
  Healthy healthy(s.endpoint());
  auto other = test::connect(healthy.context, s.endpoint());
  test::await(healthy.context, other.attach(other.store(remoteable::Value(std::int64_t{2})), "shared"));
  test::await(healthy.context, healthy.client.detach("shared"));
  auto names = s->browse();
  CHECK(std::find(names.begin(), names.end(), "shared") == names.end());
  healthy.served();
}
