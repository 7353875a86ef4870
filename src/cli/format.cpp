#include "cli/format.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <type_traits>

namespace remoteable::cli {

namespace {

// Decodes one UTF-8 sequence at s[i]. Returns its length, or 0 if it is not valid UTF-8
// (overlong forms, surrogates and code points past U+10FFFF count as invalid).
std::size_t utf8_sequence(std::string_view s, std::size_t i, std::uint32_t& cp) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  unsigned char c = b(0);
  std::size_t n;
  if (c < 0x80) {
    cp = c;
    return 1;
  } else if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(k) & 0x3F);
  }
  static constexpr std::uint32_t min_for_length[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min_for_length[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

void append_hex_escape(std::string& out, const char* prefix, unsigned value, int digits) {
  static constexpr char hex[] = "0123456789abcdef";
  out += prefix;
  for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) out += hex[(value >> shift) & 0xF];
}

// Python's choice of quote: single, unless the text holds a single quote and no double quote.
char pick_quote(std::string_view s) {
  return s.find('\'') != std::string_view::npos && s.find('"') == std::string_view::npos ? '"'
                                                                                        : '\'';
}

bool append_common_escape(std::string& out, unsigned char c, char quote) {
  switch (c) {
    case '\\': out += "\\\\"; return true;
    case '\n': out += "\\n"; return true;
    case '\r': out += "\\r"; return true;
    case '\t': out += "\\t"; return true;
    default: break;
  }
  if (c == static_cast<unsigned char>(quote)) {
    out += '\\';
    out += quote;
    return true;
  }
  return false;
}

std::string repr_text(std::string_view s) {
  char quote = pick_quote(s);
  std::string out(1, quote);
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (append_common_escape(out, c, quote)) {
      ++i;
    } else if (c < 0x20 || c == 0x7F) {
      append_hex_escape(out, "\\x", c, 2);
      ++i;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
    } else {
      std::uint32_t cp = 0;
      std::size_t n = utf8_sequence(s, i, cp);
      if (n == 0) {
        // Not text the server should send; show the byte rather than garble the terminal.
        append_hex_escape(out, "\\x", c, 2);
        ++i;
      } else if (cp < 0xA0) {
        append_hex_escape(out, "\\x", cp, 2);  // C1 control characters
        i += n;
      } else {
        out.append(s.substr(i, n));
        i += n;
      }
    }
  }
  out += quote;
  return out;
}

std::string repr_bytes(const Bytes& bytes) {
  std::string_view s(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  char quote = pick_quote(s);
  std::string out = "b";
  out += quote;
  for (std::byte byte : bytes) {
    auto c = static_cast<unsigned char>(byte);
    if (append_common_escape(out, c, quote)) continue;
    if (c < 0x20 || c >= 0x7F) append_hex_escape(out, "\\x", c, 2);
    else out += static_cast<char>(c);
  }
  out += quote;
  return out;
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': out += "\\\""; ++i; continue;
      case '\\': out += "\\\\"; ++i; continue;
      case '\b': out += "\\b"; ++i; continue;
      case '\f': out += "\\f"; ++i; continue;
      case '\n': out += "\\n"; ++i; continue;
      case '\r': out += "\\r"; ++i; continue;
      case '\t': out += "\\t"; ++i; continue;
      default: break;
    }
    if (c < 0x20) {
      append_hex_escape(out, "\\u", c, 4);
      ++i;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
    } else {
      std::uint32_t cp = 0;
      std::size_t n = utf8_sequence(s, i, cp);
      if (n == 0) {
        out += "\\ufffd";  // JSON must be valid UTF-8
        ++i;
      } else {
        out.append(s.substr(i, n));
        i += n;
      }
    }
  }
  out += '"';
  return out;
}

