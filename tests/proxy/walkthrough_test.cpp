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

TEST_CASE("a pipelined chain writes all its calls before any return arrives") {
  remoteable::ClientOptions options;
  options.trace_wire = true;
  Connected t(options);
  auto root = t.client.fetch("root");
  CHECK(t.run(root.attr("value").as<std::int64_t>()) == 1);  // bootstrap and fetch are done
  t.client.clear_wire_trace();
  auto before = t.client.wire_stats();

  auto value = t.run((root.call("child", 0).attr("value") + 4).as<std::int64_t>());
  CHECK(value == 6);

  auto trace = t.client.wire_trace();
  std::size_t calls_before_first_return = 0;
  for (auto& e : trace) {
    if (!e.outgoing && e.kind == "return") break;
    if (e.outgoing && e.kind == "call") ++calls_before_first_return;
  }
  // Four operations: call child, attr value, binary +, and the evaluation, which rides in the
  // last step (its answer carries the value): three calls, all on the wire before the first
  // return, and no other call.
  CHECK(calls_before_first_return == 3);
  CHECK(t.client.wire_stats().calls_sent - before.calls_sent == 3);
  std::size_t returns = 0;
  for (auto& e : trace) returns += !e.outgoing && e.kind == "return";
  CHECK(returns == 3);
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
  asio::co_spawn(t.context, [](remoteable::Handle root, std::optional<std::int64_t>* out) -> asio::awaitable<void> {
    *out = co_await (root.call("child", 0).attr("value") + 4).as<std::int64_t>();
  }(root, &value), asio::detached);
  // Run until the first write: by then every call of the chain is in it.
  t.context.restart();
  for (int i = 0; i < 1000 && t.client.wire_stats().writes == before.writes; ++i) t.context.run_one_for(std::chrono::milliseconds(20));
  auto at_first_write = t.client.wire_stats();
  CHECK(at_first_write.writes - before.writes == 1);
  CHECK(at_first_write.calls_sent - before.calls_sent == 3);  // child, value, + with the value
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
