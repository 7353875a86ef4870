// Actor semantics (DESIGN §4): coroutine methods on the actor's strand, reentrancy at co_await,
// a slow method that blocks only its own actor, per-connection order.

#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <functional>
#include <map>
#include <thread>

#include "support.hpp"
#include "test_types.hpp"

using remoteable::ErrorKind;

namespace {

/// A counter whose methods are coroutines.
struct Async : std::enable_shared_from_this<Async> {
  std::int64_t count = 0;
  std::vector<std::string> log;

  asio::awaitable<std::int64_t> slow_increment(std::int64_t by) {
    log.push_back("start");
    // Suspend on a timer: other calls to this actor may run meanwhile.
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(1));
    co_await timer.async_wait(asio::use_awaitable);
    count += by;
    log.push_back("end");
    co_return count;
  }
  std::int64_t bump() {
    log.push_back("bump");
    return ++count;
  }
  asio::awaitable<void> fail_later() {
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    throw std::runtime_error("late failure");
  }
  std::string joined() const {
    std::string out;
    for (auto& l : log) out += l + ";";
    return out;
  }
};

std::int64_t add(std::int64_t a, std::int64_t b) { return a + b; }

/// A coroutine method that is itself a client of another server.
struct Relay {
  remoteable::Endpoint other;
  std::int64_t base = 100;

  /// Connects to `other` on the actor's own executor, evaluates `name` there, adds `base`.
  asio::awaitable<std::int64_t> plus_remote(std::string name) {
    auto client = co_await remoteable::Client::connect(co_await asio::this_coro::executor, other);
    const std::int64_t remote = co_await client.fetch(name).as<std::int64_t>();
    client.close();
    co_return base + remote;
  }
};

/// Entries appended by several clients, kept apart by client, each list in the order applied.
struct Journal {
  std::map<std::int64_t, std::vector<std::int64_t>> entries;

  /// Returns how many entries `who` has now.
  std::int64_t append(std::int64_t who, std::int64_t entry) {
    auto& mine = entries[who];
    mine.push_back(entry);
    return static_cast<std::int64_t>(mine.size());
  }
  std::vector<std::int64_t> of(std::int64_t who) const {
    auto it = entries.find(who);
    return it == entries.end() ? std::vector<std::int64_t>{} : it->second;
  }
};

/// Which thread ran the call, as a number.
std::int64_t thread_number() { return static_cast<std::int64_t>(std::hash<std::thread::id>{}(std::this_thread::get_id()) >> 1); }
struct Where {
  std::int64_t here() { return thread_number(); }
  std::int64_t thread() const { return thread_number(); }
  std::int64_t here_blocking() { return thread_number(); }
};

struct ActorsFixture : test::Connected {
  ActorsFixture() {
    test::register_test_types(types);
    types.class_<Async>("Async")
        .field("count", &Async::count)
        .method("slow_increment", &Async::slow_increment)
        .method("bump", &Async::bump)
        .method("fail_later", &Async::fail_later)
        .method("joined", &Async::joined);
    server->server().export_object(std::make_shared<Async>(), "async");
    server->server().export_object(gate, "gate");
    server->server().export_function("add", &add);
    types.class_<Where>("Where").property("thread", &Where::thread).method("here", &Where::here).method("here_blocking", &Where::here_blocking, remoteable::blocking);
    server->server().export_object(std::make_shared<Where>(), "where");
    server->server().export_function("where_fn", &thread_number);
    server->server().export_function("where_fn_blocking", &thread_number, remoteable::blocking);
    types.class_<Relay>("Relay").method("plus_remote", &Relay::plus_remote);
    types.class_<Journal>("Journal").method("append", &Journal::append).method("of", &Journal::of);
    server->server().export_object(std::make_shared<Journal>(), "journal");
  }
  std::shared_ptr<test::Gate> gate = std::make_shared<test::Gate>();
};

}  // namespace

TEST_CASE("a coroutine method runs to completion and its result comes back") {
  ActorsFixture t;
  auto a = t.client.fetch("async");
  CHECK(t.run(a.call("slow_increment", 5).as<std::int64_t>()) == 5);
  CHECK(t.run(a.attr("count").as<std::int64_t>()) == 5);
  CHECK(test::error_of(t.context, a.call("fail_later").get()) == ErrorKind::user);
}

