// Endpoint::parse and Endpoint::to_string (src/rpc/endpoint.hpp): the three documented forms,
// round trips, and every malformed address refused with std::invalid_argument.

#include <remoteable/endpoint.hpp>

#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>
#include <vector>

using remoteable::Endpoint;

namespace {

struct Parsed {
  std::string text, host;
  unsigned port;
};

}  // namespace

TEST_CASE("HOST:PORT gives that host and port") {
  for (const auto& c : std::vector<Parsed>{{"127.0.0.1:3000", "127.0.0.1", 3000},
                                           {"localhost:1", "localhost", 1},
                                           {"example.org:65535", "example.org", 65535},
                                           {"10.0.0.2:0", "10.0.0.2", 0},  // 0: any free port
                                           {"host:007", "host", 7}}) {
    CAPTURE(c.text);
    auto e = Endpoint::parse(c.text);
    CHECK(e.host == c.host);
    CHECK(e.port == c.port);
  }
}

TEST_CASE("PORT alone keeps the default host") {
  auto e = Endpoint::parse("4567");
  CHECK(e.host == Endpoint{}.host);
  CHECK(e.port == 4567);
  CHECK(Endpoint::parse("0").port == 0);
  CHECK(Endpoint::parse("65535").port == 65535);
}

TEST_CASE("[V6ADDR]:PORT gives the address without its brackets") {
  for (const auto& c : std::vector<Parsed>{{"[::1]:3000", "::1", 3000},
                                           {"[fe80::1%eth0]:80", "fe80::1%eth0", 80},
                                           {"[2001:db8::42]:65535", "2001:db8::42", 65535},
                                           {"[::]:0", "::", 0}}) {
    CAPTURE(c.text);
    auto e = Endpoint::parse(c.text);
    CHECK(e.host == c.host);
    CHECK(e.port == c.port);
  }
}

TEST_CASE("to_string writes HOST:PORT, with brackets around an IPv6 address") {
  CHECK(Endpoint{"127.0.0.1", 3000}.to_string() == "127.0.0.1:3000");
  CHECK(Endpoint{"localhost", 0}.to_string() == "localhost:0");
  CHECK(Endpoint{"::1", 65535}.to_string() == "[::1]:65535");
  CHECK(Endpoint{"2001:db8::42", 8}.to_string() == "[2001:db8::42]:8");
}

TEST_CASE("parse reads back what to_string writes") {
  for (const auto& e : std::vector<Endpoint>{{"127.0.0.1", 3000}, {"localhost", 0}, {"example.org", 65535},
                                             {"::1", 1}, {"fe80::1%eth0", 80}, {"::", 0}}) {
    CAPTURE(e.host, e.port);
    auto back = Endpoint::parse(e.to_string());
    CHECK(back.host == e.host);
    CHECK(back.port == e.port);
    CHECK(back.to_string() == e.to_string());
  }
}

TEST_CASE("malformed endpoints are refused with std::invalid_argument") {
  for (const char* text : {
           "",                 // nothing
           ":",                // no host, no port
           ":3000",            // no host
           "host:",            // no port
           "host",             // no port, and not a number
           "host:65536",       // port too large
           "host:4294967296",  // port past 32 bits
           "99999999999999999999",
           "65536",
           "host:-1",          // negative
           "-1",
           "host:+80",         // a sign
           "host:80x",         // trailing junk
           "host:80 ",
           "host: 80",
           "host:0x50",
           " ",
           "[::1]",            // brackets but no port
           "[::1]80",          // no colon after the bracket
           "[]:80",            // empty address
           "[::1:80",          // missing closing bracket
           "::1]:80",          // missing opening bracket
           "[a]b:80",          // junk after the bracket
           "a[b]:80",          // junk before it
           "::1:80",           // IPv6 without brackets: which colon starts the port?
           "fe80::1",          // an IPv6 address alone would read as host "fe80:", port 1
           "h:o:s:t:80",
       }) {
    CAPTURE(text);
    CHECK_THROWS_AS(Endpoint::parse(text), std::invalid_argument);
  }
}

TEST_CASE("the error names the text that was refused") {
  try {
    Endpoint::parse("nowhere:http");
    FAIL("expected std::invalid_argument");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("nowhere:http") != std::string::npos);
  }
}
