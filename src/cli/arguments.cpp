#include "cli/arguments.hpp"

#include <charconv>
#include <cmath>
#include <optional>
#include <vector>

#include "cli/suggest.hpp"

namespace remoteable::cli {

std::string usage_text() {
  return R"(usage: remoteable [OPTIONS] HOST:PORT [COMMAND]

Commands:
  browse           list the names the server exports
  describe EXPR    show the type and members of an object, e.g. an export NAME
  eval EXPR        evaluate one expression and print its value
  (none)           read expressions from standard input, one per line, and print each value

Options:
  --json           print results as JSON
  --timeout SECS   give up waiting for the server after SECS seconds (default 30, 0 = never)
  --tls            connect with TLS, checking the server's certificate against the
                   system's CAs and its name against HOST
  --tls-ca FILE    TLS, checking the server's certificate against the CAs in FILE (PEM)
  --tls-name NAME  TLS, expecting a certificate for NAME instead of HOST
  --tls-cert FILE  TLS, presenting the client certificate in FILE (PEM; needs --tls-key)
  --tls-key FILE   the key of --tls-cert (PEM)
  --token-file FILE
                   authenticate with the token in FILE (default: $REMOTEABLE_TOKEN, if set)
  --version        print the library and protocol versions
  -h, --help       show this help

Expressions are Python-like: export names, literals (1, 2.5, 'text', "text", b'bytes', true,
false, none, [lists], {'maps': 1}), x.attr, f(a, b), x[key], unary - ~ ! not, binary
* / % + - << >> & ^ | == != < <= > >=, and, or, parentheses, and the statements x.attr = EXPR,
x[key] = EXPR and let NAME = EXPR. Builtins: store(EXPR), len(EXPR), str(EXPR), bool(EXPR),
attach(EXPR, "name"), detach("name"), browse(), describe(EXPR). An expression costs one round
trip (and each and/or one more). On a terminal, type 'help' for the keys.

Errors go to stderr, one a line ("error (KIND): MESSAGE"); under --json as
{"error":{"kind":...,"message":...}}.
Exit status: 0 on success, 1 when the server or connection fails, 2 for usage or syntax errors.
)";
}

std::string repl_help_text() {
  return R"(Type an expression to see its value, or a statement to act:
  root.child(0).value + 1      a chain of calls, one round trip
  root.value = 5               set an attribute (x[key] = v sets an item)
  let n = root.child(0)        keep a value or handle under a local name for later lines
  n.value > 1 and not five     and / or / not, as in Python
  describe(n)    browse()      an object's type and members; the server's exports
  attach(n, 'x') detach('x')   export an object under a name; remove the name
  store(v) len(v) str(v) bool(v)
A local name (let) hides an export of the same name. 'help' shows this, 'exit' or Ctrl-D leaves.
Keys: Up/Down walk the history (kept in ~/.remoteable_history, or $REMOTEABLE_HISTORY), Ctrl-R
searches it, Tab completes exports, local names and, after a '.', members (from describe; it
reads the attributes on the path, never calls), Left/Right/Home/End/Ctrl-A/Ctrl-E move.
)";
}

namespace {

std::chrono::milliseconds parse_timeout(std::string_view text) {
  double seconds = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(seconds) ||
      seconds < 0 || seconds > 1e9)
    throw UsageError("--timeout wants a number of seconds, got '" + std::string(text) + "'");
  return std::chrono::milliseconds(static_cast<long long>(std::ceil(seconds * 1000)));
}

/// The value of an option that takes one: `--name VALUE` or `--name=VALUE`. Advances i past
/// VALUE in the first form. Empty when `arg` is not `name`.
std::optional<std::string> option_value(std::string_view name, std::span<const std::string_view> args, std::size_t& i,
                                        std::string_view what) {
  std::string_view arg = args[i];
  if (arg == name) {
    if (i + 1 >= args.size()) throw UsageError(std::string(name) + " needs " + std::string(what));
    return std::string(args[++i]);
  }
  if (arg.size() > name.size() && arg.starts_with(name) && arg[name.size()] == '=')
    return std::string(arg.substr(name.size() + 1));
  return std::nullopt;
}

std::optional<Command> command_named(std::string_view word) {
  if (word == "browse") return Command::browse;
  if (word == "describe") return Command::describe;
  if (word == "eval") return Command::eval;
  return std::nullopt;
}

}  // namespace

Arguments parse_arguments(std::span<const std::string_view> args) {
  Arguments out;
  std::size_t i = 0;
  bool options_done = false;
  bool have_endpoint = false;
  for (; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (!options_done && arg.size() > 1 && arg[0] == '-') {
      if (arg == "--") {
        options_done = true;
      } else if (arg == "-h" || arg == "--help") {
        out.command = Command::help;
        return out;
      } else if (arg == "--version") {
        out.command = Command::version;
        return out;
      } else if (arg == "--json") {
        out.style = OutputStyle::json;
      } else if (auto seconds = option_value("--timeout", args, i, "a number of seconds")) {
        out.timeout = parse_timeout(*seconds);
      } else if (arg == "--tls") {
        out.tls.enabled = true;
      } else if (auto file = option_value("--tls-ca", args, i, "a PEM file of CA certificates")) {
        out.tls.enabled = true;
        out.tls.ca_file = *file;
      } else if (auto name = option_value("--tls-name", args, i, "the name the server's certificate is for")) {
        out.tls.enabled = true;
        out.tls.server_name = *name;
      } else if (auto cert = option_value("--tls-cert", args, i, "a PEM certificate file")) {
        out.tls.enabled = true;
        out.tls.cert_file = *cert;
      } else if (auto key = option_value("--tls-key", args, i, "a PEM key file")) {
        out.tls.enabled = true;
        out.tls.key_file = *key;
      } else if (auto file = option_value("--token-file", args, i, "a file name")) {
        if (file->empty()) throw UsageError("--token-file needs a file name");
        out.token_file = *file;
      } else {
        static const std::vector<std::string> options{"--json", "--timeout", "--version", "--help"};
        auto close = similar_names(arg, options, 1);
        throw UsageError("unknown option '" + std::string(arg) + "'" +
                         (close.empty() ? "" : ";" + did_you_mean(close)));
      }
      continue;
    }
    if (!have_endpoint) {
      out.endpoint = std::string(arg);
      have_endpoint = true;
      continue;
    }
    auto command = command_named(arg);
    if (!command) {
      static const std::vector<std::string> commands{"browse", "describe", "eval"};
      auto close = similar_names(arg, commands, 1);
      throw UsageError("unknown command '" + std::string(arg) + "'" +
                       (close.empty() ? " (expected browse, describe or eval)" : ";" + did_you_mean(close)));
    }
    out.command = *command;
    ++i;
    break;
  }
  if (!have_endpoint) throw UsageError("missing HOST:PORT");
  if (out.tls.cert_file.empty() != out.tls.key_file.empty())
    throw UsageError("--tls-cert and --tls-key go together");

  std::span<const std::string_view> rest = args.subspan(i);
  if (out.command == Command::browse && !rest.empty())
    throw UsageError("browse takes no arguments");
  if (out.command == Command::describe || out.command == Command::eval) {
    for (auto word : rest) {
      if (!out.expression.empty()) out.expression += ' ';
      out.expression += word;
    }
    if (out.expression.find_first_not_of(" \t\n\r") == std::string::npos)
      throw UsageError(std::string(out.command == Command::eval ? "eval" : "describe") +
                       " needs an expression");
  }
  return out;
}

}  // namespace remoteable::cli
