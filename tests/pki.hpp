#pragma once
// Keys and certificates for TLS tests, made at test time with the openssl command.

#include <catch2/catch.hpp>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include <remoteable/tls.hpp>

namespace test {

namespace fs = std::filesystem;

/// Runs a shell command; the test fails if it does.
inline void sh(const std::string& command) {
  auto status = std::system((command + " >/dev/null 2>&1").c_str());
  if (status != 0) FAIL("command failed: " << command);
}

/// Keys and certificates, made once per process in a temporary directory removed at exit:
/// two CAs; server certificates from the first for localhost and 127.0.0.1 (good, expired),
/// for another name only, and from the second CA; client certificates from each CA.
struct Pki {
  fs::path dir;
  Pki() {
    char pattern[] = "/tmp/remoteable-tls-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir = pattern;
    const auto key = [&](const std::string& name) {
      return "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + path(name + ".key") +
             " -out " + path(name + ".csr") + " -subj '/CN=" + name + "'";
    };
    for (std::string ca : {"ca", "other-ca"})
      sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -keyout " + path(ca + ".key") +
         " -out " + path(ca + ".pem") + " -subj '/CN=remoteable test " + ca + "'");
    std::ofstream(path("local.ext")) << "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
    std::ofstream(path("other.ext")) << "subjectAltName=DNS:other.example\n";
    std::ofstream(path("client.ext")) << "extendedKeyUsage=clientAuth\n";
    const auto sign = [&](const std::string& name, const std::string& ca, const std::string& ext, int days) {
      sh(key(name));
      sh("openssl x509 -req -in " + path(name + ".csr") + " -CA " + path(ca + ".pem") + " -CAkey " + path(ca + ".key") +
         " -CAcreateserial -days " + std::to_string(days) + " -extfile " + path(ext) + " -out " + path(name + ".pem"));
    };
    sign("server", "ca", "local.ext", 30);
    sign("expired", "ca", "local.ext", -1);  // not after yesterday
    sign("elsewhere", "ca", "other.ext", 30);
    sign("stranger", "other-ca", "local.ext", 30);
    sign("client1", "ca", "client.ext", 30);
    sign("intruder", "other-ca", "client.ext", 30);
  }
  ~Pki() {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  }
  std::string path(const std::string& file) const { return (dir / file).string(); }
  remoteable::ServerTls server(const std::string& name) const {
    remoteable::ServerTls tls;
    tls.cert_file = path(name + ".pem");
    tls.key_file = path(name + ".key");
    return tls;
  }
  remoteable::ClientTls client(const std::string& ca = "ca") const {
    remoteable::ClientTls tls;
    tls.enabled = true;
    tls.ca_file = path(ca + ".pem");
    return tls;
  }
};

inline const Pki& pki() {
  static Pki made;
  return made;
}

}  // namespace test
