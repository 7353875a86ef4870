// Distributed lifetime (DESIGN §6), proved with a counted type on the server: the last client
// handle releases an object; copies on other threads and executors keep it; a disconnect
// releases what the client held; attach pins until detach; exports live as long as the server.
// Every wait is on an event (the live count, a connection count) with a deadline.

#include <asio/executor_work_guard.hpp>

#include <future>
#include <set>
#include <thread>

#include "counted.hpp"
#include "support.hpp"

using remoteable::ErrorKind;
using remoteable::Handle;
using test::Counted;

namespace {

/// A server with the walkthrough exports plus the Counted class, and one client.
struct LifetimeFixture {
  LifetimeFixture() {
    example::register_node(types);
    test::register_counted(types);
    server.emplace(remoteable::Endpoint{"127.0.0.1", 0}, types);
    example::export_walkthrough(server->server());
    server->server().export_class<Counted>("Counted");
    base_live = Counted::live.load();
    base_handles = server->server().live_handles();
    client.emplace(test::connect(context, endpoint()));
  }
  ~LifetimeFixture() {
    if (client) client->close();
    context.restart();
    context.poll();
  }
  remoteable::Endpoint endpoint() const { return {"127.0.0.1", server->port()}; }
  remoteable::Server& srv() { return server->server(); }
  template <class T> T run(asio::awaitable<T> aw) { return test::await(context, std::move(aw)); }
  void run(asio::awaitable<void> aw) { test::await(context, std::move(aw)); }

  /// Waits (bounded) until the server holds exactly the objects and handles it held at start
  /// plus the given extra ones.
  bool settles(std::int64_t extra_live = 0) {
    return test::eventually(context, [&] { return Counted::live.load() == base_live + extra_live; });
  }
  bool handles_settle(std::size_t extra_handles = 0) {
    return test::eventually(context, [&] { return srv().live_handles() == base_handles + extra_handles; });
  }

  remoteable::Registry types;
  std::optional<remoteable::ThreadedServer> server;
  std::int64_t base_live = 0;
  std::size_t base_handles = 0;
  asio::io_context context;
  std::optional<remoteable::Client> client;
};

/// Runs an io_context on a thread of its own until destroyed (a client's network executor that
/// other threads' coroutines use).
struct ContextThread {
  ContextThread() : guard(asio::make_work_guard(context)), thread([this] { context.run(); }) {}
  ~ContextThread() {
    guard.reset();
    context.stop();
    thread.join();
  }
  asio::io_context context;
  asio::executor_work_guard<asio::io_context::executor_type> guard;
  std::thread thread;
};

/// Connects on `executor`. (A coroutine with parameters, not captures: GCC 12.)
asio::awaitable<std::optional<remoteable::Client>> connect_to(asio::any_io_executor executor,
                                                              remoteable::Endpoint endpoint) {
  co_return co_await remoteable::Client::connect(executor, std::move(endpoint));
}

/// Runs `aw` on a context served by its own thread and waits (bounded) for the result.
template <class T>
T on(ContextThread& where, asio::awaitable<T> aw, std::chrono::seconds limit = std::chrono::seconds(20)) {
  // Shared with the handler: on a timeout it may still run after this function has failed.
  auto result = std::make_shared<std::promise<T>>();
  auto future = result->get_future();
  asio::co_spawn(where.context, std::move(aw), [result](std::exception_ptr e, T value) {
    if (e) result->set_exception(e);
    else result->set_value(std::move(value));
  });
  if (future.wait_for(limit) != std::future_status::ready) FAIL("timed out waiting on another thread");
  return future.get();
}

}  // namespace

TEST_CASE("dropping the last client handle destroys the server object") {
  LifetimeFixture t;
  auto counted = t.client->fetch("Counted");
  std::optional<Handle> h = counted(7);
  CHECK(t.run(h->attr("value").as<std::int64_t>()) == 7);
  CHECK(Counted::live.load() == t.base_live + 1);

  // A second copy of the handle keeps the object: dropping one copy sends nothing.
  std::optional<Handle> copy = *h;
  h.reset();
  CHECK(t.run(copy->call("add", 1).as<std::int64_t>()) == 8);
  CHECK(Counted::live.load() == t.base_live + 1);

  copy.reset();
  CHECK(t.settles());
  CHECK(t.handles_settle(1));  // `counted`, the class handle, is still held
  // The class export itself is untouched: it still constructs.
  CHECK(t.run(counted(3).attr("value").as<std::int64_t>()) == 3);
}

