// The evaluator in process: one round trip per statement, checked on the wire.

#include "cli/evaluator.hpp"

#include <catch2/catch.hpp>

#include "cli/format.hpp"
#include "cli_support.hpp"

using namespace cli_test;
using namespace remoteable;
using namespace remoteable::cli;

namespace {

struct Session : WalkthroughServer {
  Session() {
    ClientOptions options;
    options.trace_wire = true;
    client.emplace(await(context, Client::connect(context.get_executor(),
                                                  Endpoint{"127.0.0.1", port()}, options)));
    evaluator.emplace(*client);
    // The bootstrap and first fetches are done once here, so the traces below see only the
    // statement under test.
    run("root.value");
    run("five");
    client->clear_wire_trace();
  }

  // Lets the connection finish closing on the context before the context goes away.
  ~Session() {
    client->close();
    evaluator.reset();
    client.reset();
    context.restart();
    while (context.poll() > 0) {
    }
  }

  Outcome run(std::string_view source) {
    Statement statement = parse(source);
    return await(context, evaluator->evaluate(statement));
  }

  // Calls put on the wire before the first return came back, and calls in all.
  std::pair<std::size_t, std::size_t> calls() const {
    std::size_t before_first_return = 0, total = 0;
    bool returned = false;
    for (auto& e : client->wire_trace()) {
      if (!e.outgoing && e.kind == "return") returned = true;
      if (e.outgoing && e.kind == "call") {
        ++total;
        if (!returned) ++before_first_return;
      }
    }
    return {before_first_return, total};
  }

  asio::io_context context;
  std::optional<Client> client;
  std::optional<Evaluator> evaluator;
};

std::int64_t int_of(const Outcome& o) { return std::get<Value>(o).as<std::int64_t>(); }

}  // namespace

TEST_CASE("a whole expression goes out before the first reply comes back", "[evaluator]") {
  Session s;
  CHECK(int_of(s.run("root.child(0).value + 4")) == 6);
  auto [before_first_return, total] = s.calls();
  // fetch root, then child(0), .value and + 4 as one chain call (its answer carries the value,
  // as the evaluation asked): every call sent before any return arrived.
  CHECK(total == 2);
  CHECK(before_first_return == total);
}

TEST_CASE("a method call on an attribute is one call, not an attribute read and a call",
          "[evaluator]") {
  Session s;
  CHECK(int_of(s.run("root.child_count()")) == 1);
  CHECK(s.calls().second == 2);  // fetch root, child_count() bringing back its value
}

TEST_CASE("an assignment with a chained value costs one round trip", "[evaluator]") {
  Session s;
  CHECK(std::holds_alternative<NoResult>(s.run("root.value = root.child(0).value * 10")));
  auto [before_first_return, total] = s.calls();
  CHECK(before_first_return == total);
  CHECK(int_of(s.run("root.value")) == 20);
}

TEST_CASE("a slice x[a:b] is one pipelined step", "[evaluator]") {
  Session s;
  auto v = std::get<Value>(s.run("[1, 2, 3, 4][1:3]"));
  CHECK(v.as<std::vector<std::int64_t>>() == std::vector<std::int64_t>{2, 3});
  auto [before_first_return, total] = s.calls();
  CHECK(before_first_return == total);
}

TEST_CASE("literal operands travel as values, not as stored objects", "[evaluator]") {
  Session s;
  CHECK(int_of(s.run("five * 2 + 1")) == 11);
  CHECK(s.calls().second == 2);  // fetch five, chain (*, + and the value): the literals rode along
}

TEST_CASE("a literal alone is printed without a word to the server", "[evaluator]") {
  Session s;
  auto before = s.client->wire_stats();
  Outcome o = s.run("[1, 'two', -3.5, none]");
  CHECK(format(o, OutputStyle::plain) == "[1, 'two', -3.5, none]\n");
  CHECK(s.client->wire_stats().messages_sent == before.messages_sent);
}

TEST_CASE("str() and bool() evaluate with the server's conversions", "[evaluator]") {
  Session s;
  CHECK(std::get<Value>(s.run("str(five)")).as<std::string>() == "5");
  CHECK(s.calls().first == s.calls().second);
  s.client->clear_wire_trace();
  CHECK(std::get<Value>(s.run("bool(five - 5)")).as<bool>() == false);
  CHECK(s.calls().first == s.calls().second);
}

TEST_CASE("browse and describe report through the outcome", "[evaluator]") {
  Session s;
  auto names = std::get<ExportNames>(s.run("browse()")).names;
  CHECK(names == std::vector<std::string>{"Node", "child", "five", "root"});
  auto d = std::get<Description>(s.run("describe(root)"));
  CHECK(d.type_name == "Node");
}

TEST_CASE("remote errors surface as RemoteError with their kind", "[evaluator]") {
  Session s;
  try {
    s.run("root.child(0).nope");
    FAIL("expected an error");
  } catch (const RemoteError& e) {
    CHECK(e.kind() == ErrorKind::attribute);
  }
}
