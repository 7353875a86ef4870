#pragma once
// remoteable::cli::Evaluator: runs parsed CLI statements on a server as pipelined Handle chains.

#include <asio/awaitable.hpp>

#include "cli/outcome.hpp"
#include "cli/parser.hpp"
#include <remoteable/client.hpp>

namespace remoteable::cli {

/// Evaluates statements against one connection.
///
/// Each statement costs one round trip: the whole expression becomes a chain of Handle
/// operations, which return at once and are pipelined, and only the end of the chain is awaited
/// (get(), or str()/truthy() for str(...)/bool(...), or set()/set_item() for an assignment).
/// Literal operands travel as values. A statement made only of literals is printed without
/// asking the server; one that applies an operator to literals alone stores the left operand
/// first, so the server's semantics apply.
///
/// Ownership and threads: holds a copy of the Client (a shared reference to the connection).
/// The coroutines run on whichever executor awaits them. The statement must outlive the await.
class Evaluator {
 public:
  explicit Evaluator(Client client) : client_(std::move(client)) {}

  /// Evaluates one statement. Throws RemoteError as the server reports it.
  [[nodiscard]] asio::awaitable<Outcome> evaluate(const Statement& statement) const;
  /// Describes the object `expr` refers to (a literal is stored first).
  [[nodiscard]] asio::awaitable<Outcome> describe(const Expr& expr) const;
  /// The server's export names.
  [[nodiscard]] asio::awaitable<Outcome> browse() const;

 private:
  Client client_;
};

}  // namespace remoteable::cli
