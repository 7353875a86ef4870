// remoteable: a command-line client for remoteable servers.
//
//   remoteable HOST:PORT browse | describe EXPR | eval EXPR
//   remoteable HOST:PORT            (statements from stdin, one per line; a REPL on a terminal)
//
// Threads: an io thread runs the connection; the main thread reads arguments and stdin, waits
// for each statement with a deadline, and prints.

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cli/arguments.hpp"
#include "cli/evaluator.hpp"
#include "cli/format.hpp"
#include "cli/lexer.hpp"
#include "cli/line_reader.hpp"
#include "cli/parser.hpp"
#include "cli/suggest.hpp"
#include <remoteable/client.hpp>
#include <spdlog/spdlog.h>
#include <remoteable/endpoint.hpp>
#include <remoteable/error.hpp>

namespace {

using namespace remoteable;
using namespace remoteable::cli;

/// Runs an io_context on a background thread for the life of the client.
///
/// Owns the thread (the lambda's `this` is the owner, joined in the destructor). Destruction lets
/// queued work drain for a moment, so a closed connection can say goodbye, then stops the context
/// and joins. `on_timeout` is called on the waiting thread when a reply is late; it must end the
/// process, since the late request still refers to the waiter's stack.
class IoThread {
 public:
  explicit IoThread(std::function<void()> on_timeout)
      : on_timeout_(std::move(on_timeout)),
        guard_(asio::make_work_guard(ctx_)),
        thread_([this] { serve(); }) {}
  ~IoThread() {
    guard_.reset();
    if (stopped_.wait_for(std::chrono::seconds(1)) != std::future_status::ready) ctx_.stop();
    thread_.join();
  }
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;

  asio::any_io_executor executor() { return ctx_.get_executor(); }

  /// Runs `op` on the io thread and waits for it, at most `timeout` (zero: forever).
  /// Returns its result or rethrows its exception; calls on_timeout when the deadline passes.
  template <class T>
  T run(asio::awaitable<T> op, std::chrono::milliseconds timeout) {
    auto promise = std::make_shared<std::promise<T>>();
    std::future<T> result = promise->get_future();
    asio::co_spawn(ctx_, fulfil(promise, std::move(op)), asio::detached);
    if (timeout.count() > 0 && result.wait_for(timeout) != std::future_status::ready) {
      on_timeout_();
      std::abort();  // on_timeout must not return
    }
    return result.get();
  }

 private:
  // Catches everything, so the detached spawn above cannot lose an error.
  template <class T>
  static asio::awaitable<void> fulfil(std::shared_ptr<std::promise<T>> promise,
                                      asio::awaitable<T> op) {
    try {
      if constexpr (std::is_void_v<T>) {
        co_await std::move(op);
        promise->set_value();
      } else {
        T result = co_await std::move(op);  // a named local: GCC 12 coroutine bug
        promise->set_value(std::move(result));
      }
    } catch (...) {
      promise->set_exception(std::current_exception());
    }
  }

  void serve() {
    for (;;) {
      try {
        ctx_.run();
        break;
      } catch (const std::exception& e) {
        std::cerr << "remoteable: internal error on the io thread: " << e.what() << '\n';
      }
    }
    done_.set_value();
  }

  std::function<void()> on_timeout_;
  asio::io_context ctx_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::promise<void> done_;
  std::future<void> stopped_ = done_.get_future();
  std::thread thread_;
};

/// The token to authenticate with: the content of --token-file without surrounding white space,
/// else REMOTEABLE_TOKEN's value, else none. A file that cannot be read, or holds no token, is a
/// usage error.
std::optional<std::string> token_of(const Arguments& args) {
  auto trimmed = [](std::string text) {
    auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) return std::string();
    return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
  };
  if (!args.token_file.empty()) {
    std::ifstream in(args.token_file, std::ios::binary);
    if (!in) throw UsageError("cannot read the token file '" + args.token_file + "'");
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) throw UsageError("cannot read the token file '" + args.token_file + "'");
    auto token = trimmed(std::move(content));
    if (token.empty()) throw UsageError("the token file '" + args.token_file + "' holds no token");
    return token;
  }
  const char* env = std::getenv("REMOTEABLE_TOKEN");
  auto token = trimmed(env == nullptr ? "" : env);
  if (token.empty()) return std::nullopt;
  return token;
}