TEST_CASE("a coroutine method in the middle of a chain: the next steps run on its result") {
  ActorsFixture t;
  auto a = t.client.fetch("async");
  CHECK(t.run((a.call("slow_increment", 5) * 2 + 1).as<std::int64_t>()) == 11);
  // A coroutine method that fails fails the chain with its error.
  CHECK(test::error_of(t.context, (a.call("fail_later") + 1).get()) == ErrorKind::user);
  CHECK(t.run(a.attr("count").as<std::int64_t>()) == 5);
}

TEST_CASE("another call to the same actor may run while a coroutine method is suspended") {
  ActorsFixture t;
  auto a = t.client.fetch("async");
  // Sent back to back on one connection: slow_increment starts first (E-order), suspends,
  // and bump runs in the gap.
  auto slow = a.call("slow_increment", 10);
  auto bump = a.call("bump");
  CHECK(t.run(bump.as<std::int64_t>()) == 1);
  CHECK(t.run(slow.as<std::int64_t>()) == 11);
  CHECK(t.run(a.call("joined").as<std::string>()) == "start;bump;end;");
}

TEST_CASE("a coroutine method can call another server and combine its answer") {
  ActorsFixture t;
  // A second server, with an export the first one does not have.
  test::WalkthroughServer other;
  other.server->server().export_value(std::int64_t{37}, "only_there");
  t.server->server().export_object(std::make_shared<Relay>(Relay{other.endpoint()}), "relay");

  auto relay = t.client.fetch("relay");
  CHECK(t.run(relay.call("plus_remote", "only_there").as<std::int64_t>()) == 137);
  CHECK(t.run(relay.call("plus_remote", "five").as<std::int64_t>()) == 105);
  // A failure on the other server comes back to this client with its kind.
  CHECK(test::error_of(t.context, relay.call("plus_remote", "nowhere").as<std::int64_t>()) == ErrorKind::name);
}

TEST_CASE("a slow method blocks only its own actor") {
  ActorsFixture t;
  auto blocked = t.client.fetch("gate").call("block");
  // Drive the client until the call is inside the method (bounded: wait_entered times out).
  t.context.restart();
  for (int i = 0; i < 2000 && !t.gate->wait_entered(1, std::chrono::milliseconds(10)); ++i) t.context.poll();
  REQUIRE(t.gate->wait_entered(1, std::chrono::milliseconds(0)));
  // The gate's actor is busy; other actors answer meanwhile.
  CHECK(t.run((t.client.fetch("root").call("child", 0).attr("value") + 4).as<std::int64_t>()) == 6);
  CHECK(t.run(t.client.fetch("add")(2, 3).as<std::int64_t>()) == 5);
  t.gate->release();
  CHECK(t.run(blocked.as<std::int64_t>()) == 1);
}

TEST_CASE("methods and functions registered as blocking never run on the network thread") {
  ActorsFixture t;
  auto where = t.client.fetch("where");
  // The first read of a property on an actor that never ran anything runs inline: the network
  // thread. (Property reads are not measured.) Quick calls that run inline: slow_call_test.
  auto network = t.run(where.attr("thread").as<std::int64_t>());
  for (int i = 0; i < 20; ++i) {
    CHECK(t.run(where.call("here_blocking").as<std::int64_t>()) != network);
    CHECK(t.run(where.attr("here_blocking")().as<std::int64_t>()) != network);
    CHECK(t.run(t.client.fetch("where_fn_blocking")().as<std::int64_t>()) != network);
  }
}

TEST_CASE("calls from one connection to one actor run in the order they were sent") {
  ActorsFixture t;
  auto a = t.client.fetch("async");
  std::vector<remoteable::Handle> results;
  for (int i = 0; i < 50; ++i) results.push_back(a.call("bump"));
  for (int i = 0; i < 50; ++i) CHECK(t.run(results[static_cast<std::size_t>(i)].as<std::int64_t>()) == i + 1);
}

namespace {

/// What one client saw: each append's answer, in the order sent, and its entries afterwards.
struct ClientRun {
  std::vector<std::int64_t> answers;
  std::vector<std::int64_t> applied;
  std::string error;
  bool done = false;
};

/// Sends `n` appends tagged `who` without waiting between them, then collects the answers.
asio::awaitable<void> append_unawaited(remoteable::Endpoint endpoint, std::int64_t who, int n, ClientRun& out) {
  auto client = co_await remoteable::Client::connect(co_await asio::this_coro::executor, endpoint);
  auto journal = client.fetch("journal");
  std::vector<remoteable::Handle> sent;
  for (int i = 0; i < n; ++i) sent.push_back(journal.call("append", who, i));
  for (auto& answer : sent) out.answers.push_back(co_await answer.as<std::int64_t>());
  out.applied = co_await journal.call("of", who).as<std::vector<std::int64_t>>();
  client.close();
}

}  // namespace

