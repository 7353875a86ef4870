// Peers that die: a client killed mid-call, a server killed with calls pending.

#include <sys/wait.h>

#include <algorithm>
#include <future>

#include "counted.hpp"
#include "process.hpp"
#include "support.hpp"
#include "test_types.hpp"

using remoteable::ErrorKind;

namespace {
std::string tool(const char* name) { return std::string(REMOTEABLE_TEST_TOOLS) + "/" + name; }

/// Waits (bounded, polling an event count rather than sleeping for a fixed time) until `pred`.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}
}  // namespace

TEST_CASE("a client killed mid-call does not stop the server serving others") {
  test::WalkthroughServer s;
  test::register_test_types(s.types);
  auto gate = std::make_shared<test::Gate>();
  s.server->server().export_object(gate, "gate");

  {
    test::Process victim({tool("victim_client"), std::to_string(s.server->port())});
    REQUIRE(victim.read_line() == std::optional<std::string>("connected"));
    REQUIRE(gate->wait_entered(1));  // its call is running on the server now
    CHECK(s.server->server().connections() == 1);
    victim.kill(SIGKILL);
    int status = victim.wait();
    CHECK(WIFSIGNALED(status));
  }
  // The server notices the dead peer and drops the connection.
  CHECK(eventually([&] { return s.server->server().connections() == 0; }));

  // A second client is served while the dead client's call is still blocked in its actor.
  asio::io_context context;
  auto client = test::connect(context, s.endpoint());
  CHECK(test::await(context, (client.fetch("root").call("child", 0).attr("value") + 4).as<std::int64_t>()) == 6);
  gate->release();
}

TEST_CASE("a killed server ends every pending await with a disconnected error") {
  test::Process server({tool("blocking_server")});
  auto line = server.read_line();
  REQUIRE(line);
  REQUIRE(line->rfind("port ", 0) == 0);
  auto port = static_cast<std::uint16_t>(std::stoi(line->substr(5)));

  asio::io_context context;
  auto client = test::connect(context, {"127.0.0.1", port});
  CHECK(test::await(context, client.fetch("five").as<std::int64_t>()) == 5);

  // Three awaits pending on a call that never returns, one on a plain evaluation behind it.
  int failed = 0, other = 0;
  auto pending = [&](asio::awaitable<remoteable::Value> aw) -> asio::awaitable<void> {
    try {
      co_await std::move(aw);
      ++other;
    } catch (const remoteable::RemoteError& e) {
      (e.kind() == ErrorKind::disconnected ? failed : other)++;
    }
  };
  auto gate = client.fetch("gate");
  for (int i = 0; i < 3; ++i) asio::co_spawn(context, pending(gate.call("block").get()), asio::detached);
  asio::co_spawn(context, pending((gate.call("block") + 1).get()), asio::detached);
  // Make sure the calls are on the wire (the server answers a later call on another actor).
  CHECK(test::await(context, client.fetch("root").attr("value").as<std::int64_t>()) == 1);

  server.kill(SIGKILL);
  server.wait();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (failed + other < 4 && std::chrono::steady_clock::now() < deadline) context.run_one_for(std::chrono::milliseconds(100));
  CHECK(failed == 4);
  CHECK(other == 0);
  CHECK_FALSE(client.connected());
  CHECK(test::error_of(context, client.fetch("root").attr("value").get()) == ErrorKind::disconnected);
}

TEST_CASE("stopping a server ends in-flight awaits with a disconnected error") {
  test::WalkthroughServer s;
  test::register_test_types(s.types);
  auto gate = std::make_shared<test::Gate>();
  s.server->server().export_object(gate, "gate");
  asio::io_context context;
  auto client = test::connect(context, s.endpoint());
  std::optional<ErrorKind> kind;
  asio::co_spawn(context, [&]() -> asio::awaitable<void> {
    try {
      co_await client.fetch("gate").call("block").get();
    } catch (const remoteable::RemoteError& e) {
      kind = e.kind();
    }
  }, asio::detached);
  REQUIRE(test::eventually(context, [&] { return gate->wait_entered(1, std::chrono::milliseconds(0)); }));
  // stop() returns only once the blocked call has finished: it runs on another thread, and the
  // gate opens after the client has seen the disconnect.
  auto stopping = std::async(std::launch::async, [&] { s.server->server().stop(); });
  struct ReleaseAtEnd {  // before the future's destructor waits for stop(), whatever fails
    std::shared_ptr<test::Gate> gate;
    ~ReleaseAtEnd() { gate->release(); }
  } release_at_end{gate};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!kind && std::chrono::steady_clock::now() < deadline) context.run_one_for(std::chrono::milliseconds(100));
  CHECK(kind == ErrorKind::disconnected);
  gate->release();  // lets the pool finish, so that stop() returns
  CHECK(stopping.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
}