std::string base64(const Bytes& bytes) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  auto at = [&](std::size_t k) { return static_cast<std::uint32_t>(bytes[k]); };
  for (; i + 3 <= bytes.size(); i += 3) {
    std::uint32_t v = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    std::uint32_t v = at(i) << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    std::uint32_t v = (at(i) << 16) | (at(i + 1) << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

// The type names of a value's handles, handed out in the order the printers meet them.
struct HandleTypes {
  const std::vector<std::string>* types = nullptr;
  std::size_t next = 0;
  std::string take() {
    if (!types || next >= types->size()) return {};
    return (*types)[next++];
  }
};

void repr_to(std::string& out, const Value& value, HandleTypes& types) {
  std::visit(
      [&](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, None>) {
          out += "none";
        } else if constexpr (std::is_same_v<V, bool>) {
          out += v ? "true" : "false";
        } else if constexpr (std::is_same_v<V, std::int64_t>) {
          out += std::to_string(v);
        } else if constexpr (std::is_same_v<V, double>) {
          out += format_float(v);
        } else if constexpr (std::is_same_v<V, std::string>) {
          out += repr_text(v);
        } else if constexpr (std::is_same_v<V, Bytes>) {
          out += repr_bytes(v);
        } else if constexpr (std::is_same_v<V, Value::List>) {
          out += '[';
          bool first = true;
          for (auto& item : v) {
            if (!first) out += ", ";
            first = false;
            repr_to(out, item, types);
          }
          out += ']';
        } else if constexpr (std::is_same_v<V, Value::Map>) {
          out += '{';
          bool first = true;
          for (auto& [key, item] : v) {
            if (!first) out += ", ";
            first = false;
            out += repr_text(key);
            out += ": ";
            repr_to(out, item, types);
          }
          out += '}';
        } else {
          static_assert(std::is_same_v<V, Handle>);
          std::string type = types.take();
          out += type.empty() ? "<handle>" : "<" + type + " handle>";
        }
      },
      value.storage());
}

void json_to(std::string& out, const Value& value, HandleTypes& types) {
  std::visit(
      [&](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, None>) {
          out += "null";
        } else if constexpr (std::is_same_v<V, bool>) {
          out += v ? "true" : "false";
        } else if constexpr (std::is_same_v<V, std::int64_t>) {
          out += std::to_string(v);
        } else if constexpr (std::is_same_v<V, double>) {
          out += std::isfinite(v) ? format_float(v) : "null";
        } else if constexpr (std::is_same_v<V, std::string>) {
          out += json_string(v);
        } else if constexpr (std::is_same_v<V, Bytes>) {
          out += "{\"$bytes\":\"" + base64(v) + "\"}";
        } else if constexpr (std::is_same_v<V, Value::List>) {
          out += '[';
          bool first = true;
          for (auto& item : v) {
            if (!first) out += ',';
            first = false;
            json_to(out, item, types);
          }
          out += ']';
        } else if constexpr (std::is_same_v<V, Value::Map>) {
          out += '{';
          bool first = true;
          for (auto& [key, item] : v) {
            if (!first) out += ',';
            first = false;
            out += json_string(key);
            out += ':';
            json_to(out, item, types);
          }
          out += '}';
        } else {
          static_assert(std::is_same_v<V, Handle>);
          std::string type = types.take();
          out += type.empty() ? "{\"$handle\":true}" : "{\"$handle\":true,\"type\":" + json_string(type) + "}";
        }
      },
      value.storage());
}

}  // namespace

std::string format_float(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value < 0 ? "-inf" : "inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<std::size_t>(end - buf));  // "-1.2345e+02"
  std::string out;
  if (sci.front() == '-') {
    out += '-';
    sci.remove_prefix(1);
  }
  std::size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos))
    if (c != '.') digits += c;
  int exponent = std::atoi(std::string(sci.substr(e_pos + 1)).c_str());

  if (exponent >= -4 && exponent < 16) {
    if (exponent >= 0) {
      auto int_len = static_cast<std::size_t>(exponent) + 1;
      if (digits.size() < int_len) digits.append(int_len - digits.size(), '0');
      out += digits.substr(0, int_len);
      out += '.';
      out += digits.size() > int_len ? digits.substr(int_len) : "0";
    } else {
      out += "0.";
      out.append(static_cast<std::size_t>(-exponent - 1), '0');
      out += digits;
    }
    return out;
  }
  out += digits[0];
  if (digits.size() > 1) {
    out += '.';
    out += digits.substr(1);
  }
  out += exponent < 0 ? "e-" : "e+";
  int magnitude = std::abs(exponent);
  if (magnitude < 10) out += '0';
  out += std::to_string(magnitude);
  return out;
}

