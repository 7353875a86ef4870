// The seed walkthrough (DESIGN §1), step by step, over a real loopback connection.

#include "support.hpp"

using remoteable::ErrorKind;
using test::Connected;

TEST_CASE("every step of the walkthrough gives the seed's values") {
  Connected t;
  auto& client = t.client;

  auto names = t.run(client.browse());
  CHECK(names == std::vector<std::string>{"Node", "child", "five", "root"});

  auto root = client.fetch("root");
  CHECK(t.run(root.attr("value").as<std::int64_t>()) == 1);
  CHECK(t.run(root.attr("value").str()) == "1");

  t.run(root.set("value", 4));
  CHECK(t.run(root.attr("value").as<std::int64_t>()) == 4);

  auto child = root.call("child", 0);
  CHECK(t.run(child.attr("value").as<std::int64_t>()) == 2);
  CHECK(t.run((child.attr("value") + 4).as<std::int64_t>()) == 6);
  CHECK(t.run((child == root.call("child", 0)).truthy()));

  auto ref = client.store(5);
  CHECK(t.run(ref.as<std::int64_t>()) == 5);
  t.run(client.attach(ref, "exported_by_client"));
  CHECK(t.run((client.fetch("exported_by_client") == ref).truthy()));
  CHECK(t.run(client.browse()) == std::vector<std::string>{"Node", "child", "exported_by_client", "five", "root"});

  t.run(root.set("value", ref));
  CHECK(t.run(root.attr("value").as<std::int64_t>()) == 5);
}

namespace {
/// Calls the client wrote before the first return arrived, calls in all, and returns in all,
/// for what `t` did since the trace was cleared.
struct Counted {
  std::size_t before_first_return = 0, calls = 0, returns = 0;
};
Counted count_calls(Connected& t) {
  Counted n;
  bool returned = false;
  for (auto& e : t.client.wire_trace()) {
    if (!e.outgoing && e.kind == "return") {
      returned = true;
      ++n.returns;
    }
    if (e.outgoing && e.kind == "call") {
      ++n.calls;
      if (!returned) ++n.before_first_return;
    }
  }
  return n;
}
/// Exactly `calls` calls since `before`, all written before the first return, and as many returns.
void check_calls(Connected& t, const remoteable::WireStats& before, std::size_t calls) {
  auto n = count_calls(t);
  CHECK(n.before_first_return == calls);
  CHECK(n.calls == calls);
  CHECK(t.client.wire_stats().calls_sent - before.calls_sent == calls);
  CHECK(n.returns == calls);
}
}  // namespace

TEST_CASE("a pipelined chain writes all its calls before any return arrives") {
  remoteable::ClientOptions options;
  options.trace_wire = true;
  Connected t(options);
  auto root = t.client.fetch("root");
  CHECK(t.run(root.attr("value").as<std::int64_t>()) == 1);  // bootstrap and fetch are done
  t.client.clear_wire_trace();
  auto before = t.client.wire_stats();

  SECTION("handles kept in between: each step is a call, pipelined on the one before") {
    auto child = root.call("child", 0);
    auto value = child.attr("value");
    auto sum = value + 4;
    CHECK(t.run(sum.as<std::int64_t>()) == 6);
    // Four operations: call child, attr value, binary +, and the evaluation, which rides in the
    // last step (its answer carries the value): three calls, all on the wire before the first
    // return, and no other call.
    check_calls(t, before, 3);
  }
  SECTION("nothing held in between: the steps travel as one chain call") {
    // The walkthrough's expression: the handles that call and attr make are temporaries, so
    // the three steps and the evaluation go in one Handle.chain call, with one return.
    CHECK(t.run((root.call("child", 0).attr("value") + 4).as<std::int64_t>()) == 6);
    check_calls(t, before, 1);
  }
}

TEST_CASE("a pipelined chain goes out in one socket write") {
  Connected t;
  auto root = t.client.fetch("root");
  CHECK(t.run(root.attr("value").as<std::int64_t>()) == 1);  // bootstrap and fetch are done
  // Drain whatever that evaluation left to write (its Finish messages), then start the chain.
  t.context.restart();
  t.context.poll();
  auto before = t.client.wire_stats();
  std::optional<std::int64_t> value;
  std::size_t calls = 0;
  SECTION("as one chain call") {
    asio::co_spawn(t.context, [](remoteable::Handle root, std::optional<std::int64_t>* out) -> asio::awaitable<void> {
      *out = co_await (root.call("child", 0).attr("value") + 4).as<std::int64_t>();
    }(root, &value), asio::detached);
    calls = 1;  // child, value, + and the value: one chain
  }
  SECTION("as three pipelined calls") {
    asio::co_spawn(t.context, [](remoteable::Handle root, std::optional<std::int64_t>* out) -> asio::awaitable<void> {
      auto child = root.call("child", 0);
      auto value = child.attr("value");
      *out = co_await (value + 4).as<std::int64_t>();
    }(root, &value), asio::detached);
    calls = 3;  // child, value, + with the value
  }
  // Run until the first write: by then every call of the chain is in it.
  t.context.restart();
  for (int i = 0; i < 1000 && t.client.wire_stats().writes == before.writes; ++i) t.context.run_one_for(std::chrono::milliseconds(20));
  auto at_first_write = t.client.wire_stats();
  CHECK(at_first_write.writes - before.writes == 1);
  CHECK(at_first_write.calls_sent - before.calls_sent == calls);
  // And the answer is right.
  for (int i = 0; i < 1000 && !value; ++i) t.context.run_one_for(std::chrono::milliseconds(20));
  CHECK(value == 6);
}

TEST_CASE("the class handle constructs new objects, and exported values evaluate") {
  Connected t;
  auto node = t.client.fetch("Node")(41);
  CHECK(t.run((node.attr("value") + 1).as<std::int64_t>()) == 42);
  CHECK(t.run(t.client.fetch("five").as<std::int64_t>()) == 5);
  CHECK(t.run((10 - t.client.fetch("five")).as<std::int64_t>()) == 5);
}