/// A failure to print: what kind, what it says, the exit status it calls for.
struct Failure {
  std::string kind;     ///< "syntax", "usage", "session", a RemoteError kind; empty: other
  std::string message;
  int status = exit_remote_error;
  std::optional<std::size_t> column;  ///< syntax errors: the 1-based display column
  std::string caret;                  ///< syntax errors: the source with a caret under it
  std::optional<RemoteError> remote;
  std::vector<std::string> suggestions;  ///< "did you mean"
};

/// The exception in flight as a Failure. `source` is the expression, shown with a caret under a
/// syntax error.
Failure current_failure(std::string_view source) {
  Failure f;
  try {
    throw;
  } catch (const SyntaxError& e) {
    f = {"syntax", e.message(), exit_usage_error, display_column(source, e.column()),
         caret_lines(source, e.column()), std::nullopt, {}};
  } catch (const RemoteError& e) {
    f.kind = std::string(to_string(e.kind()));
    f.message = e.message();
    f.remote = e;
  } catch (const UsageError& e) {
    f.kind = "usage";
    f.message = e.what();
    f.status = exit_usage_error;
  } catch (const SessionError& e) {
    f.kind = "session";
    f.message = e.what();
    f.status = exit_usage_error;
  } catch (const std::exception& e) {
    f.message = e.what();
  }
  return f;
}

/// Writes a failure to stderr: plain, one line "error (KIND): MESSAGE[; did you mean 'x'?]" (a
/// usage error adds where help is; a syntax error its column, then the caret lines), or under
/// --json one line
/// {"error":{"kind":...,"message":...,"column":N,"did_you_mean":[...]}}.
void print_failure(const Failure& f, OutputStyle style) {
  std::string out;
  if (style == OutputStyle::json) {
    out = "{\"error\":{\"kind\":" + json_quote(f.kind.empty() ? "error" : f.kind) +
          ",\"message\":" + json_quote(f.message);
    if (f.column) out += ",\"column\":" + std::to_string(*f.column);
    if (!f.suggestions.empty()) {
      out += ",\"did_you_mean\":[";
      for (std::size_t i = 0; i < f.suggestions.size(); ++i)
        out += (i ? "," : "") + json_quote(f.suggestions[i]);
      out += ']';
    }
    out += "}}\n";
  } else {
    out = f.kind.empty() ? "error: " : "error (" + f.kind + "): ";
    out += f.message;
    if (!f.suggestions.empty()) out += ";" + did_you_mean(f.suggestions);
    if (f.column) out += " (column " + std::to_string(*f.column) + ")";
    if (f.kind == "usage") out += " (see remoteable --help)";
    out += '\n';
    out += f.caret;
  }
  std::cout.flush();
  std::cerr << out << std::flush;
}

[[noreturn]] void die_of_timeout(const Arguments& args) {
  Failure f;
  f.kind = "timeout";
  std::ostringstream message;
  message << "no reply from " << args.endpoint << " within "
          << std::chrono::duration<double>(args.timeout).count() << " s";
  f.message = message.str();
  print_failure(f, args.style);
  std::cout.flush();
  std::cerr.flush();
  // The pending request still refers to this stack; leave without unwinding it.
  std::_Exit(exit_remote_error);
}

/// One connection's session: evaluates statements and prints their results or errors.
class Session {
 public:
  Session(IoThread& io, Client& client, const Arguments& args) : io_(io), client_(client), args_(args), evaluator_(client) {}

  /// Parses and evaluates one statement, printing its result or its error.
  int run_statement(std::string_view source) {
    Statement statement;
    try {
      statement = parse(source);
    } catch (...) {
      print_failure(current_failure(source), args_.style);
      return exit_usage_error;
    }
    return run(statement, source, [&] { return evaluator_.evaluate(statement); });
  }

  /// `describe EXPR` from the command line.
  int describe(const Expr& expr, std::string_view source) {
    Statement statement;  // for suggestions: the expression read (parsed again, it parsed once)
    statement.value = parse_expression(source);
    return run(statement, source, [&] { return evaluator_.describe(expr); });
  }

  int browse() {
    return run(Statement{}, "", [&] { return evaluator_.browse(); });
  }

  /// Tab completion candidates; none if the server fails to say.
  std::vector<std::string> completions(const std::string& line_before_cursor) {
    try {
      return io_.run(evaluator_.completions(line_before_cursor), args_.timeout);
    } catch (...) {
      return {};
    }
  }

