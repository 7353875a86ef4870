// The blocking facade: remoteable::sync::Client / sync::Handle, and remoteable::block_on.

#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <thread>

#include "binding_types.hpp"

namespace rsync = remoteable::sync;  // ::sync is taken by unistd.h
using remoteable::ErrorKind;
using remoteable::None;
using remoteable::Value;

namespace {

template <class F>
ErrorKind error_of(F f) {
  try {
    f();
  } catch (const remoteable::RemoteError& e) {
    return e.kind();
  }
  FAIL("expected a RemoteError");
  return ErrorKind::user;
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
std::uint16_t closed_port() {
  asio::io_context context;
  asio::ip::tcp::acceptor acceptor(context, {asio::ip::make_address("127.0.0.1"), 0});
  return acceptor.local_endpoint().port();
}

}  // namespace

TEST_CASE("the sync client does every operation and returns plain values") {
  bt::Server s;
  rsync::Client client{s.endpoint()};

  // Registry.
  auto names = client.browse();
  CHECK(std::count(names.begin(), names.end(), "root") == 1);
  auto root = client.fetch("root");
  // Attributes and calls.
  CHECK(root.attr("value").as<std::int64_t>() == 1);
  root.set("value", 4);
  CHECK(root.attr("value").as<std::int64_t>() == 4);
  auto child = root.call("child", 0);
  CHECK((child.attr("value") + 4).as<std::int64_t>() == 6);
  CHECK((child == root.call("child", 0)).truthy());
  auto node = client.fetch("Node")(9);
  root.call("add_child", node).get();  // a sync handle as an argument
  CHECK(root.call("child_count").as<std::int64_t>() == 2);
  CHECK(root.call_list("child", {1}).attr("value").as<std::int64_t>() == 9);
  CHECK(client.fetch("Node").invoke_list({3}).attr("value").as<std::int64_t>() == 3);
  // Items.
  auto row = client.fetch("row");
  row.set_item(0, 10);
  CHECK(row.item(0).as<std::int64_t>() == 10);
  CHECK(row.len().as<std::int64_t>() == 3);
  // Operators, both orders, with values and with handles.
  auto five = client.fetch("five");
  auto three = client.store(3);
  CHECK((five - 3).as<std::int64_t>() == 2);
  CHECK((3 - five).as<std::int64_t>() == -2);
  CHECK((five - three).as<std::int64_t>() == 2);
  CHECK((five * three + 1).as<std::int64_t>() == 16);
  CHECK((five / 2).as<std::int64_t>() == 2);
  CHECK((five % 2).as<std::int64_t>() == 1);
  CHECK(((five & 4) | (five ^ 1) | (five << 1) | (five >> 1)).as<std::int64_t>() == (4 | 4 | 10 | 2));
  CHECK((five < 6).as<bool>());
  CHECK((five <= five).as<bool>());
  CHECK((five > three).as<bool>());
  CHECK((five >= 5.0).as<bool>());
  CHECK((five != 4).as<bool>());
  CHECK((-five).as<std::int64_t>() == -5);
  CHECK((~five).as<std::int64_t>() == ~5);
  CHECK_FALSE((!five).as<bool>());
  CHECK((five + 0.5).as<double>() == 5.5);
  // Evaluation.
  CHECK(client.fetch("vec").str() == "Vec2(3, 4)");
  CHECK(five.truthy());
  CHECK(five.get().as<std::int64_t>() == 5);
  CHECK(client.fetch("shape").attr("tags").as<std::vector<std::int64_t>>() == std::vector<std::int64_t>{1, 2, 3});
  CHECK(client.fetch("shape").attr("maybe").as<std::optional<std::int64_t>>() == std::nullopt);
  CHECK(client.fetch("shape").describe().type_name == "Shape");
  // Handles come back as handles: wrap them, or ask for a rsync::Handle directly.
  auto corners = client.fetch("shape").call("corners").get().as<std::vector<remoteable::Handle>>();
  REQUIRE(corners.size() == 4);
  CHECK(five.wrap(corners[2]).attr("y").as<double>() == 3);
  auto again = client.fetch("root").as<rsync::Handle>();
  CHECK(again.attr("value").as<std::int64_t>() == 4);
  // Store, attach, detach.
  auto ref = client.store(std::vector<std::int64_t>{1, 2});
  client.attach(ref, "by_sync");
  CHECK(client.fetch("by_sync").len().as<std::int64_t>() == 2);
  client.detach("by_sync");
  CHECK(error_of([&] { client.fetch("by_sync").get(); }) == ErrorKind::name);
  // Errors are thrown where the value is needed.
  CHECK(error_of([&] { (five / 0).get(); }) == ErrorKind::value);
  CHECK(error_of([&] { root.set("value", "text"); }) == ErrorKind::type);
  CHECK(error_of([&] { client.detach("root"); }) == ErrorKind::name);
}

TEST_CASE("a chain built in a coroutine run by sync::Client::wait is one call") {
  bt::Server s;
  rsync::Client client{s.endpoint()};
  auto root = client.fetch("root");
  CHECK(root.attr("value").as<std::int64_t>() == 1);  // bootstrap and fetch are done
  auto before = client.async().wire_stats().calls_sent;
  auto six = client.wait([](remoteable::Handle root) -> asio::awaitable<std::int64_t> {
    co_return co_await (root.call("child", 0).attr("value") + 4).as<std::int64_t>();
  }(root.async()));
  CHECK(six == 6);
  CHECK(client.async().wire_stats().calls_sent - before == 1);
}

TEST_CASE("two threads use one sync client at once") {
  bt::Server s;
  rsync::Client client{s.endpoint()};
  auto counter = client.fetch("counter");
  constexpr int per_thread = 100;
  auto work = [&](std::int64_t seed, std::vector<std::int64_t>& out) {
    auto mine = client.store(seed);
    for (int i = 0; i < per_thread; ++i) {
      counter(1).get();  // both threads update one object (one actor: no lost updates)
      out.push_back((mine * i + client.fetch("five")).as<std::int64_t>());
    }
  };
  std::vector<std::int64_t> a, b;
  std::thread first(work, 1, std::ref(a));
  std::thread second(work, 1000, std::ref(b));
  first.join();
  second.join();
  REQUIRE(a.size() == per_thread);
  REQUIRE(b.size() == per_thread);
  for (int i = 0; i < per_thread; ++i) {
    CHECK(a[static_cast<std::size_t>(i)] == 1 * i + 5);
    CHECK(b[static_cast<std::size_t>(i)] == 1000 * i + 5);
  }
  CHECK(counter.attr("total").as<std::int64_t>() == 2 * per_thread);
}

TEST_CASE("a sync handle outliving its closed client fails with disconnected, and never blocks") {
  bt::Server s;
  std::optional<rsync::Handle> root;
  {
    rsync::Client client{s.endpoint()};
    root = client.fetch("root");
    CHECK(root->attr("value").as<std::int64_t>() == 1);
    client.close();
    CHECK(error_of([&] { root->attr("value").get(); }) == ErrorKind::disconnected);
    CHECK(error_of([&] { client.browse(); }) == ErrorKind::disconnected);
    CHECK(error_of([&] { client.fetch("root").get(); }) == ErrorKind::disconnected);
    client.close();  // idempotent
  }
  CHECK(error_of([&] { root->str(); }) == ErrorKind::disconnected);
  CHECK(error_of([&] { (*root + 1).get(); }) == ErrorKind::disconnected);
  CHECK(error_of([] { rsync::Handle{}.get(); }) == ErrorKind::disconnected);
}

TEST_CASE("a blocking call from the sync client's own thread is refused instead of deadlocking") {
  bt::Server s;
  rsync::Client client{s.endpoint()};
  auto root = client.fetch("root");
  auto inside = [](rsync::Handle h) -> asio::awaitable<bool> {
    try {
      (void)h.attr("value").as<std::int64_t>();
    } catch (const std::logic_error&) {
      co_return true;
    }
    co_return false;
  };
  CHECK(client.wait(inside(root)));
  // The client still works afterwards, and can run any awaitable.
  CHECK(client.wait(root.async().attr("value").as<std::int64_t>()) == 1);
}

TEST_CASE("the sync client reports an unreachable server as disconnected") {
  CHECK(error_of([] { rsync::Client client({"127.0.0.1", closed_port()}); }) == ErrorKind::disconnected);
}

TEST_CASE("block_on runs a context until one awaitable completes") {
  bt::Server s;
  asio::io_context context;
  auto connect = [](asio::any_io_executor ex, remoteable::Endpoint ep) -> asio::awaitable<std::optional<remoteable::Client>> {
    co_return co_await remoteable::Client::connect(ex, ep);
  };
  auto client = *remoteable::block_on(context, connect(context.get_executor(), s.endpoint()));
  auto root = client.fetch("root");
  CHECK(remoteable::block_on(context, root.attr("value").as<std::int64_t>()) == 1);
  remoteable::block_on(context, root.set("value", 3));  // the void form
  CHECK(remoteable::block_on(context, root.attr("value").str()) == "3");
  // Errors are rethrown.
  CHECK(error_of([&] { remoteable::block_on(context, (client.fetch("five") / 0).get()); }) == ErrorKind::value);
  CHECK(error_of([&] { remoteable::block_on(context, client.fetch("root").set("value", "x")); }) == ErrorKind::type);
  client.close();
  context.restart();
  context.poll();
}

TEST_CASE("block_on throws when the context runs out of work before the awaitable completes") {
  asio::io_context context;
  // An operation whose handler is dropped: nothing can ever resume the coroutine.
  auto never = []() -> asio::awaitable<int> {
    auto drop = [](auto) {};
    co_await asio::async_initiate<const asio::use_awaitable_t<>&, void()>(drop, asio::use_awaitable);
    co_return 1;
  };
  CHECK(error_of([&] { remoteable::block_on(context, never()); }) == ErrorKind::disconnected);
  // The same context serves the next block_on.
  auto quick = []() -> asio::awaitable<int> { co_return 2; };
  CHECK(remoteable::block_on(context, quick()) == 2);
}
