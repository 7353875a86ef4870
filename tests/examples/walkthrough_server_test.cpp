// The walkthrough_server example as a real process: it says where it serves, serves there, and
// a SIGINT or SIGTERM stops it cleanly.

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <string>

#include "process.hpp"
#include "scrape.hpp"
#include "support.hpp"

namespace {

/// The port from the example's first line, "serving NAMES on HOST:PORT".
std::uint16_t port_of(const std::string& serving) {
  auto colon = serving.rfind(':');
  REQUIRE(colon != std::string::npos);
  return static_cast<std::uint16_t>(std::stoi(serving.substr(colon + 1)));
}

/// Runs the example on a free port, checks that it answers, signals it and returns its last
/// line and wait status, once its stdout has closed (bounded: read_line gives up).
void serve_then_stop(int signal) {
  test::Process server({WALKTHROUGH_SERVER_PATH, "127.0.0.1:0"});
  auto serving = server.read_line();
  REQUIRE(serving);
  REQUIRE(serving->rfind("serving Node child five root on 127.0.0.1:", 0) == 0);

  asio::io_context context;
  {
    auto client = test::connect(context, {"127.0.0.1", port_of(*serving)});
    CHECK(test::await(context, (client.fetch("root").call("child", 0).attr("value") + 4).as<std::int64_t>()) == 6);
    client.close();
    context.restart();
    context.poll();
  }

  server.kill(signal);
  CHECK(server.read_line().value_or("(no line)") == "stopped");
  CHECK_FALSE(server.read_line());  // end of output: the process is gone or going
  const int status = server.wait();
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

}  // namespace

TEST_CASE("the walkthrough server prints where it serves and stops cleanly on SIGINT") {
  serve_then_stop(SIGINT);
}

TEST_CASE("the walkthrough server stops cleanly on SIGTERM") {
  serve_then_stop(SIGTERM);
}

TEST_CASE("the walkthrough server serves metrics with --metrics HOST:PORT") {
  test::Process server({WALKTHROUGH_SERVER_PATH, "127.0.0.1:0", "--metrics", "127.0.0.1:0"});
  auto serving = server.read_line();
  REQUIRE(serving);
  auto metrics = server.read_line();
  REQUIRE(metrics);
  REQUIRE(metrics->rfind("metrics on http://127.0.0.1:", 0) == 0);
  REQUIRE(metrics->size() > 8);
  REQUIRE(metrics->substr(metrics->size() - 8) == "/metrics");
  auto metrics_port = port_of(metrics->substr(0, metrics->size() - 8));

  asio::io_context context;
  auto client = test::connect(context, {"127.0.0.1", port_of(*serving)});
  CHECK(test::await(context, (client.fetch("root").call("child", 0).attr("value") + 4).as<std::int64_t>()) == 6);
  auto s = test::scrape(metrics_port);
  CHECK(s.count("remoteable_calls_total", {{"op", "call"}, {"member", "Node.child"}}) == 1);
  CHECK(s.count("remoteable_calls_total", {{"op", "binary"}, {"member", "int64"}}) == 1);
  CHECK(s.count("remoteable_connections") == 1);
  client.close();
  context.restart();
  context.poll();
  server.kill(SIGTERM);
  CHECK(server.read_line().value_or("(no line)") == "stopped");
}

TEST_CASE("the walkthrough server has no metrics unless asked, and refuses a bad --metrics") {
  {
    test::Process server({WALKTHROUGH_SERVER_PATH, "127.0.0.1:0"});
    REQUIRE(server.read_line());
    server.kill(SIGTERM);
    CHECK(server.read_line().value_or("(no line)") == "stopped");  // no "metrics on" line before it
  }
  test::Process bad({WALKTHROUGH_SERVER_PATH, "127.0.0.1:0", "--metrics"});
  CHECK_FALSE(bad.read_line());  // the error goes to stderr; nothing is served
  const int status = bad.wait();
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 1);
}

TEST_CASE("the walkthrough server with --token-file serves only clients with a token from the file") {
  char pattern[] = "/tmp/remoteable-tokens-XXXXXX";
  int fd = ::mkstemp(pattern);
  REQUIRE(fd >= 0);
  std::string lines = "# principal token\nalice alice-secret\n\nlone-secret\n";
  REQUIRE(::write(fd, lines.data(), lines.size()) == static_cast<ssize_t>(lines.size()));
  ::close(fd);
  test::Process server({WALKTHROUGH_SERVER_PATH, "127.0.0.1:0", "--token-file", pattern});
  auto serving = server.read_line();
  REQUIRE(serving);
  remoteable::Endpoint endpoint{"127.0.0.1", port_of(*serving)};
  asio::io_context context;
  for (std::string token : {"alice-secret", "lone-secret"}) {
    remoteable::ClientOptions options;
    options.token = token;
    auto client = test::connect(context, endpoint, options);
    CHECK(test::await(context, client.fetch("five").as<std::int64_t>()) == 5);
    client.close();
  }
  auto anonymous = test::connect(context, endpoint);
  CHECK(test::error_of(context, anonymous.fetch("five").as<std::int64_t>()) == remoteable::ErrorKind::security);
  remoteable::ClientOptions wrong;
  wrong.token = "alice";  // a principal's name is not its token
  CHECK_THROWS_WITH(test::connect(context, endpoint, wrong), Catch::Contains("the token was refused"));
  anonymous.close();
  context.restart();
  context.poll();
  server.kill(SIGTERM);
  CHECK(server.read_line().value_or("(no line)") == "stopped");
  ::unlink(pattern);
}
