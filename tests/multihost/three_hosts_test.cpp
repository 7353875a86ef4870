// Three hosts (issue 10 item 6): server A, server B and a client, each a process in a network
// namespace of its own, the client's joined to each server's by a veth pair. The client passes A's
// handle to B; B's calls on it go B -> client -> A and succeed. Then the link to A is cut and B's
// next call must fail with `disconnected` within a bound (the client's connection to A times out
// on ClientOptions::peer_timeout, and Cap'n Proto fails the call it was forwarding), while B goes
// on serving.
//
//   C (client)  to-a 10.213.1.1/30 <--veth--> 10.213.1.2/30 to-c  A (serve-a)
//               to-b 10.213.2.1/30 <--veth--> 10.213.2.2/30 to-c  B (serve-b)
//
// Traffic stays inside the namespaces the test makes; A and B have no route to each other. The
// namespaces are named rmt3h-PID-{a,b,c}: torn down however the test ends, and the leftovers of a
// run whose process is gone (killed by a timeout) are removed at the start of the next. Where
// namespaces cannot be made (not root, no `ip`, `ip netns add` refused) the executable exits 77
// with the reason on stderr, which ctest reports as skipped (SKIP_RETURN_CODE).

#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/subprocess.hpp"
#include "process.hpp"

namespace {

using namespace std::chrono_literals;

constexpr int skip_code = 77;
const std::string prefix = "rmt3h-";
/// How long B's call after the cut may take to fail: ten times the peers' peer_timeout (2 s),
/// room for TCP's retransmission schedule and a loaded machine. A bound, not a speed claim.
constexpr auto failure_bound = 20s;

/// The `ip` command's path (posix_spawn does not search PATH), or empty.
std::string find_ip() {
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH")) {
    std::istringstream in(path);
    for (std::string dir; std::getline(in, dir, ':');)
      if (!dir.empty()) dirs.push_back(dir);
  }
  for (const char* dir : {"/usr/sbin", "/sbin", "/usr/bin", "/bin"}) dirs.emplace_back(dir);
  for (auto& dir : dirs) {
    auto candidate = dir + "/ip";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

const std::string& ip_path() {
  static const std::string path = find_ip();
  return path;
}

/// Runs `ip ARGS...`, bounded in time.
cli_test::Completed ip(std::vector<std::string> args) {
  args.insert(args.begin(), ip_path());
  return cli_test::run_process(args, "", 10s);
}

/// Runs `ip ARGS...` and throws, with what it said, unless it succeeded.
void ip_ok(std::vector<std::string> args) {
  auto done = ip(args);
  if (done.exit_code == 0 && !done.timed_out) return;
  std::string command = "ip";
  for (auto& a : args) command += " " + a;
  throw std::runtime_error(command + " failed (" + std::to_string(done.exit_code) + "): " + done.err);
}

/// Kills whatever still runs in namespace `name`, then deletes it (its veth ends go with it).
void remove_namespace(const std::string& name) {
  std::istringstream pids(ip({"netns", "pids", name}).out);
  for (std::string pid; pids >> pid;) ::kill(static_cast<pid_t>(std::stol(pid)), SIGKILL);
  ip({"netns", "del", name});
}

/// Removes the namespaces of runs of this test whose process is gone. A run still going (another
/// build's ctest) keeps its own.
void remove_leftovers() {
  std::istringstream lines(ip({"netns", "list"}).out);
  for (std::string line; std::getline(lines, line);) {
    auto name = line.substr(0, line.find(' '));  // "NAME" or "NAME (id: N)"
    if (name.rfind(prefix, 0) != 0) continue;
    auto rest = name.substr(prefix.size());
    auto owner = static_cast<pid_t>(std::atol(rest.substr(0, rest.find('-')).c_str()));
    if (owner > 0 && ::kill(owner, 0) != 0 && errno == ESRCH) remove_namespace(name);
  }
}

std::string namespace_name(const std::string& host) {
  return prefix + std::to_string(::getpid()) + "-" + host;
}

/// Why this machine cannot run the test, or empty if it can. Tries what the test does: makes a
/// namespace with a veth pair in it.
std::string cannot_make_namespaces() {
  if (::geteuid() != 0) return "not root: making network namespaces needs root (CI runs as root)";
  if (ip_path().empty()) return "no `ip` command (iproute2) found";
  remove_leftovers();
  const auto probe = namespace_name("probe");
  auto added = ip({"netns", "add", probe});
  if (added.exit_code != 0) return "`ip netns add` failed: " + added.err;
  auto veth = ip({"-n", probe, "link", "add", "p0", "type", "veth", "peer", "name", "p1"});
  remove_namespace(probe);
  if (veth.exit_code != 0) return "cannot make a veth pair in a namespace: " + veth.err;
  return {};
}

/// A network namespace for the length of a test.
struct Namespace {
  explicit Namespace(std::string host) : name(namespace_name(host)) {
    remove_namespace(name);  // a leftover of this very pid's earlier run
    ip_ok({"netns", "add", name});
    ip_ok({"-n", name, "link", "set", "lo", "up"});
  }
  ~Namespace() { remove_namespace(name); }
  Namespace(const Namespace&) = delete;
  Namespace& operator=(const Namespace&) = delete;
  const std::string name;
};

/// The three namespaces and their links. A member made is torn down even if a later one fails.
struct Hosts {
  Namespace a{"a"}, b{"b"}, c{"c"};
  Hosts() {
    link(a, "to-a", "10.213.1.1/30", "10.213.1.2/30");
    link(b, "to-b", "10.213.2.1/30", "10.213.2.2/30");
  }
  /// A veth pair between c (device `c_side`) and `server` (device "to-c"), with addresses, up.
  void link(const Namespace& server, const std::string& c_side, const std::string& c_address,
            const std::string& server_address) {
    ip_ok({"link", "add", c_side, "netns", c.name, "type", "veth", "peer", "name", "to-c", "netns", server.name});
    ip_ok({"-n", c.name, "addr", "add", c_address, "dev", c_side});
    ip_ok({"-n", server.name, "addr", "add", server_address, "dev", "to-c"});
    ip_ok({"-n", c.name, "link", "set", c_side, "up"});
    ip_ok({"-n", server.name, "link", "set", "to-c", "up"});
  }
};

/// Starts the peer `args` in namespace `ns`.
test::Process peer_in(const Namespace& ns, std::vector<std::string> args) {
  args.insert(args.begin(), {ip_path(), "netns", "exec", ns.name, MULTIHOST_PEER_PATH});
  return test::Process(std::move(args), test::Process::Stdin::pipe);
}

/// Waits (bounded) for a server's "serving HOST:PORT" and returns "HOST:PORT".
std::string serving(test::Process& server) {
  auto line = server.read_line(20s);
  REQUIRE(line);
  INFO("server: " << *line);
  REQUIRE(line->rfind("serving ", 0) == 0);
  return line->substr(8);
}

}  // namespace

TEST_CASE("a handle from server A held by server B through a client fails disconnected when the link to A is cut") {
  Hosts hosts;
  auto a = peer_in(hosts.a, {"serve-a", "10.213.1.2:0"});
  auto b = peer_in(hosts.b, {"serve-b", "10.213.2.2:0"});
  const auto a_at = serving(a);
  const auto b_at = serving(b);
  auto client = peer_in(hosts.c, {"client", a_at, b_at});

  // Every line the client prints, each waited for with a deadline (what it prints on failure
  // shows in the check).
  auto next = [&](std::chrono::milliseconds limit = 20s) { return client.read_line(limit).value_or("(no line)"); };
  REQUIRE(next() == "connected");
  // B's calls on the handle reach A through the client; the client's own call shows it is one
  // counter.
  REQUIRE(next() == "ping 1");
  REQUIRE(next() == "ping 2");
  REQUIRE(next() == "ping 3");
  REQUIRE(next() == "direct 4");
  REQUIRE(next() == "waiting for cut");

  // A's end of its link goes down: what the client sends to A is dropped, never acknowledged.
  ip_ok({"-n", hosts.a.name, "link", "set", "to-c", "down"});
  const auto cut_at = std::chrono::steady_clock::now();
  REQUIRE(client.write_line("cut"));

  // B's next call on the handle must fail, not hang: waited for a little past the bound, so
  // that a slow failure shows as a number rather than as no line.
  auto after = next(failure_bound + 10s);
  const auto waited = std::chrono::steady_clock::now() - cut_at;
  INFO("client: " << after);
  REQUIRE(after.rfind("after cut: ", 0) == 0);
  std::istringstream words(after.substr(11));
  std::string outcome, kind;
  long long took_ms = -1;
  words >> outcome >> kind >> took_ms;
  CHECK(outcome == "error");
  CHECK(kind == "disconnected");
  CHECK(took_ms >= 0);
  CHECK(std::chrono::milliseconds(took_ms) < failure_bound);
  CHECK(waited < failure_bound);

  // B itself saw its call on the handle fail disconnected, and still answers the client.
  CHECK(next() == "b saw: disconnected");
  CHECK(next() == "a connected: false");
  CHECK(next() == "done");
  // And it ends cleanly (under the sanitizers: with no leak report).
  const auto status = client.wait_for(20s);
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
}

int main(int argc, char** argv) {
  if (auto why = cannot_make_namespaces(); !why.empty()) {
    std::cerr << "three_hosts_test: skipped: " << why << std::endl;
    return skip_code;
  }
  return Catch::Session().run(argc, argv);
}
