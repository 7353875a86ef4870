// Serves the seed walkthrough's objects until SIGINT or SIGTERM.
//   walkthrough_server [HOST:PORT] [--metrics HOST:PORT] [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]
//                      [--token-file FILE]
// (default 127.0.0.1:3000, no metrics, no TLS, no authentication).
// --tls-cert and --tls-key (PEM) serve TLS only; --tls-client-ca also asks every client for a
// certificate signed by a CA in FILE (mutual TLS).
// --metrics serves Prometheus metrics on http://HOST:PORT/metrics (unauthenticated: keep it on
// loopback or a private network).
// --token-file FILE turns authentication on: each line of FILE is a token, or "PRINCIPAL TOKEN"
// (blank lines and lines starting with '#' are skipped); a line with only a token is principal
// "client". Every principal may do everything. `remoteable --token-file FILE` reads a file
// holding just the token, so one such file serves both.

#include <asio/signal_set.hpp>
#include <csignal>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "node.hpp"

namespace {

/// ServerAuth from a --token-file (see the top of this file).
remoteable::ServerAuth read_tokens(const std::string& file) {
  std::ifstream in(file);
  if (!in) throw std::invalid_argument("cannot read the token file '" + file + "'");
  remoteable::ServerAuth auth;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string first, second, extra;
    words >> first >> second >> extra;
    if (first.empty() || first[0] == '#') continue;
    if (!extra.empty()) throw std::invalid_argument("token file '" + file + "': a line has more than PRINCIPAL TOKEN");
    if (second.empty()) auth.tokens[first] = "client";
    else auth.tokens[second] = first;
  }
  if (auth.tokens.empty()) throw std::invalid_argument("the token file '" + file + "' holds no token");
  return auth;
}

}  // namespace

int main(int argc, char** argv) try {
  remoteable::Endpoint endpoint = remoteable::Endpoint::parse("127.0.0.1:3000");
  remoteable::ServerOptions options;
  bool have_endpoint = false;
  const std::string usage =
      "usage: walkthrough_server [HOST:PORT] [--metrics HOST:PORT] [--tls-cert FILE --tls-key FILE [--tls-client-ca "
      "FILE]] [--token-file FILE]";
  remoteable::ServerTls tls;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    const auto value = [&](const char* what) -> std::string {
      if (++i == argc) throw std::invalid_argument(arg + " needs " + what);
      return argv[i];
    };
    if (arg == "--metrics") {
      options.metrics = remoteable::Endpoint::parse(value("HOST:PORT"));
    } else if (arg == "--tls-cert") {
      tls.cert_file = value("a PEM certificate file");
    } else if (arg == "--tls-key") {
      tls.key_file = value("a PEM key file");
    } else if (arg == "--tls-client-ca") {
      tls.client_ca_file = value("a PEM file of CA certificates");
    } else if (arg == "--token-file") {
      options.auth = read_tokens(value("a file name"));
    } else if (!have_endpoint && arg.rfind("--", 0) != 0) {
      endpoint = remoteable::Endpoint::parse(arg);
      have_endpoint = true;
    } else {
      throw std::invalid_argument(usage);
    }
  }
  if (!tls.cert_file.empty() || !tls.key_file.empty() || !tls.client_ca_file.empty()) {
    if (tls.cert_file.empty() || tls.key_file.empty())
      throw std::invalid_argument("TLS needs both --tls-cert and --tls-key\n" + usage);
    options.tls = tls;
  }
  remoteable::Registry types;
  example::register_node(types);

  // The handlers go in before "serving" is printed: whoever waits for that line may signal at once.
  asio::io_context signals_context;
  asio::signal_set signals(signals_context, SIGINT, SIGTERM);

  remoteable::ThreadedServer server{endpoint, types, options};
  example::export_walkthrough(server.server());
  signals.async_wait([&](std::error_code, int) { server.stop(); });

  std::cout << "serving";
  for (auto& name : server->browse()) std::cout << ' ' << name;
  std::cout << " on " << endpoint.host << ':' << server.port();
  if (options.tls) std::cout << (options.tls->client_ca_file.empty() ? " (TLS)" : " (TLS, client certificates required)");
  std::cout << std::endl;
  if (options.metrics)
    std::cout << "metrics on http://" << remoteable::Endpoint{options.metrics->host, server->metrics_port()}.to_string() << "/metrics"
              << std::endl;

  // Wait for a signal on this thread; the server runs on its own.
  signals_context.run();
  std::cout << "stopped" << std::endl;
  return 0;
} catch (const std::exception& e) {
  std::cerr << "walkthrough_server: " << e.what() << std::endl;
  return 1;
}
