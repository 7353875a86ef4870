#include "cli/arguments.hpp"

#include <catch2/catch.hpp>

#include <initializer_list>
#include <vector>

using namespace remoteable::cli;
using namespace std::chrono_literals;

namespace {

Arguments parse(std::initializer_list<std::string_view> words) {
  std::vector<std::string_view> v(words);
  return parse_arguments(v);
}

std::string usage_error(std::initializer_list<std::string_view> words) {
  try {
    parse(words);
  } catch (const UsageError& e) {
    return e.what();
  }
  FAIL("no usage error");
  return {};
}

}  // namespace

TEST_CASE("an endpoint alone means the interactive prompt", "[arguments]") {
  Arguments a = parse({"127.0.0.1:3000"});
  CHECK(a.command == Command::interactive);
  CHECK(a.endpoint == "127.0.0.1:3000");
  CHECK(a.style == OutputStyle::plain);
  CHECK(a.timeout == 30s);
}

TEST_CASE("browse, describe and eval take their arguments", "[arguments]") {
  CHECK(parse({"h:1", "browse"}).command == Command::browse);
  Arguments d = parse({"h:1", "describe", "root"});
  CHECK(d.command == Command::describe);
  CHECK(d.expression == "root");
  Arguments e = parse({"h:1", "eval", "root.child(0).value + 4"});
  CHECK(e.command == Command::eval);
  CHECK(e.expression == "root.child(0).value + 4");
}

TEST_CASE("an unquoted expression in several words is joined with spaces", "[arguments]") {
  CHECK(parse({"h:1", "eval", "five", "+", "1"}).expression == "five + 1");
}

TEST_CASE("an expression may start with a dash", "[arguments]") {
  CHECK(parse({"h:1", "eval", "-5"}).expression == "-5");
  CHECK(parse({"h:1", "eval", "--json"}).expression == "--json");
}

TEST_CASE("options come before the command, anywhere around the endpoint", "[arguments]") {
  Arguments a = parse({"--json", "h:1", "--timeout", "2.5", "eval", "x"});
  CHECK(a.style == OutputStyle::json);
  CHECK(a.timeout == 2500ms);
  CHECK(parse({"--timeout=0", "h:1"}).timeout == 0ms);
  CHECK(parse({"--", "h:1", "browse"}).command == Command::browse);
}

TEST_CASE("help wins over everything else", "[arguments]") {
  CHECK(parse({"--help"}).command == Command::help);
  CHECK(parse({"h:1", "-h"}).command == Command::help);
  CHECK(usage_text().find("usage: remoteable") == 0);
}

TEST_CASE("--version needs no server", "[arguments]") {
  CHECK(parse({"--version"}).command == Command::version);
  CHECK(parse({"--json", "--version"}).command == Command::version);
  CHECK(usage_text().find("--version") != std::string::npos);
}

TEST_CASE("bad command lines are usage errors that say what is wrong", "[arguments]") {
  CHECK(usage_error({}) == "missing HOST:PORT");
  CHECK(usage_error({"--json"}) == "missing HOST:PORT");
  CHECK(usage_error({"h:1", "frobnicate"}) ==
        "unknown command 'frobnicate' (expected browse, describe or eval)");
  CHECK(usage_error({"h:1", "eval"}) == "eval needs an expression");
  CHECK(usage_error({"h:1", "eval", "  "}) == "eval needs an expression");
  CHECK(usage_error({"h:1", "describe"}) == "describe needs an expression");
  CHECK(usage_error({"h:1", "browse", "x"}) == "browse takes no arguments");
  CHECK(usage_error({"--verbose", "h:1"}) == "unknown option '--verbose'");
  CHECK(usage_error({"h:1", "--timeout"}) == "--timeout needs a number of seconds");
  // A near miss gets a suggestion.
  CHECK(usage_error({"h:1", "brwse"}) == "unknown command 'brwse'; did you mean 'browse'?");
  CHECK(usage_error({"--jsno", "h:1"}) == "unknown option '--jsno'; did you mean '--json'?");
  CHECK(usage_error({"--timeout", "soon", "h:1"}) ==
        "--timeout wants a number of seconds, got 'soon'");
  CHECK(usage_error({"--timeout=-1", "h:1"}) == "--timeout wants a number of seconds, got '-1'");
}