TEST_CASE("concurrent clients each see their own calls applied in the order they sent them") {
  ActorsFixture t;
  constexpr int clients = 4;
  constexpr int per_client = 200;
  std::vector<ClientRun> runs(clients);
  const remoteable::Endpoint endpoint = t.endpoint();
  {
    // Each client on its own thread and io_context, all sending to one actor at once. Catch's
    // assertions stay on this thread: the threads only record.
    std::vector<std::jthread> threads;
    for (int who = 0; who < clients; ++who) {
      threads.emplace_back([&endpoint, who, &run = runs[static_cast<std::size_t>(who)]] {
        asio::io_context context;
        asio::co_spawn(context, append_unawaited(endpoint, who, per_client, run),
                       [&run](std::exception_ptr e) {
                         if (e) {
                           try {
                             std::rethrow_exception(e);
                           } catch (const std::exception& x) {
                             run.error = x.what();
                           }
                         }
                         run.done = true;
                       });
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (!run.done && std::chrono::steady_clock::now() < deadline)
          context.run_one_for(deadline - std::chrono::steady_clock::now());
        context.restart();
        context.poll();  // lets the close run
      });
    }
  }
  std::vector<std::int64_t> in_order(per_client);
  for (int i = 0; i < per_client; ++i) in_order[static_cast<std::size_t>(i)] = i;
  std::vector<std::int64_t> counts(per_client);
  for (int i = 0; i < per_client; ++i) counts[static_cast<std::size_t>(i)] = i + 1;
  for (int who = 0; who < clients; ++who) {
    INFO("client " << who);
    auto& run = runs[static_cast<std::size_t>(who)];
    REQUIRE(run.done);
    REQUIRE(run.error.empty());
    CHECK(run.applied == in_order);
    CHECK(run.answers == counts);
  }
}

TEST_CASE("an exported free function is callable") {
  ActorsFixture t;
  CHECK(t.run(t.client.fetch("add")(40, 2).as<std::int64_t>()) == 42);
  CHECK(test::error_of(t.context, t.client.fetch("add")(1).get()) == ErrorKind::type);
}

TEST_CASE("the same object reached two ways is one object in one actor") {
  ActorsFixture t;
  // "child" was exported with same_actor_as root; exporting it again finds its owner by address.
  auto child = std::make_shared<example::Node>(9);
  t.server->server().export_object(child, "loose");
  t.server->server().export_object(child, "loose_again");
  CHECK(t.server->server().same_actor("loose", "loose_again"));
  CHECK(t.run((t.client.fetch("loose") == t.client.fetch("loose_again")).truthy()));
  CHECK(t.server->server().same_actor("root", "child"));
  CHECK_FALSE(t.server->server().same_actor("root", "loose"));
}

TEST_CASE("an argument owned by another actor merges the two actors") {
  ActorsFixture t;
  t.server->server().export_object(std::make_shared<example::Node>(7), "stray");
  REQUIRE_FALSE(t.server->server().same_actor("root", "stray"));
  auto root = t.client.fetch("root");
  t.run(root.call("add_child", t.client.fetch("stray")).get());
  CHECK(t.server->server().same_actor("root", "stray"));
  CHECK(t.run(root.call("child", 1).attr("value").as<std::int64_t>()) == 7);
  // Work sent to either handle afterwards still runs, in order.
  auto stray = t.client.fetch("stray");
  t.run(stray.set("value", 8));
  CHECK(t.run(root.call("child", 1).attr("value").as<std::int64_t>()) == 8);
}

TEST_CASE("an object reached from an actor but owned by another merges them") {
  ActorsFixture t;
  auto parent = std::make_shared<example::Node>(1);
  auto kid = std::make_shared<example::Node>(2);
  parent->add_child(kid);  // linked before export, behind the library's back
  t.server->server().export_object(parent, "parent");
  t.server->server().export_object(kid, "kid");
  REQUIRE_FALSE(t.server->server().same_actor("parent", "kid"));
  CHECK(t.run(t.client.fetch("parent").call("child", 0).attr("value").as<std::int64_t>()) == 2);
  CHECK(t.server->server().same_actor("parent", "kid"));
}
