// Logging (issue 4 item 7): the logger given in the options receives connection lines at info
// and one line per call at trace only; ServerOptions/ClientOptions::log_level and the
// REMOTEABLE_LOG environment variable choose the level.

#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "counted.hpp"
#include "ring_log.hpp"
#include "support.hpp"

using namespace std::chrono_literals;

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
