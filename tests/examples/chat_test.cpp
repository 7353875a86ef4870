// The chat examples as real processes (issue 10 items 6 and 7): a chat_server and chat_clients
// talking through pipes. A message reaches every member, a stream of them arrives in order and
// once, a member killed with SIGKILL mid-stream is dropped while the others carry on, and a client
// whose input ends exits 0 after its last message was delivered. Every wait has a deadline.

#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "process.hpp"
#include "support.hpp"

namespace {

using namespace std::chrono_literals;
using test::Process;

// Generous: the machine may be loaded, and these are Debug (perhaps sanitized) builds. The line
// checks REQUIRE: the first wrong or missing line ends the case, so a failing run waits once.
constexpr auto line_limit = 30s;

/// Its next line, or "(no line)" once `line_limit` has passed or its output has ended.
std::string next(Process& p, std::chrono::milliseconds limit = line_limit) {
  return p.read_line(limit).value_or("(no line)");
}

/// Starts a chat_client as `name`, says "NAME here" and waits until that comes back to it,
/// which means it has joined.
std::unique_ptr<Process> join(const std::string& address, const std::string& name) {
  auto p = std::make_unique<Process>(std::vector<std::string>{CHAT_CLIENT_PATH, address, name}, Process::Stdin::pipe);
  REQUIRE(p->write(name + " here\n"));
  REQUIRE(next(*p) == name + ": " + name + " here");
  return p;
}

/// Ends `p`'s input and checks that it exits 0 (its output ends first), within the limit.
void close_and_expect_exit_0(Process& p) {
  p.close_stdin();
  REQUIRE(next(p) == "(no line)");
  auto status = p.wait_for(line_limit);
  REQUIRE(status);
  REQUIRE(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
}

std::string numbered(int i) { return "message " + std::to_string(i); }

/// Reads `count` lines from `p` and checks they are bob's numbered messages `from`.. in order.
void expect_bobs(Process& p, int from, int count) {
  for (int i = from; i < from + count; ++i) {
    auto line = next(p);
    if (line != "bob: " + numbered(i)) FAIL("expected bob's " << numbered(i) << ", got '" << line << "'");
  }
}

}  // namespace

TEST_CASE("chat: messages reach every member in order; a killed member is dropped, the others carry on") {
  Process server({CHAT_SERVER_PATH, "127.0.0.1:0"});
  auto serving = next(server);
  const std::string prefix = "serving room on 127.0.0.1:";
  REQUIRE(serving.rfind(prefix, 0) == 0);
  REQUIRE(serving.size() > prefix.size());
  const std::string address = serving.substr(std::string("serving room on ").size());
  REQUIRE(address != "127.0.0.1:0");  // the port actually bound

  // Each joins once the one before has (it hears its own greeting), so everyone's lines are known.
  auto alice = join(address, "alice");
  auto bob = join(address, "bob");
  REQUIRE(next(*alice) == "bob: bob here");
  auto carol = join(address, "carol");
  REQUIRE(next(*alice) == "carol: carol here");
  REQUIRE(next(*bob) == "carol: carol here");

  // One message from alice reaches all three, hers included.
  REQUIRE(alice->write("hello, room\n"));
  for (auto* p : {alice.get(), bob.get(), carol.get()}) REQUIRE(next(*p) == "alice: hello, room");

  // The room refuses a message over its limit (a value error, on alice's stderr) and goes on.
  REQUIRE(alice->write(std::string(1001, 'x') + "\nafter the long one\n"));
  for (auto* p : {alice.get(), bob.get(), carol.get()}) REQUIRE(next(*p) == "alice: after the long one");

  // bob streams 1,000 messages. Once alice has 250 of the first 500, carol is killed: the rest
  // (at least the second 500, written only after the kill) goes on without her.
  constexpr int n = 1000;
  std::string first_half, second_half;
  for (int i = 0; i < n / 2; ++i) first_half += numbered(i) + "\n";
  for (int i = n / 2; i < n; ++i) second_half += numbered(i) + "\n";
  REQUIRE(bob->write(first_half));
  expect_bobs(*alice, 0, 250);
  carol->kill(SIGKILL);
  auto carol_status = carol->wait_for(line_limit);
  REQUIRE(carol_status);
  CHECK(WIFSIGNALED(*carol_status));
  REQUIRE(bob->write(second_half));
  expect_bobs(*alice, 250, n - 250);
  expect_bobs(*bob, 0, n);
  // Nothing twice, nothing more: the next line each gets is the next message.

  // The server is still up and the room still works.
  REQUIRE(alice->write("still here\n"));
  REQUIRE(next(*alice) == "alice: still here");
  REQUIRE(next(*bob) == "alice: still here");

  // A newcomer may take the name of the member who was dropped.
  auto carol2 = join(address, "carol");
  REQUIRE(next(*alice) == "carol: carol here");
  REQUIRE(next(*bob) == "carol: carol here");

  // A client whose input ends right after its messages exits 0, and only once they were
  // delivered: by then alice already has them (nothing more to wait for).
  REQUIRE(bob->write("bye 1\nbye 2\n"));
  bob->close_stdin();
  REQUIRE(next(*bob) == "bob: bye 1");
  REQUIRE(next(*bob) == "bob: bye 2");
  close_and_expect_exit_0(*bob);
  REQUIRE(next(*alice, 0ms) == "bob: bye 1");
  REQUIRE(next(*alice, 0ms) == "bob: bye 2");
  REQUIRE(next(*carol2) == "bob: bye 1");
  REQUIRE(next(*carol2) == "bob: bye 2");

  // bob has left: alice's next message reaches alice and carol only, and both can leave.
  REQUIRE(alice->write("bob left\n"));
  REQUIRE(next(*alice) == "alice: bob left");
  REQUIRE(next(*carol2) == "alice: bob left");
  close_and_expect_exit_0(*carol2);
  close_and_expect_exit_0(*alice);

  server.kill(SIGTERM);
  REQUIRE(next(server) == "(no line)");
  auto server_status = server.wait_for(line_limit);
  REQUIRE(server_status);
  REQUIRE(WIFEXITED(*server_status));
  CHECK(WEXITSTATUS(*server_status) == 0);
}

TEST_CASE("chat: a client whose input is empty joins, leaves and exits 0; a name in use, too long or empty is refused") {
  Process server({CHAT_SERVER_PATH, "127.0.0.1:0"});
  auto serving = next(server);
  REQUIRE(serving.rfind("serving room on 127.0.0.1:", 0) == 0);
  const std::string address = serving.substr(std::string("serving room on ").size());

  auto alice = join(address, "alice");
  {
    Process quiet({CHAT_CLIENT_PATH, address, "quiet"}, Process::Stdin::pipe);
    close_and_expect_exit_0(quiet);
  }
  // Refused at joining (the error goes to its stderr): it prints nothing and exits 1.
  for (std::string name : {std::string("alice"), std::string(33, 'n'), std::string()}) {
    Process refused({CHAT_CLIENT_PATH, address, name}, Process::Stdin::pipe);
    REQUIRE(refused.write("I am " + name + " too\n"));
    REQUIRE(next(refused) == "(no line)");
    auto status = refused.wait_for(line_limit);
    REQUIRE(status);
    REQUIRE(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 1);
  }
  // None of them spoke in the room.
  REQUIRE(alice->write("anyone?\n"));
  REQUIRE(next(*alice) == "alice: anyone?");

  server.kill(SIGINT);
  auto server_status = server.wait_for(line_limit);
  REQUIRE(server_status);
  REQUIRE(WIFEXITED(*server_status));
  CHECK(WEXITSTATUS(*server_status) == 0);
}

namespace {
/// A member for in-process clients of the chat server: it only counts what it hears.
struct Counter {
  std::atomic<int> heard{0};
  void hear(std::string, std::string) { ++heard; }
};
}  // namespace

TEST_CASE("chat: the room holds 64 members at most; the 65th is refused as overloaded") {
  Process server({CHAT_SERVER_PATH, "127.0.0.1:0"});
  auto serving = next(server);
  REQUIRE(serving.rfind("serving room on 127.0.0.1:", 0) == 0);
  const auto endpoint = remoteable::Endpoint::parse(serving.substr(std::string("serving room on ").size()));

  auto types = std::make_shared<remoteable::Registry>();
  types->class_<Counter>("Counter").method("hear", &Counter::hear);
  remoteable::ClientOptions options;
  options.registry = types;
  asio::io_context context;
  std::vector<remoteable::Client> clients;
  std::vector<remoteable::Handle> memberships;
  auto counter = std::make_shared<Counter>();
  auto join = [&](int i) {
    clients.push_back(test::connect(context, endpoint, options));
    memberships.push_back(clients.back().fetch("room").call("join", "m" + std::to_string(i), clients.back().share(counter)));
  };
  // The first 64 join at once (in any order: each has a connection of its own), the 65th after.
  for (int i = 0; i < 64; ++i) join(i);
  for (auto& m : memberships) (void)test::await(context, m.describe(), 30s);
  join(64);
  CHECK(test::message_of(context, memberships[64].describe()).find("the room is full") != std::string::npos);
  CHECK(test::error_of(context, memberships[64].describe()) == remoteable::ErrorKind::overloaded);
  // Every one of the 64 hears a message.
  test::await(context, memberships[0].call("say", "hello").get(), 30s);
  CHECK(counter->heard == 64);
  for (auto& c : clients) c.close();
  context.restart();
  context.poll();
}
