// Logging (issue 4 item 7, issue 14 item 5): the logger given in the options receives connection
// lines at info and one line per call at trace only; ServerOptions/ClientOptions::log_level and
// the REMOTEABLE_LOG environment variable choose the level; the default loggers are spdlog's
// registered "remoteable.server" and "remoteable.client" and follow spdlog::set_level.

#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "counted.hpp"
#include "ring_log.hpp"
#include "support.hpp"

using namespace std::chrono_literals;

using remoteable::ErrorKind;
using test::RingLog;

namespace {

/// Sets REMOTEABLE_LOG (or unsets it, for nullopt) for its lifetime, then puts back what was there.
/// Set before any server or client of the test exists: nothing else reads it meanwhile.
class ScopedLogEnv {
 public:
  explicit ScopedLogEnv(std::optional<std::string> value) {
    if (const char* old = std::getenv("REMOTEABLE_LOG")) old_ = old;
    if (value) ::setenv("REMOTEABLE_LOG", value->c_str(), 1);
    else ::unsetenv("REMOTEABLE_LOG");
  }
  ~ScopedLogEnv() {
    if (old_) ::setenv("REMOTEABLE_LOG", old_->c_str(), 1);
    else ::unsetenv("REMOTEABLE_LOG");
  }
  ScopedLogEnv(const ScopedLogEnv&) = delete;
  ScopedLogEnv& operator=(const ScopedLogEnv&) = delete;

 private:
  std::optional<std::string> old_;
};

/// A walkthrough server with chosen options, on a free loopback port.
struct LoggedServer {
  explicit LoggedServer(remoteable::ServerOptions options) {
    example::register_node(types);
    server.emplace(remoteable::Endpoint{"127.0.0.1", 0}, types, std::move(options));
    example::export_walkthrough(server->server());
  }
  remoteable::Endpoint endpoint() const { return {"127.0.0.1", server->port()}; }
  remoteable::Registry types;
  std::optional<remoteable::ThreadedServer> server;
};

remoteable::ServerOptions with_logger(const RingLog& log, std::optional<spdlog::level::level_enum> level) {
  remoteable::ServerOptions options;
  options.logger = log.logger;
  options.log_level = level;
  return options;
}

/// The walkthrough's pipelined chain: fetch, call, attr, an operator and an evaluation.
std::int64_t chain(asio::io_context& context, const remoteable::Client& client) {
  return test::await(context, (client.fetch("root").call("child", 0).attr("value") + 4).as<std::int64_t>());
}

/// Runs the chain against `s` from a new client, and tells whether the server logged the chain's
/// call at trace.
bool traces_calls(const LoggedServer& s, const RingLog& log) {
  asio::io_context context;
  auto client = test::connect(context, s.endpoint());
  CHECK(chain(context, client) == 6);
  return log.has("trace", "call 'child' on Node");
}

}  // namespace

TEST_CASE("a server logs each connection opening and closing at info") {
  ScopedLogEnv env(std::nullopt);
  RingLog log("server");
  LoggedServer s(with_logger(log, spdlog::level::info));
  asio::io_context context;
  auto client = test::connect(context, s.endpoint());
  CHECK(chain(context, client) == 6);
  CHECK(test::eventually([&] { return log.count("info", "connection from 127.0.0.1:") == 1; }));
  CHECK(log.count("info", "closed") == 0);
  client.close();
  CHECK(test::eventually(context, [&] { return log.has("info", "closed"); }));
  CHECK(s.server->server().connections() == 0);
}

TEST_CASE("a client logs connecting and closing at info") {
  ScopedLogEnv env(std::nullopt);
  LoggedServer s({});
  RingLog log("client");
  remoteable::ClientOptions options;
  options.logger = log.logger;
  asio::io_context context;
  auto client = test::connect(context, s.endpoint(), options);
  CHECK(log.has("info", "connected to 127.0.0.1:" + std::to_string(s.server->port())));
  client.close();
  CHECK(test::eventually(context, [&] { return log.has("info", "connection closed"); }));
}

TEST_CASE("each call is logged at trace, naming the operation and the type, and not at info") {
  ScopedLogEnv env(std::nullopt);
  SECTION("at trace") {
    RingLog log("server", spdlog::level::trace);
    LoggedServer s(with_logger(log, std::nullopt));
    asio::io_context context;
    auto client = test::connect(context, s.endpoint());
    CHECK(chain(context, client) == 6);
    // Each line is written before its call is answered: the answer above proves they are in.
    CHECK(log.has("trace", "fetch 'root'"));
    CHECK(log.has("trace", "call 'child' on Node"));
    CHECK(log.has("trace", "attr 'value' on Node"));
    CHECK(log.has("trace", "binary '+' on int64"));
    auto value = client.fetch("root").attr("value");
    CHECK(test::await(context, value.as<std::int64_t>()) == 1);  // rides in the attr step
    CHECK(test::await(context, value.str()) == "1");             // a str call of its own
    CHECK(log.has("trace", "str on int64"));
  }
  SECTION("at info") {
    RingLog log("server", spdlog::level::info);
    LoggedServer s(with_logger(log, std::nullopt));
    asio::io_context context;
    auto client = test::connect(context, s.endpoint());
    CHECK(chain(context, client) == 6);
    CHECK(test::await(context, client.fetch("root").attr("value").str()) == "1");
    CHECK(log.count("trace") == 0);
    CHECK(log.count("debug") == 0);
    CHECK(log.has("info", "connection from"));  // the sink does receive what is enabled
  }
}