std::string format_repr(const Value& value, const std::vector<std::string>& handle_types) {
  std::string out;
  HandleTypes types{&handle_types};
  repr_to(out, value, types);
  return out;
}

std::string format_plain(const Value& value, const std::vector<std::string>& handle_types) {
  if (auto* s = std::get_if<std::string>(&value.storage())) return *s;
  return format_repr(value, handle_types);
}

std::string format_json(const Value& value, const std::vector<std::string>& handle_types) {
  std::string out;
  HandleTypes types{&handle_types};
  json_to(out, value, types);
  return out;
}

std::string json_quote(std::string_view text) { return json_string(text); }

namespace {

std::string json_strings(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + json_string(items[i]);
  return out + "]";
}

/// describe's answer. Plain: the type, then one aligned row per member (name, kind, then the
/// value's kind or each signature on a row of its own), calling the object itself first.
std::string format_description(const Description& d, bool json) {
  if (json) {
    std::string out = "{\"type\":" + json_string(d.type_name);
    if (!d.signatures.empty()) out += ",\"signatures\":" + json_strings(d.signatures);
    out += ",\"members\":[";
    bool first = true;
    for (auto& m : d.members) {
      if (!first) out += ',';
      first = false;
      out += "{\"name\":" + json_string(m.name) + ",\"kind\":" + json_string(m.kind);
      if (!m.type.empty()) out += ",\"type\":" + json_string(m.type);
      if (!m.signatures.empty()) out += ",\"signatures\":" + json_strings(m.signatures);
      out += '}';
    }
    return out + "]}\n";
  }
  std::size_t name_width = 0, kind_width = 0;
  if (!d.signatures.empty()) kind_width = 4;  // "call"
  for (auto& m : d.members) {
    name_width = std::max(name_width, m.name.size());
    kind_width = std::max(kind_width, m.kind.size());
  }
  auto row = [&](std::string_view name, std::string_view kind, std::string_view detail) {
    std::string line = "  " + std::string(name);
    line.append(name_width - name.size() + 2, ' ');
    line += kind;
    if (!detail.empty()) {
      line.append(kind_width - kind.size() + 2, ' ');
      line += detail;
    }
    return line + '\n';
  };
  std::string out = d.type_name + '\n';
  for (std::size_t i = 0; i < d.signatures.size(); ++i) out += row("", i == 0 ? "call" : "", d.signatures[i]);
  for (auto& m : d.members) {
    if (m.signatures.empty()) {
      out += row(m.name, m.kind, m.type);
      continue;
    }
    for (std::size_t i = 0; i < m.signatures.size(); ++i)
      out += row(i == 0 ? std::string_view(m.name) : "", i == 0 ? std::string_view(m.kind) : "", m.signatures[i]);
  }
  return out;
}

}  // namespace

std::string format(const Outcome& outcome, OutputStyle style, const std::vector<std::string>& handle_types) {
  bool json = style == OutputStyle::json;
  return std::visit(
      [&](const auto& o) -> std::string {
        using O = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<O, NoResult>) {
          return "";
        } else if constexpr (std::is_same_v<O, Value>) {
          return (json ? format_json(o, handle_types) : format_plain(o, handle_types)) + '\n';
        } else if constexpr (std::is_same_v<O, Description>) {
          return format_description(o, json);
        } else {
          static_assert(std::is_same_v<O, ExportNames>);
          std::string out;
          if (json) {
            out = "[";
            bool first = true;
            for (auto& name : o.names) {
              if (!first) out += ',';
              first = false;
              out += json_string(name);
            }
            return out + "]\n";
          }
          for (auto& name : o.names) out += name + '\n';
          return out;
        }
      },
      outcome);
}

}  // namespace remoteable::cli
