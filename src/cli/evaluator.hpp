#pragma once
// remoteable::cli::Evaluator: runs parsed CLI statements on a server as pipelined Handle chains.

#include <asio/awaitable.hpp>

#include <cstddef>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/outcome.hpp"
#include "cli/parser.hpp"
#include <remoteable/client.hpp>
#include <remoteable/error.hpp>

namespace remoteable::cli {

/// True if `value` is a handle or holds one (in a list or map, at any depth).
bool contains_handle(const Value& value);

/// A failure of the session itself, not of the server: too many local names.
class SessionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Evaluates statements against one connection, and keeps the session's local names.
///
/// Each statement costs one round trip: the whole expression becomes a chain of Handle
/// operations, which return at once and are pipelined, and only the end of the chain is awaited
/// (get(), or str()/truthy() for str(...)/bool(...), or set()/set_item() for an assignment).
/// Literal operands travel as values. A statement made only of literals is printed without
/// asking the server; one that applies an operator to literals alone stores the left operand
/// first, so the server's semantics apply. `and`/`or` cost one more round trip each, for the
/// truth of their left operand; the operands of and/or are evaluated before the rest of the
/// expression.
///
/// `let NAME = EXPR` evaluates EXPR (its value, as get() returns it: a plain value or a handle)
/// and keeps it under NAME for later statements, at most max_names names. A local name hides
/// an export of the same name.
///
/// Ownership and threads: holds a copy of the Client (a shared reference to the connection).
/// The coroutines run on whichever executor awaits them, one at a time (the local names are
/// not guarded). The statement must outlive the await.
class Evaluator {
 public:
  /// How many local names a session keeps (each may hold server objects alive).
  static constexpr std::size_t max_names = 256;
  /// How many handles of one result get their type named (one describe() each).
  static constexpr std::size_t max_typed_handles = 16;

  explicit Evaluator(Client client) : client_(std::move(client)) {}

  /// Evaluates one statement. Throws RemoteError as the server reports it, SessionError when
  /// a `let` would pass max_names.
  [[nodiscard]] asio::awaitable<Outcome> evaluate(const Statement& statement);
  /// Describes the object `expr` refers to (a literal is stored first).
  [[nodiscard]] asio::awaitable<Outcome> describe(const Expr& expr) const;
  /// The server's export names.
  [[nodiscard]] asio::awaitable<Outcome> browse() const;

  /// The type names of the handles in `value`, in the order format() visits them: the first
  /// max_typed_handles only, "" for one whose describe() failed.
  [[nodiscard]] asio::awaitable<std::vector<std::string>> handle_types(const Value& value) const;

  /// Names close to the one `error` says is missing (an export, or a member of an object that
  /// `statement` reads through a dotted path): "did you mean". Empty when there are none or the
  /// error is of another kind. Costs a browse() or a describe().
  [[nodiscard]] asio::awaitable<std::vector<std::string>> suggestions(const Statement& statement,
                                                                      const RemoteError& error) const;

  /// Candidates for tab completion of the word that ends `line_before_cursor`: members (from
  /// describe) after a dotted path, else local names, exports, builtins and keywords. Each
  /// candidate is the whole word. Reads attributes along the path; never calls.
  [[nodiscard]] asio::awaitable<std::vector<std::string>> completions(std::string line_before_cursor) const;

  /// The local names, sorted.
  const std::map<std::string, Value>& names() const noexcept { return names_; }

 private:
  Client client_;
  std::map<std::string, Value> names_;
};

}  // namespace remoteable::cli
