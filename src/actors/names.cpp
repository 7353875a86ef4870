#include "actors/names.hpp"

#include <array>
#include <cstdio>
#include <string>

namespace remoteable {
namespace {

// Mirrors is_name_start / is_name_char of src/cli/lexer.cpp.
bool name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }

// The words the CLI's lexer turns into keyword tokens (lexer.cpp, Lexer::name).
constexpr std::array<std::string_view, 7> keywords{"true", "True", "false", "False", "none", "None", "not"};

// The name as it goes into a message: quoted, control and non-ASCII bytes escaped, and cut short,
// since it may come from a client and be long or binary.
std::string quoted(std::string_view name) {
  constexpr std::size_t shown = 64;
  std::string out = "'";
  for (std::size_t i = 0; i < name.size() && i < shown; ++i) {
    auto u = static_cast<unsigned char>(name[i]);
    if (u < 0x20 || u >= 0x7F || u == '\'' || u == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += name[i];
    }
  }
  out += name.size() > shown ? "'..." : "'";
  return out;
}

}  // namespace

std::string export_name_problem(std::string_view name) {
  constexpr std::string_view rule =
      "an export name must be one identifier the command-line client can write (an ASCII letter or '_', "
      "then letters, digits or '_', not a keyword)";
  if (name.empty()) return std::string(rule) + "; got an empty name";
  if (name.size() > max_export_name)
    return "an export name has at most " + std::to_string(max_export_name) + " bytes; got " +
           std::to_string(name.size()) + ": " + quoted(name);
  bool ok = name_start(name.front());
  for (char c : name) ok = ok && name_char(c);
  if (!ok) return std::string(rule) + "; got " + quoted(name);
  for (auto k : keywords)
    if (name == k) return std::string(rule) + "; " + quoted(name) + " is a keyword";
  return {};
}

}  // namespace remoteable