 private:
  template <class Make>
  int run(const Statement& statement, std::string_view source, Make make) {
    Outcome outcome;
    try {
      outcome = io_.run(make(), args_.timeout);
    } catch (...) {
      Failure f = current_failure(source);
      if (f.remote && statement.value && client_.connected()) {
        try {
          f.suggestions = io_.run(evaluator_.suggestions(statement, *f.remote), args_.timeout);
        } catch (...) {
          // No suggestion, then: the error itself is what matters.
        }
      }
      print_failure(f, args_.style);
      return f.status;
    }
    std::vector<std::string> types;
    if (auto* value = std::get_if<Value>(&outcome); value && contains_handle(*value)) {
      try {
        types = io_.run(evaluator_.handle_types(*value), args_.timeout);
      } catch (...) {
        // Printed untyped.
      }
    }
    std::cout << format(outcome, args_.style, types) << std::flush;
    return exit_ok;
  }

  IoThread& io_;
  Client& client_;
  const Arguments& args_;
  Evaluator evaluator_;
};

std::string trimmed(std::string_view line) {
  auto first = line.find_first_not_of(" \t");
  if (first == std::string_view::npos) return "";
  auto last = line.find_last_not_of(" \t");
  return std::string(line.substr(first, last - first + 1));
}

int run_interactive(Session& session, const Client& client, const Arguments& args) {
  const bool tty = ::isatty(STDIN_FILENO) != 0;
  LineReader reader(tty, tty ? default_history_file() : "",
                    [&session](const std::string& before) { return session.completions(before); });
  int status = exit_ok;
  while (auto line = reader.read("> ")) {
    std::string word = trimmed(*line);
    if (word.empty() || word[0] == '#') continue;
    if (word == "help" || word == "?") {
      std::cout << repl_help_text() << std::flush;
      continue;
    }
    if (word == "exit" || word == "quit") break;
    int code = session.run_statement(*line);
    status = std::max(status, code);
    if (code == exit_remote_error && !client.connected()) break;  // nothing more can work
  }
  if (tty) std::cerr << '\n';
  (void)args;
  return status;
}

int run(const Arguments& args) {
  Endpoint endpoint;
  try {
    endpoint = Endpoint::parse(args.endpoint);
  } catch (const std::exception& e) {
    Failure f;
    f.kind = "usage";
    f.message = "bad HOST:PORT '" + args.endpoint + "': " + e.what();
    f.status = exit_usage_error;
    print_failure(f, args.style);
    return exit_usage_error;
  }

  // A syntax error needs no server: parse before connecting.
  Statement statement;
  ExprPtr described;
  try {
    if (args.command == Command::eval) statement = parse(args.expression);
    if (args.command == Command::describe) described = parse_expression(args.expression);
  } catch (...) {
    print_failure(current_failure(args.expression), args.style);
    return exit_usage_error;
  }

  // Declared first, destroyed last: the client's last references drop while it still runs.
  IoThread io([&args] { die_of_timeout(args); });
  std::optional<Client> client;
  try {
    // The client library logs connecting and closing at info, spdlog's default level: the
    // command line keeps to warnings unless REMOTEABLE_LOG asks for more.
    remoteable::ClientOptions options;
    options.tls = args.tls;
    const char* env = std::getenv("REMOTEABLE_LOG");
    if (env == nullptr || *env == '\0') options.log_level = spdlog::level::warn;
    options.token = token_of(args);
    client.emplace(io.run(Client::connect(io.executor(), endpoint, std::move(options)), args.timeout));
  } catch (...) {
    Failure f = current_failure("");
    print_failure(f, args.style);
    return f.status;
  }

  int status = exit_ok;
  {
    Session session(io, *client, args);
    switch (args.command) {
      case Command::browse: status = session.browse(); break;
      case Command::describe: status = session.describe(*described, args.expression); break;
      case Command::eval: status = session.run_statement(args.expression); break;
      case Command::interactive: status = run_interactive(session, *client, args); break;
      case Command::help:
      case Command::version: break;
    }
  }
  client->close();
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> words(argv + 1, argv + argc);
  Arguments args;
  try {
    args = parse_arguments(words);
  } catch (const UsageError& e) {
    // The style is not known yet when the arguments fail: --json anywhere asks for JSON.
    bool json = std::find(words.begin(), words.end(), "--json") != words.end();
    Failure f;
    f.kind = "usage";
    f.message = e.what();
    f.status = exit_usage_error;
    print_failure(f, json ? OutputStyle::json : OutputStyle::plain);
    return exit_usage_error;
  }
  if (args.command == Command::help) {
    std::cout << usage_text();
    return exit_ok;
  }
  if (args.command == Command::version) {
    std::cout << "remoteable " << remoteable::version << " (protocol " << remoteable::protocol_version << ")\n";
    return exit_ok;
  }
  return run(args);
}