TEST_CASE("destroying the last Client copy ends every pending await with a cancelled or disconnected error") {
  test::WalkthroughServer s;
  test::register_test_types(s.types);
  test::register_counted(s.types);
  auto gate = std::make_shared<test::Gate>();
  s.server->server().export_object(gate, "gate");
  s.server->server().export_class<test::Counted>("Counted");
  // Whatever fails below, the pool's blocked thread is let go before the server is destroyed.
  struct ReleaseAtEnd {
    std::shared_ptr<test::Gate> gate;
    ~ReleaseAtEnd() { gate->release(); }
  } release_at_end{gate};
  const auto base_handles = s.server->server().live_handles();
  const auto base_live = test::Counted::live.load();

  asio::io_context context;
  // Each pending await records how it ended. (Parameters, not captures: the coroutines outlive
  // this scope's Client; GCC 12 mishandles captures in coroutine lambdas.)
  std::vector<std::optional<ErrorKind>> ended(4);
  int succeeded = 0, other_errors = 0;
  auto pending = [](asio::awaitable<remoteable::Value> aw, std::optional<ErrorKind>* kind, int* ok,
                    int* other) -> asio::awaitable<void> {
    try {
      co_await std::move(aw);
      ++*ok;
    } catch (const remoteable::RemoteError& e) {
      *kind = e.kind();
    } catch (...) {
      ++*other;
    }
  };
  {
    auto client = test::connect(context, s.endpoint());
    auto copy = client;  // two copies; both go below
    auto counted = copy.fetch("Counted")(7);
    CHECK(test::await(context, counted.call("get").as<std::int64_t>()) == 7);
    CHECK(test::Counted::live.load() == base_live + 1);
    // Four calls to the gate: the first blocks its actor, the others queue behind it; the last
    // evaluation is pipelined on its call's result.
    auto gate_handle = client.fetch("gate");
    for (int i = 0; i < 3; ++i)
      asio::co_spawn(context, pending(gate_handle.call("block").get(), &ended[static_cast<std::size_t>(i)], &succeeded, &other_errors),
                     asio::detached);
    asio::co_spawn(context, pending((gate_handle.call("block") + 1).get(), &ended[3], &succeeded, &other_errors), asio::detached);
    REQUIRE(test::eventually(context, [&] { return gate->wait_entered(1, std::chrono::milliseconds(0)); }));
    // A round trip on another actor: every call above is on the server by the time it answers.
    CHECK(test::await(context, client.fetch("root").attr("value").as<std::int64_t>()) == 1);
    CHECK(s.server->server().connections() == 1);
  }  // the last Client copy goes; the handles captured by the pending evaluations remain

  auto finished = [&] {
    return std::count_if(ended.begin(), ended.end(), [](auto& k) { return k.has_value(); }) + succeeded + other_errors;
  };
  CHECK(test::eventually(context, [&] { return finished() == 4; }));
  CHECK(succeeded == 0);
  CHECK(other_errors == 0);
  for (auto& kind : ended) {
    REQUIRE(kind.has_value());
    CHECK((*kind == ErrorKind::cancelled || *kind == ErrorKind::disconnected));
  }

  // The server lets go of the connection and of what it held, even with a call still blocked.
  CHECK(test::eventually(context, [&] { return s.server->server().connections() == 0; }));
  CHECK(test::eventually(context, [&] { return test::Counted::live.load() == base_live; }));
  gate->release();  // the blocked call returns into a closed connection
  CHECK(test::eventually(context, [&] { return s.server->server().live_handles() == base_handles; }));
}
