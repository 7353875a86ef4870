#pragma once
// Test support: a program on a pseudo-terminal, driven through tmux. A private tmux server
// (its own socket name) holds one session; the destructor kills that server whatever happened.
// Waits poll the pane's text until it matches or a deadline passes: bounded, never a fixed
// sleep standing in for the program's progress.

#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "subprocess.hpp"

namespace cli_test {

class Tmux {
 public:
  /// Starts `command` (run by /bin/sh) in a 200x50 pane. When it exits the pane shows
  /// "[exit N]" and stays, so its last words can be read.
  explicit Tmux(const std::string& command)
      : socket_("remoteable-test-" + std::to_string(::getpid()) + "-" + std::to_string(next_id()++)) {
    std::string script = command + "; echo \"[exit $?]\"; exec tail -f /dev/null";
    run({"-f", "/dev/null", "new-session", "-d", "-x", "200", "-y", "50", "-s", "t",
         "env TERM=screen sh -c '" + quoted(script) + "'"});
  }
  ~Tmux() {
    run_process({REMOTEABLE_TMUX, "-L", socket_, "kill-server"}, "", std::chrono::seconds(10));
  }
  Tmux(const Tmux&) = delete;
  Tmux& operator=(const Tmux&) = delete;

  /// Types `keys` as tmux key names ("Enter", "Up", "Tab", "C-d") or, with literal, as text.
  void send(const std::string& keys, bool literal = false) {
    std::vector<std::string> args{"send-keys", "-t", "t"};
    if (literal) args.push_back("-l");
    args.push_back(keys);
    run(args);
  }
  /// Types a line and Enter.
  void line(const std::string& text) {
    send(text, true);
    send("Enter");
  }

  /// The pane's text now (the visible screen).
  std::string screen() { return run({"capture-pane", "-p", "-t", "t"}); }

  /// Waits until the screen satisfies `ready`, at most `limit`; returns the last screen.
  /// A REQUIRE fails (with the screen) if it never does.
  std::string wait_for(const std::function<bool(const std::string&)>& ready,
                       std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    std::string text;
    for (;;) {
      text = screen();
      if (ready(text)) return text;
      if (std::chrono::steady_clock::now() > deadline) break;
      // A poll interval, not a synchronisation: the condition above decides.
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    INFO("screen:\n" << text);
    FAIL("the pane never showed what was expected");
    return text;
  }
  /// Waits until `text` appears at least `times` times on the screen.
  std::string wait_for_text(const std::string& text, std::size_t times = 1) {
    return wait_for([&](const std::string& s) { return count(s, text) >= times; });
  }

  static std::size_t count(const std::string& haystack, const std::string& needle) {
    std::size_t n = 0;
    for (auto at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + needle.size())) ++n;
    return n;
  }

 private:
  static std::atomic<int>& next_id() {
    static std::atomic<int> id{0};
    return id;
  }
  // For inside single quotes in sh.
  static std::string quoted(const std::string& s) {
    std::string out;
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out;
  }
  std::string run(std::vector<std::string> args) {
    std::vector<std::string> argv{REMOTEABLE_TMUX, "-L", socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    Completed c = run_process(argv, "", std::chrono::seconds(20));
    INFO("tmux " << args.front() << ": " << c.err);
    REQUIRE_FALSE(c.timed_out);
    REQUIRE(c.exit_code == 0);
    return c.out;
  }

  std::string socket_;
};

}  // namespace cli_test
