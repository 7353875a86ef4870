// Authentication and authority (issue 12 items 2, 3 and 5): tokens right, wrong, missing and
// slow; the rate limit of failures; exports scoped per principal; store, attach and detach
// refused; read-only exports, through derived handles and handles passed back to the server.

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include <chrono>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "actors/authority.hpp"
#include "counted.hpp"
#include "ring_log.hpp"
#include "schemas/remoteable.capnp.h"
#include "support.hpp"

using namespace std::chrono_literals;
using remoteable::ErrorKind;

namespace {

/// Integer cells assignable by index (the walkthrough exports nothing with a settable item).
struct Cells {
  std::vector<std::int64_t> cells{1, 2, 3};
  std::int64_t& operator[](std::size_t i) { return cells.at(i); }
  std::size_t size() const { return cells.size(); }
};

/// A walkthrough server with authentication: tokens "alice-secret" (alice) and "bob-secret"
/// (bob), with `tune` to change the options; its log in a RingLog.
struct Server {
  template <class Tune>
  explicit Server(Tune tune) {
    remoteable::ServerOptions options;
    options.logger = log.logger;
    remoteable::ServerAuth auth;
    auth.tokens = {{"alice-secret", "alice"}, {"bob-secret", "bob"}};
    options.auth = auth;
    tune(options);
    example::register_node(types);
    types.class_<Cells>("Cells");
    server.emplace(remoteable::Endpoint{"127.0.0.1", 0}, types, std::move(options));
    example::export_walkthrough(server->server());
  }
  Server() : Server([](remoteable::ServerOptions&) {}) {}
  remoteable::Endpoint endpoint() const { return {"127.0.0.1", server->port()}; }
  test::RingLog log{"server", spdlog::level::info};
  remoteable::Registry types;
  std::optional<remoteable::ThreadedServer> server;
};

remoteable::ClientOptions with_token(std::string token) {
  remoteable::ClientOptions options;
  options.token = std::move(token);
  return options;
}

/// Connecting fails: the error, for its kind and message.
remoteable::RemoteError refused(asio::io_context& context, remoteable::Endpoint endpoint, remoteable::ClientOptions options) {
  try {
    test::connect(context, std::move(endpoint), std::move(options));
  } catch (const remoteable::RemoteError& e) {
    return e;
  }
  FAIL("the connection was accepted");
  throw std::logic_error("unreachable");
}

std::int64_t chain(asio::io_context& context, const remoteable::Client& client) {
  return test::await(context, (client.fetch("root").call("child", 0).attr("value") + 4).as<std::int64_t>());
}

/// The error an awaitable fails with (the test fails if it succeeds).
template <class T>
remoteable::RemoteError error_of(asio::io_context& context, asio::awaitable<T> aw) {
  try {
    test::await(context, std::move(aw));
  } catch (const remoteable::RemoteError& e) {
    return e;
  }
  FAIL("expected a RemoteError");
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("with authentication, a client without a token gets nothing but security errors, one with a right token everything") {
  Server s;
  asio::io_context context;
  auto anonymous = test::connect(context, s.endpoint());  // the version check is allowed
  for (auto& e : {error_of(context, anonymous.fetch("root").as<std::int64_t>()), error_of(context, anonymous.browse()),
                  error_of(context, anonymous.store(1).as<std::int64_t>()), error_of(context, anonymous.detach("x"))}) {
    CHECK(e.kind() == ErrorKind::security);
    CHECK_THAT(e.message(), Catch::Contains("authenticate first"));
  }
  auto alice = test::connect(context, s.endpoint(), with_token("alice-secret"));
  CHECK(chain(context, alice) == 6);
  CHECK(test::await(context, alice.browse()) == std::vector<std::string>{"Node", "child", "five", "root"});
  CHECK(test::eventually([&] { return s.log.has("info", "authenticated as 'alice'"); }));
}

TEST_CASE("a wrong token fails connect with a security error that says the token was refused, not retried") {
  Server s;
  asio::io_context context;
  auto options = with_token("alice-secret-but-wrong");
  options.connect_attempts = 3;
  test::RingLog client_log("client");
  options.logger = client_log.logger;
  auto e = refused(context, s.endpoint(), options);
  CHECK(e.kind() == ErrorKind::security);
  CHECK_THAT(e.message(), Catch::Contains("the token was refused"));
  CHECK(client_log.count("info", "retrying") == 0);
  CHECK(test::eventually([&] { return s.log.has("warning", "authentication from 127.0.0.1:"); }));
  // A prefix, a longer token and an oversized one are refused as well.
  for (std::string token : {std::string("alice"), std::string("alice-secretX"), std::string(5000, 'a')})
    CHECK(refused(context, s.endpoint(), with_token(token)).kind() == ErrorKind::security);
}

TEST_CASE("a connection that never authenticates is closed after the bound; an authenticated one stays") {
  Server s([](remoteable::ServerOptions& o) {
    o.auth->timeout = 300ms;
    o.sweep_interval = 20ms;
  });
  asio::io_context context;
  auto alice = test::connect(context, s.endpoint(), with_token("alice-secret"));
  auto slow = test::connect(context, s.endpoint());
  CHECK(test::eventually(context, [&] { return !slow.connected(); }));
  CHECK(s.log.has("info", "not authenticated within 300 ms"));
  // The client sees the end first; the server counts the connection closed just after.
  CHECK(test::eventually([&] { return s.server->server().connections() == 1; }));
  CHECK(chain(context, alice) == 6);
  CHECK(alice.connected());
}

TEST_CASE("after max_failures wrong tokens from an address, even the right token is refused unchecked, with one warning") {
  Server s([](remoteable::ServerOptions& o) {
    o.auth->max_failures = 3;
    o.auth->failure_window = std::chrono::hours(1);  // every attempt of the test falls in it
  });
  asio::io_context context;
  for (int i = 0; i < 3; ++i) {
    auto e = refused(context, s.endpoint(), with_token("guess" + std::to_string(i)));
    CHECK_THAT(e.message(), Catch::Contains("the token was refused"));
  }
  for (int i = 0; i < 2; ++i) {
    auto e = refused(context, s.endpoint(), with_token("alice-secret"));
    CHECK(e.kind() == ErrorKind::security);
    CHECK_THAT(e.message(), Catch::Contains("too many failed authentication attempts from 127.0.0.1"));
  }
  CHECK(s.log.count("warning", "refusing authentication from 127.0.0.1") == 1);
}

TEST_CASE("the table of addresses with failures stays within max_tracked_addresses, and windows end") {
  remoteable::ServerAuth options;
  options.tokens = {{"t", "p"}};
  options.max_failures = 1;
  options.max_tracked_addresses = 4;
  options.failure_window = 1000ms;
  remoteable::detail::Authenticator auth(options);
  test::RingLog log("auth");
  auto t0 = std::chrono::steady_clock::now();  // a clock of the test's own: no waiting
  for (int i = 0; i < 100; ++i) auth.failed("10.0.0." + std::to_string(i), t0 + std::chrono::milliseconds(i));
  CHECK(auth.tracked() == 4);
  CHECK(auth.limited("10.0.0.99", t0 + 100ms, *log.logger));
  CHECK(!auth.limited("10.0.0.0", t0 + 100ms, *log.logger));        // forgotten, the oldest
  CHECK(!auth.limited("10.0.0.99", t0 + 99ms + 1000ms, *log.logger));  // its window is over
  CHECK(auth.check_token("t") != nullptr);
  CHECK(auth.check_token("t")->principal == "p");
  CHECK(auth.check_token("u") == nullptr);
  CHECK(auth.check_token("") == nullptr);
  CHECK_THROWS_AS(remoteable::detail::Authenticator([] {
    remoteable::ServerAuth bad;
    bad.tokens = {{"", "p"}};
    return bad;
  }()), std::invalid_argument);
}

TEST_CASE("a principal sees and fetches only its exports; the others are answered as absent") {
  Server s([](remoteable::ServerOptions& o) {
    remoteable::Authority alice;
    alice.exports.emplace(std::set<std::string, std::less<>>{"root", "five"});
    o.auth->authorities["alice"] = alice;
  });
  asio::io_context context;
  auto alice = test::connect(context, s.endpoint(), with_token("alice-secret"));
  CHECK(test::await(context, alice.browse()) == std::vector<std::string>{"five", "root"});
  CHECK(chain(context, alice) == 6);
  auto e = error_of(context, alice.fetch("child").attr("value").as<std::int64_t>());
  CHECK(e.kind() == ErrorKind::name);
  CHECK(e.message() == "no export named 'child'");
  CHECK(error_of(context, alice.detach("child")).kind() == ErrorKind::name);
  // Attaching under a name it cannot see would hide it from itself: refused.
  auto a = error_of(context, alice.attach(alice.fetch("root"), "mine"));
  CHECK(a.kind() == ErrorKind::security);
  CHECK_THAT(a.message(), Catch::Contains("principal 'alice' may not attach under the name 'mine'"));
  auto bob = test::connect(context, s.endpoint(), with_token("bob-secret"));
  CHECK(test::await(context, bob.browse()) == std::vector<std::string>{"Node", "child", "five", "root"});
  CHECK(test::await(context, bob.fetch("child").attr("value").as<std::int64_t>()) == 2);
}

TEST_CASE("a principal without may_store, may_attach or may_detach is refused each with a security error") {
  Server s([](remoteable::ServerOptions& o) {
    remoteable::Authority reader;
    reader.may_store = reader.may_attach = reader.may_detach = false;
    o.auth->authorities["alice"] = reader;
  });
  asio::io_context context;
  auto bob = test::connect(context, s.endpoint(), with_token("bob-secret"));
  test::await(context, bob.attach(bob.fetch("root"), "bobs"));
  auto alice = test::connect(context, s.endpoint(), with_token("alice-secret"));
  auto stored = error_of(context, alice.store(std::int64_t{1}).as<std::int64_t>());
  CHECK(stored.kind() == ErrorKind::security);
  CHECK(stored.message() == "principal 'alice' may not store values");
  auto attached = error_of(context, alice.attach(alice.fetch("root"), "alices"));
  CHECK(attached.kind() == ErrorKind::security);
  CHECK(attached.message() == "principal 'alice' may not attach names");
  auto detached = error_of(context, alice.detach("bobs"));
  CHECK(detached.kind() == ErrorKind::security);
  CHECK(detached.message() == "principal 'alice' may not detach names");
  CHECK(test::await(context, alice.browse()) == std::vector<std::string>{"Node", "bobs", "child", "five", "root"});
  CHECK(test::await(context, bob.store(std::int64_t{7}).as<std::int64_t>()) == 7);
}

TEST_CASE("a read-only export refuses sets and item sets, on itself and on everything reached from it") {
  Server s([](remoteable::ServerOptions& o) { o.auth.reset(); });  // read-only needs no authentication
  auto shared = std::make_shared<example::Node>(10);
  shared->add_child(std::make_shared<example::Node>(11));
  s.server->server().export_object(shared, "config");
  s.server->server().set_read_only("config");
  auto numbers = std::make_shared<Cells>();
  s.server->server().export_object(numbers, "numbers");
  s.server->server().set_read_only("numbers");
  s.server->server().export_object(std::make_shared<Cells>(), "scratch");
  asio::io_context context;
  auto client = test::connect(context, s.endpoint());
  auto config = client.fetch("config");
  auto e = error_of(context, config.set("value", std::int64_t{5}));
  CHECK(e.kind() == ErrorKind::attribute);
  CHECK_THAT(e.message(), Catch::Contains("read-only"));
  // Derived: a call's result, and the same through a chain of steps (one Handle.chain call).
  auto child = config.call("child", 0);
  CHECK(error_of(context, child.set("value", std::int64_t{5})).kind() == ErrorKind::attribute);
  CHECK(error_of(context, client.fetch("config").call("child", 0).set("value", std::int64_t{5})).kind() == ErrorKind::attribute);
  CHECK(error_of(context, client.fetch("numbers").set_item(std::int64_t{0}, std::int64_t{9})).kind() == ErrorKind::attribute);
  // Reading and methods still work; other exports stay writable.
  CHECK(test::await(context, child.attr("value").as<std::int64_t>()) == 11);
  test::await(context, client.fetch("scratch").set_item(std::int64_t{0}, std::int64_t{9}));
  CHECK(test::await(context, client.fetch("scratch").item(std::int64_t{0}).as<std::int64_t>()) == 9);
  test::await(context, client.fetch("root").set("value", std::int64_t{1}));
  CHECK(shared->value == 10);
  CHECK(shared->children[0]->value == 11);
  CHECK(numbers->cells[0] == 1);
}

TEST_CASE("a read-only object stays read-only when its handle comes back as an argument, in a stored value or attached") {
  Server s([](remoteable::ServerOptions& o) { o.auth.reset(); });
  auto shared = std::make_shared<example::Node>(10);
  shared->add_child(std::make_shared<example::Node>(11));
  s.server->server().export_object(shared, "config");
  s.server->server().set_read_only("config");
  asio::io_context context;
  auto client = test::connect(context, s.endpoint());
  auto child = client.fetch("config").call("child", 0);
  // Stored inside a list: the item is the read-only object again.
  auto list = client.store(remoteable::Value::List{child});
  CHECK(error_of(context, list.item(std::int64_t{0}).set("value", std::int64_t{5})).kind() == ErrorKind::attribute);
  // Attached under a name of its own: fetched from there, still read-only.
  test::await(context, client.attach(child, "mine"));
  CHECK(error_of(context, client.fetch("mine").set("value", std::int64_t{5})).kind() == ErrorKind::attribute);
  // Given to a writable object's method, and reached back from it.
  auto writable = client.fetch("Node")(std::int64_t{0});
  test::await(context, writable.call("add_child", child).get());
  CHECK(error_of(context, writable.call("child", 0).set("value", std::int64_t{5})).kind() == ErrorKind::attribute);
  CHECK(error_of(context, client.fetch("config").set("value", std::int64_t{5})).kind() == ErrorKind::attribute);
  CHECK(shared->value == 10);
  CHECK(shared->children.empty());  // add_child moved it: methods run, only sets are refused
  test::await(context, writable.set("value", std::int64_t{3}));
  CHECK(test::await(context, writable.attr("value").as<std::int64_t>()) == 3);
}

TEST_CASE("without authentication, authenticate answers with a working registry whatever the token") {
  Server s([](remoteable::ServerOptions& o) { o.auth.reset(); });
  asio::io_context context;
  auto client = test::connect(context, s.endpoint(), with_token("anything"));
  CHECK(chain(context, client) == 6);
  auto plain = test::connect(context, s.endpoint());
  CHECK(chain(context, plain) == 6);
}

namespace {

/// A Cap'n Proto client of its own (the schema alone, no remoteable client), on a thread of its
/// own with its own KJ loop: `body` gets the bootstrap registry and the wait scope.
template <class Body>
void raw_client(std::uint16_t port, Body body) {
  std::exception_ptr error;
  std::thread([&] {
    try {
      auto io = kj::setupAsyncIo();
      auto address = io.provider->getNetwork().parseAddress("127.0.0.1", port).wait(io.waitScope);
      auto stream = address->connect().wait(io.waitScope);
      capnp::TwoPartyClient client(*stream);
      body(client.bootstrap().castAs<remoteable::wire::Registry>(), io.waitScope);
    } catch (...) {
      error = std::current_exception();
    }
  }).join();
  if (error) std::rethrow_exception(error);
}

}  // namespace

TEST_CASE("a plain Cap'n Proto client authenticates with the schema alone; one connection is one principal") {
  Server s;
  raw_client(s.server->port(), [](remoteable::wire::Registry::Client bootstrap, kj::WaitScope& ws) {
    auto refused = bootstrap.browseRequest().send().then([](auto) { return std::string(); },
                                                        [](kj::Exception&& e) { return std::string(e.getDescription().cStr()); });
    CHECK_THAT(refused.wait(ws), Catch::Contains("security: authenticate first"));
    auto request = bootstrap.authenticateRequest();
    request.setToken("bob-secret");
    auto registry = request.send().getRegistry();  // pipelined: browse goes out before the answer
    auto names = registry.browseRequest().send().wait(ws).getNames();
    CHECK(names.size() == 4);
    // The bootstrap itself still grants nothing.
    auto still = bootstrap.fetchRequest();
    still.setName("root");
    CHECK_THROWS_WITH(still.send().wait(ws), Catch::Contains("authenticate first"));
    // Another principal on the same connection is refused; the same one is fine.
    auto other = bootstrap.authenticateRequest();
    other.setToken("alice-secret");
    CHECK_THROWS_WITH(other.send().wait(ws), Catch::Contains("authenticated as 'bob' already"));
    auto again = bootstrap.authenticateRequest();
    again.setToken("bob-secret");
    CHECK(again.send().getRegistry().browseRequest().send().wait(ws).getNames().size() == 4);
  });
}
