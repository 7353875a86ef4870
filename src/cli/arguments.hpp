#pragma once
// remoteable::cli arguments: the command line of the `remoteable` client.
//
// Plain functions over plain data: no state, no threads.

#include <chrono>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include "cli/format.hpp"
#include "remoteable/tls.hpp"

namespace remoteable::cli {

/// Exit statuses of the client.
inline constexpr int exit_ok = 0;
inline constexpr int exit_remote_error = 1;  ///< the server or the connection failed
inline constexpr int exit_usage_error = 2;   ///< bad command line or expression syntax

/// A bad command line. The message says what is wrong; usage_text() says what is right.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Command {
  interactive,  ///< no command: read statements from stdin, one per line
  browse,
  describe,
  eval,
  help,
  version,  ///< --version: the library and protocol versions
};

struct Arguments {
  Command command = Command::interactive;
  std::string endpoint;    ///< "HOST:PORT" as given (parsed by Endpoint::parse)
  std::string expression;  ///< for describe and eval; several words are joined by spaces
  OutputStyle style = OutputStyle::plain;
  /// How long to wait for a connection or a reply; zero waits forever.
  std::chrono::milliseconds timeout{30'000};
  /// --tls, --tls-ca, --tls-name, --tls-cert, --tls-key: TLS to the server (off by default).
  ClientTls tls;
  /// --token-file: a file whose content (without surrounding white space) is the token to
  /// authenticate with; empty: none (then REMOTEABLE_TOKEN, if set).
  std::string token_file;
};

/// Parses the arguments after the program name. Options go before the command; everything after
/// `describe` or `eval` is the expression, even if it starts with '-'.
/// Throws UsageError.
Arguments parse_arguments(std::span<const std::string_view> args);

/// The --help text.
std::string usage_text();

/// What `help` prints in the interactive session.
std::string repl_help_text();

}  // namespace remoteable::cli
