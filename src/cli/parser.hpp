#pragma once
// remoteable::cli parser: the AST of the CLI expression language and the parser that builds it.
//
// The language is small and Python-like. Precedence, loosest first (Python's order; `!` is C's):
//
//   statement   := 'let' NAME '=' expr          a name local to the session (see Statement)
//                | expr [ '=' expr ]            target must be `x.name` or `x[key]`
//   expr        := and_test { 'or' and_test }
//   and_test    := not_test { 'and' not_test }
//   not_test    := 'not' not_test | comparison
//   comparison  := bit_or [ ('=='|'!='|'<'|'<='|'>'|'>=') bit_or ]     (no chains: a < b < c)
//   bit_or      := bit_xor { '|' bit_xor }
//   bit_xor     := bit_and { '^' bit_and }
//   bit_and     := shift { '&' shift }
//   shift       := sum { ('<<'|'>>') sum }
//   sum         := term { ('+'|'-') term }
//   term        := unary { ('*'|'/'|'%') unary }
//   unary       := ('-'|'~'|'!') unary | postfix
//   postfix     := primary { '.' NAME | '(' args ')' | '[' expr ']' | '[' [INT] ':' [INT] ']' }
//   primary     := NAME | literal | '(' expr ')' | '[' items ']' | '{' STRING ':' expr, ... '}'
//                | builtin '(' args ')'
//
// `a and b`, `a or b` are Python's: the left operand is evaluated first and its truth decides
// (one round trip) whether the right one is evaluated; the result is one of the two operands.
// Nesting is bounded (max_nesting): deeper expressions are a syntax error, not a crash.
//
// Builtins are the bare names store, len, str, bool, attach, detach, browse and describe when
// called. store(x) and len(x) may appear anywhere; the others evaluate or act, so they must be
// the whole statement. Any other bare name is an export.
//
// Plain functions over plain data: no state, no threads.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "cli/lexer.hpp"
#include <remoteable/handle.hpp>

namespace remoteable::cli {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

/// A constant: none, bool, integer, float, string, bytes. Never holds a handle.
struct Literal {
  Value value;
};
/// An export, fetched by name.
struct Name {
  std::string name;
};
/// `object.name`
struct Attribute {
  ExprPtr object;
  std::string name;
};
/// `callee(args...)`. A callee that is an Attribute is a method call.
struct Call {
  ExprPtr callee;
  std::vector<ExprPtr> args;
};
/// `object[key]`
struct Index {
  ExprPtr object;
  ExprPtr key;
};
/// `object[start:stop]`, each bound an integer literal (`-` allowed) or left out (0, the end).
struct Slice {
  ExprPtr object;
  std::int64_t start = 0;
  std::int64_t stop = std::numeric_limits<std::int64_t>::max();
};
struct Unary {
  UnaryOp op;
  ExprPtr operand;
};
struct Binary {
  BinaryOp op;
  ExprPtr left;
  ExprPtr right;
};
enum class LogicalOp { and_, or_ };
/// `left and right`, `left or right`: short-circuiting, yields one of its operands.
struct Logical {
  LogicalOp op;
  ExprPtr left;
  ExprPtr right;
};
/// `[a, b, ...]`
struct ListDisplay {
  std::vector<ExprPtr> items;
};
/// `{"key": value, ...}`: keys are string literals.
struct MapDisplay {
  std::vector<std::pair<std::string, ExprPtr>> entries;
};

enum class BuiltinKind { store, len, str, boolean, attach, detach, browse, describe };
std::string_view to_string(BuiltinKind kind) noexcept;

/// `store(x)`, `len(x)`, `str(x)`, `bool(x)`, `attach(x, "name")`, `detach("name")`, `browse()`,
/// `describe(x)`. Arity and argument kinds are checked by the parser.
struct Builtin {
  BuiltinKind kind;
  std::vector<ExprPtr> args;
};

struct Expr {
  std::variant<Literal, Name, Attribute, Call, Index, Slice, Unary, Binary, Logical, ListDisplay,
               MapDisplay, Builtin>
      node;
  std::size_t column = 0;  ///< byte offset in the source where the expression starts
};

/// One line: an expression, an assignment `target = value`, or `let NAME = value`.
struct Statement {
  ExprPtr target;  ///< null unless an assignment; then an Attribute or Index
  ExprPtr value;
  /// `let NAME = value`: the local name to bind (target is null). Empty otherwise.
  std::string binding;
};

/// How deeply expressions may nest (parentheses, operands, arguments).
inline constexpr std::size_t max_nesting = 200;

/// True for the names the language reserves when called (store, len, ...).
bool is_builtin_name(std::string_view name) noexcept;

/// Parses one statement. Throws SyntaxError with the column of the first offending token.
Statement parse(std::string_view source);

/// Parses one expression that must yield a handle or value without acting: no assignment, and
/// only the builtins store() and len(). Used for `remoteable HOST:PORT describe EXPR`.
ExprPtr parse_expression(std::string_view source);

/// A fully parenthesised rendering of the tree, for tests and debugging:
/// `(+ 1 (* 2 3))`, `(. root child)`, `(call (. root child) 0)`, `(= (. a b) 1)`.
std::string dump(const Expr& expr);
std::string dump(const Statement& statement);

/// The source spelling of a unary operator: "-", "~", "not" (binary operators are spelled as
/// remoteable::spelling spells them).
std::string_view source_spelling(UnaryOp op) noexcept;

}  // namespace remoteable::cli
