// The walkthrough server and the `remoteable` CLI over TLS, both as real processes (issue 12
// item 4): --tls-cert/--tls-key on the server, --tls-ca/--tls/--tls-name on the client, and
// errors that name the cause.

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "pki.hpp"
#include "process.hpp"
#include "subprocess.hpp"

using namespace cli_test;
using test::pki;
using namespace std::chrono_literals;

namespace {

/// The walkthrough server as a process, serving TLS with pki's "server" certificate (for
/// localhost and 127.0.0.1) on a free loopback port; `extra` arguments after.
struct TlsWalkthrough {
  explicit TlsWalkthrough(std::vector<std::string> extra = {})
      : process([&] {
          std::vector<std::string> argv{WALKTHROUGH_SERVER_PATH, "127.0.0.1:0", "--tls-cert",
                                        pki().path("server.pem"), "--tls-key", pki().path("server.key")};
          argv.insert(argv.end(), extra.begin(), extra.end());
          return argv;
        }()) {
    auto line = process.read_line();
    REQUIRE(line);
    serving = *line;
    REQUIRE(serving.find(" (TLS") != std::string::npos);
    auto on = serving.rfind(" on 127.0.0.1:");
    REQUIRE(on != std::string::npos);
    port = serving.substr(on + 14, serving.find(' ', on + 14) - (on + 14));
  }
  std::string address(const std::string& host = "127.0.0.1") const { return host + ":" + port; }
  test::Process process;
  std::string serving, port;
};

Completed cli(std::vector<std::string> args) {
  std::vector<std::string> argv{REMOTEABLE_CLI_PATH, "--timeout", "20"};
  argv.insert(argv.end(), args.begin(), args.end());
  Completed c = run_process(argv, "", 40s);
  INFO("stdout: " << c.out);
  INFO("stderr: " << c.err);
  REQUIRE_FALSE(c.timed_out);
  return c;
}

bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("the CLI evaluates over TLS with --tls-ca, by address and by host name", "[cli]") {
  TlsWalkthrough server;
  CHECK(contains(server.serving, "serving Node child five root on 127.0.0.1:"));
  Completed c = cli({"--tls-ca", pki().path("ca.pem"), server.address(), "eval", "root.child(0).value + 4"});
  CHECK(c.out == "6\n");
  CHECK(c.exit_code == 0);
  Completed named = cli({"--tls-ca=" + pki().path("ca.pem"), server.address("localhost"), "browse"});
  CHECK(contains(named.out, "root"));
  CHECK(named.exit_code == 0);
}

TEST_CASE("the CLI's TLS errors name the cause", "[cli]") {
  TlsWalkthrough server;
  // --tls alone checks against the system's CAs, which did not sign the test CA's certificate.
  Completed system_cas = cli({"--tls", server.address(), "eval", "five"});
  CHECK(contains(system_cas.err, "error (security): "));
  CHECK(contains(system_cas.err, "unknown CA"));
  CHECK(system_cas.exit_code == 1);
  // The certificate is for localhost and 127.0.0.1, not for the name the client expects.
  Completed wrong_name =
      cli({"--tls-ca", pki().path("ca.pem"), "--tls-name", "elsewhere.example", server.address(), "eval", "five"});
  CHECK(contains(wrong_name.err, "host-name mismatch"));
  CHECK(wrong_name.exit_code == 1);
  // Plain TCP at the TLS port: the hint says to turn TLS on; the server goes on serving.
  Completed plain = cli({server.address(), "eval", "five"});
  CHECK(contains(plain.err, "TLS"));
  CHECK(plain.exit_code == 1);
  CHECK(cli({"--tls-ca", pki().path("ca.pem"), server.address(), "eval", "five"}).out == "5\n");
}

TEST_CASE("mutual TLS: --tls-client-ca on the server, --tls-cert and --tls-key on the CLI", "[cli]") {
  TlsWalkthrough server({"--tls-client-ca", pki().path("ca.pem")});
  CHECK(contains(server.serving, "client certificates required"));
  Completed with_cert = cli({"--tls-ca", pki().path("ca.pem"), "--tls-cert", pki().path("client1.pem"), "--tls-key",
                             pki().path("client1.key"), server.address(), "eval", "five"});
  CHECK(with_cert.out == "5\n");
  Completed without = cli({"--tls-ca", pki().path("ca.pem"), server.address(), "eval", "five"});
  CHECK(without.exit_code == 1);
  CHECK(contains(without.err, "error (security): "));
}

TEST_CASE("TLS options that do not go together are usage errors", "[cli]") {
  Completed half = cli({"--tls-cert", pki().path("client1.pem"), "127.0.0.1:1", "eval", "five"});
  CHECK(contains(half.err, "--tls-cert and --tls-key go together"));
  CHECK(half.exit_code == 2);
  Completed server_half = run_process({WALKTHROUGH_SERVER_PATH, "127.0.0.1:0", "--tls-cert", pki().path("server.pem")}, "", 40s);
  CHECK(contains(server_half.err, "TLS needs both --tls-cert and --tls-key"));
  CHECK(server_half.exit_code == 1);
}
