// The interactive `remoteable` on a pseudo-terminal (through tmux): line editing, history,
// completion, help, let, and/or, "did you mean", typed handles and the reason a connection
// was closed.

#include <catch2/catch.hpp>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "cli_support.hpp"
#include "tmux.hpp"

using namespace cli_test;

namespace {

/// A fresh home directory (for the history file), removed afterwards.
struct TempHome {
  TempHome() {
    std::string pattern = (std::filesystem::temp_directory_path() / "remoteable-repl-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TempHome() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  std::string history() const {
    std::ifstream in(path / ".remoteable_history");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  std::filesystem::path path;
};

/// The CLI's REPL against `address`, on a terminal, with HOME at `home`.
std::string repl_command(const std::string& address, const TempHome& home) {
  return "env -u REMOTEABLE_HISTORY HOME=" + home.path.string() + " " + REMOTEABLE_CLI_PATH +
         " --timeout 20 " + address;
}

/// The screen's lines that are exactly `text` (results print on lines of their own).
std::size_t lines_equal(const std::string& screen, const std::string& text) {
  std::size_t n = 0;
  std::istringstream in(screen);
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && line.back() == ' ') line.pop_back();
    if (line == text) ++n;
  }
  return n;
}

bool has_line(const std::string& screen, const std::string& text, std::size_t times = 1) {
  return lines_equal(screen, text) >= times;
}

/// A walkthrough server and the REPL on it, at its first prompt.
struct Repl {
  Repl() { tty.wait_for_text(">"); }  // the prompt (capture-pane drops its trailing space)
  WalkthroughServer server;
  TempHome home;
  Tmux tty{repl_command(server.address(), home)};
};

}  // namespace

TEST_CASE("up-arrow recalls the previous line, and the history outlives the session", "[cli][repl]") {
  WalkthroughServer server;
  TempHome home;
  {
    Tmux tty(repl_command(server.address(), home));
    tty.wait_for_text(">");  // the prompt (capture-pane drops its trailing space)
    tty.line("five * 7");
    tty.wait_for([](const std::string& s) { return has_line(s, "35"); });
    tty.send("Up");
    tty.send("Enter");
    std::string screen = tty.wait_for([](const std::string& s) { return has_line(s, "35", 2); });
    CHECK(screen.find("^[[A") == std::string::npos);
    tty.send("C-d");
    tty.wait_for_text("[exit 0]");
  }
  // libedit's file format spells a space \040.
  CHECK(home.history().find("five\\040*\\0407") != std::string::npos);
  auto perms = std::filesystem::status(home.path / ".remoteable_history").permissions();
  CHECK((perms & (std::filesystem::perms::group_all | std::filesystem::perms::others_all)) ==
        std::filesystem::perms::none);

  // A new session starts with that history.
  Tmux again(repl_command(server.address(), home));
  again.wait_for_text(">");  // the prompt (capture-pane drops its trailing space)
  again.send("Up");
  again.send("Enter");
  again.wait_for([](const std::string& s) { return has_line(s, "35"); });
}

TEST_CASE("help prints the REPL's help, not a name error", "[cli][repl]") {
  Repl repl;
  Tmux& tty = repl.tty;
  tty.line("help");
  std::string screen = tty.wait_for_text("let n = root.child(0)");
  CHECK(screen.find("error") == std::string::npos);
  tty.line("exit");
  tty.wait_for_text("[exit 0]");
}

TEST_CASE("let keeps a value or a handle for later lines", "[cli][repl]") {
  Repl repl;
  Tmux& tty = repl.tty;
  tty.line("let x = store(3)");
  tty.line("x + 1");
  tty.wait_for([](const std::string& s) { return has_line(s, "4"); });
  tty.line("let n = root.child(0)");
  tty.line("n.value * 10");
  tty.wait_for([](const std::string& s) { return has_line(s, "20"); });
  // A local name hides an export of the same name.
  tty.line("let five = 50");
  tty.line("five + 1");
  tty.wait_for([](const std::string& s) { return has_line(s, "51"); });
  // Plain assignment to a bare name says what to use instead.
  tty.line("y = 1");
  tty.wait_for_text("use 'let y = EXPR'");
}

TEST_CASE("and / or short-circuit and yield an operand", "[cli][repl]") {
  Repl repl;
  Tmux& tty = repl.tty;
  tty.line("five and root.value + 100");
  tty.wait_for([](const std::string& s) { return has_line(s, "101"); });
  tty.line("0 or five * 3");
  tty.wait_for([](const std::string& s) { return has_line(s, "15"); });
  // The right operand is not evaluated when the left decides: no name error.
  tty.line("five or nothing_here");
  tty.wait_for([](const std::string& s) { return has_line(s, "5"); });
  tty.line("0 and nothing_here");
  std::string screen = tty.wait_for([](const std::string& s) { return has_line(s, "0"); });
  CHECK(screen.find("error") == std::string::npos);
}

TEST_CASE("typos of exports and members get a suggestion", "[cli][repl]") {
  Repl repl;
  Tmux& tty = repl.tty;
  tty.line("rooot.value");
  tty.wait_for_text("error (name): no export named 'rooot'; did you mean 'root'?");
  tty.line("root.valeu");
  tty.wait_for_text("has no attribute 'valeu'; did you mean 'value'?");
}

TEST_CASE("a handle prints with its type", "[cli][repl]") {
  Repl repl;
  Tmux& tty = repl.tty;
  tty.line("root");
  tty.wait_for([](const std::string& s) { return has_line(s, "<Node handle>"); });
  tty.line("[root, five]");
  tty.wait_for([](const std::string& s) { return has_line(s, "[<Node handle>, 5]"); });
}

TEST_CASE("tab completes export and member names", "[cli][repl]") {
  Repl repl;
  Tmux& tty = repl.tty;
  tty.send("ro", true);
  tty.send("Tab");
  tty.wait_for_text("> root");
  tty.send(".chi", true);
  tty.send("Tab");
  tty.wait_for_text("> root.child");
  tty.send("(0).value", true);
  tty.send("Enter");
  tty.wait_for([](const std::string& s) { return has_line(s, "2"); });
}

TEST_CASE("a connection the server closed for idleness says so", "[cli][repl]") {
  remoteable::Registry types;
  example::register_node(types);
  remoteable::ServerOptions options;
  options.idle_timeout = std::chrono::milliseconds(300);
  options.sweep_interval = std::chrono::milliseconds(20);
  remoteable::ThreadedServer server(remoteable::Endpoint{"127.0.0.1", 0}, types, options);
  example::export_walkthrough(server.server());
  TempHome home;
  Tmux tty(repl_command("127.0.0.1:" + std::to_string(server.port()), home));
  tty.wait_for_text(">");  // the prompt (capture-pane drops its trailing space)
  tty.line("five");
  tty.wait_for([](const std::string& s) { return has_line(s, "5"); });
  // The server drops the idle connection; the next line reports why.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (server.server().connections() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling the condition
  REQUIRE(server.server().connections() == 0);
  tty.line("five");
  tty.wait_for_text("error (disconnected): the server closed the connection: idle for more than 300 ms");
  tty.wait_for_text("[exit 1]");
}
