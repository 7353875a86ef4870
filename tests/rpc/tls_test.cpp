// TLS (issue 12 item 1): a CA made at test time with the openssl command; good, untrusted,
// wrong-name and expired server certificates; plaintext at a TLS port and TLS at a plaintext
// one; mutual TLS; handshakes that never come; files that cannot be used.

#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>

#include "counted.hpp"
#include "pki.hpp"
#include "ring_log.hpp"
#include "scrape.hpp"
#include "support.hpp"

using namespace std::chrono_literals;
using remoteable::ErrorKind;

using test::pki;

namespace {

/// A walkthrough server with chosen options on a free loopback port, its log in a RingLog.
struct Server {
  explicit Server(remoteable::ServerOptions options) {
    options.logger = log.logger;
    example::register_node(types);
    server.emplace(remoteable::Endpoint{"127.0.0.1", 0}, types, std::move(options));
    example::export_walkthrough(server->server());
  }
  static remoteable::ServerOptions tls(remoteable::ServerTls tls) {
    remoteable::ServerOptions options;
    options.tls = std::move(tls);
    return options;
  }
  remoteable::Endpoint endpoint(std::string host = "127.0.0.1") const { return {std::move(host), server->port()}; }
  test::RingLog log{"server", spdlog::level::info};
  remoteable::Registry types;
  std::optional<remoteable::ThreadedServer> server;
};

remoteable::ClientOptions with(remoteable::ClientTls tls) {
  remoteable::ClientOptions options;
  options.tls = std::move(tls);
  return options;
}

std::int64_t chain(asio::io_context& context, const remoteable::Client& client) {
  return test::await(context, (client.fetch("root").call("child", 0).attr("value") + 4).as<std::int64_t>());
}

/// Connecting fails: the error, for its kind and message.
remoteable::RemoteError refused(asio::io_context& context, remoteable::Endpoint endpoint, remoteable::ClientOptions options) {
  try {
    test::connect(context, std::move(endpoint), std::move(options));
  } catch (const remoteable::RemoteError& e) {
    return e;
  }
  FAIL("the connection was accepted");
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("a TLS client talks to a TLS server whose certificate its CA signed, by address or host name") {
  Server s(Server::tls(pki().server("server")));
  asio::io_context context;
  auto client = test::connect(context, s.endpoint(), with(pki().client()));
  CHECK(chain(context, client) == 6);
  // More than one TLS record each way, and more than the stream's read buffer.
  std::string big(1 << 20, 'x');
  big[12345] = 'y';
  auto back = test::await(context, client.store(big).as<std::string>());
  CHECK(back.size() == big.size());
  CHECK((back == big));  // (not expanded: a megabyte)
  auto by_name = test::connect(context, s.endpoint("localhost"), with(pki().client()));
  CHECK(chain(context, by_name) == 6);
}

TEST_CASE("over TLS, the metrics count the application's bytes both ways") {
  auto options = Server::tls(pki().server("server"));
  options.metrics = remoteable::Endpoint{"127.0.0.1", 0};
  Server s(std::move(options));
  asio::io_context context;
  auto client = test::connect(context, s.endpoint(), with(pki().client()));
  const auto before = test::scrape(s.server->server().metrics_port());
  std::string big(100000, 'x');
  CHECK(test::await(context, client.store(big).as<std::string>()).size() == big.size());
  const auto after = test::scrape(s.server->server().metrics_port());
  // The string went both ways: at least its length each way, more than before.
  CHECK(after.count("remoteable_received_bytes_total") - before.count("remoteable_received_bytes_total") >= 100000);
  CHECK(after.count("remoteable_sent_bytes_total") - before.count("remoteable_sent_bytes_total") >= 100000);
}

TEST_CASE("a server certificate from an unknown CA is refused with a security error that says so") {
  Server s(Server::tls(pki().server("stranger")));
  asio::io_context context;
  auto e = refused(context, s.endpoint(), with(pki().client()));
  CHECK(e.kind() == ErrorKind::security);
  CHECK_THAT(e.message(), Catch::Contains("unknown CA"));
  CHECK_THAT(e.message(), Catch::Contains("TLS handshake with 127.0.0.1:"));
  // Trusting the other CA, the same server is fine: the server kept serving.
  auto client = test::connect(context, s.endpoint(), with(pki().client("other-ca")));
  CHECK(chain(context, client) == 6);
}

TEST_CASE("a server certificate for another name is refused unless the client expects that name") {
  Server s(Server::tls(pki().server("elsewhere")));
  asio::io_context context;
  auto e = refused(context, s.endpoint(), with(pki().client()));
  CHECK(e.kind() == ErrorKind::security);
  CHECK_THAT(e.message(), Catch::Contains("host-name mismatch"));
  auto tls = pki().client();
  tls.server_name = "other.example";
  auto client = test::connect(context, s.endpoint(), with(tls));
  CHECK(chain(context, client) == 6);
}

TEST_CASE("an expired server certificate is refused") {
  Server s(Server::tls(pki().server("expired")));
  asio::io_context context;
  auto e = refused(context, s.endpoint(), with(pki().client()));
  CHECK(e.kind() == ErrorKind::security);
  CHECK_THAT(e.message(), Catch::Contains("expired"));
  // Not retried: the same certificate would be met again.
  auto options = with(pki().client());
  options.connect_attempts = 3;
  test::RingLog client_log("client");
  options.logger = client_log.logger;
  CHECK(refused(context, s.endpoint(), options).kind() == ErrorKind::security);
  CHECK(client_log.count("info", "retrying") == 0);
}

TEST_CASE("a plaintext client at a TLS port fails clearly, and the server keeps serving") {
  Server s(Server::tls(pki().server("server")));
  asio::io_context context;
  auto e = refused(context, s.endpoint(), {});
  CHECK(e.kind() == ErrorKind::disconnected);
  CHECK_THAT(e.message(), Catch::Contains("TLS"));
  CHECK(test::eventually([&] { return s.log.has("info", "the client does not speak TLS"); }));
  auto client = test::connect(context, s.endpoint(), with(pki().client()));
  CHECK(chain(context, client) == 6);
}

TEST_CASE("a TLS client at a plaintext port fails with a security error saying the server does not speak TLS") {
  Server s({});
  asio::io_context context;
  auto e = refused(context, s.endpoint(), with(pki().client()));
  CHECK(e.kind() == ErrorKind::security);
  CHECK_THAT(e.message(), Catch::Contains("the server does not speak TLS"));
  auto client = test::connect(context, s.endpoint());
  CHECK(chain(context, client) == 6);
}

TEST_CASE("mutual TLS: a client certificate from the client CA is required, and names the peer in the log") {
  auto tls = pki().server("server");
  tls.client_ca_file = pki().path("ca.pem");
  Server s(Server::tls(tls));
  asio::io_context context;
  SECTION("with a certificate from the CA") {
    auto options = pki().client();
    options.cert_file = pki().path("client1.pem");
    options.key_file = pki().path("client1.key");
    auto client = test::connect(context, s.endpoint(), with(options));
    CHECK(chain(context, client) == 6);
    CHECK(test::eventually([&] { return s.log.has("info", "(client1)"); }));
  }
  SECTION("without a certificate") {
    auto e = refused(context, s.endpoint(), with(pki().client()));
    CHECK(e.kind() == ErrorKind::security);
    CHECK(test::eventually([&] { return s.log.has("info", "TLS handshake with"); }));
  }
  SECTION("with a certificate from another CA") {
    auto options = pki().client();
    options.cert_file = pki().path("intruder.pem");
    options.key_file = pki().path("intruder.key");
    auto e = refused(context, s.endpoint(), with(options));
    CHECK(e.kind() == ErrorKind::security);
    CHECK(test::eventually([&] { return s.log.has("info", "the client's certificate is not accepted"); }));
  }
}

TEST_CASE("mutual TLS with authentication: a mapped client certificate is its principal, without a token") {
  auto tls = pki().server("server");
  tls.client_ca_file = pki().path("ca.pem");
  tls.require_client_cert = false;
  auto server_options = Server::tls(tls);
  remoteable::ServerAuth auth;
  auth.certificates = {{"client1", "robot"}};
  auth.tokens = {{"human-secret", "human"}};
  remoteable::Authority robot;
  robot.exports.emplace(std::set<std::string, std::less<>>{"five"});
  auth.authorities["robot"] = robot;
  server_options.auth = auth;
  Server s(server_options);
  asio::io_context context;
  auto options = pki().client();
  options.cert_file = pki().path("client1.pem");
  options.key_file = pki().path("client1.key");
  auto client = test::connect(context, s.endpoint(), with(options));
  CHECK(test::await(context, client.browse()) == std::vector<std::string>{"five"});
  CHECK(test::error_of(context, client.fetch("root").attr("value").as<std::int64_t>()) == ErrorKind::name);
  CHECK(test::eventually([&] { return s.log.has("info", "authenticated as 'robot' by its certificate"); }));
  // authenticate("") gives the certificate's principal too; another principal's token is refused.
  auto with_empty = with(options);
  with_empty.token = "";
  auto again = test::connect(context, s.endpoint(), with_empty);
  CHECK(test::await(context, again.fetch("five").as<std::int64_t>()) == 5);
  auto other = with(options);
  other.token = "human-secret";
  CHECK_THAT(refused(context, s.endpoint(), other).message(), Catch::Contains("authenticated as 'robot' already"));
  // Without a certificate: nothing until a token.
  auto anonymous = test::connect(context, s.endpoint(), with(pki().client()));
  CHECK(test::error_of(context, anonymous.browse()) == ErrorKind::security);
  auto human = with(pki().client());
  human.token = "human-secret";
  auto h = test::connect(context, s.endpoint(), human);
  CHECK(chain(context, h) == 6);
}

TEST_CASE("a connection that never starts its handshake is closed after handshake_timeout, and does not delay stop") {
  auto tls = pki().server("server");
  tls.handshake_timeout = 200ms;
  Server s(Server::tls(tls));
  asio::io_context context;
  asio::ip::tcp::socket silent(context);
  silent.connect({asio::ip::make_address("127.0.0.1"), s.server->port()});
  std::error_code ec;
  char byte;
  asio::read(silent, asio::buffer(&byte, 1), ec);  // blocks until the server closes it
  CHECK(ec == asio::error::eof);
  CHECK(test::eventually([&] { return s.log.has("info", "no handshake within 200 ms"); }));

  // One left pending at stop(): stop returns without waiting out its (long) timeout.
  auto slow = pki().server("server");
  slow.handshake_timeout = 10min;
  Server t(Server::tls(slow));
  asio::ip::tcp::socket pending(context);
  pending.connect({asio::ip::make_address("127.0.0.1"), t.server->port()});
  t.server->stop();  // bounded by ctest's timeout if it waited 10 minutes
  asio::read(pending, asio::buffer(&byte, 1), ec);
  CHECK((ec == asio::error::eof || ec == asio::error::connection_reset));  // closed, however
}

TEST_CASE("TLS files that cannot be used fail the server's and the client's set-up, naming the file") {
  auto missing = pki().server("server");
  missing.cert_file = pki().path("nothing.pem");
  remoteable::Registry types;
  try {
    remoteable::ThreadedServer server(remoteable::Endpoint{"127.0.0.1", 0}, types, Server::tls(missing));
    FAIL("the server started");
  } catch (const std::invalid_argument& e) {
    CHECK_THAT(e.what(), Catch::Contains("nothing.pem"));
  }
  auto mismatched = pki().server("server");
  mismatched.key_file = pki().path("client1.key");
  CHECK_THROWS_WITH(remoteable::ThreadedServer(remoteable::Endpoint{"127.0.0.1", 0}, types, Server::tls(mismatched)),
                    Catch::Contains("client1.key"));
  Server s(Server::tls(pki().server("server")));
  asio::io_context context;
  auto options = pki().client();
  options.ca_file = pki().path("nothing.pem");
  CHECK_THROWS_WITH(test::connect(context, s.endpoint(), with(options)), Catch::Contains("nothing.pem"));
}
