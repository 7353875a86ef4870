// Runs the `remoteable` executable against a walkthrough server on loopback.

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstddef>
#include <fstream>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <remoteable/version.hpp>

#include "cli_support.hpp"
#include "subprocess.hpp"

using namespace cli_test;

namespace {

// The CLI with `args`, `input` on stdin; bounded by the CLI's own --timeout and by a kill.
Completed cli(std::vector<std::string> args, std::string_view input = {}) {
  std::vector<std::string> argv{REMOTEABLE_CLI_PATH, "--timeout", "20"};
  argv.insert(argv.end(), args.begin(), args.end());
  Completed c = run_process(argv, input, 40s);
  INFO("stdout: " << c.out);
  INFO("stderr: " << c.err);
  REQUIRE_FALSE(c.timed_out);
  return c;
}

bool starts_with(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

/// Integer cells assignable by index: the walkthrough exports nothing with a settable item.
struct Cells {
  std::vector<std::int64_t> cells{10, 20, 30};
  std::int64_t& operator[](std::size_t i) { return cells[i]; }
  std::size_t size() const { return cells.size(); }
};

/// The walkthrough's exports plus "cells". Registration comes before the server starts.
struct WalkthroughServerWithCells {
  WalkthroughServerWithCells() {
    example::register_node(types);
    types.class_<Cells>("Cells");
    server.emplace(remoteable::Endpoint{"127.0.0.1", 0}, types);
    example::export_walkthrough(server->server());
    server->server().export_object(std::make_shared<Cells>(), "cells");
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(server->port()); }

  remoteable::Registry types;  // must outlive the server
  std::optional<remoteable::ThreadedServer> server;
};

}  // namespace

TEST_CASE("eval prints the value of a pipelined chain", "[cli]") {
  WalkthroughServer server;
  Completed c = cli({server.address(), "eval", "root.child(0).value + 4"});
  CHECK(c.out == "6\n");
  CHECK(c.err.empty());
  CHECK(c.exit_code == 0);
}

TEST_CASE("eval handles every expression form against a live server", "[cli]") {
  WalkthroughServer server;
  struct Case {
    std::string expr, out;
  };
  for (const Case& k : std::vector<Case>{
           {"five", "5"},
           {"five * 2 + 1", "11"},
           {"1 + five", "6"},
           {"(five - 1) * 2", "8"},
           {"five % 3 + five / 5", "3"},
           {"five << 2 | 1", "21"},
           {"five & 4 ^ 1", "5"},
           {"-five", "-5"},
           {"~five", "-6"},
           {"five == 5", "true"},
           {"five != 5", "false"},
           {"five < 6", "true"},
           {"five <= 5", "true"},
           {"five > 5", "false"},
           {"five >= 6", "false"},
           {"five >> 1", "2"},
           {"five >> 1 + 1", "1"},
           {"1 << five >> 3", "4"},
           {"not five", "false"},
           {"!five", "false"},
           {"root.value", "1"},
           {"root.child_count()", "1"},
           {"Node(7).value", "7"},
           {"Node(root.child(0).value).value", "2"},
           {"store(41) + 1", "42"},
           {"str(five)", "5"},
           {"bool(five)", "true"},
           {"bool(0)", "false"},
           {"1 + 2", "3"},
           {"false", "false"},
           {"true", "true"},
           {"none", "none"},
           {"2.5", "2.5"},
           {"-0.25", "-0.25"},
           {"five + 0.5", "5.5"},
           {"0.5 * five", "2.5"},
           {"five / 2.0", "2.5"},
           {"five - 1.0 == 4", "true"},
           {"root.value + 1.5", "2.5"},
           {"'plain text'", "plain text"},
           {"[1, 'a', none, true, 2.5]", "[1, 'a', none, true, 2.5]"},
           {"{'k': -1}", "{'k': -1}"},
       }) {
    INFO(k.expr);
    Completed c = cli({server.address(), "eval", k.expr});
    CHECK(c.out == k.out + "\n");
    CHECK(c.err.empty());
    CHECK(c.exit_code == 0);
  }
}

TEST_CASE("an assignment writes once and prints nothing", "[cli]") {
  WalkthroughServer server;
  Completed set = cli({server.address(), "eval", "root.child(0).value = five + 10"});
  CHECK(set.out.empty());
  CHECK(set.err.empty());
  CHECK(set.exit_code == 0);
  CHECK(cli({server.address(), "eval", "root.child(0).value"}).out == "15\n");
}

TEST_CASE("an item assignment writes the item and prints nothing", "[cli]") {
  WalkthroughServerWithCells server;
  Completed set = cli({server.address(), "eval", "cells[1] = five * 10 + root.value"});
  CHECK(set.out.empty());
  CHECK(set.err.empty());
  CHECK(set.exit_code == 0);
  Completed read = cli({server.address()}, "cells[1]\ncells[0] + cells[2]\nlen(cells)\n");
  CHECK(read.out == "51\n40\n3\n");
  CHECK(read.exit_code == 0);
}

TEST_CASE("browse lists the exports, one a line or as JSON", "[cli]") {
  WalkthroughServer server;
  CHECK(cli({server.address(), "browse"}).out == "Node\nchild\nfive\nroot\n");
  CHECK(cli({"--json", server.address(), "browse"}).out == "[\"Node\",\"child\",\"five\",\"root\"]\n");
}

TEST_CASE("describe shows the type and its members", "[cli]") {
  WalkthroughServer server;
  Completed c = cli({server.address(), "describe", "root"});
  CHECK(c.exit_code == 0);
  CHECK(starts_with(c.out, "Node\n"));
  // One aligned row per member: name, kind, the value's kind or the signature.
  CHECK(c.out.find("\n  child         method  (int64) -> Node\n") != std::string::npos);
  CHECK(c.out.find("\n  value         field   int64\n") != std::string::npos);
  Completed j = cli({"--json", server.address(), "describe", "root.child(0)"});
  CHECK(starts_with(j.out, "{\"type\":\"Node\",\"members\":["));
}

TEST_CASE("--json prints values as JSON", "[cli]") {
  WalkthroughServer server;
  CHECK(cli({"--json", server.address(), "eval", "five"}).out == "5\n");
  CHECK(cli({"--json", server.address(), "eval", "str(five)"}).out == "\"5\"\n");
  CHECK(cli({"--json", server.address(), "eval", "[1, 'a', none]"}).out == "[1,\"a\",null]\n");
}

TEST_CASE("a remote error prints its kind and exits 1", "[cli]") {
  WalkthroughServer server;
  Completed c = cli({server.address(), "eval", "root.nope + 1"});
  CHECK(c.out.empty());
  CHECK(starts_with(c.err, "error (attribute): "));
  CHECK(c.exit_code == 1);

  Completed name = cli({server.address(), "eval", "nothing_here.value"});
  CHECK(starts_with(name.err, "error (name): "));
  CHECK(name.exit_code == 1);

  Completed div = cli({server.address(), "eval", "five / 0"});
  CHECK(starts_with(div.err, "error (value): "));
  CHECK(div.exit_code == 1);
}

TEST_CASE("an argument of the wrong kind is a type error naming the method, exit 1", "[cli]") {
  WalkthroughServer server;
  Completed c = cli({server.address(), "eval", "root.child('x')"});
  CHECK(c.out.empty());
  CHECK(starts_with(c.err, "error (type): "));
  CHECK(c.err.find("'Node.child'") != std::string::npos);
  CHECK(c.exit_code == 1);
  // The server keeps serving.
  CHECK(cli({server.address(), "eval", "root.child(0).value"}).out == "2\n");
}

TEST_CASE("a syntax error shows a caret under the column and exits 2 without connecting",
          "[cli]") {
  // Nothing listens here: the error must come before any connection attempt.
  std::string address = "127.0.0.1:" + std::to_string(unused_port());
  Completed c = cli({address, "eval", "root.child(0"});
  CHECK(c.out.empty());
  CHECK(c.err ==
        "error (syntax): expected ')' to close the call, found end of input (column 13)\n"
        "root.child(0\n"
        "            ^\n");
  CHECK(c.exit_code == 2);

  Completed d = cli({address, "describe", "root $"});
  CHECK(d.err == "error (syntax): unexpected character '$' (column 6)\nroot $\n     ^\n");
  CHECK(d.exit_code == 2);
}

TEST_CASE("usage errors exit 2 and --help exits 0", "[cli]") {
  Completed none = cli({});
  CHECK(starts_with(none.err, "error (usage): missing HOST:PORT"));
  CHECK(none.exit_code == 2);
  Completed bad = cli({"127.0.0.1:1", "frobnicate"});
  CHECK(bad.exit_code == 2);
  Completed endpoint = cli({"not an endpoint", "browse"});
  CHECK(starts_with(endpoint.err, "error (usage): bad HOST:PORT"));
  CHECK(endpoint.exit_code == 2);
  Completed help = cli({"--help"});
  CHECK(starts_with(help.out, "usage: remoteable"));
  CHECK(help.exit_code == 0);
  Completed version = cli({"--version"});
  CHECK(version.out == std::string("remoteable ") + remoteable::version + " (protocol " +
                           std::to_string(remoteable::protocol_version) + ")\n");
  CHECK(version.exit_code == 0);
}

TEST_CASE("a refused connection is a disconnected error, exit 1", "[cli]") {
  Completed c = cli({"127.0.0.1:" + std::to_string(unused_port()), "eval", "five"});
  CHECK(starts_with(c.err, "error (disconnected): "));
  CHECK(c.exit_code == 1);
}

TEST_CASE("a server that never answers runs into --timeout, exit 1", "[cli]") {
  SilentListener silent;
  Completed c = run_process({REMOTEABLE_CLI_PATH, "--timeout", "0.5", silent.address(), "eval", "five"},
                            "", 40s);
  REQUIRE_FALSE(c.timed_out);
  CHECK(starts_with(c.err, "error (timeout): no reply from " + silent.address() + " within 0.5 s"));
  CHECK(c.exit_code == 1);
}

TEST_CASE("without a command, statements are read from stdin one per line", "[cli]") {
  WalkthroughServer server;
  Completed c = cli({server.address()},
                    "five + 1\n"
                    "\n"
                    "# a comment\n"
                    "root.value = 10\n"
                    "root.value\n"
                    "str(root.value)\r\n"
                    "root.child(0).value + 4\n");
  CHECK(c.out == "6\n10\n10\n6\n");
  CHECK(c.err.empty());  // no prompt when stdin is not a terminal
  CHECK(c.exit_code == 0);
}

TEST_CASE("the prompt goes on after an error and exits with the worst status", "[cli]") {
  WalkthroughServer server;
  Completed remote = cli({server.address()}, "root.nope\nfive\n");
  CHECK(remote.out == "5\n");
  CHECK(starts_with(remote.err, "error (attribute): "));
  CHECK(remote.exit_code == 1);

  Completed syntax = cli({server.address()}, "five +\nfive\nroot.nope\n");
  CHECK(syntax.out == "5\n");
  CHECK(starts_with(syntax.err, "error (syntax): expected an expression (column 7)\n"
                                "five +\n"
                                "      ^\n"));
  CHECK(syntax.exit_code == 2);
}

TEST_CASE("attach exports an object under a name until detach", "[cli]") {
  WalkthroughServer server;
  Completed c = cli({server.address()},
                    "attach(Node(9), 'nine')\n"
                    "nine.value\n"
                    "browse()\n"
                    "detach('nine')\n"
                    "nine.value\n");
  CHECK(c.out == "9\nNode\nchild\nfive\nnine\nroot\n");
  CHECK(starts_with(c.err, "error (name): "));
  CHECK(c.exit_code == 1);
}

TEST_CASE("item access reads through the server, and item assignment reaches it", "[cli]") {
  WalkthroughServer server;
  Completed c = cli({server.address()},
                    "attach(store([1, 2, 3]), 'items')\n"
                    "items[1]\n"
                    "items[0] + items[2]\n"
                    "len(items)\n"
                    "items\n");
  CHECK(c.out == "2\n4\n3\n[1, 2, 3]\n");
  CHECK(c.err.empty());
  CHECK(c.exit_code == 0);

  // A stored list is a value on the server: the write arrives and is refused there.
  Completed write = cli({server.address(), "eval", "store([1, 2, 3])[1] = 20"});
  CHECK(starts_with(write.err, "error (type): "));
  CHECK(write.exit_code == 1);
}

TEST_CASE("--token-file and REMOTEABLE_TOKEN authenticate; a refused or missing token is a security error", "[cli]") {
  remoteable::Registry types;
  example::register_node(types);
  remoteable::ServerOptions options;
  remoteable::ServerAuth auth;
  auth.tokens = {{"cli-secret", "cli"}};
  options.auth = auth;
  remoteable::ThreadedServer server({"127.0.0.1", 0}, types, options);
  example::export_walkthrough(server.server());
  auto address = "127.0.0.1:" + std::to_string(server.port());
  char pattern[] = "/tmp/remoteable-token-XXXXXX";
  int fd = ::mkstemp(pattern);
  REQUIRE(fd >= 0);
  ::close(fd);
  auto write_token = [&](const std::string& text) { std::ofstream(pattern, std::ios::trunc) << text; };

  write_token("cli-secret\n");  // the trailing newline is not part of the token
  Completed good = cli({"--token-file", pattern, address, "eval", "five + 1"});
  CHECK(good.out == "6\n");
  CHECK(good.exit_code == 0);
  Completed by_env = run_process({"/usr/bin/env", "REMOTEABLE_TOKEN=cli-secret", REMOTEABLE_CLI_PATH, address, "eval", "five"}, {}, 40s);
  CHECK(by_env.out == "5\n");
  CHECK(by_env.exit_code == 0);

  write_token("wrong");
  Completed wrong = cli({"--token-file", pattern, address, "browse"});
  CHECK_THAT(wrong.err, Catch::Contains("error (security)") && Catch::Contains("the token was refused"));
  CHECK(wrong.exit_code == 1);
  Completed missing = cli({address, "browse"});
  CHECK_THAT(missing.err, Catch::Contains("error (security): authenticate first"));
  CHECK(missing.exit_code == 1);
  Completed unreadable = cli({"--token-file", "/nonexistent/token", address, "browse"});
  CHECK_THAT(unreadable.err, Catch::Contains("cannot read the token file '/nonexistent/token'"));
  CHECK(unreadable.exit_code == 2);
  ::unlink(pattern);
}

TEST_CASE("a usage error is one line that points to --help", "[cli]") {
  Completed c = cli({"127.0.0.1:1", "brwse"});
  CHECK(c.err == "error (usage): unknown command 'brwse'; did you mean 'browse'? (see remoteable --help)\n");
  CHECK(c.exit_code == 2);
}

TEST_CASE("under --json, errors are one JSON line on stderr", "[cli]") {
  WalkthroughServer server;
  Completed syntax = cli({"--json", server.address(), "eval", "root.child(0"});
  CHECK(syntax.err ==
        "{\"error\":{\"kind\":\"syntax\",\"message\":\"expected ')' to close the call, found end of "
        "input\",\"column\":13}}\n");
  CHECK(syntax.exit_code == 2);
  Completed name = cli({"--json", server.address(), "eval", "rooot.value"});
  CHECK(name.err ==
        "{\"error\":{\"kind\":\"name\",\"message\":\"no export named 'rooot'\",\"did_you_mean\":[\"root\"]}}\n");
  CHECK(name.exit_code == 1);
  Completed usage = cli({"--json", "127.0.0.1:1", "brwse"});
  CHECK(usage.err == "{\"error\":{\"kind\":\"usage\",\"message\":\"unknown command 'brwse'; did you mean "
                     "'browse'?\"}}\n");
  Completed refused = cli({"--json", "127.0.0.1:" + std::to_string(unused_port()), "eval", "five"});
  CHECK(starts_with(refused.err, "{\"error\":{\"kind\":\"disconnected\",\"message\":"));
  CHECK(refused.out.empty());
}

TEST_CASE("a handle prints with its type, in plain text and JSON", "[cli]") {
  WalkthroughServer server;
  CHECK(cli({server.address(), "eval", "root"}).out == "<Node handle>\n");
  CHECK(cli({"--json", server.address(), "eval", "root"}).out == "{\"$handle\":true,\"type\":\"Node\"}\n");
}

TEST_CASE("let, and, or from a pipe", "[cli]") {
  WalkthroughServer server;
  Completed c = cli({server.address()},
                    "let x = store(3)\n"
                    "x + 1\n"
                    "let n = root.child(0)\n"
                    "n.value\n"
                    "x > 2 and n.value\n"
                    "0 or 'zero'\n"
                    "help\n");
  CHECK(starts_with(c.out, "4\n2\n2\nzero\nType an expression"));
  CHECK(c.err.empty());
  CHECK(c.exit_code == 0);
}

TEST_CASE("a member typo is suggested from describe", "[cli]") {
  WalkthroughServer server;
  Completed c = cli({server.address(), "eval", "root.child(0).valeu + 1"});
  // Not after a call: the object would be made again.
  CHECK(c.err.find("did you mean") == std::string::npos);
  Completed d = cli({server.address(), "eval", "root.valeu + 1"});
  CHECK(d.err.find("has no attribute 'valeu'; did you mean 'value'?") != std::string::npos);
  Completed described = cli({server.address(), "describe", "rooot"});
  CHECK(described.err == "error (name): no export named 'rooot'; did you mean 'root'?\n");
}