TEST_CASE("log_level in the options sets the level of the logger") {
  ScopedLogEnv env(std::nullopt);
  SECTION("server") {
    RingLog log("server", spdlog::level::err);
    LoggedServer s(with_logger(log, spdlog::level::trace));
    CHECK(log.logger->level() == spdlog::level::trace);
    CHECK(traces_calls(s, log));
  }
  SECTION("client") {
    LoggedServer s({});
    RingLog log("client", spdlog::level::err);
    remoteable::ClientOptions options;
    options.logger = log.logger;
    options.log_level = spdlog::level::info;
    asio::io_context context;
    auto client = test::connect(context, s.endpoint(), options);
    CHECK(log.logger->level() == spdlog::level::info);
    CHECK(log.has("info", "connected to"));
  }
  SECTION("without log_level or REMOTEABLE_LOG a given logger keeps its level") {
    RingLog log("server", spdlog::level::err);
    LoggedServer s(with_logger(log, std::nullopt));
    CHECK(log.logger->level() == spdlog::level::err);
  }
}

TEST_CASE("REMOTEABLE_LOG sets the level when the options leave it unset") {
  SECTION("server, to trace") {
    ScopedLogEnv env(std::string("trace"));
    RingLog log("server", spdlog::level::warn);
    LoggedServer s(with_logger(log, std::nullopt));
    CHECK(log.logger->level() == spdlog::level::trace);
    CHECK(traces_calls(s, log));
  }
  SECTION("client, to info, in any case") {
    ScopedLogEnv env(std::string("INFO"));
    LoggedServer s({});
    RingLog log("client", spdlog::level::err);
    remoteable::ClientOptions options;
    options.logger = log.logger;
    asio::io_context context;
    auto client = test::connect(context, s.endpoint(), options);
    CHECK(log.logger->level() == spdlog::level::info);
    CHECK(log.has("info", "connected to"));
  }
  SECTION("log_level in the options wins over it") {
    ScopedLogEnv env(std::string("trace"));
    RingLog log("server", spdlog::level::warn);
    LoggedServer s(with_logger(log, spdlog::level::info));
    CHECK(log.logger->level() == spdlog::level::info);
  }
}

// The only test in this file with an unknown REMOTEABLE_LOG: the warning is said once per process.
TEST_CASE("an unknown REMOTEABLE_LOG keeps the level and warns once instead of turning logging off") {
  ScopedLogEnv env(std::string("loud"));
  RingLog first("server", spdlog::level::info);
  RingLog second("server", spdlog::level::info);
  RingLog client_log("client", spdlog::level::info);
  {
    LoggedServer s(with_logger(first, std::nullopt));
    CHECK(first.logger->level() == spdlog::level::info);
    CHECK(first.count("warning", "REMOTEABLE_LOG='loud'") == 1);
  }
  LoggedServer s(with_logger(second, std::nullopt));
  remoteable::ClientOptions options;
  options.logger = client_log.logger;
  asio::io_context context;
  auto client = test::connect(context, s.endpoint(), options);
  CHECK(chain(context, client) == 6);
  CHECK(second.logger->level() == spdlog::level::info);
  CHECK(client_log.logger->level() == spdlog::level::info);
  CHECK(second.count("warning", "REMOTEABLE_LOG") == 0);
  CHECK(client_log.count("warning", "REMOTEABLE_LOG") == 0);
  CHECK(second.has("info", "connection from"));  // still logging
}

namespace {

/// Puts spdlog's registry back as the other tests expect it: no remoteable loggers registered,
/// the global level info. Also on entry: a test before may have made the library's own.
struct CleanRegistry {
  CleanRegistry() { reset(); }
  ~CleanRegistry() { reset(); }
  static void reset() {
    spdlog::drop("remoteable.server");
    spdlog::drop("remoteable.client");
    spdlog::set_level(spdlog::level::info);
  }
};

/// A RingLog registered with spdlog under `name`, as an application would register its own.
RingLog registered(const char* name) {
  RingLog log(name, spdlog::level::info);
  spdlog::register_logger(log.logger);
  return log;
}

}  // namespace

