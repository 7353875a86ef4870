#pragma once
// Scrapes a metrics endpoint as Prometheus would: over HTTP, parsed by a real Prometheus parser
// (Debian's python3-prometheus-client, run by Debian's own python).

#include <catch2/catch.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "process.hpp"

namespace test {

/// One scrape: every sample, and the type of every family, as the parser read them.
struct Scrape {
  /// "name{k=v,k=v}" (labels sorted by name) to the sample's value.
  std::map<std::string, double> samples;
  /// Family name (without _total for counters, as the parser names them) to its type.
  std::map<std::string, std::string> types;

  static std::string key(const std::string& name, const std::map<std::string, std::string>& labels) {
    std::string k = name + "{";
    for (auto& [label, value] : labels) k += (k.back() == '{' ? "" : ",") + label + "=" + value;
    return k + "}";
  }
  /// The sample's value, if the scrape has it.
  std::optional<double> value(const std::string& name, const std::map<std::string, std::string>& labels = {}) const {
    auto it = samples.find(key(name, labels));
    if (it == samples.end()) return std::nullopt;
    return it->second;
  }
  /// The sample's value, 0 if absent (a series not made yet).
  double count(const std::string& name, const std::map<std::string, std::string>& labels = {}) const {
    return value(name, labels).value_or(0);
  }
  /// Whether any sample's name or labels contain `text`.
  bool mentions(std::string_view text) const {
    for (auto& [k, v] : samples)
      if (k.find(text) != std::string::npos) return true;
    return false;
  }
};

/// GETs http://127.0.0.1:PORT/metrics and parses it with prometheus_client's text parser; the
/// test fails if the request or the parse fails (bounded by the urllib timeout and read_line).
inline Scrape scrape(std::uint16_t port, std::string path = "/metrics") {
  static const char* const script = R"(
import sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
text = urllib.request.urlopen(sys.argv[1], timeout=20).read().decode()
for f in text_string_to_metric_families(text):
    print("# TYPE", f.name, f.type)
    for s in f.samples:
        labels = ",".join(k + "=" + v for k, v in sorted(s.labels.items()))
        print(s.name + "{" + labels + "} " + repr(float(s.value)))
print("# END")
)";
  Process python({"/usr/bin/python3", "-c", script, "http://127.0.0.1:" + std::to_string(port) + path});
  Scrape out;
  bool ended = false;
  while (auto line = python.read_line(std::chrono::seconds(30))) {
    if (*line == "# END") {
      ended = true;
      break;
    }
    if (line->rfind("# TYPE ", 0) == 0) {
      auto rest = line->substr(7);
      auto space = rest.find(' ');
      out.types[rest.substr(0, space)] = rest.substr(space + 1);
      continue;
    }
    auto space = line->rfind(' ');
    REQUIRE(space != std::string::npos);
    out.samples[line->substr(0, space)] = std::stod(line->substr(space + 1));
  }
  INFO("scraping port " << port << path << " (python's error, if any, is on stderr)");
  REQUIRE(ended);
  return out;
}

}  // namespace test
