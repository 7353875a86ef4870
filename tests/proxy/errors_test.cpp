// Every failure reaches the client as a RemoteError of the right kind, at the evaluation that
// depends on it, and the server keeps serving.

#include "support.hpp"
#include "test_types.hpp"

using remoteable::ErrorKind;

namespace {
struct ErrorsFixture : test::Connected {
  ErrorsFixture() {
    test::register_test_types(types);
    server->server().export_object(std::make_shared<test::Faulty>(), "faulty");
  }
};
}  // namespace

TEST_CASE("an unknown export name is a name error at evaluation") {
  ErrorsFixture t;
  auto missing = t.client.fetch("no_such_thing");  // no round trip, no error yet
  CHECK(test::error_of(t.context, missing.attr("value").get()) == ErrorKind::name);
  CHECK(test::error_of(t.context, t.client.detach("never_attached")) == ErrorKind::name);
}

TEST_CASE("missing and read-only attributes are attribute errors") {
  ErrorsFixture t;
  auto root = t.client.fetch("root");
  CHECK(test::error_of(t.context, root.attr("nope").get()) == ErrorKind::attribute);
  CHECK(test::error_of(t.context, root.call("nope", 1).get()) == ErrorKind::attribute);
  auto faulty = t.client.fetch("faulty");
  CHECK(t.run(faulty.attr("fixed").as<std::int64_t>()) == 7);
  CHECK(test::error_of(t.context, faulty.set("fixed", 8)) == ErrorKind::attribute);
}

TEST_CASE("wrong argument counts and kinds, and unsupported operators, are type errors") {
  ErrorsFixture t;
  auto faulty = t.client.fetch("faulty");
  CHECK(t.run(faulty.call("twice", 21).as<std::int64_t>()) == 42);
  CHECK(test::error_of(t.context, faulty.call("twice").get()) == ErrorKind::type);
  CHECK(test::error_of(t.context, faulty.call("twice", "x").get()) == ErrorKind::type);
  CHECK(test::error_of(t.context, t.client.fetch("root").set("value", "text")) == ErrorKind::type);
  CHECK(test::error_of(t.context, (t.client.fetch("root") + 1).get()) == ErrorKind::type);
  // A remote value of the wrong kind, converted on the client, is a type error too.
  CHECK(test::error_of(t.context, faulty.call("greet", "you").as<std::int64_t>()) == ErrorKind::type);
  try {
    t.run(faulty.call("twice", "x").get());
  } catch (const remoteable::RemoteError& e) {
    CHECK_THAT(e.message(), Catch::Contains("Faulty.twice") && Catch::Contains("int64") && Catch::Contains("text"));
  }
}

TEST_CASE("a throwing method is a user error with the exception's type and message") {
  ErrorsFixture t;
  try {
    t.run(t.client.fetch("faulty").call("fail").get());
    FAIL("expected an error");
  } catch (const remoteable::RemoteError& e) {
    CHECK(e.kind() == ErrorKind::user);
    CHECK_THAT(e.message(), Catch::Contains("std::runtime_error") && Catch::Contains("boom"));
  }
  // The server is fine afterwards.
  CHECK(t.run(t.client.fetch("faulty").call("greet", "again").as<std::string>()) == "hello again");
}

TEST_CASE("index and value errors from the object model") {
  ErrorsFixture t;
  auto root = t.client.fetch("root");
  CHECK(test::error_of(t.context, root.call("child", 99).get()) == ErrorKind::index);
  CHECK(test::error_of(t.context, (t.client.fetch("five") / 0).get()) == ErrorKind::value);
  CHECK(test::error_of(t.context, (t.client.store(std::numeric_limits<std::int64_t>::max()) + 1).get()) ==
        ErrorKind::value);
}

TEST_CASE("an error early in a chain surfaces at the end of the chain") {
  ErrorsFixture t;
  auto chain = t.client.fetch("root").call("child", 5).attr("value") + 1;
  CHECK(test::error_of(t.context, chain.as<std::int64_t>()) == ErrorKind::index);
}

TEST_CASE("a closed client fails pending and later awaits with disconnected") {
  ErrorsFixture t;
  auto root = t.client.fetch("root");
  t.client.close();
  CHECK(test::error_of(t.context, root.attr("value").get()) == ErrorKind::disconnected);
  CHECK(test::error_of(t.context, t.client.browse()) == ErrorKind::disconnected);
  CHECK_FALSE(t.client.connected());
}