TEST_CASE("an object returned by value is separate: dropping its source releases only the source") {
  LifetimeFixture t;
  std::optional<Handle> h = t.client->fetch("Counted")(20);
  // twin() returns a Counted by value: a second, separately owned server object.
  std::optional<Handle> twin = h->call("twin");
  CHECK(t.run(twin->attr("value").as<std::int64_t>()) == 20);
  CHECK(Counted::live.load() == t.base_live + 2);
  h.reset();
  CHECK(t.settles(1));  // the original goes, the twin stays
  CHECK(t.run(twin->call("add", 1).as<std::int64_t>()) == 21);
  twin.reset();
  CHECK(t.settles());
  CHECK(t.handles_settle());
}

TEST_CASE("handles copied across threads and executors stay valid and the last copy releases it") {
  LifetimeFixture t;
  // The connection lives on `net`'s executor; each worker awaits on an io_context of its own.
  ContextThread net;
  auto client = on(net, connect_to(net.context.get_executor(), t.endpoint()));
  std::optional<Handle> original = client->fetch("Counted")(41);

  constexpr std::size_t workers = 4;
  std::vector<std::optional<Handle>> copies;
  for (std::size_t i = 0; i < workers; ++i) copies.push_back(*original);

  // Every worker adds 1 on its own executor; the sums are distinct (one actor, one at a time).
  // Worker i drops its copy only when told, so the test decides which copy is the last; the last
  // one evaluates once more after every other copy is gone.
  std::vector<std::promise<std::int64_t>> sums(workers), finals(workers);
  std::vector<std::promise<void>> drop(workers), dropped(workers);
  std::vector<std::future<std::int64_t>> sum_futures, final_futures;
  std::vector<std::future<void>> drop_futures, dropped_futures;
  for (std::size_t i = 0; i < workers; ++i) {
    sum_futures.push_back(sums[i].get_future());
    final_futures.push_back(finals[i].get_future());
    drop_futures.push_back(drop[i].get_future());
    dropped_futures.push_back(dropped[i].get_future());
  }
  // The workers' io_contexts outlive the workers: see the last test for why they may not.
  std::vector<asio::io_context> contexts(workers);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < workers; ++i) {
    threads.emplace_back([&, i] {
      asio::io_context& own = contexts[i];
      std::optional<Handle> mine = std::move(copies[i]);
      try {
        sums[i].set_value(test::await(own, mine->call("add", 1).as<std::int64_t>()));
      } catch (...) {
        sums[i].set_exception(std::current_exception());
      }
      drop_futures[i].wait_for(std::chrono::seconds(30));
      if (i + 1 == workers) {
        try {
          finals[i].set_value(test::await(own, mine->attr("value").as<std::int64_t>()));
        } catch (...) {
          finals[i].set_exception(std::current_exception());
        }
      }
      mine.reset();  // on this worker thread, not the connection's
      dropped[i].set_value();
    });
  }
  original.reset();  // the test thread's copy goes first

  std::set<std::int64_t> seen;
  for (auto& f : sum_futures) {
    REQUIRE(f.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    seen.insert(f.get());
  }
  CHECK(seen == std::set<std::int64_t>{42, 43, 44, 45});

  // Drop every copy but the last.
  for (std::size_t i = 0; i + 1 < workers; ++i) {
    drop[i].set_value();
    REQUIRE(dropped_futures[i].wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  }
  CHECK(Counted::live.load() == t.base_live + 1);

  // The last copy still answers, from its own executor, and dropping it releases the object.
  drop[workers - 1].set_value();
  REQUIRE(final_futures[workers - 1].wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  CHECK(final_futures[workers - 1].get() == 45);
  REQUIRE(dropped_futures[workers - 1].wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  for (auto& th : threads) th.join();
  CHECK(test::eventually([&] { return Counted::live.load() == t.base_live; }));
  CHECK(test::eventually([&] { return t.srv().live_handles() == t.base_handles; }));
  client->close();
}

TEST_CASE("a copy handed to another thread outlives the original and still answers") {
  LifetimeFixture t;
  ContextThread net;
  auto client = on(net, connect_to(net.context.get_executor(), t.endpoint()));
  std::optional<Handle> original = client->fetch("Counted")(100);
  asio::io_context here;
  CHECK(test::await(here, original->attr("value").as<std::int64_t>()) == 100);

  // Hand a copy to a thread, drop ours, then let the thread use and drop the last copy.
  std::promise<Handle> hand_over;
  std::promise<std::int64_t> result;
  std::promise<void> go;
  auto hand_over_future = hand_over.get_future();
  auto go_future = go.get_future();
  asio::io_context own;  // outlives the worker
  std::thread worker([&] {
    auto mine = hand_over_future.get();
    go_future.wait_for(std::chrono::seconds(30));
    try {
      result.set_value(test::await(own, mine.call("add", 5).as<std::int64_t>()));
    } catch (...) {
      result.set_exception(std::current_exception());
    }
  });
  hand_over.set_value(*original);
  original.reset();
  // Our drop released nothing: a round trip on the same connection (ordered after any release
  // we might wrongly have sent) finds the object still there.
  CHECK(test::await(here, client->fetch("five").as<std::int64_t>()) == 5);
  CHECK(Counted::live.load() == t.base_live + 1);
  go.set_value();
  auto f = result.get_future();
  REQUIRE(f.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  CHECK(f.get() == 105);
  worker.join();  // the worker's copy, the last, is gone with its thread
  CHECK(test::eventually([&] { return Counted::live.load() == t.base_live; }));
  client->close();
}

TEST_CASE("a client disconnect releases everything it held") {
  LifetimeFixture t;
  asio::io_context other_context;
  auto other = test::connect(other_context, t.endpoint());
  std::vector<Handle> held;
  auto counted = other.fetch("Counted");
  for (int i = 0; i < 10; ++i) {
    held.push_back(counted(i));
    held.push_back(held.back().call("twin"));        // a second object per round
    held.push_back(other.fetch("root").call("child", 0));  // and handles on exports
  }
  CHECK(test::await(other_context, held[28].attr("value").as<std::int64_t>()) == 9);
  CHECK(test::eventually([&] { return Counted::live.load() == t.base_live + 20; }));
  CHECK(t.srv().connections() == 2);
  CHECK(t.srv().live_handles() > t.base_handles);

  // Close while every handle is still held on the client side.
  other.close();
  CHECK(test::eventually(other_context, [&] { return t.srv().connections() == 1; }));
  CHECK(test::eventually([&] { return Counted::live.load() == t.base_live; }));
  CHECK(test::eventually([&] { return t.srv().live_handles() == t.base_handles; }));
  // The handles left over fail cleanly; the remaining client is unaffected.
  CHECK(test::error_of(other_context, held[0].attr("value").get()) == ErrorKind::disconnected);
  CHECK(t.run((t.client->fetch("root").call("child", 0).attr("value") + 4).as<std::int64_t>()) == 6);
}

TEST_CASE("a client that vanishes without closing releases everything it held") {
  LifetimeFixture t;
  {
    // Destroying the context with the client and its handles: no orderly close is ever run,
    // the socket simply goes away.
    asio::io_context gone;
    auto other = test::connect(gone, t.endpoint());
    std::vector<Handle> held;
    for (int i = 0; i < 5; ++i) held.push_back(other.fetch("Counted")(i));
    CHECK(test::await(gone, held[4].attr("value").as<std::int64_t>()) == 4);
    CHECK(test::eventually(gone, [&] { return Counted::live.load() == t.base_live + 5; }));
  }
  CHECK(test::eventually([&] { return t.srv().connections() == 1; }));
  CHECK(test::eventually([&] { return Counted::live.load() == t.base_live; }));
  CHECK(test::eventually([&] { return t.srv().live_handles() == t.base_handles; }));
}

TEST_CASE("attach pins an object until detach") {
  LifetimeFixture t;
  {
    asio::io_context other_context;
    auto other = test::connect(other_context, t.endpoint());
    std::optional<Handle> h = other.fetch("Counted")(5);
    test::await(other_context, other.attach(*h, "pinned"));
    h.reset();
    other.close();
    CHECK(test::eventually(other_context, [&] { return t.srv().connections() == 1; }));
  }
  // The attaching client and all its handles are gone; the name keeps the object.
  CHECK(Counted::live.load() == t.base_live + 1);
  std::optional<Handle> pinned = t.client->fetch("pinned");
  CHECK(t.run(pinned->attr("value").as<std::int64_t>()) == 5);
  pinned.reset();
  t.run(t.client->browse());  // a round trip after the release
  CHECK(Counted::live.load() == t.base_live + 1);

  // Only the connection that attached a name may detach it (ServerOptions::may_detach_any
  // aside); once it has gone, the server removes the name.
  CHECK(test::error_of(t.context, t.client->detach("pinned")) == ErrorKind::name);
  CHECK(Counted::live.load() == t.base_live + 1);
  CHECK(t.srv().unexport("pinned"));
  CHECK(t.settles());
  CHECK(t.handles_settle());
  CHECK(test::error_of(t.context, t.client->fetch("pinned").get()) == ErrorKind::name);
}

TEST_CASE("a detached object stays alive while a client still holds it") {
  LifetimeFixture t;
  std::optional<Handle> h = t.client->fetch("Counted")(9);
  t.run(t.client->attach(*h, "held"));
  t.run(t.client->detach("held"));
  t.run(t.client->browse());
  CHECK(Counted::live.load() == t.base_live + 1);
  CHECK(t.run(h->attr("value").as<std::int64_t>()) == 9);
  h.reset();
  CHECK(t.settles());
}

TEST_CASE("exports live until the server stops") {
  auto base = Counted::live.load();
  {
    LifetimeFixture t;
    t.srv().export_object(std::make_shared<Counted>(77), "exported");  // the server is its only owner
    for (int round = 0; round < 3; ++round) {
      asio::io_context c;
      auto other = test::connect(c, t.endpoint());
      CHECK(test::await(c, other.fetch("exported").call("add", 1).as<std::int64_t>()) == 78 + round);
      other.close();
      CHECK(test::eventually(c, [&] { return t.srv().connections() == 1; }));
      CHECK(Counted::live.load() == base + 1);
    }
    t.client->close();
    CHECK(test::eventually(t.context, [&] { return t.srv().connections() == 0; }));
    CHECK(t.srv().live_handles() == t.base_handles);
    CHECK(Counted::live.load() == base + 1);  // no client holds it; the export does
    t.server->stop();
    t.server.reset();
    CHECK(Counted::live.load() == base);
  }
  CHECK(Counted::live.load() == base);
}

TEST_CASE("100k objects created and dropped leave the server's live count where it started") {
  LifetimeFixture t;
  auto constructed_before = Counted::constructed.load();
  auto counted = t.client->fetch("Counted");
  constexpr int rounds = 100, batch = 1000;
  for (int round = 0; round < rounds; ++round) {
    // One batch: 1000 pipelined constructions, sent in one go; the batch is complete when the
    // server has constructed all of them (an event the counted type reports).
    auto target = Counted::constructed.load() + batch;
    std::vector<Handle> made;
    made.reserve(batch);
    for (int i = 0; i < batch; ++i) made.push_back(counted(round * batch + i));
    REQUIRE(test::eventually(t.context, [&] { return Counted::constructed.load() >= target; }));
    // The results are real handles: the last one made answers with its value.
    CHECK(t.run(made.back().attr("value").as<std::int64_t>()) == round * batch + batch - 1);
    made.clear();  // drop the whole batch
  }
  CHECK(Counted::constructed.load() - constructed_before >= rounds * batch);
  CHECK(t.settles());
  CHECK(t.handles_settle(1));  // `counted`
  // Spot-check that the objects were real: the last value made is gone, but a new one answers.
  CHECK(t.run(counted(123).attr("value").as<std::int64_t>()) == 123);
  CHECK(t.settles());
}

// CompletionImpl hands its work guard to the posted result: nothing touches the awaiting
// context after the post, so a thread may destroy its io_context as soon as its result arrived.
TEST_CASE("an awaiting io_context may be destroyed as soon as its result has arrived") {
  LifetimeFixture t;
  ContextThread net;
  auto client = on(net, connect_to(net.context.get_executor(), t.endpoint()));
  auto h = client->fetch("Counted")(1);
  int answered = 0;
  for (int i = 0; i < 500; ++i) {
    std::thread worker([&] {
      asio::io_context own;  // destroyed right after its one result arrives
      if (test::await(own, h.attr("value").as<std::int64_t>()) == 1) ++answered;
    });
    worker.join();
  }
  CHECK(answered == 500);
  client->close();
}