TEST_CASE("the default loggers are spdlog's remoteable.server and remoteable.client, made and registered on first use") {
  ScopedLogEnv env(std::nullopt);
  CleanRegistry clean;
  LoggedServer s({});
  auto server_log = spdlog::get("remoteable.server");
  REQUIRE(server_log != nullptr);
  CHECK(server_log->level() == spdlog::level::info);  // spdlog's level
  {
    asio::io_context context;
    auto client = test::connect(context, s.endpoint());
    CHECK(chain(context, client) == 6);
    REQUIRE(spdlog::get("remoteable.client") != nullptr);
    client.close();
    context.restart();
    context.poll();
  }
  // Registered: spdlog::set_level reaches them, and a second server shares the first's.
  spdlog::set_level(spdlog::level::err);
  CHECK(server_log->level() == spdlog::level::err);
  CHECK(spdlog::get("remoteable.client")->level() == spdlog::level::err);
  LoggedServer second({});
  CHECK(spdlog::get("remoteable.server") == server_log);
}

TEST_CASE("REMOTEABLE_LOG sets the default client logger once, when it is made, not again on each connection") {
  ScopedLogEnv env(std::string("trace"));
  CleanRegistry clean;
  LoggedServer s({});
  asio::io_context context;
  auto first = test::connect(context, s.endpoint());
  auto shared = spdlog::get("remoteable.client");
  REQUIRE(shared != nullptr);
  CHECK(shared->level() == spdlog::level::trace);
  // The application changes the level afterwards: a later connection must not undo it.
  spdlog::set_level(spdlog::level::err);
  auto second = test::connect(context, s.endpoint());
  CHECK(chain(context, second) == 6);
  CHECK(spdlog::get("remoteable.client") == shared);
  CHECK(shared->level() == spdlog::level::err);
}

TEST_CASE("an application's logger registered as remoteable.server is used, and follows spdlog::set_level") {
  ScopedLogEnv env(std::nullopt);
  CleanRegistry clean;
  auto log = registered("remoteable.server");
  LoggedServer s({});
  CHECK(log.has("info", "listening on 127.0.0.1:" + std::to_string(s.server->port())));
  CHECK_FALSE(traces_calls(s, log));
  spdlog::set_level(spdlog::level::trace);
  CHECK(traces_calls(s, log));
  // The trace line names the connection.
  CHECK(log.has("trace", "call 'child' on Node (handle "));
  CHECK(log.has("trace", ", 127.0.0.1:"));
}

TEST_CASE("log_level in the options gives a server a level of its own, which spdlog::set_level does not change") {
  ScopedLogEnv env(std::nullopt);
  CleanRegistry clean;
  auto log = registered("remoteable.server");
  remoteable::ServerOptions options;
  options.log_level = spdlog::level::trace;
  LoggedServer s(options);
  CHECK(log.logger->level() == spdlog::level::info);  // the registered one is untouched
  spdlog::set_level(spdlog::level::off);
  CHECK(traces_calls(s, log));  // the private copy writes to the same sinks, at trace
}

TEST_CASE("what a method threw is logged at debug with its type and member; a failed call at trace with the connection and kind") {
  ScopedLogEnv env(std::nullopt);
  RingLog log("server", spdlog::level::debug);
  LoggedServer s(with_logger(log, std::nullopt));
  asio::io_context context;
  auto client = test::connect(context, s.endpoint());
  CHECK(test::error_of(context, client.fetch("root").call("child", 99).get()) == ErrorKind::index);
  CHECK(test::eventually([&] { return log.has("debug", "'Node.child' threw: index: child index 99 out of range"); }));
  // The binding's own refusals are not the method's.
  CHECK(test::error_of(context, client.fetch("root").call("child", "x").get()) == ErrorKind::type);
  CHECK(test::error_of(context, client.fetch("root").call("no_such").get()) == ErrorKind::attribute);
  CHECK(log.count("debug", "threw") == 1);
  CHECK(log.count("trace") == 0);

  log.logger->set_level(spdlog::level::trace);
  CHECK(test::error_of(context, client.fetch("root").call("child", 98).get()) == ErrorKind::index);
  CHECK(test::eventually([&] { return log.has("trace", "call failed (127.0.0.1:"); }));
  CHECK(log.has("trace", "): index: child index 98 out of range"));
}

TEST_CASE("a server listens on a host name, and a failure to listen names the address and why") {
  ScopedLogEnv env(std::nullopt);
  RingLog log("server", spdlog::level::info);
  remoteable::Registry types;
  example::register_node(types);
  remoteable::ServerOptions options;
  options.logger = log.logger;
  remoteable::ThreadedServer by_name(remoteable::Endpoint{"localhost", 0}, types, options);
  example::export_walkthrough(by_name.server());
  CHECK(log.has("info", "listening on "));
  asio::io_context context;
  auto client = test::connect(context, remoteable::Endpoint{"localhost", by_name.port()});
  CHECK(chain(context, client) == 6);
  client.close();
  context.restart();
  context.poll();

  LoggedServer taken({});
  remoteable::Endpoint same{"127.0.0.1", taken.server->port()};
  try {
    remoteable::ThreadedServer second(same, types, options);
    FAIL("a second server listened on a taken port");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::errc::address_in_use);
    CHECK_THAT(std::string(e.what()), Catch::Contains("cannot listen on " + same.to_string()) &&
                                          Catch::Contains("in use"));
  }
}
