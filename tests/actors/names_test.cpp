// Export names (issue 8 item 7): a taken name throws unless replacing is asked for, and every
// name, exported by the server or attached by a client, is one identifier the CLI can write.

#include <stdexcept>

#include "actors/names.hpp"
#include "support.hpp"

using remoteable::ErrorKind;

namespace {

std::int64_t one() { return 1; }
std::int64_t two() { return 2; }

// Names no client expression can reach, and the ones the CLI reads as keywords.
const std::vector<std::string> bad_names{
    "", std::string(remoteable::max_export_name + 1, 'x'), std::string(1 << 16, 'y'), "a b.c", "a.b", "a b", "1abc", "9", "a-b", "x(", "'q'", "caf\xc3\xa9", std::string("a\0b", 3), "\n",
    "true", "True", "false", "False", "none", "None", "not"};
const std::vector<std::string> good_names{"a", "_", "_x1", "Node2", "root_child", "ALL_CAPS", "store", "nothing", "not_"};

std::string invalid_argument_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  FAIL("expected std::invalid_argument");
  return {};
}

}  // namespace

TEST_CASE("export names: the CLI's identifiers that are not keywords, and every export_* refuses others") {
  for (auto& name : good_names) {
    INFO(name);
    CHECK(remoteable::export_name_problem(name).empty());
  }
  for (auto& name : bad_names) {
    INFO(name);
    CHECK_FALSE(remoteable::export_name_problem(name).empty());
  }
  // The message states the rule and quotes the name, escaped and cut short.
  CHECK_THAT(remoteable::export_name_problem("a b.c"), Catch::Contains("one identifier") && Catch::Contains("'a b.c'"));
  CHECK_THAT(remoteable::export_name_problem(""), Catch::Contains("empty"));
  CHECK_THAT(remoteable::export_name_problem("none"), Catch::Contains("keyword"));
  CHECK_THAT(remoteable::export_name_problem(std::string("a\0b", 3)), Catch::Contains("a\\x00b"));
  CHECK(remoteable::export_name_problem(std::string(10'000, '-')).size() < 400);
  // At most max_export_name bytes: an attached name is kept until detached.
  CHECK(remoteable::export_name_problem(std::string(remoteable::max_export_name, 'a')).empty());
  auto too_long = remoteable::export_name_problem(std::string(remoteable::max_export_name + 1, 'a'));
  CHECK_THAT(too_long, Catch::Contains("at most 255 bytes") && Catch::Contains("got 256"));
  CHECK(too_long.size() < 400);

  // Each export_* applies the rule and exports nothing.
  test::WalkthroughServer s;
  auto& server = s.server->server();
  for (auto& name : bad_names) {
    INFO(name);
    CHECK_THROWS_AS(server.export_value(std::int64_t{1}, name), std::invalid_argument);
    CHECK_THROWS_AS(server.export_object(std::make_shared<example::Node>(1), name), std::invalid_argument);
    CHECK_THROWS_AS(server.export_object(std::make_shared<example::Node>(1), name, remoteable::same_actor_as{"root"}),
                    std::invalid_argument);
    CHECK_THROWS_AS(server.export_class<example::Node>(name), std::invalid_argument);
    CHECK_THROWS_AS(server.export_function(name, &one), std::invalid_argument);
    CHECK_THROWS_AS(server.export_function(name, &one, remoteable::blocking), std::invalid_argument);
    // Asking to replace does not lift the rule.
    CHECK_THROWS_AS(server.export_value(std::int64_t{1}, name, remoteable::replace), std::invalid_argument);
  }
  CHECK(server.browse() == std::vector<std::string>{"Node", "child", "five", "root"});
  for (auto& name : good_names) {
    INFO(name);
    CHECK_NOTHROW(server.export_value(std::int64_t{1}, name));
  }
  CHECK_THAT(invalid_argument_of([&] { server.export_value(std::int64_t{1}, "a b.c"); }),
             Catch::Contains("'a b.c'") && Catch::Contains("identifier"));
}

TEST_CASE("exporting a taken name throws, and the first export stays") {
  test::Connected t;
  auto& server = t.server->server();
  CHECK_THAT(invalid_argument_of([&] { server.export_value(std::int64_t{6}, "five"); }),
             Catch::Contains("'five'") && Catch::Contains("already exported") && Catch::Contains("remoteable::replace"));
  CHECK_THROWS_AS(server.export_object(std::make_shared<example::Node>(9), "root"), std::invalid_argument);
  CHECK_THROWS_AS(server.export_object(std::make_shared<example::Node>(9), "child", remoteable::same_actor_as{"root"}),
                  std::invalid_argument);
  CHECK_THROWS_AS(server.export_class<example::Node>("Node"), std::invalid_argument);
  server.export_function("f", &one);
  CHECK_THROWS_AS(server.export_function("f", &two), std::invalid_argument);
  CHECK_THROWS_AS(server.export_function("f", &two, remoteable::blocking), std::invalid_argument);
  // Over the wire, the exports are the first ones.
  CHECK(t.run(t.client.fetch("five").as<std::int64_t>()) == 5);
  CHECK(t.run(t.client.fetch("root").attr("value").as<std::int64_t>()) == 1);
  CHECK(t.run(t.client.fetch("f")().as<std::int64_t>()) == 1);
}

TEST_CASE("remoteable::replace replaces an export explicitly") {
  test::Connected t;
  auto& server = t.server->server();
  CHECK_THROWS_AS(server.export_value(std::int64_t{6}, "five"), std::invalid_argument);  // not without asking
  CHECK(t.run(t.client.fetch("five").as<std::int64_t>()) == 5);
  server.export_value(std::int64_t{6}, "five", remoteable::replace);
  CHECK(t.run(t.client.fetch("five").as<std::int64_t>()) == 6);
  server.export_object(std::make_shared<example::Node>(9), "root", remoteable::replace);
  CHECK(t.run(t.client.fetch("root").attr("value").as<std::int64_t>()) == 9);
  server.export_object(std::make_shared<example::Node>(8), "child", remoteable::same_actor_as{"root"}, remoteable::replace);
  CHECK(server.same_actor("root", "child"));
  CHECK(t.run(t.client.fetch("child").attr("value").as<std::int64_t>()) == 8);
  server.export_function("f", &one);
  server.export_function("f", &two, remoteable::replace);
  CHECK(t.run(t.client.fetch("f")().as<std::int64_t>()) == 2);
  server.export_function("f", &one, remoteable::blocking, remoteable::replace);
  CHECK(t.run(t.client.fetch("f")().as<std::int64_t>()) == 1);
  server.export_class<example::Node>("Node", remoteable::replace);
  // Replacing a name that is free just exports it.
  server.export_value(std::int64_t{3}, "three", remoteable::replace);
  CHECK(t.run(t.client.fetch("three").as<std::int64_t>()) == 3);
  CHECK(server.browse() == std::vector<std::string>{"Node", "child", "f", "five", "root", "three"});
}

TEST_CASE("a null object cannot be exported") {
  test::WalkthroughServer s;
  CHECK_THROWS_AS(s.server->server().export_object(std::shared_ptr<example::Node>{}, "empty"), std::invalid_argument);
  CHECK(s.server->server().browse() == std::vector<std::string>{"Node", "child", "five", "root"});
}

TEST_CASE("attach over the wire refuses a name the CLI cannot write with a value error naming the rule") {
  test::Connected t;
  auto stored = t.client.store(std::vector<std::int64_t>{1, 2});
  for (auto& name : bad_names) {
    if (name.find('\0') != std::string::npos) continue;  // the client's Text stops at a NUL
    INFO(name);
    CHECK(test::error_of(t.context, t.client.attach(stored, name)) == ErrorKind::value);
  }
  try {
    t.run(t.client.attach(stored, "a b.c"));
    FAIL("attach accepted 'a b.c'");
  } catch (const remoteable::RemoteError& e) {
    CHECK(e.kind() == ErrorKind::value);
    CHECK_THAT(e.message(), Catch::Contains("'a b.c'") && Catch::Contains("identifier"));
  }
  auto names = t.run(t.client.browse());
  CHECK(names == std::vector<std::string>{"Node", "child", "five", "root"});
  // A good name works, and the server still refuses it as taken, and replaces it when asked.
  t.run(t.client.attach(stored, "mine"));
  CHECK(t.run(t.client.fetch("mine").len().as<std::int64_t>()) == 2);
  CHECK_THROWS_AS(t.server->server().export_value(std::int64_t{1}, "mine"), std::invalid_argument);
  CHECK(test::error_of(t.context, t.client.attach(stored, "mine")) == ErrorKind::name);
  t.server->server().export_value(std::int64_t{1}, "mine", remoteable::replace);
  CHECK(t.run(t.client.fetch("mine").as<std::int64_t>()) == 1);
}
