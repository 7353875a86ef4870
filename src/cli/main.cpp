// remoteable: a command-line client for remoteable servers.
//
//   remoteable HOST:PORT browse | describe EXPR | eval EXPR
//   remoteable HOST:PORT            (statements from stdin, one per line)
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
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cli/arguments.hpp"
#include "cli/evaluator.hpp"
#include "cli/format.hpp"
#include "cli/lexer.hpp"
#include "cli/parser.hpp"
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

/// Prints the exception in flight on stderr and returns the exit status it calls for.
/// `source` is the expression, shown with a caret under a syntax error.
int report_current_exception(std::string_view source) {
  try {
    throw;
  } catch (const SyntaxError& e) {
    std::cerr << "error (syntax): " << e.message() << " (column "
              << display_column(source, e.column()) << ")\n"
              << caret_lines(source, e.column());
    return exit_usage_error;
  } catch (const RemoteError& e) {
    std::cerr << "error (" << to_string(e.kind()) << "): " << e.message() << '\n';
    return exit_remote_error;
  } catch (const UsageError& e) {
    std::cerr << "error (usage): " << e.what() << "\ntry 'remoteable --help'\n";
    return exit_usage_error;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << '\n';
    return exit_remote_error;
  }
}

[[noreturn]] void die_of_timeout(const Arguments& args) {
  std::cerr << "error (timeout): no reply from " << args.endpoint << " within "
            << std::chrono::duration<double>(args.timeout).count() << " s\n";
  std::cout.flush();
  std::cerr.flush();
  // The pending request still refers to this stack; leave without unwinding it.
  std::_Exit(exit_remote_error);
}

/// Waits for one outcome and prints it, or its error. `source` is the expression, if any.
int print_outcome(IoThread& io, asio::awaitable<Outcome> op, const Arguments& args,
                  std::string_view source) {
  try {
    Outcome outcome = io.run(std::move(op), args.timeout);
    std::cout << format(outcome, args.style) << std::flush;
    return exit_ok;
  } catch (...) {
    return report_current_exception(source);
  }
}

/// Parses and evaluates one statement, printing its result or its error.
int run_statement(IoThread& io, const Evaluator& evaluator, const Arguments& args,
                  std::string_view source) {
  Statement statement;
  try {
    statement = parse(source);
  } catch (...) {
    return report_current_exception(source);
  }
  return print_outcome(io, evaluator.evaluate(statement), args, source);
}

int run_interactive(IoThread& io, const Client& client, const Evaluator& evaluator,
                    const Arguments& args) {
  const bool tty = ::isatty(STDIN_FILENO) != 0;
  int status = exit_ok;
  std::string line;
  for (;;) {
    if (tty) std::cerr << "> " << std::flush;
    if (!std::getline(std::cin, line)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    int code = run_statement(io, evaluator, args, line);
    status = std::max(status, code);
    if (code == exit_remote_error && !client.connected()) break;  // nothing more can work
  }
  if (tty) std::cerr << '\n';
  return status;
}

int run(const Arguments& args) {
  Endpoint endpoint;
  try {
    endpoint = Endpoint::parse(args.endpoint);
  } catch (const std::exception& e) {
    std::cerr << "error (usage): bad HOST:PORT '" << args.endpoint << "': " << e.what()
              << "\ntry 'remoteable --help'\n";
    return exit_usage_error;
  }

  // A syntax error needs no server: parse before connecting.
  Statement statement;
  ExprPtr described;
  try {
    if (args.command == Command::eval) statement = parse(args.expression);
    if (args.command == Command::describe) described = parse_expression(args.expression);
  } catch (...) {
    return report_current_exception(args.expression);
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
    return report_current_exception("");
  }
  Evaluator evaluator(*client);

  int status = exit_ok;
  switch (args.command) {
    case Command::browse: status = print_outcome(io, evaluator.browse(), args, ""); break;
    case Command::describe:
      status = print_outcome(io, evaluator.describe(*described), args, args.expression);
      break;
    case Command::eval:
      status = print_outcome(io, evaluator.evaluate(statement), args, args.expression);
      break;
    case Command::interactive: status = run_interactive(io, *client, evaluator, args); break;
    case Command::help:
    case Command::version: break;
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
    std::cerr << "error (usage): " << e.what() << "\n\n" << usage_text();
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
