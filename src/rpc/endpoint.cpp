// Endpoint::parse and to_string, here in the shared layer (moved from proxy/client.cpp) so that
// a server-only program does not link the client.
#include <remoteable/endpoint.hpp>

#include <charconv>
#include <stdexcept>
#include <string>

namespace remoteable {

Endpoint Endpoint::parse(std::string_view text) {
  Endpoint e;
  std::string_view port = text;
  if (auto colon = text.rfind(':'); colon != std::string_view::npos) {
    auto host = text.substr(0, colon);
    bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
    if (bracketed) host = host.substr(1, host.size() - 2);
    if (host.empty()) throw std::invalid_argument("endpoint '" + std::string(text) + "' has an empty host");
    // Brackets only around the whole host; an IPv6 address only inside them ("fe80::1" alone
    // would read as host "fe80:", port 1).
    if (host.find_first_of("[]") != host.npos || (!bracketed && host.find(':') != host.npos))
      throw std::invalid_argument("endpoint '" + std::string(text) + "': expected HOST:PORT or [IPV6]:PORT");
    e.host = std::string(host);
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || port.empty() || value > 65535)
    throw std::invalid_argument("endpoint '" + std::string(text) + "': expected HOST:PORT with a port 0..65535");
  e.port = static_cast<std::uint16_t>(value);
  return e;
}

std::string Endpoint::to_string() const {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

}  // namespace remoteable
